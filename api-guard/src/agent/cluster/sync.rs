//! The cluster task: the only code that talks to Redis. It connects (with backoff), publishes
//! what the data path hands over, resyncs after every (re)connection, and follows the block
//! stream on a connection of its own so remote blocks arrive as soon as they are written.

use std::{
    collections::VecDeque,
    future::Future,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use redis::{
    aio::MultiplexedConnection,
    streams::{StreamRangeReply, StreamReadReply},
    AsyncConnectionConfig, Client, IntoConnectionInfo, RedisError, Script, TlsCertificates,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{
    signals::{self, SignalBuffer},
    stuffing::StuffingBuffer,
    unix_ms,
    wire::BlockMsg,
    ClusterConfig, Outgoing,
};
use crate::{
    enforce::{cluster_limit::Answer, Enforcer},
    output::EventSink,
    telemetry::{ClusterDrop, ClusterOp, Metrics, SignalKind, SignalResult},
    wallclock::monotonic_now_ns,
};

/// First wait before reconnecting; doubles up to `backoff_max_ms`.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// How long one stream read waits on the server for new entries.
const READ_BLOCK_MS: u64 = 1000;
/// Stream entries and hash fields taken per round trip.
const BATCH: usize = 256;
/// Hash fields examined at most in one resync (a hostile or runaway hash cannot stall us).
const MAX_RESYNC_FIELDS: usize = 1_000_000;

/// Deletes a hash field only if it still holds the value we read (an expired block another
/// node may have replaced meanwhile).
const DELETE_IF_SAME: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0";

/// Cluster-scope limits: a GCRA over the cluster for one key. KEYS: the key's TAT, the set
/// of nodes using it; ARGV: ms per unit, units used, node, TTL ms, node window ms. Adds the
/// units (debt beyond one burst past the tolerance is forgiven, so an outage's usage cannot
/// shut a key out for long) and answers how far the TAT is ahead of Redis' clock and how many
/// nodes used the key within the window.
const LIMIT_SYNC: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local ttl = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
tat = math.min(tat + tonumber(ARGV[2]) * interval, now + ttl)
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.floor(ttl) + 1000)
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[2], math.floor(ttl) + 1000)
return {string.format('%.3f', tat - now), redis.call('ZCARD', KEYS[2])}";

/// A node counts as using a key when it synced it within this window.
const NODE_WINDOW_MS: u64 = 1000;
/// Keys synced per tick at most (the rest wait for the next tick).
const MAX_LIMIT_KEYS: usize = 4096;

/// Key sharing over the cluster. KEYS: the credential's HyperLogLog for the window, its
/// "reported" flag; ARGV: threshold, TTL ms, node, addresses... Answers the count and 1 when
/// this call crossed the threshold first (the caller then reports, once for the cluster).
const KEY_SHARING: &str = r"
redis.call('PFADD', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local n = redis.call('PFCOUNT', KEYS[1])
if n > tonumber(ARGV[1]) and redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[2]) then
  return {n, 1}
end
return {n, 0}";

/// Re-announces a block this node holds if the cluster lost it (a Redis restarted empty):
/// into the hash and the stream only when the hash has no entry for the target.
const ANNOUNCE_IF_MISSING: &str = r"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'm', ARGV[2])
  return 1
end
return 0";

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the password file {0} is empty")]
    EmptyPassword(PathBuf),
    #[error("no node name: set cluster.node_name or NODE_NAME")]
    NodeName,
    #[error("Redis: {0}")]
    Redis(#[from] RedisError),
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
}

struct Keys {
    blocks: String,
    stream: String,
}

