//! The Exchange record: one HTTP request/response pair with its connection's identity and
//! the facts derived from it once for every consumer (route, client), and its JSON line form
//! (field names documented in docs/events.md).

use std::{
    fmt,
    mem::{ManuallyDrop, MaybeUninit},
    net::SocketAddr,
    ops::{Deref, DerefMut},
    ptr::{self, NonNull},
    sync::Arc,
};

use serde::Serialize;

use crate::{
    discover::{sensitive::BodyScans, template::Route},
    handshake::TlsSession,
    http::{h2::H2Anomaly, CallKind, HttpExchange},
    identity::ClientIdentity,
    llm::LlmCall,
    wallclock,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Server,
    Client,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
        }
    }
}

/// Identity of a captured connection, shared by all its exchanges.
#[derive(Debug, Clone)]
pub struct ConnMeta {
    pub conn_id: u64,
    pub role: Role,
    pub pid: u32,
    pub comm: String,
    pub local: Option<SocketAddr>,
    pub peer: Option<SocketAddr>,
    /// For TLS connections: the hooked library file that supplied the plaintext.
    pub tls_library: Option<Arc<str>>,
    /// What the TLS handshake negotiated, when its `ServerHello` was read.
    pub tls_session: Option<TlsSession>,
}

impl ConnMeta {
    pub fn tls(&self) -> bool {
        self.tls_library.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct Exchange {
    pub conn: Arc<ConnMeta>,
    /// Made by the parser in this exchange's own allocation (an [`ExchangeSlot`]): one
    /// allocation per exchange, moved about as a pointer.
    pub http: HttpExchange,
    /// The route template of the path (`/users/{userId}`), set by the parsing task
    /// (the agent's route labels) before the exchange is handed on.
    pub route: Option<Arc<str>>,
    /// Who sent the request (server side only): computed once by the parsing task with the
    /// running identity settings, so enforcement, detection and discovery agree.
    pub client: Option<ClientIdentity>,
    /// LLM facts and usage, for LLM API calls: computed once by the parsing task.
    pub llm: Option<Box<LlmCall>>,
    /// The path's route as the parsing task's templater returned it (`route` is its label,
    /// `other` past the label cap): discovery keys its inventory by it.
    pub template: Option<Route>,
    /// The bodies' sensitive-data classes, scanned by the first consumer that needs them
    /// (discovery or the encryption audit) and reused by the other.
    pub scans: BodyScans,
}

/// The `grpc` object of an exchange line.
#[derive(Serialize)]
struct GrpcLine<'a> {
    service: &'a str,
    method: &'a str,
    status: Option<u32>,
    messages_in: u64,
    messages_out: u64,
    kind: CallKind,
}

/// The `llm` object of an exchange line: names, counts and times only (never prompt or
/// completion text, never the raw key).
#[derive(Serialize)]
struct LlmLine<'a> {
    flavour: crate::llm::Flavour,
    provider: crate::llm::Provider,
    model_requested: Option<&'a str>,
    model: Option<&'a str>,
    stream: bool,
    max_tokens: Option<u64>,
    messages: Option<u32>,
    tools_declared: &'a [String],
    tools_called: &'a [String],
    prompt_tokens: u64,
    completion_tokens: u64,
    cached_tokens: u64,
    reasoning_tokens: u64,
    usage_source: crate::llm::UsageSource,
    estimated: bool,
    complete: bool,
    content_events: u64,
    ttft_ms: Option<f64>,
    inter_token_ms: Option<f64>,
    /// The credential's hash (`sha256:…`), when the request carried one.
    key: Option<&'a str>,
}

