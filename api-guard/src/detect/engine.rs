//! The detection engine: runs every enabled detector over a request and returns what they
//! found. Single-threaded and owned by its caller; the stateful detectors keep bounded state.
//! Who the client is comes from the caller (the agent identifies each exchange once, for
//! every consumer; offline callers use [`crate::identity::Identifier`] themselves).

use super::{
    abuse::AbuseDetector,
    auth::AuthDetector,
    config::{DetectConfig, Invalid},
    encryption::{Channel, EncryptionDetector, Response},
    fields::RequestFields,
    finding::Finding,
    injection::InjectionDetector,
    inputs::{InputLimits, Inputs},
    jwt::JwtDetector,
    llm_abuse::{LlmAbuseDetector, LlmUse},
    llm_leak::LeakDetector,
    prompt::PromptDetector,
    protocol::ProtocolDetector,
    request::{Context, Request},
    stream::Window,
    uninspected::{self, Uninspected, UninspectedConfig},
};
use crate::{
    http::HttpExchange,
    identity::{ClientIdentity, Identifier},
};

/// When in a request's life the engine judges it. Content (injection, protocol, tokens,
/// credentials, rates) is judged as soon as the request is complete, so a block can land
/// before the answer is sent; what only the answer tells (401/403 and 404 bursts) waits
/// for the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Everything at once: offline lines, and live requests never handed out alone.
    Whole,
    /// A complete request before its answer (`req.status` is `None`).
    Request,
    /// The answer to a request judged at [`Stage::Request`].
    Outcome,
    /// A window of values of a request body still arriving (see
    /// [`crate::detect::stream`]): only their content is judged.
    BodyPart,
}

/// Which side of an LLM call [`Engine::inspect_llm`] judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmSide {
    /// A local process calling an external AI provider: its prompt leaves the host.
    Egress,
    /// A local model server answering: its completion goes to the client.
    Served,
}

/// The outcome for one request.
#[derive(Debug)]
pub struct Verdict {
    pub findings: Vec<Finding>,
    /// Values the input limits left uninspected.
    pub inputs_skipped: usize,
    /// Body bytes no detector saw (see [`Engine::account_uninspected`]).
    pub uninspected: Option<Uninspected>,
}

pub struct Engine {
    limits: InputLimits,
    uninspected: UninspectedConfig,
    injection: Option<InjectionDetector>,
    protocol: Option<ProtocolDetector>,
    jwt: Option<JwtDetector>,
    auth: Option<AuthDetector>,
    abuse: Option<AbuseDetector>,
    prompt: Option<PromptDetector>,
    llm_abuse: Option<LlmAbuseDetector>,
    llm_leak: Option<LeakDetector>,
    encryption: Option<EncryptionDetector>,
}

impl Engine {
    pub fn new(config: &DetectConfig) -> Result<Self, Invalid> {
        config.validate()?;
        let on = |enabled: bool| config.enabled && enabled;
        Ok(Self {
            limits: config.limits.clone(),
            uninspected: config.uninspected.clone(),
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
            prompt: on(config.prompt_injection.enabled)
                .then(|| PromptDetector::new(&config.prompt_injection))
                .transpose()?,
            llm_abuse: on(config.llm_key_abuse.enabled)
                .then(|| LlmAbuseDetector::new(&config.llm_key_abuse))
                .transpose()?,
            llm_leak: on(config.llm_data_leak.enabled)
                .then(|| LeakDetector::new(&config.llm_data_leak))
                .transpose()?,
            encryption: on(config.encryption.enabled)
                .then(|| EncryptionDetector::new(&config.encryption))
                .transpose()?,
        })
    }

    /// Judges `req` from `client`, seen at monotonic time `now_ns`, at `stage` of its life.
    pub fn inspect_at(
        &mut self,
        stage: Stage,
        req: &Request<'_>,
        client: &ClientIdentity,
        now_ns: u64,
    ) -> Verdict {
        self.inspect_scanned(stage, req, None, client, now_ns)
    }

