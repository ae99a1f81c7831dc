//! The api-guard daemon under test: started with a private exchanges file and metrics
//! port, polled through its outputs, and stopped (or killed) on drop.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::exchange::dump;
use crate::metrics::Metrics;
use crate::netns::unique_port;
use crate::util::{
    die_with_parent, run_with_timeout, signal_and_wait, tail, target_dir, wait_until, Finished,
    TempDir,
};

/// How long the daemon may take to attach its probes and report healthy.
pub const HEALTHY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long SIGTERM/SIGINT may take (docs/operations.md: drain, flush, detach, exit 0).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Poll period for the exchanges file (the daemon flushes it at least every 200 ms).
const POLL: Duration = Duration::from_millis(50);

/// How to start the daemon.
#[derive(Debug, Clone, Default)]
pub struct AgentOptions {
    /// Written to `config.toml` and passed as `--config`.
    pub config_toml: Option<String>,
    /// Appended to `api-guard run ...`.
    pub extra_args: Vec<String>,
    /// The binary; default `$API_GUARD_BIN`, else `<workspace>/target/release/api-guard`.
    pub bin: Option<PathBuf>,
    /// Extra environment, e.g. `RUST_LOG`.
    pub env: Vec<(String, String)>,
    /// Passed as `--state-dir` (where the daemon keeps its inventory snapshot). Default: a
    /// fresh `state/` inside the agent's own temp dir, always passed, so parallel agents
    /// never share state. Give an earlier agent's [`Agent::state_dir`] (keep that agent,
    /// stopped, alive: its temp dir holds the state) to start on what it saved.
    pub state_dir: Option<PathBuf>,
    /// Start without `--exchanges`, as the daemon runs by default (no exchange lines are
    /// serialized); the exchange helpers then find none. For measurements of the default
    /// configuration.
    pub no_exchanges_file: bool,
}

impl AgentOptions {
    /// An agent that captures only processes with these names (`[capture] comms`), so a
    /// test's metrics count its own traffic and nothing else on the host.
    pub fn comms_only(comms: &[&str]) -> Self {
        Self::capture_only(&[], comms)
    }

    /// An agent that captures only these pids and these comms (`[capture] pids`/`comms`:
    /// a process matching either is captured).
    pub fn capture_only(pids: &[u32], comms: &[&str]) -> Self {
        let quoted: Vec<String> = comms.iter().map(|c| format!("{c:?}")).collect();
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let mut toml = String::from("[capture]\n");
        if !pids.is_empty() {
            toml += &format!("pids = [{}]\n", pids.join(", "));
        }
        if !quoted.is_empty() {
            toml += &format!("comms = [{}]\n", quoted.join(", "));
        }
        Self {
            config_toml: Some(toml),
            ..Self::default()
        }
    }
}

/// `(metric name, labels the samples must carry, expected increase)` for
/// [`Agent::check_deltas`].
pub type MetricDelta<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// A running `api-guard run` with its files in a temp dir.
pub struct Agent {
    child: Child,
    exit: Option<ExitStatus>,
    metrics_addr: SocketAddr,
    exchanges_path: PathBuf,
    stderr_path: PathBuf,
    events_path: PathBuf,
    control_socket: PathBuf,
    state_dir: PathBuf,
    bin: PathBuf,
    dir: TempDir,
}

/// Where the daemon binary is: `opts.bin`, `$API_GUARD_BIN`, or the workspace's
/// release build. Fails with build instructions if it does not exist.
pub fn agent_binary(opts: &AgentOptions) -> Result<PathBuf> {
    let path = match (&opts.bin, std::env::var_os("API_GUARD_BIN")) {
        (Some(bin), _) => bin.clone(),
        (None, Some(bin)) if !bin.is_empty() => PathBuf::from(bin),
        _ => target_dir()?.join("release").join("api-guard"),
    };
    ensure!(
        path.is_file(),
        "api-guard binary not found at {}: build it first (`cargo build --release -p api-guard`) \
         or point API_GUARD_BIN at it",
        path.display()
    );
    Ok(path)
}

