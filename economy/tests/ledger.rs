//! Given/when/then tests of the economy core: credits, queues, power, prerequisites,
//! building placement and rejections.

use economy::testing::{Harness, Then};
use economy::JobStatus;
use events::cmd::{CancelProduction, PlaceBuilding, QueueProduction};
use events::{
    BuildingKind, Cell, Command, EntityKind, GameEvent, Item, LedgerEvent, PlayerId, QueueKind,
    RejectReason, Source, UnitKind,
};

use BuildingKind::*;

const P0: Source = Source::Player(PlayerId(0));

fn queue(item: Item) -> Command {
    Command::QueueProduction(QueueProduction { item })
}

fn build(h: &mut Harness, p: u8, kind: BuildingKind) {
    let r = h.when(Source::Player(PlayerId(p)), queue(Item::Building(kind)));
    assert!(r.rejected().is_empty(), "{:?}", r.rejected());
}

fn ticks_for(h: &Harness, item: Item) -> u64 {
    let ms = match item {
        Item::Unit(u) => h.rules.unit(u).build_ms,
        Item::Building(b) => h.rules.building(b).build_ms,
    };
    u64::from(h.rules.ticks(ms))
}

#[test]
fn players_start_with_the_rules_credits() {
    let h = Harness::new(2);
    assert_eq!(
        h.ledger(1).credits,
        u64::from(h.rules.economy.starting_credits)
    );
}

#[test]
fn a_building_is_paid_progressively_then_waits_ready_then_is_placed() {
    let mut h = Harness::new(1).with_yards();
    let start = h.ledger(0).credits;
    let cost = u64::from(h.rules.building(PowerPlant).cost);
    let n = ticks_for(&h, Item::Building(PowerPlant));
    build(&mut h, 0, PowerPlant);
    // The command tick already built one tick's worth.
    let half = h.idle(n / 2 - 1);
    let paid = start - h.ledger(0).credits;
    assert!(paid > 0 && paid < cost, "paid {paid} of {cost}");
    assert!(half
        .iter()
        .flat_map(|s| s.ledger_events())
        .any(|e| matches!(e, LedgerEvent::CreditsChanged { delta, .. } if *delta < 0)));
    h.idle(n - n / 2);
    assert_eq!(start - h.ledger(0).credits, cost);
    assert_eq!(h.ledger(0).ready_building(), Some((PowerPlant, false)));

    // Place: the economy asks the engine to construct it.
    let at = Cell::new(20, 20);
    let r = h.when(
        P0,
        Command::PlaceBuilding(PlaceBuilding {
            building: PowerPlant,
            at,
        }),
    );
    let request = match r.commands().as_slice() {
        [Command::ConstructBuilding(c)] => {
            assert_eq!((c.player, c.kind, c.at), (PlayerId(0), PowerPlant, at));
            c.request
        }
        other => panic!("expected one ConstructBuilding, got {other:?}"),
    };
    // The engine answers: placed. The queue is free and power changed.
    let id = h.new_unit_id();
    let r = h.given(vec![GameEvent::BuildingPlaced {
        id,
        owner: PlayerId(0),
        kind: PowerPlant,
        at,
        request,
    }]);
    assert!(h.ledger(0).queue(QueueKind::Buildings).is_none());
    assert!(r.ledger_events().iter().any(|e| matches!(
        e,
        LedgerEvent::PowerChanged { output, .. } if *output == h.rules.building(PowerPlant).power
    )));
}

#[test]
fn a_failed_placement_keeps_the_building_ready() {
    let mut h = Harness::new(1).with_yards();
    build(&mut h, 0, PowerPlant);
    h.idle(ticks_for(&h, Item::Building(PowerPlant)));
    let place = Command::PlaceBuilding(PlaceBuilding {
        building: PowerPlant,
        at: Cell::new(1, 1),
    });
    let r = h.when(P0, place.clone());
    let Some(Command::ConstructBuilding(c)) = r.commands().first().cloned() else {
        panic!("no construct")
    };
    // While the engine has not answered, another place is refused.
    assert_eq!(
        h.when(P0, place.clone()).rejected(),
        vec![RejectReason::QueueBusy]
    );
    h.given(vec![GameEvent::PlacementFailed {
        owner: PlayerId(0),
        kind: PowerPlant,
        request: c.request,
        reason: RejectReason::BadPlacement("blocked".into()),
    }]);
    assert_eq!(h.ledger(0).ready_building(), Some((PowerPlant, false)));
    let r = h.when(P0, place);
    assert!(
        matches!(r.commands().as_slice(), [Command::ConstructBuilding(c2)] if c2.request != c.request)
    );
}

