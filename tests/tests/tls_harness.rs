//! The TLS harness itself, without the daemon: the servers and clients the TLS capture
//! tests rely on behave as those tests assume (one keep-alive TLS connection for the
//! whole request mix, exact sizes, the libraries they map, the faults' exit codes), so a
//! failure in a `tls_*` capture test is the agent's, not the harness's.

use anyhow::{ensure, Result};
use integration_tests::procfs::mapped_path;
use integration_tests::servers::{raw_exchange, NODE};
use integration_tests::tls::{
    curl_request_mix, curl_without_common_cipher, linked_library, py_https_client,
    tls_client_killed_mid_request, Req, LIBSSL, MIX_FILES,
};
use integration_tests::util::{unique_comm, which};
use integration_tests::{
    require_root, CommExe, Curl, CurlExe, NetPair, Nginx, NginxOptions, NodeHttpsServer,
    PyHttpServer, PyOptions, TlsCert,
};

#[test]
fn tls_servers_and_clients_without_the_agent() -> Result<()> {
    require_root()?;
    let cert = TlsCert::generate("api-guard-test")?;
    let net = NetPair::new("agtls-self")?;
    let curl_exe = CurlExe::with_comm(&unique_comm("agts"))?;
    let libssl = linked_library(&which("curl")?, LIBSSL)?;
    ensure!(
        libssl.ends_with("/libssl.so.3"),
        "curl's libssl is {libssl}"
    );

    // nginx: the request mix on one connection (curl_request_mix checks sizes, methods
    // and the single connect), and the statuses.
    let nginx = Nginx::start_tls(
        &net.srv,
        net.server_addr()?,
        &MIX_FILES,
        NginxOptions::default(),
        &cert,
    )?;
    ensure!(mapped_path(nginx.pid(), LIBSSL)? == libssl);
    let (run, _) = curl_request_mix(&net.cli, &curl_exe, |t| nginx.url(t))?;
    let codes: Vec<u16> = run.transfers.iter().map(|t| t.http_code()).collect();
    ensure!(codes == [200, 404, 201, 200, 200], "nginx: {codes:?}");

    // nginx's faults: plain HTTP gets a plaintext 400, a garbage record is closed, a
    // handshake without a common cipher fails with curl's exit code 35, a client killed
    // mid-request leaves nginx serving.
    let plain = Curl::new(&net.cli)
        .url(format!("http://{}/small.txt", nginx.addr()))
        .run()?;
    ensure!(plain.transfers[0].http_code() == 400, "{plain:#?}");
    let garbage = raw_exchange(
        &net.cli,
        nginx.addr(),
        &[0x16, 3, 1, 0, 4, 0xab, 0xab, 0xab, 0xab],
    )?;
    ensure!(garbage.status_codes().is_empty(), "{garbage:?}");
    curl_without_common_cipher(Curl::new(&net.cli), nginx.url("/small.txt"))?;
    let py_exe = CommExe::python(&unique_comm("agtp"))?;
    tls_client_killed_mid_request(&net.cli, &py_exe, nginx.addr(), b"GET / HTTP/1.1\r\n")?;
    ensure!(nginx.is_running(), "nginx: {}", nginx.logs());

    // python server and client: exact accounting from the client's side.
    let server = PyHttpServer::start_tls(
        &net.srv,
        net.server_addr()?,
        &[("x", 10), ("big", 2 << 20)],
        PyOptions::default(),
        &cert,
    )?;
    ensure!(mapped_path(server.pid(), LIBSSL)? == libssl);
    let py = py_https_client(
        &net.cli,
        &py_exe,
        server.addr(),
        &[
            ("GET", Req::new("/x")),
            ("POST", Req::new("/upload").body(1000)),
            ("HEAD", Req::new("/x")),
            ("GET", Req::new("/big?q=1")),
            ("GET", Req::new("/missing")),
        ],
    )?;
    ensure!(py.libssl == libssl, "python client maps {}", py.libssl);
    let got: Vec<(u16, u64, u64)> = py
        .run
        .transfers
        .iter()
        .map(|t| (t.http_code(), t.size_upload(), t.size_download()))
        .collect();
    ensure!(
        got[..4] == [(200, 0, 10), (200, 1000, 3), (200, 0, 0), (200, 0, 2 << 20)]
            && got[4].0 == 404
            && py.run.connects() == 1,
        "python: {:#?}",
        py.run
    );
    for t in &py.run.transfers {
        // "GET /x HTTP/1.1\r\nHost: a.b.c.d:port\r\nAccept-Encoding: identity\r\n\r\n" at least.
        ensure!(
            t.request_header_bytes() > 40 && t.size_header() > 40,
            "{t:?}"
        );
    }

    // node: the same mix as nginx; node maps its own executable.
    let node = NodeHttpsServer::start(&net.srv, net.server_addr()?, &MIX_FILES, &cert)?;
    ensure!(mapped_path(node.pid(), "node")? == NODE);
    ensure!(node.comm() == "node");
    let (run, _) = curl_request_mix(&net.cli, &curl_exe, |t| node.url(t))?;
    let codes: Vec<u16> = run.transfers.iter().map(|t| t.http_code()).collect();
    ensure!(codes == [200, 404, 200, 200, 200], "node: {codes:?}");
    Ok(())
}
