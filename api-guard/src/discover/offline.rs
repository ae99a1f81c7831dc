//! An inventory from recorded exchange lines (`api-guard run --exchanges` output, one JSON
//! object per line): `api-guard inventory --from-exchanges FILE.jsonl`. Exchange lines carry
//! no headers or bodies (they may hold secrets), so such an inventory knows routes, methods,
//! statuses, latencies, query parameters and clients, but no schemas, auth schemes or
//! sensitive data. Only server-side exchanges (`role: "server"`) count.

use std::{
    io::{self, BufRead},
    net::{IpAddr, SocketAddr},
};

use serde::Deserialize;

use super::inventory::{Inventory, Observation};

/// Longest line read; longer ones are skipped and counted as unreadable.
const MAX_LINE_BYTES: u64 = 1 << 20;

#[derive(Debug, Deserialize)]
struct ExchangeLine {
    time: Option<String>,
    role: Option<String>,
    peer_addr: Option<String>,
    method: String,
    path: String,
    query: Option<String>,
    host: Option<String>,
    status: Option<u16>,
    duration_ms: Option<f64>,
    tls: Option<bool>,
}

/// What a run read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Server-side exchanges added to the inventory.
    pub observed: u64,
    /// Client-side exchanges (this host's own outgoing calls), skipped.
    pub client_side: u64,
    /// Lines that were not exchange objects.
    pub unreadable: u64,
}

/// Adds every server-side exchange line of `input` to `inventory`.
pub fn observe_exchange_lines(
    inventory: &mut Inventory,
    mut input: impl BufRead,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = io::Read::take(&mut input, MAX_LINE_BYTES + 1).read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        if buf.len() as u64 > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            let mut rest = Vec::new();
            input.read_until(b'\n', &mut rest)?;
            summary.unreadable += 1;
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let Ok(line) = serde_json::from_str::<ExchangeLine>(text) else {
            summary.unreadable += 1;
            continue;
        };
        if line.role.as_deref() == Some("client") {
            summary.client_side += 1;
            continue;
        }
        let client = line.peer_addr.as_deref().and_then(|p| {
            p.parse::<SocketAddr>()
                .ok()
                .map(|a| a.ip())
                .or_else(|| p.parse::<IpAddr>().ok())
        });
        inventory.observe(&Observation {
            host: line.host.as_deref().unwrap_or(""),
            method: &line.method,
            path: &line.path,
            query: line.query.as_deref(),
            status: line.status,
            duration_ns: line
                .duration_ms
                .filter(|d| d.is_finite() && *d >= 0.0)
                .map(|d| (d * 1e6) as u64),
            client,
            time: line.time.as_deref().and_then(unix_seconds).unwrap_or(0),
            tls: line.tls,
            ..Observation::default()
        });
        summary.observed += 1;
    }
    Ok(summary)
}

/// `2026-11-27T15:26:17.185955Z` → Unix seconds (UTC only, as the daemon writes them).
fn unix_seconds(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !t.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), 1970-01-01 = 0.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::inventory::InventoryConfig;

    #[test]
    fn times_parse_as_utc() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_seconds("2026-11-27T15:26:17.185955Z"),
            Some(1_795_793_177)
        );
        assert_eq!(unix_seconds("2000-02-29T12:00:00Z"), Some(951_825_600));
        assert_eq!(unix_seconds("2026-13-01T00:00:00Z"), None);
        assert_eq!(unix_seconds("yesterday"), None);
    }

    #[test]
    fn server_lines_build_the_inventory() {
        let mut text = String::new();
        for id in 1..=60 {
            text.push_str(&format!(
                "{{\"time\":\"2026-11-27T15:00:{:02}Z\",\"role\":\"server\",\"peer_addr\":\"10.0.0.{}:4000\",\"method\":\"GET\",\"path\":\"/users/{id}\",\"query\":null,\"host\":\"api.example.com\",\"status\":200,\"duration_ms\":1.5}}\n",
                id % 60,
                id % 3
            ));
        }
        text.push_str(
            "{\"role\":\"client\",\"method\":\"GET\",\"path\":\"/upstream\"}\nnot json\n\n",
        );
        text.push_str("{\"role\":\"server\",\"method\":\"GET\",\"path\":\"/orders\",\"query\":\"status=open\",\"host\":\"api.example.com\",\"status\":200}\n");
        let mut inv = Inventory::new(&InventoryConfig::default());
        let s = observe_exchange_lines(&mut inv, text.as_bytes()).unwrap();
        assert_eq!(
            s,
            Summary {
                observed: 61,
                client_side: 1,
                unreadable: 1
            }
        );
        let eps: Vec<(&str, &str, u64)> = inv
            .endpoints()
            .map(|e| (e.method.as_str(), e.template.as_str(), e.count))
            .collect();
        assert_eq!(eps, [("GET", "/orders", 1), ("GET", "/users/{userId}", 60)]);
        let users = inv.endpoints().find(|e| e.count == 60).unwrap();
        assert_eq!(users.clients.estimate(), 3);
        assert_eq!(users.statuses.counts.get(&200), Some(&60));
        let orders = inv.endpoints().find(|e| e.count == 1).unwrap();
        assert!(orders.query_params.contains_key("status"));
    }
}
