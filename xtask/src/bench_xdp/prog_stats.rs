//! The guard program's run time: `kernel.bpf_stats_enabled` for the duration of a
//! measurement, `run_time_ns` / `run_cnt` from bpftool or the agent's fdinfo, and the
//! `bpftool prog run` cross-check on a synthetic frame.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use integration_tests::util::{run_with_timeout, TempDir};
use serde_json::Value;

use super::{BPF_STATS_SYSCTL, TEST_RUN_REPEAT};

/// `kernel.bpf_stats_enabled=1` while alive; the previous value comes back on drop.
pub(super) struct BpfStatsSysctl {
    old: String,
}

impl BpfStatsSysctl {
    pub(super) fn enable() -> Result<BpfStatsSysctl> {
        let old = fs::read_to_string(BPF_STATS_SYSCTL)
            .with_context(|| format!("reading {BPF_STATS_SYSCTL}"))?
            .trim()
            .to_string();
        fs::write(BPF_STATS_SYSCTL, "1").with_context(|| format!("writing {BPF_STATS_SYSCTL}"))?;
        Ok(BpfStatsSysctl { old })
    }
}

impl Drop for BpfStatsSysctl {
    fn drop(&mut self) {
        if let Err(e) = fs::write(BPF_STATS_SYSCTL, &self.old) {
            eprintln!(
                "warning: could not restore {BPF_STATS_SYSCTL} to {}: {e}",
                self.old
            );
        }
    }
}

/// Reads `run_time_ns` / `run_cnt` of one program.
pub(super) struct ProgStats {
    pub(super) bpftool: Option<PathBuf>,
    pub(super) agent_pid: u32,
    pub(super) prog_id: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct RunStats {
    pub(super) run_time_ns: u64,
    pub(super) run_cnt: u64,
}

impl RunStats {
    pub(super) fn since(&self, before: &RunStats) -> RunStats {
        RunStats {
            run_time_ns: self.run_time_ns.saturating_sub(before.run_time_ns),
            run_cnt: self.run_cnt.saturating_sub(before.run_cnt),
        }
    }

    pub(super) fn ns_per_run(&self) -> f64 {
        if self.run_cnt == 0 {
            f64::NAN
        } else {
            self.run_time_ns as f64 / self.run_cnt as f64
        }
    }
}

impl ProgStats {
    pub(super) fn source(&self) -> &'static str {
        if self.bpftool.is_some() {
            "bpftool"
        } else {
            "fdinfo"
        }
    }

    pub(super) fn read(&self) -> Result<RunStats> {
        match &self.bpftool {
            Some(bpftool) => self.read_bpftool(bpftool),
            None => self.read_fdinfo(),
        }
    }

    fn read_bpftool(&self, bpftool: &Path) -> Result<RunStats> {
        let out = run_with_timeout(
            Command::new(bpftool).args(["prog", "show", "id", &self.prog_id.to_string(), "--json"]),
            Duration::from_secs(10),
        )?;
        ensure!(
            out.status.success(),
            "bpftool prog show id {} failed: {}",
            self.prog_id,
            out.stderr_text()
        );
        let v: Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("bpftool printed {}", out.stdout_text()))?;
        ensure!(
            v["name"] == "xdp_guard" && v["type"] == "xdp",
            "program {} is not the XDP guard: {v}",
            self.prog_id
        );
        // Both fields are left out while they are 0.
        Ok(RunStats {
            run_time_ns: v["run_time_ns"].as_u64().unwrap_or(0),
            run_cnt: v["run_cnt"].as_u64().unwrap_or(0),
        })
    }

    /// The agent's fd of the program: `prog_type: 6` (XDP) and our `prog_id`.
    fn read_fdinfo(&self) -> Result<RunStats> {
        let dir = format!("/proc/{}/fd", self.agent_pid);
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
            let entry = entry?;
            let Ok(target) = fs::read_link(entry.path()) else {
                continue;
            };
            if target.to_string_lossy() != "anon_inode:bpf-prog" {
                continue;
            }
            let fd = entry.file_name().to_string_lossy().into_owned();
            let Ok(info) = fs::read_to_string(format!("/proc/{}/fdinfo/{fd}", self.agent_pid))
            else {
                continue;
            };
            if let Some(stats) = parse_prog_fdinfo(&info, self.prog_id) {
                return Ok(stats);
            }
        }
        bail!(
            "api-guard (pid {}) holds no fd of XDP program {}",
            self.agent_pid,
            self.prog_id
        )
    }
}

