//! An LLM response's facts: from the whole JSON body, or from a stream's kept events (the
//! tap's first and last events; those between are counted, and in a token stream they are
//! content deltas).

use serde_json::Value;

use super::{
    estimate,
    stream::{self, Info, UsagePatch},
    typed, Flavour, LlmFacts, RequestFacts, Usage, UsageSource,
};
use crate::http::{
    tap::{TapKind, TappedStream},
    HttpExchange,
};

pub(super) fn analyze(flavour: Flavour, req: &RequestFacts, ex: &HttpExchange) -> LlmFacts {
    let mut facts = LlmFacts {
        flavour,
        provider: flavour.provider(),
        model_requested: req.model.clone(),
        model: None,
        stream: req.stream,
        max_tokens: req.max_tokens,
        messages: req.messages,
        tools_declared: req.tools.clone(),
        tools_called: Vec::new(),
        usage: Usage::default(),
        usage_source: UsageSource::None,
        estimated: false,
        ttft_ns: None,
        inter_token_ns: None,
        content_events: 0,
        complete: false,
    };
    let Some(status) = ex.status else {
        return facts;
    };
    let kind = ex
        .response_headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .and_then(|(_, v)| TapKind::for_content_type(v));
    let read = match (kind, &ex.response_tap) {
        (Some(k @ (TapKind::Events | TapKind::Lines)), Some(tap)) => {
            facts.stream = true;
            read_stream(flavour, tap, k == TapKind::Events, ex, &mut facts)
        }
        _ => read_body(flavour, ex, &mut facts),
    };
    let failed = !(200..300).contains(&status);
    // The prompt's estimate, should the answer not report it: BPE-counted for OpenAI-family
    // models when the request body was captured whole, else the request's own.
    let prompt_estimate = |model: &str| {
        let whole = !ex.request_truncated && ex.request_body.len() as u64 == ex.request_body_bytes;
        whole
            .then(|| estimate::bpe_prompt_tokens(model, &ex.request_body))
            .flatten()
            .unwrap_or(req.prompt_estimate)
    };
    match read.usage {
        Some(patch) => {
            facts.usage_source = UsageSource::Reported;
            facts.usage = Usage {
                prompt: patch.prompt.unwrap_or(0),
                completion: patch.completion.unwrap_or(0),
                cached: patch.cached.unwrap_or(0),
                reasoning: patch.reasoning.unwrap_or(0),
            };
            // A report missing a side, or a stream cut before its final report: the
            // missing side is estimated (the completion at least what the stream carried).
            if patch.prompt.is_none() && !flavour.is_embedding() {
                facts.usage.prompt = prompt_estimate(facts.model_name());
                facts.estimated = true;
            }
            if facts.stream && !facts.complete {
                let seen = read.completion_estimate;
                if seen > facts.usage.completion {
                    facts.usage.completion = seen;
                }
                facts.estimated = true;
            }
        }
        // Errors are not billed: zero, truthfully.
        None if failed => {}
        None => {
            facts.usage_source = UsageSource::Estimated;
            facts.estimated = true;
            facts.usage.prompt = prompt_estimate(facts.model_name());
            facts.usage.completion = if flavour.is_embedding() {
                0
            } else {
                read.completion_estimate
            };
        }
    }
    facts
}

/// What reading a response gave, besides what it set in the facts.
struct Read {
    usage: Option<UsagePatch>,
    /// Completion tokens the content suggests (streams: content events; bodies: chars / 4).
    completion_estimate: u64,
}

fn absorb(facts: &mut LlmFacts, usage: &mut Option<UsagePatch>, info: &Info) {
    if facts.model.is_none() {
        facts.model.clone_from(&info.model);
    }
    if let Some(patch) = info.usage {
        usage.get_or_insert_with(UsagePatch::default).apply(patch);
    }
    facts.complete |= info.done;
}

