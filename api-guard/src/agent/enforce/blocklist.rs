//! The daemon's record of every block: why, since when, until when. The kernel maps hold
//! what XDP needs (end time, hit count); this table holds the rest and enforces the bound.

use std::{collections::HashMap, sync::Arc};

use api_guard_common::xdp::{REASON_CONFIG, REASON_DETECTION, REASON_MANUAL, REASON_RATELIMIT};
use serde::Serialize;

use super::target::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    /// `api-guard block` through the control socket.
    Manual,
    /// A rate-limit policy with action `block`.
    Ratelimit,
    /// A detection verdict.
    Detection,
    /// `enforce.deny` in the configuration.
    Config,
}

impl BlockReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockReason::Manual => "manual",
            BlockReason::Ratelimit => "ratelimit",
            BlockReason::Detection => "detection",
            BlockReason::Config => "config",
        }
    }

    pub fn code(self) -> u32 {
        match self {
            BlockReason::Manual => REASON_MANUAL,
            BlockReason::Ratelimit => REASON_RATELIMIT,
            BlockReason::Detection => REASON_DETECTION,
            BlockReason::Config => REASON_CONFIG,
        }
    }

    /// Reasons stored in pinned maps by an earlier daemon; unknown codes count as manual.
    pub fn from_code(code: u32) -> Self {
        match code {
            REASON_RATELIMIT => BlockReason::Ratelimit,
            REASON_DETECTION => BlockReason::Detection,
            REASON_CONFIG => BlockReason::Config,
            _ => BlockReason::Manual,
        }
    }
}

/// Why a block was lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnblockReason {
    /// Its time ran out.
    Expired,
    /// `api-guard unblock` through the control socket.
    Manual,
    /// Pushed out of a full blocklist by a newer block.
    Evicted,
    /// Dropped from `enforce.deny` by a reload.
    Config,
    /// Lifted by another node (cluster), or no longer in force in the cluster at a resync.
    Cluster,
}

impl UnblockReason {
    pub fn as_str(self) -> &'static str {
        match self {
            UnblockReason::Expired => "expired",
            UnblockReason::Manual => "manual",
            UnblockReason::Evicted => "evicted",
            UnblockReason::Config => "config",
            UnblockReason::Cluster => "cluster",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub target: Target,
    pub reason: BlockReason,
    /// The policy (rate limit) or rule (detection) behind it.
    pub policy: Option<Arc<str>>,
    /// Free text: the operator's `--reason`, or what was exceeded.
    pub detail: Option<String>,
    /// CLOCK_MONOTONIC ns.
    pub since_ns: u64,
    /// CLOCK_MONOTONIC ns at which it ends; `None`: until removed.
    pub until_ns: Option<u64>,
    /// The node that decided it, when another node did (cluster); `None`: this node.
    pub origin: Option<Arc<str>>,
}

impl Block {
    fn expired(&self, now_ns: u64) -> bool {
        self.until_ns.is_some_and(|until| now_ns >= until)
    }
}

/// Result of [`Blocklist::insert`].
#[derive(Debug, PartialEq)]
pub enum Inserted {
    New {
        evicted: Option<Block>,
    },
    /// The target was blocked already; the entry now ends at the later of the two ends.
    Extended,
    /// The table is full of entries that may not be evicted (config entries).
    Full,
}

/// Bounded: when full, the entry that would end soonest goes first (blocks without end
/// last; entries from the config file never).
pub struct Blocklist {
    entries: HashMap<Target, Block>,
    max: usize,
}

impl Blocklist {
    pub fn new(max: usize) -> Self {
        Self {
            entries: HashMap::new(),
            max: max.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn get(&self, target: &Target) -> Option<&Block> {
        self.entries.get(target)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Block> {
        self.entries.values()
    }

    pub fn insert(&mut self, block: Block) -> Inserted {
        if let Some(existing) = self.entries.get_mut(&block.target) {
            existing.until_ns = match (existing.until_ns, block.until_ns) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
            return Inserted::Extended;
        }
        let mut evicted = None;
        if self.entries.len() >= self.max {
            let victim = self
                .entries
                .values()
                .filter(|b| b.reason != BlockReason::Config)
                .min_by_key(|b| (b.until_ns.unwrap_or(u64::MAX), b.since_ns))
                .map(|b| b.target);
            match victim {
                Some(target) => evicted = self.entries.remove(&target),
                None => return Inserted::Full,
            }
        }
        self.entries.insert(block.target, block);
        Inserted::New { evicted }
    }

    pub fn remove(&mut self, target: &Target) -> Option<Block> {
        self.entries.remove(target)
    }

    /// Removes and returns the entries whose end has passed.
    pub fn expire(&mut self, now_ns: u64) -> Vec<Block> {
        let done: Vec<Target> = self
            .entries
            .values()
            .filter(|b| b.expired(now_ns))
            .map(|b| b.target)
            .collect();
        done.iter().filter_map(|t| self.entries.remove(t)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(target: &str, reason: BlockReason, until: Option<u64>) -> Block {
        Block {
            target: target.parse().unwrap(),
            reason,
            policy: None,
            detail: None,
            since_ns: 1,
            until_ns: until,
            origin: None,
        }
    }

    #[test]
    fn extends_and_expires() {
        let mut list = Blocklist::new(10);
        assert_eq!(
            list.insert(block("10.0.0.1", BlockReason::Manual, Some(100))),
            Inserted::New { evicted: None }
        );
        assert_eq!(
            list.insert(block("10.0.0.1", BlockReason::Ratelimit, Some(300))),
            Inserted::Extended
        );
        list.insert(block("10.0.0.2", BlockReason::Manual, None));
        assert!(list.expire(299).is_empty());
        let gone = list.expire(300);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].target.to_string(), "10.0.0.1");
        assert_eq!(gone[0].reason, BlockReason::Manual, "first reason kept");
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn full_table_evicts_the_soonest_ending_never_config() {
        let mut list = Blocklist::new(3);
        list.insert(block("10.0.0.0/8", BlockReason::Config, None));
        list.insert(block("10.0.0.2", BlockReason::Ratelimit, Some(500)));
        list.insert(block("10.0.0.3", BlockReason::Ratelimit, Some(200)));
        let Inserted::New { evicted: Some(e) } =
            list.insert(block("10.0.0.4", BlockReason::Manual, None))
        else {
            panic!("expected an eviction")
        };
        assert_eq!(e.target.to_string(), "10.0.0.3");
        assert_eq!(list.len(), 3);

        let mut only_config = Blocklist::new(1);
        only_config.insert(block("10.0.0.0/8", BlockReason::Config, None));
        assert_eq!(
            only_config.insert(block("10.0.0.9", BlockReason::Manual, None)),
            Inserted::Full
        );
    }

    #[test]
    fn reason_codes_round_trip() {
        for r in [
            BlockReason::Manual,
            BlockReason::Ratelimit,
            BlockReason::Detection,
            BlockReason::Config,
        ] {
            assert_eq!(BlockReason::from_code(r.code()), r);
        }
        assert_eq!(BlockReason::from_code(999), BlockReason::Manual);
    }
}
