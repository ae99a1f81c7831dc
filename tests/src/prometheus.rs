//! A real Prometheus server (Debian's `prometheus` package) of the test's own: its own
//! config, data dir (in a temp dir) and a free loopback port, so it never depends on or
//! collides with a system service the package may have started on port 9090. Queried
//! through its HTTP API; stopped (SIGTERM, then SIGKILL) on drop.

use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use crate::agent::http_get;
use crate::netns::unique_port;
use crate::util::{die_with_parent, signal_and_wait, tail, TempDir};

/// How long Prometheus may take to open its TSDB and report ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Job name of the scrape config; every scraped series carries `job="api-guard"`.
pub const JOB: &str = "api-guard";
/// Longest query string we send (the API takes far longer; ours are short).
const MAX_QUERY: usize = 1024;
/// Largest API answer we accept.
const MAX_ANSWER: usize = 4 << 20;

/// The `prometheus` binary: `$API_GUARD_PROMETHEUS_BIN`, else Debian's `/usr/bin/prometheus`,
/// else the first on PATH. Fails (never skips) when there is none.
pub fn prometheus_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("API_GUARD_PROMETHEUS_BIN").filter(|b| !b.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    let debian = Path::new("/usr/bin/prometheus");
    if debian.is_file() {
        return Ok(debian.to_path_buf());
    }
    crate::util::which("prometheus").context(
        "prometheus is not installed: `cargo xtask setup` (or `cargo xtask test`) installs \
         Debian's `prometheus` package",
    )
}

