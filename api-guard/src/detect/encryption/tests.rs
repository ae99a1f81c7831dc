use super::*;
use crate::{
    detect::offline::OwnedRequest,
    handshake::{CipherSuite, TlsSession, TlsVersion},
};

fn channel(local: &str, peer: &str) -> Channel<'static> {
    Channel {
        conn_id: 1,
        server: true,
        tls: false,
        local: local.parse().ok(),
        peer: peer.parse().ok(),
        session: None,
        scans: None,
    }
}

const ACROSS: (&str, &str) = ("10.1.0.1:8080", "10.1.0.2:40000");

fn ids() -> Identifier {
    Identifier::new(Vec::new(), &["X-Api-Key".into()], &["api_key".into()])
}

fn request(ch: &Channel, raw: &[u8]) -> Vec<Finding> {
    let mut d = EncryptionDetector::new(&EncryptionConfig::default()).unwrap();
    let req = OwnedRequest::from_raw(raw);
    let mut out = Vec::new();
    d.inspect_request(
        ch,
        &req.view(ch.peer.map(|p| p.ip()), None),
        &ids(),
        1,
        &mut out,
    );
    out
}

fn summary(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .map(|f| format!("{} {} {}", f.rule_id, f.location, f.evidence))
        .collect()
}

#[test]
fn which_peers_cross_the_network() {
    let cases = [
        (("127.0.0.1:80", "127.0.0.1:5000"), Some(false)),
        (("[::1]:80", "[::1]:5000"), Some(false)),
        (("10.0.0.5:80", "10.0.0.5:5000"), Some(false)),
        (("[::ffff:10.0.0.5]:80", "10.0.0.5:5000"), Some(false)),
        (("10.0.0.5:80", "10.0.0.6:5000"), Some(true)),
        (("10.0.0.5:80", "unknown"), None),
        (("unknown", "192.0.2.1:443"), Some(true)),
    ];
    for ((local, peer), expected) in cases {
        assert_eq!(
            channel(local, peer).crosses_network(),
            expected,
            "{local} {peer}"
        );
    }
}

#[test]
fn credentials_in_plaintext_across_the_network() {
    let ch = channel(ACROSS.0, ACROSS.1);
    let raw = b"GET /orders?api_key=k1&x=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer abc.def\r\nX-API-Key: k2\r\nCookie: theme=dark; JSESSIONID=s3\r\n\r\n";
    let found = request(&ch, raw);
    assert_eq!(
        summary(&found),
        ["encryption.plaintext_credential header:authorization header:authorization (bearer), header:x-api-key, cookie:JSESSIONID, query:api_key"]
    );
    for f in &found {
        for secret in ["abc.def", "k1", "k2", "s3"] {
            assert!(!f.evidence.contains(secret) && !f.location.contains(secret));
        }
    }
    // No credential: nothing; a non-session cookie is not one.
    let plain = b"GET /orders HTTP/1.1\r\nHost: a\r\nCookie: theme=dark\r\n\r\n";
    assert!(request(&ch, plain).is_empty());
    // Loopback, the connection's own address, TLS and an unknown peer: nothing.
    for ch in [
        channel("127.0.0.1:80", "127.0.0.1:40000"),
        channel("10.1.0.1:80", "10.1.0.1:40000"),
        Channel { tls: true, ..ch },
        channel(ACROSS.0, "unknown"),
    ] {
        assert!(request(&ch, raw).is_empty(), "{ch:?}");
    }
    // A hostile scheme is not echoed.
    let odd =
        b"GET / HTTP/1.1\r\nAuthorization: \x01\x02verylongschemenamethatgoeson token\r\n\r\n";
    assert_eq!(
        summary(&request(&ch, odd)),
        ["encryption.plaintext_credential header:authorization header:authorization (unknown)"]
    );
}

