use std::net::Ipv4Addr;

use super::*;
use crate::identity::{ClientIdentity, Credential, CredentialScheme};

const SEC: u64 = NS;
const KEY: &str = "sha256:0123456789abcdef";

fn who(ip: u32, key: Option<&str>) -> ClientIdentity {
    ClientIdentity {
        ip: Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + ip))),
        via_proxy: None,
        credential: key.map(|h| Credential {
            scheme: CredentialScheme::Bearer,
            hash: h.to_string(),
            jwt_subject: None,
        }),
    }
}

fn detector(c: LlmAbuseConfig) -> LlmAbuseDetector {
    LlmAbuseDetector::new(&c).unwrap()
}

/// Only the check named on, the others off.
fn only(check: &str) -> LlmAbuseConfig {
    LlmAbuseConfig {
        key_sharing: check == "sharing",
        token_spike: check == "spike",
        unseen_model: check == "model",
        enumeration: check == "enumeration",
        brute_force: check == "brute",
        ..LlmAbuseConfig::default()
    }
}

/// An answered LLM call.
fn call(
    d: &mut LlmAbuseDetector,
    who: &ClientIdentity,
    status: u16,
    model: Option<&str>,
    tokens: u64,
    at: u64,
) -> Vec<Finding> {
    let ctx = Context {
        now_ns: at,
        client: who,
    };
    let mut out = Vec::new();
    d.inspect_use(Some(status), &LlmUse { model, tokens }, &ctx, &mut out);
    out
}

/// A request with its answer, through the request-time and outcome checks.
fn request(
    d: &mut LlmAbuseDetector,
    who: &ClientIdentity,
    method: &str,
    path: &str,
    status: Option<u16>,
    at: u64,
) -> Vec<Finding> {
    let req = Request {
        method,
        path,
        query: None,
        version: crate::http::HttpVersion::Http11,
        anomalies: &[],
        request_line_invalid: false,
        headers: <&crate::http::Headers>::default(),
        body: b"",
        body_len: 0,
        head_len: 0,
        authority: None,
        peer: who.ip,
        status,
        fields: None,
    };
    let ctx = Context {
        now_ns: at,
        client: who,
    };
    let mut out = Vec::new();
    d.inspect(&req, &ctx, &mut out);
    out
}

fn ids(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.rule_id).collect()
}

#[test]
fn key_sharing_fires_once_per_window_on_answered_calls() {
    let mut d = detector(only("sharing"));
    for ip in 1..=5 {
        assert!(call(
            &mut d,
            &who(ip, Some(KEY)),
            200,
            None,
            10,
            u64::from(ip) * SEC
        )
        .is_empty());
    }
    // Refused calls from more addresses are not use of the key.
    for ip in 6..20 {
        assert!(call(&mut d, &who(ip, Some(KEY)), 401, None, 0, 6 * SEC).is_empty());
    }
    let f = call(&mut d, &who(6, Some(KEY)), 200, None, 10, 10 * SEC);
    assert_eq!(
        f,
        vec![Finding::new(
            &rules::LLM_KEY_SHARING,
            "client",
            "LLM key sha256:0123456789abcdef used from 6 client addresses within 600 s"
        )]
    );
    assert_eq!(f[0].kind, crate::detect::Kind::LlmKeyAbuse);
    for ip in 7..50 {
        assert!(call(&mut d, &who(ip, Some(KEY)), 200, None, 10, 20 * SEC).is_empty());
    }
    // A window after the finding, still shared: reported again.
    assert_eq!(
        call(&mut d, &who(50, Some(KEY)), 200, None, 10, 611 * SEC).len(),
        1
    );
}

