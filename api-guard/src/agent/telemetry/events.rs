//! Security events: what each output wrote or lost, file rotations, webhook requests.

use prometheus::{IntCounterVec, Registry};

use super::{counter_vec, Outcome};

/// Where security events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stdout,
    File,
    Webhook,
}

impl Output {
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Stdout => "stdout",
            Output::File => "file",
            Output::Webhook => "webhook",
        }
    }
}

/// Why security events were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventDrop {
    QueueFull,
    /// The webhook answered another 4xx/3xx.
    Rejected,
    RetriesExhausted,
    /// Still queued when the drain time ran out.
    Shutdown,
    WriteError,
}

impl EventDrop {
    pub fn as_str(self) -> &'static str {
        match self {
            EventDrop::QueueFull => "queue_full",
            EventDrop::Rejected => "rejected",
            EventDrop::RetriesExhausted => "retries_exhausted",
            EventDrop::Shutdown => "shutdown",
            EventDrop::WriteError => "write_error",
        }
    }
}

/// How one webhook POST went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookResult {
    Ok,
    /// Failed, will be retried.
    Retry,
    /// Failed for good.
    Error,
}

impl WebhookResult {
    pub const ALL: [WebhookResult; 3] = [
        WebhookResult::Ok,
        WebhookResult::Retry,
        WebhookResult::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookResult::Ok => "ok",
            WebhookResult::Retry => "retry",
            WebhookResult::Error => "error",
        }
    }
}

pub struct Events {
    written: IntCounterVec,
    dropped: IntCounterVec,
    file_rotations: IntCounterVec,
    webhook_requests: IntCounterVec,
}

impl Events {
    pub(super) fn new(r: &Registry) -> Self {
        Self {
            written: counter_vec(
                r,
                "apiguard_events_total",
                "Security events written (stdout, file) or delivered (webhook), by output.",
                &["output"],
            ),
            dropped: counter_vec(
                r,
                "apiguard_events_dropped_total",
                "Security events lost, by output and reason (queue_full, rejected, \
                 retries_exhausted, shutdown, write_error).",
                &["output", "reason"],
            ),
            file_rotations: counter_vec(
                r,
                "apiguard_events_file_rotations_total",
                "Rotations of the events file, by result (ok, error).",
                &["result"],
            ),
            webhook_requests: counter_vec(
                r,
                "apiguard_webhook_requests_total",
                "Event webhook POSTs, by result (ok; retry: failed and retried; error: failed \
                 for good).",
                &["result"],
            ),
        }
    }

    /// Makes `output`'s series visible before its first event.
    pub fn expect(&self, output: Output) {
        self.written.with_label_values(&[output.as_str()]);
    }

    /// Makes the webhook's series visible before its first request.
    pub fn expect_webhook(&self) {
        for result in WebhookResult::ALL {
            self.webhook_requests.with_label_values(&[result.as_str()]);
        }
        self.expect(Output::Webhook);
    }

    pub fn written(&self, output: Output, n: u64) {
        self.written.with_label_values(&[output.as_str()]).inc_by(n);
    }

    pub fn dropped(&self, output: Output, reason: EventDrop, n: u64) {
        self.dropped
            .with_label_values(&[output.as_str(), reason.as_str()])
            .inc_by(n);
    }

    pub fn rotation(&self, outcome: Outcome) {
        self.file_rotations
            .with_label_values(&[outcome.as_str()])
            .inc();
    }

    pub fn webhook_request(&self, result: WebhookResult) {
        self.webhook_requests
            .with_label_values(&[result.as_str()])
            .inc();
    }

    #[cfg(test)]
    pub fn written_count(&self, output: Output) -> u64 {
        self.written.with_label_values(&[output.as_str()]).get()
    }

    #[cfg(test)]
    pub fn dropped_count(&self, output: Output, reason: EventDrop) -> u64 {
        self.dropped
            .with_label_values(&[output.as_str(), reason.as_str()])
            .get()
    }

    #[cfg(test)]
    pub fn webhook_requests(&self, result: WebhookResult) -> u64 {
        self.webhook_requests
            .with_label_values(&[result.as_str()])
            .get()
    }
}
