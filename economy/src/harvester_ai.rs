//! The harvester AI: sends every player's harvesters to the best field, back to a
//! refinery when full or when their field runs dry, and away when attacked.
//!
//! Field choice follows the rules sheet: value / (path distance + 1), divided further for
//! congestion (other harvesters already going there) and threat (recent attacks on own
//! harvesters at that field, or enemy buildings next to it). The weights below are AI
//! heuristics, not balance numbers, so they live here rather than in the rules file.

use std::collections::{BTreeMap, BTreeSet};

use events::cmd::{Harvest, MoveUnits, ReturnToRefinery};
use events::{BuildingKind, Cell, Command, PlayerId, UnitId};
use rules::Rules;
use serde::{Deserialize, Serialize};

use crate::fields::{FieldId, Geo, Tiberium};

/// Each other harvester already bound for a field divides its score by one more.
const CONGESTION_DIVISOR_STEP: u64 = 1;
/// A threatened field's score is divided by this.
const THREAT_DIVISOR: u64 = 4;
/// An attack on a harvester marks its field as threatened for this long.
const THREAT_MEMORY_S: u64 = 60;
/// Enemy buildings within this many cells of a field make it threatened.
const THREAT_RADIUS_CELLS: u16 = 8;
/// A fleeing harvester runs for this long before it is sent harvesting again.
const FLEE_S: u64 = 8;
/// A harvester that reports nothing (full, unloading, idle) for this long while it
/// should be busy is assumed jammed (e.g. head-on against another unit in a lane): it is
/// nudged aside, then re-ordered (to another field if it was harvesting).
const WATCHDOG_S: u64 = 60;
/// How far (cells) and how long a nudge goes before the harvester is re-ordered.
const NUDGE_CELLS: i32 = 3;
const NUDGE_S: u64 = 4;
/// The field a jammed harvester was bound for has its score divided by this once.
const AVOID_DIVISOR: u64 = 8;
/// Fixed-point scale of field scores.
const SCORE_SCALE: u64 = 10_000;

/// What the AI last told a harvester to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Task {
    /// Waiting for an order (no field worth going to).
    Idle,
    Harvesting {
        field: FieldId,
    },
    Returning {
        field: Option<FieldId>,
    },
    Fleeing {
        until: u64,
        field: Option<FieldId>,
    },
    /// Moved aside by the watchdog; `returning` says what to resume.
    Nudged {
        until: u64,
        field: Option<FieldId>,
        returning: bool,
    },
}

impl Task {
    fn field(self) -> Option<FieldId> {
        match self {
            Task::Idle => None,
            Task::Harvesting { field } => Some(field),
            Task::Returning { field }
            | Task::Fleeing { field, .. }
            | Task::Nudged { field, .. } => field,
        }
    }
}

/// One harvester.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Harvester {
    pub owner: PlayerId,
    /// Last known cell (spawn or idle report).
    pub at: Cell,
    pub task: Task,
    /// Tick of its last report or order.
    pub since: u64,
    /// A field to avoid on the next choice (the watchdog's nudge).
    pub avoid: Option<FieldId>,
}

/// Harvester AI state: part of the hashed economy state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HarvesterAi {
    pub units: BTreeMap<UnitId, Harvester>,
    /// (owner, field) → tick until which the field counts as threatened for that owner.
    threats: BTreeMap<(PlayerId, FieldId), u64>,
    /// Harvesters to (re)order at the end of this step.
    pending: BTreeSet<UnitId>,
    /// The tick being folded.
    now: u64,
}

/// What the harvester AI reads from the rest of the economy when it decides.
pub struct World<'a> {
    pub rules: &'a Rules,
    pub tick: u64,
    pub tiberium: &'a Tiberium,
    pub geo: &'a mut Geo,
    /// Every building on the map: (owner, kind, top-left cell), in id order.
    pub buildings: &'a [(PlayerId, BuildingKind, Cell)],
}

