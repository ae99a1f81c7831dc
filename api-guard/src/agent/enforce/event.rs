//! The security events enforcement reports (`block`, `unblock`, `would_block`,
//! `ratelimit_exceeded`), made from its blocks; the schema is [`api_guard::event`].

use api_guard::event::Enforcement;

use super::blocklist::Block;
use crate::wallclock::rfc3339_from_monotonic;

/// What an event says of `block`, for `reason`.
pub(super) fn about<'a>(block: &'a Block, reason: &'static str) -> Enforcement<'a> {
    Enforcement {
        target: Some(block.target.to_string()),
        reason,
        policy: block.policy.as_deref(),
        detail: block.detail.as_deref(),
        until: block.until_ns.map(rfc3339_from_monotonic),
        duration_secs: block
            .until_ns
            .map(|u| u.saturating_sub(block.since_ns).div_ceil(1_000_000_000)),
        ..Enforcement::default()
    }
}
