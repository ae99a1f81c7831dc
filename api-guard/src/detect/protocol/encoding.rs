//! The URL and form body as parsers decode them: invalid or nonstandard percent-escapes,
//! overlong or malformed UTF-8, NUL and control bytes, and CR/LF that would split a
//! response or smuggle a request once a value is reflected into a header or forwarded.

use std::borrow::Cow;

use super::{around, header_location, ProtocolConfig, Report, Rule};
use crate::{
    detect::{normalize, request::Request},
    text::{hex_value as hex, percent_decode},
};

/// Body bytes scanned for encodings and injected CR/LF.
const MAX_BODY_SCAN: usize = 64 * 1024;

/// Header names whose injection after a CR/LF splits a response or poisons what a proxy
/// forwards.
const SPLIT_HEADERS: &[&str] = &[
    "content-length",
    "content-type",
    "transfer-encoding",
    "set-cookie",
    "cookie",
    "location",
    "refresh",
    "host",
    "connection",
    "forwarded",
    "via",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-server",
    "x-real-ip",
    "x-client-ip",
    "x-originating-ip",
    "originating-ip",
    "remote-addr",
    "remote-ip",
    "remote-host",
    "authorization",
    "access-control-allow-origin",
    "content-disposition",
];

/// Request-line methods looked for in smuggled requests.
const SMUGGLE_METHODS: &[&str] = &[
    "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Query,
    Body,
}

impl Part {
    fn location(self) -> &'static str {
        match self {
            Part::Query => "query",
            Part::Body => "body",
        }
    }
}

pub(super) fn check(req: &Request<'_>, cfg: &ProtocolConfig, r: &mut Report<'_>) {
    escapes(req.path, "path", false, r);
    if has_crlf_marker(req.path) {
        let decoded = normalize::decode(&percent_decode(req.path, false)).into_owned();
        if decoded.contains(['\r', '\n']) {
            r.add(Rule::HeaderInjection, "path", req.path);
        }
    }
    let mut args = 0usize;
    if let Some(q) = req.query {
        escapes(q, "query", false, r);
        args += pairs(q, Part::Query, req, cfg, r);
        unix_socket(q, r);
    }
    let body = &req.body[..req.body.len().min(MAX_BODY_SCAN)];
    if !body.is_empty() {
        let ct = req.media_type().unwrap_or_default().as_bytes();
        let json = ct.windows(4).any(|w| w.eq_ignore_ascii_case(b"json"));
        let multipart = ct
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"multipart/"));
        if ct.eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
            || (ct.is_empty() && looks_like_form(body))
        {
            let text = String::from_utf8_lossy(body);
            escapes(&text, "body", false, r);
            args += pairs(&text, Part::Body, req, cfg, r);
        } else if !json && !multipart {
            // Plain text and XML bodies: entities (`&#10;`) and escapes decoded first.
            let text = String::from_utf8_lossy(body);
            if has_crlf_marker(&text) {
                let decoded = normalize::decode(&text);
                if let Some(at) = injected(&decoded, false) {
                    r.add(Rule::HeaderInjection, "body", around(&decoded, at));
                }
            }
        }
    }
    if args > cfg.max_args {
        let evidence = format!("{args} parameters");
        r.add(Rule::TooManyArgs, "query", &evidence);
    }
    for (name, value) in req.fields() {
        if name.eq_ignore_ascii_case("cookie") {
            escapes(value, "header:cookie", true, r);
        }
        if !has_crlf_marker(value) {
            continue;
        }
        let decoded = normalize::decode(value);
        // A header value carries no parameters of its own, so any `Name:` after a line
        // break is an injected header; cookies also may not carry a blank line and markup.
        if let Some(at) = injected(&decoded, true) {
            r.add(
                Rule::HeaderInjection,
                header_location(name),
                around(&decoded, at),
            );
        }
    }
}

