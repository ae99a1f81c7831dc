//! HTTPS between nginx (namespace A) and curl (namespace B) over a veth pair, captured
//! inside TLS through the OpenSSL uprobes on the system libssl.so.3, which both link
//! (curl through libcurl). One curl run makes five requests on one keep-alive TLS
//! connection: GET 200, GET 404, POST 5000 bytes, HEAD, and a 3 MiB GET.
//!
//! The agent captures only nginx's pid and the test's unique curl comm, so every
//! exchange and counter is this test's own.

use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::procfs::mapped_path;
use integration_tests::tls::{
    check_curl_mix, check_probe_sites, check_tls_only, linked_library,
    stop_expecting_tls_exchanges, wait_probes_attached, End, LIBSSL, MIX_FILES, REQUESTS,
};
use integration_tests::util::{unique_comm, which};
use integration_tests::{
    require_root, Agent, AgentOptions, CurlExe, NetPair, Nginx, NginxOptions, TlsCert,
};

#[test]
fn nginx_and_curl_over_tls() -> Result<()> {
    require_root()?;
    let cert = TlsCert::generate("api-guard-test")?;
    let net = NetPair::new("agtls-ngx")?;
    let listen = net.server_addr()?;
    let nginx = Nginx::start_tls(&net.srv, listen, &MIX_FILES, NginxOptions::default(), &cert)?;
    // The library as nginx maps it; curl loads the very same file.
    let libssl = mapped_path(nginx.pid(), LIBSSL)?;
    let curl_libssl = linked_library(&which("curl")?, LIBSSL)?;
    ensure!(
        libssl == curl_libssl,
        "nginx maps {libssl}, curl loads {curl_libssl}"
    );
    let curl_exe = CurlExe::with_comm(&unique_comm("agtc"))?;
    let mut agent = Agent::start(AgentOptions::capture_only(
        &[nginx.pid()],
        &[curl_exe.comm()],
    ))?;
    // Libraries in the standard directories are hooked before the agent reports healthy.
    let probes = wait_probes_attached(&agent, &libssl, Duration::from_secs(1))?;
    println!("{probes} uprobes attached in {libssl}");
    // Debian's SSL_read/SSL_write start with `sub` (single-stepped); the exchanges below are
    // all captured through the emulated entries of the internal functions instead.
    check_probe_sites(&agent, &libssl, &[("internal", 2.0), ("entry", 1.0)])?;
    let before = agent.metrics()?;

    let server = End {
        pid: nginx.pid(),
        comm: "nginx".into(),
        library: Some(libssl.clone()),
    };
    let statuses = [200, 404, 201, 200, 200];
    check_curl_mix(
        &agent, &net.cli, &curl_exe, &server, listen, statuses, &libssl,
    )?;
    check_tls_only(&agent, &before, listen, 5)?;
    agent.check_deltas(
        &before,
        &[
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
    stop_expecting_tls_exchanges(&mut agent, |_| true, 10)?;
    ensure!(nginx.is_running(), "nginx died: {}", nginx.logs());
    Ok(())
}
