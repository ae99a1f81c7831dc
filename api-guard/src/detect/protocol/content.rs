//! What the body claims to be: `Content-Type` syntax, charsets, parameters that make
//! parsers disagree on the body's type, and multipart field names built to break parsers.

use super::{headers::is_tchar, ProtocolConfig, Report, Rule};
use crate::detect::request::Request;

/// Multipart bodies scanned for part headers, in bytes.
const MAX_MULTIPART_SCAN: usize = 64 * 1024;

pub(super) fn check(req: &Request<'_>, cfg: &ProtocolConfig, r: &mut Report<'_>) {
    // The three fields read here, in one pass (the first of each, and whether the type
    // is repeated): the names differ in length, so one compare turns every other away.
    let (mut ct, mut several, mut accept, mut length) = (None, false, None, None);
    for (name, value) in req.fields() {
        match name.len() {
            12 if name.eq_ignore_ascii_case("content-type") => {
                several |= ct.is_some();
                ct = ct.or(Some(value));
            }
            6 if accept.is_none() && name.eq_ignore_ascii_case("accept") => accept = Some(value),
            14 if length.is_none() && name.eq_ignore_ascii_case("content-length") => {
                length = Some(value);
            }
            _ => {}
        }
    }
    if several {
        r.add(
            Rule::MultipleContentType,
            "header:content-type",
            "several Content-Type headers",
        );
    }
    if let Some(accept) = accept {
        for (name, value) in params(accept) {
            if name.eq_ignore_ascii_case("charset") && !allowed(cfg, value) {
                r.add(Rule::AcceptCharset, "header:accept", accept);
            }
        }
    }
    let Some(ct) = ct else {
        let declared = length.and_then(super::headers::parse_length).unwrap_or(0);
        if declared > 0 {
            r.add(
                Rule::ContentTypeMissing,
                "header:content-type",
                "body without Content-Type",
            );
        }
        return;
    };
    if ct.is_empty() {
        return;
    }
    content_type(ct, cfg, r);
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.len() > 10 && media[..10].eq_ignore_ascii_case("multipart/") {
        multipart_names(req.body, r);
    }
}

fn content_type(ct: &str, cfg: &ProtocolConfig, r: &mut Report<'_>) {
    let (media, rest) = ct.split_once(';').unwrap_or((ct, ""));
    let media = media.trim();
    let valid_media = match media.split_once('/') {
        Some((t, s)) => {
            let ok = |p: &str| !p.is_empty() && p.bytes().all(is_tchar);
            ok(t) && ok(s)
        }
        None => false,
    };
    if !valid_media {
        r.add(Rule::ContentTypeInvalid, "header:content-type", ct);
        return;
    }
    let multipart = media.len() > 10 && media[..10].eq_ignore_ascii_case("multipart/");
    if multipart {
        // Multipart bodies are split at the boundary: without one no parser can read the
        // body, and a subtype no framework knows (`multipart/foo`) is parsed by some stacks
        // as form data and skipped by others.
        let subtype = media[10..].to_ascii_lowercase();
        let has_boundary = rest
            .split(';')
            .filter_map(param)
            .any(|(n, _)| n.eq_ignore_ascii_case("boundary"));
        if !has_boundary {
            r.add(Rule::ContentTypeInvalid, "header:content-type", ct);
            return;
        }
        if !KNOWN_MULTIPART.contains(&subtype.as_str()) && !subtype.starts_with("vnd.") {
            r.add(Rule::ContentTypeConfusion, "header:content-type", ct);
        }
    }
    let mut charsets = 0usize;
    for part in rest.split(';') {
        if part.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = param(part) else {
            r.add(Rule::ContentTypeInvalid, "header:content-type", ct);
            return;
        };
        if name.eq_ignore_ascii_case("charset") {
            charsets += 1;
            if !allowed(cfg, value) {
                r.add(Rule::Charset, "header:content-type", ct);
            }
        } else if name.eq_ignore_ascii_case("boundary") && !multipart {
            // A boundary on a non-multipart type is a type hidden in a parameter.
            r.add(Rule::ContentTypeConfusion, "header:content-type", ct);
        }
    }
    // Also counts a `charset=` hidden inside another parameter's quoted value.
    let hidden = count_ci(ct, "charset");
    if charsets > 1 || hidden > 1 {
        r.add(Rule::Charset, "header:content-type", ct);
    }
}

