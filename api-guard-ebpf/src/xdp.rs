//! The XDP guard: drops packets from blocked source addresses before the network stack.
//!
//! Fail-open by construction: whatever cannot be parsed passes. Only the source address
//! matters, so IPv6 extension headers never need walking (the source sits in the fixed
//! header) and IPv4 fragments are treated like any packet of their source. A block entry
//! carries its end time, compared with `bpf_ktime_get_ns()` here, so blocks end on time even
//! when the daemon is gone. The allowlist is consulted only once a packet is about to be
//! dropped: the common path (nothing blocked) costs one hash lookup and, when CIDR blocks or
//! packet limits exist, one trie lookup and one bucket update.

use core::{
    intrinsics::{atomic_xadd, AtomicOrdering},
    mem::size_of,
};

use api_guard_common::{
    xdp::{BlockEntry, IfaceConfig, RateKey, TokenBucket, XdpStat, NEVER_EXPIRES},
    Plain,
};
use aya_ebpf::{
    bindings::xdp_action::{XDP_DROP, XDP_PASS},
    helpers::bpf_ktime_get_ns,
    macros::xdp,
    maps::{lpm_trie::Key, HashMap, LpmTrie},
    programs::XdpContext,
};

use crate::maps::{
    global_u32, XDP_ALLOW_ON, XDP_ALLOW_V4, XDP_ALLOW_V6, XDP_BLOCK_V4, XDP_BLOCK_V6, XDP_CIDR_V4,
    XDP_CIDR_V6, XDP_IFACES, XDP_RATE, XDP_RATE_ON, XDP_STATS,
};

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
/// VLAN tags looked through (802.1ad outer + 802.1Q inner).
const MAX_VLAN_TAGS: usize = 2;
/// Bucket refill is computed over at most this long a silence (keeps the math in u64).
const MAX_REFILL_NS: u64 = 10_000_000_000;
/// Bounds that keep the bucket arithmetic in u64 (BPF has no 128-bit multiply).
const MAX_RATE_PPS: u64 = api_guard_common::xdp::MAX_RATE_PPS;
const MAX_BURST: u64 = api_guard_common::xdp::MAX_BURST;

