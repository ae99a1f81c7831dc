//! The XDP guard from user space: its maps (blocklist, CIDR and allow tries, interface
//! settings, counters) and its attachment to interfaces, optionally pinned under bpffs so
//! that the program and the blocks outlive the daemon and a restarted daemon adopts them.

use std::{
    fs,
    net::IpAddr,
    os::{fd::AsRawFd as _, unix::fs::MetadataExt as _},
    path::{Path, PathBuf},
};

use api_guard_common::xdp::{BlockEntry, IfaceConfig, XdpStat, XDP_STAT_COUNT};
use aya::{
    maps::{lpm_trie::Key, HashMap, LpmTrie, MapData, MapError, PerCpuArray},
    programs::{
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
        ProgramError, Xdp, XdpMode,
    },
};
use tracing::{info, warn};

use super::target::Target;
use crate::config::{XdpAttachMode, XdpInterface};

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("XDP map {name}: {source}")]
    Map {
        name: &'static str,
        source: MapError,
    },
    #[error("interface {iface}: {reason}")]
    Attach { iface: String, reason: String },
}

fn map_err(name: &'static str) -> impl FnOnce(MapError) -> XdpError {
    move |source| XdpError::Map { name, source }
}

/// The LPM trie key of a range.
fn lpm<const N: usize>(prefix_len: u8, octets: [u8; N]) -> Key<[u8; N]> {
    Key::new(prefix_len.into(), octets)
}

/// The guard's maps, taken out of the loaded object.
pub struct XdpMaps {
    pub block_v4: HashMap<MapData, [u8; 4], BlockEntry>,
    pub block_v6: HashMap<MapData, [u8; 16], BlockEntry>,
    pub cidr_v4: LpmTrie<MapData, [u8; 4], BlockEntry>,
    pub cidr_v6: LpmTrie<MapData, [u8; 16], BlockEntry>,
    pub allow_v4: LpmTrie<MapData, [u8; 4], u8>,
    pub allow_v6: LpmTrie<MapData, [u8; 16], u8>,
    pub ifaces: HashMap<MapData, u32, IfaceConfig>,
    pub stats: PerCpuArray<MapData, u64>,
}

impl XdpMaps {
    /// Writes (or overwrites) the kernel entry of `target`.
    pub fn put(&mut self, target: &Target, entry: BlockEntry) -> Result<(), XdpError> {
        match *target {
            Target::Addr(IpAddr::V4(a)) => self
                .block_v4
                .insert(a.octets(), entry, 0)
                .map_err(map_err("XDP_BLOCK_V4")),
            Target::Addr(IpAddr::V6(a)) => self
                .block_v6
                .insert(a.octets(), entry, 0)
                .map_err(map_err("XDP_BLOCK_V6")),
            Target::Net(ipnet::IpNet::V4(n)) => self
                .cidr_v4
                .insert(&lpm(n.prefix_len(), n.addr().octets()), entry, 0)
                .map_err(map_err("XDP_CIDR_V4")),
            Target::Net(ipnet::IpNet::V6(n)) => self
                .cidr_v6
                .insert(&lpm(n.prefix_len(), n.addr().octets()), entry, 0)
                .map_err(map_err("XDP_CIDR_V6")),
        }
    }

    /// Removes the kernel entry of `target`; a missing entry is not an error.
    pub fn delete(&mut self, target: &Target) -> Result<(), XdpError> {
        let result = match *target {
            Target::Addr(IpAddr::V4(a)) => self.block_v4.remove(&a.octets()),
            Target::Addr(IpAddr::V6(a)) => self.block_v6.remove(&a.octets()),
            Target::Net(ipnet::IpNet::V4(n)) => {
                self.cidr_v4.remove(&lpm(n.prefix_len(), n.addr().octets()))
            }
            Target::Net(ipnet::IpNet::V6(n)) => {
                self.cidr_v6.remove(&lpm(n.prefix_len(), n.addr().octets()))
            }
        };
        match result {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(map_err("blocklist")(e)),
        }
    }

    /// The kernel entry of `target` (end time, hits), if any.
    pub fn get(&self, target: &Target) -> Option<BlockEntry> {
        match *target {
            Target::Addr(IpAddr::V4(a)) => self.block_v4.get(&a.octets(), 0).ok(),
            Target::Addr(IpAddr::V6(a)) => self.block_v6.get(&a.octets(), 0).ok(),
            Target::Net(ipnet::IpNet::V4(n)) => self
                .cidr_v4
                .get(&lpm(n.prefix_len(), n.addr().octets()), 0)
                .ok(),
            Target::Net(ipnet::IpNet::V6(n)) => self
                .cidr_v6
                .get(&lpm(n.prefix_len(), n.addr().octets()), 0)
                .ok(),
        }
    }

