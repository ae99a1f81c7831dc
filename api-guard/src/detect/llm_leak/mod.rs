//! Sensitive data leaving through LLM calls (`llm_data_leak`): secrets (API and cloud keys,
//! private keys, JWTs, passwords) and personal data (email, phone, payment card, national
//! ids) in the prompts local processes send to external AI providers, and in the completions
//! local model servers return; and a configured canary string (planted in a system prompt)
//! appearing in a completion, which means the system prompt leaked.
//!
//! The classes come from the discovery classifier ([`crate::discover::sensitive`]); passwords,
//! which it finds only by field name, are also counted in `password: value` shapes
//! ([`text::passwords`]). Documented test card numbers and long base64 runs (inline images)
//! are blanked first ([`text::scrub`]). Findings carry classes and counts, never values; a
//! canary finding names the canary by its position in the configuration, never its text.

pub mod text;

use std::fmt::Write as _;

use serde::Deserialize;

use super::{
    config::{invalid, Invalid},
    finding::Finding,
    prompt::extract,
    rules::{self, Rule},
};
use crate::{
    discover::sensitive::{self, ClassCounts, DataClass},
    http::HttpExchange,
};

/// Canaries at most, and their length bounds (a short canary would match ordinary text).
const MAX_CANARIES: usize = 16;
const MIN_CANARY_LEN: usize = 8;
const MAX_CANARY_LEN: usize = 256;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeakConfig {
    /// Look for sensitive data in LLM calls (default true).
    pub enabled: bool,
    /// Prompts local processes send to the providers of `llm.providers` (default true).
    pub prompts: bool,
    /// Completions local model servers return (default true).
    pub completions: bool,
    /// Report secrets: API and cloud keys, private keys, JWTs, passwords (default true).
    pub secrets: bool,
    /// Report personal data: email, phone, payment card, national ids (default true).
    pub pii: bool,
    /// Strings planted in system prompts; one in a completion is a `llm_leak.canary` finding
    /// (default none; 8 to 256 bytes each, at most 16). Never logged or reported.
    pub canaries: Vec<String>,
    /// Bytes of prompt or completion text read per exchange (default 262144).
    pub max_text_bytes: usize,
}

impl Default for LeakConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            prompts: true,
            completions: true,
            secrets: true,
            pii: true,
            canaries: Vec::new(),
            max_text_bytes: 256 << 10,
        }
    }
}

impl LeakConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        let field = |name: &str| format!("detect.llm_data_leak.{name}");
        if self.max_text_bytes == 0 || self.max_text_bytes > 16 << 20 {
            return Err(invalid(
                field("max_text_bytes"),
                "must be between 1 and 16777216",
            ));
        }
        if self.canaries.len() > MAX_CANARIES {
            return Err(invalid(
                field("canaries"),
                format!("at most {MAX_CANARIES} canaries"),
            ));
        }
        for (i, c) in self.canaries.iter().enumerate() {
            // The value itself is never echoed: it is a secret.
            if !(MIN_CANARY_LEN..=MAX_CANARY_LEN).contains(&c.len()) {
                return Err(invalid(
                    format!("detect.llm_data_leak.canaries[{i}]"),
                    format!("must be {MIN_CANARY_LEN} to {MAX_CANARY_LEN} bytes long"),
                ));
            }
        }
        Ok(())
    }
}

fn is_secret(c: DataClass) -> bool {
    matches!(
        c,
        DataClass::ApiKey | DataClass::PrivateKey | DataClass::Jwt | DataClass::Password
    )
}

/// Parts of a prompt read at most (the latest ones).
const MAX_PARTS: usize = 256;

pub struct LeakDetector {
    config: LeakConfig,
}

impl LeakDetector {
    pub fn new(config: &LeakConfig) -> Result<Self, Invalid> {
        config.validate()?;
        Ok(Self {
            config: config.clone(),
        })
    }

    /// Whether prompts sent to providers are judged.
    pub fn judges_prompts(&self) -> bool {
        self.config.prompts && (self.config.secrets || self.config.pii)
    }

    /// Whether completions of local servers are judged.
    pub fn judges_completions(&self) -> bool {
        self.config.completions
            && (self.config.secrets || self.config.pii || !self.config.canaries.is_empty())
    }

