//! api-guard: an eBPF API security agent. See README.md.
//!
//! The agent binary: probes and TLS hooks (`probes`, `tls`), the capture runtime (`capture`,
//! `pipeline`), analysis workers (`analysis`), enforcement and XDP (`enforce`), outputs
//! (`output`), the control socket, the metrics server, configuration and the CLI. Everything
//! that needs no kernel (HTTP parsing, exchanges, record decoding, identity, detection,
//! discovery) is the `api_guard` library.

mod analysis;
mod capture;
mod cluster;
mod config;
mod control;
mod enforce;
mod floor_drain;
mod fsys;
mod llm;
mod output;
mod pipeline;
mod probes;
mod reload;
mod server;
mod status;
mod telemetry;
mod tls;

/// mimalloc instead of glibc malloc: exchanges are built on one thread and freed on the
/// analysis threads, where glibc's arenas spent a fifth of the daemon's time (free lists,
/// `malloc_consolidate`); with mimalloc's per-thread free lists the daemon used 6.9 µs of CPU
/// per request where glibc took 9.1–10.4 (same load, side by side).
// Test builds count allocations around it (`pipeline::replay`'s counter).
#[cfg_attr(not(test), global_allocator)]
static ALLOCATOR: Mimalloc = Mimalloc;

/// mimalloc, entered by its plain `mi_malloc`/`mi_zalloc`/`mi_realloc` when they give the
/// alignment asked for, by its aligned calls otherwise. The `mimalloc` crate always takes the
/// aligned ones, and when a size class's free list is empty (it is, after every few
/// allocations, while exchanges are freed as fast as they are made) `mi_malloc_aligned`
/// over-allocates `size + align - 1` through its generic path instead of refilling the list:
/// ~180 instructions for an exchange's box or body against ~45 (parsing replay, callgrind).
struct Mimalloc;

impl Mimalloc {
    /// mimalloc's blocks are aligned to 16 bytes (`MI_MAX_ALIGN_SIZE`) from 16 bytes of size
    /// on, and to 8 below: a plain call gives these alignments. The address is checked anyway.
    fn plain(size: usize, align: usize) -> bool {
        align <= 8 || (align <= 16 && size >= 16)
    }

    fn aligned(ptr: *mut std::ffi::c_void, align: usize) -> bool {
        ptr.addr() & (align - 1) == 0
    }

    /// A block of `layout` from `plain` when that call gives the alignment (checked: a block
    /// of the wrong alignment is freed unused), else from `aligned`.
    ///
    /// # Safety
    /// `plain` and `aligned` must be mimalloc allocation calls (blocks freed by `mi_free`).
    // Inlined so that both calls are direct ones.
    #[inline(always)]
    unsafe fn allocate(
        layout: std::alloc::Layout,
        plain: unsafe extern "C" fn(usize) -> *mut std::ffi::c_void,
        aligned: unsafe extern "C" fn(usize, usize) -> *mut std::ffi::c_void,
    ) -> *mut u8 {
        // SAFETY: plain allocation calls (the caller's contract); `mi_free` takes their blocks.
        unsafe {
            if Self::plain(layout.size(), layout.align()) {
                let p = plain(layout.size());
                if Self::aligned(p, layout.align()) {
                    return p.cast();
                }
                libmimalloc_sys::mi_free(p);
            }
            aligned(layout.size(), layout.align()).cast()
        }
    }
}

// SAFETY: every block comes from mimalloc with at least the layout's size and alignment
// (checked, else allocated again by the aligned call) and goes back to it by `mi_free`,
// which takes blocks of either kind of call.
unsafe impl std::alloc::GlobalAlloc for Mimalloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: mimalloc's allocation calls, paired as plain and aligned.
        unsafe {
            Self::allocate(
                layout,
                libmimalloc_sys::mi_malloc,
                libmimalloc_sys::mi_malloc_aligned,
            )
        }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            Self::allocate(
                layout,
                libmimalloc_sys::mi_zalloc,
                libmimalloc_sys::mi_zalloc_aligned,
            )
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        // SAFETY: `ptr` is a live block of this allocator (the caller's contract).
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        use libmimalloc_sys::{mi_free, mi_malloc_aligned, mi_realloc, mi_realloc_aligned};
        let align = layout.align();
        // SAFETY: `ptr` is a live block of `layout` (the caller's contract); a moved block of
        // the wrong alignment is copied into an aligned one before it is freed.
        unsafe {
            if !Self::plain(size, align) {
                return mi_realloc_aligned(ptr.cast(), size, align).cast();
            }
            let p = mi_realloc(ptr.cast(), size);
            if p.is_null() || Self::aligned(p, align) {
                return p.cast();
            }
            let q = mi_malloc_aligned(size, align);
            if q.is_null() {
                // The old block is gone: no way back to the caller's contract.
                std::alloc::handle_alloc_error(layout);
            }
            std::ptr::copy_nonoverlapping(p.cast::<u8>(), q.cast::<u8>(), size.min(layout.size()));
            mi_free(p);
            q.cast()
        }
    }
}

