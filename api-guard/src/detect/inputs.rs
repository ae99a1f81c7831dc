//! Where attackers put payloads: the request is split into named values (path, query
//! parameters and their names, form and multipart fields, every JSON string, cookies and
//! headers), each decoded once the way a web framework would see it. The work is bounded:
//! at most `max_values` values of at most `max_value_bytes` each, JSON no deeper than
//! `max_json_depth`, and the body's first `max_body_bytes`. Body values come from the
//! [`stream`] scanner: fed as the body arrives for live requests (so the whole body is
//! read, not only the prefix kept), or over the kept prefix here.

use std::{borrow::Cow, fmt::Write as _};

use serde::Deserialize;

use super::{
    fields::Named,
    request::Request,
    stream::{self, BodyScanner, BodyValue, ScanLimits},
};
use crate::text::percent_decode;

/// The headers [`skipped_header`] finds, as a list (its tests' reference).
#[cfg(test)]
const SKIPPED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "content-length",
    "transfer-encoding",
    "connection",
    "host",
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "pragma",
    "if-none-match",
    "if-modified-since",
    "upgrade-insecure-requests",
    "sec-fetch-dest",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-user",
];

/// Whether `name` is a header never inspected as a payload carrier (in any case): framing
/// and negotiation headers whose syntax the protocol detector checks, and credentials (their
/// values must not end up in evidence). Only the names of its length are compared (every
/// field of every request is looked up here); the tests hold it to `SKIPPED_HEADERS`.
fn skipped_header(name: &str) -> bool {
    let names: &[&str] = match name.len() {
        4 => &["host"],
        6 => &["cookie", "accept", "pragma"],
        10 => &["connection"],
        13 => &["authorization", "cache-control", "if-none-match"],
        14 => &[
            "content-length",
            "sec-fetch-dest",
            "sec-fetch-mode",
            "sec-fetch-site",
            "sec-fetch-user",
        ],
        15 => &["accept-encoding", "accept-language"],
        17 => &["transfer-encoding", "if-modified-since"],
        19 => &["proxy-authorization"],
        25 => &["upgrade-insecure-requests"],
        _ => return false,
    };
    names.iter().any(|s| name.eq_ignore_ascii_case(s))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputLimits {
    /// Values inspected per request (default 256); the rest are skipped and counted.
    pub max_values: usize,
    /// Bytes inspected per value (default 8192).
    pub max_value_bytes: usize,
    /// Body bytes scanned for values (default 1 MiB = 1048576): live bodies are scanned as
    /// they stream, whatever prefix capture keeps; bytes beyond are reported as
    /// `protocol.uninspected_content` (`body_limit`).
    pub max_body_bytes: usize,
    /// JSON nesting followed (default 32); deeper values are skipped.
    pub max_json_depth: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        Self {
            max_values: 256,
            max_value_bytes: 8192,
            max_body_bytes: 1 << 20,
            max_json_depth: 32,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The URL path (percent-decoded once).
    Path,
    /// A query parameter value.
    Query,
    /// A query or form parameter name.
    ArgName,
    /// A urlencoded or multipart form field.
    Form,
    /// A JSON string value (or key) in the body.
    Json,
    /// The whole body, when it is neither form nor JSON.
    Body,
    Cookie,
    Header,
}

#[cfg(test)]
impl Source {
    /// Every source, for tests that draw values from all of them.
    pub const ALL: [Source; 8] = [
        Source::Path,
        Source::Query,
        Source::ArgName,
        Source::Form,
        Source::Json,
        Source::Body,
        Source::Cookie,
        Source::Header,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input<'a> {
    pub source: Source,
    /// Parameter, field, cookie or header name; a JSON path like `$.user.name`.
    pub name: Cow<'a, str>,
    pub value: Cow<'a, str>,
}

impl Input<'_> {
    /// The finding location: `path`, `query:id`, `arg-name:id`, `form:name`,
    /// `body:$.user.name`, `body`, `cookie:sid`, `header:user-agent`.
    pub fn location(&self) -> String {
        let prefix = match self.source {
            Source::Path => return "path".into(),
            Source::Body => return "body".into(),
            Source::Query => "query",
            Source::ArgName => "arg-name",
            Source::Form => "form",
            Source::Json => "body",
            Source::Cookie => "cookie",
            Source::Header => "header",
        };
        let mut s = String::with_capacity(prefix.len() + 1 + self.name.len().min(64));
        s.push_str(prefix);
        s.push(':');
        for c in self.name.chars().take(64) {
            if c.is_control() {
                let _ = write!(s, "\\u{{{:x}}}", c as u32);
            } else {
                s.push(c);
            }
        }
        s
    }

    /// Whether this value names a parameter rather than carrying one.
    pub fn is_name(&self) -> bool {
        self.source == Source::ArgName
    }
}

/// The request's values, plus how many were left out by the limits.
#[derive(Debug, Default)]
pub struct Inputs<'a> {
    pub values: Vec<Input<'a>>,
    pub skipped: usize,
}

impl<'a> Inputs<'a> {
    pub fn extract(req: &Request<'a>, limits: &InputLimits) -> Self {
        Self::extract_with(req, limits, None)
    }

    /// Like [`Inputs::extract`], with the body's values from `body` when it was scanned as
    /// it streamed (see [`stream`]), instead of from the prefix `req` holds.
    pub fn extract_with(
        req: &Request<'a>,
        limits: &InputLimits,
        body: Option<&'a [BodyValue]>,
    ) -> Self {
        let mut out = Collector {
            inputs: Inputs::default(),
            limits,
        };
        out.push(
            Source::Path,
            Cow::Borrowed(""),
            percent_decode(req.path, false),
        );
        if let Some(q) = req.query {
            out.pairs(q, Source::Query);
        }
        for (name, value) in req.fields() {
            if name.eq_ignore_ascii_case("cookie") {
                out.cookies(value);
            } else if !skipped_header(name) {
                out.push(
                    Source::Header,
                    Cow::Owned(name.to_ascii_lowercase()),
                    Cow::Borrowed(value),
                );
            }
        }
        match body {
            Some(values) => out.scanned(values),
            None => out.body(req),
        }
        out.inputs
    }

    /// The values of one window of a body still streaming (no head values: those are
    /// judged once, with the request).
    pub fn of_body(values: &'a [BodyValue], limits: &InputLimits) -> Self {
        let mut out = Collector {
            inputs: Inputs::default(),
            limits,
        };
        out.scanned(values);
        out.inputs
    }
}

struct Collector<'a, 'l> {
    inputs: Inputs<'a>,
    limits: &'l InputLimits,
}

impl<'a> Collector<'a, '_> {
    fn full(&self) -> bool {
        self.inputs.values.len() >= self.limits.max_values
    }

    fn push(&mut self, source: Source, name: Cow<'a, str>, value: Cow<'a, str>) {
        if value.is_empty() && source != Source::ArgName {
            return;
        }
        if self.full() {
            self.inputs.skipped += 1;
            return;
        }
        let value = truncate_cow(value, self.limits.max_value_bytes);
        self.inputs.values.push(Input {
            source,
            name,
            value,
        });
    }

    /// `a=1&b=2` (query strings and urlencoded forms): names and values, form-decoded.
    fn pairs(&mut self, s: &'a str, source: Source) {
        for pair in s.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name, true);
            if !name.is_empty() {
                self.push(Source::ArgName, Cow::Borrowed(""), name.clone());
            }
            self.push(source, name, percent_decode(value, true));
        }
    }

    fn cookies(&mut self, header: &'a str) {
        for c in header.split(';') {
            let c = c.trim();
            let (name, value) = c.split_once('=').unwrap_or(("", c));
            let name = name.trim();
            // Attackers put payloads in cookie names too; ordinary names need no look.
            if !stream::is_plain_key(name) {
                self.push(
                    Source::ArgName,
                    Cow::Borrowed(""),
                    percent_decode(name, false),
                );
            }
            self.push(
                Source::Cookie,
                Cow::Borrowed(name.trim()),
                percent_decode(value.trim(), false),
            );
        }
    }

    /// Values of a body scanned here (the prefix `req` holds, up to `max_body_bytes`).
    fn body(&mut self, req: &Request<'a>) {
        if req.body.is_empty() {
            return;
        }
        let mut scanner =
            BodyScanner::new(req.named(Named::ContentType), ScanLimits::of(self.limits));
        scanner.feed(req.body);
        let window = scanner.finish();
        self.inputs.skipped += window.skipped;
        self.inputs.values.reserve(window.values.len());
        for v in window.values {
            self.push(v.source, Cow::Owned(v.name), Cow::Owned(v.value));
        }
    }

    /// Values of a body scanned while it streamed. Not bounded by `max_values`: a window's
    /// bytes bound the work, and a count bound would let many small fields hide the next.
    fn scanned(&mut self, values: &'a [BodyValue]) {
        self.inputs.values.reserve(values.len());
        for v in values {
            if v.value.is_empty() && v.source != Source::ArgName {
                continue;
            }
            self.inputs.values.push(Input {
                source: v.source,
                name: Cow::Borrowed(&v.name),
                value: Cow::Borrowed(&v.value),
            });
        }
    }
}

