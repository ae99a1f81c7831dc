//! Facts of one response object or stream event, per flavour: the model it names, whether it
//! carries content, the tools it calls and the usage it reports. Streams and whole bodies go
//! through the same reading, so a stream and its non-streamed twin agree.

use serde_json::Value;

use super::{request::push_name, safe_name, Flavour, MAX_MODEL_LEN};

/// Usage fields one report carries; a later report overrides the fields it has (Anthropic's
/// `message_delta` counts are cumulative: replacing never sums twice).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsagePatch {
    pub prompt: Option<u64>,
    pub completion: Option<u64>,
    pub cached: Option<u64>,
    pub reasoning: Option<u64>,
}

impl UsagePatch {
    pub fn apply(&mut self, later: UsagePatch) {
        self.prompt = later.prompt.or(self.prompt);
        self.completion = later.completion.or(self.completion);
        self.cached = later.cached.or(self.cached);
        self.reasoning = later.reasoning.or(self.reasoning);
    }

    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What one object said.
#[derive(Debug, Default)]
pub struct Info {
    pub model: Option<String>,
    /// A content delta (text, reasoning, tool arguments), not a role-only or usage chunk.
    pub content: bool,
    /// Characters of generated text (for estimates).
    pub text_chars: u64,
    pub usage: Option<UsagePatch>,
    /// The answer's last event (`[DONE]` aside): a finish reason, `message_stop`,
    /// `response.completed`, Ollama `done`.
    pub done: bool,
}

fn u(v: &Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_u64()
}

fn text_len(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_str)
        .map_or(0, |s| s.chars().count() as u64)
}

fn openai_usage(u_: &Value) -> Option<UsagePatch> {
    if !u_.is_object() {
        return None;
    }
    let patch = UsagePatch {
        prompt: u(u_, &["prompt_tokens"]).or_else(|| u(u_, &["input_tokens"])),
        completion: u(u_, &["completion_tokens"]).or_else(|| u(u_, &["output_tokens"])),
        cached: u(u_, &["prompt_tokens_details", "cached_tokens"])
            .or_else(|| u(u_, &["input_tokens_details", "cached_tokens"])),
        reasoning: u(u_, &["completion_tokens_details", "reasoning_tokens"])
            .or_else(|| u(u_, &["output_tokens_details", "reasoning_tokens"])),
    };
    (!patch.is_empty()).then_some(patch)
}

fn anthropic_usage(u_: &Value) -> Option<UsagePatch> {
    let patch = UsagePatch {
        prompt: u(u_, &["input_tokens"]),
        completion: u(u_, &["output_tokens"]),
        cached: u(u_, &["cache_read_input_tokens"]),
        reasoning: None,
    };
    (!patch.is_empty()).then_some(patch)
}

