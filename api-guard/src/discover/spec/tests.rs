use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::discover::inventory::{InventoryConfig, Observation};

const SHOP: &str = include_str!("testdata/shop.yaml");

fn shop() -> Spec {
    Spec::parse(SHOP.as_bytes()).unwrap()
}

fn op<'s>(spec: &'s Spec, method: &str, template: &str) -> &'s Operation {
    spec.operations()
        .iter()
        .find(|o| o.method == method && o.template == template)
        .unwrap_or_else(|| panic!("no {method} {template}"))
}

fn p(name: &str, location: ParamLocation, required: bool, ty: Option<ParamType>) -> Parameter {
    Parameter {
        name: name.into(),
        location,
        required,
        ty,
        enum_values: None,
        allow_empty: false,
    }
}

fn err(doc: &str) -> String {
    Spec::parse(doc.as_bytes()).unwrap_err().to_string()
}

#[test]
fn parses_yaml_30() {
    let spec = shop();
    assert_eq!(spec.version(), "3.0.3");
    let ops: Vec<String> = spec
        .operations()
        .iter()
        .map(|o| format!("{} {}", o.method, o.template))
        .collect();
    assert_eq!(
        ops,
        [
            "GET /v1/files/{name}.json",
            "GET /internal/files/{name}.json",
            "GET /v1/orders",
            "GET /internal/orders",
            "POST /v1/orders",
            "POST /internal/orders",
            "GET /v1/orders/{orderId}",
            "GET /internal/orders/{orderId}",
            "GET /v1/users/me",
            "GET /internal/users/me",
            "GET /v1/users/{id}",
            "GET /internal/users/{id}",
            "DELETE /v1/users/{id}",
            "DELETE /internal/users/{id}",
        ]
    );
    // path-level parameters, the operation's `verbose` overriding the path item's
    let get_user = op(&spec, "GET", "/v1/users/{id}");
    assert_eq!(get_user.operation_id.as_deref(), Some("getUser"));
    assert_eq!(
        get_user.params,
        [
            p("id", ParamLocation::Path, true, Some(ParamType::Integer)),
            p(
                "verbose",
                ParamLocation::Query,
                true,
                Some(ParamType::Boolean)
            ),
        ]
    );
    assert_eq!(get_user.security, ["bearer"]);
    let delete = op(&spec, "DELETE", "/v1/users/{id}");
    assert_eq!(
        delete.params,
        [
            p("id", ParamLocation::Path, true, Some(ParamType::Integer)),
            p(
                "verbose",
                ParamLocation::Query,
                false,
                Some(ParamType::Boolean)
            ),
        ]
    );
    assert!(delete.security.is_empty());
    let list = op(&spec, "GET", "/v1/orders");
    assert_eq!(list.security, ["apiKey", "basic", "bearer"]);
    let mut sort = p("sort", ParamLocation::Query, false, Some(ParamType::String));
    sort.enum_values = Some(vec!["asc".into(), "desc".into()]);
    assert_eq!(
        list.params,
        [
            p(
                "limit",
                ParamLocation::Query,
                false,
                Some(ParamType::Integer)
            ),
            sort,
            p("since", ParamLocation::Query, false, Some(ParamType::Date)),
            p("owner", ParamLocation::Query, false, Some(ParamType::Email)),
            p("ids", ParamLocation::Query, false, None),
            p(
                "X-Trace",
                ParamLocation::Header,
                true,
                Some(ParamType::String)
            ),
        ]
    );
    assert!(op(&spec, "POST", "/v1/orders").params[0].allow_empty);
    assert_eq!(
        op(&spec, "GET", "/v1/orders/{orderId}").params[0].ty,
        Some(ParamType::Uuid)
    );
    assert_eq!(op(&spec, "GET", "/v1/orders/{orderId}").operation_id, None);
    assert_eq!(
        spec.stats(),
        &SpecStats {
            templates_skipped: 2,
            ..SpecStats::default()
        }
    );
}

