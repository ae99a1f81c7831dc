//! Loads the embedded eBPF object, sets its globals and filters, and attaches every hook.
//! Required hooks that fail roll everything back (the `Ebpf` is dropped, detaching what was
//! attached); optional ones are reported in the status and logged.

use std::{num::NonZeroU32, path::Path};

use api_guard_common::{
    names::*, ConnInfo, ConnKey, FILTER_BY_CGROUP, FILTER_BY_COMM, FILTER_BY_PID,
};
use aya::{
    maps::{HashMap, MapData, PerCpuArray, RingBuf},
    programs::{
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeLinkId, UProbeScope},
        ProgramError, TracePoint, UProbe, Xdp,
    },
    Ebpf, EbpfLoader,
};
use tracing::{info, warn};

use crate::{
    capture::gate::TgidGate,
    config::Config,
    fsys,
    tls::{
        elf::TlsFunctions,
        sites::{Abi, SiteKind},
    },
};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("tracefs is not mounted at {path} and mounting it failed: {source}")]
    Tracefs {
        path: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] api_guard::config::Invalid),
    #[error("loading the eBPF object failed: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("program {name} is missing from the eBPF object")]
    MissingProgram { name: &'static str },
    #[error("map {name} is missing from the eBPF object")]
    MissingMap { name: &'static str },
    #[error("map {name}: {source}")]
    Map {
        name: &'static str,
        source: aya::maps::MapError,
    },
    #[error("map {name} is not an array")]
    MapKind { name: &'static str },
    #[error("mapping map {name} into memory: {source}")]
    Mmap {
        name: &'static str,
        source: std::io::Error,
    },
    #[error("loading TLS program {program}: {source}")]
    TlsLoad {
        program: &'static str,
        source: ProgramError,
    },
    #[error("bpffs for pinning at {path}: {reason}")]
    Bpffs { path: String, reason: String },
    #[error("XDP guard: {0}")]
    Xdp(#[from] crate::enforce::xdp::XdpError),
    #[error("loading the XDP program: {0}")]
    XdpLoad(ProgramError),
    #[error("attaching required hook {category}/{event}: {source}")]
    Attach {
        category: &'static str,
        event: &'static str,
        source: aya::programs::ProgramError,
    },
}

/// One tracepoint program: (program name, category, event, required).
struct Hook {
    program: &'static str,
    category: &'static str,
    event: &'static str,
    required: bool,
}

const fn syscall(program: &'static str) -> Hook {
    Hook {
        program,
        category: "syscalls",
        event: program,
        required: true,
    }
}

const fn hook(program: &'static str, category: &'static str, event: &'static str) -> Hook {
    Hook {
        program,
        category,
        event,
        required: true,
    }
}

/// The hooks of both capture modes: connections (accept, connect, close) and TCP tuples.
/// Exit hooks come before their enter hooks so that no call is stashed without a consumer.
const CONN_HOOKS: &[Hook] = &[
    Hook {
        program: "inet_sock_set_state",
        category: "sock",
        event: "inet_sock_set_state",
        required: false,
    },
    syscall("sys_exit_accept"),
    syscall("sys_enter_accept"),
    syscall("sys_exit_accept4"),
    syscall("sys_enter_accept4"),
    syscall("sys_exit_connect"),
    syscall("sys_enter_connect"),
    syscall("sys_enter_close"),
];

/// The data syscalls in [`CaptureMode::EntryExit`]: an entry program stashes the call's
/// arguments, the exit copies.
const ENTRY_EXIT_DATA_HOOKS: &[Hook] = &[
    // Since Linux 6.4; without them, non-TCP fds are filtered by the sockaddr family only.
    Hook {
        program: "sock_send_length",
        category: "sock",
        event: "sock_send_length",
        required: false,
    },
    Hook {
        program: "sock_recv_length",
        category: "sock",
        event: "sock_recv_length",
        required: false,
    },
    syscall("sys_exit_read"),
    syscall("sys_enter_read"),
    syscall("sys_exit_write"),
    syscall("sys_enter_write"),
    syscall("sys_exit_recvfrom"),
    syscall("sys_enter_recvfrom"),
    syscall("sys_exit_sendto"),
    syscall("sys_enter_sendto"),
    syscall("sys_exit_readv"),
    syscall("sys_enter_readv"),
    syscall("sys_exit_writev"),
    syscall("sys_enter_writev"),
    syscall("sys_exit_recvmsg"),
    syscall("sys_enter_recvmsg"),
    syscall("sys_exit_sendmsg"),
    syscall("sys_enter_sendmsg"),
    syscall("sys_exit_sendfile64"),
    syscall("sys_enter_sendfile64"),
];

/// The program [`CaptureMode::ExitOnly`] is probed with: loading it fails where the kernel
/// lacks what the exit-only programs use.
const EXIT_ONLY_PROBE: &str = "exit_read";

/// The data syscalls in [`CaptureMode::ExitOnly`]: only their exits, which read the call's
/// arguments from the task's saved registers.
const EXIT_ONLY_DATA_HOOKS: &[Hook] = &[
    Hook {
        program: "note_send_sock",
        category: "sock",
        event: "sock_send_length",
        required: false,
    },
    Hook {
        program: "note_recv_sock",
        category: "sock",
        event: "sock_recv_length",
        required: false,
    },
    hook(EXIT_ONLY_PROBE, "syscalls", "sys_exit_read"),
    hook("exit_write", "syscalls", "sys_exit_write"),
    hook("exit_recvfrom", "syscalls", "sys_exit_recvfrom"),
    hook("exit_sendto", "syscalls", "sys_exit_sendto"),
    hook("exit_readv", "syscalls", "sys_exit_readv"),
    hook("exit_writev", "syscalls", "sys_exit_writev"),
    hook("exit_recvmsg", "syscalls", "sys_exit_recvmsg"),
    hook("exit_sendmsg", "syscalls", "sys_exit_sendmsg"),
    hook("exit_sendfile64", "syscalls", "sys_exit_sendfile64"),
];

/// How the data syscalls are captured (`docs/capture.md`, "Capture modes"), chosen at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureMode {
    /// Linux >= 5.15 on x86-64: the exits alone, reading the arguments from the task's saved
    /// registers (`bpf_get_current_task_btf`, `bpf_task_pt_regs`).
    ExitOnly,
    /// Older kernels (and other architectures): an entry program stashes the arguments of
    /// each call for its exit.
    EntryExit,
}

impl CaptureMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExitOnly => "exit-only",
            Self::EntryExit => "entry+exit",
        }
    }

    /// The data syscall hooks of this mode.
    fn data_hooks(self) -> &'static [Hook] {
        match self {
            Self::ExitOnly => EXIT_ONLY_DATA_HOOKS,
            Self::EntryExit => ENTRY_EXIT_DATA_HOOKS,
        }
    }
}

