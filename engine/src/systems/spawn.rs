//! Spawns and placements: the start Construction Yards and units at tick 0, then the
//! units and buildings the economy asked for this tick, in command order. A unit that
//! leaves a building with a rally point moves on to it (harvesters excepted: the
//! harvester AI sends them to a field).

use events::{BuildingKind, Cell, GameEvent, PlayerId, RejectReason, UnitId, UnitKind};

use super::{ring, spawn_building, spawn_unit, start_yard_origin, SPAWN_SEARCH};
use crate::fixed::chebyshev;
use crate::sim::state::{Footprint, Ident, Pending, Rally, State};

/// Places every player's start Construction Yard and start units (tick 0).
pub fn start(state: &mut State) {
    let players: Vec<PlayerId> = state.players.iter().map(|p| p.id).collect();
    for (k, p) in players.into_iter().enumerate() {
        let Some(&start) = state.map.starts.get(k) else {
            continue;
        };
        let at = start_yard_origin(state, start);
        let yard = spawn_building(state, p, BuildingKind::ConstructionYard, at, 0);
        let kinds = state.rules.economy.start_units.clone();
        let mut claimed = Vec::new();
        for kind in kinds {
            if let Some(c) = exit_cell(state, yard, &claimed) {
                claimed.push(c);
                spawn_unit(state, p, kind, c);
            }
        }
    }
}

/// Runs the spawns and placements staged by this tick's commands.
pub fn run(state: &mut State) {
    crate::sim::spatial::rebuild(state);
    let pending = std::mem::take(&mut state.pending);
    let mut claimed: Vec<Cell> = Vec::new();
    for p in pending {
        match p {
            Pending::Spawn {
                command,
                player,
                kind,
            } => {
                let from = producer(state, player, kind);
                let spawned = from.and_then(|b| exit_cell(state, b, &claimed)).map(|c| {
                    claimed.push(c);
                    spawn_unit(state, player, kind, c)
                });
                if let (Some(unit), Some(b)) = (spawned, from) {
                    let rally = state
                        .entity(b)
                        .and_then(|e| state.world.get::<&Rally>(e).ok().map(|r| r.0));
                    if let Some(to) = rally.filter(|_| kind != UnitKind::Harvester) {
                        crate::sim::commands::move_one(state, unit, to);
                    }
                }
                if spawned.is_none() {
                    state.events.push(GameEvent::SpawnFailed {
                        command,
                        player,
                        kind,
                        reason: RejectReason::NoProducer,
                    });
                }
            }
            Pending::Construct {
                player,
                kind,
                at,
                request,
            } => match check_placement(state, player, kind, at, &claimed) {
                Ok(()) => {
                    let id = spawn_building(state, player, kind, at, request);
                    if let Some(free) = state.rules.building(kind).free_unit {
                        if let Some(c) = exit_cell(state, id, &claimed) {
                            claimed.push(c);
                            spawn_unit(state, player, free, c);
                        }
                    }
                }
                Err(reason) => state.events.push(GameEvent::PlacementFailed {
                    owner: player,
                    kind,
                    request,
                    reason,
                }),
            },
        }
    }
}

/// The building a new unit of `kind` leaves: the player's oldest Barracks for infantry,
/// oldest Refinery (else War Factory) for harvesters, oldest War Factory otherwise.
fn producer(state: &State, player: PlayerId, kind: UnitKind) -> Option<UnitId> {
    let first = |b| state.buildings_of(player, b).first().copied();
    if kind.is_infantry() {
        first(BuildingKind::Barracks)
    } else if kind == UnitKind::Harvester {
        first(BuildingKind::Refinery).or_else(|| first(BuildingKind::WarFactory))
    } else {
        first(BuildingKind::WarFactory)
    }
}

/// A free cell next to a building for a new unit: an empty one if any, else any free one.
fn exit_cell(state: &State, building: UnitId, claimed: &[Cell]) -> Option<Cell> {
    let fp = state.footprint(building)?;
    for d in 1..=SPAWN_SEARCH {
        let cells = ring(state, fp, d);
        let empty = cells
            .iter()
            .copied()
            .find(|&c| state.is_free(c) && !state.spatial.occupied(c) && !claimed.contains(&c));
        if let Some(c) = empty.or_else(|| cells.iter().copied().find(|&c| state.is_free(c))) {
            return Some(c);
        }
    }
    None
}

/// Placement rules: on the map, clear buildable cells, no building or unit in the way,
/// within `placement_radius` cells of one of the player's buildings.
pub fn check_placement(
    state: &State,
    player: PlayerId,
    kind: BuildingKind,
    at: Cell,
    claimed: &[Cell],
) -> Result<(), RejectReason> {
    let r = state.rules.building(kind);
    let fp = Footprint {
        at,
        w: r.width,
        h: r.height,
    };
    let far = Cell::new(
        at.x.saturating_add(r.width - 1),
        at.y.saturating_add(r.height - 1),
    );
    if !state.map.in_bounds(at) || !state.map.in_bounds(far) {
        return Err(RejectReason::OutOfMap(at));
    }
    for c in fp.cells() {
        if !state.map.is_buildable(c) {
            return Err(RejectReason::BadPlacement("terrain is not clear".into()));
        }
        if state.blocked[state.map.index(c)] != 0 {
            return Err(RejectReason::BadPlacement(
                "a building is in the way".into(),
            ));
        }
        if state.spatial.occupied(c) || claimed.contains(&c) {
            return Err(RejectReason::BadPlacement("units are in the way".into()));
        }
    }
    let radius = state.rules.economy.placement_radius;
    // Any one will do, so the (arbitrary) hecs order does not matter.
    let near = state
        .world
        .query::<(&Ident, &Footprint)>()
        .iter()
        .any(|(i, other)| i.owner == player && gap(fp, *other) <= radius);
    if !near {
        return Err(RejectReason::BadPlacement(format!(
            "more than {radius} cells from your buildings"
        )));
    }
    Ok(())
}

/// Chebyshev distance between the nearest cells of two footprints (0 when overlapping).
fn gap(a: Footprint, b: Footprint) -> u16 {
    let ax1 = a.at.x + a.w - 1;
    let ay1 = a.at.y + a.h - 1;
    let bx1 = b.at.x + b.w - 1;
    let by1 = b.at.y + b.h - 1;
    let cx = |v: u16, lo: u16, hi: u16| v.clamp(lo, hi);
    // The nearest cell of `b` to `a`'s box and vice versa: distance between boxes.
    let pa = Cell::new(cx(b.at.x, a.at.x, ax1), cx(b.at.y, a.at.y, ay1));
    let pb = Cell::new(cx(pa.x, b.at.x, bx1), cx(pa.y, b.at.y, by1));
    chebyshev(pa, pb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footprint_gap() {
        let a = Footprint {
            at: Cell::new(0, 0),
            w: 3,
            h: 3,
        };
        let b = |x, y| Footprint {
            at: Cell::new(x, y),
            w: 2,
            h: 2,
        };
        assert_eq!(gap(a, b(1, 1)), 0);
        assert_eq!(gap(a, b(3, 0)), 1);
        assert_eq!(gap(a, b(6, 0)), 4);
        assert_eq!(gap(a, b(5, 5)), 3);
        assert_eq!(gap(b(5, 5), a), 3);
    }
}
