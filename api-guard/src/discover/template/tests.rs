use super::*;
use crate::testutil::Rng;

fn templater() -> Templater {
    Templater::new(&TemplateConfig::default())
}

fn t(tp: &mut Templater, path: &str) -> String {
    tp.template("api.example.com", path).text().to_string()
}

fn routes(tp: &Templater) -> Vec<&str> {
    tp.routes("api.example.com").collect()
}

#[test]
fn identifiers_become_named_parameters() {
    let mut tp = templater();
    assert_eq!(t(&mut tp, "/users/123"), "/users/{userId}");
    assert_eq!(t(&mut tp, "/users/456"), "/users/{userId}");
    assert_eq!(
        t(
            &mut tp,
            "/users/123/orders/123e4567-e89b-12d3-a456-426614174000"
        ),
        "/users/{userId}/orders/{orderId}"
    );
    assert_eq!(
        t(&mut tp, "/commits/da39a3ee5e6b4b0d"),
        "/commits/{commitId}"
    );
    assert_eq!(t(&mut tp, "/reports/2024-01-31"), "/reports/{reportId}");
    assert_eq!(
        t(&mut tp, "/accounts/alice@example.com"),
        "/accounts/{accountId}"
    );
    assert_eq!(t(&mut tp, "/categories/42"), "/categories/{categoryId}");
    assert_eq!(t(&mut tp, "/addresses/42"), "/addresses/{addressId}");
    assert_eq!(
        t(&mut tp, "/tokens/dGhpcyBpcyBhIHRlc3Q9"),
        "/tokens/{tokenId}"
    );
    assert_eq!(t(&mut tp, "/42"), "/{id}");
    assert_eq!(t(&mut tp, "/42/7"), "/{id}/{id2}");
    assert_eq!(t(&mut tp, "/v1/42"), "/v1/{id}");
    assert_eq!(t(&mut tp, "/users/1/users/2"), "/users/{userId}/users/{id}");
    assert_eq!(tp.route_count("api.example.com"), 12);
    assert_eq!(tp.overflow_count(), 0);
    assert_eq!(tp.epoch(), 0);
}

#[test]
fn words_stay_literal() {
    let mut tp = templater();
    for path in [
        "/v1",
        "/api/v2/health",
        "/2fa",
        "/users/me",
        "/static/app.js",
        "/static/jquery-3.6.0.min.js",
        "/api/getUserProfileSettings",
        "/oauth2-callback-v2",
        "/.well-known/openid-configuration",
        "/a/b/c",
    ] {
        assert_eq!(t(&mut tp, path), path);
    }
    assert_eq!(tp.route_count("api.example.com"), 10);
}

#[test]
fn values_and_positions() {
    let mut tp = templater();
    let path = "/users/123/orders/9f2c1a0b77?x=1";
    let route = tp.template("h", path);
    assert_eq!(route.source, Source::Learned);
    assert_eq!(
        &*route.template.params,
        &[
            Param {
                segment: 1,
                name: "userId".into()
            },
            Param {
                segment: 3,
                name: "orderId".into()
            }
        ]
    );
    let values: Vec<_> = route.values(path).collect();
    assert_eq!(values, [("userId", "123"), ("orderId", "9f2c1a0b77")]);
}

#[test]
fn normalisation() {
    let mut tp = templater();
    assert_eq!(t(&mut tp, "/users/123/"), "/users/{userId}");
    assert_eq!(t(&mut tp, "//users//123?a=b#frag"), "/users/{userId}");
    assert_eq!(t(&mut tp, "users/123"), "/users/{userId}");
    assert_eq!(
        t(&mut tp, "HTTPS://Api.Example.com/users/7?q"),
        "/users/{userId}"
    );
    assert_eq!(t(&mut tp, "/users/%31%32"), "/users/{userId}");
    assert_eq!(t(&mut tp, "/"), "/");
    assert_eq!(t(&mut tp, ""), "/");
    assert_eq!(t(&mut tp, "?x=1"), "/");
    assert_eq!(t(&mut tp, "/{x}/*"), "/{id}/{id2}");
    let long = format!("/files/{}", "a".repeat(129));
    assert_eq!(t(&mut tp, &long), "/files/{fileId}");
    assert_eq!(
        routes(&tp),
        ["/", "/files/{fileId}", "/users/{userId}", "/{id}/{id2}"]
    );
    assert_eq!(tp.overflow_count(), 0);
}

