//! Security events: one JSON object per line (stdout or a file), written and flushed as they
//! happen: they are rare and each one matters. Shared by enforcement and detection.

use std::{
    fs::OpenOptions,
    io::{self, Write},
    sync::{Arc, Mutex},
};

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
