//! Plaintext HTTP/1.1 between python's `http.server` (namespace A) and curl (namespace B)
//! over a veth pair. Expected values come from curl's own per-transfer accounting.
//!
//! The agent captures only this test's two comms (the server runs as a unique symlink
//! name, curl too), so server and client exchanges and every counter are ours alone
//! even while other tests and other users run HTTP on this host.
//!
//! The server speaks HTTP/1.1 with keep-alive: `python3 -m http.server` would answer
//! HTTP/1.0 and close after each response, so curl's three URLs would need three
//! connections (see `servers::PyHttpServer`).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use anyhow::{ensure, Context, Result};
use integration_tests::exchange::{
    check_fields, check_timing, check_wall_time, dump, merged, pid_role, request_fields, same_conn,
    sorted_by_start,
};
use integration_tests::servers::scratch_file;
use integration_tests::util::{monotonic_ns, unique_comm};
use integration_tests::{
    require_root, unique_port, veth_pair, Agent, AgentOptions, Curl, CurlExe, Netns, PyHttpServer,
    PyOptions, TempDir, Transfer,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);
/// All below the 16 KiB per-syscall capture cap, so nothing may be truncated.
const FILES: [(&str, usize); 3] = [("x", 10), ("y", 1000), ("z", 12000)];

