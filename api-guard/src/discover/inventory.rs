//! The endpoint inventory: per (host, route template, method), what the traffic showed —
//! when and how often it was called, status codes, latency, content types, parameters and
//! their types, JSON body schemas, authentication schemes, how many distinct clients, and
//! which classes of sensitive data went through it (classes and counts, never values).
//!
//! It is the operator's map of the API, so it must survive hostile traffic: every
//! collection is capped (endpoints overall, and per endpoint status codes, content types,
//! query parameter names, auth schemes and body schemas), and what does not fit is counted,
//! not stored. Paths go through the [`Templater`], so random paths fold into a bounded
//! number of templates; when the templater generalises a template (its
//! [`Templater::epoch`] moves) the entries recorded under the old one are re-keyed and
//! merged into the new one.
//!
//! The inventory serialises (serde) to a snapshot of its endpoints and overflow counters;
//! loading one and [`Inventory::merge`]-ing it into a live inventory goes through the same
//! caps, so a snapshot cannot grow it beyond its configuration. The templater's learned
//! state is not part of the snapshot: after a restart templates are relearned from traffic.

use std::{borrow::Cow, collections::BTreeMap, net::IpAddr, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    schema::{JsonSchema, ParamStats, SchemaLimits},
    sensitive::{classify, classify_name, BodyClasses, ClassCounts, DataClass, ScanCache},
    template::{Route, SharedTemplater, Source, TemplateConfig, Templater},
};
use crate::{
    detect::config::{invalid, Invalid},
    http::Headers,
    identity::CredentialScheme,
    text::percent_decode,
};

/// Methods kept by name; any other method is recorded as `OTHER` (one endpoint per route),
/// so invented methods cannot multiply endpoints.
pub const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
];
/// Longest host kept; requests with longer hosts are counted in [`Overflow::bad_host`].
const MAX_HOST_LEN: usize = 300;
/// Longest content type, query parameter or API key name kept; longer ones are dropped.
const MAX_NAME_LEN: usize = 64;
/// Query parameters read per request.
const MAX_QUERY_PAIRS: usize = 128;
/// Registers of the distinct-client sketch (HyperLogLog, ~6.5% standard error).
const HLL_REGISTERS: usize = 256;
/// Latency buckets (four per power of two of microseconds, up to ~2^39 µs).
const MAX_BUCKETS: usize = 160;

/// Bounds of the inventory. `[discover.inventory]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InventoryConfig {
    /// Endpoints (host, method, template) kept (default 10000); new ones beyond are counted
    /// in [`Overflow::endpoints`].
    pub max_endpoints: usize,
    /// Distinct status codes per endpoint (default 32); others are counted together.
    pub max_status_codes: usize,
    /// Distinct content types per endpoint and direction (default 8).
    pub max_content_types: usize,
    /// Query parameter names per endpoint (default 64).
    pub max_query_params: usize,
    /// Authentication schemes per endpoint (default 8).
    pub max_auth_schemes: usize,
    /// JSON body schemas per endpoint and direction (by content type, and for responses by
    /// status), default 8.
    pub max_body_schemas: usize,
    /// Bytes of each body parsed and scanned for sensitive data (default 65536).
    pub max_body_bytes: usize,
    /// Bounds of each JSON body schema.
    pub schema: SchemaLimits,
    /// Route templating.
    pub templates: TemplateConfig,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        InventoryConfig {
            max_endpoints: 10_000,
            max_status_codes: 32,
            max_content_types: 8,
            max_query_params: 64,
            max_auth_schemes: 8,
            max_body_schemas: 8,
            max_body_bytes: 64 * 1024,
            schema: SchemaLimits::default(),
            templates: TemplateConfig::default(),
        }
    }
}

impl InventoryConfig {
    /// The largest valid bounds: for reading an inventory another process built (the
    /// daemon's answer to `api-guard inventory`) without cutting it down to the defaults.
    pub fn largest() -> Self {
        InventoryConfig {
            max_endpoints: 1 << 20,
            max_status_codes: 1000,
            max_content_types: 256,
            max_query_params: 1024,
            max_auth_schemes: 64,
            max_body_schemas: 64,
            max_body_bytes: 16 << 20,
            schema: SchemaLimits {
                max_depth: 64,
                max_properties: 1 << 16,
                max_nodes: 1 << 20,
            },
            templates: TemplateConfig::default(),
        }
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        let max = Self::largest();
        for (name, value, max) in [
            ("max_endpoints", self.max_endpoints, max.max_endpoints),
            (
                "max_status_codes",
                self.max_status_codes,
                max.max_status_codes,
            ),
            (
                "max_content_types",
                self.max_content_types,
                max.max_content_types,
            ),
            (
                "max_query_params",
                self.max_query_params,
                max.max_query_params,
            ),
            (
                "max_auth_schemes",
                self.max_auth_schemes,
                max.max_auth_schemes,
            ),
            (
                "max_body_schemas",
                self.max_body_schemas,
                max.max_body_schemas,
            ),
            ("max_body_bytes", self.max_body_bytes, max.max_body_bytes),
            (
                "schema.max_depth",
                self.schema.max_depth,
                max.schema.max_depth,
            ),
            (
                "schema.max_properties",
                self.schema.max_properties,
                max.schema.max_properties,
            ),
            (
                "schema.max_nodes",
                self.schema.max_nodes,
                max.schema.max_nodes,
            ),
        ] {
            if value == 0 || value > max {
                return Err(invalid(
                    format!("discover.inventory.{name}"),
                    format!("must be between 1 and {max}"),
                ));
            }
        }
        self.templates.validate().map_err(|e| Invalid {
            field: match e.field.strip_prefix("discover.templates.") {
                Some(rest) => format!("discover.inventory.templates.{rest}"),
                None => e.field,
            },
            reason: e.reason,
        })
    }
}

