//! LLM API tests: an OpenAI-compatible server on FastAPI/uvicorn streaming like vLLM
//! (`py/llm_server.py`) and the official `openai` SDK as its client (`py/llm_client.py`); a
//! server shaped like Anthropic's and Ollama's APIs (`py/llm_sdk_server.py`) and their
//! official SDKs as its client (`py/llm_sdk_client.py`); all from the tools venv
//! (`cargo xtask setup`). The servers log their own usage per request.

use std::net::SocketAddr;
use std::ops::Deref;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use crate::netns::Netns;
use crate::servers::{PyOptions, ScriptServer};
use crate::util::{run_with_timeout, TempDir};

const SERVER: &str = include_str!("py/llm_server.py");
const CLIENT: &str = include_str!("py/llm_client.py");
const SDK_SERVER: &str = include_str!("py/llm_sdk_server.py");
const SDK_CLIENT: &str = include_str!("py/llm_sdk_client.py");

/// API keys the server accepts (anything else is a 401).
pub const KEY_ALPHA: &str = "sk-alpha-0123456789abcdef";
pub const KEY_BETA: &str = "sk-beta-0123456789abcdef";
/// The server's wait before the first content token (its "prefill").
pub const FIRST_TOKEN_MS: f64 = 150.0;

fn pythonpath() -> Result<String> {
    let site = crate::util::tools_pythonpath(&["fastapi", "uvicorn", "openai"])?;
    Ok(site.to_string_lossy().into_owned())
}

fn sdk_pythonpath() -> Result<String> {
    let site = crate::util::tools_pythonpath(&["fastapi", "uvicorn", "anthropic", "ollama"])?;
    Ok(site.to_string_lossy().into_owned())
}

/// The server, with the log of its own usage.
pub struct LlmServer {
    server: ScriptServer,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl LlmServer {
    pub fn start(ns: &Netns, listen: SocketAddr, opts: PyOptions) -> Result<Self> {
        Self::start_script(
            ns,
            listen,
            opts,
            pythonpath()?,
            ("llm_server.py", SERVER, "LLM server"),
        )
    }

    /// The server shaped like Anthropic's `/v1/messages` and Ollama's `/api/chat` and
    /// `/api/generate` (see `py/llm_sdk_server.py`).
    pub fn start_sdk(ns: &Netns, listen: SocketAddr, opts: PyOptions) -> Result<Self> {
        Self::start_script(
            ns,
            listen,
            opts,
            sdk_pythonpath()?,
            (
                "llm_sdk_server.py",
                SDK_SERVER,
                "Anthropic/Ollama-shaped server",
            ),
        )
    }

    fn start_script(
        ns: &Netns,
        listen: SocketAddr,
        opts: PyOptions,
        pythonpath: String,
        script: (&'static str, &'static str, &'static str),
    ) -> Result<Self> {
        let dir = TempDir::new("llm")?;
        let log = dir.join("usage.jsonl");
        let env = vec![
            ("PYTHONPATH".to_string(), pythonpath),
            ("LLM_LOG".to_string(), log.to_string_lossy().into_owned()),
        ];
        let server = ScriptServer::start_python_env(ns, listen, &[], &opts, script, None, env)?;
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

    /// Waits until the log has `n` entries (a stream's entry comes when it ends).
    pub fn wait_log(&self, n: usize, timeout: Duration) -> Result<Vec<Value>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let log = self.log()?;
            if log.len() >= n || std::time::Instant::now() > deadline {
                ensure!(
                    log.len() >= n,
                    "server logged {} of {n} requests: {log:?}",
                    log.len()
                );
                return Ok(log);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Deref for LlmServer {
    type Target = ScriptServer;

    fn deref(&self) -> &ScriptServer {
        &self.server
    }
}

/// One call of a client plan (see `py/llm_client.py`).
#[derive(Debug, Clone)]
pub struct Call {
    /// For [`run_sdk_client`]: `anthropic`, `ollama_chat` or `ollama_generate`.
    pub api: &'static str,
    pub key: &'static str,
    pub model: &'static str,
    pub words: u32,
    pub max_tokens: u32,
    pub stream: bool,
    pub include_usage: bool,
    /// Close the stream after reading this many content tokens.
    pub abort_after: Option<u32>,
    /// Seconds to wait before the call.
    pub pause: f64,
}

impl Call {
    pub fn plain(key: &'static str, model: &'static str, words: u32, max_tokens: u32) -> Self {
        Self {
            api: "openai",
            key,
            model,
            words,
            max_tokens,
            stream: false,
            include_usage: false,
            abort_after: None,
            pause: 0.0,
        }
    }

    fn to_json(&self) -> Value {
        serde_json::json!({
            "api": self.api,
            "key": self.key,
            "model": self.model,
            "words": self.words,
            "max_tokens": self.max_tokens,
            "stream": self.stream,
            "include_usage": self.include_usage,
            "abort_after": self.abort_after,
            "pause": self.pause,
        })
    }

    /// The same call through another API (for [`run_sdk_client`]).
    pub fn api(mut self, api: &'static str) -> Self {
        self.api = api;
        self
    }

    /// Streamed, with `stream_options.include_usage` or without.
    pub fn stream(mut self, include_usage: bool) -> Self {
        self.stream = true;
        self.include_usage = include_usage;
        self
    }
}

/// Runs the `openai` SDK client in `ns` through `calls` against `base_url` (…/v1); returns
/// one result object per call (`status` 0: no connection).
pub fn run_client(ns: &Netns, base_url: &str, calls: &[Call]) -> Result<Vec<Value>> {
    run_script(ns, (CLIENT, pythonpath()?, "openai"), base_url, calls)
}

/// Runs the `anthropic` and `ollama` SDK client in `ns` through `calls` (each naming its
/// `api`) against `base_url` (the server's root); one result object per call.
pub fn run_sdk_client(ns: &Netns, base_url: &str, calls: &[Call]) -> Result<Vec<Value>> {
    run_script(ns, (SDK_CLIENT, sdk_pythonpath()?, "SDK"), base_url, calls)
}

fn run_script(
    ns: &Netns,
    (text, pythonpath, what): (&str, String, &str),
    base_url: &str,
    calls: &[Call],
) -> Result<Vec<Value>> {
    let dir = TempDir::new("llmc")?;
    let (script, plan) = (dir.join("llm_client.py"), dir.join("plan.json"));
    std::fs::write(&script, text)?;
    let plan_json: Vec<Value> = calls.iter().map(Call::to_json).collect();
    std::fs::write(&plan, serde_json::to_vec(&plan_json)?)?;
    let mut cmd = ns.cmd(crate::util::python3_bin());
    cmd.env("PYTHONPATH", pythonpath)
        .arg(&script)
        .arg(base_url)
        .arg(&plan);
    let run = run_with_timeout(&mut cmd, Duration::from_secs(60 + 6 * calls.len() as u64))?;
    ensure!(
        run.status.success(),
        "{what} client failed: {}\n{}",
        run.status,
        run.stderr_text()
    );
    let out: Vec<Value> = run
        .stdout_text()
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    ensure!(out.len() == calls.len(), "client results: {out:?}");
    Ok(out)
}
