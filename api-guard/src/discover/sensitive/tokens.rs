//! Letter- and symbol-started classes: emails (found at their `@`), credential prefixes,
//! JWTs, PEM private keys, IBANs and UK National Insurance numbers. Every scan here reads
//! at most a fixed number of bytes from its start, and starts only at token boundaries.

use base64::Engine;

use super::{is_word, DataClass};
use crate::discover::schema::value::domain_ok;

type Hit = Option<(DataClass, usize)>;

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// Length of the run of bytes satisfying `f` from `i`, reading at most `max + 1` bytes.
fn run(b: &[u8], i: usize, max: usize, f: impl Fn(u8) -> bool) -> usize {
    b.get(i..)
        .unwrap_or_default()
        .iter()
        .take(max + 1)
        .take_while(|&&c| f(c))
        .count()
}

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// An email around the `@` at `i`; its end is the end of the domain.
pub(super) fn email_at(b: &[u8], i: usize) -> Hit {
    let before = b.get(..i)?;
    let local_len = before
        .iter()
        .rev()
        .take(65)
        .take_while(|&&c| is_local(c))
        .count();
    if local_len == 0 || local_len > 64 {
        return None;
    }
    let local = before.get(i - local_len..)?;
    if local.first() == Some(&b'.') || local.last() == Some(&b'.') {
        return None;
    }
    let dlen = run(b, i + 1, 253, |c| {
        c.is_ascii_alphanumeric() || c == b'-' || c == b'.'
    });
    if dlen > 253 {
        return None;
    }
    let mut domain = b.get(i + 1..i + 1 + dlen)?;
    // A sentence may end right after the address.
    while let [rest @ .., b'.'] = domain {
        domain = rest;
    }
    if !domain_ok(domain) {
        return None;
    }
    // `icon@2x.png` is a file name.
    let tld = domain.rsplit(|&c| c == b'.').next()?;
    const FILES: [&[u8]; 9] = [
        b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"ico", b"css", b"js",
    ];
    if FILES.iter().any(|f| tld.eq_ignore_ascii_case(f)) {
        return None;
    }
    Some((DataClass::Email, i + 1 + domain.len()))
}

