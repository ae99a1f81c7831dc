//! JSON body schemas merged over many samples. Each body is read by the shared streaming
//! tokenizer ([`crate::json`], strict dialect) straight into a bounded per-sample shape (no
//! `serde_json::Value` document), and the shape is merged into the running schema only if
//! the body was well-formed to its end: a body cut short by capture limits would otherwise
//! make every field after the cut look optional. Recursion is bounded by `max_depth`;
//! deeper containers are skipped iteratively and described as `{}` (any), so hostile depth
//! costs no stack.
//!
//! Object keys that look like data (integers, uuids, dates, emails) are map keys, not field
//! names: their values merge into one `additionalProperties` schema and the keys are not
//! kept, which also keeps e.g. emails used as keys out of the inventory.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::value::{infer, json_string_format, ValueType};
use crate::json::{Dialect, Str, Token, Tokenizer};

/// Bounds on one schema. The defaults describe realistic API bodies in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SchemaLimits {
    /// Levels of nested containers described; deeper containers become `{}`. Default 8.
    pub max_depth: usize,
    /// Named properties kept per object; more are dropped and counted. Default 128.
    pub max_properties: usize,
    /// Schema nodes kept in total (each property, item and map-value schema is one).
    /// Default 1024.
    pub max_nodes: usize,
}

impl Default for SchemaLimits {
    fn default() -> Self {
        SchemaLimits {
            max_depth: 8,
            max_properties: 128,
            max_nodes: 1024,
        }
    }
}

/// Keys longer than this are dropped (and counted): no real field name is this long.
const MAX_KEY_LEN: usize = 128;

/// What observing one body did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    /// The body was one well-formed JSON value and was merged; otherwise the schema is
    /// unchanged.
    pub merged: bool,
    /// Containers described as `{}` for being nested deeper than `max_depth`.
    pub too_deep: usize,
    /// Property occurrences not recorded (too many properties or nodes, or too-long keys).
    pub dropped: u64,
}

const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
const INTEGER: u8 = 4;
const NUMBER: u8 = 8;
const STRING: u8 = 16;
const OBJECT: u8 = 32;
const ARRAY: u8 = 64;

/// The merged shape of the values seen at one position.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Node {
    /// Which JSON types were seen (bit set of the constants above).
    kinds: u8,
    /// Merged string format; `None` until a string is seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<ValueType>,
    /// A container here was beyond the depth limit (or out of node budget): any value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    any: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    object: Option<Box<Obj>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    items: Option<Box<Node>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Obj {
    /// Objects seen at this position.
    count: u64,
    properties: BTreeMap<String, Field>,
    /// The merged values of data-like keys (map entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dynamic: Option<Box<Node>>,
    /// Property occurrences not recorded.
    #[serde(default)]
    dropped: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Field {
    /// Objects at this position that had the field.
    present: u64,
    /// The object (by its `count`) that last counted this field, so a key repeated within
    /// one object counts once.
    #[serde(skip)]
    stamp: u64,
    schema: Node,
}

impl Node {
    fn size(&self) -> usize {
        let mut n = 1;
        if let Some(o) = &self.object {
            n += o
                .properties
                .values()
                .map(|f| f.schema.size())
                .sum::<usize>();
            n += o.dynamic.as_ref().map_or(0, |d| d.size());
        }
        n + self.items.as_ref().map_or(0, |i| i.size())
    }

    fn add_format(&mut self, f: ValueType) {
        self.kinds |= STRING;
        self.format = Some(self.format.map_or(f, |old| old.merge(f)));
    }
}

/// The merged schema of many JSON bodies (of one endpoint, direction and content type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchema {
    limits: SchemaLimits,
    /// Bodies merged.
    samples: u64,
    /// Bodies seen that were not well-formed JSON (or cut short), and so not merged.
    invalid: u64,
    /// Nodes in `root`, kept against `limits.max_nodes`.
    nodes: usize,
    root: Node,
}

impl Default for JsonSchema {
    fn default() -> Self {
        JsonSchema::new(SchemaLimits::default())
    }
}

