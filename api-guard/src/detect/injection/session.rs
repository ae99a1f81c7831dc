//! Session fixation: a request that plants a session identifier for the server or the
//! browser to adopt, so that the attacker knows the victim's session once they log in.
//!
//! Two ways in: a link or cross-site form that hands the application a session id as a
//! parameter (servers that accept URL-rewritten sessions, `;jsessionid=` style, adopt it), and
//! a value that makes the victim's browser store a cookie (`document.cookie="sid=…; domain=…"`,
//! `<meta http-equiv="Set-Cookie">`). Session ids belong in cookies: a framework's session
//! cookie name as a query, form or JSON parameter is only suspicious when the request did not
//! come from the site itself (no `Referer`, or one naming another host). Generic names
//! (`session_id`) are ordinary API fields, so they count only with a foreign `Referer`.
//! Session id values are secrets: evidence names the parameter and the referring host only.

use super::{
    text::{around, find_ci, find_ci_from, starts_with_ci},
    Candidate,
};
use crate::detect::{
    fields::Named,
    finding::Finding,
    inputs::{Inputs, Source},
    request::Request,
    rules,
};

/// Session cookie names of web frameworks and servers (lower case, without the `__Host-` /
/// `__Secure-` prefixes): a parameter of this name is a session id passed outside a cookie.
const FRAMEWORK_NAMES: &[&str] = &[
    "jsessionid",              // Java servlet containers
    "jservsession",            // Apache JServ
    "jwsession",               // Java web servers
    "weblogicsession",         // Oracle WebLogic
    "phpsessid",               // PHP
    "phpsession",              // PHP (alternative spelling)
    "asp.net_sessionid",       // ASP.NET
    "aspsessionid",            // classic ASP (also with a suffix, `ASPSESSIONIDQQGG…`)
    "cfid",                    // ColdFusion
    "cftoken",                 // ColdFusion
    "cfsid",                   // ColdFusion
    "connect.sid",             // Express
    "sails.sid",               // Sails.js
    "koa.sess",                // Koa
    "koa:sess",                // Koa
    "express:sess",            // Express cookie-session
    "laravel_session",         // Laravel
    "ci_session",              // CodeIgniter
    "cakephp",                 // CakePHP
    "zend_session_id",         // Zend Framework
    "_flask_session",          // Flask-Session
    "rack.session",            // Rack (Ruby)
    "_rails_session",          // Rails
    "play_session",            // Play Framework
    "next-auth.session-token", // NextAuth.js
    "meteor_login_token",      // Meteor
    "shiny-token",             // Shiny (R)
];

/// Names many APIs use for their own, non-cookie session concepts (a chat or upload session).
const GENERIC_NAMES: &[&str] = &[
    "sessionid",
    "session_id",
    "session-id",
    "_session_id",
    "sessid",
];

/// The class of a name's first byte for [`FIRST_BYTES`]: a letter (either case), `_`, or any
/// other byte.
const fn first_class(b: u8) -> u32 {
    match b {
        b'a'..=b'z' => (b - b'a') as u32,
        b'A'..=b'Z' => (b - b'A') as u32,
        b'_' => 26,
        _ => 27,
    }
}

/// For each name length up to 64, the first-byte classes of the listed names of that length
/// ([`FRAMEWORK_NAMES`], [`GENERIC_NAMES`], and `aspsessionid` with any suffix), one bit each:
/// most parameter names are turned away by one bit test instead of 37 comparisons.
const FIRST_BYTES: [u32; 65] = {
    let mut t = [0u32; 65];
    let mut i = 0;
    while i < FRAMEWORK_NAMES.len() + GENERIC_NAMES.len() {
        let name = if i < FRAMEWORK_NAMES.len() {
            FRAMEWORK_NAMES[i].as_bytes()
        } else {
            GENERIC_NAMES[i - FRAMEWORK_NAMES.len()].as_bytes()
        };
        t[name.len()] |= 1 << first_class(name[0]);
        i += 1;
    }
    let mut len = 12;
    while len <= 64 {
        t[len] |= 1 << first_class(b'a');
        len += 1;
    }
    t
};

