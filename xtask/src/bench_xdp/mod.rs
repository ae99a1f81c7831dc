//! `cargo xtask bench xdp`: what the XDP guard costs per packet, how it compares with an
//! nftables drop, whether legitimate traffic survives a flood, and how fast a rate-limit
//! breach turns into dropped packets.
//!
//! Topology (every address in 10.231.0.0/16, every namespace this process's own):
//!
//! ```text
//!   bx-c (legitimate client: wrk, breach client) --veth-- bx-s (nginx; XDP guard on both
//!   bx-a (flood source, blocked: hping3)          --veth--        server-side ends)
//!   bx-g (control generator: hping3)              --veth-- bx-k (end kept down: the frames
//!                                                                are discarded at once)
//! ```
//!
//! Steps, in this order:
//!
//! - **2b** no agent: an nftables rule in the server namespace drops the flood source at the
//!   earliest hook (`netdev` ingress on the veth; `ip` prerouting at raw priority if that
//!   fails). `hping3 --flood -S` for `--duration` seconds; packets dropped from the rule's
//!   counter, CPU from `/proc/stat` (system + softirq, all CPUs).
//! - **2c** no agent: the same generator flooding a veth whose peer is down (frames dropped
//!   at once in the sender's namespace): the generator's own kernel CPU per packet, which
//!   the 2a/2b figures include because it shares the host.
//! - Agent A starts with `enforce.deny` = `--entries` addresses from 100.64.0.0 upward plus
//!   the flood source, the guard on both server-side veths, capture of nginx's pid.
//! - **2a** the same flood, dropped by the guard (counter `apiguard_xdp_packets_total`).
//! - **1** with `kernel.bpf_stats_enabled=1` (restored afterwards): wrk from the legitimate
//!   client (packets the guard passes), then the flood (packets it drops); `run_time_ns /
//!   run_cnt` of the `xdp_guard` program attached to our veth (its id from `ip link`), read
//!   with bpftool or, without it, from the agent's program fd in `/proc/<pid>/fdinfo`.
//!   With bpftool also `bpftool prog run` of the same program on one synthetic frame per
//!   verdict (the program alone, hot caches, no per-run clock reads).
//! - **3** wrk from the legitimate client without a flood, with the blocked flood running,
//!   and with the same generator flooding a dead veth (control: what the generator's own CPU
//!   use takes from the shared host, with no packet reaching the server).
//! - Agent A stops; agent B starts with a `client_ip` policy (`--rate`, `--burst`, action
//!   `block`) and only the legitimate client's veth guarded.
//! - **4** a client thread in the client namespace sends `GET /f1k` on a fresh connection
//!   each, back to back, with wall-clock timestamps, until a connection attempt times out;
//!   the breach is request number burst + 1, compared with the `block` event's `time`.
//!   Repeated `--breach-runs` times (unblock, wait for the limit to refill, again).
//!
//! Nothing is asserted about the figures; a step that cannot run fails the bench.
//!
//! Files: this one has the options and runs the steps; `agent` the agent's configurations
//! and counters, `flood` hping3 and the nftables rule, `cpu` /proc CPU accounting,
//! `prog_stats` the program's run time, `breach` the breach client and its analysis,
//! `summary` the closing table.

mod agent;
mod breach;
mod cpu;
mod flood;
mod prog_stats;
mod summary;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use integration_tests::agent::agent_binary;
use integration_tests::util::which;
use integration_tests::wrk::{self, WrkArgs, WrkReport};
use integration_tests::{require_root, unique_port, Agent, AgentOptions, Netns, Nginx, Veth};

use agent::{
    breach_config, deny_config, ensure_running, settled_drops, xdp_attachment, Attachment,
};
use breach::{block_events, breach_client, wait_block_event, BreachReport};
use flood::{print_generator, DropRun, Flood, FloodStats, NftDrop};
use prog_stats::{test_run, BpfStatsSysctl, ProgStats, RunStats};
use summary::{print_summary, Summary};

