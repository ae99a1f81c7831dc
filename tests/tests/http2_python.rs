//! HTTP/2 over TLS between hypercorn (an ASGI app of ours, python's `ssl` → libssl.so.3,
//! ALPN h2; namespace A) and curl `--http2 -Z` (namespace B): GET of a JSON endpoint with
//! a query, POST of 5000 bytes to an endpoint that answers the length it read, and a 404,
//! multiplexed as streams 1, 3, 5 of one connection. Both ends exact as in
//! `http2_nginx.rs`: version "2", stream ids, method, path, query, status, DATA sizes,
//! `tls_library` (the libssl each process maps), one `conn_id` per end, `ttfb_ms`, no
//! `grpc`/`sse_events`; metric deltas, no parse errors, nothing else captured.

use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::exchange::dump;
use integration_tests::h2::{
    check_h2_exchanges, check_request_deltas, client_stream_ids, curl_h2, ClientEnd, Expect,
    ASGI_MIX, ASGI_MIX_STATUS,
};
use integration_tests::procfs::mapped_path;
use integration_tests::tls::{check_tls_only, linked_library, wait_probes_attached, End, LIBSSL};
use integration_tests::util::{unique_comm, which};
use integration_tests::{
    require_root, Agent, AgentOptions, Asgi, AsgiServer, CurlExe, NetPair, PyOptions, TlsCert,
};

#[test]
fn hypercorn_and_curl_over_h2_with_tls() -> Result<()> {
    require_root()?;
    let cert = TlsCert::generate("api-guard-test")?;
    let net = NetPair::new("agh2-py")?;
    let listen = net.server_addr()?;
    let server = AsgiServer::start(
        &net.srv,
        listen,
        Asgi::Hypercorn,
        PyOptions {
            comm: Some(unique_comm("aghc")),
        },
        Some(&cert),
    )?;
    let server_libssl = mapped_path(server.pid(), LIBSSL)?;
    let curl_libssl = linked_library(&which("curl")?, LIBSSL)?;
    let curl_exe = CurlExe::with_comm(&unique_comm("agh2"))?;
    let mut agent = Agent::start(AgentOptions::capture_only(
        &[server.pid()],
        &[curl_exe.comm()],
    ))?;
    wait_probes_attached(&agent, &server_libssl, Duration::from_secs(1))?;
    let before = agent.metrics()?;

    let (run, window) = curl_h2(&net.cli, &curl_exe, true, &ASGI_MIX, |t| server.url(t))?;
    let codes: Vec<u64> = run
        .transfers
        .iter()
        .map(|t| u64::from(t.http_code()))
        .collect();
    ensure!(codes == ASGI_MIX_STATUS, "hypercorn answered {codes:?}");
    let expects: Vec<Expect> = ASGI_MIX
        .iter()
        .zip(&run.transfers)
        .map(|(&(_, target, _), t)| Expect::from_transfer(t, target))
        .collect();
    let server_end = End {
        pid: server.pid(),
        comm: server.comm().into(),
        library: Some(server_libssl),
    };
    let client = ClientEnd {
        end: End {
            pid: run.pid,
            comm: curl_exe.comm().into(),
            library: Some(curl_libssl),
        },
        ip: net.cli_ip.into(),
        port: Some(run.transfers[0].local_addr()?.port()),
    };
    let (srv, cli) = check_h2_exchanges(
        &agent,
        &server_end,
        listen,
        &client,
        &expects,
        &client_stream_ids(3),
        &window,
    )?;
    print!("server side:\n{}client side:\n{}", dump(&srv), dump(&cli));
    check_request_deltas(&agent, &before, &expects, true)?;
    check_tls_only(&agent, &before, listen, 3)?;

    agent.stop_cleanly()?;
    let all = agent.exchanges()?;
    ensure!(
        all.len() == 6,
        "expected exactly the 3 + 3 streams:\n{}",
        dump(&all)
    );
    ensure!(server.is_running(), "hypercorn died");
    Ok(())
}

/// `curl --http2` on an `http://` URL asks for `Upgrade: h2c`; hypercorn (plaintext) answers
/// 101 and the rest of the connection is HTTP/2. The upgraded GET is stream 1 (its answer
/// comes in HTTP/2 frames), the next GET on the same connection stream 3: two exchanges per
/// end, version "2", no 101 exchange, no parse errors.
#[test]
fn h2c_upgrade_from_curl_to_hypercorn() -> Result<()> {
    require_root()?;
    let net = NetPair::new("agh2-upg")?;
    let listen = net.server_addr()?;
    let server = AsgiServer::start(
        &net.srv,
        listen,
        Asgi::Hypercorn,
        PyOptions {
            comm: Some(unique_comm("aghu")),
        },
        None,
    )?;
    let curl_exe = CurlExe::with_comm(&unique_comm("agh2"))?;
    let mut agent = Agent::start(AgentOptions::capture_only(
        &[server.pid()],
        &[curl_exe.comm()],
    ))?;
    let before = agent.metrics()?;
    let targets = ["/json?pretty=0", "/json?pretty=1"];
    let curl = integration_tests::curl::Curl::new(&net.cli)
        .exe(&curl_exe)
        .arg("--http2")
        .url(server.url(targets[0]))
        .next()
        .arg("--http2")
        .url(server.url(targets[1]));
    let (run, window) = integration_tests::exchange::Window::around(|| curl.run())?;
    ensure!(
        run.transfers.iter().all(|t| t.http_code() == 200),
        "hypercorn answered {:?}",
        run.transfers
            .iter()
            .map(|t| t.http_code())
            .collect::<Vec<_>>()
    );
    let expects: Vec<Expect> = targets
        .iter()
        .zip(&run.transfers)
        .map(|(target, t)| Expect::from_transfer(t, target))
        .collect();
    let server_end = End {
        pid: server.pid(),
        comm: server.comm().into(),
        library: None,
    };
    let client = ClientEnd {
        end: End {
            pid: run.pid,
            comm: curl_exe.comm().into(),
            library: None,
        },
        ip: net.cli_ip.into(),
        port: Some(run.transfers[0].local_addr()?.port()),
    };
    let (srv, cli) = check_h2_exchanges(
        &agent,
        &server_end,
        listen,
        &client,
        &expects,
        &client_stream_ids(2),
        &window,
    )?;
    print!("server side:\n{}client side:\n{}", dump(&srv), dump(&cli));
    check_request_deltas(&agent, &before, &expects, false)?;
    agent.stop_cleanly()?;
    let all = agent.exchanges()?;
    ensure!(
        all.len() == 4 && all.iter().all(|e| e["status"] == 200),
        "expected exactly the 2 + 2 streams (no 101 exchange):\n{}",
        dump(&all)
    );
    Ok(())
}
