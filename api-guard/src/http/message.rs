//! Incremental parser for one direction of an HTTP/1.x connection.
//!
//! Bytes may arrive in any split; results depend only on the byte stream (and on the
//! gaps reported in it), never on how it was cut. The parser reports messages to a
//! [`MessageSink`] and keeps at most `max_header_bytes` of an unfinished head plus
//! `max_body_capture_bytes` of the current body.

use std::mem;

use bytes::Bytes;

use super::chunked::ChunkedDecoder;
use super::framing::{BodyFacts, BodyOverride, Framing};
use super::head::{self, Head, LineEvent, LineScan, StartLine};
use super::limits::HttpLimits;
use super::probe::{probe, Probe, PROBE_LEN};
use super::recent_bodies;
use super::recent_heads;
use super::sse::{is_event_stream_media, SseCounter, SseStats};
use super::tap::{StreamTap, TapKind, TappedStream};
use super::{SharedStr, CR, LF};
use crate::detect::stream::{BodyScanner, ScanLimits, Window};

/// Consecutive parse errors (without a valid head in between) after which a stream is
/// given up: it is evidently not HTTP/1.x, or too damaged to follow.
const MAX_ERRORS_IN_ROW: u32 = 8;

/// Which kind of messages a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Request,
    Response,
}

/// A message that ended (completely, or cut short after its head).
#[derive(Debug)]
pub(crate) struct MessageEnd {
    pub end_ns: u64,
    /// The first `max_body_capture_bytes` of the decoded payload.
    pub body: Bytes,
    /// Decoded payload length, including bytes lost to capture gaps.
    pub body_len: u64,
    pub truncated: bool,
    pub sse: Option<SseStats>,
    /// What the response body tap kept (JSON and streamed JSON responses); boxed, as the
    /// window, so that the end of a message is small to pass on.
    pub tap: Option<Box<TappedStream>>,
    /// The last window of the request body's scan (requests, when scanning is on).
    pub scan: Option<Box<Window>>,
}

/// A message given up before its head was complete (capture gap, parse error or close).
#[derive(Debug)]
pub(crate) struct Abandoned {
    pub start_ns: u64,
    /// The start line, if it was complete and valid.
    pub start: Option<StartLine>,
    /// For requests: the method, known once the message start was recognised.
    pub method: Option<SharedStr>,
    /// Head bytes received.
    pub head_bytes: usize,
    /// The start line was complete and the parser rejected it (a version other than
    /// HTTP/1.0 or 1.1, a target with spaces, no version…): a malformed request rather
    /// than a capture gap or an early close.
    pub invalid_start_line: bool,
    /// A capture gap cut it: bytes the client sent were not seen (rather than a parse
    /// error or a close inside the head).
    pub lost: bool,
}

/// Receives what a [`MessageParser`] finds.
pub(crate) trait MessageSink {
    /// The stream's first message start looked like HTTP (`true`) or not. Returning false
    /// stops the parser for good; true after a mismatch makes it a parse error instead.
    fn first_start(&mut self, looks_like_http: bool) -> bool;
    /// A complete, valid head. The answer matters for responses only. The sink takes what
    /// it keeps out of the head ([`std::mem::take`], [`Head::take_start`]): the head is
    /// built once in the parser's frame and dropped there, not moved through the calls.
    fn head(&mut self, head: &mut Head, start_ns: u64) -> BodyOverride;
    /// The message whose head was reported last has ended.
    fn end(&mut self, end: MessageEnd);
    /// A message was given up before its head was complete.
    fn abandoned(&mut self, partial: Abandoned);
    /// The body being read filled a window of scanned values (requests, when scanning is
    /// on): it is judged now, before the body ends.
    fn body_part(&mut self, _window: Window) {}
}

#[derive(Debug)]
enum State {
    /// Between messages: skipping empty lines, then probing the message start (probe bytes
    /// in `buf`). With `resync` this is only a candidate start found while resynchronising,
    /// and a mismatch is no error. `after_close`: the previous message asked for the
    /// connection to close, so another message is a protocol error.
    Idle {
        resync: bool,
        after_close: bool,
    },
    /// Skipping to the next line start after lost or unparseable data.
    Scan,
    /// Collecting the head in `buf`.
    Head,
    Body(Body),
    /// After a CONNECT or Upgrade request: what follows may already be another protocol,
    /// so it is held in `buf` until the response decides. `lost` counts bytes that did not
    /// fit or were never captured after those; `ts` is when the first held byte arrived.
    Paused {
        lost: u64,
        ts: u64,
    },
    /// Finished (tunnel, failure, close, or not HTTP): input is ignored.
    Stopped,
}

#[derive(Debug)]
enum Body {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

/// Bookkeeping for the message in progress.
#[derive(Debug, Default)]
struct Message {
    start_ns: u64,
    /// The start line, once complete and valid (it begins the parser's `buf` while the head
    /// is collected), and its length: the rest of the head is parsed after it.
    start: Option<(StartLine, usize)>,
    /// The start line was complete and invalid (reported with the abandoned message).
    start_line_invalid: bool,
    /// The kept prefix of the body: at most `keep` bytes of the captured prefix.
    body: Vec<u8>,
    /// While the kept prefix equals the start of a body this thread kept lately, that body
    /// and how many of its bytes matched: nothing is copied into `body` unless a byte
    /// differs ([`recent_bodies`]).
    shared: Option<(Bytes, usize)>,
    /// The body is length-framed, kept whole and short enough to be shared or remembered.
    shareable: bool,
    /// Bytes of the captured prefix some consumer reads ([`HttpLimits::bodies`]): the rest
    /// of the prefix is accounted for (tap, sizes) but not copied.
    keep: usize,
    body_len: u64,
    /// Body bytes are still contiguous from the start, so capturing may continue.
    capture_gapless: bool,
    truncated: bool,
    close_after: bool,
    pause_after: bool,
    /// Events counted in a `text/event-stream` response body.
    sse: Option<SseCounter>,
    /// Bounded tap on a JSON or streamed JSON response body (boxed, as the scanner: most
    /// messages have neither, and the message is moved out whole at its end).
    tap: Option<Box<StreamTap>>,
    /// Values of a request body, scanned as it arrives.
    scan: Option<Box<BodyScanner>>,
}

impl Message {
    fn capture(&mut self, data: &[u8], limit: usize, ts: u64) {
        // Room left in the captured prefix, kept or not (while gapless, every body byte so
        // far went into it): the tap skips what the prefix holds whatever `keep` is.
        let room = if self.capture_gapless {
            limit.saturating_sub(usize::try_from(self.body_len).unwrap_or(usize::MAX))
        } else {
            0
        };
        self.body_len = self.body_len.saturating_add(data.len() as u64);
        if let Some(sse) = &mut self.sse {
            sse.feed(data, ts);
        }
        if let Some(tap) = &mut self.tap {
            tap.feed(data, room, ts);
        }
        if let Some(scan) = &mut self.scan {
            scan.feed(data);
        }
        let kept = self.body.len() + self.shared.as_ref().map_or(0, |(_, matched)| *matched);
        let take = room.min(self.keep.saturating_sub(kept));
        if take > 0 {
            let data = data.get(..take).unwrap_or(data);
            if !self.share(data) {
                self.body.extend_from_slice(data);
            }
        }
    }

