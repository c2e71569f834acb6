//! The engine binary's ops endpoint against a real Redis: with a match running, its
//! `/metrics` passes the same lint as `promtool check metrics` (every series with help
//! text and a type), and an empty `REDIS_URL` is refused with a message that says so.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use events::testkit::{unique_prefix, RedisServer};
use events::{encode, Bus, Envelope, IdSpec, Keys, MatchCreated, MatchEvent, MatchId, Source};

/// Metric names the dashboards and alerts query (kept as they are).
const METRICS_USED: &str = include_str!("../../compose/metrics-used.txt");

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_metrics_lint_clean_with_a_match_running() {
    let server = RedisServer::start()
        .unwrap_or_else(|e| panic!("this test needs a local redis-server: {e}"));
    let prefix = unique_prefix();
    let keys = Keys::new(prefix.clone());
    let bus = events::RedisBus::connect(&server.url(), events::RedisBusConfig::default())
        .await
        .unwrap();
    let m = MatchId::new("ops-engine").unwrap();
    let created = MatchEvent::MatchCreated(MatchCreated::humans(m.clone(), 2, 32, 7));
    let env = Envelope::new(m.clone(), Source::System, created);
    bus.append(&keys.matches(), IdSpec::Auto, &encode(&env).unwrap(), None)
        .await
        .unwrap();
    let ops = free_addr();
    let _engine = Killed(
        Command::new(env!("CARGO_BIN_EXE_engine"))
            .args(["--redis-url", &server.url(), "--prefix", &prefix])
            .args(["--ops-addr", &ops.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("the engine binary starts"),
    );
    let mut text = String::new();
    for _ in 0..300 {
        if let Some((200, body)) = get(ops, "/metrics") {
            text = body;
            if text.contains(&format!("game_entity_count{{match=\"{m}\"}}")) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains("game_frame_time_ms_count"), "{text}");
    let kept: Vec<&str> = METRICS_USED
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    let problems = ::service::ops::lint_exposition(&text, &kept);
    assert!(problems.is_empty(), "{}\n\n{text}", problems.join("\n"));
}

#[test]
fn an_empty_redis_url_is_refused_by_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_engine"))
        .env("REDIS_URL", "")
        .args(["--ops-addr", &free_addr().to_string()])
        .output()
        .expect("the engine binary runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("REDIS_URL") && err.contains("empty"), "{err}");
}
