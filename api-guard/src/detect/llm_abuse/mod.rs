//! LLM key abuse (LLMjacking): stolen model-API keys are validated (model lists probed with
//! many keys, keys guessed until one is accepted), then consumed — from many addresses, at a
//! rate far above the key's own habit, on models its owner never used.
//!
//! Per credential hash ([`keys`]): one key answered from more client addresses than
//! `max_clients_per_key` within `sharing_window_secs`; tokens in a `spike_window_secs` window
//! above `spike_factor` × the key's moving average over `baseline_secs` and above
//! `spike_min_tokens`; a model the key never asked for once `model_learning_secs` have passed
//! since it was first seen. These are judged when an LLM call has been answered with a 2xx
//! (the LLM layer's facts: model, reported usage): refused guesses create no key state, so a
//! brute force cannot evict the keys it is not holding.
//!
//! Per client address ([`clients`]): model-list endpoints (`/v1/models`, `/api/tags`,
//! `/v1beta/models`…) asked with more than `enumeration_max_keys` distinct keys (no key counts
//! as one) within `enumeration_window_secs`, judged as soon as the request is complete; more
//! than `brute_force_max_keys` distinct keys answered 401/403 on LLM API paths within
//! `brute_force_window_secs`, judged on the answer.
//!
//! State lives in two LRU tables of at most `max_tracked` entries, each entry of bounded size;
//! entries pushed out are counted ([`LlmAbuseDetector::take_evictions`]). Each rule reports
//! once per key (or client) and window.

mod clients;
mod keys;
#[cfg(test)]
mod tests;

use std::{
    hash::{BuildHasher, Hash, RandomState},
    net::IpAddr,
    num::NonZeroUsize,
};

use lru::LruCache;
use serde::Deserialize;

use super::{
    config::{invalid, Invalid},
    finding::Finding,
    request::{Context, Request},
    rules,
};
use crate::llm::Flavour;
use clients::ClientState;
use keys::KeyState;

const NS: u64 = 1_000_000_000;
/// Longest window, baseline or learning period accepted, in seconds (30 days).
const MAX_SECS: u64 = 30 * 86_400;
/// Most entries a table may be configured for.
const MAX_TRACKED: usize = 1 << 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmAbuseConfig {
    /// Run this detector (default true).
    pub enabled: bool,
    /// Report LLM keys answered for many client addresses (default true).
    pub key_sharing: bool,
    /// Distinct client addresses one LLM key may be answered for within
    /// `sharing_window_secs` (default 5).
    pub max_clients_per_key: usize,
    /// Window for `max_clients_per_key`, in seconds (default 600).
    pub sharing_window_secs: u64,
    /// Report token-rate spikes per key (default true).
    pub token_spike: bool,
    /// Times the key's moving average a window's tokens must exceed (default 10).
    pub spike_factor: f64,
    /// Tokens a window must reach to be a spike at all (default 20000).
    pub spike_min_tokens: u64,
    /// Window tokens are summed over, in seconds (default 60).
    pub spike_window_secs: u64,
    /// Period of the moving average, in seconds (default 3600); a key is judged once it has
    /// been known this long.
    pub baseline_secs: u64,
    /// Report models a key never used before (default true).
    pub unseen_model: bool,
    /// Seconds after a key is first seen during which its models are learnt, not judged
    /// (default 86400).
    pub model_learning_secs: u64,
    /// Report model lists probed with several keys by one client (default true).
    pub enumeration: bool,
    /// Distinct keys (no key counts as one) one client may list models with within
    /// `enumeration_window_secs` (default 3).
    pub enumeration_max_keys: usize,
    /// Window for `enumeration_max_keys`, in seconds (default 600).
    pub enumeration_window_secs: u64,
    /// Report many distinct keys refused (401/403) for one client (default true).
    pub brute_force: bool,
    /// Distinct keys answered 401/403 one client may send within `brute_force_window_secs`
    /// (default 10).
    pub brute_force_max_keys: usize,
    /// Window for `brute_force_max_keys`, in seconds (default 600).
    pub brute_force_window_secs: u64,
    /// Entries per table (keys, clients); the least recently seen are dropped beyond it
    /// (default 65536).
    pub max_tracked: usize,
}

