//! The simulation systems, run once per tick in this fixed order (see [`crate::sim`]):
//!
//! 1. apply commands ([`crate::sim::commands`]) — orders, sells, staged spawns
//! 2. [`spawn`] — start buildings and units, staged spawns and placements
//! 3. [`targeting`] — target acquisition and chase intents
//! 4. [`movement`] — path budget, stepping along paths, local separation
//! 5. [`combat`] — reloads, shots, damage, deaths
//! 6. [`harvest`] — loading at fields, docking and unloading at refineries
//! 7. [`tiberium`] — regrowth and spread
//! 8. [`visibility`] — per-player vision
//! 9. [`victory`] — defeat and victory
//! 10. state hash ([`crate::sim::hash`])
//!
//! The engine's own tuning (not balance: it changes no game number, only how the engine
//! spends its time) lives here as named constants.

pub mod combat;
pub mod harvest;
pub mod movement;
pub mod spawn;
pub mod targeting;
pub mod tiberium;
pub mod victory;
pub mod visibility;

use events::{BuildingKind, Cell, EntityKind, GameEvent, PlayerId, Pos, UnitId, UnitKind, CELL};

use crate::fixed::cell_dist2;
use crate::map::footprint_origin;
use crate::rules::WeaponRules;
use crate::sim::state::{
    Body, Dock, Footprint, Harvester, Health, Ident, Job, LastView, Mobile, Order, Sight, State,
    Weapon,
};

/// Path searches served per tick (all players together).
pub const PATH_REQUESTS_PER_TICK: usize = 16;
/// Cells A* may expand per tick before the rest of the queue waits for the next tick
/// (one search in progress always completes).
pub const PATH_NODES_PER_TICK: usize = 4_096;
/// Units of a group move within this many cells of the leader share its path.
pub const GROUP_RADIUS: u16 = 8;
/// Units without a target look for one every this many ticks (staggered by id).
pub const ACQUIRE_PERIOD: u64 = 4;
/// An auto-acquired target is dropped once it is this many cells beyond sight.
pub const LEASH_CELLS: i64 = 2;
/// A chasing unit re-paths when its target has moved this many cells from its goal.
pub const CHASE_SLACK: u16 = 2;
/// Ticks without progress before a unit asks for a new path, and before it gives up.
pub const REPATH_AFTER: u16 = 10;
pub const GIVE_UP_AFTER: u16 = 60;
/// A unit inside its destination cell that has made no progress for this many ticks
/// (others stand on the centre) counts as arrived.
pub const SETTLE_AFTER: u16 = 3;
/// Within this distance of the destination's centre a unit has arrived.
pub const ARRIVE_RADIUS: i64 = (CELL / 4) as i64;
/// Ground units closer than this push each other apart.
pub const SEPARATION: i32 = CELL / 2;
/// Most a unit is pushed per tick by separation.
pub const MAX_PUSH: i32 = CELL / 16;
/// How far from a building a spawned unit may appear, and from a blocked goal the nearest
/// free cell is searched.
pub const SPAWN_SEARCH: u16 = 4;
pub const FREE_CELL_SEARCH: u16 = 8;

/// The weapon an entity kind carries, if any.
pub fn weapon_rules(state: &State, kind: EntityKind) -> Option<&WeaponRules> {
    match kind {
        EntityKind::Unit(u) => state.rules.unit(u).weapon.as_ref(),
        EntityKind::Building(b) => state.rules.building(b).weapon.as_ref(),
    }
}

/// Changes where a unit is heading: drops its path and any pending path answer.
pub fn set_dest(m: &mut Mobile, dest: Option<Cell>) {
    m.dest = dest;
    m.clear_path();
    m.waiting = false;
    m.token = m.token.wrapping_add(1);
    m.stuck = 0;
}

