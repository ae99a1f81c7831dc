//! Verification keys for JWS signatures and the algorithms each may verify.
//!
//! The key, never the token, decides which algorithms are possible: an HMAC secret verifies
//! only HS*, an RSA key RS*/PS*, an EC key the ES* of its own curve, an Ed25519 key EdDSA.
//! A JWK's `alg` pins the key further, and a JWK meant for encryption (`use: enc`, or
//! `key_ops` without `verify`) verifies nothing. This is what stops algorithm confusion
//! (an RSA public key used as an HMAC secret) and algorithm substitution (PS512 key, RS256
//! token).

use std::fmt;

use base64::{
    alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    Engine as _,
};
use hmac::{Hmac, Mac};
use rsa::{
    pkcs1::DecodeRsaPublicKey, pkcs8::DecodePublicKey, signature::Verifier, BigUint, RsaPublicKey,
};
use sha2::{Sha256, Sha384, Sha512};

/// Smallest RSA modulus accepted (RFC 7518 §3.3).
const MIN_RSA_BITS: usize = 2048;
/// Keys tried per token: a token whose `kid` matches nothing is tried against every
/// kid-less key, so this bounds the work a forged token can cause.
const MAX_TRIES: usize = 16;

/// Base64url exactly as JWS writes it: no padding, no stray bits.
const STRICT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_encode_padding(false)
    .with_decode_padding_mode(DecodePaddingMode::RequireNone);
pub(super) const B64URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, STRICT);

/// JWS algorithms this module verifies (RFC 7518 §3.1, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Hs256,
    Hs384,
    Hs512,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 13] = [
        Alg::Hs256,
        Alg::Hs384,
        Alg::Hs512,
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::Es384,
        Alg::Es512,
        Alg::EdDsa,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Es512 => "ES512",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// The algorithm named `s`, case-sensitive as RFC 7515 requires.
    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Key bytes that must not reach logs.
#[derive(Clone)]
struct SecretBytes(Vec<u8>);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone)]
enum Material {
    Hmac(SecretBytes),
    Rsa(RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// Names the key type only: public keys are not secret, but long and unhelpful in logs.
impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Material::Hmac(_) => "Hmac(<redacted>)",
            Material::Rsa(_) => "Rsa",
            Material::P256(_) => "P256",
            Material::P384(_) => "P384",
            Material::P521(_) => "P521",
            Material::Ed25519(_) => "Ed25519",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Key {
    material: Material,
    kid: Option<String>,
    /// A JWK's `alg`: the only algorithm this key may verify.
    pinned: Option<Alg>,
    /// False for JWKs meant for encryption: loaded, but verify nothing.
    for_signing: bool,
}

impl Key {
    pub fn hmac(secret: &[u8]) -> Self {
        Self::new(Material::Hmac(SecretBytes(secret.to_vec())))
    }

    fn new(material: Material) -> Self {
        Self {
            material,
            kid: None,
            pinned: None,
            for_signing: true,
        }
    }

    /// A PEM public key: SPKI (`PUBLIC KEY`) for RSA, EC P-256/P-384/P-521 and Ed25519, or
    /// PKCS#1 (`RSA PUBLIC KEY`).
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        if pem.contains("PRIVATE KEY-----") {
            return Err("holds a private key; give the public key".into());
        }
        let material = if let Ok(k) = RsaPublicKey::from_public_key_pem(pem) {
            Material::Rsa(k)
        } else if let Ok(k) = RsaPublicKey::from_pkcs1_pem(pem) {
            Material::Rsa(k)
        } else if let Ok(k) = p256::PublicKey::from_public_key_pem(pem) {
            Material::P256(k.into())
        } else if let Ok(k) = p384::PublicKey::from_public_key_pem(pem) {
            Material::P384(k.into())
        } else if let Ok(k) = p521::PublicKey::from_public_key_pem(pem) {
            Material::P521(
                p521::ecdsa::VerifyingKey::from_affine(*k.as_affine())
                    .map_err(|_| "invalid P-521 point")?,
            )
        } else if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem) {
            Material::Ed25519(k)
        } else {
            return Err("not a PEM RSA, EC (P-256, P-384, P-521) or Ed25519 public key".into());
        };
        check_rsa_size(&material)?;
        Ok(Self::new(material))
    }

