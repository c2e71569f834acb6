//! `RedisBus` against the raw `redis` crate, side by side in one run, on the same server:
//! append → consumer-group delivery latency at a steady rate (10,000 events/s by default),
//! and the most events per second delivered when appending in batches; on one Redis node
//! and on a Redis Cluster in the same run.
//!
//! ```text
//! cargo bench -p events --bench bus_vs_raw                   # its own redis-server, then its own cluster
//! cargo bench -p events --bench bus_vs_raw -- --topology cluster         # only the cluster
//! cargo bench -p events --bench bus_vs_raw -- --redis-url redis://host:6379 --seconds 10
//! cargo bench -p events --bench bus_vs_raw -- --redis-url redis+cluster://h1:6379,h2:6379
//! ```
//!
//! Options: `--redis-url URL` (one server, or a cluster by its seeds in the
//! `redis+cluster://` form; default: servers of its own, no persistence),
//! `--topology node,cluster` (without `--redis-url`: a redis-server on a free port, then a
//! Redis Cluster of three masters and three replicas made by `events::testkit::RedisCluster`;
//! the raw side uses the `redis` crate's cluster async client there), `--rate N` events/s, `--seconds N` per latency run, `--rounds N`
//! (latency runs alternate raw / ours this many times each), `--events N` per throughput
//! run, `--batch N`. Every event carries the same 200-byte payload (about a tick commit),
//! the first 8 bytes holding its send time. Latency is from the moment the producer issues
//! the append to the moment the consumer's `XREADGROUP` (blocking, COUNT 512) returns it;
//! the consumer acknowledges each read with one `XACK`, on both sides.

use std::sync::Arc;
use std::time::{Duration, Instant};

use events::testkit::{unique_prefix, RedisCluster, RedisServer};
use events::{Append, Bus, IdSpec, RedisBus, RedisBusConfig, StreamId};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands, AsyncConnectionConfig};
use tokio::sync::mpsc;

const PAYLOAD_LEN: usize = 200;
const READ_COUNT: usize = 512;
const BLOCK: Duration = Duration::from_millis(1000);
const GROUP: &str = "bench";
const CONSUMER: &str = "c1";
/// Batches in flight at once in the throughput runs.
const IN_FLIGHT: usize = 4;

struct Opts {
    url: Option<String>,
    topologies: Vec<String>,
    rate: u64,
    seconds: u64,
    rounds: usize,
    events: usize,
    batch: usize,
}

fn opts() -> Opts {
    let mut o = Opts {
        url: None,
        topologies: vec!["node".into(), "cluster".into()],
        rate: 10_000,
        seconds: 5,
        rounds: 2,
        events: 200_000,
        batch: 100,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        match a.as_str() {
            "--redis-url" => o.url = Some(val("--redis-url")),
            "--topology" => {
                o.topologies = val("--topology")
                    .split(',')
                    .map(|t| t.trim().to_string())
                    .collect()
            }
            "--rate" => o.rate = val("--rate").parse().expect("--rate N"),
            "--seconds" => o.seconds = val("--seconds").parse().expect("--seconds N"),
            "--rounds" => o.rounds = val("--rounds").parse().expect("--rounds N"),
            "--events" => o.events = val("--events").parse().expect("--events N"),
            "--batch" => o.batch = val("--batch").parse().expect("--batch N"),
            // `cargo bench` passes `--bench`; anything else is ignored as well.
            _ => {}
        }
    }
    o
}

/// A payload stamped with its send time (nanoseconds since `epoch`).
fn payload(epoch: Instant) -> Vec<u8> {
    let mut p = vec![0x5a; PAYLOAD_LEN];
    let ns = epoch.elapsed().as_nanos() as u64;
    p[..8].copy_from_slice(&ns.to_le_bytes());
    p
}

fn sent_ns(payload: &[u8]) -> u64 {
    payload
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// A raw `redis` crate connection: to one node, or the crate's cluster async client
/// (which routes each command to its key's master and follows redirects).
#[derive(Clone)]
enum RawConn {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RawConn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            RawConn::Node(c) => c.req_packed_command(cmd),
            RawConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            RawConn::Node(c) => c.req_packed_commands(cmd, offset, count),
            RawConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RawConn::Node(c) => c.get_db(),
            RawConn::Cluster(c) => c.get_db(),
        }
    }
}

/// The two clients measured: the same operations, through our bus or straight through
/// the `redis` crate.
#[derive(Clone)]
enum Client {
    Ours(RedisBus),
    Raw {
        shared: RawConn,
        /// A connection of its own for the blocking reads (as `RedisBus` keeps them off
        /// the shared one).
        blocking: RawConn,
    },
}

