//! API discovery cost per exchange (`cargo xtask bench discover`): route templating (runs on
//! the parsing task for every exchange, for the `route` label), recording an exchange in the
//! inventory (the discovery thread: a GET with a query, and a POST with 1 KiB JSON bodies both
//! ways, fresh values every time), and checking a request against a 50-operation spec.
//! The sensitive-data scanner alone runs on 1 KiB text bodies of the shapes that were hot
//! in daemon profiles: random base64, one repeated byte, and prose with an email and a
//! phone number; `observe_get_text_1k_base64` is a whole exchange with such a body.

use std::hint::black_box;

use api_guard::discover::{
    inventory::{Inventory, InventoryConfig, Observation, ObservedCredential},
    sensitive::{classify_bytes, ClassCounts, MAX_SCAN},
    spec::Spec,
    template::{TemplateConfig, Templater},
};
use api_guard::http::Headers;
use api_guard::identity::CredentialScheme;
use criterion::{criterion_group, Criterion, Throughput};

const PATHS: usize = 4096;

fn order_json(n: usize) -> String {
    let items: Vec<String> = (0..8)
        .map(|i| {
            format!(
                r#"{{"sku":"SKU-{n}-{i:04}","name":"Stainless steel water bottle {n}/{i}","quantity":{},"unit_price":19.99}}"#,
                i + 1
            )
        })
        .collect();
    format!(
        r#"{{"order_id":"3f6c2a9e-8b1d-4c6e-9f2a-{n:012}","customer":{{"name":"Siobhan O'Brien {n}","email":"siobhan{n}@example.com","phone":"+1-202-555-{:04}"}},"items":[{}],"gift":false}}"#,
        n % 10_000,
        items.join(",")
    )
}

/// Deterministic xorshift: the same bodies on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// `n` bodies of 1 KiB of random base64 (`A-Za-z0-9+/`), as in nginx-served blobs.
fn base64_bodies(n: usize) -> Vec<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|_| {
            (0..1024)
                .map(|_| ALPHABET[(rng.next() % 64) as usize])
                .collect()
        })
        .collect()
}

/// 1 KiB of English prose with one email address and one phone number in it.
fn prose_body() -> Vec<u8> {
    let mut s = String::from("Thank you for contacting our support team about your recent order. ");
    let filler = "We have reviewed the details you provided and a replacement will be \
        shipped within three to five business days, together with a prepaid return label \
        for the damaged item. ";
    s.push_str(filler);
    s.push_str("If you have any further questions, write to support.team@example.com ");
    s.push_str("or call us on +1 415 555 0123 between nine and five on weekdays. ");
    while s.len() < 1024 {
        s.push_str(filler);
    }
    s.truncate(1024);
    s.into_bytes()
}

fn spec_with_50_operations() -> Spec {
    let mut yaml = String::from("openapi: 3.1.0\ninfo: {title: bench, version: '1'}\npaths:\n");
    for r in 0..25 {
        yaml.push_str(&format!(
            "  /api/r{r}:\n    get:\n      parameters:\n        - {{name: limit, in: query, schema: {{type: integer}}}}\n        - {{name: status, in: query, required: true, schema: {{type: string}}}}\n      responses: {{'200': {{description: ok}}}}\n  /api/r{r}/{{id}}:\n    get:\n      parameters:\n        - {{name: id, in: path, required: true, schema: {{type: integer}}}}\n      responses: {{'200': {{description: ok}}}}\n"
        ));
    }
    Spec::parse(yaml.as_bytes()).expect("the bench spec parses")
}

/// The state every case works on, shared in criterion's order as before (the inventory
/// the GET cases fill is the one the POST case records into).
struct Cases {
    paths: Vec<String>,
    bodies: Vec<String>,
    headers: Headers,
    response_headers: Headers,
    text_headers: Headers,
    blobs: Vec<Vec<u8>>,
    repeated: Vec<u8>,
    prose: Vec<u8>,
    templater: Templater,
    inv: Inventory,
    spec: Spec,
    i: usize,
    t: u64,
}

type Case = fn(&mut Cases);

