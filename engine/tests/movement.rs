//! Movement: goals around walls, unreachable goals replaced by the nearest reachable cell,
//! group moves, ownership.

mod common;

use common::{p, Given};
use engine::map::Terrain;
use events::cmd::{MoveUnits, Stop};
use events::{Cell, Command, GameEvent, RejectReason, Source, UnitKind};

fn mv(units: Vec<events::UnitId>, to: Cell) -> Command {
    Command::MoveUnits(MoveUnits { units, to })
}

#[test]
fn a_unit_reaches_a_goal_around_a_wall() {
    // A rock wall from the top down to y = 40 between the unit and its goal.
    let mut g = Given::blank(64, &[Cell::new(4, 60), Cell::new(60, 60)], |m| {
        for y in 0..=40 {
            m.set_terrain(Cell::new(32, y), Terrain::Rock);
        }
    });
    let u = g.unit(0, UnitKind::ReconBike, Cell::new(20, 10));
    let goal = Cell::new(44, 10);
    g.when(vec![(p(0), mv(vec![u], goal))])
        .then(|g| assert!(g.rejections().is_empty(), "{:?}", g.last))
        .ticks(20 * 30)
        .then(|g| {
            assert_eq!(g.cell_of(u), goal);
        });
}

#[test]
fn an_unreachable_goal_sends_the_unit_to_the_nearest_reachable_cell() {
    // Water splits the map in two.
    let mut g = Given::blank(64, &[Cell::new(4, 4), Cell::new(4, 60)], |m| {
        for y in 0..64 {
            m.set_terrain(Cell::new(32, y), Terrain::Water);
        }
    });
    let u = g.unit(0, UnitKind::Rifleman, Cell::new(20, 20));
    let goal = Cell::new(50, 20);
    g.when(vec![(p(0), mv(vec![u], goal))])
        .then(|g| {
            assert!(g.rejections().is_empty(), "{:?}", g.rejections());
            assert_eq!(g.applied.len(), 1);
        })
        .ticks(20 * 30)
        .then(|g| assert_eq!(g.cell_of(u), Cell::new(31, 20)));
}

#[test]
fn a_move_into_rock_stops_beside_it_and_off_the_map_is_rejected() {
    let mut g = Given::blank(64, &[Cell::new(4, 4), Cell::new(60, 60)], |m| {
        m.set_terrain(Cell::new(30, 30), Terrain::Rock);
    });
    let u = g.unit(0, UnitKind::Rifleman, Cell::new(20, 20));
    g.when(vec![
        (p(0), mv(vec![u], Cell::new(64, 3))),
        (p(0), mv(vec![], Cell::new(3, 3))),
        (p(0), mv(vec![u], Cell::new(30, 30))),
    ])
    .then(|g| {
        assert_eq!(
            g.rejections(),
            vec![
                RejectReason::OutOfMap(Cell::new(64, 3)),
                RejectReason::Empty
            ]
        );
    })
    .ticks(20 * 30)
    .then(|g| {
        let c = g.cell_of(u);
        assert!(c != Cell::new(30, 30) && c.x.abs_diff(30) <= 1 && c.y.abs_diff(30) <= 1);
    });
}

#[test]
fn players_order_only_their_own_units_and_the_economy_only_harvesters() {
    let mut g = Given::duel();
    let mine = g.unit(0, UnitKind::Rifleman, Cell::new(20, 20));
    // In sight of `mine` (a hidden one would count as missing: see the fog tests), once
    // the sight circles are drawn.
    let theirs = g.unit(1, UnitKind::Rifleman, Cell::new(21, 20));
    let harv = g.unit(1, UnitKind::Harvester, Cell::new(42, 42));
    let to = Cell::new(30, 30);
    g.ticks(1)
        .when(vec![
            (p(0), mv(vec![mine, theirs], to)),
            (p(5), mv(vec![mine], to)),
            (Source::System, mv(vec![mine], to)),
            (Source::Economy, mv(vec![mine], to)),
            (Source::Economy, mv(vec![harv], to)),
            (p(0), mv(vec![events::UnitId(999)], to)),
        ])
        .then(|g| {
            assert_eq!(
                g.rejections(),
                vec![
                    RejectReason::NotYourUnit(theirs),
                    RejectReason::NotAPlayer,
                    RejectReason::NotAPlayer,
                    RejectReason::NotAllowed,
                    RejectReason::NoSuchUnit(events::UnitId(999)),
                ]
            );
        });
}

#[test]
fn an_order_naming_a_dead_unit_still_moves_the_living_ones() {
    let mut g = Given::blank(64, &[Cell::new(4, 4), Cell::new(60, 60)], |_| {});
    let a = g.unit(0, UnitKind::Rifleman, Cell::new(20, 20));
    let b = g.unit(0, UnitKind::Rifleman, Cell::new(21, 20));
    let gone = events::UnitId(999);
    let to = Cell::new(30, 20);
    let g = g
        .when(vec![(p(0), mv(vec![a, gone, b], to))])
        .then(|g| assert!(g.rejections().is_empty()))
        .ticks(20 * 30);
    // Both end in formation around the goal.
    for u in [a, b] {
        let c = g.cell_of(u);
        assert!(
            c.x.abs_diff(to.x) <= 2 && c.y.abs_diff(to.y) <= 2,
            "{u:?} at {c:?}, goal {to:?}"
        );
    }
}

#[test]
fn a_group_shares_one_path_and_spreads_into_formation() {
    let mut g = Given::blank(64, &[Cell::new(4, 60), Cell::new(60, 60)], |m| {
        for y in 0..=40 {
            m.set_terrain(Cell::new(32, y), Terrain::Rock);
        }
    });
    let units: Vec<_> = (0..9)
        .map(|i| g.unit(0, UnitKind::LightTank, Cell::new(18 + i % 3, 10 + i / 3)))
        .collect();
    let goal = Cell::new(46, 10);
    let g = g.when(vec![(p(0), mv(units.clone(), goal))]);
    // One shared search serves the whole group.
    assert_eq!(g.sim.queued_paths(), 0);
    g.ticks(20 * 70).then(|g| {
        let mut cells: Vec<Cell> = units.iter().map(|&u| g.cell_of(u)).collect();
        for c in &cells {
            assert!(
                c.x.abs_diff(goal.x) <= 3 && c.y.abs_diff(goal.y) <= 3,
                "{c:?} far from {goal:?}"
            );
        }
        cells.sort();
        cells.dedup();
        assert!(cells.len() >= 7, "units stacked: {cells:?}");
    });
}

#[test]
fn stop_halts_a_moving_unit() {
    let mut g = Given::duel();
    let u = g.unit(0, UnitKind::Rifleman, Cell::new(20, 20));
    let g = g
        .when(vec![(p(0), mv(vec![u], Cell::new(40, 20)))])
        .ticks(40)
        .when(vec![(p(0), Command::Stop(Stop { units: vec![u] }))]);
    let at = g.view(u).unwrap().pos;
    g.ticks(40).then(|g| {
        let now = g.view(u).unwrap().pos;
        assert!((now.x - at.x).abs() < 200, "{at:?} -> {now:?}");
        assert!(g
            .events
            .iter()
            .all(|e| !matches!(e, GameEvent::CommandRejected { .. })));
    });
}