    /// One JWK (RFC 7517): `oct`, `RSA`, `EC` (P-256, P-384, P-521) or `OKP` (Ed25519).
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<Self, String> {
        let field = |name: &str| jwk.get(name).and_then(|v| v.as_str());
        let bytes = |name: &str| -> Result<Vec<u8>, String> {
            let text = field(name).ok_or_else(|| format!("missing `{name}`"))?;
            B64URL
                .decode(text)
                .map_err(|_| format!("`{name}` is not base64url"))
        };
        let kty = field("kty").ok_or("missing `kty`")?;
        let material = match kty {
            "oct" => {
                let k = bytes("k")?;
                if k.is_empty() {
                    return Err("empty `k`".into());
                }
                Material::Hmac(SecretBytes(k))
            }
            "RSA" => {
                let n = BigUint::from_bytes_be(&bytes("n")?);
                let e = BigUint::from_bytes_be(&bytes("e")?);
                Material::Rsa(RsaPublicKey::new(n, e).map_err(|e| format!("bad RSA key: {e}"))?)
            }
            "EC" => {
                let mut point = vec![0x04];
                point.extend(bytes("x")?);
                point.extend(bytes("y")?);
                let bad = |_| "invalid EC point".to_string();
                match field("crv") {
                    Some("P-256") => Material::P256(
                        p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(bad)?,
                    ),
                    Some("P-384") => Material::P384(
                        p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(bad)?,
                    ),
                    Some("P-521") => Material::P521(
                        p521::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(bad)?,
                    ),
                    _ => return Err("unsupported EC `crv`".into()),
                }
            }
            "OKP" => {
                if field("crv") != Some("Ed25519") {
                    return Err("unsupported OKP `crv`".into());
                }
                let x: [u8; 32] = bytes("x")?
                    .try_into()
                    .map_err(|_| "Ed25519 `x` is not 32 bytes")?;
                Material::Ed25519(
                    ed25519_dalek::VerifyingKey::from_bytes(&x)
                        .map_err(|_| "invalid Ed25519 point")?,
                )
            }
            _ => return Err("unsupported `kty`".into()),
        };
        check_rsa_size(&material)?;
        // An `alg` we do not know (RFC 7520's P-521 key says "ES521") pins nothing: the key
        // type alone already keeps the key to its own family.
        let pinned = field("alg").and_then(Alg::parse);
        let use_sig = jwk.get("use").is_none_or(|u| u.as_str() == Some("sig"));
        let ops_verify = jwk.get("key_ops").is_none_or(|ops| {
            ops.as_array()
                .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")))
        });
        Ok(Self {
            material,
            kid: field("kid").map(str::to_owned),
            pinned,
            for_signing: use_sig && ops_verify,
        })
    }

    /// Whether this key may verify `alg` at all.
    fn accepts(&self, alg: Alg) -> bool {
        use Alg::*;
        let family = match self.material {
            Material::Hmac(_) => matches!(alg, Hs256 | Hs384 | Hs512),
            Material::Rsa(_) => matches!(alg, Rs256 | Rs384 | Rs512 | Ps256 | Ps384 | Ps512),
            Material::P256(_) => alg == Es256,
            Material::P384(_) => alg == Es384,
            Material::P521(_) => alg == Es512,
            Material::Ed25519(_) => alg == EdDsa,
        };
        self.for_signing && family && self.pinned.is_none_or(|p| p == alg)
    }

    /// Whether `sig` is this key's `alg` signature over `input`. Call only when
    /// [`Key::accepts`] `alg`.
    fn verify(&self, alg: Alg, input: &[u8], sig: &[u8]) -> bool {
        use rsa::{pkcs1v15, pss};
        use Alg::*;
        match (&self.material, alg) {
            (Material::Hmac(k), Hs256) => hmac_ok::<Hmac<Sha256>>(&k.0, input, sig),
            (Material::Hmac(k), Hs384) => hmac_ok::<Hmac<Sha384>>(&k.0, input, sig),
            (Material::Hmac(k), Hs512) => hmac_ok::<Hmac<Sha512>>(&k.0, input, sig),
            (Material::Rsa(k), Rs256) => rsa_ok(
                &pkcs1v15::VerifyingKey::<Sha256>::new(k.clone()),
                input,
                sig,
            ),
            (Material::Rsa(k), Rs384) => rsa_ok(
                &pkcs1v15::VerifyingKey::<Sha384>::new(k.clone()),
                input,
                sig,
            ),
            (Material::Rsa(k), Rs512) => rsa_ok(
                &pkcs1v15::VerifyingKey::<Sha512>::new(k.clone()),
                input,
                sig,
            ),
            // RFC 7518 §3.5: the salt is as long as the hash, which `new` fixes.
            (Material::Rsa(k), Ps256) => {
                pss_ok(&pss::VerifyingKey::<Sha256>::new(k.clone()), input, sig)
            }
            (Material::Rsa(k), Ps384) => {
                pss_ok(&pss::VerifyingKey::<Sha384>::new(k.clone()), input, sig)
            }
            (Material::Rsa(k), Ps512) => {
                pss_ok(&pss::VerifyingKey::<Sha512>::new(k.clone()), input, sig)
            }
            // JWS ECDSA signatures are fixed-size R || S; `from_slice` rejects any other
            // length and R or S outside [1, n).
            (Material::P256(k), Es256) => {
                p256::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(input, &s).is_ok())
            }
            (Material::P384(k), Es384) => {
                p384::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(input, &s).is_ok())
            }
            (Material::P521(k), Es512) => {
                p521::ecdsa::Signature::from_slice(sig).is_ok_and(|s| k.verify(input, &s).is_ok())
            }
            (Material::Ed25519(k), EdDsa) => ed25519_dalek::Signature::from_slice(sig)
                .is_ok_and(|s| k.verify_strict(input, &s).is_ok()),
            _ => false,
        }
    }
}

