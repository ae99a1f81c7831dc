//! Recorded `ServerHello` records (Debian 12's OpenSSL 3.0 through python's `ssl`, memory
//! BIOs), then hostile bytes.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// TLS 1.3, TLS_AES_256_GCM_SHA384, X25519 key share.
const TLS13: &str = "160303007a020000760303f755c275c4a3d6c535fae273660e2b5c50d0d601b742b5379e6b5c93119328f120cd0752047be79dced1f26ef2b0e6e9bfa2c138842c6eb638be95df2c10329993130200002e002b0002030400330024001d002086c27074895b63e7c1de563525e84f933846471b718f164fa8bce7a3fe7f3d20";
/// TLS 1.2, ECDHE-RSA-AES128-GCM-SHA256.
const TLS12_ECDHE: &str = "16030300410200003d0303ed9d2d8b2587dd01df55f9a5e7f27a272153da96e6c8f216dcc7c8b3d5f12a1200c02f000015ff01000100000b0004030001020023000000170000";
/// TLS 1.2, AES128-SHA (RSA key transport), `@SECLEVEL=0`.
const TLS12_RSA: &str = "160303003d020000390303d209f0a9beb8c2a6fe3f06fe209fa7bb64e3fb258e48c3c4fbe58626b74979ca00002f000011ff01000100002300000016000000170000";
/// TLS 1.1, ECDHE-RSA-AES256-SHA, `@SECLEVEL=0`.
const TLS11: &str = "1603020045020000410302877408afc2fac725b9bce4901d2ff480a8a4427962237958e3670fde1b6049b000c014000019ff01000100000b000403000102002300000016000000170000";

/// A ChangeCipherSpec and the start of an encrypted record, as follow a TLS 1.3 hello.
const AFTER: &[u8] = b"\x14\x03\x03\x00\x01\x01\x17\x03\x03\x04\x00secret";

fn read(bytes: &[u8]) -> Option<Hello> {
    let mut r = HelloReader::new();
    r.feed(bytes).or(r.outcome())
}

fn negotiated(version: u16, cipher: u16) -> Option<Hello> {
    Some(Hello::Negotiated(TlsSession {
        version: TlsVersion(version),
        cipher: CipherSuite(cipher),
    }))
}

#[test]
fn recorded_server_hellos() {
    let cases = [
        (
            TLS13,
            0x0304,
            0x1302,
            "TLS_AES_256_GCM_SHA384",
            KeyExchange::Tls13,
        ),
        (
            TLS12_ECDHE,
            0x0303,
            0xC02F,
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            KeyExchange::Ecdhe,
        ),
        (
            TLS12_RSA,
            0x0303,
            0x002F,
            "TLS_RSA_WITH_AES_128_CBC_SHA",
            KeyExchange::Rsa,
        ),
        (
            TLS11,
            0x0302,
            0xC014,
            "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
            KeyExchange::Ecdhe,
        ),
    ];
    for (record, version, cipher, name, kx) in cases {
        let mut bytes = hex(record);
        bytes.extend_from_slice(AFTER);
        assert_eq!(read(&bytes), negotiated(version, cipher), "{name}");
        assert_eq!(CipherSuite(cipher).name(), Some(name));
        assert_eq!(CipherSuite(cipher).key_exchange(), kx);
    }
    assert_eq!(TlsVersion(0x0302).as_str(), "tls1.1");
    assert_eq!(KeyExchange::Rsa.forward_secrecy(), Some(false));
    assert_eq!(KeyExchange::Tls13.forward_secrecy(), Some(true));
    assert_eq!(KeyExchange::Unknown.forward_secrecy(), None);
    assert_eq!(
        serde_json::to_string(&TlsSession {
            version: TlsVersion(0x0304),
            cipher: CipherSuite(0xABCD)
        })
        .unwrap(),
        r#"{"version":"tls1.3","cipher":"0xABCD"}"#
    );
}

#[test]
fn every_split_gives_the_same_answer() {
    for record in [TLS13, TLS12_ECDHE, TLS12_RSA, TLS11] {
        let mut bytes = hex(record);
        bytes.extend_from_slice(AFTER);
        let whole = read(&bytes);
        for cut in 0..=bytes.len() {
            let mut r = HelloReader::new();
            let first = r.feed(&bytes[..cut]);
            let second = r.feed(&bytes[cut..]);
            assert_eq!(first.or(second), whole, "cut at {cut}");
            assert_eq!(r.outcome(), whole);
        }
        // One byte at a time.
        let mut r = HelloReader::new();
        let answers: Vec<_> = bytes.iter().filter_map(|b| r.feed(&[*b])).collect();
        assert_eq!(answers.len(), 1);
        assert_eq!(Some(answers[0]), whole);
    }
}

