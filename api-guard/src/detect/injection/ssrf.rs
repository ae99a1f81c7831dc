//! Server-side request forgery: a parameter that is, or contains, a URL or host pointing at
//! loopback, link-local / cloud metadata or private addresses, or a URL with a scheme that
//! smuggles requests to other protocols (`gopher://`, `dict://`, `ldap://`).
//!
//! URLs are parsed (scheme, userinfo, host, port) and the host is classified with
//! `std::net` plus the numeric forms `inet_aton` accepts (`2130706433`, `0x7f000001`,
//! `017700000001`, `127.1`). `file://` is local file inclusion and is reported by the
//! traversal checker. Only parameters, JSON, form fields, cookies and non-`Host` headers are
//! inspected — never the URL path — and a bare IP-looking value must parse as a whole
//! address (`10.2.3` in prose is a version, not a host).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{
    text::{around, find_ci, needle_masks},
    Candidate,
};
use crate::detect::{
    finding::Finding,
    inputs::Source,
    rules::{self, Rule},
};

/// URLs examined per value.
const MAX_URLS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Metadata,
    Loopback,
    Private,
}

/// Schemes that reach non-HTTP services from an HTTP client.
const SMUGGLING_SCHEMES: &[&str] = &[
    "gopher",
    "dict",
    "ldap",
    "ldaps",
    "tftp",
    "jar",
    "netdoc",
    "local_file",
    "sftp",
    "xri",
];

pub fn check(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    if may_match(c) {
        check_ungated(c, out);
    }
}

/// A necessary condition for every rule: a URL needs a `:` (and a look-alike host a
/// non-ASCII byte). What is left is a bare host as the whole value, never in a header nor
/// with an `@`: an address starting with a digit needs dots, a bracketed one `[`, and a
/// name either a dot or (behind a `/`, without which a lone name does not count) one of
/// the dotless local names.
fn may_match(c: &Candidate<'_>) -> bool {
    const DOTLESS_NAMES: &[&[u8]] = &[b"localhost", b"ip6-loopback", b"metadata", b"instance-data"];
    const MASKS: [u128; DOTLESS_NAMES.len()] = needle_masks(DOTLESS_NAMES);
    let s = &c.bytes;
    // A URL needs a `:`, a look-alike host a non-ASCII byte, a truncated one its `?`.
    if s.has(b':') || s.non_ascii || c.decoded.trim_end().ends_with('?') {
        return true;
    }
    if c.input.source == Source::Header || s.has(b'@') {
        return false;
    }
    let b = c.decoded.as_bytes();
    s.has(b'.')
        || s.has(b'[')
        || (s.has(b'/')
            && DOTLESS_NAMES
                .iter()
                .zip(&MASKS)
                .any(|(n, m)| s.has_mask(*m) && find_ci(b, n).is_some()))
}