/// Diagnostic: `API_GUARD_CAPTURE_MODE=entry-exit` makes the agent (and `api-guard floor`)
/// use the entry + exit programs even where the exit-only ones load (how the tests cover
/// the older kernels' path); unset or `auto`: probed.
pub const CAPTURE_MODE_ENV: &str = "API_GUARD_CAPTURE_MODE";

/// Picks the capture mode: exit-only where its probe program loads (the verifier refuses it
/// on kernels older than 5.15), unless [`CAPTURE_MODE_ENV`] forces the fallback. The probe
/// stays loaded for its attach.
fn choose_capture_mode(ebpf: &mut Ebpf) -> CaptureMode {
    match std::env::var(CAPTURE_MODE_ENV).as_deref() {
        Ok("entry-exit") => {
            info!(
                mode = CaptureMode::EntryExit.as_str(),
                "Capture mode forced by {CAPTURE_MODE_ENV}"
            );
            return CaptureMode::EntryExit;
        }
        Ok("auto") | Err(_) => {}
        Ok(other) => warn!(
            value = other,
            "Unknown {CAPTURE_MODE_ENV} (entry-exit or auto): probing"
        ),
    }
    // The exit-only programs read x86-64's `struct pt_regs`.
    if !cfg!(target_arch = "x86_64") {
        return CaptureMode::EntryExit;
    }
    let loaded = ebpf
        .program_mut(EXIT_ONLY_PROBE)
        .ok_or(ProgramError::UnexpectedProgramType)
        .and_then(|program| {
            let tp: &mut TracePoint = program.try_into()?;
            tp.load()
        });
    match loaded {
        Ok(()) => CaptureMode::ExitOnly,
        Err(error) => {
            info!(
                %error,
                "Exit-only capture unavailable (it needs Linux 5.15): entry and exit programs"
            );
            CaptureMode::EntryExit
        }
    }
}