impl JsonSchema {
    pub fn new(limits: SchemaLimits) -> Self {
        JsonSchema {
            limits,
            samples: 0,
            invalid: 0,
            nodes: 1,
            root: Node::default(),
        }
    }

    /// Bodies merged so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Bodies seen that were not merged for not being one well-formed JSON value.
    pub fn invalid(&self) -> u64 {
        self.invalid
    }

    /// Merges one body. Linear in `body.len()`; the schema stays within the limits.
    pub fn observe(&mut self, body: &[u8]) -> Observed {
        let mut p = Parser {
            tok: Tokenizer::new(body, Dialect::Strict, self.limits.max_depth),
            limits: self.limits,
            nodes: 1,
            too_deep: 0,
            dropped: 0,
        };
        let mut sample = Node::default();
        let ok = p.next_value(&mut sample).is_some() && matches!(p.tok.next(), Ok(None));
        let mut out = Observed {
            merged: ok,
            too_deep: p.too_deep,
            dropped: p.dropped,
        };
        if !ok {
            self.invalid = self.invalid.saturating_add(1);
            return out;
        }
        self.samples = self.samples.saturating_add(1);
        let mut budget = Budget {
            used: self.nodes,
            max: self.limits.max_nodes,
            max_properties: self.limits.max_properties,
            dropped: 0,
        };
        merge(&mut self.root, sample, &mut budget);
        self.nodes = budget.used;
        out.dropped = out.dropped.saturating_add(budget.dropped);
        out
    }

    /// Merges an already parsed value (re-serialised, then observed as a body).
    pub fn observe_value(&mut self, value: &Value) -> Observed {
        match serde_json::to_vec(value) {
            Ok(body) => self.observe(&body),
            Err(_) => Observed::default(),
        }
    }

    /// Folds in a schema of the same bodies observed elsewhere, within this one's limits.
    pub fn merge(&mut self, other: &JsonSchema) {
        if other.samples == 0 {
            self.invalid = self.invalid.saturating_add(other.invalid);
            return;
        }
        let mut budget = Budget {
            used: self.nodes,
            max: self.limits.max_nodes,
            max_properties: self.limits.max_properties,
            dropped: 0,
        };
        merge(&mut self.root, other.root.clone(), &mut budget);
        self.nodes = budget.used;
        self.samples = self.samples.saturating_add(other.samples);
        self.invalid = self.invalid.saturating_add(other.invalid);
    }

    /// An OpenAPI 3.1 (JSON Schema 2020-12) schema object. Extensions:
    /// `x-apiguard-samples` (root: bodies merged), `x-apiguard-seen` (each property: objects
    /// that had it), `x-apiguard-dropped-properties` (property occurrences not recorded),
    /// `x-apiguard-truncated` (`{}` standing for content beyond the bounds).
    pub fn to_openapi(&self) -> Value {
        let mut v = openapi(&self.root);
        if let Value::Object(m) = &mut v {
            m.insert("x-apiguard-samples".into(), self.samples.into());
        }
        v
    }
}

struct Budget {
    used: usize,
    max: usize,
    max_properties: usize,
    dropped: u64,
}

impl Budget {
    fn take(&mut self, n: usize) -> bool {
        let ok = self.used.saturating_add(n) <= self.max;
        if ok {
            self.used += n;
        }
        ok
    }
}

/// Merges `src` into `dst`; recursion depth is that of the (bounded) schemas.
fn merge(dst: &mut Node, src: Node, budget: &mut Budget) {
    dst.kinds |= src.kinds;
    dst.any |= src.any;
    if let Some(f) = src.format {
        dst.format = Some(dst.format.map_or(f, |old| old.merge(f)));
    }
    if let Some(so) = src.object {
        let so = *so;
        let d = dst.object.get_or_insert_with(Default::default);
        d.count = d.count.saturating_add(so.count);
        d.dropped = d.dropped.saturating_add(so.dropped);
        for (name, field) in so.properties {
            if let Some(df) = d.properties.get_mut(&name) {
                df.present = df.present.saturating_add(field.present);
                merge(&mut df.schema, field.schema, budget);
            } else if d.properties.len() < budget.max_properties && budget.take(field.schema.size())
            {
                d.properties.insert(name, field);
            } else {
                d.dropped = d.dropped.saturating_add(field.present);
                budget.dropped = budget.dropped.saturating_add(field.present);
            }
        }
        if let Some(sd) = so.dynamic {
            match &mut d.dynamic {
                Some(dd) => merge(dd, *sd, budget),
                None if budget.take(sd.size()) => d.dynamic = Some(sd),
                None => dst.any = true,
            }
        }
    }
    if let Some(si) = src.items {
        match &mut dst.items {
            Some(di) => merge(di, *si, budget),
            None if budget.take(si.size()) => dst.items = Some(si),
            None => dst.any = true,
        }
    }
}

