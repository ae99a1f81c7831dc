//! SQL injection: libinjection's tokenizer and fingerprints (which already try the value as
//! is, after a single and after a double quote), plus a few grammar checks over a folded
//! token stream for what fingerprints miss: SQL-only functions and schema names, `union
//! select`, `select <list> from`, stacked statements, time delays, MySQL executable comments,
//! PostgreSQL casts and JSON operators, and MongoDB query operators.
//!
//! Every check is a linear scan of the value; words are matched against small static lists.

use std::sync::LazyLock;

use super::{
    keywords::{self, Words},
    text::{needle_mask, ByteSet, WordIndex},
    Candidate,
};
use crate::detect::{
    finding::Finding,
    inputs::Source,
    normalize,
    rules::{self, Rule},
};

/// Tokens looked at per value; a value longer than this is judged on its beginning.
const MAX_TOKENS: usize = 512;

pub fn check(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    let v = c.decoded;
    if v.is_empty() {
        return;
    }
    let rule = if let Some(rule) = nosql(c) {
        Some(rule)
    } else if bare_word(v) {
        // One identifier-like word: no SQL to inject, except a schema probe. (Compared
        // without lower-casing a copy: most values take this branch.)
        let schema = |w: &str| SCHEMA_WORDS.iter().any(|s| s.eq_ignore_ascii_case(w));
        if v.split('.').any(schema)
            || v.eq_ignore_ascii_case("mysql.db")
            || v.eq_ignore_ascii_case("mysql.user")
        {
            Some(&rules::SQLI_SCHEMA_PROBE)
        } else {
            mysql_float(v.as_bytes()).then_some(&rules::SQLI_MYSQL_FLOAT)
        }
    } else if c.input.source == Source::Header && !v.contains([' ', '\'', '"', '(']) {
        // Header tokens (`application/*+json`) are not SQL; attacks in headers need a space
        // or a quote.
        None
    } else if libinjection(v, &c.bytes, &c.words) {
        Some(&rules::SQLI_LIBINJECTION)
    } else if grammar_may_flag(v.as_bytes(), &c.bytes, &c.words) {
        folded_grammar(v)
    } else {
        None
    };
    if let Some(rule) = rule {
        out.push(Finding::new(rule, c.input.location(), v));
    }
}

/// The grammar checks over the folded value. Also reads the value as the rest of a quoted
/// string, the way it is pasted into one: `';waitfor delay '` is a string to the tokenizer
/// otherwise.
fn folded_grammar(v: &str) -> Option<&'static Rule> {
    let folded = normalize::sql_fold(v);
    grammar(&folded).or_else(|| {
        ['\'', '"']
            .into_iter()
            .filter(|q| folded.contains(*q))
            .find_map(|q| tokens(&format!("{q}{folded}")))
    })
}

/// libinjection's verdict (it tries the value as is, after `'` and after `"`), except that
/// in running English text a fingerprint needs a clause keyword (`union`, `select`-like
/// expressions, `and`/`or`, `group by`): quoted punctuation in prose (`a '-' prefix`,
/// `poll(2)`) fingerprints like a string-operator-string injection otherwise.
fn libinjection(v: &str, bytes: &ByteSet, words: &Words<'_>) -> bool {
    // No quote, operator, comment, parenthesis or digit: no fingerprint libinjection flags
    // can form (plain-word SQL is left to the grammar checks). Saves its per-call cost.
    const SIGNIFICANT: u128 = needle_mask(b"0123456789'\"`;()=<>!|&-#/*@+%^~\\");
    if !bytes.has_any_mask(SIGNIFICANT)
        || !libinjection_may_flag(v.as_bytes(), bytes, words)
        || only_strings_words_numbers(v.as_bytes(), bytes, words)
    {
        return false;
    }
    let prose = prose(v);
    // Running text without a quote, `;` or comment marker has nothing to break out of a
    // string with (a numeric-context payload is not prose); saves libinjection's cost.
    const BREAKS: u128 = needle_mask(b"'\"`;#");
    let b = v.as_bytes();
    let breaks_out = bytes.has_any_mask(BREAKS)
        || (bytes.has(b'-') && has_pair(b, b'-', b'-'))
        || (bytes.has(b'/') && has_pair(b, b'/', b'*'));
    if prose && !breaks_out {
        return false;
    }
    // Without quotes libinjection reads the value once, as is; six plain leading words make
    // that reading's fingerprint one it never flags (see `leads_with_plain_words`).
    if !bytes.has(b'\'') && !bytes.has(b'"') && leads_with_plain_words(b) {
        return false;
    }
    // `detect_sqli`'s steps, except that the fingerprint (which it computes once more after
    // the verdict, a whole extra tokenising pass) is only asked for when it matters.
    let mut state =
        libinjectionrs::SqliState::new(v.as_bytes(), libinjectionrs::SqliFlags::FLAG_NONE);
    if !state.detect() {
        return false;
    }
    let fp = state.get_fingerprint();
    if quoted_text_only(v, fp.as_str()) || percentages_as_text(v) {
        return false;
    }
    let strong = |fp: &str| {
        fp.bytes()
            .any(|t| matches!(t, b'U' | b'E' | b'&' | b'B' | b';'))
    };
    if prose {
        strong(&fp)
    } else if !breaks_out {
        // `while (foo) is …`, `Left (WA, RR), …`: a keyword or function name before a
        // parenthesised plain word is a parenthetical in text when nothing breaks out of a
        // string; injected calls take values, variables or nested calls (`f(1`, `f(v`, `f(f`).
        !(fp.starts_with("f(n") || fp.starts_with("T(n"))
    } else {
        true
    }
}

/// libinjection's verdict on `v` read in one quote context (`flags`), MySQL or ANSI.
fn flagged_in(v: &[u8], flags: u32) -> bool {
    libinjectionrs::SqliState::new(v, libinjectionrs::SqliFlags::new(flags)).is_sqli()
}

/// A verdict that only the double-quote reading gives, where that reading is one operator
/// between two strings (`sos`, `s&s`) and the operator is a word or arithmetic (`*`, `/`,
/// `%`): quotation marks around a word in text (`"LIKE" STAMP`, `CHRISTMAS STOCKING "NOT"
/// STUFFER`, `"*"`, an attribute `HREF="/APPS/"`) read that way. Double quotes delimit
/// strings only in MySQL, which reads a string as a number by its leading digits: between
/// strings that begin with none, such an operator gives the injected condition nothing to
/// turn on. Comparisons and other symbols (`"!"`, `1"OR-"1`), strings that begin with a
/// digit (`1" or "1`), escaped quotes and single-quote readings keep their verdict.
fn quoted_text_only(v: &str, fingerprint: &str) -> bool {
    // libinjection's flag bits (`SqliFlags::FLAG_QUOTE_*`, `FLAG_SQL_*`).
    const NONE: u32 = 1;
    const SINGLE: u32 = 2;
    const ANSI: u32 = 8;
    const MYSQL: u32 = 16;
    if !matches!(fingerprint, "sos" | "s&s") {
        return false;
    }
    let b = v.as_bytes();
    // libinjection skips `\"` inside strings; the reading is only redone here without one.
    if b.contains(&b'\\') {
        return false;
    }
    let mut quotes = memchr::memchr_iter(b'"', b);
    let (Some(open), Some(close)) = (quotes.next(), quotes.next()) else {
        return false;
    };
    let operator = b[open + 1..close].trim_ascii();
    let numeric = |s: &[u8]| {
        let s = s.trim_ascii_start();
        let s = s
            .strip_prefix(b"-")
            .or_else(|| s.strip_prefix(b"+"))
            .unwrap_or(s);
        let s = s.strip_prefix(b".").unwrap_or(s);
        s.first().is_some_and(u8::is_ascii_digit)
    };
    if operator.is_empty()
        || !operator
            .iter()
            .all(|c| c.is_ascii_alphabetic() || matches!(c, b' ' | b'*' | b'/' | b'%'))
        || numeric(&b[..open])
        || numeric(&b[close + 1..])
    {
        return false;
    }
    let mut readings = vec![NONE | ANSI, NONE | MYSQL];
    if b.contains(&b'\'') {
        readings.extend([SINGLE | ANSI, SINGLE | MYSQL]);
    }
    !readings.into_iter().any(|f| flagged_in(b, f))
}

/// A verdict that rests on percentages read as SQL's modulo operator (`80% ACRYLIC AND 20%
/// WOOL` is `80 % ACRYLIC AND 20 % WOOL` to libinjection): a number directly followed by `%`
/// and a blank or the end is text; read so, libinjection no longer flags the value. (`5%2`,
/// `%'` and LIKE patterns keep their `%`.)
fn percentages_as_text(v: &str) -> bool {
    let b = v.as_bytes();
    let percentage = |i: usize| {
        b[i] == b'%'
            && i > 0
            && b[i - 1].is_ascii_digit()
            && b.get(i + 1).is_none_or(|&n| n == b' ')
    };
    if !(0..b.len()).any(percentage) {
        return false;
    }
    let text: Vec<u8> = (0..b.len())
        .map(|i| if percentage(i) { b' ' } else { b[i] })
        .collect();
    !libinjectionrs::SqliState::new(&text, libinjectionrs::SqliFlags::FLAG_NONE).detect()
}