#[test]
fn benign_key_use_is_quiet() {
    let mut d = detector(LlmAbuseConfig {
        spike_min_tokens: 100,
        baseline_secs: 60,
        spike_window_secs: 1,
        model_learning_secs: 60,
        ..LlmAbuseConfig::default()
    });
    // One key, one address, a steady 50 tokens a second for ten minutes on its two models;
    // five addresses (a small team) on another key; calls without a key.
    for s in 0..600u64 {
        let model = if s % 2 == 0 { "gpt-4o" } else { "gpt-4o-mini" };
        assert!(call(&mut d, &who(1, Some(KEY)), 200, Some(model), 50, s * SEC).is_empty());
        let team = who(2 + (s % 5) as u32, Some("sha256:1111111111111111"));
        assert!(call(&mut d, &team, 200, Some("m"), 10, s * SEC).is_empty());
        assert!(call(&mut d, &who(9, None), 200, Some("x"), 10_000, s * SEC).is_empty());
    }
    // Doubling its rate is no spike; one client listing models with its own key again and
    // again is no enumeration; one mistyped key is no brute force.
    for s in 600..700u64 {
        assert!(call(
            &mut d,
            &who(1, Some(KEY)),
            200,
            Some("gpt-4o"),
            100,
            s * SEC
        )
        .is_empty());
        assert!(request(
            &mut d,
            &who(1, Some(KEY)),
            "GET",
            "/v1/models",
            Some(200),
            s * SEC
        )
        .is_empty());
        let typo = who(1, Some("sha256:2222222222222222"));
        assert!(request(
            &mut d,
            &typo,
            "POST",
            "/v1/chat/completions",
            Some(401),
            s * SEC
        )
        .is_empty());
    }
}

#[test]
fn token_spike_against_the_keys_own_average() {
    let limits = LlmAbuseConfig {
        spike_window_secs: 60,
        baseline_secs: 3600,
        spike_min_tokens: 20_000,
        ..only("spike")
    };
    let mut d = detector(limits);
    let me = who(1, Some(KEY));
    // An hour at 3,000 tokens a minute.
    for m in 0..60u64 {
        assert!(call(&mut d, &me, 200, None, 3000, m * 60 * SEC).is_empty());
    }
    // 29,000 in a minute: under 10x the average (30,000); 2,000 more in it pass it, once.
    assert!(call(&mut d, &me, 200, None, 29_000, 60 * 60 * SEC).is_empty());
    let f = call(&mut d, &me, 200, None, 2_000, 60 * 60 * SEC + 30 * SEC);
    assert_eq!(ids(&f), ["llm.token_spike"]);
    assert_eq!(
        f[0].evidence,
        "31000 tokens in 60 s; the key's average is 3000.0 per 60 s (limit 10x, floor 20000)"
    );
    assert!(call(&mut d, &me, 200, None, 50_000, 60 * 60 * SEC + 40 * SEC).is_empty());
}

#[test]
fn token_spike_needs_learning_and_the_floor() {
    let mut d = detector(only("spike"));
    let me = who(1, Some(KEY));
    // A new key: nothing to compare with during its first hour, however much it uses.
    for m in 0..59u64 {
        assert!(call(&mut d, &me, 200, None, 100_000, m * 60 * SEC).is_empty());
    }
    // A dormant key (tiny use for an hour, then silence): a burst above the floor fires,
    // one below does not.
    let mut d = detector(only("spike"));
    assert!(call(&mut d, &me, 200, None, 10, 0).is_empty());
    assert!(call(&mut d, &me, 200, None, 19_999, 5 * 3600 * SEC).is_empty());
    let f = call(&mut d, &me, 200, None, 1, 5 * 3600 * SEC + SEC);
    assert_eq!(ids(&f), ["llm.token_spike"]);
    // Idle for years: the average decays to zero without looping over the windows.
    let mut d = detector(only("spike"));
    assert!(call(&mut d, &me, 200, None, 10, 0).is_empty());
    let f = call(&mut d, &me, 200, None, 25_000, u64::MAX / 2);
    assert_eq!(ids(&f), ["llm.token_spike"]);
    // Errors and unknown answers count nothing.
    let mut d = detector(only("spike"));
    assert!(call(&mut d, &me, 200, None, 10, 0).is_empty());
    for status in [400, 429, 500] {
        assert!(call(&mut d, &me, status, None, 1_000_000, 7200 * SEC).is_empty());
    }
}

