//! A decoded HTTP/2 field section: pseudo-header fields picked out, regular fields kept
//! (bounded), and what RFC 9113 §8.2–8.3 forbids noted as anomalies, never dropped silently.

use serde::Serialize;

use crate::http::{headers::HeadersBuilder, Headers};

/// A field section property that a conforming peer never produces. Several are how
/// request smuggling through HTTP/2-to-HTTP/1 downgrades starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum H2Anomaly {
    /// A pseudo-header field after a regular field.
    PseudoAfterRegular,
    /// The same pseudo-header field twice.
    RepeatedPseudo,
    /// An unknown pseudo-header, or one of the other direction (`:status` in a request).
    InvalidPseudo,
    /// `:method`, `:scheme` or `:path` missing or empty (CONNECT aside).
    MissingPseudo,
    /// `connection`, `keep-alive`, `proxy-connection`, `transfer-encoding`, `upgrade`, or a
    /// `te` other than `trailers`.
    ConnectionSpecific,
    /// A field name with upper-case letters or characters outside the token set.
    InvalidName,
    /// A field value with CR, LF or NUL (smuggles header lines into an HTTP/1 downgrade).
    InvalidValue,
    /// `content-length` disagrees with the DATA actually sent.
    ContentLengthMismatch,
    /// The field block did not decode: HPACK error or a block beyond the size bound.
    BadFieldBlock,
}

impl H2Anomaly {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PseudoAfterRegular => "pseudo_after_regular",
            Self::RepeatedPseudo => "repeated_pseudo",
            Self::InvalidPseudo => "invalid_pseudo",
            Self::MissingPseudo => "missing_pseudo",
            Self::ConnectionSpecific => "connection_specific",
            Self::InvalidName => "invalid_name",
            Self::InvalidValue => "invalid_value",
            Self::ContentLengthMismatch => "content_length_mismatch",
            Self::BadFieldBlock => "bad_field_block",
        }
    }
}

/// Which pseudo-header fields a section may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Request,
    Response,
    Trailers,
}

/// A decoded field section.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    pub method: Option<String>,
    pub scheme: Option<String>,
    pub authority: Option<String>,
    pub path: Option<String>,
    pub status: Option<u16>,
    /// Regular fields in order, lossy UTF-8, cut off at the text bound (collected in
    /// `building` until the section is sealed).
    pub regular: Headers,
    building: HeadersBuilder,
    pub content_length: Option<u64>,
    pub content_type: Option<String>,
    pub anomalies: Vec<H2Anomaly>,
    /// Text of the fields kept (names + values), against the bound.
    text_bytes: usize,
    seen_regular: bool,
}

