//! The request line and header list: framing (Content-Length / Transfer-Encoding), header
//! syntax, sizes, Host, Range, Connection and headers an API should never receive.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{header_location, ProtocolConfig, Report, Rule};
use crate::{detect::request::Request, http::HttpVersion};

/// Standard (RFC 9110, 5789) and WebDAV / versioning methods.
const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "QUERY",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "SEARCH",
    "REPORT",
    "MKCALENDAR",
    "MKACTIVITY",
    "CHECKOUT",
    "CHECKIN",
    "UNCHECKOUT",
    "MERGE",
    "ACL",
    "BIND",
    "UNBIND",
    "REBIND",
    "ORDERPATCH",
    "MKWORKSPACE",
    "UPDATE",
    "LABEL",
    "VERSION-CONTROL",
    "BASELINE-CONTROL",
];

/// RFC 9110 `tchar`.
pub(super) fn is_tchar(b: u8) -> bool {
    // As a table: one load per byte of every header name.
    static TCHAR: [bool; 256] = {
        let mut t = [false; 256];
        let mut x = 0;
        while x < 256 {
            let b = x as u8;
            t[x] = b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                );
            x += 1;
        }
        t
    };
    TCHAR[usize::from(b)]
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Control characters other than tab (and DEL) are never valid in a field value.
fn bad_value_byte(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// The position of the first [`bad_value_byte`] in `v` (the tests' name for it).
#[cfg(test)]
fn first_bad_value_byte(v: &[u8]) -> Option<usize> {
    scan_value(v).0
}

/// The position of the first [`bad_value_byte`] in `v`, and whether `v` holds a `%`, in one
/// pass. Header values are long and almost never hold a control byte: eight bytes are
/// tested at once for one below 0x20 or a DEL (the usual word tricks, which never miss one),
/// and only a chunk that has one (a tab, most likely) is looked at byte by byte. A `%` is
/// found by the same trick (a zero byte of `x ^ 0x25…`, a test exact about whether there is
/// one).
fn scan_value(v: &[u8]) -> (Option<usize>, bool) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let exact = |chunk: &[u8]| chunk.iter().position(|&b| bad_value_byte(b));
    let mut chunks = v.chunks_exact(8);
    let mut at = 0;
    let mut percent = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let below_space = x.wrapping_sub(0x20 * ONES) & !x & HIGH;
        let y = x ^ (0x7f * ONES);
        let del = y.wrapping_sub(ONES) & !y & HIGH;
        let z = x ^ (u64::from(b'%') * ONES);
        percent |= z.wrapping_sub(ONES) & !z & HIGH;
        if below_space | del != 0 {
            if let Some(i) = exact(chunk) {
                // Rare (a tab, most likely): the rest of the answer by a plain search.
                return (Some(at + i), v.contains(&b'%'));
            }
        }
        at += 8;
    }
    let rest = chunks.remainder();
    let percent = percent != 0 || rest.contains(&b'%');
    (exact(rest).map(|i| at + i), percent)
}

