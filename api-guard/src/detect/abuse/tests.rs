use std::net::Ipv4Addr;

use super::*;
use crate::detect::Kind;
use crate::http::Headers;
use crate::identity::ClientIdentity;

fn client(ip: u32) -> ClientIdentity {
    ClientIdentity {
        ip: Some(IpAddr::V4(Ipv4Addr::from(ip))),
        via_proxy: None,
        credential: None,
    }
}

struct Probe {
    d: AbuseDetector,
}

impl Probe {
    fn new(c: AbuseConfig) -> Self {
        Self {
            d: AbuseDetector::new(&c).unwrap(),
        }
    }

    /// Findings (rule, location) for one request.
    fn send(
        &mut self,
        who: &ClientIdentity,
        path: &str,
        ua: &str,
        status: Option<u16>,
        secs: f64,
    ) -> Vec<(&'static str, Kind, String)> {
        let headers = Headers::from([("User-Agent", ua)]);
        let req = Request {
            method: "GET",
            path,
            query: None,
            version: crate::http::HttpVersion::Http11,
            anomalies: &[],
            request_line_invalid: false,
            headers: &headers,
            body: b"",
            body_len: 0,
            head_len: 100,
            authority: None,
            peer: None,
            status,
            fields: None,
        };
        let ctx = Context {
            now_ns: (secs * 1e9) as u64,
            client: who,
        };
        let mut out = Vec::new();
        self.d.inspect(&req, &ctx, &mut out);
        out.into_iter()
            .map(|f| (f.rule_id, f.kind, f.evidence))
            .collect()
    }
}

