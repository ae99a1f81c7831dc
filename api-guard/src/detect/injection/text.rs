//! Small byte-level helpers shared by the injection checkers: ASCII case-insensitive search
//! and word boundaries. Everything here is linear in the input and never panics.

/// The first position of `needle` in `hay`, ASCII case-insensitively (`needle` lower case).
pub fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    find_ci_from(hay, needle, 0)
}

/// Like [`find_ci`], starting at `from`.
pub fn find_ci_from(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    if hay.len() < needle.len() {
        return None;
    }
    let last = hay.len() - needle.len();
    let mut i = from;
    while i <= last {
        if hay[i].to_ascii_lowercase() == first
            && hay[i..i + needle.len()].eq_ignore_ascii_case(needle)
        {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Whether `hay` starts with `prefix`, ASCII case-insensitively.
pub fn starts_with_ci(hay: &[u8], prefix: &[u8]) -> bool {
    hay.len() >= prefix.len() && hay[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Identifier characters (`[A-Za-z0-9_]`).
pub fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether the byte before `pos` does not continue an identifier.
pub fn word_start(hay: &[u8], pos: usize) -> bool {
    pos == 0 || hay.get(pos - 1).is_none_or(|&b| !is_ident(b))
}

/// `s` from byte `pos` (moved back to a character boundary) for evidence; the finding
/// itself truncates it.
pub fn tail_from(s: &str, pos: usize) -> &str {
    let mut p = pos.min(s.len());
    while !s.is_char_boundary(p) {
        p -= 1;
    }
    &s[p..]
}

/// Evidence starting a few bytes before `pos`, so the match shows with its context.
pub fn around(s: &str, pos: usize) -> &str {
    tail_from(s, pos.saturating_sub(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_search() {
        assert_eq!(find_ci(b"xxJaVa.lang", b"java."), Some(2));
        assert_eq!(find_ci(b"ab", b"abc"), None);
        assert_eq!(find_ci(b"", b"a"), None);
        assert_eq!(find_ci_from(b"a.a.", b"a.", 1), Some(2));
        assert!(starts_with_ci(b"PHP://x", b"php://"));
        assert!(word_start(b"a system", 2));
        assert!(!word_start(b"asystem", 1));
        assert_eq!(tail_from("aé", 2), "é");
    }
}
