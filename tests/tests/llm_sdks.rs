//! LLM API awareness end to end with the official `anthropic` and `ollama` Python SDKs,
//! called from another namespace against a FastAPI/uvicorn server shaped like their APIs
//! (`tests/src/py/llm_sdk_server.py`); the agent captures the server.
//!
//! Per flavour: plain and streamed calls, a 401, a stream the client aborts and (Ollama)
//! answers without counts → per-exchange `llm` objects and per-model token counters equal
//! the server's own usage exactly (Anthropic's cumulative `message_delta` never summed with
//! `message_start`), estimates flagged where the usage is absent or cut, time to first token
//! within ±5 ms of the server's own, `api-guard llm usage` per key hash × model × client, no
//! raw key (nor prompt or answer text) in any output.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::llm::{run_sdk_client, Call, LlmServer, KEY_ALPHA, KEY_BETA};
use integration_tests::netns::unique_port;
use integration_tests::{require_root, Agent, AgentOptions, NetPair, PyOptions};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);
const KEY_WRONG: &str = "sk-wrong-0123456789abcdef";

fn find<'a>(exchanges: &'a [Value], model: &str, status: u64) -> Result<&'a Value> {
    exchanges
        .iter()
        .find(|e| e["llm"]["model_requested"] == model && e["status"] == status)
        .map(|e| &e["llm"])
        .with_context(|| format!("no exchange for {model} {status}: {exchanges:#?}"))
}

fn server_entry<'a>(log: &'a [Value], model: &str) -> Result<&'a Value> {
    log.iter()
        .find(|e| e["model"] == model && e["status"] == 200)
        .with_context(|| format!("no server log for {model}: {log:?}"))
}

fn tokens(agent: &Agent, model: &str, kind: &str, estimated: &str) -> Result<f64> {
    agent.metric(
        "apiguard_llm_tokens_total",
        &[("model", model), ("type", kind), ("estimated", estimated)],
    )
}

/// The exchange's counts equal the server's own usage (`prompt`, `completion`, `cached`).
fn exact(x: &Value, srv: &Value) -> Result<()> {
    let u = &srv["usage"];
    ensure!(
        x["prompt_tokens"] == u["prompt"]
            && x["completion_tokens"] == u["completion"]
            && x["cached_tokens"] == u["cached"],
        "{x} vs the server's {srv}"
    );
    ensure!(
        x["usage_source"] == "reported" && x["estimated"] == false && x["complete"] == true,
        "{x}"
    );
    Ok(())
}

/// Time to first token within ±5 ms of the server's own first-token time.
fn ttft_matches(x: &Value, srv: &Value) -> Result<()> {
    let ttft = x["ttft_ms"].as_f64().context("ttft_ms")?;
    let server = srv["first_token_ms"].as_f64().context("first_token_ms")?;
    ensure!(
        (ttft - server).abs() <= 5.0,
        "ttft {ttft} ms vs the server's {server} ms"
    );
    Ok(())
}

/// A stream the client left after 5 tokens: what went out before the client left, flagged.
/// The server counts a token as sent when its write returns, but a write made after it has
/// seen the client go is dropped, not sent: its count is exact or one over.
fn aborted(x: &Value, srv: &Value) -> Result<f64> {
    let sent = srv["sent"].as_u64().context("sent")?;
    let tokens = x["completion_tokens"]
        .as_u64()
        .context("completion_tokens")?;
    ensure!(
        x["complete"] == false && x["estimated"] == true && x["content_events"] == tokens,
        "{x}"
    );
    ensure!(
        tokens >= 5 && (sent.saturating_sub(1)..=sent).contains(&tokens),
        "{x} vs {srv}"
    );
    Ok(tokens as f64)
}

