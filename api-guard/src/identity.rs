//! Who the client of a server-side HTTP exchange is: its address and the credential it carried.
//!
//! Rate limits and blocks are keyed on this, so both halves are hardened against the client
//! lying. Forwarding headers (`X-Forwarded-For`, RFC 7239 `Forwarded`) are believed only when
//! the socket peer is a configured trusted proxy, and they are read from the right: each proxy
//! appends the address it saw, so the rightmost entry that is not itself a trusted proxy is
//! the last one a trusted party wrote; anything left of it is the client's own claim. The work
//! is bounded (64 hops, 8 KiB of header text) whatever the header size.
//!
//! Credentials are kept only as a short SHA-256 prefix, enough to tell clients apart in
//! limits and logs without holding a secret that could leak through them.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    num::NonZeroUsize,
};

use base64::{
    alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    Engine as _,
};
use ipnet::IpNet;
use lru::LruCache;
use sha2::{Digest as _, Sha256};

use crate::http::Headers;
use crate::text::hex_digit;

/// Forwarding entries considered, counted from the right.
const MAX_HOPS: usize = 64;
/// Bytes of forwarding header text scanned, counted from the right.
const MAX_FORWARD_BYTES: usize = 8 * 1024;
/// Longest JWT payload segment decoded for its `sub` claim.
const MAX_JWT_PAYLOAD: usize = 8 * 1024;
/// Longest `sub` kept, in characters.
const MAX_SUBJECT_CHARS: usize = 128;
/// Hex characters of the SHA-256 digest kept in [`Credential::hash`].
const HASH_HEX_CHARS: usize = 16;

/// Base64 as found in the wild: padding optional.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const BASE64_STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const BASE64_URL: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Addresses whose X-Forwarded-For / Forwarded headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    /// Whether `ip` is in one of the trusted networks (an IPv4-mapped IPv6 address counts as
    /// its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        // Most agents trust no proxy: nothing to canonicalise the address for.
        if self.0.is_empty() {
            return false;
        }
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The client's address: the socket peer, or when the peer is a trusted proxy the rightmost
    /// X-Forwarded-For / Forwarded `for=` address that is not itself a trusted proxy.
    pub ip: Option<IpAddr>,
    /// Set when `ip` came from forwarding headers: the trusted proxy peer it came through.
    pub via_proxy: Option<IpAddr>,
    /// The credential the request carried, hashed (never the raw value).
    pub credential: Option<Credential>,
}