#[derive(clap::Args, Debug)]
pub struct XdpArgs {
    /// Seconds of each measured phase (each flood and each wrk run).
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// Distinct IPv4 addresses in `enforce.deny` besides the flood source (from 100.64.0.0
    /// upward), filling the guard's exact-address hash map.
    #[arg(long, default_value_t = 100_000)]
    pub entries: u32,
    /// wrk connections.
    #[arg(long, default_value_t = 50)]
    pub connections: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// XDP attach mode of the guard.
    #[arg(long, value_enum, default_value_t = AttachMode::Auto)]
    pub mode: AttachMode,
    /// Breach step: the policy's sustained rate (requests/s per client).
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Breach step: the policy's burst; request number burst + 1 is the breach.
    #[arg(long, default_value_t = 5)]
    pub burst: u32,
    /// Breach step: connect and read timeout of each request, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub timeout_ms: u64,
    /// Breach step: repetitions (between them the client is unblocked and its limit refills).
    #[arg(long, default_value_t = 5)]
    pub breach_runs: u32,
    /// Read the program's run time from the agent's fd in /proc/<pid>/fdinfo even when
    /// bpftool is installed (and skip the `bpftool prog run` cross-check).
    #[arg(long)]
    pub no_bpftool: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    Auto,
    Native,
    Generic,
}

impl AttachMode {
    fn as_str(self) -> &'static str {
        match self {
            AttachMode::Auto => "auto",
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
        }
    }
}

/// The CGNAT range the generated deny entries come from (4,194,304 addresses).
const DENY_BASE: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 0);
const DENY_RANGE: u32 = 1 << 22;
/// The guard's default `enforce.max_blocks` (also the hash map's size).
const DEFAULT_MAX_BLOCKS: u32 = 131_072;
const BPF_STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";
/// A locally administered MAC for the control generator's static neighbour entry.
const CONTROL_MAC: &str = "02:00:00:00:00:01";
/// `bpftool prog run` repeats per frame.
const TEST_RUN_REPEAT: u32 = 1_000_000;
const XDP_DROP_CODE: u32 = 1;
const XDP_PASS_CODE: u32 = 2;
/// How long the breach client keeps going when no block ever comes.
const BREACH_LIMIT: Duration = Duration::from_secs(5);

pub fn xdp(args: &XdpArgs) -> Result<()> {
    require_root()?;
    check_args(args)?;
    let mut tools = Tools::find()?;
    if args.no_bpftool {
        tools.bpftool = None;
    }
    let bin = agent_binary(&AgentOptions::default())?;
    print_host(&bin, &tools);

    // Declared first, dropped last: the agents below stop before nginx and the namespaces.
    let bed = Testbed::new(args)?;
    let nft_run = nftables_drop(&bed, args)?;
    let generator = generator_alone(&bed, args)?;

    let (mut agent, attached) = start_deny_agent(&bed, args)?;
    let xdp_run = xdp_drop(&bed, args, &agent, &attached)?;
    ensure_running(&mut agent)?;
    let prog = program_run_time(&bed, args, &tools, &agent, &attached)?;
    ensure_running(&mut agent)?;
    let (baseline, flooded, controlled) = legitimate_under_flood(&bed, args, &agent)?;
    ensure_running(&mut agent)?;
    agent.stop_cleanly()?;
    drop(agent);

    let breaches = breach_to_drop(&bed, args)?;

    print_summary(&Summary {
        entries: args.entries as u64 + 1,
        mode: attached.mode.clone(),
        pass: prog.pass,
        drop: prog.drop,
        xdp: xdp_run,
        nft: nft_run,
        generator,
        test_runs: prog.test_runs,
        baseline,
        flooded,
        controlled,
        breaches,
    });
    Ok(())
}

