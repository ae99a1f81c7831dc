//! Incremental decoder for the chunked transfer coding (RFC 9112 §7.1), including chunk
//! extensions and the trailer section.

use super::{CR, LF};
use crate::text::hex_value;

/// Why a chunked body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkError {
    /// A byte that the grammar does not allow where it appeared.
    Syntax,
    /// A chunk size that does not fit in 64 bits.
    Overflow,
    /// A chunk-size line or the trailer section is longer than the header limit.
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of the chunk size; `digits` counts them.
    Size {
        size: u64,
        digits: u32,
    },
    /// Whitespace after the size: only allowed before an extension's `;`.
    SizeSpace {
        size: u64,
    },
    Ext {
        size: u64,
        ext: Ext,
    },
    /// CR of the chunk-size line seen.
    SizeLf {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// In the trailer section; `line_start` when at the start of a field line.
    Trailer {
        line_start: bool,
    },
    TrailerLf {
        end: bool,
    },
    Done,
}

/// Position inside `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    NameStart,
    Name,
    AfterName,
    ValueStart,
    Token,
    Quoted,
    QuotedEscape,
    AfterValue,
}

#[derive(Debug, Clone)]
pub(crate) struct ChunkedDecoder {
    state: State,
    /// Bytes of the current chunk-size line or of the trailer section.
    line_len: usize,
    max_line: usize,
}

impl ChunkedDecoder {
    pub(crate) fn new(max_line: usize) -> Self {
        Self {
            state: State::Size { size: 0, digits: 0 },
            line_len: 0,
            max_line,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `data`, passing chunk payload to `payload`. Returns the bytes consumed
    /// (all of `data`, or fewer when the body ended — then [`Self::is_done`] — or when an
    /// error was found, the offending byte included) and whether the body is valid so far.
    pub(crate) fn decode(
        &mut self,
        data: &[u8],
        payload: &mut impl FnMut(&[u8]),
    ) -> (usize, Result<(), ChunkError>) {
        let mut pos = 0;
        while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
            match self.state {
                State::Done => break,
                State::Data { remaining } => {
                    let take = usize::try_from(remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    let chunk = rest.get(..take).unwrap_or(rest);
                    payload(chunk);
                    let left = remaining - chunk.len() as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining: left }
                    };
                    pos += chunk.len();
                }
                _ => {
                    let b = rest.first().copied().unwrap_or_default();
                    pos += 1;
                    match self.step(b) {
                        Ok(next) => self.state = next,
                        Err(e) => return (pos, Err(e)),
                    }
                }
            }
        }
        (pos, Ok(()))
    }

    /// Accounts for `len` lost bytes. Returns false when the loss is not wholly inside
    /// chunk payload, i.e. the decoder lost its place.
    pub(crate) fn skip(&mut self, len: u64) -> bool {
        match self.state {
            State::Data { remaining } if len <= remaining => {
                let left = remaining - len;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data { remaining: left }
                };
                true
            }
            _ => false,
        }
    }

    /// One byte outside chunk payload.
    fn step(&mut self, b: u8) -> Result<State, ChunkError> {
        let counted = !matches!(self.state, State::DataCr | State::DataLf);
        if counted {
            self.line_len += 1;
            if self.line_len > self.max_line {
                return Err(ChunkError::TooLong);
            }
        }
        let next = match self.state {
            State::Size { size, digits } => match (hex_value(b).map(u64::from), b) {
                (Some(d), _) => {
                    let size = size.checked_mul(16).and_then(|s| s.checked_add(d));
                    State::Size {
                        size: size.ok_or(ChunkError::Overflow)?,
                        digits: digits.saturating_add(1),
                    }
                }
                (None, _) if digits == 0 => return Err(ChunkError::Syntax),
                (None, CR) => State::SizeLf { size },
                (None, b';') => State::Ext {
                    size,
                    ext: Ext::NameStart,
                },
                (None, b' ' | b'\t') => State::SizeSpace { size },
                (None, _) => return Err(ChunkError::Syntax),
            },
            State::SizeSpace { size } => match b {
                b' ' | b'\t' => State::SizeSpace { size },
                b';' => State::Ext {
                    size,
                    ext: Ext::NameStart,
                },
                _ => return Err(ChunkError::Syntax),
            },
            State::Ext { size, ext } => match step_ext(ext, b)? {
                Some(ext) => State::Ext { size, ext },
                None => State::SizeLf { size },
            },
            State::SizeLf { size } => {
                if b != LF {
                    return Err(ChunkError::Syntax);
                }
                self.line_len = 0;
                if size == 0 {
                    State::Trailer { line_start: true }
                } else {
                    State::Data { remaining: size }
                }
            }
            State::DataCr if b == CR => State::DataLf,
            State::DataLf if b == LF => State::Size { size: 0, digits: 0 },
            State::Trailer { line_start } => match b {
                CR => State::TrailerLf { end: line_start },
                LF => return Err(ChunkError::Syntax),
                _ => State::Trailer { line_start: false },
            },
            State::TrailerLf { end } => match (b, end) {
                (LF, true) => State::Done,
                (LF, false) => State::Trailer { line_start: true },
                _ => return Err(ChunkError::Syntax),
            },
            State::DataCr | State::DataLf | State::Data { .. } | State::Done => {
                return Err(ChunkError::Syntax)
            }
        };
        Ok(next)
    }
}

