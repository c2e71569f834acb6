//! Economy-only world operations: building placement rules, unit spawns at producers,
//! permissions, and production commands being left to the economy.

mod common;

use common::{p, Given};
use engine::map::Terrain;
use events::cmd::{ConstructBuilding, QueueProduction, Sell, SpawnUnit};
use events::{
    BuildingKind, Cell, Command, EntityKind, GameEvent, Item, PlayerId, RejectReason, Source,
    UnitKind,
};

fn construct(kind: BuildingKind, at: Cell, request: u64) -> Command {
    Command::ConstructBuilding(ConstructBuilding {
        player: PlayerId(0),
        kind,
        at,
        request,
    })
}

fn spawn(kind: UnitKind) -> Command {
    Command::SpawnUnit(SpawnUnit {
        player: PlayerId(0),
        kind,
    })
}

/// Player 0's yard covers (9..12, 9..12) on this map.
fn world() -> Given {
    Given::blank(64, &[Cell::new(10, 10), Cell::new(54, 54)], |m| {
        m.set_terrain(Cell::new(15, 10), Terrain::Rock);
    })
}

fn failure(g: &Given, request: u64) -> Option<RejectReason> {
    g.last.iter().find_map(|e| match e {
        GameEvent::PlacementFailed {
            request: r, reason, ..
        } if *r == request => Some(reason.clone()),
        _ => None,
    })
}

#[test]
fn buildings_go_on_clear_cells_near_own_buildings() {
    world()
        .when(vec![
            (
                Source::Economy,
                construct(BuildingKind::PowerPlant, Cell::new(13, 12), 1),
            ),
            // Overlaps the power plant just placed in this same tick.
            (
                Source::Economy,
                construct(BuildingKind::Barracks, Cell::new(14, 13), 2),
            ),
            // Rock at (15, 10).
            (
                Source::Economy,
                construct(BuildingKind::Barracks, Cell::new(14, 9), 3),
            ),
            // Too far from any own building.
            (
                Source::Economy,
                construct(BuildingKind::Barracks, Cell::new(30, 30), 4),
            ),
            // Off the map.
            (
                Source::Economy,
                construct(BuildingKind::Barracks, Cell::new(63, 63), 5),
            ),
            // On the yard.
            (
                Source::Economy,
                construct(BuildingKind::PowerPlant, Cell::new(10, 10), 6),
            ),
        ])
        .then(|g| {
            assert!(g.last.iter().any(|e| matches!(
                e,
                GameEvent::BuildingPlaced { kind: BuildingKind::PowerPlant, request: 1, at, .. }
                    if *at == Cell::new(13, 12)
            )));
            for r in [2, 3, 4, 6] {
                assert!(
                    matches!(failure(g, r), Some(RejectReason::BadPlacement(_))),
                    "request {r}: {:?}",
                    failure(g, r)
                );
            }
            assert_eq!(
                failure(g, 5),
                Some(RejectReason::OutOfMap(Cell::new(63, 63)))
            );
            // Placement failures are answered with PlacementFailed, not CommandRejected.
            assert!(g.rejections().is_empty());
            assert_eq!(g.applied.len(), 6);
        });
}

#[test]
fn units_block_placement() {
    let mut g = world();
    g.unit(0, UnitKind::Rifleman, Cell::new(14, 13));
    g.when(vec![(
        Source::Economy,
        construct(BuildingKind::PowerPlant, Cell::new(13, 12), 1),
    )])
    .then(|g| assert!(matches!(failure(g, 1), Some(RejectReason::BadPlacement(_)))));
}

#[test]
fn a_refinery_comes_with_its_harvester() {
    world()
        .when(vec![(
            Source::Economy,
            construct(BuildingKind::Refinery, Cell::new(13, 13), 9),
        )])
        .then(|g| {
            assert!(g.last.iter().any(|e| matches!(
                e,
                GameEvent::BuildingPlaced {
                    kind: BuildingKind::Refinery,
                    request: 9,
                    ..
                }
            )));
            assert!(g.last.iter().any(|e| matches!(
                e,
                GameEvent::UnitSpawned {
                    kind: UnitKind::Harvester,
                    owner: PlayerId(0),
                    ..
                }
            )));
        });
}

