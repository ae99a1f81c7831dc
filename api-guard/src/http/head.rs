//! Parsing a complete message head (start line + header fields) with `httparse`, and
//! extracting the header facts that decide framing and connection reuse.

use std::mem::{self, MaybeUninit};

use super::headers::{self, FieldSpan, HeadersBuilder};
use super::message::MessageKind;
use super::{Headers, SharedStr};
use super::{CR, LF};

/// The start line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StartLine {
    Request {
        method: SharedStr,
        target: SharedStr,
        version: u8,
    },
    Response {
        status: u16,
        version: u8,
    },
}

/// `Content-Length` as found in all of a head's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentLength {
    Absent,
    Valid(u64),
    /// Not a decimal number, overflowing, empty, or several differing values.
    Invalid,
}

/// `Transfer-Encoding` as found in all of a head's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransferEncoding {
    Absent,
    /// `chunked` is the final coding, applied once.
    Chunked,
    /// Present, but `chunked` is not (only) the final coding.
    Other,
}

/// A parsed head.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub start: StartLine,
    /// Header fields in order, lossy UTF-8, cut off once their text plus the start line's
    /// exceeds the header limit.
    pub headers: Headers,
    /// The first `Host` field among those kept.
    pub host: Option<SharedStr>,
    /// The `Content-Type` fields among those kept: the first one's index, and whether
    /// there are more (found while parsing, so that readers need not search the list).
    pub content_type: Option<usize>,
    pub content_type_repeated: bool,
    /// Wire length of the head, including the empty line ending it.
    pub wire_len: usize,
    pub content_length: ContentLength,
    pub transfer_encoding: TransferEncoding,
    /// The sender wants the connection closed after this message.
    pub close: bool,
    /// An `Upgrade` field is present.
    pub upgrade: bool,
}

impl Head {
    /// The first kept `Content-Type` value.
    pub(crate) fn content_type(&self) -> Option<&str> {
        let (_, value) = self.headers.get_index(self.content_type?)?;
        Some(value)
    }

    /// The start line, taken out (a sink keeping it): an empty status line is left.
    pub(crate) fn take_start(&mut self) -> StartLine {
        mem::replace(
            &mut self.start,
            StartLine::Response {
                status: 0,
                version: 0,
            },
        )
    }

    pub(crate) fn version(&self) -> u8 {
        match self.start {
            StartLine::Request { version, .. } | StartLine::Response { version, .. } => version,
        }
    }
}

/// Tracks CRLF line structure while a head is collected. Bare CR or LF is rejected, as
/// strict llhttp does: lenient line endings are a request-smuggling vector.
#[derive(Debug, Default)]
pub(crate) struct LineScan {
    prev_cr: bool,
    line_len: usize,
    start_line_done: bool,
}

/// What ends a scan: field lines end inside it (nothing is done at their end, so the
/// scan goes on through them rather than stopping at each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineEvent {
    BadLineEnding,
    StartLineEnd,
    HeadEnd,
}

impl LineScan {
    pub(crate) fn starting_with(line_len: usize) -> Self {
        Self {
            line_len,
            ..Self::default()
        }
    }

    /// The scan right after a start line's CRLF, at the field section.
    pub(crate) fn after_start_line() -> Self {
        Self {
            start_line_done: true,
            ..Self::default()
        }
    }

    /// At the start of a line after the start line: of the field section, right after the
    /// start line, if nothing was scanned since.
    pub(crate) fn at_field_section(&self) -> bool {
        self.start_line_done && self.line_len == 0 && !self.prev_cr
    }

    /// Scans `data` up to and including the next line event (past any field line ends).
    /// Returns the bytes consumed and the event, or `None` when `data` ran out first.
    pub(crate) fn advance(&mut self, data: &[u8]) -> (usize, Option<LineEvent>) {
        let mut pos = 0;
        while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
            if !self.prev_cr {
                // Fast path over the ordinary bytes of a line.
                let run = line_break(rest).unwrap_or(rest.len());
                self.line_len += run;
                pos += run;
                // And over its CRLF, as `push` takes the two bytes one by one.
                if data.get(pos..pos + 2) == Some(&[CR, LF]) {
                    pos += 2;
                    if let Some(event) = self.line_ended() {
                        return (pos, Some(event));
                    }
                    continue;
                }
            }
            let Some(&b) = data.get(pos) else {
                break;
            };
            pos += 1;
            if let Some(event) = self.push(b) {
                return (pos, Some(event));
            }
        }
        (pos, None)
    }

    /// One CR or LF, or the byte after a CR.
    fn push(&mut self, b: u8) -> Option<LineEvent> {
        if mem::take(&mut self.prev_cr) {
            if b != LF {
                return Some(LineEvent::BadLineEnding);
            }
            return self.line_ended();
        }
        match b {
            CR => self.prev_cr = true,
            LF => return Some(LineEvent::BadLineEnding),
            _ => self.line_len += 1,
        }
        None
    }

    /// A CRLF ended the current line.
    fn line_ended(&mut self) -> Option<LineEvent> {
        let empty = mem::take(&mut self.line_len) == 0;
        if !mem::replace(&mut self.start_line_done, true) {
            Some(LineEvent::StartLineEnd)
        } else if empty {
            Some(LineEvent::HeadEnd)
        } else {
            // A field line ended: scan on.
            None
        }
    }
}

/// The first CR or LF in `bytes`, eight bytes at a time: `memchr2(CR, LF, bytes)` without a
/// call, for lines mostly shorter than the vector search's set-up pays for.
#[inline]
pub(crate) fn line_break(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut words = bytes.chunks_exact(8);
    let mut pos = 0;
    for word in words.by_ref() {
        let mut le = [0; 8];
        le.copy_from_slice(word);
        let x = u64::from_le_bytes(le);
        let (cr, lf) = (x ^ (ONES * u64::from(CR)), x ^ (ONES * u64::from(LF)));
        // A zero byte in either: the lowest one flagged is exact.
        let found = ((cr.wrapping_sub(ONES) & !cr) | (lf.wrapping_sub(ONES) & !lf)) & HIGH;
        if found != 0 {
            return Some(pos + (found.trailing_zeros() / 8) as usize);
        }
        pos += 8;
    }
    let tail = words.remainder();
    tail.iter()
        .position(|&b| b == CR || b == LF)
        .map(|at| pos + at)
}

/// A head `httparse` rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyntaxError;

