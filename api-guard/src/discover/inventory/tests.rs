use super::*;
use crate::discover::{schema::ValueType, template::SharedTemplater};

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln";

fn hdrs(list: &[(&str, &str)]) -> Headers {
    list.into()
}

fn get(inv: &mut Inventory, path: &str, query: Option<&str>, status: u16) {
    inv.observe(&Observation {
        host: "api.example",
        method: "GET",
        path,
        query,
        status: Some(status),
        duration_ns: Some(1_000_000),
        client: Some("10.0.0.1".parse().unwrap()),
        time: 100,
        ..Observation::default()
    });
}

fn find<'a>(inv: &'a Inventory, method: &str, template: &str) -> &'a Endpoint {
    inv.endpoints()
        .find(|e| e.method == method && e.template == template)
        .unwrap_or_else(|| panic!("no {method} {template}"))
}

#[test]
fn templates_counts_params() {
    let mut inv = Inventory::new(&InventoryConfig::default());
    get(&mut inv, "/users/17", Some("verbose=true&tag=a&tag=b"), 200);
    get(&mut inv, "/users/42", Some("verbose=false"), 404);
    get(&mut inv, "/users/7", None, 200);
    let ep = find(&inv, "GET", "/users/{userId}");
    assert_eq!(ep.host, "api.example");
    assert_eq!(ep.count, 3);
    assert_eq!(ep.statuses.counts, BTreeMap::from([(200, 2), (404, 1)]));
    assert_eq!(
        ep.path_params["userId"],
        ParamStats {
            value_type: Some(ValueType::Integer),
            seen: 3
        }
    );
    assert_eq!(
        ep.query_params["verbose"],
        ParamStats {
            value_type: Some(ValueType::Boolean),
            seen: 2
        }
    );
    // repeated in one request: one request counted
    assert_eq!(ep.query_params["tag"].seen, 1);
    assert!(!ep.query_params["verbose"].always_present(ep.count));
    assert_eq!(inv.len(), 1);
    assert_eq!(inv.overflow(), Overflow::default());
}

#[test]
fn methods_and_order() {
    let mut inv = Inventory::new(&InventoryConfig::default());
    for (m, p) in [("post", "/b"), ("GET", "/b"), ("BREW", "/a"), ("get", "/a")] {
        inv.observe(&Observation {
            host: "H",
            method: m,
            path: p,
            ..Observation::default()
        });
    }
    let keys: Vec<(String, String, String)> = inv
        .endpoints()
        .map(|e| (e.host.clone(), e.template.clone(), e.method.clone()))
        .collect();
    let k = |t: &str, m: &str| ("h".to_string(), t.to_string(), m.to_string());
    assert_eq!(
        keys,
        vec![
            k("/a", "GET"),
            k("/a", "OTHER"),
            k("/b", "GET"),
            k("/b", "POST")
        ]
    );
    assert_eq!(find(&inv, "GET", "/a").no_response, 1);
}

type AuthCase<'a> = (&'a Headers, Option<ObservedCredential<'a>>, Option<&'a str>);

