//! TLS test support: a throwaway self-signed certificate, which library file a process
//! gets its TLS from, a python HTTPS client with exact byte accounting, a client that
//! dies mid-request, and the checks every TLS capture test makes on both ends.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use crate::agent::Agent;
use crate::curl::{Curl, CurlExe, CurlRun, Transfer};
use crate::exchange::{
    check_fields, dump, merged, pid_role, request_fields, same_conn, sorted_by_start, Window,
};
use crate::metrics::Metrics;
use crate::netns::Netns;
use crate::util::{
    die_with_parent, kill_and_reap, run_checked, run_with_timeout, write_filled, CommExe, TempDir,
};

/// `apiguard_tls_probes_attached{library}`: uprobes attached in one library file.
pub const PROBES_ATTACHED: &str = "apiguard_tls_probes_attached";
pub const PROBE_SITES: &str = "apiguard_tls_probe_sites";
/// `apiguard_http_requests_total{role, method, status, tls}`.
pub const REQUESTS: &str = "apiguard_http_requests_total";
const PARSE_ERRORS: &str = "apiguard_http_parse_errors_total";
/// The OpenSSL library Debian's nginx, curl (through libcurl) and python's `_ssl` link.
pub const LIBSSL: &str = "libssl.so.3";
/// Bodies up to this size are copied whole (the default per-call capture cap), so their
/// exchanges must not be truncated; larger ones may be, with exact sizes either way.
const CAPTURE_CAP: u64 = 16 * 1024;
const WAIT: Duration = Duration::from_secs(10);

/// A self-signed RSA certificate and its key, valid for a day, in a temp dir.
pub struct TlsCert {
    cert: PathBuf,
    key: PathBuf,
    _dir: TempDir,
}

impl TlsCert {
    /// `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=<cn> -days 1`.
    pub fn generate(cn: &str) -> Result<TlsCert> {
        let dir = TempDir::new("tls")?;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        run_checked(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .arg("-subj")
                .arg(format!("/CN={cn}"))
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
        )
        .context("generating a self-signed certificate (the openssl CLI: cargo xtask setup)")?;
        Ok(TlsCert {
            cert,
            key,
            _dir: dir,
        })
    }

    /// A self-signed certificate for these DNS names (subjectAltName; the first is also the
    /// CN), which clients can trust as their CA (`SSL_CERT_FILE`).
    pub fn generate_for(names: &[&str]) -> Result<TlsCert> {
        let dir = TempDir::new("tls")?;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        run_checked(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .arg("-subj")
                .arg(format!(
                    "/CN={}",
                    names.first().copied().unwrap_or("localhost")
                ))
                .arg("-addext")
                .arg(format!("subjectAltName={}", san.join(",")))
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
        )
        .context("generating a self-signed certificate (the openssl CLI: cargo xtask setup)")?;
        Ok(TlsCert {
            cert,
            key,
            _dir: dir,
        })
    }

    pub fn cert(&self) -> &Path {
        &self.cert
    }

    pub fn key(&self) -> &Path {
        &self.key
    }
}

/// The canonical path of the library `soname` that `exe` loads (per `ldd`), which is the
/// path the kernel shows in the maps of a process running it, e.g.
/// `/usr/lib/x86_64-linux-gnu/libssl.so.3` for `/lib/x86_64-linux-gnu/libssl.so.3`.
pub fn linked_library(exe: &Path, soname: &str) -> Result<String> {
    let out = run_checked(Command::new("ldd").arg(exe))?;
    let resolved = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix(soname)?.trim().strip_prefix("=>"))
        .find_map(|rest| rest.split_whitespace().next())
        .with_context(|| format!("{} does not load {soname}:\n{out}", exe.display()))?;
    let canonical =
        std::fs::canonicalize(resolved).with_context(|| format!("resolving {resolved}"))?;
    Ok(canonical.to_string_lossy().into_owned())
}

