//! Which protocol a connection speaks, decided from its first bytes, and the parser for it:
//! HTTP/1.x by default, HTTP/2 after the client preface (prior knowledge, or ALPN h2 on a
//! TLS hook) or after a 101 to `Upgrade: h2c`.
//!
//! Deciding costs one byte comparison for an HTTP/1 request (`P` starts no common method
//! but the preface, `POST`, `PUT`, `PATCH`…); the few bytes that do not decide yet are held.
//! A server that speaks first with a SETTINGS frame (HTTP/2 servers may) is held too
//! (bounded) until the client's preface arrives.

use std::mem;

use super::connection::{ConnState, H1Connection, Stream};
use super::h2::{self, Begin, H2Connection};
use super::{ExchangeSlot, HttpLimits};
use crate::detect::stream::ScanLimits;

/// Server bytes held while waiting for the client preface; an HTTP/2 server's first
/// SETTINGS frame is a few dozen bytes.
const MAX_EARLY_RESPONSE: usize = 16 * 1024;

#[derive(Debug)]
enum Proto {
    /// Nothing decided yet: the client bytes so far are a prefix of the HTTP/2 preface,
    /// the server bytes a SETTINGS frame.
    Detecting {
        request: Vec<u8>,
        response: Vec<u8>,
    },
    /// Joined mid-connection: each chunk is offered to an HTTP/1 parser looking for a
    /// message start at any byte, unless it starts a run of HTTP/2 frames. (How long to
    /// keep looking is the connection table's call.)
    Joined(H1Connection),
    H1(H1Connection),
    H2(Box<H2Connection>),
    /// Not (or no longer) parsed.
    Done(ConnState),
}

/// Reassembles the exchanges of one TCP connection from its two byte streams, whatever
/// HTTP version it speaks.
#[derive(Debug)]
pub struct HttpConnection {
    limits: HttpLimits,
    proto: Proto,
    /// Counters of parsers already replaced (HTTP/1 before an h2c upgrade), so the
    /// cumulative totals never go down.
    carried_errors: u64,
    carried_lost: u64,
    /// Each request is also handed out alone as it ends (see [`Self::notify_requests`]).
    notify_requests: bool,
    /// Request bodies are scanned as they arrive (see [`Self::scan_request_bodies`]).
    scan: Option<ScanLimits>,
}

impl HttpConnection {
    /// A connection seen from its first byte.
    #[must_use]
    pub fn new(limits: HttpLimits) -> Self {
        Self::with(
            limits,
            Proto::Detecting {
                request: Vec::new(),
                response: Vec::new(),
            },
        )
    }

    /// A connection that was established before capture started: its first captured bytes
    /// may be anywhere in a message or frame.
    #[must_use]
    pub fn joined(limits: HttpLimits) -> Self {
        Self::with(limits, Proto::Joined(H1Connection::joined(limits)))
    }

    fn with(limits: HttpLimits, proto: Proto) -> Self {
        Self {
            limits,
            proto,
            carried_errors: 0,
            carried_lost: 0,
            notify_requests: false,
            scan: None,
        }
    }

    /// From now on each request is also handed out alone as soon as it ends, before its
    /// response: a [`Phase::Request`](super::Phase) record in `out` (then the exchange
    /// carries `request_noticed`). The agent judges request content on those.
    pub fn notify_requests(&mut self) {
        self.notify_requests = true;
        match &mut self.proto {
            Proto::H1(h1) | Proto::Joined(h1) => h1.notify_requests(),
            Proto::H2(h2) => h2.notify_requests(),
            Proto::Detecting { .. } | Proto::Done(_) => {}
        }
    }

    /// From now on request bodies are scanned for values as they arrive
    /// ([`crate::detect::stream`]), so detection reads all of a body (up to
    /// `limits.max_body_bytes`), not only the prefix kept: windows of values fill
    /// [`Phase::RequestPart`](super::Phase) records, the last window rides on the request
    /// notice (with [`Self::notify_requests`]) or on the exchange.
    pub fn scan_request_bodies(&mut self, limits: ScanLimits) {
        self.scan = Some(limits);
        match &mut self.proto {
            Proto::H1(h1) | Proto::Joined(h1) => h1.scan_bodies(limits),
            Proto::H2(h2) => h2.scan_bodies(limits),
            Proto::Detecting { .. } | Proto::Done(_) => {}
        }
    }

