//! No request escapes inspection: the same SQL injection that is flagged alone must be
//! flagged after 400 and 2,000 pipelined requests sent in one write, after 20 KiB of padding
//! in a JSON body (inside the request capture cap), after 20 KiB headers, and after 200 KiB of
//! padding in JSON and form bodies (far past the body prefix kept: bodies are scanned as they
//! stream, up to `detect.limits.max_body_bytes`, 1 MiB). Benign large uploads (a 5 MiB
//! multipart file upload, a JSON document just over 1 MiB) raise no content finding, only the
//! part beyond the 1 MiB cap, as `protocol.uninspected_content` at its configured severity.
//! Real sockets, a real server (python `http.server`), the agent capturing it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::guard::{self, Probe, Topology};
use integration_tests::servers::raw_exchange;
use integration_tests::util::filler;
use integration_tests::{require_root, Agent, AgentOptions, TempDir};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);
const SQLI: &str = "1' UNION SELECT username,password FROM users--";
const SQLI_QUERY: &str = "id=1%27%20UNION%20SELECT%20username,password%20FROM%20users--";

fn post(topo: &Topology, c1: bool, path: &str, content_type: &str, body: &[u8]) -> Result<u16> {
    let dir = TempDir::new("noescape")?;
    let file = dir.join("body");
    std::fs::write(&file, body)?;
    let args = vec![
        "-X".to_string(),
        "POST".into(),
        "-H".into(),
        format!("Content-Type: {content_type}"),
        "--data-binary".into(),
        format!("@{}", file.display()),
    ];
    run_curl(topo, c1, path, &args)
}

/// A multipart upload of `body` as the file of field `file` (curl `-F`).
fn upload(topo: &Topology, c1: bool, path: &str, body: &[u8]) -> Result<u16> {
    let dir = TempDir::new("noescape")?;
    let file = dir.join("report.txt");
    std::fs::write(&file, body)?;
    let args = vec![
        "-F".to_string(),
        "title=quarterly report".into(),
        "-F".into(),
        format!("file=@{};type=text/plain", file.display()),
    ];
    run_curl(topo, c1, path, &args)
}

fn run_curl(topo: &Topology, c1: bool, path: &str, args: &[String]) -> Result<u16> {
    let ns = if c1 { &topo.c1 } else { &topo.c2 };
    match guard::curl(ns, &topo.url(c1, path), args, Duration::from_millis(500))? {
        Probe::Status(s) => Ok(s),
        Probe::NoConnection => Ok(0),
    }
}

