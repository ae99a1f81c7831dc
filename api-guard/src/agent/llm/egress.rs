//! The shadow-AI egress inventory: for every local process, which AI providers of
//! `llm.providers` it calls (matched on the Host / `:authority` of its requests), with which
//! key hashes and models, how many tokens went in and out, first and last seen. Read through
//! the control socket (`api-guard llm egress`), kept across restarts in
//! `<state_dir>/llm_egress.json`. Bounded: past `llm.max_egress_entries` rows the least
//! recently seen row is evicted (counted); each row keeps a few hosts, keys and models and
//! counts the others.
//!
//! When `llm.allowed_providers` is set, a process that starts calling another provider is an
//! `llm_unapproved_provider` event (once per process and provider while its row is kept).

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hasher},
    sync::Arc,
};

use api_guard::{
    event::{EventBody, LlmEgress, SecurityEvent},
    llm::{providers::ProviderMatcher, LlmCall, UsageSource},
};
use serde::{Deserialize, Serialize};
use tracing::debug;

use super::book::{Persisted, Shared};
use crate::{exchange::Exchange, output::EventSink, telemetry::Metrics, wallclock};

pub const SNAPSHOT_FILE: &str = "llm_egress.json";

/// Hosts, key hashes and models kept per row (more are counted in `*_dropped`).
const MAX_HOSTS: usize = 4;
const MAX_KEYS: usize = 8;
const MAX_MODELS: usize = 16;
/// Longest cgroup path kept.
const MAX_CGROUP_LEN: usize = 256;

/// One process × provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EgressRow {
    pub comm: String,
    pub pid: u32,
    /// The process's cgroup v2 path (`/system.slice/…`, `/kubepods/…`), when readable.
    pub cgroup: Option<String>,
    /// A container id (12 hex digits) found in the cgroup path.
    pub container: Option<String>,
    pub provider: String,
    pub hosts: Vec<String>,
    /// Credential hashes (`sha256:…`) the process sent; never keys.
    pub keys: Vec<String>,
    pub models: Vec<String>,
    /// Hosts, keys and models seen beyond the per-row bounds.
    pub dropped_values: u64,
    pub requests: u64,
    /// LLM calls among `requests` (the rest: other API calls to the provider, e.g. files).
    pub llm_calls: u64,
    pub errors: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Of prompt + completion, how many were estimated (no usage report).
    pub estimated_tokens: u64,
    /// Unix seconds.
    pub first_seen: u64,
    pub last_seen: u64,
    /// Whether `llm.allowed_providers` allows the provider (`None`: no list configured).
    pub allowed: Option<bool>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    version: u32,
    rows: Vec<EgressRow>,
    evicted: u64,
}

type RowKey = (u32, String, String);

pub struct EgressBook {
    rows: HashMap<RowKey, EgressRow>,
    max_entries: usize,
    /// Rows evicted (least recently seen first) to make room.
    evicted: u64,
}

/// What one call adds to a row.
pub struct Sighting<'a> {
    pub comm: &'a str,
    pub pid: u32,
    pub provider: &'a str,
    pub host: &'a str,
    pub key: Option<&'a str>,
    pub call: Option<&'a LlmCall>,
    pub now_secs: u64,
}

/// What [`EgressBook::record`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Recorded {
    /// A row was created for this process and provider.
    pub new_row: bool,
    /// Rows evicted to make room.
    pub evicted: u64,
}

fn push_bounded(list: &mut Vec<String>, value: &str, max: usize, dropped: &mut u64) {
    if list.iter().any(|v| v == value) {
        return;
    }
    if list.len() < max {
        list.push(value.to_owned());
    } else {
        *dropped = dropped.saturating_add(1);
    }
}

impl EgressBook {
    pub fn new(max_entries: usize) -> Self {
        Self {
            rows: HashMap::new(),
            max_entries: max_entries.max(1),
            evicted: 0,
        }
    }

