//! LLM API awareness: which exchanges are LLM calls (OpenAI-compatible, Anthropic, Ollama,
//! Gemini), what they asked for (model, stream, `max_tokens`, messages, tools) and what they
//! cost: token usage exactly as the server reported it — from JSON bodies and from streams read
//! to their end through the response tap — else an estimate flagged as such; time to first
//! token and mean inter-token interval for streams.
//!
//! Only names, counts and times come out of here: never prompts, completions or keys.

mod estimate;
pub mod providers;
mod recognize;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;
mod typed;

use serde::Serialize;

use crate::http::HttpExchange;

pub use recognize::{recognize, ExtraPath, Flavour, Provider};
pub use request::RequestFacts;
pub use stream::payload as stream_payload;

/// Longest model name kept (longer ones are cut); names are reduced to a safe charset.
pub const MAX_MODEL_LEN: usize = 96;
/// Tool names kept per exchange and their longest length.
pub const MAX_TOOLS: usize = 16;
pub const MAX_TOOL_NAME_LEN: usize = 64;

/// Token counts of one exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Prompt (input) tokens, as the server counts them (Anthropic: without cache reads).
    pub prompt: u64,
    /// Completion (output) tokens, reasoning included where the server includes it.
    pub completion: u64,
    /// Prompt tokens served from a cache.
    pub cached: u64,
    /// Reasoning tokens (part of `completion` for OpenAI).
    pub reasoning: u64,
}

impl Usage {
    #[must_use]
    pub fn total(&self) -> u64 {
        self.prompt.saturating_add(self.completion)
    }
}

/// Where an exchange's token counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    /// The server's own `usage` (or equivalent) report.
    Reported,
    /// No report: estimated from the request and the response content.
    Estimated,
    /// An error answer, or nothing to count: zero tokens, truthfully.
    None,
}

/// What one LLM exchange was and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlmFacts {
    pub flavour: Flavour,
    pub provider: Provider,
    /// The model the request named (Gemini: from the path).
    pub model_requested: Option<String>,
    /// The model the response named.
    pub model: Option<String>,
    pub stream: bool,
    pub max_tokens: Option<u64>,
    /// Messages (or input items) in the request.
    pub messages: Option<u32>,
    pub tools_declared: Vec<String>,
    /// Tools the response called (in streams: those named in the kept events).
    pub tools_called: Vec<String>,
    pub usage: Usage,
    pub usage_source: UsageSource,
    /// Some counts are estimates (no usage report, or a stream cut before its report).
    pub estimated: bool,
    /// Stream: first content delta after the request's end.
    pub ttft_ns: Option<u64>,
    /// Stream: mean interval between content events.
    pub inter_token_ns: Option<u64>,
    /// Stream: events that carried content.
    pub content_events: u64,
    /// The stream ended with its final event (not cut short or aborted).
    pub complete: bool,
}

impl LlmFacts {
    /// The model to account the exchange to: the answered one, else the requested one.
    #[must_use]
    pub fn model_name(&self) -> &str {
        self.model
            .as_deref()
            .or(self.model_requested.as_deref())
            .unwrap_or("unknown")
    }

    /// The tokens a limit reserves before the answer: estimated prompt + `max_tokens`.
    #[must_use]
    pub fn reservation(req: &RequestFacts, default_max_tokens: u64) -> u64 {
        req.prompt_estimate
            .saturating_add(req.max_tokens.unwrap_or(default_max_tokens))
    }
}

/// An LLM call as the agent carries it with its exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmCall {
    pub facts: LlmFacts,
    /// The request's credential hash (`sha256:…`), never the raw key.
    pub key: Option<String>,
    /// Tokens a token limit reserves for the request (estimated prompt + `max_tokens`).
    pub reservation: u64,
}

/// The request facts of an LLM call, from its request alone (what a request-time hook has).
#[must_use]
pub fn request_facts(ex: &HttpExchange, extra: &[ExtraPath]) -> Option<(Flavour, RequestFacts)> {
    let (flavour, body) = recognize::recognize_parsed(ex, extra)?;
    Some((flavour, RequestFacts::parse(flavour, ex, body.as_ref())))
}

/// An LLM exchange's facts with the request facts they came from.
#[must_use]
pub fn analyze_with_request(
    ex: &HttpExchange,
    extra: &[ExtraPath],
) -> Option<(LlmFacts, RequestFacts)> {
    let (flavour, req) = request_facts(ex, extra)?;
    let facts = response::analyze(flavour, &req, ex);
    Some((facts, req))
}

/// The LLM facts of an exchange, if it is an LLM API call.
#[must_use]
pub fn analyze(ex: &HttpExchange, extra: &[ExtraPath]) -> Option<LlmFacts> {
    let (flavour, body) = recognize::recognize_parsed(ex, extra)?;
    let req = RequestFacts::parse(flavour, ex, body.as_ref());
    Some(response::analyze(flavour, &req, ex))
}

/// A model or tool name reduced to `[A-Za-z0-9._:/@+-]` (others become `_`) and `max` bytes.
pub(crate) fn safe_name(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._:/@+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
