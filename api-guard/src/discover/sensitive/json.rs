//! Sensitive classes in a JSON body, read in one streaming pass of the shared tokenizer
//! ([`crate::json`]) without building a document tree: every string value is classified,
//! and a member whose *name* implies a class (`password`, `api_key`) counts that class when
//! its value is filled and did not already show it by its shape. A name repeated in one
//! object counts each time (what was sent, not what a parser would keep). What counts as a
//! document is exactly what serde_json accepts (strict strings and numbers, at most
//! [`MAX_DEPTH`] open containers), so the figures do not depend on the reader.

use super::{classify, classify_name, ClassCounts, DataClass};
use crate::json::{Dialect, Number, Token, Tokenizer};

/// Containers open at once: serde_json's recursion limit (128) less the one it refuses.
const MAX_DEPTH: usize = 127;

/// Adds the classes in the JSON document `body` to `counts`. `false` (and nothing added)
/// when `body` is not one complete JSON document.
pub fn classify_json(body: &[u8], counts: &mut ClassCounts) -> bool {
    let mut w = Walk {
        tok: Tokenizer::new(body, Dialect::Strict, MAX_DEPTH),
        found: ClassCounts::default(),
    };
    let ok = w.next_value(None).is_some() && matches!(w.tok.next(), Ok(None));
    if ok {
        counts.merge(&w.found);
    }
    ok
}

/// What a value was, for the member rule.
enum Leaf {
    /// A string: whether it is non-empty, and whether it showed the class its member's
    /// name implies (kept small: a leaf is returned at every value).
    Str { filled: bool, showed: bool },
    /// `null`, an array or an object: not a filled value.
    Empty,
    /// A number or a boolean: filled, no classes of its own.
    Scalar,
}

struct Walk<'a> {
    tok: Tokenizer<'a>,
    found: ClassCounts,
}

impl<'a> Walk<'a> {
    /// The next value, of a member whose name implies `named`; `None` when the document
    /// is not valid JSON. Recursion is bounded by `MAX_DEPTH`.
    #[inline(always)]
    fn next_value(&mut self, named: Option<DataClass>) -> Option<Leaf> {
        let first = self.tok.next().ok()??.token;
        self.value(first, named)
    }

    fn value(&mut self, first: Token<'a>, named: Option<DataClass>) -> Option<Leaf> {
        Some(match first {
            Token::String(s) => {
                let s = s.unescape_strict()?;
                let mut own = ClassCounts::default();
                classify(&s, &mut own);
                self.found.merge(&own);
                Leaf::Str {
                    filled: !s.is_empty(),
                    showed: named.is_some_and(|c| own.get(c) > 0),
                }
            }
            Token::Number(n) if in_f64_range(n) => Leaf::Scalar,
            Token::Bool(_) => Leaf::Scalar,
            Token::Null => Leaf::Empty,
            Token::ArrayStart => loop {
                match self.tok.next().ok()??.token {
                    Token::ArrayEnd => break Leaf::Empty,
                    first => self.value(first, None)?,
                };
            },
            Token::ObjectStart => loop {
                let name = match self.tok.next().ok()??.token {
                    Token::Key(k) => k.unescape_strict()?,
                    Token::ObjectEnd => break Leaf::Empty,
                    _ => return None,
                };
                let class = classify_name(&name);
                let value = self.next_value(class)?;
                let Some(class) = class else {
                    continue;
                };
                let counted = match value {
                    Leaf::Str { filled, showed } => filled && !showed,
                    Leaf::Scalar => true,
                    Leaf::Empty => false,
                };
                if counted {
                    self.found.add(class, 1);
                }
            },
            _ => return None,
        })
    }
}

