//! HTTPS between python's `http.server` behind `ssl` (namespace A) and a python
//! `http.client.HTTPSConnection` client (namespace B) over a veth pair. Python's `_ssl`
//! module is loaded (dlopen) on `import ssl` and links the system libssl.so.3, which the
//! agent hooks at start. The client makes six requests on one keep-alive connection and
//! reports exact byte counts from its own reads and writes; the 404 comes last because
//! `http.server` closes the connection after an error.
//!
//! The agent captures only the two unique comms (both pythons run through symlinks).

use std::time::Duration;

use anyhow::{ensure, Result};
use integration_tests::exchange::{dump, Window};
use integration_tests::procfs::mapped_path;
use integration_tests::tls::{
    check_run, check_tls_only, py_https_client, stop_expecting_tls_exchanges, wait_probes_attached,
    End, Req, LIBSSL, REQUESTS,
};
use integration_tests::util::unique_comm;
use integration_tests::{
    require_root, Agent, AgentOptions, CommExe, NetPair, PyHttpServer, PyOptions, TlsCert,
};

const BIG: usize = 2 << 20;

#[test]
fn python_https_server_and_client() -> Result<()> {
    require_root()?;
    let cert = TlsCert::generate("api-guard-test")?;
    let net = NetPair::new("agtls-py")?;
    let listen = net.server_addr()?;
    let server = PyHttpServer::start_tls(
        &net.srv,
        listen,
        &[("x", 10), ("y", 1000), ("big", BIG)],
        PyOptions {
            comm: Some(unique_comm("agts")),
        },
        &cert,
    )?;
    // Listening means `import ssl` ran: the server maps libssl.so.3 now.
    let libssl = mapped_path(server.pid(), LIBSSL)?;
    let client_exe = CommExe::python(&unique_comm("agtq"))?;
    let mut agent = Agent::start(AgentOptions::comms_only(&[
        server.comm(),
        client_exe.comm(),
    ]))?;
    let probes = wait_probes_attached(&agent, &libssl, Duration::from_secs(1))?;
    println!("{probes} uprobes attached in {libssl}");
    let before = agent.metrics()?;

    let requests = [
        ("GET", Req::new("/x")),
        ("GET", Req::new("/y?id=7&v=a")),
        ("POST", Req::new("/upload").body(1000)),
        ("HEAD", Req::new("/x")),
        ("GET", Req::new("/big")),
        ("GET", Req::new("/missing")),
    ];
    let (py, window) =
        Window::around(|| py_https_client(&net.cli, &client_exe, listen, &requests))?;
    ensure!(
        py.libssl == libssl,
        "the client maps {}, the server {libssl}",
        py.libssl
    );
    let got: Vec<(u16, u64)> = py
        .run
        .transfers
        .iter()
        .map(|t| (t.http_code(), t.size_download()))
        .collect();
    ensure!(
        got[..5]
            == [
                (200, 10),
                (200, 1000),
                (200, 3),
                (200, 0),
                (200, BIG as u64)
            ]
            && got[5].0 == 404,
        "the python client saw {got:?}"
    );
    let server_end = End {
        pid: server.pid(),
        comm: server.comm().into(),
        library: Some(libssl.clone()),
    };
    let client_end = End {
        pid: py.run.pid,
        comm: client_exe.comm().into(),
        library: Some(py.libssl.clone()),
    };
    let reqs: Vec<Req> = requests.iter().map(|(_, r)| *r).collect();
    let (srv, cli) = check_run(
        &agent,
        &server_end,
        listen,
        &client_end,
        &py.run,
        &reqs,
        &window,
    )?;
    print!("server side:\n{}client side:\n{}", dump(&srv), dump(&cli));
    check_tls_only(&agent, &before, listen, 6)?;
    agent.check_deltas(
        &before,
        &[
            (
                REQUESTS,
                &[
                    ("role", "server"),
                    ("method", "POST"),
                    ("status", "200"),
                    ("tls", "true"),
                ],
                1.0,
            ),
            (
                REQUESTS,
                &[("role", "client"), ("status", "404"), ("tls", "true")],
                1.0,
            ),
        ],
    )?;

    stop_expecting_tls_exchanges(&mut agent, |_| true, 12)?;
    ensure!(server.is_running(), "the python server died");
    Ok(())
}