    fn new_h1(&self) -> H1Connection {
        let mut h1 = H1Connection::new(self.limits);
        if self.notify_requests {
            h1.notify_requests();
        }
        if let Some(limits) = self.scan {
            h1.scan_bodies(limits);
        }
        h1
    }

    fn new_h2(&self, begin: Begin) -> Box<H2Connection> {
        let mut h2 = Box::new(H2Connection::new(self.limits, begin));
        if self.notify_requests {
            h2.notify_requests();
        }
        if let Some(limits) = self.scan {
            h2.scan_bodies(limits);
        }
        h2
    }

    /// Bytes of `stream`, captured at `ts_ns`; finished exchanges are appended to `out`.
    pub fn feed(&mut self, stream: Stream, data: &[u8], ts_ns: u64, out: &mut Vec<ExchangeSlot>) {
        match &mut self.proto {
            Proto::Done(_) => {}
            Proto::H2(h2) => h2.feed(stream, data, ts_ns, out),
            Proto::H1(h1) => {
                let used = h1.feed(stream, data, ts_ns, out);
                if let Some((request, held, lost)) = h1.take_h2c() {
                    let rest = data.get(used..).unwrap_or_default();
                    self.upgrade_to_h2(request, held, lost, rest, ts_ns, out);
                }
            }
            Proto::Detecting { request, response } => match stream {
                Stream::Request if request.is_empty() && data.first() != Some(&b'P') => {
                    // The common case: an HTTP/1 method, decided without copying.
                    self.start_h1(ts_ns, out);
                    self.feed(stream, data, ts_ns, out);
                }
                Stream::Request => {
                    request.extend_from_slice(data);
                    let n = request.len().min(h2::PREFACE.len());
                    if request[..n] != h2::PREFACE[..n] {
                        self.start_h1(ts_ns, out);
                    } else if n == h2::PREFACE.len() {
                        self.start_h2(Begin::Preface, ts_ns, out);
                    }
                }
                Stream::Response => {
                    let settings_first = response.is_empty()
                        && data.get(3) == Some(&4)
                        && h2::starts_with_frames(data, u32::MAX);
                    if (settings_first || !response.is_empty())
                        && response.len() + data.len() <= MAX_EARLY_RESPONSE
                    {
                        response.extend_from_slice(data);
                    } else {
                        self.start_h1(ts_ns, out);
                        self.feed(stream, data, ts_ns, out);
                    }
                }
            },
            Proto::Joined(h1) => {
                if h2::starts_with_frames(data, u32::MAX) {
                    self.proto = Proto::H2(self.new_h2(Begin::Joined));
                    self.feed(stream, data, ts_ns, out);
                    return;
                }
                h1.feed(stream, data, ts_ns, out);
                if h1.state() != ConnState::Detecting {
                    // In step with HTTP/1 messages from here on.
                    let held = mem::replace(&mut self.proto, Proto::Done(ConnState::Failed));
                    if let Proto::Joined(h1) = held {
                        self.proto = Proto::H1(h1);
                    }
                }
            }
        }
    }

    /// Replays what was held while detecting into a new HTTP/1 parser.
    fn start_h1(&mut self, ts_ns: u64, out: &mut Vec<ExchangeSlot>) {
        let h1 = Proto::H1(self.new_h1());
        let held = mem::replace(&mut self.proto, h1);
        if let (Proto::Detecting { request, response }, Proto::H1(h1)) = (held, &mut self.proto) {
            if !request.is_empty() {
                h1.feed(Stream::Request, &request, ts_ns, out);
            }
            if !response.is_empty() {
                h1.feed(Stream::Response, &response, ts_ns, out);
            }
        }
    }

    fn start_h2(&mut self, begin: Begin, ts_ns: u64, out: &mut Vec<ExchangeSlot>) {
        let h2 = Proto::H2(self.new_h2(begin));
        let held = mem::replace(&mut self.proto, h2);
        if let (Proto::Detecting { request, response }, Proto::H2(h2)) = (held, &mut self.proto) {
            h2.feed(Stream::Request, &request, ts_ns, out);
            if !response.is_empty() {
                h2.feed(Stream::Response, &response, ts_ns, out);
            }
        }
    }

