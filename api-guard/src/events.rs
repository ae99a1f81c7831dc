//! Security events: one JSON object per line (stdout or a file), written and flushed as they
//! happen: they are rare and each one matters. Shared by enforcement and detection.

use std::{
    fs::OpenOptions,
    io::{self, Write},
    net::IpAddr,
    num::NonZeroUsize,
    sync::{Arc, Mutex},
};

use lru::LruCache;

use serde::Serialize;
use tracing::warn;

use crate::sink::ExchangeOutput;

/// Where events go (`--events`).
#[derive(Clone)]
pub struct EventSink(Arc<Mutex<Box<dyn Write + Send>>>);

impl EventSink {
    pub fn new(output: &ExchangeOutput) -> io::Result<Self> {
        let writer: Box<dyn Write + Send> = match output {
            ExchangeOutput::Stdout => Box::new(io::stdout()),
            ExchangeOutput::File(path) => {
                Box::new(OpenOptions::new().create(true).append(true).open(path)?)
            }
        };
        Ok(Self(Arc::new(Mutex::new(writer))))
    }

    /// An in-memory sink, for tests.
    #[cfg(test)]
    pub fn memory() -> (Self, Arc<Mutex<Vec<u8>>>) {
        #[derive(Clone)]
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0
                    .lock()
                    .map_err(|_| io::ErrorKind::Other)?
                    .extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let buf = Arc::new(Mutex::new(Vec::new()));
        (
            Self(Arc::new(Mutex::new(Box::new(Shared(buf.clone()))))),
            buf,
        )
    }

    pub fn emit(&self, event: &impl Serialize) {
        let mut line = match serde_json::to_vec(event) {
            Ok(line) => line,
            Err(error) => return warn!(%error, "Serialising a security event failed"),
        };
        line.push(b'\n');
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = w.write_all(&line).and_then(|()| w.flush()) {
            warn!(%error, "Writing a security event failed");
        }
    }
}

/// For `#[serde(skip_serializing_if)]` on counts that are usually zero.
pub fn is_zero(n: &u64) -> bool {
    *n == 0
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
            clients: LruCache::new(
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
