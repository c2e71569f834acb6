//! Property tests: random engine events and commands never panic the economy, the same
//! inputs always give the same hashes, and snapshot → restore → continue is the same as
//! never snapshotting.

use std::sync::Arc;

use economy::map_view::{MapField, MapView};
use economy::testing::match_created;
use economy::{Economy, Input, RestoreError};
use events::cmd::{CancelProduction, PlaceBuilding, QueueProduction, Sell};
use events::{
    BuildingKind, Cell, Command, EntityKind, Envelope, GameEvent, Item, MatchId, PlayerId, Pos,
    QueueKind, RejectReason, Source, TickCommitted, UnitId, UnitKind,
};
use proptest::prelude::*;
use rules::Rules;

fn map() -> MapView {
    let mut m = MapView::open(32);
    m.fields = vec![
        MapField {
            id: 0,
            blue: false,
            cells: (0..4).map(|i| (Cell::new(10 + i, 10), 10)).collect(),
        },
        MapField {
            id: 1,
            blue: true,
            cells: (0..3).map(|i| (Cell::new(20, 20 + i), 12)).collect(),
        },
    ];
    m
}

fn player() -> impl Strategy<Value = PlayerId> {
    (0u8..4).prop_map(PlayerId)
}

fn building() -> impl Strategy<Value = BuildingKind> {
    proptest::sample::select(BuildingKind::ALL.to_vec())
}

fn unit() -> impl Strategy<Value = UnitKind> {
    proptest::sample::select(UnitKind::ALL.to_vec())
}

fn cell() -> impl Strategy<Value = Cell> {
    (0u16..40, 0u16..40).prop_map(|(x, y)| Cell::new(x, y))
}

fn uid() -> impl Strategy<Value = UnitId> {
    (1u32..30).prop_map(UnitId)
}

