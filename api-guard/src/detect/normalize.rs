//! Undoing the encodings attackers layer over payloads before matching: repeated URL
//! decoding (`%2527` → `%27` → `'`), `%uXXXX`, HTML entities, `\uXXXX` / `\xHH` escapes, NUL
//! bytes. Every step only shrinks the text, so the work is linear in the input.

use std::borrow::Cow;

use super::inputs::hex;

/// URL-decoding passes at most (each undoes one layer of encoding).
const MAX_PASSES: usize = 3;

/// The value with every layer of encoding removed that is found (at most [`MAX_PASSES`]
/// rounds). Borrowed when there was nothing to decode.
pub fn decode(s: &str) -> Cow<'_, str> {
    let mut cur = Cow::Borrowed(s);
    for _ in 0..MAX_PASSES {
        match decode_once(&cur) {
            Some(next) => cur = Cow::Owned(next),
            None => break,
        }
    }
    cur
}

/// One round of decoding, `None` when nothing changed.
fn decode_once(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if !b.iter().any(|&c| matches!(c, b'%' | b'&' | b'\\' | 0)) {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut changed = false;
    while i < b.len() {
        let c = b[i];
        let (decoded, used) = match c {
            b'%' => percent(&b[i..]),
            b'&' => entity(&b[i..]),
            b'\\' => backslash(&b[i..]),
            0 => (Some(Decoded::Skip), 1),
            _ => (None, 1),
        };
        match decoded {
            Some(Decoded::Byte(v)) => {
                out.push(v);
                changed = true;
            }
            Some(Decoded::Char(ch)) => {
                let mut buf = [0; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                changed = true;
            }
            Some(Decoded::Skip) => changed = true,
            None => out.push(c),
        }
        i += if decoded.is_some() { used } else { 1 };
    }
    if !changed {
        return None;
    }
    Some(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

#[derive(Debug, Clone, Copy)]
enum Decoded {
    Byte(u8),
    Char(char),
    Skip,
}

fn hex_value(digits: &[u8]) -> Option<u32> {
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc << 4 | u32::from(hex(d)?)))
}

/// `%XX` or `%uXXXX`.
fn percent(b: &[u8]) -> (Option<Decoded>, usize) {
    if b.len() >= 6 && (b[1] == b'u' || b[1] == b'U') {
        if let Some(v) = hex_value(&b[2..6]) {
            return (char::from_u32(v).map(Decoded::Char), 6);
        }
    }
    if b.len() >= 3 {
        if let (Some(h), Some(l)) = (hex(b[1]), hex(b[2])) {
            return (Some(Decoded::Byte(h << 4 | l)), 3);
        }
    }
    (None, 1)
}

/// `\uXXXX`, `\xHH`.
fn backslash(b: &[u8]) -> (Option<Decoded>, usize) {
    match b.get(1) {
        Some(b'u') | Some(b'U') if b.len() >= 6 => match hex_value(&b[2..6]) {
            Some(v) => (char::from_u32(v).map(Decoded::Char), 6),
            None => (None, 1),
        },
        Some(b'x') | Some(b'X') if b.len() >= 4 => match hex_value(&b[2..4]) {
            Some(v) => (Some(Decoded::Byte(v as u8)), 4),
            None => (None, 1),
        },
        _ => (None, 1),
    }
}

/// `&lt;`, `&#60;`, `&#x3c;` (the `;` may be missing, as browsers allow).
fn entity(b: &[u8]) -> (Option<Decoded>, usize) {
    const NAMED: &[(&[u8], char)] = &[
        (b"lt", '<'),
        (b"gt", '>'),
        (b"quot", '"'),
        (b"apos", '\''),
        (b"amp", '&'),
        (b"sol", '/'),
        (b"bsol", '\\'),
        (b"lpar", '('),
        (b"rpar", ')'),
        (b"colon", ':'),
        (b"semi", ';'),
        (b"tab", '\t'),
        (b"newline", '\n'),
        (b"nbsp", ' '),
    ];
    let rest = &b[1..];
    if rest.first() == Some(&b'#') {
        let (digits, radix) = match rest.get(1) {
            Some(b'x') | Some(b'X') => (&rest[2..], 16),
            _ => (&rest[1..], 10),
        };
        let n = digits
            .iter()
            .take(8)
            .take_while(|d| (*d).is_ascii_hexdigit() && (radix == 16 || d.is_ascii_digit()))
            .count();
        if n == 0 {
            return (None, 1);
        }
        let text = std::str::from_utf8(&digits[..n]).unwrap_or("");
        let Some(ch) = u32::from_str_radix(text, radix)
            .ok()
            .and_then(char::from_u32)
        else {
            return (None, 1);
        };
        let prefix = 1 + (rest.len() - digits.len()) + n;
        let semi = usize::from(b.get(prefix) == Some(&b';'));
        return (Some(Decoded::Char(ch)), prefix + semi);
    }
    for &(name, ch) in NAMED {
        if rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name) {
            let semi = usize::from(rest.get(name.len()) == Some(&b';'));
            return (Some(Decoded::Char(ch)), 1 + name.len() + semi);
        }
    }
    (None, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_undone() {
        assert_eq!(decode("%2527"), "'");
        assert_eq!(decode("%253Cscript%253E"), "<script>");
        assert_eq!(decode("&lt;b&gt;"), "<b>");
        assert_eq!(decode("&#60;&#x3C;&#x3c"), "<<<");
        assert_eq!(decode("\\u003cimg\\x3e"), "<img>");
        assert_eq!(decode("%u003c"), "<");
        assert_eq!(decode("a\0b"), "ab");
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(
            decode("O'Brien & sons"),
            Cow::Owned(_) | Cow::Borrowed(_)
        ));
        assert!(matches!(decode("plain words"), Cow::Borrowed(_)));
        assert_eq!(decode("100% sure & more"), "100% sure & more");
    }

    #[test]
    fn hostile_input_is_bounded() {
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("&#"), "&#");
        assert_eq!(decode("&#99999999999;"), "&#99999999999;");
        assert_eq!(decode("\\u12"), "\\u12");
        assert_eq!(decode("%ff%fe"), "\u{fffd}\u{fffd}");
        let deep = "%25".repeat(1000) + "41";
        assert!(decode(&deep).len() <= deep.len());
    }
}