/// Validates a complete start line (`line` ends with its CRLF) and returns it.
pub(crate) fn parse_start_line(kind: MessageKind, line: &[u8]) -> Result<StartLine, SyntaxError> {
    let common = match kind {
        MessageKind::Request => common_request_line(line),
        MessageKind::Response => common_status_line(line),
    };
    match common {
        Some(start) => Ok(start),
        None => parse_start_line_httparse(kind, line),
    }
}

/// A request line of the common shape, `METHOD SP target SP HTTP/1.x CRLF` with an
/// upper-case method and a visible-ASCII target, which `httparse` accepts as the same
/// request line. `None` for anything else, left to `httparse`.
fn common_request_line(line: &[u8]) -> Option<StartLine> {
    let line = line.strip_suffix(b"\r\n")?;
    let method_len = line.iter().position(|&b| !b.is_ascii_uppercase())?;
    let (method, rest) = line.split_at_checked(method_len)?;
    let [b' ', rest @ ..] = rest else {
        return None;
    };
    let (target, rest) = rest.split_at_checked(visible_end(rest))?;
    let [b' ', version @ ..] = rest else {
        return None;
    };
    if method.is_empty() || target.is_empty() {
        return None;
    }
    Some(StartLine::Request {
        method: ascii_text(method),
        target: ascii_text(target),
        version: http1_version(version)?,
    })
}

