//! Adoption: at start, connections established before the agent ran are registered with the
//! kernel side as if it had seen their accept/connect, so long-lived connections (keep-alive
//! pools, HTTP/2, gRPC, API clients) are captured from their next bytes on.
//!
//! Runs once, after the capture probes are attached: a connection accepted or connected
//! after that point is tracked by the kernel itself, one established before it is found
//! here. For each process the capture filter selects: `/proc/PID/fd/*` → `socket:[inode]`,
//! matched against the ESTABLISHED rows of `/proc/PID/net/tcp{,6}` (read once per network
//! namespace); the role is `server` when the local address is one a socket of that namespace
//! listens on, else `client`.
//!
//! Races: a kernel entry for the fd wins (the insert does not overwrite); the fd link is read
//! again after the insert, and an entry whose fd no longer names the same socket (closed, or
//! reused) is removed if it is still ours. Adopted connections get ids with
//! [`CONN_ID_ADOPTED`] set, which the kernel never sets, and their ConnOpen record (sent by
//! the kernel on their first data, so it precedes that data) is decoded as `joined`.

use std::{
    collections::{HashMap, HashSet},
    fs, io,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use api_guard_common::{
    ConnInfo, ConnKey, Endpoint, AF_INET, AF_INET6, CONN_ID_ADOPTED, FRAMING_UNKNOWN,
    HELLO_CAPTURE_BYTES, ROLE_CLIENT, ROLE_SERVER,
};
use aya::maps::{HashMap as BpfHashMap, MapData, MapError};
use tracing::{debug, info};

use super::{
    config::CaptureConfig,
    procnet::{self, TCP_ESTABLISHED, TCP_LISTEN},
};
use crate::{
    exchange::Role,
    telemetry::{AdoptSkip, Metrics},
};

/// Most connections adopted at start; a quarter of the kernel connection table, so new
/// connections keep room. Those beyond are counted (`reason="cap"`).
pub const MAX_ADOPTED: usize = api_guard_common::MAX_CONNS as usize / 4;

/// `BPF_NOEXIST`: insert only if the key is absent.
const BPF_NOEXIST: u64 = 1;

/// Why registering a connection with the kernel failed.
#[derive(Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The kernel tracks that fd already.
    Exists,
    Full,
    Other,
}

/// The kernel connection table, as adoption uses it.
pub trait KernelConns {
    /// Inserts `info` unless `key` is present.
    fn insert_new(&mut self, key: ConnKey, info: ConnInfo) -> Result<(), InsertError>;
    /// Removes `key` if it still holds `conn_id`.
    fn remove_if(&mut self, key: ConnKey, conn_id: u64);
}

impl KernelConns for BpfHashMap<MapData, ConnKey, ConnInfo> {
    fn insert_new(&mut self, key: ConnKey, info: ConnInfo) -> Result<(), InsertError> {
        self.insert(key, info, BPF_NOEXIST).map_err(|e| match e {
            MapError::SyscallError(e) => match e.io_error.raw_os_error() {
                Some(libc::EEXIST) => InsertError::Exists,
                Some(libc::E2BIG | libc::ENOMEM) => InsertError::Full,
                _ => InsertError::Other,
            },
            _ => InsertError::Other,
        })
    }

    fn remove_if(&mut self, key: ConnKey, conn_id: u64) {
        if self.get(&key, 0).is_ok_and(|i| i.conn_id == conn_id) {
            let _ = self.remove(&key);
        }
    }
}

/// Which processes capture selects, as the kernel's `wanted()` decides for new connections.
#[derive(Debug, Default)]
pub struct Filter {
    /// The agent itself, never captured.
    pub self_pid: u32,
    pub pids: HashSet<u32>,
    pub comms: HashSet<String>,
    /// Members of the configured cgroups (their `cgroup.procs`), read at start.
    pub cgroup_pids: HashSet<u32>,
    /// Whether any of the three filters is configured (otherwise everything is selected).
    pub active: bool,
}

