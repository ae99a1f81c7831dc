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

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Context, Result};
use integration_tests::agent::agent_binary;
use integration_tests::util::{
    die_with_parent, kill_and_reap, run_with_timeout, signal_and_wait, tail, which, TempDir,
};
use integration_tests::wrk::{self, WrkArgs, WrkReport};
use integration_tests::{require_root, unique_port, Agent, AgentOptions, Netns, Nginx, Veth};
use serde_json::Value;

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
const XDP_PACKETS: &str = "apiguard_xdp_packets_total";
const BPF_STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";
const NFT_TABLE: &str = "apiguard_bench";
/// A locally administered MAC for the control generator's static neighbour entry.
const CONTROL_MAC: &str = "02:00:00:00:00:01";
/// `bpftool prog run` repeats per frame.
const TEST_RUN_REPEAT: u32 = 1_000_000;
const XDP_DROP_CODE: u32 = 1;
const XDP_PASS_CODE: u32 = 2;
/// Upper bound on the breach client's requests (it stops far earlier in practice).
const MAX_ATTEMPTS: usize = 200_000;
/// How long the breach client keeps going when no block ever comes.
const BREACH_LIMIT: Duration = Duration::from_secs(5);

pub fn xdp(args: &XdpArgs) -> Result<()> {
    require_root()?;
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
    let mut tools = Tools::find()?;
    if args.no_bpftool {
        tools.bpftool = None;
    }
    let bin = agent_binary(&AgentOptions::default())?;
    let duration = Duration::from_secs(args.duration);
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

    // Namespaces first: everything declared later (servers, agents, guards) drops first.
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

    // 2b: nftables, no agent.
    println!();
    println!(
        "[2b] nftables, no agent: hping3 --flood -S {flood_target} from {} for {}s",
        attack.b_ip, args.duration
    );
    let nft_run = {
        let nft = NftDrop::install(&srv, &attack.a_if, attack.b_ip)?;
        println!("     rule: {}", nft.hook);
        let flood = Flood::start(&atk, flood_target)?.run_for(duration)?;
        let dropped = nft.packets()?;
        DropRun {
            how: format!("nftables {}", nft.hook),
            flood,
            dropped,
        }
    };
    nft_run.print();

    // 2c: the generator alone, into a dead veth: its own kernel CPU per packet.
    println!();
    println!(
        "[2c] control, no agent: hping3 --flood -S {control_target} from {} into a dead veth \
         for {}s",
        control.b_ip, args.duration
    );
    let generator = Flood::start(&gen, control_target)?.run_for(duration)?;
    print_generator(&generator);

    // Agent A: the deny list, the guard on both server-side veths.
    println!();
    let ns_path = srv.path();
    let started = Instant::now();
    let mut agent = Agent::start(AgentOptions {
        config_toml: Some(deny_config(
            nginx.pid(),
            &[&legit.a_if, &attack.a_if],
            &ns_path,
            args.mode,
            args.entries,
            attack.b_ip,
        )),
        ..AgentOptions::default()
    })?;
    let startup = started.elapsed();
    let attached = xdp_attachment(&srv, &attack.a_if)?;
    let attached_legit = xdp_attachment(&srv, &legit.a_if)?;
    println!(
        "agent A (pid {}) healthy after {:.2}s with {} deny entries; xdp_guard id {} attached \
         {} on {} (and id {} {} on {})",
        agent.pid(),
        startup.as_secs_f64(),
        args.entries as u64 + 1,
        attached.prog_id,
        attached.mode,
        attack.a_if,
        attached_legit.prog_id,
        attached_legit.mode,
        legit.a_if
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

    // 2a: the same flood, dropped by the guard.
    println!();
    println!(
        "[2a] XDP guard: hping3 --flood -S {flood_target} from {} for {}s",
        attack.b_ip, args.duration
    );
    let xdp_run = {
        let before = settled_drops(&agent)?;
        let flood = Flood::start(&atk, flood_target)?.run_for(duration)?;
        let after = settled_drops(&agent)?;
        DropRun {
            how: format!("XDP guard ({})", attached.mode),
            flood,
            dropped: after.saturating_sub(before),
        }
    };
    xdp_run.print();
    ensure_running(&mut agent)?;

    // 1: ns per packet from the kernel's program stats.
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
        let report = wrk::run(&cli, &url, &load)?;
        let s1 = stats.read()?;
        let flood = Flood::start(&atk, flood_target)?.run_for(duration)?;
        let s2 = stats.read()?;
        println!(
            "     pass: wrk {} requests ({:.0} req/s) from {}",
            report.requests, report.requests_per_sec, legit.b_ip
        );
        println!(
            "     drop: hping3 {} packets ({:.0}/s) from {}",
            flood.sent.map_or("?".into(), |n| n.to_string()),
            flood.sent_rate(),
            attack.b_ip
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
                ("pass", legit.b_ip, XDP_PASS_CODE),
                ("drop", attack.b_ip, XDP_DROP_CODE),
            ]
            .map(|(what, src, want)| {
                test_run(bpftool, attached.prog_id, src, attack.a_ip, want).map(|ns| (what, ns))
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
    ensure_running(&mut agent)?;

    // 3: legitimate requests under flood.
    println!();
    println!(
        "[3]  wrk -t{} -c{} -d{}s from {}: without flood, under the blocked flood, under the \
         control flood",
        args.threads, args.connections, args.duration, legit.b_ip
    );
    let baseline = wrk::run(&cli, &url, &load)?;
    print_wrk("no flood", &baseline, None);
    let drops_before = settled_drops(&agent)?;
    let (flooded, flood_during) =
        Flood::start(&atk, flood_target)?.during(|| wrk::run(&cli, &url, &load))?;
    let flood_dropped = settled_drops(&agent)?.saturating_sub(drops_before);
    print_wrk(
        "blocked flood",
        &flooded,
        Some((&flood_during, Some(flood_dropped))),
    );
    let (controlled, control_during) =
        Flood::start(&gen, control_target)?.during(|| wrk::run(&cli, &url, &load))?;
    print_wrk("control flood", &controlled, Some((&control_during, None)));
    ensure_running(&mut agent)?;
    agent.stop_cleanly()?;
    drop(agent);

    // 4: breach to drop.
    println!();
    let policy = format!("bench-rate{}-burst{}", args.rate, args.burst).replace('.', "_");
    let mut agent = Agent::start(AgentOptions {
        config_toml: Some(breach_config(
            nginx.pid(),
            &legit.a_if,
            &ns_path,
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
        args.rate, args.burst, legit.b_ip, args.timeout_ms
    );
    let timeout = Duration::from_millis(args.timeout_ms);
    let client_ip = legit.b_ip.to_string();
    // GCRA refills the whole burst in burst / rate seconds (bounded for tiny rates).
    let refill = Duration::from_secs_f64((f64::from(args.burst) / args.rate + 0.3).min(30.0));
    let mut breaches = Vec::new();
    for run in 1..=args.breach_runs {
        if run > 1 {
            agent.cli_ok(&["unblock", &client_ip])?;
            thread::sleep(refill);
        }
        let seen = block_events(&agent, &client_ip)?.len();
        let attempts = breach_client(&cli.path(), nginx.addr(), "/f1k", timeout, BREACH_LIMIT)?;
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

    print_summary(&Summary {
        entries: args.entries as u64 + 1,
        mode: attached.mode.clone(),
        pass: pass_stats,
        drop: drop_stats,
        xdp: xdp_run,
        nft: nft_run,
        generator,
        test_runs,
        baseline,
        flooded,
        controlled,
        breaches,
    });
    Ok(())
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

fn ensure_running(agent: &mut Agent) -> Result<()> {
    ensure!(
        agent.is_running(),
        "api-guard exited during the bench:\n{}",
        agent.stderr_tail(30)
    );
    Ok(())
}

fn toml_list(items: impl IntoIterator<Item = String>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn xdp_section(ifaces: &[&str], netns: &Path, mode: AttachMode) -> String {
    let ifaces: Vec<String> = ifaces
        .iter()
        .map(|name| {
            format!(
                "{{ name = {name:?}, netns = {:?} }}",
                netns.display().to_string()
            )
        })
        .collect();
    format!(
        "[xdp]\ninterfaces = [{}]\nmode = {:?}\n",
        ifaces.join(", "),
        mode.as_str()
    )
}

/// `count` distinct addresses from 100.64.0.0 upward.
fn deny_addresses(count: u32) -> impl Iterator<Item = Ipv4Addr> {
    let base = u32::from(DENY_BASE);
    (0..count).map(move |i| Ipv4Addr::from(base + i))
}

fn deny_config(
    nginx_pid: u32,
    ifaces: &[&str],
    netns: &Path,
    mode: AttachMode,
    entries: u32,
    blocked: Ipv4Addr,
) -> String {
    let deny = deny_addresses(entries)
        .chain([blocked])
        .map(|a| a.to_string());
    let max_blocks = DEFAULT_MAX_BLOCKS.max(entries.saturating_add(1024));
    format!(
        "[capture]\npids = [{nginx_pid}]\n{}[enforce]\nmax_blocks = {max_blocks}\ndeny = {}\n",
        xdp_section(ifaces, netns, mode),
        toml_list(deny)
    )
}

fn breach_config(
    nginx_pid: u32,
    iface: &str,
    netns: &Path,
    mode: AttachMode,
    policy: &str,
    rate: f64,
    burst: u32,
) -> String {
    format!(
        "[capture]\npids = [{nginx_pid}]\n{}[[enforce.policies]]\nname = {policy:?}\n\
         key = \"client_ip\"\nrate = {rate:?}\nburst = {burst}\naction = \"block\"\n\
         block_secs = 60\n",
        xdp_section(&[iface], netns, mode)
    )
}

/// The guard's program on an interface, from `ip -d link show`.
#[derive(Debug, Clone, PartialEq)]
struct Attachment {
    prog_id: u32,
    /// `native`, `generic` or `offload`.
    mode: String,
}

fn xdp_attachment(ns: &Netns, iface: &str) -> Result<Attachment> {
    let text = ns.ip(&["-d", "link", "show", "dev", iface])?;
    parse_xdp_attachment(&text)
        .with_context(|| format!("no XDP program on {iface} in {}:\n{text}", ns.name()))
}

/// The mode is the link flag (`mtu 1500 xdp qdisc ...`: `xdp`/`xdpdrv` native, `xdpgeneric`,
/// `xdpoffload`); the program id follows `prog/xdp id` in the details (`-d`).
fn parse_xdp_attachment(ip_link: &str) -> Option<Attachment> {
    let words: Vec<&str> = ip_link.split_whitespace().collect();
    let mode = words.iter().find_map(|w| match *w {
        "xdp" | "xdpdrv" => Some("native"),
        "xdpgeneric" => Some("generic"),
        "xdpoffload" => Some("offload"),
        "xdpmulti" => Some("multi"),
        _ => None,
    })?;
    let at = words.iter().position(|w| w.starts_with("prog/xdp"))?;
    (words.get(at + 1) == Some(&"id")).then_some(())?;
    Some(Attachment {
        prog_id: words.get(at + 2)?.parse().ok()?,
        mode: mode.to_string(),
    })
}

/// Dropped packets counted by the guard, once its 250 ms refresh has caught up: two reads
/// 300 ms apart agree (at most 3 s).
fn settled_drops(agent: &Agent) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = agent.metric(XDP_PACKETS, &[("action", "drop")])?;
    loop {
        thread::sleep(Duration::from_millis(300));
        let now = agent.metric(XDP_PACKETS, &[("action", "drop")])?;
        if now == last || Instant::now() > deadline {
            return Ok(now as u64);
        }
        last = now;
    }
}

/// The aggregate `cpu` line of /proc/stat, in clock ticks.
#[derive(Debug, Clone, Copy, Default)]
struct CpuTimes {
    user: u64,
    nice: u64,
    system: u64,
    idle: u64,
    iowait: u64,
    irq: u64,
    softirq: u64,
    steal: u64,
}

impl CpuTimes {
    fn read() -> Result<CpuTimes> {
        let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        parse_cpu_line(stat.lines().next().unwrap_or_default())
    }

    fn since(&self, before: &CpuTimes) -> CpuDelta {
        let hz = clock_ticks_per_sec();
        let s = |after: u64, before: u64| after.saturating_sub(before) as f64 / hz;
        CpuDelta {
            user: s(self.user + self.nice, before.user + before.nice),
            system: s(self.system, before.system),
            irq: s(self.irq, before.irq),
            softirq: s(self.softirq, before.softirq),
            idle: s(self.idle + self.iowait, before.idle + before.iowait),
            steal: s(self.steal, before.steal),
        }
    }
}

fn parse_cpu_line(line: &str) -> Result<CpuTimes> {
    let mut words = line.split_whitespace();
    ensure!(words.next() == Some("cpu"), "not a cpu line: {line:?}");
    let v: Vec<u64> = words
        .map(|w| w.parse().with_context(|| format!("/proc/stat field {w:?}")))
        .collect::<Result<_>>()?;
    ensure!(v.len() >= 8, "short cpu line: {line:?}");
    Ok(CpuTimes {
        user: v[0],
        nice: v[1],
        system: v[2],
        idle: v[3],
        iowait: v[4],
        irq: v[5],
        softirq: v[6],
        steal: v[7],
    })
}

/// CPU seconds summed over all CPUs.
#[derive(Debug, Clone, Copy, Default)]
struct CpuDelta {
    user: f64,
    system: f64,
    irq: f64,
    softirq: f64,
    idle: f64,
    steal: f64,
}

impl CpuDelta {
    /// What the brief compares: system + softirq.
    fn kernel(&self) -> f64 {
        self.system + self.softirq
    }
}

/// A bounded `hping3 --flood -S` in a namespace; killed on drop.
struct Flood {
    child: Child,
    dir: TempDir,
    started: Instant,
    cpu_before: CpuTimes,
    ksoftirqd: Vec<u32>,
    ksoftirqd_before: f64,
}

/// What one flood did.
#[derive(Debug, Clone, Default)]
struct FloodStats {
    secs: f64,
    /// Packets hping3 reports as transmitted.
    sent: Option<u64>,
    /// System-wide, all processes.
    cpu: CpuDelta,
    /// Kernel time charged to hping3 itself: its syscalls and, with tick accounting, the
    /// softirq work (veth receive, XDP or nftables) the kernel ran on its way out of them.
    sender_sys: f64,
    /// Kernel time of the ksoftirqd threads (softirq work deferred out of hping3's context).
    ksoftirqd: f64,
}

impl FloodStats {
    /// System time attributable to the flood: hping3's own plus ksoftirqd's.
    fn attributed(&self) -> f64 {
        self.sender_sys + self.ksoftirqd
    }

    fn sent_rate(&self) -> f64 {
        self.sent.map_or(f64::NAN, |n| n as f64 / self.secs)
    }
}

impl Flood {
    fn start(ns: &Netns, target: SocketAddr) -> Result<Flood> {
        let dir = TempDir::new("bxflood")?;
        let ksoftirqd = ksoftirqd_pids()?;
        let ksoftirqd_before = stime_sum(&ksoftirqd);
        let cpu_before = CpuTimes::read()?;
        let mut cmd = ns.cmd("hping3");
        cmd.args(["--flood", "-S", "-p"])
            .arg(target.port().to_string())
            .arg(target.ip().to_string())
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("stdout"))?)
            .stderr(File::create(dir.join("stderr"))?);
        // Spawned from the main thread: hping3 dies with the bench.
        die_with_parent(&mut cmd, libc::SIGKILL);
        let child = cmd.spawn().context("spawning hping3")?;
        let mut flood = Flood {
            child,
            dir,
            started: Instant::now(),
            cpu_before,
            ksoftirqd,
            ksoftirqd_before,
        };
        thread::sleep(Duration::from_millis(100));
        if let Some(status) = flood.child.try_wait()? {
            bail!("hping3 exited at once with {status}: {}", flood.output());
        }
        Ok(flood)
    }

    fn output(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("{}\n{}", tail(&read("stdout"), 5), tail(&read("stderr"), 5))
    }

    /// Floods for `duration` (from the start), then stops.
    fn run_for(self, duration: Duration) -> Result<FloodStats> {
        let left = duration.saturating_sub(self.started.elapsed());
        thread::sleep(left);
        self.stop()
    }

    /// Runs `f` while the flood goes on (after 300 ms of flood), then stops it.
    fn during<T>(self, f: impl FnOnce() -> Result<T>) -> Result<(T, FloodStats)> {
        thread::sleep(Duration::from_millis(300));
        let result = f()?;
        Ok((result, self.stop()?))
    }

    /// SIGINT (hping3 then prints its statistics) and wait at most 3 s.
    /// The CPU window ends just before the signal, while hping3's /proc entry still exists.
    fn stop(mut self) -> Result<FloodStats> {
        let sender_sys = stime_seconds(self.child.id())
            .with_context(|| format!("hping3 is gone: {}", self.output()))?;
        let ksoftirqd = stime_sum(&self.ksoftirqd) - self.ksoftirqd_before;
        let cpu = CpuTimes::read()?.since(&self.cpu_before);
        let secs = self.started.elapsed().as_secs_f64();
        let status = signal_and_wait(&mut self.child, libc::SIGINT, Duration::from_secs(3))
            .with_context(|| format!("stopping hping3: {}", self.output()))?;
        // hping3 prints its statistics on stderr.
        let read = |name: &str| fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let sent = parse_hping_sent(&read("stderr")).or_else(|| parse_hping_sent(&read("stdout")));
        ensure!(
            sent.is_some() || status.success(),
            "hping3 ended with {status} without statistics: {}",
            self.output()
        );
        Ok(FloodStats {
            secs,
            sent,
            cpu,
            sender_sys,
            ksoftirqd,
        })
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// `123456 packets transmitted, 0 packets received, 100% packet loss`.
fn parse_hping_sent(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (n, rest) = l.trim().split_once(' ')?;
        rest.starts_with("packets transmitted")
            .then(|| n.parse().ok())
            .flatten()
    })
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}

/// System time (`stime`, all threads) of `pid` in seconds.
fn stime_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stime_ticks(&stat)
        .map(|t| t as f64 / clock_ticks_per_sec())
        .with_context(|| format!("malformed {path}: {stat:?}"))
}

/// Field 15 (`stime`) of a /proc/<pid>/stat line; the comm may hold spaces and parentheses.
fn parse_stime_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts at field 3 (state).
    rest.split_whitespace().nth(12)?.parse().ok()
}

/// The per-CPU `ksoftirqd/N` kernel threads.
fn ksoftirqd_pids() -> Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").context("reading /proc")? {
        let entry = entry?;
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.starts_with("ksoftirqd/") {
            pids.push(pid);
        }
    }
    Ok(pids)
}

fn stime_sum(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|&p| stime_seconds(p).ok()).sum()
}

/// An nftables table in a namespace dropping one source at the earliest hook that works;
/// deleted on drop (and with the namespace in any case).
struct NftDrop<'a> {
    ns: &'a Netns,
    family: &'static str,
    hook: &'static str,
}

