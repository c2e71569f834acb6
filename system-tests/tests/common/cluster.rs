//! Multi-process test harness: starts a throwaway persistent Redis and real service
//! processes (this package's `cnit-*` binaries, see [`bins`]) on loopback, each binding
//! port 0 and reporting the ports it got through `--addr-file`; signals them (SIGKILL,
//! SIGSTOP/SIGCONT, SIGTERM), reads their `/metrics` and RSS, writes matches, audits the
//! logs they wrote (tick contiguity, every command consumed exactly once, dead letters,
//! takeover gaps) and runs `replay-tool verify` on them.
//!
//! Every wait is bounded in time; every process is killed when its [`Service`] drops.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use events::testkit::{unique_prefix, RedisCluster, RedisServer};
use events::{
    decode, encode, Bus, Difficulty, EconomyStepCommitted, Envelope, IdSpec, Keys, MapSpec,
    MatchCreated, MatchEvent, MatchId, PlayerId, PlayerKind, PlayerSlot, RedisBus, RedisBusConfig,
    Source, StreamId,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `CNIT_LONG=1` selects the long profiles (more matches, longer runs).
pub fn long() -> bool {
    std::env::var("CNIT_LONG").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A count for the CI profile or the long one.
pub fn ci_or_long<T>(ci: T, long_value: T) -> T {
    if long() {
        long_value
    } else {
        ci
    }
}

/// Paths of the service binaries.
pub struct Bins {
    pub engine: PathBuf,
    pub economy: PathBuf,
    pub gateway: PathBuf,
    pub replay_tool: PathBuf,
}

/// The service binaries: this package's `cnit-*` targets (the services' own `main.rs`,
/// which cargo built with this test, in its profile: `cargo test --release` runs release
/// services), or, with `CNIT_CLUSTER_BIN_DIR`, the `engine`, `economy` and `gateway`
/// binaries in that directory (e.g. release builds copied out for a long soak).
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let replay_tool = PathBuf::from(env!("CARGO_BIN_EXE_cnit-replay-tool"));
        if let Ok(dir) = std::env::var("CNIT_CLUSTER_BIN_DIR") {
            let dir = PathBuf::from(dir);
            return Bins {
                engine: dir.join("engine"),
                economy: dir.join("economy"),
                gateway: dir.join("gateway"),
                replay_tool,
            };
        }
        Bins {
            engine: PathBuf::from(env!("CARGO_BIN_EXE_cnit-engine")),
            economy: PathBuf::from(env!("CARGO_BIN_EXE_cnit-economy")),
            gateway: PathBuf::from(env!("CARGO_BIN_EXE_cnit-gateway")),
            replay_tool,
        }
    })
}

/// Longest wait for a started service to report the addresses it bound.
const BIND_TIMEOUT: Duration = Duration::from_secs(30);

/// Polls `cond` every `every` until it holds or `timeout` passes; true if it held.
pub async fn wait_until<F, Fut>(timeout: Duration, every: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}

/// Which service a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Engine,
    Economy,
    Gateway,
}

/// One service process.
pub struct Service {
    pub kind: Kind,
    pub name: String,
    /// Ops address (engine, economy) or listen address (gateway).
    pub addr: SocketAddr,
    /// Where `/metrics` is served: `addr` for engine and economy, the gateway's ops port.
    pub ops_addr: SocketAddr,
    pub log: PathBuf,
    /// Where the process writes the addresses it bound (`--addr-file`).
    addr_file: PathBuf,
    bin: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    pid: u32,
}

/// Loopback, port 0: the OS picks a free port and the service reports it.
fn any_port() -> String {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).to_string()
}

