//! Plaintext HTTP/1.1 over IPv6 loopback, and IPv4 into a dual-stack IPv6 socket, between
//! python's `http.server` and curl inside one namespace. Expected values come from curl's
//! own per-transfer accounting.
//!
//! (1) The server listens on `[::1]`; curl fetches two URLs over one keep-alive
//! connection, so both ends must report `[::1]:port` addresses.
//! (2) A second server listens on `[::]` with `IPV6_V6ONLY` off and curl connects to
//! `127.0.0.1`: the accepted socket's addresses are v4-mapped (`::ffff:127.0.0.1`), which
//! the agent prints as plain IPv4 (docs/events.md, "Exchange JSON lines").
//!
//! The agent captures only this test's three comms (both servers run as unique symlink
//! names, curl too), so the exchanges and every counter are ours alone.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use anyhow::{ensure, Context, Result};
use integration_tests::exchange::{
    check_fields, check_timing, check_wall_time, dump, merged, pid_role, request_fields, same_conn,
    sorted_by_start,
};
use integration_tests::util::{monotonic_ns, run_checked, unique_comm};
use integration_tests::{
    require_root, unique_port, Agent, AgentOptions, Curl, CurlExe, Netns, PyHttpServer, PyOptions,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);
/// All below the 16 KiB per-syscall capture cap, so nothing may be truncated.
const FILES: [(&str, usize); 3] = [("a", 10), ("b", 1000), ("c", 100)];

/// Makes sure `::1` exists on the namespace's loopback (a host may default new
/// interfaces to `disable_ipv6=1`).
fn ensure_ipv6_loopback(ns: &Netns) -> Result<()> {
    let has_v6 = |ns: &Netns| -> Result<bool> {
        Ok(ns
            .ip(&["-6", "addr", "show", "dev", "lo"])?
            .contains("::1/128"))
    };
    if !has_v6(ns)? {
        run_checked(
            ns.cmd("sysctl")
                .args(["-w", "net.ipv6.conf.lo.disable_ipv6=0"]),
        )?;
    }
    ensure!(
        has_v6(ns)?,
        "::1 is missing on lo in {}: {}",
        ns.name(),
        ns.ip(&["addr", "show", "dev", "lo"])?
    );
    Ok(())
}

