//! LLM API awareness end to end: an OpenAI-compatible FastAPI/uvicorn server streaming like
//! vLLM, called by the official `openai` SDK from other namespaces; the agent captures the
//! server.
//!
//! - Usage: a plain call, a stream with `include_usage`, a stream without (estimated, flagged),
//!   a 401, a stream the client aborts → per-exchange `llm` objects and per-model token
//!   counters equal the server's own usage exactly; time to first token within ±5 ms of the
//!   server's own; `api-guard llm usage` per key hash × model × client, kept across a
//!   restart; no raw key anywhere in the agent's output.
//! - Token limits: a `unit = "tokens"` policy per API key blocks the over-budget key's
//!   client at XDP while another key (another client) keeps working.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::llm::{run_client, Call, LlmServer, KEY_ALPHA, KEY_BETA};
use integration_tests::netns::unique_port;
use integration_tests::{require_root, Agent, AgentOptions, NetPair, Netns, PyOptions, Veth};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);
const KEY_WRONG: &str = "sk-wrong-0123456789abcdef";

fn llm_exchanges(agent: &Agent, n: usize) -> Result<Vec<Value>> {
    agent.wait_for_exchanges(|e| e["llm"].is_object(), n, WAIT)
}

fn find<'a>(exchanges: &'a [Value], model: &str, status: u64) -> Result<&'a Value> {
    exchanges
        .iter()
        .find(|e| e["llm"]["model_requested"] == model && e["status"] == status)
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

/// No raw key (nor its distinctive tail) in `text`.
fn no_raw_key(what: &str, text: &str) -> Result<()> {
    for secret in [KEY_ALPHA, KEY_BETA, KEY_WRONG, "0123456789abcdef"] {
        ensure!(!text.contains(secret), "{what} contains a raw key");
    }
    Ok(())
}

