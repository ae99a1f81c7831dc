//! Token estimates for exchanges whose server reported no usage. Always flagged `estimated`
//! where used.
//!
//! - OpenAI-family models (`gpt-*`, `o1`/`o3`/`o4…`, `chatgpt-*`, `text-embedding-*`…): the
//!   prompt is counted with the `o200k_base` BPE (tiktoken's ranks, from `tiktoken-rs`), plus
//!   the chat format's few tokens per message. The ranks cost tens of MiB once decoded, so
//!   they are loaded on the first estimate that needs them (never at start, never for
//!   request-time reservations) and dropped again after [`BPE_IDLE`] without use. At most
//!   [`MAX_TOKENIZED_BYTES`] of one prompt are tokenized (a bound on CPU per exchange); the
//!   rest is counted at the ratio of tokens to characters of the tokenized part.
//! - Other models (Llama, Qwen, Claude, Gemini… whose tokenizers are not at hand): about four
//!   characters per token, the usual figure for English text.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tiktoken_rs::CoreBPE;
use tracing::{info, warn};

const CHARS_PER_TOKEN: u64 = 4;
/// Text of one prompt that the BPE tokenizes; the rest is counted by ratio.
pub const MAX_TOKENIZED_BYTES: usize = 4 * 1024;
/// The decoded ranks are dropped after this long without an estimate that needs them.
pub const BPE_IDLE: Duration = Duration::from_secs(10 * 60);
/// OpenAI's chat format: tokens around each message and priming the reply.
const TOKENS_PER_MESSAGE: u64 = 3;
const REPLY_PRIMING: u64 = 3;

/// Request fields whose strings are prompt text.
pub const PROMPT_KEYS: [&str; 6] = [
    "messages",
    "prompt",
    "input",
    "system",
    "instructions",
    "contents",
];

/// Tokens of `chars` characters of text (at least one for non-empty text).
pub fn tokens_of_chars(chars: u64) -> u64 {
    chars.div_ceil(CHARS_PER_TOKEN)
}

/// Tokens of a body of `bytes` bytes whose text could not be read (JSON syntax included).
pub fn tokens_of_bytes(bytes: u64) -> u64 {
    tokens_of_chars(bytes)
}

/// Whether a value is not prompt text: roles, types and ids.
fn skipped_key(k: &str) -> bool {
    matches!(k, "role" | "type" | "id" | "name" | "tool_call_id")
}

/// Characters of text in a JSON value: its strings, wherever they sit (message contents,
/// content parts, prompt arrays), without keys or syntax. Depth is bounded by the parser.
pub fn text_chars(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.chars().count() as u64,
        Value::Array(a) => a.iter().map(text_chars).sum(),
        Value::Object(o) => o
            .iter()
            .filter(|(k, _)| !skipped_key(k))
            .map(|(_, v)| text_chars(v))
            .sum(),
        _ => 0,
    }
}

/// Whether `model` is of a family tokenized with OpenAI's BPE (o200k for the current
/// models; for the older cl100k ones it is within a few percent). A provider prefix
/// (`openai/gpt-4o`, `azure/…`) is skipped.
pub fn openai_tokenized(model: &str) -> bool {
    let name = model.rsplit('/').next().unwrap_or(model);
    let name = name.to_ascii_lowercase();
    ["gpt-", "chatgpt-", "text-embedding-", "davinci", "babbage"]
        .iter()
        .any(|p| name.starts_with(p))
        || ["o1", "o3", "o4"].iter().any(|p| {
            name.strip_prefix(p)
                .is_some_and(|r| r.is_empty() || r.starts_with('-'))
        })
}

/// Estimated prompt tokens of a request body with the BPE, for an OpenAI-family model;
/// `None` when the BPE does not apply or is not available (the caller keeps its character
/// estimate).
pub fn bpe_prompt_tokens(model: &str, body: &[u8]) -> Option<u64> {
    if !openai_tokenized(model) {
        return None;
    }
    let body: serde_json::Map<String, Value> = serde_json::from_slice(body).ok()?;
    let bpe = bpe()?;
    let mut count = Counter::new(&bpe);
    for key in PROMPT_KEYS {
        if let Some(v) = body.get(key) {
            count.value(v);
        }
    }
    let messages = match body.get("messages") {
        Some(Value::Array(a)) => a.len() as u64,
        _ => 0,
    };
    let framing = if messages > 0 {
        messages
            .saturating_mul(TOKENS_PER_MESSAGE)
            .saturating_add(REPLY_PRIMING)
    } else {
        0
    };
    Some(count.total().saturating_add(framing))
}

