//! Abuse: scanner user agents, 404 bursts, sequential object-id probing (BOLA), request-rate
//! spikes. All state is per client address or per route template, kept in LRU tables of at
//! most `max_tracked` keys and measured on `ctx.now_ns` in tumbling windows; each rule
//! reports once per key per window. Requests without a client address (offline lines with
//! no `peer`) are skipped by the per-client checks.

mod scanners;
mod windows;

use std::{
    hash::{BuildHasher, Hasher},
    net::IpAddr,
    num::NonZeroUsize,
};

use lru::LruCache;
use serde::Deserialize;

use super::{
    config::{invalid, Invalid},
    fields::Named,
    finding::Finding,
    hash_buf::Buffered,
    request::{Context, Request},
    rules,
};
use windows::{IdWindow, NotFoundWindow, Window};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AbuseConfig {
    /// Run this detector (default true).
    pub enabled: bool,
    /// Report known scanner and attack-tool user agents (default true).
    pub scanner_agent: bool,
    /// Report bursts of 404 answers per client (default true).
    pub not_found: bool,
    /// 404 answers to one client in a window above which it is reported (default 20).
    pub not_found_threshold: u32,
    /// Window for `not_found_threshold`, in seconds (default 60).
    pub not_found_window_secs: u64,
    /// Report sequential object ids per client and route (default true).
    pub id_enumeration: bool,
    /// Distinct ids on one route template in a window above which, when mostly consecutive,
    /// the client is reported (default 10).
    pub bola_threshold: usize,
    /// Window for `bola_threshold`, in seconds (default 60).
    pub bola_window_secs: u64,
    /// Report request-rate spikes per client and per route (default true).
    pub flood: bool,
    /// Requests per second from one client above which it is reported (default 100).
    pub client_rate: u64,
    /// Requests per second to one route template above which it is reported (default 1000).
    pub route_rate: u64,
    /// Window the rates are averaged over, in seconds (default 10).
    pub flood_window_secs: u64,
    /// Keys kept per table (clients, client-routes, routes); the least recently seen are
    /// dropped beyond it (default 65536).
    pub max_tracked: usize,
}

impl Default for AbuseConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            scanner_agent: true,
            not_found: true,
            not_found_threshold: 20,
            not_found_window_secs: 60,
            id_enumeration: true,
            bola_threshold: 10,
            bola_window_secs: 60,
            flood: true,
            client_rate: 100,
            route_rate: 1000,
            flood_window_secs: 10,
            max_tracked: 65_536,
        }
    }
}

/// Most keys a table may be configured for (memory stays in the tens of MiB).
const MAX_TRACKED: usize = 1 << 20;
/// Longest window accepted, in seconds (a day).
const MAX_WINDOW_SECS: u64 = 86_400;

impl AbuseConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        let field = |name: &str| format!("detect.abuse.{name}");
        for (name, secs) in [
            ("not_found_window_secs", self.not_found_window_secs),
            ("bola_window_secs", self.bola_window_secs),
            ("flood_window_secs", self.flood_window_secs),
        ] {
            if secs == 0 || secs > MAX_WINDOW_SECS {
                return Err(invalid(
                    field(name),
                    format!("must be between 1 and {MAX_WINDOW_SECS}"),
                ));
            }
        }
        if self.not_found_threshold == 0 {
            return Err(invalid(field("not_found_threshold"), "must be at least 1"));
        }
        if !(2..=windows::MAX_IDS - 1).contains(&self.bola_threshold) {
            return Err(invalid(
                field("bola_threshold"),
                format!("must be between 2 and {}", windows::MAX_IDS - 1),
            ));
        }
        for (name, rate) in [
            ("client_rate", self.client_rate),
            ("route_rate", self.route_rate),
        ] {
            if rate == 0 || rate > 10_000_000 {
                return Err(invalid(field(name), "must be between 1 and 10000000"));
            }
        }
        if self.max_tracked == 0 || self.max_tracked > MAX_TRACKED {
            return Err(invalid(
                field("max_tracked"),
                format!("must be between 1 and {MAX_TRACKED}"),
            ));
        }
        Ok(())
    }
}

pub struct AbuseDetector {
    config: AbuseConfig,
    /// Keys route templates; random per process so clients cannot aim collisions.
    hasher: std::collections::hash_map::RandomState,
    not_found: LruCache<IpAddr, NotFoundWindow>,
    ids: LruCache<(IpAddr, u64), IdWindow>,
    clients: LruCache<IpAddr, Window>,
    routes: LruCache<u64, Window>,
}

const NS: u64 = 1_000_000_000;