#[test]
fn a_finished_unit_is_spawned_by_the_engine() {
    let mut h = Harness::new(1).with_yards();
    h.owns(PlayerId(0), PowerPlant);
    h.owns(PlayerId(0), Barracks);
    let item = Item::Unit(UnitKind::Rifleman);
    h.when(P0, queue(item));
    let r = h
        .until(ticks_for(&h, item) + 1, |r| !r.commands.is_empty())
        .expect("unit finished");
    assert_eq!(
        r.commands(),
        vec![Command::SpawnUnit(events::cmd::SpawnUnit {
            player: PlayerId(0),
            kind: UnitKind::Rifleman
        })]
    );
    assert!(r.commands.iter().all(|(s, _)| *s == Source::Economy));
    assert!(h.ledger(0).queue(QueueKind::Infantry).is_none());
}

#[test]
fn a_unit_the_engine_cannot_place_is_refunded() {
    let mut h = Harness::new(1).with_yards();
    h.owns(PlayerId(0), PowerPlant);
    h.owns(PlayerId(0), Barracks);
    let item = Item::Unit(UnitKind::Rifleman);
    let start = h.ledger(0).credits;
    h.when(P0, queue(item));
    h.until(ticks_for(&h, item) + 1, |r| !r.commands.is_empty())
        .expect("unit finished");
    let cost = u64::from(h.rules.unit(UnitKind::Rifleman).cost);
    assert_eq!(h.ledger(0).credits, start - cost, "paid in full");
    // The barracks died before the unit could leave it.
    h.given(vec![GameEvent::SpawnFailed {
        command: uuid::Uuid::nil(),
        player: PlayerId(0),
        kind: UnitKind::Rifleman,
        reason: events::RejectReason::NoProducer,
    }]);
    assert_eq!(h.ledger(0).credits, start, "the cost is refunded");
}

#[test]
fn three_queues_run_in_parallel_one_item_each() {
    let mut h = Harness::new(1).with_yards();
    for k in [PowerPlant, Barracks, Refinery, WarFactory] {
        h.owns(PlayerId(0), k);
    }
    build(&mut h, 0, PowerPlant);
    assert!(h
        .when(P0, queue(Item::Unit(UnitKind::Rifleman)))
        .rejected()
        .is_empty());
    assert!(h
        .when(P0, queue(Item::Unit(UnitKind::LightTank)))
        .rejected()
        .is_empty());
    assert_eq!(
        h.when(P0, queue(Item::Unit(UnitKind::RocketSoldier)))
            .rejected(),
        vec![RejectReason::QueueBusy]
    );
    assert_eq!(h.ledger(0).queues.len(), 3);
}

