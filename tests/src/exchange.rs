//! Checks on the daemon's exchange JSON lines (fields per docs/events.md, "Exchange JSON lines").

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use crate::util::monotonic_ns;
use crate::Transfer;

/// Predicate: exchange of process `pid` in `role` ("server" / "client").
pub fn pid_role(pid: u32, role: &'static str) -> impl Fn(&Value) -> bool + Clone {
    move |e: &Value| e["pid"].as_u64() == Some(u64::from(pid)) && e["role"] == role
}

/// Predicate: exchange of process `pid` in any role.
pub fn of_pid(pid: u32) -> impl Fn(&Value) -> bool + Clone {
    move |e: &Value| e["pid"].as_u64() == Some(u64::from(pid))
}

pub fn u64_field(e: &Value, key: &str) -> Result<u64> {
    e.get(key)
        .and_then(Value::as_u64)
        .with_context(|| format!("{key} is not a u64 in {e}"))
}

pub fn str_field<'a>(e: &'a Value, key: &str) -> Result<&'a str> {
    e.get(key)
        .and_then(Value::as_str)
        .with_context(|| format!("{key} is not a string in {e}"))
}

fn same(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => match (a.as_u64(), b.as_u64()) {
            (Some(a), Some(b)) => a == b,
            _ => a.as_f64() == b.as_f64(),
        },
        _ => actual == expected,
    }
}

/// Every key of the object `expected` must be present in `e` with exactly that value
/// (`null` expects the field to be null). All mismatches are reported at once, with the
/// whole exchange.
pub fn check_fields(e: &Value, expected: &Value) -> Result<()> {
    let want = expected
        .as_object()
        .context("expected fields must be a JSON object")?;
    let mismatches: Vec<String> = want
        .iter()
        .filter_map(|(k, v)| match e.get(k) {
            Some(actual) if same(actual, v) => None,
            Some(actual) => Some(format!("  {k}: expected {v}, got {actual}")),
            None => Some(format!("  {k}: expected {v}, field missing")),
        })
        .collect();
    if !mismatches.is_empty() {
        bail!(
            "exchange fields differ:\n{}\nexchange: {e}",
            mismatches.join("\n")
        );
    }
    Ok(())
}

/// `base` with the keys of `extra` added (or replaced); both must be JSON objects.
pub fn merged(base: &Value, extra: Value) -> Value {
    let mut out = base.clone();
    if let (Some(o), Value::Object(extra)) = (out.as_object_mut(), extra) {
        o.extend(extra);
    }
    out
}

/// Timing invariants: request_start ≤ response_start ≤ response_end, request_start ≤
/// request_end, all inside the
/// CLOCK_MONOTONIC window [t0, t1] the test measured around the request, and
/// `duration_ms` = response_end − request_start.
pub fn check_timing(e: &Value, t0_ns: u64, t1_ns: u64) -> Result<()> {
    let req = u64_field(e, "request_start_ns")?;
    let resp = u64_field(e, "response_start_ns")?;
    let end = u64_field(e, "response_end_ns")?;
    let req_end = u64_field(e, "request_end_ns")?;
    ensure!(
        req <= req_end && req_end <= t1_ns,
        "request_end_ns {req_end} outside [request_start {req}, {t1_ns}]: {e}"
    );
    ensure!(
        t0_ns <= req && req <= resp && resp <= end && end <= t1_ns,
        "timestamps out of order or outside the request window [{t0_ns}, {t1_ns}]: \
         request_start {req}, response_start {resp}, response_end {end}; exchange: {e}"
    );
    let duration = e["duration_ms"]
        .as_f64()
        .context("duration_ms is not a number")?;
    let want = (end - req) as f64 / 1e6;
    ensure!(
        (duration - want).abs() <= 0.001,
        "duration_ms {duration} != (response_end_ns - request_start_ns)/1e6 = {want}; exchange: {e}"
    );
    Ok(())
}

/// The CLOCK_MONOTONIC and wall-clock window around a client run: every exchange of the
/// run must lie inside it ([`check_timing`], [`check_wall_time`] with 1 s slack).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    t0_ns: u64,
    t1_ns: u64,
    wall0: SystemTime,
    wall1: SystemTime,
}

impl Window {
    /// Runs `f` and returns its value with the window around it.
    pub fn around<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Window)> {
        let (t0_ns, wall0) = (monotonic_ns(), SystemTime::now());
        let value = f()?;
        let window = Window {
            t0_ns,
            t1_ns: monotonic_ns(),
            wall0,
            wall1: SystemTime::now(),
        };
        Ok((value, window))
    }

    pub fn check(&self, e: &Value) -> Result<()> {
        check_timing(e, self.t0_ns, self.t1_ns)?;
        check_wall_time(e, self.wall0, self.wall1, Duration::from_secs(1))
    }
}

