//! API discovery cost per exchange (`cargo xtask bench discover`): route templating (runs on
//! the parsing task for every exchange, for the `route` label), recording an exchange in the
//! inventory (the discovery thread: a GET with a query, and a POST with 1 KiB JSON bodies both
//! ways, fresh values every time), and checking a request against a 50-operation spec.
//! The sensitive-data scanner alone runs on 1 KiB text bodies of the shapes that were hot
//! in daemon profiles: random base64, one repeated byte, and prose with an email and a
//! phone number; `observe_get_text_1k_base64` is a whole exchange with such a body.
//! `exchange_*` run one exchange through every consumer outside the parser: route label,
//! inventory and encryption audit (a static 1 KiB GET as in `bench overhead`, a JSON POST),
//! as the agent runs them: one templater, each body scanned once; `*_unshared` the same with
//! each consumer deriving its own (as the agent did before).

use std::{cell::RefCell, hint::black_box};

use api_guard::detect::{
    encryption::{Channel, EncryptionConfig, EncryptionDetector, Response},
    Request,
};
use api_guard::discover::{
    inventory::{Inventory, InventoryConfig, Observation, ObservedCredential},
    sensitive::{classify_bytes, BodyScans, ClassCounts, MAX_SCAN},
    spec::Spec,
    template::{SharedTemplater, TemplateConfig, Templater},
};
use api_guard::http::Headers;
use api_guard::identity::{CredentialScheme, Identifier};
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
    consumers: RefCell<Consumers>,
    /// The same consumers working as before they shared their derived facts.
    unshared: RefCell<Consumers>,
    /// 1 KiB of `x`, as nginx serves the overhead bench's file.
    static_file: Vec<u8>,
    /// What wrk sends.
    wrk_headers: Headers,
    octet_headers: Headers,
    i: usize,
    t: u64,
}

type Case = fn(&mut Cases);

/// Every case by name, in the order criterion runs them.
const CASES: [(&str, Case); 12] = [
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
    ("exchange_static_get_1k", |c| {
        c.t += 1;
        exchange(&mut c.consumers.borrow_mut(), &static_get(c), true);
    }),
    ("exchange_static_get_1k_unshared", |c| {
        c.t += 1;
        exchange(&mut c.unshared.borrow_mut(), &static_get(c), false);
    }),
    ("exchange_json_post_1k", |c| {
        c.i = (c.i + 1) % PATHS;
        c.t += 1;
        exchange(&mut c.consumers.borrow_mut(), &json_post(c), true);
    }),
    ("exchange_json_post_1k_unshared", |c| {
        c.i = (c.i + 1) % PATHS;
        c.t += 1;
        exchange(&mut c.unshared.borrow_mut(), &json_post(c), false);
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

/// What the exchange cases run: the parsing task's route labels, discovery's inventory
/// and the encryption audit.
struct Consumers {
    labels: SharedTemplater,
    inv: Inventory,
    audit: EncryptionDetector,
    ids: Identifier,
}

impl Consumers {
    /// `shared`: the inventory keys by the route labels' templater (else its own).
    fn new(shared: bool) -> Consumers {
        let labels = SharedTemplater::new(&TemplateConfig::default());
        let cfg = InventoryConfig::default();
        Consumers {
            inv: if shared {
                Inventory::with_templater(&cfg, labels.clone())
            } else {
                Inventory::new(&cfg)
            },
            labels,
            audit: EncryptionDetector::new(&EncryptionConfig::default())
                .expect("the default audit settings are valid"),
            ids: Identifier::default(),
        }
    }
}

/// A GET of the overhead bench's static file, as wrk sends it.
fn static_get(c: &Cases) -> Exchange<'_> {
    Exchange {
        method: "GET",
        path: "/body",
        request_headers: &c.wrk_headers,
        request_body: b"",
        status: 200,
        response_headers: &c.octet_headers,
        response_body: &c.static_file,
        t: c.t,
    }
}

/// A POST of a fresh 1 KiB JSON order, answered with another.
fn json_post(c: &Cases) -> Exchange<'_> {
    Exchange {
        method: "POST",
        path: "/api/v1/orders",
        request_headers: &c.headers,
        request_body: c.bodies[c.i].as_bytes(),
        status: 201,
        response_headers: &c.response_headers,
        response_body: c.bodies[(c.i + 1) % PATHS].as_bytes(),
        t: c.t,
    }
}

/// One plaintext exchange across the network, as the agent's consumers see it.
struct Exchange<'a> {
    method: &'a str,
    path: &'a str,
    request_headers: &'a Headers,
    request_body: &'a [u8],
    status: u16,
    response_headers: &'a Headers,
    response_body: &'a [u8],
    t: u64,
}

/// What the agent does with one exchange outside its parser: the route label (parsing
/// task), the inventory (discovery thread) and the encryption audit (detection thread).
/// `shared`: as the agent does, the route and the body scans are made once and handed on.
fn exchange(c: &mut Consumers, e: &Exchange<'_>, shared: bool) {
    let host = "api.example.com";
    let t = e.t;
    let route = black_box(c.labels.lock().template(host, black_box(e.path)));
    let scans = BodyScans::default();
    c.inv.observe(black_box(&Observation {
        host,
        method: e.method,
        path: e.path,
        request_headers: e.request_headers,
        request_body: e.request_body,
        status: Some(e.status),
        response_headers: e.response_headers,
        response_body: e.response_body,
        duration_ns: Some(1_000_000),
        client: Some([198, 51, 100, (t % 200) as u8].into()),
        time: 1_700_000_000 + t / 1000,
        tls: Some(false),
        route: shared.then_some(&route),
        request_classes: shared.then_some(&scans.request),
        response_classes: shared.then_some(&scans.response),
        ..Observation::default()
    }));
    let channel = Channel {
        conn_id: t / 100,
        server: true,
        tls: false,
        local: Some(([10, 0, 0, 1], 80).into()),
        peer: Some(([10, 0, 0, 2], 40000).into()),
        session: None,
        scans: shared.then_some(&scans),
    };
    let req = Request {
        method: e.method,
        path: e.path,
        query: None,
        version: api_guard::http::HttpVersion::Http11,
        anomalies: &[],
        request_line_invalid: false,
        headers: e.request_headers,
        body: e.request_body,
        body_len: e.request_body.len() as u64,
        head_len: 100,
        authority: None,
        peer: channel.peer.map(|p| p.ip()),
        status: Some(e.status),
        fields: None,
    };
    let mut out = Vec::new();
    let now = t * 1_000_000;
    c.audit
        .inspect_request(&channel, &req, &c.ids, now, &mut out);
    let resp = Response {
        headers: e.response_headers,
        body: e.response_body,
    };
    c.audit.inspect_response(&channel, &resp, now, &mut out);
    black_box(out);
}

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
            consumers: RefCell::new(Consumers::new(true)),
            unshared: RefCell::new(Consumers::new(false)),
            static_file: vec![b'x'; 1024],
            wrk_headers: [("Host", "10.0.0.1:80")].into(),
            octet_headers: [("Content-Type", "application/octet-stream")].into(),
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