#[test]
fn a_hello_split_over_records_is_reassembled() {
    let record = hex(TLS13);
    let message = &record[5..];
    let mut bytes = Vec::new();
    for piece in message.chunks(7) {
        bytes.extend_from_slice(&[22, 3, 3, 0, piece.len() as u8]);
        bytes.extend_from_slice(piece);
    }
    assert_eq!(read(&bytes), negotiated(0x0304, 0x1302));
}

#[test]
fn truncated_hellos_wait_then_conclude_from_what_is_in_hand() {
    let record = hex(TLS12_RSA);
    for cut in 0..record.len() {
        let mut r = HelloReader::new();
        assert_eq!(r.feed(&record[..cut]), None, "cut at {cut}");
        // Up to the cipher suite (5 + 4 + 35 + 0 + 2 bytes) the suite is known.
        let expected = if cut >= 46 {
            negotiated(0x0303, 0x002F)
        } else {
            Some(Hello::Unread(Unread::Lost))
        };
        assert_eq!(r.end(), expected, "cut at {cut}");
        assert_eq!(r.end(), None);
        assert_eq!(r.feed(&record[cut..]), None, "nothing after a conclusion");
    }
    // A TLS 1.3 hello cut before its extensions: the suite says TLS 1.3.
    let record = hex(TLS13);
    let mut r = HelloReader::new();
    assert_eq!(r.feed(&record[..80]), None);
    assert_eq!(r.end(), negotiated(0x0304, 0x1302));
}

#[test]
fn hostile_bytes_conclude_without_panicking() {
    let unread = |why| Some(Hello::Unread(why));
    // Not TLS at all, or not a handshake.
    assert_eq!(read(b"HTTP/1.1 200 OK\r\n"), unread(Unread::NotHandshake));
    assert_eq!(read(b"\x17\x03\x03\x00\x10"), unread(Unread::NotHandshake));
    assert_eq!(read(b"\x15\x03\x03\x00\x02\x02\x28"), unread(Unread::Alert));
    // Impossible record lengths.
    assert_eq!(read(b"\x16\x03\x03\x00\x00"), unread(Unread::NotHandshake));
    assert_eq!(read(b"\x16\x03\x03\xff\xff"), unread(Unread::NotHandshake));
    assert_eq!(read(b"\x16\x02\x03\x00\x10"), unread(Unread::NotHandshake));
    // A ClientHello where a ServerHello belongs.
    assert_eq!(
        read(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"),
        unread(Unread::Malformed)
    );
    // A ServerHello claiming a body too short for its fields, or a 255-byte session id.
    let mut short = hex(TLS12_RSA);
    short[8] = 20;
    assert_eq!(read(&short), unread(Unread::Malformed));
    let mut sid = hex(TLS12_RSA);
    sid[5 + 4 + 34] = 0xff;
    assert_eq!(read(&sid), unread(Unread::Malformed));
    // Extension lengths pointing past the message.
    let mut ext = hex(TLS13);
    let at = 5 + 4 + 35 + 32 + 3;
    ext[at] = 0xff;
    assert_eq!(read(&ext), unread(Unread::Malformed));
    let mut ext = hex(TLS13);
    ext[at + 2 + 2] = 0xff;
    assert_eq!(read(&ext), unread(Unread::Malformed));
    // A 16 MB handshake message: kept only up to the bound, then concluded from the suite.
    let mut huge = hex(TLS12_RSA);
    huge[6..9].copy_from_slice(&[0xff, 0xff, 0xff]);
    huge.truncate(5 + 4 + 38);
    huge[3..5].copy_from_slice(&16_384u16.to_be_bytes());
    let mut r = HelloReader::new();
    assert_eq!(r.feed(&huge), None);
    let filler = vec![0u8; 16_384];
    let mut answer = None;
    for _ in 0..4 {
        answer = answer.or(r.feed(&filler));
    }
    assert_eq!(answer, negotiated(0x0303, 0x002F));
    // Endless tiny handshake records with nothing in them decide within the input bound.
    let mut r = HelloReader::new();
    let mut answer = None;
    for _ in 0..MAX_SNIFF_BYTES {
        answer = answer.or(r.feed(b"\x16\x03\x03\x00\x01\x02"));
    }
    assert!(answer.is_some());
    // Random bytes, every prefix.
    let mut x: u32 = 0x1234_5678;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    for start in [0u8, 22] {
        let mut bytes = vec![start, 3, 3, 0x10, 0];
        bytes.extend_from_slice(&noise);
        let _ = read(&bytes);
        let mut r = HelloReader::new();
        for b in &bytes {
            let _ = r.feed(std::slice::from_ref(b));
        }
        let _ = r.end();
    }
}
