//! nginx and its clients on loopback inside one namespace, with the agent capturing
//! host-wide (no filter): keep-alive GETs with a 404, HEAD, a 1 MiB body larger than the
//! per-syscall copy cap, and three pipelined requests in a single write.
//! Run twice: in the capture mode the agent picks, and through the entry + exit programs
//! (`API_GUARD_CAPTURE_MODE=entry-exit`, the older kernels' path).
//!
//! Other processes on the host also produce exchanges; everything here is selected by
//! the pids this test spawned (nginx runs with `master_process off`, so it is one pid).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use anyhow::{ensure, Context, Result};
use integration_tests::exchange::{
    check_fields, check_timing, check_wall_time, dump, merged, of_pid, pid_role, request_fields,
    sorted_by_start, summary,
};
use integration_tests::servers::raw_exchange;
use integration_tests::util::monotonic_ns;
use integration_tests::{
    require_root, unique_port, Agent, AgentOptions, Curl, CurlRun, Netns, Nginx,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);
const BIG: u64 = 1 << 20;

/// Checks the server-side (nginx) and client-side (curl) exchanges of one curl run.
fn check_run(
    agent: &Agent,
    nginx: &Nginx,
    run: &CurlRun,
    paths: &[&str],
    window: (u64, u64, SystemTime, SystemTime),
    small: bool,
) -> Result<()> {
    let n = paths.len();
    let first_port = run.transfers[0].local_addr()?.to_string();
    let ports: Vec<String> = run
        .transfers
        .iter()
        .map(|t| t.local_addr().map(|a| a.to_string()))
        .collect::<Result<_>>()?;
    let srv = agent
        .wait_for_exchanges(
            |e| {
                pid_role(nginx.pid(), "server")(e)
                    && ports.iter().any(|p| e["peer_addr"] == p.as_str())
            },
            n,
            WAIT,
        )
        .with_context(|| format!("nginx side of {paths:?}"))?;
    let cli = agent
        .wait_for_exchanges(pid_role(run.pid, "client"), n, WAIT)
        .with_context(|| format!("curl side of {paths:?}"))?;
    let (srv, cli) = (sorted_by_start(srv), sorted_by_start(cli));
    ensure!(
        srv.len() == n && cli.len() == n,
        "expected {n} server and {n} client exchanges (client port {first_port}):\n{}{}",
        dump(&srv),
        dump(&cli)
    );
    for (i, path) in paths.iter().enumerate() {
        let t = &run.transfers[i];
        let client = t.local_addr()?.to_string();
        let mut want = request_fields(t, nginx.addr(), t.method(), path, Value::Null, 0);
        if !small {
            // The 1 MiB body exceeds the 16 KiB per-call copy cap: truncation is expected,
            // while every size stays exact.
            if let Some(fields) = want.as_object_mut() {
                fields.remove("response_truncated");
            }
        }
        check_fields(
            &srv[i],
            &merged(
                &want,
                json!({
                    "role": "server", "pid": nginx.pid(), "comm": "nginx",
                    "local_addr": nginx.addr().to_string(), "peer_addr": client,
                }),
            ),
        )?;
        check_fields(
            &cli[i],
            &merged(
                &want,
                json!({
                    "role": "client", "pid": run.pid, "comm": "curl",
                    "local_addr": client, "peer_addr": nginx.addr().to_string(),
                }),
            ),
        )?;
        for e in [&srv[i], &cli[i]] {
            check_timing(e, window.0, window.1)?;
            check_wall_time(e, window.2, window.3, Duration::from_secs(1))?;
        }
    }
    Ok(())
}

fn curl_window(
    f: impl FnOnce() -> Result<CurlRun>,
) -> Result<(CurlRun, (u64, u64, SystemTime, SystemTime))> {
    let (t0, w0) = (monotonic_ns(), SystemTime::now());
    let run = f()?;
    Ok((run, (t0, monotonic_ns(), w0, SystemTime::now())))
}

/// (header bytes, body bytes) of each response in a raw HTTP/1.1 byte stream that uses
/// Content-Length framing.
fn split_responses(mut raw: &[u8]) -> Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("response without header end")?
            + 4;
        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .context("response without content-length")?
            .trim()
            .parse()?;
        out.push((end as u64, len as u64));
        raw = &raw[(end + len).min(raw.len())..];
    }
    Ok(out)
}

