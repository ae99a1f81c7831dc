//! Sensitive data classes in request and response text (email, phone, payment card with
//! Luhn, national ids, API keys and secrets, private keys, JWTs): classes and counts only,
//! never the values.
//!
//! One pass over at most [`MAX_SCAN`] bytes with hand-written scanners, no regex: each
//! detector starts only where a token can start (after a non-word byte) and reads a bounded
//! span, so a call is linear in the bytes scanned. The scanners prefer missing a shape over
//! flagging one that is merely number-like: an inventory that cries "payment card" on every
//! order number would be ignored.

mod json;
mod numbers;
mod tokens;

pub use json::classify_json;

use std::sync::{
    atomic::{AtomicU8, Ordering},
    OnceLock,
};

use serde::{Deserialize, Serialize};

/// A class of sensitive data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    /// `local@domain.tld` (image names like `icon@2x.png` excluded).
    Email,
    /// `+` and 8–15 digits (E.164, common separators allowed); NANP `234-555-0123`,
    /// `234.555.0123`, `234 555 0123`; a parenthesised area code `(234) 555-0123`,
    /// `(02) 1234 5678` with 9–11 digits in all.
    Phone,
    /// 13–19 digits, contiguous or in groups of four (Amex/Diners 4-6-5/4-6-4) separated by
    /// one kind of space or dash, with a Visa, Mastercard, Amex, Discover, Diners, JCB or
    /// UnionPay prefix and a valid Luhn check digit.
    PaymentCard,
    /// US SSN `ddd-dd-dddd` (not area 000, 666 or 9xx, group 00 or serial 0000); IBAN
    /// (known country, its length, mod-97 check; contiguous or in groups of four); UK
    /// National Insurance number (`AB123456C`, or spaced in pairs).
    NationalId,
    /// Well-known credential prefixes: AWS `AKIA`/`ASIA` key ids, GitHub `ghp_` `gho_` `ghu_`
    /// `ghs_` `ghr_` `github_pat_`, Slack `xoxa-` `xoxb-` `xoxp-` `xoxr-`, Stripe `sk_live_`
    /// `rk_live_`, Google `AIza`, OpenAI-style `sk-` with a long mixed-case token. Also field
    /// names such as `api_key` ([`classify_name`]).
    ApiKey,
    /// A PEM `-----BEGIN ... PRIVATE KEY-----` header (RSA, EC, OpenSSH, PKCS#8, PGP).
    PrivateKey,
    /// Three base64url segments whose first decodes to a JSON object with `alg`.
    Jwt,
    /// Never found in text (a password looks like anything): only from field and parameter
    /// names such as `password` or `passwd` ([`classify_name`]).
    Password,
}

impl DataClass {
    pub const ALL: [DataClass; 8] = [
        DataClass::Email,
        DataClass::Phone,
        DataClass::PaymentCard,
        DataClass::NationalId,
        DataClass::ApiKey,
        DataClass::PrivateKey,
        DataClass::Jwt,
        DataClass::Password,
    ];

    /// The serde name (`payment_card`), for OpenAPI extensions and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            DataClass::Email => "email",
            DataClass::Phone => "phone",
            DataClass::PaymentCard => "payment_card",
            DataClass::NationalId => "national_id",
            DataClass::ApiKey => "api_key",
            DataClass::PrivateKey => "private_key",
            DataClass::Jwt => "jwt",
            DataClass::Password => "password",
        }
    }
}

/// Occurrences per class (saturating).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCounts([u64; 8]);

impl ClassCounts {
    pub fn add(&mut self, class: DataClass, n: u64) {
        let c = &mut self.0[class as usize];
        *c = c.saturating_add(n);
    }

    pub fn get(&self, class: DataClass) -> u64 {
        self.0[class as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &ClassCounts) {
        for class in DataClass::ALL {
            self.add(class, other.get(class));
        }
    }

    /// The classes with a non-zero count, in [`DataClass::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (DataClass, u64)> + '_ {
        DataClass::ALL
            .into_iter()
            .map(|c| (c, self.get(c)))
            .filter(|&(_, n)| n > 0)
    }
}