fn check_args(args: &XdpArgs) -> Result<()> {
    ensure!(args.duration >= 1, "--duration must be at least 1 second");
    ensure!(
        args.entries <= DENY_RANGE,
        "--entries must be at most {DENY_RANGE} (100.64.0.0/10)"
    );
    ensure!(
        args.threads >= 1 && args.connections >= args.threads,
        "need at least one thread and one connection per thread"
    );
    ensure!(
        args.rate.is_finite() && args.rate > 0.0 && args.burst >= 1,
        "--rate must be > 0 and --burst >= 1"
    );
    ensure!(args.timeout_ms >= 10, "--timeout-ms must be at least 10");
    ensure!(
        (1..=20).contains(&args.breach_runs),
        "--breach-runs must be 1..=20"
    );
    Ok(())
}

fn print_host(bin: &Path, tools: &Tools) {
    println!("agent: {}", bin.display());
    println!(
        "host: {} CPUs, load average {} (other work on the host skews every figure)",
        thread::available_parallelism().map_or(0, |n| n.get()),
        fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".into())
    );
    match &tools.bpftool {
        Some(path) => println!("bpftool: {}", path.display()),
        None => println!("bpftool: not used; program stats come from /proc/<agent>/fdinfo"),
    }
}

/// The namespaces, veths and nginx every step uses.
struct Testbed {
    // Fields drop in declaration order: nginx first, then the namespaces, the last created
    // first.
    nginx: Nginx,
    url: String,
    flood_target: SocketAddr,
    control_target: SocketAddr,
    load: WrkArgs,
    duration: Duration,
    legit: Veth,
    attack: Veth,
    control: Veth,
    /// Only kept alive: the control veth's dead end.
    _sink: Netns,
    gen: Netns,
    atk: Netns,
    cli: Netns,
    srv: Netns,
}

impl Testbed {
    /// Namespaces, veths and nginx, then a one-second wrk run to warm nginx and the TCP
    /// stack before anything is recorded.
    fn new(args: &XdpArgs) -> Result<Testbed> {
        let duration = Duration::from_secs(args.duration);
        // Namespaces first: on an error below, everything created later drops before them.
        let srv = Netns::new("bx-s")?;
        let cli = Netns::new("bx-c")?;
        let atk = Netns::new("bx-a")?;
        let gen = Netns::new("bx-g")?;
        let sink = Netns::new("bx-k")?;
        let legit = Veth::new(&srv, &cli)?;
        let attack = Veth::new(&srv, &atk)?;
        let control = Veth::new(&sink, &gen)?;
        // The control generator's frames leave its veth and are discarded at once: the peer
        // is down, and a static neighbour entry spares the ARP resolution.
        sink.ip(&["link", "set", &control.a_if, "down"])?;
        gen.ip(&[
            "neigh",
            "replace",
            &control.a_ip.to_string(),
            "lladdr",
            CONTROL_MAC,
            "dev",
            &control.b_if,
            "nud",
            "permanent",
        ])?;
        let port = unique_port()?;
        let nginx = Nginx::start(
            &srv,
            SocketAddr::new(legit.a_ip.into(), port),
            &[("f1k", 1024)],
        )?;
        let url = nginx.url("/f1k");
        let flood_target = SocketAddr::new(attack.a_ip.into(), port);
        let control_target = SocketAddr::new(control.a_ip.into(), port);
        let load = WrkArgs {
            threads: args.threads,
            connections: args.connections,
            duration,
            latency: false,
            script: None,
        };
        println!(
            "nginx pid {} at {url}; legitimate client {} ({}), flood source {} ({}), \
             control generator {} -> dead veth",
            nginx.pid(),
            legit.b_ip,
            cli.name(),
            attack.b_ip,
            atk.name(),
            control.b_ip
        );
        // Warm nginx and the TCP stack before anything is recorded.
        wrk::run(
            &cli,
            &url,
            &WrkArgs {
                duration: Duration::from_secs(1),
                ..load.clone()
            },
        )?;
        Ok(Testbed {
            nginx,
            url,
            flood_target,
            control_target,
            load,
            duration,
            legit,
            attack,
            control,
            _sink: sink,
            gen,
            atk,
            cli,
            srv,
        })
    }
}

