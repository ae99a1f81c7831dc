//! HTTP/2 test support: curl multiplexing requests on one HTTP/2 connection with its own
//! accounting, a raw HTTP/2 client (the python `h2` library, h2c prior knowledge) that can
//! pause between phases on the same connection, and the checks every HTTP/2 capture test
//! makes on the exchanges of both ends (exchange schema: `version` "2", `stream_id`,
//! exact DATA payload sizes, `incomplete`, `ttfb_ms`, `grpc`, `sse_events`).
//!
//! curl 7.88.1 (Debian 12) cannot reuse an h2c prior-knowledge connection (the second
//! transfer fails with exit 16, "Error in the HTTP2 framing layer": curl/curl#10634, fixed
//! in 8.0), so curl multiplexes over TLS only and the h2c tests use [`H2Client`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use crate::agent::{Agent, MetricDelta};
use crate::curl::{Curl, CurlExe, CurlRun, Transfer};
use crate::exchange::{check_fields, dump, merged, pid_role, same_conn, Window};
use crate::gated::GatedClient;
use crate::metrics::Metrics;
use crate::netns::Netns;
use crate::tls::End;
use crate::util::{tools_pythonpath, write_filled, CommExe, TempDir};

pub const REQUESTS: &str = "apiguard_http_requests_total";
pub const GRPC_REQUESTS: &str = "apiguard_grpc_requests_total";
pub const TTFB_COUNT: &str = "apiguard_http_time_to_first_byte_seconds_count";
pub const UNRESOLVED: &str = "apiguard_http2_headers_unresolved_total";
pub const PARSE_ERRORS: &str = "apiguard_http_parse_errors_total";

/// Files the nginx HTTP/2 tests serve.
pub const H2_FILES: [(&str, usize); 2] = [("small.txt", 1000), ("big.bin", 2 << 20)];
/// Bytes the mixes POST.
pub const H2_POST_BYTES: u64 = 5000;
/// The request mix against nginx: (method, target, request body bytes), answered
/// [`NGINX_MIX_STATUS`] (`/upload` is nginx's `return 201 "created\n"`).
pub const NGINX_MIX: [(&str, &str, u64); 4] = [
    ("GET", "/small.txt", 0),
    ("GET", "/missing", 0),
    ("POST", "/upload", H2_POST_BYTES),
    ("GET", "/big.bin?size=2m", 0),
];
pub const NGINX_MIX_STATUS: [u64; 4] = [200, 404, 201, 200];
/// The request mix against the ASGI app (hypercorn): JSON, POST echo, 404.
pub const ASGI_MIX: [(&str, &str, u64); 3] = [
    ("GET", "/json?pretty=0", 0),
    ("POST", "/echo-length", H2_POST_BYTES),
    ("GET", "/nope", 0),
];
pub const ASGI_MIX_STATUS: [u64; 3] = [200, 200, 404];
/// The first stream ids a client opens: 1, 3, 5, ...
pub fn client_stream_ids(n: usize) -> Vec<u64> {
    (0..n as u64).map(|i| 1 + 2 * i).collect()
}

/// Bodies above this (the agent's default per-call copy cap) may be truncated in the copy;
/// sizes stay exact through TLS hooks (see `check_stream` for plaintext HTTP/2).
const CAPTURE_CAP: u64 = 16 * 1024;
const WAIT: Duration = Duration::from_secs(10);

