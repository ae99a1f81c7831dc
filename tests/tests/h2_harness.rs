//! The HTTP/2, gRPC and SSE harness itself, without the daemon: every server and client
//! the `http2_*`, `grpc_live`, `sse_live` tests rely on behaves as those tests assume
//! (multiplexed streams on one connection, exact sizes from the clients' own accounting,
//! stream ids, HPACK dynamic-table references, event and message counts, the libraries
//! they map), so a failure there is the agent's, not the harness's.

use anyhow::{ensure, Result};
use integration_tests::grpc::{GrpcClient, GrpcServer, CALLS};
use integration_tests::h2::{
    client_stream_ids, curl_h2, h2_request, trace_header, H2Client, ASGI_MIX, ASGI_MIX_STATUS,
    H2_FILES, NGINX_MIX, NGINX_MIX_STATUS,
};
use integration_tests::procfs::mapped_path;
use integration_tests::servers::ASGI_JSON_BYTES;
use integration_tests::sse::{curl_sse, SSE_EVENTS};
use integration_tests::tls::{linked_library, LIBSSL};
use integration_tests::util::{unique_comm, which};
use integration_tests::{
    require_root, Asgi, AsgiServer, CommExe, CurlExe, NetPair, Nginx, NginxOptions, PyOptions,
    TlsCert,
};
use serde_json::{json, Value};

fn h2_nginx() -> NginxOptions {
    NginxOptions {
        http2: true,
        ..NginxOptions::default()
    }
}

/// (status, request body, response body) per transfer of a curl run.
fn sizes(run: &integration_tests::CurlRun) -> Vec<(u64, u64, u64)> {
    run.transfers
        .iter()
        .map(|t| (u64::from(t.http_code()), t.size_upload(), t.size_download()))
        .collect()
}

#[test]
fn nginx_h2_over_tls_with_curl() -> Result<()> {
    require_root()?;
    let cert = TlsCert::generate("api-guard-test")?;
    let net = NetPair::new("agh2-self-t")?;
    let nginx = Nginx::start_tls(&net.srv, net.server_addr()?, &H2_FILES, h2_nginx(), &cert)?;
    let libssl = linked_library(&which("curl")?, LIBSSL)?;
    ensure!(mapped_path(nginx.pid(), LIBSSL)? == libssl);
    let curl_exe = CurlExe::with_comm(&unique_comm("agh2"))?;
    let (run, _) = curl_h2(&net.cli, &curl_exe, true, &NGINX_MIX, |t| nginx.url(t))?;
    let got = sizes(&run);
    let big = H2_FILES[1].1 as u64;
    let want: Vec<(u64, u64, u64)> = vec![
        (NGINX_MIX_STATUS[0], 0, 1000),
        (NGINX_MIX_STATUS[1], 0, got[1].2),
        (NGINX_MIX_STATUS[2], 5000, 8),
        (NGINX_MIX_STATUS[3], 0, big),
    ];
    ensure!(got == want && got[1].2 > 0, "nginx h2 over TLS: {got:?}");
    ensure!(nginx.is_running(), "{}", nginx.logs());
    Ok(())
}

