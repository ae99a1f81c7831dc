//! HTTP exchanges and the parsers that produce them.

use std::sync::Arc;

use prometheus::{
    local::LocalHistogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Registry,
};
use rustc_hash::FxHashMap;

use super::{counter, counter_vec, gauge, register, sum};
use crate::{
    exchange::{Exchange, Role},
    http::method_label,
};

/// Why a connection is no longer parsed (nor copied by the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    NotHttp,
    Upgraded,
    Failed,
    /// Too much TLS ciphertext without plaintext from a hook.
    TlsUnhooked,
}

impl IgnoreReason {
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::NotHttp => "not_http",
            IgnoreReason::Upgraded => "upgraded",
            IgnoreReason::Failed => "failed",
            IgnoreReason::TlsUnhooked => "tls_unhooked",
        }
    }
}

/// Series handles kept per label set at most (routes are bounded by
/// `discover.max_route_labels`, methods and statuses by their label rules): past it the
/// cache starts over, so it stays bounded whatever comes.
const MAX_CACHED_SERIES: usize = 4096;

/// The labels of one exchange's series, as plain numbers (hashed and compared in a few
/// instructions): the route and the method label by address (route labels come from one
/// canonical set, `RouteLabels`, and the series keeps the route's `Arc`, so an address is
/// never reused while it is cached; method labels are static strings).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SeriesKey {
    route: usize,
    method: usize,
    /// The status, or `NO_STATUS`.
    status: u32,
    server: bool,
    tls: bool,
}

const NO_STATUS: u32 = u32::MAX;

/// Handles of one label set's series: looked up once, not at every exchange (a lookup
/// formats the status and hashes every label under the vector's lock), and what the
/// exchanges recorded since the last [`SeriesCache::publish`] add to them.
struct Series {
    /// Holds the route label whose address is in the key.
    _route: Option<Arc<str>>,
    requests: IntCounter,
    /// Made on first use: an exchange without timings must not create these series.
    duration: Option<LocalHistogram>,
    ttfb: Option<LocalHistogram>,
    request_bytes: IntCounter,
    response_bytes: IntCounter,
    /// Not yet added to the shared counters: exchanges, request and response bytes.
    pending: [u64; 3],
    /// Listed in the cache's `dirty`.
    dirty: bool,
}

impl Series {
    fn publish(&mut self) {
        let [requests, request_bytes, response_bytes] = std::mem::take(&mut self.pending);
        self.requests.inc_by(requests);
        self.request_bytes.inc_by(request_bytes);
        self.response_bytes.inc_by(response_bytes);
        for histogram in [&self.duration, &self.ttfb].into_iter().flatten() {
            histogram.flush();
        }
        self.dirty = false;
    }
}

/// The series handles of the exchanges one writer records ([`Http::exchange`]): owned by
/// that writer (the exchange sink, on the parsing task), so looking one up takes no lock.
/// A fast hash: looked up for every exchange, keyed by a bounded set of label values (static
/// strings, a route's address, a status), nothing a client can choose freely.
///
/// Counts are kept here and added to the shared metrics by [`SeriesCache::publish`] (once
/// per delivered batch, and when dropped): one atomic update per series and value per batch
/// instead of ~11 per exchange (a histogram observation alone takes four). A histogram's
/// `_sum` then adds a batch's sum at once: the same total but for the last bits of its
/// rounding.
#[derive(Default)]
pub struct SeriesCache {
    index: FxHashMap<SeriesKey, usize>,
    series: Vec<Series>,
    /// Series with counts not yet published.
    dirty: Vec<usize>,
}

impl SeriesCache {
    /// Adds what was recorded since the last call to the shared metrics.
    pub fn publish(&mut self) {
        for i in self.dirty.drain(..) {
            if let Some(series) = self.series.get_mut(i) {
                series.publish();
            }
        }
    }

    fn clear(&mut self) {
        self.publish();
        self.index.clear();
        self.series.clear();
    }
}

impl Drop for SeriesCache {
    fn drop(&mut self) {
        self.publish();
    }
}

pub struct Http {
    requests: IntCounterVec,
    duration: HistogramVec,
    ttfb: HistogramVec,
    grpc_requests: IntCounterVec,
    headers_unresolved: IntCounter,
    request_bytes: IntCounterVec,
    response_bytes: IntCounterVec,
    parse_errors: IntCounter,
    exchanges_lost: IntCounter,
    connections_ignored: IntCounterVec,
    buffered_bytes: IntGauge,
}

