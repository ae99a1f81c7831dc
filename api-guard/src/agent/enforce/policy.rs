//! Rate-limit policies from the `[[enforce.policies]]` configuration.
//!
//! A policy selects requests (host, methods, path), groups them by a key (client address,
//! credential or route) and limits each group with its own GCRA [`Limiter`]. [`Policies::check`]
//! reports the policies a request exceeded; acting on that (logging, blocking the source for
//! `block_secs`) is the caller's job, so this module stays a pure function of its inputs and
//! the clock it is given.
//!
//! Everything a request contributes to a key is bounded (paths to 256 bytes, methods to 32,
//! keys per policy to an LRU of fixed size), since all of it is chosen by the client.

use std::{collections::HashMap, net::IpAddr, num::NonZeroUsize, sync::Arc};

use serde::Deserialize;

use super::{
    cluster_limit::{Answer, ClusterLimiter},
    limiter::Limiter,
};
use api_guard::{
    config::{invalid, Invalid},
    identity::ClientIdentity,
    text::truncate,
};

/// Longest policy name; names become metric label values.
const MAX_NAME_LEN: usize = 64;
/// Longest block, one year.
const MAX_BLOCK_SECS: u64 = 31_536_000;
/// Bytes of the request path kept in a `route` key.
const MAX_ROUTE_PATH: usize = 256;
/// Bytes of the request method kept in a `route` key (the longest registered method has 17).
const MAX_ROUTE_METHOD: usize = 32;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Unique, 1..=64 chars of `[A-Za-z0-9_.-]` (it becomes a metric label).
    pub name: String,
    /// What requests are grouped by; each group has its own limit.
    pub key: PolicyKey,
    /// Sustained requests (or tokens, see `unit`) per second per key, > 0 and finite.
    pub rate: f64,
    /// Requests (or tokens) per key allowed at once, >= 1.
    pub burst: u32,
    /// What is limited: `requests` (default) or `tokens` of LLM calls (reserved at the
    /// request as estimated prompt + `max_tokens`, reconciled with the actual usage).
    #[serde(default)]
    pub unit: PolicyUnit,
    /// What a breach asks for (default `log`).
    #[serde(default)]
    pub action: PolicyAction,
    /// How long `block` blocks the source (default 600 s; 1..=31536000).
    #[serde(default = "default_block_secs")]
    pub block_secs: u64,
    /// Which requests the policy applies to (default: all).
    #[serde(default, rename = "match")]
    pub matcher: RouteMatch,
    /// `node` (default): the limit holds on each node; `cluster`: for all nodes together
    /// (needs `[cluster]`).
    #[serde(default)]
    pub scope: PolicyScope,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyScope {
    #[default]
    Node,
    Cluster,
}

/// How cluster-scope limiters fall back and how often they sync (from `[cluster]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterParams {
    pub expected_nodes: u32,
    pub sync_ns: u64,
}

impl Default for ClusterParams {
    fn default() -> Self {
        Self {
            expected_nodes: 1,
            sync_ns: 100_000_000,
        }
    }
}

/// Units a cluster-scope key used since the last sync, for the cluster task.
#[derive(Debug, Clone)]
pub struct LimitUsage {
    policy_index: usize,
    pub policy: Arc<str>,
    key: Key,
    pub units: f64,
    /// Units per second and burst of the policy.
    pub rate: f64,
    pub burst: f64,
}

