//! What an LLM request asked for: model, stream, output bound, messages, tools, and an
//! estimate of its prompt's tokens (for reservations and for answers without usage).

use serde_json::Value;

use super::{
    estimate, recognize::Body, safe_name, Flavour, MAX_MODEL_LEN, MAX_TOOLS, MAX_TOOL_NAME_LEN,
};
use crate::http::HttpExchange;

/// Facts of an LLM request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFacts {
    pub model: Option<String>,
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    pub max_tokens: Option<u64>,
    pub messages: Option<u32>,
    pub tools: Vec<String>,
    /// Estimated prompt tokens (from the prompt text, else from the body size), at four
    /// characters a token: cheap enough for every request (reservations); an answer without
    /// usage gets the finer [`estimate::bpe_prompt_tokens`] where it applies.
    pub prompt_estimate: u64,
}

impl RequestFacts {
    /// From a request whose body is `body` when it was captured whole.
    pub(crate) fn parse(flavour: Flavour, ex: &HttpExchange, body: Option<&Body>) -> Self {
        let Some(b) = body else {
            return Self {
                model: gemini_model(flavour, &ex.path),
                stream: flavour == Flavour::Gemini && ex.path.contains(":streamGenerateContent"),
                prompt_estimate: estimate::tokens_of_bytes(ex.request_body_bytes),
                ..Self::default()
            };
        };
        let model = b
            .get("model")
            .and_then(Value::as_str)
            .map(|m| safe_name(m, MAX_MODEL_LEN))
            .or_else(|| gemini_model(flavour, &ex.path));
        let stream = match flavour {
            Flavour::Gemini => ex.path.contains(":streamGenerateContent"),
            // Ollama streams unless told not to.
            Flavour::OllamaChat | Flavour::OllamaGenerate => {
                b.get("stream").and_then(Value::as_bool).unwrap_or(true)
            }
            _ => b.get("stream").and_then(Value::as_bool).unwrap_or(false),
        };
        let include_usage = b
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let max_tokens = ["max_tokens", "max_completion_tokens", "max_output_tokens"]
            .iter()
            .find_map(|k| b.get(*k).and_then(Value::as_u64))
            .or_else(|| {
                b.get("options")
                    .and_then(|o| o.get("num_predict"))
                    .and_then(Value::as_u64)
            })
            .or_else(|| {
                b.get("generationConfig")
                    .and_then(|o| o.get("maxOutputTokens"))
                    .and_then(Value::as_u64)
            });
        let messages = ["messages", "contents", "input"]
            .iter()
            .find_map(|k| b.get(*k))
            .map(|v| match v {
                Value::Array(a) => u32::try_from(a.len()).unwrap_or(u32::MAX),
                _ => 1,
            })
            .or_else(|| b.contains_key("prompt").then_some(1));
        let mut chars = 0u64;
        for key in estimate::PROMPT_KEYS {
            if let Some(v) = b.get(key) {
                chars = chars.saturating_add(estimate::text_chars(v));
            }
        }
        Self {
            model,
            stream,
            include_usage,
            max_tokens,
            messages,
            tools: tool_names(b.get("tools")),
            prompt_estimate: estimate::tokens_of_chars(chars),
        }
    }
}

/// Gemini names its model in the path: `.../models/{model}:generateContent`.
fn gemini_model(flavour: Flavour, path: &str) -> Option<String> {
    if flavour != Flavour::Gemini {
        return None;
    }
    let (_, rest) = path.rsplit_once("/models/")?;
    let model = rest.split(':').next().filter(|m| !m.is_empty())?;
    Some(safe_name(model, MAX_MODEL_LEN))
}

/// Declared tool names: OpenAI `tools[].function.name`, Anthropic and Responses
/// `tools[].name`, Gemini `tools[].functionDeclarations[].name`.
fn tool_names(tools: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(Value::Array(tools)) = tools else {
        return out;
    };
    for tool in tools {
        let direct = tool
            .get("function")
            .and_then(|f| f.get("name"))
            .or_else(|| tool.get("name"))
            .and_then(Value::as_str);
        let declared = tool
            .get("functionDeclarations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("name").and_then(Value::as_str));
        for name in direct.into_iter().chain(declared) {
            push_name(&mut out, name);
        }
    }
    out
}

/// Adds a tool name once, within the bounds.
pub(crate) fn push_name(out: &mut Vec<String>, name: &str) {
    if out.len() >= MAX_TOOLS || name.is_empty() {
        return;
    }
    let name = safe_name(name, MAX_TOOL_NAME_LEN);
    if !out.contains(&name) {
        out.push(name);
    }
}