/// [`check`] without [`may_match`] (which must not change its verdicts).
pub(super) fn check_ungated(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    if matches!(c.input.source, Source::Path | Source::ArgName) {
        return;
    }
    // Referer/Origin name where the client came from (often a local dev server), and
    // forwarding headers carry client addresses: none is fetched by the server.
    let header = c.input.source == Source::Header;
    if header
        && [
            "host",
            "referer",
            "origin",
            "x-forwarded-for",
            "x-real-ip",
            "forwarded",
            "x-forwarded-host",
            "via",
            "true-client-ip",
            "x-client-ip",
            "cf-connecting-ip",
            "x-originating-ip",
        ]
        .iter()
        .any(|h| c.input.name.eq_ignore_ascii_case(h))
    {
        return;
    }
    let value = c.decoded;
    let b = value.as_bytes();
    if b.len() < 3 {
        return;
    }
    let mut report = |rule: &'static Rule, pos: usize| {
        out.push(Finding::new(rule, c.input.location(), around(value, pos)));
    };
    if truncating_url(value) {
        report(&rules::SSRF_RFI, 0);
        return;
    }
    let mut from = 0;
    for _ in 0..MAX_URLS {
        let Some(rel) = find_sep(&b[from..]) else {
            break;
        };
        let at = from + rel;
        from = at + 1;
        let scheme = scheme_before(b, at);
        let slashes = b[at + 1..]
            .iter()
            .take_while(|&&x| x == b'/' || x == b'\\')
            .count();
        let authority_start = at + 1 + slashes;
        let lower = scheme.to_ascii_lowercase();
        // WHATWG URL parsers read `http:127.0.0.1` as `http://127.0.0.1/`: for the special
        // schemes the slashes are optional.
        let special = matches!(lower.as_str(), "http" | "https" | "ftp" | "ws" | "wss");
        if scheme.is_empty() || (slashes == 0 && lower != "jar" && !special) {
            continue;
        }
        if lower == "file" || lower == "php" {
            continue;
        }
        let scheme_pos = at - scheme.len();
        let authority = authority(&b[authority_start..]);
        if let Some(class) = classify_authority(authority, false) {
            report(rule_for(class), scheme_pos);
            return;
        }
        if slashes == 0 && lower != "jar" {
            continue;
        }
        if SMUGGLING_SCHEMES.contains(&lower.as_str()) {
            report(&rules::SSRF_SCHEME, scheme_pos);
            return;
        }
        // Remote file inclusion shapes: a script fetched from a raw IP address, or a URL
        // ending in `?` so the application's own suffix becomes a query string.
        if matches!(lower.as_str(), "http" | "https" | "ftp" | "ftps") {
            let rest = &b[authority_start..];
            let url_end = rest
                .iter()
                .position(|&x| x.is_ascii_whitespace() || matches!(x, b'"' | b'\'' | b'<' | b'>'))
                .unwrap_or(rest.len());
            let url = &rest[..url_end];
            // Or a remote URL as the whole value of a parameter that names a file to
            // include or read (`page=`, `file=`, `_CONF[path]=`, `templateDir=`).
            let whole = b[..scheme_pos].iter().all(u8::is_ascii_whitespace);
            if (url.len() > authority.len() + 1 || whole) && url.ends_with(b"?")
                || ip_literal(authority)
                || (whole && file_like_name(&c.input.name))
            {
                report(&rules::SSRF_RFI, scheme_pos);
                return;
            }
        }
    }
    // A bare host or address as the whole value: `169.254.169.254`, `localhost:8080/`.
    // Not for headers, e-mail addresses (`a@[10.0.0.1]`) or a lone name (`server=localhost`
    // is configuration); `localhost/` or `localhost:80` is a target.
    let t = value.trim();
    let lone_name = !t.contains(['/', ':']) && !t.starts_with(|c: char| c.is_ascii_digit());
    if !header
        && !t.is_empty()
        && t.len() <= 255
        && !t.contains(char::is_whitespace)
        && !t.contains("://")
        && !t.contains('@')
        && !lone_name
    {
        if let Some(class) = classify_authority(authority(t.as_bytes()), true) {
            // A bare private address names a peer inside the cluster (`host=10.0.0.5`,
            // `db=postgres.internal:5432`): everyday configuration, reported apart so the
            // detector can leave it out by default (see `ssrf_private_hosts`).
            let rule = match class {
                Class::Private => &rules::SSRF_PRIVATE_HOST,
                _ => rule_for(class),
            };
            report(rule, 0);
        }
    }
}

/// A whole value that is a fetchable URL cut off by `?` (`http:evil/x.txt?`, `ftp?`): the
/// application's own suffix (`.php`) then becomes a query string of the remote file. Written
/// with or without slashes, or with the rest dropped, as remote file inclusion probes send it.
fn truncating_url(value: &str) -> bool {
    let t = value.trim().as_bytes();
    let Some(body) = t.strip_suffix(b"?") else {
        return false;
    };
    let body = body.trim_ascii_end();
    let body = match body.iter().rposition(|&x| x != b'?') {
        Some(e) => &body[..=e],
        None => return false,
    };
    let scheme = body.iter().take_while(|x| x.is_ascii_alphabetic()).count();
    matches!(
        &body[..scheme].to_ascii_lowercase()[..],
        b"file" | b"ftp" | b"ftps" | b"http" | b"https"
    ) && (scheme == body.len() || body[scheme] == b':')
        && !body.iter().any(u8::is_ascii_whitespace)
}

