//! Fixed-rate load for `cargo xtask bench overhead --rate N`: `oha` (crates.io, installed by
//! [`ensure_oha`] into the target directory) sends N requests per second whatever the server
//! does (open loop, latency corrected for coordinated omission), so CPU per request and p99
//! latency are compared at the same work, not at saturation as wrk does.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::wrk::WrkReport;
use integration_tests::Netns;
use serde_json::Value;

use crate::util;

/// The oha release the bench is written against (its JSON report's field names).
const OHA_VERSION: &str = "1.14.0";

/// Path of `oha`, built with `cargo install` into `<target>/tools` if missing (a few minutes,
/// once; only the fixed-rate bench needs it).
pub fn ensure_oha() -> Result<PathBuf> {
    let root = util::target_dir()?.join("tools");
    let bin = root.join("bin").join("oha");
    if bin.is_file() {
        return Ok(bin);
    }
    println!("[setup] oha {OHA_VERSION}: missing; cargo install (once, a few minutes)");
    let mut cmd = util::cargo();
    cmd.args(["install", "oha", "--locked", "--version", OHA_VERSION])
        .args(["--no-default-features", "--features", "rustls"])
        .arg("--root")
        .arg(&root);
    util::run(&mut cmd).context("installing oha")?;
    ensure!(
        bin.is_file(),
        "oha is not at {} after installing",
        bin.display()
    );
    Ok(bin)
}

/// One fixed-rate run.
#[derive(Debug, Clone)]
pub struct RateArgs {
    pub oha: PathBuf,
    pub rate: u32,
    pub connections: u32,
    pub duration: Duration,
}

/// Runs oha in `ns` against `url` (certificates not checked: the bench's own).
pub fn run(ns: &Netns, url: &str, args: &RateArgs) -> Result<WrkReport> {
    let mut cmd: Command = ns.cmd(&args.oha);
    cmd.arg("-z")
        .arg(format!("{}s", args.duration.as_secs()))
        .arg("-q")
        .arg(args.rate.to_string())
        .arg("-c")
        .arg(args.connections.to_string())
        .args([
            "--latency-correction",
            "--no-tui",
            "--insecure",
            "--output-format",
            "json",
        ])
        .arg(url);
    let out = util::output(&mut cmd).context("running oha")?;
    parse(&out)
}

/// The fields of oha's JSON report the bench uses, as a [`WrkReport`].
pub fn parse(text: &str) -> Result<WrkReport> {
    let v: Value = serde_json::from_str(text).context("oha's report is not JSON")?;
    let number =
        |path: &[&str]| -> Option<f64> { path.iter().try_fold(&v, |v, k| v.get(k))?.as_f64() };
    let sum = |key: &str, filter: &dyn Fn(&str) -> bool| -> u64 {
        v.get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| filter(k))
                    .filter_map(|(_, n)| n.as_u64())
                    .sum()
            })
            .unwrap_or(0)
    };
    let ok = |code: &str| matches!(code.as_bytes().first(), Some(b'2' | b'3'));
    let requests = sum("statusCodeDistribution", &|_| true);
    let seconds = number(&["summary", "total"]).context("no summary.total in oha's report")?;
    let ms = |p: &str| number(&["latencyPercentiles", p]).map(|s| s * 1000.0);
    Ok(WrkReport {
        requests,
        seconds,
        requests_per_sec: if seconds > 0.0 {
            requests as f64 / seconds
        } else {
            0.0
        },
        p50_ms: ms("p50"),
        p99_ms: ms("p99"),
        // Requests still in flight when the duration ends are reported as aborted: not errors.
        socket_errors: sum("errorDistribution", &|e| !e.contains("deadline")),
        non_2xx_3xx: sum("statusCodeDistribution", &|c| !ok(c)),
        pid: 0,
        raw: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_fields_used() {
        let report = parse(
            r#"{"summary":{"successRate":1.0,"total":5.0,"requestsPerSec":1000.2},
                "latencyPercentiles":{"p50":0.001,"p99":0.0042},
                "statusCodeDistribution":{"200":4990,"404":10},
                "errorDistribution":{"connection reset":3,"aborted due to deadline":7}}"#,
        )
        .unwrap();
        assert_eq!(report.requests, 5000);
        assert_eq!(report.requests_per_sec, 1000.0);
        assert_eq!(report.p99_ms, Some(4.2));
        assert_eq!(report.non_2xx_3xx, 10);
        assert_eq!(report.socket_errors, 3);
        assert!(parse("not json").is_err());
    }
}
