//! Malformed, hostile and lossy input: exact error counts, resynchronisation, bounds.

use super::{run, run_all_splits, run_cut, ts, Step};
use crate::http::{ConnState, HttpConnection, HttpLimits, Stream};

const OK_EMPTY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

/// (path, status, request_truncated) of every exchange.
fn summary(o: &super::Outcome) -> Vec<(&str, Option<u16>, bool)> {
    o.exchanges
        .iter()
        .map(|e| (e.path.as_str(), e.status, e.request_truncated))
        .collect()
}

fn bad_framing_then_resync(content_length: &str) {
    let req = format!(
        "POST /a HTTP/1.1\r\nContent-Length: {content_length}\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
    );
    let resp = [
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".as_slice(),
        OK_EMPTY,
    ]
    .concat();
    let o = run_all_splits(&[Step::Req(req.as_bytes()), Step::Resp(&resp)]);
    assert_eq!((o.errors, o.state), (1, ConnState::Http));
    assert_eq!(
        summary(&o),
        [("/a", Some(400), true), ("/b", Some(200), false)]
    );
}

#[test]
fn invalid_content_length() {
    bad_framing_then_resync("99999999999999999999");
    bad_framing_then_resync("-5");
    bad_framing_then_resync("1, 2");
    bad_framing_then_resync("0x10");
}

#[test]
fn duplicate_differing_content_length() {
    let req = b"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
    assert_eq!(run(&[Step::Req(req)]).errors, 1);
}

#[test]
fn transfer_encoding_wins_over_content_length_but_counts() {
    let req = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let o = run_all_splits(&[Step::Req(req), Step::Resp(OK_EMPTY)]);
    assert_eq!((o.errors, o.exchanges.len()), (1, 1));
    let ex = &o.exchanges[0];
    assert_eq!(
        (&ex.request_body[..], ex.request_truncated),
        (b"abc".as_slice(), false)
    );
}

#[test]
fn request_transfer_encoding_must_end_in_chunked() {
    let req = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\nWorld";
    let o = run(&[Step::Req(req), Step::Close]);
    assert_eq!(o.errors, 1);
    assert_eq!(summary(&o), [("/a", None, true)]);
}

#[test]
fn huge_chunk_size() {
    let req = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff0\r\nxx\r\nGET /b HTTP/1.1\r\n\r\n";
    let o = run_all_splits(&[Step::Req(req), Step::Resp(OK_EMPTY), Step::Resp(OK_EMPTY)]);
    assert_eq!(o.errors, 1);
    assert_eq!(
        summary(&o),
        [("/a", Some(200), true), ("/b", Some(200), false)]
    );
}

#[test]
fn header_too_large_is_bounded() {
    let limits = HttpLimits {
        max_header_bytes: 256,
        ..HttpLimits::default()
    };
    let mut req = b"GET /big HTTP/1.1\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 10_000));
    req.extend_from_slice(b"\r\n\r\nGET /ok HTTP/1.1\r\n\r\n");
    for step in [1, 7, 100, req.len()] {
        let mut conn = HttpConnection::new(limits);
        let mut out = Vec::new();
        for piece in req.chunks(step) {
            conn.feed(Stream::Request, piece, 1, &mut out);
            assert!(
                conn.buffered_bytes() <= 256 + 64,
                "buffered {}",
                conn.buffered_bytes()
            );
        }
        conn.close(2, &mut out);
        assert_eq!(conn.parse_errors(), 1);
        let got: Vec<_> = out
            .iter()
            .map(|e| (e.path.as_str(), e.request_truncated, e.request_header_bytes))
            .collect();
        assert_eq!(got, [("/big", true, 256), ("/ok", false, 20)]);
    }
}

#[test]
fn bare_line_feeds_are_errors() {
    let o = run(&[Step::Req(b"GET / HTTP/1.1\nHost: a\n\n"), Step::Close]);
    assert_eq!(o.errors, 1);
    let o = run(&[
        Step::Req(b"GET / HTTP/1.1\r\nFoo: 1\rBar: 2\r\n\r\n"),
        Step::Close,
    ]);
    assert_eq!(o.errors, 1);
}