/// A cell a few cells from `at` in a direction that varies with the unit and the time,
/// so two jammed harvesters are pushed different ways.
fn nudge(at: Cell, id: UnitId, tick: u64, size: u16) -> Cell {
    const DIRS: [(i32, i32); 8] = [
        (1, 0),
        (1, 1),
        (0, 1),
        (-1, 1),
        (-1, 0),
        (-1, -1),
        (0, -1),
        (1, -1),
    ];
    let k = (u64::from(id.0).wrapping_mul(5) + tick / 7) % 8;
    let (dx, dy) = DIRS[k as usize];
    let n = i32::from(size.max(1)) - 1;
    Cell::new(
        (i32::from(at.x) + dx * NUDGE_CELLS).clamp(0, n) as u16,
        (i32::from(at.y) + dy * NUDGE_CELLS).clamp(0, n) as u16,
    )
}

fn seconds(rules: &Rules, s: u64) -> u64 {
    s * u64::from(rules.tick_hz)
}

impl HarvesterAi {
    /// Starts folding a tick.
    pub fn begin(&mut self, tick: u64) {
        self.now = tick;
    }

    pub fn spawned(&mut self, id: UnitId, owner: PlayerId, at: Cell) {
        self.units.insert(
            id,
            Harvester {
                owner,
                at,
                task: Task::Idle,
                since: self.now,
                avoid: None,
            },
        );
        self.pending.insert(id);
    }

    /// The harvester is making progress (it unloaded a bail).
    pub fn progressed(&mut self, id: UnitId) {
        if let Some(h) = self.units.get_mut(&id) {
            h.since = self.now;
        }
    }

    /// The engine reports the harvester idle: after unloading, or when its field ran
    /// dry under it (then it may carry a part load, so it unloads first).
    pub fn idle(
        &mut self,
        id: UnitId,
        owner: PlayerId,
        at: Cell,
        is_dry: impl Fn(FieldId) -> bool,
        out: &mut Vec<Command>,
    ) {
        let now = self.now;
        let h = self.units.entry(id).or_insert(Harvester {
            owner,
            at,
            task: Task::Idle,
            since: now,
            avoid: None,
        });
        h.at = at;
        h.since = now;
        match h.task {
            // A fleeing harvester stays away until its time is up.
            Task::Fleeing { .. } | Task::Nudged { .. } => {}
            Task::Harvesting { field } if is_dry(field) => {
                h.task = Task::Returning { field: None };
                self.pending.remove(&id);
                out.push(Command::ReturnToRefinery(ReturnToRefinery {
                    units: vec![id],
                }));
            }
            _ => {
                h.task = Task::Idle;
                self.pending.insert(id);
            }
        }
    }

    pub fn destroyed(&mut self, id: UnitId) {
        self.units.remove(&id);
        self.pending.remove(&id);
    }

    /// Full: back to the nearest own refinery (the engine picks it).
    pub fn full(&mut self, id: UnitId, out: &mut Vec<Command>) {
        if let Some(h) = self.units.get_mut(&id) {
            h.since = self.now;
            h.task = Task::Returning {
                field: h.task.field(),
            };
            self.pending.remove(&id);
            out.push(Command::ReturnToRefinery(ReturnToRefinery {
                units: vec![id],
            }));
        }
    }

    /// Attacked: mark the field as threatened and run home (once per flight).
    pub fn attacked(
        &mut self,
        rules: &Rules,
        id: UnitId,
        tick: u64,
        home: Option<Cell>,
        out: &mut Vec<Command>,
    ) {
        let Some(h) = self.units.get_mut(&id) else {
            return;
        };
        let field = h.task.field();
        if let Some(f) = field {
            self.threats
                .insert((h.owner, f), tick + seconds(rules, THREAT_MEMORY_S));
        }
        if matches!(h.task, Task::Fleeing { .. }) {
            return;
        }
        let Some(to) = home else { return };
        h.task = Task::Fleeing {
            until: tick + seconds(rules, FLEE_S),
            field,
        };
        self.pending.remove(&id);
        out.push(Command::MoveUnits(MoveUnits {
            units: vec![id],
            to,
        }));
    }

