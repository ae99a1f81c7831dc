//! Server-sent events: the ASGI app's `/events` (7 blocks 100 ms apart: 5 events per the
//! WHATWG dispatch rule, a comment-only and a retry-only block that are none, a three-line
//! data event that is one) fetched by curl
//!
//! - over HTTP/2 with TLS from hypercorn (stream 1 of its connection), and
//! - over HTTP/1.1 (chunked) in plaintext from uvicorn.
//!
//! At both ends: one exchange, exact status, sizes and version, `sse_events` = 5,
//! `sse_first_event_ms` at least one gap (the first event ends 100 ms after the response
//! starts) and within the exchange, `ttfb_ms` before it, `grpc` null; metric deltas exact,
//! nothing else captured.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::exchange::{check_fields, dump, pid_role};
use integration_tests::h2::{
    check_h2_exchanges, check_request_deltas, check_ttfb, ClientEnd, Expect,
};
use integration_tests::procfs::mapped_path;
use integration_tests::sse::{curl_sse, SSE_EVENTS, SSE_GAP_MS};
use integration_tests::tls::{linked_library, wait_probes_attached, End, LIBSSL};
use integration_tests::util::{unique_comm, which};
use integration_tests::{
    require_root, Agent, AgentOptions, Asgi, AsgiServer, CurlExe, NetPair, PyOptions, TlsCert,
};
use serde_json::{json, Value};

/// `sse_first_event_ms` is at least one gap and within the exchange; `ttfb_ms` comes first.
fn check_first_event(e: &Value) -> Result<()> {
    check_ttfb(e)?;
    let first = e["sse_first_event_ms"].as_f64();
    let ttfb = e["ttfb_ms"].as_f64().unwrap_or(f64::NAN);
    let duration = e["duration_ms"].as_f64().unwrap_or(f64::NAN);
    ensure!(
        first.is_some_and(|f| f >= SSE_GAP_MS as f64 * 0.9 && f >= ttfb && f <= duration + 0.001),
        "sse_first_event_ms must be ≥ {SSE_GAP_MS} ms, ≥ ttfb_ms and ≤ duration_ms in {e}"
    );
    Ok(())
}

#[test]
fn sse_over_h2_from_hypercorn() -> Result<()> {
    require_root()?;
    let cert = TlsCert::generate("api-guard-test")?;
    let net = NetPair::new("agsse-h2")?;
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
    let curl_exe = CurlExe::with_comm(&unique_comm("agss"))?;
    let mut agent = Agent::start(AgentOptions::capture_only(
        &[server.pid()],
        &[curl_exe.comm()],
    ))?;
    wait_probes_attached(&agent, &server_libssl, Duration::from_secs(1))?;
    let before = agent.metrics()?;

    let sse = curl_sse(&net.cli, &curl_exe, &server.url("/events"), true)?;
    let mut expect = Expect::from_transfer(&sse.transfer, "/events")
        .with(json!({"sse_events": SSE_EVENTS, "grpc": null}));
    if let Some(extra) = expect.extra.as_object_mut() {
        extra.remove("sse_first_event_ms");
    }
    let server_end = End {
        pid: server.pid(),
        comm: server.comm().into(),
        library: Some(server_libssl),
    };
    let client = ClientEnd {
        end: End {
            pid: sse.pid,
            comm: curl_exe.comm().into(),
            library: Some(linked_library(&which("curl")?, LIBSSL)?),
        },
        ip: net.cli_ip.into(),
        port: Some(sse.transfer.local_addr()?.port()),
    };
    let (srv, cli) = check_h2_exchanges(
        &agent,
        &server_end,
        listen,
        &client,
        std::slice::from_ref(&expect),
        &[1],
        &sse.window,
    )?;
    print!("server side:\n{}client side:\n{}", dump(&srv), dump(&cli));
    for e in srv.iter().chain(&cli) {
        check_first_event(e)?;
    }
    check_request_deltas(&agent, &before, std::slice::from_ref(&expect), true)?;

    agent.stop_cleanly()?;
    let all = agent.exchanges()?;
    ensure!(
        all.len() == 2,
        "expected exactly 1 + 1 exchanges:\n{}",
        dump(&all)
    );
    Ok(())
}

#[test]
fn sse_over_http1_from_uvicorn() -> Result<()> {
    require_root()?;
    let net = NetPair::new("agsse-h1")?;
    let listen = net.server_addr()?;
    let server = AsgiServer::start(
        &net.srv,
        listen,
        Asgi::Uvicorn,
        PyOptions {
            comm: Some(unique_comm("aguv")),
        },
        None,
    )?;
    let curl_exe = CurlExe::with_comm(&unique_comm("agss"))?;
    let mut agent = Agent::start(AgentOptions::capture_only(
        &[server.pid()],
        &[curl_exe.comm()],
    ))?;
    let before = agent.metrics()?;

    let sse = curl_sse(&net.cli, &curl_exe, &server.url("/events"), false)?;
    ensure!(
        sse.head.contains("transfer-encoding: chunked"),
        "{}",
        sse.head
    );
    let t = &sse.transfer;
    let client_addr = t.local_addr()?;
    let want = json!({
        "version": "1.1", "method": "GET", "path": "/events", "query": null,
        "host": listen.to_string(), "status": 200,
        "request_header_bytes": t.request_header_bytes(), "request_body_bytes": 0,
        "response_header_bytes": t.size_header(),
        // The decoded body: the chunk framing is not counted.
        "response_body_bytes": t.size_download(),
        "request_truncated": false, "response_truncated": false,
        "tls": false, "sse_events": SSE_EVENTS, "grpc": null,
    });
    let ends = [
        (server.pid(), "server", server.comm(), listen, client_addr),
        (sse.pid, "client", curl_exe.comm(), client_addr, listen),
    ];
    let mut seen = Vec::new();
    for (pid, role, comm, local, peer) in ends {
        let found = agent
            .wait_for_exchanges(pid_role(pid, role), 1, Duration::from_secs(10))
            .with_context(|| format!("{role} side of the event stream"))?;
        ensure!(found.len() == 1, "{role} side:\n{}", dump(&found));
        let e = &found[0];
        let fields = integration_tests::exchange::merged(
            &want,
            json!({"role": role, "pid": pid, "comm": comm,
                   "local_addr": local.to_string(), "peer_addr": peer.to_string()}),
        );
        check_fields(e, &fields)
            .and_then(|()| sse.window.check(e))
            .and_then(|()| check_first_event(e))
            .with_context(|| format!("{role} side"))?;
        ensure!(
            e.get("stream_id").is_none(),
            "stream_id is only for HTTP/2 exchanges: {e}"
        );
        seen.push(e.clone());
    }
    print!("{}", dump(&seen));
    let expect = Expect::from_transfer(t, "/events");
    check_request_deltas(&agent, &before, std::slice::from_ref(&expect), false)?;

    agent.stop_cleanly()?;
    let all = agent.exchanges()?;
    ensure!(
        all.len() == 2,
        "expected exactly 1 + 1 exchanges:\n{}",
        dump(&all)
    );
    Ok(())
}
