//! Pairs the request and response streams of one HTTP/1.x connection into exchanges.

use std::collections::VecDeque;
use std::mem;

use super::exchange::{HttpExchange, HttpVersion};
use super::framing::BodyOverride;
use super::head::{Head, StartLine};
use super::limits::HttpLimits;
use super::message::{Abandoned, MessageEnd, MessageKind, MessageParser, MessageSink};
use super::{ExchangeSlot, Headers};
use crate::detect::stream::{ScanLimits, Window};

/// Which stream of the connection bytes belong to: the one carrying requests (client to
/// server) or responses. The capture layer maps (role, direction) to this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Request,
    Response,
}

/// What the connection turned out to carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// No message start seen yet.
    Detecting,
    Http,
    /// The first bytes were not HTTP/1.x; all input is ignored.
    NotHttp,
    /// The connection switched protocols (101, or 2xx to CONNECT); all input is ignored.
    Upgraded,
    /// Too damaged to follow; all input is ignored.
    Failed,
}

/// A request awaiting its response, its own end, or both.
#[derive(Debug)]
struct Entry {
    seq: u64,
    /// In its exchange's allocation from the request head on ([`ExchangeSlot`]): it is
    /// handed on as it is, not copied.
    ex: ExchangeSlot,
    /// `ex.retained_bytes()` as last counted in `Core::retained`.
    retained: usize,
    request_done: bool,
    response_done: bool,
}

/// Connection state shared by both streams' sinks.
#[derive(Debug)]
struct Core {
    limits: HttpLimits,
    state: ConnState,
    /// Requests in arrival order; `seq` numbers are consecutive.
    pending: VecDeque<Entry>,
    next_seq: u64,
    /// The request the next final response answers (may already have been dropped).
    response_seq: u64,
    /// The request whose body is being parsed.
    current_request: Option<u64>,
    /// The request the response being parsed answers; `None` for interim or unpaired ones.
    current_response: Option<u64>,
    /// `retained_bytes` of all pending exchanges.
    retained: usize,
    errors: u64,
    /// Exchanges known to be lost: responses with no request left to pair (the request fell
    /// into a capture gap) and requests forgotten by the pipelining bound.
    lost: u64,
    /// The request a 101 switched to HTTP/2 (`Upgrade: h2c`): its response comes as HTTP/2
    /// stream 1, so it is handed over rather than emitted.
    h2c: Option<ExchangeSlot>,
    /// Hand out a [`super::Phase::Request`] record as each request ends.
    notify_requests: bool,
    /// Request notices handed out (their `notice_id`s).
    notices: u64,
}

impl Core {
    fn index(&self, seq: u64) -> Option<usize> {
        let front = self.pending.front()?.seq;
        usize::try_from(seq.checked_sub(front)?).ok()
    }

    fn entry(&self, seq: u64) -> Option<&Entry> {
        self.pending.get(self.index(seq)?)
    }

    fn entry_mut(&mut self, seq: u64) -> Option<&mut Entry> {
        let index = self.index(seq)?;
        self.pending.get_mut(index)
    }

    /// Applies `f` to a pending entry, keeping the memory accounting right.
    fn update(&mut self, seq: Option<u64>, f: impl FnOnce(&mut Entry)) {
        let Some(entry) = seq.and_then(|seq| self.entry_mut(seq)) else {
            return;
        };
        f(entry);
        let after = entry.ex.retained_bytes();
        let before = std::mem::replace(&mut entry.retained, after);
        self.retained = self.retained.saturating_sub(before).saturating_add(after);
    }

    /// Applies `f` to a pending entry whose retained bytes change only in the fields `f`
    /// replaces: `f` returns what they retained before and after, so that the count needs
    /// no walk over the whole exchange ([`HttpExchange::retained_bytes`]).
    fn update_counted(&mut self, seq: Option<u64>, f: impl FnOnce(&mut Entry) -> (usize, usize)) {
        let Some(entry) = seq.and_then(|seq| self.entry_mut(seq)) else {
            return;
        };
        let (removed, added) = f(entry);
        entry.retained = entry.retained.saturating_sub(removed).saturating_add(added);
        debug_assert_eq!(entry.retained, entry.ex.retained_bytes());
        self.retained = self.retained.saturating_sub(removed).saturating_add(added);
    }

