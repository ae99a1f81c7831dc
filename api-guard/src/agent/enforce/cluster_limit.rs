//! Cluster-scope limits (`scope = "cluster"`): one GCRA budget per key for the whole cluster,
//! kept in Redis, without the request path ever waiting on the network.
//!
//! Each node admits locally from what it learned at the last sync and hands its usage to the
//! cluster task, which every `sync_interval_ms` sends the units each key used and gets back,
//! per key, how far the cluster's theoretical arrival time (TAT) is ahead of now and how many
//! nodes use the key (one Lua call per key, all keys of a tick in one pipelined round trip).
//! Between syncs a node may admit its share of the key's headroom plus its share of what the
//! rate refills: `(headroom + elapsed × rate) / nodes`, overdrawing by less than one request's
//! cost (a share is often a fraction of a request). Everything admitted is charged in Redis, so
//! over any window `T` the cluster admits at most about `rate × T + burst + nodes × cost`, plus
//! what nodes admit on the fallback below (documented in docs/enforcement.md).
//!
//! Fallback: a key this node never synced, or last synced more than [`STALE_TICKS`] ticks ago
//! (Redis down or slow), is limited locally at `rate / expected_nodes` with a burst of
//! `burst / expected_nodes` (at least 1). What it admits is still reported when Redis answers.
//!
//! Costs are in units (requests today; tokens once policies count them): every method takes
//! a cost.

use std::{hash::Hash, num::NonZeroUsize};

use lru::LruCache;

/// Syncs missed before a key falls back to its local share.
pub const STALE_TICKS: u64 = 3;

#[derive(Debug, Clone, Default)]
struct KeyState {
    /// Units admitted since usage was last taken for a sync.
    unreported: f64,
    /// Units admitted since the last applied sync's snapshot.
    used_since_sync: f64,
    /// When the last applied sync's usage was taken (monotonic ns); 0: never synced.
    synced_ns: u64,
    /// This node's headroom (units) at `synced_ns`, already divided by the node count.
    share: f64,
    /// Nodes using the key at the last sync (>= 1).
    nodes: f64,
    /// When usage was taken for the sync under way (0: none).
    taking_ns: u64,
    /// Units admitted since `taking_ns`.
    since_taking: f64,
    /// Local GCRA TAT (ns) of the fallback.
    local_tat_ns: u64,
    /// Requested since the last take (admitted or not): a node whose requests are all
    /// refused still syncs, so it keeps counting as a node using the key.
    wanted: bool,
}

/// A key's usage handed to the cluster task.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage<K> {
    pub key: K,
    pub units: f64,
}

/// What Redis answered for a key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answer {
    /// How far the cluster TAT is ahead of Redis' now, ms (0 when behind).
    pub ahead_ms: f64,
    /// Nodes that used the key lately (>= 1).
    pub nodes: u32,
}

pub struct ClusterLimiter<K: Hash + Eq + Clone> {
    keys: LruCache<K, KeyState>,
    /// Keys requested since the last take, so a sync tick (under the enforcer's lock) visits
    /// only those, not every key held.
    dirty: Vec<K>,
    rate: f64,
    burst: f64,
    /// ns per unit of the fallback's local rate.
    local_interval_ns: f64,
    /// Units the fallback admits at once.
    local_burst: f64,
    stale_ns: u64,
    evictions: u64,
}

