//! Cluster mode on a real `redis-server`: agents on one machine act as nodes, each guarding
//! its own server namespace (own veths, XDP, control socket, metrics port) and capturing only
//! its own server process. The same client address exists behind every node, so a block
//! decided on one node can be seen to drop that client on the others.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use integration_tests::exchange::pid_role;
use integration_tests::guard::{curl, wait_for_probe, Probe, Topology};
use integration_tests::redis::RedisServer;
use integration_tests::{require_root, Agent, AgentOptions};

/// A client address present behind every node (on client 1's veth of each topology).
const SHARED: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 77);
/// Another one, on node C's allowlist.
const ALLOWED_ON_C: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 88);
const WAIT: Duration = Duration::from_secs(10);

struct Node {
    name: &'static str,
    agent: Agent,
    topo: Topology,
}

impl Node {
    fn start(name: &'static str, redis: &RedisServer, extra: &str) -> Result<Node> {
        let topo = Topology::new(&format!("cl{}", &name[5..]))?;
        let config = topo.agent_toml(&format!(
            "[cluster]\nredis_url = {:?}\nnode_name = {name:?}\nbackoff_max_ms = 1000\n{extra}",
            redis.url()
        ));
        let agent = Agent::start(AgentOptions {
            config_toml: Some(config),
            ..AgentOptions::default()
        })?;
        let node = Node { name, agent, topo };
        for ip in [SHARED, ALLOWED_ON_C] {
            node.add_client(ip)?;
        }
        Ok(node)
    }

    /// Gives client 1 another address `ip` the server routes back.
    fn add_client(&self, ip: Ipv4Addr) -> Result<()> {
        let host = format!("{ip}/32");
        self.topo
            .c1
            .ip(&["addr", "add", &host, "dev", &self.topo.v1.b_if])?;
        self.topo
            .srv
            .ip(&["route", "add", &host, "dev", &self.topo.v1.a_if])?;
        Ok(())
    }

    /// One GET from `from` (a shared address) on a fresh connection.
    fn get_from(&self, from: Ipv4Addr) -> Result<Probe> {
        curl(
            &self.topo.c1,
            &self.topo.url(true, "/index.html"),
            &["--interface".into(), from.to_string()],
            Duration::from_millis(500),
        )
    }

    fn connected(&self) -> Result<f64> {
        self.agent.metric("apiguard_cluster_connected", &[])
    }

    fn wait_connected(&self, up: bool) -> Result<()> {
        let want = if up { 1.0 } else { 0.0 };
        let v = self
            .agent
            .wait_metric("apiguard_cluster_connected", &[], |v| v == want, WAIT)?;
        ensure!(v == want, "{}: apiguard_cluster_connected {v}", self.name);
        Ok(())
    }

    /// The block of `target` this node holds, if any.
    fn block_of(&self, target: Ipv4Addr) -> Result<Option<serde_json::Value>> {
        Ok(self
            .agent
            .blocks()?
            .into_iter()
            .find(|b| b["target"] == target.to_string()))
    }

