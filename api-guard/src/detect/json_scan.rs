//! A streaming scan of a JSON body for its strings, without building a document: strings
//! without escapes are borrowed from the body, paths (`$.user.tags[1]`) are kept in one
//! reused buffer. A body cut short (capture limits) still yields the strings before the cut.
//! Nesting deeper than the limit is skipped iteratively, so hostile depth costs no stack.
//! The lexing is [`crate::json`]'s, in its lenient dialect (what a tolerant back end
//! would accept is what an attacker can send).

use std::borrow::Cow;

use crate::json::{Dialect, Token, Tokenizer};

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
        tok: Tokenizer::new(body, Dialect::Lenient, max_depth),
        path: String::from("$"),
        out: Scanned::default(),
        stopped: false,
    };
    let ok = s.pull().and_then(|ev| s.value(ev, &mut emit)).is_some();
    s.out.complete = ok && !s.stopped && matches!(s.tok.next(), Ok(None));
    s.out
}

struct Scanner<'a> {
    tok: Tokenizer<'a>,
    path: String,
    out: Scanned,
    stopped: bool,
}

impl<'a> Scanner<'a> {
    /// The next event; `None` at an error (or the end, which no caller expects).
    #[inline(always)]
    fn pull(&mut self) -> Option<Token<'a>> {
        self.tok.next().ok().flatten().map(|ev| ev.token)
    }

    /// The value that starts with `first`. `None`: malformed, cut short, or stopped by
    /// `emit`. Recursion is bounded by the tokenizer's depth limit.
    fn value(
        &mut self,
        first: Token<'a>,
        emit: &mut impl FnMut(Found<'_, 'a>) -> bool,
    ) -> Option<()> {
        match first {
            Token::TooDeep { .. } => {
                self.out.too_deep += 1;
                Some(())
            }
            Token::ObjectStart => self.object(emit),
            Token::ArrayStart => self.array(emit),
            Token::String(s) => self.found(s.unescape_lossy(), false, emit),
            Token::Number(_) | Token::Bool(_) | Token::Null => Some(()),
            Token::ObjectEnd | Token::ArrayEnd | Token::Key(_) => None,
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

    fn object(&mut self, emit: &mut impl FnMut(Found<'_, 'a>) -> bool) -> Option<()> {
        loop {
            let key = match self.pull()? {
                Token::Key(key) => key.unescape_lossy(),
                Token::ObjectEnd => return Some(()),
                _ => return None,
            };
            let len = self.path.len();
            self.path.push('.');
            self.path.push_str(&key);
            let result = self
                .found(key, true, emit)
                .and_then(|()| self.pull())
                .and_then(|ev| self.value(ev, emit));
            self.path.truncate(len);
            result?;
        }
    }

    fn array(&mut self, emit: &mut impl FnMut(Found<'_, 'a>) -> bool) -> Option<()> {
        let mut index = 0usize;
        loop {
            let first = self.pull()?;
            if first == Token::ArrayEnd {
                return Some(());
            }
            let len = self.path.len();
            self.path.push('[');
            self.path.push_str(itoa(index, &mut [0; 20]));
            self.path.push(']');
            let result = self.value(first, emit);
            self.path.truncate(len);
            result?;
            index += 1;
        }
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
