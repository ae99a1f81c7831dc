//! The enforcer against real (standalone) kernel maps: needs root, like the rest of the suite.

use api_guard_common::xdp::{BlockEntry, REASON_CONFIG, REASON_MANUAL};
use aya::maps::{lpm_trie::Key, HashMap, LpmTrie, PerCpuArray};
use serde_json::Value;

use super::*;
use crate::{
    config::Config,
    exchange::{test_exchange, Role},
};
use api_guard::event::MAX_EVENT_PATH;

/// `BPF_F_NO_PREALLOC`, which LPM tries require.
const NO_PREALLOC: u32 = 1;

fn maps() -> xdp::XdpMaps {
    let hint = "creating BPF maps (the unit tests need root)";
    xdp::XdpMaps {
        block_v4: HashMap::create(64, 0).expect(hint),
        block_v6: HashMap::create(64, 0).expect(hint),
        cidr_v4: LpmTrie::create(64, NO_PREALLOC).expect(hint),
        cidr_v6: LpmTrie::create(64, NO_PREALLOC).expect(hint),
        allow_v4: LpmTrie::create(64, NO_PREALLOC).expect(hint),
        allow_v6: LpmTrie::create(64, NO_PREALLOC).expect(hint),
        ifaces: HashMap::create(8, 0).expect(hint),
        stats: PerCpuArray::create(XDP_STAT_COUNT_U32, 0).expect(hint),
    }
}
const XDP_STAT_COUNT_U32: u32 = api_guard_common::xdp::XDP_STAT_COUNT;

struct Fixture {
    enforcer: Arc<Enforcer>,
    metrics: Metrics,
    events: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Fixture {
    fn new(toml: &str, maps: xdp::XdpMaps) -> Self {
        let config = Config::parse(toml, "test").expect("valid config");
        let metrics = Metrics::new();
        let (sink, events) = EventSink::memory();
        let enforcer = Enforcer::new(
            &config.enforce,
            &config.identity.trusted_proxies,
            maps,
            Vec::new(),
            &[],
            metrics.clone(),
            sink,
        )
        .expect("enforcer");
        Fixture {
            enforcer,
            metrics,
            events,
        }
    }

    fn events(&self) -> Vec<Value> {
        let bytes = self.events.lock().expect("events").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| serde_json::from_str(l).expect("event JSON"))
            .collect()
    }

    fn kernel(&self, target: &str) -> Option<BlockEntry> {
        self.enforcer
            .lock()
            .maps
            .get(&target.parse().expect("target"))
    }
}

fn manual(target: &str, secs: u64) -> BlockRequest {
    BlockRequest {
        target: target.parse().expect("target"),
        duration: Some(Duration::from_secs(secs)),
        reason: BlockReason::Manual,
        policy: None,
        detail: None,
    }
}

#[test]
fn full_blocklist_evicts_the_soonest_ending_and_says_so() {
    let f = Fixture::new("[enforce]\nmax_blocks = 2\n", maps());
    let e = &f.enforcer;
    assert_eq!(
        e.block(manual("10.0.0.1", 100)).unwrap(),
        BlockOutcome::Blocked
    );
    assert_eq!(
        e.block(manual("10.0.0.2", 10)).unwrap(),
        BlockOutcome::Blocked
    );
    assert_eq!(
        e.block(manual("10.0.0.3", 50)).unwrap(),
        BlockOutcome::Blocked
    );
    assert!(
        f.kernel("10.0.0.2").is_none(),
        "evicted from the kernel too"
    );
    assert!(f.kernel("10.0.0.1").is_some() && f.kernel("10.0.0.3").is_some());
    let kinds: Vec<(String, String)> = f
        .events()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().into(),
                e["target"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("block", "10.0.0.1"),
        ("block", "10.0.0.2"),
        ("unblock", "10.0.0.2"),
        ("block", "10.0.0.3"),
    ];
    assert_eq!(kinds, want.map(|(a, b)| (a.to_string(), b.to_string())));
    let m = &f.metrics;
    assert_eq!(m.enforce.evictions(Table::Blocklist), 1);
    assert_eq!(m.enforce.unblocks(UnblockReason::Evicted), 1);
    assert_eq!(m.enforce.blocked_clients(), 2);
}

