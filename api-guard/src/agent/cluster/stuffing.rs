//! Cross-node credential stuffing: failed logins counted over the cluster. A client whose
//! failed logins are load-balanced over three nodes, four per node, never crosses a per-node
//! threshold of ten; a botnet trying one account from a few addresses per node never shows
//! more than a few addresses anywhere. Counted in Redis, both do.
//!
//! The detection thread ([`StuffingTap`]) hands the cluster task every failed login (a 401 or
//! 403 answer) with its client address, the hash of the account it named (if any) and a copy
//! of the exchange's event context; it never waits (a full queue drops and counts). The
//! cluster task ([`StuffingBuffer`]) aggregates them per client and per account until the
//! next sync tick, then sends them in one pipelined round trip, one Lua call per key
//! ([`Job`]), in tumbling windows of `detect.auth.failure_window_secs`:
//!
//! - per client address: `INCRBY` of its failures and `PFADD` of the accounts it named
//!   (`<prefix>:cs:c:<address>:<window>`, `…:accounts`); above `failure_threshold` failures
//!   → `auth.credential_stuffing_cluster`;
//! - per account: `PFADD` of the addresses that failed on it
//!   (`<prefix>:cs:u:<hash of the account hash>:<window>`); above `max_clients_per_username`
//!   addresses → `auth.distributed_stuffing_cluster`.
//!
//! The call that first crosses a threshold also wins a `SET NX` flag for the key and window,
//! so one node alone reports, once per window for the whole cluster. Redis sees addresses and
//! hashes of account hashes; never a user name, password or payload.

use std::{
    collections::{hash_map::Entry, HashMap},
    net::IpAddr,
    sync::Arc,
};

use api_guard::{
    detect::{
        auth::{is_failed_login, login_account},
        inputs::InputLimits,
        rules, Finding, Request,
    },
    identity::ClientIdentity,
};
use sha2::Digest as _;

use super::{context::EventContext, unix_ms, Publisher};
use crate::{exchange::Exchange, output::EventSink, telemetry::Metrics};

/// Clients, and accounts, waiting for the next tick; beyond it new ones are dropped (counted).
pub const MAX_PENDING: usize = 4096;
/// Accounts kept per pending client, and addresses per pending account, in one tick (more
/// than any threshold needs).
const MAX_DISTINCT: usize = 64;
/// Kept in Redis past the window's end (a late node's flush still lands in the right key).
const TTL_SLACK_MS: u64 = 60_000;

/// Counts a cluster-wide counter or HyperLogLog, then takes the "reported" flag if this call
/// crossed the threshold. KEYS: failures counter, accounts HyperLogLog, reported flag; ARGV:
/// threshold, TTL ms, node, failures, account ids... Answers {failures, accounts, first}.
pub const CLIENT_FAILURES: &str = r"
local n = redis.call('INCRBY', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if #ARGV > 4 then
  redis.call('PFADD', KEYS[2], unpack(ARGV, 5))
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
local u = redis.call('PFCOUNT', KEYS[2])
if n > tonumber(ARGV[1]) and redis.call('SET', KEYS[3], ARGV[3], 'NX', 'PX', ARGV[2]) then
  return {n, u, 1}
end
return {n, u, 0}";

/// Thresholds and window, as configured in `[detect.auth]` at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub failures: u32,
    pub clients_per_account: usize,
    pub window_secs: u64,
}

/// One failed login.
#[derive(Debug)]
pub struct Failed {
    pub ip: IpAddr,
    /// The account it named, hashed ("sha256:…"), when the request named one.
    pub account: Option<String>,
    /// Tumbling window index (unix seconds / window).
    pub window: u64,
    pub limits: Thresholds,
    /// The exchange, for the event.
    pub context: EventContext,
}

/// The detection thread's side: picks out failed logins and never waits.
pub struct StuffingTap {
    publisher: Publisher,
    limits: Thresholds,
    inputs: InputLimits,
}

impl StuffingTap {
    pub fn new(publisher: Publisher, limits: Thresholds, inputs: InputLimits) -> Self {
        Self {
            publisher,
            limits: Thresholds {
                window_secs: limits.window_secs.max(1),
                ..limits
            },
            inputs,
        }
    }

    /// An exchange whose answer is known (a request judged alone comes back at its outcome).
    pub fn observe(&self, ex: &Exchange, client: &ClientIdentity, req: &Request<'_>) {
        let Some(ip) = client.ip else {
            return;
        };
        if !is_failed_login(req) {
            return;
        }
        self.publisher.failed_login(Failed {
            ip: ip.to_canonical(),
            account: login_account(req, &self.inputs),
            window: unix_ms() / 1000 / self.limits.window_secs,
            limits: self.limits,
            context: EventContext::of(ex, client),
        });
    }
}

