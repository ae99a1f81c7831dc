//! Connection parsing cost per request (`cargo xtask bench http`): 100 keep-alive GETs with
//! 1000-byte JSON answers on one connection, as HTTP/1.1 text and as HTTP/2 frames recorded
//! from the `h2` library (HPACK with Huffman coding and the dynamic table, as curl, nginx
//! and gRPC use it; `benches/data/gen_h2.py`). Reported per request (Throughput::Elements).

use std::hint::black_box;

use api_guard::http::{HttpConnection, HttpLimits, Stream};
use criterion::{criterion_group, Criterion, Throughput};

const REQUESTS: u64 = 100;

fn h1_streams() -> (Vec<u8>, Vec<u8>) {
    let (mut req, mut resp) = (Vec::new(), Vec::new());
    let body = vec![b'x'; 1000];
    for i in 0..REQUESTS {
        req.extend_from_slice(
            format!(
                "GET /v1/orders/{}?expand=items HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln\r\n\r\n",
                1000 + i
            )
            .as_bytes(),
        );
        resp.extend_from_slice(b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 05 Dec 2026 23:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n");
        resp.extend_from_slice(&body);
    }
    (req, resp)
}

fn run(client: &[u8], server: &[u8], chunk: usize) -> usize {
    let mut conn = HttpConnection::new(HttpLimits::default());
    let mut out = Vec::new();
    // Interleaved as on the wire: a client piece, then a server piece.
    let (mut c, mut s) = (client.chunks(chunk), server.chunks(chunk * 13));
    let mut ts = 0;
    loop {
        ts += 1;
        let (a, b) = (c.next(), s.next());
        if a.is_none() && b.is_none() {
            break;
        }
        if let Some(a) = a {
            conn.feed(Stream::Request, a, ts, &mut out);
        }
        if let Some(b) = b {
            conn.feed(Stream::Response, b, ts, &mut out);
        }
    }
    conn.close(ts + 1, &mut out);
    assert_eq!(out.len(), REQUESTS as usize);
    out.len()
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("connection");
    g.throughput(Throughput::Elements(REQUESTS));
    let (req, resp) = h1_streams();
    g.bench_function("h1_keepalive_get_1k", |b| {
        b.iter(|| run(black_box(&req), black_box(&resp), 160))
    });
    let client = include_bytes!("data/h2-client.bin");
    let server = include_bytes!("data/h2-server.bin");
    g.bench_function("h2_get_1k", |b| {
        b.iter(|| run(black_box(client), black_box(server), 80))
    });
    g.finish();
}

criterion_group!(http, benches);

fn main() {
    http();
    Criterion::default().configure_from_args().final_summary();
}