/// Multipart subtypes in the IANA registry (`vnd.*` aside).
const KNOWN_MULTIPART: &[&str] = &[
    "alternative",
    "appledouble",
    "byteranges",
    "digest",
    "encrypted",
    "example",
    "form-data",
    "header-set",
    "mixed",
    "multilingual",
    "parallel",
    "related",
    "report",
    "signed",
    "voice-message",
    "x-mixed-replace",
];

/// `name=value` of one parameter: a token name and a token or quoted value, with at most one
/// space around `=` (RFC 9110 allows none; one is common sloppiness, more is evasion).
fn param(part: &str) -> Option<(&str, &str)> {
    let (name, value) = part.split_once('=')?;
    let name = name.trim_start();
    let name = name.strip_suffix(' ').unwrap_or(name);
    let value = value.strip_suffix(' ').unwrap_or(value);
    let value = value.strip_prefix(' ').unwrap_or(value);
    if name.is_empty() || !name.bytes().all(is_tchar) || value.is_empty() {
        return None;
    }
    if let Some(inner) = value.strip_prefix('"') {
        return inner.strip_suffix('"').map(|v| (name, v));
    }
    let lenient = |b: u8| b.is_ascii_graphic() && b != b'"' && b != b';';
    value.bytes().all(lenient).then_some((name, value))
}

/// Parameters of every element of a comma list (`Accept`), malformed ones skipped.
fn params(list: &str) -> impl Iterator<Item = (&str, &str)> {
    list.split(',')
        .flat_map(|el| el.split(';').skip(1))
        .filter_map(param)
}

fn allowed(cfg: &ProtocolConfig, charset: &str) -> bool {
    let c = charset.trim().trim_matches(['"', '\'']);
    cfg.allowed_charsets
        .iter()
        .any(|a| a.eq_ignore_ascii_case(c))
}

fn count_ci(hay: &str, needle: &str) -> usize {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if h.len() < n.len() {
        return 0;
    }
    h.windows(n.len())
        .filter(|w| w.eq_ignore_ascii_case(n))
        .count()
}

/// Part `name` / `filename` values holding `"`, `\`, `;` or `=`: parsers split these
/// differently, which is how fields are smuggled past inspection. HTML entities, which
/// browsers produce for non-ASCII names, are skipped whole.
fn multipart_names(body: &[u8], r: &mut Report<'_>) {
    let body = &body[..body.len().min(MAX_MULTIPART_SCAN)];
    let text = String::from_utf8_lossy(body);
    for line in text.lines() {
        let Some((hname, hvalue)) = line.split_once(':') else {
            continue;
        };
        if !hname.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        let mut rest = hvalue;
        while let Some(i) = rest.find("name=\"") {
            let start = i + 6;
            let (value, used) = quoted(&rest[start..]);
            if has_separator(value) {
                r.add(Rule::MultipartName, "body", line);
                return;
            }
            rest = rest.get(start + used..).unwrap_or("");
        }
    }
}

/// The quoted string up to its closing quote (a `\"` does not close it), and the bytes used.
fn quoted(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return (&s[..i], i + 1),
            _ => i += 1,
        }
    }
    (s, s.len())
}

fn has_separator(v: &str) -> bool {
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'&' {
            let n = b[i + 1..]
                .iter()
                .take(12)
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'#')
                .count();
            if n > 0 && b.get(i + 1 + n) == Some(&b';') {
                i += n + 2;
                continue;
            }
        }
        if matches!(b[i], b'"' | b'\\' | b';' | b'=') {
            return true;
        }
        i += 1;
    }
    false
}
