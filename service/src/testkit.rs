//! The ops endpoint test every leased service binary runs (feature `testkit`), against a
//! real Redis: with a match created, its `/metrics` passes the same lint as `promtool
//! check metrics` (every series with help text and a type); and an empty `REDIS_URL` is
//! refused with a message that says so. A binary's own test names the binary and what
//! its exposition shows once the match runs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use events::testkit::{unique_prefix, RedisServer};
use events::{encode, Bus, Envelope, IdSpec, Keys, MatchCreated, MatchEvent, MatchId, Source};

/// Metric names the dashboards and alerts query (kept as they are).
const METRICS_USED: &str = include_str!("../../compose/metrics-used.txt");

/// Scrapes of `/metrics` before the test gives up waiting for the match (100 ms apart).
const SCRAPES: usize = 300;

/// What the ops test of one service binary looks for.
pub struct OpsProbe {
    /// The binary (`env!("CARGO_BIN_EXE_…")`).
    pub binary: &'static str,
    /// The match it is given.
    pub match_id: &'static str,
    /// Text in `/metrics` once the binary runs the match (`{match}` stands for its id).
    pub running: &'static str,
    /// Text `/metrics` must then contain.
    pub expected: &'static [&'static str],
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `GET path` on `addr`: status and body, or `None` while nothing listens.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// Starts `probe.binary` on a fresh Redis with one match created, waits until its
/// `/metrics` shows the match running, and checks the exposition: the expected text is
/// there and the lint finds nothing. Panics otherwise (a test).
pub async fn metrics_lint_clean(probe: OpsProbe) {
    let server = RedisServer::start()
        .unwrap_or_else(|e| panic!("this test needs a local redis-server: {e}"));
    let prefix = unique_prefix();
    let keys = Keys::new(prefix.clone());
    let bus = events::RedisBus::connect(&server.url(), events::RedisBusConfig::default())
        .await
        .unwrap();
    let m = MatchId::new(probe.match_id).unwrap();
    let created = MatchEvent::MatchCreated(MatchCreated::humans(m.clone(), 2, 32, 7));
    let env = Envelope::new(m.clone(), Source::System, created);
    bus.append(&keys.matches(), IdSpec::Auto, &encode(&env).unwrap(), None)
        .await
        .unwrap();
    let ops = free_addr();
    let _service = Killed(
        Command::new(probe.binary)
            .args(["--redis-url", &server.url(), "--prefix", &prefix])
            .args(["--ops-addr", &ops.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", probe.binary)),
    );
    let running = probe.running.replace("{match}", m.as_str());
    let mut text = String::new();
    for _ in 0..SCRAPES {
        if let Some((200, body)) = get(ops, "/metrics") {
            text = body;
            if text.contains(&running) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains(&running), "the match runs: {text}");
    for expected in probe.expected {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    let kept: Vec<&str> = METRICS_USED
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    let problems = crate::ops::lint_exposition(&text, &kept);
    assert!(problems.is_empty(), "{}\n\n{text}", problems.join("\n"));
}

/// Runs `binary` with `REDIS_URL` set but empty: it fails, naming the variable and why.
pub fn empty_redis_url_is_refused(binary: &str) {
    let out = Command::new(binary)
        .env("REDIS_URL", "")
        .args(["--ops-addr", &free_addr().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("{binary} runs: {e}"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("REDIS_URL") && err.contains("empty"), "{err}");
}