/// A source address as the guard sees it.
enum Source {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// Why a frame was not looked at further.
enum Skip {
    NotIp,
    Malformed,
}

/// xdp: every frame received on an attached interface.
#[xdp]
pub fn xdp_guard(ctx: XdpContext) -> u32 {
    let (stat, action) = match source(&ctx) {
        Ok(src) => verdict(&ctx, &src),
        Err(Skip::NotIp) => (XdpStat::NotIp, XDP_PASS),
        Err(Skip::Malformed) => (XdpStat::ParseFail, XDP_PASS),
    };
    count(stat);
    action
}

fn count(stat: XdpStat) {
    if let Some(slot) = XDP_STATS.get_ptr_mut(stat as u32) {
        // SAFETY: a valid, aligned pointer to this CPU's slot (array elements are never freed);
        // XDP runs with preemption off, so no other writer on this CPU.
        unsafe { *slot += 1 };
    }
}

/// Bounds-checked pointer to a `T` at `offset` in the frame.
#[inline(always)]
fn at<T>(ctx: &XdpContext, offset: usize) -> Result<*const T, Skip> {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + offset + size_of::<T>() > end {
        return Err(Skip::Malformed);
    }
    Ok((start + offset) as *const T)
}

#[inline(always)]
fn read<T: Plain>(ctx: &XdpContext, offset: usize) -> Result<T, Skip> {
    // SAFETY: `at` checked that the whole `T` lies inside the frame; unaligned reads are fine;
    // `T: Plain` is valid for any bytes.
    Ok(unsafe { core::ptr::read_unaligned(at::<T>(ctx, offset)?) })
}

fn source(ctx: &XdpContext) -> Result<Source, Skip> {
    let mut offset = ETH_HLEN;
    let mut proto = u16::from_be(read::<u16>(ctx, 12)?);
    for _ in 0..MAX_VLAN_TAGS {
        if proto != ETH_P_8021Q && proto != ETH_P_8021AD {
            break;
        }
        // Tag: 2 bytes TCI, then the encapsulated EtherType.
        proto = u16::from_be(read::<u16>(ctx, offset + 2)?);
        offset += 4;
    }
    match proto {
        ETH_P_IP => {
            let version_ihl = read::<u8>(ctx, offset)?;
            if version_ihl >> 4 != 4 || version_ihl & 0x0f < 5 {
                return Err(Skip::Malformed);
            }
            // Source address at byte 12 of the 20-byte fixed header; require the whole header.
            read::<[u8; 20]>(ctx, offset)?;
            Ok(Source::V4(read::<[u8; 4]>(ctx, offset + 12)?))
        }
        ETH_P_IPV6 => {
            if read::<u8>(ctx, offset)? >> 4 != 6 {
                return Err(Skip::Malformed);
            }
            read::<[u8; 40]>(ctx, offset)?;
            Ok(Source::V6(read::<[u8; 16]>(ctx, offset + 8)?))
        }
        _ => Err(Skip::NotIp),
    }
}

/// A block entry that is still in force: its hit count goes up.
#[inline(always)]
fn active(entry: *const BlockEntry, now: &mut Option<u64>) -> bool {
    // SAFETY: a valid, aligned map value pointer from a successful lookup, live for this
    // program's run (values are freed only after an RCU grace period).
    let expires = unsafe { (*entry).expires_ns };
    if expires != NEVER_EXPIRES && *now.get_or_insert_with(ktime) >= expires {
        return false;
    }
    // SAFETY: as above; the field is 8-byte aligned. `AtomicU64` has no RMW methods on this
    // target, the intrinsic lowers to BPF's atomic add.
    unsafe {
        atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(
            &raw const (*entry).hits as *mut u64,
            1,
        )
    };
    true
}

fn ktime() -> u64 {
    // SAFETY: helper without arguments or preconditions.
    unsafe { bpf_ktime_get_ns() }
}

/// The block (exact address first, then range) in force for source address `a`, if any.
#[inline(always)]
fn blocked<const N: usize>(
    exact: &HashMap<[u8; N], BlockEntry>,
    ranges: &LpmTrie<[u8; N], BlockEntry>,
    a: &[u8; N],
    now: &mut Option<u64>,
) -> Option<XdpStat> {
    if exact.get_ptr(a).is_some_and(|e| active(e, now)) {
        Some(XdpStat::DroppedBlocklist)
    } else if ranges
        .get(Key::new(8 * N as u32, *a))
        .is_some_and(|e| active(e, now))
    {
        Some(XdpStat::DroppedCidr)
    } else {
        None
    }
}

fn verdict(ctx: &XdpContext, src: &Source) -> (XdpStat, u32) {
    let mut now = None;
    let blocked = match src {
        Source::V4(a) => blocked(&XDP_BLOCK_V4, &XDP_CIDR_V4, a, &mut now),
        Source::V6(a) => blocked(&XDP_BLOCK_V6, &XDP_CIDR_V6, a, &mut now),
    };
    let drop =
        blocked.or_else(|| over_rate(ctx, src, &mut now).then_some(XdpStat::DroppedRatelimit));
    match drop {
        Some(_) if allowlisted(src) => (XdpStat::PassedAllowlist, XDP_PASS),
        Some(stat) => (stat, XDP_DROP),
        None => (XdpStat::Passed, XDP_PASS),
    }
}

fn allowlisted(src: &Source) -> bool {
    if global_u32(&XDP_ALLOW_ON) == 0 {
        return false;
    }
    match src {
        Source::V4(a) => XDP_ALLOW_V4.get(Key::new(32, *a)).is_some(),
        Source::V6(a) => XDP_ALLOW_V6.get(Key::new(128, *a)).is_some(),
    }
}

/// The per-source token bucket of the receiving interface, if it has a packet limit.
fn over_rate(ctx: &XdpContext, src: &Source, now: &mut Option<u64>) -> bool {
    if global_u32(&XDP_RATE_ON) == 0 {
        return false;
    }
    let ifindex = ctx.ingress_ifindex() as u32;
    // SAFETY: the value (plain integers) is copied out at once.
    let Some(&IfaceConfig { rate_pps, burst }) = (unsafe { XDP_IFACES.get(ifindex) }) else {
        return false;
    };
    if rate_pps == 0 {
        return false;
    }
    let mut key = RateKey {
        ifindex,
        ..RateKey::default()
    };
    match src {
        Source::V4(a) => {
            key.addr[..4].copy_from_slice(a);
            key.version = 4;
        }
        Source::V6(a) => {
            key.addr = *a;
            key.version = 6;
        }
    }
    let now = *now.get_or_insert_with(ktime);
    // Clamped so that the products below fit in u64 (the config allows far less).
    let capacity = burst.min(MAX_BURST) * 1000;
    let Some(bucket) = XDP_RATE.get_ptr_mut(key) else {
        let fresh = TokenBucket {
            milli_tokens: capacity.saturating_sub(1000),
            last_ns: now,
        };
        // A full LRU evicts its least recently used bucket; a failed insert lets this pass.
        let _ = XDP_RATE.insert(key, fresh, 0);
        return false;
    };
    // SAFETY: a valid, aligned map value pointer from a successful lookup, live for this
    // program's run; concurrent updates from other CPUs make the count approximate (plain
    // integers), never unsafe.
    let bucket = unsafe { &mut *bucket };
    let elapsed = now.saturating_sub(bucket.last_ns).min(MAX_REFILL_NS);
    // rate_pps packets/s is rate_pps * 1000 milli-packets per 1e9 ns.
    let refill = rate_pps.min(MAX_RATE_PPS) * elapsed / 1_000_000;
    let tokens = bucket.milli_tokens.saturating_add(refill).min(capacity);
    bucket.last_ns = now;
    if tokens >= 1000 {
        bucket.milli_tokens = tokens - 1000;
        false
    } else {
        bucket.milli_tokens = tokens;
        true
    }
}
