use std::path::PathBuf;

use hmac::{Hmac, Mac};
use rsa::{
    pkcs8::DecodePrivateKey,
    signature::{SignatureEncoding, Signer},
};
use sha2::Sha256;

use super::*;
use crate::detect::{Kind, Severity};

const NOW: f64 = 1_750_000_000.0;
const SECRET: &str = "test-secret-0123456789abcdefghijklmnop";

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/detect/testdata")
        .join(name)
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    B64URL.encode(bytes)
}

fn sha(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// `header.payload` signed with `sign`.
fn token(header: &str, claims: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(sig))
}

fn hs256(secret: &[u8]) -> impl Fn(&[u8]) -> Vec<u8> + '_ {
    move |input| {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap();
        m.update(input);
        m.finalize().into_bytes().to_vec()
    }
}

fn rs256(input: &[u8]) -> Vec<u8> {
    let pem = std::fs::read_to_string(testdata("rsa2048.key.pem")).unwrap();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    rsa::pkcs1v15::SigningKey::<Sha256>::new(key)
        .sign(input)
        .to_vec()
}

fn es256(input: &[u8]) -> Vec<u8> {
    let pem = std::fs::read_to_string(testdata("p256.key.pem")).unwrap();
    let key = p256::ecdsa::SigningKey::from_pkcs8_pem(&pem).unwrap();
    let sig: p256::ecdsa::Signature = key.sign(input);
    sig.to_bytes().to_vec()
}

fn eddsa(input: &[u8]) -> Vec<u8> {
    let pem = std::fs::read_to_string(testdata("ed25519.key.pem")).unwrap();
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap();
    key.sign(input).to_bytes().to_vec()
}

fn run(d: &mut JwtDetector, headers: &[(&str, &str)]) -> Vec<Finding> {
    let headers: crate::http::Headers = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let req = Request {
        method: "GET",
        path: "/api/items",
        query: None,
        version: crate::http::HttpVersion::Http11,
        anomalies: &[],
        request_line_invalid: false,
        headers: &headers,
        body: b"",
        body_len: 0,
        head_len: 0,
        authority: None,
        peer: None,
        status: None,
        fields: None,
    };
    let mut out = Vec::new();
    d.inspect_at(&req, NOW, &mut out);
    out
}

fn bearer_findings(d: &mut JwtDetector, token: &str) -> Vec<(&'static str, Severity, String)> {
    run(d, &[("Authorization", &format!("Bearer {token}"))])
        .into_iter()
        .map(|f| {
            assert_eq!(f.kind, Kind::Jwt);
            assert_eq!(f.location, "header:authorization");
            assert!(!f.evidence.contains(token), "{}", f.evidence);
            (f.rule_id, f.severity, f.evidence)
        })
        .collect()
}

fn detector(config: JwtConfig) -> JwtDetector {
    JwtDetector::new(&config).unwrap()
}

fn with_keys() -> JwtDetector {
    detector(JwtConfig {
        hs_secrets: vec![Secret(SECRET.into())],
        public_key_files: vec![
            testdata("rsa2048.pub.pem"),
            testdata("p256.pub.pem"),
            testdata("ed25519.pub.pem"),
        ],
        ..JwtConfig::default()
    })
}

const HS: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
const FRESH: &str = r#"{"sub":"u1","iat":1749999000,"exp":1750003600}"#;

#[test]
fn valid_tokens_without_keys_are_quiet() {
    let mut d = detector(JwtConfig::default());
    let t = token(HS, FRESH, hs256(b"whatever"));
    assert_eq!(bearer_findings(&mut d, &t), vec![]);
    // Opaque and non-JWT bearer values are not looked at.
    for v in [
        "Bearer abc.def.ghi",
        "Bearer v4.public.xyz",
        "Basic dXNlcjpwYXNz",
    ] {
        assert_eq!(run(&mut d, &[("Authorization", v)]), vec![]);
    }
}

