//! Transcripts of each flavour (shaped byte for byte like what vLLM, OpenAI, Anthropic, Ollama
//! and Gemini send), driven through the HTTP layer whole and split at every byte.

use super::*;
use crate::http::{HttpConnection, HttpLimits, Stream};

const CHAT_REQ: &str = r#"{"model":"qwen2.5-7b","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello twice"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":64,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}]}"#;

/// vLLM: a role-only first chunk, content deltas, a finish chunk, then the usage chunk with
/// empty choices.
const VLLM_STREAM: &[&str] = &[
    r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"qwen2.5-7b","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"qwen2.5-7b","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"qwen2.5-7b","choices":[{"index":0,"delta":{"content":" hello"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"qwen2.5-7b","choices":[{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":"stop","stop_reason":null}],"usage":null}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"qwen2.5-7b","choices":[],"usage":{"prompt_tokens":21,"total_tokens":24,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":16}}}"#,
    "[DONE]",
];

/// Usage in the last chunk that still has choices (some OpenAI-compatible servers), with
/// reasoning tokens.
const USAGE_WITH_CHOICES: &[&str] = &[
    r#"{"id":"c2","object":"chat.completion.chunk","model":"o-mini","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#,
    r#"{"id":"c2","object":"chat.completion.chunk","model":"o-mini","choices":[{"index":0,"delta":{"content":"42"},"finish_reason":null}]}"#,
    r#"{"id":"c2","object":"chat.completion.chunk","model":"o-mini","choices":[{"index":0,"delta":{"content":"."},"finish_reason":"stop"}],"usage":{"prompt_tokens":30,"completion_tokens":70,"total_tokens":100,"completion_tokens_details":{"reasoning_tokens":68}}}"#,
    "[DONE]",
];

const ANTHROPIC_REQ: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Hi"}],"tools":[{"name":"lookup","input_schema":{}}]}"#;

/// Anthropic: `message_start` then cumulative `message_delta` counts.
const ANTHROPIC_STREAM: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5-20250929\",\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":10,\"output_tokens\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: ping\ndata: {\"type\": \"ping\"}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"lookup\",\"input\":{}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":8}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":15}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

const OLLAMA_REQ: &str =
    r#"{"model":"llama3.2","messages":[{"role":"user","content":"why is the sky blue?"}]}"#;
const OLLAMA_STREAM: &str = "{\"model\":\"llama3.2\",\"created_at\":\"2025-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Ray\"},\"done\":false}\n\
{\"model\":\"llama3.2\",\"created_at\":\"2025-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"leigh\"},\"done\":false}\n\
{\"model\":\"llama3.2\",\"created_at\":\"2025-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":\"stop\",\"done\":true,\"total_duration\":4883583458,\"prompt_eval_count\":26,\"prompt_eval_duration\":342546000,\"eval_count\":2,\"eval_duration\":4535599000}\n";

const RESPONSES_REQ: &str =
    r#"{"model":"gpt-4.1","input":"Tell me a joke","stream":true,"max_output_tokens":200}"#;
const RESPONSES_STREAM: &str = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],\"usage\":null}}\n\n\
event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Why\"}\n\n\
event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":5,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\" not?\"}\n\n\
event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":9,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"Why not?\"}]}],\"usage\":{\"input_tokens\":12,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":3,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":15}}}\n\n";

const GEMINI_STREAM: &str = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 5,\"candidatesTokenCount\": 1,\"totalTokenCount\": 6},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" there\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 5,\"candidatesTokenCount\": 2,\"thoughtsTokenCount\": 7,\"totalTokenCount\": 14},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n";

fn sse(events: &[&str]) -> String {
    events.iter().map(|e| format!("data: {e}\n\n")).collect()
}

