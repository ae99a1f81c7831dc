//! Random bytes and random mutations of valid traffic, cut at random places, with random
//! gaps: nothing panics and memory stays within the limits.

use crate::http::{HttpConnection, HttpLimits, Stream};

/// xorshift64* — deterministic, good enough to pick cuts and mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

const REQUESTS: &[&[u8]] = &[
    b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    b"PUT /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"CONNECT h:443 HTTP/1.1\r\n\r\n",
    b"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
];

const RESPONSES: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\nuntil close",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
];

const INTERESTING: &[u8] = b"\r\n :;0123456789abcdefABCDEF\t\"\\\x00\xff-";

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        let byte = if rng.chance(2) {
            INTERESTING[rng.below(INTERESTING.len())]
        } else {
            rng.next() as u8
        };
        match rng.below(4) {
            0 => data.insert(at, byte),
            1 if at < data.len() => {
                data.remove(at);
            }
            2 if at < data.len() => data[at] = byte,
            _ => {
                // Repeat a slice, e.g. to make digits overflow or heads grow.
                let end = (at + rng.below(16)).min(data.len());
                let copy = data[at..end].repeat(1 + rng.below(64));
                data.splice(at..at, copy);
            }
        }
    }
}

fn traffic(rng: &mut Rng, pool: &[&[u8]]) -> Vec<u8> {
    let mut data = Vec::new();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 => data.extend((0..rng.below(200)).map(|_| rng.next() as u8)),
            1 | 2 => {
                let mut m = pool[rng.below(pool.len())].to_vec();
                mutate(rng, &mut m);
                data.extend(m);
            }
            _ => data.extend_from_slice(pool[rng.below(pool.len())]),
        }
    }
    data
}

#[test]
fn random_input_never_panics_and_stays_bounded() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut exchanges = 0usize;
    for round in 0..2000 {
        let limits = if round % 2 == 0 {
            HttpLimits::default()
        } else {
            HttpLimits {
                max_header_bytes: 16 + rng.below(128),
                max_body_capture_bytes: rng.below(8),
                max_pipelined: 1 + rng.below(3),
                ..HttpLimits::default()
            }
        };
        let mut conn = HttpConnection::new(limits);
        let mut out = Vec::new();
        let streams = [
            (Stream::Request, traffic(&mut rng, REQUESTS)),
            (Stream::Response, traffic(&mut rng, RESPONSES)),
        ];
        let mut offsets = [0usize; 2];
        while offsets.iter().zip(&streams).any(|(o, (_, d))| *o < d.len()) {
            let which = rng.below(2);
            let (stream, data) = &streams[which];
            let start = offsets[which];
            let end = (start + 1 + rng.below(40)).min(data.len());
            if start >= end {
                continue;
            }
            if rng.chance(25) {
                conn.gap(*stream, (end - start) as u64, round, &mut out);
            } else {
                conn.feed(*stream, &data[start..end], round, &mut out);
            }
            offsets[which] = end;
            assert!(
                conn.buffered_bytes() <= limits.max_buffered_bytes(),
                "round {round}"
            );
        }
        let errors = conn.parse_errors();
        conn.close(round, &mut out);
        assert!(conn.parse_errors() >= errors);
        assert_eq!(conn.buffered_bytes(), 0, "round {round}");
        for ex in &out {
            assert!(ex.request_body.len() <= limits.max_body_capture_bytes);
            assert!(ex.response_body.len() <= limits.max_body_capture_bytes);
            assert!(ex.request_body.len() as u64 <= ex.request_body_bytes);
        }
        exchanges += out.len();
    }
    // The generator must exercise pairing, not only rejection.
    assert!(exchanges > 1000, "only {exchanges} exchanges");
}

/// Feeds `events` (stream, data, gap-instead) and returns a fingerprint of everything
/// observable; `cut` splits each data event further.
fn observe(
    events: &[(Stream, Vec<u8>, bool)],
    limits: HttpLimits,
    mut cut: impl FnMut(&[u8]) -> Vec<&[u8]>,
) -> String {
    let mut conn = HttpConnection::new(limits);
    let mut out = Vec::new();
    let mut trace = Vec::new();
    for (i, (stream, data, gap)) in events.iter().enumerate() {
        if *gap {
            conn.gap(*stream, data.len() as u64, i as u64, &mut out);
        } else {
            for piece in cut(data) {
                conn.feed(*stream, piece, i as u64, &mut out);
            }
        }
        trace.push((out.len(), conn.parse_errors(), conn.state()));
    }
    conn.close(u64::MAX, &mut out);
    format!(
        "{out:?} {trace:?} {} {:?}",
        conn.parse_errors(),
        conn.state()
    )
}

#[test]
fn random_traffic_is_split_invariant() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for round in 0..2000 {
        let limits = HttpLimits {
            max_header_bytes: 64 + rng.below(256),
            max_body_capture_bytes: rng.below(16),
            max_pipelined: 1 + rng.below(4),
            ..HttpLimits::default()
        };
        let requests = traffic(&mut rng, REQUESTS);
        let responses = traffic(&mut rng, RESPONSES);
        // Interleave the two streams in random events, some of them lost.
        let mut events = Vec::new();
        let (mut q, mut r) = (&requests[..], &responses[..]);
        while !q.is_empty() || !r.is_empty() {
            let (stream, rest) = if r.is_empty() || (!q.is_empty() && rng.chance(2)) {
                (Stream::Request, &mut q)
            } else {
                (Stream::Response, &mut r)
            };
            let (event, tail) = rest.split_at((1 + rng.below(64)).min(rest.len()));
            events.push((stream, event.to_vec(), rng.chance(30)));
            *rest = tail;
        }
        let whole = observe(&events, limits, |d| vec![d]);
        let bytewise = observe(&events, limits, |d| d.chunks(1).collect());
        assert_eq!(whole, bytewise, "round {round}: one byte at a time");
        let mut cuts = Rng(rng.next() | 1);
        let random = observe(&events, limits, |d| {
            let mut pieces = Vec::new();
            let mut rest = d;
            while !rest.is_empty() {
                let (a, b) = rest.split_at((1 + cuts.below(8)).min(rest.len()));
                pieces.push(a);
                rest = b;
            }
            pieces
        });
        assert_eq!(whole, random, "round {round}: random cuts");
    }
}
