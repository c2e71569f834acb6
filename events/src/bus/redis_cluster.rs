//! Redis Cluster support of [`super::RedisBus`]: the URL forms that name a cluster, hash
//! slots (so that multi-key scripts are refused before they reach a server when their keys
//! span slots), and the dedicated connections of blocking reads, opened to the node that
//! owns the stream's slot and moved on `MOVED`/`ASK` and after a failover.
//!
//! Short commands go through the `redis` crate's cluster connection, which follows
//! redirects and refreshes its slot map by itself. A blocking `XREAD`/`XREADGROUP` cannot
//! share it: a blocked command holds up every command queued behind it on that node's
//! connection. So each blocking read takes a connection of its own to the slot's owner,
//! from a small per-node pool, and keeps a slot map of its own for that.

use std::collections::BTreeMap;
use std::sync::Mutex;

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use redis::{ServerErrorKind, Value};

use super::{BusError, MAX_BLOCK};
use crate::bus::RedisBusConfig;

/// Number of hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// Redirects one blocking read follows before giving up (a slot moving twice while one
/// read is on its way is already rare).
const MAX_REDIRECTS: usize = 5;

/// Scheme of the single-URL cluster form: `redis+cluster://[user:pass@]host:port,host:port`.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// What a `--redis-url` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// One Redis: a URL the `redis` crate understands (`redis://`, `rediss://`, `unix://`).
    Node(String),
    /// A Redis Cluster, reached through these seed nodes (full `redis://` URLs, each with
    /// the same credentials); the client discovers the other nodes from them.
    Cluster(Vec<String>),
}

/// Parses a `--redis-url`:
/// - `redis://[user:pass@]host:port[/db]`: one node (unchanged);
/// - `redis+cluster://[user:pass@]host:port[,host:port...]`: a cluster, with these seeds;
/// - a comma-separated list `redis://[user:pass@]host:port,host:port,...`: a cluster; the
///   items after the first may be full URLs or bare `host:port`, which take the first
///   item's scheme and credentials.
pub fn parse_endpoint(url: &str) -> Result<Endpoint, BusError> {
    let url = url.trim();
    let bad = |why: &str| BusError::Unavailable(format!("bad Redis URL {:?}: {why}", redact(url)));
    if let Some(rest) = strip_prefix_ci(url, CLUSTER_SCHEME) {
        let (userinfo, hosts) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let hosts = hosts.trim_end_matches('/');
        let mut seeds = Vec::new();
        for host in hosts.split(',').map(str::trim) {
            if host.is_empty() || host.contains('/') || host.contains('@') {
                return Err(bad(
                    "expected host:port[,host:port...] after redis+cluster://",
                ));
            }
            seeds.push(match userinfo {
                Some(u) => format!("redis://{u}@{host}"),
                None => format!("redis://{host}"),
            });
        }
        if seeds.is_empty() {
            return Err(bad("no seed node"));
        }
        return Ok(Endpoint::Cluster(seeds));
    }
    if !url.contains(',') {
        return Ok(Endpoint::Node(url.to_string()));
    }
    let mut items = url.split(',').map(str::trim);
    let first = items.next().unwrap_or_default();
    let Some((scheme, after)) = first.split_once("://") else {
        return Err(bad("the first seed must be a full redis:// URL"));
    };
    let userinfo = after.rsplit_once('@').map(|(u, _)| u);
    let mut seeds = vec![first.to_string()];
    for item in items {
        if item.is_empty() {
            return Err(bad("empty seed in the list"));
        }
        if item.contains("://") {
            seeds.push(item.to_string());
        } else {
            seeds.push(match userinfo {
                Some(u) => format!("{scheme}://{u}@{item}"),
                None => format!("{scheme}://{item}"),
            });
        }
    }
    Ok(Endpoint::Cluster(seeds))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The URL without its password, for error messages.
pub fn redact(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for (i, item) in url.split(',').enumerate() {
        if i > 0 {
            out.push(',');
        }
        match (item.find("://"), item.rfind('@')) {
            (Some(s), Some(at)) if at > s => {
                let userinfo = &item[s + 3..at];
                out.push_str(&item[..s + 3]);
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str("***"),
                }
                out.push_str(&item[at..]);
            }
            _ => out.push_str(item),
        }
    }
    out
}

