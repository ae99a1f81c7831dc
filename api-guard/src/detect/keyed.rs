//! A keyed hash for the detectors' caches of client-chosen text (clean values, tokens): a
//! strongly universal hash, Lemire and Kaser's "Multilinear" family with 128-bit multipliers
//! over 64-bit words — `(m0 + m1·w1 + m2·w2 + …) mod 2^128`, its top 64 bits. For any two
//! distinct inputs a client can choose, they share a hash with probability about 2^-63
//! over the process's random multipliers, which clients never see (a cache only shows
//! whether something was flagged). That is what a cache keyed by hash needs — nothing can
//! be aimed at an entry — at about six instructions per 8 bytes instead of SipHash's twenty.
//!
//! Inputs are laid out as fields at fixed word positions, zero-padded, with a header word
//! holding what tells them apart (lengths, kinds): distinct inputs are distinct word vectors.

use std::hash::{BuildHasher as _, RandomState};

pub struct Multilinear {
    /// Random 128-bit multipliers: the offset, the header word's, then one per word.
    keys: Box<[u128]>,
}

impl Multilinear {
    /// Multipliers for inputs of up to `words` 64-bit words after the header.
    pub fn new(words: usize) -> Self {
        // SipHash under a random key is a pseudo-random function: its outputs on distinct
        // counters are independent random words.
        let seed = RandomState::new();
        let keys = (0..words + 2)
            .map(|i| {
                let hi = seed.hash_one((i, 0u8));
                let lo = seed.hash_one((i, 1u8));
                (u128::from(hi) << 64) | u128::from(lo)
            })
            .collect();
        Self { keys }
    }

    /// The sum so far for an input whose header word is `header`.
    pub fn start(&self, header: u64) -> u128 {
        self.keys[0].wrapping_add(self.keys[1].wrapping_mul(u128::from(header)))
    }

    /// `acc` plus `bytes` as little-endian words from word `first` on (the last one
    /// zero-padded). Callers bound each field to its words: a field past the last
    /// multiplier is left out.
    #[inline]
    pub fn add(&self, mut acc: u128, first: usize, bytes: &[u8]) -> u128 {
        let (full, rest) = (bytes.len() / 8, bytes.len() % 8);
        let Some(keys) = self
            .keys
            .get(2 + first..2 + first + bytes.len().div_ceil(8))
        else {
            debug_assert!(false, "a field past its words");
            return acc;
        };
        for (chunk, k) in bytes.chunks_exact(8).zip(keys) {
            acc = acc.wrapping_add(k.wrapping_mul(u128::from(load(chunk))));
        }
        if let (true, Some(k)) = (rest > 0, keys.get(full)) {
            acc = acc.wrapping_add(k.wrapping_mul(u128::from(tail(bytes, rest))));
        }
        acc
    }

    /// The hash of the sum.
    pub fn finish(acc: u128) -> u64 {
        (acc >> 64) as u64
    }

    #[cfg(test)]
    fn key(&self, i: usize) -> u128 {
        self.keys[i]
    }
}

/// The little-endian word of `b`'s first 8 bytes (it has at least 8), `b[i]` at bits 8i.
#[inline]
fn load(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// The last `n` (1 to 7) bytes of `b` as a zero-padded little-endian word, read with at most
/// two loads instead of a copy of unknown length: the 8 bytes ending there shifted down,
/// or in a short `b` two overlapping halves (the bytes they share are the same).
#[inline]
fn tail(b: &[u8], n: usize) -> u64 {
    let rest = &b[b.len() - n..];
    if b.len() >= 8 {
        return load(&b[b.len() - 8..]) >> (8 * (8 - n));
    }
    let u32_at = |i: usize| {
        u64::from(u32::from_le_bytes([
            rest[i],
            rest[i + 1],
            rest[i + 2],
            rest[i + 3],
        ]))
    };
    let u16_at = |i: usize| u64::from(u16::from_le_bytes([rest[i], rest[i + 1]]));
    match n {
        4..=7 => u32_at(0) | u32_at(n - 4) << (8 * (n - 4)),
        2 | 3 => u16_at(0) | u16_at(n - 2) << (8 * (n - 2)),
        _ => u64::from(rest[0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word loop is the multilinear sum written out: every byte at its place in its
    /// field's zero-padded words.
    #[test]
    fn hash_is_the_multilinear_sum() {
        let h = Multilinear::new(64);
        let mut rng = crate::testutil::Rng(0x0c1e_a5e7);
        for _ in 0..5_000 {
            let a: Vec<u8> = (0..rng.below(60)).map(|_| rng.below(256) as u8).collect();
            let b: Vec<u8> = (0..rng.below(300)).map(|_| rng.below(256) as u8).collect();
            let header = rng.next();
            let mut want = h
                .key(0)
                .wrapping_add(h.key(1).wrapping_mul(u128::from(header)));
            for (field, first) in [(&a, 0), (&b, 8)] {
                for (i, byte) in field.iter().enumerate() {
                    let word = u128::from(*byte) << (8 * (i % 8));
                    want = want.wrapping_add(h.key(2 + first + i / 8).wrapping_mul(word));
                }
            }
            let got = h.add(h.add(h.start(header), 0, &a), 8, &b);
            assert_eq!(Multilinear::finish(got), Multilinear::finish(want));
        }
    }

    /// The tail word is the trailing bytes, zero-padded, whatever their length.
    #[test]
    fn tail_words() {
        let bytes: Vec<u8> = (1..=20).collect();
        for len in 1..=20 {
            for n in 1..=7.min(len) {
                let b = &bytes[..len];
                let mut w = [0u8; 8];
                w[..n].copy_from_slice(&b[len - n..]);
                assert_eq!(tail(b, n), u64::from_le_bytes(w), "{len} {n}");
            }
        }
    }

    /// Two processes (two key sets) hash one input apart; one key set hashes near inputs
    /// apart (a byte, a zero byte more, a swap of fields).
    #[test]
    fn keys_are_per_process_and_inputs_stay_apart() {
        let (h, g) = (Multilinear::new(8), Multilinear::new(8));
        let of = |h: &Multilinear, header: u64, bytes: &[u8]| {
            Multilinear::finish(h.add(h.start(header), 0, bytes))
        };
        assert_ne!(of(&h, 1, b"abc"), of(&g, 1, b"abc"));
        let all = [
            of(&h, 3, b"abc"),
            of(&h, 4, b"abc\0"),
            of(&h, 3, b"abd"),
            of(&h, 2, b"abc"),
            of(&h, 0, b""),
        ];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }
}
