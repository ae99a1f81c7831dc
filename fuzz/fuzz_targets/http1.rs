//! The HTTP/1 connection parser on arbitrary traffic in both directions, cut at arbitrary
//! places and with lost stretches: no panic, and what it buffers stays within its limits.
//!
//! Input: one byte choosing the limits, then the steps of `steps.rs`.
#![no_main]

use api_guard::http::{ExchangeSlot, HttpConnection, HttpLimits};
use libfuzzer_sys::fuzz_target;

mod steps;

fn limits(selector: u8) -> HttpLimits {
    if selector & 1 == 0 {
        HttpLimits::default()
    } else {
        // Tight limits, so that every limit is actually reached.
        HttpLimits {
            max_header_bytes: 16 + usize::from(selector >> 1) * 4,
            max_body_capture_bytes: usize::from(selector >> 4),
            max_pipelined: 1 + usize::from(selector >> 6),
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
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let limits = limits(selector);
    let mut conn = HttpConnection::new(limits);
    let mut out = Vec::new();
    let ts = steps::run(&mut conn, rest, &limits, &mut out, check);
    let errors = conn.parse_errors();
    conn.close(ts + 1, &mut out);
    assert!(conn.parse_errors() >= errors);
    assert_eq!(conn.buffered_bytes(), 0);
    check(&mut out, &limits);
});