/// libinjection keyword types (as its table writes them) behind the significant token types
/// (see `libinjection_may_flag`) that come from words: keyword, union, group, expression, SQL type, T-SQL, logic operator,
/// collate, evil, variable (`null`, `current_user`).
const SIGNIFICANT_WORD_TYPES: &[u8] = b"kUBEtT&AXv";

/// Words that may become a significant token: the first word of every libinjection keyword
/// (or phrase, which it folds from words) of a significant type; with `ops`, operator
/// keywords (`like`, `div`) too. Upper case, as libinjection compares them; sorted.
fn keyword_heads(ops: bool) -> Vec<&'static [u8]> {
    heads_of_types(|t| SIGNIFICANT_WORD_TYPES.contains(&t) || (ops && t == b'o'))
}

/// The first words of libinjection's keywords whose token type `keep` accepts; sorted.
fn heads_of_types(keep: impl Fn(u8) -> bool) -> Vec<&'static [u8]> {
    let mut heads: Vec<&'static [u8]> = libinjectionrs::sqli::sqli_data::SQL_KEYWORDS
        .iter()
        .filter(|k| keep(k.token_type))
        .filter_map(|k| k.word.split(' ').next())
        .map(str::as_bytes)
        .collect();
    heads.sort_unstable();
    heads.dedup();
    heads
}

static KEYWORD_HEADS: LazyLock<Vec<&'static [u8]>> = LazyLock::new(|| keyword_heads(false));
static KEYWORD_HEADS_OPS: LazyLock<Vec<&'static [u8]>> = LazyLock::new(|| keyword_heads(true));

/// [`KEYWORD_HEADS`] bucketed by how they begin: most words of a value are turned away by
/// one lookup, the rest compared with a few heads.
static HEAD_INDEX: LazyLock<WordIndex> = LazyLock::new(|| WordIndex::of(&KEYWORD_HEADS));
static HEAD_INDEX_OPS: LazyLock<WordIndex> = LazyLock::new(|| WordIndex::of(&KEYWORD_HEADS_OPS));

/// Bytes that end a word in libinjection's tokenizer (its `parse_word`).
const WORD_DELIMITERS: &[u8] = b" []{}<>:\\?=@!#~+-*/&|^%(),';\t\n\x0b\x0c\r\"\xa0\x00";

/// [`WORD_DELIMITERS`] as a table.
static WORD_DELIMITER: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < WORD_DELIMITERS.len() {
        t[WORD_DELIMITERS[i] as usize] = true;
        i += 1;
    }
    t
};

/// Whether `v` holds `a` directly followed by `b`.
fn has_pair(v: &[u8], a: u8, b: u8) -> bool {
    memchr::memchr_iter(a, v).any(|i| v.get(i + 1) == Some(&b))
}

/// Whether libinjection could flag `v` at all (a necessary condition, so skipping it when
/// false changes no verdict). Every fingerprint libinjection flags holds a string, comment,
/// `;`, parenthesis, variable, logic operator, `union`, expression, keyword, `group by`,
/// T-SQL or SQL type, `collate` or "evil" token (the tests check this against its table):
/// those from punctuation need a quote, `$` (dollar strings), `;`, a parenthesis, `#`, `\\`,
/// `` ` ``, `--`, `/*`, `&&` or `||`, and those from words need a word of [`KEYWORD_HEADS`].
/// The only flagged fingerprints whose sole significant token is a variable (`@x`) also hold
/// an operator (`1OV`, `NOVOF`), so with `@` any operator byte or word counts too.
fn libinjection_may_flag(v: &[u8], bytes: &ByteSet, words: &Words<'_>) -> bool {
    const PUNCT: u128 = needle_mask(b"'\"`$;()#\\");
    if bytes.has_any_mask(PUNCT)
        || [(b'-', b'-'), (b'/', b'*'), (b'&', b'&'), (b'|', b'|')]
            .iter()
            .any(|&(a, b)| bytes.has(a) && has_pair(v, a, b))
    {
        return true;
    }
    let at = bytes.has(b'@');
    if at && bytes.has_any(b"!%&*+-/:<=>^|~") {
        return true;
    }
    // The combined index tells most values without a head from one scan shared with the
    // other word pre-checks; the walk below confirms the rest.
    let (heads, bit) = if at {
        (&*HEAD_INDEX_OPS, keywords::SQL_HEADS_OPS)
    } else {
        (&*HEAD_INDEX, keywords::SQL_HEADS)
    };
    words.any(bit) && heads_walk(v, heads)
}

/// Whether a word-delimited run of `v` may yield one of `heads` (the exact part of
/// [`libinjection_may_flag`]'s word test).
fn heads_walk(v: &[u8], heads: &WordIndex) -> bool {
    v.split(|&x| WORD_DELIMITER[usize::from(x)])
        .any(|run| run_may_hold_keyword(run, heads))
}

/// Whether a run of word bytes may yield one of `heads` as a word token. libinjection
/// starts a word at the run's start, after a number it parsed (which may end in hex digits,
/// `x`, an exponent `e` or a `d`/`f` suffix: `1eunion`, `0xaunion`), after a `.` or another
/// non-letter; a word ends at the run's end or (keyword prefixes: `select.1`) before a `.`.
/// Every such start and end is tried (a superset of what the tokenizer does).
fn run_may_hold_keyword(run: &[u8], heads: &WordIndex) -> bool {
    const LONGEST: usize = 32;
    let number_before = |p: usize| {
        run[..p]
            .iter()
            .rev()
            .take_while(|x| x.is_ascii_hexdigit() || matches!(x, b'x' | b'X' | b'.'))
            .any(u8::is_ascii_digit)
    };
    // Without a `.`, a word can only end where the run does; without a digit, no number
    // comes before a letter. (One loop: runs are short, `memchr` calls cost more.)
    let (mut dotted, mut digits) = (false, false);
    for &x in run {
        dotted |= x == b'.';
        digits |= x.is_ascii_digit();
    }
    // Every head starts with a letter or `_` (see the tests).
    let start = |p: usize| {
        (run[p].is_ascii_alphabetic() || run[p] == b'_')
            && !(p > 0 && run[p - 1].is_ascii_alphabetic() && !(digits && number_before(p)))
    };
    if !dotted {
        // The word is the run's tail from a start: only the last `LONGEST` starts can be
        // a head, and one lookup in its bucket answers.
        return (run.len().saturating_sub(LONGEST)..run.len())
            .any(|p| start(p) && heads.contains(&run[p..]));
    }
    for p in 0..run.len() {
        if !start(p) {
            continue;
        }
        // A word's pair key is its first byte alone (one-byte word) or its first two bytes
        // (every longer one): decided once per start, not once per end.
        let one = heads.may_begin(&run[p..p + 1]);
        let longer = p + 1 < run.len() && heads.may_begin(&run[p..p + 2]);
        if !one && !longer {
            continue;
        }
        for q in p + 1..=run.len().min(p + LONGEST) {
            if q > p + 1 && !longer {
                break;
            }
            if q < run.len() && run[q] != b'.' {
                continue;
            }
            if q == p + 1 && !one {
                continue;
            }
            if heads.contains(&run[p..q]) {
                return true;
            }
        }
    }
    false
}

/// Keyword types that give a word a token other than a bareword or a number: every type of
/// libinjection's table but bareword (`n`), number (`1`) and fingerprint (`F`).
fn any_keyword_heads() -> Vec<&'static [u8]> {
    heads_of_types(|t| !matches!(t, b'n' | b'1' | b'F'))
}

static ANY_HEAD_INDEX: LazyLock<WordIndex> = LazyLock::new(|| WordIndex::of(&any_keyword_heads()));

/// Whether libinjection can only read `v` as strings, barewords and numbers, in every quote
/// context: it holds nothing but ASCII letters, digits, spaces and quotes (`Siobhan
/// O'Brien 5`), and no word that its table types otherwise. No fingerprint it flags is made
/// of those three token types alone (the tests check its table), so a value with a quote
/// need not be tokenised three times to learn that.
fn only_strings_words_numbers(v: &[u8], bytes: &ByteSet, words: &Words<'_>) -> bool {
    const PLAIN: u128 = needle_mask(b"abcdefghijklmnopqrstuvwxyz0123456789 '\"");
    if bytes.non_ascii || bytes.has_any_mask(!PLAIN) {
        return false;
    }
    !(words.any(keywords::SQL_ANY_HEADS) && any_heads_walk(v))
}

/// Whether a run between blanks and quotes may yield a typed keyword (the exact part of
/// [`only_strings_words_numbers`]).
fn any_heads_walk(v: &[u8]) -> bool {
    v.split(|&x| matches!(x, b' ' | b'\'' | b'"'))
        .any(|run| run_may_hold_keyword(run, &ANY_HEAD_INDEX))
}

/// Words libinjection's table types as anything but a bareword (`n`) or a plain keyword
/// (`k`), and `IN`, the one keyword its folding retypes (to an operator before `(`).
/// Upper case, as its table writes them.
fn typed_words() -> Vec<&'static [u8]> {
    libinjectionrs::sqli::sqli_data::SQL_KEYWORDS
        .iter()
        .filter(|k| !k.word.contains(' ') && !matches!(k.token_type, b'n' | b'k'))
        .map(|k| k.word.as_bytes())
        .chain([&b"IN"[..]])
        .collect()
}