/// One client's failures in one window, waiting for the next tick.
#[derive(Debug)]
pub struct ClientPending {
    pub failures: u64,
    pub accounts: Vec<String>,
    /// The latest failure, for the event.
    pub last: Arc<Failed>,
}

/// One account's failing addresses in one window, waiting for the next tick.
#[derive(Debug)]
pub struct AccountPending {
    pub account: String,
    pub addrs: Vec<IpAddr>,
    pub last: Arc<Failed>,
}

/// The cluster task's side: failures gathered between ticks (bounded; kept while Redis is
/// away).
#[derive(Default)]
pub struct StuffingBuffer {
    clients: HashMap<(IpAddr, u64), ClientPending>,
    accounts: HashMap<(String, u64), AccountPending>,
    /// Failed logins taken in since the last [`StuffingBuffer::take`].
    signals: u64,
}

/// What one tick sends: the Lua calls, in pipeline order, and the signals they carry.
#[derive(Debug, Default)]
pub struct Batch {
    pub jobs: Vec<Job>,
    pub signals: u64,
}

#[derive(Debug)]
pub enum Job {
    Client(ClientPending),
    Account(AccountPending),
}

impl StuffingBuffer {
    /// Adds a failure; false when it found no room at all (the caller counts the drop).
    pub fn add(&mut self, failed: Failed) -> bool {
        let failed = Arc::new(failed);
        let mut kept = self.add_to_client(&failed);
        if let Some(account) = &failed.account {
            kept |= self.add_to_account(account, &failed);
        }
        self.signals += u64::from(kept);
        kept
    }

    fn add_to_client(&mut self, failed: &Arc<Failed>) -> bool {
        let full = self.clients.len() >= MAX_PENDING;
        let p = match self.clients.entry((failed.ip, failed.window)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(_) if full => return false,
            Entry::Vacant(e) => e.insert(ClientPending {
                failures: 0,
                accounts: Vec::new(),
                last: failed.clone(),
            }),
        };
        p.failures += 1;
        if let Some(account) = &failed.account {
            if p.accounts.len() < MAX_DISTINCT && !p.accounts.contains(account) {
                p.accounts.push(account.clone());
            }
        }
        p.last = failed.clone();
        true
    }

    fn add_to_account(&mut self, account: &str, failed: &Arc<Failed>) -> bool {
        let full = self.accounts.len() >= MAX_PENDING;
        let p = match self.accounts.entry((account.to_owned(), failed.window)) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(_) if full => return false,
            Entry::Vacant(e) => e.insert(AccountPending {
                account: account.to_owned(),
                addrs: Vec::new(),
                last: failed.clone(),
            }),
        };
        if p.addrs.len() < MAX_DISTINCT && !p.addrs.contains(&failed.ip) {
            p.addrs.push(failed.ip);
        }
        p.last = failed.clone();
        true
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty() && self.accounts.is_empty()
    }

    pub fn take(&mut self) -> Batch {
        let clients = self.clients.drain().map(|(_, p)| Job::Client(p));
        let accounts = self.accounts.drain().map(|(_, p)| Job::Account(p));
        Batch {
            jobs: clients.chain(accounts).collect(),
            signals: std::mem::take(&mut self.signals),
        }
    }
}

impl Batch {
    /// One Lua call per job, in order. `distinct` is the cluster's "count distinct members,
    /// report once" script (shared with key sharing).
    pub fn pipeline(&self, prefix: &str, node: &str, distinct: &str) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        for job in &self.jobs {
            match job {
                Job::Client(p) => {
                    let f = &p.last;
                    let base = format!("{prefix}:cs:c:{}:{}", f.ip, f.window);
                    pipe.cmd("EVAL")
                        .arg(CLIENT_FAILURES)
                        .arg(3)
                        .arg(&base)
                        .arg(format!("{base}:accounts"))
                        .arg(format!("{base}:reported"))
                        .arg(f.limits.failures)
                        .arg(ttl_ms(f))
                        .arg(node)
                        .arg(p.failures);
                    for account in &p.accounts {
                        pipe.arg(redis_id(account));
                    }
                }
                Job::Account(p) => {
                    let f = &p.last;
                    let base = format!("{prefix}:cs:u:{}:{}", redis_id(&p.account), f.window);
                    pipe.cmd("EVAL")
                        .arg(distinct)
                        .arg(2)
                        .arg(&base)
                        .arg(format!("{base}:reported"))
                        .arg(f.limits.clients_per_account)
                        .arg(ttl_ms(f))
                        .arg(node);
                    for ip in &p.addrs {
                        pipe.arg(ip.to_string());
                    }
                }
            }
        }
        pipe
    }

    /// Reports what this node crossed first; `rows` are the pipeline's answers in order.
    /// Returns how many events were reported.
    pub fn report(&self, rows: &[Vec<u64>], events: &EventSink, metrics: &Metrics) -> usize {
        let mut reported = 0;
        for (job, row) in self.jobs.iter().zip(rows) {
            let Some(finding) = finding_for(job, row) else {
                continue;
            };
            let last = match job {
                Job::Client(p) => &p.last,
                Job::Account(p) => &p.last,
            };
            tracing::info!(rule = finding.rule_id, evidence = %finding.evidence, "Credential stuffing across the cluster");
            last.context.report(&finding, events, metrics);
            reported += 1;
        }
        reported
    }
}

