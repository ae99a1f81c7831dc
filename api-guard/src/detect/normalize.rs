//! Undoing the encodings attackers layer over payloads before matching: repeated URL
//! decoding (`%2527` → `%27` → `'`), `%uXXXX`, HTML entities, `\uXXXX` / `\xHH` escapes, NUL
//! bytes, fullwidth ASCII look-alikes (`＜script＞`). Every step only shrinks the text, so the
//! work is linear in the input. [`sql_fold`] and [`js_compact`] give checkers shared, bounded
//! canonical forms for keyword matching.

use std::borrow::Cow;

use crate::text::{hex_value as hex, parse_hex as hex_value};

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
    if !b
        .iter()
        .any(|&c| matches!(c, b'%' | b'&' | b'\\' | 0 | 0xef))
    {
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
            0xef => fullwidth(&b[i..]),
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

/// Fullwidth forms U+FF01..U+FF5E (`EF BC 81`..`EF BD 9E`), which some back ends fold to
/// ASCII (NFKC), as the ASCII character.
fn fullwidth(b: &[u8]) -> (Option<Decoded>, usize) {
    match (b.get(1), b.get(2)) {
        (Some(0xbc), Some(&c)) if (0x81..=0xbf).contains(&c) => {
            (Some(Decoded::Byte(c - 0x81 + 0x21)), 3)
        }
        (Some(0xbd), Some(&c)) if (0x80..=0x9e).contains(&c) => {
            (Some(Decoded::Byte(c - 0x80 + 0x60)), 3)
        }
        _ => (None, 1),
    }
}

/// `\uXXXX`, `\xHH` (as the code point U+00HH, as JavaScript reads it).
fn backslash(b: &[u8]) -> (Option<Decoded>, usize) {
    match b.get(1) {
        Some(b'u') | Some(b'U') if b.len() >= 6 => match hex_value(&b[2..6]) {
            Some(v) => (char::from_u32(v).map(Decoded::Char), 6),
            None => (None, 1),
        },
        Some(b'x') | Some(b'X') if b.len() >= 4 => match hex_value(&b[2..4]) {
            Some(v) => (char::from_u32(v).map(Decoded::Char), 4),
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
        // Browsers read any number of leading zeros (`&#0000000060;`); skip a bounded run so
        // padding cannot push the code point past the digit limit below.
        const MAX_ZEROS: usize = 256;
        let zeros = digits
            .iter()
            .take(MAX_ZEROS + 1)
            .take_while(|&&d| d == b'0')
            .count();
        if zeros > MAX_ZEROS {
            return (None, 1);
        }
        let is_digit = |d: &u8| d.is_ascii_digit() || (radix == 16 && d.is_ascii_hexdigit());
        // All zeros (`&#0000;`): keep one so the value still parses (as NUL).
        let zeros = if digits.get(zeros).is_some_and(is_digit) {
            zeros
        } else {
            zeros.saturating_sub(1)
        };
        let digits = &digits[zeros..];
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

/// Lowercased ASCII, SQL comments neutralised and whitespace runs collapsed, for keyword
/// matching: `/*...*/` becomes a space, MySQL's executable `/*!50000 ... */` keeps its content,
/// `#` / `--` comments that end at a newline become a space (an unterminated one at the end
/// is kept: it is a signal of its own). Linear; the output is never longer than the input.
pub fn sql_fold(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    let mut space = true;
    let push_space = |out: &mut String, space: &mut bool| {
        if !*space {
            out.push(' ');
            *space = true;
        }
    };
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            if b.get(i + 2) == Some(&b'!') {
                // Executable comment: drop the marker and version, keep the SQL.
                i += 3;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            } else {
                match find(&b[i + 2..], b"*/") {
                    Some(end) => i += 2 + end + 2,
                    None => i = b.len(),
                }
            }
            push_space(&mut out, &mut space);
            continue;
        }
        if c == b'*' && b.get(i + 1) == Some(&b'/') {
            // Close of an executable comment.
            i += 2;
            push_space(&mut out, &mut space);
            continue;
        }
        let line_comment = c == b'#' || (c == b'-' && b.get(i + 1) == Some(&b'-'));
        if line_comment {
            if let Some(nl) = b[i..].iter().position(|&x| x == b'\n') {
                i += nl + 1;
                push_space(&mut out, &mut space);
                continue;
            }
        }
        if c.is_ascii_whitespace() || c == 0x0b {
            push_space(&mut out, &mut space);
            i += 1;
            continue;
        }
        if c.is_ascii() {
            out.push(char::from(c.to_ascii_lowercase()));
            space = false;
            i += 1;
            continue;
        }
        // Copy one multi-byte character.
        let len = utf8_len(c);
        let end = (i + len).min(b.len());
        if let Some(ch) = s.get(i..end) {
            out.push_str(ch);
        }
        if let Some(last) = out.pop() {
            out.push(last.to_ascii_lowercase());
        }
        space = false;
        i = end;
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Lowercased ASCII with whitespace, control characters and `/*...*/` comments removed: the
/// form browsers and JavaScript engines effectively read `java\tscript:` or
/// `document /*x*/ . cookie` in. Linear; never longer than the input.
pub fn js_compact(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            match find(&b[i + 2..], b"*/") {
                Some(end) => i += 2 + end + 2,
                None => i = b.len(),
            }
            continue;
        }
        if c.is_ascii_whitespace() || c.is_ascii_control() {
            i += 1;
            continue;
        }
        if c.is_ascii() {
            out.push(char::from(c.to_ascii_lowercase()));
            i += 1;
            continue;
        }
        // Non-ASCII characters have no ASCII case to fold: copied as they are.
        let len = utf8_len(c);
        let end = (i + len).min(b.len());
        if let Some(ch) = s.get(i..end) {
            out.push_str(ch);
        }
        i = end;
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
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
        assert_eq!(decode("&#00000000060;&#x000000000003c;"), "<<");
        assert_eq!(decode(&format!("&#{}60;", "0".repeat(100))), "<");
        let padded = format!("&#{}60;", "0".repeat(300));
        assert_eq!(decode(&padded), padded);
        assert_eq!(decode("&#0000;x"), "x");
        assert_eq!(decode("\\u003cimg\\x3e"), "<img>");
        assert_eq!(decode("%u003c"), "<");
        assert_eq!(decode("a\0b"), "ab");
        assert_eq!(decode("\u{ff1c}script\u{ff1e}"), "<script>");
        assert_eq!(decode("%uff1cscript%uff1e"), "<script>");
        // `\xHH` is the code point U+00HH, as in JavaScript.
        assert_eq!(decode("\\xbcscript"), "\u{bc}script");
    }

    #[test]
    fn sql_fold_strips_comments_and_case() {
        assert_eq!(sql_fold("UnIoN/**/SeLeCt"), "union select");
        assert_eq!(sql_fold("/*!50000select*/ 1"), "select 1");
        assert_eq!(
            sql_fold("union#x\ndistinctrow\x0bselect"),
            "union distinctrow select"
        );
        assert_eq!(sql_fold("1 -- end"), "1 -- end");
        assert_eq!(sql_fold("  a \t\r\n b  "), "a b");
        assert_eq!(sql_fold("/* open"), "");
        assert_eq!(sql_fold("Ünï O'Brien"), "Ünï o'brien");
    }

    #[test]
    fn folds_keep_non_ascii() {
        assert_eq!(js_compact("AbÇ é/*x*/D"), "abÇéd");
        assert_eq!(sql_fold("SELECT Ünï/**/X"), "select Ünï x");
    }

    #[test]
    fn js_compact_removes_layout() {
        assert_eq!(js_compact("document /*x*/ . Cookie"), "document.cookie");
        assert_eq!(js_compact("java\tscript\n:"), "javascript:");
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
