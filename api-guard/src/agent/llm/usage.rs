//! Who spent what: token accounting per credential hash × model × client, read through the
//! control socket (`api-guard llm usage`) and kept across restarts in
//! `<state_dir>/llm_usage.json`. Bounded: past `max_entries` rows, new combinations are
//! added to one `other` row (counted), so no token goes unaccounted.

use std::collections::HashMap;

use api_guard::llm::{LlmCall, UsageSource};
use serde::{Deserialize, Serialize};

use super::{
    book::{Persisted, Shared},
    labels::{NO_KEY, OTHER},
};

pub const SNAPSHOT_FILE: &str = "llm_usage.json";

/// One row of the accounting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UsageRow {
    /// Credential hash (`sha256:…`), `none` or `other`.
    pub key: String,
    pub model: String,
    /// The client address (server side) or the calling process (client side).
    pub client: String,
    pub requests: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    /// Of prompt + completion, how many were estimated (no usage report).
    pub estimated_tokens: u64,
    /// Unix seconds.
    pub first_seen: u64,
    pub last_seen: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    version: u32,
    rows: Vec<UsageRow>,
    overflowed: u64,
}

type RowKey = (String, String, String);

pub struct UsageBook {
    rows: HashMap<RowKey, UsageRow>,
    max_entries: usize,
    /// Calls folded into the `other` row because the table was full.
    overflowed: u64,
}

/// The accounting, shared by the parsing task and the control socket.
pub type SharedUsage = Shared<UsageBook>;

impl Persisted for UsageBook {
    const FILE: &'static str = SNAPSHOT_FILE;
    const WHAT: &'static str = "LLM usage";
    type Snapshot = Snapshot;

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: 1,
            rows: self.rows(),
            overflowed: self.overflowed,
        }
    }

    fn restore(&mut self, snapshot: Snapshot) -> usize {
        let n = snapshot.rows.len();
        self.overflowed = self.overflowed.saturating_add(snapshot.overflowed);
        for row in snapshot.rows {
            self.merge(row);
        }
        n
    }
}

impl UsageBook {
    pub fn new(max_entries: usize) -> Self {
        Self {
            rows: HashMap::new(),
            max_entries: max_entries.max(1),
            overflowed: 0,
        }
    }

    /// Accounts one LLM call at `now_secs` (Unix time).
    pub fn record(&mut self, call: &LlmCall, client: &str, now_secs: u64) {
        let f = &call.facts;
        let row = UsageRow {
            key: call.key.clone().unwrap_or_else(|| NO_KEY.to_owned()),
            model: f.model_name().to_owned(),
            client: client.to_owned(),
            requests: 1,
            errors: u64::from(f.usage_source == UsageSource::None && f.usage.total() == 0),
            prompt_tokens: f.usage.prompt,
            completion_tokens: f.usage.completion,
            cached_tokens: f.usage.cached,
            reasoning_tokens: f.usage.reasoning,
            estimated_tokens: if f.estimated { f.usage.total() } else { 0 },
            first_seen: now_secs,
            last_seen: now_secs,
        };
        self.merge(row);
    }

    fn merge(&mut self, mut row: UsageRow) {
        let mut key = (row.key.clone(), row.model.clone(), row.client.clone());
        if !self.rows.contains_key(&key) && self.rows.len() >= self.max_entries {
            self.overflowed = self.overflowed.saturating_add(row.requests);
            key = (OTHER.into(), OTHER.into(), OTHER.into());
            (row.key, row.model, row.client) = key.clone();
        }
        match self.rows.get_mut(&key) {
            Some(r) => {
                let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
                add(&mut r.requests, row.requests);
                add(&mut r.errors, row.errors);
                add(&mut r.prompt_tokens, row.prompt_tokens);
                add(&mut r.completion_tokens, row.completion_tokens);
                add(&mut r.cached_tokens, row.cached_tokens);
                add(&mut r.reasoning_tokens, row.reasoning_tokens);
                add(&mut r.estimated_tokens, row.estimated_tokens);
                r.first_seen = r.first_seen.min(row.first_seen);
                r.last_seen = r.last_seen.max(row.last_seen);
            }
            None => {
                self.rows.insert(key, row);
            }
        }
    }

    /// Rows, the biggest spenders first.
    pub fn rows(&self) -> Vec<UsageRow> {
        let mut rows: Vec<UsageRow> = self.rows.values().cloned().collect();
        rows.sort_by(|a, b| {
            (b.prompt_tokens + b.completion_tokens)
                .cmp(&(a.prompt_tokens + a.completion_tokens))
                .then_with(|| (&a.key, &a.model, &a.client).cmp(&(&b.key, &b.model, &b.client)))
        });
        rows
    }

    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_guard::llm::{Flavour, LlmFacts, Provider, Usage};

    fn call(
        key: Option<&str>,
        model: &str,
        prompt: u64,
        completion: u64,
        estimated: bool,
    ) -> LlmCall {
        LlmCall {
            facts: LlmFacts {
                flavour: Flavour::OpenaiChat,
                provider: Provider::Openai,
                model_requested: None,
                model: Some(model.into()),
                stream: false,
                max_tokens: None,
                messages: None,
                tools_declared: vec![],
                tools_called: vec![],
                usage: Usage {
                    prompt,
                    completion,
                    cached: 0,
                    reasoning: 0,
                },
                usage_source: if estimated {
                    UsageSource::Estimated
                } else {
                    UsageSource::Reported
                },
                estimated,
                ttft_ns: None,
                inter_token_ns: None,
                content_events: 0,
                complete: true,
            },
            key: key.map(String::from),
            reservation: 0,
        }
    }

    #[test]
    fn rows_add_up_and_overflow_into_other() {
        let usage = SharedUsage::new(UsageBook::new(2));
        {
            let mut b = usage.lock();
            b.record(&call(Some("sha256:a"), "m", 10, 5, false), "10.0.0.1", 100);
            b.record(&call(Some("sha256:a"), "m", 1, 1, true), "10.0.0.1", 200);
            b.record(&call(None, "m", 3, 3, false), "10.0.0.2", 150);
            b.record(&call(Some("sha256:b"), "m", 7, 7, false), "10.0.0.3", 150);
            let rows = b.rows();
            assert_eq!(rows.len(), 3);
            let a = &rows[0];
            assert_eq!(
                (
                    a.requests,
                    a.prompt_tokens,
                    a.completion_tokens,
                    a.estimated_tokens
                ),
                (2, 11, 6, 2)
            );
            assert_eq!((a.first_seen, a.last_seen), (100, 200));
            assert_eq!((rows[1].key.as_str(), rows[1].prompt_tokens), (OTHER, 7));
            assert_eq!(b.overflowed(), 1);
        }
        let dir = std::env::temp_dir().join(format!("api-guard-llm-usage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        usage.save(&dir).unwrap();
        let again = SharedUsage::new(UsageBook::new(10));
        assert_eq!(again.load(&dir).unwrap(), Some(3));
        assert_eq!(again.lock().rows(), usage.lock().rows());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