impl Default for LlmAbuseConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            key_sharing: true,
            max_clients_per_key: 5,
            sharing_window_secs: 600,
            token_spike: true,
            spike_factor: 10.0,
            spike_min_tokens: 20_000,
            spike_window_secs: 60,
            baseline_secs: 3600,
            unseen_model: true,
            model_learning_secs: 86_400,
            enumeration: true,
            enumeration_max_keys: 3,
            enumeration_window_secs: 600,
            brute_force: true,
            brute_force_max_keys: 10,
            brute_force_window_secs: 600,
            max_tracked: 65_536,
        }
    }
}

impl LlmAbuseConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        let field = |name: &str| format!("detect.llm_key_abuse.{name}");
        for (name, secs) in [
            ("sharing_window_secs", self.sharing_window_secs),
            ("spike_window_secs", self.spike_window_secs),
            ("baseline_secs", self.baseline_secs),
            ("enumeration_window_secs", self.enumeration_window_secs),
            ("brute_force_window_secs", self.brute_force_window_secs),
        ] {
            if secs == 0 || secs > MAX_SECS {
                return Err(invalid(
                    field(name),
                    format!("must be between 1 and {MAX_SECS}"),
                ));
            }
        }
        if self.model_learning_secs > MAX_SECS {
            return Err(invalid(
                field("model_learning_secs"),
                format!("must be at most {MAX_SECS}"),
            ));
        }
        if self.baseline_secs < self.spike_window_secs {
            return Err(invalid(
                field("baseline_secs"),
                "must be at least `spike_window_secs`",
            ));
        }
        for (name, value) in [
            ("max_clients_per_key", self.max_clients_per_key),
            ("enumeration_max_keys", self.enumeration_max_keys),
            ("brute_force_max_keys", self.brute_force_max_keys),
        ] {
            if value == 0 || value > keys::MAX_LIMIT {
                return Err(invalid(
                    field(name),
                    format!("must be between 1 and {}", keys::MAX_LIMIT),
                ));
            }
        }
        if !(self.spike_factor.is_finite() && self.spike_factor >= 1.0) {
            return Err(invalid(field("spike_factor"), "must be a number >= 1"));
        }
        if self.spike_min_tokens == 0 {
            return Err(invalid(field("spike_min_tokens"), "must be at least 1"));
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

/// What the LLM layer found in one answered LLM call (the agent's `exchange.llm`).
#[derive(Debug, Clone, Copy)]
pub struct LlmUse<'a> {
    /// The model the request asked for (else the one answering).
    pub model: Option<&'a str>,
    /// Prompt + completion tokens of the call.
    pub tokens: u64,
}

pub struct LlmAbuseDetector {
    config: LlmAbuseConfig,
    /// Keys credential hashes and models; random per process so clients cannot aim collisions.
    hasher: RandomState,
    keys: LruCache<u64, KeyState>,
    clients: LruCache<IpAddr, ClientState>,
    evictions: u64,
}