/// Two-word phrases of libinjection's table that it folds two adjacent words into (every
/// type but bareword).
fn typed_phrases() -> Vec<&'static [u8]> {
    libinjectionrs::sqli::sqli_data::SQL_KEYWORDS
        .iter()
        .filter(|k| k.word.matches(' ').count() == 1 && k.token_type != b'n')
        .map(|k| k.word.as_bytes())
        .collect()
}

static TYPED_WORDS: LazyLock<WordIndex> = LazyLock::new(|| WordIndex::of(&typed_words()));
static TYPED_PHRASES: LazyLock<WordIndex> = LazyLock::new(|| WordIndex::of(&typed_phrases()));

/// Whether `v` (with no quote, so libinjection reads it as is, and only so) begins with six
/// words of ASCII letters, one space apart, none typed other than `n` or `k` and no two
/// adjacent ones a typed phrase, the sixth ending where libinjection's words end. Then
/// libinjection never flags it: its fold keeps at most five tokens and looks at most one
/// past them, so it sees only these six words; no folding rule applies to two or three
/// barewords or plain keywords once no pair merges into a phrase, so the fingerprint is
/// five letters of `n` and `k`, none of which its blacklist holds (the tests check the
/// table and compare with libinjection itself). Nor does it read the value again as MySQL:
/// that needs a comment among the tokens it read. Running text usually begins so, and is
/// spared libinjection's whole tokenising pass.
fn leads_with_plain_words(v: &[u8]) -> bool {
    const WORDS: usize = 6;
    // Shorter than the 32-byte token libinjection keeps of a word.
    const LONGEST: usize = 24;
    let (mut i, mut previous) = (0, None);
    for n in 0..WORDS {
        let start = i;
        while i < v.len() && v[i].is_ascii_alphabetic() {
            i += 1;
        }
        if i == start || i - start > LONGEST || TYPED_WORDS.contains(&v[start..i]) {
            return false;
        }
        if previous.is_some_and(|p| TYPED_PHRASES.contains(&v[p..i])) {
            return false;
        }
        if n + 1 < WORDS {
            if v.get(i) != Some(&b' ') {
                return false;
            }
            i += 1;
        } else if v.get(i).is_some_and(|&x| !WORD_DELIMITER[usize::from(x)]) {
            return false;
        }
        previous = Some(start);
    }
    true
}

/// Mostly letters and spaces, with at least five words.
fn prose(v: &str) -> bool {
    let b = v.as_bytes();
    let letters = b
        .iter()
        .filter(|c| c.is_ascii_alphabetic() || **c == b' ')
        .count();
    letters * 100 >= b.len() * 85
        && v.split(' ')
            .map(|w| w.trim_end_matches(['.', ',', ':', ';', '!', '?']))
            .filter(|w| w.len() >= 2 && w.bytes().all(|c| c.is_ascii_alphabetic()))
            .nth(4)
            .is_some()
}