impl Service {
    /// Starts a service whose address flags (`--ops-addr`, the gateway's `--listen`) say
    /// port 0 and waits until it has reported the ports it bound. Its arguments then name
    /// those ports, so a restart binds them again, as a restarted instance of a deployment
    /// binds its configured ports (clients that know the address reconnect to it).
    async fn spawn(kind: Kind, name: &str, bin: &Path, mut args: Vec<String>, dir: &Path) -> Self {
        let addr_file = dir.join(format!("{name}.addr"));
        args.extend(["--addr-file".into(), addr_file.display().to_string()]);
        let unbound = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        let mut s = Service {
            kind,
            name: name.to_string(),
            addr: unbound,
            ops_addr: unbound,
            log: dir.join(format!("{name}.log")),
            addr_file,
            bin: bin.to_path_buf(),
            args,
            child: None,
            pid: 0,
        };
        s.start();
        let bound = s.wait_bound().await;
        let address = |key: &str| {
            bound
                .get(key)
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse::<SocketAddr>().ok())
        };
        let ops = address("ops").unwrap_or_else(|| {
            panic!("{} reported no ops address: {bound}", s.name);
        });
        s.ops_addr = ops;
        s.pin("--ops-addr", ops);
        s.addr = match address("listen") {
            Some(listen) => {
                s.pin("--listen", listen);
                listen
            }
            None => ops,
        };
        s
    }

    /// Replaces the value of `flag` with `addr`.
    fn pin(&mut self, flag: &str, addr: SocketAddr) {
        if let Some(i) = self.args.iter().position(|a| a == flag) {
            self.args[i + 1] = addr.to_string();
        }
    }

    /// The addresses the process wrote to its `--addr-file` (a JSON object); panics with
    /// its log when it exits first or takes longer than [`BIND_TIMEOUT`].
    async fn wait_bound(&mut self) -> serde_json::Value {
        let deadline = Instant::now() + BIND_TIMEOUT;
        loop {
            // The file appears whole (written aside, then renamed).
            if let Ok(text) = std::fs::read_to_string(&self.addr_file) {
                match serde_json::from_str(&text) {
                    Ok(v) => return v,
                    Err(e) => panic!("{}: unreadable addr file {text:?}: {e}", self.name),
                }
            }
            if !self.is_running() {
                panic!(
                    "{} exited before reporting its addresses; log:\n{}",
                    self.name,
                    self.log_tail(30)
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not report its addresses within {BIND_TIMEOUT:?}; log:\n{}",
                    self.name,
                    self.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// (Re)starts the process with its arguments (after the first start, naming the ports
    /// it bound then); output is appended to its log.
    pub fn start(&mut self) {
        let _ = std::fs::remove_file(&self.addr_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("opening a service log");
        let err = log.try_clone().expect("cloning the log handle");
        let child = Command::new(&self.bin)
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("CNIT_SERVICE_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} ({}): {e}", self.name, self.bin.display()));
        self.pid = child.id();
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// True while the process runs (a stopped process counts as running).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn signal(&self, sig: &str) {
        if self.child.is_none() {
            return;
        }
        let ok = Command::new("kill")
            .args(["-s", sig, &self.pid.to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -s {sig} {} ({}) failed", self.pid, self.name);
    }

    /// `kill -9`: a crash, no hand-over.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: frozen, its leases go idle while it still believes it owns them.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    /// SIGTERM, then waits up to `timeout` for a clean exit; returns whether it exited
    /// with status 0 in time (it is killed otherwise).
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        if self.child.is_none() {
            return false;
        }
        self.signal("TERM");
        let deadline = Instant::now() + timeout;
        let Some(mut child) = self.child.take() else {
            return false;
        };
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }

    /// Resident set size in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// GET a path of the service's HTTP endpoint; `(status, body)`.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.addr, path).await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> Option<String> {
        match http_get(self.ops_addr, "/metrics").await {
            Some((200, body)) => Some(body),
            _ => None,
        }
    }

    /// Sum of a metric's samples whose labels contain every `label="value"` of `filter`.
    pub async fn metric(&self, name: &str, filter: &[&str]) -> f64 {
        self.metrics()
            .await
            .map(|t| metric_sum(&t, name, filter))
            .unwrap_or(0.0)
    }

    /// The last lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if self.pid != 0 && self.child.is_some() {
            // A frozen process cannot die of SIGKILL until it is continued? It can; but
            // continue it anyway so nothing lingers half-stopped.
            let _ = Command::new("kill")
                .args(["-s", "CONT", &self.pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        self.kill9();
    }
}

/// Sum of the samples of `name` in Prometheus text whose label set contains every
/// entry of `filter` (each `key="value"`).
pub fn metric_sum(text: &str, name: &str, filter: &[&str]) -> f64 {
    let mut sum = 0.0;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = if let Some(r) = rest.strip_prefix('{') {
            match r.split_once('}') {
                Some((l, v)) => (l, v),
                None => continue,
            }
        } else if rest.starts_with(' ') {
            ("", rest)
        } else {
            continue;
        };
        if filter.iter().all(|f| labels.contains(f)) {
            sum += value.trim().parse::<f64>().unwrap_or(0.0);
        }
    }
    sum
}

/// A minimal HTTP/1.1 GET with a 3 s budget.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        let text = String::from_utf8_lossy(&out).to_string();
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_string()
        };
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(3), fut)
        .await
        .ok()?
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n.min(rest.len())]);
        s = rest.get(n + 2..).unwrap_or("");
    }
    out
}

