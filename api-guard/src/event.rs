//! Security events: the one schema of every event the agent reports — `detection`,
//! `spec_violation`, `block`, `unblock`, `would_block`, `ratelimit_exceeded`. Each is one JSON
//! object per line: the envelope (`time`, `type`) and the fields of its type; events caused by
//! a request carry who sent it (`client`) and what it was (`request`). Fields are documented in
//! docs/events.md, which a test keeps equal to this module.
//! Secrets never appear: credentials as hashes, parameters by name without their values.

use std::net::IpAddr;

use serde::Serialize;

use crate::{
    detect::Finding, exchange::Exchange, identity::ClientIdentity, text::truncate,
    wallclock::rfc3339_from_monotonic,
};

/// Longest request path quoted in an event (paths can be as long as a request head).
pub const MAX_EVENT_PATH: usize = 512;

/// One security event.
#[derive(Debug, Serialize)]
pub struct SecurityEvent<'a> {
    /// RFC 3339 UTC.
    pub time: String,
    #[serde(flatten)]
    pub body: EventBody<'a>,
}

impl<'a> SecurityEvent<'a> {
    /// An event at monotonic time `now_ns`.
    pub fn new(now_ns: u64, body: EventBody<'a>) -> Self {
        Self {
            time: rfc3339_from_monotonic(now_ns),
            body,
        }
    }

    /// The `type` field.
    pub fn type_name(&self) -> &'static str {
        self.body.type_name()
    }
}

