//! Faults at an nginx HTTPS port while the agent hooks libssl.so.3: a TLS client killed
//! after sending half a request head, plain HTTP sent to the TLS port, a garbage TLS
//! record, and a handshake that fails for want of a common cipher. Afterwards nginx,
//! curl and the agent must all still work: the next keep-alive TLS run is captured
//! exactly. The faults leave exactly what was on the wire: the plain HTTP request with
//! nginx's plaintext 400 (`tls: false`, both ends), the half request as an unanswered,
//! truncated request inside TLS; and nothing from the ciphertext, the garbage record or
//! the failed handshakes, with no parse errors.
//!
//! The agent captures nginx's pid and the test's unique curl and python comms.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::exchange::{check_fields, dump, merged, of_pid, pid_role, Window};
use integration_tests::procfs::mapped_path;
use integration_tests::servers::raw_exchange;
use integration_tests::tls::{
    check_curl_mix, check_run, curl_without_common_cipher, tls_client_killed_mid_request,
    wait_probes_attached, End, Req, LIBSSL, MIX_FILES,
};
use integration_tests::util::unique_comm;
use integration_tests::{
    require_root, Agent, AgentOptions, CommExe, Curl, CurlExe, NetPair, Nginx, NginxOptions,
    TlsCert,
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
    let net = NetPair::new("agtls-flt")?;
    let listen = net.server_addr()?;
    let nginx = Nginx::start_tls(&net.srv, listen, &MIX_FILES, NginxOptions::default(), &cert)?;
    let libssl = mapped_path(nginx.pid(), LIBSSL)?;
    let curl_exe = CurlExe::with_comm(&unique_comm("agtf"))?;
    let py_exe = CommExe::python(&unique_comm("agth"))?;
    let mut agent = Agent::start(AgentOptions::capture_only(
        &[nginx.pid()],
        &[curl_exe.comm(), py_exe.comm()],
    ))?;
    wait_probes_attached(&agent, &libssl, Duration::from_secs(1))?;

    // 1. Handshake done, half a request head sent, then SIGKILL.
    let (half_pid, half_port) =
        tls_client_killed_mid_request(&net.cli, &py_exe, listen, HALF_HEAD)?;
    // 2. Plain HTTP to the TLS port: nginx answers 400 in plaintext, curl exits 0.
    let (plain, plain_window) = Window::around(|| {
        Curl::new(&net.cli)
            .exe(&curl_exe)
            .url(format!("http://{listen}/small.txt"))
            .run()
    })?;
    ensure!(
        plain.transfers.len() == 1 && plain.transfers[0].http_code() == 400,
        "plain HTTP to the TLS port: {plain:#?}"
    );
    // 3. A garbage handshake record: nginx's handshake fails and it closes.
    let garbage = raw_exchange(&net.cli, listen, &garbage_record())?;
    // 4. No cipher in common (ECDSA only, the certificate is RSA): curl exits 35.
    let failed =
        curl_without_common_cipher(Curl::new(&net.cli).exe(&curl_exe), nginx.url("/small.txt"))?;
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
    let tls_server = End {
        pid: nginx.pid(),
        comm: "nginx".into(),
        library: Some(libssl.clone()),
    };
    let statuses = [200, 404, 201, 200, 200];
    check_curl_mix(
        &agent,
        &net.cli,
        &curl_exe,
        &tls_server,
        listen,
        statuses,
        &libssl,
    )?;
    // 6. The plain HTTP request is an ordinary plaintext exchange at both ends.
    let plain_client = End {
        pid: plain.pid,
        comm: curl_exe.comm().into(),
        library: None,
    };
    let plain_server = End {
        library: None,
        ..tls_server
    };
    let plain_reqs = [Req::new("/small.txt")];
    check_run(
        &agent,
        &plain_server,
        listen,
        &plain_client,
        &plain,
        &plain_reqs,
        &plain_window,
    )?;

    // 7. The half request: nginx read an unfinished head, then the connection ended, so
    //    it is a request without a response (status null, request truncated), exactly
    //    as the same bytes in plaintext.
    let half_addr = SocketAddr::new(net.cli_ip.into(), half_port).to_string();
    let half = json!({
        "method": "GET", "path": "/small.txt", "query": null, "host": null, "version": "1.1",
        "status": null, "request_header_bytes": HALF_HEAD.len(), "request_body_bytes": 0,
        "response_header_bytes": 0, "response_body_bytes": 0,
        "request_truncated": true, "response_truncated": false,
        "tls": true, "tls_library": libssl,
    });
    let nginx_half =
        |e: &Value| pid_role(nginx.pid(), "server")(e) && e["peer_addr"] == half_addr.as_str();
    agent.wait_for_exchanges(nginx_half, 1, Duration::from_secs(10))?;

    // 8. No parse errors; after a clean stop, those exchanges and nothing else (the
    //    garbage record and the failed handshakes left none).
    let errors = agent.metric("apiguard_http_parse_errors_total", &[])?;
    ensure!(
        errors == 0.0,
        "{errors} HTTP parse errors\n{}",
        agent.diagnostics()
    );
    agent.stop_cleanly()?;
    let half_srv = agent.exchanges_matching(nginx_half)?;
    // The killed client never calls close, yet its side is the same unanswered request.
    let half_cli = agent.exchanges_matching(of_pid(half_pid))?;
    print!("half request:\n{}{}", dump(&half_srv), dump(&half_cli));
    let mut problems = Vec::new();
    let side = |role: &str, pid: u32, comm: &str, local: &str, peer: &str| {
        let end =
            json!({"role": role, "pid": pid, "comm": comm, "local_addr": local, "peer_addr": peer});
        merged(&half, end)
    };
    let (listen_s, nginx_pid) = (listen.to_string(), nginx.pid());
    let checks = [
        (
            "nginx's side",
            &half_srv,
            side("server", nginx_pid, "nginx", &listen_s, &half_addr),
        ),
        (
            "the killed client's side",
            &half_cli,
            side("client", half_pid, py_exe.comm(), &half_addr, &listen_s),
        ),
    ];
    for (what, exchanges, want) in checks {
        for e in exchanges {
            if let Err(err) = check_fields(e, &want) {
                problems.push(format!("the half request, {what}: {err:#}"));
            }
        }
    }
    if half_srv.len() != 1 || half_cli.len() != 1 {
        problems.push(format!(
            "the half request: expected 1 exchange at each end:\n{}{}",
            dump(&half_srv),
            dump(&half_cli)
        ));
    }
    let all = agent.exchanges()?;
    if all.len() != 14 {
        problems.push(format!(
            "expected 5 + 5 TLS, 1 + 1 plaintext and 1 + 1 half-request exchanges only, got {}:\n{}",
            all.len(),
            dump(&all)
        ));
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    ensure!(nginx.is_running(), "nginx died: {}", nginx.logs());
    Ok(())
}
