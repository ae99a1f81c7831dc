//! Recognising where an HTTP/1.x message starts, from its first few bytes.
//!
//! Used to tell HTTP connections from everything else within a handful of bytes, and to
//! find the next message after lost or unparseable data.

use super::message::MessageKind;

/// Request methods accepted at a message start (case-sensitive, each followed by a space):
/// RFC 9110 methods, PATCH, QUERY, WebDAV/DeltaV/CalDAV, link and UPnP ones — the set
/// llhttp accepts for HTTP. Anything else (TLS records, HTTP/2 preface, binary protocols)
/// is not an HTTP/1.x request.
const METHODS: &[&[u8]] = &[
    b"GET",
    b"HEAD",
    b"POST",
    b"PUT",
    b"DELETE",
    b"CONNECT",
    b"OPTIONS",
    b"TRACE",
    b"PATCH",
    b"QUERY",
    b"PURGE",
    b"COPY",
    b"LOCK",
    b"MKCOL",
    b"MOVE",
    b"PROPFIND",
    b"PROPPATCH",
    b"SEARCH",
    b"UNLOCK",
    b"BIND",
    b"REBIND",
    b"UNBIND",
    b"ACL",
    b"REPORT",
    b"MKACTIVITY",
    b"CHECKOUT",
    b"MERGE",
    b"M-SEARCH",
    b"NOTIFY",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"MKCALENDAR",
    b"LINK",
    b"UNLINK",
    b"SOURCE",
];

/// What a response must start with (only HTTP/1.x is handled).
const RESPONSE_PREFIX: &[u8] = b"HTTP/1.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// `bytes` begins like a message of this kind.
    Match,
    /// `bytes` is a prefix of a possible message start; more bytes decide.
    NeedMore,
    /// `bytes` cannot start a message of this kind.
    NoMatch,
}

/// Decides whether `bytes` (starting at a candidate message start, after any empty lines)
/// looks like the start of a `kind` message. Decides within 12 bytes (the longest method
/// plus its space), so detection and resynchronisation hold only a few bytes.
pub(crate) fn probe(kind: MessageKind, bytes: &[u8]) -> Probe {
    match kind {
        MessageKind::Request => METHODS
            .iter()
            .map(|m| probe_literal(bytes, m, Some(b' ')))
            .fold(Probe::NoMatch, best),
        MessageKind::Response => probe_literal(bytes, RESPONSE_PREFIX, None),
    }
}

fn best(a: Probe, b: Probe) -> Probe {
    match (a, b) {
        (Probe::Match, _) | (_, Probe::Match) => Probe::Match,
        (Probe::NeedMore, _) | (_, Probe::NeedMore) => Probe::NeedMore,
        _ => Probe::NoMatch,
    }
}

/// Compares `bytes` with `literal` (+ `then`) as far as both go.
fn probe_literal(bytes: &[u8], literal: &[u8], then: Option<u8>) -> Probe {
    let expected = literal.iter().copied().chain(then);
    let mut compared = 0;
    for (have, want) in bytes.iter().zip(expected) {
        if *have != want {
            return Probe::NoMatch;
        }
        compared += 1;
    }
    if compared == literal.len() + usize::from(then.is_some()) {
        Probe::Match
    } else {
        Probe::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let p = |b: &[u8]| probe(MessageKind::Request, b);
        assert_eq!(p(b"GET /"), Probe::Match);
        assert_eq!(p(b"GET "), Probe::Match);
        assert_eq!(p(b"GE"), Probe::NeedMore);
        assert_eq!(p(b"GET"), Probe::NeedMore);
        assert_eq!(p(b"GETX"), Probe::NoMatch);
        assert_eq!(p(b"M-SEARCH *"), Probe::Match);
        assert_eq!(p(b"UNSUBSCRIBE "), Probe::Match);
        assert_eq!(p(b"get /"), Probe::NoMatch);
        assert_eq!(p(b"PRI * HTTP/2.0"), Probe::NoMatch);
        assert_eq!(p(b"\x16\x03\x01\x02\x00"), Probe::NoMatch);
        assert_eq!(p(b"MKCOLA /"), Probe::NoMatch);
        assert_eq!(METHODS.iter().map(|m| m.len()).max(), Some(11));
    }

    #[test]
    fn responses() {
        let p = |b: &[u8]| probe(MessageKind::Response, b);
        assert_eq!(p(b"HTTP/1.1 200"), Probe::Match);
        assert_eq!(p(b"HTTP/1."), Probe::Match);
        assert_eq!(p(b"HTTP/"), Probe::NeedMore);
        assert_eq!(p(b"HTTP/2 200"), Probe::NoMatch);
        assert_eq!(p(b"RTSP/1.0 200"), Probe::NoMatch);
    }
}
