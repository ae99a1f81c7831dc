//! Offline detection (`api-guard detect --input FILE.jsonl`): each JSON line is a request in
//! the format of the evaluation corpus (`id`, `method`, `uri`, `version`, `headers` as
//! `[name, value]` pairs, `body`, or `encoded_request` holding a whole raw request in
//! base64), optionally with `peer` (client address), `status` (the response status) and
//! `time` (seconds). Each line goes through the same [`Engine`] as live traffic and one JSON
//! line comes out: `{"id": …, "findings": [{kind, rule_id, severity, location, evidence}]}`.
//!
//! Lines without `time` are taken to be one second apart, so rate-based detectors see a
//! plausible pace rather than thousands of requests in a millisecond.

use std::{
    io::{self, BufRead, Write},
    net::IpAddr,
};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{engine::Engine, finding::Finding, request::Request};
use crate::{
    http::{Headers, HttpVersion},
    identity::{AuthorizationCache, Identifier},
};

/// Longest input line accepted (longer lines are reported as errors and skipped).
const MAX_LINE_BYTES: usize = 16 << 20;
/// Headers kept from an `encoded_request`.
const MAX_RAW_HEADERS: usize = 256;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CorpusRequest {
    pub id: serde_json::Value,
    pub method: Option<String>,
    pub uri: Option<String>,
    pub version: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub encoded_request: Option<String>,
    /// go-ftw's `autocomplete_headers` (absent means true): see [`OwnedRequest::from_corpus`].
    pub autocomplete_headers: Option<bool>,
    pub peer: Option<IpAddr>,
    pub status: Option<u16>,
    pub time: Option<f64>,
}

/// A request assembled from a corpus line, owning its parts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OwnedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub version: HttpVersion,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub head_len: u64,
    /// The request line as sent would not parse (see [`request_line_valid`]).
    pub request_line_invalid: bool,
}

impl OwnedRequest {
    /// The request as go-ftw would send it: `GET`, `/` and HTTP/1.1 where not given, and
    /// unless `autocomplete_headers` is false the headers it completes: `Connection: close`,
    /// `Content-Type: application/x-www-form-urlencoded` for a body without a type, and
    /// `Content-Length` for a body or a POST, PUT, PATCH or DELETE. (go-ftw also
    /// percent-encodes such form bodies, which decodes to the same parameters, and turns LF
    /// into CRLF in multipart bodies; neither is reproduced.) An HTTP/1 line left without
    /// Content-Length or Transfer-Encoding has no body, as on the wire.
    pub fn from_corpus(line: &CorpusRequest) -> Result<Self, String> {
        if let Some(encoded) = &line.encoded_request {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| format!("encoded_request is not base64: {e}"))?;
            return Ok(Self::from_raw(&raw));
        }
        let method = line.method.clone().unwrap_or_else(|| "GET".into());
        let uri = line.uri.as_deref().unwrap_or("/");
        let version = version_of(line.version.as_deref());
        let request_line_invalid =
            !request_line_valid(&method, uri, line.version.as_deref().unwrap_or("HTTP/1.1"));
        let mut headers: Headers = line.headers.iter().map(|(n, v)| (n, v)).collect();
        if line.autocomplete_headers != Some(false) {
            let has = |h: &Headers, name: &str| h.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
            if !has(&headers, "connection") {
                headers.push("Connection", "close");
            }
            if !line.body.is_empty() && !has(&headers, "content-type") {
                headers.push("Content-Type", "application/x-www-form-urlencoded");
            }
            let body_method = ["POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str());
            if (!line.body.is_empty() || body_method) && !has(&headers, "content-length") {
                headers.push("Content-Length", &line.body.len().to_string());
            }
        }
        let head_len = method.len()
            + uri.len()
            + 12
            + headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>()
            + 2;
        let (path, query) = split_target(uri);
        // An HTTP/1 request with neither Content-Length nor Transfer-Encoding has no body
        // (RFC 9112 §6.3): a server, and the live parser, read the bytes after its head as
        // the next request.
        let framed = version == HttpVersion::Http2
            || headers.iter().any(|(n, _)| {
                n.eq_ignore_ascii_case("content-length")
                    || n.eq_ignore_ascii_case("transfer-encoding")
            });
        let body = if framed {
            line.body.clone().into_bytes()
        } else {
            Vec::new()
        };
        Ok(Self {
            method,
            path,
            query,
            version,
            headers,
            body,
            head_len: head_len as u64,
            request_line_invalid,
        })
    }

