//! The userspace connection table: one HTTP parser per live connection, keyed by (tgid, fd)
//! and checked against the kernel's conn_id so a reused fd never mixes two connections.
//! Bounded: at most `max_connections` entries, each parser's memory is bounded by its
//! limits, idle entries expire. Connections that turn out not to be HTTP (or upgrade) are
//! handed back to the kernel side to stop copying their payload.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use api_guard::detect::stream::ScanLimits;
use api_guard::handshake::{Hello, HelloReader};
use api_guard_common::{
    ConnKey, ADDR_TUPLE, DATA_NO_PAYLOAD, DATA_TRUNCATED, DIR_EGRESS, DIR_INGRESS, ROLE_SERVER,
};
use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::mpsc;

use super::{interest::BodyReaders, procnet};
use crate::tls::TlsLibraries;
use crate::{
    exchange::{ConnMeta, Exchange, Role},
    http::{ConnState, ExchangeSlot, HttpConnection, HttpLimits, Stream},
    record::{CloseEvent, ConnRef, DataEvent, Event, OpenEvent},
    telemetry::{DropReason, IgnoreReason, Metrics, Stage},
};

/// A request to stop capturing a connection in the kernel (removed only if the id matches).
pub type Untrack = (ConnKey, u64);

/// How many recently ignored connection ids are remembered to discard their in-flight events.
const IGNORED_MEMORY: usize = 4096;
/// Ciphertext accepted from a TLS connection before its plaintext shows up from a library
/// hook; beyond it the connection is taken to use an unhooked TLS stack (Go, rustls) and is
/// no longer captured. Memory-BIO users (node) send a ClientHello or so before the switch.
const CIPHERTEXT_BUDGET: u64 = 64 * 1024;
/// Payload of a joined connection (adopted at start, see `adopt.rs`) parsed before its first
/// exchange; beyond it the connection is taken not to be HTTP (a database or other protocol
/// that never shows an HTTP message start) and is no longer captured. A joined HTTP
/// connection finds its next message within the rest of the body it joined in.
const JOINED_SYNC_BUDGET: u64 = 8 * 1024 * 1024;

/// Where a connection's payload comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// Syscall payload is the HTTP stream (nothing seen yet, or plaintext).
    Plain,
    /// Syscall payload started with a TLS record; waiting for the library hooks' plaintext.
    Ciphertext { bytes: u64 },
    /// Plaintext comes from TLS library hooks; syscall payload (ciphertext) is ignored.
    Tls,
}

struct Conn {
    meta: Arc<ConnMeta>,
    http: HttpConnection,
    /// Established before capture began: parsed from the next message start on.
    joined: bool,
    /// For a joined connection: payload parsed while no exchange has come out yet
    /// (`None` once one has).
    unsynced_bytes: Option<u64>,
    transport: Transport,
    /// Syscall payload bytes fed to the parser while `Plain`.
    plain_bytes: u64,
    /// Reading the TLS handshake's ServerHello from the socket (see [`read_hello`]).
    hello: HelloState,
    last_ts_ns: u64,
    /// Counters of `http` already exported, to export only increments.
    seen_errors: u64,
    seen_lost: u64,
    seen_unresolved: u64,
    buffered: usize,
}

pub struct ConnTable {
    /// Keyed by (tgid, fd) from the kernel: small trusted integers, so a fast hash (Fx)
    /// instead of SipHash, which cost ~1,200 instructions per exchange in three lookups.
    conns: FxHashMap<(u32, u32), Conn>,
    max_connections: usize,
    idle_timeout_ns: u64,
    metrics: Metrics,
    untrack: mpsc::Sender<Untrack>,
    /// Sum of every parser's buffered bytes.
    buffered_total: usize,
    /// Connections dropped because they are not (or no longer) HTTP; events already on their
    /// way for them are expected, not drops.
    ignored: FxHashSet<u64>,
    ignored_order: VecDeque<u64>,
    tls_libraries: TlsLibraries,
    /// Addresses of connections adopted at start, by conn_id, until their open (see
    /// `adopt.rs`); bounded by the adoption cap.
    adopted: HashMap<u64, (SocketAddr, SocketAddr)>,
    /// How each connection's parser is set up, at its open and again when it turns to TLS.
    parsers: ParserSetup,
    /// Scratch list of the exchanges one record produced (empty between records), in the
    /// slots the parsers made them in: each becomes its `Arc<Exchange>` where it is.
    produced: Vec<ExchangeSlot>,
}

/// Where a connection is in reading its ServerHello.
enum HelloState {
    /// Nothing TLS seen in the server-to-client direction yet.
    Idle,
    Reading(Box<HelloReader>),
    /// Concluded (or never to be read: a connection joined under way).
    Done,
}