#[test]
fn units_spawn_at_their_producer_or_are_refused() {
    let g = world().when(vec![
        (Source::Economy, spawn(UnitKind::Rifleman)),
        (Source::Economy, spawn(UnitKind::LightTank)),
    ]);
    // Without a producing building the finished unit cannot appear: the engine says so
    // with the unit's kind, so the economy can refund it.
    let failed: Vec<(UnitKind, RejectReason)> = g
        .last
        .iter()
        .filter_map(|e| match e {
            GameEvent::SpawnFailed {
                player: PlayerId(0),
                kind,
                reason,
                ..
            } => Some((*kind, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        vec![
            (UnitKind::Rifleman, RejectReason::NoProducer),
            (UnitKind::LightTank, RejectReason::NoProducer)
        ]
    );
    assert!(g.rejections().is_empty());
    let mut g = g;
    let barracks = g.building(0, BuildingKind::Barracks, Cell::new(13, 9));
    let factory = g.building(0, BuildingKind::WarFactory, Cell::new(13, 14));
    g.when(vec![
        (Source::Economy, spawn(UnitKind::Rifleman)),
        (Source::Economy, spawn(UnitKind::HeavyTank)),
        (Source::Economy, spawn(UnitKind::Harvester)),
    ])
    .then(|g| {
        assert!(g.rejections().is_empty(), "{:?}", g.last);
        let spawned: Vec<(UnitKind, Cell)> = g
            .last
            .iter()
            .filter_map(|e| match e {
                GameEvent::UnitSpawned { kind, at, .. } => Some((*kind, at.cell())),
                _ => None,
            })
            .collect();
        assert_eq!(spawned.len(), 3);
        let near = |c: Cell, x0: u16, y0: u16, w: u16, h: u16| {
            c.x + 1 >= x0 && c.x <= x0 + w && c.y + 1 >= y0 && c.y <= y0 + h
        };
        assert!(near(spawned[0].1, 13, 9, 2, 2), "{spawned:?}");
        assert!(near(spawned[1].1, 13, 14, 3, 3), "{spawned:?}");
        // No refinery: the harvester leaves the war factory.
        assert!(near(spawned[2].1, 13, 14, 3, 3), "{spawned:?}");
        assert_ne!(spawned[1].1, spawned[2].1);
        let _ = (barracks, factory);
    });
}

#[test]
fn only_the_economy_may_spawn_construct_or_set_power() {
    world()
        .when(vec![
            (p(0), spawn(UnitKind::Rifleman)),
            (
                p(0),
                construct(BuildingKind::PowerPlant, Cell::new(13, 12), 1),
            ),
            (Source::System, spawn(UnitKind::Rifleman)),
            (
                Source::Economy,
                Command::SpawnUnit(SpawnUnit {
                    player: PlayerId(6),
                    kind: UnitKind::Rifleman,
                }),
            ),
        ])
        .then(|g| {
            assert_eq!(
                g.rejections(),
                vec![
                    RejectReason::NotAllowed,
                    RejectReason::NotAllowed,
                    RejectReason::NotAllowed,
                    RejectReason::NotAPlayer,
                ]
            );
        });
}

#[test]
fn production_commands_are_left_to_the_economy() {
    world()
        .when(vec![
            (
                p(0),
                Command::QueueProduction(QueueProduction {
                    item: Item::Unit(UnitKind::Rifleman),
                }),
            ),
            (
                p(0),
                Command::Stop(events::cmd::Stop {
                    units: vec![events::UnitId(2)],
                }),
            ),
        ])
        .then(|g| {
            assert_eq!(g.applied.len(), 1);
            assert!(g.rejections().is_empty());
        });
}

#[test]
fn selling_removes_own_buildings_only() {
    let g = world();
    let yard = g
        .sim
        .entities()
        .into_iter()
        .find(|e| e.owner == PlayerId(0) && matches!(e.kind, EntityKind::Building(_)))
        .unwrap()
        .id;
    g.when(vec![
        (p(1), Command::Sell(Sell { building: yard })),
        (
            p(0),
            Command::Sell(Sell {
                building: events::UnitId(2),
            }),
        ),
        (p(0), Command::Sell(Sell { building: yard })),
    ])
    .then(|g| {
        assert_eq!(
            g.rejections(),
            vec![
                // Player 1 does not see the yard: answered as if it did not exist.
                RejectReason::NoSuchUnit(yard),
                RejectReason::WrongKind(events::UnitId(2))
            ]
        );
        assert!(g.last.contains(&GameEvent::BuildingSold {
            id: yard,
            owner: PlayerId(0),
            kind: BuildingKind::ConstructionYard
        }));
        // Its last building gone, player 0 is defeated.
        assert!(g.last.contains(&GameEvent::PlayerDefeated {
            player: PlayerId(0)
        }));
    });
}
