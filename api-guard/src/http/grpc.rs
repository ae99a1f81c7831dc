//! gRPC over HTTP/2: the call named by `:path`, its messages counted from their 5-byte
//! length prefixes as the bodies stream by, and its status from the trailers.

use serde::Serialize;

/// Longest `grpc-message` kept (it is free text chosen by the server).
const MAX_MESSAGE_CHARS: usize = 256;

/// The shape of a call as observed: how many messages went each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    Unary,
    ClientStreaming,
    ServerStreaming,
    Bidi,
}

impl CallKind {
    #[must_use]
    pub fn observed(messages_in: u64, messages_out: u64) -> Self {
        match (messages_in > 1, messages_out > 1) {
            (false, false) => Self::Unary,
            (true, false) => Self::ClientStreaming,
            (false, true) => Self::ServerStreaming,
            (true, true) => Self::Bidi,
        }
    }
}

/// One gRPC call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrpcCall {
    /// Fully qualified service (`package.Service`) and method, from `/package.Service/Method`.
    pub service: String,
    pub method: String,
    /// `grpc-status` from the trailers (or a trailers-only response); `None` if never seen.
    pub status: Option<u32>,
    /// `grpc-message` as sent (percent-encoded), cut to 256 characters; not in exchange lines.
    #[serde(skip)]
    pub message: Option<String>,
    /// Request messages (client to server) and response messages.
    pub messages_in: u64,
    pub messages_out: u64,
    /// Messages with the compressed flag set, both directions.
    pub compressed: u64,
}

impl GrpcCall {
    /// The call `path` names, if it has the `/service/method` shape.
    #[must_use]
    pub fn from_path(path: &str) -> Option<Self> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        if service.is_empty() || method.is_empty() || method.contains('/') {
            return None;
        }
        Some(Self {
            service: service.to_owned(),
            method: method.to_owned(),
            status: None,
            message: None,
            messages_in: 0,
            messages_out: 0,
            compressed: 0,
        })
    }

    #[must_use]
    pub fn kind(&self) -> CallKind {
        CallKind::observed(self.messages_in, self.messages_out)
    }

    /// Takes `grpc-status` / `grpc-message` from header or trailer fields.
    pub fn note_field(&mut self, name: &str, value: &str) {
        match name {
            "grpc-status" => self.status = value.trim().parse().ok(),
            "grpc-message" => {
                self.message = Some(value.chars().take(MAX_MESSAGE_CHARS).collect());
            }
            _ => {}
        }
    }

    pub(crate) fn retained_bytes(&self) -> usize {
        self.service.len() + self.method.len() + self.message.as_ref().map_or(0, String::len)
    }
}

/// Whether a `Content-Type` value is gRPC (`application/grpc`, `+proto`, `+json`, `-web`…).
#[must_use]
pub fn is_grpc(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let lower = media.to_ascii_lowercase();
    lower == "application/grpc"
        || lower.starts_with("application/grpc+")
        || lower.starts_with("application/grpc-web")
}

/// Counts length-prefixed messages (1 flag byte, 4 length bytes, payload) in one direction.
#[derive(Debug, Clone, Default)]
pub struct MessageCounter {
    /// Prefix bytes of the next message seen so far.
    prefix: [u8; 5],
    have: u8,
    /// Payload bytes of the current message still to skip.
    remaining: u64,
    pub messages: u64,
    pub compressed: u64,
    /// Framing was lost (a capture gap): counts stop rather than guess.
    lost: bool,
}

impl MessageCounter {
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.lost {
            if self.remaining > 0 {
                let skip =
                    usize::try_from(self.remaining).map_or(data.len(), |r| r.min(data.len()));
                self.remaining -= skip as u64;
                data = data.get(skip..).unwrap_or_default();
                continue;
            }
            let want = 5 - usize::from(self.have);
            let take = want.min(data.len());
            for (slot, &b) in self.prefix[usize::from(self.have)..]
                .iter_mut()
                .zip(&data[..take])
            {
                *slot = b;
            }
            self.have += take as u8;
            data = data.get(take..).unwrap_or_default();
            if self.have == 5 {
                self.have = 0;
                self.messages += 1;
                if self.prefix[0] & 1 != 0 {
                    self.compressed += 1;
                }
                let [_, a, b, c, d] = self.prefix;
                self.remaining = u64::from(u32::from_be_bytes([a, b, c, d]));
            }
        }
    }

    /// `len` bytes were not captured: inside the current payload the count stays exact,
    /// otherwise counting stops.
    pub fn gap(&mut self, len: u64) {
        if self.have == 0 && len <= self.remaining {
            self.remaining -= len;
        } else {
            self.lost = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![flag];
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn counts_messages_whatever_the_split() {
        let mut body = frame(0, b"hello");
        body.extend(frame(1, &[7; 300]));
        body.extend(frame(0, b""));
        for cut in 0..=body.len() {
            let mut c = MessageCounter::default();
            c.feed(&body[..cut]);
            c.feed(&body[cut..]);
            assert_eq!((c.messages, c.compressed), (3, 1), "cut {cut}");
        }
    }

    #[test]
    fn gap_inside_a_payload_keeps_counting() {
        let mut c = MessageCounter::default();
        let m = frame(0, &[1; 100]);
        c.feed(&m[..10]);
        c.gap(50);
        c.feed(&m[60..]);
        c.feed(&frame(0, b"x"));
        assert_eq!(c.messages, 2);
        c.gap(1000);
        c.feed(&frame(0, b"y"));
        assert_eq!(c.messages, 2);
    }

    #[test]
    fn paths_and_types() {
        let call = GrpcCall::from_path("/helloworld.Greeter/SayHello").expect("grpc path");
        assert_eq!(
            (call.service.as_str(), call.method.as_str()),
            ("helloworld.Greeter", "SayHello")
        );
        assert!(GrpcCall::from_path("/a/b/c").is_none());
        assert!(GrpcCall::from_path("/a").is_none());
        assert!(is_grpc("application/grpc+proto"));
        assert!(is_grpc("application/grpc"));
        assert!(is_grpc("application/grpc-web+proto"));
        assert!(!is_grpc("application/grpcx"));
        assert_eq!(CallKind::observed(1, 3), CallKind::ServerStreaming);
        assert_eq!(CallKind::observed(0, 1), CallKind::Unary);
    }
}
