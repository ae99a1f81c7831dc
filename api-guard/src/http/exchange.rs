//! The record emitted for every request/response pair.

use bytes::Bytes;
use serde::{Serialize, Serializer};

use super::grpc::GrpcCall;
use super::h2::H2Anomaly;
use super::sse::SseStats;
use super::tap::TappedStream;
use super::{Headers, SharedStr};
use crate::detect::stream::Window;
use crate::exchange::ExchangeSlot;

/// One request and its response: an HTTP/1.x pair (FIFO per connection) or an HTTP/2
/// stream.
///
/// Sizes are wire bytes of the head (start line through the final CRLF; for HTTP/2 the
/// HPACK header block) and the decoded body payload length (chunk framing removed; for
/// HTTP/2 the DATA payloads without padding). Bodies hold only the first
/// `max_body_capture_bytes` of the payload; header text is bounded by `max_header_bytes`.
/// A `*_truncated` flag means the record of that message is incomplete: capture lost part
/// of it, the connection ended inside it, or its framing could not be parsed.
#[derive(Debug, Clone, Serialize)]
pub struct HttpExchange {
    /// Request method as sent; empty when the request start line was never seen whole.
    pub method: SharedStr,
    /// Request target up to the first `?` (origin, absolute, authority or asterisk form).
    pub path: SharedStr,
    /// Raw query string without the `?`.
    pub query: Option<SharedStr>,
    pub host: Option<SharedStr>,
    pub version: HttpVersion,
    /// The HTTP/2 stream the exchange travelled on; `None` for HTTP/1.x.
    pub stream_id: Option<u32>,
    /// Some header fields could not be decoded (HPACK dynamic-table entries sent before
    /// capture joined the connection): they are missing, never guessed.
    pub incomplete: bool,
    /// Final (non-1xx) response status; `None` when no response was seen.
    pub status: Option<u16>,
    pub request_start_ns: u64,
    pub request_end_ns: Option<u64>,
    pub response_start_ns: Option<u64>,
    pub response_end_ns: Option<u64>,
    pub request_header_bytes: u64,
    pub request_body_bytes: u64,
    pub response_header_bytes: u64,
    pub response_body_bytes: u64,
    pub request_truncated: bool,
    pub response_truncated: bool,
    /// Header fields in wire order; values decoded as lossy UTF-8.
    pub request_headers: Headers,
    pub response_headers: Headers,
    /// Serialised as lossy UTF-8 text (the `bytes` crate is built without serde support).
    #[serde(serialize_with = "serialize_lossy")]
    pub request_body: Bytes,
    #[serde(serialize_with = "serialize_lossy")]
    pub response_body: Bytes,
    /// Trailer fields after the response body (HTTP/2 trailers, HTTP/1.1 chunked trailers
    /// are not kept), bounded like headers.
    pub response_trailers: Headers,
    /// gRPC facts, for `application/grpc*` exchanges (boxed, as the tap: rare, and the
    /// record is smaller to make, copy and drop without them).
    pub grpc: Option<Box<GrpcCall>>,
    /// Server-sent events, for `text/event-stream` responses.
    pub sse: Option<SseStats>,
    /// The bounded tap on a JSON or streamed JSON response body (its last events or bytes,
    /// which the captured prefix may not reach): input to LLM usage extraction, not output.
    #[serde(skip)]
    pub response_tap: Option<Box<TappedStream>>,
    /// What the HTTP/2 framing showed that a well-behaved peer never sends.
    pub anomalies: Vec<H2Anomaly>,
    /// The HTTP/1 request line was complete and malformed (e.g. `HTTP/4.0`, no version, a
    /// space in the target): the request was given up (`request_truncated`), its method
    /// kept when it had one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub request_line_invalid: bool,
    /// A capture gap took this request's start line (a full ring buffer dropped it): its
    /// method and target are empty or cut and its fields missing, none of it what the
    /// client sent. Kept so that the response pairs with it; never judged or inventoried.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub request_head_lost: bool,
    /// What this record stands for: a whole exchange, or only its request, handed out as
    /// soon as the request was complete (see [`HttpExchange::request_notice`]).
    #[serde(skip)]
    pub phase: Phase,
    /// A request notice was handed out for this exchange: its request was judged already.
    #[serde(skip)]
    pub request_noticed: bool,
    /// Numbers the request notice on its connection (from 1; 0: none was handed out), the
    /// same on the notice and on the exchange that follows it: what a consumer computed
    /// from the request for the notice can be found again for the exchange.
    #[serde(skip)]
    pub notice_id: u64,
    /// Values of the request body scanned as it streamed (see [`crate::detect::stream`]):
    /// on a [`Phase::RequestPart`] its window, on the record that judges the request (its
    /// notice, or the exchange when there was none) the last window.
    #[serde(skip)]
    pub request_scan: Option<Box<Window>>,
}

