//! Where exchanges go: Prometheus metrics always, JSON lines optionally (stdout or a file,
//! buffered and flushed by the parsing task's timer).

use std::io;

use super::lines::{Destination, LineWriter};
use crate::{
    exchange::Exchange,
    telemetry::{Metrics, SeriesCache},
};

pub struct Sink {
    metrics: Metrics,
    /// The HTTP metrics' series handles, this sink's own (no lock per exchange).
    series: SeriesCache,
    writer: Option<LineWriter>,
}

impl Sink {
    pub fn new(metrics: Metrics, output: Option<&Destination>) -> io::Result<Self> {
        // Exchange files are not rotated (left to the operator's logrotate).
        let writer = output
            .map(|dest| LineWriter::open(dest, (0, 0), true))
            .transpose()?;
        Ok(Self {
            metrics,
            series: SeriesCache::default(),
            writer,
        })
    }

    pub fn record(&mut self, exchange: &Exchange) -> io::Result<()> {
        self.observe(exchange);
        if let Some(w) = self.writer.as_mut() {
            let mut line = exchange.to_json();
            line.push('\n');
            w.write_line(line.as_bytes()).0?;
        }
        Ok(())
    }

    fn observe(&mut self, e: &Exchange) {
        self.metrics.http.exchange(&mut self.series, e);
    }

    /// Adds the metrics of the exchanges recorded since the last call to the shared ones
    /// (once per delivered batch: see [`SeriesCache`]).
    pub fn publish_metrics(&mut self) {
        self.series.publish();
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match self.writer.as_mut() {
            Some(w) => w.flush().0,
            None => Ok(()),
        }
    }
}
