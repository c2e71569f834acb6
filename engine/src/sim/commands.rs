//! Command handling, in two steps: `handle` validates a command against the state and
//! decides an [`Effect`] (or a rejection reason) without changing anything; `apply`
//! carries the effect out. Production commands belong to the economy and are skipped.

use events::{
    AppliedCommand, Cell, Command, EntityKind, GameEvent, PlayerId, RejectReason, Source, UnitId,
    UnitKind,
};

use super::state::{
    Body, Footprint, Harvester, Health, Ident, Job, Mobile, Order, PathRequest, Pending, Rally,
    State, Weapon,
};
use super::Input;
use crate::fixed::{cell_dist2, chebyshev};
use crate::path::{nearest_reachable, reachable};
use crate::sim::vision::mask_of;
use crate::systems::{
    despawn, harvest, movement, nearest_free, nearest_refinery, release_harvester, set_dest,
    FREE_CELL_SEARCH, GROUP_RADIUS,
};

/// Formation slots are searched this many rings around a group's goal.
const FORMATION_RINGS: u16 = 16;

/// What an accepted command does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Move {
        units: Vec<UnitId>,
        to: Cell,
        attack: bool,
    },
    Attack {
        units: Vec<UnitId>,
        target: UnitId,
    },
    Stop {
        units: Vec<UnitId>,
    },
    Hold {
        units: Vec<UnitId>,
    },
    Harvest {
        units: Vec<UnitId>,
        at: Cell,
    },
    Return {
        units: Vec<UnitId>,
    },
    Sell {
        building: UnitId,
    },
    Stage(Pending),
    LowPower {
        player: PlayerId,
        low: bool,
    },
    Surrender {
        player: PlayerId,
    },
    Rally {
        building: UnitId,
        at: Cell,
    },
    Heal {
        player: PlayerId,
        building: UnitId,
        hp: u32,
    },
}

/// Who is commanding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Player(PlayerId),
    Economy,
}

/// Applies this tick's commands in order; every non-production command is listed in
/// `applied`, accepted or rejected.
pub fn run(state: &mut State, inputs: &[Input], applied: &mut Vec<AppliedCommand>) {
    for input in inputs {
        let cmd = &input.envelope.body;
        if cmd.is_production() {
            continue;
        }
        applied.push(AppliedCommand {
            stream_id: input.stream_id.clone(),
            event_id: input.envelope.id,
        });
        match handle(state, input) {
            Ok(effect) => apply(state, effect),
            Err(reason) => state.events.push(GameEvent::CommandRejected {
                command: input.envelope.id,
                player: input.envelope.source.player().or_else(|| named_player(cmd)),
                reason,
            }),
        }
    }
}

fn named_player(cmd: &Command) -> Option<PlayerId> {
    match cmd {
        Command::SpawnUnit(c) => Some(c.player),
        Command::ConstructBuilding(c) => Some(c.player),
        Command::SetLowPower(c) => Some(c.player),
        Command::HealBuilding(c) => Some(c.player),
        _ => None,
    }
}

fn who(state: &State, source: Source) -> Result<Who, RejectReason> {
    match source {
        Source::Player(p) | Source::Bot(p) => {
            let k = state.player_index(p).ok_or(RejectReason::NotAPlayer)?;
            if state.players[k].defeated {
                return Err(RejectReason::Defeated);
            }
            Ok(Who::Player(p))
        }
        Source::Economy => Ok(Who::Economy),
        Source::System => Err(RejectReason::NotAPlayer),
    }
}

/// A live player of the match (economy-only commands name one).
fn live_player(state: &State, p: PlayerId) -> Result<(), RejectReason> {
    let k = state.player_index(p).ok_or(RejectReason::NotAPlayer)?;
    if state.players[k].defeated {
        return Err(RejectReason::Defeated);
    }
    Ok(())
}

