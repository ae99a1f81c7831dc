//! The harness itself, without the daemon: namespaces, veth pairs, real servers and
//! clients behave as the api-guard tests assume (exact sizes, keep-alive, pipelining,
//! and wrk's request count versus nginx's own count).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use integration_tests::servers::{raw_exchange, scratch_file};
use integration_tests::util::{run_checked, unique_comm, wait_until};
use integration_tests::wrk::{self, WrkArgs};
use integration_tests::{
    require_root, unique_port, veth_pair, Curl, CurlExe, Netns, Nginx, NginxOptions, PyHttpServer,
    PyOptions, TempDir,
};

#[test]
fn nginx_over_veth_serves_exact_bytes() -> Result<()> {
    require_root()?;
    let ns_srv = Netns::new("agself-srv")?;
    let ns_cli = Netns::new("agself-cli")?;
    let (ip_srv, ip_cli) = veth_pair(&ns_srv, &ns_cli)?;
    let listen = SocketAddr::new(ip_srv.into(), unique_port()?);
    let nginx = Nginx::start(&ns_srv, listen, &[("f1k", 1024), ("big", 1 << 20)])?;

    let run = Curl::new(&ns_cli)
        .url(nginx.url("/f1k"))
        .url(nginx.url("/big"))
        .url(nginx.url("/missing"))
        .run()?;
    let got: Vec<(u16, u64)> = run
        .transfers
        .iter()
        .map(|t| (t.http_code(), t.size_download()))
        .collect();
    assert_eq!(got[..2], [(200, 1024), (200, 1 << 20)], "{run:#?}");
    assert_eq!(got[2].0, 404, "{run:#?}");
    assert_eq!(
        run.connects(),
        1,
        "nginx keeps the connection alive: {run:#?}"
    );
    for t in &run.transfers {
        assert_eq!(t.remote_addr()?, listen);
        assert_eq!(t.local_addr()?.ip(), IpAddr::V4(ip_cli));
    }

    let scratch = TempDir::new("selftest")?;
    let body = scratch_file(&scratch, "body", 2000)?;
    let post = Curl::new(&ns_cli)
        .arg("-H")
        .arg("Expect:")
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .url(nginx.url("/upload"))
        .run()?;
    let t = &post.transfers[0];
    assert_eq!(
        (t.http_code(), t.size_download(), t.size_upload()),
        (201, 8, 2000)
    );
    Ok(())
}

/// Reads one response header from a `curl -D` dump.
fn header(dump: &str, name: &str) -> Option<String> {
    dump.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

#[test]
fn python_server_keeps_alive_and_reads_bodies() -> Result<()> {
    require_root()?;
    let ns_srv = Netns::new("agself-py")?;
    let ns_cli = Netns::new("agself-pyc")?;
    let (ip_srv, _) = veth_pair(&ns_srv, &ns_cli)?;
    let comm = unique_comm("agp");
    let server = PyHttpServer::start_with(
        &ns_srv,
        SocketAddr::new(ip_srv.into(), unique_port()?),
        &[("a", 10), ("b", 1000)],
        PyOptions {
            comm: Some(comm.clone()),
        },
    )?;
    let proc_comm = std::fs::read_to_string(format!("/proc/{}/comm", server.pid()))?;
    assert_eq!(
        proc_comm.trim(),
        comm,
        "the symlink name is the server's comm"
    );
    assert_eq!(server.comm(), comm);

    let curl_exe = CurlExe::with_comm(&unique_comm("agc"))?;
    let run = Curl::new(&ns_cli)
        .exe(&curl_exe)
        .url(server.url("/a"))
        .url(server.url("/b?q=1"))
        .url(server.url("/nope"))
        .run()?;
    let got: Vec<(u16, u64)> = run
        .transfers
        .iter()
        .map(|t| (t.http_code(), t.size_download()))
        .collect();
    assert_eq!(got[..2], [(200, 10), (200, 1000)], "{run:#?}");
    assert_eq!(got[2].0, 404);
    assert_eq!(
        run.connects(),
        1,
        "HTTP/1.1 keep-alive: one connection for three URLs"
    );

    let scratch = TempDir::new("selftest")?;
    for (chunked, size, wire) in [(false, 1000, 1000), (true, 5000, 5013)] {
        let body = scratch_file(&scratch, &format!("body{size}"), size)?;
        let headers = scratch.join(format!("headers{size}"));
        let mut curl = Curl::new(&ns_cli)
            .exe(&curl_exe)
            .arg("-H")
            .arg("Expect:")
            .arg("-D")
            .arg(&headers);
        if chunked {
            curl = curl.arg("-H").arg("Transfer-Encoding: chunked");
        }
        let post = curl
            .arg("--data-binary")
            .arg(format!("@{}", body.display()))
            .url(server.url("/upload"))
            .run()?;
        let t = &post.transfers[0];
        assert_eq!(
            (t.http_code(), t.size_download(), t.size_upload()),
            (200, 3, wire)
        );
        let dump = std::fs::read_to_string(&headers)?;
        assert_eq!(
            header(&dump, "X-Received-Bytes"),
            Some(size.to_string()),
            "{dump}"
        );
    }
    Ok(())
}

#[test]
fn pipelined_raw_client_gets_three_responses_in_order() -> Result<()> {
    require_root()?;
    let ns = Netns::new("agself-pipe")?;
    let listen = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), unique_port()?);
    let nginx = Nginx::start(&ns, listen, &[("a", 100), ("b", 5000)])?;
    let payload = "GET /a HTTP/1.1\r\nHost: t\r\n\r\n\
                   GET /b HTTP/1.1\r\nHost: t\r\n\r\n\
                   GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let run = raw_exchange(&ns, nginx.addr(), payload.as_bytes())?;
    assert_eq!(
        run.status_codes(),
        [200, 200, 404],
        "{}",
        String::from_utf8_lossy(&run.response)
    );
    assert_ne!(run.local_port, 0);
    Ok(())
}