impl Http {
    pub(super) fn new(r: &Registry) -> Self {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "apiguard_http_request_duration_seconds",
                "Time from the first request byte to the last response byte.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["role", "method", "route", "tls"],
        )
        .expect("valid metric definition");
        let ttfb = HistogramVec::new(
            HistogramOpts::new(
                "apiguard_http_time_to_first_byte_seconds",
                "Time from the first request byte to the first response byte (response \
                 headers); for streamed answers (SSE, LLM tokens) the wait before anything came.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ]),
            &["role", "method", "route", "tls"],
        )
        .expect("valid metric definition");
        Self {
            requests: counter_vec(
                r,
                "apiguard_http_requests_total",
                "HTTP exchanges seen, by role, method, route template, status and whether they \
                 were inside TLS.",
                &["role", "method", "route", "status", "tls"],
            ),
            duration: register(r, duration),
            ttfb: register(r, ttfb),
            grpc_requests: counter_vec(
                r,
                "apiguard_grpc_requests_total",
                "gRPC calls seen, by role, route (`/package.Service/Method`, bounded like HTTP \
                 routes) and grpc-status (`none` when no status was seen).",
                &["role", "route", "grpc_status"],
            ),
            headers_unresolved: counter(
                r,
                "apiguard_http2_headers_unresolved_total",
                "HTTP/2 header fields that referred to HPACK dynamic-table entries sent before \
                 capture joined the connection (or lost in a capture gap): left out, never \
                 guessed; their exchanges are marked incomplete.",
            ),
            request_bytes: counter_vec(
                r,
                "apiguard_http_request_bytes_total",
                "Request bytes (head and body) seen.",
                &["role"],
            ),
            response_bytes: counter_vec(
                r,
                "apiguard_http_response_bytes_total",
                "Response bytes (head and body) seen.",
                &["role"],
            ),
            parse_errors: counter(
                r,
                "apiguard_http_parse_errors_total",
                "Malformed or unparseable HTTP input.",
            ),
            exchanges_lost: counter(
                r,
                "apiguard_http_exchanges_lost_total",
                "Exchanges known to be lost: responses whose request fell into a capture gap, \
                 requests dropped by the pipelining bound.",
            ),
            connections_ignored: counter_vec(
                r,
                "apiguard_http_connections_ignored_total",
                "Connections no longer parsed (and no longer copied by the kernel), by reason.",
                &["reason"],
            ),
            buffered_bytes: gauge(
                r,
                "apiguard_http_buffered_bytes",
                "Bytes held by all HTTP parsers (heads in progress, body prefixes).",
            ),
        }
    }

    /// One finished exchange: its count, duration and bytes, through the series handles in
    /// `cache` (in the shared metrics once the cache publishes them). Labels are bounded:
    /// role, a fixed method set, the route template from `RouteLabels`, the status code.
    pub fn exchange(&self, cache: &mut SeriesCache, e: &Exchange) {
        let role = e.conn.role.as_str();
        let method = method_label(&e.http.method);
        let tls = e.conn.tls();
        let key = SeriesKey {
            route: e
                .route
                .as_ref()
                .map_or(0, |r| Arc::as_ptr(r).cast::<u8>() as usize),
            method: method.as_ptr() as usize,
            status: e.http.status.map_or(NO_STATUS, u32::from),
            server: e.conn.role == Role::Server,
            tls,
        };
        if cache.index.len() >= MAX_CACHED_SERIES && !cache.index.contains_key(&key) {
            cache.clear();
        }
        let at = *cache.index.entry(key).or_insert_with(|| {
            let status = e
                .http
                .status
                .map_or_else(|| "none".to_string(), |s| s.to_string());
            let tls = if tls { "true" } else { "false" };
            let route = e.route.as_deref().unwrap_or("");
            cache.series.push(Series {
                _route: e.route.clone(),
                requests: self
                    .requests
                    .with_label_values(&[role, method, route, &status, tls]),
                duration: None,
                ttfb: None,
                request_bytes: self.request_bytes.with_label_values(&[role]),
                response_bytes: self.response_bytes.with_label_values(&[role]),
                pending: [0; 3],
                dirty: false,
            });
            cache.series.len() - 1
        });
        let Some(series) = cache.series.get_mut(at) else {
            return;
        };
        if !series.dirty {
            series.dirty = true;
            cache.dirty.push(at);
        }
        let tls = if tls { "true" } else { "false" };
        let route = e.route.as_deref().unwrap_or("");
        if let Some(ns) = e.duration_ns() {
            series
                .duration
                .get_or_insert_with(|| {
                    self.duration
                        .with_label_values(&[role, method, route, tls])
                        .local()
                })
                .observe(ns as f64 / 1e9);
        }
        if let Some(ns) = e.ttfb_ns() {
            series
                .ttfb
                .get_or_insert_with(|| {
                    self.ttfb
                        .with_label_values(&[role, method, route, tls])
                        .local()
                })
                .observe(ns as f64 / 1e9);
        }
        let pending = &mut series.pending;
        pending[0] += 1;
        pending[1] += e.http.request_header_bytes + e.http.request_body_bytes;
        pending[2] += e.http.response_header_bytes + e.http.response_body_bytes;
        if let Some(call) = &e.http.grpc {
            let status = call
                .status
                .map_or_else(|| "none".to_string(), |s| s.to_string());
            self.grpc_requests
                .with_label_values(&[role, route, &status])
                .inc();
        }
    }