/// Bytes [`classify`] looks at per call; the rest of longer text is not scanned.
pub const MAX_SCAN: usize = 64 * 1024;

/// Counts the sensitive values in the first [`MAX_SCAN`] bytes of `text` (a JSON string
/// value, a query or header value, a body excerpt). Returns whether text was left unscanned.
pub fn classify(text: &str, counts: &mut ClassCounts) -> bool {
    classify_bytes(text.as_bytes(), MAX_SCAN, counts)
}

/// [`classify`] on bytes (bodies need not be UTF-8) with an explicit scan limit.
pub fn classify_bytes(text: &[u8], max_bytes: usize, counts: &mut ClassCounts) -> bool {
    let b = text.get(..max_bytes).unwrap_or(text);
    let mut i = 0;
    loop {
        // Most bytes of text start nothing: spaces, punctuation, binary. One table load each.
        while b.get(i).is_some_and(|&c| BYTE_CLASS[usize::from(c)] == 0) {
            i += 1;
        }
        let Some(&c) = b.get(i) else {
            break;
        };
        let class = BYTE_CLASS[usize::from(c)];
        let hit = match class & !WORD {
            NUMBER => numbers::at(b, i),
            EMAIL => tokens::email_at(b, i),
            PEM => tokens::private_key_at(b, i),
            TOKEN => tokens::at(b, i),
            _ => None,
        };
        match hit {
            Some((found, end)) => {
                counts.add(found, 1);
                i = end.max(i + 1);
            }
            None => {
                i += 1;
                // The rest of a word cannot start anything: every detector refuses a start
                // right after a word byte. Skipping it keeps the scan near one pass.
                if class & WORD != 0 {
                    i = word_end(b, i);
                }
            }
        }
    }
    b.len() < text.len()
}

/// The classes in one body: as a JSON document when `json` and its first `max_bytes` are one
/// complete document, else as text (the first `max_bytes`).
pub fn scan_body(body: &[u8], json: bool, max_bytes: usize) -> ClassCounts {
    let mut counts = ClassCounts::default();
    let prefix = body.get(..max_bytes).unwrap_or(body);
    if prefix.is_empty() || (json && classify_json(prefix, &mut counts)) {
        return counts;
    }
    classify_bytes(prefix, max_bytes, &mut counts);
    counts
}

/// The classes of one exchange body, scanned once for all its consumers (discovery's
/// inventory and the encryption audit read the same bytes, on two threads): the first to
/// ask scans, the others reuse its counts. Only an answer that does not depend on the
/// asker's settings is shared: the whole body within its limit, read as JSON or text alike.
///
/// The common answer, nothing found, is published in one atomic byte: a `OnceLock`'s
/// initialisation (its `Once` call and closures, ~100 instructions) is paid only for a body
/// with a finding. The first asker's answer is the one kept (a later one fails to publish);
/// two askers racing both scan, which costs time, not correctness: a scan is decided by
/// the bytes and how they are read.
///
/// Every exchange carries two, so the counts of a body with a finding (rare) are boxed: 16
/// bytes each instead of 80 keep the exchange's allocation in mimalloc's 640-byte class.
#[derive(Debug, Default)]
pub struct BodyClasses {
    /// [`UNSCANNED`], [`EMPTY_TEXT`], [`EMPTY_JSON`], [`FOUND_TEXT`] or [`FOUND_JSON`]
    /// (then the counts are in `found`).
    state: AtomicU8,
    /// Set only by the asker that then publishes `FOUND_*` for its reading (or by none).
    found: OnceLock<Box<ClassCounts>>,
}

