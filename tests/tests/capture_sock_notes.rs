//! The exit-only socket notes (`note_{send,recv}_sock`) run only while a connection of the
//! process still wants its socket noted (issue 15, round 11: `SOCK_WANTED`, a per-process
//! count). Every case where a connection wants its socket after the count fell to 0 must still
//! be noted:
//! - a connection opened after every earlier one was announced, left idle, then used;
//! - a connection closed before any data (its count released by the close, not leaked
//!   below the others);
//! - many connections in use, then one more, new;
//! - a UDP socket "connected" after all that: the kernel tracks it at `connect`, and only the
//!   note of its first send says it is not TCP (it is then dropped, counted in
//!   `apiguard_capture_non_tcp_total`); a skipped note would announce it as a TCP connection
//!   and parse its datagrams.
//!
//! Only the client process is captured (by its comm).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::netns::{unique_port, Netns};
use integration_tests::servers::ScriptServer;
use integration_tests::util::{run_with_timeout, unique_comm, CommExe, TempDir};
use integration_tests::{require_root, Agent, AgentOptions};

const WAIT: Duration = Duration::from_secs(10);

/// Answers every request head on a connection with 200 "ok", keeping the connection open.
const SERVER: &str = r#"
import socket, sys, threading
host, port = sys.argv[1], int(sys.argv[2])
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(64)
print("listening", flush=True)

def serve(conn):
    with conn:
        conn.settimeout(20)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                _, buf = buf.split(b"\r\n\r\n", 1)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        except OSError:
            pass

while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Runs the cases against the server; prints each exchange's path and local address.
const CLIENT: &str = r#"
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])

def exchange(s, path):
    s.sendall(("GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path).encode())
    data = b""
    while not data.endswith(b"ok\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    local = "%s:%d" % s.getsockname()
    print("status", path, data.split(b" ")[1].decode(), local, flush=True)

# Every connection so far announced with its socket: the process's count is 0.
first = socket.create_connection((host, port))
exchange(first, "/first")
time.sleep(0.2)
# Opened and closed before any data.
socket.create_connection((host, port)).close()
# Opened, idle, then used.
idle = socket.create_connection((host, port))
time.sleep(0.5)
exchange(idle, "/idle-then-used")
# Many in use, then one more.
many = [socket.create_connection((host, port)) for _ in range(6)]
for i, s in enumerate(many):
    exchange(s, "/many-%d" % i)
for i, s in enumerate(many):
    exchange(s, "/again-%d" % i)
last = socket.create_connection((host, port))
exchange(last, "/last")
exchange(first, "/first-again")
# A UDP socket, "connected" (tracked at connect): its first send must be noted.
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.connect((host, port))
udp.send(b"GET /udp HTTP/1.1\r\nHost: a\r\n\r\n")
time.sleep(0.2)
print("done", flush=True)
"#;

#[test]
fn sockets_are_noted_whenever_a_connection_still_wants_its_own() -> Result<()> {
    require_root()?;
    let ns = Netns::new("socknote")?;
    let listen = SocketAddr::new([127, 0, 0, 1].into(), unique_port()?);
    let dir = TempDir::new("socknote")?;
    let server = ScriptServer::python_script(&ns, listen, SERVER, "python server")?;
    let exe = CommExe::python(&unique_comm("note"))?;
    let agent = Agent::start(AgentOptions::comms_only(&[exe.comm()]))?;
    let non_tcp_before = agent.metric("apiguard_capture_non_tcp_total", &[])?;

    let script = dir.join("client.py");
    std::fs::write(&script, CLIENT)?;
    let mut cmd = ns.cmd(exe.path());
    cmd.arg(&script)
        .arg(listen.ip().to_string())
        .arg(listen.port().to_string());
    let done = run_with_timeout(&mut cmd, Duration::from_secs(30))?;
    let out = String::from_utf8_lossy(&done.stdout).into_owned();
    ensure!(
        done.status.success() && out.lines().any(|l| l == "done"),
        "client failed ({}): {out}{}",
        done.status,
        done.stderr_text()
    );
    let mut paths: Vec<String> = ["/first", "/idle-then-used", "/last", "/first-again"]
        .iter()
        .map(|p| p.to_string())
        .collect();
    for i in 0..6 {
        paths.push(format!("/many-{i}"));
        paths.push(format!("/again-{i}"));
    }
    for path in &paths {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("status {path} ")))
            .with_context(|| format!("no status for {path}: {out}"))?;
        let fields: Vec<&str> = line.split(' ').collect();
        ensure!(fields.get(2) == Some(&"200"), "{line}");
        let local = fields.get(3).copied().unwrap_or_default();
        let found = agent
            .wait_for_exchanges(|e| e["path"] == path.as_str(), 1, WAIT)
            .with_context(|| format!("no exchange for {path}\n{}", agent.diagnostics()))?;
        let ex = &found[0];
        ensure!(
            ex["role"] == "client"
                && ex["pid"] == done.pid
                && ex["status"] == 200
                && ex["peer_addr"] == listen.to_string()
                && ex["local_addr"] == local,
            "{path}: {ex:#}"
        );
    }
    // The UDP socket's note said it is not TCP: dropped, never parsed.
    let non_tcp = agent.wait_metric(
        "apiguard_capture_non_tcp_total",
        &[],
        |v| v > non_tcp_before,
        WAIT,
    )?;
    ensure!(
        non_tcp > non_tcp_before,
        "the UDP socket was not noted as such (apiguard_capture_non_tcp_total {non_tcp})\n{}",
        agent.diagnostics()
    );
    let udp = agent.exchanges_matching(|e| e["path"] == "/udp")?;
    ensure!(udp.is_empty(), "UDP datagrams parsed as HTTP: {udp:#?}");
    drop(server);
    Ok(())
}
