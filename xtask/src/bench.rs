//! `cargo xtask bench overhead`: what the agent costs a real HTTP server, against the floor.
//!
//! nginx (one process, `master_process off`, a 1 KiB file) runs in one namespace and the load
//! generator (wrk, or h2load for HTTP/2) in another, connected by a veth pair. Each round
//! measures the load once per variant: without the agent, with a fresh agent that captures
//! only nginx's pid, and with the *floors*: `api-guard floor` holding empty eBPF programs
//! where the agent attaches its own — every tracepoint (plus, under TLS, a uprobe +
//! uretprobe pair at each TLS site the agent chose), the TLS sites alone, and the exported
//! TLS entries alone (where the agent probed before choosing sites). The order rotates
//! between rounds so drift favours no variant.
//! Ratios are per round against that round's run without the agent; "api-guard / floor" is
//! what the agent's own work costs on top of what its hooks cost.
//!
//! `--scheme` picks the cases, each with its own rounds and summary: plain HTTP/1.1, HTTPS
//! (nginx `listen ... ssl` with a throwaway self-signed certificate, wrk over TLS; the agent
//! hooks the system libssl.so.3 that both link), HTTP/2 over TLS (`h2`: nginx
//! `listen ... ssl http2`, h2load with several streams per connection; the agent sees it
//! through the same TLS hooks, so it has the HTTPS variants), `both` (HTTP then HTTPS, the
//! default) or `all` (the three in turn). Under TLS the client's own TLS calls also pass
//! through the agent's uprobes (filtered out by pid in the kernel), which is part of what a
//! host-wide agent costs. h2load prints no latency percentiles, so the h2 case has no p99.
//! `go` measures a Go HTTPS server instead of nginx (`tests/go/tlsapp`, HTTP/1.1, a 1 KiB
//! body; Go's own `crypto/tls`, hooked by its stack-check and `ret` probes): its floors are
//! bare uprobes at the Go sites (never uretprobes, which crash Go programs).
//! `--stairs` measures the staircase from the floor to the agent instead of the extra floors
//! (see `bench_stairs.rs`).

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::bench_rate::{self, RateArgs};
use crate::bench_stairs::{self, Step};
use anyhow::{bail, ensure, Context, Result};
use integration_tests::agent::agent_binary;
use integration_tests::exchange::pid_role;
use integration_tests::golang::{GoPrograms, GoServer, Http};
use integration_tests::h2load::{self, H2loadArgs};
use integration_tests::metrics::Metrics;
use integration_tests::procfs::{bpf_map_rss_kib, cpu_seconds, peak_rss_kib};
use integration_tests::util::{die_with_parent, signal_and_wait, which};
use integration_tests::wrk::{self, WrkArgs, WrkReport};
use integration_tests::{
    require_root, Agent, AgentOptions, CommExe, NetPair, Netns, Nginx, NginxOptions, TlsCert,
};

#[derive(clap::Args, Debug)]
pub struct OverheadArgs {
    /// Rounds: each measures every variant once (no agent, the agent, the floors).
    #[arg(long, default_value_t = 5)]
    pub pairs: u32,
    /// Seconds of load per run.
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// Connections of the load generator (wrk, oha, h2load).
    #[arg(long, default_value_t = 50)]
    pub connections: u32,
    /// Load generator threads (wrk, h2load).
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// h2 case: concurrent streams per connection (h2load -m).
    #[arg(long, default_value_t = 10)]
    pub streams: u32,
    /// Size of the response body every request fetches (nginx serves it with writes, not
    /// sendfile, so the agent's copy cap decides how much of it is copied; with
    /// `--agent-config` setting `capture.max_capture_bytes` this compares response caps).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=64 << 20))]
    pub body_bytes: u64,
    /// Which cases to measure: plain HTTP/1.1, HTTPS (HTTP/1.1 over TLS), HTTP/2 over TLS
    /// (h2), `both` = http then https, `all` = http, https, h2.
    #[arg(long, value_enum, default_value_t = Scheme::Both)]
    pub scheme: Scheme,
    /// Extra agent configuration (TOML file) appended to the bench's own, for experiments
    /// such as `[tls]\nenabled = false`.
    #[arg(long, value_name = "FILE")]
    pub agent_config: Option<std::path::PathBuf>,
    /// Skip the floor variants (only without and with the agent).
    #[arg(long)]
    pub no_floor: bool,
    /// Turn on `kernel.bpf_stats_enabled` and report the agent's BPF time per request (the
    /// kernel then times every program run, which costs a little itself).
    #[arg(long)]
    pub bpf_stats: bool,
    /// Fixed-rate mode: `oha` sends this many requests per second (open loop, latency
    /// corrected) instead of wrk saturating nginx; compare CPU per request and p99 at one rate.
    /// HTTP/1.1 cases only (not with `--scheme h2|all`).
    #[arg(long, value_name = "REQ_PER_SEC")]
    pub rate: Option<u32>,
    /// Also measure the agent in cluster mode (`cluster` variant): a local redis-server and a
    /// cluster-scope policy counting every request (never breached). Reports the p99 it adds
    /// to the agent without cluster and its Redis round trips per 1,000 requests.
    #[arg(long)]
    pub cluster: bool,
    /// Also have the agent write its exchanges file (an output it does not write by default:
    /// serializing every exchange to JSON costs it CPU) and check each exchange's HTTP
    /// version in it. Without it the agent runs with its default outputs.
    #[arg(long)]
    pub exchanges: bool,
    /// Every request POSTs about 1 KiB of JSON whose values no earlier request carried
    /// (`bench_post_json.lua`; nginx reads the body and answers 201): detection then judges
    /// fresh values at the bench rate, and the summary shows what its thread had to skip.
    /// HTTP/1.1 over wrk only (`--scheme http|https|both`, not with `--rate`).
    #[arg(long)]
    pub post_json: bool,
    /// The staircase from the floor to the agent: no agent, the floor, `drain` (`api-guard
    /// floor --drain`: the agent's own programs and ring reader, every record dropped
    /// unparsed), `parse` (the agent with detection, discovery and LLM recognition off) and
    /// the agent, with a table of what each step adds (the TLS-site and raw floors are left
    /// out). `--agent-config` applies to the drain and both agents.
    #[arg(long, conflicts_with = "no_floor")]
    pub stairs: bool,
    /// Also measure another api-guard binary (an older build) as the `base` variant, with
    /// the same configuration, in every round next to the agent: before/after in one run,
    /// where the machine's drift between two runs would otherwise swamp the difference.
    /// The summary prints api-guard / base.
    #[arg(long, value_name = "BIN")]
    pub compare: Option<std::path::PathBuf>,
}

/// What the `parse` step turns off: every analysis the agent runs on parsed exchanges.
const ANALYSIS_OFF: &str =
    "[detect]\nenabled = false\n[discover]\nenabled = false\n[llm]\nenabled = false\n";

/// The wrk script of `--post-json`.
const POST_JSON_SCRIPT: &str = include_str!("bench_post_json.lua");

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
    H2,
    /// http, then https.
    Both,
    /// http, https, then h2.
    All,
    /// A Go HTTPS server (HTTP/1.1 over Go's crypto/tls).
    Go,
}

impl Scheme {
    /// The cases to measure, in order.
    fn cases(self) -> &'static [Case] {
        match self {
            Scheme::Http => &[Case::Http],
            Scheme::Https => &[Case::Https],
            Scheme::H2 => &[Case::H2],
            Scheme::Both => &[Case::Http, Case::Https],
            Scheme::All => &[Case::Http, Case::Https, Case::H2],
            Scheme::Go => &[Case::GoHttps],
        }
    }
}

