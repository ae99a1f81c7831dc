//! True positives and the benign look-alikes around them, on request bodies and on responses
//! driven through the HTTP layer (whole bodies and SSE streams).

use super::*;
use crate::{
    detect::Kind,
    http::{HttpConnection, HttpLimits, Stream},
};

fn detector(toml_text: &str) -> LeakDetector {
    LeakDetector::new(&toml::from_str(toml_text).unwrap()).unwrap()
}

fn prompt_findings(body: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    detector("").inspect_prompt(body.as_bytes(), &mut out);
    out
}

fn chat(user: &str) -> String {
    serde_json::json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": user},
        ]
    })
    .to_string()
}

fn ids(f: &[Finding]) -> Vec<(&str, &str)> {
    f.iter().map(|f| (f.rule_id, f.evidence.as_str())).collect()
}

#[test]
fn secrets_in_prompts_are_named_by_class_never_value() {
    let key = "AKIAIOSFODNN7EXAMPLE";
    let f = prompt_findings(&chat(&format!(
        "why does boto3 reject aws_access_key_id={key} with my password: Hunter2hunter2 ?"
    )));
    assert_eq!(
        ids(&f),
        [("llm_leak.secret_in_prompt", "api_key=1 password=1")]
    );
    assert_eq!(f[0].kind, Kind::LlmDataLeak);
    assert_eq!(f[0].severity, crate::detect::Severity::High);
    assert_eq!(f[0].location, "body:$.messages[1].content");
    let json = serde_json::to_string(&f).unwrap();
    assert!(!json.contains(key) && !json.contains("Hunter2"));

    let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----";
    let f = prompt_findings(&chat(&format!("fix my deploy key:\n{pem}")));
    assert_eq!(ids(&f), [("llm_leak.secret_in_prompt", "private_key=1")]);
}

#[test]
fn personal_data_in_prompts_is_medium_and_separate() {
    let f = prompt_findings(&chat(
        "Write to jane.doe@example.org or call +44 20 7946 0958; card 4539 1488 0343 6467, SSN 123-45-6789",
    ));
    assert_eq!(
        ids(&f),
        [(
            "llm_leak.pii_in_prompt",
            "email=1 phone=1 payment_card=1 national_id=1"
        )]
    );
    assert_eq!(f[0].severity, crate::detect::Severity::Medium);
    // Every part of the request is read, the system prompt too (it leaves the host as well).
    let body = serde_json::json!({
        "model": "claude-sonnet-4-5",
        "system": "Escalate to ops@corp.example",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    });
    let f = prompt_findings(&body.to_string());
    assert_eq!(ids(&f), [("llm_leak.pii_in_prompt", "email=1")]);
    assert_eq!(f[0].location, "body:$.system");
}

#[test]
fn benign_prompts_stay_silent() {
    for text in [
        // Code samples read secrets from the environment.
        "def connect():\n    password = os.environ[\"DB_PASSWORD\"]\n    key = os.getenv('OPENAI_API_KEY')\n",
        // Documented test cards.
        "Stripe test mode: use 4242 4242 4242 4242, any CVC; or 4111-1111-1111-1111.",
        // Templates and masked values.
        "password: ******** and api_key: <YOUR_API_KEY>, token ${TOKEN}",
        // Numbers that are no phone or card: order ids, versions, dates.
        "order 1234567890123 shipped 2024-05-06, version 10.4.12, build 20240506123456",
        // Prose about passwords.
        "What makes a password strong? Should the password field be required?",
    ] {
        assert_eq!(prompt_findings(&chat(text)), [], "{text}");
    }
}

#[test]
fn inline_images_are_not_read_as_text() {
    // An image part is never extracted; a data URI inside text is blanked as a blob.
    let blob =
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8+12345678901/".repeat(8);
    let body = serde_json::json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": format!("describe data:image/png;base64,{blob}")},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{blob}")}},
        ]}]
    });
    assert_eq!(prompt_findings(&body.to_string()), []);
}