fn game_event() -> impl Strategy<Value = GameEvent> {
    prop_oneof![
        3 => (uid(), player(), building(), cell(), 0u64..6).prop_map(|(id, owner, kind, at, request)| {
            GameEvent::BuildingPlaced { id, owner, kind, at, request }
        }),
        1 => (player(), building(), 0u64..6).prop_map(|(owner, kind, request)| GameEvent::PlacementFailed {
            owner,
            kind,
            request,
            reason: RejectReason::BadPlacement("x".into()),
        }),
        1 => (uid(), player(), building()).prop_map(|(id, owner, b)| GameEvent::EntityDestroyed {
            id,
            owner,
            kind: EntityKind::Building(b),
            by: None,
        }),
        1 => (uid(), player(), unit()).prop_map(|(id, owner, u)| GameEvent::EntityDestroyed {
            id,
            owner,
            kind: EntityKind::Unit(u),
            by: None,
        }),
        1 => (uid(), player(), building()).prop_map(|(id, owner, kind)| GameEvent::BuildingSold { id, owner, kind }),
        2 => (uid(), player(), 0u32..2000).prop_map(|(unit, owner, credits)| GameEvent::HarvesterUnloaded {
            unit,
            owner,
            refinery: UnitId(0),
            bails: credits / 25,
            credits,
        }),
        1 => (uid(), player()).prop_map(|(unit, owner)| GameEvent::HarvesterFull { unit, owner }),
        1 => (uid(), player(), cell()).prop_map(|(unit, owner, at)| GameEvent::HarvesterIdle { unit, owner, at }),
        1 => (uid(), player()).prop_map(|(unit, owner)| GameEvent::HarvesterAttacked { unit, owner, by: None }),
        1 => (uid(), player(), cell()).prop_map(|(id, owner, c)| GameEvent::UnitSpawned {
            id,
            owner,
            kind: UnitKind::Harvester,
            at: Pos::new(i32::from(c.x) * 1024, i32::from(c.y) * 1024),
        }),
        2 => (cell(), 0u8..13, any::<bool>()).prop_map(|(cell, bails, blue)| GameEvent::TiberiumChanged { cell, bails, blue }),
        1 => (player()).prop_map(|player| GameEvent::PlayerDefeated { player }),
    ]
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![
        6 => player().prop_map(Source::Player),
        2 => player().prop_map(Source::Bot),
        1 => Just(Source::Economy),
        1 => Just(Source::System),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    let item = prop_oneof![
        building().prop_map(Item::Building),
        unit().prop_map(Item::Unit)
    ];
    prop_oneof![
        4 => item.prop_map(|item| Command::QueueProduction(QueueProduction { item })),
        1 => proptest::sample::select(vec![QueueKind::Buildings, QueueKind::Infantry, QueueKind::Vehicles])
            .prop_map(|queue| Command::CancelProduction(CancelProduction { queue })),
        2 => (building(), cell()).prop_map(|(building, at)| Command::PlaceBuilding(PlaceBuilding { building, at })),
        1 => uid().prop_map(|building| Command::Sell(Sell { building })),
    ]
}

type Tick = (Vec<GameEvent>, Vec<(Source, Command)>, u32);

fn ticks() -> impl Strategy<Value = Vec<Tick>> {
    proptest::collection::vec(
        (
            proptest::collection::vec(game_event(), 0..4),
            proptest::collection::vec((source(), command()), 0..3),
            0u32..30,
        ),
        1..40,
    )
}

/// Turns generated ticks into concrete inputs once, so every run sees the same event ids.
fn materialise(ticks: Vec<Tick>) -> Vec<(TickCommitted, String, Vec<Input>)> {
    let m = MatchId::new("prop").expect("valid id");
    let mut n = 0u64;
    ticks
        .into_iter()
        .map(|(events, cmds, idle)| {
            n += 1 + u64::from(idle);
            let inputs = cmds
                .into_iter()
                .enumerate()
                .map(|(i, (source, body))| Input {
                    stream_id: format!("{n}-{}", i + 1),
                    envelope: Envelope::new(m.clone(), source, body),
                })
                .collect();
            let t = TickCommitted {
                tick: n,
                applied: vec![],
                events,
                hash: 0,
                dead_lettered: Vec::new(),
            };
            (t, format!("{n}-0"), inputs)
        })
        .collect()
}

fn fresh() -> Economy {
    let mut setup = match_created(3, 32);
    setup.players[2].kind = events::PlayerKind::Ai(events::Difficulty::Hard);
    Economy::with_map(Arc::new(Rules::standard()), &setup, &map())
}

fn run(eco: &mut Economy, inputs: &[(TickCommitted, String, Vec<Input>)]) -> Vec<u64> {
    inputs
        .iter()
        .map(|(t, id, cmds)| {
            let r = eco.step(t, id, cmds);
            assert_eq!(r.committed.hash, eco.hash());
            assert_eq!(r.committed.consumed.len(), cmds.len() + 1);
            r.committed.hash
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn same_inputs_same_hashes_and_no_panics(ticks in ticks()) {
        let inputs = materialise(ticks);
        let a = run(&mut fresh(), &inputs);
        let b = run(&mut fresh(), &inputs);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn snapshot_restore_continue_equals_straight_run(ticks in ticks(), cut in 0usize..40) {
        let inputs = materialise(ticks);
        let cut = cut.min(inputs.len());
        let straight = run(&mut fresh(), &inputs);
        let mut eco = fresh();
        run(&mut eco, &inputs[..cut]);
        let bytes = eco.snapshot();
        let mut back = Economy::restore_on(Arc::new(Rules::standard()), &bytes, Some(&map()))
            .expect("own snapshot restores");
        prop_assert_eq!(back.hash(), eco.hash());
        let rest = run(&mut back, &inputs[cut..]);
        prop_assert_eq!(&straight[cut..], &rest[..]);
    }

    #[test]
    fn garbage_snapshots_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Economy::restore(Arc::new(Rules::standard()), &bytes);
    }
}

#[test]
fn credits_never_go_negative_and_ledgers_stay_consistent() {
    let mut eco = fresh();
    let inputs = materialise(
        (0..50)
            .map(|i| {
                (
                    vec![GameEvent::BuildingPlaced {
                        id: UnitId(i + 1),
                        owner: PlayerId((i % 3) as u8),
                        kind: BuildingKind::ALL[(i % 7) as usize],
                        at: Cell::new(1, 1),
                        request: 0,
                    }],
                    vec![(
                        Source::Player(PlayerId((i % 3) as u8)),
                        Command::QueueProduction(QueueProduction {
                            item: Item::Unit(UnitKind::ALL[(i % 7) as usize]),
                        }),
                    )],
                    5,
                )
            })
            .collect(),
    );
    run(&mut eco, &inputs);
    for l in eco.players() {
        for j in l.queues.values() {
            assert!(j.paid <= j.cost);
        }
    }
}

#[test]
fn a_snapshot_from_another_version_is_refused() {
    #[derive(serde::Serialize)]
    struct Old {
        version: u16,
    }
    let bytes = rmp_serde::to_vec_named(&Old { version: 999 }).expect("encodes");
    assert!(matches!(
        Economy::restore(Arc::new(Rules::standard()), &bytes),
        Err(RestoreError::Version { found: 999, .. })
    ));
}

/// A field's distance map is computed on first use; a field that grows afterwards (spread
/// next to it) must be measured the same way by an economy that used the map before the
/// growth and by one restored after it (found by the property test above: the straight
/// run sent a new harvester to the old, far field).
#[test]
fn a_field_that_grows_after_use_is_measured_the_same_after_a_restore() {
    let mut events: Vec<Vec<GameEvent>> = vec![Vec::new(); 22];
    events[8] = vec![GameEvent::TiberiumChanged {
        cell: Cell::new(29, 17),
        bails: 1,
        blue: false,
    }];
    events[10] = vec![GameEvent::HarvesterIdle {
        unit: UnitId(1),
        owner: PlayerId(0),
        at: Cell::new(0, 0),
    }];
    events[11] = vec![GameEvent::TiberiumChanged {
        cell: Cell::new(28, 16),
        bails: 8,
        blue: true,
    }];
    events[21] = vec![
        GameEvent::UnitSpawned {
            id: UnitId(22),
            owner: PlayerId(0),
            kind: UnitKind::Harvester,
            at: Pos::new(27 * 1024, 12 * 1024),
        },
        GameEvent::HarvesterIdle {
            unit: UnitId(2),
            owner: PlayerId(0),
            at: Cell::new(0, 0),
        },
    ];
    let inputs: Vec<(TickCommitted, String, Vec<Input>)> = events
        .into_iter()
        .enumerate()
        .map(|(i, events)| {
            let tick = i as u64 + 1;
            let t = TickCommitted {
                tick,
                applied: vec![],
                events,
                hash: 0,
                dead_lettered: Vec::new(),
            };
            (t, format!("{tick}-0"), Vec::new())
        })
        .collect();
    let straight = run(&mut fresh(), &inputs);
    let mut eco = fresh();
    run(&mut eco, &inputs[..11]);
    let mut back = Economy::restore_on(Arc::new(Rules::standard()), &eco.snapshot(), Some(&map()))
        .expect("own snapshot restores");
    let rest = run(&mut back, &inputs[11..]);
    assert_eq!(&straight[11..], &rest[..]);
}
