//! A bounded tap on response bodies that stream, for analyses that need the end of a body
//! (LLM usage arrives in the last events of a stream, or at the end of a long JSON body)
//! although only a prefix of the body is kept.
//!
//! Event streams are cut into events (blank-line-terminated blocks), NDJSON into lines; the
//! tap keeps the first events (the stream's opening: model, first token), the last
//! [`TAIL_RECORDS`] (usage, finish) and, for what lies between, only their count and times —
//! and the first of them up to [`MIDDLE_BYTES`], so that scans of a stream's content (leaks in
//! LLM completions) read more than its two ends.
//! For other bodies it keeps the last [`MAX_RECORD_BYTES`] beyond the captured prefix. Memory
//! per stream is bounded by [`MAX_TAP_BYTES`] whatever the stream's length.

use std::collections::VecDeque;

use memchr::memchr2;

/// Records kept from a stream's start, and their byte budget.
pub const HEAD_RECORDS: usize = 16;
pub const HEAD_BYTES: usize = 16 * 1024;
/// Records kept from a stream's end.
pub const TAIL_RECORDS: usize = 4;
/// A longer record keeps its last this many bytes (where a final JSON object ends).
pub const MAX_RECORD_BYTES: usize = 16 * 1024;
/// Records between head and tail kept for content scans, by bytes.
pub const MIDDLE_BYTES: usize = 64 * 1024;
/// Upper bound of the bytes a tap holds (head, middle, tail and the record being collected,
/// which may hold twice the record bound before it is trimmed).
pub const MAX_TAP_BYTES: usize = HEAD_BYTES + MIDDLE_BYTES + (TAIL_RECORDS + 2) * MAX_RECORD_BYTES;

/// How a body is cut into records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapKind {
    /// `text/event-stream`: one record per event, its lines joined with `\n`.
    Events,
    /// `application/x-ndjson` and kin: one record per non-empty line.
    Lines,
    /// Any other body: one record, the body's last bytes beyond the captured prefix.
    Tail,
}

impl TapKind {
    /// The tap for a response `Content-Type`, if the body is JSON or a stream of it.
    #[must_use]
    pub fn for_content_type(content_type: &str) -> Option<Self> {
        Self::for_media_type(super::media_type(content_type))
    }

    /// [`Self::for_content_type`] of a media type already cut from its parameters.
    pub(crate) fn for_media_type(media: &str) -> Option<Self> {
        let is = |m: &str| media.eq_ignore_ascii_case(m);
        if is("text/event-stream") {
            Some(Self::Events)
        } else if is("application/x-ndjson") || is("application/jsonl") || is("application/ndjson")
        {
            Some(Self::Lines)
        } else if is("application/json") {
            Some(Self::Tail)
        } else {
            None
        }
    }
}

/// One kept record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapRecord {
    /// Capture time of the bytes that completed it (for an unfinished one, the last bytes).
    pub ts_ns: u64,
    pub data: Vec<u8>,
    /// Its start is missing: it was longer than [`MAX_RECORD_BYTES`] or followed a gap.
    pub cut: bool,
    /// The body ended before the record did.
    pub unfinished: bool,
}

/// What the tap kept of one body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TappedStream {
    /// The first records, in order.
    pub head: Vec<TapRecord>,
    /// The last records, in order, after `head` and the skipped ones.
    pub tail: Vec<TapRecord>,
    /// Records between `head` and `tail` that were not kept.
    pub skipped: u64,
    /// The first of the `skipped` records, in order, up to [`MIDDLE_BYTES`]: for scans of the
    /// stream's content only ([`TappedStream::records`] leaves them out; `skipped` counts them).
    pub middle: Vec<TapRecord>,
    /// Capture gaps inside the body: records may be missing without being counted.
    pub lost: bool,
    /// For [`TapKind::Tail`]: the body's first byte in `tail[0]` follows the captured
    /// prefix directly (nothing between them was dropped).
    pub tail_adjoins_prefix: bool,
}

impl TappedStream {
    /// Every kept record, in stream order.
    pub fn records(&self) -> impl DoubleEndedIterator<Item = &TapRecord> {
        self.head.iter().chain(self.tail.iter())
    }

    /// Bytes of record data held.
    #[must_use]
    pub fn retained_bytes(&self) -> usize {
        self.records()
            .chain(self.middle.iter())
            .map(|r| r.data.len())
            .sum()
    }
}

