//! What every configuration section's `validate()` returns: one error for a value out of
//! range, naming the field by its full path (`detect.jwt.leeway_secs`), so the agent can point
//! at the line of the file that holds it.

/// A configuration value that is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for `{field}`: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}
