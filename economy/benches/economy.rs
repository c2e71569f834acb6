//! Benchmarks of the economy core and the AI: one economy step with 8 players and 50
//! harvesters, and one AI decision. Results go to docs/benchmarks.md ("Economy").

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use economy::map_view::MapView;
use economy::{Ai, Economy, Input};
use events::cmd::QueueProduction;
use events::{
    BuildingKind, Cell, Command, Difficulty, EntityKind, EntityView, Envelope, GameEvent, Item,
    MapSpec, MatchCreated, MatchId, PlayerId, PlayerKind, PlayerSlot, Pos, Source, TickCommitted,
    UnitId, UnitKind, ViewFrame, ViewKind,
};
use rules::Rules;

const PLAYERS: u8 = 8;
const HARVESTERS: u32 = 50;
const TICKS: u64 = 1000;

fn setup() -> MatchCreated {
    MatchCreated {
        match_id: MatchId::new("bench").expect("valid"),
        seed: 11,
        map: MapSpec {
            size: 128,
            seed: 11,
        },
        players: (0..PLAYERS)
            .map(|i| PlayerSlot {
                id: PlayerId(i),
                name: format!("p{i}"),
                kind: PlayerKind::Human,
            })
            .collect(),
        tick_hz: 20,
        scenario: events::Scenario::Skirmish,
    }
}

/// A warm economy (bases and harvesters in place) and `TICKS` ticks of inputs.
fn scenario() -> (Economy, Vec<(TickCommitted, String, Vec<Input>)>) {
    let rules = Arc::new(Rules::standard());
    let s = setup();
    let map = economy::map_view::generate(&rules, &s);
    let mut eco = Economy::with_map(rules, &s, &map);
    let mut id = 1u32;
    let mut events = Vec::new();
    for p in 0..PLAYERS {
        for kind in [
            BuildingKind::ConstructionYard,
            BuildingKind::PowerPlant,
            BuildingKind::PowerPlant,
            BuildingKind::Refinery,
            BuildingKind::Barracks,
            BuildingKind::WarFactory,
        ] {
            events.push(GameEvent::BuildingPlaced {
                id: UnitId(id),
                owner: PlayerId(p),
                kind,
                at: map.starts.get(usize::from(p)).copied().unwrap_or_default(),
                request: 0,
            });
            id += 1;
        }
    }
    let first_harvester = id;
    for h in 0..HARVESTERS {
        let p = (h % u32::from(PLAYERS)) as u8;
        let at = map.starts.get(usize::from(p)).copied().unwrap_or_default();
        events.push(GameEvent::UnitSpawned {
            id: UnitId(id),
            owner: PlayerId(p),
            kind: UnitKind::Harvester,
            at: at.center(),
        });
        id += 1;
    }
    eco.step(
        &TickCommitted {
            tick: 0,
            applied: vec![],
            events,
            hash: 0,
            dead_lettered: Vec::new(),
        },
        "1-0",
        &[],
    );
    let tib: Vec<Cell> = map
        .fields
        .iter()
        .flat_map(|f| f.cells.iter().map(|(c, _)| *c))
        .collect();
    let items = [
        Item::Unit(UnitKind::Rifleman),
        Item::Unit(UnitKind::LightTank),
        Item::Building(BuildingKind::PowerPlant),
    ];
    let mut ticks = Vec::new();
    for t in 1..=TICKS {
        let mut ev = Vec::new();
        for h in 0..HARVESTERS {
            let unit = UnitId(first_harvester + h);
            let owner = PlayerId((h % u32::from(PLAYERS)) as u8);
            let phase = (t + u64::from(h) * 7) % 400;
            if phase == 0 {
                ev.push(GameEvent::HarvesterIdle {
                    unit,
                    owner,
                    at: Cell::new(10, 10),
                });
            } else if phase == 200 {
                ev.push(GameEvent::HarvesterFull { unit, owner });
            } else if phase == 250 {
                ev.push(GameEvent::HarvesterUnloaded {
                    unit,
                    owner,
                    refinery: UnitId(4),
                    bails: 28,
                    credits: 700,
                });
            } else if phase % 10 == 0 && !tib.is_empty() {
                let c = tib[(u64::from(h) * 31 + t) as usize % tib.len()];
                ev.push(GameEvent::TiberiumChanged {
                    cell: c,
                    bails: (t % 12) as u8,
                    blue: false,
                });
            }
        }
        let mut inputs = Vec::new();
        if t % 50 == 0 {
            for p in 0..PLAYERS {
                for item in items {
                    inputs.push(Input {
                        stream_id: format!("{t}-{}", inputs.len() + 1),
                        envelope: Envelope::new(
                            MatchId::new("bench").expect("valid"),
                            Source::Player(PlayerId(p)),
                            Command::QueueProduction(QueueProduction { item }),
                        ),
                    });
                }
            }
        }
        ticks.push((
            TickCommitted {
                tick: t,
                applied: vec![],
                events: ev,
                hash: 0,
                dead_lettered: Vec::new(),
            },
            format!("{}-0", t + 1),
            inputs,
        ));
    }
    (eco, ticks)
}

fn economy_step(c: &mut Criterion) {
    let (eco, ticks) = scenario();
    c.bench_function("economy_step_x1000_8p_50h", |b| {
        b.iter(|| {
            let mut e = eco.clone();
            for (t, id, inputs) in &ticks {
                black_box(e.step(t, id, inputs));
            }
        })
    });
    c.bench_function("economy_hash_8p_50h", |b| b.iter(|| black_box(eco.hash())));
}

fn ai_decide(c: &mut Criterion) {
    let rules = Arc::new(Rules::standard());
    let s = setup();
    let (eco, _) = scenario();
    let map = Arc::new(MapView::open(128));
    let mut ai = Ai::new(PlayerId(0), Difficulty::Hard, rules, 3).with_map(map);
    // A busy view: 60 own units, 40 visible enemies, the bases.
    let mut entities = Vec::new();
    for i in 0..100u32 {
        let owner = if i < 60 { PlayerId(0) } else { PlayerId(1) };
        entities.push(EntityView {
            id: UnitId(1000 + i),
            owner,
            kind: EntityKind::Unit(UnitKind::LightTank),
            pos: Pos::new(((i % 20) * 1024 * 3) as i32, ((i / 20) * 1024 * 5) as i32),
            facing: 0,
            hp: 300,
            max_hp: 300,
            cargo: 0,
            visible_to: 0b11,
        });
    }
    ai.observe(&ViewFrame {
        tick: 0,
        kind: ViewKind::Keyframe,
        entities,
        removed: vec![],
        tiberium: vec![],
        winner: None,
        attacks: Vec::new(),
        deaths: Vec::new(),
    });
    let _ = s;
    let ledger = eco.player(PlayerId(0)).cloned().expect("player 0");
    let mut tick = 6000u64;
    c.bench_function("ai_decide_per_think_hard", |b| {
        b.iter(|| {
            // Every call is a thinking tick: the worst case, not the average.
            tick += 10;
            black_box(ai.decide(tick, &ledger))
        })
    });
}

criterion_group!(benches, economy_step, ai_decide);
criterion_main!(benches);