impl LimitUsage {
    /// The key as Redis sees it: a hash, never the address, credential hash or route.
    pub fn key_id(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.key.clone().display().as_bytes());
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Ten minutes: long enough to stop a burst of abuse, short enough that a false positive
/// heals by itself.
fn default_block_secs() -> u64 {
    600
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKey {
    /// The client address (requests without one are not counted).
    ClientIp,
    /// The hashed credential (requests without one are not counted).
    ApiKey,
    /// Method and path pattern (or request path when the policy has no pattern).
    Route,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyUnit {
    /// Every matching request counts one.
    #[default]
    Requests,
    /// LLM calls count their tokens (prompt + completion); other requests are not counted.
    Tokens,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyAction {
    /// Report the breach only.
    #[default]
    Log,
    /// Report it and block the source for `block_secs`.
    Block,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// Host, compared case-insensitively with the request's `Host` without its port.
    pub host: Option<String>,
    /// Methods matched (empty = any); case-sensitive, uppercase.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Exact path, or a prefix when it ends with `*` (`/api/*`); starts with `/`.
    pub path: Option<String>,
}

/// Checks every policy, naming the first offending field (e.g. "enforce.policies[2].rate").
pub fn validate(policies: &[PolicyConfig]) -> Result<(), Invalid> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, p) in policies.iter().enumerate() {
        let err =
            |field: &str, reason: String| invalid(format!("enforce.policies[{i}].{field}"), reason);
        if !valid_name(&p.name) {
            return Err(err(
                "name",
                format!(
                    "{:?} must be 1..={MAX_NAME_LEN} characters of A-Z a-z 0-9 _ . -",
                    p.name
                ),
            ));
        }
        if let Some(first) = names.insert(&p.name, i) {
            return Err(err(
                "name",
                format!(
                    "duplicate name {:?} (also enforce.policies[{first}])",
                    p.name
                ),
            ));
        }
        if !(p.rate.is_finite() && p.rate > 0.0) {
            return Err(err(
                "rate",
                format!("{} must be a finite number > 0", p.rate),
            ));
        }
        if p.burst == 0 {
            return Err(err("burst", "must be >= 1".into()));
        }
        if !(1..=MAX_BLOCK_SECS).contains(&p.block_secs) {
            return Err(err(
                "block_secs",
                format!("{} must be 1..={MAX_BLOCK_SECS}", p.block_secs),
            ));
        }
        let m = &p.matcher;
        if let Some(host) = &m.host {
            if let Some(reason) = host_problem(host) {
                return Err(err("match.host", format!("{host:?} {reason}")));
            }
        }
        for (k, method) in m.methods.iter().enumerate() {
            let upper = !method.is_empty()
                && method
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_');
            if !upper {
                return Err(err(
                    &format!("match.methods[{k}]"),
                    format!("{method:?} must be an uppercase HTTP method such as \"GET\""),
                ));
            }
        }
        if let Some(path) = &m.path {
            if !path.starts_with('/') {
                return Err(err("match.path", format!("{path:?} must start with `/`")));
            }
            if path.trim_end_matches('*').contains('*') || path.ends_with("**") {
                return Err(err(
                    "match.path",
                    format!("{path:?}: `*` is only allowed once, at the end"),
                ));
            }
        }
    }
    Ok(())
}

fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn host_problem(host: &str) -> Option<&'static str> {
    if host.is_empty() {
        Some("must not be empty")
    } else if host.bytes().any(|b| b.is_ascii_whitespace() || b == b'/') {
        Some("must be a host name, without spaces or `/`")
    } else if strip_port(host) != host || (!host.starts_with('[') && host.contains(':')) {
        Some("must not include a port (write IPv6 addresses in brackets)")
    } else {
        None
    }
}

/// One request as the policies see it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path without the query string (a `?…` suffix is ignored if present).
    pub path: &'a str,
    /// The `Host` header, port included or not.
    pub host: Option<&'a str>,
    pub client: &'a ClientIdentity,
}

impl<'a> Request<'a> {
    /// What policies see of `ex`'s request, sent by `client`.
    pub fn of(ex: &'a crate::exchange::Exchange, client: &'a ClientIdentity) -> Self {
        Self {
            method: &ex.http.method,
            path: &ex.http.path,
            host: ex.http.host.as_deref(),
            client,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    pub policy: Arc<str>,
    pub unit: PolicyUnit,
    pub action: PolicyAction,
    pub block_secs: u64,
    /// display form of the key: the IP, the credential hash ("sha256:…"), or "GET /login"
    pub key: String,
}

/// The limiter key of one request under one policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    Credential(String),
    Route(String),
}

impl Key {
    fn display(self) -> String {
        match self {
            Key::Ip(ip) => ip.to_string(),
            Key::Credential(hash) => hash,
            Key::Route(route) => route,
        }
    }
}

enum PathMatch {
    Exact(String),
    Prefix(String),
}

struct Policy {
    name: Arc<str>,
    key: PolicyKey,
    unit: PolicyUnit,
    action: PolicyAction,
    block_secs: u64,
    /// Lowercased.
    host: Option<String>,
    methods: Vec<String>,
    /// The configured pattern, as written (`/api/*`), for `route` keys.
    pattern: Option<String>,
    path: Option<PathMatch>,
    limiter: Limiter<Key>,
    /// `scope = "cluster"`: the limit for all nodes together (replaces `limiter`).
    cluster: Option<ClusterLimiter<Key>>,
    /// As configured, to recognise the policy on reload.
    config: PolicyConfig,
}

impl Policy {
    /// This policy's breach by `key`.
    fn breach(&self, key: &Key) -> Breach {
        Breach {
            policy: Arc::clone(&self.name),
            unit: self.unit,
            action: self.action,
            block_secs: self.block_secs,
            key: key.clone().display(),
        }
    }