    /// While the body matches the shared candidate, passes over `data` (true). At the first
    /// difference the matched bytes are copied into `body` and the candidate dropped (false:
    /// `data` is still to be kept).
    fn share(&mut self, data: &[u8]) -> bool {
        let Some((candidate, matched)) = &mut self.shared else {
            return false;
        };
        let end = *matched + data.len();
        if candidate.get(*matched..end) == Some(data) {
            *matched = end;
            return true;
        }
        // One allocation of the whole body, as the head would have reserved.
        self.body.reserve_exact(candidate.len());
        self.body
            .extend_from_slice(candidate.get(..*matched).unwrap_or_default());
        self.shared = None;
        false
    }

    fn lose(&mut self, len: u64) {
        self.body_len = self.body_len.saturating_add(len);
        self.truncated = true;
        self.capture_gapless = false;
        if let Some(tap) = &mut self.tap {
            tap.gap();
        }
        if let Some(scan) = &mut self.scan {
            scan.gap();
        }
    }

    /// Ends the message: what its sink is told. The message is left as a new one field by
    /// field (moving it out whole, as `mem::take` did, copied ~200 bytes out and back).
    fn end(&mut self, end_ns: u64) -> MessageEnd {
        let Self {
            start_ns,
            start,
            start_line_invalid,
            body,
            shared,
            shareable,
            keep,
            body_len,
            capture_gapless,
            truncated,
            close_after: _,
            pause_after: _,
            sse,
            tap,
            scan,
        } = self;
        let body = match shared.take() {
            Some((candidate, matched)) => candidate.slice(..matched),
            None => {
                let mut body = mem::take(body);
                // A no-op for bodies reserved by their length; frees the growth of the others.
                body.shrink_to_fit();
                let body = Bytes::from(body);
                // Only a whole body is a candidate: a cut one would match a longer answer.
                if *shareable && !*truncated && body.len() as u64 == *body_len {
                    recent_bodies::remember(&body);
                }
                body
            }
        };
        *shareable = false;
        *start_ns = 0;
        *start = None;
        *start_line_invalid = false;
        *keep = 0;
        *capture_gapless = false;
        // Built last, as the returned value: it is written in the caller's slot (built
        // first and returned after the resets, it was copied there, 20 instructions).
        MessageEnd {
            end_ns,
            body,
            body_len: mem::take(body_len),
            truncated: mem::take(truncated),
            sse: sse.take().as_ref().map(SseCounter::stats),
            tap: tap.take().map(|tap| Box::new(StreamTap::finish(*tap))),
            scan: scan.take().map(|scan| Box::new(BodyScanner::finish(*scan))),
        }
    }

    /// A window of scanned values, once one is full.
    fn full_window(&mut self) -> Option<Window> {
        self.scan.as_mut().and_then(|scan| scan.take_full_window())
    }
}

/// Incremental parser for the messages of one direction.
#[derive(Debug)]
pub struct MessageParser {
    kind: MessageKind,
    limits: HttpLimits,
    state: State,
    /// Probe bytes, the head being collected, or bytes held while paused.
    buf: Vec<u8>,
    lines: LineScan,
    msg: Message,
    recognised: bool,
    /// Joined mid-stream (see [`MessageParser::joined`]) and no valid head seen yet: a
    /// message may start anywhere, and a false start is neither an error nor a message.
    unsynced: bool,
    errors: u64,
    errors_in_row: u32,
    /// Scan request bodies for values as they arrive (see [`MessageParser::scan_bodies`]).
    scan: Option<ScanLimits>,
}

impl MessageParser {
    #[must_use]
    pub fn new(kind: MessageKind, limits: HttpLimits) -> Self {
        Self {
            kind,
            limits,
            state: State::Idle {
                resync: false,
                after_close: false,
            },
            buf: Vec::new(),
            lines: LineScan::default(),
            msg: Message::default(),
            recognised: false,
            unsynced: false,
            errors: 0,
            errors_in_row: 0,
            scan: None,
        }
    }

    /// Request bodies are scanned for values as they arrive ([`crate::detect::stream`]):
    /// full windows go to [`MessageSink::body_part`], the last one with the message's end.
    pub(crate) fn scan_bodies(&mut self, limits: ScanLimits) {
        if self.kind == MessageKind::Request {
            self.scan = Some(limits);
        }
    }

    /// A parser for a stream already under way (a connection established before capture
    /// began): it starts resynchronising, as after a capture gap, and until its first valid
    /// head it looks for a message start at any byte, since the stream may begin inside a
    /// body that does not end with a line break. What it skips is not an error.
    #[must_use]
    pub fn joined(kind: MessageKind, limits: HttpLimits) -> Self {
        Self {
            state: State::Idle {
                resync: true,
                after_close: false,
            },
            unsynced: true,
            ..Self::new(kind, limits)
        }
    }

    /// Parse errors found so far (cumulative).
    #[must_use]
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// True once too many consecutive errors made the parser give up.
    #[must_use]
    pub fn failed(&self) -> bool {
        self.errors_in_row > MAX_ERRORS_IN_ROW
    }

    /// True while a CONNECT/Upgrade request awaits the response that decides the protocol.
    #[must_use]
    pub fn is_paused(&self) -> bool {
        matches!(self.state, State::Paused { .. })
    }

    /// Bytes held: unfinished head (or paused bytes) plus the current body prefix.
    #[must_use]
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
            + self.msg.body.len()
            + self
                .msg
                .scan
                .as_ref()
                .map_or(0, |scan| scan.retained_bytes())
    }

    /// Ignore all further input and release buffers.
    pub fn stop(&mut self) {
        self.state = State::Stopped;
        self.buf = Vec::new();
        self.msg = Message::default();
    }

    /// Parses `data`; returns how much of it was consumed: all of it unless the parser
    /// stopped on the way (after a protocol switch the rest belongs to the new protocol).
    pub(crate) fn feed(&mut self, data: &[u8], ts: u64, sink: &mut impl MessageSink) -> usize {
        let mut rest = data;
        while !rest.is_empty() {
            let used = match self.state {
                State::Stopped => break,
                State::Paused { .. } => self.hold(rest, ts),
                State::Scan => self.scan(rest),
                State::Idle { .. } => self.idle(rest, ts, sink),
                State::Head => self.head(rest, ts, sink),
                State::Body(_) => self.body(rest, ts, sink),
            };
            if self.failed() {
                self.stop();
            }
            rest = rest.get(used..).unwrap_or_default();
        }
        data.len() - rest.len()
    }

