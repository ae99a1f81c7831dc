//! The type of one query or path parameter value, inferred strictly so that a parameter
//! documented as `integer` really only ever carried integers. Values are expected
//! percent-decoded by the caller. Types form a small lattice so observations of one
//! parameter merge into the narrowest type that covers them all.

use serde::{Deserialize, Serialize};

/// The inferred type of a parameter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// Optional `-` and decimal digits that fit an `i64`, without leading zeros: `0`, `42`,
    /// `-7`. `007` and `01234` are strings, because their zeros are part of the value
    /// (zip codes, codes, padded ids) and an integer would lose them.
    Integer,
    /// A JSON number with a fraction or exponent: `1.5`, `-0.25`, `1e5`, `2.5E-3`.
    Number,
    /// Exactly `true` or `false` (not `1`/`0`, not `TRUE`).
    Boolean,
    /// `8-4-4-4-12` hexadecimal digits, either case.
    Uuid,
    /// RFC 3339 full-date `YYYY-MM-DD` with a real day of that month (leap years counted).
    Date,
    /// RFC 3339 date-time: full-date, `T`, `HH:MM:SS`, optional fraction, `Z` or `±HH:MM`.
    #[serde(rename = "date-time")]
    DateTime,
    /// `local@domain.tld`: see [`is_email`] for the bounded check.
    Email,
    /// Anything else.
    String,
}

impl ValueType {
    /// The narrowest type covering both: equal types stay, integer and number make number,
    /// anything else makes string.
    pub fn merge(self, other: ValueType) -> ValueType {
        use ValueType::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Integer, Number) | (Number, Integer) => Number,
            _ => String,
        }
    }

    /// The OpenAPI 3.1 `type` and `format` for this type.
    pub fn openapi_type(self) -> (&'static str, Option<&'static str>) {
        match self {
            ValueType::Integer => ("integer", Some("int64")),
            ValueType::Number => ("number", None),
            ValueType::Boolean => ("boolean", None),
            ValueType::Uuid => ("string", Some("uuid")),
            ValueType::Date => ("string", Some("date")),
            ValueType::DateTime => ("string", Some("date-time")),
            ValueType::Email => ("string", Some("email")),
            ValueType::String => ("string", None),
        }
    }

    /// The OpenAPI 3.1 schema object for this type: `{"type": .., "format": ..}`.
    pub fn to_openapi(self) -> serde_json::Value {
        let (ty, format) = self.openapi_type();
        let mut m = serde_json::Map::new();
        m.insert("type".into(), ty.into());
        if let Some(f) = format {
            m.insert("format".into(), f.into());
        }
        serde_json::Value::Object(m)
    }
}

/// Values longer than this are strings without looking further: no number, date or
/// email is this long, and it keeps inference constant-time on hostile input.
const MAX_TYPED_LEN: usize = 254;

/// The type of one parameter value.
pub fn infer(value: &str) -> ValueType {
    infer_bytes(value.as_bytes())
}

/// [`infer`] on bytes. Every type but `String` is ASCII, so bytes that are not UTF-8 are
/// `String`: callers need not validate them first.
fn infer_bytes(b: &[u8]) -> ValueType {
    if b.is_empty() || b.len() > MAX_TYPED_LEN {
        return ValueType::String;
    }
    match b[0] {
        b'-' | b'0'..=b'9' => {
            if let Some(t) = number(b) {
                return t;
            }
            if is_uuid(b) {
                return ValueType::Uuid;
            }
            if let Some(t) = date_or_time(b) {
                return t;
            }
        }
        b't' | b'f' if b == b"true" || b == b"false" => return ValueType::Boolean,
        b'a'..=b'f' | b'A'..=b'F' if is_uuid(b) => return ValueType::Uuid,
        _ => {}
    }
    if is_email(b) {
        return ValueType::Email;
    }
    ValueType::String
}

/// The string formats a JSON string value can have (a subset of [`ValueType`]); numbers
/// and booleans inside JSON strings are left as plain strings because the body said string.
///
/// This is for a JSON string token's raw text: `String` when it has escapes or is
/// not UTF-8 (no format has either), so that the text need not be validated first.
pub(crate) fn json_string_format(s: &crate::json::Str<'_>) -> ValueType {
    if s.has_escapes() {
        return ValueType::String;
    }
    string_format_bytes(s.raw())
}

