//! The TLS posture of a connection, from its handshake records as they cross the socket:
//! the server's `ServerHello` names the negotiated version and cipher suite in clear text
//! (RFC 8446 §4.1.3, RFC 5246 §7.4.1.3), before any key is in use.
//!
//! [`HelloReader`] reads the server-to-client direction of a connection from its first byte:
//! record headers, then the handshake message they carry, reassembled across records. It is
//! fed hostile bytes in pieces of any size: every length is checked before it is used, at
//! most [`MAX_HELLO_BYTES`] of handshake text are kept, and it decides (or gives up) within
//! [`MAX_SNIFF_BYTES`] of input. Only the message header, `legacy_version`, the session id
//! length, the cipher suite and the `supported_versions` extension are read.

use serde::Serialize;

/// Handshake bytes kept while the `ServerHello` is incomplete (a hybrid post-quantum key
/// share makes it about 1.2 KB).
pub const MAX_HELLO_BYTES: usize = 4096;
/// Input read before giving up on finding a `ServerHello`.
pub const MAX_SNIFF_BYTES: usize = 16 * 1024;
/// Longest TLS record fragment (2^14) plus the expansion TLS 1.2 allows.
const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_SERVER_HELLO: u8 = 2;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// A protocol version as on the wire (`0x0303` is TLS 1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TlsVersion(pub u16);

impl TlsVersion {
    pub const TLS1_2: TlsVersion = TlsVersion(0x0303);
    pub const TLS1_3: TlsVersion = TlsVersion(0x0304);

    /// `ssl3`, `tls1.0` … `tls1.3`, or `unknown` (a bounded set: used as a metric label).
    pub fn as_str(self) -> &'static str {
        match self.0 {
            0x0300 => "ssl3",
            0x0301 => "tls1.0",
            0x0302 => "tls1.1",
            0x0303 => "tls1.2",
            0x0304 => "tls1.3",
            _ => "unknown",
        }
    }
}

impl Serialize for TlsVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How a cipher suite agrees on keys: what decides forward secrecy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyExchange {
    /// TLS 1.3 suites: (EC)DHE always (or PSK with (EC)DHE as negotiated).
    Tls13,
    Ecdhe,
    Dhe,
    /// RSA key transport: whoever gets the server key later decrypts recorded sessions.
    Rsa,
    /// Static (EC)DH keys in the certificate.
    StaticDh,
    /// Pre-shared key alone.
    Psk,
    /// PSK with an ephemeral (EC)DHE.
    EphemeralPsk,
    /// Not in the table below.
    Unknown,
}

impl KeyExchange {
    /// The `cipher_family` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyExchange::Tls13 => "tls13",
            KeyExchange::Ecdhe => "ecdhe",
            KeyExchange::Dhe => "dhe",
            KeyExchange::Rsa => "rsa",
            KeyExchange::StaticDh => "static_dh",
            KeyExchange::Psk => "psk",
            KeyExchange::EphemeralPsk => "ephemeral_psk",
            KeyExchange::Unknown => "unknown",
        }
    }

    /// `Some(false)` for key exchanges without forward secrecy, `None` when unknown.
    pub fn forward_secrecy(self) -> Option<bool> {
        match self {
            KeyExchange::Tls13 | KeyExchange::Ecdhe | KeyExchange::Dhe => Some(true),
            KeyExchange::EphemeralPsk => Some(true),
            KeyExchange::Rsa | KeyExchange::StaticDh | KeyExchange::Psk => Some(false),
            KeyExchange::Unknown => None,
        }
    }
}

/// The bulk cipher, as far as it matters for posture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bulk {
    Aead,
    Cbc,
    /// RC4, 3DES, NULL and export ciphers: broken or no encryption at all.
    Broken,
}

/// A cipher suite by its IANA value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CipherSuite(pub u16);

