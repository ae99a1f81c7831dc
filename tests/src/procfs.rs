//! Reads of /proc: CPU time, peak RSS, and listening sockets in a process's namespace.

use std::fs;
use std::net::{IpAddr, SocketAddr};

use anyhow::{bail, Context, Result};

/// utime + stime of `pid` (all threads) in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // comm may contain spaces and parentheses; the fields after the last ')' are fixed.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .context("short stat line")?
            .parse::<u64>()
            .context("parsing stat field")
    };
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz <= 0 {
        bail!("sysconf(_SC_CLK_TCK) failed");
    }
    Ok(total as f64 / hz as f64)
}

/// Peak resident set size (VmHWM) of `pid` in KiB.
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmHWM:")
}

/// Current resident set size (VmRSS) of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS:")
}

/// Resident KiB of `pid`'s mappings of BPF maps (`anon_inode:bpf-map`): a ring buffer's
/// kernel memory, whose data pages are mapped twice so that records can wrap. The kernel
/// holds that memory whether or not it is mapped; RSS counts it twice.
pub fn bpf_map_rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/smaps");
    let smaps = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let mut in_bpf_map = false;
    let mut total = 0;
    for line in smaps.lines() {
        if let Some(kib) = line.strip_prefix("Rss:") {
            if in_bpf_map {
                total += kib
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0);
            }
        } else if !line.contains(':') || line.split_whitespace().count() >= 5 {
            // A mapping's header line: "start-end perms offset dev inode [name]".
            in_bpf_map = line.ends_with("anon_inode:bpf-map");
        }
    }
    Ok(total)
}

fn status_kib(pid: u32, key: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .with_context(|| format!("{key} missing in {path}"))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("parsing {line:?}"))
}

/// Whether `pid` exists and has not exited (a zombie counts as exited).
pub fn is_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the comm's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The path of the file named `file_name` that `pid` has mapped, as `/proc/<pid>/maps`
/// shows it (the kernel's canonical path, e.g. `/usr/lib/x86_64-linux-gnu/libssl.so.3`).
pub fn mapped_path(pid: u32, file_name: &str) -> Result<String> {
    let path = format!("/proc/{pid}/maps");
    let maps = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|p| p.rsplit('/').next() == Some(file_name))
        .map(str::to_string)
        .with_context(|| format!("pid {pid} has no {file_name} mapped"))
}

/// The `local_address` column of /proc/net/tcp{,6} for `addr`: each 32-bit word of the
/// address in host byte order as %08X, then the port as %04X.
pub fn proc_net_tcp_key(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => format!("{:08X}", u32::from_ne_bytes(v4.octets())),
        IpAddr::V6(v6) => v6
            .octets()
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .collect(),
    };
    format!("{ip}:{:04X}", addr.port())
}

/// Whether a socket bound to `addr` is in LISTEN state in `pid`'s network namespace.
/// Checking this instead of connecting keeps readiness probes out of the captured traffic.
/// An IPv4 `addr` also matches an IPv6 socket bound to its v4-mapped address
/// (`::ffff:a.b.c.d`), which is how grpcio listens on an IPv4 address.
pub fn is_listening(pid: u32, addr: SocketAddr) -> Result<bool> {
    let mut candidates = vec![addr];
    if let IpAddr::V4(v4) = addr.ip() {
        candidates.push(SocketAddr::new(
            IpAddr::V6(v4.to_ipv6_mapped()),
            addr.port(),
        ));
    }
    for addr in candidates {
        let table = if addr.is_ipv4() { "tcp" } else { "tcp6" };
        let path = format!("/proc/{pid}/net/{table}");
        let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let key = proc_net_tcp_key(addr);
        const TCP_LISTEN: &str = "0A";
        let listening = text.lines().skip(1).any(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.get(1) == Some(&key.as_str()) && cols.get(3) == Some(&TCP_LISTEN)
        });
        if listening {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_key_matches_kernel_format() {
        // Taken from /proc/net/tcp on x86_64 for 10.231.255.1:8000.
        let addr: SocketAddr = "10.231.255.1:8000".parse().unwrap();
        assert_eq!(proc_net_tcp_key(addr), "01FFE70A:1F40");
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(
            proc_net_tcp_key(v6),
            "00000000000000000000000001000000:0050"
        );
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        assert!(is_alive(me));
        let exe = fs::read_link("/proc/self/exe").unwrap();
        let name = exe.file_name().unwrap().to_str().unwrap();
        assert_eq!(mapped_path(me, name).unwrap(), exe.to_str().unwrap());
        assert!(mapped_path(me, "no-such-file.so").is_err());
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        assert!(peak_rss_kib(me).unwrap() > 0);
        assert!(rss_kib(me).unwrap() > 0);
    }
}
