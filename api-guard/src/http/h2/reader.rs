//! Cuts one direction's byte stream into HTTP/2 frames, whatever the split, and finds
//! frame boundaries again after bytes were lost.
//!
//! Frames that carry field blocks (and the few bytes the other control frames need) are
//! buffered whole, bounded; DATA payloads stream through in pieces with the padding
//! removed, so a large body costs no buffer.

use std::mem;

use super::frame::{self, FrameHeader, HEADER_LEN};

/// Receives what the reader cuts out.
pub(crate) trait FrameSink {
    /// A whole non-DATA frame; `payload` may be cut to the prefix the frame type needs.
    fn frame(&mut self, h: &FrameHeader, payload: &[u8], ts: u64);
    /// DATA payload bytes (padding removed), in order, possibly in several pieces.
    fn data(&mut self, h: &FrameHeader, data: &[u8], ts: u64);
    /// The DATA frame `h` ended (its END_STREAM flag is in `h`).
    fn data_end(&mut self, h: &FrameHeader, ts: u64);
    /// `len` payload bytes of a DATA frame on `stream` were lost; framing stays exact.
    fn data_lost(&mut self, stream: u32, len: u64);
    /// Whole frames may have been lost: header-compression state is no longer known.
    fn sync_lost(&mut self);
    /// A framing error (bad padding, oversized field block).
    fn error(&mut self);
}

/// Control frame payload bytes worth keeping, by type (field blocks are kept whole).
fn kept_len(h: &FrameHeader, max_block: usize) -> Option<usize> {
    let len = h.len as usize;
    match h.kind {
        frame::HEADERS | frame::CONTINUATION | frame::PUSH_PROMISE => {
            (len <= max_block).then_some(len)
        }
        // 200 parameters is far more than the six RFC 9113 defines.
        frame::SETTINGS => Some(len.min(1200)),
        frame::RST_STREAM
        | frame::GOAWAY
        | frame::PRIORITY
        | frame::PING
        | frame::WINDOW_UPDATE => Some(len.min(8)),
        _ => Some(0),
    }
}

#[derive(Debug)]
enum State {
    /// Expecting the client connection preface; this many bytes of it matched.
    Preface(usize),
    Header {
        buf: [u8; HEADER_LEN],
        have: usize,
    },
    /// A control frame: `left` payload bytes still to come, the first `keep` kept in `buf`;
    /// a `damaged` one (bytes lost inside it) is skipped, not delivered.
    Frame {
        h: FrameHeader,
        keep: usize,
        left: u32,
        damaged: bool,
    },
    /// A DATA frame: the pad length byte (if PADDED and not yet read), then data, then padding.
    Data {
        h: FrameHeader,
        need_pad_len: bool,
        data_left: u32,
        pad_left: u32,
    },
    /// Frame boundaries are unknown: wait for a chunk that starts with a plausible frame.
    Resync,
    Failed,
}

#[derive(Debug)]
pub(crate) struct Reader {
    state: State,
    buf: Vec<u8>,
    /// Largest frame the peer writing this direction may send (its reader's setting).
    pub max_frame: u32,
    max_block: usize,
    /// Bytes dropped while looking for a frame boundary.
    pub skipped: u64,
}

impl Reader {
    /// A reader for a direction that starts with the client preface (`preface`), at a frame
    /// boundary, or (`resync`) at an unknown position.
    pub(crate) fn new(start: Start, max_block: usize) -> Self {
        let state = match start {
            Start::Preface => State::Preface(0),
            Start::Frames => State::Header {
                buf: [0; HEADER_LEN],
                have: 0,
            },
            Start::Unknown => State::Resync,
        };
        Self {
            state,
            buf: Vec::new(),
            max_frame: frame::DEFAULT_MAX_FRAME,
            max_block,
            skipped: 0,
        }
    }