    /// A field ran dry: whoever works it goes home to unload what it carries.
    pub fn field_exhausted(&mut self, field: FieldId, out: &mut Vec<Command>) {
        let mut ids = Vec::new();
        for (id, h) in self.units.iter_mut() {
            if h.task == (Task::Harvesting { field }) {
                h.task = Task::Returning { field: None };
                ids.push(*id);
            }
        }
        if !ids.is_empty() {
            out.push(Command::ReturnToRefinery(ReturnToRefinery { units: ids }));
        }
    }

    /// Forgets threats that expired, queues fleeing harvesters whose time is up, and
    /// nudges harvesters that went quiet for too long, then re-orders them.
    pub fn tick(&mut self, rules: &Rules, size: u16, out: &mut Vec<Command>) {
        let tick = self.now;
        let watchdog = seconds(rules, WATCHDOG_S);
        self.threats.retain(|_, until| *until > tick);
        let mut returning = Vec::new();
        for (id, h) in self.units.iter_mut() {
            match h.task {
                Task::Fleeing { until, .. } if until <= tick => {
                    h.task = Task::Idle;
                    self.pending.insert(*id);
                }
                Task::Nudged {
                    until,
                    field,
                    returning: back,
                } if until <= tick => {
                    h.since = tick;
                    if back {
                        h.task = Task::Returning { field };
                        returning.push(*id);
                    } else {
                        h.task = Task::Idle;
                        h.avoid = field;
                        self.pending.insert(*id);
                    }
                }
                Task::Harvesting { .. } | Task::Returning { .. } if tick >= h.since + watchdog => {
                    h.since = tick;
                    h.task = Task::Nudged {
                        until: tick + seconds(rules, NUDGE_S),
                        field: h.task.field(),
                        returning: matches!(h.task, Task::Returning { .. }),
                    };
                    out.push(Command::MoveUnits(MoveUnits {
                        units: vec![*id],
                        to: nudge(h.at, *id, tick, size),
                    }));
                }
                _ => {}
            }
        }
        if !returning.is_empty() {
            out.push(Command::ReturnToRefinery(ReturnToRefinery {
                units: returning,
            }));
        }
    }

    /// Orders every harvester that needs one, in id order, so that each choice already
    /// counts the ones made before it.
    pub fn decide(&mut self, world: &mut World<'_>, out: &mut Vec<Command>) {
        let pending = std::mem::take(&mut self.pending);
        for id in pending {
            let Some(h) = self.units.get(&id).copied() else {
                continue;
            };
            let choice = self.choose(world, id, &h);
            if let Some(u) = self.units.get_mut(&id) {
                u.avoid = None;
                u.since = world.tick;
            }
            match choice {
                Some((field, at)) => {
                    if let Some(u) = self.units.get_mut(&id) {
                        u.task = Task::Harvesting { field };
                    }
                    out.push(Command::Harvest(Harvest {
                        units: vec![id],
                        at,
                    }));
                }
                None => {
                    if let Some(u) = self.units.get_mut(&id) {
                        u.task = Task::Idle;
                    }
                }
            }
        }
    }