/// Whether a connection's first bytes are a TLS record header, as in
/// `ContentType(20..=23) ProtocolVersion.major(3)`; a lone first byte counts (no HTTP
/// message starts with those control bytes).
fn starts_like_tls(payload: &[u8]) -> bool {
    matches!(payload, [20..=23] | [20..=23, 3, ..])
}

/// Which HTTP stream a direction carries, given the traced process's role.
fn stream(role: Role, dir: u8) -> Option<Stream> {
    match (role, dir) {
        (Role::Server, DIR_INGRESS) | (Role::Client, DIR_EGRESS) => Some(Stream::Request),
        (Role::Server, DIR_EGRESS) | (Role::Client, DIR_INGRESS) => Some(Stream::Response),
        _ => None,
    }
}

/// How a connection's parser is set up: one place, so the parser a connection gets when it
/// turns to TLS plaintext is set up exactly as the one it got at its open.
struct ParserSetup {
    limits: HttpLimits,
    /// Server connections hand out each request as it ends (detection judges it before
    /// the response).
    request_notices: bool,
    /// Request bodies local servers receive are scanned for values as they arrive.
    body_scan: Option<ScanLimits>,
    /// The consumers that read bodies: each connection's parser keeps only what they read.
    body_readers: BodyReaders,
}

impl ParserSetup {
    /// A parser for `meta`'s connection, from its start or joined under way.
    fn parser(&self, meta: &ConnMeta, joined: bool) -> HttpConnection {
        let limits = HttpLimits {
            bodies: self
                .body_readers
                .interest(meta.role, meta.tls(), meta.local, meta.peer),
            ..self.limits
        };
        let mut http = if joined {
            HttpConnection::joined(limits)
        } else {
            HttpConnection::new(limits)
        };
        if meta.role == Role::Server {
            if self.request_notices {
                http.notify_requests();
            }
            if let Some(scan) = self.body_scan {
                http.scan_request_bodies(scan);
            }
        }
        http
    }
}

fn ignore_reason(state: ConnState) -> Option<IgnoreReason> {
    match state {
        ConnState::Detecting | ConnState::Http => None,
        ConnState::NotHttp => Some(IgnoreReason::NotHttp),
        ConnState::Upgraded => Some(IgnoreReason::Upgraded),
        ConnState::Failed => Some(IgnoreReason::Failed),
    }
}

impl ConnTable {
    pub fn new(
        limits: HttpLimits,
        max_connections: usize,
        idle_timeout: Duration,
        metrics: Metrics,
        untrack: mpsc::Sender<Untrack>,
        tls_libraries: TlsLibraries,
    ) -> Self {
        Self {
            conns: FxHashMap::default(),
            max_connections,
            idle_timeout_ns: idle_timeout.as_nanos() as u64,
            metrics,
            untrack,
            buffered_total: 0,
            ignored: FxHashSet::default(),
            ignored_order: VecDeque::new(),
            tls_libraries,
            adopted: HashMap::new(),
            parsers: ParserSetup {
                limits,
                request_notices: false,
                body_scan: None,
                body_readers: BodyReaders::ALL,
            },
            produced: Vec::new(),
        }
    }

    /// Requests local servers receive are also handed out alone as soon as they end
    /// ([`Phase::Request`](api_guard::http::Phase) exchanges), so detection judges them
    /// before they are answered.
    pub fn with_request_notices(mut self, on: bool) -> Self {
        self.parsers.request_notices = on;
        self
    }

    /// Request bodies local servers receive are scanned for values as they arrive
    /// (`api_guard::detect::stream`), so detection reads whole bodies, not only the prefix kept.
    pub fn with_body_scan(mut self, limits: Option<ScanLimits>) -> Self {
        self.parsers.body_scan = limits;
        self
    }

    /// Only the bodies these consumers read are kept (all by default).
    pub fn with_body_readers(mut self, readers: BodyReaders) -> Self {
        self.parsers.body_readers = readers;
        self
    }

    /// Addresses of the connections adopted at start (see `adopt.rs`).
    pub fn with_adopted(mut self, addresses: HashMap<u64, (SocketAddr, SocketAddr)>) -> Self {
        self.adopted = addresses;
        self
    }

    /// Applies one capture event; completed exchanges are appended to `out`.
    pub fn apply(&mut self, event: Event<'_>, out: &mut Vec<Arc<Exchange>>) {
        match event {
            Event::Open(e) => self.open(e, out),
            Event::Data(e) => self.data(e, out),
            Event::Close(e) => self.close(e, out),
            Event::Tls(e) => {
                if let Some(conn) = self.lookup(e.conn) {
                    conn.last_ts_ns = e.ts_ns;
                }
                self.start_tls(e.conn, e.library);
            }
            // Routed to TLS discovery by the pipeline; nothing to do with connections.
            Event::Exec { .. } => {}
        }
        self.export_gauges();
    }