impl<K: Hash + Eq + Clone> ClusterLimiter<K> {
    /// `rate` units/s and `burst` units for the whole cluster; `expected_nodes` sizes the
    /// fallback share; `sync_ns` is the sync period.
    pub fn new(
        rate: f64,
        burst: u32,
        expected_nodes: u32,
        sync_ns: u64,
        max_keys: NonZeroUsize,
    ) -> Self {
        let nodes = f64::from(expected_nodes.max(1));
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            1e-9
        };
        Self {
            keys: api_guard::lazy_lru::bounded(max_keys),
            dirty: Vec::new(),
            rate,
            burst: f64::from(burst.max(1)),
            local_interval_ns: 1e9 * nodes / rate,
            local_burst: (f64::from(burst.max(1)) / nodes).max(1.0),
            stale_ns: sync_ns.saturating_mul(STALE_TICKS),
            evictions: 0,
        }
    }

    /// Admits `cost` units of `key` at `now_ns`, or not (a refused request uses nothing).
    pub fn check(&mut self, key: K, now_ns: u64, cost: f64) -> bool {
        if !self.keys.contains(&key) && self.keys.push(key.clone(), KeyState::default()).is_some() {
            self.evictions += 1;
        }
        let (rate, local_interval, local_burst, stale_ns) = (
            self.rate,
            self.local_interval_ns,
            self.local_burst,
            self.stale_ns,
        );
        let Some(st) = self.keys.get_mut(&key) else {
            return true;
        };
        let newly_wanted = !st.wanted;
        st.wanted = true;
        let fresh = st.synced_ns != 0 && now_ns.saturating_sub(st.synced_ns) <= stale_ns;
        let ok = if fresh {
            let elapsed = now_ns.saturating_sub(st.synced_ns) as f64 / 1e9;
            let allowance = st.share + elapsed * rate / st.nodes;
            // Admit while the share is not used up: a share is often a fraction of one
            // request, so a node may overdraw by less than one cost. The overdraft is charged
            // at the next sync and comes off the following shares.
            st.used_since_sync < allowance
        } else {
            // Local GCRA at the fallback share.
            let tat = (st.local_tat_ns.max(now_ns)) as f64 + cost * local_interval;
            let ok = tat - now_ns as f64 <= local_burst * local_interval + 1e-3;
            if ok {
                st.local_tat_ns = tat as u64;
            }
            ok
        };
        if ok {
            st.unreported += cost;
            st.used_since_sync += cost;
            if st.taking_ns != 0 {
                st.since_taking += cost;
            }
        }
        if newly_wanted {
            self.mark_dirty(key);
        }
        ok
    }

    /// Queues `key` for the next sync. Keys evicted while queued leave stale entries; when
    /// the queue reaches twice the table's size it is rebuilt from the keys still wanted
    /// (at most the table's size), so it stays bounded and the rebuild's cost is amortised
    /// over at least a table's worth of new keys.
    fn mark_dirty(&mut self, key: K) {
        if self.dirty.len() >= 2 * self.keys.cap().get() {
            self.dirty = self
                .keys
                .iter()
                .filter(|(_, st)| st.wanted)
                .map(|(k, _)| k.clone())
                .collect();
        } else {
            self.dirty.push(key);
        }
    }

    /// Usage to send: every key requested since the last take. Marks the
    /// snapshot time so the answer can be applied against what was admitted since.
    pub fn take_usage(&mut self, now_ns: u64, max: usize) -> Vec<Usage<K>> {
        let n = self.dirty.len().min(max);
        let mut out = Vec::with_capacity(n);
        for key in self.dirty.drain(..n) {
            // Evicted since, or a stale duplicate already taken: nothing to report.
            let Some(st) = self.keys.peek_mut(&key).filter(|st| st.wanted) else {
                continue;
            };
            st.wanted = false;
            out.push(Usage {
                key,
                units: st.unreported,
            });
            st.unreported = 0.0;
            st.taking_ns = now_ns;
            st.since_taking = 0.0;
        }
        out
    }

    /// Applies Redis' answer for `key` (usage taken at its `taking_ns`).
    pub fn apply(&mut self, key: &K, answer: Answer) {
        let (rate, burst) = (self.rate, self.burst);
        let Some(st) = self.keys.peek_mut(key) else {
            return;
        };
        if st.taking_ns == 0 {
            return;
        }
        let nodes = f64::from(answer.nodes.max(1));
        let headroom = burst - answer.ahead_ms.max(0.0) / 1000.0 * rate;
        st.share = headroom / nodes;
        st.nodes = nodes;
        st.synced_ns = st.taking_ns;
        st.used_since_sync = st.since_taking;
        st.taking_ns = 0;
        st.since_taking = 0.0;
    }

    /// A sync failed: what was taken is reported again next time.
    pub fn restore(&mut self, usage: &[Usage<K>]) {
        for u in usage {
            let Some(st) = self.keys.peek_mut(&u.key) else {
                continue;
            };
            st.unreported += u.units;
            st.taking_ns = 0;
            st.since_taking = 0.0;
            if !st.wanted {
                st.wanted = true;
                self.mark_dirty(u.key.clone());
            }
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn burst(&self) -> f64 {
        self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const TICK: u64 = S / 10;

    fn limiter(nodes: u32) -> ClusterLimiter<&'static str> {
        ClusterLimiter::new(10.0, 1, nodes, TICK, NonZeroUsize::new(8).unwrap())
    }

    /// Three nodes on one key, synced through a simulated Redis GCRA: over 10 s at 30 req/s
    /// offered (10 per node), the cluster admits at most rate × T + burst.
    #[test]
    fn three_nodes_share_one_budget() {
        let mut nodes: Vec<_> = (0..3).map(|_| limiter(1)).collect();
        let interval_ms = 100.0; // 10/s
        let mut tat_ms: f64 = 0.0;
        let mut admitted = 0;
        let start = S; // t = 1 s
        let end = start + 10 * S;
        let mut t = start;
        let mut next_sync = start;
        let mut i = 0;
        while t < end {
            if t >= next_sync {
                for n in nodes.iter_mut() {
                    let used: f64 = n.take_usage(t, 100).iter().map(|u| u.units).sum();
                    let now_ms = t as f64 / 1e6;
                    tat_ms = tat_ms.max(now_ms) + used * interval_ms;
                    n.apply(
                        &"k",
                        Answer {
                            ahead_ms: tat_ms - now_ms,
                            nodes: 3,
                        },
                    );
                }
                next_sync += TICK;
            }
            if nodes[i % 3].check("k", t, 1.0) {
                admitted += 1;
            }
            i += 1;
            t += S / 30;
        }
        // 10 s × 10/s + burst 1, plus one overdraft per node.
        assert!(admitted <= 101 + 3, "{admitted}");
        assert!(admitted >= 90, "{admitted}");
    }

    #[test]
    fn stale_keys_fall_back_to_the_local_share() {
        let mut l = limiter(2);
        // Never synced: 5/s locally, burst 1.
        let admitted = (0..20)
            .filter(|i| l.check("k", S + i * S / 20, 1.0))
            .count();
        assert_eq!(admitted, 5);
        // Synced with plenty of headroom: admitted from the cluster share.
        l.take_usage(2 * S, 10);
        l.apply(
            &"k",
            Answer {
                ahead_ms: 0.0,
                nodes: 1,
            },
        );
        assert!(l.check("k", 2 * S, 1.0));
        assert!(!l.check("k", 2 * S, 1.0), "burst 1");
        assert!(l.check("k", 2 * S + TICK, 1.0), "refilled");
        // Three ticks without a sync: the fallback again.
        assert!(l.check("k", 2 * S + 4 * TICK, 1.0));
    }

    #[test]
    fn a_flood_of_keys_keeps_the_sync_queue_bounded() {
        let mut l = ClusterLimiter::new(10.0, 1, 1, TICK, NonZeroUsize::new(4).unwrap());
        for i in 0..1000u32 {
            l.check(i, S, 1.0);
        }
        assert!(l.dirty.len() <= 8, "{}", l.dirty.len());
        let keys: Vec<u32> = l.take_usage(S, 100).into_iter().map(|u| u.key).collect();
        assert!(keys.contains(&999), "{keys:?}");
        assert!(l.take_usage(S, 100).is_empty());
    }

    #[test]
    fn costs_are_units_and_failed_syncs_report_again() {
        let mut l = ClusterLimiter::new(100.0, 50, 1, TICK, NonZeroUsize::new(8).unwrap());
        assert!(l.check("k", S, 30.0));
        assert!(!l.check("k", S, 30.0));
        let usage = l.take_usage(S, 10);
        assert_eq!(
            usage,
            vec![Usage {
                key: "k",
                units: 30.0
            }]
        );
        l.restore(&usage);
        assert_eq!(l.take_usage(S, 10)[0].units, 30.0);
    }
}