/// Settings of the service processes of a cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Lease idle timeout of engines and economies.
    pub lease_idle: Duration,
    /// Engines run ticks as fast as they can (else at the match's 20 Hz).
    pub unpaced: bool,
    pub engine_capacity: usize,
    pub economy_capacity: usize,
    /// Redis persists every write to its append-only file (`appendfsync always`), so a
    /// restart keeps everything; off: no persistence (for throughput measurements).
    pub persistent: bool,
    /// Run on a Redis Cluster (three masters, three replicas, `cluster-node-timeout`
    /// 1 s) instead of one Redis node.
    pub redis_cluster: bool,
    /// Replicas per master of that cluster: 1, or 0 for three masters alone.
    pub redis_cluster_replicas: usize,
    /// `--redis-wait-replicas` of engines and economies (0: asynchronous replication).
    pub wait_replicas: usize,
    /// Further flags for every engine (e.g. `--plain-views`).
    pub engine_args: Vec<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            lease_idle: Duration::from_millis(1000),
            unpaced: false,
            engine_capacity: 64,
            economy_capacity: 64,
            persistent: true,
            redis_cluster: false,
            redis_cluster_replicas: 1,
            wait_replicas: 0,
            engine_args: Vec::new(),
        }
    }
}

/// The Redis of a [`Cluster`]: one node or a Redis Cluster.
pub enum Store {
    Node(RedisServer),
    Cluster(RedisCluster),
}

/// Secret the gateways of a cluster share, so tokens work on every instance.
pub const TOKEN_SECRET: &str = "cluster-test-secret";

/// A Redis (append-only persistence) or a Redis Cluster, and the service processes over it.
pub struct Cluster {
    pub store: Store,
    pub url: String,
    pub keys: Keys,
    pub bus: RedisBus,
    pub config: ClusterConfig,
    pub dir: PathBuf,
    pub engines: Vec<Service>,
    pub economies: Vec<Service>,
    pub gateways: Vec<Service>,
    /// Every match created by the test, in order.
    pub matches: Vec<MatchId>,
}

impl Cluster {
    /// A persistent Redis and no services yet.
    pub async fn new(config: ClusterConfig) -> Cluster {
        let (store, url) = if config.redis_cluster {
            let options = events::testkit::RedisClusterOptions {
                appendfsync: config.persistent.then_some("always"),
                replicas: config.redis_cluster_replicas,
                ..Default::default()
            };
            let rc = RedisCluster::start_with(options).expect("a test Redis Cluster");
            let url = rc.url();
            (Store::Cluster(rc), url)
        } else {
            let redis = if config.persistent {
                RedisServer::start_persistent()
            } else {
                RedisServer::start()
            }
            .expect("a test redis-server");
            let url = redis.url();
            (Store::Node(redis), url)
        };
        let prefix = unique_prefix();
        let dir = std::env::temp_dir().join(format!("cnit-cluster-{prefix}"));
        std::fs::create_dir_all(&dir).expect("creating the log dir");
        let bus = RedisBus::connect(&url, RedisBusConfig::default())
            .await
            .expect("connecting to the test redis");
        Cluster {
            store,
            url,
            keys: Keys::new(prefix),
            bus,
            config,
            dir,
            engines: Vec::new(),
            economies: Vec::new(),
            gateways: Vec::new(),
            matches: Vec::new(),
        }
    }

