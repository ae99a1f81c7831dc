//! Injection in request data: SQL, XSS, path traversal, OS commands, templates, SSRF and
//! code injection, over every value [`Inputs`] extracts. Each value is decoded once here
//! ([`normalize::decode`]) and handed to each enabled checker as a [`Candidate`].

mod clean;
mod cmdi;
mod code;
mod keywords;
mod ldap;
pub(super) mod session;
mod sqli;
mod ssrf;
mod ssti;
mod text;
mod traversal;
mod xss;

use std::borrow::Cow;

use serde::Deserialize;

use super::{
    config::Invalid,
    finding::Finding,
    inputs::{Input, Inputs},
    normalize, rules,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InjectionConfig {
    /// Run the injection detectors (default true); each kind can be turned off below.
    pub enabled: bool,
    pub sqli: bool,
    pub xss: bool,
    pub path_traversal: bool,
    pub command_injection: bool,
    pub ssti: bool,
    pub ssrf: bool,
    pub code_injection: bool,
    /// Session fixation (`session.*` rules; default true).
    pub session_fixation: bool,
    /// LDAP filter injection (`ldap.filter_injection`; default true).
    pub ldap_injection: bool,
    /// Report a bare private or internal address as a whole value (`ssrf.private_host`, e.g.
    /// `host=10.0.0.5`). Default false: inside clusters such values are everyday
    /// configuration; URLs to private targets (`ssrf.private`, low), loopback and metadata
    /// addresses are reported either way.
    pub ssrf_private_hosts: bool,
}

impl Default for InjectionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            sqli: true,
            xss: true,
            path_traversal: true,
            command_injection: true,
            ssti: true,
            ssrf: true,
            code_injection: true,
            session_fixation: true,
            ldap_injection: true,
            ssrf_private_hosts: false,
        }
    }
}

impl InjectionConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

/// One value to check, in the forms checkers need, with its summary (bytes, listed words)
/// computed once and shared by every checker.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// Where it came from (source, name, the value decoded once as a framework would).
    pub input: &'a Input<'a>,
    /// `input.value` with every layer of encoding removed ([`normalize::decode`]).
    pub decoded: &'a str,
    /// Which bytes `decoded` holds, for O(1) pre-checks.
    pub bytes: text::ByteSet,
    /// Which word lists of the combined keyword index `decoded` may hold a word of.
    pub words: keywords::Words<'a>,
}

impl<'a> Candidate<'a> {
    pub fn new(input: &'a Input<'a>, decoded: &'a str) -> Self {
        Self::with_bytes(input, decoded, text::ByteSet::of(decoded.as_bytes()))
    }

    /// With `decoded`'s byte summary already at hand.
    fn with_bytes(input: &'a Input<'a>, decoded: &'a str, bytes: text::ByteSet) -> Self {
        Self {
            input,
            decoded,
            bytes,
            words: keywords::Words::new(decoded.as_bytes()),
        }
    }
}

type Check = fn(&Candidate<'_>, &mut Vec<Finding>);

/// Values remembered as clean (keyed 64-bit hashes only, never the values).
const CLEAN_CACHE_ENTRIES: usize = 16_384;

pub struct InjectionDetector {
    checks: Vec<Check>,
    /// Values (with their source and name) that produced no finding (see [`clean`]).
    clean: clean::CleanSet,
    keys: clean::KeyHasher,
    session_fixation: bool,
    ssrf_private_hosts: bool,
}

impl InjectionDetector {
    pub fn new(config: &InjectionConfig) -> Result<Self, Invalid> {
        let all: [(bool, Check); 10] = [
            (config.sqli, sqli::check),
            (config.xss, xss::check),
            (config.path_traversal, traversal::check),
            (config.command_injection, cmdi::check),
            (config.ssti, ssti::check),
            (config.ssrf, ssrf::check),
            (config.code_injection, code::check),
            (config.code_injection, code::check_upload),
            (config.session_fixation, session::check),
            (config.ldap_injection, ldap::check),
        ];
        Ok(Self {
            checks: all
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, c)| c)
                .collect(),
            clean: clean::CleanSet::new(CLEAN_CACHE_ENTRIES),
            keys: clean::KeyHasher::new(),
            session_fixation: config.session_fixation,
            ssrf_private_hosts: config.ssrf_private_hosts,
        })
    }

    /// The checks that need the whole request besides its values (its `Host` and `Referer`).
    pub fn inspect_request(
        &self,
        req: &super::request::Request<'_>,
        inputs: &Inputs<'_>,
        out: &mut Vec<Finding>,
    ) {
        if self.session_fixation {
            session::planted_id(req, inputs, out);
        }
    }

    pub fn inspect(&mut self, inputs: &Inputs<'_>, out: &mut Vec<Finding>) {
        for input in &inputs.values {
            // Longer values are rarely repeated: they are always checked.
            let key = self.keys.key(input);
            if key.is_some_and(|k| self.clean.touch(k)) {
                continue;
            }
            let before = out.len();
            let raw = text::ByteSet::of(input.value.as_bytes());
            let decoded = if may_be_encoded(&raw) {
                normalize::decode(&input.value)
            } else {
                Cow::Borrowed(&input.value[..])
            };
            // Borrowed: nothing was decoded, the value's byte summary is the decoded one's.
            let candidate = match &decoded {
                Cow::Borrowed(_) => Candidate::with_bytes(input, &decoded, raw),
                Cow::Owned(_) => Candidate::new(input, &decoded),
            };
            for check in &self.checks {
                check(&candidate, out);
            }
            if !self.ssrf_private_hosts {
                drop_private_hosts(out, before);
            }
            if let Some(key) = key.filter(|_| out.len() == before) {
                self.clean.insert(key);
            }
        }
    }
}

