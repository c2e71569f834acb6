//! Criterion benches of the simulation core: tick cost with 100 / 1,000 / 10,000 units
//! moving and fighting on 128×128 and 256×256 maps, path requests per second (reachable
//! and unreachable), and snapshot size and time at 1,000 units.
//!
//! Run: `cargo bench -p engine --bench engine`. Besides criterion's figures it prints the
//! median tick time of each battle (the figure the goals are stated in).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use engine::map::{Map, Terrain};
use engine::path::find_path;
use engine::systems::spawn_unit;
use engine::{Input, Rules, Sim};
use events::cmd::AttackMove;
use events::{
    Cell, Command, Envelope, MapSpec, MatchCreated, MatchId, PlayerId, PlayerKind, PlayerSlot,
    Source, UnitId, UnitKind,
};

const WARM_UP_TICKS: usize = 20;
const GROUP: usize = 40;

fn setup(size: u16) -> MatchCreated {
    MatchCreated {
        match_id: MatchId::new("bench").unwrap(),
        seed: 42,
        map: MapSpec { size, seed: 42 },
        players: (0..2)
            .map(|i| PlayerSlot {
                id: PlayerId(i),
                name: format!("p{i}"),
                kind: PlayerKind::Human,
            })
            .collect(),
        tick_hz: 20,
    }
}

/// Two armies of `units / 2` each, one per half of the map, attack-moving at each other in
/// groups of [`GROUP`], warmed up for [`WARM_UP_TICKS`].
fn battle(size: u16, units: usize) -> Sim {
    let rules = Arc::new(Rules::standard());
    let mut sim = Sim::new(rules, &setup(size)).unwrap();
    sim.step(&[]);
    let map = sim.map().clone();
    let main = map.component(map.starts[0]);
    let kinds = [
        UnitKind::Rifleman,
        UnitKind::LightTank,
        UnitKind::RocketSoldier,
        UnitKind::MediumTank,
    ];
    let free: Vec<bool> = {
        let st = sim.state_mut();
        (0..map.len()).map(|i| st.is_free(map.cell_at(i))).collect()
    };
    let half = size / 2;
    let mut armies: [Vec<UnitId>; 2] = [Vec::new(), Vec::new()];
    for (side, army) in armies.iter_mut().enumerate() {
        let x0 = if side == 0 { 0 } else { half };
        let cells: Vec<Cell> = (0..size)
            .flat_map(|y| (x0..x0 + half).map(move |x| Cell::new(x, y)))
            .filter(|&c| map.component(c) == main && free[map.index(c)])
            .collect();
        for k in 0..units / 2 {
            let c = cells[(k * 7919) % cells.len()];
            let id = spawn_unit(
                sim.state_mut(),
                PlayerId(side as u8),
                kinds[k % kinds.len()],
                c,
            );
            army.push(id);
        }
    }
    let mut inputs = Vec::new();
    for (side, army) in armies.iter().enumerate() {
        for (g, chunk) in army.chunks(GROUP).enumerate() {
            let y = (g as u16 * 7) % size;
            let x = if side == 0 { size * 3 / 4 } else { size / 4 };
            let Some(to) = near_in(&map, Cell::new(x, y), main) else {
                continue;
            };
            let mut envelope = Envelope::new(
                MatchId::new("bench").unwrap(),
                Source::Player(PlayerId(side as u8)),
                Command::AttackMove(AttackMove {
                    units: chunk.to_vec(),
                    to,
                }),
            );
            envelope.id = uuid::Uuid::from_u128(inputs.len() as u128 + 1);
            inputs.push(Input {
                stream_id: format!("1-{}", inputs.len()),
                envelope,
            });
        }
    }
    sim.step(&inputs);
    for _ in 0..WARM_UP_TICKS {
        sim.step(&[]);
    }
    sim
}

/// The cell nearest to `c` (scanning outwards) in component `comp`.
fn near_in(map: &Map, c: Cell, comp: u32) -> Option<Cell> {
    for r in 0..map.size as i32 {
        for dy in -r..=r {
            for dx in -r..=r {
                if let Some(n) = map.offset(c, dx, dy) {
                    if map.component(n) == comp {
                        return Some(n);
                    }
                }
            }
        }
    }
    None
}