/// (value, IANA name, key exchange, bulk) of the suites servers actually pick; others are
/// reported by value with an unknown key exchange (never judged).
#[rustfmt::skip]
const SUITES: &[(u16, &str, KeyExchange, Bulk)] = {
    use Bulk::*;
    use KeyExchange::*;
    &[
        (0x1301, "TLS_AES_128_GCM_SHA256", Tls13, Aead),
        (0x1302, "TLS_AES_256_GCM_SHA384", Tls13, Aead),
        (0x1303, "TLS_CHACHA20_POLY1305_SHA256", Tls13, Aead),
        (0x1304, "TLS_AES_128_CCM_SHA256", Tls13, Aead),
        (0x1305, "TLS_AES_128_CCM_8_SHA256", Tls13, Aead),
        (0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", Ecdhe, Aead),
        (0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", Ecdhe, Aead),
        (0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Ecdhe, Aead),
        (0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", Ecdhe, Aead),
        (0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", Ecdhe, Aead),
        (0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", Ecdhe, Aead),
        (0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", Ecdhe, Aead),
        (0xC0AD, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM", Ecdhe, Aead),
        (0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", Ecdhe, Cbc),
        (0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", Ecdhe, Cbc),
        (0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", Ecdhe, Cbc),
        (0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", Ecdhe, Cbc),
        (0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", Ecdhe, Cbc),
        (0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", Ecdhe, Cbc),
        (0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", Ecdhe, Cbc),
        (0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", Ecdhe, Cbc),
        (0xC007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", Ecdhe, Broken),
        (0xC008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA", Ecdhe, Broken),
        (0xC011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA", Ecdhe, Broken),
        (0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", Ecdhe, Broken),
        (0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", Dhe, Aead),
        (0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", Dhe, Aead),
        (0x00A2, "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256", Dhe, Aead),
        (0x00A3, "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384", Dhe, Aead),
        (0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", Dhe, Aead),
        (0xC09E, "TLS_DHE_RSA_WITH_AES_128_CCM", Dhe, Aead),
        (0xC09F, "TLS_DHE_RSA_WITH_AES_256_CCM", Dhe, Aead),
        (0x0032, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA", Dhe, Cbc),
        (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", Dhe, Cbc),
        (0x0038, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA", Dhe, Cbc),
        (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", Dhe, Cbc),
        (0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", Dhe, Cbc),
        (0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", Dhe, Cbc),
        (0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", Dhe, Broken),
        (0x0001, "TLS_RSA_WITH_NULL_MD5", Rsa, Broken),
        (0x0002, "TLS_RSA_WITH_NULL_SHA", Rsa, Broken),
        (0x0004, "TLS_RSA_WITH_RC4_128_MD5", Rsa, Broken),
        (0x0005, "TLS_RSA_WITH_RC4_128_SHA", Rsa, Broken),
        (0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", Rsa, Broken),
        (0x003B, "TLS_RSA_WITH_NULL_SHA256", Rsa, Broken),
        (0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA", Rsa, Cbc),
        (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", Rsa, Cbc),
        (0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256", Rsa, Cbc),
        (0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256", Rsa, Cbc),
        (0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA", Rsa, Cbc),
        (0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA", Rsa, Cbc),
        (0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256", Rsa, Aead),
        (0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384", Rsa, Aead),
        (0xC09C, "TLS_RSA_WITH_AES_128_CCM", Rsa, Aead),
        (0xC09D, "TLS_RSA_WITH_AES_256_CCM", Rsa, Aead),
        (0xC004, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA", StaticDh, Cbc),
        (0xC005, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA", StaticDh, Cbc),
        (0xC00E, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA", StaticDh, Cbc),
        (0xC00F, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA", StaticDh, Cbc),
        (0xC02D, "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256", StaticDh, Aead),
        (0xC02E, "TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384", StaticDh, Aead),
        (0xC031, "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256", StaticDh, Aead),
        (0xC032, "TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384", StaticDh, Aead),
        (0x008C, "TLS_PSK_WITH_AES_128_CBC_SHA", Psk, Cbc),
        (0x008D, "TLS_PSK_WITH_AES_256_CBC_SHA", Psk, Cbc),
        (0x00A8, "TLS_PSK_WITH_AES_128_GCM_SHA256", Psk, Aead),
        (0x00A9, "TLS_PSK_WITH_AES_256_GCM_SHA384", Psk, Aead),
        (0xCCAB, "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256", Psk, Aead),
        (0x00AA, "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256", EphemeralPsk, Aead),
        (0x00AB, "TLS_DHE_PSK_WITH_AES_256_GCM_SHA384", EphemeralPsk, Aead),
        (0xCCAD, "TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256", EphemeralPsk, Aead),
        (0xC035, "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA", EphemeralPsk, Cbc),
        (0xC036, "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA", EphemeralPsk, Cbc),
        (0xCCAC, "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256", EphemeralPsk, Aead),
    ]
};

impl CipherSuite {
    fn entry(self) -> Option<&'static (u16, &'static str, KeyExchange, Bulk)> {
        SUITES.iter().find(|s| s.0 == self.0)
    }

    /// The IANA name, or `None` for a suite not in the table.
    pub fn name(self) -> Option<&'static str> {
        self.entry().map(|s| s.1)
    }

    pub fn key_exchange(self) -> KeyExchange {
        self.entry().map_or(KeyExchange::Unknown, |s| s.2)
    }

    /// `Some(true)` for RC4, 3DES, NULL; `None` when the suite is unknown.
    pub fn broken_bulk(self) -> Option<bool> {
        self.entry().map(|s| s.3 == Bulk::Broken)
    }

    /// TLS 1.3 suites (RFC 8446 §B.4) are only ever negotiated by TLS 1.3.
    fn is_tls13(self) -> bool {
        (0x1301..=0x1305).contains(&self.0)
    }
}

impl Serialize for CipherSuite {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.name() {
            Some(name) => s.serialize_str(name),
            None => s.serialize_str(&format!("0x{:04X}", self.0)),
        }
    }
}

/// What the `ServerHello` of a connection negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TlsSession {
    pub version: TlsVersion,
    pub cipher: CipherSuite,
}

/// Why a connection's handshake was not read (bounded set: a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// A record that is not a handshake, or whose header is impossible.
    NotHandshake,
    /// The server answered with an alert (handshake refused).
    Alert,
    /// A handshake message other than `ServerHello` came first, or a malformed one.
    Malformed,
    /// Longer than the bounds before a decision.
    TooLong,
    /// Bytes of the direction were not captured.
    Lost,
}

impl Unread {
    pub fn as_str(self) -> &'static str {
        match self {
            Unread::NotHandshake => "not_handshake",
            Unread::Alert => "alert",
            Unread::Malformed => "malformed",
            Unread::TooLong => "too_long",
            Unread::Lost => "lost",
        }
    }
}

/// What a [`HelloReader`] concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hello {
    Negotiated(TlsSession),
    Unread(Unread),
}

/// Reads the server-to-client bytes of one connection until its `ServerHello` is decoded.
#[derive(Debug, Default)]
pub struct HelloReader {
    header: [u8; 5],
    header_len: usize,
    /// Fragment bytes left in the current handshake record (0: a header comes next).
    record_left: usize,
    /// Handshake message bytes so far (bounded by [`MAX_HELLO_BYTES`]).
    message: Vec<u8>,
    consumed: usize,
    outcome: Option<Hello>,
}

impl HelloReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// The conclusion, once there is one.
    pub fn outcome(&self) -> Option<Hello> {
        self.outcome
    }

    /// Reads the next bytes of the direction. Returns the conclusion when this call reached
    /// it (later calls return `None` and read nothing).
    pub fn feed(&mut self, mut bytes: &[u8]) -> Option<Hello> {
        if self.outcome.is_some() {
            return None;
        }
        while !bytes.is_empty() {
            if self.consumed >= MAX_SNIFF_BYTES {
                return self.conclude(Hello::Unread(Unread::TooLong));
            }
            let room = (MAX_SNIFF_BYTES - self.consumed).min(bytes.len());
            if self.record_left == 0 {
                let take = (5 - self.header_len).min(room);
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&bytes[..take]);
                self.header_len += take;
                self.consumed += take;
                bytes = &bytes[take..];
                if self.header_len < 5 {
                    continue;
                }
                self.header_len = 0;
                if let Err(why) = self.start_record() {
                    return self.conclude(Hello::Unread(why));
                }
                continue;
            }
            let take = self.record_left.min(room);
            let keep = take.min(MAX_HELLO_BYTES.saturating_sub(self.message.len()));
            self.message.extend_from_slice(&bytes[..keep]);
            self.record_left -= take;
            self.consumed += take;
            bytes = &bytes[take..];
            if let Some(hello) = self.try_decode() {
                return self.conclude(hello);
            }
            if keep < take {
                return self.conclude(Hello::Unread(Unread::TooLong));
            }
        }
        None
    }

    /// Bytes of the direction were lost, or no more will come (the capture budget ended, the
    /// plaintext began, the connection closed): concludes from what is in hand.
    pub fn end(&mut self) -> Option<Hello> {
        if self.outcome.is_some() {
            return None;
        }
        let hello = match self.fixed() {
            Ok(Some(f)) => Hello::Negotiated(TlsSession {
                version: inferred(f.legacy, f.cipher),
                cipher: f.cipher,
            }),
            Ok(None) => Hello::Unread(Unread::Lost),
            Err(why) => Hello::Unread(why),
        };
        self.conclude(hello)
    }

    fn conclude(&mut self, hello: Hello) -> Option<Hello> {
        self.outcome = Some(hello);
        self.message = Vec::new();
        Some(hello)
    }

    /// Checks the record header just read.
    fn start_record(&mut self) -> Result<(), Unread> {
        let [content, major, _minor, hi, lo] = self.header;
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if major != 3 || len == 0 || len > MAX_RECORD_LEN {
            return Err(Unread::NotHandshake);
        }
        match content {
            CONTENT_HANDSHAKE => {
                self.record_left = len;
                Ok(())
            }
            CONTENT_ALERT => Err(Unread::Alert),
            _ => Err(Unread::NotHandshake),
        }
    }

    /// The fixed fields up to the cipher suite, once they are in (`Ok(None)` before).
    fn fixed(&self) -> Result<Option<Fixed>, Unread> {
        let m = &self.message;
        let [kind, a, b, c, ..] = m[..] else {
            return Ok(None);
        };
        if kind != HANDSHAKE_SERVER_HELLO {
            return Err(Unread::Malformed);
        }
        let body_len = (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c);
        // version(2) random(32) session_id_len(1) … cipher(2) compression(1)
        if body_len < 38 {
            return Err(Unread::Malformed);
        }
        let body = &m[4..];
        let Some(&sid_len) = body.get(34) else {
            return Ok(None);
        };
        let sid_len = usize::from(sid_len);
        if sid_len > 32 || body_len < 38 + sid_len {
            return Err(Unread::Malformed);
        }
        let at = 35 + sid_len;
        let (Some(&c0), Some(&c1)) = (body.get(at), body.get(at + 1)) else {
            return Ok(None);
        };
        Ok(Some(Fixed {
            legacy: TlsVersion(u16::from_be_bytes([body[0], body[1]])),
            cipher: CipherSuite(u16::from_be_bytes([c0, c1])),
            extensions_at: 4 + at + 3,
            end: 4 + body_len,
        }))
    }

    /// Decodes the `ServerHello` once enough of it is in: `None` while more is needed.
    fn try_decode(&self) -> Option<Hello> {
        let f = match self.fixed() {
            Ok(Some(f)) => f,
            Ok(None) => return None,
            Err(why) => return Some(Hello::Unread(why)),
        };
        let m = &self.message;
        // The whole message in hand: `supported_versions` is authoritative. Otherwise (a long
        // hello beyond what is kept) a TLS 1.3 suite implies TLS 1.3 and any other suite the
        // legacy version: what a conforming server negotiated.
        let version = match m.get(f.extensions_at.min(f.end)..f.end) {
            Some(rest) => match supported_version(rest) {
                Ok(Some(v)) => v,
                Ok(None) => inferred(f.legacy, f.cipher),
                Err(()) => return Some(Hello::Unread(Unread::Malformed)),
            },
            None if m.len() < MAX_HELLO_BYTES => return None,
            None => inferred(f.legacy, f.cipher),
        };
        Some(Hello::Negotiated(TlsSession {
            version,
            cipher: f.cipher,
        }))
    }
}

/// A `ServerHello`'s fields up to its cipher suite, and where the rest lies in the message.
struct Fixed {
    legacy: TlsVersion,
    cipher: CipherSuite,
    extensions_at: usize,
    end: usize,
}

fn inferred(legacy: TlsVersion, cipher: CipherSuite) -> TlsVersion {
    if cipher.is_tls13() {
        TlsVersion::TLS1_3
    } else {
        legacy
    }
}

/// The version in a `ServerHello`'s `supported_versions` extension, from the bytes after
/// the compression method (`Err` when the extension block is malformed).
fn supported_version(rest: &[u8]) -> Result<Option<TlsVersion>, ()> {
    if rest.is_empty() {
        return Ok(None); // no extensions (TLS ≤ 1.2 servers may omit the block)
    }
    let [hi, lo, exts @ ..] = rest else {
        return Err(());
    };
    let total = usize::from(u16::from_be_bytes([*hi, *lo]));
    let mut exts = exts.get(..total).ok_or(())?;
    while !exts.is_empty() {
        let [t0, t1, l0, l1, tail @ ..] = exts else {
            return Err(());
        };
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let data = tail.get(..len).ok_or(())?;
        if u16::from_be_bytes([*t0, *t1]) == EXT_SUPPORTED_VERSIONS {
            return match data {
                [v0, v1] => Ok(Some(TlsVersion(u16::from_be_bytes([*v0, *v1])))),
                _ => Err(()),
            };
        }
        exts = &tail[len..];
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
