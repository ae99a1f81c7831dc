//! The analysis queues' byte bound end to end (`analysis::worker::QUEUE_BYTES`): wrk floods
//! nginx's `/upload` with JSON POSTs of ~56 KiB whose values no earlier request carried, for
//! 4 s over 16 connections, the agent capturing nginx. Detection (request values, bodies)
//! and discovery (schemas, sensitive data) cannot keep up with the parsing task there, so
//! their queues fill by bytes long before their counts (4,096 and 1,024 exchanges, a
//! quarter of a GiB of such bodies).
//!
//! What must hold: the agent's peak RSS grows by far less than those counts would hold
//! (both queues' byte bounds and the ring buffer's mapping); the analysis threads do skip
//! (the bound is reached) and every skip is counted: each request captured is in the
//! inventory or in `apiguard_discover_exchanges_skipped_total`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::procfs::{peak_rss_kib, rss_kib};
use integration_tests::util::{wait_until, TempDir};
use integration_tests::wrk::{self, WrkArgs};
use integration_tests::{require_root, unique_port, veth_pair, Agent, AgentOptions, Netns, Nginx};
use serde_json::Value;

const REQUESTS: &str = "apiguard_http_requests_total";
const DETECT_SKIPPED: &str = "apiguard_detect_exchanges_skipped_total";
const DISCOVER_SKIPPED: &str = "apiguard_discover_exchanges_skipped_total";

/// Fresh values in every body (the thread's number and a per-thread counter in each item):
/// nothing a consumer cached from an earlier body applies.
const SCRIPT: &str = r#"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
local headers = { ["Content-Type"] = "application/json" }
function request()
  n = n + 1
  local id = string.format("%d-%d", tid, n)
  local items = {}
  for i = 1, 600 do
    items[i] = string.format('{"sku":"SKU-%s-%04d","name":"Steel bottle %s/%d","qty":%d}',
      id, i, id, i, i)
  end
  local body = '{"order_id":"' .. id .. '","items":[' .. table.concat(items, ",") .. ']}'
  return wrk.format("POST", "/upload", headers, body)
end
"#;

/// Peak RSS growth allowed over the idle agent's RSS: two queues' byte bounds (8 MiB each,
/// bodies shared between them counted in both), the 4 MiB ring buffer mapped twice (records
/// are parsed in place there, never copied out) and the parser's buffers, with room for the
/// allocator. Bounded by counts alone, the detection queue could hold ~230 MiB of bodies.
const MAX_GROWTH_MIB: u64 = 64;

#[test]
fn large_body_floods_are_bounded_by_bytes_and_every_skip_is_counted() -> Result<()> {
    require_root()?;
    let ns_srv = Netns::new("agqb-srv")?;
    let ns_cli = Netns::new("agqb-cli")?;
    let (ip_srv, _) = veth_pair(&ns_srv, &ns_cli)?;
    let nginx = Nginx::start(&ns_srv, SocketAddr::new(ip_srv.into(), unique_port()?), &[])?;
    let agent = Agent::start(AgentOptions {
        config_toml: Some(format!("[capture]\npids = [{}]\n", nginx.pid())),
        no_exchanges_file: true,
        ..AgentOptions::default()
    })?;
    let before = agent.metrics()?;
    let idle_kib = rss_kib(agent.pid())?;

    let dir = TempDir::new("queue-bytes")?;
    let script = dir.join("post.lua");
    std::fs::write(&script, SCRIPT)?;
    let args = WrkArgs {
        threads: 2,
        connections: 16,
        duration: Duration::from_secs(4),
        latency: false,
        script: Some(script),
    };
    let report = wrk::run(&ns_cli, &nginx.url("/upload"), &args)?;
    ensure!(
        report.requests > 0 && report.non_2xx_3xx == 0,
        "wrk:\n{}",
        report.raw
    );

    // Discovery is done once every request captured is in the inventory or skipped.
    let delta = |m: &integration_tests::metrics::Metrics, name: &str, labels: &[(&str, &str)]| {
        (m.sum(name, labels) - before.sum(name, labels)) as u64
    };
    let mut last = String::new();
    let (captured, inventoried, discover_skipped, detect_skipped) = wait_until(
        "discovery to account for every request captured",
        Duration::from_secs(15),
        Duration::from_millis(200),
        || {
            let m = agent.metrics()?;
            let captured = delta(&m, REQUESTS, &[("role", "server")]);
            let skipped = delta(&m, DISCOVER_SKIPPED, &[]);
            let inventoried = inventory_count(&agent)?;
            last = format!("captured {captured}, inventory {inventoried}, skipped {skipped}");
            Ok(
                (captured > 0 && inventoried + skipped == captured).then(|| {
                    (
                        captured,
                        inventoried,
                        skipped,
                        delta(&m, DETECT_SKIPPED, &[]),
                    )
                }),
            )
        },
    )
    .with_context(|| format!("{last}\n{}", agent.diagnostics()))?;
    let peak_kib = peak_rss_kib(agent.pid())?;
    let growth_mib = peak_kib.saturating_sub(idle_kib) / 1024;
    // Idle analysis threads free what they analysed last and let the allocator purge.
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "wrk completed {} POSTs ({:.0}/s); captured {captured}: inventory {inventoried}, \
         discovery skipped {discover_skipped}; detection skipped {detect_skipped}; \
         RSS idle {:.1} MiB, peak {:.1} MiB (+{growth_mib} MiB), 2 s after {:.1} MiB",
        report.requests,
        report.requests_per_sec,
        idle_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0,
        rss_kib(agent.pid())? as f64 / 1024.0,
    );
    // The flood moved far more than the bounds: at least one queue reached its own.
    ensure!(
        discover_skipped + detect_skipped > 0,
        "neither analysis thread fell behind: the flood did not test the bound"
    );
    ensure!(
        growth_mib <= MAX_GROWTH_MIB,
        "peak RSS grew by {growth_mib} MiB (more than {MAX_GROWTH_MIB})\n{}",
        agent.diagnostics()
    );
    Ok(())
}

/// Requests the inventory counted, over all endpoints (`api-guard inventory`).
fn inventory_count(agent: &Agent) -> Result<u64> {
    let text = agent.cli_ok(&["inventory", "--format", "json"])?;
    let inv: Value = serde_json::from_str(&text)
        .with_context(|| format!("inventory --format json printed {text}"))?;
    Ok(inv["endpoints"].as_array().map_or(0, |eps| {
        eps.iter().filter_map(|e| e["count"].as_u64()).sum()
    }))
}
