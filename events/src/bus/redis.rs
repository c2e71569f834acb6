//! `RedisBus`: the Bus over Redis Streams, on one node or a Redis Cluster. Short commands
//! share one multiplexed, self-reconnecting connection (a cluster connection on a cluster,
//! see [`Shared`]); every blocking read runs on a dedicated connection whose response
//! timeout is longer than its BLOCK, so a quiet stream is not mistaken for a dead server
//! (on a cluster, to the node owning the stream's slot: `super::redis_cluster`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, RedisFuture, Value};

use super::redis_cluster::{self, ClusterRouter, Endpoint};
use super::{
    Append, Bus, BusError, Entry, IdSpec, PendingEntry, RawField, StreamId, MAX_BLOCK,
    PAYLOAD_FIELD, RELEASED_IDLE,
};

/// The one field each entry carries its encoded envelope in.
const FIELD: &str = PAYLOAD_FIELD;

/// Connection settings of a [`RedisBus`].
#[derive(Clone, Debug)]
pub struct RedisBusConfig {
    /// Response timeout of the shared connection (the redis crate's default is 500 ms).
    pub response_timeout: Duration,
    /// Connect timeout of every connection.
    pub connect_timeout: Duration,
    /// Reconnect attempts of the shared connection per failure, with exponential backoff.
    pub reconnect_retries: usize,
    /// Longest wait between reconnect attempts.
    pub max_backoff: Duration,
    /// Most idle dedicated connections kept for blocking reads.
    pub max_idle_blocking: usize,
    /// Replicas that must acknowledge a commit (an [`Bus::append_batch`] or an append
    /// under an explicit id: the ticks and steps) before it returns, with `WAIT`; 0: none
    /// (replication stays asynchronous, so a failover may lose the last commits; see
    /// docs/reliability.md).
    pub replica_acks: usize,
    /// Longest `WAIT` for those acknowledgements; past it the commit returns anyway
    /// (counted in `cnit_bus_replica_ack_shortfall_total`).
    pub replica_ack_timeout: Duration,
}

impl Default for RedisBusConfig {
    fn default() -> Self {
        Self {
            response_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            reconnect_retries: 2,
            max_backoff: Duration::from_millis(500),
            max_idle_blocking: 64,
            replica_acks: 0,
            replica_ack_timeout: Duration::from_millis(100),
        }
    }
}

/// The shared connection of short commands: one node's self-reconnecting manager, or a
/// cluster connection that routes each command by its key's slot, follows `MOVED`/`ASK`
/// and refreshes its slot map after a failover. Both run any `redis::Cmd` the same way.
#[derive(Clone)]
pub(crate) enum Shared {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Shared {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Shared::Node(c) => c.req_packed_command(cmd),
            Shared::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Shared::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Shared::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Shared::Node(c) => c.get_db(),
            Shared::Cluster(c) => c.get_db(),
        }
    }
}

/// Where blocking reads get their dedicated connections.
#[derive(Clone)]
enum Blocking {
    /// One node: a pool of idle connections to it.
    Node {
        client: Client,
        idle: Arc<Mutex<Vec<MultiplexedConnection>>>,
    },
    /// A cluster: connections to the owner of each stream's slot.
    Cluster(Arc<ClusterRouter>),
}

/// Retries of a command on the cluster connection (redirects, a node down), waiting
/// between [`CLUSTER_MIN_RETRY_WAIT_MS`] and [`CLUSTER_MAX_RETRY_WAIT_MS`] growing
/// exponentially: about 2.5 s in all, a failover with a 1 s node timeout.
const CLUSTER_RETRIES: u32 = 6;
const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 50;
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 500;

/// The Redis Streams bus. Cloning shares the connections.
#[derive(Clone)]
pub struct RedisBus {
    shared: Shared,
    blocking: Blocking,
    config: RedisBusConfig,
    replicas: Arc<ReplicaGate>,
}

/// How long the commits of a hash slot whose master has fewer replicas than
/// [`RedisBusConfig::replica_acks`] go without `WAIT` before the master is asked again.
pub const REPLICA_RECHECK: Duration = Duration::from_secs(2);

/// What [`RedisBusConfig::replica_acks`] did so far (also exported as metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaAckStats {
    /// Commits that waited (`WAIT`).
    pub waited: u64,
    /// Of those, the ones not acknowledged by enough replicas in time.
    pub short: u64,
    /// Commits that did not wait: their master had too few replicas to acknowledge them.
    pub skipped: u64,
}

/// When to wait for replicas. A master without enough replicas (a promoted replica whose
/// own master died) would make every commit wait the full timeout for acknowledgements
/// that cannot come; its slots skip `WAIT` until [`REPLICA_RECHECK`] has passed, then ask
/// again. A master whose replicas are merely slow keeps being waited for.
#[derive(Default)]
struct ReplicaGate {
    /// Per hash slot (0 on one node): no `WAIT` before this instant.
    skip_until: Mutex<HashMap<u16, Instant>>,
    waited: AtomicU64,
    short: AtomicU64,
    skipped: AtomicU64,
}

