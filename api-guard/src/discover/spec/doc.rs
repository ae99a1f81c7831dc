//! Reading a JSON or YAML document into a `serde_json::Value` under a size budget.
//!
//! The budget is charged per node and per string byte while deserialising, so YAML alias
//! expansion (`billion laughs`) and documents that are small on disk but huge in memory
//! are refused as soon as they pass it instead of after allocating everything. Nesting is
//! bounded by the parsers themselves (both stop at 128 levels).

use std::{cell::Cell, fmt};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Estimated bytes per node (a `Value` plus map or vector overhead).
const NODE_COST: usize = 64;

pub(super) struct Budget {
    left: Cell<usize>,
}

impl Budget {
    pub fn new(bytes: usize) -> Self {
        Self {
            left: Cell::new(bytes),
        }
    }

    fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        match self.left.get().checked_sub(NODE_COST.saturating_add(bytes)) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(E::custom(
                "document too large in memory (aliases or too many values)",
            )),
        }
    }
}

/// Deserialises one value, charging `Budget`.
pub(super) struct Seed<'b>(pub &'b Budget);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON or YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.0.charge(0)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.0.charge(0)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.0.charge(0)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.0.charge(0)?;
        // NaN and infinities (YAML `.nan`, `.inf`) have no JSON form.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.charge(v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.0.charge(v.len())?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.0.charge(0)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.0.charge(0)?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Seed(self.0))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.0.charge(0)?;
        let mut out = Map::new();
        while let Some(k) = map.next_key_seed(Seed(self.0))? {
            // YAML keys may be numbers or booleans (`200:` under `responses`).
            let key = match k {
                Value::String(s) => s,
                Value::Null => "null".to_owned(),
                Value::Bool(_) | Value::Number(_) => k.to_string(),
                Value::Array(_) | Value::Object(_) => {
                    return Err(de::Error::custom("a map key is not a scalar"))
                }
            };
            let v = map.next_value_seed(Seed(self.0))?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// JSON when the first non-space byte is `{`, YAML otherwise.
pub(super) fn read(bytes: &[u8], budget: usize) -> Result<Value, String> {
    let budget = Budget::new(budget);
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let v = Seed(&budget)
            .deserialize(&mut de)
            .map_err(|e| format!("invalid JSON: {e}"))?;
        de.end().map_err(|e| format!("invalid JSON: {e}"))?;
        Ok(v)
    } else {
        Seed(&budget)
            .deserialize(serde_norway::Deserializer::from_slice(bytes))
            .map_err(|e| format!("invalid YAML: {e}"))
    }
}
