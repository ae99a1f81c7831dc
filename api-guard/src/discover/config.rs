//! `[discover]`: the live API inventory, its persistence, the spec it is compared with, and
//! the bounds that keep it and the `route` metric label safe under hostile traffic.

use std::path::PathBuf;

use serde::Deserialize;

use super::inventory::InventoryConfig;
use crate::detect::config::{invalid, Invalid};

/// Where the inventory snapshot is kept unless configured otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/api-guard";
/// Most `route` label values allowed (each multiplies the request metric series).
pub const MAX_ROUTE_LABELS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoverConfig {
    /// Build the live inventory (default true). The `route` metric label is kept either way.
    pub enabled: bool,
    /// An OpenAPI 3.x document (JSON or YAML): its paths become known route templates,
    /// endpoints it lacks are shadow endpoints, and requests that break it are reported as
    /// `spec_violation` events (default none).
    pub spec: Option<PathBuf>,
    /// Hosts (`Host` header, with the port if it carries one) the spec describes; requests
    /// to others are neither checked nor counted as shadow endpoints (default: all hosts).
    pub spec_hosts: Vec<String>,
    /// Directory of the inventory snapshot `inventory.json` (default `/var/lib/api-guard`,
    /// created with mode 0700; `api-guard run --state-dir` overrides it).
    pub state_dir: PathBuf,
    /// Seconds between snapshots (default 60; one is also written at a clean stop); 0 keeps
    /// the inventory in memory only and loads nothing at start.
    pub snapshot_interval_secs: u64,
    /// Exchanges waiting for the discovery thread (default 4096, as detection's: the 8 MiB byte
    /// bound caps what they hold; 1024 skipped hundreds under the overhead bench on a loaded
    /// host); beyond, they are counted in `apiguard_discover_exchanges_skipped_total` and not
    /// recorded.
    pub queue_capacity: usize,
    /// Distinct `route` label values on the request metrics (default 200); later routes are
    /// labelled `other`.
    pub max_route_labels: usize,
    /// `spec_violation` events per client and second (default 10); the rest are counted in
    /// the client's next event (`suppressed`) and always in the metric.
    pub max_events_per_client: u32,
    /// Bounds of the inventory and of route templating.
    pub inventory: InventoryConfig,
}

impl Default for DiscoverConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            spec: None,
            spec_hosts: Vec::new(),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            snapshot_interval_secs: 60,
            queue_capacity: 4096,
            max_route_labels: 200,
            max_events_per_client: 10,
            inventory: InventoryConfig::default(),
        }
    }
}

impl DiscoverConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if !self.state_dir.is_absolute() {
            return Err(invalid(
                "discover.state_dir",
                format!("{} is not an absolute path", self.state_dir.display()),
            ));
        }
        if self.snapshot_interval_secs > 86_400 {
            return Err(invalid(
                "discover.snapshot_interval_secs",
                "must be at most 86400 (0 disables snapshots)",
            ));
        }
        if self.queue_capacity == 0 || self.queue_capacity > 1 << 20 {
            return Err(invalid(
                "discover.queue_capacity",
                format!("must be between 1 and {}", 1 << 20),
            ));
        }
        if self.max_route_labels == 0 || self.max_route_labels > MAX_ROUTE_LABELS {
            return Err(invalid(
                "discover.max_route_labels",
                format!("must be between 1 and {MAX_ROUTE_LABELS}"),
            ));
        }
        if self.max_events_per_client == 0 {
            return Err(invalid("discover.max_events_per_client", "must be > 0"));
        }
        self.inventory.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_field() {
        assert_eq!(DiscoverConfig::default().validate(), Ok(()));
        type Case = (fn(&mut DiscoverConfig), &'static str);
        let cases: [Case; 5] = [
            (|c| c.state_dir = "state".into(), "discover.state_dir"),
            (|c| c.queue_capacity = 0, "discover.queue_capacity"),
            (|c| c.max_route_labels = 0, "discover.max_route_labels"),
            (
                |c| c.snapshot_interval_secs = 90_000,
                "discover.snapshot_interval_secs",
            ),
            (
                |c| c.inventory.max_endpoints = 0,
                "discover.inventory.max_endpoints",
            ),
        ];
        for (mutate, field) in cases {
            let mut c = DiscoverConfig::default();
            mutate(&mut c);
            assert_eq!(c.validate().map_err(|e| e.field), Err(field.to_string()));
        }
    }
}
