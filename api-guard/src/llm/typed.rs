//! A typed reading of OpenAI-compatible chat / completions objects (the bulk of LLM streams):
//! borrowed strings and skipped values instead of a `serde_json::Value` tree, so an event
//! costs no allocation beyond the model name. It reads exactly what [`stream::read`] reads;
//! an object of any other shape (a field of an unexpected type, a duplicate key) is not
//! read here (`None`), and the caller falls back to the generic reading, so both always
//! agree.

use std::borrow::Cow;

use serde::de::{IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};

use super::{
    request::push_name,
    safe_name,
    stream::{Info, UsagePatch},
    Flavour, MAX_MODEL_LEN,
};

/// A JSON string, borrowed from the input unless it has escapes (serde's own `Cow<str>`
/// always copies when it sits in an `Option`).
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(s))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(s.to_owned()))
            }
        }
        d.deserialize_str(V).map(Str)
    }
}

#[derive(Deserialize)]
struct Object<'a> {
    #[serde(borrow, default)]
    model: Option<Str<'a>>,
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    finish_reason: Option<IgnoredAny>,
    #[serde(borrow, default)]
    text: Option<Str<'a>>,
    #[serde(borrow, default)]
    delta: Option<Part<'a>>,
    #[serde(borrow, default)]
    message: Option<Part<'a>>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default)]
    content: Option<Str<'a>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Str<'a>>,
    #[serde(borrow, default)]
    reasoning: Option<Str<'a>>,
    #[serde(borrow, default)]
    refusal: Option<Str<'a>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    name: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<Cached>,
    #[serde(default)]
    input_tokens_details: Option<Cached>,
    #[serde(default)]
    completion_tokens_details: Option<Reasoning>,
    #[serde(default)]
    output_tokens_details: Option<Reasoning>,
}

#[derive(Deserialize)]
struct Cached {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Reasoning {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

fn chars(s: Option<&Str<'_>>) -> u64 {
    s.map_or(0, |s| s.0.chars().count() as u64)
}

/// The facts of one OpenAI-compatible chat / completions / embeddings object in `data`, or
/// `None` when this reading does not apply (other flavours, other shapes: read generically).
pub fn read(flavour: Flavour, data: &[u8], tools: &mut Vec<String>) -> Option<Info> {
    if !matches!(
        flavour,
        Flavour::OpenaiChat | Flavour::OpenaiCompletions | Flavour::OpenaiEmbeddings
    ) {
        return None;
    }
    // An object only (a derived struct would also read an array).
    let first = data.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    let obj: Object<'_> = serde_json::from_slice(data).ok()?;
    let mut info = Info {
        model: obj.model.map(|m| safe_name(&m.0, MAX_MODEL_LEN)),
        ..Info::default()
    };
    if let Some(u) = obj.usage {
        let patch = UsagePatch {
            prompt: u.prompt_tokens.or(u.input_tokens),
            completion: u.completion_tokens.or(u.output_tokens),
            cached: u
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .or_else(|| u.input_tokens_details.and_then(|d| d.cached_tokens)),
            reasoning: u
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .or_else(|| u.output_tokens_details.and_then(|d| d.reasoning_tokens)),
        };
        info.usage = (patch != UsagePatch::default()).then_some(patch);
    }
    for choice in obj.choices.into_iter().flatten() {
        info.done |= choice.finish_reason.is_some();
        let mut n = chars(choice.text.as_ref());
        let mut calls = false;
        for part in [&choice.delta, &choice.message].into_iter().flatten() {
            n += [
                &part.content,
                &part.reasoning_content,
                &part.reasoning,
                &part.refusal,
            ]
            .into_iter()
            .map(|s| chars(s.as_ref()))
            .sum::<u64>();
            for call in part.tool_calls.iter().flatten() {
                calls = true;
                if let Some(name) = call.function.as_ref().and_then(|f| f.name.as_ref()) {
                    push_name(tools, &name.0);
                }
            }
        }
        info.text_chars += n;
        info.content |= n > 0 || calls;
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::stream;
    use serde_json::Value;

    /// The typed reading gives what the generic one gives, or declines.
    fn same(flavour: Flavour, data: &str) -> bool {
        let mut t1 = Vec::new();
        let typed = read(flavour, data.as_bytes(), &mut t1);
        let mut t2 = Vec::new();
        let v: Value = serde_json::from_str(data).unwrap();
        let generic = stream::read(flavour, &v, &mut t2);
        let Some(typed) = typed else {
            return false;
        };
        assert_eq!(
            (
                &typed.model,
                typed.content,
                typed.text_chars,
                typed.usage,
                typed.done
            ),
            (
                &generic.model,
                generic.content,
                generic.text_chars,
                generic.usage,
                generic.done
            ),
            "{data}"
        );
        assert_eq!(t1, t2, "{data}");
        true
    }

    #[test]
    fn agrees_with_the_generic_reading() {
        let read_here = [
            r#"{"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            r#"{"model":"m\u00e9/x","choices":[{"delta":{"content":"h\u00e9llo \"q\""},"finish_reason":null}]}"#,
            r#"{"model":"m","choices":[{"delta":{},"finish_reason":"length"}],"usage":null}"#,
            r#"{"model":"m","choices":[],"usage":{"prompt_tokens":42,"total_tokens":242,"completion_tokens":200,"prompt_tokens_details":{"cached_tokens":7},"completion_tokens_details":{"reasoning_tokens":3}}}"#,
            r#"{"model":"m","choices":[{"delta":{"tool_calls":[{"index":0,"id":"x","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"#,
            r#"{"model":"m","choices":[{"delta":{"tool_calls":[]},"finish_reason":null}]}"#,
            r#"{"model":"m","choices":[{"text":"abc","finish_reason":"stop"}],"usage":{"input_tokens":1,"output_tokens":2,"input_tokens_details":{"cached_tokens":1},"output_tokens_details":{"reasoning_tokens":0}}}"#,
            r#"{"model":"m","choices":[{"message":{"role":"assistant","content":null,"reasoning_content":"hmm","refusal":null}}],"usage":{}}"#,
            r#"{"object":"list","data":[{"embedding":[0.1]}],"model":"e","usage":{"prompt_tokens":8,"total_tokens":8}}"#,
            r#"{"choices":null,"usage":null,"model":null}"#,
            "{}",
        ];
        for data in read_here {
            assert!(same(Flavour::OpenaiChat, data), "declined: {data}");
        }
        // Shapes it leaves to the generic reading.
        for data in [
            r#"{"model":"m","choices":[{"delta":{"content":["part"]}}]}"#,
            r#"{"model":"m","usage":{"prompt_tokens":1.5}}"#,
            r#"{"model":"m","usage":"none"}"#,
            r#"{"model":"m","model":"n"}"#,
            r#"{"model":"m","choices":{"0":{}}}"#,
            "[1]",
            r#"["m"]"#,
        ] {
            assert!(!same(Flavour::OpenaiChat, data), "read: {data}");
        }
        assert!(read(Flavour::AnthropicMessages, b"{}", &mut Vec::new()).is_none());
    }
}