    fn push_request(&mut self, ex: ExchangeSlot, request_done: bool) -> u64 {
        if self.pending.len() >= self.limits.max_pipelined.max(1) {
            // Too many unanswered requests: forget the oldest. Its response, if it still
            // comes, is recognised by its sequence number and dropped.
            self.errors += 1;
            self.lost += 1;
            if let Some(old) = self.pending.pop_front() {
                self.retained = self.retained.saturating_sub(old.retained);
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let retained = ex.retained_bytes();
        self.retained = self.retained.saturating_add(retained);
        self.pending.push_back(Entry {
            seq,
            ex,
            retained,
            request_done,
            response_done: false,
        });
        seq
    }

    /// Claims the request the next final response answers, if one is pending.
    fn claim_for_response(&mut self) -> Option<u64> {
        if self.response_seq >= self.next_seq {
            self.errors += 1;
            self.lost += 1;
            return None;
        }
        let seq = self.response_seq;
        self.response_seq += 1;
        self.entry(seq).map(|_| seq)
    }

    fn awaiting_response(&self) -> bool {
        self.response_seq < self.next_seq
    }

    /// Emits exchanges from the front that are complete in both directions.
    fn flush(&mut self, out: &mut Vec<ExchangeSlot>) {
        while self
            .pending
            .front()
            .is_some_and(|e| e.request_done && e.response_done)
        {
            self.emit_front(out);
        }
    }

    /// Emits every pending exchange, finished or not.
    fn drain(&mut self, out: &mut Vec<ExchangeSlot>) {
        while !self.pending.is_empty() {
            self.emit_front(out);
        }
    }

    fn emit_front(&mut self, out: &mut Vec<ExchangeSlot>) {
        if let Some(entry) = self.pending.pop_front() {
            self.retained = self.retained.saturating_sub(entry.retained);
            out.push(entry.ex);
        }
    }

    /// If the 101 answering request `seq` switched to h2c, takes that request out of the
    /// pending ones (it continues as HTTP/2 stream 1).
    fn take_h2c_request(&mut self, seq: Option<u64>) {
        let Some(index) = seq.and_then(|s| self.index(s)) else {
            return;
        };
        let h2c = |headers: &Headers| {
            headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case("upgrade")
                    && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("h2c"))
            })
        };
        let Some(entry) = self.pending.get(index) else {
            return;
        };
        if !(h2c(&entry.ex.request_headers) && h2c(&entry.ex.response_headers)) {
            return;
        }
        if let Some(entry) = self.pending.remove(index) {
            self.retained = self.retained.saturating_sub(entry.retained);
            let mut ex = entry.ex;
            ex.status = None;
            ex.response_start_ns = None;
            ex.response_header_bytes = 0;
            ex.response_headers = Headers::new();
            self.h2c = Some(ex);
        }
    }

    /// A stream's first message start was (not) recognised; returns whether to go on.
    fn first_start(&mut self, looks_like_http: bool) -> bool {
        match (self.state, looks_like_http) {
            (ConnState::Detecting, true) => {
                self.state = ConnState::Http;
                true
            }
            (ConnState::Detecting, false) => {
                self.state = ConnState::NotHttp;
                false
            }
            (state, _) => state == ConnState::Http,
        }
    }
}

/// Fills the request-line fields; false if `start` is not a request line.
fn set_request_line(ex: &mut HttpExchange, start: Option<StartLine>) -> bool {
    let Some(StartLine::Request {
        method,
        target,
        version,
    }) = start
    else {
        return false;
    };
    ex.method = method;
    ex.set_target_shared(target);
    ex.version = HttpVersion::from_minor(version);
    true
}

fn request_exchange(head: &mut Head, start_ns: u64) -> ExchangeSlot {
    let mut ex = HttpExchange::boxed(start_ns);
    set_request_line(&mut ex, Some(head.take_start()));
    ex.host = head.host.take();
    ex.request_headers = mem::take(&mut head.headers);
    ex.request_header_bytes = head.wire_len as u64;
    ex
}

struct RequestSink<'a> {
    core: &'a mut Core,
    out: &'a mut Vec<ExchangeSlot>,
}

