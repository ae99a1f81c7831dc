//! The flood and what drops it: a bounded `hping3 --flood -S` with its CPU accounting,
//! an nftables drop rule to compare the guard with, and the per-packet figures of one run.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use integration_tests::util::{
    die_with_parent, kill_and_reap, run_with_timeout, signal_and_wait, tail, TempDir,
};
use integration_tests::Netns;

use super::cpu::{ksoftirqd_pids, stime_seconds, stime_sum, CpuDelta, CpuTimes};

const NFT_TABLE: &str = "apiguard_bench";

/// A bounded `hping3 --flood -S` in a namespace; killed on drop.
pub(super) struct Flood {
    child: Child,
    dir: TempDir,
    started: Instant,
    cpu_before: CpuTimes,
    ksoftirqd: Vec<u32>,
    ksoftirqd_before: f64,
}

/// What one flood did.
#[derive(Debug, Clone, Default)]
pub(super) struct FloodStats {
    secs: f64,
    /// Packets hping3 reports as transmitted.
    pub(super) sent: Option<u64>,
    /// System-wide, all processes.
    pub(super) cpu: CpuDelta,
    /// Kernel time charged to hping3 itself: its syscalls and, with tick accounting, the
    /// softirq work (veth receive, XDP or nftables) the kernel ran on its way out of them.
    sender_sys: f64,
    /// Kernel time of the ksoftirqd threads (softirq work deferred out of hping3's context).
    ksoftirqd: f64,
}

impl FloodStats {
    /// System time attributable to the flood: hping3's own plus ksoftirqd's.
    pub(super) fn attributed(&self) -> f64 {
        self.sender_sys + self.ksoftirqd
    }

    pub(super) fn sent_rate(&self) -> f64 {
        self.sent.map_or(f64::NAN, |n| n as f64 / self.secs)
    }
}

impl Flood {
    pub(super) fn start(ns: &Netns, target: SocketAddr) -> Result<Flood> {
        let dir = TempDir::new("bxflood")?;
        let ksoftirqd = ksoftirqd_pids()?;
        let ksoftirqd_before = stime_sum(&ksoftirqd);
        let cpu_before = CpuTimes::read()?;
        let mut cmd = ns.cmd("hping3");
        cmd.args(["--flood", "-S", "-p"])
            .arg(target.port().to_string())
            .arg(target.ip().to_string())
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("stdout"))?)
            .stderr(File::create(dir.join("stderr"))?);
        // Spawned from the main thread: hping3 dies with the bench.
        die_with_parent(&mut cmd, libc::SIGKILL);
        let child = cmd.spawn().context("spawning hping3")?;
        let mut flood = Flood {
            child,
            dir,
            started: Instant::now(),
            cpu_before,
            ksoftirqd,
            ksoftirqd_before,
        };
        thread::sleep(Duration::from_millis(100));
        if let Some(status) = flood.child.try_wait()? {
            bail!("hping3 exited at once with {status}: {}", flood.output());
        }
        Ok(flood)
    }

    fn output(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}\n{}", tail(&read("stdout"), 5), tail(&read("stderr"), 5))
    }

    /// Floods for `duration` (from the start), then stops.
    pub(super) fn run_for(self, duration: Duration) -> Result<FloodStats> {
        let left = duration.saturating_sub(self.started.elapsed());
        thread::sleep(left);
        self.stop()
    }

    /// Runs `f` while the flood goes on (after 300 ms of flood), then stops it.
    pub(super) fn during<T>(self, f: impl FnOnce() -> Result<T>) -> Result<(T, FloodStats)> {
        thread::sleep(Duration::from_millis(300));
        let result = f()?;
        Ok((result, self.stop()?))
    }

    /// SIGINT (hping3 then prints its statistics) and wait at most 3 s.
    /// The CPU window ends just before the signal, while hping3's /proc entry still exists.
    fn stop(mut self) -> Result<FloodStats> {
        let sender_sys = stime_seconds(self.child.id())
            .with_context(|| format!("hping3 is gone: {}", self.output()))?;
        let ksoftirqd = stime_sum(&self.ksoftirqd) - self.ksoftirqd_before;
        let cpu = CpuTimes::read()?.since(&self.cpu_before);
        let secs = self.started.elapsed().as_secs_f64();
        let status = signal_and_wait(&mut self.child, libc::SIGINT, Duration::from_secs(3))
            .with_context(|| format!("stopping hping3: {}", self.output()))?;
        // hping3 prints its statistics on stderr.
        let read = |name: &str| fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let sent = parse_hping_sent(&read("stderr")).or_else(|| parse_hping_sent(&read("stdout")));
        ensure!(
            sent.is_some() || status.success(),
            "hping3 ended with {status} without statistics: {}",
            self.output()
        );
        Ok(FloodStats {
            secs,
            sent,
            cpu,
            sender_sys,
            ksoftirqd,
        })
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// `123456 packets transmitted, 0 packets received, 100% packet loss`.
fn parse_hping_sent(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (n, rest) = l.trim().split_once(' ')?;
        rest.starts_with("packets transmitted")
            .then(|| n.parse().ok())
            .flatten()
    })
}