/// The credential an exchange carried, as [`crate::identity`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservedCredential<'a> {
    pub scheme: CredentialScheme,
    /// [`crate::identity::Credential::hash`]: tells clients apart, is not a secret.
    pub hash: &'a str,
    /// For API keys, the header or query parameter that carried it. When `None`, the first
    /// request header (or query parameter) whose name looks like an API key is taken, else
    /// `unknown`.
    pub name: Option<&'a str>,
}

/// What one server-side exchange tells. Callers fill it from a live exchange or from an
/// exchange JSON line (which has no headers or bodies: leave them empty).
#[derive(Debug, Clone, Copy, Default)]
pub struct Observation<'a> {
    /// The `Host` header (port kept); empty when unknown.
    pub host: &'a str,
    pub method: &'a str,
    /// The path without the query.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    pub request_headers: &'a Headers,
    /// What was captured of the request body (a prefix when truncated).
    pub request_body: &'a [u8],
    /// `None` when no response was seen.
    pub status: Option<u16>,
    pub response_headers: &'a Headers,
    pub response_body: &'a [u8],
    /// Request start to response end.
    pub duration_ns: Option<u64>,
    /// The client address ([`crate::identity::ClientIdentity::ip`]).
    pub client: Option<IpAddr>,
    pub credential: Option<ObservedCredential<'a>>,
    /// Unix seconds.
    pub time: u64,
    /// For a gRPC call: its service, method and grpc-status.
    pub grpc: Option<GrpcObservation<'a>>,
    /// Whether the exchange came through TLS; `None` when unknown.
    pub tls: Option<bool>,
    /// The path's route, when the caller templated it with this inventory's templater
    /// ([`Inventory::with_templater`]); `None`: the inventory templates the path itself.
    pub route: Option<&'a Route>,
    /// The bodies' sensitive classes, shared with other consumers; `None`: scanned here.
    pub request_classes: Option<&'a BodyClasses>,
    pub response_classes: Option<&'a BodyClasses>,
}

/// Exchanges of an endpoint seen over TLS and in plaintext (counts). Inventories saved
/// before it was recorded load with both zero: unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportSeen {
    pub tls: u64,
    pub plaintext: u64,
}

impl TransportSeen {
    pub fn is_empty(&self) -> bool {
        self.tls == 0 && self.plaintext == 0
    }

    /// `tls`, `plaintext`, `both`, or `None` when never recorded.
    pub fn summary(&self) -> Option<&'static str> {
        match (self.tls > 0, self.plaintext > 0) {
            (true, true) => Some("both"),
            (true, false) => Some("tls"),
            (false, true) => Some("plaintext"),
            (false, false) => None,
        }
    }

    fn add(&mut self, tls: bool, n: u64) {
        let c = if tls {
            &mut self.tls
        } else {
            &mut self.plaintext
        };
        *c = c.saturating_add(n);
    }

    fn merge(&mut self, other: &TransportSeen) {
        self.add(true, other.tls);
        self.add(false, other.plaintext);
    }
}

#[derive(Debug, Clone, Copy)]
pub struct GrpcObservation<'a> {
    pub service: &'a str,
    pub method: &'a str,
    pub status: Option<u32>,
}

/// An LLM call recorded on its endpoint ([`Inventory::observe_llm`]).
#[derive(Debug, Clone, Copy)]
pub struct LlmObservation<'a> {
    /// `openai_chat`, `anthropic_messages`, … (see `crate::llm::Flavour`).
    pub flavour: &'a str,
    pub model: &'a str,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub estimated: bool,
}

/// Models an LLM endpoint remembers; calls of further models are counted in `models_dropped`.
pub const MAX_LLM_MODELS: usize = 32;

/// What an endpoint that serves (or calls) an LLM API has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LlmStats {
    pub flavour: String,
    pub models: BTreeMap<String, ModelTokens>,
    #[serde(default)]
    pub models_dropped: u64,
}

/// Token totals of one model on one endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelTokens {
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Of prompt + completion, the estimated ones (no usage report).
    pub estimated_tokens: u64,
}

impl ModelTokens {
    fn add(&mut self, o: &ModelTokens) {
        self.calls = self.calls.saturating_add(o.calls);
        self.prompt_tokens = self.prompt_tokens.saturating_add(o.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(o.completion_tokens);
        self.estimated_tokens = self.estimated_tokens.saturating_add(o.estimated_tokens);
    }
}

impl LlmStats {
    fn add(&mut self, model: &str, tokens: &ModelTokens) {
        let room = self.models.len() < MAX_LLM_MODELS;
        match self.models.get_mut(model) {
            Some(m) => m.add(tokens),
            None if room => {
                self.models.insert(model.to_owned(), *tokens);
            }
            None => self.models_dropped = self.models_dropped.saturating_add(tokens.calls),
        }
    }
}

/// What an endpoint that is a gRPC method has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrpcStats {
    /// `package.Service`.
    pub service: String,
    pub method: String,
    /// grpc-status values seen (0 is OK).
    pub statuses: Counts<u32>,
    /// Calls whose status was never seen (no trailers yet, reset).
    pub no_status: u64,
}

/// How a request authenticated. Serialised as a string (it is a map key): `none`, `basic`,
/// `bearer-jwt`, `bearer-opaque`, `api-key-header:<name>`, `api-key-query:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthScheme {
    /// No credential.
    None,
    Basic,
    /// `Bearer` with a token shaped like a JWT (three base64url segments, `eyJ` first).
    BearerJwt,
    /// `Bearer` with any other token.
    BearerOpaque,
    /// An API key in the named header (lower case).
    ApiKeyHeader(String),
    /// An API key in the named query parameter.
    ApiKeyQuery(String),
}