#[test]
fn sensitive_data_in_plaintext_bodies_and_queries() {
    let ch = channel(ACROSS.0, ACROSS.1);
    let raw = b"POST /pay HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\r\n{\"card\":\"4111 1111 1111 1111\",\"email\":\"a@example.com\",\"password\":\"hunter2\"}";
    assert_eq!(
        summary(&request(&ch, raw)),
        ["encryption.plaintext_sensitive_data body payment_card, password"]
    );
    // Email and phone alone are not reported by default.
    let raw =
        b"POST /u HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"email\":\"a@example.com\"}";
    assert!(request(&ch, raw).is_empty());
    let raw = b"GET /login?password=x HTTP/1.1\r\n\r\n";
    assert_eq!(
        summary(&request(&ch, raw)),
        ["encryption.plaintext_sensitive_data query password"]
    );
    // The answer: a session cookie set and a card in the body.
    let mut d = EncryptionDetector::new(&EncryptionConfig::default()).unwrap();
    let headers = crate::http::Headers::from([
        ("Set-Cookie", "sessionid=abc; Path=/; HttpOnly"),
        ("Content-Type", "text/plain"),
    ]);
    let mut out = Vec::new();
    let resp = Response {
        headers: &headers,
        body: b"card 5555 5555 5555 4444",
    };
    d.inspect_response(&ch, &resp, 1, &mut out);
    assert_eq!(
        summary(&out),
        [
            "encryption.plaintext_credential set-cookie:sessionid set-cookie:sessionid",
            "encryption.plaintext_sensitive_data response_body payment_card"
        ]
    );
    let mut out = Vec::new();
    d.inspect_response(&channel("127.0.0.1:1", "127.0.0.1:2"), &resp, 1, &mut out);
    assert!(out.is_empty());
}

#[test]
fn weak_tls_is_reported_once_per_connection() {
    let mut d = EncryptionDetector::new(&EncryptionConfig::default()).unwrap();
    let req = OwnedRequest::from_raw(b"GET / HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n");
    let mut judge = |conn_id, version, cipher| {
        let ch = Channel {
            conn_id,
            server: true,
            tls: true,
            local: "10.0.0.1:443".parse().ok(),
            peer: "10.0.0.2:5000".parse().ok(),
            session: Some(TlsSession {
                version: TlsVersion(version),
                cipher: CipherSuite(cipher),
            }),
            scans: None,
        };
        let mut out = Vec::new();
        d.inspect_request(&ch, &req.view(None, None), &ids(), 1, &mut out);
        summary(&out)
    };
    assert_eq!(
        judge(1, 0x0302, 0xC014),
        ["encryption.weak_tls_version tls tls1.1 negotiated"]
    );
    assert!(judge(1, 0x0302, 0xC014).is_empty(), "once per connection");
    assert_eq!(
        judge(2, 0x0303, 0x002F),
        ["encryption.weak_cipher tls TLS_RSA_WITH_AES_128_CBC_SHA (no forward secrecy)"]
    );
    assert_eq!(
        judge(3, 0x0303, 0xC011),
        ["encryption.weak_cipher tls TLS_ECDHE_RSA_WITH_RC4_128_SHA (broken cipher)"]
    );
    assert!(judge(4, 0x0304, 0x1302).is_empty());
    assert!(judge(5, 0x0303, 0xC02F).is_empty());
    assert!(
        judge(6, 0x0303, 0xFFFF).is_empty(),
        "unknown suites are not judged"
    );
    // The memory of judged connections is bounded.
    for id in 100..100 + 2 * MAX_REMEMBERED_CONNECTIONS as u64 {
        judge(id, 0x0304, 0x1301);
    }
    assert_eq!(d.judged.len(), MAX_REMEMBERED_CONNECTIONS);
    assert_eq!(d.judged_order.len(), MAX_REMEMBERED_CONNECTIONS);
}

#[test]
fn config_is_validated() {
    let bad: EncryptionConfig = toml::from_str("max_scan_bytes = 0").unwrap();
    assert_eq!(
        bad.validate().unwrap_err().field,
        "detect.encryption.max_scan_bytes"
    );
    let bad: EncryptionConfig = toml::from_str("session_cookies = [\"a b\"]").unwrap();
    assert_eq!(
        bad.validate().unwrap_err().field,
        "detect.encryption.session_cookies"
    );
    let ok: EncryptionConfig =
        toml::from_str("sensitive_classes = [\"email\"]\nsession_cookies = [\"SID\"]").unwrap();
    let d = EncryptionDetector::new(&ok).unwrap();
    assert!(d.is_session_cookie("sid"));
    assert!(d.is_session_cookie("my_Session"));
    assert!(d.is_session_cookie("PHPSESSID"));
    assert!(!d.is_session_cookie("theme"));
}

