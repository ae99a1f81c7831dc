//! Known scanner and attack-tool user agents, matched as whole product tokens (the text
//! between non-alphanumeric characters, ASCII case-insensitive) so that `nmap` does not
//! match inside `unmapped`. No allocation: the user agent is walked in place.

/// Tools whose name appears as its own token in their default user agent.
const TOOLS: &[&str] = &[
    "sqlmap",
    "nikto",
    "nmap",
    "masscan",
    "zgrab",
    "nuclei",
    "wpscan",
    "joomscan",
    "dirbuster",
    "gobuster",
    "feroxbuster",
    "ffuf",
    "wfuzz",
    "acunetix",
    "netsparker",
    "burpcollaborator",
    "openvas",
    "w3af",
    "havij",
    "commix",
    "jaeles",
    "arachni",
    "skipfish",
    "whatweb",
    "sqlninja",
    "dotdotpwn",
    "fimap",
    "nessus",
    "zmeu",
    "morfeus",
    "paros",
    "webinspect",
    "appscan",
    "bsqlbf",
    "nosqlmap",
    "xsstrike",
    "dalfox",
    "wapiti",
    "vooki",
    "interactsh",
];

/// The tool a user agent names, if any. Two tools are known by more than one token: ffuf
/// (`Fuzz Faster U Fool`) and THC Hydra (`(Hydra)`, a bare parenthesised token, since other
/// products are called Hydra too).
pub(super) fn scanner(ua: &str) -> Option<&'static str> {
    let b = ua.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let token = &b[start..i];
        if !(4..=16).contains(&token.len()) {
            continue;
        }
        let first = token[0].to_ascii_lowercase();
        if let Some(t) = TOOLS
            .iter()
            .find(|t| t.as_bytes()[0] == first && t.as_bytes().eq_ignore_ascii_case(token))
        {
            return Some(t);
        }
        if token.eq_ignore_ascii_case(b"fuzz") && starts_with_ci(&b[i..], b" faster u fool") {
            return Some("ffuf");
        }
        if token.eq_ignore_ascii_case(b"hydra")
            && start > 0
            && b[start - 1] == b'('
            && b.get(i) == Some(&b')')
        {
            return Some("hydra");
        }
    }
    None
}

fn starts_with_ci(hay: &[u8], prefix: &[u8]) -> bool {
    hay.get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}
