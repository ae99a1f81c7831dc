//! The userspace connection table: one HTTP parser per live connection, keyed by (tgid, fd)
//! and checked against the kernel's conn_id so a reused fd never mixes two connections.
//! Bounded: at most `max_connections` entries, each parser's memory is bounded by its
//! limits, idle entries expire. Connections that turn out not to be HTTP (or upgrade) are
//! handed back to the kernel side to stop copying their payload.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};

use api_guard_common::{
    ConnKey, ADDR_TUPLE, DATA_NO_PAYLOAD, DATA_TRUNCATED, DIR_EGRESS, DIR_INGRESS, ROLE_SERVER,
};
use tokio::sync::mpsc;

use super::{
    events::{CloseEvent, ConnRef, DataEvent, Event, OpenEvent},
    procnet,
};
use crate::{
    exchange::{ConnMeta, Exchange, Role},
    http::{ConnState, HttpConnection, HttpExchange, HttpLimits, Stream},
    metrics::Metrics,
};

/// A request to stop capturing a connection in the kernel (removed only if the id matches).
pub type Untrack = (ConnKey, u64);

/// How many recently ignored connection ids are remembered to discard their in-flight events.
const IGNORED_MEMORY: usize = 4096;

struct Conn {
    meta: Arc<ConnMeta>,
    http: HttpConnection,
    last_ts_ns: u64,
    /// Counters of `http` already exported, to export only increments.
    seen_errors: u64,
    seen_lost: u64,
    buffered: usize,
}

pub struct ConnTable {
    conns: HashMap<(u32, u32), Conn>,
    limits: HttpLimits,
    max_connections: usize,
    idle_timeout_ns: u64,
    metrics: Metrics,
    untrack: mpsc::Sender<Untrack>,
    /// Sum of every parser's buffered bytes.
    buffered_total: usize,
    /// Connections dropped because they are not (or no longer) HTTP; events already on their
    /// way for them are expected, not drops.
    ignored: HashSet<u64>,
    ignored_order: VecDeque<u64>,
}

/// Which HTTP stream a direction carries, given the traced process's role.
fn stream(role: Role, dir: u8) -> Option<Stream> {
    match (role, dir) {
        (Role::Server, DIR_INGRESS) | (Role::Client, DIR_EGRESS) => Some(Stream::Request),
        (Role::Server, DIR_EGRESS) | (Role::Client, DIR_INGRESS) => Some(Stream::Response),
        _ => None,
    }
}

fn ignore_reason(state: ConnState) -> Option<&'static str> {
    match state {
        ConnState::Detecting | ConnState::Http => None,
        ConnState::NotHttp => Some("not_http"),
        ConnState::Upgraded => Some("upgraded"),
        ConnState::Failed => Some("failed"),
    }
}

impl ConnTable {
    pub fn new(
        limits: HttpLimits,
        max_connections: usize,
        idle_timeout: Duration,
        metrics: Metrics,
        untrack: mpsc::Sender<Untrack>,
    ) -> Self {
        Self {
            conns: HashMap::new(),
            limits,
            max_connections,
            idle_timeout_ns: idle_timeout.as_nanos() as u64,
            metrics,
            untrack,
            buffered_total: 0,
            ignored: HashSet::new(),
            ignored_order: VecDeque::new(),
        }
    }

    /// Applies one capture event; completed exchanges are appended to `out`.
    pub fn apply(&mut self, event: Event, out: &mut Vec<Exchange>) {
        match event {
            Event::Open(e) => self.open(e, out),
            Event::Data(e) => self.data(e, out),
            Event::Close(e) => self.close(e, out),
        }
        self.export_gauges();
    }

    fn open(&mut self, e: OpenEvent, out: &mut Vec<Exchange>) {
        let key = (e.conn.tgid, e.conn.fd);
        // A new connection on a known fd means we missed the old one's close.
        if let Some(old) = self.conns.remove(&key) {
            self.finish(old, e.ts_ns, out);
        }
        if self.conns.len() >= self.max_connections {
            self.metrics.userspace_drop("conn_table_full");
            return;
        }
        let (mut local, mut peer) = (e.local, e.peer);
        if e.addr_source != ADDR_TUPLE {
            if let Some((l, p)) = procnet::lookup(e.conn.tgid, e.conn.fd) {
                local = Some(l);
                peer = Some(p);
            }
        }
        let role = if e.role == ROLE_SERVER {
            Role::Server
        } else {
            Role::Client
        };
        let meta = ConnMeta {
            conn_id: e.conn.conn_id,
            role,
            pid: e.conn.tgid,
            comm: e.comm,
            local,
            peer,
            tls: false,
        };
        let conn = Conn {
            meta: Arc::new(meta),
            http: HttpConnection::new(self.limits),
            last_ts_ns: e.ts_ns,
            seen_errors: 0,
            seen_lost: 0,
            buffered: 0,
        };
        self.conns.insert(key, conn);
    }

    fn lookup(&mut self, conn: ConnRef) -> Option<&mut Conn> {
        match self.conns.get_mut(&(conn.tgid, conn.fd)) {
            Some(c) if c.meta.conn_id == conn.conn_id => Some(c),
            _ => None,
        }
    }