/// The free cell nearest to `c` (squared distance, then row-major order) within `r` cells,
/// in the ground component `comp` (0: any).
pub fn nearest_free(state: &State, c: Cell, r: u16, comp: u32) -> Option<Cell> {
    if state.is_free(c) && (comp == 0 || state.map.component(c) == comp) {
        return Some(c);
    }
    let mut best: Option<(i64, Cell)> = None;
    let ri = i32::from(r);
    for dy in -ri..=ri {
        for dx in -ri..=ri {
            let Some(n) = state.map.offset(c, dx, dy) else {
                continue;
            };
            if !state.is_free(n) || (comp != 0 && state.map.component(n) != comp) {
                continue;
            }
            let d = cell_dist2(c, n);
            if best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, n));
            }
        }
    }
    best.map(|(_, n)| n)
}

/// The cells around a footprint at ring distance `d`, bottom row first (units leave
/// buildings towards the bottom of the map), then upwards, each row left to right.
pub fn ring(state: &State, fp: Footprint, d: u16) -> Vec<Cell> {
    let x0 = i32::from(fp.at.x) - i32::from(d);
    let y0 = i32::from(fp.at.y) - i32::from(d);
    let x1 = i32::from(fp.at.x + fp.w - 1) + i32::from(d);
    let y1 = i32::from(fp.at.y + fp.h - 1) + i32::from(d);
    let mut out = Vec::new();
    for y in (y0..=y1).rev() {
        for x in x0..=x1 {
            if (y == y0 || y == y1 || x == x0 || x == x1) && x >= 0 && y >= 0 {
                let c = Cell::new(x as u16, y as u16);
                if state.map.in_bounds(c) {
                    out.push(c);
                }
            }
        }
    }
    out
}

/// A refinery's dock: the free cell below the middle of its footprint, else the first
/// free cell around it.
pub fn dock_cell(state: &State, fp: Footprint) -> Option<Cell> {
    let below = Cell::new(fp.at.x + fp.w / 2, fp.at.y + fp.h);
    if state.is_free(below) {
        return Some(below);
    }
    ring(state, fp, 1).into_iter().find(|&c| state.is_free(c))
}

/// The nearest refinery of `owner` to a position (distance to its dock, then id).
pub fn nearest_refinery(state: &State, owner: PlayerId, from: Pos) -> Option<(UnitId, Cell)> {
    let mut best: Option<(i64, UnitId, Cell)> = None;
    for id in state.buildings_of(owner, BuildingKind::Refinery) {
        let Some(fp) = state.footprint(id) else {
            continue;
        };
        let Some(dock) = dock_cell(state, fp) else {
            continue;
        };
        let d = crate::fixed::dist2(from, dock.center());
        if best.is_none_or(|(bd, _, _)| d < bd) {
            best = Some((d, id, dock));
        }
    }
    best.map(|(_, id, c)| (id, c))
}

/// Creates a unit on a cell; emits `UnitSpawned`.
pub fn spawn_unit(state: &mut State, owner: PlayerId, kind: UnitKind, at: Cell) -> UnitId {
    let id = state.alloc_id();
    let r = state.rules.unit(kind).clone();
    let pos = at.center();
    let e = state.world.spawn((
        Ident {
            id,
            owner,
            kind: EntityKind::Unit(kind),
        },
        Health {
            hp: r.hp,
            max: r.hp,
        },
        // Facing south: out of the building's door.
        Body { pos, facing: 192 },
        Mobile {
            speed: state.rules.speed_per_tick(r.speed_milli),
            order: Order::Idle,
            dest: None,
            path: Vec::new(),
            step: 0,
            waiting: false,
            token: 0,
            stuck: 0,
            last_dist: u32::MAX,
            path_digest: 0,
        },
        Sight {
            radius: r.sight as u16,
            stamped: None,
        },
        LastView(None),
    ));
    if r.weapon.is_some() {
        let _ = state.world.insert_one(
            e,
            Weapon {
                reload: 0,
                target: None,
                explicit: false,
            },
        );
    }
    if kind == UnitKind::Harvester {
        let _ = state.world.insert_one(
            e,
            Harvester {
                green: 0,
                blue: 0,
                job: Job::Idle,
                timer: 0,
            },
        );
    }
    state.index.insert(id, e);
    state.events.push(GameEvent::UnitSpawned {
        id,
        owner,
        kind,
        at: pos,
    });
    id
}

