//! Rate-limit policies closing the loop from HTTP exchanges to XDP drops: a server
//! namespace with a python HTTP server, two client namespaces on their own veths (both
//! guarded), curl as the clients. The agent captures only the server's pid.

use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::guard::{probe, Probe, Topology};
use integration_tests::{require_root, Agent, AgentOptions};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);
const POLICY: &str = r#"[[enforce.policies]]
name = "per-ip"
key = "client_ip"
rate = 1.0
burst = 5
action = "block"
block_secs = 60
[enforce.policies.match]
path = "/index.html"
"#;

fn start(topo: &Topology, enforce: &str) -> Result<Agent> {
    Agent::start(AgentOptions {
        config_toml: Some(topo.agent_toml(&format!("{enforce}{POLICY}"))),
        ..AgentOptions::default()
    })
}

fn is(e: &Value, kind: &str) -> bool {
    e["type"] == kind
}

/// Client 1 requests as fast as curl goes until a connection is dropped; returns how many
/// requests were answered 200 first.
fn hammer_until_dropped(topo: &Topology, max: usize) -> Result<Option<usize>> {
    for i in 0..max {
        match topo.get(true, "/index.html")? {
            Probe::Status(200) => {}
            Probe::NoConnection => return Ok(Some(i)),
            other => anyhow::bail!("client 1 request {i}: {other:?}"),
        }
    }
    Ok(None)
}

#[test]
fn ratelimit_blocks_only_the_abusive_client() -> Result<()> {
    require_root()?;
    let topo = Topology::new("rlb")?;
    let agent = start(&topo, "")?;
    let before = agent.metrics()?;
    let (c1, c2) = (topo.v1.b_ip.to_string(), topo.v2.b_ip.to_string());

    for _ in 0..2 {
        ensure!(topo.get(false, "/index.html")? == Probe::Status(200));
    }
    let answered = hammer_until_dropped(&topo, 60)?;
    let Some(answered) = answered else {
        anyhow::bail!("client 1 was never blocked\n{}", agent.diagnostics());
    };
    // The burst conforms; the block lands within a few requests of the first breach.
    ensure!(
        (5..=12).contains(&answered),
        "client 1 got {answered} answers before the drop"
    );

    let blocks = agent.wait_for_events(|e| is(e, "block"), 1, WAIT)?;
    let b = &blocks[0];
    ensure!(b["target"] == c1.as_str(), "{b}");
    ensure!(b["reason"] == "ratelimit" && b["policy"] == "per-ip", "{b}");
    ensure!(b["enforced"] == true && b["duration_secs"] == 60, "{b}");
    ensure!(b["client"]["ip"] == c1.as_str(), "{b}");
    ensure!(b["request"]["path"] == "/index.html", "{b}");
    ensure!(b["request"]["pid"] == topo.server.pid(), "{b}");

    // Client 2 is untouched, client 1 stays out.
    for _ in 0..2 {
        ensure!(topo.get(false, "/index.html")? == Probe::Status(200));
    }
    ensure!(topo.get(true, "/index.html")? == Probe::NoConnection);

    let list = agent.blocks()?;
    ensure!(list.len() == 1, "blocks: {list:?}");
    let entry = &list[0];
    ensure!(
        entry["target"] == c1.as_str() && entry["reason"] == "ratelimit",
        "{entry}"
    );
    ensure!(entry["policy"] == "per-ip", "{entry}");
    let expires = entry["expires_in_secs"].as_f64().unwrap_or(0.0);
    ensure!((40.0..=60.0).contains(&expires), "{entry}");
    let hits = entry["hits"].as_u64().unwrap_or(0);
    ensure!(hits >= 2, "at least the two dropped SYNs: {entry}");

    let drops = agent.wait_metric(
        "apiguard_xdp_packets_total",
        &[("action", "drop"), ("reason", "blocklist")],
        |v| v >= hits as f64,
        WAIT,
    )?;
    ensure!(drops >= hits as f64, "drop counter {drops} < hits {hits}");
    agent.check_deltas(
        &before,
        &[
            ("apiguard_blocks_total", &[("reason", "ratelimit")], 1.0),
            ("apiguard_blocked_clients", &[], 1.0),
            ("apiguard_would_block_total", &[], 0.0),
        ],
    )?;
    let exceeded = agent.metric("apiguard_ratelimit_exceeded_total", &[("policy", "per-ip")])?;
    ensure!(exceeded >= 1.0, "exceeded {exceeded}");
    let events = agent.events()?;
    ensure!(
        events.iter().filter(|e| is(e, "block")).count() == 1,
        "exactly one block event: {events:?}"
    );
    ensure!(
        !events.iter().any(|e| e["client"]["ip"] == c2.as_str()),
        "no event about client 2: {events:?}"
    );
    Ok(())
}