pub(super) fn check(req: &Request<'_>, cfg: &ProtocolConfig, r: &mut Report<'_>) {
    method(req, cfg, r);
    target(req, r);
    if req.head_len > cfg.max_header_bytes || req.headers.len() > cfg.max_headers {
        let evidence = format!(
            "{} header bytes, {} headers",
            req.head_len,
            req.headers.len()
        );
        r.add(Rule::OversizedHeaders, "headers", &evidence);
    }
    if req.body_len > cfg.max_body_bytes {
        let evidence = format!("{} body bytes", req.body_len);
        r.add(Rule::OversizedBody, "body", &evidence);
    }

    let mut cl_count = 0usize;
    let mut cl_value: Option<u64> = None;
    let mut te_count = 0usize;
    let mut host_count = 0usize;
    let mut range_count = 0usize;
    let mut content_type = false;
    let mut content_encoding: Option<&str> = None;
    for (name, value) in req.fields() {
        if !is_token(name) {
            // Names: a lenient reader hands us `Transfer-Encoding ` for `Transfer-Encoding :`
            // (a token has no blank to trim).
            let trimmed = name.trim_matches([' ', '\t']);
            if trimmed.eq_ignore_ascii_case("transfer-encoding")
                || trimmed.eq_ignore_ascii_case("content-length")
            {
                r.add(Rule::TeObfuscated, header_location(trimmed), name);
            } else {
                r.add(Rule::InvalidHeaderName, header_location(name), name);
            }
            continue;
        }
        let (bad, percent) = scan_value(value.as_bytes());
        if let Some(i) = bad {
            r.add(
                Rule::InvalidHeaderValue,
                header_location(name),
                &value[..i + 1],
            );
        }
        // Most values hold no `%` (found by the same word scan): they are spared the
        // substring search.
        if percent && value.contains("%00") {
            r.add(Rule::NullByte, header_location(name), value);
        }
        let n = name;
        if n.eq_ignore_ascii_case("content-length") {
            cl_count += 1;
            match parse_length(value) {
                Some(v) => cl_value = Some(cl_value.map_or(v, |c| c.max(v))),
                None => r.add(Rule::InvalidCl, header_location(n), value),
            }
        } else if n.eq_ignore_ascii_case("transfer-encoding") {
            te_count += 1;
            if !value.eq_ignore_ascii_case("chunked") {
                r.add(Rule::TeObfuscated, header_location(n), value);
            }
        } else if n.eq_ignore_ascii_case("host") {
            host_count += 1;
            host("header:host", value, req, cfg, r);
        } else if n.eq_ignore_ascii_case("range") {
            range_count += 1;
            range(value, cfg, r);
        } else if n.eq_ignore_ascii_case("request-range") {
            // Obsolete Netscape-era header: only range-amplification attacks send it.
            r.add(Rule::RequestRange, header_location(n), value);
        } else if n.eq_ignore_ascii_case("connection") {
            connection(value, r);
        } else if n.eq_ignore_ascii_case("content-type") {
            content_type = true;
        } else if n.eq_ignore_ascii_case("content-encoding") {
            content_encoding = Some(value);
        } else if n.eq_ignore_ascii_case("content-range") && !valid_content_range(value) {
            r.add(Rule::ContentRangeInvalid, header_location(n), value);
        } else if n.eq_ignore_ascii_case("accept-encoding") {
            if let Some(bad) = value.split(',').find(|c| !valid_coding(c)) {
                r.add(Rule::AcceptEncodingInvalid, header_location(n), bad.trim());
            }
        } else if (n.eq_ignore_ascii_case("accept") || n.eq_ignore_ascii_case("user-agent"))
            && value.trim().is_empty()
        {
            // Every browser and HTTP library sends a value; empty ones are hand-made.
            r.add(Rule::EmptyHeader, header_location(n), "empty value");
        } else if n.eq_ignore_ascii_case("cookie") {
            // RFC 2965 cookies (`$Version=1`) are parsed differently by different stacks.
            if value.trim_start().starts_with('$')
                && value.trim_start()[1..]
                    .get(..7)
                    .is_some_and(|v| v.eq_ignore_ascii_case("version"))
            {
                r.add(Rule::CookieV1, "header:cookie", value);
            }
        } else if (n.eq_ignore_ascii_case("x-http-method-override")
            || n.eq_ignore_ascii_case("x-http-method")
            || n.eq_ignore_ascii_case("x-method-override"))
            && !value.trim().eq_ignore_ascii_case(req.method)
        {
            r.add(Rule::MethodOverride, header_location(n), value);
        }
        if cfg
            .restricted_headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case(n))
        {
            r.add(Rule::RestrictedHeader, header_location(n), n);
        }
    }

    if cl_count > 1 {
        let evidence = format!("{cl_count} Content-Length headers");
        r.add(Rule::DuplicateCl, "header:content-length", &evidence);
    }
    if te_count > 1 {
        let evidence = format!("{te_count} Transfer-Encoding headers");
        r.add(Rule::TeObfuscated, "header:transfer-encoding", &evidence);
    }
    if cl_count > 0 && te_count > 0 {
        r.add(
            Rule::ClTe,
            "header:transfer-encoding",
            "Content-Length and Transfer-Encoding together",
        );
    }
    if te_count > 0 && req.version == HttpVersion::Http10 {
        r.add(
            Rule::TeHttp10,
            "header:transfer-encoding",
            "Transfer-Encoding in an HTTP/1.0 request",
        );
    }
    if cl_value.is_some_and(|v| v > cfg.max_body_bytes) {
        let evidence = format!("Content-Length {}", cl_value.unwrap_or(0));
        r.add(Rule::OversizedBody, "header:content-length", &evidence);
    }
    // A declared length wins over captured bytes (`Content-Length: 0` means none).
    let has_body = te_count > 0 || cl_value.map_or(req.body_len > 0, |v| v > 0);
    if has_body
        && (req.method.eq_ignore_ascii_case("GET") || req.method.eq_ignore_ascii_case("HEAD"))
    {
        r.add(Rule::GetWithBody, "body", req.method);
    }
    if let Some(coding) = content_encoding.filter(|_| !has_body) {
        r.add(
            Rule::ContentEncodingWithoutBody,
            "header:content-encoding",
            coding,
        );
    }
    // RFC 9112 §6.3: an HTTP/1 request with neither framing header has no body, so the body
    // its Content-Type announces is read as the start of the next request. HTTP/2 frames
    // bodies itself; `curl -X POST` without data sends no type and stays clean.
    if req.version != HttpVersion::Http2
        && cl_count == 0
        && te_count == 0
        && content_type
        && req.body_len == 0
        && ["POST", "PUT", "PATCH"]
            .iter()
            .any(|m| req.method.eq_ignore_ascii_case(m))
    {
        r.add(
            Rule::UnframedBody,
            "header:content-length",
            "no Content-Length or Transfer-Encoding",
        );
    }
    // HTTP/2 names the host in `:authority` (the exchange's host), not a Host field: the
    // same rules judge it (a local authority from a remote peer is the same rebinding).
    let authority = req.version == HttpVersion::Http2;
    if let Some(value) = req.authority.filter(|_| authority) {
        host("header::authority", value, req, cfg, r);
    }
    if host_count == 0 && !authority {
        r.add(Rule::HostMissing, "header:host", "no Host header");
    } else if host_count > 1 {
        let evidence = format!("{host_count} Host headers");
        r.add(Rule::MultipleHost, "header:host", &evidence);
    }
    if range_count > 1 {
        r.add(Rule::InvalidRange, "header:range", "several Range headers");
    }
}

