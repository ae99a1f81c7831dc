//! `api-guard inventory --from-exchanges FILE.jsonl`: the API inventory built from recorded
//! exchange lines, run as a user would (no root, no daemon).

use std::{fs, process::Command};

use anyhow::{ensure, Result};
use integration_tests::{agent::agent_binary, AgentOptions, TempDir};
use serde_json::Value;

fn exchange(path: &str, query: Option<&str>, peer: u8, status: u16, role: &str) -> String {
    serde_json::json!({
        "time": "2026-11-27T15:00:00.5Z", "role": role, "peer_addr": format!("10.9.0.{peer}:40000"),
        "method": "GET", "path": path, "query": query, "host": "api.example.com",
        "status": status, "duration_ms": 3.0,
    })
    .to_string()
}

#[test]
fn templates_and_openapi_from_exchange_lines() -> Result<()> {
    let dir = TempDir::new("inventory-offline")?;
    let input = dir.path().join("exchanges.jsonl");
    let mut lines: Vec<String> = (1..=40)
        .map(|id| exchange(&format!("/users/{id}"), None, (id % 4) as u8, 200, "server"))
        .collect();
    lines.push(exchange(
        "/users/41/orders",
        Some("status=open&page=2"),
        1,
        200,
        "server",
    ));
    lines.push(exchange(
        "/users/42/orders",
        Some("status=shipped"),
        2,
        200,
        "server",
    ));
    lines.push(exchange("/upstream/health", None, 1, 200, "client"));
    lines.push("not an exchange".into());
    fs::write(&input, lines.join("\n"))?;
    let bin = agent_binary(&AgentOptions::default())?;
    let run = |format: &str| {
        Command::new(&bin)
            .args(["inventory", "--from-exchanges"])
            .arg(&input)
            .args(["--format", format])
            .output()
    };

    let out = run("openapi")?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(String::from_utf8_lossy(&out.stderr).contains("1 lines were not exchange lines"));
    let doc: Value = serde_json::from_slice(&out.stdout)?;
    ensure!(doc["openapi"] == "3.1.0", "{doc}");
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    ensure!(
        paths == ["/users/{userId}", "/users/{userId}/orders"],
        "{paths:?}"
    );
    let users = &doc["paths"]["/users/{userId}"]["get"];
    ensure!(users["x-apiguard-count"] == 40, "{users}");
    let p = &users["parameters"][0];
    ensure!(
        p["in"] == "path" && p["name"] == "userId" && p["required"] == true,
        "{p}"
    );
    ensure!(p["schema"]["type"] == "integer", "{p}");
    let orders = &doc["paths"]["/users/{userId}/orders"]["get"]["parameters"];
    let query: Vec<(String, bool)> = orders
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query")
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_owned(),
                p["required"] == true,
            )
        })
        .collect();
    ensure!(
        query == [("page".into(), false), ("status".into(), true)],
        "{query:?}"
    );

    let out = run("table")?;
    let table = String::from_utf8(out.stdout)?;
    let rows: Vec<&str> = table.lines().collect();
    ensure!(rows.len() == 3 && rows[0].starts_with("HOST"), "{table}");
    ensure!(
        rows[1].contains("/users/{userId} ") && rows[1].contains("200:40"),
        "{table}"
    );

    let out = run("json")?;
    let inv: Value = serde_json::from_slice(&out.stdout)?;
    ensure!(
        inv["endpoints"].as_array().map(Vec::len) == Some(2),
        "{inv}"
    );
    Ok(())
}
