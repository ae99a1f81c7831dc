//! Small byte-level helpers shared by the injection checkers: ASCII case-insensitive search
//! and word boundaries. Everything here is linear in the input and never panics.

/// Which ASCII bytes occur in a value (letters folded to lower case), plus whether it has
/// upper-case letters or non-ASCII bytes: computed once per value, it lets a rule that needs
/// a certain byte skip a value without that byte in O(1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteSet {
    ascii: u128,
    /// Any `A-Z`.
    pub upper: bool,
    /// Any byte >= 0x80.
    pub non_ascii: bool,
}

impl ByteSet {
    pub fn of(b: &[u8]) -> Self {
        // Each byte's bit, looked up (its lower-case letter's for `A-Z`, none for non-ASCII):
        // one load and an OR per byte instead of folding and a 128-bit shift.
        static BITS: [u128; 256] = {
            let mut t = [0u128; 256];
            let mut x = 0;
            while x < 0x80 {
                t[x] = 1u128 << (x as u8).to_ascii_lowercase();
                x += 1;
            }
            t
        };
        let (mut ascii, mut upper, mut high) = (0u128, false, 0u8);
        for &x in b {
            high |= x;
            upper |= x.is_ascii_uppercase();
            ascii |= BITS[usize::from(x)];
        }
        Self {
            ascii,
            upper,
            non_ascii: high >= 0x80,
        }
    }

    /// Whether `x` (ASCII, either case) may occur. Non-ASCII `x`: whether any non-ASCII byte does.
    pub fn has(&self, x: u8) -> bool {
        if x >= 0x80 {
            return self.non_ascii;
        }
        self.ascii & (1u128 << x.to_ascii_lowercase()) != 0
    }

    /// Whether any of `xs` may occur.
    pub fn has_any(&self, xs: &[u8]) -> bool {
        xs.iter().any(|&x| self.has(x))
    }

    /// Whether every byte of a [`needle_mask`] occurs: [`ByteSet::has_all`] in one step.
    pub fn has_mask(&self, mask: u128) -> bool {
        self.ascii & mask == mask
    }

    /// Whether any byte of a [`needle_mask`] occurs: [`ByteSet::has_any`] in one step.
    pub fn has_any_mask(&self, mask: u128) -> bool {
        self.ascii & mask != 0
    }

    /// Whether every byte of `needle` occurs (ASCII case-insensitively): a value without one
    /// of them cannot contain `needle`.
    pub fn has_all(&self, needle: &[u8]) -> bool {
        needle.iter().all(|&x| self.has(x))
    }
}

/// The bytes of an ASCII `needle` (letters folded to lower case) as a [`ByteSet`] mask, built
/// at compile time for constant needles (a non-ASCII needle fails the build).
pub const fn needle_mask(needle: &[u8]) -> u128 {
    let mut mask = 0u128;
    let mut i = 0;
    while i < needle.len() {
        assert!(needle[i] < 0x80, "needle masks are for ASCII needles");
        mask |= 1u128 << needle[i].to_ascii_lowercase();
        i += 1;
    }
    mask
}

/// [`needle_mask`] of each needle.
pub const fn needle_masks<const N: usize>(needles: &[&[u8]]) -> [u128; N] {
    let mut masks = [0u128; N];
    let mut i = 0;
    while i < N && i < needles.len() {
        masks[i] = needle_mask(needles[i]);
        i += 1;
    }
    masks
}

/// A word list bucketed by how its words begin (first byte, second byte or 0, ASCII letters
/// folded): a lookup compares only with the few listed words that begin the same way, byte
/// by byte, ASCII case-insensitively (no copy, no hashing, no `memcmp` call per probe).
pub struct WordIndex {
    /// The words, lower case, grouped by bucket.
    words: Vec<Box<[u8]>>,
    /// Bucket `k` is `words[starts[k]..starts[k + 1]]`.
    starts: Box<[u32]>,
}