impl std::fmt::Display for AuthScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthScheme::None => f.write_str("none"),
            AuthScheme::Basic => f.write_str("basic"),
            AuthScheme::BearerJwt => f.write_str("bearer-jwt"),
            AuthScheme::BearerOpaque => f.write_str("bearer-opaque"),
            AuthScheme::ApiKeyHeader(n) => write!(f, "api-key-header:{n}"),
            AuthScheme::ApiKeyQuery(n) => write!(f, "api-key-query:{n}"),
        }
    }
}

impl std::str::FromStr for AuthScheme {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "none" => AuthScheme::None,
            "basic" => AuthScheme::Basic,
            "bearer-jwt" => AuthScheme::BearerJwt,
            "bearer-opaque" => AuthScheme::BearerOpaque,
            _ => {
                let name = |p: &str| s.strip_prefix(p).and_then(clean_name);
                if let Some(n) = name("api-key-header:") {
                    AuthScheme::ApiKeyHeader(n)
                } else if let Some(n) = name("api-key-query:") {
                    AuthScheme::ApiKeyQuery(n)
                } else {
                    return Err(format!("unknown auth scheme `{s}`"));
                }
            }
        })
    }
}

impl Serialize for AuthScheme {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AuthScheme {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Values counted per key, with a cap on distinct keys; the rest is counted in `other`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts<K: Ord> {
    pub counts: BTreeMap<K, u64>,
    /// Occurrences whose key did not fit.
    #[serde(default)]
    pub other: u64,
}

impl<K: Ord> Default for Counts<K> {
    fn default() -> Self {
        Counts {
            counts: BTreeMap::new(),
            other: 0,
        }
    }
}

impl<K: Ord + Clone> Counts<K> {
    fn add(&mut self, key: Cow<'_, K>, n: u64, cap: usize)
    where
        K: ToOwned<Owned = K>,
    {
        if let Some(c) = self.counts.get_mut(key.as_ref()) {
            *c = c.saturating_add(n);
        } else if self.counts.len() < cap {
            self.counts.insert(key.into_owned(), n);
        } else {
            self.other = self.other.saturating_add(n);
        }
    }

    fn merge(&mut self, other: &Counts<K>, cap: usize) {
        for (k, &n) in &other.counts {
            self.add(Cow::Borrowed(k), n, cap);
        }
        self.other = self.other.saturating_add(other.other);
    }
}

impl Counts<String> {
    /// [`Counts::add`] for a borrowed key, copied only when it is new.
    fn add_str(&mut self, key: &str, n: u64, cap: usize) {
        if let Some(c) = self.counts.get_mut(key) {
            *c = c.saturating_add(n);
        } else if self.counts.len() < cap {
            self.counts.insert(key.to_owned(), n);
        } else {
            self.other = self.other.saturating_add(n);
        }
    }
}

/// Latency histogram: counts per logarithmic bucket of microseconds, four buckets per
/// power of two, so a percentile is known within 25%.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    buckets: Vec<u64>,
    count: u64,
}

fn bucket_of(us: u64) -> usize {
    if us < 4 {
        return us as usize;
    }
    let octave = 63 - us.leading_zeros() as usize; // >= 2
    let sub = ((us >> (octave - 2)) & 3) as usize;
    (4 * (octave - 1) + sub).min(MAX_BUCKETS - 1)
}

/// The exclusive upper bound of a bucket, in microseconds.
fn bucket_upper(i: usize) -> u64 {
    if i < 4 {
        return i as u64 + 1;
    }
    let octave = i / 4 + 1;
    let sub = (i % 4) as u64;
    (5 + sub) << (octave - 2)
}

impl Latency {
    pub fn record(&mut self, ns: u64) {
        let i = bucket_of(ns / 1000);
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, 0);
        }
        if let Some(b) = self.buckets.get_mut(i) {
            *b = b.saturating_add(1);
            self.count = self.count.saturating_add(1);
        }
    }

    /// Durations recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (0 < q ≤ 1) in microseconds: the upper bound of the bucket it
    /// falls in; `None` before the first duration.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen = seen.saturating_add(n);
            if seen >= rank {
                return Some(bucket_upper(i));
            }
        }
        self.buckets.len().checked_sub(1).map(bucket_upper)
    }

    pub fn merge(&mut self, other: &Latency) {
        let len = other.buckets.len().min(MAX_BUCKETS);
        if self.buckets.len() < len {
            self.buckets.resize(len, 0);
        }
        for (a, &b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a = a.saturating_add(b);
            self.count = self.count.saturating_add(b);
        }
    }
}

/// Distinct clients (by credential hash, else address), estimated with a HyperLogLog of
/// 256 registers: exact-ish for small numbers (linear counting), ~6.5% error above.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clients {
    registers: Vec<u8>,
}

impl Default for Clients {
    fn default() -> Self {
        Clients {
            registers: vec![0; HLL_REGISTERS],
        }
    }
}