#[test]
fn auth_schemes() {
    let mut inv = Inventory::new(&InventoryConfig::default());
    let jwt = hdrs(&[("Authorization", &format!("Bearer {JWT}"))]);
    let opaque = hdrs(&[("authorization", "bearer abcdef123456")]);
    let keyed = hdrs(&[("X-Api-Key", "k")]);
    let cases: Vec<AuthCase<'_>> = vec![
        (<&Headers>::default(), None, None),
        (
            &jwt,
            Some(cred(CredentialScheme::Bearer, "sha256:1", None)),
            None,
        ),
        (
            &opaque,
            Some(cred(CredentialScheme::Bearer, "sha256:2", None)),
            None,
        ),
        (
            <&Headers>::default(),
            Some(cred(CredentialScheme::Basic, "sha256:3", None)),
            None,
        ),
        (
            &keyed,
            Some(cred(CredentialScheme::ApiKeyHeader, "sha256:4", None)),
            None,
        ),
        (
            <&Headers>::default(),
            Some(cred(
                CredentialScheme::ApiKeyHeader,
                "sha256:5",
                Some("X-Token"),
            )),
            None,
        ),
        (
            <&Headers>::default(),
            Some(cred(CredentialScheme::ApiKeyQuery, "sha256:6", None)),
            Some("api_key=zzz&x=1"),
        ),
        (
            <&Headers>::default(),
            Some(cred(CredentialScheme::ApiKeyQuery, "sha256:7", None)),
            Some("x=1"),
        ),
        (
            &jwt,
            Some(cred(CredentialScheme::Bearer, "sha256:1", None)),
            None,
        ),
    ];
    for (h, c, q) in cases {
        inv.observe(&Observation {
            host: "h",
            method: "GET",
            path: "/r",
            query: q,
            request_headers: h,
            credential: c,
            ..Observation::default()
        });
    }
    let ep = find(&inv, "GET", "/r");
    let got: Vec<(AuthScheme, u64)> = ep.auth_schemes().map(|(a, n)| (a.clone(), n)).collect();
    assert_eq!(
        got,
        vec![
            (AuthScheme::None, 1),
            (AuthScheme::Basic, 1),
            (AuthScheme::BearerJwt, 2),
            (AuthScheme::BearerOpaque, 1),
            (AuthScheme::ApiKeyHeader("x-api-key".into()), 1),
            (AuthScheme::ApiKeyHeader("x-token".into()), 1),
            (AuthScheme::ApiKeyQuery("api_key".into()), 1),
            (AuthScheme::ApiKeyQuery("unknown".into()), 1),
        ]
    );
    // 7 distinct credentials; the anonymous request has no address
    assert_eq!(ep.clients.estimate(), 7);
    // api_key=zzz counts as an API key in the request (by its name)
    assert_eq!(ep.request_sensitive.get(DataClass::ApiKey), 1);
}

fn cred<'a>(
    scheme: CredentialScheme,
    hash: &'a str,
    name: Option<&'a str>,
) -> ObservedCredential<'a> {
    ObservedCredential { scheme, hash, name }
}

#[test]
fn bodies_schemas_and_sensitive_data() {
    let mut inv = Inventory::new(&InventoryConfig::default());
    let json = hdrs(&[("Content-Type", "application/json; charset=utf-8")]);
    let text = hdrs(&[("content-type", "text/plain")]);
    inv.observe(&Observation {
        host: "h",
        method: "POST",
        path: "/login",
        query: Some("next=%2Fhome&contact=bob%40example.com"),
        request_headers: &json,
        request_body: br#"{"user":"bob","password":"hunter2","card":"4111 1111 1111 1111"}"#,
        status: Some(200),
        response_headers: &json,
        response_body: br#"{"ok":true,"email":"bob@example.com","friends":["a@example.org"]}"#,
        ..Observation::default()
    });
    inv.observe(&Observation {
        host: "h",
        method: "POST",
        path: "/login",
        request_headers: &text,
        request_body: b"order 4111111111111112 for alice@example.com",
        status: Some(500),
        response_headers: &text,
        response_body: b"oops",
        ..Observation::default()
    });
    let ep = find(&inv, "POST", "/login");
    let req: Vec<(DataClass, u64)> = ep.request_sensitive.iter().collect();
    assert_eq!(
        req,
        vec![
            (DataClass::Email, 2),
            (DataClass::PaymentCard, 1),
            (DataClass::Password, 1)
        ]
    );
    let resp: Vec<(DataClass, u64)> = ep.response_sensitive.iter().collect();
    assert_eq!(resp, vec![(DataClass::Email, 2)]);
    assert_eq!(ep.request_schemas.len(), 1);
    assert_eq!(ep.request_schemas[0].content_type, "application/json");
    assert_eq!(ep.request_schemas[0].schema.samples(), 1);
    assert_eq!(ep.response_schemas.len(), 1);
    assert_eq!(ep.response_schemas[0].status, Some(200));
    assert_eq!(
        ep.request_content_types.counts,
        BTreeMap::from([("application/json".into(), 1), ("text/plain".into(), 1)])
    );
    // values are never kept
    let s = serde_json::to_string(&inv).unwrap();
    for secret in [
        "hunter2",
        "bob@example.com",
        "4111",
        "alice",
        "/home",
        "bob",
    ] {
        assert!(!s.contains(secret), "{secret} leaked");
    }
}

