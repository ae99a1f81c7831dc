//! The XDP guard itself: manual blocks through the CLI, expiry in the kernel with the
//! daemon running and after `kill -9` of a pinned daemon, adoption by its successor, CIDR
//! deny from the config, IPv6, and malformed frames that must pass.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use integration_tests::guard::{
    probe, send_frames, wait_for_probe, xdp_attached, PinDir, Probe, Topology,
};
use integration_tests::{require_root, Agent, AgentOptions};

const WAIT: Duration = Duration::from_secs(10);

fn agent(config: String) -> Result<Agent> {
    Agent::start(AgentOptions {
        config_toml: Some(config),
        ..AgentOptions::default()
    })
}

/// Waits until client 1 is answered again; returns the time since `since`.
const PROBE_SLACK: Duration = Duration::from_secs(2);

/// Time from `since` until client 1 is served again. A probe (a curl process with a 0.5 s
/// connect timeout) can take over a second on a loaded 2-core machine, so callers allow
/// [`PROBE_SLACK`] past the block's end; the lower bound is what shows the block held.
fn lifted_after(topo: &Topology, since: Instant) -> Result<Duration> {
    wait_for_probe(
        || topo.get(true, "/index.html"),
        Probe::Status(200),
        since,
        Duration::from_secs(15),
    )
}

#[test]
fn blocks_expire_on_time_also_after_kill9_and_are_adopted() -> Result<()> {
    require_root()?;
    let topo = Topology::new("xpin")?;
    let pins = PinDir::new()?;
    let config = topo.agent_toml(&format!("pin = true\npin_dir = {:?}\n", pins.path()));
    let (c1, c2) = (topo.v1.b_ip.to_string(), topo.v2.b_ip.to_string());
    let mut first = agent(config.clone())?;
    let pinned = pins.entries();
    for name in ["XDP_BLOCK_V4", "XDP_CIDR_V6", "XDP_STATS", "prog"] {
        ensure!(
            pinned.iter().any(|p| p == name),
            "{name} not pinned: {pinned:?}"
        );
    }
    ensure!(
        pinned.iter().filter(|p| p.starts_with("link-")).count() == 2,
        "{pinned:?}"
    );
    ensure!(topo.get(true, "/index.html")? == Probe::Status(200));

    // (a) A 3 s block ends within 1 s of its end, daemon running.
    let out = first.cli_ok(&["block", &c1, "--for", "3s", "--reason", "test a"])?;
    let t0 = Instant::now();
    ensure!(out.trim() == format!("{c1}: blocked"), "{out}");
    ensure!(topo.get(true, "/index.html")? == Probe::NoConnection);
    ensure!(topo.get(false, "/index.html")? == Probe::Status(200));
    let lifted = lifted_after(&topo, t0)?;
    ensure!(
        lifted >= Duration::from_millis(2500) && lifted <= Duration::from_secs(3) + PROBE_SLACK,
        "3 s block lifted after {lifted:?}"
    );
    let unblock = first.wait_for_events(|e| e["type"] == "unblock", 1, WAIT)?;
    ensure!(unblock[0]["target"] == c1.as_str() && unblock[0]["reason"] == "expired");
    ensure!(unblock[0]["detail"] == "test a", "{}", unblock[0]);

    // (b) The daemon dies with two blocks in force: they hold, and end on time.
    first.cli_ok(&["block", &c1, "--for", "4s"])?;
    let t1 = Instant::now();
    first.cli_ok(&["block", &c2, "--for", "10m"])?;
    first.kill9()?;
    ensure!(xdp_attached(&topo.srv, &topo.v1.a_if)? && xdp_attached(&topo.srv, &topo.v2.a_if)?);
    ensure!(topo.get(true, "/index.html")? == Probe::NoConnection);
    ensure!(topo.get(false, "/index.html")? == Probe::NoConnection);
    let lifted = lifted_after(&topo, t1)?;
    ensure!(
        lifted >= Duration::from_millis(3500) && lifted <= Duration::from_secs(4) + PROBE_SLACK,
        "4 s block lifted after {lifted:?} with no daemon"
    );
    ensure!(topo.get(false, "/index.html")? == Probe::NoConnection);

    // (c) A new daemon adopts the link and the remaining block.
    let second = agent(config)?;
    let list = second.blocks()?;
    ensure!(
        list.len() == 1 && list[0]["target"] == c2.as_str(),
        "{list:?}"
    );
    ensure!(list[0]["reason"] == "manual", "{list:?}");
    let left = list[0]["expires_in_secs"].as_f64().unwrap_or(0.0);
    ensure!((580.0..=600.0).contains(&left), "{list:?}");
    ensure!(list[0]["hits"].as_u64().unwrap_or(0) >= 2, "{list:?}");
    ensure!(
        second.stderr_text().contains("adopted=true"),
        "{}",
        second.stderr_tail(20)
    );
    ensure!(topo.get(false, "/index.html")? == Probe::NoConnection);
    let out = second.cli_ok(&["unblock", &c2])?;
    ensure!(out.trim() == format!("{c2}: unblocked"), "{out}");
    ensure!(topo.get(false, "/index.html")? == Probe::Status(200));
    ensure!(second.blocks()?.is_empty());

    // (d) A pinned guard outlives a clean stop too; removing the pins detaches it.
    let mut second = second;
    second.stop_cleanly()?;
    ensure!(xdp_attached(&topo.srv, &topo.v1.a_if)?);
    drop(pins);
    ensure!(!xdp_attached(&topo.srv, &topo.v1.a_if)?);
    Ok(())
}

