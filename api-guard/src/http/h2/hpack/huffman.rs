//! The HPACK Huffman code (RFC 7541 §5.2, Appendix B) and a decoder that consumes a whole
//! input byte per table lookup.
//!
//! The code in Appendix B is canonical: within one length, codes increase with the symbol
//! value, and each length continues where the previous one stopped. So the code lengths
//! below determine every code, and the codes, the decoding tree and the state tables (per
//! nibble, then per byte) are all derived from them at compile time. A state is an internal
//! node of the code tree: the bits of the current symbol read so far.

use super::HpackError;

/// Code length in bits of each symbol 0..=255 and of EOS (256), from RFC 7541 Appendix B.
#[rustfmt::skip]
pub(crate) const CODE_LENGTHS: [u8; 257] = [
    // 0x00..=0x1f: control characters.
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    // ' ' ! " # $ % & ' ( ) * + , - . /
     6, 10, 10, 12, 13,  6,  8, 11, 10, 10,  8, 11,  8,  6,  6,  6,
    // 0 1 2 3 4 5 6 7 8 9 : ; < = > ?
     5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8, 15,  6, 12, 10,
    // @ A B C D E F G H I J K L M N O
    13,  6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,
    // P Q R S T U V W X Y Z [ \ ] ^ _
     7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8, 13, 19, 13, 14,  6,
    // ` a b c d e f g h i j k l m n o
    15,  5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5,
    // p q r s t u v w x y z { | } ~ DEL
     6,  7,  6,  5,  5,  6,  7,  7,  7,  7,  7, 15, 11, 14, 13, 28,
    // 0x80..=0xff
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    // EOS
    30,
];

const EOS: u16 = 256;
const MAX_LEN: usize = 30;

/// The code of each symbol (right-aligned), assigned canonically from [`CODE_LENGTHS`].
pub(crate) const CODES: [u32; 257] = canonical_codes();

const fn canonical_codes() -> [u32; 257] {
    let mut count = [0u32; MAX_LEN + 1];
    let mut s = 0;
    while s < 257 {
        count[CODE_LENGTHS[s] as usize] += 1;
        s += 1;
    }
    // First code of each length.
    let mut next = [0u32; MAX_LEN + 1];
    let mut code = 0u32;
    let mut len = 1;
    while len <= MAX_LEN {
        code = (code + count[len - 1]) << 1;
        next[len] = code;
        len += 1;
    }
    let mut codes = [0u32; 257];
    let mut s = 0;
    while s < 257 {
        let len = CODE_LENGTHS[s] as usize;
        codes[s] = next[len];
        next[len] += 1;
        s += 1;
    }
    codes
}

/// A nibble step, packed in a `u32`: from a state, four input bits lead to the state in
/// bits 0..8 and emit at most one symbol (every code has five bits or more), in bits 8..16,
/// with the flags below in bits 16..24. Two of them make a byte step.
const SYM_SHIFT: u32 = 8;
const FLAGS_SHIFT: u32 = 16;

/// The step emits its symbol.
const EMIT: u32 = 1 << FLAGS_SHIFT;
/// Ending the input in the new state is valid: it is the root, or up to 7 one-bits below it
/// (the padding of §5.2, a prefix of EOS).
const ACCEPT: u32 = 2 << FLAGS_SHIFT;
/// The bits complete EOS, which §5.2 forbids inside a string.
const FAIL: u32 = 4 << FLAGS_SHIFT;

/// Children of the 256 internal nodes of the code tree (node 0 is the root). A child is a
/// node index, or `LEAF | symbol`.
const LEAF: u16 = 0x8000;

const fn build_tree() -> [[u16; 2]; 256] {
    // 0 as a child means "not yet created": the root is never anyone's child.
    let mut tree = [[0u16; 2]; 256];
    let mut nodes = 1usize;
    let mut s = 0;
    while s < 257 {
        let len = CODE_LENGTHS[s] as usize;
        let code = CODES[s];
        let mut node = 0usize;
        let mut i = len;
        while i > 1 {
            i -= 1;
            let bit = ((code >> i) & 1) as usize;
            if tree[node][bit] == 0 {
                tree[node][bit] = nodes as u16;
                nodes += 1;
            }
            node = tree[node][bit] as usize;
        }
        tree[node][(code & 1) as usize] = LEAF | s as u16;
        s += 1;
    }
    // A complete prefix code with 257 leaves has exactly 256 internal nodes.
    assert!(nodes == 256);
    tree
}

const fn build_steps() -> [[u32; 16]; 256] {
    let tree = build_tree();
    // Nodes reached from the root by up to seven 1-bits: valid places to stop.
    let mut accept = [false; 256];
    let mut node = 0usize;
    let mut depth = 0;
    while depth <= 7 {
        accept[node] = true;
        node = tree[node][1] as usize; // internal: the all-ones path is EOS's, 30 bits long
        depth += 1;
    }
    let mut steps = [[0u32; 16]; 256];
    let mut state = 0;
    while state < 256 {
        let mut nibble = 0;
        while nibble < 16 {
            let mut node = state;
            let mut flags = 0u32;
            let mut sym = 0u32;
            let mut bit = 4;
            while bit > 0 {
                bit -= 1;
                let child = tree[node][(nibble >> bit) & 1];
                if child & LEAF != 0 {
                    if child & !LEAF == EOS {
                        flags |= FAIL;
                    } else {
                        flags |= EMIT;
                        sym = (child & !LEAF) as u32;
                    }
                    node = 0;
                } else {
                    node = child as usize;
                }
            }
            if accept[node] {
                flags |= ACCEPT;
            }
            steps[state][nibble] = node as u32 | sym << SYM_SHIFT | flags;
            nibble += 1;
        }
        state += 1;
    }
    steps
}

