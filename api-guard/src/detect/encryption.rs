//! Encryption in transit: credentials and sensitive data that cross the network in plaintext
//! HTTP, and TLS connections that negotiated an old version or a cipher suite without
//! forward secrecy. Judged on both ends: requests local servers receive and calls local
//! clients make.
//!
//! "Crosses the network" means the peer is neither a loopback address nor the connection's
//! own local address: traffic to an address of one's own network namespace never leaves it
//! (the kernel routes it through `lo`, and picks that same address as the source), while a
//! peer in another namespace, pod or host is reached through an interface. An unknown peer
//! is not judged.
//!
//! Findings name where a secret was (header, cookie or parameter names, data classes), never
//! its value; the event carries the credential's hash like every other event. A plaintext
//! finding is reported once per `repeat_secs` for the same server, peer, rule and place, so
//! a chatty client cannot crowd its other findings out of its event budget.

use std::{
    collections::{hash_map::RandomState, HashSet, VecDeque},
    hash::BuildHasher,
    net::{IpAddr, SocketAddr},
    num::NonZeroUsize,
};

use lru::LruCache;

use serde::Deserialize;

use super::{
    config::{invalid, Invalid},
    finding::Finding,
    request::Request,
    rules,
};
use crate::{
    discover::sensitive::{
        classify, classify_name, BodyClasses, BodyScans, ClassCounts, DataClass, ScanCache,
    },
    handshake::{TlsSession, TlsVersion},
    identity::Identifier,
};

/// TLS connections remembered as already judged (their posture is reported once).
const MAX_REMEMBERED_CONNECTIONS: usize = 4096;
/// Places named in one finding's evidence.
const MAX_PLACES: usize = 8;
/// (server, peer, rule, place) combinations remembered to report each once per window.
const MAX_REPORTED: usize = 65_536;

/// The `[detect.encryption]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Run the encryption checks (default true).
    pub enabled: bool,
    /// Credentials (`Authorization`, the identity section's API key headers and
    /// parameters, session cookies) in plaintext HTTP across the network (default true).
    pub plaintext_credentials: bool,
    /// Sensitive data of `sensitive_classes` in plaintext HTTP bodies and queries across
    /// the network (default true).
    pub plaintext_sensitive_data: bool,
    /// Which data classes count (default every class but `email` and `phone`, which
    /// internal traffic carries all the time).
    pub sensitive_classes: Vec<DataClass>,
    /// Cookie names that carry sessions, besides the frameworks' own (`JSESSIONID`,
    /// `connect.sid`, …) and any name containing `session` (default none).
    pub session_cookies: Vec<String>,
    /// TLS connections below TLS 1.2, or whose cipher suite has no forward secrecy or a
    /// broken cipher (default true).
    pub weak_tls: bool,
    /// Bytes of each body scanned for sensitive data (default 16384).
    pub max_scan_bytes: usize,
    /// A plaintext finding is reported again for the same server, peer, rule and place only
    /// after this many seconds (default 600).
    pub repeat_secs: u64,
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            plaintext_credentials: true,
            plaintext_sensitive_data: true,
            sensitive_classes: vec![
                DataClass::PaymentCard,
                DataClass::NationalId,
                DataClass::ApiKey,
                DataClass::PrivateKey,
                DataClass::Jwt,
                DataClass::Password,
            ],
            session_cookies: Vec::new(),
            weak_tls: true,
            max_scan_bytes: 16 * 1024,
            repeat_secs: 600,
        }
    }
}

impl EncryptionConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.max_scan_bytes == 0 || self.max_scan_bytes > 1 << 20 {
            return Err(invalid(
                "detect.encryption.max_scan_bytes",
                "must be between 1 and 1048576",
            ));
        }
        if self.repeat_secs == 0 {
            return Err(invalid(
                "detect.encryption.repeat_secs",
                "must be at least 1",
            ));
        }
        if let Some(bad) = self
            .session_cookies
            .iter()
            .find(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(invalid(
                "detect.encryption.session_cookies",
                format!("{bad:?} is not a cookie name"),
            ));
        }
        Ok(())
    }
}

/// The connection an exchange travelled on.
#[derive(Debug, Clone, Copy)]
pub struct Channel<'a> {
    pub conn_id: u64,
    /// This host's end is the server (it accepted the connection).
    pub server: bool,
    /// The plaintext came from a TLS library hook.
    pub tls: bool,
    pub local: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    /// What the handshake negotiated, when it was seen.
    pub session: Option<TlsSession>,
    /// The exchange's body scans, shared with discovery; `None`: the bodies are scanned here.
    pub scans: Option<&'a BodyScans>,
}

