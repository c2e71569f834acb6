//! The gateway binary's ops endpoint: `/metrics`, `/health` and `/ready` on their own
//! port (printed; port 0 works) and not on the player port; in embedded mode one
//! `/metrics` carries the engine's and the economy's series too; every exposition passes
//! the same lint as `promtool check metrics`; an empty `REDIS_URL` means embedded mode;
//! and the first `/ready` after a Redis restart answers ready.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use events::testkit::RedisServer;
use serde_json::json;

use crate::common::http_at;

/// Metric names the dashboards and alerts query (kept as they are, even where the lint
/// would name them otherwise).
const METRICS_USED: &str = include_str!("../../../compose/metrics-used.txt");

fn kept_names() -> Vec<&'static str> {
    METRICS_USED
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// A gateway binary, killed when dropped.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    ops: SocketAddr,
    /// Everything it printed on stdout before both addresses.
    printed: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn addr_of(line: &str) -> Option<SocketAddr> {
    let url = &line[line.find("http://")? + "http://".len()..];
    url.trim_end().trim_end_matches('/').parse().ok()
}

/// Starts the binary on free ports with `args` and `REDIS_URL` as given (unset if `None`)
/// and waits for it to print both addresses.
fn start(args: &[&str], redis_url: Option<&str>) -> Gateway {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    cmd.args(["--listen", "127.0.0.1:0", "--ops-addr", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("OPS_ADDR")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    match redis_url {
        Some(u) => cmd.env("REDIS_URL", u),
        None => cmd.env_remove("REDIS_URL"),
    };
    let mut child = cmd.spawn().expect("the gateway binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let (mut addr, mut ops, mut printed) = (None, None, String::new());
    while addr.is_none() || ops.is_none() {
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("the gateway printed no addresses; it printed:\n{printed}");
            }
        };
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("ops endpoint") {
            ops = addr_of(&line);
        } else if line.contains("open http://") {
            addr = addr_of(&line);
        }
    }
    Gateway {
        child,
        addr: addr.unwrap(),
        ops: ops.unwrap(),
        printed,
    }
}

/// The value of the first sample line starting with `prefix`, if any.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn assert_lint_clean(service: &str, text: &str) {
    let problems = service::ops::lint_exposition(text, &kept_names());
    assert!(
        problems.is_empty(),
        "{service}'s /metrics fails the lint:\n{}\n\n{text}",
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_metrics_carry_every_service_on_the_ops_port() {
    let gw = start(&[], None);
    assert!(gw.printed.contains("embedded"), "{}", gw.printed);
    assert_ne!(gw.ops.port(), 0);
    let (status, body) = http_at(
        gw.addr,
        "POST",
        "/api/matches",
        Some(json!({"mode": "vs_ai", "difficulty": "easy", "map_size": 32})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let m = serde_json::from_str::<serde_json::Value>(&body).unwrap()["match"]
        .as_str()
        .unwrap()
        .to_string();
    // The match runs in the engine and the economy of this process: their series show up
    // on the gateway's one /metrics once a keyframe and some steps are in.
    let entities = format!("game_entity_count{{match=\"{m}\"}}");
    let mut text = String::new();
    for _ in 0..150 {
        let (status, body) = http_at(gw.ops, "GET", "/metrics", None).await;
        assert_eq!(status, 200);
        text = body;
        let ran = |p: &str| sample(&text, p).unwrap_or(0.0) > 0.0;
        if ran("game_frame_time_ms_count")
            && ran("economy_step_time_ms_count")
            && ran("cnit_ticks_total")
            && text.contains(&entities)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for help in [
        "# HELP game_frame_time_ms ",
        "# HELP game_entity_count ",
        "# HELP economy_step_time_ms ",
        "# HELP command_apply_latency_ms ",
        "# HELP cnit_ticks_total ",
        "# HELP cnit_stream_lag_entries ",
        "# HELP cnit_matches_owned ",
        "# HELP cnit_dlq_entries_total ",
        "# HELP gateway_matches_created_total ",
        "# HELP process_resident_memory_bytes ",
    ] {
        assert!(text.contains(help), "no {help:?} in\n{text}");
    }
    assert!(text.contains(&entities), "{text}");
    assert!(
        sample(&text, "game_frame_time_ms_count").unwrap_or(0.0) > 0.0,
        "{text}"
    );
    assert_lint_clean("embedded gateway", &text);
    // The player port serves the game, /health and /ready, but no metrics.
    assert_eq!(http_at(gw.addr, "GET", "/metrics", None).await.0, 404);
    assert_eq!(http_at(gw.addr, "GET", "/health", None).await.0, 200);
    assert_eq!(http_at(gw.addr, "GET", "/ready", None).await.0, 200);
    assert_eq!(http_at(gw.ops, "GET", "/health", None).await.0, 200);
    let (status, body) = http_at(gw.ops, "GET", "/ready", None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_redis_url_means_embedded_mode() {
    let gw = start(&[], Some(""));
    assert!(
        gw.printed.contains("embedded: gateway + engine + economy"),
        "{}",
        gw.printed
    );
    let (status, body) = http_at(gw.addr, "GET", "/ready", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"embedded\":true"), "{body}");
}

async fn restart(mut server: RedisServer) -> RedisServer {
    tokio::task::spawn_blocking(move || {
        server.restart().expect("redis-server restarts");
        server
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_redis_metrics_are_on_the_ops_port_and_ready_survives_a_restart() {
    let mut server = RedisServer::start()
        .unwrap_or_else(|e| panic!("this test needs a local redis-server: {e}"));
    let url = server.url();
    let gw = start(&["--redis-url", &url, "--prefix", "opsgw"], None);
    assert!(gw.printed.contains("against Redis"), "{}", gw.printed);
    let (status, text) = http_at(gw.ops, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(text.contains("# TYPE gateway_ws_sessions gauge"), "{text}");
    assert_lint_clean("gateway", &text);
    assert_eq!(http_at(gw.addr, "GET", "/metrics", None).await.0, 404);
    for port in [gw.addr, gw.ops] {
        let (status, body) = http_at(port, "GET", "/ready", None).await;
        assert_eq!(status, 200, "{port}: {body}");
    }
    // Redis comes back on the same port: the first probe of each port says ready.
    for port in [gw.addr, gw.ops] {
        server = restart(server).await;
        let (status, body) = http_at(port, "GET", "/ready", None).await;
        assert_eq!(
            status, 200,
            "first /ready on {port} after the restart: {body}"
        );
    }
}
