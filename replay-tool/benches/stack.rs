//! Benchmark of the whole stack in process (engine `Sim` + `Economy` + two hard AIs, no
//! bus, no clock): simulated minutes per wall-clock second. Results go to
//! docs/benchmarks.md ("Economy").

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use engine::Rules;
use events::{Difficulty, MapSpec, MatchCreated, MatchId, PlayerId, PlayerKind, PlayerSlot};
use replay_tool::stepper::Stepper;

/// Simulated minutes of a hard-vs-hard match per wall-clock second, whole stack in
/// process: five simulated minutes per iteration (from a fresh match, setup included).
fn ai_vs_ai(c: &mut Criterion) {
    let rules = Arc::new(Rules::standard());
    let setup = MatchCreated {
        match_id: MatchId::new("bench-aivai").expect("valid"),
        seed: 3,
        map: MapSpec { size: 64, seed: 3 },
        players: vec![
            PlayerSlot {
                id: PlayerId(0),
                name: "a".into(),
                kind: PlayerKind::Ai(Difficulty::Hard),
            },
            PlayerSlot {
                id: PlayerId(1),
                name: "b".into(),
                kind: PlayerKind::Ai(Difficulty::Hard),
            },
        ],
        tick_hz: 20,
        scenario: events::Scenario::Skirmish,
    };
    let ticks = 5 * 60 * u64::from(rules.tick_hz);
    let mut g = c.benchmark_group("stack");
    g.sample_size(10);
    g.bench_function("ai_vs_ai_5_sim_minutes_64x64", |b| {
        b.iter(|| {
            let mut s = Stepper::new(rules.clone(), &setup).expect("setup");
            for _ in 0..ticks {
                black_box(s.step());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, ai_vs_ai);
criterion_main!(benches);