#[test]
fn python_server_and_curl_over_veth() -> Result<()> {
    require_root()?;
    let ns_srv = Netns::new("agpy-srv")?;
    let ns_cli = Netns::new("agpy-cli")?;
    let (ip_srv, ip_cli) = veth_pair(&ns_srv, &ns_cli)?;
    let listen = SocketAddr::new(ip_srv.into(), unique_port()?);
    let server = PyHttpServer::start_with(
        &ns_srv,
        listen,
        &FILES,
        PyOptions {
            comm: Some(unique_comm("agp")),
        },
    )?;
    let curl_exe = CurlExe::with_comm(&unique_comm("agc"))?;
    let agent = Agent::start(AgentOptions::comms_only(&[server.comm(), curl_exe.comm()]))?;
    let before = agent.metrics()?;
    let server_pid = server.pid();
    let mut client_pids = Vec::new();

    // (a) Three GETs on one keep-alive connection.
    let (t0, wall0) = (monotonic_ns(), SystemTime::now());
    let run = Curl::new(&ns_cli)
        .exe(&curl_exe)
        .url(server.url("/x"))
        .url(server.url("/y?id=7&v=a"))
        .url(server.url("/z"))
        .run()?;
    let (t1, wall1) = (monotonic_ns(), SystemTime::now());
    client_pids.push(run.pid);
    ensure!(
        run.connects() == 1,
        "curl did not reuse its connection: {run:#?}"
    );
    let sizes: Vec<u64> = run.transfers.iter().map(Transfer::size_download).collect();
    ensure!(sizes == [10, 1000, 12000], "curl downloaded {sizes:?}");

    let srv = agent
        .wait_for_exchanges(pid_role(server_pid, "server"), 3, WAIT)
        .context("(a) server side of three keep-alive GETs")?;
    let cli = agent
        .wait_for_exchanges(pid_role(run.pid, "client"), 3, WAIT)
        .context("(a) client side of three keep-alive GETs")?;
    let (srv, cli) = (sorted_by_start(srv), sorted_by_start(cli));
    ensure!(srv.len() == 3, "server exchanges:\n{}", dump(&srv));
    ensure!(cli.len() == 3, "client exchanges:\n{}", dump(&cli));
    let wanted = [
        ("/x", Value::Null),
        ("/y", json!("id=7&v=a")),
        ("/z", Value::Null),
    ];
    for (i, (path, query)) in wanted.into_iter().enumerate() {
        let t = &run.transfers[i];
        let client_addr = t.local_addr()?;
        assert_eq!(client_addr.ip(), ip_cli);
        let common = request_fields(t, listen, "GET", path, query, 0);
        check_fields(
            &srv[i],
            &merged(
                &common,
                json!({
                    "role": "server", "pid": server_pid, "comm": server.comm(),
                    "local_addr": listen.to_string(), "peer_addr": client_addr.to_string(),
                }),
            ),
        )?;
        check_fields(
            &cli[i],
            &merged(
                &common,
                json!({
                    "role": "client", "pid": run.pid, "comm": curl_exe.comm(),
                    "local_addr": client_addr.to_string(), "peer_addr": listen.to_string(),
                }),
            ),
        )?;
        for e in [&srv[i], &cli[i]] {
            check_timing(e, t0, t1)?;
            check_wall_time(e, wall0, wall1, Duration::from_secs(1))?;
        }
    }
    same_conn(&srv)?;
    same_conn(&cli)?;

    // (b) POST with a Content-Length body, (c) the same as a chunked upload. `Expect:`
    // is blanked so curl never waits for a `100 Continue`.
    let scratch = TempDir::new("agpy")?;
    for (chunked, size) in [(false, 1000u64), (true, 5000)] {
        let body = scratch_file(&scratch, &format!("body{size}"), size as usize)?;
        let mut curl = Curl::new(&ns_cli).exe(&curl_exe).arg("-H").arg("Expect:");
        if chunked {
            curl = curl.arg("-H").arg("Transfer-Encoding: chunked");
        }
        let (t0, wall0) = (monotonic_ns(), SystemTime::now());
        let post = curl
            .arg("--data-binary")
            .arg(format!("@{}", body.display()))
            .url(server.url("/upload"))
            .run()?;
        let (t1, wall1) = (monotonic_ns(), SystemTime::now());
        client_pids.push(post.pid);
        let t = &post.transfers[0];
        // Chunk framing: 5000 = 0x1388 -> "1388\r\n" + data + "\r\n0\r\n\r\n".
        let wire = if chunked { size + 13 } else { size };
        ensure!(
            (t.http_code(), t.size_download(), t.size_upload()) == (200, 3, wire),
            "unexpected POST transfer: {t:?}"
        );
        let client_addr = t.local_addr()?;
        let peer = client_addr.to_string();
        let step = if chunked {
            "(c) chunked POST"
        } else {
            "(b) POST"
        };
        let srv = agent
            .wait_for_exchanges(
                |e| pid_role(server_pid, "server")(e) && e["peer_addr"] == peer.as_str(),
                1,
                WAIT,
            )
            .with_context(|| format!("{step}, server side"))?;
        let cli = agent
            .wait_for_exchanges(pid_role(post.pid, "client"), 1, WAIT)
            .with_context(|| format!("{step}, client side"))?;
        ensure!(
            srv.len() == 1 && cli.len() == 1,
            "POST exchanges:\n{}{}",
            dump(&srv),
            dump(&cli)
        );
        // request_body_bytes is the decoded payload, also for chunked.
        let common = request_fields(t, listen, "POST", "/upload", Value::Null, size);
        check_fields(
            &srv[0],
            &merged(
                &common,
                json!({
                    "role": "server", "pid": server_pid, "local_addr": listen.to_string(), "peer_addr": peer,
                }),
            ),
        )?;
        check_fields(
            &cli[0],
            &merged(
                &common,
                json!({
                    "role": "client", "pid": post.pid, "local_addr": peer, "peer_addr": listen.to_string(),
                }),
            ),
        )?;
        for e in [&srv[0], &cli[0]] {
            check_timing(e, t0, t1)?;
            check_wall_time(e, wall0, wall1, Duration::from_secs(1))?;
        }
    }

    // (d) Metrics: this agent saw nothing but the five requests above, from both ends.
    let ours = agent.exchanges()?;
    let requests = "apiguard_http_requests_total";
    let expect_delta = [
        (
            requests,
            vec![("role", "server"), ("method", "GET"), ("status", "200")],
            3.0,
        ),
        (
            requests,
            vec![("role", "server"), ("method", "POST"), ("status", "200")],
            2.0,
        ),
        (
            requests,
            vec![("role", "client"), ("method", "GET"), ("status", "200")],
            3.0,
        ),
        (
            requests,
            vec![("role", "client"), ("method", "POST"), ("status", "200")],
            2.0,
        ),
        (requests, vec![], 10.0),
        (
            "apiguard_http_request_duration_seconds_count",
            vec![("role", "server"), ("method", "GET")],
            3.0,
        ),
        (
            "apiguard_http_request_duration_seconds_count",
            vec![("role", "client"), ("method", "POST")],
            2.0,
        ),
    ];
    let byte_sum = |role: &str, fields: [&str; 2]| -> f64 {
        ours.iter()
            .filter(|e| e["role"] == role)
            .flat_map(|e| fields.map(|f| e[f].as_u64().unwrap_or(0)))
            .sum::<u64>() as f64
    };
    let req_fields = ["request_header_bytes", "request_body_bytes"];
    let resp_fields = ["response_header_bytes", "response_body_bytes"];
    let byte_deltas = [
        (
            "apiguard_http_request_bytes_total",
            "server",
            byte_sum("server", req_fields),
        ),
        (
            "apiguard_http_request_bytes_total",
            "client",
            byte_sum("client", req_fields),
        ),
        (
            "apiguard_http_response_bytes_total",
            "server",
            byte_sum("server", resp_fields),
        ),
        (
            "apiguard_http_response_bytes_total",
            "client",
            byte_sum("client", resp_fields),
        ),
    ];
    let mut wrong = Vec::new();
    let mut check_delta = |name: &str, labels: &[(&str, &str)], want: f64| -> Result<()> {
        let base = before.sum(name, labels);
        let now = agent.wait_metric(name, labels, |v| v - base == want, Duration::from_secs(3))?;
        if now - base != want {
            wrong.push(format!(
                "  {name}{labels:?}: increased by {}, expected {want}",
                now - base
            ));
        }
        Ok(())
    };
    for (name, labels, want) in &expect_delta {
        check_delta(name, labels, *want)?;
    }
    for (name, role, want) in byte_deltas {
        check_delta(name, &[("role", role)], want)?;
    }
    ensure!(
        wrong.is_empty(),
        "metrics differ:\n{}\nexchanges:\n{}{}",
        wrong.join("\n"),
        dump(&ours),
        agent.diagnostics()
    );
    assert_eq!(agent.metric("apiguard_http_parse_errors_total", &[])?, 0.0);

    // After a clean stop the file holds exactly our ten exchanges and nothing from any
    // other process (the comms filter).
    let mut agent = agent;
    let status = agent.stop()?;
    ensure!(
        status.success(),
        "api-guard exited with {status}:\n{}",
        agent.stderr_tail(30)
    );
    let all = agent.exchanges()?;
    let server_count = all
        .iter()
        .filter(|e| pid_role(server_pid, "server")(e))
        .count();
    let client_count = all
        .iter()
        .filter(|e| client_pids.iter().any(|&p| pid_role(p, "client")(e)))
        .count();
    ensure!(
        (server_count, client_count, all.len()) == (5, 5, 10),
        "expected 5 server + 5 client exchanges and nothing else, got {server_count} + {client_count} of {}:\n{}",
        all.len(),
        dump(&all)
    );
    Ok(())
}