impl Client {
    fn label(&self) -> &'static str {
        match self {
            Client::Ours(_) => "RedisBus",
            Client::Raw { .. } => "raw redis",
        }
    }

    async fn create_group(&self, stream: &str) {
        match self {
            Client::Ours(b) => b
                .create_group(stream, GROUP, StreamId::ZERO)
                .await
                .expect("create group"),
            Client::Raw { shared, .. } => {
                let mut c = shared.clone();
                let _: () = c
                    .xgroup_create_mkstream(stream, GROUP, "0")
                    .await
                    .expect("create group");
            }
        }
    }

    async fn append(&self, stream: &str, payload: &[u8]) {
        match self {
            Client::Ours(b) => {
                b.append(stream, IdSpec::Auto, payload, None)
                    .await
                    .expect("append");
            }
            Client::Raw { shared, .. } => {
                let mut c = shared.clone();
                let _: String = c.xadd(stream, "*", &[("d", payload)]).await.expect("XADD");
            }
        }
    }

    async fn append_batch(&self, stream: &str, payloads: Vec<Vec<u8>>) {
        match self {
            Client::Ours(b) => {
                let items = payloads
                    .into_iter()
                    .map(|payload| Append {
                        stream: stream.to_string(),
                        id: IdSpec::Auto,
                        payload,
                        maxlen: None,
                    })
                    .collect();
                b.append_batch(items).await.expect("append_batch");
            }
            Client::Raw { shared, .. } => {
                let mut pipe = redis::pipe();
                for p in &payloads {
                    pipe.xadd(stream, "*", &[("d", p.as_slice())]);
                }
                let mut c = shared.clone();
                let _: Vec<String> = pipe.query_async(&mut c).await.expect("XADD pipeline");
            }
        }
    }

    /// One blocking group read, then its `XACK`: the payloads read.
    async fn read_and_ack(&self, stream: &str) -> Vec<Vec<u8>> {
        match self {
            Client::Ours(b) => {
                let got = b
                    .read_group(stream, GROUP, CONSUMER, READ_COUNT, Some(BLOCK))
                    .await
                    .expect("read_group");
                let ids: Vec<StreamId> = got.iter().map(|e| e.id).collect();
                b.ack(stream, GROUP, &ids).await.expect("ack");
                got.into_iter().map(|e| e.payload).collect()
            }
            Client::Raw { shared, blocking } => {
                let opts = StreamReadOptions::default()
                    .group(GROUP, CONSUMER)
                    .count(READ_COUNT)
                    .block(BLOCK.as_millis() as usize);
                let mut c = blocking.clone();
                let reply: Option<StreamReadReply> = c
                    .xread_options(&[stream], &[">"], &opts)
                    .await
                    .expect("XREADGROUP");
                let mut ids = Vec::new();
                let mut out = Vec::new();
                for key in reply.map(|r| r.keys).unwrap_or_default() {
                    for e in key.ids {
                        if let Some(redis::Value::BulkString(p)) = e.map.get("d") {
                            out.push(p.clone());
                        }
                        ids.push(e.id);
                    }
                }
                if !ids.is_empty() {
                    let mut c = shared.clone();
                    let _: u64 = c.xack(stream, GROUP, &ids).await.expect("XACK");
                }
                out
            }
        }
    }
}

/// Runs the consumer until `expected` events arrived; sends each read's latencies.
fn spawn_consumer(
    client: Client,
    stream: String,
    epoch: Instant,
    expected: usize,
) -> (
    tokio::task::JoinHandle<Instant>,
    mpsc::UnboundedReceiver<Vec<u64>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut seen = 0;
        while seen < expected {
            let got = client.read_and_ack(&stream).await;
            let now = epoch.elapsed().as_nanos() as u64;
            seen += got.len();
            let lat = got.iter().map(|p| now.saturating_sub(sent_ns(p))).collect();
            let _ = tx.send(lat);
        }
        Instant::now()
    });
    (task, rx)
}

struct Latency {
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    achieved_rate: f64,
}

fn micros(sorted: &[u64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i] as f64 / 1_000.0
}

