//! `multipart/*` parts: each part's `name` and `filename` and its content (the first
//! `max_value_bytes` of it), read as the body streams. The delimiter is matched with a
//! failure table (Knuth-Morris-Pratt), so one cut between two reads, or content full of
//! near-delimiters, costs no re-scan and no copy of the body: only the matched prefix of
//! the delimiter is carried between reads.

use memchr::memchr;

use super::Out;
use crate::detect::inputs::Source;

/// A part's header section is at most this long; a longer one is read as content.
const MAX_PART_HEAD: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter (the preamble is ignored).
    Preamble,
    /// After a delimiter: `--` ends the body, anything else starts a part's head. Holds the
    /// first byte when it was `-`.
    AfterDelimiter(Option<u8>),
    Head,
    Content,
    /// After the closing delimiter (the epilogue is ignored).
    End,
}

#[derive(Debug)]
pub(super) struct MultipartScan {
    /// `--boundary`.
    delimiter: Vec<u8>,
    /// KMP failure function of `delimiter`.
    fail: Vec<usize>,
    /// Delimiter bytes matched so far.
    matched: usize,
    state: State,
    head: Vec<u8>,
    name: String,
    content: Vec<u8>,
    /// Content bytes of this part, kept or not.
    content_len: usize,
    max_value: usize,
}

impl MultipartScan {
    pub(super) fn new(boundary: &str, max_value_bytes: usize) -> Self {
        let delimiter = format!("--{boundary}").into_bytes();
        let mut fail = vec![0; delimiter.len()];
        let mut k = 0;
        for i in 1..delimiter.len() {
            while k > 0 && delimiter[i] != delimiter[k] {
                k = fail[k - 1];
            }
            if delimiter[i] == delimiter[k] {
                k += 1;
            }
            fail[i] = k;
        }
        Self {
            delimiter,
            fail,
            matched: 0,
            state: State::Preamble,
            head: Vec::new(),
            name: String::new(),
            content: Vec::new(),
            content_len: 0,
            max_value: max_value_bytes.saturating_add(4),
        }
    }

    pub(super) fn retained_bytes(&self) -> usize {
        self.delimiter.len() * 9
            + self.head.capacity()
            + self.name.capacity()
            + self.content.capacity()
    }

    pub(super) fn feed(&mut self, data: &[u8], out: &mut Out<'_>) {
        let mut rest = data;
        while !rest.is_empty() {
            let used = match self.state {
                State::End => return,
                State::Preamble | State::Content => match self.find_delimiter(rest) {
                    Some(end) => {
                        if self.state == State::Content {
                            self.end_part(out);
                        }
                        self.state = State::AfterDelimiter(None);
                        end
                    }
                    None => rest.len(),
                },
                State::AfterDelimiter(None) => {
                    if rest[0] == b'-' {
                        self.state = State::AfterDelimiter(Some(b'-'));
                        1
                    } else {
                        self.begin_head(&[]);
                        0
                    }
                }
                State::AfterDelimiter(Some(_)) => {
                    if rest[0] == b'-' {
                        self.state = State::End;
                        1
                    } else {
                        self.begin_head(b"-");
                        0
                    }
                }
                State::Head => self.head_bytes(rest, out),
            };
            rest = rest.get(used..).unwrap_or_default();
        }
    }

    /// The body ended: a part cut short is still judged.
    pub(super) fn finish(&mut self, out: &mut Out<'_>) {
        if self.state == State::Content {
            let m = self.matched;
            self.content_bytes_from_delimiter(m);
            self.end_part(out);
        }
        self.state = State::End;
    }

    fn begin_head(&mut self, first: &[u8]) {
        self.head.clear();
        self.head.extend_from_slice(first);
        self.state = State::Head;
    }

