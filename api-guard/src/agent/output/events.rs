//! Security events out: one JSON object per line (stdout or a file with size-based rotation),
//! written and flushed as they happen: they are rare and each one matters. Optionally also
//! POSTed in batches to a webhook (bounded queue, retries). Shared by enforcement, detection
//! and discovery; the event schema is [`api_guard::event`].

use std::{
    net::IpAddr,
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    thread::JoinHandle,
};

use lru::LruCache;

use serde::Serialize;
use tracing::warn;

use super::{
    lines::{Destination, LineWriter},
    webhook::{self, Webhook},
    EventsConfig,
};
use crate::telemetry::{EventDrop, Metrics, Outcome};
use api_guard::{event::SecurityEvent, node::node_name};

/// The event as one JSON object (no newline), with `"node"` added when known.
fn encode(event: &impl Serialize, node: Option<&str>) -> Option<Vec<u8>> {
    let mut line = match serde_json::to_vec(event) {
        Ok(line) => line,
        Err(error) => {
            warn!(%error, "Serialising a security event failed");
            return None;
        }
    };
    if let Some(node) = node {
        if line.len() >= 2 && line.first() == Some(&b'{') && line.last() == Some(&b'}') {
            line.pop();
            if line.len() > 1 {
                line.push(b',');
            }
            line.extend_from_slice(b"\"node\":");
            serde_json::to_writer(&mut line, node).ok()?;
            line.push(b'}');
        }
    }
    Some(line)
}

struct Inner {
    output: Mutex<LineWriter>,
    webhook: Mutex<Option<Webhook>>,
    /// Replaced webhooks still delivering what they had queued.
    draining: Mutex<Vec<JoinHandle<()>>>,
    metrics: Metrics,
    timing: webhook::Timing,
}

