//! The detection engine: runs every enabled detector over a request and returns what they
//! found. Single-threaded and owned by its caller; the stateful detectors keep bounded state.

use super::{
    abuse::AbuseDetector,
    auth::AuthDetector,
    config::{DetectConfig, Invalid},
    finding::Finding,
    injection::InjectionDetector,
    inputs::{InputLimits, Inputs},
    jwt::JwtDetector,
    protocol::ProtocolDetector,
    request::{Context, Request},
};
use crate::identity::{ClientIdentity, Identifier};

/// The outcome for one request.
#[derive(Debug)]
pub struct Verdict {
    /// Who sent it (address, hashed credential), as the detectors saw it.
    pub client: ClientIdentity,
    pub findings: Vec<Finding>,
    /// Values the input limits left uninspected.
    pub inputs_skipped: usize,
}

pub struct Engine {
    identifier: Identifier,
    limits: InputLimits,
    injection: Option<InjectionDetector>,
    protocol: Option<ProtocolDetector>,
    jwt: Option<JwtDetector>,
    auth: Option<AuthDetector>,
    abuse: Option<AbuseDetector>,
}

impl Engine {
    pub fn new(config: &DetectConfig, identifier: Identifier) -> Result<Self, Invalid> {
        config.validate()?;
        let on = |enabled: bool| config.enabled && enabled;
        Ok(Self {
            identifier,
            limits: config.limits.clone(),
            injection: on(config.injection.enabled)
                .then(|| InjectionDetector::new(&config.injection))
                .transpose()?,
            protocol: on(config.protocol.enabled)
                .then(|| ProtocolDetector::new(&config.protocol))
                .transpose()?,
            jwt: on(config.jwt.enabled)
                .then(|| JwtDetector::new(&config.jwt))
                .transpose()?,
            auth: on(config.auth.enabled)
                .then(|| AuthDetector::new(&config.auth))
                .transpose()?,
            abuse: on(config.abuse.enabled)
                .then(|| AbuseDetector::new(&config.abuse))
                .transpose()?,
        })
    }

    /// Runs the detectors over `req`, seen at monotonic time `now_ns`.
    pub fn inspect(&mut self, req: &Request<'_>, now_ns: u64) -> Verdict {
        let client = self.identifier.identify(req.peer, req.headers, req.query);
        let ctx = Context {
            now_ns,
            client: &client,
        };
        let mut findings = Vec::new();
        let mut inputs_skipped = 0;
        if let Some(d) = &self.protocol {
            d.inspect_request(req, &mut findings);
        }
        if let Some(d) = &mut self.injection {
            let inputs = Inputs::extract(req, &self.limits);
            inputs_skipped = inputs.skipped;
            d.inspect(&inputs, &mut findings);
        }
        if let Some(d) = &mut self.jwt {
            d.inspect(req, &ctx, &mut findings);
        }
        if let Some(d) = &mut self.auth {
            d.inspect(req, &ctx, &mut findings);
        }
        if let Some(d) = &mut self.abuse {
            d.inspect(req, &ctx, &mut findings);
        }
        Verdict {
            client,
            findings,
            inputs_skipped,
        }
    }
}

// The daemon runs the engine inside a tokio task, which may move between threads.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Engine>();
};
