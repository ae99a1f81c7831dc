//! Connections established before the agent started are adopted at its start and captured
//! from their next message on.
//!
//! nginx (namespace A, epoll-driven: it reads a request only once it has arrived) and a
//! python client (namespace B, own comm) over a veth pair. The client opens ONE keep-alive
//! connection and uses it BEFORE the agent starts, then waits on stdin until the agent is
//! healthy (which it reports only after adoption). Expected sizes come from the client's
//! own accounting of what it wrote and read.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::exchange::{check_fields, dump, pid_role, same_conn, sorted_by_start};
use integration_tests::util::{die_with_parent, kill_and_reap, unique_comm};
use integration_tests::{
    require_root, unique_port, veth_pair, Agent, AgentOptions, CommExe, Curl, CurlExe, Netns,
    Nginx, TempDir,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);
/// Larger than what the socket buffers hold once the client shrinks its receive buffer:
/// nginx is still writing it when the agent starts.
const BIG: usize = 8 * 1024 * 1024;
const FILES: [(&str, usize); 3] = [("x", 10), ("y", 1000), ("big", BIG)];

/// One keep-alive connection; `before` requests, then (after a line on stdin) `after`
/// requests. Each request is `METHOD PATH BODY_BYTES`. `partial N`: of the last request
/// before the pause, read only the head and N body bytes; read the rest after it. Prints
/// `local PORT`, `ready`, then one JSON line per exchange it completed after the pause.
const CLIENT: &str = r#"
import json, socket, sys
host, port, spec = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# A small receive buffer keeps a large response mostly in the server's hands.
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.connect((host, port))
print("local %d" % s.getsockname()[1], flush=True)
pending = b""

def recv_exact(n):
    global pending
    while len(pending) < n:
        chunk = s.recv(max(n - len(pending), 65536))
        if not chunk:
            raise SystemExit("server closed")
        pending += chunk
    data, pending = pending[:n], pending[n:]
    return data

def send(method, path, body):
    head = "%s %s HTTP/1.1\r\nHost: %s:%d\r\n" % (method, path, host, port)
    if body:
        head += "Content-Length: %d\r\n" % body
    head = (head + "\r\n").encode()
    s.sendall(head + b"b" * body)
    return len(head)

def read_head():
    global pending
    while b"\r\n\r\n" not in pending:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("server closed")
        pending += chunk
    end = pending.index(b"\r\n\r\n") + 4
    head, pending = pending[:end], pending[end:]
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(l.split(":")[1]) for l in lines if l.lower().startswith("content-length:"))
    return status, len(head), length

def exchange(method, path, body):
    sent = send(method, path, body)
    status, head_len, length = read_head()
    recv_exact(length)
    return {"method": method, "target": path, "status": status, "request_header_bytes": sent,
            "request_body_bytes": body, "response_header_bytes": head_len,
            "response_body_bytes": length}

for method, path, body in spec["before"]:
    exchange(method, path, body)
rest = 0
if spec.get("partial") is not None:
    method, path, body = spec["partial_request"]
    send(method, path, body)
    status, head_len, length = read_head()
    recv_exact(spec["partial"])
    # What was read beyond the partial count belongs to the body too.
    rest = length - spec["partial"] - len(pending)
    pending = b""
print("ready", flush=True)
sys.stdin.readline()
while rest > 0:
    # Large reads: each syscall's copy is capped, the rest is a gap of known size.
    got = s.recv(min(rest, 1 << 20))
    if not got:
        raise SystemExit("server closed")
    rest -= len(got)
for method, path, body in spec["after"]:
    print(json.dumps(exchange(method, path, body)), flush=True)
s.close()
print("done", flush=True)
"#;

struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    local_port: u16,
    _dir: TempDir,
}

