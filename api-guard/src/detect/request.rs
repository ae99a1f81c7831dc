//! The view of one request (and its answer, when known) that detectors inspect. Live
//! exchanges and offline corpus lines both become a [`Request`], so both run the same code.

use std::net::IpAddr;

use super::fields::{Fields, Named, RequestFields};
use crate::{
    http::Headers,
    http::{h2::H2Anomaly, HttpVersion},
    identity::ClientIdentity,
};

#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target's path as sent (still percent-encoded).
    pub path: &'a str,
    /// The raw query string without `?`.
    pub query: Option<&'a str>,
    pub version: HttpVersion,
    /// What the HTTP/2 framing showed that conforming peers never send.
    pub anomalies: &'a [H2Anomaly],
    /// The HTTP/1 request line was malformed (the live parser gave the request up there:
    /// method, target and headers may be missing).
    pub request_line_invalid: bool,
    /// Request headers in order, names as sent.
    pub headers: &'a Headers,
    /// The captured body prefix (de-chunked).
    pub body: &'a [u8],
    /// The body's full length on the wire (may exceed `body.len()` when capture truncated it).
    pub body_len: u64,
    /// Bytes of the request head (request line and headers) on the wire.
    pub head_len: u64,
    /// HTTP/2's `:authority` (the host it names in place of a Host field); None for HTTP/1.
    pub authority: Option<&'a str>,
    /// The socket peer.
    pub peer: Option<IpAddr>,
    /// The response status, when the answer was seen.
    pub status: Option<u16>,
    /// `headers` read once ([`RequestFields::of`]); `None` to walk them at each look-up
    /// (the engine reads them once per call when its caller has not).
    pub fields: Option<&'a RequestFields<'a>>,
}

impl<'a> Request<'a> {
    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first header `which` (as [`Self::header`] with its name, without a walk).
    pub fn named(&self, which: Named) -> Option<&'a str> {
        match self.fields {
            Some(f) => f.get(which),
            None => self.header(which.name()),
        }
    }

    /// The header fields in order, names as sent.
    pub fn fields(&self) -> Fields<'a> {
        match self.fields {
            Some(f) => Fields::Read(f.list().iter()),
            None => Fields::Walk(self.headers.iter()),
        }
    }

    /// Every header called `name`, in order.
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.fields()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The media type of the body (`Content-Type` without parameters, lower case).
    pub fn content_type(&self) -> Option<String> {
        self.media_type().map(str::to_ascii_lowercase)
    }

    /// The media type of the body as sent (`Content-Type` without parameters, trimmed), for
    /// ASCII case-insensitive comparisons without a lower-cased copy.
    pub fn media_type(&self) -> Option<&'a str> {
        let ct = self.named(Named::ContentType)?;
        Some(ct.split(';').next().unwrap_or("").trim())
    }
}

/// What the engine knows about the request beyond its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Monotonic time of the request, in nanoseconds (windows and rates are measured on it).
    pub now_ns: u64,
    /// Who sent it (client address, hashed credential).
    pub client: &'a ClientIdentity,
}
