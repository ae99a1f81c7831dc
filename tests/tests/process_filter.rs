//! The cgroup process filter: with `[capture] cgroups = [DIR]` only processes whose cgroup v2
//! is DIR are captured. nginx is moved into a cgroup made for this test; curl (outside it)
//! and everything else on the host must not appear.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::exchange::{dump, pid_role};
use integration_tests::{require_root, unique_port, Agent, AgentOptions, Netns, Nginx};

/// A child cgroup of the cgroup2 mount, removed on drop (after its processes are gone).
struct Cgroup(PathBuf);

impl Cgroup {
    fn new() -> Result<Self> {
        let mounts = std::fs::read_to_string("/proc/mounts")?;
        let root = mounts
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.get(2) == Some(&"cgroup2"))
            .and_then(|f| f.get(1).map(PathBuf::from))
            .context("no cgroup2 file system mounted")?;
        let dir = root.join(format!("apiguard-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }

    fn add(&self, pid: u32) -> Result<()> {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("moving {pid} into {}", self.0.display()))
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // The processes were killed by their own guards; retry briefly while they exit.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn cgroup_filter_captures_only_that_cgroup() -> Result<()> {
    require_root()?;
    let cgroup = Cgroup::new()?;
    let ns = Netns::new("agcg")?;
    let listen = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), unique_port()?);
    let nginx = Nginx::start(&ns, listen, &[("a", 100), ("b", 200)])?;
    cgroup.add(nginx.pid())?;
    let config = format!(
        "[capture]\ncgroups = [{:?}]\n",
        cgroup.0.display().to_string()
    );
    let mut agent = Agent::start(AgentOptions {
        config_toml: Some(config),
        ..AgentOptions::default()
    })?;

    let out = ns
        .cmd("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} ",
        ])
        .args([nginx.url("/a"), nginx.url("/b")])
        .output()?;
    ensure!(out.status.success(), "curl failed: {:?}", out);
    ensure!(
        String::from_utf8_lossy(&out.stdout) == "200 200 ",
        "curl: {:?}",
        out.stdout
    );

    let server =
        agent.wait_for_exchanges(pid_role(nginx.pid(), "server"), 2, Duration::from_secs(10))?;
    agent.stop()?;
    let all = agent.exchanges()?;
    let paths: Vec<&str> = server.iter().filter_map(|e| e["path"].as_str()).collect();
    ensure!(paths == ["/a", "/b"], "paths {paths:?}\n{}", dump(&all));
    let sizes: Vec<u64> = server
        .iter()
        .filter_map(|e| e["response_body_bytes"].as_u64())
        .collect();
    ensure!(sizes == [100, 200], "sizes {sizes:?}");
    // Nothing outside the cgroup: not curl's client side, not any other process.
    ensure!(
        all.len() == 2,
        "{} exchanges, expected exactly nginx's 2:\n{}",
        all.len(),
        dump(&all)
    );
    Ok(())
}
