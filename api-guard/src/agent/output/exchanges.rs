//! Where exchanges go: Prometheus metrics always, JSON lines optionally (stdout or a file).

use std::{
    fs::OpenOptions,
    io::{self, BufWriter, Write},
    path::PathBuf,
};

use crate::{exchange::Exchange, http::method_label, metrics::Metrics};

/// `--exchanges` target.
#[derive(Debug, Clone)]
pub enum ExchangeOutput {
    Stdout,
    File(PathBuf),
}

impl std::str::FromStr for ExchangeOutput {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s == "-" {
            Self::Stdout
        } else {
            Self::File(PathBuf::from(s))
        })
    }
}

pub struct Sink {
    metrics: Metrics,
    writer: Option<BufWriter<Box<dyn Write + Send>>>,
}

impl Sink {
    pub fn new(metrics: Metrics, output: Option<&ExchangeOutput>) -> io::Result<Self> {
        let writer: Option<Box<dyn Write + Send>> = match output {
            None => None,
            Some(ExchangeOutput::Stdout) => Some(Box::new(io::stdout())),
            Some(ExchangeOutput::File(path)) => {
                let file = OpenOptions::new().create(true).append(true).open(path)?;
                Some(Box::new(file))
            }
        };
        Ok(Self {
            metrics,
            writer: writer.map(|w| BufWriter::with_capacity(64 * 1024, w)),
        })
    }

    pub fn record(&mut self, exchange: &Exchange) -> io::Result<()> {
        self.observe(exchange);
        if let Some(w) = self.writer.as_mut() {
            // One write per line: the buffer then never splits a line, so security events
            // sharing stdout cannot land inside one.
            let mut line = exchange.to_json();
            line.push('\n');
            w.write_all(line.as_bytes())?;
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
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}
