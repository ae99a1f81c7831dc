//! Agreement with llhttp's own test cases (strict mode rows only): whether a message is
//! an error, and for complete valid messages the method/URL or status.

use std::path::PathBuf;

use serde_json::Value;

use crate::http::{ConnState, ExchangeSlot, HttpConnection, HttpLimits, Stream};

fn corpus_dir() -> Option<PathBuf> {
    let in_repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    [in_repo, PathBuf::from("/work/shared/corpus")]
        .into_iter()
        .find(|p| p.is_dir())
}

/// Standard base64 (with or without padding); `None` on any other character.
pub(super) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[derive(Default)]
struct Tally {
    rows: usize,
    agree: usize,
    details: usize,
    details_agree: usize,
    disagreements: Vec<String>,
}

/// Parses one corpus row; returns (is an error, exchanges).
fn parse_row(stream: Stream, row: &Value, raw: &[u8]) -> (bool, Vec<ExchangeSlot>) {
    let mut conn = HttpConnection::new(HttpLimits::default());
    let mut out = Vec::new();
    if stream == Stream::Response {
        // Responses come without their request: make up as many as messages expected.
        let name = row["name"].as_str().unwrap_or_default();
        let request: &[u8] = if name.contains("HEAD") {
            b"HEAD / HTTP/1.1\r\n\r\n"
        } else {
            b"GET / HTTP/1.1\r\n\r\n"
        };
        let count = row["message_count"].as_u64().unwrap_or(1).max(1);
        for _ in 0..count {
            conn.feed(Stream::Request, request, 1, &mut out);
        }
    }
    conn.feed(stream, raw, 2, &mut out);
    conn.close(3, &mut out);
    let error =
        conn.parse_errors() > 0 || matches!(conn.state(), ConnState::Failed | ConnState::NotHttp);
    (error, out)
}

fn measure(file: &str, stream: Stream) -> Option<Tally> {
    let path = corpus_dir()?.join("http").join(file);
    let text = std::fs::read_to_string(&path).expect("readable corpus file");
    let mut tally = Tally::default();
    for line in text.lines() {
        let row: Value = serde_json::from_str(line).expect("corpus row is JSON");
        if row["lenient"].as_bool() != Some(false) {
            continue;
        }
        let raw = base64_decode(row["raw_b64"].as_str().expect("raw_b64")).expect("valid base64");
        let expect_error = row["expect"] == "error";
        let (error, exchanges) = parse_row(stream, &row, &raw);
        tally.rows += 1;
        let name = row["name"].as_str().unwrap_or_default();
        if error == expect_error {
            tally.agree += 1;
        } else {
            let reason = row["error"]["reason"].as_str().unwrap_or("");
            tally
                .disagreements
                .push(format!("expect {} {reason:?}: {name}", row["expect"]));
        }
        if row["details_complete"] == true && !expect_error {
            tally.details += 1;
            let first = exchanges.first();
            let same = match stream {
                Stream::Request => first.is_some_and(|ex| {
                    let url = match &ex.query {
                        Some(q) => format!("{}?{q}", ex.path),
                        None => ex.path.to_string(),
                    };
                    row["method"] == ex.method.as_str() && row["url"] == url.as_str()
                }),
                Stream::Response => {
                    first.is_some_and(|ex| row["status_code"].as_u64() == ex.status.map(u64::from))
                }
            };
            if same {
                tally.details_agree += 1;
            } else {
                tally.disagreements.push(format!("details differ: {name}"));
            }
        }
    }
    Some(tally)
}

fn report(label: &str, t: &Tally) {
    println!(
        "llhttp {label}: {}/{} agree on ok/error, {}/{} agree on details",
        t.agree, t.rows, t.details_agree, t.details
    );
    for d in &t.disagreements {
        println!("  {label}: {d}");
    }
}