fn netns_list() -> Result<String> {
    run_checked(Command::new("ip").args(["netns", "list"]))
}

#[test]
fn namespaces_and_veths_are_unique_and_removed_on_drop() -> Result<()> {
    require_root()?;
    let mut names = Vec::new();
    let mut addrs = Vec::new();
    {
        let a = Netns::new("agself-x")?;
        let b = Netns::new("agself-y")?;
        for _ in 0..3 {
            let (x, y) = veth_pair(&a, &b)?;
            addrs.extend([x, y]);
        }
        names.extend([a.name().to_string(), b.name().to_string()]);
        let links = a.ip(&["-br", "link"])?;
        ensure!(
            links.matches("agv").count() == 3,
            "three veth ends in {}: {links}",
            a.name()
        );
        // The namespace's `lo` is up and reachable.
        let out = run_checked(a.cmd("ip").args(["-br", "link", "show", "lo"]))?;
        ensure!(
            out.contains("UP") || out.contains("UNKNOWN"),
            "lo state: {out}"
        );
        ensure!(netns_list()?.contains(a.name()), "namespace was created");
    }
    let mut unique = addrs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6, "addresses must not repeat: {addrs:?}");
    for a in &addrs {
        assert_eq!(a.octets()[..2], [10, 231], "{a}");
    }
    let list = netns_list()?;
    for name in &names {
        assert!(!list.contains(name.as_str()), "{name} still exists: {list}");
    }
    Ok(())
}

/// The flood test's ground truth: wrk counts completed responses, nginx counts served
/// requests; at most one request per connection is in flight when wrk stops.
#[test]
fn wrk_count_brackets_nginx_access_log() -> Result<()> {
    require_root()?;
    let ns_srv = Netns::new("agself-wrks")?;
    let ns_cli = Netns::new("agself-wrkc")?;
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
    let args = WrkArgs {
        threads: 1,
        connections: 10,
        duration: Duration::from_secs(1),
        latency: true,
        script: None,
    };
    let report = wrk::run(&ns_cli, &nginx.url("/f1k"), &args)?;
    let served = wait_until(
        "nginx's access log to settle",
        Duration::from_secs(5),
        Duration::from_millis(200),
        {
            let nginx = &nginx;
            let mut last = None;
            move || {
                let n = nginx.access_log_lines()?;
                let settled = last == Some(n);
                last = Some(n);
                Ok(settled.then_some(n))
            }
        },
    )
    .context("counting nginx requests")?;
    println!(
        "wrk: {} requests, p99 {:?} ms; nginx served {served}",
        report.requests, report.p99_ms
    );
    assert!(report.requests > 0, "{}", report.raw);
    assert!(report.p99_ms.is_some(), "{}", report.raw);
    assert_eq!(report.non_2xx_3xx, 0, "{}", report.raw);
    let served = served as u64;
    assert!(
        served >= report.requests && served <= report.requests + u64::from(args.connections),
        "nginx served {served}, wrk completed {}",
        report.requests
    );
    Ok(())
}
