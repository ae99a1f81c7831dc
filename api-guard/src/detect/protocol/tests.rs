use super::*;
use crate::detect::offline::OwnedRequest;
use crate::detect::Kind;
use crate::http::{Headers, HttpVersion};

fn h(pairs: &[(&str, &str)]) -> Headers {
    pairs.into()
}

fn req<'a>(
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a Headers,
    body: &'a [u8],
) -> Request<'a> {
    Request {
        method,
        path,
        query,
        version: crate::http::HttpVersion::Http11,
        anomalies: &[],
        request_line_invalid: false,
        headers,
        body,
        body_len: body.len() as u64,
        head_len: 200,
        authority: None,
        peer: None,
        status: None,
        fields: None,
    }
}

fn run(r: &Request<'_>) -> Vec<(&'static str, String)> {
    let d = ProtocolDetector::new(&ProtocolConfig::default()).unwrap();
    let mut out = Vec::new();
    d.inspect_request(r, &mut out);
    assert!(out.iter().all(|f| f.kind == Kind::Protocol));
    out.into_iter().map(|f| (f.rule_id, f.location)).collect()
}

fn ids(r: &Request<'_>) -> Vec<&'static str> {
    run(r).into_iter().map(|(id, _)| id).collect()
}

fn raw(bytes: &[u8]) -> Vec<&'static str> {
    let o = OwnedRequest::from_raw(bytes);
    ids(&o.view(None, None))
}

const HOST: (&str, &str) = ("Host", "api.example.com");

#[test]
fn ordinary_api_requests_are_clean() {
    let body = br#"{"name":"O'Brien","note":"100% cotton\nline two: ok"}"#;
    let len = body.len().to_string();
    let headers = h(&[
        HOST,
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Length", &len),
        ("Accept", "application/json, text/plain;q=0.9, */*;q=0.1"),
        ("Connection", "keep-alive"),
        ("Cookie", "sid=abc; theme=dark"),
        ("Range", "bytes=0-1023"),
        ("Referer", "https://app.example.com/x?y=%E2%82%AC"),
    ]);
    let r = req(
        "POST",
        "/api/v1/users/42",
        Some("q=caf%C3%A9&page=2&x=caf%E9"),
        &headers,
        body,
    );
    assert_eq!(run(&r), []);
    let headers = h(&[HOST, ("Content-Type", "application/x-www-form-urlencoded")]);
    let r = req("PUT", "/a", None, &headers, b"a=b%20c&d=e+f&_method=put");
    assert_eq!(run(&r), []);
    let headers = h(&[HOST, ("Content-Type", "multipart/form-data; boundary=XX")]);
    let body = b"--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"r&eacute;sum&eacute;.pdf\"\r\n\r\nx\r\n--XX--\r\n";
    assert_eq!(run(&req("POST", "/up", None, &headers, body)), []);
}

