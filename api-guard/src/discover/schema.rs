//! Parameter value types (integer, number, boolean, uuid, date, email, string) and JSON body
//! schemas merged over many requests, with bounded depth, width and size.
//!
//! Discovery sees values, never a specification, so everything here is a *widening* merge:
//! each observation can only make a type wider (integer → number → string) or a field
//! optional, never the reverse, and the result never needs `oneOf`. Values themselves are
//! never kept: only their types, string formats and how often things were present.

mod json;
pub(crate) mod value;

pub use json::{JsonSchema, Observed, SchemaLimits};
pub use value::{infer, ValueType};

use serde::{Deserialize, Serialize};

/// What one query or path parameter of one endpoint looked like across requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamStats {
    /// The merged type of every value seen; `None` before the first.
    pub value_type: Option<ValueType>,
    /// Requests in which the parameter was present.
    pub seen: u64,
}

impl ParamStats {
    /// Records the parameter's (first) value in one request.
    pub fn observe(&mut self, value: &str) {
        self.seen = self.seen.saturating_add(1);
        self.observe_repeat(value);
    }

    /// Records a repeated value in the same request (`?tag=a&tag=b`): widens the type
    /// without counting the request twice.
    pub fn observe_repeat(&mut self, value: &str) {
        let t = infer(value);
        self.value_type = Some(self.value_type.map_or(t, |old| old.merge(t)));
    }

    /// Folds in the statistics of the same parameter from elsewhere (another snapshot or
    /// worker).
    pub fn merge(&mut self, other: &ParamStats) {
        self.seen = self.seen.saturating_add(other.seen);
        self.value_type = match (self.value_type, other.value_type) {
            (Some(a), Some(b)) => Some(a.merge(b)),
            (a, b) => a.or(b),
        };
    }

    /// Whether the parameter was in every one of the endpoint's `requests`.
    pub fn always_present(&self, requests: u64) -> bool {
        requests > 0 && self.seen >= requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_stats_merge_and_presence() {
        let mut p = ParamStats::default();
        assert_eq!(p.value_type, None);
        assert!(!p.always_present(0));
        p.observe("1");
        p.observe("20");
        assert_eq!(p.value_type, Some(ValueType::Integer));
        p.observe_repeat("2.5");
        assert_eq!(p.value_type, Some(ValueType::Number));
        assert_eq!(p.seen, 2);
        assert!(p.always_present(2));
        assert!(!p.always_present(3));

        let mut q = ParamStats::default();
        q.merge(&p);
        assert_eq!(q, p);
        let mut r = ParamStats::default();
        r.observe("true");
        q.merge(&r);
        assert_eq!(
            q,
            ParamStats {
                value_type: Some(ValueType::String),
                seen: 3
            }
        );
        assert_eq!(
            serde_json::to_value(&q).unwrap(),
            serde_json::json!({"value_type": "string", "seen": 3})
        );
    }
}
