//! Harness for api-guard's root-only integration tests and the overhead benchmark.
//!
//! Everything here talks to real processes: network namespaces and veth pairs made with
//! iproute2, nginx (HTTP/1.1 or HTTP/2), a python `http.server`, a node `https` server
//! (plain or TLS with a throwaway certificate), an ASGI app under hypercorn or uvicorn,
//! grpcio, curl, python, wrk and h2load as clients, and the daemon
//! binary itself. Every resource is an RAII guard with a name unique to this process
//! (pid + counter), so tests run in parallel and a failing test leaves nothing behind.
//!
//! Child processes are spawned with `PR_SET_PDEATHSIG`, which fires when the *thread*
//! that spawned them exits: create servers and agents on the thread that uses them
//! (a test's own thread or xtask's main thread), never in a short-lived helper thread.

pub mod agent;
pub mod api_app;
pub mod bpf;
pub mod curl;
pub mod exchange;
pub mod gated;
pub mod golang;
pub mod grpc;
pub mod guard;
pub mod h2;
pub mod h2load;
pub mod llm;
pub mod llm_egress;
pub mod metrics;
pub mod netns;
pub mod one_read;
pub mod openssl;
pub mod procfs;
pub mod prometheus;
pub mod redis;
pub mod servers;
pub mod slow;
pub mod split_writes;
pub mod sse;
pub mod tls;
pub mod util;
pub mod wrk;

pub use agent::{Agent, AgentOptions};
pub use curl::{Curl, CurlExe, CurlRun, Transfer};
pub use netns::{unique_port, veth_pair, NetPair, Netns, Veth};
pub use servers::{
    Asgi, AsgiServer, Nginx, NginxOptions, NodeHttpsServer, PyHttpServer, PyOptions,
};
pub use tls::TlsCert;
pub use util::{require_root, CommExe, TempDir};
