//! HTTP framing and syntax anomalies: request smuggling patterns (Content-Length /
//! Transfer-Encoding conflicts), invalid or oversized headers and bodies, header injection
//! through CR/LF in parameters, and encodings that parsers disagree on (invalid
//! percent-escapes, overlong UTF-8, NUL bytes). Stateless: each request is judged alone.
//!
//! The checks are split by what they read: [`headers`] the header list and request line,
//! [`content`] the body's declared type and multipart field names, [`encoding`] the path,
//! query and form body. Each rule reports at most once per request.

mod content;
mod encoding;
mod h2;
mod headers;

use serde::Deserialize;

use super::{
    config::{invalid, Invalid},
    finding::Finding,
    request::Request,
    rules,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtocolConfig {
    /// Run this detector (default true).
    pub enabled: bool,
    /// Request head (request line and headers) bytes above which `protocol.oversized_headers`
    /// fires (default 16384).
    pub max_header_bytes: u64,
    /// Header count above which `protocol.oversized_headers` fires (default 100).
    pub max_headers: usize,
    /// Body bytes (received or declared) above which `protocol.oversized_body` fires
    /// (default 10 MiB).
    pub max_body_bytes: u64,
    /// Byte ranges in one `Range` header above which `protocol.invalid_range` fires
    /// (default 5: more is how range-amplification attacks look).
    pub max_ranges: usize,
    /// Query plus form parameters above which `protocol.too_many_args` fires (default 255).
    pub max_args: usize,
    /// Parameter name bytes above which `protocol.arg_name_too_long` fires (default 100).
    pub max_arg_name_bytes: usize,
    /// Report a `Host` that is a numeric IP address (`protocol.host_ip`, low; default false:
    /// inside clusters services and health checks call each other by address all the time;
    /// turn it on for an edge where browsers and bots are the only clients).
    pub flag_ip_host: bool,
    /// Methods accepted besides the standard and WebDAV ones (default none), e.g. `PURGE`.
    pub extra_methods: Vec<String>,
    /// Request headers that should never reach an API (`protocol.restricted_header`),
    /// compared case-insensitively. Default: `proxy` (httpoxy), `lock-token`, `if` (WebDAV
    /// locking). `content-range` is not in it: resumable-upload APIs use it.
    pub restricted_headers: Vec<String>,
    /// Charsets accepted in `Content-Type` and `Accept` (lower case). Default: `utf-8`,
    /// `us-ascii`, `iso-8859-1`, `iso-8859-15`, `windows-1252`; anything else (e.g. EBCDIC
    /// `ibm037`, `utf-7`) is how bodies are hidden from inspection.
    pub allowed_charsets: Vec<String>,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_body_bytes: 10 << 20,
            max_ranges: 5,
            max_args: 255,
            max_arg_name_bytes: 100,
            flag_ip_host: false,
            extra_methods: Vec::new(),
            restricted_headers: ["proxy", "lock-token", "if"].map(String::from).to_vec(),
            allowed_charsets: [
                "utf-8",
                "us-ascii",
                "iso-8859-1",
                "iso-8859-15",
                "windows-1252",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl ProtocolConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        let positive = [
            ("max_header_bytes", self.max_header_bytes),
            ("max_headers", self.max_headers as u64),
            ("max_body_bytes", self.max_body_bytes),
            ("max_ranges", self.max_ranges as u64),
            ("max_args", self.max_args as u64),
            ("max_arg_name_bytes", self.max_arg_name_bytes as u64),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(invalid(
                    format!("detect.protocol.{name}"),
                    "must be at least 1",
                ));
            }
        }
        for m in &self.extra_methods {
            if m.is_empty() || !m.bytes().all(headers::is_tchar) {
                return Err(invalid(
                    "detect.protocol.extra_methods",
                    format!("`{m}` is not an HTTP method token"),
                ));
            }
        }
        for h in &self.restricted_headers {
            if h.is_empty() || !h.bytes().all(headers::is_tchar) {
                return Err(invalid(
                    "detect.protocol.restricted_headers",
                    format!("`{h}` is not a header name"),
                ));
            }
        }
        if self.allowed_charsets.iter().any(|c| c.trim().is_empty()) {
            return Err(invalid(
                "detect.protocol.allowed_charsets",
                "charset names must not be empty",
            ));
        }
        Ok(())
    }
}

