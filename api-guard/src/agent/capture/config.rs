//! The `[capture]` and `[http]` sections: what the kernel copies, and how the connection
//! table parses it.

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use api_guard::config::{invalid, Invalid};
use api_guard_common::{
    CHUNK_SIZE, DEFAULT_CAPTURE_CAP, DEFAULT_REQUEST_CAPTURE_CAP, MAX_CONFIGURED_CAPTURE_CAP,
};
use serde::Deserialize;

use crate::http::HttpLimits;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {
    /// Bytes copied per response message a local HTTP/1 server writes (default 16 KiB, at most
    /// 4 MiB): a budget its calls share, renewed by the next request; calls of at most 4 KiB,
    /// HTTP/2 and the responses local clients read keep it per call (docs/capture.md). The
    /// rest is counted as truncated.
    pub max_capture_bytes: u32,
    /// Bytes copied per call of requests — what local servers read and local clients write
    /// (default 64 KiB, at most 4 MiB): content detection judges requests, so their cap is
    /// larger than what an attacker can cheaply pad past.
    pub max_request_capture_bytes: u32,
    /// Ring buffer size in bytes (default 4 MiB); a power of two, at least 32 KiB. The kernel
    /// maps its data pages twice, so it adds twice its size to the agent's RSS; it is the
    /// burst buffer for when the parser falls behind (see docs/development.md "Benchmark").
    pub ring_buffer_bytes: u32,
    /// Only capture these process ids (default: all).
    pub pids: Vec<u32>,
    /// Only capture processes with these names (`comm`, at most 15 bytes; default: all).
    pub comms: Vec<String>,
    /// Only capture processes in these cgroup v2 directories (e.g.
    /// `/sys/fs/cgroup/system.slice/nginx.service`; not their children; default: all).
    pub cgroups: Vec<PathBuf>,
    /// Deprecated and ignored: records are parsed in place in the ring buffer, with no
    /// channel after it (the ring is the only buffer). Still accepted so that older files
    /// load; noted in `Config::deprecations` and dropped at load.
    pub channel_capacity: Option<usize>,
    /// At start, adopt the TCP connections the selected processes established before the
    /// agent ran (default true): they are captured from their next message on. Only at start;
    /// at most 16384 (a quarter of the kernel connection table).
    pub adopt_existing: bool,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            max_capture_bytes: DEFAULT_CAPTURE_CAP,
            max_request_capture_bytes: DEFAULT_REQUEST_CAPTURE_CAP,
            ring_buffer_bytes: 4 * 1024 * 1024,
            pids: Vec::new(),
            comms: Vec::new(),
            cgroups: Vec::new(),
            channel_capacity: None,
            // Long-lived connections (keep-alive pools, gRPC) are often older than the agent.
            adopt_existing: true,
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
            ..HttpLimits::default()
        }
    }
}

impl CaptureConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        for (field, value) in [
            ("capture.max_capture_bytes", self.max_capture_bytes),
            (
                "capture.max_request_capture_bytes",
                self.max_request_capture_bytes,
            ),
        ] {
            if value == 0 || value > MAX_CONFIGURED_CAPTURE_CAP {
                return Err(invalid(
                    field,
                    format!("must be 1..={MAX_CONFIGURED_CAPTURE_CAP}"),
                ));
            }
        }
        if !self.ring_buffer_bytes.is_power_of_two()
            || self.ring_buffer_bytes < 8 * CHUNK_SIZE as u32
        {
            return Err(invalid(
                "capture.ring_buffer_bytes",
                "must be a power of two >= 32768",
            ));
        }
        if let Some(comm) = self.comms.iter().find(|c| c.is_empty() || c.len() > 15) {
            return Err(invalid(
                "capture.comms",
                format!("{comm:?} must be 1..=15 bytes"),
            ));
        }
        for path in &self.cgroups {
            cgroup_id(path)?;
        }
        Ok(())
    }

    /// Cgroup v2 ids of `cgroups` (validated at load).
    pub fn cgroup_ids(&self) -> Result<Vec<u64>, Invalid> {
        self.cgroups.iter().map(|p| cgroup_id(p)).collect()
    }

    /// The per-call caps (responses, requests) rounded up to whole chunks, as the kernel
    /// applies them.
    pub fn capture_caps(&self) -> (u32, u32) {
        let chunk = CHUNK_SIZE as u32;
        let whole = |bytes: u32| bytes.div_ceil(chunk) * chunk;
        (
            whole(self.max_capture_bytes),
            whole(self.max_request_capture_bytes),
        )
    }
}

impl HttpConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.max_header_bytes < 1024 {
            return Err(invalid("http.max_header_bytes", "must be >= 1024"));
        }
        if self.max_connections == 0 {
            return Err(invalid("http.max_connections", "must be > 0"));
        }
        if self.max_pipelined == 0 {
            return Err(invalid("http.max_pipelined", "must be > 0"));
        }
        Ok(())
    }
}

/// A cgroup v2 id is the inode number of its directory in the cgroup2 file system.
fn cgroup_id(path: &Path) -> Result<u64, Invalid> {
    let bad = |reason: String| invalid("capture.cgroups", format!("{}: {reason}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_dir() {
        return Err(bad("not a directory".into()));
    }
    let magic = crate::fsys::magic(path).map_err(|e| bad(e.to_string()))?;
    if magic != crate::fsys::CGROUP2_SUPER_MAGIC {
        return Err(bad("not in a cgroup v2 file system".into()));
    }
    Ok(meta.ino())
}
