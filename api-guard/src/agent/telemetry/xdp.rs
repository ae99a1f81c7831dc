//! The XDP guard: interfaces and per-verdict packet counts.

use std::sync::atomic::{AtomicU64, Ordering};

use api_guard_common::xdp::{XdpStat, XDP_STAT_COUNT};
use prometheus::{IntCounterVec, IntGauge, Registry};

use super::{counter_vec, gauge, sum};

pub struct Xdp {
    packets: IntCounterVec,
    interfaces: IntGauge,
    /// Last verdict totals seen, to turn totals into counter increments.
    last: [AtomicU64; XDP_STAT_COUNT as usize],
}

impl Xdp {
    pub(super) fn new(r: &Registry) -> Self {
        Self {
            packets: counter_vec(
                r,
                "apiguard_xdp_packets_total",
                "Packets seen by the XDP guard, by action (pass/drop) and reason.",
                &["action", "reason"],
            ),
            interfaces: gauge(
                r,
                "apiguard_xdp_interfaces_attached",
                "Interfaces the XDP guard is attached to.",
            ),
            last: Default::default(),
        }
    }

    pub fn set_interfaces(&self, n: usize) {
        self.interfaces.set(n as i64);
    }

    /// Records the guard's verdict totals (summed over CPUs, indexed by `XdpStat`).
    pub fn set_stats(&self, totals: &[u64; XDP_STAT_COUNT as usize]) {
        for stat in XdpStat::ALL {
            let total = totals[stat as usize];
            let last = self.last[stat as usize].swap(total, Ordering::Relaxed);
            // The labels are `XdpStat`'s own, defined with the kernel counters.
            let (action, reason) = stat.labels();
            // Touch every series so that zero counts are visible too.
            self.packets
                .with_label_values(&[action, reason])
                .inc_by(total.saturating_sub(last));
        }
    }

    /// Packets dropped so far, over every drop reason.
    pub fn dropped_packets(&self) -> u64 {
        XdpStat::ALL
            .into_iter()
            .filter(|s| {
                matches!(
                    s,
                    XdpStat::DroppedBlocklist | XdpStat::DroppedCidr | XdpStat::DroppedRatelimit
                )
            })
            .map(|s| {
                let (action, reason) = s.labels();
                // Read without creating the series (only `set_stats` does).
                sum(&self.packets, &[("action", action), ("reason", reason)])
            })
            .sum()
    }
}
