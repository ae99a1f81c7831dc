//! One HTTP/2 connection seen from the side: both directions' frames, their header
//! compression contexts, and every stream turned into one [`HttpExchange`].
//!
//! Bounded: at most [`HttpLimits::max_pipelined`] × 4 streams are tracked (the oldest is
//! emitted, marked truncated, to make room), field blocks are at most
//! `max_header_bytes`, header text and body prefixes count against one budget per
//! connection. A framing or HPACK error ends parsing of the connection (counted): after
//! it no header can be trusted.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::fields::{Fields, H2Anomaly, Section};
use super::frame::{self, FrameHeader};
use super::hpack::{Decoder, HpackLimits};
use super::reader::{FrameSink, Reader, Start};
use crate::detect::stream::{BodyScanner, ScanLimits};
use crate::http::grpc::{is_grpc, GrpcCall, MessageCounter};
use crate::http::sse::{is_event_stream, SseCounter};
use crate::http::tap::{StreamTap, TapKind};
use crate::http::{ExchangeSlot, HttpExchange, HttpLimits, HttpVersion, SharedStr, Stream};

/// Streams of one connection whose request bodies are scanned at once; the bodies of
/// others are judged by their kept prefix (and what lies beyond it is reported as
/// uninspected), so a connection's scanning memory stays bounded.
const MAX_SCANNED_STREAMS: usize = 16;

/// Direction index: 0 carries requests (client to server), 1 responses.
fn side(stream: Stream) -> usize {
    match stream {
        Stream::Request => 0,
        Stream::Response => 1,
    }
}

/// Header compression bounds: table updates up to 64 KiB (peers announce 4–64 KiB), a
/// field list as large as an HTTP/1 head may be.
fn hpack_limits(limits: &HttpLimits) -> HpackLimits {
    HpackLimits {
        max_table_size: 65_536,
        max_header_list_size: limits.max_header_bytes,
        max_fields: 256,
    }
}

/// How an HTTP/2 connection's parsing starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// At the client preface (prior knowledge, ALPN h2, or after an h2c upgrade).
    Preface,
    /// Somewhere in the middle: frame boundaries and compression state are unknown.
    Joined,
}

#[derive(Debug)]
struct H2Stream {
    ex: ExchangeSlot,
    request_headers_seen: bool,
    request_done: bool,
    final_response: bool,
    response_done: bool,
    request_length: Option<u64>,
    response_length: Option<u64>,
    /// The kept prefixes of the bodies: as much of the captured prefixes as is read
    /// ([`HttpLimits::bodies`]).
    request_body: Vec<u8>,
    response_body: Vec<u8>,
    /// Bytes of each direction's captured prefix, kept or not: the budget and the tap
    /// count them as they did when every captured byte was kept.
    captured: [usize; 2],
    grpc: Option<[MessageCounter; 2]>,
    sse: Option<SseCounter>,
    /// Bounded tap on a JSON or streamed JSON response body.
    tap: Option<StreamTap>,
    /// Values of the request body, scanned as it arrives.
    scan: Option<BodyScanner>,
    /// The server answered in full and reset the stream (NO_ERROR) while the request body
    /// was still coming (RFC 9113 §8.1): the DATA already sent is still counted until the
    /// request ends, the client resets, or the client opens its next stream.
    draining: bool,
    /// When the last DATA arrived, per direction.
    last_data_ns: [u64; 2],
    /// Frames of unknown streams were lost while this direction was still open.
    maybe_lost: [bool; 2],
    /// Bytes this stream holds against the connection budget.
    held: usize,
}

/// A stream's kept body prefix as the exchange's `Bytes`. Its growth is given back first: a
/// `Vec` with spare capacity becomes `Bytes` through a separate shared header allocation,
/// an exact one takes its buffer as it is, and mimalloc shrinks a block in place when at
/// least half of it is kept (always so after growth by doubling).
fn frozen(body: &mut Vec<u8>) -> Bytes {
    let mut body = std::mem::take(body);
    body.shrink_to_fit();
    Bytes::from(body)
}

/// A field block being collected from HEADERS/PUSH_PROMISE and CONTINUATION frames.
#[derive(Debug)]
struct Block {
    kind: u8,
    stream: u32,
    promised: u32,
    end_stream: bool,
    fragment: Vec<u8>,
    ts: u64,
}