#[test]
fn latency_percentiles() {
    let mut l = Latency::default();
    assert_eq!(l.quantile_us(0.5), None);
    for _ in 0..90 {
        l.record(10_000_000); // 10 ms
    }
    for _ in 0..10 {
        l.record(1_000_000_000); // 1 s
    }
    // 10000 µs falls in [8192, 10240); 1e6 µs in [983040, 1048576)
    assert_eq!(l.quantile_us(0.5), Some(10240));
    assert_eq!(l.quantile_us(0.9), Some(10240));
    assert_eq!(l.quantile_us(0.95), Some(1_048_576));
    assert_eq!(l.quantile_us(0.99), Some(1_048_576));
    l.record(u64::MAX);
    l.record(0);
    assert_eq!(l.count(), 102);
    assert!(l.buckets.len() <= MAX_BUCKETS);
    for us in [0u64, 1, 3, 4, 5, 7, 8, 100, 1 << 20, 1 << 38] {
        let b = bucket_of(us);
        assert!(us < bucket_upper(b), "{us}");
        assert!(b == 0 || us >= bucket_upper(b - 1), "{us}");
    }
}

#[test]
fn distinct_clients_estimate() {
    let mut c = Clients::default();
    assert_eq!(c.estimate(), 0);
    for i in 0..3u32 {
        c.add_client(&i.to_be_bytes());
        c.add_client(&i.to_be_bytes());
    }
    assert_eq!(c.estimate(), 3);
    for i in 0..10_000u32 {
        c.add_client(&i.to_be_bytes());
    }
    let e = c.estimate();
    assert!((8_500..=11_500).contains(&e), "{e}");
}

#[test]
fn bounded_endpoints_and_caps() {
    let cfg = InventoryConfig {
        max_endpoints: 3,
        max_status_codes: 2,
        max_query_params: 2,
        ..InventoryConfig::default()
    };
    let mut inv = Inventory::new(&cfg);
    for s in [200, 201, 202, 203] {
        get(&mut inv, "/a", Some("p=1&q=2&r=3&&=x"), s);
    }
    get(&mut inv, "/b", None, 200);
    get(&mut inv, "/c", None, 200);
    get(&mut inv, "/d", None, 200);
    get(&mut inv, "/e", None, 200);
    assert_eq!(inv.len(), 3);
    assert_eq!(inv.overflow().endpoints, 2);
    let a = find(&inv, "GET", "/a");
    assert_eq!(a.statuses.counts, BTreeMap::from([(200, 1), (201, 1)]));
    assert_eq!(a.statuses.other, 2);
    assert_eq!(a.query_params.len(), 2);
    assert_eq!(a.query_params_dropped, 8);
    // long host
    inv.observe(&Observation {
        host: &"h".repeat(400),
        method: "GET",
        path: "/",
        ..Observation::default()
    });
    assert_eq!(inv.overflow().bad_host, 1);
}

#[test]
fn adversarial_paths_stay_bounded() {
    let cfg = InventoryConfig {
        max_endpoints: 50,
        ..InventoryConfig::default()
    };
    let mut inv = Inventory::new(&cfg);
    for i in 0..5000u32 {
        let path = format!("/x{}/y{}/{}", i % 97, i, "%zz%".repeat((i % 5) as usize));
        inv.observe(&Observation {
            host: "h",
            method: "GET",
            path: &path,
            query: Some("%%%=%ff&a=%e2%82"),
            ..Observation::default()
        });
    }
    assert!(inv.len() <= 50);
    let total: u64 = inv.endpoints().map(|e| e.count).sum();
    assert_eq!(total + inv.overflow().endpoints, 5000);
}

#[test]
fn fold_rekeys_and_merges() {
    let cfg = InventoryConfig {
        templates: TemplateConfig {
            max_children: 3,
            ..TemplateConfig::default()
        },
        ..InventoryConfig::default()
    };
    let mut inv = Inventory::new(&cfg);
    for f in ["a.pdf", "b.pdf", "c.pdf", "d.pdf", "e.pdf"] {
        get(&mut inv, &format!("/files/{f}"), None, 200);
    }
    let templates: Vec<&str> = inv.endpoints().map(|e| e.template.as_str()).collect();
    assert_eq!(templates, vec!["/files/{file}"]);
    let ep = find(&inv, "GET", "/files/{file}");
    assert_eq!(ep.count, 5);
    assert_eq!(ep.path_params["file"].value_type, Some(ValueType::String));
}

