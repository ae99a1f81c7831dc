//! Daemon lifecycle: SIGTERM right after traffic drains the ring buffer and flushes the
//! exchanges file, exits 0 within 10 s, and leaves no BPF program or link behind; a
//! second agent started right after works and stops cleanly on SIGINT.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use integration_tests::bpf::{held_by, still_loaded};
use integration_tests::exchange::{dump, of_pid, pid_role};
use integration_tests::util::wait_until;
use integration_tests::{
    require_root, unique_port, veth_pair, Agent, AgentOptions, Curl, Netns, PyHttpServer,
};

#[test]
fn sigterm_flushes_detaches_and_allows_a_restart() -> Result<()> {
    require_root()?;
    let ns_srv = Netns::new("aglife-srv")?;
    let ns_cli = Netns::new("aglife-cli")?;
    let (ip_srv, _) = veth_pair(&ns_srv, &ns_cli)?;
    let server = PyHttpServer::start(
        &ns_srv,
        SocketAddr::new(ip_srv.into(), unique_port()?),
        &[("one", 111), ("two", 222)],
    )?;

    let mut agent = Agent::start(AgentOptions::default())?;
    let (code, _) = agent.healthz()?;
    ensure!(code == 200, "/healthz answered {code} after start");
    let held = held_by(agent.pid())?;
    println!(
        "agent holds {} programs, {} links, {} maps",
        held.progs.len(),
        held.links.len(),
        held.maps.len()
    );
    ensure!(
        !held.progs.is_empty(),
        "a healthy agent holds its BPF programs: {held:?}"
    );

    // Stop without waiting for the exchanges to appear: the shutdown itself must drain
    // the ring buffer and flush the file.
    let run = Curl::new(&ns_cli)
        .url(server.url("/one"))
        .url(server.url("/two"))
        .run()?;
    ensure!(
        run.connects() == 1,
        "curl did not reuse its connection: {run:#?}"
    );
    let started = Instant::now();
    let status = agent.stop()?;
    let took = started.elapsed();
    ensure!(
        status.success(),
        "SIGTERM must exit 0, got {status}:\n{}",
        agent.stderr_tail(30)
    );
    ensure!(took < Duration::from_secs(10), "shutdown took {took:?}");
    println!("SIGTERM -> exit 0 in {took:?}");

    let text = std::fs::read(agent.exchanges_path())?;
    ensure!(
        text.last() == Some(&b'\n'),
        "the file ends with a complete line"
    );
    let srv = agent.exchanges_matching(pid_role(server.pid(), "server"))?;
    let cli = agent.exchanges_matching(pid_role(run.pid, "client"))?;
    let paths = |v: &[serde_json::Value]| -> Vec<String> {
        v.iter()
            .map(|e| e["path"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    ensure!(
        paths(&srv) == ["/one", "/two"] && paths(&cli) == ["/one", "/two"],
        "flushed on shutdown: expected /one and /two from each end, got\n{}{}",
        dump(&srv),
        dump(&cli)
    );
    let bodies: Vec<_> = srv
        .iter()
        .map(|e| e["response_body_bytes"].clone())
        .collect();
    ensure!(bodies == [111, 222], "response_body_bytes {bodies:?}");

    // The kernel frees programs, links and then maps asynchronously (well under a second
    // here) once the last reference is gone. Programs and links must go; a map may be
    // pinned on purpose (e.g. a blocklist), so leftover maps are reported, not failed.
    let freed = wait_until(
        "the agent's BPF objects to be freed",
        Duration::from_secs(5),
        Duration::from_millis(100),
        || Ok(still_loaded(&held)?.is_empty().then_some(())),
    );
    let left = still_loaded(&held)?;
    ensure!(
        left.progs.is_empty() && left.links.is_empty(),
        "after exit these BPF programs/links are still loaded: {left:?}"
    );
    match freed {
        Ok(()) => println!("all {} programs, links and maps freed", held.progs.len()),
        Err(_) => println!(
            "maps still present 5 s after exit (pinned?): {:?}",
            left.maps
        ),
    }

    // A second agent starts, captures, and stops on SIGINT.
    let mut second = Agent::start(AgentOptions::default())?;
    let run = Curl::new(&ns_cli).url(server.url("/one")).run()?;
    let srv = second
        .wait_for_exchanges(
            |e| pid_role(server.pid(), "server")(e) && e["path"] == "/one",
            1,
            Duration::from_secs(10),
        )
        .context("second agent, started right after the first exited")?;
    ensure!(srv.len() == 1, "second agent:\n{}", dump(&srv));
    let status = second.stop_with(libc::SIGINT)?;
    ensure!(
        status.success(),
        "SIGINT must exit 0, got {status}:\n{}",
        second.stderr_tail(30)
    );
    let cli = second.exchanges_matching(of_pid(run.pid))?;
    ensure!(
        cli.len() == 1 && cli[0]["role"] == "client",
        "second agent, client side:\n{}",
        dump(&cli)
    );
    Ok(())
}