impl<'a> NftDrop<'a> {
    fn install(ns: &'a Netns, dev: &str, src: Ipv4Addr) -> Result<NftDrop<'a>> {
        let netdev = format!(
            "table netdev {NFT_TABLE} {{\n  chain ingress {{\n    type filter hook ingress \
             device \"{dev}\" priority -500; policy accept;\n    ip saddr {src} counter drop\n  \
             }}\n}}\n"
        );
        match nft_apply(ns, &netdev) {
            Ok(()) => {
                return Ok(NftDrop {
                    ns,
                    family: "netdev",
                    hook: "netdev ingress (priority -500)",
                })
            }
            Err(e) => println!("     netdev ingress unavailable ({e:#}); using ip raw prerouting"),
        }
        let raw = format!(
            "table ip {NFT_TABLE} {{\n  chain prerouting {{\n    type filter hook prerouting \
             priority -300; policy accept;\n    ip saddr {src} counter drop\n  }}\n}}\n"
        );
        nft_apply(ns, &raw)?;
        Ok(NftDrop {
            ns,
            family: "ip",
            hook: "ip prerouting (raw priority -300)",
        })
    }

    /// Packets the rule's counter has dropped.
    fn packets(&self) -> Result<u64> {
        let out = run_with_timeout(
            self.ns
                .cmd("nft")
                .args(["list", "table", self.family, NFT_TABLE]),
            Duration::from_secs(10),
        )?;
        ensure!(
            out.status.success(),
            "nft list table failed: {}",
            out.stderr_text()
        );
        parse_nft_packets(&out.stdout_text())
            .with_context(|| format!("no counter in:\n{}", out.stdout_text()))
    }
}

impl Drop for NftDrop<'_> {
    fn drop(&mut self) {
        let deleted = run_with_timeout(
            self.ns
                .cmd("nft")
                .args(["delete", "table", self.family, NFT_TABLE]),
            Duration::from_secs(10),
        );
        match deleted {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!("warning: nft delete table: {}", out.stderr_text()),
            Err(e) => eprintln!("warning: nft delete table: {e:#}"),
        }
    }
}