#[derive(Debug)]
struct Core {
    limits: HttpLimits,
    decoders: [Decoder; 2],
    blocks: [Option<Block>; 2],
    streams: BTreeMap<u32, H2Stream>,
    /// Highest stream id opened by the client, so late frames of finished streams are not
    /// taken for new ones.
    last_client_stream: u32,
    last_pushed_stream: u32,
    /// Sum of the streams' `held` bytes.
    held: usize,
    /// Streams in the `draining` state, so new streams look for them only when there are.
    draining: usize,
    failed: bool,
    errors: u64,
    unresolved: u64,
    out: Vec<ExchangeSlot>,
    /// Hand out a [`Phase::Request`](crate::http::Phase) record as each request ends.
    notify_requests: bool,
    /// Request notices handed out (their `notice_id`s).
    notices: u64,
    /// Scan request bodies as they arrive.
    scan: Option<ScanLimits>,
    /// Streams with a scanner.
    scanning: usize,
}

#[derive(Debug)]
pub struct H2Connection {
    readers: [Reader; 2],
    core: Core,
}

impl H2Connection {
    #[must_use]
    pub fn new(limits: HttpLimits, begin: Begin) -> Self {
        let hpack = hpack_limits(&limits);
        let (request_start, response_start, decoder): (_, _, fn(HpackLimits) -> Decoder) =
            match begin {
                Begin::Preface => (Start::Preface, Start::Frames, Decoder::new),
                Begin::Joined => (Start::Unknown, Start::Unknown, Decoder::joined_mid_stream),
            };
        let max_block = limits.max_header_bytes;
        Self {
            readers: [
                Reader::new(request_start, max_block),
                Reader::new(response_start, max_block),
            ],
            core: Core {
                limits,
                decoders: [decoder(hpack), decoder(hpack)],
                blocks: [None, None],
                streams: BTreeMap::new(),
                last_client_stream: 0,
                last_pushed_stream: 0,
                held: 0,
                draining: 0,
                failed: false,
                errors: 0,
                unresolved: 0,
                out: Vec::new(),
                notify_requests: false,
                notices: 0,
                scan: None,
                scanning: 0,
            },
        }
    }

    /// From now on each request is also handed out alone as it ends (a
    /// [`Phase::Request`](crate::http::Phase) record in `out`), before its response.
    pub fn notify_requests(&mut self) {
        self.core.notify_requests = true;
    }

    /// Request bodies (other than gRPC's) are scanned for values as they arrive, at most
    /// [`MAX_SCANNED_STREAMS`] at once: full windows are handed out as
    /// [`Phase::RequestPart`](crate::http::Phase) records, the last one with the notice.
    pub fn scan_bodies(&mut self, limits: ScanLimits) {
        self.core.scan = Some(limits);
    }

    /// After an `Upgrade: h2c` request answered 101: that request is stream 1, half-closed
    /// by the client; its response comes as HTTP/2 on stream 1.
    pub fn adopt_upgrade_request(&mut self, mut ex: ExchangeSlot) {
        ex.version = HttpVersion::Http2;
        ex.stream_id = Some(1);
        let held = ex.retained_bytes();
        self.core.held += held;
        self.core.last_client_stream = 1;
        self.core.streams.insert(
            1,
            H2Stream {
                request_headers_seen: true,
                request_done: true,
                ..H2Stream::new(ex, held)
            },
        );
    }

    pub fn feed(&mut self, stream: Stream, data: &[u8], ts: u64, out: &mut Vec<ExchangeSlot>) {
        self.read(stream, out, |reader, sink| reader.feed(data, ts, sink));
    }

    pub fn gap(&mut self, stream: Stream, len: u64, ts: u64, out: &mut Vec<ExchangeSlot>) {
        self.read(stream, out, |reader, sink| reader.gap(len, ts, sink));
    }