    fn open(&mut self, e: OpenEvent, out: &mut Vec<Arc<Exchange>>) {
        let key = (e.conn.tgid, e.conn.fd);
        // A new connection on a known fd means we missed the old one's close.
        if let Some(old) = self.conns.remove(&key) {
            self.finish(old, e.ts_ns, out);
        }
        if self.conns.len() >= self.max_connections {
            self.userspace_drop(DropReason::ConnTableFull);
            return;
        }
        let (mut local, mut peer) = (e.local, e.peer);
        if let Some((l, p)) = self.adopted.remove(&e.conn.conn_id) {
            (local, peer) = (Some(l), Some(p));
        } else if e.addr_source != ADDR_TUPLE {
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
            tls_library: None,
            tls_session: None,
        };
        let http = self.parsers.parser(&meta, e.joined);
        let conn = Conn {
            meta: Arc::new(meta),
            http,
            joined: e.joined,
            unsynced_bytes: e.joined.then_some(0),
            transport: Transport::Plain,
            plain_bytes: 0,
            hello: if e.joined {
                HelloState::Done
            } else {
                HelloState::Idle
            },
            last_ts_ns: e.ts_ns,
            seen_errors: 0,
            seen_lost: 0,
            seen_unresolved: 0,
            buffered: 0,
        };
        self.conns.insert(key, conn);
    }

    fn lookup(&mut self, conn: ConnRef) -> Option<&mut Conn> {
        find(&mut self.conns, conn)
    }

    fn data(&mut self, e: DataEvent<'_>, out: &mut Vec<Arc<Exchange>>) {
        let Some(conn) = find(&mut self.conns, e.conn) else {
            if !self.ignored.contains(&e.conn.conn_id) {
                self.userspace_drop(DropReason::UnknownConn);
            }
            return;
        };
        conn.last_ts_ns = e.ts_ns;
        let Some(stream) = stream(conn.meta.role, e.dir) else {
            self.userspace_drop(DropReason::BadDirection);
            return;
        };
        read_hello(conn, &e, &self.metrics);
        // One lookup for the usual record: the connection is looked up again only when
        // `start_tls` replaced its parser.
        let conn = match (conn.transport, e.tls_library) {
            (Transport::Tls, Some(_)) => conn,
            (_, Some(library)) => {
                self.start_tls(e.conn, library);
                let Some(conn) = find(&mut self.conns, e.conn) else {
                    return;
                };
                conn
            }
            // Ciphertext still in flight when the connection switched: not HTTP, not lost.
            (Transport::Tls, None) => return,
            (Transport::Plain, None) if conn.plain_bytes == 0 && starts_like_tls(e.payload) => {
                conn.transport = Transport::Ciphertext { bytes: 0 };
                return self.ciphertext(e);
            }
            (Transport::Ciphertext { .. }, None) => return self.ciphertext(e),
            (Transport::Plain, None) => {
                conn.plain_bytes += e.payload.len() as u64;
                conn
            }
        };
        let cut = e.gap_after > 0 && e.flags & (DATA_TRUNCATED | DATA_NO_PAYLOAD) != 0;
        let (mut gap_before, payload, mut gap_after) =
            (e.gap_before, e.payload, if cut { e.gap_after } else { 0 });
        if conn.joined && conn.http.state() == ConnState::Detecting {
            // Before a joined connection's first message start, a gap is just more of the
            // unknown stream it joined; the parser is looking for a message start anyway.
            (gap_before, gap_after) = (0, 0);
        }
        if let Some(bytes) = &mut conn.unsynced_bytes {
            *bytes += payload.len() as u64;
        }
        if conn.unsynced_bytes > Some(JOINED_SYNC_BUDGET) {
            return self.ignore(e.conn, IgnoreReason::NotHttp);
        }
        let stop = run_parser(
            conn,
            &mut self.produced,
            &self.metrics,
            &mut self.buffered_total,
            out,
            |http, produced| {
                if gap_before > 0 {
                    http.gap(stream, gap_before, e.ts_ns, produced);
                }
                if !payload.is_empty() {
                    http.feed(stream, payload, e.ts_ns, produced);
                }
                if gap_after > 0 {
                    http.gap(stream, gap_after, e.ts_ns, produced);
                }
            },
        );
        if let Some(reason) = stop {
            self.ignore(e.conn, reason);
        }
    }