/// One curl run multiplexing `reqs` (method, target, body bytes) over ONE HTTP/2
/// connection: `-Z` (parallel; curl waits for the connection to confirm multiplexing and
/// then starts every transfer on it), one operation per request, `--http2` (ALPN over
/// TLS) or `--http2-prior-knowledge` (h2c; see the module note). Transfers come back in
/// request order (curl's `urlnum`); it fails unless every one is HTTP/2, on one
/// connection (one connect, one local port), with the methods and upload sizes asked.
pub fn curl_h2(
    ns: &Netns,
    exe: &CurlExe,
    tls: bool,
    reqs: &[(&str, &str, u64)],
    url: impl Fn(&str) -> String,
) -> Result<(CurlRun, Window)> {
    let scratch = TempDir::new("h2body")?;
    let mut curl = Curl::new(ns).exe(exe).arg("-Z");
    if tls {
        curl = curl.insecure();
    }
    for (i, &(method, target, body)) in reqs.iter().enumerate() {
        if i > 0 {
            curl = curl.next();
        }
        curl = curl.arg(if tls {
            "--http2"
        } else {
            "--http2-prior-knowledge"
        });
        if body > 0 {
            let file = scratch.join(format!("body{i}"));
            write_filled(&file, body as usize, b'p')?;
            curl = curl
                .args(["-H", "Expect:", "--data-binary"])
                .arg(format!("@{}", file.display()));
        }
        match method {
            "GET" | "POST" => {}
            "HEAD" => curl = curl.arg("-I"),
            other => curl = curl.args(["-X", other]),
        }
        curl = curl.url(url(target));
    }
    let (mut run, window) = Window::around(|| curl.run())?;
    run.transfers
        .sort_by_key(|t| t.0["urlnum"].as_u64().unwrap_or(u64::MAX));
    let ports: Vec<u64> = run
        .transfers
        .iter()
        .map(|t| t.0["local_port"].as_u64().unwrap_or(0))
        .collect();
    let got: Vec<(&str, u64)> = run
        .transfers
        .iter()
        .map(|t| (t.method(), t.size_upload()))
        .collect();
    let want: Vec<(&str, u64)> = reqs.iter().map(|&(m, _, b)| (m, b)).collect();
    ensure!(
        run.transfers.len() == reqs.len()
            && run.connects() == 1
            && ports.iter().all(|&p| p != 0 && p == ports[0])
            && run.transfers.iter().all(|t| t.0["http_version"] == "2")
            && got == want,
        "curl did not multiplex {reqs:?} over one HTTP/2 connection: {run:#?}"
    );
    Ok((run, window))
}

/// What one stream must look like at both ends.
#[derive(Debug, Clone)]
pub struct Expect {
    pub method: String,
    /// `/path?query` as sent in `:path`.
    pub target: String,
    pub status: u64,
    pub request_body_bytes: u64,
    pub response_body_bytes: u64,
    /// Exact stream id when the client reports it (curl does not).
    pub stream_id: Option<u64>,
    /// More exact fields (`grpc`, `sse_events`, ...); by default `grpc` and `sse_events`
    /// must be null.
    pub extra: Value,
    /// Whether some header could not be decoded (`incomplete`).
    pub incomplete: bool,
}

impl Expect {
    pub fn new(method: &str, target: &str, status: u64, req_body: u64, resp_body: u64) -> Self {
        Expect {
            method: method.into(),
            target: target.into(),
            status,
            request_body_bytes: req_body,
            response_body_bytes: resp_body,
            stream_id: None,
            extra: json!({"grpc": null, "sse_events": null, "sse_first_event_ms": null}),
            incomplete: false,
        }
    }

    /// From curl's accounting for a request to `target`.
    pub fn from_transfer(t: &Transfer, target: &str) -> Self {
        Self::new(
            t.method(),
            target,
            u64::from(t.http_code()),
            t.size_upload(),
            t.size_download(),
        )
    }

    /// From an [`H2Client`] stream report.
    pub fn from_stream(s: &Value) -> Self {
        let mut e = Self::new(
            s["method"].as_str().unwrap_or(""),
            s["path"].as_str().unwrap_or(""),
            s["status"].as_u64().unwrap_or(0),
            s["request_body_bytes"].as_u64().unwrap_or(0),
            s["response_body_bytes"].as_u64().unwrap_or(0),
        );
        e.stream_id = s["stream_id"].as_u64();
        e
    }

    pub fn with(mut self, extra: Value) -> Self {
        self.extra = merged(&self.extra, extra);
        self
    }

    pub fn path_and_query(&self) -> (&str, Value) {
        match self.target.split_once('?') {
            Some((p, q)) => (p, json!(q)),
            None => (&self.target, Value::Null),
        }
    }

    fn matches(&self, e: &Value) -> bool {
        let (path, query) = self.path_and_query();
        e["method"] == self.method.as_str() && e["path"] == path && e["query"] == query
    }
}

/// Where the client of a run is: its process, and its address (the port when known:
/// grpcio does not tell its own).
#[derive(Debug, Clone)]
pub struct ClientEnd {
    pub end: End,
    pub ip: IpAddr,
    pub port: Option<u16>,
}