    /// Accounts one request of a local process to a provider.
    pub fn record(&mut self, s: &Sighting<'_>) -> Recorded {
        let key = (s.pid, s.comm.to_owned(), s.provider.to_owned());
        let mut out = Recorded {
            new_row: false,
            evicted: 0,
        };
        if !self.rows.contains_key(&key) {
            out.evicted = self.make_room();
            out.new_row = true;
            self.rows.insert(
                key.clone(),
                EgressRow {
                    comm: s.comm.to_owned(),
                    pid: s.pid,
                    provider: s.provider.to_owned(),
                    first_seen: s.now_secs,
                    ..EgressRow::default()
                },
            );
        }
        let Some(row) = self.rows.get_mut(&key) else {
            return out;
        };
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut row.requests, 1);
        row.last_seen = row.last_seen.max(s.now_secs);
        push_bounded(&mut row.hosts, s.host, MAX_HOSTS, &mut row.dropped_values);
        if let Some(k) = s.key {
            push_bounded(&mut row.keys, k, MAX_KEYS, &mut row.dropped_values);
        }
        if let Some(call) = s.call {
            let f = &call.facts;
            add(&mut row.llm_calls, 1);
            push_bounded(
                &mut row.models,
                f.model_name(),
                MAX_MODELS,
                &mut row.dropped_values,
            );
            add(&mut row.prompt_tokens, f.usage.prompt);
            add(&mut row.completion_tokens, f.usage.completion);
            if f.estimated {
                add(&mut row.estimated_tokens, f.usage.total());
            }
            if f.usage_source == UsageSource::None && f.usage.total() == 0 {
                add(&mut row.errors, 1);
            }
        }
        out
    }

    /// Sets the process facts of a row just created.
    pub fn describe(
        &mut self,
        pid: u32,
        comm: &str,
        provider: &str,
        cgroup: Option<String>,
        allowed: Option<bool>,
    ) {
        if let Some(row) = self
            .rows
            .get_mut(&(pid, comm.to_owned(), provider.to_owned()))
        {
            row.container = cgroup.as_deref().and_then(container_id);
            row.cgroup = cgroup;
            row.allowed = allowed;
        }
    }

    /// Evicts the least recently seen row when the table is full.
    fn make_room(&mut self) -> u64 {
        if self.rows.len() < self.max_entries {
            return 0;
        }
        // New rows are rare (a process's first call to a provider): a scan is fine.
        let oldest = self
            .rows
            .iter()
            .min_by_key(|(k, r)| (r.last_seen, *k))
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.rows.remove(&k);
            self.evicted = self.evicted.saturating_add(1);
            return 1;
        }
        0
    }

    fn merge(&mut self, row: EgressRow) {
        let key = (row.pid, row.comm.clone(), row.provider.clone());
        if self.rows.contains_key(&key) {
            return;
        }
        self.make_room();
        self.rows.insert(key, row);
    }

    /// Rows: by process name, pid and provider.
    pub fn rows(&self) -> Vec<EgressRow> {
        let mut rows: Vec<EgressRow> = self.rows.values().cloned().collect();
        rows.sort_by(|a, b| (&a.comm, a.pid, &a.provider).cmp(&(&b.comm, b.pid, &b.provider)));
        rows
    }

    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

/// The inventory, shared by the parsing task and the control socket.
pub type SharedEgress = Shared<EgressBook>;

impl Persisted for EgressBook {
    const FILE: &'static str = SNAPSHOT_FILE;
    const WHAT: &'static str = "LLM egress";
    type Snapshot = Snapshot;

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: 1,
            rows: self.rows(),
            evicted: self.evicted,
        }
    }

    fn restore(&mut self, mut snapshot: Snapshot) -> usize {
        let n = snapshot.rows.len();
        self.evicted = self.evicted.saturating_add(snapshot.evicted);
        // The most recently seen rows win when the snapshot is larger than the table.
        snapshot
            .rows
            .sort_by_key(|r| std::cmp::Reverse(r.last_seen));
        snapshot.rows.truncate(self.max_entries);
        for row in snapshot.rows {
            self.merge(row);
        }
        n
    }
}

/// The container id in a cgroup path: the first run of 64 hex digits (Docker, containerd,
/// CRI-O scopes), cut to the 12 that `docker ps` shows.
pub fn container_id(cgroup: &str) -> Option<String> {
    let b = cgroup.as_bytes();
    let mut run = 0;
    for (i, c) in b.iter().enumerate() {
        if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
            run += 1;
            let next_hex = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit);
            if run == 64 && !next_hex {
                let start = i + 1 - 64;
                return Some(cgroup[start..start + 12].to_owned());
            }
        } else {
            run = 0;
        }
    }
    None
}

/// The cgroup v2 path of `pid` (the `0::` line of `/proc/<pid>/cgroup`).
fn read_cgroup(pid: u32) -> Option<String> {
    use std::io::Read as _;
    let mut buf = Vec::with_capacity(512);
    std::fs::File::open(format!("/proc/{pid}/cgroup"))
        .ok()?
        .take(4096)
        .read_to_end(&mut buf)
        .ok()?;
    parse_cgroup(&String::from_utf8_lossy(&buf))
}

