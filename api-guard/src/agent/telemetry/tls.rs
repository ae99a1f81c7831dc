//! TLS library discovery and hooking. The `library` label is a hooked file's path: one
//! series per hooked file, bounded by the libraries on the host.

use prometheus::{
    core::Collector as _, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry,
};

use super::{counter, counter_vec, gauge, gauge_vec};
use crate::tls::sites::SiteKind;

/// Why a file exporting TLS functions was not hooked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    Unreadable,
    /// TLS code recognised but not hookable (Go before 1.17, or not on x86-64).
    Unsupported,
    Deleted,
    AttachFailed,
    TooManyLibraries,
    RegistryFull,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Unreadable => "unreadable",
            SkipReason::Unsupported => "unsupported",
            SkipReason::Deleted => "deleted",
            SkipReason::AttachFailed => "attach_failed",
            SkipReason::TooManyLibraries => "too_many_libraries",
            SkipReason::RegistryFull => "registry_full",
        }
    }
}

/// Why a TLS call that moved data was not captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unattributed {
    /// The socket could not be determined.
    NoFd,
    /// The socket is not tracked (filtered, or opened before the agent).
    Untracked,
    /// A Go `tls.Conn` that does not wrap a `*net.TCPConn` (its socket is not read).
    GoConnUnknown,
    /// A Go `tls.Conn` whose socket another goroutine had closed by then.
    GoConnClosed,
}

impl Unattributed {
    pub fn as_str(self) -> &'static str {
        match self {
            Unattributed::NoFd => "no_fd",
            Unattributed::Untracked => "untracked",
            Unattributed::GoConnUnknown => "go_conn_unknown",
            Unattributed::GoConnClosed => "go_conn_closed",
        }
    }
}

pub struct Tls {
    probes_attached: IntGaugeVec,
    probe_sites: IntGaugeVec,
    files_skipped: IntCounterVec,
    files_inspected: IntGauge,
    connections: IntCounterVec,
    calls_unattributed: IntCounterVec,
    discovery_dropped: IntCounter,
    handshakes: IntCounterVec,
    handshakes_unread: IntCounterVec,
}

impl Tls {
    pub(super) fn new(r: &Registry) -> Self {
        Self {
            probes_attached: gauge_vec(
                r,
                "apiguard_tls_probes_attached",
                "Uprobes attached per hooked TLS library file (path as its processes map it).",
                &["library"],
            ),
            probe_sites: gauge_vec(
                r,
                "apiguard_tls_probe_sites",
                "Uprobe sites per hooked TLS library file, by kind: entry (an instruction the \
                 kernel emulates), internal (the emulated entry of the function an exported \
                 read/write pair shares) or entry_single_step (nothing cheaper proven; each hit \
                 costs a single-step trap).",
                &["library", "kind"],
            ),
            files_skipped: counter_vec(
                r,
                "apiguard_tls_files_skipped_total",
                "Files exporting TLS functions that could not be hooked, by reason.",
                &["reason"],
            ),
            files_inspected: gauge(
                r,
                "apiguard_tls_files_inspected",
                "Distinct executable files inspected for TLS functions and remembered.",
            ),
            connections: counter_vec(
                r,
                "apiguard_tls_connections_total",
                "Connections whose plaintext came from a TLS library hook, by library.",
                &["library"],
            ),
            calls_unattributed: counter_vec(
                r,
                "apiguard_tls_calls_unattributed_total",
                "TLS library calls that moved data but were not captured: socket unknown \
                 (no_fd), not tracked (untracked: filtered, or opened before the agent), or a Go \
                 tls.Conn not wrapping a *net.TCPConn (go_conn_unknown) or whose socket was closed \
                 meanwhile (go_conn_closed).",
                &["reason"],
            ),
            discovery_dropped: counter(
                r,
                "apiguard_tls_discovery_dropped_total",
                "Process start/library load notifications dropped because discovery was \
                 behind (a periodic rescan catches up).",
            ),
            handshakes: counter_vec(
                r,
                "apiguard_tls_handshakes_total",
                "TLS handshakes whose ServerHello was read on the socket, by negotiated version \
                 (ssl3, tls1.0 … tls1.3, unknown) and cipher suite key exchange (tls13, ecdhe, \
                 dhe, rsa, static_dh, psk, ephemeral_psk, unknown).",
                &["version", "cipher_family"],
            ),
            handshakes_unread: counter_vec(
                r,
                "apiguard_tls_handshakes_unread_total",
                "TLS connections whose ServerHello could not be read, by reason: not_handshake, \
                 alert (refused), malformed, too_long, lost (bytes not captured).",
                &["reason"],
            ),
        }
    }

