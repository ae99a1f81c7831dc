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

/// Tools recognised by a phrase of their default user agent (lower case).
const PHRASES: &[(&str, &str)] = &[
    ("fuzz faster u fool", "ffuf"),
    ("nmap scripting engine", "nmap"),
    ("(hydra)", "hydra"),
    ("morfeus fucking scanner", "morfeus"),
];

/// The tool a user agent names, if any.
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
        if (4..=16).contains(&token.len()) {
            if let Some(t) = TOOLS
                .iter()
                .find(|t| t.as_bytes().eq_ignore_ascii_case(token))
            {
                return Some(t);
            }
        }
    }
    PHRASES
        .iter()
        .find(|(p, _)| contains_ci(b, p.as_bytes()))
        .map(|(_, tool)| *tool)
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}
