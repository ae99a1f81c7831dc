//! A client script that talks to the test in JSON lines: it prints `{"ready": true}` once
//! its imports are done, then waits for a line on stdin before each phase of its traffic.
//! The test learns its pid before it sends a byte, so an agent limited to that pid
//! (`[capture] pids`, the tgid: every thread of the client) can be started in between,
//! and a phase can be run after an agent joined an already open connection.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::util::{die_with_parent, kill_and_reap, tail, TempDir};

/// A running gated client; killed on drop.
pub struct GatedClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    what: String,
    dir: TempDir,
}

impl GatedClient {
    /// Spawns `cmd` (stdin/stdout piped, stderr to a file) and waits (at most `timeout`)
    /// for its `{"ready": true}` line.
    pub fn spawn(mut cmd: Command, what: &str, timeout: Duration) -> Result<GatedClient> {
        let dir = TempDir::new("client")?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(dir.join("stderr.log"))?);
        die_with_parent(&mut cmd, libc::SIGKILL);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning the {what}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut client = GatedClient {
            child,
            stdin,
            lines,
            what: what.to_string(),
            dir,
        };
        let ready = client.read_json(timeout)?;
        ensure!(
            ready["ready"] == true,
            "the {what} did not report ready: {ready}"
        );
        Ok(client)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the client run its next phase.
    pub fn go(&mut self) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        stdin
            .write_all(b"go\n")
            .and_then(|()| stdin.flush())
            .with_context(|| format!("writing to the {}: {}", self.what, self.stderr()))
    }

    /// The next line the client prints, as JSON (at most `timeout`).
    pub fn read_json(&mut self, timeout: Duration) -> Result<Value> {
        let line = match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => bail!(
                "the {} printed nothing for {timeout:?}; stderr: {}",
                self.what,
                self.stderr()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().ok();
                bail!(
                    "the {} exited ({status:?}) before printing; stderr: {}",
                    self.what,
                    self.stderr()
                )
            }
        };
        serde_json::from_str(&line).with_context(|| format!("the {} printed {line:?}", self.what))
    }

    /// Closes stdin and waits (at most `timeout`) for a successful exit.
    pub fn finish(&mut self, timeout: Duration) -> Result<()> {
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                ensure!(
                    status.success(),
                    "the {} exited with {status}: {}",
                    self.what,
                    self.stderr()
                );
                return Ok(());
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "the {} still runs after {timeout:?}",
                self.what
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The tail of its stderr, for failure messages.
    pub fn stderr(&self) -> String {
        let text = std::fs::read(self.dir.join("stderr.log")).unwrap_or_default();
        tail(&String::from_utf8_lossy(&text), 20)
    }
}

impl Drop for GatedClient {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}
