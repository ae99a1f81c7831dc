//! The TLS hooking thread. It owns the eBPF object, so attaching needs no locks and
//! dropping it when the thread ends detaches every program. At start it hooks the TLS
//! libraries in the configured directories (so short-lived clients are seen from their
//! first call) and every running process; then each process the kernel reports as exec'ing
//! or mapping code (debounced), plus a periodic full rescan as a safety net.

use std::{
    collections::BTreeSet,
    io,
    num::NonZeroU32,
    path::{Path, PathBuf},
    sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use std::os::fd::AsRawFd as _;
use std::os::unix::fs::MetadataExt as _;
use tracing::{debug, info, warn};

use super::{
    elf,
    maps::{self, MappedFile},
    registry::{FileState, Registry},
    sites::SiteKind,
    TlsLibraries,
};
use crate::{
    config::{CaptureConfig, TlsConfig},
    probes::Probes,
    telemetry::{Metrics, SkipReason},
};

/// Notifications that arrive this soon after the first one are handled in the same scan:
/// the dynamic linker maps a process's libraries in a quick burst.
const DEBOUNCE: Duration = Duration::from_millis(20);
/// Pending process notifications; beyond it they are counted and the rescan catches up.
const QUEUE: usize = 4096;
/// File names hooked from `tls.library_dirs` without any process mapping them yet.
const LIBRARY_PREFIXES: [&str; 2] = ["libssl.so", "libgnutls.so"];

enum Msg {
    Scan(u32),
    Stop,
}

/// Tells the hooking thread about processes to rescan; cheap to clone, never blocks.
#[derive(Clone)]
pub struct Notifier {
    tx: SyncSender<Msg>,
    metrics: Metrics,
}

impl Notifier {
    pub fn process_changed(&self, tgid: u32) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Msg::Scan(tgid)) {
            self.metrics.tls.discovery_dropped();
        }
    }
}

/// The running thread; [`HookThread::stop`] detaches everything.
pub struct HookThread {
    tx: SyncSender<Msg>,
    handle: JoinHandle<()>,
}

impl HookThread {
    /// `scope`: hook only for these processes (empty: for all; see [`scope_for`]).
    pub fn spawn(
        probes: Probes,
        config: TlsConfig,
        scope: Vec<NonZeroU32>,
        metrics: Metrics,
        libraries: TlsLibraries,
    ) -> io::Result<(Self, Notifier)> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let hooker = Hooker {
            probes,
            registry: Registry::new(config.max_files),
            config,
            libraries,
            metrics: metrics.clone(),
            proc_root: PathBuf::from("/proc"),
            next_id: 1,
            scope,
        };
        let (started_tx, started_rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("tls-hooks".into())
            .spawn(move || hooker.run(rx, started_tx))?;
        // Readiness means the TLS libraries present at start are hooked: a client started
        // right after would otherwise race the first pass. (The thread ending early also
        // ends the wait.)
        let _ = started_rx.recv();
        let notifier = Notifier {
            tx: tx.clone(),
            metrics,
        };
        Ok((Self { tx, handle }, notifier))
    }

    /// Stops the thread and waits for it: the eBPF object is dropped, detaching all hooks.
    pub fn stop(self) {
        let _ = self.tx.send(Msg::Stop);
        if self.handle.join().is_err() {
            warn!("The TLS hooking thread panicked");
        }
    }
}

struct Hooker {
    probes: Probes,
    registry: Registry,
    config: TlsConfig,
    libraries: TlsLibraries,
    metrics: Metrics,
    proc_root: PathBuf,
    /// Next library id (attach cookie); data records carry it in 16 bits.
    next_id: u32,
    /// Processes the hooks are limited to (empty: all).
    scope: Vec<NonZeroU32>,
}

/// Most processes a capture filter may list for TLS hooks to be attached per process; each
/// costs one set of uprobes per library.
const MAX_SCOPED_PIDS: usize = 64;