impl LlmAbuseDetector {
    pub fn new(config: &LlmAbuseConfig) -> Result<Self, Invalid> {
        config.validate()?;
        let cap = NonZeroUsize::new(config.max_tracked).unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            config: config.clone(),
            hasher: RandomState::new(),
            keys: crate::lazy_lru::bounded(cap),
            clients: crate::lazy_lru::bounded(cap),
            evictions: 0,
        })
    }

    /// Entries pushed out of the tables since the last call.
    pub fn take_evictions(&mut self) -> u64 {
        std::mem::take(&mut self.evictions)
    }

    /// A complete request (and, offline or when it was never handed out alone, its answer):
    /// model-list probing, and refused keys when the status is known.
    pub fn inspect(&mut self, req: &Request<'_>, ctx: &Context<'_>, out: &mut Vec<Finding>) {
        if self.config.enumeration {
            self.enumeration(req, ctx, out);
        }
        self.inspect_outcome(req, ctx, out);
    }

    /// What only the answer tells: refused keys.
    pub fn inspect_outcome(
        &mut self,
        req: &Request<'_>,
        ctx: &Context<'_>,
        out: &mut Vec<Finding>,
    ) {
        if !self.config.brute_force || !matches!(req.status, Some(401 | 403)) {
            return;
        }
        let (Some(ip), Some(credential)) = (ctx.client.ip, &ctx.client.credential) else {
            return;
        };
        if !is_llm_path(req) {
            return;
        }
        let c = &self.config;
        let key = self.hasher.hash_one(credential.hash.as_str());
        let window = c.brute_force_window_secs.saturating_mul(NS);
        let state = entry(&mut self.clients, ip, &mut self.evictions);
        if let Some(n) = state
            .refused
            .hit(ctx.now_ns, window, c.brute_force_max_keys, key)
        {
            out.push(Finding::new(
                &rules::LLM_KEY_BRUTE_FORCE,
                "client",
                &format!(
                    "{n} distinct keys refused (401/403) within {} s (limit {})",
                    c.brute_force_window_secs, c.brute_force_max_keys
                ),
            ));
        }
    }

    fn enumeration(&mut self, req: &Request<'_>, ctx: &Context<'_>, out: &mut Vec<Finding>) {
        let Some(ip) = ctx.client.ip else { return };
        if !is_model_list(req.method, req.path) {
            return;
        }
        let c = &self.config;
        let key = self
            .hasher
            .hash_one(ctx.client.credential.as_ref().map(|c| c.hash.as_str()));
        let window = c.enumeration_window_secs.saturating_mul(NS);
        let state = entry(&mut self.clients, ip, &mut self.evictions);
        if let Some(n) = state
            .listing
            .hit(ctx.now_ns, window, c.enumeration_max_keys, key)
        {
            let path: String = req.path.chars().take(48).collect();
            out.push(Finding::new(
                &rules::LLM_MODEL_ENUMERATION,
                "client",
                &format!(
                    "models listed with {n} distinct keys within {} s (limit {}), e.g. {} {path}",
                    c.enumeration_window_secs, c.enumeration_max_keys, req.method
                ),
            ));
        }
    }

    /// An LLM call answered with a 2xx: key sharing, token spikes, unseen models for its key.
    pub fn inspect_use(
        &mut self,
        status: Option<u16>,
        llm: &LlmUse<'_>,
        ctx: &Context<'_>,
        out: &mut Vec<Finding>,
    ) {
        let Some(credential) = &ctx.client.credential else {
            return;
        };
        if !status.is_some_and(|s| (200..300).contains(&s)) {
            return;
        }
        let c = &self.config;
        let now = ctx.now_ns;
        let id = self.hasher.hash_one(credential.hash.as_str());
        let model = llm.model.map(|m| (m, self.hasher.hash_one(m)));
        let state = entry_with(
            &mut self.keys,
            id,
            || KeyState::new(now),
            &mut self.evictions,
        );
        if c.key_sharing {
            if let Some(ip) = ctx.client.ip {
                let window = c.sharing_window_secs.saturating_mul(NS);
                if let Some(n) = state.sharing(ip, now, window, c.max_clients_per_key) {
                    out.push(Finding::new(
                        &rules::LLM_KEY_SHARING,
                        "client",
                        &format!(
                            "LLM key {} used from {n} client addresses within {} s",
                            credential.hash, c.sharing_window_secs
                        ),
                    ));
                }
            }
        }
        if c.token_spike {
            let spike = state.tokens(
                now,
                llm.tokens,
                &keys::SpikeLimits {
                    window: c.spike_window_secs.saturating_mul(NS),
                    baseline: c.baseline_secs.saturating_mul(NS),
                    factor: c.spike_factor,
                    floor: c.spike_min_tokens,
                },
            );
            if let Some(s) = spike {
                out.push(Finding::new(
                    &rules::LLM_TOKEN_SPIKE,
                    "client",
                    &format!(
                        "{} tokens in {} s; the key's average is {:.1} per {} s (limit {}x, floor {})",
                        s.tokens,
                        c.spike_window_secs,
                        s.average,
                        c.spike_window_secs,
                        c.spike_factor,
                        c.spike_min_tokens
                    ),
                ));
            }
        }
        if c.unseen_model {
            if let Some((name, hash)) = model {
                let learning = c.model_learning_secs.saturating_mul(NS);
                if let Some(known) = state.model(now, learning, hash) {
                    let name: String = name.chars().take(48).collect();
                    out.push(Finding::new(
                        &rules::LLM_UNSEEN_MODEL,
                        "body:$.model",
                        &format!(
                            "model {name} never used by this key before ({known} known after {} s of learning)",
                            c.model_learning_secs
                        ),
                    ));
                }
            }
        }
    }
}