fn string_format_bytes(s: &[u8]) -> ValueType {
    match infer_bytes(s) {
        t @ (ValueType::Uuid | ValueType::Date | ValueType::DateTime | ValueType::Email) => t,
        _ => ValueType::String,
    }
}

/// JSON number grammar; `Integer` when there is neither fraction nor exponent.
fn number(b: &[u8]) -> Option<ValueType> {
    let mut i = usize::from(b.first() == Some(&b'-'));
    let int_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let int_len = i - int_start;
    if int_len == 0 || (int_len > 1 && b[int_start] == b'0') {
        return None;
    }
    let mut integer = true;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == s {
            return None;
        }
        integer = false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == s {
            return None;
        }
        integer = false;
    }
    if i != b.len() {
        return None;
    }
    if integer {
        // Integers beyond i64 are identifiers, not quantities.
        let s = std::str::from_utf8(b).ok()?;
        return Some(if s.parse::<i64>().is_ok() {
            ValueType::Integer
        } else {
            ValueType::String
        });
    }
    Some(ValueType::Number)
}

pub(crate) fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    b.get(at..at + n)?.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// `YYYY-MM-DD` at the start of `b`, with a day that exists.
fn full_date(b: &[u8]) -> bool {
    let (Some(y), Some(m), Some(d)) = (digits(b, 0, 4), digits(b, 5, 2), digits(b, 8, 2)) else {
        return false;
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return false;
    }
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

fn date_or_time(b: &[u8]) -> Option<ValueType> {
    if !full_date(b) {
        return None;
    }
    if b.len() == 10 {
        return Some(ValueType::Date);
    }
    // RFC 3339 full-time after `T`: HH:MM:SS[.frac](Z|±HH:MM).
    if !matches!(b.get(10), Some(b'T' | b't')) {
        return None;
    }
    let (h, mi, s) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let ok = match b.get(i)? {
        b'Z' | b'z' => i + 1 == b.len(),
        b'+' | b'-' => {
            let (oh, om) = (digits(b, i + 1, 2)?, digits(b, i + 4, 2)?);
            b.get(i + 3) == Some(&b':') && oh <= 23 && om <= 59 && i + 6 == b.len()
        }
        _ => false,
    };
    ok.then_some(ValueType::DateTime)
}

/// A deliberately simple, bounded email check: one `@`; a local part of 1–64 characters
/// from letters, digits and `.!#$%&'*+/=?^_`{|}~-` with no leading, trailing or doubled dot;
/// a domain of at most 253 characters with at least two dot-separated labels of 1–63
/// letters, digits and inner hyphens, the last one alphabetic and at least two long.
/// Quoted local parts and IP-literal domains are not emails here.
pub(crate) fn is_email(b: &[u8]) -> bool {
    // A plain loop: this runs on every JSON member name and string value, mostly short,
    // where setting up a vectorised search costs more than it saves.
    let Some(at) = b.iter().position(|&c| c == b'@') else {
        return false;
    };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    local_part_ok(local) && domain_ok(domain)
}

pub(crate) fn is_local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&c)
}

pub(crate) fn local_part_ok(local: &[u8]) -> bool {
    (1..=64).contains(&local.len())
        && local.iter().all(|&c| is_local_char(c))
        && local.first() != Some(&b'.')
        && local.last() != Some(&b'.')
        && !local.windows(2).any(|w| w == b"..")
}