    fn new(c: &PolicyConfig, max_keys_per_policy: NonZeroUsize, params: ClusterParams) -> Self {
        let pattern = c.matcher.path.clone();
        let path = pattern.as_ref().map(|p| match p.strip_suffix('*') {
            Some(prefix) => PathMatch::Prefix(prefix.to_string()),
            None => PathMatch::Exact(p.clone()),
        });
        Policy {
            name: Arc::from(c.name.as_str()),
            key: c.key,
            unit: c.unit,
            action: c.action,
            block_secs: c.block_secs,
            host: c.matcher.host.as_ref().map(|h| h.to_ascii_lowercase()),
            methods: c.matcher.methods.clone(),
            pattern,
            path,
            limiter: Limiter::new(c.rate, c.burst, max_keys_per_policy),
            cluster: (c.scope == PolicyScope::Cluster).then(|| {
                ClusterLimiter::new(
                    c.rate,
                    c.burst,
                    params.expected_nodes,
                    params.sync_ns,
                    max_keys_per_policy,
                )
            }),
            config: c.clone(),
        }
    }

    fn matches(&self, method: &str, path: &str, host: Option<&str>) -> bool {
        if let Some(want) = &self.host {
            if !host.is_some_and(|h| h.eq_ignore_ascii_case(want)) {
                return false;
            }
        }
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m == method) {
            return false;
        }
        match &self.path {
            None => true,
            Some(PathMatch::Exact(p)) => path == p,
            Some(PathMatch::Prefix(p)) => path.starts_with(p.as_str()),
        }
    }

    fn key_for(&self, req: &Request, path: &str) -> Option<Key> {
        match self.key {
            PolicyKey::ClientIp => req.client.ip.map(Key::Ip),
            PolicyKey::ApiKey => req
                .client
                .credential
                .as_ref()
                .map(|c| Key::Credential(c.hash.clone())),
            PolicyKey::Route => {
                let method = truncate(req.method, MAX_ROUTE_METHOD);
                let route = self
                    .pattern
                    .as_deref()
                    .unwrap_or_else(|| truncate(path, MAX_ROUTE_PATH));
                Some(Key::Route(format!("{method} {route}")))
            }
        }
    }
}

/// The configured policies, each with its own limiter.
pub struct Policies {
    policies: Vec<Policy>,
    params: ClusterParams,
    max_keys: NonZeroUsize,
}

impl Policies {
    /// Builds the policies; `configs` should have passed [`validate`] (invalid values do not
    /// panic, they just make odd limits). Each policy remembers at most `max_keys_per_policy`
    /// keys.
    pub fn new(configs: &[PolicyConfig], max_keys_per_policy: NonZeroUsize) -> Self {
        let params = ClusterParams::default();
        let policies = configs
            .iter()
            .map(|c| Policy::new(c, max_keys_per_policy, params))
            .collect();
        Self {
            policies,
            params,
            max_keys: max_keys_per_policy,
        }
    }

    /// Cluster mode on: cluster-scope limiters start afresh with these settings.
    pub fn set_cluster_params(&mut self, params: ClusterParams) {
        self.params = params;
        for p in &mut self.policies {
            if p.cluster.is_some() {
                *p = Policy::new(&p.config, self.max_keys, params);
            }
        }
    }

    /// Usage of cluster-scope keys to send (at most `max` keys).
    pub fn take_cluster_usage(&mut self, now_ns: u64, max: usize) -> Vec<LimitUsage> {
        let mut out = Vec::new();
        for (i, p) in self.policies.iter_mut().enumerate() {
            let Some(c) = &mut p.cluster else {
                continue;
            };
            let (rate, burst) = (c.rate(), c.burst());
            for u in c.take_usage(now_ns, max.saturating_sub(out.len())) {
                out.push(LimitUsage {
                    policy_index: i,
                    policy: p.name.clone(),
                    key: u.key,
                    units: u.units,
                    rate,
                    burst,
                });
            }
        }
        out
    }

