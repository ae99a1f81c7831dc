//! gRPC between grpcio's server (namespace A) and grpcio's client (namespace B), plaintext
//! HTTP/2 with prior knowledge (insecure channel): on one channel, so one connection,
//! a unary call (1000-byte message), a server-streaming call answered with 4 messages, a
//! client-streaming call of 3 messages, and a call failing with NOT_FOUND (grpc-status 5
//! in a trailers-only response). The client is started (and idles) before the agent, which
//! captures exactly the two pids; then it makes its calls.
//!
//! Per call at both ends: one exchange, `version` "2", stream ids 1, 3, 5, 7, `POST` of
//! `/apiguard.test.Echo/<Method>`, status 200, DATA sizes = the length-prefixed messages
//! (5 + n bytes each) as the client counted them, `grpc` = {service, method, status,
//! messages_in, messages_out, kind} exactly, `ttfb_ms`; `apiguard_grpc_requests_total
//! {role,route,grpc_status}` and `apiguard_http_requests_total` deltas exact, no parse
//! errors, nothing else captured from the two processes.

use anyhow::{ensure, Result};
use integration_tests::exchange::{dump, Window};
use integration_tests::grpc::{GrpcClient, GrpcServer, CALLS};
use integration_tests::h2::{
    check_h2_exchanges, check_request_deltas, client_stream_ids, ClientEnd, Expect, GRPC_REQUESTS,
};
use integration_tests::tls::End;
use integration_tests::util::unique_comm;
use integration_tests::{require_root, Agent, AgentOptions, CommExe, NetPair, PyOptions};
use serde_json::json;

#[test]
fn grpcio_calls_of_every_kind() -> Result<()> {
    require_root()?;
    let net = NetPair::new("agh2-grpc")?;
    let listen = net.server_addr()?;
    let server = GrpcServer::start(
        &net.srv,
        listen,
        PyOptions {
            comm: Some(unique_comm("aggs")),
        },
    )?;
    let exe = CommExe::python(&unique_comm("aggc"))?;
    let mut client = GrpcClient::spawn(&net.cli, &exe, listen)?;
    let mut agent = Agent::start(AgentOptions::capture_only(
        &[server.pid(), client.pid()],
        &[],
    ))?;
    let before = agent.metrics()?;

    let (calls, window) = Window::around(|| client.run())?;
    let expects: Vec<Expect> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut e = Expect::new(
                "POST",
                c.path(),
                200,
                c.request_body_bytes(),
                c.response_body_bytes(),
            )
            .with(json!({"grpc": c.expected_grpc()}));
            e.stream_id = Some(1 + 2 * i as u64);
            e
        })
        .collect();
    // grpcio reads and writes on its own threads (`event_engine`, …), whose names the
    // exchanges carry: the pid and addresses select the ends.
    let server_end = End {
        pid: server.pid(),
        comm: String::new(),
        library: None,
    };
    let client_end = ClientEnd {
        end: End {
            pid: client.pid(),
            comm: String::new(),
            library: None,
        },
        ip: net.cli_ip.into(),
        // grpcio does not tell its local port; its pid and address select it.
        port: None,
    };
    let (srv, cli) = check_h2_exchanges(
        &agent,
        &server_end,
        listen,
        &client_end,
        &expects,
        &client_stream_ids(CALLS.len()),
        &window,
    )?;
    print!("server side:\n{}client side:\n{}", dump(&srv), dump(&cli));
    check_request_deltas(&agent, &before, &expects, false)?;
    let routes: Vec<(String, String)> = calls
        .iter()
        .map(|c| (c.path().to_string(), c.status().to_string()))
        .collect();
    for (route, status) in &routes {
        for role in ["server", "client"] {
            agent.check_deltas(
                &before,
                &[(
                    GRPC_REQUESTS,
                    &[("role", role), ("route", route), ("grpc_status", status)],
                    1.0,
                )],
            )?;
        }
    }
    agent.check_deltas(&before, &[(GRPC_REQUESTS, &[], 2.0 * CALLS.len() as f64)])?;

    agent.stop_cleanly()?;
    let all = agent.exchanges()?;
    ensure!(
        all.len() == 2 * CALLS.len(),
        "expected exactly one exchange per call at each end:\n{}",
        dump(&all)
    );
    ensure!(server.is_running(), "grpc server died: {}", client.stderr());
    Ok(())
}