/// `mi_option_arena_eager_commit` in the bundled mimalloc's `mimalloc.h` (v3).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Commit arena memory as it is used, not in whole chunks up front: the same CPU per request,
/// and 8 MiB of heap at idle instead of 35 (measured side by side). Set from a prioritised
/// initialiser, which runs before mimalloc's own (default-priority) one reserves its first
/// arena; from `main` it would be too late.
/// `mi_option_purge_delay` (milliseconds), same header.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the OS after 10 ms while the agent starts (the bundled v3's
/// default is 1 s), and after [`STEADY_PURGE_DELAY_MS`] once it runs ([`allocator_settled`]).
/// Why two: the peak RSS of the overhead bench is set at startup, not under load. Loading
/// the probes frees ~14 MiB (VmRSS sampled every 0.2 s: 47–48 MiB at startup, 33–35 MiB
/// under load, whatever the delay, with 1 s), and with a long delay those pages stay
/// resident until a purge runs under load; with 10 ms they are gone before the load starts.
/// Under load a short delay costs page faults instead: mimalloc purges (MADV_DONTNEED) the
/// pages freed between two batches and faults them back in when it extends a page's free
/// list. Round 10, `cargo xtask bench overhead --scheme both --pairs 3 --duration 4`, six
/// runs per delay (set for the whole run through `MIMALLOC_PURGE_DELAY`; loaded machine,
/// 8–67k req/s): minor faults per request while the load ran (`/proc/PID/stat`), madvise
/// calls per 1,000 requests over the agent's life (perf `syscalls:sys_enter_madvise`;
/// startup and shutdown's ~100–200 included), peak RSS (VmHWM):
///
/// | delay  | faults/request | madvise/1k requests | peak RSS MiB |
/// |--------|----------------|---------------------|--------------|
/// | 10 ms  | 0.11–0.23      | 9.8–29.9            | 39.4–43.9    |
/// | 50 ms  | 0.07–0.11      | 5.4–11.6            | 40.2–46.9    |
/// | 100 ms | 0.06–0.10      | 4.6–8.9             | 40.3–47.2    |
/// | 250 ms | 0.045–0.11     | 4.3–16.9            | 47.1–48.1    |
/// | 1 s    | 0.037–0.071    | 4.8–10.5            | 47.2–48.4    |
///
/// (`page_full_retain` 8 at 50 ms: 0.096 against 0.102, within the spread: left at 2.)
/// Earlier rounds chose 10 ms for the whole run: 1 s peaked at 48.6–55.1 MiB, which was the
/// startup's garbage too.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// The purge delay once the agent runs (see [`PURGE_DELAY_MS`]): the bundled v3's default.
const STEADY_PURGE_DELAY_MS: std::ffi::c_long = 1000;

extern "C" fn configure_allocator() {
    // SAFETY: stores plain option values in mimalloc's static option table; no allocation.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
    }
}

/// Startup is over: what it freed goes back to the OS now, and later frees wait
/// [`STEADY_PURGE_DELAY_MS`]. Idle analysis threads still purge everything after a second
/// without work (`analysis::worker`'s `tidy`), so an idle agent's RSS falls back as before.
fn allocator_settled() {
    // SAFETY: `mi_collect` takes no pointers and may run on any thread at any time. The
    // purge delay was initialised by `configure_allocator`, so `mi_option_set` only stores
    // the option's aligned `long` value (no lazy initialisation, no allocation); mimalloc
    // reads it when it schedules a purge, and a purge scheduled before sees its old delay.
    unsafe {
        libmimalloc_sys::mi_collect(true);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, STEADY_PURGE_DELAY_MS);
    }
}

#[used]
#[unsafe(link_section = ".init_array.00100")]
static CONFIGURE_ALLOCATOR: extern "C" fn() = configure_allocator;

/// The allocator is the global one only outside tests (the replay counts allocations): its
/// calls are exercised here directly.
#[cfg(test)]
mod allocator_tests {
    use super::Mimalloc;
    use std::alloc::{GlobalAlloc, Layout};

    #[test]
    fn the_purge_delay_is_the_startup_one_until_settled_then_the_steady_one() {
        // SAFETY: reads an option value; no pointers.
        let delay = || unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        // Test threads share the option: only this test settles it.
        assert!([super::PURGE_DELAY_MS, super::STEADY_PURGE_DELAY_MS].contains(&delay()));
        super::allocator_settled();
        assert_eq!(delay(), super::STEADY_PURGE_DELAY_MS);
    }

