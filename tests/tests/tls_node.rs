//! HTTPS served by node, whose OpenSSL is linked statically into `/usr/bin/node`, to
//! curl (system libssl.so.3). node starts only after the agent is running: the agent must
//! discover the new process and hook the executable itself, which
//! `apiguard_tls_probes_attached{library="/usr/bin/node"}` shows, before any request is
//! sent. Then one curl run makes five requests (GET, 404, POST, HEAD, 3 MiB) on one
//! keep-alive connection, checked exactly at both ends.
//!
//! The agent captures the comms `node` and this test's unique curl comm; exchanges are
//! selected by pid. node is part of the machine image: without it the test fails.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use integration_tests::exchange::of_pid;
use integration_tests::procfs::mapped_path;
use integration_tests::servers::{require_node, NODE};
use integration_tests::tls::{
    check_curl_mix, check_tls_only, linked_library, stop_expecting_tls_exchanges,
    wait_probes_attached, End, LIBSSL, MIX_FILES, PROBES_ATTACHED,
};
use integration_tests::util::{unique_comm, which};
use integration_tests::{
    require_root, Agent, AgentOptions, CurlExe, NetPair, NodeHttpsServer, TlsCert,
};

/// How long the agent may take to hook an executable after a process starts running it.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Pids of the processes currently running `exe`.
fn running(exe: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == Path::new(exe)))
        .collect()
}

#[test]
fn node_https_server_started_after_the_agent() -> Result<()> {
    require_root()?;
    require_node()?;
    let cert = TlsCert::generate("api-guard-test")?;
    let net = NetPair::new("agtls-node")?;
    let listen = net.server_addr()?;
    let curl_exe = CurlExe::with_comm(&unique_comm("agtn"))?;
    let libssl = linked_library(&which("curl")?, LIBSSL)?;
    let mut agent = Agent::start(AgentOptions::comms_only(&["node", curl_exe.comm()]))?;
    wait_probes_attached(&agent, &libssl, Duration::from_secs(1))?;

    // Nothing runs node yet (unless something else on the host does), so nothing in it
    // is hooked: the probes counted below come from discovering the new process.
    let others = running(NODE);
    let probes_before = agent.metric(PROBES_ATTACHED, &[("library", NODE)])?;
    if others.is_empty() {
        ensure!(
            probes_before == 0.0,
            "{NODE} is hooked ({probes_before} probes) although no process runs it\n{}",
            agent.diagnostics()
        );
    } else {
        println!("note: {NODE} already runs as {others:?}; {probes_before} probes before ours");
    }

    let started = Instant::now();
    let node = NodeHttpsServer::start(&net.srv, listen, &MIX_FILES, &cert)?;
    let mapped = mapped_path(node.pid(), "node")?;
    ensure!(mapped == NODE, "node maps its executable as {mapped}");
    let probes = wait_probes_attached(&agent, NODE, DISCOVERY_TIMEOUT)?;
    println!(
        "{probes} uprobes attached in {NODE} {:?} after spawning node (pid {})",
        started.elapsed(),
        node.pid()
    );
    let before = agent.metrics()?;

    let server = End {
        pid: node.pid(),
        comm: node.comm().into(),
        library: Some(NODE.into()),
    };
    let statuses = [200, 404, 200, 200, 200];
    let (_, cli) = check_curl_mix(
        &agent, &net.cli, &curl_exe, &server, listen, statuses, &libssl,
    )?;
    check_tls_only(&agent, &before, listen, 5)?;

    let curl_pid = cli[0]["pid"].clone();
    stop_expecting_tls_exchanges(
        &mut agent,
        |e| of_pid(node.pid())(e) || e["pid"] == curl_pid,
        10,
    )?;
    ensure!(node.is_running(), "node died");
    Ok(())
}