/// `run_time_ns` / `run_cnt` from a program fd's fdinfo, if it is XDP program `prog_id`.
fn parse_prog_fdinfo(info: &str, prog_id: u32) -> Option<RunStats> {
    let field = |key: &str| -> Option<u64> {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    };
    const BPF_PROG_TYPE_XDP: u64 = 6;
    (field("prog_type:")? == BPF_PROG_TYPE_XDP && field("prog_id:")? == u64::from(prog_id))
        .then_some(())?;
    Some(RunStats {
        run_time_ns: field("run_time_ns:").unwrap_or(0),
        run_cnt: field("run_cnt:").unwrap_or(0),
    })
}

/// A TCP SYN from `src` to `dst` in an Ethernet frame (checksums left 0: the guard reads
/// addresses only).
fn syn_frame(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(54);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&[
        0x04, 0xd2, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
    ]);
    f.extend_from_slice(&[0, 0, 0, 0]);
    f
}

/// `bpftool prog run id ID data_in FRAME repeat N`: the average ns per run, checking the
/// verdict is `want`.
pub(super) fn test_run(
    bpftool: &Path,
    prog_id: u32,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    want: u32,
) -> Result<u64> {
    let dir = TempDir::new("bxrun")?;
    let frame = dir.join("frame.bin");
    fs::write(&frame, syn_frame(src, dst))?;
    let out = run_with_timeout(
        Command::new(bpftool)
            .args(["prog", "run", "id", &prog_id.to_string(), "data_in"])
            .arg(&frame)
            .args(["repeat", &TEST_RUN_REPEAT.to_string()]),
        Duration::from_secs(30),
    )?;
    let text = out.stdout_text() + &out.stderr_text();
    ensure!(out.status.success(), "bpftool prog run failed: {text}");
    let (verdict, ns) =
        parse_test_run(&text).with_context(|| format!("bpftool prog run printed {text:?}"))?;
    ensure!(
        verdict == want,
        "test run from {src}: verdict {verdict}, expected {want}"
    );
    Ok(ns)
}

/// `Return value: 1, duration (average): 87ns`.
fn parse_test_run(text: &str) -> Option<(u32, u64)> {
    let rest = &text[text.find("Return value:")? + "Return value:".len()..];
    let verdict = rest.split(',').next()?.trim().parse().ok()?;
    let rest = &rest[rest.find("duration (average):")? + "duration (average):".len()..];
    let ns = rest.trim_start().split("ns").next()?.trim().parse().ok()?;
    Some((verdict, ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prog_fdinfo_matches_type_and_id() {
        let info = "pos:\t0\nprog_type:\t6\nprog_jited:\t1\nprog_id:\t512\nrun_time_ns:\t900\n\
                    run_cnt:\t10\n";
        assert_eq!(
            parse_prog_fdinfo(info, 512),
            Some(RunStats {
                run_time_ns: 900,
                run_cnt: 10
            })
        );
        assert_eq!(parse_prog_fdinfo(info, 513), None);
        assert_eq!(
            parse_prog_fdinfo(&info.replace("prog_type:\t6", "prog_type:\t2"), 512),
            None
        );
        let s = RunStats {
            run_time_ns: 1000,
            run_cnt: 10,
        };
        assert_eq!(s.since(&RunStats::default()).ns_per_run(), 100.0);
        assert!(RunStats::default().ns_per_run().is_nan());
    }

    #[test]
    fn test_run_output_and_frame() {
        assert_eq!(
            parse_test_run("Return value: 1, duration (average): 87ns\n"),
            Some((1, 87))
        );
        assert_eq!(parse_test_run("Error: can't run"), None);
        let f = syn_frame(Ipv4Addr::new(10, 231, 0, 6), Ipv4Addr::new(10, 231, 0, 5));
        assert_eq!(f.len(), 54);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(&f[26..30], &[10, 231, 0, 6]);
        assert_eq!(&f[30..34], &[10, 231, 0, 5]);
    }
}
