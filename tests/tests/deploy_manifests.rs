//! The deployment files under `deploy/` (no root needed):
//! - every manifest in `deploy/kubernetes` passes PyPI's `kubernetes-validate` offline against
//!   the Kubernetes 1.37 and 1.30 schemas, strictly (unknown fields are errors); the
//!   ServiceMonitor (a CRD, not in those schemas) is checked against a JSON schema written here
//!   from the CRD's documented fields;
//! - the Helm chart, rendered by Helm's own Go SDK (`helm-python-sdk`, Helm v4) with default and
//!   non-default values, passes the same checks, and refuses bad values;
//! - the configuration in the ConfigMap and in the chart passes `api-guard check-config`;
//! - the Grafana dashboard is well-formed and queries only metrics the daemon exports (the
//!   "Metrics" table of docs/metrics.md).
//!
//! The tools are installed into `<target>/tools/venv` by `cargo xtask setup` / `cargo xtask test`.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, ensure, Context as _, Result};
use integration_tests::{
    agent::{agent_binary, AgentOptions},
    util::{next_id, target_dir},
};
use serde_json::Value;

/// Newest Kubernetes whose schemas kubernetes-validate 1.37.0 ships, and the oldest the
/// manifests support (`securityContext.appArmorProfile` is new in 1.30).
const KUBERNETES_VERSIONS: &[&str] = &["1.37.0", "1.30.0"];

/// The manifests in `deploy/kubernetes` that are core Kubernetes kinds.
const CORE_MANIFESTS: &[(&str, &str)] = &[
    ("namespace.yaml", "namespace/api-guard"),
    ("serviceaccount.yaml", "serviceaccount/api-guard"),
    ("configmap.yaml", "configmap/api-guard"),
    ("daemonset.yaml", "daemonset/api-guard"),
    ("service.yaml", "service/api-guard"),
];