impl Channel<'_> {
    /// Whether the peer is reached through the network (see the module documentation);
    /// `None` when the peer is unknown.
    pub fn crosses_network(&self) -> Option<bool> {
        let peer = self.peer?.ip().to_canonical();
        if peer.is_loopback() || peer.is_unspecified() {
            return Some(false);
        }
        let local: Option<IpAddr> = self.local.map(|l| l.ip().to_canonical());
        Some(local != Some(peer))
    }
}

/// The answer, when judging it.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    pub headers: &'a crate::http::Headers,
    pub body: &'a [u8],
}

pub struct EncryptionDetector {
    config: EncryptionConfig,
    session_cookies: Vec<String>,
    judged: HashSet<u64>,
    judged_order: VecDeque<u64>,
    /// When each (server, peer, rule, place) was last reported, by a keyed hash.
    reported: LruCache<u64, u64>,
    hasher: RandomState,
    /// Bodies answered again and again are scanned once.
    scans: ScanCache,
}

impl EncryptionDetector {
    pub fn new(config: &EncryptionConfig) -> Result<Self, Invalid> {
        config.validate()?;
        Ok(Self {
            config: config.clone(),
            session_cookies: config
                .session_cookies
                .iter()
                .map(|n| n.to_ascii_lowercase())
                .collect(),
            judged: HashSet::new(),
            judged_order: VecDeque::new(),
            reported: crate::lazy_lru::bounded(
                NonZeroUsize::new(MAX_REPORTED).unwrap_or(NonZeroUsize::MIN),
            ),
            hasher: RandomState::new(),
            scans: ScanCache::default(),
        })
    }

    /// The request side: credentials and sensitive data sent in plaintext, and the posture
    /// of the connection's TLS (once per connection). `ids` names the API key headers and
    /// parameters.
    pub fn inspect_request(
        &mut self,
        ch: &Channel,
        req: &Request<'_>,
        ids: &Identifier,
        now_ns: u64,
        out: &mut Vec<Finding>,
    ) {
        if ch.tls {
            return self.inspect_session(ch, out);
        }
        if ch.crosses_network() != Some(true) {
            return;
        }
        let first = out.len();
        if self.config.plaintext_credentials {
            let places = self.credentials(req, ids);
            // (Most requests carry none: no call made for them.)
            if !places.is_empty() {
                out.extend(credential_finding(&places));
            }
        }
        if self.config.plaintext_sensitive_data {
            let mut counts = ClassCounts::default();
            let mut location = None;
            if let Some(q) = req.query {
                self.scan_query(q, ids, &mut counts);
                location = self.reportable(&counts).then_some("query");
            }
            // Most requests have no body: no type to read, nothing to scan or add.
            if !req.body.is_empty() {
                let json = req
                    .media_type()
                    .is_some_and(|ct| contains_ignore_case(ct, b"json"));
                let shared = ch.scans.map(|s| &s.request);
                counts.merge(&self.scan_body(req.body, json, shared));
            }
            if location.is_none() && self.reportable(&counts) {
                location = Some("body");
            }
            if let Some(location) = location {
                out.push(self.sensitive_finding(location, &counts));
            }
        }
        // Most messages have no finding: nothing to look up.
        if out.len() > first {
            self.keep_new(ch, now_ns, first, out);
        }
    }