/// Whether [`normalize::decode`] may change a value with these bytes: only a `%`, `&`, `\\`,
/// NUL or non-ASCII byte starts an encoding it undoes. Otherwise the value is its own
/// decoding, and one pass over it (its [`text::ByteSet`]) serves every check.
fn may_be_encoded(raw: &text::ByteSet) -> bool {
    const STARTS: u128 = text::needle_mask(b"%&\\\0");
    raw.has_any_mask(STARTS) || raw.non_ascii
}

/// Removes the `ssrf.private_host` findings pushed after `from`.
fn drop_private_hosts(out: &mut Vec<Finding>, from: usize) {
    if out[from..]
        .iter()
        .any(|f| f.rule_id == rules::SSRF_PRIVATE_HOST.id())
    {
        let mut i = from;
        while i < out.len() {
            if out[i].rule_id == rules::SSRF_PRIVATE_HOST.id() {
                out.remove(i);
            } else {
                i += 1;
            }
        }
    }
}

/// Runs one checker over `value` as if it came from `source` under `name`, decoded as the
/// detector decodes it (the checkers' unit tests).
#[cfg(test)]
fn run_check(check: Check, source: super::inputs::Source, name: &str, value: &str) -> Vec<Finding> {
    let input = Input {
        source,
        name: std::borrow::Cow::Borrowed(name),
        value: std::borrow::Cow::Borrowed(value),
    };
    let decoded = normalize::decode(value);
    let mut out = Vec::new();
    check(&Candidate::new(&input, &decoded), &mut out);
    out
}

