//! `api-guard status`: what the running daemon is doing — version, uptime, hooks attached,
//! TLS libraries hooked, XDP interfaces and drops, blocks, traffic and analysis totals. Built
//! on demand from the daemon's own state and metrics, so it never disagrees with /metrics.

use std::{collections::BTreeMap, path::PathBuf, time::Instant};

use serde::{Deserialize, Serialize};

use crate::{
    config::EnforceMode,
    enforce::Enforcer,
    probes::HookStatus,
    telemetry::{Metrics, Outcome},
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub pid: u32,
    pub uptime_secs: u64,
    /// The configuration file, `None` for the embedded defaults.
    pub config: Option<PathBuf>,
    pub mode: EnforceMode,
    /// How the data syscalls are captured: `exit-only` (Linux >= 5.15) or `entry+exit`
    /// (`docs/capture.md`, "Capture modes"); empty from a daemon that predates the modes.
    #[serde(default)]
    pub capture_mode: String,
    pub hooks: Vec<Hook>,
    /// Hooked TLS library files with their uprobe counts.
    pub tls_libraries: Vec<TlsLibrary>,
    /// Files with TLS code that were not hooked, by reason (`unsupported`: e.g. Go < 1.17).
    #[serde(default)]
    pub tls_files_skipped: BTreeMap<String, u64>,
    /// TLS handshakes read on the socket, by `version/cipher_family` (`tls1.3/tls13`).
    #[serde(default)]
    pub tls_handshakes: BTreeMap<String, u64>,
    pub xdp_interfaces: Vec<Interface>,
    pub xdp_dropped_packets: u64,
    pub blocks: usize,
    pub exchanges: u64,
    pub capture_dropped: u64,
    pub detections: u64,
    pub api_endpoints: u64,
    pub config_reloads: u64,
    pub config_reload_errors: u64,
    /// `None`: no `[cluster]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub node: String,
    pub connected: bool,
    pub operations: u64,
    pub errors: u64,
    /// Messages lost (hand-off or outbox full, invalid messages read).
    pub dropped: u64,
    /// Seconds since the last successful Redis round trip (`None`: never).
    pub last_ok_secs_ago: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hook {
    pub hook: String,
    pub attached: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TlsLibrary {
    pub path: String,
    pub probes: u64,
    /// Probe sites by kind (`entry`, `internal`, `entry_single_step`), only kinds in use.
    #[serde(default)]
    pub sites: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    pub ifindex: u32,
    pub mode: String,
    /// Taken over from a pinned earlier daemon.
    pub adopted: bool,
}

/// What the status is assembled from (held by the control socket).
#[derive(Clone)]
pub struct StatusSource {
    pub started: Instant,
    pub config: Option<PathBuf>,
    pub hooks: Vec<HookStatus>,
    pub capture_mode: &'static str,
    pub metrics: Metrics,
    /// This node's cluster name (`None`: no `[cluster]`).
    pub cluster_node: Option<String>,
}

impl StatusSource {
    pub fn status(&self, enforcer: &Enforcer) -> Status {
        let m = &self.metrics;
        let site_counts = m.tls.probe_sites();
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
            config: self.config.clone(),
            mode: enforcer.mode(),
            capture_mode: self.capture_mode.to_string(),
            hooks: self
                .hooks
                .iter()
                .map(|h| Hook {
                    hook: h.hook.clone(),
                    attached: h.attached,
                    error: h.error.clone(),
                })
                .collect(),
            tls_libraries: m
                .tls
                .probes_attached()
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(path, probes)| {
                    let sites = site_counts
                        .iter()
                        .filter(|(library, _, n)| *library == path && *n > 0)
                        .map(|(_, kind, n)| (kind.clone(), *n))
                        .collect();
                    TlsLibrary {
                        path,
                        probes,
                        sites,
                    }
                })
                .collect(),
            tls_files_skipped: m
                .tls
                .files_skipped()
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect(),
            tls_handshakes: m.tls.handshakes().into_iter().collect(),
            xdp_interfaces: enforcer
                .interfaces()
                .into_iter()
                .map(|(name, ifindex, mode, adopted)| Interface {
                    name,
                    ifindex,
                    mode: mode.to_string(),
                    adopted,
                })
                .collect(),
            xdp_dropped_packets: m.xdp.dropped_packets(),
            blocks: enforcer.list().len(),
            exchanges: m.http.exchanges_total(),
            capture_dropped: m.capture.dropped_total(None),
            detections: m.detect.findings_total(),
            api_endpoints: m.discover.endpoints(),
            config_reloads: m.ops.reloads(Outcome::Ok),
            config_reload_errors: m.ops.reloads(Outcome::Error),
            cluster: self.cluster_node.as_ref().map(|node| {
                let (operations, errors) = m.cluster.totals();
                let last = m.cluster.last_ok_ms();
                ClusterStatus {
                    node: node.clone(),
                    connected: m.cluster.is_connected(),
                    operations,
                    errors,
                    dropped: m.cluster.dropped_total(),
                    last_ok_secs_ago: (last > 0)
                        .then(|| crate::cluster::unix_ms().saturating_sub(last) / 1000),
                }
            }),
        }
    }
}