    /// Like [`Engine::inspect_at`], the body's values taken from `scan` when the body was
    /// scanned as it streamed (for [`Stage::BodyPart`], the window to judge).
    pub fn inspect_scanned(
        &mut self,
        stage: Stage,
        req: &Request<'_>,
        scan: Option<&Window>,
        client: &ClientIdentity,
        now_ns: u64,
    ) -> Verdict {
        match stage {
            Stage::Whole | Stage::Request => self.inspect_with(req, scan, client, now_ns),
            Stage::Outcome => self.inspect_outcome(req, client, now_ns),
            Stage::BodyPart => self.inspect_body_part(scan),
        }
    }

    /// Records in `verdict` the body bytes of `req` the body scan `scan` did not reach (see
    /// [`Engine::account_uninspected`]; without a scan, what lies past the kept prefix).
    pub fn account_uninspected_scanned(
        &self,
        req: &Request<'_>,
        scan: Option<&Window>,
        capture_gap: bool,
        verdict: &mut Verdict,
    ) {
        let measured = match scan {
            Some(w) => uninspected::measure_scanned(req, w, capture_gap),
            None => uninspected::measure(req, &self.limits, capture_gap),
        };
        let Some(u) = measured else {
            return;
        };
        verdict.uninspected = Some(u);
        verdict
            .findings
            .extend(uninspected::finding(&u, &self.uninspected));
    }

    /// The content of one window of a body's values.
    fn inspect_body_part(&mut self, scan: Option<&Window>) -> Verdict {
        let mut findings = Vec::new();
        let mut inputs_skipped = 0;
        if let (Some(d), Some(w)) = (&mut self.injection, scan) {
            let inputs = Inputs::of_body(&w.values, &self.limits);
            inputs_skipped = inputs.skipped + w.skipped;
            d.inspect(&inputs, &mut findings);
        }
        Verdict {
            findings,
            inputs_skipped,
            uninspected: None,
        }
    }

    /// Records in `verdict` the body bytes of `req` no detector saw — past the analysis
    /// limit, or lost to a capture gap when `capture_gap` — with a
    /// `protocol.uninspected_content` finding when `[detect.uninspected]` reports them.
    pub fn account_uninspected(&self, req: &Request<'_>, capture_gap: bool, verdict: &mut Verdict) {
        self.account_uninspected_scanned(req, None, capture_gap, verdict);
    }

    /// An LLM call from `client` at `now_ns` once answered (`status`), with what the LLM
    /// layer found in it (model, tokens): the per-key LLM abuse signals. Adds to `verdict`.
    pub fn inspect_llm(
        &mut self,
        status: Option<u16>,
        llm: &LlmUse<'_>,
        client: &ClientIdentity,
        now_ns: u64,
        verdict: &mut Verdict,
    ) {
        if let Some(d) = &mut self.llm_abuse {
            let ctx = Context { now_ns, client };
            d.inspect_use(status, llm, &ctx, &mut verdict.findings);
        }
    }

    /// Entries the detectors' bounded tables pushed out since the last call (LLM key abuse).
    pub fn take_state_evictions(&mut self) -> u64 {
        self.llm_abuse
            .as_mut()
            .map_or(0, LlmAbuseDetector::take_evictions)
    }

    /// `llm_data_leak` on an LLM call (see [`LlmSide`]): sensitive data in the prompt a local
    /// process sends to an AI provider, or in the completion a local model server returns.
    pub fn inspect_leak(&self, side: LlmSide, ex: &HttpExchange) -> Verdict {
        let mut findings = Vec::new();
        let mut inputs_skipped = 0;
        if let Some(d) = &self.llm_leak {
            inputs_skipped = match side {
                LlmSide::Egress => d.inspect_prompt(&ex.request_body, &mut findings),
                LlmSide::Served => d.inspect_completion(ex, &mut findings),
            };
        }
        Verdict {
            findings,
            inputs_skipped,
            uninspected: None,
        }
    }