/// Every case by name, in the order criterion runs them.
const CASES: [(&str, Case); 8] = [
    ("template_route_label", |c| {
        c.i = (c.i + 1) % PATHS;
        black_box(
            c.templater
                .template("api.example.com", black_box(&c.paths[c.i])),
        );
    }),
    ("observe_get_query", |c| {
        c.i = (c.i + 1) % PATHS;
        c.t += 1;
        let t = c.t;
        c.inv.observe(black_box(&Observation {
            host: "api.example.com",
            method: "GET",
            path: &c.paths[c.i],
            query: Some("status=open&limit=20&sort=desc"),
            request_headers: &c.headers,
            status: Some(200),
            duration_ns: Some(1_000_000 + t % 5_000_000),
            client: Some([198, 51, 100, (t % 200) as u8].into()),
            credential: Some(ObservedCredential {
                scheme: CredentialScheme::Bearer,
                hash: "sha256:0011223344556677",
                name: None,
            }),
            time: 1_700_000_000 + t / 1000,
            ..Observation::default()
        }));
    }),
    ("observe_post_json_1k_both_ways", |c| {
        c.i = (c.i + 1) % PATHS;
        c.t += 1;
        let t = c.t;
        c.inv.observe(black_box(&Observation {
            host: "api.example.com",
            method: "POST",
            path: "/api/v1/orders",
            request_headers: &c.headers,
            request_body: c.bodies[c.i].as_bytes(),
            status: Some(201),
            response_headers: &c.response_headers,
            response_body: c.bodies[(c.i + 1) % PATHS].as_bytes(),
            duration_ns: Some(2_000_000),
            client: Some([198, 51, 100, (t % 200) as u8].into()),
            time: 1_700_000_000 + t / 1000,
            ..Observation::default()
        }));
    }),
    ("observe_get_text_1k_base64", |c| {
        c.i = (c.i + 1) % PATHS;
        c.t += 1;
        let t = c.t;
        c.inv.observe(black_box(&Observation {
            host: "api.example.com",
            method: "GET",
            path: "/static/blob",
            request_headers: &c.headers,
            status: Some(200),
            response_headers: &c.text_headers,
            response_body: &c.blobs[c.i % c.blobs.len()],
            duration_ns: Some(1_000_000),
            client: Some([198, 51, 100, (t % 200) as u8].into()),
            time: 1_700_000_000 + t / 1000,
            ..Observation::default()
        }));
    }),
    ("sensitive_1k_base64", |c| {
        c.i = (c.i + 1) % PATHS;
        scan(&c.blobs[c.i % c.blobs.len()]);
    }),
    ("sensitive_1k_repeated_byte", |c| scan(&c.repeated)),
    ("sensitive_1k_prose", |c| scan(&c.prose)),
    ("spec_check_50_operations", |c| {
        c.i = (c.i + 1) % 25;
        black_box(c.spec.check(
            "GET",
            black_box(&format!("/api/r{}", c.i)),
            Some("status=open&limit=5"),
        ));
    }),
];

fn scan(body: &[u8]) {
    let mut counts = ClassCounts::default();
    classify_bytes(black_box(body), MAX_SCAN, &mut counts);
    black_box(counts);
}

impl Cases {
    fn new() -> Cases {
        Cases {
            paths: (0..PATHS)
                .map(|n| format!("/api/v1/users/{}/orders/{}", 1000 + n, 77 * n))
                .collect(),
            bodies: (0..PATHS).map(order_json).collect(),
            headers: [
                ("Host", "api.example.com"),
                ("Content-Type", "application/json"),
                (
                    "Authorization",
                    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln",
                ),
                ("User-Agent", "bench/1.0"),
            ]
            .into(),
            response_headers: [("Content-Type", "application/json")].into(),
            text_headers: [("Content-Type", "text/plain")].into(),
            blobs: base64_bodies(64),
            repeated: vec![b' '; 1024],
            prose: prose_body(),
            templater: Templater::new(&TemplateConfig::default()),
            inv: Inventory::new(&InventoryConfig::default()),
            spec: spec_with_50_operations(),
            i: 0,
            t: 0,
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut cases = Cases::new();
    let mut group = c.benchmark_group("discover");
    group.throughput(Throughput::Elements(1));
    for (name, case) in CASES {
        group.bench_function(name, |b| b.iter(|| case(&mut cases)));
    }
    group.finish();
}

criterion_group!(benches, bench);

/// `DISCOVER_PROFILE=<case>:<n>` runs one case exactly `n` times without criterion, for
/// instruction counts under `valgrind --tool=callgrind` (stable where wall time is not):
/// the per-call cost is the difference between two `n`, divided.
fn main() {
    if let Ok(spec) = std::env::var("DISCOVER_PROFILE") {
        let (name, n) = spec.split_once(':').expect("DISCOVER_PROFILE=<case>:<n>");
        let n: u64 = n.parse().expect("a number of calls");
        let (_, case) = CASES.iter().find(|(c, _)| *c == name).expect("a case name");
        let mut cases = Cases::new();
        for _ in 0..n {
            case(&mut cases);
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