#[test]
fn invalid_start_line_and_header() {
    // (request, the request line is what was rejected)
    for (req, bad_line) in [
        (b"GET / HTTP/5.6\r\n\r\n".as_slice(), true),
        (b"GET /foo bar HTTP/1.1\r\n\r\n", true),
        (b"GET /\r\nHost: a\r\n\r\n", true),
        (b"GET / HTTP/1.1\r\nFo@: x\r\n\r\n", false),
        (b"GET / HTTP/1.1\r\n Host: foo\r\n\r\n", false),
        (b"GET / HTTP/1.1\r\nX: a\x0cb\r\n\r\n", false),
    ] {
        let o = run_all_splits(&[Step::Req(req), Step::Close]);
        let text = String::from_utf8_lossy(req);
        assert_eq!((o.errors, o.exchanges.len()), (1, 1), "{text}");
        let ex = &o.exchanges[0];
        assert!(ex.request_truncated, "{text}");
        assert_eq!(ex.request_line_invalid, bad_line, "{text}");
        if bad_line {
            assert_eq!(ex.method, "GET", "{text}");
        }
    }
    // A request line cut by the close, or a gap, is no malformed line.
    let o = run(&[Step::Req(b"GET / HTTP/5.6"), Step::Close]);
    assert!(!o.exchanges.iter().any(|e| e.request_line_invalid));
}

#[test]
fn unfinished_head_checked_at_close() {
    let o = run(&[
        Step::Req(b"PUT /url HTTP/1.1\r\nContent-Length: 1000000000000000000000\r\n"),
        Step::Close,
    ]);
    assert_eq!(o.errors, 1);
    let o = run(&[Step::Req(b"GET / HTTP/5.6"), Step::Close]);
    assert_eq!(o.errors, 1);
    let o = run(&[Step::Req(b"PUT / HTTP/1.1\r\nContent-Leng"), Step::Close]);
    assert_eq!((o.errors, summary(&o)), (0, vec![("/", None, true)]));
}

#[test]
fn binary_garbage_is_not_http() {
    let mut conn = HttpConnection::new(HttpLimits::default());
    let mut out = Vec::new();
    conn.feed(Stream::Request, b"\x00\x01\x02\x03binary", 1, &mut out);
    assert_eq!(conn.state(), ConnState::NotHttp);
    conn.feed(Stream::Request, &[b'G'; 100_000], 2, &mut out);
    conn.feed(Stream::Response, b"HTTP/1.1 200 OK\r\n\r\n", 3, &mut out);
    conn.gap(Stream::Request, 5, 4, &mut out);
    conn.close(5, &mut out);
    assert_eq!(
        (out.len(), conn.parse_errors(), conn.buffered_bytes()),
        (0, 0, 0)
    );
    assert_eq!(conn.state(), ConnState::NotHttp);
}