    /// Applies the cluster's answers (`None`: that key's sync failed; its usage is kept).
    pub fn apply_cluster(&mut self, usage: Vec<LimitUsage>, answers: &[Option<Answer>]) {
        for (u, answer) in usage
            .into_iter()
            .zip(answers.iter().chain(std::iter::repeat(&None)))
        {
            let Some(p) = self
                .policies
                .get_mut(u.policy_index)
                .filter(|p| p.name == u.policy)
            else {
                continue;
            };
            let Some(c) = &mut p.cluster else {
                continue;
            };
            match answer {
                Some(a) => c.apply(&u.key, *a),
                None => c.restore(&[super::cluster_limit::Usage {
                    key: u.key,
                    units: u.units,
                }]),
            }
        }
    }

    /// Takes a reloaded policy list: a policy configured exactly as before keeps its limiter
    /// (clients mid-window stay mid-window); new and changed ones start afresh.
    pub fn reconfigure(&mut self, configs: &[PolicyConfig], max_keys_per_policy: NonZeroUsize) {
        let mut old = std::mem::take(&mut self.policies);
        self.policies = configs
            .iter()
            .map(|c| match old.iter().position(|p| p.config == *c) {
                Some(i) => old.swap_remove(i),
                None => Policy::new(c, max_keys_per_policy, self.params),
            })
            .collect();
    }

    /// Counts the request against every matching policy and returns the ones it exceeded.
    pub fn check(&mut self, now_ns: u64, req: &Request) -> Vec<Breach> {
        let path = req.path.split_once('?').map_or(req.path, |(p, _)| p);
        let host = req.host.map(request_host);
        let mut breaches = Vec::new();
        for policy in &mut self.policies {
            if policy.unit != PolicyUnit::Requests || !policy.matches(req.method, path, host) {
                continue;
            }
            let Some(key) = policy.key_for(req, path) else {
                continue;
            };
            let conforms = match &mut policy.cluster {
                Some(cluster) => cluster.check(key.clone(), now_ns, 1.0),
                None => policy.limiter.check(key.clone(), now_ns),
            };
            if !conforms {
                breaches.push(policy.breach(&key));
            }
        }
        breaches
    }

    /// Reserves `tokens` for an LLM call against every matching token policy (at the
    /// request: estimated prompt + `max_tokens`); returns the policies it overran. The
    /// tokens are charged even then: the call is under way.
    pub fn reserve(&mut self, now_ns: u64, req: &Request, tokens: u64) -> Vec<Breach> {
        self.tokens(req, |limiter, key| {
            limiter.charge(key.clone(), tokens, now_ns)
        })
    }

