//! Server-side template injection: template delimiters (`{{ }}`, `${ }`, `#{ }`, `*{ }`,
//! `{% %}`, `<%= %>`) holding an *expression* — arithmetic (`7*7`), a call, a dunder
//! (`__class__`), subscripting with a literal, or a well-known template global (`config`,
//! `self`, `request`) — and Freemarker / Velocity directives (`<#assign`, `#set(`).
//!
//! Plain placeholders (`{{user_name}}`, `{{ order.id }}`, `{{#each items}}`, `${HOME}`) are
//! what template-driven APIs legitimately carry and do not fire.

use super::{
    text::{around, find_ci, is_ident, needle_masks, ByteSet},
    Candidate,
};
use crate::detect::{finding::Finding, rules};

/// Longest delimited expression inspected.
const MAX_INNER: usize = 512;

/// Template globals that give access to application internals.
const GLOBALS: &[&[u8]] = &[
    b"config",
    b"self",
    b"request",
    b"settings",
    b"lipsum",
    b"cycler",
    b"joiner",
    b"namespace",
    b"_self",
    b"url_for",
    b"get_flashed_messages",
    b"application",
    b"session",
];

pub fn check(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    let value = c.decoded;
    let b = value.as_bytes();
    // From the value's byte summary: no walk over a value without them.
    const TRIGGERS: u128 = super::text::needle_mask(b"{<#");
    if !c.bytes.has_any_mask(TRIGGERS) {
        return;
    }
    let found = delimited(b).or_else(|| directive(b, &c.bytes));
    if let Some(p) = found {
        out.push(Finding::new(
            &rules::SSTI_EXPRESSION,
            c.input.location(),
            around(value, p),
        ));
    }
}