/// FNV-1a then a splitmix64 finaliser: stable across runs and versions (snapshots merge).
fn hash64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl Clients {
    fn add_hash(&mut self, h: u64) {
        let idx = (h >> 56) as usize; // 8 bits: 256 registers
        let rank = ((h << 8) | 0x80).leading_zeros() as u8 + 1;
        if let Some(r) = self.registers.get_mut(idx) {
            *r = (*r).max(rank);
        }
    }

    pub fn add_client(&mut self, client: &[u8]) {
        self.add_hash(hash64(&[client]));
    }

    /// The estimated number of distinct clients.
    pub fn estimate(&self) -> u64 {
        let m = self.registers.len() as f64;
        if self.registers.is_empty() {
            return 0;
        }
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let sum: f64 = self
            .registers
            .iter()
            .map(|&r| 2f64.powi(-i32::from(r)))
            .sum();
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let est = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        est.round() as u64
    }

    pub fn merge(&mut self, other: &Clients) {
        if self.registers.len() != HLL_REGISTERS {
            self.registers = vec![0; HLL_REGISTERS];
        }
        for (a, &b) in self.registers.iter_mut().zip(&other.registers) {
            *a = (*a).max(b.min(57));
        }
    }
}

/// The merged JSON schema of the bodies with one content type (and for responses one
/// status).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BodySchema {
    /// `None` for request bodies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub content_type: String,
    pub schema: JsonSchema,
}

/// Everything recorded for one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub host: String,
    /// Upper case, one of [`METHODS`] or `OTHER`.
    pub method: String,
    /// The route template (`/users/{userId}`); overflow ones end in `/*`. A `{name}`
    /// segment is a parameter when `path_params` has `name` (every parameter has an
    /// entry), otherwise it is literal text that looked like one.
    pub template: String,
    /// The template came from the templater's overflow (no room for the path's route).
    #[serde(default)]
    pub overflow: bool,
    pub count: u64,
    /// Unix seconds.
    pub first_seen: u64,
    pub last_seen: u64,
    pub statuses: Counts<u16>,
    /// Exchanges without a response.
    #[serde(default)]
    pub no_response: u64,
    pub latency: Latency,
    pub request_content_types: Counts<String>,
    pub response_content_types: Counts<String>,
    pub query_params: BTreeMap<String, ParamStats>,
    /// Query parameter occurrences whose name did not fit (too many names or too long).
    #[serde(default)]
    pub query_params_dropped: u64,
    pub path_params: BTreeMap<String, ParamStats>,
    pub request_schemas: Vec<BodySchema>,
    pub response_schemas: Vec<BodySchema>,
    pub auth: Counts<AuthScheme>,
    pub clients: Clients,
    pub request_sensitive: ClassCounts,
    pub response_sensitive: ClassCounts,
    /// Seen over TLS, in plaintext, or both.
    #[serde(default, skip_serializing_if = "TransportSeen::is_empty")]
    pub transport: TransportSeen,
    /// Set when the endpoint is a gRPC method (`POST /package.Service/Method`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcStats>,
    /// Set when the endpoint is an LLM API (models seen and their tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmStats>,
}

impl Endpoint {
    fn new(host: &str, method: &str, template: &str, time: u64) -> Endpoint {
        Endpoint {
            host: host.into(),
            method: method.into(),
            template: template.into(),
            overflow: false,
            count: 0,
            first_seen: time,
            last_seen: time,
            statuses: Counts::default(),
            no_response: 0,
            latency: Latency::default(),
            request_content_types: Counts::default(),
            response_content_types: Counts::default(),
            query_params: BTreeMap::new(),
            query_params_dropped: 0,
            path_params: BTreeMap::new(),
            request_schemas: Vec::new(),
            response_schemas: Vec::new(),
            auth: Counts::default(),
            clients: Clients::default(),
            request_sensitive: ClassCounts::default(),
            response_sensitive: ClassCounts::default(),
            transport: TransportSeen::default(),
            grpc: None,
            llm: None,
        }
    }

    /// The API key header or query names among the auth schemes seen.
    pub fn auth_schemes(&self) -> impl Iterator<Item = (&AuthScheme, u64)> {
        self.auth.counts.iter().map(|(k, &n)| (k, n))
    }

    /// Folds in `other` (the same endpoint from a snapshot, or one re-keyed into this),
    /// within `cfg`'s caps.
    fn merge(&mut self, other: &Endpoint, cfg: &InventoryConfig) {
        self.overflow |= other.overflow;
        if self.count == 0 || (other.count > 0 && other.first_seen < self.first_seen) {
            self.first_seen = other.first_seen;
        }
        self.last_seen = self.last_seen.max(other.last_seen);
        self.count = self.count.saturating_add(other.count);
        self.statuses.merge(&other.statuses, cfg.max_status_codes);
        self.no_response = self.no_response.saturating_add(other.no_response);
        self.latency.merge(&other.latency);
        if let Some(theirs) = &other.grpc {
            let mine = self.grpc.get_or_insert_with(|| GrpcStats {
                service: theirs.service.clone(),
                method: theirs.method.clone(),
                ..GrpcStats::default()
            });
            mine.statuses.merge(&theirs.statuses, cfg.max_status_codes);
            mine.no_status = mine.no_status.saturating_add(theirs.no_status);
        }
        if let Some(theirs) = &other.llm {
            let mine = self.llm.get_or_insert_with(|| LlmStats {
                flavour: theirs.flavour.clone(),
                ..LlmStats::default()
            });
            for (model, tokens) in &theirs.models {
                mine.add(model, tokens);
            }
            mine.models_dropped = mine.models_dropped.saturating_add(theirs.models_dropped);
        }
        self.request_content_types
            .merge(&other.request_content_types, cfg.max_content_types);
        self.response_content_types
            .merge(&other.response_content_types, cfg.max_content_types);
        for (name, p) in &other.query_params {
            if let Some(mine) = self.query_params.get_mut(name) {
                mine.merge(p);
            } else if self.query_params.len() < cfg.max_query_params && name.len() <= MAX_NAME_LEN {
                self.query_params.insert(name.clone(), p.clone());
            } else {
                self.query_params_dropped = self.query_params_dropped.saturating_add(p.seen);
            }
        }
        self.query_params_dropped = self
            .query_params_dropped
            .saturating_add(other.query_params_dropped);
        // Path parameter names come from a bounded template; keep at most 64 of them.
        for (name, p) in &other.path_params {
            if let Some(mine) = self.path_params.get_mut(name) {
                mine.merge(p);
            } else if self.path_params.len() < super::template::MAX_SEGMENTS {
                self.path_params.insert(name.clone(), p.clone());
            }
        }
        for b in &other.request_schemas {
            merge_schema(&mut self.request_schemas, b, cfg);
        }
        for b in &other.response_schemas {
            merge_schema(&mut self.response_schemas, b, cfg);
        }
        self.auth.merge(&other.auth, cfg.max_auth_schemes);
        self.clients.merge(&other.clients);
        self.request_sensitive.merge(&other.request_sensitive);
        self.response_sensitive.merge(&other.response_sensitive);
        self.transport.merge(&other.transport);
    }