/// One sample of an instant-vector query result.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl QuerySample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A running Prometheus scraping `targets` every `scrape_interval`.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log_path: PathBuf,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (plain HTTP, `/metrics`) under job [`JOB`] and
    /// waits until `/-/ready` answers 200 (at most 30 s). Retries with another port if the
    /// one picked was taken in between.
    pub fn start(targets: &[SocketAddr], scrape_interval: Duration) -> Result<Prometheus> {
        ensure!(!targets.is_empty(), "Prometheus needs at least one target");
        let secs = scrape_interval.as_secs();
        ensure!(
            (1..=60).contains(&secs) && scrape_interval.subsec_nanos() == 0,
            "scrape interval must be whole seconds in 1..=60, got {scrape_interval:?}"
        );
        let bin = prometheus_binary()?;
        const ATTEMPTS: u32 = 3;
        let mut attempt = 1;
        loop {
            match Self::start_once(&bin, targets, secs) {
                Ok(p) => return Ok(p),
                Err(e)
                    if attempt < ATTEMPTS
                        && format!("{e:#}").contains("address already in use") =>
                {
                    eprintln!("prometheus start attempt {attempt} lost its port, retrying: {e:#}");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn start_once(bin: &Path, targets: &[SocketAddr], secs: u64) -> Result<Prometheus> {
        let dir = TempDir::new("prometheus")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], unique_port()?));
        let data = dir.join("data");
        fs::create_dir(&data)?;
        let config = dir.join("prometheus.yml");
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: {secs}s\n  scrape_timeout: {secs}s\n  \
                 evaluation_interval: {secs}s\nscrape_configs:\n  - job_name: '{JOB}'\n    \
                 metrics_path: /metrics\n    scheme: http\n    static_configs:\n      \
                 - targets: [{}]\n",
                list.join(", ")
            ),
        )?;
        let log_path = dir.join("prometheus.log");
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--storage.tsdb.retention.time=1h")
            .arg("--log.level=info")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("stdout.log"))?)
            .stderr(File::create(&log_path)?);
        die_with_parent(&mut cmd, libc::SIGTERM);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let mut prom = Prometheus {
            child,
            addr,
            log_path,
            dir,
        };
        prom.wait_ready()?;
        Ok(prom)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "prometheus exited with {status} before becoming ready; log:\n{}",
                    self.log_tail(30)
                );
            }
            let last = match http_get(self.addr, "/-/ready", Duration::from_secs(2)) {
                Ok((200, _)) => return Ok(()),
                Ok((code, body)) => format!("{code} {}", body.trim()),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() > deadline {
                bail!(
                    "prometheus not ready after {READY_TIMEOUT:?} (last /-/ready: {last}); log:\n{}",
                    self.log_tail(30)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        tail(&text, lines)
    }

    /// `GET path` on the API; the `data` of a `"status": "success"` answer.
    fn api(&self, path: &str) -> Result<Value> {
        let (code, body) = http_get(self.addr, path, Duration::from_secs(5))?;
        ensure!(
            body.len() <= MAX_ANSWER,
            "GET {path}: answer of {} bytes",
            body.len()
        );
        let json: Value = serde_json::from_str(&body)
            .with_context(|| format!("GET {path} answered {code} with non-JSON: {body}"))?;
        ensure!(
            code == 200 && json["status"] == "success",
            "GET {path} answered {code}: {json}"
        );
        Ok(json["data"].clone())
    }

    /// An instant query (`/api/v1/query`); its samples. Fails unless it is a vector.
    pub fn query(&self, promql: &str) -> Result<Vec<QuerySample>> {
        ensure!(promql.len() <= MAX_QUERY, "query too long");
        let data = self.api(&format!("/api/v1/query?query={}", url_encode(promql)))?;
        ensure!(
            data["resultType"] == "vector",
            "{promql}: result type {}",
            data["resultType"]
        );
        let result = data["result"]
            .as_array()
            .with_context(|| format!("{promql}: no result array in {data}"))?;
        result.iter().map(parse_sample).collect()
    }

    /// The single value of `promql`; `None` when the result is empty (no such series yet).
    pub fn value(&self, promql: &str) -> Result<Option<f64>> {
        let samples = self.query(promql)?;
        ensure!(
            samples.len() <= 1,
            "{promql}: expected at most one sample, got {samples:?}"
        );
        Ok(samples.first().map(|s| s.value))
    }

    /// Polls `value(promql)` until `done` holds for it (at most `timeout`, every 200 ms);
    /// returns the last value either way, for the caller to assert on.
    pub fn wait_value(
        &self,
        promql: &str,
        mut done: impl FnMut(Option<f64>) -> Result<bool>,
        timeout: Duration,
    ) -> Result<Option<f64>> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.value(promql)?;
            if done(value)? || Instant::now() > deadline {
                return Ok(value);
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// The active targets (`/api/v1/targets`).
    pub fn active_targets(&self) -> Result<Vec<Value>> {
        let data = self.api("/api/v1/targets?state=active")?;
        data["activeTargets"]
            .as_array()
            .cloned()
            .with_context(|| format!("no activeTargets in {data}"))
    }

    /// SIGTERM and wait (at most 10 s); fails unless Prometheus exits 0.
    pub fn stop(&mut self) -> Result<()> {
        let status = signal_and_wait(&mut self.child, libc::SIGTERM, Duration::from_secs(10))
            .inspect_err(|_| {
                let _ = self.child.kill();
                let _ = self.child.wait();
            })?;
        ensure!(
            status.success(),
            "prometheus exited with {status}; log:\n{}",
            self.log_tail(20)
        );
        Ok(())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "prometheus (pid {}) log tail, files in {}:\n{}",
                self.child.id(),
                self.dir.path().display(),
                self.log_tail(20)
            );
        }
        if signal_and_wait(&mut self.child, libc::SIGTERM, Duration::from_secs(10)).is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn parse_sample(v: &Value) -> Result<QuerySample> {
    let labels = v["metric"]
        .as_object()
        .with_context(|| format!("sample without metric: {v}"))?
        .iter()
        .map(|(k, val)| (k.clone(), val.as_str().unwrap_or_default().to_owned()))
        .collect();
    // `"value": [<unix time>, "<number as string>"]`.
    let text = v["value"][1]
        .as_str()
        .with_context(|| format!("sample without value: {v}"))?;
    let value = text
        .parse()
        .with_context(|| format!("sample value {text:?}"))?;
    Ok(QuerySample { labels, value })
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_of_a_query() {
        assert_eq!(
            url_encode(r#"sum(x{role="server"})"#),
            "sum%28x%7Brole%3D%22server%22%7D%29"
        );
        assert_eq!(url_encode("a b~c"), "a%20b~c");
    }

    #[test]
    fn samples_from_the_api_shape() {
        let v: Value = serde_json::from_str(
            r#"{"metric":{"__name__":"up","job":"api-guard"},"value":[1700000000.5,"1"]}"#,
        )
        .unwrap();
        let s = parse_sample(&v).unwrap();
        assert_eq!(s.value, 1.0);
        assert_eq!(s.label("job"), Some("api-guard"));
        assert!(parse_sample(&serde_json::json!({"metric": {}, "value": [1, 2]})).is_err());
    }
}