/// One byte of a chunk extension; `None` when the CR ending the size line was consumed.
fn step_ext(ext: Ext, b: u8) -> Result<Option<Ext>, ChunkError> {
    let ws = b == b' ' || b == b'\t';
    let next = match ext {
        Ext::NameStart if ws => Ext::NameStart,
        Ext::NameStart | Ext::ValueStart if is_tchar(b) => {
            if ext == Ext::NameStart {
                Ext::Name
            } else {
                Ext::Token
            }
        }
        Ext::Name if is_tchar(b) => Ext::Name,
        Ext::Token if is_tchar(b) => Ext::Token,
        Ext::Name | Ext::AfterName if ws => Ext::AfterName,
        Ext::Name | Ext::AfterName if b == b'=' => Ext::ValueStart,
        Ext::ValueStart if ws => Ext::ValueStart,
        Ext::ValueStart if b == b'"' => Ext::Quoted,
        Ext::Quoted if b == b'\\' => Ext::QuotedEscape,
        Ext::Quoted if b == b'"' => Ext::AfterValue,
        Ext::Quoted if b == b'\t' || (b >= 0x20 && b != 0x7f) => Ext::Quoted,
        Ext::QuotedEscape if b == b'\t' || (b >= 0x20 && b != 0x7f) => Ext::Quoted,
        Ext::Token | Ext::AfterValue if ws => Ext::AfterValue,
        Ext::Name | Ext::AfterName | Ext::Token | Ext::AfterValue => match b {
            b';' => Ext::NameStart,
            CR => return Ok(None),
            _ => return Err(ChunkError::Syntax),
        },
        _ => return Err(ChunkError::Syntax),
    };
    Ok(Some(next))
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `body` fed in pieces of `step` bytes; returns (payload, consumed) or the error.
    fn decode(body: &[u8], step: usize) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut dec = ChunkedDecoder::new(1024);
        let mut payload = Vec::new();
        let mut consumed = 0;
        for piece in body.chunks(step) {
            let (used, result) = dec.decode(piece, &mut |d| payload.extend_from_slice(d));
            result?;
            consumed += used;
            if dec.is_done() {
                break;
            }
        }
        assert!(dec.is_done(), "body incomplete");
        Ok((payload, consumed))
    }

    #[test]
    fn valid_bodies_at_every_split() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
            (b"a;foo=bar\r\n0123456789\r\n000\r\n\r\n", b"0123456789"),
            (
                b"5;a=\"x; \\\"y\";b ; c = d\r\nhello\r\n0\r\nVary: *\r\nX: y\r\n\r\n",
                b"hello",
            ),
            (
                b"1E\r\nall your base are belong to us\r\n0\r\n\r\n",
                b"all your base are belong to us",
            ),
            (b"3 ;x\r\nabc\r\n0\r\n\r\n", b"abc"),
        ];
        for (body, payload) in cases {
            for step in 1..=body.len() {
                let (got, consumed) = decode(body, step).expect("valid body");
                assert_eq!(&got, payload, "step {step}");
                assert_eq!(consumed, body.len());
            }
        }
    }

    #[test]
    fn stops_at_end_of_body() {
        let mut dec = ChunkedDecoder::new(64);
        let (n, result) = dec.decode(b"1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1", &mut |_| {});
        assert_eq!((n, result), (11, Ok(())));
        assert!(dec.is_done());
    }

    #[test]
    fn invalid_bodies() {
        let err = |body: &[u8]| {
            let mut dec = ChunkedDecoder::new(64);
            dec.decode(body, &mut |_| {}).1.expect_err("must fail")
        };
        assert_eq!(err(b"3\r\nfoo\r\n\r\n"), ChunkError::Syntax);
        assert_eq!(err(b"a \r\n"), ChunkError::Syntax);
        assert_eq!(err(b"2 erf\r\n"), ChunkError::Syntax);
        assert_eq!(err(b"2;\r\n"), ChunkError::Syntax);
        assert_eq!(err(b"5;a=\"abc\r\n"), ChunkError::Syntax);
        assert_eq!(err(b"5\r\r;ABCD\r\n"), ChunkError::Syntax);
        assert_eq!(err(b"5\r\nABCDE0\r\n"), ChunkError::Syntax);
        assert_eq!(err(b"5\nhello"), ChunkError::Syntax);
        assert_eq!(err(b"-1\r\n"), ChunkError::Syntax);
        assert_eq!(err(b"10000000000000000\r\n"), ChunkError::Overflow);
        assert_eq!(err(b"ffffffffffffffffff\r\n"), ChunkError::Overflow);
        assert_eq!(err(b"0\r\nX: y\n\r\n"), ChunkError::Syntax);
        assert_eq!(
            err(&[b"1;".as_slice(), &[b'a'; 100]].concat()),
            ChunkError::TooLong
        );
    }

    #[test]
    fn max_chunk_size_is_not_an_error() {
        let mut dec = ChunkedDecoder::new(64);
        assert_eq!(
            dec.decode(b"ffffffffffffffff\r\nabc", &mut |_| {}),
            (21, Ok(()))
        );
        assert!(dec.skip(10));
        assert!(!dec.is_done());
    }

    #[test]
    fn gap_inside_payload_keeps_sync() {
        let mut dec = ChunkedDecoder::new(64);
        let mut payload = Vec::new();
        dec.decode(b"a\r\n012", &mut |d| payload.extend_from_slice(d))
            .1
            .expect("valid");
        assert!(dec.skip(7));
        assert!(!dec.skip(1));
        dec.decode(b"\r\n0\r\n\r\n", &mut |d| payload.extend_from_slice(d))
            .1
            .expect("valid");
        assert!(dec.is_done());
        assert_eq!(payload, b"012");
    }
}