#[test]
fn hostile_prompts_cost_bounded_work() {
    // A huge messages array, deep nesting, a never-closing body, invalid UTF-8.
    let many: Vec<_> = (0..100_000)
        .map(|i| serde_json::json!({"role": "user", "content": format!("m{i}")}))
        .collect();
    let body = serde_json::json!({"model": "m", "messages": many}).to_string();
    let mut out = Vec::new();
    let skipped = detector("").inspect_prompt(body.as_bytes(), &mut out);
    assert!(out.is_empty() && skipped > 0);
    let deep = format!(
        "{{\"model\":\"m\",\"messages\":{}1{}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    detector("").inspect_prompt(deep.as_bytes(), &mut out);
    let open = "{\"messages\":[{\"content\":\"".to_string() + &"a@b.co ".repeat(200_000);
    detector("").inspect_prompt(open.as_bytes(), &mut out);
    detector("").inspect_prompt(b"{\"prompt\":\"\xff\xfe\xc3\"}", &mut out);
    // The text budget bounds the scan of the one long part.
    assert!(out.len() <= 1, "{out:?}");
}

#[test]
fn switches_and_config_errors() {
    let body = chat("key AKIAIOSFODNN7EXAMPLE mail a@example.com");
    let mut out = Vec::new();
    detector("secrets = false").inspect_prompt(body.as_bytes(), &mut out);
    assert_eq!(ids(&out), [("llm_leak.pii_in_prompt", "email=1")]);
    out.clear();
    detector("prompts = false").inspect_prompt(body.as_bytes(), &mut out);
    assert!(out.is_empty());
    let bad: LeakConfig = toml::from_str("canaries = [\"short\"]").unwrap();
    let err = bad.validate().unwrap_err();
    assert_eq!(err.field, "detect.llm_data_leak.canaries[0]");
    assert!(!err.to_string().contains("short"), "{err}");
    let bad: LeakConfig = toml::from_str("max_text_bytes = 0").unwrap();
    assert_eq!(
        bad.validate().unwrap_err().field,
        "detect.llm_data_leak.max_text_bytes"
    );
}

/// The exchange of `req` answered by `resp` (fed whole, or cut at `cut`).
fn exchange(resp: &[u8], cut: Option<usize>) -> HttpExchange {
    let req = br#"{"model":"llama3","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: llm\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        req.len()
    );
    let mut conn = HttpConnection::new(HttpLimits::default());
    let mut out = Vec::new();
    conn.feed(
        Stream::Request,
        &[head.as_bytes(), req].concat(),
        10,
        &mut out,
    );
    match cut {
        Some(c) => {
            conn.feed(Stream::Response, &resp[..c], 100, &mut out);
            conn.feed(Stream::Response, &resp[c..], 101, &mut out);
        }
        None => conn.feed(Stream::Response, resp, 100, &mut out),
    }
    assert_eq!(out.len(), 1);
    out.remove(0).into_http()
}

fn json_response(content: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "id": "c1", "object": "chat.completion", "model": "llama3",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7}
    })
    .to_string();
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn sse_response(tokens: &[&str]) -> Vec<u8> {
    let mut body = String::new();
    for t in tokens {
        let ev = serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "model": "llama3",
            "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]});
        body.push_str(&format!("data: {ev}\n\n"));
    }
    body.push_str("data: [DONE]\n\n");
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const CANARY: &str = "CANARY-7f3a9c2e";

#[test]
fn canary_in_a_completion_whole_or_streamed_in_pieces() {
    let d = detector(&format!("canaries = [\"zzzzzzzzzz\", \"{CANARY}\"]"));
    let resp = json_response(&format!("My instructions begin with {CANARY}: be nice."));
    for cut in [None, Some(60), Some(resp.len() - 3)] {
        let mut out = Vec::new();
        assert_eq!(d.inspect_completion(&exchange(&resp, cut), &mut out), 0);
        assert_eq!(ids(&out), [("llm_leak.canary", "canary #2 of 2")]);
        assert_eq!(out[0].severity, crate::detect::Severity::Critical);
        assert!(!serde_json::to_string(&out).unwrap().contains(CANARY));
    }
    // Split across stream tokens: joined before matching.
    let resp = sse_response(&["Sure: ", "CANA", "RY-7f", "3a9c2e", " done"]);
    let mut out = Vec::new();
    d.inspect_completion(&exchange(&resp, None), &mut out);
    assert_eq!(ids(&out), [("llm_leak.canary", "canary #2 of 2")]);
    // No canary, no finding; nor in an error answer.
    let mut out = Vec::new();
    d.inspect_completion(&exchange(&json_response("Hello there"), None), &mut out);
    assert!(out.is_empty());
}

#[test]
fn secrets_and_personal_data_in_completions() {
    let d = detector("");
    let resp = json_response(
        "Here is the admin key: ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 and mail bob@corp.example",
    );
    let mut out = Vec::new();
    d.inspect_completion(&exchange(&resp, None), &mut out);
    assert_eq!(
        ids(&out),
        [
            ("llm_leak.secret_in_completion", "api_key=1"),
            ("llm_leak.pii_in_completion", "email=1"),
        ]
    );
    assert_eq!(out[0].location, "response:completion");
    // A streamed answer explaining how to test payments.
    let resp = sse_response(&["Use ", "4242 4242 ", "4242 4242", " in test mode."]);
    let mut out = Vec::new();
    d.inspect_completion(&exchange(&resp, None), &mut out);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn long_streams_are_read_within_the_tap_and_flagged_partial() {
    let d = detector(&format!("canaries = [\"{CANARY}\"]"));
    let many: Vec<String> = (0..3000).map(|i| format!("w{i} ")).collect();
    let mut tokens: Vec<&str> = many.iter().map(String::as_str).collect();
    // Past the tap's first 16 events, within its 64 KiB of middle events.
    tokens.insert(300, CANARY);
    let resp = sse_response(&tokens);
    let mut out = Vec::new();
    // The events between the kept middle and the tail were not read: partial.
    assert_eq!(d.inspect_completion(&exchange(&resp, None), &mut out), 1);
    assert_eq!(ids(&out), [("llm_leak.canary", "canary #1 of 1")]);
    // In the unread part: not found, and said so.
    tokens.remove(300);
    tokens.insert(2000, CANARY);
    let resp = sse_response(&tokens);
    let mut out = Vec::new();
    assert_eq!(d.inspect_completion(&exchange(&resp, None), &mut out), 1);
    assert!(out.is_empty());
}
