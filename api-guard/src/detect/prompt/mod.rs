//! Prompt injection and jailbreaks in the model input of LLM API requests (OpenAI, Anthropic,
//! Ollama, Gemini shapes; see [`extract`]). Each part of the input is folded ([`fold`]) and
//! weighed ([`score`]) against a lexicon of what injections and jailbreak templates say
//! ([`lexicon`]), in several languages; base64 and hex runs inside it are weighed too, and
//! its ROT13 and its reversal when it mentions decoding ([`decode`]). A part scoring at least `threshold` is a high
//! finding of the rule its strongest evidence names; one between `suspicious_threshold` and
//! `threshold` is `prompt.suspicious` (medium). Evidence is the score per category, never the
//! prompt's text.
//!
//! Embedding requests (a last path segment starting with `embed`) are not judged: their input is
//! text to index, not instructions.
//!
//! System prompts (`system`/`developer` roles, `$.system`, `$.instructions`) and replayed
//! assistant turns are not judged by default: on the server side they are usually the
//! operator's own text (which often says "you are…" and "never reveal these instructions"),
//! and the user's turn is where an attack must go. A deployment whose clients write their own
//! system prompts (a model server open to scripts) can turn both on.

mod decode;
pub(crate) mod extract;
mod fold;
mod lexicon;
mod score;

use std::fmt::Write as _;

use serde::Deserialize;

use super::{
    config::{invalid, Invalid},
    finding::Finding,
    request::Request,
    rules::{self, Rule},
};
pub use extract::Role;
use lexicon::Cat;
use score::{Score, Scorer};

/// Findings per request at most (a long history repeats itself).
const MAX_FINDINGS: usize = 4;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptConfig {
    /// Judge prompts in LLM API request bodies (default true).
    pub enabled: bool,
    /// Score from which a part is a high finding (default 6.0).
    pub threshold: f32,
    /// Score from which a part is `prompt.suspicious`, medium (default 3.0; equal to
    /// `threshold` turns medium findings off).
    pub suspicious_threshold: f32,
    /// Also judge system and developer prompts (default false: the operator's text).
    pub system_prompts: bool,
    /// Also judge assistant turns replayed as history (default false).
    pub assistant_messages: bool,
    /// Judge tool results and retrieved documents passed back in (default true).
    pub tool_results: bool,
    /// Decode base64 and hex runs and re-read in ROT13 and backwards (default true).
    pub decode: bool,
    /// Body bytes read for model input (default 262144).
    pub max_body_bytes: usize,
    /// Parts judged per request, the latest ones (default 64).
    pub max_parts: usize,
    /// Bytes judged per part (default 65536).
    pub max_part_bytes: usize,
}

impl Default for PromptConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: 6.0,
            suspicious_threshold: 3.0,
            system_prompts: false,
            assistant_messages: false,
            tool_results: true,
            decode: true,
            max_body_bytes: 256 << 10,
            max_parts: 64,
            max_part_bytes: 64 << 10,
        }
    }
}

impl PromptConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        let field = |name: &str| format!("detect.prompt_injection.{name}");
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(invalid(field("threshold"), "must be a positive number"));
        }
        if !(self.suspicious_threshold.is_finite()
            && self.suspicious_threshold > 0.0
            && self.suspicious_threshold <= self.threshold)
        {
            return Err(invalid(
                field("suspicious_threshold"),
                "must be positive and at most `threshold`",
            ));
        }
        for (name, value, max) in [
            ("max_body_bytes", self.max_body_bytes, 16 << 20),
            ("max_parts", self.max_parts, 4096),
            ("max_part_bytes", self.max_part_bytes, 1 << 20),
        ] {
            if value == 0 || value > max {
                return Err(invalid(field(name), format!("must be between 1 and {max}")));
            }
        }
        Ok(())
    }
}

/// Which reading of a part found the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Plain,
    /// Only after undoing look-alikes, leetspeak, hidden characters or spelled-out words.
    Folded,
    Base64OrHex,
    Rot13,
    Reversed,
}

impl Layer {
    fn name(self) -> &'static str {
        match self {
            Layer::Plain => "plain",
            Layer::Folded => "folded",
            Layer::Base64OrHex => "base64/hex",
            Layer::Rot13 => "rot13",
            Layer::Reversed => "reversed",
        }
    }
}

/// A part's verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    score: Score,
    layer: Layer,
}

pub struct PromptDetector {
    config: PromptConfig,
    scorer: Scorer,
}

impl PromptDetector {
    pub fn new(config: &PromptConfig) -> Result<Self, Invalid> {
        config.validate()?;
        let scorer = Scorer::new()
            .map_err(|e| invalid("detect.prompt_injection", format!("lexicon: {e}")))?;
        Ok(Self {
            config: config.clone(),
            scorer,
        })
    }

