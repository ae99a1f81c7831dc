//! Which path segments are identifiers. A segment is judged on its percent-decoded bytes
//! (decoded once, into a stack buffer, never stored); the template keeps the raw text of the
//! segments that stay literal. The rules lean towards keeping a segment literal: a word that
//! is wrongly made a parameter hides an endpoint, while an identifier wrongly kept literal is
//! still folded by the cardinality rule once its position has seen enough distinct values.

use crate::text::percent_decode_bytes;

/// The kind of identifier a segment looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// Only ASCII digits: `123`, `0042`.
    Integer,
    /// `8-4-4-4-12` hexadecimal groups.
    Uuid,
    /// Eight or more hexadecimal digits, at least one a digit and one a letter: `5f3a9c1e`.
    Hex,
    /// `2024-01-31`, optionally followed by `T` or a space and a time.
    Date,
    /// `local@domain.tld`.
    Email,
    /// A long random-looking token (base64, base64url, API-style ids like `cus_J4kL9mNqPz`).
    Token,
    /// Longer than the segment length limit, or holding characters that template syntax
    /// uses (`{`, `}`, `*`): never kept as a literal.
    Opaque,
}

/// Longest segment that [`classify`] decodes; longer ones are [`IdKind::Opaque`].
pub const MAX_CLASSIFIED_LEN: usize = 256;

/// The identifier kind of one raw path segment (`None`: a literal word such as `users`,
/// `v1`, `2fa`, `me`, `app.js`). Percent-escapes are decoded once for the decision only.
pub fn classify(segment: &str) -> Option<IdKind> {
    classify_capped(segment, MAX_CLASSIFIED_LEN)
}

/// [`classify`] with a length limit of `max_len` bytes (at most [`MAX_CLASSIFIED_LEN`]).
pub(super) fn classify_capped(segment: &str, max_len: usize) -> Option<IdKind> {
    let raw = segment.as_bytes();
    if raw.len() > max_len.min(MAX_CLASSIFIED_LEN) || raw.iter().any(|b| b"{}*".contains(b)) {
        return Some(IdKind::Opaque);
    }
    let mut buf = [0u8; MAX_CLASSIFIED_LEN];
    let decoded = percent_decode(raw, &mut buf);
    classify_bytes(decoded)
}

/// Decodes `%XX` escapes once into `buf` (which is at least as long as `raw`); malformed
/// escapes are kept as they are. No allocation.
fn percent_decode<'b>(raw: &[u8], buf: &'b mut [u8; MAX_CLASSIFIED_LEN]) -> &'b [u8] {
    let mut out = 0;
    for (slot, b) in buf.iter_mut().zip(percent_decode_bytes(raw, false)) {
        *slot = b;
        out += 1;
    }
    &buf[..out]
}

