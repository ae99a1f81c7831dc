//! The userspace connection table: one HTTP parser per live connection, keyed by (tgid, fd)
//! and checked against the kernel's conn_id so a reused fd never mixes two connections.
//! Bounded: at most `max_connections` entries, idle ones expire.

use std::{collections::HashMap, sync::Arc, time::Duration};

use api_guard_common::{
    ADDR_TUPLE, DATA_NO_PAYLOAD, DATA_TRUNCATED, DIR_EGRESS, DIR_INGRESS, ROLE_SERVER,
};

use super::{
    events::{CloseEvent, ConnRef, DataEvent, Event, OpenEvent},
    procnet,
};
use crate::{
    exchange::{ConnMeta, Exchange, Role},
    http::{HttpConnection, HttpExchange, HttpLimits, Stream},
    metrics::Metrics,
};

struct Conn {
    meta: Arc<ConnMeta>,
    http: HttpConnection,
    last_ts_ns: u64,
}

pub struct ConnTable {
    conns: HashMap<(u32, u32), Conn>,
    limits: HttpLimits,
    max_connections: usize,
    idle_timeout_ns: u64,
    metrics: Metrics,
    scratch: Vec<HttpExchange>,
}

/// Which HTTP stream a direction carries, given the traced process's role.
fn stream(role: Role, dir: u8) -> Option<Stream> {
    match (role, dir) {
        (Role::Server, DIR_INGRESS) | (Role::Client, DIR_EGRESS) => Some(Stream::Request),
        (Role::Server, DIR_EGRESS) | (Role::Client, DIR_INGRESS) => Some(Stream::Response),
        _ => None,
    }
}

impl ConnTable {
    pub fn new(limits: HttpLimits, max_connections: usize, idle_timeout: Duration, metrics: Metrics) -> Self {
        Self {
            conns: HashMap::new(),
            limits,
            max_connections,
            idle_timeout_ns: idle_timeout.as_nanos() as u64,
            metrics,
            scratch: Vec::new(),
        }
    }

    /// Applies one capture event; completed exchanges are appended to `out`.
    pub fn apply(&mut self, event: Event, out: &mut Vec<Exchange>) {
        match event {
            Event::Open(e) => self.open(e, out),
            Event::Data(e) => self.data(e, out),
            Event::Close(e) => self.close(e, out),
        }
        self.metrics.connections_tracked.set(self.conns.len() as i64);
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
        let role = if e.role == ROLE_SERVER { Role::Server } else { Role::Client };
        let meta = ConnMeta {
            conn_id: e.conn.conn_id,
            role,
            pid: e.conn.tgid,
            comm: e.comm,
            local,
            peer,
            tls: false,
        };
        let conn = Conn { meta: Arc::new(meta), http: HttpConnection::new(self.limits.clone()), last_ts_ns: e.ts_ns };
        self.conns.insert(key, conn);
    }

    fn lookup(&mut self, conn: ConnRef) -> Option<&mut Conn> {
        match self.conns.get_mut(&(conn.tgid, conn.fd)) {
            Some(c) if c.meta.conn_id == conn.conn_id => Some(c),
            _ => None,
        }
    }

    fn data(&mut self, e: DataEvent, out: &mut Vec<Exchange>) {
        let metrics = self.metrics.clone();
        let mut produced = std::mem::take(&mut self.scratch);
        let Some(conn) = self.lookup(e.conn) else {
            metrics.userspace_drop("unknown_conn");
            return;
        };
        let Some(stream) = stream(conn.meta.role, e.dir) else {
            metrics.userspace_drop("bad_direction");
            return;
        };
        conn.last_ts_ns = e.ts_ns;
        let errors_before = conn.http.parse_errors();
        if e.gap_before > 0 {
            conn.http.gap(stream, e.gap_before, e.ts_ns, &mut produced);
        }
        if !e.payload.is_empty() {
            conn.http.feed(stream, &e.payload, e.ts_ns, &mut produced);
        }
        if e.gap_after > 0 && e.flags & (DATA_TRUNCATED | DATA_NO_PAYLOAD) != 0 {
            conn.http.gap(stream, e.gap_after, e.ts_ns, &mut produced);
        }
        metrics.http_parse_errors.inc_by(conn.http.parse_errors().saturating_sub(errors_before));
        let meta = conn.meta.clone();
        out.extend(produced.drain(..).map(|http| Exchange { conn: meta.clone(), http }));
        self.scratch = produced;
    }

    fn close(&mut self, e: CloseEvent, out: &mut Vec<Exchange>) {
        let key = (e.conn.tgid, e.conn.fd);
        if self.lookup(e.conn).is_none() {
            return;
        }
        if let Some(mut conn) = self.conns.remove(&key) {
            let mut produced = Vec::new();
            for (dir, gap) in [(DIR_INGRESS, e.pending_gap[0]), (DIR_EGRESS, e.pending_gap[1])] {
                if let (true, Some(stream)) = (gap > 0, stream(conn.meta.role, dir)) {
                    conn.http.gap(stream, gap, e.ts_ns, &mut produced);
                }
            }
            let meta = conn.meta.clone();
            out.extend(produced.into_iter().map(|http| Exchange { conn: meta.clone(), http }));
            self.finish(conn, e.ts_ns, out);
        }
    }

    fn finish(&self, mut conn: Conn, ts_ns: u64, out: &mut Vec<Exchange>) {
        let errors_before = conn.http.parse_errors();
        let mut produced = Vec::new();
        conn.http.close(ts_ns, &mut produced);
        self.metrics.http_parse_errors.inc_by(conn.http.parse_errors().saturating_sub(errors_before));
        out.extend(produced.into_iter().map(|http| Exchange { conn: conn.meta.clone(), http }));
    }

    /// Finishes connections idle for longer than the timeout (their close was never seen,
    /// e.g. the process exited) as of monotonic time `now_ns`.
    pub fn expire_idle(&mut self, now_ns: u64, out: &mut Vec<Exchange>) {
        let timeout = self.idle_timeout_ns;
        let stale: Vec<(u32, u32)> = self
            .conns
            .iter()
            .filter(|(_, c)| now_ns.saturating_sub(c.last_ts_ns) > timeout || !process_alive(c.meta.pid))
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            if let Some(conn) = self.conns.remove(&key) {
                self.finish(conn, now_ns, out);
            }
        }
        self.metrics.connections_tracked.set(self.conns.len() as i64);
    }

    /// Finishes every connection (shutdown).
    pub fn drain(&mut self, now_ns: u64, out: &mut Vec<Exchange>) {
        let conns: Vec<Conn> = self.conns.drain().map(|(_, c)| c).collect();
        for conn in conns {
            self.finish(conn, now_ns, out);
        }
        self.metrics.connections_tracked.set(0);
    }
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