    /// Time from `since` until this node holds a block of `target`.
    fn wait_block(&self, target: Ipv4Addr, since: Instant, timeout: Duration) -> Result<Duration> {
        loop {
            if self.block_of(target)?.is_some() {
                return Ok(since.elapsed());
            }
            ensure!(
                since.elapsed() < timeout,
                "{}: no block of {target} within {timeout:?}; stderr:\n{}",
                self.name,
                self.agent.stderr_tail(20)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_block_on_one_node_drops_the_client_on_every_node() -> Result<()> {
    require_root()?;
    let redis = RedisServer::start()?;
    let a = Node::start("node-a", &redis, "")?;
    let b = Node::start("node-b", &redis, "")?;
    let c = Node::start(
        "node-c",
        &redis,
        &format!("[enforce]\nallowlist = [\"{ALLOWED_ON_C}\"]\n"),
    )?;
    for n in [&a, &b, &c] {
        n.wait_connected(true)?;
        ensure!(n.get_from(SHARED)? == Probe::Status(200), "{}", n.name);
    }

    // A manual block on A is in force on B and C within 1 s, with A's end.
    let t0 = Instant::now();
    a.agent.cli_ok(&[
        "block",
        &SHARED.to_string(),
        "--for",
        "10m",
        "--reason",
        "stolen",
    ])?;
    // Both nodes polled in turn, so each time is when that node first showed the block.
    let mut arrived = [None, None];
    while arrived.iter().any(Option::is_none) && t0.elapsed() < WAIT {
        for (i, n) in [&b, &c].into_iter().enumerate() {
            if arrived[i].is_none() && n.block_of(SHARED)?.is_some() {
                arrived[i] = Some(t0.elapsed());
            }
        }
    }
    for (n, took) in [&b, &c].into_iter().zip(arrived) {
        eprintln!("{}: block from node-a in force after {took:?}", n.name);
        let took = took.unwrap_or(WAIT);
        ensure!(
            took <= Duration::from_secs(1),
            "{}: block arrived after {took:?}",
            n.name
        );
    }
    for n in [&b, &c] {
        let block = n.block_of(SHARED)?.unwrap_or_default();
        ensure!(
            block["reason"] == "manual" && block["detail"] == "stolen",
            "{block}"
        );
        let left = block["expires_in_secs"].as_f64().unwrap_or(0.0);
        ensure!((585.0..=600.0).contains(&left), "{}: {block}", n.name);
        ensure!(
            n.get_from(SHARED)? == Probe::NoConnection,
            "{} still serves",
            n.name
        );
        let events = n.agent.wait_for_events(|e| e["type"] == "block", 1, WAIT)?;
        ensure!(
            events[0]["target"] == SHARED.to_string() && events[0]["decided_by"] == "node-a",
            "{}: {}",
            n.name,
            events[0]
        );
    }
    ensure!(a.get_from(SHARED)? == Probe::NoConnection);
    let own = a.agent.wait_for_events(|e| e["type"] == "block", 1, WAIT)?;
    ensure!(own[0]["decided_by"] == "node-a", "{}", own[0]);

    // A node's own allowlist wins over a remote block.
    let t1 = Instant::now();
    a.agent
        .cli_ok(&["block", &ALLOWED_ON_C.to_string(), "--for", "10m"])?;
    b.wait_block(ALLOWED_ON_C, t1, WAIT)?;
    let refused = c.agent.wait_metric(
        "apiguard_cluster_remote_blocks_total",
        &[("result", "refused")],
        |v| v >= 1.0,
        WAIT,
    )?;
    ensure!(refused == 1.0, "refused {refused}");
    ensure!(c.block_of(ALLOWED_ON_C)?.is_none());
    ensure!(c.get_from(ALLOWED_ON_C)? == Probe::Status(200));
    ensure!(b.get_from(ALLOWED_ON_C)? == Probe::NoConnection);

    // An unblock on B lifts the block everywhere.
    let t2 = Instant::now();
    b.agent.cli_ok(&["unblock", &SHARED.to_string()])?;
    for n in [&a, &c] {
        wait_for_probe(|| n.get_from(SHARED), Probe::Status(200), t2, WAIT)?;
        ensure!(n.block_of(SHARED)?.is_none(), "{}", n.name);
        let lifted = n
            .agent
            .wait_for_events(|e| e["type"] == "unblock", 1, WAIT)?;
        ensure!(
            lifted[0]["reason"] == "cluster" && lifted[0]["decided_by"] == "node-b",
            "{}: {}",
            n.name,
            lifted[0]
        );
    }
    // Nothing was lost on the way, and no node echoed another's decision back.
    for n in [&a, &b, &c] {
        ensure!(n.agent.metric("apiguard_cluster_dropped_total", &[])? == 0.0);
        ensure!(n.agent.metric("apiguard_cluster_errors_total", &[])? == 0.0);
    }
    let applied = b.agent.metric(
        "apiguard_cluster_remote_blocks_total",
        &[("result", "applied")],
    )?;
    ensure!(applied == 2.0, "B applied {applied}");
    Ok(())
}

#[test]
fn redis_down_means_local_enforcement_and_blocks_published_after_it_returns() -> Result<()> {
    require_root()?;
    let mut redis = RedisServer::start()?;
    let a = Node::start("node-a", &redis, "")?;
    let b = Node::start("node-b", &redis, "")?;
    a.wait_connected(true)?;
    b.wait_connected(true)?;
    // A block from before the outage, which the restarted (empty) Redis will have lost.
    let before = Ipv4Addr::new(192, 0, 2, 10);
    a.agent
        .cli_ok(&["block", &before.to_string(), "--for", "10m"])?;
    b.wait_block(before, Instant::now(), WAIT)?;

    redis.kill();
    a.wait_connected(false)?;
    b.wait_connected(false)?;
    // Requests are served, and the daemon says it is on its own.
    for n in [&a, &b] {
        for _ in 0..5 {
            ensure!(n.get_from(SHARED)? == Probe::Status(200), "{}", n.name);
        }
        let status: serde_json::Value =
            serde_json::from_str(&n.agent.cli_ok(&["status", "--json"])?)?;
        ensure!(
            status["cluster"]["connected"] == false && status["cluster"]["node"] == n.name,
            "{status}"
        );
        ensure!(n.agent.metric("apiguard_cluster_errors_total", &[])? >= 1.0);
    }
    // A block during the outage holds locally at once.
    a.agent
        .cli_ok(&["block", &SHARED.to_string(), "--for", "10m"])?;
    ensure!(a.get_from(SHARED)? == Probe::NoConnection);
    ensure!(b.get_from(SHARED)? == Probe::Status(200));

    // Redis is back (empty): within 5 s both resync and B holds the outage's block.
    redis.restart()?;
    let t0 = Instant::now();
    let took = b.wait_block(SHARED, t0, Duration::from_secs(8))?;
    eprintln!("outage block at node-b {took:?} after Redis restarted");
    ensure!(
        took <= Duration::from_secs(5),
        "outage block reached B after {took:?}"
    );
    ensure!(b.get_from(SHARED)? == Probe::NoConnection);
    a.wait_connected(true)?;
    b.wait_connected(true)?;
    ensure!(a.connected()? == 1.0 && b.connected()? == 1.0);
    // The block from before the outage was announced again, and B kept it.
    ensure!(b.block_of(before)?.is_some());
    let hash = redis.command("HLEN api-guard:blocks")?;
    ensure!(hash.trim() == ":2", "blocks in force in Redis: {hash:?}");
    let status = a.agent.cli_ok(&["status"])?;
    ensure!(
        status.contains("cluster         node node-a, connected"),
        "{status}"
    );
    Ok(())
}

#[test]
fn a_cluster_policy_holds_for_all_nodes_together() -> Result<()> {
    require_root()?;
    let redis = RedisServer::start()?;
    // 10 req/s per key over the cluster, burst 1; reported, not blocked, so every request is
    // served and the breaches can be counted. Local-scope, the three nodes would admit 30/s.
    let policy = "[[enforce.policies]]\nname = \"per-key\"\nkey = \"api_key\"\nrate = 10.0\n\
                  burst = 1\nscope = \"cluster\"\n";
    let cluster = "expected_nodes = 3\n";
    let nodes = [
        Node::start("node-a", &redis, &format!("{cluster}{policy}"))?,
        Node::start("node-b", &redis, &format!("{cluster}{policy}"))?,
        Node::start("node-c", &redis, &format!("{cluster}{policy}"))?,
    ];
    for n in &nodes {
        n.wait_connected(true)?;
    }
    // 12 req/s from one key at each node (36/s in all) for about 8 s, over keep-alive.
    const PER_NODE: usize = 96;
    let started = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let runs: Vec<_> = nodes
            .iter()
            .map(|n| {
                s.spawn(move || -> Result<()> {
                    let url = n.topo.url(true, "/index.html");
                    let mut cmd = n.topo.c1.cmd("curl");
                    cmd.args(["-s", "--rate", "12/s", "-H", "X-Api-Key: shared-key-1"])
                        .args(std::iter::repeat_n(&url, PER_NODE))
                        .stdout(std::process::Stdio::null());
                    ensure!(cmd.status()?.success(), "curl at {}", n.name);
                    Ok(())
                })
            })
            .collect();
        for r in runs {
            r.join()
                .map_err(|_| anyhow::anyhow!("curl thread panicked"))??;
        }
        Ok(())
    })?;
    let secs = started.elapsed().as_secs_f64();
    let mut exceeded = 0.0;
    for n in &nodes {
        n.agent
            .wait_for_exchanges(pid_role(n.topo.server.pid(), "server"), PER_NODE, WAIT)?;
        exceeded += n.agent.wait_metric(
            "apiguard_ratelimit_exceeded_total",
            &[("policy", "per-key")],
            |v| v > 0.0,
            WAIT,
        )?;
    }
    let admitted = (3 * PER_NODE) as f64 - exceeded;
    eprintln!(
        "cluster policy: {admitted} of {} admitted in {secs:.2} s",
        3 * PER_NODE
    );
    // The bound: rate × T + burst (docs/enforcement.md).
    ensure!(
        admitted <= 10.5 * secs + 1.0,
        "{admitted} admitted in {secs:.2} s: more than 10.5/s"
    );
    ensure!(
        admitted >= 7.0 * secs,
        "{admitted} admitted in {secs:.2} s: far below the limit"
    );
    for n in &nodes {
        ensure!(
            n.agent
                .metric("apiguard_cluster_operations_total", &[("op", "limit")])?
                >= 10.0
        );
        ensure!(
            n.agent
                .metric("apiguard_cluster_errors_total", &[("op", "limit")])?
                == 0.0
        );
    }
    Ok(())
}

#[test]
fn one_key_from_two_addresses_on_each_of_three_nodes_is_one_cluster_event() -> Result<()> {
    require_root()?;
    let redis = RedisServer::start()?;
    // Threshold 5 (the default): two addresses per node never cross it on any node.
    let detect = "[detect]\nenabled = true\n[detect.auth]\nmax_clients_per_credential = 5\n";
    let nodes = [
        Node::start("node-a", &redis, detect)?,
        Node::start("node-b", &redis, detect)?,
        Node::start("node-c", &redis, detect)?,
    ];
    for n in &nodes {
        n.wait_connected(true)?;
    }
    // Six addresses in all, two behind each node.
    for (i, n) in nodes.iter().enumerate() {
        for j in 0..2u8 {
            let ip = Ipv4Addr::new(198, 18, 1, 10 * (i as u8 + 1) + j);
            n.add_client(ip)?;
            let got = curl(
                &n.topo.c1,
                &n.topo.url(true, "/index.html"),
                &[
                    "--interface".into(),
                    ip.to_string(),
                    "-H".into(),
                    "X-Api-Key: leaked-key-42".into(),
                ],
                Duration::from_secs(2),
            )?;
            ensure!(got == Probe::Status(200), "{} from {ip}: {got:?}", n.name);
        }
    }
    let sharing = |e: &serde_json::Value| {
        e["type"] == "detection" && e["rule_id"] == "auth.key_sharing_cluster"
    };
    let deadline = Instant::now() + WAIT;
    let mut found = Vec::new();
    while Instant::now() < deadline && found.is_empty() {
        for n in &nodes {
            found.extend(n.agent.events()?.into_iter().filter(|e| sharing(e)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Later ticks must not report it again anywhere.
    std::thread::sleep(Duration::from_secs(1));
    let mut all = Vec::new();
    let mut local = 0;
    for n in &nodes {
        let events = n.agent.events()?;
        all.extend(events.iter().filter(|e| sharing(e)).cloned());
        local += events
            .iter()
            .filter(|e| e["rule_id"] == "auth.key_sharing")
            .count();
    }
    ensure!(all.len() == 1, "cluster key-sharing events: {all:?}");
    ensure!(local == 0, "{local} per-node key-sharing events");
    let e = &all[0];
    let evidence = e["evidence"].as_str().unwrap_or_default();
    ensure!(
        evidence.starts_with("6 client addresses across the cluster"),
        "{e}"
    );
    ensure!(
        e["client"]["credential"]
            .as_str()
            .is_some_and(|c| c.starts_with("sha256:"))
            && !e.to_string().contains("leaked-key-42"),
        "{e}"
    );
    // Redis holds no credential: only hashes of hashes.
    let keys = redis.command("KEYS *")?;
    ensure!(
        !keys.contains("leaked") && !keys.contains("sha256:"),
        "{keys}"
    );
    Ok(())
}

/// Failed-login window of the stuffing tests: long, so that a run rarely straddles two.
const FAILURE_WINDOW_SECS: u64 = 3600;

/// Waits (at most 20 s) if the current failure window ends within 20 s: counts split over
/// two tumbling windows would not cross the threshold.
fn wait_for_fresh_window() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let left = FAILURE_WINDOW_SECS - now % FAILURE_WINDOW_SECS;
    if left < 20 {
        std::thread::sleep(Duration::from_secs(left + 1));
    }
}

impl Node {
    /// One failed login (`POST /login`, answered 401) from `from` with `args` (the body).
    fn fail_login(&self, from: Ipv4Addr, args: &[&str]) -> Result<()> {
        let mut all = vec!["--interface".to_string(), from.to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        let got = curl(
            &self.topo.c1,
            &self.topo.url(true, "/login"),
            &all,
            Duration::from_secs(2),
        )?;
        ensure!(
            got == Probe::Status(401),
            "{} from {from}: {got:?}",
            self.name
        );
        Ok(())
    }

    /// Waits until this node has counted `n` failed logins in Redis in all.
    fn wait_signals_sent(&self, n: f64) -> Result<()> {
        let labels = [("kind", "failed_login"), ("result", "sent")];
        let sent =
            self.agent
                .wait_metric("apiguard_cluster_signals_total", &labels, |v| v >= n, WAIT)?;
        ensure!(
            sent == n,
            "{}: {sent} failed logins sent, not {n}",
            self.name
        );
        Ok(())
    }
}

/// Every event of rule `rule` on any node, with the node that wrote it.
fn events_of(nodes: &[Node], rule: &str) -> Result<Vec<(&'static str, serde_json::Value)>> {
    let mut found = Vec::new();
    for n in nodes {
        let events = n.agent.events()?;
        found.extend(
            events
                .into_iter()
                .filter(|e| e["rule_id"] == rule)
                .map(|e| (n.name, e)),
        );
    }
    Ok(found)
}

#[test]
fn failed_logins_spread_over_three_nodes_are_one_cluster_event_each() -> Result<()> {
    require_root()?;
    let redis = RedisServer::start()?;
    // The defaults, said out loud: 10 failures per client, 10 addresses per account.
    let detect = format!(
        "[detect]\nenabled = true\n[detect.auth]\nfailure_threshold = 10\n\
         max_clients_per_username = 10\nfailure_window_secs = {FAILURE_WINDOW_SECS}\n"
    );
    let nodes = [
        Node::start("node-a", &redis, &detect)?,
        Node::start("node-b", &redis, &detect)?,
        Node::start("node-c", &redis, &detect)?,
    ];
    for n in &nodes {
        n.wait_connected(true)?;
    }
    wait_for_fresh_window();
    // 1. One client load-balanced over the nodes: 4 + 4 + 3 failed logins to 11 accounts.
    // Each node waits for the previous one's count to be in Redis, so the 11th failure, at
    // node C, is the one that crosses.
    let mut user = 0;
    for (n, count) in nodes.iter().zip([4, 4, 3]) {
        for _ in 0..count {
            let body = format!("username=user{user}&password=Winter2026!");
            n.fail_login(SHARED, &["-d", &body])?;
            user += 1;
        }
        n.wait_signals_sent(f64::from(count))?;
    }
    // 2. A botnet on one account: 4 + 4 + 3 addresses, one failed login each (JSON).
    let login = r#"{"email":"Victim@Example.com","password":"hunter2"}"#;
    for (i, (n, count)) in nodes.iter().zip([4u8, 4, 3]).enumerate() {
        for j in 0..count {
            let ip = Ipv4Addr::new(198, 18, 2, 10 * (i as u8 + 1) + j);
            n.add_client(ip)?;
            n.fail_login(ip, &["-H", "Content-Type: application/json", "-d", login])?;
        }
        let before = [4.0, 4.0, 3.0][i];
        n.wait_signals_sent(before + f64::from(count))?;
    }
    // Both events are written by the node whose flush crossed; later ticks add nothing.
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline
        && events_of(&nodes, "auth.distributed_stuffing_cluster")?.is_empty()
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));

    let stuffing = events_of(&nodes, "auth.credential_stuffing_cluster")?;
    ensure!(stuffing.len() == 1, "cluster stuffing events: {stuffing:?}");
    let (by, e) = &stuffing[0];
    ensure!(
        *by == "node-c"
            && e["type"] == "detection"
            && e["kind"] == "credential_stuffing"
            && e["severity"] == "high"
            && e["location"] == "client"
            && e["client"]["ip"] == SHARED.to_string()
            && e["request"]["method"] == "POST"
            && e["request"]["path"] == "/login"
            && e["status"] == 401,
        "{e}"
    );
    ensure!(
        e["evidence"]
            == format!(
                "11 401/403 responses cluster-wide, 11 accounts named, in {FAILURE_WINDOW_SECS} s \
                 (limit 10)"
            ),
        "{e}"
    );
    let spread = events_of(&nodes, "auth.distributed_stuffing_cluster")?;
    ensure!(spread.len() == 1, "distributed stuffing events: {spread:?}");
    let (by, e) = &spread[0];
    // sha256("victim@example.com"), first 8 bytes: the account, lowercased and hashed.
    ensure!(
        *by == "node-c"
            && e["location"] == "account"
            && e["client"]["ip"] == "198.18.2.32"
            && e["evidence"]
                == format!(
                    "sha256:ffbe8cff4f9f8d8b: failed logins from 11 addresses cluster-wide in \
                     {FAILURE_WINDOW_SECS} s (limit 10)"
                ),
        "{e}"
    );
    // No node crossed a threshold alone, and nothing went missing.
    ensure!(events_of(&nodes, "auth.credential_stuffing")?.is_empty());
    for n in &nodes {
        let labels = [("kind", "failed_login"), ("result", "dropped")];
        ensure!(n.agent.metric("apiguard_cluster_signals_total", &labels)? == 0.0);
        ensure!(n.agent.metric("apiguard_cluster_errors_total", &[])? == 0.0);
    }
    // Redis holds addresses and hashes: no name, no password, not even the event's hash.
    let keys = redis.command("KEYS *")?;
    ensure!(keys.contains("api-guard:cs:c:198.18.0.77:"), "{keys}");
    for secret in ["user", "ictim", "Winter", "hunter", "sha256:", "ffbe8cff"] {
        ensure!(!keys.contains(secret), "{secret} in {keys}");
    }
    Ok(())
}

#[test]
fn with_redis_down_failed_logins_are_judged_locally_without_waiting() -> Result<()> {
    require_root()?;
    let mut redis = RedisServer::start()?;
    let detect = format!(
        "[detect]\nenabled = true\n[detect.auth]\nfailure_window_secs = {FAILURE_WINDOW_SECS}\n"
    );
    let a = Node::start("node-a", &redis, &detect)?;
    a.wait_connected(true)?;
    redis.kill();
    a.wait_connected(false)?;
    // 11 failed logins at one node: every one answered, the 11th crosses the local threshold.
    let mut slowest = Duration::ZERO;
    for i in 0..11 {
        let t = Instant::now();
        a.fail_login(SHARED, &["-d", &format!("username=user{i}&password=x")])?;
        slowest = slowest.max(t.elapsed());
    }
    eprintln!("slowest failed login with Redis down: {slowest:?}");
    let local = a
        .agent
        .wait_for_events(|e| e["rule_id"] == "auth.credential_stuffing", 1, WAIT)?;
    ensure!(
        local.len() == 1
            && local[0]["client"]["ip"] == SHARED.to_string()
            && local[0]["evidence"]
                .as_str()
                .is_some_and(|s| s.starts_with("11 401/403 responses in ")),
        "{local:?}"
    );
    // Nothing reached Redis, nothing was lost: the failures wait for it in the buffer.
    let sent = [("kind", "failed_login"), ("result", "sent")];
    let dropped = [("kind", "failed_login"), ("result", "dropped")];
    ensure!(a.agent.metric("apiguard_cluster_signals_total", &sent)? == 0.0);
    ensure!(a.agent.metric("apiguard_cluster_signals_total", &dropped)? == 0.0);
    ensure!(a.agent.metric("apiguard_cluster_connected", &[])? == 0.0);
    ensure!(events_of(std::slice::from_ref(&a), "auth.credential_stuffing_cluster")?.is_empty());
    Ok(())
}
