//! Go `crypto/tls`: Go HTTPS servers and clients (`tests/go/tlsapp`, built unstripped and
//! stripped with `-ldflags=-s -w`) in two namespaces over a veth pair, all started after the
//! agent, HTTP/1.1 and HTTP/2. Every exchange must appear at both ends exactly as the Go
//! client saw it (method, path, query, status, body bytes), inside TLS with
//! `tls_library = "go:<version>"` and the connection's real addresses; a Go program without
//! `crypto/tls` is not hooked; and many goroutines over many connections under sustained load
//! run to completion under the probes, with every exchange on its own connection's stream
//! (each response body names its request; the sizes the agent reports are checked per path).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::exchange::{dump, pid_role};
use integration_tests::golang::{go_client, GoClientRun, GoPrograms, GoServer, Http};
use integration_tests::tls::{wait_probes_attached, PROBES_ATTACHED, PROBE_SITES};
use integration_tests::util::unique_comm;
use integration_tests::{require_root, Agent, AgentOptions, CommExe, NetPair, TlsCert};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

/// Requests every functional run makes, in order (one worker, one round): small and large
/// bodies both ways, a 404, a HEAD, a query. 100000 bytes exceed one TLS record and one
/// 16 KiB copy, so they arrive in several `Read` calls and one big `Write`.
const SPECS: [&str; 6] = [
    "GET:/a?size=10:0",
    "POST:/upload:1000",
    "GET:/big?size=100000:0",
    "GET:/missing:0",
    "HEAD:/a?size=10:0",
    "POST:/up2?size=5000:70000",
];

/// `(method, path, query, status, request body, response body, version)` of one exchange.
type Row = (String, String, Value, u64, u64, u64, String);

fn rows_of_client(run: &GoClientRun) -> Vec<Row> {
    let mut rows: Vec<Row> = run
        .results
        .iter()
        .map(|r| {
            let (path, query) = match r.target.split_once('?') {
                Some((p, q)) => (p.to_string(), Value::from(q)),
                None => (r.target.clone(), Value::Null),
            };
            let version = if r.proto == "HTTP/2.0" { "2" } else { "1.1" };
            (
                r.method.clone(),
                path,
                query,
                u64::from(r.status),
                r.sent,
                r.body,
                version.to_string(),
            )
        })
        .collect();
    rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    rows
}

fn rows_of_exchanges(exchanges: &[Value]) -> Vec<Row> {
    let mut rows: Vec<Row> = exchanges
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap_or_default().to_string(),
                e["path"].as_str().unwrap_or_default().to_string(),
                e["query"].clone(),
                e["status"].as_u64().unwrap_or(0),
                e["request_body_bytes"].as_u64().unwrap_or(u64::MAX),
                e["response_body_bytes"].as_u64().unwrap_or(u64::MAX),
                e["version"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    rows
}

/// One end of a client run as the agent saw it: exactly the client's exchanges, all inside
/// Go's TLS, with the right process and addresses.
#[expect(
    clippy::too_many_arguments,
    reason = "one end's expected identity, spelled out"
)]
fn check_end(
    agent: &Agent,
    run: &GoClientRun,
    pid: u32,
    role: &'static str,
    comm: &str,
    library: &str,
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
) -> Result<Vec<Value>> {
    let n = run.results.len();
    let got = agent
        .wait_for_exchanges(pid_role(pid, role), n, WAIT)
        .with_context(|| format!("{role} side ({comm})"))?;
    ensure!(
        rows_of_exchanges(&got) == rows_of_client(run),
        "{role} side ({comm}): the agent saw\n{:#?}\nthe client\n{:#?}",
        rows_of_exchanges(&got),
        rows_of_client(run)
    );
    for e in &got {
        ensure!(
            e["tls"] == true && e["tls_library"] == library && e["comm"] == comm,
            "{role} exchange not from {library} in {comm}: {e}"
        );
        // Only a body moved by a single call of more than 64 KiB (Go's copy cap) may be
        // truncated, its size still exact: HTTP/2 DATA frames up to the peer's 1 MiB frame
        // size carry a request body of 70000 bytes in one `Write`.
        for (flag, bytes) in [
            ("request_truncated", "request_body_bytes"),
            ("response_truncated", "response_body_bytes"),
        ] {
            ensure!(
                e[flag] != true || e[bytes].as_u64().unwrap_or(0) > 65_536,
                "{role} exchange truncated: {e}"
            );
        }
        if let Some(local) = local {
            ensure!(e["local_addr"] == local.to_string().as_str(), "{role}: {e}");
        }
        if let Some(peer) = peer {
            ensure!(e["peer_addr"] == peer.to_string().as_str(), "{role}: {e}");
        }
    }
    Ok(got)
}