    /// Every entry in the kernel blocklists (a pinned set left by an earlier daemon).
    pub fn entries(&self) -> Vec<(Target, BlockEntry)> {
        let mut out = Vec::new();
        let net = |addr: IpAddr, len: u32| {
            ipnet::IpNet::new(addr, len as u8)
                .ok()
                .map(|n| format!("{n}"))
                .and_then(|s| s.parse::<Target>().ok())
        };
        for (k, v) in self.block_v4.iter().flatten() {
            out.push((Target::Addr(IpAddr::from(k)), v));
        }
        for (k, v) in self.block_v6.iter().flatten() {
            out.push((Target::Addr(IpAddr::from(k)), v));
        }
        for (k, v) in self.cidr_v4.iter().flatten() {
            out.extend(net(IpAddr::from(k.data()), k.prefix_len()).map(|t| (t, v)));
        }
        for (k, v) in self.cidr_v6.iter().flatten() {
            out.extend(net(IpAddr::from(k.data()), k.prefix_len()).map(|t| (t, v)));
        }
        out
    }

    /// Replaces the allowlist tries' contents with `targets`.
    pub fn set_allowlist<'a>(
        &mut self,
        targets: impl IntoIterator<Item = &'a Target>,
    ) -> Result<(), XdpError> {
        let old4: Vec<_> = self.allow_v4.keys().flatten().collect();
        for k in old4 {
            let _ = self.allow_v4.remove(&k);
        }
        let old6: Vec<_> = self.allow_v6.keys().flatten().collect();
        for k in old6 {
            let _ = self.allow_v6.remove(&k);
        }
        for target in targets {
            match target.net() {
                ipnet::IpNet::V4(n) => self
                    .allow_v4
                    .insert(&lpm(n.prefix_len(), n.addr().octets()), 1, 0)
                    .map_err(map_err("XDP_ALLOW_V4"))?,
                ipnet::IpNet::V6(n) => self
                    .allow_v6
                    .insert(&lpm(n.prefix_len(), n.addr().octets()), 1, 0)
                    .map_err(map_err("XDP_ALLOW_V6"))?,
            }
        }
        Ok(())
    }

    /// Verdict counters summed over CPUs, indexed by [`XdpStat`].
    pub fn stat_totals(&self) -> [u64; XDP_STAT_COUNT as usize] {
        let mut totals = [0; XDP_STAT_COUNT as usize];
        for stat in XdpStat::ALL {
            if let Ok(values) = self.stats.get(&(stat as u32), 0) {
                totals[stat as usize] = values.iter().sum();
            }
        }
        totals
    }
}

/// An interface the guard runs on. Dropping it detaches the program unless the link is
/// pinned (then only removing the pin does).
pub struct Attached {
    pub name: String,
    pub netns: Option<PathBuf>,
    pub ifindex: u32,
    pub mode: &'static str,
    pub adopted: bool,
    _link: AttachedLink,
}

enum AttachedLink {
    Owned(#[allow(dead_code, reason = "held for its Drop, which detaches")] XdpLink),
    Pinned,
}

/// Runs `f` on a thread that has entered the network namespace at `netns` (or on a plain
/// thread for the daemon's own namespace): interface names and indexes are per namespace.
fn in_netns<T: Send>(
    netns: Option<&Path>,
    f: impl FnOnce() -> Result<T, String> + Send,
) -> Result<T, String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            if let Some(path) = netns {
                let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                // SAFETY: setns on an fd we own; affects only this thread, which ends below.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(format!(
                        "entering {}: {}",
                        path.display(),
                        std::io::Error::last_os_error()
                    ));
                }
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err("attach thread panicked".into()))
    })
}

fn if_index(name: &str) -> Result<u32, String> {
    let c = std::ffi::CString::new(name).map_err(|_| "name contains NUL".to_string())?;
    // SAFETY: valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err("no such interface".into()),
        i => Ok(i),
    }
}

/// Pin file of the link on `iface`: the namespace's inode keeps equal names apart.
fn link_pin(dir: &Path, iface: &XdpInterface) -> Result<PathBuf, String> {
    let ns = iface
        .netns
        .as_deref()
        .unwrap_or(Path::new("/proc/self/ns/net"));
    let ino = fs::metadata(ns)
        .map_err(|e| format!("{}: {e}", ns.display()))?
        .ino();
    Ok(dir.join(format!("link-{ino}-{}", iface.name)))
}