#[test]
fn llhttp_corpus_agreement() {
    let (Some(requests), Some(responses)) = (
        measure("llhttp-requests.jsonl", Stream::Request),
        measure("llhttp-responses.jsonl", Stream::Response),
    ) else {
        println!("llhttp corpus not found next to the workspace; skipped");
        return;
    };
    report("requests", &requests);
    report("responses", &responses);
    assert_eq!((requests.rows, responses.rows), (137, 77));
    // Achieved: requests 123/137 and 61/65, responses 72/77 and 29/31. What remains is by
    // design: llhttp reports its pause at CONNECT/Upgrade as an error (here the connection
    // upgrades), RTSP/ICE/HTTP 0.9 are not HTTP/1.x, raw UTF-8 in a target is accepted,
    // and llhttp counts an interim 1xx as the first response (here the final one pairs).
    assert!(requests.agree >= 121, "requests: {}", requests.agree);
    assert!(
        requests.details_agree >= 60,
        "request details: {}",
        requests.details_agree
    );
    assert!(responses.agree >= 70, "responses: {}", responses.agree);
    assert!(
        responses.details_agree >= 28,
        "response details: {}",
        responses.details_agree
    );
}

#[test]
fn base64_decoder() {
    assert_eq!(
        base64_decode("R0VUIC8=").as_deref(),
        Some(b"GET /".as_slice())
    );
    assert_eq!(base64_decode("YWJj").as_deref(), Some(b"abc".as_slice()));
    assert_eq!(base64_decode("YQ").as_deref(), Some(b"a".as_slice()));
    assert_eq!(base64_decode("a b"), None);
}

/// Every corpus row's exchanges (`Debug` and JSON), errors, state and buffered bytes, fed
/// whole, a byte at a time and 7 bytes at a time, with 8 KiB, 64 and 31-byte head limits,
/// with and without request notices: written to `$API_GUARD_HTTP_DUMP` to diff builds.
#[test]
#[ignore = "writes a dump for diffing two builds"]
fn dump_corpus_exchanges() {
    use std::fmt::Write as _;
    let (Some(dir), Ok(dest)) = (corpus_dir(), std::env::var("API_GUARD_HTTP_DUMP")) else {
        return;
    };
    let mut dump = String::new();
    for (file, stream) in [
        ("llhttp-requests.jsonl", Stream::Request),
        ("llhttp-responses.jsonl", Stream::Response),
    ] {
        let text = std::fs::read_to_string(dir.join("http").join(file)).expect("corpus file");
        for line in text.lines() {
            let row: Value = serde_json::from_str(line).expect("corpus row is JSON");
            let raw = base64_decode(row["raw_b64"].as_str().expect("raw_b64")).expect("base64");
            for max_header_bytes in [8192, 64, 31] {
                for notify in [false, true] {
                    for cut in [usize::MAX, 1, 7] {
                        let mut conn = HttpConnection::new(HttpLimits {
                            max_header_bytes,
                            ..HttpLimits::default()
                        });
                        if notify {
                            conn.notify_requests();
                        }
                        let mut out = Vec::new();
                        if stream == Stream::Response {
                            conn.feed(Stream::Request, b"GET / HTTP/1.1\r\n\r\n", 1, &mut out);
                        }
                        for piece in raw.chunks(cut.min(raw.len().max(1))) {
                            conn.feed(stream, piece, 2, &mut out);
                        }
                        let buffered = conn.buffered_bytes();
                        conn.close(3, &mut out);
                        let _ = writeln!(
                            dump,
                            "{file} {} {max_header_bytes} {notify} {cut}: errors {} state {:?} buffered {buffered}",
                            row["name"], conn.parse_errors(), conn.state()
                        );
                        for ex in &out {
                            let json = serde_json::to_string(&**ex).unwrap_or_default();
                            let _ = writeln!(dump, "  {ex:?}\n  {json} {}", ex.retained_bytes());
                        }
                    }
                }
            }
        }
    }
    std::fs::write(dest, dump).expect("dump written");
}
