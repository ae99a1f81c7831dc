//! Configuration reload (issue 7): the running daemon takes a changed config file on SIGHUP
//! and when the file changes, without detaching anything — a deny entry added and lifted at
//! XDP, a detection threshold turned on — and rejects an invalid file, keeping the running
//! configuration (logged and counted). Sections sized at start are reported as needing a
//! restart.

use std::{fs, time::Duration};

use anyhow::{ensure, Result};
use integration_tests::guard::{Probe, Topology};
use integration_tests::util::wait_until;
use integration_tests::{require_root, Agent, AgentOptions};

const WAIT: Duration = Duration::from_secs(10);

/// Waits until the daemon's log has a line containing `text`.
fn logged(agent: &Agent, text: &str) -> Result<()> {
    wait_until(text, WAIT, Duration::from_millis(50), || {
        Ok(agent.stderr_text().contains(text).then_some(()))
    })
}

fn reloads(agent: &Agent, result: &str) -> Result<f64> {
    agent.metric("apiguard_config_reloads_total", &[("result", result)])
}

/// Rewrites the config and waits until the daemon has counted one more reload `result`.
fn rewrite(agent: &Agent, toml: &str, result: &str, hup: bool) -> Result<()> {
    let before = reloads(agent, result)?;
    fs::write(agent.config_path(), toml)?;
    if hup {
        agent.signal(libc::SIGHUP)?;
    }
    agent.wait_metric(
        "apiguard_config_reloads_total",
        &[("result", result)],
        |v| v >= before + 1.0,
        WAIT,
    )?;
    Ok(())
}

#[test]
fn reload_applies_enforce_and_detect_and_rejects_invalid_files() -> Result<()> {
    require_root()?;
    let topo = Topology::new("crl")?;
    let (c1, c2) = (topo.v1.b_ip.to_string(), topo.v2.b_ip.to_string());
    let base = topo.agent_toml("");
    let agent = Agent::start(AgentOptions {
        config_toml: Some(base.clone()),
        ..AgentOptions::default()
    })?;
    let hooks_before = agent.metric("apiguard_xdp_interfaces_attached", &[])?;
    ensure!(topo.get(true, "/index.html")? == Probe::Status(200));

    // SIGHUP: a deny entry for client 1 is put in force at XDP.
    let deny = format!("{base}[enforce]\ndeny = [\"{c1}\"]\n");
    rewrite(&agent, &deny, "ok", true)?;
    ensure!(topo.get(true, "/index.html")? == Probe::NoConnection);
    ensure!(topo.get(false, "/index.html")? == Probe::Status(200));
    let blocks = agent.blocks()?;
    ensure!(
        blocks.len() == 1 && blocks[0]["target"] == c1.as_str() && blocks[0]["reason"] == "config",
        "{blocks:?}"
    );

    // An invalid file (the deny entry also allowlisted) is rejected without a signal, just by
    // changing: the deny stays in force.
    let invalid = format!("{base}[enforce]\ndeny = [\"{c1}\"]\nallowlist = [\"{c1}\"]\n");
    rewrite(&agent, &invalid, "error", false)?;
    ensure!(topo.get(true, "/index.html")? == Probe::NoConnection);
    logged(&agent, "Configuration reload rejected")?;
    ensure!(
        agent.stderr_text().contains("enforce.deny"),
        "the rejection names the field:\n{}",
        agent.stderr_tail(10)
    );

    // A valid change again, picked up from the file alone: the deny entry goes (an unblock
    // event says why), a detection threshold comes, and a section sized at start is reported.
    let next = format!(
        "{}[detect]\nblock_severity = \"critical\"\nblock_secs = 60\n",
        base.replace("[capture]\n", "[capture]\nmax_capture_bytes = 8192\n")
    );
    rewrite(&agent, &next, "ok", false)?;
    let unblocks = agent.wait_for_events(|e| e["type"] == "unblock", 1, WAIT)?;
    ensure!(
        unblocks[0]["target"] == c1.as_str() && unblocks[0]["reason"] == "config",
        "{}",
        unblocks[0]
    );
    ensure!(topo.get(true, "/index.html")? == Probe::Status(200));
    ensure!(agent.blocks()?.is_empty(), "{:?}", agent.blocks()?);
    logged(&agent, "takes effect after a restart")?;
    ensure!(
        agent.stderr_text().contains("section=\"capture\"")
            || agent.stderr_text().contains("section=capture"),
        "{}",
        agent.stderr_tail(10)
    );

    // The new detect threshold is live: a critical finding from client 2 now blocks it.
    let sqli = "/index.html?id=1%20UNION%20SELECT%20username,password%20FROM%20users--";
    ensure!(topo.get(false, sqli)? == Probe::Status(200));
    let blocks = agent.wait_for_events(|e| e["type"] == "block", 1, WAIT)?;
    ensure!(
        blocks[0]["target"] == c2.as_str() && blocks[0]["reason"] == "detection",
        "{}",
        blocks[0]
    );
    ensure!(topo.get(false, "/index.html")? == Probe::NoConnection);

    // Nothing was detached along the way, and the counts are exact.
    ensure!(agent.metric("apiguard_xdp_interfaces_attached", &[])? == hooks_before);
    ensure!(reloads(&agent, "ok")? == 2.0);
    ensure!(reloads(&agent, "error")? == 1.0);
    let status = agent.cli_ok(&["status", "--json"])?;
    let status: serde_json::Value = serde_json::from_str(&status)?;
    ensure!(
        status["config_reloads"] == 2 && status["config_reload_errors"] == 1,
        "{status}"
    );
    ensure!(status["blocks"] == 1, "{status}");
    ensure!(status["mode"] == "enforce", "{status}");
    let ifaces = status["xdp_interfaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(
        ifaces.len() == 2 && ifaces.iter().all(|i| i["ifindex"].as_u64() > Some(0)),
        "{status}"
    );
    let hooks = status["hooks"].as_array().cloned().unwrap_or_default();
    ensure!(
        hooks.iter().any(|h| h["attached"] == true)
            && hooks
                .iter()
                .all(|h| h["attached"] == true || h["error"].is_string()),
        "{status}"
    );
    ensure!(
        status["config"].as_str() == agent.config_path().to_str(),
        "{status}"
    );
    Ok(())
}