/// The mapped path of `exe` in a Go process: the real file (comm symlinks are resolved).
fn real_path(exe: &std::path::Path) -> Result<String> {
    Ok(std::fs::canonicalize(exe)?.to_string_lossy().into_owned())
}

#[test]
fn go_https_http1_and_http2_stripped_or_not() -> Result<()> {
    require_root()?;
    let go = GoPrograms::get()?;
    let library = go.tls_library();
    let cert = TlsCert::generate("api-guard-go")?;
    let net = NetPair::new("agtls-go")?;
    let (plain_exe, srv_u, srv_s) = (
        CommExe::new(&go.plain, &unique_comm("gopl"))?,
        CommExe::new(&go.tlsapp, &unique_comm("gosu"))?,
        CommExe::new(&go.tlsapp_stripped, &unique_comm("goss"))?,
    );
    let (cli_u, cli_s) = (
        CommExe::new(&go.tlsapp, &unique_comm("gocu"))?,
        CommExe::new(&go.tlsapp_stripped, &unique_comm("gocs"))?,
    );
    let comms = [
        plain_exe.comm(),
        srv_u.comm(),
        srv_s.comm(),
        cli_u.comm(),
        cli_s.comm(),
    ];
    let mut agent = Agent::start(AgentOptions::comms_only(&comms))?;
    let before = agent.metrics()?;

    // Started after the agent: found on exec. The plain program first: by the time the TLS
    // servers (exec'd after it) are hooked, it has been inspected too.
    let plain = GoServer::plain(&net.srv, &plain_exe, net.server_addr()?)?;
    let (addr_u, addr_s) = (net.server_addr()?, net.server_addr()?);
    let mut server_u = GoServer::https(&net.srv, &srv_u, addr_u, &cert, Http::H1)?;
    let mut server_s = GoServer::https(&net.srv, &srv_s, addr_s, &cert, Http::H1)?;
    let (path_u, path_s) = (real_path(&go.tlsapp)?, real_path(&go.tlsapp_stripped)?);
    for path in [&path_u, &path_s] {
        let probes = wait_probes_attached(&agent, path, Duration::from_secs(5))?;
        // Write and Read at their stack check, Read's result at its memmove call (Go 1.19).
        let metrics = agent.metrics()?;
        let sites = |kind| metrics.sum(PROBE_SITES, &[("library", path), ("kind", kind)]);
        ensure!(
            sites("stack_check") == 2.0 && sites("read_copy") == 1.0 && sites("return") == 0.0,
            "{path}: sites stack_check {} read_copy {} return {}",
            sites("stack_check"),
            sites("read_copy"),
            sites("return")
        );
        ensure!(probes == 3.0, "{path}: {probes} probes");
        println!("{path}: {probes} uprobes");
    }
    let plain_path = real_path(&go.plain)?;
    let plain_probes = agent
        .metrics()?
        .sum(PROBES_ATTACHED, &[("library", &plain_path)]);
    ensure!(
        plain_probes == 0.0,
        "{plain_path} was hooked: {plain_probes}"
    );
    // And it works as ever under the agent.
    {
        let mut echo = std::process::Command::new("ip");
        echo.args(["netns", "exec", net.cli.name(), "python3", "-c"])
            .arg(format!(
                "import socket;s=socket.create_connection(('{}',{}));s.sendall(b'ping\\n');\
                 print(s.makefile().readline(),end='')",
                plain.addr.ip(),
                plain.addr.port()
            ));
        let out = echo.output()?;
        ensure!(out.stdout == b"ping\n", "plain echo: {out:?}");
    }

    // HTTP/1.1: the unstripped client to the stripped server and the other way round.
    for (client, server, addr) in [(&cli_u, &server_s, addr_s), (&cli_s, &server_u, addr_u)] {
        let run = go_client(&net.cli, client, addr, Http::H1, (1, 1), &SPECS)?;
        ensure!(run.results.len() == SPECS.len() && run.results[2].body == 100_000);
        let srv_comm = if addr == addr_u {
            srv_u.comm()
        } else {
            srv_s.comm()
        };
        let srv = check_end(
            &agent,
            &run,
            server.pid(),
            "server",
            srv_comm,
            &library,
            Some(addr),
            None,
        );
        let srv = srv.and_then(|srv| {
            let peer = srv[0]["peer_addr"].as_str().unwrap_or_default().to_string();
            ensure!(
                peer.starts_with(&format!("{}:", net.cli_ip)),
                "server peer {peer}"
            );
            Ok(srv)
        })?;
        let cli = check_end(
            &agent,
            &run,
            run.pid,
            "client",
            client.comm(),
            &library,
            None,
            Some(addr),
        )?;
        // Both ends saw one connection, the same one.
        ensure!(
            srv.iter().all(|e| e["peer_addr"] == cli[0]["local_addr"])
                && cli.iter().all(|e| e["local_addr"] == cli[0]["local_addr"]),
            "not one connection:\n{}{}",
            dump(&srv),
            dump(&cli)
        );
        println!("HTTP/1.1 {}:\n{}{}", client.comm(), dump(&srv), dump(&cli));
    }

    // HTTP/2 (Go's default): a stripped client to an unstripped server.
    let addr_h2 = net.server_addr()?;
    let server_h2 = GoServer::https(&net.srv, &srv_u, addr_h2, &cert, Http::H2)?;
    let run = go_client(&net.cli, &cli_s, addr_h2, Http::H2, (1, 1), &SPECS)?;
    ensure!(
        run.results.iter().all(|r| r.proto == "HTTP/2.0"),
        "{:?}",
        run.results
    );
    let srv = check_end(
        &agent,
        &run,
        server_h2.pid(),
        "server",
        srv_u.comm(),
        &library,
        Some(addr_h2),
        None,
    )?;
    let cli = check_end(
        &agent,
        &run,
        run.pid,
        "client",
        cli_s.comm(),
        &library,
        None,
        Some(addr_h2),
    )?;
    println!("HTTP/2:\n{}{}", dump(&srv), dump(&cli));

    // Nothing was parsed from ciphertext, nothing lost or unattributed.
    let after = agent.metrics()?;
    for (name, labels) in [
        ("apiguard_http_requests_total", &[("tls", "false")][..]),
        ("apiguard_http_parse_errors_total", &[][..]),
        ("apiguard_tls_calls_unattributed_total", &[][..]),
        ("apiguard_http_exchanges_lost_total", &[][..]),
    ] {
        let delta = after.sum(name, labels) - before.sum(name, labels);
        ensure!(
            delta == 0.0,
            "{name}{labels:?} rose by {delta}: {:?}",
            ["no_fd", "untracked", "go_conn_unknown", "go_conn_closed"].map(|r| (
                r,
                after.sum(name, &[("reason", r)]) - before.sum(name, &[("reason", r)])
            ))
        );
    }
    ensure!(server_u.is_running() && server_s.is_running());
    agent.stop_cleanly()?;
    Ok(())
}