fn truncate_cow(value: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    if value.len() <= max {
        return value;
    }
    let end = crate::text::truncate(&value, max).len();
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(&s[..end]),
        Cow::Owned(mut s) => {
            s.truncate(end);
            Cow::Owned(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Headers;

    fn req<'a>(
        path: &'a str,
        query: Option<&'a str>,
        headers: &'a Headers,
        body: &'a [u8],
    ) -> Request<'a> {
        Request {
            method: "POST",
            path,
            query,
            version: crate::http::HttpVersion::Http11,
            anomalies: &[],
            request_line_invalid: false,
            headers,
            body,
            body_len: body.len() as u64,
            head_len: 0,
            authority: None,
            peer: None,
            status: None,
            fields: None,
        }
    }

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs.into()
    }

    fn locs(i: &Inputs) -> Vec<(String, String)> {
        i.values
            .iter()
            .map(|v| (v.location(), v.value.to_string()))
            .collect()
    }

    #[test]
    fn query_cookies_headers_and_path() {
        let headers = h(&[
            ("User-Agent", "curl/8"),
            ("Cookie", "sid=a%20b; theme=dark"),
            ("Authorization", "Bearer secret"),
        ]);
        let r = req("/a%2Fb/c", Some("id=1%27+or&x"), &headers, b"");
        let got = locs(&Inputs::extract(&r, &InputLimits::default()));
        assert_eq!(
            got,
            [
                ("path", "/a/b/c"),
                ("arg-name:", "id"),
                ("query:id", "1' or"),
                ("arg-name:", "x"),
                ("header:user-agent", "curl/8"),
                ("cookie:sid", "a b"),
                ("cookie:theme", "dark"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn json_strings_with_paths_and_depth_bound() {
        let headers = h(&[("Content-Type", "application/json")]);
        let body = br#"{"user":{"name":"O'Brien","tags":["a","b"]},"n":1,"bad key!":"v"}"#;
        let r = req("/", None, &headers, body);
        let got = locs(&Inputs::extract(&r, &InputLimits::default()));
        assert!(got.contains(&("body:$.user.name".into(), "O'Brien".into())));
        assert!(got.contains(&("body:$.user.tags[1]".into(), "b".into())));
        assert!(got.contains(&("arg-name:".into(), "bad key!".into())));
        let deep = format!("{}\"x\"{}", "[".repeat(100), "]".repeat(100));
        let r = req("/", None, &headers, deep.as_bytes());
        let i = Inputs::extract(&r, &InputLimits::default());
        assert!(i.values.iter().all(|v| v.source != Source::Json));
        assert_eq!(i.skipped, 1);
    }

    #[test]
    fn form_and_multipart() {
        let headers = h(&[("Content-Type", "application/x-www-form-urlencoded")]);
        let r = req("/", None, &headers, b"a=%3Cb%3E&c=d+e");
        let got = locs(&Inputs::extract(&r, &InputLimits::default()));
        assert!(got.contains(&("form:a".into(), "<b>".into())));
        assert!(got.contains(&("form:c".into(), "d e".into())));
        let headers = h(&[("Content-Type", "multipart/form-data; boundary=XX")]);
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nhello\r\n--XX\r\nContent-Disposition: form-data; name=\"up\"; filename=\"../../x.php\"\r\nContent-Type: text/plain\r\n\r\ndata\r\n--XX--\r\n";
        let r = req("/", None, &headers, body);
        let got = locs(&Inputs::extract(&r, &InputLimits::default()));
        assert!(got.contains(&("form:f".into(), "hello".into())), "{got:?}");
        assert!(
            got.contains(&("form:up.filename".into(), "../../x.php".into())),
            "{got:?}"
        );
        assert!(got.contains(&("form:up".into(), "data".into())), "{got:?}");
        // A form without a content type, ending in a newline.
        let r = req("/", None, <&Headers>::default(), b"a=1&b=%3Cx%3E\n");
        let got = locs(&Inputs::extract(&r, &InputLimits::default()));
        assert!(got.contains(&("form:b".into(), "<x>".into())), "{got:?}");
    }

    #[test]
    fn limits_bound_the_work() {
        let q = "a=1&".repeat(10_000);
        let r = req("/", Some(&q), <&Headers>::default(), b"");
        let limits = InputLimits {
            max_values: 10,
            ..Default::default()
        };
        let i = Inputs::extract(&r, &limits);
        assert_eq!(i.values.len(), 10);
        assert!(i.skipped > 0);
        let long = "x".repeat(100_000);
        let r = req(&long, None, <&Headers>::default(), b"");
        let i = Inputs::extract(&r, &InputLimits::default());
        assert_eq!(i.values[0].value.len(), 8192);
    }

    /// The lookup by length finds the names of the list, in any case, and no other.
    #[test]
    fn skipped_headers_by_length() {
        for name in SKIPPED_HEADERS {
            assert!(skipped_header(name), "{name}");
            assert!(skipped_header(&name.to_ascii_uppercase()), "{name}");
        }
        let mut rng = crate::testutil::Rng(0x05c1_99ed);
        const BYTES: &[u8] = b"hostcokiearpgmnudlfy-_sHOSTCOKIE";
        for _ in 0..50_000 {
            let name: String = if rng.below(4) == 0 {
                let base = SKIPPED_HEADERS[rng.below(SKIPPED_HEADERS.len() as u64) as usize];
                let mut b = base.as_bytes().to_vec();
                let i = rng.below(b.len() as u64) as usize;
                b[i] = BYTES[rng.below(BYTES.len() as u64) as usize];
                String::from_utf8(b).unwrap()
            } else {
                let n = rng.below(27) as usize;
                (0..n)
                    .map(|_| char::from(BYTES[rng.below(BYTES.len() as u64) as usize]))
                    .collect()
            };
            let want = SKIPPED_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s));
            assert_eq!(skipped_header(&name), want, "{name}");
        }
    }

    #[test]
    fn broken_escapes_and_invalid_utf8() {
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(percent_decode("%ff", false), "\u{fffd}");
        assert_eq!(percent_decode("%", true), "%");
        assert_eq!(percent_decode("a+b%2B", true), "a b+");
    }
}
