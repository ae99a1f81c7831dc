//! API discovery cost per exchange (`cargo xtask bench discover`): route templating (runs on
//! the parsing task for every exchange, for the `route` label), recording an exchange in the
//! inventory (the discovery thread: a GET with a query, and a POST with 1 KiB JSON bodies both
//! ways, fresh values every time), and checking a request against a 50-operation spec.

use std::hint::black_box;

use api_guard::discover::{
    inventory::{Inventory, InventoryConfig, Observation, ObservedCredential},
    spec::Spec,
    template::{TemplateConfig, Templater},
};
use api_guard::identity::CredentialScheme;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

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

fn spec_with_50_operations() -> Spec {
    let mut yaml = String::from("openapi: 3.1.0\ninfo: {title: bench, version: '1'}\npaths:\n");
    for r in 0..25 {
        yaml.push_str(&format!(
            "  /api/r{r}:\n    get:\n      parameters:\n        - {{name: limit, in: query, schema: {{type: integer}}}}\n        - {{name: status, in: query, required: true, schema: {{type: string}}}}\n      responses: {{'200': {{description: ok}}}}\n  /api/r{r}/{{id}}:\n    get:\n      parameters:\n        - {{name: id, in: path, required: true, schema: {{type: integer}}}}\n      responses: {{'200': {{description: ok}}}}\n"
        ));
    }
    Spec::parse(yaml.as_bytes()).expect("the bench spec parses")
}

fn bench(c: &mut Criterion) {
    let paths: Vec<String> = (0..PATHS)
        .map(|n| format!("/api/v1/users/{}/orders/{}", 1000 + n, 77 * n))
        .collect();
    let bodies: Vec<String> = (0..PATHS).map(order_json).collect();
    let headers: Vec<(String, String)> = [
        ("Host", "api.example.com"),
        ("Content-Type", "application/json"),
        (
            "Authorization",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln",
        ),
        ("User-Agent", "bench/1.0"),
    ]
    .map(|(n, v)| (n.to_owned(), v.to_owned()))
    .to_vec();
    let response_headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];

    let mut group = c.benchmark_group("discover");
    group.throughput(Throughput::Elements(1));

    let mut templater = Templater::new(&TemplateConfig::default());
    let mut i = 0;
    group.bench_function("template_route_label", |b| {
        b.iter(|| {
            i = (i + 1) % PATHS;
            black_box(templater.template("api.example.com", black_box(&paths[i])));
        })
    });

    let mut inv = Inventory::new(&InventoryConfig::default());
    let mut t = 0u64;
    group.bench_function("observe_get_query", |b| {
        b.iter(|| {
            i = (i + 1) % PATHS;
            t += 1;
            inv.observe(black_box(&Observation {
                host: "api.example.com",
                method: "GET",
                path: &paths[i],
                query: Some("status=open&limit=20&sort=desc"),
                request_headers: &headers,
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
        })
    });
    group.bench_function("observe_post_json_1k_both_ways", |b| {
        b.iter(|| {
            i = (i + 1) % PATHS;
            t += 1;
            inv.observe(black_box(&Observation {
                host: "api.example.com",
                method: "POST",
                path: "/api/v1/orders",
                request_headers: &headers,
                request_body: bodies[i].as_bytes(),
                status: Some(201),
                response_headers: &response_headers,
                response_body: bodies[(i + 1) % PATHS].as_bytes(),
                duration_ns: Some(2_000_000),
                client: Some([198, 51, 100, (t % 200) as u8].into()),
                time: 1_700_000_000 + t / 1000,
                ..Observation::default()
            }));
        })
    });

    let spec = spec_with_50_operations();
    group.bench_function("spec_check_50_operations", |b| {
        b.iter(|| {
            i = (i + 1) % 25;
            black_box(spec.check(
                "GET",
                black_box(&format!("/api/r{i}")),
                Some("status=open&limit=5"),
            ));
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
