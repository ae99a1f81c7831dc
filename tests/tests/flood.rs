//! Load beyond what the capture path may keep up with: wrk (2 threads, 50 connections,
//! 3 s) against nginx over a veth pair, the agent capturing only nginx's pid.
//!
//! Nothing may be lost silently: every request nginx served is either an exchange or
//! counted in `apiguard_http_exchanges_lost_total`, exactly, unless the ring overflowed
//! (a machine too busy for the daemon): then a request and its response lost together
//! show only in `apiguard_capture_bytes_not_copied_total{reason="ringbuf_full"}`.
//!
//! Ground truth is nginx's access log, not wrk's count: wrk reports completed responses,
//! and when it stops each connection may have one request nginx already served (so
//! wrk ≤ served ≤ wrk + connections, checked below).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use integration_tests::exchange::{dump, pid_role};
use integration_tests::util::wait_until;
use integration_tests::wrk::{self, WrkArgs};
use integration_tests::{
    require_root, unique_port, veth_pair, Agent, AgentOptions, Netns, Nginx, NginxOptions,
};

const REQUESTS: &str = "apiguard_http_requests_total";
const LOST: &str = "apiguard_http_exchanges_lost_total";

/// nginx (access log on) in one namespace, wrk's in another, the agent capturing nginx's
/// pid with `capture_toml` added to its `[capture]` table.
fn flood_setup(tag: &str, capture_toml: &str) -> Result<(Netns, Netns, Nginx, Agent)> {
    let ns_srv = Netns::new(&format!("ag{tag}-srv"))?;
    let ns_cli = Netns::new(&format!("ag{tag}-cli"))?;
    let (ip_srv, _) = veth_pair(&ns_srv, &ns_cli)?;
    let nginx = Nginx::start_with(
        &ns_srv,
        SocketAddr::new(ip_srv.into(), unique_port()?),
        &[("f1k", 1024)],
        NginxOptions {
            access_log: true,
            ..NginxOptions::default()
        },
    )?;
    let agent = Agent::start(AgentOptions {
        config_toml: Some(format!(
            "[capture]\npids = [{}]\n{capture_toml}",
            nginx.pid()
        )),
        ..AgentOptions::default()
    })?;
    Ok((ns_srv, ns_cli, nginx, agent))
}

const FLOOD: WrkArgs = WrkArgs {
    threads: 2,
    connections: 50,
    duration: Duration::from_secs(3),
    latency: false,
    script: None,
};