    pub(crate) fn failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    pub(crate) fn buffered_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// One captured chunk (one read or write); chunk starts are where boundaries are
    /// looked for again after a loss.
    pub(crate) fn feed(&mut self, mut data: &[u8], ts: u64, sink: &mut impl FrameSink) {
        if matches!(self.state, State::Resync) {
            if !starts_with_frames(data, self.max_frame) {
                self.skipped += data.len() as u64;
                return;
            }
            self.state = State::Header {
                buf: [0; HEADER_LEN],
                have: 0,
            };
        }
        while !data.is_empty() {
            let used = self.step(data, ts, sink);
            data = data.get(used..).unwrap_or_default();
        }
    }

    fn step(&mut self, data: &[u8], ts: u64, sink: &mut impl FrameSink) -> usize {
        match &mut self.state {
            State::Failed | State::Resync => data.len(),
            State::Preface(matched) => {
                let want = frame::PREFACE.get(*matched..).unwrap_or_default();
                let n = want.len().min(data.len());
                if data.get(..n) != want.get(..n) {
                    sink.error();
                    self.state = State::Failed;
                    return data.len();
                }
                *matched += n;
                if *matched == frame::PREFACE.len() {
                    self.state = State::Header {
                        buf: [0; HEADER_LEN],
                        have: 0,
                    };
                }
                n
            }
            State::Header { buf, have } => {
                let n = (HEADER_LEN - *have).min(data.len());
                buf[*have..*have + n].copy_from_slice(&data[..n]);
                *have += n;
                if *have == HEADER_LEN {
                    let h = FrameHeader::parse(buf);
                    self.begin(h, ts, sink);
                }
                n
            }
            State::Frame {
                h,
                keep,
                left,
                damaged,
            } => {
                let n = (*left as usize).min(data.len());
                let room = keep.saturating_sub(self.buf.len());
                self.buf.extend_from_slice(&data[..n.min(room)]);
                *left -= n as u32;
                if *left == 0 {
                    let (h, damaged) = (*h, *damaged);
                    self.state = State::Header {
                        buf: [0; HEADER_LEN],
                        have: 0,
                    };
                    let payload = mem::take(&mut self.buf);
                    if !damaged {
                        sink.frame(&h, &payload, ts);
                    }
                    self.buf = payload;
                    self.buf.clear();
                    if self.buf.capacity() > 4 * 1024 {
                        self.buf = Vec::new();
                    }
                }
                n
            }
            State::Data {
                h,
                need_pad_len,
                data_left,
                pad_left,
            } => {
                if *need_pad_len {
                    *need_pad_len = false;
                    let pad = u32::from(data[0]);
                    let rest = *data_left;
                    if pad > rest {
                        // Padding longer than the payload: a protocol error; skip it all.
                        sink.error();
                        *pad_left = rest;
                        *data_left = 0;
                    } else {
                        *pad_left = pad;
                        *data_left = rest - pad;
                    }
                    let h = *h;
                    self.maybe_end_data(h, ts, sink);
                    return 1;
                }
                let h = *h;
                let n = if *data_left > 0 {
                    let n = (*data_left as usize).min(data.len());
                    *data_left -= n as u32;
                    sink.data(&h, &data[..n], ts);
                    n
                } else {
                    let n = (*pad_left as usize).min(data.len());
                    *pad_left -= n as u32;
                    n
                };
                self.maybe_end_data(h, ts, sink);
                n
            }
        }
    }

    fn begin(&mut self, h: FrameHeader, ts: u64, sink: &mut impl FrameSink) {
        if h.kind == frame::DATA {
            let padded = h.has(frame::PADDED);
            if padded && h.len == 0 {
                sink.error();
            }
            self.state = State::Data {
                h,
                need_pad_len: padded && h.len > 0,
                data_left: if padded {
                    h.len.saturating_sub(1)
                } else {
                    h.len
                },
                pad_left: 0,
            };
            self.maybe_end_data(h, ts, sink);
            return;
        }
        let Some(keep) = kept_len(&h, self.max_block) else {
            // A field block beyond the bound: its fields cannot be decoded, so neither can
            // any later block of this direction.
            sink.error();
            self.state = State::Failed;
            return;
        };
        self.state = State::Frame {
            h,
            keep,
            left: h.len,
            damaged: false,
        };
        if h.len == 0 {
            self.state = State::Header {
                buf: [0; HEADER_LEN],
                have: 0,
            };
            sink.frame(&h, &[], ts);
        }
    }

