//! The security events enforcement writes (`type`: block, unblock, would_block,
//! ratelimit_exceeded); field meanings are documented in README.md.

use std::net::IpAddr;

use serde::Serialize;

use super::blocklist::Block;
use crate::{exchange::Exchange, wallclock::rfc3339_from_monotonic};
use api_guard::identity::ClientIdentity;
use api_guard::text::truncate;

/// Request details attached to events about it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RequestView<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub host: Option<&'a str>,
    pub pid: u32,
    pub comm: &'a str,
}

impl<'a> RequestView<'a> {
    pub fn of(ex: &'a Exchange) -> Self {
        Self {
            method: &ex.http.method,
            path: truncate(&ex.http.path, MAX_EVENT_PATH),
            host: ex.http.host.as_deref(),
            pid: ex.conn.pid,
            comm: &ex.conn.comm,
        }
    }
}

/// Longest request path quoted in an event (paths can be as long as a request head).
pub const MAX_EVENT_PATH: usize = 512;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ClientView {
    ip: Option<IpAddr>,
    via_proxy: Option<IpAddr>,
    credential: Option<String>,
    jwt_subject: Option<String>,
}

impl ClientView {
    pub fn of(c: &ClientIdentity) -> Self {
        Self {
            ip: c.ip,
            via_proxy: c.via_proxy,
            credential: c.credential.as_ref().map(|c| c.hash.clone()),
            jwt_subject: c.credential.as_ref().and_then(|c| c.jwt_subject.clone()),
        }
    }
}

/// A security event line (`type` names it).
#[derive(Debug, Serialize)]
pub(super) struct Event<'a> {
    time: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub target: Option<String>,
    pub reason: &'static str,
    pub policy: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub until: Option<String>,
    pub duration_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestView<'a>>,
    /// Whether the XDP guard now drops it.
    pub enforced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

impl<'a> Event<'a> {
    pub fn new(kind: &'static str, reason: &'static str, now_ns: u64) -> Self {
        Self {
            time: rfc3339_from_monotonic(now_ns),
            kind,
            target: None,
            reason,
            policy: None,
            detail: None,
            until: None,
            duration_secs: None,
            client: None,
            request: None,
            enforced: false,
            note: None,
        }
    }

    pub fn about(mut self, block: &'a Block) -> Self {
        self.target = Some(block.target.to_string());
        self.policy = block.policy.as_deref();
        self.detail = block.detail.as_deref();
        self.until = block.until_ns.map(rfc3339_from_monotonic);
        self.duration_secs = block
            .until_ns
            .map(|u| u.saturating_sub(block.since_ns).div_ceil(1_000_000_000));
        self
    }
}
