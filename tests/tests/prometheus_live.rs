//! A real Prometheus (Debian's package, an instance of the test's own on a free loopback
//! port) scrapes a running agent that guards a server with XDP. After known traffic —
//! benign requests, attacks that become detections, a manual block whose client then
//! keeps trying — Prometheus' HTTP API must report the request, detection, block and drop
//! series with exactly the values the agent's own /metrics shows, and those must be what
//! was sent. Finally the scrape target must be `up`.

use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::guard::{Probe, Topology};
use integration_tests::prometheus::{Prometheus, JOB};
use integration_tests::{require_root, Agent, AgentOptions};
use serde_json::Value;

/// Bound for every wait: events, exchanges, and Prometheus catching up with a scrape.
const WAIT: Duration = Duration::from_secs(20);
/// Benign requests from client 2.
const BENIGN: usize = 25;
/// Connection attempts from the blocked client.
const ATTEMPTS: usize = 4;

/// `(query, kind, location)`: attacks whose single finding is known (detect_live.rs).
const ATTACKS: &[(&str, &str, &str)] = &[
    ("id=1%27%20OR%20%271%27%3D%271", "sqli", "query:id"),
    (
        "user=1%20UNION%20SELECT%20username,password%20FROM%20users--",
        "sqli",
        "query:user",
    ),
    (
        "q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E",
        "xss",
        "query:q",
    ),
];

/// One GET with curl from client 1 or 2; the status (0 when no connection was made).
fn get(topo: &Topology, c1: bool, path: &str) -> Result<u16> {
    Ok(match topo.get(c1, path)? {
        Probe::Status(code) => code,
        Probe::NoConnection => 0,
    })
}

/// Polls until Prometheus' `promql` equals the agent's own `name{labels}` sum at that
/// moment and `want` holds for it; returns the agreed value. Fails with both values.
fn agree(
    prom: &Prometheus,
    agent: &Agent,
    promql: &str,
    name: &str,
    labels: &[(&str, &str)],
    want: impl Fn(f64) -> bool,
) -> Result<f64> {
    let mut own = f64::NAN;
    let seen = prom.wait_value(
        promql,
        |v| {
            own = agent.metric(name, labels)?;
            Ok(v == Some(own) && want(own))
        },
        WAIT,
    )?;
    ensure!(
        seen == Some(own) && want(own),
        "{promql}: Prometheus has {seen:?}, the agent's /metrics {own} \
         (not equal, or not the expected value)\n{}",
        agent.diagnostics()
    );
    Ok(own)
}