/// One server + load generator combination, measured with its own variants and summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    /// HTTP/1.1 in cleartext (wrk).
    Http,
    /// HTTP/1.1 over TLS (wrk).
    Https,
    /// HTTP/2 over TLS, ALPN h2 (h2load).
    H2,
    /// HTTP/1.1 over TLS to a Go server (wrk).
    GoHttps,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Http => "http",
            Case::Https => "https",
            Case::H2 => "h2",
            Case::GoHttps => "go",
        }
    }

    fn tls(self) -> bool {
        self != Case::Http
    }

    /// The exchanges' `version` field for this case's requests.
    fn version(self) -> &'static str {
        match self {
            Case::Http | Case::Https | Case::GoHttps => "1.1",
            Case::H2 => "2",
        }
    }
}

const REQUESTS: &str = "apiguard_http_requests_total";
const LOST: &str = "apiguard_http_exchanges_lost_total";
const DROPPED: &str = "apiguard_capture_dropped_total";
const DETECT_SKIPPED: &str = "apiguard_detect_exchanges_skipped_total";
const DISCOVER_SKIPPED: &str = "apiguard_discover_exchanges_skipped_total";
const DETECTIONS: &str = "apiguard_detections_total";

/// Which TLS sites a floor probes (`api-guard floor --tls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlsSites {
    Chosen,
    Exported,
}

/// One configuration measured in every round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Off,
    Agent,
    /// The agent in cluster mode (`--cluster`).
    AgentCluster,
    Floor {
        tracepoints: bool,
        tls: Option<TlsSites>,
    },
    /// Empty programs on the raw `sys_enter`/`sys_exit` tracepoints instead of the agent's.
    RawFloor,
    /// `api-guard floor --drain`: the agent's programs and ring reader, no parsing (`--stairs`).
    Drain,
    /// The agent with its analysis off: capture and parsing (`--stairs`).
    AgentParse,
    /// Another agent binary, configured as the agent (`--compare`).
    AgentBase,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Off => "off",
            Variant::Agent => "api-guard",
            Variant::AgentCluster => "cluster",
            Variant::Floor {
                tracepoints: true,
                tls: None,
            } => "floor",
            Variant::Floor {
                tracepoints: true,
                tls: Some(_),
            } => "floor",
            Variant::Floor {
                tracepoints: false,
                tls: Some(TlsSites::Chosen),
            } => "tls-sites",
            Variant::Floor {
                tracepoints: false,
                tls: Some(TlsSites::Exported),
            } => "tls-entries",
            Variant::Floor { .. } => "empty",
            Variant::RawFloor => "raw-floor",
            Variant::Drain => "drain",
            Variant::AgentParse => "parse",
            Variant::AgentBase => "base",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Variant::Off => "no agent",
            Variant::Agent => "api-guard, capturing nginx's pid",
            Variant::AgentCluster => {
                "api-guard in cluster mode: local redis-server, a cluster-scope policy per client"
            }
            Variant::Floor {
                tracepoints: true,
                tls: None,
            } => "empty programs on the agent's tracepoints (its floor)",
            Variant::Floor {
                tracepoints: true,
                tls: Some(_),
            } => "empty programs on the agent's tracepoints and TLS sites (its floor)",
            Variant::Floor {
                tracepoints: false,
                tls: Some(TlsSites::Chosen),
            } => "empty uprobe+uretprobe pairs at the TLS sites the agent chose",
            Variant::Floor {
                tracepoints: false,
                tls: Some(TlsSites::Exported),
            } => "empty uprobe+uretprobe pairs at the exported TLS entries",
            Variant::Floor { .. } => "nothing attached",
            Variant::RawFloor => {
                "empty programs on the raw sys_enter/sys_exit tracepoints (every syscall)"
            }
            Variant::Drain => {
                "the agent's programs, loader and ring reader; records counted and dropped, \
                 not parsed (api-guard floor --drain)"
            }
            Variant::AgentParse => {
                "api-guard capturing nginx's pid, detection, discovery and LLM recognition off"
            }
            Variant::AgentBase => "the --compare binary, configured as api-guard",
        }
    }

    /// The agent with everything on (the runs the summary's agent lines are about).
    fn full_agent(self) -> bool {
        matches!(self, Variant::Agent | Variant::AgentCluster)
    }
}

/// `variants` with the `base` variant (`--compare`) right after the agent's.
fn with_base(mut variants: Vec<Variant>, base: bool) -> Vec<Variant> {
    if let Some(i) = variants
        .iter()
        .position(|&v| v == Variant::Agent)
        .filter(|_| base)
    {
        variants.insert(i + 1, Variant::AgentBase);
    }
    variants
}

/// The variants of one case, in the order of the first round: with `stairs`, the staircase
/// from the floor up.
fn variants(tls: bool, floors: bool, cluster: bool, stairs: bool) -> Vec<Variant> {
    if stairs {
        let mut v = vec![
            Variant::Off,
            Variant::Floor {
                tracepoints: true,
                tls: tls.then_some(TlsSites::Chosen),
            },
            Variant::Drain,
            Variant::AgentParse,
            Variant::Agent,
        ];
        if cluster {
            v.push(Variant::AgentCluster);
        }
        return v;
    }
    let mut v = vec![Variant::Off, Variant::Agent];
    if cluster {
        v.push(Variant::AgentCluster);
    }
    if floors {
        v.push(Variant::Floor {
            tracepoints: true,
            tls: tls.then_some(TlsSites::Chosen),
        });
        if !tls {
            v.push(Variant::RawFloor);
        }
        if tls {
            for sites in [TlsSites::Chosen, TlsSites::Exported] {
                v.push(Variant::Floor {
                    tracepoints: false,
                    tls: Some(sites),
                });
            }
        }
    }
    v
}

/// What the agent did during one run.
struct AgentStats {
    /// Server-side exchanges (`apiguard_http_requests_total{role="server"}`).
    captured: u64,
    /// Server exchanges of nginx with the case's HTTP version in the exchanges file
    /// (counted after the agent stopped; `None` without `--exchanges`).
    captured_version: Option<u64>,
    lost: u64,
    /// Capture drops (ring buffer full, tables full, …), calls past the copy cap excluded.
    dropped: u64,
    /// Calls longer than the copy cap (their size is reported, the rest of their bytes not copied).
    truncated: u64,
    /// Exchanges the detection / discovery threads had no queue room for.
    detect_skipped: u64,
    discover_skipped: u64,
    /// Findings raised: on content (the bench's requests carry no attack, so any is a false
    /// positive) and of kind `flood` (one load generator at this rate is one).
    findings: u64,
    floods: u64,
    /// CPU seconds from just before the load until the agent had drained it.
    cpu_s: f64,
    /// CPU seconds over the agent's whole life, startup (loading probes) included.
    cpu_total_s: f64,
    peak_rss_kib: u64,
    /// Resident KiB of the agent's BPF map mappings (the ring buffer, mapped twice) at the
    /// end of the load.
    bpf_map_rss_kib: u64,
    /// The agent's BPF programs' run time during the load (0 without `--bpf-stats`).
    bpf_ns: u64,
    /// Redis round trips of the cluster task during the load (cluster variant).
    cluster_ops: u64,
}