/// Reads one response object (a whole body or a stream event) of `flavour`, adding the tools
/// it calls to `tools`.
pub fn read(flavour: Flavour, v: &Value, tools: &mut Vec<String>) -> Info {
    let mut info = Info::default();
    let model = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(|m| safe_name(m, MAX_MODEL_LEN))
    };
    match flavour {
        Flavour::OpenaiChat | Flavour::OpenaiCompletions | Flavour::OpenaiEmbeddings => {
            info.model = model(v, "model");
            info.usage = v.get("usage").and_then(openai_usage);
            for choice in v
                .get("choices")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                info.done |= choice.get("finish_reason").is_some_and(|r| !r.is_null());
                let text = text_len(choice.get("text"));
                let parts = ["delta", "message"].map(|k| choice.get(k));
                let mut chars = text;
                let mut calls = false;
                for part in parts.into_iter().flatten() {
                    for k in ["content", "reasoning_content", "reasoning", "refusal"] {
                        chars += text_len(part.get(k));
                    }
                    for call in part
                        .get("tool_calls")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        calls = true;
                        if let Some(name) = call
                            .get("function")
                            .and_then(|f| f.get("name"))
                            .and_then(Value::as_str)
                        {
                            push_name(tools, name);
                        }
                    }
                }
                info.text_chars += chars;
                info.content |= chars > 0 || calls;
            }
        }
        Flavour::OpenaiResponses => {
            // A whole body is the response object; a stream event wraps it or a delta.
            let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
            let response = v.get("response").unwrap_or(v);
            info.model = model(response, "model");
            if kind.ends_with(".delta") {
                let chars = text_len(v.get("delta"));
                info.text_chars += chars;
                info.content = chars > 0;
            }
            if kind == "response.output_item.added" || kind == "response.output_item.done" {
                if let Some(name) = v
                    .get("item")
                    .and_then(|i| i.get("name"))
                    .and_then(Value::as_str)
                {
                    push_name(tools, name);
                }
            }
            let terminal = matches!(
                kind,
                "response.completed" | "response.incomplete" | "response.failed"
            );
            if terminal || kind.is_empty() {
                info.usage = response.get("usage").and_then(openai_usage);
                info.done = true;
            }
            if kind.is_empty() {
                for item in response
                    .get("output")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if item.get("type").and_then(Value::as_str) == Some("function_call") {
                        if let Some(name) = item.get("name").and_then(Value::as_str) {
                            push_name(tools, name);
                        }
                    }
                    for c in item
                        .get("content")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        info.text_chars += text_len(c.get("text"));
                    }
                }
            }
        }
        Flavour::AnthropicMessages => {
            let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
            match kind {
                "message_start" => {
                    let m = v.get("message").unwrap_or(&Value::Null);
                    info.model = model(m, "model");
                    info.usage = m.get("usage").and_then(anthropic_usage);
                }
                "content_block_start" => {
                    let block = v.get("content_block").unwrap_or(&Value::Null);
                    if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                        if let Some(name) = block.get("name").and_then(Value::as_str) {
                            push_name(tools, name);
                        }
                    }
                }
                "content_block_delta" => {
                    let d = v.get("delta").unwrap_or(&Value::Null);
                    let chars: u64 = ["text", "thinking", "partial_json"]
                        .iter()
                        .map(|k| text_len(d.get(*k)))
                        .sum();
                    info.text_chars += chars;
                    info.content = chars > 0;
                }
                "message_delta" => info.usage = v.get("usage").and_then(anthropic_usage),
                "message_stop" => info.done = true,
                // A whole (non-streamed) message.
                "message" => {
                    info.model = model(v, "model");
                    info.usage = v.get("usage").and_then(anthropic_usage);
                    info.done = true;
                    for block in v
                        .get("content")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        info.text_chars +=
                            text_len(block.get("text")) + text_len(block.get("thinking"));
                        if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                            if let Some(name) = block.get("name").and_then(Value::as_str) {
                                push_name(tools, name);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Flavour::OllamaChat | Flavour::OllamaGenerate | Flavour::OllamaEmbed => {
            info.model = model(v, "model");
            let msg = v.get("message");
            let chars = text_len(v.get("response"))
                + text_len(v.get("thinking"))
                + msg.map_or(0, |m| {
                    text_len(m.get("content")) + text_len(m.get("thinking"))
                });
            let mut calls = false;
            for call in msg
                .and_then(|m| m.get("tool_calls"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                calls = true;
                if let Some(name) = call
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                {
                    push_name(tools, name);
                }
            }
            info.text_chars = chars;
            info.content = chars > 0 || calls;
            info.done = v
                .get("done")
                .and_then(Value::as_bool)
                .unwrap_or(flavour == Flavour::OllamaEmbed);
            let patch = UsagePatch {
                prompt: u(v, &["prompt_eval_count"]),
                completion: u(v, &["eval_count"]),
                cached: None,
                reasoning: None,
            };
            info.usage = (!patch.is_empty()).then_some(patch);
        }
        Flavour::Gemini => {
            info.model = model(v, "modelVersion");
            for cand in v
                .get("candidates")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                info.done |= cand.get("finishReason").is_some_and(|r| !r.is_null());
                let parts = cand
                    .get("content")
                    .and_then(|c| c.get("parts"))
                    .and_then(Value::as_array);
                for part in parts.into_iter().flatten() {
                    let chars = text_len(part.get("text"));
                    info.text_chars += chars;
                    let call = part.get("functionCall");
                    if let Some(name) = call.and_then(|c| c.get("name")).and_then(Value::as_str) {
                        push_name(tools, name);
                    }
                    info.content |= chars > 0 || call.is_some();
                }
            }
            if let Some(m) = v.get("usageMetadata") {
                let patch = UsagePatch {
                    prompt: u(m, &["promptTokenCount"]),
                    completion: u(m, &["candidatesTokenCount"]),
                    cached: u(m, &["cachedContentTokenCount"]),
                    reasoning: u(m, &["thoughtsTokenCount"]),
                };
                info.usage = (!patch.is_empty()).then_some(patch);
            }
        }
    }
    info
}

/// Whether `data` is certainly a plain content delta that needs no parsing: for the
/// OpenAI-compatible chat and Ollama streams (one event per token), an event with non-empty
/// `content` and none of the fields that carry anything else (role, tools, finish, usage,
/// `done`). `false` means: parse it.
pub fn plain_content_delta(flavour: Flavour, data: &[u8]) -> bool {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    // Built once: a searcher's set-up costs more than searching one short event.
    static FINDERS: LazyLock<[Finder<'static>; 6]> = LazyLock::new(|| {
        [
            &b"\"content\":\""[..],
            b"\"usage\":{",
            b"\"tool_calls\"",
            b"\"finish_reason\":\"",
            b"\"role\"",
            b"\"done\":false",
        ]
        .map(Finder::new)
    });
    let [content, usage, tool_calls, finish, role, not_done] = &*FINDERS;
    let non_empty_content = |data: &[u8]| {
        content
            .find(data)
            .is_some_and(|at| data.get(at + 11).is_some_and(|&b| b != b'"'))
    };
    match flavour {
        Flavour::OpenaiChat => {
            non_empty_content(data)
                && usage.find(data).is_none()
                && tool_calls.find(data).is_none()
                && finish.find(data).is_none()
                && role.find(data).is_none()
        }
        Flavour::OllamaChat => {
            non_empty_content(data)
                && not_done.find(data).is_some()
                && tool_calls.find(data).is_none()
        }
        _ => false,
    }
}