/// Letters, digits, `_` and `.` only (ids, slugs, versions, plain words).
fn bare_word(v: &str) -> bool {
    v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// MongoDB query operators smuggled in as `name[$ne]=` or as JSON keys (`{"$where": ..}`).
fn nosql(c: &Candidate<'_>) -> Option<&'static Rule> {
    const OPS: &[&str] = &[
        "ne",
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "in",
        "nin",
        "regex",
        "where",
        "exists",
        "not",
        "nor",
        "or",
        "and",
        "elemmatch",
        "text",
        "expr",
        "all",
        "size",
        "type",
        "mod",
    ];
    // Both shapes need a `$`.
    if !c.bytes.has(b'$') {
        return None;
    }
    let v = c.decoded;
    let is_op = |s: &str| OPS.iter().any(|op| s.eq_ignore_ascii_case(op));
    if c.input.source == Source::ArgName {
        if let Some(op) = v.strip_prefix('$') {
            if is_op(op) {
                return Some(&rules::SQLI_NOSQL_OPERATOR);
            }
        }
    }
    let mut rest = v;
    while let Some(p) = rest.find("[$") {
        let after = &rest[p + 2..];
        if let Some(end) = after.find(']') {
            if is_op(&after[..end]) {
                return Some(&rules::SQLI_NOSQL_OPERATOR);
            }
        }
        rest = after;
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Word(&'a str),
    Num,
    /// A quoted string, or an unbalanced quote.
    Str,
    Punct(u8),
}

fn tokenize(s: &str) -> Vec<Tok<'_>> {
    let b = s.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() && toks.len() < MAX_TOKENS {
        let c = b[i];
        if c == b' ' {
            i += 1;
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            toks.push(Tok::Num);
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'@' || c == b'$' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || matches!(b[i], b'_' | b'@' | b'$')
                    || b[i] >= 0x80)
            {
                i += 1;
            }
            toks.push(Tok::Word(&s[start..i]));
        } else if c == b'`' {
            // MySQL quoted identifier: the name inside counts as a word.
            match b[i + 1..].iter().position(|&x| x == c) {
                Some(end) => {
                    toks.push(Tok::Word(&s[i + 1..i + 1 + end]));
                    i += end + 2;
                }
                None => {
                    toks.push(Tok::Str);
                    i += 1;
                }
            }
        } else if c == b'\'' || c == b'"' {
            // An unbalanced quote is the break-out itself: what follows is read as SQL.
            i = match b[i + 1..].iter().position(|&x| x == c) {
                Some(end) => i + 1 + end + 1,
                None => i + 1,
            };
            toks.push(Tok::Str);
        } else {
            toks.push(Tok::Punct(c));
            i += 1;
        }
    }
    toks
}

/// Functions that (almost) only exist in SQL: a call anywhere is a signal.
const SQL_ONLY_FUNCTIONS: &[&str] = &[
    "benchmark",
    "concat_ws",
    "current_user",
    "db_name",
    "extractvalue",
    "find_in_set",
    "group_concat",
    "ifnull",
    "json_build_object",
    "json_extract",
    "jsonb_pretty",
    "load_file",
    "lo_get",
    "lo_import",
    "make_set",
    "name_const",
    "pg_sleep",
    "schema_name",
    "sqlite_compileoption_get",
    "sqlite_compileoption_used",
    "sqlite_version",
    "string_to_array",
    "sysdate",
    "unhex",
    "unistr",
    "updatexml",
    "utl_http",
    "utl_inaddr",
    "xmltype",
];

/// Common SQL functions whose names are also ordinary words or other languages' functions:
/// a call counts only where SQL would stand (start of the value, after an operator or a
/// SQL keyword).
const SQL_FUNCTIONS: &[&str] = &[
    "ascii",
    "cast",
    "char",
    "chr",
    "coalesce",
    "compress",
    "concat",
    "convert",
    "cos",
    "count",
    "database",
    "decode",
    "div",
    "encode",
    "hex",
    "if",
    "insert",
    "length",
    "lower",
    "md5",
    "mid",
    "mod",
    "now",
    "ord",
    "pow",
    "rand",
    "rtrim",
    "ltrim",
    "sha1",
    "sin",
    "sleep",
    "strcmp",
    "substr",
    "substring",
    "trim",
    "uncompress",
    "upper",
    "user",
    "version",
];

/// [`SQL_FUNCTIONS`] that take no arguments (MySQL `USER()`, `VERSION()`, `DATABASE()`):
/// `User(login_name)` in a field list is no call of theirs.
const NO_ARGUMENTS: &[&str] = &["database", "user", "version"];

/// Names of system schemas and catalogs that only an attacker mapping a database asks for.
fn schema_word(w: &str) -> bool {
    SCHEMA_WORDS.contains(&w)
}

/// The words `tokens` branches on by name (its `match` arms); with [`SCHEMA_WORDS`],
/// [`SQL_ONLY_FUNCTIONS`] and [`SQL_FUNCTIONS`] they are every word that can make it fire
/// (a statement keyword counts only after `;`). Keep in step with the arms.
const TOKEN_WORDS: &[&str] = &[
    "union",
    "select",
    "waitfor",
    "exec",
    "execute",
    "declare",
    "procedure",
    "into",
    "alter",
    "create",
    "drop",
    "insert",
    "having",
    "like",
    "if",
    "mysql",
];

/// The grammar words, built once from the tables above (every one begins with a letter, see
/// the tests).
static GRAMMAR_WORDS: LazyLock<WordIndex> = LazyLock::new(|| WordIndex::of(&grammar_words()));

fn grammar_words() -> Vec<&'static [u8]> {
    TOKEN_WORDS
        .iter()
        .chain(SCHEMA_WORDS)
        .chain(SQL_ONLY_FUNCTIONS)
        .chain(SQL_FUNCTIONS)
        .map(|w| w.as_bytes())
        .collect()
}

/// The word lists behind the word pre-checks, for the combined index
/// ([`keywords`]), each with its bit. The walks find words only where they begin with an
/// ASCII letter or `_`, so listed words beginning otherwise (libinjection's operators `!=`,
/// `&&`, `::`) are left out.
pub(super) fn trigger_words() -> [(keywords::Bits, Vec<&'static [u8]>); 4] {
    let findable = |list: Vec<&'static [u8]>| -> Vec<&'static [u8]> {
        list.into_iter()
            .filter(|w| {
                w.first()
                    .is_some_and(|&x| x.is_ascii_alphabetic() || x == b'_')
            })
            .collect()
    };
    [
        (keywords::SQL_HEADS, findable(KEYWORD_HEADS.clone())),
        (keywords::SQL_HEADS_OPS, findable(KEYWORD_HEADS_OPS.clone())),
        (keywords::SQL_ANY_HEADS, findable(any_keyword_heads())),
        (keywords::SQL_GRAMMAR, findable(grammar_words())),
    ]
}

/// A necessary condition for the grammar checks (`text_checks` and `tokens` on the folded
/// value, also behind a quote): `;` (stacked statements, quote terminator), `"` or `` ` ``
/// (alias), `'{` / `'[` (JSON operators), `::` (casts), `<digit>.e` (MySQL floats), or one of
/// the grammar words standing as a word. Folding only lowercases and turns comments and
/// whitespace into single spaces, so each of these is already in the raw value: a word of the
/// folded value is a run of the raw one that no ASCII letter touches. Saves folding and
/// tokenising ordinary values.
fn grammar_may_flag(v: &[u8], bytes: &ByteSet, words: &Words<'_>) -> bool {
    let pair =
        |a: u8, b: u8| bytes.has(a) && bytes.has(b) && v.windows(2).any(|w| w[0] == a && w[1] == b);
    if bytes.has_any(b";\"`")
        || pair(b':', b':')
        || pair(b'\'', b'{')
        || pair(b'\'', b'[')
        || (bytes.has(b'.')
            && bytes.has(b'e')
            && v.windows(3)
                .any(|w| w[0].is_ascii_digit() && w[1] == b'.' && (w[2] | 0x20) == b'e'))
    {
        return true;
    }
    words.any(keywords::SQL_GRAMMAR) && grammar_words_walk(v)
}

/// Whether a grammar word stands in `v` untouched by letters (the exact part of
/// [`grammar_may_flag`]).
fn grammar_words_walk(v: &[u8]) -> bool {
    // A grammar word not touched by letters begins where a run of letters does.
    let letter = |i: usize| v.get(i).is_some_and(u8::is_ascii_alphabetic);
    (0..v.len()).any(|p| {
        v[p].is_ascii_alphabetic()
            && (p == 0 || !v[p - 1].is_ascii_alphabetic())
            && GRAMMAR_WORDS.prefixes(&v[p..]).any(|n| !letter(p + n))
    })
}

const SCHEMA_WORDS: &[&str] = &[
    "information_schema",
    "pg_catalog",
    "pg_shadow",
    "pg_sleep",
    "tempdb",
    "msdb",
    "msysaccessobjects",
    "msysobjects",
    "msysqueries",
    "northwind",
    "sysobjects",
    "syscolumns",
    "sysdatabases",
    "sqlite_master",
    "schema_name",
    "table_schema",
    "xp_cmdshell",
    "sp_executesql",
    "sp_oacreate",
];

/// Keywords that begin a statement (after `;`).
const STATEMENTS: &[&str] = &[
    "select", "insert", "update", "delete", "drop", "truncate", "replace", "create", "alter",
    "exec", "execute", "declare", "shutdown", "waitfor", "grant", "rename", "sleep",
];

/// Words after which an expression (and so a function call) is SQL.
const SQL_CONTEXT: &[&str] = &[
    "select", "or", "and", "xor", "not", "where", "union", "having", "by", "when", "then", "else",
    "like", "in", "from", "if",
];

/// Words that continue a SQL expression after a value.
const SQL_FOLLOW: &[&str] = &[
    "from", "as", "limit", "order", "group", "into", "between", "end", "offset",
];

/// Determiners: `select a plan from the list` is English.
const PROSE: &[&str] = &[
    "the", "a", "an", "this", "that", "these", "those", "your", "our", "my", "his", "her", "their",
    "its", "each", "every", "any", "all", "one", "some", "which", "what",
];

fn grammar(f: &str) -> Option<&'static Rule> {
    text_checks(f).or_else(|| tokens(f))
}

/// The token-level checks.
fn tokens(f: &str) -> Option<&'static Rule> {
    let t = tokenize(f);
    let word = |i: usize| match t.get(i) {
        Some(Tok::Word(w)) => Some(*w),
        _ => None,
    };
    let is = |i: usize, w: &str| word(i) == Some(w);
    let punct = |i: usize, p: u8| t.get(i) == Some(&Tok::Punct(p));
    // Where SQL could start: beginning of the value or after quote, `(`, `;`, `=`, `,`, `)`,
    // or a SQL keyword.
    let sql_context = |i: usize| match i.checked_sub(1).and_then(|p| t.get(p)) {
        None => true,
        Some(Tok::Str) | Some(Tok::Num) => true,
        Some(Tok::Punct(p)) => matches!(
            p,
            b'(' | b';' | b'=' | b',' | b')' | b'|' | b'&' | b'<' | b'>' | b'!' | b'/'
        ),
        Some(Tok::Word(w)) => SQL_CONTEXT.contains(w),
    };
    // A statement keyword, except `exec` followed by two plain words: T-SQL separates a
    // procedure's arguments with commas, so `; exec will create the case` is prose.
    let statement = |i: usize| {
        let plain = |j: usize| word(j).is_some_and(|w| !w.starts_with('@'));
        match word(i) {
            Some("exec" | "execute") => {
                let target = word(i + 1).unwrap_or("");
                !(plain(i + 1) && plain(i + 2))
                    || target.starts_with("xp_")
                    || target.starts_with("sp_")
                    || matches!(target, "master" | "immediate")
            }
            Some(w) => STATEMENTS.contains(&w),
            None => false,
        }
    };
    for i in 0..t.len() {
        let Some(w) = word(i) else {
            if punct(i, b';') && i > 0 {
                // Stacked statement after a closed quote, a number or `)`.
                let after_value =
                    matches!(t.get(i - 1), Some(Tok::Str | Tok::Num | Tok::Punct(b')')));
                if after_value && statement(i + 1) {
                    return Some(&rules::SQLI_STACKED_QUERY);
                }
            }
            if punct(i, b';') && i == 0 && statement(1) {
                return Some(&rules::SQLI_STACKED_QUERY);
            }
            continue;
        };
        // `select(2) is`, `version(s) that`: manual-page references and plurals in prose.
        let prose_parens = punct(i + 1, b'(')
            && (matches!(t.get(i + 2), Some(Tok::Num)) || matches!(word(i + 2), Some("s" | "es")))
            && punct(i + 3, b')')
            && (word(i + 4).is_some_and(|w| !SQL_CONTEXT.contains(&w) && !SQL_FOLLOW.contains(&w))
                || (punct(i + 4, b'.') && i + 5 == t.len()));
        let call = punct(i + 1, b'(') && !prose_parens;
        match w {
            "union" => {
                let next = if matches!(word(i + 1), Some("all" | "distinct" | "distinctrow")) {
                    i + 2
                } else {
                    i + 1
                };
                if is(next, "select") || punct(next, b'(') && is(next + 1, "select") {
                    return Some(&rules::SQLI_UNION_SELECT);
                }
            }
            "select" if sql_context(i) => {
                let n = i + 1;
                let strong = punct(n, b'*')
                    || call
                    || word(n).is_some_and(|x| x.starts_with('@') || x == "null")
                    || (word(n).is_some() && punct(n + 1, b'('));
                if strong || select_list_from(&t, n) {
                    return Some(&rules::SQLI_SELECT);
                }
            }
            "waitfor" if matches!(word(i + 1), Some("delay" | "time")) => {
                return Some(&rules::SQLI_TIME_BASED);
            }
            "exec" | "execute" => {
                let target = word(i + 1).unwrap_or("");
                if target.starts_with("xp_")
                    || target.starts_with("sp_")
                    || target == "master"
                    || target == "immediate"
                    || (punct(i + 1, b'(') && word(i + 2).is_some_and(|x| x.starts_with('@')))
                {
                    return Some(&rules::SQLI_EXEC);
                }
            }
            "declare" if word(i + 1).is_some_and(|x| x.starts_with('@')) => {
                return Some(&rules::SQLI_STACKED_QUERY);
            }
            "procedure" if is(i + 1, "analyse") => return Some(&rules::SQLI_STACKED_QUERY),
            "into" if matches!(word(i + 1), Some("outfile" | "dumpfile")) => {
                return Some(&rules::SQLI_FILE_ACCESS);
            }
            "alter" if is(i + 1, "table") => {
                let action = word(i + 3).or_else(|| word(i + 4));
                if t.get(i + 2).is_some()
                    && matches!(
                        action,
                        Some("add" | "drop" | "change" | "modify" | "rename")
                    )
                {
                    return Some(&rules::SQLI_STACKED_QUERY);
                }
            }
            "create" | "drop"
                if matches!(
                    word(i + 1),
                    Some("table" | "function" | "procedure" | "database" | "trigger" | "view")
                ) =>
            {
                // `create table t (`, `drop table t;`, or the value ends there.
                let end = i + 3;
                if matches!(t.get(i + 2), Some(Tok::Word(_) | Tok::Str))
                    && (end >= t.len() || punct(end, b'(') || punct(end, b';'))
                {
                    return Some(&rules::SQLI_STACKED_QUERY);
                }
            }
            "insert"
                if is(i + 1, "into")
                    && t[i..]
                        .iter()
                        .take(24)
                        .any(|x| *x == Tok::Word("values") || *x == Tok::Word("select")) =>
            {
                return Some(&rules::SQLI_STACKED_QUERY);
            }
            "having" => {
                // `having count(id) >= 9`, `having x = 1`
                let mut j = i + 1;
                if word(j).is_some() && punct(j + 1, b'(') {
                    j = match t[j..].iter().position(|x| *x == Tok::Punct(b')')) {
                        Some(p) => j + p + 1,
                        None => t.len(),
                    };
                } else if matches!(t.get(j), Some(Tok::Word(_) | Tok::Str | Tok::Num)) {
                    j += 1;
                }
                let compares = matches!(t.get(j), Some(Tok::Punct(b'=' | b'<' | b'>')))
                    || (punct(j, b'!') && punct(j + 1, b'='));
                if compares {
                    return Some(&rules::SQLI_SELECT);
                }
            }
            "like" if i > 0 && punct(i - 1, b')') && punct(i + 1, b'(') => {
                return Some(&rules::SQLI_TAUTOLOGY);
            }
            "if" if call && matches!(t.get(i + 2), Some(Tok::Num)) && punct(i + 3, b'=') => {
                return Some(&rules::SQLI_TAUTOLOGY);
            }
            _ if schema_word(w) => return Some(&rules::SQLI_SCHEMA_PROBE),
            "mysql" if punct(i + 1, b'.') && matches!(word(i + 2), Some("db" | "user")) => {
                return Some(&rules::SQLI_SCHEMA_PROBE);
            }
            _ if call && SQL_ONLY_FUNCTIONS.contains(&w) => {
                return Some(&rules::SQLI_FUNCTION_CALL)
            }
            _ if call
                && SQL_FUNCTIONS.contains(&w)
                && sql_context(i)
                && sql_arguments(&t, i + 2)
                && (!NO_ARGUMENTS.contains(&w)
                    || matches!(t.get(i + 2), None | Some(Tok::Punct(b')')))) =>
            {
                return Some(&rules::SQLI_FUNCTION_CALL);
            }
            _ => {}
        }
    }
    None
}