#[test]
fn signatures_verify_with_each_key_type() {
    let mut d = with_keys();
    for (header, sign) in [
        (
            r#"{"alg":"HS256"}"#,
            &hs256(SECRET.as_bytes()) as &dyn Fn(&[u8]) -> Vec<u8>,
        ),
        (r#"{"alg":"RS256","kid":"k1"}"#, &rs256),
        (r#"{"alg":"ES256"}"#, &es256),
        (r#"{"alg":"EdDSA"}"#, &eddsa),
    ] {
        let t = token(header, FRESH, sign);
        assert_eq!(bearer_findings(&mut d, &t), vec![], "{header}");
    }
}

#[test]
fn bad_signatures_and_algorithm_confusion() {
    let mut d = with_keys();
    let t = token(HS, FRESH, hs256(b"wrong-secret"));
    assert_eq!(
        bearer_findings(&mut d, &t),
        vec![(
            "jwt.bad_signature",
            Severity::High,
            format!("signature does not verify; alg=HS256 {}", sha(&t))
        )]
    );
    // HS256 "signed" with the RSA public key as the HMAC secret: only an RSA key is there,
    // and RSA keys never verify HS*.
    let pem = std::fs::read(testdata("rsa2048.pub.pem")).unwrap();
    let rsa_only = || {
        detector(JwtConfig {
            public_key_files: vec![testdata("rsa2048.pub.pem")],
            ..JwtConfig::default()
        })
    };
    let forged = token(HS, FRESH, hs256(&pem));
    assert_eq!(
        bearer_findings(&mut rsa_only(), &forged),
        vec![(
            "jwt.bad_signature",
            Severity::High,
            format!(
                "no configured key for this alg/kid; alg=HS256 {}",
                sha(&forged)
            )
        )]
    );
    // An RS256 signature relabelled PS256, and a tampered payload.
    let rs = token(r#"{"alg":"RS256"}"#, FRESH, rs256);
    let (_, rest) = rs.split_once('.').unwrap();
    let relabelled = format!("{}.{rest}", b64(r#"{"alg":"PS256"}"#));
    let mut parts: Vec<&str> = rs.split('.').collect();
    let other = b64(r#"{"sub":"admin","exp":1750003600}"#);
    parts[1] = &other;
    let tampered = parts.join(".");
    for t in [relabelled, tampered] {
        let f = bearer_findings(&mut rsa_only(), &t);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, "jwt.bad_signature");
        assert!(
            f[0].2.starts_with("signature does not verify;"),
            "{}",
            f[0].2
        );
    }
}

#[test]
fn alg_none_in_any_case_is_critical() {
    let mut d = detector(JwtConfig::default());
    for (alg, sig, why) in [
        ("none", "", "unsigned token (alg none)"),
        ("NONE", "", "unsigned token (alg none)"),
        ("nOnE", "c2ln", "alg none with a signature"),
    ] {
        let t = format!(
            "{}.{}.{sig}",
            b64(format!(r#"{{"alg":"{alg}"}}"#)),
            b64(FRESH)
        );
        let f = bearer_findings(&mut d, &t);
        assert_eq!(
            f,
            vec![(
                "jwt.alg_none",
                Severity::Critical,
                format!("{why}; alg={alg} {}", sha(&t))
            )]
        );
    }
    // With keys configured it is still alg_none, not a signature problem.
    let t = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(FRESH));
    let f = bearer_findings(&mut with_keys(), &t);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].0, "jwt.alg_none");
}

#[test]
fn expiry_and_not_before_with_leeway() {
    let mut d = detector(JwtConfig::default());
    let claims = |c: &str| token(HS, c, hs256(b"k"));
    // 59 s past exp and 59 s before nbf are inside the 60 s leeway.
    for quiet in [
        format!(r#"{{"exp":{}}}"#, NOW - 59.0),
        format!(r#"{{"nbf":{}}}"#, NOW + 59.0),
        format!(r#"{{"exp":{}.5,"nbf":{}}}"#, NOW as i64 + 1, NOW - 1.0),
    ] {
        assert_eq!(bearer_findings(&mut d, &claims(&quiet)), vec![], "{quiet}");
    }
    let t = claims(r#"{"exp":1700000000}"#);
    assert_eq!(
        bearer_findings(&mut d, &t),
        vec![(
            "jwt.expired",
            Severity::Medium,
            format!(
                "expired 50000000 s ago (exp 1700000000); alg=HS256 {}",
                sha(&t)
            )
        )]
    );
    let t = claims(&format!(r#"{{"nbf":{}}}"#, NOW + 3600.0));
    assert_eq!(
        bearer_findings(&mut d, &t),
        vec![(
            "jwt.not_yet_valid",
            Severity::Medium,
            format!(
                "valid only in 3600 s (nbf 1750003600); alg=HS256 {}",
                sha(&t)
            )
        )]
    );
    let t = claims(r#"{"exp":"tomorrow"}"#);
    let f = bearer_findings(&mut d, &t);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].0, f[0].2.as_str()),
        (
            "jwt.malformed",
            &*format!("exp is not a number; alg=HS256 {}", sha(&t))
        )
    );
    // Leeway is configurable.
    let mut strict = detector(JwtConfig {
        leeway_secs: 0,
        ..JwtConfig::default()
    });
    let t = claims(&format!(r#"{{"exp":{}}}"#, NOW - 1.0));
    assert_eq!(bearer_findings(&mut strict, &t)[0].0, "jwt.expired");
}

#[test]
fn expiry_is_rechecked_on_cached_tokens() {
    let mut d = detector(JwtConfig::default());
    let t = token(HS, &format!(r#"{{"exp":{}}}"#, NOW + 100.0), hs256(b"k"));
    let req_headers =
        crate::http::Headers::from([("Authorization".to_string(), format!("Bearer {t}"))]);
    let req = Request {
        method: "GET",
        path: "/",
        query: None,
        version: crate::http::HttpVersion::Http11,
        anomalies: &[],
        request_line_invalid: false,
        headers: &req_headers,
        body: b"",
        body_len: 0,
        head_len: 0,
        authority: None,
        peer: None,
        status: None,
        fields: None,
    };
    let mut out = Vec::new();
    d.inspect_at(&req, NOW, &mut out);
    assert!(out.is_empty());
    d.inspect_at(&req, NOW + 161.0, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].rule_id, "jwt.expired");
    assert_eq!(d.cache.len(), 1);
}

#[test]
fn malformed_tokens() {
    let mut d = detector(JwtConfig::default());
    let long = format!("{}.{}.sig", b64(HS), "A".repeat(MAX_TOKEN_BYTES));
    for (t, why) in [
        (
            format!("eyJ!!.{}.sig", b64(FRESH)),
            "header is not base64url".to_string(),
        ),
        (
            format!("{}.{}.sig", b64(r#"{"alg":"HS256""#), b64(FRESH)),
            "header is not a JSON object".into(),
        ),
        (
            format!("{}.{}.sig", b64(r#"{"typ":"JWT"}"#), b64(FRESH)),
            "header has no alg".into(),
        ),
        (
            format!("{}.{}.sig", b64(r#"{"alg":7}"#), b64(FRESH)),
            "header has no alg".into(),
        ),
        (
            format!("{}.%%%.sig", b64(HS)),
            "payload is not base64url".into(),
        ),
        (
            format!("{}.{}.sig", b64(HS), b64("foo")),
            "payload is not a JSON object".into(),
        ),
        (
            format!("{}.{}.s!g", b64(HS), b64(FRESH)),
            "signature is not base64url".into(),
        ),
        // Padding and stray bits are not base64url as JWS writes it.
        (
            format!("{}.{}=.sig", b64(HS), b64("{}x")),
            "payload is not base64url".into(),
        ),
        (
            format!("{}.AB.sig", b64(HS)),
            "payload is not base64url".into(),
        ),
        (
            long.clone(),
            format!("token of {} bytes exceeds 16384", long.len()),
        ),
    ] {
        let f = bearer_findings(&mut d, &t);
        assert_eq!(f.len(), 1, "{t}: {f:?}");
        assert_eq!((f[0].0, f[0].1), ("jwt.malformed", Severity::Medium), "{t}");
        assert!(f[0].2.starts_with(&format!("{why};")), "{t}: {}", f[0].2);
        assert!(f[0].2.ends_with(&sha(&t)), "{}", f[0].2);
    }
}

#[test]
fn required_claims_issuer_and_audience() {
    let mut d = detector(JwtConfig {
        required_claims: vec!["exp".into(), "sub".into(), "jti".into()],
        issuers: vec!["https://idp.example".into()],
        audiences: vec!["api".into()],
        ..JwtConfig::default()
    });
    let ok = token(
        HS,
        r#"{"sub":"u","exp":1750003600,"jti":"1","iss":"https://idp.example","aud":["web","api"]}"#,
        hs256(b"k"),
    );
    assert_eq!(bearer_findings(&mut d, &ok), vec![]);
    let bad = token(
        HS,
        r#"{"sub":"u","iss":"https://evil.example","aud":"web"}"#,
        hs256(b"k"),
    );
    let rules: Vec<(&str, String)> = bearer_findings(&mut d, &bad)
        .into_iter()
        .map(|(r, _, e)| (r, e.split(';').next().unwrap().to_string()))
        .collect();
    assert_eq!(
        rules,
        vec![
            ("jwt.missing_claim", "missing exp,jti".to_string()),
            (
                "jwt.bad_issuer",
                "iss https://evil.exa not accepted".to_string()
            ),
            ("jwt.bad_audience", "aud not accepted".to_string()),
        ]
    );
    let bare = token(
        HS,
        r#"{"exp":1750003600,"sub":"u","jti":"2","aud":7}"#,
        hs256(b"k"),
    );
    let rules: Vec<String> = bearer_findings(&mut d, &bare)
        .into_iter()
        .map(|(r, _, e)| format!("{r} {}", e.split(';').next().unwrap()))
        .collect();
    assert_eq!(
        rules,
        vec!["jwt.bad_issuer no iss", "jwt.bad_audience aud not accepted"]
    );
}

#[test]
fn disallowed_algorithms() {
    let mut d = detector(JwtConfig {
        allowed_algs: vec!["RS256".into()],
        public_key_files: vec![testdata("rsa2048.pub.pem")],
        ..JwtConfig::default()
    });
    assert_eq!(
        bearer_findings(&mut d, &token(r#"{"alg":"RS256"}"#, FRESH, rs256)),
        vec![]
    );
    for alg in ["HS256", "rs256", "XX1"] {
        let t = token(&format!(r#"{{"alg":"{alg}"}}"#), FRESH, hs256(b"k"));
        assert_eq!(
            bearer_findings(&mut d, &t),
            vec![(
                "jwt.disallowed_alg",
                Severity::High,
                format!("algorithm not in allowed_algs; alg={alg} {}", sha(&t))
            )]
        );
    }
}

#[test]
fn configured_headers_and_cookies() {
    let mut d = detector(JwtConfig {
        headers: vec!["X-Id-Token".into()],
        cookies: vec!["session".into()],
        ..JwtConfig::default()
    });
    let expired = token(HS, r#"{"exp":1}"#, hs256(b"k"));
    let found = run(
        &mut d,
        &[
            ("x-id-token", &expired),
            (
                "Cookie",
                &format!("theme=dark; session=\"{expired}\"; other={expired}"),
            ),
            ("X-Other", &expired),
        ],
    );
    let locations: Vec<(&str, &str)> = found
        .iter()
        .map(|f| (f.rule_id, f.location.as_str()))
        .collect();
    assert_eq!(
        locations,
        vec![
            ("jwt.expired", "header:x-id-token"),
            ("jwt.expired", "cookie:session")
        ]
    );
}

#[test]
fn tokens_per_request_are_bounded() {
    let mut d = detector(JwtConfig::default());
    let t = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64("{}"));
    let value = format!("Bearer {t}");
    let headers = vec![("Authorization", value.as_str()); 100];
    assert_eq!(run(&mut d, &headers).len(), MAX_TOKENS_PER_REQUEST);
}

#[test]
fn one_verification_per_distinct_token_and_bounded_cache() {
    let mut d = detector(JwtConfig {
        cache_size: 8,
        ..JwtConfig::default()
    });
    let t = token(HS, FRESH, hs256(b"k"));
    for _ in 0..100 {
        bearer_findings(&mut d, &t);
    }
    assert_eq!(d.cache.len(), 1);
    for i in 0..100 {
        bearer_findings(&mut d, &token(HS, &format!(r#"{{"n":{i}}}"#), hs256(b"k")));
    }
    assert_eq!(d.cache.len(), 8);
}

#[test]
fn config_errors_name_the_field() {
    let err = |c: JwtConfig| JwtDetector::new(&c).err().unwrap();
    let e = err(JwtConfig {
        public_key_files: vec![testdata("rsa2048.pub.pem"), testdata("missing.pem")],
        ..JwtConfig::default()
    });
    assert_eq!(e.field, "detect.jwt.public_key_files[1]");
    assert!(e.reason.contains("missing.pem"), "{}", e.reason);
    let e = err(JwtConfig {
        public_key_files: vec![testdata("p256.key.pem")],
        ..JwtConfig::default()
    });
    assert_eq!(e.field, "detect.jwt.public_key_files[0]");
    assert!(e
        .reason
        .ends_with("holds a private key; give the public key"));
    let e = err(JwtConfig {
        jwks_file: Some(testdata("README.md")),
        ..JwtConfig::default()
    });
    assert_eq!(e.field, "detect.jwt.jwks_file");
    let e = err(JwtConfig {
        hs_secret_files: vec![testdata("nope")],
        ..JwtConfig::default()
    });
    assert_eq!(e.field, "detect.jwt.hs_secret_files[0]");
    let e = err(JwtConfig {
        allowed_algs: vec!["HS256".into(), "none".into()],
        ..JwtConfig::default()
    });
    assert_eq!(e.field, "detect.jwt.allowed_algs[1]");
    let e = err(JwtConfig {
        cache_size: 0,
        ..JwtConfig::default()
    });
    assert_eq!(e.field, "detect.jwt.cache_size");
    let e = err(JwtConfig {
        hs_secrets: vec![Secret(String::new())],
        ..JwtConfig::default()
    });
    assert_eq!(e.field, "detect.jwt.hs_secrets[0]");
}

#[test]
fn secret_files_jwks_and_toml() {
    let dir = std::env::temp_dir().join(format!("api-guard-jwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("hs.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let jwks_file = dir.join("jwks.json");
    let jwks = serde_json::json!({"keys": [
        {"kty": "oct", "kid": "a", "alg": "HS256", "k": b64("other-secret-0123456789abcdefghij")},
    ]});
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    let text = format!(
        "hs_secret_files = [{:?}]\njwks_file = {:?}\nhs_secrets = [\"inline-secret\"]\n",
        secret_file, jwks_file
    );
    let config: JwtConfig = toml::from_str(&text).unwrap();
    assert!(!format!("{config:?}").contains("inline-secret"));
    let mut d = detector(config);
    let from_file = token(HS, FRESH, hs256(SECRET.as_bytes()));
    assert_eq!(bearer_findings(&mut d, &from_file), vec![]);
    let jwks_token = token(
        r#"{"alg":"HS256","kid":"a"}"#,
        FRESH,
        hs256(b"other-secret-0123456789abcdefghij"),
    );
    assert_eq!(bearer_findings(&mut d, &jwks_token), vec![]);
    assert!(toml::from_str::<JwtConfig>("leeway = 5").is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hostile_inputs_never_panic() {
    let mut d = with_keys();
    let t = token(r#"{"alg":"RS256","kid":"é"}"#, FRESH, rs256);
    // Every prefix and suffix, split at every byte that is a char boundary.
    for (i, _) in t.char_indices() {
        bearer_findings(&mut d, &t[..i]);
        bearer_findings(&mut d, &t[i..]);
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    bearer_findings(&mut d, &format!("{}.{}.", b64(HS), b64(&deep)));
    bearer_findings(&mut d, &format!("{}.{}.", b64(&deep), b64(FRESH)));
}
