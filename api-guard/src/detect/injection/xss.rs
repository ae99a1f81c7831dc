//! Cross-site scripting: libinjection's HTML5 tokenizer (which tries the value as text, in
//! an attribute and after each quote), plus checks for what it leaves out: obfuscated tag
//! names (`<f o r m`, `< x: script`, `+ADw-script`, fullwidth and 7-bit `¼script¾` forms),
//! event-handler attributes outside a tag, `javascript:` URIs with whitespace or entities
//! inside, CSS bindings, and script that needs no tag at all (`document.cookie`,
//! `window["alert"]`, `alert()`, tagged templates, JSFuck) for values reflected into script.
//!
//! Every check is a linear scan; names are matched against small static lists.

use std::borrow::Cow;

use memchr::memmem;

use super::{
    text::{needle_mask, needle_masks, ByteSet},
    Candidate,
};
use crate::detect::{
    finding::Finding,
    inputs::Source,
    normalize,
    rules::{self, Rule},
};

pub fn check(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    if may_match(c) {
        check_ungated(c, out);
    }
}

/// [`check`] without [`may_match`] (which must not change its verdicts).
pub(super) fn check_ungated(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    if c.decoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return;
    }
    if let Some(rule) = rule(c) {
        out.push(Finding::new(rule, c.input.location(), c.decoded));
    }
}

/// A necessary condition for every rule of [`rule`], from the value's byte summary (the
/// lower-cased and compacted forms hold no ASCII byte the value lacks):
/// libinjection needs `<` or `=` (see [`rule`]; a quote or `>` alone is no longer enough, so
/// `O'Brien` skips the checks), tags `<` (or `+ADw-`, or the non-ASCII `¼`),
/// handlers `=` (a parameter name gets one appended), script URIs and CSS `:` or `url(`,
/// script calls `(`, `` ` ``, `${` or `import{`, JSFuck `[`, and DOM sinks either `[`, `=`
/// or `document.` / `window.`. Saves lower-casing and compacting ordinary values.
fn may_match(c: &Candidate<'_>) -> bool {
    const DOCUMENT: u128 = needle_mask(b"document.");
    const WINDOW: u128 = needle_mask(b"window.");
    const UTF7: u128 = needle_mask(b"+adw-");
    const TRIGGERS: u128 = needle_mask(b"<`=:([${");
    let s = &c.bytes;
    c.input.source == Source::ArgName
        || s.non_ascii
        || s.has_any_mask(TRIGGERS)
        || ((s.has_mask(DOCUMENT) || s.has_mask(WINDOW))
            && dotted_sink_may_form(c.decoded.as_bytes(), s))
        || s.has_mask(UTF7)
}

/// The DOM sinks without a `[`, `=` or `(` (which [`may_match`] lets through anyway) are
/// `document.` or `window.` and a property (see [`DOM_SINKS`]): in the compacted form the
/// byte before their dot is `t` or `w` and the one after it `b`, `c`, `d`, `l`, `q` or `w`.
/// Compaction only removes whitespace, control characters and `/*…*/` comments, so without
/// a `/*` the raw value has such a dot with those bytes around it, blanks skipped. (`wait.
/// #5` has a `t` before its dot but a `#` after it.)
fn dotted_sink_may_form(b: &[u8], s: &ByteSet) -> bool {
    if s.has(b'/') && s.has(b'*') {
        return true;
    }
    let blank = |x: &&u8| x.is_ascii_whitespace() || x.is_ascii_control();
    memchr::memchr_iter(b'.', b).any(|p| {
        let before = b[..p].iter().rev().find(|x| !blank(x));
        let after = b[p + 1..].iter().find(|x| !blank(x));
        before.is_some_and(|x| matches!(x.to_ascii_lowercase(), b't' | b'w'))
            && after.is_some_and(|x| {
                matches!(
                    x.to_ascii_lowercase(),
                    b'b' | b'c' | b'd' | b'l' | b'q' | b'w'
                )
            })
    })
}

