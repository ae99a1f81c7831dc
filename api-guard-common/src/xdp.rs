//! The XDP guard's maps: blocklist entries with expiry, per-interface packet limits, token
//! buckets and per-CPU verdict counters.

use core::mem::size_of;

/// `BlockEntry::expires_ns` of a block without end.
pub const NEVER_EXPIRES: u64 = 0;

/// Why an address or range is on the blocklist (`BlockEntry::reason`). Numbers are stable:
/// pinned maps outlive the daemon that wrote them.
pub const REASON_MANUAL: u32 = 1;
pub const REASON_RATELIMIT: u32 = 2;
pub const REASON_DETECTION: u32 = 3;
pub const REASON_CONFIG: u32 = 4;

/// Value of the exact-address blocklists and of the CIDR blocklist tries.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockEntry {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) at which the block ends; [`NEVER_EXPIRES`] for none.
    pub expires_ns: u64,
    /// Packets dropped by this entry (updated atomically by the kernel).
    pub hits: u64,
    /// One of the `REASON_*` values.
    pub reason: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<BlockEntry>() == 24);

/// Per-interface settings (`XDP_IFACES`, keyed by ifindex).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IfaceConfig {
    /// Packets per second allowed per source address; 0 disables the packet rate limit.
    pub rate_pps: u64,
    /// Packets a source may send at once above the rate.
    pub burst: u64,
}
const _: () = assert!(size_of::<IfaceConfig>() == 16);

/// Largest packet rate and burst the kernel bucket arithmetic supports.
pub const MAX_RATE_PPS: u64 = 100_000_000;
pub const MAX_BURST: u64 = 1_000_000_000;

/// Key of the per-source token buckets: the source address (IPv4 in the first 4 bytes)
/// on an interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateKey {
    pub addr: [u8; 16],
    pub ifindex: u32,
    /// 4 or 6.
    pub version: u32,
}
const _: () = assert!(size_of::<RateKey>() == 24);

/// A token bucket in thousandths of a packet, so low rates refill smoothly.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenBucket {
    pub milli_tokens: u64,
    pub last_ns: u64,
}
const _: () = assert!(size_of::<TokenBucket>() == 16);

/// Per-CPU XDP verdict counters (`XDP_STATS` index). Numbers are stable.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpStat {
    /// IP packet from a source that is not blocked.
    Passed = 0,
    /// Blocked source that is on the allowlist (the allowlist wins).
    PassedAllowlist = 1,
    /// Frame the guard could not parse (truncated, bad header): passed, fail-open.
    ParseFail = 2,
    /// Not IPv4/IPv6 (ARP, LLDP, ...): passed.
    NotIp = 3,
    DroppedBlocklist = 4,
    DroppedCidr = 5,
    DroppedRatelimit = 6,
}
pub const XDP_STAT_COUNT: u32 = 7;

impl XdpStat {
    pub const ALL: [XdpStat; XDP_STAT_COUNT as usize] = [
        XdpStat::Passed,
        XdpStat::PassedAllowlist,
        XdpStat::ParseFail,
        XdpStat::NotIp,
        XdpStat::DroppedBlocklist,
        XdpStat::DroppedCidr,
        XdpStat::DroppedRatelimit,
    ];

    /// Metric labels (`action`, `reason`).
    pub const fn labels(self) -> (&'static str, &'static str) {
        match self {
            XdpStat::Passed => ("pass", "not_blocked"),
            XdpStat::PassedAllowlist => ("pass", "allowlist"),
            XdpStat::ParseFail => ("pass", "parse_fail"),
            XdpStat::NotIp => ("pass", "not_ip"),
            XdpStat::DroppedBlocklist => ("drop", "blocklist"),
            XdpStat::DroppedCidr => ("drop", "cidr"),
            XdpStat::DroppedRatelimit => ("drop", "ratelimit"),
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY (each impl): repr(C), Copy, only integer and byte-array fields, no padding
    // (sizes asserted above), so any bytes the kernel writes are a valid value.
    // SAFETY: see above.
    unsafe impl aya::Pod for BlockEntry {}
    // SAFETY: see above.
    unsafe impl aya::Pod for IfaceConfig {}
    // SAFETY: see above.
    unsafe impl aya::Pod for RateKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for TokenBucket {}
}