/// Polls `apiguard_tls_probes_attached{library}` until it is above 0 (at most `timeout`);
/// fails with every TLS metric the agent exports. Returns the number of probes.
pub fn wait_probes_attached(agent: &Agent, library: &str, timeout: Duration) -> Result<f64> {
    let labels = [("library", library)];
    // `+ 0.0`: an empty sum is -0.0, which would print as "-0".
    let probes = agent.wait_metric(PROBES_ATTACHED, &labels, |v| v > 0.0, timeout)? + 0.0;
    ensure!(
        probes > 0.0,
        "after {timeout:?} no uprobes are attached in {library} \
         ({PROBES_ATTACHED}{{library={library:?}}} = {probes});\n{}",
        agent.diagnostics()
    );
    Ok(probes)
}

/// Checks the kinds of probe sites chosen in `library`: `(kind, sites)` for the kinds
/// `entry`, `internal` and `entry_single_step` (every kind not listed must be 0).
pub fn check_probe_sites(agent: &Agent, library: &str, expected: &[(&str, f64)]) -> Result<()> {
    let metrics = agent.metrics()?;
    for kind in ["entry", "internal", "entry_single_step"] {
        let want = expected
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0.0, |&(_, n)| n);
        let got = metrics.sum(PROBE_SITES, &[("library", library), ("kind", kind)]) + 0.0;
        ensure!(
            got == want,
            "{PROBE_SITES}{{library={library:?}, kind={kind:?}}} = {got}, expected {want}"
        );
    }
    Ok(())
}

/// One end of the connections a test checks: the process and the file its TLS is
/// expected to come from (`tls_library`), `None` for plaintext (`tls: false`).
#[derive(Debug, Clone)]
pub struct End {
    pub pid: u32,
    pub comm: String,
    pub library: Option<String>,
}

/// One request of a client run: the target (`/path?query`) and the decoded request body
/// size. Method, status and every other size come from the client's own accounting.
#[derive(Debug, Clone, Copy)]
pub struct Req {
    pub target: &'static str,
    pub body: u64,
}

impl Req {
    pub const fn new(target: &'static str) -> Req {
        Req { target, body: 0 }
    }

    pub const fn body(self, body: u64) -> Req {
        Req {
            target: self.target,
            body,
        }
    }

    fn path_and_query(&self) -> (&'static str, Value) {
        match self.target.split_once('?') {
            Some((path, query)) => (path, json!(query)),
            None => (self.target, Value::Null),
        }
    }
}

/// Sizes of the files a server under [`curl_request_mix`] must serve.
pub const MIX_FILES: [(&str, usize); 2] = [("small.txt", 1000), ("big.bin", 3 << 20)];
/// Bytes [`curl_request_mix`] POSTs.
pub const MIX_POST_BYTES: u64 = 5000;

/// The requests of [`curl_request_mix`], in order.
pub const MIX: [Req; 5] = [
    Req::new("/small.txt"),
    Req::new("/missing"),
    Req::new("/upload").body(MIX_POST_BYTES),
    Req::new("/small.txt"),
    Req::new("/big.bin?size=3m"),
];

/// One curl run (as `exe`, accepting self-signed certificates) making [`MIX`] on one
/// keep-alive connection (`--next` keeps it): GET a 1000-byte file, GET a missing one,
/// POST 5000 bytes to `/upload`, HEAD the first file, GET a 3 MiB file. `url` maps a
/// target to the server's URL. Returns the run and the time window around it.
pub fn curl_request_mix(
    ns: &Netns,
    exe: &CurlExe,
    url: impl Fn(&str) -> String,
) -> Result<(CurlRun, Window)> {
    let scratch = TempDir::new("mix")?;
    let body = scratch.join("body");
    write_filled(&body, MIX_POST_BYTES as usize, b'p')?;
    let [get, missing, post, head, big] = MIX.map(|r| url(r.target));
    let (run, window) = Window::around(|| {
        Curl::new(ns)
            .exe(exe)
            .insecure()
            .url(get)
            .url(missing)
            .next()
            // Blank `Expect:` so curl never waits for a `100 Continue`.
            .arg("-H")
            .arg("Expect:")
            .arg("--data-binary")
            .arg(format!("@{}", body.display()))
            .url(post)
            .next()
            .arg("-I")
            .url(head)
            .next()
            .url(big)
            .run()
    })?;
    // (method, request body, response body) per transfer; the 404 and 201 bodies are
    // the server's own.
    let got: Vec<(&str, u64, u64)> = run
        .transfers
        .iter()
        .map(|t| (t.method(), t.size_upload(), t.size_download()))
        .collect();
    let (small, big) = (MIX_FILES[0].1 as u64, MIX_FILES[1].1 as u64);
    let mix_ok = matches!(
        got[..],
        [("GET", 0, a), ("GET", 0, _), ("POST", MIX_POST_BYTES, _), ("HEAD", 0, 0), ("GET", 0, b)]
            if a == small && b == big
    );
    ensure!(
        run.connects() == 1 && mix_ok,
        "curl did not make the request mix on one connection: {run:#?}"
    );
    Ok((run, window))
}