/// Whether serde_json reads the number as finite (it refuses e.g. `1e400`). Only numbers
/// that could be out of range are handed to it: at most 200 bytes and an exponent of at
/// most two digits stays below 1e300.
fn in_f64_range(n: Number<'_>) -> bool {
    let exponent_digits = n
        .raw
        .iter()
        .rposition(|b| matches!(b, b'e' | b'E'))
        .map_or(0, |e| {
            n.raw[e + 1..].iter().filter(|b| b.is_ascii_digit()).count()
        });
    if n.raw.len() <= 200 && exponent_digits <= 2 {
        return true;
    }
    serde_json::from_slice::<f64>(n.raw).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The previous implementation: a `serde_json::Value` tree walked without recursion.
    fn reference(body: &[u8]) -> Option<ClassCounts> {
        use serde_json::Value;
        let v: Value = serde_json::from_slice(body).ok()?;
        let mut counts = ClassCounts::default();
        let mut stack = vec![&v];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) => {
                    classify(s, &mut counts);
                }
                Value::Array(a) => stack.extend(a.iter()),
                Value::Object(m) => {
                    for (k, v) in m {
                        let filled = match v {
                            Value::Null | Value::Array(_) | Value::Object(_) => false,
                            Value::String(s) => !s.is_empty(),
                            _ => true,
                        };
                        if let Some(class) = classify_name(k).filter(|_| filled) {
                            let mut own = ClassCounts::default();
                            if let Value::String(s) = v {
                                classify(s, &mut own);
                            }
                            if own.get(class) == 0 {
                                counts.add(class, 1);
                            }
                        }
                        stack.push(v);
                    }
                }
                _ => {}
            }
        }
        Some(counts)
    }

    #[test]
    fn streaming_counts_what_the_tree_walk_counted() {
        let values = [
            r#""alice@example.com""#,
            r#""4111 1111 1111 1111""#,
            r#""hunter2""#,
            r#""""#,
            r#""AKIAIOSFODNN7EXAMPLE""#,
            r#""\u0061lice@example.com""#,
            "12",
            "true",
            "null",
            "[]",
            "{}",
            r#""+1 202-555-0143""#,
        ];
        let names = ["password", "api_key", "note", "email", "X-Api-Key", "pass"];
        let mut rng = crate::testutil::Rng(0xfeed_beef);
        let mut found = 0;
        for _ in 0..5000 {
            // A random document: objects and arrays nested up to 4 deep.
            fn doc(rng: &mut crate::testutil::Rng, depth: u32, v: &[&str], n: &[&str]) -> String {
                match (depth, rng.below(3)) {
                    (0, _) | (_, 0) => v[rng.below(v.len() as u64) as usize].to_string(),
                    (_, 1) => {
                        let items: Vec<String> = (0..rng.below(4))
                            .map(|_| doc(rng, depth - 1, v, n))
                            .collect();
                        format!("[{}]", items.join(","))
                    }
                    _ => {
                        // Distinct names: the tree keeps only the last of duplicates,
                        // the stream counts each (what was sent).
                        let first = rng.below(n.len() as u64) as usize;
                        let members: Vec<String> = (0..rng.below(4) as usize)
                            .map(|j| {
                                let k = n[(first + j) % n.len()];
                                format!("{k:?}:{}", doc(rng, depth - 1, v, n))
                            })
                            .collect();
                        format!("{{{}}}", members.join(","))
                    }
                }
            }
            let text = doc(&mut rng, 4, &values, &names);
            let mut got = ClassCounts::default();
            let ok = classify_json(text.as_bytes(), &mut got);
            let want = reference(text.as_bytes());
            assert_eq!(ok, want.is_some(), "{text}");
            assert_eq!(got, want.unwrap_or_default(), "{text}");
            found += got.iter().map(|(_, n)| n).sum::<u64>();
        }
        assert!(found > 5000, "{found}");
    }

    /// A document is what serde_json (the reader this replaced) takes for one, on random,
    /// cut and corrupted bodies and at the edges of its limits, and the counts are the tree
    /// walk's when the names are distinct.
    #[test]
    fn accepts_exactly_what_serde_json_accepts() {
        let mut rng = crate::testutil::Rng(0x0dd_ba11);
        let mut ok = 0;
        for _ in 0..20_000 {
            let body = crate::json::tests::random_body(&mut rng);
            let mut got = ClassCounts::default();
            let accepted = classify_json(&body, &mut got);
            let theirs = serde_json::from_slice::<serde_json::Value>(&body).is_ok();
            assert_eq!(accepted, theirs, "{}", String::from_utf8_lossy(&body));
            ok += usize::from(accepted);
        }
        assert!(ok > 2000, "{ok}");
        let nine = "9".repeat(400);
        for body in [
            "1e308".to_owned(),
            "1e309".to_owned(),
            "-1e309".to_owned(),
            "1e-99999".to_owned(),
            "0e99999".to_owned(),
            "1.7976931348623157e308".to_owned(),
            "1.7976931348623159e308".to_owned(),
            nine.clone(),
            format!("0.{nine}"),
            format!("{nine}e-100"),
            format!("[{}]", "[".repeat(126) + &"]".repeat(126)),
            format!("[{}]", "[".repeat(127) + &"]".repeat(127)),
            "\"\\ud800\"".to_owned(),
            "\"a\u{1}\"".to_owned(),
        ] {
            let theirs = serde_json::from_str::<serde_json::Value>(&body).is_ok();
            let mut got = ClassCounts::default();
            assert_eq!(classify_json(body.as_bytes(), &mut got), theirs, "{body}");
        }
    }

    #[test]
    fn broken_documents_add_nothing() {
        let mut counts = ClassCounts::default();
        for bad in [
            &br#"{"email":"alice@example.com""#[..],
            br#"{"a":1} trailing"#,
            br#"["alice@example.com",]"#,
            b"",
        ] {
            assert!(!classify_json(bad, &mut counts));
        }
        assert!(counts.is_empty());
        // serde_json's nesting limit holds: no stack overflow on hostile depth.
        let deep = "[".repeat(100_000);
        assert!(!classify_json(deep.as_bytes(), &mut counts));
    }
}