/// Whether `name` (a parameter name) is a session cookie name; `Some(true)` for framework
/// names, `Some(false)` for generic ones. Runs on every parameter of every request (values
/// remembered as clean included), so it compares in place without allocating.
pub(crate) fn session_name(name: &str) -> Option<bool> {
    // `trim` is the identity when both ends are ASCII and not blank (the common case; its
    // Unicode scan from both ends costs more than the rest here).
    let plain_end =
        |b: Option<&u8>| b.is_some_and(|&b| b < 0x80 && !matches!(b, b'\t'..=b'\r' | b' '));
    let n = if plain_end(name.as_bytes().first()) && plain_end(name.as_bytes().last()) {
        name
    } else {
        name.trim()
    };
    if !(4..=64).contains(&n.len()) {
        return None;
    }
    let strip = |prefix: &str| {
        n.get(..prefix.len())
            .filter(|p| p.eq_ignore_ascii_case(prefix))
            .map(|_| &n[prefix.len()..])
    };
    // Both prefixes begin with `__`; most names do not, and skip the comparisons.
    let bare = if n.starts_with("__") {
        strip("__host-").or_else(|| strip("__secure-")).unwrap_or(n)
    } else {
        n
    };
    let listed = |len: usize, first: u8| {
        FIRST_BYTES
            .get(len)
            .is_some_and(|bits| bits & (1 << first_class(first)) != 0)
    };
    if !bare
        .as_bytes()
        .first()
        .is_some_and(|&f| listed(bare.len(), f))
    {
        return None;
    }
    let aspsessionid = bare
        .get(..12)
        .is_some_and(|p| p.eq_ignore_ascii_case("aspsessionid"))
        && bare[12..].bytes().all(|b| b.is_ascii_alphanumeric());
    if aspsessionid || FRAMEWORK_NAMES.iter().any(|f| bare.eq_ignore_ascii_case(f)) {
        return Some(true);
    }
    GENERIC_NAMES
        .iter()
        .any(|g| bare.eq_ignore_ascii_case(g))
        .then_some(false)
}

