//! HTTP/2 connections end to end: frames in, exchanges out, whatever the split.

use super::frame::{
    encode, CONTINUATION, DATA, END_HEADERS, END_STREAM, HEADERS, PADDED, PREFACE, RST_STREAM,
    SETTINGS,
};
use crate::http::{
    BodyInterest, CallKind, ConnState, ExchangeSlot, HttpConnection, HttpLimits, HttpVersion,
    Phase, Stream,
};

/// A field as a literal without indexing, new name, no Huffman (RFC 7541 §6.2.2).
fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0);
    for s in [name, value] {
        assert!(s.len() < 127);
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
}

/// A field with incremental indexing (§6.2.1), new name: enters the dynamic table.
fn indexed_literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0x40);
    for s in [name, value] {
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
}

fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in fields {
        literal(&mut b, n, v);
    }
    b
}

fn request(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut fields = vec![
        (":method", method),
        (":scheme", "https"),
        (":authority", "api.example"),
        (":path", path),
    ];
    fields.extend_from_slice(extra);
    block(&fields)
}

fn response(status: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut fields = vec![(":status", status)];
    fields.extend_from_slice(extra);
    block(&fields)
}

/// Client and server byte streams of one connection, as (direction, chunk) in time order.
type Script = Vec<(Stream, Vec<u8>)>;

fn run_chunks(script: &[(Stream, Vec<u8>)]) -> (Vec<ExchangeSlot>, HttpConnection) {
    let mut conn = HttpConnection::new(HttpLimits::default());
    let mut out = Vec::new();
    for (i, (stream, bytes)) in script.iter().enumerate() {
        conn.feed(*stream, bytes, i as u64 + 1, &mut out);
    }
    conn.close(1000, &mut out);
    (out, conn)
}

fn multiplexed() -> Script {
    let mut client = PREFACE.to_vec();
    client.extend(encode(SETTINGS, 0, 0, &[0, 4, 0, 0, 0xff, 0xff]));
    client.extend(encode(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request("GET", "/a/b?x=1", &[("user-agent", "t")]),
    ));
    client.extend(encode(
        HEADERS,
        END_HEADERS,
        3,
        &request("POST", "/upload", &[("content-length", "5000")]),
    ));
    client.extend(encode(DATA, 0, 3, &[b'a'; 3000]));
    let mut padded = vec![4u8];
    padded.extend([b'b'; 2000]);
    padded.extend([0u8; 4]);
    let client2 = encode(DATA, PADDED | END_STREAM, 3, &padded);
    let mut server = encode(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]);
    server.extend(encode(SETTINGS, 1, 0, &[]));
    server.extend(encode(
        HEADERS,
        END_HEADERS,
        3,
        &response("201", &[("content-type", "application/json")]),
    ));
    server.extend(encode(DATA, END_STREAM, 3, b"{\"ok\":true}"));
    let server2 = encode(HEADERS, END_HEADERS | END_STREAM, 1, &response("404", &[]));
    vec![
        (Stream::Request, client),
        (Stream::Response, server),
        (Stream::Request, client2),
        (Stream::Response, server2),
    ]
}

fn check_multiplexed(out: &[ExchangeSlot]) {
    assert_eq!(out.len(), 2, "{out:#?}");
    let post = &out[0];
    assert_eq!(
        (post.method.as_str(), post.path.as_str(), post.status),
        ("POST", "/upload", Some(201))
    );
    assert_eq!(
        (post.version, post.stream_id),
        (HttpVersion::Http2, Some(3))
    );
    assert_eq!(
        (post.request_body_bytes, post.response_body_bytes),
        (5000, 11)
    );
    assert_eq!(post.request_body.len(), 5000);
    assert_eq!(&post.response_body[..], b"{\"ok\":true}");
    assert!(!post.request_truncated && !post.response_truncated && !post.incomplete);
    assert!(post.anomalies.is_empty(), "{:?}", post.anomalies);
    assert_eq!(post.host.as_deref(), Some("api.example"));
    let get = &out[1];
    assert_eq!(
        (get.method.as_str(), get.path.as_str(), get.query.as_deref()),
        ("GET", "/a/b", Some("x=1"))
    );
    assert_eq!(
        (get.status, get.stream_id, get.response_body_bytes),
        (Some(404), Some(1), 0)
    );
    assert_eq!(
        get.request_headers,
        [("user-agent".to_owned(), "t".to_owned())]
    );
    assert!(get.request_header_bytes > 0 && get.response_header_bytes > 0);
    assert!(get.response_start_ns.is_some() && get.response_end_ns.is_some());
}