/// Bytes allowed in an HTTP/2 field name: RFC 9110 token characters, lower case only.
const NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_graphic()
            && !c.is_ascii_uppercase()
            && !matches!(
                c,
                b'(' | b')'
                    | b'<'
                    | b'>'
                    | b'@'
                    | b','
                    | b';'
                    | b':'
                    | b'\\'
                    | b'"'
                    | b'/'
                    | b'['
                    | b']'
                    | b'?'
                    | b'='
                    | b'{'
                    | b'}'
            );
        b += 1;
    }
    t
};

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Fields {
    pub(crate) fn note(&mut self, a: H2Anomaly) {
        if !self.anomalies.contains(&a) {
            self.anomalies.push(a);
        }
    }

    /// Takes one decoded field; `max_text` bounds the regular fields' text kept.
    pub(crate) fn add(&mut self, section: Section, name: &[u8], value: &[u8], max_text: usize) {
        if memchr::memchr3(b'\r', b'\n', 0, value).is_some() {
            self.note(H2Anomaly::InvalidValue);
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            self.pseudo(section, pseudo, value);
            return;
        }
        self.seen_regular = true;
        let valid_name = !name.is_empty() && name.iter().all(|&b| NAME_BYTE[usize::from(b)]);
        if !valid_name {
            self.note(H2Anomaly::InvalidName);
        }
        match name {
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding"
            | b"upgrade" => self.note(H2Anomaly::ConnectionSpecific),
            b"te" if !value.eq_ignore_ascii_case(b"trailers") => {
                self.note(H2Anomaly::ConnectionSpecific);
            }
            b"content-length" => {
                let parsed = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok());
                match (self.content_length, parsed) {
                    (None, Some(n)) => self.content_length = Some(n),
                    (Some(a), Some(b)) if a == b => {}
                    _ => self.note(H2Anomaly::ContentLengthMismatch),
                }
            }
            b"content-type" if self.content_type.is_none() => {
                self.content_type = Some(lossy(value))
            }
            _ => {}
        }
        let len = name.len() + value.len();
        if self.text_bytes + len <= max_text {
            self.text_bytes += len;
            self.building.push(
                String::from_utf8_lossy(name).as_bytes(),
                String::from_utf8_lossy(value).as_bytes(),
            );
        }
    }

    fn pseudo(&mut self, section: Section, pseudo: &[u8], value: &[u8]) {
        if self.seen_regular {
            self.note(H2Anomaly::PseudoAfterRegular);
        }
        let slot = match (section, pseudo) {
            (Section::Request, b"method") => &mut self.method,
            (Section::Request, b"scheme") => &mut self.scheme,
            (Section::Request, b"authority") => &mut self.authority,
            (Section::Request, b"path") => &mut self.path,
            // Extended CONNECT (RFC 8441): accepted, not kept.
            (Section::Request, b"protocol") => return,
            (Section::Response, b"status") => {
                if self.status.is_some() {
                    self.note(H2Anomaly::RepeatedPseudo);
                    return;
                }
                let status = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
                match status {
                    Some(s @ 100..=999) => self.status = Some(s),
                    _ => self.note(H2Anomaly::InvalidPseudo),
                }
                return;
            }
            _ => {
                self.note(H2Anomaly::InvalidPseudo);
                return;
            }
        };
        if slot.is_some() {
            self.note(H2Anomaly::RepeatedPseudo);
            return;
        }
        *slot = Some(lossy(value));
    }

    /// Checks what must be present once the section is complete.
    pub(crate) fn finish(&mut self, section: Section) {
        match section {
            Section::Request => {
                let connect = self.method.as_deref() == Some("CONNECT");
                let empty = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
                let missing =
                    empty(&self.method) || (!connect && (empty(&self.scheme) || empty(&self.path)));
                if missing {
                    self.note(H2Anomaly::MissingPseudo);
                }
            }
            Section::Response if self.status.is_none() => self.note(H2Anomaly::MissingPseudo),
            Section::Response | Section::Trailers => {}
        }
    }

    /// Makes [`Self::regular`] of the fields added: once the whole section is decoded.
    pub(crate) fn seal(&mut self) {
        // Lossy copies are UTF-8: the check cannot fail.
        self.regular = self.building.finish(false).unwrap_or_default();
        self.building = HeadersBuilder::default();
    }

    /// Bytes of text kept.
    pub(crate) fn text_bytes(&self) -> usize {
        self.text_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(section: Section, fields: &[(&str, &str)]) -> Fields {
        let mut f = Fields::default();
        for (n, v) in fields {
            f.add(section, n.as_bytes(), v.as_bytes(), 1000);
        }
        f.seal();
        f.finish(section);
        f
    }

    #[test]
    fn a_clean_request() {
        let f = section(
            Section::Request,
            &[
                (":method", "POST"),
                (":scheme", "https"),
                (":authority", "a.example"),
                (":path", "/x?y=1"),
                ("content-length", "5"),
                ("content-type", "application/json"),
            ],
        );
        assert!(f.anomalies.is_empty(), "{:?}", f.anomalies);
        assert_eq!(
            (f.method.as_deref(), f.path.as_deref()),
            (Some("POST"), Some("/x?y=1"))
        );
        assert_eq!((f.content_length, f.regular.len()), (Some(5), 2));
    }

    #[test]
    fn forbidden_shapes_are_noted() {
        let cases: &[(&[(&str, &str)], H2Anomaly)] = &[
            (
                &[
                    (":method", "GET"),
                    ("x", "1"),
                    (":path", "/"),
                    (":scheme", "http"),
                ],
                H2Anomaly::PseudoAfterRegular,
            ),
            (
                &[
                    (":method", "GET"),
                    (":method", "POST"),
                    (":path", "/"),
                    (":scheme", "http"),
                ],
                H2Anomaly::RepeatedPseudo,
            ),
            (
                &[
                    (":method", "GET"),
                    (":status", "200"),
                    (":path", "/"),
                    (":scheme", "http"),
                ],
                H2Anomaly::InvalidPseudo,
            ),
            (
                &[(":method", "GET"), (":scheme", "http")],
                H2Anomaly::MissingPseudo,
            ),
            (
                &[
                    (":method", "GET"),
                    (":path", "/"),
                    (":scheme", "http"),
                    ("transfer-encoding", "chunked"),
                ],
                H2Anomaly::ConnectionSpecific,
            ),
            (
                &[
                    (":method", "GET"),
                    (":path", "/"),
                    (":scheme", "http"),
                    ("te", "gzip"),
                ],
                H2Anomaly::ConnectionSpecific,
            ),
            (
                &[
                    (":method", "GET"),
                    (":path", "/"),
                    (":scheme", "http"),
                    ("X-Upper", "1"),
                ],
                H2Anomaly::InvalidName,
            ),
            (
                &[
                    (":method", "GET"),
                    (":path", "/"),
                    (":scheme", "http"),
                    ("x", "a\r\nb: c"),
                ],
                H2Anomaly::InvalidValue,
            ),
            (
                &[
                    (":method", "GET"),
                    (":path", "/"),
                    (":scheme", "http"),
                    ("content-length", "1"),
                    ("content-length", "2"),
                ],
                H2Anomaly::ContentLengthMismatch,
            ),
        ];
        for (fields, want) in cases {
            let f = section(Section::Request, fields);
            assert!(f.anomalies.contains(want), "{fields:?} → {:?}", f.anomalies);
        }
        assert!(section(
            Section::Request,
            &[(":method", "CONNECT"), (":authority", "h:443")]
        )
        .anomalies
        .is_empty());
        assert!(section(
            Section::Request,
            &[
                (":method", "GET"),
                (":path", "/"),
                (":scheme", "http"),
                ("te", "trailers")
            ]
        )
        .anomalies
        .is_empty());
    }

    #[test]
    fn response_status_and_text_bound() {
        let f = section(Section::Response, &[(":status", "204")]);
        assert_eq!((f.status, f.anomalies.len()), (Some(204), 0));
        assert_eq!(
            section(Section::Response, &[(":status", "2x")]).anomalies,
            [H2Anomaly::InvalidPseudo, H2Anomaly::MissingPseudo]
        );
        let mut f = Fields::default();
        for _ in 0..10 {
            f.add(Section::Response, b"x-long", &[b'a'; 300], 1000);
        }
        f.seal();
        assert_eq!(f.regular.len(), 3);
        assert!(f.text_bytes() <= 1000);
    }
}