/// `-----BEGIN <label> PRIVATE KEY-----` (label optional; PGP's `... KEY BLOCK` too).
pub(super) fn private_key_at(b: &[u8], i: usize) -> Hit {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let rest = b.get(i..)?;
    if !rest.starts_with(BEGIN) {
        return None;
    }
    let label_len = run(rest, BEGIN.len(), 48, |c| {
        c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' '
    });
    if label_len > 48 {
        return None;
    }
    let label = rest.get(BEGIN.len()..BEGIN.len() + label_len)?;
    let end = BEGIN.len() + label_len;
    let ok = (label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK"))
        && rest.get(end..)?.starts_with(b"-----");
    ok.then_some((DataClass::PrivateKey, i + end + 5))
}

/// A class starting with the letter at `i`.
#[inline]
pub(super) fn at(b: &[u8], i: usize) -> Hit {
    let rest = b.get(i..)?;
    let &c = rest.first()?;
    // Most words can start nothing: a JWT starts with `e`, every key kind with one of
    // `Agxsr`, an IBAN or NI number with a capital and a digit or space two bytes on. Those
    // are refused here, before the full checks (kept out of line so this stays small).
    let capital_then_digit =
        c.is_ascii_uppercase() && matches!(rest.get(2), Some(b'0'..=b'9' | b' '));
    if !capital_then_digit && !matches!(c, b'e' | b'A' | b'g' | b'x' | b's' | b'r') {
        return None;
    }
    candidate_at(b, i)
}

#[inline(never)]
fn candidate_at(b: &[u8], i: usize) -> Hit {
    if let Some(&p) = i.checked_sub(1).and_then(|p| b.get(p)) {
        if is_word(p) || matches!(p, b'-' | b'.') {
            return None;
        }
    }
    let rest = b.get(i..)?;
    if rest.starts_with(b"eyJ") {
        return jwt(b, i);
    }
    if let Some(hit) = api_key(b, i) {
        return Some(hit);
    }
    if rest.first().is_some_and(u8::is_ascii_uppercase) {
        return iban(b, i).or_else(|| nino(b, i));
    }
    None
}

const MAX_TOKEN: usize = 256;

/// The credential kinds [`api_key`] knows, by prefix.
#[derive(Clone, Copy)]
enum Key {
    Aws,
    GitHub,
    GitHubPat,
    Slack,
    Stripe,
    Google,
    OpenAi,
}

fn api_key(b: &[u8], i: usize) -> Hit {
    let rest = b.get(i..)?;
    // The prefix first, without measuring the token: most words have none, and measuring
    // them would read every byte of the word twice (here, then the scan's word skip). The
    // prefixes are distinct and all base64url, so the one that matches is in the token.
    let (kind, prefix) = match rest {
        [b'A', b'K' | b'S', b'I', b'A', ..] => (Key::Aws, 4),
        [b'g', b'h', b'p' | b'o' | b'u' | b's' | b'r', b'_', ..] => (Key::GitHub, 4),
        [b'g', b'i', b't', b'h', b'u', b'b', b'_', b'p', b'a', b't', b'_', ..] => {
            (Key::GitHubPat, 11)
        }
        [b'x', b'o', b'x', b'a' | b'b' | b'p' | b'r', b'-', ..] => (Key::Slack, 5),
        [b's' | b'r', b'k', b'_', b'l', b'i', b'v', b'e', b'_', ..] => (Key::Stripe, 8),
        [b'A', b'I', b'z', b'a', ..] => (Key::Google, 4),
        [b's', b'k', b'-', ..] => (Key::OpenAi, 3),
        _ => return None,
    };
    let len = run(b, i, MAX_TOKEN, is_b64url);
    if len > MAX_TOKEN {
        return None;
    }
    let t = rest.get(prefix..len)?;
    let all = |s: &[u8], f: fn(&u8) -> bool| s.iter().all(f);
    let ok = match kind {
        Key::Aws => t.len() == 16 && all(t, |c| c.is_ascii_uppercase() || c.is_ascii_digit()),
        Key::GitHub => t.len() >= 36 && all(t, u8::is_ascii_alphanumeric),
        Key::GitHubPat => t.len() >= 50 && all(t, |c| c.is_ascii_alphanumeric() || *c == b'_'),
        Key::Slack => {
            t.len() >= 20
                && all(t, |c| c.is_ascii_alphanumeric() || *c == b'-')
                && t.iter().any(u8::is_ascii_digit)
        }
        Key::Stripe => t.len() >= 16 && all(t, u8::is_ascii_alphanumeric),
        Key::Google => t.len() == 35,
        // Prose has `sk-` words; keys are long and mix cases and digits.
        Key::OpenAi => {
            t.len() >= 32
                && t.iter().any(u8::is_ascii_digit)
                && t.iter().any(u8::is_ascii_uppercase)
                && t.iter().any(u8::is_ascii_lowercase)
        }
    };
    ok.then_some((DataClass::ApiKey, i + len))
}

const MAX_JWT_SEGMENT: usize = 8192;

fn jwt(b: &[u8], i: usize) -> Hit {
    let mut j = i;
    let mut segs = [0usize; 3];
    for (k, seg) in segs.iter_mut().enumerate() {
        let n = run(b, j, MAX_JWT_SEGMENT, is_b64url);
        // Refused as soon as a segment shows it: a long header or an empty payload need
        // not be followed to the end of the token.
        if n > MAX_JWT_SEGMENT || (k == 0 && n > 1024) || (k == 1 && n == 0) {
            return None;
        }
        *seg = n;
        j += n;
        if k < 2 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
    }
    // An empty signature is an unsigned (`alg: none`) JWT, still a token.
    if segs[0] > 1024 || segs[1] == 0 || b.get(j).is_some_and(|&c| c == b'=') {
        return None;
    }
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b.get(i..i + segs[0])?)
        .ok()?;
    let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header).ok()?;
    obj.contains_key("alg").then_some((DataClass::Jwt, j))
}

/// Known IBAN countries and lengths.
const IBAN: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SC", 31),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
];

