//! `api-guard floor --drain` (the overhead bench's `drain` step): the agent's own programs
//! capture a real server's traffic for its pid and the reader drains every record, with
//! nothing dropped: its report counts at least the payload the server sent, not the client's
//! side, and the kernel's drop counters stay 0.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use integration_tests::agent::agent_binary;
use integration_tests::util::{die_with_parent, signal_and_wait};
use integration_tests::{
    require_root, unique_port, veth_pair, AgentOptions, Curl, Netns, PyHttpServer,
};

const REQUESTS: usize = 20;
const BODY: usize = 4000;

#[test]
fn drain_counts_the_servers_records_and_drops_none() -> Result<()> {
    require_root()?;
    let started = Instant::now();
    let ns_srv = Netns::new("agdrain-srv")?;
    let ns_cli = Netns::new("agdrain-cli")?;
    let (ip_srv, _) = veth_pair(&ns_srv, &ns_cli)?;
    let server = PyHttpServer::start(
        &ns_srv,
        SocketAddr::new(ip_srv.into(), unique_port()?),
        &[("blob", BODY)],
    )?;

    let bin = agent_binary(&AgentOptions::default())?;
    let mut cmd = Command::new(bin);
    cmd.args(["floor", "--drain", "--pid", &server.pid().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    die_with_parent(&mut cmd, libc::SIGTERM);
    let mut drain = cmd.spawn().context("starting api-guard floor --drain")?;
    let mut stdout = BufReader::new(drain.stdout.take().context("drain stdout")?);
    let mut ready = String::new();
    stdout.read_line(&mut ready)?;
    ensure!(
        ready.starts_with("floor ready: drain"),
        "the drain did not start: {ready:?}"
    );
    println!("{}", ready.trim());

    let mut curl = Curl::new(&ns_cli);
    for _ in 0..REQUESTS {
        curl = curl.url(server.url("/blob"));
    }
    let run = curl.run()?;
    let downloaded: u64 = run.transfers.iter().map(|t| t.size_download()).sum();
    ensure!(
        run.transfers.len() == REQUESTS && downloaded == (REQUESTS * BODY) as u64,
        "curl fetched {} bodies, {downloaded} bytes",
        run.transfers.len()
    );

    // SIGTERM: the reader drains what is left in the ring, then the report is printed.
    let status = signal_and_wait(&mut drain, libc::SIGTERM, Duration::from_secs(10))?;
    ensure!(status.success(), "the drain exited with {status}");
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    println!("{}", line.trim());
    let report: serde_json::Value = serde_json::from_str(
        line.strip_prefix("floor drained: ")
            .with_context(|| format!("no report: {line:?}"))?,
    )?;
    let field = |v: &serde_json::Value| v.as_u64().context("a count");
    let (records, bytes) = (field(&report["records"])?, field(&report["bytes"])?);
    let kernel = |stat: &str| field(&report["kernel"][stat]);
    for stat in [
        "RingbufFull",
        "ConnTableFull",
        "StashTableFull",
        "ReadFail",
        "LostBytes",
    ] {
        ensure!(kernel(stat)? == 0, "{stat} {}: {report}", kernel(stat)?);
    }
    ensure!(
        kernel("EventsSubmitted")? == records,
        "every record submitted is drained: {report}"
    );
    // Each request's response carries the body; the client's side (curl is not captured)
    // would double the bytes.
    let payload = (REQUESTS * BODY) as u64;
    ensure!(
        bytes >= payload && bytes < 2 * payload,
        "drained {bytes} bytes for {payload} bytes of bodies sent by the server: {report}"
    );
    ensure!(
        records >= 2 * REQUESTS as u64,
        "at least a request and a response record per request: {report}"
    );
    println!(
        "{records} records, {bytes} bytes drained for {REQUESTS} requests of {BODY} bytes in {:?}",
        started.elapsed()
    );
    Ok(())
}