    /// The response side: session cookies set and sensitive data answered in plaintext.
    pub fn inspect_response(
        &mut self,
        ch: &Channel,
        resp: &Response<'_>,
        now_ns: u64,
        out: &mut Vec<Finding>,
    ) {
        if ch.tls || ch.crosses_network() != Some(true) {
            return;
        }
        let first = out.len();
        let (credentials, sensitive) = (
            self.config.plaintext_credentials,
            self.config.plaintext_sensitive_data,
        );
        // The session cookies the answer sets and whether its body is JSON: `Headers::values`
        // passes over other fields by their length alone, two such walks cost less than one
        // that cuts every field out as text.
        let mut places: Vec<String> = Vec::new();
        if credentials {
            for value in resp.headers.values("set-cookie") {
                let cookie = value.split(';').next().unwrap_or("");
                let cookie_name = cookie.split('=').next().unwrap_or("").trim();
                if self.is_session_cookie(cookie_name) {
                    push_place(&mut places, format!("set-cookie:{cookie_name}"));
                }
            }
        }
        // (An empty body is not scanned whatever its type.)
        let json = sensitive
            && !resp.body.is_empty()
            && resp
                .headers
                .values("content-type")
                .any(|v| contains_ignore_case(v, b"json"));
        if credentials && !places.is_empty() {
            out.extend(credential_finding(&places));
        }
        if sensitive {
            let shared = ch.scans.map(|s| &s.response);
            let counts = self.scan_body(resp.body, json, shared);
            if self.reportable(&counts) {
                out.push(self.sensitive_finding("response_body", &counts));
            }
        }
        // Most messages have no finding: nothing to look up.
        if out.len() > first {
            self.keep_new(ch, now_ns, first, out);
        }
    }

    /// Drops the findings from `out[first..]` reported for the same server, peer, rule and
    /// place less than `repeat_secs` ago (by monotonic `now_ns`).
    fn keep_new(&mut self, ch: &Channel, now_ns: u64, first: usize, out: &mut Vec<Finding>) {
        if out.len() <= first {
            return;
        }
        let window = self.config.repeat_secs.saturating_mul(1_000_000_000);
        // The server's end is stable (address and port); the client's port is not.
        let (server, client) = match (ch.server, ch.local, ch.peer) {
            (true, local, peer) => (local, peer.map(|p| p.ip())),
            (false, local, peer) => (peer, local.map(|l| l.ip())),
        };
        let mut i = first;
        while i < out.len() {
            let f = &out[i];
            let key =
                self.hasher
                    .hash_one((ch.server, server, client, f.rule_id, f.location.as_str()));
            let fresh = match self.reported.get(&key) {
                Some(&at) => now_ns.saturating_sub(at) >= window,
                None => true,
            };
            if fresh {
                self.reported.put(key, now_ns);
                i += 1;
            } else {
                out.remove(i);
            }
        }
    }

    /// A TLS connection below 1.2 or with a weak suite, reported on its first judged exchange.
    fn inspect_session(&mut self, ch: &Channel, out: &mut Vec<Finding>) {
        let Some(s) = ch.session else {
            return;
        };
        if !self.config.weak_tls || !self.first_time(ch.conn_id) {
            return;
        }
        if s.version < TlsVersion::TLS1_2 {
            out.push(Finding::new(
                &rules::ENCRYPTION_WEAK_TLS_VERSION,
                "tls",
                &format!("{} negotiated", s.version.as_str()),
            ));
        }
        let kx = s.cipher.key_exchange();
        let no_fs = kx.forward_secrecy() == Some(false);
        if no_fs || s.cipher.broken_bulk() == Some(true) {
            let name = s.cipher.name().unwrap_or("unknown suite");
            let why = if no_fs {
                "no forward secrecy"
            } else {
                "broken cipher"
            };
            out.push(Finding::new(
                &rules::ENCRYPTION_WEAK_CIPHER,
                "tls",
                &format!("{name} ({why})"),
            ));
        }
    }

    fn first_time(&mut self, conn_id: u64) -> bool {
        if !self.judged.insert(conn_id) {
            return false;
        }
        if self.judged_order.len() >= MAX_REMEMBERED_CONNECTIONS {
            if let Some(old) = self.judged_order.pop_front() {
                self.judged.remove(&old);
            }
        }
        self.judged_order.push_back(conn_id);
        true
    }

