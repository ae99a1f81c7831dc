//! Authentication behaviour: missing credentials where they are usual, keys shared across clients, bursts of 401/403.

use serde::Deserialize;

use super::{
    config::Invalid,
    finding::Finding,
    request::{Context, Request},
};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Run this detector (default true).
    pub enabled: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl AuthConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

pub struct AuthDetector {}

impl AuthDetector {
    pub fn new(_config: &AuthConfig) -> Result<Self, Invalid> {
        Ok(Self {})
    }

    pub fn inspect(&mut self, _req: &Request<'_>, _ctx: &Context<'_>, _out: &mut Vec<Finding>) {}
}