/// `n` pipelined GETs and then the injection, in one write; the last asks to close.
fn pipelined(n: usize) -> Vec<u8> {
    let mut burst = Vec::new();
    for i in 0..n {
        burst.extend_from_slice(
            format!("GET /index.html?p={i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
        );
    }
    burst.extend_from_slice(
        format!(
            "GET /index.html?n={n}&{SQLI_QUERY} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    burst
}

fn detections(agent: &Agent, client: &str) -> Result<Vec<Value>> {
    Ok(agent
        .events()?
        .into_iter()
        .filter(|e| e["type"] == "detection" && e["client"]["ip"] == client)
        .collect())
}

#[test]
fn padding_and_pipelining_do_not_hide_an_injection() -> Result<()> {
    require_root()?;
    let topo = Topology::new("dne")?;
    // The kernel copies up to 256 KiB per call of what the server reads (the per-call cap
    // configurable for requests), so the 200 KiB bodies arrive without capture gaps.
    let agent = Agent::start(AgentOptions {
        config_toml: Some(topo.agent_toml("").replacen(
            "[capture]\n",
            "[capture]\nmax_request_capture_bytes = 262144\n",
            1,
        )),
        ..AgentOptions::default()
    })?;
    let (c1, c2) = (topo.v1.b_ip.to_string(), topo.v2.b_ip.to_string());
    let server = SocketAddr::new(topo.v1.a_ip.into(), topo.port);

    // Pipelined: far past `http.max_pipelined` (64) requests awaiting their answers.
    for n in [400, 2000] {
        let run = raw_exchange(&topo.c1, server, &pipelined(n))?;
        let codes = run.status_codes();
        ensure!(codes.len() == n + 1, "{n}: {} answers", codes.len());
    }
    // Padding inside the request capture cap (64 KiB): the field after it is judged.
    let pad = filler(20 << 10);
    let json = serde_json::json!({ "notes": pad, "q": SQLI }).to_string();
    ensure!(
        post(
            &topo,
            true,
            "/api/search",
            "application/json",
            json.as_bytes()
        )? == 200
    );
    // A 20 KiB header before an injected query.
    let big_header = vec!["-H".to_string(), format!("X-Pad: {}", filler(20 << 10))];
    let url = topo.url(true, &format!("/index.html?{SQLI_QUERY}"));
    ensure!(
        guard::curl(&topo.c1, &url, &big_header, Duration::from_millis(500))? == Probe::Status(200)
    );
    // 200 KiB of padding, in JSON and in a form: past the prefix kept, not past the scan.
    let json = serde_json::json!({ "notes": filler(200 << 10), "q": SQLI }).to_string();
    ensure!(post(&topo, true, "/api/big", "application/json", json.as_bytes())? == 200);
    let form = format!(
        "notes={}&q={}",
        filler(200 << 10).replace(' ', "+"),
        SQLI_QUERY
    );
    ensure!(
        post(
            &topo,
            true,
            "/api/form",
            "application/x-www-form-urlencoded",
            form.as_bytes()
        )? == 200
    );

    // Benign large uploads from the other client.
    ensure!(upload(&topo, false, "/upload", filler(5 << 20).as_bytes())? == 200);
    let doc: Vec<Value> = (0..8000)
        .map(|i| serde_json::json!({"id": i, "name": format!("item {i}"), "text": filler(100)}))
        .collect();
    let doc = serde_json::to_vec(&doc)?;
    ensure!(doc.len() > 1 << 20);
    ensure!(post(&topo, false, "/api/import", "application/json", &doc)? == 200);

    // 2 pipelined + padded JSON + big header + 2 behind 200 KiB of padding; the 2 benign
    // uploads past the scan's 1 MiB.
    agent.wait_for_events(
        |e| e["type"] == "detection" && e["rule_id"] == "protocol.uninspected_content",
        2,
        WAIT,
    )?;
    agent.wait_for_events(|e| e["type"] == "detection" && e["kind"] == "sqli", 6, WAIT)?;
    let found = detections(&agent, &c1)?;
    let sqli_paths: Vec<&str> = found
        .iter()
        .filter(|e| e["kind"] == "sqli")
        .filter_map(|e| e["request"]["path"].as_str())
        .collect();
    // /index.html: after 400 and 2,000 pipelined requests, and after the 20 KiB header.
    for (path, n) in [
        ("/api/search", 1),
        ("/index.html", 3),
        ("/api/big", 1),
        ("/api/form", 1),
    ] {
        ensure!(
            sqli_paths.iter().filter(|p| **p == path).count() == n,
            "{path}: sqli findings on {sqli_paths:?}\n{found:#?}"
        );
    }
    for (path, location) in [
        ("/api/search", "body:$.q"),
        ("/api/big", "body:$.q"),
        ("/api/form", "form:q"),
    ] {
        let e = found
            .iter()
            .find(|e| e["kind"] == "sqli" && e["request"]["path"] == path)
            .cloned()
            .unwrap_or_default();
        ensure!(e["location"] == location, "{path}: {e}");
    }
    // Nothing of client 1's bodies went uninspected: all were within the scan's 1 MiB.
    ensure!(
        found
            .iter()
            .all(|e| e["rule_id"] != "protocol.uninspected_content"),
        "{found:#?}"
    );
    // Benign uploads: no content finding, only what lies past the 1 MiB scanned.
    let benign = detections(&agent, &c2)?;
    ensure!(
        benign.len() == 2
            && benign
                .iter()
                .all(|e| e["rule_id"] == "protocol.uninspected_content"
                    && e["severity"] == "low"
                    && e["location"] == "body"),
        "{benign:#?}"
    );
    let evidence = |path: &str| {
        benign
            .iter()
            .find(|e| e["request"]["path"] == path)
            .and_then(|e| e["evidence"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    // Past the 1 MiB scanned exactly, unless a read larger than the per-call cap cut the
    // scan short before (then from that gap on).
    let bytes_of = |evidence: &str| -> u64 {
        evidence
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let mut total = 0;
    for (path, len) in [("/api/import", doc.len()), ("/upload", 5 << 20)] {
        let e = evidence(path);
        let bytes = bytes_of(&e);
        let past_cap = (len - (1 << 20)) as u64;
        ensure!(
            // (curl's multipart framing adds a few hundred bytes to the upload's file)
            (e.ends_with("not inspected (body_limit)")
                && (past_cap..past_cap + 1024).contains(&bytes))
                || (e.ends_with("not inspected (capture_gap)") && bytes > past_cap),
            "{path}: {e}"
        );
        total += bytes;
    }
    let bytes = agent.metric(
        "apiguard_detect_uninspected_bytes_total",
        &[("reason", "body_limit")],
    )? + agent.metric(
        "apiguard_detect_uninspected_bytes_total",
        &[("reason", "capture_gap")],
    )?;
    ensure!(
        bytes == total as f64,
        "uninspected bytes {bytes}, events {total}"
    );
    // Every pipelined request went through the engine (none skipped).
    ensure!(agent.metric("apiguard_detect_exchanges_skipped_total", &[])? == 0.0);
    Ok(())
}