fn request(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: llm\r\nAuthorization: Bearer sk-test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A chunked response (how uvicorn and most servers stream), one chunk per `piece`.
fn chunked(status: u16, content_type: &str, pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for p in pieces.iter().filter(|p| !p.is_empty()) {
        out.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Runs one exchange: the response fed in `cuts` pieces, piece `i` at time `100 + i`.
fn run(limits: HttpLimits, req: &[u8], resp: &[&[u8]], close: bool) -> Option<LlmFacts> {
    let mut conn = HttpConnection::new(limits);
    let mut out = Vec::new();
    conn.feed(Stream::Request, req, 10, &mut out);
    for (i, piece) in resp.iter().enumerate() {
        conn.feed(Stream::Response, piece, 100 + i as u64, &mut out);
    }
    if close {
        conn.close(1000, &mut out);
    }
    assert_eq!(out.len(), 1, "one exchange");
    analyze(&out[0], &[])
}

/// The facts of `resp` fed whole; asserts that every two-piece split gives the same.
fn facts(req: &[u8], resp: &[u8]) -> LlmFacts {
    let whole = run(HttpLimits::default(), req, &[resp], false).expect("an LLM exchange");
    for cut in 0..=resp.len() {
        let split = run(
            HttpLimits::default(),
            req,
            &[&resp[..cut], &resp[cut..]],
            false,
        )
        .expect("an LLM exchange");
        // Times follow the pieces; everything else must not depend on the split.
        let mut norm = split.clone();
        norm.ttft_ns = whole.ttft_ns;
        norm.inter_token_ns = whole.inter_token_ns;
        assert_eq!(norm, whole, "cut at {cut}");
    }
    whole
}

fn usage(prompt: u64, completion: u64, cached: u64, reasoning: u64) -> Usage {
    Usage {
        prompt,
        completion,
        cached,
        reasoning,
    }
}

#[test]
fn vllm_stream_with_usage_chunk() {
    let body = sse(VLLM_STREAM);
    let resp = chunked(200, "text/event-stream; charset=utf-8", &[body.as_bytes()]);
    let f = facts(&request("/v1/chat/completions", CHAT_REQ), &resp);
    assert_eq!(
        (f.flavour, f.provider),
        (Flavour::OpenaiChat, Provider::Openai)
    );
    assert_eq!(f.model.as_deref(), Some("qwen2.5-7b"));
    assert_eq!(f.model_requested.as_deref(), Some("qwen2.5-7b"));
    assert_eq!(
        (f.stream, f.max_tokens, f.messages),
        (true, Some(64), Some(2))
    );
    assert_eq!(f.tools_declared, ["get_weather"]);
    assert_eq!(f.usage, usage(21, 3, 16, 0));
    assert_eq!(
        (f.usage_source, f.estimated, f.complete),
        (UsageSource::Reported, false, true)
    );
    // The role-only first chunk is not a token.
    assert_eq!(f.content_events, 3);
}

#[test]
fn ttft_is_the_first_content_delta_and_intervals_are_between_content_events() {
    let events: Vec<String> = VLLM_STREAM
        .iter()
        .map(|e| format!("data: {e}\n\n"))
        .collect();
    let pieces: Vec<&[u8]> = events.iter().map(|e| e.as_bytes()).collect();
    let resp = chunked(200, "text/event-stream", &pieces);
    // Head alone, then each chunk (with its framing) in its own piece.
    let head_end = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut parts: Vec<&[u8]> = vec![&resp[..head_end]];
    let mut at = head_end;
    for e in &events {
        let len = format!("{:x}\r\n", e.len()).len() + e.len() + 2;
        parts.push(&resp[at..at + len]);
        at += len;
    }
    parts.push(&resp[at..]);
    let f = run(
        HttpLimits::default(),
        &request("/v1/chat/completions", CHAT_REQ),
        &parts,
        false,
    )
    .unwrap();
    // Request ends at 10; the head arrives at 100, the role chunk at 101, "Hello" at 102.
    assert_eq!(f.ttft_ns, Some(92));
    // Content at 102, 103, 104: two intervals of 1.
    assert_eq!(f.inter_token_ns, Some(1));
}

#[test]
fn usage_in_a_last_chunk_that_still_has_choices() {
    let body = sse(USAGE_WITH_CHOICES);
    let resp = chunked(200, "text/event-stream", &[body.as_bytes()]);
    let req = r#"{"model":"o-mini","messages":[{"role":"user","content":"q"}],"stream":true}"#;
    let f = facts(&request("/v1/chat/completions", req), &resp);
    assert_eq!(f.usage, usage(30, 70, 0, 68));
    assert_eq!((f.content_events, f.estimated), (2, false));
}

#[test]
fn a_stream_without_usage_is_estimated_never_zero() {
    let events: Vec<&str> = VLLM_STREAM
        .iter()
        .copied()
        .filter(|e| !e.contains("\"usage\":{"))
        .collect();
    let body = sse(&events);
    let resp = chunked(200, "text/event-stream", &[body.as_bytes()]);
    let f = facts(&request("/v1/chat/completions", CHAT_REQ), &resp);
    assert_eq!(
        (f.usage_source, f.estimated),
        (UsageSource::Estimated, true)
    );
    // Three content events; the prompt's 24 characters of text at 4 a token.
    assert_eq!(f.usage, usage(6, 3, 0, 0));
}

#[test]
fn an_openai_model_without_usage_has_its_prompt_counted_with_the_bpe() {
    let events: Vec<String> = VLLM_STREAM
        .iter()
        .filter(|e| !e.contains("\"usage\":{"))
        .map(|e| e.replace("qwen2.5-7b", "gpt-4o-mini"))
        .collect();
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    let body = sse(&events);
    let resp = chunked(200, "text/event-stream", &[body.as_bytes()]);
    let req = CHAT_REQ.replace("qwen2.5-7b", "gpt-4o-mini");
    let f = facts(&request("/v1/chat/completions", &req), &resp);
    assert_eq!(
        (f.usage_source, f.estimated),
        (UsageSource::Estimated, true)
    );
    // "Be brief." (3 tokens) and "Say hello twice" (3) with o200k, 2 messages x 3 + 3
    // framing; the completion one token per content event.
    assert_eq!(f.usage, usage(3 + 3 + 9, 3, 0, 0));
    // The request-time reservation stays at 4 characters a token (24 characters).
    let (_, rf) = analyze_with_request(
        &run_exchange(&request("/v1/chat/completions", &req), &resp),
        &[],
    )
    .unwrap();
    assert_eq!(rf.prompt_estimate, 6);
}

/// One exchange of `req` and `resp`, fed whole.
fn run_exchange(req: &[u8], resp: &[u8]) -> crate::http::HttpExchange {
    let mut conn = HttpConnection::new(HttpLimits::default());
    let mut out = Vec::new();
    conn.feed(Stream::Request, req, 10, &mut out);
    conn.feed(Stream::Response, resp, 100, &mut out);
    out.remove(0).into_http()
}

#[test]
fn an_aborted_stream_counts_what_was_streamed_as_an_estimate() {
    let body = sse(&VLLM_STREAM[..3]);
    let resp = chunked(200, "text/event-stream", &[body.as_bytes()]);
    // Cut the chunked body after the third event: no last chunk, the connection closes.
    let end = resp.len() - 5;
    let f = run(
        HttpLimits::default(),
        &request("/v1/chat/completions", CHAT_REQ),
        &[&resp[..end]],
        true,
    )
    .unwrap();
    assert!(!f.complete && f.estimated);
    assert_eq!(f.usage.completion, 2);
}

#[test]
fn anthropic_cumulative_deltas_are_never_summed() {
    let resp = chunked(200, "text/event-stream", &[ANTHROPIC_STREAM.as_bytes()]);
    let f = facts(&request("/v1/messages", ANTHROPIC_REQ), &resp);
    assert_eq!(
        (f.flavour, f.provider),
        (Flavour::AnthropicMessages, Provider::Anthropic)
    );
    assert_eq!(f.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
    assert_eq!(f.usage, usage(25, 15, 10, 0));
    assert_eq!((f.estimated, f.complete), (false, true));
    assert_eq!(f.tools_called, ["lookup"]);
    assert_eq!(f.tools_declared, ["lookup"]);
    // "Hello", "!" and the tool input delta.
    assert_eq!(f.content_events, 3);
}

#[test]
fn anthropic_stream_cut_before_its_final_count() {
    let cut = ANTHROPIC_STREAM.find("event: content_block_stop").unwrap();
    let resp = chunked(
        200,
        "text/event-stream",
        &[&ANTHROPIC_STREAM.as_bytes()[..cut]],
    );
    let end = resp.len() - 5;
    let f = run(
        HttpLimits::default(),
        &request("/v1/messages", ANTHROPIC_REQ),
        &[&resp[..end]],
        true,
    )
    .unwrap();
    // The input count is reported; the output is what was streamed, flagged.
    assert_eq!((f.usage.prompt, f.usage.completion), (25, 2));
    assert_eq!(
        (f.usage_source, f.estimated, f.complete),
        (UsageSource::Reported, true, false)
    );
}

#[test]
fn ollama_ndjson_final_counts() {
    let resp = chunked(200, "application/x-ndjson", &[OLLAMA_STREAM.as_bytes()]);
    let f = facts(&request("/api/chat", OLLAMA_REQ), &resp);
    assert_eq!((f.flavour, f.stream), (Flavour::OllamaChat, true));
    assert_eq!(f.usage, usage(26, 2, 0, 0));
    assert_eq!(
        (f.content_events, f.complete, f.estimated),
        (2, true, false)
    );
}

#[test]
fn responses_stream_completed_event() {
    let resp = chunked(200, "text/event-stream", &[RESPONSES_STREAM.as_bytes()]);
    let f = facts(&request("/v1/responses", RESPONSES_REQ), &resp);
    assert_eq!(f.flavour, Flavour::OpenaiResponses);
    assert_eq!(f.model.as_deref(), Some("gpt-4.1-2025-04-14"));
    assert_eq!((f.max_tokens, f.messages), (Some(200), Some(1)));
    assert_eq!(f.usage, usage(12, 3, 0, 0));
    assert_eq!((f.content_events, f.complete), (2, true));
}

#[test]
fn gemini_sse_last_usage_metadata_wins() {
    let req = r#"{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],"generationConfig":{"maxOutputTokens":50}}"#;
    let resp = chunked(200, "text/event-stream", &[GEMINI_STREAM.as_bytes()]);
    let f = facts(
        &request("/v1beta/models/gemini-2.5-flash:streamGenerateContent", req),
        &resp,
    );
    assert_eq!(
        (f.flavour, f.stream, f.max_tokens),
        (Flavour::Gemini, true, Some(50))
    );
    assert_eq!(f.model_requested.as_deref(), Some("gemini-2.5-flash"));
    assert_eq!(f.usage, usage(5, 2, 0, 7));
}

#[test]
fn plain_json_with_reasoning_cached_and_tool_calls() {
    let body = r#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99,"prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":5}}}"#;
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let req = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"weather?"}]}"#;
    let f = facts(&request("/v1/chat/completions", req), resp.as_bytes());
    assert_eq!(f.usage, usage(82, 17, 64, 5));
    assert_eq!((f.stream, f.complete, f.estimated), (false, true, false));
    assert_eq!(f.tools_called, ["get_weather"]);
    assert_eq!(f.model.as_deref(), Some("gpt-4o-2024-08-06"));
}

#[test]
fn errors_cost_nothing_and_say_so() {
    let body = r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#;
    let resp = format!(
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let f = facts(&request("/v1/chat/completions", CHAT_REQ), resp.as_bytes());
    assert_eq!(
        (f.usage, f.usage_source, f.estimated),
        (Usage::default(), UsageSource::None, false)
    );
}

#[test]
fn embeddings_report_prompt_tokens_only() {
    let body = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let req = r#"{"model":"text-embedding-3-small","input":"The food was delicious"}"#;
    let f = facts(&request("/v1/embeddings", req), resp.as_bytes());
    assert_eq!(
        (f.flavour, f.usage),
        (Flavour::OpenaiEmbeddings, usage(8, 0, 0, 0))
    );
}

#[test]
fn long_streams_beyond_the_body_prefix_are_read_to_their_end() {
    let mut events = vec![VLLM_STREAM[0].to_owned()];
    for i in 0..500 {
        events.push(format!(
            r#"{{"id":"c1","object":"chat.completion.chunk","created":1,"model":"qwen2.5-7b","choices":[{{"index":0,"delta":{{"content":"t{i}"}},"finish_reason":null}}],"usage":null}}"#
        ));
    }
    events.push(r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"qwen2.5-7b","choices":[],"usage":{"prompt_tokens":21,"completion_tokens":500,"total_tokens":521}}"#.to_owned());
    events.push("[DONE]".to_owned());
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    let body = sse(&refs);
    let resp = chunked(200, "text/event-stream", &[body.as_bytes()]);
    let limits = HttpLimits {
        max_body_capture_bytes: 1024,
        ..HttpLimits::default()
    };
    let f = run(
        limits,
        &request("/v1/chat/completions", CHAT_REQ),
        &resp.chunks(700).collect::<Vec<_>>(),
        false,
    )
    .unwrap();
    assert_eq!(f.usage, usage(21, 500, 0, 0));
    assert_eq!((f.content_events, f.complete), (500, true));
}

#[test]
fn long_json_bodies_keep_their_usage() {
    let text = "x".repeat(100_000);
    let body = format!(
        r#"{{"id":"m","type":"message","role":"assistant","model":"claude-x","content":[{{"type":"text","text":"{text}"}}],"usage":{{"input_tokens":9,"output_tokens":25000}}}}"#
    );
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let req =
        r#"{"model":"claude-x","max_tokens":30000,"messages":[{"role":"user","content":"long"}]}"#;
    let f = run(
        HttpLimits::default(),
        &request("/v1/messages", req),
        &[resp.as_bytes()],
        false,
    )
    .unwrap();
    assert_eq!(f.usage, usage(9, 25000, 0, 0));
    assert!(!f.estimated);
}

#[test]
fn recognition_needs_path_and_shape() {
    let not_llm = r#"{"name":"x"}"#;
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert!(run(
        HttpLimits::default(),
        &request("/v1/chat/completions", not_llm),
        &[resp],
        false
    )
    .is_none());
    assert!(run(
        HttpLimits::default(),
        &request("/v1/users", CHAT_REQ),
        &[resp],
        false
    )
    .is_none());
    assert_eq!(
        Flavour::of_path("/api/embeddings"),
        Some(Flavour::OllamaEmbed)
    );
    assert_eq!(
        Flavour::of_path("/openai/v1/completions/"),
        Some(Flavour::OpenaiCompletions)
    );
}

#[test]
fn names_are_reduced_to_a_safe_charset() {
    assert_eq!(safe_name("gpt-4o\n<script>", 96), "gpt-4o__script_");
    assert_eq!(
        safe_name(&"m".repeat(200), MAX_MODEL_LEN).len(),
        MAX_MODEL_LEN
    );
}