/// Waits for the exchanges of one HTTP/2 connection at both ends and checks them: exactly
/// one per stream at each end, matched to `expects` by method and target (which must be
/// unique), with `version` "2", exact method, path, query, host (`:authority` =
/// `server_addr`), status, DATA payload sizes, `incomplete`, `tls`/`tls_library` as each
/// end expects, both addresses, the `extra` fields, header block sizes > 0, `ttfb_ms` a
/// number within the exchange's duration, timing inside `window`; the stream ids of each
/// end are exactly `stream_ids` (each request's the same at both ends, and its own when
/// the client reported it), and each end has one `conn_id`. Returns (server, client)
/// exchanges in the order of `expects`.
pub fn check_h2_exchanges(
    agent: &Agent,
    server: &End,
    server_addr: SocketAddr,
    client: &ClientEnd,
    expects: &[Expect],
    stream_ids: &[u64],
    window: &Window,
) -> Result<(Vec<Value>, Vec<Value>)> {
    // On failure, the capture counters tell a kernel-side loss (ring full, copy faults)
    // from a parsing one: keep them with the error, since the agent is gone afterwards.
    let check = || -> Result<(Vec<Value>, Vec<Value>)> {
        let n = expects.len();
        let ip = client.ip.to_string();
        let port = client.port;
        let from_client = move |e: &Value| {
            let peer: Option<SocketAddr> = e["peer_addr"].as_str().and_then(|p| p.parse().ok());
            peer.is_some_and(|p| {
                p.ip().to_string() == ip && port.is_none_or(|port| p.port() == port)
            })
        };
        let srv = agent
            .wait_for_exchanges(
                |e| pid_role(server.pid, "server")(e) && from_client(e),
                n,
                WAIT,
            )
            .with_context(|| format!("server side ({}) of {expects:#?}", server.comm))?;
        let cli = agent
            .wait_for_exchanges(pid_role(client.end.pid, "client"), n, WAIT)
            .with_context(|| format!("client side ({}) of {expects:#?}", client.end.comm))?;
        ensure!(
            srv.len() == n && cli.len() == n,
            "expected {n} server and {n} client exchanges:\n{}{}",
            dump(&srv),
            dump(&cli)
        );
        let mut ordered = (Vec::new(), Vec::new());
        for (i, want) in expects.iter().enumerate() {
            let mut ids = Vec::new();
            for (side, role, end, out) in [
                (&srv, "server", server, &mut ordered.0),
                (&cli, "client", &client.end, &mut ordered.1),
            ] {
                let found: Vec<&Value> = side.iter().filter(|e| want.matches(e)).collect();
                ensure!(
                    found.len() == 1,
                    "{role} side: {} exchanges for {} {}:\n{}",
                    found.len(),
                    want.method,
                    want.target,
                    dump(side)
                );
                let e = found[0];
                check_stream(e, want, role, end, server_addr, client)
                    .and_then(|()| window.check(e))
                    .with_context(|| format!("request {i} ({want:?}), {role} side"))?;
                ids.push(e["stream_id"].as_u64());
                out.push(e.clone());
            }
            ensure!(
                ids[0].is_some()
                    && ids[0] == ids[1]
                    && want.stream_id.is_none_or(|s| ids[0] == Some(s)),
                "request {i} ({} {}): stream ids server {:?}, client {:?}, client reported {:?}",
                want.method,
                want.target,
                ids[0],
                ids[1],
                want.stream_id
            );
        }
        for side in [&ordered.0, &ordered.1] {
            let mut ids: Vec<u64> = side
                .iter()
                .filter_map(|e| e["stream_id"].as_u64())
                .collect();
            ids.sort_unstable();
            ensure!(
                ids == stream_ids,
                "stream ids {ids:?}, expected {stream_ids:?}:\n{}",
                dump(side)
            );
            same_conn(side)?;
        }
        Ok(ordered)
    };
    check().map_err(|e| {
        // The kernel's counters reach the metrics once a second: let them catch up.
        std::thread::sleep(Duration::from_millis(1500));
        match agent.metrics() {
            Ok(m) => {
                let counters: String = [
                    "apiguard_capture",
                    "apiguard_tls_calls",
                    "apiguard_http_exchanges_lost",
                    "apiguard_http_parse_errors",
                ]
                .iter()
                .map(|prefix| m.dump(prefix))
                .collect();
                e.context(format!("capture counters:\n{counters}"))
            }
            Err(m) => e.context(format!("capture counters unavailable: {m:#}")),
        }
    })
}