/// The finding a job's answer calls for: none unless this call crossed first.
fn finding_for(job: &Job, row: &[u64]) -> Option<Finding> {
    match (job, row) {
        (Job::Client(p), &[failures, accounts, 1]) => {
            let l = p.last.limits;
            Some(Finding::new(
                &rules::AUTH_CREDENTIAL_STUFFING_CLUSTER,
                "client",
                &format!(
                    "{failures} 401/403 responses cluster-wide, {accounts} accounts named, in {} s \
                     (limit {})",
                    l.window_secs, l.failures
                ),
            ))
        }
        (Job::Account(p), &[addrs, 1]) => {
            let l = p.last.limits;
            Some(Finding::new(
                &rules::AUTH_DISTRIBUTED_STUFFING_CLUSTER,
                "account",
                &format!(
                    "{}: failed logins from {addrs} addresses cluster-wide in {} s (limit {})",
                    p.account, l.window_secs, l.clients_per_account
                ),
            ))
        }
        _ => None,
    }
}

fn ttl_ms(f: &Failed) -> u64 {
    f.limits
        .window_secs
        .saturating_mul(1000)
        .saturating_add(TTL_SLACK_MS)
}

/// What Redis holds for an account: a hash of its hash (32 hex digits).
fn redis_id(account: &str) -> String {
    use std::fmt::Write as _;
    let digest = sha2::Sha256::digest(account.as_bytes());
    let mut id = String::with_capacity(32);
    for b in &digest[..16] {
        // Writing to a String cannot fail.
        let _ = write!(id, "{b:02x}");
    }
    id
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const LIMITS: Thresholds = Thresholds {
        failures: 10,
        clients_per_account: 10,
        window_secs: 60,
    };

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0xc612_0000 + n))
    }

    fn failed(n: u32, account: Option<&str>, window: u64) -> Failed {
        let client = ClientIdentity {
            ip: Some(ip(n)),
            via_proxy: None,
            credential: None,
        };
        Failed {
            ip: ip(n),
            account: account.map(Into::into),
            window,
            limits: LIMITS,
            context: EventContext::for_test(&client, "POST", "/login", 401, u64::from(n)),
        }
    }

    fn clients(batch: &Batch) -> Vec<(IpAddr, u64, Vec<String>)> {
        let mut v: Vec<_> = batch
            .jobs
            .iter()
            .filter_map(|j| match j {
                Job::Client(p) => Some((p.last.ip, p.failures, p.accounts.clone())),
                Job::Account(_) => None,
            })
            .collect();
        v.sort();
        v
    }

    fn accounts(batch: &Batch) -> Vec<(String, Vec<IpAddr>)> {
        let mut v: Vec<_> = batch
            .jobs
            .iter()
            .filter_map(|j| match j {
                Job::Account(p) => Some((p.account.clone(), p.addrs.clone())),
                Job::Client(_) => None,
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn failures_gather_per_client_and_per_account() {
        let mut b = StuffingBuffer::default();
        for (n, account) in [
            (1, Some("sha256:a")),
            (1, Some("sha256:b")),
            (1, Some("sha256:a")),
            (1, None),
            (2, Some("sha256:a")),
            (2, Some("sha256:a")),
        ] {
            assert!(b.add(failed(n, account, 5)));
        }
        let batch = b.take();
        assert!(b.is_empty());
        assert_eq!(batch.signals, 6);
        assert_eq!(
            clients(&batch),
            [
                (ip(1), 4, vec!["sha256:a".into(), "sha256:b".into()]),
                (ip(2), 2, vec!["sha256:a".into()]),
            ]
        );
        assert_eq!(
            accounts(&batch),
            [
                ("sha256:a".into(), vec![ip(1), ip(2)]),
                ("sha256:b".into(), vec![ip(1)]),
            ]
        );
        // The event shows the latest failure.
        let last = batch.jobs.iter().find_map(|j| match j {
            Job::Account(p) if p.account == "sha256:a" => Some(p.last.context.conn_id()),
            _ => None,
        });
        assert_eq!(last, Some(2));
        // Taken means gone: the next tick starts empty.
        assert_eq!(b.take().jobs.len(), 0);
        assert_eq!(b.take().signals, 0);
    }

    #[test]
    fn windows_are_counted_apart() {
        let mut b = StuffingBuffer::default();
        b.add(failed(1, Some("sha256:a"), 5));
        b.add(failed(1, Some("sha256:a"), 6));
        let batch = b.take();
        assert_eq!(batch.jobs.len(), 4);
        let windows: Vec<u64> = batch
            .jobs
            .iter()
            .map(|j| match j {
                Job::Client(p) => p.last.window,
                Job::Account(p) => p.last.window,
            })
            .collect();
        assert_eq!(windows.iter().filter(|&&w| w == 5).count(), 2);
    }

    #[test]
    fn the_buffer_is_bounded_and_says_what_it_dropped() {
        let mut b = StuffingBuffer::default();
        for n in 0..MAX_PENDING as u32 {
            assert!(b.add(failed(n, None, 1)));
        }
        // A new client without an account finds no room; one naming an account still counts
        // for the account; known clients still count.
        assert!(!b.add(failed(100_000, None, 1)));
        assert!(b.add(failed(100_001, Some("sha256:a"), 1)));
        assert!(b.add(failed(0, None, 1)));
        // Distinct members per key are capped too.
        for n in 0..(2 * MAX_DISTINCT) as u32 {
            b.add(failed(0, Some(&format!("sha256:{n}")), 1));
            b.add(failed(n, Some("sha256:z"), 1));
        }
        let batch = b.take();
        assert_eq!(
            batch.signals,
            2 + MAX_PENDING as u64 + 4 * MAX_DISTINCT as u64
        );
        let zero = clients(&batch).into_iter().find(|c| c.0 == ip(0)).unwrap();
        assert_eq!(
            (zero.1, zero.2.len()),
            (3 + 2 * MAX_DISTINCT as u64, MAX_DISTINCT)
        );
        let z = accounts(&batch)
            .into_iter()
            .find(|a| a.0 == "sha256:z")
            .unwrap();
        assert_eq!(z.1.len(), MAX_DISTINCT);
        let mut b = StuffingBuffer::default();
        for n in 0..=MAX_PENDING as u32 {
            b.add(failed(0, Some(&format!("sha256:{n}")), 1));
        }
        assert_eq!(accounts(&b.take()).len(), MAX_PENDING);
    }

    #[test]
    fn redis_gets_addresses_and_hashes_of_hashes() {
        let mut b = StuffingBuffer::default();
        b.add(failed(1, Some("sha256:00aa11bb22cc33dd"), 9));
        b.add(failed(2, None, 9));
        let batch = b.take();
        let pipe = batch.pipeline("ag", "node-a", "DISTINCT");
        assert_eq!(pipe.cmd_iter().count(), 3);
        let packed = String::from_utf8_lossy(&pipe.get_packed_pipeline()).into_owned();
        let id = redis_id("sha256:00aa11bb22cc33dd");
        for want in [
            "ag:cs:c:198.18.0.1:9:accounts".to_string(),
            "ag:cs:c:198.18.0.2:9:reported".into(),
            format!("ag:cs:u:{id}:9:reported"),
            "node-a".into(),
        ] {
            assert!(packed.contains(&want), "{want} not in {packed}");
        }
        assert!(!packed.contains("sha256:"), "{packed}");
        assert_eq!(id.len(), 32);
    }

    #[test]
    fn only_the_first_crossing_reports() {
        let mut b = StuffingBuffer::default();
        b.add(failed(1, Some("sha256:00aa11bb22cc33dd"), 9));
        let batch = b.take();
        let (mut client, mut account) = (None, None);
        for job in &batch.jobs {
            match job {
                Job::Client(_) => client = Some(job),
                Job::Account(_) => account = Some(job),
            }
        }
        let (client, account) = (client.unwrap(), account.unwrap());
        let f = finding_for(client, &[11, 7, 1]).unwrap();
        assert_eq!(f.rule_id, "auth.credential_stuffing_cluster");
        assert_eq!(f.location, "client");
        assert_eq!(
            f.evidence,
            "11 401/403 responses cluster-wide, 7 accounts named, in 60 s (limit 10)"
        );
        let f = finding_for(account, &[12, 1]).unwrap();
        assert_eq!(f.rule_id, "auth.distributed_stuffing_cluster");
        assert_eq!(
            f.evidence,
            "sha256:00aa11bb22cc33dd: failed logins from 12 addresses cluster-wide in 60 s (limit 10)"
        );
        // Counted but not first, or an answer of the wrong shape: nothing.
        assert!(finding_for(client, &[11, 7, 0]).is_none());
        assert!(finding_for(account, &[12, 0]).is_none());
        assert!(finding_for(client, &[12, 1]).is_none());
        assert!(finding_for(account, &[]).is_none());
    }
}
