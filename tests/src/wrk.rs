//! wrk as a load generator inside a namespace, and a parser for its report.

use std::time::Duration;

use anyhow::{ensure, Context, Result};

use crate::netns::Netns;
use crate::util::run_with_timeout;

/// A wrk run's settings.
#[derive(Debug, Clone)]
pub struct WrkArgs {
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
    /// `--latency`: adds the latency percentiles to the report.
    pub latency: bool,
    /// `-s`: a Lua script that shapes the requests (method, path, body).
    pub script: Option<std::path::PathBuf>,
}

/// What wrk reported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WrkReport {
    /// Completed requests ("N requests in ...").
    pub requests: u64,
    pub seconds: f64,
    pub requests_per_sec: f64,
    /// Latency percentiles in milliseconds (with `--latency`).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Sum of connect/read/write/timeout socket errors.
    pub socket_errors: u64,
    pub non_2xx_3xx: u64,
    /// pid of the wrk process.
    pub pid: u32,
    pub raw: String,
}

/// Runs `wrk` in `ns` against `url`; bounded by the duration plus 20 s.
pub fn run(ns: &Netns, url: &str, args: &WrkArgs) -> Result<WrkReport> {
    let mut cmd = ns.cmd("wrk");
    cmd.arg("-t")
        .arg(args.threads.to_string())
        .arg("-c")
        .arg(args.connections.to_string())
        .arg("-d")
        .arg(format!("{}s", args.duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("5s");
    if args.latency {
        cmd.arg("--latency");
    }
    if let Some(script) = &args.script {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(url);
    let done = run_with_timeout(&mut cmd, args.duration + Duration::from_secs(20))?;
    ensure!(
        done.status.success(),
        "wrk failed ({}): {}{}",
        done.status,
        done.stdout_text(),
        done.stderr_text()
    );
    let mut report = parse(&done.stdout_text())?;
    report.pid = done.pid;
    Ok(report)
}

/// Parses wrk 4.x's text report.
pub fn parse(text: &str) -> Result<WrkReport> {
    let mut r = WrkReport {
        raw: text.to_string(),
        ..WrkReport::default()
    };
    let mut found_requests = false;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() >= 4 && words[1] == "requests" && words[2] == "in" {
            r.requests = words[0]
                .parse()
                .with_context(|| format!("wrk line {line:?}"))?;
            r.seconds = parse_duration_ms(words[3].trim_end_matches(','))? / 1000.0;
            found_requests = true;
        } else if let Some(v) = line.strip_prefix("Requests/sec:") {
            r.requests_per_sec = v
                .trim()
                .parse()
                .with_context(|| format!("wrk line {line:?}"))?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            r.socket_errors = v
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx_3xx = v
                .trim()
                .parse()
                .with_context(|| format!("wrk line {line:?}"))?;
        } else if words.len() == 2 && words[0] == "50%" {
            r.p50_ms = Some(parse_duration_ms(words[1])?);
        } else if words.len() == 2 && words[0] == "99%" {
            r.p99_ms = Some(parse_duration_ms(words[1])?);
        }
    }
    ensure!(
        found_requests,
        "no 'N requests in' line in wrk output:\n{text}"
    );
    Ok(r)
}

/// wrk prints durations as `812.00us`, `1.23ms`, `2.00s` or `1.00m`; h2load as `137us`,
/// `52.30ms`, `2.01s` (and `ns`, `h`).
pub(crate) fn parse_duration_ms(s: &str) -> Result<f64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .with_context(|| format!("duration without unit: {s:?}"))?;
    let value: f64 = s[..split]
        .parse()
        .with_context(|| format!("duration {s:?}"))?;
    let factor = match &s[split..] {
        "ns" => 0.000_001,
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        unit => anyhow::bail!("unknown duration unit {unit:?} in {s:?}"),
    };
    Ok(value * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 3s test @ http://10.231.0.1:8080/f1k
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  812.00us  21.30ms   90.12%
    Req/Sec    16.70k     1.20k   19.10k    70.00%
  Latency Distribution
     50%    1.36ms
     75%    1.80ms
     90%    2.41ms
     99%  850.00us
  99712 requests in 3.00s, 118.45MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  33213.27
Transfer/sec:     39.45MB
";

    #[test]
    fn parses_report() {
        let r = parse(REPORT).unwrap();
        assert_eq!(r.requests, 99712);
        assert_eq!(r.seconds, 3.0);
        assert_eq!(r.requests_per_sec, 33213.27);
        assert_eq!(r.p50_ms, Some(1.36));
        assert_eq!(r.p99_ms, Some(0.85));
        assert_eq!(r.socket_errors, 3);
        assert_eq!(r.non_2xx_3xx, 4);
    }

    #[test]
    fn parses_report_without_latency_or_errors() {
        let r = parse("  10 requests in 1.00m, 1.00KB read\nRequests/sec:      0.17\n").unwrap();
        assert_eq!(
            (r.requests, r.seconds, r.p99_ms, r.socket_errors),
            (10, 60.0, None, 0)
        );
        assert!(parse("garbage").is_err());
    }
}
