//! Command round-trip benchmark: a WebSocket client orders one of its units to move and
//! times how long until a delta shows that unit moving, embedded (gateway + engine +
//! economy in one process over the MemoryBus) and over Redis with the engine, economy and
//! gateway as separate processes. The scheduled tick wait of each command (from its entry
//! on the `cmd` stream to the engine's commit of the tick that applied it) is read back
//! from the log, so the round trip can also be reported without it.
//!
//! `cargo build --release -p engine -p economy -p gateway --example rtt && \
//!  target/release/examples/rtt [embedded|redis|both] [samples]` (`RTT_DUMP=1` prints
//! every sample). The Redis run starts its own `redis-server` on a free port and the
//! release `engine`, `economy` and `gateway` binaries next to the example (or in
//! `CNIT_BIN_DIR`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use events::{decode, Bus, Keys, MatchId, MemoryBus, RedisBus, RedisBusConfig, StreamId};
use futures::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Cells a unit is sent from where it stands (back and forth along x).
const STEP_CELLS: i64 = 4;
/// Longest wait for a command's effect before the sample counts as lost.
const EFFECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A unit counts as at rest after this many deltas without it.
const REST_DELTAS: usize = 4;

/// One command as the client saw it.
struct Sample {
    /// Command id from the `ack`.
    id: String,
    /// Send → delta showing the unit moving.
    rtt_ms: f64,
    /// Send → `ack` (the gateway appended the command to the bus).
    ack_ms: f64,
    /// Tick of the delta that showed the effect.
    seen_tick: u64,
    /// Wall clock (ms) when that delta arrived.
    seen_ms: u64,
}

#[derive(Default)]
struct Outcome {
    samples: Vec<Sample>,
    rejected: usize,
    lost: usize,
}

/// The client's view of its own units: id → (x, y, facing).
type Units = HashMap<u64, (i64, i64, i64)>;

async fn http(addr: SocketAddr, method: &str, path: &str, body: Value) -> Value {
    let mut s = TcpStream::connect(addr)
        .await
        .expect("connecting to the gateway");
    let body = body.to_string();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .await
        .expect("sending a request");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("reading a response");
    let text = String::from_utf8_lossy(&out);
    let (head, rest) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.contains(" 201 ") || head.contains(" 200 "),
        "{head}\n{rest}"
    );
    serde_json::from_str(rest).expect("a JSON body")
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("sending a frame");
}

/// The next JSON frame (answering the gateway's pings), or `None` at `deadline`.
async fn next(ws: &mut Ws, deadline: Instant) -> Option<Value> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next()).await.ok()??;
        let Ok(Message::Text(t)) = msg else {
            continue;
        };
        let v: Value = serde_json::from_str(&t).expect("JSON from the gateway");
        if v["t"] == "ping" {
            send(ws, json!({"t": "pong", "id": v["id"]})).await;
            continue;
        }
        return Some(v);
    }
}

/// Applies a keyframe's or delta's entities of player `me` to `units`; returns the ids
/// whose position or facing changed.
fn apply(units: &mut Units, me: u64, frame: &Value) -> Vec<u64> {
    let mut changed = Vec::new();
    for e in frame["entities"].as_array().into_iter().flatten() {
        if e["owner"].as_u64() != Some(me) || e["building"] != false {
            continue;
        }
        let id = e["id"].as_u64().unwrap_or(0);
        let now = (
            e["x"].as_i64().unwrap_or(0),
            e["y"].as_i64().unwrap_or(0),
            e["facing"].as_i64().unwrap_or(0),
        );
        if units.insert(id, now).is_some_and(|was| was != now) {
            changed.push(id);
        }
    }
    changed
}