/// No raw key (nor its distinctive tail), prompt or answer text anywhere the agent writes.
fn no_secrets(agent: &Agent, usage: &Value) -> Result<()> {
    let outputs = [
        (
            "exchange lines",
            std::fs::read_to_string(agent.exchanges_path())?,
        ),
        (
            "events",
            std::fs::read_to_string(agent.events_path()).unwrap_or_default(),
        ),
        ("metrics", agent.metrics_text()?),
        ("llm usage", usage.to_string()),
        ("agent log", agent.stderr_text()),
    ];
    for (what, text) in outputs {
        for secret in [KEY_ALPHA, KEY_BETA, KEY_WRONG, "0123456789abcdef"] {
            ensure!(!text.contains(secret), "{what} contains a raw key");
        }
        ensure!(
            !text.contains("word0") && !text.contains("t0 t1"),
            "{what} contains prompt or answer text"
        );
    }
    Ok(())
}

fn statuses(results: &[Value]) -> Vec<u64> {
    results
        .iter()
        .map(|r| r["status"].as_u64().unwrap_or(0))
        .collect()
}

/// The `llm usage --json` row of `model` for `key` from `client`.
fn usage_row<'a>(usage: &'a Value, model: &str, key: &Value, client: &str) -> Result<&'a Value> {
    usage["rows"]
        .as_array()
        .context("rows")?
        .iter()
        .find(|r| r["model"] == model && &r["key"] == key && r["client"] == client)
        .with_context(|| format!("no usage row for {model}: {usage:#}"))
}

