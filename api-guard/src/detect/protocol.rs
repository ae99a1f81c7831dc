//! HTTP framing anomalies: smuggling patterns, invalid or oversized headers and bodies.

use serde::Deserialize;

use super::{config::Invalid, finding::Finding, request::Request};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtocolConfig {
    /// Run this detector (default true).
    pub enabled: bool,
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl ProtocolConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

pub struct ProtocolDetector {}

impl ProtocolDetector {
    pub fn new(_config: &ProtocolConfig) -> Result<Self, Invalid> {
        Ok(Self {})
    }

    /// Checks the request's framing (stateless).
    pub fn inspect_request(&self, _req: &Request<'_>, _out: &mut Vec<Finding>) {}
}