    /// A started cluster: `engines` engines, `economies` economies, `gateways` gateways,
    /// each answering its health check.
    pub async fn start(
        config: ClusterConfig,
        engines: usize,
        economies: usize,
        gateways: usize,
    ) -> Cluster {
        let mut c = Cluster::new(config).await;
        for i in 0..engines {
            c.add_engine(&format!("engine-{}", (b'a' + i as u8) as char))
                .await;
        }
        for i in 0..economies {
            c.add_economy(&format!("economy-{}", (b'a' + i as u8) as char))
                .await;
        }
        for i in 0..gateways {
            c.add_gateway(&format!("gateway-{}", (b'a' + i as u8) as char))
                .await;
        }
        c.wait_healthy().await;
        c
    }

    /// The one Redis node (tests of a single node only).
    pub fn redis(&self) -> &RedisServer {
        match &self.store {
            Store::Node(r) => r,
            Store::Cluster(_) => panic!("this test needs one Redis node, not a cluster"),
        }
    }

    /// The one Redis node, to stop or restart it.
    pub fn redis_mut(&mut self) -> &mut RedisServer {
        match &mut self.store {
            Store::Node(r) => r,
            Store::Cluster(_) => panic!("this test needs one Redis node, not a cluster"),
        }
    }

    /// The Redis Cluster (tests on a cluster only).
    pub fn redis_cluster(&mut self) -> &mut RedisCluster {
        match &mut self.store {
            Store::Cluster(r) => r,
            Store::Node(_) => panic!("this test needs a Redis Cluster"),
        }
    }

    fn common_args(&self, name: &str, capacity: usize) -> Vec<String> {
        vec![
            "--redis-wait-replicas".into(),
            self.config.wait_replicas.to_string(),
            "--redis-url".into(),
            self.url.clone(),
            "--prefix".into(),
            self.keys.prefix().to_string(),
            "--capacity".into(),
            capacity.to_string(),
            "--lease-idle-ms".into(),
            self.config.lease_idle.as_millis().to_string(),
            "--consumer".into(),
            name.to_string(),
        ]
    }

    pub async fn add_engine(&mut self, name: &str) {
        let mut args = self.common_args(name, self.config.engine_capacity);
        args.extend(["--ops-addr".into(), any_port()]);
        if self.config.unpaced {
            args.push("--unpaced".into());
        }
        args.extend(self.config.engine_args.iter().cloned());
        let s = Service::spawn(Kind::Engine, name, &bins().engine, args, &self.dir).await;
        self.engines.push(s);
    }

    pub async fn add_economy(&mut self, name: &str) {
        let mut args = self.common_args(name, self.config.economy_capacity);
        args.extend(["--ops-addr".into(), any_port()]);
        let s = Service::spawn(Kind::Economy, name, &bins().economy, args, &self.dir).await;
        self.economies.push(s);
    }

    pub async fn add_gateway(&mut self, name: &str) {
        let args = vec![
            "--listen".into(),
            any_port(),
            "--ops-addr".into(),
            any_port(),
            "--redis-url".into(),
            self.url.clone(),
            "--prefix".into(),
            self.keys.prefix().to_string(),
            "--token-secret".into(),
            TOKEN_SECRET.into(),
        ];
        let s = Service::spawn(Kind::Gateway, name, &bins().gateway, args, &self.dir).await;
        self.gateways.push(s);
    }

