//! A pid-only capture filter limits the TLS uprobes to those processes: nginx (listed)
//! is captured inside TLS, while curl, on the same libssl.so.3, never takes a uprobe
//! trap. Proof: libssl carries exactly one process's set of probes (5 functions, entry +
//! return), and the kernel saw no TLS call it could not attribute (an unscoped agent
//! counts each of curl's calls as `untracked`).

use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::exchange::dump;
use integration_tests::procfs::mapped_path;
use integration_tests::tls::{check_probe_sites, wait_probes_attached, LIBSSL};
use integration_tests::util::run_checked;
use integration_tests::{require_root, Agent, AgentOptions, NetPair, Nginx, NginxOptions, TlsCert};

#[test]
fn pid_filter_limits_tls_hooks_to_the_listed_process() -> Result<()> {
    require_root()?;
    let cert = TlsCert::generate("api-guard-test")?;
    let net = NetPair::new("agtls-scp")?;
    let listen = net.server_addr()?;
    let nginx = Nginx::start_tls(
        &net.srv,
        listen,
        &[("a", 1234)],
        NginxOptions::default(),
        &cert,
    )?;
    let libssl = mapped_path(nginx.pid(), LIBSSL)?;
    let agent = Agent::start(AgentOptions::capture_only(&[nginx.pid()], &[]))?;
    let probes = wait_probes_attached(&agent, &libssl, Duration::from_secs(1))?;
    // SSL_read/_ex share one internal site, SSL_write/_ex another, plus SSL_do_handshake:
    // three sites of an entry and a return probe each, for the one process.
    ensure!(
        probes == 6.0,
        "{probes} probes in {libssl}, expected 6 (one process)"
    );
    check_probe_sites(&agent, &libssl, &[("internal", 2.0), ("entry", 1.0)])?;
    // `api-guard status` lists them too.
    let status: serde_json::Value = serde_json::from_str(&agent.cli_ok(&["status", "--json"])?)?;
    let listed = status["tls_libraries"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["path"] == libssl.as_str()))
        .map(|l| l["sites"].clone());
    ensure!(
        listed == Some(serde_json::json!({"entry": 1, "internal": 2})),
        "status lists {listed:?} for {libssl}"
    );

    let url = |p: &str| format!("https://{listen}{p}");
    run_checked(net.cli.cmd("curl").args([
        "-sfk",
        "-o",
        "/dev/null",
        &url("/a"),
        "-o",
        "/dev/null",
        &url("/a"),
    ]))?;
    let server = agent.wait_for_exchanges(
        |e| e["pid"] == nginx.pid() && e["tls"] == true,
        2,
        Duration::from_secs(10),
    )?;
    ensure!(
        server.len() == 2
            && server.iter().all(|e| e["path"] == "/a"
                && e["status"] == 200
                && e["response_body_bytes"] == 1234),
        "nginx's exchanges:\n{}",
        dump(&server)
    );
    let all = agent.exchanges()?;
    ensure!(all.len() == 2, "only nginx is captured:\n{}", dump(&all));
    let unattributed = agent
        .metrics()?
        .sum("apiguard_tls_calls_unattributed_total", &[]);
    ensure!(
        unattributed == 0.0,
        "{unattributed} TLS calls hit the probes outside the scope"
    );
    Ok(())
}
