//! Which AI provider a host name belongs to, for the egress inventory: a list of
//! `{ name, host }` entries where `host` is an exact name or a pattern with one `*` standing
//! for one DNS label or part of one (`*.openai.azure.com`, `bedrock-runtime.*.amazonaws.com`,
//! `*-aiplatform.googleapis.com`). Names are compared in lower case without port or final dot.

use rustc_hash::FxHashMap;
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
    /// Lower-case exact hosts. A fast hash: looked up for every outgoing exchange, keyed by
    /// the configured hosts only.
    exact: FxHashMap<Box<[u8]>, usize>,
    patterns: Vec<Pattern>,
    names: Vec<String>,
    /// The shortest host any pattern matches (its `*` standing for one byte): a shorter host
    /// that is no exact entry is no provider, without a pattern compared.
    shortest_pattern: usize,
}

/// A host with one `*`, lower case, cut at it.
#[derive(Debug, Clone)]
struct Pattern {
    before: Box<[u8]>,
    after: Box<[u8]>,
    provider: usize,
}

impl Pattern {
    /// Whether `host` (lower case) is `before`, (part of) one label, `after`.
    fn matches(&self, host: &[u8]) -> bool {
        let (before, after) = (self.before.len(), self.after.len());
        // `*` is (part of) one label: never empty, never spanning a dot.
        host.len() > before + after
            && host.ends_with(&self.after)
            && host.starts_with(&self.before)
            && host
                .get(before..host.len() - after)
                .is_some_and(|middle| !middle.contains(&b'.'))
    }
}

/// Longest host name compared (DNS's limit): longer ones are no provider.
const MAX_HOST: usize = 253;

impl ProviderMatcher {
    /// From checked entries ([`check`]); the first entry for a host wins.
    pub fn new(list: &[ProviderHost]) -> Self {
        let mut m = Self {
            shortest_pattern: usize::MAX,
            ..Self::default()
        };
        for p in list {
            let idx = match m.names.iter().position(|n| n == &p.name) {
                Some(i) => i,
                None => {
                    m.names.push(p.name.clone());
                    m.names.len() - 1
                }
            };
            let host = p.host.to_ascii_lowercase().into_bytes();
            match host.iter().position(|&b| b == b'*') {
                Some(star) => {
                    let (before, after) = host.split_at(star);
                    let after = after.get(1..).unwrap_or_default();
                    m.shortest_pattern = m.shortest_pattern.min(before.len() + after.len() + 1);
                    m.patterns.push(Pattern {
                        before: before.into(),
                        after: after.into(),
                        provider: idx,
                    });
                }
                None => {
                    m.exact.entry(host.into()).or_insert(idx);
                }
            }
        }
        m
    }

    /// Every provider name, in list order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The provider of `host` (a Host header or `:authority`, with or without port). Called
    /// for outgoing exchanges: the host is lowered into a stack buffer (no allocation),
    /// looked up by a fast hash and then against the patterns.
    pub fn provider_of(&self, host: &str) -> Option<&str> {
        self.names
            .get(self.provider_index(host)?)
            .map(String::as_str)
    }

