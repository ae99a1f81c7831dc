//! Deciding how a message body is delimited (RFC 9112 §6.3).

use super::head::{ContentLength, Head, StartLine, TransferEncoding};
use super::message::MessageKind;

/// How the connection wants a response body treated, beyond what the response says itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyOverride {
    /// Follow the response's own fields.
    None,
    /// The request was HEAD: no body whatever the fields say.
    NoBody,
    /// The connection switches protocols after this head (101, or 2xx to CONNECT).
    Tunnel,
}

/// Where the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body: the message ends with its head.
    None,
    Length(u64),
    Chunked,
    /// The body runs until the connection closes.
    UntilClose,
    /// The message ends with its head and the connection stops speaking HTTP/1.x.
    Tunnel,
}

/// The body length cannot be determined: invalid `Content-Length`, or a request whose
/// `Transfer-Encoding` does not end in `chunked` (RFC 9112 §6.3 items 4 and 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FramingError;

/// The header facts framing depends on, kept after the head itself is handed on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyFacts {
    content_length: ContentLength,
    transfer_encoding: TransferEncoding,
    /// Response status, `None` for requests.
    status: Option<u16>,
    connect: bool,
}

impl BodyFacts {
    pub(crate) fn of(head: &Head) -> Self {
        let (status, connect) = match &head.start {
            StartLine::Request { method, .. } => (None, method == "CONNECT"),
            StartLine::Response { status, .. } => (Some(*status), false),
        };
        Self {
            content_length: head.content_length,
            transfer_encoding: head.transfer_encoding,
            status,
            connect,
        }
    }

    /// True for a CONNECT request: what follows its head belongs to the tunnel, if the
    /// server agrees.
    pub(crate) fn is_connect(&self) -> bool {
        self.connect
    }

    /// Both `Content-Length` and `Transfer-Encoding` present: `Transfer-Encoding` wins, but
    /// the pair is a request-smuggling vector (RFC 9112 §6.1) worth reporting.
    pub(crate) fn conflicting(&self) -> bool {
        self.content_length != ContentLength::Absent
            && self.transfer_encoding != TransferEncoding::Absent
    }

    pub(crate) fn framing(
        &self,
        kind: MessageKind,
        over: BodyOverride,
    ) -> Result<Framing, FramingError> {
        match kind {
            MessageKind::Request => self.request_framing(),
            MessageKind::Response => self.response_framing(over),
        }
    }

    fn request_framing(&self) -> Result<Framing, FramingError> {
        if self.connect {
            return Ok(Framing::None);
        }
        match self.transfer_encoding {
            TransferEncoding::Chunked => Ok(Framing::Chunked),
            TransferEncoding::Other => Err(FramingError),
            TransferEncoding::Absent => self.length_framing(Framing::None),
        }
    }

    fn response_framing(&self, over: BodyOverride) -> Result<Framing, FramingError> {
        let bodiless = matches!(self.status, Some(100..=199 | 204 | 304));
        match (over, self.transfer_encoding) {
            (BodyOverride::Tunnel, _) => Ok(Framing::Tunnel),
            (BodyOverride::NoBody, _) => Ok(Framing::None),
            _ if bodiless => Ok(Framing::None),
            (BodyOverride::None, TransferEncoding::Chunked) => Ok(Framing::Chunked),
            (BodyOverride::None, TransferEncoding::Other) => Ok(Framing::UntilClose),
            (BodyOverride::None, TransferEncoding::Absent) => {
                self.length_framing(Framing::UntilClose)
            }
        }
    }

    fn length_framing(&self, absent: Framing) -> Result<Framing, FramingError> {
        match self.content_length {
            ContentLength::Absent => Ok(absent),
            ContentLength::Valid(0) => Ok(Framing::None),
            ContentLength::Valid(n) => Ok(Framing::Length(n)),
            ContentLength::Invalid => Err(FramingError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::parse_head;

    fn framing(kind: MessageKind, head: &str, over: BodyOverride) -> Result<Framing, FramingError> {
        let head = parse_head(kind, head.as_bytes(), 4096).expect("valid head");
        BodyFacts::of(&head).framing(kind, over)
    }

    #[test]
    fn requests() {
        let f = |h: &str| framing(MessageKind::Request, h, BodyOverride::None);
        assert_eq!(f("GET / HTTP/1.1\r\n\r\n"), Ok(Framing::None));
        assert_eq!(
            f("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            f("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            Ok(Framing::None)
        );
        assert_eq!(
            f("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Err(FramingError)
        );
        assert_eq!(
            f("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            f("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Err(FramingError)
        );
        assert_eq!(
            f("CONNECT a:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
            Ok(Framing::None)
        );
    }

    #[test]
    fn responses() {
        let f = |h: &str, o| framing(MessageKind::Response, h, o);
        let none = BodyOverride::None;
        assert_eq!(f("HTTP/1.1 200 OK\r\n\r\n", none), Ok(Framing::UntilClose));
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", none),
            Ok(Framing::Length(3))
        );
        assert_eq!(
            f(
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
                BodyOverride::NoBody
            ),
            Ok(Framing::None)
        );
        assert_eq!(
            f("HTTP/1.1 204 No\r\nContent-Length: 3\r\n\r\n", none),
            Ok(Framing::None)
        );
        assert_eq!(
            f(
                "HTTP/1.1 304 No\r\nTransfer-Encoding: chunked\r\n\r\n",
                none
            ),
            Ok(Framing::None)
        );
        assert_eq!(f("HTTP/1.1 100 Continue\r\n\r\n", none), Ok(Framing::None));
        assert_eq!(
            f("HTTP/1.1 101 Switching\r\n\r\n", BodyOverride::Tunnel),
            Ok(Framing::Tunnel)
        );
        assert_eq!(
            f(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                none
            ),
            Ok(Framing::UntilClose)
        );
        assert_eq!(
            f("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", none),
            Err(FramingError)
        );
    }
}