/// Whether a parameter name says its value is a file or page to load: one of its words
/// (split at non-letters and at lower-to-upper case changes) names a file, path, page,
/// template or include. `url`, `src`, `redirect` or `callback` hold URLs by design.
fn file_like_name(name: &str) -> bool {
    const WORDS: &[&str] = &[
        "file",
        "filename",
        "filepath",
        "path",
        "page",
        "include",
        "inc",
        "require",
        "template",
        "tpl",
        "tmpl",
        "doc",
        "document",
        "folder",
        "dir",
        "directory",
        "load",
        "lang",
        "language",
        "module",
        "mod",
        "style",
        "theme",
        "view",
        "layout",
        "skin",
        "conf",
        "config",
        "cfg",
        "read",
        "show",
    ];
    if name.len() > 64 {
        return false;
    }
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for ch in name.chars() {
        if !ch.is_ascii_alphanumeric() {
            words.push(std::mem::take(&mut cur));
            prev_lower = false;
            continue;
        }
        if ch.is_ascii_uppercase() && prev_lower {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
        cur.push(ch.to_ascii_lowercase());
    }
    words.push(cur);
    words.iter().any(|w| WORDS.contains(&w.as_str()))
}

/// Whether the authority's host is a literal IP address (after any userinfo).
fn ip_literal(a: &[u8]) -> bool {
    let host_port = match a.iter().rposition(|&x| x == b'@') {
        Some(p) => &a[p + 1..],
        None => a,
    };
    if host_port.first() == Some(&b'[') {
        return true;
    }
    // An unbracketed IPv6 address (`https://2001:db8::1/x.php`): clients that accept it
    // fetch from it.
    if std::str::from_utf8(host_port).is_ok_and(|h| h.parse::<Ipv6Addr>().is_ok()) {
        return true;
    }
    let host = host_port.split(|&x| x == b':').next().unwrap_or(&[]);
    std::str::from_utf8(host).is_ok_and(|h| h.parse::<Ipv4Addr>().is_ok())
}

fn rule_for(class: Class) -> &'static Rule {
    match class {
        Class::Metadata => &rules::SSRF_METADATA,
        Class::Loopback => &rules::SSRF_LOOPBACK,
        Class::Private => &rules::SSRF_PRIVATE,
    }
}

/// The next `:` that may end a URL scheme.
fn find_sep(b: &[u8]) -> Option<usize> {
    b.iter().position(|&x| x == b':')
}

/// The scheme letters just before `colon` (`http`, `gopher`, `jar:http` → `http`).
fn scheme_before(b: &[u8], colon: usize) -> String {
    let start = b[..colon]
        .iter()
        .rposition(|x| !(x.is_ascii_alphanumeric() || matches!(x, b'+' | b'-' | b'.' | b'_')))
        .map_or(0, |p| p + 1);
    let s = &b[start..colon];
    if s.is_empty() || s.len() > 20 || !s[0].is_ascii_alphabetic() {
        return String::new();
    }
    String::from_utf8_lossy(s).into_owned()
}

/// The authority: up to the first `/`, `?`, `#`, `\`, blank or quote.
fn authority(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .position(|&x| {
            matches!(x, b'/' | b'?' | b'#' | b'\\' | b'"' | b'\'' | b'<' | b'>')
                || x.is_ascii_whitespace()
        })
        .unwrap_or(b.len());
    &b[..end]
}

/// Classifies `userinfo@host:port`; the host is what follows the *last* `@`. A `bare`
/// value (no scheme) must be a name or a canonical address: `10.2.3` is a version.
fn classify_authority(a: &[u8], bare: bool) -> Option<Class> {
    let host_port = match a.iter().rposition(|&x| x == b'@') {
        Some(p) => &a[p + 1..],
        None => a,
    };
    let host = if host_port.first() == Some(&b'[') {
        let end = host_port.iter().position(|&x| x == b']')?;
        &host_port[1..end]
    } else {
        match host_port.iter().rposition(|&x| x == b':') {
            // More than one colon without brackets: a bare IPv6 address.
            Some(_) if host_port.iter().filter(|&&x| x == b':').count() > 1 => host_port,
            Some(p) => &host_port[..p],
            None => host_port,
        }
    };
    let host = std::str::from_utf8(host).ok()?;
    if bare && host.starts_with(|c: char| c.is_ascii_digit()) && host.parse::<Ipv4Addr>().is_err() {
        return None;
    }
    classify_host(host)
}

