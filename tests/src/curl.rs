//! curl as the client, with curl's own per-transfer accounting (`-w '%{json}'`) as the
//! expected values: exact header/body sizes, status, and both socket addresses.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use crate::netns::Netns;
use crate::util::{run_with_timeout, which, CommExe};

/// curl reached through a symlink whose name becomes the process comm, so a
/// `[capture] comms` filter can select exactly this test's clients.
pub struct CurlExe(CommExe);

impl CurlExe {
    pub fn with_comm(comm: &str) -> Result<CurlExe> {
        Ok(CurlExe(CommExe::new(&which("curl")?, comm)?))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn comm(&self) -> &str {
        self.0.comm()
    }
}

/// One curl invocation inside a namespace. Every URL gets `-o /dev/null`; the transfer
/// statistics of each URL come back as a [`Transfer`].
///
/// [`Curl::next`] starts a new operation (`--next`): its URLs get their own options (a
/// method, a body) while curl keeps reusing the same connection.
pub struct Curl<'a> {
    ns: &'a Netns,
    exe: PathBuf,
    args: Vec<OsString>,
    timeout: Duration,
    insecure: bool,
}

impl<'a> Curl<'a> {
    pub fn new(ns: &'a Netns) -> Curl<'a> {
        Curl {
            ns,
            exe: PathBuf::from("curl"),
            args: Vec::new(),
            timeout: Duration::from_secs(10),
            insecure: false,
        }
    }

    /// `-k` in every operation: accept the servers' self-signed test certificates.
    pub fn insecure(mut self) -> Self {
        self.insecure = true;
        self
    }

    /// `--next`: the following options and URLs form a new operation (options given
    /// before do not apply to it; the write-out, time limit and `-k` are repeated).
    pub fn next(mut self) -> Self {
        self.args.push(NEXT.into());
        self
    }

    pub fn exe(mut self, exe: &CurlExe) -> Self {
        self.exe = exe.path().to_path_buf();
        self
    }

    /// Any curl option; it applies to the URLs added after it (curl's own rules).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<S: Into<OsString>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn url(mut self, url: impl Into<OsString>) -> Self {
        self.args.push("-o".into());
        self.args.push("/dev/null".into());
        self.args.push(url.into());
        self
    }

    /// `--max-time` for each transfer; the whole run is bounded by twice this.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs curl and fails unless it exits 0.
    pub fn run(self) -> Result<CurlRun> {
        self.run_expecting(0)
    }

    /// Runs curl and fails unless it exits with `code` (e.g. 35 for a failed TLS
    /// handshake); transfers that produced no write-out are simply absent.
    pub fn run_expecting(self, code: i32) -> Result<CurlRun> {
        let mut per_op: Vec<OsString> = ["-s", "-S", "--max-time"].map(Into::into).into();
        per_op.push(self.timeout.as_secs().max(1).to_string().into());
        per_op.extend(["-w", "%{json}\\n"].map(OsString::from));
        if self.insecure {
            per_op.push("-k".into());
        }
        let mut cmd = self.ns.cmd(&self.exe);
        cmd.args(&per_op);
        for arg in &self.args {
            cmd.arg(arg);
            if arg == NEXT {
                cmd.args(&per_op);
            }
        }
        let operations = 1 + self.args.iter().filter(|a| *a == NEXT).count() as u32;
        let done = run_with_timeout(
            &mut cmd,
            self.timeout * 2 * operations + Duration::from_secs(2),
        )?;
        ensure!(
            done.status.code() == Some(code),
            "curl {:?} exited with {} (expected {code}): {}",
            self.args,
            done.status,
            done.stderr_text()
        );
        let transfers = done
            .stdout_text()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map(Transfer))
            .collect::<Result<Vec<_>, _>>()
            .context("parsing curl's -w %{json} output")?;
        Ok(CurlRun {
            pid: done.pid,
            transfers,
        })
    }
}

const NEXT: &str = "--next";

/// The process and what each of its transfers did.
#[derive(Debug)]
pub struct CurlRun {
    pub pid: u32,
    pub transfers: Vec<Transfer>,
}

impl CurlRun {
    /// New TCP connections over all transfers (1 = everything reused one connection).
    pub fn connects(&self) -> u64 {
        self.transfers.iter().map(Transfer::num_connects).sum()
    }
}

/// curl's `%{json}` write-out for one transfer.
#[derive(Debug, Clone)]
pub struct Transfer(pub Value);

impl Transfer {
    fn u64(&self, key: &str) -> u64 {
        self.0.get(key).and_then(Value::as_u64).unwrap_or(0)
    }

    fn str(&self, key: &str) -> &str {
        self.0.get(key).and_then(Value::as_str).unwrap_or("")
    }

    pub fn http_code(&self) -> u16 {
        self.u64("http_code") as u16
    }

    pub fn method(&self) -> &str {
        self.str("method")
    }

    /// Response body bytes received.
    pub fn size_download(&self) -> u64 {
        self.u64("size_download")
    }

    /// Response header bytes (status line through the blank line).
    pub fn size_header(&self) -> u64 {
        self.u64("size_header")
    }

    /// Request body bytes on the wire (chunk framing included for chunked uploads).
    pub fn size_upload(&self) -> u64 {
        self.u64("size_upload")
    }

    /// Request header bytes: curl's `size_request` counts headers plus the wire body.
    pub fn request_header_bytes(&self) -> u64 {
        self.u64("size_request") - self.size_upload()
    }

    pub fn num_connects(&self) -> u64 {
        self.u64("num_connects")
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.addr("local_ip", "local_port")
    }

    pub fn remote_addr(&self) -> Result<SocketAddr> {
        self.addr("remote_ip", "remote_port")
    }

    fn addr(&self, ip: &str, port: &str) -> Result<SocketAddr> {
        let ip = self
            .str(ip)
            .parse()
            .with_context(|| format!("curl {ip} in {}", self.0))?;
        Ok(SocketAddr::new(ip, self.u64(port) as u16))
    }
}
