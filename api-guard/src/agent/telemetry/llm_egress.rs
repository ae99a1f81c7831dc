//! The egress inventory: calls of local processes to AI providers, unapproved providers and
//! rows evicted. `provider` is a name of `llm.providers` (bounded by the configuration).

use prometheus::{IntCounter, IntCounterVec, Registry};

use super::{counter, counter_vec};

pub struct LlmEgress {
    calls: IntCounterVec,
    unapproved: IntCounterVec,
    evicted: IntCounter,
}

impl LlmEgress {
    pub(super) fn new(r: &Registry) -> Self {
        Self {
            calls: counter_vec(
                r,
                "apiguard_llm_egress_requests_total",
                "Requests of local processes to the AI providers of `llm.providers`, by provider.",
                &["provider"],
            ),
            unapproved: counter_vec(
                r,
                "apiguard_llm_egress_unapproved_total",
                "Processes that started calling a provider outside `llm.allowed_providers` \
                 (one per process and provider), by provider.",
                &["provider"],
            ),
            evicted: counter(
                r,
                "apiguard_llm_egress_evicted_total",
                "Egress inventory rows evicted, least recently seen first, because \
                 `llm.max_egress_entries` was reached.",
            ),
        }
    }

    pub fn call(&self, provider: &str) {
        self.calls.with_label_values(&[provider]).inc();
    }

    pub fn unapproved(&self, provider: &str) {
        self.unapproved.with_label_values(&[provider]).inc();
    }

    pub fn evicted(&self, n: u64) {
        self.evicted.inc_by(n);
    }
}