pub struct ClusterTask {
    config: ClusterConfig,
    node: Arc<str>,
    keys: Keys,
    enforcer: Arc<Enforcer>,
    metrics: Metrics,
    events: EventSink,
    rx: mpsc::Receiver<Outgoing>,
    /// Key-sharing pairs waiting for the next tick (bounded; kept while Redis is away).
    signals: SignalBuffer,
    /// Failed logins waiting for the next tick (bounded; kept while Redis is away).
    stuffing: StuffingBuffer,
    /// What this node decided while Redis was away, oldest first (bounded).
    outbox: VecDeque<BlockMsg>,
    /// The last stream entry applied; shared with the reader of the current connection.
    last_id: Arc<Mutex<Option<String>>>,
}

impl ClusterTask {
    pub fn new(
        config: ClusterConfig,
        node: Arc<str>,
        enforcer: Arc<Enforcer>,
        metrics: Metrics,
        events: EventSink,
        rx: mpsc::Receiver<Outgoing>,
    ) -> Self {
        let p = &config.key_prefix;
        let keys = Keys {
            blocks: format!("{p}:blocks"),
            stream: format!("{p}:block-events"),
        };
        Self {
            config,
            node,
            keys,
            enforcer,
            metrics,
            events,
            rx,
            signals: SignalBuffer::default(),
            stuffing: StuffingBuffer::default(),
            outbox: VecDeque::new(),
            last_id: Arc::new(Mutex::new(None)),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    fn op_timeout(&self) -> Duration {
        Duration::from_millis(self.config.op_timeout_ms)
    }

    /// Runs until `shutdown`: connect, work, and on any failure go local-only and retry.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let max_backoff = Duration::from_millis(self.config.backoff_max_ms);
        let mut backoff = MIN_BACKOFF;
        // Warn once per outage; later failed attempts are debug.
        let mut was_up = true;
        info!(node = %self.node, "Cluster mode on");
        loop {
            let t = Instant::now();
            let connected = tokio::select! {
                c = self.connect() => c,
                () = shutdown.cancelled() => return,
            };
            self.metrics.cluster.op(
                ClusterOp::Connect,
                t.elapsed().as_secs_f64(),
                connected.is_ok(),
            );
            match connected {
                Ok((cmd, read)) => {
                    self.metrics.cluster.set_connected(true);
                    info!(node = %self.node, "Connected to Redis: cluster enforcement on");
                    let end = self.session(cmd, read, &shutdown).await;
                    self.metrics.cluster.set_connected(false);
                    match end {
                        Ok(()) => return,
                        Err(error) => {
                            warn!(%error, "Redis connection lost: enforcing locally until it is back");
                            backoff = MIN_BACKOFF;
                            was_up = false;
                        }
                    }
                }
                Err(error) if was_up => {
                    warn!(%error, "Cannot reach Redis: enforcing locally until it is back");
                    was_up = false;
                }
                Err(error) => debug!(%error, "Cannot reach Redis"),
            }
            // Back off, still taking in (and keeping) what the data path hands over.
            let until = tokio::time::Instant::now() + backoff;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => break,
                    m = self.rx.recv() => match m {
                        Some(m) => self.keep(m),
                        None => return,
                    },
                    () = shutdown.cancelled() => return,
                }
            }
            backoff = (backoff * 2).min(max_backoff);
        }
    }

    /// Two connections: one for commands, one for blocking stream reads (a blocking read
    /// would hold up the commands queued behind it on a shared connection).
    async fn connect(
        &self,
    ) -> Result<(MultiplexedConnection, MultiplexedConnection), ClusterError> {
        let client = self.client()?;
        let connect = Some(Duration::from_millis(self.config.connect_timeout_ms));
        let commands = AsyncConnectionConfig::new()
            .set_connection_timeout(connect)
            .set_response_timeout(Some(self.op_timeout()));
        let reads = AsyncConnectionConfig::new()
            .set_connection_timeout(connect)
            .set_response_timeout(Some(
                self.op_timeout() + Duration::from_millis(READ_BLOCK_MS),
            ));
        let cmd = client
            .get_multiplexed_async_connection_with_config(&commands)
            .await?;
        let read = client
            .get_multiplexed_async_connection_with_config(&reads)
            .await?;
        Ok((cmd, read))
    }

    /// The client, with the password read from its file now (a rotated Secret is picked up
    /// at the next connection).
    fn client(&self) -> Result<Client, ClusterError> {
        let url = self.config.redis_url.as_deref().unwrap_or_default();
        let mut info = url.into_connection_info()?;
        if let Some(path) = &self.config.password_file {
            let read = std::fs::read_to_string(path).map_err(|source| ClusterError::Read {
                path: path.clone(),
                source,
            })?;
            let password = read.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(ClusterError::EmptyPassword(path.clone()));
            }
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        match &self.config.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| ClusterError::Read {
                    path: path.clone(),
                    source,
                })?;
                let certs = TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                Ok(Client::build_with_tls(info, certs)?)
            }
            None => Ok(Client::open(info)?),
        }
    }

    /// Keeps a message for after reconnecting; a full outbox drops its oldest.
    fn keep(&mut self, m: Outgoing) {
        let msg = match m {
            Outgoing::Block(msg) => msg,
            Outgoing::Seen(seen) => return self.add_signal(*seen),
            Outgoing::Failed(failed) => return self.add_failed(*failed),
        };
        if self.outbox.len() >= self.config.queue_capacity {
            self.outbox.pop_front();
            self.metrics.cluster.dropped(ClusterDrop::Outbox);
        }
        self.outbox.push_back(msg);
    }

    /// One connection's life: outbox, resync, then publish and follow until an error.
    async fn session(
        &mut self,
        mut cmd: MultiplexedConnection,
        read: MultiplexedConnection,
        shutdown: &CancellationToken,
    ) -> Result<(), ClusterError> {
        // What this node decided while away goes out first, in order.
        while let Some(msg) = self.outbox.front() {
            let msg = msg.clone();
            self.publish(&mut cmd, &msg).await?;
            self.outbox.pop_front();
        }
        self.reannounce(&mut cmd).await?;
        self.resync(&mut cmd).await?;
        let mut reader = tokio::spawn(follow(
            read,
            self.keys.stream.clone(),
            self.last_id.clone(),
            self.node.clone(),
            self.enforcer.clone(),
            self.metrics.clone(),
        ));
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.sync_interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = loop {
            enum Step {
                Tick,
                Out(Option<Outgoing>),
                ReaderDone(Result<ClusterError, tokio::task::JoinError>),
                Stop,
            }
            let step = tokio::select! {
                m = self.rx.recv() => Step::Out(m),
                _ = tick.tick() => Step::Tick,
                r = &mut reader => Step::ReaderDone(r),
                () = shutdown.cancelled() => Step::Stop,
            };
            match step {
                Step::Tick => {
                    if let Err(e) = self.sync_limits(&mut cmd).await {
                        break Err(e);
                    }
                    if let Err(e) = self.flush_signals(&mut cmd).await {
                        break Err(e);
                    }
                    if let Err(e) = self.flush_stuffing(&mut cmd).await {
                        break Err(e);
                    }
                }
                Step::Out(Some(Outgoing::Seen(seen))) => self.add_signal(*seen),
                Step::Out(Some(Outgoing::Failed(failed))) => self.add_failed(*failed),
                Step::Out(Some(Outgoing::Block(msg))) => {
                    if let Err(e) = self.publish(&mut cmd, &msg).await {
                        self.keep(Outgoing::Block(msg));
                        break Err(e);
                    }
                }
                Step::Out(None) | Step::Stop => break Ok(()),
                Step::ReaderDone(Ok(e)) => return Err(e),
                Step::ReaderDone(Err(join)) => {
                    return Err(ClusterError::Redis(RedisError::from(
                        std::io::Error::other(join.to_string()),
                    )))
                }
            }
        };
        reader.abort();
        result
    }

    /// Cluster-scope limits: every key used since the last tick, in one pipelined round
    /// trip; the answers go back to the enforcer (on failure the usage is kept for later).
    async fn sync_limits(&self, cmd: &mut MultiplexedConnection) -> Result<(), ClusterError> {
        let usage = self.enforcer.take_limit_usage(MAX_LIMIT_KEYS);
        if usage.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for u in &usage {
            let base = format!("{}:rl:{}:{}", self.config.key_prefix, u.policy, u.key_id());
            let interval_ms = 1000.0 / u.rate;
            // Long enough to hold a full burst (and the forgiven debt) and the node window.
            let ttl_ms = (2.0 * u.burst * interval_ms).max(NODE_WINDOW_MS as f64);
            pipe.cmd("EVAL")
                .arg(LIMIT_SYNC)
                .arg(2)
                .arg(&base)
                .arg(format!("{base}:nodes"))
                .arg(interval_ms)
                .arg(u.units)
                .arg(&*self.node)
                .arg(ttl_ms)
                .arg(NODE_WINDOW_MS);
        }
        let round_trip = pipe.query_async::<Vec<(String, i64)>>(cmd);
        match timed(
            &self.metrics,
            ClusterOp::Limit,
            self.op_timeout(),
            round_trip,
        )
        .await
        {
            Ok(rows) => {
                let answers: Vec<Option<Answer>> = rows
                    .iter()
                    .map(|(ahead, nodes)| {
                        let ahead_ms = ahead.parse::<f64>().ok().filter(|a| a.is_finite())?;
                        Some(Answer {
                            ahead_ms,
                            nodes: u32::try_from(*nodes).unwrap_or(1).max(1),
                        })
                    })
                    .collect();
                self.enforcer.apply_limit_answers(usage, &answers);
                Ok(())
            }
            Err(e) => {
                self.enforcer.apply_limit_answers(usage, &[]);
                Err(e)
            }
        }
    }

    fn add_signal(&mut self, seen: signals::Seen) {
        if !self.signals.add(seen) {
            self.metrics.cluster.dropped(ClusterDrop::Queue);
        }
    }

    /// Key sharing: each pending credential's addresses into its HyperLogLog, one pipelined
    /// round trip; reports what this node crossed first. On failure the pairs are dropped
    /// (counted): the next ones of the window count again.
    async fn flush_signals(&mut self, cmd: &mut MultiplexedConnection) -> Result<(), ClusterError> {
        if self.signals.is_empty() {
            return Ok(());
        }
        let pending = self.signals.take();
        let mut pipe = redis::pipe();
        for p in &pending {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(p.last.credential.as_bytes());
            let id: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            let base = format!(
                "{}:{}:{id}:{}",
                self.config.key_prefix,
                p.last.tag(),
                p.last.window
            );
            let ttl_ms = p
                .last
                .window_secs
                .saturating_mul(1000)
                .saturating_add(60_000);
            pipe.cmd("EVAL")
                .arg(KEY_SHARING)
                .arg(2)
                .arg(&base)
                .arg(format!("{base}:reported"))
                .arg(p.last.threshold)
                .arg(ttl_ms)
                .arg(&*self.node);
            for ip in &p.addrs {
                pipe.arg(ip.to_string());
            }
        }
        let round_trip = pipe.query_async::<Vec<(u64, u8)>>(cmd);
        let rows = match timed(
            &self.metrics,
            ClusterOp::Signal,
            self.op_timeout(),
            round_trip,
        )
        .await
        {
            Ok(rows) => rows,
            Err(e) => {
                for _ in &pending {
                    self.metrics.cluster.dropped(ClusterDrop::Outbox);
                }
                return Err(e);
            }
        };
        for (p, (count, first)) in pending.iter().zip(rows) {
            if first == 1 {
                info!(credential = %p.last.credential, addresses = count, "Key shared across the cluster");
                signals::report(&self.events, &self.metrics, &p.last, count);
            }
        }
        Ok(())
    }

    fn add_failed(&mut self, failed: super::stuffing::Failed) {
        if !self.stuffing.add(failed) {
            self.metrics.cluster.dropped(ClusterDrop::Queue);
            self.metrics
                .cluster
                .signals(SignalKind::FailedLogin, SignalResult::Dropped, 1);
        }
    }

    /// Credential stuffing: each pending client's failures and each pending account's
    /// addresses, one pipelined round trip; reports what this node crossed first. On failure
    /// the failures are dropped (counted).
    async fn flush_stuffing(
        &mut self,
        cmd: &mut MultiplexedConnection,
    ) -> Result<(), ClusterError> {
        if self.stuffing.is_empty() {
            return Ok(());
        }
        let batch = self.stuffing.take();
        let pipe = batch.pipeline(&self.config.key_prefix, &self.node, KEY_SHARING);
        let round_trip = pipe.query_async::<Vec<Vec<u64>>>(cmd);
        let rows = timed(
            &self.metrics,
            ClusterOp::Signal,
            self.op_timeout(),
            round_trip,
        )
        .await;
        let result = if rows.is_ok() {
            SignalResult::Sent
        } else {
            SignalResult::Dropped
        };
        self.metrics
            .cluster
            .signals(SignalKind::FailedLogin, result, batch.signals);
        batch.report(&rows?, &self.events, &self.metrics);
        Ok(())
    }

    /// A block or unblock: the hash of blocks in force and the stream, in one transaction.
    async fn publish(
        &self,
        cmd: &mut MultiplexedConnection,
        msg: &BlockMsg,
    ) -> Result<(), ClusterError> {
        let json = msg.to_json();
        let mut pipe = redis::pipe();
        pipe.atomic();
        match msg.op {
            super::wire::Op::Block => pipe.hset(&self.keys.blocks, &msg.target, &json).ignore(),
            super::wire::Op::Unblock => pipe.hdel(&self.keys.blocks, &msg.target).ignore(),
        };
        pipe.cmd("XADD")
            .arg(&self.keys.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.config.stream_max_len)
            .arg("*")
            .arg("m")
            .arg(&json)
            .ignore();
        let op = pipe.query_async::<()>(cmd);
        timed(&self.metrics, ClusterOp::Publish, self.op_timeout(), op).await
    }

    /// This node's blocks in force that the hash lacks, in pipelined batches.
    async fn reannounce(&self, cmd: &mut MultiplexedConnection) -> Result<(), ClusterError> {
        let own = self.enforcer.own_blocks();
        for chunk in own.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for msg in chunk {
                pipe.cmd("EVAL")
                    .arg(ANNOUNCE_IF_MISSING)
                    .arg(2)
                    .arg(&self.keys.blocks)
                    .arg(&self.keys.stream)
                    .arg(&msg.target)
                    .arg(msg.to_json())
                    .arg(self.config.stream_max_len)
                    .ignore();
            }
            let batch = pipe.query_async::<()>(cmd);
            timed(&self.metrics, ClusterOp::Resync, self.op_timeout(), batch).await?;
        }
        Ok(())
    }

    /// Blocks in force (the hash), then the stream from the last entry seen. Blocks lifted
    /// meanwhile reach us through the stream (unblocks are never only in the hash); those
    /// lost with a trimmed stream end at their own time.
    async fn resync(&mut self, cmd: &mut MultiplexedConnection) -> Result<(), ClusterError> {
        let timeout = self.op_timeout();
        let first = self.last_id_now().is_none();
        if first {
            // Start the stream after what the hash already holds.
            let mut last = redis::cmd("XREVRANGE");
            last.arg(&self.keys.stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1);
            let last = last.query_async::<StreamRangeReply>(cmd);
            let last = timed(&self.metrics, ClusterOp::Resync, timeout, last).await?;
            let id = last
                .ids
                .first()
                .map_or_else(|| "0-0".into(), |e| e.id.clone());
            self.set_last_id(id);
        }
        let delete = Script::new(DELETE_IF_SAME);
        let (mut applied, mut examined) = (0usize, 0usize);
        let mut cursor: u64 = 0;
        let now_ms = unix_ms();
        loop {
            let mut page = redis::cmd("HSCAN");
            page.arg(&self.keys.blocks)
                .arg(cursor)
                .arg("COUNT")
                .arg(BATCH);
            let page = page.query_async::<(u64, Vec<(String, Vec<u8>)>)>(cmd);
            let (next, fields) = timed(&self.metrics, ClusterOp::Resync, timeout, page).await?;
            for (field, value) in fields {
                examined += 1;
                let msg = match BlockMsg::parse(&value) {
                    Ok(m) => m,
                    Err(_) => {
                        self.metrics.cluster.dropped(ClusterDrop::Invalid);
                        continue;
                    }
                };
                if msg.expired(now_ms) {
                    let mut del = delete.prepare_invoke();
                    del.key(&self.keys.blocks).arg(&field).arg(&value);
                    let del = del.invoke_async::<i64>(cmd);
                    timed(&self.metrics, ClusterOp::Resync, timeout, del).await?;
                    continue;
                }
                match msg.to_change(now_ms, monotonic_now_ns()) {
                    Ok((change, node)) => {
                        let result = self.enforcer.apply_remote(change, &node);
                        self.metrics.cluster.remote(result);
                        applied += 1;
                    }
                    Err(error) => {
                        debug!(%error, field, "Ignoring an invalid cluster block");
                        self.metrics.cluster.dropped(ClusterDrop::Invalid);
                    }
                }
            }
            cursor = next;
            if cursor == 0 || examined >= MAX_RESYNC_FIELDS {
                break;
            }
        }
        info!(blocks = applied, first, "Resynced cluster blocks");
        Ok(())
    }

    fn last_id_now(&self) -> Option<String> {
        self.last_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_last_id(&self, id: String) {
        *self.last_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(id);
    }
}