impl MessageSink for RequestSink<'_> {
    fn first_start(&mut self, looks_like_http: bool) -> bool {
        self.core.first_start(looks_like_http)
    }

    fn head(&mut self, head: &mut Head, start_ns: u64) -> BodyOverride {
        let seq = self
            .core
            .push_request(request_exchange(head, start_ns), false);
        self.core.current_request = Some(seq);
        BodyOverride::None
    }

    fn end(&mut self, end: MessageEnd) {
        let seq = self.core.current_request.take();
        let notice_id = self.core.notify_requests.then(|| {
            self.core.notices += 1;
            self.core.notices
        });
        let mut notice = None;
        let scan = end.scan;
        // Of what is retained, only the body and the scan's window change.
        let retained = |ex: &HttpExchange| {
            ex.request_body.len() + ex.request_scan.as_ref().map_or(0, |w| w.retained_bytes())
        };
        self.core.update_counted(seq, |e| {
            let before = retained(&e.ex);
            e.ex.request_end_ns = Some(end.end_ns);
            e.ex.request_body_bytes = end.body_len;
            e.ex.request_body = end.body;
            e.ex.request_truncated |= end.truncated;
            e.request_done = true;
            if let Some(id) = notice_id {
                let mut n = e.ex.request_notice(e.ex.request_body.clone());
                n.request_scan = scan;
                n.notice_id = id;
                notice = Some(n);
                e.ex.request_noticed = true;
                e.ex.notice_id = id;
            } else {
                e.ex.request_scan = scan;
            }
            (before, retained(&e.ex))
        });
        self.out.extend(notice);
        self.core.flush(self.out);
    }

    fn abandoned(&mut self, partial: Abandoned) {
        let mut ex = HttpExchange::boxed(partial.start_ns);
        let start_line_seen = set_request_line(&mut ex, partial.start);
        if !start_line_seen {
            ex.method = partial.method.unwrap_or_default();
        }
        ex.request_header_bytes = partial.head_bytes as u64;
        ex.request_truncated = true;
        ex.request_line_invalid = partial.invalid_start_line;
        ex.request_head_lost = partial.lost && !start_line_seen;
        // Still recorded, so that the response to it pairs with it rather than with the
        // next request.
        self.core.push_request(ex, true);
    }

    fn body_part(&mut self, window: Window) {
        let part = self
            .core
            .current_request
            .and_then(|seq| self.core.entry(seq))
            .map(|e| e.ex.body_part(window));
        self.out.extend(part);
    }
}

struct ResponseSink<'a> {
    core: &'a mut Core,
    requests: &'a mut MessageParser,
    out: &'a mut Vec<ExchangeSlot>,
}

impl ResponseSink<'_> {
    /// Records that the response to request `seq` (if any) has status `status`, and acts on
    /// what it means for the connection. Returns how the response body is to be treated.
    fn answer(&mut self, seq: Option<u64>, status: Option<u16>, ts: u64) -> BodyOverride {
        // The request's method, looked up once.
        let method = seq.and_then(|s| self.core.entry(s)).map(|e| &*e.ex.method);
        let (head, connect) = (method == Some("HEAD"), method == Some("CONNECT"));
        let switched = status.is_some_and(|s| s == 101 || (connect && (200..300).contains(&s)));
        if switched {
            self.core.state = ConnState::Upgraded;
            if status == Some(101) {
                self.core.take_h2c_request(seq);
            }
            return BodyOverride::Tunnel;
        }
        if self.requests.is_paused() && seq.is_some_and(|s| s + 1 == self.core.next_seq) {
            // The answer to a CONNECT/Upgrade request refused the switch: the bytes that
            // followed that request are HTTP after all.
            let mut sink = RequestSink {
                core: self.core,
                out: self.out,
            };
            self.requests.resume(ts, &mut sink);
        }
        if head {
            BodyOverride::NoBody
        } else {
            BodyOverride::None
        }
    }
}

fn is_interim(status: u16) -> bool {
    (100..200).contains(&status) && status != 101
}