fn read_body(flavour: Flavour, ex: &HttpExchange, facts: &mut LlmFacts) -> Read {
    let mut read = Read {
        usage: None,
        completion_estimate: 0,
    };
    let whole = ex.response_body.len() as u64 == ex.response_body_bytes && !ex.response_truncated;
    let tail = ex
        .response_tap
        .as_ref()
        .and_then(|t| t.tail.first().map(|r| (t, r)));
    let joined;
    let body: &[u8] = if whole {
        &ex.response_body
    } else if let Some((tap, r)) = tail.filter(|(t, r)| {
        t.tail_adjoins_prefix
            && !r.cut
            && (ex.response_body.len() + r.data.len()) as u64 == ex.response_body_bytes
    }) {
        let _ = tap;
        joined = [&ex.response_body[..], &r.data[..]].concat();
        &joined
    } else {
        // The middle of the body is gone: the usage report at its end may still be there.
        let end = tail.map_or(&ex.response_body[..], |(_, r)| &r.data[..]);
        read.usage = stream::usage_in_tail(flavour, end);
        facts.complete = read.usage.is_some();
        read.completion_estimate = estimate::tokens_of_bytes(ex.response_body_bytes);
        return read;
    };
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return read;
    };
    // A streamed JSON array (Gemini `streamGenerateContent` without `alt=sse`) reads as
    // its elements in turn.
    let items: Vec<&Value> = match &v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut chars = 0u64;
    for item in items {
        let info = stream::read(flavour, item, &mut facts.tools_called);
        chars += info.text_chars;
        absorb(facts, &mut read.usage, &info);
    }
    if !matches!(flavour, Flavour::OllamaChat | Flavour::OllamaGenerate) {
        // A whole body is complete even without an explicit end marker.
        facts.complete = true;
    }
    read.completion_estimate = estimate::tokens_of_chars(chars);
    read
}

fn read_stream(
    flavour: Flavour,
    tap: &TappedStream,
    sse: bool,
    ex: &HttpExchange,
    facts: &mut LlmFacts,
) -> Read {
    let mut usage = None;
    let mut first: Option<u64> = None;
    let mut last: Option<u64> = None;
    let mut count = 0u64;
    let mut saw_done = false;
    let head_len = tap.head.len();
    for (i, record) in tap.records().enumerate() {
        if i == head_len && first.is_some() {
            // The events between head and tail were not kept: in a token stream, deltas.
            count += tap.skipped;
        }
        let data = stream::payload(&record.data, sse);
        if data.as_ref() == b"[DONE]" {
            saw_done = true;
            continue;
        }
        if data.is_empty() {
            continue;
        }
        if record.cut {
            // Only the end of a long event (a Responses `response.completed` with the whole
            // output): its usage report is still readable.
            if let Some(patch) = stream::usage_in_tail(flavour, &data) {
                usage.get_or_insert_with(UsagePatch::default).apply(patch);
                facts.complete |= !record.unfinished;
            }
            continue;
        }
        // Once the model is known, a plain token event needs no parsing (the bulk of a stream).
        if facts.model.is_some() && stream::plain_content_delta(flavour, &data) {
            first.get_or_insert(record.ts_ns);
            last = Some(record.ts_ns);
            count += 1;
            continue;
        }
        // Typed where the shape allows (no `Value` tree), else generically.
        let info = typed::read(flavour, &data, &mut facts.tools_called).or_else(|| {
            let v = serde_json::from_slice::<Value>(&data).ok()?;
            Some(stream::read(flavour, &v, &mut facts.tools_called))
        });
        let Some(info) = info else {
            continue;
        };
        absorb(facts, &mut usage, &info);
        if info.content {
            first.get_or_insert(record.ts_ns);
            last = Some(record.ts_ns);
            count += 1;
        }
    }
    facts.complete |= saw_done;
    if tap.records().last().is_some_and(|r| r.unfinished) && !saw_done {
        facts.complete = false;
    }
    facts.content_events = count;
    let sent = ex.request_end_ns.unwrap_or(ex.request_start_ns);
    facts.ttft_ns = first.map(|f| f.saturating_sub(sent));
    if let (Some(f), Some(l)) = (first, last) {
        if count >= 2 {
            facts.inter_token_ns = Some(l.saturating_sub(f) / (count - 1));
        }
    }
    Read {
        usage,
        // Servers stream about one token per content event.
        completion_estimate: count,
    }
}