#[test]
fn unseen_model_after_learning() {
    let c = LlmAbuseConfig {
        model_learning_secs: 100,
        ..only("model")
    };
    let mut d = detector(c);
    let me = who(1, Some(KEY));
    for (m, at) in [("gpt-4o", 0), ("gpt-4o-mini", 50), ("o1", 99)] {
        assert!(call(&mut d, &me, 200, Some(m), 10, at * SEC).is_empty());
    }
    // Known models stay quiet; a model first asked for after learning fires once.
    assert!(call(&mut d, &me, 200, Some("o1"), 10, 200 * SEC).is_empty());
    let f = call(&mut d, &me, 200, Some("gpt-4-32k"), 10, 200 * SEC);
    assert_eq!(
        f,
        vec![Finding::new(
            &rules::LLM_UNSEEN_MODEL,
            "body:$.model",
            "model gpt-4-32k never used by this key before (3 known after 100 s of learning)"
        )]
    );
    assert!(call(&mut d, &me, 200, Some("gpt-4-32k"), 10, 201 * SEC).is_empty());
    // Refused calls neither teach nor fire; another key has its own profile.
    assert!(call(&mut d, &me, 404, Some("nope"), 0, 300 * SEC).is_empty());
    let other = who(1, Some("sha256:3333333333333333"));
    assert!(call(&mut d, &other, 200, Some("nope"), 10, 300 * SEC).is_empty());
    // A key that already used many models has no narrow profile: not judged past the bound.
    let mut d = detector(LlmAbuseConfig {
        model_learning_secs: 0,
        ..only("model")
    });
    let mut fired = 0;
    for i in 0..1000 {
        let m = format!("m{i}");
        fired += call(&mut d, &me, 200, Some(&m), 1, i * SEC).len();
    }
    assert_eq!(fired, keys::MAX_MODELS - 1);
}

#[test]
fn model_enumeration_with_many_keys_or_none() {
    let mut d = detector(only("enumeration"));
    let attacker = |k: u32| {
        who(
            7,
            Some(Box::leak(format!("sha256:{k:016x}").into_boxed_str())),
        )
    };
    for k in 0..3 {
        assert!(request(
            &mut d,
            &attacker(k),
            "GET",
            "/v1/models",
            None,
            u64::from(k)
        )
        .is_empty());
    }
    // No key counts as a fourth.
    let f = request(&mut d, &who(7, None), "GET", "/v1/models", None, 10);
    assert_eq!(
        f,
        vec![Finding::new(
            &rules::LLM_MODEL_ENUMERATION,
            "client",
            "models listed with 4 distinct keys within 600 s (limit 3), e.g. GET /v1/models"
        )]
    );
    for k in 10..100 {
        assert!(request(&mut d, &attacker(k), "GET", "/v1/models", None, 20).is_empty());
    }
    // Every listing endpoint counts; other paths and methods do not.
    for (method, path, listing) in [
        ("GET", "/v1/models", true),
        ("GET", "/v1/models/gpt-4o", true),
        ("GET", "/openai/v1/models/", true),
        ("GET", "/v1beta/models", true),
        ("GET", "/v1beta/models/gemini-1.5-pro", true),
        ("GET", "/api/tags", true),
        ("GET", "/api/ps", true),
        ("POST", "/api/show", true),
        ("GET", "/openai/deployments", true),
        ("GET", "/models", true),
        ("POST", "/v1beta/models/gemini-pro:generateContent", false),
        ("GET", "/cars/models", false),
        ("GET", "/v1/models/a/b", false),
        ("DELETE", "/v1/models/ft-1", false),
        ("GET", "/api/tagsx", false),
    ] {
        assert_eq!(is_model_list(method, path), listing, "{method} {path}");
    }
}

#[test]
fn key_brute_force_counts_distinct_refused_keys() {
    let mut d = detector(only("brute"));
    let key = |k: u32| Box::leak(format!("sha256:{k:016x}").into_boxed_str()) as &str;
    // The same bad key a hundred times is a misconfigured client, not a brute force.
    for i in 0..100 {
        assert!(request(
            &mut d,
            &who(1, Some(key(0))),
            "POST",
            "/v1/chat/completions",
            Some(401),
            i
        )
        .is_empty());
    }
    let mut fired = Vec::new();
    for k in 1..=30 {
        let status = if k % 2 == 0 { 401 } else { 403 };
        fired.extend(request(
            &mut d,
            &who(1, Some(key(k))),
            "POST",
            "/v1/chat/completions",
            Some(status),
            u64::from(k) * SEC,
        ));
    }
    assert_eq!(
        fired,
        vec![Finding::new(
            &rules::LLM_KEY_BRUTE_FORCE,
            "client",
            "11 distinct keys refused (401/403) within 600 s (limit 10)"
        )]
    );
    // Accepted keys, other API paths, unknown answers and other clients do not count.
    let mut d = detector(only("brute"));
    for k in 0..50 {
        let c = who(2, Some(key(k)));
        assert!(request(&mut d, &c, "POST", "/v1/chat/completions", Some(200), 1).is_empty());
        assert!(request(&mut d, &c, "POST", "/login", Some(401), 1).is_empty());
        assert!(request(&mut d, &c, "POST", "/v1/chat/completions", None, 1).is_empty());
        let other = who(100 + k, Some(key(k)));
        assert!(request(&mut d, &other, "GET", "/v1/models", Some(401), 1).is_empty());
    }
}

