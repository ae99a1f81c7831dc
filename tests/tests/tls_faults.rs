//! Faults at an nginx HTTPS port while the agent hooks libssl.so.3: a TLS client killed
//! after sending half a request head, plain HTTP sent to the TLS port, a garbage TLS
//! record, and a handshake that fails for want of a common cipher. Afterwards nginx,
//! curl and the agent must all still work: the next keep-alive TLS run is captured
//! exactly, and the faults themselves leave exactly what was on the wire (the plain
//! HTTP request and nginx's plaintext 400) and nothing else: no exchange from the
//! ciphertext, the half request or the failed handshakes, and no parse errors.
//!
//! The agent captures nginx's pid and the test's unique curl and python comms.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::exchange::{check_fields, dump, merged, of_pid, pid_role, Window};
use integration_tests::procfs::mapped_path;
use integration_tests::servers::raw_exchange;
use integration_tests::tls::{
    check_run, curl_request_mix, tls_client_killed_mid_request, wait_probes_attached, End, Req,
    LIBSSL, MIX, MIX_FILES,
};
use integration_tests::util::unique_comm;
use integration_tests::{
    require_root, unique_port, veth_pair, Agent, AgentOptions, CommExe, Curl, CurlExe, Netns,
    Nginx, NginxOptions, TlsCert,
};
use serde_json::{json, Value};

/// The half request: the head stops in the middle of a header line.
const HALF_HEAD: &[u8] = b"GET /small.txt HTTP/1.1\r\nHost: half\r\nX-Pad: ";
/// A TLS handshake record header announcing 32 bytes, followed by 32 bytes of junk.
fn garbage_record() -> Vec<u8> {
    let mut record = vec![0x16, 0x03, 0x01, 0x00, 0x20];
    record.extend([0xab; 32]);
    record
}

