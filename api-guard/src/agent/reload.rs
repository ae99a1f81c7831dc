//! Configuration reload, on SIGHUP and when the file changes (polled: a Kubernetes ConfigMap
//! update swaps a symbolic link, which a poll of the resolved file sees like any edit).
//!
//! A reload is all or nothing: the new file is parsed and validated, and what it needs from
//! disk (JWT keys) is read, before anything is applied; an invalid file is logged, counted
//! (`apiguard_config_reloads_total{result="error"}`) and the running configuration stays.
//! Applied without detaching anything: `[identity]` (trusted proxies and API key places: they
//! reach the parsing task, which identifies every client once for all consumers, and the
//! kernel allowlist, as trusted proxies are never blocked), `[enforce]` (mode, allowlist, deny
//! list, policies — unchanged policies keep their limiter state —, default block length),
//! `[detect]` (a new engine with the new thresholds; its detection windows
//! start empty) and `[events]` (rotation limits, webhook). Sections sized or attached at start (`capture`, `http`, `tls`, `xdp`,
//! `discover`, `enforce.max_blocks`, `enforce.max_limiter_keys`, `detect.enabled`,
//! `detect.queue_capacity`, `detect.limits`) are reported as needing a restart and keep their running values.

use std::{
    os::unix::fs::MetadataExt as _,
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use anyhow::Context as _;
use api_guard::identity::Identifier;
use tokio::{signal::unix::SignalKind, sync::watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    analysis::detect::{DetectSettings, DetectionQueue},
    config::Config,
    enforce::Enforcer,
    output::EventSink,
    telemetry::{Metrics, Outcome},
};

/// How often the file is checked for changes.
const POLL: Duration = Duration::from_secs(2);

/// What identifies a version of the file: a rename-over or an edit changes one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    inode: u64,
    size: u64,
    modified: Option<SystemTime>,
}

fn version(path: &std::path::Path) -> Option<Version> {
    let m = std::fs::metadata(path).ok()?;
    Some(Version {
        inode: m.ino(),
        size: m.size(),
        modified: m.modified().ok(),
    })
}

pub struct Reloader {
    path: PathBuf,
    running: Config,
    seen: Option<Version>,
    enforcer: Arc<Enforcer>,
    /// The parsing task's identity settings.
    identity: watch::Sender<Identifier>,
    detections: Option<DetectionQueue>,
    events: EventSink,
    metrics: Metrics,
}

impl Reloader {
    pub fn new(
        path: PathBuf,
        running: Config,
        enforcer: Arc<Enforcer>,
        identity: watch::Sender<Identifier>,
        detections: Option<DetectionQueue>,
        events: EventSink,
        metrics: Metrics,
    ) -> Self {
        Self {
            seen: version(&path),
            path,
            running,
            enforcer,
            identity,
            detections,
            events,
            metrics,
        }
    }

    /// Re-reads the file and applies it; on error nothing changes.
    pub fn reload(&mut self, why: &str) {
        match self.try_reload() {
            Ok(changed) => {
                self.metrics.ops.reload(Outcome::Ok);
                info!(file = %self.path.display(), why, changed = %changed.join(","), "Configuration reloaded");
            }
            Err(error) => {
                self.metrics.ops.reload(Outcome::Error);
                warn!(file = %self.path.display(), why, error = %format!("{error:#}"),
                    "Configuration reload rejected; the running configuration stays");
            }
        }
    }