/// What `api-guard floor --drain` took out of the ring during one run.
struct DrainStats {
    records: u64,
    bytes: u64,
    /// Kernel drops (ring buffer full, tables full, failed copies), truncated calls excluded.
    dropped: u64,
    /// CPU seconds of the drain process from just before the load until it had drained it.
    cpu_s: f64,
}

struct Run {
    round: u32,
    variant: Variant,
    wrk: WrkReport,
    /// nginx's CPU seconds during the load (BPF programs run in its context included).
    nginx_cpu_s: f64,
    /// The load generator's CPU seconds, and the whole machine's busy CPU seconds, during
    /// the load.
    wrk_cpu_s: f64,
    busy_cpu_s: f64,
    agent: Option<AgentStats>,
    drain: Option<DrainStats>,
    /// Run time of the BPF programs of the agent or the floor during the load, per program
    /// (`--bpf-stats`; empty otherwise and for the run without either).
    bpf: ProgTimes,
}

/// Run time and run count of each BPF program a process holds, by program id, and the
/// programs' names (read while the process holds them: their ids go with it).
#[derive(Default, Clone)]
struct ProgTimes(
    std::collections::BTreeMap<u32, (u64, u64)>,
    std::collections::BTreeMap<u32, String>,
);

impl ProgTimes {
    /// From `/proc/PID/fdinfo` of the process's program fds (each program once; both figures
    /// stay 0 unless `kernel.bpf_stats_enabled` is 1).
    fn of(pid: u32) -> Result<ProgTimes> {
        let mut progs = std::collections::BTreeMap::new();
        let dir = format!("/proc/{pid}/fd");
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
            let entry = entry?;
            if !std::fs::read_link(entry.path())
                .is_ok_and(|t| t.to_string_lossy() == "anon_inode:bpf-prog")
            {
                continue;
            }
            let fd = entry.file_name().to_string_lossy().into_owned();
            // Closed meanwhile: not counted.
            let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")) else {
                continue;
            };
            let field = |key: &str| -> Option<u64> {
                info.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.trim().parse().ok())
            };
            if let Some(id) = field("prog_id:") {
                let times = (
                    field("run_time_ns:").unwrap_or(0),
                    field("run_cnt:").unwrap_or(0),
                );
                progs.insert(id as u32, times);
            }
        }
        Ok(ProgTimes(progs, Default::default()))
    }

    /// What ran between `before` and `self`, with the programs' names if anything ran.
    fn since(&self, before: &ProgTimes) -> ProgTimes {
        let progs = self
            .0
            .iter()
            .map(|(&id, &(ns, runs))| {
                let (ns0, runs0) = before.0.get(&id).copied().unwrap_or_default();
                (id, (ns.saturating_sub(ns0), runs.saturating_sub(runs0)))
            })
            .collect();
        let mut times = ProgTimes(progs, Default::default());
        if times.ns() > 0 {
            times.1 = prog_names();
        }
        times
    }

    fn ns(&self) -> u64 {
        self.0.values().map(|&(ns, _)| ns).sum()
    }
}

/// Program names by id, from `bpftool -j prog show` (fdinfo has no name); empty without
/// bpftool.
fn prog_names() -> std::collections::BTreeMap<u32, String> {
    let Ok(out) = Command::new("bpftool")
        .args(["-j", "prog", "show"])
        .stderr(Stdio::null())
        .output()
    else {
        return Default::default();
    };
    let Ok(serde_json::Value::Array(progs)) = serde_json::from_slice(&out.stdout) else {
        return Default::default();
    };
    progs
        .iter()
        .filter_map(|p| Some((p["id"].as_u64()? as u32, p["name"].as_str()?.to_string())))
        .collect()
}

pub fn overhead(args: &OverheadArgs) -> Result<()> {
    require_root()?;
    ensure!(args.pairs >= 1, "--pairs must be at least 1");
    ensure!(args.duration >= 1, "--duration must be at least 1 second");
    ensure!(
        args.threads >= 1 && args.connections >= args.threads,
        "need at least one thread and one connection per thread"
    );
    let cases = args.scheme.cases();
    if cases.iter().any(|c| *c != Case::H2) {
        which("wrk").context("install wrk (cargo xtask setup)")?;
    }
    if cases.contains(&Case::H2) {
        which("h2load").context("install h2load, Debian's nghttp2-client (cargo xtask setup)")?;
        ensure!(
            args.rate.is_none(),
            "--rate has no HTTP/2 load (oha runs HTTP/1.1 here): use --scheme http|https|both"
        );
        ensure!(args.streams >= 1, "--streams must be at least 1");
    }
    if args.post_json {
        ensure!(
            args.rate.is_none() && cases.iter().all(|c| matches!(c, Case::Http | Case::Https)),
            "--post-json drives wrk with a script: use it with --scheme http|https|both, without --rate"
        );
    }
    let bin = agent_binary(&AgentOptions::default())?;
    println!("agent: {}", bin.display());
    if let Some(base) = &args.compare {
        ensure!(base.is_file(), "--compare: no binary at {}", base.display());
        println!("base (--compare): {}", base.display());
    }
    // Lives as long as the runs that read it (the post script, the drain's configuration).
    let script_dir = integration_tests::util::TempDir::new("bench-overhead")?;
    let script = if args.post_json {
        let path = script_dir.join("post_json.lua");
        std::fs::write(&path, POST_JSON_SCRIPT)
            .with_context(|| format!("writing {}", path.display()))?;
        Some(path)
    } else {
        None
    };
    let _stats = args.bpf_stats.then(BpfStats::enable).transpose()?;

    let net = NetPair::new("agbench")?;
    let cert = if cases.iter().any(|c| c.tls()) {
        Some(TlsCert::generate("api-guard-bench")?)
    } else {
        None
    };
    let duration = Duration::from_secs(args.duration);
    let h2 = Load::H2load(H2loadArgs {
        threads: args.threads,
        clients: args.connections,
        streams: args.streams,
        duration,
    });
    let http1 = match args.rate {
        None => Load::Wrk(WrkArgs {
            threads: args.threads,
            connections: args.connections,
            duration,
            latency: true,
            script,
        }),
        Some(rate) => {
            ensure!(rate >= 1, "--rate must be at least 1");
            Load::Rate(RateArgs {
                oha: bench_rate::ensure_oha()?,
                rate,
                connections: args.connections,
                duration: Duration::from_secs(args.duration),
            })
        }
    };
    let extra = match &args.agent_config {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => String::new(),
    };
    // Kept alive for every case; its port goes into the cluster variant's configuration.
    let redis = args
        .cluster
        .then(integration_tests::redis::RedisServer::start)
        .transpose()?;
    let cluster_config = redis.as_ref().map_or(String::new(), |r| {
        format!(
            "[cluster]\nredis_url = {:?}\nnode_name = \"bench\"\n\
             [[enforce.policies]]\nname = \"bench-cluster\"\nkey = \"client_ip\"\n\
             rate = 1000000.0\nburst = 1000000\nscope = \"cluster\"\n",
            r.url()
        )
    });
    let mut measured = Vec::new();
    let body = [("body", args.body_bytes as usize)];
    for &case in cases {
        let listen = net.server_addr()?;
        if case == Case::GoHttps {
            let cert = cert.as_ref().context("the go case has a certificate")?;
            let go = GoPrograms::get()?;
            let exe = CommExe::new(&go.tlsapp, "agbench-go")?;
            let server = GoServer::https(&net.srv, &exe, listen, cert, Http::H1)?;
            let bench = Bench {
                case,
                server: (
                    server.pid(),
                    format!("https://{listen}/body?size={}", args.body_bytes),
                    "go",
                ),
                ns_cli: &net.cli,
                load: &http1,
                extra_config: &extra,
                scratch: script_dir.path(),
                exchanges: args.exchanges,
                cluster_config: &cluster_config,
                bin: &bin,
                compare: args.compare.as_deref(),
            };
            let variants = with_base(
                variants(true, !args.no_floor, args.cluster, args.stairs),
                args.compare.is_some(),
            );
            let runs = bench.measure(&variants, args.pairs)?;
            print_summary(case, &http1, &variants, &runs);
            if args.stairs {
                print_stairs(case, &variants, &runs);
            }
            measured.push((case, variants, runs));
            continue;
        }
        let nginx = match cert.as_ref().filter(|_| case.tls()) {
            None => Nginx::start(&net.srv, listen, &body)?,
            Some(cert) => Nginx::start_tls(
                &net.srv,
                listen,
                &body,
                NginxOptions {
                    http2: case == Case::H2,
                    ..NginxOptions::default()
                },
                cert,
            )?,
        };
        let load = if case == Case::H2 { &h2 } else { &http1 };
        // The script names its own path; the URL gives wrk the scheme, host and port.
        let path = if args.post_json { "/upload" } else { "/body" };
        let bench = Bench {
            case,
            server: (nginx.pid(), nginx.url(path), "nginx"),
            ns_cli: &net.cli,
            load,
            extra_config: &extra,
            scratch: script_dir.path(),
            exchanges: args.exchanges,
            cluster_config: &cluster_config,
            bin: &bin,
            compare: args.compare.as_deref(),
        };
        let variants = with_base(
            variants(case.tls(), !args.no_floor, args.cluster, args.stairs),
            args.compare.is_some(),
        );
        let runs = bench.measure(&variants, args.pairs)?;
        print_summary(case, load, &variants, &runs);
        if args.stairs {
            print_stairs(case, &variants, &runs);
        }
        measured.push((case, variants, runs));
    }
    println!();
    println!("side by side (median per-round req/s ratio to the run without the agent):");
    for (case, variants, runs) in &measured {
        let cells: Vec<String> = variants[1..]
            .iter()
            .map(|&v| format!("{} {:.3}", v.label(), median(ratios(runs, v, Variant::Off))))
            .collect();
        let floor = variants.iter().copied().find(|v| v.label() == "floor");
        let to_floor = floor.map_or(String::new(), |f| {
            format!(
                "; api-guard / floor {:.3}",
                median(ratios(runs, Variant::Agent, f))
            )
        });
        println!("  {:<6} {}{to_floor}", case.name(), cells.join(", "));
    }
    Ok(())
}