impl Filter {
    pub fn from_config(config: &CaptureConfig) -> Self {
        let cgroup_pids = config
            .cgroups
            .iter()
            .filter_map(|dir| fs::read_to_string(dir.join("cgroup.procs")).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect();
        Self {
            self_pid: std::process::id(),
            pids: config.pids.iter().copied().collect(),
            comms: config.comms.iter().cloned().collect(),
            cgroup_pids,
            active: !config.pids.is_empty()
                || !config.comms.is_empty()
                || !config.cgroups.is_empty(),
        }
    }

    /// Whether process `pid` is selected; `comms` lists its threads' names (the kernel
    /// matches the name of the thread that accepts or connects), read only when needed.
    pub fn selects(&self, pid: u32, comms: impl FnOnce() -> Vec<String>) -> bool {
        if pid == self.self_pid {
            return false;
        }
        if !self.active || self.pids.contains(&pid) || self.cgroup_pids.contains(&pid) {
            return true;
        }
        !self.comms.is_empty() && comms().iter().any(|c| self.comms.contains(c))
    }
}

/// The TCP sockets of one network namespace.
#[derive(Debug, Default)]
pub struct NetTables {
    /// ESTABLISHED sockets by inode: (local, peer).
    established: HashMap<u64, (SocketAddr, SocketAddr)>,
    /// Addresses listened on, and ports listened on at a wildcard address.
    listening: HashSet<SocketAddr>,
    listening_any: HashSet<u16>,
}

impl NetTables {
    /// Adds the rows of one `tcp` or `tcp6` file.
    pub fn add(&mut self, text: &str) {
        for row in text.lines().filter_map(procnet::row) {
            match row.state {
                TCP_ESTABLISHED => {
                    self.established.insert(row.inode, (row.local, row.peer));
                }
                TCP_LISTEN if row.local.ip().is_unspecified() => {
                    self.listening_any.insert(row.local.port());
                }
                TCP_LISTEN => {
                    self.listening.insert(row.local);
                }
                _ => {}
            }
        }
    }

    fn read(proc: &Path, pid: u32) -> Self {
        let mut tables = Self::default();
        for name in ["tcp", "tcp6"] {
            if let Ok(text) = fs::read_to_string(proc.join(format!("{pid}/net/{name}"))) {
                tables.add(&text);
            }
        }
        tables
    }

    /// Server when something in the namespace listens on the connection's local address
    /// (accepted there), client otherwise.
    pub fn role(&self, local: SocketAddr) -> Role {
        if self.listening_any.contains(&local.port()) || self.listening.contains(&local) {
            Role::Server
        } else {
            Role::Client
        }
    }
}

/// An established connection found by the scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub pid: u32,
    pub fd: u32,
    pub inode: u64,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub role: Role,
}

/// What adoption did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub servers: u64,
    pub clients: u64,
    pub skipped: u64,
    pub processes: u64,
    /// (local, peer) of each adopted connection by id, for the connection table: the kernel
    /// has no socket tuple for them, and /proc may no longer have one when their first data
    /// is parsed (a short exchange and a close). At most `cap` entries.
    pub addresses: HashMap<u64, (SocketAddr, SocketAddr)>,
}

fn pid_dirs(proc: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir(proc) else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

/// Names of the threads of `pid` (its `comm` first).
fn thread_comms(proc: &Path, pid: u32) -> Vec<String> {
    let read = |p: PathBuf| fs::read_to_string(p).ok().map(|s| s.trim_end().to_string());
    let mut comms: Vec<String> = read(proc.join(format!("{pid}/comm"))).into_iter().collect();
    if let Ok(tasks) = fs::read_dir(proc.join(format!("{pid}/task"))) {
        comms.extend(
            tasks
                .filter_map(Result::ok)
                .filter_map(|t| read(t.path().join("comm"))),
        );
    }
    comms
}

/// The socket inode fd `fd` of `pid` names now.
fn fd_inode(proc: &Path, pid: u32, fd: u32) -> Option<u64> {
    let link = fs::read_link(proc.join(format!("{pid}/fd/{fd}"))).ok()?;
    procnet::socket_inode(link.to_str()?)
}

/// (fd, socket inode) of every socket fd of `pid`.
fn socket_fds(proc: &Path, pid: u32) -> io::Result<Vec<(u32, u64)>> {
    let mut fds: Vec<(u32, u64)> = fs::read_dir(proc.join(format!("{pid}/fd")))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let fd = e.file_name().to_str()?.parse().ok()?;
            let link = fs::read_link(e.path()).ok()?;
            Some((fd, procnet::socket_inode(link.to_str()?)?))
        })
        .collect();
    fds.sort_unstable();
    Ok(fds)
}