/// Distinct clients of an inventory endpoint: a number, or the HyperLogLog registers (each
/// of a few clients sets its own register).
fn distinct_clients(clients: &serde_json::Value) -> Option<u64> {
    match clients {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::Object(m) => Some(
            m.get("registers")?
                .as_array()?
                .iter()
                .filter(|x| x.as_u64() != Some(0))
                .count() as u64,
        ),
        _ => None,
    }
}

/// Client identity is computed once per exchange and every consumer sees the same one, also
/// after a reload: once client 1 becomes a trusted proxy, the forwarded addresses are the
/// clients for discovery (distinct clients per endpoint) and detection (the event's client)
/// alike.
#[test]
fn reload_of_trusted_proxies_reaches_every_consumer() -> Result<()> {
    require_root()?;
    let topo = Topology::new("cri")?;
    let c1 = topo.v1.b_ip.to_string();
    let base = topo.agent_toml("");
    let agent = Agent::start(AgentOptions {
        config_toml: Some(base.clone()),
        ..AgentOptions::default()
    })?;
    let forwarded = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];
    let send = |path: &str| -> Result<()> {
        for ip in forwarded {
            let header = format!("X-Forwarded-For: {ip}");
            let got = integration_tests::guard::probe(
                &topo.c1,
                &topo.url(true, path),
                &[header.as_str()],
                Duration::from_millis(500),
            )?;
            ensure!(got == Probe::Status(404), "{path} from {ip}: {got:?}");
        }
        Ok(())
    };
    let clients_of = |path: &str| -> Result<Option<u64>> {
        let text = agent.cli_ok(&["inventory", "--format", "json"])?;
        let inv: serde_json::Value = serde_json::from_str(&text)?;
        let eps = inv["endpoints"].as_array().cloned().unwrap_or_default();
        Ok(eps
            .iter()
            .find(|e| e["template"] == path && e["count"].as_u64() == Some(3))
            .and_then(|e| distinct_clients(&e["clients"])))
    };
    let wait_clients = |path: &str| -> Result<u64> {
        wait_until(
            &format!("3 requests to {path} in the inventory"),
            WAIT,
            Duration::from_millis(50),
            || clients_of(path),
        )
    };

    // Not trusted yet: the peer is the client, whatever the header says.
    send("/before")?;
    ensure!(wait_clients("/before")? == 1);

    let trusted = format!("{base}[identity]\ntrusted_proxies = [\"{c1}/32\"]\n");
    rewrite(&agent, &trusted, "ok", true)?;
    send("/after")?;
    ensure!(
        wait_clients("/after")? == 3,
        "discovery still counts the proxy as the client"
    );
    // Detection names the forwarded client and the proxy it came through.
    let sqli = "/x?id=1%20UNION%20SELECT%20username,password%20FROM%20users--";
    let header = "X-Forwarded-For: 203.0.113.9";
    integration_tests::guard::probe(
        &topo.c1,
        &topo.url(true, sqli),
        &[header],
        Duration::from_millis(500),
    )?;
    let found = agent.wait_for_events(|e| e["type"] == "detection", 1, WAIT)?;
    ensure!(
        found[0]["client"]["ip"] == "203.0.113.9" && found[0]["client"]["via_proxy"] == c1.as_str(),
        "{}",
        found[0]
    );
    Ok(())
}