impl ReplicaGate {
    fn skipping(&self, slot: u16, now: Instant) -> bool {
        let mut skip = self.skip_until.lock().unwrap_or_else(|e| e.into_inner());
        match skip.get(&slot) {
            Some(&until) if now < until => true,
            Some(_) => {
                skip.remove(&slot);
                false
            }
            None => false,
        }
    }

    fn skip(&self, slot: u16, until: Instant) {
        self.skip_until
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(slot, until);
    }

    fn stats(&self) -> ReplicaAckStats {
        ReplicaAckStats {
            waited: self.waited.load(Ordering::Relaxed),
            short: self.short.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }
}

/// The number of connected replicas in a `ROLE` reply of a master; `None` for a reply
/// that is not a master's.
fn role_replicas(reply: &Value) -> Option<usize> {
    let Value::Array(items) = reply else {
        return None;
    };
    let role = match items.first()? {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        _ => return None,
    };
    if role != "master" {
        return None;
    }
    match items.get(2)? {
        Value::Array(replicas) => Some(replicas.len()),
        _ => None,
    }
}

pub(crate) fn map_err(e: redis::RedisError) -> BusError {
    if e.code() == Some("NOGROUP") {
        return BusError::NoGroup {
            stream: String::new(),
            group: e.detail().unwrap_or_default().to_string(),
        };
    }
    if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_connection_refusal() {
        return BusError::Unavailable(e.to_string());
    }
    // A cluster in the middle of a failover or a resharding: CLUSTERDOWN, MASTERDOWN,
    // TRYAGAIN; READONLY and UNBLOCKED when a master was demoted under a command; MOVED
    // and ASK left over after the cluster connection's own retries.
    if matches!(
        e.code(),
        Some(
            "LOADING"
                | "TRYAGAIN"
                | "BUSY"
                | "CLUSTERDOWN"
                | "MASTERDOWN"
                | "READONLY"
                | "UNBLOCKED"
                | "MOVED"
                | "ASK"
        )
    ) || e.kind() == redis::ErrorKind::ClusterConnectionNotFound
    {
        return BusError::Unavailable(e.to_string());
    }
    if e.code() == Some("CROSSSLOT") {
        return BusError::Protocol(format!("keys of one command span hash slots: {e}"));
    }
    BusError::Protocol(e.to_string())
}

fn no_group(stream: &str, group: &str, e: BusError) -> BusError {
    match e {
        BusError::NoGroup { .. } => BusError::NoGroup {
            stream: stream.to_string(),
            group: group.to_string(),
        },
        other => other,
    }
}

fn is_fencing_error(e: &redis::RedisError) -> bool {
    is_fencing_text(&e.to_string())
}

/// Redis (5.0 to 7.x) refuses an explicit XADD id that is not after the stream's top with
/// "ERR The ID specified in XADD is equal or smaller than the target stream top item", and
/// `0-0` with "ERR The ID specified in XADD must be greater than 0-0".
fn is_fencing_text(text: &str) -> bool {
    text.contains("equal or smaller than the target stream top item")
        || text.contains("must be greater than 0-0")
}

fn parse_id(v: &Value) -> Result<StreamId, BusError> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b)
            .map_err(|_| BusError::Protocol("non-utf8 stream id".into()))?
            .parse(),
        Value::SimpleString(s) => s.parse(),
        other => Err(BusError::Protocol(format!(
            "expected a stream id, got {other:?}"
        ))),
    }
}

fn parse_entry(v: &Value) -> Result<Option<Entry>, BusError> {
    let Value::Array(parts) = v else {
        return Err(BusError::Protocol(format!("expected an entry, got {v:?}")));
    };
    let [id, fields] = parts.as_slice() else {
        return Err(BusError::Protocol("entry is not [id, fields]".into()));
    };
    let id = parse_id(id)?;
    let fields = match fields {
        Value::Array(f) => f,
        // Redis 6.2 reports claimed-but-deleted entries with nil fields.
        Value::Nil => return Ok(None),
        other => return Err(BusError::Protocol(format!("bad entry fields {other:?}"))),
    };
    let mut all = Vec::with_capacity(fields.len() / 2);
    for pair in fields.chunks(2) {
        match pair {
            [k, v] => all.push((field_bytes(k)?, field_bytes(v)?)),
            _ => return Err(BusError::Protocol("entry fields are not pairs".into())),
        }
    }
    // An entry written by a foreign producer without our field is still delivered (with
    // an empty payload and all of its fields) so the consumer dead-letters it, showing
    // what it held, instead of silently skipping it.
    Ok(Some(Entry::from_fields(id, all)))
}