    /// Bytes held back after a CONNECT/Upgrade request and how many more were lost: the
    /// start of the new protocol, when the switch happened.
    pub(crate) fn take_held(&mut self) -> (Vec<u8>, u64) {
        match self.state {
            State::Paused { lost, .. } => (mem::take(&mut self.buf), lost),
            _ => (Vec::new(), 0),
        }
    }

    /// `len` bytes of the stream were not captured.
    pub(crate) fn gap(&mut self, len: u64, ts: u64, sink: &mut impl MessageSink) {
        if len == 0 {
            return;
        }
        match &mut self.state {
            State::Stopped => {}
            State::Paused { lost, .. } => *lost = lost.saturating_add(len),
            State::Scan => self.resync_at_line_start(),
            State::Idle { .. } | State::Head => {
                // Lost bytes at a message boundary most likely held (the start of) a
                // message: report one, so that FIFO pairing stays aligned.
                self.abandon(ts, true, sink);
                self.resync_at_line_start();
            }
            State::Body(Body::UntilClose) => self.msg.lose(len),
            State::Body(Body::Length(remaining)) => {
                if len < *remaining {
                    *remaining -= len;
                    self.msg.lose(len);
                } else {
                    // The loss reaches past this body: end it, the rest was in what followed.
                    let rest = len - *remaining;
                    self.msg.lose(*remaining);
                    self.finish(ts, sink);
                    self.gap(rest, ts, sink);
                }
            }
            State::Body(Body::Chunked(decoder)) => {
                if decoder.skip(len) {
                    self.msg.lose(len);
                } else {
                    // Chunk framing is lost. The gap most likely held the rest of this body
                    // (not another message), so just look for the next message after it.
                    self.msg.truncated = true;
                    self.finish(ts, sink);
                    match &mut self.state {
                        State::Paused { lost, .. } => *lost = lost.saturating_add(len),
                        _ => self.resync_at_line_start(),
                    }
                }
            }
        }
    }

    /// The stream ended.
    pub(crate) fn close(&mut self, ts: u64, sink: &mut impl MessageSink) {
        match self.state {
            State::Body(Body::UntilClose) => self.finish(ts, sink),
            State::Body(_) => {
                self.msg.truncated = true;
                self.finish(ts, sink);
            }
            State::Head => {
                if !self.unsynced && self.unfinished_head_is_invalid() {
                    self.error();
                }
                self.abandon(ts, false, sink);
            }
            _ => {}
        }
        self.stop();
    }

    /// The response decided that the paused request's connection keeps speaking HTTP/1.x:
    /// parse what was held back.
    pub(crate) fn resume(&mut self, ts: u64, sink: &mut impl MessageSink) {
        let State::Paused { lost, ts: held_ts } = self.state else {
            return;
        };
        let held = mem::take(&mut self.buf);
        self.state = State::Idle {
            resync: false,
            after_close: false,
        };
        let _ = self.feed(&held, held_ts, sink);
        self.gap(lost, ts, sink);
    }

    fn error(&mut self) {
        self.errors += 1;
        self.errors_in_row = self.errors_in_row.saturating_add(1);
    }

    fn resync_at_line_start(&mut self) {
        self.buf.clear();
        self.state = State::Idle {
            resync: true,
            after_close: false,
        };
    }

    /// Resynchronise after an error at the byte `last`.
    fn resync_after(&mut self, last: u8) {
        if last == LF {
            self.resync_at_line_start();
        } else {
            self.buf.clear();
            self.state = State::Scan;
        }
    }

    fn hold(&mut self, rest: &[u8], ts: u64) -> usize {
        if let State::Paused { lost, ts: held_ts } = &mut self.state {
            if self.buf.is_empty() && *lost == 0 {
                *held_ts = ts;
            }
            let room = if *lost == 0 {
                self.limits.max_header_bytes.saturating_sub(self.buf.len())
            } else {
                // Held bytes must stay contiguous: after a loss, nothing more is kept.
                0
            };
            let kept = rest.get(..room).unwrap_or(rest);
            self.buf.extend_from_slice(kept);
            *lost = lost.saturating_add((rest.len() - kept.len()) as u64);
        }
        rest.len()
    }

    fn scan(&mut self, rest: &[u8]) -> usize {
        if self.unsynced {
            // The next message may follow a body directly: probe every byte that can start one.
            let kind = self.kind;
            let at = rest
                .iter()
                .position(|&b| b == LF || probe(kind, &[b]) != Probe::NoMatch(0));
            return match at {
                Some(i) => {
                    self.resync_at_line_start();
                    if rest.get(i) == Some(&LF) {
                        i + 1
                    } else {
                        i
                    }
                }
                None => rest.len(),
            };
        }
        match rest.iter().position(|&b| b == LF) {
            Some(i) => {
                self.resync_at_line_start();
                i + 1
            }
            None => rest.len(),
        }
    }

    fn idle(&mut self, rest: &[u8], ts: u64, sink: &mut impl MessageSink) -> usize {
        let mut skipped = 0;
        if self.buf.is_empty() {
            // Empty lines before a message are ignored (RFC 9112 §2.2).
            skipped = rest
                .iter()
                .position(|&b| b != CR && b != LF)
                .unwrap_or(rest.len());
            if skipped == rest.len() {
                return skipped;
            }
            if let State::Idle {
                after_close: true, ..
            } = self.state
            {
                // Data after `Connection: close`: report it, then treat it like data found
                // while resynchronising.
                self.error();
                self.state = State::Idle {
                    resync: true,
                    after_close: false,
                };
            }
            self.msg.start_ns = ts;
        }
        let rest = rest.get(skipped..).unwrap_or_default();
        let held = self.buf.len();
        let wanted = PROBE_LEN.saturating_sub(held);
        self.buf
            .extend_from_slice(rest.get(..wanted).unwrap_or(rest));
        // Consume exactly the bytes the decision rests on, whatever the split.
        let used = match probe(self.kind, &self.buf) {
            Probe::NeedMore => self.buf.len(),
            Probe::Match(len) => {
                self.buf.truncate(len);
                self.begin_head(sink);
                if held == 0 {
                    // The probed bytes are the first `len` of `rest`: the start line (and
                    // its field section) may be parsed where they arrived.
                    if let Some(taken) = self.start_in_place(rest, ts, sink) {
                        return skipped + taken;
                    }
                }
                len
            }
            Probe::NoMatch(at) => {
                let last = self.buf.get(at).copied().unwrap_or(0);
                self.bad_start(last, sink);
                // Unsynchronised, the mismatching byte may itself start the message.
                if self.unsynced && at > 0 {
                    at
                } else {
                    at + 1
                }
            }
        };
        skipped + used.saturating_sub(held)
    }