impl AbuseDetector {
    pub fn new(config: &AbuseConfig) -> Result<Self, Invalid> {
        config.validate()?;
        let cap = NonZeroUsize::new(config.max_tracked).unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            config: config.clone(),
            hasher: Default::default(),
            not_found: crate::lazy_lru::bounded(cap),
            ids: crate::lazy_lru::bounded(cap),
            clients: crate::lazy_lru::bounded(cap),
            routes: crate::lazy_lru::bounded(cap),
        })
    }

    pub fn inspect(&mut self, req: &Request<'_>, ctx: &Context<'_>, out: &mut Vec<Finding>) {
        if self.config.scanner_agent {
            if let Some(ua) = req.named(Named::UserAgent) {
                if let Some(tool) = scanners::scanner(ua) {
                    let evidence = format!("{tool}: {ua}");
                    out.push(Finding::new(
                        &rules::ABUSE_SCANNER_AGENT,
                        "header:user-agent",
                        &evidence,
                    ));
                }
            }
        }
        let now = ctx.now_ns;
        let route = route_key(&self.hasher, req.path);
        if self.config.flood {
            self.route_flood(req, route.hash, now, out);
        }
        let Some(ip) = ctx.client.ip else { return };
        if self.config.flood {
            let c = &self.config;
            let w = self.clients.get_or_insert_mut(ip, Window::default);
            if w.hit(
                now,
                c.flood_window_secs * NS,
                c.client_rate * c.flood_window_secs,
            ) {
                let evidence = format!(
                    "{} requests in {} s (limit {}/s)",
                    w.count, c.flood_window_secs, c.client_rate
                );
                out.push(Finding::new(
                    &rules::ABUSE_CLIENT_FLOOD,
                    "client",
                    &evidence,
                ));
            }
        }
        self.not_found(req, ip, now, out);
        if self.config.id_enumeration {
            if let Some(id) = route.id {
                let c = &self.config;
                let w = self
                    .ids
                    .get_or_insert_mut((ip, route.hash), IdWindow::default);
                if let Some(run) = w.hit(now, c.bola_window_secs * NS, c.bola_threshold, id) {
                    let evidence = format!(
                        "{}: {} sequential ids {}..{} in {} s",
                        template(req.path),
                        run.count,
                        run.first,
                        run.last,
                        c.bola_window_secs
                    );
                    out.push(Finding::new(
                        &rules::ABUSE_ID_ENUMERATION,
                        "route",
                        &evidence,
                    ));
                }
            }
        }
    }

    /// What only the answer tells (404 bursts), for a request judged before its answer.
    pub fn inspect_outcome(
        &mut self,
        req: &Request<'_>,
        ctx: &Context<'_>,
        out: &mut Vec<Finding>,
    ) {
        if let Some(ip) = ctx.client.ip {
            self.not_found(req, ip, ctx.now_ns, out);
        }
    }

    fn not_found(&mut self, req: &Request<'_>, ip: IpAddr, now: u64, out: &mut Vec<Finding>) {
        if !self.config.not_found || req.status != Some(404) {
            return;
        }
        let c = &self.config;
        let w = self
            .not_found
            .get_or_insert_mut(ip, NotFoundWindow::default);
        if let Some(evidence) = w.hit(
            now,
            c.not_found_window_secs * NS,
            c.not_found_threshold,
            req.path,
        ) {
            out.push(Finding::new(
                &rules::ABUSE_NOT_FOUND_BURST,
                "client",
                &evidence,
            ));
        }
    }

    fn route_flood(&mut self, req: &Request<'_>, route: u64, now: u64, out: &mut Vec<Finding>) {
        let c = &self.config;
        let w = self.routes.get_or_insert_mut(route, Window::default);
        if w.hit(
            now,
            c.flood_window_secs * NS,
            c.route_rate * c.flood_window_secs,
        ) {
            let evidence = format!(
                "{}: {} requests in {} s (limit {}/s)",
                template(req.path),
                w.count,
                c.flood_window_secs,
                c.route_rate
            );
            out.push(Finding::new(&rules::ABUSE_ROUTE_FLOOD, "route", &evidence));
        }
    }
}

/// Route identity without allocating: a hash of the path with numeric segments as `{id}`,
/// and the last numeric segment's value.
struct RouteKey {
    hash: u64,
    id: Option<u64>,
}

/// Path segments hashed at most (longer paths share a key by their first segments).
const MAX_SEGMENTS: usize = 32;

fn route_key<S: BuildHasher>(hasher: &S, path: &str) -> RouteKey
where
    S::Hasher: Clone,
{
    // Two writes a segment: gathered, and handed to the hasher in one (same key). The path
    // is cut at its `/` bytes (a byte loop, no character search set up per segment); each
    // segment is written as `str::hash` writes it (its bytes, then 0xff).
    let mut h = Buffered::new(hasher.build_hasher());
    let mut id = None;
    for seg in path.as_bytes().split(|&b| b == b'/').take(MAX_SEGMENTS) {
        match numeric_bytes(seg) {
            Some(n) => {
                id = Some(n);
                h.write_u8(0xff); // `{id}`: a byte no segment text hashes to on its own
            }
            None => {
                h.write(seg);
                h.write_u8(0xff);
            }
        }
    }
    RouteKey {
        hash: h.finish(),
        id,
    }
}

fn numeric(seg: &str) -> Option<u64> {
    numeric_bytes(seg.as_bytes())
}

/// A segment of 1 to 19 ASCII digits as a number (19 digits always fit in a `u64`).
fn numeric_bytes(seg: &[u8]) -> Option<u64> {
    if seg.is_empty() || seg.len() > 19 || !seg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(seg.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// `/users/1001/orders` → `/users/{id}/orders` (for evidence only).
fn template(path: &str) -> String {
    let mut s = String::with_capacity(path.len().min(96));
    for (i, seg) in path.split('/').take(MAX_SEGMENTS).enumerate() {
        if i > 0 {
            s.push('/');
        }
        if numeric(seg).is_some() {
            s.push_str("{id}");
        } else {
            s.extend(seg.chars().take(48));
        }
        if s.len() > 96 {
            break;
        }
    }
    s
}

#[cfg(test)]
mod tests;