fn nft_apply(ns: &Netns, ruleset: &str) -> Result<()> {
    let dir = TempDir::new("bxnft")?;
    let file = dir.join("rules.nft");
    fs::write(&file, ruleset)?;
    let out = run_with_timeout(ns.cmd("nft").arg("-f").arg(&file), Duration::from_secs(10))?;
    ensure!(
        out.status.success(),
        "nft -f failed ({}): {}",
        out.status,
        out.stderr_text().trim()
    );
    Ok(())
}

/// `ip saddr 10.231.0.6 counter packets 320965 bytes 12838600 drop`.
fn parse_nft_packets(text: &str) -> Option<u64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "packets")?;
    words.get(at + 1)?.parse().ok()
}

/// One flood with a drop mechanism in place.
#[derive(Debug, Clone, Default)]
struct DropRun {
    how: String,
    flood: FloodStats,
    dropped: u64,
}

impl DropRun {
    /// CPU seconds (system + softirq, all CPUs) per million dropped packets.
    fn cpu_per_million(&self) -> f64 {
        per_million(self.flood.cpu.kernel(), self.dropped)
    }

    /// hping3's + ksoftirqd's system seconds per million dropped packets.
    fn attributed_per_million(&self) -> f64 {
        per_million(self.flood.attributed(), self.dropped)
    }

