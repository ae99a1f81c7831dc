//! Cross-node abuse signals: key sharing counted over the cluster. A stolen key used from six
//! addresses, two per node, never crosses a per-node threshold of five; counted in Redis it
//! does.
//!
//! The detection thread ([`SignalTap`]) hands the cluster task each (credential hash, client
//! address) pair once per window, with a copy of the exchange's event context. The cluster task
//! ([`SignalBuffer`]) gathers them and, every sync tick, adds each credential's addresses to a
//! HyperLogLog per credential and window (`PFADD` + `PFCOUNT`, one Lua call per credential, all
//! pipelined); the node whose call first sees the count above the threshold also wins a
//! `SET NX` and alone reports `auth.key_sharing_cluster`: one event per credential and window
//! for the whole cluster. Redis sees only the credential's hash (hashed again) and addresses.
//!
//! LLM keys answered for many addresses are counted the same way by a second tap
//! ([`SignalTap::llm_keys`]), with `[detect.llm_key_abuse]`'s threshold and window, in counters
//! of their own, reported as `llm.key_sharing_cluster`.

use std::{
    collections::{hash_map::Entry, HashMap},
    hash::{BuildHasher, RandomState},
    net::IpAddr,
    num::NonZeroUsize,
};

use api_guard::{
    detect::{rules, Finding, Rule},
    identity::ClientIdentity,
};
use lru::LruCache;

use super::{context::EventContext, unix_ms, Publisher};
use crate::{exchange::Exchange, output::EventSink, telemetry::Metrics};

/// (credential, address) pairs the detection thread remembers having sent.
const MAX_PAIRS: usize = 65_536;
/// Credentials waiting for the next tick; beyond it new ones are dropped (counted).
pub const MAX_PENDING: usize = 4096;
/// Addresses kept per pending credential (more than any threshold needs in one tick).
const MAX_ADDRS: usize = 64;

/// One pair seen, with what an event about it shows.
#[derive(Debug)]
pub struct Seen {
    pub credential: String,
    pub ip: IpAddr,
    /// Tumbling window index (unix seconds / window).
    pub window: u64,
    pub window_secs: u64,
    pub threshold: usize,
    /// What is reported: `auth.key_sharing_cluster` or `llm.key_sharing_cluster`.
    pub rule: &'static Rule,
    context: EventContext,
}

/// The detection thread's side: deduplicates pairs per window and never waits.
pub struct SignalTap {
    publisher: Publisher,
    sent: LruCache<(u64, IpAddr), u64>,
    hasher: RandomState,
    threshold: usize,
    window_secs: u64,
    rule: &'static Rule,
}

impl SignalTap {
    pub fn new(publisher: Publisher, threshold: usize, window_secs: u64) -> Self {
        Self {
            publisher,
            sent: api_guard::lazy_lru::bounded(
                NonZeroUsize::new(MAX_PAIRS).unwrap_or(NonZeroUsize::MIN),
            ),
            hasher: RandomState::new(),
            threshold,
            window_secs: window_secs.max(1),
            rule: &rules::AUTH_KEY_SHARING_CLUSTER,
        }
    }

    /// A tap for LLM keys (the caller hands it answered LLM calls only).
    pub fn llm_keys(publisher: Publisher, threshold: usize, window_secs: u64) -> Self {
        Self {
            rule: &rules::LLM_KEY_SHARING_CLUSTER,
            ..Self::new(publisher, threshold, window_secs)
        }
    }

    pub fn observe(&mut self, ex: &Exchange, client: &ClientIdentity) {
        let (Some(credential), Some(ip)) = (&client.credential, client.ip) else {
            return;
        };
        let window = unix_ms() / 1000 / self.window_secs;
        let pair = (self.hasher.hash_one(&credential.hash), ip);
        if self.sent.get(&pair) == Some(&window) {
            return;
        }
        self.sent.put(pair, window);
        self.publisher.signal(Seen {
            credential: credential.hash.clone(),
            ip,
            window,
            window_secs: self.window_secs,
            threshold: self.threshold,
            rule: self.rule,
            context: EventContext::of(ex, client),
        });
    }
}

/// One credential's addresses in one window, waiting for the next tick.
pub struct Pending {
    pub addrs: Vec<IpAddr>,
    /// The latest pair, for the event.
    pub last: Box<Seen>,
}

impl Seen {
    /// The Redis key tag of the count this pair goes to (one per rule).
    pub fn tag(&self) -> &'static str {
        if self.rule == &rules::LLM_KEY_SHARING_CLUSTER {
            "lks"
        } else {
            "ks"
        }
    }
}

/// The cluster task's side: pairs gathered between ticks (bounded).
#[derive(Default)]
pub struct SignalBuffer {
    /// By credential, window and rule.
    pending: HashMap<(String, u64, &'static str), Pending>,
}

impl SignalBuffer {
    /// Adds a pair; false when the buffer is full (the caller counts the drop).
    pub fn add(&mut self, seen: Seen) -> bool {
        let full = self.pending.len() >= MAX_PENDING;
        match self
            .pending
            .entry((seen.credential.clone(), seen.window, seen.rule.id()))
        {
            Entry::Occupied(mut e) => {
                let p = e.get_mut();
                if p.addrs.len() < MAX_ADDRS && !p.addrs.contains(&seen.ip) {
                    p.addrs.push(seen.ip);
                }
                *p.last = seen;
                true
            }
            Entry::Vacant(_) if full => false,
            Entry::Vacant(e) => {
                e.insert(Pending {
                    addrs: vec![seen.ip],
                    last: Box::new(seen),
                });
                true
            }
        }
    }

    pub fn take(&mut self) -> Vec<Pending> {
        self.pending.drain().map(|(_, p)| p).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Reports the cluster-wide key sharing this node won the right to report.
pub fn report(events: &EventSink, metrics: &Metrics, seen: &Seen, count: u64) {
    let evidence = format!(
        "{count} client addresses across the cluster in a {} s window (limit {})",
        seen.window_secs, seen.threshold
    );
    let finding = Finding::new(seen.rule, "client", &evidence);
    seen.context.report(&finding, events, metrics);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(rule: &'static Rule, ip: u8) -> Seen {
        let client = ClientIdentity::of_peer(Some([192, 0, 2, ip].into()));
        Seen {
            credential: "sha256:0123456789abcdef".into(),
            ip: [192, 0, 2, ip].into(),
            window: 7,
            window_secs: 600,
            threshold: 5,
            rule,
            context: EventContext::for_test(&client, "POST", "/v1/chat/completions", 200, 1),
        }
    }

    /// One credential counted as an API key and as an LLM key goes to two separate counts.
    #[test]
    fn llm_keys_are_counted_apart_from_other_credentials() {
        let mut buffer = SignalBuffer::default();
        for ip in 1..=3 {
            assert!(buffer.add(seen(&rules::AUTH_KEY_SHARING_CLUSTER, ip)));
            assert!(buffer.add(seen(&rules::LLM_KEY_SHARING_CLUSTER, ip + 10)));
        }
        let mut pending = buffer.take();
        pending.sort_by_key(|p| p.last.tag());
        let tags: Vec<(&str, usize, &str)> = pending
            .iter()
            .map(|p| (p.last.tag(), p.addrs.len(), p.last.rule.id()))
            .collect();
        assert_eq!(
            tags,
            [
                ("ks", 3, "auth.key_sharing_cluster"),
                ("lks", 3, "llm.key_sharing_cluster")
            ]
        );
        assert!(buffer.is_empty());
    }
}