    fn observe(
        &mut self,
        o: &Observation<'_>,
        cfg: &InventoryConfig,
        path: &PathValues<'_>,
        scans: &mut ScanCache,
    ) {
        self.count = self.count.saturating_add(1);
        if let Some(tls) = o.tls {
            self.transport.add(tls, 1);
        }
        self.first_seen = self.first_seen.min(o.time);
        self.last_seen = self.last_seen.max(o.time);
        match o.status {
            Some(s) => self.statuses.add(Cow::Owned(s), 1, cfg.max_status_codes),
            None => self.no_response = self.no_response.saturating_add(1),
        }
        if let Some(ns) = o.duration_ns {
            self.latency.record(ns);
        }
        for (name, value) in path.0.iter().take(super::template::MAX_SEGMENTS) {
            let value = percent_decode(value, false);
            match self.path_params.get_mut(*name) {
                Some(p) => p.observe(&value),
                None => {
                    let mut p = ParamStats::default();
                    p.observe(&value);
                    self.path_params.insert((*name).to_owned(), p);
                }
            }
        }
        if let Some(q) = o.query {
            self.observe_query(q, cfg);
        }
        let req_ct = content_type(o.request_headers);
        if let Some(ct) = &req_ct {
            self.request_content_types
                .add_str(ct, 1, cfg.max_content_types);
        }
        observe_body(
            &mut self.request_schemas,
            &mut self.request_sensitive,
            None,
            req_ct.as_deref(),
            (o.request_body, o.request_classes),
            cfg,
            scans,
        );
        let resp_ct = content_type(o.response_headers);
        if let Some(ct) = &resp_ct {
            self.response_content_types
                .add_str(ct, 1, cfg.max_content_types);
        }
        if o.status.is_some() {
            observe_body(
                &mut self.response_schemas,
                &mut self.response_sensitive,
                o.status,
                resp_ct.as_deref(),
                (o.response_body, o.response_classes),
                cfg,
                scans,
            );
        }
        if let Some(g) = &o.grpc {
            let stats = self.grpc.get_or_insert_with(|| GrpcStats {
                service: g.service.to_owned(),
                method: g.method.to_owned(),
                ..GrpcStats::default()
            });
            match g.status {
                Some(s) => stats.statuses.add(Cow::Owned(s), 1, cfg.max_status_codes),
                None => stats.no_status = stats.no_status.saturating_add(1),
            }
        }
        let scheme = auth_scheme(o);
        self.auth.add(Cow::Owned(scheme), 1, cfg.max_auth_schemes);
        match (&o.credential, o.client) {
            (Some(c), _) => self.clients.add_client(c.hash.as_bytes()),
            (None, Some(ip)) => match ip.to_canonical() {
                IpAddr::V4(v4) => self.clients.add_client(&v4.octets()),
                IpAddr::V6(v6) => self.clients.add_client(&v6.octets()),
            },
            (None, None) => {}
        }
    }

    fn observe_query(&mut self, query: &str, cfg: &InventoryConfig) {
        let mut seen_here: Vec<&str> = Vec::new();
        for pair in query
            .split('&')
            .filter(|p| !p.is_empty())
            .take(MAX_QUERY_PAIRS)
        {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(raw_name, true);
            let value = percent_decode(raw_value, true);
            let mut own = ClassCounts::default();
            classify(&value, &mut own);
            if let Some(class) = classify_name(&name) {
                if !value.is_empty() && own.get(class) == 0 {
                    own.add(class, 1);
                }
            }
            self.request_sensitive.merge(&own);
            if name.is_empty() || name.len() > MAX_NAME_LEN {
                self.query_params_dropped = self.query_params_dropped.saturating_add(1);
                continue;
            }
            let repeat = seen_here.contains(&raw_name);
            let room = self.query_params.len() < cfg.max_query_params;
            match self.query_params.get_mut(name.as_ref()) {
                Some(p) if repeat => p.observe_repeat(&value),
                Some(p) => p.observe(&value),
                None if room => {
                    let mut p = ParamStats::default();
                    p.observe(&value);
                    self.query_params.insert(name.into_owned(), p);
                }
                None => {
                    self.query_params_dropped = self.query_params_dropped.saturating_add(1);
                }
            }
            if !repeat {
                seen_here.push(raw_name);
            }
        }
    }
}

