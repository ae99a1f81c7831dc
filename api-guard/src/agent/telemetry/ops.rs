//! The daemon itself: configuration reloads and readiness.

use std::sync::atomic::{AtomicBool, Ordering};

use prometheus::{IntCounterVec, Registry};

use super::{counter_vec, sum, Outcome};

pub struct Ops {
    reloads: IntCounterVec,
    ready: AtomicBool,
}

impl Ops {
    pub(super) fn new(r: &Registry) -> Self {
        Self {
            reloads: counter_vec(
                r,
                "apiguard_config_reloads_total",
                "Configuration reloads (SIGHUP or file change), by result (ok, error: rejected, the \
                 running configuration stays).",
                &["result"],
            ),
            ready: AtomicBool::new(false),
        }
    }

    pub fn reload(&self, outcome: Outcome) {
        self.reloads.with_label_values(&[outcome.as_str()]).inc();
    }

    /// Reloads so far with `outcome`.
    pub fn reloads(&self, outcome: Outcome) -> u64 {
        sum(&self.reloads, &[("result", outcome.as_str())])
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}
