//! The block messages nodes exchange through Redis (JSON), and their validation: whatever
//! is read from Redis is untrusted input.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{config::valid_node_name, unix_ms};
use crate::{
    enforce::{
        blocklist::{Block, BlockReason},
        config::MAX_BLOCK_SECS,
        target::Target,
        RemoteChange,
    },
    wallclock::monotonic_now_ns,
};

/// Longest message accepted from Redis.
pub const MAX_MESSAGE: usize = 4096;
/// Longest policy name and detail kept from a remote message (longer ones are cut).
const MAX_TEXT: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Block,
    Unblock,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMsg {
    pub op: Op,
    pub target: String,
    /// Unix ms at which the block ends; `None`: until removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The node that decided it.
    pub node: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("message too long or not JSON")]
    Syntax,
    #[error("bad target")]
    Target,
    #[error("bad node name")]
    Node,
    #[error("bad reason")]
    Reason,
    #[error("end too far ahead")]
    Until,
}

impl BlockMsg {
    /// A block this node decided, its end in wall-clock time.
    pub fn block(block: &Block, node: &str) -> Self {
        let now = monotonic_now_ns();
        let until_ms = block
            .until_ns
            .map(|u| unix_ms().saturating_add(u.saturating_sub(now).div_ceil(1_000_000)));
        Self {
            op: Op::Block,
            target: block.target.to_string(),
            until_ms,
            reason: Some(block.reason.as_str().into()),
            policy: block.policy.as_deref().map(Into::into),
            detail: block.detail.clone(),
            node: node.into(),
        }
    }

    pub fn unblock(target: &Target, node: &str) -> Self {
        Self {
            op: Op::Unblock,
            target: target.to_string(),
            until_ms: None,
            reason: None,
            policy: None,
            detail: None,
            node: node.into(),
        }
    }

    pub fn to_json(&self) -> String {
        // Plain strings and numbers: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, Invalid> {
        if bytes.len() > MAX_MESSAGE {
            return Err(Invalid::Syntax);
        }
        serde_json::from_slice(bytes).map_err(|_| Invalid::Syntax)
    }

    /// Whether a block's end has passed at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.until_ms.is_some_and(|u| u <= now_ms)
    }

    /// Checks a message read from Redis and turns it into a change for this node's
    /// enforcer: the end in this node's monotonic clock.
    pub fn to_change(&self, now_ms: u64, now_ns: u64) -> Result<(RemoteChange, Arc<str>), Invalid> {
        if !valid_node_name(&self.node) {
            return Err(Invalid::Node);
        }
        let target: Target = self.target.parse().map_err(|_| Invalid::Target)?;
        let node: Arc<str> = self.node.as_str().into();
        if self.op == Op::Unblock {
            return Ok((RemoteChange::Unblock { target }, node));
        }
        let reason = match self.reason.as_deref() {
            Some("manual") => BlockReason::Manual,
            Some("ratelimit") => BlockReason::Ratelimit,
            Some("detection") => BlockReason::Detection,
            _ => return Err(Invalid::Reason),
        };
        let until_ns = match self.until_ms {
            None => None,
            Some(u) => {
                let left_ms = u.saturating_sub(now_ms);
                if left_ms > MAX_BLOCK_SECS * 1000 {
                    return Err(Invalid::Until);
                }
                Some(now_ns.saturating_add(left_ms * 1_000_000))
            }
        };
        let cut = |s: &Option<String>| {
            s.as_deref()
                .map(|s| s.chars().take(MAX_TEXT).collect::<String>())
        };
        Ok((
            RemoteChange::Block {
                target,
                until_ns,
                reason,
                policy: cut(&self.policy).map(Into::into),
                detail: cut(&self.detail),
            },
            node,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(json: &str) -> Result<(RemoteChange, Arc<str>), Invalid> {
        BlockMsg::parse(json.as_bytes())?.to_change(1_000_000, 5_000_000_000)
    }

    #[test]
    fn round_trips_and_converts_the_end() {
        let block = Block {
            target: "192.0.2.7".parse().unwrap(),
            reason: BlockReason::Manual,
            policy: None,
            detail: Some("why".into()),
            since_ns: 0,
            until_ns: Some(monotonic_now_ns() + 60_000_000_000),
            origin: None,
        };
        let m = BlockMsg::block(&block, "node-a");
        let back = BlockMsg::parse(m.to_json().as_bytes()).unwrap();
        assert_eq!(back, m);
        let left = m.until_ms.unwrap() - unix_ms();
        assert!((59_000..=60_001).contains(&left), "{left}");
        let (change, node) = msg(
            r#"{"op":"block","target":"192.0.2.7","until_ms":1002000,"reason":"ratelimit","node":"b"}"#,
        )
        .unwrap();
        assert_eq!(&*node, "b");
        let RemoteChange::Block {
            until_ns, reason, ..
        } = change
        else {
            panic!("{change:?}");
        };
        assert_eq!(until_ns, Some(7_000_000_000));
        assert_eq!(reason, BlockReason::Ratelimit);
    }

    #[test]
    fn hostile_messages_are_refused() {
        for (json, want) in [
            ("not json", Invalid::Syntax),
            (
                r#"{"op":"block","target":"10.0.0.1/8","reason":"manual","node":"b"}"#,
                Invalid::Target,
            ),
            (
                r#"{"op":"block","target":"10.0.0.1","reason":"config","node":"b"}"#,
                Invalid::Reason,
            ),
            (
                r#"{"op":"block","target":"10.0.0.1","reason":"manual","node":"b c"}"#,
                Invalid::Node,
            ),
            (
                r#"{"op":"block","target":"10.0.0.1","reason":"manual","node":"b","until_ms":99999999999999}"#,
                Invalid::Until,
            ),
        ] {
            assert_eq!(msg(json).unwrap_err(), want, "{json}");
        }
        let long = format!(
            r#"{{"op":"unblock","target":"10.0.0.1","node":"b","detail":"{}"}}"#,
            "x".repeat(MAX_MESSAGE)
        );
        assert_eq!(msg(&long).unwrap_err(), Invalid::Syntax);
        let cut = format!(
            r#"{{"op":"block","target":"10.0.0.1","reason":"manual","node":"b","detail":"{}"}}"#,
            "x".repeat(1000)
        );
        let (RemoteChange::Block { detail, .. }, _) = msg(&cut).unwrap() else {
            panic!()
        };
        assert_eq!(detail.unwrap().len(), MAX_TEXT);
    }
}