#[test]
fn nginx_h2c_with_the_h2_client_in_two_phases() -> Result<()> {
    require_root()?;
    let net = NetPair::new("agh2-self-c")?;
    let nginx = Nginx::start_with(&net.srv, net.server_addr()?, &H2_FILES, h2_nginx())?;
    let trace = trace_header();
    let phase0: Vec<Value> = NGINX_MIX
        .iter()
        .map(|&(m, t, b)| h2_request(m, t, b, std::slice::from_ref(&trace)))
        .collect();
    let phase1 = vec![
        h2_request("GET", "/small.txt?phase=2", 0, std::slice::from_ref(&trace)),
        h2_request("GET", "/gone", 0, std::slice::from_ref(&trace)),
    ];
    let exe = CommExe::python(&unique_comm("agh2"))?;
    let mut client = H2Client::spawn(&net.cli, &exe, nginx.addr(), &json!([phase0, phase1]))?;
    let first = client.phase()?;
    let got: Vec<(u64, u64, u64)> = first
        .streams
        .iter()
        .map(|s| {
            (
                s["status"].as_u64().unwrap_or(0),
                s["request_body_bytes"].as_u64().unwrap_or(0),
                s["response_body_bytes"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let statuses: Vec<u64> = got.iter().map(|g| g.0).collect();
    ensure!(
        statuses == NGINX_MIX_STATUS
            && got[0].2 == 1000
            && got[2].1 == 5000
            && got[2].2 == 8
            && got[3].2 == H2_FILES[1].1 as u64
            && first.stream_ids() == client_stream_ids(4),
        "h2c phase 0: {first:#?}"
    );
    // Nothing was in the encoder's table before the first requests went out.
    ensure!(
        first.streams[0]["from_dynamic_table"] == json!([]),
        "{first:#?}"
    );
    let second = client.phase()?;
    let ids: Vec<u64> = second.stream_ids();
    ensure!(
        second.local_port == first.local_port && ids == [9, 11],
        "the second phase must continue the same connection: {second:#?}"
    );
    for s in &second.streams {
        let indexed: Vec<&str> = s["from_dynamic_table"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        ensure!(
            indexed.contains(&":authority") && indexed.contains(&"x-trace"),
            "the second phase must reference the dynamic table: {s}"
        );
    }
    let statuses: Vec<u64> = second
        .streams
        .iter()
        .map(|s| s["status"].as_u64().unwrap_or(0))
        .collect();
    ensure!(statuses == [200, 404], "{second:#?}");
    client.finish()?;
    ensure!(nginx.is_running(), "{}", nginx.logs());
    Ok(())
}

#[test]
fn hypercorn_h2_over_tls_and_sse() -> Result<()> {
    require_root()?;
    let cert = TlsCert::generate("api-guard-test")?;
    let net = NetPair::new("agh2-self-h")?;
    let server = AsgiServer::start(
        &net.srv,
        net.server_addr()?,
        Asgi::Hypercorn,
        PyOptions {
            comm: Some(unique_comm("aghc")),
        },
        Some(&cert),
    )?;
    // python's _ssl (imported by hypercorn) maps the same libssl as curl.
    let libssl = linked_library(&which("curl")?, LIBSSL)?;
    ensure!(mapped_path(server.pid(), LIBSSL)? == libssl);
    let curl_exe = CurlExe::with_comm(&unique_comm("agh2"))?;
    let (run, _) = curl_h2(&net.cli, &curl_exe, true, &ASGI_MIX, |t| server.url(t))?;
    let got = sizes(&run);
    let want = vec![
        (ASGI_MIX_STATUS[0], 0, ASGI_JSON_BYTES),
        (ASGI_MIX_STATUS[1], 5000, b"received 5000\n".len() as u64),
        (ASGI_MIX_STATUS[2], 0, b"not found\n".len() as u64),
    ];
    ensure!(got == want, "hypercorn h2: {got:?}");
    let sse = curl_sse(&net.cli, &curl_exe, &server.url("/events"), true)?;
    println!(
        "SSE over h2: {} bytes, {SSE_EVENTS} events, {:.3} s",
        sse.body.len(),
        sse.transfer.0["time_total"]
    );
    ensure!(server.is_running());
    Ok(())
}

#[test]
fn uvicorn_sse_over_http1_chunked() -> Result<()> {
    require_root()?;
    let net = NetPair::new("agh2-self-u")?;
    let server = AsgiServer::start(
        &net.srv,
        net.server_addr()?,
        Asgi::Uvicorn,
        PyOptions {
            comm: Some(unique_comm("aguv")),
        },
        None,
    )?;
    let curl_exe = CurlExe::with_comm(&unique_comm("agh1"))?;
    let sse = curl_sse(&net.cli, &curl_exe, &server.url("/events"), false)?;
    ensure!(
        sse.head.contains("transfer-encoding: chunked"),
        "uvicorn must chunk the event stream: {}",
        sse.head
    );
    ensure!(server.is_running());
    Ok(())
}

#[test]
fn grpcio_calls_of_every_kind() -> Result<()> {
    require_root()?;
    let net = NetPair::new("agh2-self-g")?;
    let server = GrpcServer::start(
        &net.srv,
        net.server_addr()?,
        PyOptions {
            comm: Some(unique_comm("aggs")),
        },
    )?;
    let exe = CommExe::python(&unique_comm("aggc"))?;
    let mut client = GrpcClient::spawn(&net.cli, &exe, server.addr())?;
    let calls = client.run()?;
    for (call, (method, _, _)) in calls.iter().zip(CALLS) {
        println!("{method}: {}", call.expected_grpc());
    }
    // Wire bodies: 5 bytes of framing per message.
    let bodies: Vec<(u64, u64)> = calls
        .iter()
        .map(|c| (c.request_body_bytes(), c.response_body_bytes()))
        .collect();
    ensure!(
        bodies == [(1005, 13), (6, 426), (618, 26), (15, 0)],
        "grpc wire bodies: {bodies:?}"
    );
    ensure!(server.is_running(), "grpc server died");
    Ok(())
}
