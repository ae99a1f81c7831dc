//! LDAP filter injection: a value pasted into a search filter (`(uid=VALUE)`) that closes the
//! component and opens another: `admin)(|(uid=*`, `x)(&)`, `*)!(sn=*`, `val)&(cn=admin`. The
//! shape is `)`, optionally one of the filter operators `&`, `|`, `!`, then `(` followed by an
//! operator or an attribute comparison (`attr=`, `attr~=`, `attr>=`, `attr<=`,
//! `attr:rule:=`). A value that is itself a whole filter (starts with `(`) is a filter, not an
//! escape from one; `f(x)(y)` or `})()` in code has no comparison after the `(`.

use super::{text::around, Candidate};
use crate::detect::{finding::Finding, rules};

pub fn check(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    let s = &c.bytes;
    if !(s.has(b')') && s.has(b'(')) {
        return;
    }
    let b = c.decoded.as_bytes();
    if b.trim_ascii_start().first() == Some(&b'(') {
        return;
    }
    if let Some(p) = filter_escape(b) {
        out.push(Finding::new(
            &rules::LDAP_FILTER_INJECTION,
            c.input.location(),
            around(c.decoded, p),
        ));
    }
}

fn filter_escape(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(off) = b[from..].iter().position(|&x| x == b')') {
        let p = from + off;
        from = p + 1;
        let mut rest = b[p + 1..].trim_ascii_start();
        if let Some((&op, r)) = rest.split_first() {
            if matches!(op, b'&' | b'|' | b'!') {
                rest = r.trim_ascii_start();
            }
        }
        let Some(inner) = rest.strip_prefix(b"(") else {
            continue;
        };
        if opens_component(inner.trim_ascii_start()) {
            return Some(p);
        }
    }
    None
}

/// Whether a filter component starts here: an operator (`&`, `|`, `!`), or an attribute
/// description followed by a comparison.
fn opens_component(t: &[u8]) -> bool {
    match t.first() {
        // An operator opens a component list (`(&(`), is a whole filter (`(&)`), or ends a
        // value cut short for the application's own suffix (`admin)(|`); "(!2109)" in prose
        // is a reference.
        Some(b'&' | b'|' | b'!') => {
            return matches!(t[1..].trim_ascii_start().first(), None | Some(b'(' | b')'));
        }
        Some(x) if x.is_ascii_alphabetic() => {}
        _ => return false,
    }
    let name = t
        .iter()
        .take(64)
        .take_while(|x| x.is_ascii_alphanumeric() || matches!(x, b'-' | b';' | b'.'))
        .count();
    let mut rest = &t[name..];
    // Extensible match: `attr:1.2.840.113556.1.4.803:=8192`, `attr:dn:=x`.
    if rest.first() == Some(&b':') {
        let ext = rest
            .iter()
            .take(64)
            .take_while(|x| x.is_ascii_alphanumeric() || matches!(x, b':' | b'.' | b'-'))
            .count();
        rest = &rest[ext..];
        return rest.first() == Some(&b'=') && ext > 0;
    }
    let rest = rest.trim_ascii_start();
    rest.first() == Some(&b'=')
        || [&b"~="[..], b">=", b"<="]
            .iter()
            .any(|op| rest.starts_with(op))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{injection::run_check, inputs::Source};

    fn flagged(v: &str) -> bool {
        !run_check(check, Source::Form, "foo", v).is_empty()
    }

    #[test]
    fn filter_escapes() {
        for v in [
            "bar)(&)",
            "printer)(uid=*)",
            "void)(objectClass=users))(&(objectClass=void)",
            "eb9adbd87d)!(sn=*",
            "*)!(sn=*",
            "*)(uid=*))(|(uid=*",
            "aaa*aaa)(cn>=bob)",
            "value)(gidNumber<=100",
            "john)(sn~=smith",
            "admin)(|",
            "val)&(cn=admin",
            "test) ( & ",
            "test)\t(\t|",
            "x)(userAccountControl:1.2.840.113556.1.4.803:=2)",
        ] {
            assert!(flagged(v), "{v}");
        }
    }

    #[test]
    fn filters_formulas_and_code() {
        for v in [
            "(&(objectCategory=computer)(userAccountControl:1.2.840.113556.1.4.803:=8192))",
            "(objectSID=S-1-5-21-1111)",
            "(a+b)*c",
            "(1+2)+(3+4)",
            "foo|bar",
            "(function(){ run(); })()",
            "f(x)(y)",
            "see (above) (below)",
            "call(a)(b, c)",
            "Hello (world)!",
            "Fix a crash on kqueue-based systems (BSD) (!1221)",
            "see (a) (& b)",
        ] {
            assert!(!flagged(v), "{v}");
        }
    }
}