/// The event's `type` and its fields.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody<'a> {
    /// A detector's finding about a request.
    Detection(Detection<'a>),
    /// A request that breaks the configured OpenAPI spec.
    SpecViolation(SpecViolation<'a>),
    /// An address or range put under an XDP block.
    Block(Enforcement<'a>),
    /// A block lifted.
    Unblock(Enforcement<'a>),
    /// Dry-run: the block that would have been put in force.
    WouldBlock(Enforcement<'a>),
    /// A rate-limit breach reported, not (or not yet) blocked.
    RatelimitExceeded(Enforcement<'a>),
    /// A token-limit (`unit = "tokens"`) breach by LLM calls, reported whether or not it
    /// blocks (a `block` or `would_block` follows when it does).
    LlmBudgetExceeded(Enforcement<'a>),
    /// A local process started calling an AI provider outside `llm.allowed_providers`.
    LlmUnapprovedProvider(LlmEgress<'a>),
}

impl EventBody<'_> {
    /// Every `type`, in documentation order.
    pub const TYPES: [&'static str; 8] = [
        "detection",
        "spec_violation",
        "block",
        "unblock",
        "would_block",
        "ratelimit_exceeded",
        "llm_budget_exceeded",
        "llm_unapproved_provider",
    ];

    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::Detection(_) => "detection",
            EventBody::SpecViolation(_) => "spec_violation",
            EventBody::Block(_) => "block",
            EventBody::Unblock(_) => "unblock",
            EventBody::WouldBlock(_) => "would_block",
            EventBody::RatelimitExceeded(_) => "ratelimit_exceeded",
            EventBody::LlmBudgetExceeded(_) => "llm_budget_exceeded",
            EventBody::LlmUnapprovedProvider(_) => "llm_unapproved_provider",
        }
    }
}

/// The fields of every event about one exchange: who, what, and how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeContext<'a> {
    pub client: ClientView,
    pub request: RequestView<'a>,
    pub status: Option<u16>,
    pub conn_id: u64,
    pub tls: bool,
    /// Events withheld for this client since its previous event (per-client budget).
    #[serde(skip_serializing_if = "is_zero")]
    pub suppressed: u64,
}

impl<'a> ExchangeContext<'a> {
    pub fn of(exchange: &'a Exchange, client: &ClientIdentity, suppressed: u64) -> Self {
        Self {
            client: ClientView::of(client),
            request: RequestView::of(exchange),
            status: exchange.http.status,
            conn_id: exchange.conn.conn_id,
            tls: exchange.conn.tls(),
            suppressed,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Detection<'a> {
    #[serde(flatten)]
    pub finding: &'a Finding,
    #[serde(flatten)]
    pub context: ExchangeContext<'a>,
}

/// Parameter values are never included: they may be secrets.
#[derive(Debug, Serialize)]
pub struct SpecViolation<'a> {
    /// `unknown_endpoint`, `missing_required_param`, `wrong_param_type`.
    pub violation: &'static str,
    pub param: Option<&'a str>,
    /// Where the parameter is (`query`, `path`).
    #[serde(rename = "in")]
    pub location: Option<&'static str>,
    /// The type or format the spec wants.
    pub expected: Option<&'a str>,
    /// The matched operation, `"GET /orders"`.
    pub operation: Option<&'a str>,
    #[serde(flatten)]
    pub context: ExchangeContext<'a>,
}

/// A block, an unblock, a dry-run block or a rate-limit breach.
#[derive(Debug, Default, Serialize)]
pub struct Enforcement<'a> {
    /// The address or range.
    pub target: Option<String>,
    pub reason: &'static str,
    pub policy: Option<&'a str>,
    pub detail: Option<&'a str>,
    /// End of the block (null: until removed).
    pub until: Option<String>,
    pub duration_secs: Option<u64>,
    /// For events caused by a request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestView<'a>>,
    /// Whether the XDP guard now drops it.
    pub enforced: bool,
    /// Why a breach was not blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
    /// The node that decided it (cluster mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<&'a str>,
}

/// A local process and the AI provider it calls (the egress inventory's row, as first seen).
#[derive(Debug, Serialize)]
pub struct LlmEgress<'a> {
    pub provider: &'a str,
    /// The Host / `:authority` the call went to.
    pub host: &'a str,
    pub pid: u32,
    pub comm: &'a str,
    /// The process's cgroup v2 path, and the container id found in it.
    pub cgroup: Option<&'a str>,
    pub container: Option<&'a str>,
    /// The credential's hash (`sha256:…`), never the key.
    pub key: Option<&'a str>,
    pub model: Option<&'a str>,
    pub allowed_providers: &'a [String],
}

/// The client as events show it: the credential only as its hash.
#[derive(Debug, Clone, Serialize)]
pub struct ClientView {
    ip: Option<IpAddr>,
    via_proxy: Option<IpAddr>,
    credential: Option<String>,
    jwt_subject: Option<String>,
}

impl ClientView {
    pub fn of(c: &ClientIdentity) -> Self {
        Self {
            ip: c.ip,
            via_proxy: c.via_proxy,
            credential: c.credential.as_ref().map(|c| c.hash.clone()),
            jwt_subject: c.credential.as_ref().and_then(|c| c.jwt_subject.clone()),
        }
    }
}

/// Request details attached to events about it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestView<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub host: Option<&'a str>,
    /// The server process.
    pub pid: u32,
    pub comm: &'a str,
}

impl<'a> RequestView<'a> {
    pub fn of(ex: &'a Exchange) -> Self {
        Self {
            method: &ex.http.method,
            path: truncate(&ex.http.path, MAX_EVENT_PATH),
            host: ex.http.host.as_deref(),
            pid: ex.conn.pid,
            comm: &ex.conn.comm,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::{
        detect::rules,
        exchange::{test_exchange, Role},
    };

    fn json_of(event: &SecurityEvent<'_>) -> Value {
        serde_json::to_value(event).unwrap()
    }

    #[test]
    fn envelope_type_and_fields() {
        let mut ex = test_exchange(Role::Server, "192.0.2.7:40000", "/orders");
        ex.http.status = Some(200);
        let client = ex.client.clone().unwrap();
        let finding = Finding::new(&rules::SQLI_LIBINJECTION, "query:id", "1' OR '1'='1");
        let detection = SecurityEvent::new(
            0,
            EventBody::Detection(Detection {
                finding: &finding,
                context: ExchangeContext::of(&ex, &client, 0),
            }),
        );
        let v = json_of(&detection);
        assert_eq!(detection.type_name(), "detection");
        assert_eq!(v["type"], "detection");
        assert!(v["time"].as_str().unwrap().ends_with('Z'), "{v}");
        assert_eq!(v["kind"], "sqli");
        assert_eq!(v["rule_id"], "sqli.libinjection");
        assert_eq!(v["client"]["ip"], "192.0.2.7");
        assert_eq!(v["client"]["credential"], Value::Null);
        assert_eq!(
            v["request"],
            json!({"method": "GET", "path": "/orders", "host": null, "pid": 42, "comm": "srv"})
        );
        assert_eq!(v["status"], 200);
        assert_eq!(v["conn_id"], 1);
        assert_eq!(v["tls"], false);
        assert!(v.get("suppressed").is_none(), "only when non-zero: {v}");

        let block = SecurityEvent::new(
            0,
            EventBody::Unblock(Enforcement {
                target: Some("192.0.2.7".into()),
                reason: "expired",
                ..Enforcement::default()
            }),
        );
        let v = json_of(&block);
        assert_eq!(v["type"], "unblock");
        assert_eq!(v["target"], "192.0.2.7");
        assert_eq!(v["reason"], "expired");
        assert_eq!(v["until"], Value::Null);
        assert_eq!(v["enforced"], false);
        for absent in ["client", "request", "note", "status", "conn_id"] {
            assert!(v.get(absent).is_none(), "{absent}: {v}");
        }
    }

    /// One event of every type with every optional field present.
    fn samples() -> Vec<Value> {
        let ex = test_exchange(Role::Server, "192.0.2.7:40000", "/orders");
        let client = ex.client.clone().unwrap();
        let finding = Finding::new(&rules::SQLI_LIBINJECTION, "query:id", "x");
        let context = || ExchangeContext::of(&ex, &client, 3);
        let enforcement = || Enforcement {
            client: Some(ClientView::of(&client)),
            request: Some(RequestView::of(&ex)),
            note: Some("n"),
            decided_by: Some("node-a"),
            ..Enforcement::default()
        };
        let bodies = [
            EventBody::Detection(Detection {
                finding: &finding,
                context: context(),
            }),
            EventBody::SpecViolation(SpecViolation {
                violation: "wrong_param_type",
                param: None,
                location: None,
                expected: None,
                operation: None,
                context: context(),
            }),
            EventBody::Block(enforcement()),
            EventBody::Unblock(enforcement()),
            EventBody::WouldBlock(enforcement()),
            EventBody::RatelimitExceeded(enforcement()),
            EventBody::LlmBudgetExceeded(enforcement()),
            EventBody::LlmUnapprovedProvider(LlmEgress {
                provider: "openai",
                host: "api.openai.com",
                pid: 7,
                comm: "python3",
                cgroup: Some("/system.slice/app.service"),
                container: None,
                key: Some("sha256:0123456789abcdef"),
                model: Some("gpt-4o"),
                allowed_providers: &[],
            }),
        ];
        let samples: Vec<Value> = bodies
            .into_iter()
            .map(|body| json_of(&SecurityEvent::new(0, body)))
            .collect();
        let types: Vec<&str> = samples
            .iter()
            .map(|v| v["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, EventBody::TYPES);
        samples
    }

    /// The backticked names in a markdown table cell.
    fn names(cell: &str) -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect()
    }

    /// The rows of the markdown table whose header line starts with `header`.
    fn table<'a>(doc: &'a str, header: &str) -> Vec<Vec<&'a str>> {
        doc.lines()
            .skip_while(|l| !l.starts_with(header))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
            .collect()
    }

    #[test]
    fn docs_list_every_type_with_its_fields_and_every_field() {
        let doc = include_str!("../../docs/events.md");
        let section = &doc[doc.find("## Security events").unwrap()..];
        let types = table(section, "| type |");
        let samples = samples();
        assert_eq!(types.len(), samples.len(), "{types:?}");
        let mut all_fields = std::collections::BTreeSet::from(["time".to_string(), "type".into()]);
        for (row, sample) in types.iter().zip(&samples) {
            assert_eq!(names(row[0]), [sample["type"].as_str().unwrap()]);
            let documented = names(row[2]);
            let mut emitted: Vec<String> = sample
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "time" && *k != "type")
                .cloned()
                .collect();
            let mut sorted = documented.clone();
            sorted.sort();
            emitted.sort();
            assert_eq!(sorted, emitted, "fields of {}", row[0]);
            all_fields.extend(documented);
        }
        // Added by the output when the node name is known.
        all_fields.insert("node".into());
        let described: std::collections::BTreeSet<String> = table(section, "| field |")
            .iter()
            .flat_map(|row| names(row[0]))
            .collect();
        assert_eq!(described, all_fields);
    }
}