/// TLS discovery notifications (only with `tls.enabled`): without them, new processes are
/// found by the periodic rescan only.
const TLS_DISCOVERY_HOOKS: &[Hook] = &[
    Hook {
        program: "sched_process_exec",
        category: "sched",
        event: "sched_process_exec",
        required: false,
    },
    Hook {
        program: "sys_enter_mmap",
        category: "syscalls",
        event: "sys_enter_mmap",
        required: false,
    },
];

/// Uprobe programs by what they hook; every one is paired with [`PROG_TLS_RETURN`].
const TLS_ENTRY_PROGRAMS: [&str; 5] = [
    PROG_TLS_READ,
    PROG_TLS_READ_EX,
    PROG_TLS_WRITE,
    PROG_TLS_WRITE_EX,
    PROG_TLS_HANDSHAKE,
];

/// Go's programs: plain uprobes, no return probe (see `api-guard-ebpf/src/tls/go.rs`).
const GO_TLS_PROGRAMS: [&str; 4] = [
    PROG_GO_TLS_WRITE,
    PROG_GO_TLS_READ,
    PROG_GO_TLS_READ_RETURN,
    PROG_GO_TLS_READ_COPY,
];

/// The programs attached at a probe site (by call shape, shared across libraries): C
/// libraries get an entry program and [`PROG_TLS_RETURN`] (the return first, so that no
/// entry is stashed without its consumer); Go sites one uprobe each.
fn tls_site_programs(abi: Abi) -> &'static [&'static str] {
    match abi {
        Abi::Read => &[PROG_TLS_RETURN, PROG_TLS_READ],
        Abi::ReadEx => &[PROG_TLS_RETURN, PROG_TLS_READ_EX],
        Abi::Write => &[PROG_TLS_RETURN, PROG_TLS_WRITE],
        Abi::WriteEx => &[PROG_TLS_RETURN, PROG_TLS_WRITE_EX],
        Abi::Handshake => &[PROG_TLS_RETURN, PROG_TLS_HANDSHAKE],
        Abi::GoWrite => &[PROG_GO_TLS_WRITE],
        Abi::GoRead => &[PROG_GO_TLS_READ],
        Abi::GoReadReturn => &[PROG_GO_TLS_READ_RETURN],
        Abi::GoReadCopy => &[PROG_GO_TLS_READ_COPY],
    }
}

/// The eBPF object built by aya-build and embedded in the binary.
fn ebpf_object() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/api-guard"))
}

/// Empty programs for floor measurements (see [`Probes::floor`]).
const PROG_FLOOR_TRACEPOINT: &str = "floor_tracepoint";
const PROG_FLOOR_RAW_TRACEPOINT: &str = "floor_raw_tracepoint";
const PROG_FLOOR_UPROBE: &str = "floor_uprobe";
const PROG_FLOOR_URETPROBE: &str = "floor_uretprobe";

/// Which TLS probe sites a floor measurement puts its empty uprobe pairs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FloorSites {
    /// The sites the agent chooses (emulated instructions where proven).
    Chosen,
    /// The exported functions' entries (what the agent did before choosing sites).
    Exported,
}

/// Outcome of one hook, for `/healthz`-style status output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HookStatus {
    pub hook: String,
    pub attached: bool,
    pub error: Option<String>,
}

