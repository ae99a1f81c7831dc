//! LLM calls: requests, tokens by type and key, time to first token, inter-token interval.
//! `model` is bounded like routes, `key` to the top keys by volume (`agent::llm::labels`).

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Registry};

use super::{counter, counter_vec, register};

/// Labels shared by one call's series.
pub struct CallLabels<'a> {
    pub role: &'static str,
    pub provider: &'static str,
    pub model: &'a str,
    pub key: &'a str,
    pub status: &'a str,
}

/// A token count's kind.
#[derive(Debug, Clone, Copy)]
pub enum TokenType {
    Prompt,
    Completion,
    Cached,
    Reasoning,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prompt => "prompt",
            Self::Completion => "completion",
            Self::Cached => "cached",
            Self::Reasoning => "reasoning",
        }
    }
}

pub struct Llm {
    requests: IntCounterVec,
    tokens: IntCounterVec,
    ttft: HistogramVec,
    inter_token: HistogramVec,
    usage_overflow: IntCounter,
}

impl Llm {
    pub(super) fn new(r: &Registry) -> Self {
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(buckets),
                    &["role", "provider", "model"],
                )
                .expect("valid metric definition"),
            )
        };
        Self {
            requests: counter_vec(
                r,
                "apiguard_llm_requests_total",
                "LLM API calls, by role, provider (API flavour), model (bounded) and status.",
                &["role", "provider", "model", "status"],
            ),
            tokens: counter_vec(
                r,
                "apiguard_llm_tokens_total",
                "LLM tokens, as the server reported them or estimated (`estimated=\"true\"`), \
                 by role, provider, model, credential hash (top keys by volume, else `other`; \
                 `none` without one) and type (prompt, completion, cached, reasoning).",
                &["role", "provider", "model", "key", "type", "estimated"],
            ),
            ttft: histogram(
                "apiguard_llm_time_to_first_token_seconds",
                "Streamed LLM answers: time from the end of the request to the first content delta.",
                vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
            ),
            inter_token: histogram(
                "apiguard_llm_inter_token_seconds",
                "Streamed LLM answers: mean interval between content events, one sample per answer.",
                vec![0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0],
            ),
            usage_overflow: counter(
                r,
                "apiguard_llm_usage_overflow_total",
                "LLM calls accounted to the `other` row because the usage table \
                 (`llm.max_usage_entries`) was full.",
            ),
        }
    }

    pub fn call(&self, l: &CallLabels) {
        self.requests
            .with_label_values(&[l.role, l.provider, l.model, l.status])
            .inc();
    }

    pub fn tokens(&self, l: &CallLabels, kind: TokenType, estimated: bool, n: u64) {
        if n == 0 {
            return;
        }
        let estimated = if estimated { "true" } else { "false" };
        self.tokens
            .with_label_values(&[l.role, l.provider, l.model, l.key, kind.as_str(), estimated])
            .inc_by(n);
    }

    pub fn ttft(&self, l: &CallLabels, ns: u64) {
        self.ttft
            .with_label_values(&[l.role, l.provider, l.model])
            .observe(ns as f64 / 1e9);
    }

    pub fn inter_token(&self, l: &CallLabels, ns: u64) {
        self.inter_token
            .with_label_values(&[l.role, l.provider, l.model])
            .observe(ns as f64 / 1e9);
    }

    pub fn usage_overflow(&self, n: u64) {
        self.usage_overflow.inc_by(n);
    }
}