    #[test]
    fn blocks_have_the_layouts_alignment_and_keep_their_bytes_across_realloc() {
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 7, 8, 15, 16, 17, 100, 1024, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero sizes; every block is freed with its current layout.
                unsafe {
                    let zeroed = Mimalloc.alloc_zeroed(layout);
                    assert_eq!(zeroed.addr() % align, 0, "zeroed {size}/{align}");
                    assert!(std::slice::from_raw_parts(zeroed, size)
                        .iter()
                        .all(|&b| b == 0));
                    Mimalloc.dealloc(zeroed, layout);

                    let mut p = Mimalloc.alloc(layout);
                    assert_eq!(p.addr() % align, 0, "alloc {size}/{align}");
                    for i in 0..size {
                        p.add(i).write(i as u8);
                    }
                    for new_size in [size * 3, size.div_ceil(2)] {
                        let grown = Mimalloc.realloc(p, layout, new_size);
                        assert_eq!(
                            grown.addr() % align,
                            0,
                            "realloc {size}->{new_size}/{align}"
                        );
                        for i in 0..size.min(new_size) {
                            assert_eq!(grown.add(i).read(), i as u8, "byte {i}");
                        }
                        // Back to the original size so the next round starts alike.
                        let layout_now = Layout::from_size_align(new_size, align).unwrap();
                        let back = Mimalloc.realloc(grown, layout_now, size);
                        assert_eq!(back.addr() % align, 0);
                        for i in 0..size.min(new_size) {
                            assert_eq!(back.add(i).read(), i as u8, "byte {i} back");
                        }
                        p = back;
                    }
                    Mimalloc.dealloc(p, layout);
                }
            }
        }
    }
}

// The kernel-free parts the agent wires together live in the library.
use api_guard::{exchange, http, record, wallclock};

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use api_guard::{
    detect,
    discover::{
        inventory::{Inventory, InventoryConfig},
        offline, openapi,
        spec::{self, Spec},
    },
};
use clap::{Parser, Subcommand, ValueEnum};
use tokio::{signal::unix::SignalKind, sync::mpsc, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    capture::{kernel::KernelState, table::ConnTable},
    config::Config,
    enforce::Enforcer,
    output::{exchanges::Sink, lines::Destination},
    probes::Probes,
    telemetry::Metrics,
    tls::{hooks::HookThread, TlsLibraries},
};

/// How often expired blocks are reported lifted and XDP counters are read.
const ENFORCE_TICK: Duration = Duration::from_millis(250);

