//! Real HTTP servers (nginx, python `http.server`) inside a namespace, plus a raw client
//! for pipelining. All are killed and their directories removed on drop (also on panic).

use std::fs;
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use crate::netns::Netns;
use crate::procfs::{is_alive, is_listening};
use crate::tls::TlsCert;
use crate::util::{
    die_with_parent, kill_and_reap, python3_bin, run_with_timeout, tail, wait_until, write_filled,
    CommExe, Finished, TempDir,
};

/// The byte every served file is filled with.
pub const FILL_BYTE: u8 = b'x';

/// Python servers importing FastAPI/uvicorn take seconds of CPU on a loaded 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(15);

fn write_root_files(root: &Path, files: &[(&str, usize)]) -> Result<()> {
    fs::create_dir_all(root)?;
    for &(name, size) in files {
        ensure!(
            !name.is_empty() && !name.contains('/') && name != "." && name != "..",
            "file name {name:?} must be a plain name inside the server root"
        );
        write_filled(&root.join(name), size, FILL_BYTE)?;
    }
    Ok(())
}

/// Waits until `pid` listens on `addr`, failing early (with `logs()`) if it exits.
fn wait_listening(child: &mut Child, addr: SocketAddr, logs: impl Fn() -> String) -> Result<()> {
    let pid = child.id();
    wait_until(
        &format!("pid {pid} to listen on {addr}"),
        START_TIMEOUT,
        Duration::from_millis(20),
        || {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "server exited with {status} before listening on {addr}: {}",
                    logs()
                );
            }
            Ok(is_listening(pid, addr)?.then_some(()))
        },
    )
    .with_context(logs)
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// nginx options beyond the fixed test configuration.
#[derive(Debug, Clone, Default)]
pub struct NginxOptions {
    /// Log every request to `access.log` (one line each), the ground truth of how many
    /// requests nginx served. Off by default: it costs a file write per request.
    pub access_log: bool,
    /// Speak HTTP/2: with [`Nginx::start_tls`] `listen ... ssl http2` (ALPN offers h2 and
    /// http/1.1), otherwise `listen ... http2`, which is h2c with prior knowledge only
    /// (nginx 1.22 then answers nothing but HTTP/2 on that port).
    pub http2: bool,
    /// With [`Nginx::start_tls`]: `ssl_protocols TLSv1.2 TLSv1.3` (Debian 12's nginx 1.22
    /// negotiates at most TLS 1.2 by default).
    pub tls13: bool,
}

/// A single nginx process (`master_process off`, so the pid that serves is the pid we
/// spawned) serving files of given sizes from a temp dir.
///
/// Locations: `/<file>` serves the files; `/upload` reads a request body of up to 64 MiB
/// (all of it, before answering) and answers `201` with the 8-byte body `created\n`.
///
/// With [`Nginx::start_tls`] it speaks HTTPS (HTTP/1.1 only unless `http2`) on the same
/// locations; [`NginxOptions::http2`] adds HTTP/2 (over TLS, or h2c prior knowledge).
pub struct Nginx {
    child: Child,
    listen: SocketAddr,
    tls: bool,
    dir: TempDir,
}

impl Nginx {
    pub fn start(ns: &Netns, listen: SocketAddr, root_files: &[(&str, usize)]) -> Result<Nginx> {
        Self::start_with(ns, listen, root_files, NginxOptions::default())
    }

    pub fn start_with(
        ns: &Netns,
        listen: SocketAddr,
        root_files: &[(&str, usize)],
        opts: NginxOptions,
    ) -> Result<Nginx> {
        Self::launch(ns, listen, root_files, &opts, None)
    }

    /// nginx serving HTTPS with `cert` (`listen ... ssl`; Debian's nginx links the
    /// system libssl.so.3).
    pub fn start_tls(
        ns: &Netns,
        listen: SocketAddr,
        root_files: &[(&str, usize)],
        opts: NginxOptions,
        cert: &TlsCert,
    ) -> Result<Nginx> {
        Self::launch(ns, listen, root_files, &opts, Some(cert))
    }