/// Percent-escapes in the raw `s`: mangled ones (`%1G`, `%w20`, `%7%`) and IIS `%uXXXX`,
/// NUL and control bytes, double encoding (`%2527`, `%25%37%33`), and UTF-8 that decoders
/// disagree on (overlong, truncated, out of range). A `%` followed by text that is no escape
/// attempt (`24%)`, `50%off`) is taken for a literal percent from a sloppy client, and lone
/// Latin-1 bytes are tolerated: old clients send both. With `controls_only` (cookies) only
/// NUL and control bytes count.
fn escapes(s: &str, loc: &str, controls_only: bool, r: &mut Report<'_>) {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return;
    }
    let mut i = 0;
    while i < b.len() {
        let Some((byte, used)) = decoded_at(b, i) else {
            if !controls_only && mangled_escape(&b[i + 1..]) {
                r.add(Rule::EncodingAbuse, loc, around(s, i));
            }
            i += 1;
            continue;
        };
        match byte {
            0 => r.add(Rule::NullByte, loc, around(s, i)),
            b'%' if used == 3 && !controls_only => {
                let next = decoded_at(b, i + 3);
                let after = next.and_then(|(_, u)| decoded_at(b, i + 3 + u));
                // `%2527` hides a `'`; `%25false` is prose about a literal `%false`. So
                // the twice-decoded byte must be punctuation or control, or its hex digits
                // must themselves have been escaped (`%25%37%33`).
                if let (Some((h, hu)), Some((l, lu))) = (next, after) {
                    if let (Some(h4), Some(l4)) = (hex(h), hex(l)) {
                        let inner = h4 << 4 | l4;
                        let hidden = inner < 0x80 && !inner.is_ascii_alphanumeric();
                        if hidden || hu == 3 || lu == 3 {
                            r.add(Rule::DoubleEncoding, loc, around(s, i));
                        }
                    }
                }
            }
            b'\t' | b'\r' | b'\n' => {}
            c if (c < 0x20 || c == 0x7f) && used == 3 => {
                r.add(Rule::ControlChar, loc, around(s, i));
            }
            c if c >= 0x80 && used == 3 && !controls_only => {
                if let Some(len) = bad_utf8(b, i, c) {
                    r.add(Rule::EncodingAbuse, loc, around(s, i));
                    i += len;
                    continue;
                }
            }
            _ => {}
        }
        i += used;
    }
}

/// What follows a `%` that does not start a valid escape looks like an escape attempt:
/// one hex digit then something else, `%u`, or a letter then a digit.
fn mangled_escape(rest: &[u8]) -> bool {
    match rest {
        [b'u' | b'U', ..] => true,
        [a, b, ..] if hex(*a).is_some() => hex(*b).is_none(),
        [a, b, ..] => a.is_ascii_alphabetic() && b.is_ascii_digit(),
        [a] => hex(*a).is_some(),
        [] => false,
    }
}

/// The byte at `i` after one round of percent-decoding, and how many input bytes it took;
/// `None` for a `%` that does not start a valid escape.
fn decoded_at(b: &[u8], i: usize) -> Option<(u8, usize)> {
    let c = *b.get(i)?;
    if c != b'%' {
        return Some((c, 1));
    }
    let h = hex(*b.get(i + 1)?)?;
    let l = hex(*b.get(i + 2)?)?;
    Some((h << 4 | l, 3))
}