/// Plays `samples` move orders on a fresh two-player match; returns what it saw and the
/// match's id.
async fn client(addr: SocketAddr, samples: usize) -> (Outcome, MatchId) {
    let created = http(
        addr,
        "POST",
        "/api/matches",
        json!({"mode": "two_players", "map_size": 64, "seed": 11}),
    )
    .await;
    let m = MatchId::new(created["match"].as_str().expect("a match id")).expect("valid id");
    let token = created["grant"]["token"].as_str().expect("a token");
    // Browsers send with TCP_NODELAY; so does this client.
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/ws"), None, true)
            .await
            .expect("opening the WebSocket");
    send(&mut ws, json!({"t": "hello", "protocol": 2})).await;
    send(
        &mut ws,
        json!({"t": "join", "token": token, "last_tick": null}),
    )
    .await;
    let mut me = 0;
    let mut size = 64i64;
    let mut units = Units::new();
    let start = Instant::now() + Duration::from_secs(30);
    while let Some(v) = next(&mut ws, start).await {
        match v["t"].as_str() {
            Some("welcome") => {
                me = v["player"].as_u64().expect("a player id");
                size = v["map"]["width"].as_i64().unwrap_or(64);
            }
            Some("keyframe") => {
                apply(&mut units, me, &v);
                break;
            }
            _ => {}
        }
    }
    assert!(
        !units.is_empty(),
        "no units of player {me} in the first keyframe"
    );
    // Settle for a second (the start units stand still from then on).
    let settle = Instant::now() + Duration::from_secs(1);
    while let Some(v) = next(&mut ws, settle).await {
        apply(&mut units, me, &v);
    }
    let mut ids: Vec<u64> = units.keys().copied().collect();
    ids.sort_unstable();
    let mut out = Outcome::default();
    let mut rng = rand::rng();
    let mut seq = 0u64;
    for i in 0..samples {
        let unit = ids[i % ids.len()];
        // A random pause (while reading frames) so commands leave at random phases of the
        // tick schedule, as a player's clicks do.
        let pause = Instant::now() + Duration::from_micros(rng.random_range(0..50_000));
        while let Some(v) = next(&mut ws, pause).await {
            apply(&mut units, me, &v);
        }
        let (x, y, _) = units[&unit];
        let (cx, cy) = (x / 1024, y / 1024);
        let dx = if (i / ids.len()).is_multiple_of(2) {
            STEP_CELLS
        } else {
            -STEP_CELLS
        };
        let tx = if (1..size - 1).contains(&(cx + dx)) {
            cx + dx
        } else {
            cx - dx
        };
        seq += 1;
        let sent = Instant::now();
        send(
            &mut ws,
            json!({"t": "cmd", "seq": seq, "cmd": {"kind": "move", "units": [unit], "to": [tx, cy]}}),
        )
        .await;
        let deadline = sent + EFFECT_TIMEOUT;
        let mut ack: Option<(String, f64)> = None;
        let mut seen: Option<(f64, u64, u64)> = None;
        while seen.is_none() {
            let Some(v) = next(&mut ws, deadline).await else {
                break;
            };
            let kind = v["t"].as_str().unwrap_or_default();
            if kind == "ack" && v["seq"] == seq {
                ack = Some((
                    v["id"].as_str().unwrap_or_default().to_string(),
                    sent.elapsed().as_secs_f64() * 1000.0,
                ));
            } else if kind == "rejected" && v["seq"] == seq {
                break;
            } else if (kind == "delta" || kind == "keyframe")
                && apply(&mut units, me, &v).contains(&unit)
            {
                seen = Some((
                    sent.elapsed().as_secs_f64() * 1000.0,
                    v["tick"].as_u64().unwrap_or(0),
                    events::now_ms(),
                ));
            }
        }
        match (ack, seen) {
            (Some((id, ack_ms)), Some((rtt_ms, seen_tick, seen_ms))) => out.samples.push(Sample {
                id,
                rtt_ms,
                ack_ms,
                seen_tick,
                seen_ms,
            }),
            (_, None) if Instant::now() < deadline => out.rejected += 1,
            _ => out.lost += 1,
        }
        // Stop the unit and wait until it stands still again.
        seq += 1;
        send(
            &mut ws,
            json!({"t": "cmd", "seq": seq, "cmd": {"kind": "stop", "units": [unit]}}),
        )
        .await;
        let mut quiet = 0;
        let rest_deadline = Instant::now() + Duration::from_secs(5);
        while quiet < REST_DELTAS {
            let Some(v) = next(&mut ws, rest_deadline).await else {
                break;
            };
            if v["t"] == "delta" {
                if apply(&mut units, me, &v).contains(&unit) {
                    quiet = 0;
                } else {
                    quiet += 1;
                }
            }
        }
    }
    let _ = ws.close(None).await;
    (out, m)
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Reads the match's `cmd` and `tick` streams and prints one result row.
async fn report<B: Bus>(bus: &B, keys: &Keys, m: &MatchId, label: &str, out: &Outcome) {
    // Command id → its arrival on the bus (the stream id's milliseconds).
    let mut arrived: HashMap<String, StreamId> = HashMap::new();
    for e in bus
        .range(&keys.cmd(m), StreamId::ZERO, StreamId::MAX, 100_000)
        .await
        .expect("reading the cmd stream")
    {
        if let Ok(env) = decode::<events::Command>(&e.payload) {
            arrived.insert(env.id.to_string(), e.id);
        }
    }
    // Command stream id → (tick that applied it, that tick's commit time).
    let mut applied: HashMap<String, (u64, u64)> = HashMap::new();
    for e in bus
        .range(&keys.tick(m), StreamId::ZERO, StreamId::MAX, 1_000_000)
        .await
        .expect("reading the tick stream")
    {
        if let Ok(env) = decode::<events::TickCommitted>(&e.payload) {
            for a in &env.body.applied {
                applied.insert(a.stream_id.clone(), (env.body.tick, env.sent_ms));
            }
        }
    }
    let (mut rtt, mut wait, mut net, mut ack) = (vec![], vec![], vec![], vec![]);
    let mut later_tick = 0;
    for s in &out.samples {
        let Some(sid) = arrived.get(&s.id) else {
            continue;
        };
        let Some(&(tick, committed_ms)) = applied.get(&sid.to_string()) else {
            continue;
        };
        // The engine stamps the tick's envelope right after stepping it (tens of
        // microseconds at this size): the tick boundary at which it read the command.
        let w = committed_ms.saturating_sub(sid.ms) as f64;
        if s.seen_tick != tick {
            later_tick += 1;
        }
        if std::env::var_os("RTT_DUMP").is_some() {
            eprintln!(
                "{label}: rtt {:.1} ms, wait {w} ms, ack {:.2} ms, applied tick {tick}, seen tick {}, commit→seen {} ms",
                s.rtt_ms, s.ack_ms, s.seen_tick, s.seen_ms as i64 - committed_ms as i64
            );
        }
        rtt.push(s.rtt_ms);
        ack.push(s.ack_ms);
        wait.push(w);
        net.push(s.rtt_ms - w);
    }
    println!(
        "| {label} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {} | {} / {} |",
        rtt.len(),
        pct(&rtt, 0.5),
        pct(&rtt, 0.99),
        pct(&wait, 0.5),
        wait.iter().sum::<f64>() / wait.len().max(1) as f64,
        pct(&net, 0.5),
        pct(&net, 0.99),
        pct(&ack, 0.5),
        pct(&ack, 0.99),
        later_tick,
        out.rejected,
        out.lost,
    );
}

fn embedded(samples: usize) {
    // The gateway binary's embedded mode: one multi-thread runtime (two workers on this
    // machine) for gateway, engine and economy; the client on its own thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("gw-worker")
        .enable_all()
        .build()
        .expect("a runtime");
    let bus = MemoryBus::new();
    let keys = Keys::new("rtt");
    let config = gateway::GatewayConfig {
        keys: keys.clone(),
        embedded: true,
        ..gateway::GatewayConfig::default()
    };
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("binding");
    let addr = listener.local_addr().expect("an address");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let engine = rt.spawn(engine::service::run(
        bus.clone(),
        keys.clone(),
        config.rules.clone(),
        engine::service::EngineConfig::default(),
        Arc::new(engine::service::Progress::default()),
        until(stopped.clone()),
    ));
    let economy = rt.spawn(economy::service::run(
        bus.clone(),
        keys.clone(),
        config.rules.clone(),
        economy::service::EconomyConfig::default(),
        Arc::new(economy::service::Progress::default()),
        until(stopped.clone()),
    ));
    let gw = rt.spawn(gateway::run(listener, bus.clone(), config, until(stopped)));
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (out, m) = client_rt.block_on(client(addr, samples));
    client_rt.block_on(report(&bus, &keys, &m, "embedded (MemoryBus)", &out));
    stop.send_replace(true);
    rt.block_on(async {
        for t in [engine, economy] {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), gw).await;
    });
}