impl WordIndex {
    /// Buckets: 64 classes for the first byte times 64 for the second.
    const BUCKETS: usize = 64 * 64;

    pub fn of(words: &[&[u8]]) -> Self {
        let mut keyed: Vec<(usize, Box<[u8]>)> = words
            .iter()
            .map(|w| (Self::key(w), w.to_ascii_lowercase().into_boxed_slice()))
            .collect();
        keyed.sort();
        keyed.dedup();
        let mut starts = vec![0u32; Self::BUCKETS + 1].into_boxed_slice();
        for (k, _) in &keyed {
            starts[k + 1] += 1;
        }
        for k in 0..Self::BUCKETS {
            starts[k + 1] += starts[k];
        }
        Self {
            words: keyed.into_iter().map(|(_, w)| w).collect(),
            starts,
        }
    }

    /// A byte's class: letters (either case), digits and `_` have their own; other bytes
    /// share the rest, so a bucket may hold words that begin differently (compared anyway).
    fn class(b: u8) -> usize {
        const CLASS: [u8; 256] = {
            let mut t = [0u8; 256];
            let mut b = 1;
            while b < 256 {
                let x = b as u8;
                t[b] = match x {
                    b'a'..=b'z' => x - b'a' + 1,
                    b'A'..=b'Z' => x - b'A' + 1,
                    b'0'..=b'9' => x - b'0' + 27,
                    b'_' => 37,
                    _ => 38 + x % 26,
                };
                b += 1;
            }
            t
        };
        usize::from(CLASS[usize::from(b)])
    }

    /// One-byte words are keyed by their byte and 0, longer ones by their first two bytes.
    fn key(word: &[u8]) -> usize {
        let at = |i: usize| word.get(i).map_or(0, |&b| Self::class(b));
        at(0) << 6 | at(1)
    }

    fn bucket(&self, key: usize) -> &[Box<[u8]>] {
        let (a, b) = (self.starts[key] as usize, self.starts[key + 1] as usize);
        &self.words[a..b]
    }

    /// False only when no listed word begins like `word` (its first byte alone for a
    /// one-byte `word`, its first two bytes otherwise).
    pub fn may_begin(&self, word: &[u8]) -> bool {
        !self.bucket(Self::key(word)).is_empty()
    }

    /// Whether `word` is listed (ASCII case-insensitively).
    pub fn contains(&self, word: &[u8]) -> bool {
        self.bucket(Self::key(word))
            .iter()
            .any(|w| w.len() == word.len() && w.eq_ignore_ascii_case(word))
    }

    /// The lengths of the listed words of two bytes or more that `hay` starts with (ASCII
    /// case-insensitively).
    pub fn prefixes<'s>(&'s self, hay: &'s [u8]) -> impl Iterator<Item = usize> + 's {
        let words = if hay.len() >= 2 {
            self.bucket(Self::key(&hay[..2]))
        } else {
            &[]
        };
        words
            .iter()
            .filter(move |w| w.len() >= 2 && starts_with_ci(hay, w))
            .map(|w| w.len())
    }
}

/// The first position of `needle` in `hay`, ASCII case-insensitively (`needle` lower case).
pub fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    find_ci_from(hay, needle, 0)
}