#[test]
fn multiplexed_streams_become_exchanges() {
    let (out, conn) = run_chunks(&multiplexed());
    check_multiplexed(&out);
    assert_eq!((conn.state(), conn.parse_errors()), (ConnState::Http, 0));
    assert_eq!(
        conn.buffered_bytes(),
        conn.buffered_bytes()
            .min(HttpLimits::default().max_buffered_bytes())
    );
}

#[test]
fn same_exchanges_whatever_the_split() {
    let script = multiplexed();
    for (i, (stream, bytes)) in script.iter().enumerate() {
        for cut in (0..=bytes.len()).step_by(7) {
            let mut split = script.clone();
            split.splice(
                i..=i,
                [
                    (*stream, bytes[..cut].to_vec()),
                    (*stream, bytes[cut..].to_vec()),
                ],
            );
            split.retain(|(_, b)| !b.is_empty());
            let (out, conn) = run_chunks(&split);
            check_multiplexed(&out);
            assert_eq!(conn.parse_errors(), 0);
        }
    }
    let bytewise: Script = script
        .iter()
        .flat_map(|(s, b)| b.iter().map(|&x| (*s, vec![x])).collect::<Vec<_>>())
        .collect();
    check_multiplexed(&run_chunks(&bytewise).0);
}

#[test]
fn server_settings_before_the_preface_are_kept() {
    let mut script = multiplexed();
    let server_settings = encode(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]);
    script.insert(0, (Stream::Response, server_settings));
    let (out, conn) = run_chunks(&script);
    check_multiplexed(&out);
    assert_eq!(conn.parse_errors(), 0);
}

#[test]
fn continuation_and_trailers_make_one_grpc_call() {
    let req = request(
        "POST",
        "/helloworld.Greeter/SayHello",
        &[("content-type", "application/grpc"), ("te", "trailers")],
    );
    let mut client = PREFACE.to_vec();
    client.extend(encode(HEADERS, 0, 1, &req[..10]));
    client.extend(encode(CONTINUATION, 0, 1, &req[10..20]));
    client.extend(encode(CONTINUATION, END_HEADERS, 1, &req[20..]));
    let msg = |payload: &[u8], flag: u8| {
        let mut m = vec![flag];
        m.extend((payload.len() as u32).to_be_bytes());
        m.extend_from_slice(payload);
        m
    };
    let mut body = msg(b"hello", 0);
    body.extend(msg(b"again", 1));
    client.extend(encode(DATA, END_STREAM, 1, &body));
    let mut server = encode(
        HEADERS,
        END_HEADERS,
        1,
        &response("200", &[("content-type", "application/grpc")]),
    );
    for i in 0..3u8 {
        server.extend(encode(DATA, 0, 1, &msg(&[i; 40], 0)));
    }
    server.extend(encode(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &block(&[("grpc-status", "5"), ("grpc-message", "not found")]),
    ));
    let (out, conn) = run_chunks(&[(Stream::Request, client), (Stream::Response, server)]);
    assert_eq!((out.len(), conn.parse_errors()), (1, 0));
    let ex = &out[0];
    let call = ex.grpc.as_ref().expect("a gRPC call");
    assert_eq!(
        (call.service.as_str(), call.method.as_str()),
        ("helloworld.Greeter", "SayHello")
    );
    assert_eq!(
        (
            call.status,
            call.messages_in,
            call.messages_out,
            call.compressed
        ),
        (Some(5), 2, 3, 1)
    );
    assert_eq!(call.message.as_deref(), Some("not found"));
    assert_eq!(call.kind(), CallKind::Bidi);
    assert_eq!(ex.response_trailers.len(), 2);
    assert_eq!((ex.status, ex.response_body_bytes), (Some(200), 135));
}