impl Client {
    fn start(ns: &Netns, exe: &CommExe, server: SocketAddr, spec: &Value) -> Result<Client> {
        let dir = TempDir::new("adopt-client")?;
        let script = dir.join("client.py");
        std::fs::write(&script, CLIENT)?;
        let mut cmd = ns.cmd(exe.path());
        cmd.arg(&script)
            .arg(server.ip().to_string())
            .arg(server.port().to_string())
            .arg(spec.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("stderr.log"))?);
        die_with_parent(&mut cmd, libc::SIGKILL);
        let mut child = cmd.spawn().context("spawning the python client")?;
        let stdin = child.stdin.take().context("client stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("client stdout")?);
        let mut client = Client {
            child,
            stdin,
            stdout,
            local_port: 0,
            _dir: dir,
        };
        let local = client.line()?;
        client.local_port = local
            .strip_prefix("local ")
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("client said {local:?}"))?;
        let ready = client.line()?;
        ensure!(ready == "ready", "client said {ready:?}");
        Ok(client)
    }

    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        ensure!(
            !line.is_empty(),
            "the client exited early: {}",
            std::fs::read_to_string(self._dir.join("stderr.log")).unwrap_or_default()
        );
        Ok(line.trim_end().to_string())
    }

    /// Lets the client go on, and returns what it reports for its exchanges after the pause.
    fn resume(&mut self) -> Result<Vec<Value>> {
        writeln!(self.stdin, "go")?;
        let mut out = Vec::new();
        loop {
            let line = self.line()?;
            if line == "done" {
                break;
            }
            out.push(serde_json::from_str(&line)?);
        }
        let status = self.child.wait()?;
        ensure!(status.success(), "client exited with {status}");
        Ok(out)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// Expected fields of one exchange, from the client's account and the two addresses.
fn expected(t: &Value, role: &str, pid: u32, local: SocketAddr, peer: SocketAddr) -> Value {
    let target = t["target"].as_str().unwrap_or_default();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, json!(q)),
        None => (target, Value::Null),
    };
    json!({
        "role": role, "pid": pid, "tls": false, "version": "1.1",
        "method": t["method"], "path": path, "query": query, "status": t["status"],
        "request_header_bytes": t["request_header_bytes"],
        "request_body_bytes": t["request_body_bytes"],
        "response_header_bytes": t["response_header_bytes"],
        "response_body_bytes": t["response_body_bytes"],
        "request_truncated": false, "response_truncated": false,
        "local_addr": local.to_string(), "peer_addr": peer.to_string(),
    })
}

struct Setup {
    // Dropped last: the servers and clients in them go first.
    nginx: Nginx,
    exe: CommExe,
    ip_cli: IpAddr,
    ns_cli: Netns,
    _ns_srv: Netns,
}

fn setup(name: &str) -> Result<Setup> {
    let ns_srv = Netns::new(&format!("{name}-s"))?;
    let ns_cli = Netns::new(&format!("{name}-c"))?;
    let (ip_srv, ip_cli) = veth_pair(&ns_srv, &ns_cli)?;
    let listen = SocketAddr::new(ip_srv.into(), unique_port()?);
    let nginx = Nginx::start(&ns_srv, listen, &FILES)?;
    let exe = CommExe::python(&unique_comm(name))?;
    Ok(Setup {
        nginx,
        exe,
        ip_cli: ip_cli.into(),
        ns_cli,
        _ns_srv: ns_srv,
    })
}

/// Checks the exchanges of one side of the adopted connection against the client's account.
fn check_side(
    agent: &Agent,
    pid: u32,
    role: &'static str,
    wanted: &[Value],
    local: SocketAddr,
    peer: SocketAddr,
) -> Result<Vec<Value>> {
    let on_conn = |e: &Value| {
        pid_role(pid, role)(e)
            && e["local_addr"] == local.to_string().as_str()
            && e["peer_addr"] == peer.to_string().as_str()
    };
    let got = agent
        .wait_for_exchanges(on_conn, wanted.len(), WAIT)
        .with_context(|| format!("{role} side of the adopted connection"))?;
    // Anything more would show up by now: the client has finished.
    std::thread::sleep(Duration::from_millis(300));
    let all = agent.exchanges_matching(pid_role(pid, role))?;
    let got = sorted_by_start(got);
    ensure!(
        got.len() == wanted.len() && all.len() == wanted.len(),
        "{role}: expected exactly {} exchanges, got {} on the connection, {} in all:\n{}",
        wanted.len(),
        got.len(),
        all.len(),
        dump(&all)
    );
    for (e, t) in got.iter().zip(wanted) {
        check_fields(e, &expected(t, role, pid, local, peer))?;
    }
    same_conn(&got)?;
    Ok(got)
}

