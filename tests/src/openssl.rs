//! The `openssl` command line tool as a TLS server (`s_server -www`: answers `GET /` with an
//! HTTP/1.0 status page) and client (`s_client` sending one request), with the protocol
//! version and cipher suites forced by the test: the way to get old or weak TLS from the
//! system's own OpenSSL.

use std::fs;
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use crate::netns::Netns;
use crate::tls::TlsCert;
use crate::util::{die_with_parent, run_with_timeout, wait_until, which, CommExe, TempDir};

/// `openssl` reached through a symlink named `comm` (see [`SServer::start`]).
pub fn openssl_exe(comm: &str) -> Result<CommExe> {
    CommExe::new(&which("openssl")?, comm)
}

/// `openssl s_server -www` in a namespace; killed on drop.
pub struct SServer {
    child: Child,
    listen: SocketAddr,
    dir: TempDir,
}

impl SServer {
    /// Listens on `listen` with `cert`; `args` force the version and suites (`-tls1_1`,
    /// `-cipher DEFAULT:@SECLEVEL=0`). `exe` is `openssl` under a comm of the test's own: the
    /// server blocks in `accept` at once, so an agent must be capturing before it starts
    /// (a call under way when probes attach is not seen), which a pid filter cannot do.
    pub fn start(
        ns: &Netns,
        exe: &CommExe,
        listen: SocketAddr,
        cert: &TlsCert,
        args: &[&str],
    ) -> Result<SServer> {
        let dir = TempDir::new("s_server")?;
        let mut cmd = ns.cmd(exe.path());
        cmd.args(["s_server", "-www", "-accept"])
            .arg(listen.to_string())
            .arg("-cert")
            .arg(cert.cert())
            .arg("-key")
            .arg(cert.key())
            .args(args)
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join("stdout.log"))?)
            .stderr(fs::File::create(dir.join("stderr.log"))?);
        die_with_parent(&mut cmd, libc::SIGKILL);
        let mut child = cmd.spawn().context("spawning openssl s_server")?;
        let log = dir.join("stdout.log");
        let errors = dir.join("stderr.log");
        wait_until(
            &format!("openssl s_server to accept on {listen}"),
            Duration::from_secs(5),
            Duration::from_millis(20),
            || {
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "openssl s_server exited with {status}: {}",
                        fs::read_to_string(&errors).unwrap_or_default()
                    );
                }
                Ok(fs::read_to_string(&log)?.contains("ACCEPT").then_some(()))
            },
        )?;
        Ok(SServer { child, listen, dir })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    pub fn logs(&self) -> String {
        fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `openssl s_client` reported about its session, and the answer it got.
#[derive(Debug)]
pub struct SClientRun {
    /// `Protocol  : TLSv1.1`
    pub protocol: String,
    /// `Cipher    : ECDHE-RSA-AES256-SHA` (OpenSSL's name)
    pub cipher: String,
    pub output: String,
}

/// `openssl s_client` from `ns` to `addr` with `args`, sending `GET / HTTP/1.0` and reading
/// the answer to its end.
pub fn s_client(ns: &Netns, addr: SocketAddr, args: &[&str]) -> Result<SClientRun> {
    let script = format!(
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | openssl s_client -connect {addr} -ign_eof {}",
        args.iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut cmd = ns.cmd("sh");
    cmd.args(["-c", &script]);
    let done = run_with_timeout(&mut cmd, Duration::from_secs(10))?;
    let output = done.stdout_text();
    let field = |name: &str| {
        output
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim_start_matches([' ', ':']).trim().to_string())
            .unwrap_or_default()
    };
    let run = SClientRun {
        protocol: field("Protocol"),
        cipher: field("Cipher"),
        output: output.clone(),
    };
    ensure!(
        output.contains("HTTP/1.0 200 ok"),
        "s_client {args:?} got no answer (exit {}): {output}\n{}",
        done.status,
        done.stderr_text()
    );
    Ok(run)
}