/// Follows the block stream from the last id seen, applying other nodes' changes as they
/// come; returns the error that ended it.
async fn follow(
    mut read: MultiplexedConnection,
    stream: String,
    last_id: Arc<Mutex<Option<String>>>,
    node: Arc<str>,
    enforcer: Arc<Enforcer>,
    metrics: Metrics,
) -> ClusterError {
    loop {
        let from = last_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "$".into());
        let t = Instant::now();
        let reply = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(READ_BLOCK_MS)
            .arg("STREAMS")
            .arg(&stream)
            .arg(&from)
            .query_async::<Option<StreamReadReply>>(&mut read)
            .await;
        metrics
            .cluster
            .op(ClusterOp::Read, t.elapsed().as_secs_f64(), reply.is_ok());
        let reply = match reply {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        let entries = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids);
        for entry in entries {
            let bytes: Option<Vec<u8>> = entry.get("m");
            *last_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(entry.id);
            let Some(msg) = bytes.and_then(|b| BlockMsg::parse(&b).ok()) else {
                metrics.cluster.dropped(ClusterDrop::Invalid);
                continue;
            };
            if *msg.node == *node {
                continue;
            }
            match msg.to_change(unix_ms(), monotonic_now_ns()) {
                Ok((change, from)) => {
                    let result = enforcer.apply_remote(change, &from);
                    metrics.cluster.remote(result);
                }
                Err(error) => {
                    debug!(%error, "Ignoring an invalid cluster message");
                    metrics.cluster.dropped(ClusterDrop::Invalid);
                }
            }
        }
    }
}

/// Runs one Redis operation with a deadline, recording its count, errors and latency.
async fn timed<T>(
    metrics: &Metrics,
    op: ClusterOp,
    timeout: Duration,
    fut: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, ClusterError> {
    let t = Instant::now();
    let result = match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ClusterError::Redis(e)),
        Err(_) => Err(ClusterError::Timeout(timeout)),
    };
    metrics
        .cluster
        .op(op, t.elapsed().as_secs_f64(), result.is_ok());
    result
}
