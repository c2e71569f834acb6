//! Given/when/then tests of C&C production and base management in the economy: stacked
//! queues, hold and resume, cancel of stacked and held items, the production speed in
//! the ledger, and paid repair steps (the whole stack's repair is in
//! replay-tool/tests/income.rs).

use economy::state::repair_cost;
use economy::testing::{Harness, Then};
use events::cmd::{CancelProduction, HoldProduction, QueueProduction, RepairBuilding};
use events::{
    BuildingKind, Command, GameEvent, Item, LedgerEvent, PlayerId, ProductionState, QueueKind,
    RejectReason, Source, UnitId, UnitKind,
};

use BuildingKind::*;

const P0: Source = Source::Player(PlayerId(0));
const RIFLEMAN: Item = Item::Unit(UnitKind::Rifleman);

fn queue(item: Item) -> Command {
    Command::QueueProduction(QueueProduction { item })
}

fn cancel(queue: QueueKind) -> Command {
    Command::CancelProduction(CancelProduction { queue })
}

fn hold(queue: QueueKind, hold: bool) -> Command {
    Command::HoldProduction(HoldProduction { queue, hold })
}

fn repair(building: UnitId, on: bool) -> Command {
    Command::RepairBuilding(RepairBuilding { building, on })
}

fn spawns(r: &economy::StepResult) -> usize {
    r.commands()
        .iter()
        .filter(|c| matches!(c, Command::SpawnUnit(_)))
        .count()
}

fn with_barracks() -> Harness {
    let mut h = Harness::new(1).with_yards();
    h.owns(PlayerId(0), PowerPlant);
    h.owns(PlayerId(0), Barracks);
    h
}

#[test]
fn a_queue_stacks_one_item_up_to_the_limit_and_builds_them_one_after_another() {
    let mut h = with_barracks();
    let limit = h.rules.economy.queue_limit;
    assert_eq!(limit, 5);
    let start = h.ledger(0).credits;
    for n in 1..=limit {
        let r = h.when(P0, queue(RIFLEMAN));
        assert!(r.rejected().is_empty(), "{:?}", r.rejected());
        assert_eq!(h.ledger(0).queue(QueueKind::Infantry).unwrap().count(), n);
    }
    // One more of it is refused, and another item in the same queue too.
    assert_eq!(
        h.when(P0, queue(RIFLEMAN)).rejected(),
        vec![RejectReason::QueueFull]
    );
    assert_eq!(
        h.when(P0, queue(Item::Unit(UnitKind::RocketSoldier)))
            .rejected(),
        vec![RejectReason::QueueBusy]
    );
    // They come out one at a time; the count on the queue falls with each.
    let per = u64::from(h.rules.ticks(h.rules.unit(UnitKind::Rifleman).build_ms));
    let mut out = 0;
    let mut counts = Vec::new();
    for _ in 0..per * u64::from(limit) + 5 {
        let r = h.step(Vec::new(), Vec::new());
        if spawns(&r) > 0 {
            out += spawns(&r);
            counts.push(
                h.ledger(0)
                    .queue(QueueKind::Infantry)
                    .map_or(0, |j| j.count()),
            );
        }
    }
    assert_eq!(out, limit as usize);
    assert_eq!(counts, vec![4, 3, 2, 1, 0]);
    let cost = u64::from(h.rules.unit(UnitKind::Rifleman).cost);
    assert_eq!(start - h.ledger(0).credits, cost * u64::from(limit));
}

#[test]
fn the_ledger_shows_the_stack_count() {
    let mut h = with_barracks();
    h.when(P0, queue(RIFLEMAN));
    let r = h.when(P0, queue(RIFLEMAN));
    assert!(r.ledger_events().iter().any(|e| matches!(
        e,
        LedgerEvent::QueueChanged {
            state: Some(ProductionState::Building { queued: 1, .. }),
            ..
        }
    )));
}

#[test]
fn buildings_do_not_stack() {
    let mut h = Harness::new(1).with_yards();
    h.when(P0, queue(Item::Building(PowerPlant)));
    assert_eq!(
        h.when(P0, queue(Item::Building(PowerPlant))).rejected(),
        vec![RejectReason::QueueFull]
    );
}