#[test]
fn cidr_deny_from_config_ipv6_and_cli_errors() -> Result<()> {
    require_root()?;
    let topo = Topology::new("xcidr")?;
    let (s6, c6) = topo.v2.add_ipv6(&topo.srv, &topo.c2)?;
    // Client 1's whole /30 is denied in the config.
    let net1 = Ipv4Addr::from(u32::from(topo.v1.b_ip) & !3);
    // Client 2's interface in generic (skb) mode, client 1's in the default (native on veth).
    let ns = topo.srv.path();
    let config = format!(
        "[capture]\npids = [{}]\n[enforce]\ndeny = [\"{net1}/30\"]\n[xdp]\ninterfaces = [\
         {{ name = {:?}, netns = {ns:?} }}, {{ name = {:?}, netns = {ns:?}, mode = \"generic\" }}]\n",
        topo.server.pid(),
        topo.v1.a_if,
        topo.v2.a_if
    );
    let mut agent = agent(config)?;
    let link = |ifname: &str| topo.srv.ip(&["link", "show", "dev", ifname]);
    ensure!(
        link(&topo.v1.a_if)?.contains(" xdp "),
        "{}",
        link(&topo.v1.a_if)?
    );
    ensure!(
        link(&topo.v2.a_if)?.contains(" xdpgeneric "),
        "{}",
        link(&topo.v2.a_if)?
    );
    let before = agent.metrics()?;
    ensure!(topo.get(true, "/index.html")? == Probe::NoConnection);
    ensure!(topo.get(false, "/index.html")? == Probe::Status(200));
    let url6 = format!("http://[{s6}]:{}/index.html", topo.port);
    ensure!(probe(&topo.c2, &url6, &[], WAIT)? == Probe::Status(200));
    let drops = agent.wait_metric(
        "apiguard_xdp_packets_total",
        &[("action", "drop"), ("reason", "cidr")],
        |v| v >= 1.0,
        WAIT,
    )?;
    ensure!(drops >= 1.0, "cidr drops {drops}");
    let list = agent.blocks()?;
    ensure!(
        list.len() == 1 && list[0]["target"] == format!("{net1}/30"),
        "{list:?}"
    );
    ensure!(
        list[0]["reason"] == "config" && list[0]["until"].is_null(),
        "{list:?}"
    );
    // Config entries are lifted in the config only.
    let run = agent.cli(&["unblock", &format!("{net1}/30")])?;
    ensure!(!run.status.success() && run.stderr_text().contains("enforce.deny"));

    // IPv6: client 2 blocked over IPv6 only, at once; then a /64; then lifted at once.
    let c6s = c6.to_string();
    agent.cli_ok(&["block", &c6s, "--for", "10m"])?;
    ensure!(probe(&topo.c2, &url6, &[], Duration::from_millis(500))? == Probe::NoConnection);
    ensure!(topo.get(false, "/index.html")? == Probe::Status(200));
    agent.cli_ok(&["unblock", &c6s])?;
    ensure!(probe(&topo.c2, &url6, &[], WAIT)? == Probe::Status(200));
    let net6 = format!(
        "{}/64",
        std::net::Ipv6Addr::from(u128::from(c6) & !0xffff_ffff_ffff_ffffu128)
    );
    agent.cli_ok(&["block", &net6])?;
    ensure!(probe(&topo.c2, &url6, &[], Duration::from_millis(500))? == Probe::NoConnection);
    agent.cli_ok(&["unblock", &net6])?;
    ensure!(probe(&topo.c2, &url6, &[], WAIT)? == Probe::Status(200));

    // Clear errors for bad input and for blocks that do not exist.
    for (args, msg) in [
        (vec!["block", "10.1.2.3/8"], "did you mean 10.0.0.0/8"),
        (
            vec!["block", "not-an-ip"],
            "is not an IP address or CIDR range",
        ),
        (
            vec!["block", "10.9.9.9", "--for", "10 years"],
            "unknown unit",
        ),
        (vec!["unblock", "10.9.9.9"], "10.9.9.9 is not blocked"),
    ] {
        let run = agent.cli(&args)?;
        ensure!(
            !run.status.success() && run.stderr_text().contains(msg),
            "{args:?}: {}",
            run.stderr_text()
        );
    }
    agent.check_deltas(
        &before,
        &[
            ("apiguard_blocks_total", &[("reason", "manual")], 2.0),
            ("apiguard_unblocks_total", &[("reason", "manual")], 2.0),
            ("apiguard_blocked_clients", &[], 0.0),
        ],
    )?;

    // Unpinned: a clean stop detaches the guard; the CLI then says no daemon runs.
    agent.stop_cleanly()?;
    ensure!(!xdp_attached(&topo.srv, &topo.v1.a_if)? && !xdp_attached(&topo.srv, &topo.v2.a_if)?);
    let run = agent.cli(&["blocks"])?;
    ensure!(
        !run.status.success() && run.stderr_text().contains("no api-guard daemon is running"),
        "{}",
        run.stderr_text()
    );
    Ok(())
}