/// ServiceMonitor (monitoring.coreos.com/v1), the fields this project uses, from the Prometheus
/// Operator's API reference; unknown fields are refused like `--strict` does for core kinds.
const SERVICE_MONITOR_SCHEMA: &str = r#"{
  "type": "object",
  "required": ["apiVersion", "kind", "metadata", "spec"],
  "additionalProperties": false,
  "properties": {
    "apiVersion": {"const": "monitoring.coreos.com/v1"},
    "kind": {"const": "ServiceMonitor"},
    "metadata": {
      "type": "object", "required": ["name", "namespace"],
      "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}}
      }
    },
    "spec": {
      "type": "object", "required": ["selector", "endpoints"], "additionalProperties": false,
      "properties": {
        "jobLabel": {"type": "string"},
        "selector": {
          "type": "object", "additionalProperties": false,
          "properties": {
            "matchLabels": {"type": "object", "minProperties": 1,
                            "additionalProperties": {"type": "string"}},
            "matchExpressions": {"type": "array"}
          }
        },
        "namespaceSelector": {
          "type": "object", "additionalProperties": false,
          "properties": {
            "any": {"type": "boolean"},
            "matchNames": {"type": "array", "items": {"type": "string"}}
          }
        },
        "endpoints": {
          "type": "array", "minItems": 1,
          "items": {
            "type": "object", "required": ["port"], "additionalProperties": false,
            "properties": {
              "port": {"type": "string"},
              "path": {"type": "string", "pattern": "^/"},
              "scheme": {"enum": ["http", "https"]},
              "interval": {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
              "scrapeTimeout": {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
              "honorLabels": {"type": "boolean"},
              "relabelings": {
                "type": "array",
                "items": {
                  "type": "object", "additionalProperties": false,
                  "properties": {
                    "sourceLabels": {"type": "array",
                                     "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
                    "targetLabel": {"type": "string"},
                    "action": {"enum": ["replace", "Replace", "keep", "Keep", "drop", "Drop",
                                        "hashmod", "HashMod", "labelmap", "LabelMap",
                                        "labeldrop", "LabelDrop", "labelkeep", "LabelKeep"]},
                    "regex": {"type": "string"},
                    "replacement": {"type": "string"},
                    "separator": {"type": "string"},
                    "modulus": {"type": "integer"}
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}"#;

/// Python run in the tools venv: validates every document of `kind` ServiceMonitor in the YAML
/// files against the schema (argv[1]); prints `ok <name>` per document.
const CHECK_SERVICE_MONITOR: &str = r#"
import json, sys, yaml, jsonschema
schema = json.loads(open(sys.argv[1]).read())
jsonschema.Draft7Validator.check_schema(schema)
for path in sys.argv[2:]:
    for doc in yaml.safe_load_all(open(path)):
        if doc and doc.get("kind") == "ServiceMonitor":
            jsonschema.validate(doc, schema)
            print("ok", doc["metadata"]["name"])
"#;

/// Python: writes the `api-guard.toml` of every ConfigMap in argv[1] to argv[2] (exactly one).
const EXTRACT_CONFIG: &str = r#"
import sys, yaml
found = [d["data"]["api-guard.toml"] for d in yaml.safe_load_all(open(sys.argv[1]))
         if d and d.get("kind") == "ConfigMap"]
assert len(found) == 1, f"{len(found)} ConfigMaps"
open(sys.argv[2], "w").write(found[0])
"#;

/// Python: renders the chart (argv[1]) as release argv[2] in namespace argv[3] with the JSON
/// values argv[4] through Helm's Go SDK, writing the documents to argv[5]; prints the SDK version.
const RENDER_CHART: &str = r#"
import json, sys, helm_python as helm
chart, release, namespace, values, out = sys.argv[1:6]
with helm.Chart.load(chart) as c:
    rendered = c.render(json.loads(values), name=release, namespace=namespace)
with open(out, "w") as f:
    for name in sorted(rendered):
        if rendered[name].strip():
            f.write(f"---\n# Source: {name}\n{rendered[name]}\n")
print(helm.helm_sdk_version())
"#;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn venv() -> Result<PathBuf> {
    let venv = match std::env::var_os("API_GUARD_TOOLS_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => target_dir()?.join("tools").join("venv"),
    };
    for tool in ["python3", "kubernetes-validate"] {
        ensure!(
            venv.join("bin").join(tool).is_file(),
            "{tool} is missing in {}: `cargo xtask setup` (or `cargo xtask test`) installs it",
            venv.display()
        );
    }
    Ok(venv)
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Result<Out> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    Ok(Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn python(venv: &Path, script: &str, args: &[&Path]) -> Result<Out> {
    run(Command::new(venv.join("bin").join("python3"))
        .arg("-c")
        .arg(script)
        .args(args))
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "api-guard-deploy-{what}-{}-{}",
            std::process::id(),
            next_id()
        ));
        fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// kubernetes-validate --strict on `file` for every version in [`KUBERNETES_VERSIONS`]; each
/// resource in `expect` (`kind/name`, lower-case kind) must be reported as passed, and nothing
/// else but the ServiceMonitor (no schema: checked by [`check_service_monitors`]) may appear.
fn kubernetes_validate(venv: &Path, file: &Path, expect: &[&str]) -> Result<()> {
    for version in KUBERNETES_VERSIONS {
        let out = run(Command::new(venv.join("bin").join("kubernetes-validate"))
            .args(["--strict", "-k", version])
            .arg(file))?;
        let all = format!("{}{}", out.stdout, out.stderr);
        ensure!(
            out.ok,
            "{} fails Kubernetes {version}:\n{all}",
            file.display()
        );
        let short = version.rsplit_once('.').map_or(*version, |(v, _)| v);
        let mut passed = BTreeSet::new();
        for line in all.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.split(" passed for resource ").nth(1) {
                let (resource, against) = rest
                    .split_once(" against version ")
                    .with_context(|| format!("unexpected line {line:?}"))?;
                ensure!(
                    against.trim() == short,
                    "validated against {against}: {line}"
                );
                passed.insert(resource.to_string());
            } else if !(line.starts_with("WARN ")
                && line.contains("Couldn't find schema for kind ServiceMonitor"))
            {
                bail!(
                    "unexpected kubernetes-validate output for {}: {line}",
                    file.display()
                );
            }
        }
        let want: BTreeSet<String> = expect.iter().map(|s| s.to_string()).collect();
        ensure!(
            passed == want,
            "{} against {version}: passed {passed:?}, expected {want:?}",
            file.display()
        );
    }
    Ok(())
}

/// Validates the ServiceMonitors in `files` against [`SERVICE_MONITOR_SCHEMA`]; returns
/// their names.
fn check_service_monitors(venv: &Path, scratch: &Scratch, files: &[&Path]) -> Result<Vec<String>> {
    let schema = scratch.0.join("servicemonitor.schema.json");
    fs::write(&schema, SERVICE_MONITOR_SCHEMA)?;
    let mut args = vec![schema.as_path()];
    args.extend_from_slice(files);
    let out = python(venv, CHECK_SERVICE_MONITOR, &args)?;
    ensure!(
        out.ok,
        "ServiceMonitor invalid:\n{}{}",
        out.stdout,
        out.stderr
    );
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ok ").map(str::to_string))
        .collect())
}

/// Extracts the ConfigMap's `api-guard.toml` from `manifest` and runs `api-guard check-config`
/// on it; returns the configuration.
fn check_config(venv: &Path, scratch: &Scratch, manifest: &Path) -> Result<String> {
    let toml = scratch.0.join(format!("config-{}.toml", next_id()));
    let out = python(venv, EXTRACT_CONFIG, &[manifest, &toml])?;
    ensure!(
        out.ok,
        "no config in {}: {}",
        manifest.display(),
        out.stderr
    );
    let bin = agent_binary(&AgentOptions::default())?;
    let out = run(Command::new(&bin).arg("check-config").arg(&toml))?;
    ensure!(
        out.ok && out.stdout.trim() == format!("{}: ok", toml.display()),
        "check-config refuses the config of {}:\n{}{}",
        manifest.display(),
        out.stdout,
        out.stderr
    );
    Ok(fs::read_to_string(&toml)?)
}

#[test]
fn kubernetes_manifests_validate_offline() -> Result<()> {
    let venv = venv()?;
    let scratch = Scratch::new("k8s")?;
    let dir = repo_root().join("deploy").join("kubernetes");
    let mut files: Vec<String> = fs::read_dir(&dir)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    files.sort();
    let mut want: Vec<String> = CORE_MANIFESTS.iter().map(|(f, _)| f.to_string()).collect();
    want.push("servicemonitor.yaml".into());
    want.sort();
    assert_eq!(files, want, "every file in deploy/kubernetes is checked");

    for (file, resource) in CORE_MANIFESTS {
        kubernetes_validate(&venv, &dir.join(file), &[resource])?;
    }
    let monitor = dir.join("servicemonitor.yaml");
    kubernetes_validate(&venv, &monitor, &[])?;
    assert_eq!(
        check_service_monitors(&venv, &scratch, &[&monitor])?,
        ["api-guard"]
    );

    // The validation is strict: a misspelt field is an error.
    let daemonset = fs::read_to_string(dir.join("daemonset.yaml"))?;
    let typo = scratch.0.join("typo.yaml");
    fs::write(
        &typo,
        daemonset.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
    )?;
    let err = kubernetes_validate(&venv, &typo, &["daemonset/api-guard"]).unwrap_err();
    assert!(
        format!("{err:#}").contains("'readOnlyRootFileSystem' was unexpected"),
        "{err:#}"
    );
    let bad_monitor = scratch.0.join("bad-monitor.yaml");
    fs::write(
        &bad_monitor,
        fs::read_to_string(&monitor)?.replace("interval: 30s", "interval: 30 seconds"),
    )?;
    assert!(check_service_monitors(&venv, &scratch, &[&bad_monitor]).is_err());

    // The DaemonSet's security posture, as documented.
    for needle in [
        "privileged: false",
        "readOnlyRootFilesystem: true",
        "hostNetwork: true",
        "hostPID: true",
        "dnsPolicy: ClusterFirstWithHostNet",
        "fieldPath: spec.nodeName",
        "fieldPath: status.podIP",
        "--metrics-addr=$(POD_IP):9464",
        "path: /healthz",
        "- operator: Exists",
    ] {
        assert!(
            daemonset.contains(needle),
            "daemonset.yaml lacks {needle:?}"
        );
    }

    let config = check_config(&venv, &scratch, &dir.join("configmap.yaml"))?;
    assert!(config.contains("mode = \"dry-run\""), "{config}");
    Ok(())
}

#[test]
fn helm_chart_renders_with_helm_sdk_and_validates() -> Result<()> {
    let venv = venv()?;
    let scratch = Scratch::new("helm")?;
    let chart = repo_root().join("deploy").join("helm").join("api-guard");
    let render = |release: &str, namespace: &str, values: &str| -> Result<(Out, PathBuf)> {
        let out_file = scratch.0.join(format!("{release}-{}.yaml", next_id()));
        let out = run(Command::new(venv.join("bin").join("python3"))
            .arg("-c")
            .arg(RENDER_CHART)
            .arg(&chart)
            .args([release, namespace, values])
            .arg(&out_file))?;
        Ok((out, out_file))
    };

    // Defaults: the same objects as deploy/kubernetes, without Namespace and ServiceMonitor.
    let (out, file) = render("api-guard", "api-guard", "{}")?;
    ensure!(out.ok, "helm render failed:\n{}", out.stderr);
    assert!(
        out.stdout.trim().starts_with("v4."),
        "Helm SDK {}",
        out.stdout
    );
    kubernetes_validate(
        &venv,
        &file,
        &[
            "configmap/api-guard",
            "daemonset/api-guard",
            "service/api-guard",
            "serviceaccount/api-guard",
        ],
    )?;
    assert!(check_service_monitors(&venv, &scratch, &[&file])?.is_empty());
    let config = check_config(&venv, &scratch, &file)?;
    assert!(
        config
            .trim_end()
            .ends_with("[xdp]\ninterfaces = []\nmode = \"auto\"\npin = false"),
        "{config}"
    );
    let rendered = fs::read_to_string(&file)?;
    assert!(rendered.contains("--metrics-addr=$(POD_IP):9464"));
    assert!(rendered.contains("image: \"api-guard:0.1.0\""));

    // Everything switched on, other names, other port.
    let values = r#"{"createNamespace": true,
        "serviceMonitor": {"enabled": true, "labels": {"release": "prom"}},
        "xdp": {"interfaces": ["eth0", "ens5"], "mode": "native", "pin": true},
        "metrics": {"port": 9500}, "image": {"repository": "registry.example/api-guard",
        "tag": "1.2.3"}, "tolerations": [], "priorityClassName": "system-node-critical"}"#;
    let (out, file) = render("edge", "security", values)?;
    ensure!(out.ok, "helm render failed:\n{}", out.stderr);
    kubernetes_validate(
        &venv,
        &file,
        &[
            "configmap/edge-api-guard",
            "daemonset/edge-api-guard",
            "namespace/security",
            "service/edge-api-guard",
            "serviceaccount/edge-api-guard",
        ],
    )?;
    assert_eq!(
        check_service_monitors(&venv, &scratch, &[&file])?,
        ["edge-api-guard"]
    );
    let config = check_config(&venv, &scratch, &file)?;
    assert!(
        config
            .trim_end()
            .ends_with("[xdp]\ninterfaces = [\"eth0\",\"ens5\"]\nmode = \"native\"\npin = true"),
        "{config}"
    );
    let rendered = fs::read_to_string(&file)?;
    for needle in [
        "--metrics-addr=$(POD_IP):9500",
        "containerPort: 9500",
        "image: \"registry.example/api-guard:1.2.3\"",
        "release: prom",
        "priorityClassName: system-node-critical",
    ] {
        assert!(rendered.contains(needle), "rendered chart lacks {needle:?}");
    }
    assert!(!rendered.contains("tolerations:"));

    // Cluster mode with the small in-cluster Redis and a password Secret made by the chart.
    let values = r#"{"cluster": {"enabled": true, "password": "s3cret",
        "inClusterRedis": {"enabled": true}}}"#;
    let (out, file) = render("api-guard", "guard", values)?;
    ensure!(out.ok, "helm render failed:\n{}", out.stderr);
    kubernetes_validate(
        &venv,
        &file,
        &[
            "configmap/api-guard",
            "daemonset/api-guard",
            "deployment/api-guard-redis",
            "secret/api-guard-redis",
            "service/api-guard",
            "service/api-guard-redis",
            "serviceaccount/api-guard",
        ],
    )?;
    let config = check_config(&venv, &scratch, &file)?;
    assert!(
        config.trim_end().ends_with(
            "[cluster]\nredis_url = \"redis://api-guard-redis.guard.svc:6379\"\n\
             password_file = \"/etc/api-guard/redis/password\""
        ),
        "{config}"
    );
    let rendered = fs::read_to_string(&file)?;
    for needle in [
        "mountPath: /etc/api-guard/redis",
        "secretName: api-guard-redis",
        "password: \"czNjcmV0\"",
    ] {
        assert!(rendered.contains(needle), "rendered chart lacks {needle:?}");
    }
    assert!(!config.contains("s3cret") && !rendered.contains("s3cret"));

    // An external rediss:// Redis with an existing Secret and a CA: no Redis of our own.
    let values = r#"{"cluster": {"enabled": true, "redisUrl": "rediss://redis.example:6380",
        "existingSecret": "redis-auth", "caSecret": "redis-ca"}}"#;
    let (out, file) = render("api-guard", "guard", values)?;
    ensure!(out.ok, "helm render failed:\n{}", out.stderr);
    kubernetes_validate(
        &venv,
        &file,
        &[
            "configmap/api-guard",
            "daemonset/api-guard",
            "service/api-guard",
            "serviceaccount/api-guard",
        ],
    )?;
    let config = check_config(&venv, &scratch, &file)?;
    assert!(
        config.contains("redis_url = \"rediss://redis.example:6380\"")
            && config.contains("ca_file = \"/etc/api-guard/redis-ca/ca.crt\""),
        "{config}"
    );
    let rendered = fs::read_to_string(&file)?;
    assert!(
        rendered.contains("secretName: redis-auth") && rendered.contains("secretName: redis-ca")
    );

    // Bad values are refused by the chart itself.
    for (values, message) in [
        (
            r#"{"config": "[xdp]\ninterfaces = [\"eth0\"]\n"}"#,
            "put the [xdp] table in the `xdp` values",
        ),
        (
            r#"{"xdp": {"interfaces": ["eth0\"]\n[x]"]}}"#,
            "is not an interface name",
        ),
        (
            r#"{"xdp": {"mode": "fast"}}"#,
            "xdp.mode must be auto, native or generic",
        ),
        (
            r#"{"cluster": {"enabled": true}}"#,
            "cluster.enabled needs cluster.redisUrl or cluster.inClusterRedis.enabled",
        ),
        (
            r#"{"cluster": {"enabled": true, "redisUrl": "redis://:pw@redis:6379"}}"#,
            "without a password",
        ),
    ] {
        let (out, _) = render("bad", "bad", values)?;
        assert!(!out.ok, "{values} rendered");
        assert!(out.stderr.contains(message), "{values}: {}", out.stderr);
    }
    Ok(())
}

/// Metric names of the "Metrics" table in docs/metrics.md.
fn documented_metrics() -> Result<BTreeSet<String>> {
    let doc = fs::read_to_string(repo_root().join("docs/metrics.md"))?;
    let section = doc
        .split("# Metrics\n")
        .nth(1)
        .context("docs/metrics.md has no Metrics section")?;
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut names = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `apiguard_")) {
        let cell = line.split('|').nth(1).unwrap_or("");
        for name in cell.split(',') {
            names.insert(name.trim().trim_matches('`').to_string());
        }
    }
    ensure!(
        names.len() > 30,
        "only {} metrics in docs/metrics.md",
        names.len()
    );
    Ok(names)
}

/// `apiguard_*` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("apiguard_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn grafana_dashboard_queries_exported_metrics() -> Result<()> {
    let path = repo_root()
        .join("deploy")
        .join("grafana")
        .join("api-guard-dashboard.json");
    let dash: Value = serde_json::from_str(&fs::read_to_string(&path)?)?;
    let documented = documented_metrics()?;
    // Histograms are documented by their base name.
    let base = |n: &str| -> String {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(b) = n.strip_suffix(suffix) {
                if documented.contains(b) {
                    return b.to_string();
                }
            }
        }
        n.to_string()
    };

    for field in ["title", "uid"] {
        assert!(
            dash[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}"
        );
    }
    assert!(dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    let templating = dash["templating"]["list"]
        .as_array()
        .context("templating")?;
    assert!(templating
        .iter()
        .any(|t| t["name"] == "datasource" && t["type"] == "datasource"));
    let panels = dash["panels"].as_array().context("panels")?;
    let mut ids = BTreeSet::new();
    let mut used = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().context("panel title")?;
        assert!(
            ids.insert(panel["id"].as_u64().context("panel id")?),
            "{title}: id"
        );
        assert!(panel["type"].as_str().is_some(), "{title}: type");
        for key in ["x", "y", "w", "h"] {
            assert!(
                panel["gridPos"][key].as_u64().is_some(),
                "{title}: gridPos.{key}"
            );
        }
        let w = panel["gridPos"]["w"].as_u64().unwrap_or(0);
        let x = panel["gridPos"]["x"].as_u64().unwrap_or(0);
        assert!(w > 0 && x + w <= 24, "{title}: outside the 24-column grid");
        let targets = panel["targets"].as_array().context("targets")?;
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            let expr = t["expr"].as_str().context("expr")?;
            let names = metric_names(expr);
            assert!(
                !names.is_empty(),
                "{title}: {expr} queries no api-guard metric"
            );
            assert_eq!(
                expr.matches('(').count(),
                expr.matches(')').count(),
                "{title}: {expr}"
            );
            for name in names {
                let b = base(&name);
                assert!(documented.contains(&b), "{title}: {name} is not exported");
                used.insert(b);
            }
        }
    }
    // What the dashboard must show.
    for wanted in [
        "apiguard_http_requests_total",
        "apiguard_http_request_duration_seconds",
        "apiguard_detections_total",
        "apiguard_blocks_total",
        "apiguard_xdp_packets_total",
        "apiguard_capture_dropped_total",
        "apiguard_api_endpoints",
        "apiguard_api_shadow_endpoints",
    ] {
        assert!(used.contains(wanted), "no panel shows {wanted}");
    }
    let exprs: Vec<&str> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    for q in ["0.5", "0.95", "0.99"] {
        assert!(
            exprs
                .iter()
                .any(|e| e.starts_with(&format!("histogram_quantile({q},"))
                    && e.contains("apiguard_http_request_duration_seconds_bucket")),
            "no p{q} latency"
        );
    }
    Ok(())
}