    /// A handshake's negotiated version and cipher suite, read from its ServerHello.
    pub fn handshake(&self, session: &api_guard::handshake::TlsSession) {
        self.handshakes
            .with_label_values(&[
                session.version.as_str(),
                session.cipher.key_exchange().as_str(),
            ])
            .inc();
    }

    /// (`version/cipher_family`, handshakes) of every combination seen.
    pub fn handshakes(&self) -> Vec<(String, u64)> {
        self.handshakes
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|m| {
                let label = |name: &str| {
                    m.get_label()
                        .iter()
                        .find(|l| l.name() == name)
                        .map(|l| l.value().to_string())
                        .unwrap_or_default()
                };
                (
                    format!("{}/{}", label("version"), label("cipher_family")),
                    m.get_counter().get_value() as u64,
                )
            })
            .collect()
    }

    pub fn handshake_unread(&self, why: api_guard::handshake::Unread) {
        self.handshakes_unread
            .with_label_values(&[why.as_str()])
            .inc();
    }

    pub fn set_probes_attached(&self, library: &str, probes: usize) {
        self.probes_attached
            .with_label_values(&[library])
            .set(probes as i64);
    }

    pub fn set_probe_sites(&self, library: &str, kind: SiteKind, sites: usize) {
        self.probe_sites
            .with_label_values(&[library, kind.as_str()])
            .set(sites as i64);
    }

    /// (library path, site kind, sites) of every hooked library.
    pub fn probe_sites(&self) -> Vec<(String, String, u64)> {
        self.probe_sites
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|m| {
                // Labels come sorted by name, not in declaration order.
                let label = |name: &str| {
                    m.get_label()
                        .iter()
                        .find(|l| l.name() == name)
                        .map(|l| l.value().to_string())
                        .unwrap_or_default()
                };
                (
                    label("library"),
                    label("kind"),
                    m.get_gauge().get_value() as u64,
                )
            })
            .collect()
    }

    pub fn file_skipped(&self, reason: SkipReason) {
        self.files_skipped
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    pub fn set_files_inspected(&self, n: usize) {
        self.files_inspected.set(n as i64);
    }

    /// A connection switched to the plaintext of `library`.
    pub fn connection(&self, library: &str) {
        self.connections.with_label_values(&[library]).inc();
    }

    pub fn unattributed(&self, reason: Unattributed, n: u64) {
        self.calls_unattributed
            .with_label_values(&[reason.as_str()])
            .inc_by(n);
    }

    pub fn discovery_dropped(&self) {
        self.discovery_dropped.inc();
    }

    /// (library path, uprobes attached) of every library ever hooked.
    /// `(reason, files)` of files not hooked, for `status`.
    pub fn files_skipped(&self) -> Vec<(String, u64)> {
        self.files_skipped
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|m| {
                let reason = m
                    .get_label()
                    .first()
                    .map(|l| l.value().to_string())
                    .unwrap_or_default();
                (reason, m.get_counter().get_value() as u64)
            })
            .collect()
    }

    pub fn probes_attached(&self) -> Vec<(String, u64)> {
        self.probes_attached
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|m| {
                let library = m
                    .get_label()
                    .first()
                    .map(|l| l.value().to_string())
                    .unwrap_or_default();
                (library, m.get_gauge().get_value() as u64)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sites_read_back_by_label_name() {
        let tls = Tls::new(&Registry::new());
        tls.set_probe_sites("/lib/libssl.so.3", SiteKind::Internal, 2);
        tls.set_probe_sites("/lib/libssl.so.3", SiteKind::Entry, 1);
        let mut sites = tls.probe_sites();
        sites.sort();
        assert_eq!(
            sites,
            [
                ("/lib/libssl.so.3".to_string(), "entry".to_string(), 1),
                ("/lib/libssl.so.3".to_string(), "internal".to_string(), 2),
            ]
        );
    }
}