fn rules(v: &[(&'static str, Kind, String)]) -> Vec<&'static str> {
    v.iter().map(|f| f.0).collect()
}

#[test]
fn scanner_agents_as_tokens() {
    for ua in [
        "sqlmap/1.7.2#stable (https://sqlmap.org)",
        "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:Port Check)",
        "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
        "Fuzz Faster U Fool v2.1.0",
        "Mozilla/5.0 (Windows) DirBuster-1.0-RC1",
        "gobuster/3.6",
        "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
        "WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)",
        "Mozilla/4.0 (Hydra)",
        "Mozilla/5.0 [en] (X11, U; OpenVAS-VT 9.0.3)",
        "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
    ] {
        assert!(scanners::scanner(ua).is_some(), "{ua}");
    }
    for ua in [
        "curl/8.5.0",
        "python-requests/2.31.0",
        "Go-http-client/1.1",
        "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "k6/0.48.0 (https://k6.io/)",
        "wrk",
        "unmapped-client/1.0",
        "HydraClient/2 ory",
        "sqlmapper-orm/3",
        "",
    ] {
        assert_eq!(scanners::scanner(ua), None, "{ua}");
    }
    let mut p = Probe::new(AbuseConfig::default());
    let got = p.send(&client(1), "/", "sqlmap/1.7", None, 1.0);
    assert_eq!(rules(&got), ["abuse.scanner_agent"]);
    assert_eq!(got[0].1, Kind::Scanner);
    let mut p = Probe::new(AbuseConfig {
        scanner_agent: false,
        ..Default::default()
    });
    assert!(p.send(&client(1), "/", "sqlmap/1.7", None, 1.0).is_empty());
}

#[test]
fn not_found_burst_fires_once_per_window() {
    let mut p = Probe::new(AbuseConfig::default());
    let a = client(1);
    for i in 0..20 {
        let got = p.send(
            &a,
            &format!("/probe/{i}.php"),
            "x",
            Some(404),
            1.0 + i as f64,
        );
        assert!(got.is_empty());
    }
    // Other clients and other statuses do not add to it.
    assert!(p.send(&client(2), "/x", "x", Some(404), 21.0).is_empty());
    assert!(p.send(&a, "/ok", "x", Some(200), 21.0).is_empty());
    let got = p.send(&a, "/admin.php", "x", Some(404), 22.0);
    assert_eq!(rules(&got), ["abuse.not_found_burst"]);
    assert_eq!(got[0].1, Kind::Enumeration);
    assert_eq!(
        got[0].2,
        "21 not-found answers in 60 s, e.g. /probe/0.php /probe/1.php"
    );
    for i in 0..30 {
        assert!(p
            .send(&a, "/x", "x", Some(404), 23.0 + i as f64 * 0.1)
            .is_empty());
    }
    // The window (started at 1 s) ends at 61 s: the count starts over.
    for i in 0..20 {
        assert!(p.send(&a, "/y", "x", Some(404), 61.0 + i as f64).is_empty());
    }
    assert_eq!(
        rules(&p.send(&a, "/y", "x", Some(404), 81.0)),
        ["abuse.not_found_burst"]
    );
}

#[test]
fn sequential_ids_are_bola() {
    let mut p = Probe::new(AbuseConfig::default());
    let a = client(1);
    for id in 1001..=1010 {
        assert!(p
            .send(&a, &format!("/api/users/{id}/orders"), "x", Some(200), 1.0)
            .is_empty());
    }
    // A repeated id is not new; another route keeps its own count.
    assert!(p
        .send(&a, "/api/users/1010/orders", "x", None, 2.0)
        .is_empty());
    assert!(p.send(&a, "/api/items/1011", "x", None, 2.0).is_empty());
    let got = p.send(&a, "/api/users/1012/orders", "x", None, 3.0);
    assert_eq!(rules(&got), ["abuse.id_enumeration"]);
    assert_eq!(got[0].1, Kind::Bola);
    assert_eq!(
        got[0].2,
        "/api/users/{id}/orders: 11 sequential ids 1001..1012 in 60 s"
    );
    assert!(p
        .send(&a, "/api/users/1013/orders", "x", None, 4.0)
        .is_empty());
    // After the window, a new run is needed.
    for id in 2000..2010 {
        assert!(p
            .send(&a, &format!("/api/users/{id}/orders"), "x", None, 70.0)
            .is_empty());
    }
    let got = p.send(&a, "/api/users/2010/orders", "x", None, 71.0);
    assert_eq!(rules(&got), ["abuse.id_enumeration"]);
}

#[test]
fn scattered_ids_are_not_bola() {
    let mut p = Probe::new(AbuseConfig::default());
    let a = client(1);
    for i in 0..40u64 {
        let id = 1000 + i * 7919 % 5003;
        assert!(p
            .send(&a, &format!("/api/users/{id}"), "x", None, 1.0)
            .is_empty());
    }
}

#[test]
fn client_and_route_floods() {
    let mut p = Probe::new(AbuseConfig {
        client_rate: 10,
        route_rate: 30,
        flood_window_secs: 1,
        ..Default::default()
    });
    let a = client(1);
    let mut got = Vec::new();
    for i in 0..11 {
        got = p.send(&a, "/api/a", "x", None, 5.0 + i as f64 * 0.01);
    }
    assert_eq!(rules(&got), ["abuse.client_flood"]);
    assert_eq!(got[0].1, Kind::Flood);
    assert!(
        p.send(&a, "/api/a", "x", None, 5.5).is_empty(),
        "once per window"
    );
    // Many clients on one route: 31 requests in the route's window.
    let mut fired = Vec::new();
    for i in 0..40u32 {
        for f in p.send(
            &client(100 + i),
            "/api/b/7",
            "x",
            None,
            5.0 + f64::from(i) * 0.001,
        ) {
            fired.push(f);
        }
    }
    assert_eq!(rules(&fired), ["abuse.route_flood"]);
    assert_eq!(fired[0].2, "/api/b/{id}: 31 requests in 1 s (limit 30/s)");
    // Next window, slow pace: nothing.
    for i in 0..5 {
        assert!(p
            .send(&a, "/api/a", "x", None, 7.0 + f64::from(i) * 0.2)
            .is_empty());
    }
}

#[test]
fn tables_stay_bounded_under_many_clients() {
    let mut p = Probe::new(AbuseConfig {
        max_tracked: 1024,
        ..Default::default()
    });
    for i in 0..1_000_000u32 {
        let _ = p.send(
            &client(i),
            "/api/users/5",
            "x",
            Some(404),
            1.0 + f64::from(i) * 1e-3,
        );
    }
    assert!(p.d.clients.len() <= 1024);
    assert!(p.d.not_found.len() <= 1024);
    assert!(p.d.ids.len() <= 1024);
    assert!(p.d.routes.len() <= 1024);
}

#[test]
fn no_client_address_skips_per_client_checks() {
    let mut p = Probe::new(AbuseConfig::default());
    let anon = ClientIdentity {
        ip: None,
        via_proxy: None,
        credential: None,
    };
    for i in 0..100 {
        assert!(p
            .send(&anon, &format!("/u/{i}"), "x", Some(404), 1.0)
            .is_empty());
    }
}

#[test]
fn config_is_validated() {
    for (json, field) in [
        (r#"{"max_tracked": 0}"#, "detect.abuse.max_tracked"),
        (r#"{"bola_threshold": 1}"#, "detect.abuse.bola_threshold"),
        (
            r#"{"flood_window_secs": 0}"#,
            "detect.abuse.flood_window_secs",
        ),
        (r#"{"client_rate": 0}"#, "detect.abuse.client_rate"),
    ] {
        let c: AbuseConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.validate().unwrap_err().field, field);
    }
    assert!(serde_json::from_str::<AbuseConfig>(r#"{"nope": 1}"#).is_err());
}

#[test]
fn route_templates() {
    assert_eq!(
        template("/api/users/1001/orders/7"),
        "/api/users/{id}/orders/{id}"
    );
    let s = std::collections::hash_map::RandomState::new();
    assert_eq!(route_key(&s, "/u/1").hash, route_key(&s, "/u/2").hash);
    assert_ne!(route_key(&s, "/u/1").hash, route_key(&s, "/v/1").hash);
    assert_eq!(route_key(&s, "/u/12").id, Some(12));
    assert_eq!(route_key(&s, "/u/99999999999999999999").id, None);
}

/// The byte split hashes what `str::split('/')` and `str::hash` did (the code it replaced),
/// and reads the same ids.
#[test]
fn route_keys_cut_at_bytes_are_the_ones_cut_at_chars() {
    use std::hash::{BuildHasher, Hash};
    fn by_chars<S: BuildHasher>(hasher: &S, path: &str) -> (u64, Option<u64>) {
        let mut h = hasher.build_hasher();
        let mut id = None;
        for seg in path.split('/').take(MAX_SEGMENTS) {
            let n = (!seg.is_empty() && seg.len() <= 19 && seg.bytes().all(|b| b.is_ascii_digit()))
                .then(|| seg.parse::<u64>().ok())
                .flatten();
            match n {
                Some(n) => {
                    id = Some(n);
                    h.write_u8(0xff);
                }
                None => seg.hash(&mut h),
            }
        }
        (h.finish(), id)
    }
    const PIECES: &[&str] = &[
        "/",
        "a",
        "42",
        "0",
        "9999999999999999999",
        "18446744073709551615",
        "é",
        "users",
        "//",
        "%2F",
        "€",
        "007",
    ];
    let s = std::collections::hash_map::RandomState::new();
    let mut rng = crate::testutil::Rng(0x00ab_05e5);
    for _ in 0..20_000 {
        let path = rng.joined(PIECES, 50);
        let key = route_key(&s, &path);
        assert_eq!((key.hash, key.id), by_chars(&s, &path), "{path:?}");
    }
}

/// `cargo test --release -p api-guard --lib abuse::tests::cost -- --ignored --nocapture`
#[test]
#[ignore = "timing, run by hand"]
fn cost() {
    use crate::detect::protocol::{ProtocolConfig, ProtocolDetector};
    let body = format!(r#"{{"name":"O'Brien","note":"{}"}}"#, "word ".repeat(200));
    let len = body.len().to_string();
    let headers: Headers = [
        ("Host", "api.example.com"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36",
        ),
        ("Accept", "application/json"),
        ("Content-Type", "application/json"),
        ("Content-Length", &len),
        ("Authorization", "Bearer abc.def.ghi"),
        ("Accept-Encoding", "gzip, deflate, br"),
    ]
    .into();
    let protocol = ProtocolDetector::new(&ProtocolConfig::default()).unwrap();
    let mut abuse = AbuseDetector::new(&AbuseConfig::default()).unwrap();
    let who = client(7);
    let n = 200_000u64;
    let start = std::time::Instant::now();
    let mut out = Vec::new();
    let mut split = (0u64, 0u64, 0u64);
    for i in 0..n {
        let path = format!("/api/v1/users/{}", i % 1000 * 37);
        let req = Request {
            method: "POST",
            path: &path,
            query: Some("page=2&sort=name"),
            version: crate::http::HttpVersion::Http11,
            anomalies: &[],
            request_line_invalid: false,
            headers: &headers,
            body: body.as_bytes(),
            body_len: body.len() as u64,
            head_len: 300,
            authority: None,
            peer: None,
            status: Some(200),
            fields: None,
        };
        let ctx = Context {
            now_ns: i * 1_000_000,
            client: &who,
        };
        out.clear();
        let t = std::time::Instant::now();
        protocol.inspect_request(&req, &mut out);
        let t2 = std::time::Instant::now();
        abuse.inspect(&req, &ctx, &mut out);
        let t3 = std::time::Instant::now();
        split.0 += (t2 - t).as_nanos() as u64;
        split.1 += (t3 - t2).as_nanos() as u64;
        split.2 += out.len() as u64;
    }
    let per = start.elapsed().as_nanos() as u64 / n;
    println!(
        "protocol {} ns, abuse {} ns per request; {per} ns with the loop's own work; {} findings",
        split.0 / n,
        split.1 / n,
        split.2
    );
    let t = std::time::Instant::now();
    let mut hits = 0;
    for _ in 0..n {
        hits += usize::from(
            scanners::scanner(std::hint::black_box(
                headers.get_index(1).map_or("", |(_, v)| v),
            ))
            .is_some(),
        );
    }
    println!("scanner {} ns ({hits})", t.elapsed().as_nanos() as u64 / n);
}