    /// [`ProviderMatcher::provider_of`] as an index into [`ProviderMatcher::names`].
    pub fn provider_index(&self, host: &str) -> Option<usize> {
        if self.exact.is_empty() && self.patterns.is_empty() {
            return None;
        }
        let host = strip_port(host.trim()).trim_end_matches('.');
        if host.is_empty() || host.len() > MAX_HOST {
            return None;
        }
        let mut buf = [0u8; MAX_HOST];
        let lower = buf.get_mut(..host.len())?;
        lower.copy_from_slice(host.as_bytes());
        lower.make_ascii_lowercase();
        let lower = &*lower;
        match self.exact.get(lower) {
            Some(&i) => Some(i),
            None if lower.len() < self.shortest_pattern => None,
            None => Some(self.patterns.iter().find(|p| p.matches(lower))?.provider),
        }
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

    /// The matcher before it lowered into a stack buffer and skipped short hosts: the
    /// reference the differential test holds the matcher to.
    fn reference_provider_of<'a>(list: &'a [ProviderHost], host: &str) -> Option<&'a str> {
        let mut exact: std::collections::HashMap<String, &str> = Default::default();
        let mut patterns = Vec::new();
        for p in list {
            let h = p.host.to_ascii_lowercase();
            match h.split_once('*') {
                Some((pre, post)) => patterns.push((pre.to_owned(), post.to_owned(), &*p.name)),
                None => {
                    exact.entry(h).or_insert(&p.name);
                }
            }
        }
        let host = strip_port(host.trim()).trim_end_matches('.');
        if host.is_empty() || host.len() > 253 {
            return None;
        }
        let lower = host.to_ascii_lowercase();
        if let Some(&name) = exact.get(&lower) {
            return Some(name);
        }
        patterns.iter().find_map(|(pre, post, name)| {
            let middle = lower
                .strip_prefix(pre.as_str())?
                .strip_suffix(post.as_str())?;
            (!middle.is_empty() && !middle.contains('.')).then_some(*name)
        })
    }

    /// Hosts around each entry of `list`: the host itself (each `*` filled several ways),
    /// sub- and parent domains, look-alikes, ports, case, dots and spaces.
    fn hosts_around(list: &[ProviderHost]) -> Vec<String> {
        let mut hosts: Vec<String> = [
            "",
            " ",
            ".",
            "..",
            ":",
            ":443",
            "[",
            "[]",
            "[::1]",
            "[::1]:8080",
            "::1",
            "10.0.0.1",
            "10.0.0.1:8080",
            "127.0.0.1:80",
            "localhost",
            "localhost:8080",
            "a",
            "a.b",
            "xn--pi-7ja.openai.com",
            "ápi.openai.com",
            "API.OPENAİ.COM",
            "api.openai.com\0",
        ]
        .map(String::from)
        .into();
        hosts.push("a".repeat(253));
        hosts.push(format!("{}.openai.azure.com", "a".repeat(236)));
        hosts.push(format!("{}.openai.azure.com", "a".repeat(237)));
        hosts.push(format!("api.openai.com{}", ".".repeat(300)));
        for p in list {
            let fills = ["", "x", "my-res", "us-east-1", "a.b", ".", "-", "Ab9", "é"];
            let variants: Vec<String> = if p.host.contains('*') {
                fills.iter().map(|f| p.host.replacen('*', f, 1)).collect()
            } else {
                vec![p.host.clone()]
            };
            for h in variants {
                let upper = h.to_ascii_uppercase();
                let first_cap = h
                    .char_indices()
                    .map(|(i, c)| {
                        if i % 2 == 0 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect::<String>();
                let (head, tail) = h.split_at(h.len() / 2);
                for v in [
                    h.clone(),
                    upper,
                    first_cap,
                    format!("x.{h}"),
                    format!("a.b.{h}"),
                    format!("evil{h}"),
                    format!("evil-{h}"),
                    format!("{h}.evil.com"),
                    format!("{h}evil"),
                    format!("{head}x{tail}"),
                    format!("{head}.{tail}"),
                    format!("{head}{tail}.{head}{tail}"),
                    h.get(1..).unwrap_or("").to_owned(),
                    h.get(..h.len().saturating_sub(1)).unwrap_or("").to_owned(),
                    h.split_once('.')
                        .map_or(String::new(), |(_, rest)| rest.to_owned()),
                ] {
                    for suffix in ["", ".", "..", ":443", ":8080", ":", ":x1", ".:443", "]"] {
                        for wrap in [("", ""), (" ", ""), ("\t", " "), ("[", "]")] {
                            hosts.push(format!("{}{v}{suffix}{}", wrap.0, wrap.1));
                        }
                    }
                }
            }
        }
        hosts
    }

    /// The matcher answers as the reference for hosts around every entry and random hosts
    /// made of entries' pieces, under the default list and lists with edge-case patterns
    /// (empty side of `*`, duplicates, upper case, IP-like).
    #[test]
    fn matcher_answers_as_the_reference() {
        let entry = |name: &str, host: &str| ProviderHost {
            name: name.into(),
            host: host.into(),
        };
        let mut custom = vec![
            entry("first", "API.Example.com"),
            entry("second", "api.example.com"),
            entry("tail", "*.example.com"),
            entry("head", "llm.*"),
            entry("mid", "a*b.example.org"),
            entry("ip", "10.0.0.*"),
            entry("dup", "*.example.com"),
            entry("short", "x.y"),
        ];
        custom.extend(default_providers());
        let lists = [
            default_providers(),
            custom,
            Vec::new(),
            vec![entry("one", "*.b")],
        ];
        let mut rng = crate::testutil::Rng(0x9e37_79b9_7f4a_7c15);
        let mut compared = 0;
        for list in &lists {
            let m = ProviderMatcher::new(list);
            let mut hosts = hosts_around(list);
            // Random hosts from pieces of the entries and separators.
            let pieces: Vec<String> = list
                .iter()
                .flat_map(|p| p.host.split(['.', '*']).map(str::to_owned))
                .chain(["", "x", "API", ".", "-", ":443", "é"].map(String::from))
                .collect();
            for _ in 0..20_000 {
                let n = 1 + rng.below(6);
                let mut h = String::new();
                for _ in 0..n {
                    let piece = &pieces[rng.below(pieces.len() as u64) as usize];
                    h.push_str(piece);
                    if rng.below(3) > 0 {
                        h.push('.');
                    }
                }
                hosts.push(h);
            }
            for host in &hosts {
                assert_eq!(
                    m.provider_of(host),
                    reference_provider_of(list, host),
                    "{host:?}"
                );
                compared += 1;
            }
            let found = hosts.iter().filter(|h| m.provider_of(h).is_some()).count();
            assert!(list.is_empty() || found > 100, "{found} providers found");
        }
        assert!(compared > 100_000, "{compared}");
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
