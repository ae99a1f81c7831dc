//! The breach step: a client that requests back to back from inside the client namespace
//! until a connection attempt times out, the agent's `block` events, and the analysis of
//! one run relative to the breaching request.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, ensure, Context, Result};
use integration_tests::Agent;
use serde_json::Value;

/// Upper bound on the breach client's requests (it stops far earlier in practice).
const MAX_ATTEMPTS: usize = 200_000;

/// Wall-clock now, in ns since the Unix epoch.
fn unix_now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// One request of the breach client.
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    start_ns: i128,
    outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// `200` received.
    Served,
    ConnectTimeout,
    ReadTimeout,
    Failed(String),
}

/// Runs the breach client on a thread that has entered the namespace at `netns`.
pub(super) fn breach_client(
    netns: &Path,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    limit: Duration,
) -> Result<Vec<Attempt>> {
    thread::scope(|s| {
        s.spawn(|| {
            let ns = File::open(netns).with_context(|| format!("opening {}", netns.display()))?;
            // SAFETY: setns on an fd we own; it affects only this thread, which ends here.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("entering {}", netns.display()));
            }
            Ok(client_loop(addr, path, timeout, limit))
        })
        .join()
        .unwrap_or_else(|_| Err(anyhow!("the breach client thread panicked")))
    })
}

/// Requests back to back until a connection attempt times out (or `limit` passes).
fn client_loop(addr: SocketAddr, path: &str, timeout: Duration, limit: Duration) -> Vec<Attempt> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let deadline = Instant::now() + limit;
    let mut attempts = Vec::new();
    while Instant::now() < deadline && attempts.len() < MAX_ATTEMPTS {
        let start_ns = unix_now_ns();
        let outcome = one_request(addr, request.as_bytes(), timeout);
        let stop = outcome == Outcome::ConnectTimeout;
        attempts.push(Attempt { start_ns, outcome });
        if stop {
            break;
        }
    }
    attempts
}

fn one_request(addr: SocketAddr, request: &[u8], timeout: Duration) -> Outcome {
    let mut stream = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::TimedOut => return Outcome::ConnectTimeout,
        Err(e) => return Outcome::Failed(format!("connect: {e}")),
    };
    let timed_out =
        |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    let io = (|| {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(request)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        Ok::<_, std::io::Error>(response)
    })();
    match io {
        Ok(r) if r.starts_with(b"HTTP/1.1 200 ") => Outcome::Served,
        Ok(r) => Outcome::Failed(format!(
            "response {:?}",
            String::from_utf8_lossy(&r[..r.len().min(40)])
        )),
        Err(e) if timed_out(&e) => Outcome::ReadTimeout,
        Err(e) => Outcome::Failed(format!("i/o: {e}")),
    }
}

/// The `block` events for `target` so far.
pub(super) fn block_events(agent: &Agent, target: &str) -> Result<Vec<Value>> {
    Ok(agent
        .events()?
        .into_iter()
        .filter(|e| e["type"] == "block" && e["target"] == target)
        .collect())
}

/// The `block` event for `target` after the first `seen`, waiting up to `timeout`.
pub(super) fn wait_block_event(
    agent: &Agent,
    target: &str,
    seen: usize,
    timeout: Duration,
) -> Result<Option<Value>> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = block_events(agent, target)?.into_iter().nth(seen);
        if found.is_some() || Instant::now() > deadline {
            return Ok(found);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Parses the agent's `2026-11-27T14:15:03.450766Z` into ns since the Unix epoch.
fn parse_rfc3339_utc(s: &str) -> Option<i128> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, m, day): (i64, u32, u32) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':');
    let (hh, mm, ss): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || frac.len() > 9 {
        return None;
    }
    let frac_ns: i128 = if frac.is_empty() {
        0
    } else {
        i128::from(frac.parse::<u64>().ok()?) * 10i128.pow(9 - frac.len() as u32)
    };
    let secs = days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(i128::from(secs) * 1_000_000_000 + frac_ns)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What the breach step measured; times in ms relative to the breaching request's start.
#[derive(Debug, Clone, Default)]
pub(super) struct BreachReport {
    attempts: usize,
    burst: usize,
    served_within_burst: usize,
    breach_served: bool,
    /// Block event time − breaching request start.
    pub(super) event_ms: Option<f64>,
    /// Requests started after the breaching one that were still served.
    pub(super) served_after_breach: usize,
    /// Of those, started after the block event.
    pub(super) served_after_event: usize,
    /// Start of the first request after the breach that was not served, and what happened.
    pub(super) first_unserved: Option<(f64, String)>,
    /// Start of the first connection attempt that timed out.
    pub(super) first_timeout_ms: Option<f64>,
    read_timeouts: usize,
    failures: usize,
    first_failure: Option<String>,
    /// Start of the last request served, relative to the breach.
    last_served_ms: Option<f64>,
}