/// Attaches `program` to one interface: adopts a pinned link left by an earlier daemon
/// (replacing its program atomically), or attaches anew (native first in `auto` mode).
pub fn attach(
    program: &mut Xdp,
    iface: &XdpInterface,
    default_mode: XdpAttachMode,
    pin_dir: Option<&Path>,
) -> Result<Attached, XdpError> {
    let fail = |reason: String| XdpError::Attach {
        iface: iface.display(),
        reason,
    };
    let pin = pin_dir
        .map(|d| link_pin(d, iface))
        .transpose()
        .map_err(fail)?;
    let mode = iface.mode.unwrap_or(default_mode);
    let (ifindex, link, mode_name, adopted) = in_netns(iface.netns.as_deref(), || {
        let ifindex = if_index(&iface.name)?;
        if let Some(pin) = pin.as_ref().filter(|p| p.exists()) {
            match adopt(program, pin) {
                Ok(()) => return Ok((ifindex, None, "pinned", true)),
                Err(e) => {
                    warn!(iface = %iface.display(), error = %e, "Pinned XDP link unusable; attaching anew");
                    let _ = fs::remove_file(pin);
                }
            }
        }
        let tries: &[(XdpMode, &'static str)] = match mode {
            XdpAttachMode::Auto => &[(XdpMode::Driver, "native"), (XdpMode::Skb, "generic")],
            XdpAttachMode::Native => &[(XdpMode::Driver, "native")],
            XdpAttachMode::Generic => &[(XdpMode::Skb, "generic")],
        };
        let mut last = String::new();
        for &(flags, name) in tries {
            match program.attach_to_if_index(ifindex, flags) {
                Ok(id) => {
                    let link = program.take_link(id).map_err(|e| e.to_string())?;
                    return Ok((ifindex, Some(link), name, false));
                }
                Err(e) => last = format!("{name} mode: {}", error_chain(&e)),
            }
        }
        Err(last)
    })
    .map_err(fail)?;
    let link = match (link, pin) {
        (None, _) => AttachedLink::Pinned,
        (Some(link), Some(pin)) => {
            let fd_link =
                FdLink::try_from(link).map_err(|e| fail(format!("link cannot be pinned: {e}")))?;
            fd_link
                .pin(&pin)
                .map_err(|e| fail(format!("pinning at {}: {e}", pin.display())))?;
            AttachedLink::Pinned
        }
        (Some(link), None) => AttachedLink::Owned(link),
    };
    info!(iface = %iface.display(), ifindex, mode = mode_name, adopted, "XDP guard attached");
    Ok(Attached {
        name: iface.name.clone(),
        netns: iface.netns.clone(),
        ifindex,
        mode: mode_name,
        adopted,
        _link: link,
    })
}

fn adopt(program: &mut Xdp, pin: &Path) -> Result<(), String> {
    let pinned = PinnedLink::from_pin(pin).map_err(|e| e.to_string())?;
    let link = XdpLink::try_from(FdLink::from(pinned)).map_err(|e| e.to_string())?;
    let id = program.attach_to_link(link).map_err(|e| error_chain(&e))?;
    // The pin keeps the link; our fd may go.
    drop(program.take_link(id));
    Ok(())
}

/// Removes pinned links in `dir` that belong to no configured interface (detaching them).
pub fn remove_stale_links(dir: &Path, keep: &[PathBuf]) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_link = entry.file_name().to_string_lossy().starts_with("link-");
        if is_link && !keep.contains(&path) {
            match fs::remove_file(&path) {
                Ok(()) => {
                    info!(pin = %path.display(), "Removed pinned XDP link of an interface no longer configured")
                }
                Err(e) => {
                    warn!(pin = %path.display(), error = %e, "Removing a stale XDP link pin failed")
                }
            }
        }
    }
}

/// The pin paths `attach` uses for `ifaces` (for [`remove_stale_links`]).
pub fn link_pins(dir: &Path, ifaces: &[XdpInterface]) -> Vec<PathBuf> {
    ifaces
        .iter()
        .filter_map(|i| link_pin(dir, i).ok())
        .collect()
}

fn error_chain(e: &ProgramError) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s += &format!(": {inner}");
        source = inner.source();
    }
    s
}