#[test]
fn a_held_item_stops_paying_and_resumes_where_it_was() {
    let mut h = with_barracks();
    h.when(P0, queue(RIFLEMAN));
    h.idle(10);
    let r = h.when(P0, hold(QueueKind::Infantry, true));
    assert!(r.ledger_events().iter().any(|e| matches!(
        e,
        LedgerEvent::QueueChanged {
            state: Some(ProductionState::Held { .. }),
            ..
        }
    )));
    let (credits, paid) = (
        h.ledger(0).credits,
        h.ledger(0).queue(QueueKind::Infantry).unwrap().paid,
    );
    let idle = h.idle(200);
    assert!(
        idle.iter().all(|r| spawns(r) == 0),
        "a held item never finishes"
    );
    assert_eq!(h.ledger(0).credits, credits);
    assert_eq!(h.ledger(0).queue(QueueKind::Infantry).unwrap().paid, paid);
    h.when(P0, hold(QueueKind::Infantry, false));
    let per = u64::from(h.rules.ticks(h.rules.unit(UnitKind::Rifleman).build_ms));
    assert!(h.until(per, |r| spawns(r) == 1).is_some());
    // Holding an empty queue is refused.
    assert_eq!(
        h.when(P0, hold(QueueKind::Vehicles, true)).rejected(),
        vec![RejectReason::NothingReady]
    );
}

#[test]
fn cancel_takes_the_waiting_items_first_then_refunds_the_held_current_one() {
    let mut h = with_barracks();
    let start = h.ledger(0).credits;
    for _ in 0..3 {
        h.when(P0, queue(RIFLEMAN));
    }
    h.idle(15);
    h.when(P0, hold(QueueKind::Infantry, true));
    let spent = start - h.ledger(0).credits;
    assert!(spent > 0);
    // The two waiting ones go first: nothing was paid for them.
    for left in [2, 1] {
        assert!(h
            .when(P0, cancel(QueueKind::Infantry))
            .rejected()
            .is_empty());
        let j = h.ledger(0).queue(QueueKind::Infantry).unwrap();
        assert_eq!((j.count(), j.held), (left, true));
        assert_eq!(start - h.ledger(0).credits, spent);
    }
    // Then the held one, with a refund of what it cost so far.
    let r = h.when(P0, cancel(QueueKind::Infantry));
    assert!(r.ledger_events().iter().any(|e| matches!(
        e,
        LedgerEvent::QueueChanged {
            queue: QueueKind::Infantry,
            state: None,
            ..
        }
    )));
    assert_eq!(h.ledger(0).credits, start);
    assert!(h.ledger(0).queue(QueueKind::Infantry).is_none());
}

#[test]
fn low_power_speed_is_in_the_ledger() {
    let mut h = Harness::new(1).with_yards();
    h.owns(PlayerId(0), PowerPlant);
    let laser = h_placed(&mut h, LaserTower);
    let r = h.given(vec![laser]);
    let speed = r.ledger_events().iter().find_map(|e| match e {
        LedgerEvent::PowerChanged { speed_pct, .. } => Some(*speed_pct),
        _ => None,
    });
    let p = h.ledger(0).power;
    assert!(p.is_low());
    assert_eq!(speed, Some(p.speed_pct(&h.rules)));
    assert!(speed.unwrap() < 100);
}

fn h_placed(h: &mut Harness, kind: BuildingKind) -> GameEvent {
    h.placed_event(PlayerId(0), kind, 0)
}

/// Runs ticks until the economy sends a repair step; returns it.
fn next_heal(h: &mut Harness) -> events::cmd::HealBuilding {
    let every = u64::from(h.rules.ticks(h.rules.economy.repair_step_ms));
    for _ in 0..=every {
        let r = h.step(Vec::new(), Vec::new());
        if let Some(Command::HealBuilding(c)) = r
            .commands()
            .into_iter()
            .find(|c| matches!(c, Command::HealBuilding(_)))
        {
            return c;
        }
    }
    panic!("no repair step within {every} ticks");
}

