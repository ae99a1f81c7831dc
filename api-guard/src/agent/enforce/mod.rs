//! Enforcement: rate-limit policies over exchanges, a bounded blocklist with expiry, and the
//! XDP guard that drops blocked sources before the TCP stack.
//!
//! [`Enforcer::block`] is the one way in for every block: manual (control socket), rate-limit
//! policies ([`Enforcer::observe`]) and, later, detection verdicts. Automatic blocks follow
//! `enforce.mode` (dry-run only reports them); explicit ones (operator, config) always apply.

pub mod blocklist;
pub mod cluster_limit;
pub mod config;
pub mod event;
pub mod limiter;
pub mod policy;
pub mod target;
pub mod xdp;

#[cfg(test)]
mod tests;

use std::{
    num::NonZeroUsize,
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc, Mutex, MutexGuard, OnceLock,
    },
    time::Duration,
};

use api_guard_common::xdp::{BlockEntry, IfaceConfig, NEVER_EXPIRES};
use serde::Serialize;
use tracing::{info, warn};

use crate::{
    cluster::{BlockMsg, Publisher},
    config::{EnforceConfig, EnforceMode},
    exchange::Exchange,
    output::EventSink,
    telemetry::{
        enforce::{MapOp, Table},
        Metrics, RemoteResult,
    },
    wallclock::{monotonic_now_ns, rfc3339_from_monotonic},
};
use api_guard::event::{ClientView, Enforcement, EventBody, RequestView, SecurityEvent};
use api_guard::identity::ClientIdentity;
use blocklist::{Block, BlockReason, Blocklist, Inserted, UnblockReason};
use policy::{Breach, ClusterParams, LimitUsage, Policies, PolicyAction, PolicyUnit, Request};
use target::{NetSet, Target};

#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    #[error("{0} is on the allowlist and is never blocked")]
    Allowlisted(Target),
    #[error("{0} is a trusted proxy and is never blocked")]
    TrustedProxy(Target),
    #[error("the blocklist is full of configured entries (enforce.max_blocks)")]
    Full,
    #[error("{0} is not blocked")]
    NotBlocked(Target),
    #[error("{0} comes from the configuration (enforce.deny); remove it there")]
    Configured(Target),
    #[error(transparent)]
    Xdp(#[from] xdp::XdpError),
}

/// A request to block; the interface detection uses too.
#[derive(Debug, Clone)]
pub struct BlockRequest {
    pub target: Target,
    /// `None`: until unblocked.
    pub duration: Option<Duration>,
    pub reason: BlockReason,
    pub policy: Option<Arc<str>>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockOutcome {
    Blocked,
    /// Already blocked: the block now ends at the later of the two ends.
    Extended,
    /// Dry-run: reported, not enforced.
    WouldBlock,
}

/// One block as `api-guard blocks` shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BlockView {
    pub target: String,
    pub reason: String,
    pub policy: Option<String>,
    pub detail: Option<String>,
    pub since: String,
    /// RFC 3339; `None`: until removed.
    pub until: Option<String>,
    pub expires_in_secs: Option<f64>,
    /// Packets dropped so far.
    pub hits: u64,
}

/// Settings read from `[enforce]` (replaced whole by [`Enforcer::reconfigure`]).
struct Settings {
    mode: EnforceMode,
    default_block_secs: u64,
    /// The configured deny list, to tell on reload which `config` blocks went away.
    deny: Vec<Target>,
    allow: NetSet,
    proxies: NetSet,
}

struct State {
    settings: Settings,
    blocklist: Blocklist,
    /// Dry-run: what would be blocked, so each is reported once per block period.
    would_block: Blocklist,
    policies: Policies,
    maps: xdp::XdpMaps,
    limiter_evictions: Vec<u64>,
}

