//! CPU accounting: the aggregate `cpu` line of /proc/stat, and the system time of single
//! processes (hping3, the `ksoftirqd/N` threads) from /proc/<pid>/stat.

use std::fs;

use anyhow::{ensure, Context, Result};

/// The aggregate `cpu` line of /proc/stat, in clock ticks.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CpuTimes {
    user: u64,
    nice: u64,
    system: u64,
    idle: u64,
    iowait: u64,
    irq: u64,
    softirq: u64,
    steal: u64,
}

impl CpuTimes {
    pub(super) fn read() -> Result<CpuTimes> {
        let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        parse_cpu_line(stat.lines().next().unwrap_or_default())
    }

    pub(super) fn since(&self, before: &CpuTimes) -> CpuDelta {
        let hz = clock_ticks_per_sec();
        let s = |after: u64, before: u64| after.saturating_sub(before) as f64 / hz;
        CpuDelta {
            user: s(self.user + self.nice, before.user + before.nice),
            system: s(self.system, before.system),
            irq: s(self.irq, before.irq),
            softirq: s(self.softirq, before.softirq),
            idle: s(self.idle + self.iowait, before.idle + before.iowait),
            steal: s(self.steal, before.steal),
        }
    }
}

fn parse_cpu_line(line: &str) -> Result<CpuTimes> {
    let mut words = line.split_whitespace();
    ensure!(words.next() == Some("cpu"), "not a cpu line: {line:?}");
    let v: Vec<u64> = words
        .map(|w| w.parse().with_context(|| format!("/proc/stat field {w:?}")))
        .collect::<Result<_>>()?;
    ensure!(v.len() >= 8, "short cpu line: {line:?}");
    Ok(CpuTimes {
        user: v[0],
        nice: v[1],
        system: v[2],
        idle: v[3],
        iowait: v[4],
        irq: v[5],
        softirq: v[6],
        steal: v[7],
    })
}

/// CPU seconds summed over all CPUs.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CpuDelta {
    pub(super) user: f64,
    pub(super) system: f64,
    pub(super) irq: f64,
    pub(super) softirq: f64,
    pub(super) idle: f64,
    pub(super) steal: f64,
}

impl CpuDelta {
    /// What the brief compares: system + softirq.
    pub(super) fn kernel(&self) -> f64 {
        self.system + self.softirq
    }
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

/// System time (`stime`, all threads) of `pid` in seconds.
pub(super) fn stime_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stime_ticks(&stat)
        .map(|t| t as f64 / clock_ticks_per_sec())
        .with_context(|| format!("malformed {path}: {stat:?}"))
}

/// Field 15 (`stime`) of a /proc/<pid>/stat line; the comm may hold spaces and parentheses.
fn parse_stime_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts at field 3 (state).
    rest.split_whitespace().nth(12)?.parse().ok()
}

/// The per-CPU `ksoftirqd/N` kernel threads.
pub(super) fn ksoftirqd_pids() -> Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").context("reading /proc")? {
        let entry = entry?;
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.starts_with("ksoftirqd/") {
            pids.push(pid);
        }
    }
    Ok(pids)
}

pub(super) fn stime_sum(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|&p| stime_seconds(p).ok()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stime_from_proc_stat() {
        let stat = "1234 (hp (x) 3) R 1 1234 1234 0 -1 4194560 100 0 0 0 17 42 0 0 20 0 1 0";
        assert_eq!(parse_stime_ticks(stat), Some(42));
        assert_eq!(parse_stime_ticks("garbage"), None);
        assert!(stime_seconds(std::process::id()).unwrap() >= 0.0);
        let pids = ksoftirqd_pids().unwrap();
        assert!(!pids.is_empty(), "no ksoftirqd threads found");
    }

    #[test]
    fn cpu_line_and_delta() {
        let a = parse_cpu_line("cpu  100 0 50 1000 0 0 10 0 0 0").unwrap();
        let b = parse_cpu_line("cpu  100 0 150 1000 0 0 60 0 0 0").unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let d = b.since(&a);
        assert_eq!(d.kernel(), 150.0 / hz);
        assert!(parse_cpu_line("cpu0 1 2 3").is_err());
    }
}
