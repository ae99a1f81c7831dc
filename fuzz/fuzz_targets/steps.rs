//! The input format the connection-parser targets share: after their own header byte(s),
//! steps of `[control, len, bytes...]`: bit 0 of `control` is the direction,
//! `(control >> 1) & 7 == 7` turns the step into a gap of `len + 1` lost bytes, otherwise the
//! next `len + 1` bytes (or what is left) are fed. After every step the parser's buffers are
//! within their bound and `check` sees what came out; returns the last timestamp used.

use api_guard::http::{ExchangeSlot, HttpConnection, HttpLimits, Stream};

pub fn run(
    conn: &mut HttpConnection,
    mut rest: &[u8],
    limits: &HttpLimits,
    out: &mut Vec<ExchangeSlot>,
    check: impl Fn(&mut Vec<ExchangeSlot>, &HttpLimits),
) -> u64 {
    let mut ts = 0u64;
    while let [control, len, tail @ ..] = rest {
        let stream = if control & 1 == 0 {
            Stream::Request
        } else {
            Stream::Response
        };
        let len = usize::from(*len) + 1;
        ts += 1;
        if (control >> 1) & 7 == 7 {
            conn.gap(stream, len as u64, ts, out);
            rest = tail;
        } else {
            let (piece, after) = tail.split_at(len.min(tail.len()));
            conn.feed(stream, piece, ts, out);
            rest = after;
        }
        assert!(conn.buffered_bytes() <= limits.max_buffered_bytes());
        check(out, limits);
    }
    ts
}