    /// A raw HTTP/1.x request, read leniently: malformed header lines are kept as they are
    /// (the protocol detector judges them), a missing head end means no body.
    pub fn from_raw(raw: &[u8]) -> Self {
        let (head, body) = match find(raw, b"\r\n\r\n") {
            Some(i) => (&raw[..i], &raw[i + 4..]),
            None => match find(raw, b"\n\n") {
                Some(i) => (&raw[..i], &raw[i + 2..]),
                None => (raw, &[][..]),
            },
        };
        let head = String::from_utf8_lossy(head);
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let request_line = lines.next().unwrap_or("");
        let words: Vec<&str> = request_line.split(' ').collect();
        let request_line_invalid = match words.as_slice() {
            [method, target, version] => !request_line_valid(method, target, version),
            _ => true,
        };
        let mut parts = words.iter().copied().filter(|p| !p.is_empty());
        let method = parts.next().unwrap_or("GET").to_owned();
        let target = parts.next().unwrap_or("/");
        let version = version_of(parts.next());
        let (path, query) = split_target(target);
        let headers = lines
            .take(MAX_RAW_HEADERS)
            .map(|l| match l.split_once(':') {
                Some((n, v)) => (n.to_owned(), v.trim().to_owned()),
                None => (l.to_owned(), String::new()),
            })
            .collect();
        Self {
            method,
            path,
            query,
            version,
            headers,
            body: body.to_vec(),
            head_len: (raw.len() - body.len()) as u64,
            request_line_invalid,
        }
    }

    pub fn view(&self, peer: Option<IpAddr>, status: Option<u16>) -> Request<'_> {
        Request {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            version: self.version,
            anomalies: &[],
            request_line_invalid: self.request_line_invalid,
            headers: &self.headers,
            body: &self.body,
            body_len: self.body.len() as u64,
            head_len: self.head_len,
            authority: None,
            peer,
            status,
            fields: None,
        }
    }
}

/// The version token of a request line. `HTTP/2.0` on a text request line is how go-ftw
/// writes an HTTP/2 test (CRS reads it as HTTP/2); other unknown versions read as 1.1.
fn version_of(token: Option<&str>) -> HttpVersion {
    match token {
        Some("HTTP/1.0") => HttpVersion::Http10,
        Some("HTTP/2" | "HTTP/2.0") => HttpVersion::Http2,
        _ => HttpVersion::Http11,
    }
}

/// Whether `method target version` would pass the live HTTP/1 parser's request-line check:
/// a method token, a target without spaces or control bytes, and `HTTP/1.0` or `HTTP/1.1`
/// (`HTTP/2` and `HTTP/2.0` too: go-ftw's way of writing an HTTP/2 test, see [`version_of`]).
fn request_line_valid(method: &str, target: &str, version: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    token(method)
        && !target.is_empty()
        && target.bytes().all(|b| b > b' ' && b != 0x7f)
        && matches!(version, "HTTP/1.0" | "HTTP/1.1" | "HTTP/2" | "HTTP/2.0")
}

/// `/a/b?x=1` → (`/a/b`, `x=1`). Like the live HTTP/1 parser, the path is the target as sent
/// up to `?` (an absolute-form target keeps its scheme and authority); a fragment is dropped.
fn split_target(uri: &str) -> (String, Option<String>) {
    let uri = uri.split('#').next().unwrap_or(uri);
    match uri.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (uri.to_owned(), None),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[derive(Serialize)]
struct OutputLine<'a> {
    id: &'a serde_json::Value,
    findings: &'a [Finding],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// What a run went through.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub lines: u64,
    pub errors: u64,
    pub findings: u64,
}

