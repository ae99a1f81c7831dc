//! Abuse: scanner user agents, 404 bursts, sequential object-id probing, request-rate spikes.

use serde::Deserialize;

use super::{
    config::Invalid,
    finding::Finding,
    request::{Context, Request},
};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AbuseConfig {
    /// Run this detector (default true).
    pub enabled: bool,
}

impl Default for AbuseConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl AbuseConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

pub struct AbuseDetector {}

impl AbuseDetector {
    pub fn new(_config: &AbuseConfig) -> Result<Self, Invalid> {
        Ok(Self {})
    }

    pub fn inspect(&mut self, _req: &Request<'_>, _ctx: &Context<'_>, _out: &mut Vec<Finding>) {}
}