/// `{{…}}`, `${…}`, `#{…}`, `*{…}`, `{%…%}` and `<%…%>` holding an expression.
fn delimited(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < b.len() {
        let (open, close): (&[u8], &[u8]) = match (b[i], b[i + 1]) {
            (b'{', b'{') => (b"{{", b"}}"),
            (b'$' | b'#' | b'*', b'{') => (&b[i..i + 2], b"}"),
            (b'{', b'%') => (b"{%", b"%}"),
            (b'<', b'%') => (b"<%", b"%>"),
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i + open.len();
        let window = &b[start..b.len().min(start + MAX_INNER)];
        let inner = match find(window, close) {
            Some(end) => &window[..end],
            // Unclosed: a statement tag (`{% if`, `<%=`) still counts, expressions need both.
            None => window,
        };
        let closed = find(window, close).is_some();
        let hit = match open {
            b"{%" => statement(inner),
            // `<%= name %>` is a placeholder like `{{name}}`; scriptlets `<% … %>` are code.
            b"<%" => match inner.strip_prefix(b"=") {
                Some(expr) => closed && expression(expr),
                None => closed && !inner.trim_ascii().is_empty(),
            },
            _ => closed && expression(inner),
        };
        if hit {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether a placeholder's content is an expression rather than a (dotted) name.
fn expression(inner: &[u8]) -> bool {
    let t = inner.trim_ascii();
    if t.is_empty() {
        return false;
    }
    // Log4j-style lookups (`${jndi:…}`, `${env:X}`) belong to code injection.
    if t.iter().take_while(|x| is_ident(**x)).count() > 0
        && t.get(t.iter().take_while(|x| is_ident(**x)).count()) == Some(&b':')
    {
        return false;
    }
    if t.windows(2).any(|w| w == b"__") || t.contains(&b'(') {
        return true;
    }
    if t.windows(2).any(|w| w == b"['" || w == b"[\"") {
        return true;
    }
    if arithmetic(t) {
        return true;
    }
    let head_len = t.iter().take_while(|x| is_ident(**x)).count();
    let head = &t[..head_len];
    GLOBALS.iter().any(|g| head.eq_ignore_ascii_case(g))
        && t.get(head_len)
            .is_none_or(|x| matches!(x, b'.' | b'[' | b'|' | b' ' | b'}'))
}

/// `7*7`, `7 + '7'`: a number, an operator and another operand.
fn arithmetic(t: &[u8]) -> bool {
    for (k, &op) in t.iter().enumerate() {
        if !matches!(op, b'*' | b'+' | b'-' | b'/' | b'%') || k == 0 {
            continue;
        }
        let left = t[..k].trim_ascii_end();
        let right = t[k + 1..].trim_ascii_start();
        let operand =
            |x: Option<&u8>| x.is_some_and(|c| c.is_ascii_digit() || matches!(c, b'\'' | b'"'));
        if operand(left.last()) && operand(right.first()) {
            // Dates and ranges (`2024-01-02`, `10/20`) are names, not maths, when
            // nothing but digits and that one separator appear.
            let only_digits = t
                .iter()
                .all(|c| c.is_ascii_digit() || *c == op || c.is_ascii_whitespace());
            if !only_digits || op == b'*' {
                return true;
            }
        }
    }
    false
}

/// `{% if … %}`, `{% for … %}`: Jinja/Twig/Django statements.
fn statement(inner: &[u8]) -> bool {
    const KEYWORDS: &[&[u8]] = &[
        b"if", b"for", b"set", b"import", b"include", b"extends", b"macro", b"call", b"print",
        b"with", b"block", b"from", b"filter", b"do", b"raw", b"debug",
    ];
    let t = inner.trim_ascii_start();
    let t = t.strip_prefix(b"-").unwrap_or(t).trim_ascii_start();
    let n = t.iter().take_while(|x| x.is_ascii_alphabetic()).count();
    KEYWORDS.iter().any(|k| t[..n].eq_ignore_ascii_case(k))
}

/// Freemarker and Velocity directives.
fn directive(b: &[u8], s: &ByteSet) -> Option<usize> {
    const MARKERS: &[&[u8]] = &[
        b"<#assign",
        b"<#if",
        b"<#list",
        b"<#include",
        b"<#import",
        b"<#macro",
        b"<#function",
        b"?new(",
        b"#set(",
        b"#set (",
        b"#foreach(",
        b"#evaluate(",
        b"#parse(",
        b"#include(",
        b"$class.inspect",
        b"#macro(",
    ];
    // Markers holding a byte the value lacks are not searched for.
    const MASKS: [u128; MARKERS.len()] = needle_masks(MARKERS);
    MARKERS
        .iter()
        .zip(&MASKS)
        .filter(|(_, mask)| s.has_mask(**mask))
        .find_map(|(m, _)| find_ci(b, m))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::detect::{
        inputs::{Input, Source},
        normalize,
    };
    use crate::detect::{Kind, Severity};

    fn fires(value: &str) -> bool {
        let input = Input {
            source: Source::Json,
            name: Cow::Borrowed("$.t"),
            value: Cow::Borrowed(value),
        };
        let decoded = normalize::decode(value);
        let c = Candidate::new(&input, &decoded);
        let mut out = Vec::new();
        check(&c, &mut out);
        if let Some(f) = out.first() {
            assert_eq!(f.kind, Kind::Ssti);
            assert_eq!(f.rule_id, "ssti.expression");
            assert_eq!(f.severity, Severity::High);
            assert_eq!(f.location, "body:$.t");
        }
        !out.is_empty()
    }

    #[test]
    fn expressions_fire() {
        for v in [
            "{{7*7}}",
            "{{ 7 * '7' }}",
            "${7*7}",
            "#{7*7}",
            "*{7*7}",
            "<%= 7*7 %>",
            "{{config}}",
            "{{ config.items() }}",
            "{{''.__class__.__mro__[1].__subclasses__()}}",
            "{{self._TemplateReference__context}}",
            "{{request['application']}}",
            "{% if True %}x{% endif %}",
            "<#assign ex=\"freemarker.template.utility.Execute\"?new()>",
            "#set($x = 1)",
            "${T(java.lang.Runtime).getRuntime().exec('id')}",
            "hello %7B%7B7*7%7D%7D",
        ] {
            assert!(fires(v), "{v}");
        }
    }

    #[test]
    fn placeholders_do_not() {
        for v in [
            "{{user_name}}",
            "Hi {{ user.first_name }}, your order {{order.id}} shipped",
            "{{#each items}}{{name}}{{/each}}",
            "${HOME}/bin",
            "${jndi:ldap://x/a}",
            "price: $5",
            "100%",
            "{{ 2024-01-02 }}",
            "#{id}",
            "a {b} c",
            "email me at a@b.com",
            "1.2.3",
            "<b>bold</b>",
            "<%=title%>",
        ] {
            assert!(!fires(v), "{v}");
        }
    }
}