pub(crate) fn domain_ok(domain: &[u8]) -> bool {
    if domain.is_empty() || domain.len() > 253 {
        return false;
    }
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in domain.split(|&c| c == b'.') {
        let ok = (1..=63).contains(&label.len())
            && label
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'-')
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-');
        if !ok {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && last.len() >= 2 && last.iter().all(u8::is_ascii_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::ValueType::*;
    use super::*;

    #[test]
    fn json_string_format_is_the_format_of_the_plain_text() {
        let mut rng = crate::testutil::Rng(0x5_7a1e);
        let samples = [
            "2024-01-31",
            "2024-01-31T10:00:00Z",
            "550e8400-e29b-41d4-a716-446655440000",
            "alice@example.com",
            "true",
            "-12.5e3",
        ];
        for _ in 0..50_000 {
            let mut raw = samples[rng.below(samples.len() as u64) as usize]
                .as_bytes()
                .to_vec();
            // Change, insert or append bytes, some of them not UTF-8 or escapes.
            for _ in 0..rng.below(3) {
                let k = rng.below(raw.len() as u64 + 1) as usize;
                let c = match rng.below(4) {
                    0 => 0x80 | rng.below(128) as u8,
                    1 => b'\\',
                    _ => b"0123456789-:TZ.@ax"[rng.below(18) as usize],
                };
                match (rng.below(2), raw.get_mut(k)) {
                    (0, Some(slot)) => *slot = c,
                    _ => raw.insert(k, c),
                }
            }
            let s = crate::json::Str::from_raw(&raw);
            let want = match s.plain().map(infer) {
                Some(t @ (Uuid | Date | DateTime | Email)) => t,
                _ => String,
            };
            assert_eq!(json_string_format(&s), want, "{:?}", raw);
        }
    }

    #[test]
    fn integers_and_numbers() {
        for v in [
            "0",
            "42",
            "-7",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            assert_eq!(infer(v), Integer, "{v}");
        }
        for v in ["1e5", "1.5", "-0.25", "2.5E-3", "0.0", "1E+10"] {
            assert_eq!(infer(v), Number, "{v}");
        }
        for v in [
            "007",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "+5",
            "1_000",
            "NaN",
            "inf",
            "9223372036854775808",
            "12345678901234567890123",
            "1.2.3",
            "",
        ] {
            assert_eq!(infer(v), String, "{v}");
        }
    }

    #[test]
    fn booleans_uuids_dates_emails() {
        assert_eq!(infer("true"), Boolean);
        assert_eq!(infer("false"), Boolean);
        assert_eq!(infer("True"), String);
        assert_eq!(infer("1"), Integer);
        assert_eq!(infer("550e8400-e29b-41d4-a716-446655440000"), Uuid);
        assert_eq!(infer("DEADBEEF-E29B-41D4-A716-446655440000"), Uuid);
        assert_eq!(infer("12345678-1234-1234-1234-123456789012"), Uuid);
        assert_eq!(infer("550e8400e29b41d4a716446655440000"), String);
        assert_eq!(infer("550e8400-e29b-41d4-a716-44665544000g"), String);
        assert_eq!(infer("2024-01-31"), Date);
        assert_eq!(infer("2024-02-29"), Date);
        assert_eq!(infer("2023-02-29"), String);
        assert_eq!(infer("2100-02-29"), String);
        assert_eq!(infer("2024-13-01"), String);
        assert_eq!(infer("2024-1-31"), String);
        assert_eq!(infer("2024-01-31T10:20:30Z"), DateTime);
        assert_eq!(infer("2024-01-31t10:20:30.123456+05:30"), DateTime);
        assert_eq!(infer("2024-01-31T10:20:60-00:00"), DateTime);
        assert_eq!(infer("2024-01-31T24:00:00Z"), String);
        assert_eq!(infer("2024-01-31T10:20:30"), String);
        assert_eq!(infer("2024-01-31 10:20:30Z"), String);
        assert_eq!(infer("2024-01-31T10:20:30.Z"), String);
        assert_eq!(infer("alice@example.com"), Email);
        assert_eq!(infer("a.b+tag@mail.example.co.uk"), Email);
        for v in [
            "alice@localhost",
            "@example.com",
            "alice@",
            "a..b@example.com",
            ".a@example.com",
            "a@-x.com",
            "a@x.c",
            "a@x.c0m",
            "a@b@example.com",
            "a b@example.com",
        ] {
            assert_eq!(infer(v), String, "{v}");
        }
        assert_eq!(infer(&format!("{}@example.com", "a".repeat(65))), String);
        assert_eq!(infer(&"1".repeat(10_000)), String);
    }

    #[test]
    fn lattice() {
        assert_eq!(Integer.merge(Integer), Integer);
        assert_eq!(Integer.merge(Number), Number);
        assert_eq!(Number.merge(Integer), Number);
        assert_eq!(Integer.merge(Boolean), String);
        assert_eq!(Date.merge(DateTime), String);
        assert_eq!(Uuid.merge(String), String);
        assert_eq!(String.merge(Integer), String);
        assert_eq!(
            serde_json::to_string(&[DateTime, Uuid]).unwrap(),
            r#"["date-time","uuid"]"#
        );
        assert_eq!(
            Integer.to_openapi(),
            serde_json::json!({"type": "integer", "format": "int64"})
        );
    }
}