fn classify_host(host: &str) -> Option<Class> {
    let folded = fold_lookalikes(host);
    let h = folded.trim_end_matches('.').to_ascii_lowercase();
    if h.is_empty() {
        return None;
    }
    const METADATA_NAMES: &[&str] = &[
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "metadata.packet.net",
        "metadata.platformequinix.com",
        "metadata.tencentyun.com",
    ];
    const LOOPBACK_NAMES: &[&str] = &[
        "localhost",
        "localhost.localdomain",
        "localhost4",
        "localhost4.localdomain4",
        "localhost6",
        "localhost6.localdomain6",
        "ip6-localhost",
        "ip6-loopback",
        "ipv6-localhost",
        // Public DNS names that resolve to 127.0.0.1: filters that only compare names miss them.
        "localtest.me",
        "lvh.me",
        // The container's host machine (Docker, Podman): from inside a container these
        // reach the services bound on the host, as loopback does on the host itself.
        "host.docker.internal",
        "gateway.docker.internal",
        "kubernetes.docker.internal",
        "host.containers.internal",
    ];
    const INTERNAL_NAMES: &[&str] = &[
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ];
    if METADATA_NAMES.contains(&h.as_str()) {
        return Some(Class::Metadata);
    }
    if LOOPBACK_NAMES.contains(&h.as_str())
        || [".localhost", ".localtest.me", ".lvh.me"]
            .iter()
            .any(|s| h.ends_with(s))
    {
        return Some(Class::Loopback);
    }
    if INTERNAL_NAMES.contains(&h.as_str()) {
        return Some(Class::Private);
    }
    if h.contains(':') {
        let addr = h.split('%').next().unwrap_or("");
        return addr.parse::<Ipv6Addr>().ok().and_then(classify_v6);
    }
    parse_v4(&h).and_then(classify_v4)
}

/// Circled and full-width letters and digits fold to ASCII (`ⓛⓞⓒⓐⓛⓗⓞⓢⓣ`).
fn fold_lookalikes(s: &str) -> String {
    if s.is_ascii() {
        return s.to_owned();
    }
    s.chars()
        .map(|c| match c as u32 {
            0x24D0..=0x24E9 => char::from(b'a' + (c as u32 - 0x24D0) as u8),
            0x24B6..=0x24CF => char::from(b'a' + (c as u32 - 0x24B6) as u8),
            0xFF41..=0xFF5A => char::from(b'a' + (c as u32 - 0xFF41) as u8),
            0xFF10..=0xFF19 => char::from(b'0' + (c as u32 - 0xFF10) as u8),
            0x3002 | 0xFF0E | 0xFF61 => '.',
            _ => c,
        })
        .collect()
}

/// IPv4 in every form `inet_aton` takes: 1–4 parts, each decimal, octal (`0` prefix) or
/// hex (`0x`), the last part filling the remaining bytes. Oversized hex keeps its low 32
/// bits, as some URL parsers do.
fn parse_v4(h: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = h.split('.').collect();
    if parts.is_empty() || parts.len() > 4 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut nums = Vec::with_capacity(parts.len());
    for p in &parts {
        let (digits, radix) = if let Some(x) = p.strip_prefix("0x") {
            (x, 16)
        } else if p.len() > 1 && p.starts_with('0') {
            (&p[1..], 8)
        } else {
            (*p, 10)
        };
        if digits.is_empty() && radix == 16 {
            return None;
        }
        if !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        let n = if radix == 16 && digits.len() > 8 {
            u64::from_str_radix(&digits[digits.len() - 8..], 16).ok()?
        } else if digits.is_empty() {
            0
        } else {
            u64::from_str_radix(digits, radix).ok()?
        };
        nums.push(n);
    }
    // A lone small decimal (`42`, `0`) is an id, not an address; only `0` (which reaches
    // loopback on Linux) and 32-bit values written in full count.
    if nums.len() == 1 && parts[0].len() < 8 && parts[0] != "0" && !parts[0].starts_with("0x") {
        return None;
    }
    let (last, head) = nums.split_last()?;
    let mut v: u64 = 0;
    for &n in head {
        if n > 255 {
            return None;
        }
        v = v << 8 | n;
    }
    let rest_bits = 8 * (4 - head.len()) as u32;
    if *last >= 1u64 << rest_bits {
        return None;
    }
    v = v << rest_bits | last;
    Some(Ipv4Addr::from(v as u32))
}

