//! Determinism: random (valid and invalid) command sequences never panic, the same seed
//! and inputs give the same outputs and hash sequence, and snapshot → restore → continue
//! gives the same outputs as an uninterrupted run.

mod common;

use common::{rules, setup};
use engine::{Input, Sim, StepOutput};
use events::cmd::*;
use events::{BuildingKind, Cell, Command, Envelope, MatchId, PlayerId, Source, UnitId, UnitKind};
use proptest::prelude::*;

const TICKS: u64 = 2_000;

#[derive(Clone, Debug)]
enum Op {
    Move(Vec<u32>, u16, u16),
    AttackMove(Vec<u32>, u16, u16),
    Attack(Vec<u32>, u32),
    Stop(Vec<u32>),
    Hold(Vec<u32>),
    Harvest(Vec<u32>, u16, u16),
    Return(Vec<u32>),
    Sell(u32),
    Spawn(u8, usize),
    /// Player, kind, offset from the player's start.
    Construct(u8, usize, i8, i8),
    Power(u8, bool),
    Queue,
    Rally(u32, u16, u16),
    Heal(u8, u32, u32),
}

fn source(s: u8) -> Source {
    match s {
        0..=2 => Source::Player(PlayerId(s)), // player 2 is not in the match
        3 | 4 => Source::Economy,
        5 => Source::Bot(PlayerId(1)),
        _ => Source::System,
    }
}

fn op() -> impl Strategy<Value = Op> {
    // Mostly short lists of low ids: many orders then name live units of one owner.
    let units = || prop::collection::vec(0u32..40, 0..4);
    let xy = || (0u16..52, 0u16..52);
    prop_oneof![
        4 => (units(), xy()).prop_map(|(u, (x, y))| Op::Move(u, x, y)),
        3 => (units(), xy()).prop_map(|(u, (x, y))| Op::AttackMove(u, x, y)),
        2 => (units(), 0u32..60).prop_map(|(u, t)| Op::Attack(u, t)),
        1 => units().prop_map(Op::Stop),
        1 => units().prop_map(Op::Hold),
        2 => (units(), xy()).prop_map(|(u, (x, y))| Op::Harvest(u, x, y)),
        1 => units().prop_map(Op::Return),
        1 => (0u32..60).prop_map(Op::Sell),
        4 => (0u8..3, 0usize..7).prop_map(|(p, k)| Op::Spawn(p, k)),
        4 => (0u8..3, 0usize..7, -8i8..8, -8i8..8).prop_map(|(p, k, x, y)| Op::Construct(p, k, x, y)),
        1 => (0u8..3, any::<bool>()).prop_map(|(p, l)| Op::Power(p, l)),
        1 => Just(Op::Queue),
        2 => (0u32..60, xy()).prop_map(|(b, (x, y))| Op::Rally(b, x, y)),
        2 => (0u8..3, 0u32..60, 0u32..300).prop_map(|(p, b, hp)| Op::Heal(p, b, hp)),
    ]
}

fn ids(v: &[u32]) -> Vec<UnitId> {
    v.iter().map(|&u| UnitId(u)).collect()
}

fn command(op: &Op, starts: &[Cell]) -> Command {
    let c = |x, y| Cell::new(x, y);
    match op.clone() {
        Op::Move(u, x, y) => Command::MoveUnits(MoveUnits {
            units: ids(&u),
            to: c(x, y),
        }),
        Op::AttackMove(u, x, y) => Command::AttackMove(AttackMove {
            units: ids(&u),
            to: c(x, y),
        }),
        Op::Attack(u, t) => Command::AttackTarget(AttackTarget {
            units: ids(&u),
            target: UnitId(t),
        }),
        Op::Stop(u) => Command::Stop(Stop { units: ids(&u) }),
        Op::Hold(u) => Command::HoldPosition(HoldPosition { units: ids(&u) }),
        Op::Harvest(u, x, y) => Command::Harvest(Harvest {
            units: ids(&u),
            at: c(x, y),
        }),
        Op::Return(u) => Command::ReturnToRefinery(ReturnToRefinery { units: ids(&u) }),
        Op::Sell(b) => Command::Sell(Sell {
            building: UnitId(b),
        }),
        Op::Spawn(p, k) => Command::SpawnUnit(SpawnUnit {
            player: PlayerId(p),
            kind: UnitKind::ALL[k],
        }),
        Op::Construct(p, k, dx, dy) => {
            let s = starts.get(usize::from(p)).copied().unwrap_or_default();
            let at = Cell::new(
                (i32::from(s.x) + i32::from(dx)).max(0) as u16,
                (i32::from(s.y) + i32::from(dy)).max(0) as u16,
            );
            Command::ConstructBuilding(ConstructBuilding {
                player: PlayerId(p),
                kind: BuildingKind::ALL[k],
                at,
                request: u64::from(p) * 1000 + k as u64,
            })
        }
        Op::Power(p, low) => Command::SetLowPower(SetLowPower {
            player: PlayerId(p),
            low,
        }),
        Op::Queue => Command::QueueProduction(QueueProduction {
            item: events::Item::Unit(UnitKind::Rifleman),
        }),
        Op::Rally(b, x, y) => Command::SetRally(SetRally {
            building: UnitId(b),
            at: c(x, y),
        }),
        Op::Heal(p, b, hp) => Command::HealBuilding(HealBuilding {
            player: PlayerId(p),
            building: UnitId(b),
            hp,
        }),
    }
}