/// A service process, killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CNIT_BIN_DIR") {
        return d.into();
    }
    // target/<profile>/examples/rtt → target/<profile>
    let exe = std::env::current_exe().expect("the bench's path");
    exe.parent()
        .and_then(|p| p.parent())
        .expect("a target directory")
        .to_path_buf()
}

fn spawn(name: &str, args: &[&str]) -> Proc {
    let path = bin_dir().join(name);
    let child = Command::new(&path)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "starting {} ({e}): build it first with cargo build --release -p {name}",
                path.display()
            )
        });
    Proc(child)
}

fn redis(samples: usize) {
    let server = events::testkit::RedisServer::start().expect("starting redis-server");
    let url = server.url();
    let prefix = "rtt";
    let common = [
        "--redis-url",
        &url,
        "--prefix",
        prefix,
        "--ops-addr",
        "127.0.0.1:0",
    ];
    let _engine = spawn("engine", &common);
    let _economy = spawn("economy", &common);
    let mut gateway = spawn(
        "gateway",
        &[
            "--listen",
            "127.0.0.1:0",
            "--ops-addr",
            "127.0.0.1:0",
            "--redis-url",
            &url,
            "--prefix",
            prefix,
        ],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let stdout = gateway.0.stdout.take().expect("the gateway's stdout");
    let addr: SocketAddr = rt.block_on(async {
        let mut lines = tokio::io::BufReader::new(
            tokio::process::ChildStdout::from_std(stdout).expect("an async stdout"),
        )
        .lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("http://").nth(1) {
                return rest.trim_end_matches('/').parse().expect("host:port");
            }
        }
        panic!("the gateway printed no URL");
    });
    let (out, m) = rt.block_on(client(addr, samples));
    let bus = rt
        .block_on(RedisBus::connect(&url, RedisBusConfig::default()))
        .expect("connecting to redis");
    rt.block_on(report(
        &bus,
        &Keys::new(prefix),
        &m,
        "Redis, separate processes",
        &out,
    ));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args
        .iter()
        .find(|a| a.parse::<usize>().is_err())
        .map_or("both", String::as_str)
        .to_string();
    let samples = args
        .iter()
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(200);
    println!(
        "| setup | samples | round trip p50 (ms) | p99 | tick wait p50 (ms) | mean | round trip − wait p50 | p99 | ack p50 | ack p99 | effect a tick later | rejected / lost |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    if mode == "embedded" || mode == "both" {
        embedded(samples);
    }
    if mode == "redis" || mode == "both" {
        redis(samples);
    }
}
