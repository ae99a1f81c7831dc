//! A string token's text, decoded only when a consumer asks for it.

use std::borrow::Cow;

use memchr::memchr;

use super::Str;
use crate::text::parse_hex;

impl<'a> Str<'a> {
    /// A string as written between quotes (for tests and other tokenizers' callers).
    pub fn from_raw(raw: &'a [u8]) -> Self {
        Str {
            raw,
            escaped: raw.contains(&b'\\'),
        }
    }

    /// The bytes between the quotes, escapes undecoded.
    #[inline]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    pub fn has_escapes(&self) -> bool {
        self.escaped
    }

    /// The text, borrowed, when it has no escapes and is valid UTF-8.
    #[inline]
    pub fn plain(&self) -> Option<&'a str> {
        if self.escaped {
            return None;
        }
        std::str::from_utf8(self.raw).ok()
    }

    /// The text as a tolerant reader sees it: unknown escapes stand for the escaped
    /// character, unpaired surrogates and invalid UTF-8 become U+FFFD (a high surrogate
    /// followed by a `\u` escape that is no low surrogate takes that escape with it).
    /// Borrowed when there is nothing to decode.
    #[inline]
    pub fn unescape_lossy(&self) -> Cow<'a, str> {
        let raw = self.raw;
        if !self.escaped {
            return match std::str::from_utf8(raw) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => Cow::Owned(String::from_utf8_lossy(raw).into_owned()),
            };
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while let Some(off) = memchr(b'\\', &raw[i..]) {
            out.extend_from_slice(&raw[i..i + off]);
            i += off + 1;
            let Some(&e) = raw.get(i) else {
                break;
            };
            i += 1;
            match e {
                b'u' => {
                    let (c, used) = lossy_unicode(&raw[i..]);
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    i += used;
                }
                e => out.push(simple_escape(e).unwrap_or(e)),
            }
        }
        out.extend_from_slice(&raw[i..]);
        Cow::Owned(match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// The text as RFC 8259 (and serde_json) defines it: `None` for control characters,
    /// escapes other than JSON's, unpaired surrogates, or invalid UTF-8. Borrowed when there
    /// is nothing to decode.
    #[inline]
    pub fn unescape_strict(&self) -> Option<Cow<'a, str>> {
        let raw = self.raw;
        // Branch-free so that it vectorises: most strings are short and clean.
        if raw.iter().fold(false, |found, &b| found | (b < 0x20)) {
            return None;
        }
        if !self.escaped {
            return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while let Some(off) = memchr(b'\\', &raw[i..]) {
            out.extend_from_slice(&raw[i..i + off]);
            i += off + 1;
            let e = *raw.get(i)?;
            i += 1;
            if e != b'u' {
                out.push(simple_escape(e)?);
                continue;
            }
            let hi = parse_hex(raw.get(i..i + 4)?)?;
            i += 4;
            let c = match hi {
                0xD800..=0xDBFF => {
                    if raw.get(i..i + 2)? != b"\\u" {
                        return None;
                    }
                    let lo = parse_hex(raw.get(i + 2..i + 6)?)?;
                    i += 6;
                    if !(0xDC00..=0xDFFF).contains(&lo) {
                        return None;
                    }
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                }
                hi => char::from_u32(hi)?,
            };
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
        out.extend_from_slice(&raw[i..]);
        String::from_utf8(out).ok().map(Cow::Owned)
    }
}

/// What a one-character JSON escape stands for.
fn simple_escape(e: u8) -> Option<u8> {
    Some(match e {
        b'"' | b'\\' | b'/' => e,
        b'n' => b'\n',
        b't' => b'\t',
        b'r' => b'\r',
        b'b' => 8,
        b'f' => 12,
        _ => return None,
    })
}

/// The character of the `\u` escape whose hex digits start `rest`, and the bytes used.
fn lossy_unicode(rest: &[u8]) -> (char, usize) {
    let Some(hi) = rest.get(..4).and_then(parse_hex) else {
        return ('\u{fffd}', 0);
    };
    if (0xD800..0xDC00).contains(&hi) && rest.get(4..6) == Some(b"\\u") {
        return match rest.get(6..10).and_then(parse_hex) {
            Some(lo @ 0xDC00..=0xDFFF) => (
                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                    .unwrap_or('\u{fffd}'),
                10,
            ),
            Some(_) => ('\u{fffd}', 10),
            None => ('\u{fffd}', 4),
        };
    }
    (char::from_u32(hi).unwrap_or('\u{fffd}'), 4)
}
