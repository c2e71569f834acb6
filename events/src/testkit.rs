//! Test helpers: a throwaway `redis-server` on a free port, a throwaway Redis Cluster
//! (three masters and three replicas, [`RedisCluster`]), a Redis URL for tests
//! (`REDIS_URL` or a server of our own), unique key prefixes and their cleanup, and
//! [`FaultyBus`], any bus with faults injected by rule (`faulty_bus.rs`).
//!
//! Tests that need Redis never skip silently: when neither `REDIS_URL` nor a local
//! `redis-server` binary works they fail, saying how to get one.

mod faulty_bus;

pub use self::faulty_bus::{unavailable, Fault, FaultyBus, Op, Rule};

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming an existing Redis to run the tests against.
pub const REDIS_URL_ENV: &str = "REDIS_URL";

/// Environment variable naming the `redis-server` binary (default: `redis-server` on the
/// `PATH`, then `/usr/bin/redis-server`).
pub const REDIS_SERVER_BIN_ENV: &str = "REDIS_SERVER_BIN";

/// How to get a Redis for the tests, appended to every "no Redis" failure.
pub const HOW_TO_GET_REDIS: &str = "install one (`apt-get install redis-server`, or set \
     REDIS_SERVER_BIN to a redis-server binary) or point REDIS_URL at a running Redis \
     (e.g. REDIS_URL=redis://127.0.0.1:6390)";

/// Longest wait for a started server to answer PING.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts at finding a free port for a fresh server (another process may grab the port
/// between our probe and the server's bind).
const PORT_ATTEMPTS: usize = 5;

/// Why a test Redis could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("cannot run redis-server ({bin}): {source}; {HOW_TO_GET_REDIS}")]
    NoBinary { bin: String, source: std::io::Error },
    #[error("redis-server on port {port} did not answer PING within {STARTUP_TIMEOUT:?}: {log}")]
    NotReady { port: u16, log: String },
    #[error("{REDIS_URL_ENV}={url} is set but does not answer PING: {why}; unset it to let the tests start their own redis-server, or {HOW_TO_GET_REDIS}")]
    UrlDown { url: String, why: String },
    #[error("test redis i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("test redis command failed: {0}")]
    Redis(String),
}

/// Options of a [`RedisServer`].
#[derive(Clone, Debug, Default)]
pub struct RedisServerOptions {
    /// Persist with an append-only file (`appendfsync always`) in the server's temp dir,
    /// so a [`RedisServer::restart`] keeps every acknowledged write. Off: no persistence
    /// at all (`--save "" --appendonly no`).
    pub appendonly: bool,
}

