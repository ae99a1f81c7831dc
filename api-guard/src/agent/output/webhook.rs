//! The webhook: a dedicated thread POSTs batches of events (a JSON array) to one endpoint.
//! `send` never blocks: the queue is bounded and a full queue drops the event (counted).
//! Connection errors, timeouts, 429 and 5xx are retried with capped exponential backoff and
//! jitter (or `Retry-After` seconds, capped); other statuses drop the batch as `rejected`.
//! Redirects are not followed and no proxy is used. On close, what is queued is delivered
//! within a bounded time; the rest is dropped as `shutdown`.

use std::{
    sync::{
        mpsc::{sync_channel, Receiver, SyncSender, TrySendError},
        Arc, Condvar, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use tracing::{debug, warn};

use super::config::{Token, WebhookConfig};
use crate::telemetry::{EventDrop, Metrics, Output, WebhookResult};
use api_guard::config::Invalid;

/// Backoff and shutdown timing (fixed in the daemon, shorter in tests).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// First retry delay; doubles per retry.
    pub backoff_base: Duration,
    /// Largest retry delay, also the cap for `Retry-After`.
    pub backoff_cap: Duration,
    /// How long a closed webhook keeps delivering what is queued.
    pub drain: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            drain: Duration::from_secs(5),
        }
    }
}

/// Set when the webhook is closed: the time by which the worker gives up.
#[derive(Default)]
struct Closing {
    deadline: Mutex<Option<Instant>>,
    wake: Condvar,
}

impl Closing {
    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps for `delay`, or less when the close deadline comes first; `false` when the
    /// deadline has passed.
    fn sleep(&self, delay: Duration) -> bool {
        let wake_at = Instant::now() + delay;
        let mut deadline = self.deadline.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            let until = deadline.map_or(wake_at, |d| d.min(wake_at));
            if now >= until {
                return deadline.is_none_or(|d| now < d);
            }
            deadline = self
                .wake
                .wait_timeout(deadline, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The sending side, owned by the event sink.
pub struct Webhook {
    tx: Option<SyncSender<Vec<u8>>>,
    closing: Arc<Closing>,
    thread: Option<JoinHandle<()>>,
    config: WebhookConfig,
    token: Option<Token>,
    metrics: Metrics,
    drain: Duration,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &redacted(&self.config.url))
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// `scheme://host:port` only: paths and queries may carry secrets.
fn redacted(url: &str) -> String {
    match url.parse::<ureq::http::Uri>() {
        Ok(uri) => format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("?"),
            uri.authority().map_or("?", |a| a.as_str())
        ),
        Err(_) => "<invalid>".into(),
    }
}

/// The delivering side, run on its own thread.
pub struct Worker {
    rx: Receiver<Vec<u8>>,
    closing: Arc<Closing>,
    agent: ureq::Agent,
    url: String,
    target: String,
    auth: Option<String>,
    timeout: Duration,
    max_retries: u32,
    batch_max: usize,
    timing: Timing,
    metrics: Metrics,
    rng: u64,
}

enum Outcome {
    Delivered,
    Rejected(u16),
    Retry {
        why: String,
        retry_after: Option<Duration>,
    },
}

impl Webhook {
    /// Reads the token and starts the delivery thread.
    pub fn start(
        config: &WebhookConfig,
        metrics: Metrics,
        timing: Timing,
    ) -> Result<Self, Invalid> {
        let (mut hook, worker) = Self::prepare(config, metrics, timing)?;
        hook.spawn(worker).map_err(|e| Invalid {
            field: "events.webhook".into(),
            reason: format!("cannot start the webhook thread: {e}"),
        })?;
        Ok(hook)
    }

    /// The webhook and its worker, not yet running (tests queue events first).
    pub fn prepare(
        config: &WebhookConfig,
        metrics: Metrics,
        timing: Timing,
    ) -> Result<(Self, Worker), Invalid> {
        let token = config.token_file.as_deref().map(Token::read).transpose()?;
        let timeout = Duration::from_secs(config.timeout_secs);
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(concat!("api-guard/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let (tx, rx) = sync_channel(config.queue_capacity);
        let closing = Arc::new(Closing::default());
        metrics.events.expect_webhook();
        let worker = Worker {
            rx,
            closing: closing.clone(),
            agent,
            url: config.url.clone(),
            target: redacted(&config.url),
            auth: token.as_ref().map(Token::header_value),
            timeout,
            max_retries: config.max_retries,
            batch_max: config.batch_max,
            timing,
            metrics: metrics.clone(),
            rng: seed(),
        };
        let hook = Self {
            tx: Some(tx),
            closing,
            thread: None,
            config: config.clone(),
            token,
            metrics,
            drain: timing.drain,
        };
        Ok((hook, worker))
    }

    pub fn spawn(&mut self, worker: Worker) -> std::io::Result<()> {
        let thread = std::thread::Builder::new()
            .name("event-webhook".into())
            .spawn(move || worker.run())?;
        self.thread = Some(thread);
        Ok(())
    }

    /// Same endpoint, settings and token: a reload keeps this webhook.
    pub fn same_as(&self, config: &WebhookConfig) -> bool {
        if self.config != *config {
            return false;
        }
        let token = config.token_file.as_deref().map(Token::read);
        match (token, &self.token) {
            (None, None) => true,
            (Some(Ok(new)), Some(old)) => new == *old,
            _ => false,
        }
    }

    /// Queues one event (a JSON object, no newline); never blocks.
    pub fn send(&self, event: Vec<u8>) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped(EventDrop::QueueFull, 1),
            Err(TrySendError::Disconnected(_)) => {
                // Only if the worker died; counted like a full queue.
                warn!("The webhook thread is gone; event dropped");
                self.dropped(EventDrop::QueueFull, 1);
            }
        }
    }

    fn dropped(&self, reason: EventDrop, n: u64) {
        self.metrics.events.dropped(Output::Webhook, reason, n);
    }

    /// Stops taking events; the worker delivers what is queued for at most the drain time and
    /// then exits. Returns its thread (join it to wait, or let it finish on its own).
    pub fn close(mut self) -> Option<JoinHandle<()>> {
        {
            let mut deadline = self
                .closing
                .deadline
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            *deadline = Some(Instant::now() + self.drain);
        }
        self.closing.wake.notify_all();
        self.tx = None;
        self.thread.take()
    }
}

fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ u64::from(std::process::id()).rotate_left(32)) | 1
}