/// [2b] No agent: the flood dropped by an nftables rule in the server namespace.
fn nftables_drop(bed: &Testbed, args: &XdpArgs) -> Result<DropRun> {
    println!();
    println!(
        "[2b] nftables, no agent: hping3 --flood -S {} from {} for {}s",
        bed.flood_target, bed.attack.b_ip, args.duration
    );
    let nft_run = {
        let nft = NftDrop::install(&bed.srv, &bed.attack.a_if, bed.attack.b_ip)?;
        println!("     rule: {}", nft.hook);
        let flood = Flood::start(&bed.atk, bed.flood_target)?.run_for(bed.duration)?;
        let dropped = nft.packets()?;
        DropRun {
            how: format!("nftables {}", nft.hook),
            flood,
            dropped,
        }
    };
    nft_run.print();
    Ok(nft_run)
}

/// [2c] No agent: the generator alone, into a dead veth: its own kernel CPU per packet.
fn generator_alone(bed: &Testbed, args: &XdpArgs) -> Result<FloodStats> {
    println!();
    println!(
        "[2c] control, no agent: hping3 --flood -S {} from {} into a dead veth for {}s",
        bed.control_target, bed.control.b_ip, args.duration
    );
    let generator = Flood::start(&bed.gen, bed.control_target)?.run_for(bed.duration)?;
    print_generator(&generator);
    Ok(generator)
}

/// Agent A: the deny list, the guard on both server-side veths. Returns the agent and the
/// guard's attachment on the flooded veth.
fn start_deny_agent(bed: &Testbed, args: &XdpArgs) -> Result<(Agent, Attachment)> {
    println!();
    let started = Instant::now();
    let agent = Agent::start(AgentOptions {
        config_toml: Some(deny_config(
            bed.nginx.pid(),
            &[&bed.legit.a_if, &bed.attack.a_if],
            &bed.srv.path(),
            args.mode,
            args.entries,
            bed.attack.b_ip,
        )),
        ..AgentOptions::default()
    })?;
    let startup = started.elapsed();
    let attached = xdp_attachment(&bed.srv, &bed.attack.a_if)?;
    let attached_legit = xdp_attachment(&bed.srv, &bed.legit.a_if)?;
    println!(
        "agent A (pid {}) healthy after {:.2}s with {} deny entries; xdp_guard id {} attached \
         {} on {} (and id {} {} on {})",
        agent.pid(),
        startup.as_secs_f64(),
        args.entries as u64 + 1,
        attached.prog_id,
        attached.mode,
        bed.attack.a_if,
        attached_legit.prog_id,
        attached_legit.mode,
        bed.legit.a_if
    );
    ensure!(
        attached.prog_id == attached_legit.prog_id,
        "the two veths run different programs ({} and {})",
        attached.prog_id,
        attached_legit.prog_id
    );
    if attached.mode != "native" {
        println!("     note: generic (skb) mode: the guard runs after the skb is built");
    }
    Ok((agent, attached))
}

/// [2a] The same flood, dropped by the guard.
fn xdp_drop(
    bed: &Testbed,
    args: &XdpArgs,
    agent: &Agent,
    attached: &Attachment,
) -> Result<DropRun> {
    println!();
    println!(
        "[2a] XDP guard: hping3 --flood -S {} from {} for {}s",
        bed.flood_target, bed.attack.b_ip, args.duration
    );
    let xdp_run = {
        let before = settled_drops(agent)?;
        let flood = Flood::start(&bed.atk, bed.flood_target)?.run_for(bed.duration)?;
        let after = settled_drops(agent)?;
        DropRun {
            how: format!("XDP guard ({})", attached.mode),
            flood,
            dropped: after.saturating_sub(before),
        }
    };
    xdp_run.print();
    Ok(xdp_run)
}

/// What step [1] measured.
struct ProgramRunTime {
    /// Runs on the packets the guard passed (wrk).
    pass: RunStats,
    /// Runs on the packets it dropped (the flood).
    drop: RunStats,
    /// `bpftool prog run` ns per run: (pass, drop).
    test_runs: Option<(u64, u64)>,
}