#[test]
fn hosts_are_case_insensitive_and_keep_the_port() {
    let mut tp = templater();
    tp.template("API.Example.com", "/a");
    tp.template("api.example.com", "/b");
    tp.template("api.example.com:8080", "/c");
    assert_eq!(tp.host_count(), 2);
    assert_eq!(
        tp.routes("Api.Example.Com").collect::<Vec<_>>(),
        ["/a", "/b"]
    );
    assert_eq!(
        tp.routes("api.example.com:8080").collect::<Vec<_>>(),
        ["/c"]
    );
    assert_eq!(tp.routes("other").count(), 0);
}

#[test]
fn high_cardinality_position_folds() {
    let mut tp = templater();
    for i in 0..50 {
        let path = format!("/files/report{i}.pdf");
        assert_eq!(t(&mut tp, &path), path);
    }
    assert_eq!(t(&mut tp, "/files/x/meta"), "/files/x/meta");
    let old = tp.template("api.example.com", "/files/report0.pdf");
    assert_eq!(tp.route_count("api.example.com"), 51);
    assert_eq!(tp.epoch(), 0);
    // The 51st distinct name folds the position; earlier names map there too.
    assert_eq!(t(&mut tp, "/files/notes.txt"), "/files/{file}");
    assert_eq!(t(&mut tp, "/files/report0.pdf"), "/files/{file}");
    assert_eq!(t(&mut tp, "/files/anything"), "/files/{file}");
    assert_eq!(tp.epoch(), 1);
    assert_eq!(tp.route_count("api.example.com"), 2);
    // Paths of another length are decided apart.
    assert_eq!(routes(&tp), ["/files/{file}", "/files/x/meta"]);
    assert_eq!(t(&mut tp, "/files/y/meta"), "/files/y/meta");
    // The caller re-keys what it kept.
    assert_eq!(&*old.template.text, "/files/report0.pdf");
    assert_eq!(
        tp.canonical("API.example.com", "/files/report0.pdf")
            .as_deref(),
        Some("/files/{file}")
    );
    assert_eq!(
        tp.canonical("api.example.com", "/files/x/meta").as_deref(),
        Some("/files/x/meta")
    );
    assert_eq!(tp.canonical("api.example.com", "/files/{file}/*"), None);
    assert_eq!(tp.canonical("api.example.com", "/nothing"), None);
    assert_eq!(tp.canonical("other", "/files/{file}"), None);
}

#[test]
fn fold_merges_subtrees_and_keeps_identifier_names() {
    let mut tp = templater();
    assert_eq!(t(&mut tp, "/shops/7/items"), "/shops/{shopId}/items");
    for i in 0..50 {
        let path = format!("/shops/shop{i}/items");
        assert_eq!(t(&mut tp, &path), path);
    }
    assert_eq!(t(&mut tp, "/shops/shop0/orders"), "/shops/shop0/orders");
    assert_eq!(tp.route_count("api.example.com"), 52);
    // The existing identifier parameter takes the folded names; its name stays.
    assert_eq!(t(&mut tp, "/shops/last/items"), "/shops/{shopId}/items");
    assert_eq!(
        routes(&tp),
        ["/shops/{shopId}/items", "/shops/{shopId}/orders"]
    );
    assert_eq!(tp.route_count("api.example.com"), 2);
    assert_eq!(
        tp.canonical("api.example.com", "/shops/shop0/orders")
            .as_deref(),
        Some("/shops/{shopId}/orders")
    );
}

#[test]
fn folding_inside_a_fold() {
    // Merging the subtrees of a folded position gives its parameter child more than
    // max_children literals at the next position: that one folds as well.
    let mut tp = Templater::new(&TemplateConfig {
        max_children: 3,
        ..TemplateConfig::default()
    });
    for (a, b) in [("a", "w"), ("b", "x"), ("c", "y")] {
        t(&mut tp, &format!("/{a}/{b}"));
    }
    t(&mut tp, "/c/z");
    assert_eq!(tp.route_count("api.example.com"), 4);
    assert_eq!(t(&mut tp, "/d/w"), "/{id}/{id2}");
    assert_eq!(routes(&tp), ["/{id}/{id2}"]);
    assert_eq!(tp.route_count("api.example.com"), 1);
    assert_eq!(tp.epoch(), 2);
}