    /// Collects a part's head up to its blank line; returns the bytes used.
    fn head_bytes(&mut self, rest: &[u8], out: &mut Out<'_>) -> usize {
        let from = self.head.len().saturating_sub(3);
        let room = MAX_PART_HEAD.saturating_sub(self.head.len());
        let take = rest.len().min(room);
        self.head.extend_from_slice(&rest[..take]);
        let end = find_blank_line(&self.head[from..]).map(|(at, len)| (from + at, len));
        match end {
            Some((at, len)) => {
                let used = (at + len).saturating_sub(self.head.len() - take);
                let head = String::from_utf8_lossy(&self.head[..at]).into_owned();
                self.head.clear();
                self.begin_content(&head, out);
                used
            }
            None if take < rest.len() || self.head.len() >= MAX_PART_HEAD => {
                // No blank line in sight: a part without headers, all content.
                let head = std::mem::take(&mut self.head);
                self.begin_content("", out);
                self.push_content(&head);
                take
            }
            None => take,
        }
    }

    fn begin_content(&mut self, head: &str, out: &mut Out<'_>) {
        let param = |key: &str| {
            head.split(['\n', ';'])
                .find_map(|p| p.trim().strip_prefix(key))
                .map(|n| n.trim_matches(|c: char| c == '"' || c.is_whitespace()))
        };
        self.name = param("name=").unwrap_or("").to_owned();
        // Uploaded file names reach the file system: `../../x`, `shell.php`.
        if let Some(file) = param("filename=").filter(|f| !f.is_empty()) {
            let name = format!("{}.filename", self.name);
            out.value(Source::Form, &name, file.as_bytes());
        }
        self.content.clear();
        self.content_len = 0;
        self.matched = 0;
        self.state = State::Content;
    }

    fn end_part(&mut self, out: &mut Out<'_>) {
        let mut value: &[u8] = &self.content;
        if self.content_len == self.content.len() {
            // The line break before the delimiter belongs to it.
            value = value
                .strip_suffix(b"\r\n")
                .or(value.strip_suffix(b"\n"))
                .unwrap_or(value);
        }
        if !self.name.is_empty() {
            out.value(Source::ArgName, "", self.name.as_bytes());
        }
        out.value(Source::Form, &self.name, value);
        self.content.clear();
        self.content_len = 0;
    }

    fn push_content(&mut self, bytes: &[u8]) {
        if self.state == State::Content {
            self.content_len = self.content_len.saturating_add(bytes.len());
            super::append_bounded(&mut self.content, bytes, self.max_value);
        }
    }

    /// The first `n` bytes of the delimiter turned out to be content.
    fn content_bytes_from_delimiter(&mut self, n: usize) {
        if n > 0 && self.state == State::Content {
            let d = std::mem::take(&mut self.delimiter);
            self.push_content(&d[..n]);
            self.delimiter = d;
        }
    }

    /// Scans `data` for the rest of a delimiter; returns the bytes up to its end, if it
    /// ends in `data`. Everything before it is part content.
    fn find_delimiter(&mut self, data: &[u8]) -> Option<usize> {
        let d0 = self.delimiter[0];
        let mut i = 0;
        // Start of the bytes not yet passed on as content (outside a partial match).
        let mut run = 0;
        while i < data.len() {
            if self.matched == 0 {
                match memchr(d0, &data[i..]) {
                    None => {
                        self.push_content(&data[run..]);
                        return None;
                    }
                    Some(k) => i += k,
                }
                self.push_content(&data[run..i]);
                self.matched = 1;
                i += 1;
                run = i;
                if self.matched == self.delimiter.len() {
                    self.matched = 0;
                    return Some(i);
                }
                continue;
            }
            let b = data[i];
            while self.matched > 0 && b != self.delimiter[self.matched] {
                let keep = self.fail[self.matched - 1];
                self.content_bytes_from_delimiter(self.matched - keep);
                self.matched = keep;
            }
            if b == self.delimiter[self.matched] {
                self.matched += 1;
            } else {
                self.push_content(&[b]);
            }
            i += 1;
            run = i;
            if self.matched == self.delimiter.len() {
                self.matched = 0;
                return Some(i);
            }
        }
        None
    }
}

/// Where the blank line ending a head is, and its length (`\r\n\r\n` or `\n\n`).
fn find_blank_line(head: &[u8]) -> Option<(usize, usize)> {
    let crlf = memchr::memmem::find(head, b"\r\n\r\n").map(|at| (at, 4));
    let lf = memchr::memmem::find(head, b"\n\n").map(|at| (at, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}