#[test]
fn tls_faults_leave_nginx_curl_and_the_agent_working() -> Result<()> {
    require_root()?;
    let cert = TlsCert::generate("api-guard-test")?;
    let ns_srv = Netns::new("agtls-fsrv")?;
    let ns_cli = Netns::new("agtls-fcli")?;
    let (ip_srv, ip_cli) = veth_pair(&ns_srv, &ns_cli)?;
    let listen = SocketAddr::new(ip_srv.into(), unique_port()?);
    let nginx = Nginx::start_tls(&ns_srv, listen, &MIX_FILES, NginxOptions::default(), &cert)?;
    let libssl = mapped_path(nginx.pid(), LIBSSL)?;
    let curl_exe = CurlExe::with_comm(&unique_comm("agtf"))?;
    let py_exe = CommExe::python(&unique_comm("agth"))?;
    let mut agent = Agent::start(AgentOptions::capture_only(
        &[nginx.pid()],
        &[curl_exe.comm(), py_exe.comm()],
    ))?;
    wait_probes_attached(&agent, &libssl, Duration::from_secs(1))?;

    // 1. Handshake done, half a request head sent, then SIGKILL.
    let (half_pid, half_port) = tls_client_killed_mid_request(&ns_cli, &py_exe, listen, HALF_HEAD)?;
    // 2. Plain HTTP to the TLS port: nginx answers 400 in plaintext, curl exits 0.
    let (plain, plain_window) = Window::around(|| {
        Curl::new(&ns_cli)
            .exe(&curl_exe)
            .url(format!("http://{listen}/small.txt"))
            .run()
    })?;
    ensure!(
        plain.transfers.len() == 1 && plain.transfers[0].http_code() == 400,
        "plain HTTP to the TLS port: {plain:#?}"
    );
    // 3. A garbage handshake record: nginx's handshake fails and it closes.
    let garbage = raw_exchange(&ns_cli, listen, &garbage_record())?;
    // 4. No cipher in common (ECDSA only, the certificate is RSA): curl exits 35.
    let failed = Curl::new(&ns_cli)
        .exe(&curl_exe)
        .insecure()
        .args([
            "--tls-max",
            "1.2",
            "--ciphers",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
        ])
        .url(nginx.url("/small.txt"))
        .run_expecting(35)?;
    println!(
        "half request: pid {half_pid} port {half_port}; garbage record: pid {} port {}, \
         {} bytes back; failed handshake: curl pid {}",
        garbage.pid,
        garbage.local_port,
        garbage.response.len(),
        failed.pid
    );
    let (code, body) = agent.healthz()?;
    ensure!(
        code == 200,
        "/healthz after the faults: {code} {body}\n{}",
        agent.diagnostics()
    );
    ensure!(nginx.is_running(), "nginx died: {}", nginx.logs());

    // 5. Business as usual: the request mix over TLS, exact at both ends.
    let (run, window) = curl_request_mix(&ns_cli, &curl_exe, |t| nginx.url(t))?;
    let nginx_end = |library: Option<&str>| End {
        pid: nginx.pid(),
        comm: "nginx".into(),
        library: library.map(str::to_string),
    };
    let curl_end = |pid, library: Option<&str>| End {
        pid,
        comm: curl_exe.comm().into(),
        library: library.map(str::to_string),
    };
    let (srv, cli) = check_run(
        &agent,
        &nginx_end(Some(&libssl)),
        listen,
        &curl_end(run.pid, Some(&libssl)),
        &run,
        &MIX,
        &window,
    )?;
    // 6. The plain HTTP request is an ordinary plaintext exchange at both ends.
    let (plain_srv, plain_cli) = check_run(
        &agent,
        &nginx_end(None),
        listen,
        &curl_end(plain.pid, None),
        &plain,
        &[Req::new("/small.txt")],
        &plain_window,
    )?;

    // 7. The half request: nginx read an unfinished head, then the connection ended, so
    //    it is a request without a response (status null, request truncated), exactly
    //    as the same bytes in plaintext.
    let half_addr = SocketAddr::new(ip_cli.into(), half_port).to_string();
    let half = json!({
        "method": "GET", "path": "/small.txt", "query": null, "host": null, "version": "1.1",
        "status": null, "request_header_bytes": HALF_HEAD.len(), "request_body_bytes": 0,
        "response_header_bytes": 0, "response_body_bytes": 0,
        "request_truncated": true, "response_truncated": false,
        "tls": true, "tls_library": libssl,
    });
    let half_srv = agent.wait_for_exchanges(
        |e| pid_role(nginx.pid(), "server")(e) && e["peer_addr"] == half_addr.as_str(),
        1,
        Duration::from_secs(10),
    )?;
    ensure!(half_srv.len() == 1, "half request:\n{}", dump(&half_srv));
    check_fields(
        &half_srv[0],
        &merged(
            &half,
            json!({
                "role": "server", "pid": nginx.pid(), "comm": "nginx",
                "local_addr": listen.to_string(), "peer_addr": half_addr,
            }),
        ),
    )
    .context("the half request, nginx's side")?;

    // 8. No parse errors; after a clean stop, those exchanges and nothing else (the
    //    garbage record and the failed handshakes left none).
    let errors = agent.metric("apiguard_http_parse_errors_total", &[])?;
    ensure!(
        errors == 0.0,
        "{errors} HTTP parse errors\n{}",
        agent.diagnostics()
    );
    let status = agent.stop()?;
    ensure!(
        status.success(),
        "api-guard exited with {status}:\n{}",
        agent.stderr_tail(30)
    );
    // The killed client's own side ends when the agent learns its socket is gone; if it
    // is reported, it is the same unanswered request.
    let half_cli = agent.exchanges_matching(of_pid(half_pid))?;
    ensure!(half_cli.len() <= 1, "half request:\n{}", dump(&half_cli));
    for e in &half_cli {
        let local = &e["local_addr"];
        if local.is_null() {
            println!("note: the killed client's exchange has no local_addr: {e}");
        }
        let local = if local.is_null() {
            Value::Null
        } else {
            json!(half_addr)
        };
        check_fields(
            e,
            &merged(
                &half,
                json!({
                    "role": "client", "pid": half_pid, "comm": py_exe.comm(),
                    "local_addr": local, "peer_addr": listen.to_string(),
                }),
            ),
        )
        .context("the half request, the killed client's side")?;
    }
    let all = agent.exchanges()?;
    let expected = srv.len() + cli.len() + plain_srv.len() + plain_cli.len() + 1 + half_cli.len();
    ensure!(
        all.len() == expected,
        "expected 5 + 5 TLS, 1 + 1 plaintext and {} half-request exchanges only, got {}:\n{}",
        1 + half_cli.len(),
        all.len(),
        dump(&all)
    );
    ensure!(nginx.is_running(), "nginx died: {}", nginx.logs());
    Ok(())
}
