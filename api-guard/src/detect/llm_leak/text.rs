//! The text a leak scan reads: the model input of a request (the prompt extraction of
//! [`super::super::prompt`]) and the generated text of a response — a whole JSON body or the
//! kept events of a stream, whose deltas are joined so that a value split across tokens reads
//! whole — and the clean-ups before classification: documented test card numbers and long
//! base64 runs (inline images, file contents) are blanked, and `password: value` shapes are
//! counted (the discovery classifier finds passwords only by field name).

use std::borrow::Cow;

use crate::{
    detect::json_scan,
    http::tap::{TapKind, TappedStream},
    http::HttpExchange,
    llm::stream_payload,
};

/// Keys whose string values are generated text in the known response shapes: OpenAI
/// `choices[].message.content` / `delta.content` / `text` / tool-call `arguments`, Anthropic
/// `content[].text` / `delta.text` / `partial_json` / `thinking`, Ollama `message.content` /
/// `response`, Gemini `candidates[].content.parts[].text`, Responses `output[].content[].text`
/// and `response.output_text.delta`'s `delta`.
const TEXT_KEYS: [&str; 10] = [
    "content",
    "text",
    "response",
    "arguments",
    "reasoning_content",
    "reasoning",
    "refusal",
    "thinking",
    "partial_json",
    "delta",
];

/// Nesting read in a response object (deeper values are not generated text).
const MAX_DEPTH: usize = 16;

fn last_key(path: &str) -> &str {
    let tail = path.rsplit('.').next().unwrap_or(path);
    // `$.a.content[2]` is an element of a list of strings, not a key of its own.
    tail.split('[').next().unwrap_or(tail)
}

/// Appends the generated text of one JSON response object (or stream event) to `out`, at
/// most `budget` bytes in all; returns whether text was left out.
fn append_generated(json: &[u8], out: &mut String, budget: usize) -> bool {
    let mut cut = false;
    json_scan::scan(json, MAX_DEPTH, |found| {
        if found.is_key || !TEXT_KEYS.contains(&last_key(found.path)) {
            return true;
        }
        // Streams echo the request's parameters and ids in a few events: never generated.
        if found.path.starts_with("$.usage") || found.path.contains(".usage.") {
            return true;
        }
        let room = budget.saturating_sub(out.len());
        if found.value.len() > room {
            out.push_str(floor_str(&found.value, room));
            cut = true;
            return false;
        }
        out.push_str(&found.value);
        true
    });
    cut
}

/// The longest prefix of `s` of at most `max` bytes ending on a character boundary.
pub(super) fn floor_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The generated text of a response, at most `budget` bytes.
pub struct Completion {
    pub text: String,
    /// Some generated text was not read: past the budget, a stream's middle events (the tap
    /// keeps only its first and last), or a body beyond the captured prefix.
    pub partial: bool,
}

/// The generated text of `ex`'s response (a JSON body or a stream of JSON events).
pub fn completion(ex: &HttpExchange, budget: usize) -> Completion {
    let mut text = String::new();
    let kind = ex
        .response_headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .and_then(|(_, v)| TapKind::for_content_type(v));
    let partial = match (kind, &ex.response_tap) {
        (Some(k @ (TapKind::Events | TapKind::Lines)), Some(tap)) => {
            stream_text(tap, k == TapKind::Events, &mut text, budget)
        }
        _ => {
            let whole =
                ex.response_body.len() as u64 == ex.response_body_bytes && !ex.response_truncated;
            let body = &ex.response_body[..];
            // A streamed JSON array (Gemini) reads the same way: every element's text.
            append_generated(body, &mut text, budget) || !whole
        }
    };
    Completion { text, partial }
}

fn stream_text(tap: &TappedStream, sse: bool, out: &mut String, budget: usize) -> bool {
    let gap = tap.skipped > tap.middle.len() as u64;
    let mut partial = gap || tap.lost;
    let records = tap
        .head
        .iter()
        .chain(tap.middle.iter())
        .map(|r| (r, false))
        .chain(tap.tail.iter().enumerate().map(|(i, r)| (r, i == 0 && gap)));
    for (record, after_gap) in records {
        if after_gap {
            // Text between the kept records is missing: keep the two sides apart.
            out.push('\n');
        }
        if record.cut {
            partial = true;
            continue;
        }
        let data = stream_payload(&record.data, sse);
        if data.first() != Some(&b'{') && data.first() != Some(&b'[') {
            continue;
        }
        if append_generated(&data, out, budget) {
            return true;
        }
    }
    partial
}

