//! Percent-decoding and hex digits, one implementation for every reader of URLs, forms,
//! escapes and chunk sizes.

use std::borrow::Cow;

/// The value of one hex digit (either case).
#[inline]
pub fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The value of up to eight hex digits; `None` if any is not one (or there are none).
pub fn parse_hex(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    digits
        .iter()
        .try_fold(0u32, |acc, &d| Some(acc << 4 | u32::from(hex_value(d)?)))
}

/// The lowercase hex digit of the low four bits of `nibble`.
#[inline]
pub fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0xf)])
}

/// The bytes of `raw` with `%XX` escapes decoded once (and `+` as space when `form`);
/// malformed escapes stay as they are. Allocates nothing.
pub fn percent_decode_bytes(raw: &[u8], form: bool) -> PercentDecoded<'_> {
    PercentDecoded { raw, i: 0, form }
}

/// The iterator of [`percent_decode_bytes`].
pub struct PercentDecoded<'a> {
    raw: &'a [u8],
    i: usize,
    form: bool,
}

impl Iterator for PercentDecoded<'_> {
    type Item = u8;

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let b = self.raw;
        let c = *b.get(self.i)?;
        self.i += 1;
        match c {
            b'%' => {
                let h = b.get(self.i).and_then(|&d| hex_value(d));
                let l = b.get(self.i + 1).and_then(|&d| hex_value(d));
                if let (Some(h), Some(l)) = (h, l) {
                    self.i += 2;
                    return Some(h << 4 | l);
                }
                Some(b'%')
            }
            b'+' if self.form => Some(b' '),
            c => Some(c),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.raw.len() - self.i;
        (left.div_ceil(3), Some(left))
    }
}

/// Decodes `%XX` escapes once (and `+` as space when `form`, as in
/// `application/x-www-form-urlencoded`); malformed escapes stay as they are, invalid UTF-8
/// becomes U+FFFD. Borrows when there is nothing to decode.
pub fn percent_decode(s: &str, form: bool) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || (form && b == b'+')) {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    out.extend(percent_decode_bytes(s.as_bytes(), form));
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits_both_ways() {
        for n in 0..16u8 {
            let c = hex_digit(n);
            assert_eq!(hex_value(c as u8), Some(n));
            assert_eq!(hex_value(c.to_ascii_uppercase() as u8), Some(n));
        }
        assert_eq!(hex_digit(0x1f), 'f');
        assert_eq!([b'g', b'G', b'/', b':', b' '].map(hex_value), [None; 5]);
        assert_eq!(parse_hex(b"00e9"), Some(0xe9));
        assert_eq!(parse_hex(b"ffffffff"), Some(u32::MAX));
        assert_eq!(parse_hex(b"fffffffff"), None);
        assert_eq!(parse_hex(b""), None);
        assert_eq!(parse_hex(b"1x"), None);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("a+c", false), "a+c");
        assert!(matches!(percent_decode("a+c", false), Cow::Borrowed(_)));
        assert_eq!(percent_decode("%zz%4", true), "%zz%4");
        assert_eq!(percent_decode("%ff", true), "\u{fffd}");
        assert_eq!(percent_decode("%", true), "%");
        assert_eq!(percent_decode("%C3%A9%2b", false), "é+");
        assert_eq!(percent_decode("%%41", false), "%A");
        let bytes: Vec<u8> = percent_decode_bytes(b"a%2Fb%zz%4%", false).collect();
        assert_eq!(bytes, b"a/b%zz%4%");
    }

    /// Every string over a small alphabet decodes as the byte-at-a-time definition says.
    #[test]
    fn matches_the_definition_on_every_short_string() {
        let alphabet = b"%+4aZg";
        for len in 0..=5u32 {
            for mut n in 0..alphabet.len().pow(len) {
                let s: String = (0..len)
                    .map(|_| {
                        let c = alphabet[n % alphabet.len()];
                        n /= alphabet.len();
                        c as char
                    })
                    .collect();
                for form in [false, true] {
                    let b = s.as_bytes();
                    let mut want = Vec::new();
                    let mut i = 0;
                    while i < b.len() {
                        let h = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
                        match (b[i], h(i + 1), h(i + 2)) {
                            (b'%', Some(h), Some(l)) => {
                                want.push((h * 16 + l) as u8);
                                i += 3;
                                continue;
                            }
                            (b'+', ..) if form => want.push(b' '),
                            (c, ..) => want.push(c),
                        }
                        i += 1;
                    }
                    let want = String::from_utf8_lossy(&want);
                    assert_eq!(percent_decode(&s, form), want, "{s:?} {form}");
                }
            }
        }
    }
}
