//! Behaviour tests of the whole HTTP layer, driven through [`HttpConnection`].

mod corpus;
mod fields;
mod fuzz;
mod malformed;
mod notices;
mod scenarios;

use super::{ConnState, ExchangeSlot, HttpConnection, HttpLimits, Stream};

/// One thing that happens to a connection.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step<'a> {
    Req(&'a [u8]),
    Resp(&'a [u8]),
    Gap(Stream, u64),
    Close,
}

#[derive(Debug)]
pub(super) struct Outcome {
    pub exchanges: Vec<ExchangeSlot>,
    pub errors: u64,
    pub state: ConnState,
}

/// Timestamp of step `i`: every piece of a step is fed with the same one.
pub(super) fn ts(i: usize) -> u64 {
    (i as u64 + 1) * 1000
}

/// Runs `steps`, feeding each data step in the pieces `cut(step index, data)` returns.
pub(super) fn run_cut<'a>(
    limits: HttpLimits,
    steps: &[Step<'a>],
    mut cut: impl FnMut(usize, &'a [u8]) -> Vec<&'a [u8]>,
) -> Outcome {
    let mut conn = HttpConnection::new(limits);
    let mut exchanges = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        match *step {
            Step::Req(data) | Step::Resp(data) => {
                let stream = if matches!(step, Step::Req(_)) {
                    Stream::Request
                } else {
                    Stream::Response
                };
                for piece in cut(i, data) {
                    conn.feed(stream, piece, ts(i), &mut exchanges);
                    assert!(conn.buffered_bytes() <= limits.max_buffered_bytes());
                }
            }
            Step::Gap(stream, len) => conn.gap(stream, len, ts(i), &mut exchanges),
            Step::Close => conn.close(ts(i), &mut exchanges),
        }
    }
    Outcome {
        exchanges,
        errors: conn.parse_errors(),
        state: conn.state(),
    }
}

pub(super) fn run(steps: &[Step<'_>]) -> Outcome {
    run_cut(HttpLimits::default(), steps, |_, data| vec![data])
}

fn fingerprint(o: &Outcome) -> String {
    format!("{o:?}")
}

/// Runs `steps` whole, one byte at a time, and cut at every byte boundary (one cut per
/// run, over all data steps); all runs must give the same outcome, which is returned.
pub(super) fn run_all_splits(steps: &[Step<'_>]) -> Outcome {
    let whole = run(steps);
    let expected = fingerprint(&whole);
    let bytewise = run_cut(HttpLimits::default(), steps, |_, d| d.chunks(1).collect());
    assert_eq!(fingerprint(&bytewise), expected, "fed one byte at a time");
    let sizes: Vec<usize> = steps
        .iter()
        .map(|s| match s {
            Step::Req(d) | Step::Resp(d) => d.len(),
            _ => 0,
        })
        .collect();
    for (step, &len) in sizes.iter().enumerate() {
        for at in 1..len {
            let split = run_cut(HttpLimits::default(), steps, |i, d| {
                if i == step {
                    let (a, b) = d.split_at(at);
                    vec![a, b]
                } else {
                    vec![d]
                }
            });
            assert_eq!(fingerprint(&split), expected, "step {step} cut at {at}");
        }
    }
    whole
}

/// Headers as `(&str, &str)` pairs, for terse assertions.
pub(super) fn headers(h: &crate::http::Headers) -> Vec<(&str, &str)> {
    h.iter().collect()
}

/// The media type of a `Content-Type` value is what it was before `trim` was skipped for
/// visible ASCII ends: the value before `;`, trimmed of every whitespace character.
#[test]
fn media_types_trimmed_as_before() {
    let values = [
        "text/html",
        "application/json; charset=utf-8",
        " text/event-stream ;x",
        "\ttext/plain\t",
        "a",
        "",
        ";",
        " ",
        "\u{a0}application/json",
        "application/json\u{3000}",
        "x\u{85}",
        "é/é",
        "text/html\u{b}",
    ];
    for value in values {
        let before = value.split(';').next().unwrap_or_default().trim();
        assert_eq!(super::media_type(value), before, "{value:?}");
    }
}