fn check_rsa_size(material: &Material) -> Result<(), String> {
    use rsa::traits::PublicKeyParts as _;
    match material {
        Material::Rsa(k) if k.n().bits() < MIN_RSA_BITS => Err(format!(
            "RSA key of {} bits; at least {MIN_RSA_BITS} required",
            k.n().bits()
        )),
        _ => Ok(()),
    }
}

fn hmac_ok<M: Mac + hmac::digest::KeyInit>(key: &[u8], input: &[u8], sig: &[u8]) -> bool {
    let Ok(mut mac) = <M as Mac>::new_from_slice(key) else {
        return false;
    };
    mac.update(input);
    // Constant-time, and a truncated tag does not match.
    mac.verify_slice(sig).is_ok()
}

fn rsa_ok<V: Verifier<rsa::pkcs1v15::Signature>>(key: &V, input: &[u8], sig: &[u8]) -> bool {
    rsa::pkcs1v15::Signature::try_from(sig).is_ok_and(|s| key.verify(input, &s).is_ok())
}

fn pss_ok<V: Verifier<rsa::pss::Signature>>(key: &V, input: &[u8], sig: &[u8]) -> bool {
    rsa::pss::Signature::try_from(sig).is_ok_and(|s| key.verify(input, &s).is_ok())
}

/// The keys a signature is checked against.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    Valid,
    /// No configured key may verify this algorithm (and `kid`).
    NoKey,
    /// Keys were tried and none verified the signature.
    Invalid,
}

