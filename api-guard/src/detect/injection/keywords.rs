//! One combined keyword index over the trigger words of every word-driven pre-check, and a
//! value's summary against it: the value is cut once into its runs of ASCII letters, each
//! run looked up once, and the families read the bits they need instead of walking the
//! value against their own word lists.
//!
//! The summary is a necessary condition, never a verdict. Every listed word is keyed by its
//! first run of letters (lower case). A family's own walk finds a listed word only where
//! neither end of that run touches another ASCII letter (a word begins after a non-letter
//! and ends before one, see each family's walk), so that run is a whole letter run of the
//! value and its lookup sets the family's bit. The one exception, SQL heads after a number
//! (`1eunion`, `0xaunion`), is covered by also looking up the suffixes of a letter run that
//! follows a digit or `.` behind its hexadecimal prefix. A family whose bit is clear skips its
//! walk; a set bit sends it to the walk as before, which decides.
//! Each family lists only the words its walk can find (see its `trigger_words`).

use std::{cell::Cell, sync::LazyLock};

/// Which word list a listed word belongs to: one bit each.
pub type Bits = u32;

/// libinjection's keyword heads of the significant token types (`sqli::KEYWORD_HEADS`).
pub const SQL_HEADS: Bits = 1 << 0;
/// The same with its operator keywords (`sqli::KEYWORD_HEADS_OPS`).
pub const SQL_HEADS_OPS: Bits = 1 << 1;
/// The heads of every typed keyword (`sqli::ANY_HEAD_INDEX`).
pub const SQL_ANY_HEADS: Bits = 1 << 2;
/// The SQL grammar checks' words (`sqli::GRAMMAR_WORDS`).
pub const SQL_GRAMMAR: Bits = 1 << 3;
/// Command names, wrappers, tool families and Windows programs (`cmdi::classify`).
pub const CMD_NAMES: Bits = 1 << 4;

/// Every family's listed words, with their bits.
fn lists() -> Vec<(Bits, Vec<&'static [u8]>)> {
    let mut lists = super::sqli::trigger_words().to_vec();
    lists.push((CMD_NAMES, super::cmdi::trigger_words()));
    lists
}

/// The 64-bit FNV-1a hash of a run of ASCII letters, case folded. Runs that share a hash (or
/// a slot and a fingerprint, below) share bits: that only sends a value to a walk it did not
/// need, never away from one it needs.
fn hash(run: &[u8]) -> u64 {
    run.iter().fold(HASH_START, |h, &x| hash_step(h, x))
}

const HASH_START: u64 = 0xcbf2_9ce4_8422_2325;

fn hash_step(h: u64, letter: u8) -> u64 {
    (h ^ u64::from(letter | 0x20)).wrapping_mul(0x0100_0000_01b3)
}

/// ASCII letters, as a table (one load per byte).
static LETTER: [bool; 256] = {
    let mut t = [false; 256];
    let mut x = 0;
    while x < 256 {
        t[x] = (x as u8).is_ascii_alphabetic();
        x += 1;
    }
    t
};

/// The first run of ASCII letters of `word`, if it has one.
fn first_letters(word: &[u8]) -> Option<&[u8]> {
    let start = word.iter().position(u8::is_ascii_alphabetic)?;
    let len = word[start..]
        .iter()
        .position(|x| !x.is_ascii_alphabetic())
        .unwrap_or(word.len() - start);
    Some(&word[start..start + len])
}

/// An open-addressing table from a run's hash to the bits of the listed words keyed by that
/// run: slot by the hash's top bits, a 32-bit fingerprint (never 0, which marks an empty
/// slot) from its low bits, linear probing. No keys are stored: a lookup is a few loads.
struct Index {
    slots: Box<[(u32, Bits)]>,
    /// The hash's top bits pick the first slot: 64 minus log2 of the slot count.
    shift: u32,
    /// Lists holding a word without letters: their bit cannot be told by letter runs and is
    /// always set.
    always: Bits,
}

impl Index {
    fn build() -> Self {
        let mut keyed = Vec::new();
        let mut always = 0;
        for (bit, words) in lists() {
            for w in words {
                match first_letters(w) {
                    Some(run) => keyed.push((hash(run), bit)),
                    None => always |= bit,
                }
            }
        }
        // At most a quarter full: probes stay short.
        let slots = (keyed.len() * 4).next_power_of_two().max(64);
        let mut index = Self {
            slots: vec![(0, 0); slots].into_boxed_slice(),
            shift: 64 - slots.trailing_zeros(),
            always,
        };
        for (h, bit) in keyed {
            let mut i = index.first_slot(h);
            let fp = fingerprint(h);
            loop {
                let slot = &mut index.slots[i];
                if slot.0 == 0 || slot.0 == fp {
                    *slot = (fp, slot.1 | bit);
                    break;
                }
                i = (i + 1) & (slots - 1);
            }
        }
        index
    }

    fn first_slot(&self, h: u64) -> usize {
        (h >> self.shift) as usize
    }

