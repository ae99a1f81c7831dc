//! The one-pass field parser ([`head::parse_head_after`]) against `httparse` and
//! `build_head` ([`head::parse_head_after_httparse`]): the same head, or the same error,
//! for every head of the llhttp corpus cut at every byte, and for random hostile heads.

use serde_json::Value;

use crate::http::head::{self, Head, StartLine};
use crate::http::message::MessageKind;
use crate::testutil::{shared_dir, Rng};

use super::corpus::base64_decode;

/// Header text limits: the default, and two that cut fields off mid-head.
const LIMITS: [usize; 3] = [8192, 64, 31];

/// Both parsers on `buf` (its start line, `start_len` bytes, parsed as `start`): equal
/// `Debug` output, `Ok` or `Err`. The fields parsed where they arrived (CRLF only) give the
/// same head whenever they give one; returns whether they did.
fn agree(start: &StartLine, start_len: usize, buf: &[u8]) -> bool {
    let mut direct_taken = false;
    for max_text in LIMITS {
        // The text counted as retained, besides what `Debug` shows.
        let seen = |parsed: &Result<Head, StartLine>| {
            let text_len = parsed.as_ref().map(|h| h.headers.text_len());
            format!("{parsed:?} {text_len:?}")
        };
        let reference = head::parse_head_after_httparse(start.clone(), start_len, buf, max_text);
        let reference = seen(&reference);
        let one_pass = head::parse_head_after(start.clone(), start_len, buf, max_text);
        assert_eq!(
            seen(&one_pass),
            reference,
            "{:?} limit {max_text}",
            String::from_utf8_lossy(buf)
        );
        if let Some(fields) = head::parse_fields_direct(start, &buf[start_len..], max_text) {
            direct_taken = true;
            let direct = Ok(fields.into_head(start.clone(), start_len));
            assert_eq!(
                seen(&direct),
                reference,
                "direct: {:?} limit {max_text}",
                String::from_utf8_lossy(buf)
            );
        }
    }
    direct_taken
}

/// Every start line in `raw` (at its start or after any LF) that parses as `kind`, with
/// every end of the bytes after it.
/// Returns the heads and the cuts the direct parse took.
fn agree_on_every_cut(kind: MessageKind, raw: &[u8]) -> (usize, usize) {
    let line_starts = std::iter::once(0).chain(
        raw.iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .map(|(i, _)| i + 1),
    );
    let (mut heads, mut direct) = (0, 0);
    for from in line_starts {
        let rest = &raw[from..];
        let Some(line_len) = rest.iter().position(|&b| b == b'\n').map(|i| i + 1) else {
            continue;
        };
        let Ok(start) = head::parse_start_line(kind, &rest[..line_len]) else {
            continue;
        };
        heads += 1;
        for end in line_len..=rest.len() {
            direct += usize::from(agree(&start, line_len, &rest[..end]));
        }
    }
    (heads, direct)
}

#[test]
fn llhttp_corpus_heads_cut_at_every_byte() {
    let (mut rows, mut heads, mut direct) = (0, 0, 0);
    for (file, kind) in [
        ("llhttp-requests.jsonl", MessageKind::Request),
        ("llhttp-responses.jsonl", MessageKind::Response),
    ] {
        let path = shared_dir().join("corpus/http").join(file);
        let text = std::fs::read_to_string(&path).expect("readable corpus file");
        for line in text.lines() {
            let row: Value = serde_json::from_str(line).expect("corpus row is JSON");
            let raw = base64_decode(row["raw_b64"].as_str().expect("raw_b64")).expect("base64");
            rows += 1;
            let (found, taken) = agree_on_every_cut(kind, &raw);
            heads += found;
            direct += taken;
        }
    }
    assert!(rows >= 214, "{rows} rows");
    assert!(heads >= 200, "{heads} heads");
    assert!(direct >= 1000, "{direct} cuts parsed directly");
}

/// Pieces of field lines, hostile ones included: obs-fold, bare CR and LF, NUL, DEL,
/// UTF-8 and bytes that are not, whitespace around names and values, framing fields.
const PIECES: &[&[u8]] = &[
    b"Host",
    b"host",
    b"Content-Length",
    b"Transfer-Encoding",
    b"Connection",
    b"Upgrade",
    b"X-A",
    b"a",
    b": ",
    b":",
    b" :",
    b"\t",
    b" ",
    b"  ",
    b"\r\n",
    b"\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n ",
    b"\r\n\t",
    b"\0",
    b"\x7f",
    b"\x01",
    b"\x1f",
    b"close",
    b"keep-alive, close",
    b"Keep-Alive",
    b"chunked",
    b"gzip, chunked",
    b"12",
    b"12, 12",
    b"x.example",
    b"caf\xc3\xa9",
    b"\xe2\x80\xa6",
    b"\xff",
    b"\xc3",
    b"\x80",
    b"(){}[]<>@,;=?/\"\\",
    b"!#$%&'*+-.^_`|~",
    b"0123456789abcdefghijklmnop",
];