/// Where events go (`--events`, `[events]`).
#[derive(Clone)]
pub struct EventSink(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EventSink {
    pub fn new(
        output: &Destination,
        config: &EventsConfig,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let rotation = (config.max_file_bytes, config.max_files);
        let output = LineWriter::open(output, rotation, false)?;
        Self::with_output(output, config, metrics, webhook::Timing::default())
    }

    fn with_output(
        output: LineWriter,
        config: &EventsConfig,
        metrics: Metrics,
        timing: webhook::Timing,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        metrics.events.expect(output.label());
        let hook = config
            .webhook
            .as_ref()
            .map(|w| Webhook::start(w, metrics.clone(), timing))
            .transpose()?;
        // Read (and warned about, if invalid) at start rather than on the first event.
        let _ = node_name();
        Ok(Self(Arc::new(Inner {
            output: Mutex::new(output),
            webhook: Mutex::new(hook),
            draining: Mutex::new(Vec::new()),
            metrics,
            timing,
        })))
    }

    /// An in-memory sink, for tests.
    #[cfg(test)]
    pub fn memory() -> (Self, Arc<Mutex<Vec<u8>>>) {
        let (sink, buf) = Self::memory_with(&EventsConfig::default(), webhook::Timing::default());
        (sink, buf)
    }

    #[cfg(test)]
    fn memory_with(config: &EventsConfig, timing: webhook::Timing) -> (Self, Arc<Mutex<Vec<u8>>>) {
        let (output, buf) = LineWriter::memory(false);
        let sink =
            Self::with_output(output, config, Metrics::new(), timing).expect("valid test sink");
        (sink, buf)
    }

    /// Writes `event` out (and queues it for the webhook).
    pub fn emit(&self, event: &SecurityEvent<'_>) {
        self.emit_line(event);
    }

    fn emit_line(&self, event: &impl Serialize) {
        let Some(mut line) = encode(event, node_name()) else {
            return;
        };
        line.push(b'\n');
        self.write_output(&line);
        line.pop();
        if let Some(hook) = lock(&self.0.webhook).as_ref() {
            hook.send(line);
        }
    }

    fn write_output(&self, line: &[u8]) {
        let m = &self.0.metrics;
        let mut output = lock(&self.0.output);
        let label = output.label();
        let (result, rotation) = output.write_line(line);
        if rotation.rotated {
            m.events.rotation(Outcome::Ok);
        }
        if rotation.failed {
            m.events.rotation(Outcome::Error);
        }
        match result {
            Ok(()) => m.events.written(label, 1),
            Err(error) => {
                m.events.dropped(label, EventDrop::WriteError, 1);
                warn!(%error, "Writing a security event failed");
            }
        }
    }

    /// Applies new `[events]` settings (hot reload): file rotation limits now; a changed
    /// webhook (URL, settings or token) gets a new worker while the old one delivers what it
    /// had queued within its bounded drain time. On error nothing changes.
    pub fn reconfigure(&self, config: &EventsConfig) -> anyhow::Result<()> {
        config.validate()?;
        let mut current = lock(&self.0.webhook);
        let keep = match (current.as_ref(), config.webhook.as_ref()) {
            (Some(old), Some(new)) => old.same_as(new),
            (None, None) => true,
            _ => false,
        };
        let replacement = if keep {
            None
        } else {
            Some(
                config
                    .webhook
                    .as_ref()
                    .map(|w| Webhook::start(w, self.0.metrics.clone(), self.0.timing))
                    .transpose()?,
            )
        };
        lock(&self.0.output).set_limits(config.max_file_bytes, config.max_files);
        if let Some(replacement) = replacement {
            let old = std::mem::replace(&mut *current, replacement);
            drop(current);
            if let Some(thread) = old.and_then(Webhook::close) {
                let mut draining = lock(&self.0.draining);
                draining.retain(|t| !t.is_finished());
                draining.push(thread);
            }
        }
        Ok(())
    }

    /// Shutdown: stops the webhook and waits (bounded by its drain time and request timeout)
    /// for queued events to be delivered.
    pub fn close(&self) {
        let hook = lock(&self.0.webhook).take();
        let mut threads: Vec<JoinHandle<()>> = lock(&self.0.draining).drain(..).collect();
        threads.extend(hook.and_then(Webhook::close));
        for thread in threads {
            if thread.join().is_err() {
                warn!("The webhook thread panicked");
            }
        }
    }
}

/// Clients whose event budget is remembered (least recently seen go first).
const MAX_BUDGET_CLIENTS: usize = 65_536;

/// Per-client event budget: at most `per_sec` events per client per second.
pub struct EventBudget {
    per_sec: u32,
    clients: LruCache<Option<IpAddr>, Window>,
}

#[derive(Clone, Copy)]
struct Window {
    second: u64,
    sent: u32,
    withheld: u64,
}

impl EventBudget {
    pub fn new(per_sec: u32) -> Self {
        Self {
            per_sec,
            clients: api_guard::lazy_lru::bounded(
                NonZeroUsize::new(MAX_BUDGET_CLIENTS).unwrap_or(NonZeroUsize::MIN),
            ),
        }
    }

    /// `Some(withheld since the last event)` when an event may go out now, `None` when it is
    /// held back.
    pub fn admit(&mut self, client: Option<IpAddr>, now_ns: u64) -> Option<u64> {
        let second = now_ns / 1_000_000_000;
        let w = self.clients.get_or_insert_mut(client, || Window {
            second,
            sent: 0,
            withheld: 0,
        });
        if w.second != second {
            w.second = second;
            w.sent = 0;
        }
        if w.sent >= self.per_sec {
            w.withheld += 1;
            return None;
        }
        w.sent += 1;
        Some(std::mem::take(&mut w.withheld))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webhook::tests::{config as hook_config, Server, FAST};

    #[derive(Serialize)]
    struct Ev {
        r#type: &'static str,
        n: usize,
    }

    #[test]
    fn node_names_are_validated_and_added() {
        let ev = Ev {
            r#type: "block",
            n: 1,
        };
        assert_eq!(
            encode(&ev, Some("node-a")).unwrap(),
            br#"{"type":"block","n":1,"node":"node-a"}"#
        );
        assert_eq!(encode(&ev, None).unwrap(), br#"{"type":"block","n":1}"#);
        #[derive(Serialize)]
        struct Empty {}
        assert_eq!(encode(&Empty {}, Some("n")).unwrap(), br#"{"node":"n"}"#);
    }

    #[test]
    fn sink_writes_output_and_webhook_and_reconfigures_without_loss() {
        let first = Server::start(vec![]);
        let second = Server::start(vec![]);
        let config = EventsConfig {
            webhook: Some(hook_config(&first.url)),
            ..EventsConfig::default()
        };
        let (sink, buf) = EventSink::memory_with(&config, FAST);
        for n in 0..5 {
            sink.emit_line(&Ev { r#type: "t", n });
        }
        // Same settings: the webhook is kept.
        sink.reconfigure(&config).unwrap();
        // A bad new configuration changes nothing.
        let mut bad = config.clone();
        bad.webhook.as_mut().unwrap().url = "ftp://x/".into();
        assert!(sink.reconfigure(&bad).is_err());
        sink.emit_line(&Ev { r#type: "t", n: 5 });
        let moved = EventsConfig {
            webhook: Some(hook_config(&second.url)),
            ..EventsConfig::default()
        };
        sink.reconfigure(&moved).unwrap();
        for n in 6..9 {
            sink.emit_line(&Ev { r#type: "t", n });
        }
        // No webhook at all: events still go to the output.
        sink.reconfigure(&EventsConfig::default()).unwrap();
        sink.emit_line(&Ev { r#type: "t", n: 9 });
        sink.close();
        let ns = |server: &Server| -> Vec<u64> {
            server
                .received()
                .iter()
                .flat_map(|r| r.events())
                .map(|e| e["n"].as_u64().unwrap())
                .collect()
        };
        assert_eq!(ns(&first), (0..6).collect::<Vec<_>>());
        assert_eq!(ns(&second), (6..9).collect::<Vec<_>>());
        let text = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 10);
        let m = &sink.0.metrics;
        assert_eq!(m.events.written_count(crate::telemetry::Output::Stdout), 10);
        assert_eq!(m.events.written_count(crate::telemetry::Output::Webhook), 9);
    }

    #[test]
    fn budget_holds_back_and_reports_withheld() {
        let mut b = EventBudget::new(2);
        let c = Some(IpAddr::from([192, 0, 2, 1]));
        assert_eq!(b.admit(c, 0), Some(0));
        assert_eq!(b.admit(c, 1), Some(0));
        assert_eq!(b.admit(c, 2), None);
        assert_eq!(b.admit(c, 3), None);
        // Another client has its own budget.
        assert_eq!(b.admit(None, 4), Some(0));
        // Next second: the first event reports what was withheld.
        assert_eq!(b.admit(c, 1_000_000_000), Some(2));
        assert_eq!(b.admit(c, 1_000_000_001), Some(0));
    }
}