impl BreachReport {
    pub(super) fn analyse(
        attempts: &[Attempt],
        burst: usize,
        event: Option<&Value>,
    ) -> Result<BreachReport> {
        ensure!(
            attempts.len() > burst,
            "the breach client made only {} requests (burst {burst}); first outcome {:?}",
            attempts.len(),
            attempts.first().map(|a| &a.outcome)
        );
        let breach = &attempts[burst];
        let rel = |ns: i128| (ns - breach.start_ns) as f64 / 1e6;
        let event_ns = match event {
            Some(e) => {
                let time = e["time"].as_str().context("block event without time")?;
                Some(
                    parse_rfc3339_utc(time)
                        .with_context(|| format!("block event time {time:?}"))?,
                )
            }
            None => None,
        };
        let after = &attempts[burst + 1..];
        let served = |a: &&Attempt| a.outcome == Outcome::Served;
        let failure = |a: &&Attempt| matches!(a.outcome, Outcome::Failed(_));
        Ok(BreachReport {
            attempts: attempts.len(),
            burst,
            served_within_burst: attempts[..burst].iter().filter(served).count(),
            breach_served: breach.outcome == Outcome::Served,
            event_ms: event_ns.map(rel),
            served_after_breach: after.iter().filter(served).count(),
            served_after_event: event_ns.map_or(0, |ev| {
                after
                    .iter()
                    .filter(served)
                    .filter(|a| a.start_ns > ev)
                    .count()
            }),
            first_unserved: after
                .iter()
                .find(|a| a.outcome != Outcome::Served)
                .map(|a| {
                    let what = match &a.outcome {
                        Outcome::ConnectTimeout => "connect timeout".to_string(),
                        Outcome::ReadTimeout => "read timeout".to_string(),
                        Outcome::Failed(e) => e.clone(),
                        Outcome::Served => unreachable!(),
                    };
                    (rel(a.start_ns), what)
                }),
            first_timeout_ms: attempts
                .iter()
                .find(|a| a.outcome == Outcome::ConnectTimeout)
                .map(|a| rel(a.start_ns)),
            read_timeouts: attempts
                .iter()
                .filter(|a| a.outcome == Outcome::ReadTimeout)
                .count(),
            failures: attempts.iter().filter(failure).count(),
            first_failure: attempts
                .iter()
                .find(failure)
                .map(|a| format!("{:?}", a.outcome)),
            last_served_ms: attempts.iter().rev().find(served).map(|a| rel(a.start_ns)),
        })
    }

    pub(super) fn print(&self, run: u32) {
        let ms = |v: Option<f64>| v.map_or("not observed".into(), |v| format!("{v:+.3} ms"));
        println!(
            "     run {run}: {} requests, {}/{} of the burst served, breaching request (no. {}) \
             {}",
            self.attempts,
            self.served_within_burst,
            self.burst,
            self.burst + 1,
            if self.breach_served {
                "served"
            } else {
                "not served"
            }
        );
        println!(
            "            block event {}; {} served after the breach (last started {}, {} \
             started after the event)",
            ms(self.event_ms),
            self.served_after_breach,
            ms(self.last_served_ms),
            self.served_after_event
        );
        println!(
            "            first unserved {}{}; first connect timeout {}; {} read timeouts, {} \
             other failures{}",
            ms(self.first_unserved.as_ref().map(|u| u.0)),
            self.first_unserved
                .as_ref()
                .map_or(String::new(), |u| format!(" ({})", u.1)),
            ms(self.first_timeout_ms),
            self.read_timeouts,
            self.failures,
            self.first_failure
                .as_ref()
                .map_or(String::new(), |f| format!(" (first: {f})"))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_to_unix_ns() {
        assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00.000000Z"), Some(0));
        assert_eq!(
            parse_rfc3339_utc("2026-11-27T14:15:03.450766Z"),
            Some(1_795_788_903_450_766_000)
        );
        assert_eq!(
            parse_rfc3339_utc("2000-02-29T23:59:59Z"),
            Some(951_868_799_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_utc("1969-12-31T23:59:59.5Z"),
            Some(-500_000_000)
        );
        assert_eq!(parse_rfc3339_utc("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_utc("2026-11-27 14:15:03Z"), None);
    }

    #[test]
    fn breach_analysis() {
        let at = |ms: i128, outcome: Outcome| Attempt {
            start_ns: ms * 1_000_000,
            outcome,
        };
        let attempts = vec![
            at(0, Outcome::Served),
            at(1, Outcome::Served),
            at(2, Outcome::Served),
            at(3, Outcome::Served),
            at(4, Outcome::ReadTimeout),
            at(5, Outcome::ConnectTimeout),
        ];
        let event = serde_json::json!({"type": "block", "time": "1970-01-01T00:00:00.002500Z"});
        let r = BreachReport::analyse(&attempts, 1, Some(&event)).unwrap();
        assert_eq!(r.served_within_burst, 1);
        assert!(r.breach_served);
        assert_eq!(r.event_ms, Some(1.5));
        assert_eq!(r.served_after_breach, 2);
        assert_eq!(r.served_after_event, 1);
        assert_eq!(r.first_timeout_ms, Some(4.0));
        assert_eq!(r.first_unserved, Some((3.0, "read timeout".to_string())));
        assert_eq!(r.read_timeouts, 1);
        assert_eq!(r.last_served_ms, Some(2.0));
        assert!(BreachReport::analyse(&attempts[..1], 1, None).is_err());
    }
}
