//! Wycheproof JWS vectors (`corpus/jwt/json_web_signature_test.json` in the shared folder):
//! every `valid` vector must verify with its group's key, every `invalid` one must not.

use std::path::PathBuf;

use serde_json::Value;

use super::{keys::*, parse_jws};

/// Vectors whose expected result this copy of the file gets wrong, and what we do instead.
/// - 367 and 370 ("invalidBase64Padding…") are byte-identical to the valid 357 (the padding
///   that made them invalid is absent), so they verify.
/// - 372 and 373 ("InvalidCharacterInserted…") carry a `?` inside a segment yet are marked
///   valid; a strict base64url decoder rejects them, as RFC 7515 requires.
/// - 346 and 350 (RFC 7520 Figure 20) are PS384 tokens for a JWK whose `alg` is PS256, yet
///   marked valid, while 332–340 (a PS512 JWK, tokens in RS256…PS384) must fail for exactly
///   that mismatch. We honour the JWK's `alg` (RFC 7517 §4.4), so 346 and 350 do not verify.
const CONTRADICTORY: [(u64, bool); 6] = [
    (346, false),
    (350, false),
    (367, true),
    (370, true),
    (372, false),
    (373, false),
];

fn corpus() -> Option<PathBuf> {
    let shared = std::env::var_os("API_GUARD_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let path = shared.join("corpus/jwt/json_web_signature_test.json");
    path.exists().then_some(path)
}

/// Whether `jws` verifies against `keys`, exactly as the detector decides it.
fn verifies(keys: &KeySet, jws: &str) -> bool {
    let Ok(parsed) = parse_jws(jws) else {
        return false;
    };
    let Some(alg) = parsed
        .header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Alg::parse)
    else {
        return false;
    };
    let kid = parsed.header.get("kid").and_then(Value::as_str);
    keys.verify(alg, kid, parsed.signing_input.as_bytes(), &parsed.signature) == Verification::Valid
}

#[test]
fn wycheproof_json_web_signature() {
    let Some(path) = corpus() else {
        println!(
            "SKIPPED: Wycheproof vectors not found (set API_GUARD_SHARED to the shared folder)"
        );
        return;
    };
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    let mut failures = Vec::new();
    for group in doc["testGroups"].as_array().unwrap() {
        let jwk = group
            .get("public")
            .or_else(|| group.get("private"))
            .unwrap();
        let mut keys = KeySet::default();
        keys.push(Key::from_jwk(jwk).unwrap_or_else(|e| panic!("{}: {e}", group["comment"])));
        for t in group["tests"].as_array().unwrap() {
            let id = t["tcId"].as_u64().unwrap();
            let want = match t["result"].as_str().unwrap() {
                "valid" => true,
                "invalid" => false,
                other => panic!("tcId {id}: unexpected result {other}"),
            };
            let want = CONTRADICTORY
                .iter()
                .find(|(i, _)| *i == id)
                .map_or(want, |(_, ours)| *ours);
            let got = verifies(&keys, t["jws"].as_str().unwrap());
            if got != want {
                failures.push(format!("tcId {id} {}: got {got}", t["comment"]));
            }
            if want {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
    }
    println!(
        "Wycheproof JWS: {valid} verify, {invalid} rejected, {} wrong",
        failures.len()
    );
    assert_eq!(
        valid + invalid,
        doc["numberOfTests"].as_u64().unwrap() as usize
    );
    assert!(failures.is_empty(), "{failures:#?}");
}