struct Parser<'a> {
    tok: Tokenizer<'a>,
    limits: SchemaLimits,
    /// Nodes allocated in this sample.
    nodes: usize,
    too_deep: usize,
    dropped: u64,
}

impl<'a> Parser<'a> {
    /// The next event; `None` at an error.
    #[inline(always)]
    fn pull(&mut self) -> Option<Token<'a>> {
        self.tok.next().ok().flatten().map(|ev| ev.token)
    }

    fn alloc(&mut self) -> bool {
        let ok = self.nodes < self.limits.max_nodes;
        self.nodes += usize::from(ok);
        ok
    }

    /// Parses the value that starts with `first` into `node`; `None` when malformed or cut
    /// short. Recursion is bounded by the tokenizer's depth limit.
    fn value(&mut self, first: Token<'a>, node: &mut Node) -> Option<()> {
        match first {
            Token::TooDeep { object } => {
                node.kinds |= if object { OBJECT } else { ARRAY };
                node.any = true;
                self.too_deep += 1;
            }
            Token::ObjectStart => return self.object(node),
            Token::ArrayStart => return self.array(node),
            // Formatted from the raw bytes: no UTF-8 validation of every string value.
            Token::String(s) => node.add_format(json_string_format(&s)),
            Token::Bool(_) => node.kinds |= BOOLEAN,
            Token::Null => node.kinds |= NULL,
            Token::Number(n) => node.kinds |= if n.integer { INTEGER } else { NUMBER },
            Token::ObjectEnd | Token::ArrayEnd | Token::Key(_) => return None,
        }
        Some(())
    }

    /// Parses the next value into `node`.
    #[inline(always)]
    fn next_value(&mut self, node: &mut Node) -> Option<()> {
        let first = self.pull()?;
        self.value(first, node)
    }

    fn object(&mut self, node: &mut Node) -> Option<()> {
        node.kinds |= OBJECT;
        let obj = node.object.get_or_insert_with(Default::default);
        obj.count = obj.count.saturating_add(1);
        let stamp = obj.count;
        loop {
            match self.pull()? {
                Token::Key(key) => self.member(obj, key, stamp)?,
                Token::ObjectEnd => return Some(()),
                _ => return None,
            }
        }
    }

    fn member(&mut self, obj: &mut Obj, key: Str<'_>, stamp: u64) -> Option<()> {
        let name = match key.plain() {
            Some(k) if k.len() <= MAX_KEY_LEN => k,
            _ => return self.discard(obj),
        };
        if !name.is_empty() && infer(name) != ValueType::String {
            if obj.dynamic.is_none() {
                if !self.alloc() {
                    return self.discard(obj);
                }
                obj.dynamic = Some(Box::default());
            }
            let d = obj.dynamic.as_deref_mut()?;
            return self.next_value(d);
        }
        if !obj.properties.contains_key(name) {
            if obj.properties.len() >= self.limits.max_properties || !self.alloc() {
                return self.discard(obj);
            }
            obj.properties.insert(name.to_owned(), Field::default());
        }
        let field = obj.properties.get_mut(name)?;
        if field.stamp != stamp {
            field.stamp = stamp;
            field.present = field.present.saturating_add(1);
        }
        self.next_value(&mut field.schema)
    }

    /// Parses (validates) a member value that is not recorded.
    fn discard(&mut self, obj: &mut Obj) -> Option<()> {
        obj.dropped = obj.dropped.saturating_add(1);
        self.dropped = self.dropped.saturating_add(1);
        let nodes = self.nodes;
        let mut scratch = Node::default();
        let r = self.next_value(&mut scratch);
        self.nodes = nodes;
        r
    }

    fn array(&mut self, node: &mut Node) -> Option<()> {
        node.kinds |= ARRAY;
        loop {
            let first = self.pull()?;
            if first == Token::ArrayEnd {
                return Some(());
            }
            if node.items.is_none() {
                if self.alloc() {
                    node.items = Some(Box::default());
                } else {
                    node.any = true;
                }
            }
            match node.items.as_deref_mut() {
                Some(items) => self.value(first, items)?,
                None => {
                    let nodes = self.nodes;
                    self.value(first, &mut Node::default())?;
                    self.nodes = nodes;
                }
            }
        }
    }
}