    fn launch(
        ns: &Netns,
        listen: SocketAddr,
        root_files: &[(&str, usize)],
        opts: &NginxOptions,
        cert: Option<&TlsCert>,
    ) -> Result<Nginx> {
        let dir = TempDir::new("nginx")?;
        write_root_files(&dir.join("www"), root_files)?;
        fs::create_dir_all(dir.join("tmp"))?;
        let conf = nginx_conf(dir.path(), listen, opts, cert);
        fs::write(dir.join("nginx.conf"), conf)?;
        let mut cmd = ns.cmd("/usr/sbin/nginx");
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join("stdout.log"))?)
            .stderr(fs::File::create(dir.join("stderr.log"))?);
        die_with_parent(&mut cmd, libc::SIGKILL);
        let child = cmd.spawn().context("spawning nginx")?;
        let mut nginx = Nginx {
            child,
            listen,
            tls: cert.is_some(),
            dir,
        };
        let logs = nginx.logs_fn();
        wait_listening(&mut nginx.child, listen, logs)?;
        Ok(nginx)
    }

    fn logs_fn(&self) -> impl Fn() -> String {
        let dir = self.dir.path().to_path_buf();
        move || {
            format!(
                "nginx stderr: {}\nnginx error.log: {}",
                tail(&read_lossy(&dir.join("stderr.log")), 20),
                tail(&read_lossy(&dir.join("error.log")), 20)
            )
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// `http://<listen><path>`, or `https://` when serving TLS.
    pub fn url(&self, path: &str) -> String {
        url(self.tls, self.listen, path)
    }

    /// Whether the process still runs (it is never reaped before drop, so an exited
    /// nginx is a zombie here).
    pub fn is_running(&self) -> bool {
        is_alive(self.pid())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Requests nginx has finished (lines in access.log; needs `NginxOptions::access_log`).
    pub fn access_log_lines(&self) -> Result<usize> {
        let path = self.dir.join("access.log");
        let text = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(text.iter().filter(|&&b| b == b'\n').count())
    }

    /// Tail of nginx's stderr and error.log, for failure messages.
    pub fn logs(&self) -> String {
        (self.logs_fn())()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

fn nginx_conf(
    dir: &Path,
    listen: SocketAddr,
    opts: &NginxOptions,
    cert: Option<&TlsCert>,
) -> String {
    let d = dir.display();
    let h2 = if opts.http2 { " http2" } else { "" };
    let listen = match cert {
        None => format!("{listen}{h2}"),
        Some(cert) => format!(
            "{listen} ssl{h2};\n        ssl_certificate {};\n        ssl_certificate_key {}{}",
            cert.cert().display(),
            cert.key().display(),
            if opts.tls13 {
                ";\n        ssl_protocols TLSv1.2 TLSv1.3"
            } else {
                ""
            }
        ),
    };
    let access_log = if opts.access_log {
        format!(
            "log_format count '$connection $connection_requests $request_method $uri $status $request_length $bytes_sent';\n    \
             access_log {d}/access.log count;"
        )
    } else {
        "access_log off;".to_string()
    };
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{
    worker_connections 4096;
}}
http {{
    {access_log}
    client_body_temp_path {d}/tmp/client_body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    default_type application/octet-stream;
    # The capture path sees read/write/writev, not sendfile(2): serve bodies with writes.
    sendfile off;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    server_tokens off;
    server {{
        listen {listen};
        server_name _;
        root {d}/www;
        location / {{
        }}
        # Reads the whole request body before answering 201 `created\n`: the mirror
        # subrequest (internal, no traffic) makes nginx read it first, then the static
        # handler refuses the POST and error_page turns that into the answer. (`return`
        # would answer first and discard the body; over HTTP/2 nginx then resets the stream
        # with NO_ERROR and DATA may follow the finished response.)
        location /upload {{
            client_max_body_size 64m;
            client_body_buffer_size 1m;
            mirror /_read_body;
            mirror_request_body on;
            error_page 404 405 =201 /_created;
        }}
        location = /_read_body {{
            internal;
            return 204;
        }}
        location = /_created {{
            internal;
            return 201 "created\n";
        }}
    }}
}}
"#
    )
}

const PY_SERVER: &str = r#"
import functools, http.server, socket, sys

class Handler(http.server.SimpleHTTPRequestHandler):
    # The module's default is HTTP/1.0, which closes the connection after every response;
    # HTTP/1.1 keeps it alive so one client connection carries several exchanges.
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        received = self.read_body()
        body = b"ok\n"
        # Every login fails: credential-stuffing tests need 401s.
        status = 401 if self.path.split("?")[0] == "/login" else 200
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Received-Bytes", str(received))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                total += len(self.rfile.read(size))
                self.rfile.readline()
        return len(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

    def log_message(self, fmt, *args):
        pass

class TlsHandler(Handler):
    def setup(self):
        # The handshake runs here, in the connection's thread, so a client that never
        # completes it cannot hold up the accept loop.
        self.request.do_handshake()
        super().setup()

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    tls = None

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def server_bind(self):
        # "::" is dual-stack whatever net.ipv6.bindv6only says: IPv4 clients arrive as
        # v4-mapped peers on the IPv6 socket.
        if self.address_family == socket.AF_INET6 and self.server_address[0] == "::":
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

def main():
    host, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if ":" in host:
        Server.address_family = socket.AF_INET6
    handler = functools.partial(Handler, directory=root)
    if len(sys.argv) > 5:
        import ssl  # loads _ssl and with it libssl.so.3
        Server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        Server.tls.load_cert_chain(sys.argv[4], sys.argv[5])
        handler = functools.partial(TlsHandler, directory=root)
    with Server((host, port), handler) as srv:
        srv.serve_forever()

main()
"#;

/// Options for [`PyHttpServer`].
#[derive(Debug, Clone, Default)]
pub struct PyOptions {
    /// Run python through a symlink of this name, which becomes the process comm
    /// (`[capture] comms` can then select exactly this server). At most 15 bytes.
    pub comm: Option<String>,
}

/// python3's `http.server` (threaded, speaking HTTP/1.1 with keep-alive, unlike
/// `python3 -m http.server`, which answers HTTP/1.0 and closes each connection).
/// GET/HEAD serve files from a temp dir; POST reads the whole body (Content-Length or
/// chunked) and answers `200` (`401` at `/login`) with the 3-byte body `ok\n` and
/// `X-Received-Bytes`; a missing file is a `404` after which the server closes the connection.
/// Listening on `[::]` is dual-stack (`IPV6_V6ONLY` off): IPv4 clients are accepted too.
/// With [`PyHttpServer::start_tls`] it speaks HTTPS through python's `ssl` module.
pub struct PyHttpServer(ScriptServer);

impl PyHttpServer {
    pub fn start(ns: &Netns, listen: SocketAddr, root_files: &[(&str, usize)]) -> Result<Self> {
        Self::start_with(ns, listen, root_files, PyOptions::default())
    }

    pub fn start_with(
        ns: &Netns,
        listen: SocketAddr,
        root_files: &[(&str, usize)],
        opts: PyOptions,
    ) -> Result<Self> {
        Self::launch(ns, listen, root_files, &opts, None)
    }

    /// The same server behind TLS with `cert` (the handshake happens in the connection's
    /// thread).
    pub fn start_tls(
        ns: &Netns,
        listen: SocketAddr,
        root_files: &[(&str, usize)],
        opts: PyOptions,
        cert: &TlsCert,
    ) -> Result<Self> {
        Self::launch(ns, listen, root_files, &opts, Some(cert))
    }

    fn launch(
        ns: &Netns,
        listen: SocketAddr,
        root_files: &[(&str, usize)],
        opts: &PyOptions,
        cert: Option<&TlsCert>,
    ) -> Result<Self> {
        ScriptServer::start_python(
            ns,
            listen,
            root_files,
            opts,
            ("server.py", PY_SERVER, "python http server"),
            cert,
        )
        .map(Self)
    }
}

impl Deref for PyHttpServer {
    type Target = ScriptServer;

    fn deref(&self) -> &ScriptServer {
        &self.0
    }
}

const NODE_SERVER: &str = r#"
const fs = require("fs"), https = require("https"), path = require("path");
const [host, port, root, cert, key] = process.argv.slice(2);

function reply(res, status, body, extra) {
    res.writeHead(status, Object.assign({"Content-Length": body.length}, extra || {}));
    res.end(body); // node sends no body for HEAD, whatever is passed here
}

const server = https.createServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)}, (req, res) => {
    if (req.method === "POST") {
        let received = 0;
        req.on("data", (chunk) => { received += chunk.length; });
        req.on("end", () => reply(res, 200, Buffer.from("ok\n"), {"X-Received-Bytes": received}));
        return;
    }
    const name = path.basename(new URL(req.url, "https://x").pathname);
    fs.readFile(path.join(root, name), (err, data) => {
        if (err) {
            reply(res, 404, Buffer.from("not found\n"));
        } else {
            reply(res, 200, data, {"Content-Type": "application/octet-stream"});
        }
    });
});
server.keepAliveTimeout = 60000;
server.listen(Number(port), host);
"#;