fn rule(c: &Candidate<'_>) -> Option<&'static Rule> {
    let v = c.decoded;
    // Characters that become `<` / `>` when a back end strips the high bit (`¼` is 0xBC).
    let lower: Cow<'_, str> = if v.contains(['\u{bc}', '\u{be}']) {
        Cow::Owned(
            v.to_ascii_lowercase()
                .replace('\u{bc}', "<")
                .replace('\u{be}', ">"),
        )
    } else if c.bytes.upper {
        Cow::Owned(v.to_ascii_lowercase())
    } else {
        Cow::Borrowed(v)
    };
    // Without markup or a quote to break out of an attribute, libinjection's attribute
    // verdicts (`style=...`) are about text that stays text; the own checks below cover
    // unquoted handlers and script URIs.
    // libinjection flags only tags, comments and doctypes, which all begin at a `<`, and
    // attribute values after a listed attribute name, which only a `=` opens (a quoted
    // context's first value has no name): without either (`O'Brien`) it cannot flag.
    if v.contains(['<', '>', '"', '\'', '`'])
        && (c.bytes.has(b'<') || c.bytes.has(b'='))
        && libinjection(v)
    {
        return Some(&rules::XSS_LIBINJECTION);
    }
    if ssi(&lower) {
        return Some(&rules::XSS_SSI);
    }
    if tag(&lower) || seven_bit_tag(v) {
        return Some(&rules::XSS_TAG);
    }
    if c.input.source == Source::ArgName {
        // The `=` that followed a parameter name was split off: `?  onload= =x`.
        if event_handler(&format!("{lower}=")) {
            return Some(&rules::XSS_EVENT_HANDLER);
        }
    } else if !base64ish(v) && event_handler(&lower) {
        return Some(&rules::XSS_EVENT_HANDLER);
    }
    let compact = Compact::new(normalize::js_compact(&lower));
    if script_uri(&lower, &compact) {
        return Some(&rules::XSS_SCRIPT_URI);
    }
    if css(&compact) {
        return Some(&rules::XSS_CSS);
    }
    // A path names documents (`/manual/document.cookie`); script in it needs punctuation.
    let path_plain = c.input.source == Source::Path && !compact.text.contains(['(', '=', '[']);
    if !path_plain && dom_access(&compact) {
        return Some(&rules::XSS_DOM_ACCESS);
    }
    if js_call(&lower, &compact) {
        return Some(&rules::XSS_JS_CALL);
    }
    if jsfuck(&compact) {
        return Some(&rules::XSS_JSFUCK);
    }
    None
}

/// [`normalize::js_compact`]'s text with its byte summary: [`Compact::contains`] skips the
/// search for a literal holding a byte the text lacks.
struct Compact {
    text: String,
    bytes: ByteSet,
}

impl Compact {
    fn new(text: String) -> Self {
        let bytes = ByteSet::of(text.as_bytes());
        Self { text, bytes }
    }

    fn contains(&self, lit: impl AsRef<str>) -> bool {
        let lit = lit.as_ref();
        self.bytes.has_all(lit.as_bytes()) && self.text.contains(lit)
    }
}

