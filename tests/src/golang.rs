//! Go test programs (`tests/go/`, standard library only): an HTTPS server and client
//! (`tlsapp`, built unstripped and stripped with `-ldflags=-s -w`) and a Go program that never
//! uses TLS (`plain`). Built once per target dir with Debian's Go (`cargo xtask setup`), with
//! the Go build cache and GOPATH under the target dir and no network access (`GOPROXY=off`,
//! `GOFLAGS=-mod=mod` unused: no modules).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::netns::Netns;
use crate::tls::TlsCert;
use crate::util::{die_with_parent, kill_and_reap, run_checked, target_dir, CommExe};

/// The Go toolchain: `go` on `PATH`, else Debian's versioned install (`golang-1.19-go`
/// installs `/usr/lib/go-1.19/bin/go` without a `PATH` entry).
pub fn go_bin() -> Result<PathBuf> {
    if let Ok(path) = crate::util::which("go") {
        return Ok(path);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib")?
        .flatten()
        .map(|e| e.path().join("bin").join("go"))
        .filter(|p| {
            p.is_file()
                && p.parent()
                    .and_then(Path::parent)
                    .and_then(Path::file_name)
                    .is_some_and(|n| n.to_string_lossy().starts_with("go"))
        })
        .collect();
    found.sort();
    found
        .pop()
        .context("no Go toolchain (Debian's golang-1.19-go: cargo xtask setup)")
}

/// The built Go test programs.
#[derive(Debug, Clone)]
pub struct GoPrograms {
    /// The HTTPS server/client with its symbol table.
    pub tlsapp: PathBuf,
    /// The same, linked with `-ldflags=-s -w` (no `.symtab`, no DWARF).
    pub tlsapp_stripped: PathBuf,
    /// Plain TCP echo server without `crypto/tls`.
    pub plain: PathBuf,
    /// `go version`'s version word (`go1.19.8`): what `tls_library` reports as `go:<it>`.
    pub version: String,
}

static BUILD: Mutex<Option<GoPrograms>> = Mutex::new(None);

impl GoPrograms {
    /// Builds the programs into `<target dir>/go-tests/` (once per test process; `go build`
    /// itself is cached).
    pub fn get() -> Result<GoPrograms> {
        let mut built = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = built.as_ref() {
            return Ok(p.clone());
        }
        let go = go_bin()?;
        let target = target_dir()?.join("go-tests");
        std::fs::create_dir_all(&target)?;
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("go");
        let version = run_checked(Command::new(&go).arg("version"))?;
        let version = version
            .split_whitespace()
            .find(|w| w.starts_with("go1"))
            .with_context(|| format!("unexpected `go version`: {version}"))?
            .to_string();
        // Built under a temporary name, then renamed into place: a parallel test process
        // running the previous file keeps its inode.
        let build = |dir: &str, out: &str, flags: &[&str]| -> Result<PathBuf> {
            let tmp = target.join(format!("{out}.{}.tmp", std::process::id()));
            let path = target.join(out);
            let mut cmd = Command::new(&go);
            cmd.current_dir(src.join(dir))
                .env("GOCACHE", target.join("cache"))
                .env("GOPATH", target.join("gopath"))
                .env("GO111MODULE", "off")
                .env("GOPROXY", "off")
                .env("GOFLAGS", "")
                .env("CGO_ENABLED", "0")
                .args(["build", "-o"])
                .arg(&tmp)
                .args(flags)
                .arg(".");
            run_checked(&mut cmd).with_context(|| format!("building tests/go/{dir}"))?;
            std::fs::rename(&tmp, &path)?;
            Ok(path)
        };
        let programs = GoPrograms {
            tlsapp: build("tlsapp", "tlsapp", &[])?,
            tlsapp_stripped: build("tlsapp", "tlsapp-stripped", &["-ldflags=-s -w"])?,
            plain: build("plain", "plain", &[])?,
            version,
        };
        *built = Some(programs.clone());
        Ok(programs)
    }

    /// `tls_library` of exchanges captured from these programs.
    pub fn tls_library(&self) -> String {
        format!("go:{}", self.version)
    }
}

/// `h1` (HTTP/1.1 only: ALPN without h2) or `h2` (Go's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    H1,
    H2,
}