impl<'a> LlmLine<'a> {
    fn of(call: &'a LlmCall) -> Self {
        let f = &call.facts;
        Self {
            flavour: f.flavour,
            provider: f.provider,
            model_requested: f.model_requested.as_deref(),
            model: f.model.as_deref(),
            stream: f.stream,
            max_tokens: f.max_tokens,
            messages: f.messages,
            tools_declared: &f.tools_declared,
            tools_called: &f.tools_called,
            prompt_tokens: f.usage.prompt,
            completion_tokens: f.usage.completion,
            cached_tokens: f.usage.cached,
            reasoning_tokens: f.usage.reasoning,
            usage_source: f.usage_source,
            estimated: f.estimated,
            complete: f.complete,
            content_events: f.content_events,
            ttft_ms: f.ttft_ns.map(ms),
            inter_token_ms: f.inter_token_ns.map(ms),
            key: call.key.as_deref(),
        }
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// The JSON line of an exchange. Headers and bodies are not written: they may carry secrets.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    /// `NODE_NAME` (Kubernetes downward API), when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'static str>,
    conn_id: u64,
    role: Role,
    pid: u32,
    comm: &'a str,
    local_addr: Option<String>,
    peer_addr: Option<String>,
    tls: bool,
    tls_library: Option<&'a str>,
    /// The negotiated TLS version and cipher suite, when the handshake was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_session: Option<TlsSession>,
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    host: Option<&'a str>,
    route: Option<&'a str>,
    version: &'static str,
    /// HTTP/2 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_id: Option<u32>,
    incomplete: bool,
    status: Option<u16>,
    request_start_ns: u64,
    /// The request's last byte (HTTP/2: its END_STREAM).
    request_end_ns: Option<u64>,
    response_start_ns: Option<u64>,
    response_end_ns: Option<u64>,
    duration_ms: Option<f64>,
    ttfb_ms: Option<f64>,
    sse_events: Option<u64>,
    sse_first_event_ms: Option<f64>,
    grpc: Option<GrpcLine<'a>>,
    /// LLM API calls only.
    #[serde(skip_serializing_if = "Option::is_none")]
    llm: Option<LlmLine<'a>>,
    /// HTTP/2 framing anomalies (empty for HTTP/1.x).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    anomalies: &'a [H2Anomaly],
    request_header_bytes: u64,
    request_body_bytes: u64,
    response_header_bytes: u64,
    response_body_bytes: u64,
    request_truncated: bool,
    response_truncated: bool,
    /// A capture gap took the request's start line (see [`HttpExchange::request_head_lost`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    request_head_lost: bool,
}

impl Exchange {
    /// A parsed exchange on `conn`; the derived facts are set later, by the parsing task.
    pub fn new(conn: Arc<ConnMeta>, http: HttpExchange) -> Self {
        Self {
            conn,
            http,
            route: None,
            client: None,
            llm: None,
            template: None,
            scans: BodyScans::default(),
        }
    }

    /// Request start to the first response byte (the response head), when one came.
    pub fn ttfb_ns(&self) -> Option<u64> {
        self.http
            .response_start_ns
            .map(|start| start.saturating_sub(self.http.request_start_ns))
    }

    /// Request start to response end, when the response completed.
    pub fn duration_ns(&self) -> Option<u64> {
        self.http
            .response_end_ns
            .map(|end| end.saturating_sub(self.http.request_start_ns))
    }

