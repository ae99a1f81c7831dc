//! Cluster mode (`[cluster]`): nodes share their blocks, cluster-scope limits and key-sharing
//! counts through Redis (or Valkey).
//!
//! Nothing here sits on the data path: enforcement and detection hand messages to one task
//! through a bounded queue ([`Publisher::publish`] never waits; a full queue is counted), and
//! that task alone talks to Redis. When Redis is down or slow every node enforces on its own:
//! its blocks are kept in an outbox and published after reconnecting, remote blocks are
//! resynced (blocks in force, then the stream from the last id seen).
//!
//! Redis holds (under `key_prefix`): `:blocks`, a hash of the blocks in force (field: target,
//! value: a [`BlockMsg`]), and `:block-events`, a stream of every block and unblock (field
//! `m`). Never a credential or a payload: messages carry addresses, reasons and policy names.

pub mod config;
pub mod context;
pub mod signals;
pub mod stuffing;
mod sync;
pub mod wire;

use std::sync::Arc;

use tokio::sync::mpsc;

pub use config::ClusterConfig;
pub use sync::{ClusterError, ClusterTask};
pub use wire::BlockMsg;

use crate::telemetry::{ClusterDrop, Metrics, SignalKind, SignalResult};

/// What the data path hands to the cluster task.
#[derive(Debug)]
pub enum Outgoing {
    Block(BlockMsg),
    Seen(Box<signals::Seen>),
    /// A failed login, for the cluster's credential-stuffing counts.
    Failed(Box<stuffing::Failed>),
}

/// The data path's handle on the cluster task: never waits, counts what does not fit.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<Outgoing>,
    node: Arc<str>,
    metrics: Metrics,
}

impl Publisher {
    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn publish(&self, msg: BlockMsg) {
        if self.tx.try_send(Outgoing::Block(msg)).is_err() {
            self.metrics.cluster.dropped(ClusterDrop::Queue);
        }
    }

    /// A (credential hash, address) pair for the cluster's key-sharing count.
    pub fn signal(&self, seen: signals::Seen) {
        if self.tx.try_send(Outgoing::Seen(Box::new(seen))).is_err() {
            self.metrics.cluster.dropped(ClusterDrop::Queue);
        }
    }
}

impl Publisher {
    /// A failed login for the cluster's credential-stuffing counts.
    pub fn failed_login(&self, failed: stuffing::Failed) {
        if self
            .tx
            .try_send(Outgoing::Failed(Box::new(failed)))
            .is_err()
        {
            self.metrics.cluster.dropped(ClusterDrop::Queue);
            self.metrics
                .cluster
                .signals(SignalKind::FailedLogin, SignalResult::Dropped, 1);
        }
    }
}

/// The queue between the data path and the cluster task.
pub fn channel(
    capacity: usize,
    node: Arc<str>,
    metrics: Metrics,
) -> (Publisher, mpsc::Receiver<Outgoing>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (Publisher { tx, node, metrics }, rx)
}

/// This node's name in the cluster: `cluster.node_name`, else `NODE_NAME`, else the
/// hostname.
pub fn node_name(config: &ClusterConfig) -> Result<Arc<str>, ClusterError> {
    if let Some(name) = config.node_name.as_deref().or(api_guard::node::node_name()) {
        return Ok(name.into());
    }
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
    // (the last byte stays 0 as we pass one less).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if rc == 0 && config::valid_node_name(name) => Ok(name.into()),
        _ => Err(ClusterError::NodeName),
    }
}

/// Unix time in ms (shared state carries wall-clock ends; nodes keep their clocks in sync
/// with NTP, as Kubernetes nodes do).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