    fn begin_head(&mut self, sink: &mut impl MessageSink) {
        if !mem::replace(&mut self.recognised, true) {
            sink.first_start(true);
        }
        self.lines = LineScan::starting_with(self.buf.len());
        self.state = State::Head;
    }

    /// The bytes at a message start (ending with `last`) cannot start a message.
    fn bad_start(&mut self, last: u8, sink: &mut impl MessageSink) {
        let State::Idle { resync, .. } = self.state else {
            return;
        };
        if !resync {
            if !self.recognised && !sink.first_start(false) {
                self.stop();
                return;
            }
            self.error();
        }
        self.resync_after(last);
    }

    fn head(&mut self, rest: &[u8], ts: u64, sink: &mut impl MessageSink) -> usize {
        let room = self.limits.max_header_bytes.saturating_sub(self.buf.len());
        if room == 0 {
            // Head too large.
            self.head_error(ts, sink);
            self.resync_after(0);
            return 0;
        }
        let window = rest.get(..room).unwrap_or(rest);
        if let Some(used) = self.head_in_place(window, ts, sink) {
            return used;
        }
        let (used, event) = self.lines.advance(window);
        let scanned = window.get(..used).unwrap_or(window);
        self.buf.extend_from_slice(scanned);
        match event {
            None => {}
            Some(LineEvent::BadLineEnding) => {
                self.head_error(ts, sink);
                self.resync_after(scanned.last().copied().unwrap_or(0));
            }
            Some(LineEvent::StartLineEnd) => match head::parse_start_line(self.kind, &self.buf) {
                Ok(start) => self.msg.start = Some((start, self.buf.len())),
                Err(_) => {
                    self.msg.start_line_invalid = true;
                    self.head_error(ts, sink);
                    self.resync_at_line_start();
                }
            },
            Some(LineEvent::HeadEnd) => self.end_head(ts, sink),
        }
        used
    }

    fn head_error(&mut self, ts: u64, sink: &mut impl MessageSink) {
        if !self.unsynced {
            self.error();
        }
        self.abandon(ts, false, sink);
    }

    /// Reports the message in progress (or, between messages, the one presumed to start
    /// at `ts`) as abandoned; `lost`: a capture gap is the cause.
    fn abandon(&mut self, ts: u64, lost: bool, sink: &mut impl MessageSink) {
        if self.unsynced {
            // A false start found mid-stream: nothing to report.
            self.buf.clear();
            self.msg = Message::default();
            return;
        }
        match self.state {
            State::Head | State::Idle { resync: false, .. } => {}
            _ => return,
        }
        if self.buf.is_empty() {
            self.msg.start_ns = ts;
        }
        let method = match (self.kind, &self.state) {
            (MessageKind::Request, State::Head) => self
                .buf
                .split(|&b| b == b' ')
                .next()
                .map(|m| SharedStr::from(&*String::from_utf8_lossy(m))),
            _ => None,
        };
        let msg = mem::take(&mut self.msg);
        let start = msg.start.map(|(start, _)| start);
        sink.abandoned(Abandoned {
            start_ns: msg.start_ns,
            start,
            method,
            head_bytes: self.buf.len(),
            invalid_start_line: msg.start_line_invalid,
            lost,
        });
        self.buf.clear();
    }

    /// The start line parsed where it arrived, when `data` (starting with the probed bytes
    /// held in the head buffer) holds all of it with its CRLF: what [`Self::head`] would do
    /// with the bytes after the probed ones, without the line scan's state machine and,
    /// when the field section is whole there too ([`Self::head_in_place`]), without
    /// copying the start line into the head buffer. Returns the bytes of `data` it took;
    /// `None` (nothing changed) leaves everything to [`Self::head`]: a line cut off, a bare
    /// CR or LF, a line too long, a start line that does not parse.
    fn start_in_place(
        &mut self,
        data: &[u8],
        ts: u64,
        sink: &mut impl MessageSink,
    ) -> Option<usize> {
        if self.failed() {
            // `feed` stops the parser before `head` would see these bytes.
            return None;
        }
        let probed = self.buf.len();
        let max = self.limits.max_header_bytes;
        if let Some((mut head, used)) = recent_heads::find(self.kind, probed, max, data) {
            // As below once the fields parsed: the same bytes make the same head.
            self.lines = LineScan::after_start_line();
            self.head_parsed(&mut head, ts, sink);
            return Some(used);
        }
        // What `head` would scan: the room left after the probed bytes.
        let window = data.get(probed..max.min(data.len()))?;
        let at = head::line_break(window)?;
        if window.get(at..at + 2) != Some(&[CR, LF]) {
            return None;
        }
        let line_len = probed + at + 2;
        let line = data.get(..line_len)?;
        let start = head::parse_start_line(self.kind, line).ok()?;
        // The scan is now past the start line, at the field section.
        self.lines = LineScan::after_start_line();
        let fields = data
            .get(line_len..max.min(data.len()))
            .filter(|section| !section.is_empty())
            .and_then(|section| head::parse_fields_direct(&start, section, max));
        match fields {
            Some(fields) => {
                let used = line_len + fields.len();
                let mut head = fields.into_head(start, line_len);
                if let Some(raw) = data.get(..used) {
                    recent_heads::offer(self.kind, probed, max, raw, &head);
                }
                self.head_parsed(&mut head, ts, sink);
                Some(used)
            }
            None => {
                // As `head` leaves it: the start line in the head buffer, the rest for it.
                self.buf
                    .extend_from_slice(line.get(probed..).unwrap_or_default());
                self.msg.start = Some((start, line_len));
                Some(line_len)
            }
        }
    }

    /// The field section parsed where it arrived, when `window` (the bytes right after a
    /// parsed start line) holds all of it and it is of the plain shape
    /// ([`head::parse_fields_direct`]): no line scan, no copy into the head buffer. Returns
    /// the bytes it took; `None` leaves everything to the line scan.
    fn head_in_place(
        &mut self,
        window: &[u8],
        ts: u64,
        sink: &mut impl MessageSink,
    ) -> Option<usize> {
        let (start, start_len) = self.msg.start.as_ref()?;
        if *start_len != self.buf.len() || !self.lines.at_field_section() {
            return None;
        }
        let fields = head::parse_fields_direct(start, window, self.limits.max_header_bytes)?;
        let (start, start_len) = self.msg.start.take()?;
        let used = fields.len();
        self.head_parsed(&mut fields.into_head(start, start_len), ts, sink);
        Some(used)
    }