    pub fn to_json(&self) -> String {
        let h = &self.http;
        let line = Line {
            time: wallclock::rfc3339_from_monotonic(h.request_start_ns),
            node: crate::node::node_name(),
            conn_id: self.conn.conn_id,
            role: self.conn.role,
            pid: self.conn.pid,
            comm: &self.conn.comm,
            local_addr: self.conn.local.map(|a| a.to_string()),
            peer_addr: self.conn.peer.map(|a| a.to_string()),
            tls: self.conn.tls(),
            tls_library: self.conn.tls_library.as_deref(),
            tls_session: self.conn.tls_session,
            method: &h.method,
            path: &h.path,
            query: h.query.as_deref(),
            host: h.host.as_deref(),
            route: self.route.as_deref(),
            version: h.version.as_str(),
            stream_id: h.stream_id,
            incomplete: h.incomplete,
            status: h.status,
            request_start_ns: h.request_start_ns,
            request_end_ns: h.request_end_ns,
            response_start_ns: h.response_start_ns,
            response_end_ns: h.response_end_ns,
            duration_ms: self.duration_ns().map(ms),
            ttfb_ms: self.ttfb_ns().map(ms),
            sse_events: h.sse.map(|s| s.events),
            sse_first_event_ms: h
                .sse
                .and_then(|s| s.first_event_ns)
                .map(|t| ms(t.saturating_sub(h.request_start_ns))),
            grpc: h.grpc.as_ref().map(|g| GrpcLine {
                service: &g.service,
                method: &g.method,
                status: g.status,
                messages_in: g.messages_in,
                messages_out: g.messages_out,
                kind: g.kind(),
            }),
            llm: self.llm.as_deref().map(LlmLine::of),
            anomalies: &h.anomalies,
            request_header_bytes: h.request_header_bytes,
            request_body_bytes: h.request_body_bytes,
            response_header_bytes: h.response_header_bytes,
            response_body_bytes: h.response_body_bytes,
            request_truncated: h.request_truncated,
            response_truncated: h.response_truncated,
            request_head_lost: h.request_head_lost,
        };
        serde_json::to_string(&line).unwrap_or_default()
    }
}

/// An [`HttpExchange`] in the allocation its [`Exchange`] will have: the parser makes the
/// record here and fills it in place; [`ExchangeSlot::into_shared`] adds the connection and
/// the derived facts (not set yet) and gives the `Arc<Exchange>`, without moving the record
/// or allocating again. (A boxed record moved into its exchange's `Arc` cost two allocations
/// per exchange and per request notice, and two frees.) Reads and writes as the record.
pub struct ExchangeSlot {
    /// `Arc::into_raw` of an `Arc<MaybeUninit<Exchange>>` that no one else holds (made here,
    /// never cloned: strong and weak counts 1), whose `http` field is written and whose
    /// other fields are not.
    ptr: NonNull<Exchange>,
}

// SAFETY: a slot owns its `HttpExchange` alone (no other handle to the allocation exists),
// as a `Box<HttpExchange>` would: it may go to or be read from another thread whenever the
// record may.
unsafe impl Send for ExchangeSlot {}
// SAFETY: as above; `&ExchangeSlot` gives only `&HttpExchange`.
unsafe impl Sync for ExchangeSlot {}

// What the two impls above rely on.
const _: fn() = || {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<HttpExchange>();
};

impl ExchangeSlot {
    /// `http` in a new slot. The parser writes its records with [`ExchangeSlot::with`]
    /// instead, in place.
    #[must_use]
    pub fn new(http: HttpExchange) -> Self {
        Self::with(|| http)
    }

    /// A slot holding the record `make` returns, written into the allocation (the record,
    /// ~420 bytes, is not made on the stack and copied, when `make` is inlined). Should
    /// `make` panic, the allocation is leaked, never freed or read uninitialised.
    #[inline]
    pub fn with(make: impl FnOnce() -> HttpExchange) -> Self {
        let raw = Arc::into_raw(Arc::<Exchange>::new_uninit())
            .cast::<Exchange>()
            .cast_mut();
        // SAFETY: `raw` points to the uninitialised `Exchange` of an `Arc` just made, which
        // no one else holds; writing a field through the raw pointer creates no reference
        // to uninitialised memory. `into_raw` keeps the allocation's write permission.
        unsafe { (&raw mut (*raw).http).write(make()) };
        Self {
            // SAFETY: `Arc::into_raw` never returns null.
            ptr: unsafe { NonNull::new_unchecked(raw) },
        }
    }

    /// The finished exchange on `conn`, its derived facts not set yet (as
    /// [`Exchange::new`]), in the slot's allocation.
    #[must_use]
    pub fn into_shared(self, conn: Arc<ConnMeta>) -> Arc<Exchange> {
        let raw = ManuallyDrop::new(self).ptr.as_ptr();
        // SAFETY: the slot's invariant: `raw` is the data of an `Arc<MaybeUninit<Exchange>>`
        // held by no one else, `http` written. Every other field is written here (the
        // pattern below names them all, so a field added to `Exchange` fails to compile
        // until it is written too), so the value is initialised when the `Arc` is rebuilt
        // from the pointer `into_raw` gave, with its own type.
        unsafe {
            (&raw mut (*raw).conn).write(conn);
            (&raw mut (*raw).route).write(None);
            (&raw mut (*raw).client).write(None);
            (&raw mut (*raw).llm).write(None);
            (&raw mut (*raw).template).write(None);
            (&raw mut (*raw).scans).write(BodyScans::default());
            Arc::<MaybeUninit<Exchange>>::from_raw(raw.cast_const().cast()).assume_init()
        }
    }