/// What [`Probes::take_xdp`] hands to the enforcer.
pub struct XdpParts {
    pub maps: crate::enforce::xdp::XdpMaps,
    pub attached: Vec<crate::enforce::xdp::Attached>,
    pub limits: Vec<(u32, api_guard_common::xdp::IfaceConfig)>,
}

/// The loaded programs. Dropping it detaches everything.
pub struct Probes {
    ebpf: Ebpf,
    pub status: Vec<HookStatus>,
    pub capture_mode: CaptureMode,
}

/// Why hooking a TLS library file failed (everything attached for it was detached again).
#[derive(Debug, thiserror::Error)]
#[error("{function}: {source}")]
pub struct TlsAttachError {
    function: &'static str,
    source: ProgramError,
}

const TRACEFS: &str = "/sys/kernel/tracing";

fn ensure_tracefs() -> Result<(), ProbeError> {
    if Path::new(TRACEFS).join("events").is_dir() {
        return Ok(());
    }
    fsys::mount("tracefs", "nodev", Path::new(TRACEFS)).map_err(|source| ProbeError::Tracefs {
        path: TRACEFS,
        source,
    })?;
    info!(path = TRACEFS, "Mounted tracefs");
    Ok(())
}

/// Makes `dir` exist on a bpf file system, mounting bpffs at /sys/fs/bpf when needed.
fn ensure_bpffs(dir: &Path) -> Result<(), ProbeError> {
    let fail = |reason: String| ProbeError::Bpffs {
        path: dir.display().to_string(),
        reason,
    };
    let is_bpffs = |p: &Path| fsys::magic(p).is_ok_and(|m| m == fsys::BPF_FS_MAGIC);
    let root = Path::new("/sys/fs/bpf");
    if dir.starts_with(root) && !is_bpffs(root) {
        fsys::mount("bpf", "bpf", root)
            .map_err(|e| fail(format!("mounting bpffs at {}: {e}", root.display())))?;
        info!("Mounted bpffs at /sys/fs/bpf");
    }
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    if !is_bpffs(dir) {
        return Err(fail("not on a bpf file system".into()));
    }
    Ok(())
}

fn comm_key(name: &str) -> [u8; 16] {
    let mut key = [0u8; 16];
    let n = name.len().min(15);
    key[..n].copy_from_slice(&name.as_bytes()[..n]);
    key
}