impl Agent {
    /// Starts the daemon and waits until `GET /healthz` answers 200 (at most 30 s).
    pub fn start(opts: AgentOptions) -> Result<Agent> {
        let bin = agent_binary(&opts)?;
        // The metrics port is picked free and released before the daemon binds it; if
        // another process takes it in between, the daemon exits and we try another port.
        const ATTEMPTS: u32 = 3;
        let mut attempt = 1;
        loop {
            match Self::start_once(&bin, &opts) {
                Ok(agent) => return Ok(agent),
                Err(e) if attempt < ATTEMPTS && format!("{e:#}").contains("in use") => {
                    eprintln!("agent start attempt {attempt} lost its port, retrying: {e:#}");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn start_once(bin: &Path, opts: &AgentOptions) -> Result<Agent> {
        let dir = TempDir::new("agent")?;
        let metrics_addr = SocketAddr::from(([127, 0, 0, 1], unique_port()?));
        let exchanges_path = dir.join("exchanges.jsonl");
        let stderr_path = dir.join("stderr.log");
        let events_path = dir.join("events.jsonl");
        let control_socket = dir.join("control.sock");
        let state_dir = match &opts.state_dir {
            Some(dir) => dir.clone(),
            None => {
                let state = dir.join("state");
                fs::create_dir_all(&state)?;
                state
            }
        };
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .arg("--metrics-addr")
            .arg(metrics_addr.to_string())
            .arg("--events")
            .arg(&events_path)
            .arg("--control-socket")
            .arg(&control_socket)
            .arg("--state-dir")
            .arg(&state_dir);
        if !opts.no_exchanges_file {
            cmd.arg("--exchanges").arg(&exchanges_path);
        }
        if let Some(toml) = &opts.config_toml {
            let config = dir.join("config.toml");
            fs::write(&config, toml)?;
            cmd.arg("--config").arg(config);
        }
        cmd.args(&opts.extra_args)
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("stdout.log"))?)
            .stderr(File::create(&stderr_path)?);
        // A test binary killed mid-run still gets its daemon to detach and exit.
        die_with_parent(&mut cmd, libc::SIGTERM);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let mut agent = Agent {
            child,
            exit: None,
            metrics_addr,
            exchanges_path,
            stderr_path,
            events_path,
            control_socket,
            state_dir,
            bin: bin.to_path_buf(),
            dir,
        };
        agent.wait_healthy(HEALTHY_TIMEOUT)?;
        Ok(agent)
    }

    fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exit = Some(status);
                bail!(
                    "api-guard exited with {status} before becoming healthy; stderr:\n{}",
                    self.stderr_tail(40)
                );
            }
            let last = match http_get(self.metrics_addr, "/healthz", Duration::from_secs(2)) {
                Ok((200, _)) => return Ok(()),
                Ok((code, body)) => format!("{code} {}", body.trim()),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() > deadline {
                bail!(
                    "api-guard not healthy after {timeout:?} (last /healthz: {last}); stderr:\n{}",
                    self.stderr_tail(40)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    pub fn exchanges_path(&self) -> &Path {
        &self.exchanges_path
    }

    pub fn control_socket(&self) -> &Path {
        &self.control_socket
    }

    /// The `--state-dir` the daemon was given.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The events file (`--events`).
    pub fn events_path(&self) -> &Path {
        &self.events_path
    }

    /// Runs `api-guard ARGS... --control-socket <this agent's>` (a CLI client such as
    /// `block`, `unblock`, `blocks`) and returns what it did.
    pub fn cli(&self, args: &[&str]) -> Result<Finished> {
        run_with_timeout(
            Command::new(&self.bin)
                .args(args)
                .arg("--control-socket")
                .arg(&self.control_socket),
            Duration::from_secs(10),
        )
    }

    /// [`Agent::cli`] that must exit 0; returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> Result<String> {
        let run = self.cli(args)?;
        ensure!(
            run.status.success(),
            "api-guard {args:?} failed with {}: {}{}",
            run.status,
            run.stdout_text(),
            run.stderr_text()
        );
        Ok(run.stdout_text())
    }

    /// `api-guard blocks --json`.
    pub fn blocks(&self) -> Result<Vec<Value>> {
        let text = self.cli_ok(&["blocks", "--json"])?;
        serde_json::from_str(&text).with_context(|| format!("blocks --json printed {text}"))
    }

    /// Every security event written so far (complete lines), in order.
    pub fn events(&self) -> Result<Vec<Value>> {
        let text = match fs::read_to_string(&self.events_path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).context("reading the events file"),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("event line {l:?}")))
            .collect()
    }

    /// Polls the events until `count` match `pred`; returns the matching ones.
    pub fn wait_for_events(
        &self,
        pred: impl Fn(&Value) -> bool,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>> {
        wait_until(&format!("{count} matching events"), timeout, POLL, || {
            let matched: Vec<Value> = self.events()?.into_iter().filter(&pred).collect();
            Ok((matched.len() >= count).then_some(matched))
        })
        .with_context(|| {
            let all = self.events().unwrap_or_default();
            format!("all events:\n{}\n{}", dump(&all), self.diagnostics())
        })
    }

    /// The `--config` file (`config.toml` in the agent's dir; present when the options had a
    /// `config_toml`): rewrite it to test reloading.
    pub fn config_path(&self) -> PathBuf {
        self.dir().join("config.toml")
    }

    /// Sends `signal` (e.g. `libc::SIGHUP`) to the daemon.
    pub fn signal(&self, signal: libc::c_int) -> Result<()> {
        // SAFETY: kill(2) with our child's pid; no memory is involved.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, signal) };
        anyhow::ensure!(
            rc == 0,
            "kill({signal}): {}",
            std::io::Error::last_os_error()
        );
        Ok(())
    }

    /// SIGKILL: no cleanup at all (what pinning must survive).
    pub fn kill9(&mut self) -> Result<()> {
        self.stop_with(libc::SIGKILL).map(|_| ())
    }

    /// `GET /healthz`: (status, body).
    pub fn healthz(&self) -> Result<(u16, String)> {
        http_get(self.metrics_addr, "/healthz", Duration::from_secs(5))
    }

    pub fn metrics_text(&self) -> Result<String> {
        let (code, body) = http_get(self.metrics_addr, "/metrics", Duration::from_secs(5))?;
        ensure!(code == 200, "GET /metrics answered {code}: {body}");
        Ok(body)
    }

    pub fn metrics(&self) -> Result<Metrics> {
        Metrics::parse(&self.metrics_text()?)
    }

    /// Sum of the samples of `name` carrying at least `labels`; 0 if there are none.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
        Ok(self.metrics()?.sum(name, labels))
    }

    /// Polls `metric(name, labels)` until `done(value)` holds or `timeout` passes, and
    /// returns the last value either way: callers assert on it with their own message.
    /// (Counters may be updated a moment after the exchange line is written.)
    pub fn wait_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        done: impl Fn(f64) -> bool,
        timeout: Duration,
    ) -> Result<f64> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.metric(name, labels)?;
            if done(value) || Instant::now() > deadline {
                return Ok(value);
            }
            thread::sleep(POLL);
        }
    }

    /// Checks that each `(name, labels, want)` grew by exactly `want` since `before`
    /// (summing the samples carrying at least `labels`), polling up to 3 s for counters
    /// that lag the exchanges file; the error lists every metric that differs.
    pub fn check_deltas(&self, before: &Metrics, expected: &[MetricDelta]) -> Result<()> {
        let mut wrong = Vec::new();
        for &(name, labels, want) in expected {
            let base = before.sum(name, labels);
            let now =
                self.wait_metric(name, labels, |v| v - base == want, Duration::from_secs(3))?;
            if now - base != want {
                wrong.push(format!(
                    "  {name}{labels:?}: increased by {}, expected {want}",
                    now - base
                ));
            }
        }
        ensure!(
            wrong.is_empty(),
            "metrics differ:\n{}\n{}",
            wrong.join("\n"),
            self.diagnostics()
        );
        Ok(())
    }

    /// Calls `f` with every complete line of the exchanges file (a trailing line still
    /// being written is skipped), without holding them all in memory.
    pub fn for_each_exchange(&self, mut f: impl FnMut(Value)) -> Result<()> {
        let file = match File::open(&self.exchanges_path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).context("opening the exchanges file"),
        };
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        for lineno in 1.. {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 || line.last() != Some(&b'\n') {
                return Ok(());
            }
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let value = serde_json::from_slice(text).with_context(|| {
                format!(
                    "exchanges line {lineno} is not JSON: {}",
                    String::from_utf8_lossy(text)
                )
            })?;
            f(value);
        }
        Ok(())
    }

    /// Every exchange written so far, in file order.
    pub fn exchanges(&self) -> Result<Vec<Value>> {
        self.exchanges_matching(|_| true)
    }

    pub fn exchanges_matching(&self, pred: impl Fn(&Value) -> bool) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        self.for_each_exchange(|e| {
            if pred(&e) {
                out.push(e);
            }
        })?;
        Ok(out)
    }

    pub fn count_exchanges(&self, pred: impl Fn(&Value) -> bool) -> Result<usize> {
        let mut n = 0;
        self.for_each_exchange(|e| n += usize::from(pred(&e)))?;
        Ok(n)
    }

    /// Polls the exchanges file until at least `count` exchanges match `pred`, then
    /// returns all that match (file order). On timeout the error shows what matched,
    /// the file's last lines, the capture metrics and the daemon's stderr.
    pub fn wait_for_exchanges(
        &self,
        pred: impl Fn(&Value) -> bool,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let matched = self.exchanges_matching(&pred)?;
            if matched.len() >= count {
                return Ok(matched);
            }
            if Instant::now() > deadline {
                let all = self.exchanges().unwrap_or_default();
                bail!(
                    "waited {timeout:?} for {count} matching exchanges, found {}:\n{}\
                     last of the {} exchanges in {}:\n{}{}",
                    matched.len(),
                    dump(&matched),
                    all.len(),
                    self.exchanges_path.display(),
                    dump(&all[all.len().saturating_sub(10)..]),
                    self.diagnostics()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Capture/HTTP counters and the tail of stderr, for failure messages.
    pub fn diagnostics(&self) -> String {
        let metrics = match self.metrics() {
            Ok(m) => {
                let mut s = String::new();
                for prefix in [
                    "apiguard_capture",
                    "apiguard_http_parse_errors",
                    "apiguard_http_exchanges_lost",
                    "apiguard_connections_tracked",
                    "apiguard_tls",
                    "apiguard_xdp",
                    "apiguard_block",
                    "apiguard_ratelimit",
                    "apiguard_would_block",
                ] {
                    s += &m.dump(prefix);
                }
                s
            }
            Err(e) => format!("(metrics unavailable: {e:#})\n"),
        };
        format!(
            "agent metrics:\n{metrics}agent stderr (tail):\n{}\n",
            self.stderr_tail(30)
        )
    }

    pub fn stderr_text(&self) -> String {
        fs::read(&self.stderr_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    pub fn stderr_tail(&self, lines: usize) -> String {
        tail(&self.stderr_text(), lines)
    }

    pub fn is_running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.exit = Some(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// SIGTERM and wait (at most 10 s) for the exit status.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.stop_with(libc::SIGTERM)
    }

    /// [`Agent::stop`], failing with the end of stderr unless the agent exits 0.
    pub fn stop_cleanly(&mut self) -> Result<()> {
        let status = self.stop()?;
        ensure!(
            status.success(),
            "api-guard exited with {status}:\n{}",
            self.stderr_tail(30)
        );
        Ok(())
    }

    /// Sends `signal` and waits (at most 10 s); on timeout SIGKILLs and fails.
    pub fn stop_with(&mut self, signal: libc::c_int) -> Result<ExitStatus> {
        if let Some(status) = self.exit {
            return Ok(status);
        }
        match signal_and_wait(&mut self.child, signal, STOP_TIMEOUT) {
            Ok(status) => {
                self.exit = Some(status);
                Ok(status)
            }
            Err(e) => {
                let _ = self.child.kill();
                self.exit = self.child.wait().ok();
                Err(e).with_context(|| {
                    format!("stopping api-guard; stderr:\n{}", self.stderr_tail(30))
                })
            }
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "api-guard (pid {}) stderr tail, files in {}:\n{}",
                self.child.id(),
                self.dir.path().display(),
                self.stderr_tail(30)
            );
        }
        if self.exit.is_none()
            && signal_and_wait(&mut self.child, libc::SIGTERM, STOP_TIMEOUT).is_err()
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A minimal HTTP/1.1 GET (Connection: close) over std's TcpStream: (status, body).
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading GET {path} from {addr}"))?;
    parse_response(&raw).with_context(|| format!("GET {path} from {addr}"))
}

fn parse_response(raw: &[u8]) -> Result<(u16, String)> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("response without end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let code = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((code, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("truncated chunk size")?;
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        ensure!(data.len() >= size + 2, "truncated chunk");
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(parse_response(plain).unwrap(), (200, "ok".to_string()));
        let chunked =
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnot \r\n5;x=y\r\nready\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked).unwrap(),
            (503, "not ready".to_string())
        );
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn http_get_against_a_local_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // The request may arrive in several segments: read all of it, or closing with
            // unread data would reset the connection under the client's read.
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "request ended early: {req:?}");
                req.extend_from_slice(&buf[..n]);
            }
            let req = String::from_utf8_lossy(&req).into_owned();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
                .unwrap();
            req
        });
        let (code, body) = http_get(addr, "/healthz", Duration::from_secs(5)).unwrap();
        assert_eq!((code, body.as_str()), (200, "ok\n"));
        assert!(server
            .join()
            .unwrap()
            .starts_with("GET /healthz HTTP/1.1\r\n"));
    }

    #[test]
    fn missing_binary_is_a_clear_error() {
        let opts = AgentOptions {
            bin: Some(PathBuf::from("/nonexistent/api-guard")),
            ..AgentOptions::default()
        };
        let err = Agent::start(opts)
            .err()
            .expect("start must fail")
            .to_string();
        assert!(
            err.contains("/nonexistent/api-guard") && err.contains("API_GUARD_BIN"),
            "{err}"
        );
    }
}
