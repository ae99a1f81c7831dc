//! Recognising where an HTTP/1.x message starts, from its first few bytes.
//!
//! Used to tell HTTP connections from everything else within a handful of bytes, and to
//! find the next message after lost or unparseable data.

use super::message::MessageKind;

/// Request methods accepted at a message start (case-sensitive, each followed by a space):
/// RFC 9110 methods, PATCH, QUERY, WebDAV/DeltaV/CalDAV, link and UPnP ones — the set
/// llhttp accepts for HTTP. Anything else (TLS records, HTTP/2 preface, binary protocols)
/// is not an HTTP/1.x request.
#[rustfmt::skip]
const METHODS: &[&[u8]] = &[
    b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE",
    b"PATCH", b"QUERY", b"PURGE", b"COPY", b"LOCK", b"MKCOL", b"MOVE", b"PROPFIND",
    b"PROPPATCH", b"SEARCH", b"UNLOCK", b"BIND", b"REBIND", b"UNBIND", b"ACL", b"REPORT",
    b"MKACTIVITY", b"CHECKOUT", b"MERGE", b"M-SEARCH", b"NOTIFY", b"SUBSCRIBE",
    b"UNSUBSCRIBE", b"MKCALENDAR", b"LINK", b"UNLINK", b"SOURCE",
];

/// What a response must start with (only HTTP/1.x is handled).
const RESPONSE_PREFIX: &[u8] = b"HTTP/1.";

/// Bytes that always suffice for [`probe`] to decide: the longest method plus its space.
pub(crate) const PROBE_LEN: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// The first `len` bytes are the start of a message of this kind.
    Match(usize),
    /// All bytes so far are a prefix of a possible message start; more bytes decide.
    NeedMore,
    /// The byte at this index rules out a message start.
    NoMatch(usize),
}

/// Decides whether `bytes` (starting at a candidate message start, after any empty lines)
/// looks like the start of a `kind` message. Decides within [`PROBE_LEN`] bytes, so
/// detection and resynchronisation hold only a few bytes. The answer for a prefix of
/// `bytes` never contradicts the answer for `bytes`, so results do not depend on how the
/// stream was split.
pub(crate) fn probe(kind: MessageKind, bytes: &[u8]) -> Probe {
    let (literals, then) = match kind {
        MessageKind::Request => (METHODS, Some(b' ')),
        MessageKind::Response => (&[RESPONSE_PREFIX][..], None),
    };
    let mut longest = 0;
    for literal in literals {
        let expected = literal.iter().copied().chain(then);
        let matched = bytes
            .iter()
            .zip(expected)
            .take_while(|(have, want)| **have == *want)
            .count();
        if matched == literal.len() + usize::from(then.is_some()) {
            return Probe::Match(matched);
        }
        longest = longest.max(matched);
    }
    if longest == bytes.len() {
        Probe::NeedMore
    } else {
        Probe::NoMatch(longest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let p = |b: &[u8]| probe(MessageKind::Request, b);
        assert_eq!(p(b"GET /"), Probe::Match(4));
        assert_eq!(p(b"GET "), Probe::Match(4));
        assert_eq!(p(b""), Probe::NeedMore);
        assert_eq!(p(b"GE"), Probe::NeedMore);
        assert_eq!(p(b"GET"), Probe::NeedMore);
        assert_eq!(p(b"GETX"), Probe::NoMatch(3));
        assert_eq!(p(b"PUX"), Probe::NoMatch(2));
        assert_eq!(p(b"M-SEARCH *"), Probe::Match(9));
        assert_eq!(p(b"UNSUBSCRIBE /"), Probe::Match(12));
        assert_eq!(p(b"get /"), Probe::NoMatch(0));
        assert_eq!(p(b"PRI * HTTP/2.0"), Probe::NoMatch(2));
        assert_eq!(p(b"\x16\x03\x01\x02\x00"), Probe::NoMatch(0));
        assert_eq!(p(b"MKCOLA /"), Probe::NoMatch(5));
        assert_eq!(METHODS.iter().map(|m| m.len() + 1).max(), Some(PROBE_LEN));
    }

    #[test]
    fn responses() {
        let p = |b: &[u8]| probe(MessageKind::Response, b);
        assert_eq!(p(b"HTTP/1.1 200"), Probe::Match(7));
        assert_eq!(p(b"HTTP/1."), Probe::Match(7));
        assert_eq!(p(b"HTTP/"), Probe::NeedMore);
        assert_eq!(p(b"HTTP/2 200"), Probe::NoMatch(5));
        assert_eq!(p(b"RTSP/1.0 200"), Probe::NoMatch(0));
    }

    #[test]
    fn decisions_agree_with_every_prefix() {
        for bytes in [
            b"GET / HTTP".as_slice(),
            b"GETX",
            b"PROPPATCH /",
            b"PROPFINX",
            b"HTTP/1.1",
            b"HTTX/",
        ] {
            for kind in [MessageKind::Request, MessageKind::Response] {
                let whole = probe(kind, bytes);
                for n in 0..bytes.len() {
                    match (probe(kind, &bytes[..n]), whole) {
                        (Probe::NeedMore, _) => {}
                        (prefix, whole) => assert_eq!(prefix, whole, "{kind:?} {n}"),
                    }
                }
            }
        }
    }
}