impl Probes {
    pub fn load(config: &Config) -> Result<Self, ProbeError> {
        ensure_tracefs()?;
        let self_tgid = std::process::id();
        let (cap, request_cap) = config.capture.capture_caps();
        let mut filter_mode = 0u32;
        if !config.capture.pids.is_empty() {
            filter_mode |= FILTER_BY_PID;
        }
        if !config.capture.comms.is_empty() {
            filter_mode |= FILTER_BY_COMM;
        }
        if !config.capture.cgroups.is_empty() {
            filter_mode |= FILTER_BY_CGROUP;
        }
        // Wake the reader once a quarter of the ring is waiting; the reader's timer covers the rest.
        let wakeup = u64::from(config.capture.ring_buffer_bytes / 4);
        // Per-packet lookups the guard can skip when their maps are known to stay empty.
        let rate_on = u32::from(config.xdp.interfaces.iter().any(|i| i.packet_rate > 0));
        let allow_on = u32::from(
            !config.enforce.allowlist.is_empty() || !config.identity.trusted_proxies.is_empty(),
        );
        let mut loader = EbpfLoader::new();
        loader
            .override_global(GLOBAL_SELF_TGID, &self_tgid, true)
            .override_global(GLOBAL_CAPTURE_CAP, &cap, true)
            .override_global(GLOBAL_REQUEST_CAPTURE_CAP, &request_cap, true)
            .override_global(GLOBAL_FILTER_MODE, &filter_mode, true)
            .override_global(GLOBAL_WAKEUP_BYTES, &wakeup, true)
            .override_global(GLOBAL_XDP_RATE_ON, &rate_on, true)
            .override_global(GLOBAL_XDP_ALLOW_ON, &allow_on, true)
            .map_max_entries(MAP_EVENTS, config.capture.ring_buffer_bytes);
        let x = &config.xdp;
        for (map, size) in [
            (MAP_XDP_BLOCK_V4, config.enforce.max_blocks),
            (MAP_XDP_BLOCK_V6, config.enforce.max_blocks),
            (MAP_XDP_CIDR_V4, x.max_cidrs),
            (MAP_XDP_CIDR_V6, x.max_cidrs),
            (MAP_XDP_ALLOW_V4, x.max_allow),
            (MAP_XDP_ALLOW_V6, x.max_allow),
            (MAP_XDP_RATE, x.rate_table_entries),
        ] {
            loader.map_max_entries(map, size);
        }
        if x.pin {
            // Maps pinned by an earlier daemon are opened instead of created: its blocks stay.
            ensure_bpffs(&x.pin_dir)?;
            for map in XDP_PINNED_MAPS {
                loader.map_pin_path(map, x.pin_dir.join(map));
            }
        }
        let ebpf = loader.load(ebpf_object())?;

        let mut ebpf = ebpf;
        let capture_mode = choose_capture_mode(&mut ebpf);
        let mut probes = Self {
            ebpf,
            status: Vec::new(),
            capture_mode,
        };
        probes.fill_filters(config)?;
        probes.attach_all(CONN_HOOKS)?;
        probes.attach_all(capture_mode.data_hooks())?;
        info!(
            capture_mode = capture_mode.as_str(),
            hooks = probes.status.iter().filter(|s| s.attached).count(),
            "Probes attached"
        );
        if config.tls.enabled {
            probes.attach_all(TLS_DISCOVERY_HOOKS)?;
            probes.load_tls_programs()?;
        }
        Ok(probes)
    }

