//! Where exchanges go: Prometheus metrics always, JSON lines optionally (stdout or a file,
//! buffered and flushed by the parsing task's timer).

use std::io;

use super::lines::{Destination, LineWriter};
use crate::{exchange::Exchange, http::method_label, metrics::Metrics};

pub struct Sink {
    metrics: Metrics,
    writer: Option<LineWriter>,
}

impl Sink {
    pub fn new(metrics: Metrics, output: Option<&Destination>) -> io::Result<Self> {
        // Exchange files are not rotated (left to the operator's logrotate).
        let writer = output
            .map(|dest| LineWriter::open(dest, (0, 0), true))
            .transpose()?;
        Ok(Self { metrics, writer })
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

    fn observe(&self, e: &Exchange) {
        let role = e.conn.role.as_str();
        let method = method_label(&e.http.method);
        let status = e
            .http
            .status
            .map_or_else(|| "none".to_string(), |s| s.to_string());
        let tls = if e.conn.tls() { "true" } else { "false" };
        let route = e.route.as_deref().unwrap_or("");
        let m = &self.metrics;
        m.http_requests
            .with_label_values(&[role, method, route, &status, tls])
            .inc();
        if let Some(ns) = e.duration_ns() {
            m.http_duration
                .with_label_values(&[role, method, route, tls])
                .observe(ns as f64 / 1e9);
        }
        m.http_request_bytes
            .with_label_values(&[role])
            .inc_by(e.http.request_header_bytes + e.http.request_body_bytes);
        m.http_response_bytes
            .with_label_values(&[role])
            .inc_by(e.http.response_header_bytes + e.http.response_body_bytes);
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match self.writer.as_mut() {
            Some(w) => w.flush().0,
            None => Ok(()),
        }
    }
}