#[test]
fn prometheus_scrapes_requests_detections_blocks_and_drops() -> Result<()> {
    require_root()?;
    let topo = Topology::new("prom")?;
    let agent = Agent::start(AgentOptions {
        config_toml: Some(topo.agent_toml("")),
        ..AgentOptions::default()
    })?;
    let prom = Prometheus::start(&[agent.metrics_addr()], Duration::from_secs(1))?;
    let instance = agent.metrics_addr().to_string();
    let c1 = topo.v1.b_ip.to_string();

    // Prometheus scrapes the agent before any traffic: the target is up and no request
    // has been counted yet.
    let up = format!("up{{job=\"{JOB}\"}}");
    let first = prom.wait_value(&up, |v| Ok(v == Some(1.0)), WAIT)?;
    ensure!(first == Some(1.0), "{up} before traffic: {first:?}");

    // Benign traffic from client 2, then attacks from client 1.
    for i in 0..BENIGN {
        let status = get(
            &topo,
            false,
            &format!("/index.html?page={i}&sort=price_asc"),
        )?;
        ensure!(status == 200, "benign request {i}: {status}");
    }
    for (query, kind, _) in ATTACKS {
        let status = get(&topo, true, &format!("/index.html?{query}"))?;
        ensure!(status == 200, "{kind} attack {query}: {status}");
    }
    let sent = BENIGN + ATTACKS.len();
    agent.wait_for_exchanges(|e| e["role"] == "server", sent, WAIT)?;
    let detections = agent.wait_for_events(|e| e["type"] == "detection", ATTACKS.len(), WAIT)?;
    for (query, kind, location) in ATTACKS {
        let found = detections
            .iter()
            .filter(|e| e["kind"] == *kind && e["location"] == *location)
            .count();
        ensure!(
            found == 1,
            "{query}: {found} {kind} findings at {location}: {detections:#?}"
        );
    }
    ensure!(
        detections.len() == ATTACKS.len(),
        "unexpected findings: {detections:#?}"
    );

    // A manual block of client 1 at XDP; its connection attempts go unanswered.
    let out = agent.cli_ok(&["block", &c1, "--for", "10m", "--reason", "prometheus test"])?;
    ensure!(out.trim() == format!("{c1}: blocked"), "{out}");
    for i in 0..ATTEMPTS {
        ensure!(
            topo.get(true, "/index.html")? == Probe::NoConnection,
            "attempt {i} of the blocked client was answered"
        );
    }
    // Client 2 is still served: one more request.
    ensure!(get(&topo, false, "/index.html?after=block")? == 200);
    let requests = sent + 1;
    agent.wait_for_exchanges(|e| e["role"] == "server", requests, WAIT)?;

    // Prometheus has scraped it all, and agrees with the agent and with what was sent.
    let total = agree(
        &prom,
        &agent,
        "sum(apiguard_http_requests_total{role=\"server\"})",
        "apiguard_http_requests_total",
        &[("role", "server")],
        |v| v == requests as f64,
    )?;
    let ok = agree(
        &prom,
        &agent,
        "sum(apiguard_http_requests_total{role=\"server\",status=\"200\",method=\"GET\"})",
        "apiguard_http_requests_total",
        &[("role", "server"), ("status", "200"), ("method", "GET")],
        |v| v == requests as f64,
    )?;
    let count = |kind: &str| ATTACKS.iter().filter(|(_, k, _)| *k == kind).count() as f64;
    let sqli = agree(
        &prom,
        &agent,
        "sum(apiguard_detections_total{kind=\"sqli\"})",
        "apiguard_detections_total",
        &[("kind", "sqli")],
        |v| v == count("sqli"),
    )?;
    let xss = agree(
        &prom,
        &agent,
        "sum(apiguard_detections_total{kind=\"xss\"})",
        "apiguard_detections_total",
        &[("kind", "xss")],
        |v| v == count("xss"),
    )?;
    let all_detections = agree(
        &prom,
        &agent,
        "sum(apiguard_detections_total)",
        "apiguard_detections_total",
        &[],
        |v| v == ATTACKS.len() as f64,
    )?;
    let blocks = agree(
        &prom,
        &agent,
        "sum(apiguard_blocks_total{reason=\"manual\"})",
        "apiguard_blocks_total",
        &[("reason", "manual")],
        |v| v == 1.0,
    )?;
    let blocked = agree(
        &prom,
        &agent,
        "sum(apiguard_blocked_clients)",
        "apiguard_blocked_clients",
        &[],
        |v| v == 1.0,
    )?;
    let drops = agree(
        &prom,
        &agent,
        "sum(apiguard_xdp_packets_total{action=\"drop\",reason=\"blocklist\"})",
        "apiguard_xdp_packets_total",
        &[("action", "drop"), ("reason", "blocklist")],
        |v| v >= ATTEMPTS as f64,
    )?;
    let all_drops = agree(
        &prom,
        &agent,
        "sum(apiguard_xdp_packets_total{action=\"drop\"})",
        "apiguard_xdp_packets_total",
        &[("action", "drop")],
        |v| v >= ATTEMPTS as f64,
    )?;
    ensure!(
        all_drops == drops,
        "drops other than blocklist: {all_drops}"
    );

    // The series carry the scrape's own labels and the agent's, one per severity.
    let series = prom.query("apiguard_detections_total{kind=\"sqli\"}")?;
    ensure!(!series.is_empty(), "no sqli series");
    for s in &series {
        ensure!(
            s.label("job") == Some(JOB) && s.label("instance") == Some(instance.as_str()),
            "{s:?}"
        );
        ensure!(s.label("severity").is_some_and(|v| !v.is_empty()), "{s:?}");
    }
    ensure!(series.iter().map(|s| s.value).sum::<f64>() == sqli);

    // The target is healthy: `up == 1` and the targets API says so.
    let up_now = prom.value(&up)?;
    ensure!(up_now == Some(1.0), "{up}: {up_now:?}");
    let targets = prom.active_targets()?;
    ensure!(targets.len() == 1, "targets: {targets:#?}");
    let t: &Value = &targets[0];
    ensure!(t["health"] == "up", "{t:#}");
    ensure!(
        t["scrapeUrl"] == format!("http://{instance}/metrics").as_str(),
        "{t:#}"
    );
    ensure!(t["lastError"] == "", "{t:#}");
    eprintln!(
        "prometheus agrees with the agent: requests {total} (GET 200: {ok}), detections \
         {all_detections} (sqli {sqli}, xss {xss}), manual blocks {blocks}, blocked clients \
         {blocked}, XDP drops {drops} for {ATTEMPTS} attempts"
    );

    let mut prom = prom;
    prom.stop()?;
    Ok(())
}