fn classify_bytes(b: &[u8]) -> Option<IdKind> {
    if b.is_empty() {
        return None;
    }
    if b.iter().all(u8::is_ascii_digit) {
        Some(IdKind::Integer)
    } else if is_uuid(b) {
        Some(IdKind::Uuid)
    } else if is_date(b) {
        Some(IdKind::Date)
    } else if is_email(b) {
        Some(IdKind::Email)
    } else if is_hex(b) {
        Some(IdKind::Hex)
    } else if is_token(b) {
        Some(IdKind::Token)
    } else {
        None
    }
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_date(b: &[u8]) -> bool {
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = b.get(r)?;
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| s.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
    };
    let (Some(_year), Some(month), Some(day)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return false;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    match b.get(10) {
        None => true,
        Some(b'T' | b't' | b' ') => b
            .get(11..)
            .is_some_and(|t| !t.is_empty() && t.iter().all(|c| b"0123456789:.+-Zz".contains(c))),
        Some(_) => false,
    }
}

fn is_email(b: &[u8]) -> bool {
    let mut parts = b.split(|c| *c == b'@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._%+-".contains(c));
    let mut labels = domain.split(|c| *c == b'.');
    let all_labels_ok = labels
        .clone()
        .all(|l| !l.is_empty() && l.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-'));
    let tld_ok = labels
        .next_back()
        .is_some_and(|t| t.len() >= 2 && t.iter().all(u8::is_ascii_alphabetic));
    local_ok && domain.contains(&b'.') && all_labels_ok && tld_ok
}

fn is_hex(b: &[u8]) -> bool {
    b.len() >= 8
        && b.iter().all(u8::is_ascii_hexdigit)
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_alphabetic)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Digit,
    Upper,
    Lower,
}

/// Random-looking: base64url characters only, and many changes of character class between
/// neighbouring characters (separators skipped). Counted changes are letter to digit, digit
/// to letter and lower to upper case; upper to lower is how capitalised words start, so
/// `getUserProfileSettings` scores 3 while a random token of that length scores about 9.
/// Ten to fifteen characters need all three classes and a change at a third of the places;
/// sixteen or more need two classes and a change at a quarter.
fn is_token(b: &[u8]) -> bool {
    if b.len() < 10 {
        return false;
    }
    let (mut digit, mut upper, mut lower) = (false, false, false);
    let mut changes = 0usize;
    let mut prev = None;
    for c in b {
        let class = if c.is_ascii_digit() {
            digit = true;
            Class::Digit
        } else if c.is_ascii_uppercase() {
            upper = true;
            Class::Upper
        } else if c.is_ascii_lowercase() {
            lower = true;
            Class::Lower
        } else if b"-_.~+/=".contains(c) {
            continue;
        } else {
            return false;
        };
        match (prev, class) {
            (Some(Class::Digit), Class::Upper | Class::Lower)
            | (Some(Class::Upper | Class::Lower), Class::Digit)
            | (Some(Class::Lower), Class::Upper) => changes += 1,
            _ => {}
        }
        prev = Some(class);
    }
    let classes = usize::from(digit) + usize::from(upper) + usize::from(lower);
    if b.len() >= 16 {
        classes >= 2 && changes * 4 >= b.len()
    } else {
        classes == 3 && changes * 3 >= b.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Option<IdKind> {
        classify(s)
    }

    #[test]
    fn integers() {
        assert_eq!(kind("123"), Some(IdKind::Integer));
        assert_eq!(kind("0042"), Some(IdKind::Integer));
        assert_eq!(kind("9"), Some(IdKind::Integer));
        assert_eq!(kind("%31%32"), Some(IdKind::Integer));
        for word in ["v1", "v2", "2fa", "1.0", "-5", "3d", "i18n", "x86_64"] {
            assert_eq!(kind(word), None, "{word}");
        }
    }

    #[test]
    fn uuids() {
        assert_eq!(
            kind("123e4567-e89b-12d3-a456-426614174000"),
            Some(IdKind::Uuid)
        );
        assert_eq!(
            kind("123E4567-E89B-12D3-A456-426614174000"),
            Some(IdKind::Uuid)
        );
        // Dashes misplaced: no longer a uuid, but still a hex-and-dash token?
        assert_eq!(
            kind("123e4567e-89b-12d3-a456-42661417400"),
            Some(IdKind::Token)
        );
        // A non-hex letter in a uuid shape.
        assert_eq!(
            kind("123e4567-e89b-12d3-a456-42661417400g"),
            Some(IdKind::Token)
        );
        // Unpunctuated uuid is hex.
        assert_eq!(kind("123e4567e89b12d3a456426614174000"), Some(IdKind::Hex));
    }

    #[test]
    fn hex() {
        assert_eq!(kind("5f3a9c1e"), Some(IdKind::Hex));
        assert_eq!(kind("DEADBEEF01"), Some(IdKind::Hex));
        assert_eq!(
            kind("da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            Some(IdKind::Hex)
        );
        // Hex words without digits, and short hex with digits.
        for word in [
            "deadbeef", "facade", "accessed", "decade", "abc123", "cafe12",
        ] {
            assert_eq!(kind(word), None, "{word}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(kind("2024-01-31"), Some(IdKind::Date));
        assert_eq!(kind("2024-01-31T10:00:00Z"), Some(IdKind::Date));
        assert_eq!(
            kind("2024-01-31T10%3A00%3A00%2B02%3A00"),
            Some(IdKind::Date)
        );
        for word in [
            "2024-13-01",
            "2024-00-10",
            "2024-01-32",
            "2024-1-31",
            "2024-01-31x",
            "2024-01-31T",
        ] {
            assert_eq!(kind(word), None, "{word}");
        }
        assert_eq!(kind("2024-01"), None);
    }

    #[test]
    fn emails() {
        assert_eq!(kind("alice@example.com"), Some(IdKind::Email));
        assert_eq!(kind("a.b+tag@mail.example.co"), Some(IdKind::Email));
        assert_eq!(kind("alice%40example.com"), Some(IdKind::Email));
        for word in [
            "@me",
            "alice@",
            "alice@localhost",
            "a@b@c.com",
            "alice@example.c",
            "alice@-.com.1",
        ] {
            assert_eq!(kind(word), None, "{word}");
        }
        assert_eq!(kind("a@.com"), None);
    }

    #[test]
    fn tokens() {
        assert_eq!(kind("dGhpcyBpcyBhIHRlc3Q9"), Some(IdKind::Token));
        assert_eq!(kind("cus_J4kL9mNqPz"), Some(IdKind::Token));
        assert_eq!(kind("dQw4w9WgXcQ"), Some(IdKind::Token));
        assert_eq!(kind("AB12-CD34-EF56-GH78"), Some(IdKind::Token));
        assert_eq!(kind("aBcDeFgHiJkLmNoP"), Some(IdKind::Token));
        assert_eq!(kind("main.8f3a2b1c.js"), Some(IdKind::Token));
        for word in [
            "getUserProfileSettings",
            "XMLHttpRequestHandlerFactory",
            "oauth2-callback-v2",
            "openid-configuration",
            "jquery-3.6.0.min.js",
            "bootstrap.bundle.min.js",
            "iPhone12Pro",
            "OAuth2Token",
            "password-reset",
            "order-items-2024-report",
            "swagger-ui.html",
            "a-1-b-2-c-3-d-4",
        ] {
            assert_eq!(kind(word), None, "{word}");
        }
    }

    #[test]
    fn plain_words_stay_literal() {
        for word in [
            "users",
            "me",
            "api",
            "health",
            "static",
            "app.js",
            "favicon.ico",
            "v1",
            "2fa",
            "login",
            "search",
            "café",
            "用户",
            ".well-known",
            "..",
            "%",
            "%zz",
            "%4",
        ] {
            assert_eq!(kind(word), None, "{word}");
        }
    }

    #[test]
    fn opaque() {
        assert_eq!(kind("{id}"), Some(IdKind::Opaque));
        assert_eq!(kind("*"), Some(IdKind::Opaque));
        assert_eq!(kind(&"a".repeat(257)), Some(IdKind::Opaque));
        assert_eq!(kind(&"a".repeat(256)), None);
        assert_eq!(classify_capped("abcdef", 5), Some(IdKind::Opaque));
    }

    #[test]
    fn percent_decoding_is_once_and_tolerant() {
        // %25 decodes to '%', not decoded again.
        assert_eq!(kind("%2531"), None);
        let mut buf = [0u8; MAX_CLASSIFIED_LEN];
        assert_eq!(percent_decode(b"a%2Fb%zz%4", &mut buf), b"a/b%zz%4");
        assert_eq!(percent_decode(b"%", &mut buf), b"%");
    }
}
