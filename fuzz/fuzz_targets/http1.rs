//! The HTTP/1 connection parser on arbitrary traffic in both directions, cut at arbitrary
//! places and with lost stretches: no panic, and what it buffers stays within its limits.
//!
//! Input: one byte choosing the limits, then steps of `[control, len, bytes...]`: bit 0 of
//! `control` is the direction, `(control >> 1) & 7 == 7` turns the step into a gap of
//! `len + 1` lost bytes, otherwise the next `len + 1` bytes (or what is left) are fed.
#![no_main]

use api_guard::http::{HttpConnection, HttpExchange, HttpLimits, Stream};
use libfuzzer_sys::fuzz_target;

fn limits(selector: u8) -> HttpLimits {
    if selector & 1 == 0 {
        HttpLimits::default()
    } else {
        // Tight limits, so that every limit is actually reached.
        HttpLimits {
            max_header_bytes: 16 + usize::from(selector >> 1) * 4,
            max_body_capture_bytes: usize::from(selector >> 4),
            max_pipelined: 1 + usize::from(selector >> 6),
        }
    }
}

fn check(out: &mut Vec<HttpExchange>, limits: &HttpLimits) {
    for ex in out.drain(..) {
        assert!(ex.request_body.len() <= limits.max_body_capture_bytes);
        assert!(ex.response_body.len() <= limits.max_body_capture_bytes);
        assert!(ex.request_body.len() as u64 <= ex.request_body_bytes);
        assert!(ex.response_body.len() as u64 <= ex.response_body_bytes);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let limits = limits(selector);
    let mut conn = HttpConnection::new(limits);
    let mut out = Vec::new();
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
            conn.gap(stream, len as u64, ts, &mut out);
            rest = tail;
        } else {
            let (piece, after) = tail.split_at(len.min(tail.len()));
            conn.feed(stream, piece, ts, &mut out);
            rest = after;
        }
        assert!(conn.buffered_bytes() <= limits.max_buffered_bytes());
        check(&mut out, &limits);
    }
    let errors = conn.parse_errors();
    conn.close(ts + 1, &mut out);
    assert!(conn.parse_errors() >= errors);
    assert_eq!(conn.buffered_bytes(), 0);
    check(&mut out, &limits);
});
