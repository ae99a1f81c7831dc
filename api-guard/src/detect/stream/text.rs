//! Bodies read as text: XML (its text and quoted attribute values — a flat scan, not a
//! parser: payloads sit in attributes and text either way) and everything else (the text
//! itself, in pieces of `max_value_bytes` that overlap, so a payload cut between two
//! pieces is whole in one of them).

use memchr::memchr3;

use super::Out;
use crate::detect::inputs::Source;

/// Bytes each text piece repeats from the end of the one before.
pub(super) const OVERLAP: usize = 512;

#[derive(Debug)]
pub(super) struct TextScan {
    buf: Vec<u8>,
    /// Bytes of `buf` not yet judged in an earlier piece.
    fresh: usize,
    max: usize,
    overlap: usize,
}

impl TextScan {
    pub(super) fn new(max_value_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            fresh: 0,
            max: max_value_bytes.max(4),
            overlap: OVERLAP.min(max_value_bytes / 4),
        }
    }

    pub(super) fn retained_bytes(&self) -> usize {
        self.buf.capacity()
    }

    pub(super) fn feed(&mut self, mut data: &[u8], out: &mut Out<'_>) {
        while !data.is_empty() {
            let room = self.max - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            self.fresh += take;
            data = &data[take..];
            if self.buf.len() >= self.max {
                self.emit(out);
            }
        }
    }

    pub(super) fn finish(&mut self, out: &mut Out<'_>) {
        if self.fresh > 0 {
            let piece = std::mem::take(&mut self.buf);
            out.value(Source::Body, "", &piece);
            self.fresh = 0;
        }
    }

    /// Judges the full buffer as one piece and keeps its end (from a character boundary)
    /// to start the next.
    fn emit(&mut self, out: &mut Out<'_>) {
        let end = char_boundary(&self.buf, self.buf.len());
        out.value(Source::Body, "", &self.buf[..end]);
        let keep_from = char_boundary(&self.buf, end.saturating_sub(self.overlap));
        self.buf.drain(..keep_from);
        self.fresh = self.buf.len() - (end - keep_from);
    }
}

/// The last UTF-8 character boundary at or before `at` (at most three bytes back).
fn char_boundary(b: &[u8], at: usize) -> usize {
    let mut i = at.min(b.len());
    let floor = i.saturating_sub(3);
    while i > floor && b.get(i).is_some_and(|&c| (c & 0xC0) == 0x80) {
        i -= 1;
    }
    i
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum XmlState {
    Text,
    Tag,
    /// In a quoted attribute value, with its quote.
    Attr(u8),
}

#[derive(Debug)]
pub(super) struct XmlScan {
    state: XmlState,
    buf: Vec<u8>,
    max: usize,
}

impl XmlScan {
    pub(super) fn new(max_value_bytes: usize) -> Self {
        Self {
            state: XmlState::Text,
            buf: Vec::new(),
            max: max_value_bytes.saturating_add(4),
        }
    }

    pub(super) fn retained_bytes(&self) -> usize {
        self.buf.capacity()
    }

    pub(super) fn feed(&mut self, data: &[u8], out: &mut Out<'_>) {
        let mut rest = data;
        while !rest.is_empty() {
            let (a, b, c) = match self.state {
                XmlState::Text => (b'<', b'<', b'<'),
                XmlState::Tag => (b'>', b'"', b'\''),
                XmlState::Attr(q) => (q, b'>', b'>'),
            };
            let Some(at) = memchr3(a, b, c, rest) else {
                if self.state != XmlState::Tag {
                    super::append_bounded(&mut self.buf, rest, self.max);
                }
                return;
            };
            let found = rest[at];
            match self.state {
                XmlState::Text => {
                    super::append_bounded(&mut self.buf, &rest[..at], self.max);
                    self.text(out);
                    self.state = XmlState::Tag;
                }
                XmlState::Tag if found == b'>' => self.state = XmlState::Text,
                XmlState::Tag => {
                    self.buf.clear();
                    self.state = XmlState::Attr(found);
                }
                XmlState::Attr(_) if found == b'>' => {
                    // An unterminated value: the tag ends here, the value is dropped.
                    self.buf.clear();
                    self.state = XmlState::Text;
                }
                XmlState::Attr(_) => {
                    super::append_bounded(&mut self.buf, &rest[..at], self.max);
                    if !self.buf.is_empty() {
                        out.value(Source::Body, "", &self.buf);
                    }
                    self.buf.clear();
                    self.state = XmlState::Tag;
                }
            }
            rest = &rest[at + 1..];
        }
    }

    pub(super) fn finish(&mut self, out: &mut Out<'_>) {
        if self.state == XmlState::Text {
            self.text(out);
        }
        self.buf = Vec::new();
    }

    fn text(&mut self, out: &mut Out<'_>) {
        let t = self.buf.trim_ascii();
        if !t.is_empty() {
            out.value(Source::Body, "", t);
        }
        self.buf.clear();
    }
}
