//! HTTP/2 frame headers and the fixed-layout payloads (RFC 9113 §4, §6).

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE: initial value and the largest a peer may announce.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
pub const LARGEST_MAX_FRAME: u32 = (1 << 24) - 1;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    /// Stream identifier with the reserved bit cleared.
    pub stream: u32,
}

impl FrameHeader {
    #[must_use]
    pub fn parse(b: &[u8; HEADER_LEN]) -> Self {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = *b;
        Self {
            len: u32::from_be_bytes([0, l0, l1, l2]),
            kind,
            flags,
            stream: u32::from_be_bytes([s0 & 0x7f, s1, s2, s3]),
        }
    }

    #[must_use]
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Whether a frame with this header could be valid on a connection whose frames may be
    /// up to `max_frame` long: known type on the right kind of stream, fixed lengths right.
    /// Used to find frame boundaries again after lost bytes. Unknown types are legal in
    /// HTTP/2 but never trusted here.
    #[must_use]
    pub fn plausible(&self, max_frame: u32) -> bool {
        if self.len > max_frame {
            return false;
        }
        let connection = self.stream == 0;
        match self.kind {
            DATA | HEADERS | CONTINUATION | PUSH_PROMISE => !connection,
            PRIORITY => !connection && self.len == 5,
            RST_STREAM => !connection && self.len == 4,
            SETTINGS => {
                connection && self.len.is_multiple_of(6) && (!self.has(ACK) || self.len == 0)
            }
            PING => connection && self.len == 8,
            GOAWAY => connection && self.len >= 8,
            WINDOW_UPDATE => self.len == 4,
            _ => false,
        }
    }
}

/// The field block fragment of a HEADERS or PUSH_PROMISE payload: padding and the
/// priority fields (HEADERS) or promised stream id (PUSH_PROMISE) removed. Also returns the
/// promised stream. `None` if the padding or fixed fields do not fit.
#[must_use]
pub fn block_fragment<'a>(h: &FrameHeader, payload: &'a [u8]) -> Option<(&'a [u8], u32)> {
    let (pad, rest) = if h.has(PADDED) {
        let (&pad, rest) = payload.split_first()?;
        (usize::from(pad), rest)
    } else {
        (0, payload)
    };
    let rest = rest.get(..rest.len().checked_sub(pad)?)?;
    match h.kind {
        HEADERS if h.has(PRIORITY_FLAG) => Some((rest.get(5..)?, 0)),
        PUSH_PROMISE => {
            let id = rest.get(..4)?;
            let promised = u32::from_be_bytes([id[0] & 0x7f, id[1], id[2], id[3]]);
            Some((rest.get(4..)?, promised))
        }
        _ => Some((rest, 0)),
    }
}

/// SETTINGS parameters as (identifier, value) pairs.
pub fn settings(payload: &[u8]) -> impl Iterator<Item = (u16, u32)> + '_ {
    payload.chunks_exact(6).map(|c| {
        (
            u16::from_be_bytes([c[0], c[1]]),
            u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
        )
    })
}

#[cfg(test)]
pub(crate) fn encode(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes();
    let mut v = vec![len[1], len[2], len[3], kind, flags];
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_reserved_bit() {
        let f = encode(HEADERS, END_HEADERS | END_STREAM, 0x8000_0003, b"abc");
        let h = FrameHeader::parse(f[..9].try_into().unwrap());
        assert_eq!(
            h,
            FrameHeader {
                len: 3,
                kind: HEADERS,
                flags: 5,
                stream: 3
            }
        );
        assert!(h.has(END_STREAM) && h.has(END_HEADERS) && !h.has(PADDED));
    }

    #[test]
    fn plausibility() {
        let p = |kind, flags, stream, len| {
            FrameHeader {
                len,
                kind,
                flags,
                stream,
            }
            .plausible(DEFAULT_MAX_FRAME)
        };
        assert!(p(SETTINGS, 0, 0, 18));
        assert!(!p(SETTINGS, 0, 1, 18));
        assert!(!p(SETTINGS, ACK, 0, 6));
        assert!(!p(DATA, 0, 0, 10));
        assert!(!p(DATA, 0, 1, 20_000));
        assert!(p(PING, 0, 0, 8));
        assert!(!p(0x20, 0, 1, 8));
        assert!(p(RST_STREAM, 0, 5, 4));
    }

    #[test]
    fn fragments_without_padding_and_priority() {
        let h = |flags| FrameHeader {
            len: 0,
            kind: HEADERS,
            flags,
            stream: 1,
        };
        assert_eq!(block_fragment(&h(0), b"abc"), Some((&b"abc"[..], 0)));
        assert_eq!(
            block_fragment(&h(PADDED), b"\x02abcXX"),
            Some((&b"abc"[..], 0))
        );
        assert_eq!(block_fragment(&h(PADDED), b"\x09abc"), None);
        assert_eq!(
            block_fragment(&h(PADDED | PRIORITY_FLAG), b"\x01\0\0\0\x03\x10abcX"),
            Some((&b"abc"[..], 0))
        );
        let pp = FrameHeader {
            len: 0,
            kind: PUSH_PROMISE,
            flags: 0,
            stream: 1,
        };
        assert_eq!(block_fragment(&pp, b"\0\0\0\x02xy"), Some((&b"xy"[..], 2)));
    }
}