    fn print(&self) {
        let c = &self.flood.cpu;
        println!(
            "     {}: sent {} in {:.2}s ({:.0}/s), dropped {} ({:.0}/s)",
            self.how,
            self.flood.sent.map_or("?".into(), |n| n.to_string()),
            self.flood.secs,
            self.flood.sent_rate(),
            self.dropped,
            self.dropped as f64 / self.flood.secs
        );
        println!(
            "     CPU s (all CPUs): system {:.2} softirq {:.2} irq {:.2} user {:.2} idle {:.2} \
             steal {:.2} -> system+softirq {:.3} s per 1M dropped ({:.3} s per 1M in softirq)",
            c.system,
            c.softirq,
            c.irq,
            c.user,
            c.idle,
            c.steal,
            self.cpu_per_million(),
            per_million(c.softirq, self.dropped)
        );
        println!(
            "     attributed: hping3 system {:.2} + ksoftirqd {:.2} -> {:.3} s per 1M dropped",
            self.flood.sender_sys,
            self.flood.ksoftirqd,
            self.attributed_per_million()
        );
    }
}

fn per_million(secs: f64, packets: u64) -> f64 {
    if packets == 0 {
        f64::NAN
    } else {
        secs / packets as f64 * 1e6
    }
}

/// `kernel.bpf_stats_enabled=1` while alive; the previous value comes back on drop.
struct BpfStatsSysctl {
    old: String,
}

impl BpfStatsSysctl {
    fn enable() -> Result<BpfStatsSysctl> {
        let old = fs::read_to_string(BPF_STATS_SYSCTL)
            .with_context(|| format!("reading {BPF_STATS_SYSCTL}"))?
            .trim()
            .to_string();
        fs::write(BPF_STATS_SYSCTL, "1").with_context(|| format!("writing {BPF_STATS_SYSCTL}"))?;
        Ok(BpfStatsSysctl { old })
    }
}

impl Drop for BpfStatsSysctl {
    fn drop(&mut self) {
        if let Err(e) = fs::write(BPF_STATS_SYSCTL, &self.old) {
            eprintln!(
                "warning: could not restore {BPF_STATS_SYSCTL} to {}: {e}",
                self.old
            );
        }
    }
}

/// Reads `run_time_ns` / `run_cnt` of one program.
struct ProgStats {
    bpftool: Option<PathBuf>,
    agent_pid: u32,
    prog_id: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct RunStats {
    run_time_ns: u64,
    run_cnt: u64,
}

impl RunStats {
    fn since(&self, before: &RunStats) -> RunStats {
        RunStats {
            run_time_ns: self.run_time_ns.saturating_sub(before.run_time_ns),
            run_cnt: self.run_cnt.saturating_sub(before.run_cnt),
        }
    }

    fn ns_per_run(&self) -> f64 {
        if self.run_cnt == 0 {
            f64::NAN
        } else {
            self.run_time_ns as f64 / self.run_cnt as f64
        }
    }
}

impl ProgStats {
    fn source(&self) -> &'static str {
        if self.bpftool.is_some() {
            "bpftool"
        } else {
            "fdinfo"
        }
    }

    fn read(&self) -> Result<RunStats> {
        match &self.bpftool {
            Some(bpftool) => self.read_bpftool(bpftool),
            None => self.read_fdinfo(),
        }
    }

    fn read_bpftool(&self, bpftool: &Path) -> Result<RunStats> {
        let out = run_with_timeout(
            Command::new(bpftool).args(["prog", "show", "id", &self.prog_id.to_string(), "--json"]),
            Duration::from_secs(10),
        )?;
        ensure!(
            out.status.success(),
            "bpftool prog show id {} failed: {}",
            self.prog_id,
            out.stderr_text()
        );
        let v: Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("bpftool printed {}", out.stdout_text()))?;
        ensure!(
            v["name"] == "xdp_guard" && v["type"] == "xdp",
            "program {} is not the XDP guard: {v}",
            self.prog_id
        );
        // Both fields are left out while they are 0.
        Ok(RunStats {
            run_time_ns: v["run_time_ns"].as_u64().unwrap_or(0),
            run_cnt: v["run_cnt"].as_u64().unwrap_or(0),
        })
    }

    /// The agent's fd of the program: `prog_type: 6` (XDP) and our `prog_id`.
    fn read_fdinfo(&self) -> Result<RunStats> {
        let dir = format!("/proc/{}/fd", self.agent_pid);
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
            let entry = entry?;
            let Ok(target) = fs::read_link(entry.path()) else {
                continue;
            };
            if target.to_string_lossy() != "anon_inode:bpf-prog" {
                continue;
            }
            let fd = entry.file_name().to_string_lossy().into_owned();
            let Ok(info) = fs::read_to_string(format!("/proc/{}/fdinfo/{fd}", self.agent_pid))
            else {
                continue;
            };
            if let Some(stats) = parse_prog_fdinfo(&info, self.prog_id) {
                return Ok(stats);
            }
        }
        bail!(
            "api-guard (pid {}) holds no fd of XDP program {}",
            self.agent_pid,
            self.prog_id
        )
    }
}