/// [1] ns per packet from the kernel's program stats, and the `bpftool prog run`
/// cross-check.
fn program_run_time(
    bed: &Testbed,
    args: &XdpArgs,
    tools: &Tools,
    agent: &Agent,
    attached: &Attachment,
) -> Result<ProgramRunTime> {
    println!();
    println!(
        "[1]  xdp_guard run time with {} exact entries, kernel.bpf_stats_enabled=1",
        args.entries as u64 + 1
    );
    let stats = ProgStats {
        bpftool: tools.bpftool.clone(),
        agent_pid: agent.pid(),
        prog_id: attached.prog_id,
    };
    let (pass_stats, drop_stats) = {
        let _enabled = BpfStatsSysctl::enable()?;
        let s0 = stats.read()?;
        let report = wrk::run(&bed.cli, &bed.url, &bed.load)?;
        let s1 = stats.read()?;
        let flood = Flood::start(&bed.atk, bed.flood_target)?.run_for(bed.duration)?;
        let s2 = stats.read()?;
        println!(
            "     pass: wrk {} requests ({:.0} req/s) from {}",
            report.requests, report.requests_per_sec, bed.legit.b_ip
        );
        println!(
            "     drop: hping3 {} packets ({:.0}/s) from {}",
            flood.sent.map_or("?".into(), |n| n.to_string()),
            flood.sent_rate(),
            bed.attack.b_ip
        );
        (s1.since(&s0), s2.since(&s1))
    };
    println!(
        "     kernel.bpf_stats_enabled restored to {}",
        fs::read_to_string(BPF_STATS_SYSCTL)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into())
    );
    for (what, s) in [("pass", &pass_stats), ("drop", &drop_stats)] {
        println!(
            "     {what}: {} runs, {} ns in the program: {:.1} ns/packet (source: {})",
            s.run_cnt,
            s.run_time_ns,
            s.ns_per_run(),
            stats.source()
        );
    }
    // Cross-check without the per-run clock reads of bpf_stats: the kernel's test run of the
    // same program on its live maps, one synthetic frame each way.
    let test_runs = match &tools.bpftool {
        Some(bpftool) => {
            let runs = [
                ("pass", bed.legit.b_ip, XDP_PASS_CODE),
                ("drop", bed.attack.b_ip, XDP_DROP_CODE),
            ]
            .map(|(what, src, want)| {
                test_run(bpftool, attached.prog_id, src, bed.attack.a_ip, want).map(|ns| (what, ns))
            });
            let [pass_run, drop_run] = runs;
            let (pass_run, drop_run) = (pass_run?, drop_run?);
            for (what, ns) in [pass_run, drop_run] {
                println!(
                    "     {what}: bpftool prog run, {TEST_RUN_REPEAT} repeats of one frame: \
                     {ns} ns/run (program alone, hot caches, no bpf_stats)"
                );
            }
            Some((pass_run.1, drop_run.1))
        }
        None => None,
    };
    Ok(ProgramRunTime {
        pass: pass_stats,
        drop: drop_stats,
        test_runs,
    })
}

/// [3] Legitimate requests without a flood, under the blocked flood and under the control
/// flood: (baseline, flooded, controlled).
fn legitimate_under_flood(
    bed: &Testbed,
    args: &XdpArgs,
    agent: &Agent,
) -> Result<(WrkReport, WrkReport, WrkReport)> {
    println!();
    println!(
        "[3]  wrk -t{} -c{} -d{}s from {}: without flood, under the blocked flood, under the \
         control flood",
        args.threads, args.connections, args.duration, bed.legit.b_ip
    );
    let baseline = wrk::run(&bed.cli, &bed.url, &bed.load)?;
    print_wrk("no flood", &baseline, None);
    let drops_before = settled_drops(agent)?;
    let (flooded, flood_during) = Flood::start(&bed.atk, bed.flood_target)?
        .during(|| wrk::run(&bed.cli, &bed.url, &bed.load))?;
    let flood_dropped = settled_drops(agent)?.saturating_sub(drops_before);
    print_wrk(
        "blocked flood",
        &flooded,
        Some((&flood_during, Some(flood_dropped))),
    );
    let (controlled, control_during) = Flood::start(&bed.gen, bed.control_target)?
        .during(|| wrk::run(&bed.cli, &bed.url, &bed.load))?;
    print_wrk("control flood", &controlled, Some((&control_during, None)));
    Ok((baseline, flooded, controlled))
}

