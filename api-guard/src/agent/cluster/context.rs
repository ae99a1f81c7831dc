//! What a cluster-wide detection event shows about the exchange that triggered it: an owned
//! copy of its event context, taken on the detection thread (the exchange is gone by the time
//! the cluster task, after the next sync tick, learns it won the right to report).

use api_guard::{
    detect::Finding,
    event::{ClientView, Detection, EventBody, ExchangeContext, RequestView, SecurityEvent},
    identity::ClientIdentity,
};

use crate::{exchange::Exchange, output::EventSink, telemetry::Metrics};

#[derive(Debug, Clone)]
pub struct EventContext {
    client: ClientView,
    method: String,
    path: String,
    host: Option<String>,
    pid: u32,
    comm: String,
    status: Option<u16>,
    conn_id: u64,
    tls: bool,
}

impl EventContext {
    pub fn of(ex: &Exchange, client: &ClientIdentity) -> Self {
        let request = RequestView::of(ex);
        Self {
            client: ClientView::of(client),
            method: request.method.into(),
            path: request.path.into(),
            host: request.host.map(Into::into),
            pid: request.pid,
            comm: request.comm.into(),
            status: ex.http.status,
            conn_id: ex.conn.conn_id,
            tls: ex.conn.tls(),
        }
    }

    fn context(&self) -> ExchangeContext<'_> {
        ExchangeContext {
            client: self.client.clone(),
            request: RequestView {
                method: &self.method,
                path: &self.path,
                host: self.host.as_deref(),
                pid: self.pid,
                comm: &self.comm,
            },
            status: self.status,
            conn_id: self.conn_id,
            tls: self.tls,
            suppressed: 0,
        }
    }

    /// Emits `finding` as a detection event about this exchange (and counts it).
    pub fn report(&self, finding: &Finding, events: &EventSink, metrics: &Metrics) {
        metrics.detect.finding(finding.kind, finding.severity);
        let body = EventBody::Detection(Detection {
            finding,
            context: self.context(),
        });
        events.emit(&SecurityEvent::new(
            crate::wallclock::monotonic_now_ns(),
            body,
        ));
    }

    #[cfg(test)]
    pub fn conn_id(&self) -> u64 {
        self.conn_id
    }

    /// A plaintext request from `client` (tests).
    #[cfg(test)]
    pub fn for_test(
        client: &ClientIdentity,
        method: &str,
        path: &str,
        status: u16,
        conn_id: u64,
    ) -> Self {
        Self {
            client: ClientView::of(client),
            method: method.into(),
            path: path.into(),
            host: None,
            pid: 7,
            comm: "python3".into(),
            status: Some(status),
            conn_id,
            tls: false,
        }
    }
}