/// `run_time_ns` / `run_cnt` from a program fd's fdinfo, if it is XDP program `prog_id`.
fn parse_prog_fdinfo(info: &str, prog_id: u32) -> Option<RunStats> {
    let field = |key: &str| -> Option<u64> {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    };
    const BPF_PROG_TYPE_XDP: u64 = 6;
    (field("prog_type:")? == BPF_PROG_TYPE_XDP && field("prog_id:")? == u64::from(prog_id))
        .then_some(())?;
    Some(RunStats {
        run_time_ns: field("run_time_ns:").unwrap_or(0),
        run_cnt: field("run_cnt:").unwrap_or(0),
    })
}

/// Kernel CPU per packet of the generator alone (sending into a dead veth).
fn print_generator(g: &FloodStats) {
    let sent = g.sent.unwrap_or(0);
    println!(
        "     generator alone: sent {sent} in {:.2}s ({:.0}/s); CPU s (all CPUs): system {:.2} \
         softirq {:.2} user {:.2} idle {:.2} -> system+softirq {:.3} s per 1M sent",
        g.secs,
        g.sent_rate(),
        g.cpu.system,
        g.cpu.softirq,
        g.cpu.user,
        g.cpu.idle,
        per_million(g.cpu.kernel(), sent)
    );
    println!(
        "     attributed: hping3 system {:.2} + ksoftirqd {:.2} -> {:.3} s per 1M sent",
        g.sender_sys,
        g.ksoftirqd,
        per_million(g.attributed(), sent)
    );
}

/// A TCP SYN from `src` to `dst` in an Ethernet frame (checksums left 0: the guard reads
/// addresses only).
fn syn_frame(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(54);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]);
    f.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&[
        0x04, 0xd2, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff,
    ]);
    f.extend_from_slice(&[0, 0, 0, 0]);
    f
}

/// `bpftool prog run id ID data_in FRAME repeat N`: the average ns per run, checking the
/// verdict is `want`.
fn test_run(bpftool: &Path, prog_id: u32, src: Ipv4Addr, dst: Ipv4Addr, want: u32) -> Result<u64> {
    let dir = TempDir::new("bxrun")?;
    let frame = dir.join("frame.bin");
    fs::write(&frame, syn_frame(src, dst))?;
    let out = run_with_timeout(
        Command::new(bpftool)
            .args(["prog", "run", "id", &prog_id.to_string(), "data_in"])
            .arg(&frame)
            .args(["repeat", &TEST_RUN_REPEAT.to_string()]),
        Duration::from_secs(30),
    )?;
    let text = out.stdout_text() + &out.stderr_text();
    ensure!(out.status.success(), "bpftool prog run failed: {text}");
    let (verdict, ns) =
        parse_test_run(&text).with_context(|| format!("bpftool prog run printed {text:?}"))?;
    ensure!(
        verdict == want,
        "test run from {src}: verdict {verdict}, expected {want}"
    );
    Ok(ns)
}

/// `Return value: 1, duration (average): 87ns`.
fn parse_test_run(text: &str) -> Option<(u32, u64)> {
    let rest = &text[text.find("Return value:")? + "Return value:".len()..];
    let verdict = rest.split(',').next()?.trim().parse().ok()?;
    let rest = &rest[rest.find("duration (average):")? + "duration (average):".len()..];
    let ns = rest.trim_start().split("ns").next()?.trim().parse().ok()?;
    Some((verdict, ns))
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

/// Wall-clock now, in ns since the Unix epoch.
fn unix_now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// One request of the breach client.
#[derive(Debug, Clone)]
struct Attempt {
    start_ns: i128,
    outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// `200` received.
    Served,
    ConnectTimeout,
    ReadTimeout,
    Failed(String),
}

/// Runs the breach client on a thread that has entered the namespace at `netns`.
fn breach_client(
    netns: &Path,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    limit: Duration,
) -> Result<Vec<Attempt>> {
    thread::scope(|s| {
        s.spawn(|| {
            let ns = File::open(netns).with_context(|| format!("opening {}", netns.display()))?;
            // SAFETY: setns on an fd we own; it affects only this thread, which ends here.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("entering {}", netns.display()));
            }
            Ok(client_loop(addr, path, timeout, limit))
        })
        .join()
        .unwrap_or_else(|_| Err(anyhow!("the breach client thread panicked")))
    })
}

/// Requests back to back until a connection attempt times out (or `limit` passes).
fn client_loop(addr: SocketAddr, path: &str, timeout: Duration, limit: Duration) -> Vec<Attempt> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let deadline = Instant::now() + limit;
    let mut attempts = Vec::new();
    while Instant::now() < deadline && attempts.len() < MAX_ATTEMPTS {
        let start_ns = unix_now_ns();
        let outcome = one_request(addr, request.as_bytes(), timeout);
        let stop = outcome == Outcome::ConnectTimeout;
        attempts.push(Attempt { start_ns, outcome });
        if stop {
            break;
        }
    }
    attempts
}

fn one_request(addr: SocketAddr, request: &[u8], timeout: Duration) -> Outcome {
    let mut stream = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::TimedOut => return Outcome::ConnectTimeout,
        Err(e) => return Outcome::Failed(format!("connect: {e}")),
    };
    let timed_out =
        |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    let io = (|| {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(request)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        Ok::<_, std::io::Error>(response)
    })();
    match io {
        Ok(r) if r.starts_with(b"HTTP/1.1 200 ") => Outcome::Served,
        Ok(r) => Outcome::Failed(format!(
            "response {:?}",
            String::from_utf8_lossy(&r[..r.len().min(40)])
        )),
        Err(e) if timed_out(&e) => Outcome::ReadTimeout,
        Err(e) => Outcome::Failed(format!("i/o: {e}")),
    }
}

/// The `block` events for `target` so far.
fn block_events(agent: &Agent, target: &str) -> Result<Vec<Value>> {
    Ok(agent
        .events()?
        .into_iter()
        .filter(|e| e["type"] == "block" && e["target"] == target)
        .collect())
}

