//! LLM analysis cost per exchange (`cargo xtask bench llm`): a chat completion streamed as
//! 200 vLLM-style SSE chunks (role chunk, 200 content deltas, finish chunk, usage chunk,
//! `[DONE]`) and the same answer as one JSON body. `analyze_*` is the work the parsing task
//! adds per LLM exchange (recognition, request facts, usage, TTFT); `parse_and_analyze_sse_200`
//! includes the HTTP parsing and the response tap. `estimate_bpe_*`: a `gpt-4o` stream without
//! usage, its prompt (300 bytes; 64 KiB, of which the tokenized bound is BPE-counted and the
//! rest by ratio) counted with the o200k BPE; before them, the BPE's one-off load time and
//! resident memory are printed.

use std::hint::black_box;

use api_guard::http::{HttpConnection, HttpExchange, HttpLimits, Stream};
use api_guard::llm;
use criterion::{criterion_group, Criterion, Throughput};

const CHUNKS: usize = 200;

fn request() -> Vec<u8> {
    let body = r#"{"model":"meta-llama/Llama-3.1-8B-Instruct","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write a short story about a lighthouse keeper who finds a message in a bottle."}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":256,"temperature":0.7}"#;
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: llm.internal:8000\r\nAuthorization: Bearer sk-bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";

fn chunk(model: &str, delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-8f1c\",\"object\":\"chat.completion.chunk\",\"created\":1733400000,\"model\":\"{model}\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}],\"usage\":null}}\n\n"
    )
}

/// The streamed response, one HTTP chunk per event.
fn sse_response() -> Vec<u8> {
    sse_response_of(MODEL, true)
}

/// The streamed response of `model`, with or without its usage chunk.
fn sse_response_of(model: &str, usage: bool) -> Vec<u8> {
    let mut events = vec![chunk(model, r#"{"role":"assistant","content":""}"#, "null")];
    for i in 0..CHUNKS {
        events.push(chunk(
            model,
            &format!("{{\"content\":\" word{i}\"}}"),
            "null",
        ));
    }
    events.push(chunk(model, "{}", "\"length\""));
    if usage {
        events.push(format!("data: {{\"id\":\"chatcmpl-8f1c\",\"object\":\"chat.completion.chunk\",\"created\":1733400000,\"model\":\"{model}\",\"choices\":[],\"usage\":{{\"prompt_tokens\":42,\"total_tokens\":242,\"completion_tokens\":200}}}}\n\n"));
    }
    events.push("data: [DONE]\n\n".into());
    let mut out = b"HTTP/1.1 200 OK\r\ndate: Sat, 05 Dec 2026 23:00:00 GMT\r\nserver: uvicorn\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for e in events {
        out.extend_from_slice(format!("{:x}\r\n{e}\r\n", e.len()).as_bytes());
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn json_response() -> Vec<u8> {
    let text: String = (0..CHUNKS).map(|i| format!(" word{i}")).collect();
    let body = format!(
        r#"{{"id":"chatcmpl-8f1c","object":"chat.completion","created":1733400000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{{"index":0,"message":{{"role":"assistant","content":"{text}"}},"finish_reason":"length"}}],"usage":{{"prompt_tokens":42,"total_tokens":242,"completion_tokens":200}}}}"#
    );
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Parses one exchange, the response in pieces of one event (as servers write them).
fn parse(req: &[u8], resp: &[u8]) -> HttpExchange {
    let mut conn = HttpConnection::new(HttpLimits::default());
    let mut out = Vec::new();
    conn.feed(Stream::Request, req, 1, &mut out);
    for (i, piece) in resp.chunks(260).enumerate() {
        conn.feed(Stream::Response, piece, 2 + i as u64, &mut out);
    }
    assert_eq!(out.len(), 1);
    out.remove(0).into_http()
}

/// A `gpt-4o` chat stream without usage whose prompt has `prompt_bytes` of English text.
fn bpe_exchange(prompt_bytes: usize) -> HttpExchange {
    let sentence = "The keeper climbed the stairs at dusk, lit the lamp, and watched the sea. ";
    let text: String = sentence.chars().cycle().take(prompt_bytes).collect();
    let body = format!(
        r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"{text}"}}],"stream":true,"max_tokens":64}}"#
    );
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let resp = sse_response_of("gpt-4o", false);
    let mut limits = HttpLimits::default();
    limits.max_body_capture_bytes = limits.max_body_capture_bytes.max(prompt_bytes + 4096);
    let mut conn = HttpConnection::new(limits);
    let mut out = Vec::new();
    conn.feed(Stream::Request, req.as_bytes(), 1, &mut out);
    conn.feed(Stream::Response, &resp, 2, &mut out);
    assert_eq!(out.len(), 1);
    out.remove(0).into_http()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The BPE's one-off cost: load time and resident memory, printed (not a criterion figure).
fn bpe_load_cost(ex: &HttpExchange) {
    let before = rss_kib();
    let started = std::time::Instant::now();
    let facts = llm::analyze(ex, &[]).expect("an LLM exchange");
    let spent = started.elapsed();
    let after = rss_kib();
    assert!(facts.estimated);
    println!(
        "llm/bpe_load: o200k BPE loaded in {:.0} ms, RSS {} -> {} KiB (+{:.1} MiB); prompt estimate {} tokens",
        spent.as_secs_f64() * 1e3,
        before,
        after,
        after.saturating_sub(before) as f64 / 1024.0,
        facts.usage.prompt
    );
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("llm");
    g.throughput(Throughput::Elements(1));
    let req = request();
    let sse = sse_response();
    let ex = parse(&req, &sse);
    let facts = llm::analyze(&ex, &[]).expect("an LLM exchange");
    assert_eq!((facts.usage.prompt, facts.usage.completion), (42, 200));
    assert_eq!(facts.content_events, CHUNKS as u64);
    g.bench_function("analyze_sse_200", |b| {
        b.iter(|| llm::analyze(black_box(&ex), &[]))
    });
    let json = parse(&req, &json_response());
    assert!(llm::analyze(&json, &[]).is_some());
    g.bench_function("analyze_json_200", |b| {
        b.iter(|| llm::analyze(black_box(&json), &[]))
    });
    g.bench_function("parse_and_analyze_sse_200", |b| {
        b.iter(|| llm::analyze(&parse(black_box(&req), black_box(&sse)), &[]))
    });
    let small = bpe_exchange(300);
    let big = bpe_exchange(64 * 1024 - 200);
    let load = std::sync::Once::new();
    g.bench_function("estimate_bpe_300b", |b| {
        // Only when an estimate bench runs: the load would sit in the others' profiles.
        load.call_once(|| bpe_load_cost(&small));
        b.iter(|| llm::analyze(black_box(&small), &[]))
    });
    g.bench_function("estimate_bpe_64k", |b| {
        load.call_once(|| bpe_load_cost(&small));
        b.iter(|| llm::analyze(black_box(&big), &[]))
    });
    g.finish();
}

criterion_group!(llm_benches, benches);

fn main() {
    llm_benches();
    Criterion::default().configure_from_args().final_summary();
}
