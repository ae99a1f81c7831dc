//! `cargo xtask bench overhead`: what the agent costs a real HTTP server.
//!
//! nginx (one process, `master_process off`, a 1 KiB file) runs in one namespace and wrk
//! in another, connected by a veth pair. Each pair of runs measures wrk once without the
//! agent and once with a fresh agent that captures only nginx's pid; the order alternates
//! between pairs (A B, B A, ...) so drift over time does not favour either side.
//!
//! `--scheme` picks plain HTTP, HTTPS (nginx `listen ... ssl` with a throwaway self-signed
//! certificate, wrk over TLS; the agent hooks the system libssl.so.3 that both link), or
//! both one after the other (the default), each case with its own pairs and summary.
//! Under HTTPS wrk's own TLS calls also pass through the agent's uprobes (filtered out by
//! pid in the kernel), which is part of what a host-wide agent costs.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use integration_tests::agent::agent_binary;
use integration_tests::metrics::Metrics;
use integration_tests::procfs::{cpu_seconds, peak_rss_kib};
use integration_tests::util::which;
use integration_tests::wrk::{self, WrkArgs, WrkReport};
use integration_tests::{
    require_root, Agent, AgentOptions, NetPair, Netns, Nginx, NginxOptions, TlsCert,
};

#[derive(clap::Args, Debug)]
pub struct OverheadArgs {
    /// Pairs of runs: one without the agent and one with it.
    #[arg(long, default_value_t = 5)]
    pub pairs: u32,
    /// Seconds of load per run.
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// wrk connections.
    #[arg(long, default_value_t = 50)]
    pub connections: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// Which server to measure: plain HTTP, HTTPS, or both in turn.
    #[arg(long, value_enum, default_value_t = Scheme::Both)]
    pub scheme: Scheme,
    /// Extra agent configuration (TOML file) appended to the bench's own, for experiments
    /// such as `[tls]\nenabled = false`.
    #[arg(long, value_name = "FILE")]
    pub agent_config: Option<std::path::PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
    Both,
}

impl Scheme {
    /// The cases to measure, as "uses TLS" flags in order.
    fn cases(self) -> &'static [bool] {
        match self {
            Scheme::Http => &[false],
            Scheme::Https => &[true],
            Scheme::Both => &[false, true],
        }
    }
}

fn case_name(tls: bool) -> &'static str {
    if tls {
        "https"
    } else {
        "http"
    }
}

const REQUESTS: &str = "apiguard_http_requests_total";
const LOST: &str = "apiguard_http_exchanges_lost_total";
const DROPPED: &str = "apiguard_capture_dropped_total";

/// What the agent did during one run.
struct AgentStats {
    /// Server-side exchanges (`apiguard_http_requests_total{role="server"}`).
    captured: u64,
    lost: u64,
    dropped: u64,
    /// CPU seconds from just before the load until the agent had drained it.
    cpu_s: f64,
    /// CPU seconds over the agent's whole life, startup (loading probes) included.
    cpu_total_s: f64,
    peak_rss_kib: u64,
}

struct Run {
    pair: u32,
    wrk: WrkReport,
    agent: Option<AgentStats>,
}

pub fn overhead(args: &OverheadArgs) -> Result<()> {
    require_root()?;
    ensure!(args.pairs >= 1, "--pairs must be at least 1");
    ensure!(args.duration >= 1, "--duration must be at least 1 second");
    ensure!(
        args.threads >= 1 && args.connections >= args.threads,
        "need at least one thread and one connection per thread"
    );
    which("wrk").context("install wrk (cargo xtask setup)")?;
    let bin = agent_binary(&AgentOptions::default())?;
    println!("agent: {}", bin.display());

    let net = NetPair::new("agbench")?;
    let cert = if args.scheme.cases().contains(&true) {
        Some(TlsCert::generate("api-guard-bench")?)
    } else {
        None
    };
    let load = WrkArgs {
        threads: args.threads,
        connections: args.connections,
        duration: Duration::from_secs(args.duration),
        latency: true,
    };
    let mut cases = Vec::new();
    for &tls in args.scheme.cases() {
        let listen = net.server_addr()?;
        let nginx = match cert.as_ref().filter(|_| tls) {
            None => Nginx::start(&net.srv, listen, &[("f1k", 1024)])?,
            Some(cert) => Nginx::start_tls(
                &net.srv,
                listen,
                &[("f1k", 1024)],
                NginxOptions::default(),
                cert,
            )?,
        };
        let extra = match &args.agent_config {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
            None => String::new(),
        };
        let runs = measure(&nginx, &net.cli, &load, args.pairs, &extra)?;
        print_summary(case_name(tls), &runs, args.connections);
        cases.push((tls, runs));
    }
    if cases.len() > 1 {
        println!();
        println!("side by side (median req/s ratio with/without the agent):");
        for (tls, runs) in &cases {
            println!("  {:<6} {:.3}", case_name(*tls), median(rps_ratios(runs)));
        }
    }
    Ok(())
}

