//! API discovery on live traffic (issue 6): a real multi-route JSON API (python, namespace
//! A) driven by curl (namespace B, so the client address is real) while the agent captures
//! the server. The inventory read back over the control socket must hold exactly the
//! endpoints, counts, parameters, auth schemes, body schema and sensitive classes of the
//! traffic sent; its OpenAPI export (JSON and YAML) must pass PyPI's
//! `openapi-spec-validator`; it must survive a restart on the same state dir; and with a
//! spec configured, shadow/unused endpoints and per-request `spec_violation` events must be
//! exactly the ones provoked.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::api_app::{ApiApp, EXPORT_EMAILS, USER_EMAIL};
use integration_tests::exchange::dump;
use integration_tests::metrics::Metrics;
use integration_tests::util::{openapi_validator, run_with_timeout, unique_comm, wait_until};
use integration_tests::{require_root, Agent, AgentOptions, Curl, NetPair, PyOptions, TempDir};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);

/// A JWT-shaped bearer token (`{"alg":"HS256","typ":"JWT"}.{"sub":"alice"}.signature`).
const JWT: &str =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
/// The API key the orders endpoints get (must never appear in any output).
const API_KEY: &str = "k3y-5ecr3t-0rd3rs-7781";
const UUIDS: [&str; 2] = [
    "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
    "9b2c1f7a-0d4e-4c8b-a1f2-6e7d8c9b0a15",
];
/// The value of `limit` that is not an integer (must never appear in an event).
const BAD_LIMIT: &str = "abcxyz";

#[derive(Clone, Copy, PartialEq)]
enum Auth {
    None,
    Bearer,
    ApiKey,
}

/// One curl request and the status the app answers it with.
struct Req {
    method: &'static str,
    /// Path and query.
    target: String,
    auth: Auth,
    body: Option<&'static str>,
    status: u16,
}

fn get(target: impl Into<String>, auth: Auth, status: u16) -> Req {
    Req {
        method: "GET",
        target: target.into(),
        auth,
        body: None,
        status,
    }
}

fn post_order(body: &'static str) -> Req {
    Req {
        method: "POST",
        target: "/orders".into(),
        auth: Auth::ApiKey,
        body: Some(body),
        status: 201,
    }
}

const ORDER_BODIES: [&str; 3] = [
    r#"{"item":"book","quantity":2,"express":true}"#,
    r#"{"item":"pen","quantity":10,"express":false}"#,
    r#"{"item":"lamp","quantity":1,"express":true}"#,
];

/// The traffic of the spec-less test: 27 requests on six endpoints.
fn traffic() -> Vec<Req> {
    let mut reqs = Vec::new();
    for id in ["1", "2", "3", "17", "42", "1001", UUIDS[0], UUIDS[1]] {
        reqs.push(get(format!("/users/{id}"), Auth::Bearer, 200));
    }
    for id in ["1", "2", "42", UUIDS[0], UUIDS[1]] {
        reqs.push(get(format!("/users/{id}/orders"), Auth::Bearer, 200));
    }
    for q in [
        "status=open&limit=5",
        "status=closed&limit=10",
        "status=open&limit=1",
        "status=closed&limit=20",
        "status=open",
    ] {
        reqs.push(get(format!("/orders?{q}"), Auth::ApiKey, 200));
    }
    reqs.extend(ORDER_BODIES.map(post_order));
    for _ in 0..4 {
        reqs.push(get("/health", Auth::None, 200));
    }
    for _ in 0..2 {
        reqs.push(get("/internal/export", Auth::None, 200));
    }
    reqs
}

/// The topology, the app (capturing its comm only) and the agent.
struct Env {
    agent: Agent,
    app: ApiApp,
    pair: NetPair,
}

impl Env {
    fn start(prefix: &str, discover_toml: &str) -> Result<Env> {
        require_root()?;
        let pair = NetPair::new(prefix)?;
        let app = ApiApp::start(
            &pair.srv,
            pair.server_addr()?,
            PyOptions {
                comm: Some(unique_comm("dapi")),
            },
        )?;
        let agent = Agent::start(agent_options(app.comm(), discover_toml, None))?;
        Ok(Env { agent, app, pair })
    }

