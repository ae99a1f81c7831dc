//! `[cluster]`: sharing blocks, limits and signals between nodes through Redis (or Valkey).
//! Without `redis_url` the section does nothing and the agent runs alone.

use std::path::PathBuf;

use api_guard::config::{invalid, Invalid};
use serde::Deserialize;

/// Longest key prefix.
const MAX_PREFIX: usize = 64;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// `redis://host:port[/db]` or `rediss://…` (TLS); `None`: no cluster (default).
    pub redis_url: Option<String>,
    /// PEM file of the CA that signed the server's certificate (`rediss://` only); default:
    /// the system's roots.
    pub ca_file: Option<PathBuf>,
    /// File holding the password (a Kubernetes Secret); read at start, never logged. A
    /// password inside `redis_url` is refused so it never sits in a config file.
    pub password_file: Option<PathBuf>,
    /// This node's name in shared state and events; default `NODE_NAME`, else the hostname.
    /// Must be unique in the cluster.
    pub node_name: Option<String>,
    /// Prefix of every Redis key, so several clusters can share one Redis (default
    /// `api-guard`).
    pub key_prefix: String,
    /// Connecting, TLS and AUTH included (default 1000 ms).
    pub connect_timeout_ms: u64,
    /// One command's answer (default 500 ms); a slower Redis counts as down.
    pub op_timeout_ms: u64,
    /// Longest wait between reconnection attempts (default 2000 ms; doubling from 100 ms).
    pub backoff_max_ms: u64,
    /// Hand-off queue from enforcement and detection to the cluster task, and the outbox kept
    /// while Redis is away (default 4096 each); what does not fit is counted and dropped.
    pub queue_capacity: usize,
    /// Approximate length the shared block stream is trimmed to (default 10000): a node away
    /// for longer resyncs from the hash of blocks in force.
    pub stream_max_len: u64,
    /// Cluster-scope limits: how often a node sends its usage and learns the cluster's
    /// (default 100 ms). A key not synced for 3 periods falls back to the local share.
    pub sync_interval_ms: u64,
    /// Cluster-scope limits without Redis: each node admits `rate / expected_nodes` (burst
    /// likewise, at least 1). Default 1: the whole limit on each node.
    pub expected_nodes: u32,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            ca_file: None,
            password_file: None,
            node_name: None,
            key_prefix: "api-guard".into(),
            connect_timeout_ms: 1000,
            op_timeout_ms: 500,
            backoff_max_ms: 2000,
            queue_capacity: 4096,
            stream_max_len: 10_000,
            sync_interval_ms: 100,
            expected_nodes: 1,
        }
    }
}

impl ClusterConfig {
    pub fn enabled(&self) -> bool {
        self.redis_url.is_some()
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(url) = &self.redis_url {
            let tls = url.starts_with("rediss://");
            if !tls && !url.starts_with("redis://") {
                return Err(invalid(
                    "cluster.redis_url",
                    "must start with redis:// or rediss://",
                ));
            }
            let authority = url
                .split_once("://")
                .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                if userinfo.contains(':') {
                    return Err(invalid(
                        "cluster.redis_url",
                        "holds a password: put it in the file named by cluster.password_file",
                    ));
                }
            }
            if self.ca_file.is_some() && !tls {
                return Err(invalid(
                    "cluster.ca_file",
                    "only applies to rediss:// (TLS) URLs",
                ));
            }
            if redis::IntoConnectionInfo::into_connection_info(url.as_str()).is_err() {
                return Err(invalid("cluster.redis_url", "is not a valid URL"));
            }
        }
        if let Some(name) = &self.node_name {
            if !valid_node_name(name) {
                return Err(invalid(
                    "cluster.node_name",
                    "must be a DNS name of letters, digits, '-' and '.' (at most 253 characters)",
                ));
            }
        }
        let prefix_ok = !self.key_prefix.is_empty()
            && self.key_prefix.len() <= MAX_PREFIX
            && self
                .key_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if !prefix_ok {
            return Err(invalid(
                "cluster.key_prefix",
                "must be 1-64 letters, digits, '-', '_', '.' or ':'",
            ));
        }
        for (field, value, min, max) in [
            (
                "cluster.connect_timeout_ms",
                self.connect_timeout_ms,
                10,
                60_000,
            ),
            ("cluster.op_timeout_ms", self.op_timeout_ms, 10, 60_000),
            ("cluster.backoff_max_ms", self.backoff_max_ms, 100, 300_000),
            (
                "cluster.stream_max_len",
                self.stream_max_len,
                100,
                10_000_000,
            ),
            (
                "cluster.sync_interval_ms",
                self.sync_interval_ms,
                10,
                10_000,
            ),
            (
                "cluster.expected_nodes",
                u64::from(self.expected_nodes),
                1,
                10_000,
            ),
            (
                "cluster.queue_capacity",
                self.queue_capacity as u64,
                16,
                1 << 20,
            ),
        ] {
            if !(min..=max).contains(&value) {
                return Err(invalid(field, format!("must be in {min}..={max}")));
            }
        }
        Ok(())
    }
}

pub use api_guard::node::valid_node_name;

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> ClusterConfig {
        ClusterConfig {
            redis_url: Some(url.into()),
            ..ClusterConfig::default()
        }
    }

    #[test]
    fn default_is_off_and_valid() {
        let c = ClusterConfig::default();
        assert!(!c.enabled());
        c.validate().unwrap();
    }

    #[test]
    fn urls_are_checked() {
        with_url("redis://127.0.0.1:6379").validate().unwrap();
        with_url("rediss://redis.example:6380/2")
            .validate()
            .unwrap();
        with_url("redis://agent@redis:6379").validate().unwrap();
        for (bad, msg) in [
            ("http://redis:6379", "redis://"),
            ("redis://user:secret@redis:6379", "password_file"),
            ("redis://:secret@redis:6379", "password_file"),
        ] {
            let e = with_url(bad).validate().unwrap_err();
            assert_eq!(e.field, "cluster.redis_url");
            assert!(e.reason.contains(msg), "{bad}: {}", e.reason);
        }
        let mut c = with_url("redis://redis:6379");
        c.ca_file = Some("/ca.pem".into());
        assert_eq!(c.validate().unwrap_err().field, "cluster.ca_file");
    }

    #[test]
    fn names_prefixes_and_ranges_are_checked() {
        let mut c = with_url("redis://r:6379");
        c.node_name = Some("node a".into());
        assert_eq!(c.validate().unwrap_err().field, "cluster.node_name");
        c.node_name = Some("node-a.zone".into());
        c.key_prefix = "has space".into();
        assert_eq!(c.validate().unwrap_err().field, "cluster.key_prefix");
        c.key_prefix = "ag:prod".into();
        c.op_timeout_ms = 0;
        assert_eq!(c.validate().unwrap_err().field, "cluster.op_timeout_ms");
        c.op_timeout_ms = 500;
        c.queue_capacity = 1;
        assert_eq!(c.validate().unwrap_err().field, "cluster.queue_capacity");
        c.queue_capacity = 64;
        c.expected_nodes = 0;
        assert_eq!(c.validate().unwrap_err().field, "cluster.expected_nodes");
    }
}