/// [`curl_request_mix`] as `exe` against the HTTPS server `server` at `server_addr`,
/// which must answer `statuses`, then [`check_run`] at both ends (curl's TLS comes from
/// `curl_library`). Prints both ends' exchanges.
pub fn check_curl_mix(
    agent: &Agent,
    ns: &Netns,
    exe: &CurlExe,
    server: &End,
    server_addr: SocketAddr,
    statuses: [u16; 5],
    curl_library: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let (run, window) = curl_request_mix(ns, exe, |t| format!("https://{server_addr}{t}"))?;
    let codes: Vec<u16> = run.transfers.iter().map(Transfer::http_code).collect();
    ensure!(
        codes == statuses,
        "{} answered {codes:?}, expected {statuses:?}",
        server.comm
    );
    let client = End {
        pid: run.pid,
        comm: exe.comm().into(),
        library: Some(curl_library.into()),
    };
    let (srv, cli) = check_run(agent, server, server_addr, &client, &run, &MIX, &window)?;
    print!("server side:\n{}client side:\n{}", dump(&srv), dump(&cli));
    Ok((srv, cli))
}

/// `curl` asking only for an ECDSA cipher suite under TLS 1.2 from a server with an RSA
/// certificate: the handshake fails with a `handshake_failure` alert and curl exits 35.
pub fn curl_without_common_cipher(curl: Curl, url: String) -> Result<CurlRun> {
    curl.insecure()
        .args([
            "--tls-max",
            "1.2",
            "--ciphers",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
        ])
        .url(url)
        .run_expecting(35)
}

/// Stops the agent (it must exit 0) and checks that the exchanges matching `ours` are
/// exactly `n`, all inside TLS. Returns them.
pub fn stop_expecting_tls_exchanges(
    agent: &mut Agent,
    ours: impl Fn(&Value) -> bool,
    n: usize,
) -> Result<Vec<Value>> {
    agent.stop_cleanly()?;
    let mine = agent.exchanges_matching(ours)?;
    ensure!(
        mine.len() == n && mine.iter().all(|e| e["tls"] == true),
        "expected exactly {n} TLS exchanges, got {}:\n{}",
        mine.len(),
        dump(&mine)
    );
    Ok(mine)
}

/// Waits for the exchanges of one client run (all on one connection) at both ends and
/// checks each field: method, target, host, status, exact header and body sizes, both
/// addresses, `tls` and `tls_library` as the ends expect, timing inside `window`, and
/// one `conn_id` per end. Returns (server exchanges, client exchanges) in request order.
pub fn check_run(
    agent: &Agent,
    server: &End,
    server_addr: SocketAddr,
    client: &End,
    run: &CurlRun,
    reqs: &[Req],
    window: &Window,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let n = reqs.len();
    ensure!(
        run.transfers.len() == n && run.connects() == 1,
        "the client must make {n} requests on one connection: {run:#?}"
    );
    ensure!(
        run.pid == client.pid,
        "client pid {} is not the run's {}",
        client.pid,
        run.pid
    );
    let client_addr = run.transfers[0].local_addr()?;
    let peer = client_addr.to_string();
    let srv = agent
        .wait_for_exchanges(
            |e| pid_role(server.pid, "server")(e) && e["peer_addr"] == peer.as_str(),
            n,
            WAIT,
        )
        .with_context(|| format!("server side ({}) of {reqs:?} from {peer}", server.comm))?;
    let cli = agent
        .wait_for_exchanges(pid_role(client.pid, "client"), n, WAIT)
        .with_context(|| format!("client side ({}) of {reqs:?}", client.comm))?;
    let (srv, cli) = (sorted_by_start(srv), sorted_by_start(cli));
    ensure!(
        srv.len() == n && cli.len() == n,
        "expected {n} server and {n} client exchanges:\n{}{}",
        dump(&srv),
        dump(&cli)
    );
    for (i, (req, t)) in reqs.iter().zip(&run.transfers).enumerate() {
        let want = expected_fields(t, server_addr, req);
        let ends = [
            (&srv[i], server, "server", server_addr, client_addr),
            (&cli[i], client, "client", client_addr, server_addr),
        ];
        for (e, end, role, local, remote) in ends {
            let fields = merged(
                &want,
                json!({
                    "role": role, "pid": end.pid, "comm": end.comm,
                    "tls": end.library.is_some(), "tls_library": end.library,
                    "local_addr": local.to_string(), "peer_addr": remote.to_string(),
                }),
            );
            check_fields(e, &fields)
                .and_then(|()| window.check(e))
                .with_context(|| format!("request {i} ({req:?}), {role} side"))?;
        }
    }
    same_conn(&srv)?;
    same_conn(&cli)?;
    Ok((srv, cli))
}