/// The load of every run of a case: wrk as fast as nginx answers, oha at a fixed rate, or
/// (HTTP/2) h2load as fast as nginx answers.
enum Load {
    Wrk(WrkArgs),
    Rate(RateArgs),
    H2load(H2loadArgs),
}

impl Load {
    /// The load generator's name, for the report.
    fn tool(&self) -> &'static str {
        match self {
            Load::Wrk(_) => "wrk",
            Load::Rate(_) => "oha",
            Load::H2load(_) => "h2load",
        }
    }

    /// Requests one run may leave in flight when it stops (served, maybe captured, but not
    /// counted as completed): one per connection, or one per stream under HTTP/2.
    fn in_flight(&self) -> u64 {
        match self {
            Load::Wrk(w) => u64::from(w.connections),
            Load::Rate(r) => u64::from(r.connections),
            Load::H2load(h) => u64::from(h.clients) * u64::from(h.streams),
        }
    }

    fn describe(&self) -> String {
        match self {
            Load::Wrk(w) => format!(
                "wrk -t{} -c{} -d{}s --latency",
                w.threads,
                w.connections,
                w.duration.as_secs()
            ),
            Load::Rate(r) => format!(
                "oha -q {} -c {} -z {}s --latency-correction (fixed rate)",
                r.rate,
                r.connections,
                r.duration.as_secs()
            ),
            Load::H2load(h) => format!(
                "h2load -t{} -c{} -m{} -D{}s (HTTP/2 over TLS)",
                h.threads,
                h.clients,
                h.streams,
                h.duration.as_secs()
            ),
        }
    }

    fn run(&self, ns: &Netns, url: &str) -> Result<WrkReport> {
        match self {
            Load::Wrk(w) => wrk::run(ns, url, w),
            Load::Rate(r) => bench_rate::run(ns, url, r),
            Load::H2load(h) => Ok(h2load::run(ns, url, h)?.report),
        }
    }

    /// A one-second version, to warm up.
    fn warm_up(&self) -> Load {
        match self {
            Load::Wrk(w) => Load::Wrk(WrkArgs {
                duration: Duration::from_secs(1),
                ..w.clone()
            }),
            Load::Rate(r) => Load::Rate(RateArgs {
                duration: Duration::from_secs(1),
                ..r.clone()
            }),
            Load::H2load(h) => Load::H2load(H2loadArgs {
                duration: Duration::from_secs(1),
                ..h.clone()
            }),
        }
    }
}

/// What every run of one case shares.
struct Bench<'a> {
    case: Case,
    /// The measured server: pid, the URL loaded, its name.
    server: (u32, String, &'static str),
    ns_cli: &'a Netns,
    load: &'a Load,
    extra_config: &'a str,
    /// Where the drain's configuration file is written.
    scratch: &'a Path,
    /// Write and check the exchanges file (`--exchanges`).
    exchanges: bool,
    /// Appended for the cluster variant.
    cluster_config: &'a str,
    bin: &'a Path,
    /// The `base` variant's binary (`--compare`).
    compare: Option<&'a Path>,
}

