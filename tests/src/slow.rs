//! A server whose answers take seconds (a 2 s reply, a 5 s event stream) and a client that
//! times each piece of the answer: request-time verdicts must land while the answer is still
//! being produced.

use std::net::SocketAddr;
use std::ops::Deref;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use crate::netns::Netns;
use crate::servers::{PyOptions, ScriptServer};
use crate::util::{python3_bin, run_with_timeout};

const SERVER: &str = include_str!("py/slow_server.py");
const CLIENT: &str = include_str!("py/timed_get.py");

/// Events `/stream` sends, one every 100 ms.
pub const STREAM_EVENTS: usize = 50;

/// `GET /slow…` answers after 2 s; `GET /stream…` is an event stream of [`STREAM_EVENTS`]
/// events over 5 s. Times are RFC 3339 UTC with microseconds, as the agent's events have
/// them, so they compare as strings.
pub struct SlowServer(ScriptServer);

impl SlowServer {
    pub fn start(ns: &Netns, listen: SocketAddr) -> Result<Self> {
        ScriptServer::start_python(
            ns,
            listen,
            &[],
            &PyOptions::default(),
            ("slow_server.py", SERVER, "slow python server"),
            None,
        )
        .map(Self)
    }

    /// When the server began answering `path` (its first answer to it), if it has.
    pub fn answered_at(&self, path: &str) -> Option<String> {
        self.0.stdout_text().lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("answer") && words.next() == Some(path))
                .then(|| words.next().map(str::to_owned))
                .flatten()
        })
    }
}

impl Deref for SlowServer {
    type Target = ScriptServer;

    fn deref(&self) -> &ScriptServer {
        &self.0
    }
}

/// What [`timed_get`] saw.
#[derive(Debug)]
pub struct TimedAnswer {
    /// When the request was written.
    pub sent: String,
    /// When each piece of the answer arrived, and its size.
    pub chunks: Vec<(String, u64)>,
    pub body: String,
    /// The server closed the connection before the deadline.
    pub closed: bool,
}

impl TimedAnswer {
    /// Events of an event stream received (`data:` lines).
    pub fn events(&self) -> usize {
        self.body.matches("data: ").count()
    }
}

/// One `GET path` from `ns` to `addr` on a fresh connection, reading until the server
/// closes or `deadline` passes.
pub fn timed_get(
    ns: &Netns,
    addr: SocketAddr,
    path: &str,
    deadline: Duration,
) -> Result<TimedAnswer> {
    let mut cmd = ns.cmd(python3_bin());
    cmd.arg("-c")
        .arg(CLIENT)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg(path)
        .arg(deadline.as_secs_f64().to_string());
    let done = run_with_timeout(&mut cmd, deadline + Duration::from_secs(5))?;
    ensure!(
        done.status.success(),
        "timed client failed ({}): {}",
        done.status,
        done.stderr_text()
    );
    let v: Value = serde_json::from_slice(&done.stdout)
        .with_context(|| format!("timed client printed {:?}", done.stdout_text()))?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    Ok(TimedAnswer {
        sent: text(&v["sent"]),
        chunks: v["chunks"]
            .as_array()
            .map(|c| {
                c.iter()
                    .map(|p| (text(&p[0]), p[1].as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default(),
        body: text(&v["body"]),
        closed: v["closed"].as_bool().unwrap_or(false),
    })
}
