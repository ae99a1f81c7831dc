//! LLM calls on the parsing task: each exchange's LLM facts are computed once
//! ([`api_guard::llm`]) and carried with it; their metrics and the per-key accounting are
//! recorded here.

pub mod book;
pub mod egress;
pub mod labels;
pub mod usage;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use api_guard::discover::persist;
use api_guard::{
    config::{invalid, Invalid},
    identity::{AuthorizationCache, Identifier},
    llm::{
        self,
        providers::{self, ProviderHost, ProviderMatcher},
        ExtraPath, LlmCall,
    },
};
use serde::Deserialize;
use tracing::warn;

use crate::{
    exchange::{Exchange, Role},
    telemetry::{CallLabels, Metrics, TokenType},
    wallclock,
};
use labels::{KeyLabels, ModelLabels};
use usage::SharedUsage;

/// The `[llm]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Recognise LLM API calls (default true).
    pub enabled: bool,
    /// Extra paths served with a known flavour (exact match), e.g.
    /// `{ path = "/gen", flavour = "openai_chat" }` (default none).
    pub paths: Vec<ExtraPath>,
    /// Distinct `model` label values before `other` (default 50).
    pub max_model_labels: usize,
    /// Credential hashes with their own `key` label: the top N by tokens (default 100).
    pub max_key_labels: usize,
    /// Rows of the per key × model × client accounting (default 10000).
    pub max_usage_entries: usize,
    /// `max_tokens` assumed by token limits when a request names none (default 4096).
    pub default_max_tokens: u64,
    /// AI provider API hosts for the egress inventory and `llm_data_leak` on prompts:
    /// `{ name, host }`, `host` exact or with one `*` for (part of) one label (default: the
    /// major providers, see docs/configuration.md). Setting it replaces the whole list.
    pub providers: Vec<ProviderHost>,
    /// Providers local processes may call; another one is an `llm_unapproved_provider`
    /// event (default empty: no list, no events).
    pub allowed_providers: Vec<String>,
    /// Rows (process × provider) of the egress inventory; the least recently seen is evicted
    /// past it (default 1000).
    pub max_egress_entries: usize,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            paths: Vec::new(),
            max_model_labels: 50,
            max_key_labels: 100,
            max_usage_entries: 10_000,
            default_max_tokens: 4096,
            providers: providers::default_providers(),
            allowed_providers: Vec::new(),
            max_egress_entries: 1000,
        }
    }
}

impl LlmConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        for (i, p) in self.paths.iter().enumerate() {
            if !p.path.starts_with('/') || p.path.len() > 1024 {
                return Err(invalid(
                    format!("llm.paths[{i}].path"),
                    format!("{:?} must start with `/` (at most 1024 bytes)", p.path),
                ));
            }
        }
        if self.max_usage_entries == 0 || self.max_usage_entries > 1_000_000 {
            return Err(invalid("llm.max_usage_entries", "must be 1..=1000000"));
        }
        if self.providers.len() > 1024 {
            return Err(invalid("llm.providers", "at most 1024 entries"));
        }
        for (i, p) in self.providers.iter().enumerate() {
            providers::check(p).map_err(|e| invalid(format!("llm.providers[{i}]"), e))?;
        }
        for (i, a) in self.allowed_providers.iter().enumerate() {
            if !self.providers.iter().any(|p| &p.name == a) {
                return Err(invalid(
                    format!("llm.allowed_providers[{i}]"),
                    format!("{a:?} is no provider name of llm.providers"),
                ));
            }
        }
        if self.max_egress_entries == 0 || self.max_egress_entries > 100_000 {
            return Err(invalid("llm.max_egress_entries", "must be 1..=100000"));
        }
        if self.max_key_labels > 10_000 || self.max_model_labels > 10_000 {
            return Err(invalid(
                "llm.max_key_labels",
                "label bounds must be <= 10000",
            ));
        }
        Ok(())
    }
}

