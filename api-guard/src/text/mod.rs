//! Small string helpers shared by events, policies and detectors.

mod percent;

pub use percent::{hex_digit, hex_value, parse_hex, percent_decode, percent_decode_bytes};

/// `raw` as text, invalid UTF-8 replaced by U+FFFD: [`String::from_utf8_lossy`], with the
/// common valid case first checked by [`std::str::from_utf8`], whose ASCII fast path is
/// several times cheaper per byte than the lossy scan.
pub fn utf8_lossy(raw: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(raw),
    }
}

/// Appends `n` in decimal to `out` (what `write!(out, "{n}")` writes, without the
/// formatting machinery).
pub fn push_decimal(out: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn lossy_text_is_std_lossy_text() {
        for raw in [
            &b""[..],
            b"abc",
            "h\u{e9}llo".as_bytes(),
            b"a\xffb",
            b"\xc3",
            b"\xe2\x82",
        ] {
            assert_eq!(utf8_lossy(raw), String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn decimals_are_formatted_decimals() {
        for n in [0, 1, 9, 10, 99, 100, 12345, usize::MAX] {
            let mut s = String::from("[");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("[{n}"));
        }
    }
}