/// Incremental tap; feed it the de-framed body bytes in order.
#[derive(Debug, Clone)]
pub struct StreamTap {
    kind: TapKind,
    cur: Vec<u8>,
    cur_cut: bool,
    /// Bytes on the current line (a blank line ends an event).
    line_len: usize,
    /// The last byte was a CR: a following LF belongs to the same line ending.
    after_cr: bool,
    last_ts: u64,
    head_bytes: usize,
    middle_bytes: usize,
    out: TappedStream,
    tail: VecDeque<TapRecord>,
    /// Body bytes seen so far (for [`TapKind::Tail`]: to know where the prefix ends).
    seen: u64,
}

impl StreamTap {
    #[must_use]
    pub fn new(kind: TapKind) -> Self {
        Self {
            kind,
            cur: Vec::new(),
            cur_cut: false,
            line_len: 0,
            after_cr: false,
            last_ts: 0,
            head_bytes: 0,
            middle_bytes: 0,
            out: TappedStream {
                tail_adjoins_prefix: true,
                ..TappedStream::default()
            },
            tail: VecDeque::new(),
            seen: 0,
        }
    }

    #[must_use]
    pub fn kind(&self) -> TapKind {
        self.kind
    }

    /// Body bytes captured at `ts`; `prefix_room` of them are still going into the kept
    /// body prefix (a [`TapKind::Tail`] tap skips those).
    pub fn feed(&mut self, data: &[u8], prefix_room: usize, ts: u64) {
        self.last_ts = ts;
        self.seen = self.seen.saturating_add(data.len() as u64);
        if self.kind == TapKind::Tail {
            if let Some(rest) = data.get(prefix_room..).filter(|r| !r.is_empty()) {
                self.append(rest);
            }
            return;
        }
        let mut data = data;
        while let Some((&first, rest)) = data.split_first() {
            if std::mem::take(&mut self.after_cr) && first == b'\n' {
                data = rest;
                continue;
            }
            let Some(i) = memchr2(b'\r', b'\n', data) else {
                self.append(data);
                self.line_len += data.len();
                return;
            };
            let (line, rest) = data.split_at(i);
            self.append(line);
            self.line_len += line.len();
            self.after_cr = rest.first() == Some(&b'\r');
            data = rest.get(1..).unwrap_or_default();
            self.end_line(ts);
        }
    }

    /// Body bytes were lost: the record in progress loses its start.
    pub fn gap(&mut self) {
        self.out.lost = true;
        self.cur.clear();
        self.cur_cut = true;
        if self.kind == TapKind::Tail {
            self.out.tail_adjoins_prefix = false;
        }
    }

    /// The body ended: what was kept, with an unfinished record last.
    #[must_use]
    pub fn finish(mut self) -> TappedStream {
        if !self.cur.is_empty() {
            let ts = self.last_ts;
            self.dispatch(ts, self.kind != TapKind::Tail);
        }
        let mut out = self.out;
        out.tail = self.tail.into();
        out
    }

    fn append(&mut self, bytes: &[u8]) {
        self.cur.extend_from_slice(bytes);
        if self.cur.len() > 2 * MAX_RECORD_BYTES {
            self.trim();
        }
    }

    /// Keeps the record's last [`MAX_RECORD_BYTES`].
    fn trim(&mut self) {
        if let Some(excess) = self.cur.len().checked_sub(MAX_RECORD_BYTES) {
            self.cur.drain(..excess);
            self.cur_cut = true;
            if self.kind == TapKind::Tail {
                self.out.tail_adjoins_prefix = false;
            }
        }
    }

    fn end_line(&mut self, ts: u64) {
        match self.kind {
            TapKind::Lines => {
                if !self.cur.is_empty() {
                    self.dispatch(ts, false);
                }
            }
            TapKind::Events if self.line_len == 0 => {
                if !self.cur.is_empty() {
                    self.dispatch(ts, false);
                }
            }
            TapKind::Events | TapKind::Tail => self.append(b"\n"),
        }
        self.line_len = 0;
    }