/// Warms nginx up, then measures `pairs` pairs of runs against it, printing each row.
fn measure(
    nginx: &Nginx,
    ns_cli: &Netns,
    load: &WrkArgs,
    pairs: u32,
    extra_config: &str,
) -> Result<Vec<Run>> {
    let url = nginx.url("/f1k");
    println!();
    println!(
        "nginx pid {} at {url}; wrk -t{} -c{} -d{}s --latency from {}",
        nginx.pid(),
        load.threads,
        load.connections,
        load.duration.as_secs(),
        ns_cli.name()
    );

    // Warm caches, the TCP stack and nginx before anything is recorded.
    wrk::run(
        ns_cli,
        &url,
        &WrkArgs {
            duration: Duration::from_secs(1),
            ..load.clone()
        },
    )?;

    println!();
    println!(
        "{:>4}  {:<7}  {:>10}  {:>9}  {:>8}  {:>9}  {:>6}  {:>7}  {:>7}  {:>11}  {:>8}",
        "pair",
        "agent",
        "req/s",
        "requests",
        "p99 ms",
        "captured",
        "lost",
        "dropped",
        "cpu s",
        "cpu ms/1k",
        "peak MiB"
    );
    let mut runs = Vec::new();
    for pair in 1..=pairs {
        let order = if pair % 2 == 1 {
            [false, true]
        } else {
            [true, false]
        };
        for with_agent in order {
            let run = if with_agent {
                run_with_agent(nginx, ns_cli, &url, load, pair, extra_config)?
            } else {
                Run {
                    pair,
                    wrk: wrk::run(ns_cli, &url, load)?,
                    agent: None,
                }
            };
            print_row(&run);
            runs.push(run);
        }
    }
    Ok(runs)
}

