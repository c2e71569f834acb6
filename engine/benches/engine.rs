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
use engine::scenario::{battle, WARM_UP_TICKS};
use engine::{Rules, Sim};
use events::{Cell, MapSpec};

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