#[test]
fn sse_over_h2_counts_events() {
    let mut client = PREFACE.to_vec();
    client.extend(encode(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request("GET", "/events", &[]),
    ));
    let mut script = vec![(Stream::Request, client)];
    script.push((
        Stream::Response,
        encode(
            HEADERS,
            END_HEADERS,
            1,
            &response("200", &[("content-type", "text/event-stream")]),
        ),
    ));
    for chunk in [
        &b": hi\n\ndata: 1\n"[..],
        b"\ndata: 2\ndata: 2b\n\n",
        b"event: x\n\n",
    ] {
        script.push((Stream::Response, encode(DATA, 0, 1, chunk)));
    }
    script.push((
        Stream::Response,
        encode(DATA, END_STREAM, 1, b"data: 3\n\n"),
    ));
    let (out, _) = run_chunks(&script);
    let sse = out[0].sse.expect("an event stream");
    // Request at t=1, headers at 2; the first event completes in the chunk at t=4.
    assert_eq!((sse.events, sse.first_event_ns), (3, Some(4)));
}

#[test]
fn reset_and_unfinished_streams_are_reported() {
    let mut client = PREFACE.to_vec();
    client.extend(encode(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request("GET", "/slow", &[]),
    ));
    client.extend(encode(
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &request("GET", "/never", &[]),
    ));
    client.extend(encode(RST_STREAM, 0, 1, &[0, 0, 0, 8]));
    let (out, _) = run_chunks(&[(Stream::Request, client)]);
    assert_eq!(out.len(), 2);
    assert_eq!(
        (
            out[0].path.as_str(),
            out[0].status,
            out[0].request_truncated
        ),
        ("/slow", None, false)
    );
    assert_eq!((out[1].path.as_str(), out[1].status), ("/never", None));
}