impl KeySet {
    pub fn push(&mut self, key: Key) {
        self.keys.push(key);
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn extend(&mut self, other: KeySet) {
        self.keys.extend(other.keys);
    }

    /// Every key of a JWKS document (`{"keys": [...]}`); keys of types this module cannot
    /// use are reported as errors with their index.
    pub fn from_jwks(text: &str) -> Result<Self, String> {
        let doc: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let keys = doc
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or("no `keys` array")?;
        let mut set = Self::default();
        for (i, jwk) in keys.iter().enumerate() {
            set.push(Key::from_jwk(jwk).map_err(|e| format!("keys[{i}]: {e}"))?);
        }
        Ok(set)
    }

    /// Checks the signature with the keys that may verify `alg`: those whose `kid` equals
    /// the token's, and those without a `kid`.
    pub fn verify(&self, alg: Alg, kid: Option<&str>, input: &[u8], sig: &[u8]) -> Verification {
        let mut tried = 0;
        for key in &self.keys {
            let kid_ok = match (&key.kid, kid) {
                (Some(want), Some(got)) => want == got,
                (Some(_), None) | (None, _) => true,
            };
            if !kid_ok || !key.accepts(alg) {
                continue;
            }
            if tried == MAX_TRIES {
                break;
            }
            tried += 1;
            if key.verify(alg, input, sig) {
                return Verification::Valid;
            }
        }
        if tried == 0 {
            Verification::NoKey
        } else {
            Verification::Invalid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_PUB: &str = include_str!("../testdata/rsa2048.pub.pem");
    const EC_PUB: &str = include_str!("../testdata/p256.pub.pem");

    #[test]
    fn alg_names_round_trip_and_are_case_sensitive() {
        for a in Alg::ALL {
            assert_eq!(Alg::parse(a.as_str()), Some(a));
        }
        assert_eq!(Alg::parse("hs256"), None);
        assert_eq!(Alg::parse("none"), None);
    }

    #[test]
    fn pem_keys_load_and_private_keys_are_refused() {
        let rsa = Key::from_pem(RSA_PUB).unwrap();
        assert!(rsa.accepts(Alg::Rs256) && rsa.accepts(Alg::Ps512));
        assert!(!rsa.accepts(Alg::Hs256) && !rsa.accepts(Alg::Es256));
        let ec = Key::from_pem(EC_PUB).unwrap();
        assert!(ec.accepts(Alg::Es256));
        assert!(!ec.accepts(Alg::Es384) && !ec.accepts(Alg::Hs256));
        let private = include_str!("../testdata/p256.key.pem");
        assert_eq!(
            Key::from_pem(private).unwrap_err(),
            "holds a private key; give the public key"
        );
        assert!(Key::from_pem("garbage").is_err());
    }

    #[test]
    fn small_rsa_keys_are_refused() {
        let jwk = serde_json::json!({"kty": "RSA", "n": B64URL.encode([0xc1u8; 128]), "e": "AQAB"});
        assert_eq!(
            Key::from_jwk(&jwk).unwrap_err(),
            "RSA key of 1024 bits; at least 2048 required"
        );
    }

    #[test]
    fn jwk_use_key_ops_and_alg_restrict_the_key() {
        let k = B64URL.encode([7u8; 32]);
        let key = |extra: serde_json::Value| {
            let mut jwk = serde_json::json!({"kty": "oct", "k": k});
            for (n, v) in extra.as_object().unwrap() {
                jwk[n] = v.clone();
            }
            Key::from_jwk(&jwk).unwrap()
        };
        assert!(key(serde_json::json!({})).accepts(Alg::Hs512));
        assert!(!key(serde_json::json!({"use": "enc"})).accepts(Alg::Hs256));
        assert!(!key(serde_json::json!({"key_ops": ["encrypt"]})).accepts(Alg::Hs256));
        assert!(key(serde_json::json!({"key_ops": ["sign", "verify"]})).accepts(Alg::Hs256));
        let pinned = key(serde_json::json!({"alg": "HS384"}));
        assert!(pinned.accepts(Alg::Hs384) && !pinned.accepts(Alg::Hs256));
        let unknown = key(serde_json::json!({"alg": "HS1"}));
        assert!(unknown.accepts(Alg::Hs256) && !unknown.accepts(Alg::Rs256));
        for bad in [
            serde_json::json!({"kty": "oct"}),
            serde_json::json!({"kty": "oct", "k": "!!"}),
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}),
            serde_json::json!({"kty": "OKP", "crv": "X25519", "x": k}),
            serde_json::json!({"kty": "weird"}),
            serde_json::json!("not an object"),
        ] {
            assert!(Key::from_jwk(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kid_selects_keys_and_confusion_finds_no_key() {
        let mut set = KeySet::default();
        let mut a = Key::hmac(b"secret-a-0123456789abcdef0123456");
        a.kid = Some("a".into());
        set.push(a);
        set.push(Key::from_pem(RSA_PUB).unwrap());
        let input = b"e30.e30";
        let mac = |secret: &[u8]| {
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap();
            m.update(input);
            m.finalize().into_bytes().to_vec()
        };
        let sig = mac(b"secret-a-0123456789abcdef0123456");
        assert_eq!(
            set.verify(Alg::Hs256, Some("a"), input, &sig),
            Verification::Valid
        );
        assert_eq!(
            set.verify(Alg::Hs256, None, input, &sig),
            Verification::Valid
        );
        // Another kid leaves only the RSA key, which cannot verify HS256.
        assert_eq!(
            set.verify(Alg::Hs256, Some("b"), input, &sig),
            Verification::NoKey
        );
        assert_eq!(
            set.verify(Alg::Hs256, Some("a"), input, &sig[..31]),
            Verification::Invalid
        );
        // The RSA public key's PEM text as an HMAC secret: the classic confusion attack.
        let forged = mac(RSA_PUB.as_bytes());
        let only_rsa = KeySet {
            keys: vec![Key::from_pem(RSA_PUB).unwrap()],
        };
        assert_eq!(
            only_rsa.verify(Alg::Hs256, None, input, &forged),
            Verification::NoKey
        );
        assert_eq!(
            only_rsa.verify(Alg::Rs256, None, input, &forged),
            Verification::Invalid
        );
    }

    #[test]
    fn key_debug_never_shows_secrets() {
        let k = Key::hmac(b"topsecret-hmac-key");
        assert!(!format!("{k:?}").contains("topsecret"));
        let bytes: Vec<String> = b"topsecret".iter().map(|b| b.to_string()).collect();
        assert!(!format!("{k:?}").contains(&bytes.join(", ")));
    }
}