/// Appends at a steady `rate` for `seconds`, one `append` per event issued on its
/// schedule (every 1/rate s; a late producer catches up, so the rate holds), each append
/// its own request on the shared connection, as the services issue them.
async fn latency(client: &Client, prefix: &str, rate: u64, seconds: u64) -> Latency {
    let stream = format!("{prefix}:lat:{}", client.label().replace(' ', "-"));
    client.create_group(&stream).await;
    let epoch = Instant::now();
    let total = (rate * seconds) as usize;
    // Let the consumer block first.
    let (consumer, mut rx) = spawn_consumer(client.clone(), stream.clone(), epoch, total);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let mut interval = tokio::time::interval(Duration::from_millis(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent = 0usize;
    let mut appends = tokio::task::JoinSet::new();
    while sent < total {
        interval.tick().await;
        let due = ((start.elapsed().as_nanos() / period.as_nanos()) as usize + 1).min(total);
        while sent < due {
            let (c, s, p) = (client.clone(), stream.clone(), payload(epoch));
            appends.spawn(async move { c.append(&s, &p).await });
            sent += 1;
        }
        while appends.try_join_next().is_some() {}
    }
    let produced = start.elapsed();
    while appends.join_next().await.is_some() {}
    consumer.await.expect("consumer");
    let mut all = Vec::with_capacity(total);
    while let Ok(v) = rx.try_recv() {
        all.extend(v);
    }
    all.sort_unstable();
    Latency {
        p50: micros(&all, 0.50),
        p99: micros(&all, 0.99),
        p999: micros(&all, 0.999),
        max: micros(&all, 1.0),
        achieved_rate: total as f64 / produced.as_secs_f64(),
    }
}

/// Appends `events` in batches of `batch` with [`IN_FLIGHT`] batches outstanding and
/// returns events/s from the first append to the consumer holding the last one.
async fn throughput(client: &Client, prefix: &str, events: usize, batch: usize) -> f64 {
    let stream = format!("{prefix}:tput:{}", client.label().replace(' ', "-"));
    client.create_group(&stream).await;
    let epoch = Instant::now();
    let (consumer, _rx) = spawn_consumer(client.clone(), stream.clone(), epoch, events);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut producers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (c, s, next) = (client.clone(), stream.clone(), next.clone());
        producers.spawn(async move {
            loop {
                let from = next.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
                if from >= events {
                    break;
                }
                let n = batch.min(events - from);
                c.append_batch(&s, (0..n).map(|_| payload(epoch)).collect())
                    .await;
            }
        });
    }
    while producers.join_next().await.is_some() {}
    let done = consumer.await.expect("consumer");
    events as f64 / done.duration_since(start).as_secs_f64()
}

/// Connects the raw client: one node, or the cluster async client over `seeds`.
async fn raw_client(url: &str, seeds: Option<Vec<String>>) -> Client {
    let block_timeout = BLOCK + Duration::from_secs(2);
    if let Some(seeds) = seeds {
        let shared = redis::cluster::ClusterClient::builder(seeds.clone())
            .build()
            .expect("cluster seeds")
            .get_async_connection()
            .await
            .expect("connect to the cluster");
        let blocking = redis::cluster::ClusterClient::builder(seeds)
            .response_timeout(block_timeout)
            .build()
            .expect("cluster seeds")
            .get_async_connection()
            .await
            .expect("connect to the cluster");
        return Client::Raw {
            shared: RawConn::Cluster(shared),
            blocking: RawConn::Cluster(blocking),
        };
    }
    let redis_client = redis::Client::open(url).expect("redis url");
    let shared = redis_client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let blocking = redis_client
        .get_multiplexed_async_connection_with_config(
            &AsyncConnectionConfig::new().set_response_timeout(Some(block_timeout)),
        )
        .await
        .expect("connect");
    Client::Raw {
        shared: RawConn::Node(shared),
        blocking: RawConn::Node(blocking),
    }
}

/// The seed URLs of a `redis+cluster://a,b` or comma-separated URL, `None` for one node.
fn cluster_seeds(url: &str) -> Option<Vec<String>> {
    let rest = url
        .strip_prefix("redis+cluster://")
        .map(str::to_string)
        .or_else(|| {
            url.contains(',')
                .then(|| url.trim_start_matches("redis://").to_string())
        })?;
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((a, h)) => (format!("{a}@"), h.to_string()),
        None => (String::new(), rest),
    };
    Some(
        hosts
            .split(',')
            .map(|h| format!("redis://{auth}{}", h.trim()))
            .collect(),
    )
}