impl std::ops::Deref for Compact {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

/// libinjection's verdict, with leading XML declarations and processing instructions
/// (`<?xml version="1.0"?>`, ordinary in XML-carrying fields) set aside.
fn libinjection(v: &str) -> bool {
    let mut rest = v.trim_start();
    while rest.starts_with("<?") {
        match rest.find("?>") {
            Some(end) => rest = rest[end + 2..].trim_start(),
            None => break,
        }
    }
    !rest.is_empty() && libinjectionrs::detect_xss(rest.as_bytes()).is_injection()
}

/// Server-side include directives (`<!--#exec cmd=...-->`).
fn ssi(lower: &str) -> bool {
    const DIRECTIVES: &[&str] = &[
        "exec", "include", "echo", "set", "config", "printenv", "fsize", "flastmod",
    ];
    let mut rest = lower;
    while let Some(p) = rest.find("<!--#") {
        rest = &rest[p + 5..];
        if DIRECTIVES.iter().any(|d| rest.starts_with(d)) {
            return true;
        }
    }
    false
}

/// Only base64 / base64url characters: tokens and signatures, where `/on…=` is chance.
fn base64ish(v: &str) -> bool {
    v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

/// Tags that run script or load active content by themselves.
const ACTIVE_TAGS: &[&str] = &[
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math", "meta",
    "base", "link", "style", "xml", "import", "vmlframe", "isindex", "xss",
];

/// Tags written with spaces between the letters (`<f o r m`): only an evasion does that.
const SPACED_TAGS: &[&str] = &[
    "form", "dialog", "img", "image", "body", "video", "audio", "input", "button", "details",
    "marquee", "textarea", "select", "template", "a", "div", "table",
];

/// `<script`, `<x:script`, `< x: script`, `<f o r m`, UTF-7 `+adw-script`.
fn tag(s: &str) -> bool {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        let start = if c == b'<' {
            i + 1
        } else if c == b'+' && b[i..].starts_with(b"+adw-") {
            i + 5
        } else {
            continue;
        };
        if open_tag(&b[start..]) {
            return true;
        }
    }
    false
}

/// `¼name¾`: any tag name between the pair is the 7-bit-stripping evasion itself.
fn seven_bit_tag(v: &str) -> bool {
    let mut rest = v;
    while let Some(p) = rest.find('\u{bc}') {
        rest = &rest[p + '\u{bc}'.len_utf8()..];
        let n = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        if n > 0 && rest[n..].starts_with('\u{be}') {
            return true;
        }
    }
    false
}

fn open_tag(b: &[u8]) -> bool {
    let mut i = 0;
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    let spaced_start = i > 0;
    // Single letters separated by spaces: `f o r m`.
    let mut spaced = Vec::new();
    let mut j = i;
    while j < b.len() && spaced.len() < 16 {
        if !b[j].is_ascii_alphabetic() || b.get(j + 1).is_some_and(u8::is_ascii_alphabetic) {
            break;
        }
        spaced.push(b[j]);
        if b.get(j + 1) == Some(&b' ') {
            j += 2;
        } else {
            break;
        }
    }
    let word_end = i + b[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b':' | b'-' | b'_'))
        .count();
    let name = &b[i..word_end];
    // Namespace prefixes (`x:script`, `v:vmlframe`, `:vmlframe`).
    let local = match name.iter().rposition(|&c| c == b':') {
        Some(p) if p + 1 < name.len() => &name[p + 1..],
        Some(_) => {
            // `< x: script`: the local name follows a space.
            let rest = &b[word_end..];
            let k = rest.iter().take_while(|c| c.is_ascii_whitespace()).count();
            let n = rest[k..]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            &rest[k..k + n]
        }
        None => name,
    };
    let letters = local.iter().take_while(|c| c.is_ascii_alphabetic()).count();
    let local = &local[..letters];
    let is = |list: &[&str], n: &[u8]| list.iter().any(|t| t.as_bytes() == n);
    if spaced.len() >= 3 && (is(ACTIVE_TAGS, &spaced) || is(SPACED_TAGS, &spaced)) {
        return true;
    }
    if !is(ACTIVE_TAGS, local) {
        return false;
    }
    // `a < script` in prose is rare, but `< style` after a space is ordinary text.
    !spaced_start || name.contains(&b':')
}

/// Words that start with `on` and appear before `=` in ordinary text.
const ON_WORDS: &[&str] = &[
    "once",
    "only",
    "online",
    "onto",
    "ongoing",
    "onset",
    "onion",
    "onboarding",
    "onward",
    "onwards",
    "onsite",
    "onpremise",
    "onprem",
    "onboard",
    "onetime",
    "oneway",
];