#[derive(Parser)]
#[command(
    name = "api-guard",
    version,
    about = "eBPF API security agent: sees every HTTP API call on this host"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (needs root: loads eBPF programs). Without --config, embedded defaults apply.
    Run(RunArgs),
    /// Validate a configuration file and exit.
    CheckConfig {
        /// The TOML file to check.
        file: PathBuf,
    },
    /// Block an address or CIDR range at XDP on the running daemon.
    Block {
        /// IPv4/IPv6 address or CIDR range, e.g. 203.0.113.7 or 2001:db8::/48.
        target: String,
        /// How long: 90s, 10m, 2h, 1d (default: enforce.default_block_secs).
        #[arg(long = "for", value_name = "DURATION", value_parser = control::parse_duration)]
        duration: Option<u64>,
        /// Why (kept with the block and in its security event).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Lift a block on the running daemon.
    Unblock {
        /// The address or range exactly as blocked.
        target: String,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Run the detection engine over requests in a JSON-lines file (the evaluation corpus
    /// format) and print one JSON verdict line per request. No root needed.
    Detect {
        /// Input file, one request per line (`-` for stdin).
        #[arg(long, value_name = "FILE.jsonl")]
        input: PathBuf,
        /// Configuration whose `[detect]` section (and trusted proxies, API key places) apply.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Show the API inventory (endpoints with route templates, statuses, latency, parameters,
    /// auth schemes, clients, sensitive data) of the running daemon, or build it from recorded
    /// exchange lines (`--from-exchanges`, no root needed).
    Inventory {
        /// Build it from exchange lines (`run --exchanges` output; `-` for stdin) instead of
        /// asking the daemon. Lines carry no headers or bodies: no auth, schemas or
        /// sensitive data then.
        #[arg(long, value_name = "FILE.jsonl")]
        from_exchanges: Option<PathBuf>,
        /// `table`, `json` (the inventory itself), `openapi` (OpenAPI 3.1 JSON),
        /// `openapi-yaml` (the same as YAML) or `compare` (shadow and unused endpoints).
        #[arg(long, value_enum, default_value = "table")]
        format: InventoryFormat,
        /// Compare with this OpenAPI 3.x document (JSON or YAML) instead of the daemon's
        /// `discover.spec`.
        #[arg(long, value_name = "FILE")]
        spec: Option<PathBuf>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Show what the running daemon is doing: uptime, hooks attached, TLS libraries hooked,
    /// XDP interfaces and drops, blocks, traffic and detection totals.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// LLM API calls seen by the running daemon.
    Llm {
        #[command(subcommand)]
        command: LlmCommand,
    },
    /// Print a shell completion script, e.g. `api-guard completions bash > /etc/bash_completion.d/api-guard`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// List the blocks in force, with expiry and dropped-packet counts.
    Blocks {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Benchmark helper (needs root): attach empty eBPF programs where the agent attaches
    /// its own, print `floor ready`, and hold them until SIGTERM/SIGINT. What a workload
    /// loses with these attached is the floor any capture on the same hooks pays.
    #[command(hide = true)]
    Floor {
        /// Every syscall and socket tracepoint the agent attaches.
        #[arg(long)]
        tracepoints: bool,
        /// The raw `sys_enter`/`sys_exit` tracepoints (every syscall), for comparison.
        #[arg(long)]
        raw_syscalls: bool,
        /// A uprobe + uretprobe pair at each TLS site of the libraries --pid maps.
        #[arg(long, value_enum, requires = "pid")]
        tls: Option<probes::FloorSites>,
        /// The process whose TLS libraries are probed (for it alone); with --drain, added
        /// to `capture.pids`.
        #[arg(long)]
        pid: Option<std::num::NonZeroU32>,
        /// Not empty programs: the agent's own, attached by its own loader (TLS hooks and
        /// adoption included), the ring read as the agent reads it, every record counted
        /// and dropped in place: no parsing. At exit prints `floor drained: {json}` with
        /// the records and bytes drained and the kernel's counters (drops among them).
        #[arg(long, conflicts_with_all = ["tracepoints", "raw_syscalls", "tls"])]
        drain: bool,
        /// The agent configuration --drain loads its programs with (embedded defaults
        /// without it).
        #[arg(long, value_name = "FILE", requires = "drain")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LlmCommand {
    /// Token accounting per credential hash × model × client: requests, tokens by type, the
    /// estimated share, first and last seen (kept across restarts).
    Usage {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// The shadow-AI egress inventory: which AI providers each local process calls, with
    /// key hashes, models, tokens in and out, first and last seen (kept across restarts).
    Egress {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum InventoryFormat {
    Table,
    Json,
    Openapi,
    OpenapiYaml,
    Compare,
}

#[derive(clap::Args)]
struct SocketArg {
    /// The daemon's control socket.
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_SOCKET)]
    control_socket: PathBuf,
}

#[derive(clap::Args)]
struct RunArgs {
    /// TOML configuration file; every field is optional.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address of the /metrics and /healthz endpoint.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    metrics_addr: SocketAddr,
    /// Write one JSON object per exchange to this file, or `-` for stdout.
    #[arg(long, value_name = "PATH|-")]
    exchanges: Option<Destination>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Write security events (blocks, unblocks, rate-limit breaches) as JSON lines to this
    /// file, or `-` for stdout.
    #[arg(long, value_name = "PATH|-", default_value = "-")]
    events: Destination,
    /// Control socket for `api-guard block|unblock|blocks|inventory|status` (root only).
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_SOCKET)]
    control_socket: PathBuf,
    /// Directory of the inventory snapshot (overrides `discover.state_dir`).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

fn init_logging(format: LogFormat) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The webhook's HTTP client dumps whole requests, the token header included, at TRACE:
    // capped whatever RUST_LOG asks, so a secret can never reach the logs.
    for directive in ["ureq=debug", "ureq_proto=debug"] {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not in log files and journals.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> std::process::ExitCode {
    match dispatch(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One line with the context chain; no backtrace noise for operators.
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `api-guard floor`: holds empty programs on the agent's hooks until told to stop.
fn floor(
    tracepoints: bool,
    raw_syscalls: bool,
    tls: Option<(probes::FloorSites, std::num::NonZeroU32)>,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    // Blocked before anything else runs, so the signals wait for `sigwait`.
    // SAFETY: plain libc calls on a zeroed, then filled, local signal set.
    let signals = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let (probes, tracepoints, uprobes) = Probes::floor(tracepoints, raw_syscalls, tls)?;
    println!(
        "floor ready: {tracepoints} tracepoints, {uprobes} uprobes, capture {}",
        probes.capture_mode.as_str()
    );
    std::io::stdout().flush()?;
    let mut signal = 0;
    // SAFETY: waits on the set built above; `signal` is a valid out pointer.
    unsafe { libc::sigwait(&signals, &mut signal) };
    Ok(())
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::CheckConfig { file } => {
            let config = Config::load(&file)?;
            for deprecation in &config.deprecations {
                eprintln!("warning: {}: {deprecation}", file.display());
            }
            // Also loads what the detectors read from files (JWT keys, JWKS) and the spec.
            detect::Engine::new(&config.detect)?;
            if let Some(spec) = &config.discover.spec {
                Spec::load(spec).with_context(|| format!("discover.spec {}", spec.display()))?;
            }
            println!("{}: ok", file.display());
            Ok(())
        }
        Command::Detect { input, config } => detect_offline(&input, config.as_deref()),
        Command::Floor {
            drain: true,
            config,
            pid,
            ..
        } => floor_drain::run(floor_drain::config(config.as_deref(), pid)?),
        Command::Floor {
            tracepoints,
            raw_syscalls,
            tls,
            pid,
            ..
        } => floor(tracepoints, raw_syscalls, tls.zip(pid)),
        Command::Inventory {
            from_exchanges,
            format,
            spec,
            socket,
        } => inventory(from_exchanges.as_deref(), format, spec.as_deref(), &socket),
        Command::Run(args) => {
            init_logging(args.log_format);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            runtime.block_on(run(args))
        }
        Command::Block {
            target,
            duration,
            reason,
            socket,
        } => {
            // Checked here too, so a typo fails before reaching the daemon.
            target.parse::<enforce::target::Target>()?;
            let answer = control_call(
                &socket,
                control::Request::Block {
                    target: target.clone(),
                    for_secs: duration,
                    reason,
                },
            )?;
            println!(
                "{target}: {}",
                answer.outcome.as_deref().unwrap_or("blocked")
            );
            Ok(())
        }
        Command::Unblock { target, socket } => {
            target.parse::<enforce::target::Target>()?;
            control_call(
                &socket,
                control::Request::Unblock {
                    target: target.clone(),
                },
            )?;
            println!("{target}: unblocked");
            Ok(())
        }
        Command::Llm {
            command: LlmCommand::Usage { json, socket },
        } => {
            let answer = control_call(&socket, control::Request::LlmUsage)?;
            let usage = answer
                .llm_usage
                .context("the daemon's answer has no LLM usage")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&usage)?);
            } else {
                print!("{}", llm::render_usage(&usage.rows, usage.overflowed));
            }
            Ok(())
        }
        Command::Llm {
            command: LlmCommand::Egress { json, socket },
        } => {
            let answer = control_call(&socket, control::Request::LlmEgress)?;
            let egress = answer
                .llm_egress
                .context("the daemon's answer has no LLM egress inventory")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&egress)?);
            } else {
                print!("{}", llm::egress::render(&egress.rows, egress.evicted));
            }
            Ok(())
        }
        Command::Status { json, socket } => {
            let answer = control_call(&socket, control::Request::Status)?;
            let status = answer.status.context("the daemon's answer has no status")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("{}", status::render(&status));
            }
            Ok(())
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            use std::io::Write as _;
            // Into memory first: the generator panics on write errors (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "api-guard", &mut script);
            match std::io::stdout().write_all(&script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        Command::Blocks { json, socket } => {
            let answer = control_call(&socket, control::Request::Blocks)?;
            let blocks = answer.blocks.unwrap_or_default();
            if json {
                println!("{}", serde_json::to_string_pretty(&blocks)?);
            } else {
                print_blocks(&blocks);
            }
            Ok(())
        }
    }
}

fn detect_offline(input: &std::path::Path, config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let config = match config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let mut engine = detect::Engine::new(&config.detect)?;
    let identifier = config.identity.identifier();
    let stdout = std::io::stdout().lock();
    let out = std::io::BufWriter::new(stdout);
    let summary = if input.as_os_str() == "-" {
        detect::offline::run(&mut engine, &identifier, std::io::stdin().lock(), out)?
    } else {
        let file =
            std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
        detect::offline::run(&mut engine, &identifier, std::io::BufReader::new(file), out)?
    };
    if summary.errors > 0 {
        eprintln!(
            "warning: {} of {} lines could not be read",
            summary.errors, summary.lines
        );
    }
    Ok(())
}

fn inventory(
    from_exchanges: Option<&std::path::Path>,
    format: InventoryFormat,
    spec: Option<&std::path::Path>,
    socket: &SocketArg,
) -> anyhow::Result<()> {
    let (inv, daemon_comparison) = match from_exchanges {
        Some(input) => (inventory_from_exchanges(input)?, None),
        None => {
            let answer = control_call(socket, control::Request::Inventory)?;
            let snapshot = answer
                .inventory
                .context("the daemon's answer has no inventory")?;
            // Read with the largest bounds: the daemon already applied its own.
            let mut inv = Inventory::new(&InventoryConfig::largest());
            inv.load_snapshot(&serde_json::to_vec(&snapshot)?)
                .context("reading the daemon's inventory")?;
            (inv, answer.comparison)
        }
    };
    let comparison = match spec {
        Some(path) => {
            let spec = Spec::load(path).with_context(|| format!("reading {}", path.display()))?;
            Some(serde_json::to_value(spec::compare(&spec, &inv))?)
        }
        None => daemon_comparison,
    };
    const TITLE: &str = "API inventory (api-guard)";
    match format {
        InventoryFormat::Json => println!("{}", serde_json::to_string_pretty(&inv)?),
        InventoryFormat::Openapi => println!(
            "{}",
            serde_json::to_string_pretty(&openapi::export(&inv, TITLE))?
        ),
        InventoryFormat::OpenapiYaml => print!("{}", openapi::to_yaml(&openapi::export(&inv, TITLE))?),
        InventoryFormat::Compare => match comparison {
            Some(c) => println!("{}", serde_json::to_string_pretty(&c)?),
            None => anyhow::bail!(
                "nothing to compare with: pass --spec FILE, or configure discover.spec in the daemon"
            ),
        },
        InventoryFormat::Table => print_inventory(&inv, comparison.as_ref()),
    }
    Ok(())
}

fn inventory_from_exchanges(input: &std::path::Path) -> anyhow::Result<Inventory> {
    let mut inv = Inventory::new(&InventoryConfig::default());
    let summary = if input.as_os_str() == "-" {
        offline::observe_exchange_lines(&mut inv, std::io::stdin().lock())?
    } else {
        let file =
            std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
        offline::observe_exchange_lines(&mut inv, std::io::BufReader::new(file))?
    };
    if summary.unreadable > 0 {
        eprintln!(
            "warning: {} lines were not exchange lines",
            summary.unreadable
        );
    }
    Ok(inv)
}

/// One row per endpoint; with a comparison, shadow endpoints are marked and the unused
/// operations listed after the table.
fn print_inventory(inv: &Inventory, comparison: Option<&serde_json::Value>) {
    let shadow: std::collections::HashSet<(&str, &str, &str)> = comparison
        .and_then(|c| c["shadow"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["host"].as_str()?,
                e["method"].as_str()?,
                e["template"].as_str()?,
            ))
        })
        .collect();
    println!(
        "{:<24} {:<7} {:<40} {:>8} {:>9} {:>9} {:>9} {:>8} {:<9}  STATUSES",
        "HOST", "METHOD", "ROUTE", "COUNT", "P50_MS", "P95_MS", "P99_MS", "CLIENTS", "TRANSPORT"
    );
    let ms = |us: Option<u64>| {
        us.map_or_else(
            || "-".to_string(),
            |us| format!("{:.1}", us as f64 / 1000.0),
        )
    };
    for e in inv.endpoints() {
        let statuses: Vec<String> = e
            .statuses
            .counts
            .iter()
            .map(|(code, n)| format!("{code}:{n}"))
            .collect();
        let is_shadow = shadow.contains(&(e.host.as_str(), e.method.as_str(), e.template.as_str()));
        println!(
            "{:<24} {:<7} {:<40} {:>8} {:>9} {:>9} {:>9} {:>8} {:<9}  {}{}",
            e.host,
            e.method,
            e.template,
            e.count,
            ms(e.latency.quantile_us(0.5)),
            ms(e.latency.quantile_us(0.95)),
            ms(e.latency.quantile_us(0.99)),
            e.clients.estimate(),
            e.transport.summary().unwrap_or("-"),
            statuses.join(" "),
            if is_shadow {
                "  [shadow: not in the spec]"
            } else {
                ""
            }
        );
    }
    if let Some(unused) = comparison.and_then(|c| c["unused"].as_array()) {
        if !unused.is_empty() {
            println!("\nIn the spec, never seen:");
            for op in unused {
                println!(
                    "  {} {}",
                    op["method"].as_str().unwrap_or("?"),
                    op["template"].as_str().unwrap_or("?")
                );
            }
        }
    }
}

/// Sends a control request; a refusal becomes the error, a warning goes to stderr.
fn control_call(socket: &SocketArg, req: control::Request) -> anyhow::Result<control::Response> {
    let answer = control::call(&socket.control_socket, &req)?;
    if let Some(warning) = &answer.warning {
        eprintln!("warning: {warning}");
    }
    if !answer.ok {
        anyhow::bail!("{}", answer.error.as_deref().unwrap_or("refused"));
    }
    Ok(answer)
}

fn print_blocks(blocks: &[enforce::BlockView]) {
    println!(
        "{:<40} {:<10} {:<16} {:>12} {:>12}  DETAIL",
        "TARGET", "REASON", "POLICY", "EXPIRES_IN", "HITS"
    );
    for b in blocks {
        let expires = b
            .expires_in_secs
            .map_or_else(|| "never".to_string(), |s| format!("{s:.1}s"));
        println!(
            "{:<40} {:<10} {:<16} {:>12} {:>12}  {}",
            b.target,
            b.reason,
            b.policy.as_deref().unwrap_or("-"),
            expires,
            b.hits,
            b.detail.as_deref().unwrap_or("")
        );
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    for deprecation in &config.deprecations {
        warn!(%deprecation, "Deprecated configuration key");
    }
    let metrics = Metrics::new();
    let listener = server::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding the metrics address {}", args.metrics_addr))?;
    let sink = Sink::new(metrics.clone(), args.exchanges.as_ref())
        .context("opening the exchanges output")?;

    let control_listener = control::bind(&args.control_socket).await?;
    let events = output::EventSink::new(&args.events, &config.events, metrics.clone())
        .context("opening the events output")?;
    // Kept to flush the webhook at shutdown.
    let events_out = events.clone();

    // Before the eBPF load, whose freed BTF pages it would otherwise keep resident.
    let engine = analysis::detect::build_engine(&config.detect).context("starting detection")?;
    // The engine's build and the load's BTF parse free megabytes at once; mimalloc returns
    // freed pages only when a later free comes due, and the pages left freed here stayed
    // resident for good (6 MiB at idle, measured). Collected right away instead.
    // SAFETY: takes no pointers; mimalloc allows a collection at any time.
    unsafe { libmimalloc_sys::mi_collect(true) };
    let mut probes = Probes::load(&config).context("loading eBPF probes")?;
    // SAFETY: as above.
    unsafe { libmimalloc_sys::mi_collect(true) };
    let xdp = probes.take_xdp(&config).context("starting the XDP guard")?;
    let enforcer = Enforcer::new(
        &config.enforce,
        &config.identity.trusted_proxies,
        xdp.maps,
        xdp.attached,
        &xdp.limits,
        metrics.clone(),
        events.clone(),
    )
    .context("starting enforcement")?;
    // Cluster mode: the enforcer shares its blocks through a queue the cluster task drains.
    let mut cluster_publisher = None;
    let cluster_task = if config.cluster.enabled() {
        let node = cluster::node_name(&config.cluster).context("cluster mode")?;
        let (publisher, queue) =
            cluster::channel(config.cluster.queue_capacity, node.clone(), metrics.clone());
        cluster_publisher = Some(publisher.clone());
        enforcer.set_cluster(
            publisher,
            enforce::policy::ClusterParams {
                expected_nodes: config.cluster.expected_nodes,
                sync_ns: config.cluster.sync_interval_ms.saturating_mul(1_000_000),
            },
        );
        Some(cluster::ClusterTask::new(
            config.cluster.clone(),
            node,
            enforcer.clone(),
            metrics.clone(),
            events.clone(),
            queue,
        ))
    } else {
        None
    };
    // The AI providers of `llm.providers`: the egress inventory and leak detection on
    // prompts share them.
    let llm_providers = std::sync::Arc::new(llm::LlmCalls::provider_matcher(&config.llm));
    // Identity settings reach the parsing task (which identifies every client once) here.
    let (identity_tx, identity_rx) = tokio::sync::watch::channel(config.identity.identifier());
    let detections = engine
        .map(|engine| {
            analysis::detect::Detections::new(
                &config.detect,
                engine,
                enforcer.clone(),
                metrics.clone(),
                events.clone(),
            )
        })
        .map(|d| d.with_llm_providers(llm_providers.clone()))
        .map(|d| match cluster_publisher {
            Some(p) => d.with_cluster(p, &config.detect),
            None => d,
        })
        .map(|d| d.with_identity(identity_rx.clone()));
    let mut routes = analysis::routes::RouteLabels::new(
        &config.discover.inventory,
        config.discover.max_route_labels,
    );
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| config.discover.state_dir.clone());
    let llm_usage =
        llm::usage::SharedUsage::new(llm::usage::UsageBook::new(config.llm.max_usage_entries));
    // LLM usage is kept next to the inventory, on the same snapshot schedule.
    let llm_state = llm::persist_dir(
        &state_dir,
        config.discover.snapshot_interval_secs,
        &llm_usage,
    );
    let llm_egress =
        llm::egress::SharedEgress::new(llm::egress::EgressBook::new(config.llm.max_egress_entries));
    if let Some((dir, _)) = &llm_state {
        llm_egress.load_logged(dir);
    }
    let discovery = analysis::discover::Discovery::new(
        &config.discover,
        state_dir.clone(),
        &mut routes,
        metrics.clone(),
        events.clone(),
    )
    .context("starting API discovery")?;
    let shared_inventory = discovery
        .as_ref()
        .map(analysis::discover::Discovery::shared);
    let (discovery, discover_thread) = match discovery {
        Some(d) => {
            let (queue, thread) = d
                .spawn(config.discover.queue_capacity)
                .context("starting the discovery thread")?;
            (Some(queue), Some(thread))
        }
        None => (None, None),
    };
    let (detections, detect_thread) = match detections {
        Some(d) => {
            let (queue, thread) = d
                .spawn(config.detect.queue_capacity)
                .context("starting the detection thread")?;
            (Some(queue), Some(thread))
        }
        None => (None, None),
    };
    // The reloader's handle on the detection queue; it must go with the reloader's task, or
    // the detection thread would wait for more work forever at shutdown.
    let reload_detections = args.config.as_ref().and(detections.clone());
    let ring = probes.take_events()?;
    let kernel = KernelState {
        stats: probes.take_stats()?,
        conns: probes.take_conns()?,
        gate: probes.take_tgid_gate()?,
    };

    let status_source = status::StatusSource {
        started,
        config: args.config.clone(),
        hooks: probes.status.clone(),
        capture_mode: probes.capture_mode.as_str(),
        metrics: metrics.clone(),
        cluster_node: cluster_task.as_ref().map(|t| t.node().to_string()),
    };
    // The hooking thread owns the eBPF object from here on; stopping it detaches everything.
    let tls_libraries = TlsLibraries::default();
    let (hooks, tls_notifier) = HookThread::spawn(
        probes,
        config.tls.clone(),
        tls::hooks::scope_for(&config.capture),
        metrics.clone(),
        tls_libraries.clone(),
    )
    .context("starting the TLS hooking thread")?;

    let shutdown = CancellationToken::new();
    // The parsing task reads the ring itself, each record in place.
    let ring = capture::reader::Ring::new(ring, config.capture.ring_buffer_bytes, metrics.clone())
        .context("registering the ring buffer")?;
    let (untrack_tx, untrack_rx) = mpsc::channel(4096);
    // The capture probes are attached: connections established from here on are tracked by
    // the kernel, older ones are adopted now (their data waits in the ring buffer meanwhile).
    let (kernel, adopted) = if config.capture.adopt_existing {
        let capture_config = config.capture.clone();
        let adopt_metrics = metrics.clone();
        tokio::task::spawn_blocking(move || {
            let mut kernel = kernel;
            let summary = capture::adopt::adopt_existing(
                &capture_config,
                &mut kernel,
                wallclock::monotonic_now_ns(),
                &adopt_metrics,
            );
            (kernel, summary.addresses)
        })
        .await
        .context("adopting established connections")?
    } else {
        (kernel, Default::default())
    };
    let table = ConnTable::new(
        config.http.limits(),
        config.http.max_connections,
        Duration::from_secs(config.http.idle_timeout_secs),
        metrics.clone(),
        untrack_tx,
        tls_libraries.clone(),
    )
    .with_adopted(adopted)
    // Requests are handed out as they end for detection, and for token limits to reserve
    // before the answer streams.
    .with_request_notices(detections.is_some() || enforcer.limits_tokens())
    // Request bodies are scanned as they stream, so detection reads them whole.
    .with_body_scan(
        detections
            .is_some()
            .then(|| api_guard::detect::stream::ScanLimits::of(&config.detect.limits)),
    )
    // Bodies are copied only as far as a consumer running reads them.
    .with_body_readers(capture::interest::BodyReaders {
        detect: detections.is_some(),
        discover: discovery
            .is_some()
            .then_some(config.discover.inventory.max_body_bytes),
        llm: config.llm.enabled,
    });
    let mut tasks = JoinSet::new();
    tasks.spawn(pipeline::run(
        ring,
        table,
        pipeline::Consumers {
            annotator: analysis::Annotator {
                routes,
                clients: analysis::identity::ClientIdentities::new(identity_rx),
                llm: llm::LlmCalls::new(
                    config.llm.clone(),
                    config.identity.api_key_headers.clone(),
                    llm_usage.clone(),
                    metrics.clone(),
                )
                .with_egress(llm::egress::EgressTracker::new(
                    llm_providers.clone(),
                    config.llm.allowed_providers.clone(),
                    llm_egress.clone(),
                    events.clone(),
                    metrics.clone(),
                )),
            },
            enforcer: enforcer.clone(),
            detections,
            discovery,
            sink,
        },
        metrics.clone(),
        tls_notifier,
        shutdown.clone(),
    ));
    tasks.spawn(control::serve(
        control_listener,
        args.control_socket.clone(),
        control::Handlers {
            enforcer: enforcer.clone(),
            inventory: shared_inventory,
            llm_usage: llm_usage.clone(),
            llm_egress: llm_egress.clone(),
            status: status_source,
        },
        shutdown.clone(),
    ));
    if let Some((dir, every)) = llm_state.clone() {
        tasks.spawn(
            llm_egress
                .clone()
                .persist_loop(dir.clone(), every, shutdown.clone()),
        );
        tasks.spawn(llm_usage.clone().persist_loop(dir, every, shutdown.clone()));
    }
    let ticker = enforcer.clone();
    let tick_shutdown = shutdown.clone();
    tasks.spawn(async move {
        let mut interval = tokio::time::interval(ENFORCE_TICK);
        loop {
            tokio::select! {
                _ = interval.tick() => ticker.tick(),
                () = tick_shutdown.cancelled() => break,
            }
        }
    });
    tasks.spawn(capture::kernel::run(
        kernel,
        untrack_rx,
        metrics.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(server::serve(listener, metrics.clone(), shutdown.clone()));
    if let Some(task) = cluster_task {
        tasks.spawn(task.run(shutdown.clone()));
    }
    if let Some(path) = &args.config {
        let reloader = reload::Reloader::new(
            path.clone(),
            config.clone(),
            enforcer.clone(),
            identity_tx,
            reload_detections,
            events_out.clone(),
            metrics.clone(),
        );
        let reload_shutdown = shutdown.clone();
        tasks.spawn(async move {
            if let Err(error) = reload::run(reloader, reload_shutdown).await {
                warn!(%error, "Configuration reloading stopped");
            }
        });
    }

    allocator_settled();
    metrics.ops.set_ready(true);
    info!(metrics = %args.metrics_addr, "api-guard running");

    let mut sigterm = tokio::signal::unix::signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT received, shutting down"),
        _ = sigterm.recv() => info!("SIGTERM received, shutting down"),
    }
    metrics.ops.set_ready(false);
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    // The pipeline has delivered its last exchanges: the usage snapshot has them all.
    if let Some((dir, _)) = &llm_state {
        llm_usage.save_logged(dir);
        llm_egress.save_logged(dir);
    }
    // The pipeline is done and its queues dropped: the analysis threads finish what is
    // queued (discovery then writes its last snapshot).
    for (name, thread) in [("detection", detect_thread), ("discovery", discover_thread)] {
        if thread.is_some_and(|t| t.join().is_err()) {
            warn!(thread = name, "An analysis thread panicked");
        }
    }
    // Unpinned XDP links detach here; pinned ones keep the guard running for the next daemon.
    enforcer.detach();
    hooks.stop();
    // Queued webhook events get a bounded time to go out.
    events_out.close();
    info!("Detached, bye");
    Ok(())
}