/// `table`'s entry for `key`, made by `make` if missing; a full table's eviction is counted.
fn entry_with<'a, K: Hash + Eq, V>(
    table: &'a mut LruCache<K, V>,
    key: K,
    make: impl FnOnce() -> V,
    evictions: &mut u64,
) -> &'a mut V {
    if table.len() == table.cap().get() && !table.contains(&key) {
        *evictions += 1;
    }
    table.get_or_insert_mut(key, make)
}

fn entry<'a, K: Hash + Eq, V: Default>(
    table: &'a mut LruCache<K, V>,
    key: K,
    evictions: &mut u64,
) -> &'a mut V {
    entry_with(table, key, V::default, evictions)
}

/// Model-list endpoints: OpenAI-compatible and Anthropic `GET /v1/models[/{id}]` (and a bare
/// `/models`), Gemini
/// `GET /v1beta/models[/{id}]`, Ollama `GET /api/tags`, `GET /api/ps`, `POST /api/show`,
/// Azure OpenAI `GET /openai/models` and `/openai/deployments`.
pub fn is_model_list(method: &str, path: &str) -> bool {
    // Bytes throughout (`/` cuts UTF-8 only at character boundaries): `trim_end_matches`
    // and the text compares set up a character search each, ~80 instructions a request.
    let mut path = path.as_bytes();
    while let [rest @ .., b'/'] = path {
        path = rest;
    }
    let method = method.as_bytes();
    if method != b"GET" && !method.eq_ignore_ascii_case(b"GET") {
        return method.eq_ignore_ascii_case(b"POST") && path.ends_with(b"/api/show");
    }
    // Every list path ends in a segment naming it: split at the last `/` once (this runs for
    // every request) instead of testing each suffix over the whole path.
    let Some(slash) = path.iter().rposition(|&b| b == b'/') else {
        return false;
    };
    let (parent, id) = (&path[..slash], &path[slash + 1..]);
    let list = match id {
        // `/models`, `/v1/models`, `/v1beta/models`, `/openai/models`.
        b"models" => {
            parent.is_empty()
                || parent.ends_with(b"/v1")
                || parent.ends_with(b"/v1beta")
                || parent.ends_with(b"/openai")
        }
        b"deployments" => parent.ends_with(b"/openai"),
        b"tags" | b"ps" => parent.ends_with(b"/api"),
        _ => false,
    };
    // One model's details: `/v1/models/{id}`, `/v1beta/models/{id}`.
    list || (!id.is_empty()
        && (parent.ends_with(b"/v1/models") || parent.ends_with(b"/v1beta/models")))
}

/// Paths of LLM APIs: inference calls (by their well-known suffix) and model lists.
pub fn is_llm_path(req: &Request<'_>) -> bool {
    Flavour::of_path(req.path).is_some() || is_model_list(req.method, req.path)
}