fn check_stream(
    e: &Value,
    want: &Expect,
    role: &str,
    end: &End,
    server_addr: SocketAddr,
    client: &ClientEnd,
) -> Result<()> {
    let (path, query) = want.path_and_query();
    let mut fields = json!({
        "version": "2", "method": want.method, "path": path, "query": query,
        "host": server_addr.to_string(), "status": want.status,
        "request_body_bytes": want.request_body_bytes,
        "response_body_bytes": want.response_body_bytes,
        "request_truncated": false, "response_truncated": false,
        "incomplete": want.incomplete,
        "role": role, "pid": end.pid, "comm": end.comm,
        "tls": end.library.is_some(), "tls_library": end.library,
    });
    let obj = fields.as_object_mut().context("object")?;
    if end.comm.is_empty() {
        // The thread that made the call names it (grpcio's `event_engine`…): pid selects.
        obj.remove("comm");
    }
    // Plaintext HTTP/2 writes (and reads) larger than the per-call copy cap lose whole
    // frames in the uncopied rest: the agent cannot know where they end, so the body size
    // is a lower bound and the response is marked truncated — never a wrong total. Through
    // TLS hooks each call carries at most a 16 KiB record: exact.
    let lossy_plaintext = want.response_body_bytes > CAPTURE_CAP && end.library.is_none();
    if want.response_body_bytes > CAPTURE_CAP {
        obj.remove("response_truncated");
    }
    if lossy_plaintext {
        obj.remove("response_body_bytes");
        let got = e["response_body_bytes"].as_u64().unwrap_or(u64::MAX);
        let exact = got == want.response_body_bytes && e["response_truncated"] == false;
        ensure!(
            exact || (got < want.response_body_bytes && e["response_truncated"] == true),
            "a plaintext h2 body of {} bytes must be exact or a truncated lower bound: {e}",
            want.response_body_bytes
        );
    }
    if want.incomplete {
        // The host comes from an unresolved `:authority` reference.
        obj.remove("host");
    }
    let server = server_addr.to_string();
    let (local, peer) = if role == "server" {
        (
            Some(server),
            client
                .port
                .map(|p| SocketAddr::new(client.ip, p).to_string()),
        )
    } else {
        (
            client
                .port
                .map(|p| SocketAddr::new(client.ip, p).to_string()),
            Some(server),
        )
    };
    if let Some(local) = local {
        obj.insert("local_addr".into(), json!(local));
    }
    if let Some(peer) = peer {
        obj.insert("peer_addr".into(), json!(peer));
    }
    check_fields(e, &merged(&fields, want.extra.clone()))?;
    for key in ["request_header_bytes", "response_header_bytes"] {
        ensure!(
            e[key].as_u64().is_some_and(|b| b > 0),
            "{key} must be > 0 (the HPACK block) in {e}"
        );
    }
    check_ttfb(e)
}

/// `ttfb_ms` is a number in [0, duration_ms].
pub fn check_ttfb(e: &Value) -> Result<()> {
    let ttfb = e["ttfb_ms"].as_f64();
    // A response whose end was never seen (truncated) has no duration to bound it.
    let unbounded = if e["response_truncated"] == true {
        f64::INFINITY
    } else {
        f64::NAN
    };
    let duration = e["duration_ms"].as_f64().unwrap_or(unbounded);
    ensure!(
        ttfb.is_some_and(|t| t >= 0.0 && t <= duration + 0.001),
        "ttfb_ms must be a number within duration_ms ({duration}) in {e}"
    );
    Ok(())
}