/// What follows `fn(` looks like SQL arguments: nothing (a probe), a number, a string, a
/// nested call or subquery, `*`, `@var`, or a column followed by `,` / `)`.
fn sql_arguments(t: &[Tok<'_>], i: usize) -> bool {
    match t.get(i) {
        None | Some(Tok::Num | Tok::Str) => true,
        Some(Tok::Punct(p)) => matches!(p, b'(' | b'*' | b')' | b'-'),
        Some(Tok::Word(w)) => {
            w.starts_with('@')
                || t.get(i + 1) == Some(&Tok::Punct(b'('))
                || matches!(t.get(i + 1), None | Some(Tok::Punct(b',' | b')')))
                    && !PROSE.contains(w)
        }
    }
}

/// `select a, b from t` / `select col from t`: identifiers (with `as` aliases) separated by
/// commas, then `from` and a table that is not an English determiner.
fn select_list_from(t: &[Tok<'_>], mut i: usize) -> bool {
    let mut items = 0;
    while i < t.len() && items < 64 {
        match t.get(i) {
            Some(Tok::Word(w)) if *w != "from" && !PROSE.contains(w) => i += 1,
            Some(Tok::Num | Tok::Str) => i += 1,
            _ => return false,
        }
        items += 1;
        if t.get(i) == Some(&Tok::Punct(b'.')) {
            i += 1;
            continue;
        }
        if t.get(i) == Some(&Tok::Word("as")) {
            i += 2;
        }
        match t.get(i) {
            Some(Tok::Punct(b',')) => i += 1,
            Some(Tok::Word("from")) => {
                return match t.get(i + 1) {
                    None => true,
                    Some(Tok::Word(w)) => !PROSE.contains(w),
                    Some(Tok::Str) | Some(Tok::Punct(b'(')) => true,
                    _ => false,
                };
            }
            _ => return false,
        }
    }
    false
}

/// Checks on the folded text where quoting matters more than tokens.
fn text_checks(f: &str) -> Option<&'static Rule> {
    let b = f.as_bytes();
    if ends_with_quote_terminator(b) {
        return Some(&rules::SQLI_QUOTE_TERMINATOR);
    }
    if json_operator(b) {
        return Some(&rules::SQLI_JSON_OPERATOR);
    }
    if pg_cast(b) {
        return Some(&rules::SQLI_PG_CAST);
    }
    if mysql_float(b) {
        return Some(&rules::SQLI_MYSQL_FLOAT);
    }
    if as_alias_from(f) {
        return Some(&rules::SQLI_SELECT);
    }
    None
}

/// `admin@example.com';` — an unbalanced quote closed off with `;` at the very end (comments
/// are already folded away).
fn ends_with_quote_terminator(b: &[u8]) -> bool {
    let Some(rest) = b.strip_suffix(b";") else {
        return false;
    };
    let rest = rest.strip_suffix(b" ").unwrap_or(rest);
    match rest.last() {
        Some(&q @ (b'\'' | b'"' | b'`')) => b.iter().filter(|&&x| x == q).count() % 2 == 1,
        _ => false,
    }
}

/// PostgreSQL casts `password::int`, `(...)::jsonb`, `'1'::bool`.
fn pg_cast(b: &[u8]) -> bool {
    const TYPES: &[&[u8]] = &[
        b"int",
        b"integer",
        b"bigint",
        b"bool",
        b"boolean",
        b"text",
        b"json",
        b"jsonb",
        b"varchar",
        b"numeric",
        b"regclass",
        b"bytea",
        b"oid",
    ];
    let mut i = 1;
    while i < b.len() {
        let Some(p) = normalize::find(&b[i..], b"::") else {
            break;
        };
        let at = i + p;
        let before = b[at - 1];
        let after = &b[at + 2..];
        let n = after
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if (before.is_ascii_alphanumeric() || matches!(before, b')' | b'\'' | b'_'))
            && TYPES.contains(&&after[..n])
        {
            return true;
        }
        i = at + 2;
    }
    false
}

/// A quoted JSON document compared with PostgreSQL/MySQL JSON operators:
/// `'{"a":1}'::jsonb @> '{...}'`, `'[1,2]' ? '1'`, `'{..}' -> '$.a'`.
fn json_operator(b: &[u8]) -> bool {
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\'' && matches!(b[i + 1], b'{' | b'[') {
            let Some(close) = b[i + 1..].iter().position(|&c| c == b'\'') else {
                return false;
            };
            let mut j = i + 1 + close + 1;
            for cast in [&b"::jsonb"[..], b"::json"] {
                if b[j..].starts_with(cast) {
                    j += cast.len();
                    break;
                }
            }
            while b.get(j) == Some(&b' ') {
                j += 1;
            }
            let op = &b[j.min(b.len())..];
            if [
                &b"<@"[..],
                b"@>",
                b"?",
                b"->",
                b"#>",
                b"#-",
                b"@?",
                b"@@",
                b"||",
                b"<",
                b">",
                b"-",
            ]
            .iter()
            .any(|o| op.starts_with(o))
            {
                return true;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    false
}

/// MySQL's `1.e(` / `1.e.tables` (a float literal glued to what follows, a parser quirk used
/// to slip past keyword filters).
fn mysql_float(b: &[u8]) -> bool {
    b.windows(4).enumerate().any(|(i, w)| {
        w[0].is_ascii_digit()
            && w[1] == b'.'
            && w[2].eq_ignore_ascii_case(&b'e')
            && matches!(w[3], b'(' | b'.' | b',' | b')')
            && (i == 0 || !b[i - 1].is_ascii_alphabetic())
    })
}

/// `1234 as "alias" from`, `` ` as `alias` from `` — a column alias inside a select list.
fn as_alias_from(f: &str) -> bool {
    let b = f.as_bytes();
    let mut from = 0;
    while let Some(p) = normalize::find(&b[from..], b" as ") {
        let at = from + p;
        let before = b[..at].last().copied().unwrap_or(b' ');
        let rest = &b[at + 4..];
        if (before.is_ascii_digit() || matches!(before, b'`' | b'"'))
            && matches!(rest.first(), Some(b'"' | b'`'))
        {
            let q = rest[0];
            if let Some(end) = rest[1..].iter().position(|&c| c == q) {
                let tail = &rest[1 + end + 1..];
                let tail = tail.strip_prefix(b" ").unwrap_or(tail);
                if tail.starts_with(b"from") {
                    return true;
                }
            }
        }
        from = at + 4;
    }
    false
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::detect::{Kind, Severity};

    fn run(source: Source, value: &str) -> Vec<Finding> {
        super::super::run_check(check, source, "q", value)
    }

    /// The combined keyword index never hides a word the walks find: random values built
    /// from every listed word, number and hex prefixes, word pieces and delimiters, in
    /// either case, get each walk's `true` only where the index sets its bit.
    #[test]
    fn keyword_index_keeps_every_walk() {
        #[rustfmt::skip]
        const PIECES: &[&str] = &[
            "1", "0x", "0", "9e", "e", "a", "f", "x", "_", ".", " ", "'", "\"", "-", "/", "(",
            ")", ";", "@", "$", "#", "*", ",", "=", "`", "é", "\u{a0}", "Ab", "water", "sel",
            "un", "ion", "ect", "ne",
        ];
        let lists = trigger_words();
        let listed: Vec<&[u8]> = lists.iter().flat_map(|(_, w)| w.iter().copied()).collect();
        let (mut found, mut skipped) = ([0usize; 4], 0usize);
        for v in keywords::random_values(0x1dec_0de5, &listed, PIECES) {
            let words = Words::new(&v);
            let walks = [
                (keywords::SQL_HEADS, heads_walk(&v, &HEAD_INDEX)),
                (keywords::SQL_HEADS_OPS, heads_walk(&v, &HEAD_INDEX_OPS)),
                (keywords::SQL_ANY_HEADS, any_heads_walk(&v)),
                (keywords::SQL_GRAMMAR, grammar_words_walk(&v)),
            ];
            for (k, (bit, walked)) in walks.into_iter().enumerate() {
                if walked {
                    found[k] += 1;
                    assert!(words.any(bit), "{bit} {:?}", String::from_utf8_lossy(&v));
                }
            }
            skipped += usize::from(!words.any(!0));
        }
        // Each walk fires often, and the index still turns many values away.
        assert!(found.iter().all(|&n| n > 3_000), "{found:?}");
        assert!(skipped > 3_000, "{skipped}");
    }

    /// No fingerprint of five barewords and plain keywords is blacklisted (what
    /// `leads_with_plain_words` rests on).
    #[test]
    fn plain_word_fingerprints_are_not_blacklisted() {
        for bits in 0..32u32 {
            let fp: String = (0..5)
                .map(|i| if bits >> i & 1 == 1 { 'k' } else { 'n' })
                .collect();
            assert!(
                !libinjectionrs::sqli::blacklist::is_blacklisted(&fp),
                "{fp}"
            );
        }
        // Shorter ones can be: the gate needs all six words.
        assert!(libinjectionrs::sqli::blacklist::is_blacklisted("nkn"));
    }

    /// `leads_with_plain_words` never skips a value libinjection flags: random values of
    /// words from libinjection's table (alone and as its phrases) and plain words, one
    /// space apart or not, in either case, followed by punctuation, SQL and quotes.
    #[test]
    fn plain_leading_words_keep_every_verdict() {
        #[rustfmt::skip]
        const PLAIN: &[&str] = &[
            "please", "leave", "the", "parcel", "door", "ring", "twice", "wait", "a", "x",
            "n", "q", "u", "b", "e", "nq", "steel", "water", "bottle", "note", "obrien",
        ];
        #[rustfmt::skip]
        const TAIL: &[&str] = &[
            ";", " ", "(", ")", "--", "#", "/*", "*/", "1", "=", " or ", " and ", "'", "\"",
            ".", "`", "{", "}", "@", ",", "select", " union select ", "&", "|", "\t", "1=1",
            "-- x", "x", "[", "]", "$", "::", "!", "~", "-",
        ];
        let entries = libinjectionrs::sqli::sqli_data::SQL_KEYWORDS;
        let keywords: Vec<&str> = entries
            .iter()
            .filter(|k| !k.word.starts_with('0'))
            .flat_map(|k| k.word.split(' '))
            .collect();
        // Words whose own type lets the gate through, to reach six of them often.
        let untyped: Vec<&str> = entries
            .iter()
            .filter(|k| !k.word.contains(' ') && matches!(k.token_type, b'n' | b'k'))
            .map(|k| k.word)
            .collect();
        let phrases: Vec<&str> = entries
            .iter()
            .filter(|k| k.word.contains(' '))
            .map(|k| k.word)
            .collect();
        let mut rng = crate::testutil::Rng(0x5eed_f00d);
        let pick = |rng: &mut crate::testutil::Rng, from: &[&'static str]| -> &'static str {
            from[rng.below(from.len() as u64) as usize]
        };
        let (mut skipped, mut flagged) = (0usize, 0usize);
        for round in 0..200_000 {
            let mut v = String::new();
            for n in 0..1 + rng.below(10) {
                if n > 0 {
                    v.push_str(match rng.below(30) {
                        0 => "  ",
                        1 => "\t",
                        2 => "",
                        _ => " ",
                    });
                }
                v.push_str(match rng.below(10) {
                    0 => pick(&mut rng, &phrases),
                    1 => pick(&mut rng, &keywords),
                    2..=4 => pick(&mut rng, &untyped),
                    _ => pick(&mut rng, PLAIN),
                });
            }
            for _ in 0..rng.below(4) {
                v.push_str(pick(&mut rng, TAIL));
            }
            match round % 3 {
                0 => v.make_ascii_uppercase(),
                1 => v.make_ascii_lowercase(),
                _ => {}
            }
            let b = v.as_bytes();
            let flags =
                libinjectionrs::SqliState::new(b, libinjectionrs::SqliFlags::FLAG_NONE).detect();
            if !v.contains(['\'', '"']) && leads_with_plain_words(b) {
                skipped += 1;
                assert!(!flags, "{v:?}");
                // The reason: five tokens, each a bareword or a plain keyword.
                let fp = libinjectionrs::SqliState::new(b, libinjectionrs::SqliFlags::FLAG_NONE)
                    .get_fingerprint();
                assert!(
                    fp.len() == 5 && fp.bytes().all(|t| matches!(t, b'n' | b'k')),
                    "{v:?} {fp}"
                );
            }
            flagged += usize::from(flags);
        }
        // The gate spares many values, and libinjection flags many of the others.
        assert!(skipped > 10_000 && flagged > 1_000, "{skipped} {flagged}");
    }

    fn rule(value: &str) -> Option<&'static str> {
        let found = run(Source::Query, value);
        assert!(found.len() <= 1);
        found.first().map(|f| {
            assert_eq!(f.kind, Kind::Sqli);
            assert_eq!(f.location, "query:q");
            f.rule_id
        })
    }

    #[test]
    fn libinjection_fingerprints() {
        let f = run(Source::Query, "1' OR '1'='1");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule_id, "sqli.libinjection");
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].evidence, "1' OR '1'='1");
        assert_eq!(rule("1 AND 1=1--"), Some("sqli.libinjection"));
        assert_eq!(rule("%27%20or%201%3D1--"), Some("sqli.libinjection"));
    }

    /// The grammar checks alone (libinjection already knows some of these).
    fn g(value: &str) -> Option<&'static str> {
        grammar(&normalize::sql_fold(&normalize::decode(value))).map(Rule::id)
    }

    #[test]
    fn grammar_rules() {
        // End to end, where libinjection's fingerprints miss.
        assert_eq!(rule("UnIon/**/seLeCt"), Some("sqli.union_select"));
        assert_eq!(rule("pg_catalog"), Some("sqli.schema_probe"));
        assert_eq!(g("UnIon/**/seLeCt"), Some("sqli.union_select"));
        assert_eq!(
            g("union#x\ndistinctrow\x0bselect"),
            Some("sqli.union_select")
        );
        assert_eq!(g("SELECT group_concat("), Some("sqli.select"));
        assert_eq!(g("concat_ws(0x3a,user())"), Some("sqli.function_call"));
        assert_eq!(g("pay=benchmark("), Some("sqli.function_call"));
        assert_eq!(g("hex("), Some("sqli.function_call"));
        assert_eq!(g("select col from users"), Some("sqli.select"));
        assert_eq!(g("\" WAITFOR DELAY '"), Some("sqli.time_based"));
        assert_eq!(g("exec master..xp_cmdshell"), Some("sqli.exec"));
        assert_eq!(g("DECLARE/**/@x"), Some("sqli.stacked_query"));
        assert_eq!(g(";DROP/*x*/TABLE t;"), Some("sqli.stacked_query"));
        assert_eq!(g(";truncate[xx"), Some("sqli.stacked_query"));
        assert_eq!(g("INFORMATION_SCHEMA"), Some("sqli.schema_probe"));
        assert_eq!(g("mysql.db"), Some("sqli.schema_probe"));
        assert_eq!(g("admin@example.com';"), Some("sqli.quote_terminator"));
        assert_eq!(g("x unistr(password)"), Some("sqli.function_call"));
        assert_eq!(g("password::int"), Some("sqli.pg_cast"));
        assert_eq!(rule("';WAITFOR DELAY '"), Some("sqli.stacked_query"));
        assert_eq!(rule("' waitfor delay '"), Some("sqli.time_based"));
        assert_eq!(g("from `information_schema`"), Some("sqli.schema_probe"));
        assert_eq!(rule("1.e.tables"), Some("sqli.mysql_float"));
        assert_eq!(
            g("OR '{\"b\":2}'::jsonb <@ '{\"a\":1}'"),
            Some("sqli.json_operator")
        );
        assert_eq!(g("1.e(ascii)"), Some("sqli.mysql_float"));
        assert_eq!(g("` AS `user_id` from"), Some("sqli.select"));
        assert_eq!(g("x GROUP BY y HAVING COUNT(id) >= 9"), Some("sqli.select"));
        assert_eq!(
            g("9 or {if length((/*!5000select username/*!50000from*/user where id=1))>0}"),
            Some("sqli.function_call")
        );
    }

    #[test]
    fn nosql_operators() {
        let f = run(Source::ArgName, "$where");
        assert_eq!(f[0].rule_id, "sqli.nosql_operator");
        assert_eq!(f[0].severity, Severity::High);
        assert_eq!(f[0].location, "arg-name:q");
        assert_eq!(rule("u_id[$ne]"), Some("sqli.nosql_operator"));
        assert!(run(Source::ArgName, "$schema").is_empty());
        assert_eq!(rule("price[$usd]"), None);
    }

    #[test]
    fn benign_values_pass() {
        for v in [
            "O'Brien",
            "O'Brien's pub; open late",
            "Please select a plan from the list",
            "You can select files from your computer",
            "Select 3 from the shortlist",
            "<b>bold</b> text",
            "1 - 2",
            "a=b",
            "alice@example.com",
            "Tom & Jerry",
            "https://example.com/a?b=c&d=e",
            "{\"a\": [1, 2], \"b\": \"c\"}",
            "Insert the card (chip first)",
            "We love concat, trim and friends",
            "Get enough sleep (at least 7 hours)",
            "northwest",
            "std::string and Vec::new",
            "fe80::1",
            "v1.e.g",
            "He said \"yes\";",
            "1.2.3-beta",
            "Drop table tennis gear at the desk",
            "Wait for events via poll(2) or select(2).",
            "The POSIX.1 version(s) that the call conforms to",
            "Use a single '-' to read from standard input, or '+' to append.",
            "create table entries for each run",
            "having pain!",
            // A keyword or function name before a parenthesised word, nothing quoted.
            "while (busy) is fine.",
            "Left (N, S), past the mill (1867).",
        ] {
            assert_eq!(rule(v), None, "{v}");
        }
        // The same shape with a value or a break-out is still read as SQL.
        assert!(rule("left(version(),1)").is_some());
        assert!(rule("1' and left (user, 1)='r").is_some());
    }

    #[test]
    fn header_tokens_pass() {
        assert!(run(Source::Header, "application/*+json").is_empty());
        assert_eq!(run(Source::Header, "x' or 1=1--")[0].location, "header:q");
    }

    /// The significant token types of `libinjection_may_flag`, as fingerprint letters.
    const SIGNIFICANT_TYPES: &[u8] = b"SC;()V&UEKBTAX";

    #[test]
    fn libinjection_precheck_matches_its_tables() {
        for k in libinjectionrs::sqli::sqli_data::SQL_KEYWORDS {
            if k.token_type == b'F' {
                // Fingerprints are stored as `0` + the upper-cased token types.
                let fp = &k.word.as_bytes()[1..];
                let significant: Vec<u8> = fp
                    .iter()
                    .copied()
                    .filter(|t| SIGNIFICANT_TYPES.contains(t))
                    .collect();
                assert!(!significant.is_empty(), "{}", k.word);
                if significant.iter().all(|&t| t == b'V') {
                    assert!(fp.contains(&b'O'), "{}", k.word);
                }
            }
        }
        for &w in KEYWORD_HEADS_OPS.iter() {
            assert!(w.len() < 32, "{w:?}");
            // Heads the word scan cannot see are punctuation the byte checks cover.
            let word = w[0].is_ascii_alphabetic() || w[0] == b'_';
            let covered = |x: &u8| b"!%&*+-/:<=>^|~".contains(x);
            let op_only = KEYWORD_HEADS.binary_search(&w).is_err() && w.iter().any(covered);
            assert!(word || w == b"&&" || w == b"||" || op_only, "{w:?}");
        }
        let has = |heads: &[&[u8]], w: &[u8]| heads.binary_search(&w).is_ok();
        assert!(has(&KEYWORD_HEADS, b"UNION") && has(&KEYWORD_HEADS, b"NULL"));
        // The index admits every head, in either case, and turns others away.
        for (heads, index) in [
            (&*KEYWORD_HEADS, &*HEAD_INDEX),
            (&*KEYWORD_HEADS_OPS, &*HEAD_INDEX_OPS),
        ] {
            for h in heads {
                let lower = h.to_ascii_lowercase();
                assert!(index.may_begin(h) && index.may_begin(&lower));
                assert!(index.contains(h) && index.contains(&lower));
            }
        }
        assert!(!HEAD_INDEX.may_begin(b"qz"));
        assert!(!has(&KEYWORD_HEADS, b"LIKE") && has(&KEYWORD_HEADS_OPS, b"LIKE"));
    }

    /// No fingerprint libinjection flags is made of strings, barewords and numbers alone, so
    /// a value `only_strings_words_numbers` admits is never flagged; values built from names,
    /// quotes, digits and keywords agree with libinjection itself.
    #[test]
    fn strings_words_and_numbers_are_never_flagged() {
        for k in libinjectionrs::sqli::sqli_data::SQL_KEYWORDS {
            if k.token_type == b'F' {
                let fp = &k.word.as_bytes()[1..];
                assert!(!fp.iter().all(|t| b"SN1".contains(t)), "{}", k.word);
            }
        }
        #[rustfmt::skip]
        const PIECES: &[&str] = &[
            "O", "Brien", "Siobhan", " ", "'", "\"", "5", "0x", "1e", "e", "E", "N", "q", "x",
            "b", "u", "and", "OR", "like", "IS", "not", "union", "select", "group", "by",
            "null", "sleep", "char", "mod", "div", "true", "in", "boolean", "mode", "sounds",
            "Shop", "Bob", "it", "s", "d", "Angelo", "12", "0", "xor", "between", "=1", "--",
        ];
        let mut rng = crate::testutil::Rng(0x0b71_e55e);
        let (mut admitted, mut flagged) = (0, 0);
        for _ in 0..30_000 {
            let len = 1 + rng.below(7) as usize;
            let v: String = (0..len)
                .map(|_| PIECES[rng.below(PIECES.len() as u64) as usize])
                .collect();
            let b = v.as_bytes();
            let detected =
                libinjectionrs::SqliState::new(b, libinjectionrs::SqliFlags::FLAG_NONE).detect();
            flagged += usize::from(detected);
            if only_strings_words_numbers(b, &ByteSet::of(b), &Words::new(b)) {
                admitted += 1;
                assert!(!detected, "{v:?}");
            }
        }
        assert!(admitted > 3_000 && flagged > 50, "{admitted} {flagged}");
        for v in ["Siobhan O'Brien 5", "D'Angelo", "\"Best\" shop 12", "it's"] {
            assert!(
                only_strings_words_numbers(
                    v.as_bytes(),
                    &ByteSet::of(v.as_bytes()),
                    &Words::new(v.as_bytes())
                ),
                "{v}"
            );
        }
        for v in [
            "O'Brien or 1",
            "x' union",
            "a'.b",
            "a'-1",
            "it's\tok",
            "Zoë's",
            "'null'",
        ] {
            assert!(
                !only_strings_words_numbers(
                    v.as_bytes(),
                    &ByteSet::of(v.as_bytes()),
                    &Words::new(v.as_bytes())
                ),
                "{v}"
            );
        }
    }

    /// Text that libinjection reads as SQL only through a loose reading: quotation marks
    /// around a word, percentages, a no-argument function given a column, `exec` in a
    /// sentence. Their attack neighbours keep their verdicts.
    #[test]
    fn prose_like_values_are_not_sql() {
        for v in [
            "SOFT \"LIKE\" NEW",
            "\"IS\" BADGE",
            "WINTER SCARF \"NOT\" INCLUDED",
            "RED , BLUE \"LIKE\"",
            "/shop?q=\"MOD\"&page=14",
            "\"*\"",
            "SEE OUR <A HREF=\"/SALE/\">OFFERS</A>!",
            "'big sale\" or \"clearance:",
            "70% COTTON AND 30% LINEN",
            "50% WOOL AND 50% SILK.",
            "User(first_name),Avatar(url_64x64)",
            "user(id)",
        ] {
            assert_eq!(rule(v), None, "{v}");
        }
        for (v, want) in [
            ("1\" or \"1", "sqli.libinjection"),
            ("1\"OR!\"a", "sqli.libinjection"),
            ("A 'LIKE' B", "sqli.libinjection"),
            ("x' OR 'x", "sqli.libinjection"),
            ("'LIKE'", "sqli.libinjection"),
            ("\"!\"\n", "sqli.libinjection"),
            ("1\" LIKE \"1", "sqli.libinjection"),
            ("\\\"asd\" or 1=\"1", "sqli.libinjection"),
            ("-1\" and \"x\"=\"x", "sqli.libinjection"),
            ("1 AND 1=1", "sqli.libinjection"),
            ("1%2 AND 5=5", "sqli.libinjection"),
            ("user()", "sqli.function_call"),
            ("concat(user(),version())", "sqli.libinjection"),
            ("1; exec xp_cmdshell 'dir'", "sqli.libinjection"),
        ] {
            assert_eq!(rule(v), Some(want), "{v}");
        }
        assert_eq!(g("1; exec sp_who"), Some("sqli.stacked_query"));
        assert_eq!(g("1; exec sp_executesql n'x'"), Some("sqli.stacked_query"));
        assert_eq!(g("; exec will create the case"), None);
        assert_eq!(g("2; exec will run the job 3"), None);
        assert_eq!(g("user(name)"), None);
        assert_eq!(g("user("), Some("sqli.function_call"));
    }

    fn may_flag(v: &str) -> bool {
        libinjection_may_flag(
            v.as_bytes(),
            &ByteSet::of(v.as_bytes()),
            &Words::new(v.as_bytes()),
        )
    }

    #[test]
    fn libinjection_precheck() {
        for v in [
            "SKU-5-0000",
            "+1-202-555-0100",
            "3f6c2a9e-8b1d-4c6e-9f2a-000000000005",
            "Stainless steel water bottle 5/0",
            "siobhan.obrien@example.com",
            "2024-01-02T10:00:00Z",
        ] {
            assert!(!may_flag(v), "{v}");
        }
        for v in [
            "1 or 1",
            "1 OR 1",
            "5 union 6",
            "1eunion",
            "0xaunion",
            "1fUNION",
            "1.eunion",
            "select.1",
            "a@b.c like 1",
            "a@b.c-1",
            "x;",
            "x'",
            "1--",
            "1/*",
            "1 && 2",
            "null",
            "group by",
            "$$",
        ] {
            assert!(may_flag(v), "{v}");
        }
        assert_eq!(rule("1 union select 2"), Some("sqli.libinjection"));
        assert_eq!(rule("-1 or 1=1"), Some("sqli.libinjection"));
        assert_eq!(rule("1 and 1=1"), Some("sqli.libinjection"));
    }

    /// `run_may_hold_keyword` without the pair table: every start and end, one binary search
    /// each.
    fn run_may_hold_keyword_plain(run: &[u8], heads: &[&'static [u8]]) -> bool {
        let number_before = |p: usize| {
            run[..p]
                .iter()
                .rev()
                .take_while(|x| x.is_ascii_hexdigit() || matches!(x, b'x' | b'X' | b'.'))
                .any(u8::is_ascii_digit)
        };
        (0..run.len()).any(|p| {
            (run[p].is_ascii_alphabetic() || run[p] == b'_')
                && !(p > 0 && run[p - 1].is_ascii_alphabetic() && !number_before(p))
                && (p + 1..=run.len().min(p + 32)).any(|q| {
                    (q == run.len() || run[q] == b'.')
                        && heads
                            .binary_search(&&*run[p..q].to_ascii_uppercase())
                            .is_ok()
                })
        })
    }

    #[test]
    fn pair_table_changes_no_run_verdict() {
        const PIECES: &[&str] = &[
            "1",
            "0x",
            "e",
            "E",
            "a",
            "b",
            "f",
            ".",
            "_",
            "union",
            "Select",
            "or",
            "AND",
            "by",
            "is",
            "in",
            "x",
            "null",
            "like",
            "div",
            "current_user",
            "sel",
            "ect",
            "q",
            "z",
            "@",
            "é",
            "9",
        ];
        let mut rng = crate::testutil::Rng(0x1234_5678_9abc_def1);
        let mut next = |n: usize| rng.below(n as u64) as usize;
        let mut held = 0;
        for _ in 0..40_000 {
            let len = 1 + next(6);
            let run: String = (0..len).map(|_| PIECES[next(PIECES.len())]).collect();
            for (heads, index) in [
                (&*KEYWORD_HEADS, &*HEAD_INDEX),
                (&*KEYWORD_HEADS_OPS, &*HEAD_INDEX_OPS),
            ] {
                let plain = run_may_hold_keyword_plain(run.as_bytes(), heads);
                held += usize::from(plain);
                assert_eq!(
                    run_may_hold_keyword(run.as_bytes(), index),
                    plain,
                    "{run:?}"
                );
            }
        }
        assert!(held > 1000, "{held}");
    }

    /// The pre-check never hides a libinjection verdict: random values built from SQL
    /// pieces, numbers, hex, e-mail shapes and punctuation.
    #[test]
    fn libinjection_precheck_is_conservative() {
        const PIECES: &[&str] = &[
            "1",
            "0x1f",
            "1e",
            "1.e",
            "2f",
            "0b1",
            ".5",
            "union",
            "UNION",
            "select",
            "or",
            "and",
            "like",
            "null",
            "is",
            "not",
            "div",
            "group",
            "by",
            "order",
            "into",
            "from",
            "current_user",
            "sleep",
            "char",
            "x",
            "a",
            "foo",
            "bar",
            "abc",
            "@",
            "@@",
            ".",
            ",",
            "-",
            "+",
            "*",
            "/",
            "%",
            "=",
            "<",
            ">",
            "!",
            "|",
            "&",
            "^",
            "~",
            ":",
            "?",
            "[",
            "]",
            "{",
            "}",
            " ",
            " ",
            " ",
            " 1 ",
            " or ",
            "\t",
            "_",
            "_latin1",
            "\u{a0}",
            "é",
        ];
        let mut rng = crate::testutil::Rng(0x9e37_79b9_7f4a_7c15);
        let mut next = |n: usize| rng.below(n as u64) as usize;
        let mut flagged = 0;
        for _ in 0..30_000 {
            let len = 1 + next(6);
            let v: String = (0..len).map(|_| PIECES[next(PIECES.len())]).collect();
            if libinjectionrs::detect_sqli(v.as_bytes()).is_injection() {
                flagged += 1;
                assert!(may_flag(&v), "{v:?}");
            }
        }
        assert!(flagged > 20, "{flagged}");
    }

    fn gmf(v: &str) -> bool {
        grammar_may_flag(
            v.as_bytes(),
            &ByteSet::of(v.as_bytes()),
            &Words::new(v.as_bytes()),
        )
    }

    #[test]
    fn grammar_precheck() {
        // Each grammar rule's attacks pass the pre-check, whatever their case and comments.
        for v in [
            "UnIon/**/seLeCt",
            "/*!50000union*//*!50000select*/",
            "union#x\ndistinctrow\x0bselect",
            "SELECT group_concat(",
            "concat_ws(0x3a,user())",
            "pay=benchmark(",
            "select col from users",
            "\" WAITFOR DELAY '",
            "exec master..xp_cmdshell",
            "DECLARE/**/@x",
            ";truncate[xx",
            "x INFORMATION_SCHEMA",
            "admin@example.com';",
            "password::int",
            "OR '{\"b\":2}'::jsonb <@ '{\"a\":1}'",
            "1.E(ascii)",
            "` AS `user_id` from",
            "x GROUP BY y HAVING COUNT(id) >= 9",
            "1 and if(1=1,sleep(5),0)",
            "x') like ('y",
            "1 into outfile '/tmp/x'",
            "1 procedure analyse(",
            "alter table t drop x",
            "create table t (",
            "insert into t values (1)",
            "mysql.user -x",
        ] {
            assert!(gmf(v), "{v}");
            let decoded = normalize::decode(v);
            assert!(folded_grammar(&decoded).is_some(), "{v}");
        }
        // Every grammar word, as a word, in any case (and each begins with a letter, as the
        // pre-check's scan of letter runs assumes).
        for w in TOKEN_WORDS
            .iter()
            .chain(SCHEMA_WORDS)
            .chain(SQL_ONLY_FUNCTIONS)
            .chain(SQL_FUNCTIONS)
        {
            assert!(w.as_bytes()[0].is_ascii_alphabetic(), "{w}");
        }
        for w in TOKEN_WORDS
            .iter()
            .chain(SCHEMA_WORDS)
            .chain(SQL_ONLY_FUNCTIONS)
            .chain(SQL_FUNCTIONS)
        {
            assert!(gmf(&format!("a {} b", w.to_uppercase())), "{w}");
            assert!(gmf(&format!("9{w}(")), "{w}");
        }
        // Ordinary values skip folding and tokenising.
        for v in [
            "Stainless steel water bottle 12/3",
            "siobhan.obrien12@example.com",
            "+1-202-555-0123",
            "3f6c2a9e-8b1d-4c6e-9f2a-000000000012",
            "SKU-12-0003",
            "12 Wallaby Way",
            "a different gift, uniondale",
        ] {
            assert!(!gmf(v), "{v}");
        }
    }

    /// The grammar pre-check never hides a grammar verdict: random values built from SQL
    /// words, comments, quotes and punctuation.
    #[test]
    fn grammar_precheck_is_conservative() {
        const PIECES: &[&str] = &[
            "1",
            "1.",
            "e",
            "E(",
            "union",
            "SeLeCt",
            "all",
            "from",
            "users",
            "x",
            "if",
            "(",
            ")",
            "sleep",
            "char",
            "user",
            "exec",
            "xp_cmdshell",
            "waitfor",
            "delay",
            "into",
            "outfile",
            "mysql",
            ".",
            "db",
            "@x",
            "declare",
            "having",
            "count",
            "=",
            "like",
            "/*",
            "*/",
            "/*!500",
            "#",
            "--",
            "\n",
            " ",
            " ",
            "\t",
            "'",
            "\"",
            "`",
            ";",
            ":",
            ",",
            "{",
            "[",
            "as",
            "é",
            "_",
            "0x1",
            "pg_catalog",
            "drop",
            "table",
        ];
        let mut rng = crate::testutil::Rng(0x2545_f491_4f6c_dd1d);
        let mut next = |n: usize| rng.below(n as u64) as usize;
        let mut flagged = 0;
        for _ in 0..60_000 {
            let len = 1 + next(7);
            let v: String = (0..len).map(|_| PIECES[next(PIECES.len())]).collect();
            if folded_grammar(&v).is_some() {
                flagged += 1;
                assert!(gmf(&v), "{v:?}");
            }
        }
        assert!(flagged > 1000, "{flagged}");
    }

    #[test]
    fn hostile_input_is_bounded() {
        let long = "(".repeat(100_000) + &"'".repeat(1000);
        let _ = run(Source::Body, &long);
        let _ = run(Source::Body, "'{");
        let _ = run(Source::Body, "::");
        let _ = run(Source::Body, "x::");
        let _ = run(Source::Body, "\u{ff07} or 1=1");
    }
}