    pub fn parse_errors(&self, n: u64) {
        self.parse_errors.inc_by(n);
    }

    pub fn headers_unresolved(&self, n: u64) {
        self.headers_unresolved.inc_by(n);
    }

    pub fn exchanges_lost(&self, n: u64) {
        self.exchanges_lost.inc_by(n);
    }

    pub fn connection_ignored(&self, reason: IgnoreReason) {
        self.connections_ignored
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    pub fn set_buffered_bytes(&self, bytes: usize) {
        self.buffered_bytes.set(bytes as i64);
    }

    /// Exchanges seen so far (all series).
    pub fn exchanges_total(&self) -> u64 {
        sum(&self.requests, &[])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::SeriesCache;
    use crate::exchange::{test_exchange, Role};
    use crate::telemetry::Metrics;

    #[test]
    fn cached_series_count_like_looked_up_ones() {
        let m = Metrics::new();
        let mut cache = SeriesCache::default();
        let route: Arc<str> = Arc::from("/users/{userId}");
        let mut unanswered = test_exchange(Role::Server, "192.0.2.1:40000", "/users/1");
        unanswered.route = Some(route.clone());
        m.http.exchange(&mut cache, &unanswered);
        assert_eq!(
            m.http.exchanges_total(),
            0,
            "kept in the cache until published"
        );
        cache.publish();
        let text = m.render();
        // No timings: no duration or time-to-first-byte series.
        assert!(
            !text.contains("apiguard_http_request_duration_seconds_count"),
            "{text}"
        );
        assert!(
            !text.contains("apiguard_http_time_to_first_byte_seconds_count"),
            "{text}"
        );
        let mut answered = unanswered.clone();
        answered.http.status = Some(200);
        answered.http.response_start_ns = Some(1_000_000);
        answered.http.response_end_ns = Some(2_000_000);
        answered.http.request_header_bytes = 10;
        answered.http.response_header_bytes = 20;
        answered.http.response_body_bytes = 5;
        m.http.exchange(&mut cache, &answered);
        m.http.exchange(&mut cache, &answered);
        // The same route text from another allocation is the same series.
        answered.route = Some(Arc::from("/users/{userId}"));
        m.http.exchange(&mut cache, &answered);
        cache.publish();
        let text = m.render();
        let labels = r#"method="GET",role="server",route="/users/{userId}""#;
        for line in [
            format!(r#"apiguard_http_requests_total{{{labels},status="none",tls="false"}} 1"#),
            format!(r#"apiguard_http_requests_total{{{labels},status="200",tls="false"}} 3"#),
            format!(r#"apiguard_http_request_duration_seconds_count{{{labels},tls="false"}} 3"#),
            format!(r#"apiguard_http_time_to_first_byte_seconds_count{{{labels},tls="false"}} 3"#),
            r#"apiguard_http_request_bytes_total{role="server"} 30"#.to_string(),
            r#"apiguard_http_response_bytes_total{role="server"} 75"#.to_string(),
        ] {
            assert!(text.contains(&line), "{line} in\n{text}");
        }
        assert_eq!(m.http.exchanges_total(), 4);
    }

    /// A cache that starts over publishes first, and one dropped publishes what it kept.
    #[test]
    fn counts_survive_the_cache_starting_over_and_its_drop() {
        let m = Metrics::new();
        let mut cache = SeriesCache::default();
        let mut exchange = test_exchange(Role::Server, "192.0.2.1:40000", "/r");
        // Each route label by its own allocation is a series of the cache's own.
        for _ in 0..super::MAX_CACHED_SERIES {
            exchange.route = Some(Arc::from("/r"));
            m.http.exchange(&mut cache, &exchange);
        }
        assert_eq!(m.http.exchanges_total(), 0);
        exchange.route = Some(Arc::from("/r"));
        m.http.exchange(&mut cache, &exchange);
        assert_eq!(
            m.http.exchanges_total(),
            super::MAX_CACHED_SERIES as u64,
            "published as the cache started over"
        );
        drop(cache);
        assert_eq!(
            m.http.exchanges_total(),
            super::MAX_CACHED_SERIES as u64 + 1
        );
    }
}
