//! Request notices: with `notify_requests`, each request is handed out alone as soon as it
//! ends, before its answer, whatever the pipelining depth; the exchange follows later.

use super::ts;
use crate::http::{HttpConnection, HttpLimits, Phase, Stream};

#[test]
fn every_pipelined_request_is_handed_out_even_past_the_pairing_bound() {
    let limits = HttpLimits::default();
    let mut conn = HttpConnection::new(limits);
    conn.notify_requests();
    let n = limits.max_pipelined * 3;
    let mut burst = Vec::new();
    for i in 0..n {
        burst.extend_from_slice(
            format!(
                "POST /r/{i} HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{:02}",
                i % 100
            )
            .as_bytes(),
        );
    }
    let mut out = Vec::new();
    conn.feed(Stream::Request, &burst, ts(0), &mut out);
    // One notice per request, in order, with its body; no exchange yet.
    assert_eq!(out.len(), n);
    for (i, ex) in out.iter().enumerate() {
        assert_eq!(ex.phase, Phase::Request);
        assert_eq!(ex.path, format!("/r/{i}"));
        assert_eq!(
            ex.request_body.as_ref(),
            format!("{:02}", i % 100).as_bytes()
        );
        assert_eq!((ex.status, ex.request_end_ns), (None, Some(ts(0))));
    }
    // Pairing still forgets the oldest beyond its bound (counted), judging already happened.
    assert_eq!(conn.lost_exchanges(), (n - limits.max_pipelined) as u64);
    out.clear();
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".repeat(n);
    conn.feed(Stream::Response, &answer, ts(1), &mut out);
    assert_eq!(out.len(), limits.max_pipelined);
    assert!(out
        .iter()
        .all(|e| e.phase == Phase::Exchange && e.request_noticed && e.status == Some(200)));
}

#[test]
fn a_request_is_handed_out_before_its_answer_and_not_after() {
    let mut conn = HttpConnection::new(HttpLimits::default());
    conn.notify_requests();
    let mut out = Vec::new();
    conn.feed(
        Stream::Request,
        b"GET /slow?id=1 HTTP/1.1\r\nHost: a\r\n\r\n",
        ts(0),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].phase, out[0].query.as_deref()),
        (Phase::Request, Some("id=1"))
    );
    conn.feed(
        Stream::Response,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ts(1),
        &mut out,
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].phase, Phase::Exchange);
    assert!(out[1].request_noticed);
    // A request cut off by the close ends there: judged with what arrived, marked truncated.
    conn.feed(
        Stream::Request,
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc",
        ts(2),
        &mut out,
    );
    assert_eq!(out.len(), 2);
    conn.close(ts(3), &mut out);
    assert_eq!(out.len(), 4);
    assert_eq!(out[2].phase, Phase::Request);
    assert!(out[2].request_truncated && out[2].request_body.as_ref() == b"abc");
    assert!(out[3].request_noticed && out[3].status.is_none());
    // Without notify_requests nothing changes.
    let mut plain = HttpConnection::new(HttpLimits::default());
    let mut out = Vec::new();
    plain.feed(
        Stream::Request,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ts(0),
        &mut out,
    );
    assert!(out.is_empty());
}