fn classify_v4(ip: Ipv4Addr) -> Option<Class> {
    let o = ip.octets();
    match o {
        [169, 254, 169, 254] | [169, 254, 170, 2] | [100, 100, 100, 200] | [192, 0, 0, 192] => {
            Some(Class::Metadata)
        }
        [127, ..] | [0, ..] => Some(Class::Loopback),
        [169, 254, ..] => Some(Class::Metadata),
        [10, ..] | [192, 168, ..] => Some(Class::Private),
        [172, b, ..] if (16..32).contains(&b) => Some(Class::Private),
        [100, b, ..] if (64..128).contains(&b) => Some(Class::Private),
        _ => None,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Class> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) embeds an IPv4 address.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0) {
        return classify_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some(Class::Metadata);
    }
    if ip.is_loopback() || ip.is_unspecified() {
        return Some(Class::Loopback);
    }
    if (s[0] & 0xffc0) == 0xfe80 {
        return Some(Class::Metadata);
    }
    if (s[0] & 0xfe00) == 0xfc00 {
        return Some(Class::Private);
    }
    // IPv4-compatible (deprecated) `::a.b.c.d`.
    if s[..6].iter().all(|&x| x == 0) {
        return classify_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    None
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::detect::{Kind, Severity};

    fn run(source: Source, name: &str, value: &str) -> Vec<Finding> {
        super::super::run_check(check, source, name, value)
    }

    fn rule(value: &str) -> Option<(&'static str, Severity)> {
        let f = run(Source::Query, "url", value);
        assert!(f.len() <= 1, "{f:?}");
        f.first().map(|f| {
            assert_eq!(f.kind, Kind::Ssrf);
            assert_eq!(f.location, "query:url");
            (f.rule_id, f.severity)
        })
    }

    #[test]
    fn container_hosts_slashless_urls_and_truncated_urls() {
        let lo = Some(("ssrf.loopback", Severity::High));
        let meta = Some(("ssrf.metadata", Severity::Critical));
        let rfi = Some(("ssrf.rfi", Severity::Medium));
        assert_eq!(rule("host.docker.internal/"), lo);
        assert_eq!(rule("http://host.containers.internal:8080/x"), lo);
        assert_eq!(rule("http:127.0.0.1"), lo);
        assert_eq!(rule("https:169.254.169.254/latest"), meta);
        assert_eq!(rule("https://metadata.packet.net/userdata"), meta);
        for v in [
            "http?",
            "FILE?",
            "ftps?",
            "http:evil.example/shell.txt??",
            "https://foo.bar?",
        ] {
            assert_eq!(rule(v), rfi, "{v}");
        }
        for v in [
            "https://foo.bar?foo=bar",
            "files?",
            "http vs https?",
            "what is http?",
            "http: the protocol",
            "time:10:30",
        ] {
            assert_eq!(rule(v), None, "{v}");
        }
    }

    #[test]
    fn internal_targets() {
        let meta = Some(("ssrf.metadata", Severity::Critical));
        let lo = Some(("ssrf.loopback", Severity::High));
        let private = Some(("ssrf.private", Severity::Low));
        assert_eq!(rule("http://169.254.169.254/latest/meta-data/"), meta);
        assert_eq!(
            rule("http://metadata.google.internal/computeMetadata/v1/"),
            meta
        );
        assert_eq!(rule("http://[fd00:ec2::254]/latest"), meta);
        assert_eq!(rule("http://100.100.100.200/latest/meta-data"), meta);
        assert_eq!(rule("http://2852039166/"), meta);
        assert_eq!(rule("169.254.169.254"), meta);
        assert_eq!(rule("localhost:8080/admin"), lo);
        assert_eq!(rule("http://127.0.0.1:8080/admin"), lo);
        assert_eq!(rule("http://localhost/"), lo);
        assert_eq!(rule("http://2130706433/"), lo);
        assert_eq!(rule("http://0x7f000001/"), lo);
        assert_eq!(rule("http://017700000001/"), lo);
        assert_eq!(rule("http://127.1/"), lo);
        assert_eq!(rule("http://0/"), lo);
        assert_eq!(rule("http://0.0.0.0:22"), lo);
        assert_eq!(rule("http://[::1]/"), lo);
        assert_eq!(rule("http://[::ffff:127.0.0.1]/"), lo);
        assert_eq!(rule("http://lvh.me:8080/"), lo);
        assert_eq!(rule("app.localtest.me/"), lo);
        assert_eq!(rule("ipv6-localhost/"), lo);
        assert_eq!(rule("http://evil.com@127.0.0.1/"), lo);
        assert_eq!(rule("https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/"), lo);
        assert_eq!(rule("see http://10.0.0.5/x for details"), private);
        assert_eq!(rule("http://172.20.1.1"), private);
        assert_eq!(rule("http://192.168.1.1/"), private);
        assert_eq!(rule("http://[fc00::1]/"), private);
        // Bare private hosts are their own rule (dropped by the detector unless
        // `ssrf_private_hosts` is on); metadata and loopback stay as they are.
        let host = Some(("ssrf.private_host", Severity::Low));
        assert_eq!(rule("10.0.0.5"), host);
        assert_eq!(rule("10.0.0.5:5432"), host);
        assert_eq!(rule("kubernetes.default.svc/"), host);
        assert_eq!(rule("169.254.169.254:80"), meta);
        assert_eq!(rule("127.0.0.1:6379"), lo);
        assert_eq!(
            rule("gopher://example.com:70/_x"),
            Some(("ssrf.scheme", Severity::High))
        );
        assert_eq!(
            rule("dict://example.com:11211/stat"),
            Some(("ssrf.scheme", Severity::High))
        );
    }

    /// A remote URL as the whole value of a file-like parameter is an include; the same URL
    /// in a URL parameter, or mentioned in text, is not.
    #[test]
    fn remote_includes_into_file_parameters() {
        let rfi = |name: &str, v: &str| run(Source::Query, name, v).first().map(|f| f.rule_id);
        for (name, v) in [
            ("page", "http://evil.example/shell.txt"),
            ("file", "https://evil.example/x.php"),
            ("include", "ftp://evil.example/x.php"),
            ("_CONF[path]", "https://foo.bar"),
            ("mosConfig_absolute_path", "https://foo.bar"),
            ("templateDir", "http://evil.example/t/"),
            ("lang", " http://evil.example/en.php"),
            ("x", "https://foo.bar?"),
            ("src", "https://2001:41d0:701:1100::29c8/gecko.php"),
        ] {
            assert_eq!(rfi(name, v), Some("ssrf.rfi"), "{name}={v}");
        }
        for (name, v) in [
            ("url", "https://docs.example.com/page"),
            ("redirect", "https://app.example.com/home"),
            ("homepage", "https://me.example.org/"),
            ("profile", "https://me.example.org/"),
            ("page", "see https://example.com/x"),
            ("page", "2"),
        ] {
            assert_eq!(rfi(name, v), None, "{name}={v}");
        }
    }

    #[test]
    fn public_and_non_urls() {
        for v in [
            "https://example.com/webhook",
            "https://example.com/cb?x=http://example.org/",
            "version 10.2.3 released",
            "10.2.3",
            "1.2.3",
            "42",
            "email me at a@b.com",
            "price: $5",
            "100%",
            "file:///etc/passwd",
            "https://example.com/search?q=x",
            "time 10:30",
            "{{user_name}}",
        ] {
            assert_eq!(rule(v), None, "{v}");
        }
        assert!(run(Source::Header, "host", "localhost").is_empty());
        assert!(run(Source::Header, "referer", "http://localhost:3000/").is_empty());
        assert!(run(Source::Header, "x-forwarded-for", "10.0.0.1").is_empty());
        assert!(run(Source::Query, "server", "localhost").is_empty());
        assert!(run(Source::Query, "email", "user@[192.168.1.1]").is_empty());
        assert!(run(Source::Path, "", "/proxy/http://127.0.0.1/").is_empty());
    }
}
