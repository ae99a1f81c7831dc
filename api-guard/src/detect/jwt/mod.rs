//! JWT checks: alg none, expiry, signatures against configured keys, required claims.
//!
//! Tokens come from `Authorization: Bearer`, and from the headers and cookies named in the
//! configuration. A token is looked at when it is JWT-shaped: three dot-separated segments
//! whose first starts like base64url of `{` (`ey`/`ew`), so opaque tokens with dots (PASETO,
//! vendor API keys) are left alone. Everything that does not depend on the clock is worked
//! out once per distinct token and kept in a small LRU keyed by a 128-bit keyed hash of it
//! (two [`Multilinear`] hashes; its SHA-256 past 1 KiB), so a flood of one token costs one
//! signature check and the cache never holds a token's text. Evidence names a token by
//! `sha256:<16 hex>` (as client identity does), never by its text.

mod keys;
#[cfg(test)]
mod wycheproof;

use std::{
    fmt,
    num::NonZeroUsize,
    path::PathBuf,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::Engine as _;
use lru::LruCache;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::{
    config::{invalid, Invalid},
    finding::Finding,
    keyed::Multilinear,
    request::{Context, Request},
    rules::{self, Rule},
};
use keys::{Alg, Key, KeySet, Verification, B64URL};

/// Longest token decoded; longer JWT-shaped tokens are reported as malformed unread.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Tokens inspected per request (repeated Authorization headers, cookies).
const MAX_TOKENS_PER_REQUEST: usize = 4;
/// `kid` and `alg` characters shown in evidence (both are attacker-chosen text).
const MAX_SHOWN_CHARS: usize = 16;
/// Largest secret or key file read.
const MAX_KEY_FILE_BYTES: u64 = 1 << 20;

/// A configured secret: deserialised as a plain string, never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// Run this detector (default true).
    pub enabled: bool,
    /// Further headers whose value is a JWT, optionally after `Bearer ` (default none;
    /// `Authorization: Bearer` is always read).
    pub headers: Vec<String>,
    /// Cookies whose value is a JWT (default none).
    pub cookies: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (default 60).
    pub leeway_secs: u64,
    /// HMAC secrets for HS256/384/512 (default none). Prefer `hs_secret_files`, which keeps
    /// secrets out of the configuration file.
    pub hs_secrets: Vec<Secret>,
    /// Files each holding one HMAC secret; one trailing newline is ignored (default none).
    pub hs_secret_files: Vec<PathBuf>,
    /// PEM public keys: RSA (SPKI or PKCS#1), EC P-256/P-384/P-521, Ed25519 (default none).
    pub public_key_files: Vec<PathBuf>,
    /// A JWKS document; keys are picked by the token's `kid` (default none).
    pub jwks_file: Option<PathBuf>,
    /// Algorithms tokens may use; others are `jwt.disallowed_alg` (default: any).
    pub allowed_algs: Vec<String>,
    /// Claims every token must carry (default none).
    pub required_claims: Vec<String>,
    /// When set, `iss` must be one of these (default: not checked).
    pub issuers: Vec<String>,
    /// When set, `aud` (a string or a list) must name one of these (default: not checked).
    pub audiences: Vec<String>,
    /// Distinct tokens whose analysis is cached (default 4096).
    pub cache_size: usize,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            headers: Vec::new(),
            cookies: Vec::new(),
            leeway_secs: 60,
            hs_secrets: Vec::new(),
            hs_secret_files: Vec::new(),
            public_key_files: Vec::new(),
            jwks_file: None,
            allowed_algs: Vec::new(),
            required_claims: Vec::new(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            cache_size: 4096,
        }
    }
}