    /// Every service process, for sampling.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.engines
            .iter()
            .chain(&self.economies)
            .chain(&self.gateways)
    }

    /// Waits (at most 30 s) until every running service answers `/health`.
    pub async fn wait_healthy(&mut self) {
        for s in self
            .engines
            .iter_mut()
            .chain(self.economies.iter_mut())
            .chain(self.gateways.iter_mut())
        {
            let addr = s.addr;
            let ok = wait_until(
                Duration::from_secs(30),
                Duration::from_millis(50),
                || async move { matches!(http_get(addr, "/health").await, Some((200, _))) },
            )
            .await;
            if !ok {
                let running = s.is_running();
                panic!(
                    "{} did not answer /health within 30 s (running: {running}); log:\n{}",
                    s.name,
                    s.log_tail(30)
                );
            }
        }
    }

    /// Appends a `MatchCreated` for an AI-vs-AI match on a `size`×`size` map.
    pub async fn create_ai_match(&mut self, name: &str, seed: u64, size: u16) -> MatchId {
        self.create_match(
            name,
            seed,
            size,
            vec![
                PlayerKind::Ai(Difficulty::Hard),
                PlayerKind::Ai(Difficulty::Normal),
            ],
        )
        .await
    }

    /// Appends a `MatchCreated` with these player kinds (ids 0..).
    pub async fn create_match(
        &mut self,
        name: &str,
        seed: u64,
        size: u16,
        kinds: Vec<PlayerKind>,
    ) -> MatchId {
        let m = MatchId::new(name).expect("a valid match id");
        let setup = match_setup(&m, seed, size, kinds);
        let env = Envelope::new(m.clone(), Source::System, MatchEvent::MatchCreated(setup));
        self.bus
            .append(
                &self.keys.matches(),
                IdSpec::Auto,
                &encode(&env).unwrap(),
                None,
            )
            .await
            .expect("appending MatchCreated");
        self.matches.push(m.clone());
        m
    }

    /// Committed ticks of a match.
    pub async fn ticks(&self, m: &MatchId) -> u64 {
        self.bus.len(&self.keys.tick(m)).await.unwrap_or(0)
    }

    /// Committed economy steps of a match.
    pub async fn bus_len_eco(&self, m: &MatchId) -> u64 {
        self.bus.len(&self.keys.eco(m)).await.unwrap_or(0)
    }

    /// Waits until every match has at least `n` ticks; panics with logs after `timeout`.
    pub async fn wait_ticks(&self, matches: &[MatchId], n: u64, timeout: Duration) {
        let ok = wait_until(timeout, Duration::from_millis(100), || async {
            for m in matches {
                if self.ticks(m).await < n {
                    return false;
                }
            }
            true
        })
        .await;
        if !ok {
            let mut counts = Vec::new();
            for m in matches {
                counts.push(format!("{m}: {}", self.ticks(m).await));
            }
            panic!(
                "not every match reached {n} ticks within {timeout:?}: {}\n{}",
                counts.join(", "),
                self.logs(20)
            );
        }
    }

    /// Waits until the economy has committed at least `n` steps of every match.
    pub async fn wait_steps(&self, matches: &[MatchId], n: u64, timeout: Duration) {
        let ok = wait_until(timeout, Duration::from_millis(100), || async {
            for m in matches {
                if self.bus.len(&self.keys.eco(m)).await.unwrap_or(0) < n {
                    return false;
                }
            }
            true
        })
        .await;
        assert!(
            ok,
            "economy steps stayed below {n} for {timeout:?}\n{}",
            self.logs(20)
        );
    }

    /// The consumer each match's lease is pending for in `group` (`engine`/`economy`).
    pub async fn owners(&self, group: &str) -> BTreeMap<MatchId, String> {
        let matches = self.match_leases().await;
        let mut out = BTreeMap::new();
        if let Ok(pending) = self.bus.pending(&self.keys.matches(), group, 100_000).await {
            for p in pending {
                if let Some(m) = matches.get(&p.id) {
                    out.insert(m.clone(), p.consumer);
                }
            }
        }
        out
    }

    /// Lease id → match, from the matches stream.
    pub async fn match_leases(&self) -> BTreeMap<StreamId, MatchId> {
        let entries = self
            .bus
            .range(&self.keys.matches(), StreamId::ZERO, StreamId::MAX, 100_000)
            .await
            .unwrap_or_default();
        entries
            .into_iter()
            .filter_map(|e| match decode::<MatchEvent>(&e.payload).ok()?.body {
                MatchEvent::MatchCreated(c) => Some((e.id, c.match_id)),
                MatchEvent::MatchEnded(_) => None,
            })
            .collect()
    }

    /// Matches that have a `MatchEnded` entry.
    pub async fn ended(&self) -> BTreeSet<MatchId> {
        let entries = self
            .bus
            .range(&self.keys.matches(), StreamId::ZERO, StreamId::MAX, 100_000)
            .await
            .unwrap_or_default();
        entries
            .into_iter()
            .filter_map(|e| match decode::<MatchEvent>(&e.payload).ok()?.body {
                MatchEvent::MatchEnded(x) => Some(x.match_id),
                MatchEvent::MatchCreated(_) => None,
            })
            .collect()
    }

    /// The last lines of every service log, for failure messages.
    pub fn logs(&self, lines: usize) -> String {
        let mut out = String::new();
        for s in self.services() {
            out.push_str(&format!("--- {} ---\n{}\n", s.name, s.log_tail(lines)));
        }
        out
    }

    /// Stops every service gracefully: economies first (so no new command appears),
    /// then, after the engines have had `drain` to apply what is left, engines and
    /// gateways. Returns the names of services that did not exit cleanly.
    pub async fn stop_all(&mut self, drain: Duration) -> Vec<String> {
        let mut unclean = Vec::new();
        for s in &mut self.economies {
            if s.is_running() && !s.terminate(Duration::from_secs(15)) {
                unclean.push(s.name.clone());
            }
        }
        tokio::time::sleep(drain).await;
        for s in self.engines.iter_mut().chain(self.gateways.iter_mut()) {
            if s.is_running() && !s.terminate(Duration::from_secs(15)) {
                unclean.push(s.name.clone());
            }
        }
        unclean
    }

    /// `replay-tool verify` of a match in this cluster's Redis.
    pub fn verify(&self, m: &MatchId) -> Verified {
        let out = Command::new(&bins().replay_tool)
            .args(["--redis-url", &self.url, "--prefix", self.keys.prefix()])
            .args(["verify", "--match", m.as_str(), "--json"])
            .stdin(Stdio::null())
            .output()
            .expect("running replay-tool verify");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let json: serde_json::Value =
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        let checked = |s: &str| json[s]["ticks_checked"].as_u64().unwrap_or(0);
        Verified {
            ok: out.status.success(),
            engine_ticks: checked("engine"),
            economy_ticks: checked("economy"),
            output: format!("{text}\n{}", String::from_utf8_lossy(&out.stderr)),
        }
    }

    /// Audits a match's log: see [`Audit`].
    pub async fn audit(&self, m: &MatchId) -> Audit {
        audit(&self.bus, &self.keys, m).await
    }

    /// Appends a command envelope to a match's cmd stream.
    pub async fn append_command(&self, env: &Envelope<events::Command>) -> StreamId {
        self.append_raw(&env.match_id, &encode(env).unwrap()).await
    }

    /// Appends raw bytes to a match's cmd stream, as a foreign producer would. Retries a
    /// transient failure (the first command on a connection Redis dropped fails once
    /// before the connection manager reconnects) for up to 10 s.
    pub async fn append_raw(&self, m: &MatchId, bytes: &[u8]) -> StreamId {
        let key = self.keys.cmd(m);
        for _ in 0..100 {
            match self.bus.append(&key, IdSpec::Auto, bytes, None).await {
                Ok(id) => return id,
                Err(e) if e.is_transient() => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => panic!("appending to {key}: {e}"),
            }
        }
        panic!("appending to {key}: Redis unavailable for 10 s");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Services go before Redis (fields drop in declaration order otherwise).
        self.engines.clear();
        self.economies.clear();
        self.gateways.clear();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("service logs kept in {}", self.dir.display());
        }
    }
}

