//! The scanner this module had before it used the shared tokenizer, kept verbatim as the
//! reference of a differential test: the lexing moved, the behaviour must not change.

use std::borrow::Cow;

use super::{itoa, Found, Scanned};

pub(super) fn scan<'a>(
    body: &'a [u8],
    max_depth: usize,
    mut emit: impl FnMut(Found<'_, 'a>) -> bool,
) -> Scanned {
    let mut s = Scanner {
        b: body,
        i: 0,
        path: String::from("$"),
        out: Scanned::default(),
        stopped: false,
    };
    let ok = s.value(0, max_depth, &mut emit).is_some();
    s.ws();
    s.out.complete = ok && !s.stopped && s.i == body.len();
    s.out
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    path: String,
    out: Scanned,
    stopped: bool,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips whitespace and consumes `c` if it comes next.
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let next = self.peek() == Some(c);
        self.i += usize::from(next);
        next
    }

    /// After a member: `Some(true)` at the container's `close`, `Some(false)` after a comma.
    fn next_member(&mut self, close: u8) -> Option<bool> {
        if self.eat(b',') {
            Some(false)
        } else {
            self.eat(close).then_some(true)
        }
    }

    /// `None`: malformed, cut short, or stopped by `emit`.
    fn value(
        &mut self,
        depth: usize,
        max_depth: usize,
        emit: &mut impl FnMut(Found<'_, 'a>) -> bool,
    ) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'{' | b'[' if depth >= max_depth => {
                self.out.too_deep += 1;
                self.skip_container()
            }
            b'{' => self.object(depth + 1, max_depth, emit),
            b'[' => self.array(depth + 1, max_depth, emit),
            b'"' => {
                let value = self.string()?;
                self.found(value, false, emit)
            }
            b't' | b'f' | b'n' | b'-' | b'0'..=b'9' => {
                let start = self.i;
                while matches!(
                    self.peek(),
                    Some(b'a'..=b'z' | b'0'..=b'9' | b'.' | b'+' | b'-' | b'E')
                ) {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
            _ => None,
        }
    }

    fn found(
        &mut self,
        value: Cow<'a, str>,
        is_key: bool,
        emit: &mut impl FnMut(Found<'_, 'a>) -> bool,
    ) -> Option<()> {
        self.out.strings += 1;
        if emit(Found {
            path: &self.path,
            value,
            is_key,
        }) {
            Some(())
        } else {
            self.stopped = true;
            None
        }
    }

    fn object(
        &mut self,
        depth: usize,
        max_depth: usize,
        emit: &mut impl FnMut(Found<'_, 'a>) -> bool,
    ) -> Option<()> {
        self.i += 1;
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.ws();
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            let len = self.path.len();
            self.path.push('.');
            self.path.push_str(&key);
            let result = self
                .found(key, true, emit)
                .and_then(|()| self.value(depth, max_depth, emit));
            self.path.truncate(len);
            result?;
            if self.next_member(b'}')? {
                return Some(());
            }
        }
    }

    fn array(
        &mut self,
        depth: usize,
        max_depth: usize,
        emit: &mut impl FnMut(Found<'_, 'a>) -> bool,
    ) -> Option<()> {
        self.i += 1;
        if self.eat(b']') {
            return Some(());
        }
        let mut index = 0usize;
        loop {
            let len = self.path.len();
            self.path.push('[');
            self.path.push_str(itoa(index, &mut [0; 20]));
            self.path.push(']');
            let result = self.value(depth, max_depth, emit);
            self.path.truncate(len);
            result?;
            index += 1;
            if self.next_member(b']')? {
                return Some(());
            }
        }
    }

    /// Skips a whole container by counting brackets outside strings.
    fn skip_container(&mut self) -> Option<()> {
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return Some(());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        None
    }

    /// A string starting at the opening quote; borrowed unless it has escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.i += 1;
        let start = self.i;
        let b = self.b;
        self.i += memchr::memchr2(b'"', b'\\', b.get(start..)?)?;
        if b[self.i] == b'"' {
            let raw = &b[start..self.i];
            self.i += 1;
            return Some(match std::str::from_utf8(raw) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => Cow::Owned(String::from_utf8_lossy(raw).into_owned()),
            });
        }
        let mut out: Vec<u8> = b[start..self.i].to_vec();
        loop {
            let c = *b.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *b.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let ch = self.unicode_escape()?;
                            let mut buf = [0; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
        Some(Cow::Owned(match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }))
    }

    /// The four hex digits after `\u` (and a low surrogate after a high one); unpaired
    /// surrogates become U+FFFD.
    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.b.get(self.i..self.i + 2) == Some(b"\\u") {
            self.i += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Some(char::from_u32(c).unwrap_or('\u{fffd}'));
            }
            return Some('\u{fffd}');
        }
        Some(char::from_u32(hi).unwrap_or('\u{fffd}'))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.b.get(self.i..self.i + 4)?;
        let v = digits.iter().try_fold(0u32, |acc, &d| {
            Some(acc << 4 | u32::from(crate::text::hex_value(d)?))
        })?;
        self.i += 4;
        Some(v)
    }
}