/// Like [`find_ci`], starting at `from`.
pub fn find_ci_from(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    if hay.len() < needle.len() || from > hay.len() - needle.len() {
        return None;
    }
    // A needle beginning with an upper-case letter is never found (no byte lowers to it).
    if first.is_ascii_uppercase() {
        return None;
    }
    let last = hay.len() - needle.len();
    // The candidates, where the needle's first byte is (either case): vectorised searches
    // skip the bytes between them, which a byte loop compares one by one.
    let window = &hay[from..=last];
    let upper = first.to_ascii_uppercase();
    let at = |off: usize| {
        let i = from + off;
        hay[i..i + needle.len()].eq_ignore_ascii_case(needle)
    };
    if upper == first {
        memchr::memchr_iter(first, window).find(|&off| at(off))
    } else {
        memchr::memchr2_iter(first, upper, window).find(|&off| at(off))
    }
    .map(|off| from + off)
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

    /// The byte loop [`find_ci_from`] replaced, as the reference.
    fn find_ci_from_bytewise(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
        let first = *needle.first()?;
        if hay.len() < needle.len() {
            return None;
        }
        (from..=hay.len() - needle.len()).find(|&i| {
            hay[i].to_ascii_lowercase() == first
                && hay[i..i + needle.len()].eq_ignore_ascii_case(needle)
        })
    }

    /// The vectorised search finds what the byte loop found: 300,000 random haystacks,
    /// needles (lower case, upper case, mixed, non-letters first, empty) and start offsets
    /// over a small alphabet, so that matches and near misses are frequent.
    #[test]
    fn find_ci_from_keeps_the_byte_loop() {
        const ALPHABET: &[u8] = b"aAbB.:_0 \xe9\xc3<";
        let mut rng = crate::testutil::Rng(0xf1d_c1f0_0d5e_a2c4);
        let mut found = 0;
        for _ in 0..300_000 {
            let mut pick = |n: u64| -> Vec<u8> {
                (0..rng.below(n))
                    .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize])
                    .collect()
            };
            let hay = pick(70);
            let needle = pick(4);
            let from = (rng.below(80)) as usize;
            let expected = find_ci_from_bytewise(&hay, &needle, from);
            assert_eq!(
                find_ci_from(&hay, &needle, from),
                expected,
                "{hay:?} {needle:?} {from}"
            );
            found += usize::from(expected.is_some());
        }
        assert!(found > 20_000, "{found}");
    }

    #[test]
    fn word_index() {
        let words: &[&[u8]] = &[b"UNION", b"u", b"un", b"Select", b"x$y", b"x%y", b"md5"];
        let ix = WordIndex::of(words);
        for w in words {
            assert!(ix.contains(w) && ix.contains(&w.to_ascii_lowercase()));
            assert!(ix.contains(&w.to_ascii_uppercase()) && ix.may_begin(w));
        }
        for w in [&b"unio"[..], b"unions", b"x", b"", b"x&y", b"sel", b"md"] {
            assert!(!ix.contains(w), "{w:?}");
        }
        assert!(!ix.may_begin(b"qz") && !ix.may_begin(b"") && ix.may_begin(b"Se"));
        let mut found: Vec<usize> = ix.prefixes(b"UnIoNs").collect();
        found.sort();
        assert_eq!(found, [2, 5]);
        assert_eq!(ix.prefixes(b"u").count(), 0);
        assert_eq!(ix.prefixes(b"md5(").collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn byte_sets() {
        let s = ByteSet::of("Tom & Jérôme".as_bytes());
        assert!(s.has(b'&') && s.has(b't') && s.has(b'T') && s.has(b'm'));
        assert!(!s.has(b'x') && !s.has(b'<') && !s.has(0));
        assert!(s.upper && s.non_ascii && s.has(0xc3));
        // Non-ASCII bytes set no ASCII bit (0xc3 & 0x7f is `C`, 0xa9 & 0x7f is `)`).
        assert!(!s.has(b'c') && !s.has(b')'));
        assert!(s.has_all(b"TOM") && !s.has_all(b"tomx") && s.has_any(b"x&"));
        let e = ByteSet::of(b"");
        assert!(!e.upper && !e.non_ascii && !e.has(0) && !e.has_any(b"a\x7f"));
        assert!(s.has_mask(needle_mask(b"TOM")) && !s.has_mask(needle_mask(b"tomx")));
        assert!(s.has_mask(needle_mask(b"")) && !e.has_mask(needle_mask(b"a")));
        let d = ByteSet::of(b"\x00\x7f");
        assert!(d.has(0) && d.has(0x7f) && !d.upper && !d.non_ascii);
    }
}
