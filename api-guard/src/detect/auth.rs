//! Authentication behaviour: missing credentials where they are usual, keys shared across
//! clients, bursts of 401/403.
//!
//! All state lives in LRU tables of at most `max_tracked` entries each, and every entry has
//! a fixed size, so memory is bounded whatever the traffic; time is the engine's monotonic
//! clock. Route and credential keys are stored as 64-bit keyed hashes, not as text.

use std::{
    fmt::Write as _,
    hash::{BuildHasher, Hash, Hasher, RandomState},
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
    inputs::{InputLimits, Inputs, Source},
    request::{Context, Request},
    rules,
};

const NS_PER_SEC: u64 = 1_000_000_000;
/// Once a route has this many samples its counts are halved, so the authenticated share
/// follows changes in the API instead of being fixed by its first hours.
const ROUTE_DECAY_AT: u32 = 10_000;
/// Path segments and bytes of a route kept for its key and evidence.
const MAX_ROUTE_SEGMENTS: usize = 32;
const MAX_ROUTE_BYTES: usize = 256;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Run this detector (default true).
    pub enabled: bool,
    /// Report requests without credentials to routes that normally carry them (default true).
    pub missing_credentials: bool,
    /// Requests a route needs before it is judged (default 20).
    pub min_samples: u32,
    /// Share of a route's requests with credentials above which one without is reported
    /// (default 0.95).
    pub min_authenticated_ratio: f64,
    /// Report credentials used from many client addresses (default true).
    pub key_sharing: bool,
    /// Distinct client addresses one credential may use within `window_secs` (default 5).
    pub max_clients_per_credential: usize,
    /// Window for `max_clients_per_credential`, in seconds (default 600).
    pub window_secs: u64,
    /// Report bursts of 401/403 answers to one client (default true).
    pub credential_stuffing: bool,
    /// 401/403 answers one client may get within `failure_window_secs` (default 10).
    pub failure_threshold: u32,
    /// Window for `failure_threshold`, in seconds (default 60).
    pub failure_window_secs: u64,
    /// Distinct client addresses whose logins to one account may fail within
    /// `failure_window_secs` across the cluster (default 10; `[cluster]` only).
    pub max_clients_per_username: usize,
    /// Entries per table (routes, credentials, clients); the least recently seen are
    /// dropped beyond it (default 65536).
    pub max_tracked: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            missing_credentials: true,
            min_samples: 20,
            min_authenticated_ratio: 0.95,
            key_sharing: true,
            max_clients_per_credential: 5,
            window_secs: 600,
            credential_stuffing: true,
            failure_threshold: 10,
            failure_window_secs: 60,
            max_clients_per_username: 10,
            max_tracked: 65_536,
        }
    }
}