#[test]
fn state_is_bounded_and_evictions_counted() {
    let mut d = detector(LlmAbuseConfig {
        max_tracked: 1024,
        ..LlmAbuseConfig::default()
    });
    for i in 0..200_000u32 {
        let k = format!("sha256:{i:016x}");
        let c = who(i, Some(&k));
        call(&mut d, &c, 200, Some(&k), 1_000_000, u64::from(i));
        request(&mut d, &c, "GET", "/v1/models", Some(401), u64::from(i));
    }
    assert_eq!(d.keys.len(), 1024);
    assert_eq!(d.clients.len(), 1024);
    assert_eq!(d.take_evictions(), 2 * (200_000 - 1024));
    assert_eq!(d.take_evictions(), 0);
    // Per-entry state is bounded too: one key from 100,000 addresses with 100,000 models,
    // one client with 100,000 keys.
    for i in 0..100_000u32 {
        let m = format!("m{i}");
        call(&mut d, &who(i, Some(KEY)), 200, Some(&m), 1, u64::from(i));
        let k = format!("sha256:{i:016x}");
        request(
            &mut d,
            &who(1, Some(&k)),
            "GET",
            "/v1/models",
            Some(403),
            u64::from(i),
        );
    }
    let id = d.hasher.hash_one(KEY);
    let k = d.keys.peek(&id).unwrap();
    assert_eq!(k.clients_len(), 6);
    assert_eq!(k.models_len(), keys::MAX_MODELS);
    let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0001));
    let c = d.clients.peek(&ip).unwrap();
    assert_eq!((c.listing.len(), c.refused.len()), (4, 11));
}

#[test]
fn config_is_validated_with_field_paths() {
    let err = |c: LlmAbuseConfig| LlmAbuseDetector::new(&c).err().unwrap().field;
    let d = LlmAbuseConfig::default;
    for (c, field) in [
        (
            LlmAbuseConfig {
                max_clients_per_key: 0,
                ..d()
            },
            "max_clients_per_key",
        ),
        (
            LlmAbuseConfig {
                spike_factor: f64::NAN,
                ..d()
            },
            "spike_factor",
        ),
        (
            LlmAbuseConfig {
                spike_factor: 0.5,
                ..d()
            },
            "spike_factor",
        ),
        (
            LlmAbuseConfig {
                baseline_secs: 30,
                ..d()
            },
            "baseline_secs",
        ),
        (
            LlmAbuseConfig {
                brute_force_window_secs: 0,
                ..d()
            },
            "brute_force_window_secs",
        ),
        (
            LlmAbuseConfig {
                enumeration_max_keys: 5000,
                ..d()
            },
            "enumeration_max_keys",
        ),
        (
            LlmAbuseConfig {
                max_tracked: 0,
                ..d()
            },
            "max_tracked",
        ),
    ] {
        assert_eq!(err(c), format!("detect.llm_key_abuse.{field}"));
    }
    let c: LlmAbuseConfig = toml::from_str("spike_factor = 5.0\nunseen_model = false").unwrap();
    assert_eq!(
        (c.spike_factor, c.unseen_model, c.baseline_secs),
        (5.0, false, 3600)
    );
    assert!(toml::from_str::<LlmAbuseConfig>("factor = 3").is_err());
}