#[test]
fn known_templates_win() {
    let mut tp = templater();
    assert_eq!(t(&mut tp, "/users/123/profile"), "/users/{userId}/profile");
    assert_eq!(tp.add_known(None, "/users/{id}/profile"), Ok(true));
    assert_eq!(tp.add_known(None, "/users/{uid}/profile"), Ok(false));
    assert_eq!(tp.add_known(None, "/users/me/profile"), Ok(true));
    assert_eq!(
        tp.add_known(Some("Admin.Example.com"), "/users/{name}"),
        Ok(true)
    );
    assert_eq!(tp.add_known(None, "/files/{path}"), Ok(true));
    assert_eq!(tp.known_count(), 4);

    let route = tp.template("api.example.com", "/users/123/profile");
    assert_eq!(route.source, Source::Known);
    assert_eq!(&**route.text(), "/users/{id}/profile");
    // Literal beats parameter.
    assert_eq!(t(&mut tp, "/users/me/profile/"), "/users/me/profile");
    // Known parameters take any value, even a word that would stay literal.
    assert_eq!(t(&mut tp, "/files/readme"), "/files/{path}");
    // Host-specific ones apply to that host only.
    assert_eq!(
        tp.template("admin.example.com", "/users/bob")
            .text()
            .as_ref(),
        "/users/{name}"
    );
    assert_eq!(t(&mut tp, "/users/bob"), "/users/bob");
    // Not matching any known template: learned.
    assert_eq!(
        t(&mut tp, "/users/123/settings"),
        "/users/{userId}/settings"
    );
    // The route learned before stays listed; known ones are not.
    assert_eq!(
        routes(&tp),
        [
            "/users/bob",
            "/users/{userId}/profile",
            "/users/{userId}/settings"
        ]
    );
    assert_eq!(
        tp.canonical("api.example.com", "/users/{x}/profile")
            .as_deref(),
        Some("/users/{id}/profile")
    );
}

#[test]
fn known_template_errors() {
    let mut tp = Templater::new(&TemplateConfig {
        max_known: 2,
        max_segments: 3,
        ..TemplateConfig::default()
    });
    assert_eq!(
        tp.add_known(None, "/report.{format}"),
        Err(TemplateError::PartialParam { index: 0 })
    );
    assert_eq!(
        tp.add_known(None, "/a/{}"),
        Err(TemplateError::BadName { index: 1 })
    );
    assert_eq!(
        tp.add_known(None, "/a/b/c/d"),
        Err(TemplateError::TooDeep { max: 3 })
    );
    assert_eq!(tp.add_known(None, "/"), Ok(true));
    assert_eq!(tp.add_known(None, "/a/{b}/c"), Ok(true));
    assert_eq!(
        tp.add_known(None, "/x"),
        Err(TemplateError::TooMany { max: 2 })
    );
    assert_eq!(t(&mut tp, "//"), "/");
    assert_eq!(tp.template("h", "/").source, Source::Known);
}

#[test]
fn overflow_when_full() {
    let mut tp = Templater::new(&TemplateConfig {
        max_routes_per_host: 3,
        max_hosts: 2,
        max_segments: 4,
        max_path_len: 64,
        ..TemplateConfig::default()
    });
    assert_eq!(t(&mut tp, "/users/1"), "/users/{userId}");
    assert_eq!(t(&mut tp, "/users/1/orders"), "/users/{userId}/orders");
    assert_eq!(t(&mut tp, "/health"), "/health");
    let route = tp.template("api.example.com", "/users/2/carts");
    assert_eq!(route.source, Source::Overflow);
    assert_eq!(&**route.text(), "/users/{userId}/*");
    assert_eq!(
        route.values("/users/2/carts").collect::<Vec<_>>(),
        [("userId", "2")]
    );
    assert_eq!(t(&mut tp, "/ready"), "/*");
    assert_eq!(t(&mut tp, "/"), "/*");
    // Existing routes still resolve.
    assert_eq!(t(&mut tp, "/users/9/orders"), "/users/{userId}/orders");
    assert_eq!(tp.overflow_count(), 3);
    // Too deep, too long, too many hosts.
    assert_eq!(t(&mut tp, "/a/b/c/d/e"), "/*");
    assert_eq!(t(&mut tp, &format!("/{}", "a".repeat(64))), "/*");
    assert_eq!(tp.template("second", "/x").source, Source::Learned);
    assert_eq!(tp.template("third", "/x").source, Source::Overflow);
    assert_eq!(tp.overflow_count(), 6);
    assert_eq!(tp.host_count(), 2);
    assert_eq!(tp.route_count("api.example.com"), 3);
    assert_eq!(tp.total_routes(), 4);
}

#[test]
fn total_route_limit() {
    let mut tp = Templater::new(&TemplateConfig {
        max_routes_total: 2,
        ..TemplateConfig::default()
    });
    assert_eq!(tp.template("a", "/x").source, Source::Learned);
    assert_eq!(tp.template("b", "/x").source, Source::Learned);
    assert_eq!(tp.template("c", "/x").source, Source::Overflow);
    assert_eq!(tp.template("a", "/x").source, Source::Learned);
    assert_eq!(tp.total_routes(), 2);
}