/// An nftables table in a namespace dropping one source at the earliest hook that works;
/// deleted on drop (and with the namespace in any case).
pub(super) struct NftDrop<'a> {
    ns: &'a Netns,
    family: &'static str,
    pub(super) hook: &'static str,
}

impl<'a> NftDrop<'a> {
    pub(super) fn install(ns: &'a Netns, dev: &str, src: Ipv4Addr) -> Result<NftDrop<'a>> {
        let netdev = format!(
            "table netdev {NFT_TABLE} {{\n  chain ingress {{\n    type filter hook ingress \
             device \"{dev}\" priority -500; policy accept;\n    ip saddr {src} counter drop\n  \
             }}\n}}\n"
        );
        match nft_apply(ns, &netdev) {
            Ok(()) => {
                return Ok(NftDrop {
                    ns,
                    family: "netdev",
                    hook: "netdev ingress (priority -500)",
                })
            }
            Err(e) => println!("     netdev ingress unavailable ({e:#}); using ip raw prerouting"),
        }
        let raw = format!(
            "table ip {NFT_TABLE} {{\n  chain prerouting {{\n    type filter hook prerouting \
             priority -300; policy accept;\n    ip saddr {src} counter drop\n  }}\n}}\n"
        );
        nft_apply(ns, &raw)?;
        Ok(NftDrop {
            ns,
            family: "ip",
            hook: "ip prerouting (raw priority -300)",
        })
    }

    /// Packets the rule's counter has dropped.
    pub(super) fn packets(&self) -> Result<u64> {
        let out = run_with_timeout(
            self.ns
                .cmd("nft")
                .args(["list", "table", self.family, NFT_TABLE]),
            Duration::from_secs(10),
        )?;
        ensure!(
            out.status.success(),
            "nft list table failed: {}",
            out.stderr_text()
        );
        parse_nft_packets(&out.stdout_text())
            .with_context(|| format!("no counter in:\n{}", out.stdout_text()))
    }
}

impl Drop for NftDrop<'_> {
    fn drop(&mut self) {
        let deleted = run_with_timeout(
            self.ns
                .cmd("nft")
                .args(["delete", "table", self.family, NFT_TABLE]),
            Duration::from_secs(10),
        );
        match deleted {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("warning: nft delete table: {}", out.stderr_text()),
            Err(e) => eprintln!("warning: nft delete table: {e:#}"),
        }
    }
}

fn nft_apply(ns: &Netns, ruleset: &str) -> Result<()> {
    let dir = TempDir::new("bxnft")?;
    let file = dir.join("rules.nft");
    fs::write(&file, ruleset)?;
    let out = run_with_timeout(ns.cmd("nft").arg("-f").arg(&file), Duration::from_secs(10))?;
    ensure!(
        out.status.success(),
        "nft -f failed ({}): {}",
        out.status,
        out.stderr_text().trim()
    );
    Ok(())
}

