//! Valid traffic: exact exchanges, identical for every way of cutting the bytes.

use super::{headers, run_all_splits, ts, Step};
use crate::http::{ConnState, Stream};

fn wire(b: &[u8]) -> u64 {
    b.len() as u64
}

#[test]
fn simple_get() {
    let req = b"GET /index.html?q=1&r=%20 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    let o = run_all_splits(&[Step::Req(req), Step::Resp(resp)]);
    assert_eq!(
        (o.errors, o.state, o.exchanges.len()),
        (0, ConnState::Http, 1)
    );
    let ex = &o.exchanges[0];
    assert_eq!(ex.method, "GET");
    assert_eq!(ex.path, "/index.html");
    assert_eq!(ex.query.as_deref(), Some("q=1&r=%20"));
    assert_eq!(ex.host.as_deref(), Some("example.com"));
    assert_eq!(ex.version, crate::http::HttpVersion::Http11);
    assert_eq!(ex.status, Some(200));
    assert_eq!(ex.request_start_ns, ts(0));
    assert_eq!(ex.request_end_ns, Some(ts(0)));
    assert_eq!(ex.response_start_ns, Some(ts(1)));
    assert_eq!(ex.response_end_ns, Some(ts(1)));
    assert_eq!(ex.request_header_bytes, wire(req));
    assert_eq!(ex.request_body_bytes, 0);
    assert_eq!(ex.response_header_bytes, wire(resp) - 5);
    assert_eq!(ex.response_body_bytes, 5);
    assert!(!ex.request_truncated && !ex.response_truncated);
    assert_eq!(
        headers(&ex.request_headers),
        [("Host", "example.com"), ("User-Agent", "t")]
    );
    assert_eq!(headers(&ex.response_headers), [("Content-Length", "5")]);
    assert_eq!(ex.request_body.as_ref(), b"");
    assert_eq!(ex.response_body.as_ref(), b"hello");
}