#[test]
fn ipv6_loopback_and_v4_mapped() -> Result<()> {
    require_root()?;
    let ns = Netns::new("agv6")?;
    ensure_ipv6_loopback(&ns)?;
    let listen6 = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), unique_port()?);
    let server6 = PyHttpServer::start_with(
        &ns,
        listen6,
        &FILES,
        PyOptions {
            comm: Some(unique_comm("ag6s")),
        },
    )?;
    let listen_any = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), unique_port()?);
    let server_any = PyHttpServer::start_with(
        &ns,
        listen_any,
        &FILES,
        PyOptions {
            comm: Some(unique_comm("ag6d")),
        },
    )?;
    let curl_exe = CurlExe::with_comm(&unique_comm("ag6c"))?;
    let agent = Agent::start(AgentOptions::comms_only(&[
        server6.comm(),
        server_any.comm(),
        curl_exe.comm(),
    ]))?;
    let before = agent.metrics()?;

    // (1) Two GETs to [::1] on one keep-alive connection; `-g` keeps curl from reading
    // the brackets as a URL glob.
    let (t0, wall0) = (monotonic_ns(), SystemTime::now());
    let run = Curl::new(&ns)
        .exe(&curl_exe)
        .arg("-g")
        .url(server6.url("/a"))
        .url(server6.url("/b"))
        .run()?;
    let (t1, wall1) = (monotonic_ns(), SystemTime::now());
    ensure!(
        run.connects() == 1,
        "curl did not reuse its connection: {run:#?}"
    );
    let got: Vec<(u16, u64)> = run
        .transfers
        .iter()
        .map(|t| (t.http_code(), t.size_download()))
        .collect();
    ensure!(got == [(200, 10), (200, 1000)], "curl transfers: {got:?}");

    let srv = agent
        .wait_for_exchanges(pid_role(server6.pid(), "server"), 2, WAIT)
        .context("(1) server side of two GETs over [::1]")?;
    let cli = agent
        .wait_for_exchanges(pid_role(run.pid, "client"), 2, WAIT)
        .context("(1) client side of two GETs over [::1]")?;
    let (srv, cli) = (sorted_by_start(srv), sorted_by_start(cli));
    ensure!(srv.len() == 2, "server exchanges:\n{}", dump(&srv));
    ensure!(cli.len() == 2, "client exchanges:\n{}", dump(&cli));
    eprintln!("(1) [::1] exchanges:\n{}{}", dump(&srv), dump(&cli));
    for (i, path) in ["/a", "/b"].into_iter().enumerate() {
        let t = &run.transfers[i];
        let client_addr = t.local_addr()?;
        assert_eq!(client_addr.ip(), Ipv6Addr::LOCALHOST);
        assert_eq!(t.remote_addr()?, listen6);
        let peer = client_addr.to_string();
        ensure!(
            peer.starts_with("[::1]:"),
            "curl's local address {peer} is not [::1]:port"
        );
        let common = request_fields(t, listen6, "GET", path, Value::Null, 0);
        check_fields(
            &srv[i],
            &merged(
                &common,
                json!({
                    "role": "server", "pid": server6.pid(), "comm": server6.comm(),
                    "local_addr": listen6.to_string(), "peer_addr": peer,
                }),
            ),
        )?;
        check_fields(
            &cli[i],
            &merged(
                &common,
                json!({
                    "role": "client", "pid": run.pid, "comm": curl_exe.comm(),
                    "local_addr": peer, "peer_addr": listen6.to_string(),
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

    // (2) IPv4 into the dual-stack socket: the server's accepted socket holds
    // ::ffff:127.0.0.1 on both ends, reported as IPv4.
    let v4_dst = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen_any.port());
    let (t0, wall0) = (monotonic_ns(), SystemTime::now());
    let run4 = Curl::new(&ns)
        .exe(&curl_exe)
        .url(format!("http://{v4_dst}/c"))
        .run()?;
    let (t1, wall1) = (monotonic_ns(), SystemTime::now());
    let t = &run4.transfers[0];
    ensure!(
        (t.http_code(), t.size_download()) == (200, 100),
        "unexpected transfer: {t:?}"
    );
    let client_addr = t.local_addr()?;
    assert_eq!(client_addr.ip(), Ipv4Addr::LOCALHOST);
    assert_eq!(t.remote_addr()?, v4_dst);
    let peer = client_addr.to_string();
    let srv = agent
        .wait_for_exchanges(pid_role(server_any.pid(), "server"), 1, WAIT)
        .context("(2) server side of a GET to 127.0.0.1 on a dual-stack socket")?;
    let cli = agent
        .wait_for_exchanges(pid_role(run4.pid, "client"), 1, WAIT)
        .context("(2) client side of a GET to 127.0.0.1 on a dual-stack socket")?;
    ensure!(
        srv.len() == 1 && cli.len() == 1,
        "v4-mapped exchanges:\n{}{}",
        dump(&srv),
        dump(&cli)
    );
    eprintln!("(2) v4-mapped exchanges:\n{}{}", dump(&srv), dump(&cli));
    let common = request_fields(t, v4_dst, "GET", "/c", Value::Null, 0);
    check_fields(
        &srv[0],
        &merged(
            &common,
            json!({
                "role": "server", "pid": server_any.pid(), "comm": server_any.comm(),
                "local_addr": v4_dst.to_string(), "peer_addr": peer,
            }),
        ),
    )?;
    check_fields(
        &cli[0],
        &merged(
            &common,
            json!({
                "role": "client", "pid": run4.pid, "comm": curl_exe.comm(),
                "local_addr": peer, "peer_addr": v4_dst.to_string(),
            }),
        ),
    )?;
    for e in [&srv[0], &cli[0]] {
        check_timing(e, t0, t1)?;
        check_wall_time(e, wall0, wall1, Duration::from_secs(1))?;
    }

    // (3) Metrics: this agent saw nothing but the three GETs above, from both ends.
    let requests = "apiguard_http_requests_total";
    let expect_delta = [
        (
            vec![("role", "server"), ("method", "GET"), ("status", "200")],
            3.0,
        ),
        (
            vec![("role", "client"), ("method", "GET"), ("status", "200")],
            3.0,
        ),
        (vec![], 6.0),
    ];
    let mut wrong = Vec::new();
    for (labels, want) in &expect_delta {
        let base = before.sum(requests, labels);
        let now = agent.wait_metric(
            requests,
            labels,
            |v| v - base == *want,
            Duration::from_secs(3),
        )?;
        if now - base != *want {
            wrong.push(format!(
                "  {requests}{labels:?}: increased by {}, expected {want}",
                now - base
            ));
        }
    }
    ensure!(
        wrong.is_empty(),
        "metrics differ:\n{}\nexchanges:\n{}{}",
        wrong.join("\n"),
        dump(&agent.exchanges()?),
        agent.diagnostics()
    );
    assert_eq!(agent.metric("apiguard_http_parse_errors_total", &[])?, 0.0);

    // After a clean stop the file holds exactly our six exchanges.
    let mut agent = agent;
    let status = agent.stop()?;
    ensure!(
        status.success(),
        "api-guard exited with {status}:\n{}",
        agent.stderr_tail(30)
    );
    let all = agent.exchanges()?;
    let count =
        |pid: u32, role: &'static str| all.iter().filter(|e| pid_role(pid, role)(e)).count();
    let counts = [
        count(server6.pid(), "server"),
        count(server_any.pid(), "server"),
        count(run.pid, "client"),
        count(run4.pid, "client"),
        all.len(),
    ];
    ensure!(
        counts == [2, 1, 2, 1, 6],
        "expected 2 + 1 server and 2 + 1 client exchanges and nothing else, got {counts:?}:\n{}",
        dump(&all)
    );
    Ok(())
}