#[test]
fn serde_round_trip_and_merge() {
    let mut inv = Inventory::new(&InventoryConfig::default());
    let json = hdrs(&[("content-type", "application/json")]);
    get(&mut inv, "/users/1", Some("q=x"), 200);
    inv.observe(&Observation {
        host: "api.example",
        method: "POST",
        path: "/orders",
        request_headers: &json,
        request_body: br#"{"item":3}"#,
        status: Some(201),
        response_headers: &json,
        response_body: br#"{"id":"9"}"#,
        duration_ns: Some(5_000_000),
        time: 50,
        ..Observation::default()
    });
    let s = serde_json::to_string(&inv).unwrap();
    let back: Inventory = serde_json::from_str(&s).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), s);
    assert_eq!(back.len(), 2);

    let mut merged = Inventory::new(&InventoryConfig::default());
    merged.merge(&back);
    merged.merge(&inv);
    let ep = find(&merged, "POST", "/orders");
    assert_eq!(ep.count, 2);
    assert_eq!(ep.first_seen, 50);
    assert_eq!(ep.request_schemas[0].schema.samples(), 2);
    assert_eq!(
        find(&merged, "GET", "/users/{userId}").query_params["q"].seen,
        2
    );
    assert!(serde_json::from_str::<Inventory>("{\"version\":1,\"endpoints\":7}").is_err());
}

#[test]
fn config_validation_paths() {
    assert_eq!(InventoryConfig::default().validate(), Ok(()));
    let bad = InventoryConfig {
        max_endpoints: 0,
        ..InventoryConfig::default()
    };
    assert_eq!(
        bad.validate().unwrap_err().field,
        "discover.inventory.max_endpoints"
    );
    let bad = InventoryConfig {
        templates: TemplateConfig {
            max_children: 0,
            ..TemplateConfig::default()
        },
        ..InventoryConfig::default()
    };
    assert_eq!(
        bad.validate().unwrap_err().field,
        "discover.inventory.templates.max_children"
    );
    let cfg: InventoryConfig =
        toml::from_str("max_endpoints = 5\n[templates]\nmax_hosts = 2\n[schema]\nmax_depth = 3\n")
            .unwrap();
    assert_eq!(cfg.max_endpoints, 5);
    assert_eq!(cfg.templates.max_hosts, 2);
    assert_eq!(cfg.schema.max_depth, 3);
    assert!(toml::from_str::<InventoryConfig>("nope = 1").is_err());
}

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode("a%20b+c", true), "a b c");
    assert_eq!(percent_decode("a+c", false), "a+c");
    assert_eq!(percent_decode("%zz%4", true), "%zz%4");
    assert_eq!(percent_decode("%ff", true), "\u{fffd}");
}

#[test]
fn fold_gives_every_parameter_an_entry() {
    let cfg = InventoryConfig {
        templates: TemplateConfig {
            max_children: 2,
            ..TemplateConfig::default()
        },
        ..InventoryConfig::default()
    };
    let mut inv = Inventory::new(&cfg);
    inv.observe(&Observation {
        host: "api.example",
        method: "POST",
        path: "/files/a",
        ..Observation::default()
    });
    for f in ["b", "c", "d"] {
        get(&mut inv, &format!("/files/{f}"), None, 200);
    }
    let all: Vec<(&str, &str)> = inv
        .endpoints()
        .map(|e| (e.method.as_str(), e.template.as_str()))
        .collect();
    assert_eq!(
        all,
        vec![("GET", "/files/{file}"), ("POST", "/files/{file}")]
    );
    let post = find(&inv, "POST", "/files/{file}");
    assert_eq!(post.count, 1);
    assert_eq!(
        post.path_params,
        BTreeMap::from([("file".to_string(), ParamStats::default())])
    );
    assert_eq!(inv.len(), 2);
}