/// Where the visible ASCII (0x21..=0x7e) at the start of `bytes` ends: the first other
/// byte, or `bytes.len()`. Eight bytes at a time (a request target is tens of bytes), then
/// byte by byte.
#[inline]
fn visible_end(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    let mut pos = 0;
    while let Some(chunk) = bytes.get(pos..).and_then(<[u8]>::first_chunk::<8>) {
        let x = u64::from_le_bytes(*chunk);
        // The lowest flagged byte is exact (a borrow or a carry only spreads upwards, and
        // only out of a flagged byte): below 0x21, or 0x7f and above.
        let stop = ((x.wrapping_sub(ONES * 0x21) & !x) | x.wrapping_add(ONES) | x) & HIGH;
        if stop != 0 {
            return pos + (stop.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while bytes.get(pos).is_some_and(|b| (0x21..=0x7e).contains(b)) {
        pos += 1;
    }
    pos
}

/// Bytes checked ASCII (upper-case letters, visible characters) as text, without a second
/// UTF-8 check.
fn ascii_text(bytes: &[u8]) -> SharedStr {
    debug_assert!(bytes.is_ascii());
    // SAFETY: callers pass only bytes they checked are ASCII, which is UTF-8.
    SharedStr::from(unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// A status line of the common shape, `HTTP/1.x SP 3DIGIT [SP reason] CRLF` with a reason
/// of HTAB and visible ASCII or SP, which `httparse` accepts as the same status line.
/// `None` for anything else, left to `httparse`.
fn common_status_line(line: &[u8]) -> Option<StartLine> {
    let line = line.strip_suffix(b"\r\n")?;
    let (version, rest) = line.split_at_checked(8)?;
    let [b' ', d0 @ b'0'..=b'9', d1 @ b'0'..=b'9', d2 @ b'0'..=b'9', reason @ ..] = rest else {
        return None;
    };
    let reason_ok = match reason {
        [] => true,
        [b' ', text @ ..] => text
            .iter()
            .all(|&b| b == b'\t' || (0x20..=0x7e).contains(&b)),
        _ => false,
    };
    if !reason_ok {
        return None;
    }
    let digit = |d: u8| u16::from(d - b'0');
    Some(StartLine::Response {
        status: digit(*d0) * 100 + digit(*d1) * 10 + digit(*d2),
        version: http1_version(version)?,
    })
}

fn http1_version(version: &[u8]) -> Option<u8> {
    match version {
        b"HTTP/1.1" => Some(1),
        b"HTTP/1.0" => Some(0),
        _ => None,
    }
}

/// [`parse_start_line`] by `httparse`: for start lines of any other shape, and the
/// reference the common shapes are tested against.
pub(super) fn parse_start_line_httparse(
    kind: MessageKind,
    line: &[u8],
) -> Result<StartLine, SyntaxError> {
    // With no room for header fields, a valid start line parses as `Partial` (or
    // `Complete` if it were followed by the empty line).
    let mut no_headers = [];
    match kind {
        MessageKind::Request => {
            let mut req = httparse::Request::new(&mut no_headers);
            req.parse(line).map_err(|_| SyntaxError)?;
            request_line(&req).ok_or(SyntaxError)
        }
        MessageKind::Response => {
            let mut resp = httparse::Response::new(&mut no_headers);
            resp.parse(line).map_err(|_| SyntaxError)?;
            response_line(&resp).ok_or(SyntaxError)
        }
    }
}

/// True if `partial` (an unfinished head) already contains a syntax error.
pub(crate) fn partial_is_invalid(kind: MessageKind, partial: &[u8]) -> bool {
    let mut headers = vec![httparse::EMPTY_HEADER; line_count(partial)];
    match kind {
        MessageKind::Request => httparse::Request::new(&mut headers).parse(partial).is_err(),
        MessageKind::Response => httparse::Response::new(&mut headers)
            .parse(partial)
            .is_err(),
    }
}

/// Parses a complete head (`buf` ends with the empty line). `max_text` bounds the header
/// text kept in [`Head::headers`].
pub(crate) fn parse_head(
    kind: MessageKind,
    buf: &[u8],
    max_text: usize,
) -> Result<Head, SyntaxError> {
    // Most heads fit the slots on the stack; the rest get one slot per line (every field
    // takes a line, so that never runs out).
    let mut stack = [httparse::EMPTY_HEADER; STACK_SLOTS];
    match parse_head_with(kind, buf, max_text, &mut stack) {
        Err(ParseError::TooManyHeaders) => {
            let mut slots = vec![httparse::EMPTY_HEADER; line_count(buf)];
            parse_head_with(kind, buf, max_text, &mut slots).map_err(|_| SyntaxError)
        }
        result => result.map_err(|_| SyntaxError),
    }
}

/// Header slots tried on the stack before counting lines for a heap array.
const STACK_SLOTS: usize = 48;

enum ParseError {
    TooManyHeaders,
    Syntax,
}

fn parse_head_with<'b>(
    kind: MessageKind,
    buf: &'b [u8],
    max_text: usize,
    slots: &mut [httparse::Header<'b>],
) -> Result<Head, ParseError> {
    let parse_error = |e: httparse::Error| match e {
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders,
        _ => ParseError::Syntax,
    };
    let (start, wire_len, fields) = match kind {
        MessageKind::Request => {
            let mut req = httparse::Request::new(slots);
            let httparse::Status::Complete(len) = req.parse(buf).map_err(parse_error)? else {
                return Err(ParseError::Syntax);
            };
            (
                request_line(&req).ok_or(ParseError::Syntax)?,
                len,
                &*req.headers,
            )
        }
        MessageKind::Response => {
            let mut resp = httparse::Response::new(slots);
            let httparse::Status::Complete(len) = resp.parse(buf).map_err(parse_error)? else {
                return Err(ParseError::Syntax);
            };
            (
                response_line(&resp).ok_or(ParseError::Syntax)?,
                len,
                &*resp.headers,
            )
        }
    };
    Ok(build_head(start, wire_len, fields, buf, max_text))
}

/// Parses the fields of a complete head (`buf` ends with the empty line) whose start line,
/// its first `start_len` bytes, was parsed already as `start` ([`parse_start_line`]): what
/// [`parse_head`] returns, without parsing the start line a second time. On a syntax error
/// the start line is handed back.
///
/// One pass over the fields with the grammar `httparse` applies after a start line (its
/// default configuration: token names, `:` right after the name, optional whitespace, then
/// HTAB, visible ASCII and bytes from 0x80 up to CRLF or LF, trailing whitespace dropped;
/// obs-fold and any other byte rejected). A head whose kept text is not UTF-8 is parsed
/// again by `httparse` and [`build_head`], which decode values lossily, field by field.
pub(crate) fn parse_head_after(
    start: StartLine,
    start_len: usize,
    buf: &[u8],
    max_text: usize,
) -> Result<Head, StartLine> {
    let Some(section) = buf.get(start_len..) else {
        return Err(start);
    };
    match scan_section::<false>(&start, section, max_text) {
        Scanned::Fields(fields) => Ok(fields.into_head(start, start_len)),
        Scanned::Invalid => Err(start),
        Scanned::Unfit => parse_head_after_httparse(start, start_len, buf, max_text),
    }
}

/// The field section at the start of `data` (bytes received right after a start line
/// `start`), if `data` holds all of it with CRLF line ends only and it parses as
/// [`parse_head_after`] would parse it: the head is then parsed where it arrived, without
/// the line scan and the copy into the head buffer. `None` for anything else (a section
/// cut off, a bare CR or LF, a syntax error, text that is not UTF-8), left to that path.
pub(crate) fn parse_fields_direct(
    start: &StartLine,
    data: &[u8],
    max_text: usize,
) -> Option<ParsedFields> {
    match scan_section::<true>(start, data, max_text) {
        Scanned::Fields(fields) => Some(fields),
        Scanned::Invalid | Scanned::Unfit => None,
    }
}

/// A field section parsed: the [`Head`] once its start line is added.
pub(crate) struct ParsedFields {
    headers: Headers,
    scan: FieldScan,
    /// Wire length of the section, its empty line included.
    len: usize,
}

impl ParsedFields {
    /// Wire length of the section, its empty line included.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The head of these fields after `start`, a start line of `start_len` bytes.
    pub(crate) fn into_head(self, start: StartLine, start_len: usize) -> Head {
        // The scan's facts are read in place (destructuring `self` copied the scan out
        // first); HTTP/1.0 connections persist only when asked to (RFC 9112 §9.3).
        let scan = &self.scan;
        let version = match start {
            StartLine::Request { version, .. } | StartLine::Response { version, .. } => version,
        };
        Head {
            host: scan
                .host
                .and_then(|i| self.headers.get_index(i))
                .map(|(_, value)| SharedStr::from(value)),
            content_type: scan.content_type,
            content_type_repeated: scan.content_type_repeated,
            wire_len: start_len + self.len,
            content_length: scan.content_length,
            transfer_encoding: scan.te.result(),
            close: scan.close || (version == 0 && !scan.keep_alive),
            upgrade: scan.upgrade,
            start,
            headers: self.headers,
        }
    }
}

enum Scanned {
    Fields(ParsedFields),
    /// A syntax error, or the section ends first.
    Invalid,
    /// Kept text that is not UTF-8, or too long for a block: for `httparse`.
    Unfit,
}

/// [`FieldScan::run`] over `section` (`STRICT`: CRLF line ends only), then the kept fields
/// copied into their list's block, sized exactly.
fn scan_section<const STRICT: bool>(start: &StartLine, section: &[u8], max_text: usize) -> Scanned {
    if u32::try_from(section.len()).is_err() {
        return Scanned::Unfit;
    }
    let mut scan = FieldScan::new(start);
    let mut spans = Spans::new();
    let Some(len) = scan.run::<STRICT>(section, max_text, &mut spans) else {
        return Scanned::Invalid;
    };
    let ascii = scan.seen & HIGH == 0;
    match headers::from_spans(section, spans.as_slice(), scan.kept_text, ascii) {
        Some(headers) => Scanned::Fields(ParsedFields { headers, scan, len }),
        None => Scanned::Unfit,
    }
}

/// The kept fields' spans: on the stack for the usual heads, on the heap past that. The
/// inline slots are left uninitialised until pushed (a head keeps a few fields; zeroing
/// all 512 bytes per head cost a `memset` call).
struct Spans {
    /// `inline[..len]` are initialised.
    inline: [MaybeUninit<FieldSpan>; INLINE_SPANS],
    len: usize,
    /// Every span once more came than `inline` holds.
    heap: Vec<FieldSpan>,
}

const INLINE_SPANS: usize = 32;

impl Spans {
    fn new() -> Self {
        Self {
            inline: [const { MaybeUninit::uninit() }; INLINE_SPANS],
            len: 0,
            heap: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        if self.heap.is_empty() {
            self.len
        } else {
            self.heap.len()
        }
    }

    #[inline]
    fn push(&mut self, span: FieldSpan) {
        if let Some(slot) = self.inline.get_mut(self.len) {
            slot.write(span);
            self.len += 1;
            return;
        }
        self.spill(span);
    }

    /// [`Spans::push`] once `inline` is full: every span goes to the heap.
    #[cold]
    #[inline(never)]
    fn spill(&mut self, span: FieldSpan) {
        if self.heap.is_empty() {
            let inline = initialised(&self.inline, self.len);
            self.heap.reserve(inline.len() * 2);
            self.heap.extend_from_slice(inline);
        }
        self.heap.push(span);
    }

    fn as_slice(&self) -> &[FieldSpan] {
        if self.heap.is_empty() {
            initialised(&self.inline, self.len)
        } else {
            &self.heap
        }
    }
}

/// The spans a [`Spans`] pushed into `inline`, its first `len`.
fn initialised(inline: &[MaybeUninit<FieldSpan>; INLINE_SPANS], len: usize) -> &[FieldSpan] {
    let inline = inline.get(..len).unwrap_or_default();
    // SAFETY: `Spans::push` wrote `inline[..len]` (its `len` only grows there, after the
    // write); `MaybeUninit<FieldSpan>` has `FieldSpan`'s layout.
    unsafe { std::slice::from_raw_parts(inline.as_ptr().cast::<FieldSpan>(), inline.len()) }
}

/// The field section after a start line, parsed in one pass: what [`build_head`] collects
/// from `httparse`'s fields, the kept fields' spans noted as found.
struct FieldScan {
    /// Text counted against the limit: the request line's method and target, then every
    /// field's name and value (kept or not, as in [`build_head`]).
    text: usize,
    /// Names and values of the kept fields.
    kept_text: usize,
    /// Index of the first `Host` field among those kept.
    host: Option<usize>,
    /// Index of the first `Content-Type` field among those kept, and whether more follow.
    content_type: Option<usize>,
    content_type_repeated: bool,
    content_length: ContentLength,
    te: TeScan,
    close: bool,
    keep_alive: bool,
    upgrade: bool,
    /// The value bytes looked at, ORed (see [`value_end`]); names are tokens, ASCII.
    seen: u64,
}

impl FieldScan {
    fn new(start: &StartLine) -> Self {
        let text = match start {
            StartLine::Request { method, target, .. } => method.len() + target.len(),
            StartLine::Response { .. } => 0,
        };
        Self {
            text,
            kept_text: 0,
            host: None,
            content_type: None,
            content_type_repeated: false,
            content_length: ContentLength::Absent,
            te: TeScan::default(),
            close: false,
            keep_alive: false,
            upgrade: false,
            seen: 0,
        }
    }

    /// Parses `section` (shorter than 4 GiB) up to and including its empty line, noting
    /// the kept fields in `kept`; returns the bytes it took, or `None` on a syntax error or
    /// if `section` ends first. `STRICT`: a line ending in a bare LF is an error too.
    fn run<const STRICT: bool>(
        &mut self,
        section: &[u8],
        max_text: usize,
        kept: &mut Spans,
    ) -> Option<usize> {
        let mut pos = 0;
        loop {
            match *section.get(pos)? {
                CR => return (section.get(pos + 1) == Some(&LF)).then_some(pos + 2),
                LF => return (!STRICT).then_some(pos + 1),
                _ => {}
            }
            let name_start = pos;
            pos = token_end(section, pos);
            if pos == name_start || section.get(pos) != Some(&b':') {
                return None;
            }
            let name_end = pos;
            pos += 1;
            while matches!(section.get(pos)?, b' ' | b'\t') {
                pos += 1;
            }
            let value_start = pos;
            pos = value_end(section, pos, &mut self.seen);
            let line_end = pos;
            match *section.get(pos)? {
                CR if section.get(pos + 1) == Some(&LF) => pos += 2,
                LF if !STRICT => pos += 1,
                _ => return None,
            }
            let name = section.get(name_start..name_end)?;
            let value = trim_trailing_ws(section.get(value_start..line_end)?);
            let span = FieldSpan {
                // Offsets fit: `section` is shorter than 4 GiB.
                name: name_start as u32,
                name_end: name_end as u32,
                value: value_start as u32,
                value_end: (value_start + value.len()) as u32,
            };
            self.field(name, value, span, max_text, kept);
        }
    }

    #[inline]
    fn field(
        &mut self,
        name: &[u8],
        value: &[u8],
        span: FieldSpan,
        max_text: usize,
        kept: &mut Spans,
    ) {
        // Names are compared by length first: most fields match none of these.
        if matches!(name.len(), 7 | 10 | 14 | 17) {
            self.framing_field(name, value);
        }
        let len = name.len() + value.len();
        self.text = self.text.saturating_add(len);
        if self.text <= max_text {
            match name.len() {
                4 if self.host.is_none() && token_is(name, b"host") => {
                    self.host = Some(kept.len());
                }
                12 if token_is(name, b"content-type") => {
                    if self.content_type.is_none() {
                        self.content_type = Some(kept.len());
                    } else {
                        self.content_type_repeated = true;
                    }
                }
                _ => {}
            }
            self.kept_text += len;
            kept.push(span);
        }
    }

    /// The fields that decide framing and connection reuse.
    #[inline(never)]
    fn framing_field(&mut self, name: &[u8], value: &[u8]) {
        match name.len() {
            14 if token_is(name, b"content-length") => {
                self.content_length = merge_content_length(self.content_length, value);
            }
            17 if token_is(name, b"transfer-encoding") => self.te.add(value),
            10 if token_is(name, b"connection") => {
                // The usual values alone, a word at a time: `token_is` folds any value
                // byte but CR exactly, and a value holds no CR.
                match value.len() {
                    10 if token_is(value, b"keep-alive") => self.keep_alive = true,
                    5 if token_is(value, b"close") => self.close = true,
                    _ => {
                        for token in list_elements(value) {
                            self.close |= token.eq_ignore_ascii_case(b"close");
                            self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                        }
                    }
                }
            }
            7 if token_is(name, b"upgrade") => self.upgrade = true,
            _ => {}
        }
    }
}

/// Where the token starting at `pos` ends: the first byte that is not a `tchar`, or
/// `buf.len()`. Eight bytes at a time while they are all `tchar`s (one table lookup each,
/// ANDed, no branch per byte), then byte by byte.
#[inline]
fn token_end(buf: &[u8], mut pos: usize) -> usize {
    while let Some(chunk) = buf.get(pos..).and_then(<[u8]>::first_chunk::<8>) {
        let all = chunk
            .iter()
            .fold(true, |all, &b| all & TOKEN[usize::from(b)]);
        if !all {
            break;
        }
        pos += 8;
    }
    while buf.get(pos).is_some_and(|&b| TOKEN[usize::from(b)]) {
        pos += 1;
    }
    pos
}

/// `name`, a token (or any bytes but CR), is `lower` (lower-case letters and `-`) in any
/// case: what `eq_ignore_ascii_case` tells, a word at a time. Setting bit 0x20 turns a
/// token's upper-case letters into lower-case ones and leaves `-` and lower-case letters as
/// they are; no other byte becomes a lower-case letter or `-` (only CR would become `-`).
#[inline]
fn token_is(name: &[u8], lower: &[u8]) -> bool {
    const FOLD8: u64 = u64::from_ne_bytes([0x20; 8]);
    const FOLD4: u32 = u32::from_ne_bytes([0x20; 4]);
    debug_assert!(lower.iter().all(|&b| b.is_ascii_lowercase() || b == b'-'));
    if name.len() != lower.len() {
        return false;
    }
    let word8 = |bytes: &[u8], at: usize| {
        let word = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>);
        word.map(|w| u64::from_ne_bytes(*w))
    };
    let word4 = |w: Option<&[u8; 4]>| w.map(|w| u32::from_ne_bytes(*w));
    if let Some(last) = name.len().checked_sub(8) {
        // Words at 0, 8, … and one ending at the end (overlapping): every byte compared.
        let mut at = 0;
        loop {
            let here = at.min(last);
            match (word8(name, here), word8(lower, here)) {
                (Some(a), Some(x)) if a | FOLD8 == x => {}
                _ => return false,
            }
            if here == last {
                return true;
            }
            at += 8;
        }
    }
    // 4 to 7 bytes: two words, overlapping.
    if let (Some(a), Some(b), Some(x), Some(y)) = (
        word4(name.first_chunk()),
        word4(name.last_chunk()),
        word4(lower.first_chunk()),
        word4(lower.last_chunk()),
    ) {
        return a | FOLD4 == x && b | FOLD4 == y;
    }
    name.eq_ignore_ascii_case(lower)
}

/// `tchar` (RFC 9110 §5.6.2): the bytes of a field name.
static TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = matches!(b as u8,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9'
            | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+'
            | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~');
        b += 1;
    }
    table
};

/// Where the field value starting at `pos` stops: the first control byte other than HTAB
/// (CR, LF or an invalid one) or DEL, or `buf.len()`. Eight bytes at a time.
/// Every byte it looks at is ORed into `seen` (eight lanes), so that `seen & HIGH == 0`
/// tells the value (with a few bytes after it) was ASCII.
fn value_end(buf: &[u8], mut pos: usize, seen: &mut u64) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    while let Some(chunk) = buf.get(pos..).and_then(<[u8]>::first_chunk::<8>) {
        let x = u64::from_le_bytes(*chunk);
        *seen |= x;
        let del = x ^ (ONES * 0x7f);
        // The lowest flagged byte is exact (a borrow only spreads upwards): a byte below
        // 0x20, or 0x7f.
        let stop = ((x.wrapping_sub(ONES * 0x20) & !x) | (del.wrapping_sub(ONES) & !del)) & HIGH;
        if stop == 0 {
            pos += 8;
            continue;
        }
        pos += (stop.trailing_zeros() / 8) as usize;
        if buf.get(pos) != Some(&b'\t') {
            return pos;
        }
        pos += 1;
    }
    while let Some(&b) = buf.get(pos) {
        *seen |= u64::from(b);
        if b != b'\t' && (b < 0x20 || b == 0x7f) {
            return pos;
        }
        pos += 1;
    }
    pos
}

/// The high bit of each byte lane.
const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);

fn trim_trailing_ws(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// [`parse_head_after`] by `httparse` and [`build_head`]: for heads whose kept text is not
/// UTF-8 (values decoded lossily), and the reference the one-pass parser is tested against.
pub(super) fn parse_head_after_httparse(
    start: StartLine,
    start_len: usize,
    buf: &[u8],
    max_text: usize,
) -> Result<Head, StartLine> {
    let Some(fields) = buf.get(start_len..) else {
        return Err(start);
    };
    let mut stack = [httparse::EMPTY_HEADER; STACK_SLOTS];
    match httparse::parse_headers(fields, &mut stack) {
        Ok(httparse::Status::Complete((len, parsed))) => {
            Ok(build_head(start, start_len + len, parsed, buf, max_text))
        }
        Err(httparse::Error::TooManyHeaders) => {
            let mut slots = vec![httparse::EMPTY_HEADER; line_count(buf)];
            match httparse::parse_headers(fields, &mut slots) {
                Ok(httparse::Status::Complete((len, parsed))) => {
                    Ok(build_head(start, start_len + len, parsed, buf, max_text))
                }
                _ => Err(start),
            }
        }
        _ => Err(start),
    }
}

/// The [`Head`] of a parsed start line and fields (slices of `buf`, the whole head).
fn build_head(
    start: StartLine,
    wire_len: usize,
    fields: &[httparse::Header<'_>],
    buf: &[u8],
    max_text: usize,
) -> Head {
    let mut head = Head {
        start,
        headers: Headers::new(),
        host: None,
        content_type: None,
        content_type_repeated: false,
        wire_len,
        content_length: ContentLength::Absent,
        transfer_encoding: TransferEncoding::Absent,
        close: false,
        upgrade: false,
    };
    let mut te = TeScan::default();
    let mut keep_alive = false;
    let mut kept = HeadersBuilder::scratch(fields.len(), buf.len());
    let mut text = match &head.start {
        StartLine::Request { method, target, .. } => method.len() + target.len(),
        StartLine::Response { .. } => 0,
    };
    // Checked once for the whole head: then every value is a slice of valid text.
    let utf8 = std::str::from_utf8(buf).ok();
    for field in fields {
        let name = field.name;
        let value = field.value;
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = merge_content_length(head.content_length, value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            te.add(value);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in list_elements(value) {
                head.close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("upgrade") {
            head.upgrade = true;
        }
        let value = match utf8.and_then(|text| slice_of(text, buf, value)) {
            Some(text) => std::borrow::Cow::Borrowed(text),
            None => String::from_utf8_lossy(value),
        };
        text = text.saturating_add(name.len() + value.len());
        if text <= max_text {
            if head.host.is_none() && name.eq_ignore_ascii_case("host") {
                head.host = Some(SharedStr::from(&*value));
            }
            if name.eq_ignore_ascii_case("content-type") {
                if head.content_type.is_none() {
                    head.content_type = Some(kept.len());
                } else {
                    head.content_type_repeated = true;
                }
            }
            kept.push(name.as_bytes(), value.as_bytes());
        }
    }
    // Names and values are text (`&str`, lossy copies): the check cannot fail.
    head.headers = kept.finish(false).unwrap_or_default();
    kept.recycle();
    head.transfer_encoding = te.result();
    // HTTP/1.0 connections persist only when asked to (RFC 9112 §9.3).
    head.close |= head.version() == 0 && !keep_alive;
    head
}

/// `part` (a slice of `buf`) as a slice of `text`, `buf` checked as UTF-8: one check per
/// head instead of one `from_utf8_lossy` per field. `None` if `part` is not inside `buf`
/// or does not fall on character boundaries.
fn slice_of<'t>(text: &'t str, buf: &[u8], part: &[u8]) -> Option<&'t str> {
    let start = (part.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
    text.get(start..start.checked_add(part.len())?)
}

fn request_line(req: &httparse::Request<'_, '_>) -> Option<StartLine> {
    Some(StartLine::Request {
        method: req.method?.into(),
        target: req.path?.into(),
        version: req.version?,
    })
}

fn response_line(resp: &httparse::Response<'_, '_>) -> Option<StartLine> {
    Some(StartLine::Response {
        status: resp.code?,
        version: resp.version?,
    })
}

fn line_count(buf: &[u8]) -> usize {
    buf.iter().filter(|&&b| b == b'\n').count()
}

/// Elements of a comma-separated field value, trimmed of optional whitespace, empty
/// elements skipped (RFC 9110 §5.6.1).
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Folds one `Content-Length` field into what earlier fields said. Repeated identical
/// values are allowed (RFC 9110 §8.6); anything else makes the length unknowable.
fn merge_content_length(so_far: ContentLength, value: &[u8]) -> ContentLength {
    // The usual value, digits alone: one element, nothing to trim.
    if let Some(n) = parse_decimal(value) {
        return match so_far {
            ContentLength::Absent => ContentLength::Valid(n),
            ContentLength::Valid(m) if m == n => ContentLength::Valid(n),
            ContentLength::Valid(_) | ContentLength::Invalid => ContentLength::Invalid,
        };
    }
    let mut merged = so_far;
    let mut elements = 0;
    for element in value.split(|&b| b == b',').map(trim_ows) {
        elements += 1;
        let parsed = parse_decimal(element);
        merged = match (merged, parsed) {
            (ContentLength::Invalid, _) | (_, None) => ContentLength::Invalid,
            (ContentLength::Absent, Some(n)) => ContentLength::Valid(n),
            (ContentLength::Valid(m), Some(n)) if m == n => ContentLength::Valid(n),
            (ContentLength::Valid(_), Some(_)) => ContentLength::Invalid,
        };
    }
    if elements == 0 {
        ContentLength::Invalid
    } else {
        merged
    }
}

/// A non-empty run of ASCII digits that fits in a u64.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = u64::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        acc.checked_mul(10)?.checked_add(digit)
    })
}

/// Accumulates the transfer codings of all `Transfer-Encoding` fields.
#[derive(Default)]
struct TeScan {
    present: bool,
    chunked_count: u32,
    last_is_chunked: bool,
}

impl TeScan {
    fn add(&mut self, value: &[u8]) {
        self.present = true;
        for element in list_elements(value) {
            // A coding may carry parameters after `;`.
            let coding = trim_ows(element.split(|&b| b == b';').next().unwrap_or_default());
            self.last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
            if self.last_is_chunked {
                self.chunked_count = self.chunked_count.saturating_add(1);
            }
        }
    }

    fn result(&self) -> TransferEncoding {
        match (
            self.present,
            self.last_is_chunked && self.chunked_count == 1,
        ) {
            (false, _) => TransferEncoding::Absent,
            (true, true) => TransferEncoding::Chunked,
            (true, false) => TransferEncoding::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink takes the start line out of a head: the head keeps an empty status line, the
    /// rest as it was; the head built from directly parsed fields closes HTTP/1.0
    /// connections unless asked to keep them, as `parse_head` does.
    #[test]
    fn take_start_leaves_an_empty_status_line() {
        for (raw, close) in [
            (&b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"[..], false),
            (b"GET /a HTTP/1.0\r\nHost: h\r\n\r\n", true),
            (b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false),
            (b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n", true),
        ] {
            let line_len = raw.iter().position(|&b| b == LF).map_or(0, |i| i + 1);
            let start = parse_start_line(MessageKind::Request, &raw[..line_len]).unwrap();
            let fields = parse_fields_direct(&start, &raw[line_len..], 8192).unwrap();
            let mut head = fields.into_head(start.clone(), line_len);
            let reference = parse_head(MessageKind::Request, raw, 8192).unwrap();
            assert_eq!(format!("{head:?}"), format!("{reference:?}"));
            assert_eq!(head.close, close);
            assert_eq!(head.take_start(), start);
            assert_eq!(
                head.start,
                StartLine::Response {
                    status: 0,
                    version: 0
                }
            );
            assert_eq!(head.wire_len, raw.len());
        }
    }

    /// `visible_end` finds what the byte loop it replaced found, for every byte value at
    /// every position of short and long inputs.
    #[test]
    fn visible_end_is_the_first_byte_outside_visible_ascii() {
        let reference = |bytes: &[u8]| {
            bytes
                .iter()
                .position(|&b| !(0x21..=0x7e).contains(&b))
                .unwrap_or(bytes.len())
        };
        for len in 0..=20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    if let Some(slot) = bytes.get_mut(at) {
                        *slot = b;
                    }
                    // A second odd byte after it, which must not hide the first.
                    if let Some(slot) = bytes.get_mut(at + 1) {
                        *slot = 0xff;
                    }
                    assert_eq!(visible_end(&bytes), reference(&bytes), "{bytes:?}");
                }
            }
            let clean = vec![b'~'; len];
            assert_eq!(visible_end(&clean), len);
        }
    }

    /// `Spans` gives back every span pushed, in order, on the stack and past it.
    #[test]
    fn spans_give_back_what_was_pushed() {
        for n in [
            0,
            1,
            7,
            INLINE_SPANS - 1,
            INLINE_SPANS,
            INLINE_SPANS + 1,
            3 * INLINE_SPANS,
        ] {
            let mut spans = Spans::new();
            let want: Vec<FieldSpan> = (0..n)
                .map(|i| {
                    let i = u32::try_from(i).expect("small");
                    FieldSpan {
                        name: i,
                        name_end: i + 1,
                        value: i + 2,
                        value_end: i + 3,
                    }
                })
                .collect();
            for (i, &span) in want.iter().enumerate() {
                assert_eq!(spans.len(), i);
                spans.push(span);
            }
            assert_eq!(spans.len(), n);
            let got: Vec<_> = spans
                .as_slice()
                .iter()
                .map(|s| (s.name, s.name_end, s.value, s.value_end))
                .collect();
            let want: Vec<_> = want
                .iter()
                .map(|s| (s.name, s.name_end, s.value, s.value_end))
                .collect();
            assert_eq!(got, want, "{n} spans");
        }
    }

    fn req(head: &str) -> Head {
        parse_head(MessageKind::Request, head.as_bytes(), 65_536).expect("valid head")
    }

    /// Parsing the fields after a start line parsed on its own gives what parsing the
    /// whole head does, for valid and invalid heads of both kinds.
    #[test]
    fn fields_after_the_start_line_parse_as_the_whole_head() {
        let many: String = (0..STACK_SLOTS + 3)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        let heads = [
            (
                MessageKind::Request,
                "GET /a?b HTTP/1.1\r\nHost: h\r\n\r\n".to_owned(),
            ),
            (MessageKind::Request, "POST / HTTP/1.0\r\n\r\n".to_owned()),
            (
                MessageKind::Request,
                format!("GET / HTTP/1.1\r\n{many}\r\n"),
            ),
            (
                MessageKind::Request,
                "GET / HTTP/1.1\r\nBad Name: v\r\n\r\n".to_owned(),
            ),
            (
                MessageKind::Request,
                "GET / HTTP/1.1\r\nName : v\r\n\r\n".to_owned(),
            ),
            (
                MessageKind::Request,
                "GET / HTTP/1.1\r\nA: v\r\n folded\r\n\r\n".to_owned(),
            ),
            (
                MessageKind::Request,
                "GET / HTTP/1.1\r\n Lead: v\r\n\r\n".to_owned(),
            ),
            (
                MessageKind::Request,
                "GET / HTTP/1.1\r\nA: \u{e9}\r\n\r\n".to_owned(),
            ),
            (
                MessageKind::Response,
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n".to_owned(),
            ),
            (
                MessageKind::Response,
                "HTTP/1.1 204 \r\nName : v\r\n\r\n".to_owned(),
            ),
            (
                MessageKind::Response,
                "HTTP/1.1 200 OK\r\nA: v\r\n folded\r\n\r\n".to_owned(),
            ),
            (
                MessageKind::Response,
                format!("HTTP/1.1 200 OK\r\n{many}\r\n"),
            ),
        ];
        let not_utf8 = (
            MessageKind::Request,
            b"GET / HTTP/1.1\r\nA: \xff\r\n\r\n".to_vec(),
        );
        let heads = heads.into_iter().map(|(k, h)| (k, h.into_bytes()));
        for (kind, head) in heads.chain([not_utf8]) {
            let buf = &head[..];
            let line_end = buf.iter().position(|&b| b == LF).expect("a line") + 1;
            let start = parse_start_line(kind, &buf[..line_end]).expect("valid start line");
            for max_text in [20, 65_536] {
                let whole = parse_head(kind, buf, max_text).map(|h| format!("{h:?}"));
                let after = parse_head_after(start.clone(), line_end, buf, max_text)
                    .map(|h| format!("{h:?}"))
                    .map_err(|_| SyntaxError);
                assert_eq!(after, whole, "{head:?}");
            }
        }
    }

    /// `token_is` tells what `eq_ignore_ascii_case` does for every token name and value
    /// without CR: the names and values the parser looks for in any case, each with one byte
    /// changed to every token byte and to every byte but CR, and random tokens of their
    /// lengths.
    #[test]
    fn token_is_eq_ignore_ascii_case() {
        let tokens: Vec<u8> = (0..=255u8).filter(|&b| TOKEN[usize::from(b)]).collect();
        let targets: [&[u8]; 10] = [
            b"keep-alive",
            b"close",
            b"content-length",
            b"transfer-encoding",
            b"connection",
            b"upgrade",
            b"host",
            b"content-type",
            b"a-b",
            b"x",
        ];
        let mut rng = crate::testutil::Rng(0x70c3_7a11_5eed_0001);
        for target in targets {
            let mut names = vec![target.to_vec(), target.to_ascii_uppercase()];
            for at in 0..target.len() {
                for &b in &tokens {
                    let mut name = target.to_vec();
                    name[at] = b;
                    names.push(name);
                }
            }
            for _ in 0..2_000 {
                let name = (0..target.len())
                    .map(|_| tokens[rng.below(tokens.len() as u64) as usize])
                    .collect();
                names.push(name);
            }
            names.push(target[1..].to_vec());
            names.push([target, b"s"].concat());
            // Values (any byte but CR) as well as tokens.
            for at in 0..target.len() {
                for b in (0..=255u8).filter(|&b| b != CR) {
                    let mut name = target.to_vec();
                    name[at] = b;
                    names.push(name);
                }
            }
            for name in names {
                assert_eq!(
                    token_is(&name, target),
                    name.eq_ignore_ascii_case(target),
                    "{name:?} {target:?}"
                );
            }
        }
    }

    /// Heads with more fields than the stack slots take the counted heap slots.
    #[test]
    fn many_fields_beyond_the_stack_slots() {
        for n in [STACK_SLOTS - 1, STACK_SLOTS, STACK_SLOTS + 1, 500] {
            let mut head = String::from("GET / HTTP/1.1\r\n");
            for i in 0..n {
                head += &format!("X-F{i}: {i}\r\n");
            }
            head += "\r\n";
            let h = req(&head);
            assert_eq!(h.headers.len(), n);
            assert_eq!(
                h.headers.get_index(n - 1),
                Some((
                    format!("X-F{}", n - 1).as_str(),
                    (n - 1).to_string().as_str()
                ))
            );
            assert_eq!(h.wire_len, head.len());
        }
        let bad = "GET / HTTP/1.1\r\nX: 1\r\nbad header\r\n\r\n";
        assert!(parse_head(MessageKind::Request, bad.as_bytes(), 65_536).is_err());
    }

    /// Values are text: UTF-8 as sent, anything else replaced (the head is checked once,
    /// a value that is not UTF-8 alone is decoded lossily).
    #[test]
    fn field_values_utf8_and_not() {
        let head = b"GET / HTTP/1.1\r\nX-A: caf\xc3\xa9\r\nHost: h\r\n\r\n";
        let h = parse_head(MessageKind::Request, head, 65_536).expect("valid head");
        assert_eq!(h.headers.get("x-a"), Some("caf\u{e9}"));
        assert_eq!(h.host.as_deref(), Some("h"));
        let head = b"GET / HTTP/1.1\r\nX-A: caf\xe9\r\nX-B: ok\r\nHost: h\xff\r\n\r\n";
        let h = parse_head(MessageKind::Request, head, 65_536).expect("valid head");
        assert_eq!(h.headers.get("x-a"), Some("caf\u{fffd}"));
        assert_eq!(h.headers.get("x-b"), Some("ok"));
        assert_eq!(h.host.as_deref(), Some("h\u{fffd}"));
    }

    #[test]
    fn request_head() {
        let h = req("POST /a?b=1 HTTP/1.1\r\nHost: x.example\r\nContent-Length: 003\r\n\r\n");
        assert_eq!(
            h.start,
            StartLine::Request {
                method: "POST".into(),
                target: "/a?b=1".into(),
                version: 1
            }
        );
        assert_eq!(h.host.as_deref(), Some("x.example"));
        assert_eq!(h.content_length, ContentLength::Valid(3));
        assert_eq!(h.transfer_encoding, TransferEncoding::Absent);
        assert_eq!(h.wire_len, 62);
        assert!(!h.close);
        assert_eq!(h.headers.len(), 2);
    }

    #[test]
    fn content_length_values() {
        let cl = |v: &str| merge_content_length(ContentLength::Absent, v.as_bytes());
        assert_eq!(cl("42"), ContentLength::Valid(42));
        assert_eq!(cl(" 42\t"), ContentLength::Valid(42));
        assert_eq!(cl("42, 42"), ContentLength::Valid(42));
        assert_eq!(cl("4 2"), ContentLength::Invalid);
        assert_eq!(cl(""), ContentLength::Invalid);
        assert_eq!(cl("-1"), ContentLength::Invalid);
        assert_eq!(cl("+1"), ContentLength::Invalid);
        assert_eq!(cl("18446744073709551615"), ContentLength::Valid(u64::MAX));
        assert_eq!(cl("18446744073709551616"), ContentLength::Invalid);
        assert_eq!(cl("99999999999999999999"), ContentLength::Invalid);
        assert_eq!(
            merge_content_length(ContentLength::Valid(1), b"2"),
            ContentLength::Invalid
        );
    }

    #[test]
    fn transfer_encoding_values() {
        let te = |vals: &[&str]| {
            let mut s = TeScan::default();
            vals.iter().for_each(|v| s.add(v.as_bytes()));
            s.result()
        };
        assert_eq!(te(&[]), TransferEncoding::Absent);
        assert_eq!(te(&["chunked"]), TransferEncoding::Chunked);
        assert_eq!(te(&["gzip, Chunked"]), TransferEncoding::Chunked);
        assert_eq!(te(&["gzip", "chunked"]), TransferEncoding::Chunked);
        assert_eq!(te(&["chunked, gzip"]), TransferEncoding::Other);
        assert_eq!(te(&["chunked", "chunked"]), TransferEncoding::Other);
        assert_eq!(te(&["chunkedchunked"]), TransferEncoding::Other);
        assert_eq!(te(&[""]), TransferEncoding::Other);
    }

    #[test]
    fn connection_semantics() {
        assert!(req("GET / HTTP/1.0\r\n\r\n").close);
        assert!(!req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").close);
        assert!(req("GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n").close);
        assert!(req("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").upgrade);
    }

    #[test]
    fn start_lines() {
        let r = |l: &[u8]| parse_start_line(MessageKind::Request, l);
        assert!(r(b"GET / HTTP/1.1\r\n").is_ok());
        assert!(r(b"GET / HTTP/5.6\r\n").is_err());
        assert!(r(b"GET /foo bar/ HTTP/1.1\r\n").is_err());
        let s = |l: &[u8]| parse_start_line(MessageKind::Response, l);
        assert_eq!(
            s(b"HTTP/1.0 301\r\n"),
            Ok(StartLine::Response {
                status: 301,
                version: 0
            })
        );
        assert!(s(b"HTTP/1.1 2 OK\r\n").is_err());
        assert!(partial_is_invalid(MessageKind::Request, b"GET / HTTP/5.6"));
        assert!(!partial_is_invalid(
            MessageKind::Request,
            b"GET / HTTP/1.1\r\nHost: a"
        ));
    }

    #[test]
    fn line_structure() {
        let events = |bytes: &[u8]| {
            let mut scan = LineScan::starting_with(0);
            let mut rest = bytes;
            let mut seen = Vec::new();
            while !rest.is_empty() {
                let (used, event) = scan.advance(rest);
                seen.push((used, event));
                rest = &rest[used..];
            }
            seen
        };
        use LineEvent::*;
        assert_eq!(
            events(b"GET / HTTP/1.1\r\nA: b\r\nC: d\r\n\r\nbody"),
            [(16, Some(StartLineEnd)), (14, Some(HeadEnd)), (4, None)]
        );
        assert_eq!(
            events(b"GET / HTTP/1.1\r\nA: b\r\nC\rd"),
            [(16, Some(StartLineEnd)), (9, Some(BadLineEnding))]
        );
        assert_eq!(events(b"G\nA"), [(2, Some(BadLineEnding)), (1, None)]);
        assert_eq!(events(b"G\rA"), [(3, Some(BadLineEnding))]);
        assert_eq!(events(b"G\r"), [(2, None)]);
    }

    /// `line_break` finds what `memchr2` does, at every length and offset.
    #[test]
    fn line_break_is_memchr2() {
        let mut rng = crate::testutil::Rng(0x11ae_b4ea_4c0d_e5e5);
        let alphabet = [b'a', b' ', CR, LF, 0x8d, 0x8a, 0x0c, 0x0e, 0x2d, 0xff, 0];
        for _ in 0..20_000 {
            let len = rng.below(40) as usize;
            let sparse = rng.below(2) == 0;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    if sparse && rng.below(16) != 0 {
                        b'x'
                    } else {
                        alphabet[rng.below(alphabet.len() as u64) as usize]
                    }
                })
                .collect();
            for from in 0..=bytes.len() {
                let part = &bytes[from..];
                assert_eq!(line_break(part), memchr::memchr2(CR, LF, part), "{part:?}");
            }
        }
    }

    #[test]
    fn header_text_is_bounded() {
        let head = "GET / HTTP/1.1\r\nA: 0123456789\r\nB: 0123456789\r\n\r\n";
        let h = parse_head(MessageKind::Request, head.as_bytes(), 17).expect("valid");
        assert_eq!(h.headers, [("A", "0123456789")]);
    }
}