/// Keys tracked for the top-N key labels (volumes of more keys are not remembered).
const MAX_TRACKED_KEYS: usize = 10_000;

pub struct LlmCalls {
    config: LlmConfig,
    models: ModelLabels,
    keys: KeyLabels,
    usage: SharedUsage,
    metrics: Metrics,
    /// Hashes the credential of outgoing calls (incoming ones have theirs from the client
    /// identity).
    outgoing: Identifier,
    credentials: AuthorizationCache,
    /// The egress inventory (calls of local processes to AI providers).
    egress: Option<egress::EgressTracker>,
}

impl LlmCalls {
    pub fn new(
        config: LlmConfig,
        api_key_headers: Vec<String>,
        usage: SharedUsage,
        metrics: Metrics,
    ) -> Self {
        Self {
            models: ModelLabels::new(config.max_model_labels),
            keys: KeyLabels::new(config.max_key_labels, MAX_TRACKED_KEYS),
            config,
            usage,
            metrics,
            outgoing: Identifier::new(Vec::new(), &api_key_headers, &[]),
            credentials: AuthorizationCache::new(),
            egress: None,
        }
    }

    /// Also keeps the egress inventory.
    pub fn with_egress(mut self, tracker: egress::EgressTracker) -> Self {
        self.egress = Some(tracker);
        self
    }

    /// The provider matcher of `llm.providers`.
    pub fn provider_matcher(config: &LlmConfig) -> ProviderMatcher {
        ProviderMatcher::new(&config.providers)
    }

    /// The hash of the credential an outgoing request carries.
    fn outgoing_key(&mut self, exchange: &Exchange) -> Option<String> {
        let h = &exchange.http;
        self.outgoing
            .identify_cached(
                None,
                &h.request_headers,
                h.query.as_deref(),
                &mut self.credentials,
            )
            .credential
            .map(|c| c.hash)
    }

    /// Tokens a token limit reserves for a request just complete (estimated prompt +
    /// `max_tokens`), if it is an LLM API call: the same figure its exchange carries later
    /// as `llm.reservation`.
    pub fn reservation(&self, request: &Exchange) -> Option<u64> {
        if !self.config.enabled {
            return None;
        }
        let (_, req) = llm::request_facts(&request.http, &self.config.paths)?;
        Some(llm::LlmFacts::reservation(
            &req,
            self.config.default_max_tokens,
        ))
    }

    /// Sets `exchange.llm` for an LLM API call, and records its metrics and usage.
    pub fn annotate(&mut self, exchange: &mut Exchange) {
        if !self.config.enabled {
            return;
        }
        let provider = match (&mut self.egress, exchange.conn.role) {
            (Some(e), Role::Client) => e.provider_of(exchange).map(str::to_owned),
            _ => None,
        };
        let Some((facts, req)) = llm::analyze_with_request(&exchange.http, &self.config.paths)
        else {
            // Other calls to a provider (files, model lists) are in the inventory too.
            if let Some(p) = provider {
                let key = self.outgoing_key(exchange);
                if let Some(e) = &self.egress {
                    e.observe(exchange, &p, key.as_deref(), None);
                }
            }
            return;
        };
        let key = match exchange.conn.role {
            Role::Server => exchange
                .client
                .as_ref()
                .and_then(|c| c.credential.as_ref())
                .map(|c| c.hash.clone()),
            // Our own process calling an LLM API: the key it sends (hashed).
            Role::Client => self.outgoing_key(exchange),
        };
        let call = LlmCall {
            reservation: llm::LlmFacts::reservation(&req, self.config.default_max_tokens),
            facts,
            key,
        };
        self.record(exchange, &call);
        if let (Some(p), Some(e)) = (provider, &self.egress) {
            e.observe(exchange, &p, call.key.as_deref(), Some(&call));
        }
        exchange.llm = Some(Box::new(call));
    }