#[test]
fn h2c_upgrade_continues_as_stream_one() {
    let up = b"GET /up HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n".to_vec();
    let mut server =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    server.extend(encode(SETTINGS, 0, 0, &[]));
    server.extend(encode(HEADERS, END_HEADERS, 1, &response("200", &[])));
    server.extend(encode(DATA, END_STREAM, 1, b"hello"));
    let mut client = PREFACE.to_vec();
    client.extend(encode(SETTINGS, 0, 0, &[]));
    client.extend(encode(
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &request("GET", "/next", &[]),
    ));
    let server2 = encode(HEADERS, END_HEADERS | END_STREAM, 3, &response("204", &[]));
    let (out, conn) = run_chunks(&[
        (Stream::Request, up),
        (Stream::Response, server),
        (Stream::Request, client),
        (Stream::Response, server2),
    ]);
    assert_eq!(conn.parse_errors(), 0);
    let got: Vec<_> = out
        .iter()
        .map(|e| {
            (
                e.path.as_str(),
                e.status,
                e.stream_id,
                e.response_body_bytes,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/up", Some(200), Some(1), 5),
            ("/next", Some(204), Some(3), 0)
        ]
    );
    assert!(out.iter().all(|e| e.version == HttpVersion::Http2));
}

#[test]
fn hostile_framing_ends_parsing_with_bounded_memory() {
    let limits = HttpLimits::default();
    // CONTINUATION without HEADERS.
    let mut c = PREFACE.to_vec();
    c.extend(encode(CONTINUATION, END_HEADERS, 1, b"x"));
    let (_, conn) = run_chunks(&[(Stream::Request, c)]);
    assert_eq!(conn.state(), ConnState::Failed);
    // Endless CONTINUATION: stops at the header bound.
    let mut conn = HttpConnection::new(limits);
    let mut out = Vec::new();
    let mut c = PREFACE.to_vec();
    c.extend(encode(HEADERS, 0, 1, &request("GET", "/", &[])));
    conn.feed(Stream::Request, &c, 1, &mut out);
    for _ in 0..1000 {
        conn.feed(
            Stream::Request,
            &encode(CONTINUATION, 0, 1, &[0x20; 1000]),
            2,
            &mut out,
        );
        assert!(conn.buffered_bytes() <= limits.max_header_bytes + 16_384);
    }
    assert_eq!(conn.state(), ConnState::Failed);
    // Many streams that never end: the oldest are emitted to stay within the bound.
    let mut conn = HttpConnection::new(limits);
    let mut out = Vec::new();
    conn.feed(Stream::Request, PREFACE, 1, &mut out);
    for id in (1..2000u32).step_by(2) {
        let f = encode(HEADERS, END_HEADERS, id, &request("POST", "/s", &[]));
        conn.feed(Stream::Request, &f, 2, &mut out);
        conn.feed(
            Stream::Request,
            &encode(DATA, 0, id, &[1; 16_000]),
            3,
            &mut out,
        );
        assert!(
            conn.buffered_bytes() <= limits.max_buffered_bytes(),
            "{}",
            conn.buffered_bytes()
        );
    }
    assert_eq!(out.len(), 1000 - limits.max_pipelined * 4);
    assert!(out.iter().all(|e| e.request_truncated));
    // Padding longer than the frame: counted, parsing goes on.
    let mut c = PREFACE.to_vec();
    c.extend(encode(HEADERS, END_HEADERS, 1, &request("POST", "/p", &[])));
    c.extend(encode(DATA, PADDED | END_STREAM, 1, &[200, 1, 2]));
    c.extend(encode(
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &request("GET", "/q", &[]),
    ));
    let (out, conn) = run_chunks(&[(Stream::Request, c)]);
    assert_eq!(conn.parse_errors(), 1);
    assert_eq!(out.len(), 2);
}

#[test]
fn anomalies_are_kept_on_the_exchange() {
    let mut c = PREFACE.to_vec();
    let bad = block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        ("transfer-encoding", "chunked"),
        ("x", "a\r\nb"),
        (":authority", "late"),
    ]);
    c.extend(encode(HEADERS, END_HEADERS | END_STREAM, 1, &bad));
    let s = encode(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &response("200", &[("content-length", "10")]),
    );
    let (out, _) = run_chunks(&[(Stream::Request, c), (Stream::Response, s)]);
    let names: Vec<_> = out[0].anomalies.iter().map(|a| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "connection_specific",
            "invalid_value",
            "pseudo_after_regular",
            "content_length_mismatch"
        ]
    );
}

#[test]
fn joined_mid_connection_never_guesses() {
    // The encoder put `x-trace` in its dynamic table before capture joined; later requests
    // refer to it by index 62. Static and literal fields are still recovered.
    let mut first = request("GET", "/one", &[]);
    indexed_literal(&mut first, "x-trace", "abc");
    let mut later = request("GET", "/two", &[]);
    later.push(0x80 | 62);
    let mut conn = HttpConnection::joined(HttpLimits::default());
    let mut out = Vec::new();
    conn.feed(
        Stream::Request,
        &encode(HEADERS, END_HEADERS | END_STREAM, 5, &later),
        1,
        &mut out,
    );
    conn.feed(
        Stream::Response,
        &encode(HEADERS, END_HEADERS | END_STREAM, 5, &response("200", &[])),
        2,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].path.as_str(), out[0].status, out[0].incomplete),
        ("/two", Some(200), true)
    );
    assert_eq!(conn.headers_unresolved(), 1);
    // From a frame boundary on, entries inserted after joining resolve exactly.
    conn.feed(
        Stream::Request,
        &encode(HEADERS, END_HEADERS | END_STREAM, 7, &first),
        3,
        &mut out,
    );
    let mut third = request("GET", "/three", &[]);
    third.push(0x80 | 62);
    conn.feed(
        Stream::Request,
        &encode(HEADERS, END_HEADERS | END_STREAM, 9, &third),
        4,
        &mut out,
    );
    conn.close(5, &mut out);
    let three = out.iter().find(|e| e.path == "/three").expect("stream 9");
    assert!(!three.incomplete);
    assert_eq!(
        three.request_headers,
        [("x-trace".to_owned(), "abc".to_owned())]
    );
}