    /// The `Host` header (and inventory host) curl sends.
    fn host(&self) -> String {
        self.app.addr().to_string()
    }

    /// Sends every request (one curl each, from the client namespace) and checks the
    /// app's answers.
    fn send(&self, reqs: &[Req]) -> Result<()> {
        for r in reqs {
            let mut curl = Curl::new(&self.pair.cli).arg("-X").arg(r.method);
            curl = match r.auth {
                Auth::None => curl,
                Auth::Bearer => curl.arg("-H").arg(format!("Authorization: Bearer {JWT}")),
                Auth::ApiKey => curl.arg("-H").arg(format!("X-API-Key: {API_KEY}")),
            };
            if let Some(body) = r.body {
                curl = curl
                    .arg("-H")
                    .arg("Content-Type: application/json")
                    .arg("-H")
                    .arg("Expect:")
                    .arg("--data-binary")
                    .arg(body);
            }
            let run = curl.url(self.app.url(&r.target)).run()?;
            let code = run.transfers.first().map(|t| t.http_code());
            ensure!(
                code == Some(r.status),
                "{} {} answered {code:?}, expected {}",
                r.method,
                r.target,
                r.status
            );
        }
        Ok(())
    }
}

fn agent_options(comm: &str, discover_toml: &str, state_dir: Option<&Path>) -> AgentOptions {
    let mut opts = AgentOptions::comms_only(&[comm]);
    if let Some(toml) = &mut opts.config_toml {
        toml.push_str(discover_toml);
    }
    opts.state_dir = state_dir.map(Path::to_path_buf);
    opts
}

/// `api-guard inventory --format json` from the running daemon.
fn inventory(agent: &Agent) -> Result<Value> {
    let text = agent.cli_ok(&["inventory", "--format", "json"])?;
    serde_json::from_str(&text).with_context(|| format!("inventory --format json printed {text}"))
}

fn endpoints(inv: &Value) -> Vec<Value> {
    inv["endpoints"].as_array().cloned().unwrap_or_default()
}

/// Waits until the daemon's inventory has counted `total` requests over all endpoints.
fn wait_inventory(agent: &Agent, total: u64) -> Result<Value> {
    let mut last = Value::Null;
    wait_until(
        &format!("the inventory to count {total} requests"),
        WAIT,
        POLL,
        || {
            let inv = inventory(agent)?;
            let n: u64 = endpoints(&inv)
                .iter()
                .map(|e| e["count"].as_u64().unwrap_or(0))
                .sum();
            last = inv.clone();
            Ok((n >= total).then_some(inv))
        },
    )
    .with_context(|| format!("last inventory: {last:#}\n{}", agent.diagnostics()))
}