/// [`BodyClasses::state`]: nobody has published a scan yet.
const UNSCANNED: u8 = 0;
/// The first scan, of the body read as text, found nothing.
const EMPTY_TEXT: u8 = 1;
/// The first scan, of the body read as JSON, found nothing.
const EMPTY_JSON: u8 = 2;
/// The first scan, of the body read as text, found the counts in `found`.
const FOUND_TEXT: u8 = 3;
/// The first scan, of the body read as JSON, found the counts in `found`.
const FOUND_JSON: u8 = 4;

impl BodyClasses {
    /// [`scan_body`]`(body, json, max_bytes)`; `body` must be the body this was made for.
    pub fn get(&self, body: &[u8], json: bool, max_bytes: usize) -> ClassCounts {
        self.get_with(body, json, max_bytes, || scan_body(body, json, max_bytes))
    }

    /// [`BodyClasses::get`], the first asker scanning through its `cache`.
    pub fn get_cached(
        &self,
        body: &[u8],
        json: bool,
        max_bytes: usize,
        cache: &mut ScanCache,
    ) -> ClassCounts {
        self.get_with(body, json, max_bytes, || cache.scan(body, json, max_bytes))
    }

    /// The shared answer when there is one for this reading, else `scan()` (the answer of
    /// `scan_body(body, json, max_bytes)`), published when nobody has yet.
    fn get_with(
        &self,
        body: &[u8],
        json: bool,
        max_bytes: usize,
        scan: impl FnOnce() -> ClassCounts,
    ) -> ClassCounts {
        if body.len() > max_bytes {
            return scan_body(body, json, max_bytes);
        }
        let (empty, found) = if json {
            (EMPTY_JSON, FOUND_JSON)
        } else {
            (EMPTY_TEXT, FOUND_TEXT)
        };
        let state = self.state.load(Ordering::Acquire);
        if state == empty {
            return ClassCounts::default();
        }
        if state == found {
            if let Some(counts) = self.found.get() {
                return **counts;
            }
        }
        let counts = scan();
        if state == UNSCANNED {
            let published = if counts.is_empty() {
                empty
            } else {
                // Set before the state says so: whoever reads `FOUND_*` finds it. Only one
                // asker sets it, and only that one may publish `FOUND_*`.
                if self.found.set(Box::new(counts)).is_err() {
                    return counts;
                }
                found
            };
            // Only the first answer is kept; a racing one stays its asker's.
            let _ = self.state.compare_exchange(
                UNSCANNED,
                published,
                Ordering::Release,
                Ordering::Relaxed,
            );
        }
        counts
    }
}

/// Bodies kept by a [`ScanCache`] (each consumer thread holds one).
const CACHED_BODIES: usize = 8;
/// The longest body a [`ScanCache`] keeps: comparing is cheap next to scanning only while
/// bodies are short, and a few short ones bound its memory (32 KiB).
const MAX_CACHED_BODY: usize = 4096;

/// The scans of the last few bodies in which nothing was found, by their bytes: the same
/// answer served again and again (a static file, a health check, a fixed error page) is
/// compared (a `memcmp`) instead of scanned. Its result is decided only by the bytes and
/// how they are read, and both are the key. Bodies with a finding are not kept: the cache
/// holds no value the scanner calls sensitive, and such answers vary anyway.
#[derive(Debug, Default)]
pub struct ScanCache {
    bodies: Vec<(bool, Box<[u8]>)>,
    /// The slot the next body replaces once all are used.
    next: usize,
}

