//! gRPC with grpcio from the tools venv (pinned by `cargo xtask setup`), no protoc: a
//! generic server with raw-bytes messages (`py/grpc_server.py`) and a gated client making
//! one call of each kind on one channel (`py/grpc_client.py`), which reports what it sent
//! and received so the tests compare the agent's `grpc` object with the client's own
//! accounting. Plaintext only (insecure channel = HTTP/2 with prior knowledge): grpcio
//! carries its own BoringSSL, which the agent does not hook.

use std::net::SocketAddr;
use std::ops::Deref;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use crate::gated::GatedClient;
use crate::netns::Netns;
use crate::servers::{PyOptions, ScriptServer};
use crate::util::{tools_pythonpath, CommExe};

/// The service both scripts implement.
pub const SERVICE: &str = "apiguard.test.Echo";
/// Messages `ServerStream` answers the client's call with.
pub const SERVER_STREAM_K: u64 = 4;
/// Messages the client sends to `ClientStream`.
pub const CLIENT_STREAM_M: u64 = 3;
/// The client's calls, in order: (method, kind the agent must report, grpc-status).
pub const CALLS: [(&str, &str, u64); 4] = [
    ("Unary", "unary", 0),
    ("ServerStream", "server_streaming", 0),
    ("ClientStream", "client_streaming", 0),
    ("Fail", "unary", 5),
];

const SERVER: &str = include_str!("py/grpc_server.py");
const CLIENT: &str = include_str!("py/grpc_client.py");

fn pythonpath_env() -> Result<Vec<(String, String)>> {
    let path = tools_pythonpath(&["grpc"])?;
    Ok(vec![(
        "PYTHONPATH".to_string(),
        path.to_string_lossy().into_owned(),
    )])
}

/// The grpcio server (`py/grpc_server.py`) listening in `ns`.
pub struct GrpcServer(ScriptServer);

impl GrpcServer {
    pub fn start(ns: &Netns, listen: SocketAddr, opts: PyOptions) -> Result<Self> {
        ScriptServer::start_python_env(
            ns,
            listen,
            &[],
            &opts,
            ("grpc_server.py", SERVER, "grpcio server"),
            None,
            pythonpath_env()?,
        )
        .map(Self)
    }
}

impl Deref for GrpcServer {
    type Target = ScriptServer;

    fn deref(&self) -> &ScriptServer {
        &self.0
    }
}

/// One call as the client saw it.
#[derive(Debug, Clone)]
pub struct GrpcCall(pub Value);

impl GrpcCall {
    fn u64(&self, key: &str) -> u64 {
        self.0[key].as_u64().unwrap_or(u64::MAX)
    }

    /// `/apiguard.test.Echo/<Method>`.
    pub fn path(&self) -> &str {
        self.0["path"].as_str().unwrap_or("")
    }

    pub fn method(&self) -> &str {
        self.path().rsplit('/').next().unwrap_or("")
    }

    pub fn messages_in(&self) -> u64 {
        self.u64("messages_in")
    }

    pub fn messages_out(&self) -> u64 {
        self.u64("messages_out")
    }

    /// DATA payload bytes of the request: 5 bytes of gRPC framing per message + messages.
    pub fn request_body_bytes(&self) -> u64 {
        self.u64("request_body_bytes")
    }

    pub fn response_body_bytes(&self) -> u64 {
        self.u64("response_body_bytes")
    }

    /// The grpc-status the client got.
    pub fn status(&self) -> u64 {
        self.u64("status")
    }

    /// The kind the schema derives from the message counts.
    pub fn kind(&self) -> &'static str {
        match (self.messages_in() > 1, self.messages_out() > 1) {
            (false, false) => "unary",
            (true, false) => "client_streaming",
            (false, true) => "server_streaming",
            (true, true) => "bidi",
        }
    }

    /// The exchange's `grpc` object for this call.
    pub fn expected_grpc(&self) -> Value {
        json!({
            "service": SERVICE, "method": self.method(), "status": self.status(),
            "messages_in": self.messages_in(), "messages_out": self.messages_out(),
            "kind": self.kind(),
        })
    }
}

/// The gated grpcio client (`py/grpc_client.py`) run as `exe` in `ns`.
pub struct GrpcClient(GatedClient);

impl GrpcClient {
    pub fn spawn(ns: &Netns, exe: &CommExe, server: SocketAddr) -> Result<Self> {
        let mut cmd = ns.cmd(exe.path());
        cmd.envs(pythonpath_env()?)
            .arg("-c")
            .arg(CLIENT)
            .arg(server.ip().to_string())
            .arg(server.port().to_string())
            .arg(SERVER_STREAM_K.to_string())
            .arg(CLIENT_STREAM_M.to_string());
        GatedClient::spawn(cmd, "grpcio client", Duration::from_secs(10)).map(Self)
    }

    pub fn pid(&self) -> u32 {
        self.0.pid()
    }

    /// Makes the four calls of [`CALLS`] and checks each against what the server is
    /// written to do (message counts, the server's replies, statuses). Bounded at 20 s.
    pub fn run(&mut self) -> Result<Vec<GrpcCall>> {
        self.0.go()?;
        let timeout = Duration::from_secs(20);
        let mut calls = Vec::new();
        for _ in CALLS {
            calls.push(GrpcCall(self.0.read_json(timeout)?));
        }
        let done = self.0.read_json(timeout)?;
        ensure!(done["done"] == true, "grpcio client: {done}");
        self.0.finish(timeout)?;
        for (call, (method, kind, status)) in calls.iter().zip(CALLS) {
            ensure!(
                call.path() == format!("/{SERVICE}/{method}")
                    && call.kind() == kind
                    && call.status() == status,
                "unexpected {method} call: {:?}",
                call.0
            );
        }
        let replies: Vec<&Value> = calls.iter().map(|c| &c.0["responses"]).collect();
        let m = CLIENT_STREAM_M;
        let sent_m: u64 = (0..m).map(|i| 200 + i).sum();
        ensure!(
            replies[0] == &json!(["got 1000"])
                && replies[2] == &json!([format!("{m} messages, {sent_m} bytes")])
                && calls[1].messages_out() == SERVER_STREAM_K
                && calls[1].0["response_bytes"]
                    == (0..SERVER_STREAM_K).map(|i| 100 + i).sum::<u64>()
                && calls[3].0["details"] == "no such thing"
                && calls[3].messages_out() == 0,
            "grpc calls differ from what the server does: {calls:#?}"
        );
        Ok(calls)
    }

    pub fn stderr(&self) -> String {
        self.0.stderr()
    }
}

/// The grpc call of `calls` for `path`.
pub fn call_for<'a>(calls: &'a [GrpcCall], path: &str) -> Result<&'a GrpcCall> {
    calls
        .iter()
        .find(|c| c.path() == path)
        .with_context(|| format!("no call to {path}"))
}
