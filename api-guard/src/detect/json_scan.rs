//! A streaming scan of a JSON body for its strings, without building a document: strings
//! without escapes are borrowed from the body, paths (`$.user.tags[1]`) are kept in one
//! reused buffer. A body cut short (capture limits) still yields the strings before the cut.
//! Nesting deeper than the limit is skipped iteratively, so hostile depth costs no stack.

use std::borrow::Cow;

/// What the scan saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    /// The body was well-formed JSON to its end.
    pub complete: bool,
    /// Strings emitted.
    pub strings: usize,
    /// Containers skipped for being nested too deep.
    pub too_deep: usize,
}

/// One string of the document: its path, the value, and whether it is an object key.
pub struct Found<'p, 'a> {
    pub path: &'p str,
    pub value: Cow<'a, str>,
    pub is_key: bool,
}

/// Calls `emit` for every string (values, and keys) in `body`; `emit` returns false to stop.
pub fn scan<'a>(
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
            Some(acc << 4 | u32::from(super::inputs::hex(d)?))
        })?;
        self.i += 4;
        Some(v)
    }
}

fn itoa(mut n: usize, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(body: &str, depth: usize) -> (Vec<(String, String, bool)>, Scanned) {
        let mut v = Vec::new();
        let s = scan(body.as_bytes(), depth, |f| {
            v.push((f.path.to_owned(), f.value.into_owned(), f.is_key));
            true
        });
        (v, s)
    }

    #[test]
    fn strings_keys_and_paths() {
        let (v, s) = all(
            r#" {"a":{"b":["x","y\n\u00e9\ud83d\ude00"]},"n":-1.5e3,"t":true,"z":null} "#,
            32,
        );
        assert!(s.complete);
        assert_eq!(
            v,
            [
                ("$.a", "a", true),
                ("$.a.b", "b", true),
                ("$.a.b[0]", "x", false),
                ("$.a.b[1]", "y\né😀", false),
                ("$.n", "n", true),
                ("$.t", "t", true),
                ("$.z", "z", true),
            ]
            .map(|(p, v, k)| (p.to_owned(), v.to_owned(), k))
        );
    }

    #[test]
    fn cut_short_bodies_keep_what_came_before() {
        let (v, s) = all(r#"{"a":"first","b":"sec"#, 32);
        assert!(!s.complete);
        assert_eq!(v.iter().filter(|x| !x.2).count(), 1);
    }

    #[test]
    fn depth_is_bounded_without_recursion() {
        let deep = format!("{}\"x\"{}", "[".repeat(100_000), "]".repeat(100_000));
        let (v, s) = all(&deep, 32);
        assert!(v.is_empty());
        assert_eq!(s.too_deep, 1);
        assert!(s.complete);
        let unbalanced = "[".repeat(100_000);
        let (_, s) = all(&unbalanced, 32);
        assert!(!s.complete);
    }

    #[test]
    fn not_json_and_bad_escapes() {
        assert!(!all("hello", 32).1.complete);
        assert!(!all("", 32).1.complete);
        let (v, _) = all(r#"["\ud800x", "\u12"]"#, 32);
        assert_eq!(v[0].1, "\u{fffd}x");
        assert_eq!(v.len(), 1);
        let (v, _) = all("[\"\u{0}\u{7f}\"]", 32);
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn stops_when_asked() {
        let mut n = 0;
        let s = scan(br#"["a","b","c"]"#, 32, |_| {
            n += 1;
            n < 2
        });
        assert_eq!(n, 2);
        assert!(!s.complete);
    }
}