/// The fields both ends must report for request `req`, answered as `t` says.
fn expected_fields(t: &Transfer, server_addr: SocketAddr, req: &Req) -> Value {
    let (path, query) = req.path_and_query();
    let mut want = request_fields(t, server_addr, t.method(), path, query, req.body);
    if t.size_download() > CAPTURE_CAP {
        // Above the per-call copy cap truncation is allowed; every size stays exact.
        if let Some(fields) = want.as_object_mut() {
            fields.remove("response_truncated");
        }
    }
    want
}

/// For an agent that saw only this test's TLS traffic since `before`: `per_side`
/// exchanges inside TLS at each end (`apiguard_http_requests_total{role, tls="true"}`)
/// and none outside it, no exchange at or to `addr` that is not marked `tls` (nothing
/// parsed from the ciphertext), and no HTTP parse errors.
pub fn check_tls_only(
    agent: &Agent,
    before: &Metrics,
    addr: SocketAddr,
    per_side: usize,
) -> Result<()> {
    let addr = addr.to_string();
    let plain = agent.exchanges_matching(|e| {
        e["tls"] != true && (e["local_addr"] == addr.as_str() || e["peer_addr"] == addr.as_str())
    })?;
    ensure!(
        plain.is_empty(),
        "exchanges on the TLS port {addr} that are not marked tls:\n{}\n{}",
        plain.iter().map(|e| format!("  {e}\n")).collect::<String>(),
        agent.diagnostics()
    );
    let n = per_side as f64;
    agent.check_deltas(
        before,
        &[
            (REQUESTS, &[("role", "server"), ("tls", "true")], n),
            (REQUESTS, &[("role", "client"), ("tls", "true")], n),
            (REQUESTS, &[("tls", "false")], 0.0),
            (PARSE_ERRORS, &[], 0.0),
        ],
    )
}

const PY_TLS_CLIENT: &str = r#"
import http.client, json, ssl, sys

class Counted:
    """The response's reader, counting the bytes http.client takes from it."""
    def __init__(self, fp):
        self.fp, self.n = fp, 0
    def readline(self, *args):
        return self.count(self.fp.readline(*args))
    def read(self, *args):
        return self.count(self.fp.read(*args))
    def readinto(self, buf):
        n = self.fp.readinto(buf)
        self.n += n or 0
        return n
    def count(self, data):
        self.n += len(data)
        return data
    def __getattr__(self, name):
        return getattr(self.fp, name)

class Response(http.client.HTTPResponse):
    def __init__(self, sock, *args, **kwargs):
        super().__init__(sock, *args, **kwargs)
        self.fp = Counted(self.fp)

class Conn(http.client.HTTPSConnection):
    response_class = Response
    connects = sent = 0
    def connect(self):
        super().connect()
        self.connects += 1
    def send(self, data):
        self.sent += len(data)
        super().send(data)