#[test]
fn random_hostile_heads() {
    let mut rng = Rng(0x5eed_f1e1_d5e5);
    let starts: [(&[u8], MessageKind); 3] = [
        (b"GET /a?b HTTP/1.1\r\n", MessageKind::Request),
        (b"POST / HTTP/1.0\r\n", MessageKind::Request),
        (b"HTTP/1.1 200 OK\r\n", MessageKind::Response),
    ];
    let mut buf = Vec::new();
    let mut direct = 0;
    for round in 0..20_000 {
        let (line, kind) = starts[round % starts.len()];
        buf.clear();
        buf.extend_from_slice(line);
        let pieces = rng.below(40);
        for _ in 0..pieces {
            let piece = PIECES[rng.below(PIECES.len() as u64) as usize];
            // Now and then a long run of one piece (long lines, many fields).
            let times = if rng.below(50) == 0 {
                rng.below(200)
            } else {
                1
            };
            for _ in 0..times {
                buf.extend_from_slice(piece);
            }
        }
        // Mostly a head that ends, as the line scan hands over.
        if rng.below(4) != 0 {
            buf.extend_from_slice(b"\r\n\r\n");
        }
        let start = head::parse_start_line(kind, line).expect("valid start line");
        direct += usize::from(agree(&start, line.len(), &buf));
        // And well-formed fields with random values, so that most heads parse.
        buf.truncate(line.len());
        for _ in 0..rng.below(12) {
            buf.extend_from_slice(PIECES[rng.below(8) as usize]);
            buf.extend_from_slice(b": ");
            for _ in 0..rng.below(4) {
                let piece = PIECES[25 + rng.below(16) as usize];
                buf.extend_from_slice(piece);
            }
            buf.extend_from_slice(if rng.below(8) == 0 { b" \r\n" } else { b"\r\n" });
        }
        buf.extend_from_slice(b"\r\n");
        direct += usize::from(agree(&start, line.len(), &buf));
    }
    assert!(direct >= 5_000, "{direct} heads parsed directly");
}

/// Every value byte, alone and in a run longer than a word, in every position of an
/// eight-byte block.
#[test]
fn every_value_byte_at_every_offset() {
    let line: &[u8] = b"GET / HTTP/1.1\r\n";
    let start = head::parse_start_line(MessageKind::Request, line).expect("valid start line");
    let mut buf = Vec::new();
    for b in 0..=255u8 {
        for lead in 0..10 {
            for run in [1, 9] {
                buf.clear();
                buf.extend_from_slice(line);
                buf.extend_from_slice(b"X: ");
                buf.extend(std::iter::repeat_n(b'v', lead));
                buf.extend(std::iter::repeat_n(b, run));
                buf.extend_from_slice(b"w\r\n\r\n");
                agree(&start, line.len(), &buf);
            }
        }
    }
}

/// `parse_start_line` (its common shapes, else `httparse`) against `httparse` alone, as
/// both kinds: every line of every corpus row (to its LF), every prefix of them ending in
/// CRLF, and random lines from start-line pieces.
#[test]
fn start_lines_as_httparse() {
    let agree_line = |line: &[u8]| {
        for kind in [MessageKind::Request, MessageKind::Response] {
            assert_eq!(
                head::parse_start_line(kind, line),
                head::parse_start_line_httparse(kind, line),
                "{kind:?} {:?}",
                String::from_utf8_lossy(line)
            );
        }
    };
    let mut lines = 0;
    for file in ["llhttp-requests.jsonl", "llhttp-responses.jsonl"] {
        let path = shared_dir().join("corpus/http").join(file);
        let text = std::fs::read_to_string(&path).expect("readable corpus file");
        for row in text.lines() {
            let row: Value = serde_json::from_str(row).expect("corpus row is JSON");
            let raw = base64_decode(row["raw_b64"].as_str().expect("raw_b64")).expect("base64");
            for line in raw.split_inclusive(|&b| b == b'\n') {
                lines += 1;
                agree_line(line);
                if let Some(body) = line.strip_suffix(b"\r\n") {
                    for end in 0..body.len() {
                        agree_line(&[&body[..end], b"\r\n".as_slice()].concat());
                    }
                }
            }
        }
    }
    assert!(lines > 1000, "{lines} lines");
    let pieces: &[&[u8]] = &[
        b"GET",
        b"POST",
        b"get",
        b"M-SEARCH",
        b"A",
        b" ",
        b"  ",
        b"\t",
        b"/",
        b"/a?b=c",
        b"*",
        b"http://h/p",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"HTTP/2.0",
        b"HTTP/1.",
        b"HTTP/11",
        b"200",
        b"20",
        b"2000",
        b"OK",
        b"Not Found",
        b"\r",
        b"\n",
        b"\0",
        b"\x7f",
        b"\x80",
        b"caf\xc3\xa9",
        b"\xff",
        b"\x01",
    ];
    let mut rng = Rng(0x57a2_71e5_0f0f_1e5e);
    let mut line = Vec::new();
    for _ in 0..50_000 {
        line.clear();
        for _ in 0..1 + rng.below(7) {
            line.extend_from_slice(pieces[rng.below(pieces.len() as u64) as usize]);
        }
        line.extend_from_slice(match rng.below(4) {
            0 => b"\n".as_slice(),
            _ => b"\r\n",
        });
        agree_line(&line);
    }
    // The common shapes themselves, with every byte in each place.
    for b in 0..=255u8 {
        let lines: [Vec<u8>; 6] = [
            [b"GET /".as_slice(), &[b], b" HTTP/1.1\r\n"].concat(),
            [[b].as_slice(), b"ET / HTTP/1.1\r\n"].concat(),
            [b"GET / HTTP/1.".as_slice(), &[b], b"\r\n"].concat(),
            [b"HTTP/1.1 200 O".as_slice(), &[b], b"\r\n"].concat(),
            [b"HTTP/1.1 20".as_slice(), &[b], b" OK\r\n"].concat(),
            [b"HTTP/1.1 200".as_slice(), &[b], b"\r\n"].concat(),
        ];
        for line in lines {
            agree_line(&line[..]);
        }
    }
}