/// Builds the inputs of every tick once, so every run gets byte-identical envelopes.
fn schedule(seed: u64, ops: &[(u64, u8, Op)]) -> Vec<Vec<Input>> {
    let sim = Sim::new(rules(), &setup(48, 2, seed)).unwrap();
    let starts = sim.map().starts.clone();
    let mut per_tick: Vec<Vec<Input>> = vec![Vec::new(); TICKS as usize];
    for (n, (tick, src, op)) in ops.iter().enumerate() {
        let mut envelope = Envelope::new(
            MatchId::new("prop").unwrap(),
            source(*src),
            command(op, &starts),
        );
        envelope.id = uuid::Uuid::from_u128(n as u128 + 1);
        envelope.sent_ms = 0;
        per_tick[*tick as usize].push(Input {
            stream_id: format!("{}-{n}", tick),
            envelope,
        });
    }
    per_tick
}

fn run(seed: u64, inputs: &[Vec<Input>], snapshot_at: Option<u64>) -> Vec<StepOutput> {
    let mut sim = Sim::new(rules(), &setup(48, 2, seed)).unwrap();
    let mut out = Vec::with_capacity(inputs.len());
    for (t, tick_inputs) in inputs.iter().enumerate() {
        out.push(sim.step(tick_inputs));
        if snapshot_at == Some(t as u64) {
            let bytes = sim.snapshot();
            let restored = Sim::restore(rules(), &bytes).expect("restore");
            assert_eq!(restored.hash(), sim.hash());
            assert_eq!(restored.next_tick(), sim.next_tick());
            assert_eq!(restored.keyframe(), sim.keyframe());
            sim = restored;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    #[test]
    fn random_commands_are_deterministic_and_survive_snapshots(
        seed in any::<u64>(),
        ops in prop::collection::vec((0u64..TICKS, 0u8..7, op()), 0..150),
        snapshot_at in 0u64..TICKS,
    ) {
        let inputs = schedule(seed, &ops);
        let a = run(seed, &inputs, None);
        let b = run(seed, &inputs, None);
        let hashes = |v: &[StepOutput]| v.iter().map(|o| o.committed.hash).collect::<Vec<_>>();
        prop_assert_eq!(hashes(&a), hashes(&b));
        prop_assert!(a == b, "same inputs gave different outputs");
        let c = run(seed, &inputs, Some(snapshot_at));
        prop_assert_eq!(hashes(&a), hashes(&c));
        prop_assert!(a == c, "restore-and-continue differs from the uninterrupted run");
    }
}

#[test]
fn a_busy_match_is_deterministic_across_snapshots() {
    // Scripted: both sides build, spawn an army and attack-move across the map, so
    // combat, deaths, harvesting and placement all happen in the compared window.
    let sim = Sim::new(rules(), &setup(48, 2, 3)).unwrap();
    let starts = sim.map().starts.clone();
    let mut ops: Vec<(u64, u8, Op)> = Vec::new();
    for (p, s) in starts.iter().enumerate() {
        let p = p as u8;
        let _ = s;
        ops.push((1, 3, Op::Construct(p, 3, 3, -1))); // barracks
        ops.push((1, 3, Op::Construct(p, 4, -5, 2))); // war factory
        ops.push((2, 3, Op::Construct(p, 2, 2, 3))); // refinery
        for k in 0..12u64 {
            ops.push((5 + k, 3, Op::Spawn(p, (k % 6) as usize)));
        }
    }
    // Find each side's army after the spawns, then send it at the other's base.
    let early = schedule(3, &ops);
    let mut pre = Sim::new(rules(), &setup(48, 2, 3)).unwrap();
    for tick_inputs in early.iter().take(60) {
        pre.step(tick_inputs);
    }
    let army = |p: u8| -> Vec<u32> {
        pre.entities()
            .iter()
            .filter(|e| e.owner == PlayerId(p) && matches!(e.kind, events::EntityKind::Unit(_)))
            .map(|e| e.id.0)
            .collect()
    };
    let (a0, a1) = (army(0), army(1));
    assert!(a0.len() >= 12 && a1.len() >= 12);
    for t in [60u64, 300, 700] {
        ops.push((t, 0, Op::AttackMove(a0.clone(), starts[1].x, starts[1].y)));
        ops.push((t, 1, Op::AttackMove(a1.clone(), starts[0].x, starts[0].y)));
    }
    let inputs = schedule(3, &ops);
    let a = run(3, &inputs, None);
    let fought = a.iter().any(|o| {
        o.committed
            .events
            .iter()
            .any(|e| matches!(e, events::GameEvent::EntityDestroyed { .. }))
    });
    assert!(fought, "the scripted armies never met");
    for k in [10u64, 400, 1_000] {
        let c = run(3, &inputs, Some(k));
        assert!(a == c, "snapshot at {k} changed the outcome");
    }
}

#[test]
fn corrupt_snapshots_are_errors() {
    let mut sim = Sim::new(rules(), &setup(32, 2, 1)).unwrap();
    for _ in 0..5 {
        sim.step(&[]);
    }
    let bytes = sim.snapshot();
    assert!(Sim::restore(rules(), &[]).is_err());
    assert!(Sim::restore(rules(), &bytes[..bytes.len() / 2]).is_err());
    for i in (0..bytes.len()).step_by(97) {
        let mut bad = bytes.clone();
        bad[i] ^= 0xA5;
        // Must not panic; may or may not decode.
        let _ = Sim::restore(rules(), &bad);
    }
}
