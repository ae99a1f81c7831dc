//! A server that reads each HTTP/1.1 request with one `recv`, however large (peeking at the
//! head first, then `MSG_WAITALL`): how much of a request one call can carry past the
//! kernel's per-call capture cap is then up to the test, not to TCP timing.

use std::net::SocketAddr;
use std::ops::Deref;

use anyhow::Result;

use crate::netns::Netns;
use crate::servers::{PyOptions, ScriptServer};

const SERVER: &str = include_str!("py/one_read_server.py");

pub struct OneReadServer(ScriptServer);

impl OneReadServer {
    pub fn start(ns: &Netns, listen: SocketAddr) -> Result<Self> {
        ScriptServer::start_python(
            ns,
            listen,
            &[],
            &PyOptions::default(),
            ("one_read_server.py", SERVER, "one-read python server"),
            None,
        )
        .map(Self)
    }

    /// Sizes of the requests read so far, one `recv` each, in order.
    pub fn reads(&self) -> Vec<usize> {
        self.0.stdout_numbers("read ")
    }
}

impl Deref for OneReadServer {
    type Target = ScriptServer;

    fn deref(&self) -> &ScriptServer {
        &self.0
    }
}
