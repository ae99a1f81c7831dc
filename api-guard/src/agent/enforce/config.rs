//! The `[enforce]` and `[xdp]` sections: enforcement mode, allow and deny lists, rate-limit
//! policies, and the XDP guard's interfaces and kernel table sizes.

use std::path::PathBuf;

use api_guard::config::{invalid, Invalid};
use api_guard_common::xdp::{MAX_BURST, MAX_RATE_PPS};
use serde::Deserialize;

use super::{
    policy::PolicyConfig,
    target::{NetSet, Target},
};

/// Longest block: one year.
pub const MAX_BLOCK_SECS: u64 = 365 * 24 * 3600;

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
    /// Deprecated: now `identity.trusted_proxies` (still read, moved there at load with a
    /// warning).
    pub trusted_proxies: Option<Vec<Target>>,
    /// Deprecated: now `identity.api_key_headers`.
    pub api_key_headers: Option<Vec<String>>,
    /// Deprecated: now `identity.api_key_params`.
    pub api_key_params: Option<Vec<String>>,
}

impl Default for EnforceConfig {
    fn default() -> Self {
        Self {
            mode: EnforceMode::Enforce,
            allowlist: Vec::new(),
            deny: Vec::new(),
            policies: Vec::new(),
            max_blocks: 131_072,
            max_limiter_keys: 65_536,
            default_block_secs: 600,
            trusted_proxies: None,
            api_key_headers: None,
            api_key_params: None,
        }
    }
}

impl EnforceConfig {
    /// `xdp` bounds the kernel tables, `trusted_proxies` (from `[identity]`) are never blocked.
    pub fn validate(&self, xdp: &XdpConfig, trusted_proxies: &[Target]) -> Result<(), Invalid> {
        let e = self;
        super::policy::validate(&e.policies)?;
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
        let allow = NetSet::new(&e.allowlist);
        let proxies = NetSet::new(trusted_proxies);
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
            if ranges > xdp.max_cidrs as usize {
                return Err(invalid(
                    "enforce.deny",
                    format!(
                        "{ranges} ranges of one address family; xdp.max_cidrs is {}",
                        xdp.max_cidrs
                    ),
                ));
            }
        }
        let too_many = |list: &[Target]| list.len() > xdp.max_allow as usize;
        if too_many(&e.allowlist) || too_many(trusted_proxies) {
            return Err(invalid(
                "enforce.allowlist",
                "more entries (with trusted_proxies) than xdp.max_allow",
            ));
        }
        Ok(())
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

impl XdpConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        let x = self;
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
}
