//! Client connections the kernel must track however their `connect` returned (issue 15):
//! - a blocking `connect` interrupted by a signal (no `SA_RESTART`): the kernel returns
//!   `ERESTARTSYS`, the caller sees `EINTR` while the handshake goes on, and python (like Go)
//!   then waits for writability and checks `SO_ERROR` without calling `connect` again;
//! - a `sockaddr_in` that ends 16 bytes before a page never touched (as Go's heap-allocated
//!   sockaddrs sometimes do): reading past its 16 bytes failed and lost the connection.
//!
//! Only the client process is captured (by its comm); the server is not, so every exchange
//! seen comes from the client's own connect tracking.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::netns::{unique_port, Netns};
use integration_tests::servers::ScriptServer;
use integration_tests::util::{run_with_timeout, unique_comm, CommExe, TempDir};
use integration_tests::{require_root, Agent, AgentOptions};

const WAIT: Duration = Duration::from_secs(10);

/// Listens with a backlog of 0: the first connection fills the accept queue, so the kernel
/// drops the next SYN and that client's `connect` blocks until the SYN is retransmitted
/// (1 s later). The queue is drained only 0.6 s after the first connection arrives, so the
/// retransmitted SYN is accepted. Answers each request head with 200 "ok".
const SERVER: &str = r#"
import select, socket, sys, threading, time
host, port = sys.argv[1], int(sys.argv[2])
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(0)
print("listening", flush=True)

def serve(conn):
    with conn:
        conn.settimeout(10)
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
        except OSError:
            pass

while True:
    select.select([srv], [], [])
    time.sleep(0.6)
    srv.setblocking(False)
    while True:
        try:
            c, _ = srv.accept()
        except BlockingIOError:
            break
        c.setblocking(True)
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    srv.setblocking(True)
"#;

/// Runs both cases against the server and prints what it observed.
const CLIENT: &str = r#"
import ctypes, mmap, signal, socket, struct, sys, time
host, port = sys.argv[1], int(sys.argv[2])

def exchange(s, path):
    s.sendall(("GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % path).encode())
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    print("status", path, data.split(b" ")[1].decode(), flush=True)

# 1. Fill the accept queue, then connect with a blocking call a signal interrupts.
filler = socket.create_connection((host, port))
fired = []
signal.signal(signal.SIGALRM, lambda *_: fired.append(time.monotonic()))
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
start = time.monotonic()
signal.setitimer(signal.ITIMER_REAL, 0.2)
s.connect((host, port))
took = time.monotonic() - start
# The alarm came while connect was still blocked (it returned after the SYN retransmit).
print("interrupted", int(len(fired) == 1 and fired[0] - start < took - 0.3), flush=True)
exchange(s, "/interrupted")
filler.close()

# 2. connect(2) with a sockaddr_in in the last 16 bytes of a page whose next page was never
# touched (so it is not mapped in yet).
libc = ctypes.CDLL(None, use_errno=True)
page = mmap.PAGESIZE
area = mmap.mmap(-1, 2 * page, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
at = page - 16
# sin_family in host order, then port and address in network order.
area[at:at + 16] = struct.pack("=H", socket.AF_INET) + struct.pack("!H4s8x", port, socket.inet_aton(host))
base = ctypes.addressof(ctypes.c_char.from_buffer(area))
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
rc = libc.connect(s.fileno(), ctypes.c_void_p(base + at), 16)
if rc != 0:
    sys.exit("connect failed: errno %d" % ctypes.get_errno())
exchange(s, "/page-end")
"#;

#[test]
fn client_connections_are_tracked_after_an_interrupted_connect_or_a_sockaddr_at_a_page_end(
) -> Result<()> {
    require_root()?;
    let ns = Netns::new("connect")?;
    let listen = SocketAddr::new([127, 0, 0, 1].into(), unique_port()?);
    let dir = TempDir::new("connect")?;
    let server = ScriptServer::python_script(&ns, listen, SERVER, "python server")?;
    let exe = CommExe::python(&unique_comm("conn"))?;
    let agent = Agent::start(AgentOptions::comms_only(&[exe.comm()]))?;

    let script = dir.join("client.py");
    std::fs::write(&script, CLIENT)?;
    let mut cmd = ns.cmd(exe.path());
    cmd.arg(&script)
        .arg(listen.ip().to_string())
        .arg(listen.port().to_string());
    let done = run_with_timeout(&mut cmd, Duration::from_secs(20))?;
    let out = String::from_utf8_lossy(&done.stdout).into_owned();
    ensure!(
        done.status.success(),
        "client failed ({}): {out}{}",
        done.status,
        done.stderr_text()
    );
    // The case really happened: the signal came while `connect` was blocked.
    ensure!(
        out.lines().any(|l| l == "interrupted 1"),
        "the connect was not interrupted: {out}"
    );
    let mut untracked = Vec::new();
    for path in ["/interrupted", "/page-end"] {
        ensure!(
            out.lines().any(|l| l == format!("status {path} 200")),
            "{out}"
        );
        let Ok(found) = agent.wait_for_exchanges(|e| e["path"] == path, 1, WAIT) else {
            untracked.push(path);
            continue;
        };
        let ex = &found[0];
        ensure!(
            ex["role"] == "client"
                && ex["pid"] == done.pid
                && ex["status"] == 200
                && ex["response_body_bytes"] == 3
                && ex["request_truncated"] == false
                && ex["response_truncated"] == false
                && ex["peer_addr"] == listen.to_string(),
            "{ex:#}"
        );
    }
    ensure!(
        untracked.is_empty(),
        "no exchange for {untracked:?}: the client connection was not tracked\n{}",
        agent.diagnostics()
    );
    drop(server);
    Ok(())
}
