//! Hand conversions between `events`/`engine` types and the browser wire types.

use std::collections::BTreeMap;

use engine::Rules;
use events::cmd::{
    AttackMove, AttackTarget, CancelProduction, Harvest, HoldPosition, HoldProduction, MoveUnits,
    PlaceBuilding, QueueProduction, RepairBuilding, ReturnToRefinery, Sell, SetRally, Stop,
    Surrender,
};
use events::{
    BuildingKind, Cell, Command, DeathView, EntityKind, EntityView, Item, PlayerKind, PlayerSlot,
    ProductionState, QueueKind, RejectReason, ShotView, TiberiumChange, UnitId, UnitKind, Warhead,
};

use crate::limits::MAX_UNITS_PER_COMMAND;
use crate::wire::{
    WireAttack, WireBuildingRules, WireCommand, WireDeath, WireEntity, WirePlayer, WireQueue,
    WireRules, WireTiberium, WireUnitRules,
};

/// An entity for the browser.
pub fn entity(e: &EntityView) -> WireEntity {
    let (kind, building) = match e.kind {
        EntityKind::Unit(u) => (u.name(), false),
        EntityKind::Building(b) => (b.name(), true),
    };
    WireEntity {
        id: e.id.0,
        owner: e.owner.0,
        kind: kind.to_string(),
        building,
        x: e.pos.x,
        y: e.pos.y,
        facing: e.facing,
        hp: e.hp,
        max_hp: e.max_hp,
        cargo: e.cargo,
    }
}

fn kind_name(k: EntityKind) -> (&'static str, bool) {
    match k {
        EntityKind::Unit(u) => (u.name(), false),
        EntityKind::Building(b) => (b.name(), true),
    }
}

pub fn warhead_name(w: Warhead) -> &'static str {
    match w {
        Warhead::Bullet => "bullet",
        Warhead::ArmorPiercing => "armor_piercing",
        Warhead::Missile => "missile",
        Warhead::Laser => "laser",
    }
}

/// A shot for the browser.
pub fn attack(a: &ShotView) -> WireAttack {
    WireAttack {
        attacker: a.attacker.0,
        kind: kind_name(a.kind).0.to_string(),
        target: a.target.0,
        warhead: warhead_name(a.warhead).to_string(),
        from: [a.from.x, a.from.y],
        to: [a.to.x, a.to.y],
    }
}

/// A death for the browser.
pub fn death(d: &DeathView) -> WireDeath {
    let (kind, building) = kind_name(d.kind);
    WireDeath {
        id: d.id.0,
        owner: d.owner.0,
        kind: kind.to_string(),
        building,
        at: [d.pos.x, d.pos.y],
        by: d.by.0,
        warhead: warhead_name(d.warhead).to_string(),
    }
}

/// A tiberium cell for the browser.
pub fn tiberium(t: &TiberiumChange) -> WireTiberium {
    [t.cell.x, t.cell.y, u16::from(t.bails), u16::from(t.blue)]
}

/// A player slot for the lobby and the welcome frame.
pub fn player(p: &PlayerSlot) -> WirePlayer {
    WirePlayer {
        id: p.id.0,
        name: p.name.clone(),
        kind: match p.kind {
            PlayerKind::Human => "human".to_string(),
            PlayerKind::Ai(d) => format!("ai_{}", d.name()),
        },
    }
}

pub fn parse_unit(s: &str) -> Option<UnitKind> {
    UnitKind::ALL.into_iter().find(|k| k.name() == s)
}

pub fn parse_building(s: &str) -> Option<BuildingKind> {
    BuildingKind::ALL.into_iter().find(|k| k.name() == s)
}

fn item_name(i: Item) -> &'static str {
    match i {
        Item::Unit(u) => u.name(),
        Item::Building(b) => b.name(),
    }
}

/// A production queue's state for the browser.
pub fn queue_state(s: &ProductionState) -> WireQueue {
    let (item, state, paid, cost, queued) = match *s {
        ProductionState::Building {
            item,
            paid,
            cost,
            queued,
        } => (item, "building", paid, cost, queued),
        ProductionState::Paused {
            item,
            paid,
            cost,
            queued,
        } => (item, "paused", paid, cost, queued),
        ProductionState::Held {
            item,
            paid,
            cost,
            queued,
        } => (item, "held", paid, cost, queued),
        ProductionState::Ready { item, queued } => (item, "ready", 0, 0, queued),
    };
    WireQueue {
        item: item_name(item).to_string(),
        state: state.to_string(),
        paid,
        cost,
        count: queued.saturating_add(1),
    }
}

