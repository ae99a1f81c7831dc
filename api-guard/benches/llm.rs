//! LLM analysis cost per exchange (`cargo xtask bench llm`): a chat completion streamed as
//! 200 vLLM-style SSE chunks (role chunk, 200 content deltas, finish chunk, usage chunk,
//! `[DONE]`) and the same answer as one JSON body. `analyze_*` is the work the parsing task
//! adds per LLM exchange (recognition, request facts, usage, TTFT); `parse_and_analyze_sse_200`
//! includes the HTTP parsing and the response tap.

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

fn chunk(delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-8f1c\",\"object\":\"chat.completion.chunk\",\"created\":1733400000,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}],\"usage\":null}}\n\n"
    )
}

/// The streamed response, one HTTP chunk per event.
fn sse_response() -> Vec<u8> {
    let mut events = vec![chunk(r#"{"role":"assistant","content":""}"#, "null")];
    for i in 0..CHUNKS {
        events.push(chunk(&format!("{{\"content\":\" word{i}\"}}"), "null"));
    }
    events.push(chunk("{}", "\"length\""));
    events.push("data: {\"id\":\"chatcmpl-8f1c\",\"object\":\"chat.completion.chunk\",\"created\":1733400000,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"choices\":[],\"usage\":{\"prompt_tokens\":42,\"total_tokens\":242,\"completion_tokens\":200}}\n\n".into());
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
    out.remove(0)
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
    g.finish();
}

criterion_group!(llm_benches, benches);

fn main() {
    llm_benches();
    Criterion::default().configure_from_args().final_summary();
}