/// Reads up to `max` characters of `class`, contiguous or in groups of `group` separated
/// by single spaces (then every group but the last is followed by one). Returns the
/// characters, how many, and where they end.
fn grouped(
    b: &[u8],
    i: usize,
    max: usize,
    group: usize,
    class: fn(u8) -> bool,
) -> ([u8; 34], usize, usize) {
    let mut out = [0u8; 34];
    let mut n = 0;
    let mut j = i;
    let spaced = group > 0 && b.get(i + group) == Some(&b' ');
    while n < max.min(out.len()) {
        if spaced && n > 0 && n % group == 0 {
            if b.get(j) == Some(&b' ') && b.get(j + 1).is_some_and(|&c| class(c)) {
                j += 1;
            } else {
                break;
            }
        }
        match b.get(j) {
            Some(&c) if class(c) => {
                out[n] = c;
                n += 1;
                j += 1;
            }
            _ => break,
        }
    }
    (out, n, j)
}

/// [`IBAN`] lengths by country code (`(first - 'A') * 26 + second - 'A'`), 0 when none:
/// one load instead of a search of the list for every capitalised word.
static IBAN_LEN: [u8; 26 * 26] = {
    let mut t = [0u8; 26 * 26];
    let mut k = 0;
    while k < IBAN.len() {
        let (cc, len) = IBAN[k];
        t[(cc[0] - b'A') as usize * 26 + (cc[1] - b'A') as usize] = len as u8;
        k += 1;
    }
    t
};

fn iban(b: &[u8], i: usize) -> Hit {
    let rest = b.get(i..)?;
    // The check digits first: rarer in words than a country code's two capitals.
    let [c0, c1, d0, d1, ..] = *rest else {
        return None;
    };
    if !d0.is_ascii_digit() || !d1.is_ascii_digit() {
        return None;
    }
    if !c0.is_ascii_uppercase() || !c1.is_ascii_uppercase() {
        return None;
    }
    let len = usize::from(IBAN_LEN[usize::from(c0 - b'A') * 26 + usize::from(c1 - b'A')]);
    if len == 0 {
        return None;
    }
    let class = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let (chars, n, end) = grouped(b, i, len, 4, class);
    if n != len || b.get(end).is_some_and(|&c| is_word(c)) {
        return None;
    }
    // Check digits: move the first four characters to the end, letters as 10..35, mod 97.
    let s = chars.get(..n)?;
    let mut r = 0u32;
    for &c in s.iter().skip(4).chain(s.iter().take(4)) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        r = if v >= 10 {
            (r * 100 + v) % 97
        } else {
            (r * 10 + v) % 97
        };
    }
    (r == 1).then_some((DataClass::NationalId, end))
}

/// UK National Insurance number: two letters (neither D, F, I, Q, U, V; second not O; not
/// BG, GB, NK, KN, NT, TN, ZZ), six digits, A–D; contiguous or `AB 12 34 56 C`.
fn nino(b: &[u8], i: usize) -> Hit {
    let rest = b.get(i..)?;
    let (p0, p1) = (*rest.first()?, *rest.get(1)?);
    let bad = |c: u8| matches!(c, b'D' | b'F' | b'I' | b'Q' | b'U' | b'V');
    if !p0.is_ascii_uppercase() || !p1.is_ascii_uppercase() || bad(p0) || bad(p1) || p1 == b'O' {
        return None;
    }
    if matches!(
        &rest[..2],
        b"BG" | b"GB" | b"NK" | b"KN" | b"NT" | b"TN" | b"ZZ"
    ) {
        return None;
    }
    let spaced = rest.get(2) == Some(&b' ');
    let mut j = i + 2 + usize::from(spaced);
    for _ in 0..3 {
        if !b.get(j..j + 2)?.iter().all(u8::is_ascii_digit) {
            return None;
        }
        j += 2;
        if spaced {
            if b.get(j) != Some(&b' ') {
                return None;
            }
            j += 1;
        }
    }
    if !matches!(b.get(j), Some(b'A'..=b'D')) || b.get(j + 1).is_some_and(|&c| is_word(c)) {
        return None;
    }
    Some((DataClass::NationalId, j + 1))
}

#[cfg(test)]
mod tests {
    use super::super::counts_of;
    use super::DataClass::*;

