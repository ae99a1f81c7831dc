//! Sensitive data in LLM calls and the shadow-AI egress inventory, end to end. A workload (the
//! official `openai` SDK, python through a symlink with a unique comm) calls "external AI
//! providers": an OpenAI-compatible FastAPI/uvicorn server over TLS in another namespace,
//! which the workload reaches as `api.openai.com` and `api.mistral.ai` through its namespace's
//! hosts file, trusting the test certificate. The agent captures both the workload (client
//! side, through its libssl) and the server (server side).
//!
//! - A fake AWS key in a prompt sent to api.openai.com → exactly one `llm_data_leak` finding
//!   (`llm_leak.secret_in_prompt`, `api_key=1`) naming the class only; no raw key, canary or
//!   prompt text in any file the agent wrote.
//! - A configured canary streamed back (split across chunks) by the server → exactly one
//!   `llm_leak.canary` finding about the server's answer.
//! - `llm.allowed_providers = ["openai"]`: the workload's calls to api.mistral.ai → exactly one
//!   `llm_unapproved_provider` event.
//! - `api-guard llm egress --json` lists the workload (comm, pid) per provider with the key hash,
//!   models and tokens in/out exactly as the server reported them; kept across a restart.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::llm_egress::{run_egress_client, EgressCall, EgressServer, HostsFile};
use integration_tests::util::unique_comm;
use integration_tests::{require_root, Agent, AgentOptions, CommExe, NetPair, PyOptions, TlsCert};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);
const OPENAI_KEY: &str = "sk-proj-EgressTest0123456789abcdefXYZ";
const MISTRAL_KEY: &str = "mistral-egress-key-0123456789abcdef";
const AWS_KEY: &str = "AKIAQX3EGRESS7TEST42";
const CANARY: &str = "CANARY-9d4e1f7a2b";