/// The `block` event for `target` after the first `seen`, waiting up to `timeout`.
fn wait_block_event(
    agent: &Agent,
    target: &str,
    seen: usize,
    timeout: Duration,
) -> Result<Option<Value>> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = block_events(agent, target)?.into_iter().nth(seen);
        if found.is_some() || Instant::now() > deadline {
            return Ok(found);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Parses the agent's `2026-11-27T14:15:03.450766Z` into ns since the Unix epoch.
fn parse_rfc3339_utc(s: &str) -> Option<i128> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, m, day): (i64, u32, u32) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':');
    let (hh, mm, ss): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || frac.len() > 9 {
        return None;
    }
    let frac_ns: i128 = if frac.is_empty() {
        0
    } else {
        i128::from(frac.parse::<u64>().ok()?) * 10i128.pow(9 - frac.len() as u32)
    };
    let secs = days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(i128::from(secs) * 1_000_000_000 + frac_ns)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What the breach step measured; times in ms relative to the breaching request's start.
#[derive(Debug, Clone, Default)]
struct BreachReport {
    attempts: usize,
    burst: usize,
    served_within_burst: usize,
    breach_served: bool,
    /// Block event time − breaching request start.
    event_ms: Option<f64>,
    /// Requests started after the breaching one that were still served.
    served_after_breach: usize,
    /// Of those, started after the block event.
    served_after_event: usize,
    /// Start of the first request after the breach that was not served, and what happened.
    first_unserved: Option<(f64, String)>,
    /// Start of the first connection attempt that timed out.
    first_timeout_ms: Option<f64>,
    read_timeouts: usize,
    failures: usize,
    first_failure: Option<String>,
    /// Start of the last request served, relative to the breach.
    last_served_ms: Option<f64>,
}

impl BreachReport {
    fn analyse(attempts: &[Attempt], burst: usize, event: Option<&Value>) -> Result<BreachReport> {
        ensure!(
            attempts.len() > burst,
            "the breach client made only {} requests (burst {burst}); first outcome {:?}",
            attempts.len(),
            attempts.first().map(|a| &a.outcome)
        );
        let breach = &attempts[burst];
        let rel = |ns: i128| (ns - breach.start_ns) as f64 / 1e6;
        let event_ns = match event {
            Some(e) => {
                let time = e["time"].as_str().context("block event without time")?;
                Some(
                    parse_rfc3339_utc(time)
                        .with_context(|| format!("block event time {time:?}"))?,
                )
            }
            None => None,
        };
        let after = &attempts[burst + 1..];
        let served = |a: &&Attempt| a.outcome == Outcome::Served;
        let failure = |a: &&Attempt| matches!(a.outcome, Outcome::Failed(_));
        Ok(BreachReport {
            attempts: attempts.len(),
            burst,
            served_within_burst: attempts[..burst].iter().filter(served).count(),
            breach_served: breach.outcome == Outcome::Served,
            event_ms: event_ns.map(rel),
            served_after_breach: after.iter().filter(served).count(),
            served_after_event: event_ns.map_or(0, |ev| {
                after
                    .iter()
                    .filter(served)
                    .filter(|a| a.start_ns > ev)
                    .count()
            }),
            first_unserved: after
                .iter()
                .find(|a| a.outcome != Outcome::Served)
                .map(|a| {
                    let what = match &a.outcome {
                        Outcome::ConnectTimeout => "connect timeout".to_string(),
                        Outcome::ReadTimeout => "read timeout".to_string(),
                        Outcome::Failed(e) => e.clone(),
                        Outcome::Served => unreachable!(),
                    };
                    (rel(a.start_ns), what)
                }),
            first_timeout_ms: attempts
                .iter()
                .find(|a| a.outcome == Outcome::ConnectTimeout)
                .map(|a| rel(a.start_ns)),
            read_timeouts: attempts
                .iter()
                .filter(|a| a.outcome == Outcome::ReadTimeout)
                .count(),
            failures: attempts.iter().filter(failure).count(),
            first_failure: attempts
                .iter()
                .find(failure)
                .map(|a| format!("{:?}", a.outcome)),
            last_served_ms: attempts.iter().rev().find(served).map(|a| rel(a.start_ns)),
        })
    }

    fn print(&self, run: u32) {
        let ms = |v: Option<f64>| v.map_or("not observed".into(), |v| format!("{v:+.3} ms"));
        println!(
            "     run {run}: {} requests, {}/{} of the burst served, breaching request (no. {}) \
             {}",
            self.attempts,
            self.served_within_burst,
            self.burst,
            self.burst + 1,
            if self.breach_served {
                "served"
            } else {
                "not served"
            }
        );
        println!(
            "            block event {}; {} served after the breach (last started {}, {} \
             started after the event)",
            ms(self.event_ms),
            self.served_after_breach,
            ms(self.last_served_ms),
            self.served_after_event
        );
        println!(
            "            first unserved {}{}; first connect timeout {}; {} read timeouts, {} \
             other failures{}",
            ms(self.first_unserved.as_ref().map(|u| u.0)),
            self.first_unserved
                .as_ref()
                .map_or(String::new(), |u| format!(" ({})", u.1)),
            ms(self.first_timeout_ms),
            self.read_timeouts,
            self.failures,
            self.first_failure
                .as_ref()
                .map_or(String::new(), |f| format!(" (first: {f})"))
        );
    }
}

/// "median (min..max, n of m runs)" of the observed values, in ms.
fn spread_ms(values: impl IntoIterator<Item = Option<f64>>) -> (f64, String) {
    let all: Vec<Option<f64>> = values.into_iter().collect();
    let mut seen: Vec<f64> = all.iter().flatten().copied().collect();
    if seen.is_empty() {
        return (f64::NAN, format!("not observed ({} runs)", all.len()));
    }
    seen.sort_by(f64::total_cmp);
    let med = median(&seen);
    let text = format!(
        "{med:.2} ms ({:.2}..{:.2}, {}/{} runs)",
        seen[0],
        seen[seen.len() - 1],
        seen.len(),
        all.len()
    );
    (med, text)
}

/// Median of sorted values.
fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

struct Summary {
    entries: u64,
    mode: String,
    pass: RunStats,
    drop: RunStats,
    xdp: DropRun,
    nft: DropRun,
    generator: FloodStats,
    /// `bpftool prog run` ns per run: (pass, drop).
    test_runs: Option<(u64, u64)>,
    baseline: WrkReport,
    flooded: WrkReport,
    controlled: WrkReport,
    breaches: Vec<BreachReport>,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}

/// "yes"/"no" against a goal, "-" when there is nothing to compare.
fn met(value: f64, ok: impl Fn(f64) -> bool) -> &'static str {
    if !value.is_finite() {
        "-"
    } else if ok(value) {
        "yes"
    } else {
        "no"
    }
}

