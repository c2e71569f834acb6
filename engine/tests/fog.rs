//! Fog of war: visibility masks in the view output follow sight circles.

mod common;

use common::{p, Given};
use events::cmd::MoveUnits;
use events::{Cell, Command, EntityKind, PlayerId, UnitKind, ViewKind};

#[test]
fn own_entities_are_always_visible_to_their_owner_only_until_seen() {
    let mut g = Given::duel();
    let scout = g.unit(0, UnitKind::ReconBike, Cell::new(20, 30));
    let enemy = g.unit(1, UnitKind::Harvester, Cell::new(40, 30));
    let g = g.ticks(1);
    assert_eq!(g.view(scout).unwrap().visible_to, 0b01);
    assert_eq!(g.view(enemy).unwrap().visible_to, 0b10);
    assert!(g.sim.sees(PlayerId(0), Cell::new(20, 30)));
    assert!(!g.sim.sees(PlayerId(1), Cell::new(20, 30)));
    // Drive the scout next to the enemy: both now see each other.
    g.when(vec![(
        p(0),
        Command::MoveUnits(MoveUnits {
            units: vec![scout],
            to: Cell::new(37, 30),
        }),
    )])
    .ticks(20 * 10)
    .then(|g| {
        assert_eq!(g.view(enemy).unwrap().visible_to, 0b11);
        assert_eq!(g.view(scout).unwrap().visible_to, 0b11);
        // The delta that revealed the enemy carried its new mask.
        let revealed = g
            .views
            .iter()
            .flat_map(|v| v.entities.iter())
            .any(|e| e.id == enemy && e.visible_to == 0b11);
        assert!(revealed);
    });
}

#[test]
fn deltas_carry_only_changes_and_keyframes_everything() {
    let mut g = Given::duel();
    let still = g.unit(0, UnitKind::Rifleman, Cell::new(20, 20));
    let g = g.ticks(3);
    let last = g.views.last().unwrap();
    assert_eq!(last.kind, ViewKind::Delta);
    assert!(last.entities.iter().all(|e| e.id != still));
    let key = g.sim.keyframe();
    assert_eq!(key.kind, ViewKind::Keyframe);
    assert_eq!(key.entities.len(), g.sim.entity_count());
    assert!(key.entities.iter().any(|e| e.id == still));
    assert_eq!(key.tick, last.tick);
    // Buildings are in the keyframe with their owner's bit.
    assert!(key
        .entities
        .iter()
        .filter(|e| matches!(e.kind, EntityKind::Building(_)))
        .all(|e| e.visible_to & (1 << e.owner.0) != 0));
}

#[test]
fn buildings_are_seen_when_any_footprint_cell_is() {
    let mut g = Given::duel();
    let yard_of_1 = g
        .sim
        .entities()
        .into_iter()
        .find(|e| e.owner == PlayerId(1) && matches!(e.kind, EntityKind::Building(_)))
        .unwrap();
    assert_eq!(yard_of_1.visible_to, 0b10);
    // A rifleman (sight 4) 5 cells from the yard's centre sees its near edge.
    let c = yard_of_1.pos.cell();
    g.unit(0, UnitKind::Rifleman, Cell::new(c.x - 5, c.y));
    g.ticks(1).then(|g| {
        assert_eq!(g.view(yard_of_1.id).unwrap().visible_to, 0b11);
    });
}

/// Every rejection reason of the last call.
fn rejected(g: &Given) -> Vec<events::RejectReason> {
    g.rejections()
}

#[test]
fn a_unit_in_the_fog_is_answered_like_one_that_does_not_exist() {
    use events::cmd::{AttackTarget, Sell, Stop};
    use events::RejectReason;
    let mut g = Given::duel();
    let mine = g.unit(0, UnitKind::LightTank, Cell::new(10, 10));
    let hidden = g.unit(1, UnitKind::Rifleman, Cell::new(40, 40));
    let seen = g.unit(1, UnitKind::Rifleman, Cell::new(12, 10));
    let yard_of_1 = g
        .sim
        .entities()
        .into_iter()
        .find(|e| e.owner == PlayerId(1) && matches!(e.kind, EntityKind::Building(_)))
        .unwrap()
        .id;
    let missing = events::UnitId(9_999);
    let g = g.ticks(1);
    assert_eq!(
        g.view(hidden).unwrap().visible_to & 1,
        0,
        "in player 0's fog"
    );
    assert_eq!(
        g.view(seen).unwrap().visible_to & 1,
        1,
        "in player 0's sight"
    );
    let stop = |units| Command::Stop(Stop { units });
    // Ordering an enemy unit: one in the fog gets the answer of an id that does not exist.
    let g = g.when(vec![(p(0), stop(vec![hidden]))]);
    assert_eq!(rejected(&g), vec![RejectReason::NoSuchUnit(hidden)]);
    let g = g.when(vec![(p(0), stop(vec![missing]))]);
    assert_eq!(rejected(&g), vec![RejectReason::NoSuchUnit(missing)]);
    let g = g.when(vec![(p(0), stop(vec![seen]))]);
    assert_eq!(rejected(&g), vec![RejectReason::NotYourUnit(seen)]);
    // A selection with a hidden enemy id still orders the own unit, as with a missing id.
    let g = g.when(vec![(p(0), stop(vec![mine, hidden]))]);
    assert_eq!(rejected(&g), vec![]);
    // Attacking or selling what lies in the fog: no such unit.
    let attack = |target| {
        Command::AttackTarget(AttackTarget {
            units: vec![mine],
            target,
        })
    };
    let g = g.when(vec![(p(0), attack(hidden))]);
    assert_eq!(rejected(&g), vec![RejectReason::NoSuchUnit(hidden)]);
    let g = g.when(vec![(p(0), attack(missing))]);
    assert_eq!(rejected(&g), vec![RejectReason::NoSuchUnit(missing)]);
    let g = g.when(vec![(
        p(0),
        Command::Sell(Sell {
            building: yard_of_1,
        }),
    )]);
    assert_eq!(rejected(&g), vec![RejectReason::NoSuchUnit(yard_of_1)]);
    // What the player sees can be attacked.
    let g = g.when(vec![(p(0), attack(seen))]);
    assert_eq!(rejected(&g), vec![]);
    // Bots are not bounded by a client's picture: the AI's knowledge is its own.
    let g = g.when(vec![(
        events::Source::Bot(PlayerId(1)),
        Command::AttackTarget(AttackTarget {
            units: vec![hidden],
            target: mine,
        }),
    )]);
    assert_eq!(rejected(&g), vec![]);
}