#[test]
fn recognised_within_a_few_bytes() {
    let state_after = |stream, bytes: &[u8]| {
        let mut conn = HttpConnection::new(HttpLimits::default());
        conn.feed(stream, bytes, 1, &mut Vec::new());
        conn.state()
    };
    // TLS ClientHello: decided by the first byte.
    assert_eq!(state_after(Stream::Request, b"\x16"), ConnState::NotHttp);
    assert_eq!(
        state_after(
            Stream::Request,
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
        ),
        ConnState::NotHttp
    );
    // The HTTP/2 preface switches to the HTTP/2 parser.
    assert_eq!(
        state_after(Stream::Request, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ConnState::Http
    );
    assert_eq!(
        state_after(Stream::Request, b"PRI * HTTP/1.1\r\n"),
        ConnState::NotHttp
    );
    assert_eq!(
        state_after(Stream::Request, b"SSH-2.0-OpenSSH_9.6\r\n"),
        ConnState::NotHttp
    );
    assert_eq!(state_after(Stream::Request, b"GETTING"), ConnState::NotHttp);
    assert_eq!(
        state_after(Stream::Request, b"UNSUBSCRIBE"),
        ConnState::Detecting
    );
    assert_eq!(state_after(Stream::Request, b"POST "), ConnState::Http);
    // Server-first protocols.
    assert_eq!(
        state_after(Stream::Response, b"220 mail.example ESMTP\r\n"),
        ConnState::NotHttp
    );
    assert_eq!(
        state_after(Stream::Response, b"\x4a\x00\x00\x00\x0a8.0.36"),
        ConnState::NotHttp
    );
}

#[test]
fn gap_inside_body_keeps_sync() {
    let o = run_all_splits(&[
        Step::Req(b"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
        Step::Gap(Stream::Request, 4),
        Step::Req(b"hijGET /b HTTP/1.1\r\n\r\n"),
        Step::Resp(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nxy"),
        Step::Gap(Stream::Response, 3),
        Step::Resp(b"zHTTP/1.1 204 No Content\r\n\r\n"),
    ]);
    assert_eq!(o.errors, 0);
    let a = &o.exchanges[0];
    assert_eq!(
        (
            a.request_truncated,
            a.request_body_bytes,
            &a.request_body[..]
        ),
        (true, 10, b"abc".as_slice())
    );
    assert_eq!(
        (
            a.response_truncated,
            a.response_body_bytes,
            &a.response_body[..]
        ),
        (true, 6, b"xy".as_slice())
    );
    assert_eq!(
        (a.request_end_ns, a.response_end_ns),
        (Some(ts(2)), Some(ts(5)))
    );
    let b = &o.exchanges[1];
    assert_eq!(
        (
            b.path.as_str(),
            b.status,
            b.request_truncated,
            b.response_truncated
        ),
        ("/b", Some(204), false, false)
    );
}

#[test]
fn gap_inside_chunk_payload_keeps_sync() {
    let o = run_all_splits(&[
        Step::Req(b"GET / HTTP/1.1\r\n\r\n"),
        Step::Resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01"),
        Step::Gap(Stream::Response, 5),
        Step::Resp(b"789\r\n0\r\n\r\n"),
    ]);
    assert_eq!((o.errors, o.exchanges.len()), (0, 1));
    let ex = &o.exchanges[0];
    assert_eq!(
        (
            ex.response_truncated,
            ex.response_body_bytes,
            &ex.response_body[..]
        ),
        (true, 10, b"01".as_slice())
    );
}

#[test]
fn gap_inside_head_resynchronises() {
    let o = run_all_splits(&[
        Step::Req(b"GET /a HTTP/1.1\r\nHost: exa"),
        Step::Gap(Stream::Request, 100),
        Step::Req(b"mple.com\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
        Step::Resp(b"HTTP/1.1 200 OK\r\nContent-Le"),
        Step::Gap(Stream::Response, 30),
        Step::Resp(b"ngth: 0\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(o.errors, 0);
    let got: Vec<_> = o
        .exchanges
        .iter()
        .map(|e| {
            (
                e.method.as_str(),
                e.path.as_str(),
                e.status,
                e.request_truncated,
                e.response_truncated,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("GET", "/a", Some(200), true, true),
            ("GET", "/b", Some(201), false, false)
        ]
    );
    assert_eq!(
        (
            o.exchanges[0].request_end_ns,
            o.exchanges[0].request_header_bytes
        ),
        (None, 26)
    );
    // Its start line was seen whole: a cut head, still the client's request line.
    assert!(!o.exchanges.iter().any(|e| e.request_head_lost));
}

#[test]
fn gap_between_messages_stands_for_a_lost_message() {
    let o = run(&[
        Step::Req(b"GET /a HTTP/1.1\r\n\r\n"),
        Step::Gap(Stream::Request, 50),
        Step::Req(b"GET /c HTTP/1.1\r\n\r\n"),
        Step::Resp(OK_EMPTY),
        Step::Gap(Stream::Response, 40),
        Step::Resp(b"HTTP/1.1 203 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(o.errors, 0);
    let got: Vec<_> = o
        .exchanges
        .iter()
        .map(|e| (e.path.as_str(), e.status, e.response_truncated))
        .collect();
    assert_eq!(
        got,
        [
            ("/a", Some(200), false),
            ("", None, true),
            ("/c", Some(203), false)
        ]
    );
    // The lost one is marked so that detection and discovery leave it alone; a close
    // inside a head is the client's doing, not a loss.
    let lost: Vec<_> = o.exchanges.iter().map(|e| e.request_head_lost).collect();
    assert_eq!(lost, [false, true, false]);
    let o = run(&[
        Step::Req(b"GET /a HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHo"),
        Step::Close,
    ]);
    assert_eq!(o.exchanges.len(), 2);
    assert!(!o.exchanges.iter().any(|e| e.request_head_lost));
}

#[test]
fn gap_before_detection_fails() {
    let o = run(&[
        Step::Gap(Stream::Request, 10),
        Step::Req(b"GET / HTTP/1.1\r\n\r\n"),
        Step::Close,
    ]);
    assert_eq!(
        (o.state, o.exchanges.len(), o.errors),
        (ConnState::Failed, 0, 0)
    );
}

#[test]
fn response_without_request() {
    let o = run_all_splits(&[
        Step::Resp(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
        Step::Req(b"GET / HTTP/1.1\r\n\r\n"),
        Step::Resp(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!((o.errors, o.state), (1, ConnState::Http));
    assert_eq!(summary(&o), [("/", Some(202), false)]);
}

#[test]
fn too_many_pipelined_requests_drop_the_oldest() {
    let limits = HttpLimits {
        max_pipelined: 2,
        ..HttpLimits::default()
    };
    let steps = [
        Step::Req(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n"),
        Step::Resp(b"HTTP/1.1 201 A\r\nContent-Length: 0\r\n\r\nHTTP/1.1 202 B\r\nContent-Length: 0\r\n\r\n"),
        Step::Resp(b"HTTP/1.1 203 C\r\nContent-Length: 0\r\n\r\n"),
    ];
    let o = run_cut(limits, &steps, |_, d| vec![d]);
    assert_eq!(o.errors, 1);
    assert_eq!(
        summary(&o),
        [("/2", Some(202), false), ("/3", Some(203), false)]
    );
}

#[test]
fn data_after_connection_close() {
    let o = run_all_splits(&[
        Step::Req(b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n\r\nGET /c HTTP/1.1\r\n\r\n"),
        Step::Close,
    ]);
    assert_eq!(o.errors, 2);
    assert_eq!(
        summary(&o),
        [
            ("/a", None, false),
            ("/b", None, false),
            ("/c", None, false)
        ]
    );
}

#[test]
fn garbage_between_messages_resynchronises() {
    let o = run_all_splits(&[
        Step::Req(b"GET /a HTTP/1.1\r\n\r\nxyz\x00\xff garbage\r\nmore\r\nGET /b HTTP/1.1\r\n\r\n"),
        Step::Resp(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n!!\r\nHTTP/1.1 201 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(o.errors, 2);
    assert_eq!(
        summary(&o),
        [("/a", Some(200), false), ("/b", Some(201), false)]
    );
}

#[test]
fn persistent_errors_fail_the_connection() {
    let bad = b"GET / HTTP/1.1\r\nbad\x01: x\r\n\r\n".repeat(12);
    let mut conn = HttpConnection::new(HttpLimits::default());
    let mut out = Vec::new();
    conn.feed(Stream::Request, &bad, 1, &mut out);
    assert_eq!(
        (conn.state(), conn.parse_errors(), conn.buffered_bytes() > 0),
        (ConnState::Failed, 9, true)
    );
    conn.feed(Stream::Request, b"GET / HTTP/1.1\r\n\r\n", 2, &mut out);
    conn.close(3, &mut out);
    assert_eq!(
        (conn.parse_errors(), out.len(), conn.buffered_bytes()),
        (9, 9, 0)
    );
}

#[test]
fn lost_chunk_framing_resynchronises_without_inventing_messages() {
    let o = run_all_splits(&[
        Step::Req(b"GET /a HTTP/1.1\r\n\r\n"),
        Step::Resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"),
        Step::Gap(Stream::Response, 50),
        Step::Resp(b"5\r\nhello\r\n0\r\n\r\n"),
        Step::Req(b"GET /b HTTP/1.1\r\n\r\n"),
        Step::Resp(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(o.errors, 0);
    let got: Vec<_> = o
        .exchanges
        .iter()
        .map(|e| {
            (
                e.path.as_str(),
                e.status,
                e.response_truncated,
                e.response_body_bytes,
                &e.response_body[..],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/a", Some(200), true, 3, b"abc".as_slice()),
            ("/b", Some(201), false, 0, b"")
        ]
    );
}

#[test]
fn gap_inside_switching_protocols_head_still_upgrades() {
    let o = run(&[
        Step::Req(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
        Step::Resp(b"HTTP/1.1 101 Switching Protocols\r\nUpgr"),
        Step::Gap(Stream::Response, 20),
        Step::Resp(b"\x81\x05hello"),
        Step::Close,
    ]);
    assert_eq!((o.errors, o.state), (0, ConnState::Upgraded));
    let ex = &o.exchanges[0];
    assert_eq!((ex.status, ex.response_truncated), (Some(101), true));
}