/// Tokens of a prompt's strings: BPE-counted up to the byte budget, the rest by ratio.
struct Counter<'a> {
    bpe: &'a CoreBPE,
    budget: usize,
    tokens: u64,
    tokenized_chars: u64,
    rest_chars: u64,
}

impl<'a> Counter<'a> {
    fn new(bpe: &'a CoreBPE) -> Self {
        Self {
            bpe,
            budget: MAX_TOKENIZED_BYTES,
            tokens: 0,
            tokenized_chars: 0,
            rest_chars: 0,
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.text(s),
            Value::Array(a) => a.iter().for_each(|v| self.value(v)),
            Value::Object(o) => o
                .iter()
                .filter(|(k, _)| !skipped_key(k))
                .for_each(|(_, v)| self.value(v)),
            _ => {}
        }
    }

    fn text(&mut self, s: &str) {
        let mut cut = s.len().min(self.budget);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, rest) = s.split_at(cut);
        if !head.is_empty() {
            match count_tokens(self.bpe, head) {
                Some(n) => {
                    self.tokens = self.tokens.saturating_add(n);
                    self.tokenized_chars += head.chars().count() as u64;
                    self.budget -= head.len();
                }
                // Not tokenizable (a pathological input): counted by ratio instead.
                None => self.rest_chars += head.chars().count() as u64,
            }
        }
        self.rest_chars += rest.chars().count() as u64;
    }

    fn total(&self) -> u64 {
        if self.rest_chars == 0 {
            return self.tokens;
        }
        let by_ratio = if self.tokenized_chars == 0 {
            tokens_of_chars(self.rest_chars)
        } else {
            // rest × tokens / chars of what was tokenized, rounded up.
            let n = u128::from(self.rest_chars) * u128::from(self.tokens);
            u64::try_from(n.div_ceil(u128::from(self.tokenized_chars))).unwrap_or(u64::MAX)
        };
        self.tokens.saturating_add(by_ratio)
    }
}

/// BPE tokens of `text` (special-token text counted as ordinary text); `None` when the
/// tokenizer gives up (its regex's backtracking limit) or fails.
fn count_tokens(bpe: &CoreBPE, text: &str) -> Option<u64> {
    let none = std::collections::HashSet::new();
    // The tokenizer is third-party code fed hostile text: a panic there costs an estimate,
    // not the agent.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| bpe.encode(text, &none)))
        .ok()?
        .ok()
        .map(|(tokens, _)| tokens.len() as u64)
}

/// The decoded BPE, loaded on demand and dropped when idle.
#[derive(Default)]
struct Slot {
    bpe: Option<Arc<CoreBPE>>,
    last_used: Option<Instant>,
    /// Loading failed once: not retried (estimates stay character-based).
    failed: bool,
}

static SLOT: Mutex<Slot> = Mutex::new(Slot {
    bpe: None,
    last_used: None,
    failed: false,
});

fn slot() -> MutexGuard<'static, Slot> {
    // A poisoned slot still holds a valid Option: keep using it.
    SLOT.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The loaded BPE, loading it (and starting its idle reaper) if needed.
fn bpe() -> Option<Arc<CoreBPE>> {
    let mut s = slot();
    s.last_used = Some(Instant::now());
    if let Some(bpe) = &s.bpe {
        return Some(Arc::clone(bpe));
    }
    if s.failed {
        return None;
    }
    let started = Instant::now();
    match tiktoken_rs::o200k_base() {
        Ok(bpe) => {
            let bpe = Arc::new(bpe);
            s.bpe = Some(Arc::clone(&bpe));
            info!(
                ms = started.elapsed().as_millis() as u64,
                "LLM token estimates: o200k BPE loaded (dropped after {} s unused)",
                BPE_IDLE.as_secs()
            );
            let reaper = std::thread::Builder::new()
                .name("llm-bpe-idle".into())
                .spawn(|| reap(BPE_IDLE));
            if let Err(error) = reaper {
                warn!(%error, "LLM BPE idle reaper not started: the BPE stays loaded");
            }
            Some(bpe)
        }
        Err(error) => {
            s.failed = true;
            warn!(%error, "LLM BPE not loaded: token estimates stay character-based");
            None
        }
    }
}

/// Drops the BPE once it has been unused for `idle`; runs until then.
fn reap(idle: Duration) {
    loop {
        let wait = {
            let mut s = slot();
            match release_if_idle(&mut s, Instant::now(), idle) {
                None => return,
                Some(wait) => wait,
            }
        };
        std::thread::sleep(wait);
    }
}