impl Bench<'_> {
    /// Warms nginx up, then measures `rounds` rounds of every variant, printing each row.
    fn measure(&self, variants: &[Variant], rounds: u32) -> Result<Vec<Run>> {
        let url = self.server.1.clone();
        let load = self.load;
        println!();
        println!(
            "{} pid {} at {url}; {} from {}",
            self.server.2,
            self.server.0,
            load.describe(),
            self.ns_cli.name()
        );
        for v in variants {
            println!("  {:<11} {}", v.label(), v.describe());
        }
        // Warm caches, the TCP stack and nginx before anything is recorded.
        load.warm_up().run(self.ns_cli, &url)?;

        println!();
        println!(
            "{:>5}  {:<11}  {:>9}  {:>9}  {:>7}  {:>11}  {:>9}  {:>6}  {:>7}  {:>11}  {:>8}  {:>10}",
            "round",
            "variant",
            "req/s",
            "requests",
            "p99 ms",
            "nginx us/req",
            "captured",
            "lost",
            "dropped",
            "agent us/req",
            "peak MiB",
            "bpf ns/req"
        );
        let mut runs = Vec::new();
        for round in 1..=rounds {
            // Rotate: every variant takes every position over the rounds.
            let shift = (round as usize - 1) % variants.len();
            for &variant in variants[shift..].iter().chain(&variants[..shift]) {
                let run = self.run(&url, round, variant)?;
                print_row(&run, load.tool());
                runs.push(run);
            }
        }
        Ok(runs)
    }

    fn run(&self, url: &str, round: u32, variant: Variant) -> Result<Run> {
        let nginx = self.server.0;
        // `bpf_pid`: the process holding the programs whose run time is measured (the agent
        // or the floor).
        let timed = |agent: Option<&Agent>, bpf_pid: Option<u32>| -> Result<Timed> {
            let before = agent.map(|a| a.metrics()).transpose()?;
            let agent_cpu = agent.map(|a| cpu_seconds(a.pid())).transpose()?;
            let progs = bpf_pid.map(ProgTimes::of).transpose()?;
            let cpu = cpu_seconds(nginx)?;
            let busy = bench_stairs::busy_seconds()?;
            let load_cpu = bench_stairs::children_cpu_seconds();
            let report = self.load.run(self.ns_cli, url)?;
            let wrk_cpu_s = bench_stairs::children_cpu_seconds() - load_cpu;
            let busy_cpu_s = bench_stairs::busy_seconds()? - busy;
            let nginx_cpu = cpu_seconds(nginx)? - cpu;
            let progs = match (bpf_pid, progs) {
                (Some(pid), Some(before)) => ProgTimes::of(pid)?.since(&before),
                _ => ProgTimes::default(),
            };
            let mut timed = Timed {
                wrk: report,
                nginx_cpu_s: nginx_cpu,
                wrk_cpu_s,
                busy_cpu_s,
                agent: None,
                bpf: progs,
            };
            let Some(agent) = agent else {
                return Ok(timed);
            };
            let after = drained_metrics(agent)?;
            let before = before.unwrap_or_default();
            let cpu_after = cpu_seconds(agent.pid())?;
            let delta = |name: &str, labels: &[(&str, &str)]| {
                (after.sum(name, labels) - before.sum(name, labels)).max(0.0) as u64
            };
            timed.agent = Some(AgentStats {
                captured: delta(REQUESTS, &[("role", "server")]),
                captured_version: None,
                lost: delta(LOST, &[]),
                // Calls longer than the copy cap are reported, not lost: counted apart.
                dropped: delta(DROPPED, &[])
                    .saturating_sub(delta(DROPPED, &[("reason", "truncated")])),
                truncated: delta(DROPPED, &[("reason", "truncated")]),
                detect_skipped: delta(DETECT_SKIPPED, &[]),
                discover_skipped: delta(DISCOVER_SKIPPED, &[]),
                findings: delta(DETECTIONS, &[])
                    .saturating_sub(delta(DETECTIONS, &[("kind", "flood")])),
                floods: delta(DETECTIONS, &[("kind", "flood")]),
                cpu_s: cpu_after - agent_cpu.unwrap_or(0.0),
                cpu_total_s: cpu_after,
                peak_rss_kib: peak_rss_kib(agent.pid())?,
                bpf_map_rss_kib: bpf_map_rss_kib(agent.pid())?,
                bpf_ns: timed.bpf.ns(),
                cluster_ops: delta("apiguard_cluster_operations_total", &[]),
            });
            Ok(timed)
        };
        let mut drain = None;
        let timed = match variant {
            Variant::Off => timed(None, None)?,
            Variant::Agent | Variant::AgentCluster | Variant::AgentParse | Variant::AgentBase => {
                let more = match variant {
                    Variant::AgentCluster => self.cluster_config,
                    Variant::AgentParse => ANALYSIS_OFF,
                    _ => "",
                };
                let mut agent = Agent::start(AgentOptions {
                    config_toml: Some(format!(
                        "[capture]\npids = [{nginx}]\n{}\n{more}",
                        self.extra_config
                    )),
                    no_exchanges_file: !self.exchanges,
                    bin: self
                        .compare
                        .filter(|_| variant == Variant::AgentBase)
                        .map(Path::to_path_buf),
                    ..AgentOptions::default()
                })?;
                let mut result = timed(Some(&agent), Some(agent.pid()))?;
                let status = agent.stop()?;
                ensure!(
                    status.success(),
                    "api-guard exited with {status}:\n{}",
                    agent.stderr_tail(20)
                );
                // The exchanges file is whole once the agent has stopped.
                let server = pid_role(nginx, "server");
                let version = self.case.version();
                if let Some(stats) = result.agent.as_mut().filter(|_| self.exchanges) {
                    stats.captured_version = Some(
                        agent.count_exchanges(|e| server(e) && e["version"] == version)? as u64,
                    );
                }
                result
            }
            Variant::Drain => {
                // The agent's configuration, less what only its analysis reads.
                let config = self.scratch.join("drain.toml");
                std::fs::write(
                    &config,
                    format!("[capture]\npids = [{nginx}]\n{}\n", self.extra_config),
                )
                .with_context(|| format!("writing {}", config.display()))?;
                let mut floor = Floor::drain(self.bin, &config)?;
                let pid = floor.child.id();
                let cpu = cpu_seconds(pid)?;
                let result = timed(None, Some(pid))?;
                // The reader drains the ring every 10 ms: what the load left is read by now.
                thread::sleep(Duration::from_millis(200));
                let cpu_s = cpu_seconds(pid)? - cpu;
                let report = floor.stop_drained()?;
                let kernel = |stat: &str| report["kernel"][stat].as_u64().unwrap_or(0);
                drain = Some(DrainStats {
                    records: report["records"].as_u64().unwrap_or(0),
                    bytes: report["bytes"].as_u64().unwrap_or(0),
                    dropped: ["RingbufFull", "ConnTableFull", "StashTableFull", "ReadFail"]
                        .into_iter()
                        .map(kernel)
                        .sum(),
                    cpu_s,
                });
                result
            }
            Variant::Floor { tracepoints, tls } => {
                let mut floor = Floor::start(self.bin, tracepoints, false, tls, nginx)?;
                let result = timed(None, Some(floor.child.id()))?;
                floor.stop()?;
                result
            }
            Variant::RawFloor => {
                let mut floor = Floor::start(self.bin, false, true, None, nginx)?;
                let result = timed(None, Some(floor.child.id()))?;
                floor.stop()?;
                result
            }
        };
        Ok(Run {
            round,
            variant,
            wrk: timed.wrk,
            nginx_cpu_s: timed.nginx_cpu_s,
            wrk_cpu_s: timed.wrk_cpu_s,
            busy_cpu_s: timed.busy_cpu_s,
            agent: timed.agent,
            drain,
            bpf: timed.bpf,
        })
    }
}

/// What one run of the load measured.
struct Timed {
    wrk: WrkReport,
    nginx_cpu_s: f64,
    wrk_cpu_s: f64,
    busy_cpu_s: f64,
    agent: Option<AgentStats>,
    bpf: ProgTimes,
}

/// `api-guard floor` running: empty programs on the agent's hooks, or (`--drain`) the
/// agent's own programs and ring reader.
struct Floor {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Floor {
    fn start(
        bin: &Path,
        tracepoints: bool,
        raw_syscalls: bool,
        tls: Option<TlsSites>,
        pid: u32,
    ) -> Result<Floor> {
        let mut cmd = Command::new(bin);
        cmd.arg("floor");
        if tracepoints {
            cmd.arg("--tracepoints");
        }
        if raw_syscalls {
            cmd.arg("--raw-syscalls");
        }
        if let Some(sites) = tls {
            let sites = match sites {
                TlsSites::Chosen => "chosen",
                TlsSites::Exported => "exported",
            };
            cmd.args(["--tls", sites, "--pid", &pid.to_string()]);
        }
        let (mut floor, line) = Floor::spawn(cmd)?;
        if tls.is_some() && line.contains(" 0 uprobes") {
            floor.stop()?;
            bail!(
                "api-guard floor found no TLS library in nginx ({})",
                line.trim()
            );
        }
        Ok(floor)
    }