/// Well-known test card numbers from payment providers' documentation (Stripe, Braintree,
/// Adyen, PayPal): valid Luhn, printed in every integration guide and code sample, never a
/// real customer's card.
const TEST_CARDS: [&str; 16] = [
    "4111111111111111",
    "4242424242424242",
    "4012888888881881",
    "4000056655665556",
    "4000000000000002",
    "4000000000000077",
    "4222222222222",
    "5555555555554444",
    "5105105105105100",
    "5200828282828210",
    "2223003122003222",
    "378282246310005",
    "371449635398431",
    "6011111111111117",
    "6011000990139424",
    "3530111333300000",
];

/// Base64 runs at least this long (inline images, encoded files) are not text to classify:
/// random base64 can look like a phone number or a key prefix.
const MIN_BLOB: usize = 200;

/// `text` with documented test card numbers and long base64 runs blanked (same length).
pub fn scrub(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            // A card-like run: digits with single spaces or dashes between them.
            let mut digits = [0u8; 19];
            let (mut n, mut j, mut end) = (0, i, i);
            while j < b.len() && n < 19 {
                if b[j].is_ascii_digit() {
                    digits[n] = b[j];
                    n += 1;
                    j += 1;
                    end = j;
                } else if (b[j] == b' ' || b[j] == b'-')
                    && b.get(j + 1).is_some_and(u8::is_ascii_digit)
                {
                    j += 1;
                } else {
                    break;
                }
            }
            let followed = b.get(end).is_some_and(u8::is_ascii_alphanumeric);
            if !followed && TEST_CARDS.iter().any(|t| t.as_bytes() == &digits[..n]) {
                let o = out.get_or_insert_with(|| b.to_vec());
                o[i..end].fill(b' ');
            }
            i = end.max(i + 1);
            continue;
        }
        if is_b64(c) {
            let start = i;
            while i < b.len() && is_b64(b[i]) {
                i += 1;
            }
            if i - start >= MIN_BLOB {
                let o = out.get_or_insert_with(|| b.to_vec());
                o[start..i].fill(b' ');
            }
            continue;
        }
        i += 1;
    }
    match out {
        // Only ASCII bytes were replaced by spaces: still UTF-8.
        Some(v) => Cow::Owned(String::from_utf8(v).unwrap_or_default()),
        None => Cow::Borrowed(text),
    }
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'-' | b'_')
}

/// Words that introduce a password in prose or config text.
const PASSWORD_WORDS: [&str; 5] = ["password", "passwd", "passphrase", "pwd", "pass"];

/// Values that stand for a password without being one (docs, templates, code).
const PLACEHOLDERS: [&str; 16] = [
    "password",
    "passwd",
    "secret",
    "none",
    "null",
    "nil",
    "true",
    "false",
    "required",
    "string",
    "optional",
    "example",
    "changeme",
    "redacted",
    "your_password",
    "yourpassword",
];

/// `password: value` / `password=value` / `password is value` in `text`: how many.
/// A value is 6 to 128 bytes without spaces that is no placeholder, masked value (`****`,
/// `xxxx`), template (`<…>`, `${…}`, `{{…}}`, `%s`) or code (`os.environ[…]`, `get(…)`).
pub fn passwords(text: &str) -> u64 {
    let b = text.as_bytes();
    let mut n = 0;
    let mut i = 0;
    while i < b.len() {
        let Some(word) = PASSWORD_WORDS.iter().find(|w| {
            b.len() - i >= w.len() && b[i..i + w.len()].eq_ignore_ascii_case(w.as_bytes())
        }) else {
            i += 1;
            continue;
        };
        let starts = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let mut j = i + word.len();
        i = j;
        if !starts || b.get(j).is_some_and(u8::is_ascii_alphanumeric) {
            continue;
        }
        // The separator: `:`, `=`, `:=`, or ` is `, with quotes and spaces around.
        while j < b.len() && matches!(b[j], b' ' | b'"' | b'\'' | b'`') {
            j += 1;
        }
        if b[j..].starts_with(b":=") {
            j += 2;
        } else if b.get(j).is_some_and(|&c| c == b':' || c == b'=') {
            j += 1;
        } else if b.len() - j >= 3 && b[j..j + 3].eq_ignore_ascii_case(b"is ") {
            j += 3;
        } else {
            continue;
        }
        while j < b.len() && matches!(b[j], b' ' | b'"' | b'\'' | b'`') {
            j += 1;
        }
        let start = j;
        while j < b.len() && !b[j].is_ascii_whitespace() && !matches!(b[j], b'"' | b'\'' | b'`') {
            j += 1;
        }
        // A sentence's full stop or comma is not part of the value.
        let mut end = j;
        while end > start && matches!(b[end - 1], b'.' | b',' | b';') {
            end -= 1;
        }
        if is_password_value(&b[start..end]) {
            n += 1;
        }
        i = j.max(i);
    }
    n
}