fn method(req: &Request<'_>, cfg: &ProtocolConfig, r: &mut Report<'_>) {
    let m = req.method;
    if KNOWN_METHODS.contains(&m) || cfg.extra_methods.iter().any(|e| e == m) {
        return;
    }
    r.add(Rule::MethodUnknown, "method", m);
}

/// Digits only, no sign, no list, fits in u64.
/// One `Accept-Encoding` element: empty, `*`, or a content-coding name (letters, digits,
/// `-`, `_`, `.`) with parameters (`;q=0.5`). Anything else is no coding any server knows
/// and is how CVE-2022-21907 (HTTP.sys) payloads look (`AA&AA&**AAA`).
fn valid_coding(element: &str) -> bool {
    let coding = element.split(';').next().unwrap_or("").trim();
    coding.is_empty()
        || coding == "*"
        || (coding.len() <= 64
            && coding
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
}

pub(super) fn parse_length(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// RFC 9112 §3.2: origin form (`/p`), absolute form with a path (`http://h/p`), authority
/// form only for `CONNECT`, `*` only for `OPTIONS`. HTTP/2 targets are checked with its
/// pseudo-headers. Proxies, browsers and SDKs never send anything else; a target like
/// `http://host` (no path) or `index.html` is hand-made and parsed differently by servers.
fn target(req: &Request<'_>, r: &mut Report<'_>) {
    if req.version == HttpVersion::Http2 || req.method.eq_ignore_ascii_case("CONNECT") {
        return;
    }
    let p = req.path;
    let valid = if p.starts_with('/') {
        true
    } else if p == "*" {
        req.method.eq_ignore_ascii_case("OPTIONS")
    } else {
        match p.split_once("://") {
            Some((scheme, rest)) => {
                let scheme_ok = scheme
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic())
                    && scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
                // The authority must be followed by a path (`req.path` stops at `?`).
                scheme_ok && rest.find('/').is_some_and(|i| i > 0)
            }
            None => false,
        }
    };
    if !valid {
        r.add(Rule::InvalidTarget, "path", p);
    }
}

/// RFC 9110 §14.4 `Content-Range` of a request (resumable uploads send it): `bytes
/// first-last/complete`, `bytes */complete`, or another unit followed by a value.
fn valid_content_range(value: &str) -> bool {
    let Some((unit, rest)) = value.trim().split_once(' ') else {
        return false;
    };
    if !is_token(unit) || rest.trim().is_empty() {
        return false;
    }
    if !unit.eq_ignore_ascii_case("bytes") {
        return true;
    }
    let Some((range, complete)) = rest.trim().split_once('/') else {
        return false;
    };
    let complete = match complete {
        "*" => None,
        c => match parse_length(c) {
            Some(n) => Some(n),
            None => return false,
        },
    };
    if range == "*" {
        return complete.is_some();
    }
    match range.split_once('-') {
        Some((a, b)) => match (parse_length(a), parse_length(b)) {
            (Some(first), Some(last)) => last >= first && complete.is_none_or(|c| last < c),
            _ => false,
        },
        None => false,
    }
}

/// The bytes a Host value may hold: ASCII letters and digits and `-._:[]` (a table: every
/// request's Host is checked byte by byte).
static HOST_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut x = 0;
    while x < 256 {
        let b = x as u8;
        t[x] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'[' | b']');
        x += 1;
    }
    t
};