    /// Counts syscall ciphertext of a connection waiting for its TLS plaintext; gives up on
    /// it (unhooked TLS stack) beyond [`CIPHERTEXT_BUDGET`].
    fn ciphertext(&mut self, e: DataEvent<'_>) {
        let Some(conn) = self.lookup(e.conn) else {
            return;
        };
        let Transport::Ciphertext { bytes } = &mut conn.transport else {
            return;
        };
        *bytes += e.gap_before + e.payload.len() as u64 + e.gap_after;
        if *bytes > CIPHERTEXT_BUDGET {
            self.ignore(e.conn, IgnoreReason::TlsUnhooked);
        }
    }

    /// Switches a connection to the plaintext of TLS library `library`: the parser restarts,
    /// since whatever it saw before was handshake ciphertext.
    fn start_tls(&mut self, id: ConnRef, library: u32) {
        let name = self.tls_libraries.name(library);
        let Some(conn) = find(&mut self.conns, id) else {
            return;
        };
        if conn.transport == Transport::Tls {
            return;
        }
        conn.transport = Transport::Tls;
        let mut meta = ConnMeta::clone(&conn.meta);
        meta.tls_library = Some(name.clone());
        // Plaintext of a joined connection may begin inside a message too.
        conn.http = self.parsers.parser(&meta, conn.joined);
        conn.meta = Arc::new(meta);
        account(&self.metrics, conn, &mut self.buffered_total);
        self.metrics.tls.connection(&name);
    }

    fn close(&mut self, e: CloseEvent, out: &mut Vec<Arc<Exchange>>) {
        let Some(conn) = self.lookup(e.conn) else {
            return;
        };
        let role = conn.meta.role;
        // Gaps of a connection still in ciphertext are not HTTP bytes.
        let gaps = if matches!(conn.transport, Transport::Ciphertext { .. }) {
            [0; 2]
        } else {
            e.pending_gap
        };
        self.drive(e.conn, out, |http, produced| {
            for (dir, gap) in [(DIR_INGRESS, gaps[0]), (DIR_EGRESS, gaps[1])] {
                if let (true, Some(stream)) = (gap > 0, stream(role, dir)) {
                    http.gap(stream, gap, e.ts_ns, produced);
                }
            }
        });
        if let Some(conn) = self.conns.remove(&(e.conn.tgid, e.conn.fd)) {
            self.finish(conn, e.ts_ns, out);
        }
    }

    /// Runs `f` on the connection's parser (see [`run_parser`]), and stops capturing the
    /// connection if that says to.
    fn drive(
        &mut self,
        id: ConnRef,
        out: &mut Vec<Arc<Exchange>>,
        f: impl FnOnce(&mut HttpConnection, &mut Vec<ExchangeSlot>),
    ) {
        let key = (id.tgid, id.fd);
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let stop = run_parser(
            conn,
            &mut self.produced,
            &self.metrics,
            &mut self.buffered_total,
            out,
            f,
        );
        if let Some(reason) = stop {
            self.ignore(id, reason);
        }
    }