/// The hash slot of a key, as Redis Cluster computes it: CRC16 (XMODEM) of the key's hash
/// tag (the part between the first `{` and the next `}`, when not empty) or of the whole key,
/// modulo 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let close = key[open + 1..].iter().position(|&b| b == b'}')?;
            let tag = &key[open + 1..open + 1 + close];
            (!tag.is_empty()).then_some(tag)
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(hashed) % SLOTS
}

/// Checks that every key is in one slot: on a cluster, a script or an atomic batch runs on
/// one node and only on keys of one slot. Returns the slot.
pub fn one_slot<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<Option<u16>, BusError> {
    let mut first: Option<(&str, u16)> = None;
    for key in keys {
        let slot = key_slot(key.as_bytes());
        match first {
            None => first = Some((key, slot)),
            Some((k, s)) if s != slot => {
                return Err(BusError::CrossSlot {
                    first: k.to_string(),
                    other: key.to_string(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(first.map(|(_, s)| s))
}

/// One range of slots and the master that serves it (`host:port`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct SlotRange {
    start: u16,
    end: u16,
    master: String,
}

/// Parses a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, ...], replicas...], ...]`.
fn parse_slots(v: &Value) -> Result<Vec<SlotRange>, BusError> {
    let bad = || BusError::Protocol(format!("bad CLUSTER SLOTS reply {v:?}"));
    let Value::Array(ranges) = v else {
        return Err(bad());
    };
    let int = |v: &Value| match v {
        Value::Int(i) => u16::try_from(*i).ok(),
        _ => None,
    };
    let text = |v: &Value| match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok().map(str::to_string),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        let Value::Array(parts) = r else {
            return Err(bad());
        };
        let [start, end, master, ..] = parts.as_slice() else {
            return Err(bad());
        };
        let Value::Array(node) = master else {
            return Err(bad());
        };
        let (Some(start), Some(end)) = (int(start), int(end)) else {
            return Err(bad());
        };
        let [host, port, ..] = node.as_slice() else {
            return Err(bad());
        };
        let (Some(host), Some(port)) = (text(host), int(port)) else {
            return Err(bad());
        };
        // An empty or "?" host means "the node you asked"; the cluster connection asked a
        // node of its choosing, so such a range cannot be placed: leave it out and let the
        // read be redirected.
        if host.is_empty() || host == "?" {
            continue;
        }
        out.push(SlotRange {
            start,
            end,
            master: format!("{host}:{port}"),
        });
    }
    out.sort_by_key(|r| r.start);
    Ok(out)
}

/// Routing state of a [`super::RedisBus`] on a cluster: its slot map and the idle
/// dedicated connections of blocking reads, per node.
pub struct ClusterRouter {
    /// The first seed, as a template for connections to any node (credentials, protocol).
    template: ConnectionInfo,
    config: RedisBusConfig,
    /// Slot map for blocking reads; empty means "fetch it before the next read".
    slots: Mutex<Vec<SlotRange>>,
    /// Idle blocking connections per node (`host:port`).
    idle: Mutex<BTreeMap<String, Vec<MultiplexedConnection>>>,
}

impl ClusterRouter {
    pub fn new(first_seed: &str, config: RedisBusConfig) -> Result<Self, BusError> {
        let template = first_seed
            .into_connection_info()
            .map_err(|e| BusError::Unavailable(format!("bad seed {}: {e}", redact(first_seed))))?;
        Ok(Self {
            template,
            config,
            slots: Mutex::new(Vec::new()),
            idle: Mutex::new(BTreeMap::new()),
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<SlotRange>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<MultiplexedConnection>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-reads the slot map (`CLUSTER SLOTS`) through the cluster connection.
    async fn refresh(&self, shared: &ClusterConnection) -> Result<(), BusError> {
        let mut c = shared.clone();
        let reply = c
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
            )
            .await
            .map_err(super::redis::map_err)?;
        let map = parse_slots(&reply)?;
        *self.slots() = map;
        Ok(())
    }

    /// Forgets the slot map (it is fetched again before the next blocking read).
    fn invalidate(&self) {
        self.slots().clear();
    }

    /// The master serving `slot`, from the cached map (fetched when empty).
    async fn owner(&self, shared: &ClusterConnection, slot: u16) -> Result<String, BusError> {
        let find = |map: &[SlotRange]| {
            map.iter()
                .find(|r| r.start <= slot && slot <= r.end)
                .map(|r| r.master.clone())
        };
        if let Some(m) = find(&self.slots()) {
            return Ok(m);
        }
        self.refresh(shared).await?;
        find(&self.slots()).ok_or_else(|| {
            BusError::Unavailable(format!("no node of the cluster serves slot {slot}"))
        })
    }

    /// The masters, each once (for commands every master must run, like `SCAN`).
    pub async fn masters(&self, shared: &ClusterConnection) -> Result<Vec<String>, BusError> {
        self.refresh(shared).await?;
        let mut all: Vec<String> = self.slots().iter().map(|r| r.master.clone()).collect();
        all.sort();
        all.dedup();
        Ok(all)
    }

    async fn take(&self, node: &str) -> Result<MultiplexedConnection, BusError> {
        if let Some(c) = self.idle().get_mut(node).and_then(Vec::pop) {
            return Ok(c);
        }
        let (host, port) = split_addr(node)?;
        let info = self
            .template
            .clone()
            .set_addr(ConnectionAddr::Tcp(host.to_string(), port));
        let client = Client::open(info).map_err(super::redis::map_err)?;
        // The BLOCK (at most MAX_BLOCK) must end before the response timeout fires.
        let cfg = AsyncConnectionConfig::new()
            .set_response_timeout(Some(MAX_BLOCK + self.config.response_timeout))
            .set_connection_timeout(Some(self.config.connect_timeout));
        client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map_err(super::redis::map_err)
    }

    fn give_back(&self, node: &str, c: MultiplexedConnection) {
        let mut idle = self.idle();
        let pool = idle.entry(node.to_string()).or_default();
        if pool.len() < self.config.max_idle_blocking {
            pool.push(c);
        }
    }

    /// Runs a blocking command on `key`'s stream on a dedicated connection to the master
    /// of its slot, following `MOVED` (the slot map is re-read) and `ASK` (this one
    /// command goes to the importing node, after `ASKING`). A node that cannot be reached
    /// loses its idle connections and the slot map is re-read before the next read, so
    /// after a failover the reads go to the promoted replica.
    pub async fn query_blocking(
        &self,
        shared: &ClusterConnection,
        key: &str,
        cmd: &redis::Cmd,
    ) -> Result<Value, BusError> {
        let slot = key_slot(key.as_bytes());
        let mut node = self.owner(shared, slot).await?;
        let mut asking = false;
        for _ in 0..MAX_REDIRECTS {
            let mut c = match self.take(&node).await {
                Ok(c) => c,
                Err(e) => {
                    self.node_failed(&node);
                    return Err(e);
                }
            };
            let reply = if asking {
                let mut pipe = redis::pipe();
                pipe.cmd("ASKING").ignore().add_command(cmd.clone());
                pipe.query_async::<Vec<Value>>(&mut c)
                    .await
                    .and_then(|mut v| {
                        v.pop().ok_or_else(|| {
                            redis::RedisError::from((
                                redis::ErrorKind::UnexpectedReturnType,
                                "empty reply to ASKING + command",
                            ))
                        })
                    })
            } else {
                cmd.query_async::<Value>(&mut c).await
            };
            match reply {
                Ok(v) => {
                    self.give_back(&node, c);
                    return Ok(v);
                }
                Err(e) => {
                    if let Some((to, _)) = e.redirect_node() {
                        let to = to.to_string();
                        self.give_back(&node, c);
                        asking = e.kind() == redis::ErrorKind::Server(ServerErrorKind::Ask);
                        if !asking {
                            // The slot has a new owner: the map is stale, maybe for more
                            // slots than this one.
                            self.invalidate();
                        }
                        node = to;
                        continue;
                    }
                    let err = super::redis::map_err(e);
                    if err.is_transient() {
                        self.node_failed(&node);
                    } else {
                        self.give_back(&node, c);
                    }
                    return Err(err);
                }
            }
        }
        self.invalidate();
        Err(BusError::Unavailable(format!(
            "slot {slot} of {key} redirected more than {MAX_REDIRECTS} times"
        )))
    }

    /// A node broke or stalled: its idle connections are most likely dead too, and the
    /// slot map may be out of date (a failover); both are renewed on the next read.
    fn node_failed(&self, node: &str) {
        self.idle().remove(node);
        self.invalidate();
    }

    /// Runs `cmd` on the node `host:port` through the cluster connection.
    pub async fn on_node(
        shared: &ClusterConnection,
        node: &str,
        cmd: &redis::Cmd,
    ) -> Result<Value, BusError> {
        let (host, port) = split_addr(node)?;
        let mut c = shared.clone();
        c.route_command(
            cmd.clone(),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: host.to_string(),
                port,
            }),
        )
        .await
        .map_err(super::redis::map_err)
    }
}

fn split_addr(node: &str) -> Result<(&str, u16), BusError> {
    node.rsplit_once(':')
        .and_then(|(h, p)| {
            Some((
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse().ok()?,
            ))
        })
        .ok_or_else(|| BusError::Protocol(format!("bad node address {node:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on a real server.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"somekey"), 11058);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // An empty tag hashes the whole key.
        assert_eq!(
            key_slot(b"{}foo"),
            crc16::State::<crc16::XMODEM>::calculate(b"{}foo") % SLOTS
        );
        // Agrees with the redis crate's own routing.
        for key in ["a", "cnit:{m:abc}:tick", "x{y}z", "{", "}{a}"] {
            let ours = key_slot(key.as_bytes());
            let theirs = redis::cluster_routing::Slot::for_key(key);
            assert_eq!(
                redis::cluster_routing::Slot::new(ours),
                Some(theirs),
                "{key}"
            );
        }
    }

    #[test]
    fn one_slot_refuses_keys_of_two_slots() {
        let keys = crate::Keys::default();
        let m = crate::MatchId::new("abc").unwrap();
        let streams = keys.match_streams(&m);
        assert!(one_slot(streams.iter().map(String::as_str))
            .unwrap()
            .is_some());
        assert_eq!(one_slot(std::iter::empty()).unwrap(), None);
        let other = crate::MatchId::new("abd").unwrap();
        match one_slot([keys.tick(&m).as_str(), keys.tick(&other).as_str()]) {
            Err(BusError::CrossSlot { first, other }) => {
                assert_eq!(first, keys.tick(&m));
                assert!(other.contains("{m:abd}"));
            }
            r => panic!("expected CrossSlot, got {r:?}"),
        }
    }

    #[test]
    fn url_forms() {
        assert_eq!(
            parse_endpoint("redis://127.0.0.1:6379").unwrap(),
            Endpoint::Node("redis://127.0.0.1:6379".into())
        );
        assert_eq!(
            parse_endpoint("redis+cluster://u:p@a:7000,b:7001").unwrap(),
            Endpoint::Cluster(vec![
                "redis://u:p@a:7000".into(),
                "redis://u:p@b:7001".into()
            ])
        );
        assert_eq!(
            parse_endpoint("REDIS+CLUSTER://a:7000/").unwrap(),
            Endpoint::Cluster(vec!["redis://a:7000".into()])
        );
        assert_eq!(
            parse_endpoint("redis://u:p@a:7000, b:7001,redis://c:7002").unwrap(),
            Endpoint::Cluster(vec![
                "redis://u:p@a:7000".into(),
                "redis://u:p@b:7001".into(),
                "redis://c:7002".into()
            ])
        );
        assert!(parse_endpoint("redis+cluster://").is_err());
        assert!(parse_endpoint("redis+cluster://a:1,,b:2").is_err());
        assert!(parse_endpoint("a:1,b:2").is_err());
        let err = parse_endpoint("redis+cluster://u:secret@")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://u:secret@a:1,redis://u:secret@b:2"),
            "redis://u:***@a:1,redis://u:***@b:2"
        );
        assert_eq!(redact("redis://a:1"), "redis://a:1");
    }

    #[test]
    fn cluster_slots_reply_is_parsed() {
        let node = |h: &str, p: i64| {
            Value::Array(vec![
                Value::BulkString(h.as_bytes().to_vec()),
                Value::Int(p),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node("10.0.0.2", 7001),
                node("10.0.0.5", 7004),
            ]),
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("10.0.0.1", 7000),
            ]),
            Value::Array(vec![Value::Int(10923), Value::Int(16383), node("", 7002)]),
        ]);
        let map = parse_slots(&reply).unwrap();
        assert_eq!(
            map,
            vec![
                SlotRange {
                    start: 0,
                    end: 5460,
                    master: "10.0.0.1:7000".into()
                },
                SlotRange {
                    start: 5461,
                    end: 10922,
                    master: "10.0.0.2:7001".into()
                },
            ]
        );
        assert!(parse_slots(&Value::Int(1)).is_err());
    }
}
