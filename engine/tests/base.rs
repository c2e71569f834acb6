//! Base management in the engine: rally points for producing buildings (units that come
//! out go there), and the economy's paid repair steps (heal up to full health, always
//! answered so the economy can refund).

mod common;

use common::{p, rules, Given};
use engine::Sim;
use events::cmd::{HealBuilding, SetRally, SpawnUnit};
use events::{BuildingKind, Cell, Command, GameEvent, PlayerId, RejectReason, Source, UnitKind};

fn rally(building: events::UnitId, at: Cell) -> Command {
    Command::SetRally(SetRally { building, at })
}

fn spawn(kind: UnitKind) -> Command {
    Command::SpawnUnit(SpawnUnit {
        player: PlayerId(0),
        kind,
    })
}

fn heal(building: events::UnitId, hp: u32) -> Command {
    Command::HealBuilding(HealBuilding {
        player: PlayerId(0),
        building,
        hp,
    })
}

#[test]
fn units_leaving_a_building_with_a_rally_point_go_there() {
    let mut g = Given::duel();
    let barracks = g.building(0, BuildingKind::Barracks, Cell::new(10, 4));
    let goal = Cell::new(20, 20);
    let g = g
        .when(vec![(p(0), rally(barracks, goal))])
        .then(|g| assert!(g.rejections().is_empty(), "{:?}", g.rejections()))
        .when(vec![(Source::Economy, spawn(UnitKind::Rifleman))])
        .ticks(20 * 30);
    let riflemen = g.units_of(0, UnitKind::Rifleman);
    // The start riflemen stay by the yard; the new one walked to the rally point.
    let new = *riflemen.last().unwrap();
    assert_eq!(g.cell_of(new), goal);
}

#[test]
fn without_a_rally_point_units_wait_by_the_building() {
    let mut g = Given::duel();
    g.building(0, BuildingKind::Barracks, Cell::new(10, 4));
    let g = g
        .when(vec![(Source::Economy, spawn(UnitKind::Rifleman))])
        .ticks(20 * 10);
    let new = *g.units_of(0, UnitKind::Rifleman).last().unwrap();
    let c = g.cell_of(new);
    assert!(c.x.abs_diff(10) <= 4 && c.y.abs_diff(4) <= 4, "{c:?}");
}

#[test]
fn rally_points_are_for_own_producing_buildings_on_the_map() {
    let mut g = Given::duel();
    let power = g.building(0, BuildingKind::PowerPlant, Cell::new(10, 4));
    let theirs = g.building(1, BuildingKind::Barracks, Cell::new(50, 50));
    let mine = g.building(0, BuildingKind::WarFactory, Cell::new(10, 10));
    g.when(vec![
        (p(0), rally(power, Cell::new(5, 5))),
        (p(0), rally(theirs, Cell::new(5, 5))),
        (p(0), rally(mine, Cell::new(70, 5))),
        (Source::Economy, rally(mine, Cell::new(5, 5))),
    ])
    .then(|g| {
        assert_eq!(
            g.rejections(),
            vec![
                RejectReason::WrongKind(power),
                RejectReason::NotYourUnit(theirs),
                RejectReason::OutOfMap(Cell::new(70, 5)),
                RejectReason::NotAllowed,
            ]
        );
    });
}

#[test]
fn a_repair_step_heals_up_to_full_health_and_always_answers() {
    let mut g = Given::duel();
    let pp = g.building(0, BuildingKind::PowerPlant, Cell::new(10, 4));
    let max = rules().building(BuildingKind::PowerPlant).hp;
    set_hp(&mut g, pp, max - 30);
    let repaired = |g: &Given| {
        g.last
            .iter()
            .find_map(|e| match e {
                GameEvent::BuildingRepaired {
                    requested,
                    healed,
                    hp,
                    max_hp,
                    ..
                } => Some((*requested, *healed, *hp, *max_hp)),
                _ => None,
            })
            .expect("an answer")
    };
    g.when(vec![(Source::Economy, heal(pp, 20))])
        .then(|g| {
            assert_eq!(repaired(g), (20, 20, max - 10, max));
            assert_eq!(g.hp(pp), max - 10);
        })
        .when(vec![(Source::Economy, heal(pp, 20))])
        .then(|g| {
            assert_eq!(repaired(g), (20, 10, max, max));
            assert_eq!(g.hp(pp), max);
        })
        // A building that is gone: nothing healed.
        .when(vec![(Source::Economy, heal(events::UnitId(999), 20))])
        .then(|g| assert_eq!(repaired(g), (20, 0, 0, 0)))
        // Only the economy heals.
        .when(vec![(p(0), heal(pp, 20))])
        .then(|g| assert_eq!(g.rejections(), vec![RejectReason::NotAllowed]));
}

fn set_hp(g: &mut Given, id: events::UnitId, hp: u32) {
    let st = g.sim.state_mut();
    let e = st.entity(id).unwrap();
    st.world
        .get::<&mut engine::sim::state::Health>(e)
        .unwrap()
        .hp = hp;
}

#[test]
fn a_rally_point_survives_a_snapshot_and_is_hashed() {
    let mut g = Given::duel();
    let barracks = g.building(0, BuildingKind::Barracks, Cell::new(10, 4));
    let before = g.sim.hash();
    let g = g.when(vec![(p(0), rally(barracks, Cell::new(30, 30)))]);
    let mut plain = Given::duel();
    plain.building(0, BuildingKind::Barracks, Cell::new(10, 4));
    let plain = plain.when(vec![]);
    assert_ne!(
        g.sim.hash(),
        plain.sim.hash(),
        "the rally point is in the hash"
    );
    assert_ne!(before, g.sim.hash());
    let back = Sim::restore(rules(), &g.sim.snapshot()).expect("restore");
    assert_eq!(back.hash(), g.sim.hash());
    assert_eq!(
        back.state().records().last().and_then(|r| r.rally),
        g.sim.state().records().last().and_then(|r| r.rally)
    );
    assert!(g.sim.state().records().iter().any(|r| r.rally.is_some()));
}