    fn end_head(&mut self, ts: u64, sink: &mut impl MessageSink) {
        let max_text = self.limits.max_header_bytes;
        let parsed = match self.msg.start.take() {
            Some((start, len)) => head::parse_head_after(start, len, &self.buf, max_text)
                .map_err(|start| self.msg.start = Some((start, len))),
            None => head::parse_head(self.kind, &self.buf, max_text).map_err(|_| ()),
        };
        let Ok(mut head) = parsed else {
            self.head_error(ts, sink);
            self.resync_at_line_start();
            return;
        };
        self.head_parsed(&mut head, ts, sink);
    }

    /// A valid head ended: hands it to the sink and sets up its body.
    fn head_parsed(&mut self, head: &mut Head, ts: u64, sink: &mut impl MessageSink) {
        self.buf.clear();
        self.errors_in_row = 0;
        self.unsynced = false;
        let facts = BodyFacts::of(head);
        let msg = &mut self.msg;
        msg.close_after = head.close;
        msg.pause_after = self.kind == MessageKind::Request && (facts.is_connect() || head.upgrade);
        msg.capture_gapless = true;
        msg.keep = match &head.start {
            StartLine::Request { method, .. } => self.limits.bodies.request(method),
            StartLine::Response { .. } => self.limits.bodies.responses,
        }
        .min(self.limits.max_body_capture_bytes);
        if self.kind == MessageKind::Response {
            let (event_stream, tap) = response_body_kinds(head);
            msg.sse = event_stream.then(SseCounter::default);
            msg.tap = tap.map(|kind| Box::new(StreamTap::new(kind)));
        }
        let content_type = self
            .scan
            .map(|limits| (head.content_type().map(str::to_owned), limits));
        let over = sink.head(head, msg.start_ns);
        if facts.conflicting() {
            self.error();
        }
        let framing = facts.framing(self.kind, over);
        if let (Some((ct, limits)), Ok(Framing::Length(1..) | Framing::Chunked)) =
            (content_type, framing)
        {
            self.msg.scan = Some(Box::new(BodyScanner::new(ct.as_deref(), limits)));
        }
        match framing {
            Ok(Framing::None) => self.finish(ts, sink),
            Ok(Framing::Tunnel) => {
                self.finish(ts, sink);
                self.stop();
            }
            Ok(Framing::Length(n)) => {
                // The kept prefix is known in advance: one allocation of its size (no
                // growth, nothing to shrink at the end; none for a body nobody reads).
                let capture = usize::try_from(n).map_or(usize::MAX, |n| n);
                let msg = &mut self.msg;
                msg.shareable = recent_bodies::eligible(n) && capture <= msg.keep;
                msg.shared = msg
                    .shareable
                    .then(|| recent_bodies::candidate(capture))
                    .flatten()
                    .map(|candidate| (candidate, 0));
                if msg.shared.is_none() {
                    msg.body.reserve_exact(capture.min(msg.keep));
                }
                self.state = State::Body(Body::Length(n));
            }
            Ok(Framing::Chunked) => {
                let decoder = ChunkedDecoder::new(self.limits.max_header_bytes);
                self.state = State::Body(Body::Chunked(decoder));
            }
            Ok(Framing::UntilClose) => self.state = State::Body(Body::UntilClose),
            Err(_) => {
                // The body cannot be delimited: end the message here, find the next one.
                self.error();
                self.msg.truncated = true;
                self.finish(ts, sink);
                self.resync_at_line_start();
            }
        }
    }

    fn body(&mut self, rest: &[u8], ts: u64, sink: &mut impl MessageSink) -> usize {
        let limit = self.limits.max_body_capture_bytes;
        let State::Body(body) = &mut self.state else {
            return 0;
        };
        match body {
            Body::UntilClose => {
                self.msg.capture(rest, limit, ts);
                rest.len()
            }
            Body::Length(remaining) => {
                let take = usize::try_from(*remaining).map_or(rest.len(), |r| r.min(rest.len()));
                let data = rest.get(..take).unwrap_or(rest);
                *remaining -= data.len() as u64;
                let done = *remaining == 0;
                self.msg.capture(data, limit, ts);
                if let Some(window) = self.msg.full_window() {
                    sink.body_part(window);
                }
                if done {
                    self.finish(ts, sink);
                }
                data.len()
            }
            Body::Chunked(decoder) => {
                let msg = &mut self.msg;
                let (used, result) = decoder.decode(rest, &mut |d| msg.capture(d, limit, ts));
                let done = decoder.is_done();
                if let Some(window) = self.msg.full_window() {
                    sink.body_part(window);
                }
                match result {
                    Ok(()) if done => self.finish(ts, sink),
                    Ok(()) => {}
                    Err(_) => {
                        self.error();
                        self.msg.truncated = true;
                        self.finish(ts, sink);
                        let last = used.checked_sub(1).and_then(|i| rest.get(i)).copied();
                        self.resync_after(last.unwrap_or(0));
                    }
                }
                used
            }
        }
    }

    /// Ends the current message and moves on to the next.
    fn finish(&mut self, ts: u64, sink: &mut impl MessageSink) {
        let end = self.msg.end(ts);
        let pause_after = mem::take(&mut self.msg.pause_after);
        let close_after = mem::take(&mut self.msg.close_after);
        sink.end(end);
        self.state = if pause_after {
            State::Paused { lost: 0, ts }
        } else {
            State::Idle {
                resync: false,
                after_close: close_after,
            }
        };
    }

    /// For a stream that ended inside a head: does what arrived already break the syntax
    /// or the framing rules? Checked by completing the head after its last whole line.
    fn unfinished_head_is_invalid(&self) -> bool {
        if head::partial_is_invalid(self.kind, &self.buf) {
            return true;
        }
        let Some(end) = self.buf.iter().rposition(|&b| b == LF) else {
            return false;
        };
        let mut completed = self.buf.get(..=end).unwrap_or_default().to_vec();
        completed.extend_from_slice(b"\r\n");
        head::parse_head(self.kind, &completed, self.limits.max_header_bytes).map_or(true, |h| {
            BodyFacts::of(&h)
                .framing(self.kind, BodyOverride::None)
                .is_err()
        })
    }
}

/// For a response's fields, in one pass: whether a `Content-Type` is `text/event-stream`
/// (events are counted), and the body tap the first `Content-Type` asks for.
fn response_body_kinds(head: &Head) -> (bool, Option<TapKind>) {
    if !head.content_type_repeated {
        // One `Content-Type` at most, found by the parser: no search of the list. Its media
        // type is matched once: the tap for events is taken for `text/event-stream` alone.
        let tap = head
            .content_type()
            .map(super::media_type)
            .and_then(TapKind::for_media_type);
        debug_assert_eq!(
            tap == Some(TapKind::Events),
            head.content_type()
                .map(super::media_type)
                .is_some_and(is_event_stream_media)
        );
        return (tap == Some(TapKind::Events), tap);
    }
    let mut event_stream = false;
    let mut tap = None;
    let mut first = true;
    for value in head.headers.values("content-type") {
        let media = super::media_type(value);
        event_stream |= is_event_stream_media(media);
        if mem::take(&mut first) {
            tap = TapKind::for_media_type(media);
        }
    }
    (event_stream, tap)
}