#[test]
fn keep_alive_connection_opened_before_the_agent() -> Result<()> {
    require_root()?;
    let s = setup("agadp")?;
    let server = s.nginx.addr();
    let spec = json!({
        "before": [["GET", "/x", 0]],
        "after": [["GET", "/y?id=7", 0], ["POST", "/upload", 1000]],
    });
    let mut client = Client::start(&s.ns_cli, &s.exe, server, &spec)?;
    let client_addr = SocketAddr::new(s.ip_cli, client.local_port);
    let curl_exe = CurlExe::with_comm(&unique_comm("agadc"))?;
    let agent = Agent::start(AgentOptions::capture_only(
        &[s.nginx.pid()],
        &[s.exe.comm(), curl_exe.comm()],
    ))?;
    // Adoption ran before the agent reported healthy: the two ends, nothing else.
    let adopted = "apiguard_connections_adopted_total";
    ensure!(
        agent.metric(adopted, &[("role", "server")])? == 1.0
            && agent.metric(adopted, &[("role", "client")])? == 1.0
            && agent.metric("apiguard_connections_adopt_skipped_total", &[])? == 0.0,
        "adoption counters:\n{}",
        agent.diagnostics()
    );
    ensure!(
        agent
            .stderr_text()
            .contains("Adopted connections established before start"),
        "no adoption log line:\n{}",
        agent.stderr_tail(20)
    );
    let before = agent.metrics()?;

    let wanted = client.resume()?;
    ensure!(wanted.len() == 2, "client reported {wanted:?}");
    ensure!(
        (wanted[0]["status"].clone(), wanted[1]["status"].clone()) == (json!(200), json!(201)),
        "nginx answered {wanted:?}"
    );
    let srv = check_side(
        &agent,
        s.nginx.pid(),
        "server",
        &wanted,
        server,
        client_addr,
    )?;
    let cli = check_side(&agent, client.pid(), "client", &wanted, client_addr, server)?;
    ensure!(
        srv[0]["conn_id"] != cli[0]["conn_id"],
        "one conn_id per side"
    );

    // A connection opened now is captured as always, under another id.
    let run = Curl::new(&s.ns_cli)
        .exe(&curl_exe)
        .url(s.nginx.url("/y"))
        .run()?;
    let fresh_srv = agent.wait_for_exchanges(
        |e| {
            pid_role(s.nginx.pid(), "server")(e)
                && e["peer_addr"] != client_addr.to_string().as_str()
        },
        1,
        WAIT,
    )?;
    let fresh_cli = agent.wait_for_exchanges(pid_role(run.pid, "client"), 1, WAIT)?;
    ensure!(
        fresh_srv.len() == 1 && fresh_cli.len() == 1,
        "fresh connection:\n{}{}",
        dump(&fresh_srv),
        dump(&fresh_cli)
    );
    for e in [&fresh_srv[0], &fresh_cli[0]] {
        check_fields(
            e,
            &json!({"method": "GET", "path": "/y", "status": 200, "response_body_bytes": 1000}),
        )?;
        ensure!(e["conn_id"] != srv[0]["conn_id"] && e["conn_id"] != cli[0]["conn_id"]);
    }
    let requests = "apiguard_http_requests_total";
    agent.check_deltas(
        &before,
        &[
            (requests, &[("role", "server"), ("method", "GET")], 2.0),
            (requests, &[("role", "server"), ("method", "POST")], 1.0),
            (requests, &[("role", "client"), ("method", "GET")], 2.0),
            (requests, &[("role", "client"), ("method", "POST")], 1.0),
            (requests, &[], 6.0),
            (adopted, &[], 0.0),
            ("apiguard_http_parse_errors_total", &[], 0.0),
            ("apiguard_http_exchanges_lost_total", &[], 0.0),
            ("apiguard_http_connections_ignored_total", &[], 0.0),
        ],
    )?;
    Ok(())
}