/// Cost figure: `cargo test --release -p api-guard --lib inventory::tests::cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn cost() {
    let mut inv = Inventory::new(&InventoryConfig::default());
    let json = hdrs(&[
        ("content-type", "application/json"),
        ("authorization", &format!("Bearer {JWT}")),
    ]);
    let body = br#"{"id":12,"name":"User 12","email":"a@example.com","tags":["x","y"]}"#;
    let paths: Vec<String> = (0..1000).map(|i| format!("/users/{i}/orders")).collect();
    let n = 200_000usize;
    let start = std::time::Instant::now();
    for i in 0..n {
        inv.observe(&Observation {
            host: "api.example",
            method: "GET",
            path: &paths[i % paths.len()],
            query: Some("limit=10&status=open"),
            request_headers: &json,
            status: Some(200),
            response_headers: &json,
            response_body: body,
            duration_ns: Some(1_500_000),
            client: Some("10.0.0.1".parse().unwrap()),
            credential: Some(cred(CredentialScheme::Bearer, "sha256:1", None)),
            time: 1,
            ..Observation::default()
        });
    }
    println!("observe: {:?} per call", start.elapsed() / n as u32);
    let start = std::time::Instant::now();
    let doc = crate::discover::openapi::export(&inv, "x");
    println!("export: {:?}", start.elapsed());
    assert_eq!(doc["openapi"], "3.1.0");
}

#[test]
fn grpc_methods_are_endpoints_with_their_statuses_and_stay_out_of_openapi() {
    let mut inv = Inventory::new(&InventoryConfig::default());
    let ct = hdrs(&[("content-type", "application/grpc")]);
    for status in [Some(0), Some(0), Some(5), None] {
        inv.observe(&Observation {
            host: "grpc.internal:50051",
            method: "POST",
            path: "/helloworld.Greeter/SayHello",
            request_headers: &ct,
            status: Some(200),
            time: 100,
            grpc: Some(GrpcObservation {
                service: "helloworld.Greeter",
                method: "SayHello",
                status,
            }),
            ..Observation::default()
        });
    }
    get(&mut inv, "/users/1", None, 200);
    let ep = find(&inv, "POST", "/helloworld.Greeter/SayHello");
    let g = ep.grpc.as_ref().expect("gRPC stats");
    assert_eq!(
        (g.service.as_str(), g.method.as_str(), g.no_status),
        ("helloworld.Greeter", "SayHello", 1)
    );
    assert_eq!(g.statuses.counts.get(&0), Some(&2));
    assert_eq!(g.statuses.counts.get(&5), Some(&1));
    let doc = crate::discover::openapi::export(&inv, "t");
    assert_eq!(doc["info"]["x-apiguard-grpc-methods-not-exported"], 1);
    assert!(doc["paths"].get("/helloworld.Greeter/SayHello").is_none());
    assert!(doc["paths"].get("/users/{userId}").is_some());
    // Snapshots keep it.
    let json = serde_json::to_vec(&inv.endpoints().collect::<Vec<_>>()).unwrap();
    assert!(String::from_utf8_lossy(&json).contains("\"grpc\":{\"service\":\"helloworld.Greeter\""));
}

#[test]
fn llm_endpoints_list_models_and_tokens() {
    let mut inv = Inventory::new(&InventoryConfig::default());
    let call = |inv: &mut Inventory, model: &str, prompt: u64, completion: u64, estimated: bool| {
        inv.observe(&Observation {
            host: "llm",
            method: "POST",
            path: "/v1/chat/completions",
            status: Some(200),
            time: 10,
            ..Observation::default()
        });
        inv.observe_llm(&LlmObservation {
            flavour: "openai_chat",
            model,
            prompt_tokens: prompt,
            completion_tokens: completion,
            estimated,
        });
    };
    call(&mut inv, "m1", 10, 5, false);
    call(&mut inv, "m1", 1, 2, true);
    call(&mut inv, "m2", 3, 4, false);
    for i in 0..MAX_LLM_MODELS {
        call(&mut inv, &format!("x{i}"), 1, 1, false);
    }
    let llm = find(&inv, "POST", "/v1/chat/completions")
        .llm
        .clone()
        .unwrap();
    assert_eq!(llm.flavour, "openai_chat");
    let m1 = llm.models["m1"];
    assert_eq!(
        (
            m1.calls,
            m1.prompt_tokens,
            m1.completion_tokens,
            m1.estimated_tokens
        ),
        (2, 11, 7, 3)
    );
    assert_eq!(llm.models.len(), MAX_LLM_MODELS);
    assert_eq!(llm.models_dropped, 2);
    // Kept in snapshots, and merged.
    let back: Inventory = serde_json::from_str(&serde_json::to_string(&inv).unwrap()).unwrap();
    let mut merged = Inventory::new(&InventoryConfig::default());
    merged.merge(&back);
    merged.merge(&inv);
    let m = find(&merged, "POST", "/v1/chat/completions")
        .llm
        .clone()
        .unwrap();
    assert_eq!(m.models["m1"].calls, 4);
    // An exchange that was not kept leaves no trace.
    get(&mut inv, "/other", None, 200);
    assert!(find(&inv, "GET", "/other").llm.is_none());
}