impl AuthConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        let range = |name: &str, value: u64, max: u64| {
            if value == 0 || value > max {
                Err(invalid(
                    format!("detect.auth.{name}"),
                    format!("must be between 1 and {max}"),
                ))
            } else {
                Ok(())
            }
        };
        range("min_samples", self.min_samples.into(), 1_000_000)?;
        range(
            "max_clients_per_credential",
            self.max_clients_per_credential as u64,
            1024,
        )?;
        range("window_secs", self.window_secs, 7 * 86_400)?;
        range(
            "failure_threshold",
            self.failure_threshold.into(),
            1_000_000,
        )?;
        range("failure_window_secs", self.failure_window_secs, 7 * 86_400)?;
        range(
            "max_clients_per_username",
            self.max_clients_per_username as u64,
            1024,
        )?;
        range("max_tracked", self.max_tracked as u64, 1 << 24)?;
        let r = self.min_authenticated_ratio;
        if !(r > 0.0 && r <= 1.0) {
            return Err(invalid(
                "detect.auth.min_authenticated_ratio",
                "must be above 0 and at most 1",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct RouteStats {
    total: u32,
    authenticated: u32,
}

#[derive(Debug, Default)]
struct CredentialUse {
    /// Addresses seen within the window with when last seen; at most the limit plus one.
    clients: Vec<(IpAddr, u64)>,
    fired_at: Option<u64>,
}

#[derive(Debug)]
struct Failures {
    window_start: u64,
    count: u32,
    fired: bool,
}

pub struct AuthDetector {
    config: AuthConfig,
    hasher: RandomState,
    routes: LruCache<u64, RouteStats>,
    credentials: LruCache<u64, CredentialUse>,
    failures: LruCache<IpAddr, Failures>,
}

impl AuthDetector {
    pub fn new(config: &AuthConfig) -> Result<Self, Invalid> {
        config.validate()?;
        let cap = NonZeroUsize::new(config.max_tracked)
            .ok_or_else(|| invalid("detect.auth.max_tracked", "must be at least 1"))?;
        Ok(Self {
            config: config.clone(),
            hasher: RandomState::new(),
            routes: crate::lazy_lru::bounded(cap),
            credentials: crate::lazy_lru::bounded(cap),
            failures: crate::lazy_lru::bounded(cap),
        })
    }

    pub fn inspect(&mut self, req: &Request<'_>, ctx: &Context<'_>, out: &mut Vec<Finding>) {
        if self.config.missing_credentials {
            self.missing_credentials(req, ctx, out);
        }
        if self.config.key_sharing {
            self.key_sharing(ctx, out);
        }
        if self.config.credential_stuffing {
            self.credential_stuffing(req, ctx, out);
        }
    }

    /// What only the answer tells (401/403 bursts), for a request judged before its answer.
    pub fn inspect_outcome(
        &mut self,
        req: &Request<'_>,
        ctx: &Context<'_>,
        out: &mut Vec<Finding>,
    ) {
        if self.config.credential_stuffing {
            self.credential_stuffing(req, ctx, out);
        }
    }

    fn missing_credentials(
        &mut self,
        req: &Request<'_>,
        ctx: &Context<'_>,
        out: &mut Vec<Finding>,
    ) {
        // Hosts are almost always sent in lower case already: no copy for them.
        let host = req.named(Named::Host).unwrap_or("").trim();
        let lower;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = host.to_ascii_lowercase();
            lower.as_str()
        } else {
            host
        };
        let key = route_key(&self.hasher, host, req.method, req.path);
        let stats = self.routes.get_or_insert_mut(key, RouteStats::default);
        let authenticated = ctx.client.credential.is_some();
        if !authenticated
            && stats.total >= self.config.min_samples
            && f64::from(stats.authenticated)
                >= self.config.min_authenticated_ratio * f64::from(stats.total)
        {
            let share = u64::from(stats.authenticated) * 100 / u64::from(stats.total);
            out.push(Finding::new(
                &rules::AUTH_MISSING_CREDENTIALS,
                "route",
                &format!(
                    "no credentials; {share}% of {} requests to {} {} had them",
                    stats.total,
                    req.method,
                    Route::of(req.path).as_str()
                ),
            ));
        }
        stats.total += 1;
        stats.authenticated += u32::from(authenticated);
        if stats.total >= ROUTE_DECAY_AT {
            stats.total /= 2;
            stats.authenticated /= 2;
        }
    }

    fn key_sharing(&mut self, ctx: &Context<'_>, out: &mut Vec<Finding>) {
        let (Some(credential), Some(ip)) = (&ctx.client.credential, ctx.client.ip) else {
            return;
        };
        let now = ctx.now_ns;
        let window = self.config.window_secs.saturating_mul(NS_PER_SEC);
        let max = self.config.max_clients_per_credential;
        let key = self.hasher.hash_one(&credential.hash);
        let entry = self
            .credentials
            .get_or_insert_mut(key, CredentialUse::default);
        entry
            .clients
            .retain(|&(_, seen)| now.saturating_sub(seen) < window);
        if let Some(c) = entry.clients.iter_mut().find(|(a, _)| *a == ip) {
            c.1 = now;
        } else if entry.clients.len() <= max {
            entry.clients.push((ip, now));
        } else if let Some(oldest) = entry.clients.iter_mut().min_by_key(|(_, seen)| *seen) {
            // Already over the limit: keep the newest addresses so the state stays current.
            *oldest = (ip, now);
        }
        let quiet = entry
            .fired_at
            .is_some_and(|at| now.saturating_sub(at) < window);
        if entry.clients.len() > max && !quiet {
            entry.fired_at = Some(now);
            out.push(Finding::new(
                &rules::AUTH_KEY_SHARING,
                "client",
                &format!(
                    "credential {} used from {} client addresses within {} s",
                    credential.hash,
                    entry.clients.len(),
                    self.config.window_secs
                ),
            ));
        }
    }

    fn credential_stuffing(
        &mut self,
        req: &Request<'_>,
        ctx: &Context<'_>,
        out: &mut Vec<Finding>,
    ) {
        let (Some(401 | 403), Some(ip)) = (req.status, ctx.client.ip) else {
            return;
        };
        let now = ctx.now_ns;
        let window = self.config.failure_window_secs.saturating_mul(NS_PER_SEC);
        let entry = self.failures.get_or_insert_mut(ip, || Failures {
            window_start: now,
            count: 0,
            fired: false,
        });
        if now.saturating_sub(entry.window_start) >= window {
            *entry = Failures {
                window_start: now,
                count: 0,
                fired: false,
            };
        }
        entry.count = entry.count.saturating_add(1);
        if entry.count > self.config.failure_threshold && !entry.fired {
            entry.fired = true;
            let elapsed = now.saturating_sub(entry.window_start) / NS_PER_SEC;
            out.push(Finding::new(
                &rules::AUTH_CREDENTIAL_STUFFING,
                "client",
                &format!(
                    "{} 401/403 responses in {elapsed} s (limit {} in {} s)",
                    entry.count, self.config.failure_threshold, self.config.failure_window_secs
                ),
            ));
        }
    }
}

/// A failed login: the answer is 401 or 403 (the test of `auth.credential_stuffing`).
pub fn is_failed_login(req: &Request<'_>) -> bool {
    matches!(req.status, Some(401 | 403))
}

/// Form fields and top-level JSON members that name the account a login is for.
const LOGIN_FIELDS: &[&str] = &[
    "username",
    "user",
    "login",
    "email",
    "user_name",
    "userName",
    "userid",
    "user_id",
    "account",
];
/// Longest account name hashed (longer ones are not names).
const MAX_LOGIN_BYTES: usize = 256;

/// The account a login request names, as a hash ("sha256:" + 16 hex digits of the trimmed,
/// lowercased name): the user of `Authorization: Basic`, else a [`LOGIN_FIELDS`] field of a
/// form or JSON body (parsed within `limits`). The name itself is never kept.
pub fn login_account(req: &Request<'_>, limits: &InputLimits) -> Option<String> {
    if let Some(user) = basic_user(req) {
        return hashed_login(&user);
    }
    let inputs = Inputs::extract(req, limits);
    let value = inputs.values.iter().find_map(|i| {
        let name = match i.source {
            Source::Form => i.name.as_ref(),
            Source::Json => i.name.strip_prefix("$.")?,
            _ => return None,
        };
        LOGIN_FIELDS.contains(&name).then_some(&i.value)
    })?;
    hashed_login(value)
}

/// The user part of `Authorization: Basic base64(user:password)`.
fn basic_user(req: &Request<'_>) -> Option<String> {
    use base64::Engine as _;
    let (scheme, token) = req
        .named(Named::Authorization)?
        .trim()
        .split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let user = decoded.split(|&b| b == b':').next()?;
    Some(String::from_utf8_lossy(user).into_owned())
}

fn hashed_login(name: &str) -> Option<String> {
    use sha2::Digest as _;
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_LOGIN_BYTES {
        return None;
    }
    let digest = sha2::Sha256::digest(name.to_lowercase().as_bytes());
    let mut out = String::with_capacity(23);
    out.push_str("sha256:");
    for b in &digest[..8] {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    Some(out)
}

/// The path with id-like segments (numbers, UUIDs, long hex) replaced by `{id}`, so
/// `/users/42` and `/users/43` count as one route. Bounded to the first segments and bytes.
#[cfg(test)]
fn route(path: &str) -> String {
    Route::of(path).as_str().to_owned()
}

/// A route built in place (it is bounded): no allocation per request.
struct Route {
    /// A `/` may follow the last segment that fits (the next one did not).
    buf: [u8; MAX_ROUTE_BYTES + 1],
    len: usize,
}

/// The key of `host`, `method` and the route of `path` in `hasher`'s tables: the hash of
/// the tuple `(host, method, route)`, the route's text fed as it is made (no copy of it, no
/// UTF-8 check) and every part gathered into one write.
fn route_key(hasher: &RandomState, host: &str, method: &str, path: &str) -> u64 {
    let mut h = Buffered::new(hasher.build_hasher());
    (host, method).hash(&mut h);
    route_pieces(path, |piece| h.write(piece));
    // What ends a `str`'s hash (as in the tuple's last field).
    h.write_u8(0xff);
    h.finish()
}

/// The route of `path` (see [`Route`]), piece by piece. The path is cut at its `/` bytes
/// (a byte loop: a `str::split('/')` set up a character search per segment, ~95
/// instructions a request here); `/` is ASCII, so every piece is whole UTF-8 text.
fn route_pieces(path: &str, mut emit: impl FnMut(&[u8])) {
    let mut len = 0;
    for (i, segment) in path.as_bytes().split(|&b| b == b'/').enumerate() {
        if i == MAX_ROUTE_SEGMENTS {
            break;
        }
        if i > 0 {
            emit(b"/");
            len += 1;
        }
        let segment: &[u8] = if is_id(segment) { b"{id}" } else { segment };
        if len + segment.len() > MAX_ROUTE_BYTES {
            break;
        }
        emit(segment);
        len += segment.len();
    }
}

impl Route {
    fn of(path: &str) -> Self {
        let mut out = Self {
            buf: [0; MAX_ROUTE_BYTES + 1],
            len: 0,
        };
        route_pieces(path, |piece| out.push(piece));
        out
    }

    /// Appends `s` (callers keep within the buffer; past it, `s` is dropped).
    fn push(&mut self, s: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.len..self.len + s.len()) {
            dst.copy_from_slice(s);
            self.len += s.len();
        }
    }

    fn as_str(&self) -> &str {
        // Whole segments of a `str` (cut at ASCII `/`) and ASCII separators only: always
        // UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

fn is_id(b: &[u8]) -> bool {
    let hex = |c: &u8| c.is_ascii_hexdigit();
    let numeric = !b.is_empty() && b.iter().all(u8::is_ascii_digit);
    let uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => hex(c),
        });
    // Long hex runs are object ids or hashes; a digit keeps words like `deadbeef` apart.
    let hex_id = b.len() >= 8 && b.iter().all(hex) && b.iter().any(u8::is_ascii_digit);
    numeric || uuid || hex_id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{ClientIdentity, Credential, CredentialScheme};

    const SEC: u64 = NS_PER_SEC;

    struct Call<'a> {
        path: &'a str,
        ip: u32,
        credential: Option<&'a str>,
        status: Option<u16>,
        at: u64,
    }

    impl Default for Call<'_> {
        fn default() -> Self {
            Self {
                path: "/api/orders",
                ip: 1,
                credential: None,
                status: Some(200),
                at: 0,
            }
        }
    }

    fn send(d: &mut AuthDetector, call: Call<'_>) -> Vec<Finding> {
        let headers = crate::http::Headers::from([("Host", "API.example.com")]);
        let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + call.ip));
        let client = ClientIdentity {
            ip: Some(ip),
            via_proxy: None,
            credential: call.credential.map(|h| Credential {
                scheme: CredentialScheme::Bearer,
                hash: h.to_string(),
                jwt_subject: None,
            }),
        };
        let req = Request {
            method: "GET",
            path: call.path,
            query: None,
            version: crate::http::HttpVersion::Http11,
            anomalies: &[],
            request_line_invalid: false,
            headers: &headers,
            body: b"",
            body_len: 0,
            head_len: 0,
            authority: None,
            peer: Some(ip),
            status: call.status,
            fields: None,
        };
        let ctx = Context {
            now_ns: call.at,
            client: &client,
        };
        let mut out = Vec::new();
        d.inspect(&req, &ctx, &mut out);
        out
    }

    fn only(check: &str) -> AuthDetector {
        AuthDetector::new(&AuthConfig {
            missing_credentials: check == "missing",
            key_sharing: check == "sharing",
            credential_stuffing: check == "stuffing",
            ..AuthConfig::default()
        })
        .unwrap()
    }

    const CRED: &str = "sha256:0123456789abcdef";

    #[test]
    fn routes_template_ids() {
        for (path, want) in [
            ("/users/42/orders/7", "/users/{id}/orders/{id}"),
            ("/docs/550e8400-e29b-41d4-a716-446655440000", "/docs/{id}"),
            ("/blobs/9f86d081884c7d65", "/blobs/{id}"),
            ("/api/v2/deadbeef/status", "/api/v2/deadbeef/status"),
            ("/v1/users", "/v1/users"),
            ("/", "/"),
            ("", ""),
        ] {
            assert_eq!(route(path), want, "{path}");
        }
        let long = "/a".repeat(1000);
        assert_eq!(route(&long).split('/').count(), MAX_ROUTE_SEGMENTS);
        assert!(route(&format!("/{}", "x".repeat(1000))).len() <= MAX_ROUTE_BYTES);
        assert!(route(&"/é".repeat(500)).len() <= MAX_ROUTE_BYTES);
    }

    /// The byte split makes the route `str::split('/')` made (the code it replaced).
    #[test]
    fn routes_cut_at_bytes_are_the_ones_cut_at_chars() {
        fn by_chars(path: &str) -> String {
            let (mut out, mut len) = (String::new(), 0);
            for (i, segment) in path.split('/').enumerate() {
                if i == MAX_ROUTE_SEGMENTS {
                    break;
                }
                if i > 0 {
                    out.push('/');
                    len += 1;
                }
                let segment = if is_id(segment.as_bytes()) {
                    "{id}"
                } else {
                    segment
                };
                if len + segment.len() > MAX_ROUTE_BYTES {
                    break;
                }
                out.push_str(segment);
                len += segment.len();
            }
            out
        }
        const PIECES: &[&str] = &[
            "/",
            "/",
            "a",
            "42",
            "é",
            "9f86d081884c7d65",
            "users",
            "",
            "//",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "550e8400-e29b-41d4-a716-446655440000",
            "%2F",
            "€",
        ];
        let mut rng = crate::testutil::Rng(0x05e9_2071);
        for _ in 0..20_000 {
            let path = rng.joined(PIECES, 60);
            assert_eq!(route(&path), by_chars(&path), "{path:?}");
        }
    }

    #[test]
    fn route_keys_are_the_hash_of_host_method_and_route() {
        let hasher = RandomState::new();
        let long_host = "h".repeat(200);
        for (host, method, path) in [
            ("api.example", "GET", "/users/42/orders/7"),
            ("", "", ""),
            ("a", "POST", "/"),
            (&long_host, "GET", "/v1/users"),
            ("a", "GET", &"/a".repeat(1000)),
            ("a", "GET", &format!("/{}", "x".repeat(1000))),
            ("a", "GET", &"/é".repeat(500)),
        ] {
            assert_eq!(
                route_key(&hasher, host, method, path),
                hasher.hash_one((host, method, route(path).as_str())),
                "{path}"
            );
        }
    }

    #[test]
    fn missing_credentials_on_an_authenticated_route() {
        let mut d = only("missing");
        for i in 0..20 {
            let path = format!("/api/orders/{i}");
            let call = Call {
                path: &path,
                credential: Some(CRED),
                ..Call::default()
            };
            assert!(send(&mut d, call).is_empty());
        }
        let f = send(
            &mut d,
            Call {
                path: "/api/orders/99",
                ..Call::default()
            },
        );
        assert_eq!(
            f,
            vec![Finding::new(
                &rules::AUTH_MISSING_CREDENTIALS,
                "route",
                "no credentials; 100% of 20 requests to GET /api/orders/{id} had them"
            )]
        );
        // Another route, and another host, have their own history.
        assert!(send(
            &mut d,
            Call {
                path: "/api/public",
                ..Call::default()
            }
        )
        .is_empty());
    }

    #[test]
    fn missing_credentials_needs_samples_and_ratio() {
        let mut d = only("missing");
        // 19 authenticated requests: not enough to judge.
        for _ in 0..19 {
            send(
                &mut d,
                Call {
                    credential: Some(CRED),
                    ..Call::default()
                },
            );
        }
        assert!(send(&mut d, Call::default()).is_empty());
        // Now 20 samples but 19/20 = 95% authenticated: still at the ratio, fires.
        assert_eq!(send(&mut d, Call::default()).len(), 1);
        // 19/21 < 95%: a route with some anonymous traffic is left alone.
        assert!(send(&mut d, Call::default()).is_empty());
        // A route that is mostly anonymous never fires.
        let mut d = only("missing");
        for i in 0..100 {
            let credential = (i % 2 == 0).then_some(CRED);
            let f = send(
                &mut d,
                Call {
                    credential,
                    ..Call::default()
                },
            );
            assert!(f.is_empty());
        }
    }

    #[test]
    fn key_sharing_fires_once_per_window() {
        let mut d = only("sharing");
        for ip in 1..=5 {
            let f = send(
                &mut d,
                Call {
                    ip,
                    credential: Some(CRED),
                    at: ip as u64 * SEC,
                    ..Call::default()
                },
            );
            assert!(f.is_empty());
        }
        let f = send(
            &mut d,
            Call {
                ip: 6,
                credential: Some(CRED),
                at: 10 * SEC,
                ..Call::default()
            },
        );
        assert_eq!(
            f,
            vec![Finding::new(
                &rules::AUTH_KEY_SHARING,
                "client",
                "credential sha256:0123456789abcdef used from 6 client addresses within 600 s"
            )]
        );
        // More addresses in the same window: no repeat.
        for ip in 7..50 {
            let f = send(
                &mut d,
                Call {
                    ip,
                    credential: Some(CRED),
                    at: 20 * SEC,
                    ..Call::default()
                },
            );
            assert!(f.is_empty());
        }
        // A window after the finding, still shared: reported again.
        let f = send(
            &mut d,
            Call {
                ip: 50,
                credential: Some(CRED),
                at: 611 * SEC,
                ..Call::default()
            },
        );
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn key_sharing_forgets_old_addresses() {
        let mut d = only("sharing");
        // Six addresses, but each pair 700 s apart: never six within 600 s.
        for ip in 1..=12u32 {
            let f = send(
                &mut d,
                Call {
                    ip,
                    credential: Some(CRED),
                    at: u64::from(ip / 2) * 700 * SEC,
                    ..Call::default()
                },
            );
            assert!(f.is_empty(), "{ip}");
        }
        // One address many times, and requests without credentials, are not sharing.
        for i in 0..100 {
            assert!(send(
                &mut d,
                Call {
                    ip: 1,
                    credential: Some("sha256:1111111111111111"),
                    at: i * SEC,
                    ..Call::default()
                }
            )
            .is_empty());
            assert!(send(
                &mut d,
                Call {
                    ip: i as u32,
                    at: i * SEC,
                    ..Call::default()
                }
            )
            .is_empty());
        }
    }

    #[test]
    fn credential_stuffing_counts_failures_per_client_window() {
        let mut d = only("stuffing");
        for i in 0..10 {
            let status = Some(if i % 2 == 0 { 401 } else { 403 });
            assert!(send(
                &mut d,
                Call {
                    status,
                    at: i * SEC,
                    ..Call::default()
                }
            )
            .is_empty());
        }
        // Successes and other clients do not count.
        assert!(send(
            &mut d,
            Call {
                status: Some(200),
                at: 10 * SEC,
                ..Call::default()
            }
        )
        .is_empty());
        assert!(send(
            &mut d,
            Call {
                ip: 2,
                status: Some(401),
                at: 10 * SEC,
                ..Call::default()
            }
        )
        .is_empty());
        let f = send(
            &mut d,
            Call {
                status: Some(401),
                at: 12 * SEC,
                ..Call::default()
            },
        );
        assert_eq!(
            f,
            vec![Finding::new(
                &rules::AUTH_CREDENTIAL_STUFFING,
                "client",
                "11 401/403 responses in 12 s (limit 10 in 60 s)"
            )]
        );
        // Once per window, however many more failures.
        for i in 13..59 {
            assert!(send(
                &mut d,
                Call {
                    status: Some(401),
                    at: i * SEC,
                    ..Call::default()
                }
            )
            .is_empty());
        }
        // The window ends 60 s after its first failure; the next one starts from zero.
        for i in 0..11 {
            let f = send(
                &mut d,
                Call {
                    status: Some(403),
                    at: (60 + i) * SEC,
                    ..Call::default()
                },
            );
            assert_eq!(f.len(), usize::from(i == 10), "{i}");
        }
        // Unknown status (answer not seen) is not a failure.
        let mut d = only("stuffing");
        for i in 0..50 {
            assert!(send(
                &mut d,
                Call {
                    status: None,
                    at: i,
                    ..Call::default()
                }
            )
            .is_empty());
        }
    }

    #[test]
    fn tables_stay_within_max_tracked() {
        let mut d = AuthDetector::new(&AuthConfig {
            max_tracked: 1024,
            ..AuthConfig::default()
        })
        .unwrap();
        let mut paths = String::new();
        for i in 0..1_000_000u32 {
            paths.clear();
            paths.push_str("/r");
            paths.push_str(&i.to_string());
            paths.push('x');
            let hash = format!("sha256:{i:016x}");
            send(
                &mut d,
                Call {
                    path: &paths,
                    ip: i,
                    credential: Some(&hash),
                    status: Some(401),
                    at: u64::from(i),
                },
            );
        }
        assert_eq!(d.routes.len(), 1024);
        assert_eq!(d.credentials.len(), 1024);
        assert_eq!(d.failures.len(), 1024);
        assert_eq!(d.routes.cap().get(), 1024);
        // Per-entry state is bounded too: one credential from a million addresses.
        for i in 0..100_000u32 {
            send(
                &mut d,
                Call {
                    ip: i,
                    credential: Some(CRED),
                    at: u64::from(i),
                    ..Call::default()
                },
            );
        }
        let key = d.hasher.hash_one(CRED);
        assert_eq!(d.credentials.peek(&key).unwrap().clients.len(), 6);
    }

    fn login(headers: &[(&str, &str)], body: &[u8], status: Option<u16>) -> Option<String> {
        let headers = crate::http::Headers::from(headers);
        let req = Request {
            method: "POST",
            path: "/login",
            query: None,
            version: crate::http::HttpVersion::Http11,
            anomalies: &[],
            request_line_invalid: false,
            headers: &headers,
            body,
            body_len: body.len() as u64,
            head_len: 0,
            authority: None,
            peer: None,
            status,
            fields: None,
        };
        assert_eq!(is_failed_login(&req), matches!(status, Some(401 | 403)));
        login_account(&req, &InputLimits::default())
    }

    #[test]
    fn login_accounts_are_hashed_names() {
        let alice = hashed_login("alice").unwrap();
        assert_eq!(alice.len(), 23);
        assert!(alice.starts_with("sha256:"));
        // "alice:secret" and "Alice:other" name the same account.
        assert_eq!(
            login(
                &[("Authorization", "Basic YWxpY2U6c2VjcmV0")],
                b"",
                Some(401)
            ),
            Some(alice.clone())
        );
        assert_eq!(
            login(
                &[("authorization", "basic QWxpY2U6b3RoZXI=")],
                b"",
                Some(403)
            ),
            Some(alice.clone())
        );
        let form = [("Content-Type", "application/x-www-form-urlencoded")];
        assert_eq!(
            login(&form, b"password=hunter2&username=%20Alice%20", Some(401)),
            Some(alice.clone())
        );
        let json = [("Content-Type", "application/json")];
        for body in [
            &br#"{"password":"hunter2","email":"ALICE"}"#[..],
            br#"{"userName":"alice","remember":true}"#,
        ] {
            assert_eq!(login(&json, body, Some(200)), Some(alice.clone()));
        }
        // Nested, absent, empty, oversized or undecodable names are no account.
        for body in [
            &br#"{"user":{"name":"alice"}}"#[..],
            br#"{"password":"alice"}"#,
            br#"{"username":""}"#,
            b"not json",
        ] {
            assert_eq!(login(&json, body, Some(401)), None);
        }
        let long = format!("username={}", "a".repeat(300));
        assert_eq!(login(&form, long.as_bytes(), Some(401)), None);
        assert_eq!(
            login(&[("Authorization", "Basic !!!")], b"", Some(401)),
            None
        );
        assert_eq!(
            login(&[("Authorization", "Bearer abc")], b"", Some(401)),
            None
        );
        // Only the hash leaves: never the name or the password.
        assert_ne!(hashed_login("bob"), Some(alice));
    }

    #[test]
    fn config_is_validated_with_field_paths() {
        let err = |c: AuthConfig| AuthDetector::new(&c).err().unwrap().field;
        assert_eq!(
            err(AuthConfig {
                min_samples: 0,
                ..AuthConfig::default()
            }),
            "detect.auth.min_samples"
        );
        assert_eq!(
            err(AuthConfig {
                min_authenticated_ratio: 1.5,
                ..AuthConfig::default()
            }),
            "detect.auth.min_authenticated_ratio"
        );
        assert_eq!(
            err(AuthConfig {
                min_authenticated_ratio: f64::NAN,
                ..AuthConfig::default()
            }),
            "detect.auth.min_authenticated_ratio"
        );
        assert_eq!(
            err(AuthConfig {
                window_secs: 0,
                ..AuthConfig::default()
            }),
            "detect.auth.window_secs"
        );
        assert_eq!(
            err(AuthConfig {
                max_tracked: 0,
                ..AuthConfig::default()
            }),
            "detect.auth.max_tracked"
        );
        assert_eq!(
            err(AuthConfig {
                max_clients_per_credential: 5000,
                ..AuthConfig::default()
            }),
            "detect.auth.max_clients_per_credential"
        );
        assert_eq!(
            err(AuthConfig {
                max_clients_per_username: 0,
                ..AuthConfig::default()
            }),
            "detect.auth.max_clients_per_username"
        );
        let c: AuthConfig = toml::from_str("failure_threshold = 3\nkey_sharing = false").unwrap();
        assert_eq!(
            (c.failure_threshold, c.key_sharing, c.window_secs),
            (3, false, 600)
        );
        assert!(toml::from_str::<AuthConfig>("threshold = 3").is_err());
    }
}