/// When the escaped byte `lead` at `i` starts a UTF-8 sequence that some decoder would read
/// differently: overlong (`%c0%af`), truncated after a continuation, surrogate or beyond
/// U+10FFFF. Returns the input bytes to skip. A lead byte followed by no continuation byte is
/// taken for a Latin-1 character and allowed.
fn bad_utf8(b: &[u8], i: usize, lead: u8) -> Option<usize> {
    let cont = |x: u8| (0x80..=0xbf).contains(&x);
    if matches!(lead, 0xc0 | 0xc1) {
        return Some(3);
    }
    if lead < 0xc2 {
        return None; // a stray continuation byte: Latin-1 text
    }
    let (need, lo, hi) = match lead {
        0xc2..=0xdf => (1, 0x80, 0xbf),
        0xe0 => (2, 0xa0, 0xbf),
        0xed => (2, 0x80, 0x9f),
        0xe1..=0xef => (2, 0x80, 0xbf),
        0xf0 => (3, 0x90, 0xbf),
        0xf1..=0xf3 => (3, 0x80, 0xbf),
        0xf4 => (3, 0x80, 0x8f),
        _ => (3, 0x00, 0x00), // f5..ff: never valid
    };
    let mut j = i + 3;
    let (second, used) = decoded_at(b, j)?;
    if !cont(second) {
        return None; // Latin-1 followed by something else
    }
    if second < lo || second > hi {
        return Some(j + used - i);
    }
    j += used;
    for _ in 1..need {
        match decoded_at(b, j) {
            Some((c, used)) if cont(c) => j += used,
            _ => return Some(j - i),
        }
    }
    None
}

fn looks_like_form(body: &[u8]) -> bool {
    body.contains(&b'=')
        && !body.contains(&b'\n')
        && !matches!(
            body.iter().find(|c| !c.is_ascii_whitespace()),
            Some(b'{' | b'[')
        )
}

/// The bytes [`has_crlf_marker`] looks past: CR, LF and what starts an escape (`%`, `&`).
static CRLF_START: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\r' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'%' as usize] = true;
    t[b'&' as usize] = true;
    t
};

/// Whether `b` holds a [`CRLF_START`] byte (CR, LF, `%`, `&`), eight bytes at a time: a
/// zero byte of `x ^ c…` for each of the four, a test that is exact about whether there is
/// one (it may mark the wrong byte of a word, never a word without one).
fn has_crlf_start(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = b.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let found = zero(x ^ (u64::from(b'\r') * ONES))
            | zero(x ^ (u64::from(b'\n') * ONES))
            | zero(x ^ (u64::from(b'%') * ONES))
            | zero(x ^ (u64::from(b'&') * ONES));
        if found != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&c| CRLF_START[usize::from(c)])
}

/// Raw or encoded CR/LF (percent, XML/HTML entity, `\r`-style escapes decoded later).
fn has_crlf_marker(s: &str) -> bool {
    let b = s.as_bytes();
    let after = |i: usize, second: u8, third: fn(u8) -> bool| {
        b.get(i + 1) == Some(&second) && b.get(i + 2).is_some_and(|&x| third(x))
    };
    let percent = |i: usize| after(i, b'0', |x| matches!(x | 0x20, b'a' | b'd'));
    let entity = |i: usize| after(i, b'#', |x| matches!(x, b'1' | b'x' | b'X'));
    // Short strings (paths, most header values): one pass. Long ones (user agents, tokens):
    // vectorised searches for the rare bytes, then a look at what follows each.
    if b.len() < 64 {
        // Most hold none of the four bytes: turned away eight bytes at a time.
        if !has_crlf_start(b) {
            return false;
        }
        // One table load per byte turns away all but the four bytes looked at.
        return (0..b.len()).any(|i| {
            CRLF_START[usize::from(b[i])]
                && match b[i] {
                    b'\r' | b'\n' => true,
                    b'%' => percent(i),
                    _ => entity(i),
                }
        });
    }
    memchr::memchr2(b'\r', b'\n', b).is_some()
        || memchr::memchr_iter(b'%', b).any(percent)
        || memchr::memchr_iter(b'&', b).any(entity)
}

