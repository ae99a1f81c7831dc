use super::*;

fn limits() -> ScanLimits {
    ScanLimits::of(&InputLimits::default())
}

/// Every value of `body` fed in `pieces`, windows taken as they fill.
fn scan_pieces(
    ct: Option<&str>,
    pieces: &[&[u8]],
    l: ScanLimits,
) -> (Vec<(String, String)>, Window) {
    let mut s = BodyScanner::new(ct, l);
    let mut all = Vec::new();
    let take = |w: Window, all: &mut Vec<(String, String)>| {
        for v in w.values {
            let loc = crate::detect::inputs::Input {
                source: v.source,
                name: std::borrow::Cow::Owned(v.name),
                value: std::borrow::Cow::Borrowed(""),
            }
            .location();
            all.push((loc, v.value));
        }
    };
    for p in pieces {
        s.feed(p);
        if let Some(w) = s.take_full_window() {
            take(w, &mut all);
        }
        assert!(s.retained_bytes() <= WINDOW_BYTES + 4 * l.max_value_bytes + 64 * 1024);
    }
    let last = s.finish();
    let end = Window {
        values: Vec::new(),
        ..last.clone()
    };
    take(last, &mut all);
    (all, end)
}

fn scan(ct: Option<&str>, body: &[u8]) -> Vec<(String, String)> {
    scan_pieces(ct, &[body], limits()).0
}