/// `time` is RFC 3339 UTC and lies within [wall0, wall1] give or take `slack`.
pub fn check_wall_time(
    e: &Value,
    wall0: SystemTime,
    wall1: SystemTime,
    slack: Duration,
) -> Result<()> {
    let text = str_field(e, "time")?;
    let t = parse_rfc3339(text)?;
    ensure!(
        t + slack >= wall0 && t <= wall1 + slack,
        "time {text} is outside the test's window {:?}..{:?}; exchange: {e}",
        wall0.duration_since(UNIX_EPOCH).unwrap_or_default(),
        wall1.duration_since(UNIX_EPOCH).unwrap_or_default()
    );
    Ok(())
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub fn parse_rfc3339(s: &str) -> Result<SystemTime> {
    let bad = || format!("not an RFC 3339 timestamp: {s:?}");
    ensure!(s.len() >= 20 && s.is_ascii(), "{}", bad());
    let num = |range: std::ops::Range<usize>| -> Result<i64> {
        s.get(range).and_then(|p| p.parse().ok()).with_context(bad)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let seps = s.as_bytes();
    ensure!(
        seps[4] == b'-'
            && seps[7] == b'-'
            && matches!(seps[10], b'T' | b't' | b' ')
            && seps[13] == b':'
            && seps[16] == b':',
        "{}",
        bad()
    );
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        ensure!(digits > 0, "{}", bad());
        let mut padded = frac[..digits.min(9)].to_string();
        while padded.len() < 9 {
            padded.push('0');
        }
        nanos = padded.parse().with_context(bad)?;
        rest = &frac[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ => {
            ensure!(rest.len() == 6 && rest.as_bytes()[3] == b':', "{}", bad());
            let sign = match &rest[..1] {
                "+" => 1,
                "-" => -1,
                _ => bail!(bad()),
            };
            let h: i64 = rest[1..3].parse().with_context(bad)?;
            let m: i64 = rest[4..6].parse().with_context(bad)?;
            sign * (h * 3600 + m * 60)
        }
    };
    ensure!(
        (1..=12).contains(&month) && (1..=31).contains(&day),
        "{}",
        bad()
    );
    let secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec - offset_s;
    let secs = u64::try_from(secs).with_context(bad)?;
    Ok(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// One line per exchange, for failure messages.
pub fn summary(e: &Value) -> String {
    format!(
        "pid={} comm={} role={} conn={} {} {} {}{} status={} local={} peer={} req={}+{} resp={}+{} trunc={}/{} tls={}{}",
        e["pid"],
        e["comm"],
        e["role"],
        e["conn_id"],
        e["method"],
        e["version"],
        e["path"].as_str().unwrap_or("?"),
        e["query"].as_str().map(|q| format!("?{q}")).unwrap_or_default(),
        e["status"],
        e["local_addr"],
        e["peer_addr"],
        e["request_header_bytes"],
        e["request_body_bytes"],
        e["response_header_bytes"],
        e["response_body_bytes"],
        e["request_truncated"],
        e["response_truncated"],
        e["tls"],
        e["tls_library"].as_str().map(|l| format!(" ({l})")).unwrap_or_default(),
    )
}

/// [`summary`] of each exchange, one per line.
pub fn dump(exchanges: &[Value]) -> String {
    exchanges
        .iter()
        .map(|e| format!("  {}\n", summary(e)))
        .collect()
}

/// Exchanges sorted by `request_start_ns` (exchanges without it last, in file order).
pub fn sorted_by_start(mut exchanges: Vec<Value>) -> Vec<Value> {
    exchanges.sort_by_key(|e| e["request_start_ns"].as_u64().unwrap_or(u64::MAX));
    exchanges
}

/// Fields both ends of one request/response must report.
pub fn request_fields(
    t: &Transfer,
    host: SocketAddr,
    method: &str,
    path: &str,
    query: Value,
    req_body: u64,
) -> Value {
    json!({
        "tls": false,
        "method": method,
        "path": path,
        "query": query,
        "host": host.to_string(),
        "version": "1.1",
        "status": t.http_code(),
        "request_header_bytes": t.request_header_bytes(),
        "request_body_bytes": req_body,
        "response_header_bytes": t.size_header(),
        "response_body_bytes": t.size_download(),
        "request_truncated": false,
        "response_truncated": false,
    })
}

pub fn same_conn(exchanges: &[Value]) -> Result<()> {
    let first = &exchanges[0]["conn_id"];
    ensure!(
        first.is_u64() && exchanges.iter().all(|e| &e["conn_id"] == first),
        "one keep-alive connection must give one conn_id:\n{}",
        dump(exchanges)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339_variants() {
        let base = UNIX_EPOCH + Duration::from_secs(1_764_151_980); // 2025-11-26T10:13:00Z
        assert_eq!(parse_rfc3339("2025-11-26T10:13:00Z").unwrap(), base);
        assert_eq!(
            parse_rfc3339("2025-11-26T10:13:00.5Z").unwrap(),
            base + Duration::from_millis(500)
        );
        assert_eq!(
            parse_rfc3339("2025-11-26T10:13:00.123456789+00:00").unwrap(),
            base + Duration::from_nanos(123_456_789)
        );
        assert_eq!(parse_rfc3339("2025-11-26T11:13:00+01:00").unwrap(), base);
        assert_eq!(
            parse_rfc3339("2000-03-01T00:00:00Z").unwrap(),
            UNIX_EPOCH + Duration::from_secs(951_868_800)
        );
        for bad in [
            "2025-11-26",
            "2025-11-26T10:13:00",
            "2025-13-26T10:13:00Z",
            "2025-11-26T10:13:00.Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn check_fields_reports_every_mismatch() {
        let e = json!({"method": "GET", "status": 200, "query": null, "bytes": 10});
        check_fields(&e, &json!({"method": "GET", "status": 200, "query": null})).unwrap();
        check_fields(&e, &json!({"bytes": 10.0})).unwrap();
        let err = check_fields(&e, &json!({"method": "POST", "status": 404, "path": "/"}))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("method") && err.contains("status") && err.contains("path"),
            "{err}"
        );
    }

    #[test]
    fn timing_invariants() {
        let e = json!({"request_start_ns": 100, "request_end_ns": 120, "response_start_ns": 150, "response_end_ns": 2_000_100, "duration_ms": 2.0});
        check_timing(&e, 50, 3_000_000).unwrap();
        assert!(check_timing(&e, 150, 3_000_000).is_err());
        let bad = json!({"request_start_ns": 100, "request_end_ns": 100, "response_start_ns": 50, "response_end_ns": 200, "duration_ms": 0.0001});
        assert!(check_timing(&bad, 0, 1000).is_err());
    }
}