    /// The bits of the listed words keyed by a run with hash `h`.
    fn get(&self, h: u64) -> Bits {
        let (fp, mask) = (fingerprint(h), self.slots.len() - 1);
        let mut i = self.first_slot(h);
        loop {
            let (f, bits) = self.slots[i];
            if f == fp {
                return bits;
            }
            if f == 0 {
                return 0;
            }
            i = (i + 1) & mask;
        }
    }
}

fn fingerprint(h: u64) -> u32 {
    (h as u32) | 1
}

static INDEX: LazyLock<Index> = LazyLock::new(Index::build);

/// The bits of every listed word whose key run is a letter run of `v` (see the module).
pub fn scan(v: &[u8]) -> Bits {
    let index = &*INDEX;
    let mut bits = index.always;
    let mut i = 0;
    while i < v.len() {
        if !LETTER[usize::from(v[i])] {
            i += 1;
            continue;
        }
        // The run, hashed as it is read.
        let (start, mut h) = (i, HASH_START);
        while let Some(&x) = v.get(i).filter(|&&x| LETTER[usize::from(x)]) {
            h = hash_step(h, x);
            i += 1;
        }
        let run = &v[start..i];
        bits |= index.get(h);
        // After a number, libinjection may end the number inside the run (hex digits, `x`)
        // and start a word there.
        if start > 0 && (v[start - 1].is_ascii_digit() || v[start - 1] == b'.') {
            for p in 1..run.len() {
                if !matches!(run[p - 1] | 0x20, b'a'..=b'f' | b'x') {
                    break;
                }
                bits |= index.get(hash(&run[p..]));
            }
        }
    }
    bits
}

/// A value's [`scan`], done on first use and kept: values no word-driven pre-check reaches
/// are never scanned.
#[derive(Debug, Clone)]
pub struct Words<'a> {
    value: &'a [u8],
    bits: Cell<Option<Bits>>,
}

impl<'a> Words<'a> {
    pub fn new(value: &'a [u8]) -> Self {
        Self {
            value,
            bits: Cell::new(None),
        }
    }

    /// Whether a word of any of the lists `bits` may occur.
    #[inline]
    pub fn any(&self, bits: Bits) -> bool {
        let all = match self.bits.get() {
            Some(b) => b,
            None => {
                let b = scan(self.value);
                self.bits.set(Some(b));
                b
            }
        };
        all & bits != 0
    }
}

/// Random values for the checkers' index tests: 60,000 values of 1 to 6 pieces, a third of
/// them listed words, every other value upper-cased.
#[cfg(test)]
pub(super) fn random_values<'a>(
    seed: u64,
    listed: &'a [&'a [u8]],
    pieces: &'a [&'a str],
) -> impl Iterator<Item = Vec<u8>> + 'a {
    let mut rng = crate::testutil::Rng(seed);
    (0..60_000).map(move |round| {
        let len = 1 + rng.below(6) as usize;
        let mut v = Vec::new();
        for _ in 0..len {
            if rng.below(3) == 0 {
                v.extend_from_slice(listed[rng.below(listed.len() as u64) as usize]);
            } else {
                v.extend_from_slice(pieces[rng.below(pieces.len() as u64) as usize].as_bytes());
            }
        }
        if round % 2 == 1 {
            v.make_ascii_uppercase();
        }
        v
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_word_is_found() {
        for (bit, words) in lists() {
            for w in words {
                // Standing alone, in either case, and between non-letters.
                for v in [
                    w.to_vec(),
                    w.to_ascii_uppercase(),
                    [b"1 ", w, b".x"].concat(),
                    [b"(", w, b"("].concat(),
                ] {
                    assert!(
                        Words::new(&v).any(bit),
                        "{:?} {bit}",
                        String::from_utf8_lossy(&v)
                    );
                }
            }
        }
        assert_eq!(INDEX.always, 0);
    }

    #[test]
    fn values_without_listed_words_set_no_bit() {
        for v in [
            "Stainless steel water bottle 5/3",
            "SKU-5-0003",
            "Sydney",
            "",
            "12345",
            "unions",
            "reunion",
        ] {
            assert_eq!(scan(v.as_bytes()), 0, "{v}");
        }
        assert_ne!(scan(b"1 union select") & SQL_HEADS, 0);
        // After a number, a word may begin behind the number's hexadecimal letters.
        assert_ne!(scan(b"1eunion") & SQL_HEADS, 0);
        assert_ne!(scan(b"0xaunion") & SQL_HEADS, 0);
        assert_eq!(scan(b"-eunion") & SQL_HEADS, 0);
    }

    #[test]
    fn runs_hash_case_folded() {
        assert_eq!(hash(b"UnIoN"), hash(b"union"));
        assert_ne!(hash(b"in"), hash(b"on"));
        assert_ne!(hash(b"a"), hash(b"aa"));
        assert_eq!(INDEX.get(hash(b"zzzqqq")), 0);
        assert_ne!(INDEX.get(hash(b"SELECT")) & SQL_HEADS, 0);
    }
}