    /// The record, out of its slot.
    #[must_use]
    pub fn into_http(self) -> HttpExchange {
        let raw = ManuallyDrop::new(self).ptr.as_ptr();
        // SAFETY: the slot's invariant: `http` is initialised and owned by the slot alone,
        // read out once (the slot is not dropped); then the allocation is freed as the
        // `Arc<MaybeUninit<Exchange>>` it is, which drops nothing in it.
        unsafe {
            let http = ptr::read(&raw const (*raw).http);
            drop(Arc::<MaybeUninit<Exchange>>::from_raw(
                raw.cast_const().cast(),
            ));
            http
        }
    }
}

/// Every field of [`Exchange`], named: [`ExchangeSlot::into_shared`] must write each one.
#[allow(dead_code)]
fn exchange_fields(exchange: Exchange) {
    let Exchange {
        conn: _,
        http: _,
        route: _,
        client: _,
        llm: _,
        template: _,
        scans: _,
    } = exchange;
}

impl Deref for ExchangeSlot {
    type Target = HttpExchange;

    #[inline]
    fn deref(&self) -> &HttpExchange {
        // SAFETY: the slot's invariant: `http` is initialised, owned by the slot alone. The
        // place names the field alone: no reference to the (partly uninitialised) whole.
        unsafe { &(*self.ptr.as_ptr()).http }
    }
}

impl DerefMut for ExchangeSlot {
    #[inline]
    fn deref_mut(&mut self) -> &mut HttpExchange {
        // SAFETY: as for `deref`; `&mut self` makes the access exclusive.
        unsafe { &mut (*self.ptr.as_ptr()).http }
    }
}

impl Drop for ExchangeSlot {
    fn drop(&mut self) {
        let raw = self.ptr.as_ptr();
        // SAFETY: the slot's invariant: `http`, the one initialised field, is dropped once,
        // then the allocation freed as the `Arc<MaybeUninit<Exchange>>` it is (dropping no
        // field).
        unsafe {
            ptr::drop_in_place(&raw mut (*raw).http);
            drop(Arc::<MaybeUninit<Exchange>>::from_raw(
                raw.cast_const().cast(),
            ));
        }
    }
}

impl Clone for ExchangeSlot {
    fn clone(&self) -> Self {
        Self::new(HttpExchange::clone(self))
    }
}

impl fmt::Debug for ExchangeSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A minimal GET exchange from `peer`, for tests (of this crate and the agent).
#[doc(hidden)]
pub fn test_exchange(role: Role, peer: &str, path: &str) -> Exchange {
    let peer: Option<SocketAddr> = peer.parse().ok();
    let mut http = HttpExchange::started(0);
    http.method = "GET".into();
    http.path = path.into();
    Exchange {
        conn: Arc::new(ConnMeta {
            conn_id: 1,
            role,
            pid: 42,
            comm: "srv".into(),
            local: "10.0.0.1:80".parse().ok(),
            peer,
            tls_library: None,
            tls_session: None,
        }),
        http,
        route: None,
        // As the parsing task identifies a server-side client with no trusted proxies.
        client: (role == Role::Server).then(|| ClientIdentity::of_peer(peer.map(|p| p.ip()))),
        llm: None,
        template: None,
        scans: BodyScans::default(),
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use super::*;

    /// The sizes that decide the exchange's allocation (`Arc<Exchange>`: two counts and
    /// the exchange; mimalloc's size classes step by 128 bytes here): printed with
    /// `--nocapture` for the development notes.
    #[test]
    fn exchange_sizes() {
        let sizes = [
            ("Exchange", size_of::<Exchange>()),
            ("HttpExchange", size_of::<HttpExchange>()),
            (
                "Option<ClientIdentity>",
                size_of::<Option<ClientIdentity>>(),
            ),
            ("Option<Route>", size_of::<Option<Route>>()),
            ("BodyScans", size_of::<BodyScans>()),
            ("Headers", size_of::<crate::http::Headers>()),
            (
                "Option<SseStats>",
                size_of::<Option<crate::http::SseStats>>(),
            ),
        ];
        for (name, size) in sizes {
            println!("{name}: {size}");
        }
        // With its `Arc`'s two counts, the allocation stays in mimalloc's 640-byte class.
        assert!(size_of::<Exchange>() + 16 <= 640);
    }
}