/// Reads corpus lines from `input` and writes one verdict line per input line to `output`;
/// each request's client is identified with `identifier`, as the agent does.
/// A line that cannot be read gets an output line with `error` and no findings.
pub fn run(
    engine: &mut Engine,
    identifier: &Identifier,
    mut input: impl BufRead,
    mut output: impl Write,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    let mut credentials = AuthorizationCache::new();
    let mut buf = Vec::new();
    let null = serde_json::Value::Null;
    loop {
        buf.clear();
        let n =
            io::Read::take(&mut input, MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            // Skip the rest of an oversized line.
            let mut sink = Vec::new();
            input.read_until(b'\n', &mut sink)?;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        summary.lines += 1;
        let now_ns = summary.lines * 1_000_000_000;
        let parsed = serde_json::from_str::<CorpusRequest>(text)
            .map_err(|e| format!("not a request line: {e}"))
            .and_then(|line| OwnedRequest::from_corpus(&line).map(|req| (line, req)));
        match parsed {
            Ok((line, req)) => {
                let now_ns = match line.time {
                    Some(t) if t.is_finite() && t >= 0.0 => (t * 1e9) as u64,
                    _ => now_ns,
                };
                let req = req.view(line.peer, line.status);
                let client =
                    identifier.identify_cached(req.peer, req.headers, req.query, &mut credentials);
                let verdict = engine.inspect(&req, &client, now_ns);
                summary.findings += verdict.findings.len() as u64;
                write_line(&mut output, &line.id, &verdict.findings, None)?;
            }
            Err(error) => {
                summary.errors += 1;
                write_line(&mut output, &null, &[], Some(error))?;
            }
        }
    }
    output.flush()?;
    Ok(summary)
}

fn write_line(
    out: &mut impl Write,
    id: &serde_json::Value,
    findings: &[Finding],
    error: Option<String>,
) -> io::Result<()> {
    let line = OutputLine {
        id,
        findings,
        error,
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{detect::DetectConfig, identity::Identifier};

    #[test]
    fn corpus_defaults_and_targets() {
        let line: CorpusRequest =
            serde_json::from_str(r#"{"id":"x","method":null,"uri":null,"headers":[]}"#).unwrap();
        let r = OwnedRequest::from_corpus(&line).unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query),
            ("GET", "/", None)
        );
        // Absolute form stays as sent, as the live parser keeps it.
        let (p, q) = split_target("http://h:80/a?b=1#frag");
        assert_eq!((p.as_str(), q.as_deref()), ("http://h:80/a", Some("b=1")));
        assert_eq!(version_of(Some("HTTP/2.0")), HttpVersion::Http2);
        assert_eq!(version_of(Some("HTTP/4.0")), HttpVersion::Http11);
    }

    fn headers_of(json: &str) -> Vec<(String, String)> {
        let line: CorpusRequest = serde_json::from_str(json).unwrap();
        let r = OwnedRequest::from_corpus(&line).unwrap();
        r.headers
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn headers_are_completed_as_go_ftw_completes_them() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            headers_of(r#"{"method":"POST","headers":[["Host","a"]],"body":"x=1"}"#),
            pairs(&[
                ("Host", "a"),
                ("Connection", "close"),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Content-Length", "3"),
            ])
        );
        // A bodiless DELETE gets `Content-Length: 0`, a GET nothing but `Connection`; given
        // headers are kept (case-insensitively).
        assert_eq!(
            headers_of(r#"{"method":"DELETE","headers":[["connection","keep-alive"]]}"#),
            pairs(&[("connection", "keep-alive"), ("Content-Length", "0")])
        );
        assert_eq!(
            headers_of(r#"{"headers":[["content-length","9"]],"body":"ab"}"#),
            pairs(&[
                ("content-length", "9"),
                ("Connection", "close"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ])
        );
        assert_eq!(
            headers_of(
                r#"{"method":"POST","headers":[["Host","a"]],"body":"x","autocomplete_headers":false}"#
            ),
            pairs(&[("Host", "a")])
        );
    }

    #[test]
    fn raw_requests_are_read_leniently() {
        let r = OwnedRequest::from_raw(
            b"POST /x?y=1 HTTP/1.1\r\nHost: a\r\nbad header line\r\n\r\nbody",
        );
        assert_eq!(r.method, "POST");
        assert_eq!(r.query.as_deref(), Some("y=1"));
        assert_eq!(r.headers.get_index(1), Some(("bad header line", "")));
        assert_eq!(r.body, b"body");
        let r = OwnedRequest::from_raw(b"");
        assert_eq!(r.path, "/");
    }

    #[test]
    fn one_output_line_per_input_line() {
        let mut engine = Engine::new(&DetectConfig::default()).unwrap();
        let input =
            b"{\"id\":1,\"uri\":\"/\"}\nnot json\n\n{\"id\":\"b\",\"encoded_request\":\"!!\"}\n";
        let mut out = Vec::new();
        let s = run(&mut engine, &Identifier::default(), &input[..], &mut out).unwrap();
        assert_eq!(s.lines, 3);
        assert_eq!(s.errors, 2);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["id"], 1);
        assert!(lines[1]["error"].is_string());
    }
}
