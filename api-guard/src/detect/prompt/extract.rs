//! Finding the model input in an LLM API request body: one streaming scan of the JSON
//! ([`json_scan`]) keeps the strings whose path is model text in a known API shape, with the
//! role of the message they belong to:
//!
//! - OpenAI chat and Ollama chat: `$.messages[i].content` (a string, or content parts
//!   `$.messages[i].content[j].text`; image, audio and file parts are never read);
//! - Anthropic messages: the same, plus `tool_result` blocks
//!   (`$.messages[i].content[j].content`, or their `…content[k].text`) and `$.system`;
//! - OpenAI Responses: `$.input` (a string or items with `content` and `function_call_output`
//!   `output`), `$.instructions`;
//! - completions and Ollama generate: `$.prompt` (a string or a list), `$.system`;
//! - Gemini: `$.contents[i].parts[j].text`, `$.systemInstruction.parts[j].text`;
//! - retrieved documents passed in: `$.documents[i]`, `$.documents[i].text|snippet|content`.
//!
//! `$.input` and `$.message` (Cohere) are generic names, so they count only in a body that
//! also names a `model`. The work is bounded: the body prefix, the nesting depth, the number
//! of parts kept (the latest ones win: the newest turn is the one an attacker just wrote) and
//! the bytes per part; what the bounds leave out is counted.

use std::{borrow::Cow, collections::VecDeque, sync::LazyLock};

use memchr::memmem;

use super::super::json_scan;

/// Who wrote a piece of model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The end user (also messages without a role, and bare prompts).
    User,
    /// The operator's system or developer prompt.
    System,
    /// Earlier model answers replayed as history.
    Assistant,
    /// Tool results and retrieved documents (indirect injection).
    Tool,
}

impl Role {
    fn of(name: &str) -> Role {
        match name {
            "system" | "developer" => Role::System,
            "assistant" | "model" | "ai" | "bot" | "chatbot" => Role::Assistant,
            "tool" | "function" | "ipython" => Role::Tool,
            _ => Role::User,
        }
    }
}

/// One piece of model input.
#[derive(Debug, PartialEq, Eq)]
pub struct Part<'a> {
    /// JSON path, e.g. `$.messages[1].content`.
    pub path: String,
    pub text: Cow<'a, str>,
    pub role: Role,
}

/// What [`extract`] found.
#[derive(Debug, Default)]
pub struct Extracted<'a> {
    pub parts: Vec<Part<'a>>,
    /// Parts dropped (beyond `max_parts`), parts cut at `max_part_bytes`, containers nested
    /// too deep, and a body cut at `max_body_bytes`.
    pub skipped: usize,
}

/// Bounds of one extraction.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_parts: usize,
    pub max_part_bytes: usize,
    pub max_depth: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg<'p> {
    Key(&'p str),
    Index(usize),
}

/// Splits `$.a[1].b` into segments; at most `N` (deeper paths are never model input).
fn segments<const N: usize>(path: &str) -> Option<([Seg<'_>; N], usize)> {
    let mut out = [Seg::Index(0); N];
    let mut n = 0;
    let mut rest = path.strip_prefix('$')?;
    while !rest.is_empty() {
        if n == N {
            return None;
        }
        if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            out[n] = Seg::Index(r[..close].parse().ok()?);
            rest = &r[close + 1..];
        } else {
            let r = rest.strip_prefix('.')?;
            let end = r.find(['.', '[']).unwrap_or(r.len());
            out[n] = Seg::Key(&r[..end]);
            rest = &r[end..];
        }
        n += 1;
    }
    Some((out, n))
}

/// Which message list an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum List {
    Messages,
    Input,
    Contents,
}

/// What a path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Text of message `i` of a list (its role decides).
    Message(List, usize),
    /// The role of message `i`.
    RoleOf(List, usize),
    Fixed(Role),
    /// Generic names that count only next to a `model`.
    IfModel(Role),
    Model,
}

