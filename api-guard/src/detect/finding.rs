//! What a detector reports: a [`Finding`] with its kind, rule, severity, where in the request
//! it was seen and a short, redacted piece of evidence.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::rules::Rule;

/// Longest evidence kept, in characters.
pub const MAX_EVIDENCE_CHARS: usize = 96;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Sqli,
    Xss,
    PathTraversal,
    CommandInjection,
    /// Server-side template injection.
    Ssti,
    /// Parameters pointing at loopback, link-local / cloud metadata or private addresses.
    Ssrf,
    /// Code and expression injection (PHP, Java/JNDI/OGNL/EL payloads).
    CodeInjection,
    /// Session identifiers planted through parameters or cookie-setting payloads.
    SessionFixation,
    /// LDAP search filters broken out of (`admin)(|(uid=*`).
    LdapInjection,
    /// HTTP framing anomalies: smuggling, invalid or oversized headers and bodies.
    Protocol,
    /// JWT problems: alg none, expired, bad signature, missing claims.
    Jwt,
    /// No credentials on a route that normally carries them.
    MissingAuth,
    /// One API key or token used from many client addresses.
    KeySharing,
    /// Bursts of 401/403 answers to one client.
    CredentialStuffing,
    /// Known scanner and attack-tool user agents.
    Scanner,
    /// Bursts of 404s / path enumeration.
    Enumeration,
    /// Sequential object-id probing on one route.
    Bola,
    /// Request-rate spikes per client or route.
    Flood,
    /// Prompt injection and jailbreaks in the model input of LLM API requests.
    PromptInjection,
    /// Stolen or abused LLM API keys: shared, spiking, on new models, enumerated, guessed.
    LlmKeyAbuse,
    /// Secrets, personal data or a system-prompt canary in LLM prompts sent to providers or
    /// in completions of local model servers.
    LlmDataLeak,
    /// Credentials or sensitive data in plaintext across the network; weak TLS.
    Encryption,
}

impl Kind {
    pub const ALL: [Kind; 22] = [
        Kind::Sqli,
        Kind::Xss,
        Kind::PathTraversal,
        Kind::CommandInjection,
        Kind::Ssti,
        Kind::Ssrf,
        Kind::CodeInjection,
        Kind::SessionFixation,
        Kind::LdapInjection,
        Kind::Protocol,
        Kind::Jwt,
        Kind::MissingAuth,
        Kind::KeySharing,
        Kind::CredentialStuffing,
        Kind::Scanner,
        Kind::Enumeration,
        Kind::Bola,
        Kind::Flood,
        Kind::PromptInjection,
        Kind::LlmKeyAbuse,
        Kind::LlmDataLeak,
        Kind::Encryption,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Sqli => "sqli",
            Kind::Xss => "xss",
            Kind::PathTraversal => "path_traversal",
            Kind::CommandInjection => "command_injection",
            Kind::Ssti => "ssti",
            Kind::Ssrf => "ssrf",
            Kind::CodeInjection => "code_injection",
            Kind::SessionFixation => "session_fixation",
            Kind::LdapInjection => "ldap_injection",
            Kind::Protocol => "protocol",
            Kind::Jwt => "jwt",
            Kind::MissingAuth => "missing_auth",
            Kind::KeySharing => "key_sharing",
            Kind::CredentialStuffing => "credential_stuffing",
            Kind::Scanner => "scanner",
            Kind::Enumeration => "enumeration",
            Kind::Bola => "bola",
            Kind::Flood => "flood",
            Kind::PromptInjection => "prompt_injection",
            Kind::LlmKeyAbuse => "llm_key_abuse",
            Kind::LlmDataLeak => "llm_data_leak",
            Kind::Encryption => "encryption",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: Kind,
    /// Stable rule name, e.g. `sqli.libinjection`, `jwt.alg_none` (a [`Rule`]'s id).
    pub rule_id: &'static str,
    pub severity: Severity,
    /// Where it was seen: `path`, `query:id`, `form:name`, `body:$.user.name`, `cookie:sid`,
    /// `header:user-agent`, `client` (for per-client behaviour), `route`.
    pub location: String,
    /// A short excerpt or explanation; never a secret (callers redact credentials), truncated
    /// to [`MAX_EVIDENCE_CHARS`] with control characters escaped.
    pub evidence: String,
}

impl Finding {
    /// A finding of `rule` (kind and severity are the rule's, from the catalogue).
    pub fn new(rule: &Rule, location: impl Into<String>, evidence: &str) -> Self {
        Self {
            kind: rule.kind(),
            rule_id: rule.id(),
            severity: rule.severity(),
            location: location.into(),
            evidence: excerpt(evidence),
        }
    }
}

/// `s` with control characters escaped, cut to [`MAX_EVIDENCE_CHARS`] characters of output
/// (then marked with `…`).
pub fn excerpt(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_EVIDENCE_CHARS * 2));
    let mut len = 0;
    for c in s.chars() {
        let piece: &mut dyn Iterator<Item = char> = if c.is_control() {
            &mut c.escape_default()
        } else {
            &mut std::iter::once(c)
        };
        for p in piece {
            if len == MAX_EVIDENCE_CHARS {
                out.push('…');
                return out;
            }
            out.push(p);
            len += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_truncates_and_escapes() {
        assert_eq!(excerpt("a\r\nb"), "a\\r\\nb");
        let long = "x".repeat(500);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), MAX_EVIDENCE_CHARS + 1);
        assert!(e.ends_with('…'));
        let controls = "\u{11}".repeat(500);
        assert_eq!(excerpt(&controls).chars().count(), MAX_EVIDENCE_CHARS + 1);
    }

    #[test]
    fn severities_are_ordered() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Info < Severity::Low);
        let parsed: Severity = serde_json::from_str("\"medium\"").unwrap();
        assert_eq!(parsed, Severity::Medium);
    }

    #[test]
    fn kind_names_match_serde() {
        for k in Kind::ALL {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
    }
}