    #[test]
    fn emails() {
        for t in [
            "alice@example.com",
            "mailto:a.b+tag@mail.example.co.uk.",
            r#"{"to":"<bob_smith@example.org>"}"#,
            "x alice%x@sub-domain.example.io",
        ] {
            assert_eq!(counts_of(t), [(Email, 1)], "{t}");
        }
        for t in [
            "icon@2x.png",
            "user@localhost",
            "@example.com",
            "alice@",
            "a@b",
            ".alice@example.com",
            "@@@",
            "alice@-example.com",
        ] {
            assert_eq!(counts_of(t), [], "{t}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert_eq!(counts_of(&long), []);
    }

    #[test]
    fn api_keys() {
        for t in [
            "AKIAIOSFODNN7EXAMPLE",
            "key=ASIAY34FZKBOKMUTVV7A&x=1",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "gho_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "rk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "AIzaSyA-1234567890abcdefghijklmnopqrstu",
            "Authorization: Bearer sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
        ] {
            assert_eq!(counts_of(t), [(ApiKey, 1)], "{t}");
        }
        for t in [
            "AKIAIOSFODNN7EXAMPL",   // 15 after the prefix
            "AKIAIOSFODNN7EXAMPLEX", // 17
            "AKIAiosfodnn7example",
            "XAKIAIOSFODNN7EXAMPLE",
            "ghp_short",
            "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "pk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "we use sk-learn and sk-this-is-just-a-very-long-hyphenated-phrase",
            "task-sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
            "AIzaShort",
            "xoxb-not-a-token",
        ] {
            assert_eq!(counts_of(t), [], "{t}");
        }
    }

    #[test]
    fn jwts() {
        // {"alg":"HS256","typ":"JWT"} . {"sub":"1234567890"} . signature
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert_eq!(counts_of(jwt), [(Jwt, 1)]);
        assert_eq!(counts_of(&format!("Bearer {jwt}.")), [(Jwt, 1)]);
        // Unsigned: {"alg":"none"} . {}
        assert_eq!(counts_of("eyJhbGciOiJub25lIn0.e30."), [(Jwt, 1)]);
        for t in [
            // {"typ":"JWT"}: no alg
            "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2ln",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0",
            "eyJhbGciOiJIUzI1NiJ9..c2ln",
            "eyJub3QganNvbg.eyJ.eyJ",
            "xeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
        ] {
            assert_eq!(counts_of(t), [], "{t}");
        }
    }

    #[test]
    fn private_keys() {
        for t in [
            "-----BEGIN PRIVATE KEY-----\nMIIEv",
            "-----BEGIN RSA PRIVATE KEY-----",
            "\"-----BEGIN OPENSSH PRIVATE KEY-----\\nb3Blb\"",
            "-----BEGIN EC PRIVATE KEY-----",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----",
            "-----BEGIN PGP PRIVATE KEY BLOCK-----",
        ] {
            assert_eq!(counts_of(t), [(PrivateKey, 1)], "{t}");
        }
        for t in [
            "-----BEGIN PUBLIC KEY-----",
            "-----BEGIN CERTIFICATE-----",
            "-----BEGIN RSA PRIVATE KEY",
            "----BEGIN PRIVATE KEY-----",
        ] {
            assert_eq!(counts_of(t), [], "{t}");
        }
    }

    #[test]
    fn national_ids() {
        for t in [
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "GB82WEST12345698765432",
            "FR1420041010050500013M02606",
            "NO9386011117947",
            "AB123456C",
            "AB 12 34 56 C",
        ] {
            assert_eq!(counts_of(t), [(NationalId, 1)], "{t}");
        }
        for t in [
            "DE89370400440532013001",  // check digits fail
            "DE8937040044053201300",   // one short
            "DE893704004405320130001", // one long
            "XX89370400440532013000",  // no such country
            "de89370400440532013000",
            "DE89 37040044 0532013000",
            "GB123456C",
            "DA123456C",
            "AB123456E",
            "AB123456CD",
            "AB 123456 C",
        ] {
            assert_eq!(counts_of(t), [], "{t}");
        }
    }
}