#[test]
fn dry_run_reports_what_it_would_block() -> Result<()> {
    require_root()?;
    let topo = Topology::new("rld")?;
    let agent = start(&topo, "[enforce]\nmode = \"dry-run\"\n")?;
    let before = agent.metrics()?;
    let c1 = topo.v1.b_ip.to_string();
    ensure!(
        hammer_until_dropped(&topo, 20)?.is_none(),
        "dry-run dropped"
    );
    let would = agent.wait_for_events(|e| is(e, "would_block"), 1, WAIT)?;
    let w = &would[0];
    ensure!(
        w["target"] == c1.as_str() && w["reason"] == "ratelimit",
        "{w}"
    );
    ensure!(w["policy"] == "per-ip" && w["enforced"] == false, "{w}");
    // Reported once per block period, not per request.
    std::thread::sleep(Duration::from_millis(500));
    let events = agent.events()?;
    ensure!(
        events.iter().filter(|e| is(e, "would_block")).count() == 1
            && !events.iter().any(|e| is(e, "block")),
        "{events:?}"
    );
    ensure!(agent.blocks()?.is_empty());
    agent.check_deltas(
        &before,
        &[
            (
                "apiguard_would_block_total",
                &[("reason", "ratelimit")],
                1.0,
            ),
            ("apiguard_blocks_total", &[], 0.0),
            ("apiguard_xdp_packets_total", &[("action", "drop")], 0.0),
        ],
    )?;
    // 20 requests at burst 5: the rest exceeded the policy and were counted.
    let exceeded = agent.metric("apiguard_ratelimit_exceeded_total", &[("policy", "per-ip")])?;
    ensure!((10.0..=15.0).contains(&exceeded), "exceeded {exceeded}");
    Ok(())
}

#[test]
fn allowlisted_clients_and_trusted_proxies_are_never_blocked() -> Result<()> {
    require_root()?;
    let topo = Topology::new("rla")?;
    let (c1, c2) = (topo.v1.b_ip.to_string(), topo.v2.b_ip.to_string());
    let agent = start(
        &topo,
        &format!("[enforce]\nallowlist = [\"{c1}\"]\ntrusted_proxies = [\"{c2}/32\"]\n"),
    )?;
    let before = agent.metrics()?;

    ensure!(
        hammer_until_dropped(&topo, 15)?.is_none(),
        "allowlisted client dropped"
    );
    // Client 2 is a proxy forwarding for 203.0.113.7 (and a spoofed hop left of it).
    let xff = "X-Forwarded-For: 198.51.100.1, 203.0.113.7";
    for i in 0..15 {
        let p = probe(&topo.c2, &topo.url(false, "/index.html"), &[xff], WAIT)?;
        ensure!(p == Probe::Status(200), "proxied request {i}: {p:?}");
    }
    // The agent judges an exchange once its response is complete, a moment after the client
    // has it: wait until all 30 are through enforcement (which runs before they are counted).
    agent.wait_metric(
        "apiguard_http_requests_total",
        &[("role", "server")],
        |n| n >= 30.0,
        Duration::from_secs(10),
    )?;

    let events = agent.events()?;
    let exceeded: Vec<&Value> = events
        .iter()
        .filter(|e| is(e, "ratelimit_exceeded"))
        .collect();
    let allowlisted = exceeded
        .iter()
        .filter(|e| e["client"]["ip"] == c1.as_str())
        .inspect(|e| assert!(e["note"] == "client is allowlisted", "{e}"))
        .count();
    let proxied = exceeded
        .iter()
        .filter(|e| e["client"]["ip"] == "203.0.113.7")
        .inspect(|e| {
            assert!(e["client"]["via_proxy"] == c2.as_str(), "{e}");
            assert!(
                e["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("behind a trusted proxy")),
                "{e}"
            );
        })
        .count();
    ensure!(allowlisted >= 8 && proxied >= 8, "{events:?}");
    ensure!(exceeded.len() == allowlisted + proxied, "{events:?}");
    ensure!(!events.iter().any(|e| is(e, "block")), "{events:?}");
    let counted = agent.metric("apiguard_ratelimit_exceeded_total", &[("policy", "per-ip")])?;
    ensure!(
        counted == exceeded.len() as f64,
        "{counted} vs {}",
        exceeded.len()
    );

    // Neither can be blocked by hand either.
    for (target, why) in [(&c1, "allowlist"), (&c2, "trusted proxy")] {
        let run = agent.cli(&["block", target, "--for", "1m"])?;
        ensure!(!run.status.success(), "block {target} succeeded");
        ensure!(run.stderr_text().contains(why), "{}", run.stderr_text());
    }
    ensure!(agent.blocks()?.is_empty());
    agent.check_deltas(
        &before,
        &[
            ("apiguard_blocks_total", &[], 0.0),
            ("apiguard_xdp_packets_total", &[("action", "drop")], 0.0),
        ],
    )?;
    Ok(())
}
