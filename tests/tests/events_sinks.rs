//! Security-event outputs of the real daemon: the events file rotated by size, the webhook
//! (a python receiver recording every POST) with a bearer token and batches, the node name
//! from `NODE_NAME`, and the event metrics equal to what was written and delivered.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{ensure, Context as _, Result};
use integration_tests::{
    require_root,
    util::{die_with_parent, kill_and_reap, python3_bin, wait_until},
    Agent, AgentOptions, TempDir,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
const TOKEN: &str = "evt-tok-4c1e8a90";
const MAX_FILE_BYTES: u64 = 300;
const MAX_FILES: u32 = 10;

/// Records each POST as one JSON line {"auth", "ctype", "path", "body"}; answers 200.
const RECEIVER: &str = r#"
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
out, port_file = sys.argv[1], sys.argv[2]
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        rec = {"auth": self.headers.get("authorization"), "ctype": self.headers.get("content-type"),
               "path": self.path, "body": json.loads(body)}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = HTTPServer(("127.0.0.1", 0), H)
with open(port_file + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
import os; os.rename(port_file + ".tmp", port_file)
s.serve_forever()
"#;

struct Receiver {
    child: Child,
    out: std::path::PathBuf,
    port: u16,
}

impl Receiver {
    fn start(dir: &Path) -> Result<Self> {
        let script = dir.join("receiver.py");
        fs::write(&script, RECEIVER)?;
        let out = dir.join("received.jsonl");
        let port_file = dir.join("port");
        let mut cmd = Command::new(python3_bin());
        cmd.arg(&script)
            .arg(&out)
            .arg(&port_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("receiver.log"))?);
        die_with_parent(&mut cmd, libc::SIGKILL);
        let mut child = cmd.spawn().context("starting the python receiver")?;
        let port = wait_until("the receiver's port", WAIT, POLL, || {
            Ok(fs::read_to_string(&port_file)
                .ok()
                .and_then(|p| p.trim().parse::<u16>().ok()))
        });
        let port = match port {
            Ok(p) => p,
            Err(e) => {
                kill_and_reap(&mut child);
                return Err(e);
            }
        };
        Ok(Self { child, out, port })
    }

    fn requests(&self) -> Result<Vec<Value>> {
        let text = match fs::read_to_string(&self.out) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        // A line being written may be incomplete: only whole lines count.
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|l| serde_json::from_str(l).context("receiver line"))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// `events.jsonl.N` … `.1`, then `events.jsonl`: oldest first.
fn event_files(path: &Path) -> Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    for n in (1..=MAX_FILES + 1).rev() {
        let p = format!("{}.{n}", path.display());
        if let Ok(text) = fs::read_to_string(&p) {
            files.push((p, text));
        }
    }
    files.push((path.display().to_string(), fs::read_to_string(path)?));
    Ok(files)
}

#[test]
fn file_rotation_webhook_token_and_node_name() -> Result<()> {
    require_root()?;
    let dir = TempDir::new("events-sinks")?;
    let receiver = Receiver::start(dir.path())?;
    let token_file = dir.join("token");
    fs::write(&token_file, format!("{TOKEN}\n"))?;
    fs::set_permissions(&token_file, fs::Permissions::from_mode(0o600))?;

    let config = format!(
        "[capture]\ncomms = [\"evsink-nothing\"]\n\n\
         [events]\nmax_file_bytes = {MAX_FILE_BYTES}\nmax_files = {MAX_FILES}\n\n\
         [events.webhook]\nurl = \"http://127.0.0.1:{}/hook\"\ntoken_file = {:?}\n\
         batch_max = 2\ntimeout_secs = 2\n",
        receiver.port,
        token_file.display().to_string()
    );
    let mut agent = Agent::start(AgentOptions {
        config_toml: Some(config),
        env: vec![("NODE_NAME".into(), "node-a".into())],
        ..AgentOptions::default()
    })?;

    let targets = ["192.0.2.1", "192.0.2.2", "192.0.2.3"];
    for t in targets {
        agent.cli_ok(&["block", t, "--for", "60s", "--reason", "events test"])?;
    }
    for t in targets {
        agent.cli_ok(&["unblock", t])?;
    }
    let expected: Vec<(&str, &str)> = targets
        .iter()
        .map(|t| ("block", *t))
        .chain(targets.iter().map(|t| ("unblock", *t)))
        .collect();

    // The webhook: exactly those events, in order, with the token, in batches of ≤ 2.
    let requests = wait_until("6 events at the receiver", WAIT, POLL, || {
        let r = receiver.requests()?;
        let n: usize = r
            .iter()
            .map(|q| q["body"].as_array().map_or(0, Vec::len))
            .sum();
        Ok((n >= expected.len()).then_some(r))
    })?;
    let mut delivered = Vec::new();
    for r in &requests {
        ensure!(r["auth"] == format!("Bearer {TOKEN}").as_str(), "{r}");
        ensure!(
            r["ctype"] == "application/json" && r["path"] == "/hook",
            "{r}"
        );
        let batch = r["body"].as_array().context("array body")?;
        ensure!((1..=2).contains(&batch.len()), "batch of {}", batch.len());
        delivered.extend(batch.iter().cloned());
    }
    let seen: Vec<(String, String)> = delivered
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("?").to_string(),
                e["target"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    ensure!(seen == want, "webhook got {seen:?}");
    ensure!(
        delivered.iter().all(|e| e["node"] == "node-a"),
        "{delivered:?}"
    );

    // The file: every event exactly once across the rotated files, none split, each file
    // within the limit (one line may exceed it only alone), rotations as the sizes dictate.
    let files = event_files(agent.events_path())?;
    let mut lines = Vec::new();
    let mut simulated_files = 1;
    let mut size = 0u64;
    for (path, text) in &files {
        ensure!(
            text.is_empty() || text.ends_with('\n'),
            "{path}: split line"
        );
        let file_size = text.len() as u64;
        ensure!(
            file_size <= MAX_FILE_BYTES || text.lines().count() == 1,
            "{path} has {file_size} bytes"
        );
        for line in text.lines() {
            let len = line.len() as u64 + 1;
            if size > 0 && size + len > MAX_FILE_BYTES {
                simulated_files += 1;
                size = 0;
            }
            size += len;
            lines.push(serde_json::from_str::<Value>(line).context("event line")?);
        }
    }
    ensure!(
        lines == delivered,
        "file and webhook differ:\n{lines:?}\n{delivered:?}"
    );
    ensure!(
        files.len() == simulated_files && files.len() >= 3,
        "{} files, expected {simulated_files}: {:?}",
        files.len(),
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );

    // Metrics equal the counts.
    let n = expected.len() as f64;
    let rotations = (files.len() - 1) as f64;
    for (name, labels, want) in [
        ("apiguard_events_total", vec![("output", "file")], n),
        ("apiguard_events_total", vec![("output", "webhook")], n),
        (
            "apiguard_webhook_requests_total",
            vec![("result", "ok")],
            requests.len() as f64,
        ),
        (
            "apiguard_webhook_requests_total",
            vec![("result", "retry")],
            0.0,
        ),
        (
            "apiguard_webhook_requests_total",
            vec![("result", "error")],
            0.0,
        ),
        (
            "apiguard_events_file_rotations_total",
            vec![("result", "ok")],
            rotations,
        ),
    ] {
        let got = agent.metric(name, &labels)?;
        ensure!(got == want, "{name}{labels:?} = {got}, expected {want}");
    }
    let text = agent.metrics_text()?;
    ensure!(
        !text.contains("apiguard_events_dropped_total{"),
        "nothing dropped:\n{text}"
    );

    eprintln!(
        "{} events: {} POSTs, {} event files",
        expected.len(),
        requests.len(),
        files.len()
    );
    agent.stop_cleanly()?;
    let stderr = agent.stderr_text();
    ensure!(!stderr.contains(TOKEN), "the token was logged:\n{stderr}");
    Ok(())
}

#[test]
fn world_readable_token_file_is_refused() -> Result<()> {
    require_root()?;
    let dir = TempDir::new("events-token")?;
    let token_file = dir.join("token");
    fs::write(&token_file, format!("{TOKEN}\n"))?;
    fs::set_permissions(&token_file, fs::Permissions::from_mode(0o644))?;
    let config = dir.join("config.toml");
    fs::write(
        &config,
        format!(
            "[events.webhook]\nurl = \"https://siem.example/hook\"\ntoken_file = {:?}\n",
            token_file.display().to_string()
        ),
    )?;
    let bin = integration_tests::agent::agent_binary(&AgentOptions::default())?;
    let out = Command::new(bin)
        .arg("check-config")
        .arg(&config)
        .stdin(Stdio::null())
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(!out.status.success(), "accepted: {text}");
    ensure!(
        text.contains("`events.webhook.token_file`")
            && text.contains("readable or writable by others (mode 0644)"),
        "{text}"
    );
    ensure!(!text.contains(TOKEN), "{text}");
    Ok(())
}
