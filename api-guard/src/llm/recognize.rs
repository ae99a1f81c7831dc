//! Which LLM API an exchange speaks: by its path, confirmed by the request body's shape.

use serde::{Deserialize, Serialize};

use crate::http::HttpExchange;

/// The API shape of an LLM call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavour {
    /// OpenAI-compatible `/chat/completions` (OpenAI, vLLM, SGLang, llama.cpp, TGI, LiteLLM).
    OpenaiChat,
    /// OpenAI-compatible legacy `/completions`.
    OpenaiCompletions,
    /// OpenAI `/responses`.
    OpenaiResponses,
    /// OpenAI-compatible `/embeddings`.
    OpenaiEmbeddings,
    /// Anthropic `/v1/messages`.
    AnthropicMessages,
    /// Ollama `/api/chat`.
    OllamaChat,
    /// Ollama `/api/generate`.
    OllamaGenerate,
    /// Ollama `/api/embed` (and the older `/api/embeddings`).
    OllamaEmbed,
    /// Gemini `models/{model}:generateContent` and `:streamGenerateContent`.
    Gemini,
}

/// Who defined the API (a metric label): the protocol, not necessarily the vendor serving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Openai,
    Anthropic,
    Ollama,
    Gemini,
}

impl Provider {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::Ollama => "ollama",
            Self::Gemini => "gemini",
        }
    }
}

impl Flavour {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenaiChat => "openai_chat",
            Self::OpenaiCompletions => "openai_completions",
            Self::OpenaiResponses => "openai_responses",
            Self::OpenaiEmbeddings => "openai_embeddings",
            Self::AnthropicMessages => "anthropic_messages",
            Self::OllamaChat => "ollama_chat",
            Self::OllamaGenerate => "ollama_generate",
            Self::OllamaEmbed => "ollama_embed",
            Self::Gemini => "gemini",
        }
    }

    #[must_use]
    pub fn provider(self) -> Provider {
        match self {
            Self::OpenaiChat
            | Self::OpenaiCompletions
            | Self::OpenaiResponses
            | Self::OpenaiEmbeddings => Provider::Openai,
            Self::AnthropicMessages => Provider::Anthropic,
            Self::OllamaChat | Self::OllamaGenerate | Self::OllamaEmbed => Provider::Ollama,
            Self::Gemini => Provider::Gemini,
        }
    }

    #[must_use]
    pub fn is_embedding(self) -> bool {
        matches!(self, Self::OpenaiEmbeddings | Self::OllamaEmbed)
    }

    /// The flavour a path names, by its well-known suffix.
    #[must_use]
    pub fn of_path(path: &str) -> Option<Self> {
        let path = path.trim_end_matches('/');
        let ends = |s: &str| path.ends_with(s);
        if path.contains(":generateContent") || path.contains(":streamGenerateContent") {
            Some(Self::Gemini)
        } else if ends("/chat/completions") {
            Some(Self::OpenaiChat)
        } else if ends("/completions") {
            Some(Self::OpenaiCompletions)
        } else if ends("/responses") {
            Some(Self::OpenaiResponses)
        } else if ends("/embeddings") && !ends("/api/embeddings") {
            Some(Self::OpenaiEmbeddings)
        } else if ends("/v1/messages") {
            Some(Self::AnthropicMessages)
        } else if ends("/api/chat") {
            Some(Self::OllamaChat)
        } else if ends("/api/generate") {
            Some(Self::OllamaGenerate)
        } else if ends("/api/embed") || ends("/api/embeddings") {
            Some(Self::OllamaEmbed)
        } else {
            None
        }
    }

    /// Top-level request fields of which one must be present (with `model`, except Gemini).
    fn body_keys(self) -> &'static [&'static str] {
        match self {
            Self::OpenaiChat | Self::AnthropicMessages | Self::OllamaChat => &["messages"],
            Self::OpenaiCompletions | Self::OllamaGenerate => &["prompt"],
            Self::OpenaiResponses => &["input", "previous_response_id", "prompt"],
            Self::OpenaiEmbeddings | Self::OllamaEmbed => &["input", "prompt"],
            Self::Gemini => &["contents"],
        }
    }
}

/// A configured path (exact match) served with a known flavour.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraPath {
    pub path: String,
    pub flavour: Flavour,
}

/// The flavour of an LLM call: a POST to a known (or configured) path whose JSON request has
/// the flavour's shape. A request body that was not captured whole cannot be checked and is
/// taken on the path alone.
#[must_use]
pub fn recognize(ex: &HttpExchange, extra: &[ExtraPath]) -> Option<Flavour> {
    recognize_parsed(ex, extra).map(|(f, _)| f)
}

/// JSON object of a request body.
pub(crate) type Body = serde_json::Map<String, serde_json::Value>;

/// [`recognize`], with the parsed request body (when it was captured whole).
pub(crate) fn recognize_parsed(
    ex: &HttpExchange,
    extra: &[ExtraPath],
) -> Option<(Flavour, Option<Body>)> {
    if ex.method != "POST" {
        return None;
    }
    let flavour = extra
        .iter()
        .find(|e| e.path == ex.path)
        .map(|e| e.flavour)
        .or_else(|| Flavour::of_path(&ex.path))?;
    let complete = !ex.request_truncated && ex.request_body.len() as u64 == ex.request_body_bytes;
    if !complete {
        return Some((flavour, None));
    }
    let body: Body = serde_json::from_slice(&ex.request_body).ok()?;
    let needs_model = flavour != Flavour::Gemini;
    let has_model = body.get("model").is_some_and(serde_json::Value::is_string);
    let has_key = flavour.body_keys().iter().any(|k| body.contains_key(*k));
    (has_key && (has_model || !needs_model)).then_some((flavour, Some(body)))
}