#[cfg(test)]
mod joined_tests {
    use super::*;

    /// Records what the parser reports, as comparable text.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl MessageSink for Log {
        fn first_start(&mut self, looks_like_http: bool) -> bool {
            self.0.push(format!("first {looks_like_http}"));
            true
        }
        fn head(&mut self, head: &mut Head, _start_ns: u64) -> BodyOverride {
            self.0.push(format!("head {:?}", head.start));
            BodyOverride::None
        }
        fn end(&mut self, end: MessageEnd) {
            let body = String::from_utf8_lossy(&end.body);
            self.0
                .push(format!("end {body} {} {}", end.body_len, end.truncated));
        }
        fn abandoned(&mut self, partial: Abandoned) {
            self.0.push(format!("abandoned {:?}", partial.start));
        }
    }

    /// Feeds `parts` (a `None` is a gap of 100 bytes) to a joined parser, whole and cut at
    /// every byte; all runs must agree. Returns the log and the error count.
    fn run(kind: MessageKind, parts: &[Option<&[u8]>]) -> (Vec<String>, u64) {
        let feed = |cut: &dyn Fn(&[u8]) -> Vec<Vec<u8>>| {
            let mut parser = MessageParser::joined(kind, HttpLimits::default());
            let mut log = Log::default();
            for part in parts {
                match part {
                    Some(data) => {
                        for piece in cut(data) {
                            parser.feed(&piece, 1, &mut log);
                        }
                    }
                    None => parser.gap(100, 1, &mut log),
                }
            }
            (log.0, parser.errors())
        };
        let whole = feed(&|d| vec![d.to_vec()]);
        assert_eq!(feed(&|d| d.chunks(1).map(<[u8]>::to_vec).collect()), whole);
        for at in 0..parts.iter().flatten().map(|d| d.len()).max().unwrap_or(0) {
            let split = |d: &[u8]| {
                let (a, b) = d.split_at(at.min(d.len()));
                vec![a.to_vec(), b.to_vec()]
            };
            assert_eq!(feed(&split), whole, "cut at {at}");
        }
        whole
    }

    /// Everything the parser reports, heads and abandoned messages in full.
    #[derive(Default)]
    struct FullLog(Vec<String>);

    impl MessageSink for FullLog {
        fn first_start(&mut self, looks_like_http: bool) -> bool {
            self.0.push(format!("first {looks_like_http}"));
            true
        }
        fn head(&mut self, head: &mut Head, start_ns: u64) -> BodyOverride {
            self.0.push(format!("head {start_ns} {head:?}"));
            BodyOverride::None
        }
        fn end(&mut self, end: MessageEnd) {
            let body = String::from_utf8_lossy(&end.body);
            self.0
                .push(format!("end {body} {} {}", end.body_len, end.truncated));
        }
        fn abandoned(&mut self, partial: Abandoned) {
            self.0.push(format!("abandoned {partial:?}"));
        }
    }

    /// A start line parsed where it arrived (`start_in_place`, taken when the bytes come
    /// whole) reports what the line scan does (taken when they come a byte at a time), at
    /// every header limit around the heads' lengths: heads cut off by the limit, start lines
    /// ending right at it, bare CR and LF, invalid start lines and fields.
    #[test]
    fn start_lines_in_place_match_the_line_scan_at_every_limit() {
        let streams: [&[u8]; 5] = [
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nok\
              GET /c HTTP/1.0\r\n\r\n",
            b"GET /a HTTP/1.1\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
            b"GET /a\tb HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\nBad Field\r\n\r\nGET /d HTTP/1.1\r\n\r\n",
            b"GET /a HTTP/1.1\rX\r\n\r\nGET /b HTTP/1.1\r\nHost: \xff\r\n\r\n",
            b"\r\nGET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        ];
        for data in streams {
            for max in 0..=data.len() + 1 {
                let limits = HttpLimits {
                    max_header_bytes: max,
                    ..HttpLimits::default()
                };
                let feed = |pieces: Vec<&[u8]>| {
                    let mut parser = MessageParser::new(MessageKind::Request, limits);
                    let mut log = FullLog::default();
                    for piece in pieces {
                        parser.feed(piece, 1, &mut log);
                    }
                    parser.close(2, &mut log);
                    (log.0, parser.errors())
                };
                let whole = feed(vec![data]);
                assert_eq!(feed(data.chunks(1).collect()), whole, "limit {max}");
            }
        }
    }

    fn response(status: u16) -> String {
        format!("head Response {{ status: {status}, version: 1 }}")
    }

    #[test]
    fn a_response_right_after_the_rest_of_a_body_without_line_break() {
        let (log, errors) = run(
            MessageKind::Response,
            &[
                Some(b"ody bytes HTTP/2 HTT xyz"),
                None,
                Some(b"more body HHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
                Some(b"HTTP/1.1 204 No Content\r\n\r\n"),
            ],
        );
        assert_eq!(
            log,
            [
                "first true".to_string(),
                response(200),
                "end ok 2 false".into(),
                response(204),
                "end  0 false".into(),
            ]
        );
        assert_eq!(errors, 0);
    }

    #[test]
    fn false_request_starts_in_a_body_are_neither_errors_nor_messages() {
        let (log, errors) = run(
            MessageKind::Request,
            &[
                Some(b"x=GET /not a request\r\nPUT"),
                None,
                Some(b"DELETE\r\nPOST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
            ],
        );
        assert_eq!(
            log,
            [
                "first true",
                "head Request { method: \"POST\", target: \"/p\", version: 1 }",
                "end abc 3 false",
            ]
        );
        assert_eq!(errors, 0);
    }

    #[test]
    fn once_synchronised_the_stream_is_parsed_as_usual() {
        // After a valid head, garbage is an error again and is resynchronised at line starts.
        let (log, errors) = run(
            MessageKind::Request,
            &[Some(
                b"GET /a HTTP/1.1\r\n\r\nnot http\r\nGET /b HTTP/1.1\r\n\r\n",
            )],
        );
        assert_eq!(log.iter().filter(|l| l.starts_with("head")).count(), 2);
        assert_eq!(errors, 1);
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// A message's end is passed by value to its sink: small enough to go in registers
    /// and a few stores rather than a `memcpy` call (the tap and the window are boxed).
    #[test]
    fn a_message_end_is_small() {
        let sizes = (size_of::<MessageEnd>(), size_of::<Message>());
        eprintln!("MessageEnd {} bytes, Message {} bytes", sizes.0, sizes.1);
        assert!(sizes.0 <= 128, "{sizes:?}");
    }
}

#[cfg(test)]
mod interest_tests {
    use super::*;
    use crate::detect::inputs::InputLimits;
    use crate::http::BodyInterest;

    /// What the parser reports of each message's end: the kept body apart, so that runs
    /// keeping different prefixes can be compared on everything else.
    #[derive(Default)]
    struct Ends {
        bodies: Vec<Vec<u8>>,
        rest: Vec<String>,
    }

    impl MessageSink for Ends {
        fn first_start(&mut self, _: bool) -> bool {
            true
        }
        fn head(&mut self, _: &mut Head, _: u64) -> BodyOverride {
            BodyOverride::None
        }
        fn end(&mut self, end: MessageEnd) {
            self.bodies.push(end.body.to_vec());
            self.rest.push(format!(
                "{} {} {:?} {:?} {:?}",
                end.body_len, end.truncated, end.sse, end.tap, end.scan
            ));
        }
        fn abandoned(&mut self, partial: Abandoned) {
            self.rest.push(format!("abandoned {:?}", partial.start));
        }
        fn body_part(&mut self, window: Window) {
            self.rest.push(format!("part {window:?}"));
        }
    }

    /// Feeds `parts` (`None`: a gap of 5 bytes) byte by byte and whole, with `capture`
    /// bytes captured and `bodies` kept; both runs must agree.
    fn run(
        kind: MessageKind,
        parts: &[Option<&[u8]>],
        capture: usize,
        bodies: BodyInterest,
    ) -> Ends {
        let feed = |bytewise: bool| {
            let limits = HttpLimits {
                max_body_capture_bytes: capture,
                bodies,
                ..HttpLimits::default()
            };
            let mut parser = MessageParser::new(kind, limits);
            parser.scan_bodies(ScanLimits::of(&InputLimits::default()));
            let mut ends = Ends::default();
            for part in parts {
                match part {
                    Some(data) if bytewise => {
                        for b in data.chunks(1) {
                            parser.feed(b, 7, &mut ends);
                        }
                    }
                    Some(data) => {
                        parser.feed(data, 7, &mut ends);
                    }
                    None => parser.gap(5, 7, &mut ends),
                }
            }
            parser.close(9, &mut ends);
            ends
        };
        let whole = feed(false);
        let bytewise = feed(true);
        assert_eq!(bytewise.bodies, whole.bodies);
        assert_eq!(bytewise.rest, whole.rest);
        whole
    }

    const REQUESTS: &[Option<&[u8]>] = &[
        Some(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 23\r\n\r\n{\"model\":\"m\",\"n\":12345}"),
        Some(b"PUT /a HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n6\r\na=1&b=\r\n4\r\n2345\r\n0\r\n\r\n"),
        Some(b"GET /b HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234"),
        None,
        Some(b"\r\nPOST /c HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"),
    ];

    const RESPONSES: &[Option<&[u8]>] = &[
        Some(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n{\"usage\":{\"total_tokens\":42}}\n"),
        Some(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"),
        Some(b"1c\r\ndata: {\"a\":1}\n\ndata: [DONE]\n\r\n0\r\n\r\n"),
        Some(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 12\r\n\r\n<p>hello</p>"),
        Some(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"),
        Some(b"HTTP/1.1 200 OK\r\nContent-Type: application/ndjson\r\n\r\n{\"a\":1}\n{\"b\""),
        None,
        Some(b"2}\n"),
    ];

    /// The first `keep` bytes of each body `all` kept.
    fn prefixes(all: &Ends, keep: &dyn Fn(usize) -> usize) -> Vec<Vec<u8>> {
        all.bodies
            .iter()
            .enumerate()
            .map(|(i, b)| b.get(..keep(i)).unwrap_or(b).to_vec())
            .collect()
    }

    #[test]
    fn bodies_kept_as_far_as_read_everything_else_identical() {
        for (kind, parts, messages) in [
            (MessageKind::Request, REQUESTS, 4),
            (MessageKind::Response, RESPONSES, 5),
        ] {
            for capture in [0, 4, 16, 64 << 10] {
                let all = run(kind, parts, capture, BodyInterest::ALL);
                assert_eq!(all.bodies.len(), messages);
                for keep in [0, 1, 3, 8, 100] {
                    let only = BodyInterest {
                        requests: keep,
                        post_requests: keep,
                        responses: keep,
                    };
                    let got = run(kind, parts, capture, only);
                    assert_eq!(got.rest, all.rest, "{kind:?} capture {capture} keep {keep}");
                    assert_eq!(got.bodies, prefixes(&all, &|_| keep));
                }
            }
        }
    }

    #[test]
    fn request_bodies_of_posts_kept_apart() {
        let all = run(MessageKind::Request, REQUESTS, 64 << 10, BodyInterest::ALL);
        assert_eq!(all.bodies[0], br#"{"model":"m","n":12345}"#.to_vec());
        let posts = BodyInterest {
            requests: 0,
            post_requests: usize::MAX,
            responses: 0,
        };
        let got = run(MessageKind::Request, REQUESTS, 64 << 10, posts);
        assert_eq!(got.rest, all.rest);
        // POST, PUT, GET (cut by the gap), POST.
        let post = [true, false, false, true];
        assert_eq!(
            got.bodies,
            prefixes(&all, &|i| if post[i] { usize::MAX } else { 0 })
        );
    }

    #[test]
    fn responses_gated_apart_from_requests() {
        let read = BodyInterest {
            responses: 0,
            ..BodyInterest::ALL
        };
        let all = run(MessageKind::Request, REQUESTS, 64 << 10, BodyInterest::ALL);
        assert_eq!(
            run(MessageKind::Request, REQUESTS, 64 << 10, read).bodies,
            all.bodies
        );
        let got = run(MessageKind::Response, RESPONSES, 64 << 10, read);
        assert!(got.bodies.iter().all(Vec::is_empty));
        let unread = BodyInterest {
            responses: usize::MAX,
            ..BodyInterest::NONE
        };
        let got = run(MessageKind::Request, REQUESTS, 64 << 10, unread);
        assert!(got.bodies.iter().all(Vec::is_empty));
    }
}

#[cfg(test)]
mod sharing_tests {
    use super::*;
    use crate::http::BodyInterest;

    /// Each message's kept body and whether it was cut.
    #[derive(Default)]
    struct Bodies(Vec<(Bytes, bool)>);

    impl MessageSink for Bodies {
        fn first_start(&mut self, _: bool) -> bool {
            true
        }
        fn head(&mut self, _: &mut Head, _: u64) -> BodyOverride {
            BodyOverride::None
        }
        fn end(&mut self, end: MessageEnd) {
            self.0.push((end.body, end.truncated));
        }
        fn abandoned(&mut self, _: Abandoned) {}
    }

    fn response(body: &[u8]) -> Vec<u8> {
        let mut r =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        r.extend_from_slice(body);
        r
    }

    /// Parses `parts` (`None`: a gap of 5 bytes) on one connection, `step` bytes at a time.
    fn parse(parts: &[Option<&[u8]>], step: usize, keep: usize) -> Vec<(Bytes, bool)> {
        let limits = HttpLimits {
            bodies: BodyInterest {
                responses: keep,
                ..BodyInterest::ALL
            },
            ..HttpLimits::default()
        };
        let mut parser = MessageParser::new(MessageKind::Response, limits);
        let mut sink = Bodies::default();
        for part in parts {
            match part {
                Some(data) => {
                    for chunk in data.chunks(step) {
                        parser.feed(chunk, 1, &mut sink);
                    }
                }
                None => parser.gap(5, 1, &mut sink),
            }
        }
        sink.0
    }

    #[test]
    fn a_repeated_body_is_shared_not_copied() {
        let page: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let r = response(&page);
        for step in [1, 7, r.len()] {
            let got = parse(&[Some(&r), Some(&r), Some(&r)], step, usize::MAX);
            assert_eq!(got.len(), 3);
            for (body, cut) in &got {
                assert_eq!(**body, page[..]);
                assert!(!cut);
            }
            assert_eq!(got[1].0.as_ptr(), got[0].0.as_ptr(), "step {step}");
            assert_eq!(got[2].0.as_ptr(), got[0].0.as_ptr(), "step {step}");
        }
        // Another connection parsed by this thread shares it too.
        let again = parse(&[Some(&r)], 64, usize::MAX);
        assert_eq!(*again[0].0, page[..]);
    }

    #[test]
    fn a_body_that_differs_late_is_copied_whole_and_then_shared() {
        let first = vec![b'a'; 900];
        let mut second = first.clone();
        second[899] = b'b';
        let (r1, r2) = (response(&first), response(&second));
        for step in [1, 100, r2.len()] {
            let got = parse(&[Some(&r1), Some(&r2), Some(&r2)], step, usize::MAX);
            assert_eq!(*got[0].0, first[..]);
            assert_eq!(*got[1].0, second[..], "step {step}");
            assert_ne!(got[1].0.as_ptr(), got[0].0.as_ptr());
            // The copied body is the candidate for its length now.
            assert_eq!(got[2].0.as_ptr(), got[1].0.as_ptr());
        }
    }

    #[test]
    fn a_cut_body_keeps_its_matched_prefix_and_is_not_remembered() {
        let page = vec![b'x'; 700];
        let whole = response(&page);
        let head_len = whole.len() - page.len();
        // The second response loses 5 bytes after 200 of its body.
        let (before, after) = whole.split_at(head_len + 200);
        let after = after.get(5..).unwrap_or_default();
        let got = parse(
            &[Some(&whole), Some(before), None, Some(after)],
            13,
            usize::MAX,
        );
        assert_eq!(got.len(), 2);
        assert_eq!(*got[1].0, page[..200]);
        assert!(got[1].1, "cut");
        // The whole body stays the candidate: a third answer shares the first.
        let parts = [
            Some(&whole[..]),
            Some(before),
            None,
            Some(after),
            Some(&whole),
        ];
        let got = parse(&parts, 64, usize::MAX);
        assert_eq!(got[2].0.as_ptr(), got[0].0.as_ptr());
    }

    #[test]
    fn bodies_kept_in_part_or_too_long_are_not_shared() {
        let page = vec![b'y'; 300];
        let r = response(&page);
        let got = parse(&[Some(&r), Some(&r)], 50, 100);
        assert_eq!(*got[1].0, page[..100]);
        assert_ne!(got[1].0.as_ptr(), got[0].0.as_ptr());
        let long = vec![b'z'; recent_bodies::MAX_SHARED_BODY + 1];
        let r = response(&long);
        let got = parse(&[Some(&r), Some(&r)], 4096, usize::MAX);
        assert_eq!(*got[1].0, long[..]);
        assert_ne!(got[1].0.as_ptr(), got[0].0.as_ptr());
    }
}

#[cfg(test)]
mod recent_head_tests {
    use super::*;

    /// Every head and end a parser reports, as text.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl MessageSink for Log {
        fn first_start(&mut self, _: bool) -> bool {
            true
        }
        fn head(&mut self, head: &mut Head, ts: u64) -> BodyOverride {
            self.0.push(format!("{ts} {head:?}"));
            BodyOverride::None
        }
        fn end(&mut self, end: MessageEnd) {
            self.0
                .push(format!("{} {:?} {}", end.body_len, end.body, end.truncated));
        }
        fn abandoned(&mut self, partial: Abandoned) {
            self.0.push(format!("abandoned {:?}", partial.start));
        }
    }

    fn parse(kind: MessageKind, data: &[u8], max_header_bytes: usize) -> Vec<String> {
        let limits = HttpLimits {
            max_header_bytes,
            ..HttpLimits::default()
        };
        let mut parser = MessageParser::new(kind, limits);
        let mut log = Log::default();
        parser.feed(data, 3, &mut log);
        log.0
    }

    #[test]
    fn a_repeated_head_is_taken_from_the_kept_parse_alike() {
        let requests: &[u8] = b"GET /a HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n\
            GET /b?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\n\
            POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\
            GET /a HTTP/1.0\r\nHost: h\r\n\r\n";
        let first = parse(MessageKind::Request, requests, 65_536);
        assert_eq!(recent_heads::hits(), 0, "four different heads");
        let again = parse(MessageKind::Request, requests, 65_536);
        assert_eq!(again, first);
        assert_eq!(recent_heads::hits(), 4);
        // Another header limit cuts the kept fields elsewhere: not the kept parse.
        let cut = parse(MessageKind::Request, requests, 30);
        assert_eq!(recent_heads::hits(), 4);
        assert_ne!(cut, first);
        let responses: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\
            HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        let first = parse(MessageKind::Response, responses, 65_536);
        assert_eq!(parse(MessageKind::Response, responses, 65_536), first);
        // Both answers share one slot (the first 16 bytes pick it): the second waits for
        // the first's misses before it may take it.
        assert_eq!(recent_heads::hits(), 5);
        // A head that differs after the kept bytes' start, or ends later, is parsed anew.
        let longer: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: y\r\n\r\nok";
        let got = parse(MessageKind::Response, longer, 65_536);
        assert_eq!(recent_heads::hits(), 5);
        assert!(got[0].contains("\"X\", \"y\""), "{got:?}");
    }
}