fn print_summary(s: &Summary) {
    let xdp_cpu = s.xdp.cpu_per_million();
    let nft_cpu = s.nft.cpu_per_million();
    let cpu_ratio = ratio(xdp_cpu, nft_cpu);
    let softirq_ratio = ratio(
        per_million(s.xdp.flood.cpu.softirq, s.xdp.dropped),
        per_million(s.nft.flood.cpu.softirq, s.nft.dropped),
    );
    let xdp_attr = s.xdp.attributed_per_million();
    let nft_attr = s.nft.attributed_per_million();
    let attr_ratio = ratio(xdp_attr, nft_attr);
    let generator_attr = per_million(s.generator.attributed(), s.generator.sent.unwrap_or(0));
    // Only meaningful while both remainders are positive (noise can make them not).
    let receive_ratio = if xdp_attr > generator_attr && nft_attr > generator_attr {
        ratio(xdp_attr - generator_attr, nft_attr - generator_attr)
    } else {
        f64::NAN
    };
    let flood_ratio = ratio(s.flooded.requests_per_sec, s.baseline.requests_per_sec);
    let control_ratio = ratio(s.controlled.requests_per_sec, s.baseline.requests_per_sec);
    let vs_control = ratio(s.flooded.requests_per_sec, s.controlled.requests_per_sec);
    let b = &s.breaches;
    let (event_med, event_text) = spread_ms(b.iter().map(|r| r.event_ms));
    let (_, unserved_text) = spread_ms(b.iter().map(|r| r.first_unserved.as_ref().map(|u| u.0)));
    let (_, timeout_text) = spread_ms(b.iter().map(|r| r.first_timeout_ms));
    let mut served: Vec<f64> = b.iter().map(|r| r.served_after_breach as f64).collect();
    served.sort_by(f64::total_cmp);
    let served_text = format!(
        "median {} ({}..{}); {} after the event",
        median(&served),
        served.first().copied().unwrap_or(f64::NAN),
        served.last().copied().unwrap_or(f64::NAN),
        b.iter().map(|r| r.served_after_event).sum::<usize>()
    );
    let rows: Vec<(String, String, &str, &str)> = vec![
        (
            format!("1 ns/packet passed ({} entries, {})", s.entries, s.mode),
            format!("{:.1} ns", s.pass.ns_per_run()),
            "<= 100 ns",
            met(s.pass.ns_per_run(), |v| v <= 100.0),
        ),
        (
            format!("1 ns/packet dropped ({} entries, {})", s.entries, s.mode),
            format!("{:.1} ns", s.drop.ns_per_run()),
            "<= 100 ns",
            met(s.drop.ns_per_run(), |v| v <= 100.0),
        ),
        (
            "1 ns/run passed, bpftool prog run (no stats)".into(),
            s.test_runs
                .map_or("-".into(), |(pass, _)| format!("{pass} ns")),
            "",
            "",
        ),
        (
            "1 ns/run dropped, bpftool prog run (no stats)".into(),
            s.test_runs
                .map_or("-".into(), |(_, drop)| format!("{drop} ns")),
            "",
            "",
        ),
        (
            "2 CPU s per 1M dropped, XDP guard".into(),
            format!("{xdp_cpu:.3} s"),
            "",
            "",
        ),
        (
            format!("2 CPU s per 1M dropped, {}", s.nft.how),
            format!("{nft_cpu:.3} s"),
            "",
            "",
        ),
        (
            "2 ratio XDP / nftables (system+softirq)".into(),
            format!("{cpu_ratio:.3}x"),
            "<= 0.5x",
            met(cpu_ratio, |v| v <= 0.5),
        ),
        (
            "2 ratio XDP / nftables (softirq only)".into(),
            format!("{softirq_ratio:.3}x"),
            "",
            "",
        ),
        (
            "2 attributed CPU s per 1M dropped, XDP / nft".into(),
            format!("{xdp_attr:.3} / {nft_attr:.3} s"),
            "",
            "",
        ),
        (
            "2 ratio XDP / nftables (attributed)".into(),
            format!("{attr_ratio:.3}x"),
            "",
            "",
        ),
        (
            "2 attributed CPU s per 1M sent, generator alone".into(),
            format!("{generator_attr:.3} s"),
            "",
            "",
        ),
        (
            "2 ratio XDP / nftables, attributed - generator".into(),
            format!("{receive_ratio:.3}x"),
            "",
            "",
        ),
        (
            "3 req/s no flood / blocked flood".into(),
            format!(
                "{:.0} / {:.0}",
                s.baseline.requests_per_sec, s.flooded.requests_per_sec
            ),
            "",
            "",
        ),
        (
            "3 ratio blocked flood / no flood".into(),
            format!("{flood_ratio:.3}"),
            ">= 0.9",
            met(flood_ratio, |v| v >= 0.9),
        ),
        (
            "3 ratio control flood / no flood".into(),
            format!("{control_ratio:.3}"),
            "",
            "",
        ),
        (
            "3 ratio blocked flood / control flood".into(),
            format!("{vs_control:.3}"),
            "",
            "",
        ),
        (
            "4 breaching request -> block event".into(),
            event_text,
            "< 10 ms",
            met(event_med, |v| v < 10.0),
        ),
        (
            "4 requests served after the breach".into(),
            served_text,
            "",
            "",
        ),
        (
            "4 breaching request -> first unserved request".into(),
            unserved_text,
            "",
            "",
        ),
        (
            "4 breaching request -> first connect timeout".into(),
            timeout_text,
            "",
            "",
        ),
    ];
    println!();
    println!("summary (goals from the brief; nothing is asserted)");
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let vwidth = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    println!(
        "  {:<width$}  {:>vwidth$}  {:>9}  {:>4}",
        "measurement", "value", "goal", "met"
    );
    for (name, value, goal, ok) in &rows {
        println!("  {name:<width$}  {value:>vwidth$}  {goal:>9}  {ok:>4}");
    }
    println!(
        "  notes: \"CPU s\" is /proc/stat system+softirq over all CPUs during the flood (every \
         process on the host counts); \"attributed\" is hping3's own system time (its sendto \
         path plus the veth receive, XDP or nftables work run in its context) plus ksoftirqd's; \
         \"- generator\" subtracts hping3's cost when its frames die at once in a dead veth. \
         The control flood is that same generator: its share of this {}-CPU host.",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdp_attachment_from_ip_link() {
        let text =
            "2: agv12a@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 xdp qdisc noqueue\n    \
                    prog/xdp id 512 name xdp_guard tag b3abc8dfe700a656 jited";
        assert_eq!(
            parse_xdp_attachment(text),
            Some(Attachment {
                prog_id: 512,
                mode: "native".into()
            })
        );
        let generic = "mtu 1500 xdpgeneric qdisc\n prog/xdp id 7 name xdp_guard";
        assert_eq!(
            parse_xdp_attachment(generic).map(|a| (a.prog_id, a.mode)),
            Some((7, "generic".to_string()))
        );
        assert_eq!(parse_xdp_attachment("mtu 1500 qdisc noqueue"), None);
        assert_eq!(
            parse_xdp_attachment("mtu 1500 qdisc\n prog/xdp id 7 name xdp_guard"),
            None
        );
    }

    #[test]
    fn hping_and_nft_counters() {
        let hping = "\n--- 10.231.255.249 hping statistic ---\n320965 packets transmitted, \
                     0 packets received, 100% packet loss\n";
        assert_eq!(parse_hping_sent(hping), Some(320_965));
        assert_eq!(parse_hping_sent("HPING x: S set"), None);
        let nft = "table netdev t {\n\tchain ingress {\n\t\tip saddr 10.231.0.6 counter \
                   packets 42 bytes 1680 drop\n\t}\n}\n";
        assert_eq!(parse_nft_packets(nft), Some(42));
        assert_eq!(parse_nft_packets("table ip t {}"), None);
    }

    #[test]
    fn prog_fdinfo_matches_type_and_id() {
        let info = "pos:\t0\nprog_type:\t6\nprog_jited:\t1\nprog_id:\t512\nrun_time_ns:\t900\n\
                    run_cnt:\t10\n";
        assert_eq!(
            parse_prog_fdinfo(info, 512),
            Some(RunStats {
                run_time_ns: 900,
                run_cnt: 10
            })
        );
        assert_eq!(parse_prog_fdinfo(info, 513), None);
        assert_eq!(
            parse_prog_fdinfo(&info.replace("prog_type:\t6", "prog_type:\t2"), 512),
            None
        );
        let s = RunStats {
            run_time_ns: 1000,
            run_cnt: 10,
        };
        assert_eq!(s.since(&RunStats::default()).ns_per_run(), 100.0);
        assert!(RunStats::default().ns_per_run().is_nan());
    }

    #[test]
    fn test_run_output_and_frame() {
        assert_eq!(
            parse_test_run("Return value: 1, duration (average): 87ns\n"),
            Some((1, 87))
        );
        assert_eq!(parse_test_run("Error: can't run"), None);
        let f = syn_frame(Ipv4Addr::new(10, 231, 0, 6), Ipv4Addr::new(10, 231, 0, 5));
        assert_eq!(f.len(), 54);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(&f[26..30], &[10, 231, 0, 6]);
        assert_eq!(&f[30..34], &[10, 231, 0, 5]);
    }

    #[test]
    fn rfc3339_to_unix_ns() {
        assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00.000000Z"), Some(0));
        assert_eq!(
            parse_rfc3339_utc("2026-11-27T14:15:03.450766Z"),
            Some(1_795_788_903_450_766_000)
        );
        assert_eq!(
            parse_rfc3339_utc("2000-02-29T23:59:59Z"),
            Some(951_868_799_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_utc("1969-12-31T23:59:59.5Z"),
            Some(-500_000_000)
        );
        assert_eq!(parse_rfc3339_utc("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_utc("2026-11-27 14:15:03Z"), None);
    }

    #[test]
    fn stime_from_proc_stat() {
        let stat = "1234 (hp (x) 3) R 1 1234 1234 0 -1 4194560 100 0 0 0 17 42 0 0 20 0 1 0";
        assert_eq!(parse_stime_ticks(stat), Some(42));
        assert_eq!(parse_stime_ticks("garbage"), None);
        assert!(stime_seconds(std::process::id()).unwrap() >= 0.0);
        let pids = ksoftirqd_pids().unwrap();
        assert!(!pids.is_empty(), "no ksoftirqd threads found");
    }

    #[test]
    fn cpu_line_and_delta() {
        let a = parse_cpu_line("cpu  100 0 50 1000 0 0 10 0 0 0").unwrap();
        let b = parse_cpu_line("cpu  100 0 150 1000 0 0 60 0 0 0").unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let d = b.since(&a);
        assert_eq!(d.kernel(), 150.0 / hz);
        assert!(parse_cpu_line("cpu0 1 2 3").is_err());
    }

    #[test]
    fn deny_list_and_configs() {
        let addrs: Vec<Ipv4Addr> = deny_addresses(300).collect();
        assert_eq!(addrs[0], Ipv4Addr::new(100, 64, 0, 0));
        assert_eq!(addrs[299], Ipv4Addr::new(100, 64, 1, 43));
        let config = deny_config(
            42,
            &["agv1a", "agv2a"],
            Path::new("/run/netns/bx-s-1-0"),
            AttachMode::Auto,
            2,
            Ipv4Addr::new(10, 231, 0, 6),
        );
        assert!(config.contains("pids = [42]"), "{config}");
        assert!(
            config.contains(
                "interfaces = [{ name = \"agv1a\", netns = \"/run/netns/bx-s-1-0\" }, \
                 { name = \"agv2a\", netns = \"/run/netns/bx-s-1-0\" }]"
            ),
            "{config}"
        );
        assert!(
            config.contains("deny = [\"100.64.0.0\", \"100.64.0.1\", \"10.231.0.6\"]"),
            "{config}"
        );
        assert!(config.contains("max_blocks = 131072"), "{config}");
        let breach = breach_config(
            42,
            "agv1a",
            Path::new("/run/netns/x"),
            AttachMode::Native,
            "p",
            5.0,
            5,
        );
        assert!(
            breach.contains("rate = 5.0\nburst = 5\naction = \"block\""),
            "{breach}"
        );
        assert!(breach.contains("mode = \"native\""), "{breach}");
    }

    #[test]
    fn breach_analysis() {
        let at = |ms: i128, outcome: Outcome| Attempt {
            start_ns: ms * 1_000_000,
            outcome,
        };
        let attempts = vec![
            at(0, Outcome::Served),
            at(1, Outcome::Served),
            at(2, Outcome::Served),
            at(3, Outcome::Served),
            at(4, Outcome::ReadTimeout),
            at(5, Outcome::ConnectTimeout),
        ];
        let event = serde_json::json!({"type": "block", "time": "1970-01-01T00:00:00.002500Z"});
        let r = BreachReport::analyse(&attempts, 1, Some(&event)).unwrap();
        assert_eq!(r.served_within_burst, 1);
        assert!(r.breach_served);
        assert_eq!(r.event_ms, Some(1.5));
        assert_eq!(r.served_after_breach, 2);
        assert_eq!(r.served_after_event, 1);
        assert_eq!(r.first_timeout_ms, Some(4.0));
        assert_eq!(r.first_unserved, Some((3.0, "read timeout".to_string())));
        assert_eq!(r.read_timeouts, 1);
        assert_eq!(r.last_served_ms, Some(2.0));
        assert!(BreachReport::analyse(&attempts[..1], 1, None).is_err());
        let (med, text) = spread_ms([Some(3.0), None, Some(1.0), Some(2.0)]);
        assert_eq!(med, 2.0);
        assert_eq!(text, "2.00 ms (1.00..3.00, 3/4 runs)");
        assert!(spread_ms([None]).0.is_nan());
        assert_eq!(median(&[1.0, 2.0, 3.0, 4.0]), 2.5);
    }
}