/// A field name or value: bytes as stored.
fn field_bytes(v: &Value) -> Result<Vec<u8>, BusError> {
    match v {
        Value::BulkString(b) => Ok(b.clone()),
        Value::SimpleString(s) => Ok(s.clone().into_bytes()),
        other => Err(BusError::Protocol(format!(
            "expected a field name or value, got {other:?}"
        ))),
    }
}

fn parse_entries(v: &Value) -> Result<Vec<Entry>, BusError> {
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                if let Some(e) = parse_entry(i)? {
                    out.push(e);
                }
            }
            Ok(out)
        }
        other => Err(BusError::Protocol(format!(
            "expected entries, got {other:?}"
        ))),
    }
}

/// `XREAD`/`XREADGROUP` reply: nil on timeout, else `[[stream, entries]]` (RESP2) or a
/// map (RESP3).
fn parse_read_reply(v: &Value) -> Result<Vec<Entry>, BusError> {
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::Array(streams) => {
            let mut out = Vec::new();
            for s in streams {
                match s {
                    Value::Array(pair) if pair.len() == 2 => out.extend(parse_entries(&pair[1])?),
                    other => return Err(BusError::Protocol(format!("bad XREAD reply {other:?}"))),
                }
            }
            Ok(out)
        }
        Value::Map(pairs) => {
            let mut out = Vec::new();
            for (_, entries) in pairs {
                out.extend(parse_entries(entries)?);
            }
            Ok(out)
        }
        other => Err(BusError::Protocol(format!("bad XREAD reply {other:?}"))),
    }
}

fn as_u64(v: &Value) -> Result<u64, BusError> {
    match v {
        Value::Int(i) => Ok(*i as u64),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| BusError::Protocol("expected an integer".into())),
        other => Err(BusError::Protocol(format!(
            "expected an integer, got {other:?}"
        ))),
    }
}

fn as_string(v: &Value) -> Result<String, BusError> {
    match v {
        Value::BulkString(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Ok(s.clone()),
        other => Err(BusError::Protocol(format!(
            "expected a string, got {other:?}"
        ))),
    }
}

/// Escapes glob metacharacters for `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Keep-alive of leases: re-claims (resetting idle) only the entries `consumer` still
/// owns, atomically, so a lease another instance took over is never stolen back. KEYS[1]
/// is the stream; ARGV is `group, consumer, ids...` (the consumer is not a key: on a
/// cluster every key of a script must be in one slot).
const TOUCH_SCRIPT: &str = r#"
local owned = {}
for i, id in ipairs(ARGV) do
  if i > 2 then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    if p[1] and p[1][2] == ARGV[2] then
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
      table.insert(owned, id)
    end
  end
end
return owned
"#;

/// Hand-over: sets a long idle time on the entries `consumer` owns, so another
/// instance's XAUTOCLAIM takes them immediately. KEYS[1] is the stream; ARGV is
/// `group, consumer, idle ms, ids...`.
const RELEASE_SCRIPT: &str = r#"
for i, id in ipairs(ARGV) do
  if i > 3 then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    if p[1] and p[1][2] == ARGV[2] then
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'IDLE', ARGV[3], 'JUSTID')
    end
  end
end
return 1
"#;

/// `append_batch`: XADDs in order, atomically, stopping at the first refusal. KEYS are the
/// streams; ARGV holds `id, maxlen ("" for none), payload` per entry (`d` is [`FIELD`]). Returns `[ids]`, or
/// `[ids written, error]`. On a Redis Cluster a batch's streams must share a hash slot
/// (one match's keys do: they share the `{m:ID}` tag).
const APPEND_BATCH_SCRIPT: &str = r#"
local ids = {}
for i, key in ipairs(KEYS) do
  local id, maxlen, payload = ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i]
  local r
  if maxlen == '' then
    r = redis.pcall('XADD', key, id, 'd', payload)
  else
    r = redis.pcall('XADD', key, 'MAXLEN', '~', maxlen, id, 'd', payload)
  end
  if type(r) == 'table' and r.err then
    return {ids, r.err}
  end
  ids[#ids + 1] = r
end
return {ids}
"#;

fn xadd(stream: &str, id: IdSpec, payload: &[u8], maxlen: Option<usize>) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream);
    if let Some(n) = maxlen {
        cmd.arg("MAXLEN").arg("~").arg(n);
    }
    match id {
        IdSpec::Auto => cmd.arg("*"),
        IdSpec::Explicit(id) => cmd.arg(id.to_string()),
    };
    cmd.arg(FIELD).arg(payload);
    cmd
}