impl ScanCache {
    /// [`scan_body`]`(body, json, max_bytes)`, from the cache when `body` was scanned
    /// alike lately and found empty.
    pub fn scan(&mut self, body: &[u8], json: bool, max_bytes: usize) -> ClassCounts {
        // Cut bodies are scanned by their prefix: the key would be the limit as well.
        let cacheable = body.len() <= max_bytes.min(MAX_CACHED_BODY) && !body.is_empty();
        if !cacheable {
            return scan_body(body, json, max_bytes);
        }
        if self
            .bodies
            .iter()
            .any(|(j, kept)| *j == json && **kept == *body)
        {
            return ClassCounts::default();
        }
        let counts = scan_body(body, json, max_bytes);
        if counts.is_empty() {
            match self.bodies.get_mut(self.next) {
                // Answers of one size are common: the slot's bytes are reused.
                Some((j, kept)) if kept.len() == body.len() => {
                    *j = json;
                    kept.copy_from_slice(body);
                }
                Some(slot) => *slot = (json, Box::from(body)),
                None => self.bodies.push((json, Box::from(body))),
            }
            self.next = (self.next + 1) % CACHED_BODIES;
        }
        counts
    }
}

/// A copy starts unscanned: it may be given another body.
impl Clone for BodyClasses {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// The shared scans of an exchange's request and response bodies.
#[derive(Debug, Clone, Default)]
pub struct BodyScans {
    pub request: BodyClasses,
    pub response: BodyClasses,
}

/// [`BYTE_CLASS`] bits: the detector a byte can start (the low bits, one of them or none)
/// and whether it continues a word.
const NUMBER: u8 = 1;
const EMAIL: u8 = 2;
const PEM: u8 = 3;
const TOKEN: u8 = 4;
const WORD: u8 = 0x80;

/// Per byte: digits, `+` and `(` start a number ([`numbers::at`]), `@` an email, `-` a PEM
/// header, letters a token ([`tokens::at`]); letters, digits and `_` continue a word.
/// Every other byte is 0 and is passed over by the scan's inner loop.
static BYTE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'0'..=b'9' => NUMBER | WORD,
            b'A'..=b'Z' | b'a'..=b'z' => TOKEN | WORD,
            b'_' => WORD,
            b'+' | b'(' => NUMBER,
            b'@' => EMAIL,
            b'-' => PEM,
            _ => 0,
        };
        c += 1;
    }
    t
};

/// The class a field, parameter or header *name* implies for its value: `Password` for
/// names containing `password`, `passwd` or `passphrase` or equal to `pwd`/`pass`;
/// `ApiKey` for names containing `apikey`, `accesskey`, `secretkey` or `clientsecret`, or
/// equal to `secret` (case, `_`, `-` and `.` ignored: `X-Api-Key`, `new_password`).
pub fn classify_name(name: &str) -> Option<DataClass> {
    if name.len() > 64 {
        return None;
    }
    // This runs for every JSON member name, and almost none is sensitive: normalise with a
    // table and no branch per byte, noting which letters occur, and refuse names that lack
    // the letters of every word below; then compare only where a word's first letter is.
    let mut buf = [0u8; 64];
    let mut n = 0;
    let mut letters = 0u32;
    for &c in name.as_bytes() {
        let l = LOWER_ALNUM[usize::from(c)];
        if let Some(slot) = buf.get_mut(n) {
            *slot = l;
        }
        n += usize::from(l != 0);
        // Digits share bits with letters: a superset, only ever more names compared.
        letters |= 1 << (l & 31);
    }
    const fn set(word: &[u8]) -> u32 {
        let mut m = 0;
        let mut k = 0;
        while k < word.len() {
            m |= 1 << (word[k] & 31);
            k += 1;
        }
        m
    }
    // Each word's letters include one of these sets: pass(word|phrase), pwd, apikey,
    // accesskey, secret(key), clientsecret.
    const NEEDED: [u32; 5] = [
        set(b"pas"),
        set(b"pwd"),
        set(b"apikey"),
        set(b"accesky"),
        set(b"secrt"),
    ];
    if NEEDED.iter().all(|&m| letters & m != m) {
        return None;
    }
    let norm = buf.get(..n).unwrap_or_default();
    let (mut password, mut key) = (false, false);
    for (k, &c) in norm.iter().enumerate() {
        let rest = norm.get(k..).unwrap_or_default();
        match c {
            b'p' => {
                password |= rest.starts_with(b"password")
                    || rest.starts_with(b"passwd")
                    || rest.starts_with(b"passphrase")
            }
            b'a' => key |= rest.starts_with(b"apikey") || rest.starts_with(b"accesskey"),
            b's' => key |= rest.starts_with(b"secretkey"),
            b'c' => key |= rest.starts_with(b"clientsecret"),
            _ => {}
        }
    }
    if password || matches!(norm, b"pwd" | b"pass") {
        return Some(DataClass::Password);
    }
    if key || norm == b"secret" {
        return Some(DataClass::ApiKey);
    }
    None
}