#[test]
fn body_sent_after_the_servers_early_answer_is_counted() {
    let mut client = PREFACE.to_vec();
    client.extend(encode(
        HEADERS,
        END_HEADERS,
        1,
        &request("POST", "/upload", &[]),
    ));
    let mut server = encode(HEADERS, END_HEADERS | END_STREAM, 1, &response("201", &[]));
    server.extend(encode(RST_STREAM, 0, 1, &[0, 0, 0, 0]));
    let rest = encode(DATA, END_STREAM, 1, &[7; 5000]);
    let (out, _) = run_chunks(&[
        (Stream::Request, client.clone()),
        (Stream::Response, server.clone()),
        (Stream::Request, rest),
    ]);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (
            out[0].status,
            out[0].request_body_bytes,
            out[0].request_truncated
        ),
        (Some(201), 5000, false)
    );
    // The client gives up after 1000 bytes and opens its next stream: the first is done.
    let mut part = encode(DATA, 0, 1, &[7; 1000]);
    part.extend(encode(
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &request("GET", "/next", &[]),
    ));
    let (out, _) = run_chunks(&[
        (Stream::Request, client),
        (Stream::Response, server),
        (Stream::Request, part),
    ]);
    assert_eq!(out.len(), 2);
    assert_eq!(
        (
            out[0].path.as_str(),
            out[0].request_body_bytes,
            out[0].request_truncated
        ),
        ("/upload", 1000, true)
    );
}

#[test]
fn a_body_of_its_declared_length_is_whole_without_end_stream() {
    let mut client = PREFACE.to_vec();
    client.extend(encode(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request("GET", "/nope", &[]),
    ));
    let mut server = encode(
        HEADERS,
        END_HEADERS,
        1,
        &response("404", &[("content-length", "10")]),
    );
    server.extend(encode(DATA, 0, 1, b"not found\n"));
    let (out, _) = run_chunks(&[(Stream::Request, client), (Stream::Response, server)]);
    assert_eq!(
        (
            out[0].status,
            out[0].response_truncated,
            out[0].response_end_ns
        ),
        (Some(404), false, Some(2))
    );
}

#[test]
fn lost_frames_truncate_only_streams_that_cannot_prove_their_length() {
    let mut client = PREFACE.to_vec();
    client.extend(encode(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request("GET", "/big", &[]),
    ));
    client.extend(encode(
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &request("GET", "/sized", &[]),
    ));
    client.extend(encode(
        HEADERS,
        END_HEADERS | END_STREAM,
        5,
        &request("GET", "/unsized", &[]),
    ));
    let mut server = encode(HEADERS, END_HEADERS, 1, &response("200", &[]));
    server.extend(encode(
        HEADERS,
        END_HEADERS,
        3,
        &response("200", &[("content-length", "4")]),
    ));
    server.extend(encode(HEADERS, END_HEADERS, 5, &response("200", &[])));
    server.extend(encode(DATA, 0, 1, &[1; 100]));
    let mut conn = HttpConnection::new(HttpLimits::default());
    let mut out = Vec::new();
    conn.feed(Stream::Request, &client, 1, &mut out);
    conn.feed(Stream::Response, &server[..server.len() - 50], 2, &mut out);
    // The rest of stream 1's frame and frames after it are lost: framing is resynchronised.
    conn.gap(Stream::Response, 50 + 5000, 3, &mut out);
    let mut after = encode(DATA, END_STREAM, 3, b"four");
    after.extend(encode(DATA, END_STREAM, 5, b"five!"));
    after.extend(encode(DATA, END_STREAM, 1, b"end"));
    conn.feed(Stream::Response, &after, 4, &mut out);
    let got: Vec<_> = out
        .iter()
        .map(|e| (e.path.as_str(), e.response_body_bytes, e.response_truncated))
        .collect();
    assert_eq!(
        got,
        [
            ("/sized", 4, false),
            ("/unsized", 5, true),
            ("/big", 103, true)
        ]
    );
}

