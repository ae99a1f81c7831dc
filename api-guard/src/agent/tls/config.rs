//! The `[tls]` section: which TLS libraries are hooked, and how often processes are rescanned.

use std::path::PathBuf;

use api_guard::config::{invalid, Invalid};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Hook TLS libraries (OpenSSL 1.1/3.x, static OpenSSL in executables, GnuTLS) to see
    /// decrypted traffic (default true).
    pub enabled: bool,
    /// Directories whose `libssl.so*` / `libgnutls.so*` files are hooked at start, before
    /// any process loads them, so short-lived clients are seen from their first call.
    pub library_dirs: Vec<PathBuf>,
    /// Seconds between full rescans of every process (a safety net behind the exec and
    /// library-load notifications; default 60, 0 disables).
    pub rescan_interval_secs: u64,
    /// Distinct files remembered as inspected (default 16384); beyond it, files that are not
    /// TLS libraries are forgotten oldest-first and may be inspected again.
    pub max_files: usize,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            library_dirs: [
                "/lib",
                "/lib64",
                "/usr/lib",
                "/usr/lib64",
                "/usr/local/lib",
                "/lib/x86_64-linux-gnu",
                "/usr/lib/x86_64-linux-gnu",
                "/lib/aarch64-linux-gnu",
                "/usr/lib/aarch64-linux-gnu",
            ]
            .into_iter()
            .map(PathBuf::from)
            .collect(),
            rescan_interval_secs: 60,
            max_files: 16_384,
        }
    }
}

impl TlsConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.max_files < 16 {
            return Err(invalid("tls.max_files", "must be >= 16"));
        }
        if let Some(dir) = self.library_dirs.iter().find(|d| !d.is_absolute()) {
            return Err(invalid(
                "tls.library_dirs",
                format!("{} is not an absolute path", dir.display()),
            ));
        }
        Ok(())
    }
}