#[test]
fn a_plaintext_finding_repeats_only_after_its_window() {
    let mut d = EncryptionDetector::new(&EncryptionConfig::default()).unwrap();
    let req = OwnedRequest::from_raw(b"GET / HTTP/1.1\r\nAuthorization: Basic eDp5\r\n\r\n");
    let mut judge = |ch: &Channel, now_ns: u64| {
        let mut out = Vec::new();
        d.inspect_request(ch, &req.view(None, None), &ids(), now_ns, &mut out);
        out.len()
    };
    let server = channel("10.1.0.1:8080", "10.1.0.2:40000");
    let secs = 1_000_000_000;
    assert_eq!(judge(&server, secs), 1);
    // The same client from another port, a little later: the same exposure.
    assert_eq!(
        judge(&channel("10.1.0.1:8080", "10.1.0.2:40001"), 2 * secs),
        0
    );
    // Another client, or another port of the server: new.
    assert_eq!(
        judge(&channel("10.1.0.1:8080", "10.1.0.3:40000"), 2 * secs),
        1
    );
    assert_eq!(
        judge(&channel("10.1.0.1:8081", "10.1.0.2:40000"), 2 * secs),
        1
    );
    // After the window, again.
    assert_eq!(judge(&server, 601 * secs), 1);
    // An outgoing call: keyed by the server it called, whatever its own port.
    let client = |port: u16| Channel {
        server: false,
        ..channel(&format!("10.1.0.2:{port}"), "10.1.0.1:8080")
    };
    assert_eq!(judge(&client(50000), secs), 1);
    assert_eq!(judge(&client(50001), 2 * secs), 0);
}

/// With the exchange's body scans (shared with discovery) the audit finds what it finds
/// alone, and reuses a scan discovery already made instead of scanning again.
#[test]
fn shared_body_scans_give_the_same_findings_and_are_reused() {
    let headers = crate::http::Headers::from([("Content-Type", "application/json")]);
    let body: &[u8] = br#"{"card":"4111 1111 1111 1111","password":"hunter2"}"#;
    let resp = Response {
        headers: &headers,
        body,
    };
    let judge = |ch: &Channel| {
        let mut d = EncryptionDetector::new(&EncryptionConfig::default()).unwrap();
        let mut out = Vec::new();
        d.inspect_response(ch, &resp, 1, &mut out);
        summary(&out)
    };
    let alone = judge(&channel(ACROSS.0, ACROSS.1));
    assert_eq!(
        alone,
        ["encryption.plaintext_sensitive_data response_body payment_card, password"]
    );
    let scans = BodyScans::default();
    let shared = Channel {
        scans: Some(&scans),
        ..channel(ACROSS.0, ACROSS.1)
    };
    assert_eq!(judge(&shared), alone);
    // Discovery scanned it first (within its limit, as JSON): its counts are used.
    let scans = BodyScans::default();
    let seen = scans.response.get(body, true, 64 * 1024);
    assert_eq!(seen.get(DataClass::PaymentCard), 1);
    let reused = Channel {
        scans: Some(&scans),
        ..channel(ACROSS.0, ACROSS.1)
    };
    assert_eq!(judge(&reused), alone);
}

#[test]
fn json_is_found_in_a_content_type_in_any_case() {
    for (hay, want) in [
        ("application/json", true),
        ("Application/JSON; charset=utf-8", true),
        ("application/vnd.api+Json", true),
        ("application/jso", false),
        ("text/plain; j=son", false),
        ("jjson", true),
        ("", false),
    ] {
        assert_eq!(contains_ignore_case(hay, b"json"), want, "{hay:?}");
    }
}
