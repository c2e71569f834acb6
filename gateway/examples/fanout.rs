//! Fan-out benchmark: one match at 20 Hz watched by N spectators. A synthetic engine
//! writes view frames (300 entities, 60 moving per tick, a keyframe every 100 ticks) to a
//! MemoryBus; the gateway runs on its own runtime (threads named `gw-*`, so its CPU can be
//! read from /proc apart from the clients'), the clients on another.
//!
//! `cargo run --release -p gateway --example fanout -- 100 500 1000`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use events::{
    encode, Bus, EntityKind, EntityView, Envelope, IdSpec, Keys, MapSpec, MatchCreated, MatchEvent,
    MatchId, MemoryBus, PlayerId, PlayerKind, PlayerSlot, Pos, Source, StreamId, UnitId, UnitKind,
    ViewFrame, ViewKind,
};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const ENTITIES: u32 = 300;
const MOVING: u32 = 60;
const MEASURE: Duration = Duration::from_secs(10);

type Sent = Arc<Mutex<HashMap<u64, Instant>>>;

fn gateway_cpu_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut total = 0;
    for t in dir.flatten() {
        let path = t.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.starts_with("gw-") {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the `(comm)`: state is field 3; utime 14, stime 15.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ut: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
            let st: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
            total += ut + st;
        }
    }
    total
}

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn entity(id: u32, t: u64) -> EntityView {
    let x = (i64::from(id) * 977 + t as i64 * 31) % (60 * 1024);
    EntityView {
        id: UnitId(id),
        owner: PlayerId((id % 2) as u8),
        kind: EntityKind::Unit(UnitKind::LightTank),
        pos: Pos::new(x as i32 + 1024, (id as i32 % 60) * 1024 + 512),
        facing: (t % 256) as u8,
        hp: 300,
        max_hp: 300,
        cargo: 0,
        visible_to: 0b11,
    }
}

async fn writer(
    bus: MemoryBus,
    keys: Keys,
    m: MatchId,
    sent: Sent,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut tick = 0u64;
    let mut iv = tokio::time::interval(Duration::from_millis(50));
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        iv.tick().await;
        let key = tick.is_multiple_of(100);
        let entities = if key {
            (0..ENTITIES).map(|id| entity(id, tick)).collect()
        } else {
            (0..MOVING)
                .map(|i| entity((i * 5 + tick as u32) % ENTITIES, tick))
                .collect()
        };
        let frame = ViewFrame {
            tick,
            kind: if key {
                ViewKind::Keyframe
            } else {
                ViewKind::Delta
            },
            entities,
            removed: vec![],
            tiberium: vec![],
            winner: None,
            attacks: Vec::new(),
            deaths: Vec::new(),
        };
        let bytes = encode(&Envelope::new(m.clone(), Source::System, frame)).unwrap();
        sent.lock().unwrap().insert(tick, Instant::now());
        bus.append(
            &keys.view(&m),
            IdSpec::Explicit(StreamId::for_tick(tick)),
            &bytes,
            Some(2000),
        )
        .await
        .unwrap();
        tick += 1;
    }
}

fn tick_of(text: &str) -> Option<u64> {
    let i = text.find("\"tick\":")? + 7;
    let rest = &text[i..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

async fn client(
    addr: SocketAddr,
    m: String,
    sent: Sent,
    lat: Arc<Mutex<Vec<f64>>>,
    from: Instant,
    until: Instant,
) {
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await else {
        return;
    };
    let _ = ws
        .send(Message::Text(r#"{"t":"hello","protocol":2}"#.into()))
        .await;
    let _ = ws
        .send(Message::Text(
            format!(r#"{{"t":"spectate","match":"{m}"}}"#).into(),
        ))
        .await;
    let mut local = Vec::new();
    while Instant::now() < until {
        let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(1), ws.next()).await
        else {
            continue;
        };
        if let Message::Text(t) = msg {
            if t.starts_with(r#"{"t":"delta""#) {
                if let Some(tick) = tick_of(&t) {
                    let at = sent.lock().unwrap().get(&tick).copied();
                    if let (Some(at), true) = (at, Instant::now() >= from) {
                        local.push(at.elapsed().as_secs_f64() * 1000.0);
                    }
                }
            } else if t.starts_with(r#"{"t":"ping""#) {
                let id = t
                    .split(':')
                    .nth(2)
                    .unwrap_or("0}")
                    .trim_end_matches('}')
                    .to_string();
                let _ = ws
                    .send(Message::Text(format!(r#"{{"t":"pong","id":{id}}}"#).into()))
                    .await;
            }
        }
    }
    lat.lock().unwrap().extend(local);
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![100, 500, 1000]
    } else {
        counts
    };
    let gw_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("gw-worker")
        .enable_all()
        .build()
        .unwrap();
    let bus = MemoryBus::new();
    let keys = Keys::new("bench");
    let listener = gw_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let config = gateway::GatewayConfig {
        keys: keys.clone(),
        ..gateway::GatewayConfig::default()
    };
    gw_rt.spawn(gateway::run(
        listener,
        bus.clone(),
        config,
        std::future::pending(),
    ));
    let clients_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("client")
        .enable_all()
        .build()
        .unwrap();
    let hz = 1.0 / 100.0; // clock ticks per second: USER_HZ is 100 on Linux
    println!("| spectators | gateway CPU (% of one core) | RSS (MiB, whole process) | delivery p50 (ms) | delivery p99 (ms) | frames measured |");
    println!("|---|---|---|---|---|---|");
    for n in counts {
        let m = MatchId::generate();
        let created = MatchCreated {
            match_id: m.clone(),
            seed: 1,
            map: MapSpec { size: 64, seed: 1 },
            players: (0..2)
                .map(|i| PlayerSlot {
                    id: PlayerId(i),
                    name: format!("ai{i}"),
                    kind: PlayerKind::Ai(events::Difficulty::Easy),
                })
                .collect(),
            tick_hz: 20,
            scenario: events::Scenario::Skirmish,
        };
        let env = Envelope::new(m.clone(), Source::System, MatchEvent::MatchCreated(created));
        clients_rt
            .block_on(bus.append(&keys.matches(), IdSpec::Auto, &encode(&env).unwrap(), None))
            .unwrap();
        let sent: Sent = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        clients_rt.spawn(writer(
            bus.clone(),
            keys.clone(),
            m.clone(),
            sent.clone(),
            stop.clone(),
        ));
        let lat: Arc<Mutex<Vec<f64>>> = Arc::default();
        let warm = Duration::from_secs(3);
        let from = Instant::now() + warm;
        let until = from + MEASURE;
        let mut handles = Vec::new();
        for _ in 0..n {
            handles.push(clients_rt.spawn(client(
                addr,
                m.to_string(),
                sent.clone(),
                lat.clone(),
                from,
                until,
            )));
        }
        std::thread::sleep(warm);
        let cpu0 = gateway_cpu_ticks();
        let t0 = Instant::now();
        std::thread::sleep(MEASURE);
        let cpu = (gateway_cpu_ticks() - cpu0) as f64 * hz / t0.elapsed().as_secs_f64() * 100.0;
        let rss = rss_mib();
        clients_rt.block_on(async {
            for h in handles {
                let _ = h.await;
            }
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut v = std::mem::take(&mut *lat.lock().unwrap());
        let (p50, p99) = (pct(&mut v, 0.5), pct(&mut v, 0.99));
        println!(
            "| {n} | {cpu:.1} | {rss:.0} | {p50:.2} | {p99:.2} | {} |",
            v.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
