//! Combat effects of the view: every volley and every death by a shot is in the tick's
//! delta, with the players who see it.

mod common;

use common::{p, Given};
use events::cmd::{AttackTarget, HoldPosition};
use events::{Cell, Command, EntityKind, PlayerId, UnitKind, ViewKind, Warhead};

#[test]
fn view_frames_report_shots_and_deaths_to_those_who_see_them() {
    // Three players: 0 and 1 fight in the middle, 2 watches from a far corner.
    let mut g = Given::blank(
        64,
        &[Cell::new(4, 4), Cell::new(59, 59), Cell::new(4, 59)],
        |_| {},
    );
    let tank = g.unit(0, UnitKind::LightTank, Cell::new(40, 20));
    let man = g.unit(1, UnitKind::Rifleman, Cell::new(42, 20));
    let g = g
        .when(vec![
            (
                p(0),
                Command::AttackTarget(AttackTarget {
                    units: vec![tank],
                    target: man,
                }),
            ),
            (
                p(1),
                Command::HoldPosition(HoldPosition { units: vec![man] }),
            ),
        ])
        .ticks(20 * 15);
    assert!(g.view(man).is_none(), "the rifleman died");

    let shots: Vec<_> = g.views.iter().flat_map(|v| v.attacks.iter()).collect();
    let tank_shots: Vec<_> = shots.iter().filter(|s| s.attacker == tank).collect();
    // A rifleman has 50 hp; the tank's shell does 25 × 30 % = 7 per volley: 8 volleys.
    assert_eq!(tank_shots.len(), 8);
    for s in &tank_shots {
        assert_eq!(s.target, man);
        assert_eq!(s.kind, EntityKind::Unit(UnitKind::LightTank));
        assert_eq!(s.warhead, Warhead::ArmorPiercing);
        assert_eq!(s.from.cell(), Cell::new(40, 20));
        assert_eq!(s.to.cell(), Cell::new(42, 20));
        // Both fighters see it, the far player does not.
        assert_eq!(s.visible_to, 0b011);
    }
    // The rifleman fired back with bullets.
    assert!(shots
        .iter()
        .any(|s| s.attacker == man && s.target == tank && s.warhead == Warhead::Bullet));

    let deaths: Vec<_> = g.views.iter().flat_map(|v| v.deaths.iter()).collect();
    assert_eq!(deaths.len(), 1);
    let d = deaths[0];
    assert_eq!((d.id, d.owner, d.by), (man, PlayerId(1), tank));
    assert_eq!(d.kind, EntityKind::Unit(UnitKind::Rifleman));
    assert_eq!(d.warhead, Warhead::ArmorPiercing);
    assert_eq!(d.pos.cell(), Cell::new(42, 20));
    assert_eq!(d.visible_to, 0b011);
    // The death is in the same delta that removes the rifleman, after its last shot.
    let frame = g
        .views
        .iter()
        .find(|v| v.deaths.iter().any(|d| d.id == man))
        .unwrap();
    assert_eq!(frame.kind, ViewKind::Delta);
    assert!(frame.removed.iter().any(|(id, _)| *id == man));
    assert!(frame.attacks.iter().any(|s| s.attacker == tank));
    // Keyframes carry no effects.
    let key = g.sim.keyframe();
    assert!(key.attacks.is_empty() && key.deaths.is_empty());
}

#[test]
fn a_shot_from_the_fog_is_seen_by_its_target_and_a_watching_third_player() {
    let mut g = Given::blank(
        64,
        &[Cell::new(4, 4), Cell::new(59, 59), Cell::new(4, 59)],
        |_| {},
    );
    // A heavy tank (range 6) shoots a harvester (sight 3) from beyond its sight.
    let tank = g.unit(0, UnitKind::HeavyTank, Cell::new(30, 30));
    let harv = g.unit(1, UnitKind::Harvester, Cell::new(36, 30));
    // Player 2's rifleman (sight 4) stands next to the harvester, out of the tank's sight.
    g.unit(2, UnitKind::Rifleman, Cell::new(38, 33));
    let g = g
        .when(vec![(
            p(0),
            Command::AttackTarget(AttackTarget {
                units: vec![tank],
                target: harv,
            }),
        )])
        .ticks(5);
    let shot = g
        .views
        .iter()
        .flat_map(|v| v.attacks.iter())
        .find(|s| s.attacker == tank)
        .copied()
        .expect("the tank fired");
    assert_eq!(shot.warhead, Warhead::ArmorPiercing);
    // Everyone: the shooter, the victim's owner, and player 2 who sees the victim.
    assert_eq!(shot.visible_to, 0b111);
}

#[test]
fn effects_are_not_part_of_the_state_hash() {
    let mut g = Given::duel();
    let a = g.unit(0, UnitKind::MediumTank, Cell::new(30, 30));
    let b = g.unit(1, UnitKind::LightTank, Cell::new(33, 30));
    let mut g = g
        .when(vec![(
            p(0),
            Command::AttackTarget(AttackTarget {
                units: vec![a],
                target: b,
            }),
        )])
        .ticks(2);
    let shot = g
        .views
        .iter()
        .flat_map(|v| v.attacks.iter())
        .copied()
        .next()
        .expect("a shot");
    let mut scratch = Vec::new();
    let before = engine::sim::hash::state_hash(g.sim.state(), &mut scratch);
    g.sim.state_mut().shots.push(shot);
    g.sim.state_mut().deaths.push(events::DeathView {
        id: shot.target,
        owner: PlayerId(1),
        kind: EntityKind::Unit(UnitKind::LightTank),
        pos: shot.to,
        by: shot.attacker,
        warhead: shot.warhead,
        visible_to: 0b11,
    });
    let after = engine::sim::hash::state_hash(g.sim.state(), &mut scratch);
    assert_eq!(before, after);
}