impl ClientIdentity {
    /// The socket peer itself, with no credential: a client no proxy stands in front of.
    pub fn of_peer(peer: Option<IpAddr>) -> Self {
        Self {
            ip: peer.map(|p| p.to_canonical()),
            via_proxy: None,
            credential: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Credential {
    pub scheme: CredentialScheme,
    /// "sha256:" + first 16 hex chars of SHA-256 of the raw secret
    pub hash: String,
    /// `sub` claim when the bearer token is a JWT whose payload decodes (unverified; for display
    /// only, max 128 chars, control chars removed)
    pub jwt_subject: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialScheme {
    /// `Authorization: Bearer <token>`
    Bearer,
    /// `Authorization: Basic <base64 user:pass>`
    Basic,
    /// One of the configured API key headers.
    ApiKeyHeader,
    /// One of the configured API key query parameters.
    ApiKeyQuery,
}

/// Where clients and their credentials are read from: the trusted proxies and the places
/// API keys are carried.
#[derive(Debug, Clone, Default)]
pub struct Identifier {
    pub trusted: TrustedProxies,
    /// Header names, lower case.
    pub api_key_headers: Vec<String>,
    pub api_key_params: Vec<String>,
}

impl Identifier {
    pub fn new(trusted: Vec<IpNet>, api_key_headers: &[String], api_key_params: &[String]) -> Self {
        Self {
            trusted: TrustedProxies::new(trusted),
            api_key_headers: api_key_headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            api_key_params: api_key_params.to_vec(),
        }
    }

    /// [`Identifier::identify`], remembering what recent `Authorization` values hash to:
    /// clients send the same token request after request, and hashing it is most of the cost.
    pub fn identify_cached(
        &self,
        peer: Option<IpAddr>,
        headers: &Headers,
        query: Option<&str>,
        cache: &mut AuthorizationCache,
    ) -> ClientIdentity {
        let (ip, via_proxy) = address(peer, headers, &self.trusted);
        ClientIdentity {
            ip,
            via_proxy,
            credential: credential_with(
                headers,
                query,
                &self.api_key_headers,
                &self.api_key_params,
                &mut |value| cache.authorization(value),
            ),
        }
    }

    /// [`identify`] with these settings.
    pub fn identify(
        &self,
        peer: Option<IpAddr>,
        headers: &Headers,
        query: Option<&str>,
    ) -> ClientIdentity {
        identify(
            peer,
            headers,
            query,
            &self.trusted,
            &self.api_key_headers,
            &self.api_key_params,
        )
    }
}

/// Identifies the client of a request received from `peer`.
///
/// `headers` are the request headers in order (names in any case), `query` the raw query
/// string without `?`; `api_key_headers` and `api_key_params` name where API keys are carried,
/// in order of preference.
pub fn identify(
    peer: Option<IpAddr>,
    headers: &Headers,
    query: Option<&str>,
    trusted: &TrustedProxies,
    api_key_headers: &[String],
    api_key_params: &[String],
) -> ClientIdentity {
    let (ip, via_proxy) = address(peer, headers, trusted);
    ClientIdentity {
        ip,
        via_proxy,
        credential: credential(headers, query, api_key_headers, api_key_params),
    }
}

/// [`identify`] without the credential (hashing it is wasted work when nothing uses it).
pub fn identify_address(
    peer: Option<IpAddr>,
    headers: &Headers,
    trusted: &TrustedProxies,
) -> ClientIdentity {
    let (ip, via_proxy) = address(peer, headers, trusted);
    ClientIdentity {
        ip,
        via_proxy,
        credential: None,
    }
}

/// [`ClientIdentity::ip`] and [`ClientIdentity::via_proxy`] of a request from `peer` (the
/// two addresses alone: no identity with an empty credential made to be taken apart).
#[inline]
fn address(
    peer: Option<IpAddr>,
    headers: &Headers,
    trusted: &TrustedProxies,
) -> (Option<IpAddr>, Option<IpAddr>) {
    let peer = peer.map(|p| p.to_canonical());
    match peer {
        Some(p) if trusted.contains(p) => match forwarded_client(headers, trusted) {
            Some(client) => (Some(client), Some(p)),
            None => (Some(p), None),
        },
        other => (other, None),
    }
}

/// The client named by the forwarding headers, `None` when they name no valid address.
fn forwarded_client(headers: &Headers, trusted: &TrustedProxies) -> Option<IpAddr> {
    let xff = header_values(headers, "x-forwarded-for");
    let hops = if xff.is_empty() {
        let forwarded = header_values(headers, "forwarded");
        elements_from_right(&forwarded, true)
            .into_iter()
            .filter(|e| !e.is_empty())
            .map(forwarded_for)
            .collect::<Vec<_>>()
    } else {
        elements_from_right(&xff, false)
            .into_iter()
            .filter(|e| !e.is_empty())
            .map(parse_node)
            .collect()
    };
    let mut farthest_trusted = None;
    for hop in hops {
        match hop {
            Some(ip) if !trusted.contains(ip) => return Some(ip),
            Some(ip) => farthest_trusted = Some(ip),
            // Not an address (`unknown`, garbage): whatever lies left of it was written by
            // someone we cannot vouch for, so the walk stops at the last trusted hop.
            None => break,
        }
    }
    farthest_trusted
}

fn header_values<'a>(headers: &'a Headers, name: &'a str) -> Vec<&'a str> {
    values_named(headers, name).collect()
}

/// The values of the fields named `name` (ASCII case-insensitive), in order.
fn values_named<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers.values(name)
}

/// Splits the comma-separated list formed by `values` (joined in order) into trimmed elements,
/// rightmost first, scanning at most [`MAX_FORWARD_BYTES`] bytes and returning at most
/// [`MAX_HOPS`] elements. An element cut by the byte budget is dropped, never guessed at.
/// With `quoted`, commas inside RFC 7230 quoted-strings do not split; scanning from the right
/// keeps the entries trusted proxies appended intact whatever the client put left of them.
fn elements_from_right<'a>(values: &[&'a str], quoted: bool) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut budget = MAX_FORWARD_BYTES;
    for value in values.iter().rev() {
        let bytes = value.as_bytes();
        let mut end = bytes.len();
        let mut in_quotes = false;
        let mut i = bytes.len();
        loop {
            if i == 0 {
                out.push(value[..end].trim());
                break;
            }
            if budget == 0 || out.len() == MAX_HOPS {
                return out;
            }
            budget -= 1;
            i -= 1;
            match bytes[i] {
                b'"' if quoted && !escaped(bytes, i, budget) => in_quotes = !in_quotes,
                // ASCII delimiters, so both slice ends fall on char boundaries.
                b',' if !in_quotes => {
                    out.push(value[i + 1..end].trim());
                    end = i;
                }
                _ => {}
            }
        }
        if out.len() >= MAX_HOPS {
            out.truncate(MAX_HOPS);
            return out;
        }
    }
    out
}