/// The host of a `Referer` URL (lower case, without userinfo and port); `None` when it has
/// none (a relative or malformed referer names no other site).
fn referer_host(referer: &str) -> Option<String> {
    let (_, rest) = referer.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = strip_port(host_port);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn strip_port(host_port: &str) -> &str {
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    host_port.split(':').next().unwrap_or(host_port)
}

/// The name a JSON path (without `$.`) gives its value: the whole path when it is a session
/// name (`connect.sid`) or holds no `.`, else what follows its last `.`. Paths are short:
/// plain loops cost less than `memchr` calls, and one pass from the end finds the last `.`.
fn json_name(path: &str) -> &str {
    let p = path.as_bytes();
    match p.iter().rposition(|&x| x == b'.') {
        Some(dot) if session_name(path).is_none() => &path[dot + 1..],
        _ => path,
    }
}

/// `session.id_parameter`: a session cookie name among the request's parameters, on a
/// request that did not come from a page of the same host. At most one finding per request.
pub fn planted_id(req: &Request<'_>, inputs: &Inputs<'_>, out: &mut Vec<Finding>) {
    let mut referer = None;
    let mut has_referer = false;
    let mut found = None;
    for input in &inputs.values {
        let name = match input.source {
            Source::Query | Source::Form => &input.name[..],
            // `$.a.jsessionid`: the key is what follows the last `.` or the whole dotted tail
            // (`$.connect.sid`).
            Source::Json => {
                let path = input.name.strip_prefix("$.").unwrap_or(&input.name);
                // Paths are short: plain loops cost less than `memchr` calls. One pass from
                // the end finds the last `.`; only a path without one is searched for `[`.
                json_name(path)
            }
            _ => continue,
        };
        if let Some(framework) = session_name(name) {
            found = Some((input, framework, name));
            if framework {
                break;
            }
        }
    }
    let Some((input, framework, name)) = found else {
        return;
    };
    if let Some(r) = req.named(Named::Referer) {
        has_referer = true;
        referer = referer_host(r);
    }
    let own = req
        .named(Named::Host)
        .or_else(|| req.named(Named::Authority))
        .map(|h| strip_port(h.trim()).to_ascii_lowercase());
    let foreign = match (&referer, &own) {
        (Some(r), Some(h)) => r != h,
        (Some(_), None) => true,
        (None, _) => false,
    };
    // No referer at all: a link followed from a mail or chat, or a forged request.
    let unanchored = !has_referer && framework;
    if !(foreign || unanchored) {
        return;
    }
    let evidence = match &referer {
        Some(r) if foreign => format!("{name} from {r}"),
        _ => format!("{name} without a referer"),
    };
    out.push(Finding::new(
        &rules::SESSION_ID_PARAMETER,
        input.location(),
        &evidence,
    ));
}

/// `session.cookie_injection`: a value that makes a browser store a cookie: script assigning
/// `.cookie` a string with cookie attributes (`; domain=`, `; expires=`, `; path=`), or a
/// `<meta http-equiv="set-cookie">`.
pub fn check(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    let s = &c.bytes;
    if !(s.has(b'=') && (s.has(b';') || s.has(b'-'))) {
        return;
    }
    let b = c.decoded.as_bytes();
    let hit = cookie_assignment(b).or_else(|| meta_set_cookie(b));
    if let Some(p) = hit {
        out.push(Finding::new(
            &rules::SESSION_COOKIE_INJECTION,
            c.input.location(),
            around(c.decoded, p),
        ));
    }
}

/// `.cookie` followed (within the same statement, 200 bytes) by `;` and a cookie attribute
/// name then `=`: the shape of a `Set-Cookie` string written by script.
fn cookie_assignment(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = find_ci_from(b, b".cookie", from) {
        from = p + 7;
        let after = &b[p + 7..];
        // `.cookies` or `.cookieJar` are other names.
        if after
            .first()
            .is_some_and(|x| x.is_ascii_alphanumeric() || *x == b'_')
        {
            continue;
        }
        let window = &after[..after.len().min(200)];
        let mut i = 0;
        while let Some(off) = window[i..].iter().position(|&x| x == b';') {
            let rest = window[i + off + 1..].trim_ascii_start();
            let rest = rest
                .iter()
                .position(|x| x.is_ascii_alphanumeric())
                .map_or(rest, |q| &rest[q..]);
            for attr in [&b"expires"[..], b"domain", b"path", b"max-age"] {
                if starts_with_ci(rest, attr)
                    && rest[attr.len()..].trim_ascii_start().first() == Some(&b'=')
                {
                    return Some(p);
                }
            }
            i += off + 1;
        }
    }
    None
}

/// `http-equiv` naming `set-cookie` (quoted or not).
fn meta_set_cookie(b: &[u8]) -> Option<usize> {
    let p = find_ci(b, b"http-equiv")?;
    let rest = &b[p + 10..];
    let rest = rest
        .iter()
        .position(|x| x.is_ascii_alphanumeric())
        .map(|q| &rest[q..])?;
    (q_gap(&b[p + 10..]) && starts_with_ci(rest, b"set-cookie")).then_some(p)
}

/// Only `=`, quotes and blanks between `http-equiv` and its value.
fn q_gap(b: &[u8]) -> bool {
    b.iter()
        .take_while(|x| !x.is_ascii_alphanumeric())
        .all(|x| matches!(x, b'=' | b'"' | b'\'' | b' ' | b'\t' | b'\\'))
}

#[cfg(test)]
mod tests {
    /// The JSON key rule as it was written first: the whole path when it holds `[` or `.`
    /// and is a session name, else what follows the last `.`.
    fn json_name_reference(path: &str) -> &str {
        let p = path.as_bytes();
        if p.iter().any(|&x| x == b'[' || x == b'.') && super::session_name(path).is_none() {
            p.iter()
                .rposition(|&x| x == b'.')
                .map_or(path, |i| &path[i + 1..])
        } else {
            path
        }
    }

    /// Where the rule is shortened (a path without `.` is its own name, whatever its `[`) it
    /// still picks the same name.
    #[test]
    fn json_names_keep_every_verdict() {
        const PIECES: &[&str] = &[
            "connect",
            "sid",
            ".",
            ".",
            "[",
            "]",
            "0",
            "sails",
            "jsessionid",
            "__Host-",
            "a",
            "koa",
            "sess",
            ":",
            "asp",
            "net_sessionid",
            "next-auth",
            "session-token",
            " ",
            "sessionid",
            "aspsessionidQQ",
            "rack",
            "session",
            "x_y",
        ];
        let mut rng = crate::testutil::Rng(0x5e55_10a1);
        let mut named = 0;
        for _ in 0..200_000 {
            let path: String = (0..1 + rng.below(6))
                .map(|_| PIECES[rng.below(PIECES.len() as u64) as usize])
                .collect();
            let want = json_name_reference(&path);
            assert_eq!(super::json_name(&path), want, "{path:?}");
            named += usize::from(super::session_name(want).is_some());
        }
        assert!(named > 1_000, "{named}");
    }

    use super::*;
    use crate::detect::{injection::run_check, inputs::InputLimits, offline::OwnedRequest};

    fn planted(raw: &str) -> Vec<String> {
        let req = OwnedRequest::from_raw(raw.as_bytes());
        let view = req.view(None, None);
        let inputs = Inputs::extract(&view, &InputLimits::default());
        let mut out = Vec::new();
        planted_id(&view, &inputs, &mut out);
        out.iter()
            .map(|f| format!("{} {}", f.location, f.evidence))
            .collect()
    }

    /// `session_name` without the first-byte table: the table turns no listed name away.
    fn session_name_plain(name: &str) -> Option<bool> {
        let n = name.trim();
        if !(4..=64).contains(&n.len()) {
            return None;
        }
        let lower = n.to_ascii_lowercase();
        let bare = lower
            .strip_prefix("__host-")
            .or_else(|| lower.strip_prefix("__secure-"))
            .unwrap_or(&lower);
        let asp = bare.len() >= 12
            && bare.starts_with("aspsessionid")
            && bare[12..].bytes().all(|b| b.is_ascii_alphanumeric());
        if asp || FRAMEWORK_NAMES.contains(&bare) {
            return Some(true);
        }
        GENERIC_NAMES.contains(&bare).then_some(false)
    }

    #[test]
    fn first_byte_table_keeps_every_name() {
        let mut names: Vec<String> = Vec::new();
        for n in FRAMEWORK_NAMES.iter().chain(GENERIC_NAMES) {
            for v in [n.to_string(), n.to_ascii_uppercase(), format!("__Host-{n}")] {
                names.push(v.clone());
                names.push(format!(" {v} "));
                names.push(format!("{v}x"));
                names.push(v[1..].to_owned());
            }
        }
        names.extend(
            [
                "ASPSESSIONIDQQGG",
                "aspsessionid",
                "city",
                "name",
                "sku",
                "x",
                "",
                "_session_ids",
            ]
            .map(String::from),
        );
        let mut matched = 0;
        for n in &names {
            assert_eq!(session_name(n), session_name_plain(n), "{n:?}");
            matched += usize::from(session_name(n).is_some());
        }
        assert!(matched > 100, "{matched}");
    }

    #[test]
    fn session_ids_from_other_sites_or_nowhere() {
        let cases = [
            (
                "GET /login?JSESSIONID=74B0CB41 HTTP/1.1\r\nHost: shop.example\r\n\r\n",
                vec!["query:JSESSIONID JSESSIONID without a referer"],
            ),
            (
                "GET /login?PHPSESSID=abc HTTP/1.1\r\nHost: shop.example:8443\r\nReferer: https://evil.example/x\r\n\r\n",
                vec!["query:PHPSESSID PHPSESSID from evil.example"],
            ),
            (
                "GET /a?__Secure-next-auth.session-token=t HTTP/1.1\r\nHost: a.example\r\nReferer: http://a.example.evil/\r\n\r\n",
                vec!["query:__Secure-next-auth.session-token __Secure-next-auth.session-token from a.example.evil"],
            ),
            (
                "POST /login HTTP/1.1\r\nHost: w.example\r\nReferer: https://attacker.example/\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nsessionid=abc&user=x",
                vec!["form:sessionid sessionid from attacker.example"],
            ),
            (
                "POST / HTTP/1.1\r\nHost: w.example\r\nContent-Type: application/json\r\n\r\n{\"ASPSESSIONIDQQGGQGTA\":\"x\"}",
                vec!["body:$.ASPSESSIONIDQQGGQGTA ASPSESSIONIDQQGGQGTA without a referer"],
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(planted(raw), want, "{raw}");
        }
    }

    #[test]
    fn same_site_links_cookies_and_api_fields_are_fine() {
        for raw in [
            // The site's own page links with a rewritten session (servlet URL rewriting).
            "GET /cart?jsessionid=74B0CB41 HTTP/1.1\r\nHost: shop.example\r\nReferer: https://shop.example:443/list\r\n\r\n",
            // Session ids in cookies are where they belong.
            "GET / HTTP/1.1\r\nHost: a\r\nCookie: JSESSIONID=abc; PHPSESSID=def\r\n\r\n",
            // A chat API's own session field, called by a client without a referer.
            "POST /v1/chat HTTP/1.1\r\nHost: api.example\r\nContent-Type: application/json\r\n\r\n{\"session_id\":\"s-1\",\"text\":\"hi\"}",
            "GET /uploads?session_id=42 HTTP/1.1\r\nHost: api.example\r\n\r\n",
            // Names that only contain a session word.
            "GET /?my_jsessionid_count=3&sessions=2 HTTP/1.1\r\nHost: a\r\nReferer: http://b/\r\n\r\n",
            // A session id as a value, not a name.
            "GET /?q=jsessionid HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            assert_eq!(planted(raw), Vec::<String>::new(), "{raw}");
        }
    }

    #[test]
    fn cookie_setting_payloads() {
        let flag = |v: &str| !run_check(check, Source::Query, "q", v).is_empty();
        for v in [
            "blah<script>document.cookie=\"sessionid=1234; domain=.example.dom\";</script>",
            ".cookie;expires=",
            "x';document.cookie='sid=1;path=/';'",
            "<meta http-equiv=\"Set-Cookie\" content=\"sid=1\">",
            "<META HTTP-EQUIV=Set-Cookie CONTENT=\"s=1\">",
        ] {
            assert!(flag(v), "{v}");
        }
        for v in [
            "document.cookie",
            "We use a cookie; expires in a year",
            "the .cookies; path=/ option",
            "<meta http-equiv=\"refresh\" content=\"5\">",
            "set the cookie domain=example.com in settings",
            "Cookie: a=1; Domain=x",
        ] {
            assert!(!flag(v), "{v}");
        }
    }
}