    /// A 101 switched the connection to h2c: `request` continues as stream 1, `held` (and
    /// `lost` more) are what the client sent after it, `rest` what the server sent after
    /// the 101.
    fn upgrade_to_h2(
        &mut self,
        request: ExchangeSlot,
        held: Vec<u8>,
        lost: u64,
        rest: &[u8],
        ts_ns: u64,
        out: &mut Vec<ExchangeSlot>,
    ) {
        if let Proto::H1(h1) = &self.proto {
            self.carried_errors += h1.parse_errors();
            self.carried_lost += h1.lost_exchanges();
        }
        let mut h2 = self.new_h2(Begin::Preface);
        h2.adopt_upgrade_request(request);
        if !held.is_empty() {
            h2.feed(Stream::Request, &held, ts_ns, out);
        }
        h2.gap(Stream::Request, lost, ts_ns, out);
        if !rest.is_empty() {
            h2.feed(Stream::Response, rest, ts_ns, out);
        }
        self.proto = Proto::H2(h2);
    }

    /// `len` bytes of this stream were lost (kernel capture cap or dropped events).
    pub fn gap(&mut self, stream: Stream, len: u64, ts_ns: u64, out: &mut Vec<ExchangeSlot>) {
        if len == 0 {
            return;
        }
        match &mut self.proto {
            Proto::H1(h1) => h1.gap(stream, len, ts_ns, out),
            Proto::H2(h2) => h2.gap(stream, len, ts_ns, out),
            // Without the stream's start there is no telling what it carries.
            Proto::Detecting { .. } => self.proto = Proto::Done(ConnState::Failed),
            Proto::Joined(h1) => h1.gap(stream, len, ts_ns, out),
            Proto::Done(_) => {}
        }
    }

    /// The connection closed: emit what is still pending.
    pub fn close(&mut self, ts_ns: u64, out: &mut Vec<ExchangeSlot>) {
        match &mut self.proto {
            Proto::H1(h1) | Proto::Joined(h1) => h1.close(ts_ns, out),
            Proto::H2(h2) => h2.close(ts_ns, out),
            _ => {}
        }
    }

    #[must_use]
    pub fn state(&self) -> ConnState {
        match &self.proto {
            Proto::Detecting { .. } => ConnState::Detecting,
            Proto::Joined(h1) => h1.state(),
            Proto::H1(h1) => h1.state(),
            Proto::H2(h2) if h2.failed() => ConnState::Failed,
            Proto::H2(_) => ConnState::Http,
            Proto::Done(state) => *state,
        }
    }

    /// Cumulative parse errors, so the caller can diff and export a counter.
    #[must_use]
    pub fn parse_errors(&self) -> u64 {
        self.carried_errors
            + match &self.proto {
                Proto::H1(h1) | Proto::Joined(h1) => h1.parse_errors(),
                Proto::H2(h2) => h2.errors(),
                _ => 0,
            }
    }

    /// Cumulative exchanges known to be lost.
    #[must_use]
    pub fn lost_exchanges(&self) -> u64 {
        self.carried_lost
            + match &self.proto {
                Proto::H1(h1) | Proto::Joined(h1) => h1.lost_exchanges(),
                _ => 0,
            }
    }

    /// Cumulative HTTP/2 header fields that referred to compression state never seen.
    #[must_use]
    pub fn headers_unresolved(&self) -> u64 {
        match &self.proto {
            Proto::H2(h2) => h2.headers_unresolved(),
            _ => 0,
        }
    }

    /// Whether the connection speaks HTTP/2.
    #[must_use]
    pub fn is_h2(&self) -> bool {
        matches!(self.proto, Proto::H2(_))
    }

    /// Bytes held for this connection; bounded by [`HttpLimits::max_buffered_bytes`].
    #[must_use]
    pub fn buffered_bytes(&self) -> usize {
        match &self.proto {
            Proto::Detecting { request, response } => request.len() + response.len(),
            Proto::H1(h1) | Proto::Joined(h1) => h1.buffered_bytes(),
            Proto::H2(h2) => h2.buffered_bytes(),
            Proto::Done(_) => 0,
        }
    }
}