    /// Runs `f` on `stream`'s frame reader with that direction's frame handler, then
    /// applies what it learnt to the connection.
    fn read(
        &mut self,
        stream: Stream,
        out: &mut Vec<ExchangeSlot>,
        f: impl FnOnce(&mut Reader, &mut Side<'_>),
    ) {
        if self.core.failed {
            return;
        }
        let d = side(stream);
        let mut sink = Side {
            core: &mut self.core,
            d,
            max_frame: None,
        };
        f(&mut self.readers[d], &mut sink);
        if let Some(v) = sink.max_frame {
            // SETTINGS_MAX_FRAME_SIZE bounds what the other side may send.
            self.readers[1 - d].max_frame =
                v.clamp(frame::DEFAULT_MAX_FRAME, frame::LARGEST_MAX_FRAME);
        }
        self.settle(out);
    }

    /// The connection ended: every stream still tracked is emitted as it stands.
    pub fn close(&mut self, ts: u64, out: &mut Vec<ExchangeSlot>) {
        let ids: Vec<u32> = self.core.streams.keys().copied().collect();
        for id in ids {
            self.core.emit(id, ts);
        }
        out.append(&mut self.core.out);
    }

    fn settle(&mut self, out: &mut Vec<ExchangeSlot>) {
        if self.readers.iter().any(Reader::failed) {
            self.core.fail();
        }
        out.append(&mut self.core.out);
    }

    #[must_use]
    pub fn failed(&self) -> bool {
        self.core.failed
    }

    /// Cumulative protocol errors.
    #[must_use]
    pub fn errors(&self) -> u64 {
        self.core.errors
    }

    /// Cumulative header fields that referred to compression state never seen.
    #[must_use]
    pub fn headers_unresolved(&self) -> u64 {
        self.core.unresolved
    }

    /// Bytes dropped while looking for frame boundaries.
    #[must_use]
    pub fn skipped_bytes(&self) -> u64 {
        self.readers.iter().map(|r| r.skipped).sum()
    }

    #[must_use]
    pub fn buffered_bytes(&self) -> usize {
        let blocks: usize = self
            .core
            .blocks
            .iter()
            .flatten()
            .map(|b| b.fragment.capacity())
            .sum();
        let tables: usize = self.core.decoders.iter().map(Decoder::retained_bytes).sum();
        let scans: usize = self
            .core
            .streams
            .values()
            .filter_map(|s| s.scan.as_ref())
            .map(BodyScanner::retained_bytes)
            .sum();
        scans
            + self
                .readers
                .iter()
                .map(Reader::buffered_bytes)
                .sum::<usize>()
            + blocks
            + tables
            + self.core.held
    }
}

impl H2Stream {
    fn new(ex: ExchangeSlot, held: usize) -> Self {
        Self {
            ex,
            request_headers_seen: false,
            request_done: false,
            final_response: false,
            response_done: false,
            request_length: None,
            response_length: None,
            request_body: Vec::new(),
            response_body: Vec::new(),
            captured: [0; 2],
            grpc: None,
            sse: None,
            tap: None,
            scan: None,
            draining: false,
            last_data_ns: [0; 2],
            maybe_lost: [false; 2],
            held,
        }
    }
}

impl Core {
    fn fail(&mut self) {
        if !self.failed {
            self.failed = true;
            self.errors += 1;
        }
    }

    fn max_streams(&self) -> usize {
        self.limits.max_pipelined.saturating_mul(4).max(1)
    }

    /// Budget for header text and body prefixes of all streams.
    fn budget(&self) -> usize {
        self.limits.max_buffered_bytes() / 2
    }