    fn data(&mut self, e: DataEvent, out: &mut Vec<Exchange>) {
        let Some(conn) = self.lookup(e.conn) else {
            if !self.ignored.contains(&e.conn.conn_id) {
                self.metrics.userspace_drop("unknown_conn");
            }
            return;
        };
        conn.last_ts_ns = e.ts_ns;
        let Some(stream) = stream(conn.meta.role, e.dir) else {
            self.metrics.userspace_drop("bad_direction");
            return;
        };
        let cut = e.gap_after > 0 && e.flags & (DATA_TRUNCATED | DATA_NO_PAYLOAD) != 0;
        let (gap_before, payload, gap_after) =
            (e.gap_before, e.payload, if cut { e.gap_after } else { 0 });
        self.drive(e.conn, out, |http, produced| {
            if gap_before > 0 {
                http.gap(stream, gap_before, e.ts_ns, produced);
            }
            if !payload.is_empty() {
                http.feed(stream, &payload, e.ts_ns, produced);
            }
            if gap_after > 0 {
                http.gap(stream, gap_after, e.ts_ns, produced);
            }
        });
    }

    fn close(&mut self, e: CloseEvent, out: &mut Vec<Exchange>) {
        let Some(conn) = self.lookup(e.conn) else {
            return;
        };
        let role = conn.meta.role;
        self.drive(e.conn, out, |http, produced| {
            for (dir, gap) in [
                (DIR_INGRESS, e.pending_gap[0]),
                (DIR_EGRESS, e.pending_gap[1]),
            ] {
                if let (true, Some(stream)) = (gap > 0, stream(role, dir)) {
                    http.gap(stream, gap, e.ts_ns, produced);
                }
            }
        });
        if let Some(conn) = self.conns.remove(&(e.conn.tgid, e.conn.fd)) {
            self.finish(conn, e.ts_ns, out);
        }
    }

    /// Runs `f` on the connection's parser, then exports what changed: exchanges, parse
    /// errors, lost exchanges, buffered bytes, and whether to stop capturing it.
    fn drive(
        &mut self,
        id: ConnRef,
        out: &mut Vec<Exchange>,
        f: impl FnOnce(&mut HttpConnection, &mut Vec<HttpExchange>),
    ) {
        let key = (id.tgid, id.fd);
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let mut produced = Vec::new();
        f(&mut conn.http, &mut produced);
        account(&self.metrics, conn, &mut self.buffered_total);
        out.extend(produced.into_iter().map(|http| Exchange {
            conn: conn.meta.clone(),
            http,
        }));
        let Some(reason) = ignore_reason(conn.http.state()) else {
            return;
        };
        if let Some(conn) = self.conns.remove(&key) {
            self.buffered_total = self.buffered_total.saturating_sub(conn.buffered);
        }
        self.metrics
            .http_connections_ignored
            .with_label_values(&[reason])
            .inc();
        self.remember_ignored(id.conn_id);
        // Best effort: if the queue is full the kernel just keeps copying for a while.
        let _ = self
            .untrack
            .try_send((ConnKey::new(id.tgid, id.fd), id.conn_id));
    }

    fn remember_ignored(&mut self, conn_id: u64) {
        if self.ignored_order.len() >= IGNORED_MEMORY {
            if let Some(old) = self.ignored_order.pop_front() {
                self.ignored.remove(&old);
            }
        }
        self.ignored.insert(conn_id);
        self.ignored_order.push_back(conn_id);
    }

    fn finish(&mut self, mut conn: Conn, ts_ns: u64, out: &mut Vec<Exchange>) {
        let mut produced = Vec::new();
        conn.http.close(ts_ns, &mut produced);
        account(&self.metrics, &mut conn, &mut self.buffered_total);
        out.extend(produced.into_iter().map(|http| Exchange {
            conn: conn.meta.clone(),
            http,
        }));
        self.buffered_total = self.buffered_total.saturating_sub(conn.buffered);
    }

    /// Finishes connections idle for longer than the timeout or whose process exited (its
    /// close was never seen), as of monotonic time `now_ns`.
    pub fn expire_idle(&mut self, now_ns: u64, out: &mut Vec<Exchange>) {
        let timeout = self.idle_timeout_ns;
        let mut alive: HashMap<u32, bool> = HashMap::new();
        let stale: Vec<(u32, u32)> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                let pid_alive = *alive
                    .entry(c.meta.pid)
                    .or_insert_with(|| process_alive(c.meta.pid));
                now_ns.saturating_sub(c.last_ts_ns) > timeout || !pid_alive
            })
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            if let Some(conn) = self.conns.remove(&key) {
                self.finish(conn, now_ns, out);
            }
        }
        self.export_gauges();
    }

    fn export_gauges(&self) {
        self.metrics
            .connections_tracked
            .set(self.conns.len() as i64);
        self.metrics
            .http_buffered_bytes
            .set(self.buffered_total as i64);
    }

    /// Finishes every connection (shutdown).
    pub fn drain(&mut self, now_ns: u64, out: &mut Vec<Exchange>) {
        let conns: Vec<Conn> = self.conns.drain().map(|(_, c)| c).collect();
        for conn in conns {
            self.finish(conn, now_ns, out);
        }
        self.export_gauges();
    }
}

/// Exports the increments of a parser's cumulative counters and its buffered-bytes change.
fn account(metrics: &Metrics, conn: &mut Conn, buffered_total: &mut usize) {
    let http = &conn.http;
    let errors = http.parse_errors();
    metrics
        .http_parse_errors
        .inc_by(errors.saturating_sub(conn.seen_errors));
    conn.seen_errors = errors;
    let lost = http.lost_exchanges();
    metrics
        .http_exchanges_lost
        .inc_by(lost.saturating_sub(conn.seen_lost));
    conn.seen_lost = lost;
    let buffered = http.buffered_bytes();
    *buffered_total = buffered_total
        .saturating_sub(conn.buffered)
        .saturating_add(buffered);
    conn.buffered = buffered;
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