    fn record(&mut self, exchange: &Exchange, call: &LlmCall) {
        let f = &call.facts;
        let model = self.models.label(f.model_name());
        let key = self.keys.label(call.key.as_deref(), f.usage.total());
        let status = exchange
            .http
            .status
            .map_or_else(|| "none".to_string(), |s| s.to_string());
        let labels = CallLabels {
            role: exchange.conn.role.as_str(),
            provider: f.provider.as_str(),
            model: &model,
            key: &key,
            status: &status,
        };
        let m = &self.metrics.llm;
        m.call(&labels);
        m.tokens(&labels, TokenType::Prompt, f.estimated, f.usage.prompt);
        m.tokens(
            &labels,
            TokenType::Completion,
            f.estimated,
            f.usage.completion,
        );
        m.tokens(&labels, TokenType::Cached, f.estimated, f.usage.cached);
        m.tokens(
            &labels,
            TokenType::Reasoning,
            f.estimated,
            f.usage.reasoning,
        );
        if let Some(ns) = f.ttft_ns {
            m.ttft(&labels, ns);
        }
        if let Some(ns) = f.inter_token_ns {
            m.inter_token(&labels, ns);
        }
        let client = match exchange.conn.role {
            Role::Server => exchange
                .client
                .as_ref()
                .and_then(|c| c.ip)
                .map_or_else(|| "unknown".to_string(), |ip| ip.to_string()),
            Role::Client => exchange.conn.comm.clone(),
        };
        let now = wallclock::unix_secs_from_monotonic(wallclock::monotonic_now_ns());
        let mut book = self.usage.lock();
        let before = book.overflowed();
        book.record(call, &client, now);
        let overflowed = book.overflowed() - before;
        drop(book);
        if overflowed > 0 {
            m.usage_overflow(overflowed);
        }
    }
}

/// Prepares `dir` for the usage snapshot and folds the last one in; `None` (snapshots off)
/// when `every_secs` is 0 or the directory is unusable (logged).
pub fn persist_dir(
    dir: &Path,
    every_secs: u64,
    usage: &SharedUsage,
) -> Option<(PathBuf, Duration)> {
    if every_secs == 0 {
        return None;
    }
    if let Err(error) = persist::prepare_dir(dir) {
        warn!(%error, "LLM usage will not be kept across restarts");
        return None;
    }
    usage.load_logged(dir);
    Some((dir.to_path_buf(), Duration::from_secs(every_secs)))
}

/// The `api-guard llm usage` table.
pub fn render_usage(rows: &[usage::UsageRow], overflowed: u64) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{:<26} {:<32} {:<20} {:>8} {:>12} {:>12} {:>10} {:>10} {:>6}  {:<20} {:<20}\n",
        "KEY",
        "MODEL",
        "CLIENT",
        "REQUESTS",
        "PROMPT",
        "COMPLETION",
        "CACHED",
        "REASONING",
        "EST%",
        "FIRST SEEN",
        "LAST SEEN"
    );
    let time = |secs: u64| api_guard::wallclock::rfc3339_from_unix_secs(secs);
    for r in rows {
        let total = r.prompt_tokens.saturating_add(r.completion_tokens);
        let est = if total == 0 {
            0.0
        } else {
            r.estimated_tokens as f64 * 100.0 / total as f64
        };
        let _ = writeln!(
            out,
            "{:<26} {:<32} {:<20} {:>8} {:>12} {:>12} {:>10} {:>10} {:>5.1}%  {:<20} {:<20}",
            r.key,
            r.model,
            r.client,
            r.requests,
            r.prompt_tokens,
            r.completion_tokens,
            r.cached_tokens,
            r.reasoning_tokens,
            est,
            time(r.first_seen),
            time(r.last_seen)
        );
    }
    if rows.is_empty() {
        out.push_str("(no LLM calls seen)\n");
    }
    if overflowed > 0 {
        let _ = writeln!(
            out,
            "{overflowed} calls accounted to `other` (llm.max_usage_entries reached)"
        );
    }
    out
}