    /// Emits stream `id` as it stands and forgets it.
    fn emit(&mut self, id: u32, ts: u64) {
        let Some(mut s) = self.streams.remove(&id) else {
            return;
        };
        self.held = self.held.saturating_sub(s.held);
        if let Some(scan) = s.scan.take() {
            self.scanning -= 1;
            s.ex.request_scan = Some(Box::new(scan.finish()));
        }
        if s.draining {
            self.draining -= 1;
        }
        let ex = &mut s.ex;
        let declared_whole = |length: Option<u64>, body: u64| length == Some(body);
        ex.request_truncated |=
            s.maybe_lost[0] && !declared_whole(s.request_length, ex.request_body_bytes);
        ex.response_truncated |=
            s.maybe_lost[1] && !declared_whole(s.response_length, ex.response_body_bytes);
        // A body that reached its declared length is whole even if the END_STREAM after it
        // was never read (a client that stops reading once it has the body).
        let whole =
            |length: Option<u64>, body: u64, truncated: bool| length == Some(body) && !truncated;
        if !s.request_done
            && whole(
                s.request_length,
                ex.request_body_bytes,
                ex.request_truncated,
            )
        {
            s.request_done = true;
            ex.request_end_ns = Some(s.last_data_ns[0].max(ex.request_start_ns));
        }
        if !s.response_done
            && s.final_response
            && whole(
                s.response_length,
                ex.response_body_bytes,
                ex.response_truncated,
            )
        {
            s.response_done = true;
            ex.response_end_ns = ex.response_start_ns.map(|t| t.max(s.last_data_ns[1]));
        }
        if !s.request_done {
            ex.request_truncated = true;
        }
        if !s.response_done && ex.status.is_some() {
            ex.response_truncated = true;
        }
        if s.response_done && ex.response_end_ns.is_none() {
            ex.response_end_ns = Some(ts);
        }
        let mismatch = |len: Option<u64>, body: u64, done: bool, truncated: bool| {
            len.is_some_and(|n| done && !truncated && n != body)
        };
        if mismatch(
            s.request_length,
            ex.request_body_bytes,
            s.request_done,
            ex.request_truncated,
        ) || mismatch(
            s.response_length,
            ex.response_body_bytes,
            s.response_done,
            ex.response_truncated,
        ) {
            note(&mut ex.anomalies, H2Anomaly::ContentLengthMismatch);
        }
        ex.request_body = frozen(&mut s.request_body);
        ex.response_body = frozen(&mut s.response_body);
        if let (Some(call), Some([inc, outc])) = (&mut ex.grpc, &s.grpc) {
            call.messages_in = inc.messages;
            call.messages_out = outc.messages;
            call.compressed = inc.compressed + outc.compressed;
        }
        if let Some(sse) = &s.sse {
            ex.sse = Some(sse.stats());
        }
        ex.response_tap = s.tap.take().map(|tap| Box::new(tap.finish()));
        self.out.push(s.ex);
    }

    /// Stream `id`'s request just ended: hands it out alone when asked to.
    fn request_ended(&mut self, id: u32) {
        if !self.notify_requests {
            return;
        }
        if let Some(s) = self.streams.get_mut(&id) {
            if !s.ex.request_noticed {
                let body = Bytes::copy_from_slice(&s.request_body);
                let mut notice = s.ex.request_notice(body);
                if let Some(scan) = s.scan.take() {
                    self.scanning -= 1;
                    notice.request_scan = Some(Box::new(scan.finish()));
                }
                self.notices += 1;
                notice.notice_id = self.notices;
                self.out.push(notice);
                s.ex.request_noticed = true;
                s.ex.notice_id = self.notices;
            }
        }
    }

    fn emit_if_done(&mut self, id: u32, ts: u64) {
        if self
            .streams
            .get(&id)
            .is_some_and(|s| s.request_done && s.response_done)
        {
            self.emit(id, ts);
        }
    }

    /// Makes room for one more stream by emitting the oldest.
    fn make_room(&mut self, ts: u64) {
        while self.streams.len() >= self.max_streams() {
            let Some(&oldest) = self.streams.keys().next() else {
                return;
            };
            self.errors += 1;
            self.emit(oldest, ts);
        }
    }

    /// Charges `want` bytes to the budget; returns how many fit.
    fn charge(&mut self, id: u32, want: usize) -> usize {
        let fit = want.min(self.budget().saturating_sub(self.held));
        self.held += fit;
        if let Some(s) = self.streams.get_mut(&id) {
            s.held += fit;
        }
        fit
    }

    fn decode(&mut self, d: usize, block: &[u8], section: Section) -> Option<(Fields, u32)> {
        let max_text = self.limits.max_header_bytes;
        let mut fields = Fields::default();
        let result = self.decoders[d].decode(block, &mut |f| {
            fields.add(section, f.name, f.value, max_text);
        });
        fields.seal();
        match result {
            Ok(info) => {
                self.unresolved += u64::from(info.unresolved);
                if info.unresolved == 0 {
                    fields.finish(section);
                }
                Some((fields, info.unresolved))
            }
            Err(_) => {
                // The decoder's table is now unknown: nothing later can be trusted.
                self.fail();
                None
            }
        }
    }

    fn field_block(&mut self, d: usize, b: Block) {
        let len = b.fragment.len() as u64;
        if b.kind == frame::PUSH_PROMISE {
            return self.push_promise(b);
        }
        if d == 0 {
            self.request_block(b, len);
        } else {
            self.response_block(b, len);
        }
    }