/// Query or form pairs: CR/LF in names, injected headers or request lines in values,
/// `_method` overrides, long names. Returns the number of pairs.
fn pairs(
    s: &str,
    part: Part,
    req: &Request<'_>,
    cfg: &ProtocolConfig,
    r: &mut Report<'_>,
) -> usize {
    let mut n = 0;
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        n += 1;
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name.len() > cfg.max_arg_name_bytes {
            r.add(Rule::ArgNameTooLong, part.location(), name);
        }
        let name_crlf = has_crlf_marker(name);
        let value_crlf = has_crlf_marker(value);
        let name_d: Cow<'_, str> = if name_crlf || name.contains('%') {
            percent_decode(name, true)
        } else {
            Cow::Borrowed(name)
        };
        if name_crlf {
            let full = normalize::decode(&name_d);
            // A bare token (no `=`) that only ends with a line break, as a body typed into a
            // text area does, injects nothing; in a real name any break is (CRS 921150).
            let checked = if pair.contains('=') {
                &full[..]
            } else {
                full.trim_end_matches(['\r', '\n'])
            };
            if checked.contains(['\r', '\n']) {
                r.add(Rule::HeaderInjection, part.location(), &full);
            }
        }
        // `\u0061lert`: a JavaScript escape of a plain ASCII character in a query or form
        // value hides a word from filters and reaches script sinks as the character.
        if (value.contains('\\') || value.contains("%5C") || value.contains("%5c"))
            && ascii_js_escape(&percent_decode(value, true))
        {
            r.add(Rule::EncodingAbuse, location(part, &name_d), value);
        }
        if name_d == "_method" {
            let v = percent_decode(value, true);
            let letters = (3..=10).contains(&v.len()) && v.bytes().all(|c| c.is_ascii_alphabetic());
            if letters && !v.eq_ignore_ascii_case(req.method) {
                r.add(Rule::MethodOverride, location(part, &name_d), &v);
            }
        }
        if value_crlf || contains_ci(value, b"http") {
            let once = percent_decode(value, true);
            let full = normalize::decode(&once);
            if let Some(at) = injected(&full, false) {
                r.add(
                    Rule::HeaderInjection,
                    location(part, &name_d),
                    around(&full, at),
                );
            }
        }
    }
    n
}

/// Whether `v` holds `\uXXXX` with XXXX an ASCII letter, digit or punctuation (`\u0061`).
fn ascii_js_escape(v: &str) -> bool {
    v.as_bytes().windows(6).any(|w| {
        w[0] == b'\\'
            && (w[1] | 0x20) == b'u'
            && w[2] == b'0'
            && w[3] == b'0'
            && matches!((hex(w[4]), hex(w[5])), (Some(h), Some(l)) if (0x21..0x7f).contains(&(h << 4 | l)))
    })
}

fn location(part: Part, name: &str) -> String {
    let prefix = match part {
        Part::Body => "form:",
        Part::Query => "query:",
    };
    let mut s = String::with_capacity(prefix.len() + name.len().min(64));
    s.push_str(prefix);
    s.extend(name.chars().take(64).filter(|c| !c.is_control()));
    s
}

/// Where a decoded value carries something that would split a message: a line break
/// followed by a known header (`Set-Cookie: x`), a status line (`HTTP/1.1 200`) or a
/// request line (`GET / HTTP/1.1`); a value that is itself a request line; and when `any`
/// (header values, cookies) any `Name: value` after a line break, or a blank line and markup.
fn injected(v: &str, any: bool) -> Option<usize> {
    let b = v.as_bytes();
    if request_line(b.trim_ascii_start()) {
        return Some(0);
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\r' && b[i] != b'\n' {
            i += 1;
            continue;
        }
        let start = i;
        let mut breaks = 0;
        while i < b.len() && matches!(b[i], b'\r' | b'\n') {
            breaks += 1;
            i += 1;
        }
        let rest = &b[i..];
        if request_line(rest) || status_line(rest) || header_line(rest, any) {
            return Some(start);
        }
        if any && breaks >= 2 && rest.first() == Some(&b'<') {
            return Some(start);
        }
    }
    None
}