#[test]
fn a_second_block_extends_to_the_later_end() {
    let f = Fixture::new("", maps());
    let e = &f.enforcer;
    e.block(manual("2001:db8::7", 100)).unwrap();
    let first = f.kernel("2001:db8::7").unwrap().expires_ns;
    assert_eq!(
        e.block(manual("2001:db8::7", 10)).unwrap(),
        BlockOutcome::Extended
    );
    assert_eq!(
        f.kernel("2001:db8::7").unwrap().expires_ns,
        first,
        "shorter: unchanged"
    );
    assert_eq!(
        e.block(manual("2001:db8::7", 1000)).unwrap(),
        BlockOutcome::Extended
    );
    let later = f.kernel("2001:db8::7").unwrap().expires_ns;
    assert!(later >= first + 899 * 1_000_000_000, "{first} -> {later}");
    assert_eq!(e.list().len(), 1);
    assert_eq!(f.metrics.enforce.blocks(BlockReason::Manual), 1);
}

#[test]
fn adoption_keeps_live_blocks_and_clears_stale_ones() {
    let mut m = maps();
    let now = monotonic_now_ns();
    let entry = |expires_ns, reason| BlockEntry {
        expires_ns,
        hits: 7,
        reason,
        _pad: 0,
    };
    m.block_v4
        .insert([10, 0, 0, 1], entry(now + 60_000_000_000, REASON_MANUAL), 0)
        .unwrap();
    m.block_v4
        .insert([10, 0, 0, 2], entry(now - 1, REASON_MANUAL), 0)
        .unwrap();
    m.cidr_v4
        .insert(&Key::new(24, [192, 0, 2, 0]), entry(0, REASON_CONFIG), 0)
        .unwrap();
    let f = Fixture::new("[enforce]\ndeny = [\"198.51.100.0/24\"]\n", m);
    let listed: Vec<(String, String)> = f
        .enforcer
        .list()
        .into_iter()
        .map(|b| (b.target, b.reason))
        .collect();
    assert_eq!(
        listed,
        [("10.0.0.1", "manual"), ("198.51.100.0/24", "config")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(f.enforcer.list()[0].hits, 7, "hit counts survive");
    assert!(f.kernel("10.0.0.2").is_none(), "expired entry removed");
    assert!(
        f.kernel("192.0.2.0/24").is_none(),
        "config entry no longer configured"
    );
    assert!(f.kernel("198.51.100.0/24").is_some());
}

#[test]
fn policies_block_server_clients_and_ignore_client_roles() {
    let f = Fixture::new(
        "[[enforce.policies]]\nname = \"p\"\nkey = \"client_ip\"\nrate = 1.0\nburst = 1\n\
         action = \"block\"\nblock_secs = 30\n",
        maps(),
    );
    let e = &f.enforcer;
    // Outbound calls of this host never count: the peer is someone else's server.
    for _ in 0..5 {
        e.observe(&test_exchange(Role::Client, "203.0.113.1:443", "/"));
    }
    assert!(f.events().is_empty());
    e.observe(&test_exchange(
        Role::Server,
        "[::ffff:203.0.113.9]:5000",
        "/a",
    ));
    e.observe(&test_exchange(
        Role::Server,
        "[::ffff:203.0.113.9]:5001",
        "/b",
    ));
    let events = f.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let b = &events[0];
    assert_eq!(b["type"], "block");
    assert_eq!(
        b["target"], "203.0.113.9",
        "v4-mapped peers are blocked as IPv4"
    );
    assert_eq!(
        (b["policy"].as_str(), b["duration_secs"].as_u64()),
        (Some("p"), Some(30))
    );
    assert_eq!(b["request"]["path"], "/b");
    assert_eq!(b["request"]["comm"], "srv");
    assert!(f.kernel("203.0.113.9").is_some());
    assert_eq!(f.metrics.enforce.ratelimit_exceeded_count("p"), 1);
    // Already blocked: more breaches extend, no new event.
    e.observe(&test_exchange(Role::Server, "203.0.113.9:5002", "/c"));
    assert_eq!(f.events().len(), 1);
    // Events quote at most MAX_EVENT_PATH bytes of a path, cut at a character boundary.
    let long = format!("/{}", "é".repeat(400));
    e.observe(&test_exchange(Role::Server, "203.0.113.10:1", &long));
    e.observe(&test_exchange(Role::Server, "203.0.113.10:2", &long));
    let quoted = f.events()[1]["request"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        quoted.len() <= MAX_EVENT_PATH && long.starts_with(&quoted),
        "{}",
        quoted.len()
    );
}

#[test]
fn manual_blocks_respect_allowlist_and_proxies_and_config_entries_stay() {
    let f = Fixture::new(
        "[enforce]\nallowlist = [\"10.1.0.0/16\"]\ntrusted_proxies = [\"10.2.0.1\"]\n\
         deny = [\"192.0.2.0/24\"]\n",
        maps(),
    );
    let e = &f.enforcer;
    assert!(matches!(
        e.block(manual("10.1.2.3", 5)),
        Err(EnforceError::Allowlisted(_))
    ));
    assert!(matches!(
        e.block(manual("10.2.0.1", 5)),
        Err(EnforceError::TrustedProxy(_))
    ));
    let deny = "192.0.2.0/24".parse().unwrap();
    assert!(matches!(e.unblock(&deny), Err(EnforceError::Configured(_))));
    let other = "10.9.9.9".parse().unwrap();
    assert!(matches!(
        e.unblock(&other),
        Err(EnforceError::NotBlocked(_))
    ));
    // The kernel allowlist holds both ranges (the allowlist wins over any block there).
    let state = e.lock();
    let allow: Vec<u32> = state
        .maps
        .allow_v4
        .keys()
        .flatten()
        .map(|k| k.prefix_len())
        .collect();
    assert_eq!(allow.len(), 2, "{allow:?}");
}

#[test]
fn api_key_policies_report_hashes_never_keys() {
    let f = Fixture::new(
        "[[enforce.policies]]\nname = \"keys\"\nkey = \"api_key\"\nrate = 1.0\nburst = 1\n",
        maps(),
    );
    let mut ex = test_exchange(Role::Server, "198.51.100.4:4000", "/v1/items");
    ex.http.request_headers = [("X-Api-Key", "s3cr3t-key-0001")].into();
    // As the parsing task identifies it (default API key places).
    let peer = ex.conn.peer.map(|p| p.ip());
    let identifier = crate::config::IdentityConfig::default().identifier();
    ex.client = Some(identifier.identify(peer, &ex.http.request_headers, None));
    f.enforcer.observe(&ex);
    f.enforcer.observe(&ex);
    // Without a credential the policy does not apply.
    f.enforcer.observe(&test_exchange(
        Role::Server,
        "198.51.100.4:4001",
        "/v1/items",
    ));
    let events = f.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["type"], "ratelimit_exceeded", "action log: reported only");
    assert_eq!(e["enforced"], false);
    let hash = e["client"]["credential"].as_str().unwrap();
    assert!(hash.starts_with("sha256:") && hash.len() == 23, "{hash}");
    assert_eq!(e["detail"], hash, "the key exceeded is the hash");
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(f.enforcer.list().is_empty());
}

/// Cluster mode: local decisions are handed to the cluster queue (config entries and remote
/// ones are not), remote blocks land in the kernel with their end and origin, the allowlist
/// wins, and a remote unblock lifts.
#[test]
fn cluster_blocks_are_shared_and_applied() {
    let f = Fixture::new(
        "[enforce]\nallowlist = [\"198.51.100.9\"]\ndeny = [\"203.0.113.0/24\"]\n",
        maps(),
    );
    let (publisher, mut queue) = crate::cluster::channel(8, "node-a".into(), f.metrics.clone());
    f.enforcer.set_cluster(publisher, ClusterParams::default());
    let mut published = || {
        let mut out = Vec::new();
        while let Ok(crate::cluster::Outgoing::Block(m)) = queue.try_recv() {
            out.push(m);
        }
        out
    };

    f.enforcer.block(manual("192.0.2.1", 60)).expect("block");
    let shared = published();
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert_eq!(
        (shared[0].target.as_str(), shared[0].node.as_str()),
        ("192.0.2.1", "node-a")
    );
    let left = shared[0].until_ms.expect("an end") - crate::cluster::unix_ms();
    assert!((59_000..=60_001).contains(&left), "{left}");

    let node_b: Arc<str> = "node-b".into();
    let now = monotonic_now_ns();
    let remote = |target: &str| RemoteChange::Block {
        target: target.parse().expect("target"),
        until_ns: Some(now + 30_000_000_000),
        reason: BlockReason::Detection,
        policy: None,
        detail: Some("sqli".into()),
    };
    assert_eq!(
        f.enforcer.apply_remote(remote("192.0.2.2"), &node_b),
        RemoteResult::Applied
    );
    assert_eq!(
        f.enforcer.apply_remote(remote("198.51.100.9"), &node_b),
        RemoteResult::Refused
    );
    assert!(published().is_empty(), "remote blocks are not shared again");
    let entry = f.kernel("192.0.2.2").expect("in the kernel");
    assert_eq!(entry.expires_ns, now + 30_000_000_000);
    assert!(f.kernel("198.51.100.9").is_none());
    let blocks = f.events();
    let remote_event = blocks
        .iter()
        .find(|e| e["type"] == "block" && e["target"] == "192.0.2.2")
        .expect("block event");
    assert_eq!(remote_event["decided_by"], "node-b");
    assert!(blocks
        .iter()
        .any(|e| e["target"] == "192.0.2.1" && e["decided_by"] == "node-a"));
    // Only this node's own, non-config blocks are re-announced.
    let own: Vec<String> = f
        .enforcer
        .own_blocks()
        .into_iter()
        .map(|m| m.target)
        .collect();
    assert_eq!(own, ["192.0.2.1"]);

    assert_eq!(
        f.enforcer.apply_remote(
            RemoteChange::Unblock {
                target: "192.0.2.2".parse().expect("target")
            },
            &node_b
        ),
        RemoteResult::Unblocked
    );
    assert!(f.kernel("192.0.2.2").is_none());
    let lifted = f
        .events()
        .into_iter()
        .find(|e| e["type"] == "unblock")
        .expect("unblock");
    assert_eq!(
        (&lifted["reason"], &lifted["decided_by"]),
        (&"cluster".into(), &"node-b".into())
    );
    f.enforcer
        .unblock(&"192.0.2.1".parse().expect("target"))
        .expect("unblock");
    let shared = published();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].op, crate::cluster::wire::Op::Unblock);
}