#[test]
fn invalid_requests_are_rejected_with_a_reason() {
    let mut h = Harness::new(2).with_yards();
    // Missing prerequisite: barracks need a power plant.
    assert_eq!(
        h.when(P0, queue(Item::Building(Barracks))).rejected(),
        vec![RejectReason::MissingPrerequisite(PowerPlant)]
    );
    // Units need their producer.
    assert_eq!(
        h.when(P0, queue(Item::Unit(UnitKind::HeavyTank)))
            .rejected(),
        vec![RejectReason::MissingPrerequisite(WarFactory)]
    );
    // Wrong player: not in the match, or not a player at all.
    let q = queue(Item::Building(PowerPlant));
    assert_eq!(
        h.when(Source::Player(PlayerId(5)), q.clone()).rejected(),
        vec![RejectReason::NotAPlayer]
    );
    assert_eq!(
        h.when(Source::Economy, q.clone()).rejected(),
        vec![RejectReason::NotAPlayer]
    );
    // Nothing to place or cancel.
    assert_eq!(
        h.when(
            P0,
            Command::PlaceBuilding(PlaceBuilding {
                building: PowerPlant,
                at: Cell::new(3, 3)
            })
        )
        .rejected(),
        vec![RejectReason::NothingReady]
    );
    assert_eq!(
        h.when(
            P0,
            Command::CancelProduction(CancelProduction {
                queue: QueueKind::Vehicles
            })
        )
        .rejected(),
        vec![RejectReason::NothingReady]
    );
    // The Construction Yard is not for sale.
    assert_eq!(
        h.when(P0, queue(Item::Building(ConstructionYard)))
            .rejected(),
        vec![RejectReason::NotAllowed]
    );
    // No funds: heavy tanks until the money runs out, then ask for a building.
    let p1 = Source::Player(PlayerId(1));
    for k in [PowerPlant, Refinery, WarFactory] {
        h.owns(PlayerId(1), k);
    }
    let heavy = Item::Unit(UnitKind::HeavyTank);
    for _ in 0..10 {
        if h.ledger(1).credits == 0 {
            break;
        }
        h.when(p1, queue(heavy));
        h.idle(ticks_for(&h, heavy));
    }
    assert_eq!(h.ledger(1).credits, 0);
    assert_eq!(
        h.when(p1, queue(Item::Building(PowerPlant))).rejected(),
        vec![RejectReason::NoFunds]
    );
    // Defeated players command nothing.
    h.given(vec![GameEvent::PlayerDefeated {
        player: PlayerId(1),
    }]);
    assert_eq!(
        h.when(p1, queue(Item::Building(PowerPlant))).rejected(),
        vec![RejectReason::Defeated]
    );
}

#[test]
fn production_pauses_at_zero_credits_and_resumes_with_income() {
    let mut h = Harness::new(1).with_yards();
    h.owns(PlayerId(0), PowerPlant);
    h.owns(PlayerId(0), Refinery);
    h.owns(PlayerId(0), WarFactory);
    // Spend down to a little with a heavy tank, then a second one stalls.
    let start = h.ledger(0).credits;
    let heavy = Item::Unit(UnitKind::HeavyTank);
    let cost = u64::from(h.rules.unit(UnitKind::HeavyTank).cost);
    assert!(start > cost * 3 && start < cost * 4);
    for _ in 0..3 {
        h.when(P0, queue(heavy));
        h.idle(ticks_for(&h, heavy));
    }
    h.when(P0, queue(heavy));
    let stalled = h
        .until(ticks_for(&h, heavy), |r| {
            r.ledger_events().iter().any(|e| {
                matches!(
                    e,
                    LedgerEvent::QueueChanged {
                        state: Some(events::ProductionState::Paused { .. }),
                        ..
                    }
                )
            })
        })
        .is_some();
    assert!(stalled);
    assert_eq!(h.ledger(0).credits, 0);
    let job = h
        .ledger(0)
        .queue(QueueKind::Vehicles)
        .cloned()
        .expect("job");
    assert_eq!(job.status, JobStatus::Paused);
    assert_eq!(u64::from(job.paid), start - 3 * cost);

    // A harvester unloads: income resumes production.
    let r = h.given(vec![GameEvent::HarvesterUnloaded {
        unit: events::UnitId(999),
        owner: PlayerId(0),
        refinery: events::UnitId(2),
        bails: 28,
        credits: 700,
    }]);
    assert!(r.ledger_events().iter().any(|e| matches!(
        e,
        LedgerEvent::CreditsChanged { delta, .. } if *delta > 0
    )));
    assert_eq!(
        h.ledger(0).queue(QueueKind::Vehicles).map(|j| j.status),
        Some(JobStatus::Building)
    );
}

#[test]
fn cancel_refunds_what_was_paid() {
    let mut h = Harness::new(1).with_yards();
    let start = h.ledger(0).credits;
    build(&mut h, 0, PowerPlant);
    h.idle(20);
    assert!(h.ledger(0).credits < start);
    let r = h.when(
        P0,
        Command::CancelProduction(CancelProduction {
            queue: QueueKind::Buildings,
        }),
    );
    assert!(r.rejected().is_empty());
    assert_eq!(h.ledger(0).credits, start);
    assert!(h.ledger(0).queue(QueueKind::Buildings).is_none());
}