#[test]
fn openai_sdk_usage_is_exact_plain_and_streamed() -> Result<()> {
    require_root()?;
    let net = NetPair::new("agllm")?;
    let listen = SocketAddr::new(net.srv_ip.into(), unique_port()?);
    let server = LlmServer::start(&net.srv, listen, PyOptions::default())?;
    let mut agent = Agent::start(AgentOptions::capture_only(&[server.pid()], &[]))?;
    let base = server.url("/v1");

    let mut abort = Call::plain(KEY_BETA, "m-abort", 2, 40).stream(true);
    abort.abort_after = Some(5);
    let calls = [
        Call::plain(KEY_ALPHA, "m-plain", 3, 5),
        // Streamed with and without `stream_options.include_usage`.
        Call::plain(KEY_ALPHA, "m-stream", 4, 6).stream(true),
        Call::plain(KEY_ALPHA, "m-nousage", 4, 6).stream(false),
        Call::plain(KEY_WRONG, "m-plain", 1, 8),
        abort,
        Call::plain(KEY_BETA, "m-plain", 7, 3),
    ];
    let results = run_client(&net.cli, &base, &calls)?;
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap_or(0))
        .collect();
    ensure!(statuses == [200, 200, 200, 401, 200, 200], "{results:?}");
    let log = server.wait_log(6, WAIT)?;
    let exchanges = llm_exchanges(&agent, 6)?;
    ensure!(exchanges.len() == 6, "{exchanges:#?}");

    // Plain: exactly the server's usage.
    let plain = &find(&exchanges, "m-plain", 200)?["llm"];
    ensure!(
        plain["flavour"] == "openai_chat" && plain["provider"] == "openai",
        "{plain}"
    );
    ensure!(
        plain["model"] == "m-plain" && plain["stream"] == false,
        "{plain}"
    );
    ensure!(
        plain["max_tokens"] == 5 && plain["messages"] == 1,
        "{plain}"
    );
    ensure!(
        plain["prompt_tokens"] == 3 && plain["completion_tokens"] == 5,
        "{plain}"
    );
    ensure!(
        plain["usage_source"] == "reported" && plain["estimated"] == false,
        "{plain}"
    );
    ensure!(
        plain["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("sha256:")),
        "{plain}"
    );

    // Streamed with include_usage: the usage chunk, TTFT at the first content delta.
    let s = &find(&exchanges, "m-stream", 200)?["llm"];
    let srv = server_entry(&log, "m-stream")?;
    ensure!(s["stream"] == true && s["complete"] == true, "{s}");
    ensure!(
        s["prompt_tokens"] == srv["usage"]["prompt_tokens"]
            && s["completion_tokens"] == srv["usage"]["completion_tokens"],
        "{s} vs {srv}"
    );
    ensure!(s["estimated"] == false && s["content_events"] == 6, "{s}");
    let ttft = s["ttft_ms"].as_f64().context("ttft_ms")?;
    let server_ttft = srv["first_token_ms"]
        .as_f64()
        .context("server first_token_ms")?;
    ensure!(
        (ttft - server_ttft).abs() <= 5.0,
        "ttft {ttft} ms vs the server's {server_ttft} ms"
    );
    ensure!(
        s["inter_token_ms"].as_f64().is_some_and(|i| i >= 4.0),
        "{s}"
    );

    // Streamed without usage: estimated and flagged; one token per content chunk.
    let n = &find(&exchanges, "m-nousage", 200)?["llm"];
    let srv = server_entry(&log, "m-nousage")?;
    ensure!(
        n["usage_source"] == "estimated" && n["estimated"] == true,
        "{n}"
    );
    ensure!(
        n["completion_tokens"] == srv["usage"]["completion_tokens"],
        "{n} vs {srv}"
    );
    // "word0 word1 word2 word3": 23 characters, 4 a token.
    ensure!(n["prompt_tokens"] == 6, "{n}");

    // 401: no tokens, truthfully.
    let denied = &find(&exchanges, "m-plain", 401)?["llm"];
    ensure!(
        denied["prompt_tokens"] == 0
            && denied["completion_tokens"] == 0
            && denied["usage_source"] == "none",
        "{denied}"
    );

    // Aborted: what the server got out before the client left, flagged.
    let a = &find(&exchanges, "m-abort", 200)?["llm"];
    let srv = server_entry(&log, "m-abort")?;
    ensure!(a["complete"] == false && a["estimated"] == true, "{a}");
    ensure!(a["completion_tokens"] == srv["sent"], "{a} vs {srv}");

    // Per-model counters equal the server's own usage.
    ensure!(tokens(&agent, "m-plain", "prompt", "false")? == 3.0 + 7.0);
    ensure!(tokens(&agent, "m-plain", "completion", "false")? == 5.0 + 3.0);
    ensure!(tokens(&agent, "m-stream", "prompt", "false")? == 4.0);
    ensure!(tokens(&agent, "m-stream", "completion", "false")? == 6.0);
    ensure!(tokens(&agent, "m-nousage", "completion", "true")? == 6.0);
    ensure!(tokens(&agent, "m-nousage", "completion", "false")? == 0.0);
    let sent = srv["sent"].as_f64().unwrap_or(-1.0);
    ensure!(tokens(&agent, "m-abort", "completion", "true")? == sent);
    ensure!(
        agent.metric(
            "apiguard_llm_requests_total",
            &[("model", "m-plain"), ("status", "401")]
        )? == 1.0
    );
    ensure!(
        agent.metric(
            "apiguard_llm_time_to_first_token_seconds_count",
            &[("model", "m-stream")]
        )? == 1.0
    );

    // Accounting per key hash × model × client.
    let usage: Value = serde_json::from_str(&agent.cli_ok(&["llm", "usage", "--json"])?)?;
    let rows = usage["rows"].as_array().context("rows")?;
    let client = net.cli_ip.to_string();
    let row = |model: &str, key: &Value| {
        rows.iter()
            .find(|r| r["model"] == model && &r["key"] == key && r["client"] == client.as_str())
    };
    let alpha = &plain["key"];
    let r = row("m-plain", alpha).with_context(|| format!("{usage:#}"))?;
    ensure!(
        r["requests"] == 1 && r["prompt_tokens"] == 3 && r["completion_tokens"] == 5,
        "{r}"
    );
    let r = row("m-nousage", alpha).with_context(|| format!("{usage:#}"))?;
    ensure!(r["estimated_tokens"] == 12, "{r}");
    let table = agent.cli_ok(&["llm", "usage"])?;
    ensure!(
        table.contains("m-stream") && table.contains(&client),
        "{table}"
    );

    // No raw key anywhere the agent writes.
    let exchanges_text = std::fs::read_to_string(agent.exchanges_path())?;
    no_raw_key("exchange lines", &exchanges_text)?;
    no_raw_key(
        "events",
        &std::fs::read_to_string(agent.events_path()).unwrap_or_default(),
    )?;
    no_raw_key("metrics", &agent.metrics_text()?)?;
    no_raw_key("llm usage", &usage.to_string())?;
    no_raw_key("agent log", &agent.stderr_text())?;
    ensure!(
        !exchanges_text.contains("word0") && !exchanges_text.contains("t0 t1"),
        "prompt or completion text in exchange lines"
    );

    // The accounting survives a restart.
    agent.stop_cleanly()?;
    let again = Agent::start(AgentOptions {
        state_dir: Some(agent.state_dir().to_path_buf()),
        ..AgentOptions::capture_only(&[server.pid()], &[])
    })?;
    let reloaded: Value = serde_json::from_str(&again.cli_ok(&["llm", "usage", "--json"])?)?;
    ensure!(
        reloaded["rows"] == usage["rows"],
        "{reloaded:#} vs {usage:#}"
    );
    Ok(())
}

