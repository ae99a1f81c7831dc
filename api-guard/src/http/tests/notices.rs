//! Request notices: with `notify_requests`, each request is handed out alone as soon as it
//! ends, before its answer, whatever the pipelining depth; the exchange follows later.

use super::ts;
use crate::http::{HttpConnection, HttpLimits, Phase, Stream};

#[test]
fn every_pipelined_request_is_handed_out_even_past_the_pairing_bound() {
    let limits = HttpLimits::default();
    let mut conn = HttpConnection::new(limits);
    conn.notify_requests();
    let n = limits.max_pipelined * 3;
    let mut burst = Vec::new();
    for i in 0..n {
        burst.extend_from_slice(
            format!(
                "POST /r/{i} HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{:02}",
                i % 100
            )
            .as_bytes(),
        );
    }
    let mut out = Vec::new();
    conn.feed(Stream::Request, &burst, ts(0), &mut out);
    // One notice per request, in order, with its body; no exchange yet.
    assert_eq!(out.len(), n);
    for (i, ex) in out.iter().enumerate() {
        assert_eq!(ex.phase, Phase::Request);
        assert_eq!(ex.path, format!("/r/{i}"));
        assert_eq!(
            ex.request_body.as_ref(),
            format!("{:02}", i % 100).as_bytes()
        );
        assert_eq!((ex.status, ex.request_end_ns), (None, Some(ts(0))));
    }
    // Pairing still forgets the oldest beyond its bound (counted), judging already happened.
    assert_eq!(conn.lost_exchanges(), (n - limits.max_pipelined) as u64);
    out.clear();
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".repeat(n);
    conn.feed(Stream::Response, &answer, ts(1), &mut out);
    assert_eq!(out.len(), limits.max_pipelined);
    assert!(out
        .iter()
        .all(|e| e.phase == Phase::Exchange && e.request_noticed && e.status == Some(200)));
}

#[test]
fn a_request_is_handed_out_before_its_answer_and_not_after() {
    let mut conn = HttpConnection::new(HttpLimits::default());
    conn.notify_requests();
    let mut out = Vec::new();
    conn.feed(
        Stream::Request,
        b"GET /slow?id=1 HTTP/1.1\r\nHost: a\r\n\r\n",
        ts(0),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].phase, out[0].query.as_deref()),
        (Phase::Request, Some("id=1"))
    );
    conn.feed(
        Stream::Response,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ts(1),
        &mut out,
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].phase, Phase::Exchange);
    assert!(out[1].request_noticed);
    // A request cut off by the close ends there: judged with what arrived, marked truncated.
    conn.feed(
        Stream::Request,
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc",
        ts(2),
        &mut out,
    );
    assert_eq!(out.len(), 2);
    conn.close(ts(3), &mut out);
    assert_eq!(out.len(), 4);
    assert_eq!(out[2].phase, Phase::Request);
    assert!(out[2].request_truncated && out[2].request_body.as_ref() == b"abc");
    assert!(out[3].request_noticed && out[3].status.is_none());
    // Without notify_requests nothing changes.
    let mut plain = HttpConnection::new(HttpLimits::default());
    let mut out = Vec::new();
    plain.feed(
        Stream::Request,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ts(0),
        &mut out,
    );
    assert!(out.is_empty());
}

mod scanned {
    //! Request bodies scanned as they stream: values past the kept prefix reach detection,
    //! whole whatever the reads and chunks they were cut into.

    use super::ts;
    use crate::detect::{
        inputs::InputLimits,
        stream::{ScanLimits, WINDOW_BYTES},
    };
    use crate::http::{ExchangeSlot, HttpConnection, HttpLimits, Phase, Stream};

    const SQLI: &str = "1' UNION SELECT password FROM users--";

    fn scanning() -> HttpConnection {
        let mut conn = HttpConnection::new(HttpLimits::default());
        conn.notify_requests();
        conn.scan_request_bodies(ScanLimits::of(&InputLimits::default()));
        conn
    }