#[test]
fn pushed_streams_are_exchanges_too() {
    use super::frame::PUSH_PROMISE;
    let mut client = PREFACE.to_vec();
    client.extend(encode(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &request("GET", "/page", &[]),
    ));
    let mut promise = vec![0, 0, 0, 2];
    promise.extend(request("GET", "/style.css", &[]));
    let mut server = encode(PUSH_PROMISE, END_HEADERS, 1, &promise);
    server.extend(encode(HEADERS, END_HEADERS, 1, &response("200", &[])));
    server.extend(encode(DATA, END_STREAM, 1, b"<html>"));
    server.extend(encode(
        HEADERS,
        END_HEADERS,
        2,
        &response("200", &[("content-type", "text/css")]),
    ));
    server.extend(encode(DATA, END_STREAM, 2, b"p{}"));
    let (out, conn) = run_chunks(&[(Stream::Request, client), (Stream::Response, server)]);
    assert_eq!(conn.parse_errors(), 0);
    let got: Vec<_> = out
        .iter()
        .map(|e| {
            (
                e.path.as_str(),
                e.stream_id,
                e.status,
                e.response_body_bytes,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/page", Some(1), Some(200), 6),
            ("/style.css", Some(2), Some(200), 3)
        ]
    );
}

#[test]
fn requests_are_handed_out_as_they_end() {
    let script = multiplexed();
    let mut conn = HttpConnection::new(HttpLimits::default());
    conn.notify_requests();
    let mut out = Vec::new();
    // The client's first chunk ends stream 1 (HEADERS with END_STREAM), not stream 3.
    conn.feed(script[0].0, &script[0].1, 1, &mut out);
    let notices: Vec<_> = out.iter().map(|e| (e.phase, e.path.as_str())).collect();
    assert_eq!(notices, [(Phase::Request, "/a/b")]);
    assert!(out[0].status.is_none() && out[0].request_body.is_empty());
    out.clear();
    for (i, (stream, bytes)) in script.iter().enumerate().skip(1) {
        conn.feed(*stream, bytes, i as u64 + 1, &mut out);
    }
    // Stream 3's request ends with the padded DATA (the notice carries the body prefix),
    // before either exchange.
    let seen: Vec<_> = out.iter().map(|e| (e.phase, e.path.as_str())).collect();
    assert_eq!(
        seen,
        [
            (Phase::Request, "/upload"),
            (Phase::Exchange, "/upload"),
            (Phase::Exchange, "/a/b")
        ]
    );
    assert_eq!(out[0].request_body.len(), 5000);
    assert_eq!(out[0].request_end_ns, Some(3));
    assert!(out[1..].iter().all(|e| e.request_noticed));
    check_multiplexed(&out[1..]);
}

/// Request bodies are scanned across DATA frames: a JSON string cut between two frames (and
/// between two reads anywhere) reaches detection whole, with the request notice; gRPC
/// bodies are not scanned.
#[test]
fn request_bodies_are_scanned_across_data_frames() {
    use crate::detect::{inputs::InputLimits, stream::ScanLimits};
    let json = br#"{"q":"1' UNION SELECT password FROM users--"}"#;
    let mut client = PREFACE.to_vec();
    client.extend(encode(SETTINGS, 0, 0, &[0, 4, 0, 0, 0xff, 0xff]));
    client.extend(encode(
        HEADERS,
        END_HEADERS,
        1,
        &request("POST", "/s", &[("content-type", "application/json")]),
    ));
    client.extend(encode(DATA, 0, 1, &json[..20]));
    client.extend(encode(DATA, END_STREAM, 1, &json[20..]));
    client.extend(encode(
        HEADERS,
        END_HEADERS,
        3,
        &request("POST", "/pkg.S/M", &[("content-type", "application/grpc")]),
    ));
    client.extend(encode(DATA, END_STREAM, 3, b"\0\0\0\0\x02hi"));
    // (An empty first read would make the connection look like HTTP/1.)
    for at in 1..client.len() {
        let mut conn = HttpConnection::new(HttpLimits::default());
        conn.notify_requests();
        conn.scan_request_bodies(ScanLimits::of(&InputLimits::default()));
        let mut out = Vec::new();
        conn.feed(Stream::Request, &client[..at], 1, &mut out);
        conn.feed(Stream::Request, &client[at..], 2, &mut out);
        let notices: Vec<_> = out.iter().filter(|e| e.phase == Phase::Request).collect();
        assert_eq!(notices.len(), 2, "cut at {at}");
        let w = notices[0].request_scan.as_ref().expect("scanned");
        let got: Vec<_> = w
            .values
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(got, [("$.q", "1' UNION SELECT password FROM users--")]);
        assert_eq!(w.scanned, json.len() as u64);
        assert!(notices[1].request_scan.is_none());
    }
}

/// Exchanges of `script` with `limits`, each as (request body, response body, the rest).
fn bodies_apart(
    script: &[(Stream, Vec<u8>)],
    limits: HttpLimits,
) -> Vec<(Vec<u8>, Vec<u8>, String)> {
    let mut conn = HttpConnection::new(limits);
    conn.notify_requests();
    let mut out = Vec::new();
    for (i, (stream, bytes)) in script.iter().enumerate() {
        conn.feed(*stream, bytes, i as u64 + 1, &mut out);
    }
    conn.close(1000, &mut out);
    out.into_iter()
        .map(|mut ex| {
            let request = std::mem::take(&mut ex.request_body).to_vec();
            let response = std::mem::take(&mut ex.response_body).to_vec();
            (request, response, format!("{ex:?}"))
        })
        .collect()
}

#[test]
fn bodies_kept_as_far_as_read_everything_else_identical() {
    let mut script = multiplexed();
    // A JSON answer longer than a small capture: its tap keeps what the prefix misses.
    let mut client = encode(
        HEADERS,
        END_HEADERS,
        5,
        &request("POST", "/v1/chat/completions", &[]),
    );
    client.extend(encode(DATA, END_STREAM, 5, br#"{"model":"m"}"#));
    script.push((Stream::Request, client));
    let mut server = encode(
        HEADERS,
        END_HEADERS,
        5,
        &response("200", &[("content-type", "application/json")]),
    );
    server.extend(encode(DATA, 0, 5, br#"{"id":"x","#));
    server.extend(encode(
        DATA,
        END_STREAM,
        5,
        br#""usage":{"total_tokens":7}}"#,
    ));
    script.push((Stream::Response, server));
    for capture in [0, 5, 4096, 64 << 10] {
        let limits = HttpLimits {
            max_body_capture_bytes: capture,
            ..HttpLimits::default()
        };
        let all = bodies_apart(&script, limits);
        // Each request's notice and its exchange.
        assert_eq!(all.len(), 6);
        for keep in [0, 3, 4000, usize::MAX] {
            let only = BodyInterest {
                requests: 0,
                post_requests: keep,
                responses: keep,
            };
            let got = bodies_apart(
                &script,
                HttpLimits {
                    bodies: only,
                    ..limits
                },
            );
            assert_eq!(got.len(), all.len());
            for ((req, resp, rest), (all_req, all_resp, all_rest)) in got.iter().zip(&all) {
                assert_eq!(rest, all_rest, "capture {capture} keep {keep}");
                assert_eq!(req[..], all_req[..all_req.len().min(keep)]);
                assert_eq!(resp[..], all_resp[..all_resp.len().min(keep)]);
            }
        }
    }
}