/// Checks `apiguard_http_requests_total` increased since `before` by exactly the
/// exchanges `expects` describe at each end (per role, method and status, with `tls`),
/// by `2 × expects.len()` in all, and that no parse error was counted.
pub fn check_request_deltas(
    agent: &Agent,
    before: &Metrics,
    expects: &[Expect],
    tls: bool,
) -> Result<()> {
    let mut groups: BTreeMap<(String, u64), f64> = BTreeMap::new();
    for e in expects {
        *groups.entry((e.method.clone(), e.status)).or_default() += 1.0;
    }
    let tls = tls.to_string();
    let mut owned: Vec<(Vec<(&str, String)>, f64)> = Vec::new();
    for ((method, status), n) in &groups {
        for role in ["server", "client"] {
            owned.push((
                vec![
                    ("role", role.to_string()),
                    ("method", method.clone()),
                    ("status", status.to_string()),
                    ("tls", tls.clone()),
                ],
                *n,
            ));
        }
    }
    let labels: Vec<Vec<(&str, &str)>> = owned
        .iter()
        .map(|(l, _)| l.iter().map(|(k, v)| (*k, v.as_str())).collect())
        .collect();
    let total = 2.0 * expects.len() as f64;
    let mut deltas: Vec<MetricDelta> = owned
        .iter()
        .zip(&labels)
        .map(|((_, n), l)| (REQUESTS, l.as_slice(), *n))
        .collect();
    deltas.push((REQUESTS, &[], total));
    deltas.push((PARSE_ERRORS, &[], 0.0));
    agent.check_deltas(before, &deltas)
}

/// A long header value the h2 client sends so that its HPACK encoder keeps it in the
/// dynamic table (and later requests reference it).
pub fn trace_header() -> (String, String) {
    ("x-trace".to_string(), "t".repeat(300))
}

/// One request of an [`H2Client`] plan.
pub fn h2_request(method: &str, target: &str, body: u64, headers: &[(String, String)]) -> Value {
    let headers: Vec<Value> = headers.iter().map(|(k, v)| json!([k, v])).collect();
    json!({"method": method, "path": target, "body": body, "headers": headers})
}

const H2_CLIENT: &str = include_str!("py/h2_client.py");

/// What an [`H2Client`] phase did on its connection.
#[derive(Debug, Clone)]
pub struct H2Phase {
    pub local_port: u16,
    /// Per stream: `stream_id`, `method`, `path`, `status`, `request_body_bytes`,
    /// `response_body_bytes`, `from_dynamic_table` (request headers the encoder sent as
    /// dynamic-table references).
    pub streams: Vec<Value>,
}

impl H2Phase {
    pub fn expects(&self) -> Vec<Expect> {
        self.streams.iter().map(Expect::from_stream).collect()
    }

    pub fn stream_ids(&self) -> Vec<u64> {
        self.streams
            .iter()
            .filter_map(|s| s["stream_id"].as_u64())
            .collect()
    }
}

/// The raw HTTP/2 client (`py/h2_client.py`, h2c with prior knowledge, one connection) run
/// as `exe` in `ns`. `plan` is a list of phases, each a list of [`h2_request`]s sent
/// multiplexed; each phase waits for [`H2Client::phase`].
pub struct H2Client(GatedClient);

impl H2Client {
    pub fn spawn(ns: &Netns, exe: &CommExe, server: SocketAddr, plan: &Value) -> Result<Self> {
        let path = tools_pythonpath(&["h2", "hpack"])?;
        let mut cmd = ns.cmd(exe.path());
        cmd.env("PYTHONPATH", path)
            .arg("-c")
            .arg(H2_CLIENT)
            .arg(server.ip().to_string())
            .arg(server.port().to_string())
            .arg(plan.to_string());
        GatedClient::spawn(cmd, "h2 client", Duration::from_secs(10)).map(Self)
    }

    pub fn pid(&self) -> u32 {
        self.0.pid()
    }

    /// Runs the next phase (bounded at 20 s) and returns what it did; every stream must
    /// have ended with a status.
    pub fn phase(&mut self) -> Result<H2Phase> {
        self.0.go()?;
        let v = self.0.read_json(Duration::from_secs(20))?;
        let local_port = v["local_port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .with_context(|| format!("h2 client: {v}"))?;
        let streams = v["streams"].as_array().cloned().unwrap_or_default();
        ensure!(
            !streams.is_empty() && streams.iter().all(|s| s["status"].is_u64()),
            "h2 client phase: {v}"
        );
        Ok(H2Phase {
            local_port,
            streams,
        })
    }

    /// Waits for the client to close its connection and exit 0.
    pub fn finish(&mut self) -> Result<()> {
        self.0.finish(Duration::from_secs(10))
    }
}
