//! A keep-alive HTTP/1.1 server whose responses are written in calls of sizes the test
//! chooses (`?calls=N&size=S`: the head in one send, then N sends of S bytes): what the
//! kernel's response copy budget does with each call is then exact.

use std::net::SocketAddr;
use std::ops::Deref;

use anyhow::Result;

use crate::netns::Netns;
use crate::servers::{PyOptions, ScriptServer};

const SERVER: &str = include_str!("py/split_writes_server.py");

pub struct SplitWritesServer(ScriptServer);

impl SplitWritesServer {
    pub fn start(ns: &Netns, listen: SocketAddr) -> Result<Self> {
        Self::start_reading(ns, listen, Vec::new())
    }

    /// A server that reads each request with `recvmsg` into two buffers, the first of two
    /// bytes, so every read fills two iovecs.
    pub fn start_vectored(ns: &Netns, listen: SocketAddr) -> Result<Self> {
        let env = vec![("SPLIT_WRITES_READ".to_string(), "vectored".to_string())];
        Self::start_reading(ns, listen, env)
    }

    fn start_reading(ns: &Netns, listen: SocketAddr, env: Vec<(String, String)>) -> Result<Self> {
        ScriptServer::start_python_env(
            ns,
            listen,
            &[],
            &PyOptions::default(),
            (
                "split_writes_server.py",
                SERVER,
                "split-writes python server",
            ),
            None,
            env,
        )
        .map(Self)
    }

    /// Sizes of the response heads written so far, in order.
    pub fn heads(&self) -> Vec<u64> {
        self.0.stdout_numbers("head ")
    }
}

impl Deref for SplitWritesServer {
    type Target = ScriptServer;

    fn deref(&self) -> &ScriptServer {
        &self.0
    }
}