fn eth(ethertype: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0xff; 6]; // broadcast
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f.extend_from_slice(ethertype);
    f.extend_from_slice(payload);
    f
}

/// A 20-byte IPv4 header (UDP, no options) from `src`.
fn ipv4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut h = vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0];
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h
}

#[test]
fn malformed_frames_pass_and_vlan_tags_are_seen_through() -> Result<()> {
    require_root()?;
    let topo = Topology::new("xbad")?;
    let agent = agent(topo.agent_toml(""))?;
    let blocked = [192, 0, 2, 99];
    agent.cli_ok(&["block", "192.0.2.99"])?;
    let before = agent.metrics()?;
    let dst = topo.v1.a_ip.octets();
    let good = ipv4(blocked, dst);
    let mut bad_ihl = good.clone();
    bad_ihl[0] = 0x44;
    let mut bad_version = good.clone();
    bad_version[0] = 0x65;
    let vlan = |inner: &[u8], payload: &[u8]| {
        let mut p = vec![0x00, 0x05];
        p.extend_from_slice(inner);
        p.extend_from_slice(payload);
        p
    };
    let malformed = [
        eth(&[0x08, 0x00], &good[..10]),  // IPv4 header cut short
        eth(&[0x08, 0x00], &bad_ihl),     // IHL below 5
        eth(&[0x08, 0x00], &bad_version), // version 6 in an IPv4 frame
        eth(&[0x86, 0xdd], &[0x60; 20]),  // IPv6 header cut short
        eth(&[0x81, 0x00], &[0x00]),      // 802.1Q tag cut short
        eth(
            &[0x88, 0xa8],
            &vlan(&[0x81, 0x00], &vlan(&[0x08, 0x00], &good[..8])),
        ), // QinQ, short IPv4
        eth(&[0x08, 0x00], &[]),          // EtherType only
    ];
    let not_ip = [eth(&[0x88, 0xcc], &[0; 40]), eth(&[0x08, 0x06], &[0; 28])];
    // From the blocked source: untagged, 802.1Q, 802.1ad + 802.1Q.
    let tagged = [
        eth(&[0x08, 0x00], &good),
        eth(&[0x81, 0x00], &vlan(&[0x08, 0x00], &good)),
        eth(
            &[0x88, 0xa8],
            &vlan(&[0x81, 0x00], &vlan(&[0x08, 0x00], &good)),
        ),
    ];
    let frames: Vec<Vec<u8>> = malformed
        .iter()
        .chain(&not_ip)
        .chain(&tagged)
        .cloned()
        .collect();
    send_frames(&topo.c1, &topo.v1.b_if, &frames)?;
    agent.check_deltas(
        &before,
        &[
            (
                "apiguard_xdp_packets_total",
                &[("reason", "parse_fail")],
                malformed.len() as f64,
            ),
            (
                "apiguard_xdp_packets_total",
                &[("reason", "not_ip")],
                not_ip.len() as f64,
            ),
            (
                "apiguard_xdp_packets_total",
                &[("reason", "blocklist")],
                tagged.len() as f64,
            ),
        ],
    )?;
    let list = agent.blocks()?;
    ensure!(list[0]["hits"] == tagged.len(), "{list:?}");
    // Everything else still flows, and the agent is fine.
    ensure!(topo.get(true, "/index.html")? == Probe::Status(200));
    ensure!(agent.healthz()?.0 == 200);
    Ok(())
}