/// Whether `id` is a live entity that `viewer` may know of: any entity when `viewer` is
/// `None` (bots and the economy), else one it owns or currently sees. Anything else is
/// answered as if it did not exist, so rejections never tell a player what hides in the
/// fog.
fn known_to(state: &State, id: UnitId, viewer: Option<PlayerId>) -> Option<Ident> {
    let i = state.ident(id)?;
    let Some(p) = viewer else {
        return Some(i);
    };
    if i.owner == p {
        return Some(i);
    }
    let e = state.entity(id)?;
    let body = *state.world.get::<&Body>(e).ok()?;
    let fp = state.world.get::<&Footprint>(e).ok().map(|f| *f);
    (mask_of(&state.vision, &i, &body, fp.as_ref()) & State::bit(p) != 0).then_some(i)
}

/// Validates a unit list: non-empty, every live id a unit the commander may order.
/// Returns the ids sorted and deduplicated with their identities. `viewer` is the human
/// player whose vision bounds what the command may name (see [`known_to`]).
///
/// Ids of units that are gone (or hidden from `viewer`) are left out: a selection sent
/// while one of its units died still orders the others. Only when none is left is the
/// command rejected.
fn own_units(
    state: &State,
    who: Who,
    viewer: Option<PlayerId>,
    ids: &[UnitId],
) -> Result<Vec<Ident>, RejectReason> {
    let first = *ids.first().ok_or(RejectReason::Empty)?;
    let mut ids: Vec<UnitId> = ids
        .iter()
        .copied()
        .filter(|&id| known_to(state, id, viewer).is_some())
        .collect();
    if ids.is_empty() {
        return Err(RejectReason::NoSuchUnit(first));
    }
    ids.sort_unstable();
    ids.dedup();
    #[cfg(feature = "fault-injection")]
    if let Some(unordered) = crate::fault::unit_order(&ids) {
        ids = unordered;
    }
    ids.into_iter()
        .map(|id| {
            let i = state.ident(id).ok_or(RejectReason::NoSuchUnit(id))?;
            if matches!(i.kind, EntityKind::Building(_)) {
                return Err(RejectReason::WrongKind(id));
            }
            match who {
                Who::Player(p) if i.owner != p => Err(RejectReason::NotYourUnit(id)),
                // The economy runs the harvester AI and may order harvesters only.
                Who::Economy if i.kind != EntityKind::Unit(UnitKind::Harvester) => {
                    Err(RejectReason::NotAllowed)
                }
                _ => Ok(i),
            }
        })
        .collect()
}

fn in_map(state: &State, c: Cell) -> Result<(), RejectReason> {
    if state.map.in_bounds(c) {
        Ok(())
    } else {
        Err(RejectReason::OutOfMap(c))
    }
}

/// Every unit can reach `to` on the ground: a component lookup, no search.
fn all_reach(state: &State, units: &[Ident], to: Cell) -> Result<(), RejectReason> {
    for u in units {
        let from = state.pos(u.id).map(|p| p.cell()).unwrap_or(to);
        if !reachable(&state.map, from, to) {
            return Err(RejectReason::Unreachable(to));
        }
    }
    Ok(())
}

fn ids(units: &[Ident]) -> Vec<UnitId> {
    units.iter().map(|i| i.id).collect()
}

fn harvesters_only(units: &[Ident]) -> Result<(), RejectReason> {
    match units
        .iter()
        .find(|i| i.kind != EntityKind::Unit(UnitKind::Harvester))
    {
        Some(i) => Err(RejectReason::WrongKind(i.id)),
        None => Ok(()),
    }
}