#[test]
fn post_with_content_length() {
    let head =
        b"POST /api/items HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n";
    let req = [head.as_slice(), br#"{"a":"hello"}"#].concat();
    let resp = b"HTTP/1.0 201 Created\r\nContent-Length: 0\r\n\r\n";
    let o = run_all_splits(&[Step::Req(&req), Step::Resp(resp)]);
    assert_eq!((o.errors, o.exchanges.len()), (0, 1));
    let ex = &o.exchanges[0];
    assert_eq!(
        (ex.method.as_str(), ex.path.as_str(), ex.query.as_deref()),
        ("POST", "/api/items", None)
    );
    assert_eq!(
        (ex.version, ex.status, ex.host.as_deref()),
        (crate::http::HttpVersion::Http10, Some(201), None)
    );
    assert_eq!(
        (ex.request_header_bytes, ex.request_body_bytes),
        (wire(head), 13)
    );
    assert_eq!(ex.request_body.as_ref(), br#"{"a":"hello"}"#);
    assert_eq!(
        (ex.response_header_bytes, ex.response_body_bytes),
        (wire(resp), 0)
    );
}

#[test]
fn chunked_upload_with_extensions_and_trailers() {
    let head = b"PUT /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n";
    let body = b"5;name=\"v;1\"\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n";
    let req = [head.as_slice(), body].concat();
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let o = run_all_splits(&[Step::Req(&req), Step::Resp(resp)]);
    assert_eq!((o.errors, o.exchanges.len()), (0, 1));
    let ex = &o.exchanges[0];
    assert_eq!(
        (ex.request_header_bytes, ex.request_body_bytes),
        (wire(head), 11)
    );
    assert_eq!(ex.request_body.as_ref(), b"hello world");
    assert_eq!(
        (ex.status, ex.response_body.as_ref()),
        (Some(200), b"ok".as_slice())
    );
}

#[test]
fn chunked_response() {
    let req = b"GET /wiki HTTP/1.1\r\nHost: w\r\n\r\n";
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let resp = [
        head.as_slice(),
        b"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n",
    ]
    .concat();
    let o = run_all_splits(&[Step::Req(req), Step::Resp(&resp), Step::Req(req)]);
    assert_eq!((o.errors, o.exchanges.len()), (0, 1));
    let ex = &o.exchanges[0];
    assert_eq!(
        (ex.response_header_bytes, ex.response_body_bytes),
        (wire(head), 23)
    );
    assert_eq!(ex.response_body.as_ref(), b"Wikipedia in\r\n\r\nchunks.");
}

#[test]
fn pipelined_requests_pair_in_order() {
    let reqs = b"GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /3?x HTTP/1.1\r\n\r\n";
    let resps = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n";
    let o = run_all_splits(&[Step::Req(reqs), Step::Resp(resps)]);
    assert_eq!(o.errors, 0);
    let got: Vec<_> = o
        .exchanges
        .iter()
        .map(|e| {
            (
                e.method.as_str(),
                e.path.as_str(),
                e.status,
                &e.request_body[..],
                &e.response_body[..],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("GET", "/1", Some(200), b"".as_slice(), b"a".as_slice()),
            ("POST", "/2", Some(404), b"abc", b""),
            ("GET", "/3", Some(200), b"", b"x"),
        ]
    );
    assert_eq!(o.exchanges[2].query.as_deref(), Some("x"));
}

/// A response that must not have a body, followed by an exchange proving sync was kept.
fn bodiless(req: &[u8], resp: &[u8], status: u16) {
    let next_req = b"GET /next HTTP/1.1\r\n\r\n";
    let next_resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    let o = run_all_splits(&[
        Step::Req(req),
        Step::Resp(resp),
        Step::Req(next_req),
        Step::Resp(next_resp),
    ]);
    assert_eq!((o.errors, o.exchanges.len()), (0, 2));
    let ex = &o.exchanges[0];
    assert_eq!(
        (ex.status, ex.response_header_bytes, ex.response_body_bytes),
        (Some(status), wire(resp), 0)
    );
    assert_eq!(ex.response_end_ns, Some(ts(1)));
    let next = &o.exchanges[1];
    assert_eq!(
        (next.path.as_str(), next.status, &next.response_body[..]),
        ("/next", Some(200), b"hi".as_slice())
    );
}

#[test]
fn head_response_has_no_body() {
    bodiless(
        b"HEAD / HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
        200,
    );
}

#[test]
fn no_content_response() {
    bodiless(
        b"DELETE /items/1 HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        204,
    );
}

#[test]
fn not_modified_response() {
    bodiless(
        b"GET / HTTP/1.1\r\nIf-None-Match: \"x\"\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 100\r\n\r\n",
        304,
    );
}

#[test]
fn expect_continue_pairs_the_final_response() {
    let head = b"POST /up HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n";
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let last = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let o = run_all_splits(&[
        Step::Req(head),
        Step::Resp(interim),
        Step::Req(b"data"),
        Step::Resp(last),
    ]);
    assert_eq!((o.errors, o.exchanges.len()), (0, 1));
    let ex = &o.exchanges[0];
    assert_eq!(
        (ex.status, ex.response_header_bytes),
        (Some(200), wire(last))
    );
    assert_eq!(
        (ex.request_end_ns, ex.response_start_ns),
        (Some(ts(2)), Some(ts(3)))
    );
    assert_eq!(ex.request_body.as_ref(), b"data");
}

#[test]
fn other_interim_responses_are_skipped() {
    let req = b"GET / HTTP/1.1\r\n\r\n";
    let resp = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
    let o = run_all_splits(&[Step::Req(req), Step::Resp(resp)]);
    assert_eq!((o.errors, o.exchanges.len()), (0, 1));
    assert_eq!(
        headers(&o.exchanges[0].response_headers),
        [("Content-Length", "1")]
    );
}

#[test]
fn body_until_close() {
    let req = b"GET /stream HTTP/1.1\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart1";
    let o = run_all_splits(&[
        Step::Req(req),
        Step::Resp(resp),
        Step::Resp(b"part2"),
        Step::Close,
    ]);
    assert_eq!((o.errors, o.exchanges.len()), (0, 1));
    let ex = &o.exchanges[0];
    assert_eq!(
        (ex.response_body_bytes, &ex.response_body[..]),
        (10, b"part1part2".as_slice())
    );
    assert_eq!(
        (ex.response_end_ns, ex.response_truncated),
        (Some(ts(3)), false)
    );
}

#[test]
fn switching_protocols_stops_parsing() {
    let req = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let resp = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello";
    let o = run_all_splits(&[
        Step::Req(req),
        Step::Resp(resp),
        Step::Req(b"\x81\x85\x00\x00\x00\x00GET / HTTP/1.1\r\n\r\n"),
        Step::Resp(b"HTTP/1.1 200 OK\r\n\r\n\xff\xfe"),
        Step::Gap(Stream::Request, 10),
        Step::Close,
    ]);
    assert_eq!(
        (o.errors, o.state, o.exchanges.len()),
        (0, ConnState::Upgraded, 1)
    );
    let ex = &o.exchanges[0];
    assert_eq!(
        (ex.status, ex.response_body_bytes, ex.response_end_ns),
        (Some(101), 0, Some(ts(1)))
    );
}

#[test]
fn connect_tunnel() {
    let req =
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01\x00\x05";
    let resp = b"HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x03";
    let o = run_all_splits(&[Step::Req(req), Step::Resp(resp), Step::Req(b"\x17\x03\x03")]);
    assert_eq!(
        (o.errors, o.state, o.exchanges.len()),
        (0, ConnState::Upgraded, 1)
    );
    let ex = &o.exchanges[0];
    assert_eq!(
        (ex.method.as_str(), ex.path.as_str(), ex.status),
        ("CONNECT", "example.com:443", Some(200))
    );
}

#[test]
fn refused_upgrade_keeps_parsing() {
    let reqs = b"GET /a HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
    let resps = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb";
    let o = run_all_splits(&[Step::Req(reqs), Step::Resp(resps), Step::Close]);
    assert_eq!((o.errors, o.state), (0, ConnState::Http));
    let got: Vec<_> = o
        .exchanges
        .iter()
        .map(|e| (e.path.as_str(), &e.response_body[..]))
        .collect();
    assert_eq!(got, [("/a", b"a".as_slice()), ("/b", b"b".as_slice())]);
    // The held-back request keeps the time it arrived.
    assert_eq!(o.exchanges[1].request_start_ns, ts(0));
}

#[test]
fn keep_alive_five_exchanges() {
    let reqs: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("GET /item/{i} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes())
        .collect();
    let resps: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nbody-{i}").into_bytes())
        .collect();
    let steps: Vec<Step<'_>> = reqs
        .iter()
        .zip(&resps)
        .flat_map(|(q, r)| [Step::Req(q), Step::Resp(r)])
        .collect();
    let o = run_all_splits(&steps);
    assert_eq!((o.errors, o.exchanges.len()), (0, 5));
    for (i, ex) in o.exchanges.iter().enumerate() {
        assert_eq!(ex.path, format!("/item/{i}"));
        assert_eq!(ex.response_body.as_ref(), format!("body-{i}").as_bytes());
        assert_eq!(
            (ex.request_start_ns, ex.response_end_ns),
            (ts(2 * i), Some(ts(2 * i + 1)))
        );
    }
}

#[test]
fn close_emits_unanswered_requests() {
    let o = run_all_splits(&[
        Step::Req(b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
        Step::Resp(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        Step::Close,
    ]);
    assert_eq!(o.errors, 0);
    let got: Vec<_> = o
        .exchanges
        .iter()
        .map(|e| {
            (
                e.path.as_str(),
                e.status,
                e.request_truncated,
                e.request_body_bytes,
                e.request_end_ns,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/a", Some(200), false, 0, Some(ts(0))),
            ("/b", None, true, 3, Some(ts(2)))
        ]
    );
}

#[test]
fn leading_empty_lines_are_ignored() {
    let o = run_all_splits(&[
        Step::Req(b"\r\nGET / HTTP/1.1\r\n\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
        Step::Resp(b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!((o.errors, o.exchanges.len()), (0, 2));
    assert_eq!(o.exchanges[0].request_header_bytes, 18);
}

#[test]
fn refused_connect_parses_held_requests() {
    let o = run_all_splits(&[
        Step::Req(b"CONNECT a.example:443 HTTP/1.1\r\n\r\n"),
        Step::Req(b"GET /x HTTP/1.1\r\n\r\n"),
        Step::Resp(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"),
        Step::Resp(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!((o.errors, o.state), (0, ConnState::Http));
    let got: Vec<_> = o
        .exchanges
        .iter()
        .map(|e| (e.path.as_str(), e.status, e.request_start_ns))
        .collect();
    assert_eq!(
        got,
        [
            ("a.example:443", Some(407), ts(0)),
            ("/x", Some(200), ts(1))
        ]
    );
}
