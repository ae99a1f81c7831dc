//! The TOML configuration. Every field is optional; defaults are the embedded configuration
//! `api-guard run` uses without `--config`.

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use api_guard::{detect::DetectConfig, discover::config::DiscoverConfig};
use api_guard_common::{CHUNK_SIZE, DEFAULT_CAPTURE_CAP, MAX_CAPTURE_CAP};
use serde::Deserialize;

use crate::{
    enforce::{policy::PolicyConfig, target::Target},
    http::HttpLimits,
};

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
    Invalid { field: String, reason: String },
    /// [`ConfigError::Invalid`] in a file, with the line of the field (or of the nearest
    /// table that holds it).
    #[error("{path}:{line}: invalid value for `{field}`: {reason}")]
    InvalidAt {
        path: String,
        line: usize,
        field: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Unsafe { path: String, reason: &'static str },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub capture: CaptureConfig,
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub enforce: EnforceConfig,
    pub xdp: XdpConfig,
    pub detect: DetectConfig,
    pub discover: DiscoverConfig,
    pub events: crate::output::EventsConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnforceMode {
    /// Blocks are written to the XDP maps and drop traffic.
    #[default]
    Enforce,
    /// Blocks are logged and counted as `would_block` events; nothing is dropped.
    DryRun,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnforceConfig {
    /// `enforce` (default) or `dry-run`.
    pub mode: EnforceMode,
    /// Addresses and ranges never blocked, by any rule (default none).
    pub allowlist: Vec<Target>,
    /// Reverse proxies whose X-Forwarded-For / Forwarded headers name the client; never
    /// blocked themselves (default none).
    pub trusted_proxies: Vec<Target>,
    /// Addresses and ranges always dropped at XDP (default none).
    pub deny: Vec<Target>,
    /// Rate-limit policies over server-side exchanges (default none).
    pub policies: Vec<PolicyConfig>,
    /// Blocks held at once (default 131072); when full, the one ending soonest goes.
    pub max_blocks: u32,
    /// Keys (clients, credentials, routes) remembered per policy (default 65536); the least
    /// recently seen go first.
    pub max_limiter_keys: usize,
    /// Block length of `api-guard block` without `--for`, in seconds (default 600).
    pub default_block_secs: u64,
    /// Request headers that carry API keys (default `x-api-key`).
    pub api_key_headers: Vec<String>,
    /// Query parameters that carry API keys (default `api_key`).
    pub api_key_params: Vec<String>,
}

impl EnforceConfig {
    /// Where detectors read client addresses and credentials from.
    pub fn identifier(&self) -> api_guard::identity::Identifier {
        api_guard::identity::Identifier::new(
            self.trusted_proxies.iter().map(Target::net).collect(),
            &self.api_key_headers,
            &self.api_key_params,
        )
    }
}

impl Default for EnforceConfig {
    fn default() -> Self {
        Self {
            mode: EnforceMode::Enforce,
            allowlist: Vec::new(),
            trusted_proxies: Vec::new(),
            deny: Vec::new(),
            policies: Vec::new(),
            max_blocks: 131_072,
            max_limiter_keys: 65_536,
            default_block_secs: 600,
            api_key_headers: vec!["x-api-key".into()],
            api_key_params: vec!["api_key".into()],
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpAttachMode {
    /// Native (driver) mode, falling back to generic where the driver lacks XDP.
    #[default]
    Auto,
    Native,
    Generic,
}

/// An interface the XDP guard attaches to: a name, or a table with the details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpInterface {
    pub name: String,
    /// Network namespace file holding the interface (e.g. `/run/netns/web`); default: the
    /// daemon's own.
    pub netns: Option<PathBuf>,
    /// Overrides `xdp.mode`.
    pub mode: Option<XdpAttachMode>,
    /// Packets per second allowed per source address on this interface (0: no limit).
    pub packet_rate: u64,
    /// Packets a source may send at once above `packet_rate` (default: `packet_rate`).
    pub packet_burst: u64,
}

impl XdpInterface {
    /// `name` or `name@netns`, for logs and status.
    pub fn display(&self) -> String {
        match &self.netns {
            Some(ns) => format!("{}@{}", self.name, ns.display()),
            None => self.name.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for XdpInterface {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            name: String,
            #[serde(default)]
            netns: Option<PathBuf>,
            #[serde(default)]
            mode: Option<XdpAttachMode>,
            #[serde(default)]
            packet_rate: u64,
            #[serde(default)]
            packet_burst: Option<u64>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(String),
            Table(Table),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Name(name) => XdpInterface {
                name,
                netns: None,
                mode: None,
                packet_rate: 0,
                packet_burst: 0,
            },
            Raw::Table(t) => XdpInterface {
                name: t.name,
                netns: t.netns,
                mode: t.mode,
                packet_rate: t.packet_rate,
                packet_burst: t.packet_burst.unwrap_or(t.packet_rate),
            },
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XdpConfig {
    /// Interfaces to guard (default none: nothing is ever dropped). Each is a name
    /// (`"eth0"`) or a table `{ name, netns, mode, packet_rate, packet_burst }`.
    pub interfaces: Vec<XdpInterface>,
    /// `auto` (default: native, else generic), `native` or `generic`.
    pub mode: XdpAttachMode,
    /// Pin the guard's links and maps under `pin_dir` so that blocks outlive the daemon and
    /// a restarted daemon adopts them (default false: everything goes with the daemon).
    pub pin: bool,
    /// bpffs directory for pins (default `/sys/fs/bpf/api-guard`).
    pub pin_dir: PathBuf,
    /// CIDR blocks held in the kernel per address family (default 16384).
    pub max_cidrs: u32,
    /// Allowlist and trusted-proxy ranges per address family (default 4096).
    pub max_allow: u32,
    /// Per-source packet buckets (LRU, default 65536).
    pub rate_table_entries: u32,
}

impl Default for XdpConfig {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            mode: XdpAttachMode::Auto,
            pin: false,
            pin_dir: PathBuf::from("/sys/fs/bpf/api-guard"),
            max_cidrs: 16_384,
            max_allow: 4096,
            rate_table_entries: 65_536,
        }
    }
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

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Config {
    /// Reads and validates a config file. A file others can write to is refused: whoever can
    /// edit it can turn enforcement off or point key files and sinks elsewhere.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let read_err = |source| ConfigError::Read {
            path: origin.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if meta.mode() & 0o002 != 0 {
            return Err(ConfigError::Unsafe {
                path: origin,
                reason: "the file is world-writable; refusing to use it (chmod o-w)",
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        Self::parse(&text, &origin)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            source: Box::new(e),
        })?;
        config.validate().map_err(|e| match e {
            ConfigError::Invalid { field, reason } => match field_line(text, &field) {
                Some(line) => ConfigError::InvalidAt {
                    path: origin.to_string(),
                    line,
                    field,
                    reason,
                },
                None => ConfigError::Invalid { field, reason },
            },
            other => other,
        })?;
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
        self.validate_enforce()?;
        self.validate_xdp()?;
        self.detect
            .validate()
            .map_err(|e| invalid(e.field, e.reason))?;
        self.discover
            .validate()
            .map_err(|e| invalid(e.field, e.reason))?;
        self.events.validate()
    }

    fn validate_enforce(&self) -> Result<(), ConfigError> {
        let e = &self.enforce;
        crate::enforce::policy::validate(&e.policies).map_err(|p| invalid(p.field, p.reason))?;
        if e.max_blocks == 0 {
            return Err(invalid("enforce.max_blocks", "must be > 0"));
        }
        if e.max_limiter_keys == 0 {
            return Err(invalid("enforce.max_limiter_keys", "must be > 0"));
        }
        if !(1..=MAX_BLOCK_SECS).contains(&e.default_block_secs) {
            return Err(invalid(
                "enforce.default_block_secs",
                format!("must be 1..={MAX_BLOCK_SECS}"),
            ));
        }
        let allow = crate::enforce::target::NetSet::new(&e.allowlist);
        let proxies = crate::enforce::target::NetSet::new(&e.trusted_proxies);
        if let Some(d) = e
            .deny
            .iter()
            .find(|d| allow.overlaps(d) || proxies.overlaps(d))
        {
            return Err(invalid(
                "enforce.deny",
                format!("{d} overlaps the allowlist or a trusted proxy (which always win)"),
            ));
        }
        if e.deny.len() > e.max_blocks as usize {
            return Err(invalid(
                "enforce.deny",
                "more entries than enforce.max_blocks",
            ));
        }
        for v6 in [false, true] {
            let ranges = e
                .deny
                .iter()
                .filter(|t| matches!(t, Target::Net(n) if n.addr().is_ipv6() == v6))
                .count();
            if ranges > self.xdp.max_cidrs as usize {
                return Err(invalid(
                    "enforce.deny",
                    format!(
                        "{ranges} ranges of one address family; xdp.max_cidrs is {}",
                        self.xdp.max_cidrs
                    ),
                ));
            }
        }
        let too_many = |list: &[Target]| list.len() > self.xdp.max_allow as usize;
        if too_many(&e.allowlist) || too_many(&e.trusted_proxies) {
            return Err(invalid(
                "enforce.allowlist",
                "more entries (with trusted_proxies) than xdp.max_allow",
            ));
        }
        Ok(())
    }

    fn validate_xdp(&self) -> Result<(), ConfigError> {
        let x = &self.xdp;
        for (i, iface) in x.interfaces.iter().enumerate() {
            let field = |f: &str| format!("xdp.interfaces[{i}].{f}");
            if iface.name.is_empty() || iface.name.len() > 15 || iface.name.contains('/') {
                return Err(invalid(
                    field("name"),
                    format!("{:?} is not an interface name", iface.name),
                ));
            }
            if let Some(ns) = &iface.netns {
                if !ns.is_absolute() {
                    return Err(invalid(field("netns"), "must be an absolute path"));
                }
            }
            if iface.packet_rate > MAX_RATE_PPS {
                return Err(invalid(
                    field("packet_rate"),
                    format!("must be <= {MAX_RATE_PPS}"),
                ));
            }
            if iface.packet_rate > 0 && !(1..=MAX_BURST).contains(&iface.packet_burst) {
                return Err(invalid(
                    field("packet_burst"),
                    format!("must be 1..={MAX_BURST}"),
                ));
            }
            if x.interfaces[..i]
                .iter()
                .any(|o| o.name == iface.name && o.netns == iface.netns)
            {
                return Err(invalid(
                    field("name"),
                    format!("{} is listed twice", iface.display()),
                ));
            }
        }
        if !x.pin_dir.is_absolute() {
            return Err(invalid("xdp.pin_dir", "must be an absolute path"));
        }
        for (field, v) in [
            ("xdp.max_cidrs", x.max_cidrs),
            ("xdp.max_allow", x.max_allow),
            ("xdp.rate_table_entries", x.rate_table_entries),
        ] {
            if v == 0 {
                return Err(invalid(field, "must be > 0"));
            }
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

/// Longest block: one year.
pub const MAX_BLOCK_SECS: u64 = 365 * 24 * 3600;
use api_guard_common::xdp::{MAX_BURST, MAX_RATE_PPS};

/// A cgroup v2 id is the inode number of its directory in the cgroup2 file system.
fn cgroup_id(path: &Path) -> Result<u64, ConfigError> {
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

/// The 1-based line of `field` (`detect.jwt.public_key_files[0]`) in the TOML `text`: the
/// deepest part of the path the file spells out (a field left at its default has no line of
/// its own, but its table may).
fn field_line(text: &str, field: &str) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = doc.as_item();
    let mut found = None;
    'path: for segment in field.split('.') {
        let mut parts = segment.split('[');
        let name = parts.next().unwrap_or_default();
        let Some(table) = item.as_table_like() else {
            break;
        };
        let Some(next) = table.get(name) else {
            break;
        };
        found = table.key(name).and_then(|k| k.span()).or(found);
        item = next;
        for index in parts {
            let Some(i) = index
                .strip_suffix(']')
                .and_then(|i| i.parse::<usize>().ok())
            else {
                break 'path;
            };
            let Some(next) = item.get(i) else {
                break 'path;
            };
            found = next.span().or(found);
            item = next;
        }
    }
    let start = found?.start;
    Some(text.get(..start)?.matches('\n').count() + 1)
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
    fn invalid_fields_come_with_their_line() {
        let text = "# comment\n[capture]\nmax_capture_bytes = 0\n\n[detect]\nqueue_capacity = 0\n";
        let e = Config::parse(text, "a.toml").unwrap_err().to_string();
        assert_eq!(
            e,
            "a.toml:3: invalid value for `capture.max_capture_bytes`: must be 1..=65536"
        );
        let text = "[capture]\n[[enforce.policies]]\nname = \"a\"\nkey = \"client_ip\"\nrate = 5.0\nburst = 5\n\
                    [[enforce.policies]]\nname = \"b\"\nkey = \"client_ip\"\nrate = 1.0\nburst = 0\n";
        let e = Config::parse(text, "p.toml").unwrap_err().to_string();
        assert_eq!(
            e,
            "p.toml:11: invalid value for `enforce.policies[1].burst`: must be >= 1"
        );
        assert_eq!(field_line(text, "enforce.policies[1]"), Some(7));
        // A field at its default: the line of its table.
        assert_eq!(
            field_line("\n[detect]\nenabled = true\n", "detect.queue_capacity"),
            Some(2)
        );
        assert_eq!(
            field_line(
                "detect = { jwt = { public_key_files = [\"a\", \"b\"] } }",
                "detect.jwt.public_key_files[1]"
            ),
            Some(1)
        );
        assert_eq!(field_line("", "detect.queue_capacity"), None);
        assert_eq!(field_line("x = [1]", "x[5].y"), Some(1));
    }

    /// The annotated example config lists every default truly, and docs/configuration.md shows
    /// the same.
    #[test]
    fn example_config_is_the_default_and_matches_the_docs() {
        let example = include_str!("../../../deploy/api-guard.example.toml");
        let parsed = Config::parse(example, "api-guard.example.toml").unwrap();
        assert_eq!(format!("{parsed:?}"), format!("{:?}", Config::default()));
        let doc = include_str!("../../../docs/configuration.md");
        let start = doc.find("# Configuration").unwrap();
        let block = &doc[start..];
        let block = &block[block.find("```toml\n").unwrap() + 8..];
        let block = &block[..block.find("```").unwrap()];
        assert!(
            example.ends_with(block),
            "docs/configuration.md's configuration block differs from deploy/api-guard.example.toml"
        );
    }

    #[test]
    fn world_writable_files_are_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let path = std::env::temp_dir().join(format!("ag-cfg-{}.toml", std::process::id()));
        std::fs::write(&path, "[detect]\nenabled = true\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(e.contains("world-writable"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Config::load(&path).is_ok());
        std::fs::remove_file(&path).unwrap();
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
    fn enforcement_and_xdp_sections() {
        let c = Config::parse(
            r#"
[enforce]
mode = "dry-run"
allowlist = ["10.0.0.1", "192.168.0.0/16"]
trusted_proxies = ["10.1.0.0/16"]
deny = ["203.0.113.0/24", "2001:db8::1"]
[[enforce.policies]]
name = "login"
key = "client_ip"
rate = 0.5
burst = 3
action = "block"
block_secs = 30
[xdp]
interfaces = ["eth0", { name = "veth1", netns = "/run/netns/web", mode = "generic", packet_rate = 1000 }]
pin = true
"#,
            "t",
        )
        .unwrap();
        assert_eq!(c.enforce.mode, EnforceMode::DryRun);
        assert_eq!(c.enforce.deny[1].to_string(), "2001:db8::1");
        assert_eq!(c.enforce.policies[0].name, "login");
        let i = &c.xdp.interfaces[1];
        assert_eq!(
            (i.name.as_str(), i.packet_rate, i.packet_burst),
            ("veth1", 1000, 1000)
        );
        assert_eq!(i.mode, Some(XdpAttachMode::Generic));
        assert_eq!(i.display(), "veth1@/run/netns/web");
        assert_eq!(c.xdp.interfaces[0].packet_rate, 0);
        let d = Config::default();
        assert!(d.xdp.interfaces.is_empty() && !d.xdp.pin && d.enforce.policies.is_empty());
    }

    #[test]
    fn enforcement_errors_name_the_field() {
        for (toml, field) in [
            (
                "[enforce]\ndeny = [\"10.0.0.0/8\"]\nallowlist = [\"10.1.1.1\"]\n",
                "enforce.deny",
            ),
            (
                "[enforce]\ndeny = [\"10.0.0.1/8\"]\n",
                "did you mean 10.0.0.0/8",
            ),
            ("[enforce]\nmode = \"audit\"\n", "mode"),
            ("[enforce]\nmax_blocks = 0\n", "enforce.max_blocks"),
            (
                "[enforce]\nmax_blocks = 1\ndeny = [\"10.0.0.1\", \"10.0.0.2\"]\n",
                "more entries than enforce.max_blocks",
            ),
            (
                "[enforce]\ndeny = [\"10.0.0.0/8\", \"11.0.0.0/8\"]\n[xdp]\nmax_cidrs = 1\n",
                "xdp.max_cidrs is 1",
            ),
            (
                "[enforce]\ndefault_block_secs = 0\n",
                "enforce.default_block_secs",
            ),
            (
                "[[enforce.policies]]\nname = \"a\"\nkey = \"client_ip\"\nrate = -1.0\nburst = 1\n",
                "enforce.policies[0].rate",
            ),
            ("[xdp]\ninterfaces = [\"\"]\n", "xdp.interfaces[0].name"),
            (
                "[xdp]\ninterfaces = [\"a\", \"a\"]\n",
                "xdp.interfaces[1].name",
            ),
            (
                "[xdp]\ninterfaces = [{ name = \"a\", netns = \"rel\" }]\n",
                "xdp.interfaces[0].netns",
            ),
            (
                "[xdp]\ninterfaces = [{ name = \"a\", packet_rate = 999999999999 }]\n",
                "xdp.interfaces[0].packet_rate",
            ),
            ("[xdp]\npin_dir = \"x\"\n", "xdp.pin_dir"),
        ] {
            let e = Config::parse(toml, "t").unwrap_err().to_string();
            assert!(e.contains(field), "{toml}: {e}");
        }
    }

    #[test]
    fn cap_rounds_up_to_chunks() {
        let c = Config::parse("[capture]\nmax_capture_bytes = 5000\n", "t").unwrap();
        assert_eq!(c.capture_cap(), 8192);
    }
}
