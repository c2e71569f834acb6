//! Load and soak.
//!
//! - Gateway load: browser-protocol clients (one player and many spectators per match)
//!   spread over two gateways, every client checked for every tick exactly once; gateway
//!   CPU, RSS and view lag reported. CI: 2 matches × 20 clients; `CNIT_LONG=1`: 8 × 50.
//! - Engine capacity at 1,000 units per match (ignored in CI; run in release): matches
//!   stepped round-robin on one thread, each with the service's per-tick encoding work,
//!   ramped until a round of ticks breaks the 20 Hz budget (50 ms).
//! - Engine service capacity at 1,000 units per match (ignored in CI; release binaries):
//!   one real engine process per step, *k* matches restored from a 1,000-unit battle
//!   snapshot, 10 s of real-time play measured; ramped (1, 8, 16, then 16 apart up to 128)
//!   until a match falls under 19 ticks/s, then halved to within 4 matches; once per Redis persistence mode in `CNIT_CAPACITY_MODES` (default
//!   `off,everysec,always`) and per Redis topology in `CNIT_CAPACITY_TOPOLOGY` (default
//!   `node,cluster`: one Redis node, then a Redis Cluster of three masters + three
//!   replicas with the mode's `appendfsync` on every node; `masters`: the three masters
//!   alone, as their hosts see it when the replicas run elsewhere), and per view frame encoding
//!   in `CNIT_CAPACITY_VIEWS` (default `zstd`, the engine's; `zstd,plain` adds the engine
//!   with `--plain-views`); `CNIT_CAPACITY_REDIS_CONFIG` ("name value;name value") sets
//!   more Redis settings on every node; `CNIT_CAPACITY_STEPS` ("64" or "32,64") measures
//!   those numbers of matches instead of the ladder, `CNIT_CAPACITY_WINDOW_SECS` (10) sets
//!   the measured window. Redis CPU is its processes' own, with what their
//!   AOF-rewrite children used (and how many rewrites) beside it.
//! - View frame bytes at 1,000 units (ignored in CI; run in release): the tick entry and
//!   view delta the engine writes per tick, and their size and cost under zstd.
//! - Soak (ignored in CI): engines unpaced, AI-vs-AI matches replaced as they end, until
//!   every match slot has played `CNIT_SOAK_SIM_MINUTES` (30) simulated minutes and at
//!   least `CNIT_SOAK_MIN_SECS` (300) seconds have passed; RSS of every service process
//!   sampled from `/proc` every 2 s, growth (least squares over the last two thirds)
//!   reported per 10 simulated minutes per match slot, and per 10 wall minutes.
//!
//! ```text
//! cargo test --release -p system-tests --test cluster_load -- --ignored --nocapture engine_capacity
//! cargo test --release -p system-tests --test cluster_load -- --ignored --nocapture engine_service_capacity
//! cargo test --release -p system-tests --test cluster_load -- --ignored --nocapture soak
//! ```

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/ws.rs"]
mod ws;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::{ci_or_long, growth_kib_per_10min, serial, Cluster, ClusterConfig, TOKEN_SECRET};
use engine::{Input, Rules, Sim};
use events::{
    encode, Cell, Command, Difficulty, Envelope, MatchId, PlayerId, PlayerKind, Source, UnitKind,
};
use gateway::token::TokenSigner;

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|r| r.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_load_many_clients_get_every_tick_once() {
    let _serial = serial().await;
    let n: usize = ci_or_long(2, 8);
    let per_match: usize = ci_or_long(20, 50);
    let seconds: u64 = ci_or_long(8, 30);
    let mut c = Cluster::start(ClusterConfig::default(), 2, 2, 2).await;
    for i in 0..n {
        c.create_match(
            &format!("load-{i}"),
            800 + i as u64,
            32,
            vec![PlayerKind::Human, PlayerKind::Ai(Difficulty::Normal)],
        )
        .await;
    }
    let matches = c.matches.clone();
    c.wait_ticks(&matches, 20, Duration::from_secs(60)).await;
    let addrs = vec![c.gateways[0].addr, c.gateways[1].addr];
    let signer = TokenSigner::new(TOKEN_SECRET.as_bytes().to_vec(), Duration::from_secs(3600));
    let mut start = 0;
    for m in &matches {
        start = start.max(c.ticks(m).await);
    }
    let until = start + 20 * seconds;
    let deadline = Instant::now() + Duration::from_secs(seconds * 3 + 60);
    let cpu0: Vec<f64> = c.gateways.iter().map(|g| cpu_seconds(g.pid())).collect();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (i, m) in matches.iter().enumerate() {
        for k in 0..per_match {
            let role = if k == 0 {
                ws::Role::Player {
                    token: signer.issue(m, PlayerId(0)).0,
                }
            } else {
                ws::Role::Spectator {
                    match_id: m.to_string(),
                }
            };
            let o = ws::ViewOptions {
                until,
                deadline,
                command_every: (k == 0).then_some(Duration::from_millis(500)),
            };
            tasks.push(tokio::spawn(ws::view_with(role, addrs.clone(), i + k, o)));
        }
    }
    let mut frames = 0usize;
    let mut clients = 0usize;
    let mut short = 0usize;
    for t in tasks {
        let r = t.await.expect("client task");
        clients += 1;
        let (dups, gaps) = r.violations();
        assert!(
            dups.is_empty() && gaps.is_empty(),
            "client: {dups:?} {gaps:?} {:?}",
            r.drops
        );
        assert_eq!(r.reconnects, 0, "a client lost its socket: {:?}", r.drops);
        if r.last() < Some(until) {
            short += 1;
        }
        frames += r.ticks.len();
    }
    assert_eq!(short, 0, "{short} clients did not reach tick {until}");
    let wall = t0.elapsed().as_secs_f64();
    let mut gw = Vec::new();
    for (i, g) in c.gateways.iter().enumerate() {
        let cpu = (cpu_seconds(g.pid()) - cpu0[i]) / wall * 100.0;
        let m = g.metrics().await.unwrap_or_default();
        let lag_sum = cluster::metric_sum(&m, "gateway_view_lag_ms_sum", &[]);
        let lag_n = cluster::metric_sum(&m, "gateway_view_lag_ms_count", &[]);
        let dropped = cluster::metric_sum(&m, "gateway_slow_clients_dropped_total", &[]);
        gw.push(format!(
            "{}: {:.0}% of a core, RSS {} KiB, mean view lag {:.1} ms, slow drops {dropped}",
            g.name,
            cpu,
            g.rss_kib().unwrap_or(0),
            lag_sum / lag_n.max(1.0)
        ));
    }
    let unclean = c.stop_all(Duration::from_millis(500)).await;
    assert!(unclean.is_empty(), "unclean stop: {unclean:?}");
    for m in &matches {
        assert!(c.audit(m).await.clean(), "{m}");
    }
    eprintln!(
        "FIGURES gateway load: {clients} clients ({per_match} per match, {n} matches, 2 gateways) for \
         {wall:.1} s: {frames} frames, every client every tick exactly once, no reconnect; {}",
        gw.join("; ")
    );
}

