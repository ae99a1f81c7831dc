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

use std::{
    collections::{hash_map::Entry, HashMap},
    hash::{BuildHasher, RandomState},
    net::IpAddr,
    num::NonZeroUsize,
};

use api_guard::{
    detect::{rules, Finding},
    event::{ClientView, Detection, EventBody, ExchangeContext, RequestView, SecurityEvent},
    identity::ClientIdentity,
};
use lru::LruCache;

use super::{unix_ms, Publisher};
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
    client: ClientView,
    method: String,
    path: String,
    host: Option<String>,
    pid: u32,
    comm: String,
    status: Option<u16>,
    conn_id: u64,
    tls: bool,
}

/// The detection thread's side: deduplicates pairs per window and never waits.
pub struct SignalTap {
    publisher: Publisher,
    sent: LruCache<(u64, IpAddr), u64>,
    hasher: RandomState,
    threshold: usize,
    window_secs: u64,
}

impl SignalTap {
    pub fn new(publisher: Publisher, threshold: usize, window_secs: u64) -> Self {
        Self {
            publisher,
            sent: LruCache::new(NonZeroUsize::new(MAX_PAIRS).unwrap_or(NonZeroUsize::MIN)),
            hasher: RandomState::new(),
            threshold,
            window_secs: window_secs.max(1),
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
        let request = RequestView::of(ex);
        self.publisher.signal(Seen {
            credential: credential.hash.clone(),
            ip,
            window,
            window_secs: self.window_secs,
            threshold: self.threshold,
            client: ClientView::of(client),
            method: request.method.into(),
            path: request.path.into(),
            host: request.host.map(Into::into),
            pid: request.pid,
            comm: request.comm.into(),
            status: ex.http.status,
            conn_id: ex.conn.conn_id,
            tls: ex.conn.tls(),
        });
    }
}

/// One credential's addresses in one window, waiting for the next tick.
pub struct Pending {
    pub addrs: Vec<IpAddr>,
    /// The latest pair, for the event.
    pub last: Box<Seen>,
}

/// The cluster task's side: pairs gathered between ticks (bounded).
#[derive(Default)]
pub struct SignalBuffer {
    pending: HashMap<(String, u64), Pending>,
}

impl SignalBuffer {
    /// Adds a pair; false when the buffer is full (the caller counts the drop).
    pub fn add(&mut self, seen: Seen) -> bool {
        let full = self.pending.len() >= MAX_PENDING;
        match self.pending.entry((seen.credential.clone(), seen.window)) {
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
    let finding = Finding::new(&rules::AUTH_KEY_SHARING_CLUSTER, "client", &evidence);
    metrics.detect.finding(finding.kind, finding.severity);
    let context = ExchangeContext {
        client: seen.client.clone(),
        request: RequestView {
            method: &seen.method,
            path: &seen.path,
            host: seen.host.as_deref(),
            pid: seen.pid,
            comm: &seen.comm,
        },
        status: seen.status,
        conn_id: seen.conn_id,
        tls: seen.tls,
        suppressed: 0,
    };
    let body = EventBody::Detection(Detection {
        finding: &finding,
        context,
    });
    events.emit(&SecurityEvent::new(
        crate::wallclock::monotonic_now_ns(),
        body,
    ));
}