#[test]
fn content_length_and_transfer_encoding() {
    let hs = h(&[
        HOST,
        ("Content-Type", "text/plain"),
        ("Content-Length", "3"),
        ("Transfer-Encoding", "chunked"),
    ]);
    assert_eq!(
        run(&req("POST", "/", None, &hs, b"abc")),
        [("protocol.cl_te", "header:transfer-encoding".into())]
    );
    let hs = h(&[
        HOST,
        ("Content-Length", "3"),
        ("Content-Length", "3"),
        ("Content-Type", "a/b"),
    ]);
    assert_eq!(
        ids(&req("POST", "/", None, &hs, b"abc")),
        ["protocol.duplicate_cl"]
    );
    for bad in ["-1", "3a", "+3", "3, 3", "99999999999999999999", ""] {
        let hs = h(&[HOST, ("Content-Length", bad)]);
        assert_eq!(
            ids(&req("POST", "/", None, &hs, b"")),
            ["protocol.invalid_cl"],
            "{bad}"
        );
    }
    for bad in ["chunked, identity", "xchunked", "chunked\t", "identity"] {
        let hs = h(&[HOST, ("Transfer-Encoding", bad)]);
        assert!(
            ids(&req("POST", "/", None, &hs, b"")).contains(&"protocol.te_obfuscated"),
            "{bad:?}"
        );
    }
    let hs = h(&[
        HOST,
        ("Transfer-Encoding", "chunked"),
        ("Transfer-Encoding", "chunked"),
    ]);
    assert_eq!(
        ids(&req("POST", "/", None, &hs, b"")),
        ["protocol.te_obfuscated"]
    );
    let got = raw(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n");
    assert_eq!(got, ["protocol.te_obfuscated"]);
    let got = raw(b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_eq!(got, ["protocol.te_http10"]);
    let hs = h(&[HOST, ("Transfer-Encoding", "Chunked")]);
    assert_eq!(ids(&req("POST", "/", None, &hs, b"")), Vec::<&str>::new());
}

#[test]
fn header_syntax() {
    let got = raw(b"GET / HTTP/1.1\r\nHost: a\r\nbad header line\r\n\r\n");
    assert_eq!(got, ["protocol.invalid_header_name"]);
    let got = raw(b"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n");
    assert_eq!(got, ["protocol.invalid_header_name"]);
    let hs = h(&[HOST, ("X-A", "a\u{1}b")]);
    assert_eq!(
        run(&req("GET", "/", None, &hs, b"")),
        [("protocol.invalid_header_value", "header:x-a".into())]
    );
    let hs = h(&[HOST, ("X-A", "tab\tis fine")]);
    assert_eq!(ids(&req("GET", "/", None, &hs, b"")), Vec::<&str>::new());
    let hs = h(&[HOST, ("Referer", "anything%00")]);
    assert_eq!(
        ids(&req("GET", "/", None, &hs, b"")),
        ["protocol.null_byte"]
    );
}

#[test]
fn header_injection_and_splitting() {
    let hs = h(&[HOST]);
    let cases: &[(&str, &str)] = &[
        (
            "lang=foo%0d%0aContent-Length:%200%0d%0a%0d%0aHTTP/1.1%20200%20OK",
            "query:lang",
        ),
        ("foo=%0d%0arefresh:%20www.bar.com", "query:foo"),
        ("a=1&%0d%0aRemote-addr%0d%0d%0d:%20foo.bar.com=Y", "query"),
        ("parameter%0d%0a=test", "query"),
        (
            "arg1=GET%20http%3A%2F%2Fwww.foo.bar%20HTTP%2F1.2",
            "query:arg1",
        ),
    ];
    for (q, loc) in cases {
        assert_eq!(
            run(&req("GET", "/", Some(q), &hs, b"")),
            [("protocol.header_injection", loc.to_string())],
            "{q}"
        );
    }
    assert_eq!(
        run(&req("GET", "/foo%0abar", None, &hs, b"")),
        [("protocol.header_injection", "path".into())]
    );
    let hs = h(&[HOST, ("Content-Type", "application/x-www-form-urlencoded")]);
    let r = req("POST", "/", None, &hs, b"var=aaa%0aGET+/+HTTP/1.1");
    assert_eq!(run(&r), [("protocol.header_injection", "form:var".into())]);
    let hs = h(&[HOST, ("Content-Type", "application/xml")]);
    let r = req(
        "POST",
        "/",
        None,
        &hs,
        b"<a p=\"x&#13;&#10;Content-Length: 0&#13;&#10;\"/>",
    );
    assert_eq!(ids(&r), ["protocol.header_injection"]);
    let hs = h(&[HOST, ("X-Some", "data%0dInjectedHeader: code")]);
    assert_eq!(
        ids(&req("GET", "/", None, &hs, b"")),
        ["protocol.header_injection"]
    );
    let hs = h(&[HOST, ("Cookie", "a=b%0d%0a%0d%0a<html>")]);
    assert_eq!(
        ids(&req("GET", "/", None, &hs, b"")),
        ["protocol.header_injection"]
    );
    // Line breaks in text are not splitting; a header name with no value is not a header.
    let hs = h(&[HOST]);
    for q in [
        "a=x%0Anext",
        "a=%0A%0Dlocation:%0A%0D",
        "a=Go+to+store.%0AAt+noon",
    ] {
        assert_eq!(
            ids(&req("GET", "/", Some(q), &hs, b"")),
            Vec::<&str>::new(),
            "{q}"
        );
    }
}

#[test]
fn header_injection_benign_near_misses() {
    let hs = h(&[HOST, ("Content-Type", "application/x-www-form-urlencoded")]);
    for body in [
        &b"var=aaa%0d%0aGet+/foo%0d"[..],
        b"var=get it%0a",
        b"m=see HTTP/1.1 spec",
    ] {
        assert_eq!(ids(&req("POST", "/", None, &hs, body)), Vec::<&str>::new());
    }
    // JSON text is not scanned for header lines: prose and code snippets are legitimate there.
    let hs = h(&[HOST, ("Content-Type", "application/json")]);
    let r = req(
        "POST",
        "/",
        None,
        &hs,
        br#"{"p":"GET / HTTP/1.1\r\nHost: x"}"#,
    );
    assert_eq!(ids(&r), Vec::<&str>::new());
}

#[test]
fn encodings() {
    let hs = h(&[HOST]);
    for q in [
        "p=%c0%af",
        "p=%c0",
        "p=%F5%80%BF%BF",
        "p=%E2%A3",
        "p=%1G",
        "p=%uff0F",
        "p=abc%7%",
        "p=%w20",
    ] {
        assert_eq!(
            run(&req("GET", "/", Some(q), &hs, b"")),
            [("protocol.encoding_abuse", "query".into())],
            "{q}"
        );
    }
    assert_eq!(
        ids(&req("GET", "/", Some("p=%2527"), &hs, b"")),
        ["protocol.double_encoding"]
    );
    assert_eq!(
        ids(&req("GET", "/", Some("p=%25%37%33"), &hs, b"")),
        ["protocol.double_encoding"]
    );
    let ck = h(&[HOST, ("Cookie", "hi%13=bye; pct=50%")]);
    assert_eq!(
        run(&req("GET", "/", None, &ck, b"")),
        [("protocol.control_char", "header:cookie".into())]
    );
    assert_eq!(
        ids(&req("GET", "/", Some("t%00=1"), &hs, b"")),
        ["protocol.null_byte"]
    );
    assert_eq!(
        ids(&req("GET", "/", Some("t=1%03"), &hs, b"")),
        ["protocol.control_char"]
    );
    // Latin-1 bytes and valid UTF-8 pass.
    for q in [
        "p=(24%)",
        "p=50%off",
        "p=100%",
        "p=%FF",
        "t%FD=1",
        "p=%C2%A3",
        "p=%F0%9F%98%80",
        "p=%E9t%E9",
    ] {
        assert_eq!(
            ids(&req("GET", "/", Some(q), &hs, b"")),
            Vec::<&str>::new(),
            "{q}"
        );
    }
    let hs = h(&[HOST, ("Content-Type", "application/x-www-form-urlencoded")]);
    assert_eq!(
        run(&req("POST", "/", None, &hs, b"x=new %w20$")),
        [("protocol.encoding_abuse", "body".into())]
    );
}

#[test]
fn host_method_range_connection() {
    assert_eq!(
        ids(&req("GET", "/", None, <&Headers>::default(), b"")),
        ["protocol.host_missing"]
    );
    let hs = h(&[HOST, HOST]);
    assert_eq!(
        ids(&req("GET", "/", None, &hs, b"")),
        ["protocol.multiple_host"]
    );
    let flagging = ProtocolDetector::new(&ProtocolConfig {
        flag_ip_host: true,
        ..Default::default()
    })
    .unwrap();
    for ip in ["127.0.0.1", "1.2.3.4:80", "[::1]", "[fe80::1]:80"] {
        let hs = h(&[("Host", ip)]);
        // Off by default (a local client naming a local address is clean either way).
        let local = Request {
            peer: Some("127.0.0.1".parse().unwrap()),
            ..req("GET", "/", None, &hs, b"")
        };
        assert!(run(&local).is_empty());
        let mut out = Vec::new();
        flagging.inspect_request(&local, &mut out);
        let got: Vec<_> = out
            .iter()
            .map(|f| (f.rule_id, f.location.clone()))
            .collect();
        assert_eq!(got, [("protocol.host_ip", "header:host".to_string())]);
    }
    let hs = h(&[("Host", "deadbeef.de:8080")]);
    assert_eq!(ids(&req("GET", "/", None, &hs, b"")), Vec::<&str>::new());
    let hs = h(&[("Host", "a.com/evil")]);
    assert_eq!(
        ids(&req("GET", "/", None, &hs, b"")),
        ["protocol.host_invalid"]
    );
    let hs = h(&[HOST]);
    assert_eq!(
        run(&req("REALLYLONGUNREALMETHOD", "/", None, &hs, b"")),
        [("protocol.method_unknown", "method".into())]
    );
    assert_eq!(
        ids(&req("|GET", "/", None, &hs, b"")),
        ["protocol.method_unknown"]
    );
    assert_eq!(
        ids(&req("PROPFIND", "/", None, &hs, b"")),
        Vec::<&str>::new()
    );
    for bad in [
        "bytes=1-10,11-20,21-30,31-40,41-50,51-60",
        "bytes=5-0",
        "bytes=-10,-",
    ] {
        let hs = h(&[HOST, ("Range", bad)]);
        assert_eq!(
            ids(&req("GET", "/", None, &hs, b"")),
            ["protocol.invalid_range"],
            "{bad}"
        );
    }
    for ok in [
        "bytes=1-10, 11-20, 21-30, 31-40, 41-50",
        "0-1",
        "test",
        "bytes=500-",
    ] {
        let hs = h(&[HOST, ("Range", ok)]);
        assert_eq!(
            ids(&req("GET", "/", None, &hs, b"")),
            Vec::<&str>::new(),
            "{ok}"
        );
    }
    let hs = h(&[HOST, ("Request-Range", "bytes=0-1")]);
    assert_eq!(
        ids(&req("GET", "/", None, &hs, b"")),
        ["protocol.request_range"]
    );
    for bad in ["keep-alive,keep-alive", "keep-alive, close", "close,close"] {
        let hs = h(&[HOST, ("Connection", bad)]);
        assert_eq!(
            ids(&req("GET", "/", None, &hs, b"")),
            ["protocol.connection_conflict"]
        );
    }
    let hs = h(&[HOST, ("Content-Range", "bytes 0-9/20")]);
    assert_eq!(
        ids(&req("PUT", "/", None, &hs, b"")),
        ["protocol.get_with_body"; 0]
    );
    let hs = h(&[HOST, ("Proxy", "http://evil")]);
    assert_eq!(
        ids(&req("GET", "/", None, &hs, b"")),
        ["protocol.restricted_header"]
    );
    let hs = h(&[HOST, ("Cookie", "$Version=1; a=b")]);
    assert_eq!(
        ids(&req("GET", "/", None, &hs, b"")),
        ["protocol.cookie_v1"]
    );
}

#[test]
fn bodies_and_sizes() {
    let hs = h(&[HOST, ("Content-Type", "application/x-www-form-urlencoded")]);
    assert_eq!(
        run(&req("GET", "/", None, &hs, b"hi=test")),
        [("protocol.get_with_body", "body".into())]
    );
    let hs = h(&[
        HOST,
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", "0"),
    ]);
    assert_eq!(ids(&req("GET", "/", None, &hs, b"")), Vec::<&str>::new());
    let got = raw(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_eq!(got, ["protocol.get_with_body"]);
    let hs = h(&[HOST]);
    let mut r = req("POST", "/", None, &hs, b"");
    r.head_len = 20_000;
    r.body_len = 11 << 20;
    assert_eq!(
        ids(&r),
        ["protocol.oversized_headers", "protocol.oversized_body"]
    );
    let mut many: Headers = (0..101).map(|i| (format!("X-{i}"), "v")).collect();
    many.push(HOST.0, HOST.1);
    assert_eq!(
        ids(&req("GET", "/", None, &many, b"")),
        ["protocol.oversized_headers"]
    );
    let q = "a=1&".repeat(256);
    assert_eq!(
        ids(&req("GET", "/", Some(&q), &hs, b"")),
        ["protocol.too_many_args"]
    );
    let q = "n".repeat(101);
    assert_eq!(
        ids(&req("GET", "/", Some(&q), &hs, b"")),
        ["protocol.arg_name_too_long"]
    );
}

#[test]
fn content_types() {
    let cases = [
        (
            "%{(#nike='multipart/form-data')}",
            "protocol.content_type_invalid",
        ),
        (
            "text/plain; charset=\"UTF-8\"; garbage",
            "protocol.content_type_invalid",
        ),
        (
            "multipart/form-data; boundary=  x",
            "protocol.content_type_invalid",
        ),
        ("multipart/; boundary=0000", "protocol.content_type_invalid"),
        ("multipart/related", "protocol.content_type_invalid"),
        ("multipart/form-data", "protocol.content_type_invalid"),
        (
            "multipart/foo; boundary=0000",
            "protocol.content_type_confusion",
        ),
        (
            "multipart/form-data-x; boundary=0000",
            "protocol.content_type_confusion",
        ),
        (
            "application/x-www-form-urlencoded; charset=ibm037",
            "protocol.charset",
        ),
        (
            "application/x-www-form-urlencoded; charset=utf-8; charset=utf-7",
            "protocol.charset",
        ),
        (
            "application/x-www-form-urlencoded;boundary=\"application/json\"",
            "protocol.content_type_confusion",
        ),
    ];
    for (ct, rule) in cases {
        let hs = h(&[HOST, ("Content-Type", ct), ("Content-Length", "0")]);
        assert_eq!(
            run(&req("POST", "/", None, &hs, b"")),
            [(rule, "header:content-type".into())],
            "{ct}"
        );
    }
    // Syntactically fine, but not a charset anyone encodes text in.
    let hs = h(&[
        HOST,
        ("Content-Length", "0"),
        ("Content-Type", "text/plain; charset=/gar/bage"),
    ]);
    assert_eq!(ids(&req("POST", "/", None, &hs, b"")), ["protocol.charset"]);
    for ct in [
        "application/*+json",
        "multipart/mixed; boundary= gc0p4Jq0M2Yt,08/jU534c0p?==:test",
        "application/soap+xml; charset=utf-8; action=\"urn:x\"",
        "multipart/related; boundary=abc; type=\"application/json\"",
        "multipart/vnd.example.batch; boundary=abc",
        "Multipart/Form-Data; boundary=abc",
        "text/html; charset='UTF-8'",
    ] {
        let hs = h(&[HOST, ("Content-Length", "0"), ("Content-Type", ct)]);
        assert_eq!(
            ids(&req("POST", "/", None, &hs, b"")),
            Vec::<&str>::new(),
            "{ct}"
        );
    }
    let hs = h(&[HOST, ("Content-Length", "4")]);
    assert_eq!(
        ids(&req("POST", "/", None, &hs, b"test")),
        ["protocol.content_type_missing"]
    );
    let hs = h(&[
        HOST,
        ("Content-Length", "0"),
        ("Content-Type", "a/b"),
        ("Content-Type", "c/d"),
    ]);
    assert_eq!(
        ids(&req("POST", "/", None, &hs, b"")),
        ["protocol.multiple_content_type"]
    );
    let hs = h(&[HOST, ("Accept", "text/html; charset=CP1026")]);
    assert_eq!(
        ids(&req("GET", "/", None, &hs, b"")),
        ["protocol.accept_charset"]
    );
    let hs = h(&[
        HOST,
        ("Content-Length", "0"),
        ("Content-Type", "multipart/form-data; boundary=XX"),
    ]);
    for name in ["fi;le", "&amp;fi;zzz", "1.j\\\\s\\\\p", "te\\\"st"] {
        let body = format!(
            "--XX\nContent-Disposition: form-data; name=\"{name}\"; filename=\"t\"\n\nx\n--XX--\n"
        );
        assert_eq!(
            run(&req("POST", "/", None, &hs, body.as_bytes())),
            [("protocol.multipart_name", "body".into())],
            "{name}"
        );
    }
}

#[test]
fn overrides_and_proxy_targets() {
    let hs = h(&[HOST]);
    assert_eq!(
        run(&req("POST", "/r", Some("id=1&_method=DELETE"), &hs, b"")),
        [("protocol.method_override", "query:_method".into())]
    );
    assert_eq!(
        ids(&req(
            "POST",
            "/r",
            Some("_method=%44%45%4C%45%54%45"),
            &hs,
            b""
        )),
        ["protocol.method_override"]
    );
    for q in [
        "_method=AB",
        "_method=DELETE1",
        "method=DELETE",
        "_method=post",
    ] {
        assert_eq!(
            ids(&req("POST", "/r", Some(q), &hs, b"")),
            Vec::<&str>::new(),
            "{q}"
        );
    }
    let hs = h(&[HOST, ("X-HTTP-Method-Override", "DELETE")]);
    assert_eq!(
        ids(&req("POST", "/", None, &hs, b"")),
        ["protocol.method_override"]
    );
    let hs = h(&[HOST]);
    assert_eq!(
        ids(&req("GET", "/", Some("unix:AAAA|http://x/"), &hs, b"")),
        ["protocol.unix_socket_target"]
    );
}

#[test]
fn hostile_input_is_bounded() {
    let hs = h(&[HOST, ("Content-Type", "multipart/form-data; boundary=X")]);
    let body = "Content-Disposition: name=\"".repeat(10_000);
    let _ = run(&req("POST", "/", None, &hs, body.as_bytes()));
    let q = "%".repeat(100_000) + "%c0" + &"%e2".repeat(1000);
    let got = ids(&req("GET", "/", Some(&q), &h(&[HOST]), b""));
    assert_eq!(
        got,
        ["protocol.encoding_abuse", "protocol.arg_name_too_long"]
    );
    for bad in ["bytes=", "bytes=,,,", "bytes=-", "x"] {
        let hs = h(&[HOST, ("Range", bad)]);
        let _ = run(&req("GET", "/", None, &hs, b""));
    }
}

#[test]
fn config_is_validated() {
    let c = ProtocolConfig {
        max_ranges: 0,
        ..Default::default()
    };
    let e = ProtocolDetector::new(&c).err().unwrap();
    assert_eq!(e.field, "detect.protocol.max_ranges");
    let c = ProtocolConfig {
        extra_methods: vec!["BAD METHOD".into()],
        ..Default::default()
    };
    assert_eq!(
        ProtocolDetector::new(&c).err().unwrap().field,
        "detect.protocol.extra_methods"
    );
    let c: ProtocolConfig = serde_json::from_str(r#"{"flag_ip_host": true}"#).unwrap();
    let d = ProtocolDetector::new(&c).unwrap();
    let hs = h(&[("Host", "10.0.0.1")]);
    let mut out = Vec::new();
    d.inspect_request(&req("GET", "/", None, &hs, b""), &mut out);
    assert_eq!(out.len(), 1);
    assert!(serde_json::from_str::<ProtocolConfig>(r#"{"nope": 1}"#).is_err());
}

#[test]
fn h2_requests_use_authority_and_report_framing_anomalies() {
    let headers = h(&[("user-agent", "curl/8"), ("accept", "*/*")]);
    let mut r = req("GET", "/v1/items", None, &headers, b"");
    r.version = crate::http::HttpVersion::Http2;
    assert!(ids(&r).is_empty(), "{:?}", ids(&r));
    use crate::http::h2::H2Anomaly;
    let anomalies = [
        H2Anomaly::ConnectionSpecific,
        H2Anomaly::RepeatedPseudo,
        H2Anomaly::ContentLengthMismatch,
        H2Anomaly::InvalidValue,
    ];
    r.anomalies = &anomalies;
    assert_eq!(
        ids(&r),
        [
            "protocol.h2_connection_header",
            "protocol.h2_pseudo_headers",
            "protocol.h2_content_length",
            "protocol.invalid_header_value"
        ]
    );
    let up = h(&[
        HOST,
        ("Connection", "Upgrade, HTTP2-Settings"),
        ("Upgrade", "h2c"),
        ("HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA"),
    ]);
    assert!(ids(&req("GET", "/", None, &up, b"")).contains(&"protocol.h2c_upgrade"));
    let ws = h(&[HOST, ("Connection", "Upgrade"), ("Upgrade", "websocket")]);
    assert!(!ids(&req("GET", "/", None, &ws, b"")).contains(&"protocol.h2c_upgrade"));
}

#[test]
fn empty_headers_and_invalid_accept_encodings() {
    for (name, value, rule) in [
        ("Accept", "", "protocol.empty_header"),
        ("User-Agent", " ", "protocol.empty_header"),
        (
            "Accept-Encoding",
            "AAAA,AAAA&AA&**AAAA**A, *, ,",
            "protocol.accept_encoding_invalid",
        ),
        (
            "Accept-Encoding",
            "gzip, x/y",
            "protocol.accept_encoding_invalid",
        ),
    ] {
        let hs = h(&[HOST, (name, value)]);
        assert_eq!(
            run(&req("GET", "/", None, &hs, b"")),
            [(rule, format!("header:{}", name.to_ascii_lowercase()))],
            "{name}: {value}"
        );
    }
    for (name, value) in [
        ("Accept-Encoding", ""),
        ("Accept-Encoding", "gzip, deflate, br, zstd"),
        ("Accept-Encoding", "gzip;q=1.0, identity; q=0.5, *;q=0"),
        (
            "Accept-Encoding",
            "aes128gcm, br, compress, deflate, exi, identity, pack200-gzip, x-compress, x-gzip, zstd, gzip;q=1.0",
        ),
        ("Accept", "*/*"),
        ("User-Agent", "curl/8.5.0"),
        ("Accept-Language", ""),
    ] {
        let hs = h(&[HOST, (name, value)]);
        assert_eq!(ids(&req("GET", "/", None, &hs, b"")), [""; 0], "{name}: {value}");
    }
}

#[test]
fn javascript_escapes_of_ascii_in_parameters() {
    let form = h(&[
        HOST,
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Transfer-Encoding", "chunked"),
    ]);
    for (q, body) in [
        (Some("x=%5Cu0061lert(1)"), &b""[..]),
        (Some("x=\\u0065val()"), b""),
        (None, b"testarg=%5Cu0061lert"),
    ] {
        assert_eq!(
            ids(&req("POST", "/", q, &form, body)),
            ["protocol.encoding_abuse"],
            "{q:?}"
        );
    }
    // Escapes of non-ASCII characters are how some clients send text; paths with `\u`
    // are no escapes.
    for q in ["x=caf%5Cu00e9", "p=C:%5Cusers%5Cme", "x=%5Cu4e2d%5Cu6587"] {
        assert_eq!(
            ids(&req("GET", "/", Some(q), &h(&[HOST]), b"")),
            [""; 0],
            "{q}"
        );
    }
}

#[test]
fn request_targets() {
    let headers = h(&[HOST]);
    let ok = |m, p| ids(&req(m, p, None, &headers, b""));
    for (m, p) in [
        ("GET", "/"),
        ("GET", "/a/b.html"),
        ("OPTIONS", "*"),
        ("GET", "http://api.example.com/v1"),
        ("GET", "https://api.example.com:443/"),
        ("CONNECT", "api.example.com:443"),
        ("CONNECT", "1.2.3.4:80"),
    ] {
        assert_eq!(ok(m, p), Vec::<&str>::new(), "{m} {p}");
    }
    for (m, p) in [
        ("GET", "http://localhost"),
        ("GET", "http:///x"),
        ("GET", "index.html"),
        ("GET", "*"),
        ("GET", "1http://h/"),
        ("GET", ""),
    ] {
        assert_eq!(ok(m, p), ["protocol.invalid_target"], "{m} {p}");
    }
    // HTTP/2 targets are the pseudo-headers' business (extended CONNECT, `*`).
    let r = Request {
        version: crate::http::HttpVersion::Http2,
        ..req("GET", "", None, &headers, b"")
    };
    assert!(!ids(&r).contains(&"protocol.invalid_target"));
    // A raw request line keeps its absolute form.
    assert_eq!(
        raw(b"GET http://localhost HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        ["protocol.invalid_target"]
    );
}

#[test]
fn bodies_need_framing_in_http1() {
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    // curl -X POST (no data, no type), a framed form, chunked upload, GET with a type.
    let clean: [(&str, Headers, &[u8]); 5] = [
        (
            "POST",
            h(&[HOST, ("User-Agent", "curl/8.5.0"), ("Accept", "*/*")]),
            b"",
        ),
        ("POST", h(&[HOST, form, ("Content-Length", "3")]), b"a=1"),
        (
            "PUT",
            h(&[
                HOST,
                ("Content-Type", "application/octet-stream"),
                ("Transfer-Encoding", "chunked"),
            ]),
            b"data",
        ),
        (
            "POST",
            h(&[
                HOST,
                ("Content-Type", "application/json"),
                ("Content-Length", "0"),
            ]),
            b"",
        ),
        ("GET", h(&[HOST, ("Content-Type", "application/json")]), b""),
    ];
    for (m, headers, body) in &clean {
        assert_eq!(
            ids(&req(m, "/x", None, headers, body)),
            Vec::<&str>::new(),
            "{m} {headers:?}"
        );
    }
    // gRPC and every HTTP/2 request frame the body with DATA frames, not headers.
    let grpc = h(&[("content-type", "application/grpc"), ("te", "trailers")]);
    let r = Request {
        version: crate::http::HttpVersion::Http2,
        ..req(
            "POST",
            "/helloworld.Greeter/SayHello",
            None,
            &grpc,
            b"\0\0\0\0\x07\n\x05world",
        )
    };
    assert_eq!(ids(&r), Vec::<&str>::new());

    let typed = h(&[HOST, form]);
    for m in ["POST", "PUT", "PATCH"] {
        assert_eq!(
            ids(&req(m, "/", None, &typed, b"")),
            ["protocol.unframed_body"]
        );
    }
    // On the wire the bytes after such a head are no body: the corpus reader drops them.
    let line: crate::detect::offline::CorpusRequest = serde_json::from_str(
        r#"{"method":"POST","headers":[["Host","a"],["Content-Type","application/x-www-form-urlencoded"]],
            "body":"hi=test","autocomplete_headers":false}"#,
    )
    .unwrap();
    let o = OwnedRequest::from_corpus(&line).unwrap();
    assert_eq!(o.body, b"");
    assert_eq!(ids(&o.view(None, None)), ["protocol.unframed_body"]);
}

#[test]
fn content_range_and_content_encoding() {
    let range = |v| {
        let headers = h(&[
            HOST,
            ("Content-Type", "application/octet-stream"),
            ("Content-Range", v),
            ("Content-Length", "100"),
        ]);
        ids(&req("PUT", "/upload/1", None, &headers, &[b'x'; 100]))
    };
    // Resumable uploads (GCS, Drive, tus-like): chunk ranges and size-only queries.
    for v in [
        "bytes 0-99/200",
        "bytes 100-199/*",
        "bytes */200",
        "BYTES 0-0/1",
        "items 1-2/3",
    ] {
        assert_eq!(range(v), Vec::<&str>::new(), "{v}");
    }
    for v in [
        "test",
        "bytes",
        "bytes 5-1/200",
        "bytes 0-200/200",
        "bytes */*",
        "bytes 0-99",
        "bytes -5/10",
        "bytes 0-99/2x",
    ] {
        assert_eq!(range(v), ["protocol.content_range_invalid"], "{v}");
    }

    // Compressed request bodies are everyday (OTLP gzip, Prometheus remote-write snappy).
    let clean: [(&str, Headers); 2] = [
        (
            "POST",
            h(&[
                HOST,
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "snappy"),
                ("Content-Length", "4"),
            ]),
        ),
        (
            "POST",
            h(&[
                HOST,
                ("Content-Type", "application/json"),
                ("Content-Encoding", "gzip"),
                ("Transfer-Encoding", "chunked"),
            ]),
        ),
    ];
    for (m, headers) in &clean {
        assert_eq!(
            ids(&req(m, "/v1/metrics", None, headers, b"\x1f\x8b\x08\0")),
            Vec::<&str>::new()
        );
    }
    for (m, headers) in [
        (
            "GET",
            h(&[
                HOST,
                ("Accept", "text/html"),
                ("Content-Encoding", "deflate"),
            ]),
        ),
        (
            "POST",
            h(&[
                HOST,
                ("Content-Type", "application/json"),
                ("Content-Encoding", "gzip"),
                ("Content-Length", "0"),
            ]),
        ),
    ] {
        assert_eq!(
            ids(&req(m, "/", None, &headers, b"")),
            ["protocol.content_encoding_without_body"]
        );
    }
}

#[test]
fn local_addresses_as_host() {
    let at = |host, peer: Option<&str>| {
        let headers = h(&[("Host", host)]);
        let r = Request {
            peer: peer.map(|p| p.parse().unwrap()),
            ..req("GET", "/", None, &headers, b"")
        };
        ids(&r)
    };
    // Names, pod and service addresses (kubelet probes, in-cluster calls), and local
    // clients calling themselves by address.
    for (host, peer) in [
        ("localhost", Some("10.0.0.5")),
        ("api.example.com", None),
        ("10.244.1.7:8080", Some("10.244.1.1")),
        ("192.168.1.10", None),
        ("[2001:db8::1]:443", Some("2001:db8::2")),
        ("127.0.0.1:8080", Some("127.0.0.1")),
        ("[::1]", Some("::1")),
        ("127.0.0.1", Some("::ffff:127.0.0.1")),
        ("[fe80::1]", Some("fe80::2")),
    ] {
        assert_eq!(at(host, peer), Vec::<&str>::new(), "{host} from {peer:?}");
    }
    for (host, peer) in [
        ("127.0.0.1", None),
        ("127.0.0.1", Some("10.0.0.5")),
        ("[::1]", Some("10.0.0.5")),
        ("[fe80::f1:01:fe01:1]:80", None),
        ("169.254.169.254", Some("10.0.0.5")),
        ("0.0.0.0:8080", Some("192.168.1.20")),
        ("[::ffff:127.0.0.1]", Some("203.0.113.9")),
        ("127.1.2.3", Some("fe80::2")),
    ] {
        assert_eq!(
            at(host, peer),
            ["protocol.host_local"],
            "{host} from {peer:?}"
        );
    }
}

/// HTTP/2 names its host in `:authority`: a local one from a remote peer is the same
/// rebinding as a local Host field, and a normal or local-peer authority is clean.
#[test]
fn http2_authority_is_judged_as_a_host() {
    let headers = h(&[("content-type", "application/json")]);
    let at = |authority, peer: &str, version| {
        let r = Request {
            version,
            authority: Some(authority),
            peer: peer.parse().ok(),
            ..req("GET", "/", None, &headers, b"")
        };
        ids(&r)
    };
    assert_eq!(
        at("127.0.0.1:8443", "10.0.0.5", HttpVersion::Http2),
        ["protocol.host_local"]
    );
    assert_eq!(
        at("[::1]", "203.0.113.9", HttpVersion::Http2),
        ["protocol.host_local"]
    );
    for (authority, peer) in [
        ("api.example.com", "10.0.0.5"),
        ("127.0.0.1:8443", "127.0.0.1"),
    ] {
        assert_eq!(
            at(authority, peer, HttpVersion::Http2),
            Vec::<&str>::new(),
            "{authority} from {peer}"
        );
    }
    // Only HTTP/2 requests carry an authority to judge.
    let http1 = h(&[("Host", "api.example.com")]);
    let r = Request {
        authority: Some("127.0.0.1"),
        peer: "10.0.0.5".parse().ok(),
        ..req("GET", "/", None, &http1, b"")
    };
    assert_eq!(ids(&r), Vec::<&str>::new());
}

/// Requests as browsers, SDKs and proxies send them: none of the request-line, framing,
/// Content-Range / Content-Encoding or Host rules may fire on them.
#[test]
fn browsers_sdks_and_proxies_are_clean() {
    let chrome_nav = h(&[
        ("Host", "shop.example.com"),
        ("Connection", "keep-alive"),
        ("Upgrade-Insecure-Requests", "1"),
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
        ("Accept-Encoding", "gzip, deflate, br, zstd"),
        ("Accept-Language", "en-GB,en;q=0.9"),
    ]);
    // navigator.sendBeacon posts text/plain; fetch() with no body still sends a length.
    let beacon = h(&[
        ("Host", "shop.example.com"),
        ("Content-Type", "text/plain;charset=UTF-8"),
        ("Content-Length", "15"),
        ("Origin", "https://shop.example.com"),
    ]);
    let fetch_empty = h(&[
        ("Host", "shop.example.com"),
        ("Content-Type", "application/json"),
        ("Content-Length", "0"),
    ]);
    // python-requests, Go net/http, an OTLP exporter (gzip), a localhost health check.
    let requests = h(&[
        ("Host", "10.96.0.12:8080"),
        ("User-Agent", "python-requests/2.32.3"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Accept", "*/*"),
        ("Connection", "keep-alive"),
        ("Content-Length", "15"),
        ("Content-Type", "application/json"),
    ]);
    let go = h(&[
        ("Host", "orders.default.svc.cluster.local"),
        ("User-Agent", "Go-http-client/1.1"),
        ("Content-Length", "0"),
        ("Accept-Encoding", "gzip"),
    ]);
    let otlp = h(&[
        ("Host", "otel-collector:4318"),
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "gzip"),
        ("Content-Length", "15"),
    ]);
    let probe = h(&[
        ("Host", "127.0.0.1:8080"),
        ("User-Agent", "kube-probe/1.31"),
    ]);
    let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let body = b"{\"event\":\"view\"}";
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a Headers,
        &'a [u8],
        Option<std::net::IpAddr>,
    );
    let cases: [Case<'_>; 7] = [
        ("GET", "/products/42", &chrome_nav, b"", None),
        ("POST", "/analytics", &beacon, &body[..15], None),
        ("POST", "/cart/clear", &fetch_empty, b"", None),
        ("POST", "/api/v1/orders", &requests, &body[..15], None),
        ("POST", "/api/v1/orders/7/cancel", &go, b"", None),
        ("POST", "/v1/traces", &otlp, &body[..15], None),
        ("GET", "/healthz", &probe, b"", Some(local)),
    ];
    for (m, p, headers, body, peer) in cases {
        let r = Request {
            peer,
            ..req(m, p, None, headers, body)
        };
        assert_eq!(ids(&r), Vec::<&str>::new(), "{m} {p}");
    }
    // A forward proxy's absolute-form request line.
    assert_eq!(
        raw(b"GET http://api.example.com/v1/items?page=2 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nProxy-Connection: Keep-Alive\r\n\r\n"),
        Vec::<&str>::new()
    );
}

#[test]
fn line_breaks_in_parameter_names() {
    let form = h(&[
        HOST,
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", "11"),
    ]);
    // A bare token ending in a newline (a text area's content posted as a form).
    assert_eq!(
        ids(&req("POST", "/", None, &form, b"%22%21+Y%0A")),
        Vec::<&str>::new()
    );
    for q in [
        "parameter%0d%0a=test",
        "a=1&%0d%0arestofdata",
        "x%0aSet-Cookie:%20a",
    ] {
        assert_eq!(
            ids(&req("GET", "/", Some(q), &h(&[HOST]), b"")),
            ["protocol.header_injection"],
            "{q}"
        );
    }
}

#[test]
fn a_rejected_request_line_is_reported_alone() {
    // Live: the parser gave the request up at its line, so nothing else is known.
    let none = h(&[]);
    let r = Request {
        request_line_invalid: true,
        ..req("GET", "", None, &none, b"")
    };
    assert_eq!(
        run(&r),
        [("protocol.invalid_request_line", "request_line".to_owned())]
    );
    // Offline, from the raw line: versions the parser refuses, none, a target with spaces.
    for line in [
        "GET / HTTP/4.0",
        "GET / HTTP/1.2",
        "GET /",
        "GET / ",
        "GET /a b HTTP/1.1",
        "G(T / HTTP/1.1",
    ] {
        let bytes = format!("{line}\r\nHost: api.example.com\r\n\r\n");
        assert_eq!(
            raw(bytes.as_bytes()),
            ["protocol.invalid_request_line"],
            "{line}"
        );
    }
    for line in ["GET / HTTP/1.1", "GET / HTTP/1.0", "POST /a?b=c HTTP/2.0"] {
        let bytes = format!("{line}\r\nHost: api.example.com\r\nContent-Length: 0\r\n\r\n");
        assert!(
            !raw(bytes.as_bytes()).contains(&"protocol.invalid_request_line"),
            "{line}"
        );
    }
}