/// A 1,000-unit battle on a generated 128×128 map: 500 units per side placed around
/// each start, every unit ordered to attack-move to the enemy start in groups of 40.
fn battle(rules: &Arc<Rules>, units: usize) -> Sim {
    let m = MatchId::new("capacity").unwrap();
    let setup = cluster::match_setup(&m, 9, 128, vec![PlayerKind::Human, PlayerKind::Human]);
    let mut sim = Sim::new(rules.clone(), &setup).expect("setup");
    sim.step(&[]);
    let starts = sim.map().starts.clone();
    let kinds = [
        UnitKind::Rifleman,
        UnitKind::LightTank,
        UnitKind::RocketSoldier,
        UnitKind::MediumTank,
    ];
    let mut ids: Vec<Vec<events::UnitId>> = vec![Vec::new(), Vec::new()];
    let mut used = std::collections::BTreeSet::new();
    for (p, start) in starts.iter().enumerate().take(2) {
        let st = sim.state_mut();
        let mut placed = 0;
        'rings: for r in 4i32..64 {
            for dy in -r..=r {
                for dx in -r..=r {
                    if dx.abs() != r && dy.abs() != r {
                        continue;
                    }
                    let (x, y) = (i32::from(start.x) + dx, i32::from(start.y) + dy);
                    if x < 0 || y < 0 {
                        continue;
                    }
                    let cell = Cell::new(x as u16, y as u16);
                    if !st.is_free(cell) || !used.insert(cell) {
                        continue;
                    }
                    let kind = kinds[placed % kinds.len()];
                    let id = engine::systems::spawn_unit(st, PlayerId(p as u8), kind, cell);
                    ids[p].push(id);
                    placed += 1;
                    if placed == units / 2 {
                        break 'rings;
                    }
                }
            }
        }
    }
    let mut orders = Vec::new();
    for p in 0..2 {
        let target = starts[1 - p];
        for group in ids[p].chunks(40) {
            orders.push(Input {
                stream_id: format!("{}-0", orders.len() + 1),
                envelope: Envelope::new(
                    m.clone(),
                    Source::Player(PlayerId(p as u8)),
                    Command::AttackMove(events::cmd::AttackMove {
                        units: group.to_vec(),
                        to: target,
                    }),
                ),
            });
        }
    }
    sim.step(&orders);
    for _ in 0..20 {
        sim.step(&[]);
    }
    sim
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[test]
#[ignore = "a benchmark: run in release (see the file's doc)"]
fn engine_capacity_at_1000_units() {
    let rules = Arc::new(Rules::standard());
    let sim = battle(&rules, 1_000);
    let entities = sim.entity_count();
    let snap = sim.snapshot();
    let m = MatchId::new("capacity").unwrap();
    const TICKS: usize = 100;
    const BUDGET_MS: f64 = 50.0;
    let mut capacity = 0;
    let mut rows = Vec::new();
    for k in [
        1usize, 2, 4, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 160, 192, 256,
    ] {
        let mut sims: Vec<Sim> = (0..k)
            .map(|_| Sim::restore(rules.clone(), &snap).expect("restore"))
            .collect();
        let mut rounds = Vec::with_capacity(TICKS);
        let mut bytes = 0usize;
        for t in 0..TICKS {
            let started = Instant::now();
            for s in sims.iter_mut() {
                // What the engine service does per tick besides the I/O: step, encode the
                // tick entry, encode the view frame (a keyframe every 100 ticks).
                let out = s.step(&[]);
                let tick =
                    encode(&Envelope::new(m.clone(), Source::System, out.committed)).unwrap();
                let frame = if t % 100 == 0 { s.keyframe() } else { out.view };
                let view = encode(&Envelope::new(m.clone(), Source::System, frame)).unwrap();
                bytes += tick.len() + view.len();
            }
            rounds.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        rounds.sort_by(f64::total_cmp);
        let (p50, p99) = (pct(&rounds, 0.5), pct(&rounds, 0.99));
        let per_match = rounds.iter().sum::<f64>() / (TICKS * k) as f64;
        rows.push(format!(
            "{k:>4} matches: round p50 {p50:>7.2} ms, p99 {p99:>7.2} ms, {per_match:.3} ms per match-tick, \
             {:.0} KB written per round",
            bytes as f64 / TICKS as f64 / 1000.0
        ));
        eprintln!("{}", rows.last().unwrap());
        if p99 > BUDGET_MS {
            break;
        }
        capacity = k;
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    eprintln!(
        "FIGURES engine capacity: {entities} entities per match (1,000 units + yards), 128×128: \
         {capacity} matches per core keep the p99 round of ticks under {BUDGET_MS} ms; an engine \
         instance spreads match tasks over its {cores} worker threads: ~{} matches per {cores}-core \
         instance before Redis I/O",
        capacity * cores
    );
    assert!(
        capacity >= 1,
        "one 1,000-unit match does not fit the 20 Hz budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak: minutes long (see the file's doc)"]
async fn soak_memory_growth() {
    let _serial = serial().await;
    let slots: usize = std::env::var("CNIT_SOAK_MATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let sim_minutes: u64 = std::env::var("CNIT_SOAK_SIM_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let min_wall = Duration::from_secs(
        std::env::var("CNIT_SOAK_MIN_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300),
    );
    let max_wall = Duration::from_secs(
        std::env::var("CNIT_SOAK_MAX_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1800),
    );
    let config = ClusterConfig {
        unpaced: true,
        persistent: false,
        ..ClusterConfig::default()
    };
    let mut c = Cluster::start(config, 2, 2, 1).await;
    let target_ticks = sim_minutes * 60 * 20;
    // Ticks of the ended matches of each slot, and the slot's live match.
    let mut done = vec![0u64; slots];
    let mut live: Vec<MatchId> = Vec::new();
    let mut created = 0usize;
    for s in 0..slots {
        live.push(
            c.create_ai_match(&format!("soak-{created}"), 900 + s as u64, 48)
                .await,
        );
        created += 1;
    }
    let gw = c.gateways[0].addr;
    let mut samples: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
    let mut sim_samples: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
    let t0 = Instant::now();
    let mut last_sample = Instant::now() - Duration::from_secs(10);
    let mut spectators = Vec::new();
    let mut played = vec![0u64; slots];
    // (seconds, entities in all live matches), from the engines' `game_entity_count`.
    let mut entities: Vec<(f64, f64)> = Vec::new();
    loop {
        let ended = c.ended().await;
        for (slot, m) in live.iter_mut().enumerate() {
            let ticks = c.ticks(m).await;
            played[slot] = done[slot] + ticks;
            if ended.contains(m) {
                done[slot] += ticks;
                let name = format!("soak-{created}");
                created += 1;
                *m = c.create_ai_match(&name, 900 + created as u64, 48).await;
                // A spectator follows the new match through the gateway for a while.
                spectators.push(tokio::spawn(ws::view(
                    ws::Role::Spectator {
                        match_id: m.to_string(),
                    },
                    vec![gw],
                    0,
                    u64::MAX,
                    Instant::now() + Duration::from_secs(20),
                )));
            }
        }
        let enough = played.iter().all(|&p| p >= target_ticks) && t0.elapsed() >= min_wall;
        if enough || t0.elapsed() >= max_wall {
            break;
        }
        if last_sample.elapsed() >= Duration::from_secs(2) {
            last_sample = Instant::now();
            if samples.values().next().is_some_and(|v| v.len() % 30 == 0) {
                eprintln!(
                    "soak: {:.0} s, {:.1} simulated minutes per slot, {created} matches",
                    t0.elapsed().as_secs_f64(),
                    played.iter().sum::<u64>() as f64 / slots as f64 / 1200.0
                );
            }
            // Only the live matches: an ended match's gauge keeps its last value.
            let mut n = 0.0;
            for e in &c.engines {
                let text = e.metrics().await.unwrap_or_default();
                for m in &live {
                    let label = format!("match=\"{m}\"");
                    n += cluster::metric_sum(&text, "game_entity_count", &[&label]);
                }
            }
            entities.push((t0.elapsed().as_secs_f64(), n));
            // Simulated seconds per slot so far.
            let sim_s = played.iter().sum::<u64>() as f64 / 20.0 / slots as f64;
            for s in c.services() {
                if let Some(kib) = s.rss_kib() {
                    samples
                        .entry(s.name.clone())
                        .or_default()
                        .push((t0.elapsed().as_secs_f64(), kib));
                    sim_samples
                        .entry(s.name.clone())
                        .or_default()
                        .push((sim_s, kib));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    for s in c
        .engines
        .iter_mut()
        .chain(c.economies.iter_mut())
        .chain(c.gateways.iter_mut())
    {
        assert!(
            s.is_running(),
            "{} died during the soak\n{}",
            s.name,
            s.log_tail(30)
        );
    }
    let unclean = c.stop_all(Duration::from_millis(500)).await;
    for s in spectators {
        s.abort();
    }
    let mut report = Vec::new();
    // The leak rate that matters is per simulated minute: a service running its matches
    // at real time for 10 minutes does the work of 10 simulated minutes per match slot.
    // Per wall minute at full speed (tens of times real time) is printed for reference.
    let mut worst = 0.0f64;
    for (name, v) in &samples {
        // The first third is warm-up (allocator arenas, caches, the first matches).
        let steady = &v[v.len() / 3..];
        let per_wall = growth_kib_per_10min(steady);
        let sim = &sim_samples[name];
        let per_sim = growth_kib_per_10min(&sim[sim.len() / 3..]);
        worst = worst.max(per_sim);
        report.push(format!(
            "{name}: RSS {} -> {} KiB, growth {per_wall:+.0} KiB per 10 wall-minutes, {per_sim:+.0} KiB \
             per 10 simulated minutes",
            v.first().map(|s| s.1).unwrap_or(0),
            v.last().map(|s| s.1).unwrap_or(0)
        ));
    }
    let total: u64 = played.iter().sum();
    let steady_from = entities.len() / 3;
    report.push(format!(
        "entities in the live matches (all engines): {:.0} at start, {:.0} when the steady window \
         starts, {:.0} at the end",
        entities.first().map(|e| e.1).unwrap_or(0.0),
        entities.get(steady_from).map(|e| e.1).unwrap_or(0.0),
        entities.last().map(|e| e.1).unwrap_or(0.0)
    ));
    eprintln!(
        "FIGURES soak: {slots} match slots, {created} matches, {:.1} simulated minutes per slot \
         ({total} ticks) in {wall:.0} s wall; unclean stops {unclean:?}\n  {}",
        total as f64 / slots as f64 / 20.0 / 60.0,
        report.join("\n  ")
    );
    assert!(unclean.is_empty(), "unclean stop: {unclean:?}");
    assert!(
        worst < 1024.0,
        "a service grew faster than 1 MB per 10 simulated minutes: {report:?}"
    );
}

/// What one Redis process reports: memory of its data, and CPU seconds of the process and
/// of its children (the forks that rewrite the append-only file), and how many AOF
/// rewrites it ran.
#[derive(Clone, Copy, Default)]
struct RedisInfo {
    mem: u64,
    cpu: f64,
    child_cpu: f64,
    rewrites: u64,
}

impl std::ops::Add for RedisInfo {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            mem: self.mem + o.mem,
            cpu: self.cpu + o.cpu,
            child_cpu: self.child_cpu + o.child_cpu,
            rewrites: self.rewrites + o.rewrites,
        }
    }
}

fn redis_info(port: u16) -> RedisInfo {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "INFO"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let secs = |name: &str| field(name).parse::<f64>().unwrap_or(0.0);
    RedisInfo {
        mem: field("used_memory").parse().unwrap_or(0),
        cpu: secs("used_cpu_user") + secs("used_cpu_sys"),
        child_cpu: secs("used_cpu_user_children") + secs("used_cpu_sys_children"),
        rewrites: field("aof_rewrites").parse().unwrap_or(0),
    }
}

/// What the engine service writes to the view stream per tick of a 1,000-unit battle, and
/// what zstd would make of it: the bytes Redis must fsync per tick with `appendfsync always`
/// (docs/benchmarks.md, "Engine service capacity and Redis persistence").
#[test]
#[ignore = "a measurement: run in release (see the file's doc)"]
fn view_frame_bytes_at_1000_units() {
    let rules = Arc::new(Rules::standard());
    let mut sim = battle(&rules, 1_000);
    let m = MatchId::new("frames").unwrap();
    const TICKS: u64 = 200;
    let (mut tick_bytes, mut raw, mut z1, mut z3) = (0usize, Vec::new(), 0usize, 0usize);
    let (mut t1, mut t3) = (Duration::ZERO, Duration::ZERO);
    let mut keyframe = 0usize;
    for t in 0..TICKS {
        let out = sim.step(&[]);
        tick_bytes += encode(&Envelope::new(m.clone(), Source::System, out.committed))
            .unwrap()
            .len();
        let view = encode(&Envelope::new(m.clone(), Source::System, out.view)).unwrap();
        if t == 0 {
            keyframe = encode(&Envelope::new(m.clone(), Source::System, sim.keyframe()))
                .unwrap()
                .len();
        }
        let started = Instant::now();
        z1 += zstd::bulk::compress(&view, 1).unwrap().len();
        t1 += started.elapsed();
        let started = Instant::now();
        z3 += zstd::bulk::compress(&view, 3).unwrap().len();
        t3 += started.elapsed();
        raw.push(view.len());
    }
    let n = TICKS as f64;
    let mean = raw.iter().sum::<usize>() as f64 / n;
    raw.sort_unstable();
    eprintln!(
        "FIGURES view frames, 1,000-unit battle, {TICKS} ticks: tick entry {:.0} B mean; view delta \
         {:.1} KB mean (p50 {:.1}, max {:.1}), keyframe {:.1} KB; zstd level 1 {:.1} KB mean \
         ({:.1}×, {:.0} µs per frame), level 3 {:.1} KB ({:.1}×, {:.0} µs)",
        tick_bytes as f64 / n,
        mean / 1000.0,
        raw[raw.len() / 2] as f64 / 1000.0,
        raw[raw.len() - 1] as f64 / 1000.0,
        keyframe as f64 / 1000.0,
        z1 as f64 / n / 1000.0,
        mean / (z1 as f64 / n),
        t1.as_secs_f64() * 1e6 / n,
        z3 as f64 / n / 1000.0,
        mean / (z3 as f64 / n),
        t3.as_secs_f64() * 1e6 / n,
    );
}

/// [`redis_info`] summed over several Redis processes.
fn redis_info_all(ports: &[u16]) -> RedisInfo {
    ports
        .iter()
        .map(|&p| redis_info(p))
        .fold(RedisInfo::default(), |a, b| a + b)
}

/// `CONFIG SET` of one setting ("name value") on every Redis process of `ports`.
fn config_set_all(ports: &[u16], setting: &str) {
    for port in ports {
        let set = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "CONFIG", "SET"])
            .args(setting.split_whitespace())
            .output()
            .expect("redis-cli");
        let out = String::from_utf8_lossy(&set.stdout);
        assert!(
            out.contains("OK"),
            "CONFIG SET {setting} on port {port}: {out}"
        );
    }
}

/// The client ports of every Redis process of `c`, and of its masters.
fn redis_ports(c: &mut Cluster) -> (Vec<u16>, Vec<u16>) {
    match &mut c.store {
        cluster::Store::Node(r) => (vec![r.port()], vec![r.port()]),
        cluster::Store::Cluster(rc) => {
            let all = rc.nodes().iter().map(|n| n.port).collect();
            (all, rc.masters().expect("the cluster's masters"))
        }
    }
}

/// Coarse steps of the capacity ladder: until a step fails, the next of these above the
/// most held; then halving between the most held and the fewest failed, to within
/// [`CAPACITY_RESOLUTION`] matches.
const CAPACITY_LADDER: [usize; 10] = [1, 8, 16, 32, 48, 64, 80, 96, 112, 128];
const CAPACITY_RESOLUTION: usize = 4;

/// The next number of matches to try, given the most held and the fewest failed so far;
/// `None` when the capacity is known to within [`CAPACITY_RESOLUTION`] or the ladder ends.
fn next_step(held: usize, failed: Option<usize>) -> Option<usize> {
    match failed {
        None => CAPACITY_LADDER.iter().copied().find(|&k| k > held),
        Some(f) if f <= held + CAPACITY_RESOLUTION => None,
        Some(f) => Some((held + f) / 2),
    }
}

#[test]
fn the_capacity_ladder_climbs_then_halves() {
    // Held up to 64, failed at 80: 72 held, 76 failed; known to within 4.
    assert_eq!(next_step(0, None), Some(1));
    assert_eq!(next_step(64, None), Some(80));
    assert_eq!(next_step(64, Some(80)), Some(72));
    assert_eq!(next_step(72, Some(80)), Some(76));
    assert_eq!(next_step(72, Some(76)), None);
    // Failed at once, or held at the top.
    assert_eq!(next_step(0, Some(1)), None);
    assert_eq!(next_step(128, None), None);
    // Held 8, failed 16: 12, then done.
    assert_eq!(next_step(8, Some(16)), Some(12));
    assert_eq!(next_step(12, Some(16)), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run with release binaries (see the file's doc)"]
async fn engine_service_capacity_at_1000_units() {
    let _serial = serial().await;
    let rules = Arc::new(Rules::standard());
    let sim = battle(&rules, 1_000);
    let snapshot = events::Snapshot {
        owner: events::SnapshotOwner::Engine,
        tick: sim.next_tick() - 1,
        hash: sim.hash(),
        log_id: events::StreamId::for_tick(sim.next_tick() - 1).to_string(),
        state: sim.snapshot(),
    };
    // The measured window per step (`CNIT_CAPACITY_WINDOW_SECS`, default 10).
    let window = Duration::from_secs(
        std::env::var("CNIT_CAPACITY_WINDOW_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    );
    // Fixed numbers of matches to measure instead of the ladder (`CNIT_CAPACITY_STEPS`,
    // e.g. "64"): a long window at one load shows what happens only now and then.
    let fixed_steps: Vec<usize> = std::env::var("CNIT_CAPACITY_STEPS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut summary = Vec::new();
    // Redis persistence modes measured, in order (`CNIT_CAPACITY_MODES`, e.g. "always").
    let modes =
        std::env::var("CNIT_CAPACITY_MODES").unwrap_or_else(|_| "off,everysec,always".into());
    // Redis topologies measured, in order (`CNIT_CAPACITY_TOPOLOGY`, e.g. "cluster").
    let topologies =
        std::env::var("CNIT_CAPACITY_TOPOLOGY").unwrap_or_else(|_| "node,cluster".into());
    // View frame encodings measured, in order (`CNIT_CAPACITY_VIEWS`: "zstd", the
    // engine's default, and/or "plain", its `--plain-views`).
    let views = std::env::var("CNIT_CAPACITY_VIEWS").unwrap_or_else(|_| "zstd".into());
    let extra_config = std::env::var("CNIT_CAPACITY_REDIS_CONFIG").unwrap_or_default();
    let mut plan = Vec::new();
    for topology in topologies.split(',').map(str::trim) {
        // `None`: one node; else a cluster of three masters with this many replicas each.
        let cluster_replicas = match topology {
            "node" => None,
            "cluster" => Some(1),
            "masters" => Some(0),
            other => panic!("CNIT_CAPACITY_TOPOLOGY: unknown {other:?} (node, cluster, masters)"),
        };
        for view in views.split(',').map(str::trim) {
            let plain = match view {
                "zstd" => false,
                "plain" => true,
                other => panic!("CNIT_CAPACITY_VIEWS: unknown {other:?} (zstd, plain)"),
            };
            for mode in modes.split(',').map(str::trim) {
                plan.push((cluster_replicas, plain, mode));
            }
        }
    }
    for (cluster_replicas, plain_views, mode) in plan {
        let persistent = match mode {
            "off" => false,
            "everysec" | "always" => true,
            other => panic!("CNIT_CAPACITY_MODES: unknown mode {other:?} (off, everysec, always)"),
        };
        let mut rows = Vec::new();
        // The most matches held so far, and the fewest that failed.
        let (mut held, mut failed) = (0, None);
        let mut fixed = fixed_steps.iter().copied();
        let mut next = if fixed_steps.is_empty() {
            Some(1)
        } else {
            fixed.next()
        };
        while let Some(k) = next {
            // A fresh Redis and engine per step; the matches start from a snapshot of the
            // battle (the engine's recovery restores it), so each runs 1,000 units at once.
            let config = ClusterConfig {
                engine_capacity: 256,
                persistent,
                redis_cluster: cluster_replicas.is_some(),
                redis_cluster_replicas: cluster_replicas.unwrap_or(1),
                engine_args: if plain_views {
                    vec!["--plain-views".into()]
                } else {
                    Vec::new()
                },
                ..ClusterConfig::default()
            };
            let mut c = Cluster::new(config).await;
            // Every Redis process (one node, or the six of the cluster) and its masters.
            let (ports, masters) = redis_ports(&mut c);
            if persistent {
                // The harness's persistent Redis fsyncs every write; set the mode measured
                // on every node (a cluster's replicas write their own AOF too).
                config_set_all(&ports, &format!("appendfsync {mode}"));
            }
            // Further settings for every node (`CNIT_CAPACITY_REDIS_CONFIG`, e.g.
            // "auto-aof-rewrite-percentage 0;appendfsync no"), to find what a limit is.
            for setting in extra_config
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                config_set_all(&ports, setting);
            }
            c.add_engine("engine-a").await;
            c.wait_healthy().await;
            let mut ms = Vec::new();
            for i in 0..k {
                let m = MatchId::new(format!("cap-{i}")).unwrap();
                let env = Envelope::new(m.clone(), Source::System, snapshot.clone());
                events::Bus::append(
                    &c.bus,
                    &c.keys.snap(&m),
                    events::IdSpec::Auto,
                    &encode(&env).unwrap(),
                    None,
                )
                .await
                .unwrap();
                ms.push(
                    c.create_match(
                        m.as_str(),
                        9,
                        128,
                        vec![PlayerKind::Human, PlayerKind::Human],
                    )
                    .await,
                );
            }
            c.wait_ticks(&ms, 1, Duration::from_secs(60)).await;
            let e = &c.engines[0];
            let before: Vec<u64> = {
                let mut v = Vec::new();
                for m in &ms {
                    v.push(c.ticks(m).await);
                }
                v
            };
            let m0 = e.metrics().await.unwrap_or_default();
            let cpu0 = cpu_seconds(e.pid());
            let r0 = redis_info_all(&ports);
            tokio::time::sleep(window).await;
            let m1 = e.metrics().await.unwrap_or_default();
            let cpu = (cpu_seconds(e.pid()) - cpu0) / window.as_secs_f64() * 100.0;
            let r1 = redis_info_all(&ports);
            // Memory of the data: the masters' (replicas hold a copy of the same).
            let mem = redis_info_all(&masters).mem;
            let per_window = |secs: f64| secs / window.as_secs_f64() * 100.0;
            let rcpu = per_window(r1.cpu - r0.cpu);
            let child_cpu = per_window(r1.child_cpu - r0.child_cpu);
            let rewrites = r1.rewrites - r0.rewrites;
            let mut rates = Vec::new();
            for (i, m) in ms.iter().enumerate() {
                rates.push((c.ticks(m).await - before[i]) as f64 / window.as_secs_f64());
            }
            let diff = |name: &str, f: &[&str]| {
                cluster::metric_sum(&m1, name, f) - cluster::metric_sum(&m0, name, f)
            };
            let frames = diff("game_frame_time_ms_count", &[]);
            let mean_ms = diff("game_frame_time_ms_sum", &[]) / frames.max(1.0);
            let within_50 = diff("game_frame_time_ms_bucket", &["le=\"50\""]) / frames.max(1.0);
            let slowest = rates.iter().copied().fold(f64::MAX, f64::min);
            let mean_rate = rates.iter().sum::<f64>() / k as f64;
            rows.push(format!(
            "{k:>3} matches: {mean_rate:.1} ticks/s per match (slowest {slowest:.1}), frame {mean_ms:.2} ms \
             mean, {:.1}% within 50 ms, engine {cpu:.0}% CPU, redis {rcpu:.0}% CPU (+{child_cpu:.0}% in \
             {rewrites} AOF rewrites), redis memory {} MB, load {}",
            within_50 * 100.0,
            mem / 1_000_000,
            std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
        ));
            eprintln!("{}", rows.last().unwrap());
            drop(c);
            if slowest < 19.0 {
                failed = Some(k);
            } else {
                held = k;
            }
            next = if fixed_steps.is_empty() {
                next_step(held, failed)
            } else {
                fixed.next()
            };
        }
        let capacity = match failed {
            Some(_) => held.to_string(),
            None => format!("{held} or more (the ladder's top)"),
        };
        summary.push(format!(
            "Redis {} {}, {} view frames: {capacity} matches held 20 Hz\n    {}",
            match cluster_replicas {
                None => "one node",
                Some(0) => "Cluster (3 masters, no replicas)",
                Some(_) => "Cluster (3 masters + 3 replicas)",
            },
            if persistent {
                format!("appendfsync {mode}")
            } else {
                "without persistence".to_string()
            },
            if plain_views { "plain" } else { "zstd" },
            rows.join("\n    ")
        ));
    }
    eprintln!(
        "FIGURES engine service capacity (one engine process, 1,000 units per match, 20 Hz, Redis on \
         the same 2 cores; load average {}):\n  {}",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        summary.join("\n  ")
    );
}