    /// Replaces an LLM call's reservation by its actual usage; returns the token policies
    /// whose key is over its limit after that.
    pub fn reconcile(
        &mut self,
        now_ns: u64,
        req: &Request,
        reserved: u64,
        actual: u64,
    ) -> Vec<Breach> {
        let delta = i64::try_from(actual)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(reserved).unwrap_or(i64::MAX));
        self.tokens(req, |limiter, key| limiter.adjust(key, delta, now_ns))
    }

    /// Applies `op` to the limiter and key of every matching token policy; collects the
    /// breaches (`op` false).
    fn tokens(
        &mut self,
        req: &Request,
        mut op: impl FnMut(&mut Limiter<Key>, &Key) -> bool,
    ) -> Vec<Breach> {
        let path = req.path.split_once('?').map_or(req.path, |(p, _)| p);
        let host = req.host.map(request_host);
        let mut breaches = Vec::new();
        for policy in &mut self.policies {
            if policy.unit != PolicyUnit::Tokens || !policy.matches(req.method, path, host) {
                continue;
            }
            let Some(key) = policy.key_for(req, path) else {
                continue;
            };
            if !op(&mut policy.limiter, &key) {
                breaches.push(policy.breach(&key));
            }
        }
        breaches
    }

    /// Whether any policy limits tokens.
    pub fn limits_tokens(&self) -> bool {
        self.policies.iter().any(|p| p.unit == PolicyUnit::Tokens)
    }

    /// (policy name, keys held, evictions so far) for metrics.
    pub fn stats(&self) -> Vec<(Arc<str>, usize, u64)> {
        self.policies
            .iter()
            .map(|p| match &p.cluster {
                Some(c) => (Arc::clone(&p.name), c.len(), c.evictions()),
                None => (Arc::clone(&p.name), p.limiter.len(), p.limiter.evictions()),
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

/// The request's `Host` as policies compare it: no port, no trailing dot.
fn request_host(host: &str) -> &str {
    let host = strip_port(host.trim());
    host.strip_suffix('.').unwrap_or(host)
}

/// `example.com:8080` → `example.com`, `[::1]:80` → `[::1]`; anything else unchanged.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_guard::identity::{Credential, CredentialScheme};

    fn policy(name: &str, key: PolicyKey, rate: f64, burst: u32) -> PolicyConfig {
        PolicyConfig {
            name: name.into(),
            key,
            rate,
            burst,
            unit: PolicyUnit::Requests,
            action: PolicyAction::Log,
            block_secs: default_block_secs(),
            matcher: RouteMatch::default(),
            scope: PolicyScope::Node,
        }
    }

    #[test]
    fn token_policies_count_tokens_of_llm_calls_only() {
        let mut tokens = policy("tok", PolicyKey::ApiKey, 1.0, 100);
        tokens.unit = PolicyUnit::Tokens;
        let mut p = policies(&[tokens]);
        let a = client(Some("192.0.2.7"), Some("sha256:a"));
        let b = client(Some("192.0.2.8"), Some("sha256:b"));
        let ra = req("POST", "/v1/chat/completions", &a);
        let rb = req("POST", "/v1/chat/completions", &b);
        // Requests are not counted by a token policy.
        assert_eq!(send(&mut p, 0, &ra, 1000), vec![]);
        // Reserve 80, use 50: 50 of 100 spent.
        assert_eq!(p.reserve(0, &ra, 80), vec![]);
        assert_eq!(p.reconcile(0, &ra, 80, 50), vec![]);
        // Reserve 40 (fits: 90), but use 70: 120 > 100.
        assert_eq!(p.reserve(0, &ra, 40), vec![]);
        let over = p.reconcile(0, &ra, 40, 70);
        assert_eq!(over.len(), 1);
        assert_eq!(
            (over[0].unit, over[0].key.as_str()),
            (PolicyUnit::Tokens, "sha256:a")
        );
        // The next reservation of that key overruns; another key is unaffected.
        assert_eq!(p.reserve(0, &ra, 1).len(), 1);
        assert_eq!(p.reserve(0, &rb, 100), vec![]);
        assert!(p.limits_tokens());
    }

    fn with_path(mut p: PolicyConfig, path: &str) -> PolicyConfig {
        p.matcher.path = Some(path.into());
        p
    }

    fn policies(configs: &[PolicyConfig]) -> Policies {
        validate(configs).unwrap();
        Policies::new(configs, NonZeroUsize::new(1024).unwrap())
    }

    fn client(ip: Option<&str>, hash: Option<&str>) -> ClientIdentity {
        ClientIdentity {
            ip: ip.map(|s| s.parse().unwrap()),
            via_proxy: None,
            credential: hash.map(|h| Credential {
                scheme: CredentialScheme::Bearer,
                hash: h.into(),
                jwt_subject: None,
            }),
        }
    }

    fn req<'a>(method: &'a str, path: &'a str, client: &'a ClientIdentity) -> Request<'a> {
        Request {
            method,
            path,
            host: None,
            client,
        }
    }

    /// Sends `n` identical requests at `now` and returns every breach.
    fn send(p: &mut Policies, now: u64, r: &Request, n: usize) -> Vec<Breach> {
        (0..n).flat_map(|_| p.check(now, r)).collect()
    }

    fn field_of(configs: &[PolicyConfig]) -> String {
        validate(configs).unwrap_err().field
    }

    #[test]
    fn reload_keeps_the_state_of_unchanged_policies_only() {
        let same = policy("same", PolicyKey::ClientIp, 1.0, 2);
        let changed = policy("changed", PolicyKey::ClientIp, 1.0, 2);
        let mut p = policies(&[same.clone(), changed.clone()]);
        let c = client(Some("192.0.2.7"), None);
        let r = req("GET", "/", &c);
        assert_eq!(send(&mut p, 0, &r, 2), vec![]);
        let mut changed = changed;
        changed.burst = 3;
        let added = policy("added", PolicyKey::ClientIp, 1.0, 5);
        // Reordered, one changed, one new.
        p.reconfigure(&[added, changed, same], NonZeroUsize::new(1024).unwrap());
        let breached: Vec<String> = p
            .check(0, &r)
            .iter()
            .map(|b| b.policy.to_string())
            .collect();
        // `same` remembers the two requests; `changed` (burst 3) and `added` start afresh.
        assert_eq!(breached, ["same"]);
        let names: Vec<&str> = p.policies.iter().map(|p| &*p.name).collect();
        assert_eq!(names, ["added", "changed", "same"]);
    }

    #[test]
    fn per_ip_limit_breaches_with_key_and_action() {
        let mut config = policy("per-ip", PolicyKey::ClientIp, 1.0, 3);
        config.action = PolicyAction::Block;
        config.block_secs = 30;
        let mut p = policies(&[config]);
        let c = client(Some("192.0.2.7"), None);
        let r = req("GET", "/", &c);
        assert_eq!(send(&mut p, 0, &r, 3), vec![]);
        assert_eq!(
            p.check(0, &r),
            vec![Breach {
                policy: Arc::from("per-ip"),
                unit: PolicyUnit::Requests,
                action: PolicyAction::Block,
                block_secs: 30,
                key: "192.0.2.7".into(),
            }]
        );
        // One second later one more request conforms.
        assert_eq!(p.check(1_000_000_000, &r), vec![]);
        assert_eq!(p.check(1_000_000_000, &r).len(), 1);
    }

    #[test]
    fn two_ips_are_independent() {
        let mut p = policies(&[policy("per-ip", PolicyKey::ClientIp, 1.0, 2)]);
        let (a, b) = (
            client(Some("192.0.2.1"), None),
            client(Some("2001:db8::1"), None),
        );
        assert_eq!(send(&mut p, 0, &req("GET", "/", &a), 2), vec![]);
        assert_eq!(send(&mut p, 0, &req("GET", "/", &b), 2), vec![]);
        let breach_a = p.check(0, &req("GET", "/", &a));
        let breach_b = p.check(0, &req("GET", "/", &b));
        assert_eq!(breach_a.len(), 1);
        assert_eq!(breach_a[0].key, "192.0.2.1");
        assert_eq!(breach_b[0].key, "2001:db8::1");
        assert_eq!(p.stats(), vec![(Arc::from("per-ip"), 2, 0)]);
        // No address, not counted.
        let none = client(None, None);
        assert_eq!(send(&mut p, 0, &req("GET", "/", &none), 10), vec![]);
        assert_eq!(p.stats()[0].1, 2);
    }

    #[test]
    fn api_key_policy_ignores_requests_without_credential() {
        let mut p = policies(&[policy("per-key", PolicyKey::ApiKey, 1.0, 1)]);
        let anonymous = client(Some("192.0.2.1"), None);
        assert_eq!(send(&mut p, 0, &req("GET", "/", &anonymous), 10), vec![]);
        assert_eq!(p.stats()[0].1, 0);
        let keyed = client(Some("192.0.2.1"), Some("sha256:0123456789abcdef"));
        let other = client(Some("192.0.2.1"), Some("sha256:fedcba9876543210"));
        assert_eq!(p.check(0, &req("GET", "/", &keyed)), vec![]);
        assert_eq!(p.check(0, &req("GET", "/", &other)), vec![]);
        let breaches = p.check(0, &req("GET", "/", &keyed));
        assert_eq!(breaches.len(), 1);
        assert_eq!(breaches[0].key, "sha256:0123456789abcdef");
        assert_eq!(breaches[0].action, PolicyAction::Log);
        assert_eq!(breaches[0].block_secs, 600);
    }

    #[test]
    fn route_key_with_pattern() {
        let mut p = policies(&[with_path(policy("api", PolicyKey::Route, 1.0, 2), "/api/*")]);
        let (a, b) = (client(Some("192.0.2.1"), None), client(None, None));
        assert_eq!(p.check(0, &req("GET", "/api/x", &a)), vec![]);
        assert_eq!(p.check(0, &req("GET", "/api/y", &b)), vec![]);
        let breaches = p.check(0, &req("GET", "/api/", &a));
        assert_eq!(breaches.len(), 1);
        assert_eq!(breaches[0].key, "GET /api/*");
        // Another method is another key.
        assert_eq!(p.check(0, &req("POST", "/api/x", &a)), vec![]);
        assert_eq!(p.stats()[0].1, 2);
    }

    #[test]
    fn route_key_without_pattern() {
        let mut p = policies(&[policy("routes", PolicyKey::Route, 1.0, 1)]);
        let c = client(None, None);
        assert_eq!(p.check(0, &req("GET", "/a", &c)), vec![]);
        assert_eq!(p.check(0, &req("GET", "/b?x=1", &c)), vec![]);
        assert_eq!(p.check(0, &req("GET", "/a", &c))[0].key, "GET /a");
        assert_eq!(p.check(0, &req("GET", "/b?y=2", &c))[0].key, "GET /b");
        // Long paths and methods are cut, on a char boundary.
        let long = format!("/{}", "é".repeat(300));
        assert_eq!(p.check(0, &req("GET", &long, &c)), vec![]);
        let breach = p.check(0, &req("GET", &format!("{long}tail"), &c));
        assert_eq!(breach[0].key, format!("GET /{}", "é".repeat(127)));
        let method = "X".repeat(1000);
        assert_eq!(p.check(0, &req(&method, "/", &c)), vec![]);
        let breach = p.check(0, &req(&method, "/", &c));
        assert_eq!(breach[0].key, format!("{} /", "X".repeat(MAX_ROUTE_METHOD)));
    }

    #[test]
    fn matchers() {
        let mut login = with_path(policy("login", PolicyKey::ClientIp, 1.0, 1), "/login");
        login.matcher.methods = vec!["POST".into()];
        login.matcher.host = Some("Example.COM".into());
        let api = with_path(policy("api", PolicyKey::ClientIp, 1.0, 1), "/api/*");
        let all = policy("all", PolicyKey::ClientIp, 1.0, 1);
        let configs = [login, api, all];
        let matched = |method: &str, path: &str, host: Option<&str>| -> Vec<String> {
            // A fresh set per request: every matching policy breaches on the second request.
            let mut p = policies(&configs);
            let c = client(Some("192.0.2.1"), None);
            let r = Request {
                method,
                path,
                host,
                client: &c,
            };
            assert_eq!(p.check(0, &r), vec![]);
            p.check(0, &r)
                .iter()
                .map(|b| b.policy.to_string())
                .collect()
        };
        let host = Some("example.com");
        assert_eq!(matched("POST", "/login", host), ["login", "all"]);
        assert_eq!(
            matched("POST", "/login", Some("EXAMPLE.com:8443")),
            ["login", "all"]
        );
        assert_eq!(
            matched("POST", "/login", Some("example.com.")),
            ["login", "all"]
        );
        assert_eq!(matched("POST", "/login?next=/", host), ["login", "all"]);
        assert_eq!(matched("POST", "/login", Some("other.com")), ["all"]);
        assert_eq!(matched("POST", "/login", Some("example.com.evil")), ["all"]);
        assert_eq!(matched("POST", "/login", None), ["all"]);
        assert_eq!(matched("post", "/login", host), ["all"]);
        assert_eq!(matched("GET", "/login", host), ["all"]);
        assert_eq!(matched("POST", "/login/", host), ["all"]);
        assert_eq!(matched("POST", "/loginx", host), ["all"]);
        assert_eq!(matched("GET", "/api/", None), ["api", "all"]);
        assert_eq!(matched("DELETE", "/api/v1/x", None), ["api", "all"]);
        assert_eq!(matched("GET", "/api", None), ["all"]);
        assert_eq!(matched("GET", "/apix", None), ["all"]);
    }

    #[test]
    fn host_ports_are_stripped() {
        assert_eq!(request_host("example.com:8080"), "example.com");
        assert_eq!(request_host("example.com:"), "example.com");
        assert_eq!(request_host(" [::1]:80 "), "[::1]");
        assert_eq!(request_host("[::1]"), "[::1]");
        assert_eq!(request_host("[::1"), "[::1");
        assert_eq!(request_host("::1"), "::1");
        assert_eq!(request_host("a:b"), "a:b");
        assert_eq!(request_host(""), "");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("aé", 3), "aé");
    }

    #[test]
    fn validation_names_the_field() {
        let ok = || policy("ok", PolicyKey::ClientIp, 1.0, 1);
        assert!(validate(&[]).is_ok());
        assert!(validate(&[ok()]).is_ok());

        let mut bad = ok();
        bad.name = "second".into();
        bad.rate = 0.0;
        assert_eq!(field_of(&[ok(), bad.clone()]), "enforce.policies[1].rate");
        for rate in [-1.0, f64::NAN, f64::INFINITY] {
            bad.rate = rate;
            assert_eq!(field_of(&[ok(), bad.clone()]), "enforce.policies[1].rate");
        }

        let err = validate(&[ok(), policy("x", PolicyKey::Route, 1.0, 1), ok()]).unwrap_err();
        assert_eq!(err.field, "enforce.policies[2].name");
        assert_eq!(
            err.to_string(),
            "invalid value for `enforce.policies[2].name`: duplicate name \"ok\" \
             (also enforce.policies[0])"
        );

        let too_long = "n".repeat(65);
        for name in [
            "",
            "has space",
            "métrique",
            "a\"b",
            "x{y}",
            too_long.as_str(),
        ] {
            let mut bad = ok();
            bad.name = name.into();
            assert_eq!(field_of(&[bad]), "enforce.policies[0].name", "{name:?}");
        }
        let mut fine = ok();
        fine.name = format!("A-z_0.9{}", "n".repeat(57));
        assert!(validate(&[fine]).is_ok());

        let mut bad = ok();
        bad.burst = 0;
        assert_eq!(field_of(&[bad]), "enforce.policies[0].burst");
        for secs in [0, MAX_BLOCK_SECS + 1] {
            let mut bad = ok();
            bad.block_secs = secs;
            assert_eq!(field_of(&[bad]), "enforce.policies[0].block_secs");
        }
        for path in ["login", "", "*", "/a*b", "/a/**"] {
            let bad = with_path(ok(), path);
            assert_eq!(field_of(&[bad]), "enforce.policies[0].match.path", "{path}");
        }
        for path in ["/", "/*", "/login", "/api/*"] {
            assert!(validate(&[with_path(ok(), path)]).is_ok(), "{path}");
        }
        let mut bad = ok();
        bad.matcher.methods = vec!["GET".into(), "post".into()];
        assert_eq!(field_of(&[bad]), "enforce.policies[0].match.methods[1]");
        for host in ["", "a b", "example.com:80", "a/b", "::1", "[::1]:80"] {
            let mut bad = ok();
            bad.matcher.host = Some(host.into());
            assert_eq!(field_of(&[bad]), "enforce.policies[0].match.host", "{host}");
        }
        for host in ["example.com", "[::1]", "192.0.2.1"] {
            let mut fine = ok();
            fine.matcher.host = Some(host.into());
            assert!(validate(&[fine]).is_ok(), "{host}");
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        policies: Vec<PolicyConfig>,
    }

    #[test]
    fn parses_toml() {
        let text = "[[policies]]\nname=\"x\"\nkey=\"client_ip\"\nrate=5.0\nburst=10\n\
                    action=\"block\"\nblock_secs=30\n[policies.match]\npath=\"/login\"\n\
                    methods=[\"POST\"]\n\
                    [[policies]]\nname=\"y\"\nkey=\"api_key\"\nrate=0.5\nburst=1\n";
        let file: File = toml::from_str(text).unwrap();
        validate(&file.policies).unwrap();
        let [x, y] = &file.policies[..] else {
            panic!("{file:?}");
        };
        assert_eq!(x.name, "x");
        assert_eq!(x.key, PolicyKey::ClientIp);
        assert_eq!((x.rate, x.burst), (5.0, 10));
        assert_eq!((x.action, x.block_secs), (PolicyAction::Block, 30));
        assert_eq!(x.matcher.path.as_deref(), Some("/login"));
        assert_eq!(x.matcher.methods, ["POST"]);
        assert_eq!(x.matcher.host, None);
        assert_eq!(y.key, PolicyKey::ApiKey);
        assert_eq!((y.action, y.block_secs), (PolicyAction::Log, 600));
        assert!(y.matcher.path.is_none() && y.matcher.methods.is_empty());

        let p = Policies::new(&file.policies, NonZeroUsize::new(8).unwrap());
        assert!(!p.is_empty());
        assert!(Policies::new(&[], NonZeroUsize::new(8).unwrap()).is_empty());
    }

    #[test]
    fn toml_rejects_unknown_fields_and_values() {
        let base = "[[policies]]\nname=\"x\"\nkey=\"client_ip\"\nrate=5.0\nburst=10\n";
        assert!(toml::from_str::<File>(base).is_ok());
        for extra in [
            "bogus=1\n",
            "key2=\"route\"\n",
            "[policies.match]\npaths=\"/\"\n",
        ] {
            assert!(
                toml::from_str::<File>(&format!("{base}{extra}")).is_err(),
                "{extra}"
            );
        }
        let bad_key = base.replace("client_ip", "clientIp");
        assert!(toml::from_str::<File>(&bad_key).is_err());
        let bad_action = format!("{base}action=\"drop\"\n");
        assert!(toml::from_str::<File>(&bad_action).is_err());
        let negative = base.replace("burst=10", "burst=-1");
        assert!(toml::from_str::<File>(&negative).is_err());
    }

    #[test]
    fn evictions_show_in_stats() {
        let configs = [policy("per-ip", PolicyKey::ClientIp, 1.0, 1)];
        let mut p = Policies::new(&configs, NonZeroUsize::new(2).unwrap());
        for i in 0..5 {
            let c = client(Some(&format!("192.0.2.{i}")), None);
            assert_eq!(p.check(0, &req("GET", "/", &c)), vec![]);
        }
        assert_eq!(p.stats(), vec![(Arc::from("per-ip"), 2, 3)]);
    }
}