    /// The best field for this harvester and the cell to send it to.
    fn choose(&self, world: &mut World<'_>, id: UnitId, h: &Harvester) -> Option<(FieldId, Cell)> {
        let mut best: Option<(u64, FieldId)> = None;
        let fields: Vec<(FieldId, u64)> = world
            .tiberium
            .fields()
            .filter(|(_, f)| f.value > 0)
            .map(|(id, f)| (id, f.value))
            .collect();
        for (fid, value) in fields {
            let Some(dist) = world.geo.distance(world.tiberium, fid, h.at) else {
                continue;
            };
            let others = self
                .units
                .iter()
                .filter(|(oid, o)| **oid != id && o.task.field() == Some(fid))
                .count() as u64;
            let threatened = self
                .threats
                .get(&(h.owner, fid))
                .is_some_and(|until| *until > world.tick)
                || world.buildings.iter().any(|(owner, _, at)| {
                    *owner != h.owner && world.tiberium.field_near(fid, *at, THREAT_RADIUS_CELLS)
                });
            // value / (distance in cells + 1), with distance in tenths of a cell.
            let mut score = value * SCORE_SCALE * 10 / (u64::from(dist) + 10);
            score /= 1 + CONGESTION_DIVISOR_STEP * others;
            if threatened {
                score /= THREAT_DIVISOR;
            }
            if h.avoid == Some(fid) {
                score /= AVOID_DIVISOR;
            }
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, fid));
            }
        }
        let (_, fid) = best?;
        let at = world.tiberium.nearest_cell_with_bails(fid, h.at)?;
        Some((fid, at))
    }

    /// How many harvesters each player has.
    pub fn count(&self, owner: PlayerId) -> usize {
        self.units.values().filter(|h| h.owner == owner).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Rules, Tiberium) {
        let r = Rules::standard();
        let mut t = Tiberium::new();
        // Field 0: small and near; field 1: large and far.
        t.add_field(&r, 0, [(Cell::new(12, 10), 12, false)]);
        t.add_field(&r, 1, (0..6).map(|i| (Cell::new(40 + i, 40), 12u8, false)));
        (r, t)
    }

    #[test]
    fn value_over_distance_then_congestion_then_threat() {
        let (r, t) = setup();
        let mut geo = Geo::open(64);
        let mut ai = HarvesterAi::default();
        ai.spawned(UnitId(1), PlayerId(0), Cell::new(10, 10));
        let mut out = Vec::new();
        let mut w = World {
            rules: &r,
            tick: 0,
            tiberium: &t,
            geo: &mut geo,
            buildings: &[],
        };
        ai.decide(&mut w, &mut out);
        assert_eq!(
            out,
            vec![Command::Harvest(Harvest {
                units: vec![UnitId(1)],
                at: Cell::new(12, 10)
            })]
        );
        // A second and third harvester at the same place: congestion on field 0 pushes
        // one of them to the big field.
        ai.spawned(UnitId(2), PlayerId(0), Cell::new(10, 10));
        ai.spawned(UnitId(3), PlayerId(0), Cell::new(10, 10));
        out.clear();
        ai.decide(&mut w, &mut out);
        let fields: Vec<_> = [2, 3]
            .iter()
            .map(|i| ai.units[&UnitId(*i)].task.field())
            .collect();
        assert!(fields.contains(&Some(1)), "{fields:?}");

        // Harvester 1 attacked at field 0: it flees home and field 0 is threatened.
        out.clear();
        ai.attacked(&r, UnitId(1), 5, Some(Cell::new(5, 5)), &mut out);
        assert!(matches!(out[0], Command::MoveUnits(_)));
        assert!(matches!(ai.units[&UnitId(1)].task, Task::Fleeing { .. }));
        out.clear();
        ai.attacked(&r, UnitId(1), 6, Some(Cell::new(5, 5)), &mut out);
        assert!(out.is_empty(), "no second flight while fleeing");
        ai.begin(5 + seconds(&r, FLEE_S));
        ai.tick(&r, 64, &mut Vec::new());
        out.clear();
        let mut w = World {
            rules: &r,
            tick: 5 + seconds(&r, FLEE_S),
            tiberium: &t,
            geo: &mut geo,
            buildings: &[],
        };
        ai.decide(&mut w, &mut out);
        assert_eq!(ai.units[&UnitId(1)].task.field(), Some(1));
    }

    #[test]
    fn full_and_exhausted_send_harvesters_home() {
        let (r, t) = setup();
        let mut geo = Geo::open(64);
        let mut ai = HarvesterAi::default();
        ai.spawned(UnitId(1), PlayerId(0), Cell::new(10, 10));
        let mut out = Vec::new();
        let mut w = World {
            rules: &r,
            tick: 0,
            tiberium: &t,
            geo: &mut geo,
            buildings: &[],
        };
        ai.decide(&mut w, &mut out);
        out.clear();
        ai.field_exhausted(0, &mut out);
        assert_eq!(
            out,
            vec![Command::ReturnToRefinery(ReturnToRefinery {
                units: vec![UnitId(1)]
            })]
        );
        out.clear();
        ai.full(UnitId(1), &mut out);
        assert_eq!(out.len(), 1);
    }
}
