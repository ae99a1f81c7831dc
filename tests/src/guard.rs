//! Harness for the XDP guard and enforcement tests: a server namespace reached by two
//! client namespaces over their own veth pairs, a one-shot HTTP probe that tells answers
//! from dropped connections, and a private bpffs pin directory.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::netns::{unique_port, Netns, Veth};
use crate::servers::PyHttpServer;
use crate::util::{next_id, run_with_timeout};

/// `srv` with a dual-stack python HTTP server; `c1` and `c2` each joined to it by a veth.
/// Field order is drop order: the server goes before the namespaces.
pub struct Topology {
    pub server: PyHttpServer,
    pub port: u16,
    pub v1: Veth,
    pub v2: Veth,
    pub c1: Netns,
    pub c2: Netns,
    pub srv: Netns,
}

impl Topology {
    /// Namespaces `<prefix>-s|a|b-…` (prefix at most 20 characters).
    pub fn new(prefix: &str) -> Result<Topology> {
        let srv = Netns::new(&format!("{prefix}-s"))?;
        let c1 = Netns::new(&format!("{prefix}-a"))?;
        let c2 = Netns::new(&format!("{prefix}-b"))?;
        let v1 = Veth::new(&srv, &c1)?;
        let v2 = Veth::new(&srv, &c2)?;
        let port = unique_port()?;
        let server = PyHttpServer::start(
            &srv,
            SocketAddr::new("::".parse()?, port),
            &[("index.html", 100)],
        )?;
        Ok(Topology {
            server,
            port,
            v1,
            v2,
            c1,
            c2,
            srv,
        })
    }

    /// `[xdp]` guarding both server-side veth ends (in the server namespace).
    pub fn xdp_toml(&self, extra: &str) -> String {
        let ns = self.srv.path();
        format!(
            "[xdp]\ninterfaces = [{{ name = {:?}, netns = {:?} }}, {{ name = {:?}, netns = {:?} }}]\n{extra}",
            self.v1.a_if, ns, self.v2.a_if, ns
        )
    }

    /// `[capture] pids = [server]` plus [`Topology::xdp_toml`].
    pub fn agent_toml(&self, extra: &str) -> String {
        format!(
            "[capture]\npids = [{}]\n{}",
            self.server.pid(),
            self.xdp_toml(extra)
        )
    }

    /// URL of the server as client 1 (`c1 == true`) or client 2 reaches it.
    pub fn url(&self, c1: bool, path: &str) -> String {
        let ip = if c1 { self.v1.a_ip } else { self.v2.a_ip };
        format!("http://{ip}:{}{path}", self.port)
    }

    /// One GET from client 1 or 2 on a fresh connection.
    pub fn get(&self, c1: bool, path: &str) -> Result<Probe> {
        let ns = if c1 { &self.c1 } else { &self.c2 };
        probe(ns, &self.url(c1, path), &[], Duration::from_millis(500))
    }
}

/// What one HTTP attempt saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Status(u16),
    /// No TCP connection within the timeout (SYNs dropped).
    NoConnection,
}

/// `curl` in `ns` with a connect timeout; `headers` as `Name: value`.
pub fn probe(ns: &Netns, url: &str, headers: &[&str], connect: Duration) -> Result<Probe> {
    let args: Vec<String> = headers
        .iter()
        .flat_map(|h| ["-H".into(), h.to_string()])
        .collect();
    curl(ns, url, &args, connect)
}

/// `curl` in `ns` with a connect timeout and any other curl `args` (method, body, headers).
pub fn curl(ns: &Netns, url: &str, args: &[String], connect: Duration) -> Result<Probe> {
    let mut cmd = ns.cmd("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--connect-timeout",
    ])
    .arg(format!("{:.3}", connect.as_secs_f64()))
    .args(["-m", "5"])
    .args(args)
    .arg(url);
    let run = run_with_timeout(&mut cmd, Duration::from_secs(10))?;
    match run.status.code() {
        Some(0) => {
            let code = run
                .stdout_text()
                .trim()
                .parse()
                .context("curl's %{http_code}")?;
            Ok(Probe::Status(code))
        }
        // 28: timeout; 7: could not connect.
        Some(28) | Some(7) => Ok(Probe::NoConnection),
        other => bail!("curl {url} exited with {other:?}: {}", run.stderr_text()),
    }
}

/// Polls `probe` until it gives `want`; returns when (since `since`) it first did.
pub fn wait_for_probe(
    mut probe: impl FnMut() -> Result<Probe>,
    want: Probe,
    since: Instant,
    timeout: Duration,
) -> Result<Duration> {
    loop {
        if probe()? == want {
            return Ok(since.elapsed());
        }
        if since.elapsed() > timeout {
            bail!("no {want:?} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A directory of its own on bpffs for `[xdp] pin_dir`; removing it (on drop) unpins
/// the links and maps inside, which detaches the guard.
pub struct PinDir(PathBuf);

impl PinDir {
    pub fn new() -> Result<PinDir> {
        let dir = PathBuf::from(format!(
            "/sys/fs/bpf/api-guard-test-{}-{}",
            std::process::id(),
            next_id()
        ));
        Ok(PinDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Pinned objects (file names) in the directory.
    pub fn entries(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .map(|d| {
                let mut v: Vec<String> = d
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default()
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether an XDP program is attached to `ifname` in `ns` (`ip link` shows `prog/xdp`).
pub fn xdp_attached(ns: &Netns, ifname: &str) -> Result<bool> {
    Ok(ns
        .ip(&["link", "show", "dev", ifname])?
        .contains("prog/xdp"))
}

/// Sends raw Ethernet frames out of `ifname` in `ns` (AF_PACKET, through python3).
pub fn send_frames(ns: &Netns, ifname: &str, frames: &[Vec<u8>]) -> Result<()> {
    let hex: Vec<String> = frames
        .iter()
        .map(|f| f.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    let script = "import socket,sys\n\
        s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n\
        s.bind((sys.argv[1],0))\n\
        for h in sys.argv[2:]:\n    s.send(bytes.fromhex(h))\n";
    let mut cmd: Command = ns.cmd(crate::util::python3_bin());
    cmd.args(["-c", script, ifname]).args(&hex);
    let run = run_with_timeout(&mut cmd, Duration::from_secs(10))?;
    if !run.status.success() {
        bail!("sending raw frames failed: {}", run.stderr_text());
    }
    Ok(())
}

/// The address as config and CLI take it.
pub fn addr(ip: impl Into<IpAddr>) -> String {
    ip.into().to_string()
}