/// The JSON payload of a kept record: for an event stream, its `data` lines joined by `\n`
/// (borrowed when there is one); for NDJSON, the line itself.
pub fn payload(record: &[u8], sse: bool) -> std::borrow::Cow<'_, [u8]> {
    if !sse {
        return record.into();
    }
    let mut datas = lines(record).filter_map(|line| {
        let rest = line.strip_prefix(b"data")?;
        match rest.first() {
            None => Some(&rest[..0]),
            Some(b':') => {
                let v = &rest[1..];
                Some(v.strip_prefix(b" ").unwrap_or(v))
            }
            Some(_) => None,
        }
    });
    let Some(first) = datas.next() else {
        return (&record[..0]).into();
    };
    match datas.next() {
        None => first.into(),
        Some(second) => {
            let mut joined = first.to_vec();
            for d in std::iter::once(second).chain(datas) {
                joined.push(b'\n');
                joined.extend_from_slice(d);
            }
            joined.into()
        }
    }
}

/// The lines of a record, as `split(|b| b == b'\n')` gives them, found with `memchr`.
fn lines(record: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(record);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(b'\n', r) {
            Some(i) => {
                rest = r.get(i + 1..);
                r.get(..i)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// The last usage report in a body whose start is missing: the object after the last
/// `"usage"` / `"usageMetadata"` key (Ollama: its count fields), parsed on its own.
pub fn usage_in_tail(flavour: Flavour, tail: &[u8]) -> Option<UsagePatch> {
    if matches!(
        flavour,
        Flavour::OllamaChat | Flavour::OllamaGenerate | Flavour::OllamaEmbed
    ) {
        let num = |key: &[u8]| -> Option<u64> {
            let at = memchr::memmem::rfind(tail, key)? + key.len();
            let rest = tail.get(at..)?;
            let mut digits = rest
                .iter()
                .skip_while(|b| b.is_ascii_whitespace() || **b == b':')
                .take_while(|b| b.is_ascii_digit());
            digits.try_fold(0u64, |n, d| {
                n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            })
        };
        let patch = UsagePatch {
            prompt: num(b"\"prompt_eval_count\""),
            completion: num(b"\"eval_count\""),
            cached: None,
            reasoning: None,
        };
        return (!patch.is_empty()).then_some(patch);
    }
    let key: &[u8] = if flavour == Flavour::Gemini {
        b"\"usageMetadata\""
    } else {
        b"\"usage\""
    };
    let at = memchr::memmem::rfind(tail, key)? + key.len();
    let rest = tail.get(at..)?;
    let open = memchr::memchr(b'{', rest)?;
    let obj = rest.get(open..)?;
    let value: Value = serde_json::Deserializer::from_slice(obj)
        .into_iter::<Value>()
        .next()?
        .ok()?;
    let wrapped = match flavour {
        Flavour::Gemini => serde_json::json!({ "usageMetadata": value }),
        Flavour::AnthropicMessages => {
            serde_json::json!({ "type": "message_delta", "usage": value })
        }
        Flavour::OpenaiResponses => {
            serde_json::json!({ "type": "response.completed", "response": { "usage": value } })
        }
        _ => serde_json::json!({ "usage": value }),
    };
    read(flavour, &wrapped, &mut Vec::new()).usage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_like_split() {
        for record in [
            &b""[..],
            b"\n",
            b"\n\n",
            b"data: {}",
            b"event: x\ndata: {}",
            b"event: x\ndata: a\ndata: b\n",
            b"data:\n:comment\ndata:x",
        ] {
            let ours: Vec<&[u8]> = lines(record).collect();
            let split: Vec<&[u8]> = record.split(|&b| b == b'\n').collect();
            assert_eq!(ours, split, "{:?}", String::from_utf8_lossy(record));
        }
    }

    #[test]
    fn payload_of_events() {
        let p = |r: &[u8]| payload(r, true).into_owned();
        assert_eq!(p(b"data: {\"a\":1}"), b"{\"a\":1}");
        assert_eq!(p(b"event: message_start\ndata:{}"), b"{}");
        assert_eq!(p(b"data: a\ndata: b\ndata"), b"a\nb\n");
        assert_eq!(p(b"event: ping\n: comment\ndatax: no"), b"");
        assert_eq!(
            payload(b"{\"done\":true}", false).as_ref(),
            b"{\"done\":true}"
        );
    }

    #[test]
    fn plain_deltas_are_only_plain_content() {
        let chat = |d: &str| plain_content_delta(Flavour::OpenaiChat, d.as_bytes());
        assert!(chat(
            r#"{"model":"m","choices":[{"index":0,"delta":{"content":" w"},"finish_reason":null}],"usage":null}"#
        ));
        for d in [
            r#"{"choices":[{"delta":{"role":"assistant","content":"x"}}]}"#,
            r#"{"choices":[{"delta":{"content":""},"finish_reason":null}]}"#,
            r#"{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":1}}"#,
            r#"{"choices":[{"delta":{"content":"x","tool_calls":[]}}]}"#,
            r#"{"content":"#,
        ] {
            assert!(!chat(d), "{d}");
        }
        let ollama = |d: &str| plain_content_delta(Flavour::OllamaChat, d.as_bytes());
        assert!(ollama(
            r#"{"model":"m","message":{"role":"assistant","content":"t"},"done":false}"#
        ));
        assert!(!ollama(
            r#"{"model":"m","message":{"role":"assistant","content":"t"},"done":true}"#
        ));
        assert!(!plain_content_delta(Flavour::AnthropicMessages, b"{}"));
    }
}