/// Whether the quote at `i` is backslash-escaped: an odd run of backslashes before it. The run
/// is counted at most `limit` deep, so a hostile run costs no more than the scan budget.
fn escaped(bytes: &[u8], i: usize, limit: usize) -> bool {
    let run = bytes[..i]
        .iter()
        .rev()
        .take(limit)
        .take_while(|&&b| b == b'\\')
        .count();
    run % 2 == 1
}

/// Splits `s` on `sep` outside quoted-strings, left to right.
fn split_unquoted(s: &str, sep: u8) -> Vec<&str> {
    let bytes = s.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut in_quotes, mut escape) = (0, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if escape {
            escape = false;
        } else if in_quotes && b == b'\\' {
            escape = true;
        } else if b == b'"' {
            in_quotes = !in_quotes;
        } else if b == sep && !in_quotes {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The address in one `Forwarded` element's first `for=` parameter.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let (_, value) = split_unquoted(element, b';')
        .into_iter()
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))?;
    parse_node(value)
}

/// Parses a forwarding node: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]`, `[::1]:80`, optionally
/// quoted. `unknown` and obfuscated `_names` are not addresses. IPv4-mapped IPv6 becomes IPv4.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    let node = node
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(node)
        .trim();
    // The longest valid form, "[ffff:…:255.255.255.255]:65535", is well below this.
    if node.is_empty() || node.len() > 64 {
        return None;
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        if !after.is_empty() && !after.strip_prefix(':').is_some_and(valid_port) {
            return None;
        }
        return addr
            .parse::<Ipv6Addr>()
            .ok()
            .map(|a| IpAddr::V6(a).to_canonical());
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (host, port) = node.rsplit_once(':')?;
    if !valid_port(port) {
        return None;
    }
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// A decimal port, or an RFC 7239 obfuscated port (`_abc`).
fn valid_port(port: &str) -> bool {
    match port.strip_prefix('_') {
        Some(obf) => {
            !obf.is_empty()
                && obf
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        }
        None => port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok(),
    }
}

/// Credentials of recent `Authorization` values, keyed by the exact value (so no two values
/// share an entry); bounded in entries and in the length of the values kept.
pub struct AuthorizationCache(LruCache<Box<str>, Option<Credential>>);

impl AuthorizationCache {
    const ENTRIES: usize = 1024;
    /// Longer values are hashed every time.
    const MAX_VALUE_BYTES: usize = 1024;

    pub fn new() -> Self {
        Self(LruCache::new(
            NonZeroUsize::new(Self::ENTRIES).unwrap_or(NonZeroUsize::MIN),
        ))
    }

    fn authorization(&mut self, value: &str) -> Option<Credential> {
        if value.len() > Self::MAX_VALUE_BYTES {
            return authorization(value);
        }
        if let Some(c) = self.0.get(value) {
            return c.clone();
        }
        let c = authorization(value);
        self.0.put(value.into(), c.clone());
        c
    }
}

impl Default for AuthorizationCache {
    fn default() -> Self {
        Self::new()
    }
}

fn credential(
    headers: &Headers,
    query: Option<&str>,
    api_key_headers: &[String],
    api_key_params: &[String],
) -> Option<Credential> {
    credential_with(
        headers,
        query,
        api_key_headers,
        api_key_params,
        &mut authorization,
    )
}

/// [`credential`], reading `Authorization` values with `authorization`.
fn credential_with(
    headers: &Headers,
    query: Option<&str>,
    api_key_headers: &[String],
    api_key_params: &[String],
    authorization: &mut dyn FnMut(&str) -> Option<Credential>,
) -> Option<Credential> {
    // Iterated in place (no list of values is collected): this runs for every request.
    let from_authorization = values_named(headers, "authorization").find_map(authorization);
    if from_authorization.is_some() {
        return from_authorization;
    }
    let from_header = api_key_headers.iter().find_map(|name| {
        values_named(headers, name)
            .map(str::trim)
            .find(|v| !v.is_empty())
    });
    if let Some(key) = from_header {
        return Some(hashed(CredentialScheme::ApiKeyHeader, key.as_bytes()));
    }
    let query = query?;
    let query = query.strip_prefix('?').unwrap_or(query);
    api_key_params.iter().find_map(|name| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| hashed(CredentialScheme::ApiKeyQuery, v.as_bytes()))
    })
}

