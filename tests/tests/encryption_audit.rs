//! The encryption audit on live traffic (`detect::encryption`, the ServerHello read on the
//! socket, the inventory's transport):
//! - curl sends a bearer token in plaintext HTTP to a python server across a veth: exactly one
//!   `encryption.plaintext_credential` finding, on the server side (and, capturing curl
//!   instead, on the client side); the same request over loopback: none;
//! - `openssl s_server`/`s_client` forced to TLS 1.1 (`-tls1_1 -cipher DEFAULT:@SECLEVEL=0`,
//!   which Debian 12's OpenSSL 3.0 still allows) and to TLS 1.2 with RSA key transport
//!   (`AES128-SHA`): `encryption.weak_tls_version` and `encryption.weak_cipher`;
//! - nginx with curl over TLS 1.3: version and suite recorded in the exchange lines and in
//!   `apiguard_tls_handshakes_total`, on both ends, and no finding.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::openssl::{openssl_exe, s_client, SServer};
use integration_tests::util::{unique_comm, wait_until};
use integration_tests::{
    require_root, unique_port, Agent, AgentOptions, Curl, CurlExe, NetPair, Nginx, NginxOptions,
    PyHttpServer, TlsCert,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
const TOKEN: &str = "plaintext-secret-token-4711";

fn findings(agent: &Agent) -> Result<Vec<Value>> {
    Ok(agent
        .events()?
        .into_iter()
        .filter(|e| e["type"] == "detection" && e["kind"] == "encryption")
        .collect())
}

/// A bearer request with curl (`exe`, or the system's) from `ns` to `url`.
fn bearer(ns: &integration_tests::Netns, exe: Option<&CurlExe>, url: &str) -> Result<()> {
    let mut curl = Curl::new(ns)
        .arg("-H")
        .arg(format!("Authorization: Bearer {TOKEN}"));
    if let Some(exe) = exe {
        curl = curl.exe(exe);
    }
    let run = curl.url(url).run()?;
    ensure!(run.transfers[0].http_code() == 200, "{run:?}");
    Ok(())
}

fn secrets_stay_out(agent: &Agent) -> Result<()> {
    let events = std::fs::read_to_string(agent.events_path()).unwrap_or_default();
    let lines = std::fs::read_to_string(agent.exchanges_path()).unwrap_or_default();
    ensure!(
        !events.contains(TOKEN) && !lines.contains(TOKEN),
        "the token leaked"
    );
    Ok(())
}

#[test]
fn a_bearer_token_in_plaintext_across_a_veth_is_one_finding_and_over_loopback_none() -> Result<()> {
    require_root()?;
    let net = NetPair::new("encp")?;
    let port = unique_port()?;
    let server = PyHttpServer::start(
        &net.srv,
        SocketAddr::new("0.0.0.0".parse()?, port),
        &[("index.html", 100)],
    )?;
    let agent = Agent::start(AgentOptions::capture_only(&[server.pid()], &[]))?;
    let before = agent.metrics()?;

    bearer(
        &net.cli,
        None,
        &format!("http://{}:{port}/index.html", net.srv_ip),
    )?;
    bearer(
        &net.srv,
        None,
        &format!("http://127.0.0.1:{port}/index.html"),
    )?;
    agent.wait_for_exchanges(|e| e["role"] == "server", 2, WAIT)?;
    let found = agent.wait_for_events(|e| e["kind"] == "encryption", 1, WAIT)?;
    // The second exchange was judged too: give a stray finding time to show.
    std::thread::sleep(Duration::from_millis(300));
    let all = findings(&agent)?;
    ensure!(all.len() == 1, "expected one finding: {all:#?}");
    let f = &found[0];
    ensure!(f["rule_id"] == "encryption.plaintext_credential", "{f}");
    ensure!(f["severity"] == "high", "{f}");
    ensure!(f["location"] == "header:authorization", "{f}");
    ensure!(f["evidence"] == "header:authorization (bearer)", "{f}");
    ensure!(f["client"]["ip"] == net.cli_ip.to_string(), "{f}");
    ensure!(
        f["client"]["credential"]
            .as_str()
            .is_some_and(|c| c.starts_with("sha256:")),
        "{f}"
    );
    ensure!(
        f["tls"] == false && f["request"]["pid"] == server.pid(),
        "{f}"
    );
    secrets_stay_out(&agent)?;
    agent.check_deltas(
        &before,
        &[(
            "apiguard_detections_total",
            &[("kind", "encryption"), ("severity", "high")],
            1.0,
        )],
    )?;

    // The inventory knows the endpoint as plaintext (one endpoint per Host: the veth
    // address and 127.0.0.1), once the discovery thread has both requests.
    let eps = wait_until("both requests in the inventory", WAIT, POLL, || {
        let inv: Value =
            serde_json::from_str(&agent.cli_ok(&["inventory", "--format", "json"])?)?;
        let eps: Vec<Value> = inv["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["template"] == "/index.html")
            .cloned()
            .collect();
        Ok((eps.iter().filter_map(|e| e["count"].as_u64()).sum::<u64>() == 2).then_some(eps))
    })?;
    ensure!(
        eps.len() == 2
            && eps
                .iter()
                .all(|e| e["transport"] == json!({"tls": 0, "plaintext": 1})),
        "{eps:#?}"
    );
    let table = agent.cli_ok(&["inventory"])?;
    ensure!(
        table
            .lines()
            .any(|l| l.contains("/index.html") && l.contains(" plaintext ")),
        "{table}"
    );
    Ok(())
}

#[test]
fn the_calling_side_reports_its_own_plaintext_credentials() -> Result<()> {
    require_root()?;
    let net = NetPair::new("encc")?;
    let port = unique_port()?;
    let _server = PyHttpServer::start(
        &net.srv,
        SocketAddr::new("0.0.0.0".parse()?, port),
        &[("index.html", 100)],
    )?;
    let curl = CurlExe::with_comm(&unique_comm("encc"))?;
    let agent = Agent::start(AgentOptions::comms_only(&[curl.comm()]))?;

    bearer(
        &net.cli,
        Some(&curl),
        &format!("http://{}:{port}/index.html", net.srv_ip),
    )?;
    bearer(
        &net.srv,
        Some(&curl),
        &format!("http://127.0.0.1:{port}/index.html"),
    )?;
    agent.wait_for_exchanges(|e| e["role"] == "client", 2, WAIT)?;
    agent.wait_for_events(|e| e["kind"] == "encryption", 1, WAIT)?;
    std::thread::sleep(Duration::from_millis(300));
    let all = findings(&agent)?;
    ensure!(all.len() == 1, "expected one finding: {all:#?}");
    let f = &all[0];
    ensure!(f["rule_id"] == "encryption.plaintext_credential", "{f}");
    ensure!(f["request"]["comm"] == curl.comm(), "{f}");
    // The client is this host's process, with the hash of the credential it sent.
    ensure!(f["client"]["ip"] == net.cli_ip.to_string(), "{f}");
    ensure!(f["client"]["credential"].is_string(), "{f}");
    ensure!(
        agent.blocks()?.is_empty(),
        "an outgoing call blocked its server"
    );
    secrets_stay_out(&agent)
}

/// The server's first encryption finding, once its `GET /` exchange was seen.
fn weak_tls_finding(args: &[&str], expect_protocol: &str) -> Result<(Vec<Value>, Agent)> {
    let cert = TlsCert::generate("api-guard-weak")?;
    let net = NetPair::new("encw")?;
    let exe = openssl_exe(&unique_comm("encw"))?;
    let agent = Agent::start(AgentOptions::comms_only(&[exe.comm()]))?;
    let server = SServer::start(&net.srv, &exe, net.server_addr()?, &cert, args)?;
    let run = s_client(&net.cli, server.addr(), args)?;
    ensure!(
        run.protocol == expect_protocol,
        "{run:?}\n{}",
        server.logs()
    );
    agent.wait_for_exchanges(|e| e["role"] == "server" && e["path"] == "/", 1, WAIT)?;
    agent.wait_for_events(|e| e["kind"] == "encryption", 1, WAIT)?;
    std::thread::sleep(Duration::from_millis(300));
    Ok((findings(&agent)?, agent))
}

#[test]
fn openssl_forced_to_tls_1_1_and_to_rsa_key_transport_are_weak() -> Result<()> {
    require_root()?;
    // TLS 1.1: the lowest version Debian 12's OpenSSL 3.0 negotiates, at security level 0.
    let (found, agent) =
        weak_tls_finding(&["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"], "TLSv1.1")?;
    ensure!(found.len() == 1, "{found:#?}");
    let f = &found[0];
    ensure!(f["rule_id"] == "encryption.weak_tls_version", "{f}");
    ensure!(f["severity"] == "medium" && f["location"] == "tls", "{f}");
    ensure!(f["evidence"] == "tls1.1 negotiated", "{f}");
    ensure!(f["tls"] == true, "{f}");
    let line = &agent.exchanges()?[0];
    ensure!(
        line["tls_session"]
            == json!({"version": "tls1.1", "cipher": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"}),
        "{line}"
    );
    ensure!(
        agent.metric(
            "apiguard_tls_handshakes_total",
            &[("version", "tls1.1"), ("cipher_family", "ecdhe")]
        )? == 1.0
    );

    // TLS 1.2 with RSA key transport: no forward secrecy.
    let (found, agent) =
        weak_tls_finding(&["-tls1_2", "-cipher", "AES128-SHA:@SECLEVEL=0"], "TLSv1.2")?;
    ensure!(found.len() == 1, "{found:#?}");
    let f = &found[0];
    ensure!(f["rule_id"] == "encryption.weak_cipher", "{f}");
    ensure!(f["severity"] == "low", "{f}");
    ensure!(
        f["evidence"] == "TLS_RSA_WITH_AES_128_CBC_SHA (no forward secrecy)",
        "{f}"
    );
    ensure!(
        agent.metric(
            "apiguard_tls_handshakes_total",
            &[("version", "tls1.2"), ("cipher_family", "rsa")]
        )? == 1.0
    );
    Ok(())
}

#[test]
fn nginx_tls_1_3_is_recorded_on_both_ends_without_a_finding() -> Result<()> {
    require_root()?;
    let cert = TlsCert::generate("api-guard-tls13")?;
    let net = NetPair::new("enct")?;
    let listen = net.server_addr()?;
    let nginx = Nginx::start_tls(
        &net.srv,
        listen,
        &[("index.html", 100)],
        NginxOptions {
            tls13: true,
            ..NginxOptions::default()
        },
        &cert,
    )?;
    let curl = CurlExe::with_comm(&unique_comm("enct"))?;
    let agent = Agent::start(AgentOptions::capture_only(&[nginx.pid()], &[curl.comm()]))?;
    let before = agent.metrics()?;
    let run = Curl::new(&net.cli)
        .exe(&curl)
        .insecure()
        .arg("-H")
        .arg(format!("Authorization: Bearer {TOKEN}"))
        .url(format!("https://{listen}/index.html"))
        .run()?;
    ensure!(run.transfers[0].http_code() == 200, "{run:?}");
    let lines = agent.wait_for_exchanges(|e| e["tls"] == true, 2, WAIT)?;
    let session = json!({"version": "tls1.3", "cipher": "TLS_AES_256_GCM_SHA384"});
    for role in ["server", "client"] {
        let line = lines
            .iter()
            .find(|l| l["role"] == role)
            .with_context(|| format!("no {role} line: {lines:#?}"))?;
        ensure!(line["tls_session"] == session, "{line}");
    }
    agent.check_deltas(
        &before,
        &[(
            "apiguard_tls_handshakes_total",
            &[("version", "tls1.3"), ("cipher_family", "tls13")],
            2.0,
        )],
    )?;
    ensure!(
        agent.metric("apiguard_tls_handshakes_unread_total", &[])? == 0.0,
        "{}",
        agent.metrics_text()?
    );
    // A credential inside TLS is not an exposure, and TLS 1.3 is not weak.
    std::thread::sleep(Duration::from_millis(300));
    ensure!(findings(&agent)?.is_empty(), "{:#?}", findings(&agent)?);
    secrets_stay_out(&agent)
}