#[test]
fn templates_for_the_templater() {
    let spec = shop();
    let templates: Vec<&str> = spec.templates().collect();
    assert_eq!(
        templates,
        [
            "/v1/orders",
            "/internal/orders",
            "/v1/orders/{orderId}",
            "/internal/orders/{orderId}",
            "/v1/users/me",
            "/internal/users/me",
            "/v1/users/{id}",
            "/internal/users/{id}",
        ]
    );
    assert_eq!(spec.stats().templates_skipped, 2);
    assert_eq!(spec.skipped_templates()[0].0, "/v1/files/{name}.json");
    assert!(spec.skipped_templates()[0].1.contains("segment 2 mixes"));
    let mut inv = Inventory::new(&InventoryConfig::default());
    for t in spec.templates() {
        assert_eq!(inv.templater_mut().add_known(None, t), Ok(true), "{t}");
    }
}

#[test]
fn parses_json_31() {
    let doc = json!({
        "openapi": "3.1.0",
        "servers": [
            {"url": "https://{region}.example.com/{base}/", "variables": {
                "region": {"default": "eu"}, "base": {"default": "api"}}},
            {"url": "https://x.example.com/{nodefault}"}
        ],
        "paths": {
            "/items//{itemId}/": {
                "servers": [{"url": "//cdn.example.com"}],
                "get": {"parameters": [
                    {"name": "itemId", "in": "path", "schema": {"type": ["integer", "null"]}},
                    {"name": "at", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                    {"name": "n", "in": "query", "schema": {"allOf": [{"$ref": "#/components/schemas/N"}]}},
                    {"name": "m", "in": "query", "schema": {"enum": [1, 2, null]}},
                    {"name": "r", "in": "query", "schema": {"$ref": "other.yaml#/R"}},
                    {"$ref": "https://example.com/p.json"}
                ]}
            },
            "/health": {"head": {}}
        },
        "components": {"schemas": {"N": {"type": "number"}}}
    });
    let spec = Spec::parse(doc.to_string().as_bytes()).unwrap();
    assert_eq!(spec.version(), "3.1.0");
    let ops: Vec<String> = spec
        .operations()
        .iter()
        .map(|o| format!("{} {}", o.method, o.template))
        .collect();
    assert_eq!(ops, ["HEAD /api/health", "GET /items/{itemId}"]);
    let params = &spec.operations()[1].params;
    assert_eq!(params[0].ty, Some(ParamType::Integer));
    assert_eq!(params[1].ty, Some(ParamType::DateTime));
    assert_eq!(params[2].ty, Some(ParamType::Number));
    assert_eq!(params[3].ty, None);
    assert_eq!(params[3].enum_values, Some(vec!["1".into(), "2".into()]));
    assert_eq!(params[4].ty, None);
    assert_eq!(params.len(), 5);
    assert_eq!(spec.stats().remote_refs, 2);
    assert_eq!(spec.stats().servers_dropped, 1);
    assert_eq!(spec.warnings().len(), 3);
    assert!(
        spec.warnings()[0].contains("has no default"),
        "{:?}",
        spec.warnings()
    );
}

#[test]
fn no_servers_and_no_paths() {
    let spec = Spec::parse(b"openapi: '3.0.0'\npaths:\n  /: {get: {}}\n").unwrap();
    assert_eq!(spec.operations()[0].template, "/");
    assert_eq!(spec.templates().collect::<Vec<_>>(), ["/"]);
    let spec = Spec::parse(br#"{"openapi": "3.1.1"}"#).unwrap();
    assert!(spec.operations().is_empty());
    assert_eq!(
        spec.check("GET", "/", None).unwrap().kind,
        ViolationKind::UnknownEndpoint
    );
}

#[test]
fn refuses_other_documents() {
    assert_eq!(
        err("swagger: '2.0'\npaths: {}\n"),
        "Swagger 2.0 documents are not supported: convert to OpenAPI 3 first"
    );
    assert_eq!(err("- a\n- b\n"), "the document is not a map");
    assert_eq!(err(""), "the document is not a map");
    assert_eq!(
        err("{\"info\": {}}"),
        "not an OpenAPI document (no `openapi` field)"
    );
    assert_eq!(
        err("openapi: 3.2.0\n"),
        "OpenAPI version \"3.2.0\" is not supported (3.0.x and 3.1.x are)"
    );
    assert_eq!(
        err("openapi: 3.0\n"),
        "OpenAPI version \"3.0\" is not supported (3.0.x and 3.1.x are)"
    );
    assert!(err("{\"openapi\": \"3.0.0\",}").starts_with("invalid JSON: trailing comma"));
    assert!(err("openapi: [\n").starts_with("invalid YAML: "));
}

#[test]
fn errors_name_the_place() {
    let with_param = |param: &str| {
        format!(
            "openapi: 3.0.0\npaths:\n  /users/{{id}}:\n    get:\n      parameters:\n        - {{name: id, in: path}}\n        - {param}\n"
        )
    };
    assert_eq!(
        err(&with_param("$ref: '#/components/parameters/Nope'")),
        "paths./users/{id}.get.parameters[1]: $ref #/components/parameters/Nope not found"
    );
    assert_eq!(
        err(&with_param("{name: x, in: body}")),
        "paths./users/{id}.get.parameters[1]: parameter \"x\": `in` must be path, query, header or cookie"
    );
    assert_eq!(
        err(&with_param("{in: query}")),
        "paths./users/{id}.get.parameters[1]: parameter has no `name`"
    );
    assert_eq!(
        err(&with_param("{name: x, in: query, schema: {$ref: '#/components/schemas/A'}}\ncomponents:\n  schemas:\n    A: {$ref: '#/components/schemas/B'}\n    B: {$ref: '#/components/schemas/A'}")),
        "paths./users/{id}.get.parameters[1].schema: $ref chain longer than 16 (a cycle?)"
    );
    assert_eq!(
        err("openapi: 3.0.0\npaths:\n  users: {}\n"),
        "paths.users: a path must start with `/` (and be under 4 KiB)"
    );
    assert_eq!(
        err("openapi: 3.0.0\npaths:\n  /a: {get: 1}\n"),
        "paths./a.get: operation is not a map"
    );
    assert_eq!(err("openapi: 3.0.0\npaths: []\n"), "paths: not a map");
    assert_eq!(
        err("openapi: 3.0.0\npaths:\n  /a: {get: {parameters: {}}}\n"),
        "paths./a.get.parameters: parameters is not a list"
    );
}

#[test]
fn load_names_the_file() {
    let dir = std::env::temp_dir().join(format!("ag-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("shop.yaml");
    std::fs::write(&good, SHOP).unwrap();
    assert_eq!(Spec::load(&good).unwrap().operations().len(), 14);
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"swagger\": \"2.0\"}").unwrap();
    assert_eq!(
        Spec::load(&bad).unwrap_err().to_string(),
        format!(
            "{}: Swagger 2.0 documents are not supported: convert to OpenAPI 3 first",
            bad.display()
        )
    );
    let big = dir.join("big.yaml");
    std::fs::write(&big, vec![b' '; MAX_FILE as usize + 1]).unwrap();
    assert_eq!(
        Spec::load(&big).unwrap_err().to_string(),
        format!("{}: file larger than 16777216 bytes", big.display())
    );
    let missing = dir.join("missing.yaml");
    assert!(Spec::load(&missing)
        .unwrap_err()
        .to_string()
        .starts_with(&format!("{}: ", missing.display())));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn kind(v: Option<Violation>) -> Option<&'static str> {
    v.map(|v| v.kind.as_str())
}

#[test]
fn check_violations() {
    let spec = shop();
    assert_eq!(
        spec.check("GET", "/v1/orders", Some("limit=10&sort=asc")),
        None
    );
    assert_eq!(
        spec.check("GET", "/v1/nope", None),
        Some(Violation {
            kind: ViolationKind::UnknownEndpoint,
            param: None,
            location: None,
            expected: None,
            operation: None,
        })
    );
    // a documented path with an undocumented method
    assert_eq!(
        kind(spec.check("PUT", "/v1/orders", None)),
        Some("unknown_endpoint")
    );
    assert_eq!(
        kind(spec.check("BREW", "/v1/orders", None)),
        Some("unknown_endpoint")
    );
    // the server base path is part of the template
    assert_eq!(
        kind(spec.check("GET", "/orders", None)),
        Some("unknown_endpoint")
    );
    assert_eq!(
        spec.check("GET", "/v1/users/7", Some("x=1")),
        Some(Violation {
            kind: ViolationKind::MissingRequiredParam,
            param: Some("verbose".into()),
            location: Some(ParamLocation::Query),
            expected: Some("boolean".into()),
            operation: Some("GET /v1/users/{id}".into()),
        })
    );
    assert_eq!(
        spec.check("GET", "/v1/orders", Some("limit=ten&sort=asc")),
        Some(Violation {
            kind: ViolationKind::WrongParamType,
            param: Some("limit".into()),
            location: Some(ParamLocation::Query),
            expected: Some("integer".into()),
            operation: Some("GET /v1/orders".into()),
        })
    );
    assert_eq!(
        spec.check("GET", "/v1/users/abc", Some("verbose=true")),
        Some(Violation {
            kind: ViolationKind::WrongParamType,
            param: Some("id".into()),
            location: Some(ParamLocation::Path),
            expected: Some("integer".into()),
            operation: Some("GET /v1/users/{id}".into()),
        })
    );
    let v = spec
        .check("GET", "/v1/orders", Some("sort=random"))
        .unwrap();
    assert_eq!(v.expected.as_deref(), Some("enum(asc|desc)"));
    // missing beats wrong type
    assert_eq!(
        kind(spec.check("GET", "/v1/users/abc", None)),
        Some("missing_required_param")
    );
    for (query, expected) in [
        ("since=2024-02-30", "date"),
        ("owner=bob", "email"),
        ("limit=", "integer"),
        ("limit=1.5", "integer"),
    ] {
        let v = spec.check("GET", "/v1/orders", Some(query)).unwrap();
        assert_eq!(v.expected.as_deref(), Some(expected), "{query}");
    }
    let v = spec
        .check("GET", "/v1/orders/123", Some("ratio=1e"))
        .unwrap();
    assert_eq!(v.param.as_deref(), Some("orderId"));
    assert_eq!(v.expected.as_deref(), Some("uuid"));
    let uuid = "/v1/orders/9b2f6c1e-0c4e-4a57-9a55-1f6d2b9c7e10";
    assert_eq!(
        spec.check("GET", uuid, Some("ratio=inf"))
            .unwrap()
            .expected
            .as_deref(),
        Some("number")
    );
    // values never reach a violation
    let secret = "sk_live_0123456789";
    let v = spec
        .check(
            "GET",
            &format!("/v1/users/{secret}"),
            Some(&format!("verbose={secret}")),
        )
        .unwrap();
    assert!(!format!("{v:?}").contains(secret));
    assert!(!serde_json::to_string(&v).unwrap().contains(secret));
}

#[test]
fn check_benign() {
    let spec = shop();
    let uuid = "/v1/orders/9b2f6c1e-0c4e-4a57-9a55-1f6d2b9c7e10";
    for (method, path, query) in [
        // literal beats param: `me` is no integer but /users/me is its own operation
        ("GET", "/v1/users/me", None),
        ("GET", "/v1/users/42", Some("verbose=false")),
        ("get", "/v1/users/-42/", Some("verbose=true")),
        // percent-decoded before checking; `+` is a space in the query
        ("GET", "/v1/users/%34%32", Some("verbose=tru%65")),
        (
            "GET",
            "/v1/orders",
            Some("owner=a%40example.com&since=2024-02-29&sort=%61sc"),
        ),
        (
            "GET",
            "/v1/orders",
            Some("limit=%2B5&&ids=a,b&ids=x&unknown=zzz"),
        ),
        // trailing slash, `//`, absolute form, fragment
        ("GET", "//v1//orders/", Some("limit=-3")),
        ("GET", "http://api.example.com/v1/orders?limit=1#frag", None),
        ("GET", "/internal/orders", None),
        ("GET", uuid, Some("ratio=1.5e3")),
        ("GET", uuid, Some("ratio=.5")),
        // HEAD is answered by the GET operation
        ("HEAD", "/v1/users/me", None),
        // CORS preflight on a documented path
        ("OPTIONS", "/v1/orders", None),
        // allowEmptyValue: present and empty is fine
        ("POST", "/v1/orders", Some("dry")),
        ("POST", "/v1/orders", Some("dry=")),
        // partial-segment template: any segment, no type check
        ("GET", "/v1/files/report.json", None),
        ("DELETE", "/v1/users/1", None),
    ] {
        assert_eq!(
            spec.check(method, path, query),
            None,
            "{method} {path} {query:?}"
        );
    }
    assert_eq!(
        kind(spec.check("OPTIONS", "/v1/nope", None)),
        Some("unknown_endpoint")
    );
    // HEAD still needs the GET's required parameters
    assert_eq!(
        kind(spec.check("HEAD", "/v1/users/1", None)),
        Some("missing_required_param")
    );
    assert_eq!(
        kind(spec.check("POST", "/v1/orders", Some("dry=maybe"))),
        Some("wrong_param_type")
    );
    assert_eq!(
        kind(spec.check("POST", "/v1/orders", None)),
        Some("missing_required_param")
    );
    // deeper than any template
    let deep = "/a".repeat(100);
    assert_eq!(
        kind(spec.check("GET", &deep, None)),
        Some("unknown_endpoint")
    );
}

fn observe(inv: &mut Inventory, host: &str, method: &str, path: &str) {
    inv.observe(&Observation {
        host,
        method,
        path,
        status: Some(200),
        ..Observation::default()
    });
}

#[test]
fn compare_with_inventory() {
    let spec = shop();
    let mut inv = Inventory::new(&InventoryConfig::default());
    // as the daemon does: the spec's templates are known to the templater
    for t in spec.templates() {
        inv.templater_mut().add_known(None, t).unwrap();
    }
    for path in ["/v1/users/1", "/v1/users/2", "/v1/users/me"] {
        observe(&mut inv, "api.example.com", "GET", path);
    }
    observe(&mut inv, "api.example.com", "HEAD", "/v1/orders");
    observe(&mut inv, "api.example.com", "PUT", "/v1/orders");
    observe(&mut inv, "other.example.com", "GET", "/admin/debug");
    observe(&mut inv, "api.example.com", "GET", "/v1/files/a.json");
    // learned templates (no known one) still match spec parameters
    observe(&mut inv, "api.example.com", "DELETE", "/internal/users/123");
    let c = compare(&spec, &inv);
    let shadow: Vec<(String, String, String, u64)> = c
        .shadow
        .iter()
        .map(|s| {
            (
                s.host.clone(),
                s.method.clone(),
                s.template.clone(),
                s.count,
            )
        })
        .collect();
    assert_eq!(
        shadow,
        [
            (
                "api.example.com".into(),
                "PUT".into(),
                "/v1/orders".into(),
                1
            ),
            (
                "other.example.com".into(),
                "GET".into(),
                "/admin/debug".into(),
                1
            ),
        ]
    );
    let unused: Vec<String> = c
        .unused
        .iter()
        .map(|u| format!("{} {}", u.method, u.template))
        .collect();
    assert_eq!(
        unused,
        [
            "GET /internal/files/{name}.json",
            "GET /internal/orders",
            "POST /internal/orders",
            "GET /internal/orders/{orderId}",
            "GET /internal/users/me",
            "GET /internal/users/{id}",
            "POST /v1/orders",
            "GET /v1/orders/{orderId}",
            "DELETE /v1/users/{id}",
        ]
    );
    assert_eq!(
        serde_json::to_value(&c).unwrap()["shadow"][0],
        json!({"host": "api.example.com", "method": "PUT", "template": "/v1/orders", "count": 1})
    );
    assert_eq!(
        serde_json::to_value(&c).unwrap()["unused"][0],
        json!({"method": "GET", "template": "/internal/files/{name}.json"})
    );
}

#[test]
fn is_documented_rules() {
    let spec = shop();
    for (method, template, documented) in [
        ("GET", "/v1/users/{userId}", true),
        ("GET", "/v1/users/17", true),
        ("GET", "/v1/users/me", true),
        ("GET", "/v1/users/{a}/x", false),
        ("GET", "/v1/orders/", true),
        ("HEAD", "/v1/orders", true),
        ("GET", "/v1/{x}", false),
        ("GET", "/v1/orders/*", false),
        ("GET", "/*", false),
        ("get", "/v1/files/{f}", true),
        ("OTHER", "/v1/orders", false),
    ] {
        assert_eq!(
            spec.is_documented(method, template),
            documented,
            "{method} {template}"
        );
    }
    // an overflow endpoint of the inventory is shadow
    let mut inv = Inventory::new(&InventoryConfig {
        templates: crate::discover::template::TemplateConfig {
            max_routes_per_host: 1,
            ..Default::default()
        },
        ..Default::default()
    });
    observe(&mut inv, "h", "GET", "/v1/orders");
    observe(&mut inv, "h", "GET", "/v1/users/me");
    let c = compare(&spec, &inv);
    let shadow: Vec<&str> = c.shadow.iter().map(|s| s.template.as_str()).collect();
    assert_eq!(shadow, ["/*"]);
}

#[test]
fn caps_operations_and_params() {
    let mut paths = serde_json::Map::new();
    for i in 0..100_000 {
        paths.insert(format!("/p{i}"), json!({"get": {}}));
    }
    let params: Vec<_> = (0..100)
        .map(|i| json!({"name": format!("q{i}"), "in": "query"}))
        .collect();
    paths.insert(
        "/a".into(),
        json!({"parameters": params, "get": {"parameters": params}}),
    );
    let doc = json!({"openapi": "3.0.1", "paths": paths}).to_string();
    let spec = Spec::parse(doc.as_bytes()).unwrap();
    assert_eq!(spec.operations().len(), MAX_OPERATIONS);
    assert_eq!(
        spec.stats().operations_dropped,
        100_001 - MAX_OPERATIONS as u64
    );
    // "/a" sorts first: 36 + 36 dropped before merging, 64 of the merged 64 kept
    assert_eq!(spec.operations()[0].params.len(), MAX_PARAMS);
    assert_eq!(spec.stats().params_dropped, 72);
    assert_eq!(spec.templates().count(), MAX_OPERATIONS);
}

#[test]
fn hostile_documents_fail_fast() {
    // billion laughs
    let mut bomb = String::from("openapi: 3.0.0\na: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..9 {
        let prev = if i == 0 {
            "a".to_string()
        } else {
            format!("l{}", i - 1)
        };
        bomb.push_str(&format!(
            "l{i}: &l{i} [{}]\n",
            vec![format!("*{prev}"); 10].join(", ")
        ));
    }
    // one big anchored list referenced many times
    let mut wide = String::from("openapi: 3.0.0\nbig: &big [");
    wide.push_str(&"0,".repeat(200_000));
    wide.push_str("0]\nrefs: [");
    wide.push_str(&"*big,".repeat(100_000));
    wide.push_str("*big]\n");
    let nested_json = format!("{}{}", "{\"a\":[".repeat(10_000), "]}".repeat(10_000));
    let nested_yaml = format!(
        "openapi: 3.0.0\nx: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    for (name, doc) in [
        ("bomb", bomb.as_str()),
        ("wide", wide.as_str()),
        ("nested json", nested_json.as_str()),
        ("nested yaml", nested_yaml.as_str()),
    ] {
        let start = Instant::now();
        let e = Spec::parse(doc.as_bytes()).unwrap_err();
        // Not a timing target: a bound far above the milliseconds this takes, that an
        // exponential expansion would still blow through even on a loaded 2-core machine.
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name}: {:?}",
            start.elapsed()
        );
        assert!(matches!(e, SpecError::Syntax(_)), "{name}: {e}");
    }
}

/// A 50-operation spec for timing `check`.
fn fifty() -> Spec {
    let mut paths = serde_json::Map::new();
    for i in 0..10 {
        let id =
            json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}});
        let q = json!({"name": "limit", "in": "query", "schema": {"type": "integer"}});
        paths.insert(
            format!("/api/r{i}"),
            json!({"get": {"parameters": [q]}, "post": {}}),
        );
        paths.insert(
            format!("/api/r{i}/{{id}}"),
            json!({"parameters": [id], "get": {}, "put": {}, "delete": {}}),
        );
    }
    Spec::parse(
        json!({"openapi": "3.1.0", "paths": paths})
            .to_string()
            .as_bytes(),
    )
    .unwrap()
}

#[test]
#[ignore = "timing; run with --ignored --nocapture"]
fn check_cost() {
    let spec = fifty();
    assert_eq!(spec.operations().len(), 50);
    let cases = [
        ("GET", "/api/r7/12345", None),
        ("GET", "/api/r3", Some("limit=10&x=y")),
        ("DELETE", "/api/r9/77", None),
        ("GET", "/api/nope/1", None),
    ];
    let n = 1_000_000;
    for (method, path, query) in cases {
        let start = Instant::now();
        let mut hits = 0;
        for _ in 0..n {
            hits += usize::from(
                std::hint::black_box(&spec)
                    .check(method, path, query)
                    .is_some(),
            );
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        println!("check {method} {path} {query:?}: {ns:.0} ns/call ({hits} violations)");
    }
}
