//! Detection on live traffic: real attack requests (curl) reach a real server (python
//! `http.server`) in a network namespace while the agent captures the server's pid. Each
//! attack must appear as a `detection` security event with the right kind and location,
//! benign requests must produce none, and with `detect.block_severity` a critical finding
//! must end in an XDP drop of that client only.

use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::guard::{self, Probe, Topology};
use integration_tests::netns::Netns;
use integration_tests::{require_root, Agent, AgentOptions};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

/// A JWT with `alg: none` and no signature (`{"alg":"none"}.{"sub":"admin"}.`).
const ALG_NONE_TOKEN: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.";

/// One attack: what curl sends, and the finding it must produce.
struct Attack {
    name: &'static str,
    args: Vec<String>,
    path: &'static str,
    kind: &'static str,
    rule_prefix: &'static str,
    location: &'static str,
}

fn attacks() -> Vec<Attack> {
    let json = |body: &str| {
        vec![
            "-X".into(),
            "POST".into(),
            "-H".into(),
            "Content-Type: application/json".into(),
            "--data-binary".into(),
            body.into(),
        ]
    };
    let header = |h: &str| vec!["-H".into(), h.into()];
    vec![
        Attack {
            name: "sqli in a query parameter",
            args: vec![],
            path: "/index.html?id=1%27%20OR%20%271%27%3D%271",
            kind: "sqli",
            rule_prefix: "sqli.",
            location: "query:id",
        },
        Attack {
            name: "xss in a query parameter",
            args: vec![],
            path: "/index.html?q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E",
            kind: "xss",
            rule_prefix: "xss.",
            location: "query:q",
        },
        Attack {
            name: "path traversal in a query parameter",
            args: vec![],
            path: "/index.html?file=..%2F..%2F..%2F..%2Fetc%2Fpasswd",
            kind: "path_traversal",
            rule_prefix: "traversal.",
            location: "query:file",
        },
        Attack {
            name: "command injection in a JSON field",
            args: json(r#"{"target":{"host":"8.8.8.8; cat /etc/passwd"}}"#),
            path: "/api/ping",
            kind: "command_injection",
            rule_prefix: "cmdi.",
            location: "body:$.target.host",
        },
        Attack {
            name: "SSRF to the cloud metadata service",
            args: vec![],
            path: "/index.html?callback=http%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data%2F",
            kind: "ssrf",
            rule_prefix: "ssrf.",
            location: "query:callback",
        },
        Attack {
            name: "scanner user agent",
            args: header("User-Agent: sqlmap/1.7.2#stable (https://sqlmap.org)"),
            path: "/index.html",
            kind: "scanner",
            rule_prefix: "abuse.scanner_agent",
            location: "header:user-agent",
        },
        Attack {
            // From a remote client: DNS rebinding or a bypass of localhost-only checks.
            name: "Host naming the loopback address",
            args: header("Host: 127.0.0.1"),
            path: "/index.html",
            kind: "protocol",
            rule_prefix: "protocol.host_local",
            location: "header:host",
        },
        Attack {
            name: "JWT with alg none",
            args: header(&format!("Authorization: Bearer {ALG_NONE_TOKEN}")),
            path: "/index.html",
            kind: "jwt",
            rule_prefix: "jwt.alg_none",
            location: "header:authorization",
        },
    ]
}

/// Benign requests that look a little like attacks.
fn benign() -> Vec<(Vec<String>, &'static str)> {
    vec![
        (
            vec![],
            "/index.html?name=O%27Brien&q=please+select+a+plan+from+the+list",
        ),
        (
            vec![
                "-X".into(),
                "POST".into(),
                "-H".into(),
                "Content-Type: application/json".into(),
                "--data-binary".into(),
                r#"{"title":"Notes","body":"Use <b>bold</b> for emphasis; Tom & Jerry at 10.2.3","author":"Siobhan O'Brien"}"#.into(),
            ],
            "/api/notes",
        ),
        (vec![], "/index.html?page=2&sort=price_asc&tags=a,b"),
        // Body framing neighbours: `curl -X POST` without data (no Content-Length, no type),
        // a chunked gzip upload, a resumable-upload chunk with Content-Range.
        (vec!["-X".into(), "POST".into()], "/api/jobs/7/run"),
        (
            [
                "-H",
                "Transfer-Encoding: chunked",
                "-H",
                "Content-Type: application/octet-stream",
                "-H",
                "Content-Encoding: gzip",
                "--data-binary",
                "compressed bytes",
            ]
            .map(String::from)
            .to_vec(),
            "/api/uploads",
        ),
        (
            [
                "-H",
                "Content-Type: application/octet-stream",
                "-H",
                "Content-Range: bytes 0-9/20",
                "--data-binary",
                "0123456789",
            ]
            .map(String::from)
            .to_vec(),
            "/api/uploads/1",
        ),
    ]
}

/// curl from `ns` to `url` with `args`; the status code (0 when no connection was made).
fn curl(ns: &Netns, url: &str, args: &[String]) -> Result<u16> {
    Ok(
        match guard::curl(ns, url, args, Duration::from_millis(500))? {
            Probe::Status(code) => code,
            Probe::NoConnection => 0,
        },
    )
}

/// The topology and an agent capturing its server, with `extra` configuration.
fn start(prefix: &str, extra: &str) -> Result<(Topology, Agent)> {
    require_root()?;
    let topo = Topology::new(prefix)?;
    let agent = Agent::start(AgentOptions {
        config_toml: Some(topo.agent_toml(extra)),
        ..AgentOptions::default()
    })?;
    Ok((topo, agent))
}

fn detections(agent: &Agent) -> Result<Vec<Value>> {
    Ok(agent
        .events()?
        .into_iter()
        .filter(|e| e["type"] == "detection")
        .collect())
}

#[test]
fn attacks_become_detection_events_and_benign_requests_do_not() -> Result<()> {
    let (topo, agent) = start("dla", "")?;
    let before = agent.metrics()?;
    let (c1, c2) = (topo.v1.b_ip.to_string(), topo.v2.b_ip.to_string());

    let benign = benign();
    for (args, path) in &benign {
        let status = curl(&topo.c2, &topo.url(false, path), args)?;
        ensure!(status == 200, "benign {path}: {status}");
    }
    let attacks = attacks();
    for a in &attacks {
        let status = curl(&topo.c1, &topo.url(true, a.path), &a.args)?;
        ensure!(status != 0, "{}: no answer", a.name);
    }
    // Every request, benign ones included, has been through the engine once its exchange is
    // out; the attacks are the only ones to report.
    agent.wait_for_exchanges(
        |e| e["role"] == "server",
        attacks.len() + benign.len(),
        WAIT,
    )?;
    let events = agent.wait_for_events(|e| e["type"] == "detection", attacks.len(), WAIT)?;
    let all = detections(&agent)?;
    ensure!(
        !all.iter().any(|e| e["client"]["ip"] == c2.as_str()),
        "benign requests were flagged: {:#?}",
        all.iter()
            .filter(|e| e["client"]["ip"] == c2.as_str())
            .collect::<Vec<_>>()
    );
    for a in &attacks {
        let path = a.path.split('?').next().unwrap_or(a.path);
        let found: Vec<&Value> = all
            .iter()
            .filter(|e| e["kind"] == a.kind && e["location"] == a.location)
            .collect();
        ensure!(
            found.len() == 1,
            "{}: expected exactly one {} finding at {}, got {found:#?}\nall: {all:#?}",
            a.name,
            a.kind,
            a.location
        );
        let e = found[0];
        let rule = e["rule_id"].as_str().unwrap_or("");
        ensure!(rule.starts_with(a.rule_prefix), "{}: rule {rule}", a.name);
        ensure!(e["client"]["ip"] == c1.as_str(), "{}: {e}", a.name);
        ensure!(e["request"]["path"] == path, "{}: {e}", a.name);
        ensure!(e["request"]["pid"] == topo.server.pid(), "{}: {e}", a.name);
        ensure!(
            e["severity"].is_string() && e["evidence"].is_string(),
            "{e}"
        );
        // Secrets never reach events.
        ensure!(!e.to_string().contains(ALG_NONE_TOKEN), "token leaked: {e}");
    }
    ensure!(events.len() >= attacks.len());
    // The counters agree with the events, per kind and severity.
    let mut expected: std::collections::BTreeMap<(&str, &str), f64> = Default::default();
    for e in &all {
        let key = (
            e["kind"].as_str().unwrap_or(""),
            e["severity"].as_str().unwrap_or(""),
        );
        *expected.entry(key).or_default() += 1.0;
    }
    let labels: Vec<[(&str, &str); 2]> = expected
        .keys()
        .map(|(k, s)| [("kind", *k), ("severity", *s)])
        .collect();
    let deltas: Vec<_> = labels
        .iter()
        .zip(expected.values())
        .map(|(l, n)| ("apiguard_detections_total", l.as_slice(), *n))
        .collect();
    agent.check_deltas(&before, &deltas)?;
    // Detection alone (no block_severity) blocks nobody.
    ensure!(agent.blocks()?.is_empty(), "blocks: {:?}", agent.blocks()?);
    ensure!(topo.get(true, "/index.html")? == Probe::Status(200));
    Ok(())
}

#[test]
fn critical_findings_block_the_client_at_xdp() -> Result<()> {
    let (topo, agent) = start(
        "dlb",
        "[detect]\nblock_severity = \"critical\"\nblock_secs = 60\n",
    )?;
    let before = agent.metrics()?;
    let (c1, c2) = (topo.v1.b_ip.to_string(), topo.v2.b_ip.to_string());

    // A finding below the threshold (scanner user agent: medium) is reported, not blocked.
    let scanner = vec!["-H".to_string(), "User-Agent: Nikto/2.5.0".to_string()];
    ensure!(curl(&topo.c2, &topo.url(false, "/index.html"), &scanner)? == 200);
    agent.wait_for_events(
        |e| e["type"] == "detection" && e["kind"] == "scanner",
        1,
        WAIT,
    )?;
    ensure!(topo.get(false, "/index.html")? == Probe::Status(200));

    // A critical one blocks its client.
    let sqli = "/index.html?id=1%20UNION%20SELECT%20username,password%20FROM%20users--";
    ensure!(curl(&topo.c1, &topo.url(true, sqli), &[])? == 200);
    let blocks = agent.wait_for_events(|e| e["type"] == "block", 1, WAIT)?;
    let b = &blocks[0];
    ensure!(
        b["target"] == c1.as_str() && b["reason"] == "detection",
        "{b}"
    );
    ensure!(b["enforced"] == true && b["duration_secs"] == 60, "{b}");
    let detail = b["detail"].as_str().unwrap_or("");
    ensure!(
        detail.starts_with("sqli.") && detail.contains("(critical) at query:id"),
        "{b}"
    );
    ensure!(b["client"]["ip"] == c1.as_str(), "{b}");
    ensure!(b["request"]["path"] == "/index.html", "{b}");

    ensure!(topo.get(true, "/index.html")? == Probe::NoConnection);
    ensure!(topo.get(false, "/index.html")? == Probe::Status(200));
    let list = agent.blocks()?;
    ensure!(list.len() == 1, "blocks: {list:?}");
    ensure!(
        list[0]["target"] == c1.as_str() && list[0]["reason"] == "detection",
        "{list:?}"
    );
    agent.wait_metric(
        "apiguard_xdp_packets_total",
        &[("action", "drop"), ("reason", "blocklist")],
        |v| v >= 1.0,
        WAIT,
    )?;
    agent.check_deltas(
        &before,
        &[
            ("apiguard_blocks_total", &[("reason", "detection")], 1.0),
            ("apiguard_blocked_clients", &[], 1.0),
        ],
    )?;
    let events = agent.events()?;
    ensure!(
        events.iter().filter(|e| e["type"] == "block").count() == 1,
        "exactly one block: {events:?}"
    );
    ensure!(
        !events
            .iter()
            .any(|e| e["type"] == "block" && e["target"] == c2.as_str()),
        "client 2 blocked: {events:?}"
    );
    Ok(())
}

#[test]
fn dry_run_reports_the_block_a_finding_would_cause() -> Result<()> {
    let (topo, agent) = start(
        "dld",
        "[enforce]\nmode = \"dry-run\"\n[detect]\nblock_severity = \"high\"\n",
    )?;
    let c1 = topo.v1.b_ip.to_string();
    let xss = "/index.html?q=%3Csvg%2Fonload%3Dalert(1)%3E";
    for _ in 0..3 {
        ensure!(curl(&topo.c1, &topo.url(true, xss), &[])? == 200);
    }
    let would = agent.wait_for_events(|e| e["type"] == "would_block", 1, WAIT)?;
    ensure!(would[0]["target"] == c1.as_str() && would[0]["reason"] == "detection");
    agent.wait_for_events(|e| e["type"] == "detection" && e["kind"] == "xss", 3, WAIT)?;
    // Still served, reported once per block period.
    ensure!(topo.get(true, "/index.html")? == Probe::Status(200));
    let events = agent.events()?;
    ensure!(
        events.iter().filter(|e| e["type"] == "would_block").count() == 1,
        "{events:?}"
    );
    ensure!(!events.iter().any(|e| e["type"] == "block"), "{events:?}");
    Ok(())
}

/// Sends `line` and a Host header on a fresh connection from `ns` to `addr` (curl cannot
/// send a malformed request line) and returns the status line of the answer.
fn raw_request(ns: &Netns, ip: &str, port: u16, line: &str) -> Result<String> {
    let script = "import socket, sys\n\
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n\
        s.sendall(sys.argv[3].encode() + b'\\r\\nHost: ' + sys.argv[1].encode() + b'\\r\\n\\r\\n')\n\
        answer = b''\n\
        while b'\\r\\n' not in answer:\n\
        \x20   chunk = s.recv(4096)\n\
        \x20   if not chunk:\n\
        \x20       break\n\
        \x20   answer += chunk\n\
        print(answer.split(b'\\r\\n')[0].decode(errors='replace'))\n";
    let out = ns
        .cmd("python3")
        .args(["-c", script, ip, &port.to_string(), line])
        .output()?;
    ensure!(
        out.status.success(),
        "python client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn a_malformed_request_line_is_a_protocol_finding() -> Result<()> {
    let (topo, agent) = start("dlr", "")?;
    let c1 = topo.v1.b_ip.to_string();
    let server = topo.v1.a_ip.to_string();
    // Python's http.server answers 505 to a version it does not speak, 400 to a line of
    // four words; the agent's parser gives both requests up at their line.
    let lines = [
        ("GET /index.html HTTP/4.0", "505"),
        ("GET /index.html x HTTP/1.1", "400"),
    ];
    for (line, status) in lines {
        let answer = raw_request(&topo.c1, &server, topo.port, line)?;
        ensure!(answer.contains(status), "{line}: answered {answer:?}");
    }
    // A well-formed request from the same client afterwards raises nothing.
    ensure!(topo.get(true, "/index.html")? == Probe::Status(200));
    agent.wait_for_exchanges(|e| e["role"] == "server", lines.len() + 1, WAIT)?;
    let found = agent.wait_for_events(
        |e| e["type"] == "detection" && e["rule_id"] == "protocol.invalid_request_line",
        lines.len(),
        WAIT,
    )?;
    let all = detections(&agent)?;
    ensure!(
        all.len() == lines.len() && found.len() == lines.len(),
        "expected exactly {} detections, all protocol.invalid_request_line: {all:#?}",
        lines.len()
    );
    for e in &all {
        ensure!(
            e["kind"] == "protocol"
                && e["location"] == "request_line"
                && e["severity"] == "medium"
                && e["client"]["ip"] == c1.as_str()
                && e["request"]["method"] == "GET",
            "{e}"
        );
    }
    Ok(())
}