pub struct ProtocolDetector {
    config: ProtocolConfig,
}

impl ProtocolDetector {
    pub fn new(config: &ProtocolConfig) -> Result<Self, Invalid> {
        config.validate()?;
        let mut config = config.clone();
        for c in &mut config.allowed_charsets {
            *c = c.trim().to_ascii_lowercase();
        }
        Ok(Self { config })
    }

    /// Checks the request's framing (stateless).
    pub fn inspect_request(&self, req: &Request<'_>, out: &mut Vec<Finding>) {
        let mut r = Report { out, seen: 0 };
        if req.request_line_invalid {
            // Servers stop at such a line (400, 505): the rest was never read as headers,
            // and a live capture has none to judge.
            r.add(Rule::InvalidRequestLine, "request_line", req.method);
            return;
        }
        headers::check(req, &self.config, &mut r);
        h2::check(req, &mut r);
        content::check(req, &self.config, &mut r);
        encoding::check(req, &self.config, &mut r);
    }
}

/// Every rule of this detector, so each can report once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Rule {
    ClTe,
    DuplicateCl,
    InvalidCl,
    TeObfuscated,
    TeHttp10,
    InvalidHeaderName,
    InvalidHeaderValue,
    HeaderInjection,
    OversizedHeaders,
    OversizedBody,
    GetWithBody,
    MethodUnknown,
    MethodOverride,
    HostMissing,
    HostInvalid,
    HostIp,
    MultipleHost,
    InvalidRange,
    RequestRange,
    ConnectionConflict,
    RestrictedHeader,
    CookieV1,
    EncodingAbuse,
    DoubleEncoding,
    NullByte,
    ControlChar,
    TooManyArgs,
    ArgNameTooLong,
    MultipleContentType,
    ContentTypeInvalid,
    ContentTypeMissing,
    ContentTypeConfusion,
    Charset,
    AcceptCharset,
    MultipartName,
    UnixSocketTarget,
    H2PseudoHeaders,
    H2ConnectionHeader,
    H2ContentLength,
    H2cUpgrade,
    AcceptEncodingInvalid,
    EmptyHeader,
    InvalidTarget,
    InvalidRequestLine,
    UnframedBody,
    ContentRangeInvalid,
    ContentEncodingWithoutBody,
    HostLocal,
}