#[test]
fn token_policy_blocks_the_over_budget_key_at_xdp() -> Result<()> {
    require_root()?;
    let srv = Netns::new("agtok-s")?;
    let c1 = Netns::new("agtok-a")?;
    let c2 = Netns::new("agtok-b")?;
    let v1 = Veth::new(&srv, &c1)?;
    let v2 = Veth::new(&srv, &c2)?;
    let port = unique_port()?;
    let server = LlmServer::start(
        &srv,
        SocketAddr::new("0.0.0.0".parse()?, port),
        PyOptions::default(),
    )?;
    let ns = srv.path();
    let config = format!(
        "[capture]\npids = [{pid}]\n\
         [xdp]\ninterfaces = [{{ name = {a:?}, netns = {ns:?} }}, {{ name = {b:?}, netns = {ns:?} }}]\n\
         [[enforce.policies]]\nname = \"tokens-per-key\"\nkey = \"api_key\"\nunit = \"tokens\"\n\
         rate = 1.0\nburst = 100\naction = \"block\"\nblock_secs = 60\n\
         [enforce.policies.match]\npath = \"/v1/chat/completions\"\n",
        pid = server.pid(),
        a = v1.a_if,
        b = v2.a_if,
    );
    let agent = Agent::start(AgentOptions {
        config_toml: Some(config),
        ..AgentOptions::default()
    })?;
    let url = |v: &Veth| format!("http://{}:{port}/v1", v.a_ip);

    // Each call reserves 5 (17 characters of prompt) + 20 and uses 3 + 20: four fit in
    // 100 tokens, the fifth overruns (23 * 4 + 25 > 100) and its client is blocked.
    let calls: Vec<Call> = (0..7)
        .map(|_| {
            let mut c = Call::plain(KEY_ALPHA, "m-tok", 3, 20);
            c.pause = 0.5;
            c
        })
        .collect();
    let results = run_client(&c1, &url(&v1), &calls)?;
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap_or(9))
        .collect();
    ensure!(
        statuses == [200, 200, 200, 200, 200, 0, 0],
        "{results:?}\n{}",
        agent.diagnostics()
    );
    // Another key from another client keeps working.
    let other = run_client(&c2, &url(&v2), &[Call::plain(KEY_BETA, "m-tok", 3, 20)])?;
    ensure!(other[0]["status"] == 200, "{other:?}");

    let c1_ip = v1.b_ip.to_string();
    let budget = agent.wait_for_events(|e| e["type"] == "llm_budget_exceeded", 1, WAIT)?;
    let b = &budget[0];
    ensure!(
        b["policy"] == "tokens-per-key" && b["reason"] == "llm_budget",
        "{b}"
    );
    ensure!(b["client"]["ip"] == c1_ip.as_str(), "{b}");
    ensure!(
        b["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{b}"
    );
    let blocks = agent.wait_for_events(|e| e["type"] == "block", 1, WAIT)?;
    ensure!(
        blocks[0]["target"] == c1_ip.as_str() && blocks[0]["enforced"] == true,
        "{}",
        blocks[0]
    );
    let drops = agent.wait_metric(
        "apiguard_xdp_packets_total",
        &[("action", "drop"), ("reason", "blocklist")],
        |v| v >= 1.0,
        WAIT,
    )?;
    ensure!(drops >= 1.0, "no XDP drop");
    // The other client is never limited nor blocked (its bearer token in plaintext across
    // the veth is reported by the encryption audit, which never blocks).
    let events = agent.events()?;
    ensure!(
        !events.iter().any(|e| e["client"]["ip"] == v2.b_ip.to_string().as_str()
            && e["kind"] != "encryption"),
        "an event about the other client: {events:?}"
    );
    no_raw_key("events", &serde_json::to_string(&events)?)?;
    Ok(())
}