/// What an [`HttpExchange`] record stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// A request and its response (or what was seen of them).
    #[default]
    Exchange,
    /// A request that just ended, before its response: content is judged on it at once,
    /// and the exchange that follows carries `request_noticed`.
    Request,
    /// A window of values of a request body still arriving (`request_scan`): judged at
    /// once, so a large body is inspected whole without being kept.
    RequestPart,
}

/// Protocol version of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum HttpVersion {
    #[serde(rename = "1.0")]
    Http10,
    #[default]
    #[serde(rename = "1.1")]
    Http11,
    #[serde(rename = "2")]
    Http2,
}

impl HttpVersion {
    /// From an HTTP/1.x minor version digit.
    #[must_use]
    pub fn from_minor(minor: u8) -> Self {
        if minor == 0 {
            Self::Http10
        } else {
            Self::Http11
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http10 => "1.0",
            Self::Http11 => "1.1",
            Self::Http2 => "2",
        }
    }
}

fn serialize_lossy<S: Serializer>(body: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&String::from_utf8_lossy(body))
}

impl HttpExchange {
    /// An exchange for a request starting at `start_ns`, everything else unknown yet.
    pub(crate) fn started(start_ns: u64) -> Self {
        Self {
            method: SharedStr::new(),
            path: SharedStr::new(),
            query: None,
            host: None,
            version: HttpVersion::Http11,
            stream_id: None,
            incomplete: false,
            status: None,
            request_start_ns: start_ns,
            request_end_ns: None,
            response_start_ns: None,
            response_end_ns: None,
            request_header_bytes: 0,
            request_body_bytes: 0,
            response_header_bytes: 0,
            response_body_bytes: 0,
            request_truncated: false,
            response_truncated: false,
            request_headers: Headers::new(),
            response_headers: Headers::new(),
            request_body: Bytes::new(),
            response_body: Bytes::new(),
            response_trailers: Headers::new(),
            grpc: None,
            sse: None,
            response_tap: None,
            anomalies: Vec::new(),
            request_line_invalid: false,
            request_head_lost: false,
            phase: Phase::Exchange,
            request_noticed: false,
            notice_id: 0,
            request_scan: None,
        }
    }

    /// [`HttpExchange::started`], in the allocation its [`crate::exchange::Exchange`] will
    /// have, written there (not made on the stack and copied).
    pub(crate) fn boxed(start_ns: u64) -> ExchangeSlot {
        ExchangeSlot::with(|| Self::started(start_ns))
    }

    /// The request side of this exchange as a [`Phase::Request`] record, with `body` as
    /// its body prefix (HTTP/2 keeps the prefix outside the exchange until it ends). In its
    /// slot as [`HttpExchange::boxed`] makes it, and its fields set there.
    pub(crate) fn request_notice(&self, body: Bytes) -> ExchangeSlot {
        // Written once, field by field (setting the fields of a started record dropped
        // each default it replaced first).
        ExchangeSlot::with(|| Self {
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            host: self.host.clone(),
            version: self.version,
            stream_id: self.stream_id,
            incomplete: self.incomplete,
            request_end_ns: self.request_end_ns,
            request_header_bytes: self.request_header_bytes,
            request_body_bytes: self.request_body_bytes,
            request_truncated: self.request_truncated,
            request_headers: self.request_headers.clone(),
            request_body: body,
            grpc: self.grpc.clone(),
            anomalies: self.anomalies.clone(),
            phase: Phase::Request,
            ..Self::started(self.request_start_ns)
        })
    }

    /// A [`Phase::RequestPart`] record of this exchange's request carrying `window`.
    pub(crate) fn body_part(&self, window: Window) -> ExchangeSlot {
        let mut part = self.request_notice(Bytes::new());
        part.request_scan = Some(Box::new(window));
        part.phase = Phase::RequestPart;
        part
    }