/// The processes TLS hooks can be limited to: those of a pid-only capture filter (other
/// processes then never take a uprobe trap). Empty (hook for all) when capture is not
/// limited to a short list of pids; comm and cgroup filters match processes that start
/// later, so they need hooks for all processes (the kernel side still filters).
pub fn scope_for(capture: &CaptureConfig) -> Vec<NonZeroU32> {
    if capture.comms.is_empty()
        && capture.cgroups.is_empty()
        && capture.pids.len() <= MAX_SCOPED_PIDS
    {
        capture
            .pids
            .iter()
            .filter_map(|&p| NonZeroU32::new(p))
            .collect()
    } else {
        Vec::new()
    }
}

impl Hooker {
    fn run(mut self, rx: Receiver<Msg>, started: mpsc::Sender<()>) {
        if !self.config.enabled {
            let _ = started.send(());
            // Keep the probes alive until told to stop.
            while let Ok(Msg::Scan(_)) = rx.recv() {}
            return;
        }
        if self.scope.is_empty() {
            self.hook_library_dirs();
            self.scan_all();
        } else {
            // Only what the listed processes map matters.
            for pid in self.scope.clone() {
                self.scan_pid(pid.get());
            }
        }
        let _ = started.send(());
        let hooked: Vec<&str> = self.registry.hooked().map(|(_, path)| path).collect();
        let skipped: Vec<String> = self
            .registry
            .skipped()
            .map(|(path, reason)| format!("{path} ({reason})"))
            .collect();
        info!(?hooked, ?skipped, "TLS libraries hooked at start");
        let rescan = Duration::from_secs(self.config.rescan_interval_secs);
        let mut last_rescan = Instant::now();
        loop {
            let msg = if rescan.is_zero() {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(rescan.saturating_sub(last_rescan.elapsed()))
            };
            match msg {
                Ok(Msg::Scan(pid)) => {
                    let Some(pids) = gather(&rx, pid) else {
                        return;
                    };
                    for pid in pids {
                        self.scan_pid(pid);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.rescan();
                    last_rescan = Instant::now();
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Hooks the TLS libraries found in the configured directories (symlinks resolved, so
    /// each file is hooked once under its real path).
    fn hook_library_dirs(&mut self) {
        for dir in self.config.library_dirs.clone() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if !LIBRARY_PREFIXES.iter().any(|p| name.starts_with(p)) {
                    continue;
                }
                let Ok(path) = std::fs::canonicalize(entry.path()) else {
                    continue;
                };
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if meta.is_file() && self.registry.get(meta.dev(), meta.ino()).is_none() {
                    let name = path.to_string_lossy().into_owned();
                    self.inspect(&path, &name, meta.dev(), meta.ino());
                }
            }
        }
    }

    /// The periodic safety net: every process, or the scoped ones.
    fn rescan(&mut self) {
        if self.scope.is_empty() {
            self.scan_all();
        } else {
            for pid in self.scope.clone() {
                self.scan_pid(pid.get());
            }
        }
    }

    fn scan_all(&mut self) {
        match maps::list_pids(&self.proc_root) {
            Ok(pids) => {
                for pid in pids {
                    self.scan_pid(pid);
                }
            }
            Err(error) => warn!(%error, "Listing processes for TLS discovery failed"),
        }
    }

    /// Hooks every not yet inspected executable file process `pid` maps.
    fn scan_pid(&mut self, pid: u32) {
        if pid == std::process::id() {
            return;
        }
        let files = match maps::process_exec_files(&self.proc_root, pid) {
            Ok(files) => files,
            Err(error) => {
                debug!(pid, %error, "Reading process maps failed");
                return;
            }
        };
        for file in files {
            if self.registry.get(file.dev, file.inode).is_some() {
                continue;
            }
            self.inspect_mapped(pid, &file);
        }
    }

    fn inspect_mapped(&mut self, pid: u32, file: &MappedFile) {
        if file.deleted {
            // The path names another file (or none) now; its inode cannot be reached by path.
            self.skip(
                file.dev,
                file.inode,
                &file.path,
                SkipReason::Deleted,
                "file was deleted or replaced",
            );
            return;
        }
        let host = maps::host_path(&self.proc_root, pid, &file.path);
        self.inspect(&host, &file.path, file.dev, file.inode);
    }

    /// Decides about one file: hook it if it implements TLS, remember it either way.
    fn inspect(&mut self, host_path: &Path, name: &str, dev: u64, inode: u64) {
        // Hold the file open and use it through our own fd: a path under `/proc/PID/root`
        // vanishes when that process exits, and a short-lived one (a Go client) often exits
        // between inspection and the last attach, which would leave the file unhooked for good.
        let pinned = open_pinned(host_path);
        let fd_path = pinned
            .as_ref()
            .map(|f| PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd())));
        let host_path = fd_path.as_deref().unwrap_or(host_path);
        let functions = match elf::find_tls_functions(host_path) {
            Ok(Some(functions)) => functions,
            Ok(None) => {
                self.remember(dev, inode, FileState::NotTls);
                return;
            }
            Err(error @ elf::ElfError::Unsupported { .. }) => {
                self.skip(
                    dev,
                    inode,
                    name,
                    SkipReason::Unsupported,
                    &error.to_string(),
                );
                return;
            }
            Err(error) => {
                self.skip(dev, inode, name, SkipReason::Unreadable, &error.to_string());
                return;
            }
        };
        if self.next_id > u32::from(u16::MAX) {
            self.skip(
                dev,
                inode,
                name,
                SkipReason::TooManyLibraries,
                "library ids exhausted",
            );
            return;
        }
        let id = self.next_id;
        match self
            .probes
            .attach_tls(host_path, &functions, id, &self.scope)
        {
            Ok(probes) => {
                self.next_id += 1;
                // Exchanges name Go's TLS by toolchain version (the file is any Go program).
                match &functions.go {
                    Some(go) => self.libraries.insert(id, &format!("go:{}", go.version)),
                    None => self.libraries.insert(id, name),
                }
                self.remember(
                    dev,
                    inode,
                    FileState::Hooked {
                        library_id: id,
                        path: name.to_string(),
                    },
                );
                self.metrics.tls.set_probes_attached(name, probes);
                for kind in SiteKind::ALL {
                    let n = functions.sites.iter().filter(|s| s.kind == kind).count();
                    self.metrics.tls.set_probe_sites(name, kind, n);
                }
                let sites: Vec<String> = functions.sites.iter().map(|s| s.to_string()).collect();
                info!(library = name, flavor = ?functions.flavor, probes, ?sites, "Hooked TLS library");
                if let Some(slow) = functions
                    .sites
                    .iter()
                    .find(|s| s.kind == SiteKind::EntrySingleStep)
                {
                    warn!(
                        library = name,
                        site = %slow,
                        "TLS probe on a single-stepped instruction: each call costs a trap \
                         (no emulated site proven for this library)"
                    );
                }
            }
            Err(error) => self.skip(
                dev,
                inode,
                name,
                SkipReason::AttachFailed,
                &error.to_string(),
            ),
        }
    }

    fn skip(&mut self, dev: u64, inode: u64, path: &str, reason: SkipReason, detail: &str) {
        self.metrics.tls.file_skipped(reason);
        let reason = reason.as_str();
        warn!(file = path, reason, detail, "TLS library not hooked");
        self.remember(
            dev,
            inode,
            FileState::Skipped {
                path: path.to_string(),
                reason: format!("{reason}: {detail}"),
            },
        );
    }

    /// Records a decision; a full registry means the file may be inspected again later.
    fn remember(&mut self, dev: u64, inode: u64, state: FileState) {
        if !self.registry.insert(dev, inode, state) {
            self.metrics.tls.file_skipped(SkipReason::RegistryFull);
        }
        self.metrics.tls.set_files_inspected(self.registry.len());
    }
}

/// `path` opened read-only without blocking on special files (the ELF reader checks the type).
fn open_pinned(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .ok()
}

/// `first` plus every pid notified within [`DEBOUNCE`]; `None` when told to stop.
fn gather(rx: &Receiver<Msg>, first: u32) -> Option<BTreeSet<u32>> {
    let mut pids = BTreeSet::from([first]);
    let deadline = Instant::now() + DEBOUNCE;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Msg::Scan(pid)) => {
                pids.insert(pid);
            }
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) => return Some(pids),
        }
    }
}