#[test]
fn anthropic_sdk_usage_is_exact_plain_and_streamed() -> Result<()> {
    require_root()?;
    let net = NetPair::new("aganth")?;
    let listen = SocketAddr::new(net.srv_ip.into(), unique_port()?);
    let server = LlmServer::start_sdk(&net.srv, listen, PyOptions::default())?;
    let agent = Agent::start(AgentOptions::capture_only(&[server.pid()], &[]))?;

    let anthropic = |key, model, words, max| Call::plain(key, model, words, max).api("anthropic");
    let mut abort = anthropic(KEY_BETA, "m-abort", 2, 40).stream(false);
    abort.abort_after = Some(5);
    let calls = [
        anthropic(KEY_ALPHA, "m-plain", 3, 5),
        anthropic(KEY_ALPHA, "m-stream", 4, 6).stream(false),
        anthropic(KEY_ALPHA, "m-cached", 2, 4).stream(false),
        anthropic(KEY_WRONG, "m-plain", 1, 8),
        abort,
        anthropic(KEY_BETA, "m-plain", 7, 3),
    ];
    let results = run_sdk_client(&net.cli, &server.url(""), &calls)?;
    ensure!(
        statuses(&results) == [200, 200, 200, 401, 200, 200],
        "{results:?}"
    );
    // The SDK's own view of the stream agrees with the server (cumulative output tokens).
    ensure!(
        results[1]["usage"]["output_tokens"] == 6 && results[1]["usage"]["input_tokens"] == 4,
        "{}",
        results[1]
    );
    let log = server.wait_log(6, WAIT)?;
    let exchanges = agent.wait_for_exchanges(|e| e["llm"].is_object(), 6, WAIT)?;
    ensure!(exchanges.len() == 6, "{exchanges:#?}");

    let plain = find(&exchanges, "m-plain", 200)?;
    ensure!(
        plain["flavour"] == "anthropic_messages"
            && plain["provider"] == "anthropic"
            && plain["model"] == "m-plain"
            && plain["stream"] == false
            && plain["max_tokens"] == 5
            && plain["messages"] == 1,
        "{plain}"
    );
    ensure!(
        plain["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("sha256:")),
        "{plain}"
    );
    exact(plain, server_entry(&log, "m-plain")?)?;

    // Streamed: message_start's input tokens, message_delta's cumulative output tokens
    // (6, not 1 + 6), TTFT at the first content_block_delta.
    let s = find(&exchanges, "m-stream", 200)?;
    let srv = server_entry(&log, "m-stream")?;
    exact(s, srv)?;
    ensure!(s["stream"] == true && s["content_events"] == 6, "{s}");
    ttft_matches(s, srv)?;
    ensure!(
        s["inter_token_ms"].as_f64().is_some_and(|i| i >= 4.0),
        "{s}"
    );
    let c = find(&exchanges, "m-cached", 200)?;
    exact(c, server_entry(&log, "m-cached")?)?;
    ensure!(c["cached_tokens"] == 10, "{c}");

    let denied = find(&exchanges, "m-plain", 401)?;
    ensure!(
        denied["prompt_tokens"] == 0
            && denied["completion_tokens"] == 0
            && denied["usage_source"] == "none",
        "{denied}"
    );

    // Aborted: message_start's input tokens are the server's; the output is what it got
    // out before the client left, flagged.
    let a = find(&exchanges, "m-abort", 200)?;
    let sent = aborted(a, server_entry(&log, "m-abort")?)?;
    ensure!(a["prompt_tokens"] == 2, "{a}");

    // Per-model counters equal the server's own usage.
    ensure!(tokens(&agent, "m-plain", "prompt", "false")? == 3.0 + 7.0);
    ensure!(tokens(&agent, "m-plain", "completion", "false")? == 5.0 + 3.0);
    ensure!(tokens(&agent, "m-stream", "prompt", "false")? == 4.0);
    ensure!(tokens(&agent, "m-stream", "completion", "false")? == 6.0);
    ensure!(tokens(&agent, "m-cached", "cached", "false")? == 10.0);
    ensure!(tokens(&agent, "m-abort", "completion", "true")? == sent);
    ensure!(tokens(&agent, "m-abort", "completion", "false")? == 0.0);
    ensure!(
        agent.metric(
            "apiguard_llm_requests_total",
            &[
                ("provider", "anthropic"),
                ("model", "m-plain"),
                ("status", "401")
            ]
        )? == 1.0
    );
    ensure!(
        agent.metric(
            "apiguard_llm_time_to_first_token_seconds_count",
            &[("provider", "anthropic"), ("model", "m-stream")]
        )? == 1.0
    );

    let usage: Value = serde_json::from_str(&agent.cli_ok(&["llm", "usage", "--json"])?)?;
    let client = net.cli_ip.to_string();
    let r = usage_row(&usage, "m-plain", &plain["key"], &client)?;
    ensure!(
        r["requests"] == 1 && r["prompt_tokens"] == 3 && r["completion_tokens"] == 5,
        "{r}"
    );
    let r = usage_row(&usage, "m-cached", &plain["key"], &client)?;
    ensure!(
        r["cached_tokens"] == 10 && r["estimated_tokens"] == 0,
        "{r}"
    );
    no_secrets(&agent, &usage)
}

#[test]
fn ollama_sdk_usage_is_exact_plain_and_streamed() -> Result<()> {
    require_root()?;
    let net = NetPair::new("agolla")?;
    let listen = SocketAddr::new(net.srv_ip.into(), unique_port()?);
    let server = LlmServer::start_sdk(&net.srv, listen, PyOptions::default())?;
    let agent = Agent::start(AgentOptions::capture_only(&[server.pid()], &[]))?;

    let chat = |key, model, words, max| Call::plain(key, model, words, max).api("ollama_chat");
    let generate =
        |key, model, words, max| Call::plain(key, model, words, max).api("ollama_generate");
    let mut abort = chat(KEY_BETA, "m-abort", 2, 40).stream(false);
    abort.abort_after = Some(5);
    let calls = [
        chat(KEY_ALPHA, "m-plain", 3, 5),
        chat(KEY_ALPHA, "m-stream", 4, 6).stream(false),
        generate(KEY_ALPHA, "m-gen", 3, 4),
        generate(KEY_ALPHA, "m-genstream", 5, 6).stream(false),
        // Ollama's final line without `prompt_eval_count` (a cached prompt), and without both.
        chat(KEY_ALPHA, "m-nocount", 4, 6).stream(false),
        chat(KEY_ALPHA, "m-nousage", 4, 6).stream(false),
        chat(KEY_WRONG, "m-plain", 1, 8),
        abort,
    ];
    let results = run_sdk_client(&net.cli, &server.url(""), &calls)?;
    ensure!(
        statuses(&results) == [200, 200, 200, 200, 200, 200, 401, 200],
        "{results:?}"
    );
    let log = server.wait_log(8, WAIT)?;
    let exchanges = agent.wait_for_exchanges(|e| e["llm"].is_object(), 8, WAIT)?;
    ensure!(exchanges.len() == 8, "{exchanges:#?}");

    let plain = find(&exchanges, "m-plain", 200)?;
    ensure!(
        plain["flavour"] == "ollama_chat"
            && plain["provider"] == "ollama"
            && plain["stream"] == false
            && plain["max_tokens"] == 5,
        "{plain}"
    );
    exact(plain, server_entry(&log, "m-plain")?)?;
    let s = find(&exchanges, "m-stream", 200)?;
    let srv = server_entry(&log, "m-stream")?;
    exact(s, srv)?;
    ensure!(s["stream"] == true && s["content_events"] == 6, "{s}");
    ttft_matches(s, srv)?;
    let g = find(&exchanges, "m-gen", 200)?;
    ensure!(g["flavour"] == "ollama_generate", "{g}");
    exact(g, server_entry(&log, "m-gen")?)?;
    let gs = find(&exchanges, "m-genstream", 200)?;
    let srv = server_entry(&log, "m-genstream")?;
    exact(gs, srv)?;
    ensure!(gs["content_events"] == 6, "{gs}");
    ttft_matches(gs, srv)?;

    // "word0 word1 word2 word3": 23 characters, 4 a token (not an OpenAI model).
    let prompt_estimate = 6;
    let nc = find(&exchanges, "m-nocount", 200)?;
    ensure!(
        nc["usage_source"] == "reported"
            && nc["estimated"] == true
            && nc["prompt_tokens"] == prompt_estimate
            && nc["completion_tokens"] == 6,
        "{nc}"
    );
    let nu = find(&exchanges, "m-nousage", 200)?;
    ensure!(
        nu["usage_source"] == "estimated"
            && nu["estimated"] == true
            && nu["prompt_tokens"] == prompt_estimate
            && nu["completion_tokens"] == 6,
        "{nu}"
    );
    let denied = find(&exchanges, "m-plain", 401)?;
    ensure!(
        denied["prompt_tokens"] == 0
            && denied["completion_tokens"] == 0
            && denied["usage_source"] == "none",
        "{denied}"
    );
    let sent = aborted(
        find(&exchanges, "m-abort", 200)?,
        server_entry(&log, "m-abort")?,
    )?;

    ensure!(tokens(&agent, "m-plain", "prompt", "false")? == 3.0);
    ensure!(tokens(&agent, "m-plain", "completion", "false")? == 5.0);
    ensure!(tokens(&agent, "m-stream", "prompt", "false")? == 4.0);
    ensure!(tokens(&agent, "m-stream", "completion", "false")? == 6.0);
    ensure!(tokens(&agent, "m-gen", "completion", "false")? == 4.0);
    ensure!(tokens(&agent, "m-genstream", "prompt", "false")? == 5.0);
    ensure!(tokens(&agent, "m-genstream", "completion", "false")? == 6.0);
    ensure!(tokens(&agent, "m-nocount", "prompt", "true")? == 6.0);
    ensure!(tokens(&agent, "m-nousage", "completion", "true")? == 6.0);
    ensure!(tokens(&agent, "m-nousage", "completion", "false")? == 0.0);
    ensure!(tokens(&agent, "m-abort", "completion", "true")? == sent);
    ensure!(
        agent.metric(
            "apiguard_llm_requests_total",
            &[
                ("provider", "ollama"),
                ("model", "m-plain"),
                ("status", "401")
            ]
        )? == 1.0
    );
    ensure!(
        agent.metric(
            "apiguard_llm_time_to_first_token_seconds_count",
            &[("provider", "ollama"), ("model", "m-stream")]
        )? == 1.0
    );

    let usage: Value = serde_json::from_str(&agent.cli_ok(&["llm", "usage", "--json"])?)?;
    let client = net.cli_ip.to_string();
    let r = usage_row(&usage, "m-stream", &plain["key"], &client)?;
    ensure!(
        r["requests"] == 1 && r["prompt_tokens"] == 4 && r["completion_tokens"] == 6,
        "{r}"
    );
    let r = usage_row(&usage, "m-nousage", &plain["key"], &client)?;
    ensure!(r["estimated_tokens"] == 12, "{r}");
    no_secrets(&agent, &usage)
}