    /// Sets `path` and `query` from a raw request target, keeping it as the path when it
    /// has no query (no copy).
    pub(crate) fn set_target_shared(&mut self, target: SharedStr) {
        // `?` is ASCII: the byte found is a character boundary. Short targets by a byte
        // loop, cheaper than `memchr`'s set-up below a few dozen bytes.
        let bytes = target.as_bytes();
        let at = if bytes.len() < 64 {
            bytes.iter().position(|&b| b == b'?')
        } else {
            memchr::memchr(b'?', bytes)
        };
        match at {
            Some(_) => self.set_target(&target),
            None => {
                self.path = target;
                self.query = None;
            }
        }
    }

    /// Sets `path` and `query` from a raw request target.
    pub(crate) fn set_target(&mut self, target: &str) {
        match target.split_once('?') {
            Some((path, query)) => {
                self.path = path.into();
                self.query = Some(query.into());
            }
            None => {
                self.path = target.into();
                self.query = None;
            }
        }
    }

    /// Bytes of text and body data this record keeps.
    pub(crate) fn retained_bytes(&self) -> usize {
        let pairs = Headers::text_len;
        let optional = |s: &Option<SharedStr>| s.as_ref().map_or(0, SharedStr::len);
        self.method.len()
            + self.path.len()
            + optional(&self.query)
            + optional(&self.host)
            + pairs(&self.request_headers)
            + pairs(&self.response_headers)
            + pairs(&self.response_trailers)
            + self.grpc.as_ref().map_or(0, |call| call.retained_bytes())
            + self.request_body.len()
            + self.response_body.len()
            + self.request_scan.as_ref().map_or(0, |w| w.retained_bytes())
            + self
                .response_tap
                .as_ref()
                .map_or(0, |tap| tap.retained_bytes())
    }
}

/// Metric label for a request method: the method itself for the fixed set, else `"OTHER"`.
#[must_use]
pub fn method_label(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each exchange makes, moves and drops two of these records (the exchange and its
    /// request notice), and every cache line of them is touched each time: the rare parts
    /// (gRPC facts, the response tap) are boxed to keep them small.
    #[test]
    fn records_stay_small() {
        let sizes = (
            size_of::<HttpExchange>(),
            size_of::<crate::exchange::Exchange>(),
        );
        eprintln!("HttpExchange {} bytes, Exchange {} bytes", sizes.0, sizes.1);
        // The exchange holds its record inline (one allocation, see `ExchangeSlot`), in
        // mimalloc's 640-byte class with its `Arc`'s counts (`exchange::tests`).
        assert!(sizes.0 <= 512 && sizes.1 - sizes.0 <= 200, "{sizes:?}");
    }

    #[test]
    fn method_labels() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("TRACE"), "TRACE");
        assert_eq!(method_label("get"), "OTHER");
        assert_eq!(method_label("PROPFIND"), "OTHER");
        assert_eq!(method_label(""), "OTHER");
    }

    #[test]
    fn target_split() {
        let mut ex = HttpExchange::started(0);
        ex.set_target("/a/b?x=1?y#f");
        assert_eq!(
            (ex.path.as_str(), ex.query.as_deref()),
            ("/a/b", Some("x=1?y#f"))
        );
        ex.set_target("*");
        assert_eq!((ex.path.as_str(), ex.query.as_deref()), ("*", None));
        let long = format!("/{}?{}?x", "a".repeat(70), "b".repeat(70));
        for target in ["/a/b?x=1?y#f", "*", "/?", "?q", "", &long, &long[..71]] {
            let mut owned = HttpExchange::started(0);
            owned.set_target_shared(target.into());
            ex.set_target(target);
            assert_eq!(
                (owned.path, owned.query),
                (ex.path.clone(), ex.query.clone())
            );
        }
    }

    #[test]
    fn serializes_bodies_as_text() {
        let mut ex = HttpExchange::started(7);
        ex.request_body = Bytes::from_static(b"a\xffb");
        let json = serde_json::to_value(&ex).expect("serialise");
        assert_eq!(json["request_body"], "a\u{fffd}b");
        assert_eq!(json["request_start_ns"], 7);
        assert_eq!(json["status"], serde_json::Value::Null);
    }
}