/// The Host rules on a host a request names: its Host field (`header:host`) or, for HTTP/2,
/// its `:authority` (`header::authority`).
fn host(location: &str, value: &str, req: &Request<'_>, cfg: &ProtocolConfig, r: &mut Report<'_>) {
    if value.is_empty() {
        r.add(Rule::HostMissing, location, "empty Host header");
        return;
    }
    let ok = value.bytes().all(|b| HOST_BYTE[usize::from(b)]);
    if !ok {
        r.add(Rule::HostInvalid, location, value);
        return;
    }
    if let Some(ip) = local_host_ip(value) {
        // Only a local client has a reason to call this host by a local address; from
        // anywhere else it is DNS rebinding or a bypass of "localhost is trusted" checks.
        // An unknown peer (offline input) counts as remote.
        let peer_local = req
            .peer
            .is_some_and(|p| is_loopback(p) || (is_link_local(p) && is_link_local(ip)));
        if !peer_local {
            r.add(Rule::HostLocal, location, value);
        }
    }
    if cfg.flag_ip_host && is_ip_host(value) {
        r.add(Rule::HostIp, location, value);
    }
}

/// The Host's address when it is loopback, unspecified (`0.0.0.0`) or link-local
/// (`169.254.169.254`, `fe80::…`), with or without a port.
fn local_host_ip(value: &str) -> Option<IpAddr> {
    // An IPv4 address's first number is written without leading zeros: only one written
    // `127`, `0` or `169` can be loopback, unspecified or link-local, and every other host
    // (names, other addresses) is turned away without parsing.
    // (Compared as bytes: the number before the first `.`, or the whole value without one,
    // is `127`, `0` or `169` exactly when the value is one of them or starts with one and a
    // `.`; no character search for the `.` of every other host.)
    let b = value.as_bytes();
    let first_is = |n: &[u8]| {
        b.strip_prefix(n)
            .is_some_and(|rest| rest.is_empty() || rest[0] == b'.')
    };
    if b.first() != Some(&b'[') && !(first_is(b"127") || first_is(b"0") || first_is(b"169")) {
        return None;
    }
    let ip = if let Some(rest) = value.strip_prefix('[') {
        let (inner, _) = rest.split_once(']')?;
        IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?)
    } else {
        let host = value.split_once(':').map_or(value, |(h, _)| h);
        IpAddr::V4(host.parse::<Ipv4Addr>().ok()?)
    };
    (is_loopback(ip) || ip.is_unspecified() || is_link_local(ip)).then_some(ip)
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// `1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:443`, or a bare number (`2130706433`).
fn is_ip_host(value: &str) -> bool {
    if value.starts_with('[') {
        return true;
    }
    let host = match value.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => value,
    };
    host.parse::<Ipv4Addr>().is_ok()
        || host.parse::<IpAddr>().is_ok()
        || (!host.is_empty() && host.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

/// `bytes=` ranges (other units are ignored, as RFC 9110 tells servers to do): too many,
/// malformed or reversed ranges are how range-amplification and parser-confusion look.
fn range(value: &str, cfg: &ProtocolConfig, r: &mut Report<'_>) {
    let Some(unit) = value.get(..6) else { return };
    if !unit.eq_ignore_ascii_case("bytes=") {
        return;
    }
    let mut count = 0usize;
    for spec in value[6..].split(',') {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        count += 1;
        let valid = match spec.split_once('-') {
            Some((a, b)) => match (parse_length(a.trim()), parse_length(b.trim())) {
                (Some(first), Some(last)) => last >= first,
                (Some(_), None) => b.trim().is_empty(),
                (None, Some(_)) => a.trim().is_empty(),
                (None, None) => false,
            },
            None => false,
        };
        if !valid {
            r.add(Rule::InvalidRange, "header:range", value);
            return;
        }
    }
    if count > cfg.max_ranges {
        r.add(Rule::InvalidRange, "header:range", value);
    }
}

/// A repeated or contradictory (`close` with `keep-alive`) Connection option.
fn connection(value: &str, r: &mut Report<'_>) {
    let mut seen: [Option<&str>; 8] = [None; 8];
    let (mut close, mut keep) = (false, false);
    for (i, opt) in value.split(',').map(str::trim).enumerate() {
        if opt.is_empty() {
            continue;
        }
        close |= opt.eq_ignore_ascii_case("close");
        keep |= opt.eq_ignore_ascii_case("keep-alive");
        let repeated = seen.iter().flatten().any(|s| s.eq_ignore_ascii_case(opt));
        if repeated || (close && keep) {
            r.add(Rule::ConnectionConflict, "header:connection", value);
            return;
        }
        if let Some(slot) = seen.get_mut(i) {
            *slot = Some(opt);
        }
    }
}

#[cfg(test)]
mod tchar_tests {
    /// The first-number pre-check keeps every answer of the parse it guards.
    #[test]
    fn local_hosts_without_parsing_the_others() {
        let parsed = |value: &str| {
            let ip = if let Some(rest) = value.strip_prefix('[') {
                let (inner, _) = rest.split_once(']')?;
                super::IpAddr::V6(inner.parse::<super::Ipv6Addr>().ok()?)
            } else {
                let host = value.split_once(':').map_or(value, |(h, _)| h);
                super::IpAddr::V4(host.parse::<super::Ipv4Addr>().ok()?)
            };
            (super::is_loopback(ip) || ip.is_unspecified() || super::is_link_local(ip))
                .then_some(ip)
        };
        const OCTETS: &[&str] = &[
            "127", "0", "00", "01", "169", "254", "1", "10", "255", "256", "0127", "1270", "", "a",
            "-1",
        ];
        const V6: &[&str] = &[
            "::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
            "2001:db8::1",
            "x",
        ];
        const TAILS: &[&str] = &[":80", ":", "]", ".", ":8080x"];
        let mut rng = crate::testutil::Rng(0x1057_10ca);
        let mut pick = |list: &[&'static str]| list[rng.next() as usize % list.len()];
        let mut local = 0;
        for round in 0..100_000 {
            let mut v = if round % 4 == 0 {
                format!("[{}]", pick(V6))
            } else {
                let n = 3 + round % 3;
                (0..n).map(|_| pick(OCTETS)).collect::<Vec<_>>().join(".")
            };
            if round % 3 == 0 {
                v.push_str(pick(TAILS));
            }
            let want = parsed(&v);
            local += usize::from(want.is_some());
            assert_eq!(super::local_host_ip(&v), want, "{v:?}");
        }
        assert!(local > 500, "{local}");
    }

    /// The word-at-a-time search finds what a byte-by-byte one does.
    #[test]
    fn control_bytes_in_values() {
        let mut rng = crate::testutil::Rng(0x7ab5_0b0e);
        const BYTES: &[u8] = b"aZ09 \t\x00\x01\x1f\x20\x7e\x7f\x80\xff:;\r\n%$&\xa5\x24\x26";
        for _ in 0..20_000 {
            let v = rng.bytes(40, BYTES, 8);
            let want = v.iter().position(|&b| super::bad_value_byte(b));
            assert_eq!(super::first_bad_value_byte(&v), want, "{v:?}");
            assert_eq!(super::scan_value(&v).1, v.contains(&b'%'), "{v:?}");
        }
    }

    /// The table is RFC 9110's `tchar`: letters, digits and ``!#$%&'*+-.^_`|~``.
    #[test]
    fn tchar_table() {
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(super::is_tchar(b), want, "{b:#x}");
        }
    }
}