/// Through the engine: model lists are judged when the request is complete, refused keys on
/// the answer, key use with the LLM layer's facts; `enabled = false` silences all of it.
#[test]
fn engine_judges_each_signal_at_its_stage() {
    use crate::detect::{offline::OwnedRequest, DetectConfig, Engine, Stage};
    let mut e = Engine::new(&DetectConfig::default()).unwrap();
    let list = OwnedRequest::from_raw(b"GET /v1/models HTTP/1.1\r\nHost: a\r\n\r\n");
    let chat = OwnedRequest::from_raw(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\r\n{}",
    );
    let mut rules = Vec::new();
    for k in 0..4u32 {
        let key = format!("sha256:{k:016x}");
        let c = who(1, Some(&key));
        let v = e.inspect_at(Stage::Request, &list.view(c.ip, None), &c, u64::from(k));
        rules.extend(ids(&v.findings));
        let v = e.inspect_at(
            Stage::Outcome,
            &list.view(c.ip, Some(200)),
            &c,
            u64::from(k),
        );
        assert!(v.findings.is_empty(), "{v:?}");
    }
    assert_eq!(rules, ["llm.model_enumeration"]);
    rules.clear();
    for k in 0..11u32 {
        let key = format!("sha256:{:016x}", 100 + k);
        let c = who(2, Some(&key));
        let v = e.inspect_at(Stage::Request, &chat.view(c.ip, None), &c, u64::from(k));
        assert!(v
            .findings
            .iter()
            .all(|f| f.kind != crate::detect::Kind::LlmKeyAbuse));
        let v = e.inspect_at(
            Stage::Outcome,
            &chat.view(c.ip, Some(401)),
            &c,
            u64::from(k),
        );
        rules.extend(ids(&v.findings));
    }
    assert!(rules.contains(&"llm.key_brute_force"), "{rules:?}");
    let mut v = e.inspect_at(
        Stage::Outcome,
        &chat.view(None, Some(200)),
        &who(3, None),
        0,
    );
    for ip in 1..=6 {
        let llm = LlmUse {
            model: Some("m"),
            tokens: 10,
        };
        e.inspect_llm(Some(200), &llm, &who(ip, Some(KEY)), 1, &mut v);
    }
    assert_eq!(ids(&v.findings), ["llm.key_sharing"]);
    assert_eq!(e.take_state_evictions(), 0);

    let off: DetectConfig = toml::from_str("[llm_key_abuse]\nenabled = false").unwrap();
    let mut e = Engine::new(&off).unwrap();
    for ip in 1..=6 {
        let llm = LlmUse {
            model: Some("m"),
            tokens: 10,
        };
        e.inspect_llm(Some(200), &llm, &who(ip, Some(KEY)), 1, &mut v);
    }
    assert_eq!(v.findings.len(), 1);
}

/// The suffix tests [`is_model_list`] replaced (one per listed path), kept as its reference.
fn model_list_by_suffixes(method: &str, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    if method.eq_ignore_ascii_case("POST") {
        return path.ends_with("/api/show");
    }
    if !method.eq_ignore_ascii_case("GET") {
        return false;
    }
    const LISTS: [&str; 6] = [
        "/v1/models",
        "/v1beta/models",
        "/openai/models",
        "/openai/deployments",
        "/api/tags",
        "/api/ps",
    ];
    if path == "/models" || LISTS.iter().any(|s| path.ends_with(s)) {
        return true;
    }
    path.rsplit_once('/').is_some_and(|(parent, id)| {
        !id.is_empty() && (parent.ends_with("/v1/models") || parent.ends_with("/v1beta/models"))
    })
}

#[test]
fn model_lists_are_recognised_as_by_their_suffixes() {
    let parts = [
        "",
        "/",
        "v1",
        "v1beta",
        "openai",
        "api",
        "models",
        "deployments",
        "tags",
        "ps",
        "show",
        "x",
        "gpt-4o",
        "v2",
        "openai/v1",
        "é",
    ];
    let mut paths = Vec::new();
    for a in parts {
        for b in parts {
            for c in parts {
                for lead in ["", "/"] {
                    for trail in ["", "/", "//"] {
                        paths.push(format!("{lead}{a}/{b}/{c}{trail}"));
                        paths.push(format!("{lead}{b}/{c}{trail}"));
                        paths.push(format!("{lead}{c}{trail}"));
                    }
                }
            }
        }
    }
    for method in ["GET", "get", "POST", "DELETE"] {
        for path in &paths {
            assert_eq!(
                is_model_list(method, path),
                model_list_by_suffixes(method, path),
                "{method} {path}"
            );
        }
    }
}