/// The `EVAL` of [`APPEND_BATCH_SCRIPT`] for one non-empty batch.
fn append_batch_cmd(items: &[Append]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(APPEND_BATCH_SCRIPT).arg(items.len());
    for a in items {
        cmd.arg(&a.stream);
    }
    for a in items {
        match a.id {
            IdSpec::Auto => cmd.arg("*"),
            IdSpec::Explicit(id) => cmd.arg(id.to_string()),
        };
        match a.maxlen {
            Some(n) => cmd.arg(n),
            None => cmd.arg(""),
        };
        cmd.arg(a.payload.as_slice());
    }
    cmd
}

impl RedisBus {
    /// Connects to `url`: one node (`redis://[user:pass@]host:port`), or a Redis Cluster
    /// through seed nodes (`redis+cluster://[user:pass@]host:port,host:port` or a
    /// comma-separated list of `redis://` URLs; see `parse_endpoint` in
    /// `bus/redis_cluster.rs`).
    pub async fn connect(url: &str, config: RedisBusConfig) -> Result<Self, BusError> {
        match redis_cluster::parse_endpoint(url)? {
            Endpoint::Node(url) => Self::connect_node(&url, config).await,
            Endpoint::Cluster(seeds) => Self::connect_cluster(&seeds, config).await,
        }
    }

