//! Server-sent events: what the ASGI app's `/events` sends, and a counter of events per the
//! WHATWG event-stream rules, to check both the app and the agent's `sse_events`.

use anyhow::{ensure, Context, Result};

use crate::curl::{Curl, CurlExe, Transfer};
use crate::exchange::Window;
use crate::netns::Netns;
use crate::util::TempDir;

/// What [`curl_sse`] got.
#[derive(Debug)]
pub struct SseRun {
    pub pid: u32,
    pub transfer: Transfer,
    /// The response head as curl wrote it (`-D`), lowercase.
    pub head: String,
    /// The decoded body.
    pub body: Vec<u8>,
    pub window: Window,
}

/// curl (as `exe`, `-k`) GETs the event stream at `url` over HTTP/2 (`--http2`, ALPN) or
/// HTTP/1.1, keeping head and body; fails unless it is `200` `text/event-stream` with
/// [`SSE_EVENTS`] events, the body curl counted and at least 6 gaps of [`SSE_GAP_MS`].
pub fn curl_sse(ns: &Netns, exe: &CurlExe, url: &str, http2: bool) -> Result<SseRun> {
    let dir = TempDir::new("sse")?;
    let (head, body) = (dir.join("head"), dir.join("body"));
    let version = if http2 { "--http2" } else { "--http1.1" };
    let (run, window) = Window::around(|| {
        Curl::new(ns)
            .exe(exe)
            .insecure()
            .arg(version)
            .arg("-D")
            .arg(&head)
            .arg("-o")
            .arg(&body)
            .arg(url)
            .run()
    })?;
    let transfer = run
        .transfers
        .first()
        .context("curl reported no transfer")?
        .clone();
    let head = std::fs::read_to_string(&head)?.to_lowercase();
    let body = std::fs::read(&body)?;
    let want_version = if http2 { "2" } else { "1.1" };
    ensure!(
        transfer.http_code() == 200
            && transfer.0["http_version"] == want_version
            && head.contains("content-type: text/event-stream")
            && transfer.size_download() == body.len() as u64
            && count_events(&body) == SSE_EVENTS
            && transfer.0["time_total"].as_f64().unwrap_or(0.0)
                >= ((SSE_BLOCKS - 1) * SSE_GAP_MS) as f64 / 1000.0,
        "unexpected event stream from {url}: {transfer:?}\nhead: {head}\nbody: {:?}",
        String::from_utf8_lossy(&body)
    );
    Ok(SseRun {
        pid: run.pid,
        transfer,
        head,
        body,
        window,
    })
}

/// Events `/events` of [`crate::servers::AsgiServer`] sends (7 blocks: a comment-only
/// block and a `retry`-only block are no events, a three-line `data` block is one).
pub const SSE_EVENTS: u64 = 5;
/// The gap between its blocks (the first is sent with the headers).
pub const SSE_GAP_MS: u64 = 100;
/// Blocks in the stream: the first event ends one gap after the response starts.
pub const SSE_BLOCKS: u64 = 7;

/// Events a client dispatches for `body` (an event stream, complete): lines end at CRLF,
/// LF or CR; a blank line dispatches when the block set a `data` field; a line starting with
/// `:` is a comment; a field without `:` has an empty value (WHATWG HTML, "Interpreting an
/// event stream"). A trailing block with no blank line after it is not dispatched.
pub fn count_events(body: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(body);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut events = 0;
    let mut has_data = false;
    let mut rest = text;
    while let Some(end) = rest.find(['\r', '\n']) {
        let line = &rest[..end];
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
        if line.is_empty() {
            if has_data {
                events += 1;
            }
            has_data = false;
        } else if line.starts_with(':') {
            continue;
        } else {
            let field = line.split_once(':').map_or(line, |(f, _)| f);
            if field == "data" {
                has_data = true;
            }
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_the_dispatch_rule() {
        let app = b": stream opened\n\nid: 1\ndata: first\n\nevent: tick\ndata: second\n\n\
                    data: line one\ndata: line two\ndata: line three\n\nretry: 1000\n\n\
                    : a comment inside an event\ndata: fourth\n\ndata:fifth\n\n";
        assert_eq!(count_events(app), SSE_EVENTS);
        assert_eq!(count_events(b"data: a\r\n\r\ndata\r\rdata: c\n"), 2);
        assert_eq!(count_events(b"event: x\n\n: c\n\nid: 3\n\n"), 0);
        assert_eq!(count_events(b"data: unterminated"), 0);
        assert_eq!(count_events(b"\xef\xbb\xbfdata: bom\n\n"), 1);
    }
}
