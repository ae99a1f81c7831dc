//! Sensitive classes in a JSON body, read in one streaming pass (serde_json's own parser,
//! with its nesting limit) without building a document tree: every string value is
//! classified, and a member whose *name* implies a class (`password`, `api_key`) counts that
//! class when its value is filled and did not already show it by its shape. A name repeated
//! in one object counts each time (what was sent, not what a parser would keep).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{classify, classify_name, ClassCounts, DataClass};

/// Adds the classes in the JSON document `body` to `counts`. `false` (and nothing added)
/// when `body` is not one complete JSON document.
pub fn classify_json(body: &[u8], counts: &mut ClassCounts) -> bool {
    let mut found = ClassCounts::default();
    let mut de = serde_json::Deserializer::from_slice(body);
    let ok = Walk(&mut found).deserialize(&mut de).is_ok() && de.end().is_ok();
    if ok {
        counts.merge(&found);
    }
    ok
}

/// What a value was, for the member rule.
enum Leaf {
    /// A string, with whether it is non-empty and the classes it showed.
    Str(bool, ClassCounts),
    /// `null`, an array or an object: not a filled value.
    Empty,
    /// A number or a boolean: filled, no classes of its own.
    Scalar,
}

struct Walk<'c>(&'c mut ClassCounts);

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Leaf;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Leaf, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Leaf;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Leaf, E> {
        let mut own = ClassCounts::default();
        classify(s, &mut own);
        self.0.merge(&own);
        Ok(Leaf::Str(!s.is_empty(), own))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Leaf, E> {
        Ok(Leaf::Scalar)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Leaf, E> {
        Ok(Leaf::Scalar)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Leaf, E> {
        Ok(Leaf::Scalar)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Leaf, E> {
        Ok(Leaf::Scalar)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Leaf, E> {
        Ok(Leaf::Empty)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Leaf, A::Error> {
        while seq.next_element_seed(Walk(&mut *self.0))?.is_some() {}
        Ok(Leaf::Empty)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Leaf, A::Error> {
        while let Some(named) = map.next_key_seed(Name)? {
            let value = map.next_value_seed(Walk(&mut *self.0))?;
            let Some(class) = named else {
                continue;
            };
            let counted = match value {
                Leaf::Str(filled, own) => filled && own.get(class) == 0,
                Leaf::Scalar => true,
                Leaf::Empty => false,
            };
            if counted {
                self.0.add(class, 1);
            }
        }
        Ok(Leaf::Empty)
    }
}

/// A member name, read as the class it implies (no allocation for plain names).
struct Name;

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Option<DataClass>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Option<DataClass>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(classify_name(s))
    }
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
