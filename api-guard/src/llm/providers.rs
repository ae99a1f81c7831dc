//! Which AI provider a host name belongs to, for the egress inventory: a list of
//! `{ name, host }` entries where `host` is an exact name or a pattern with one `*` standing
//! for one DNS label or part of one (`*.openai.azure.com`, `bedrock-runtime.*.amazonaws.com`,
//! `*-aiplatform.googleapis.com`). Names are compared in lower case without port or final dot.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// One host of a provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderHost {
    /// The provider's name in the inventory, events and `llm.allowed_providers`.
    pub name: String,
    /// The host: exact, or with one `*` (see the module documentation).
    pub host: String,
}

/// The major providers' API hosts (the `llm.providers` default).
pub fn default_providers() -> Vec<ProviderHost> {
    [
        ("openai", "api.openai.com"),
        ("azure_openai", "*.openai.azure.com"),
        ("azure_openai", "*.services.ai.azure.com"),
        ("azure_openai", "*.cognitiveservices.azure.com"),
        ("anthropic", "api.anthropic.com"),
        ("google_gemini", "generativelanguage.googleapis.com"),
        ("google_vertex", "aiplatform.googleapis.com"),
        ("google_vertex", "*-aiplatform.googleapis.com"),
        ("aws_bedrock", "bedrock-runtime.*.amazonaws.com"),
        ("aws_bedrock", "bedrock.*.amazonaws.com"),
        ("aws_bedrock", "bedrock-agent-runtime.*.amazonaws.com"),
        ("mistral", "api.mistral.ai"),
        ("groq", "api.groq.com"),
        ("openrouter", "openrouter.ai"),
        ("together", "api.together.xyz"),
        ("together", "api.together.ai"),
        ("cohere", "api.cohere.com"),
        ("cohere", "api.cohere.ai"),
        ("deepseek", "api.deepseek.com"),
        ("xai", "api.x.ai"),
        ("perplexity", "api.perplexity.ai"),
        ("fireworks", "api.fireworks.ai"),
        ("cerebras", "api.cerebras.ai"),
        ("huggingface", "router.huggingface.co"),
        ("huggingface", "api-inference.huggingface.co"),
        ("replicate", "api.replicate.com"),
        ("ai21", "api.ai21.com"),
    ]
    .into_iter()
    .map(|(name, host)| ProviderHost {
        name: name.into(),
        host: host.into(),
    })
    .collect()
}

/// Why a provider entry is refused.
pub fn check(p: &ProviderHost) -> Result<(), String> {
    let name_ok = !p.name.is_empty()
        && p.name.len() <= 64
        && p.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !name_ok {
        return Err(format!(
            "name {:?}: 1 to 64 letters, digits, `_`, `-` or `.`",
            p.name
        ));
    }
    let host_ok = !p.host.is_empty()
        && p.host.len() <= 253
        && p.host.matches('*').count() <= 1
        && p.host.contains('.')
        && p.host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'*'));
    if !host_ok {
        return Err(format!(
            "host {:?}: a DNS name with at most one `*`",
            p.host
        ));
    }
    Ok(())
}

/// Host names to providers.
#[derive(Debug, Clone, Default)]
pub struct ProviderMatcher {
    exact: HashMap<String, usize>,
    /// (before `*`, after `*`, provider index)
    patterns: Vec<(String, String, usize)>,
    names: Vec<String>,
}

impl ProviderMatcher {
    /// From checked entries ([`check`]); the first entry for a host wins.
    pub fn new(list: &[ProviderHost]) -> Self {
        let mut m = Self::default();
        for p in list {
            let idx = match m.names.iter().position(|n| n == &p.name) {
                Some(i) => i,
                None => {
                    m.names.push(p.name.clone());
                    m.names.len() - 1
                }
            };
            let host = p.host.to_ascii_lowercase();
            match host.split_once('*') {
                Some((pre, post)) => m.patterns.push((pre.into(), post.into(), idx)),
                None => {
                    m.exact.entry(host).or_insert(idx);
                }
            }
        }
        m
    }

    /// Every provider name, in list order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The provider of `host` (a Host header or `:authority`, with or without port).
    pub fn provider_of(&self, host: &str) -> Option<&str> {
        let host = strip_port(host.trim()).trim_end_matches('.');
        if host.is_empty() || host.len() > 253 {
            return None;
        }
        let lower = host.to_ascii_lowercase();
        if let Some(&i) = self.exact.get(&lower) {
            return self.names.get(i).map(String::as_str);
        }
        self.patterns.iter().find_map(|(pre, post, i)| {
            let middle = lower
                .strip_prefix(pre.as_str())?
                .strip_suffix(post.as_str())?;
            // `*` is (part of) one label: never empty, never spanning a dot.
            (!middle.is_empty() && !middle.contains('.'))
                .then(|| self.names.get(*i).map(String::as_str))
                .flatten()
        })
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // An IPv6 literal is no provider name, but must not be cut at its colons.
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_providers_by_host() {
        let list = default_providers();
        for p in &list {
            check(p).unwrap();
        }
        let m = ProviderMatcher::new(&list);
        for (host, want) in [
            ("api.openai.com", Some("openai")),
            ("API.OpenAI.com:443", Some("openai")),
            ("api.openai.com.", Some("openai")),
            ("my-res.openai.azure.com", Some("azure_openai")),
            ("openai.azure.com", None),
            ("a.b.openai.azure.com", None),
            (
                "us-central1-aiplatform.googleapis.com",
                Some("google_vertex"),
            ),
            (
                "bedrock-runtime.us-east-1.amazonaws.com",
                Some("aws_bedrock"),
            ),
            ("bedrock-runtime.amazonaws.com", None),
            ("s3.us-east-1.amazonaws.com", None),
            ("api.anthropic.com", Some("anthropic")),
            ("generativelanguage.googleapis.com", Some("google_gemini")),
            ("openrouter.ai", Some("openrouter")),
            ("api.x.ai", Some("xai")),
            ("evil-api.openai.com", None),
            ("api.openai.com.evil.example", None),
            ("[::1]:8080", None),
            ("", None),
        ] {
            assert_eq!(m.provider_of(host), want, "{host}");
        }
        assert!(m.names().iter().any(|n| n == "deepseek"));
    }

    #[test]
    fn bad_entries_are_refused() {
        let e = |name: &str, host: &str| {
            check(&ProviderHost {
                name: name.into(),
                host: host.into(),
            })
        };
        assert!(e("x", "*.*.example.com").is_err());
        assert!(e("x", "localhost").is_err());
        assert!(e("x y", "a.example").is_err());
        assert!(e("x", "a b.example").is_err());
        assert!(e("internal", "llm.corp.example").is_ok());
    }
}