host, port, requests = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
maps = [l.split()[-1] for l in open("/proc/self/maps") if l.rstrip().endswith("/libssl.so.3")]
print(json.dumps({"libssl": maps[0] if maps else None}), flush=True)
conn = Conn(host, port, context=ssl._create_unverified_context(), timeout=10)
for method, target, size in requests:
    connects, conn.sent = conn.connects, 0
    conn.request(method, target, body=b"x" * size if size else None)
    local, remote = conn.sock.getsockname(), conn.sock.getpeername()
    resp = conn.getresponse()
    counted = resp.fp
    head = counted.n
    body = resp.read()
    # The shape of curl's -w '%{json}', so the harness reads both alike.
    print(json.dumps({
        "method": method, "http_code": resp.status,
        "size_header": head, "size_download": counted.n - head, "size_upload": size,
        "size_request": conn.sent, "num_connects": conn.connects - connects,
        "local_ip": local[0], "local_port": local[1],
        "remote_ip": remote[0], "remote_port": remote[1],
    }), flush=True)
    assert len(body) == counted.n - head
"#;

/// What [`py_https_client`] did: its transfers (curl's `%{json}` shape) and the libssl
/// path its own maps showed.
pub struct PyTlsRun {
    pub run: CurlRun,
    pub libssl: String,
}

/// Runs a python `http.client.HTTPSConnection` client (unverified context) as `exe` in
/// `ns`, making `requests` (method, target, body size) one after another on one
/// connection. Bounded at 20 s.
pub fn py_https_client(
    ns: &Netns,
    exe: &CommExe,
    addr: SocketAddr,
    requests: &[(&str, Req)],
) -> Result<PyTlsRun> {
    let list: Vec<Value> = requests
        .iter()
        .map(|(method, req)| json!([method, req.target, req.body]))
        .collect();
    let mut cmd = ns.cmd(exe.path());
    cmd.arg("-c")
        .arg(PY_TLS_CLIENT)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(Value::from(list).to_string());
    let done = run_with_timeout(&mut cmd, Duration::from_secs(20))?;
    ensure!(
        done.status.success(),
        "python https client failed ({}): {}",
        done.status,
        done.stderr_text()
    );
    let stdout = done.stdout_text();
    let mut lines = stdout.lines().map(serde_json::from_str::<Value>);
    let first = lines
        .next()
        .context("python https client printed nothing")??;
    let libssl = first["libssl"]
        .as_str()
        .with_context(|| format!("python's _ssl did not map {LIBSSL}: {first}"))?
        .to_string();
    let transfers = lines
        .map(|l| l.map(Transfer))
        .collect::<Result<Vec<_>, _>>()
        .context("parsing the python client's output")?;
    Ok(PyTlsRun {
        run: CurlRun {
            pid: done.pid,
            transfers,
        },
        libssl,
    })
}

const PY_HALF_CLIENT: &str = r#"
import socket, ssl, sys, time
host, port, payload = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
raw = socket.create_connection((host, port), timeout=10)
conn = ssl._create_unverified_context().wrap_socket(raw)
conn.sendall(payload)
print("sent %d" % conn.getsockname()[1], flush=True)
time.sleep(30)
"#;

/// A client killed in the middle of a request: it completes the TLS handshake with
/// `addr`, sends `payload`, and is SIGKILLed once it reports the write. Returns its pid
/// and local port.
pub fn tls_client_killed_mid_request(
    ns: &Netns,
    exe: &CommExe,
    addr: SocketAddr,
    payload: &[u8],
) -> Result<(u32, u16)> {
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    let mut cmd = ns.cmd(exe.path());
    cmd.arg("-c")
        .arg(PY_HALF_CLIENT)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(hex)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut cmd, libc::SIGKILL);
    let mut child = cmd.spawn().context("spawning the half-request client")?;
    let pid = child.id();
    // The script's own socket timeout bounds this read: on failure it exits (EOF).
    let mut line = String::new();
    let read = BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line);
    kill_and_reap(&mut child);
    read.context("reading the half-request client")?;
    let Some(port) = line.trim().strip_prefix("sent ") else {
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        bail!("half-request client did not send: {line:?} {stderr}");
    };
    Ok((pid, port.parse().context("half-request client port")?))
}