impl Worker {
    fn run(mut self) {
        while let Ok(first) = self.rx.recv() {
            let mut batch = vec![first];
            while batch.len() < self.batch_max {
                match self.rx.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(_) => break,
                }
            }
            if !self.deliver(&batch) {
                // Closed and out of time: the sender is gone, so this count is final.
                let rest = batch.len() as u64 + self.rx.try_iter().count() as u64;
                self.dropped(EventDrop::Shutdown, rest);
                warn!(target = %self.target, events = rest, "Webhook closed before these events were delivered");
                return;
            }
        }
    }

    fn dropped(&self, reason: EventDrop, n: u64) {
        self.metrics.events.dropped(Output::Webhook, reason, n);
    }

    fn request(&self, result: WebhookResult) {
        self.metrics.events.webhook_request(result);
    }

    /// Delivers one batch, retrying as configured; `false` when the close deadline passed
    /// before it was delivered (the caller counts it).
    fn deliver(&mut self, batch: &[Vec<u8>]) -> bool {
        let mut body = Vec::with_capacity(batch.iter().map(|e| e.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, event) in batch.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(event);
        }
        body.push(b']');
        let n = batch.len() as u64;
        let mut retries = 0;
        loop {
            let mut timeout = self.timeout;
            if let Some(deadline) = self.closing.deadline() {
                let now = Instant::now();
                if now >= deadline {
                    return false;
                }
                timeout = timeout.min(deadline - now);
            }
            match self.post(&body, timeout) {
                Outcome::Delivered => {
                    self.request(WebhookResult::Ok);
                    self.metrics.events.written(Output::Webhook, n);
                    return true;
                }
                Outcome::Rejected(status) => {
                    self.request(WebhookResult::Error);
                    self.dropped(EventDrop::Rejected, n);
                    warn!(target = %self.target, status, events = n, "The webhook rejected events");
                    return true;
                }
                Outcome::Retry { why, retry_after } => {
                    if retries >= self.max_retries {
                        self.request(WebhookResult::Error);
                        self.dropped(EventDrop::RetriesExhausted, n);
                        warn!(target = %self.target, error = %why, attempts = retries + 1, events = n,
                            "Webhook delivery failed; events dropped");
                        return true;
                    }
                    self.request(WebhookResult::Retry);
                    retries += 1;
                    let delay = match retry_after {
                        Some(d) => d.min(self.timing.backoff_cap),
                        None => self.backoff(retries),
                    };
                    debug!(target = %self.target, error = %why, retry = retries, ?delay, "Webhook delivery will be retried");
                    if !self.closing.sleep(delay) {
                        return false;
                    }
                }
            }
        }
    }

    /// `base · 2^(retry-1)`, capped, then a random 50–100 % of that.
    fn backoff(&mut self, retry: u32) -> Duration {
        let exp = self
            .timing
            .backoff_base
            .saturating_mul(1u32 << (retry - 1).min(20))
            .min(self.timing.backoff_cap);
        // xorshift64: jitter needs no cryptographic randomness.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let fraction = 0.5 + (self.rng % 1024) as f64 / 2048.0;
        exp.mul_f64(fraction)
    }

    fn post(&self, body: &[u8], timeout: Duration) -> Outcome {
        let mut request = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("content-type", "application/json");
        if let Some(auth) = &self.auth {
            request = request.header("authorization", auth);
        }
        match request.send(body) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                // Read (a bounded amount of) the answer so the connection can be reused.
                let _ = response
                    .body_mut()
                    .with_config()
                    .limit(64 * 1024)
                    .read_to_vec();
                match status {
                    200..=299 => Outcome::Delivered,
                    429 | 500..=599 => Outcome::Retry {
                        why: format!("HTTP {status}"),
                        retry_after,
                    },
                    _ => Outcome::Rejected(status),
                }
            }
            Err(error) => Outcome::Retry {
                why: error.to_string(),
                retry_after: None,
            },
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::{
        collections::VecDeque,
        io::{BufRead as _, BufReader, Read as _, Write as _},
        net::TcpListener,
    };

    use super::*;

    /// One request the test server received.
    #[derive(Debug, Clone)]
    pub struct Received {
        pub at: Instant,
        /// Request line and headers, header names lower-cased.
        pub head: String,
        pub body: Vec<u8>,
    }

    impl Received {
        pub fn events(&self) -> Vec<serde_json::Value> {
            match serde_json::from_slice(&self.body).expect("JSON body") {
                serde_json::Value::Array(events) => events,
                other => panic!("not an array: {other}"),
            }
        }
    }

    /// A minimal HTTP/1.1 server: answers with the scripted statuses in order (then 200),
    /// one request per connection.
    pub struct Server {
        pub url: String,
        pub received: Arc<Mutex<Vec<Received>>>,
    }

    impl Server {
        pub fn start(script: Vec<(u16, &'static str)>) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!(
                "http://{}/events?key=secret-in-query",
                listener.local_addr().unwrap()
            );
            let received = Arc::new(Mutex::new(Vec::new()));
            let log = received.clone();
            let mut script: VecDeque<_> = script.into();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(conn) = conn else { continue };
                    let mut reader = BufReader::new(conn);
                    let mut head = String::new();
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        let lower = match line.split_once(':') {
                            Some((name, value)) => format!("{}:{value}", name.to_ascii_lowercase()),
                            None => line.clone(),
                        };
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                        head += &lower;
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    log.lock().unwrap().push(Received {
                        at: Instant::now(),
                        head,
                        body,
                    });
                    let (status, extra) = script.pop_front().unwrap_or((200, ""));
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n{extra}\r\nok"
                    );
                    let _ = reader.get_mut().write_all(answer.as_bytes());
                }
            });
            Self { url, received }
        }

        pub fn received(&self) -> Vec<Received> {
            self.received.lock().unwrap().clone()
        }

        /// Waits (at most 10 s) for `n` requests.
        pub fn wait_for(&self, n: usize) -> Vec<Received> {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let got = self.received();
                if got.len() >= n || Instant::now() > deadline {
                    assert_eq!(got.len(), n, "requests received");
                    return got;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    struct LogWriter(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for LogWriter {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    pub const FAST: Timing = Timing {
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(200),
        drain: Duration::from_secs(2),
    };

    pub fn config(url: &str) -> WebhookConfig {
        WebhookConfig {
            url: url.to_string(),
            token_file: None,
            timeout_secs: 2,
            max_retries: 3,
            queue_capacity: 1000,
            batch_max: 100,
        }
    }

    fn event(i: usize) -> Vec<u8> {
        format!("{{\"type\":\"test\",\"n\":{i}}}").into_bytes()
    }

    /// Queues `n` events before the worker runs, so batches are deterministic.
    fn queued(config: &WebhookConfig, n: usize, timing: Timing) -> (Webhook, Metrics) {
        let metrics = Metrics::new();
        let (mut hook, worker) = Webhook::prepare(config, metrics.clone(), timing).unwrap();
        for i in 0..n {
            hook.send(event(i));
        }
        hook.spawn(worker).unwrap();
        (hook, metrics)
    }

    #[test]
    fn batches_are_json_arrays_of_at_most_batch_max() {
        let server = Server::start(vec![]);
        let (hook, m) = queued(&config(&server.url), 250, FAST);
        let got = server.wait_for(3);
        let sizes: Vec<usize> = got.iter().map(|r| r.events().len()).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        let all: Vec<u64> = got
            .iter()
            .flat_map(Received::events)
            .map(|e| e["n"].as_u64().unwrap())
            .collect();
        assert_eq!(all, (0..250).collect::<Vec<u64>>());
        assert!(got[0]
            .head
            .starts_with("POST /events?key=secret-in-query HTTP/1.1\r\n"));
        assert!(
            got[0].head.contains("content-type: application/json\r\n"),
            "{}",
            got[0].head
        );
        assert!(!got[0].head.contains("authorization"));
        hook.close().unwrap().join().unwrap();
        assert_eq!(m.events.written_count(Output::Webhook), 250);
        assert_eq!(m.events.webhook_requests(WebhookResult::Ok), 3);
        assert_eq!(m.events.webhook_requests(WebhookResult::Retry), 0);
        // The URL's path and query (which may hold secrets) are not shown.
        assert!(!format!("{hook_dbg:?}", hook_dbg = redacted(&server.url)).contains("secret"));
    }

    #[test]
    fn retries_503_then_delivers_once() {
        let server = Server::start(vec![(503, ""), (503, "")]);
        let (hook, m) = queued(&config(&server.url), 3, FAST);
        let got = server.wait_for(3);
        hook.close().unwrap().join().unwrap();
        assert_eq!(server.received().len(), 3, "exactly three attempts");
        assert!(got.iter().all(|r| r.body == got[0].body));
        assert_eq!(got[0].events().len(), 3);
        assert_eq!(m.events.webhook_requests(WebhookResult::Retry), 2);
        assert_eq!(m.events.webhook_requests(WebhookResult::Ok), 1);
        assert_eq!(m.events.written_count(Output::Webhook), 3);
        // Backoff: at least half of 20 ms, then of 40 ms.
        assert!(got[1].at - got[0].at >= Duration::from_millis(10));
        assert!(got[2].at - got[1].at >= Duration::from_millis(20));
    }

    #[test]
    fn no_retry_on_400_and_retries_exhausted_on_5xx() {
        let server = Server::start(vec![(400, "")]);
        let (hook, m) = queued(&config(&server.url), 4, FAST);
        server.wait_for(1);
        hook.close().unwrap().join().unwrap();
        assert_eq!(server.received().len(), 1, "a 400 is not retried");
        assert_eq!(
            m.events.dropped_count(Output::Webhook, EventDrop::Rejected),
            4
        );
        assert_eq!(m.events.webhook_requests(WebhookResult::Error), 1);
        assert_eq!(m.events.written_count(Output::Webhook), 0);

        let server = Server::start(vec![(500, ""); 10]);
        let mut c = config(&server.url);
        c.max_retries = 2;
        let (hook, m) = queued(&c, 2, FAST);
        server.wait_for(3);
        hook.close().unwrap().join().unwrap();
        assert_eq!(server.received().len(), 3, "first attempt + 2 retries");
        assert_eq!(
            m.events
                .dropped_count(Output::Webhook, EventDrop::RetriesExhausted),
            2
        );
        assert_eq!(m.events.webhook_requests(WebhookResult::Retry), 2);
        assert_eq!(m.events.webhook_requests(WebhookResult::Error), 1);
    }

    #[test]
    fn connection_errors_are_retried() {
        // A port nothing listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = config(&format!("http://127.0.0.1:{port}/"));
        c.max_retries = 1;
        let (hook, m) = queued(&c, 5, FAST);
        hook.close().unwrap().join().unwrap();
        assert_eq!(m.events.webhook_requests(WebhookResult::Retry), 1);
        assert_eq!(m.events.webhook_requests(WebhookResult::Error), 1);
        assert_eq!(
            m.events
                .dropped_count(Output::Webhook, EventDrop::RetriesExhausted),
            5
        );
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let server = Server::start(vec![]);
        let mut c = config(&server.url);
        c.queue_capacity = 5;
        let (hook, m) = queued(&c, 8, FAST);
        assert_eq!(
            m.events
                .dropped_count(Output::Webhook, EventDrop::QueueFull),
            3
        );
        let got = server.wait_for(1);
        hook.close().unwrap().join().unwrap();
        assert_eq!(got[0].events().len(), 5);
        assert_eq!(m.events.written_count(Output::Webhook), 5);
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let server = Server::start(vec![
            (429, "retry-after: 1\r\n"),
            (503, "retry-after: 3600\r\n"),
        ]);
        let timing = Timing {
            backoff_cap: Duration::from_millis(1500),
            ..FAST
        };
        let (hook, m) = queued(&config(&server.url), 1, timing);
        let got = server.wait_for(3);
        hook.close().unwrap().join().unwrap();
        assert!(
            got[1].at - got[0].at >= Duration::from_secs(1),
            "Retry-After: 1 honoured"
        );
        // 3600 s is capped at backoff_cap (1.5 s here): the third attempt came within the wait.
        assert!(got[2].at - got[1].at >= Duration::from_millis(1500));
        assert_eq!(m.events.written_count(Output::Webhook), 1);
    }

    #[test]
    fn close_drains_within_bounded_time() {
        let server = Server::start(vec![(503, ""); 1000]);
        let mut c = config(&server.url);
        c.max_retries = 100;
        let timing = Timing {
            drain: Duration::from_millis(300),
            ..FAST
        };
        let (hook, m) = queued(&c, 7, timing);
        server.wait_for(1);
        let thread = hook.close().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            thread.is_finished(),
            "the worker gave up after its drain time"
        );
        thread.join().unwrap();
        assert_eq!(
            m.events.dropped_count(Output::Webhook, EventDrop::Shutdown),
            7
        );
        assert_eq!(m.events.written_count(Output::Webhook), 0);
    }

    #[test]
    fn bearer_token_sent_never_shown() {
        let dir = std::env::temp_dir().join(format!("ag-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "tok-9f8e7d\n").unwrap();
        std::fs::set_permissions(
            &path,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
        )
        .unwrap();
        // Everything logged anywhere in this test binary, at every level.
        let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || LogWriter(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        let server = Server::start(vec![(503, ""), (401, "")]);
        let mut c = config(&server.url);
        c.token_file = Some(path.clone());
        let (hook, m) = queued(&c, 2, FAST);
        let got = server.wait_for(2);
        let shown = format!("{hook:?} {c:?}");
        // The config shows the URL (it is no secret; credentials in it are refused).
        assert!(!shown.contains("tok-9f8e7d"), "{shown}");
        assert!(!format!("{hook:?}").contains("secret-in-query"));
        hook.close().unwrap().join().unwrap();
        for r in &got {
            assert!(
                r.head.contains("authorization: Bearer tok-9f8e7d\r\n"),
                "{}",
                r.head
            );
        }
        assert_eq!(
            m.events.dropped_count(Output::Webhook, EventDrop::Rejected),
            2
        );
        let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
        assert!(logs.contains("The webhook rejected events"), "{logs}");
        assert!(logs.contains("Webhook delivery will be retried"), "{logs}");
        assert!(!logs.contains("tok-9f8e7d"), "{logs}");
        assert!(!logs.contains("secret-in-query"), "{logs}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