    /// The floor of capture: *empty* programs attached where the agent attaches its own —
    /// every tracepoint it uses (with `tracepoints`) and, with `tls`, a uprobe + uretprobe
    /// pair at each TLS site of the libraries process `pid` maps, for that process only (as
    /// the agent does for a pid-filtered capture). What such a setup costs a workload is what
    /// the hooks cost, whatever the programs do. Returns the probes and the number of
    /// tracepoints and uprobes attached. `raw_syscalls` puts the empty program on the raw
    /// `sys_enter`/`sys_exit` tracepoints instead, to compare the two ways of hooking syscalls.
    pub fn floor(
        tracepoints: bool,
        raw_syscalls: bool,
        tls: Option<(FloorSites, NonZeroU32)>,
    ) -> anyhow::Result<(Self, usize, usize)> {
        use anyhow::Context as _;
        ensure_tracefs()?;
        let mut ebpf = EbpfLoader::new().load(ebpf_object())?;
        // The agent's choice, made the same way: the floor's tracepoints are the ones it
        // would attach.
        let capture_mode = choose_capture_mode(&mut ebpf);
        let mut probes = Self {
            ebpf,
            status: Vec::new(),
            capture_mode,
        };
        let mut attached_tracepoints = 0;
        if tracepoints {
            let tp: &mut TracePoint = probes
                .ebpf
                .program_mut(PROG_FLOOR_TRACEPOINT)
                .context("floor program missing")?
                .try_into()?;
            tp.load()?;
            for hook in CONN_HOOKS
                .iter()
                .chain(capture_mode.data_hooks())
                .chain(TLS_DISCOVERY_HOOKS)
            {
                match tp.attach(hook.category, hook.event) {
                    Ok(_) => attached_tracepoints += 1,
                    Err(e) if hook.required => {
                        return Err(e).with_context(|| format!("attaching {}", hook.event))
                    }
                    Err(_) => {}
                }
            }
        }
        if raw_syscalls {
            let raw: &mut aya::programs::RawTracePoint = probes
                .ebpf
                .program_mut(PROG_FLOOR_RAW_TRACEPOINT)
                .context("floor program missing")?
                .try_into()?;
            raw.load()?;
            for event in ["sys_enter", "sys_exit"] {
                raw.attach(event)
                    .with_context(|| format!("attaching raw tracepoint {event}"))?;
                attached_tracepoints += 1;
            }
        }
        let mut attached_uprobes = 0;
        if let Some((sites, pid)) = tls {
            for name in [PROG_FLOOR_UPROBE, PROG_FLOOR_URETPROBE] {
                probes.uprobe(name)?.load()?;
            }
            let proc_root = Path::new("/proc");
            let files = crate::tls::maps::process_exec_files(proc_root, pid.get())
                .with_context(|| format!("reading the maps of process {pid}"))?;
            for file in files {
                let host = crate::tls::maps::host_path(proc_root, pid.get(), &file.path);
                let Ok(Some(functions)) = crate::tls::elf::find_tls_functions(&host) else {
                    continue;
                };
                let offsets: Vec<u64> = match sites {
                    FloorSites::Chosen => functions.sites.iter().map(|s| s.offset).collect(),
                    FloorSites::Exported => functions.offsets.iter().map(|&(_, o)| o).collect(),
                };
                // Go: never a uretprobe (it crashes Go programs). Its floor is bare uprobes at
                // the entries (chosen: the stack checks) plus where `Read`'s result is seen
                // (its memmove call or returns), which both kinds of sites need.
                let (offsets, programs): (Vec<u64>, &[&str]) = if functions.go.is_some() {
                    let returns = functions
                        .sites
                        .iter()
                        .filter(|s| matches!(s.kind, SiteKind::Return | SiteKind::ReadCopy))
                        .map(|s| s.offset);
                    let mut offsets = offsets;
                    if sites == FloorSites::Exported {
                        offsets.extend(returns);
                    }
                    (offsets, &[PROG_FLOOR_UPROBE])
                } else {
                    (offsets, &[PROG_FLOOR_URETPROBE, PROG_FLOOR_UPROBE])
                };
                for offset in offsets {
                    for &name in programs {
                        let point = UProbeAttachPoint {
                            location: UProbeAttachLocation::AbsoluteOffset(offset),
                            cookie: None,
                        };
                        probes
                            .uprobe(name)?
                            .attach(point, &host, UProbeScope::OneProcess(pid))
                            .map_err(|e| TlsAttachError {
                                function: name,
                                source: e,
                            })?;
                        attached_uprobes += 1;
                    }
                }
            }
        }
        Ok((probes, attached_tracepoints, attached_uprobes))
    }

    fn fill_filters(&mut self, config: &Config) -> Result<(), ProbeError> {
        let mut pids: HashMap<_, u32, u8> = self.typed_map(MAP_FILTER_PIDS)?;
        for pid in &config.capture.pids {
            pids.insert(pid, 1, 0).map_err(|source| ProbeError::Map {
                name: MAP_FILTER_PIDS,
                source,
            })?;
        }
        let mut comms: HashMap<_, [u8; 16], u8> = self.typed_map(MAP_FILTER_COMMS)?;
        for comm in &config.capture.comms {
            comms
                .insert(comm_key(comm), 1, 0)
                .map_err(|source| ProbeError::Map {
                    name: MAP_FILTER_COMMS,
                    source,
                })?;
        }
        let mut cgroups: HashMap<_, u64, u8> = self.typed_map(MAP_FILTER_CGROUPS)?;
        for id in config.capture.cgroup_ids().map_err(ProbeError::Config)? {
            cgroups.insert(id, 1, 0).map_err(|source| ProbeError::Map {
                name: MAP_FILTER_CGROUPS,
                source,
            })?;
        }
        Ok(())
    }