/// ASCII letters and digits lowercased, every other byte 0 (for [`classify_name`]).
static LOWER_ALNUM: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() {
            t[c] = b.to_ascii_lowercase();
        }
        c += 1;
    }
    t
};

/// The first position from `i` that is not a word byte (or `b.len()`). Eight bytes at a
/// time: base64 and other long runs of word bytes are most of some bodies, and a table load
/// per byte was most of their scan.
#[inline]
fn word_end(b: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = b.get(i..i + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
        let other = !word_lanes(u64::from_le_bytes(chunk)) & HIGH;
        if other != 0 {
            return i + (other.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while b.get(i).is_some_and(|&c| is_word(c)) {
        i += 1;
    }
    i
}

const HIGH: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

const fn splat(v: u8) -> u64 {
    v as u64 * 0x0101_0101_0101_0101
}

/// The high bit of each byte of `x` set where the byte is a word byte ([`is_word`]).
fn word_lanes(x: u64) -> u64 {
    let ascii = !x & HIGH;
    let low = x & LOW7;
    // Setting bit 5 folds `A-Z` onto `a-z` and moves nothing else into `a-z` (digits
    // already have it).
    let letters = in_range(low | splat(0x20), b'a', b'z');
    (letters | in_range(low, b'0', b'9') | in_range(low, b'_', b'_')) & ascii
}

/// The high bit of each byte of `x` (each below 0x80) set where the byte is in `lo..=hi`
/// (`lo` ≥ 1): the additions stay within each byte, and their high bits say `≥ lo` and
/// `> hi`.
fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    let ge_lo = x + splat(0x80 - lo);
    let gt_hi = x + splat(0x7f - hi);
    ge_lo & !gt_hi & HIGH
}

/// A byte that continues a word: a token cannot start right after one.
#[inline]
fn is_word(c: u8) -> bool {
    BYTE_CLASS[usize::from(c)] & WORD != 0
}

#[cfg(test)]
pub(crate) fn counts_of(text: &str) -> Vec<(DataClass, u64)> {
    let mut c = ClassCounts::default();
    classify(text, &mut c);
    c.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::DataClass::*;
    use super::*;

    #[test]
    fn a_body_is_scanned_once_for_the_consumers_that_read_it_alike() {
        let body = br#"{"password":"hunter2","note":"card 4111 1111 1111 1111"}"#;
        let shared = BodyClasses::default();
        let first = shared.get(body, true, 1024);
        assert_eq!(first, scan_body(body, true, 1024));
        assert_eq!(first.get(Password), 1);
        assert_eq!(first.get(PaymentCard), 1);
        // Read alike and whole within the limit: the first scan's counts, not a new scan
        // (shown here by asking with other bytes).
        assert_eq!(shared.get(b"nothing", true, 64), first);
        // Read another way, or cut by the asker's limit: scanned by the asker.
        assert!(shared.get(b"nothing", false, 1024).is_empty());
        assert_eq!(shared.get(body, false, 1024), scan_body(body, false, 1024));
        assert!(shared.get(body, true, 8).is_empty());
        // A copy is a fresh slot.
        assert!(shared.clone().get(b"nothing", true, 64).is_empty());
    }

    #[test]
    fn an_empty_answer_is_shared_with_the_askers_that_read_alike() {
        let body = vec![b'x'; 1024];
        let card = b"card 4111 1111 1111 1111";
        for first_json in [false, true] {
            let shared = BodyClasses::default();
            assert!(shared.get(&body, first_json, 2048).is_empty());
            // Read alike: the first answer, not a new scan (shown by asking with other bytes).
            assert!(shared.get(card, first_json, 2048).is_empty());
            // Read the other way: scanned by the asker, and the first answer stays.
            assert_eq!(
                shared.get(card, !first_json, 2048),
                scan_body(card, !first_json, 2048)
            );
            assert!(shared.get(card, first_json, 2048).is_empty());
            let mut cache = ScanCache::default();
            assert!(shared
                .get_cached(card, first_json, 2048, &mut cache)
                .is_empty());
            assert!(cache.bodies.is_empty());
        }
    }

    #[test]
    fn shared_classes_take_three_words() {
        assert_eq!(size_of::<BodyClasses>(), 24);
    }

    #[test]
    fn askers_racing_on_one_body_each_get_its_scan() {
        let bodies: [&[u8]; 3] = [
            b"nothing sensitive here",
            br#"{"password":"hunter2"}"#,
            b"card 4111 1111 1111 1111",
        ];
        for body in bodies {
            for _ in 0..50 {
                let shared = BodyClasses::default();
                std::thread::scope(|s| {
                    for json in [false, true, false, true] {
                        let shared = &shared;
                        s.spawn(move || {
                            let mut cache = ScanCache::default();
                            for _ in 0..4 {
                                assert_eq!(
                                    shared.get_cached(body, json, 1024, &mut cache),
                                    scan_body(body, json, 1024)
                                );
                            }
                        });
                    }
                });
            }
        }
    }

    #[test]
    fn the_scan_cache_answers_as_a_scan_and_keeps_only_empty_short_bodies() {
        let mut cache = ScanCache::default();
        let empty = vec![b'x'; 1024];
        let card = b"card 4111 1111 1111 1111".to_vec();
        let json = br#"{"note":"4111 1111 1111 1111"}"#.to_vec();
        let long = vec![b' '; MAX_CACHED_BODY + 1];
        for _ in 0..3 {
            for (body, as_json, max) in [
                (&empty, false, 1024),
                (&empty, true, 1024),
                (&card, false, 1024),
                (&card, false, 8),
                (&json, true, 1024),
                (&json, false, 1024),
                (&long, false, MAX_SCAN),
            ] {
                assert_eq!(
                    cache.scan(body, as_json, max),
                    scan_body(body, as_json, max)
                );
            }
        }
        // Kept: the empty body read both ways; not the bodies with findings, nor the long one.
        assert_eq!(cache.bodies.len(), 2);
        // Bounded: the oldest go.
        for n in 0..2 * CACHED_BODIES {
            cache.scan(format!("body {n:>4}").as_bytes(), false, 1024);
        }
        assert_eq!(cache.bodies.len(), CACHED_BODIES);
        assert!(cache.bodies.iter().all(|(_, b)| b.starts_with(b"body ")));
        // Shared scans through the cache answer alike.
        let shared = BodyClasses::default();
        assert_eq!(
            shared
                .get_cached(&card, false, 1024, &mut cache)
                .get(PaymentCard),
            1
        );
        assert_eq!(
            shared
                .get_cached(&card, false, 1024, &mut cache)
                .get(PaymentCard),
            1
        );
    }

    /// The detector for what starts at `b[i]` (`c`), if any.
    fn hit_at(b: &[u8], i: usize, c: u8) -> Option<(DataClass, usize)> {
        match c {
            b'0'..=b'9' | b'+' | b'(' => numbers::at(b, i),
            b'@' => tokens::email_at(b, i),
            b'-' => tokens::private_key_at(b, i),
            b'A'..=b'Z' | b'a'..=b'z' => tokens::at(b, i),
            _ => None,
        }
    }

    /// The scan without the word skip: every position is offered to the detectors.
    fn classify_every_position(b: &[u8]) -> ClassCounts {
        let mut counts = ClassCounts::default();
        let mut i = 0;
        while let Some(&c) = b.get(i) {
            match hit_at(b, i, c) {
                Some((class, end)) => {
                    counts.add(class, 1);
                    i = end.max(i + 1);
                }
                None => i += 1,
            }
        }
        counts
    }

    #[test]
    fn skipping_words_finds_exactly_what_every_position_finds() {
        // Pieces that make every class, glued by separators and word bytes at random.
        let pieces: [&[u8]; 16] = [
            b"4111111111111111",
            b"+1 202-555-0143",
            b"078-05-1120",
            b"GB82WEST12345698765432",
            b"QQ123456C",
            b"a.b@example.com",
            b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
            b"AKIAIOSFODNN7EXAMPLE",
            b"-----BEGIN PRIVATE KEY-----",
            b"x",
            b"_",
            b"9",
            b"-",
            b".",
            b"(",
            b"@",
        ];
        let seps: [&[u8]; 6] = [b" ", b"", b",", b"\"", b"\n", b"="];
        let mut rng = crate::testutil::Rng(0x5eed_cafe);
        let mut found = 0;
        for _ in 0..20_000 {
            let mut text = Vec::new();
            for _ in 0..rng.below(12) {
                text.extend_from_slice(pieces[rng.below(16) as usize]);
                text.extend_from_slice(seps[rng.below(6) as usize]);
            }
            let mut fast = ClassCounts::default();
            classify_bytes(&text, MAX_SCAN, &mut fast);
            assert_eq!(
                fast,
                classify_every_position(&text),
                "{}",
                String::from_utf8_lossy(&text)
            );
            found += fast.0.iter().sum::<u64>();
        }
        assert!(found > 20_000, "the inputs find things: {found}");
    }

    #[test]
    fn word_end_is_the_first_byte_that_is_not_a_word_byte() {
        // Every byte value at every position of a chunk, after word bytes of each kind.
        for len in 0..20 {
            for pos in 0..len {
                for c in 0..=255u8 {
                    let mut b: Vec<u8> = b"aZ0_9zA".iter().copied().cycle().take(len).collect();
                    b[pos] = c;
                    let want = b.iter().position(|&x| !is_word(x)).unwrap_or(len);
                    assert_eq!(word_end(&b, 0), want, "{b:?}");
                    assert_eq!(word_end(&b, len), len);
                }
            }
        }
        for c in 0..=255u8 {
            let want = c.is_ascii_alphanumeric() || c == b'_';
            assert_eq!(is_word(c), want, "{c}");
            assert_eq!(word_lanes(splat(c)) == HIGH, want, "{c}");
        }
    }

    #[test]
    fn mixed_text_counts_each_class() {
        let text = r#"{"user": "alice@example.com", "phone": "+1 415 555 0123",
            "card": "4111 1111 1111 1111", "ssn": "123-45-6789",
            "iban": "DE89370400440532013000", "key": "AKIAIOSFODNN7EXAMPLE",
            "token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
            "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIE...", "other": "bob@example.org"}"#;
        assert_eq!(
            counts_of(text),
            [
                (Email, 2),
                (Phone, 1),
                (PaymentCard, 1),
                (NationalId, 2),
                (ApiKey, 1),
                (PrivateKey, 1),
                (Jwt, 1)
            ]
        );
    }

    #[test]
    fn nothing_in_ordinary_text() {
        for t in [
            "order 4111111111111112 shipped 2024-01-31 from 192.168.1.1 by v1.2.3",
            "550e8400-e29b-41d4-a716-446655440000",
            "we use sk-learn and ask-me; sk- prefixes are for keys",
            "timestamp 1706659200000, id 1234567890123456, price 12.50",
            r#"{"count": 42, "ratio": 0.25, "ok": true}"#,
            "",
        ] {
            assert_eq!(counts_of(t), [], "{t}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(classify_name("password"), Some(Password));
        assert_eq!(classify_name("new_Password"), Some(Password));
        assert_eq!(classify_name("userPasswd"), Some(Password));
        assert_eq!(classify_name("pwd"), Some(Password));
        assert_eq!(classify_name("X-Api-Key"), Some(ApiKey));
        assert_eq!(classify_name("client_secret"), Some(ApiKey));
        assert_eq!(classify_name("secret"), Some(ApiKey));
        assert_eq!(classify_name("secretary"), None);
        assert_eq!(classify_name("passport_country"), None);
        assert_eq!(classify_name("name"), None);
        assert_eq!(classify_name(&"password".repeat(20)), None);
    }

    #[test]
    fn counts_api() {
        let mut a = ClassCounts::default();
        assert!(a.is_empty());
        a.add(Jwt, 2);
        let mut b = ClassCounts::default();
        b.add(Email, 1);
        b.add(Jwt, u64::MAX);
        a.merge(&b);
        assert_eq!(a.iter().collect::<Vec<_>>(), [(Email, 1), (Jwt, u64::MAX)]);
        assert_eq!(
            serde_json::to_string(&PaymentCard).unwrap(),
            "\"payment_card\""
        );
        for c in DataClass::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }

    #[test]
    fn scan_is_bounded() {
        // A 1 MiB body with an email after the limit: not scanned, reported as truncated.
        let text = format!("{}alice@example.com", "x ".repeat(512 * 1024));
        let mut c = ClassCounts::default();
        assert!(classify(&text, &mut c));
        assert!(c.is_empty());
        assert!(!classify("alice@example.com", &mut c));
        assert_eq!(c.get(Email), 1);
    }

    #[test]
    fn hostile_inputs_stay_linear() {
        const MIB: usize = 1 << 20;
        let patterns = [
            "1 ",
            "1",
            "+1 ",
            "(1",
            "1-",
            "a@",
            "@",
            "a.",
            "eyJ",
            "eyJ.",
            "-----BEGIN ",
            "AKIA ",
            "sk-",
            "DE89 ",
            "AB ",
            "ghp_",
            "xoxb-1",
        ];
        for p in patterns {
            let text = p.repeat(MIB / p.len());
            let start = std::time::Instant::now();
            let mut c = ClassCounts::default();
            assert!(!classify_bytes(text.as_bytes(), usize::MAX, &mut c));
            let took = start.elapsed();
            assert!(c.is_empty(), "{p}: {:?}", c);
            // Not a timing target: linear scans take milliseconds, quadratic ones minutes; the
            // bound leaves room for a debug build on a loaded 2-core machine.
            assert!(took.as_secs() < 30, "{p}: {took:?}");
        }
        // Valid values back to back are all counted.
        let text = "alice@example.com ".repeat(MIB / 18);
        let mut c = ClassCounts::default();
        classify_bytes(text.as_bytes(), usize::MAX, &mut c);
        assert_eq!(c.get(Email), (MIB / 18) as u64);
    }

    /// Cost figure: `cargo test --release -p api-guard --lib sensitive::tests::cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn cost() {
        let mut text = String::new();
        while text.len() < 1024 {
            text.push_str(
                r#"{"id": 1234567, "name": "Alice Example", "email": "alice@example.com", "created": "2024-01-31T10:00:00Z", "tags": ["a", "b"], "note": "order 4111111111111112 ok"}, "#,
            );
        }
        text.truncate(1024);
        let n = 100_000;
        let start = std::time::Instant::now();
        let mut c = ClassCounts::default();
        for _ in 0..n {
            classify(std::hint::black_box(&text), &mut c);
        }
        let per = start.elapsed() / n;
        println!(
            "classify 1 KiB JSON-ish: {per:?} per call ({:?})",
            c.iter().collect::<Vec<_>>()
        );
    }
}