    /// How the exchange travelled (see [`super::encryption`]), on both ends of a connection:
    /// at [`Stage::Request`] the request and the TLS posture, at [`Stage::Outcome`] the
    /// answer, at [`Stage::Whole`] both. `ids` names where API keys are carried; `now_ns`
    /// is monotonic time.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site, each argument distinct"
    )]
    pub fn inspect_channel(
        &mut self,
        stage: Stage,
        ch: &Channel,
        req: &Request<'_>,
        resp: Option<&Response<'_>>,
        ids: &Identifier,
        now_ns: u64,
        out: &mut Vec<Finding>,
    ) {
        let Some(d) = &mut self.encryption else {
            return;
        };
        if stage != Stage::Outcome {
            let mut read = None;
            let req = &with_fields(req, &mut read);
            d.inspect_request(ch, req, ids, now_ns, out);
        }
        if let (Stage::Outcome | Stage::Whole, Some(resp)) = (stage, resp) {
            d.inspect_response(ch, resp, now_ns, out);
        }
    }

    /// Only what the response status tells, for a request already judged at
    /// [`Stage::Request`].
    fn inspect_outcome(
        &mut self,
        req: &Request<'_>,
        client: &ClientIdentity,
        now_ns: u64,
    ) -> Verdict {
        let ctx = Context { now_ns, client };
        let mut findings = Vec::new();
        if let Some(d) = &mut self.auth {
            d.inspect_outcome(req, &ctx, &mut findings);
        }
        if let Some(d) = &mut self.abuse {
            d.inspect_outcome(req, &ctx, &mut findings);
        }
        if let Some(d) = &mut self.llm_abuse {
            d.inspect_outcome(req, &ctx, &mut findings);
        }
        Verdict {
            findings,
            inputs_skipped: 0,
            uninspected: None,
        }
    }

    /// Runs every detector over `req` from `client`, seen at monotonic time `now_ns`
    /// (what depends on the answer runs only when `req.status` is known).
    pub fn inspect(&mut self, req: &Request<'_>, client: &ClientIdentity, now_ns: u64) -> Verdict {
        self.inspect_with(req, None, client, now_ns)
    }

    // Out of line (one call per request): profiles attribute the engine's cost to it
    // whichever caller inlined the public entry points (`cargo xtask bench detect`).
    #[inline(never)]
    fn inspect_with(
        &mut self,
        req: &Request<'_>,
        scan: Option<&Window>,
        client: &ClientIdentity,
        now_ns: u64,
    ) -> Verdict {
        let ctx = Context { now_ns, client };
        let mut findings = Vec::new();
        let mut inputs_skipped = 0;
        let mut read = None;
        let req = &with_fields(req, &mut read);
        if let Some(d) = &self.protocol {
            d.inspect_request(req, &mut findings);
        }
        if let Some(d) = &mut self.injection {
            let inputs = Inputs::extract_with(req, &self.limits, scan.map(|w| &w.values[..]));
            inputs_skipped = inputs.skipped + scan.map_or(0, |w| w.skipped);
            d.inspect(&inputs, &mut findings);
            d.inspect_request(req, &inputs, &mut findings);
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
        if let Some(d) = &self.prompt {
            inputs_skipped += d.inspect(req, &mut findings);
        }
        if let Some(d) = &mut self.llm_abuse {
            d.inspect(req, &ctx, &mut findings);
        }
        Verdict {
            findings,
            inputs_skipped,
            uninspected: None,
        }
    }
}

/// `req` with its header fields read once for every detector (see [`RequestFields`]), in
/// `slot` unless its caller read them already.
fn with_fields<'s>(req: &Request<'s>, slot: &'s mut Option<RequestFields<'s>>) -> Request<'s> {
    if req.fields.is_some() {
        return *req;
    }
    let fields: &'s RequestFields<'s> = slot.insert(RequestFields::of(req.headers));
    Request {
        fields: Some(fields),
        ..*req
    }
}