    fn request_block(&mut self, b: Block, len: u64) {
        let id = b.stream;
        let known = self.streams.contains_key(&id);
        let new_stream = !known && id > self.last_client_stream && id % 2 == 1;
        let section = if known {
            Section::Trailers
        } else {
            Section::Request
        };
        let Some((fields, unresolved)) = self.decode(0, &b.fragment, section) else {
            return;
        };
        if known {
            let Some(s) = self.streams.get_mut(&id) else {
                return;
            };
            s.ex.incomplete |= unresolved > 0;
            for a in &fields.anomalies {
                note(&mut s.ex.anomalies, *a);
            }
            if b.end_stream {
                s.request_done = true;
                s.ex.request_end_ns = Some(b.ts);
                self.request_ended(id);
            }
            return self.emit_if_done(id, b.ts);
        }
        // Joined mid-connection, a block without `:method` may be the trailers of a
        // stream that started before: not a request.
        if !new_stream || (fields.method.is_none() && unresolved == 0) {
            return;
        }
        self.last_client_stream = id;
        self.end_drained(b.ts);
        self.make_room(b.ts);
        let mut ex = HttpExchange::boxed(b.ts);
        fill_request(&mut ex, fields, unresolved, id, len);
        if b.end_stream {
            ex.request_end_ns = Some(b.ts);
        }
        let grpc = ex.grpc.is_some();
        let length = ex
            .request_headers
            .iter()
            .find(|(n, _)| *n == "content-length")
            .and_then(|(_, v)| v.parse().ok());
        let held = ex.retained_bytes();
        self.held += held;
        let mut s = H2Stream::new(ex, held);
        s.request_headers_seen = true;
        s.request_done = b.end_stream;
        s.request_length = length;
        s.grpc = grpc.then(Default::default);
        if let Some(limits) = self.scan.filter(|_| !b.end_stream && !grpc) {
            if self.scanning < MAX_SCANNED_STREAMS {
                self.scanning += 1;
                let ct = s.ex.request_headers.get("content-type");
                s.scan = Some(BodyScanner::new(ct, limits));
            }
        }
        self.streams.insert(id, s);
        if b.end_stream {
            self.request_ended(id);
        }
    }

    fn push_promise(&mut self, b: Block) {
        let Some((fields, unresolved)) = self.decode(1, &b.fragment, Section::Request) else {
            return;
        };
        let id = b.promised;
        if id == 0 || id % 2 == 1 || id <= self.last_pushed_stream || self.streams.contains_key(&id)
        {
            self.errors += 1;
            return;
        }
        self.last_pushed_stream = id;
        self.make_room(b.ts);
        let mut ex = HttpExchange::boxed(b.ts);
        fill_request(&mut ex, fields, unresolved, id, b.fragment.len() as u64);
        ex.request_end_ns = Some(b.ts);
        let held = ex.retained_bytes();
        self.held += held;
        let mut s = H2Stream::new(ex, held);
        s.request_headers_seen = true;
        s.request_done = true;
        self.streams.insert(id, s);
    }

    fn response_block(&mut self, b: Block, len: u64) {
        let id = b.stream;
        let trailers = self.streams.get(&id).is_some_and(|s| s.final_response);
        let section = if trailers {
            Section::Trailers
        } else {
            Section::Response
        };
        let Some((fields, unresolved)) = self.decode(1, &b.fragment, section) else {
            return;
        };
        let Some(s) = self.streams.get_mut(&id) else {
            // A stream that started before capture joined (decoded above for the table).
            return;
        };
        let ex = &mut s.ex;
        ex.incomplete |= unresolved > 0;
        for a in &fields.anomalies {
            note(&mut ex.anomalies, *a);
        }
        if trailers {
            for (n, v) in &fields.regular {
                if let Some(call) = &mut ex.grpc {
                    call.note_field(n, v);
                }
            }
            let held = fields.text_bytes();
            ex.response_trailers = fields.regular;
            s.held += held;
            self.held += held;
        } else {
            match fields.status {
                // Interim (1xx): the final response follows.
                Some(status) if (100..200).contains(&status) => return,
                status => ex.status = status,
            }
            s.final_response = true;
            ex.response_start_ns = Some(b.ts);
            ex.response_header_bytes = len;
            if let Some(call) = &mut ex.grpc {
                // A trailers-only response carries grpc-status in its headers.
                for (n, v) in &fields.regular {
                    call.note_field(n, v);
                }
            }
            if fields.content_type.as_deref().is_some_and(is_event_stream) {
                s.sse = Some(SseCounter::default());
            }
            s.tap = fields
                .content_type
                .as_deref()
                .and_then(TapKind::for_content_type)
                .map(StreamTap::new);
            s.response_length = fields.content_length;
            let held = fields.text_bytes();
            ex.response_headers = fields.regular;
            s.held += held;
            self.held += held;
        }
        if b.end_stream {
            s.response_done = true;
            s.ex.response_end_ns = Some(b.ts);
        }
        self.emit_if_done(id, b.ts);
    }