impl JwtConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.leeway_secs > 86_400 {
            return Err(invalid("detect.jwt.leeway_secs", "must be at most 86400"));
        }
        if self.cache_size == 0 || self.cache_size > 1 << 20 {
            return Err(invalid(
                "detect.jwt.cache_size",
                "must be between 1 and 1048576",
            ));
        }
        for (name, list) in [
            ("headers", &self.headers),
            ("cookies", &self.cookies),
            ("required_claims", &self.required_claims),
            ("issuers", &self.issuers),
            ("audiences", &self.audiences),
        ] {
            if let Some(i) = list.iter().position(|s| s.trim().is_empty()) {
                return Err(invalid(
                    format!("detect.jwt.{name}[{i}]"),
                    "must not be empty",
                ));
            }
        }
        if let Some(i) = self.hs_secrets.iter().position(|s| s.0.is_empty()) {
            return Err(invalid(
                format!("detect.jwt.hs_secrets[{i}]"),
                "must not be empty",
            ));
        }
        for (i, name) in self.allowed_algs.iter().enumerate() {
            if Alg::parse(name).is_none() {
                return Err(invalid(
                    format!("detect.jwt.allowed_algs[{i}]"),
                    format!(
                        "unknown algorithm `{name}`; one of {}",
                        Alg::ALL.map(Alg::as_str).join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Loads every configured key; an unreadable or unusable one names its field.
    fn load_keys(&self) -> Result<KeySet, Invalid> {
        let mut set = KeySet::default();
        for s in &self.hs_secrets {
            set.push(Key::hmac(s.0.as_bytes()));
        }
        for (i, path) in self.hs_secret_files.iter().enumerate() {
            let field = format!("detect.jwt.hs_secret_files[{i}]");
            let mut secret = read_key_file(path).map_err(|e| invalid(&field, e))?;
            if secret.ends_with(b"\n") {
                secret.pop();
                if secret.ends_with(b"\r") {
                    secret.pop();
                }
            }
            if secret.is_empty() {
                return Err(invalid(field, format!("{}: empty secret", path.display())));
            }
            set.push(Key::hmac(&secret));
        }
        for (i, path) in self.public_key_files.iter().enumerate() {
            let field = format!("detect.jwt.public_key_files[{i}]");
            let pem = read_key_file(path).map_err(|e| invalid(&field, e))?;
            let pem = String::from_utf8(pem)
                .map_err(|_| invalid(&field, format!("{}: not PEM text", path.display())))?;
            let key = Key::from_pem(&pem)
                .map_err(|e| invalid(&field, format!("{}: {e}", path.display())))?;
            set.push(key);
        }
        if let Some(path) = &self.jwks_file {
            let field = "detect.jwt.jwks_file";
            let text = read_key_file(path).map_err(|e| invalid(field, e))?;
            let text = String::from_utf8(text)
                .map_err(|_| invalid(field, format!("{}: not UTF-8", path.display())))?;
            let jwks = KeySet::from_jwks(&text)
                .map_err(|e| invalid(field, format!("{}: {e}", path.display())))?;
            if jwks.is_empty() {
                return Err(invalid(field, format!("{}: no keys", path.display())));
            }
            set.extend(jwks);
        }
        Ok(set)
    }
}

fn read_key_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(format!("{shown}: larger than {MAX_KEY_FILE_BYTES} bytes"));
    }
    std::fs::read(path).map_err(|e| format!("{shown}: {e}"))
}

/// What a token is, worked out once: the problems that do not depend on the time, and the
/// time claims to check on each use.
#[derive(Debug)]
struct Analysis {
    /// `alg=… kid=… sha256:…`, appended to every piece of evidence.
    label: String,
    problems: Vec<(&'static Rule, String)>,
    exp: Option<f64>,
    nbf: Option<f64>,
}

/// A compact JWS split and decoded (RFC 7515 §7.1).
struct Jws<'t> {
    header: Map<String, Value>,
    payload: Vec<u8>,
    signature: Vec<u8>,
    /// `header.payload` as sent: what the signature covers.
    signing_input: &'t str,
}

/// Whether `token` looks like a compact JWS: `ey`/`ew` (base64url of `{`) and three segments.
fn jwt_shaped(token: &str) -> bool {
    let b = token.as_bytes();
    matches!(b, [b'e', b'y' | b'w', ..]) && b.iter().filter(|&&c| c == b'.').count() == 2
}

fn parse_jws(token: &str) -> Result<Jws<'_>, &'static str> {
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("not three segments");
    };
    let header = B64URL.decode(h).map_err(|_| "header is not base64url")?;
    let header = serde_json::from_slice::<Map<String, Value>>(&header)
        .map_err(|_| "header is not a JSON object")?;
    let payload = B64URL.decode(p).map_err(|_| "payload is not base64url")?;
    let signature = B64URL.decode(s).map_err(|_| "signature is not base64url")?;
    Ok(Jws {
        header,
        payload,
        signature,
        signing_input: &token[..h.len() + 1 + p.len()],
    })
}

/// At most [`MAX_SHOWN_CHARS`] characters of `s`.
fn shown(s: &str) -> String {
    s.chars().take(MAX_SHOWN_CHARS).collect()
}

pub struct JwtDetector {
    headers: Vec<String>,
    cookies: Vec<String>,
    leeway: f64,
    keys: KeySet,
    allowed: Vec<Alg>,
    required: Vec<String>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    cache: LruCache<CacheKey, Arc<Analysis>>,
    /// Two independent key sets: a 128-bit cache key, so that no token a client makes can
    /// share another's analysis (one in 2^126 for any two tokens) and its signature check.
    token_keys: [Multilinear; 2],
}

/// Longest token keyed by [`Multilinear`] hashes; longer ones are keyed by their SHA-256
/// (the hashes spare a digest per request on the tokens clients send).
const MAX_HASHED_KEY_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CacheKey {
    Keyed(u128),
    Digest([u8; 32]),
}

/// Where a token was found, turned into a finding's location only when one is reported.
#[derive(Debug, Clone, Copy)]
enum Place<'r> {
    /// A header, by the name it was sent under.
    Header(&'r str),
    /// A configured cookie.
    Cookie(&'r str),
}

impl Place<'_> {
    fn location(self) -> String {
        match self {
            Place::Header(name) => format!("header:{}", name.to_ascii_lowercase()),
            Place::Cookie(name) => format!("cookie:{name}"),
        }
    }
}

impl JwtDetector {
    pub fn new(config: &JwtConfig) -> Result<Self, Invalid> {
        config.validate()?;
        let cache_size = NonZeroUsize::new(config.cache_size)
            .ok_or_else(|| invalid("detect.jwt.cache_size", "must be at least 1"))?;
        Ok(Self {
            headers: config.headers.iter().map(|h| h.trim().to_owned()).collect(),
            cookies: config.cookies.iter().map(|c| c.trim().to_owned()).collect(),
            leeway: config.leeway_secs as f64,
            keys: config.load_keys()?,
            allowed: config
                .allowed_algs
                .iter()
                .filter_map(|a| Alg::parse(a))
                .collect(),
            required: config.required_claims.clone(),
            issuers: config.issuers.clone(),
            audiences: config.audiences.clone(),
            cache: LruCache::new(cache_size),
            token_keys: [0; 2].map(|_| Multilinear::new(MAX_HASHED_KEY_BYTES / 8)),
        })
    }

    pub fn inspect(&mut self, req: &Request<'_>, _ctx: &Context<'_>, out: &mut Vec<Finding>) {
        // The clock is read only for a request that carries a token (few do).
        self.inspect_tokens(req, out, || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        });
    }

    /// [`JwtDetector::inspect`] at wall-clock time `now_unix` (seconds since the epoch).
    #[cfg(test)]
    fn inspect_at(&mut self, req: &Request<'_>, now_unix: f64, out: &mut Vec<Finding>) {
        self.inspect_tokens(req, out, || now_unix);
    }

    /// Judges the request's tokens at the wall-clock time `now_unix` gives (seconds since the
    /// epoch), asked only when there is a token.
    fn inspect_tokens(
        &mut self,
        req: &Request<'_>,
        out: &mut Vec<Finding>,
        now_unix: impl FnOnce() -> f64,
    ) {
        let (found, n) = self.tokens(req);
        if n == 0 {
            return;
        }
        let now_unix = now_unix();
        for &(place, token) in &found[..n] {
            let analysis = self.analysis(token);
            self.report(&analysis, place, now_unix, out);
        }
    }

    /// The JWT-shaped tokens the request carries (the first `n` of the array), with where
    /// they were found.
    fn tokens<'r>(
        &self,
        req: &Request<'r>,
    ) -> ([(Place<'r>, &'r str); MAX_TOKENS_PER_REQUEST], usize) {
        let mut found = [(Place::Header(""), ""); MAX_TOKENS_PER_REQUEST];
        let mut n = 0;
        for (name, value) in req.fields() {
            if n == MAX_TOKENS_PER_REQUEST {
                break;
            }
            let token = if name.eq_ignore_ascii_case("authorization") {
                bearer(value)
            } else if self.headers.iter().any(|h| h.eq_ignore_ascii_case(name)) {
                Some(bearer(value).unwrap_or(value.trim()))
            } else if !self.cookies.is_empty() && name.eq_ignore_ascii_case("cookie") {
                for pair in value.split(';') {
                    let (cookie, v) = pair.split_once('=').unwrap_or((pair, ""));
                    let cookie = cookie.trim();
                    if n < MAX_TOKENS_PER_REQUEST && self.cookies.iter().any(|c| c == cookie) {
                        let v = v.trim().trim_matches('"');
                        if jwt_shaped(v) {
                            found[n] = (Place::Cookie(cookie), v);
                            n += 1;
                        }
                    }
                }
                None
            } else {
                None
            };
            if let Some(t) = token.filter(|t| jwt_shaped(t)) {
                if let Some(slot) = found.get_mut(n) {
                    *slot = (Place::Header(name), t);
                    n += 1;
                }
            }
        }
        (found, n)
    }

    fn analysis(&mut self, token: &str) -> Arc<Analysis> {
        let key = if token.len() <= MAX_HASHED_KEY_BYTES {
            let [a, b] = self.token_keys.each_ref().map(|m| {
                Multilinear::finish(m.add(m.start(token.len() as u64), 0, token.as_bytes()))
            });
            CacheKey::Keyed(u128::from(a) << 64 | u128::from(b))
        } else {
            CacheKey::Digest(Sha256::digest(token.as_bytes()).into())
        };
        if let Some(a) = self.cache.get(&key) {
            return Arc::clone(a);
        }
        let digest: [u8; 32] = match key {
            CacheKey::Digest(d) => d,
            CacheKey::Keyed(_) => Sha256::digest(token.as_bytes()).into(),
        };
        let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let a = Arc::new(self.analyse(token, &format!("sha256:{hash}")));
        self.cache.put(key, Arc::clone(&a));
        a
    }

    fn analyse(&self, token: &str, hash: &str) -> Analysis {
        let malformed = |label: String, why: String| Analysis {
            label,
            problems: vec![(&rules::JWT_MALFORMED, why)],
            exp: None,
            nbf: None,
        };
        if token.len() > MAX_TOKEN_BYTES {
            return malformed(
                hash.to_owned(),
                format!("token of {} bytes exceeds {MAX_TOKEN_BYTES}", token.len()),
            );
        }
        let jws = match parse_jws(token) {
            Ok(j) => j,
            Err(why) => return malformed(hash.to_owned(), why.into()),
        };
        let Some(alg) = jws.header.get("alg").and_then(Value::as_str) else {
            return malformed(hash.to_owned(), "header has no alg".into());
        };
        let kid = jws.header.get("kid").and_then(Value::as_str);
        let mut label = format!("alg={}", shown(alg));
        if let Some(k) = kid {
            label.push_str(&format!(" kid={}", shown(k)));
        }
        label.push(' ');
        label.push_str(hash);
        let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(&jws.payload) else {
            return malformed(label, "payload is not a JSON object".into());
        };
        let mut a = Analysis {
            label,
            problems: Vec::new(),
            exp: None,
            nbf: None,
        };
        self.check_alg(&jws, alg, kid, &mut a.problems);
        for (name, slot) in [("exp", &mut a.exp), ("nbf", &mut a.nbf)] {
            match claims.get(name) {
                None => {}
                Some(v) => match v.as_f64() {
                    Some(t) => *slot = Some(t),
                    None => a
                        .problems
                        .push((&rules::JWT_MALFORMED, format!("{name} is not a number"))),
                },
            }
        }
        self.check_claims(&claims, &mut a.problems);
        a
    }

    fn check_alg(
        &self,
        jws: &Jws<'_>,
        alg: &str,
        kid: Option<&str>,
        problems: &mut Vec<(&'static Rule, String)>,
    ) {
        if alg.eq_ignore_ascii_case("none") {
            let why = if jws.signature.is_empty() {
                "unsigned token (alg none)"
            } else {
                "alg none with a signature"
            };
            problems.push((&rules::JWT_ALG_NONE, why.into()));
            return;
        }
        let parsed = Alg::parse(alg);
        if !self.allowed.is_empty() && !parsed.is_some_and(|a| self.allowed.contains(&a)) {
            problems.push((
                &rules::JWT_DISALLOWED_ALG,
                "algorithm not in allowed_algs".into(),
            ));
            return;
        }
        if self.keys.is_empty() {
            return;
        }
        let why = match parsed {
            None => "unsupported algorithm",
            Some(a) => match self
                .keys
                .verify(a, kid, jws.signing_input.as_bytes(), &jws.signature)
            {
                Verification::Valid => return,
                Verification::NoKey => "no configured key for this alg/kid",
                Verification::Invalid => "signature does not verify",
            },
        };
        problems.push((&rules::JWT_BAD_SIGNATURE, why.into()));
    }

    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        problems: &mut Vec<(&'static Rule, String)>,
    ) {
        let missing: Vec<&str> = self
            .required
            .iter()
            .filter(|c| !claims.contains_key(c.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            problems.push((
                &rules::JWT_MISSING_CLAIM,
                format!("missing {}", missing.join(",")),
            ));
        }
        if !self.issuers.is_empty() {
            let iss = claims.get("iss").and_then(Value::as_str);
            if !iss.is_some_and(|i| self.issuers.iter().any(|w| w == i)) {
                let why = match iss {
                    None => "no iss".into(),
                    Some(i) => format!("iss {} not accepted", shown(i)),
                };
                problems.push((&rules::JWT_BAD_ISSUER, why));
            }
        }
        if !self.audiences.is_empty() {
            let ok = |a: &Value| {
                a.as_str()
                    .is_some_and(|a| self.audiences.iter().any(|w| w == a))
            };
            let aud_ok = match claims.get("aud") {
                Some(Value::Array(list)) => list.iter().any(ok),
                Some(v) => ok(v),
                None => false,
            };
            if !aud_ok {
                let why = if claims.contains_key("aud") {
                    "aud not accepted"
                } else {
                    "no aud"
                };
                problems.push((&rules::JWT_BAD_AUDIENCE, why.into()));
            }
        }
    }

    fn report(&self, a: &Analysis, place: Place<'_>, now: f64, out: &mut Vec<Finding>) {
        let expired = a.exp.is_some_and(|exp| now > exp + self.leeway);
        let early = a.nbf.is_some_and(|nbf| now + self.leeway < nbf);
        if a.problems.is_empty() && !expired && !early {
            return;
        }
        let location = place.location();
        let finding = |rule: &Rule, why: &str| {
            Finding::new(rule, location.as_str(), &format!("{why}; {}", a.label))
        };
        for (rule, why) in &a.problems {
            out.push(finding(rule, why));
        }
        if let Some(exp) = a.exp.filter(|&exp| now > exp + self.leeway) {
            let why = format!("expired {} s ago (exp {})", (now - exp) as i64, exp as i64);
            out.push(finding(&rules::JWT_EXPIRED, &why));
        }
        if let Some(nbf) = a.nbf.filter(|&nbf| now + self.leeway < nbf) {
            let why = format!(
                "valid only in {} s (nbf {})",
                (nbf - now) as i64,
                nbf as i64
            );
            out.push(finding(&rules::JWT_NOT_YET_VALID, &why));
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value.
fn bearer(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests;