    /// True when connected to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.shared, Shared::Cluster(_))
    }

    async fn connect_cluster(seeds: &[String], config: RedisBusConfig) -> Result<Self, BusError> {
        let first = seeds
            .first()
            .ok_or_else(|| BusError::Unavailable("no seed node".into()))?;
        // Retries ride out a failover (a replica is promoted within a few node timeouts);
        // the crate's default waits start at 1.28 s, too long for a 50 ms tick.
        let client = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
            .connection_timeout(config.connect_timeout)
            .response_timeout(config.response_timeout)
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
            .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS)
            .build()
            .map_err(|e| {
                BusError::Unavailable(format!(
                    "bad cluster seeds {}: {e}",
                    redis_cluster::redact(&seeds.join(","))
                ))
            })?;
        let conn = client.get_async_connection().await.map_err(map_err)?;
        let router = ClusterRouter::new(first, config.clone())?;
        Ok(Self {
            shared: Shared::Cluster(conn),
            blocking: Blocking::Cluster(Arc::new(router)),
            config,
            replicas: Arc::default(),
        })
    }

    async fn connect_node(url: &str, config: RedisBusConfig) -> Result<Self, BusError> {
        let client = Client::open(url).map_err(|e| BusError::Unavailable(e.to_string()))?;
        let mgr_config = ConnectionManagerConfig::new()
            .set_number_of_retries(config.reconnect_retries)
            .set_max_delay(config.max_backoff)
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.connect_timeout));
        let shared = ConnectionManager::new_with_config(client.clone(), mgr_config)
            .await
            .map_err(map_err)?;
        Ok(Self {
            shared: Shared::Node(shared),
            blocking: Blocking::Node {
                client,
                idle: Arc::new(Mutex::new(Vec::new())),
            },
            config,
            replicas: Arc::default(),
        })
    }

    /// Appends an entry made of arbitrary fields, as a foreign producer would (`XADD key
    /// id f1 v1 f2 v2 ...`): the services never write these, tests and tools use it to
    /// check what happens to entries of another shape.
    pub async fn append_fields(
        &self,
        stream: &str,
        id: IdSpec,
        fields: &[RawField],
    ) -> Result<StreamId, BusError> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(stream);
        match id {
            IdSpec::Auto => cmd.arg("*"),
            IdSpec::Explicit(id) => cmd.arg(id.to_string()),
        };
        for (name, value) in fields {
            cmd.arg(name.as_slice()).arg(value.as_slice());
        }
        parse_id(&self.query(&cmd).await?)
    }

    /// Pings the server (readiness checks).
    pub async fn ping(&self) -> Result<(), BusError> {
        let mut c = self.shared.clone();
        let _: Value = redis::cmd("PING")
            .query_async(&mut c)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn take_blocking(
        client: &Client,
        idle: &Mutex<Vec<MultiplexedConnection>>,
        config: &RedisBusConfig,
    ) -> Result<MultiplexedConnection, BusError> {
        if let Some(c) = idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(c);
        }
        // The BLOCK (at most MAX_BLOCK) must end before the response timeout fires.
        let cfg = AsyncConnectionConfig::new()
            .set_response_timeout(Some(MAX_BLOCK + config.response_timeout))
            .set_connection_timeout(Some(config.connect_timeout));
        client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(map_err)
    }

    fn give_back_blocking(
        &self,
        idle: &Mutex<Vec<MultiplexedConnection>>,
        c: MultiplexedConnection,
    ) {
        let mut pool = idle.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < self.config.max_idle_blocking {
            pool.push(c);
        }
    }

    /// Runs a command on the shared connection.
    async fn query(&self, cmd: &redis::Cmd) -> Result<Value, BusError> {
        let mut c = self.shared.clone();
        cmd.query_async(&mut c).await.map_err(map_err)
    }

    /// With [`RedisBusConfig::replica_acks`], waits until that many replicas of the node
    /// holding `stream` have every write this bus sent it (`WAIT` on the same connection,
    /// so it covers the commit just made and everything before it).
    ///
    /// Never fails: the commit is written on the master whatever `WAIT` says, and an error
    /// here would make the caller retry a commit that is already there (and be fenced by
    /// it). A shortfall or an error is counted and logged instead. After a shortfall the
    /// master is asked how many replicas it has (`ROLE`); with fewer than wanted, the
    /// stream's slot skips `WAIT` for [`REPLICA_RECHECK`] (counted), since no wait can
    /// make its commits safer until a replica joins.
    async fn wait_replicas(&self, stream: &str) {
        let want = self.config.replica_acks;
        if want == 0 {
            return;
        }
        let slot = if self.is_cluster() {
            redis_cluster::key_slot(stream.as_bytes())
        } else {
            0
        };
        if self.replicas.skipping(slot, Instant::now()) {
            self.replicas.skipped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("cnit_bus_replica_ack_skipped_total").increment(1);
            return;
        }
        self.replicas.waited.fetch_add(1, Ordering::Relaxed);
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(want)
            .arg(self.config.replica_ack_timeout.as_millis().max(1) as u64);
        let acked = match self
            .query_on_master(stream, cmd)
            .await
            .and_then(|r| as_u64(&r))
        {
            Ok(acked) => acked,
            Err(e) => {
                tracing::warn!(stream, error = %e, "WAIT for replicas failed");
                0
            }
        };
        if acked >= want as u64 {
            return;
        }
        self.replicas.short.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("cnit_bus_replica_ack_shortfall_total").increment(1);
        let replicas = self
            .query_on_master(stream, redis::cmd("ROLE"))
            .await
            .ok()
            .and_then(|r| role_replicas(&r));
        match replicas {
            Some(have) if have < want => {
                self.replicas.skip(slot, Instant::now() + REPLICA_RECHECK);
                tracing::warn!(
                    stream,
                    have,
                    want,
                    recheck = ?REPLICA_RECHECK,
                    "the master has fewer replicas than commits wait for: its commits go \
                     unreplicated until one joins"
                );
            }
            _ => tracing::warn!(
                stream,
                acked,
                want,
                "a commit was not acknowledged by enough replicas in time"
            ),
        }
    }

    /// What [`RedisBusConfig::replica_acks`] did so far: commits that waited, fell short,
    /// or skipped the wait on a master without enough replicas.
    pub fn replica_ack_stats(&self) -> ReplicaAckStats {
        self.replicas.stats()
    }

    /// Runs `cmd` on the node holding `stream`: the one node, or on a cluster the master
    /// of its slot (the crate would send `WAIT` or `ROLE` to every master).
    async fn query_on_master(&self, stream: &str, cmd: Cmd) -> Result<Value, BusError> {
        match &self.shared {
            Shared::Node(_) => self.query(&cmd).await,
            Shared::Cluster(c) => {
                let mut c = c.clone();
                let route = redis::cluster_routing::Route::with_key(
                    stream,
                    redis::cluster_routing::SlotAddr::Master,
                );
                c.route_command(
                    cmd,
                    redis::cluster_routing::RoutingInfo::SingleNode(
                        redis::cluster_routing::SingleNodeRoutingInfo::SpecificNode(route),
                    ),
                )
                .await
                .map_err(map_err)
            }
        }
    }

    /// On a cluster, checks that `keys` (of one script or atomic batch) share a hash slot,
    /// as Redis Cluster requires, and fails with [`BusError::CrossSlot`] if not. On one
    /// node any keys go together.
    pub fn check_one_slot<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), BusError> {
        if self.is_cluster() {
            redis_cluster::one_slot(keys)?;
        }
        Ok(())
    }

    /// Runs a blocking command on `stream` on a dedicated connection (on a cluster, to the
    /// master of the stream's slot); a connection that failed is dropped rather than
    /// reused.
    async fn query_blocking(&self, stream: &str, cmd: &redis::Cmd) -> Result<Value, BusError> {
        let (client, idle) = match &self.blocking {
            Blocking::Node { client, idle } => (client, idle),
            Blocking::Cluster(router) => {
                let Shared::Cluster(shared) = &self.shared else {
                    return Err(BusError::Protocol(
                        "cluster router without a cluster".into(),
                    ));
                };
                return router.query_blocking(shared, stream, cmd).await;
            }
        };
        let mut c = Self::take_blocking(client, idle, &self.config).await?;
        match cmd.query_async(&mut c).await {
            Ok(v) => {
                self.give_back_blocking(idle, c);
                Ok(v)
            }
            Err(e) => {
                let e = map_err(e);
                if e.is_transient() {
                    // The server went away or stalled: the idle connections are most
                    // likely dead too, and each would cost the next readers one error.
                    idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
                } else {
                    self.give_back_blocking(idle, c);
                }
                Err(e)
            }
        }
    }

    async fn fenced(&self, stream: &str, id: StreamId) -> BusError {
        // The stream's top is its last generated id, which survives trims (and is what
        // the refused id was compared with); the newest entry is only a fallback.
        let last = match self.last_generated_id(stream).await {
            Some(last) => last,
            None => self
                .last_id(stream)
                .await
                .ok()
                .flatten()
                .unwrap_or_default(),
        };
        BusError::Fenced {
            stream: stream.to_string(),
            id,
            last,
        }
    }

    /// What one [`APPEND_BATCH_SCRIPT`] reply means for its batch: the ids, or the
    /// refusal of the entry it stopped at.
    async fn append_batch_outcome(
        &self,
        items: &[Append],
        reply: Value,
    ) -> Result<Vec<StreamId>, BusError> {
        let Value::Array(parts) = reply else {
            return Err(BusError::Protocol(format!(
                "bad append batch reply {reply:?}"
            )));
        };
        let (ids, failure) = match parts.as_slice() {
            [Value::Array(ids)] => (ids, None),
            [Value::Array(ids), err] => (ids, Some(as_string(err)?)),
            _ => {
                return Err(BusError::Protocol(format!(
                    "bad append batch reply {parts:?}"
                )))
            }
        };
        let ids = ids.iter().map(parse_id).collect::<Result<Vec<_>, _>>()?;
        let Some(err) = failure else {
            return Ok(ids);
        };
        let failed = items.get(ids.len()).ok_or_else(|| {
            BusError::Protocol(format!("append batch failed past its end: {err}"))
        })?;
        match failed.id {
            IdSpec::Explicit(id) if is_fencing_text(&err) => {
                Err(self.fenced(&failed.stream, id).await)
            }
            _ => Err(BusError::Protocol(err)),
        }
    }

    /// `last-generated-id` of `XINFO STREAM` (flat pairs in RESP2, a map in RESP3).
    async fn last_generated_id(&self, stream: &str) -> Option<StreamId> {
        let mut cmd = redis::cmd("XINFO");
        cmd.arg("STREAM").arg(stream);
        let reply = self.query(&cmd).await.ok()?;
        let is_key = |k: &Value| as_string(k).is_ok_and(|k| k == "last-generated-id");
        match reply {
            Value::Array(flat) => flat
                .chunks(2)
                .find(|kv| kv.len() == 2 && is_key(&kv[0]))
                .and_then(|kv| parse_id(&kv[1]).ok()),
            Value::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| is_key(k))
                .and_then(|(_, v)| parse_id(v).ok()),
            _ => None,
        }
    }
}