fn merge_schema(list: &mut Vec<BodySchema>, b: &BodySchema, cfg: &InventoryConfig) {
    if let Some(mine) = list
        .iter_mut()
        .find(|x| x.status == b.status && x.content_type == b.content_type)
    {
        mine.schema.merge(&b.schema);
    } else if list.len() < cfg.max_body_schemas {
        let mut schema = JsonSchema::new(cfg.schema);
        schema.merge(&b.schema);
        list.push(BodySchema {
            status: b.status,
            content_type: b.content_type.clone(),
            schema,
        });
        list.sort_by(|x, y| (x.status, &x.content_type).cmp(&(y.status, &y.content_type)));
    }
}

fn is_json(ct: &str) -> bool {
    ct == "application/json" || ct.ends_with("+json")
}

/// Merges a JSON body into the schema for its content type and counts the sensitive data
/// in it: in JSON, string values and the names of fields with a value; otherwise the
/// scanned prefix. `classes`: the body's scan shared with other consumers.
fn observe_body(
    list: &mut Vec<BodySchema>,
    sensitive: &mut ClassCounts,
    status: Option<u16>,
    ct: Option<&str>,
    (body, classes): (&[u8], Option<&BodyClasses>),
    cfg: &InventoryConfig,
    scans: &mut ScanCache,
) {
    if body.is_empty() {
        return;
    }
    let prefix = body.get(..cfg.max_body_bytes).unwrap_or(body);
    let whole = prefix.len() == body.len();
    let json = whole && ct.is_some_and(is_json);
    // A JSON document is scanned as one only when it is whole (a cut one is text).
    let found = match classes {
        Some(shared) => shared.get_cached(body, json, cfg.max_body_bytes, scans),
        None => scans.scan(body, json, cfg.max_body_bytes),
    };
    sensitive.merge(&found);
    if let Some(ct) = ct.filter(|ct| is_json(ct)) {
        if whole {
            let idx = list
                .iter()
                .position(|x| x.status == status && x.content_type == ct);
            let idx = match idx {
                Some(i) => Some(i),
                None if list.len() < cfg.max_body_schemas => {
                    list.push(BodySchema {
                        status,
                        content_type: ct.to_owned(),
                        schema: JsonSchema::new(cfg.schema),
                    });
                    list.sort_by(|x, y| {
                        (x.status, &x.content_type).cmp(&(y.status, &y.content_type))
                    });
                    list.iter()
                        .position(|x| x.status == status && x.content_type == ct)
                }
                None => None,
            };
            if let Some(s) = idx.and_then(|i| list.get_mut(i)) {
                s.schema.observe(prefix);
            }
        }
    }
}

/// `Content-Type` without parameters, lower case (copied only when it is not already);
/// `None` when absent or unusable. One pass over the value: this runs for both content
/// types of every exchange.
fn content_type(headers: &Headers) -> Option<Cow<'_, str>> {
    let (_, v) = headers
        .iter()
        .find(|(k, _)| *k == "Content-Type" || k.eq_ignore_ascii_case("content-type"))?;
    let v = v.trim_start();
    let (mut end, mut upper) = (v.len(), false);
    for (i, c) in v.bytes().enumerate() {
        if MEDIA_TYPE_BYTE[usize::from(c)] {
            upper |= c.is_ascii_uppercase();
            continue;
        }
        // Past the type: only whitespace may follow it before its parameters.
        let before_params = v[i..].split(';').next().unwrap_or("");
        if !before_params.trim_start().is_empty() {
            return None;
        }
        end = i;
        break;
    }
    let t = &v[..end];
    if t.is_empty() || t.len() > MAX_NAME_LEN {
        return None;
    }
    Some(if upper {
        Cow::Owned(t.to_ascii_lowercase())
    } else {
        Cow::Borrowed(t)
    })
}

/// The bytes a kept media type may hold: ASCII letters and digits and `/+-._` (a table:
/// this runs for both content types of every exchange).
static MEDIA_TYPE_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'-' | b'.' | b'_');
        c += 1;
    }
    t
};

fn is_jwt_shaped(token: &str) -> bool {
    token.starts_with("eyJ")
        && token.len() <= 16 * 1024
        && token.bytes().filter(|&c| c == b'.').count() == 2
        && token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'='))
        && token.split('.').take(2).all(|s| !s.is_empty())
}

fn clean_name(name: &str) -> Option<String> {
    (!name.is_empty() && name.len() <= MAX_NAME_LEN && name.bytes().all(|c| c.is_ascii_graphic()))
        .then(|| name.to_owned())
}

fn auth_scheme(o: &Observation<'_>) -> AuthScheme {
    let Some(c) = &o.credential else {
        return AuthScheme::None;
    };
    match c.scheme {
        CredentialScheme::Basic => AuthScheme::Basic,
        CredentialScheme::Bearer => {
            let token = o
                .request_headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .and_then(|(_, v)| {
                    let v = v.trim();
                    let (s, t) = v.split_once(' ')?;
                    s.eq_ignore_ascii_case("bearer").then(|| t.trim())
                });
            if token.is_some_and(is_jwt_shaped) {
                AuthScheme::BearerJwt
            } else {
                AuthScheme::BearerOpaque
            }
        }
        CredentialScheme::ApiKeyHeader => {
            let name = c
                .name
                .map(str::to_owned)
                .or_else(|| {
                    o.request_headers
                        .iter()
                        .find(|(k, _)| classify_name(k) == Some(DataClass::ApiKey))
                        .map(|(k, _)| k.to_owned())
                })
                .and_then(|n| clean_name(&n.to_ascii_lowercase()));
            AuthScheme::ApiKeyHeader(name.unwrap_or_else(|| "unknown".into()))
        }
        CredentialScheme::ApiKeyQuery => {
            let name = c
                .name
                .map(Cow::Borrowed)
                .or_else(|| {
                    o.query?
                        .split('&')
                        .take(MAX_QUERY_PAIRS)
                        .map(|p| p.split_once('=').map_or(p, |(n, _)| n))
                        .map(|n| percent_decode(n, true))
                        .find(|n| classify_name(n) == Some(DataClass::ApiKey))
                })
                .and_then(|n| clean_name(&n));
            AuthScheme::ApiKeyQuery(name.unwrap_or_else(|| "unknown".into()))
        }
    }
}