    fn maybe_end_data(&mut self, h: FrameHeader, ts: u64, sink: &mut impl FrameSink) {
        if let State::Data {
            need_pad_len: false,
            data_left: 0,
            pad_left: 0,
            ..
        } = self.state
        {
            self.state = State::Header {
                buf: [0; HEADER_LEN],
                have: 0,
            };
            sink.data_end(&h, ts);
        }
    }

    /// `len` bytes of this direction were not captured.
    pub(crate) fn gap(&mut self, len: u64, ts: u64, sink: &mut impl FrameSink) {
        if len == 0 {
            return;
        }
        match &mut self.state {
            State::Failed | State::Resync => {}
            State::Data {
                h,
                need_pad_len: false,
                data_left,
                pad_left,
            } if len <= u64::from(*data_left) + u64::from(*pad_left) => {
                let h = *h;
                let lost_data = len.min(u64::from(*data_left));
                *data_left -= lost_data as u32;
                *pad_left -= (len - lost_data) as u32;
                if lost_data > 0 {
                    sink.data_lost(h.stream, lost_data);
                }
                self.maybe_end_data(h, ts, sink);
            }
            State::Data { h, data_left, .. } => {
                if *data_left > 0 {
                    sink.data_lost(h.stream, u64::from(*data_left));
                }
                self.lose_sync(sink);
            }
            State::Frame {
                h, left, damaged, ..
            } if !matches!(
                h.kind,
                frame::HEADERS | frame::CONTINUATION | frame::PUSH_PROMISE
            ) && len < u64::from(*left) =>
            {
                // Inside a control frame: skip the rest of it unread.
                *left -= len as u32;
                *damaged = true;
                self.buf.clear();
            }
            _ => self.lose_sync(sink),
        }
    }

    fn lose_sync(&mut self, sink: &mut impl FrameSink) {
        self.buf = Vec::new();
        self.state = State::Resync;
        sink.sync_lost();
    }
}

/// Where a reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    Preface,
    Frames,
    Unknown,
}