/// Prints the median tick time of each battle.
fn report_medians() {
    println!("median tick times (fresh battle, {WARM_UP_TICKS} warm-up ticks):");
    for size in [128u16, 256] {
        for units in [100usize, 1_000, 10_000] {
            let n = if units >= 10_000 { 100 } else { 200 };
            let m = median_tick(size, units, n);
            println!("  {size}x{size} {units:>6} units: median {m:?} per tick ({n} ticks)");
        }
    }
}

/// Median tick time over `ticks` ticks of a fresh battle.
fn median_tick(size: u16, units: usize, ticks: usize) -> Duration {
    let mut sim = battle(size, units);
    let mut times: Vec<Duration> = (0..ticks)
        .map(|_| {
            let t = Instant::now();
            black_box(sim.step(&[]));
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn ticks(c: &mut Criterion) {
    // `ENGINE_BENCH_MEDIANS=0` skips this report (handy when profiling one bench).
    if std::env::var("ENGINE_BENCH_MEDIANS").as_deref() != Ok("0") {
        report_medians();
    }
    let mut g = c.benchmark_group("tick");
    for size in [128u16, 256] {
        for units in [100usize, 1_000, 10_000] {
            g.bench_with_input(
                BenchmarkId::new(format!("{size}x{size}"), units),
                &(size, units),
                |b, &(size, units)| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        let mut done = 0u64;
                        while done < iters {
                            let mut sim = battle(size, units);
                            let n = (iters - done).min(200);
                            let start = Instant::now();
                            for _ in 0..n {
                                black_box(sim.step(&[]));
                            }
                            total += start.elapsed();
                            done += n;
                        }
                        total
                    })
                },
            );
        }
    }
    g.finish();
}

fn paths(c: &mut Criterion) {
    let rules = Rules::standard();
    let map = engine::generate(
        &MapSpec {
            size: 128,
            seed: 42,
        },
        2,
        &rules,
    )
    .unwrap();
    let main = map.component(map.starts[0]);
    // Far-apart reachable pairs, spread over the map.
    let cells: Vec<Cell> = (0..map.len())
        .map(|i| map.cell_at(i))
        .filter(|&c| map.component(c) == main)
        .collect();
    let pairs: Vec<(Cell, Cell)> = (0..64)
        .map(|k| {
            let a = cells[(k * 7919) % cells.len()];
            let b = cells[(k * 104_729 + cells.len() / 2) % cells.len()];
            (a, b)
        })
        .collect();
    // A map split by a river: every request across it is unreachable.
    let mut split = Map::blank(128);
    for y in 0..128 {
        split.set_terrain(Cell::new(64, y), Terrain::Water);
    }
    let max = map.len();
    let mut g = c.benchmark_group("path");
    let mut k = 0usize;
    g.bench_function("reachable_128", |b| {
        b.iter(|| {
            let (a, z) = pairs[k % pairs.len()];
            k += 1;
            black_box(find_path(&map, &[], a, z, max).ok())
        })
    });
    let mut k = 0u16;
    g.bench_function("unreachable_128", |b| {
        b.iter(|| {
            k = k.wrapping_add(1);
            let a = Cell::new(k % 60, (k / 60) % 128);
            let z = Cell::new(127 - k % 60, (k * 3) % 128);
            black_box(find_path(&split, &[], a, z, max).err())
        })
    });
    g.finish();
}

fn snapshots(c: &mut Criterion) {
    let sim = battle(128, 1_000);
    let rules = Arc::new(Rules::standard());
    let bytes = sim.snapshot();
    println!(
        "snapshot at {} entities: {} bytes ({:.1} KiB)",
        sim.entity_count(),
        bytes.len(),
        bytes.len() as f64 / 1024.0
    );
    let mut g = c.benchmark_group("snapshot_1000_units");
    g.bench_function("save", |b| b.iter(|| black_box(sim.snapshot())));
    g.bench_function("restore", |b| {
        b.iter(|| black_box(Sim::restore(rules.clone(), &bytes).is_ok()))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = ticks, paths, snapshots
}
criterion_main!(benches);
