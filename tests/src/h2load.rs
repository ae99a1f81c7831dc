//! h2load (nghttp2-client) as an HTTP/2 load generator inside a namespace, and a parser for
//! its report, in the shape of wrk's ([`WrkReport`]).
//!
//! h2load prints no latency percentiles (only min / max / mean / sd of the request time);
//! its per-request `--log-file` would give them, but it writes once per request, which costs
//! the load generator about a fifth of its rate on a small machine, so the report leaves
//! `p50_ms` / `p99_ms` empty.

use std::time::Duration;

use anyhow::{ensure, Context, Result};

use crate::netns::Netns;
use crate::util::run_with_timeout;
use crate::wrk::{parse_duration_ms, WrkReport};

/// An h2load run's settings (timing based: `-D`).
#[derive(Debug, Clone)]
pub struct H2loadArgs {
    /// `-t`: worker threads.
    pub threads: u32,
    /// `-c`: connections (h2load's "clients").
    pub clients: u32,
    /// `-m`: concurrent streams per connection.
    pub streams: u32,
    /// `-D`: main duration (no warm-up: connecting is part of the run, as with wrk).
    pub duration: Duration,
}

/// What h2load reported beyond the [`WrkReport`] fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct H2loadReport {
    /// `requests` is "N done"; `socket_errors` is "N failed" (errored and timed out
    /// included); `non_2xx_3xx` counts 4xx and 5xx; no percentiles.
    pub report: WrkReport,
    /// Requests started (done + those in flight when the duration ended).
    pub started: u64,
    /// "Application protocol:" as negotiated with ALPN (`h2`, or `h2c` in cleartext).
    pub protocol: Option<String>,
    /// Mean time for a request, in milliseconds.
    pub mean_ms: Option<f64>,
}

/// Runs `h2load` in `ns` against `url` (an `https://` URL gets HTTP/2 by ALPN); fails unless
/// it spoke HTTP/2. Bounded by the duration plus 20 s.
pub fn run(ns: &Netns, url: &str, args: &H2loadArgs) -> Result<H2loadReport> {
    let mut cmd = ns.cmd("h2load");
    cmd.arg("-t")
        .arg(args.threads.to_string())
        .arg("-c")
        .arg(args.clients.to_string())
        .arg("-m")
        .arg(args.streams.to_string())
        .arg("-D")
        .arg(format!("{}s", args.duration.as_secs().max(1)))
        .arg(url);
    let done = run_with_timeout(&mut cmd, args.duration + Duration::from_secs(20))?;
    ensure!(
        done.status.success(),
        "h2load failed ({}): {}{}",
        done.status,
        done.stdout_text(),
        done.stderr_text()
    );
    let mut report = parse(&done.stdout_text())?;
    ensure!(
        report
            .protocol
            .as_deref()
            .is_some_and(|p| p.starts_with("h2")),
        "h2load did not speak HTTP/2 (application protocol {:?}):\n{}",
        report.protocol,
        report.report.raw
    );
    report.report.pid = done.pid;
    Ok(report)
}

/// Parses h2load 1.5x's text report.
pub fn parse(text: &str) -> Result<H2loadReport> {
    let mut out = H2loadReport {
        report: WrkReport {
            raw: text.to_string(),
            ..WrkReport::default()
        },
        ..H2loadReport::default()
    };
    let r = &mut out.report;
    let mut found_requests = false;
    for line in text.lines().map(str::trim) {
        let bad = || format!("h2load line {line:?}");
        if let Some(rest) = line.strip_prefix("finished in ") {
            // finished in 2.01s, 39147.00 req/s, 42.97MB/s
            let parts: Vec<&str> = rest.split(", ").collect();
            ensure!(parts.len() >= 2, "{}", bad());
            r.seconds = parse_duration_ms(parts[0])? / 1000.0;
            r.requests_per_sec = parts[1]
                .strip_suffix(" req/s")
                .with_context(bad)?
                .parse()
                .with_context(bad)?;
        } else if let Some(rest) = line.strip_prefix("requests:") {
            // requests: 78294 total, 78794 started, 78294 done, 78294 succeeded, 0 failed, ...
            let count = |what: &str| counted(rest, what).with_context(bad);
            r.requests = count("done")?;
            r.socket_errors = count("failed")?;
            out.started = count("started")?;
            found_requests = true;
        } else if let Some(rest) = line.strip_prefix("status codes:") {
            r.non_2xx_3xx =
                counted(rest, "4xx").with_context(bad)? + counted(rest, "5xx").with_context(bad)?;
        } else if let Some(rest) = line.strip_prefix("Application protocol:") {
            out.protocol = Some(rest.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("time for request:") {
            // min max mean sd +/-sd
            if let Some(mean) = rest.split_whitespace().nth(2) {
                out.mean_ms = Some(parse_duration_ms(mean)?);
            }
        }
    }
    ensure!(
        found_requests,
        "no 'requests: N total, ...' line in h2load output:\n{text}"
    );
    Ok(out)
}

/// The number before `what` in a list such as `78294 total, 0 failed`.
fn counted(list: &str, what: &str) -> Option<u64> {
    list.split(',').find_map(|part| {
        let mut words = part.split_whitespace();
        let n = words.next()?;
        (words.next() == Some(what)).then(|| n.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// h2load 1.52.0 (Debian 12), `-D 2 -c 50 -m 10 -t 2` against nginx 1.22 `ssl http2`.
    const REPORT: &str = "starting benchmark...
spawning thread #0: 25 total client(s). Timing-based test with 0s of warm-up time and 2s of main duration for measurements.
Main benchmark duration is started for thread #0.
TLS Protocol: TLSv1.2
Cipher: ECDHE-RSA-AES128-GCM-SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2
Main benchmark duration is over for thread #0. Stopping all clients.

finished in 2.01s, 39147.00 req/s, 42.97MB/s
requests: 78294 total, 78794 started, 78294 done, 78290 succeeded, 4 failed, 1 errored, 3 timeout
status codes: 78288 2xx, 0 3xx, 2 4xx, 1 5xx
traffic: 85.94MB (90118844) total, 8.14MB (8534046) headers (space savings 39.11%), 76.46MB (80173056) data
                     min         max         mean         sd        +/- sd
time for request:      137us     52.30ms     10.68ms      7.42ms    74.87%
time for connect:    60.40ms    421.17ms    204.00ms    136.75ms    52.00%
time to 1st byte:    84.32ms    439.36ms    226.68ms    134.65ms    54.00%
req/s           :     609.19      981.51      781.89      136.74    56.00%
";

    #[test]
    fn parses_report() {
        let out = parse(REPORT).unwrap();
        let r = &out.report;
        assert_eq!(r.requests, 78294);
        assert_eq!(r.seconds, 2.01);
        assert_eq!(r.requests_per_sec, 39147.0);
        assert_eq!((r.p50_ms, r.p99_ms), (None, None));
        assert_eq!(r.socket_errors, 4);
        assert_eq!(r.non_2xx_3xx, 3);
        assert_eq!(out.started, 78794);
        assert_eq!(out.protocol.as_deref(), Some("h2"));
        assert_eq!(out.mean_ms, Some(10.68));
    }

    #[test]
    fn rejects_output_without_requests() {
        assert!(parse("starting benchmark...\nNo protocol negotiated. Aborted\n").is_err());
        assert_eq!(counted(" 5 total, 0 failed", "failed"), Some(0));
        assert_eq!(counted(" 5 total", "done"), None);
    }
}
