//! A private `redis-server` (Debian's) on a free loopback port, for the cluster tests: no
//! persistence, its own directory, killed on drop. It can be killed and started again on the
//! same port, empty, as a Redis that crashed and came back.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::netns::unique_port;
use crate::util::{die_with_parent, kill_and_reap, wait_until, TempDir};

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl RedisServer {
    pub fn start() -> Result<RedisServer> {
        let mut server = RedisServer {
            child: None,
            port: unique_port()?,
            dir: TempDir::new("redis")?,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<()> {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(self.dir.join("redis.log"))?)
            .stderr(Stdio::null());
        die_with_parent(&mut cmd, libc::SIGKILL);
        self.child = Some(
            cmd.spawn()
                .context("spawning redis-server (cargo xtask setup installs it)")?,
        );
        let addr = self.addr();
        wait_until(
            "redis-server to listen",
            Duration::from_secs(5),
            Duration::from_millis(20),
            || Ok(TcpStream::connect(addr).ok().map(|_| ())),
        )
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }

    /// Starts again on the same port, empty.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
    }

    /// `redis-cli`-free query: one inline command, the raw reply.
    pub fn command(&self, line: &str) -> Result<String> {
        use std::io::{Read, Write};
        let mut s = TcpStream::connect(self.addr())?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(format!("{line}\r\n").as_bytes())?;
        let mut buf = vec![0; 65536];
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