/// The result of `replay-tool verify`.
#[derive(Debug)]
pub struct Verified {
    pub ok: bool,
    pub engine_ticks: u64,
    pub economy_ticks: u64,
    pub output: String,
}

/// A match setup: 20 Hz, players `0..` of the given kinds.
pub fn match_setup(m: &MatchId, seed: u64, size: u16, kinds: Vec<PlayerKind>) -> MatchCreated {
    MatchCreated {
        match_id: m.clone(),
        seed,
        map: MapSpec { size, seed },
        players: kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| PlayerSlot {
                id: PlayerId(i as u8),
                name: format!("p{i}"),
                kind,
            })
            .collect(),
        tick_hz: 20,
        scenario: events::Scenario::Skirmish,
    }
}

/// What a match's log says about delivery guarantees: `replay-tool audit`'s report.
pub type Audit = replay_tool::audit::AuditReport;

/// A count larger than any stream the tests write.
const READ_ALL: usize = 10_000_000;

/// Audits a match with `replay-tool audit`'s library (the DLQ as evidence).
pub async fn audit<B: Bus>(bus: &B, keys: &Keys, m: &MatchId) -> Audit {
    replay_tool::audit::audit_bus(bus, keys, m)
        .await
        .unwrap_or_else(|e| panic!("auditing {m}: {e}"))
}