/// Whether `data` is a run of plausible frames: each header valid for its type, each next
/// header right where the previous payload ends, the chunk ending inside the last frame.
#[must_use]
pub(crate) fn starts_with_frames(data: &[u8], max_frame: u32) -> bool {
    let mut at = 0usize;
    let mut frames = 0;
    while let Some(bytes) = data.get(at..at + HEADER_LEN) {
        let Ok(bytes) = <&[u8; HEADER_LEN]>::try_from(bytes) else {
            return false;
        };
        let h = FrameHeader::parse(bytes);
        if !h.plausible(max_frame.max(frame::DEFAULT_MAX_FRAME)) {
            return false;
        }
        frames += 1;
        at += HEADER_LEN + h.len as usize;
    }
    // A partial header at the end cannot be checked; at least one whole header must be.
    frames > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::h2::frame::{encode, DATA, END_STREAM, HEADERS, PADDED, SETTINGS};

    #[derive(Default, Debug, PartialEq)]
    struct Log(Vec<String>);

    impl FrameSink for Log {
        fn frame(&mut self, h: &FrameHeader, payload: &[u8], _: u64) {
            self.0.push(format!(
                "frame {} s{} {:?}",
                h.kind,
                h.stream,
                String::from_utf8_lossy(payload)
            ));
        }
        fn data(&mut self, h: &FrameHeader, data: &[u8], _: u64) {
            // Coalesce pieces so the log does not depend on the split.
            let line = format!("data s{} ", h.stream);
            match self.0.last_mut() {
                Some(last) if last.starts_with(&line) => {
                    last.push_str(&String::from_utf8_lossy(data))
                }
                _ => self
                    .0
                    .push(format!("{line}{}", String::from_utf8_lossy(data))),
            }
        }
        fn data_end(&mut self, h: &FrameHeader, _: u64) {
            self.0
                .push(format!("end s{} {}", h.stream, h.has(END_STREAM)));
        }
        fn data_lost(&mut self, stream: u32, len: u64) {
            self.0.push(format!("lost s{stream} {len}"));
        }
        fn sync_lost(&mut self) {
            self.0.push("sync lost".into());
        }
        fn error(&mut self) {
            self.0.push("error".into());
        }
    }

    fn stream() -> Vec<u8> {
        let mut s = frame::PREFACE.to_vec();
        s.extend(encode(SETTINGS, 0, 0, &[0, 1, 0, 0, 0x10, 0]));
        s.extend(encode(HEADERS, 4, 1, b"hdrs"));
        s.extend(encode(DATA, PADDED, 1, b"\x03bodyPPP"));
        s.extend(encode(DATA, END_STREAM, 1, b"more"));
        s.extend(encode(DATA, END_STREAM, 3, b""));
        s
    }

    fn read(chunks: &[&[u8]]) -> Log {
        let mut r = Reader::new(Start::Preface, 1024);
        let mut log = Log::default();
        for c in chunks {
            r.feed(c, 0, &mut log);
        }
        log
    }

    #[test]
    fn same_frames_whatever_the_split() {
        let s = stream();
        let whole = read(&[&s]);
        assert_eq!(
            whole.0,
            [
                "frame 4 s0 \"\\0\\u{1}\\0\\0\\u{10}\\0\"",
                "frame 1 s1 \"hdrs\"",
                "data s1 body",
                "end s1 false",
                "data s1 more",
                "end s1 true",
                "end s3 true",
            ]
        );
        for cut in 0..=s.len() {
            assert_eq!(read(&[&s[..cut], &s[cut..]]), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(read(&bytes), whole);
    }

    #[test]
    fn bad_preface_and_oversized_block_fail() {
        let mut r = Reader::new(Start::Preface, 1024);
        let mut log = Log::default();
        r.feed(b"GET / HTTP/1.1\r\n", 0, &mut log);
        assert!(r.failed());
        let mut r = Reader::new(Start::Frames, 3);
        r.feed(&encode(HEADERS, 4, 1, b"hdrs"), 0, &mut log);
        assert!(r.failed());
        assert_eq!(log.0, ["error", "error"]);
    }

    #[test]
    fn gap_inside_data_keeps_framing_and_resync_finds_the_next_chunk() {
        let mut r = Reader::new(Start::Frames, 1024);
        let mut log = Log::default();
        let f = encode(DATA, END_STREAM, 1, &[b'a'; 100]);
        r.feed(&f[..20], 0, &mut log);
        r.gap(50, 0, &mut log);
        r.feed(&f[70..], 0, &mut log);
        r.feed(&encode(HEADERS, 4, 3, b"h"), 0, &mut log);
        // A gap across a frame boundary: resync; garbage is skipped, frames are taken.
        r.feed(&encode(DATA, 0, 5, &[b'b'; 10])[..5], 0, &mut log);
        r.gap(1000, 0, &mut log);
        r.feed(b"\xff\xff\xff garbage", 0, &mut log);
        r.feed(&encode(HEADERS, 4, 7, b"x"), 0, &mut log);
        assert_eq!(r.skipped, 11);
        assert_eq!(
            log.0,
            [
                "data s1 aaaaaaaaaaa",
                "lost s1 50",
                "data s1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "end s1 true",
                "frame 1 s3 \"h\"",
                "sync lost",
                "frame 1 s7 \"x\"",
            ]
        );
    }

    #[test]
    fn frame_runs() {
        let mut two = encode(SETTINGS, 0, 0, &[0; 6]);
        two.extend(encode(HEADERS, 4, 1, b"abc"));
        assert!(starts_with_frames(&two, 16_384));
        assert!(starts_with_frames(&two[..12], 16_384));
        assert!(!starts_with_frames(b"HTTP/1.1 200 OK\r\n", 16_384));
        assert!(!starts_with_frames(&two[..5], 16_384));
        two.extend(b"\0\0\x01\x42\0\0\0\0\x01x");
        assert!(!starts_with_frames(&two, 16_384));
    }
}