/// The policy flags read without the lock follow the policies through reloads: none (the
/// default), a request policy, a token policy, none again; observing acts on the policies
/// in force after each.
#[test]
fn policy_flags_follow_reloads() {
    let f = Fixture::new("", maps());
    let e = &f.enforcer;
    let flags = |e: &Enforcer| {
        let state = e.lock();
        (
            PolicyFlags::of(&state.policies),
            !state.policies.is_empty(),
            state.policies.limits_tokens(),
        )
    };
    let check = |e: &Enforcer| {
        let (bits, any, tokens) = flags(e);
        assert_eq!(e.policy_flags.load(Ordering::Relaxed), bits);
        assert_eq!(bits & PolicyFlags::ANY != 0, any);
        assert_eq!(e.limits_tokens(), tokens);
        (any, tokens)
    };
    assert_eq!(check(e), (false, false), "no policy by default");
    e.observe(&test_exchange(Role::Server, "203.0.113.9:5000", "/a"));
    let requests = "[[enforce.policies]]\nname = \"p\"\nkey = \"client_ip\"\nrate = 1.0\n\
                    burst = 1\naction = \"log\"\n";
    let tokens = "[[enforce.policies]]\nname = \"t\"\nkey = \"client_ip\"\nrate = 1.0\n\
                  burst = 1000\nunit = \"tokens\"\naction = \"log\"\n";
    let reload = |toml: &str| {
        let config = Config::parse(toml, "test").expect("valid config");
        e.reconfigure(&config.enforce, &config.identity.trusted_proxies)
            .expect("reload");
    };
    reload(requests);
    assert_eq!(check(e), (true, false));
    for port in 0..3 {
        e.observe(&test_exchange(
            Role::Server,
            &format!("203.0.113.9:{}", 5000 + port),
            "/a",
        ));
    }
    assert_eq!(
        f.metrics.enforce.ratelimit_exceeded_count("p"),
        2,
        "the reloaded policy counts"
    );
    reload(&format!("{requests}{tokens}"));
    assert_eq!(check(e), (true, true));
    reload(tokens);
    assert_eq!(check(e), (true, true));
    reload("");
    assert_eq!(check(e), (false, false));
    e.observe(&test_exchange(Role::Server, "203.0.113.9:5009", "/a"));
    assert_eq!(f.metrics.enforce.ratelimit_exceeded_count("p"), 2);
}