/// What did not fit, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overflow {
    /// Observations of new endpoints refused for `max_endpoints`.
    pub endpoints: u64,
    /// Observations whose host was too long to keep.
    #[serde(default)]
    pub bad_host: u64,
    /// Observations whose path got an overflow template from the templater (they are
    /// recorded under that `…/*` template).
    #[serde(default)]
    pub templates: u64,
}

impl Overflow {
    fn add(&mut self, other: &Overflow) {
        self.endpoints = self.endpoints.saturating_add(other.endpoints);
        self.bad_host = self.bad_host.saturating_add(other.bad_host);
        self.templates = self.templates.saturating_add(other.templates);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    host: String,
    /// The route's own text (shared, not copied per exchange).
    template: Arc<str>,
    method: &'static str,
}

struct PathValues<'a>(Vec<(&'a str, &'a str)>);

/// The endpoint inventory; see the module documentation.
#[derive(Debug)]
pub struct Inventory {
    cfg: InventoryConfig,
    /// Its own, or the one the agent's parsing task templates every path with.
    templater: SharedTemplater,
    /// The templater's epoch the endpoints are keyed by.
    epoch: u64,
    endpoints: BTreeMap<Key, Endpoint>,
    overflow: Overflow,
    /// The endpoint the last [`Inventory::observe`] recorded to (for [`Inventory::observe_llm`]).
    last: Option<Key>,
    /// Bodies answered again and again are scanned once.
    scans: ScanCache,
}

impl Inventory {
    /// An empty inventory with `cfg` (call [`InventoryConfig::validate`] first to refuse
    /// out-of-range values; zero caps keep nothing).
    pub fn new(cfg: &InventoryConfig) -> Inventory {
        Self::with_templater(cfg, SharedTemplater::new(&cfg.templates))
    }

    /// An empty inventory keyed by `templater`'s routes: observations may carry the route
    /// their path got from it ([`Observation::route`]), so each path is templated once.
    pub fn with_templater(cfg: &InventoryConfig, templater: SharedTemplater) -> Inventory {
        Inventory {
            cfg: cfg.clone(),
            templater,
            epoch: 0,
            endpoints: BTreeMap::new(),
            overflow: Overflow::default(),
            last: None,
            scans: ScanCache::default(),
        }
    }

    /// Adds an LLM call's model and tokens to the endpoint the exchange was just recorded to
    /// by [`Inventory::observe`] (nothing when it was not kept).
    pub fn observe_llm(&mut self, o: &LlmObservation<'_>) {
        let Some(ep) = self.last.as_ref().and_then(|k| self.endpoints.get_mut(k)) else {
            return;
        };
        let stats = ep.llm.get_or_insert_with(|| LlmStats {
            flavour: o.flavour.to_owned(),
            ..LlmStats::default()
        });
        let total = o.prompt_tokens.saturating_add(o.completion_tokens);
        stats.add(
            o.model,
            &ModelTokens {
                calls: 1,
                prompt_tokens: o.prompt_tokens,
                completion_tokens: o.completion_tokens,
                estimated_tokens: if o.estimated { total } else { 0 },
            },
        );
    }

    /// The templater, e.g. to add known templates from a spec.
    pub fn templater_mut(&mut self) -> std::sync::MutexGuard<'_, Templater> {
        self.templater.lock()
    }

    /// Records one exchange. Bounded work: linear in the path, query and the first
    /// `max_body_bytes` of each body, plus a re-key of the endpoints when templates folded.
    pub fn observe(&mut self, o: &Observation<'_>) {
        let previous = self.last.take();
        if o.host.len() > MAX_HOST_LEN {
            self.overflow.bad_host = self.overflow.bad_host.saturating_add(1);
            return;
        }
        let route = self.route_of(o);
        let route = route.as_ref();
        // Most routes have no parameters: no iterator to set up and drain for nothing.
        let path = PathValues(if route.template.params.is_empty() {
            Vec::new()
        } else {
            route.values(o.path).collect()
        });
        let is_overflow = route.source == Source::Overflow;
        if is_overflow {
            self.overflow.templates = self.overflow.templates.saturating_add(1);
        }
        let method = method_of(o.method);
        // The same endpoint as the last exchange (the common case) reuses its key: no
        // lower-cased copy of the host to make and free.
        let key = match previous {
            Some(k)
                if k.method == method
                    && (Arc::ptr_eq(&k.template, route.text())
                        || *k.template == **route.text())
                    && (k.host == o.host || k.host.eq_ignore_ascii_case(o.host)) =>
            {
                k
            }
            _ => Key {
                host: o.host.to_ascii_lowercase(),
                template: route.text().clone(),
                method,
            },
        };
        let cfg = &self.cfg;
        let room = self.endpoints.len() < cfg.max_endpoints;
        let ep = match self.endpoints.get_mut(&key) {
            Some(ep) => ep,
            None if room => {
                let mut ep = Endpoint::new(&key.host, key.method, &key.template, o.time);
                ep.overflow = is_overflow;
                self.endpoints.entry(key.clone()).or_insert(ep)
            }
            None => {
                self.overflow.endpoints = self.overflow.endpoints.saturating_add(1);
                return;
            }
        };
        ep.observe(o, cfg, &path, &mut self.scans);
        self.last = Some(key);
    }