/// `API_GUARD_CAPTURE_MODE`: the agent's diagnostic switch of capture mode.
const CAPTURE_MODE_ENV: &str = "API_GUARD_CAPTURE_MODE";

/// Whether the running kernel is at least `major.minor` (`uname -r`).
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// The capture mode `api-guard status` reports.
fn capture_mode(agent: &Agent) -> Result<String> {
    let status: Value = serde_json::from_str(&agent.cli_ok(&["status", "--json"])?)?;
    Ok(status["capture_mode"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// The data syscalls captured by their exits alone where the kernel allows it (Linux >= 5.15
/// on x86-64), else by the entry and exit programs.
#[test]
fn nginx_on_loopback_in_a_namespace() -> Result<()> {
    let expected = if cfg!(target_arch = "x86_64") && kernel_at_least(5, 15) {
        "exit-only"
    } else {
        "entry+exit"
    };
    nginx_on_loopback(AgentOptions::default(), expected)
}

/// The same through the older kernels' path, forced by the diagnostic switch, so that both
/// capture modes stay covered on any kernel.
#[test]
fn nginx_on_loopback_through_entry_and_exit_programs() -> Result<()> {
    let opts = AgentOptions {
        env: vec![(CAPTURE_MODE_ENV.into(), "entry-exit".into())],
        ..AgentOptions::default()
    };
    nginx_on_loopback(opts, "entry+exit")
}

fn nginx_on_loopback(opts: AgentOptions, mode: &str) -> Result<()> {
    require_root()?;
    let ns = Netns::new("agngx")?;
    let listen = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), unique_port()?);
    let nginx = Nginx::start(
        &ns,
        listen,
        &[("a.txt", 100), ("b.bin", 5000), ("big.bin", BIG as usize)],
    )?;
    let agent = Agent::start(opts)?;
    let reported = capture_mode(&agent)?;
    ensure!(
        reported == mode,
        "capture mode {reported:?}, expected {mode:?}"
    );
    let mut curl_pids = Vec::new();

    // Keep-alive: two files and a 404 on one connection.
    let (run, window) = curl_window(|| {
        Curl::new(&ns)
            .url(nginx.url("/a.txt"))
            .url(nginx.url("/b.bin"))
            .url(nginx.url("/missing"))
            .run()
    })?;
    curl_pids.push(run.pid);
    let codes: Vec<(u16, u64)> = run
        .transfers
        .iter()
        .map(|t| (t.http_code(), t.size_download()))
        .collect();
    ensure!(
        run.connects() == 1,
        "curl did not reuse its connection: {run:#?}"
    );
    ensure!(
        codes[..2] == [(200, 100), (200, 5000)] && codes[2].0 == 404,
        "curl saw {codes:?}"
    );
    check_run(
        &agent,
        &nginx,
        &run,
        &["/a.txt", "/b.bin", "/missing"],
        window,
        true,
    )?;
    let conn_ids: Vec<Value> = agent
        .exchanges_matching(pid_role(run.pid, "client"))?
        .iter()
        .map(|e| e["conn_id"].clone())
        .collect();
    ensure!(
        conn_ids.windows(2).all(|w| w[0] == w[1]),
        "one connection, one conn_id: {conn_ids:?}"
    );

    // HEAD: a Content-Length header but no body on the wire.
    let (run, window) = curl_window(|| Curl::new(&ns).arg("-I").url(nginx.url("/a.txt")).run())?;
    curl_pids.push(run.pid);
    let t = &run.transfers[0];
    ensure!(
        (t.method(), t.http_code(), t.size_download()) == ("HEAD", 200, 0),
        "{t:?}"
    );
    check_run(&agent, &nginx, &run, &["/a.txt"], window, true)?;

    // 1 MiB: far above the 16 KiB per-call copy cap; bytes are still counted exactly.
    let (run, window) = curl_window(|| Curl::new(&ns).url(nginx.url("/big.bin")).run())?;
    curl_pids.push(run.pid);
    ensure!(run.transfers[0].size_download() == BIG, "{run:#?}");
    check_run(&agent, &nginx, &run, &["/big.bin"], window, false)?;
    for e in agent.exchanges_matching(|e| {
        of_pid(run.pid)(e) || (of_pid(nginx.pid())(e) && e["path"] == "/big.bin")
    })? {
        ensure!(
            e["response_body_bytes"] == BIG,
            "1 MiB body: {}",
            summary(&e)
        );
        println!("1 MiB exchange: {}", summary(&e));
    }

    // Pipelining: three requests in one write, answered in order on one connection.
    let requests = [
        "GET /a.txt HTTP/1.1\r\nHost: pipe\r\n\r\n",
        "GET /b.bin HTTP/1.1\r\nHost: pipe\r\n\r\n",
        "GET /a.txt?n=3 HTTP/1.1\r\nHost: pipe\r\nConnection: close\r\n\r\n",
    ];
    let (t0, w0) = (monotonic_ns(), SystemTime::now());
    let raw = raw_exchange(&ns, listen, requests.concat().as_bytes())?;
    let (t1, w1) = (monotonic_ns(), SystemTime::now());
    let responses = split_responses(&raw.response)?;
    ensure!(
        raw.status_codes() == [200, 200, 200] && responses.len() == 3,
        "nginx answered: {}",
        String::from_utf8_lossy(&raw.response)
    );
    let client = SocketAddr::new(listen.ip(), raw.local_port).to_string();
    let srv = agent
        .wait_for_exchanges(
            |e| pid_role(nginx.pid(), "server")(e) && e["peer_addr"] == client.as_str(),
            3,
            WAIT,
        )
        .context("nginx side of three pipelined requests")?;
    let cli = agent
        .wait_for_exchanges(pid_role(raw.pid, "client"), 3, WAIT)
        .context("client side of three pipelined requests")?;
    ensure!(
        srv.len() == 3 && cli.len() == 3,
        "pipelined exchanges:\n{}{}",
        dump(&srv),
        dump(&cli)
    );
    let wanted = [
        ("/a.txt", Value::Null),
        ("/b.bin", Value::Null),
        ("/a.txt", json!("n=3")),
    ];
    for (i, (path, query)) in wanted.into_iter().enumerate() {
        let want = json!({
            "method": "GET", "path": path, "query": query, "host": "pipe", "version": "1.1",
            "status": 200, "tls": false,
            "request_header_bytes": requests[i].len(), "request_body_bytes": 0,
            "response_header_bytes": responses[i].0, "response_body_bytes": responses[i].1,
            "request_truncated": false, "response_truncated": false,
        });
        // File order is request order: the exchanges come out in the order sent.
        check_fields(
            &srv[i],
            &merged(&want, json!({
                "role": "server", "pid": nginx.pid(), "local_addr": listen.to_string(), "peer_addr": client,
            })),
        )
        .with_context(|| format!("pipelined request {i} (server side, file order)"))?;
        check_fields(
            &cli[i],
            &merged(&want, json!({
                "role": "client", "pid": raw.pid, "local_addr": client, "peer_addr": listen.to_string(),
            })),
        )
        .with_context(|| format!("pipelined request {i} (client side, file order)"))?;
        for e in [&srv[i], &cli[i]] {
            check_timing(e, t0, t1)?;
            check_wall_time(e, w0, w1, Duration::from_secs(1))?;
        }
    }
    ensure!(
        srv.iter().all(|e| e["conn_id"] == srv[0]["conn_id"]),
        "pipelined requests share one connection:\n{}",
        dump(&srv)
    );

    // Clean stop; then exactly the exchanges above exist for our processes.
    let mut agent = agent;
    let status = agent.stop()?;
    ensure!(
        status.success(),
        "api-guard exited with {status}:\n{}",
        agent.stderr_tail(30)
    );
    let nginx_all = agent.exchanges_matching(of_pid(nginx.pid()))?;
    ensure!(
        nginx_all.len() == 8 && nginx_all.iter().all(|e| e["role"] == "server"),
        "nginx served 3 + 1 + 1 + 3 requests, exchanges:\n{}",
        dump(&nginx_all)
    );
    for (pid, n) in curl_pids.iter().zip([3, 1, 1]).chain([(&raw.pid, 3)]) {
        let mine = agent.exchanges_matching(of_pid(*pid))?;
        ensure!(
            mine.len() == n && mine.iter().all(|e| e["role"] == "client"),
            "client pid {pid} made {n} requests, exchanges:\n{}",
            dump(&mine)
        );
    }
    Ok(())
}