pub struct Enforcer {
    state: Mutex<State>,
    /// What the policies held when they last changed ([`PolicyFlags`]), readable without the
    /// lock: the parsing task asks for every exchange, and most nodes have no policy (the
    /// default), so the lock is taken only when one could apply. Written under the lock
    /// wherever the policies change (start, reload); a reader racing a reload sees the
    /// policies of just before or just after it, as if it had taken the lock first or last.
    policy_flags: AtomicU8,
    /// Interfaces the guard runs on (dropped with the enforcer: detached unless pinned).
    attached: Mutex<Vec<xdp::Attached>>,
    metrics: Metrics,
    events: EventSink,
    /// Where blocks and unblocks go to the other nodes (`[cluster]` on).
    cluster: OnceLock<Publisher>,
}

/// Bits of [`Enforcer::policy_flags`].
struct PolicyFlags;

impl PolicyFlags {
    /// Some policy is configured.
    const ANY: u8 = 1;
    /// Some policy limits tokens.
    const TOKENS: u8 = 2;

    fn of(policies: &Policies) -> u8 {
        let mut flags = 0;
        if !policies.is_empty() {
            flags |= Self::ANY;
        }
        if policies.limits_tokens() {
            flags |= Self::TOKENS;
        }
        flags
    }
}

/// A block or unblock another node decided, as the cluster task hands it over.
#[derive(Debug, Clone)]
pub enum RemoteChange {
    Block {
        target: Target,
        /// CLOCK_MONOTONIC ns here; `None`: until removed.
        until_ns: Option<u64>,
        reason: BlockReason,
        policy: Option<Arc<str>>,
        detail: Option<String>,
    },
    Unblock {
        target: Target,
    },
}

impl Enforcer {
    /// Takes over the guard's maps: installs the allowlist, interface settings and the
    /// configured deny list, and adopts blocks a pinned earlier daemon left in force.
    pub fn new(
        config: &EnforceConfig,
        trusted_proxies: &[Target],
        mut maps: xdp::XdpMaps,
        attached: Vec<xdp::Attached>,
        iface_limits: &[(u32, IfaceConfig)],
        metrics: Metrics,
        events: EventSink,
    ) -> Result<Arc<Self>, EnforceError> {
        maps.set_allowlist(&never_blocked(config, trusted_proxies))?;
        for &(ifindex, limit) in iface_limits {
            maps.ifaces
                .insert(ifindex, limit, 0)
                .map_err(|source| xdp::XdpError::Map {
                    name: "XDP_IFACES",
                    source,
                })?;
        }
        let max_keys = NonZeroUsize::new(config.max_limiter_keys).unwrap_or(NonZeroUsize::MIN);
        let settings = Settings::of(config, trusted_proxies);
        let mut state = State {
            settings,
            blocklist: Blocklist::new(config.max_blocks as usize),
            would_block: Blocklist::new(config.max_blocks as usize),
            limiter_evictions: vec![0; config.policies.len()],
            policies: Policies::new(&config.policies, max_keys),
            maps,
        };
        let now = monotonic_now_ns();
        adopt(&mut state, now, &config.deny);
        add_denied(&mut state, now, &config.deny)?;
        metrics.xdp.set_interfaces(attached.len());
        metrics.enforce.set_blocked_clients(state.blocklist.len());
        Ok(Arc::new(Self {
            policy_flags: AtomicU8::new(PolicyFlags::of(&state.policies)),
            state: Mutex::new(state),
            attached: Mutex::new(attached),
            metrics,
            events,
            cluster: OnceLock::new(),
        }))
    }

    /// From now on every block and unblock this node decides is shared with the cluster,
    /// and cluster-scope policies count with the other nodes.
    pub fn set_cluster(&self, publisher: Publisher, params: ClusterParams) {
        self.lock().policies.set_cluster_params(params);
        let _ = self.cluster.set(publisher);
    }

    /// Cluster-scope limits: usage since the last sync (at most `max` keys).
    pub fn take_limit_usage(&self, max: usize) -> Vec<LimitUsage> {
        self.lock()
            .policies
            .take_cluster_usage(monotonic_now_ns(), max)
    }

    /// Cluster-scope limits: what Redis answered (`None` per failed key; all `None` when
    /// the round trip failed, so the usage is sent again).
    pub fn apply_limit_answers(
        &self,
        usage: Vec<LimitUsage>,
        answers: &[Option<cluster_limit::Answer>],
    ) {
        self.lock().policies.apply_cluster(usage, answers);
    }