/// A `redis-server` child process on a free local port, killed (and its temp dir
/// removed) on drop.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    options: RedisServerOptions,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a non-persistent server.
    pub fn start() -> Result<Self, TestkitError> {
        Self::start_with(RedisServerOptions::default())
    }

    /// Starts a server with an append-only file, for restart tests.
    pub fn start_persistent() -> Result<Self, TestkitError> {
        Self::start_with(RedisServerOptions { appendonly: true })
    }

    /// Starts a server with these options on a free port.
    pub fn start_with(options: RedisServerOptions) -> Result<Self, TestkitError> {
        let dir =
            std::env::temp_dir().join(format!("cnit-redis-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut last_err = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let mut server = Self {
                port,
                dir: dir.clone(),
                options: options.clone(),
                child: None,
            };
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                Err(e @ TestkitError::NoBinary { .. }) => return Err(e),
                Err(e) => last_err = Some(e),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last_err.unwrap_or_else(|| TestkitError::NotReady {
            port: 0,
            log: "no attempt made".into(),
        }))
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// True while the child process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Kills the server (SIGKILL, like a crash) and waits for it to exit. Without
    /// `appendonly`, its data is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`RedisServer::stop`]).
    pub fn start_again(&mut self) -> Result<(), TestkitError> {
        self.stop();
        // The old socket may linger for a moment; redis-server binds with SO_REUSEADDR,
        // but retry a few times in case the port is still held.
        let mut last_err = None;
        for _ in 0..PORT_ATTEMPTS {
            match self.spawn_and_wait() {
                Ok(()) => return Ok(()),
                Err(e @ TestkitError::NoBinary { .. }) => return Err(e),
                Err(e) => {
                    last_err = Some(e);
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        Err(last_err.unwrap_or_else(|| TestkitError::NotReady {
            port: self.port,
            log: "no attempt made".into(),
        }))
    }

    /// Kills the server and starts it again on the same port.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop();
        self.start_again()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    fn spawn_and_wait(&mut self) -> Result<(), TestkitError> {
        let bin = redis_server_bin();
        let mut cmd = Command::new(&bin);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "redis.log"]);
        if self.options.appendonly {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|source| TestkitError::NoBinary { bin, source })?;
        self.child = Some(child);

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if ping(self.port) {
                return Ok(());
            }
            let exited = !self.is_running();
            if exited || Instant::now() > deadline {
                self.stop();
                return Err(TestkitError::NotReady {
                    port: self.port,
                    log: log_tail(&self.log_path()),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn redis_server_bin() -> String {
    if let Ok(bin) = std::env::var(REDIS_SERVER_BIN_ENV) {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("redis-server").is_file()))
        .unwrap_or(false);
    if on_path || !Path::new("/usr/bin/redis-server").is_file() {
        "redis-server".to_string()
    } else {
        "/usr/bin/redis-server".to_string()
    }
}

/// A port nobody listens on right now. Unlike the services (which bind port 0 and report
/// the port they got), `redis-server` cannot be asked to pick one: `--port 0` means "no
/// TCP listener" to it, and it reports no bound port. So this probes a free port by binding
/// and dropping it, and the callers retry ([`PORT_ATTEMPTS`]) when another process took it
/// in between.
fn free_port() -> Result<u16, TestkitError> {
    let l = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(l.local_addr()?.port())
}

/// True when a Redis on `127.0.0.1:port` answers `+PONG` (not `-LOADING`).
fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

fn log_tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(10);
            format!("log tail: {}", lines[from..].join(" | "))
        }
        Err(e) => format!("no log at {}: {e}", path.display()),
    }
}

/// Environment variable naming the `redis-cli` binary (default: `redis-cli` beside the
/// `redis-server` in use, then on the `PATH`).
pub const REDIS_CLI_BIN_ENV: &str = "REDIS_CLI_BIN";

/// Longest wait for a new cluster to report `cluster_state:ok` everywhere.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of a [`RedisCluster`].
#[derive(Clone, Debug)]
pub struct RedisClusterOptions {
    /// `cluster-node-timeout`: how long a master may be unreachable before its replica is
    /// promoted. Short in tests so a failover takes about a second.
    pub node_timeout: Duration,
    /// `appendonly yes` + this `appendfsync` on every node; `None`: no persistence.
    pub appendfsync: Option<&'static str>,
    /// Replicas per master: 1 (the default, what failover needs), or 0 for three masters
    /// alone (what the masters' hosts do when their replicas run elsewhere).
    pub replicas: usize,
}

impl Default for RedisClusterOptions {
    fn default() -> Self {
        Self {
            node_timeout: Duration::from_millis(1000),
            appendfsync: None,
            replicas: 1,
        }
    }
}

/// One node of a [`RedisCluster`].
pub struct ClusterNode {
    /// Client port.
    pub port: u16,
    /// Cluster bus port.
    pub bus_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl ClusterNode {
    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGKILL (a crash), and wait for the process to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }
}

/// A Redis Cluster of three masters with one replica each (or none,
/// [`RedisClusterOptions::replicas`]), on free loopback ports, made
/// by `redis-cli --cluster create`; every node is killed (and the temp dir removed) on
/// drop. Fails (never skips) when `redis-server` or `redis-cli` is missing.
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts a non-persistent cluster with a 1 s node timeout.
    pub fn start() -> Result<Self, TestkitError> {
        Self::start_with(RedisClusterOptions::default())
    }

    /// Starts the nodes, joins them (three masters, and by default three replicas) and
    /// waits for `cluster_state:ok` on every node and for the replicas' initial sync.
    pub fn start_with(options: RedisClusterOptions) -> Result<Self, TestkitError> {
        let dir =
            std::env::temp_dir().join(format!("cnit-cluster-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir)?;
        let mut cluster = Self {
            nodes: Vec::new(),
            dir,
        };
        for _ in 0..3 * (1 + options.replicas) {
            let node = cluster.spawn_node(&options)?;
            cluster.nodes.push(node);
        }
        let cli = redis_cli_bin();
        let mut create = Command::new(&cli);
        create.arg("--cluster").arg("create");
        for n in &cluster.nodes {
            create.arg(n.addr());
        }
        create
            .arg("--cluster-replicas")
            .arg(options.replicas.to_string())
            .arg("--cluster-yes");
        let out = create
            .stdin(Stdio::null())
            .output()
            .map_err(|source| TestkitError::NoBinary { bin: cli, source })?;
        if !out.status.success() {
            return Err(TestkitError::Redis(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        cluster.wait_ok(CLUSTER_TIMEOUT)?;
        if options.replicas > 0 {
            cluster.wait_replicas_online(CLUSTER_TIMEOUT)?;
        }
        Ok(cluster)
    }

    /// Waits until every master has a replica that finished its initial sync
    /// (`INFO replication` shows it `state=online`): `cluster_state:ok` comes earlier.
    pub fn wait_replicas_online(&mut self, timeout: Duration) -> Result<(), TestkitError> {
        let deadline = Instant::now() + timeout;
        loop {
            let masters = self.masters()?;
            let online = masters.iter().all(|&port| {
                matches!(
                    self.node_query(port, &redis::cmd("INFO").arg("replication").clone()),
                    Ok(redis::Value::BulkString(b))
                        if String::from_utf8_lossy(&b).contains("state=online")
                ) || matches!(
                    self.node_query(port, &redis::cmd("INFO").arg("replication").clone()),
                    Ok(redis::Value::VerbatimString { text, .. }) if text.contains("state=online")
                )
            });
            if online {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(TestkitError::Redis(format!(
                    "replicas not online within {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn spawn_node(&self, options: &RedisClusterOptions) -> Result<ClusterNode, TestkitError> {
        let mut last_err = None;
        for _ in 0..PORT_ATTEMPTS {
            let (port, bus_port) = (free_port()?, free_port()?);
            if port == bus_port {
                continue;
            }
            let dir = self.dir.join(port.to_string());
            std::fs::create_dir_all(&dir)?;
            let bin = redis_server_bin();
            let mut cmd = Command::new(&bin);
            cmd.arg("--port")
                .arg(port.to_string())
                .args(["--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .arg("--cluster-port")
                .arg(bus_port.to_string())
                .args(["--cluster-config-file", "nodes.conf"])
                .arg("--cluster-node-timeout")
                .arg(options.node_timeout.as_millis().to_string())
                .args(["--save", ""])
                .args(["--daemonize", "no"])
                .arg("--dir")
                .arg(&dir)
                .args(["--logfile", "redis.log"]);
            match options.appendfsync {
                Some(policy) => cmd.args(["--appendonly", "yes", "--appendfsync", policy]),
                None => cmd.args(["--appendonly", "no"]),
            };
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = cmd
                .spawn()
                .map_err(|source| TestkitError::NoBinary { bin, source })?;
            let mut node = ClusterNode {
                port,
                bus_port,
                dir,
                child: Some(child),
            };
            let deadline = Instant::now() + STARTUP_TIMEOUT;
            loop {
                if ping(port) {
                    return Ok(node);
                }
                if !node.is_running() || Instant::now() > deadline {
                    node.kill();
                    last_err = Some(TestkitError::NotReady {
                        port,
                        log: log_tail(&node.log_path()),
                    });
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Err(last_err.unwrap_or_else(|| TestkitError::NotReady {
            port: 0,
            log: "no attempt made".into(),
        }))
    }

    /// Seed URL of the cluster: `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...`.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self.nodes.iter().map(ClusterNode::addr).collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The nodes, in the order they were started.
    pub fn nodes(&mut self) -> &mut [ClusterNode] {
        &mut self.nodes
    }

    /// Runs a command on one node (by client port) and returns its reply.
    pub fn node_query(&self, port: u16, cmd: &redis::Cmd) -> Result<redis::Value, TestkitError> {
        let mut conn =
            sync_connection(&format!("redis://127.0.0.1:{port}")).map_err(TestkitError::Redis)?;
        cmd.query(&mut conn)
            .map_err(|e| TestkitError::Redis(format!("on port {port}: {e}")))
    }

    /// `CLUSTER INFO` field `cluster_state` of a node, if it answers.
    fn state_ok(&self, port: u16) -> bool {
        match self.node_query(port, &redis::cmd("CLUSTER").arg("INFO").clone()) {
            Ok(redis::Value::BulkString(b)) => {
                String::from_utf8_lossy(&b).contains("cluster_state:ok")
            }
            Ok(redis::Value::VerbatimString { text, .. }) => text.contains("cluster_state:ok"),
            _ => false,
        }
    }

    /// Waits until every running node reports `cluster_state:ok` and every slot is served
    /// by a running master.
    pub fn wait_ok(&mut self, timeout: Duration) -> Result<(), TestkitError> {
        let deadline = Instant::now() + timeout;
        loop {
            let running: Vec<u16> = self
                .nodes
                .iter_mut()
                .filter_map(|n| n.is_running().then_some(n.port))
                .collect();
            let all_ok = running.iter().all(|&p| self.state_ok(p));
            let served = all_ok
                && running.first().is_some_and(|&p| {
                    self.slot_owners(p).is_ok_and(|owners| {
                        owners
                            .iter()
                            .map(|(_, _, port)| *port)
                            .all(|o| running.contains(&o))
                            && owners
                                .iter()
                                .map(|(s, e, _)| u32::from(e - s) + 1)
                                .sum::<u32>()
                                == 16384
                    })
                });
            if served {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(TestkitError::Redis(format!(
                    "cluster not ok within {timeout:?}; node logs: {}",
                    self.nodes
                        .iter()
                        .map(|n| format!("[{}] {}", n.port, log_tail(&n.log_path())))
                        .collect::<Vec<_>>()
                        .join(" ")
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `(first slot, last slot, master port)` of every slot range, as node `port` sees it.
    pub fn slot_owners(&self, port: u16) -> Result<Vec<(u16, u16, u16)>, TestkitError> {
        let reply = self.node_query(port, &redis::cmd("CLUSTER").arg("SLOTS").clone())?;
        let bad = || TestkitError::Redis(format!("bad CLUSTER SLOTS reply {reply:?}"));
        let redis::Value::Array(ranges) = &reply else {
            return Err(bad());
        };
        let mut out = Vec::new();
        for r in ranges {
            let redis::Value::Array(parts) = r else {
                return Err(bad());
            };
            match parts.as_slice() {
                [redis::Value::Int(s), redis::Value::Int(e), redis::Value::Array(master), ..] => {
                    match master.as_slice() {
                        [_, redis::Value::Int(p), ..] => {
                            out.push((*s as u16, *e as u16, *p as u16))
                        }
                        _ => return Err(bad()),
                    }
                }
                _ => return Err(bad()),
            }
        }
        out.sort();
        Ok(out)
    }

    /// Client port of the master serving `key`'s slot, asked of a running node.
    pub fn master_of(&mut self, key: &str) -> Result<u16, TestkitError> {
        let slot = crate::bus::redis_cluster::key_slot(key.as_bytes());
        let asked = self
            .nodes
            .iter_mut()
            .find_map(|n| n.is_running().then_some(n.port))
            .ok_or_else(|| TestkitError::Redis("no node runs".into()))?;
        self.slot_owners(asked)?
            .into_iter()
            .find(|(s, e, _)| *s <= slot && slot <= *e)
            .map(|(_, _, p)| p)
            .ok_or_else(|| TestkitError::Redis(format!("no master serves slot {slot}")))
    }

    /// Client ports of the masters, as a running node sees them, sorted.
    pub fn masters(&mut self) -> Result<Vec<u16>, TestkitError> {
        let asked = self
            .nodes
            .iter_mut()
            .find_map(|n| n.is_running().then_some(n.port))
            .ok_or_else(|| TestkitError::Redis("no node runs".into()))?;
        let mut m: Vec<u16> = self.slot_owners(asked)?.into_iter().map(|r| r.2).collect();
        m.sort();
        m.dedup();
        Ok(m)
    }

    /// SIGKILLs the node with this client port.
    pub fn kill(&mut self, port: u16) -> Result<(), TestkitError> {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .ok_or_else(|| TestkitError::Redis(format!("no node on port {port}")))?;
        node.kill();
        Ok(())
    }

    /// Deletes every key starting with `prefix` on every running master.
    pub fn cleanup_prefix(&mut self, prefix: &str) -> Result<u64, TestkitError> {
        let pattern = format!("{}*", glob_escape(prefix));
        let mut deleted = 0;
        for port in self.masters()? {
            let mut conn = sync_connection(&format!("redis://127.0.0.1:{port}"))
                .map_err(TestkitError::Redis)?;
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query(&mut conn)
                    .map_err(|e| TestkitError::Redis(e.to_string()))?;
                // One DEL per key: a node refuses a DEL of keys in different slots.
                for key in keys {
                    deleted += redis::cmd("DEL")
                        .arg(key)
                        .query::<u64>(&mut conn)
                        .map_err(|e| TestkitError::Redis(e.to_string()))?;
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cluster for a test, failing it (with instructions) when one cannot be started.
pub fn redis_cluster_for_tests() -> RedisCluster {
    match RedisCluster::start() {
        Ok(c) => c,
        Err(e) => panic!("this test needs a Redis Cluster and none could be started: {e}"),
    }
}

fn redis_cli_bin() -> String {
    if let Ok(bin) = std::env::var(REDIS_CLI_BIN_ENV) {
        return bin;
    }
    let server = redis_server_bin();
    let beside = Path::new(&server).with_file_name("redis-cli");
    if beside.is_file() {
        return beside.to_string_lossy().into_owned();
    }
    "redis-cli".to_string()
}

/// A Redis for one test: `REDIS_URL` if set, else a [`RedisServer`] of its own that
/// lives as long as this value.
pub struct TestRedis {
    url: String,
    server: Option<RedisServer>,
}

impl TestRedis {
    /// The URL to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server started for this test, if `REDIS_URL` was not set.
    pub fn server(&mut self) -> Option<&mut RedisServer> {
        self.server.as_mut()
    }
}

/// A Redis for tests: `REDIS_URL` (which must answer), otherwise a fresh `redis-server`
/// on a free port. Keep the returned value alive while using the URL.
pub fn try_redis_url_for_tests() -> Result<TestRedis, TestkitError> {
    if let Ok(url) = std::env::var(REDIS_URL_ENV) {
        if !url.is_empty() {
            return match sync_connection(&url) {
                Ok(_) => Ok(TestRedis { url, server: None }),
                Err(why) => Err(TestkitError::UrlDown { url, why }),
            };
        }
    }
    let server = RedisServer::start()?;
    Ok(TestRedis {
        url: server.url(),
        server: Some(server),
    })
}

/// [`try_redis_url_for_tests`] that fails the test, with instructions, when there is
/// no Redis to be had.
pub fn redis_url_for_tests() -> TestRedis {
    match try_redis_url_for_tests() {
        Ok(r) => r,
        Err(e) => panic!("this test needs Redis and none is available: {e}"),
    }
}

/// A key prefix no other test (or run) uses: `t-<uuid v7, simple>`.
pub fn unique_prefix() -> String {
    format!("t-{}", uuid::Uuid::now_v7().simple())
}

fn sync_connection(url: &str) -> Result<redis::Connection, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    redis::cmd("PING")
        .query::<String>(&mut conn)
        .map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Deletes every key starting with `prefix`; returns how many were deleted.
pub fn cleanup_prefix(url: &str, prefix: &str) -> Result<u64, TestkitError> {
    let mut conn = sync_connection(url).map_err(TestkitError::Redis)?;
    let pattern = format!("{}*", glob_escape(prefix));
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)
            .map_err(|e| TestkitError::Redis(e.to_string()))?;
        if !keys.is_empty() {
            deleted += redis::cmd("DEL")
                .arg(&keys)
                .query::<u64>(&mut conn)
                .map_err(|e| TestkitError::Redis(e.to_string()))?;
        }
        cursor = next;
        if cursor == 0 {
            return Ok(deleted);
        }
    }
}

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

/// Deletes the keys of a prefix when dropped (also when the test panics), so tests
/// against a shared `REDIS_URL` leave nothing behind.
pub struct PrefixGuard {
    url: String,
    prefix: String,
}

impl PrefixGuard {
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Drop for PrefixGuard {
    fn drop(&mut self) {
        if let Err(e) = cleanup_prefix(&self.url, &self.prefix) {
            eprintln!("cleanup of test keys {}* failed: {e}", self.prefix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_unique() {
        let a = unique_prefix();
        let b = unique_prefix();
        assert_ne!(a, b);
        assert!(a.starts_with("t-"));
    }

    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