    /// Returns the sections applied.
    fn try_reload(&mut self) -> anyhow::Result<Vec<&'static str>> {
        let mut new = Config::load(&self.path)?;
        for deprecation in &new.deprecations {
            warn!(%deprecation, "Deprecated configuration key");
        }
        for section in restart_only(&self.running, &mut new) {
            warn!(
                section,
                "Changed in the configuration file; takes effect after a restart"
            );
        }
        let detect = (self.detections.is_some() && !same(&self.running.detect, &new.detect))
            .then(|| DetectSettings::new(&new.detect))
            .transpose()
            .context("detect")?;
        let mut changed = Vec::new();
        // Sinks first: a webhook token that cannot be read rejects the reload before any
        // other section changes (the remaining steps only fail on kernel map errors).
        // Always handed over: a token file's new content is a change the settings don't show.
        self.events
            .reconfigure(&new.events)
            .context("applying [events]")?;
        if !same(&self.running.events, &new.events) {
            changed.push("events");
        }
        // Trusted proxies are never blocked: their changes reach enforcement too.
        if !same(&self.running.enforce, &new.enforce)
            || !same(&self.running.identity, &new.identity)
        {
            self.enforcer
                .reconfigure(&new.enforce, &new.identity.trusted_proxies)
                .context("applying [enforce]")?;
            changed.push("enforce");
        }
        if !same(&self.running.identity, &new.identity) {
            self.identity.send_replace(new.identity.identifier());
            changed.push("identity");
        }
        if let (Some(settings), Some(queue)) = (detect, &self.detections) {
            queue.control(Box::new(settings))?;
            changed.push("detect");
        }
        self.running = new;
        Ok(changed)
    }

    fn file_changed(&mut self) -> bool {
        let now = version(&self.path);
        if now.is_some() && now != self.seen {
            self.seen = now;
            return true;
        }
        false
    }
}

/// Settings compared by their debug form: every config type derives `Debug`, field by field
/// and in a fixed order (no hash maps), which is all a "did this change" needs.
fn same<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

/// Names the sections that changed but cannot be applied while running, and puts their
/// running values back into `new`, so what runs is what `running` says.
fn restart_only(running: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! keep {
        ($($field:ident).+, $name:expr) => {
            if !same(&running.$($field).+, &new.$($field).+) {
                changed.push($name);
                new.$($field).+ = running.$($field).+.clone();
            }
        };
    }
    keep!(capture, "capture");
    keep!(http, "http");
    keep!(tls, "tls");
    keep!(xdp, "xdp");
    keep!(discover, "discover");
    keep!(enforce.max_blocks, "enforce.max_blocks");
    keep!(enforce.max_limiter_keys, "enforce.max_limiter_keys");
    keep!(detect.enabled, "detect.enabled");
    keep!(detect.queue_capacity, "detect.queue_capacity");
    // The parsing task scans request bodies with these.
    keep!(detect.limits, "detect.limits");
    keep!(cluster, "cluster");
    changed
}

/// Reloads on SIGHUP and when the file changes, until shutdown.
pub async fn run(mut reloader: Reloader, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut hup = tokio::signal::unix::signal(SignalKind::hangup())?;
    let mut poll = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            _ = hup.recv() => {
                // The reload reads files and may wait for the detection queue: not on a
                // runtime worker's async path.
                reloader.file_changed();
                tokio::task::block_in_place(|| reloader.reload("SIGHUP"));
            }
            _ = poll.tick() => {
                if reloader.file_changed() {
                    tokio::task::block_in_place(|| reloader.reload("file changed"));
                }
            }
            () = shutdown.cancelled() => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_only_sections_keep_their_running_values() {
        let running = Config::parse("[capture]\ncomms = [\"nginx\"]\n", "a").unwrap();
        let mut new = Config::parse(
            "[capture]\ncomms = [\"curl\"]\n[enforce]\nmode = \"dry-run\"\nmax_blocks = 5\n\
             [detect]\nqueue_capacity = 7\nblock_secs = 30\n",
            "b",
        )
        .unwrap();
        let changed = restart_only(&running, &mut new);
        assert_eq!(
            changed,
            ["capture", "enforce.max_blocks", "detect.queue_capacity"]
        );
        assert_eq!(new.capture.comms, ["nginx"]);
        assert_eq!(new.enforce.max_blocks, running.enforce.max_blocks);
        // What can be applied is left as the file says.
        assert_eq!(new.enforce.mode, crate::config::EnforceMode::DryRun);
        assert_eq!(new.detect.block_secs, 30);
        assert!(same(&running.http, &new.http));
        assert!(!same(&running.enforce, &new.enforce));
    }
}