/// Every file under `dir`, read as text.
fn all_files(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            all_files(&p, out);
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((
                p.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
}

fn no_secret(what: &str, text: &str) -> Result<()> {
    for s in [OPENAI_KEY, MISTRAL_KEY, AWS_KEY, CANARY, "boto3 says"] {
        ensure!(!text.contains(s), "{what} contains {s:?}");
    }
    Ok(())
}

#[test]
fn prompt_leaks_canaries_and_the_egress_inventory() -> Result<()> {
    require_root()?;
    let net = NetPair::new("agegr")?;
    let names = ["api.openai.com", "api.mistral.ai"];
    let cert = TlsCert::generate_for(&names)?;
    let _hosts = HostsFile::new(&net.cli, net.srv_ip.into(), &names)?;
    let server_comm = unique_comm("agep");
    let server = EgressServer::start(
        &net.srv,
        std::net::SocketAddr::new(net.srv_ip.into(), 443),
        PyOptions {
            comm: Some(server_comm.clone()),
        },
        &cert,
        CANARY,
    )?;
    let client = CommExe::python(&unique_comm("agew"))?;
    let config = format!(
        "[capture]\ncomms = [{server_comm:?}, {client:?}]\n\
         [llm]\nallowed_providers = [\"openai\"]\n\
         [detect.llm_data_leak]\ncanaries = [{CANARY:?}]\n",
        client = client.comm(),
    );
    let mut agent = Agent::start(AgentOptions {
        config_toml: Some(config.clone()),
        ..AgentOptions::default()
    })?;

    let call = |base_url, key, model, prompt: &str, stream, max_tokens| EgressCall {
        base_url,
        key,
        model,
        prompt: prompt.to_string(),
        stream,
        max_tokens,
    };
    let mistral = Some("https://api.mistral.ai/v1");
    let calls = [
        call(
            None,
            OPENAI_KEY,
            "gpt-4o-mini",
            &format!("boto3 says my access key {AWS_KEY} is invalid in us-east-1, why?"),
            false,
            5,
        ),
        call(None, OPENAI_KEY, "m-canary", "Say something nice", true, 0),
        call(
            mistral,
            MISTRAL_KEY,
            "mistral-small",
            "hello there",
            false,
            3,
        ),
        call(
            mistral,
            MISTRAL_KEY,
            "mistral-small",
            "hello again friend",
            true,
            4,
        ),
    ];
    let run = run_egress_client(&net.cli, &client, cert.cert(), &calls)?;
    let statuses: Vec<u64> = run
        .results
        .iter()
        .map(|r| r["status"].as_u64().unwrap_or(9))
        .collect();
    ensure!(statuses == [200, 200, 200, 200], "{:?}", run.results);
    let log = server.log()?;
    ensure!(log.len() == 4, "{log:?}");
    ensure!(
        log[0]["host"] == "api.openai.com" && log[2]["host"] == "api.mistral.ai",
        "{log:?}"
    );

    // The client side: four LLM calls of the workload, captured through its libssl.
    let client_calls = agent.wait_for_exchanges(
        |e| e["role"] == "client" && e["comm"] == client.comm() && e["llm"].is_object(),
        4,
        WAIT,
    )?;
    ensure!(client_calls.len() == 4, "{client_calls:#?}");
    let key_of = |host: &str| -> Result<String> {
        client_calls
            .iter()
            .find(|e| e["host"] == host)
            .and_then(|e| e["llm"]["key"].as_str())
            .map(String::from)
            .with_context(|| format!("no key hash for {host}: {client_calls:#?}"))
    };
    let (openai_key, mistral_key) = (key_of("api.openai.com")?, key_of("api.mistral.ai")?);

    // The prompt with a cloud key: one finding, the class only.
    let leaks = agent.wait_for_events(
        |e| e["type"] == "detection" && e["kind"] == "llm_data_leak",
        2,
        WAIT,
    )?;
    let prompt_leaks: Vec<&Value> = leaks
        .iter()
        .filter(|e| e["rule_id"] == "llm_leak.secret_in_prompt")
        .collect();
    ensure!(prompt_leaks.len() == 1, "{leaks:#?}");
    let p = prompt_leaks[0];
    ensure!(
        p["severity"] == "high"
            && p["evidence"] == "api_key=1"
            && p["location"] == "body:$.messages[0].content",
        "{p}"
    );
    ensure!(
        p["request"]["comm"] == client.comm()
            && p["request"]["pid"] == run.pid
            && p["request"]["host"] == "api.openai.com",
        "{p}"
    );
    // The canary the server streamed back, split across chunks: one finding.
    let canaries: Vec<&Value> = leaks
        .iter()
        .filter(|e| e["rule_id"] == "llm_leak.canary")
        .collect();
    ensure!(canaries.len() == 1, "{leaks:#?}");
    let c = canaries[0];
    ensure!(
        c["severity"] == "critical"
            && c["evidence"] == "canary #1 of 1"
            && c["request"]["comm"] == server_comm.as_str(),
        "{c}"
    );
    ensure!(leaks.len() == 2, "{leaks:#?}");

    // One event for the unapproved provider, however many calls.
    let unapproved = agent.wait_for_events(|e| e["type"] == "llm_unapproved_provider", 1, WAIT)?;
    ensure!(unapproved.len() == 1, "{unapproved:#?}");
    let u = &unapproved[0];
    ensure!(
        u["provider"] == "mistral"
            && u["host"] == "api.mistral.ai"
            && u["comm"] == client.comm()
            && u["pid"] == run.pid
            && u["key"] == mistral_key.as_str()
            && u["model"] == "mistral-small"
            && u["allowed_providers"] == serde_json::json!(["openai"]),
        "{u}"
    );
    ensure!(
        agent.metric(
            "apiguard_llm_egress_unapproved_total",
            &[("provider", "mistral")]
        )? == 1.0
    );
    ensure!(
        agent.metric(
            "apiguard_detections_total",
            &[("kind", "llm_data_leak"), ("severity", "high")]
        )? == 1.0
    );

    // The inventory: the workload per provider, tokens as the server reported them.
    let egress: Value = serde_json::from_str(&agent.cli_ok(&["llm", "egress", "--json"])?)?;
    let rows = egress["rows"].as_array().context("rows")?;
    ensure!(rows.len() == 2, "{egress:#}");
    let row = |provider: &str| {
        rows.iter()
            .find(|r| r["provider"] == provider)
            .with_context(|| format!("no {provider} row: {egress:#}"))
    };
    let sum = |range: std::ops::Range<usize>, field: &str| -> u64 {
        log[range]
            .iter()
            .map(|l| l["usage"][field].as_u64().unwrap_or(0))
            .sum()
    };
    let o = row("openai")?;
    ensure!(
        o["comm"] == client.comm()
            && o["pid"] == run.pid
            && o["hosts"] == serde_json::json!(["api.openai.com"])
            && o["keys"] == serde_json::json!([openai_key])
            && o["models"] == serde_json::json!(["gpt-4o-mini", "m-canary"])
            && o["requests"] == 2
            && o["llm_calls"] == 2
            && o["allowed"] == true,
        "{o}"
    );
    ensure!(
        o["prompt_tokens"] == sum(0..2, "prompt_tokens")
            && o["completion_tokens"] == sum(0..2, "completion_tokens")
            && o["estimated_tokens"] == 0,
        "{o} vs {log:?}"
    );
    let m = row("mistral")?;
    ensure!(
        m["keys"] == serde_json::json!([mistral_key])
            && m["models"] == serde_json::json!(["mistral-small"])
            && m["requests"] == 2
            && m["allowed"] == false
            && m["prompt_tokens"] == sum(2..4, "prompt_tokens")
            && m["completion_tokens"] == sum(2..4, "completion_tokens"),
        "{m} vs {log:?}"
    );
    let table = agent.cli_ok(&["llm", "egress"])?;
    ensure!(
        table.contains(client.comm()) && table.contains("mistral!"),
        "{table}"
    );

    // Nothing secret anywhere the agent wrote (its config holds the canary, as given):
    // exchange lines, events, logs, state.
    no_secret("metrics", &agent.metrics_text()?)?;
    no_secret("agent log", &agent.stderr_text())?;
    no_secret("llm egress", &egress.to_string())?;
    agent.stop_cleanly()?;
    let mut files = Vec::new();
    all_files(agent.dir(), &mut files);
    ensure!(
        files.len() >= 3,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (path, text) in files.iter().filter(|(p, _)| !p.ends_with("/config.toml")) {
        no_secret(path, text)?;
    }

    // The inventory survives a restart.
    let again = Agent::start(AgentOptions {
        config_toml: Some(config),
        state_dir: Some(agent.state_dir().to_path_buf()),
        ..AgentOptions::default()
    })?;
    let reloaded: Value = serde_json::from_str(&again.cli_ok(&["llm", "egress", "--json"])?)?;
    ensure!(
        reloaded["rows"] == egress["rows"],
        "{reloaded:#} vs {egress:#}"
    );
    Ok(())
}
