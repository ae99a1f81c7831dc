use super::*;
use crate::testutil::Rng;

/// Every event of `body`, and how the tokenizer ended.
fn events(body: &[u8], dialect: Dialect, max_depth: usize) -> (Vec<Event<'_>>, Result<(), Error>) {
    let mut t = Tokenizer::new(body, dialect, max_depth);
    let mut out = Vec::new();
    loop {
        match t.next() {
            Ok(Some(ev)) => out.push(ev),
            Ok(None) => return (out, Ok(())),
            Err(e) => return (out, Err(e)),
        }
    }
}

fn tokens(body: &str, dialect: Dialect) -> (Vec<Token<'_>>, Result<(), Error>) {
    let (evs, end) = events(body.as_bytes(), dialect, 32);
    (evs.into_iter().map(|e| e.token).collect(), end)
}

fn s(raw: &str) -> Str<'_> {
    Str::from_raw(raw.as_bytes())
}

#[test]
fn events_and_offsets() {
    let body = br#" {"a": [1, -2.5e3, "x\n"], "b": {}, "c": true, "d": null} "#;
    let (evs, end) = events(body, Dialect::Strict, 32);
    assert_eq!(end, Ok(()));
    let got: Vec<(Token<'_>, &str)> = evs
        .iter()
        .map(|e| (e.token, std::str::from_utf8(&body[e.start..e.end]).unwrap()))
        .collect();
    let num = |raw: &'static str, integer| {
        Token::Number(Number {
            raw: raw.as_bytes(),
            integer,
        })
    };
    assert_eq!(
        got,
        [
            (Token::ObjectStart, "{"),
            (Token::Key(s("a")), "\"a\""),
            (Token::ArrayStart, "["),
            (num("1", true), "1"),
            (num("-2.5e3", false), "-2.5e3"),
            (Token::String(s(r"x\n")), r#""x\n""#),
            (Token::ArrayEnd, "]"),
            (Token::Key(s("b")), "\"b\""),
            (Token::ObjectStart, "{"),
            (Token::ObjectEnd, "}"),
            (Token::Key(s("c")), "\"c\""),
            (Token::Bool(true), "true"),
            (Token::Key(s("d")), "\"d\""),
            (Token::Null, "null"),
            (Token::ObjectEnd, "}"),
        ]
    );
    // Done stays done.
    let mut t = Tokenizer::new(b"1 ", Dialect::Strict, 1);
    assert!(t.next().unwrap().is_some());
    assert_eq!((t.next(), t.next()), (Ok(None), Ok(None)));
    assert_eq!(t.offset(), 2);
}

#[test]
fn strict_grammar() {
    for good in [
        "0",
        "-0",
        "1.5",
        "1e5",
        "1E+5",
        "1e-5",
        "-0.0e0",
        r#""""#,
        "[]",
        "{}",
        "[[],{}]",
        r#"{"a":{"b":[1,2]}}"#,
        r#""\"\\\/\b\f\n\r\t\u00e9""#,
        " \t\r\n1\n",
    ] {
        assert_eq!(tokens(good, Dialect::Strict).1, Ok(()), "{good}");
    }
    for (bad, err) in [
        ("", Error::Truncated(0)),
        ("01", Error::Syntax(0)),
        ("-01", Error::Syntax(0)),
        ("1.", Error::Truncated(2)),
        ("1.x", Error::Syntax(2)),
        ("-", Error::Truncated(1)),
        ("+1", Error::Syntax(0)),
        (".5", Error::Syntax(0)),
        ("1e", Error::Truncated(2)),
        ("tru", Error::Truncated(3)),
        ("trux", Error::Syntax(0)),
        ("nul", Error::Truncated(3)),
        ("truex", Error::Trailing(4)),
        ("[1 2]", Error::Syntax(3)),
        ("[1,]", Error::Syntax(3)),
        ("[,1]", Error::Syntax(1)),
        (r#"{"a" 1}"#, Error::Syntax(5)),
        (r#"{"a":1,}"#, Error::Syntax(7)),
        (r#"{1:1}"#, Error::Syntax(1)),
        (r#"{"a":1]"#, Error::Syntax(6)),
        ("[1}", Error::Syntax(2)),
        ("{} x", Error::Trailing(3)),
        (r#""\x""#, Error::Escape(1)),
        (r#""\u12""#, Error::Escape(1)),
        (r#""\u12"#, Error::Truncated(5)),
        (r#""abc"#, Error::Truncated(4)),
        (r#""abc\"#, Error::Truncated(5)),
        ("]", Error::Syntax(0)),
    ] {
        assert_eq!(tokens(bad, Dialect::Strict).1, Err(err), "{bad}");
    }
    // An error sticks.
    let mut t = Tokenizer::new(b"[x", Dialect::Strict, 8);
    assert!(t.next().unwrap().is_some());
    assert_eq!(t.next(), Err(Error::Syntax(1)));
    assert_eq!(t.next(), Err(Error::Syntax(1)));
}

#[test]
fn lenient_dialect() {
    let (toks, end) = tokens(r#"[tru, nullx, 1.2.3, -, "\x\'"]"#, Dialect::Lenient);
    assert_eq!(end, Ok(()));
    assert_eq!(
        toks,
        [
            Token::ArrayStart,
            Token::Bool(true),
            Token::Null,
            Token::Number(Number {
                raw: b"1.2.3",
                integer: false
            }),
            Token::Number(Number {
                raw: b"-",
                integer: true
            }),
            Token::String(s(r"\x\'")),
            Token::ArrayEnd,
        ]
    );
    assert_eq!(s(r"\x\'").unescape_lossy(), "x'");
    // `\u` still needs four hex digits; other grammar is JSON's.
    assert_eq!(
        tokens(r#"["\u12"]"#, Dialect::Lenient).1,
        Err(Error::Escape(2))
    );
    assert_eq!(tokens("[x]", Dialect::Lenient).1, Err(Error::Syntax(1)));
    assert_eq!(tokens("[1 2]", Dialect::Lenient).1, Err(Error::Syntax(3)));
}

#[test]
fn unescaping() {
    // Lossy: as a tolerant reader.
    for (raw, want) in [
        ("plain", "plain"),
        (r"a\nb\t\u00e9\ud83d\ude00", "a\nb\té😀"),
        (r"\ud800x", "\u{fffd}x"),
        (r"\udc00", "\u{fffd}"),
        (r"\ud800\u0041", "\u{fffd}"),
        (r"\u0000", "\0"),
        (r#"\"\\\/"#, "\"\\/"),
    ] {
        assert_eq!(s(raw).unescape_lossy(), want, "{raw}");
    }
    assert!(matches!(
        s("plain").unescape_lossy(),
        Cow::Borrowed("plain")
    ));
    let bad_utf8 = Str::from_raw(b"a\xffb");
    assert_eq!(bad_utf8.unescape_lossy(), "a\u{fffd}b");
    assert_eq!(bad_utf8.plain(), None);
    assert_eq!(bad_utf8.unescape_strict(), None);
    // Strict: as serde_json.
    for raw in [
        "plain",
        r"a\nb\t\u00e9\ud83d\ude00",
        r"\ud800x",
        r"\udc00",
        r"\ud800\u0041",
        r"\ud800\ud800",
        r"\ud800\n",
        r"\x",
        "a\u{1}b",
        "a\u{7f}b",
        r"\u0000",
        r#"\"\\\/"#,
        r"\ud800",
        r"\u12",
    ] {
        let want = serde_json::from_str::<String>(&format!("\"{raw}\"")).ok();
        assert_eq!(s(raw).unescape_strict().map(Cow::into_owned), want, "{raw}");
    }
    assert_eq!(s("ok").plain(), Some("ok"));
    assert_eq!(s(r"o\k").plain(), None);
}

use std::borrow::Cow;

/// What serde_json accepts, through the tokenizer: strict grammar, serde's depth limit,
/// strict strings, finite numbers.
fn serde_equivalent(body: &[u8]) -> bool {
    let mut t = Tokenizer::new(body, Dialect::Strict, 127);
    loop {
        match t.next() {
            Ok(None) => return true,
            Err(_) => return false,
            Ok(Some(ev)) => match ev.token {
                Token::String(s) | Token::Key(s) => {
                    let Some(text) = s.unescape_strict() else {
                        return false;
                    };
                    let theirs: String = serde_json::from_slice(&body[ev.start..ev.end]).unwrap();
                    assert_eq!(text, theirs);
                }
                Token::Number(n) if serde_json::from_slice::<f64>(n.raw).is_err() => {
                    return false;
                }
                Token::TooDeep { .. } => return false,
                _ => {}
            },
        }
    }
}

/// A random document built from pieces that exercise the grammar's corners (and, for the
/// lenient readers, what lies beyond it).
fn random_doc(rng: &mut Rng, depth: u32, out: &mut Vec<u8>) {
    const SCALARS: &[&str] = &[
        "0",
        "-1",
        "12.5",
        "1e400",
        "-1E-400",
        "1.7976931348623157e308",
        "true",
        "false",
        "null",
        r#""""#,
        r#""a\"b""#,
        r#""\u00e9\ud83d\ude00""#,
        r#""\ud800""#,
        r#""\udc00x""#,
        "\"caf\u{e9}\"",
        "\"\\/\"",
        "123456789012345678901234567890",
        r#""2024-01-31""#,
        r#""a@example.com""#,
        r#""[{\"]""#,
        "tru",
        "1.2.3",
        r#""\x""#,
        r#""\ud800\u0041""#,
    ];
    match (depth, rng.below(4)) {
        (0, _) | (_, 0) => {
            let scalar = SCALARS[rng.below(SCALARS.len() as u64) as usize];
            out.extend_from_slice(scalar.as_bytes());
        }
        (_, 1) => {
            out.push(b'[');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(b',');
                }
                random_doc(rng, depth - 1, out);
            }
            out.push(b']');
        }
        _ => {
            out.extend_from_slice(b"{ ");
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.extend_from_slice(b" ,");
                }
                let key = ["id", "k", "17", "a@example.com", "x\\ny", ""][rng.below(6) as usize];
                out.extend_from_slice(format!("\"{key}{}\" : ", rng.below(3)).as_bytes());
                random_doc(rng, depth - 1, out);
            }
            out.push(b'}');
        }
    }
}

/// A random body for differential tests: a document, sometimes cut short or with one byte
/// replaced by something the grammar cares about.
pub(crate) fn random_body(rng: &mut Rng) -> Vec<u8> {
    let noise = b"{}[],:\"\\ 0-.eE+tfnux\x01\xff\xc3";
    let mut doc = Vec::new();
    random_doc(rng, 5, &mut doc);
    match rng.below(4) {
        0 => doc.truncate(rng.below(doc.len() as u64 + 1) as usize),
        1 if !doc.is_empty() => {
            let at = rng.below(doc.len() as u64) as usize;
            doc[at] = noise[rng.below(noise.len() as u64) as usize];
        }
        _ => {}
    }
    doc
}

/// Random documents, cut, and with bytes replaced by grammar characters: the strict
/// tokenizer plus strict strings and numbers accepts exactly what serde_json accepts, and
/// decodes every string as serde_json does.
#[test]
fn differential_against_serde_json() {
    let mut rng = Rng(0x5eed_1234);
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..20_000 {
        let doc = random_body(&mut rng);
        let ours = serde_equivalent(&doc);
        let theirs = serde_json::from_slice::<serde_json::Value>(&doc).is_ok();
        assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(&doc));
        if ours {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    assert!(accepted > 2000 && rejected > 2000, "{accepted} {rejected}");
    // serde_json's depth limit is 127 open containers.
    for n in [126, 127, 128, 129] {
        let doc = format!("{}{}", "[".repeat(n), "]".repeat(n));
        let theirs = serde_json::from_str::<serde_json::Value>(&doc).is_ok();
        assert_eq!(serde_equivalent(doc.as_bytes()), theirs, "{n}");
        assert_eq!(theirs, n <= 127);
    }
}

/// Cut at every byte: the events before the cut are those of the whole body (but for a
/// scalar the cut may shorten), and the cut body is reported cut short, not malformed.
#[test]
fn split_at_every_byte() {
    let body =
        br#"{"a": [1, {"b": null}, -2.5e3], "c": "2024-01-31", "d\u00e9": [true, false, "x\"y"]}"#;
    for dialect in [Dialect::Strict, Dialect::Lenient] {
        let (full, end) = events(body, dialect, 8);
        assert_eq!(end, Ok(()));
        for cut in 0..body.len() {
            let (evs, end) = events(&body[..cut], dialect, 8);
            let whole = evs.iter().filter(|e| e.end < cut).count();
            assert_eq!(evs[..whole], full[..whole], "{cut}");
            assert!(evs.len() <= whole + 1, "{cut}");
            assert_eq!(end, Err(Error::Truncated(cut)), "{cut}");
        }
    }
}

#[test]
fn hostile_depth_is_skipped_without_recursion() {
    let n = 1_000_000;
    let deep = format!("{}\"]\"{}", "[".repeat(n), "]".repeat(n));
    for max_depth in [0, 8, 200] {
        let (evs, end) = events(deep.as_bytes(), Dialect::Strict, max_depth);
        assert_eq!(end, Ok(()));
        assert_eq!(evs.len(), 2 * max_depth + 1);
        assert_eq!(evs[max_depth].token, Token::TooDeep { object: false });
    }
    // Open containers past the inline stack are tracked all the same.
    let mixed = format!("{}1{}", r#"{"a":["#.repeat(300), "]}".repeat(300));
    let (evs, end) = events(mixed.as_bytes(), Dialect::Strict, 1000);
    assert_eq!(end, Ok(()));
    assert_eq!(evs.len(), 300 * 5 + 1);
    let wrong = format!("{}1{}", r#"{"a":["#.repeat(300), "}]".repeat(300));
    assert_eq!(
        events(wrong.as_bytes(), Dialect::Strict, 1000).1,
        Err(Error::Syntax(1801))
    );
    // Unbalanced, whether skipped or not.
    let open = "[".repeat(n);
    for max_depth in [8, 200, 2_000_000] {
        let (_, end) = events(open.as_bytes(), Dialect::Lenient, max_depth);
        assert_eq!(end, Err(Error::Truncated(n)));
    }
}

#[test]
fn hostile_scalars_and_strings_cost_one_pass() {
    let digits = "9".repeat(1_000_000);
    let (evs, end) = events(digits.as_bytes(), Dialect::Strict, 8);
    assert_eq!((evs.len(), end), (1, Ok(())));
    let exp = format!("1e{digits}");
    assert_eq!(events(exp.as_bytes(), Dialect::Strict, 8).1, Ok(()));
    let escapes = format!("\"{}\"", r"\u0041".repeat(100_000));
    let (evs, _) = events(escapes.as_bytes(), Dialect::Strict, 8);
    let Token::String(s) = evs[0].token else {
        panic!("{:?}", evs[0]);
    };
    assert_eq!(s.unescape_strict().unwrap().len(), 100_000);
    let unterminated = format!("[\"{}", "\\\"".repeat(100_000));
    assert_eq!(
        events(unterminated.as_bytes(), Dialect::Strict, 8).1,
        Err(Error::Truncated(unterminated.len()))
    );
    // Invalid UTF-8 and control bytes are the string decoders' business, not the lexer's.
    let (evs, end) = events(b"[\"\xff\x00\xc3\"]", Dialect::Strict, 8);
    assert_eq!((evs.len(), end), (3, Ok(())));
}

/// Random bytes never panic, and each call moves forward or ends the input.
#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    let alphabet = b"{}[],:\"\\ 0123-.eE+truefalsnl\x00\xff";
    for _ in 0..20_000 {
        let len = rng.below(40) as usize;
        let body: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
            .collect();
        for dialect in [Dialect::Strict, Dialect::Lenient] {
            let mut t = Tokenizer::new(&body, dialect, 3);
            let mut last = 0;
            let mut calls = 0;
            while let Ok(Some(ev)) = t.next() {
                assert!(ev.start >= last && ev.end > ev.start && ev.end <= body.len());
                last = ev.end;
                calls += 1;
                if let Token::String(s) | Token::Key(s) = ev.token {
                    let _ = (s.unescape_lossy(), s.unescape_strict());
                }
            }
            assert!(calls <= body.len());
        }
    }
}