/// The nibble steps, only used to build [`BYTE_STEPS`].
const STEPS: [[u32; 16]; 256] = build_steps();

/// One byte of input per lookup: two nibble steps composed. Bits 0..8 are the next state,
/// 8..16 and 16..24 the emitted symbols (at most two: five bits or more each, the first
/// possibly begun before this byte), bits 24..26 how many were emitted, then the flags.
const BYTE_COUNT_SHIFT: u32 = 24;
const BYTE_ACCEPT: u32 = 1 << 26;
const BYTE_FAIL: u32 = 1 << 27;

const fn build_byte_steps() -> [[u32; 256]; 256] {
    let mut table = [[0u32; 256]; 256];
    let mut state = 0;
    while state < 256 {
        let mut byte = 0;
        while byte < 256 {
            let hi = STEPS[state][byte >> 4];
            let lo = STEPS[(hi & 0xff) as usize][byte & 0x0f];
            let mut entry = lo & 0xff;
            let mut count = 0;
            if hi & EMIT != 0 {
                entry |= (hi >> SYM_SHIFT & 0xff) << (8 + 8 * count);
                count += 1;
            }
            if lo & EMIT != 0 {
                entry |= (lo >> SYM_SHIFT & 0xff) << (8 + 8 * count);
                count += 1;
            }
            entry |= count << BYTE_COUNT_SHIFT;
            if lo & ACCEPT != 0 {
                entry |= BYTE_ACCEPT;
            }
            if (hi | lo) & FAIL != 0 {
                entry |= BYTE_FAIL;
            }
            table[state][byte] = entry;
            byte += 1;
        }
        state += 1;
    }
    table
}

/// 256 KiB, of which a typical header string touches a few rows.
static BYTE_STEPS: [[u32; 256]; 256] = build_byte_steps();

/// Appends the Huffman decoding of `src` to `out`. Fails on EOS, on padding that is longer
/// than 7 bits or not all ones, and with [`HpackError::HeaderListTooLarge`] when it would
/// append more than `max_out` bytes; `out` never grows past `max_out + 2` new bytes, so a
/// hostile string cannot exceed the caller's budget. On error `out` is left as it was.
pub(crate) fn decode(src: &[u8], max_out: usize, out: &mut Vec<u8>) -> Result<(), HpackError> {
    let start = out.len();
    // At most one byte per five bits; one more than the budget is enough to see it
    // exceeded, and one more lets every step store two bytes.
    let room = (src.len().saturating_mul(8) / 5)
        .min(max_out.saturating_add(1))
        .saturating_add(1);
    out.resize(start.saturating_add(room), 0);
    let buf = out.get_mut(start..).unwrap_or_default();
    // Branch-free inner loop: both symbol slots are always stored at `n`, and `n` advances
    // by the number emitted; failures are collected and checked once at the end.
    let mut n = 0usize;
    let mut state = 0usize;
    let mut seen = 0u32;
    let mut last = BYTE_ACCEPT;
    for &byte in src {
        let step = BYTE_STEPS[state & 0xff][usize::from(byte)];
        if let Some(slots) = buf.get_mut(n..n + 2) {
            slots.copy_from_slice(&[(step >> 8) as u8, (step >> 16) as u8]);
        }
        n += (step >> BYTE_COUNT_SHIFT & 3) as usize;
        state = (step & 0xff) as usize;
        seen |= step;
        last = step;
    }
    let result = if seen & BYTE_FAIL != 0 || last & BYTE_ACCEPT == 0 {
        Err(HpackError::Huffman)
    } else if n > max_out {
        Err(HpackError::HeaderListTooLarge)
    } else {
        Ok(())
    };
    // `n` < `room` unless it exceeded the budget.
    out.truncate(if result.is_ok() { start + n } else { start });
    result
}

/// The Huffman encoding of `src` (the test encoder's, and the tests' own checks).
#[cfg(test)]
pub(crate) fn encode(src: &[u8], out: &mut Vec<u8>) {
    let (mut acc, mut bits) = (0u64, 0u32);
    for &b in src {
        let len = u32::from(CODE_LENGTHS[usize::from(b)]);
        acc = (acc << len) | u64::from(CODES[usize::from(b)]);
        bits += len;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        // Pad with the most significant bits of EOS (all ones).
        out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) as u8);
    }
}

/// Length of the Huffman encoding of `src` in bytes.
#[cfg(test)]
pub(crate) fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src
        .iter()
        .map(|&b| usize::from(CODE_LENGTHS[usize::from(b)]))
        .sum();
    bits.div_ceil(8)
}