/// The body cut in two at every byte, and fed byte by byte, gives what it gives whole.
fn same_at_every_split(ct: Option<&str>, body: &[u8]) -> Vec<(String, String)> {
    let whole = scan(ct, body);
    for at in 0..=body.len() {
        let (a, b) = body.split_at(at);
        assert_eq!(scan_pieces(ct, &[a, b], limits()).0, whole, "cut at {at}");
    }
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(scan_pieces(ct, &bytes, limits()).0, whole, "byte by byte");
    whole
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const SQLI: &str = "1' UNION SELECT password FROM users--";

#[test]
fn json_values_keys_and_paths_at_every_split() {
    let body = r#" {"a":{"b":["x","y\n\u00e9\ud83d\ude00"]},"n":-1.5e3,"t":true,"z":null,"bad key!":"v","q":"1' UNION SELECT password FROM users--"} "#;
    let got = same_at_every_split(Some("application/json"), body.as_bytes());
    assert_eq!(
        got,
        pairs(&[
            ("body:$.a.b[0]", "x"),
            ("body:$.a.b[1]", "y\né😀"),
            ("arg-name:", "bad key!"),
            ("body:$.bad key!", "v"),
            ("body:$.q", SQLI),
        ])
    );
}

#[test]
fn json_escapes_surrogates_and_documents_in_a_row() {
    let got = same_at_every_split(
        Some("application/json"),
        br#"["\ud800x","\q\/", "\udc00"] {"k":"second"}"#,
    );
    assert_eq!(
        got,
        pairs(&[
            ("body:$[0]", "\u{fffd}x"),
            ("body:$[1]", "q/"),
            ("body:$[2]", "\u{fffd}"),
            ("body:$.k", "second"),
        ])
    );
}

#[test]
fn broken_json_is_read_as_text_from_where_it_breaks() {
    let got = scan(Some("application/json"), b"{\"a\":\"x\"} } 1' OR '1'='1");
    assert_eq!(got, pairs(&[("body:$.a", "x"), ("body", "} 1' OR '1'='1")]));
    // A `\u` without four hex digits is not JSON.
    let got = scan(Some("application/json"), br#"["ok","\u12"]"#);
    assert_eq!(got[0], ("body:$[0]".to_string(), "ok".to_string()));
}

#[test]
fn form_fields_at_every_split() {
    let body = b"a=%3Cb%3E&c=d+e&&flag&q=1%27+UNION+SELECT+password+FROM+users--&=x\r\n";
    let got = same_at_every_split(Some("application/x-www-form-urlencoded"), body);
    assert_eq!(
        got,
        pairs(&[
            ("arg-name:", "a"),
            ("form:a", "<b>"),
            ("arg-name:", "c"),
            ("form:c", "d e"),
            ("arg-name:", "flag"),
            ("arg-name:", "q"),
            ("form:q", SQLI),
            ("form:", "x"),
        ])
    );
    // Unlabelled: sniffed as a form.
    assert_eq!(
        scan(None, b"b=%3Cx%3E\n")[1],
        ("form:b".into(), "<x>".into())
    );
}

#[test]
fn multipart_parts_at_every_split() {
    let ct = "multipart/form-data; boundary=XX";
    let body = b"preamble\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nhello -- --X\r\n--XX\r\nContent-Disposition: form-data; name=\"up\"; filename=\"../../x.php\"\r\nContent-Type: text/plain\r\n\r\n1' UNION SELECT password FROM users--\r\n--XX\r\n\r\nno head\r\n--XX--\r\nepilogue --XX\r\n";
    let got = same_at_every_split(Some(ct), body);
    assert_eq!(
        got,
        pairs(&[
            ("arg-name:", "f"),
            ("form:f", "hello -- --X"),
            ("form:up.filename", "../../x.php"),
            ("arg-name:", "up"),
            ("form:up", SQLI),
            ("form:", "no head"),
        ])
    );
}

#[test]
fn xml_text_and_attributes_at_every_split() {
    let body = br#"<?xml version="1.0"?><a id='7' bad="x>y"><b>  1' UNION SELECT password FROM users-- </b></a>"#;
    let got = same_at_every_split(Some("application/xml"), body);
    assert_eq!(
        got,
        pairs(&[
            ("body", "1.0"),
            ("body", "7"),
            ("body", "y\">"),
            ("body", SQLI)
        ])
    );
}

#[test]
fn text_is_judged_in_overlapping_pieces() {
    let l = limits();
    // A payload across the end of the first piece is whole in the second.
    let mut body = "a".repeat(l.max_value_bytes - 10).into_bytes();
    body.extend_from_slice(SQLI.as_bytes());
    body.extend(std::iter::repeat_n(b'b', 3 * l.max_value_bytes));
    let (got, end) = scan_pieces(Some("text/plain"), &[&body], l);
    assert!(got.len() >= 4, "{}", got.len());
    assert!(got
        .iter()
        .all(|(loc, v)| loc == "body" && v.len() <= l.max_value_bytes));
    assert!(got.iter().any(|(_, v)| v.contains(SQLI)));
    assert_eq!(end.scanned, body.len() as u64);
    // Multi-byte characters are not split at piece ends.
    let body = "é".repeat(3 * l.max_value_bytes);
    let (got, _) = scan_pieces(Some("text/plain"), &[body.as_bytes()], l);
    assert!(got.iter().all(|(_, v)| !v.contains('\u{fffd}')));
}

/// The injection is found wherever the body is cut, in every format: after padding that
/// spans several reads, with the cut at every byte of a small body around it.
#[test]
fn an_injection_straddling_a_read_is_found_at_every_split() {
    let cases: [(&str, String); 3] = [
        (
            "application/json",
            format!(r#"{{"pad":"{}","q":"{SQLI}"}}"#, "p".repeat(100)),
        ),
        (
            "application/x-www-form-urlencoded",
            format!("pad={}&q={}", "p".repeat(100), SQLI.replace(' ', "+")),
        ),
        (
            "multipart/form-data; boundary=--b",
            format!("----b\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\n{SQLI}\r\n----b--"),
        ),
    ];
    for (ct, body) in cases {
        for at in 0..=body.len() {
            let (a, b) = body.as_bytes().split_at(at);
            let (got, _) = scan_pieces(Some(ct), &[a, b], limits());
            assert!(
                got.iter().any(|(_, v)| v == SQLI),
                "{ct} cut at {at}: {got:?}"
            );
        }
    }
}

#[test]
fn windows_fill_and_the_scan_ends_at_max_body_bytes() {
    let l = ScanLimits {
        max_body_bytes: 300_000,
        ..limits()
    };
    let item = format!(r#"{{"name":"{}"}},"#, "n".repeat(90));
    let mut body = b"[".to_vec();
    while body.len() < 400_000 {
        body.extend_from_slice(item.as_bytes());
    }
    let mut s = BodyScanner::new(Some("application/json"), l);
    let mut windows = 0;
    let mut values = 0;
    for chunk in body.chunks(16 * 1024) {
        s.feed(chunk);
        while let Some(w) = s.take_full_window() {
            // At most one read past the window's size.
            assert!(w.bytes >= WINDOW_BYTES && w.bytes < WINDOW_BYTES + 16 * 1024 + 200);
            assert!(!w.last);
            windows += 1;
            values += w.values.len();
        }
    }
    let last = s.finish();
    values += last.values.len();
    assert!(last.last && !last.stopped_at_gap);
    assert_eq!(last.scanned, 300_000);
    assert!(windows >= 3, "{windows}");
    // Every whole item before the limit, and the one cut by it.
    assert_eq!(values, (300_000 - 1) / item.len() + 1);
}

#[test]
fn a_gap_ends_the_scan_and_keeps_what_came_before() {
    let mut s = BodyScanner::new(Some("application/x-www-form-urlencoded"), limits());
    s.feed(b"a=1&b=2");
    s.gap();
    s.feed(b"&c=3");
    let w = s.finish();
    assert!(w.stopped_at_gap);
    assert_eq!(w.scanned, 7);
    let v: Vec<&str> = w.values.iter().map(|v| v.value.as_str()).collect();
    assert_eq!(v, ["a", "1", "b", "2"]);
}

#[test]
fn hostile_bodies_cost_bounded_memory() {
    let l = ScanLimits {
        max_body_bytes: 16 << 20,
        ..limits()
    };
    let cap = WINDOW_BYTES + 4 * l.max_value_bytes + 64 * 1024;
    let feed = |ct: &str, chunk: &[u8], times: usize| {
        let mut s = BodyScanner::new(Some(ct), l);
        let mut skipped = 0;
        for _ in 0..times {
            s.feed(chunk);
            assert!(s.retained_bytes() <= cap, "{ct}: {}", s.retained_bytes());
            if let Some(w) = s.take_full_window() {
                skipped += w.skipped;
            }
        }
        let w = s.finish();
        (w, skipped)
    };
    // Nesting a million deep: skipped as one container, no stack.
    let (w, _) = feed("application/json", &[b'['; 4096], 256);
    assert_eq!(w.skipped, 1);
    assert!(w.values.is_empty());
    // A 4 MiB string, and a 4 MiB scalar that never ends.
    let mut s = BodyScanner::new(Some("application/json"), l);
    s.feed(b"[\"");
    for _ in 0..1024 {
        s.feed(&[b'x'; 4096]);
        assert!(s.retained_bytes() <= cap);
    }
    let w = s.finish();
    assert_eq!(w.values[0].value.len(), l.max_value_bytes);
    assert_eq!(w.skipped, 1);
    let (w, _) = feed("application/json", &[b'7'; 4096], 1024);
    assert!(w.values.is_empty());
    // A 4 MiB form name and value, a multipart head that never ends, delimiter-like content.
    let (w, _) = feed("application/x-www-form-urlencoded", &[b'%'; 4096], 1024);
    assert!(w.values[0].value.len() <= l.max_value_bytes);
    let (w, _) = feed("multipart/form-data; boundary=ab", b"--ab\r\nX: y", 1);
    assert!(w.values.is_empty() || w.values.len() == 1);
    let mut s = BodyScanner::new(Some("multipart/form-data; boundary=ababx"), l);
    s.feed(b"--ababx\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\n");
    for _ in 0..100_000 {
        s.feed(b"--abababa--aba-\r\n--ababa");
        assert!(s.retained_bytes() <= cap);
    }
    s.feed(b"\r\n--ababx--");
    let w = s.finish();
    assert_eq!(w.values.len(), 2);
    assert!(w.values[1]
        .value
        .starts_with("--abababa--aba-\r\n--ababa--abababa"));
    assert_eq!((w.values[1].value.len(), w.skipped), (l.max_value_bytes, 1));
    // Thousands of tiny values: windows keep memory bounded.
    let (w, _) = feed("application/x-www-form-urlencoded", b"a=1&", 1 << 20);
    assert!(w.bytes < WINDOW_BYTES);
}
