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

/// The shortest and longest tool token; other tokens are not compared.
const SHORTEST: usize = 4;
const LONGEST: usize = 16;

/// Bit `i` stands for `TOOLS[i]`.
type ToolSet = u64;
const _: () = assert!(TOOLS.len() <= ToolSet::BITS as usize);

/// The tools beginning with each lower-case letter or digit (by byte), and those of each
/// length: a token is compared only with the tools in both sets, mostly none (the common
/// browser tokens `Mozilla`, `AppleWebKit`, `Gecko` share a first letter with a tool but not
/// its length). Built at compile time; every tool is lower-case ASCII letters and digits
/// of `SHORTEST..=LONGEST` bytes, or it could never match a token.
const BY_FIRST: [ToolSet; 128] = {
    let mut t = [0; 128];
    let mut i = 0;
    while i < TOOLS.len() {
        let b = TOOLS[i].as_bytes();
        assert!(b.len() >= SHORTEST && b.len() <= LONGEST);
        let mut j = 0;
        while j < b.len() {
            assert!(b[j].is_ascii_lowercase() || b[j].is_ascii_digit());
            j += 1;
        }
        t[b[0] as usize] |= 1 << i;
        i += 1;
    }
    t
};
const BY_LEN: [ToolSet; LONGEST + 1] = {
    let mut t = [0; LONGEST + 1];
    let mut i = 0;
    while i < TOOLS.len() {
        t[TOOLS[i].len()] |= 1 << i;
        i += 1;
    }
    t
};

/// The first tool (in `TOOLS` order) that `token` (ASCII letters and digits) spells, ASCII
/// case-insensitively.
fn tool(token: &[u8]) -> Option<&'static str> {
    let mut candidates = BY_FIRST[usize::from(token[0].to_ascii_lowercase())] & BY_LEN[token.len()];
    while candidates != 0 {
        let i = candidates.trailing_zeros() as usize;
        candidates &= candidates - 1;
        if TOOLS[i].as_bytes().eq_ignore_ascii_case(token) {
            return Some(TOOLS[i]);
        }
    }
    None
}

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
        if !(SHORTEST..=LONGEST).contains(&token.len()) {
            continue;
        }
        if let Some(t) = tool(token) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The sets find what a comparison with every tool finds: each tool alone, in other
    /// cases, cut short, lengthened, and random alphanumeric tokens of every length.
    #[test]
    fn tool_sets_keep_every_comparison() {
        let every = |token: &[u8]| {
            TOOLS
                .iter()
                .copied()
                .find(|t| t.as_bytes().eq_ignore_ascii_case(token))
        };
        let mut tokens: Vec<Vec<u8>> = Vec::new();
        for t in TOOLS {
            let b = t.as_bytes();
            tokens.extend([
                b.to_vec(),
                b.to_ascii_uppercase(),
                b[..b.len() - 1].to_vec(),
                [b, b"x"].concat(),
                [b"x", b].concat(),
            ]);
        }
        let mut rng = crate::testutil::Rng(0x5ca7);
        const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        for _ in 0..20_000 {
            let len = SHORTEST + rng.below((LONGEST - SHORTEST + 1) as u64) as usize;
            tokens.push(
                (0..len)
                    .map(|_| ALNUM[rng.below(ALNUM.len() as u64) as usize])
                    .collect(),
            );
        }
        let mut found = 0;
        for token in tokens
            .iter()
            .filter(|t| (SHORTEST..=LONGEST).contains(&t.len()))
        {
            assert_eq!(
                tool(token),
                every(token),
                "{:?}",
                String::from_utf8_lossy(token)
            );
            found += usize::from(tool(token).is_some());
        }
        assert_eq!(found, 2 * TOOLS.len());
    }
}