/// Where the machine image has node (Debian's `nodejs`, with OpenSSL linked statically).
pub const NODE: &str = "/usr/bin/node";

/// Fails (never skips) when [`NODE`] is missing.
pub fn require_node() -> Result<()> {
    ensure!(
        Path::new(NODE).is_file(),
        "{NODE} is missing: node (Debian package nodejs, OpenSSL linked statically) is part \
         of this machine's image and the node TLS tests need it"
    );
    Ok(())
}

/// A node `https` server (HTTP/1.1 keep-alive): GET/HEAD serve files from a temp dir
/// (`404` with `not found\n` otherwise), POST reads the body and answers `200` `ok\n`.
/// It runs as [`NODE`] itself (comm `node`), so the process maps that executable.
pub struct NodeHttpsServer(ScriptServer);

impl NodeHttpsServer {
    pub fn start(
        ns: &Netns,
        listen: SocketAddr,
        root_files: &[(&str, usize)],
        cert: &TlsCert,
    ) -> Result<Self> {
        require_node()?;
        ScriptServer::start(
            ns,
            listen,
            root_files,
            Script {
                program: PathBuf::from(NODE),
                exe: None,
                name: "server.js",
                text: NODE_SERVER,
                what: "node https server",
                env: Vec::new(),
            },
            Some(cert),
        )
        .map(Self)
    }
}

