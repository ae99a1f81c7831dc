//! The agent joins an HTTP/2 connection mid-way. The raw `h2` client (h2c prior knowledge
//! to nginx) opens its connection and makes two requests carrying `x-trace: <300 bytes>`,
//! which its HPACK encoder stores in its dynamic table along with `:authority`; only then
//! the agent starts (capturing exactly nginx's pid and the client's; the connection is
//! adopted as already established), and the client makes two more requests on the SAME
//! connection (streams 5 and 7) whose `:authority` and `x-trace` are references to dynamic
//! table entries the agent never saw. `:method`, `:scheme` are static-table entries and the
//! new `:path`s literals, and nginx encodes its responses without its dynamic table.
//!
//! Expected: exactly the two later streams at each end (nothing of streams 1 and 3), with
//! their exact stream ids, method, path, query, status and DATA sizes, `incomplete: true`
//! (an unresolved header), never a wrong path/method/status; `apiguard_http2_headers_
//! unresolved_total` increased; request counters exact; no parse errors.

use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::exchange::{dump, Window};
use integration_tests::h2::{
    check_h2_exchanges, check_request_deltas, h2_request, trace_header, ClientEnd, H2Client,
    H2_FILES, UNRESOLVED,
};
use integration_tests::tls::End;
use integration_tests::util::unique_comm;
use integration_tests::{require_root, Agent, AgentOptions, CommExe, NetPair, Nginx, NginxOptions};
use serde_json::{json, Value};

#[test]
fn agent_joins_an_h2_connection_with_a_dynamic_table() -> Result<()> {
    require_root()?;
    let net = NetPair::new("agh2-join")?;
    let listen = net.server_addr()?;
    let nginx = Nginx::start_with(
        &net.srv,
        listen,
        &H2_FILES,
        NginxOptions {
            http2: true,
            ..NginxOptions::default()
        },
    )?;
    let trace = std::slice::from_ref(&trace_header()).to_vec();
    let before_agent = vec![
        h2_request("GET", "/small.txt", 0, &trace),
        h2_request("POST", "/upload", 5000, &trace),
    ];
    let after_agent = vec![
        h2_request("GET", "/small.txt?phase=2", 0, &trace),
        h2_request("GET", "/gone", 0, &trace),
    ];
    let exe = CommExe::python(&unique_comm("agjn"))?;
    let mut client = H2Client::spawn(&net.cli, &exe, listen, &json!([before_agent, after_agent]))?;
    let first = client.phase()?;
    ensure!(first.stream_ids() == [1, 3], "{first:#?}");

    let mut agent = Agent::start(AgentOptions::capture_only(
        &[nginx.pid(), client.pid()],
        &[],
    ))?;
    let before = agent.metrics()?;
    let (second, window) = Window::around(|| client.phase())?;
    client.finish()?;
    ensure!(
        second.local_port == first.local_port && second.stream_ids() == [5, 7],
        "the client must continue its connection: {second:#?}"
    );
    // The precondition of the test: the later requests reference the encoder's table.
    for s in &second.streams {
        let indexed = &s["from_dynamic_table"];
        ensure!(
            indexed
                .as_array()
                .is_some_and(|a| a.contains(&json!(":authority")) && a.contains(&json!("x-trace"))),
            "the client did not reference its dynamic table: {s}"
        );
    }
    let statuses: Vec<Option<u64>> = second
        .streams
        .iter()
        .map(|s| s["status"].as_u64())
        .collect();
    ensure!(statuses == [Some(200), Some(404)], "{second:#?}");

    let expects: Vec<_> = second
        .expects()
        .into_iter()
        .map(|mut e| {
            e.incomplete = true;
            e
        })
        .collect();
    let server = End {
        pid: nginx.pid(),
        comm: "nginx".into(),
        library: None,
    };
    let client_end = ClientEnd {
        end: End {
            pid: client.pid(),
            comm: exe.comm().into(),
            library: None,
        },
        ip: net.cli_ip.into(),
        port: Some(second.local_port),
    };
    let (srv, cli) = check_h2_exchanges(
        &agent,
        &server,
        listen,
        &client_end,
        &expects,
        &second.stream_ids(),
        &window,
    )?;
    print!("server side:\n{}client side:\n{}", dump(&srv), dump(&cli));
    let base = before.sum(UNRESOLVED, &[]);
    let unresolved = agent.wait_metric(UNRESOLVED, &[], |v| v > base, Duration::from_secs(3))?;
    ensure!(
        unresolved > base,
        "{UNRESOLVED} did not increase ({base} → {unresolved}):\n{}",
        agent.diagnostics()
    );
    check_request_deltas(&agent, &before, &expects, false)?;

    agent.stop_cleanly()?;
    let all = agent.exchanges()?;
    let early: Vec<Value> = all
        .iter()
        .filter(|e| e["stream_id"] == 1 || e["stream_id"] == 3 || e["path"] == "/upload")
        .cloned()
        .collect();
    ensure!(
        all.len() == 4 && early.is_empty(),
        "expected exactly streams 5 and 7 at each end:\n{}",
        dump(&all)
    );
    ensure!(nginx.is_running(), "nginx died: {}", nginx.logs());
    Ok(())
}