impl Rule {
    /// This rule's catalogue entry.
    fn entry(self) -> &'static rules::Rule {
        match self {
            Rule::ClTe => &rules::PROTOCOL_CL_TE,
            Rule::DuplicateCl => &rules::PROTOCOL_DUPLICATE_CL,
            Rule::InvalidCl => &rules::PROTOCOL_INVALID_CL,
            Rule::TeObfuscated => &rules::PROTOCOL_TE_OBFUSCATED,
            Rule::TeHttp10 => &rules::PROTOCOL_TE_HTTP10,
            Rule::InvalidHeaderName => &rules::PROTOCOL_INVALID_HEADER_NAME,
            Rule::InvalidHeaderValue => &rules::PROTOCOL_INVALID_HEADER_VALUE,
            Rule::HeaderInjection => &rules::PROTOCOL_HEADER_INJECTION,
            Rule::OversizedHeaders => &rules::PROTOCOL_OVERSIZED_HEADERS,
            Rule::OversizedBody => &rules::PROTOCOL_OVERSIZED_BODY,
            Rule::GetWithBody => &rules::PROTOCOL_GET_WITH_BODY,
            Rule::MethodUnknown => &rules::PROTOCOL_METHOD_UNKNOWN,
            Rule::MethodOverride => &rules::PROTOCOL_METHOD_OVERRIDE,
            Rule::HostMissing => &rules::PROTOCOL_HOST_MISSING,
            Rule::HostInvalid => &rules::PROTOCOL_HOST_INVALID,
            Rule::HostIp => &rules::PROTOCOL_HOST_IP,
            Rule::MultipleHost => &rules::PROTOCOL_MULTIPLE_HOST,
            Rule::InvalidRange => &rules::PROTOCOL_INVALID_RANGE,
            Rule::RequestRange => &rules::PROTOCOL_REQUEST_RANGE,
            Rule::ConnectionConflict => &rules::PROTOCOL_CONNECTION_CONFLICT,
            Rule::RestrictedHeader => &rules::PROTOCOL_RESTRICTED_HEADER,
            Rule::CookieV1 => &rules::PROTOCOL_COOKIE_V1,
            Rule::EncodingAbuse => &rules::PROTOCOL_ENCODING_ABUSE,
            Rule::DoubleEncoding => &rules::PROTOCOL_DOUBLE_ENCODING,
            Rule::NullByte => &rules::PROTOCOL_NULL_BYTE,
            Rule::ControlChar => &rules::PROTOCOL_CONTROL_CHAR,
            Rule::TooManyArgs => &rules::PROTOCOL_TOO_MANY_ARGS,
            Rule::ArgNameTooLong => &rules::PROTOCOL_ARG_NAME_TOO_LONG,
            Rule::MultipleContentType => &rules::PROTOCOL_MULTIPLE_CONTENT_TYPE,
            Rule::ContentTypeInvalid => &rules::PROTOCOL_CONTENT_TYPE_INVALID,
            Rule::ContentTypeMissing => &rules::PROTOCOL_CONTENT_TYPE_MISSING,
            Rule::ContentTypeConfusion => &rules::PROTOCOL_CONTENT_TYPE_CONFUSION,
            Rule::Charset => &rules::PROTOCOL_CHARSET,
            Rule::AcceptCharset => &rules::PROTOCOL_ACCEPT_CHARSET,
            Rule::MultipartName => &rules::PROTOCOL_MULTIPART_NAME,
            Rule::UnixSocketTarget => &rules::PROTOCOL_UNIX_SOCKET_TARGET,
            Rule::H2PseudoHeaders => &rules::PROTOCOL_H2_PSEUDO_HEADERS,
            Rule::H2ConnectionHeader => &rules::PROTOCOL_H2_CONNECTION_HEADER,
            Rule::H2ContentLength => &rules::PROTOCOL_H2_CONTENT_LENGTH,
            Rule::H2cUpgrade => &rules::PROTOCOL_H2C_UPGRADE,
            Rule::AcceptEncodingInvalid => &rules::PROTOCOL_ACCEPT_ENCODING_INVALID,
            Rule::EmptyHeader => &rules::PROTOCOL_EMPTY_HEADER,
            Rule::InvalidTarget => &rules::PROTOCOL_INVALID_TARGET,
            Rule::InvalidRequestLine => &rules::PROTOCOL_INVALID_REQUEST_LINE,
            Rule::UnframedBody => &rules::PROTOCOL_UNFRAMED_BODY,
            Rule::ContentRangeInvalid => &rules::PROTOCOL_CONTENT_RANGE_INVALID,
            Rule::ContentEncodingWithoutBody => &rules::PROTOCOL_CONTENT_ENCODING_WITHOUT_BODY,
            Rule::HostLocal => &rules::PROTOCOL_HOST_LOCAL,
        }
    }
}

/// Collects findings, one per rule.
struct Report<'o> {
    out: &'o mut Vec<Finding>,
    /// Bit per [`Rule`] already reported.
    seen: u64,
}

impl Report<'_> {
    fn has(&self, rule: Rule) -> bool {
        self.seen & (1 << rule as u8) != 0
    }

    fn add(&mut self, rule: Rule, location: impl Into<String>, evidence: &str) {
        if self.has(rule) {
            return;
        }
        self.seen |= 1 << rule as u8;
        self.out
            .push(Finding::new(rule.entry(), location, evidence));
    }
}

/// `header:<name>` with the name lower-cased and bounded.
fn header_location(name: &str) -> String {
    let mut s = String::with_capacity(7 + name.len().min(64));
    s.push_str("header:");
    for c in name.chars().take(64) {
        if c.is_control() {
            s.extend(c.escape_default());
        } else {
            s.extend(c.to_lowercase());
        }
    }
    s
}

/// A short excerpt of `s` around byte `at` (for evidence; Finding::new bounds it again).
fn around(s: &str, at: usize) -> &str {
    let mut start = at.saturating_sub(16).min(s.len());
    while !s.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + 48).min(s.len());
    while !s.is_char_boundary(end) {
        end += 1;
    }
    &s[start..end]
}

#[cfg(test)]
mod tests;