    fn typed_map<'a, T>(&'a mut self, name: &'static str) -> Result<T, ProbeError>
    where
        T: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or(ProbeError::MissingMap { name })?;
        T::try_from(map).map_err(|source| ProbeError::Map { name, source })
    }

    fn attach_all(&mut self, hooks: &[Hook]) -> Result<(), ProbeError> {
        for hook in hooks {
            if self.ebpf.program(hook.program).is_none() {
                return Err(ProbeError::MissingProgram { name: hook.program });
            }
            let label = format!("tracepoint/{}/{}", hook.category, hook.event);
            match self.attach(hook) {
                Ok(()) => self.status.push(HookStatus {
                    hook: label,
                    attached: true,
                    error: None,
                }),
                Err(source) if !hook.required => {
                    warn!(hook = %label, error = %source, "Optional hook not attached");
                    self.status.push(HookStatus {
                        hook: label,
                        attached: false,
                        error: Some(source.to_string()),
                    });
                }
                Err(source) => {
                    return Err(ProbeError::Attach {
                        category: hook.category,
                        event: hook.event,
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    fn attach(&mut self, hook: &Hook) -> Result<(), aya::programs::ProgramError> {
        let Some(program) = self.ebpf.program_mut(hook.program) else {
            return Err(aya::programs::ProgramError::UnexpectedProgramType);
        };
        let tp: &mut TracePoint = program.try_into()?;
        // The capture mode's probe program is loaded already.
        if tp.fd().is_err() {
            tp.load()?;
        }
        tp.attach(hook.category, hook.event)?;
        Ok(())
    }

    fn uprobe(&mut self, name: &'static str) -> Result<&mut UProbe, TlsAttachError> {
        let program = self.ebpf.program_mut(name).ok_or(TlsAttachError {
            function: name,
            source: ProgramError::UnexpectedProgramType,
        })?;
        program.try_into().map_err(|source| TlsAttachError {
            function: name,
            source,
        })
    }

    /// Loads the TLS uprobe programs once; files are attached later, as they are found.
    fn load_tls_programs(&mut self) -> Result<(), ProbeError> {
        for name in TLS_ENTRY_PROGRAMS
            .into_iter()
            .chain([PROG_TLS_RETURN])
            .chain(GO_TLS_PROGRAMS)
        {
            let program = self.uprobe(name).map_err(|e| ProbeError::TlsLoad {
                program: name,
                source: e.source,
            })?;
            program.load().map_err(|source| ProbeError::TlsLoad {
                program: name,
                source,
            })?;
        }
        Ok(())
    }

    /// Hooks every function of `functions` in the file at `path`, tagging events with
    /// `library_id`: for all processes, or only for the processes in `scope` (then no other
    /// process takes the breakpoint's trap). All or nothing: on error, what was attached is
    /// detached. Returns the number of uprobes attached.
    pub fn attach_tls(
        &mut self,
        path: &Path,
        functions: &TlsFunctions,
        library_id: u32,
        scope: &[NonZeroU32],
    ) -> Result<usize, TlsAttachError> {
        let scopes: Vec<UProbeScope> = if scope.is_empty() {
            vec![UProbeScope::AllProcesses]
        } else {
            scope
                .iter()
                .map(|&pid| UProbeScope::OneProcess(pid))
                .collect()
        };
        let mut links: Vec<(&'static str, UProbeLinkId)> = Vec::new();
        let result = (|| {
            for site in &functions.sites {
                let mut cookie = u64::from(library_id);
                if site.kind == SiteKind::StackCheck {
                    cookie |= GO_COOKIE_STACK_CHECK;
                }
                for &program in tls_site_programs(site.abi) {
                    for &scope in &scopes {
                        let point = UProbeAttachPoint {
                            location: UProbeAttachLocation::AbsoluteOffset(site.offset),
                            cookie: Some(cookie),
                        };
                        let link =
                            self.uprobe(program)?
                                .attach(point, path, scope)
                                .map_err(|source| TlsAttachError {
                                    function: site.functions[0].symbol(),
                                    source,
                                })?;
                        links.push((program, link));
                    }
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(links.len()),
            Err(error) => {
                for (program, link) in links {
                    if let Ok(p) = self.uprobe(program) {
                        let _ = p.detach(link);
                    }
                }
                Err(error)
            }
        }
    }

    /// Loads the XDP guard, attaches it to the configured interfaces (adopting pinned links)
    /// and moves its maps out. Returns the maps, the attachments and the per-interface
    /// packet limits by ifindex.
    pub fn take_xdp(&mut self, config: &Config) -> Result<XdpParts, ProbeError> {
        use crate::enforce::xdp;
        let x = &config.xdp;
        let pin_dir = x.pin.then_some(x.pin_dir.as_path());
        if let Some(dir) = pin_dir {
            xdp::remove_stale_links(dir, &xdp::link_pins(dir, &x.interfaces));
        }
        let mut attached = Vec::new();
        let mut limits = Vec::new();
        if !x.interfaces.is_empty() {
            let program: &mut Xdp = self
                .ebpf
                .program_mut(PROG_XDP_GUARD)
                .ok_or(ProbeError::MissingProgram {
                    name: PROG_XDP_GUARD,
                })?
                .try_into()
                .map_err(ProbeError::XdpLoad)?;
            program.load().map_err(ProbeError::XdpLoad)?;
            if let Some(dir) = pin_dir {
                let pin = dir.join("prog");
                let _ = std::fs::remove_file(&pin);
                if let Err(error) = program.pin(&pin) {
                    warn!(%error, pin = %pin.display(), "Pinning the XDP program failed");
                }
            }
            for iface in &x.interfaces {
                let a = xdp::attach(program, iface, x.mode, pin_dir)?;
                limits.push((
                    a.ifindex,
                    api_guard_common::xdp::IfaceConfig {
                        rate_pps: iface.packet_rate,
                        burst: iface.packet_burst,
                    },
                ));
                attached.push(a);
            }
        }
        let maps = xdp::XdpMaps {
            block_v4: self.take(MAP_XDP_BLOCK_V4)?,
            block_v6: self.take(MAP_XDP_BLOCK_V6)?,
            cidr_v4: self.take(MAP_XDP_CIDR_V4)?,
            cidr_v6: self.take(MAP_XDP_CIDR_V6)?,
            allow_v4: self.take(MAP_XDP_ALLOW_V4)?,
            allow_v6: self.take(MAP_XDP_ALLOW_V6)?,
            ifaces: self.take(MAP_XDP_IFACES)?,
            stats: self.take(MAP_XDP_STATS)?,
        };
        Ok(XdpParts {
            maps,
            attached,
            limits,
        })
    }

    /// The ring buffer, moved out for the parsing task (or floor --drain) to read.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, ProbeError> {
        self.take(MAP_EVENTS)
    }

    pub fn take_stats(&mut self) -> Result<PerCpuArray<MapData, u64>, ProbeError> {
        self.take(MAP_STATS)
    }

    /// The kernel's tgid gate, mapped for the daemon's sweeps.
    pub fn take_tgid_gate(&mut self) -> Result<TgidGate, ProbeError> {
        let gate = self.take_array(MAP_TGID_GATE)?;
        let wanted = self.take_array(MAP_SOCK_WANTED)?;
        TgidGate::map(gate, wanted).map_err(|source| ProbeError::Mmap {
            name: MAP_TGID_GATE,
            source,
        })
    }

    /// The array map `name`'s data, to map it.
    fn take_array(&mut self, name: &'static str) -> Result<MapData, ProbeError> {
        let map = self
            .ebpf
            .take_map(name)
            .ok_or(ProbeError::MissingMap { name })?;
        let aya::maps::Map::Array(data) = map else {
            return Err(ProbeError::MapKind { name });
        };
        Ok(data)
    }

    pub fn take_conns(&mut self) -> Result<HashMap<MapData, ConnKey, ConnInfo>, ProbeError> {
        self.take(MAP_CONNS)
    }

    fn take<T>(&mut self, name: &'static str) -> Result<T, ProbeError>
    where
        T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self
            .ebpf
            .take_map(name)
            .ok_or(ProbeError::MissingMap { name })?;
        T::try_from(map).map_err(|source| ProbeError::Map { name, source })
    }
}