    fn settings(&mut self, d: usize, payload: &[u8]) -> Option<u32> {
        let mut max_frame = None;
        for (id, value) in frame::settings(payload) {
            match id {
                // Our peer's decoder accepts tables this large from the other side's encoder.
                frame::SETTINGS_HEADER_TABLE_SIZE => {
                    self.decoders[1 - d].set_max_table_size_setting(value);
                }
                frame::SETTINGS_MAX_FRAME_SIZE => max_frame = Some(value),
                _ => {}
            }
        }
        max_frame
    }

    /// RST_STREAM from direction `d`: the stream ends here, whatever was missing is marked
    /// truncated — unless the server reset after its complete answer (see `draining`).
    fn reset(&mut self, d: usize, id: u32, ts: u64) {
        if let Some(s) = self.streams.get_mut(&id) {
            if d == 1 && s.response_done && !s.request_done && !s.draining {
                s.draining = true;
                self.draining += 1;
                return;
            }
        }
        self.emit(id, ts);
    }

    /// The client opened stream `id`: streams drained after a server reset are done.
    fn end_drained(&mut self, ts: u64) {
        if self.draining == 0 {
            return;
        }
        let drained: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| s.draining)
            .map(|(&id, _)| id)
            .collect();
        for id in drained {
            self.emit(id, ts);
        }
    }

    fn body(&mut self, d: usize, id: u32, data: &[u8], ts: u64) {
        let cap = self.limits.max_body_capture_bytes;
        let bodies = self.limits.bodies;
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let captured = s.captured.get(d).copied().unwrap_or(cap);
        let want = data.len().min(cap.saturating_sub(captured));
        let truncated = if d == 0 {
            s.ex.request_truncated
        } else {
            s.ex.response_truncated
        };
        let fit = if want > 0 && !truncated {
            self.charge(id, want)
        } else {
            0
        };
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if let Some(n) = s.captured.get_mut(d) {
            *n += fit;
        }
        if let Some(counters) = &mut s.grpc {
            counters[d].feed(data);
        }
        let len = data.len() as u64;
        s.last_data_ns[d] = ts;
        if d == 0 {
            s.ex.request_body_bytes += len;
            let keep = bodies.request(&s.ex.method).min(cap);
            let kept = fit.min(keep.saturating_sub(s.request_body.len()));
            s.request_body.extend_from_slice(&data[..kept]);
            if let Some(scan) = &mut s.scan {
                scan.feed(data);
                if let Some(window) = scan.take_full_window() {
                    let part = s.ex.body_part(window);
                    self.out.push(part);
                }
            }
        } else {
            s.ex.response_body_bytes += len;
            let keep = bodies.responses.min(cap);
            let kept = fit.min(keep.saturating_sub(s.response_body.len()));
            s.response_body.extend_from_slice(&data[..kept]);
            if let Some(sse) = &mut s.sse {
                sse.feed(data, ts);
            }
            if let Some(tap) = &mut s.tap {
                tap.feed(data, fit, ts);
            }
        }
    }
}

fn note(anomalies: &mut Vec<H2Anomaly>, a: H2Anomaly) {
    if !anomalies.contains(&a) {
        anomalies.push(a);
    }
}

