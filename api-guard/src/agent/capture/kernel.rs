//! Kernel-side bookkeeping: exports the per-CPU drop counters and removes connection-table
//! entries of processes that exited without closing their sockets (exit closes fds without
//! a close syscall, so the kernel side never sees it).

use std::{path::Path, time::Duration};

use api_guard_common::{ConnInfo, ConnKey, Stat};
use aya::maps::{HashMap, MapData, PerCpuArray};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{
    adopt::{InsertError, KernelConns},
    gate::TgidGate,
    table::Untrack,
};
use crate::telemetry::Metrics;

const STATS_INTERVAL: Duration = Duration::from_secs(1);
const SWEEP_EVERY_TICKS: u32 = 10;

pub struct KernelState {
    pub stats: PerCpuArray<MapData, u64>,
    pub conns: HashMap<MapData, ConnKey, ConnInfo>,
    pub gate: TgidGate,
}

/// Adoption inserts through the gate: each entry opens its process's slot after the insert,
/// and one that wants its socket noted (`sock_wanted`) is counted before it, as the kernel
/// counts its own.
impl KernelConns for KernelState {
    fn insert_new(&mut self, key: ConnKey, info: ConnInfo) -> Result<(), InsertError> {
        let counted = info.sock_wanted != 0;
        if counted {
            self.gate.count_sock_wanted(key.tgid);
        }
        if let Err(e) = self.conns.insert_new(key, info) {
            if counted {
                self.gate.uncount_sock_wanted(key.tgid);
            }
            return Err(e);
        }
        self.gate.open(key.tgid, info.conn_id);
        Ok(())
    }

    fn remove_if(&mut self, key: ConnKey, conn_id: u64) {
        self.conns.remove_if(key, conn_id);
    }
}

impl KernelState {
    /// Sums each counter over CPUs and advances the matching Prometheus counters.
    pub fn export_stats(&self, metrics: &Metrics) {
        for stat in Stat::ALL {
            let Ok(values) = self.stats.get(&(stat as u32), 0) else {
                continue;
            };
            let total: u64 = values.iter().sum();
            metrics.set_kernel_stat(stat, total);
        }
    }

    /// Stops kernel capture of a connection userspace no longer parses, unless the fd was
    /// reused by a newer connection meanwhile.
    pub fn untrack(&mut self, key: ConnKey, conn_id: u64) {
        if self
            .conns
            .get(&key, 0)
            .is_ok_and(|info| info.conn_id == conn_id)
        {
            let _ = self.conns.remove(&key);
        }
    }

    /// Deletes entries whose process is gone; returns how many.
    pub fn sweep_dead(&mut self) -> usize {
        let dead: Vec<ConnKey> = self
            .conns
            .keys()
            .filter_map(Result::ok)
            .filter(|k| !Path::new(&format!("/proc/{}", k.tgid)).exists())
            .collect();
        for key in &dead {
            let _ = self.conns.remove(key);
        }
        dead.len()
    }

    /// Closes the tgid gate of processes left without tracked connections.
    pub fn sweep_gate(&mut self) -> usize {
        let conns = &self.conns;
        self.gate.sweep(|| {
            conns
                .keys()
                .filter_map(Result::ok)
                .map(|k: ConnKey| k.tgid)
                .collect()
        })
    }
}

pub async fn run(
    mut state: KernelState,
    mut untrack: mpsc::Receiver<Untrack>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(STATS_INTERVAL);
    let mut n = 0u32;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            Some((key, conn_id)) = untrack.recv() => {
                state.untrack(key, conn_id);
                continue;
            }
            () = shutdown.cancelled() => {
                state.export_stats(&metrics);
                return;
            }
        }
        state.export_stats(&metrics);
        n = n.wrapping_add(1);
        if n.is_multiple_of(SWEEP_EVERY_TICKS) {
            let removed = state.sweep_dead();
            if removed > 0 {
                debug!(
                    removed,
                    "Removed connections of exited processes from the kernel table"
                );
            }
            let closed = state.sweep_gate();
            if closed > 0 {
                debug!(closed, "Closed tgid gate slots without tracked connections");
            }
        }
    }
}
