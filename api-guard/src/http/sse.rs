//! Counting server-sent events (`text/event-stream`, WHATWG HTML §9.2) in a response body
//! as it streams by, with constant memory whatever the stream's length.

use serde::Serialize;

/// What an event stream carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SseStats {
    /// Events dispatched: blank-line-terminated blocks with at least one `data` field.
    pub events: u64,
    /// Capture time of the bytes that completed the first event.
    pub first_event_ns: Option<u64>,
}

/// Where the scanner is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// At the first byte of a line.
    Start,
    /// Matching the field name `data` (this many bytes matched so far).
    Name(u8),
    /// The rest of a line whose kind is decided; `data` says it is a data field.
    Rest { data: bool },
}

/// Incremental event counter; feed it the de-framed body bytes in order.
#[derive(Debug, Clone)]
pub struct SseCounter {
    stats: SseStats,
    line: Line,
    /// The last byte was a CR: a following LF belongs to the same line ending.
    after_cr: bool,
    /// The event being collected has a data field.
    has_data: bool,
}

const DATA: &[u8] = b"data";

impl Default for SseCounter {
    fn default() -> Self {
        Self {
            stats: SseStats::default(),
            line: Line::Start,
            after_cr: false,
            has_data: false,
        }
    }
}

impl SseCounter {
    /// Body bytes captured at `ts_ns`.
    pub fn feed(&mut self, data: &[u8], ts_ns: u64) {
        for &b in data {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    self.after_cr = b == b'\r';
                    self.end_line(ts_ns);
                }
                _ => self.line = self.advance(b),
            }
        }
    }

    fn advance(&self, b: u8) -> Line {
        match self.line {
            Line::Start if b == b':' => Line::Rest { data: false },
            Line::Start => Self::name(0, b),
            Line::Name(n) => Self::name(n, b),
            rest @ Line::Rest { .. } => rest,
        }
    }

    /// Byte `b` after `matched` bytes of `data`.
    fn name(matched: u8, b: u8) -> Line {
        let matched_all = usize::from(matched) == DATA.len();
        if matched_all {
            return Line::Rest { data: b == b':' };
        }
        if DATA.get(usize::from(matched)) == Some(&b) {
            Line::Name(matched + 1)
        } else {
            Line::Rest { data: false }
        }
    }

    fn end_line(&mut self, ts_ns: u64) {
        match self.line {
            // A blank line dispatches the event, if it has data.
            Line::Start => {
                if std::mem::take(&mut self.has_data) {
                    self.stats.events += 1;
                    self.stats.first_event_ns.get_or_insert(ts_ns);
                }
            }
            // `data` alone on its line is a data field with an empty value.
            Line::Name(n) => self.has_data |= usize::from(n) == DATA.len(),
            Line::Rest { data } => self.has_data |= data,
        }
        self.line = Line::Start;
    }

    #[must_use]
    pub fn stats(&self) -> SseStats {
        self.stats
    }
}

/// Whether a `Content-Type` value is `text/event-stream` (parameters ignored).
#[must_use]
pub fn is_event_stream(content_type: &str) -> bool {
    is_event_stream_media(super::media_type(content_type))
}

/// [`is_event_stream`] of a media type already cut from its parameters.
pub(crate) fn is_event_stream_media(media: &str) -> bool {
    media.eq_ignore_ascii_case("text/event-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(stream: &[u8]) -> u64 {
        let mut c = SseCounter::default();
        c.feed(stream, 1);
        c.stats().events
    }

    #[test]
    fn counts_events_with_data_only() {
        let s = b": comment\n\nevent: ping\n\ndata: a\ndata: b\n\nid: 3\ndata\n\ndata:x\r\n\r\ndatax: no\n\n";
        // comment block and event-only block dispatch nothing; `datax` is another field.
        assert_eq!(count(s), 3);
    }

    #[test]
    fn every_split_and_line_ending_gives_the_same_count() {
        let s = b"data: 1\r\n\r\ndata: 2\r\rdata: 3\n\n: c\r\ndata: {\"x\":1}\ndata\r\n\r\n";
        assert_eq!(count(s), 4);
        for cut in 0..=s.len() {
            let mut c = SseCounter::default();
            c.feed(&s[..cut], 1);
            c.feed(&s[cut..], 2);
            assert_eq!(c.stats().events, 4, "cut at {cut}");
        }
        let mut c = SseCounter::default();
        for (i, b) in s.iter().enumerate() {
            c.feed(std::slice::from_ref(b), i as u64);
        }
        assert_eq!(c.stats().events, 4);
        // The first event completes with the CR that starts its blank line (byte 9).
        assert_eq!(c.stats().first_event_ns, Some(9));
    }

    #[test]
    fn unfinished_event_is_not_counted() {
        assert_eq!(count(b"data: partial\n"), 0);
    }

    #[test]
    fn media_type() {
        assert!(is_event_stream("text/event-stream; charset=utf-8"));
        assert!(is_event_stream("Text/Event-Stream"));
        assert!(!is_event_stream("text/plain"));
    }
}