/// Drops the BPE if unused for `idle` at `now` (`None`: dropped or not loaded), else the
/// time until it may be.
fn release_if_idle(s: &mut Slot, now: Instant, idle: Duration) -> Option<Duration> {
    s.bpe.as_ref()?;
    let unused = s
        .last_used
        .map_or(idle, |t| now.saturating_duration_since(t));
    if unused >= idle {
        s.bpe = None;
        info!("LLM token estimates: o200k BPE dropped (unused)");
        return None;
    }
    Some(idle - unused + Duration::from_millis(10))
}

/// Whether the BPE is loaded.
#[cfg(test)]
fn bpe_loaded() -> bool {
    slot().bpe.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_chars_a_token() {
        assert_eq!(tokens_of_chars(0), 0);
        assert_eq!(tokens_of_chars(1), 1);
        assert_eq!(tokens_of_chars(8), 2);
        let v: Value = serde_json::from_str(
            r#"[{"role":"user","content":"abcd"},{"role":"system","content":[{"type":"text","text":"éfgh"}]}]"#,
        )
        .unwrap();
        assert_eq!(text_chars(&v), 8);
    }

    #[test]
    fn openai_families() {
        for m in [
            "gpt-4o",
            "gpt-4o-mini-2024-07-18",
            "openai/gpt-5",
            "GPT-4.1",
            "o1",
            "o3-mini",
            "o4-mini",
            "chatgpt-4o-latest",
            "text-embedding-3-small",
        ] {
            assert!(openai_tokenized(m), "{m}");
        }
        for m in [
            "meta-llama/Llama-3.1-8B-Instruct",
            "claude-sonnet-4",
            "qwen2.5:7b",
            "o1x",
            "opus",
            "gemini-2.5-pro",
            "",
        ] {
            assert!(!openai_tokenized(m), "{m}");
        }
    }

    /// Counts as tiktoken's o200k_base does (reference figures from the Python package).
    #[test]
    fn o200k_counts_and_chat_framing() {
        let body = br#"{"model":"gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Hello, world!"}]}"#;
        // "You are a helpful assistant." = 6 tokens, "Hello, world!" = 4; 2 messages x 3 + 3.
        assert_eq!(bpe_prompt_tokens("gpt-4o", body), Some(6 + 4 + 9));
        assert_eq!(bpe_prompt_tokens("llama3", body), None);
        let completion = br#"{"model":"gpt-4o-mini","prompt":"tiktoken is great!"}"#;
        assert_eq!(bpe_prompt_tokens("gpt-4o-mini", completion), Some(6));
        // Special-token text is ordinary text, not a special token.
        let special = br#"{"model":"gpt-4o","prompt":"<|endoftext|>"}"#;
        assert!(bpe_prompt_tokens("gpt-4o", special).is_some_and(|n| n > 1));
        assert!(bpe_loaded());
    }

    #[test]
    fn huge_prompts_are_tokenized_up_to_the_budget_then_by_ratio() {
        let bpe = bpe().unwrap();
        // " word" is one token: the budget's worth is counted, the rest by the same ratio.
        let text = " word".repeat(200_000);
        let mut c = Counter::new(&bpe);
        let started = Instant::now();
        c.text(&text);
        let spent = started.elapsed();
        assert_eq!(c.tokenized_chars, MAX_TOKENIZED_BYTES as u64);
        assert_eq!(c.rest_chars, 1_000_000 - MAX_TOKENIZED_BYTES as u64);
        // The whole words and a cut one.
        let words = (MAX_TOKENIZED_BYTES / 5) as u64;
        assert!((words + 1..=words + 2).contains(&c.tokens), "{}", c.tokens);
        assert!(c.total().abs_diff(200_000) <= 200, "{}", c.total());
        assert!(spent < Duration::from_secs(5), "{spent:?}");
        // Multi-byte text is cut at a character boundary.
        let mut c = Counter::new(&bpe);
        c.text(&"é".repeat(MAX_TOKENIZED_BYTES));
        assert_eq!(c.tokenized_chars + c.rest_chars, MAX_TOKENIZED_BYTES as u64);
    }

    #[test]
    fn idle_bpe_is_released() {
        let mut s = Slot::default();
        let t = Instant::now();
        assert_eq!(release_if_idle(&mut s, t, BPE_IDLE), None);
        s.bpe = Some(Arc::new(tiktoken_rs::r50k_base().unwrap()));
        s.last_used = Some(t);
        let wait = release_if_idle(&mut s, t + Duration::from_secs(60), BPE_IDLE).unwrap();
        assert!(wait > Duration::from_secs(9 * 60) && s.bpe.is_some());
        assert_eq!(release_if_idle(&mut s, t + BPE_IDLE, BPE_IDLE), None);
        assert!(s.bpe.is_none());
    }
}