fn repaired(b: UnitId, requested: u32, healed: u32, hp: u32, max_hp: u32) -> GameEvent {
    GameEvent::BuildingRepaired {
        id: b,
        owner: PlayerId(0),
        requested,
        healed,
        hp,
        max_hp,
    }
}

#[test]
fn repair_charges_per_step_refunds_what_was_not_healed_and_stops_at_full_health() {
    let mut h = Harness::new(1).with_yards();
    let b = h.owns(PlayerId(0), PowerPlant);
    let e = &h.rules.economy;
    let (step, per) = (e.repair_hp_per_step, e.repair_credits_per_100_hp);
    let r = h.when(P0, repair(b, true));
    assert!(r.ledger_events().iter().any(|e| matches!(
        e,
        LedgerEvent::RepairChanged { on: true, building, .. } if *building == b
    )));
    let before = h.ledger(0).credits;
    let heal = next_heal(&mut h);
    assert_eq!(
        (heal.player, heal.building, heal.hp),
        (PlayerId(0), b, step)
    );
    assert_eq!(before - h.ledger(0).credits, repair_cost(per, step));
    // The engine healed all of it; still short of full: repair goes on.
    h.given(vec![repaired(b, step, step, 300, 400)]);
    assert!(h.ledger(0).repairing.contains(&b));
    let mid = h.ledger(0).credits;
    next_heal(&mut h);
    // Only 5 points were missing: the rest comes back and the repair stops.
    let r = h.given(vec![repaired(b, step, 5, 400, 400)]);
    assert_eq!(
        mid - h.ledger(0).credits,
        repair_cost(per, step) - (repair_cost(per, step) - repair_cost(per, 5))
    );
    assert!(!h.ledger(0).repairing.contains(&b));
    assert!(r
        .ledger_events()
        .iter()
        .any(|e| matches!(e, LedgerEvent::RepairChanged { on: false, .. })));
    let quiet = h.idle(40);
    assert!(quiet.iter().all(|r| !r
        .commands()
        .iter()
        .any(|c| matches!(c, Command::HealBuilding(_)))));
}

#[test]
fn repair_stops_when_the_credits_run_out_and_when_the_building_goes() {
    let mut h = Harness::new(1).with_yards();
    let b = h.owns(PlayerId(0), PowerPlant);
    h.when(P0, repair(b, true));
    // Spend everything: heavy tanks until the credits are gone.
    h.owns(PlayerId(0), Refinery);
    h.owns(PlayerId(0), WarFactory);
    let heavy = Item::Unit(UnitKind::HeavyTank);
    for _ in 0..10 {
        if h.ledger(0).credits == 0 {
            break;
        }
        h.when(P0, queue(heavy));
        h.idle(u64::from(
            h.rules.ticks(h.rules.unit(UnitKind::HeavyTank).build_ms),
        ));
    }
    assert_eq!(h.ledger(0).credits, 0);
    let r = h.idle(40);
    assert!(!h.ledger(0).repairing.contains(&b));
    assert!(r.iter().all(|r| !r
        .commands()
        .iter()
        .any(|c| matches!(c, Command::HealBuilding(_)))));

    let mut h = Harness::new(1).with_yards();
    let b = h.owns(PlayerId(0), PowerPlant);
    h.when(P0, repair(b, true));
    h.given(vec![GameEvent::BuildingSold {
        id: b,
        owner: PlayerId(0),
        kind: PowerPlant,
    }]);
    assert!(h.ledger(0).repairing.is_empty());
}

#[test]
fn only_own_buildings_are_repaired() {
    let mut h = Harness::new(2).with_yards();
    let theirs = h.owns(PlayerId(1), PowerPlant);
    // Another player's building gets the same answer as a missing one: the economy
    // cannot tell whether the player sees it, so it gives nothing away.
    assert_eq!(
        h.when(P0, repair(theirs, true)).rejected(),
        vec![RejectReason::NoSuchUnit(theirs)]
    );
    assert_eq!(
        h.when(P0, repair(UnitId(999), true)).rejected(),
        vec![RejectReason::NoSuchUnit(UnitId(999))]
    );
}
