//! HTTPS between nginx (namespace A) and curl (namespace B) over a veth pair, captured
//! inside TLS through the OpenSSL uprobes on the system libssl.so.3, which both link
//! (curl through libcurl). One curl run makes five requests on one keep-alive TLS
//! connection: GET 200, GET 404, POST 5000 bytes, HEAD, and a 3 MiB GET.
//!
//! The agent captures only nginx's pid and the test's unique curl comm, so every
//! exchange and counter is this test's own.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::exchange::dump;
use integration_tests::procfs::mapped_path;
use integration_tests::tls::{
    check_no_ciphertext_exchanges, check_run, curl_request_mix, linked_library,
    wait_probes_attached, End, LIBSSL, MIX, MIX_FILES,
};
use integration_tests::util::{unique_comm, which};
use integration_tests::{
    require_root, unique_port, veth_pair, Agent, AgentOptions, CurlExe, Netns, Nginx, NginxOptions,
    TlsCert,
};

const REQUESTS: &str = "apiguard_http_requests_total";

#[test]
fn nginx_and_curl_over_tls() -> Result<()> {
    require_root()?;
    let cert = TlsCert::generate("api-guard-test")?;
    let ns_srv = Netns::new("agtls-ngx")?;
    let ns_cli = Netns::new("agtls-cli")?;
    let (ip_srv, _) = veth_pair(&ns_srv, &ns_cli)?;
    let listen = SocketAddr::new(ip_srv.into(), unique_port()?);
    let nginx = Nginx::start_tls(&ns_srv, listen, &MIX_FILES, NginxOptions::default(), &cert)?;
    // The library as nginx maps it; curl loads the very same file.
    let libssl = mapped_path(nginx.pid(), LIBSSL)?;
    let curl_libssl = linked_library(&which("curl")?, LIBSSL)?;
    ensure!(
        libssl == curl_libssl,
        "nginx maps {libssl}, curl loads {curl_libssl}"
    );
    let curl_exe = CurlExe::with_comm(&unique_comm("agtc"))?;
    let agent = Agent::start(AgentOptions::capture_only(
        &[nginx.pid()],
        &[curl_exe.comm()],
    ))?;
    // Libraries in the standard directories are hooked before the agent reports healthy.
    let probes = wait_probes_attached(&agent, &libssl, Duration::from_secs(1))?;
    println!("{probes} uprobes attached in {libssl}");
    let before = agent.metrics()?;

    let (run, window) = curl_request_mix(&ns_cli, &curl_exe, |t| nginx.url(t))?;
    let codes: Vec<u16> = run.transfers.iter().map(|t| t.http_code()).collect();
    ensure!(
        codes == [200, 404, 201, 200, 200],
        "nginx answered {codes:?}"
    );
    let server = End {
        pid: nginx.pid(),
        comm: "nginx".into(),
        library: Some(libssl.clone()),
    };
    let client = End {
        pid: run.pid,
        comm: curl_exe.comm().into(),
        library: Some(libssl.clone()),
    };
    let (srv, cli) = check_run(&agent, &server, listen, &client, &run, &MIX, &window)?;
    print!("server side:\n{}client side:\n{}", dump(&srv), dump(&cli));
    check_no_ciphertext_exchanges(&agent, listen)?;
    agent.check_deltas(
        &before,
        &[
            (REQUESTS, &[("role", "server"), ("tls", "true")], 5.0),
            (REQUESTS, &[("role", "client"), ("tls", "true")], 5.0),
            (REQUESTS, &[("tls", "false")], 0.0),
            (
                REQUESTS,
                &[
                    ("role", "server"),
                    ("method", "POST"),
                    ("status", "201"),
                    ("tls", "true"),
                ],
                1.0,
            ),
            (
                REQUESTS,
                &[
                    ("role", "client"),
                    ("method", "HEAD"),
                    ("status", "200"),
                    ("tls", "true"),
                ],
                1.0,
            ),
        ],
    )?;

    // After a clean stop the file holds exactly those ten exchanges.
    let mut agent = agent;
    let status = agent.stop()?;
    ensure!(
        status.success(),
        "api-guard exited with {status}:\n{}",
        agent.stderr_tail(30)
    );
    let all = agent.exchanges()?;
    ensure!(
        all.len() == 10 && all.iter().all(|e| e["tls"] == true),
        "expected exactly the 5 + 5 TLS exchanges, got {}:\n{}",
        all.len(),
        dump(&all)
    );
    ensure!(nginx.is_running(), "nginx died: {}", nginx.logs());
    Ok(())
}