#[test]
fn flood_is_fully_accounted_for() -> Result<()> {
    require_root()?;
    let (_ns_srv, ns_cli, nginx, mut agent) = flood_setup("flood", "")?;
    let before = agent.metrics()?;

    let args = FLOOD;
    let report = wrk::run(&ns_cli, &nginx.url("/f1k"), &args)?;
    ensure!(
        report.requests > 0 && report.non_2xx_3xx == 0,
        "wrk:\n{}",
        report.raw
    );

    // nginx logs each request as it finishes; wait until the count stops moving.
    let served = wait_until(
        "nginx's access log to settle",
        Duration::from_secs(10),
        Duration::from_millis(300),
        {
            let nginx = &nginx;
            let mut last = None;
            move || {
                let n = nginx.access_log_lines()?;
                let settled = last == Some(n);
                last = Some(n);
                Ok(settled.then_some(n as u64))
            }
        },
    )?;

    // Let the daemon drain: until captured + lost reaches what nginx served, or until
    // its counters stop moving for 2 s (bounded at 60 s overall).
    let delta = |m: &integration_tests::metrics::Metrics, name: &str, labels: &[(&str, &str)]| {
        (m.sum(name, labels) - before.sum(name, labels)) as u64
    };
    let mut stable_since = Instant::now();
    let mut last = (u64::MAX, u64::MAX);
    let deadline = Instant::now() + Duration::from_secs(60);
    let metrics = loop {
        let m = agent.metrics()?;
        let now = (
            delta(&m, REQUESTS, &[("role", "server")]),
            delta(&m, LOST, &[]),
        );
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
        if now.0 + now.1 >= served
            || stable_since.elapsed() > Duration::from_secs(2)
            || Instant::now() > deadline
        {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let captured = delta(&metrics, REQUESTS, &[("role", "server")]);
    let lost = delta(&metrics, LOST, &[]);
    let client_side = delta(&metrics, REQUESTS, &[("role", "client")]);

    println!(
        "wrk completed {} requests ({:.0} req/s, {} socket errors); nginx served {served}; \
         agent captured {captured}, counted lost {lost}, client-side {client_side}",
        report.requests, report.requests_per_sec, report.socket_errors
    );
    println!("drops during the flood:\n{}", {
        let mut s = String::from("  (none exported)\n");
        for sample in metrics.named("apiguard_capture_dropped_total") {
            let base = before
                .samples
                .iter()
                .find(|b| b.name == sample.name && b.labels == sample.labels)
                .map_or(0.0, |b| b.value);
            s += &format!(
                "  {}{:?} +{}\n",
                sample.name,
                sample.labels,
                sample.value - base
            );
        }
        s
    });

    ensure!(
        served >= report.requests && served <= report.requests + u64::from(args.connections),
        "nginx served {served} but wrk completed {} with {} connections",
        report.requests,
        args.connections
    );
    // A full ring that took both halves of an exchange leaves no message to count it by:
    // such a loss shows only as bytes not copied (docs/capture.md). The machine running the
    // suite decides whether the daemon keeps up; the accounting must be exact when it did.
    let ring_full_bytes = delta(
        &metrics,
        "apiguard_capture_bytes_not_copied_total",
        &[("reason", "ringbuf_full")],
    );
    if ring_full_bytes == 0 {
        ensure!(
            captured + lost == served,
            "captured {captured} + lost {lost} = {} != {served} requests nginx served\n{}",
            captured + lost,
            agent.diagnostics()
        );
    } else {
        println!(
            "the ring overflowed ({ring_full_bytes} bytes not copied): exchanges lost whole \
             are visible only there, so captured + lost may fall short of what nginx served"
        );
        ensure!(
            captured + lost <= served,
            "captured {captured} + lost {lost} = {} > {served} requests nginx served\n{}",
            captured + lost,
            agent.diagnostics()
        );
    }
    ensure!(
        client_side == 0,
        "the pid filter admits only nginx, yet {client_side} client exchanges"
    );

    // The file agrees with the counter, and holds nothing but nginx's server side.
    let status = agent.stop()?;
    ensure!(
        status.success(),
        "api-guard exited with {status}:\n{}",
        agent.stderr_tail(30)
    );
    // One pass over the (large) file: count nginx's server side, keep a few strays.
    let started = Instant::now();
    let (mut in_file, mut strays, mut stray_count) = (0u64, Vec::new(), 0usize);
    agent.for_each_exchange(|e| {
        if pid_role(nginx.pid(), "server")(&e) {
            in_file += 1;
        } else {
            stray_count += 1;
            if strays.len() < 20 {
                strays.push(e);
            }
        }
    })?;
    println!("read the exchanges file in {:?}", started.elapsed());
    ensure!(
        stray_count == 0,
        "pids = [{}] must admit only nginx's server side, found {stray_count} others:\n{}",
        nginx.pid(),
        dump(&strays)
    );
    ensure!(
        in_file == captured,
        "exchanges file has {in_file} nginx exchanges, the counter says {captured}"
    );
    Ok(())
}

/// With the smallest ring, most of a flood is dropped in the kernel. Requests lost whole
/// must not turn into findings or endpoints: their empty method and target are the
/// capture's loss, not what wrk sent. Before, each raised `protocol.method_unknown`,
/// `protocol.invalid_target` and `protocol.host_missing`.
#[test]
fn requests_lost_to_a_full_ring_are_not_judged() -> Result<()> {
    require_root()?;
    let (_ns_srv, ns_cli, nginx, mut agent) =
        flood_setup("fullring", "ring_buffer_bytes = 32768\n")?;
    let before = agent.metrics()?;
    let report = wrk::run(&ns_cli, &nginx.url("/f1k"), &FLOOD)?;
    ensure!(report.requests > 0, "wrk:\n{}", report.raw);
    // The kernel's counters reach the metrics once a second.
    std::thread::sleep(Duration::from_millis(2500));
    let m = agent.metrics()?;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        (m.sum(name, labels) - before.sum(name, labels)) as u64
    };
    let drops = delta(
        "apiguard_capture_dropped_total",
        &[("reason", "ringbuf_full")],
    );
    let findings = delta("apiguard_detections_total", &[])
        .saturating_sub(delta("apiguard_detections_total", &[("kind", "flood")]));
    let status = agent.stop()?;
    ensure!(status.success(), "api-guard exited with {status}");
    let (mut lost_heads, mut empty) = (0u64, 0u64);
    agent.for_each_exchange(|e| {
        if e["request_head_lost"] == true {
            lost_heads += 1;
        } else if e["method"] == "" {
            empty += 1;
        }
    })?;
    println!(
        "wrk completed {} requests; ring-full drops {drops}; exchanges whose start line was \
         lost {lost_heads}; findings other than floods {findings}",
        report.requests
    );
    ensure!(
        drops > 0 && lost_heads > 0,
        "a 32 KiB ring under wrk should lose records and whole requests (drops {drops}, \
         lost heads {lost_heads}): nothing tested"
    );
    ensure!(
        findings == 0,
        "{findings} findings on wrk's harmless requests with {lost_heads} lost heads"
    );
    ensure!(
        empty == 0,
        "{empty} exchanges with no method, not marked lost"
    );
    Ok(())
}