/// Creates a building with its top-left corner at `at` (placement already checked);
/// emits `BuildingPlaced`.
pub fn spawn_building(
    state: &mut State,
    owner: PlayerId,
    kind: BuildingKind,
    at: Cell,
    request: u64,
) -> UnitId {
    let id = state.alloc_id();
    let r = state.rules.building(kind).clone();
    let fp = Footprint {
        at,
        w: r.width,
        h: r.height,
    };
    let e = state.world.spawn((
        Ident {
            id,
            owner,
            kind: EntityKind::Building(kind),
        },
        Health {
            hp: r.hp,
            max: r.hp,
        },
        Body {
            pos: fp.center(),
            facing: 0,
        },
        fp,
        Sight {
            radius: r.sight as u16,
            stamped: None,
        },
        LastView(None),
    ));
    if r.weapon.is_some() {
        let _ = state.world.insert_one(
            e,
            Weapon {
                reload: 0,
                target: None,
                explicit: false,
            },
        );
    }
    if kind == BuildingKind::Refinery {
        let _ = state.world.insert_one(e, Dock::default());
    }
    for c in fp.cells() {
        if state.map.in_bounds(c) {
            let i = state.map.index(c);
            state.blocked[i] = id.0 + 1;
        }
    }
    state.index.insert(id, e);
    state.events.push(GameEvent::BuildingPlaced {
        id,
        owner,
        kind,
        at,
        request,
    });
    id
}

/// The top-left cell of a player's start Construction Yard.
pub fn start_yard_origin(state: &State, start: Cell) -> Cell {
    let r = state.rules.building(BuildingKind::ConstructionYard);
    footprint_origin(start, r.width, r.height)
}

/// Takes a harvester out of any refinery dock or queue.
pub fn release_harvester(state: &mut State, unit: UnitId) {
    let refinery = {
        let Some(e) = state.entity(unit) else {
            return;
        };
        match state.world.get::<&Harvester>(e).map(|h| h.job) {
            Ok(Job::Queued { refinery } | Job::Docked { refinery }) => refinery,
            _ => return,
        }
    };
    if let Some(re) = state.entity(refinery) {
        if let Ok(mut dock) = state.world.get::<&mut Dock>(re) {
            if dock.docked == Some(unit) {
                dock.docked = None;
            }
            dock.queue.retain(|&u| u != unit);
        }
    }
}

/// Removes an entity: frees its cells, dock and vision, records who saw it go.
pub fn despawn(state: &mut State, id: UnitId) {
    let Some(e) = state.entity(id) else {
        return;
    };
    release_harvester(state, id);
    visibility::unstamp(state, e);
    let (owner, last_mask) = {
        let owner = state.world.get::<&Ident>(e).map(|i| i.owner).ok();
        let mask = state
            .world
            .get::<&LastView>(e)
            .ok()
            .and_then(|v| v.0.as_ref().map(|v| v.visible_to))
            .unwrap_or(0);
        (owner, mask)
    };
    if let Ok(fp) = state.world.get::<&Footprint>(e).map(|f| *f) {
        for c in fp.cells() {
            if state.map.in_bounds(c) {
                let i = state.map.index(c);
                if state.blocked[i] == id.0 + 1 {
                    state.blocked[i] = 0;
                }
            }
        }
    }
    // A refinery going away sends its docked and queued harvesters idle.
    let orphans: Vec<UnitId> = state
        .world
        .get::<&Dock>(e)
        .map(|d| d.docked.iter().chain(d.queue.iter()).copied().collect())
        .unwrap_or_default();
    let _ = state.world.despawn(e);
    state.index.remove(&id);
    for h in orphans {
        harvest::go_idle(state, h);
    }
    let seen = last_mask | owner.map_or(0, State::bit);
    state.removed.push((id, seen));
}