fn run_with_agent(
    nginx: &Nginx,
    ns_cli: &Netns,
    url: &str,
    load: &WrkArgs,
    pair: u32,
    extra_config: &str,
) -> Result<Run> {
    let mut agent = Agent::start(AgentOptions {
        config_toml: Some(format!(
            "[capture]\npids = [{}]\n{extra_config}",
            nginx.pid()
        )),
        ..AgentOptions::default()
    })?;
    let pid = agent.pid();
    let before = agent.metrics()?;
    let cpu_before = cpu_seconds(pid)?;
    let report = wrk::run(ns_cli, url, load)?;
    let after = drained_metrics(&agent)?;
    let cpu_after = cpu_seconds(pid)?;
    let peak = peak_rss_kib(pid)?;
    let delta = |m: &Metrics, name: &str, labels: &[(&str, &str)]| {
        (m.sum(name, labels) - before.sum(name, labels)).max(0.0) as u64
    };
    let stats = AgentStats {
        captured: delta(&after, REQUESTS, &[("role", "server")]),
        lost: delta(&after, LOST, &[]),
        dropped: delta(&after, DROPPED, &[]),
        cpu_s: cpu_after - cpu_before,
        cpu_total_s: cpu_after,
        peak_rss_kib: peak,
    };
    let status = agent.stop()?;
    ensure!(
        status.success(),
        "api-guard exited with {status}:\n{}",
        agent.stderr_tail(20)
    );
    Ok(Run {
        pair,
        wrk: report,
        agent: Some(stats),
    })
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

fn print_row(run: &Run) {
    let w = &run.wrk;
    let p99 = w.p99_ms.map_or("-".into(), |v| format!("{v:.2}"));
    match &run.agent {
        None => println!(
            "{:>4}  {:<7}  {:>10.0}  {:>9}  {:>8}  {:>9}  {:>6}  {:>7}  {:>7}  {:>11}  {:>8}",
            run.pair, "off", w.requests_per_sec, w.requests, p99, "-", "-", "-", "-", "-", "-"
        ),
        Some(a) => println!(
            "{:>4}  {:<7}  {:>10.0}  {:>9}  {:>8}  {:>9}  {:>6}  {:>7}  {:>7.2}  {:>11.2}  {:>8.1}",
            run.pair,
            "on",
            w.requests_per_sec,
            w.requests,
            p99,
            a.captured,
            a.lost,
            a.dropped,
            a.cpu_s,
            per_thousand(a.cpu_s * 1000.0, w.requests),
            a.peak_rss_kib as f64 / 1024.0
        ),
    }
    if w.socket_errors > 0 || w.non_2xx_3xx > 0 {
        println!(
            "      wrk: {} socket errors, {} non-2xx/3xx responses",
            w.socket_errors, w.non_2xx_3xx
        );
    }
}

fn per_thousand(value: f64, requests: u64) -> f64 {
    if requests == 0 {
        f64::NAN
    } else {
        value / requests as f64 * 1000.0
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

/// (with, without) of each complete pair.
fn pairs_of(runs: &[Run]) -> Vec<(&Run, &Run)> {
    let pairs = runs.iter().map(|r| r.pair).max().unwrap_or(0);
    (1..=pairs)
        .filter_map(|pair| {
            let on = runs.iter().find(|r| r.pair == pair && r.agent.is_some());
            let off = runs.iter().find(|r| r.pair == pair && r.agent.is_none());
            on.zip(off)
        })
        .collect()
}

/// req/s with the agent over req/s without it, per pair.
fn rps_ratios(runs: &[Run]) -> Vec<f64> {
    pairs_of(runs)
        .iter()
        .map(|(on, off)| on.wrk.requests_per_sec / off.wrk.requests_per_sec)
        .collect()
}

fn print_summary(case: &str, runs: &[Run], connections: u32) {
    let pairs = pairs_of(runs).len();
    let rps_ratio = rps_ratios(runs);
    let p99_ratio: Vec<f64> = pairs_of(runs)
        .iter()
        .filter_map(|(on, off)| Some(on.wrk.p99_ms? / off.wrk.p99_ms?))
        .collect();
    let rps = |agent: bool| {
        median(
            runs.iter()
                .filter(|r| r.agent.is_some() == agent)
                .map(|r| r.wrk.requests_per_sec)
                .collect(),
        )
    };
    let with: Vec<(&WrkReport, &AgentStats)> = runs
        .iter()
        .filter_map(|r| r.agent.as_ref().map(|a| (&r.wrk, a)))
        .collect();
    let sent: u64 = with.iter().map(|(w, _)| w.requests).sum();
    let captured: u64 = with.iter().map(|(_, a)| a.captured).sum();
    let lost: u64 = with.iter().map(|(_, a)| a.lost).sum();
    let dropped: u64 = with.iter().map(|(_, a)| a.dropped).sum();
    let cpu_per_k = median(
        with.iter()
            .map(|(w, a)| per_thousand(a.cpu_s, w.requests))
            .collect(),
    );
    let startup_cpu = median(with.iter().map(|(_, a)| a.cpu_total_s - a.cpu_s).collect());
    let peak = with.iter().map(|(_, a)| a.peak_rss_kib).max().unwrap_or(0);

    println!();
    println!("{case} summary over {pairs} pairs:");
    println!(
        "  req/s            median {:.0} without, {:.0} with the agent; median ratio with/without {:.3}",
        rps(false),
        rps(true),
        median(rps_ratio)
    );
    println!(
        "  p99 latency      median ratio with/without {:.3}",
        median(p99_ratio)
    );
    println!(
        "  capture          {captured} server exchanges for {sent} requests wrk completed ({:.2}%), \
         {lost} counted lost, {dropped} capture drops",
        if sent == 0 { f64::NAN } else { captured as f64 / sent as f64 * 100.0 }
    );
    println!(
        "  agent CPU        median {cpu_per_k:.4} s per 1,000 requests (load and drain); \
         median {startup_cpu:.2} s outside the load (startup, probe loading)"
    );
    println!(
        "  agent memory     peak RSS (VmHWM) {:.1} MiB",
        peak as f64 / 1024.0
    );
    println!(
        "  note: wrk counts completed responses; up to {connections} more requests per run may \
         have been served (one in flight per connection when wrk stops)"
    );
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
    fn per_thousand_guards_zero() {
        assert_eq!(per_thousand(2.0, 1000), 2.0);
        assert!(per_thousand(1.0, 0).is_nan());
    }
}