/// Established TCP connections of the processes `filter` selects, under `proc` (`/proc`).
pub fn scan(proc: &Path, filter: &Filter) -> (Vec<Found>, u64) {
    // Tables by network namespace (`/proc/PID/ns/net` link); a process whose namespace
    // cannot be read gets its own.
    let mut namespaces: HashMap<String, NetTables> = HashMap::new();
    let mut found = Vec::new();
    let mut processes = 0;
    for pid in pid_dirs(proc) {
        if !filter.selects(pid, || thread_comms(proc, pid)) {
            continue;
        }
        let Ok(fds) = socket_fds(proc, pid) else {
            continue; // exited, or a kernel thread
        };
        if fds.is_empty() {
            continue;
        }
        let ns = fs::read_link(proc.join(format!("{pid}/ns/net")))
            .map_or_else(|_| format!("pid:{pid}"), |l| l.display().to_string());
        let tables = namespaces
            .entry(ns)
            .or_insert_with(|| NetTables::read(proc, pid));
        let before = found.len();
        for (fd, inode) in fds {
            if let Some(&(local, peer)) = tables.established.get(&inode) {
                found.push(Found {
                    pid,
                    fd,
                    inode,
                    local,
                    peer,
                    role: tables.role(local),
                });
            }
        }
        processes += u64::from(found.len() > before);
    }
    (found, processes)
}

fn endpoint(addr: SocketAddr) -> Endpoint {
    let mut e = Endpoint {
        port: addr.port(),
        ..Default::default()
    };
    match addr {
        SocketAddr::V4(a) => {
            e.family = AF_INET;
            e.addr[..4].copy_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            e.family = AF_INET6;
            e.addr = a.ip().octets();
        }
    }
    e
}

/// Adopted connection ids: distinct monotonic nanoseconds from `start_ns` on, shifted as the
/// kernel's, with [`CONN_ID_ADOPTED`] set (the kernel's ids have it clear).
pub fn conn_id(start_ns: u64, n: u64) -> u64 {
    (start_ns.wrapping_add(n) << 10) | CONN_ID_ADOPTED
}

/// Registers `found` with the kernel: at most `cap`, never over an entry the kernel made,
/// and only while the fd still names the socket that was scanned.
pub fn register(
    proc: &Path,
    found: &[Found],
    conns: &mut impl KernelConns,
    cap: usize,
    start_ns: u64,
    metrics: &Metrics,
) -> Summary {
    let mut summary = Summary::default();
    let skip = |summary: &mut Summary, reason: AdoptSkip| {
        summary.skipped += 1;
        metrics.capture.adopt_skipped(reason);
    };
    for (n, f) in found.iter().enumerate() {
        if (summary.servers + summary.clients) as usize >= cap {
            skip(&mut summary, AdoptSkip::Cap);
            continue;
        }
        let key = ConnKey::new(f.pid, f.fd);
        let id = conn_id(start_ns, n as u64);
        let info = ConnInfo {
            conn_id: id,
            sk: 0,
            peer: endpoint(f.peer),
            pending_gap: [0; 2],
            role: match f.role {
                Role::Server => ROLE_SERVER,
                Role::Client => ROLE_CLIENT,
            },
            announced: 0,
            tls: 0,
            ingress_seen: 0,
            tls_library: 0,
            // Joined under way: its handshake is long over.
            hello_copied: HELLO_CAPTURE_BYTES,
            framing: FRAMING_UNKNOWN,
            _pad: 0,
            response_copied: 0,
            // Not announced: its first data call notes its socket (counted by the insert).
            sock_wanted: 1,
        };
        match conns.insert_new(key, info) {
            Ok(()) => {}
            Err(InsertError::Exists) => {
                skip(&mut summary, AdoptSkip::AlreadyTracked);
                continue;
            }
            Err(InsertError::Full) => {
                skip(&mut summary, AdoptSkip::TableFull);
                continue;
            }
            Err(InsertError::Other) => {
                skip(&mut summary, AdoptSkip::Error);
                continue;
            }
        }
        // Closed (or closed and reused) since the scan: a close after the insert removed
        // the entry in the kernel already; one before it left ours behind.
        if fd_inode(proc, f.pid, f.fd) != Some(f.inode) {
            conns.remove_if(key, id);
            skip(&mut summary, AdoptSkip::Closed);
            continue;
        }
        debug!(pid = f.pid, fd = f.fd, local = %f.local, peer = %f.peer, role = f.role.as_str(), "Adopted a connection");
        metrics.capture.adopted(f.role);
        summary.addresses.insert(id, (f.local, f.peer));
        match f.role {
            Role::Server => summary.servers += 1,
            Role::Client => summary.clients += 1,
        }
    }
    summary
}