    /// Where the request carries credentials: `header:NAME (SCHEME)`, `cookie:NAME`,
    /// `query:NAME` (names only).
    fn credentials(&self, req: &Request<'_>, ids: &Identifier) -> Vec<String> {
        let mut places = Vec::new();
        for (name, value) in req.fields() {
            // Most headers are none of these: compared without a lower-case copy.
            let is = |n: &str| name.eq_ignore_ascii_case(n);
            let api_key = || ids.api_key_headers.iter().any(|h| is(h));
            if !(is("authorization") || is("proxy-authorization") || is("cookie") || api_key()) {
                continue;
            }
            let lower = name.to_ascii_lowercase();
            if lower == "authorization" || lower == "proxy-authorization" {
                let scheme = value.split_ascii_whitespace().next().unwrap_or("");
                let known = scheme.len() <= 16
                    && !scheme.is_empty()
                    && scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-');
                let scheme = if known {
                    scheme.to_ascii_lowercase()
                } else {
                    "unknown".into()
                };
                push_place(&mut places, format!("header:{lower} ({scheme})"));
            } else if ids.api_key_headers.contains(&lower) && !value.trim().is_empty() {
                push_place(&mut places, format!("header:{lower}"));
            } else if lower == "cookie" {
                for pair in value.split(';') {
                    let cookie_name = pair.split('=').next().unwrap_or("").trim();
                    if self.is_session_cookie(cookie_name) {
                        push_place(&mut places, format!("cookie:{cookie_name}"));
                    }
                }
            }
        }
        if let Some(q) = req.query {
            for pair in q.split('&') {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                if !value.is_empty() && ids.api_key_params.iter().any(|p| p == name) {
                    push_place(&mut places, format!("query:{name}"));
                }
            }
        }
        places
    }

    fn is_session_cookie(&self, name: &str) -> bool {
        if name.is_empty() || name.len() > 128 {
            return false;
        }
        let lower = name.to_ascii_lowercase();
        super::injection::session::session_name(name).is_some()
            || lower.contains("session")
            || self.session_cookies.contains(&lower)
    }

    /// The classes in a query's values and names, API key parameters aside (they are
    /// credentials, reported as such).
    fn scan_query(&self, query: &str, ids: &Identifier, counts: &mut ClassCounts) {
        for pair in query.split('&').take(256) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if ids.api_key_params.iter().any(|p| p == name) {
                continue;
            }
            if let Some(class) = classify_name(name) {
                if !value.is_empty() {
                    counts.add(class, 1);
                }
            }
            classify(value, counts);
        }
    }

    /// A body's classes (read as JSON, unless it is not one complete document within the
    /// limit: then as text), from its scan shared with discovery when there is one.
    fn scan_body(&mut self, body: &[u8], json: bool, shared: Option<&BodyClasses>) -> ClassCounts {
        // Most requests have none: nothing to scan, share or cache.
        if body.is_empty() {
            return ClassCounts::default();
        }
        let max = self.config.max_scan_bytes;
        match shared {
            Some(shared) => shared.get_cached(body, json, max, &mut self.scans),
            None => self.scans.scan(body, json, max),
        }
    }

    #[inline]
    fn reportable(&self, counts: &ClassCounts) -> bool {
        // Most messages hold no class at all: no walk over the classes for them.
        !counts.is_empty()
            && counts
                .iter()
                .any(|(c, _)| self.config.sensitive_classes.contains(&c))
    }

    fn sensitive_finding(&self, location: &str, counts: &ClassCounts) -> Finding {
        let classes: Vec<&str> = counts
            .iter()
            .filter(|(c, _)| self.config.sensitive_classes.contains(c))
            .map(|(c, _)| c.as_str())
            .collect();
        Finding::new(
            &rules::ENCRYPTION_PLAINTEXT_SENSITIVE_DATA,
            location,
            &classes.join(", "),
        )
    }
}

/// One finding for every credential place of a message: located at the first one, the
/// evidence lists them all (names and schemes only).
/// Whether `hay` holds `needle` (lower case ASCII) in any case, without a lowered copy:
/// compared only where its first letter is (this runs on every plaintext response).
fn contains_ignore_case(hay: &str, needle: &[u8]) -> bool {
    let (hay, Some(&first)) = (hay.as_bytes(), needle.first()) else {
        return true;
    };
    // Short values (a media type): a plain loop costs less than setting up a vector search.
    if hay.len() < 32 {
        // The first letter alone turns most windows away.
        return hay
            .windows(needle.len())
            .any(|w| w[0].to_ascii_lowercase() == first && w.eq_ignore_ascii_case(needle));
    }
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), hay).any(|i| {
        hay.get(i..i + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(needle))
    })
}

fn credential_finding(places: &[String]) -> Option<Finding> {
    let first = places.first()?;
    let location = first.split(' ').next().unwrap_or(first);
    Some(Finding::new(
        &rules::ENCRYPTION_PLAINTEXT_CREDENTIAL,
        location,
        &places.join(", "),
    ))
}

fn push_place(places: &mut Vec<String>, place: String) {
    if places.len() < MAX_PLACES && !places.contains(&place) {
        places.push(place);
    }
}

#[cfg(test)]
mod tests;