/// `Name[ws]: value` where the name is a splitting header (or any token when `any`), with a
/// value on the same line. CRs between name and colon (`Remote-addr\r\r:`) are allowed:
/// some servers fold them away.
fn header_line(b: &[u8], any: bool) -> bool {
    let n = b
        .iter()
        .take(64)
        .take_while(|c| super::headers::is_tchar(**c))
        .count();
    if n == 0 {
        return false;
    }
    let name = &b[..n];
    let known = SPLIT_HEADERS
        .iter()
        .any(|h| h.as_bytes().eq_ignore_ascii_case(name));
    if !known && !any {
        return false;
    }
    let mut j = n;
    while j < b.len() && matches!(b[j], b' ' | b'\t' | b'\r') {
        j += 1;
    }
    if b.get(j) != Some(&b':') {
        return false;
    }
    j += 1;
    while j < b.len() && matches!(b[j], b' ' | b'\t') {
        j += 1;
    }
    b.get(j).is_some_and(|c| !matches!(c, b'\r' | b'\n'))
}

/// `HTTP/<digit>` at the start of a line.
fn status_line(b: &[u8]) -> bool {
    b.len() > 5 && b[..5].eq_ignore_ascii_case(b"HTTP/") && b[5].is_ascii_digit()
}

/// `METHOD SP target SP HTTP/<digit>`.
fn request_line(b: &[u8]) -> bool {
    let Some(sp) = b.iter().take(10).position(|c| *c == b' ') else {
        return false;
    };
    let method = &b[..sp];
    if !SMUGGLE_METHODS
        .iter()
        .any(|m| m.as_bytes().eq_ignore_ascii_case(method))
    {
        return false;
    }
    let rest = &b[sp + 1..];
    let Some(t) = rest
        .iter()
        .take(2048)
        .position(|c| matches!(c, b' ' | b'\r' | b'\n'))
    else {
        return false;
    };
    t > 0 && rest[t] == b' ' && status_line(&rest[t + 1..])
}

/// `unix:` socket paths with a `|` target in the URL: the Apache mod_proxy SSRF
/// (CVE-2021-40438) shape.
fn unix_socket(q: &str, r: &mut Report<'_>) {
    if !q.contains('|') {
        return;
    }
    let d = percent_decode(q, true);
    let lower = d.to_ascii_lowercase();
    if let Some(at) = lower.find("unix:") {
        if lower[at..].contains('|') {
            r.add(Rule::UnixSocketTarget, "query", around(&d, at));
        }
    }
}

fn contains_ci(hay: &str, needle: &[u8]) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod crlf_tests {
    use super::{has_crlf_marker, has_crlf_start, CRLF_START};

    /// The word test finds a CR, LF, `%` or `&` exactly when the byte loop does.
    #[test]
    fn crlf_starts_eight_bytes_at_a_time() {
        let mut rng = crate::testutil::Rng(0xc41f_5eed);
        const BYTES: &[u8] =
            b"aZ09 \t\r\n%&\x00\x01\x0b\x0c\x0e\x24\x25\x26\x27\x8d\x8a\xa5\xa6\xff";
        for _ in 0..50_000 {
            let v = rng.bytes(40, BYTES, 6);
            let want = v.iter().any(|&b| CRLF_START[usize::from(b)]);
            assert_eq!(has_crlf_start(&v), want, "{v:?}");
        }
    }

    #[test]
    fn crlf_markers() {
        // Short strings take one pass, long ones the vectorised searches: both are tried.
        let long = "y".repeat(70);
        for s in [
            "a\r", "\nb", "%0a", "x%0D", "%0d%0a", "&#10;", "&#13;", "&#x0a;", "&#X0D;", "%%0a",
            "&&#1",
        ] {
            assert!(has_crlf_marker(s), "{s:?}");
            assert!(has_crlf_marker(&format!("{long}{s}")), "{s:?}");
            assert!(has_crlf_marker(&format!("{s}{long}")), "{s:?}");
        }
        for s in [
            "",
            "%",
            "%0",
            "%0b",
            "%1a",
            "&#",
            "&#2",
            "&#y",
            "& #10",
            "% 0a",
            "%a0",
            "plain",
            "Mozilla/5.0 (X11; Linux x86_64)",
        ] {
            assert!(!has_crlf_marker(s), "{s:?}");
            assert!(!has_crlf_marker(&format!("{long}{s}")), "{s:?}");
            assert!(!has_crlf_marker(&format!("{s}{long}")), "{s:?}");
        }
    }
}