    /// (phase, location-ish name, value) of every scanned value handed out.
    fn values(out: &[ExchangeSlot]) -> Vec<(Phase, String, String)> {
        out.iter()
            .filter_map(|e| e.request_scan.as_ref().map(|w| (e.phase, w)))
            .flat_map(|(phase, w)| {
                w.values
                    .iter()
                    .map(move |v| (phase, v.name.clone(), v.value.clone()))
            })
            .collect()
    }

    /// A chunked JSON body whose injection is cut by the chunking and by every read split.
    #[test]
    fn a_value_cut_by_chunks_and_reads_is_whole() {
        let json = format!(r#"{{"a":"x","q":"{SQLI}"}}"#);
        let (one, two) = json.split_at(20);
        let raw = format!(
            "POST /c HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{one}\r\n{:x}\r\n{two}\r\n0\r\n\r\n",
            one.len(),
            two.len()
        );
        let raw = raw.as_bytes();
        for at in 0..=raw.len() {
            let mut conn = scanning();
            let mut out = Vec::new();
            conn.feed(Stream::Request, &raw[..at], ts(0), &mut out);
            conn.feed(Stream::Request, &raw[at..], ts(1), &mut out);
            assert_eq!(
                values(&out),
                [
                    (Phase::Request, "$.a".into(), "x".into()),
                    (Phase::Request, "$.q".into(), SQLI.into())
                ],
                "cut at {at}"
            );
            let w = out[0].request_scan.as_ref().unwrap();
            assert_eq!(w.scanned, json.len() as u64);
        }
    }

    /// A body far past the prefix kept: its values come out in windows while it streams,
    /// the injection at its end with the request notice; memory stays bounded.
    #[test]
    fn a_large_body_is_judged_in_windows_past_the_prefix() {
        let limits = HttpLimits::default();
        let pad = "p".repeat(200);
        let mut form = String::new();
        let mut i = 0;
        while form.len() < 300 * 1024 {
            form.push_str(&format!("f{i}={pad}&"));
            i += 1;
        }
        form.push_str(&format!("q={}", SQLI.replace(' ', "+")));
        let head = format!(
            "POST /f HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            form.len()
        );
        let mut conn = scanning();
        let mut out = Vec::new();
        conn.feed(Stream::Request, head.as_bytes(), ts(0), &mut out);
        for chunk in form.as_bytes().chunks(4096) {
            conn.feed(Stream::Request, chunk, ts(1), &mut out);
            assert!(conn.buffered_bytes() < limits.max_body_capture_bytes + 2 * WINDOW_BYTES);
        }
        let parts = out.iter().filter(|e| e.phase == Phase::RequestPart).count();
        assert!(parts >= 4, "{parts} parts");
        let notice = out.last().unwrap();
        assert_eq!(notice.phase, Phase::Request);
        assert_eq!(notice.request_body.len(), limits.max_body_capture_bytes);
        let w = notice.request_scan.as_ref().unwrap();
        assert_eq!((w.scanned, w.last), (form.len() as u64, true));
        let all = values(&out);
        assert_eq!(all.iter().filter(|v| v.1.starts_with('f')).count(), i);
        assert_eq!(all.last().unwrap().2, SQLI);
        assert!(out
            .iter()
            .filter(|e| e.phase == Phase::RequestPart)
            .all(|e| e.path == "/f" && e.request_body.is_empty()));
    }

    /// A capture gap ends the scan; what came before is still judged.
    #[test]
    fn a_gap_stops_the_scan() {
        let mut conn = scanning();
        let mut out = Vec::new();
        conn.feed(
            Stream::Request,
            b"POST /g HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 30\r\n\r\na=1&b=",
            ts(0),
            &mut out,
        );
        conn.gap(Stream::Request, 10, ts(1), &mut out);
        conn.feed(Stream::Request, b"&c=3&d=4&e=55&", ts(2), &mut out);
        let w = out[0].request_scan.as_ref().unwrap();
        assert!(w.stopped_at_gap);
        assert_eq!(w.scanned, 6);
        let v: Vec<_> = w.values.iter().map(|v| v.value.as_str()).collect();
        assert_eq!(v, ["a", "1", "b"]);
    }
}