impl Http {
    fn arg(self) -> &'static str {
        match self {
            Http::H1 => "h1",
            Http::H2 => "h2",
        }
    }
}

/// A Go program serving in a namespace until dropped.
pub struct GoServer {
    child: Child,
    pub addr: SocketAddr,
}

impl GoServer {
    /// `exe server ADDR CERT KEY h1|h2` (the HTTPS server), waiting until it listens.
    pub fn https(
        ns: &Netns,
        exe: &CommExe,
        addr: SocketAddr,
        cert: &TlsCert,
        http: Http,
    ) -> Result<GoServer> {
        let mut cmd = ns.cmd(exe.path());
        cmd.arg("server")
            .arg(addr.to_string())
            .arg(cert.cert())
            .arg(cert.key())
            .arg(http.arg());
        Self::spawn(cmd, addr)
    }

    /// `exe ADDR` (the plain echo server).
    pub fn plain(ns: &Netns, exe: &CommExe, addr: SocketAddr) -> Result<GoServer> {
        let mut cmd = ns.cmd(exe.path());
        cmd.arg(addr.to_string());
        Self::spawn(cmd, addr)
    }

    fn spawn(mut cmd: Command, addr: SocketAddr) -> Result<GoServer> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        die_with_parent(&mut cmd, libc::SIGKILL);
        let mut child = cmd.spawn().context("starting a Go test server")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if !line.starts_with("listening") {
            kill_and_reap(&mut child);
            bail!("the Go server did not start: {line:?}");
        }
        Ok(GoServer { child, addr })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for GoServer {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// How long a client run may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// One exchange as the Go client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoResult {
    pub method: String,
    /// With the query.
    pub target: String,
    pub sent: u64,
    pub status: u16,
    pub body: u64,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub proto: String,
}

/// What a client run did.
#[derive(Debug)]
pub struct GoClientRun {
    pub pid: u32,
    pub results: Vec<GoResult>,
}

/// `exe client https://ADDR h1|h2 WORKERS ROUNDS SPEC...` in `ns`: `workers` goroutines each
/// making `rounds` passes over `specs` (`METHOD:PATH:BODYSIZE`, `{w}`/`{r}` replaced), every
/// response checked by the client to name its own request. Fails if any did not.
pub fn go_client(
    ns: &Netns,
    exe: &CommExe,
    server: SocketAddr,
    http: Http,
    (workers, rounds): (u32, u32),
    specs: &[&str],
) -> Result<GoClientRun> {
    let timeout = CLIENT_TIMEOUT;
    let mut cmd = ns.cmd(exe.path());
    cmd.arg("client")
        .arg(format!("https://{server}"))
        .arg(http.arg())
        .arg(workers.to_string())
        .arg(rounds.to_string())
        .args(specs)
        // Discovery hooks a new executable tens of milliseconds after its exec; a client that
        // is done sooner would run unhooked.
        .env("TLSAPP_DELAY_MS", "400")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut cmd, libc::SIGKILL);
    let child = cmd.spawn().context("starting the Go client")?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(output) = rx.recv_timeout(timeout) else {
        // SAFETY: kill(2) of our own child's pid, which is not reaped yet (the waiting thread
        // still holds it); at worst the signal is lost.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        bail!("the Go client did not finish within {timeout:?}");
    };
    let output = output?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "the Go client failed ({}): {}\n{}",
        output.status,
        stdout.lines().last().unwrap_or(""),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut results = Vec::new();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).with_context(|| format!("client line {line}"))?;
        if v.get("done").is_some() {
            continue;
        }
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let n = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
        results.push(GoResult {
            method: s("method"),
            target: s("path"),
            sent: n("sent"),
            status: n("status") as u16,
            body: n("body"),
            proto: s("proto"),
        });
    }
    Ok(GoClientRun { pid, results })
}