impl MessageSink for ResponseSink<'_> {
    fn first_start(&mut self, looks_like_http: bool) -> bool {
        self.core.first_start(looks_like_http)
    }

    fn head(&mut self, head: &mut Head, start_ns: u64) -> BodyOverride {
        let StartLine::Response { status, .. } = head.start else {
            return BodyOverride::None;
        };
        if is_interim(status) {
            // 100 Continue, 103 Early Hints…: the final response follows.
            if !self.core.awaiting_response() {
                self.core.errors += 1;
            }
            self.core.current_response = None;
            return BodyOverride::None;
        }
        let seq = self.core.claim_for_response();
        self.core.current_response = seq;
        if let Some(e) = seq.and_then(|seq| self.core.entry_mut(seq)) {
            e.ex.status = Some(status);
            e.ex.response_start_ns = Some(start_ns);
            e.ex.response_header_bytes = head.wire_len as u64;
            // Of what is retained, only the header list changes: counted by its length
            // rather than by `update`'s walk over the whole exchange.
            let (added, removed) = (head.headers.text_len(), e.ex.response_headers.text_len());
            e.ex.response_headers = mem::take(&mut head.headers);
            e.retained = e.retained.saturating_sub(removed).saturating_add(added);
            debug_assert_eq!(e.retained, e.ex.retained_bytes());
            self.core.retained = self
                .core
                .retained
                .saturating_sub(removed)
                .saturating_add(added);
        }
        self.answer(seq, Some(status), start_ns)
    }

    fn end(&mut self, end: MessageEnd) {
        let seq = self.core.current_response.take();
        // Of what is retained, only the body and the tap change.
        let retained = |ex: &HttpExchange| {
            ex.response_body.len() + ex.response_tap.as_ref().map_or(0, |t| t.retained_bytes())
        };
        self.core.update_counted(seq, |e| {
            let before = retained(&e.ex);
            e.ex.response_end_ns = Some(end.end_ns);
            e.ex.response_body_bytes = end.body_len;
            e.ex.response_body = end.body;
            e.ex.response_truncated |= end.truncated;
            e.ex.sse = end.sse;
            e.ex.response_tap = end.tap;
            e.response_done = true;
            (before, retained(&e.ex))
        });
        self.core.flush(self.out);
    }

    fn abandoned(&mut self, partial: Abandoned) {
        let status = match partial.start {
            Some(StartLine::Response { status, .. }) => Some(status),
            _ => None,
        };
        if status.is_some_and(is_interim) || !self.core.awaiting_response() {
            return;
        }
        let seq = self.core.claim_for_response();
        self.core.update(seq, |e| {
            e.ex.status = status;
            e.ex.response_start_ns = Some(partial.start_ns);
            e.ex.response_header_bytes = partial.head_bytes as u64;
            e.ex.response_truncated = true;
            e.response_done = true;
        });
        self.answer(seq, status, partial.start_ns);
        self.core.flush(self.out);
    }
}

/// Reassembles the HTTP/1.x exchanges of one TCP connection from its two byte streams.
/// (The protocol switch in `super::protocol` decides that a connection speaks HTTP/1.x.)
#[derive(Debug)]
pub struct H1Connection {
    requests: MessageParser,
    responses: MessageParser,
    core: Core,
}

impl H1Connection {
    #[must_use]
    pub fn new(limits: HttpLimits) -> Self {
        Self {
            requests: MessageParser::new(MessageKind::Request, limits),
            responses: MessageParser::new(MessageKind::Response, limits),
            core: Core {
                limits,
                state: ConnState::Detecting,
                pending: VecDeque::new(),
                next_seq: 0,
                response_seq: 0,
                current_request: None,
                current_response: None,
                retained: 0,
                errors: 0,
                lost: 0,
                h2c: None,
                notify_requests: false,
                notices: 0,
            },
        }
    }

    /// A connection capture joined while it was under way (established before the agent
    /// started): either stream may begin inside a message, so both look for their next
    /// message start as after a capture gap, and what comes before it is neither an error
    /// nor a sign that the connection is not HTTP.
    #[must_use]
    pub fn joined(limits: HttpLimits) -> Self {
        Self {
            requests: MessageParser::joined(MessageKind::Request, limits),
            responses: MessageParser::joined(MessageKind::Response, limits),
            ..Self::new(limits)
        }
    }

    /// From now on each request is also handed out alone as it ends (a
    /// [`super::Phase::Request`] record in `out`), before its response.
    pub fn notify_requests(&mut self) {
        self.core.notify_requests = true;
    }

    /// Request bodies are scanned for values as they arrive: full windows are handed out
    /// as [`super::Phase::RequestPart`] records, the last one with the request notice.
    pub fn scan_bodies(&mut self, limits: ScanLimits) {
        self.requests.scan_bodies(limits);
    }