    /// Judges the model input in `req`'s body; returns the parts and bytes its limits left out.
    pub fn inspect(&self, req: &Request<'_>, out: &mut Vec<Finding>) -> usize {
        // Most requests carry no body: nothing to extract, and no path to look at.
        if req.body.is_empty() {
            return 0;
        }
        // Embedding requests (`/v1/embeddings`, Ollama `/api/embed`) carry text to index, not
        // instructions to follow.
        let path = req.path.split('?').next().unwrap_or("");
        if path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.starts_with("embed"))
        {
            return 0;
        }
        let limits = extract::Limits {
            max_body_bytes: self.config.max_body_bytes,
            max_parts: self.config.max_parts,
            max_part_bytes: self.config.max_part_bytes,
            max_depth: 16,
        };
        let found = extract::extract(req.body, &limits);
        let mut reported = 0;
        for part in &found.parts {
            let judged = match part.role {
                Role::User => true,
                Role::System => self.config.system_prompts,
                Role::Assistant => self.config.assistant_messages,
                Role::Tool => self.config.tool_results,
            };
            if !judged || reported == MAX_FINDINGS {
                continue;
            }
            if let Some(f) = self.judge(&part.text, &part.path) {
                out.push(f);
                reported += 1;
            }
        }
        found.skipped
    }

    /// The finding for one prompt text at `path`, if any.
    pub fn judge(&self, text: &str, path: &str) -> Option<Finding> {
        let a = self.assess(text);
        let total = a.score.total;
        if total < self.config.suspicious_threshold {
            return None;
        }
        let rule: &Rule = if total < self.config.threshold {
            &rules::PROMPT_SUSPICIOUS
        } else if a.layer != Layer::Plain {
            &rules::PROMPT_OBFUSCATED
        } else {
            match a.score.dominant() {
                Cat::Override => &rules::PROMPT_INSTRUCTION_OVERRIDE,
                Cat::Extraction => &rules::PROMPT_SYSTEM_PROMPT_EXTRACTION,
                _ => &rules::PROMPT_JAILBREAK_PERSONA,
            }
        };
        let mut evidence = format!("score {total:.1}");
        for (i, v) in a.score.by_cat.iter().enumerate() {
            if *v > 0.0 && i != Cat::Meta.index() {
                let _ = write!(evidence, " {}={v:.1}", CATS[i].name());
            }
        }
        if a.layer != Layer::Plain {
            let _ = write!(evidence, " via {}", a.layer.name());
        }
        Some(Finding::new(rule, format!("body:{path}"), &evidence))
    }

    /// Weighs `text` as written, folded, and (with `decode`) decoded.
    fn assess(&self, text: &str) -> Assessment {
        let folded = fold::fold(text);
        let mut best = Assessment {
            score: self.scorer.score(&folded.text, folded.repairs),
            layer: Layer::Plain,
        };
        // Evidence that exists only once obfuscation is undone is itself obfuscation.
        if folded.repairs > 0 && best.score.total >= self.config.suspicious_threshold {
            let bare = fold::fold_bare(text);
            if self.scorer.score(&bare, 0).total < self.config.suspicious_threshold {
                best.layer = Layer::Folded;
            }
        }
        if !self.config.decode {
            return best;
        }
        let hinted = best.score.by_cat[Cat::Evasion.index()] > 0.0;
        let mut consider = |score: Score, layer: Layer| {
            if score.total >= self.config.suspicious_threshold && score.total > best.score.total {
                best = Assessment { score, layer };
            }
        };
        for decoded in decode::encoded_runs(text) {
            let f = fold::fold(&decoded);
            consider(self.scorer.score(&f.text, f.repairs), Layer::Base64OrHex);
        }
        // A model only follows ROT13 or reversed text it is told to decode: re-read only
        // prompts that say so (rot13, cipher, decode, backwards…), which keeps the cost of
        // two more passes off ordinary prompts.
        if hinted {
            consider(
                self.scorer.score(&decode::rot13(&folded.text), 0),
                Layer::Rot13,
            );
            consider(
                self.scorer.score(&decode::reversed(&folded.text), 0),
                Layer::Reversed,
            );
        }
        best
    }
}

/// Categories by index, for the evidence line.
const CATS: [Cat; Cat::COUNT] = [
    Cat::Override,
    Cat::Template,
    Cat::Persona,
    Cat::Unrestricted,
    Cat::Extraction,
    Cat::Address,
    Cat::Format,
    Cat::Framing,
    Cat::Evasion,
    Cat::Meta,
];

#[cfg(test)]
mod tests;