// The daemon runs the engine inside a tokio task, which may move between threads.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Engine>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{finding::Kind, offline::OwnedRequest};

    fn engine() -> Engine {
        Engine::new(&DetectConfig::default()).unwrap()
    }

    fn run(e: &mut Engine, raw: &[u8]) -> Verdict {
        let req = OwnedRequest::from_raw(raw);
        let peer = Some([192, 0, 2, 1].into());
        e.inspect(
            &req.view(peer, Some(200)),
            &ClientIdentity::of_peer(peer),
            1,
        )
    }

    #[test]
    fn hostile_requests_cost_bounded_work_and_never_panic() {
        let mut e = engine();
        // A megabyte header value.
        let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 1 << 20));
        raw.extend_from_slice(b"\r\n\r\n");
        let v = run(&mut e, &raw);
        assert!(v.findings.iter().all(|f| f.evidence.chars().count() <= 97));
        // JSON nested 100,000 deep, and JSON that never closes.
        for body in [
            format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)),
            "{\"a\":".repeat(50_000),
        ] {
            let raw = format!(
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\r\n{body}"
            );
            run(&mut e, raw.as_bytes());
        }
        // 100,000 query parameters: only the first `max_values` are inspected, the rest counted.
        let q = "a=%27&".repeat(100_000);
        let v = run(
            &mut e,
            format!("GET /?{q} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
        );
        assert!(v.inputs_skipped > 90_000, "skipped {}", v.inputs_skipped);
        // Invalid UTF-8 and broken escapes everywhere.
        let raw = b"GET /\xff\xfe%zz%%u12?x=%c0%ae%c0%ae%2f\xc3 HTTP/1.1\r\nHost: \xff\r\nCookie: a=%\xff\r\n\r\n";
        run(&mut e, raw);
        // Every encoding layer the decoder knows, stacked deep.
        let deep = "%25".repeat(10_000) + "27";
        run(
            &mut e,
            format!("GET /?x={deep} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
        );
    }

    #[test]
    fn one_request_can_carry_several_findings() {
        let mut e = engine();
        let raw = b"GET /?id=1%27%20OR%20%271%27%3D%271&q=%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1\r\nHost: a\r\nUser-Agent: sqlmap/1.7\r\n\r\n";
        let v = run(&mut e, raw);
        let kinds: Vec<Kind> = v.findings.iter().map(|f| f.kind).collect();
        for k in [Kind::Sqli, Kind::Xss, Kind::Scanner] {
            assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
        }
    }

    #[test]
    fn content_is_judged_at_request_time_and_statuses_at_the_outcome() {
        let mut e = engine();
        let peer = Some([192, 0, 2, 1].into());
        let client = ClientIdentity::of_peer(peer);
        let attack = OwnedRequest::from_raw(
            b"GET /x?id=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        let kinds = |v: Verdict| v.findings.iter().map(|f| f.kind).collect::<Vec<_>>();
        let at_request = e.inspect_at(Stage::Request, &attack.view(peer, None), &client, 1);
        assert!(kinds(at_request).contains(&Kind::Sqli));
        // The answer to it adds nothing about content: judged once.
        let outcome = e.inspect_at(Stage::Outcome, &attack.view(peer, Some(200)), &client, 2);
        assert!(outcome.findings.is_empty(), "{outcome:?}");
        // 404 bursts are only known from the answers.
        let probe = OwnedRequest::from_raw(b"GET /missing HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut burst = Vec::new();
        for i in 0..30 {
            assert!(e
                .inspect_at(Stage::Request, &probe.view(peer, None), &client, 10 + i)
                .findings
                .is_empty());
            burst.extend(kinds(e.inspect_at(
                Stage::Outcome,
                &probe.view(peer, Some(404)),
                &client,
                10 + i,
            )));
        }
        assert_eq!(burst, [Kind::Enumeration]);
    }

    #[test]
    fn disabled_detectors_stay_silent() {
        let config: DetectConfig =
            toml::from_str("[injection]\nsqli = false\n[abuse]\nenabled = false\n").unwrap();
        let mut e = Engine::new(&config).unwrap();
        let raw = b"GET /?id=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: a\r\nUser-Agent: sqlmap/1.7\r\n\r\n";
        let v = run(&mut e, raw);
        assert!(
            v.findings
                .iter()
                .all(|f| f.kind != Kind::Sqli && f.kind != Kind::Scanner),
            "{:?}",
            v.findings
        );
        let off: DetectConfig = toml::from_str("enabled = false").unwrap();
        let mut e = Engine::new(&off).unwrap();
        assert!(run(&mut e, raw).findings.is_empty());
    }

    #[test]
    fn config_errors_name_the_field() {
        let bad: DetectConfig = toml::from_str("[limits]\nmax_values = 0\n").unwrap();
        let err = Engine::new(&bad).err().unwrap();
        assert_eq!(err.field, "detect.limits.max_values");
        assert!(toml::from_str::<DetectConfig>("block_severity = \"severe\"").is_err());
    }
}
