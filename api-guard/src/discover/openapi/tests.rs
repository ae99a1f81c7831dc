use serde_json::json;

use super::*;
use crate::{
    discover::inventory::{InventoryConfig, Observation, ObservedCredential},
    identity::CredentialScheme,
};

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln";

fn h(list: &[(&str, &str)]) -> crate::http::Headers {
    list.into()
}

/// A small API: users, their orders, order search, order creation; bearer JWT auth;
/// `/users/{userId}` leaks emails.
pub(crate) fn sample() -> Inventory {
    let mut inv = Inventory::new(&InventoryConfig::default());
    let auth = h(&[("Authorization", &format!("Bearer {JWT}"))]);
    let json_auth = h(&[
        ("Authorization", &format!("Bearer {JWT}")),
        ("Content-Type", "application/json"),
    ]);
    let json = h(&[("Content-Type", "application/json")]);
    let cred = Some(ObservedCredential {
        scheme: CredentialScheme::Bearer,
        hash: "sha256:00000000000000aa",
        name: None,
    });
    let bodies: Vec<String> = (1..=3)
        .map(|i| format!(r#"{{"id":{i},"name":"User {i}","email":"user{i}@example.com"}}"#))
        .collect();
    for (i, body) in bodies.iter().enumerate() {
        let path = format!("/users/{}", i + 1);
        inv.observe(&Observation {
            host: "api.test:8080",
            method: "GET",
            path: &path,
            request_headers: &auth,
            status: Some(200),
            response_headers: &json,
            response_body: body.as_bytes(),
            duration_ns: Some(2_000_000),
            client: Some("10.0.0.1".parse().unwrap()),
            credential: cred,
            time: 1000 + i as u64,
            ..Observation::default()
        });
        let path = format!("/users/{}/orders", i + 1);
        inv.observe(&Observation {
            host: "api.test:8080",
            method: "GET",
            path: &path,
            query: (i == 0).then_some("limit=10"),
            request_headers: &auth,
            status: Some(200),
            response_headers: &json,
            response_body: br#"[{"id":"9b2f6c1e-0c4e-4a57-9a55-1f6d2b9c7e10","total":12.5}]"#,
            credential: cred,
            time: 1000,
            ..Observation::default()
        });
    }
    inv.observe(&Observation {
        host: "api.test:8080",
        method: "GET",
        path: "/users/999",
        request_headers: &auth,
        status: Some(404),
        credential: cred,
        time: 1010,
        ..Observation::default()
    });
    for status in ["open", "shipped"] {
        let q = format!(
            "status={status}&since=2024-01-0{}",
            if status == "open" { 1 } else { 2 }
        );
        inv.observe(&Observation {
            host: "api.test:8080",
            method: "GET",
            path: "/orders",
            query: Some(&q),
            status: Some(200),
            response_headers: &json,
            response_body: b"[]",
            time: 1000,
            ..Observation::default()
        });
    }
    inv.observe(&Observation {
        host: "api.test:8080",
        method: "GET",
        path: "/orders",
        query: Some("status=open"),
        status: Some(200),
        time: 1000,
        ..Observation::default()
    });
    for (item, qty) in [("book", "1"), ("pen", "2")] {
        let body = format!(r#"{{"item":"{item}","quantity":{qty}}}"#);
        inv.observe(&Observation {
            host: "api.test:8080",
            method: "POST",
            path: "/orders",
            request_headers: &json_auth,
            request_body: body.as_bytes(),
            status: Some(201),
            response_headers: &json,
            response_body: br#"{"id":"9b2f6c1e-0c4e-4a57-9a55-1f6d2b9c7e10"}"#,
            credential: cred,
            time: 1000,
            ..Observation::default()
        });
    }
    inv
}

#[test]
fn exports_small_api() {
    let doc = export(&sample(), "Sample");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Sample");
    assert_eq!(doc["servers"], json!([{"url": "//api.test:8080"}]));
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        vec!["/orders", "/users/{userId}", "/users/{userId}/orders"]
    );
    let user = &doc["paths"]["/users/{userId}"]["get"];
    assert_eq!(user["operationId"], "get_users_userId");
    assert_eq!(
        user["parameters"],
        json!([{"name": "userId", "in": "path", "required": true,
                "schema": {"type": "integer", "format": "int64"}}])
    );
    assert_eq!(user["security"], json!([{"bearerJwt": []}]));
    assert_eq!(
        user["x-apiguard-sensitive"],
        json!({"request": {}, "response": {"email": 3}})
    );
    assert_eq!(user["x-apiguard-count"], 4);
    assert_eq!(user["x-apiguard-first-seen"], 1000);
    assert_eq!(user["x-apiguard-last-seen"], 1010);
    assert_eq!(user["x-apiguard-clients"], 1);
    assert_eq!(
        user["x-apiguard-latency-ms"],
        json!({"p50": 2.048, "p95": 2.048, "p99": 2.048})
    );
    let responses: Vec<&String> = user["responses"].as_object().unwrap().keys().collect();
    assert_eq!(responses, vec!["200", "404"]);
    let ok = &user["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(ok["type"], "object");
    assert_eq!(ok["properties"]["email"]["format"], "email");
    assert_eq!(ok["properties"]["id"]["type"], "integer");
    assert_eq!(user["responses"]["404"].get("content"), None);

    let orders = &doc["paths"]["/users/{userId}/orders"]["get"];
    assert_eq!(
        orders["parameters"],
        json!([
            {"name": "userId", "in": "path", "required": true,
             "schema": {"type": "integer", "format": "int64"}},
            {"name": "limit", "in": "query", "required": false,
             "schema": {"type": "integer", "format": "int64"}, "x-apiguard-seen": 1}
        ])
    );
    assert_eq!(orders.get("x-apiguard-sensitive"), None);

    let search = &doc["paths"]["/orders"]["get"];
    assert_eq!(
        search["parameters"],
        json!([
            {"name": "since", "in": "query", "required": false,
             "schema": {"type": "string", "format": "date"}, "x-apiguard-seen": 2},
            {"name": "status", "in": "query", "required": true,
             "schema": {"type": "string"}, "x-apiguard-seen": 3}
        ])
    );
    assert_eq!(search["security"], json!([]));

    let create = &doc["paths"]["/orders"]["post"];
    assert_eq!(create["operationId"], "post_orders");
    assert_eq!(create.get("parameters"), None);
    let body = &create["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["properties"]["item"]["type"], "string");
    assert_eq!(body["properties"]["quantity"]["type"], "integer");
    assert_eq!(body["required"], json!(["item", "quantity"]));
    assert_eq!(
        create["responses"]["201"]["content"]["application/json"]["schema"]["properties"]["id"]
            ["format"],
        "uuid"
    );
    assert_eq!(create["security"], json!([{"bearerJwt": []}]));
    assert_eq!(
        doc["components"],
        json!({"securitySchemes": {"bearerJwt":
            {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}})
    );
    assert_eq!(doc["info"]["x-apiguard-unexported"], 0);
}

fn multi_host() -> Inventory {
    let mut inv = Inventory::new(&InventoryConfig::default());
    let cases: [(&str, &str, &str, Option<ObservedCredential<'_>>); 6] = [
        ("a.test", "GET", "/x", None),
        (
            "a.test",
            "GET",
            "/x",
            Some(ObservedCredential {
                scheme: CredentialScheme::Basic,
                hash: "1",
                name: None,
            }),
        ),
        (
            "b.test",
            "GET",
            "/x",
            Some(ObservedCredential {
                scheme: CredentialScheme::ApiKeyHeader,
                hash: "2",
                name: Some("X-Api-Key"),
            }),
        ),
        (
            "b.test",
            "GET",
            "/x/",
            Some(ObservedCredential {
                scheme: CredentialScheme::ApiKeyQuery,
                hash: "3",
                name: Some("key"),
            }),
        ),
        (
            "b.test",
            "GET",
            "/x_",
            Some(ObservedCredential {
                scheme: CredentialScheme::Bearer,
                hash: "4",
                name: None,
            }),
        ),
        ("b.test", "CONNECT", "/x", None),
    ];
    for (host, method, path, credential) in cases {
        inv.observe(&Observation {
            host,
            method,
            path,
            credential,
            ..Observation::default()
        });
    }
    inv
}

#[test]
fn schemes_hosts_and_unique_ids() {
    let doc = export(&multi_host(), "t");
    assert_eq!(doc.get("servers"), None);
    let x = &doc["paths"]["/x"];
    assert_eq!(
        x["servers"],
        json!([{"url": "//a.test"}, {"url": "//b.test"}])
    );
    assert_eq!(x["x-apiguard-hosts"], json!(["a.test", "b.test"]));
    // a.test had 2 requests, b.test 2 (one `/x/`): tie broken by host name
    assert_eq!(x["get"]["x-apiguard-host"], "a.test");
    assert_eq!(x["get"]["x-apiguard-other-hosts"], json!(["b.test"]));
    assert_eq!(x["get"]["security"], json!([{"basicAuth": []}, {}]));
    assert_eq!(doc["paths"]["/x_"]["get"]["operationId"], "get_x_2");
    assert_eq!(doc["paths"]["/x"]["get"]["operationId"], "get_x");
    assert_eq!(doc["info"]["x-apiguard-unexported"], 1);
    assert_eq!(
        doc["components"]["securitySchemes"],
        json!({
            "basicAuth": {"type": "http", "scheme": "basic"},
            "bearerAuth": {"type": "http", "scheme": "bearer"}
        })
    );
}

#[test]
fn empty_inventory() {
    let doc = export(&Inventory::new(&InventoryConfig::default()), "empty");
    assert_eq!(
        doc,
        json!({
            "openapi": "3.1.0",
            "info": {"title": "empty", "version": "observed",
                     "description": "Generated by api-guard from observed traffic.",
                     "x-apiguard-unexported": 0,
                     "x-apiguard-grpc-methods-not-exported": 0,
                     "x-apiguard-overflow": {"endpoints": 0, "templates": 0, "bad-host": 0}},
            "paths": {}
        })
    );
}

/// Writes the sample document for a manual check with an external validator:
/// `APIGUARD_OPENAPI_OUT=/tmp/x.json cargo test ... write_sample_document`.
#[test]
fn write_sample_document() {
    if let Ok(path) = std::env::var("APIGUARD_OPENAPI_OUT") {
        let doc = export(&sample(), "Sample");
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        let doc = export(&multi_host(), "Hosts");
        let path = format!("{path}.hosts.json");
        std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    }
}

#[test]
fn literal_braces_are_encoded() {
    let mut inv = Inventory::new(&InventoryConfig::default());
    for path in ["/a{b}c/7", "/{lit}/x", "/q"] {
        inv.observe(&Observation {
            host: "h",
            method: "GET",
            path,
            ..Observation::default()
        });
    }
    // the templater makes brace segments parameters itself
    let doc = export(&inv, "t");
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(paths, vec!["/q", "/{id}/x", "/{id}/{id2}"]);
    // a literal that looks like a parameter (e.g. from a snapshot) is encoded
    let snap = serde_json::to_string(&inv)
        .unwrap()
        .replace("\"/q\"", "\"/a{b}c/{lit}\"");
    let inv: Inventory = serde_json::from_str(&snap).unwrap();
    let doc = export(&inv, "t");
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        vec!["/a%7Bb%7Dc/%7Blit%7D", "/{id}/x", "/{id}/{id2}"]
    );
    assert_eq!(
        doc["paths"]["/a%7Bb%7Dc/%7Blit%7D"]["get"]["operationId"],
        "get_abc_lit"
    );
    assert_eq!(
        doc["paths"]["/a%7Bb%7Dc/%7Blit%7D"]["get"].get("parameters"),
        None
    );
}

#[test]
fn yaml_round_trips() {
    for doc in [export(&sample(), "sample"), export(&multi_host(), "multi")] {
        let yaml = to_yaml(&doc).unwrap();
        assert!(yaml.contains("\nopenapi: 3.1.0\n"), "{yaml}");
        let back: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(back, doc);
    }
    // status keys stay strings, not YAML integers
    let yaml = to_yaml(&json!({"responses": {"200": {"x": 1.5}}})).unwrap();
    assert_eq!(yaml, "responses:\n  '200':\n    x: 1.5\n");
}