#[test]
fn transport_is_recorded_per_endpoint_and_old_snapshots_load() {
    let mut inv = Inventory::new(&InventoryConfig::default());
    let observe = |inv: &mut Inventory, path: &str, tls: Option<bool>| {
        inv.observe(&Observation {
            host: "api.example",
            method: "GET",
            path,
            status: Some(200),
            time: 10,
            tls,
            ..Observation::default()
        })
    };
    observe(&mut inv, "/secure", Some(true));
    observe(&mut inv, "/mixed", Some(true));
    observe(&mut inv, "/mixed", Some(false));
    observe(&mut inv, "/mixed", Some(false));
    observe(&mut inv, "/open", Some(false));
    observe(&mut inv, "/unknown", None);
    let seen = |inv: &Inventory, t: &str| {
        let e = find(inv, "GET", t);
        (
            e.transport.summary(),
            e.transport.tls,
            e.transport.plaintext,
        )
    };
    assert_eq!(seen(&inv, "/secure"), (Some("tls"), 1, 0));
    assert_eq!(seen(&inv, "/mixed"), (Some("both"), 1, 2));
    assert_eq!(seen(&inv, "/open"), (Some("plaintext"), 0, 1));
    assert_eq!(seen(&inv, "/unknown"), (None, 0, 0));

    // Persisted, merged, and exported in OpenAPI.
    let s = serde_json::to_string(&inv).unwrap();
    let back: Inventory = serde_json::from_str(&s).unwrap();
    assert_eq!(seen(&back, "/mixed"), (Some("both"), 1, 2));
    let mut merged = Inventory::new(&InventoryConfig::default());
    merged.merge(&back);
    merged.merge(&inv);
    assert_eq!(seen(&merged, "/mixed"), (Some("both"), 2, 4));
    let doc = crate::discover::openapi::export(&inv, "t");
    assert_eq!(
        doc["paths"]["/mixed"]["get"]["x-apiguard-transport"],
        serde_json::json!({"seen": "both", "tls": 1, "plaintext": 2})
    );
    assert!(doc["paths"]["/unknown"]["get"]
        .get("x-apiguard-transport")
        .is_none());

    // A snapshot written before transport was recorded loads as unknown.
    let mut old: serde_json::Value = serde_json::from_str(&s).unwrap();
    for ep in old["endpoints"].as_array_mut().unwrap() {
        ep.as_object_mut().unwrap().remove("transport");
    }
    let old: Inventory = serde_json::from_value(old).unwrap();
    assert_eq!(seen(&old, "/mixed"), (None, 0, 0));
    assert_eq!(old.len(), 4);
}

/// Mixed traffic whose paths fold (`max_children` 3) and whose bodies carry sensitive data:
/// (path, method, request body, response body).
fn folding_traffic() -> Vec<(String, &'static str, &'static [u8], &'static [u8])> {
    let mut out = Vec::new();
    for (i, f) in ["a.pdf", "b.pdf", "c.pdf", "d.pdf", "e.pdf", "f.pdf"]
        .iter()
        .enumerate()
    {
        out.push((
            format!("/files/{f}"),
            "GET",
            &b""[..],
            &b"key AKIAIOSFODNN7EXAMPLE"[..],
        ));
        out.push((
            format!("/users/{}/orders", 100 + i),
            "POST",
            &br#"{"password":"hunter2","card":"4111 1111 1111 1111"}"#[..],
            &br#"{"ok":true}"#[..],
        ));
    }
    out
}

