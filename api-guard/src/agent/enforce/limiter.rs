//! GCRA (generic cell rate algorithm) rate limiter with bounded state.
//!
//! GCRA keeps one number per key, the theoretical arrival time (TAT) of its next request, so
//! a limit costs 8 bytes per client and no timers. Keys live in an LRU table of fixed size:
//! a flood of distinct keys (spoofed addresses, random API keys) pushes out the least recently
//! seen ones instead of growing memory, and the evictions are counted so that it shows.
//! A forgotten key starts again with a full burst, which errs on the side of letting requests
//! through.

use std::{hash::Hash, num::NonZeroUsize};

use lru::LruCache;

pub struct Limiter<K: Hash + Eq> {
    /// Theoretical arrival time per key, ns on the caller's monotonic clock.
    tats: LruCache<K, u64>,
    /// Emission interval T: ns between requests at the sustained rate.
    interval_ns: u64,
    /// How far ahead of `now` a TAT may be and still conform: T * (burst - 1).
    tolerance_ns: u64,
    evictions: u64,
}

impl<K: Hash + Eq> Limiter<K> {
    /// `rate` requests per second (> 0, may be fractional), `burst` >= 1 requests allowed at
    /// once; at most `max_keys` keys remembered.
    ///
    /// Out-of-contract values do not panic: a rate too high for nanosecond resolution is
    /// clamped to one request per ns, a zero, negative or NaN rate to the slowest one
    /// representable, and a zero burst counts as 1.
    pub fn new(rate: f64, burst: u32, max_keys: NonZeroUsize) -> Self {
        let interval = 1e9 / rate;
        // `as` saturates (and maps NaN to 0), so this cannot wrap.
        let interval_ns = if interval.is_nan() || interval < 0.0 {
            u64::MAX
        } else {
            (interval.round() as u64).max(1)
        };
        let tolerance_ns = interval_ns.saturating_mul(u64::from(burst.max(1) - 1));
        Self {
            tats: api_guard::lazy_lru::bounded(max_keys),
            interval_ns,
            tolerance_ns,
            evictions: 0,
        }
    }

    /// Counts one request of `key` at `now_ns` (monotonic); true if it conforms, false if it
    /// exceeds the limit (a non-conforming request does not consume capacity).
    pub fn check(&mut self, key: K, now_ns: u64) -> bool {
        if let Some(tat) = self.tats.get_mut(&key) {
            if *tat > now_ns.saturating_add(self.tolerance_ns) {
                return false;
            }
            *tat = (*tat).max(now_ns).saturating_add(self.interval_ns);
            return true;
        }
        // The key is absent, so anything `push` hands back was evicted to make room.
        if self
            .tats
            .push(key, now_ns.saturating_add(self.interval_ns))
            .is_some()
        {
            self.evictions += 1;
        }
        true
    }

    /// Charges `n` units (tokens) to `key` at `now_ns` whatever the answer — the call is
    /// under way and will spend them — and tells whether they fit: as `n` calls of
    /// [`check`](Self::check) at once would, all conforming.
    pub fn charge(&mut self, key: K, n: u64, now_ns: u64) -> bool {
        let cost = self.interval_ns.saturating_mul(n);
        let first = self.interval_ns.saturating_mul(n.saturating_sub(1));
        if !self.tats.contains(&key) && self.tats.len() == self.tats.cap().get() {
            self.evictions += 1;
        }
        let tat = self.tats.get_or_insert_mut(key, || now_ns);
        let start = (*tat).max(now_ns);
        let fits = start.saturating_add(first) <= now_ns.saturating_add(self.tolerance_ns);
        *tat = start.saturating_add(cost);
        fits
    }

    /// Corrects an earlier [`charge`](Self::charge) of `key` by `delta` units (actual minus
    /// reserved; a refund when negative) and tells whether the key is still within its
    /// limit (a unit more would conform).
    pub fn adjust(&mut self, key: &K, delta: i64, now_ns: u64) -> bool {
        let Some(tat) = self.tats.get_mut(key) else {
            return true;
        };
        let change = self.interval_ns.saturating_mul(delta.unsigned_abs());
        *tat = if delta >= 0 {
            tat.saturating_add(change)
        } else {
            tat.saturating_sub(change).max(now_ns)
        };
        *tat <= now_ns.saturating_add(self.tolerance_ns)
    }

    /// Keys currently remembered.
    pub fn len(&self) -> usize {
        self.tats.len()
    }

    #[cfg_attr(not(test), expect(dead_code, reason = "clippy pairs it with len"))]
    pub fn is_empty(&self) -> bool {
        self.tats.is_empty()
    }