/// Decides what a command does, or why it is rejected. Reads the state only.
pub fn handle(state: &State, input: &Input) -> Result<Effect, RejectReason> {
    let source = input.envelope.source;
    let cmd = &input.envelope.body;
    if cmd.is_economy_only() && source != Source::Economy {
        return Err(RejectReason::NotAllowed);
    }
    let who = who(state, source)?;
    // Human players name only what they can see; bots and the economy are trusted.
    let viewer = match source {
        Source::Player(p) => Some(p),
        _ => None,
    };
    match cmd {
        // A goal no unit can reach (water, rock, another island, a cell in the shroud
        // that turns out to be either) is not refused: the move goes to the nearest
        // cell each unit can reach.
        Command::MoveUnits(c) => {
            let units = own_units(state, who, viewer, &c.units)?;
            in_map(state, c.to)?;
            Ok(Effect::Move {
                units: ids(&units),
                to: c.to,
                attack: false,
            })
        }
        Command::AttackMove(c) => {
            let units = own_units(state, who, viewer, &c.units)?;
            in_map(state, c.to)?;
            Ok(Effect::Move {
                units: ids(&units),
                to: c.to,
                attack: true,
            })
        }
        Command::AttackTarget(c) => {
            let units = own_units(state, who, viewer, &c.units)?;
            let target =
                known_to(state, c.target, viewer).ok_or(RejectReason::NoSuchUnit(c.target))?;
            for u in &units {
                let armed = state
                    .entity(u.id)
                    .is_some_and(|e| state.world.get::<&Weapon>(e).is_ok());
                if !armed {
                    return Err(RejectReason::WrongKind(u.id));
                }
                if u.owner == target.owner {
                    return Err(RejectReason::WrongKind(c.target));
                }
            }
            Ok(Effect::Attack {
                units: ids(&units),
                target: c.target,
            })
        }
        Command::Stop(c) => Ok(Effect::Stop {
            units: ids(&own_units(state, who, viewer, &c.units)?),
        }),
        Command::HoldPosition(c) => Ok(Effect::Hold {
            units: ids(&own_units(state, who, viewer, &c.units)?),
        }),
        Command::Harvest(c) => {
            let units = own_units(state, who, viewer, &c.units)?;
            harvesters_only(&units)?;
            in_map(state, c.at)?;
            all_reach(state, &units, c.at)?;
            Ok(Effect::Harvest {
                units: ids(&units),
                at: c.at,
            })
        }
        Command::ReturnToRefinery(c) => {
            let units = own_units(state, who, viewer, &c.units)?;
            harvesters_only(&units)?;
            for u in &units {
                let pos = state.pos(u.id).unwrap_or_default();
                if nearest_refinery(state, u.owner, pos).is_none() {
                    return Err(RejectReason::NoProducer);
                }
            }
            Ok(Effect::Return { units: ids(&units) })
        }
        Command::Sell(c) => {
            let Who::Player(p) = who else {
                return Err(RejectReason::NotAllowed);
            };
            let b =
                known_to(state, c.building, viewer).ok_or(RejectReason::NoSuchUnit(c.building))?;
            if !matches!(b.kind, EntityKind::Building(_)) {
                return Err(RejectReason::WrongKind(c.building));
            }
            if b.owner != p {
                return Err(RejectReason::NotYourUnit(c.building));
            }
            Ok(Effect::Sell {
                building: c.building,
            })
        }
        Command::Surrender(_) => match who {
            Who::Player(player) => Ok(Effect::Surrender { player }),
            Who::Economy => Err(RejectReason::NotAllowed),
        },
        Command::SetRally(c) => {
            let Who::Player(p) = who else {
                return Err(RejectReason::NotAllowed);
            };
            let b = state
                .ident(c.building)
                .ok_or(RejectReason::NoSuchUnit(c.building))?;
            if b.owner != p {
                return Err(RejectReason::NotYourUnit(c.building));
            }
            // Only buildings that send units out have a rally point.
            let produces = match b.kind {
                EntityKind::Building(k) => state.rules.building(k).produces.is_some(),
                EntityKind::Unit(_) => false,
            };
            if !produces {
                return Err(RejectReason::WrongKind(c.building));
            }
            in_map(state, c.at)?;
            Ok(Effect::Rally {
                building: c.building,
                at: c.at,
            })
        }
        Command::HealBuilding(c) => {
            live_player(state, c.player)?;
            Ok(Effect::Heal {
                player: c.player,
                building: c.building,
                hp: c.hp,
            })
        }
        Command::SpawnUnit(c) => {
            live_player(state, c.player)?;
            Ok(Effect::Stage(Pending::Spawn {
                command: input.envelope.id,
                player: c.player,
                kind: c.kind,
            }))
        }
        Command::ConstructBuilding(c) => {
            live_player(state, c.player)?;
            Ok(Effect::Stage(Pending::Construct {
                player: c.player,
                kind: c.kind,
                at: c.at,
                request: c.request,
            }))
        }
        Command::SetLowPower(c) => {
            live_player(state, c.player)?;
            Ok(Effect::LowPower {
                player: c.player,
                low: c.low,
            })
        }
        // Skipped by `run`; listed for exhaustiveness.
        Command::QueueProduction(_)
        | Command::CancelProduction(_)
        | Command::PlaceBuilding(_)
        | Command::RepairBuilding(_)
        | Command::HoldProduction(_) => Err(RejectReason::NotAllowed),
    }
}