/// Scans `/proc` and adopts what the capture filter selects; logs the counts.
pub fn adopt_existing(
    config: &CaptureConfig,
    conns: &mut impl KernelConns,
    start_ns: u64,
    metrics: &Metrics,
) -> Summary {
    let proc = Path::new("/proc");
    let filter = Filter::from_config(config);
    let (found, processes) = scan(proc, &filter);
    let mut summary = register(proc, &found, conns, MAX_ADOPTED, start_ns, metrics);
    summary.processes = processes;
    info!(
        servers = summary.servers,
        clients = summary.clients,
        skipped = summary.skipped,
        processes = summary.processes,
        "Adopted connections established before start"
    );
    summary
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A fake `/proc` in a temporary directory, removed on drop.
    struct FakeProc(PathBuf);

    impl FakeProc {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("api-guard-adopt-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn process(&self, pid: u32, comm: &str, netns: &str, fds: &[(u32, &str)]) {
            let dir = self.0.join(pid.to_string());
            fs::create_dir_all(dir.join("fd")).unwrap();
            fs::create_dir_all(dir.join("ns")).unwrap();
            fs::create_dir_all(dir.join("net")).unwrap();
            fs::write(dir.join("comm"), format!("{comm}\n")).unwrap();
            symlink(netns, dir.join("ns/net")).unwrap();
            for (fd, target) in fds {
                self.link(pid, *fd, target);
            }
        }

        fn link(&self, pid: u32, fd: u32, target: &str) {
            let path = self.0.join(format!("{pid}/fd/{fd}"));
            let _ = fs::remove_file(&path);
            symlink(target, path).unwrap();
        }

        fn net(&self, pid: u32, tcp: &str, tcp6: &str) {
            let dir = self.0.join(format!("{pid}/net"));
            fs::write(dir.join("tcp"), format!("{HEADER}\n{tcp}")).unwrap();
            fs::write(dir.join("tcp6"), format!("{HEADER}\n{tcp6}")).unwrap();
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";

    fn v4(sl: u32, local: &str, peer: &str, st: &str, inode: u64) -> String {
        format!("   {sl}: {local} {peer} {st} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 20 4 30 10 -1\n")
    }

    /// Namespace A: a server listening on 0.0.0.0:8080 (inode 10) with one accepted
    /// connection from 10.0.0.2:40000 (inode 11); a client connected from 10.0.0.2:40000
    /// (inode 12); a TIME_WAIT row; an IPv6 server on [::1]:443 listened on by address.
    fn namespace_a() -> (String, String) {
        let tcp = [
            v4(0, "00000000:1F90", "00000000:0000", "0A", 10),
            v4(1, "0100000A:1F90", "0200000A:9C40", "01", 11),
            v4(2, "0200000A:9C40", "0100000A:1F90", "01", 12),
            v4(3, "0100000A:1F91", "0200000A:9C41", "06", 13),
        ]
        .concat();
        let tcp6 = [
            v4(
                0,
                "00000000000000000000000001000000:01BB",
                "00000000000000000000000000000000:0000",
                "0A",
                20,
            ),
            v4(
                1,
                "00000000000000000000000001000000:01BB",
                "00000000000000000000000001000000:C350",
                "01",
                21,
            ),
            v4(
                2,
                "00000000000000000000000001000000:C350",
                "00000000000000000000000001000000:01BB",
                "01",
                22,
            ),
        ]
        .concat();
        (tcp, tcp6)
    }

    fn tables() -> NetTables {
        let (tcp, tcp6) = namespace_a();
        let mut t = NetTables::default();
        t.add(&format!("{HEADER}\n{tcp}"));
        t.add(&format!("{HEADER}\n{tcp6}"));
        t
    }

    #[test]
    fn role_is_server_on_a_listened_address() {
        let t = tables();
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            t.established.len(),
            4,
            "LISTEN and TIME_WAIT rows are not connections"
        );
        assert_eq!(
            t.role(addr("10.0.0.1:8080")),
            Role::Server,
            "wildcard listener"
        );
        assert_eq!(t.role(addr("10.0.0.2:40000")), Role::Client);
        assert_eq!(
            t.role(addr("[::1]:443")),
            Role::Server,
            "listener by address"
        );
        assert_eq!(t.role(addr("[::1]:50000")), Role::Client);
        assert_eq!(t.role(addr("[::2]:443")), Role::Client, "another address");
    }

    #[test]
    fn filter_follows_pids_comms_cgroups_and_excludes_self() {
        let mut f = Filter {
            self_pid: 1,
            ..Filter::default()
        };
        let no_comms = || -> Vec<String> { panic!("comms read without a comm filter") };
        assert!(f.selects(7, no_comms));
        assert!(!f.selects(1, no_comms), "the agent itself");
        f.active = true;
        f.pids.insert(7);
        f.cgroup_pids.insert(9);
        assert!(f.selects(7, no_comms));
        assert!(f.selects(9, no_comms));
        assert!(!f.selects(8, no_comms));
        f.comms.insert("nginx".into());
        assert!(f.selects(8, || vec!["bash".into(), "nginx".into()]));
        assert!(!f.selects(8, || vec!["bash".into()]));
        f.pids.insert(1);
        assert!(
            !f.selects(1, || vec!["nginx".into()]),
            "the agent, even if listed"
        );
    }

    #[test]
    fn scan_finds_established_sockets_per_namespace() {
        let p = FakeProc::new("scan");
        let (tcp, tcp6) = namespace_a();
        // Server process: fd 3 the listener, fd 4 the accepted connection, fd 5 a file.
        p.process(
            100,
            "server",
            "net:[1]",
            &[(3, "socket:[10]"), (4, "socket:[11]"), (5, "/var/log/x")],
        );
        p.net(100, &tcp, &tcp6);
        // Client in the same namespace (the same tables; read once, from the first process).
        p.process(
            200,
            "client",
            "net:[1]",
            &[(7, "socket:[12]"), (8, "socket:[22]"), (9, "pipe:[5]")],
        );
        p.net(200, &tcp, &tcp6);
        // A process in another namespace where inode 11 does not exist.
        p.process(300, "other", "net:[2]", &[(4, "socket:[11]")]);
        p.net(300, "", "");
        let filter = Filter::default();
        let (found, processes) = scan(&p.0, &filter);
        let brief: Vec<_> = found
            .iter()
            .map(|f| {
                (
                    f.pid,
                    f.fd,
                    f.inode,
                    f.local.to_string(),
                    f.peer.to_string(),
                    f.role,
                )
            })
            .collect();
        assert_eq!(
            brief,
            [
                (
                    100,
                    4,
                    11,
                    "10.0.0.1:8080".into(),
                    "10.0.0.2:40000".into(),
                    Role::Server
                ),
                (
                    200,
                    7,
                    12,
                    "10.0.0.2:40000".into(),
                    "10.0.0.1:8080".into(),
                    Role::Client
                ),
                (
                    200,
                    8,
                    22,
                    "[::1]:50000".into(),
                    "[::1]:443".into(),
                    Role::Client
                ),
            ]
        );
        assert_eq!(processes, 2);
        let filter = Filter {
            active: true,
            comms: HashSet::from(["client".to_string()]),
            ..Filter::default()
        };
        let (found, _) = scan(&p.0, &filter);
        assert_eq!(found.iter().map(|f| f.pid).collect::<Vec<_>>(), [200, 200]);
    }

    /// The kernel table, with what the kernel did meanwhile scripted.
    #[derive(Default)]
    struct FakeConns {
        entries: HashMap<ConnKey, ConnInfo>,
        capacity: usize,
    }

    impl KernelConns for FakeConns {
        fn insert_new(&mut self, key: ConnKey, info: ConnInfo) -> Result<(), InsertError> {
            if self.entries.contains_key(&key) {
                return Err(InsertError::Exists);
            }
            if self.entries.len() >= self.capacity {
                return Err(InsertError::Full);
            }
            self.entries.insert(key, info);
            Ok(())
        }

        fn remove_if(&mut self, key: ConnKey, conn_id: u64) {
            if self.entries.get(&key).is_some_and(|i| i.conn_id == conn_id) {
                self.entries.remove(&key);
            }
        }
    }

    fn found(pid: u32, fd: u32, inode: u64, role: Role) -> Found {
        Found {
            pid,
            fd,
            inode,
            local: "10.0.0.1:8080".parse().unwrap(),
            peer: "10.0.0.2:40000".parse().unwrap(),
            role,
        }
    }

    fn metric(metrics: &Metrics, prefix: &str) -> Vec<String> {
        metrics
            .render()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn register_handles_races_and_the_cap() {
        let p = FakeProc::new("register");
        p.process(
            100,
            "server",
            "net:[1]",
            &[
                (4, "socket:[11]"),
                (5, "socket:[12]"),
                (6, "socket:[99]"),
                (7, "socket:[13]"),
            ],
        );
        let mut conns = FakeConns {
            capacity: 100,
            ..FakeConns::default()
        };
        // fd 5 was accepted again after the scan: the kernel's entry must win.
        let kernel_id = 7 << 10;
        let mut kernel = conns_info(kernel_id);
        kernel.role = ROLE_SERVER;
        conns.entries.insert(ConnKey::new(100, 5), kernel);
        let metrics = Metrics::new();
        let scanned = [
            found(100, 4, 11, Role::Server),
            found(100, 5, 12, Role::Server),
            // fd 6 now names another socket (closed and reused since the scan).
            found(100, 6, 14, Role::Client),
            // fd 8 is gone.
            found(100, 8, 15, Role::Client),
            found(100, 7, 13, Role::Client),
            found(100, 9, 16, Role::Client),
        ];
        let summary = register(&p.0, &scanned, &mut conns, 2, 1000, &metrics);
        assert_eq!(
            (summary.servers, summary.clients, summary.skipped),
            (1, 1, 4)
        );
        let addresses = |id| {
            summary
                .addresses
                .get(&id)
                .map(|(l, p)| (l.to_string(), p.to_string()))
        };
        assert_eq!(summary.addresses.len(), 2);
        assert_eq!(
            addresses(conn_id(1000, 0)),
            Some(("10.0.0.1:8080".into(), "10.0.0.2:40000".into()))
        );
        let id = |key: (u32, u32)| {
            conns
                .entries
                .get(&ConnKey::new(key.0, key.1))
                .map(|i| i.conn_id)
        };
        assert_eq!(id((100, 4)), Some(conn_id(1000, 0)));
        assert_eq!(id((100, 5)), Some(kernel_id), "the kernel's entry is kept");
        assert_eq!(id((100, 6)), None);
        assert_eq!(id((100, 8)), None);
        assert_eq!(id((100, 7)), Some(conn_id(1000, 4)));
        assert_eq!(conns.entries[&ConnKey::new(100, 7)].role, ROLE_CLIENT);
        assert_eq!(conns.entries[&ConnKey::new(100, 4)].peer.port, 40000);
        assert_eq!(
            metric(&metrics, "apiguard_connections_adopted_total"),
            [
                "apiguard_connections_adopted_total{role=\"client\"} 1",
                "apiguard_connections_adopted_total{role=\"server\"} 1"
            ]
        );
        assert_eq!(
            metric(&metrics, "apiguard_connections_adopt_skipped_total"),
            [
                "apiguard_connections_adopt_skipped_total{reason=\"already_tracked\"} 1",
                "apiguard_connections_adopt_skipped_total{reason=\"cap\"} 1",
                "apiguard_connections_adopt_skipped_total{reason=\"closed\"} 2"
            ]
        );
    }

    #[test]
    fn a_full_kernel_table_is_counted() {
        let p = FakeProc::new("full");
        p.process(100, "server", "net:[1]", &[(4, "socket:[11]")]);
        let mut conns = FakeConns::default();
        let metrics = Metrics::new();
        let summary = register(
            &p.0,
            &[found(100, 4, 11, Role::Server)],
            &mut conns,
            10,
            1,
            &metrics,
        );
        assert_eq!(summary.skipped, 1);
        assert_eq!(
            metric(&metrics, "apiguard_connections_adopt_skipped_total"),
            ["apiguard_connections_adopt_skipped_total{reason=\"table_full\"} 1"]
        );
    }

    fn conns_info(conn_id: u64) -> ConnInfo {
        ConnInfo {
            conn_id,
            sk: 0,
            peer: Endpoint::default(),
            pending_gap: [0; 2],
            role: 0,
            announced: 1,
            tls: 0,
            ingress_seen: 0,
            tls_library: 0,
            // Joined under way: its handshake is long over.
            hello_copied: HELLO_CAPTURE_BYTES,
            framing: FRAMING_UNKNOWN,
            _pad: 0,
            response_copied: 0,
            sock_wanted: 0,
        }
    }

    #[test]
    fn adopted_ids_never_equal_kernel_ids() {
        let ids: HashSet<u64> = (0..1000).map(|n| conn_id(5_000_000, n)).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|&id| api_guard_common::conn_id_adopted(id)));
        // The kernel's: time << 10 | cpu, with the cpu masked below the adopted bit.
        for cpu in [0u64, 1, 511, 512, 1023] {
            let kernel = (5_000_000u64 << 10) | (cpu & api_guard_common::CONN_ID_CPU_MASK);
            assert!(!api_guard_common::conn_id_adopted(kernel));
        }
    }
}