/// The rules subset the browser needs.
pub fn rules(r: &Rules) -> WireRules {
    let units: BTreeMap<String, WireUnitRules> = r
        .units
        .iter()
        .map(|(k, u)| {
            (
                k.name().to_string(),
                WireUnitRules {
                    cost: u.cost,
                    hp: u.hp,
                    speed_milli: u.speed_milli,
                    sight: u.sight,
                    build_ms: u.build_ms,
                    range_milli: u.weapon.as_ref().map(|w| w.range_milli).unwrap_or(0),
                    infantry: k.is_infantry(),
                    armed: u.weapon.is_some(),
                },
            )
        })
        .collect();
    let buildings: BTreeMap<String, WireBuildingRules> = r
        .buildings
        .iter()
        .map(|(k, b)| {
            (
                k.name().to_string(),
                WireBuildingRules {
                    cost: b.cost,
                    hp: b.hp,
                    power: b.power,
                    width: b.width,
                    height: b.height,
                    build_ms: b.build_ms,
                    sight: b.sight,
                    requires: b.requires.map(|x| x.name().to_string()),
                    produces: b.produces.map(|q| q.name().to_string()),
                    buildable: *k != BuildingKind::ConstructionYard,
                },
            )
        })
        .collect();
    WireRules {
        tick_hz: r.tick_hz,
        cell: events::CELL,
        placement_radius: r.economy.placement_radius,
        max_bails: r.tiberium.max_bails,
        queue_limit: r.economy.queue_limit,
        sell_refund_pct: r.economy.sell_refund_pct,
        repair_step_ms: r.economy.repair_step_ms,
        repair_hp_per_step: r.economy.repair_hp_per_step,
        repair_credits_per_100_hp: r.economy.repair_credits_per_100_hp,
        units,
        buildings,
    }
}

/// Why a browser command could not become a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct BadCommand {
    pub code: &'static str,
    pub message: String,
}

fn bad(code: &'static str, message: impl Into<String>) -> BadCommand {
    BadCommand {
        code,
        message: message.into(),
    }
}

fn units(ids: &[u32]) -> Result<Vec<UnitId>, BadCommand> {
    if ids.is_empty() {
        return Err(bad("empty", "the command names no units"));
    }
    if ids.len() > MAX_UNITS_PER_COMMAND {
        return Err(bad(
            "too_many_units",
            format!("at most {MAX_UNITS_PER_COMMAND} units per command"),
        ));
    }
    let mut v: Vec<UnitId> = ids.iter().map(|&i| UnitId(i)).collect();
    v.sort();
    v.dedup();
    Ok(v)
}

fn cell([x, y]: [u16; 2]) -> Cell {
    Cell::new(x, y)
}

/// Turns a browser command into a [`Command`]. Economy-only commands cannot be expressed
/// on the wire at all.
pub fn command(c: &WireCommand) -> Result<Command, BadCommand> {
    Ok(match c {
        WireCommand::Move { units: u, to } => Command::MoveUnits(MoveUnits {
            units: units(u)?,
            to: cell(*to),
        }),
        WireCommand::AttackMove { units: u, to } => Command::AttackMove(AttackMove {
            units: units(u)?,
            to: cell(*to),
        }),
        WireCommand::Attack { units: u, target } => Command::AttackTarget(AttackTarget {
            units: units(u)?,
            target: UnitId(*target),
        }),
        WireCommand::Stop { units: u } => Command::Stop(Stop { units: units(u)? }),
        WireCommand::Hold { units: u } => Command::HoldPosition(HoldPosition { units: units(u)? }),
        WireCommand::Harvest { units: u, at } => Command::Harvest(Harvest {
            units: units(u)?,
            at: cell(*at),
        }),
        WireCommand::ReturnToRefinery { units: u } => {
            Command::ReturnToRefinery(ReturnToRefinery { units: units(u)? })
        }
        WireCommand::Sell { building } => Command::Sell(Sell {
            building: UnitId(*building),
        }),
        WireCommand::Queue { item } => {
            let item = parse_unit(item)
                .map(Item::Unit)
                .or_else(|| parse_building(item).map(Item::Building))
                .ok_or_else(|| bad("unknown_item", format!("no item named {item:?}")))?;
            Command::QueueProduction(QueueProduction { item })
        }
        WireCommand::Cancel { queue } => Command::CancelProduction(CancelProduction {
            queue: queue
                .parse::<QueueKind>()
                .map_err(|_| bad("unknown_queue", format!("no queue named {queue:?}")))?,
        }),
        WireCommand::Place { building, at } => Command::PlaceBuilding(PlaceBuilding {
            building: parse_building(building)
                .ok_or_else(|| bad("unknown_item", format!("no building named {building:?}")))?,
            at: cell(*at),
        }),
        WireCommand::Surrender {} => Command::Surrender(Surrender {}),
        WireCommand::HoldQueue { queue, hold } => Command::HoldProduction(HoldProduction {
            queue: queue
                .parse::<QueueKind>()
                .map_err(|_| bad("unknown_queue", format!("no queue named {queue:?}")))?,
            hold: *hold,
        }),
        WireCommand::Repair { building, on } => Command::RepairBuilding(RepairBuilding {
            building: UnitId(*building),
            on: *on,
        }),
        WireCommand::Rally { building, at } => Command::SetRally(SetRally {
            building: UnitId(*building),
            at: cell(*at),
        }),
    })
}