#[test]
fn selling_refunds_half_once() {
    let mut h = Harness::new(1).with_yards();
    let id = h.owns(PlayerId(0), Refinery);
    let start = h.ledger(0).credits;
    let sold = GameEvent::BuildingSold {
        id,
        owner: PlayerId(0),
        kind: Refinery,
    };
    h.given(vec![sold.clone()]);
    let refund = u64::from(h.rules.building(Refinery).cost)
        * u64::from(h.rules.economy.sell_refund_pct)
        / 100;
    assert_eq!(h.ledger(0).credits, start + refund);
    h.given(vec![sold]);
    assert_eq!(h.ledger(0).credits, start + refund, "no double refund");
    assert!(!h.ledger(0).owns(Refinery));
}

#[test]
fn low_power_slows_production_and_is_sent_to_the_engine() {
    let mut h = Harness::new(1).with_yards();
    h.owns(PlayerId(0), PowerPlant);
    h.owns(PlayerId(0), Barracks);
    // Enough consumers to go low.
    let mut r = None;
    for _ in 0..3 {
        let e = h.placed_event(PlayerId(0), Refinery, 0);
        r = Some(h.given(vec![e]));
    }
    let r = r.expect("steps ran");
    assert!(r
        .commands()
        .contains(&Command::SetLowPower(events::cmd::SetLowPower {
            player: PlayerId(0),
            low: true
        })));
    let power = h.ledger(0).power;
    assert!(power.is_low());
    let speed = power.speed_pct(&h.rules);
    assert!(speed < 100 && speed >= h.rules.economy.min_production_speed_pct);

    // Another power plant lifts the low state.
    let e = h.placed_event(PlayerId(0), PowerPlant, 0);
    let r = h.given(vec![e]);
    assert!(r
        .commands()
        .contains(&Command::SetLowPower(events::cmd::SetLowPower {
            player: PlayerId(0),
            low: false
        })));
}

#[test]
fn low_power_build_time_is_output_over_consumption() {
    let mut h = Harness::new(1).with_yards();
    h.owns(PlayerId(0), PowerPlant);
    h.owns(PlayerId(0), Barracks);
    for _ in 0..3 {
        let e = h.placed_event(PlayerId(0), Refinery, 0);
        h.given(vec![e]);
    }
    let speed = h.ledger(0).power.speed_pct(&h.rules);
    let item = Item::Unit(UnitKind::Rifleman);
    let full = ticks_for(&h, item);
    h.when(P0, queue(item));
    let mut n = 1;
    while h.ledger(0).queue(QueueKind::Infantry).is_some() {
        h.idle(1);
        n += 1;
        assert!(n < full * 10);
    }
    assert_eq!(n, (full * 100).div_ceil(u64::from(speed)));
}

#[test]
fn prerequisites_follow_owned_buildings() {
    let mut h = Harness::new(1).with_yards();
    let pp = h.owns(PlayerId(0), PowerPlant);
    h.given(vec![GameEvent::EntityDestroyed {
        id: pp,
        owner: PlayerId(0),
        kind: EntityKind::Building(PowerPlant),
        by: Some(PlayerId(1)),
    }]);
    assert_eq!(
        h.when(P0, queue(Item::Building(Barracks))).rejected(),
        vec![RejectReason::MissingPrerequisite(PowerPlant)]
    );
    h.owns(PlayerId(0), PowerPlant);
    assert!(h
        .when(P0, queue(Item::Building(Barracks)))
        .rejected()
        .is_empty());
}

#[test]
fn every_step_names_its_inputs_and_hashes_its_state() {
    let mut h = Harness::new(1).with_yards();
    let r = h.step(
        vec![],
        vec![
            (P0, queue(Item::Building(PowerPlant))),
            (P0, queue(Item::Building(Refinery))),
        ],
    );
    assert_eq!(r.committed.consumed.len(), 3);
    assert!(r.committed.consumed[0].ends_with("-0"));
    assert_eq!(r.committed.hash, h.eco.hash());
    assert_eq!(
        r.rejected(),
        vec![RejectReason::MissingPrerequisite(PowerPlant)]
    );
}