/// Both clients on one server or cluster: the latency rounds, then the throughput rounds.
async fn measure(o: &Opts, topology: &str, url: &str, ours: Client, raw: Client) {
    let prefix = format!("{}bench", unique_prefix());
    println!(
        "\n## {topology}: bus vs raw redis on {url}: {} B payloads, {} events/s for {} s per run, {} rounds",
        PAYLOAD_LEN, o.rate, o.seconds, o.rounds
    );
    // Warm both (connections, the script cache, the allocator).
    for c in [&raw, &ours] {
        latency(c, &format!("{prefix}:warm"), o.rate, 1).await;
    }
    let mut rows: Vec<(&str, Latency)> = Vec::new();
    for round in 0..o.rounds {
        for c in [&raw, &ours] {
            let l = latency(c, &format!("{prefix}:r{round}"), o.rate, o.seconds).await;
            println!(
                "  round {round} {:<10} p50 {:>7.0} µs  p99 {:>7.0} µs  p99.9 {:>7.0} µs  max {:>7.0} µs  ({:.0} events/s)",
                c.label(),
                l.p50,
                l.p99,
                l.p999,
                l.max,
                l.achieved_rate
            );
            rows.push((c.label(), l));
        }
    }
    let median = |label: &str, f: fn(&Latency) -> f64| {
        let mut v: Vec<f64> = rows
            .iter()
            .filter(|r| r.0 == label)
            .map(|r| f(&r.1))
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "\n| {topology}: latency at {} events/s | raw redis | RedisBus | ratio |",
        o.rate
    );
    println!("|---|---|---|---|");
    for (name, f) in [
        ("p50 (µs)", (|l: &Latency| l.p50) as fn(&Latency) -> f64),
        ("p99 (µs)", |l: &Latency| l.p99),
        ("p99.9 (µs)", |l: &Latency| l.p999),
    ] {
        let (r, b) = (median("raw redis", f), median("RedisBus", f));
        println!("| {name} | {r:.0} | {b:.0} | {:.2}× |", b / r);
    }
    let mut tput = Vec::new();
    for round in 0..o.rounds {
        for c in [&raw, &ours] {
            let t = throughput(c, &format!("{prefix}:t{round}"), o.events, o.batch).await;
            println!("  round {round} {:<10} {t:>9.0} events/s", c.label());
            tput.push((c.label(), t));
        }
    }
    let best = |label: &str| {
        tput.iter()
            .filter(|t| t.0 == label)
            .map(|t| t.1)
            .fold(0.0, f64::max)
    };
    let (r, b) = (best("raw redis"), best("RedisBus"));
    println!(
        "\n| {topology}: batched throughput (batches of {}, {IN_FLIGHT} in flight, best of {}) | raw redis | RedisBus | raw / ours |",
        o.batch, o.rounds
    );
    println!("|---|---|---|---|");
    println!("| events/s delivered | {r:.0} | {b:.0} | {:.2}× |", r / b);
    // Clean up what this run wrote when on a server of someone else's.
    if o.url.is_some() {
        if let Client::Ours(bus) = &ours {
            if let Ok(keys) = bus.keys(&prefix).await {
                for k in keys {
                    let _ = bus.delete(std::slice::from_ref(&k)).await;
                }
            }
        }
    }
}

fn main() {
    let o = opts();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let targets: Vec<(String, String, Option<Vec<String>>)> = match &o.url {
            Some(u) => {
                let seeds = cluster_seeds(u);
                let t = if seeds.is_some() {
                    "cluster"
                } else {
                    "one node"
                };
                vec![(t.to_string(), u.clone(), seeds)]
            }
            None => Vec::new(),
        };
        let mut servers: (Option<RedisServer>, Option<RedisCluster>) = (None, None);
        let mut targets = targets;
        if o.url.is_none() {
            for t in &o.topologies {
                match t.as_str() {
                    "node" => {
                        let s = RedisServer::start().expect("start a redis-server for the bench");
                        targets.push(("one node".into(), s.url(), None));
                        servers.0 = Some(s);
                    }
                    "cluster" => {
                        let rc =
                            RedisCluster::start().expect("start a Redis Cluster for the bench");
                        let url = rc.url();
                        let seeds = cluster_seeds(&url);
                        targets.push(("cluster (3 masters + 3 replicas)".into(), url, seeds));
                        servers.1 = Some(rc);
                    }
                    other => panic!("--topology: unknown {other:?} (node, cluster)"),
                }
            }
        }
        for (topology, url, seeds) in targets {
            let ours = Client::Ours(
                RedisBus::connect(&url, RedisBusConfig::default())
                    .await
                    .expect("connect RedisBus"),
            );
            let raw = raw_client(&url, seeds).await;
            measure(&o, &topology, &url, ours, raw).await;
        }
        drop(servers);
    });
}
