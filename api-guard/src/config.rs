//! The TOML configuration. Every field is optional; defaults are the embedded configuration
//! `api-guard run` uses without `--config`.

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use api_guard_common::{CHUNK_SIZE, DEFAULT_CAPTURE_CAP, MAX_CAPTURE_CAP};
use serde::Deserialize;

use crate::http::HttpLimits;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("invalid value for `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub capture: CaptureConfig,
    pub http: HttpConfig,
    pub tls: TlsConfig,
}

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

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {
    /// Bytes copied per syscall (default 16 KiB, at most 64 KiB); the rest is counted as truncated.
    pub max_capture_bytes: u32,
    /// Ring buffer size in bytes (default 16 MiB); a power of two, at least 32 KiB.
    pub ring_buffer_bytes: u32,
    /// Only capture these process ids (default: all).
    pub pids: Vec<u32>,
    /// Only capture processes with these names (`comm`, at most 15 bytes; default: all).
    pub comms: Vec<String>,
    /// Only capture processes in these cgroup v2 directories (e.g.
    /// `/sys/fs/cgroup/system.slice/nginx.service`; not their children; default: all).
    pub cgroups: Vec<PathBuf>,
    /// Bounded hand-off between the ring buffer reader and the parser, in records (default
    /// 65536; handed over in batches). When it is full the reader waits and the kernel counts
    /// what the ring buffer cannot hold.
    pub channel_capacity: usize,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            max_capture_bytes: DEFAULT_CAPTURE_CAP,
            ring_buffer_bytes: 16 * 1024 * 1024,
            pids: Vec::new(),
            comms: Vec::new(),
            cgroups: Vec::new(),
            channel_capacity: 65_536,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request/response head kept while parsing (default 64 KiB).
    pub max_header_bytes: usize,
    /// Prefix of each body kept for analysis (default 64 KiB).
    pub max_body_capture_bytes: usize,
    /// Connections parsed at once; more are counted and skipped (default 65536).
    pub max_connections: usize,
    /// Requests awaiting a response per connection (default 64).
    pub max_pipelined: usize,
    /// Seconds without traffic after which a connection's state is dropped (default 300).
    pub idle_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        let limits = HttpLimits::default();
        Self {
            max_header_bytes: limits.max_header_bytes,
            max_body_capture_bytes: limits.max_body_capture_bytes,
            max_connections: 65_536,
            max_pipelined: limits.max_pipelined,
            idle_timeout_secs: 300,
        }
    }
}

impl HttpConfig {
    pub fn limits(&self) -> HttpLimits {
        HttpLimits {
            max_header_bytes: self.max_header_bytes,
            max_body_capture_bytes: self.max_body_capture_bytes,
            max_pipelined: self.max_pipelined,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            source: Box::new(e),
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.capture;
        if c.max_capture_bytes == 0 || c.max_capture_bytes > MAX_CAPTURE_CAP {
            return Err(invalid(
                "capture.max_capture_bytes",
                format!("must be 1..={MAX_CAPTURE_CAP}"),
            ));
        }
        if !c.ring_buffer_bytes.is_power_of_two() || c.ring_buffer_bytes < 8 * CHUNK_SIZE as u32 {
            return Err(invalid(
                "capture.ring_buffer_bytes",
                "must be a power of two >= 32768",
            ));
        }
        if let Some(comm) = c.comms.iter().find(|c| c.is_empty() || c.len() > 15) {
            return Err(invalid(
                "capture.comms",
                format!("{comm:?} must be 1..=15 bytes"),
            ));
        }
        for path in &c.cgroups {
            cgroup_id(path)?;
        }
        if c.channel_capacity == 0 {
            return Err(invalid("capture.channel_capacity", "must be > 0"));
        }
        let h = &self.http;
        if h.max_header_bytes < 1024 {
            return Err(invalid("http.max_header_bytes", "must be >= 1024"));
        }
        if h.max_connections == 0 {
            return Err(invalid("http.max_connections", "must be > 0"));
        }
        if h.max_pipelined == 0 {
            return Err(invalid("http.max_pipelined", "must be > 0"));
        }
        if self.tls.max_files < 16 {
            return Err(invalid("tls.max_files", "must be >= 16"));
        }
        if let Some(dir) = self.tls.library_dirs.iter().find(|d| !d.is_absolute()) {
            return Err(invalid(
                "tls.library_dirs",
                format!("{} is not an absolute path", dir.display()),
            ));
        }
        Ok(())
    }

    /// Cgroup v2 ids of `capture.cgroups` (validated at load).
    pub fn cgroup_ids(&self) -> Result<Vec<u64>, ConfigError> {
        self.capture.cgroups.iter().map(|p| cgroup_id(p)).collect()
    }

    /// The per-call cap rounded up to whole chunks, as the kernel applies it.
    pub fn capture_cap(&self) -> u32 {
        let chunk = CHUNK_SIZE as u32;
        self.capture.max_capture_bytes.div_ceil(chunk) * chunk
    }
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// A cgroup v2 id is the inode number of its directory in the cgroup2 file system.
fn cgroup_id(path: &Path) -> Result<u64, ConfigError> {
    let bad = |reason: String| invalid("capture.cgroups", format!("{}: {reason}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_dir() {
        return Err(bad("not a directory".into()));
    }
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| bad("contains a NUL byte".into()))?;
    // SAFETY: statfs fills the zeroed struct for a valid NUL-terminated path.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c_path.as_ptr(), &mut fs) } != 0 {
        return Err(bad(std::io::Error::last_os_error().to_string()));
    }
    if fs.f_type as i64 != CGROUP2_SUPER_MAGIC {
        return Err(bad("not in a cgroup v2 file system".into()));
    }
    Ok(meta.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_embedded_default() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c.capture.max_capture_bytes, 16384);
        assert_eq!(c.capture_cap(), 16384);
        assert!(c.capture.pids.is_empty());
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::parse("[capture]\nring_buffer_bytes = 1000\n", "t").unwrap_err();
        assert!(e.to_string().contains("capture.ring_buffer_bytes"), "{e}");
        let e = Config::parse("[capture]\nbogus = 1\n", "t").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e =
            Config::parse("[capture]\ncomms = [\"a-very-long-process-name\"]\n", "t").unwrap_err();
        assert!(e.to_string().contains("capture.comms"), "{e}");
    }

    #[test]
    fn cgroups_must_be_cgroup2_directories() {
        let e = Config::parse("[capture]\ncgroups = [\"/nonexistent/cg\"]\n", "t").unwrap_err();
        assert!(
            e.to_string().contains("`capture.cgroups`: /nonexistent/cg"),
            "{e}"
        );
        let e = Config::parse("[capture]\ncgroups = [\"/tmp\"]\n", "t").unwrap_err();
        assert!(
            e.to_string().contains("not in a cgroup v2 file system"),
            "{e}"
        );
    }

    #[test]
    fn cap_rounds_up_to_chunks() {
        let c = Config::parse("[capture]\nmax_capture_bytes = 5000\n", "t").unwrap();
        assert_eq!(c.capture_cap(), 8192);
    }
}
