//! Verdicts at request time: content is judged as soon as a request is complete, not when
//! its answer ends. Against a server that takes 2 s to answer, and one that streams events
//! for 5 s, a critical finding blocks the client at XDP before the answer starts (the block
//! event precedes the server's first answer byte), and the stream stalls: the client's
//! acknowledgements are dropped, so the server cannot send more than its congestion window.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::guard::{Probe, Topology};
use integration_tests::slow::{timed_get, SlowServer, STREAM_EVENTS};
use integration_tests::{require_root, unique_port, Agent, AgentOptions};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);
const SQLI: &str = "id=1%20UNION%20SELECT%20username,password%20FROM%20users--";

fn block_of<'a>(events: &'a [Value], client: &str) -> Option<&'a Value> {
    events
        .iter()
        .find(|e| e["type"] == "block" && e["target"] == client)
}

#[test]
fn a_critical_finding_blocks_before_a_slow_answer_and_stalls_a_stream() -> Result<()> {
    require_root()?;
    let topo = Topology::new("drt")?;
    let port = unique_port()?;
    let slow = SlowServer::start(&topo.srv, SocketAddr::new("::".parse()?, port))?;
    let agent = Agent::start(AgentOptions {
        config_toml: Some(format!(
            "[capture]\npids = [{}]\n{}",
            slow.pid(),
            topo.xdp_toml("[detect]\nblock_severity = \"critical\"\nblock_secs = 60\n")
        )),
        ..AgentOptions::default()
    })?;
    let (c1, c2) = (topo.v1.b_ip.to_string(), topo.v2.b_ip.to_string());
    let at = |c1: bool| {
        let ip = if c1 { topo.v1.a_ip } else { topo.v2.a_ip };
        SocketAddr::new(ip.into(), port)
    };

    // 1. A reply that takes 2 s: the block lands while the server is still working on it.
    let answer = timed_get(
        &topo.c1,
        at(true),
        &format!("/slow?{SQLI}"),
        Duration::from_secs(4),
    )?;
    let events = agent.wait_for_events(|e| e["type"] == "block", 1, WAIT)?;
    let block = block_of(&events, &c1).cloned().unwrap_or_default();
    let answered = slow.answered_at("/slow").unwrap_or_default();
    eprintln!(
        "slow: request sent {}, block {}, server answered {}, first byte at the client {:?}",
        answer.sent,
        block["time"],
        answered,
        answer.chunks.first()
    );
    ensure!(
        block["reason"] == "detection",
        "block: {block}\n{events:#?}"
    );
    let block_time = block["time"].as_str().unwrap_or_default();
    ensure!(
        !answered.is_empty() && answer.sent.as_str() < block_time && block_time < answered.as_str(),
        "the block must come between the request ({}) and the answer ({answered}): {block}",
        answer.sent
    );
    let detection = agent
        .events()?
        .into_iter()
        .find(|e| e["type"] == "detection" && e["client"]["ip"] == c1.as_str())
        .unwrap_or_default();
    ensure!(
        detection["severity"] == "critical" && detection["location"] == "query:id",
        "{detection}"
    );
    ensure!(topo.get(true, "/index.html")? == Probe::NoConnection);

    // 2. An event stream of 5 s: blocked at its first request, the stream stalls.
    let stream = timed_get(
        &topo.c2,
        at(false),
        &format!("/stream?{SQLI}"),
        Duration::from_secs(7),
    )?;
    let events = agent.wait_for_events(|e| e["type"] == "block", 2, WAIT)?;
    let block = block_of(&events, &c2).cloned().unwrap_or_default();
    let answered = slow.answered_at("/stream").unwrap_or_default();
    eprintln!(
        "stream: request sent {}, block {}, server answered {}, events received {} of {STREAM_EVENTS}, pieces {:?}",
        stream.sent,
        block["time"],
        answered,
        stream.events(),
        stream.chunks
    );
    let block_time = block["time"].as_str().unwrap_or_default();
    ensure!(
        !block_time.is_empty() && stream.sent.as_str() < block_time,
        "block: {block}"
    );
    ensure!(
        !stream.closed && stream.events() < STREAM_EVENTS,
        "the stream was not cut: {} events, closed {}",
        stream.events(),
        stream.closed
    );
    // The exchanges still end (at close or idle expiry) and are not judged twice.
    let detections = agent
        .events()?
        .into_iter()
        .filter(|e| e["type"] == "detection" && e["kind"] == "sqli")
        .count();
    ensure!(detections == 2, "{detections} sqli detections");
    Ok(())
}
