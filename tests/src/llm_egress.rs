//! Egress tests: an "external AI provider" (`py/llm_egress_server.py`, OpenAI-compatible,
//! FastAPI/uvicorn over TLS) that a workload in another namespace reaches under a provider's
//! real host name (`api.openai.com`) through that namespace's hosts file
//! (`/etc/netns/<ns>/hosts`, which `ip netns exec` mounts over `/etc/hosts`), trusting the
//! test certificate (`SSL_CERT_FILE`); the workload is the official `openai` SDK
//! (`py/llm_egress_client.py`).

use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use crate::netns::Netns;
use crate::servers::{PyOptions, ScriptServer};
use crate::tls::TlsCert;
use crate::util::{run_with_timeout, CommExe, TempDir};

const SERVER: &str = include_str!("py/llm_egress_server.py");
const CLIENT: &str = include_str!("py/llm_egress_client.py");

fn pythonpath() -> Result<String> {
    let site = crate::util::tools_pythonpath(&["fastapi", "uvicorn", "openai", "httpx2"])?;
    Ok(site.to_string_lossy().into_owned())
}

/// `/etc/netns/<ns>/hosts` naming `ip` for `names`; removed on drop.
pub struct HostsFile {
    dir: PathBuf,
}

impl HostsFile {
    pub fn new(ns: &Netns, ip: IpAddr, names: &[&str]) -> Result<Self> {
        let dir = Path::new("/etc/netns").join(ns.name());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let text = format!("127.0.0.1 localhost\n{ip} {}\n", names.join(" "));
        std::fs::write(dir.join("hosts"), text)?;
        Ok(Self { dir })
    }
}

impl Drop for HostsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The provider server, with the log of its own usage.
pub struct EgressServer {
    server: ScriptServer,
    log: PathBuf,
    _dir: TempDir,
}

impl EgressServer {
    pub fn start(
        ns: &Netns,
        listen: SocketAddr,
        opts: PyOptions,
        cert: &TlsCert,
        canary: &str,
    ) -> Result<Self> {
        let dir = TempDir::new("llmeg")?;
        let log = dir.join("usage.jsonl");
        let env = vec![
            ("PYTHONPATH".to_string(), pythonpath()?),
            ("LLM_LOG".to_string(), log.to_string_lossy().into_owned()),
            ("LLM_CANARY".to_string(), canary.to_string()),
        ];
        let server = ScriptServer::start_python_env(
            ns,
            listen,
            &[],
            &opts,
            ("llm_egress_server.py", SERVER, "LLM provider server"),
            Some(cert),
            env,
        )?;
        Ok(Self {
            server,
            log,
            _dir: dir,
        })
    }

    /// The server's log: one object per request it answered.
    pub fn log(&self) -> Result<Vec<Value>> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).context("server log line"))
            .collect()
    }
}

impl Deref for EgressServer {
    type Target = ScriptServer;

    fn deref(&self) -> &ScriptServer {
        &self.server
    }
}

/// One call of the workload.
#[derive(Debug, Clone)]
pub struct EgressCall {
    /// `None`: the SDK's default (`https://api.openai.com/v1`).
    pub base_url: Option<&'static str>,
    pub key: &'static str,
    pub model: &'static str,
    pub prompt: String,
    pub stream: bool,
    pub max_tokens: u32,
}

/// What the workload did: its pid and one result per call.
pub struct EgressRun {
    pub pid: u32,
    pub results: Vec<Value>,
}

/// Runs the workload (python through `exe`, so its comm is `exe`'s) in `ns`, trusting `ca`.
pub fn run_egress_client(
    ns: &Netns,
    exe: &CommExe,
    ca: &Path,
    calls: &[EgressCall],
) -> Result<EgressRun> {
    let dir = TempDir::new("llmegc")?;
    let (script, plan) = (dir.join("llm_egress_client.py"), dir.join("plan.json"));
    std::fs::write(&script, CLIENT)?;
    let plan_json: Vec<Value> = calls
        .iter()
        .map(|c| {
            serde_json::json!({
                "base_url": c.base_url, "key": c.key, "model": c.model, "prompt": c.prompt,
                "stream": c.stream, "max_tokens": c.max_tokens,
            })
        })
        .collect();
    std::fs::write(&plan, serde_json::to_vec(&plan_json)?)?;
    let mut cmd = ns.cmd(exe.path());
    cmd.env("PYTHONPATH", pythonpath()?)
        .env("SSL_CERT_FILE", ca)
        .arg(&script)
        .arg(&plan);
    let run = run_with_timeout(&mut cmd, Duration::from_secs(60 + 6 * calls.len() as u64))?;
    ensure!(
        run.status.success(),
        "openai client failed: {}\n{}",
        run.status,
        run.stderr_text()
    );
    let stdout = run.stdout_text();
    let mut lines = stdout.lines().map(serde_json::from_str::<Value>);
    let first = lines.next().context("no pid line")??;
    let pid = first["pid"].as_u64().context("pid")? as u32;
    let results: Vec<Value> = lines.collect::<Result<_, _>>()?;
    ensure!(results.len() == calls.len(), "client results: {results:?}");
    Ok(EgressRun { pid, results })
}