#[test]
fn packet_rate_limit_per_source_spares_the_allowlist() -> Result<()> {
    require_root()?;
    let topo = Topology::new("xrate")?;
    let config = format!(
        "[capture]\npids = [{}]\n[enforce]\nallowlist = [\"198.51.100.88\"]\n[xdp]\n\
         interfaces = [{{ name = {:?}, netns = {:?}, packet_rate = 10, packet_burst = 20 }}]\n",
        topo.server.pid(),
        topo.v1.a_if,
        topo.srv.path()
    );
    let agent = agent(config)?;
    let before = agent.metrics()?;
    let dst = topo.v1.a_ip.octets();
    let flood = |src| vec![eth(&[0x08, 0x00], &ipv4(src, dst)); 100];
    let started = Instant::now();
    send_frames(&topo.c1, &topo.v1.b_if, &flood([198, 51, 100, 77]))?;
    send_frames(&topo.c1, &topo.v1.b_if, &flood([198, 51, 100, 88]))?;
    // 10 packets/s refill at most this many tokens while the frames went out.
    let refill = (started.elapsed().as_secs_f64() * 10.0).ceil();
    let drops = agent.wait_metric(
        "apiguard_xdp_packets_total",
        &[("reason", "ratelimit")],
        |v| v >= 80.0 - refill,
        WAIT,
    )? - before.sum("apiguard_xdp_packets_total", &[("reason", "ratelimit")]);
    ensure!(
        drops <= 80.0 && drops >= 80.0 - refill,
        "burst 20 of 100 frames: {drops} dropped (refill allowance {refill})"
    );
    // The allowlisted source would have lost as many, and lost none.
    let spared = agent.metric("apiguard_xdp_packets_total", &[("reason", "allowlist")])?
        - before.sum("apiguard_xdp_packets_total", &[("reason", "allowlist")]);
    ensure!(
        spared <= 80.0 && spared >= 80.0 - refill,
        "allowlisted source spared {spared}"
    );
    Ok(())
}