fn is_password_value(v: &[u8]) -> bool {
    if v.len() < 6 || v.len() > 128 {
        return false;
    }
    if v.iter()
        .any(|c| matches!(c, b'(' | b'[' | b'{' | b'$' | b'<' | b'%' | b'\\'))
    {
        return false;
    }
    let first = v[0];
    if v.iter().all(|&c| c == first) {
        // `******`, `xxxxxx`, `......`.
        return false;
    }
    let lower = v.to_ascii_lowercase();
    if PLACEHOLDERS.iter().any(|p| lower == p.as_bytes()) {
        return false;
    }
    // A dotted identifier is code (`config.db_password`, `settings.PASSWORD`).
    let ident = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    if v.contains(&b'.')
        && v.split(|&c| c == b'.')
            .all(|p| !p.is_empty() && p.iter().all(ident))
    {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_prose_and_config_but_not_in_code_or_docs() {
        for t in [
            "my password is Tr0ub4dor&3",
            "db password: s3cr3t-P@ss!",
            "PASSWORD=hunter2hunter2",
            "login with user admin, pass = 'Sup3rS3cret'.",
            "connect with passwd:=qwerty123",
        ] {
            assert_eq!(passwords(t), 1, "{t}");
        }
        for t in [
            "password = os.environ[\"DB_PASSWORD\"]",
            "password: ********",
            "password=<your password>",
            "password: ${DB_PASSWORD}",
            "set password to something strong",
            "password: required",
            "the password field is optional",
            "passwords=12",
            "password = config.db_password",
            "passport: 123456789",
            "compass=north-east",
            "password: {{ vault_pw }}",
            "pwd: %s",
        ] {
            assert_eq!(passwords(t), 0, "{t}");
        }
    }

    #[test]
    fn scrub_blanks_test_cards_and_blobs_only() {
        let t = "pay with 4242 4242 4242 4242 or 4111-1111-1111-1111, real 4539 1488 0343 6467";
        let s = scrub(t);
        assert_eq!(s.len(), t.len());
        assert!(!s.contains("4242") && !s.contains("4111"));
        assert!(s.contains("4539 1488 0343 6467"));
        let blob = format!(
            "see data:image/png;base64,{} ok",
            "iVBORw0KGgo+12345678901".repeat(20)
        );
        let s = scrub(&blob);
        assert!(!s.contains("iVBOR") && s.ends_with(" ok"));
        assert!(matches!(scrub("nothing here 12345"), Cow::Borrowed(_)));
        // Multi-byte text around the replaced bytes stays valid.
        let s = scrub("é 4242424242424242 ü");
        assert_eq!(s, "é                  ü");
    }

    #[test]
    fn generated_text_of_bodies_and_events() {
        let mut out = String::new();
        let body = br#"{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"}}],"usage":{"prompt_tokens":1}}"#;
        assert!(!append_generated(body, &mut out, 100));
        assert_eq!(out, "Hello");
        out.clear();
        let anthropic = br#"{"type":"message","content":[{"type":"text","text":"a"},{"type":"tool_use","input":{"q":"b"}}]}"#;
        append_generated(anthropic, &mut out, 100);
        assert_eq!(out, "a");
        out.clear();
        assert!(append_generated(br#"{"response":"abcdef"}"#, &mut out, 3));
        assert_eq!(out, "abc");
    }
}
