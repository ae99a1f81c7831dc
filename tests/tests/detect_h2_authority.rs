//! HTTP/2 names its host in `:authority`, not a Host field: the Host rules judge it too. A
//! remote curl (`--http2` over TLS to hypercorn) that names the server `127.0.0.1` (DNS
//! rebinding, a bypass of "localhost is trusted") gets exactly one `protocol.host_local`
//! finding at `header::authority`; the same request naming the server by its address gets
//! none.

use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::curl::Curl;
use integration_tests::procfs::mapped_path;
use integration_tests::tls::{wait_probes_attached, LIBSSL};
use integration_tests::{
    require_root, Agent, AgentOptions, Asgi, AsgiServer, NetPair, PyOptions, TlsCert,
};

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn a_local_authority_from_a_remote_peer_is_flagged() -> Result<()> {
    require_root()?;
    let cert = TlsCert::generate("api-guard-test")?;
    let net = NetPair::new("agh2auth")?;
    let listen = net.server_addr()?;
    let server = AsgiServer::start(
        &net.srv,
        listen,
        Asgi::Hypercorn,
        PyOptions::default(),
        Some(&cert),
    )?;
    let libssl = mapped_path(server.pid(), LIBSSL)?;
    let agent = Agent::start(AgentOptions::capture_only(&[server.pid()], &[]))?;
    wait_probes_attached(&agent, &libssl, Duration::from_secs(1))?;

    let port = listen.port();
    let benign = Curl::new(&net.cli)
        .insecure()
        .arg("--http2")
        .url(format!("https://{}:{port}/json?pretty=0", listen.ip()))
        .run()?;
    let rebound = Curl::new(&net.cli)
        .insecure()
        .arg("--http2")
        .arg("--connect-to")
        .arg(format!("127.0.0.1:{port}:{}:{port}", listen.ip()))
        .url(format!("https://127.0.0.1:{port}/json?pretty=0"))
        .run()?;
    for run in [&benign, &rebound] {
        ensure!(
            run.transfers.len() == 1 && run.transfers[0].http_code() == 200,
            "{:?}",
            run.transfers
        );
    }

    let ex = agent.wait_for_exchanges(|e| e["role"] == "server" && e["version"] == "2", 2, WAIT)?;
    ensure!(ex.len() == 2, "{ex:#?}");
    let events = agent.wait_for_events(|e| e["type"] == "detection", 1, WAIT)?;
    // Give a second finding (the benign request's, if any) time to arrive.
    std::thread::sleep(Duration::from_millis(500));
    let all: Vec<_> = agent
        .events()?
        .into_iter()
        .filter(|e| e["type"] == "detection")
        .collect();
    ensure!(all.len() == 1, "{all:#?} (first wait saw {})", events.len());
    let e = &all[0];
    ensure!(
        e["rule_id"] == "protocol.host_local" && e["location"] == "header::authority",
        "{e:#}"
    );
    Ok(())
}