/// Least-squares slope of `(seconds, KiB)` samples, in KiB per 10 minutes.
pub fn growth_kib_per_10min(samples: &[(f64, u64)]) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let n = samples.len() as f64;
    let mx = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let my = samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
    let num: f64 = samples.iter().map(|s| (s.0 - mx) * (s.1 as f64 - my)).sum();
    let den: f64 = samples.iter().map(|s| (s.0 - mx) * (s.0 - mx)).sum();
    if den == 0.0 {
        return 0.0;
    }
    num / den * 600.0
}

/// Runs the cluster tests of one test binary one at a time (they share two cores and
/// their timings are measured): hold the guard for the whole test.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    // An async lock: the guard is held across awaits for the whole test.
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Send times (ms since the epoch) of every economy step of a match, by tick.
pub async fn step_times<B: Bus>(bus: &B, keys: &Keys, m: &MatchId) -> Vec<u64> {
    bus.range(&keys.eco(m), StreamId::ZERO, StreamId::MAX, READ_ALL)
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|e| decode::<EconomyStepCommitted>(&e.payload).ok())
        .map(|env| env.sent_ms)
        .collect()
}

/// The hand-over around `at_ms` in a series of commit times: the last commit before it,
/// the first after it, and the gap between them (ms).
pub fn gap_around(times: &[u64], at_ms: u64) -> Option<(u64, u64, u64)> {
    let before = times.iter().copied().filter(|&t| t <= at_ms).max()?;
    let after = times.iter().copied().filter(|&t| t > at_ms).min()?;
    Some((before, after, after - before))
}

/// The longest gap between consecutive commits inside `[from_ms, to_ms]`.
pub fn max_gap_within(times: &[u64], from_ms: u64, to_ms: u64) -> u64 {
    let inside: Vec<u64> = times
        .iter()
        .copied()
        .filter(|&t| t >= from_ms && t <= to_ms)
        .collect();
    inside
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .max()
        .unwrap_or(0)
}

/// A command a bot of player 0 could send: an empty Stop (the engine lists it as applied
/// and rejects it, which is all the no-loss check needs).
pub fn probe_command(m: &MatchId) -> Envelope<events::Command> {
    Envelope::new(
        m.clone(),
        Source::Bot(PlayerId(0)),
        events::Command::Stop(events::cmd::Stop { units: vec![] }),
    )
}
