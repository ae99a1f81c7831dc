//! Digit-shaped classes: payment cards, US SSNs and phone numbers. A candidate is read
//! once as a bounded chunk (optional `+` or `(`, at most 19 digits in at most 8 groups,
//! gaps of one or two of ` -.()`), then judged as a whole, most specific class first, so
//! a card number is not also counted as a phone.

use super::{is_word, DataClass};

const MAX_DIGITS: usize = 19;
const MAX_GROUPS: usize = 8;

#[derive(Default)]
struct Chunk {
    plus: bool,
    paren: bool,
    digits: [u8; MAX_DIGITS],
    ndigits: usize,
    groups: [usize; MAX_GROUPS],
    ngroups: usize,
    /// The gap before group `k + 1` (one or two bytes, second may be 0).
    gaps: [[u8; 2]; MAX_GROUPS],
}

impl Chunk {
    fn groups(&self) -> &[usize] {
        &self.groups[..self.ngroups]
    }
    fn gaps(&self) -> &[[u8; 2]] {
        &self.gaps[..self.ngroups.saturating_sub(1)]
    }
    fn digits(&self) -> &[u8] {
        &self.digits[..self.ndigits]
    }
    /// All gaps are the same single byte from `allowed` (or there are none).
    fn uniform_gaps(&self, allowed: &[u8]) -> bool {
        let gaps = self.gaps();
        gaps.iter()
            .all(|g| g[1] == 0 && allowed.contains(&g[0]) && Some(g) == gaps.first())
    }
}

fn is_gap(c: u8) -> bool {
    matches!(c, b' ' | b'-' | b'.' | b'(' | b')')
}

/// A digit class starting at `i` (a digit, `+` or `(`), and where it ends.
pub(super) fn at(b: &[u8], i: usize) -> Option<(DataClass, usize)> {
    // Not inside a word, a decimal or a dashed identifier (`order-4111...`, uuid parts).
    if let Some(p) = i.checked_sub(1).and_then(|p| b.get(p)) {
        let dashed_word = *p == b'-'
            && i.checked_sub(2)
                .and_then(|q| b.get(q))
                .is_some_and(|&q| is_word(q));
        if is_word(*p) || matches!(p, b'.' | b'+' | b'(' | b')') || dashed_word {
            return None;
        }
    }
    // Most numbers in text are one short group (a count, a year, an id), which no class
    // is: each needs several groups, a `+` or `(`, or 13 digits. Refused before the chunk
    // is built, by the rule `read` continues a chunk with.
    if b.get(i).is_some_and(u8::is_ascii_digit) {
        let j = i + b
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take(13)
            .take_while(|d| d.is_ascii_digit())
            .count();
        let digit = |k: usize| b.get(k).is_some_and(u8::is_ascii_digit);
        let gap = |k: usize| b.get(k).is_some_and(|&g| is_gap(g));
        let continues = gap(j) && (digit(j + 1) || (gap(j + 1) && digit(j + 2)));
        if j - i < 13 && !continues {
            return None;
        }
    }
    let (chunk, end) = read(b, i)?;
    let class = card(&chunk)
        .or_else(|| ssn(&chunk))
        .or_else(|| phone(&chunk))?;
    Some((class, end))
}

fn read(b: &[u8], i: usize) -> Option<(Chunk, usize)> {
    let mut c = Chunk::default();
    let mut j = i;
    if b.get(j) == Some(&b'+') {
        c.plus = true;
        j += 1;
    } else if b.get(j) == Some(&b'(') {
        c.paren = true;
        j += 1;
    }
    loop {
        let start = j;
        while let Some(&d) = b.get(j).filter(|d| d.is_ascii_digit()) {
            *c.digits.get_mut(c.ndigits)? = d - b'0';
            c.ndigits += 1;
            j += 1;
        }
        if j == start {
            return None;
        }
        *c.groups.get_mut(c.ngroups)? = j - start;
        c.ngroups += 1;
        // A gap continues the chunk only if a digit follows it.
        let g0 = b.get(j).copied().filter(|&g| is_gap(g));
        let g1 = g0.and(b.get(j + 1).copied().filter(|&g| is_gap(g)));
        let (gap, len) = match (g0, g1) {
            (Some(a), Some(x)) if b.get(j + 2).is_some_and(u8::is_ascii_digit) => ([a, x], 2),
            (Some(a), _) if b.get(j + 1).is_some_and(u8::is_ascii_digit) => ([a, 0], 1),
            _ => break,
        };
        *c.gaps.get_mut(c.ngroups - 1)? = gap;
        j += len;
    }
    // The value must end here: not run on into a word.
    if b.get(j).is_some_and(|&n| is_word(n)) {
        return None;
    }
    Some((c, j))
}

fn card(c: &Chunk) -> Option<DataClass> {
    let n = c.ndigits;
    if c.plus || c.paren || !(13..=MAX_DIGITS).contains(&n) {
        return None;
    }
    let groups = c.groups();
    let grouped = match groups {
        [_] => true,
        [4, 6, 5] | [4, 6, 4] => true,
        [init @ .., last] => init.len() >= 3 && init.iter().all(|&g| g == 4) && *last <= 4,
        [] => false,
    };
    if !grouped || !c.uniform_gaps(b" -") {
        return None;
    }
    let d = c.digits();
    let prefix = |k: usize| d.iter().take(k).fold(0u32, |a, &x| a * 10 + u32::from(x));
    let brand = match (prefix(1), prefix(2), prefix(3), prefix(4)) {
        (4, ..) => matches!(n, 13 | 16 | 19),
        (_, 51..=55, ..) | (.., 2221..=2720) => n == 16,
        (_, 34 | 37, ..) => n == 15,
        (.., 6011) | (_, _, 644..=649, _) | (_, 65, ..) => n >= 16,
        (_, _, 300..=305, _) | (_, 36 | 38 | 39, ..) => n >= 14,
        (.., 3528..=3589) => n >= 16,
        (_, 62, ..) => n >= 16,
        _ => false,
    };
    (brand && luhn(d)).then_some(DataClass::PaymentCard)
}

fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &x)| {
            let x = u32::from(x);
            if k % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn ssn(c: &Chunk) -> Option<DataClass> {
    if c.plus || c.paren || c.groups() != [3, 2, 4] || !c.uniform_gaps(b"-") {
        return None;
    }
    let d = c.digits();
    let num = |r: std::ops::Range<usize>| {
        d.get(r)
            .map_or(0, |s| s.iter().fold(0u32, |a, &x| a * 10 + u32::from(x)))
    };
    let (area, group, serial) = (num(0..3), num(3..5), num(5..9));
    let ok = area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
    ok.then_some(DataClass::NationalId)
}

fn phone(c: &Chunk) -> Option<DataClass> {
    let d = c.digits();
    let n = c.ndigits;
    if c.plus {
        let ok = (8..=15).contains(&n) && d.first() != Some(&0);
        return ok.then_some(DataClass::Phone);
    }
    if c.paren {
        // `(area) rest`: the first gap closes the parenthesis, the rest are plain.
        let gaps = c.gaps();
        let first = gaps.first()?;
        let ok = (9..=11).contains(&n)
            && (2..=4).contains(c.groups().first()?)
            && matches!(first, [b')', 0] | [b')', b' '] | [b')', b'-'])
            && gaps
                .iter()
                .skip(1)
                .all(|g| g[1] == 0 && matches!(g[0], b' ' | b'-' | b'.'));
        return ok.then_some(DataClass::Phone);
    }
    // NANP: area and exchange codes start with 2-9.
    let ok = c.groups() == [3, 3, 4]
        && c.uniform_gaps(b"-. ")
        && d.first().is_some_and(|&x| x >= 2)
        && d.get(3).is_some_and(|&x| x >= 2);
    ok.then_some(DataClass::Phone)
}

#[cfg(test)]
mod tests {
    use super::super::counts_of;
    use super::DataClass::*;

    fn one(text: &str) -> Vec<(super::DataClass, u64)> {
        counts_of(text)
    }

    #[test]
    fn payment_cards() {
        for t in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5555555555554444",
            "2223000048400011",
            "378282246310005",
            "3782 822463 10005",
            "6011111111111117",
            "3530111333300000",
            "30569309025904",
            "6200000000000005",
            "card: 4012888888881881.",
            "[4111111111111111,5555555555554444]",
            "/cards/4111111111111111/charge",
        ] {
            let n = if t.starts_with('[') { 2 } else { 1 };
            assert_eq!(one(t), [(PaymentCard, n)], "{t}");
        }
        for t in [
            "4111111111111112",                     // fails Luhn
            "1234567890123452",                     // Luhn ok, no card prefix
            "9999999999999995",                     // Luhn ok, no card prefix
            "4111 1111-1111 1111",                  // mixed separators
            "41 11 11 11 11 11 11 11",              // not grouped in fours
            "order-4111111111111111",               // part of an identifier
            "abc4111111111111111",                  // inside a word
            "4111111111111111abc",                  // runs into a word
            "12.4111111111111111",                  // a decimal
            "41111111111111111111",                 // 20 digits
            "1706659200000",                        // millisecond timestamp
            "550e8400-e29b-41d4-a716-411111111111", // uuid digits
            "+4111111111111111",                    // phone-shaped, not a card
        ] {
            assert!(!one(t).iter().any(|(c, _)| *c == PaymentCard), "{t}");
        }
    }

    #[test]
    fn ssns() {
        assert_eq!(one("ssn 123-45-6789"), [(NationalId, 1)]);
        for t in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-6789",
            "123-45-0000",
            "123 45 6789",
            "123456789",
            "x123-45-6789",
        ] {
            assert_eq!(one(t), [], "{t}");
        }
    }

    #[test]
    fn phones() {
        for t in [
            "+14155550123",
            "+1 415 555 0123",
            "+44 20 7946 0958",
            "+49-151-1234-5678",
            "+1 (415) 555-0123",
            "call 415-555-0123 now",
            "415.555.0123",
            "415 555 0123",
            "(415) 555-0123",
            "(415)555-0123",
            "(02) 1234 5678",
        ] {
            assert_eq!(one(t), [(Phone, 1)], "{t}");
        }
        for t in [
            "2024-01-31",
            "01/31/2024",
            "192.168.1.1",
            "10.0.0.255",
            "v1.2.3",
            "1.2.3",
            "4155550123",
            "+123",
            "+0 415 555 0123 45678",
            "123-555-0123",
            "415-155-0123",
            "415-555.0123",
            "(1) 2",
            "12:30:45",
            "+05:30",
            "1234567890123",
            "2024-01-31T10:00:00+01:00",
        ] {
            assert_eq!(one(t), [], "{t}");
        }
    }

    #[test]
    fn luhn_known_values() {
        assert!(super::luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!super::luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]));
    }
}