    /// Stops parsing a connection and asks the kernel side to stop copying its payload.
    fn ignore(&mut self, id: ConnRef, reason: IgnoreReason) {
        if let Some(conn) = self.conns.remove(&(id.tgid, id.fd)) {
            self.buffered_total = self.buffered_total.saturating_sub(conn.buffered);
        }
        self.metrics.http.connection_ignored(reason);
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

    fn finish(&mut self, mut conn: Conn, ts_ns: u64, out: &mut Vec<Arc<Exchange>>) {
        end_hello(&mut conn, &self.metrics);
        let mut produced = Vec::new();
        conn.http.close(ts_ns, &mut produced);
        account(&self.metrics, &mut conn, &mut self.buffered_total);
        out.extend(
            produced
                .into_iter()
                .map(|http| http.into_shared(conn.meta.clone())),
        );
        self.buffered_total = self.buffered_total.saturating_sub(conn.buffered);
    }

    /// Finishes connections idle for longer than the timeout or whose process exited (its
    /// close was never seen), as of monotonic time `now_ns`.
    pub fn expire_idle(&mut self, now_ns: u64, out: &mut Vec<Arc<Exchange>>) {
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
            .capture
            .set_connections_tracked(self.conns.len());
        self.metrics.http.set_buffered_bytes(self.buffered_total);
    }

    fn userspace_drop(&self, reason: DropReason) {
        self.metrics.capture.dropped(Stage::Userspace, reason);
    }

    /// Finishes every connection (shutdown).
    pub fn drain(&mut self, now_ns: u64, out: &mut Vec<Arc<Exchange>>) {
        let conns: Vec<Conn> = self.conns.drain().map(|(_, c)| c).collect();
        for conn in conns {
            self.finish(conn, now_ns, out);
        }
        self.export_gauges();
    }
}

/// Feeds the syscall payload a server sends (what a local server writes, what a local client
/// reads) to the connection's ServerHello reader while the connection carries TLS records:
/// the kernel copies the first bytes of that direction even when a TLS library call claims
/// the socket. Plaintext from a library hook means the handshake is over.
fn read_hello(conn: &mut Conn, e: &DataEvent<'_>, metrics: &Metrics) {
    if e.tls_library.is_some() {
        return end_hello(conn, metrics);
    }
    let from_server = match conn.meta.role {
        Role::Server => e.dir == DIR_EGRESS,
        Role::Client => e.dir == DIR_INGRESS,
    };
    if !from_server {
        return;
    }
    if let HelloState::Idle = conn.hello {
        let tls = match conn.transport {
            Transport::Plain => conn.plain_bytes == 0 && starts_like_tls(e.payload),
            Transport::Ciphertext { .. } | Transport::Tls => true,
        };
        if !tls {
            return;
        }
        conn.hello = HelloState::Reading(Box::default());
    }
    let HelloState::Reading(reader) = &mut conn.hello else {
        return;
    };
    let mut outcome = if e.gap_before > 0 {
        reader.end()
    } else {
        reader.feed(e.payload)
    };
    if outcome.is_none() && e.gap_after > 0 {
        outcome = reader.end();
    }
    if let Some(hello) = outcome {
        concluded(conn, hello, metrics);
    }
}

/// Concludes a ServerHello still being read from what is in hand.
fn end_hello(conn: &mut Conn, metrics: &Metrics) {
    if let HelloState::Reading(reader) = &mut conn.hello {
        if let Some(hello) = reader.end() {
            concluded(conn, hello, metrics);
        }
    }
}

fn concluded(conn: &mut Conn, hello: Hello, metrics: &Metrics) {
    conn.hello = HelloState::Done;
    match hello {
        Hello::Negotiated(session) => {
            metrics.tls.handshake(&session);
            let mut meta = ConnMeta::clone(&conn.meta);
            meta.tls_session = Some(session);
            conn.meta = Arc::new(meta);
        }
        Hello::Unread(why) => metrics.tls.handshake_unread(why),
    }
}

/// The live connection `id` refers to (same fd and conn_id).
fn find(conns: &mut FxHashMap<(u32, u32), Conn>, id: ConnRef) -> Option<&mut Conn> {
    match conns.get_mut(&(id.tgid, id.fd)) {
        Some(c) if c.meta.conn_id == id.conn_id => Some(c),
        _ => None,
    }
}

/// Runs `f` on a connection's parser, then exports what changed: exchanges, parse errors,
/// lost exchanges, buffered bytes; returns why to stop capturing the connection, if so.
/// `produced` is the table's scratch list, reused for every record: most produce nothing,
/// and none should allocate for it.
fn run_parser(
    conn: &mut Conn,
    produced: &mut Vec<ExchangeSlot>,
    metrics: &Metrics,
    buffered_total: &mut usize,
    out: &mut Vec<Arc<Exchange>>,
    f: impl FnOnce(&mut HttpConnection, &mut Vec<ExchangeSlot>),
) -> Option<IgnoreReason> {
    f(&mut conn.http, produced);
    if !produced.is_empty() {
        conn.unsynced_bytes = None;
    }
    account(metrics, conn, buffered_total);
    out.extend(
        produced
            .drain(..)
            .map(|http| http.into_shared(conn.meta.clone())),
    );
    ignore_reason(conn.http.state())
}

/// Exports the increments of a parser's cumulative counters and its buffered-bytes change.
/// Each counter is an atomic add on a line the scrape reads: skipped when nothing changed,
/// which is nearly every record.
fn account(metrics: &Metrics, conn: &mut Conn, buffered_total: &mut usize) {
    let http = &conn.http;
    let errors = http.parse_errors();
    if errors != conn.seen_errors {
        metrics
            .http
            .parse_errors(errors.saturating_sub(conn.seen_errors));
        conn.seen_errors = errors;
    }
    let lost = http.lost_exchanges();
    if lost != conn.seen_lost {
        metrics
            .http
            .exchanges_lost(lost.saturating_sub(conn.seen_lost));
        conn.seen_lost = lost;
    }
    let unresolved = http.headers_unresolved();
    if unresolved != conn.seen_unresolved {
        metrics
            .http
            .headers_unresolved(unresolved.saturating_sub(conn.seen_unresolved));
        conn.seen_unresolved = unresolved;
    }
    let buffered = http.buffered_bytes();
    *buffered_total = buffered_total
        .saturating_sub(conn.buffered)
        .saturating_add(buffered);
    conn.buffered = buffered;
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use api_guard::http::Phase;
    use api_guard_common::{ROLE_CLIENT, ROLE_SERVER};

    use super::*;
    use crate::record::TlsEvent;

    const CONN: ConnRef = ConnRef {
        tgid: 10,
        fd: 5,
        conn_id: 77,
    };
    const LIBSSL: &str = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

    struct Fixture {
        table: ConnTable,
        metrics: Metrics,
        untracked: mpsc::Receiver<Untrack>,
        out: Vec<Arc<Exchange>>,
    }

    fn fixture(role: u8) -> Fixture {
        fixture_joined(role, false)
    }

    fn fixture_joined(role: u8, joined: bool) -> Fixture {
        fixture_with(role, joined, |table| table)
    }

    /// A table set up by `setup`, with one connection of `role` open.
    fn fixture_with(role: u8, joined: bool, setup: impl FnOnce(ConnTable) -> ConnTable) -> Fixture {
        let metrics = Metrics::new();
        let (tx, untracked) = mpsc::channel(16);
        let libraries = TlsLibraries::default();
        libraries.insert(3, LIBSSL);
        let mut table = setup(ConnTable::new(
            HttpLimits::default(),
            16,
            Duration::from_secs(60),
            metrics.clone(),
            tx,
            libraries,
        ));
        let mut out = Vec::new();
        table.apply(
            Event::Open(OpenEvent {
                conn: CONN,
                ts_ns: 1,
                role,
                addr_source: ADDR_TUPLE,
                local: None,
                peer: None,
                comm: "test".into(),
                joined,
            }),
            &mut out,
        );
        Fixture {
            table,
            metrics,
            untracked,
            out,
        }
    }

    impl Fixture {
        fn data(&mut self, dir: u8, payload: &[u8], tls_library: Option<u32>) {
            let event = DataEvent {
                conn: CONN,
                ts_ns: 2,
                dir,
                flags: 0,
                gap_before: 0,
                gap_after: 0,
                payload,
                tls_library,
            };
            self.table.apply(Event::Data(event), &mut self.out);
        }

        fn tls(&mut self, library: u32) {
            let event = TlsEvent {
                conn: CONN,
                ts_ns: 2,
                library,
            };
            self.table.apply(Event::Tls(event), &mut self.out);
        }

        fn metric(&self, line_prefix: &str) -> String {
            let text = self.metrics.render();
            text.lines()
                .find(|l| l.starts_with(line_prefix))
                .unwrap_or_default()
                .to_string()
        }
    }

    const CLIENT_HELLO: &[u8] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03random";
    const REQUEST: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    #[test]
    fn handshake_ciphertext_then_plaintext_from_the_library() {
        let mut f = fixture(ROLE_SERVER);
        f.data(DIR_INGRESS, CLIENT_HELLO, None);
        f.tls(3);
        // Ciphertext still in flight after the switch is neither HTTP nor a drop.
        f.data(DIR_EGRESS, b"\x17\x03\x03\x00\x20encrypted", None);
        f.data(DIR_INGRESS, REQUEST, Some(3));
        f.data(DIR_EGRESS, RESPONSE, Some(3));
        assert_eq!(f.out.len(), 1);
        let e = &f.out[0];
        assert_eq!(e.conn.tls_library.as_deref(), Some(LIBSSL));
        assert_eq!(
            (e.http.method.as_str(), e.http.path.as_str()),
            ("GET", "/a")
        );
        assert_eq!(e.http.status, Some(200));
        assert_eq!(e.http.response_body_bytes, 2);
        assert_eq!(
            f.metric("apiguard_http_parse_errors_total "),
            "apiguard_http_parse_errors_total 0"
        );
        assert_eq!(f.metric("apiguard_capture_dropped_total"), "");
        assert_eq!(
            f.metric("apiguard_tls_connections_total"),
            format!("apiguard_tls_connections_total{{library=\"{LIBSSL}\"}} 1")
        );
        assert!(
            f.untracked.try_recv().is_err(),
            "a TLS connection stays tracked"
        );
    }

    #[test]
    fn a_server_connection_turned_tls_still_announces_and_scans_its_requests() {
        const POST: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 11\r\n\r\n{\"q\":\"abc\"}";
        // What the exchanges of one request and its answer look like: (phase, body scanned,
        // request noticed).
        let run = |tls: bool| {
            let scan = ScanLimits::of(&Default::default());
            let mut f = fixture_with(ROLE_SERVER, false, |table| {
                table.with_request_notices(true).with_body_scan(Some(scan))
            });
            let library = tls.then_some(3);
            if tls {
                f.data(DIR_INGRESS, CLIENT_HELLO, None);
                f.tls(3);
            }
            f.data(DIR_INGRESS, POST, library);
            f.data(DIR_EGRESS, RESPONSE, library);
            f.out
                .iter()
                .map(|e| {
                    (
                        e.http.phase,
                        e.http.request_scan.is_some(),
                        e.http.request_noticed,
                    )
                })
                .collect::<Vec<_>>()
        };
        let plain = run(false);
        assert_eq!(plain.first().map(|e| e.0), Some(Phase::Request));
        assert_eq!(plain.last().map(|e| e.0), Some(Phase::Exchange));
        assert!(plain.iter().any(|e| e.1), "the body was scanned: {plain:?}");
        assert_eq!(run(true), plain);
    }

    #[test]
    fn plaintext_data_switches_a_connection_whose_tls_record_was_lost() {
        let mut f = fixture(ROLE_CLIENT);
        f.data(DIR_EGRESS, REQUEST, Some(3));
        f.data(DIR_INGRESS, RESPONSE, Some(3));
        assert_eq!(f.out.len(), 1);
        assert!(f.out[0].conn.tls());
        assert_eq!(f.out[0].conn.role, Role::Client);
    }

    #[test]
    fn unhooked_tls_is_given_up_after_the_ciphertext_budget() {
        let mut f = fixture(ROLE_SERVER);
        f.data(DIR_INGRESS, CLIENT_HELLO, None);
        let record = vec![0x17u8; 16 * 1024];
        for _ in 0..3 {
            f.data(DIR_EGRESS, &record, None);
        }
        assert!(f.untracked.try_recv().is_err(), "within the budget");
        f.data(DIR_EGRESS, &record, None);
        assert_eq!(f.untracked.try_recv().ok(), Some((ConnKey::new(10, 5), 77)));
        assert!(f.out.is_empty());
        assert_eq!(
            f.metric("apiguard_http_connections_ignored_total"),
            "apiguard_http_connections_ignored_total{reason=\"tls_unhooked\"} 1"
        );
        assert_eq!(
            f.metric("apiguard_http_parse_errors_total "),
            "apiguard_http_parse_errors_total 0"
        );
    }

    impl Fixture {
        /// A truncated call: `payload` copied, `lost` more bytes not.
        fn truncated(&mut self, dir: u8, payload: &[u8], lost: u64) {
            let event = DataEvent {
                conn: CONN,
                ts_ns: 2,
                dir,
                flags: DATA_TRUNCATED,
                gap_before: 0,
                gap_after: lost,
                payload,
                tls_library: None,
            };
            self.table.apply(Event::Data(event), &mut self.out);
        }
    }

    #[test]
    fn a_joined_connection_is_parsed_from_its_next_message() {
        // Joined while the server was still sending a large response: the rest of its body
        // (truncated calls included) comes first, then a whole exchange.
        let mut f = fixture_joined(ROLE_SERVER, true);
        f.truncated(DIR_EGRESS, &[b'x'; 4096], 60_000);
        f.data(DIR_EGRESS, b"xxxxxxxx", None);
        f.data(
            DIR_INGRESS,
            b"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            None,
        );
        f.data(DIR_EGRESS, RESPONSE, None);
        f.data(DIR_INGRESS, REQUEST, None);
        f.data(DIR_EGRESS, RESPONSE, None);
        let seen: Vec<_> = f
            .out
            .iter()
            .map(|e| (e.http.method.as_str(), e.http.path.as_str(), e.http.status))
            .collect();
        assert_eq!(seen, [("POST", "/p", Some(200)), ("GET", "/a", Some(200))]);
        assert_eq!(f.out[0].http.request_body_bytes, 3);
        assert_eq!(
            f.metric("apiguard_http_parse_errors_total "),
            "apiguard_http_parse_errors_total 0"
        );
        assert_eq!(
            f.metric("apiguard_http_exchanges_lost_total "),
            "apiguard_http_exchanges_lost_total 0"
        );
        assert!(f.untracked.try_recv().is_err());
    }

    #[test]
    fn a_connection_from_accept_is_still_not_http_at_once() {
        let mut f = fixture(ROLE_SERVER);
        f.data(DIR_INGRESS, b"xxxxxxxx", None);
        assert_eq!(f.untracked.try_recv().ok(), Some((ConnKey::new(10, 5), 77)));
    }

    #[test]
    fn a_joined_connection_that_never_shows_http_is_given_up() {
        let mut f = fixture_joined(ROLE_CLIENT, true);
        let chunk = vec![b'Q'; 64 * 1024];
        for _ in 0..JOINED_SYNC_BUDGET / chunk.len() as u64 {
            f.data(DIR_INGRESS, &chunk, None);
        }
        assert!(f.untracked.try_recv().is_err(), "within the budget");
        f.data(DIR_INGRESS, b"Q", None);
        assert_eq!(f.untracked.try_recv().ok(), Some((ConnKey::new(10, 5), 77)));
        assert_eq!(
            f.metric("apiguard_http_connections_ignored_total"),
            "apiguard_http_connections_ignored_total{reason=\"not_http\"} 1"
        );
        assert!(f.out.is_empty());
    }

    #[test]
    fn joined_tls_plaintext_also_starts_mid_stream() {
        let mut f = fixture_joined(ROLE_CLIENT, true);
        f.tls(3);
        // The rest of a response body, then a whole exchange, from the library hooks.
        f.data(DIR_INGRESS, b"rest of a body", Some(3));
        f.data(DIR_EGRESS, REQUEST, Some(3));
        f.data(DIR_INGRESS, RESPONSE, Some(3));
        assert_eq!(f.out.len(), 1);
        assert_eq!(f.out[0].http.path, "/a");
        assert_eq!(f.out[0].conn.tls_library.as_deref(), Some(LIBSSL));
        assert_eq!(
            f.metric("apiguard_http_parse_errors_total "),
            "apiguard_http_parse_errors_total 0"
        );
    }

    /// TLS 1.2 ServerHello choosing AES128-SHA (RSA key transport), recorded.
    const SERVER_HELLO: &str = "160303003d020000390303d209f0a9beb8c2a6fe3f06fe209fa7bb64e3fb258e48c3c4fbe58626b74979ca00002f000011ff01000100002300000016000000170000";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_server_hello_on_the_socket_names_version_and_cipher() {
        use api_guard::handshake::{CipherSuite, TlsSession, TlsVersion};
        let expected = Some(TlsSession {
            version: TlsVersion(0x0303),
            cipher: CipherSuite(0x002F),
        });
        // Server side: ClientHello in, ServerHello out, both before the library switch.
        let mut f = fixture(ROLE_SERVER);
        f.data(DIR_INGRESS, CLIENT_HELLO, None);
        f.data(DIR_EGRESS, &unhex(SERVER_HELLO), None);
        f.tls(3);
        f.data(DIR_INGRESS, REQUEST, Some(3));
        f.data(DIR_EGRESS, RESPONSE, Some(3));
        assert_eq!(f.out.len(), 1);
        assert_eq!(f.out[0].conn.tls_session, expected);
        assert!(f.out[0].conn.tls());
        assert_eq!(
            f.metric("apiguard_tls_handshakes_total"),
            "apiguard_tls_handshakes_total{cipher_family=\"rsa\",version=\"tls1.2\"} 1"
        );
        // Client side: the switch came first (the ClientHello write was claimed, not
        // copied), then the ServerHello read as a record header and its body.
        let mut f = fixture(ROLE_CLIENT);
        f.tls(3);
        let hello = unhex(SERVER_HELLO);
        f.data(DIR_INGRESS, &hello[..5], None);
        f.data(DIR_INGRESS, &hello[5..], None);
        f.data(DIR_EGRESS, REQUEST, Some(3));
        f.data(DIR_INGRESS, RESPONSE, Some(3));
        assert_eq!(f.out.len(), 1);
        assert_eq!(f.out[0].conn.tls_session, expected);
        assert_eq!(
            f.metric("apiguard_http_parse_errors_total "),
            "apiguard_http_parse_errors_total 0"
        );
        // A plaintext server's answers are never read as a handshake.
        let mut f = fixture(ROLE_SERVER);
        f.data(DIR_INGRESS, REQUEST, None);
        f.data(DIR_EGRESS, RESPONSE, None);
        assert_eq!(f.out[0].conn.tls_session, None);
        assert_eq!(f.metric("apiguard_tls_handshakes"), "");
    }

    #[test]
    fn a_handshake_refused_with_an_alert_is_counted() {
        let mut f = fixture(ROLE_CLIENT);
        f.tls(3);
        f.data(DIR_INGRESS, b"\x15\x03\x03\x00\x02\x02\x28", None);
        assert_eq!(
            f.metric("apiguard_tls_handshakes_unread_total"),
            "apiguard_tls_handshakes_unread_total{reason=\"alert\"} 1"
        );
    }

    #[test]
    fn plaintext_http_that_is_not_tls_is_parsed_as_before() {
        let mut f = fixture(ROLE_SERVER);
        f.data(DIR_INGRESS, REQUEST, None);
        f.data(DIR_EGRESS, RESPONSE, None);
        assert_eq!(f.out.len(), 1);
        assert!(!f.out[0].conn.tls());
    }
}