/// [4] Agent B with a `client_ip` rate-limit policy; `--breach-runs` runs of the breach
/// client, each compared with its `block` event.
fn breach_to_drop(bed: &Testbed, args: &XdpArgs) -> Result<Vec<BreachReport>> {
    println!();
    let policy = format!("bench-rate{}-burst{}", args.rate, args.burst).replace('.', "_");
    let mut agent = Agent::start(AgentOptions {
        config_toml: Some(breach_config(
            bed.nginx.pid(),
            &bed.legit.a_if,
            &bed.srv.path(),
            args.mode,
            &policy,
            args.rate,
            args.burst,
        )),
        ..AgentOptions::default()
    })?;
    println!(
        "[4]  breach: policy client_ip rate {}/s burst {} action block; GET /f1k on a fresh \
         connection each from {}, timeouts {} ms",
        args.rate, args.burst, bed.legit.b_ip, args.timeout_ms
    );
    let timeout = Duration::from_millis(args.timeout_ms);
    let client_ip = bed.legit.b_ip.to_string();
    // GCRA refills the whole burst in burst / rate seconds (bounded for tiny rates).
    let refill = Duration::from_secs_f64((f64::from(args.burst) / args.rate + 0.3).min(30.0));
    let mut breaches = Vec::new();
    for run in 1..=args.breach_runs {
        if run > 1 {
            agent.cli_ok(&["unblock", &client_ip])?;
            thread::sleep(refill);
        }
        let seen = block_events(&agent, &client_ip)?.len();
        let attempts = breach_client(
            &bed.cli.path(),
            bed.nginx.addr(),
            "/f1k",
            timeout,
            BREACH_LIMIT,
        )?;
        let event = wait_block_event(&agent, &client_ip, seen, Duration::from_secs(3))?;
        if event.is_none() {
            println!(
                "     run {run}: no block event for {client_ip} within 3 s of the client \
                 stopping\n{}",
                agent.diagnostics()
            );
        }
        ensure_running(&mut agent)?;
        let breach = BreachReport::analyse(&attempts, args.burst as usize, event.as_ref())?;
        breach.print(run);
        breaches.push(breach);
    }
    agent.stop_cleanly()?;
    Ok(breaches)
}

/// External programs the bench runs.
struct Tools {
    bpftool: Option<PathBuf>,
}

impl Tools {
    fn find() -> Result<Tools> {
        for tool in ["hping3", "nft", "wrk", "ip"] {
            which(tool).with_context(|| {
                format!("{tool} is required: install it (`cargo xtask setup` does)")
            })?;
        }
        ensure!(
            Path::new(BPF_STATS_SYSCTL).exists(),
            "{BPF_STATS_SYSCTL} is missing: the kernel cannot report BPF program run times"
        );
        Ok(Tools {
            bpftool: which("bpftool").ok(),
        })
    }
}

fn print_wrk(what: &str, w: &WrkReport, flood: Option<(&FloodStats, Option<u64>)>) {
    let mut line = format!(
        "     {what:<14} {:>9.0} req/s ({} requests, {} socket errors)",
        w.requests_per_sec, w.requests, w.socket_errors
    );
    if let Some((f, dropped)) = flood {
        line += &format!(
            "; flood {} packets ({:.0}/s)",
            f.sent.map_or("?".into(), |n| n.to_string()),
            f.sent_rate()
        );
        if let Some(d) = dropped {
            line += &format!(", {d} dropped by XDP");
        }
    }
    println!("{line}");
}
