//! Combat: damage per the warhead table, reloads, deaths, defence buildings, low power.

mod common;

use common::{p, rules, Given};
use events::cmd::{AttackTarget, HoldPosition, SetLowPower};
use events::{
    Armor, BuildingKind, Cell, Command, EntityKind, GameEvent, PlayerId, RejectReason, Source,
    UnitKind,
};

/// Damage of one volley of `shooter` against `armor`, from the rules file.
fn volley(shooter: EntityKind, armor: Armor) -> u32 {
    let r = rules();
    let w = match shooter {
        EntityKind::Unit(u) => r.unit(u).weapon.clone(),
        EntityKind::Building(b) => r.building(b).weapon.clone(),
    }
    .unwrap();
    w.damage * r.warhead_pct(w.warhead, armor) / 100 * w.shots
}

fn attack(units: Vec<events::UnitId>, target: events::UnitId) -> Command {
    Command::AttackTarget(AttackTarget { units, target })
}

#[test]
fn damage_matches_the_warhead_table() {
    let r = rules();
    // Each shooter against each armor class it can meet: one volley, exact damage.
    let cases = [
        (UnitKind::LightTank, UnitKind::Rifleman),
        (UnitKind::HeavyTank, UnitKind::MediumTank),
        (UnitKind::RocketSoldier, UnitKind::ReconBike),
        (UnitKind::Rifleman, UnitKind::LightTank),
        (UnitKind::ReconBike, UnitKind::Harvester),
    ];
    for (shooter, victim) in cases {
        let mut g = Given::duel();
        let a = g.unit(0, shooter, Cell::new(30, 30));
        let b = g.unit(1, victim, Cell::new(32, 30));
        let g = g.when(vec![
            (p(0), attack(vec![a], b)),
            // The victim holds and, if armed, fires back; that does not matter here.
            (p(1), Command::HoldPosition(HoldPosition { units: vec![b] })),
        ]);
        let expected = volley(EntityKind::Unit(shooter), r.unit(victim).armor);
        assert!(expected > 0);
        assert_eq!(
            g.hp(b),
            r.unit(victim).hp - expected,
            "{shooter:?} vs {victim:?}"
        );
        // Nothing more until the reload is over: the next volley is `reload` ticks later.
        let reload = r.ticks(r.unit(shooter).weapon.as_ref().unwrap().reload_ms);
        let g = g.ticks(u64::from(reload) - 1);
        assert_eq!(g.hp(b), r.unit(victim).hp - expected);
        let g = g.ticks(1);
        assert_eq!(g.hp(b), r.unit(victim).hp.saturating_sub(2 * expected));
    }
}

#[test]
fn a_unit_out_of_range_closes_in_then_kills() {
    let mut g = Given::duel();
    let a = g.unit(0, UnitKind::MediumTank, Cell::new(20, 30));
    let b = g.unit(1, UnitKind::Rifleman, Cell::new(40, 30));
    // The target is out of sight: a human could not name it, the AI (a bot) may.
    g.when(vec![(Source::Bot(PlayerId(0)), attack(vec![a], b))])
        .until(
            20 * 60,
            |e| matches!(e, GameEvent::EntityDestroyed { id, .. } if *id == b),
        )
        .then(|g| {
            assert!(g.view(b).is_none());
            assert!(g.last.contains(&GameEvent::EntityDestroyed {
                id: b,
                owner: PlayerId(1),
                kind: EntityKind::Unit(UnitKind::Rifleman),
                by: Some(PlayerId(0)),
            }));
            // The victim was removed from the view, seen by its owner at least.
            let removed = g
                .views
                .iter()
                .flat_map(|v| v.removed.iter())
                .find(|(id, _)| *id == b)
                .copied();
            assert!(removed.is_some_and(|(_, mask)| mask & 0b10 != 0));
        });
}

#[test]
fn idle_units_acquire_enemies_in_sight() {
    let mut g = Given::duel();
    let a = g.unit(0, UnitKind::LightTank, Cell::new(30, 30));
    let b = g.unit(1, UnitKind::Rifleman, Cell::new(33, 30));
    g.ticks(20).then(|g| {
        assert!(g.hp(b) < rules().unit(UnitKind::Rifleman).hp);
        assert!(g.hp(a) < rules().unit(UnitKind::LightTank).hp);
    });
}