/// `ip saddr 10.231.0.6 counter packets 320965 bytes 12838600 drop`.
fn parse_nft_packets(text: &str) -> Option<u64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "packets")?;
    words.get(at + 1)?.parse().ok()
}

/// One flood with a drop mechanism in place.
#[derive(Debug, Clone, Default)]
pub(super) struct DropRun {
    pub(super) how: String,
    pub(super) flood: FloodStats,
    pub(super) dropped: u64,
}

impl DropRun {
    /// CPU seconds (system + softirq, all CPUs) per million dropped packets.
    pub(super) fn cpu_per_million(&self) -> f64 {
        per_million(self.flood.cpu.kernel(), self.dropped)
    }

    /// hping3's + ksoftirqd's system seconds per million dropped packets.
    pub(super) fn attributed_per_million(&self) -> f64 {
        per_million(self.flood.attributed(), self.dropped)
    }

    pub(super) fn print(&self) {
        let c = &self.flood.cpu;
        println!(
            "     {}: sent {} in {:.2}s ({:.0}/s), dropped {} ({:.0}/s)",
            self.how,
            self.flood.sent.map_or("?".into(), |n| n.to_string()),
            self.flood.secs,
            self.flood.sent_rate(),
            self.dropped,
            self.dropped as f64 / self.flood.secs
        );
        println!(
            "     CPU s (all CPUs): system {:.2} softirq {:.2} irq {:.2} user {:.2} idle {:.2} \
             steal {:.2} -> system+softirq {:.3} s per 1M dropped ({:.3} s per 1M in softirq)",
            c.system,
            c.softirq,
            c.irq,
            c.user,
            c.idle,
            c.steal,
            self.cpu_per_million(),
            per_million(c.softirq, self.dropped)
        );
        println!(
            "     attributed: hping3 system {:.2} + ksoftirqd {:.2} -> {:.3} s per 1M dropped",
            self.flood.sender_sys,
            self.flood.ksoftirqd,
            self.attributed_per_million()
        );
    }
}

pub(super) fn per_million(secs: f64, packets: u64) -> f64 {
    if packets == 0 {
        f64::NAN
    } else {
        secs / packets as f64 * 1e6
    }
}

/// Kernel CPU per packet of the generator alone (sending into a dead veth).
pub(super) fn print_generator(g: &FloodStats) {
    let sent = g.sent.unwrap_or(0);
    println!(
        "     generator alone: sent {sent} in {:.2}s ({:.0}/s); CPU s (all CPUs): system {:.2} \
         softirq {:.2} user {:.2} idle {:.2} -> system+softirq {:.3} s per 1M sent",
        g.secs,
        g.sent_rate(),
        g.cpu.system,
        g.cpu.softirq,
        g.cpu.user,
        g.cpu.idle,
        per_million(g.cpu.kernel(), sent)
    );
    println!(
        "     attributed: hping3 system {:.2} + ksoftirqd {:.2} -> {:.3} s per 1M sent",
        g.sender_sys,
        g.ksoftirqd,
        per_million(g.attributed(), sent)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hping_and_nft_counters() {
        let hping = "\n--- 10.231.255.249 hping statistic ---\n320965 packets transmitted, \
                     0 packets received, 100% packet loss\n";
        assert_eq!(parse_hping_sent(hping), Some(320_965));
        assert_eq!(parse_hping_sent("HPING x: S set"), None);
        let nft = "table netdev t {\n\tchain ingress {\n\t\tip saddr 10.231.0.6 counter \
                   packets 42 bytes 1680 drop\n\t}\n}\n";
        assert_eq!(parse_nft_packets(nft), Some(42));
        assert_eq!(parse_nft_packets("table ip t {}"), None);
    }
}
