//! The connection parser on HTTP/2 traffic: the client preface is given, then arbitrary
//! frames in both directions, cut anywhere and with lost stretches (or joined mid-way): no
//! panic, and what it buffers stays within its limits.
//!
//! Input: one byte choosing the limits and the start (bit 7: joined mid-connection), then
//! the steps of `steps.rs`.
#![no_main]

use api_guard::http::{ExchangeSlot, HttpConnection, HttpLimits, Stream};
use libfuzzer_sys::fuzz_target;

mod steps;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn limits(selector: u8) -> HttpLimits {
    if selector & 1 == 0 {
        HttpLimits::default()
    } else {
        HttpLimits {
            max_header_bytes: 1024 + usize::from(selector >> 1 & 7) * 512,
            max_body_capture_bytes: usize::from(selector >> 4 & 7) * 64,
            max_pipelined: 1 + usize::from(selector >> 5 & 3),
            ..HttpLimits::default()
        }
    }
}

fn check(out: &mut Vec<ExchangeSlot>, limits: &HttpLimits) {
    for ex in out.drain(..) {
        assert!(ex.request_body.len() <= limits.max_body_capture_bytes);
        assert!(ex.response_body.len() <= limits.max_body_capture_bytes);
        assert!(ex.request_body.len() as u64 <= ex.request_body_bytes);
        assert!(ex.response_body.len() as u64 <= ex.response_body_bytes);
        assert!(ex.request_headers.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>() <= limits.max_header_bytes);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let limits = limits(selector);
    let mut out = Vec::new();
    let mut conn = if selector & 0x80 == 0 {
        let mut conn = HttpConnection::new(limits);
        conn.feed(Stream::Request, PREFACE, 0, &mut out);
        conn
    } else {
        HttpConnection::joined(limits)
    };
    let ts = steps::run(&mut conn, rest, &limits, &mut out, check);
    conn.close(ts + 1, &mut out);
    check(&mut out, &limits);
});