    /// `api-guard floor --drain --config FILE`.
    fn drain(bin: &Path, config: &Path) -> Result<Floor> {
        let mut cmd = Command::new(bin);
        cmd.args(["floor", "--drain", "--config"]).arg(config);
        Ok(Floor::spawn(cmd)?.0)
    }

    /// Starts it and waits for its `floor ready` line (returned).
    fn spawn(mut cmd: Command) -> Result<(Floor, String)> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        die_with_parent(&mut cmd, libc::SIGTERM);
        let mut child = cmd.spawn().context("starting api-guard floor")?;
        let stdout = child.stdout.take().context("floor stdout")?;
        let mut floor = Floor {
            child,
            stdout: BufReader::new(stdout),
        };
        let mut line = String::new();
        floor.stdout.read_line(&mut line)?;
        if !line.starts_with("floor ready") {
            floor.stop()?;
            bail!("api-guard floor did not start (printed {line:?})");
        }
        Ok((floor, line))
    }

    fn stop(&mut self) -> Result<()> {
        signal_and_wait(&mut self.child, libc::SIGTERM, Duration::from_secs(10))?;
        Ok(())
    }

    /// Stops a drain and returns its `floor drained` report.
    fn stop_drained(&mut self) -> Result<serde_json::Value> {
        self.stop()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let json = line
            .strip_prefix("floor drained: ")
            .with_context(|| format!("api-guard floor --drain ended with {line:?}"))?;
        serde_json::from_str(json).context("parsing the drain's report")
    }
}

/// `kernel.bpf_stats_enabled` on for the bench, restored after.
struct BpfStats {
    was: String,
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    fn enable() -> Result<BpfStats> {
        let was =
            std::fs::read_to_string(BPF_STATS).with_context(|| format!("reading {BPF_STATS}"))?;
        std::fs::write(BPF_STATS, "1").with_context(|| format!("writing {BPF_STATS}"))?;
        Ok(BpfStats { was })
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(BPF_STATS, self.was.trim());
    }
}