#[test]
fn config_defaults_and_validation() {
    let cfg: TemplateConfig = toml::from_str("max_children = 10").unwrap();
    assert_eq!(cfg.max_children, 10);
    assert_eq!(cfg.max_routes_per_host, 1000);
    assert!(toml::from_str::<TemplateConfig>("max_kids = 1").is_err());
    assert_eq!(cfg.validate(), Ok(()));
    let bad = TemplateConfig {
        max_segments: 65,
        ..TemplateConfig::default()
    };
    assert_eq!(
        bad.validate().unwrap_err().field,
        "discover.templates.max_segments"
    );
}

/// A random segment: mostly lowercase words (literals), some tokens and numbers.
fn segment(rng: &mut Rng, out: &mut String) {
    const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
    const MIXED: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    let (set, len) = match rng.below(10) {
        0 => (MIXED, 8 + rng.below(40)),
        1 => (&b"0123456789"[..], 1 + rng.below(12)),
        _ => (LOWER, 1 + rng.below(12)),
    };
    for _ in 0..len {
        let i = rng.below(set.len() as u64) as usize;
        out.push(char::from(set[i]));
    }
}

#[test]
fn adversarial_random_paths_stay_bounded() {
    let cfg = TemplateConfig::default();
    let mut tp = Templater::new(&cfg);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut path = String::new();
    let mut host = String::new();
    let mut overflow_routes = 0u64;
    for i in 0..1_000_000u32 {
        path.clear();
        path.push_str("/a");
        for _ in 0..rng.below(40) {
            path.push('/');
            segment(&mut rng, &mut path);
        }
        host.clear();
        if i % 8 == 0 {
            host.push_str(&format!("h{}", rng.below(5000)));
        } else {
            host.push_str("api.example.com");
        }
        let route = tp.template(&host, &path);
        if route.source == Source::Overflow {
            overflow_routes += 1;
            assert!(route.text().ends_with("/*"), "{}", route.text());
        }
    }
    assert!(tp.host_count() <= cfg.max_hosts);
    assert!(tp.route_count("api.example.com") <= cfg.max_routes_per_host);
    assert!(tp.total_routes() <= cfg.max_routes_total);
    assert_eq!(tp.overflow_count(), overflow_routes);
    assert!(tp.overflow_count() > 0);
    let listed: usize = tp.routes("api.example.com").count();
    assert_eq!(listed, tp.route_count("api.example.com"));
    // Exact, as everything is deterministic: 1/8 of the requests go to 5000 hosts (1000
    // kept), a fifth are deeper than 32 segments, and the main host's positions all fold.
    assert_eq!(tp.host_count(), 1000);
    assert_eq!(tp.route_count("api.example.com"), 32);
    assert_eq!(tp.total_routes(), 20717);
    assert_eq!(tp.overflow_count(), 285_246);
    assert_eq!(tp.epoch(), 496);
}

#[test]
fn adversarial_wide_tree_fills_and_overflows() {
    // 40 × 40 literal pairs stay under max_children at each position but need 1600 routes.
    let mut tp = templater();
    for a in 0..40 {
        for b in 0..40 {
            tp.template("h", &format!("/p{a}x/q{b}y"));
        }
    }
    assert_eq!(tp.route_count("h"), 1000);
    assert_eq!(tp.overflow_count(), 600);
    assert_eq!(tp.routes("h").count(), 1000);
    // The first 25 first segments got all their routes, the rest none.
    assert_eq!(tp.template("h", "/p0x/zzz").text().as_ref(), "/p0x/*");
    assert_eq!(tp.template("h", "/p24x/q39y").source, Source::Learned);
    assert_eq!(tp.template("h", "/p25x/q0y").text().as_ref(), "/*");
    assert_eq!(tp.epoch(), 0);
}

#[test]
fn full_table_still_folds() {
    // 50 first segments with 20 second segments each: full, no position past 50.
    let mut tp = templater();
    for a in 0..50 {
        for b in 0..20 {
            tp.template("h", &format!("/p{a}x/q{b}y"));
        }
    }
    assert_eq!(tp.route_count("h"), 1000);
    // The same new path asked again and again is one unseen value: no fold.
    for _ in 0..100 {
        assert_eq!(tp.template("h", "/p0x/new").text().as_ref(), "/p0x/*");
    }
    assert_eq!(tp.epoch(), 0);
    // Distinct values the full table could not store still fold their position.
    let mut folded_at = None;
    for c in 0..100 {
        let route = tp.template("h", &format!("/p0x/new{c}"));
        if route.source == Source::Learned {
            folded_at = Some(c);
            break;
        }
    }
    // "new" and new0..=new29: 20 stored and 31 unseen values make the 51st.
    assert_eq!(folded_at, Some(29));
    assert_eq!(tp.epoch(), 1);
    assert_eq!(tp.route_count("h"), 981);
    assert_eq!(tp.template("h", "/p0x/q3y").text().as_ref(), "/p0x/{id}");
}