/// The human-readable form of `api-guard status`.
pub fn render(s: &Status) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let attached = s.hooks.iter().filter(|h| h.attached).count();
    let _ = writeln!(out, "api-guard {} (pid {})", s.version, s.pid);
    let _ = writeln!(out, "uptime          {}", human_duration(s.uptime_secs));
    let config = s.config.as_ref().map_or_else(
        || "embedded defaults".to_string(),
        |p| p.display().to_string(),
    );
    let _ = writeln!(
        out,
        "config          {config} ({} reloads, {} rejected)",
        s.config_reloads, s.config_reload_errors
    );
    let mode = match s.mode {
        EnforceMode::Enforce => "enforce",
        EnforceMode::DryRun => "dry-run",
    };
    let _ = writeln!(out, "mode            {mode}");
    let _ = writeln!(out, "hooks           {attached}/{} attached", s.hooks.len());
    if !s.capture_mode.is_empty() {
        let _ = writeln!(out, "capture         {}", s.capture_mode);
    }
    for h in s.hooks.iter().filter(|h| !h.attached) {
        let _ = writeln!(
            out,
            "  not attached  {}: {}",
            h.hook,
            h.error.as_deref().unwrap_or("?")
        );
    }
    let _ = writeln!(out, "tls libraries   {}", s.tls_libraries.len());
    for l in &s.tls_libraries {
        let sites: Vec<String> = l.sites.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = writeln!(
            out,
            "  {} ({} probes; sites: {})",
            l.path,
            l.probes,
            sites.join(", ")
        );
    }
    if !s.tls_files_skipped.is_empty() {
        let skipped: Vec<String> = s
            .tls_files_skipped
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        let _ = writeln!(out, "tls skipped     {} (see the log)", skipped.join(", "));
    }
    if !s.tls_handshakes.is_empty() {
        let seen: Vec<String> = s
            .tls_handshakes
            .iter()
            .map(|(negotiated, n)| format!("{n} {negotiated}"))
            .collect();
        let _ = writeln!(out, "tls handshakes  {}", seen.join(", "));
    }
    let _ = writeln!(out, "xdp interfaces  {}", s.xdp_interfaces.len());
    for i in &s.xdp_interfaces {
        let adopted = if i.adopted { ", adopted" } else { "" };
        let _ = writeln!(
            out,
            "  {} (ifindex {}, {}{adopted})",
            i.name, i.ifindex, i.mode
        );
    }
    let _ = writeln!(out, "xdp drops       {} packets", s.xdp_dropped_packets);
    let _ = writeln!(out, "blocks          {}", s.blocks);
    let _ = writeln!(out, "exchanges       {}", s.exchanges);
    let _ = writeln!(out, "capture drops   {}", s.capture_dropped);
    let _ = writeln!(out, "detections      {}", s.detections);
    let _ = write!(out, "api endpoints   {}", s.api_endpoints);
    if let Some(c) = &s.cluster {
        let state = if c.connected {
            "connected"
        } else {
            "DISCONNECTED (enforcing locally)"
        };
        let last = c
            .last_ok_secs_ago
            .map_or_else(|| "never".into(), |s| format!("{}s ago", s));
        let _ = write!(
            out,
            "\ncluster         node {}, {state}; {} redis ops ({} failed, last ok {last}), {} dropped",
            c.node, c.operations, c.errors, c.dropped
        );
    }
    out
}

fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(125), "2m 5s");
        assert_eq!(human_duration(3 * 3600 + 61), "3h 1m");
        assert_eq!(human_duration(2 * 86_400 + 7200), "2d 2h");
    }
}