    /// Sensitive data in the model input of an LLM request `body` sent to an external
    /// provider (every role: the system prompt leaves the host too). Returns what the limits
    /// left out.
    pub fn inspect_prompt(&self, body: &[u8], out: &mut Vec<Finding>) -> usize {
        if !self.judges_prompts() {
            return 0;
        }
        let limits = extract::Limits {
            max_body_bytes: self.config.max_text_bytes,
            max_parts: MAX_PARTS,
            max_part_bytes: self.config.max_text_bytes,
            max_depth: 16,
        };
        let found = extract::extract(body, &limits);
        let mut secrets = Tally::default();
        let mut pii = Tally::default();
        let mut budget = self.config.max_text_bytes;
        let mut skipped = found.skipped;
        for part in &found.parts {
            if budget == 0 {
                skipped += 1;
                continue;
            }
            let t = text::floor_str(&part.text, budget);
            budget -= t.len();
            let counts = self.classify(t);
            secrets.add(&counts, true, &part.path);
            pii.add(&counts, false, &part.path);
        }
        self.report(&secrets, &rules::LLM_LEAK_SECRET_IN_PROMPT, out);
        self.report(&pii, &rules::LLM_LEAK_PII_IN_PROMPT, out);
        skipped
    }

    /// Sensitive data and canaries in the completion of an LLM exchange a local model server
    /// answered. Returns 1 when part of the completion was not read (a stream's middle, the
    /// text budget), else 0.
    pub fn inspect_completion(&self, ex: &HttpExchange, out: &mut Vec<Finding>) -> usize {
        if !self.judges_completions() || !ex.status.is_some_and(|s| (200..300).contains(&s)) {
            return 0;
        }
        let c = text::completion(ex, self.config.max_text_bytes);
        if c.text.is_empty() {
            return usize::from(c.partial);
        }
        let location = "response:completion";
        if let Some(i) = self
            .config
            .canaries
            .iter()
            .position(|canary| c.text.contains(canary.as_str()))
        {
            out.push(Finding::new(
                &rules::LLM_LEAK_CANARY,
                location,
                &format!("canary #{} of {}", i + 1, self.config.canaries.len()),
            ));
        }
        if self.config.secrets || self.config.pii {
            let counts = self.classify(&c.text);
            let mut secrets = Tally::default();
            let mut pii = Tally::default();
            secrets.add(&counts, true, location);
            pii.add(&counts, false, location);
            self.report(&secrets, &rules::LLM_LEAK_SECRET_IN_COMPLETION, out);
            self.report(&pii, &rules::LLM_LEAK_PII_IN_COMPLETION, out);
        }
        usize::from(c.partial)
    }

    fn classify(&self, raw: &str) -> ClassCounts {
        let t = text::scrub(raw);
        let mut counts = ClassCounts::default();
        // The classifier reads at most its own window per call: walk longer text in windows
        // (a value cut at a window's edge may be missed; counted values are never doubled).
        let mut rest: &str = &t;
        while !rest.is_empty() {
            let w = text::floor_str(rest, sensitive::MAX_SCAN);
            if w.is_empty() {
                break;
            }
            sensitive::classify(w, &mut counts);
            rest = &rest[w.len()..];
        }
        let p = text::passwords(&t);
        if p > 0 {
            counts.add(DataClass::Password, p);
        }
        counts
    }

    fn report(&self, tally: &Tally, rule: &Rule, out: &mut Vec<Finding>) {
        let wanted = if is_secret_rule(rule) {
            self.config.secrets
        } else {
            self.config.pii
        };
        if !wanted || tally.counts.is_empty() {
            return;
        }
        let mut evidence = String::new();
        for (class, n) in tally.counts.iter() {
            if !evidence.is_empty() {
                evidence.push(' ');
            }
            let _ = write!(evidence, "{}={n}", class.as_str());
        }
        let location = tally.first.as_deref().unwrap_or("body");
        let location = if location.starts_with('$') {
            format!("body:{location}")
        } else {
            location.to_owned()
        };
        out.push(Finding::new(rule, location, &evidence));
    }
}

fn is_secret_rule(rule: &Rule) -> bool {
    rule.id() == rules::LLM_LEAK_SECRET_IN_PROMPT.id()
        || rule.id() == rules::LLM_LEAK_SECRET_IN_COMPLETION.id()
}

/// Classes found of one family (secrets or personal data), and where first.
#[derive(Default)]
struct Tally {
    counts: ClassCounts,
    first: Option<String>,
}

impl Tally {
    fn add(&mut self, counts: &ClassCounts, secrets: bool, location: &str) {
        let mut any = false;
        for (class, n) in counts.iter() {
            if is_secret(class) == secrets {
                self.counts.add(class, n);
                any = true;
            }
        }
        if any && self.first.is_none() {
            self.first = Some(location.to_owned());
        }
    }
}

#[cfg(test)]
mod tests;
