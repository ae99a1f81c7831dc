//! Network namespaces and veth pairs with names and addresses unique per process.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, Once};

use anyhow::{bail, ensure, Context, Result};

use crate::util::{harness_root, next_id, run_checked};

/// A network namespace `<prefix>-<pid>-<counter>` with `lo` up; deleted on drop.
///
/// Deleting the namespace does not kill processes inside it: drop servers (declared
/// after the namespace, so they drop first) before it.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Result<Netns> {
        ensure!(
            !prefix.is_empty()
                && prefix.len() <= 24
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "namespace prefix {prefix:?} must be 1-24 characters of [A-Za-z0-9-]"
        );
        sweep_stale_namespaces();
        let name = format!("{prefix}-{}-{}", std::process::id(), next_id());
        run_checked(Command::new("ip").args(["netns", "add", &name]))?;
        // From here on Drop removes the namespace if a later step fails.
        let ns = Netns { name };
        let marker = marker_dir().join(&ns.name);
        fs::create_dir_all(marker_dir())?;
        fs::write(&marker, b"").with_context(|| format!("writing {}", marker.display()))?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file (`/run/netns/<name>`), e.g. for `xdp.interfaces[].netns`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// `ip netns exec <name> <program>`; iproute2 execs the program directly, so the
    /// spawned child's pid is the program's pid.
    pub fn cmd(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// `ip -n <name> <args>`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        run_checked(Command::new("ip").args(["-n", &self.name]).args(args))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run_checked(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("warning: deleting namespace {}: {e:#}", self.name);
        }
        let _ = fs::remove_file(marker_dir().join(&self.name));
    }
}

fn marker_dir() -> PathBuf {
    harness_root().join("netns")
}

/// Deletes namespaces this harness created in processes that no longer exist (a test
/// binary killed by a timeout never runs its destructors). Only names with a marker
/// file are touched, so namespaces made by anyone else are left alone.
fn sweep_stale_namespaces() {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(|| {
        let Ok(entries) = fs::read_dir(marker_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if PathBuf::from(format!("/proc/{pid}")).exists() {
                continue;
            }
            let _ = run_checked(Command::new("ip").args(["netns", "del", &name]));
            let _ = fs::remove_file(entry.path());
        }
    });
}

/// The /30 blocks of 10.231.0.0/16.
const SLOTS: u32 = 16384;

/// Slot locks held for the life of the process: a flock per /30 makes addresses unique
/// across parallel test binaries, and the kernel drops the locks when the process exits.
static HELD_SLOTS: Mutex<Vec<File>> = Mutex::new(Vec::new());

fn alloc_slot() -> Result<u32> {
    let dir = harness_root().join("slots");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let start = (std::process::id().wrapping_mul(97)).wrapping_add(next_id()) % SLOTS;
    for i in 0..SLOTS {
        let slot = (start + i) % SLOTS;
        let path = dir.join(format!("{slot}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            HELD_SLOTS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(file);
            return Ok(slot);
        }
    }
    bail!("all {SLOTS} /30 address slots in 10.231.0.0/16 are in use")
}

/// Creates a veth pair with one end in `a` and the other in `b`, addressed from a /30 of
/// 10.231.0.0/16 that no other live harness process uses, both ends up.
/// Returns (address in `a`, address in `b`).
pub fn veth_pair(a: &Netns, b: &Netns) -> Result<(Ipv4Addr, Ipv4Addr)> {
    let v = Veth::new(a, b)?;
    Ok((v.a_ip, v.b_ip))
}

/// A veth pair between two namespaces, with its interface names (for XDP) and addresses.
#[derive(Debug, Clone)]
pub struct Veth {
    pub a_if: String,
    pub b_if: String,
    pub a_ip: Ipv4Addr,
    pub b_ip: Ipv4Addr,
    slot: u32,
}

impl Veth {
    /// See [`veth_pair`].
    pub fn new(a: &Netns, b: &Netns) -> Result<Veth> {
        veth(a, b)
    }

    /// Adds IPv6 addresses `fd00:a9:<slot>::1/64` (in `a`) and `::2` (in `b`), usable at
    /// once (no duplicate address detection). Returns them.
    pub fn add_ipv6(&self, a: &Netns, b: &Netns) -> Result<(Ipv6Addr, Ipv6Addr)> {
        let (ip_a, ip_b) = (
            Ipv6Addr::new(0xfd00, 0xa9, self.slot as u16, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0xfd00, 0xa9, self.slot as u16, 0, 0, 0, 0, 2),
        );
        for (ns, ifname, addr) in [(a, &self.a_if, ip_a), (b, &self.b_if, ip_b)] {
            ns.ip(&[
                "-6",
                "addr",
                "add",
                &format!("{addr}/64"),
                "dev",
                ifname,
                "nodad",
            ])?;
        }
        Ok((ip_a, ip_b))
    }
}

fn veth(a: &Netns, b: &Netns) -> Result<Veth> {
    ensure!(
        a.name() != b.name(),
        "veth_pair needs two different namespaces"
    );
    let slot = alloc_slot()?;
    let base = u32::from(Ipv4Addr::new(10, 231, 0, 0)) + slot * 4;
    let (addr_a, addr_b) = (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2));
    // The slot is unique host-wide, so the names are too; both ends are created directly
    // inside their namespaces and never appear in the root namespace.
    let (if_a, if_b) = (format!("agv{slot}a"), format!("agv{slot}b"));
    run_checked(Command::new("ip").args([
        "link",
        "add",
        &if_a,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        &if_b,
        "netns",
        b.name(),
    ]))?;
    for (ns, ifname, addr) in [(a, &if_a, addr_a), (b, &if_b, addr_b)] {
        ns.ip(&["addr", "add", &format!("{addr}/30"), "dev", ifname])?;
        ns.ip(&["link", "set", ifname, "up"])?;
    }
    Ok(Veth {
        a_if: if_a,
        b_if: if_b,
        a_ip: addr_a,
        b_ip: addr_b,
        slot,
    })
}

/// Two namespaces joined by a veth pair: a server side and a client side.
///
/// Declare it before the servers that run in it, so they are dropped first.
pub struct NetPair {
    pub srv: Netns,
    pub cli: Netns,
    pub srv_ip: Ipv4Addr,
    pub cli_ip: Ipv4Addr,
}

impl NetPair {
    /// Namespaces `<prefix>-s-…` and `<prefix>-c-…` (prefix at most 22 characters).
    pub fn new(prefix: &str) -> Result<NetPair> {
        let srv = Netns::new(&format!("{prefix}-s"))?;
        let cli = Netns::new(&format!("{prefix}-c"))?;
        let (srv_ip, cli_ip) = veth_pair(&srv, &cli)?;
        Ok(NetPair {
            srv,
            cli,
            srv_ip,
            cli_ip,
        })
    }

    /// A listening address on the server side with a port unused on this host.
    pub fn server_addr(&self) -> Result<SocketAddr> {
        Ok(SocketAddr::new(self.srv_ip.into(), unique_port()?))
    }
}

/// A TCP port that was free on 127.0.0.1 of the root namespace a moment ago. Inside a
/// namespace of our own any port is free; using distinct ports anyway keeps addresses
/// unique when filtering the agent's host-wide output.
pub fn unique_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(listener.local_addr()?.port())
}