    /// Keys pushed out (least recently used) because the table was full.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn limiter(rate: f64, burst: u32, max_keys: usize) -> Limiter<&'static str> {
        Limiter::new(rate, burst, NonZeroUsize::new(max_keys).unwrap())
    }

    /// How many of `n` requests at the same instant conform.
    fn passed(l: &mut Limiter<&'static str>, key: &'static str, now: u64, n: usize) -> usize {
        (0..n).filter(|_| l.check(key, now)).count()
    }

    #[test]
    fn token_charges_reserve_then_reconcile() {
        // 10 tokens/s, burst 100.
        let mut l = limiter(10.0, 100, 16);
        let t0 = 1_000 * SEC;
        assert!(l.charge("k", 60, t0));
        // 60 + 50 > 100: does not fit, charged all the same (the call is under way).
        assert!(!l.charge("k", 50, t0));
        // The first call used 20 of its 60: 40 back; 70 spent of 100 now.
        assert!(l.adjust(&"k", -40, t0));
        assert!(l.charge("k", 30, t0));
        assert!(!l.charge("k", 1, t0));
        // An overrun at reconciliation is reported.
        assert!(!l.adjust(&"k", 5, t0));
        // 10 s later, 100 tokens have come back.
        assert!(l.charge("k", 90, t0 + 10 * SEC + SEC / 2));
        assert!(l.charge("other", 100, t0));
        assert!(l.adjust(&"unknown", 5, t0));
    }

    #[test]
    fn burst_then_one_per_interval() {
        let mut l = limiter(10.0, 5, 16);
        let t0 = 1_000 * SEC;
        assert_eq!(passed(&mut l, "a", t0, 5), 5);
        assert!(!l.check("a", t0));
        // T = 100 ms: one more just after T, not before.
        assert!(!l.check("a", t0 + SEC / 10 - 1));
        assert!(l.check("a", t0 + SEC / 10));
        assert!(!l.check("a", t0 + SEC / 10));
        // Rejections consumed nothing: the next slot is exactly one T later.
        assert!(l.check("a", t0 + 2 * SEC / 10));
        // After a long pause the full burst is back, and no more.
        assert_eq!(passed(&mut l, "a", t0 + 100 * SEC, 10), 5);
        assert_eq!(l.len(), 1);
        assert_eq!(l.evictions(), 0);
    }

    #[test]
    fn sustained_rate_is_exact() {
        // 100 requests every 10 ms for 10 s at 20/s, burst 1: one in five passes.
        let mut l = limiter(20.0, 1, 4);
        let conforming = (0..1000u64).filter(|i| l.check("a", i * SEC / 100)).count();
        assert_eq!(conforming, 200);
    }

    #[test]
    fn burst_one_allows_one_at_a_time() {
        let mut l = limiter(1.0, 1, 4);
        assert!(l.check("a", 0));
        assert!(!l.check("a", 0));
        assert!(!l.check("a", SEC - 1));
        assert!(l.check("a", SEC));
    }

    #[test]
    fn fractional_rate() {
        // 0.5/s: T = 2 s.
        let mut l = limiter(0.5, 2, 4);
        assert_eq!(passed(&mut l, "a", 0, 3), 2);
        assert!(!l.check("a", SEC));
        assert!(!l.check("a", 2 * SEC - 1));
        assert!(l.check("a", 2 * SEC));
        assert!(!l.check("a", 3 * SEC));
        assert!(l.check("a", 4 * SEC));
    }

    #[test]
    fn keys_are_independent() {
        let mut l = limiter(1.0, 2, 4);
        assert_eq!(passed(&mut l, "a", 0, 3), 2);
        assert_eq!(passed(&mut l, "b", 0, 3), 2);
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn eviction_counting() {
        let mut l = limiter(1.0, 1, 2);
        assert!(l.is_empty());
        assert!(l.check("a", 0));
        assert!(l.check("b", 0));
        assert!(!l.check("a", 0)); // "a" is now most recently used.
        assert_eq!((l.len(), l.evictions()), (2, 0));
        assert!(l.check("c", 0)); // pushes out "b"
        assert_eq!((l.len(), l.evictions()), (2, 1));
        assert!(!l.check("a", 0));
        assert!(l.check("b", 0)); // forgotten, so a full burst again; pushes out "c"
        assert_eq!((l.len(), l.evictions()), (2, 2));
        assert!(!l.check("a", 0));
        assert!(!l.check("b", 0));
        assert_eq!((l.len(), l.evictions()), (2, 2));
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let mut l = limiter(0.001, u32::MAX, 4);
        assert!(l.check("a", u64::MAX));
        assert!(l.check("a", u64::MAX));
        assert!(l.check("z", 0));
        let mut l = limiter(1.0, 3, 4);
        assert_eq!(passed(&mut l, "a", 0, 4), 3);
        // The TAT saturates at u64::MAX, where everything conforms.
        assert_eq!(passed(&mut l, "b", u64::MAX - 1, 10), 10);
        // A clock stepping backwards keeps the TAT; requests are judged against it.
        assert_eq!(passed(&mut l, "c", 10 * SEC, 3), 3);
        assert!(!l.check("c", 5 * SEC));
        assert!(l.check("c", 11 * SEC));
    }

    #[test]
    fn out_of_contract_parameters_do_not_panic() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e300, 1e-300] {
            let mut l = limiter(rate, 0, 1);
            assert!(l.check("a", 5), "{rate}");
            assert!(l.check("b", u64::MAX), "{rate}");
        }
        // Faster than 1/ns is clamped to 1/ns.
        let mut l = limiter(1e12, 1, 1);
        assert!(l.check("a", 0));
        assert!(!l.check("a", 0));
        assert!(l.check("a", 1));
        // A zero rate never refills.
        let mut l = limiter(0.0, 1, 1);
        assert!(l.check("a", 0));
        assert!(!l.check("a", u64::MAX - 1));
    }
}