/// A `Bearer` or `Basic` credential from one `Authorization` value; other schemes are `None`.
fn authorization(value: &str) -> Option<Credential> {
    let (scheme, token) = value.trim().split_once([' ', '\t'])?;
    let token = token.trim();
    if token.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        let mut credential = hashed(CredentialScheme::Bearer, token.as_bytes());
        credential.jwt_subject = jwt_subject(token);
        Some(credential)
    } else if scheme.eq_ignore_ascii_case("basic") {
        // Undecodable garbage still identifies whoever keeps sending it.
        let secret = BASE64_STANDARD
            .decode(token)
            .unwrap_or_else(|_| token.as_bytes().to_vec());
        (!secret.is_empty()).then(|| hashed(CredentialScheme::Basic, &secret))
    } else {
        None
    }
}

fn hashed(scheme: CredentialScheme, secret: &[u8]) -> Credential {
    let digest = Sha256::digest(secret);
    let mut hash = String::with_capacity(7 + HASH_HEX_CHARS);
    hash.push_str("sha256:");
    for byte in &digest[..HASH_HEX_CHARS / 2] {
        hash.push(hex_digit(byte >> 4));
        hash.push(hex_digit(byte & 0xf));
    }
    Credential {
        scheme,
        hash,
        jwt_subject: None,
    }
}