impl Bus for RedisBus {
    async fn append(
        &self,
        stream: &str,
        id: IdSpec,
        payload: &[u8],
        maxlen: Option<usize>,
    ) -> Result<StreamId, BusError> {
        let mut c = self.shared.clone();
        let reply: Result<Value, _> = xadd(stream, id, payload, maxlen).query_async(&mut c).await;
        match reply {
            Ok(v) => {
                let written = parse_id(&v)?;
                if matches!(id, IdSpec::Explicit(_)) {
                    self.wait_replicas(stream).await;
                }
                Ok(written)
            }
            Err(e) if is_fencing_error(&e) => match id {
                IdSpec::Explicit(id) => Err(self.fenced(stream, id).await),
                IdSpec::Auto => Err(map_err(e)),
            },
            Err(e) => Err(map_err(e)),
        }
    }

    async fn append_batch(&self, items: Vec<Append>) -> Result<Vec<StreamId>, BusError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        // One script, not a pipeline: a pipeline runs every XADD even after one was
        // refused, so a fenced commit would still leak the entries queued behind it. On a
        // cluster the script runs on one node, so its streams must share a slot.
        self.check_one_slot(items.iter().map(|a| a.stream.as_str()))?;
        let reply = self.query(&append_batch_cmd(&items)).await?;
        // On a refusal the entries before the refused one are written; the outcome
        // reports the refused one.
        let ids = self.append_batch_outcome(&items, reply).await?;
        self.wait_replicas(&items[0].stream).await;
        Ok(ids)
    }

    fn batches_share_a_round_trip(&self) -> bool {
        !(self.is_cluster() || self.config.replica_acks > 0)
    }

    async fn append_batches(
        &self,
        batches: &[Vec<Append>],
    ) -> Vec<Result<Vec<StreamId>, BusError>> {
        // One pipeline of one script per batch: each batch stays atomic and stops at its
        // own refusal, and the server runs them back to back, so with `appendfsync
        // always` a single fsync covers them.
        if !self.batches_share_a_round_trip() {
            // A cluster runs each batch on the node that owns its slot (checked per batch),
            // and replica acknowledgements are waited for per batch: send them at once.
            return futures::future::join_all(batches.iter().map(|b| self.append_batch(b.clone())))
                .await;
        }
        let mut out: Vec<Result<Vec<StreamId>, BusError>> =
            batches.iter().map(|_| Ok(Vec::new())).collect();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let sent: Vec<usize> = (0..batches.len())
            .filter(|&i| !batches[i].is_empty())
            .collect();
        if sent.is_empty() {
            return out;
        }
        for &i in &sent {
            pipe.add_command(append_batch_cmd(&batches[i]));
        }
        let mut c = self.shared.clone();
        let replies: Result<Vec<redis::RedisResult<Value>>, _> = pipe.query_async(&mut c).await;
        match replies {
            Err(e) => {
                let e = map_err(e);
                for &i in &sent {
                    out[i] = Err(e.clone());
                }
            }
            Ok(replies) => {
                let mut replies = replies.into_iter();
                for &i in &sent {
                    out[i] = match replies.next() {
                        Some(Ok(v)) => self.append_batch_outcome(&batches[i], v).await,
                        Some(Err(e)) => Err(map_err(e)),
                        None => Err(BusError::Protocol("pipeline reply too short".into())),
                    };
                }
            }
        }
        out
    }

    async fn range(
        &self,
        stream: &str,
        from: StreamId,
        to: StreamId,
        count: usize,
    ) -> Result<Vec<Entry>, BusError> {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(stream)
            .arg(from.to_string())
            .arg(to.to_string())
            .arg("COUNT")
            .arg(count);
        parse_entries(&self.query(&cmd).await?)
    }

    async fn rev_range(&self, stream: &str, count: usize) -> Result<Vec<Entry>, BusError> {
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(stream).arg("+").arg("-").arg("COUNT").arg(count);
        parse_entries(&self.query(&cmd).await?)
    }

    async fn read_after(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Entry>, BusError> {
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(count);
        match block {
            Some(b) => {
                cmd.arg("BLOCK")
                    .arg(b.min(MAX_BLOCK).as_millis().max(1) as u64);
                cmd.arg("STREAMS").arg(stream).arg(after.to_string());
                parse_read_reply(&self.query_blocking(stream, &cmd).await?)
            }
            None => {
                cmd.arg("STREAMS").arg(stream).arg(after.to_string());
                parse_read_reply(&self.query(&cmd).await?)
            }
        }
    }

    async fn create_group(
        &self,
        stream: &str,
        group: &str,
        start: StreamId,
    ) -> Result<(), BusError> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(stream)
            .arg(group)
            .arg(start.to_string())
            .arg("MKSTREAM");
        let mut c = self.shared.clone();
        match cmd.query_async::<Value>(&mut c).await {
            Ok(_) => Ok(()),
            // "BUSYGROUP Consumer Group name already exists": creating is idempotent.
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn read_group(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Entry>, BusError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count);
        let reply = match block {
            Some(b) => {
                cmd.arg("BLOCK")
                    .arg(b.min(MAX_BLOCK).as_millis().max(1) as u64);
                cmd.arg("STREAMS").arg(stream).arg(">");
                self.query_blocking(stream, &cmd).await
            }
            None => {
                cmd.arg("STREAMS").arg(stream).arg(">");
                self.query(&cmd).await
            }
        };
        parse_read_reply(&reply.map_err(|e| no_group(stream, group, e))?)
    }

    async fn ack(&self, stream: &str, group: &str, ids: &[StreamId]) -> Result<u64, BusError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("XACK");
        cmd.arg(stream).arg(group);
        for id in ids {
            cmd.arg(id.to_string());
        }
        as_u64(&self.query(&cmd).await?)
    }

    async fn pending(
        &self,
        stream: &str,
        group: &str,
        count: usize,
    ) -> Result<Vec<PendingEntry>, BusError> {
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(stream).arg(group).arg("-").arg("+").arg(count);
        let reply = self
            .query(&cmd)
            .await
            .map_err(|e| no_group(stream, group, e))?;
        let Value::Array(items) = reply else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let Value::Array(f) = item else {
                return Err(BusError::Protocol("bad XPENDING item".into()));
            };
            let [id, consumer, idle, deliveries] = f.as_slice() else {
                return Err(BusError::Protocol("bad XPENDING item".into()));
            };
            out.push(PendingEntry {
                id: parse_id(id)?,
                consumer: as_string(consumer)?,
                idle: Duration::from_millis(as_u64(idle)?),
                deliveries: as_u64(deliveries)?,
            });
        }
        Ok(out)
    }

    async fn claim_idle(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Entry>, BusError> {
        // XAUTOCLAIM gives up after COUNT * 10 pending entries examined (recent ones
        // included) and counts deleted entries against COUNT, so one call can return less
        // than it could; follow its cursor until `count` is reached or the list is done.
        let mut out = Vec::new();
        let mut cursor = StreamId::ZERO;
        while out.len() < count {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(stream)
                .arg(group)
                .arg(consumer)
                .arg(min_idle.as_millis() as u64)
                .arg(cursor.to_string())
                .arg("COUNT")
                .arg(count - out.len());
            let reply = self
                .query(&cmd)
                .await
                .map_err(|e| no_group(stream, group, e))?;
            // [next cursor, claimed entries] (+ [deleted ids] since Redis 7.0).
            let Value::Array(parts) = reply else {
                return Err(BusError::Protocol(format!(
                    "bad XAUTOCLAIM reply {reply:?}"
                )));
            };
            let [next, claimed, ..] = parts.as_slice() else {
                return Err(BusError::Protocol(format!(
                    "bad XAUTOCLAIM reply {parts:?}"
                )));
            };
            out.extend(parse_entries(claimed)?);
            let next = parse_id(next)?;
            // `0-0` means the whole pending list was scanned; a cursor that does not move
            // forward would loop forever, so it ends the scan too.
            if next == StreamId::ZERO || next <= cursor {
                break;
            }
            cursor = next;
        }
        out.truncate(count);
        Ok(out)
    }

    async fn touch(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        ids: &[StreamId],
    ) -> Result<Vec<StreamId>, BusError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(TOUCH_SCRIPT)
            .arg(1)
            .arg(stream)
            .arg(group)
            .arg(consumer);
        for id in ids {
            cmd.arg(id.to_string());
        }
        let reply = self
            .query(&cmd)
            .await
            .map_err(|e| no_group(stream, group, e))?;
        match reply {
            Value::Array(items) => items.iter().map(parse_id).collect(),
            Value::Nil => Ok(Vec::new()),
            other => Err(BusError::Protocol(format!("bad touch reply {other:?}"))),
        }
    }

    async fn release(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        ids: &[StreamId],
    ) -> Result<(), BusError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(RELEASE_SCRIPT)
            .arg(1)
            .arg(stream)
            .arg(group)
            .arg(consumer)
            .arg(RELEASED_IDLE.as_millis() as u64);
        for id in ids {
            cmd.arg(id.to_string());
        }
        self.query(&cmd)
            .await
            .map_err(|e| no_group(stream, group, e))
            .map(|_| ())
    }

    async fn trim(&self, stream: &str, maxlen: usize) -> Result<u64, BusError> {
        let mut cmd = redis::cmd("XTRIM");
        cmd.arg(stream).arg("MAXLEN").arg("~").arg(maxlen);
        as_u64(&self.query(&cmd).await?)
    }

    async fn len(&self, stream: &str) -> Result<u64, BusError> {
        let mut cmd = redis::cmd("XLEN");
        cmd.arg(stream);
        as_u64(&self.query(&cmd).await?)
    }

    async fn delete(&self, streams: &[String]) -> Result<(), BusError> {
        if streams.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("DEL");
        for s in streams {
            cmd.arg(s);
        }
        self.query(&cmd).await.map(|_| ())
    }

    async fn keys(&self, prefix: &str) -> Result<Vec<String>, BusError> {
        let pattern = format!("{}*", glob_escape(prefix));
        let mut keys = Vec::new();
        match (&self.shared, &self.blocking) {
            // Every master holds its own slots' keys: scan them all.
            (Shared::Cluster(shared), Blocking::Cluster(router)) => {
                for node in router.masters(shared).await? {
                    self.scan(&pattern, Some((shared, &node)), &mut keys)
                        .await?;
                }
            }
            _ => self.scan(&pattern, None, &mut keys).await?,
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

impl RedisBus {
    /// `SCAN ... TYPE stream` to the end, on the shared connection or on one cluster node.
    async fn scan(
        &self,
        pattern: &str,
        node: Option<(&ClusterConnection, &str)>,
        keys: &mut Vec<String>,
    ) -> Result<(), BusError> {
        let mut cursor = 0u64;
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .arg("TYPE")
                .arg("stream");
            let reply = match node {
                Some((shared, node)) => ClusterRouter::on_node(shared, node, &cmd).await?,
                None => self.query(&cmd).await?,
            };
            let Value::Array(parts) = reply else {
                return Err(BusError::Protocol("bad SCAN reply".into()));
            };
            let [next, batch] = parts.as_slice() else {
                return Err(BusError::Protocol("bad SCAN reply".into()));
            };
            if let Value::Array(batch) = batch {
                for k in batch {
                    keys.push(as_string(k)?);
                }
            }
            cursor = as_u64(next)?;
            if cursor == 0 {
                return Ok(());
            }
        }
    }
}