/// A stable machine-readable code for a rejection reason.
pub fn reject_code(r: &RejectReason) -> &'static str {
    match r {
        RejectReason::NotYourUnit(_) => "not_your_unit",
        RejectReason::NoSuchUnit(_) => "no_such_unit",
        RejectReason::WrongKind(_) => "wrong_kind",
        RejectReason::OutOfMap(_) => "out_of_map",
        RejectReason::Unreachable(_) => "unreachable",
        RejectReason::NotAllowed => "not_allowed",
        RejectReason::NotAPlayer => "not_a_player",
        RejectReason::Defeated => "defeated",
        RejectReason::NoFunds => "no_funds",
        RejectReason::MissingPrerequisite(_) => "missing_prerequisite",
        RejectReason::QueueBusy => "queue_busy",
        RejectReason::NothingReady => "nothing_ready",
        RejectReason::BadPlacement(_) => "bad_placement",
        RejectReason::Empty => "empty",
        RejectReason::NoProducer => "no_producer",
        RejectReason::QueueFull => "queue_full",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_name_parses_back() {
        for u in UnitKind::ALL {
            assert_eq!(parse_unit(u.name()), Some(u));
        }
        for b in BuildingKind::ALL {
            assert_eq!(parse_building(b.name()), Some(b));
        }
    }

    #[test]
    fn commands_convert_and_validate() {
        let c = command(&WireCommand::Move {
            units: vec![3, 1, 3],
            to: [5, 6],
        })
        .unwrap();
        assert_eq!(
            c,
            Command::MoveUnits(MoveUnits {
                units: vec![UnitId(1), UnitId(3)],
                to: Cell::new(5, 6)
            })
        );
        assert_eq!(
            command(&WireCommand::Stop { units: vec![] })
                .unwrap_err()
                .code,
            "empty"
        );
        assert_eq!(
            command(&WireCommand::Queue {
                item: "nuke".into()
            })
            .unwrap_err()
            .code,
            "unknown_item"
        );
        assert!(matches!(
            command(&WireCommand::Queue {
                item: "power_plant".into()
            }),
            Ok(Command::QueueProduction(_))
        ));
    }

    #[test]
    fn base_management_commands_convert() {
        let hold: WireCommand =
            serde_json::from_str(r#"{"kind":"hold_queue","queue":"infantry","hold":true}"#)
                .unwrap();
        assert_eq!(
            command(&hold).unwrap(),
            Command::HoldProduction(HoldProduction {
                queue: QueueKind::Infantry,
                hold: true
            })
        );
        let bad_queue: WireCommand =
            serde_json::from_str(r#"{"kind":"hold_queue","queue":"navy","hold":false}"#).unwrap();
        assert_eq!(command(&bad_queue).unwrap_err().code, "unknown_queue");
        let repair: WireCommand =
            serde_json::from_str(r#"{"kind":"repair","building":7,"on":true}"#).unwrap();
        assert_eq!(repair.units(), &[7]);
        assert_eq!(
            command(&repair).unwrap(),
            Command::RepairBuilding(RepairBuilding {
                building: UnitId(7),
                on: true
            })
        );
        let rally: WireCommand =
            serde_json::from_str(r#"{"kind":"rally","building":9,"at":[3,4]}"#).unwrap();
        assert_eq!(
            command(&rally).unwrap(),
            Command::SetRally(SetRally {
                building: UnitId(9),
                at: Cell::new(3, 4)
            })
        );
    }

    #[test]
    fn queue_states_carry_their_count() {
        let q = queue_state(&ProductionState::Held {
            item: Item::Unit(UnitKind::Rifleman),
            paid: 20,
            cost: 100,
            queued: 4,
        });
        assert_eq!((q.state.as_str(), q.count, q.paid), ("held", 5, 20));
        let q = queue_state(&ProductionState::Ready {
            item: Item::Building(BuildingKind::Barracks),
            queued: 0,
        });
        assert_eq!((q.state.as_str(), q.count), ("ready", 1));
    }

    #[test]
    fn shipped_rules_convert() {
        let w = rules(&Rules::standard());
        assert_eq!(w.buildings["power_plant"].width, 2);
        assert!(!w.buildings["construction_yard"].buildable);
        assert!(w.units["rifleman"].infantry);
    }
}