/// Runs `gated` and `ungated` on `value` as a `source` input named `q`, asserts they find
/// the same, and hands `then` the candidate and what the ungated form found.
#[cfg(test)]
pub(crate) fn assert_gate_keeps_findings(
    source: crate::detect::inputs::Source,
    value: &str,
    (gated, ungated): (Check, Check),
    then: impl FnOnce(&Candidate<'_>, &[Finding]),
) {
    let input = Input {
        source,
        name: std::borrow::Cow::Borrowed("q"),
        value: std::borrow::Cow::Borrowed(value),
    };
    let decoded = crate::detect::normalize::decode(value);
    let c = Candidate::new(&input, &decoded);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    gated(&c, &mut a);
    ungated(&c, &mut b);
    assert_eq!(a, b, "{source:?} {value:?}");
    then(&c, &b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::inputs::Source;

    #[test]
    fn values_without_encoding_bytes_decode_to_themselves() {
        // Every ASCII byte, alone and before what an encoding of each kind continues with.
        for c in 0u8..0x80 {
            for tail in ["", "41", "x41", "u0041", "#65;", "amp;", "lt;", "0", "n"] {
                let v = format!("a{}{tail}b", char::from(c));
                let raw = text::ByteSet::of(v.as_bytes());
                let decoded = normalize::decode(&v);
                if !may_be_encoded(&raw) {
                    assert!(matches!(decoded, Cow::Borrowed(_)), "{v:?}");
                }
            }
        }
        assert!(may_be_encoded(&text::ByteSet::of("caf\u{e9}".as_bytes())));
    }

    fn input(source: Source, name: &str, value: &str) -> Input<'static> {
        Input {
            source,
            name: Cow::Owned(name.to_owned()),
            value: Cow::Owned(value.to_owned()),
        }
    }

    /// The per-family pre-checks never change a verdict: random values built from pieces of
    /// every family's payloads (and the bytes and words the pre-checks look for) get the same
    /// findings with and without them, from every source.
    #[test]
    fn prechecks_keep_every_verdict() {
        #[rustfmt::skip]
        const PIECES: &[&str] = &[
            "a", "x", "0", "1", "0x2e", "0X2F", "5c", " ", " ", "\t", "\n", ",", ".", "..", "/",
            "\\", ":", "_", "-", "+", "@", "$", "{", "}", "(", ")", "[", "]", "<", ">", "'", "\"",
            "`", ";", "|", "&", "=", "!", "~", "%", "?", "*", "#", "é", "\u{bc}",
            "\u{fffd}\u{fffd}", "\u{ff0e}", "script", "document", "window", "+ADw-", "onload",
            "alert", "javascript", "cat", "Cat", "/bin/", "ls", "id", "sleep", "for", "if", "if/i",
            "time", "sudo", "env", "wget", "/dev/tcp/", "whoami", "etc/passwd", "id_rsa", "@fs",
            "@id", "file", "tmp", "sql", "log", "java.lang.", "Runtime", "processbuilder",
            "ognlcontext", "aced0005", "rO0AB", "ztAA", "lazymap", "commons", "php", "<?",
            "system", "exec", "__proto__", "constructor", "child_process", "O:8", "jndi", "ldap",
            "xp", "ipconfig", "ansible-x", "python3", "nc", "sh", "<script>", " onerror=",
            "alert(1)", "javascript:", "document.cookie", "window[", "<svg", "proc/self/", "WinNT/",
            "authorized_keys", ">/tmp/x", "Windows/System32/", "var/mail/", "http://", "gopher://",
            "127.0.0.1", "169.254.169.254", "LocalHost", "metadata", "[::1]", "10.0.0.1",
            "2130706433", "ⓛⓞⓒⓐⓛⓗⓞⓢⓣ", "ip6-loopback", "instance-data", "localhost/", "[", "\r",
            ";base64,", "; ", " & ", "@ls", "Please", "wait. #5", "&&", "||",
        ];
        const SOURCES: &[Source] = &Source::ALL;
        let families: [(&str, Check, Check); 5] = [
            ("xss", xss::check, xss::check_ungated),
            ("ssrf", ssrf::check, ssrf::check_ungated),
            ("code", code::check, code::check_ungated),
            ("traversal", traversal::check, traversal::check_ungated),
            ("cmdi", cmdi::check, cmdi::check_ungated),
        ];
        let mut rng = crate::testutil::Rng(0x5eed_cafe_f00d_d00d);
        let mut flagged = [0usize; 5];
        for round in 0..40_000 {
            let len = 1 + rng.below(8) as usize;
            let v: String = (0..len)
                .map(|_| PIECES[rng.below(PIECES.len() as u64) as usize])
                .collect();
            let source = SOURCES[round % SOURCES.len()];
            let input = Input {
                source,
                name: Cow::Borrowed("q"),
                value: Cow::Borrowed(&v),
            };
            let decoded = normalize::decode(&v);
            let c = Candidate::new(&input, &decoded);
            for (k, (name, gated, ungated)) in families.iter().enumerate() {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                gated(&c, &mut a);
                ungated(&c, &mut b);
                assert_eq!(a, b, "{name} {source:?} {v:?}");
                flagged[k] += usize::from(!b.is_empty());
            }
        }
        // The pieces make each family fire often enough for the comparison to mean something.
        for (k, n) in flagged.iter().enumerate() {
            assert!(*n > 500, "{}: {n}", families[k].0);
        }
    }

    /// The `ssrf.private` default: a URL to a private target is reported at low, a bare
    /// private host only when asked for; metadata and loopback stay reported either way.
    #[test]
    fn private_hosts_are_reported_only_when_asked() {
        let run = |config: &InjectionConfig, value: &str| {
            let mut d = InjectionDetector::new(config).unwrap();
            let inputs = Inputs {
                values: vec![input(Source::Query, "host", value)],
                skipped: 0,
            };
            let mut out = Vec::new();
            d.inspect(&inputs, &mut out);
            out.iter()
                .map(|f| format!("{} {}", f.rule_id, f.severity))
                .collect::<Vec<_>>()
        };
        let default = InjectionConfig::default();
        let all = InjectionConfig {
            ssrf_private_hosts: true,
            ..InjectionConfig::default()
        };
        assert!(run(&default, "10.0.0.5").is_empty());
        assert!(run(&default, "10.0.0.5:5432").is_empty());
        assert_eq!(run(&all, "10.0.0.5"), ["ssrf.private_host low"]);
        assert_eq!(run(&default, "http://10.0.0.5/admin"), ["ssrf.private low"]);
        assert_eq!(run(&default, "169.254.169.254"), ["ssrf.metadata critical"]);
        assert_eq!(run(&default, "127.0.0.1:6379"), ["ssrf.loopback high"]);
    }
}