    /// This node's cluster name, for events (`None`: no cluster).
    fn node(&self) -> Option<&str> {
        self.cluster.get().map(Publisher::node)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether some policy limits tokens (LLM calls reserve at their request's end).
    pub fn limits_tokens(&self) -> bool {
        self.policy_flags.load(Ordering::Relaxed) & PolicyFlags::TOKENS != 0
    }

    /// A server-side LLM request just ended, before its answer streams: reserves `tokens`
    /// (estimated prompt + `max_tokens`) against the token limits and acts on breaches, so
    /// that no call overshoots a limit by more than its own reservation. Its exchange
    /// (`request_noticed`) then only reconciles.
    pub fn reserve_request(&self, request: &Exchange, tokens: u64) {
        let Some(client) = &request.client else {
            return;
        };
        let mut state = self.lock();
        if !state.policies.limits_tokens() {
            return;
        }
        let now = monotonic_now_ns();
        let req = Request::of(request, client);
        let breaches = state.policies.reserve(now, &req, tokens);
        let view = RequestView::of(request);
        for breach in breaches {
            self.breach(&mut state, now, &breach, client, &view);
        }
    }

    /// Runs a server-side exchange through the rate-limit policies and acts on breaches.
    pub fn observe(&self, ex: &Exchange) {
        // Set on every server-side exchange by the parsing task.
        let Some(client) = &ex.client else {
            return;
        };
        if self.policy_flags.load(Ordering::Relaxed) & PolicyFlags::ANY == 0 {
            return;
        }
        let mut state = self.lock();
        if state.policies.is_empty() {
            return;
        }
        let now = monotonic_now_ns();
        let req = Request::of(ex, client);
        let mut breaches = state.policies.check(now, &req);
        if let Some(call) = ex.llm.as_deref().filter(|_| state.policies.limits_tokens()) {
            // Reserved when the request ended (`reserve_request`), unless it never was
            // handed out alone (cut off before its end, or notices off).
            let reserved = if ex.http.request_noticed {
                Vec::new()
            } else {
                state.policies.reserve(now, &req, call.reservation)
            };
            let actual = call.facts.usage.total();
            let over = state
                .policies
                .reconcile(now, &req, call.reservation, actual);
            // One report per policy and exchange.
            let new: Vec<Breach> = over
                .into_iter()
                .filter(|b| !reserved.iter().any(|r| r.policy == b.policy))
                .collect();
            breaches.extend(reserved);
            breaches.extend(new);
        }
        let request = RequestView::of(ex);
        for breach in breaches {
            self.breach(&mut state, now, &breach, client, &request);
        }
    }

    fn breach(
        &self,
        state: &mut State,
        now: u64,
        breach: &Breach,
        client: &ClientIdentity,
        request: &RequestView,
    ) {
        self.metrics.enforce.ratelimit_exceeded(&breach.policy);
        let tokens = breach.unit == PolicyUnit::Tokens;
        let report = |note: Option<&'static str>| {
            let e = Enforcement {
                target: client.ip.map(|ip| ip.to_string()),
                reason: if tokens { "llm_budget" } else { "ratelimit" },
                policy: Some(&breach.policy),
                detail: Some(&breach.key),
                client: Some(ClientView::of(client)),
                request: Some(request.clone()),
                note,
                ..Enforcement::default()
            };
            let body = if tokens {
                EventBody::LlmBudgetExceeded(e)
            } else {
                EventBody::RatelimitExceeded(e)
            };
            self.events.emit(&SecurityEvent::new(now, body));
        };
        let note = match (breach.action, client.ip) {
            (PolicyAction::Log, _) => None,
            (PolicyAction::Block, None) => Some("client address unknown"),
            (PolicyAction::Block, Some(_)) if client.via_proxy.is_some() => {
                Some("client is behind a trusted proxy: reported, not dropped at XDP")
            }
            (PolicyAction::Block, Some(ip)) if state.settings.allow.contains(ip) => {
                Some("client is allowlisted")
            }
            (PolicyAction::Block, Some(ip)) if state.settings.proxies.contains(ip) => {
                Some("client is a trusted proxy")
            }
            (PolicyAction::Block, Some(ip)) => {
                // A token overrun is always reported as such; the block (or would_block)
                // follows.
                if tokens {
                    report(None);
                }
                let req = BlockRequest {
                    target: Target::Addr(ip.to_canonical()),
                    duration: Some(Duration::from_secs(breach.block_secs)),
                    reason: BlockReason::Ratelimit,
                    policy: Some(breach.policy.clone()),
                    detail: Some(if tokens {
                        format!("token limit exceeded by {}", breach.key)
                    } else {
                        format!("rate limit exceeded by {}", breach.key)
                    }),
                };
                if let Err(error) =
                    self.block_locked(state, now, req, Some((client, request)), None)
                {
                    warn!(%error, "Rate-limit block failed");
                }
                return;
            }
        };
        report(note);
    }

    /// Blocks `req.target` (the hook for manual blocks and detection verdicts).
    pub fn block(&self, req: BlockRequest) -> Result<BlockOutcome, EnforceError> {
        let mut state = self.lock();
        self.block_locked(&mut state, monotonic_now_ns(), req, None, None)
    }

    /// Blocks the client of a request (detection verdicts); the block event carries the
    /// client and request.
    pub fn block_client(
        &self,
        req: BlockRequest,
        client: &ClientIdentity,
        request: &RequestView,
    ) -> Result<BlockOutcome, EnforceError> {
        let mut state = self.lock();
        self.block_locked(
            &mut state,
            monotonic_now_ns(),
            req,
            Some((client, request)),
            None,
        )
    }

    /// Applies a change another node (`node`) decided, without sharing it again. This
    /// node's allowlist and trusted proxies still win.
    pub fn apply_remote(&self, change: RemoteChange, node: &Arc<str>) -> RemoteResult {
        let mut state = self.lock();
        let now = monotonic_now_ns();
        match change {
            RemoteChange::Block {
                target,
                until_ns,
                reason,
                policy,
                detail,
            } => {
                if until_ns.is_some_and(|u| u <= now) {
                    return RemoteResult::Applied;
                }
                // This node's own decision: keep it as ours (it was shared already).
                let origin = (Some(node.as_ref()) != self.node()).then(|| node.clone());
                let req = BlockRequest {
                    target,
                    duration: until_ns.map(|u| Duration::from_nanos(u - now)),
                    reason,
                    policy,
                    detail,
                };
                match self.block_locked(&mut state, now, req, None, origin) {
                    Ok(_) => RemoteResult::Applied,
                    Err(EnforceError::Allowlisted(_) | EnforceError::TrustedProxy(_)) => {
                        RemoteResult::Refused
                    }
                    Err(error) => {
                        warn!(%error, %target, node = %node, "Applying a cluster block failed");
                        RemoteResult::Failed
                    }
                }
            }
            RemoteChange::Unblock { target } => {
                let lift = state
                    .blocklist
                    .get(&target)
                    .is_some_and(|b| b.reason != BlockReason::Config);
                if lift {
                    if let Some(block) = state.blocklist.remove(&target) {
                        self.lifted(&mut state, now, &block, UnblockReason::Cluster, Some(node));
                    }
                }
                RemoteResult::Unblocked
            }
        }
    }

    /// Blocks this node decided that are in force (re-announced to the cluster after every
    /// reconnection: Redis may have lost them).
    pub fn own_blocks(&self) -> Vec<BlockMsg> {
        let Some(cluster) = self.cluster.get() else {
            return Vec::new();
        };
        let state = self.lock();
        state
            .blocklist
            .iter()
            .filter(|b| b.origin.is_none() && b.reason != BlockReason::Config)
            .map(|b| BlockMsg::block(b, cluster.node()))
            .collect()
    }

    /// `origin`: the node that decided it, when another one did (then it is not shared
    /// again).
    fn block_locked(
        &self,
        state: &mut State,
        now: u64,
        req: BlockRequest,
        context: Option<(&ClientIdentity, &RequestView)>,
        origin: Option<Arc<str>>,
    ) -> Result<BlockOutcome, EnforceError> {
        let s = &state.settings;
        if let Target::Addr(ip) = req.target {
            if s.allow.contains(ip) {
                return Err(EnforceError::Allowlisted(req.target));
            }
            if s.proxies.contains(ip) {
                return Err(EnforceError::TrustedProxy(req.target));
            }
        }
        let block = Block {
            target: req.target,
            reason: req.reason,
            policy: req.policy,
            detail: req.detail,
            since_ns: now,
            until_ns: req
                .duration
                .map(|d| now.saturating_add(d.as_nanos().min(u64::MAX as u128) as u64)),
            origin,
        };
        let decided_by = block.origin.as_deref().or(self.node());
        let automatic = matches!(req.reason, BlockReason::Ratelimit | BlockReason::Detection);
        // A block in force, or in dry-run the block that would be.
        let event = |dry_run: bool| {
            let mut e = event::about(&block, block.reason.as_str());
            e.enforced = !dry_run;
            e.decided_by = decided_by;
            if let Some((client, request)) = context {
                e.client = Some(ClientView::of(client));
                e.request = Some(request.clone());
            }
            let body = if dry_run {
                EventBody::WouldBlock(e)
            } else {
                EventBody::Block(e)
            };
            self.events.emit(&SecurityEvent::new(now, body));
        };
        if automatic && s.mode == EnforceMode::DryRun {
            state.would_block.expire(now);
            if let Inserted::New { .. } = state.would_block.insert(block.clone()) {
                self.metrics.enforce.would_block(block.reason);
                event(true);
                return Ok(BlockOutcome::WouldBlock);
            }
            return Ok(BlockOutcome::Extended);
        }
        let end_before = state.blocklist.get(&block.target).map(|b| b.until_ns);
        match state.blocklist.insert(block.clone()) {
            Inserted::Full => Err(EnforceError::Full),
            Inserted::Extended => {
                let current = state.blocklist.get(&block.target).cloned();
                if let Some(current) = current.filter(|c| Some(c.until_ns) != end_before) {
                    // The new end, keeping the kernel's hit count.
                    let mut entry = kernel_entry(&current);
                    entry.hits = state.maps.get(&current.target).map_or(0, |e| e.hits);
                    state.maps.put(&current.target, entry)?;
                    if block.origin.is_none() {
                        self.share(&current);
                    }
                }
                Ok(BlockOutcome::Extended)
            }
            Inserted::New { evicted } => {
                if let Some(old) = evicted {
                    self.metrics.enforce.evicted(Table::Blocklist, 1);
                    self.lifted(state, now, &old, UnblockReason::Evicted, None);
                }
                if let Err(e) = state.maps.put(&block.target, kernel_entry(&block)) {
                    state.blocklist.remove(&block.target);
                    self.metrics.enforce.map_error(MapOp::Block);
                    return Err(e.into());
                }
                self.metrics.enforce.blocked(block.reason);
                self.metrics
                    .enforce
                    .set_blocked_clients(state.blocklist.len());
                info!(target = %block.target, reason = block.reason.as_str(), policy = block.policy.as_deref(), decided_by, "Blocked");
                event(false);
                if block.origin.is_none() {
                    self.share(&block);
                }
                Ok(BlockOutcome::Blocked)
            }
        }
    }

    /// Lifts a block at once (manual unblock).
    pub fn unblock(&self, target: &Target) -> Result<(), EnforceError> {
        let mut state = self.lock();
        match state.blocklist.get(target) {
            None => return Err(EnforceError::NotBlocked(*target)),
            Some(b) if b.reason == BlockReason::Config => {
                return Err(EnforceError::Configured(*target))
            }
            Some(_) => {}
        }
        if let Some(block) = state.blocklist.remove(target) {
            self.lifted(
                &mut state,
                monotonic_now_ns(),
                &block,
                UnblockReason::Manual,
                None,
            );
            if let Some(cluster) = self.cluster.get() {
                cluster.publish(BlockMsg::unblock(target, cluster.node()));
            }
        }
        Ok(())
    }

    /// Shares a block this node decided (config entries are each node's own).
    fn share(&self, block: &Block) {
        if block.reason == BlockReason::Config {
            return;
        }
        if let Some(cluster) = self.cluster.get() {
            cluster.publish(BlockMsg::block(block, cluster.node()));
        }
    }

    /// Removes `block`'s kernel entry and reports it; `by`: the node that lifted it, when
    /// another one did.
    fn lifted(
        &self,
        state: &mut State,
        now: u64,
        block: &Block,
        why: UnblockReason,
        by: Option<&Arc<str>>,
    ) {
        if let Err(error) = state.maps.delete(&block.target) {
            self.metrics.enforce.map_error(MapOp::Unblock);
            warn!(%error, target = %block.target, "Removing a block from the kernel failed");
        }
        self.metrics.enforce.unblocked(why);
        self.metrics
            .enforce
            .set_blocked_clients(state.blocklist.len());
        info!(target = %block.target, why = why.as_str(), "Unblocked");
        let mut e = event::about(block, why.as_str());
        e.decided_by = by.map(AsRef::as_ref).or(self.node());
        self.events
            .emit(&SecurityEvent::new(now, EventBody::Unblock(e)));
    }

    /// Every block in force, soonest end first, with the kernel's hit counts.
    pub fn list(&self) -> Vec<BlockView> {
        let state = self.lock();
        let now = monotonic_now_ns();
        let mut blocks: Vec<&Block> = state.blocklist.iter().collect();
        blocks.sort_by_key(|b| (b.until_ns.unwrap_or(u64::MAX), b.target));
        blocks
            .into_iter()
            .map(|b| BlockView {
                target: b.target.to_string(),
                reason: b.reason.as_str().into(),
                policy: b.policy.as_deref().map(Into::into),
                detail: b.detail.clone(),
                since: rfc3339_from_monotonic(b.since_ns),
                until: b.until_ns.map(rfc3339_from_monotonic),
                expires_in_secs: b.until_ns.map(|u| u.saturating_sub(now) as f64 / 1e9),
                hits: state.maps.get(&b.target).map_or(0, |e| e.hits),
            })
            .collect()
    }

    /// Interfaces the guard runs on: (`name@netns`, ifindex, mode, adopted).
    /// Applies a reloaded `[enforce]` section without touching the guard: mode, allowlist and
    /// trusted proxies (kernel allowlist rewritten), deny list (entries added and lifted),
    /// policies (limiters of unchanged policies keep their state) and the default block
    /// length. Blocks in force stay. `max_blocks` and `max_limiter_keys` need a restart (the
    /// tables are sized at start).
    pub fn reconfigure(
        &self,
        config: &EnforceConfig,
        trusted_proxies: &[Target],
    ) -> Result<(), EnforceError> {
        let mut state = self.lock();
        state
            .maps
            .set_allowlist(&never_blocked(config, trusted_proxies))?;
        let now = monotonic_now_ns();
        let dropped: Vec<Target> = state
            .settings
            .deny
            .iter()
            .filter(|t| !config.deny.contains(t))
            .copied()
            .collect();
        for target in dropped {
            let configured = state
                .blocklist
                .get(&target)
                .is_some_and(|b| b.reason == BlockReason::Config);
            if configured {
                if let Some(block) = state.blocklist.remove(&target) {
                    self.lifted(&mut state, now, &block, UnblockReason::Config, None);
                }
            }
        }
        add_denied(&mut state, now, &config.deny)?;
        let max_keys = NonZeroUsize::new(config.max_limiter_keys).unwrap_or(NonZeroUsize::MIN);
        state.policies.reconfigure(&config.policies, max_keys);
        self.policy_flags
            .store(PolicyFlags::of(&state.policies), Ordering::Relaxed);
        state.limiter_evictions = vec![0; config.policies.len()];
        state.settings = Settings::of(config, trusted_proxies);
        self.metrics
            .enforce
            .set_blocked_clients(state.blocklist.len());
        Ok(())
    }

    /// Block length of `api-guard block` without `--for`.
    pub fn default_block_secs(&self) -> u64 {
        self.lock().settings.default_block_secs
    }

    /// `enforce` or `dry-run`, as configured now.
    pub fn mode(&self) -> EnforceMode {
        self.lock().settings.mode
    }

    pub fn interfaces(&self) -> Vec<(String, u32, &'static str, bool)> {
        let attached = self.attached.lock().unwrap_or_else(|e| e.into_inner());
        attached
            .iter()
            .map(|a| {
                let name = match &a.netns {
                    Some(ns) => format!("{}@{}", a.name, ns.display()),
                    None => a.name.clone(),
                };
                (name, a.ifindex, a.mode, a.adopted)
            })
            .collect()
    }

    /// Periodic work: lifts expired blocks (the kernel already stopped dropping), refreshes
    /// the XDP counters and limiter gauges.
    pub fn tick(&self) {
        let mut state = self.lock();
        let now = monotonic_now_ns();
        for block in state.blocklist.expire(now) {
            self.lifted(&mut state, now, &block, UnblockReason::Expired, None);
        }
        state.would_block.expire(now);
        self.metrics.xdp.set_stats(&state.maps.stat_totals());
        let stats = state.policies.stats();
        for (i, (policy, keys, evictions)) in stats.into_iter().enumerate() {
            self.metrics.enforce.set_ratelimit_keys(&policy, keys);
            if let Some(last) = state.limiter_evictions.get_mut(i) {
                self.metrics
                    .enforce
                    .evicted(Table::Limiter, evictions.saturating_sub(*last));
                *last = evictions;
            }
        }
    }

    /// Stops the guard on its interfaces (unless pinned: then it keeps running without us).
    pub fn detach(&self) {
        self.attached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// The kernel's copy of a block.
fn kernel_entry(block: &Block) -> BlockEntry {
    BlockEntry {
        expires_ns: block.until_ns.unwrap_or(NEVER_EXPIRES),
        hits: 0,
        reason: block.reason.code(),
        _pad: 0,
    }
}

impl Settings {
    fn of(config: &EnforceConfig, trusted_proxies: &[Target]) -> Self {
        Settings {
            mode: config.mode,
            default_block_secs: config.default_block_secs,
            deny: config.deny.clone(),
            allow: NetSet::new(&config.allowlist),
            proxies: NetSet::new(trusted_proxies),
        }
    }
}

/// What the kernel's allowlist holds: allowlisted clients and trusted proxies.
fn never_blocked(config: &EnforceConfig, trusted_proxies: &[Target]) -> Vec<Target> {
    config
        .allowlist
        .iter()
        .chain(trusted_proxies)
        .copied()
        .collect()
}

/// Puts the configured deny list in force (entries already held are left as they are).
fn add_denied(state: &mut State, now: u64, deny: &[Target]) -> Result<(), EnforceError> {
    for target in deny {
        let block = Block {
            target: *target,
            reason: BlockReason::Config,
            policy: None,
            detail: Some("enforce.deny".into()),
            since_ns: now,
            until_ns: None,
            origin: None,
        };
        if let Inserted::New { .. } = state.blocklist.insert(block.clone()) {
            state.maps.put(target, kernel_entry(&block))?;
        }
    }
    Ok(())
}

/// Takes in the kernel entries a pinned earlier daemon left: those still in force are
/// adopted, expired ones and config entries no longer configured are removed.
fn adopt(state: &mut State, now: u64, deny: &[Target]) {
    let entries = state.maps.entries();
    let mut adopted = 0;
    for (target, entry) in entries {
        let reason = BlockReason::from_code(entry.reason);
        let expired = entry.expires_ns != NEVER_EXPIRES && entry.expires_ns <= now;
        let unconfigured = reason == BlockReason::Config && !deny.contains(&target);
        if expired || unconfigured {
            let _ = state.maps.delete(&target);
            continue;
        }
        let block = Block {
            target,
            reason,
            policy: None,
            detail: Some("adopted from a previous run".into()),
            since_ns: now,
            until_ns: (entry.expires_ns != NEVER_EXPIRES).then_some(entry.expires_ns),
            origin: None,
        };
        if let Inserted::New { .. } = state.blocklist.insert(block) {
            adopted += 1;
        }
    }
    if adopted > 0 {
        info!(blocks = adopted, "Adopted blocks from pinned maps");
    }
}