fn observe_with(
    inv: &mut Inventory,
    (path, method, req, resp): &(String, &'static str, &'static [u8], &'static [u8]),
    route: Option<&Route>,
    scans: Option<&crate::discover::sensitive::BodyScans>,
) {
    let json = hdrs(&[("Content-Type", "application/json")]);
    inv.observe(&Observation {
        host: "api.example",
        method,
        path,
        request_headers: &json,
        request_body: req,
        status: Some(200),
        response_headers: &json,
        response_body: resp,
        time: 100,
        route,
        request_classes: scans.map(|s| &s.request),
        response_classes: scans.map(|s| &s.response),
        ..Observation::default()
    });
}

/// The agent templates each path once (route labels) and discovery keys by that route,
/// possibly some exchanges later (its queue): the inventory is the one it would have built
/// templating every path itself, and the body scans shared with the encryption audit give
/// the same classes.
#[test]
fn carried_routes_and_shared_scans_build_the_same_inventory() {
    let cfg = InventoryConfig {
        templates: TemplateConfig {
            max_children: 3,
            ..TemplateConfig::default()
        },
        ..InventoryConfig::default()
    };
    let traffic = folding_traffic();
    let mut alone = Inventory::new(&cfg);
    for t in &traffic {
        observe_with(&mut alone, t, None, None);
    }
    let alone = serde_json::to_value(&alone).unwrap();
    assert_eq!(alone["endpoints"].as_array().unwrap().len(), 2, "{alone}");
    // Routed as they come, and with discovery lagging the whole run behind.
    for lag in [false, true] {
        let labels = SharedTemplater::new(&cfg.templates);
        let mut inv = Inventory::with_templater(&cfg, labels.clone());
        let mut queue = Vec::new();
        for t in &traffic {
            let route = labels.lock().template("api.example", &t.0);
            queue.push((t, route, crate::discover::sensitive::BodyScans::default()));
            if !lag {
                for (t, route, scans) in queue.drain(..) {
                    observe_with(&mut inv, t, Some(&route), Some(&scans));
                }
            }
        }
        for (t, route, scans) in &queue {
            observe_with(&mut inv, t, Some(route), Some(scans));
        }
        let mut got = serde_json::to_value(&inv).unwrap();
        let mut want = alone.clone();
        if lag {
            // A lagging exchange is recorded under its path's current template, so the
            // folded parameter has values from before the fold too: only those differ.
            for v in [&mut got, &mut want] {
                for ep in v["endpoints"].as_array_mut().unwrap() {
                    ep["path_params"] = serde_json::Value::Null;
                }
            }
        }
        assert_eq!(got, want, "lag {lag}");
        assert_eq!(inv.templater_epoch(), 1);
    }
}

/// The one-pass `content_type` keeps what the split-trim-check it replaced kept.
#[test]
fn content_type_keeps_the_media_type_as_before() {
    fn before(headers: &Headers) -> Option<String> {
        let (_, v) = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))?;
        let t = v.split(';').next().unwrap_or("").trim();
        if t.is_empty()
            || t.len() > MAX_NAME_LEN
            || !t.bytes().all(|c| MEDIA_TYPE_BYTE[usize::from(c)])
        {
            return None;
        }
        Some(t.to_ascii_lowercase())
    }
    let long = format!("application/{}", "x".repeat(MAX_NAME_LEN));
    let values = [
        "application/json",
        "Application/JSON; charset=utf-8",
        "text/html ;charset=x",
        "  text/plain",
        "text/plain \t ",
        "text/ plain",
        "text/plain x; a=b",
        "\u{a0}text/plain\u{a0}; q",
        "text/plain\u{a0}x",
        "",
        " ;",
        ";text/plain",
        "text/pl@in",
        "vnd.api+json",
        long.as_str(),
    ];
    for v in values {
        for name in ["Content-Type", "content-TYPE"] {
            let h = hdrs(&[("Host", "a"), (name, v)]);
            assert_eq!(content_type(&h).map(Cow::into_owned), before(&h), "{v:?}");
        }
    }
    assert_eq!(content_type(&hdrs(&[("Host", "a")])), None);
}
