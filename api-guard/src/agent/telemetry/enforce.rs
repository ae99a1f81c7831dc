//! Blocks, rate limits and the tables that hold them. The `policy` label is a configured
//! policy name (bounded by the configuration).

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Registry};

use super::{counter_vec, gauge, gauge_vec};
use crate::enforce::blocklist::{BlockReason, UnblockReason};

/// A bounded table that pushed an entry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Blocklist,
    Limiter,
}

impl Table {
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Blocklist => "blocklist",
            Table::Limiter => "limiter",
        }
    }
}

/// A kernel map update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapOp {
    Block,
    Unblock,
}

impl MapOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MapOp::Block => "block",
            MapOp::Unblock => "unblock",
        }
    }
}

pub struct Enforce {
    blocks: IntCounterVec,
    unblocks: IntCounterVec,
    would_block: IntCounterVec,
    blocked_clients: IntGauge,
    ratelimit_exceeded: IntCounterVec,
    ratelimit_keys: IntGaugeVec,
    evictions: IntCounterVec,
    errors: IntCounterVec,
}

impl Enforce {
    pub(super) fn new(r: &Registry) -> Self {
        Self {
            blocks: counter_vec(
                r,
                "apiguard_blocks_total",
                "Blocks put in force, by reason (manual, ratelimit, detection, config).",
                &["reason"],
            ),
            unblocks: counter_vec(
                r,
                "apiguard_unblocks_total",
                "Blocks lifted, by reason (expired, manual, evicted).",
                &["reason"],
            ),
            would_block: counter_vec(
                r,
                "apiguard_would_block_total",
                "Blocks not enforced because enforce.mode is dry-run, by reason.",
                &["reason"],
            ),
            blocked_clients: gauge(
                r,
                "apiguard_blocked_clients",
                "Addresses and ranges currently blocked.",
            ),
            ratelimit_exceeded: counter_vec(
                r,
                "apiguard_ratelimit_exceeded_total",
                "Requests that exceeded a rate-limit policy, by policy name.",
                &["policy"],
            ),
            ratelimit_keys: gauge_vec(
                r,
                "apiguard_ratelimit_keys",
                "Keys (clients, credentials, routes) a rate-limit policy tracks.",
                &["policy"],
            ),
            evictions: counter_vec(
                r,
                "apiguard_enforce_evictions_total",
                "Entries pushed out of a full table (blocklist, limiter).",
                &["table"],
            ),
            errors: counter_vec(
                r,
                "apiguard_enforce_errors_total",
                "Kernel map updates that failed, by operation.",
                &["op"],
            ),
        }
    }

    pub fn blocked(&self, reason: BlockReason) {
        self.blocks.with_label_values(&[reason.as_str()]).inc();
    }

    pub fn unblocked(&self, reason: UnblockReason) {
        self.unblocks.with_label_values(&[reason.as_str()]).inc();
    }

    pub fn would_block(&self, reason: BlockReason) {
        self.would_block.with_label_values(&[reason.as_str()]).inc();
    }

    pub fn set_blocked_clients(&self, n: usize) {
        self.blocked_clients.set(n as i64);
    }

    pub fn ratelimit_exceeded(&self, policy: &str) {
        self.ratelimit_exceeded.with_label_values(&[policy]).inc();
    }

    pub fn set_ratelimit_keys(&self, policy: &str, keys: usize) {
        self.ratelimit_keys
            .with_label_values(&[policy])
            .set(keys as i64);
    }

    pub fn evicted(&self, table: Table, n: u64) {
        self.evictions
            .with_label_values(&[table.as_str()])
            .inc_by(n);
    }

    pub fn map_error(&self, op: MapOp) {
        self.errors.with_label_values(&[op.as_str()]).inc();
    }

    #[cfg(test)]
    pub fn blocked_clients(&self) -> i64 {
        self.blocked_clients.get()
    }

    #[cfg(test)]
    pub fn blocks(&self, reason: BlockReason) -> u64 {
        self.blocks.with_label_values(&[reason.as_str()]).get()
    }

    #[cfg(test)]
    pub fn unblocks(&self, reason: UnblockReason) -> u64 {
        self.unblocks.with_label_values(&[reason.as_str()]).get()
    }

    #[cfg(test)]
    pub fn evictions(&self, table: Table) -> u64 {
        self.evictions.with_label_values(&[table.as_str()]).get()
    }

    #[cfg(test)]
    pub fn ratelimit_exceeded_count(&self, policy: &str) -> u64 {
        self.ratelimit_exceeded.with_label_values(&[policy]).get()
    }
}