    /// Bytes of `stream`, captured at `ts_ns`; finished exchanges are appended to `out`.
    /// Returns the bytes consumed: fewer than given when the connection switched protocols
    /// inside `data`.
    pub fn feed(
        &mut self,
        stream: Stream,
        data: &[u8],
        ts_ns: u64,
        out: &mut Vec<ExchangeSlot>,
    ) -> usize {
        if !self.is_parsing() {
            return 0;
        }
        let used = match stream {
            Stream::Request => {
                let mut sink = RequestSink {
                    core: &mut self.core,
                    out,
                };
                self.requests.feed(data, ts_ns, &mut sink)
            }
            Stream::Response => {
                let mut sink = ResponseSink {
                    core: &mut self.core,
                    requests: &mut self.requests,
                    out,
                };
                self.responses.feed(data, ts_ns, &mut sink)
            }
        };
        self.settle();
        used
    }

    /// After a 101 to `Upgrade: h2c`: the upgraded request, the bytes the client sent after
    /// it (the HTTP/2 preface, usually none yet) and how many more were lost.
    pub(crate) fn take_h2c(&mut self) -> Option<(ExchangeSlot, Vec<u8>, u64)> {
        let ex = self.core.h2c.take()?;
        let (held, lost) = self.requests.take_held();
        self.requests.stop();
        self.responses.stop();
        Some((ex, held, lost))
    }

    /// `len` bytes of this stream were lost (kernel capture cap or dropped events): mark the
    /// current message truncated; if the loss is inside a body of known length, skip it and
    /// stay in sync; otherwise resynchronise (drop buffered bytes, look for the next message
    /// start) or stop parsing the connection.
    pub fn gap(&mut self, stream: Stream, len: u64, ts_ns: u64, out: &mut Vec<ExchangeSlot>) {
        if !self.is_parsing() || len == 0 {
            return;
        }
        if self.core.state == ConnState::Detecting {
            // Without the stream's start there is no telling what it carries.
            self.core.state = ConnState::Failed;
        } else {
            match stream {
                Stream::Request => {
                    let mut sink = RequestSink {
                        core: &mut self.core,
                        out,
                    };
                    self.requests.gap(len, ts_ns, &mut sink);
                }
                Stream::Response => {
                    let mut sink = ResponseSink {
                        core: &mut self.core,
                        requests: &mut self.requests,
                        out,
                    };
                    self.responses.gap(len, ts_ns, &mut sink);
                }
            }
        }
        self.settle();
    }

    /// The connection closed: finish read-until-close bodies, emit requests still waiting
    /// for a response (status None).
    pub fn close(&mut self, ts_ns: u64, out: &mut Vec<ExchangeSlot>) {
        if self.is_parsing() {
            let mut sink = ResponseSink {
                core: &mut self.core,
                requests: &mut self.requests,
                out,
            };
            self.responses.close(ts_ns, &mut sink);
            let mut sink = RequestSink {
                core: &mut self.core,
                out,
            };
            self.requests.close(ts_ns, &mut sink);
        }
        self.requests.stop();
        self.responses.stop();
        self.core.drain(out);
    }

    #[must_use]
    pub fn state(&self) -> ConnState {
        self.core.state
    }

    /// Cumulative parse errors, so the caller can diff and export a counter.
    #[must_use]
    pub fn parse_errors(&self) -> u64 {
        self.requests.errors() + self.responses.errors() + self.core.errors
    }

    /// Cumulative exchanges known to be lost (see `Core::lost`), for a counter.
    #[must_use]
    pub fn lost_exchanges(&self) -> u64 {
        self.core.lost
    }

    /// Bytes held for this connection; at most [`HttpLimits::max_buffered_bytes`].
    #[must_use]
    pub fn buffered_bytes(&self) -> usize {
        let held =
            self.requests.buffered_bytes() + self.responses.buffered_bytes() + self.core.retained;
        debug_assert!(held <= self.core.limits.max_buffered_bytes());
        held
    }

    fn is_parsing(&self) -> bool {
        matches!(self.core.state, ConnState::Detecting | ConnState::Http)
    }

    /// Applies a parser's verdict to the whole connection.
    fn settle(&mut self) {
        if self.requests.failed() || self.responses.failed() {
            self.core.state = ConnState::Failed;
        }
        // A switch to h2c keeps what the client sent after its request until taken.
        if !self.is_parsing() && self.core.h2c.is_none() {
            self.requests.stop();
            self.responses.stop();
        }
    }
}