/// `" onload=`, `/onerror =`, `;onfocus=`: an `on…` attribute after a delimiter, or
/// `formaction=` / `srcdoc=`.
fn event_handler(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 1;
    while i + 2 < b.len() {
        let delim = matches!(
            b[i - 1],
            b' ' | b'\t'
                | b'\n'
                | b'\r'
                | 0x0b
                | 0x0c
                | b'"'
                | b'\''
                | b'`'
                | b'/'
                | b';'
                | b','
                | b'('
        );
        if !delim {
            i += 1;
            continue;
        }
        let n = b[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        let name = &b[i..i + n];
        let mut k = i + n;
        while b
            .get(k)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        {
            k += 1;
        }
        let assigns = b.get(k) == Some(&b'=') && b.get(k + 1) != Some(&b'=');
        if assigns {
            let handler = name.len() >= 5
                && name.len() <= 52
                && name.starts_with(b"on")
                && !ON_WORDS.iter().any(|w| w.as_bytes() == name);
            if handler || name == b"formaction" || name == b"srcdoc" {
                return true;
            }
        }
        i += n.max(1);
    }
    false
}

/// `javascript:` / `vbscript:` URIs: glued to what follows, after `(`, `=` or a quote, or
/// obfuscated with whitespace and control characters inside the scheme.
fn script_uri(lower: &str, compact: &Compact) -> bool {
    const SCHEMES: &[&str] = &["javascript:", "vbscript:", "livescript:"];
    for scheme in SCHEMES {
        if !compact.contains(scheme) {
            continue;
        }
        let Some(q) = lower.find(scheme) else {
            // Only visible once whitespace is removed: `java\tscript:`, `ja&tab;vascript:`.
            return true;
        };
        let after = &lower[q + scheme.len()..];
        let trimmed = after.trim_start();
        let glued = !after.is_empty() && after.len() == trimmed.len();
        let code = trimmed.starts_with(['\\', '(', '/', '\'', '"', '`', '[']);
        if glued || code {
            return true;
        }
    }
    compact.contains("url(javascript") || compact.contains("url(vbscript")
}

/// CSS that runs code: Mozilla bindings, IE `expression()` and behaviours.
fn css(compact: &Compact) -> bool {
    compact.contains("-moz-binding:")
        || compact.contains(":expression(")
        || compact.contains("behavior:url(")
}

/// DOM objects read or written from injected script ([`dom_access`]).
const DOM_SINKS: &[&[u8]] = &[
    b"document.cookie",
    b"document.domain",
    b"document.write",
    b"document.location",
    b"document.body",
    b"document.createelement",
    b"document.queryselector",
    b"window.location",
    b".innerhtml=",
    b".outerhtml=",
    b"(document)[",
    b"document[",
    b"window[",
    b"self[",
    b"globalthis[",
];

/// DOM objects read or written from injected script.
fn dom_access(compact: &Compact) -> bool {
    const SINKS: &[&[u8]] = DOM_SINKS;
    // Their byte masks, built at compile time: one test per sink instead of a lookup per
    // byte.
    const MASKS: [u128; SINKS.len()] = needle_masks(SINKS);
    SINKS.iter().zip(&MASKS).any(|(sink, mask)| {
        compact.bytes.has_mask(*mask) && memmem::find(compact.text.as_bytes(), sink).is_some()
    })
}

/// Script sinks called directly (`alert(1)`, ``alert`1` ``, `setTimeout(code)`,
/// `new Function(`), tagged templates (`[].sort.call`${alert}``) and ES module imports.
fn js_call(lower: &str, compact: &Compact) -> bool {
    const SINKS: &[&str] = &[
        "alert",
        "prompt",
        "confirm",
        "eval",
        "settimeout",
        "setinterval",
        "execscript",
        "atob",
        "btoa",
    ];
    let b = lower.as_bytes();
    let bytes = ByteSet::of(b);
    for sink in SINKS {
        // A call needs `(` or `` ` `` after the name, and the name's letters.
        if !bytes.has_any(b"(`") || !bytes.has_all(sink.as_bytes()) {
            continue;
        }
        let mut from = 0;
        while let Some(p) = lower[from..].find(sink) {
            let at = from + p;
            let end = at + sink.len();
            // Script position: start of the value or after a break-out character, not a word
            // in a sentence (`calls alert('saved') twice`).
            let prev = lower[..at].trim_end().bytes().last();
            let before_ok = (at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_'))
                && matches!(
                    prev,
                    None | Some(
                        b';' | b'"'
                            | b'\''
                            | b'>'
                            | b'('
                            | b'='
                            | b':'
                            | b','
                            | b'{'
                            | b'|'
                            | b'&'
                            | b'`'
                            | b'<'
                    )
                );
            let open = matches!(b.get(end), Some(b'(' | b'`'));
            let plural = lower[end..].starts_with("(s)") || lower[end..].starts_with("(es)");
            if before_ok && open && !plural {
                return true;
            }
            from = end;
        }
    }
    compact.contains("newfunction(")
        || compact.contains(".call`")
        || compact.contains(".apply`")
        || ["${alert", "${eval", "${prompt", "${confirm"]
            .iter()
            .any(|s| compact.contains(s))
        || (compact.starts_with("import{") && compact.contains("}from"))
}

/// JSFuck: script written with `[]()!+` only.
fn jsfuck(compact: &Compact) -> bool {
    if !(compact.contains("![]") || compact.contains("+[]")) {
        return false;
    }
    let n = compact.len();
    let alphabet = compact
        .bytes()
        .filter(|c| matches!(c, b'[' | b']' | b'(' | b')' | b'!' | b'+'))
        .count();
    alphabet * 10 >= n * 8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{Kind, Severity};

    fn run(source: Source, value: &str) -> Vec<Finding> {
        super::super::run_check(check, source, "q", value)
    }

    fn rule_of(value: &str) -> Option<&'static str> {
        let found = run(Source::Query, value);
        assert!(found.len() <= 1);
        found.first().map(|f| {
            assert_eq!(f.kind, Kind::Xss);
            assert_eq!(f.severity, Severity::High);
            assert_eq!(f.location, "query:q");
            f.rule_id
        })
    }

    #[test]
    fn libinjection_needs_a_tag_or_an_attribute_value() {
        // Random values of quotes, attribute names and script pieces without `<` and `=`
        // are never flagged; with them many are (the gate in `rule` rests on the first).
        #[rustfmt::skip]
        const PIECES: &[&str] = &[
            "'", "\"", "`", " ", "/", ">", "!", "-", "?", "%", "onerror", "onload", "style",
            "href", "src", "xmlns", "formaction", "javascript:", "alert(1)", "doctype", "[if",
            "xml", "import", "entity", "script", "svg", "a", "O'Brien", "x", "\t", "&#",
        ];
        let mut rng = crate::testutil::Rng(0x7a9);
        let (mut without, mut flagged_with) = (0, 0);
        for _ in 0..60_000 {
            let mut v = String::new();
            for _ in 0..1 + rng.below(8) {
                v.push_str(PIECES[rng.below(PIECES.len() as u64) as usize]);
                if rng.below(6) == 0 {
                    v.push(if rng.below(2) == 0 { '<' } else { '=' });
                }
            }
            let flagged = libinjectionrs::detect_xss(v.as_bytes()).is_injection();
            if v.contains(['<', '=']) {
                flagged_with += usize::from(flagged);
            } else {
                without += 1;
                assert!(!flagged, "{v:?}");
            }
        }
        assert!(
            without > 10_000 && flagged_with > 1_000,
            "{without} {flagged_with}"
        );
    }

    /// [`may_match`] never changes a verdict, quotes and `>` no longer being triggers:
    /// 150,000 random values of quotes, markup, script and DOM pieces and escapes, from every
    /// source, get the same findings from [`check`] and [`check_ungated`].
    #[test]
    fn gate_keeps_every_verdict() {
        #[rustfmt::skip]
        const PIECES: &[&str] = &[
            "'", "'", "\"", ">", "<", "=", "`", "(", ")", "[", "]", "$", "{", "}", ":", ".", " ",
            "\t", "/", ";", ",", "!", "+", "x", "1", "O'Brien", "document", "cookie", "window",
            "location", "alert", "onload", "onerror", "javascript", "+ADw-", "script", "\u{bc}",
            "\u{be}", "\\u0028", "\\x3c", "&#40;", "&lt;", "%28", "%3c", "import", "from",
            "self", ".innerHTML", "eval", "svg", "url", "expression", "-moz-binding", "<!--#",
            "exec", "'+'", "\"+\"", "new Function", "call", "![]", "+[]", "/*", "*/", "\n",
            "\u{1}", "docu", "ment", "win", "dow", "body", "write", "domain", "querySelector",
            "createElement", "wait", "#5", "twice", "Window", "DOCUMENT",
        ];
        const SOURCES: &[Source] = &Source::ALL;
        let mut rng = crate::testutil::Rng(0x0b51_e5c4_a7e5_9a7e);
        let (mut quoted_skipped, mut flagged) = (0usize, 0usize);
        for round in 0..150_000 {
            let v: String = (0..1 + rng.below(7))
                .map(|_| PIECES[rng.below(PIECES.len() as u64) as usize])
                .collect();
            let source = SOURCES[round % SOURCES.len()];
            let checks = (
                check as super::super::Check,
                check_ungated as super::super::Check,
            );
            super::super::assert_gate_keeps_findings(source, &v, checks, |c, found| {
                flagged += usize::from(!found.is_empty());
                quoted_skipped += usize::from(c.decoded.contains(['\'', '"']) && !may_match(c));
            });
        }
        assert!(
            quoted_skipped > 5_000 && flagged > 3_000,
            "{quoted_skipped} {flagged}"
        );
    }

    /// [`dotted_sink_may_form`] rests on the dotted sinks' bytes around their dot.
    #[test]
    fn dotted_sinks_have_the_gated_bytes_around_their_dot() {
        let gated = |sink: &[u8]| {
            let s = ByteSet::of(sink);
            !s.has_any(b"[=(") && dotted_sink_may_form(sink, &s)
        };
        for sink in DOM_SINKS {
            let s = ByteSet::of(sink);
            assert!(s.has_any(b"[=(") || gated(sink), "{sink:?}");
        }
        let s = ByteSet::of(b"document .\t/**/cookie");
        assert!(dotted_sink_may_form(b"document .\tCookie", &s));
        assert!(!dotted_sink_may_form(
            b"Please leave the parcel at the door; ring twice & wait. #5",
            &ByteSet::of(b"Please leave the parcel at the door; ring twice & wait. #5")
        ));
    }

    #[test]
    fn libinjection_html() {
        let f = run(Source::Form, "<script>alert(1)</script>");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule_id, "xss.libinjection");
        assert_eq!(f[0].location, "form:q");
        assert_eq!(
            rule_of("\"><svg/onload=alert(1)>"),
            Some("xss.libinjection")
        );
        assert_eq!(
            rule_of("%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"),
            Some("xss.libinjection")
        );
    }

    #[test]
    fn own_rules() {
        assert_eq!(
            rule_of("\u{ff1c}script \u{ff1e}alert(1)"),
            Some("xss.libinjection")
        );
        assert_eq!(rule_of("&lt;script+&gt;x"), Some("xss.tag"));
        assert_eq!(rule_of("foo=bar<f o r m"), Some("xss.tag"));
        assert_eq!(rule_of("< x: script"), Some("xss.tag"));
        assert_eq!(rule_of("+ADw-script+AD4-"), Some("xss.tag"));
        assert_eq!(rule_of("\\xbcscript\\xbe"), Some("xss.tag"));
        assert_eq!(rule_of("\\xbctest\\xbetest"), Some("xss.tag"));
        assert_eq!(
            rule_of("test;onfocus=eval(atob('x'))"),
            Some("xss.event_handler")
        );
        assert_eq!(rule_of("'formaction="), Some("xss.event_handler"));
        assert_eq!(
            run(Source::ArgName, "  onload")[0].rule_id,
            "xss.event_handler"
        );
        assert_eq!(rule_of("ja&tab;vascript&colon;"), Some("xss.script_uri"));
        assert_eq!(rule_of("a:url(javascript"), Some("xss.script_uri"));
        assert_eq!(
            rule_of("-moz-binding:url(http://x/y.xml#xss)"),
            Some("xss.css")
        );
        assert_eq!(rule_of("document /*x*/ . cookie"), Some("xss.dom_access"));
        assert_eq!(rule_of("self[\"alert\"](1)"), Some("xss.dom_access"));
        assert_eq!(rule_of("setInterval(code, 1)"), Some("xss.js_call"));
        assert_eq!(rule_of("[].sort.call`${alert}1`"), Some("xss.js_call"));
        assert_eq!(rule_of("+!![]"), Some("xss.jsfuck"));
        assert_eq!(rule_of("\"--><!--#exec cmd=\"id\"-->"), Some("xss.ssi"));
        assert_eq!(rule_of("x\";setTimeout(name, 1)//"), Some("xss.js_call"));
        assert_eq!(
            rule_of("a=  onwebkitplaybacktargetavailabilitychanged= =x"),
            Some("xss.event_handler")
        );
    }

    #[test]
    fn benign_values_pass() {
        for v in [
            "O'Brien",
            "Please select a plan from the list",
            "<b>bold</b> and <i>italic</i> markdown",
            "1 - 2",
            "a=b",
            "alice@example.com",
            "Tom & Jerry",
            "https://example.com/a?b=c&d=e",
            "{\"a\": [1, 2]}",
            "if a < b and b > c",
            "a < style guide",
            "status online=true",
            "  onthisisaverylongwordthathasmorethanfiftycharactersss=1",
            "JavaScript: 5 years, TypeScript",
            "You will get alert(s) by email",
            "Please confirm your email.",
            "style=color:red;background:white",
            "x = [] + []",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><order><id>1</id></order>",
            "VGhhbmtzLCBmb3IgYWxs/onafe=",
            "My component calls alert('saved') twice",
            "Why does `document.getElementById('app')` return null?",
        ] {
            assert_eq!(rule_of(v), None, "{v}");
        }
    }

    #[test]
    fn paths_name_documents() {
        assert!(run(Source::Path, "/docs/javascript-manual/document.cookie").is_empty());
        assert_eq!(
            run(Source::Path, "/x/document.cookie=1")[0].location,
            "path"
        );
    }

    /// The byte pre-checks (upper case, non-ASCII, each rule's punctuation) skip nothing.
    #[test]
    fn prechecks_keep_detections() {
        assert_eq!(rule_of("DOCUMENT.COOKIE"), Some("xss.dom_access"));
        assert_eq!(rule_of("Window [\"alert\"](1)"), Some("xss.dom_access"));
        assert_eq!(rule_of("ALERT(1)"), Some("xss.js_call"));
        assert_eq!(rule_of("é;Prompt`1`"), Some("xss.js_call"));
        assert_eq!(rule_of("NEW Function(x)"), Some("xss.js_call"));
        assert_eq!(rule_of("JAVA\tSCRIPT:x"), Some("xss.script_uri"));
        assert_eq!(rule_of("x:EXPRESSION(1)"), Some("xss.css"));
        assert_eq!(rule_of("Ünï -MOZ-BINDING:x"), Some("xss.css"));
        assert_eq!(rule_of("+[]+!![]"), Some("xss.jsfuck"));
    }

    #[test]
    fn hostile_input_is_bounded() {
        let long = "<".repeat(50_000) + &" on".repeat(10_000);
        let _ = run(Source::Body, &long);
        for v in ["<", "< ", "<x:", "+adw-", "on=", "javascript:", "\u{bc}"] {
            let _ = run(Source::Body, v);
        }
    }
}