/// Metrics once the agent has worked through the load: the server-side and lost
/// counters have not moved for a second (at most 15 s).
fn drained_metrics(agent: &Agent) -> Result<Metrics> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = None;
    let mut since = Instant::now();
    loop {
        let m = agent.metrics()?;
        let now = (m.sum(REQUESTS, &[("role", "server")]), m.sum(LOST, &[]));
        if last != Some(now) {
            last = Some(now);
            since = Instant::now();
        } else if since.elapsed() >= Duration::from_secs(1) || Instant::now() > deadline {
            return Ok(m);
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn print_row(run: &Run, tool: &str) {
    let w = &run.wrk;
    let p99 = w.p99_ms.map_or("-".into(), |v| format!("{v:.2}"));
    let nginx_us = per_request(run.nginx_cpu_s * 1e6, w.requests);
    let start = format!(
        "{:>5}  {:<11}  {:>9.0}  {:>9}  {:>7}  {:>11.2}",
        run.round,
        run.variant.label(),
        w.requests_per_sec,
        w.requests,
        p99,
        nginx_us
    );
    if let Some(d) = &run.drain {
        // The drain's records in the captured column, its process's CPU in the agent's.
        println!(
            "{start}  {:>9}  {:>6}  {:>7}  {:>11.2}  {:>8}  {:>10.0}",
            d.records,
            "-",
            d.dropped,
            per_request(d.cpu_s * 1e6, w.requests),
            "-",
            per_request(run.bpf.ns() as f64, w.requests),
        );
        return;
    }
    match &run.agent {
        // A floor's empty programs have a run time too.
        None if !run.bpf.0.is_empty() => println!(
            "{start}  {:>9}  {:>6}  {:>7}  {:>11}  {:>8}  {:>10.0}",
            "-",
            "-",
            "-",
            "-",
            "-",
            per_request(run.bpf.ns() as f64, w.requests),
        ),
        None => println!(
            "{start}  {:>9}  {:>6}  {:>7}  {:>11}  {:>8}  {:>10}",
            "-", "-", "-", "-", "-", "-"
        ),
        Some(a) => println!(
            "{start}  {:>9}  {:>6}  {:>7}  {:>11.2}  {:>8.1}  {:>10.0}",
            a.captured,
            a.lost,
            a.dropped,
            per_request(a.cpu_s * 1e6, w.requests),
            a.peak_rss_kib as f64 / 1024.0,
            per_request(a.bpf_ns as f64, w.requests),
        ),
    }
    if w.socket_errors > 0 || w.non_2xx_3xx > 0 {
        println!(
            "      {tool}: {} socket errors / failed requests, {} non-2xx/3xx responses",
            w.socket_errors, w.non_2xx_3xx
        );
    }
}

/// The agent's BPF time per request against its floor's (the same hooks with empty
/// programs), and per program: what each costs per run and per request.
fn print_bpf(agent_ns: f64, variants: &[Variant], runs: &[Run]) {
    let floor = variants.iter().copied().find(|v| v.label() == "floor");
    let floor_ns = median(
        runs.iter()
            .filter(|r| Some(r.variant) == floor && !r.bpf.0.is_empty())
            .map(|r| per_request(r.bpf.ns() as f64, r.wrk.requests))
            .collect(),
    );
    if floor_ns.is_nan() {
        println!("  agent BPF        median {agent_ns:.0} ns of program run time per request");
    } else {
        println!(
            "  agent BPF        median {agent_ns:.0} ns of program run time per request; the \
             floor's empty programs {floor_ns:.0}: the agent's programs' own work {:.0} ns",
            agent_ns - floor_ns
        );
    }
    // Per program over every agent run: its runs per request, ns per run and per request.
    let mut by_name: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    let mut requests = 0;
    for run in runs
        .iter()
        .filter(|r| r.agent.is_some() && r.variant.full_agent())
    {
        requests += run.wrk.requests;
        for (id, &(ns, cnt)) in &run.bpf.0 {
            let name = run
                .bpf
                .1
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("id {id}"));
            let entry = by_name.entry(name).or_default();
            entry.0 += ns;
            entry.1 += cnt;
        }
    }
    let mut rows: Vec<_> = by_name
        .into_iter()
        .filter(|(_, (_, cnt))| *cnt > 0)
        .collect();
    rows.sort_by_key(|(_, (ns, _))| std::cmp::Reverse(*ns));
    println!(
        "  agent programs   {:<20} {:>9} {:>9} {:>9}   (all agent runs together)",
        "name", "runs/req", "ns/run", "ns/req"
    );
    for (name, (ns, cnt)) in rows {
        println!(
            "                   {name:<20} {:>9.2} {:>9.0} {:>9.0}",
            per_request(cnt as f64, requests),
            ns as f64 / cnt as f64,
            per_request(ns as f64, requests)
        );
    }
}

fn per_request(value: f64, requests: u64) -> f64 {
    if requests == 0 {
        f64::NAN
    } else {
        value / requests as f64
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// CPU µs per request of the agent or the drain process of a run (`None` for the others).
fn process_us(run: &Run) -> Option<f64> {
    let cpu_s = match (&run.agent, &run.drain) {
        (Some(a), _) => a.cpu_s,
        (None, Some(d)) => d.cpu_s,
        (None, None) => return None,
    };
    Some(per_request(cpu_s * 1e6, run.wrk.requests))
}

/// The staircase of `--stairs`: medians per step, from the run without the agent and the
/// floor up to the agent.
fn print_stairs(case: Case, variants: &[Variant], runs: &[Run]) {
    let Some(floor) = variants.iter().copied().find(|v| v.label() == "floor") else {
        return;
    };
    let steps: Vec<Step> = variants
        .iter()
        .copied()
        .filter(|v| v.label() != "cluster")
        .map(|v| {
            let of = || runs.iter().filter(move |r| r.variant == v);
            let med = |f: &dyn Fn(&Run) -> Option<f64>| median(of().filter_map(f).collect());
            let per = |r: &Run, x: f64| per_request(x, r.wrk.requests);
            let sum = |f: &dyn Fn(&Run) -> Option<u64>| -> Option<u64> { of().map(f).sum() };
            Step {
                label: v.label(),
                rps: med(&|r| Some(r.wrk.requests_per_sec)),
                to_off: median(ratios(runs, v, Variant::Off)),
                to_floor: median(ratios(runs, v, floor)),
                nginx_us: med(&|r| Some(per(r, r.nginx_cpu_s * 1e6))),
                wrk_us: med(&|r| Some(per(r, r.wrk_cpu_s * 1e6))),
                process_us: med(&process_us),
                busy_us: med(&|r| Some(per(r, r.busy_cpu_s * 1e6))),
                bpf_ns: med(&|r| (!r.bpf.0.is_empty()).then(|| per(r, r.bpf.ns() as f64))),
                items: sum(&|r| match (&r.agent, &r.drain) {
                    (Some(a), _) => Some(a.captured),
                    (None, Some(d)) => Some(d.records),
                    (None, None) => None,
                }),
                drops: sum(&|r| match (&r.agent, &r.drain) {
                    (Some(a), _) => Some(a.dropped + a.lost),
                    (None, Some(d)) => Some(d.dropped),
                    (None, None) => None,
                }),
            }
        })
        .collect();
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    bench_stairs::print(case.name(), cores, &steps);
    let drained: Vec<&DrainStats> = runs.iter().filter_map(|r| r.drain.as_ref()).collect();
    if !drained.is_empty() {
        let requests: u64 = runs
            .iter()
            .filter(|r| r.drain.is_some())
            .map(|r| r.wrk.requests)
            .sum();
        let (records, bytes) = drained
            .iter()
            .fold((0, 0), |(n, b), d| (n + d.records, b + d.bytes));
        println!(
            "  drain: {records} records, {bytes} bytes for {requests} completed requests \
             ({:.2} records, {:.0} bytes per request)",
            per_request(records as f64, requests),
            per_request(bytes as f64, requests)
        );
    }
}

/// req/s of `a` over req/s of `b`, per round where both ran.
fn ratios(runs: &[Run], a: Variant, b: Variant) -> Vec<f64> {
    let rounds = runs.iter().map(|r| r.round).max().unwrap_or(0);
    (1..=rounds)
        .filter_map(|round| {
            let find = |v| runs.iter().find(|r| r.round == round && r.variant == v);
            Some(find(a)?.wrk.requests_per_sec / find(b)?.wrk.requests_per_sec)
        })
        .collect()
}

fn print_summary(case: Case, load: &Load, variants: &[Variant], runs: &[Run]) {
    let tool = load.tool();
    let of = |v: Variant| runs.iter().filter(move |r| r.variant == v);
    let rps = |v| median(of(v).map(|r| r.wrk.requests_per_sec).collect());
    let nginx_us = |v| {
        median(
            of(v)
                .map(|r| per_request(r.nginx_cpu_s * 1e6, r.wrk.requests))
                .collect(),
        )
    };
    println!();
    println!(
        "{} summary over {} rounds:",
        case.name(),
        runs.iter().map(|r| r.round).max().unwrap_or(0)
    );
    let agent_us = |v| median(of(v).filter_map(process_us).collect());
    let p99_ms = |v| median(of(v).filter_map(|r| r.wrk.p99_ms).collect());
    println!(
        "  {:<11}  {:>9}  {:>13}  {:>12}  {:>8}  {:>12}  {:>12}  {:>12}",
        "variant",
        "req/s",
        "ratio to off",
        "p99 to off",
        "p99 ms",
        "nginx us/req",
        "agent us/req",
        "total us/req"
    );
    for &v in variants {
        let p99: Vec<f64> = {
            let rounds = runs.iter().map(|r| r.round).max().unwrap_or(0);
            (1..=rounds)
                .filter_map(|round| {
                    let find = |v| runs.iter().find(|r| r.round == round && r.variant == v);
                    Some(find(v)?.wrk.p99_ms? / find(Variant::Off)?.wrk.p99_ms?)
                })
                .collect()
        };
        let agent = agent_us(v);
        let total = nginx_us(v) + if agent.is_nan() { 0.0 } else { agent };
        // No p99 (h2load): "-" rather than NaN.
        let or_dash = |x: f64, precision: usize| {
            if x.is_nan() {
                "-".to_string()
            } else {
                format!("{x:.precision$}")
            }
        };
        println!(
            "  {:<11}  {:>9.0}  {:>13.3}  {:>12}  {:>8}  {:>12.2}  {:>12.2}  {:>12.2}",
            v.label(),
            rps(v),
            median(ratios(runs, v, Variant::Off)),
            or_dash(median(p99), 3),
            or_dash(p99_ms(v), 2),
            nginx_us(v),
            agent,
            total
        );
    }
    if let Some(floor) = variants.iter().copied().find(|v| v.label() == "floor") {
        println!(
            "  api-guard / floor: median per-round ratio {:.3}",
            median(ratios(runs, Variant::Agent, floor))
        );
    }
    if variants.contains(&Variant::AgentBase) {
        let of_agent = |v, f: &dyn Fn(&WrkReport, &AgentStats) -> f64| {
            median(
                of(v)
                    .filter_map(|r| r.agent.as_ref().map(|a| f(&r.wrk, a)))
                    .collect(),
            )
        };
        let bpf = |w: &WrkReport, a: &AgentStats| per_request(a.bpf_ns as f64, w.requests);
        let rss = |_: &WrkReport, a: &AgentStats| a.peak_rss_kib as f64 / 1024.0;
        let (new, base) = (Variant::Agent, Variant::AgentBase);
        println!(
            "  api-guard / base: median per-round req/s ratio {:.3}; medians, api-guard (base): \
             agent {:.2} ({:.2}) us/req, nginx {:.2} ({:.2}) us/req, BPF {:.0} ({:.0}) ns/req, \
             peak RSS {:.1} ({:.1}) MiB",
            median(ratios(runs, new, base)),
            agent_us(new),
            agent_us(base),
            nginx_us(new),
            nginx_us(base),
            of_agent(new, &bpf),
            of_agent(base, &bpf),
            of_agent(new, &rss),
            of_agent(base, &rss),
        );
    }
    if variants.contains(&Variant::AgentCluster) {
        // Per round: the cluster variant's p99 minus the plain agent's.
        let rounds = runs.iter().map(|r| r.round).max().unwrap_or(0);
        let added: Vec<f64> = (1..=rounds)
            .filter_map(|round| {
                let find = |v| runs.iter().find(|r| r.round == round && r.variant == v);
                Some(find(Variant::AgentCluster)?.wrk.p99_ms? - find(Variant::Agent)?.wrk.p99_ms?)
            })
            .collect();
        let (ops, requests) = of(Variant::AgentCluster)
            .filter_map(|r| Some((r.agent.as_ref()?.cluster_ops, r.wrk.requests)))
            .fold((0u64, 0u64), |(o, n), (a, b)| (o + a, n + b));
        println!(
            "  cluster mode: p99 {:+.3} ms against the agent alone (median per round); {:.2} Redis \
             round trips per 1,000 requests",
            median(added),
            per_request(ops as f64 * 1000.0, requests)
        );
    }
    let with: Vec<(&WrkReport, &AgentStats)> = runs
        .iter()
        .filter(|r| r.variant.full_agent())
        .filter_map(|r| r.agent.as_ref().map(|a| (&r.wrk, a)))
        .collect();
    let sent: u64 = with.iter().map(|(w, _)| w.requests).sum();
    let captured: u64 = with.iter().map(|(_, a)| a.captured).sum();
    let captured_version: Option<u64> = with.iter().map(|(_, a)| a.captured_version).sum();
    let lost: u64 = with.iter().map(|(_, a)| a.lost).sum();
    let dropped: u64 = with.iter().map(|(_, a)| a.dropped).sum();
    let truncated: u64 = with.iter().map(|(_, a)| a.truncated).sum();
    let detect_skipped: u64 = with.iter().map(|(_, a)| a.detect_skipped).sum();
    let discover_skipped: u64 = with.iter().map(|(_, a)| a.discover_skipped).sum();
    let findings: u64 = with.iter().map(|(_, a)| a.findings).sum();
    let floods: u64 = with.iter().map(|(_, a)| a.floods).sum();
    let agent_us = median(
        with.iter()
            .map(|(w, a)| per_request(a.cpu_s * 1e6, w.requests))
            .collect(),
    );
    let bpf_ns = median(
        with.iter()
            .map(|(w, a)| per_request(a.bpf_ns as f64, w.requests))
            .collect(),
    );
    let startup_cpu = median(with.iter().map(|(_, a)| a.cpu_total_s - a.cpu_s).collect());
    let peak = with.iter().map(|(_, a)| a.peak_rss_kib).max().unwrap_or(0);
    let bpf_maps = with
        .iter()
        .map(|(_, a)| a.bpf_map_rss_kib)
        .max()
        .unwrap_or(0);
    let percent = |n: u64| {
        if sent == 0 {
            f64::NAN
        } else {
            n as f64 / sent as f64 * 100.0
        }
    };
    println!(
        "  capture          {captured} server exchanges for {sent} requests {tool} completed \
         ({:.2}%), {lost} counted lost, {dropped} capture drops, {truncated} calls longer \
         than the copy cap",
        percent(captured)
    );
    match captured_version {
        Some(n) => println!(
            "                   {n} of nginx's server exchanges in the exchanges file have \
             version \"{}\" ({:.2}% of completed requests)",
            case.version(),
            percent(n)
        ),
        None => println!(
            "                   the agent ran with its default outputs (no exchanges file; \
             --exchanges writes one and checks each exchange's version)"
        ),
    }
    println!(
        "  analysis         {detect_skipped} exchanges skipped by detection, {discover_skipped} by \
         discovery (their queues were full); findings: {findings} on content (none expected), \
         {floods} floods (the load generator is one client)"
    );
    println!(
        "  agent CPU        median {agent_us:.2} us per request (load and drain); \
         median {startup_cpu:.2} s outside the load (startup, probe loading); \
         nginx us/req includes the BPF programs, which run in its context"
    );
    if bpf_ns > 0.0 {
        print_bpf(bpf_ns, variants, runs);
    }
    println!(
        "  agent memory     peak RSS (VmHWM) {:.1} MiB, of which {:.1} MiB are BPF map \
         mappings (the ring buffer's kernel memory, its data pages mapped twice): {:.1} MiB \
         without them",
        peak as f64 / 1024.0,
        bpf_maps as f64 / 1024.0,
        peak.saturating_sub(bpf_maps) as f64 / 1024.0
    );
    println!(
        "  note: {tool} counts completed responses; up to {} more requests per run may have \
         been served ({} when {tool} stops)",
        load.in_flight(),
        match load {
            Load::H2load(_) => "one in flight per stream of each connection",
            _ => "one in flight per connection",
        }
    );
    if matches!(load, Load::H2load(_)) {
        println!(
            "  note: no p99: h2load prints only min/max/mean/sd of request time (its per-request \
             --log-file would slow the load generator itself)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_non_finite() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![f64::NAN, 5.0]), 5.0);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn per_request_guards_zero() {
        assert_eq!(per_request(2000.0, 1000), 2.0);
        assert!(per_request(1.0, 0).is_nan());
    }

    #[test]
    fn schemes_pick_cases() {
        assert_eq!(Scheme::Both.cases(), [Case::Http, Case::Https]);
        assert_eq!(Scheme::All.cases(), [Case::Http, Case::Https, Case::H2]);
        assert_eq!(Scheme::H2.cases(), [Case::H2]);
        assert_eq!(Scheme::Go.cases(), [Case::GoHttps]);
        assert!(Case::GoHttps.tls() && Case::GoHttps.version() == "1.1");
        assert!(Case::H2.tls() && Case::Https.tls() && !Case::Http.tls());
        assert_eq!((Case::Https.version(), Case::H2.version()), ("1.1", "2"));
        let labels: Vec<&str> = variants(Case::H2.tls(), true, false, false)
            .iter()
            .map(|v| v.label())
            .collect();
        assert_eq!(
            labels,
            ["off", "api-guard", "floor", "tls-sites", "tls-entries"]
        );
    }

    #[test]
    fn in_flight_per_load() {
        let h2 = Load::H2load(H2loadArgs {
            threads: 2,
            clients: 50,
            streams: 10,
            duration: Duration::from_secs(1),
        });
        assert_eq!((h2.tool(), h2.in_flight()), ("h2load", 500));
    }

    #[test]
    fn base_variant_follows_the_agent() {
        let floors = variants(false, true, false, false);
        assert_eq!(with_base(floors.clone(), false), floors);
        let labels: Vec<&str> = with_base(floors, true).iter().map(|v| v.label()).collect();
        assert_eq!(labels, ["off", "api-guard", "base", "floor", "raw-floor"]);
        let stairs: Vec<&str> = with_base(variants(true, true, false, true), true)
            .iter()
            .map(|v| v.label())
            .collect();
        assert_eq!(
            stairs,
            ["off", "floor", "drain", "parse", "api-guard", "base"]
        );
    }

    #[test]
    fn variants_per_case() {
        assert_eq!(
            variants(false, false, false, false),
            vec![Variant::Off, Variant::Agent]
        );
        assert_eq!(
            variants(false, false, true, false),
            vec![Variant::Off, Variant::Agent, Variant::AgentCluster]
        );
        let labels: Vec<&str> = variants(false, true, false, false)
            .iter()
            .map(|v| v.label())
            .collect();
        assert_eq!(labels, ["off", "api-guard", "floor", "raw-floor"]);
        let labels: Vec<&str> = variants(true, true, false, false)
            .iter()
            .map(|v| v.label())
            .collect();
        assert_eq!(
            labels,
            ["off", "api-guard", "floor", "tls-sites", "tls-entries"]
        );
        // The staircase, from the floor up; under TLS the floor has the TLS sites.
        for tls in [false, true] {
            let stairs = variants(tls, true, false, true);
            let labels: Vec<&str> = stairs.iter().map(|v| v.label()).collect();
            assert_eq!(labels, ["off", "floor", "drain", "parse", "api-guard"]);
            assert_eq!(
                stairs[1],
                Variant::Floor {
                    tracepoints: true,
                    tls: tls.then_some(TlsSites::Chosen)
                }
            );
            assert!(stairs[4].full_agent() && !stairs[3].full_agent());
        }
    }
}