/// `(host, method, template) -> count` of an inventory snapshot.
fn counts(inv: &Value) -> BTreeMap<(String, String, String), u64> {
    endpoints(inv)
        .iter()
        .map(|e| {
            (
                (
                    e["host"].as_str().unwrap_or("").to_owned(),
                    e["method"].as_str().unwrap_or("").to_owned(),
                    e["template"].as_str().unwrap_or("").to_owned(),
                ),
                e["count"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn endpoint<'a>(eps: &'a [Value], method: &str, template: &str) -> Result<&'a Value> {
    eps.iter()
        .find(|e| e["method"] == method && e["template"] == template)
        .with_context(|| format!("no endpoint {method} {template} in {eps:#?}"))
}

/// The count of `class` in a snapshot's `ClassCounts` (an array in `DataClass::ALL` order:
/// email, phone, payment_card, national_id, api_key, private_key, jwt, password).
fn class_count(counts: &Value, class: &str) -> u64 {
    const ORDER: [&str; 8] = [
        "email",
        "phone",
        "payment_card",
        "national_id",
        "api_key",
        "private_key",
        "jwt",
        "password",
    ];
    match counts {
        Value::Array(a) => ORDER
            .iter()
            .position(|c| *c == class)
            .and_then(|i| a.get(i))
            .and_then(Value::as_u64)
            .unwrap_or(0),
        Value::Object(m) => m.get(class).and_then(Value::as_u64).unwrap_or(0),
        _ => 0,
    }
}

/// `<field>.counts` of the endpoint `method template` must be exactly `want`.
fn expect_counts(
    eps: &[Value],
    method: &str,
    template: &str,
    field: &str,
    want: Value,
) -> Result<()> {
    let e = endpoint(eps, method, template)?;
    ensure!(
        e[field]["counts"] == want && e[field]["other"] == 0,
        "{method} {template} {field}: expected {want}, got {}\n{e:#}",
        e[field]
    );
    Ok(())
}

/// Distinct clients in a snapshot's `clients`: a number, or the HyperLogLog registers
/// (one client sets exactly one register).
fn one_client(clients: &Value) -> bool {
    match clients {
        Value::Number(n) => n.as_u64() == Some(1),
        Value::Object(m) => m
            .get("registers")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().filter(|x| x.as_u64() != Some(0)).count() == 1),
        _ => false,
    }
}

/// Runs the validator on `path`; fails with its output unless it accepts the document.
fn validate(path: &Path) -> Result<()> {
    let bin = openapi_validator()?;
    let done = run_with_timeout(Command::new(&bin).arg(path), Duration::from_secs(30))?;
    ensure!(
        done.status.success(),
        "openapi-spec-validator rejected {}: {}{}\ndocument:\n{}",
        path.display(),
        done.stdout_text(),
        done.stderr_text(),
        fs::read_to_string(path).unwrap_or_default()
    );
    Ok(())
}

/// A YAML document as JSON, read by the PyYAML that the validator's venv has (a dependency
/// of openapi-spec-validator).
fn yaml_to_json(path: &Path) -> Result<Value> {
    let python = openapi_validator()?.with_file_name("python3");
    let done = run_with_timeout(
        Command::new(&python)
            .arg("-c")
            .arg("import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))")
            .arg(path),
        Duration::from_secs(30),
    )?;
    ensure!(
        done.status.success(),
        "PyYAML could not read {}: {}",
        path.display(),
        done.stderr_text()
    );
    serde_json::from_str(&done.stdout_text()).context("PyYAML's JSON")
}

/// `name{labels}` (summed) must reach exactly `want` within 3 s (metrics may lag the
/// exchanges and the inventory by a moment).
fn check_metric(agent: &Agent, name: &str, labels: &[(&str, &str)], want: f64) -> Result<()> {
    let got = agent.wait_metric(name, labels, |v| v == want, Duration::from_secs(3))?;
    ensure!(
        got == want,
        "{name}{labels:?} is {got}, expected {want}:\n{}",
        agent
            .metrics()
            .map(|m| m.dump(name.trim_end_matches("_count")))
            .unwrap_or_default()
    );
    Ok(())
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Secrets and the leaked addresses never appear in `text` (classes and counts only).
fn no_secrets(what: &str, text: &str) -> Result<()> {
    for secret in [JWT, API_KEY, USER_EMAIL]
        .into_iter()
        .chain(EXPORT_EMAILS)
        .chain([BAD_LIMIT])
    {
        ensure!(
            !text.contains(secret),
            "{what} contains {secret:?}:\n{text}"
        );
    }
    Ok(())
}

/// The (host, method, template, count, statuses) the spec-less traffic must produce.
fn expected_learned(host: &str) -> BTreeMap<(String, String, String), u64> {
    on_host(
        host,
        &[
            ("GET", "/users/{userId}", 8),
            ("GET", "/users/{userId}/orders", 5),
            ("GET", "/orders", 5),
            ("POST", "/orders", 3),
            ("GET", "/health", 4),
            ("GET", "/internal/export", 2),
        ],
    )
}

/// `(method, template, count)` rows keyed by (host, method, template).
fn on_host(host: &str, rows: &[(&str, &str, u64)]) -> BTreeMap<(String, String, String), u64> {
    rows.iter()
        .map(|&(m, t, n)| ((host.to_owned(), m.to_owned(), t.to_owned()), n))
        .collect()
}

#[test]
fn inventory_openapi_and_persistence_without_a_spec() -> Result<()> {
    let env = Env::start("disc", "")?;
    let reqs = traffic();
    let total = reqs.len() as u64;
    ensure!(total == 27);
    env.send(&reqs)?;
    let host = env.host();
    let client_ip = env.pair.cli_ip.to_string();
    let agent = &env.agent;

    // Every exchange is out with its route.
    let exchanges = agent.wait_for_exchanges(|e| e["role"] == "server", reqs.len(), WAIT)?;
    ensure!(exchanges.len() == reqs.len(), "{}", dump(&exchanges));
    for e in &exchanges {
        ensure!(
            e["peer_addr"]
                .as_str()
                .is_some_and(|p| p.starts_with(&format!("{client_ip}:"))),
            "{e}"
        );
        let path = e["path"].as_str().unwrap_or("");
        let want = if path.starts_with("/users/") && path.ends_with("/orders") {
            "/users/{userId}/orders"
        } else if path.starts_with("/users/") {
            "/users/{userId}"
        } else {
            path
        };
        ensure!(e["route"] == want, "exchange route, expected {want}: {e}");
    }

    // The inventory over the control socket.
    let inv = wait_inventory(agent, total)?;
    ensure!(inv["version"] == 1, "{inv:#}");
    ensure!(counts(&inv) == expected_learned(&host), "{inv:#}");
    let eps = endpoints(&inv);
    expect_counts(
        &eps,
        "GET",
        "/users/{userId}",
        "statuses",
        json!({"200": 8}),
    )?;
    expect_counts(
        &eps,
        "GET",
        "/users/{userId}/orders",
        "statuses",
        json!({"200": 5}),
    )?;
    expect_counts(&eps, "GET", "/orders", "statuses", json!({"200": 5}))?;
    expect_counts(&eps, "POST", "/orders", "statuses", json!({"201": 3}))?;
    expect_counts(&eps, "GET", "/health", "statuses", json!({"200": 4}))?;
    expect_counts(
        &eps,
        "GET",
        "/internal/export",
        "statuses",
        json!({"200": 2}),
    )?;
    for e in &eps {
        ensure!(one_client(&e["clients"]), "clients of {e:#}");
        ensure!(e["first_seen"].as_u64() <= e["last_seen"].as_u64(), "{e:#}");
        ensure!(e["overflow"] != true, "{e:#}");
    }
    // Auth schemes.
    expect_counts(
        &eps,
        "GET",
        "/users/{userId}",
        "auth",
        json!({"bearer-jwt": 8}),
    )?;
    expect_counts(
        &eps,
        "GET",
        "/users/{userId}/orders",
        "auth",
        json!({"bearer-jwt": 5}),
    )?;
    expect_counts(
        &eps,
        "GET",
        "/orders",
        "auth",
        json!({"api-key-header:x-api-key": 5}),
    )?;
    expect_counts(
        &eps,
        "POST",
        "/orders",
        "auth",
        json!({"api-key-header:x-api-key": 3}),
    )?;
    expect_counts(&eps, "GET", "/health", "auth", json!({"none": 4}))?;
    expect_counts(&eps, "GET", "/internal/export", "auth", json!({"none": 2}))?;
    // Query and path parameters.
    let orders = endpoint(&eps, "GET", "/orders")?;
    ensure!(
        orders["query_params"]
            == json!({
                "limit": {"value_type": "integer", "seen": 4},
                "status": {"value_type": "string", "seen": 5},
            }),
        "{orders:#}"
    );
    for (t, n) in [("/users/{userId}", 8), ("/users/{userId}/orders", 5)] {
        let e = endpoint(&eps, "GET", t)?;
        ensure!(keys(&e["path_params"]) == set(&["userId"]), "{e:#}");
        ensure!(e["path_params"]["userId"]["seen"] == n, "{e:#}");
        ensure!(e["query_params"] == json!({}), "{e:#}");
    }
    // The request body schema of POST /orders.
    let post = endpoint(&eps, "POST", "/orders")?;
    let schemas = post["request_schemas"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(schemas.len() == 1, "{post:#}");
    ensure!(schemas[0]["content_type"] == "application/json", "{post:#}");
    ensure!(schemas[0]["schema"]["samples"] == 3, "{post:#}");
    let props = &schemas[0]["schema"]["root"]["object"]["properties"];
    ensure!(
        keys(props) == set(&["express", "item", "quantity"]),
        "{post:#}"
    );
    for f in ["express", "item", "quantity"] {
        ensure!(props[f]["present"] == 3, "{f}: {post:#}");
    }
    // Sensitive data: the email addresses in the user and export responses, nothing else
    // in any response.
    for e in &eps {
        let (m, t) = (
            e["method"].as_str().unwrap_or(""),
            e["template"].as_str().unwrap_or(""),
        );
        let want = match (m, t) {
            ("GET", "/users/{userId}") => 8,
            ("GET", "/internal/export") => 2 * EXPORT_EMAILS.len() as u64,
            _ => 0,
        };
        ensure!(
            class_count(&e["response_sensitive"], "email") == want,
            "{m} {t}: response emails, expected {want}: {e:#}"
        );
        ensure!(class_count(&e["request_sensitive"], "email") == 0, "{e:#}");
    }
    no_secrets("the inventory", &inv.to_string())?;

    // OpenAPI 3.1, JSON and YAML, through the real validator.
    let scratch = TempDir::new("discover")?;
    let doc_text = agent.cli_ok(&["inventory", "--format", "openapi"])?;
    let doc_path = scratch.join("inventory.openapi.json");
    fs::write(&doc_path, &doc_text)?;
    validate(&doc_path)?;
    let doc: Value = serde_json::from_str(&doc_text)?;
    ensure!(doc["openapi"] == "3.1.0", "{doc:#}");
    ensure!(
        keys(&doc["paths"])
            == set(&[
                "/health",
                "/internal/export",
                "/orders",
                "/users/{userId}",
                "/users/{userId}/orders"
            ]),
        "{doc:#}"
    );
    let paths = &doc["paths"];
    ensure!(
        keys(&paths["/orders"]).is_superset(&set(&["get", "post"])),
        "{doc:#}"
    );
    for (p, m) in [
        ("/health", "get"),
        ("/internal/export", "get"),
        ("/users/{userId}", "get"),
        ("/users/{userId}/orders", "get"),
    ] {
        let methods: BTreeSet<String> = keys(&paths[p])
            .into_iter()
            .filter(|k| {
                ["get", "put", "post", "delete", "patch", "head", "options"].contains(&k.as_str())
            })
            .collect();
        ensure!(methods == set(&[m]), "{p}: {methods:?}");
        ensure!(paths[p][m]["x-apiguard-clients"] == 1, "{p}: {doc:#}");
    }
    let params = |p: &str, m: &str| -> Vec<(String, String, bool, Value)> {
        paths[p][m]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                (
                    x["in"].as_str().unwrap_or("").to_owned(),
                    x["name"].as_str().unwrap_or("").to_owned(),
                    x["required"] == true,
                    x["schema"]["type"].clone(),
                )
            })
            .collect()
    };
    let mut q = params("/orders", "get");
    q.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    ensure!(
        q == [
            ("query".into(), "limit".into(), false, json!("integer")),
            ("query".into(), "status".into(), true, json!("string")),
        ],
        "GET /orders parameters: {q:?}"
    );
    for p in ["/users/{userId}", "/users/{userId}/orders"] {
        let got: Vec<(String, String, bool)> = params(p, "get")
            .into_iter()
            .map(|(i, n, r, _)| (i, n, r))
            .collect();
        ensure!(
            got == [("path".into(), "userId".into(), true)],
            "{p}: {got:?}"
        );
    }
    ensure!(params("/health", "get").is_empty(), "{doc:#}");
    let body = &paths["/orders"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    ensure!(body["type"] == "object", "{body:#}");
    for (f, t) in [
        ("item", "string"),
        ("quantity", "integer"),
        ("express", "boolean"),
    ] {
        ensure!(body["properties"][f]["type"] == t, "{f}: {body:#}");
    }
    ensure!(
        keys(&body["properties"]) == set(&["express", "item", "quantity"]),
        "{body:#}"
    );
    ensure!(
        doc["components"]["securitySchemes"]
            == json!({
                "bearerJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKeyHeader_x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            }),
        "{doc:#}"
    );
    ensure!(paths["/users/{userId}"]["get"]["security"] == json!([{"bearerJwt": []}]));
    ensure!(paths["/orders"]["get"]["security"] == json!([{"apiKeyHeader_x-api-key": []}]));
    ensure!(paths["/orders"]["post"]["security"] == json!([{"apiKeyHeader_x-api-key": []}]));
    ensure!(paths["/health"]["get"]["security"] == json!([]));
    no_secrets("the OpenAPI document", &doc_text)?;

    // The YAML export is the same document.
    let yaml = agent.cli_ok(&["inventory", "--format", "openapi-yaml"])?;
    let yaml_path = scratch.join("inventory.openapi.yaml");
    fs::write(&yaml_path, &yaml)?;
    validate(&yaml_path)?;
    ensure!(
        yaml_to_json(&yaml_path)? == doc,
        "the YAML export differs from the JSON one:\n{yaml}\n{doc:#}"
    );

    // Metrics: the endpoint gauge, no shadow without a spec, the route label.
    check_metric(agent, "apiguard_api_endpoints", &[], 6.0)?;
    check_metric(agent, "apiguard_api_shadow_endpoints", &[], 0.0)?;
    for (route, method, n) in [
        ("/users/{userId}", "GET", 8.0),
        ("/users/{userId}/orders", "GET", 5.0),
        ("/orders", "GET", 5.0),
        ("/orders", "POST", 3.0),
        ("/health", "GET", 4.0),
        ("/internal/export", "GET", 2.0),
    ] {
        let labels = [("role", "server"), ("method", method), ("route", route)];
        check_metric(agent, "apiguard_http_requests_total", &labels, n)?;
        check_metric(
            agent,
            "apiguard_http_request_duration_seconds_count",
            &labels,
            n,
        )?;
    }

    // Offline: the same endpoints from the agent's own exchanges file.
    let offline = Command::new(agent_bin()?)
        .args(["inventory", "--format", "json", "--from-exchanges"])
        .arg(agent.exchanges_path())
        .output()?;
    ensure!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    let offline: Value = serde_json::from_slice(&offline.stdout)?;
    ensure!(
        counts(&offline) == expected_learned(&host),
        "offline: {offline:#}"
    );

    // Persistence: a clean stop writes the snapshot; a new daemon on the same state dir
    // lists the same endpoints and counts before any new traffic.
    let Env {
        mut agent,
        app,
        pair,
    } = env;
    agent.stop_cleanly()?;
    let state = agent.state_dir().to_path_buf();
    ensure!(
        state.join("inventory.json").is_file(),
        "no snapshot in {}",
        state.display()
    );
    let second = Agent::start(agent_options(app.comm(), "", Some(&state)))?;
    // (Waiting only covers a load that finishes after /healthz answers: nothing is sent.)
    let restored = wait_inventory(&second, total)?;
    ensure!(
        counts(&restored) == expected_learned(&host),
        "restored: {restored:#}"
    );
    let restored_eps = endpoints(&restored);
    for e in &eps {
        let m = e["method"].as_str().unwrap_or("");
        let t = e["template"].as_str().unwrap_or("");
        let r = endpoint(&restored_eps, m, t)?;
        for field in [
            "statuses",
            "auth",
            "query_params",
            "path_params",
            "first_seen",
            "last_seen",
        ] {
            ensure!(
                r[field] == e[field],
                "{m} {t} {field}: {} != {}",
                r[field],
                e[field]
            );
        }
    }
    let m = second.metrics()?;
    ensure!(
        m.sum("apiguard_api_endpoints", &[]) == 6.0,
        "{}",
        m.dump("apiguard_api")
    );
    drop(second);
    drop(agent);
    drop(app);
    drop(pair);
    Ok(())
}

fn agent_bin() -> Result<std::path::PathBuf> {
    integration_tests::agent::agent_binary(&AgentOptions::default())
}

/// The spec of the app, minus `/internal/export`, plus `DELETE /users/{id}` (never called).
const SPEC: &str = r#"openapi: 3.1.0
info:
  title: orders app
  version: "1.0"
paths:
  /users/{id}:
    parameters:
      - name: id
        in: path
        required: true
        schema:
          type: string
    get:
      security:
        - bearer: []
      responses:
        "200":
          description: the user
    delete:
      security:
        - bearer: []
      responses:
        "204":
          description: deleted
  /users/{id}/orders:
    get:
      parameters:
        - name: id
          in: path
          required: true
          schema:
            type: string
      security:
        - bearer: []
      responses:
        "200":
          description: the user's orders
  /orders:
    get:
      parameters:
        - name: status
          in: query
          required: true
          schema:
            type: string
            enum: [open, closed]
        - name: limit
          in: query
          required: false
          schema:
            type: integer
      security:
        - apiKey: []
      responses:
        "200":
          description: orders
    post:
      security:
        - apiKey: []
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                item:
                  type: string
                quantity:
                  type: integer
                express:
                  type: boolean
      responses:
        "201":
          description: created
  /health:
    get:
      responses:
        "200":
          description: ok
components:
  securitySchemes:
    bearer:
      type: http
      scheme: bearer
      bearerFormat: JWT
    apiKey:
      type: apiKey
      in: header
      name: X-API-Key
"#;

fn violations(agent: &Agent) -> Result<Vec<Value>> {
    Ok(agent
        .events()?
        .into_iter()
        .filter(|e| e["type"] == "spec_violation")
        .collect())
}

#[test]
fn spec_comparison_and_violation_events() -> Result<()> {
    let spec_dir = TempDir::new("discover-spec")?;
    let spec = spec_dir.join("openapi.yaml");
    fs::write(&spec, SPEC)?;
    // The spec itself is valid OpenAPI: violations below are the traffic's, not the spec's.
    validate(&spec)?;
    let env = Env::start(
        "dspec",
        &format!("[discover]\nspec = {:?}\n", spec.display().to_string()),
    )?;
    let agent = &env.agent;
    let host = env.host();
    let client_ip = env.pair.cli_ip.to_string();
    let before: Metrics = agent.metrics()?;

    // Compliant traffic first: it must produce no event at all.
    let compliant = vec![
        get("/users/1", Auth::Bearer, 200),
        get(format!("/users/{}", UUIDS[0]), Auth::Bearer, 200),
        get("/users/2/orders", Auth::Bearer, 200),
        get("/orders?status=open&limit=5", Auth::ApiKey, 200),
        get("/orders?status=closed", Auth::ApiKey, 200),
        post_order(ORDER_BODIES[0]),
        get("/health", Auth::None, 200),
    ];
    env.send(&compliant)?;
    agent.wait_for_exchanges(|e| e["role"] == "server", compliant.len(), WAIT)?;
    // The inventory has seen them (so the spec check has run on each).
    wait_inventory(agent, compliant.len() as u64)?;
    ensure!(violations(agent)?.is_empty(), "{:#?}", violations(agent)?);

    // One request per kind of violation.
    let violating = vec![
        get("/internal/export", Auth::None, 200),
        get(
            format!("/orders?status=open&limit={BAD_LIMIT}"),
            Auth::ApiKey,
            400,
        ),
        get("/orders?limit=5", Auth::ApiKey, 200),
    ];
    env.send(&violating)?;
    let total = compliant.len() + violating.len();
    agent.wait_for_exchanges(|e| e["role"] == "server", total, WAIT)?;
    let events = agent.wait_for_events(|e| e["type"] == "spec_violation", 3, WAIT)?;
    wait_inventory(agent, total as u64)?;
    let events = {
        // Nothing more arrives once the inventory has counted every request.
        let again = violations(agent)?;
        ensure!(again.len() == events.len(), "{again:#?}");
        again
    };
    ensure!(events.len() == 3, "{events:#?}");
    let want = [
        (
            "unknown_endpoint",
            "/internal/export",
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            200,
        ),
        (
            "wrong_param_type",
            "/orders",
            json!("limit"),
            json!("query"),
            json!("integer"),
            json!("GET /orders"),
            400,
        ),
        (
            "missing_required_param",
            "/orders",
            json!("status"),
            json!("query"),
            Value::Null,
            json!("GET /orders"),
            200,
        ),
    ];
    for (violation, path, param, within, expected, operation, status) in &want {
        let found: Vec<&Value> = events
            .iter()
            .filter(|e| e["violation"] == *violation)
            .collect();
        ensure!(found.len() == 1, "{violation}: {events:#?}");
        let e = found[0];
        ensure!(e["param"] == *param, "{violation} param: {e:#}");
        ensure!(e["in"] == *within, "{violation} in: {e:#}");
        ensure!(
            expected.is_null() || e["expected"] == *expected,
            "{violation} expected: {e:#}"
        );
        ensure!(e["operation"] == *operation, "{violation} operation: {e:#}");
        ensure!(e["client"]["ip"] == client_ip.as_str(), "{e:#}");
        ensure!(e["request"]["method"] == "GET", "{e:#}");
        ensure!(e["request"]["path"] == *path, "{e:#}");
        ensure!(e["request"]["pid"] == env.app.pid(), "{e:#}");
        ensure!(e["status"] == *status, "{e:#}");
        ensure!(e["tls"] == false, "{e:#}");
        ensure!(e["time"].is_string() || e["time"].is_number(), "{e:#}");
        no_secrets("a spec_violation event", &e.to_string())?;
    }
    agent.check_deltas(
        &before,
        &[
            (
                "apiguard_spec_violations_total",
                &[("violation", "unknown_endpoint")],
                1.0,
            ),
            (
                "apiguard_spec_violations_total",
                &[("violation", "wrong_param_type")],
                1.0,
            ),
            (
                "apiguard_spec_violations_total",
                &[("violation", "missing_required_param")],
                1.0,
            ),
            ("apiguard_spec_violations_total", &[], 3.0),
        ],
    )?;

    // The spec's templates name the endpoints.
    let inv = inventory(agent)?;
    let got: BTreeMap<(String, String, String), u64> = counts(&inv);
    let want = on_host(
        &host,
        &[
            ("GET", "/users/{id}", 2),
            ("GET", "/users/{id}/orders", 1),
            ("GET", "/orders", 4),
            ("POST", "/orders", 1),
            ("GET", "/health", 1),
            ("GET", "/internal/export", 1),
        ],
    );
    ensure!(got == want, "{inv:#}");

    // Shadow and unused endpoints, against the configured spec and an explicit one.
    let expected_compare = json!({
        "shadow": [{"host": host, "method": "GET", "template": "/internal/export", "count": 1}],
        "unused": [{"method": "DELETE", "template": "/users/{id}"}],
    });
    let configured: Value =
        serde_json::from_str(&agent.cli_ok(&["inventory", "--format", "compare"])?)?;
    ensure!(configured == expected_compare, "compare: {configured:#}");
    let explicit: Value = serde_json::from_str(&agent.cli_ok(&[
        "inventory",
        "--format",
        "compare",
        "--spec",
        &spec.display().to_string(),
    ])?)?;
    ensure!(explicit == expected_compare, "compare --spec: {explicit:#}");
    check_metric(agent, "apiguard_api_shadow_endpoints", &[], 1.0)?;
    check_metric(agent, "apiguard_api_endpoints", &[], 6.0)?;
    check_metric(
        agent,
        "apiguard_http_requests_total",
        &[("role", "server"), ("route", "/users/{id}")],
        2.0,
    )?;
    Ok(())
}