fn openapi(node: &Node) -> Value {
    let mut m = Map::new();
    if node.any {
        m.insert("x-apiguard-truncated".into(), true.into());
        return Value::Object(m);
    }
    let mut types: Vec<Value> = Vec::new();
    let k = node.kinds;
    for (bit, name) in [
        (OBJECT, "object"),
        (ARRAY, "array"),
        (STRING, "string"),
        (NUMBER, "number"),
        (BOOLEAN, "boolean"),
        (NULL, "null"),
    ] {
        if k & bit != 0 {
            types.push(name.into());
        }
        if bit == NUMBER && k & (NUMBER | INTEGER) == INTEGER {
            types.push("integer".into());
        }
    }
    match types.len() {
        0 => {}
        1 => {
            m.insert("type".into(), types.swap_remove(0));
        }
        _ => {
            m.insert("type".into(), Value::Array(types));
        }
    }
    if k & STRING != 0 {
        if let Some((_, Some(f))) = node.format.map(ValueType::openapi_type) {
            m.insert("format".into(), f.into());
        }
    }
    if let Some(o) = &node.object {
        if !o.properties.is_empty() {
            let mut props = Map::new();
            let mut required = Vec::new();
            for (name, f) in &o.properties {
                let mut s = openapi(&f.schema);
                if let Value::Object(sm) = &mut s {
                    sm.insert("x-apiguard-seen".into(), f.present.into());
                }
                props.insert(name.clone(), s);
                if f.present >= o.count {
                    required.push(Value::from(name.as_str()));
                }
            }
            m.insert("properties".into(), Value::Object(props));
            if !required.is_empty() {
                m.insert("required".into(), Value::Array(required));
            }
        }
        if let Some(d) = &o.dynamic {
            m.insert("additionalProperties".into(), openapi(d));
        }
        if o.dropped > 0 {
            m.insert("x-apiguard-dropped-properties".into(), o.dropped.into());
        }
    }
    if let Some(items) = &node.items {
        m.insert("items".into(), openapi(items));
    }
    if m.is_empty() {
        return json!({});
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(bodies: &[&str]) -> JsonSchema {
        let mut s = JsonSchema::default();
        for b in bodies {
            assert!(s.observe(b.as_bytes()).merged, "{b}");
        }
        s
    }

    #[test]
    fn exact_openapi_for_a_small_case() {
        let s = schema(&[
            r#"{"id": 1, "email": "a@example.com", "tags": ["x"], "note": null}"#,
            r#"{"id": 2.5, "email": "b@example.org", "tags": [], "note": "hi"}"#,
        ]);
        assert_eq!(
            s.to_openapi(),
            json!({
                "type": "object",
                "properties": {
                    "email": {"type": "string", "format": "email", "x-apiguard-seen": 2},
                    "id": {"type": "number", "x-apiguard-seen": 2},
                    "note": {"type": ["string", "null"], "x-apiguard-seen": 2},
                    "tags": {"type": "array", "items": {"type": "string"}, "x-apiguard-seen": 2},
                },
                "required": ["email", "id", "note", "tags"],
                "x-apiguard-samples": 2,
            })
        );
    }

    #[test]
    fn optional_fields_widening_and_nulls() {
        let s = schema(&[
            r#"{"a": 1, "b": "2024-01-31", "c": true}"#,
            r#"{"a": 2, "b": "2024-02-01T00:00:00Z"}"#,
            r#"{"a": 3, "b": null, "d": {"x": "550e8400-e29b-41d4-a716-446655440000"}}"#,
        ]);
        assert_eq!(
            s.to_openapi(),
            json!({
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "x-apiguard-seen": 3},
                    "b": {"type": ["string", "null"], "x-apiguard-seen": 3},
                    "c": {"type": "boolean", "x-apiguard-seen": 1},
                    "d": {
                        "type": "object",
                        "properties": {"x": {"type": "string", "format": "uuid", "x-apiguard-seen": 1}},
                        "required": ["x"],
                        "x-apiguard-seen": 1,
                    },
                },
                "required": ["a", "b"],
                "x-apiguard-samples": 3,
            })
        );
        // A body that is only null, then an object: nullable object.
        let s = schema(&["null", r#"{"k": 1}"#]);
        assert_eq!(s.to_openapi()["type"], json!(["object", "null"]));
        assert_eq!(s.to_openapi()["required"], json!(["k"]));
    }

    #[test]
    fn arrays_of_mixed_objects_and_scalars() {
        let s =
            schema(&[r#"[{"id": 1, "name": "x"}, {"id": 2}, {"id": 3, "extra": [1, "y", null]}]"#]);
        assert_eq!(
            s.to_openapi(),
            json!({
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "extra": {
                            "type": "array",
                            "items": {"type": ["string", "integer", "null"]},
                            "x-apiguard-seen": 1,
                        },
                        "id": {"type": "integer", "x-apiguard-seen": 3},
                        "name": {"type": "string", "x-apiguard-seen": 1},
                    },
                    "required": ["id"],
                },
                "x-apiguard-samples": 1,
            })
        );
        // Objects and strings at one position widen to a type list, never oneOf.
        let s = schema(&[r#"[{"a": 1}, "s", 1.5]"#]);
        assert_eq!(
            s.to_openapi()["items"]["type"],
            json!(["object", "string", "number"])
        );
    }

    #[test]
    fn repeated_keys_count_once_and_map_keys_are_not_fields() {
        let s = schema(&[r#"[{"a": 1, "a": 2}, {"b": 1}]"#]);
        let v = s.to_openapi();
        assert_eq!(v["items"]["properties"]["a"]["x-apiguard-seen"], 1);
        assert_eq!(v["items"]["required"], Value::Null);
        let s = schema(&[
            r#"{"alice@example.com": {"n": 1}, "550e8400-e29b-41d4-a716-446655440000": {"n": 2}, "17": {"n": 3}}"#,
        ]);
        let text = s.to_openapi().to_string();
        assert!(!text.contains("alice"), "{text}");
        assert_eq!(
            s.to_openapi(),
            json!({
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"n": {"type": "integer", "x-apiguard-seen": 3}},
                    "required": ["n"],
                },
                "x-apiguard-samples": 1,
            })
        );
    }

    #[test]
    fn strings_are_never_stored() {
        let s = schema(&[r#"{"secret": "hunter2-very-secret"}"#]);
        let text = serde_json::to_string(&s).unwrap() + &s.to_openapi().to_string();
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn invalid_and_cut_short_bodies_are_not_merged() {
        let mut s = JsonSchema::default();
        for bad in [
            "",
            "{",
            r#"{"a": 1"#,
            r#"{"a": 1,}"#,
            r#"{"a" 1}"#,
            "[1 2]",
            "01",
            "1.",
            "tru",
            r#""\x""#,
            r#""\u12""#,
            "{} x",
            "nul",
        ] {
            assert!(!s.observe(bad.as_bytes()).merged, "{bad}");
        }
        assert_eq!((s.samples(), s.invalid()), (0, 13));
        assert!(s.observe(br#" {"a": "\u00e9\n"} "#).merged);
        assert_eq!(s.to_openapi()["properties"]["a"]["type"], "string");
        // Split at every byte: only the whole body merges.
        let body = br#"{"a": [1, {"b": null}], "c": "2024-01-31"}"#;
        for cut in 0..body.len() {
            let mut t = JsonSchema::default();
            assert!(!t.observe(&body[..cut]).merged || cut == body.len());
        }
    }

    #[test]
    fn hostile_width_is_bounded() {
        let mut body = String::from("{");
        for i in 0..10_000 {
            body.push_str(&format!("\"k{i}\": {{\"x\": [1]}},"));
        }
        body.push_str("\"last\": 1}");
        let mut s = JsonSchema::default();
        let o = s.observe(body.as_bytes());
        assert!(o.merged);
        assert_eq!(o.dropped, 10_001 - 128);
        let v = s.to_openapi();
        assert_eq!(v["properties"].as_object().unwrap().len(), 128);
        assert_eq!(v["x-apiguard-dropped-properties"], 10_001 - 128);
        assert!(s.nodes <= SchemaLimits::default().max_nodes);
        // Many objects with different keys: the node budget holds across samples.
        let mut s = JsonSchema::new(SchemaLimits {
            max_nodes: 50,
            ..SchemaLimits::default()
        });
        for i in 0..200 {
            s.observe(format!(r#"{{"f{i}": {{"a": 1, "b": [2]}}}}"#).as_bytes());
        }
        assert_eq!(s.samples(), 200);
        assert!(s.nodes <= 50, "{}", s.nodes);
        let n = s.to_openapi()["properties"].as_object().unwrap().len();
        assert_eq!(n, 49 / 4);
        // A too-long key is dropped, not stored.
        let long = format!(r#"{{"{}": 1}}"#, "k".repeat(200));
        let o = JsonSchema::default().observe(long.as_bytes());
        assert_eq!((o.merged, o.dropped), (true, 1));
    }

    #[test]
    fn hostile_depth_is_bounded() {
        let deep = format!("{}1{}", "[".repeat(1000), "]".repeat(1000));
        let mut s = JsonSchema::default();
        let o = s.observe(deep.as_bytes());
        assert_eq!((o.merged, o.too_deep), (true, 1));
        let mut v = s.to_openapi();
        for _ in 0..8 {
            assert_eq!(v["type"], "array");
            v = v["items"].take();
        }
        assert_eq!(v, json!({"x-apiguard-truncated": true}));
        let deep_obj = format!("{}1{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000));
        let o = JsonSchema::default().observe(deep_obj.as_bytes());
        assert_eq!((o.merged, o.too_deep), (true, 1));
        let unbalanced = "[".repeat(100_000);
        assert!(!JsonSchema::default().observe(unbalanced.as_bytes()).merged);
    }

    #[test]
    fn merging_schemas_equals_observing_all() {
        let bodies = [r#"{"a": 1, "b": [1]}"#, r#"{"a": 1.5}"#, r#"{"c": null}"#];
        let all = schema(&bodies);
        let mut left = schema(&bodies[..1]);
        left.merge(&schema(&bodies[1..]));
        assert_eq!(left.to_openapi(), all.to_openapi());
        let back: JsonSchema = serde_json::from_str(&serde_json::to_string(&all).unwrap()).unwrap();
        assert_eq!(back.to_openapi(), all.to_openapi());
        let mut v = JsonSchema::default();
        v.observe_value(&json!({"a": 1, "b": [1]}));
        assert_eq!(v.to_openapi(), schema(&bodies[..1]).to_openapi());
    }

    /// Cost figure: `cargo test --release -p api-guard --lib schema::json::tests::cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn cost() {
        let mut body = String::from("[");
        while body.len() < 1000 {
            body.push_str(r#"{"id": 12, "email": "a@example.com", "at": "2024-01-31T10:00:00Z", "tags": ["x"]},"#);
        }
        body.push_str("{}]");
        let mut s = JsonSchema::default();
        let n = 100_000u32;
        let start = std::time::Instant::now();
        for _ in 0..n {
            assert!(s.observe(std::hint::black_box(body.as_bytes())).merged);
        }
        println!(
            "observe {} B JSON: {:?} per call",
            body.len(),
            start.elapsed() / n
        );
    }
}