fn parse_cgroup(text: &str) -> Option<String> {
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let path: String = path
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CGROUP_LEN)
        .collect();
    (!path.is_empty()).then_some(path)
}

/// Slots of [`RecentHosts`] (a power of two).
const RECENT_HOSTS: usize = 64;
/// Longest Host value remembered: longer ones are always matched.
const MAX_RECENT_HOST: usize = 128;

/// The provider answers for recently seen Host values, exactly as they came: local clients
/// call the same few hosts again and again, and most of them are no provider. Direct-mapped
/// with key buffers reused: at most [`RECENT_HOSTS`] keys of [`MAX_RECENT_HOST`] bytes.
struct RecentHosts {
    slots: Vec<Option<(String, Option<usize>)>>,
}

impl RecentHosts {
    fn new() -> Self {
        Self {
            slots: (0..RECENT_HOSTS).map(|_| None).collect(),
        }
    }

    /// The index in `providers.names()` of `host`'s provider.
    fn provider_index(&mut self, providers: &ProviderMatcher, host: &str) -> Option<usize> {
        if host.len() > MAX_RECENT_HOST {
            return providers.provider_index(host);
        }
        let mut hasher = rustc_hash::FxBuildHasher.build_hasher();
        hasher.write(host.as_bytes());
        let slot = self
            .slots
            .get_mut(hasher.finish() as usize % RECENT_HOSTS)?;
        if let Some((key, answer)) = slot.as_ref() {
            if key == host {
                return *answer;
            }
        }
        let answer = providers.provider_index(host);
        let mut key = slot.take().map(|(k, _)| k).unwrap_or_default();
        key.clear();
        key.push_str(host);
        *slot = Some((key, answer));
        answer
    }
}

/// The parsing task's side: matches client calls to providers and records them.
pub struct EgressTracker {
    providers: Arc<ProviderMatcher>,
    recent: RecentHosts,
    /// `llm.allowed_providers`; empty: not set.
    allowed: Vec<String>,
    book: SharedEgress,
    events: EventSink,
    metrics: Metrics,
}

impl EgressTracker {
    pub fn new(
        providers: Arc<ProviderMatcher>,
        allowed: Vec<String>,
        book: SharedEgress,
        events: EventSink,
        metrics: Metrics,
    ) -> Self {
        Self {
            providers,
            recent: RecentHosts::new(),
            allowed,
            book,
            events,
            metrics,
        }
    }

    /// The provider a client-side exchange calls, if it is one of `llm.providers`.
    pub fn provider_of(&mut self, exchange: &Exchange) -> Option<&str> {
        let host = exchange.http.host.as_deref()?;
        let i = self.recent.provider_index(&self.providers, host)?;
        self.providers.names().get(i).map(String::as_str)
    }

    /// Records a call of a local process to `provider`.
    pub fn observe(
        &self,
        exchange: &Exchange,
        provider: &str,
        key: Option<&str>,
        call: Option<&LlmCall>,
    ) {
        let conn = &exchange.conn;
        let host = exchange.http.host.as_deref().unwrap_or("");
        let now = wallclock::unix_secs_from_monotonic(wallclock::monotonic_now_ns());
        let sighting = Sighting {
            comm: &conn.comm,
            pid: conn.pid,
            provider,
            host: host.get(..253).unwrap_or(host),
            key,
            call,
            now_secs: now,
        };
        let recorded = self.book.lock().record(&sighting);
        let m = &self.metrics.llm_egress;
        m.call(provider);
        if recorded.evicted > 0 {
            m.evicted(recorded.evicted);
        }
        if !recorded.new_row {
            return;
        }
        let allowed =
            (!self.allowed.is_empty()).then(|| self.allowed.iter().any(|a| a == provider));
        // Once per process and provider: reading /proc here is rare.
        let cgroup = read_cgroup(conn.pid);
        self.book
            .lock()
            .describe(conn.pid, &conn.comm, provider, cgroup.clone(), allowed);
        if allowed != Some(false) {
            return;
        }
        m.unapproved(provider);
        debug!(comm = %conn.comm, pid = conn.pid, provider, "Process calls an unapproved AI provider");
        let container = cgroup.as_deref().and_then(container_id);
        let body = EventBody::LlmUnapprovedProvider(LlmEgress {
            provider,
            host: sighting.host,
            pid: conn.pid,
            comm: &conn.comm,
            cgroup: cgroup.as_deref(),
            container: container.as_deref(),
            key,
            model: call.map(|c| c.facts.model_name()),
            allowed_providers: &self.allowed,
        });
        self.events
            .emit(&SecurityEvent::new(exchange.http.request_start_ns, body));
    }
}