/// The unverified `sub` claim of a JWT, cleaned for display.
fn jwt_subject(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.is_empty() || payload.len() > MAX_JWT_PAYLOAD {
        return None;
    }
    let json = BASE64_URL.decode(payload).ok()?;
    // A map, not a struct: serde would also accept a JSON array for a struct.
    let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&json).ok()?;
    let serde_json::Value::String(sub) = claims.get("sub")? else {
        return None;
    };
    let clean: String = sub
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SUBJECT_CHARS)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> (String, String) {
        (name.to_string(), value.to_string())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn client(peer: &str, headers: &[(String, String)], t: &TrustedProxies) -> ClientIdentity {
        identify(Some(ip(peer)), &headers.into(), None, t, &[], &[])
    }

    fn cred(headers: &[(String, String)], query: Option<&str>) -> Option<Credential> {
        let key_headers = ["x-api-key".to_string(), "x-token".to_string()];
        let key_params = ["api_key".to_string(), "key".to_string()];
        identify(
            None,
            &headers.into(),
            query,
            &TrustedProxies::default(),
            &key_headers,
            &key_params,
        )
        .credential
    }

    #[test]
    fn cached_identification_matches_uncached() {
        let id = Identifier::new(
            vec!["10.0.0.0/8".parse().unwrap()],
            &["X-Api-Key".to_string()],
            &["key".to_string()],
        );
        let mut cache = AuthorizationCache::new();
        let long = format!("Bearer {}", "a".repeat(2000));
        type Case<'a> = (Vec<(String, String)>, Option<&'a str>);
        let cases: Vec<Case> = vec![
            (vec![h("Authorization", "Bearer t1")], None),
            (vec![h("authorization", "Basic dXNlcjpwYXNz")], None),
            (
                vec![h("Authorization", "Negotiate x"), h("X-Api-Key", "k1")],
                None,
            ),
            (vec![h("Authorization", "Bearer ")], Some("key=k2")),
            (vec![h("Authorization", &long)], None),
            (vec![h("X-Forwarded-For", "203.0.113.9")], None),
        ];
        for _ in 0..2 {
            for (headers, query) in &cases {
                let headers = &Headers::from(headers.as_slice());
                let peer = Some(ip("10.1.2.3"));
                assert_eq!(
                    id.identify_cached(peer, headers, *query, &mut cache),
                    id.identify(peer, headers, *query)
                );
            }
        }
    }

    fn b64url(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    fn sha_prefix(secret: &[u8]) -> String {
        let d = Sha256::digest(secret);
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{}", &hex[..16])
    }

    #[test]
    fn untrusted_peer_ignores_forwarding_headers() {
        let t = trusted(&["10.0.0.0/8"]);
        let headers = [
            h("X-Forwarded-For", "203.0.113.7"),
            h("Forwarded", "for=198.51.100.1"),
        ];
        let id = client("192.0.2.9", &headers, &t);
        assert_eq!(id.ip, Some(ip("192.0.2.9")));
        assert_eq!(id.via_proxy, None);
        assert_eq!(id.credential, None);
    }

    #[test]
    fn no_peer_no_ip() {
        let id = identify(
            None,
            &[h("x-forwarded-for", "203.0.113.7")].into(),
            None,
            &trusted(&["0.0.0.0/0"]),
            &[],
            &[],
        );
        assert_eq!(id.ip, None);
        assert_eq!(id.via_proxy, None);
    }

    #[test]
    fn trusted_peer_rightmost_untrusted_hop() {
        let t = trusted(&["10.0.0.0/8"]);
        let id = client(
            "10.0.0.1",
            &[h("X-Forwarded-For", "203.0.113.7, 10.0.0.2")],
            &t,
        );
        assert_eq!(id.ip, Some(ip("203.0.113.7")));
        assert_eq!(id.via_proxy, Some(ip("10.0.0.1")));
    }

    #[test]
    fn spoofed_leftmost_entries_are_ignored() {
        let t = trusted(&["10.0.0.0/8"]);
        let id = client(
            "10.0.0.1",
            &[h(
                "x-forwarded-for",
                "1.1.1.1, 8.8.8.8, 203.0.113.7, 10.0.0.2",
            )],
            &t,
        );
        assert_eq!(id.ip, Some(ip("203.0.113.7")));
    }

    #[test]
    fn multiple_xff_headers_join_in_order() {
        let t = trusted(&["10.0.0.0/8"]);
        let headers = [
            h("X-Forwarded-For", "1.1.1.1, 203.0.113.7"),
            h("Content-Type", "text/plain"),
            h("X-FORWARDED-FOR", "10.0.0.3,10.0.0.2"),
        ];
        assert_eq!(client("10.0.0.1", &headers, &t).ip, Some(ip("203.0.113.7")));
    }

    #[test]
    fn all_hops_trusted_gives_leftmost() {
        let t = trusted(&["10.0.0.0/8"]);
        let id = client(
            "10.0.0.1",
            &[h("X-Forwarded-For", "10.0.0.9, , 10.0.0.2")],
            &t,
        );
        assert_eq!(id.ip, Some(ip("10.0.0.9")));
        assert_eq!(id.via_proxy, Some(ip("10.0.0.1")));
    }

    #[test]
    fn invalid_hop_stops_the_walk() {
        // Left of an entry no trusted proxy could have written, the client may have
        // written anything: the last trusted hop is the client.
        let t = trusted(&["10.0.0.0/8"]);
        let id = client(
            "10.0.0.1",
            &[h("X-Forwarded-For", "203.0.113.9, junk, 10.0.0.2")],
            &t,
        );
        assert_eq!(id.ip, Some(ip("10.0.0.2")));
        let id = client("10.0.0.1", &[h("X-Forwarded-For", "203.0.113.9, junk")], &t);
        assert_eq!((id.ip, id.via_proxy), (Some(ip("10.0.0.1")), None));
    }

    #[test]
    fn ports_whitespace_and_mapped_addresses() {
        let t = trusted(&["10.0.0.0/8"]);
        for (xff, want) in [
            ("  203.0.113.7:5678 ", "203.0.113.7"),
            ("[2001:db8::1]:80", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
            ("[::ffff:203.0.113.7]:443", "203.0.113.7"),
            ("\"203.0.113.7\"", "203.0.113.7"),
        ] {
            let id = client("10.0.0.1", &[h("X-Forwarded-For", xff)], &t);
            assert_eq!(id.ip, Some(ip(want)), "{xff}");
        }
        // A mapped trusted proxy is trusted, and a mapped peer is reported as IPv4.
        let id = client(
            "::ffff:10.0.0.1",
            &[h("X-Forwarded-For", "203.0.113.7")],
            &t,
        );
        assert_eq!(id.ip, Some(ip("203.0.113.7")));
        assert_eq!(id.via_proxy, Some(ip("10.0.0.1")));
        let id = client("::ffff:192.0.2.1", &[], &t);
        assert_eq!(id.ip, Some(ip("192.0.2.1")));
    }

    #[test]
    fn garbage_xff_falls_back_to_peer() {
        let t = trusted(&["10.0.0.0/8"]);
        for xff in [
            "",
            "garbage",
            "unknown, _hidden",
            "1.2.3.4:99999",
            "1.2.3.4:",
            "[::1",
            "[::1]x",
            "999.1.1.1",
            ",,,",
            "\u{fffd}\u{fffd}",
        ] {
            let id = client("10.0.0.1", &[h("X-Forwarded-For", xff)], &t);
            assert_eq!(id.ip, Some(ip("10.0.0.1")), "{xff:?}");
            assert_eq!(id.via_proxy, None, "{xff:?}");
        }
    }

    #[test]
    fn forwarded_header() {
        let t = trusted(&["10.0.0.0/8"]);
        for (value, want) in [
            (r#"for="[2001:db8:cafe::17]:4711""#, "2001:db8:cafe::17"),
            ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
            ("For=\"192.0.2.60:8080\"", "192.0.2.60"),
            ("for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
            ("for=192.0.2.43, for=unknown", "10.0.0.1"),
            ("for=192.0.2.43, for=_hidden, for=10.0.0.5", "10.0.0.5"),
            ("proto=https; for=192.0.2.44 ;by=_x", "192.0.2.44"),
            ("for=192.0.2.45, for=unknown;for=8.8.8.8", "10.0.0.1"),
            (r#"for=192.0.2.1, for="_a,b\",c;for=8.8.8.8""#, "10.0.0.1"),
            ("for=\"[::ffff:192.0.2.9]\"", "192.0.2.9"),
        ] {
            let id = client("10.0.0.1", &[h("Forwarded", value)], &t);
            assert_eq!(id.ip, Some(ip(want)), "{value}");
            // When the walk ends on no address, the proxy itself is the client.
            let via = (want != "10.0.0.1").then(|| ip("10.0.0.1"));
            assert_eq!(id.via_proxy, via, "{value}");
        }
    }

    #[test]
    fn xff_wins_over_forwarded() {
        let t = trusted(&["10.0.0.0/8"]);
        let headers = [
            h("Forwarded", "for=198.51.100.1"),
            h("X-Forwarded-For", "203.0.113.7"),
        ];
        assert_eq!(client("10.0.0.1", &headers, &t).ip, Some(ip("203.0.113.7")));
    }

    #[test]
    fn long_xff_is_bounded_from_the_right() {
        let t = trusted(&["10.0.0.0/8"]);
        // 10,000 hops: the client is found within the rightmost 64.
        let mut hops = vec!["198.51.100.1"; 9_998];
        hops.push("203.0.113.7");
        hops.push("10.0.0.2");
        let id = client("10.0.0.1", &[h("X-Forwarded-For", &hops.join(", "))], &t);
        assert_eq!(id.ip, Some(ip("203.0.113.7")));
        // 10,000 trusted hops: only the rightmost 64 are looked at.
        let hops: Vec<String> = (0..10_000)
            .map(|i| format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256))
            .collect();
        let id = client("10.0.0.1", &[h("X-Forwarded-For", &hops.join(","))], &t);
        assert_eq!(id.ip, Some(ip(&hops[10_000 - MAX_HOPS])));
        // An untrusted address beyond the budget is never reached.
        let mut hops = vec!["203.0.113.7".to_string()];
        hops.extend(std::iter::repeat_n("10.0.0.2".to_string(), 100));
        let id = client("10.0.0.1", &[h("X-Forwarded-For", &hops.join(","))], &t);
        assert_eq!(id.ip, Some(ip("10.0.0.2")));
        // One huge element: nothing within the budget, so the peer.
        let huge = format!("203.0.113.7{}", " ".repeat(100_000));
        let id = client("10.0.0.1", &[h("X-Forwarded-For", &huge)], &t);
        assert_eq!(id.ip, Some(ip("10.0.0.1")));
        // Many headers: the budget spans them.
        let mut headers = vec![h("X-Forwarded-For", "1.1.1.1"); 5_000];
        headers.push(h("X-Forwarded-For", "203.0.113.8"));
        assert_eq!(client("10.0.0.1", &headers, &t).ip, Some(ip("203.0.113.8")));
    }

    #[test]
    fn element_cut_by_budget_is_dropped() {
        let t = trusted(&["10.0.0.0/8"]);
        // Exactly the budget: the leftmost element is read whole.
        let fits = format!("211.2.3.4,{}", " ".repeat(MAX_FORWARD_BYTES - 10));
        let id = client("10.0.0.1", &[h("X-Forwarded-For", &fits)], &t);
        assert_eq!(id.ip, Some(ip("211.2.3.4")));
        // One byte more: "211.2.3.4" must not be read as "11.2.3.4".
        let cut = format!("211.2.3.4,{}", " ".repeat(MAX_FORWARD_BYTES - 9));
        let id = client("10.0.0.1", &[h("X-Forwarded-For", &cut)], &t);
        assert_eq!(id.ip, Some(ip("10.0.0.1")));
        assert_eq!(elements_from_right(&[&cut], false), vec![""]);
        // The hop limit counts empty elements too.
        let commas = ",".repeat(1000);
        assert_eq!(elements_from_right(&[&commas], false).len(), MAX_HOPS);
        assert_eq!(elements_from_right(&[",", ",", ""], false).len(), 5);
    }

    #[test]
    fn hostile_forwarded_is_bounded() {
        let t = trusted(&["10.0.0.0/8"]);
        let quotes = format!("for=203.0.113.7, for=\"{}\"", "\\".repeat(200_000));
        let id = client("10.0.0.1", &[h("Forwarded", &quotes)], &t);
        assert_eq!(id.ip, Some(ip("10.0.0.1")));
        let many = "\"a\",".repeat(50_000);
        let id = client("10.0.0.1", &[h("Forwarded", &many)], &t);
        assert_eq!(id.ip, Some(ip("10.0.0.1")));
        let semis = format!("{};for=203.0.113.7", ";".repeat(5_000));
        let id = client("10.0.0.1", &[h("Forwarded", &semis)], &t);
        assert_eq!(id.ip, Some(ip("203.0.113.7")));
    }

    #[test]
    fn bearer_token_and_jwt_subject() {
        let payload = b64url(r#"{"sub":"alice@example.com","exp":1}"#);
        let token = format!("{}.{payload}.c2ln", b64url(r#"{"alg":"HS256"}"#));
        let c = cred(&[h("authorization", &format!("Bearer {token}"))], None).unwrap();
        assert_eq!(c.scheme, CredentialScheme::Bearer);
        assert_eq!(c.hash, sha_prefix(token.as_bytes()));
        assert_eq!(c.jwt_subject.as_deref(), Some("alice@example.com"));

        // Not a JWT: hashed, no subject.
        let c = cred(&[h("Authorization", "bearer   opaque-token ")], None).unwrap();
        assert_eq!(c.hash, sha_prefix(b"opaque-token"));
        assert_eq!(c.jwt_subject, None);
    }

    #[test]
    fn jwt_subject_edge_cases() {
        let jwt = |payload: &str| format!("e30.{}.sig", b64url(payload));
        assert_eq!(jwt_subject(&jwt(r#"{"sub":42}"#)), None);
        assert_eq!(jwt_subject(&jwt(r#"["sub"]"#)), None);
        assert_eq!(jwt_subject(&jwt(r#"{"iss":"x"}"#)), None);
        assert_eq!(jwt_subject(&jwt(r#"{"sub":"\u0000\n\u001b"}"#)), None);
        assert_eq!(
            jwt_subject(&jwt(r#"{"sub":"a\u0000b\nc\u001b[31m"}"#)).as_deref(),
            Some("abc[31m")
        );
        let long = format!(r#"{{"sub":"{}"}}"#, "é".repeat(500));
        assert_eq!(jwt_subject(&jwt(&long)), Some("é".repeat(128)));
        // Padded base64url is accepted too.
        let padded = base64::engine::general_purpose::URL_SAFE.encode(r#"{"sub":"bob"}"#);
        assert!(padded.ends_with('='));
        assert_eq!(
            jwt_subject(&format!("e30.{padded}.")).as_deref(),
            Some("bob")
        );
        assert_eq!(jwt_subject(&format!("{}.x", jwt(r#"{"sub":"a"}"#))), None);
        assert_eq!(jwt_subject("a.b"), None);
        assert_eq!(jwt_subject("a..c"), None);
        assert_eq!(jwt_subject("a.!!!.c"), None);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(jwt_subject(&jwt(&deep)), None);
        let nested = format!(
            r#"{{"x":{}1{},"sub":"s"}}"#,
            "[".repeat(1000),
            "]".repeat(1000)
        );
        assert_eq!(jwt_subject(&jwt(&nested)), None);
    }

    #[test]
    fn basic_credentials() {
        let c = cred(&[h("Authorization", "Basic dXNlcjpwYXNz")], None).unwrap();
        assert_eq!(c.scheme, CredentialScheme::Basic);
        assert_eq!(c.hash, sha_prefix(b"user:pass"));
        assert_eq!(c.jwt_subject, None);
        // Unpadded is accepted; garbage is hashed as sent.
        let c = cred(&[h("Authorization", "BASIC dXNlcjpwYXNzMQ")], None).unwrap();
        assert_eq!(c.hash, sha_prefix(b"user:pass1"));
        let c = cred(&[h("Authorization", "Basic !!!")], None).unwrap();
        assert_eq!(c.hash, sha_prefix(b"!!!"));
    }

    #[test]
    fn api_key_header_and_query() {
        let c = cred(&[h("X-API-Key", "k1")], Some("api_key=k2")).unwrap();
        assert_eq!(c.scheme, CredentialScheme::ApiKeyHeader);
        assert_eq!(c.hash, sha_prefix(b"k1"));
        // Configured order wins over header order.
        let c = cred(&[h("x-token", "t"), h("x-api-key", "k1")], None).unwrap();
        assert_eq!(c.hash, sha_prefix(b"k1"));
        let c = cred(&[], Some("a=1&api_key=k2&key=k3")).unwrap();
        assert_eq!(c.scheme, CredentialScheme::ApiKeyQuery);
        assert_eq!(c.hash, sha_prefix(b"k2"));
        let c = cred(&[], Some("?key=k3&api_key=")).unwrap();
        assert_eq!(c.hash, sha_prefix(b"k3"));
        // Query parameter names are case-sensitive.
        assert_eq!(cred(&[], Some("API_KEY=k2")), None);
    }

    #[test]
    fn authorization_takes_precedence_and_empty_values_are_ignored() {
        let c = cred(
            &[h("x-api-key", "k1"), h("Authorization", "Bearer tok")],
            Some("api_key=k2"),
        )
        .unwrap();
        assert_eq!(c.scheme, CredentialScheme::Bearer);
        // Unknown schemes and empty tokens fall through to the API key.
        let c = cred(
            &[
                h("Authorization", "Digest username=x"),
                h("Authorization", "Bearer   "),
                h("Authorization", "Bearer"),
                h("x-api-key", "  "),
                h("x-api-key", "k1"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(c.scheme, CredentialScheme::ApiKeyHeader);
        assert_eq!(c.hash, sha_prefix(b"k1"));
        assert_eq!(
            cred(
                &[h("x-api-key", ""), h("Authorization", "")],
                Some("api_key=&key")
            ),
            None
        );
        assert_eq!(cred(&[], None), None);
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let jwt = format!("e30.{}.supersecretsig", b64url(r#"{"sub":"carol"}"#));
        let cases = [
            (h("Authorization", &format!("Bearer {jwt}")), None),
            (h("Authorization", "Bearer supersecret-bearer"), None),
            (h("Authorization", "Basic c3VwZXI6c2VjcmV0"), None),
            (h("X-Api-Key", "supersecret-key"), None),
            (h("Accept", "*/*"), Some("api_key=supersecret-query")),
        ];
        for (header, query) in cases {
            let id = identify(
                Some(ip("192.0.2.1")),
                &[header].into(),
                query,
                &TrustedProxies::default(),
                &["x-api-key".to_string()],
                &["api_key".to_string()],
            );
            let c = id.credential.clone().unwrap();
            for text in [format!("{id:?}"), format!("{c:?}"), format!("{id:#?}")] {
                assert!(!text.contains("supersecret"), "{text}");
                assert!(!text.contains("c3VwZXI6c2VjcmV0"), "{text}");
                assert!(!text.contains("super:secret"), "{text}");
                assert!(text.contains(&c.hash), "{text}");
            }
        }
    }

    #[test]
    fn trusted_proxies_contains() {
        let t = trusted(&["10.0.0.0/8", "2001:db8::/32"]);
        assert!(t.contains(ip("10.1.2.3")));
        assert!(t.contains(ip("::ffff:10.1.2.3")));
        assert!(t.contains(ip("2001:db8::5")));
        assert!(!t.contains(ip("11.0.0.1")));
        assert!(!TrustedProxies::default().contains(ip("10.0.0.1")));
    }

    #[test]
    fn parse_node_never_panics_on_split_input() {
        // Every prefix and suffix of valid nodes, including multi-byte text.
        for node in ["[2001:db8::1]:8080", "\"192.0.2.1:80\"", "é[::1]é:1é"] {
            for (i, _) in node.char_indices() {
                let _ = parse_node(&node[..i]);
                let _ = parse_node(&node[i..]);
                let _ = forwarded_for(&node[i..]);
                let _ = authorization(&node[i..]);
            }
        }
    }
}