    /// The current route of `o`'s path: the one it carries while no fold happened since,
    /// else brought up to date (and the endpoints re-keyed) under the templater's lock.
    fn route_of<'o>(&mut self, o: &Observation<'o>) -> Cow<'o, Route> {
        if let Some(route) = o.route.filter(|r| r.epoch == self.epoch) {
            return Cow::Borrowed(route);
        }
        let shared = self.templater.clone();
        let mut templater = shared.lock();
        let route = match o.route {
            Some(route) => templater.current(o.host, route),
            None => templater.template(o.host, o.path),
        };
        if templater.epoch() != self.epoch {
            self.epoch = templater.epoch();
            let moved: Vec<(Key, Arc<str>)> = self
                .endpoints
                .keys()
                .filter_map(|k| {
                    let canon = templater.canonical(&k.host, &k.template)?;
                    (*canon != *k.template).then(|| (k.clone(), canon))
                })
                .collect();
            drop(templater);
            self.rekey(moved);
        }
        Cow::Owned(route)
    }

    /// Moves entries whose template was generalised under the current one.
    fn rekey(&mut self, moved: Vec<(Key, Arc<str>)>) {
        for (old, canon) in moved {
            let Some(mut ep) = self.endpoints.remove(&old) else {
                continue;
            };
            let new = Key {
                host: old.host,
                template: canon,
                method: old.method,
            };
            // Path parameter stats are keyed by name; the new template names its
            // parameters itself, so only the ones it still has are kept.
            // Every parameter of the template gets an entry, even before a value is seen,
            // so that a `{name}` segment without one is known to be literal text.
            let names: Vec<&str> = param_names(&new.template).collect();
            ep.path_params.retain(|n, _| names.contains(&n.as_str()));
            for n in names {
                ep.path_params.entry(n.to_owned()).or_default();
            }
            ep.template = new.template.to_string();
            match self.endpoints.get_mut(&new) {
                Some(target) => target.merge(&ep, &self.cfg),
                None => {
                    self.endpoints.insert(new, ep);
                }
            }
        }
    }

    /// Folds in another inventory (a loaded snapshot, another worker's), within this one's
    /// caps.
    pub fn merge(&mut self, other: &Inventory) {
        for ep in other.endpoints.values() {
            self.insert_endpoint(ep);
        }
        self.overflow.add(&other.overflow);
    }

    fn insert_endpoint(&mut self, ep: &Endpoint) {
        if ep.host.len() > MAX_HOST_LEN {
            self.overflow.bad_host = self.overflow.bad_host.saturating_add(ep.count);
            return;
        }
        let key = Key {
            host: ep.host.to_ascii_lowercase(),
            template: ep.template.as_str().into(),
            method: method_of(&ep.method),
        };
        if let Some(mine) = self.endpoints.get_mut(&key) {
            mine.merge(ep, &self.cfg);
        } else if self.endpoints.len() < self.cfg.max_endpoints {
            let mut fresh = Endpoint::new(&key.host, key.method, &key.template, ep.first_seen);
            fresh.merge(ep, &self.cfg);
            self.endpoints.insert(key, fresh);
        } else {
            self.overflow.endpoints = self.overflow.endpoints.saturating_add(ep.count);
        }
    }

    /// The endpoints ordered by host, template, method.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.endpoints.values()
    }

    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    pub fn overflow(&self) -> Overflow {
        self.overflow
    }

    pub fn config(&self) -> &InventoryConfig {
        &self.cfg
    }

    /// Moves whenever templates were generalised (endpoints re-keyed).
    pub fn templater_epoch(&self) -> u64 {
        self.epoch
    }
}

/// The names of a template's `{param}` segments, in order.
pub fn param_names(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

fn method_of(m: &str) -> &'static str {
    // Methods come upper case but for a rare client: an exact match first.
    METHODS
        .iter()
        .find(|k| **k == m)
        .or_else(|| METHODS.iter().find(|k| k.eq_ignore_ascii_case(m)))
        .copied()
        .unwrap_or("OTHER")
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    endpoints: Vec<&'a Endpoint>,
    overflow: Overflow,
}

#[derive(Deserialize)]
struct Snapshot {
    #[allow(dead_code)]
    version: u32,
    endpoints: Vec<Endpoint>,
    #[serde(default)]
    overflow: Overflow,
}

/// Serialised as `{"version": 1, "endpoints": [...], "overflow": {...}}`.
impl Serialize for Inventory {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SnapshotRef {
            version: 1,
            endpoints: self.endpoints.values().collect(),
            overflow: self.overflow,
        }
        .serialize(s)
    }
}

/// Loads into an inventory with the default configuration, through its caps; merge the
/// result into an inventory built with the real configuration ([`Inventory::merge`]), or use
/// [`Inventory::load_snapshot`] directly.
impl<'de> Deserialize<'de> for Inventory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut inv = Inventory::new(&InventoryConfig::default());
        inv.add_snapshot(Snapshot::deserialize(d)?);
        Ok(inv)
    }
}

impl Inventory {
    /// Folds a serialised inventory (a snapshot file, the daemon's answer) into this one,
    /// within this one's caps. Returns the number of endpoints the snapshot held.
    pub fn load_snapshot(&mut self, json: &[u8]) -> Result<usize, serde_json::Error> {
        let snap: Snapshot = serde_json::from_slice(json)?;
        let n = snap.endpoints.len();
        self.add_snapshot(snap);
        Ok(n)
    }

    fn add_snapshot(&mut self, snap: Snapshot) {
        for ep in &snap.endpoints {
            self.insert_endpoint(ep);
        }
        self.overflow.add(&snap.overflow);
    }
}

#[cfg(test)]
mod tests;