    fn dispatch(&mut self, ts: u64, unfinished: bool) {
        if self.kind == TapKind::Events && self.cur.last() == Some(&b'\n') {
            self.cur.pop();
        }
        self.trim();
        let data = std::mem::take(&mut self.cur);
        let record = TapRecord {
            ts_ns: ts,
            cut: std::mem::take(&mut self.cur_cut),
            unfinished,
            data,
        };
        let head_room = self.kind != TapKind::Tail
            && self.out.head.len() < HEAD_RECORDS
            && self.head_bytes + record.data.len() <= HEAD_BYTES
            && self.tail.is_empty();
        if head_room {
            self.head_bytes += record.data.len();
            self.out.head.push(record);
            return;
        }
        self.tail.push_back(record);
        if self.tail.len() > TAIL_RECORDS {
            if let Some(mut old) = self.tail.pop_front() {
                self.out.skipped += 1;
                if self.middle_bytes + old.data.len() <= MIDDLE_BYTES
                    && self.out.middle.len() as u64 + 1 == self.out.skipped
                {
                    self.middle_bytes += old.data.len();
                    self.out.middle.push(old);
                    return;
                }
                // Reuse the evicted record's allocation for the next one.
                old.data.clear();
                self.cur = old.data;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap(kind: TapKind, parts: &[&[u8]]) -> TappedStream {
        let mut t = StreamTap::new(kind);
        for (i, p) in parts.iter().enumerate() {
            t.feed(p, 0, i as u64);
        }
        t.finish()
    }

    fn texts(s: &TappedStream) -> Vec<String> {
        s.records()
            .map(|r| String::from_utf8_lossy(&r.data).into_owned())
            .collect()
    }

    #[test]
    fn events_are_cut_at_blank_lines_whatever_the_split() {
        let body = b"data: a\r\n\r\nevent: e\ndata: b\n\n: c\r\rdata: [DONE]\n\ndata: tail";
        let whole = tap(TapKind::Events, &[body]);
        assert_eq!(
            texts(&whole),
            [
                "data: a",
                "event: e\ndata: b",
                ": c",
                "data: [DONE]",
                "data: tail"
            ]
        );
        assert!(whole.records().last().is_some_and(|r| r.unfinished));
        for cut in 0..=body.len() {
            let split = tap(TapKind::Events, &[&body[..cut], &body[cut..]]);
            assert_eq!(texts(&split), texts(&whole), "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(texts(&tap(TapKind::Events, &bytes)), texts(&whole));
    }

    #[test]
    fn long_streams_keep_head_and_tail_and_count_the_rest() {
        let mut t = StreamTap::new(TapKind::Lines);
        for i in 0..1000u64 {
            t.feed(format!("{{\"n\":{i}}}\n").as_bytes(), 0, i);
        }
        let s = t.finish();
        assert_eq!(s.head.len(), HEAD_RECORDS);
        assert_eq!(s.tail.len(), TAIL_RECORDS);
        assert_eq!(s.skipped, 1000 - (HEAD_RECORDS + TAIL_RECORDS) as u64);
        assert_eq!(s.tail[3].data, b"{\"n\":999}");
        assert_eq!((s.head[0].ts_ns, s.tail[3].ts_ns), (0, 999));
    }

    #[test]
    fn records_and_tails_are_bounded() {
        let mut t = StreamTap::new(TapKind::Events);
        let big = vec![b'x'; 100_000];
        t.feed(b"data: ", 0, 1);
        t.feed(&big, 0, 2);
        t.feed(b"\"usage\":1}\n\n", 0, 3);
        let s = t.finish();
        let r = &s.head[0];
        assert!(r.cut && r.data.len() == MAX_RECORD_BYTES && r.data.ends_with(b"\"usage\":1}"));

        let mut t = StreamTap::new(TapKind::Tail);
        t.feed(b"0123456789", 4, 1);
        let s = t.finish();
        assert_eq!(s.tail[0].data, b"456789");
        assert!(s.tail_adjoins_prefix && !s.tail[0].unfinished);
        let mut t = StreamTap::new(TapKind::Tail);
        t.feed(&big, 0, 1);
        assert!(!t.finish().tail_adjoins_prefix);
    }

    #[test]
    fn a_gap_cuts_the_record_in_progress() {
        let mut t = StreamTap::new(TapKind::Lines);
        t.feed(b"{\"a\":1}\n{\"b\"", 0, 1);
        t.gap();
        t.feed(b":2}\n{\"c\":3}\n", 0, 2);
        let s = t.finish();
        assert!(s.lost);
        let cut: Vec<bool> = s.records().map(|r| r.cut).collect();
        assert_eq!(cut, [false, true, false]);
    }

    #[test]
    fn content_types() {
        assert_eq!(
            TapKind::for_content_type("text/event-stream; charset=utf-8"),
            Some(TapKind::Events)
        );
        assert_eq!(
            TapKind::for_content_type("application/x-ndjson"),
            Some(TapKind::Lines)
        );
        assert_eq!(
            TapKind::for_content_type("Application/JSON"),
            Some(TapKind::Tail)
        );
        assert_eq!(TapKind::for_content_type("text/html"), None);
    }
}