#[test]
fn joined_in_the_middle_of_a_large_response() -> Result<()> {
    require_root()?;
    let s = setup("agadb")?;
    let server = s.nginx.addr();
    let spec = json!({
        "before": [["GET", "/x", 0]],
        "partial_request": ["GET", "/big", 0],
        "partial": 256 * 1024,
        "after": [["GET", "/y", 0]],
    });
    let mut client = Client::start(&s.ns_cli, &s.exe, server, &spec)?;
    let client_addr = SocketAddr::new(s.ip_cli, client.local_port);
    let agent = Agent::start(AgentOptions::capture_only(
        &[s.nginx.pid()],
        &[s.exe.comm()],
    ))?;
    ensure!(
        agent.metric("apiguard_connections_adopted_total", &[])? == 2.0,
        "adoption counters:\n{}",
        agent.diagnostics()
    );
    let before = agent.metrics()?;
    // The rest of /big (megabytes still on their way) arrives first, then GET /y.
    let wanted = client.resume()?;
    ensure!(
        wanted.len() == 1 && wanted[0]["status"] == 200,
        "client reported {wanted:?}"
    );
    check_side(
        &agent,
        s.nginx.pid(),
        "server",
        &wanted,
        server,
        client_addr,
    )?;
    check_side(&agent, client.pid(), "client", &wanted, client_addr, server)?;
    agent.check_deltas(
        &before,
        &[
            ("apiguard_http_requests_total", &[], 2.0),
            ("apiguard_http_parse_errors_total", &[], 0.0),
            ("apiguard_http_exchanges_lost_total", &[], 0.0),
            ("apiguard_http_connections_ignored_total", &[], 0.0),
        ],
    )?;
    Ok(())
}

/// A server blocked in `accept()` since before the agent started (the call began before the
/// programs were attached, so its entry left no stash) still has the connection it accepts
/// afterwards captured, its peer named from the socket.
const BLOCKING_SERVER: &str = r#"
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(8)
print("ready", flush=True)
c, _ = s.accept()
data = b""
while b"\r\n\r\n" not in data:
    chunk = c.recv(65536)
    if not chunk:
        sys.exit(1)
    data += chunk
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
c.close()
"#;

#[test]
fn accept_blocked_before_the_agent_started() -> Result<()> {
    require_root()?;
    let s = setup("agacc")?;
    let listen = SocketAddr::new(s.nginx.addr().ip(), unique_port()?);
    let dir = TempDir::new("blocking-server")?;
    let script = dir.join("server.py");
    std::fs::write(&script, BLOCKING_SERVER)?;
    let mut cmd = s._ns_srv.cmd(s.exe.path());
    cmd.arg(&script)
        .arg(listen.ip().to_string())
        .arg(listen.port().to_string())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("stderr.log"))?);
    die_with_parent(&mut cmd, libc::SIGKILL);
    let mut server = cmd.spawn().context("spawning the blocking server")?;
    let mut ready = String::new();
    BufReader::new(server.stdout.take().context("server stdout")?).read_line(&mut ready)?;
    ensure!(ready.trim() == "ready", "server said {ready:?}");
    // Give it time to enter accept() before the programs attach.
    std::thread::sleep(Duration::from_millis(300));
    let agent = Agent::start(AgentOptions::capture_only(&[server.id()], &[]))?;
    let run = Curl::new(&s.ns_cli)
        .url(format!("http://{listen}/late"))
        .run()?;
    ensure!(
        run.transfers.len() == 1 && run.transfers[0].http_code() == 200,
        "curl: {:?}",
        run.transfers
    );
    let got = agent.wait_for_exchanges(pid_role(server.id(), "server"), 1, WAIT)?;
    kill_and_reap(&mut server);
    ensure!(got.len() == 1, "exchanges:\n{}", dump(&got));
    let e = &got[0];
    ensure!(
        e["path"] == "/late"
            && e["status"] == 200
            && e["response_body_bytes"] == 5
            && e["peer_addr"]
                .as_str()
                .is_some_and(|p| p.starts_with(&s.ip_cli.to_string())),
        "exchange:\n{}",
        dump(&got)
    );
    Ok(())
}