/// Request facts from a decoded request field section.
fn fill_request(ex: &mut HttpExchange, fields: Fields, unresolved: u32, id: u32, len: u64) {
    ex.version = HttpVersion::Http2;
    ex.stream_id = Some(id);
    ex.incomplete = unresolved > 0;
    ex.method = fields.method.map(SharedStr::from).unwrap_or_default();
    ex.set_target(fields.path.as_deref().unwrap_or_default());
    ex.host = fields.authority.map(SharedStr::from).or_else(|| {
        fields
            .regular
            .iter()
            .find(|(n, _)| *n == "host")
            .map(|(_, v)| SharedStr::from(v))
    });
    ex.request_header_bytes = len;
    if fields.content_type.as_deref().is_some_and(is_grpc) {
        ex.grpc = GrpcCall::from_path(&ex.path).map(Box::new);
    }
    ex.anomalies = fields.anomalies;
    ex.request_headers = fields.regular;
}

/// One direction's frame handler.
struct Side<'a> {
    core: &'a mut Core,
    d: usize,
    max_frame: Option<u32>,
}

impl FrameSink for Side<'_> {
    fn frame(&mut self, h: &FrameHeader, payload: &[u8], ts: u64) {
        let core = &mut *self.core;
        let d = self.d;
        if let Some(block) = &mut core.blocks[d] {
            // Only CONTINUATION of the same stream may follow an unfinished block.
            if h.kind != frame::CONTINUATION || h.stream != block.stream {
                return core.fail();
            }
            if block.fragment.len() + payload.len() > core.limits.max_header_bytes {
                return core.fail();
            }
            block.fragment.extend_from_slice(payload);
            if h.has(frame::END_HEADERS) {
                if let Some(b) = core.blocks[d].take() {
                    core.field_block(d, b);
                }
            }
            return;
        }
        match h.kind {
            frame::HEADERS | frame::PUSH_PROMISE => {
                let Some((fragment, promised)) = frame::block_fragment(h, payload) else {
                    return core.fail();
                };
                let b = Block {
                    kind: h.kind,
                    stream: h.stream,
                    promised,
                    end_stream: h.kind == frame::HEADERS && h.has(frame::END_STREAM),
                    fragment: fragment.to_vec(),
                    ts,
                };
                if h.has(frame::END_HEADERS) {
                    core.field_block(d, b);
                } else {
                    core.blocks[d] = Some(b);
                }
            }
            frame::CONTINUATION => core.fail(),
            frame::SETTINGS if !h.has(frame::ACK) => self.max_frame = core.settings(d, payload),
            frame::RST_STREAM => core.reset(d, h.stream, ts),
            _ => {}
        }
    }

    fn data(&mut self, h: &FrameHeader, data: &[u8], ts: u64) {
        self.core.body(self.d, h.stream, data, ts);
    }

    fn data_end(&mut self, h: &FrameHeader, ts: u64) {
        if !h.has(frame::END_STREAM) {
            return;
        }
        let d = self.d;
        if let Some(s) = self.core.streams.get_mut(&h.stream) {
            if d == 0 {
                s.request_done = true;
                s.ex.request_end_ns = Some(ts);
            } else {
                s.response_done = true;
                s.ex.response_end_ns = Some(ts);
            }
        }
        if d == 0 {
            self.core.request_ended(h.stream);
        }
        self.core.emit_if_done(h.stream, ts);
    }

    fn data_lost(&mut self, stream: u32, len: u64) {
        let d = self.d;
        if let Some(s) = self.core.streams.get_mut(&stream) {
            if let Some(counters) = &mut s.grpc {
                counters[d].gap(len);
            }
            if d == 0 {
                s.ex.request_body_bytes += len;
                s.ex.request_truncated = true;
                if let Some(scan) = &mut s.scan {
                    scan.gap();
                }
            } else {
                s.ex.response_body_bytes += len;
                s.ex.response_truncated = true;
            }
        }
    }

    fn sync_lost(&mut self) {
        let core = &mut *self.core;
        let d = self.d;
        // Lost frames may have carried field blocks: this direction's table is unknown
        // from here on; and any stream still open in it may have lost DATA (decided when
        // it is emitted: a body that reaches its declared length lost nothing).
        core.decoders[d] = Decoder::joined_mid_stream(hpack_limits(&core.limits));
        core.blocks[d] = None;
        for s in core.streams.values_mut() {
            let done = if d == 0 {
                s.request_done
            } else {
                s.response_done
            };
            s.maybe_lost[d] |= !done;
        }
    }

    fn error(&mut self) {
        self.core.errors += 1;
    }
}