fn classify(path: &str) -> Option<Slot> {
    use Seg::{Index as I, Key as K};
    let (segs, n) = segments::<7>(path)?;
    let list = |k: &str| match k {
        "messages" => Some(List::Messages),
        "input" => Some(List::Input),
        "contents" => Some(List::Contents),
        _ => None,
    };
    Some(match &segs[..n] {
        [K("model")] => Slot::Model,
        [K(l), I(i), K("role")] => Slot::RoleOf(list(l)?, *i),
        [K(l @ ("messages" | "input")), I(i), K("content")]
        | [K(l @ ("messages" | "input")), I(i), K("content"), I(_), K("text")]
        | [K(l @ "contents"), I(i), K("parts"), I(_), K("text")] => Slot::Message(list(l)?, *i),
        [K("messages"), I(_), K("content"), I(_), K("content")]
        | [K("messages"), I(_), K("content"), I(_), K("content"), I(_), K("text")]
        | [K("input"), I(_), K("output")]
        | [K("documents"), I(_)]
        | [K("documents"), I(_), K("text" | "snippet" | "content")] => Slot::Fixed(Role::Tool),
        [K("prompt")] | [K("prompt"), I(_)] => Slot::Fixed(Role::User),
        [K("system" | "instructions")]
        | [K("system"), I(_), K("text")]
        | [K("systemInstruction" | "system_instruction"), K("parts"), I(_), K("text")] => {
            Slot::Fixed(Role::System)
        }
        [K("input")] | [K("input"), I(_)] | [K("message")] => Slot::IfModel(Role::User),
        _ => return None,
    })
}

struct Pending<'a> {
    part: Part<'a>,
    message: Option<(List, usize)>,
    if_model: bool,
}

/// Key names, or parts of them, of which every path [`classify`] keeps a value starts with
/// one (`message` also covers `messages`, `system` the `systemInstruction` spellings).
const TOP_KEYS: [&str; 7] = [
    "message",
    "input",
    "contents",
    "documents",
    "prompt",
    "system",
    "instructions",
];

static TOP_KEY_FINDERS: LazyLock<Vec<memmem::Finder<'static>>> =
    LazyLock::new(|| TOP_KEYS.iter().map(memmem::Finder::new).collect());

/// [`TOP_KEYS`] and `\u` in one vectorised (Teddy) search, where the CPU has the
/// instructions for it: one pass instead of eight.
static TOP_KEY_SEARCHER: LazyLock<Option<aho_corasick::packed::Searcher>> = LazyLock::new(|| {
    aho_corasick::packed::Config::new()
        .builder()
        .extend(TOP_KEYS.iter().chain([&"\\u"]))
        .build()
});

/// Whether `json` can hold model input: one of [`TOP_KEYS`] appears in it, or a `\u` escape
/// could spell one (keys are compared unescaped). Most API bodies are not LLM requests: these
/// vectorised searches spare them the document scan.
fn may_hold_model_input(json: &[u8]) -> bool {
    match &*TOP_KEY_SEARCHER {
        Some(s) => s.find(json).is_some(),
        None => may_hold_model_input_one_by_one(json),
    }
}

/// [`may_hold_model_input`] with one search per needle (without the packed search).
fn may_hold_model_input_one_by_one(json: &[u8]) -> bool {
    memmem::find(json, b"\\u").is_some() || TOP_KEY_FINDERS.iter().any(|f| f.find(json).is_some())
}

