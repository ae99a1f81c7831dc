//! HTTP/1.x reassembly: turns the captured TCP payload of a connection into
//! request/response pairs ([`HttpExchange`]).
//!
//! The capture layer feeds each connection's bytes per stream ([`Stream::Request`] carries
//! client-to-server bytes, [`Stream::Response`] the other direction) to one
//! [`HttpConnection`], reports bytes it lost with [`HttpConnection::gap`] and the end of
//! the connection with [`HttpConnection::close`].
//!
//! - Each stream is parsed by a `message::MessageParser`: heads with `httparse` (strict CRLF line
//!   endings), bodies by `Content-Length`, chunked coding, or connection close (RFC 9112 §6).
//! - Responses pair with requests in FIFO order; interim 1xx responses are skipped, a 101
//!   or a 2xx to CONNECT ends HTTP parsing ([`ConnState::Upgraded`]).
//! - A connection whose first bytes do not look like HTTP/1.x becomes
//!   [`ConnState::NotHttp`] within a dozen bytes, after which input costs nothing.
//! - Malformed input counts as a parse error and the stream resynchronises at the next
//!   plausible message start; a stream with too many errors in a row is given up
//!   ([`ConnState::Failed`]). Nothing in here panics on any input.
//! - Memory per connection is bounded by [`HttpLimits::max_buffered_bytes`].

mod by_length;
mod chunked;
mod connection;
mod exchange;
mod framing;
mod grpc;
pub mod h2;
mod head;
mod headers;
mod limits;
mod message;
mod probe;
mod protocol;
mod recent_bodies;
mod recent_heads;
mod shared_str;
mod sse;
pub mod tap;

#[cfg(test)]
mod tests;

/// Line-structure bytes, shared by the head and chunked-body parsers.
const CR: u8 = b'\r';
const LF: u8 = b'\n';

/// The media type of a `Content-Type` value (before any `;` parameter), trimmed. A byte
/// search: a `char` pattern costs several times more, once per response.
fn media_type(content_type: &str) -> &str {
    // A byte loop: media types are short, shorter than `memchr`'s set-up pays for.
    let media = (content_type.as_bytes().iter())
        .position(|&b| b == b';')
        .and_then(|i| content_type.get(..i))
        .unwrap_or(content_type);
    // Nothing to trim when both ends are visible ASCII (every whitespace character `trim`
    // removes is ASCII up to 0x20 or starts with a byte above 0x7f): the usual case, without
    // `trim`'s character decoding.
    let visible = |b: Option<&u8>| b.is_some_and(|&b| (0x21..0x7f).contains(&b));
    if visible(media.as_bytes().first()) && visible(media.as_bytes().last()) {
        return media;
    }
    media.trim()
}

pub use crate::exchange::ExchangeSlot;
pub use connection::{ConnState, Stream};
pub use exchange::{method_label, HttpExchange, HttpVersion, Phase};
pub use grpc::{CallKind, GrpcCall};
pub use headers::Headers;
pub use limits::{BodyInterest, HttpLimits};
pub use protocol::HttpConnection;
pub use shared_str::SharedStr;
pub use sse::SseStats;