impl Deref for NodeHttpsServer {
    type Target = ScriptServer;

    fn deref(&self) -> &ScriptServer {
        &self.0
    }
}

/// How to run a [`ScriptServer`].
struct Script {
    /// What is executed (the interpreter, or a [`CommExe`] symlink to it).
    program: PathBuf,
    /// Kept alive while the server runs.
    exe: Option<CommExe>,
    name: &'static str,
    text: &'static str,
    what: &'static str,
    /// Extra environment for the interpreter.
    env: Vec<(String, String)>,
}

/// A server script run as `<program> <script> <host> <port> <root> [<cert> <key>]` in a
/// namespace; killed and its directory removed on drop.
pub struct ScriptServer {
    child: Child,
    listen: SocketAddr,
    comm: String,
    tls: bool,
    dir: TempDir,
    _exe: Option<CommExe>,
}

impl ScriptServer {
    /// Runs the python script `(name, text, what)` as `<python3> <script> <host> <port>
    /// <root>`, through a comm symlink when `opts.comm` is set.
    pub(crate) fn start_python(
        ns: &Netns,
        listen: SocketAddr,
        root_files: &[(&str, usize)],
        opts: &PyOptions,
        (name, text, what): (&'static str, &'static str, &'static str),
        cert: Option<&TlsCert>,
    ) -> Result<Self> {
        Self::start_python_env(
            ns,
            listen,
            root_files,
            opts,
            (name, text, what),
            cert,
            Vec::new(),
        )
    }

    /// Runs a test's own python server `script` (`what` names it in errors) as `<python3>
    /// <script> <host> <port> <root>` with an empty root; returns once it listens on `listen`.
    pub fn python_script(
        ns: &Netns,
        listen: SocketAddr,
        script: &'static str,
        what: &'static str,
    ) -> Result<Self> {
        Self::start_python(
            ns,
            listen,
            &[],
            &PyOptions::default(),
            ("server.py", script, what),
            None,
        )
    }

    /// [`ScriptServer::start_python`] with extra environment (e.g. `PYTHONPATH` for the
    /// tools venv's packages).
    pub(crate) fn start_python_env(
        ns: &Netns,
        listen: SocketAddr,
        root_files: &[(&str, usize)],
        opts: &PyOptions,
        (name, text, what): (&'static str, &'static str, &'static str),
        cert: Option<&TlsCert>,
        env: Vec<(String, String)>,
    ) -> Result<Self> {
        let exe = match &opts.comm {
            Some(comm) => Some(CommExe::python(comm)?),
            None => None,
        };
        let program = exe
            .as_ref()
            .map_or_else(python3_bin, |e| e.path().to_path_buf());
        ScriptServer::start(
            ns,
            listen,
            root_files,
            Script {
                program,
                exe,
                name,
                text,
                what,
                env,
            },
            cert,
        )
    }

    fn start(
        ns: &Netns,
        listen: SocketAddr,
        root_files: &[(&str, usize)],
        script: Script,
        cert: Option<&TlsCert>,
    ) -> Result<Self> {
        let dir = TempDir::new("script")?;
        let root = dir.join("www");
        write_root_files(&root, root_files)?;
        let path = dir.join(script.name);
        fs::write(&path, script.text)?;
        let mut cmd = ns.cmd(&script.program);
        cmd.envs(script.env.iter().map(|(k, v)| (k, v)));
        cmd.arg(&path)
            .arg(listen.ip().to_string())
            .arg(listen.port().to_string())
            .arg(&root);
        if let Some(cert) = cert {
            cmd.arg(cert.cert()).arg(cert.key());
        }
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(dir.join("stdout.log"))?)
            .stderr(fs::File::create(dir.join("stderr.log"))?);
        die_with_parent(&mut cmd, libc::SIGKILL);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning the {}", script.what))?;
        let mut server = ScriptServer {
            child,
            listen,
            comm: comm_of_path(&script.program),
            tls: cert.is_some(),
            dir,
            _exe: script.exe,
        };
        let stderr = server.dir.join("stderr.log");
        let what = script.what;
        wait_listening(&mut server.child, listen, move || {
            format!("{what} stderr: {}", tail(&read_lossy(&stderr), 20))
        })?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// The process comm (what `/proc/<pid>/comm` shows).
    pub fn comm(&self) -> &str {
        &self.comm
    }

    /// `http://<listen><path>`, or `https://` when serving TLS.
    pub fn url(&self, path: &str) -> String {
        url(self.tls, self.listen, path)
    }

    /// Whether the process still runs (an exited server stays a zombie until drop).
    pub fn is_running(&self) -> bool {
        is_alive(self.pid())
    }

    /// What the script wrote to its stdout so far.
    pub fn stdout_text(&self) -> String {
        read_lossy(&self.dir.join("stdout.log"))
    }

    /// The numbers the script printed after `prefix` (one per line, e.g. `read 1024`), in order.
    pub fn stdout_numbers<T: std::str::FromStr>(&self, prefix: &str) -> Vec<T> {
        self.stdout_text()
            .lines()
            .filter_map(|line| line.strip_prefix(prefix)?.trim().parse().ok())
            .collect()
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

fn url(tls: bool, listen: SocketAddr, path: &str) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{listen}{path}")
}

fn comm_of_path(path: &Path) -> String {
    let mut comm = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    comm.truncate(15);
    comm
}

const RAW_CLIENT: &str = r#"
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
payload = open(sys.argv[3], "rb").read()
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(5)
s.connect((host, port))
sys.stdout.write("local_port %d\n" % s.getsockname()[1])
sys.stdout.flush()
s.sendall(payload)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
s.close()
sys.stdout.buffer.write(data)
"#;

/// What [`raw_exchange`] saw.
#[derive(Debug)]
pub struct RawRun {
    /// pid (and comm `python3`) of the client process.
    pub pid: u32,
    /// Its ephemeral port.
    pub local_port: u16,
    /// Everything the server sent until it closed the connection.
    pub response: Vec<u8>,
}

impl RawRun {
    /// Status codes of the responses in `response`, in order (`HTTP/1.x NNN` line starts).
    pub fn status_codes(&self) -> Vec<u16> {
        let text = String::from_utf8_lossy(&self.response);
        let mut codes = Vec::new();
        let mut rest = text.as_ref();
        while let Some(i) = rest.find("HTTP/1.") {
            let line = &rest[i..];
            if let Some(code) = line.get(9..12).and_then(|c| c.parse().ok()) {
                codes.push(code);
            }
            rest = &rest[i + 7..];
        }
        codes
    }
}

/// Connects from inside `ns` to `addr`, sends `payload` with one `send`, and reads until
/// the server closes (end the payload with a `Connection: close` request). Bounded: 5 s
/// socket timeout, 10 s overall.
pub fn raw_exchange(ns: &Netns, addr: SocketAddr, payload: &[u8]) -> Result<RawRun> {
    // Through a file: a payload can exceed what one command-line argument may hold.
    let dir = TempDir::new("raw")?;
    let file = dir.join("payload");
    fs::write(&file, payload)?;
    let mut cmd = ns.cmd(python3_bin());
    cmd.arg("-c")
        .arg(RAW_CLIENT)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(&file);
    let done: Finished = run_with_timeout(&mut cmd, Duration::from_secs(10))?;
    ensure!(
        done.status.success(),
        "raw client failed ({}): {}",
        done.status,
        done.stderr_text()
    );
    let out = done.stdout;
    let nl = out
        .iter()
        .position(|&b| b == b'\n')
        .context("raw client printed nothing")?;
    let first = String::from_utf8_lossy(&out[..nl]).into_owned();
    let local_port = first
        .strip_prefix("local_port ")
        .and_then(|p| p.trim().parse().ok())
        .with_context(|| format!("unexpected raw client output {first:?}"))?;
    Ok(RawRun {
        pid: done.pid,
        local_port,
        response: out[nl + 1..].to_vec(),
    })
}

/// A path inside a server's temp dir, for tests that need scratch files next to it.
pub fn scratch_file(dir: &TempDir, name: &str, size: usize) -> Result<PathBuf> {
    let path = dir.join(name);
    write_filled(&path, size, FILL_BYTE)?;
    Ok(path)
}

const ASGI_APP: &str = include_str!("py/asgi_app.py");

/// Which ASGI server runs the app of [`AsgiServer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asgi {
    /// hypercorn: HTTP/2 over TLS (ALPN h2, python's `ssl` → libssl.so.3), HTTP/1.1 too.
    Hypercorn,
    /// uvicorn with h11: HTTP/1.1, bodies of unknown length chunked.
    Uvicorn,
}

/// A small ASGI app (`py/asgi_app.py`, no framework) under hypercorn or uvicorn from the
/// tools venv (pinned by `cargo xtask setup`): `GET /json` answers [`ASGI_JSON_BYTES`]
/// bytes of JSON, `POST /echo-length` reads the body and answers `received <n>\n`,
/// `GET /events` streams [`crate::sse::SSE_EVENTS`] server-sent events 100 ms apart and
/// ends the stream, anything else is `404` `not found\n`. Over HTTP/2 its responses carry
/// no `content-length` (hypercorn ends a stream with an empty DATA frame after the body;
/// with a length curl may finish on the last body byte and exit without reading it).
pub struct AsgiServer(ScriptServer);

/// Bytes of `GET /json`'s body.
pub const ASGI_JSON_BYTES: u64 = 53;

impl AsgiServer {
    /// hypercorn needs `cert` (it is the HTTP/2 server), uvicorn serves plaintext with
    /// `None`.
    pub fn start(
        ns: &Netns,
        listen: SocketAddr,
        server: Asgi,
        opts: PyOptions,
        cert: Option<&TlsCert>,
    ) -> Result<Self> {
        let (name, module) = match server {
            Asgi::Hypercorn => ("hypercorn", "hypercorn"),
            Asgi::Uvicorn => ("uvicorn", "uvicorn"),
        };
        let pythonpath = crate::util::tools_pythonpath(&[module, "h2", "h11"])?;
        let env = vec![
            ("ASGI_SERVER".to_string(), name.to_string()),
            (
                "PYTHONPATH".to_string(),
                pythonpath.to_string_lossy().into_owned(),
            ),
        ];
        ScriptServer::start_python_env(
            ns,
            listen,
            &[],
            &opts,
            ("asgi_app.py", ASGI_APP, name),
            cert,
            env,
        )
        .map(Self)
    }
}

impl Deref for AsgiServer {
    type Target = ScriptServer;

    fn deref(&self) -> &ScriptServer {
        &self.0
    }
}
