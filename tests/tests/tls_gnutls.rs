//! GnuTLS: `gnutls-cli` (Debian's gnutls-bin, linking libgnutls.so.30) sends two pipelined
//! requests over one TLS connection to python's HTTPS server (libssl.so.3). The client side
//! comes from the `gnutls_record_send`/`gnutls_record_recv` hooks, the server side from
//! OpenSSL's; both must be exact.

use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::exchange::{check_fields, dump};
use integration_tests::procfs::mapped_path;
use integration_tests::tls::check_probe_sites;
use integration_tests::util::{run_with_timeout, unique_comm};
use integration_tests::{
    require_root, Agent, AgentOptions, NetPair, PyHttpServer, PyOptions, TlsCert,
};
use serde_json::json;

const CLIENT: &str = "gnutls-cli";

#[test]
fn gnutls_client_against_an_openssl_server() -> Result<()> {
    require_root()?;
    let cert = TlsCert::generate("api-guard-test")?;
    let net = NetPair::new("agtls-gnu")?;
    let listen = net.server_addr()?;
    let server = PyHttpServer::start_tls(
        &net.srv,
        listen,
        &[("x", 10), ("y", 1000)],
        PyOptions {
            comm: Some(unique_comm("agtg")),
        },
        &cert,
    )?;
    let libssl = mapped_path(server.pid(), "libssl.so.3")?;
    let agent = Agent::start(AgentOptions::comms_only(&[server.comm(), CLIENT]))?;

    // The last request asks the server to close, so gnutls-cli sees both responses and ends.
    let script = format!(
        "printf 'GET /x HTTP/1.1\\r\\nHost: t\\r\\n\\r\\nGET /y HTTP/1.1\\r\\nHost: t\\r\\n\
         Connection: close\\r\\n\\r\\n' | {CLIENT} --insecure --port {} {}",
        listen.port(),
        listen.ip()
    );
    let run = run_with_timeout(
        net.cli.cmd("sh").args(["-c", &script]),
        Duration::from_secs(10),
    )?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    ensure!(
        stdout.matches("HTTP/1.1 200").count() == 2,
        "gnutls-cli did not get two responses ({}):\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );

    let at_port = |e: &serde_json::Value| {
        let port = listen.port().to_string();
        ["local_addr", "peer_addr"].iter().any(|k| {
            e[k].as_str()
                .is_some_and(|a| a.ends_with(&format!(":{port}")))
        })
    };
    let all = agent.wait_for_exchanges(at_port, 4, Duration::from_secs(10))?;
    ensure!(all.len() == 4, "expected 2 + 2 exchanges:\n{}", dump(&all));
    for (comm, library) in [(server.comm(), libssl.as_str()), (CLIENT, "")] {
        let side: Vec<_> = all.iter().filter(|e| e["comm"] == comm).collect();
        ensure!(
            side.len() == 2,
            "{comm}: expected 2 exchanges:\n{}",
            dump(&all)
        );
        for (e, (path, size)) in side.iter().zip([("/x", 10), ("/y", 1000)]) {
            let want = json!({
                "method": "GET", "path": path, "host": "t", "status": 200,
                "request_body_bytes": 0, "response_body_bytes": size, "tls": true,
                "request_truncated": false, "response_truncated": false,
            });
            check_fields(e, &want)?;
            let got = e["tls_library"].as_str().unwrap_or_default();
            let ok = if library.is_empty() {
                got.ends_with("/libgnutls.so.30") || got.contains("/libgnutls.so.30.")
            } else {
                got == library
            };
            ensure!(ok, "{comm}: tls_library {got:?}:\n{}", dump(&all));
        }
        ensure!(
            side[0]["conn_id"] == side[1]["conn_id"],
            "{comm}: two connections:\n{}",
            dump(&all)
        );
    }
    // GnuTLS 3.7's record functions start with `sub`/`xor` and have no `_ex` twin to prove an
    // internal site with: their entries are single-stepped, and reported as such.
    let client = all
        .iter()
        .find(|e| e["comm"] == CLIENT)
        .expect("checked above");
    let gnutls = client["tls_library"].as_str().unwrap_or_default();
    check_probe_sites(
        &agent,
        gnutls,
        &[("entry_single_step", 2.0), ("entry", 1.0)],
    )?;
    check_probe_sites(&agent, &libssl, &[("internal", 2.0), ("entry", 1.0)])?;
    Ok(())
}