#[test]
fn defence_towers_fire_and_laser_towers_need_power() {
    let r = rules();
    let mut g = Given::duel();
    let tower = g.building(0, BuildingKind::GuardTower, Cell::new(30, 30));
    let laser = g.building(0, BuildingKind::LaserTower, Cell::new(30, 20));
    let a = g.unit(1, UnitKind::HeavyTank, Cell::new(33, 30));
    let b = g.unit(1, UnitKind::HeavyTank, Cell::new(36, 20));
    let _ = tower;
    // Low power first: the laser tower stays silent, the guard tower fires.
    let g = g
        .when(vec![(
            Source::Economy,
            Command::SetLowPower(SetLowPower {
                player: PlayerId(0),
                low: true,
            }),
        )])
        .ticks(20)
        .then(|g| {
            assert!(g.sim.low_power(PlayerId(0)));
            assert_eq!(g.hp(b), r.unit(UnitKind::HeavyTank).hp);
            assert!(g.hp(a) < r.unit(UnitKind::HeavyTank).hp);
        });
    let before = g.hp(b);
    g.when(vec![(
        Source::Economy,
        Command::SetLowPower(SetLowPower {
            player: PlayerId(0),
            low: false,
        }),
    )])
    .ticks(10)
    .then(|g| {
        let laser_hit = volley(EntityKind::Building(BuildingKind::LaserTower), Armor::Heavy);
        assert_eq!(g.hp(b), before.saturating_sub(laser_hit));
        let _ = laser;
    });
}

#[test]
fn attacked_buildings_and_harvesters_are_reported() {
    let mut g = Given::duel();
    let harv = g.unit(0, UnitKind::Harvester, Cell::new(30, 30));
    let yard = g.building(0, BuildingKind::PowerPlant, Cell::new(30, 40));
    let a = g.unit(1, UnitKind::LightTank, Cell::new(33, 30));
    let b = g.unit(1, UnitKind::LightTank, Cell::new(33, 40));
    g.when(vec![
        (p(1), attack(vec![a], harv)),
        (p(1), attack(vec![b], yard)),
    ])
    .ticks(2)
    .then(|g| {
        assert!(g.events.contains(&GameEvent::HarvesterAttacked {
            unit: harv,
            owner: PlayerId(0),
            by: Some(PlayerId(1)),
        }));
        assert!(g.events.contains(&GameEvent::BuildingAttacked {
            id: yard,
            owner: PlayerId(0),
            by: Some(PlayerId(1)),
        }));
    });
}

#[test]
fn attacking_own_units_or_with_unarmed_units_is_rejected() {
    let mut g = Given::duel();
    let a = g.unit(0, UnitKind::LightTank, Cell::new(30, 30));
    let own = g.unit(0, UnitKind::Rifleman, Cell::new(31, 30));
    let harv = g.unit(0, UnitKind::Harvester, Cell::new(32, 30));
    // Within sight (a player names only what it sees), once the sight circles are drawn.
    let enemy = g.unit(1, UnitKind::Rifleman, Cell::new(34, 30));
    g.ticks(1)
        .when(vec![
            (p(0), attack(vec![a], own)),
            (p(0), attack(vec![harv], enemy)),
        ])
        .then(|g| {
            assert_eq!(
                g.rejections(),
                vec![RejectReason::WrongKind(own), RejectReason::WrongKind(harv)]
            );
        });
}

#[test]
fn a_player_without_buildings_is_defeated_and_the_other_wins() {
    let mut g = Given::duel();
    // Player 1's only building is its Construction Yard at the far corner.
    let yard = g
        .sim
        .entities()
        .into_iter()
        .find(|e| {
            e.owner == PlayerId(1) && e.kind == EntityKind::Building(BuildingKind::ConstructionYard)
        })
        .unwrap()
        .id;
    let tanks: Vec<_> = (0..6)
        .map(|i| g.unit(0, UnitKind::HeavyTank, Cell::new(50 + i, 54)))
        .collect();
    g.when(vec![(p(0), attack(tanks, yard))])
        .until(20 * 120, |e| matches!(e, GameEvent::MatchWon { .. }))
        .then(|g| {
            assert!(g.last.contains(&GameEvent::PlayerDefeated {
                player: PlayerId(1)
            }));
            assert!(g.last.contains(&GameEvent::MatchWon {
                winner: Some(PlayerId(0))
            }));
            assert_eq!(g.sim.winner(), Some(Some(PlayerId(0))));
            // The loser's remaining units went with it.
            assert!(g.sim.entities().iter().all(|e| e.owner == PlayerId(0)));
        });
}