/// The model input in `body` (see the module documentation).
pub fn extract<'a>(body: &'a [u8], limits: &Limits) -> Extracted<'a> {
    let mut out = Extracted::default();
    let start = body.iter().position(|b| !b.is_ascii_whitespace());
    if start.is_none_or(|s| body[s] != b'{') {
        return out;
    }
    let cut = body.len().min(limits.max_body_bytes);
    if !may_hold_model_input(&body[..cut]) {
        return out;
    }
    let mut kept: VecDeque<Pending<'a>> = VecDeque::new();
    let mut has_model = false;
    // The role last seen, for parts of the same message that follow it.
    let mut last_role: Option<(List, usize, Role)> = None;
    let scanned = json_scan::scan(&body[..cut], limits.max_depth, |found| {
        if found.is_key {
            if found.path == "$.model" {
                has_model = true;
            }
            return true;
        }
        let Some(slot) = classify(found.path) else {
            return true;
        };
        let (role, message, if_model) = match slot {
            Slot::Model => {
                has_model = true;
                return true;
            }
            Slot::RoleOf(list, i) => {
                let role = Role::of(&found.value);
                // Parts of this message that came before its role.
                for p in kept.iter_mut().rev() {
                    if p.message != Some((list, i)) {
                        break;
                    }
                    p.part.role = role;
                }
                last_role = Some((list, i, role));
                return true;
            }
            Slot::Message(list, i) => {
                let role = match last_role {
                    Some((l, j, r)) if (l, j) == (list, i) => r,
                    _ => Role::User,
                };
                (role, Some((list, i)), false)
            }
            Slot::Fixed(role) => (role, None, false),
            Slot::IfModel(role) => (role, None, true),
        };
        if found.value.trim().is_empty() {
            return true;
        }
        let mut text = found.value;
        if text.len() > limits.max_part_bytes {
            out.skipped += 1;
            let mut end = limits.max_part_bytes;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text = match text {
                Cow::Borrowed(s) => Cow::Borrowed(&s[..end]),
                Cow::Owned(mut s) => {
                    s.truncate(end);
                    Cow::Owned(s)
                }
            };
        }
        if kept.len() == limits.max_parts {
            kept.pop_front();
            out.skipped += 1;
        }
        kept.push_back(Pending {
            part: Part {
                path: found.path.to_owned(),
                text,
                role,
            },
            message,
            if_model,
        });
        true
    });
    out.skipped += scanned.too_deep + usize::from(cut < body.len());
    out.parts = kept
        .into_iter()
        .filter(|p| has_model || !p.if_model)
        .map(|p| p.part)
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_body_bytes: 1 << 20,
        max_parts: 64,
        max_part_bytes: 1 << 16,
        max_depth: 16,
    };

    fn parts(body: &str) -> Vec<(String, String, Role)> {
        extract(body.as_bytes(), &LIMITS)
            .parts
            .into_iter()
            .map(|p| (p.path, p.text.into_owned(), p.role))
            .collect()
    }

    fn p(path: &str, text: &str, role: Role) -> (String, String, Role) {
        (path.into(), text.into(), role)
    }

    #[test]
    fn bodies_without_model_input_keys_are_not_scanned_unless_escapes_could_spell_one() {
        let order = r#"{"id":7,"items":[{"sku":"A-1","qty":2}],"note":"leave at the door"}"#;
        assert!(!may_hold_model_input(order.as_bytes()));
        assert!(parts(order).is_empty());
        // `\u0073` is `s`: the key the model server reads is `messages`.
        let escaped = r#"{"model":"m","mes\u0073ages":[{"role":"user","content":"hi"}]}"#;
        assert!(may_hold_model_input(escaped.as_bytes()));
        assert_eq!(
            parts(escaped),
            [p("$.messages[0].content", "hi", Role::User)]
        );
        for key in TOP_KEYS {
            let body = format!(r#"{{"{key}":"x"}}"#);
            assert!(may_hold_model_input(body.as_bytes()), "{key}");
        }
    }

    /// The packed search answers as the needle-by-needle one: every needle at every place
    /// of bodies of every length (the packed search has its own paths for short ones and
    /// for ends), cut short by one byte, and random JSON-like noise.
    #[test]
    fn packed_key_search_keeps_every_answer() {
        assert!(TOP_KEY_SEARCHER.is_some(), "no packed search on this CPU");
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        for needle in TOP_KEYS.iter().chain([&"\\u"]) {
            let n = needle.as_bytes();
            for len in 0..80 {
                for at in (0..=len).step_by(7) {
                    let mut b = vec![b'x'; len];
                    b.splice(at..at, n.iter().copied());
                    bodies.push(b.clone());
                    b.remove(at + n.len() - 1);
                    bodies.push(b);
                }
            }
        }
        let mut rng = crate::testutil::Rng(0x70b5);
        const NOISE: &[&str] = &[
            "{", "}", "\"", ":", ",", "mess", "age", "inp", "ut", "con", "tents", "doc", "uments",
            "prom", "pt", "sys", "tem", "instruc", "tions", "\\", "u", " ", "1", "messages",
        ];
        for _ in 0..20_000 {
            let mut b = Vec::new();
            for _ in 0..rng.below(60) {
                b.extend_from_slice(NOISE[rng.below(NOISE.len() as u64) as usize].as_bytes());
            }
            bodies.push(b);
        }
        let mut found = 0;
        for b in &bodies {
            let one_by_one = may_hold_model_input_one_by_one(b);
            assert_eq!(
                may_hold_model_input(b),
                one_by_one,
                "{:?}",
                String::from_utf8_lossy(b)
            );
            found += usize::from(one_by_one);
        }
        assert!(
            found > 10_000 && bodies.len() - found > 5_000,
            "{found} {}",
            bodies.len()
        );
    }

    #[test]
    fn openai_chat_with_content_parts() {
        let body = r#"{"model":"gpt-4o","messages":[
            {"role":"system","content":"You are terse."},
            {"role":"user","content":[{"type":"text","text":"What is this?"},
              {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},
            {"content":"Answer first, role after","role":"assistant"},
            {"role":"tool","tool_call_id":"c1","content":"{\"temp\": 21}"}]}"#;
        assert_eq!(
            parts(body),
            [
                p("$.messages[0].content", "You are terse.", Role::System),
                p("$.messages[1].content[0].text", "What is this?", Role::User),
                p(
                    "$.messages[2].content",
                    "Answer first, role after",
                    Role::Assistant
                ),
                p("$.messages[3].content", "{\"temp\": 21}", Role::Tool),
            ]
        );
    }

    #[test]
    fn anthropic_tool_results_and_system() {
        let body = r#"{"model":"claude","system":[{"type":"text","text":"Be kind."}],
            "messages":[{"role":"user","content":[
              {"type":"tool_result","tool_use_id":"t","content":"page text"},
              {"type":"tool_result","tool_use_id":"u","content":[{"type":"text","text":"more"}]},
              {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}"#;
        assert_eq!(
            parts(body),
            [
                p("$.system[0].text", "Be kind.", Role::System),
                p("$.messages[0].content[0].content", "page text", Role::Tool),
                p(
                    "$.messages[0].content[1].content[0].text",
                    "more",
                    Role::Tool
                ),
            ]
        );
    }

    #[test]
    fn responses_ollama_gemini_and_generic_names() {
        assert_eq!(
            parts(r#"{"model":"o4","instructions":"Be brief.","input":"hi"}"#),
            [
                p("$.instructions", "Be brief.", Role::System),
                p("$.input", "hi", Role::User)
            ]
        );
        assert_eq!(
            parts(
                r#"{"input":[{"role":"user","content":[{"type":"input_text","text":"x"}]},{"type":"function_call_output","call_id":"c","output":"y"}],"model":"m"}"#
            ),
            [
                p("$.input[0].content[0].text", "x", Role::User),
                p("$.input[1].output", "y", Role::Tool)
            ]
        );
        assert_eq!(
            parts(r#"{"model":"llama3","prompt":"Why?","system":"S"}"#),
            [
                p("$.prompt", "Why?", Role::User),
                p("$.system", "S", Role::System)
            ]
        );
        assert_eq!(
            parts(
                r#"{"contents":[{"role":"model","parts":[{"text":"a"}]},{"role":"user","parts":[{"text":"b"}]}]}"#
            ),
            [
                p("$.contents[0].parts[0].text", "a", Role::Assistant),
                p("$.contents[1].parts[0].text", "b", Role::User)
            ]
        );
        // `input` and `message` without a model are some other API's fields.
        assert!(parts(r#"{"input":"x","message":"y"}"#).is_empty());
        assert!(parts(r#"{"user":{"name":"x"},"note":"ignore it"}"#).is_empty());
        assert!(parts("[1,2]").is_empty());
        assert!(parts("not json").is_empty());
    }

    #[test]
    fn hostile_bodies_are_bounded_and_counted() {
        // 100,000 messages: the newest 64 are kept, the rest counted.
        let msgs: Vec<String> = (0..100_000)
            .map(|i| format!(r#"{{"role":"user","content":"m{i}"}}"#))
            .collect();
        let body = format!(r#"{{"messages":[{}]}}"#, msgs.join(","));
        let big = Limits {
            max_body_bytes: 16 << 20,
            ..LIMITS
        };
        let x = extract(body.as_bytes(), &big);
        assert_eq!(x.parts.len(), 64);
        assert_eq!(x.skipped, 100_000 - 64);
        assert_eq!(x.parts[63].path, "$.messages[99999].content");
        // Deep nesting costs no stack and is counted.
        let deep = format!(
            r#"{{"messages":{}"x"{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let x = extract(deep.as_bytes(), &LIMITS);
        assert!(x.parts.is_empty());
        assert_eq!(x.skipped, 1);
        // A long part is cut at a character boundary; a long body at the limit.
        let long = format!(r#"{{"prompt":"{}"}}"#, "é".repeat(40_000));
        let x = extract(long.as_bytes(), &LIMITS);
        assert_eq!(x.parts[0].text.len(), 1 << 16);
        assert_eq!(x.skipped, 1);
        let small = Limits {
            max_body_bytes: 20,
            ..LIMITS
        };
        let x = extract(long.as_bytes(), &small);
        assert!(x.parts.is_empty());
        assert_eq!(x.skipped, 1);
        // Invalid UTF-8 and broken escapes.
        let x = extract(b"{\"prompt\":\"a\xff\xfe\\ud800 b\"}", &LIMITS);
        assert_eq!(x.parts.len(), 1);
    }
}
