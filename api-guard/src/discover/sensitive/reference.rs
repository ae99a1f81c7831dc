//! The scanner and [`classify_name`] as they were before issue 15 made them cheaper, kept
//! only for the differential tests: the new ones must find exactly the same.

use super::{ClassCounts, DataClass};

pub(super) fn classify_bytes(text: &[u8], max_bytes: usize, counts: &mut ClassCounts) -> bool {
    let b = text.get(..max_bytes).unwrap_or(text);
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match hit_at(b, i, c) {
            Some((class, end)) => {
                counts.add(class, 1);
                i = end.max(i + 1);
            }
            None => {
                i += 1;
                if is_word(c) {
                    while b.get(i).is_some_and(|&x| is_word(x)) {
                        i += 1;
                    }
                }
            }
        }
    }
    b.len() < text.len()
}

fn hit_at(b: &[u8], i: usize, c: u8) -> Option<(DataClass, usize)> {
    match c {
        b'0'..=b'9' | b'+' | b'(' => numbers::at(b, i),
        b'@' => tokens::email_at(b, i),
        b'-' => tokens::private_key_at(b, i),
        b'A'..=b'Z' | b'a'..=b'z' => tokens::at(b, i),
        _ => None,
    }
}

pub(super) fn classify_name(name: &str) -> Option<DataClass> {
    if name.len() > 64 {
        return None;
    }
    let mut buf = [0u8; 64];
    let mut n = 0;
    for c in name.bytes().filter(u8::is_ascii_alphanumeric) {
        buf[n] = c.to_ascii_lowercase();
        n += 1;
    }
    let norm = &buf[..n];
    let has = |w: &[u8]| norm.windows(w.len()).any(|x| x == w);
    if has(b"password") || has(b"passwd") || has(b"passphrase") || matches!(norm, b"pwd" | b"pass")
    {
        return Some(DataClass::Password);
    }
    if has(b"apikey")
        || has(b"accesskey")
        || has(b"secretkey")
        || has(b"clientsecret")
        || norm == b"secret"
    {
        return Some(DataClass::ApiKey);
    }
    None
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn domain_ok(domain: &[u8]) -> bool {
    if domain.is_empty() || domain.len() > 253 {
        return false;
    }
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in domain.split(|&c| c == b'.') {
        let ok = (1..=63).contains(&label.len())
            && label
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'-')
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-');
        if !ok {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && last.len() >= 2 && last.iter().all(u8::is_ascii_alphabetic)
}

mod tokens {
    use base64::Engine;

    use super::domain_ok;
    use super::{is_word, DataClass};

    type Hit = Option<(DataClass, usize)>;

    fn is_b64url(c: u8) -> bool {
        c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
    }

    /// Length of the run of bytes satisfying `f` from `i`, reading at most `max + 1` bytes.
    fn run(b: &[u8], i: usize, max: usize, f: impl Fn(u8) -> bool) -> usize {
        b.get(i..)
            .unwrap_or_default()
            .iter()
            .take(max + 1)
            .take_while(|&&c| f(c))
            .count()
    }

    fn is_local(c: u8) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
    }

    /// An email around the `@` at `i`; its end is the end of the domain.
    pub(super) fn email_at(b: &[u8], i: usize) -> Hit {
        let before = b.get(..i)?;
        let local_len = before
            .iter()
            .rev()
            .take(65)
            .take_while(|&&c| is_local(c))
            .count();
        if local_len == 0 || local_len > 64 {
            return None;
        }
        let local = before.get(i - local_len..)?;
        if local.first() == Some(&b'.') || local.last() == Some(&b'.') {
            return None;
        }
        let dlen = run(b, i + 1, 253, |c| {
            c.is_ascii_alphanumeric() || c == b'-' || c == b'.'
        });
        if dlen > 253 {
            return None;
        }
        let mut domain = b.get(i + 1..i + 1 + dlen)?;
        // A sentence may end right after the address.
        while let [rest @ .., b'.'] = domain {
            domain = rest;
        }
        if !domain_ok(domain) {
            return None;
        }
        // `icon@2x.png` is a file name.
        let tld = domain.rsplit(|&c| c == b'.').next()?;
        const FILES: [&[u8]; 9] = [
            b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"ico", b"css", b"js",
        ];
        if FILES.iter().any(|f| tld.eq_ignore_ascii_case(f)) {
            return None;
        }
        Some((DataClass::Email, i + 1 + domain.len()))
    }

    /// `-----BEGIN <label> PRIVATE KEY-----` (label optional; PGP's `... KEY BLOCK` too).
    pub(super) fn private_key_at(b: &[u8], i: usize) -> Hit {
        const BEGIN: &[u8] = b"-----BEGIN ";
        let rest = b.get(i..)?;
        if !rest.starts_with(BEGIN) {
            return None;
        }
        let label_len = run(rest, BEGIN.len(), 48, |c| {
            c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' '
        });
        if label_len > 48 {
            return None;
        }
        let label = rest.get(BEGIN.len()..BEGIN.len() + label_len)?;
        let end = BEGIN.len() + label_len;
        let ok = (label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK"))
            && rest.get(end..)?.starts_with(b"-----");
        ok.then_some((DataClass::PrivateKey, i + end + 5))
    }

    /// A class starting with the letter at `i`.
    pub(super) fn at(b: &[u8], i: usize) -> Hit {
        if let Some(&p) = i.checked_sub(1).and_then(|p| b.get(p)) {
            if is_word(p) || matches!(p, b'-' | b'.') {
                return None;
            }
        }
        let rest = b.get(i..)?;
        if rest.starts_with(b"eyJ") {
            return jwt(b, i);
        }
        if let Some(hit) = api_key(b, i) {
            return Some(hit);
        }
        if rest.first().is_some_and(u8::is_ascii_uppercase) {
            return iban(b, i).or_else(|| nino(b, i));
        }
        None
    }

    const MAX_TOKEN: usize = 256;

    fn api_key(b: &[u8], i: usize) -> Hit {
        let rest = b.get(i..)?;
        // Every key kind below starts with one of these: most words are rejected before their
        // length is even measured.
        if !matches!(rest.first(), Some(b'A' | b'g' | b'x' | b's' | b'r')) {
            return None;
        }
        let len = run(b, i, MAX_TOKEN, is_b64url);
        if len > MAX_TOKEN {
            return None;
        }
        let tok = rest.get(..len)?;
        let tail = |prefix: &[u8]| tok.strip_prefix(prefix);
        let all = |s: &[u8], f: fn(&u8) -> bool| s.iter().all(f);
        let ok = if let Some(t) = tail(b"AKIA").or_else(|| tail(b"ASIA")) {
            t.len() == 16 && all(t, |c| c.is_ascii_uppercase() || c.is_ascii_digit())
        } else if let Some(t) = [b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"]
            .iter()
            .find_map(|p| tail(*p))
        {
            t.len() >= 36 && all(t, u8::is_ascii_alphanumeric)
        } else if let Some(t) = tail(b"github_pat_") {
            t.len() >= 50 && all(t, |c| c.is_ascii_alphanumeric() || *c == b'_')
        } else if let Some(t) = [b"xoxa-", b"xoxb-", b"xoxp-", b"xoxr-"]
            .iter()
            .find_map(|p| tail(*p))
        {
            t.len() >= 20
                && all(t, |c| c.is_ascii_alphanumeric() || *c == b'-')
                && t.iter().any(u8::is_ascii_digit)
        } else if let Some(t) = tail(b"sk_live_").or_else(|| tail(b"rk_live_")) {
            t.len() >= 16 && all(t, u8::is_ascii_alphanumeric)
        } else if let Some(t) = tail(b"AIza") {
            t.len() == 35
        } else if let Some(t) = tail(b"sk-") {
            // Prose has `sk-` words; keys are long and mix cases and digits.
            t.len() >= 32
                && t.iter().any(u8::is_ascii_digit)
                && t.iter().any(u8::is_ascii_uppercase)
                && t.iter().any(u8::is_ascii_lowercase)
        } else {
            false
        };
        ok.then_some((DataClass::ApiKey, i + len))
    }

    const MAX_JWT_SEGMENT: usize = 8192;

    fn jwt(b: &[u8], i: usize) -> Hit {
        let mut j = i;
        let mut segs = [0usize; 3];
        for (k, seg) in segs.iter_mut().enumerate() {
            let n = run(b, j, MAX_JWT_SEGMENT, is_b64url);
            if n > MAX_JWT_SEGMENT {
                return None;
            }
            *seg = n;
            j += n;
            if k < 2 {
                if b.get(j) != Some(&b'.') {
                    return None;
                }
                j += 1;
            }
        }
        // An empty signature is an unsigned (`alg: none`) JWT, still a token.
        if segs[0] > 1024 || segs[1] == 0 || b.get(j).is_some_and(|&c| c == b'=') {
            return None;
        }
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b.get(i..i + segs[0])?)
            .ok()?;
        let obj: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&header).ok()?;
        obj.contains_key("alg").then_some((DataClass::Jwt, j))
    }

    /// Known IBAN countries and lengths.
    const IBAN: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NL", 18),
        (b"NO", 15),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"SA", 24),
        (b"SC", 31),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
    ];

    /// Reads up to `max` characters of `class`, contiguous or in groups of `group` separated
    /// by single spaces (then every group but the last is followed by one). Returns the
    /// characters, how many, and where they end.
    fn grouped(
        b: &[u8],
        i: usize,
        max: usize,
        group: usize,
        class: fn(u8) -> bool,
    ) -> ([u8; 34], usize, usize) {
        let mut out = [0u8; 34];
        let mut n = 0;
        let mut j = i;
        let spaced = group > 0 && b.get(i + group) == Some(&b' ');
        while n < max.min(out.len()) {
            if spaced && n > 0 && n % group == 0 {
                if b.get(j) == Some(&b' ') && b.get(j + 1).is_some_and(|&c| class(c)) {
                    j += 1;
                } else {
                    break;
                }
            }
            match b.get(j) {
                Some(&c) if class(c) => {
                    out[n] = c;
                    n += 1;
                    j += 1;
                }
                _ => break,
            }
        }
        (out, n, j)
    }

    fn iban(b: &[u8], i: usize) -> Hit {
        let rest = b.get(i..)?;
        let cc = rest.get(..2)?;
        let &(_, len) = IBAN.iter().find(|(c, _)| c.as_slice() == cc)?;
        if !rest.get(2..4)?.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let class = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
        let (chars, n, end) = grouped(b, i, len, 4, class);
        if n != len || b.get(end).is_some_and(|&c| is_word(c)) {
            return None;
        }
        // Check digits: move the first four characters to the end, letters as 10..35, mod 97.
        let s = chars.get(..n)?;
        let mut r = 0u32;
        for &c in s.iter().skip(4).chain(s.iter().take(4)) {
            let v = if c.is_ascii_digit() {
                u32::from(c - b'0')
            } else {
                u32::from(c - b'A') + 10
            };
            r = if v >= 10 {
                (r * 100 + v) % 97
            } else {
                (r * 10 + v) % 97
            };
        }
        (r == 1).then_some((DataClass::NationalId, end))
    }

    /// UK National Insurance number: two letters (neither D, F, I, Q, U, V; second not O; not
    /// BG, GB, NK, KN, NT, TN, ZZ), six digits, A–D; contiguous or `AB 12 34 56 C`.
    fn nino(b: &[u8], i: usize) -> Hit {
        let rest = b.get(i..)?;
        let (p0, p1) = (*rest.first()?, *rest.get(1)?);
        let bad = |c: u8| matches!(c, b'D' | b'F' | b'I' | b'Q' | b'U' | b'V');
        if !p0.is_ascii_uppercase() || !p1.is_ascii_uppercase() || bad(p0) || bad(p1) || p1 == b'O'
        {
            return None;
        }
        if matches!(
            &rest[..2],
            b"BG" | b"GB" | b"NK" | b"KN" | b"NT" | b"TN" | b"ZZ"
        ) {
            return None;
        }
        let spaced = rest.get(2) == Some(&b' ');
        let mut j = i + 2 + usize::from(spaced);
        for _ in 0..3 {
            if !b.get(j..j + 2)?.iter().all(u8::is_ascii_digit) {
                return None;
            }
            j += 2;
            if spaced {
                if b.get(j) != Some(&b' ') {
                    return None;
                }
                j += 1;
            }
        }
        if !matches!(b.get(j), Some(b'A'..=b'D')) || b.get(j + 1).is_some_and(|&c| is_word(c)) {
            return None;
        }
        Some((DataClass::NationalId, j + 1))
    }
}

mod numbers {
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
}
