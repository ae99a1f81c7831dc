//! The `[detect]` configuration section: one table per detector, each optional.

use serde::Deserialize;

use super::{
    abuse::AbuseConfig, auth::AuthConfig, encryption::EncryptionConfig, finding::Severity,
    injection::InjectionConfig, inputs::InputLimits, jwt::JwtConfig, llm_abuse::LlmAbuseConfig,
    llm_leak::LeakConfig, prompt::PromptConfig, protocol::ProtocolConfig,
    uninspected::UninspectedConfig,
};

pub use crate::config::{invalid, Invalid};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Run the detectors on server-side exchanges (default true).
    pub enabled: bool,
    /// Findings at or above this severity block the client at XDP (default: none, detection
    /// only). One of `info`, `low`, `medium`, `high`, `critical`.
    pub block_severity: Option<Severity>,
    /// How long such a block lasts, in seconds (default 600).
    pub block_secs: u64,
    /// Security events per client per second (default 20); the rest are counted in
    /// `apiguard_detection_events_suppressed_total` and in the client's next event.
    pub max_events_per_client: u32,
    /// Requests and exchanges waiting for the detection thread (default 4096: a pipelined
    /// burst of thousands of requests in one write arrives as one batch); when it is behind,
    /// further ones are counted in `apiguard_detect_exchanges_skipped_total`, not inspected.
    pub queue_capacity: usize,
    /// Where payloads are looked for, and how much of each.
    pub limits: InputLimits,
    /// Reporting what the limits or capture left unseen.
    pub uninspected: UninspectedConfig,
    pub injection: InjectionConfig,
    pub protocol: ProtocolConfig,
    pub jwt: JwtConfig,
    pub auth: AuthConfig,
    pub abuse: AbuseConfig,
    pub prompt_injection: PromptConfig,
    pub llm_key_abuse: LlmAbuseConfig,
    pub llm_data_leak: LeakConfig,
    /// Plaintext credentials and sensitive data across the network; weak TLS.
    pub encryption: EncryptionConfig,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            block_severity: None,
            block_secs: 600,
            max_events_per_client: 20,
            queue_capacity: 4096,
            limits: InputLimits::default(),
            uninspected: UninspectedConfig::default(),
            injection: InjectionConfig::default(),
            protocol: ProtocolConfig::default(),
            jwt: JwtConfig::default(),
            auth: AuthConfig::default(),
            abuse: AbuseConfig::default(),
            prompt_injection: PromptConfig::default(),
            llm_key_abuse: LlmAbuseConfig::default(),
            llm_data_leak: LeakConfig::default(),
            encryption: EncryptionConfig::default(),
        }
    }
}

impl DetectConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.block_secs == 0 {
            return Err(invalid("detect.block_secs", "must be at least 1"));
        }
        if self.max_events_per_client == 0 {
            return Err(invalid(
                "detect.max_events_per_client",
                "must be at least 1",
            ));
        }
        if self.queue_capacity == 0 || self.queue_capacity > 1 << 20 {
            return Err(invalid(
                "detect.queue_capacity",
                "must be between 1 and 1048576",
            ));
        }
        let l = &self.limits;
        for (name, value, max) in [
            ("max_values", l.max_values, 65_536),
            ("max_value_bytes", l.max_value_bytes, 1 << 20),
            ("max_body_bytes", l.max_body_bytes, 16 << 20),
            ("max_json_depth", l.max_json_depth, 128),
        ] {
            if value == 0 || value > max {
                return Err(invalid(
                    format!("detect.limits.{name}"),
                    format!("must be between 1 and {max}"),
                ));
            }
        }
        self.injection.validate()?;
        self.protocol.validate()?;
        self.jwt.validate()?;
        self.auth.validate()?;
        self.abuse.validate()?;
        self.prompt_injection.validate()?;
        self.llm_key_abuse.validate()?;
        self.llm_data_leak.validate()?;
        self.encryption.validate()?;
        Ok(())
    }
}