/// Carries out an accepted command.
pub fn apply(state: &mut State, effect: Effect) {
    match effect {
        Effect::Move { units, to, attack } => group_move(state, &units, to, attack),
        Effect::Attack { units, target } => {
            for u in units {
                reorder(state, u, Order::Attack { target }, None, Some(target));
            }
        }
        Effect::Stop { units } => {
            for u in units {
                reorder(state, u, Order::Idle, None, None);
            }
        }
        Effect::Hold { units } => {
            for u in units {
                reorder(state, u, Order::Hold, None, None);
            }
        }
        Effect::Harvest { units, at } => {
            for u in units {
                harvest::start_harvest(state, u, at);
            }
        }
        Effect::Return { units } => {
            for u in units {
                if !harvest::start_return(state, u) {
                    harvest::go_idle(state, u);
                }
            }
        }
        Effect::Sell { building } => {
            if let Some(i) = state.ident(building) {
                if let EntityKind::Building(kind) = i.kind {
                    state.events.push(GameEvent::BuildingSold {
                        id: building,
                        owner: i.owner,
                        kind,
                    });
                    despawn(state, building);
                }
            }
        }
        Effect::Stage(p) => state.pending.push(p),
        Effect::LowPower { player, low } => {
            if let Some(k) = state.player_index(player) {
                state.players[k].low_power = low;
            }
        }
        Effect::Rally { building, at } => {
            if let Some(e) = state.entity(building) {
                let _ = state.world.insert_one(e, Rally(at));
            }
        }
        Effect::Heal {
            player,
            building,
            hp,
        } => heal(state, player, building, hp),
        Effect::Surrender { player } => surrender(state, player),
    }
}

/// A surrender: every building of the player is destroyed (in id order), so the victory
/// check at the end of this tick defeats it like a player whose base fell.
fn surrender(state: &mut State, player: PlayerId) {
    let buildings: Vec<(UnitId, EntityKind)> = state
        .index
        .keys()
        .filter_map(|&id| state.ident(id))
        .filter(|i| i.owner == player && matches!(i.kind, EntityKind::Building(_)))
        .map(|i| (i.id, i.kind))
        .collect();
    for (id, kind) in buildings {
        state.events.push(GameEvent::EntityDestroyed {
            id,
            owner: player,
            kind,
            by: None,
        });
        despawn(state, id);
    }
}

/// One paid repair step: heals up to full health and always answers, so the economy can
/// refund what was not healed (all of it when the building is gone or not the player's).
fn heal(state: &mut State, player: PlayerId, building: UnitId, hp: u32) {
    let own = state
        .ident(building)
        .is_some_and(|i| i.owner == player && matches!(i.kind, EntityKind::Building(_)));
    let health = state.entity(building).filter(|_| own).and_then(|e| {
        state.world.get::<&mut Health>(e).ok().map(|mut h| {
            let healed = hp.min(h.max.saturating_sub(h.hp));
            h.hp += healed;
            (healed, h.hp, h.max)
        })
    });
    let (healed, now, max) = health.unwrap_or((0, 0, 0));
    state.events.push(GameEvent::BuildingRepaired {
        id: building,
        owner: player,
        requested: hp,
        healed,
        hp: now,
        max_hp: max,
    });
}

/// Gives a unit a new order: drops its harvester job, sets destination and target.
fn reorder(
    state: &mut State,
    unit: UnitId,
    order: Order,
    dest: Option<Cell>,
    target: Option<UnitId>,
) {
    release_harvester(state, unit);
    let Some(e) = state.entity(unit) else {
        return;
    };
    if let Ok(mut h) = state.world.get::<&mut Harvester>(e) {
        h.job = Job::Idle;
    }
    if let Ok(mut w) = state.world.get::<&mut Weapon>(e) {
        w.target = target;
        w.explicit = target.is_some();
    }
    if let Ok(mut m) = state.world.get::<&mut Mobile>(e) {
        m.order = order;
        set_dest(&mut m, dest);
    }
}