/// The `api-guard llm egress` table.
pub fn render(rows: &[EgressRow], evicted: u64) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{:<16} {:>8} {:<16} {:<14} {:>8} {:>12} {:>12} {:<26} {:<28} {:<20} {:<20}\n",
        "PROCESS",
        "PID",
        "PROVIDER",
        "CONTAINER",
        "REQUESTS",
        "TOKENS IN",
        "TOKENS OUT",
        "KEYS",
        "MODELS",
        "FIRST SEEN",
        "LAST SEEN"
    );
    let time = |secs: u64| api_guard::wallclock::rfc3339_from_unix_secs(secs);
    for r in rows {
        let flag = if r.allowed == Some(false) { "!" } else { "" };
        let _ = writeln!(
            out,
            "{:<16} {:>8} {:<16} {:<14} {:>8} {:>12} {:>12} {:<26} {:<28} {:<20} {:<20}",
            r.comm,
            r.pid,
            format!("{}{flag}", r.provider),
            r.container.as_deref().unwrap_or("-"),
            r.requests,
            r.prompt_tokens,
            r.completion_tokens,
            if r.keys.is_empty() {
                "-".to_string()
            } else {
                r.keys.join(",")
            },
            if r.models.is_empty() {
                "-".to_string()
            } else {
                r.models.join(",")
            },
            time(r.first_seen),
            time(r.last_seen)
        );
    }
    if rows.is_empty() {
        out.push_str("(no calls to AI providers seen)\n");
    }
    if rows.iter().any(|r| r.allowed == Some(false)) {
        out.push_str("! provider outside llm.allowed_providers\n");
    }
    if evicted > 0 {
        let _ = writeln!(
            out,
            "{evicted} rows evicted, least recently seen first (llm.max_egress_entries reached)"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_guard::llm::{Flavour, LlmFacts, Provider, Usage};

    /// Remembered answers are the matcher's: hosts repeated, more distinct hosts than slots
    /// (every slot overwritten many times), case and port variants, hosts too long to keep.
    #[test]
    fn recent_hosts_answer_as_the_matcher() {
        let matcher = ProviderMatcher::new(&api_guard::llm::providers::default_providers());
        let mut recent = RecentHosts::new();
        // xorshift64: a fixed sequence of host picks.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut below = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let bases = [
            "api.openai.com",
            "API.OpenAI.com:443",
            "my-res.openai.azure.com",
            "bedrock-runtime.us-east-1.amazonaws.com",
            "localhost:8080",
            "10.0.0.1:8080",
            "api.openai.com.evil.example",
            "evilopenai.com",
            "",
        ];
        let mut hosts: Vec<String> = bases.iter().map(|h| h.to_string()).collect();
        for i in 0..300 {
            hosts.push(format!("h{i}.example.com"));
            hosts.push(format!("r{i}.openai.azure.com"));
        }
        hosts.push(format!("{}.openai.azure.com", "a".repeat(120)));
        hosts.push(format!("x{}.openai.azure.com", "a".repeat(200)));
        let (mut found, mut hits) = (0, 0);
        for n in 0..50_000 {
            // Mostly a few hot hosts, sometimes any.
            let host = if n % 4 == 0 {
                &hosts[below(hosts.len())]
            } else {
                &hosts[below(bases.len())]
            };
            let slot_before = recent.slots.iter().flatten().any(|(k, _)| k == host);
            let got = recent.provider_index(&matcher, host);
            assert_eq!(got, matcher.provider_index(host), "{host:?}");
            found += usize::from(got.is_some());
            hits += usize::from(slot_before);
        }
        assert!(
            found > 10_000 && hits > 25_000,
            "{found} found, {hits} hits"
        );
        assert!(recent
            .slots
            .iter()
            .flatten()
            .all(|(k, _)| k.len() <= MAX_RECENT_HOST));
    }

    fn call(model: &str, prompt: u64, completion: u64) -> LlmCall {
        LlmCall {
            facts: LlmFacts {
                flavour: Flavour::OpenaiChat,
                provider: Provider::Openai,
                model_requested: Some(model.into()),
                model: Some(model.into()),
                stream: false,
                max_tokens: None,
                messages: None,
                tools_declared: vec![],
                tools_called: vec![],
                usage: Usage {
                    prompt,
                    completion,
                    cached: 0,
                    reasoning: 0,
                },
                usage_source: UsageSource::Reported,
                estimated: false,
                ttft_ns: None,
                inter_token_ns: None,
                content_events: 0,
                complete: true,
            },
            key: None,
            reservation: 0,
        }
    }

    fn sight<'a>(
        comm: &'a str,
        pid: u32,
        provider: &'a str,
        call: Option<&'a LlmCall>,
        now: u64,
    ) -> Sighting<'a> {
        Sighting {
            comm,
            pid,
            provider,
            host: "api.openai.com",
            key: Some("sha256:aaaa"),
            call,
            now_secs: now,
        }
    }

    #[test]
    fn rows_add_up_per_process_and_provider_and_evict_the_oldest() {
        let book = SharedEgress::new(EgressBook::new(2));
        let c1 = call("gpt-4o", 10, 5);
        let c2 = call("gpt-4o-mini", 3, 2);
        {
            let mut b = book.lock();
            assert!(
                b.record(&sight("python3", 7, "openai", Some(&c1), 100))
                    .new_row
            );
            assert!(
                !b.record(&sight("python3", 7, "openai", Some(&c2), 200))
                    .new_row
            );
            // A non-LLM call to the provider (files, models list).
            b.record(&sight("python3", 7, "openai", None, 210));
            b.record(&sight("node", 9, "anthropic", None, 150));
            let rows = b.rows();
            assert_eq!(rows.len(), 2);
            let r = rows.iter().find(|r| r.comm == "python3").unwrap();
            assert_eq!(
                (
                    r.requests,
                    r.llm_calls,
                    r.prompt_tokens,
                    r.completion_tokens
                ),
                (3, 2, 13, 7)
            );
            assert_eq!(r.models, ["gpt-4o", "gpt-4o-mini"]);
            assert_eq!(r.keys, ["sha256:aaaa"]);
            assert_eq!((r.first_seen, r.last_seen), (100, 210));
            // Full: the least recently seen row (node, 150) goes.
            let rec = b.record(&sight("curl", 11, "openai", None, 300));
            assert_eq!(
                rec,
                Recorded {
                    new_row: true,
                    evicted: 1
                }
            );
            assert!(b.rows().iter().all(|r| r.comm != "node"));
            assert_eq!(b.evicted(), 1);
        }
        let dir = std::env::temp_dir().join(format!("api-guard-egress-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        book.save(&dir).unwrap();
        let again = SharedEgress::new(EgressBook::new(10));
        assert_eq!(again.load(&dir).unwrap(), Some(2));
        assert_eq!(again.lock().rows(), book.lock().rows());
        assert_eq!(again.lock().evicted(), 1);
        // A smaller table keeps the most recently seen.
        let small = SharedEgress::new(EgressBook::new(1));
        small.load(&dir).unwrap();
        assert_eq!(small.lock().rows()[0].comm, "curl");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn per_row_lists_are_bounded() {
        let book = SharedEgress::new(EgressBook::new(4));
        let mut b = book.lock();
        let keys: Vec<String> = (0..20).map(|i| format!("sha256:{i:016x}")).collect();
        for k in &keys {
            b.record(&Sighting {
                key: Some(k),
                ..sight("p", 1, "openai", None, 1)
            });
        }
        let r = &b.rows()[0];
        assert_eq!((r.keys.len(), r.dropped_values), (MAX_KEYS, 12));
    }

    #[test]
    fn cgroups_and_container_ids() {
        let docker = "0::/system.slice/docker-3f4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f.scope\n";
        let path = parse_cgroup(docker).unwrap();
        assert_eq!(container_id(&path).as_deref(), Some("3f4e5a6b7c8d"));
        let pod = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab.scope";
        assert_eq!(
            container_id(&parse_cgroup(pod).unwrap()).as_deref(),
            Some("aaaaaaaaaaaa")
        );
        assert_eq!(
            parse_cgroup("12:cpu:/x\n0::/user.slice/session-1.scope\n").as_deref(),
            Some("/user.slice/session-1.scope")
        );
        assert_eq!(container_id("/user.slice/session-1.scope"), None);
        // 65 hex digits is no container id.
        assert_eq!(container_id(&"a".repeat(65)), None);
        assert_eq!(parse_cgroup("1:name=systemd:/\n"), None);
    }
}
