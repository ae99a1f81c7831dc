//! Request content no detector saw. Padding a request past the inspection limit is the oldest
//! WAF bypass, so it never passes silently: body bytes beyond what the detectors read — past
//! `detect.limits.max_body_bytes` (live bodies are scanned as they stream, whatever prefix
//! capture keeps; without a scan, past that prefix), or lost to a capture gap (the kernel's
//! per-call cap, a full ring buffer), after which the scan stops — become a
//! `protocol.uninspected_content` finding at a configured severity (so `block_severity` can
//! act on it), and are counted.

use serde::Deserialize;

use super::{
    finding::{Finding, Severity},
    inputs::InputLimits,
    request::Request,
    rules,
    stream::Window,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UninspectedConfig {
    /// Report requests with uninspected content (default true).
    pub enabled: bool,
    /// The finding's severity (default `low`: large uploads are everyday; raise it to
    /// `high` or `critical` with `block_severity` to refuse what cannot be inspected, as a
    /// WAF's request-body limit with a reject action does).
    pub severity: Severity,
    /// Uninspected bytes below which nothing is reported (default 1).
    pub min_bytes: u64,
}

impl Default for UninspectedConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            severity: Severity::Low,
            min_bytes: 1,
        }
    }
}

/// Why content went uninspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Capture lost part of the request (per-call cap, ring buffer full).
    CaptureGap,
    /// The body is longer than the prefix kept for analysis (`http.max_body_capture_bytes`,
    /// `detect.limits.max_body_bytes`).
    BodyLimit,
}

impl Reason {
    pub const ALL: [Reason; 2] = [Reason::CaptureGap, Reason::BodyLimit];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::CaptureGap => "capture_gap",
            Reason::BodyLimit => "body_limit",
        }
    }
}

/// Body bytes of one request the detectors did not see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uninspected {
    pub reason: Reason,
    pub bytes: u64,
}

/// What of `req`'s body the detectors did not read; `capture_gap` when capture lost part of
/// the request (the body prefix then stops at the gap).
#[must_use]
pub fn measure(req: &Request<'_>, limits: &InputLimits, capture_gap: bool) -> Option<Uninspected> {
    let read = req.body.len().min(limits.max_body_bytes) as u64;
    let bytes = req.body_len.saturating_sub(read);
    if bytes == 0 {
        return None;
    }
    // A prefix that stopped short of the analysis limit stopped at a gap.
    let reason = if capture_gap && req.body.len() < limits.max_body_bytes {
        Reason::CaptureGap
    } else {
        Reason::BodyLimit
    };
    Some(Uninspected { reason, bytes })
}

/// What of `req`'s body the scan that read it as it streamed (`scan`, its last window) did
/// not reach: past `max_body_bytes`, or after a capture gap that ended the scan.
#[must_use]
pub fn measure_scanned(req: &Request<'_>, scan: &Window, capture_gap: bool) -> Option<Uninspected> {
    let bytes = req.body_len.saturating_sub(scan.scanned);
    if bytes == 0 {
        return None;
    }
    let reason = if scan.stopped_at_gap || (capture_gap && !scan.limit_reached) {
        Reason::CaptureGap
    } else {
        Reason::BodyLimit
    };
    Some(Uninspected { reason, bytes })
}

/// The finding for `u`, if reporting is on and it is large enough.
#[must_use]
pub fn finding(u: &Uninspected, config: &UninspectedConfig) -> Option<Finding> {
    if !config.enabled || u.bytes < config.min_bytes {
        return None;
    }
    let evidence = format!(
        "{} body bytes not inspected ({})",
        u.bytes,
        u.reason.as_str()
    );
    let mut f = Finding::new(&rules::PROTOCOL_UNINSPECTED_CONTENT, "body", &evidence);
    f.severity = config.severity;
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::offline::OwnedRequest;

    fn req(body_len: usize, captured: usize) -> OwnedRequest {
        let mut raw = format!("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: {body_len}\r\n\r\n")
            .into_bytes();
        raw.extend(std::iter::repeat_n(b'x', captured));
        OwnedRequest::from_raw(&raw)
    }

    #[test]
    fn bytes_past_the_analysis_limit_or_a_gap_are_measured() {
        let limits = InputLimits {
            max_body_bytes: 64 << 10,
            ..InputLimits::default()
        };
        let whole = req(1000, 1000);
        fn view(r: &OwnedRequest, len: u64) -> Request<'_> {
            Request {
                body_len: len,
                ..r.view(None, None)
            }
        }
        assert_eq!(measure(&view(&whole, 1000), &limits, false), None);
        // 200 KiB received, the prefix kept is the analysis limit.
        let big = req(200 << 10, limits.max_body_bytes);
        assert_eq!(
            measure(&view(&big, 200 << 10), &limits, false),
            Some(Uninspected {
                reason: Reason::BodyLimit,
                bytes: (200 << 10) - limits.max_body_bytes as u64
            })
        );
        // A gap after 16 KiB: the prefix stops there.
        let gapped = req(20 << 10, 16 << 10);
        assert_eq!(
            measure(&view(&gapped, 20 << 10), &limits, true),
            Some(Uninspected {
                reason: Reason::CaptureGap,
                bytes: 4 << 10
            })
        );
        // Scanned as it streamed: what the scan did not reach, and why it stopped.
        let scan = |scanned: u64, stopped_at_gap: bool, limit_reached: bool| Window {
            scanned,
            stopped_at_gap,
            limit_reached,
            ..Window::default()
        };
        let prefix = req(300 << 10, 64 << 10);
        let view300 = view(&prefix, 300 << 10);
        assert_eq!(
            measure_scanned(&view300, &scan(300 << 10, false, false), false),
            None
        );
        assert_eq!(
            measure_scanned(&view300, &scan(256 << 10, false, true), true),
            Some(Uninspected {
                reason: Reason::BodyLimit,
                bytes: 44 << 10
            })
        );
        assert_eq!(
            measure_scanned(&view300, &scan(100 << 10, true, false), true),
            Some(Uninspected {
                reason: Reason::CaptureGap,
                bytes: 200 << 10
            })
        );
        let config = UninspectedConfig::default();
        let f = finding(
            &Uninspected {
                reason: Reason::CaptureGap,
                bytes: 4096,
            },
            &config,
        )
        .expect("reported");
        assert_eq!(
            (f.rule_id, f.severity, f.location.as_str()),
            ("protocol.uninspected_content", Severity::Low, "body")
        );
        assert_eq!(f.evidence, "4096 body bytes not inspected (capture_gap)");
        let off = UninspectedConfig {
            enabled: false,
            ..config
        };
        assert!(finding(
            &Uninspected {
                reason: Reason::BodyLimit,
                bytes: 1
            },
            &off
        )
        .is_none());
    }
}