/// Formation slots around a goal: free cells of the goal's component, nearest first.
fn formation(state: &State, goal: Cell, n: usize) -> Vec<Cell> {
    let comp = state.map.component(goal);
    let mut slots = Vec::with_capacity(n);
    for r in 0..=FORMATION_RINGS {
        if slots.len() >= n {
            break;
        }
        let ri = i32::from(r);
        let mut ring: Vec<Cell> = Vec::new();
        for dy in -ri..=ri {
            for dx in -ri..=ri {
                if dx.abs().max(dy.abs()) != ri {
                    continue;
                }
                if let Some(c) = state.map.offset(goal, dx, dy) {
                    if state.is_free(c) && state.map.component(c) == comp {
                        ring.push(c);
                    }
                }
            }
        }
        ring.sort_by_key(|&c| (cell_dist2(c, goal), c.y, c.x));
        slots.extend(ring);
    }
    slots.truncate(n);
    while slots.len() < n {
        slots.push(goal);
    }
    slots
}

/// The free cell of ground component `comp` nearest to `to`: `to` itself when free and
/// reachable, else the nearest such cell around it, searched over the whole map.
fn reachable_goal(state: &State, to: Cell, comp: u32) -> Option<Cell> {
    nearest_free(state, to, FREE_CELL_SEARCH, comp)
        .or_else(|| nearest_reachable(&state.map, &state.blocked, to, comp))
}

/// Orders one unit to move to a cell (units leaving a building for its rally point).
pub(crate) fn move_one(state: &mut State, unit: UnitId, to: Cell) {
    group_move(state, &[unit], to, false);
}

/// A (group) move: each unit gets a formation slot; units near the leader (the lowest id)
/// share one path search, the others search on their own.
fn group_move(state: &mut State, units: &[UnitId], to: Cell, attack: bool) {
    let Some(&leader) = units.first() else {
        return;
    };
    let Some(lpos) = state.pos(leader) else {
        return;
    };
    let Some(owner) = state.ident(leader).map(|i| i.owner) else {
        return;
    };
    let lcell = lpos.cell();
    let comp = state.map.component(lcell);
    let goal = reachable_goal(state, to, comp).unwrap_or(to);
    let slots = formation(state, goal, units.len());
    let mut shared: Vec<(UnitId, u32)> = Vec::new();
    for (&u, &slot) in units.iter().zip(&slots) {
        // A unit on other ground than the leader heads for the cell nearest the goal
        // that it can reach, on its own path.
        let own = state.pos(u).map(|p| state.map.component(p.cell()));
        let slot = match own {
            Some(c) if c != comp => reachable_goal(state, to, c).unwrap_or(slot),
            _ => slot,
        };
        let order = if attack {
            Order::AttackMove { goal: slot }
        } else {
            Order::Move
        };
        reorder(state, u, order, Some(slot), None);
        let Some(e) = state.entity(u) else {
            continue;
        };
        let cell = state.pos(u).map(|p| p.cell()).unwrap_or(lcell);
        if chebyshev(cell, lcell) <= GROUP_RADIUS && state.map.component(cell) == comp {
            if let Ok(mut m) = state.world.get::<&mut Mobile>(e) {
                m.waiting = true;
                shared.push((u, m.token));
            }
        }
    }
    if !shared.is_empty() {
        movement::enqueue(
            state,
            owner,
            PathRequest {
                units: shared,
                goal,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::{Map, Terrain};
    use crate::rules::Rules;
    use crate::sim::Sim;
    use std::sync::Arc;

    #[test]
    fn formation_slots_are_free_distinct_and_nearest_first() {
        let mut map = Map::blank(32);
        map.starts = vec![Cell::new(3, 3)];
        map.set_terrain(Cell::new(16, 15), Terrain::Rock);
        let mut sim = Sim::with_map(Arc::new(Rules::standard()), map, &[PlayerId(0)], 1);
        let st = sim.state_mut();
        let goal = Cell::new(16, 16);
        let slots = formation(st, goal, 9);
        assert_eq!(slots[0], goal);
        let mut uniq = slots.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 9);
        assert!(!slots.contains(&Cell::new(16, 15)));
        assert!(slots.iter().all(|&c| chebyshev(c, goal) <= 2));
    }
}