/// Sustained load over many connections and goroutines (HTTP/1.1: 16 connections, HTTP/2:
/// streams multiplexed on one): nothing crashes, the client checks every body names its
/// request, and the agent reports every exchange exactly once with the sizes that belong to
/// its path (sizes differ per request, so bytes of one connection or stream showing up on
/// another would show).
#[test]
fn go_https_goroutines_under_load() -> Result<()> {
    require_root()?;
    let go = GoPrograms::get()?;
    let library = go.tls_library();
    let cert = TlsCert::generate("api-guard-go")?;
    let net = NetPair::new("agtls-gol")?;
    let srv_exe = CommExe::new(&go.tlsapp_stripped, &unique_comm("golS"))?;
    let cli_exe = CommExe::new(&go.tlsapp, &unique_comm("golC"))?;
    let mut agent = Agent::start(AgentOptions::comms_only(&[srv_exe.comm(), cli_exe.comm()]))?;
    let before = agent.metrics()?;
    let specs = [
        "GET:/g/{w}/{r}?size=1{w}{r}:0",
        "POST:/p/{w}/{r}?size=2{r}{w}:3{w}{r}",
    ];
    let (workers, rounds) = (16, 40);
    for http in [Http::H1, Http::H2] {
        let addr = net.server_addr()?;
        let mut server = GoServer::https(&net.srv, &srv_exe, addr, &cert, http)?;
        if http == Http::H1 {
            wait_probes_attached(
                &agent,
                &real_path(&go.tlsapp_stripped)?,
                Duration::from_secs(5),
            )?;
        }
        let run = go_client(&net.cli, &cli_exe, addr, http, (workers, rounds), &specs)?;
        let n = (workers * rounds) as usize * specs.len();
        ensure!(run.results.len() == n, "{} results", run.results.len());
        for (pid, role) in [(server.pid(), "server"), (run.pid, "client")] {
            let got = agent.wait_for_exchanges(pid_role(pid, role), n, WAIT)?;
            ensure!(got.len() == n, "{http:?} {role}: {} exchanges", got.len());
            ensure!(
                rows_of_exchanges(&got) == rows_of_client(&run),
                "{http:?} {role}: exchanges differ from what the client saw"
            );
            ensure!(
                got.iter().all(|e| e["tls_library"] == library.as_str()),
                "{http:?} {role}: library"
            );
            let conns: BTreeMap<u64, usize> = got.iter().fold(BTreeMap::new(), |mut m, e| {
                *m.entry(e["conn_id"].as_u64().unwrap_or(0)).or_default() += 1;
                m
            });
            println!(
                "{http:?} {role}: {n} exchanges on {} connections",
                conns.len()
            );
        }
        ensure!(server.is_running(), "the Go server died under load");
    }
    let after = agent.metrics()?;
    for (name, labels) in [
        ("apiguard_http_parse_errors_total", &[][..]),
        (
            "apiguard_tls_calls_unattributed_total",
            &[("reason", "no_fd")][..],
        ),
        (
            "apiguard_tls_calls_unattributed_total",
            &[("reason", "untracked")][..],
        ),
        (
            "apiguard_tls_calls_unattributed_total",
            &[("reason", "go_conn_unknown")][..],
        ),
        ("apiguard_http_exchanges_lost_total", &[][..]),
    ] {
        let delta = after.sum(name, labels) - before.sum(name, labels);
        ensure!(delta == 0.0, "{name}{labels:?} rose by {delta}");
    }
    let closed = |m: &integration_tests::metrics::Metrics| {
        m.sum(
            "apiguard_tls_calls_unattributed_total",
            &[("reason", "go_conn_closed")],
        )
    };
    println!(
        "calls on sockets closed meanwhile: {}",
        closed(&after) - closed(&before)
    );
    agent.stop_cleanly()?;
    Ok(())
}
