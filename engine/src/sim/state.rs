//! The simulation state: the hecs world with its components, the per-player state, the
//! id index, and the derived grids (building occupancy, vision, spatial buckets).
//!
//! Everything not marked "derived" is hashed every tick and written to snapshots;
//! derived data is rebuilt from it on restore.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use events::{
    BuildingKind, Cell, DeathView, EntityKind, EntityView, GameEvent, PlayerId, Pos, ShotView,
    TiberiumChange, UnitId, UnitKind,
};
use serde::{Deserialize, Serialize};

use crate::map::Map;
use crate::rng::Rng;
use crate::rules::Rules;
use crate::sim::spatial::Spatial;
use crate::sim::vision::Vision;

/// What an entity is and who owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ident {
    pub id: UnitId,
    pub owner: PlayerId,
    pub kind: EntityKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub hp: u32,
    pub max: u32,
}

/// Where an entity is (buildings: the centre of the footprint) and where it faces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    pub pos: Pos,
    pub facing: u8,
}

/// A unit's standing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// Guard: engage what comes into sight, do not wander off.
    Idle,
    /// Go there, ignoring enemies.
    Move,
    /// Go to `goal`, engaging enemies met on the way.
    AttackMove { goal: Cell },
    /// Attack one target until it dies.
    Attack { target: UnitId },
    /// Never move; fire at what comes into range.
    Hold,
    /// Movement is driven by the harvester's job.
    Harvest,
}

/// A ground unit's movement state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mobile {
    /// Fixed-point units per tick.
    pub speed: i32,
    pub order: Order,
    /// Where the unit is heading; `None` when standing.
    pub dest: Option<Cell>,
    /// Waypoints (cells) to `dest`; `step` is the next one.
    pub path: Vec<Cell>,
    pub step: u32,
    /// A path request for `dest` is queued.
    pub waiting: bool,
    /// Bumped whenever `dest` changes so stale path answers are dropped.
    pub token: u32,
    /// Ticks without progress (repath, then give up).
    pub stuck: u16,
    /// Distance to the current waypoint after the last step (progress detection).
    pub last_dist: u32,
    /// Digest of `path`, kept so the per-tick state hash covers every waypoint without
    /// rehashing them all (derived: recomputed on restore).
    #[serde(skip)]
    pub path_digest: u64,
}

impl Mobile {
    /// Sets the path and the index of the first waypoint to walk to.
    pub fn set_path(&mut self, path: Vec<Cell>, step: u32) {
        self.path_digest = path_digest(&path);
        self.path = path;
        self.step = step;
        self.last_dist = u32::MAX;
    }

    pub fn clear_path(&mut self) {
        self.path.clear();
        self.path_digest = 0;
        self.step = 0;
        self.last_dist = u32::MAX;
    }
}

/// The hash of a path's cells.
pub fn path_digest(path: &[Cell]) -> u64 {
    let mut bytes = Vec::with_capacity(path.len() * 4);
    for c in path {
        bytes.extend_from_slice(&c.x.to_le_bytes());
        bytes.extend_from_slice(&c.y.to_le_bytes());
    }
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// A weapon's state; its numbers come from the rules by entity kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weapon {
    /// Ticks until the next shot may fire.
    pub reload: u32,
    pub target: Option<UnitId>,
    /// The target was ordered (chase it anywhere) rather than picked up on sight.
    pub explicit: bool,
}

/// A building's cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footprint {
    pub at: Cell,
    pub w: u16,
    pub h: u16,
}

impl Footprint {
    pub fn cells(self) -> impl Iterator<Item = Cell> {
        (self.at.y..self.at.y.saturating_add(self.h)).flat_map(move |y| {
            (self.at.x..self.at.x.saturating_add(self.w)).map(move |x| Cell::new(x, y))
        })
    }

    pub fn center(self) -> Pos {
        Pos::new(
            i32::from(self.at.x) * events::CELL + i32::from(self.w) * events::CELL / 2,
            i32::from(self.at.y) * events::CELL + i32::from(self.h) * events::CELL / 2,
        )
    }

    /// The point of the footprint closest to `p` (for ranges to buildings).
    pub fn nearest_point(self, p: Pos) -> Pos {
        let x0 = i32::from(self.at.x) * events::CELL;
        let y0 = i32::from(self.at.y) * events::CELL;
        let x1 = x0 + i32::from(self.w) * events::CELL - 1;
        let y1 = y0 + i32::from(self.h) * events::CELL - 1;
        Pos::new(p.x.clamp(x0, x1), p.y.clamp(y0, y1))
    }
}

/// Where units leaving a producing building go (set by its player).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rally(pub Cell);

/// What a harvester is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Job {
    Idle,
    /// Driving to a cell of a field.
    Going {
        field: u16,
        cell: Cell,
    },
    /// Standing on a cell, loading a bail every `load_ms_per_bail`.
    Loading {
        field: u16,
        cell: Cell,
    },
    /// Driving to a refinery's dock.
    Returning {
        refinery: UnitId,
    },
    /// At the dock, waiting for another harvester to finish.
    Queued {
        refinery: UnitId,
    },
    /// Holding the dock (driving onto it or unloading).
    Docked {
        refinery: UnitId,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Harvester {
    pub green: u32,
    pub blue: u32,
    pub job: Job,
    /// Ticks until the next bail is loaded or unloaded.
    pub timer: u32,
}

impl Harvester {
    pub fn cargo(&self) -> u32 {
        self.green.saturating_add(self.blue)
    }
}

/// A refinery's dock: one harvester at a time, the others queue in arrival order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Dock {
    pub docked: Option<UnitId>,
    pub queue: VecDeque<UnitId>,
}

/// Sight radius and where it is currently stamped on the vision grid (derived).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sight {
    pub radius: u16,
    pub stamped: Option<Cell>,
}

/// The view clients last got of an entity (derived: drives the deltas).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastView(pub Option<EntityView>);

/// One player's simulation state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerState {
    pub id: PlayerId,
    pub low_power: bool,
    pub defeated: bool,
}

/// A queued path search: the units (with their `token` at request time) share it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRequest {
    pub units: Vec<(UnitId, u32)>,
    pub goal: Cell,
}

/// Per-player FIFO queues served round-robin, so one player's mass orders cannot starve
/// another's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PathQueue {
    pub queues: Vec<VecDeque<PathRequest>>,
    /// The player queue served first next tick.
    pub next: usize,
}

/// A spawn or placement staged by the command phase for the spawn phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pending {
    Spawn {
        command: uuid::Uuid,
        player: PlayerId,
        kind: UnitKind,
    },
    Construct {
        player: PlayerId,
        kind: BuildingKind,
        at: Cell,
        request: u64,
    },
}

/// Every entity's full state, in one record (snapshots).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRecord {
    pub ident: Ident,
    pub health: Health,
    pub body: Body,
    pub mobile: Option<Mobile>,
    pub weapon: Option<Weapon>,
    pub footprint: Option<Footprint>,
    pub harvester: Option<Harvester>,
    pub dock: Option<Dock>,
    /// Absent from snapshots taken before rally points.
    #[serde(default)]
    pub rally: Option<Rally>,
}

/// The whole simulation state.
pub struct State {
    pub rules: Arc<Rules>,
    /// The tick the next step runs.
    pub tick: u64,
    pub rng: Rng,
    pub next_id: u32,
    pub map: Map,
    pub players: Vec<PlayerState>,
    pub world: hecs::World,
    /// Live entities by id: iterating it is the canonical (id) order.
    pub index: BTreeMap<UnitId, hecs::Entity>,
    pub paths: PathQueue,
    pub winner: Option<Option<PlayerId>>,
    /// Derived: building id + 1 per cell, 0 where no building stands.
    pub blocked: Vec<u32>,
    /// Derived: per-player vision counts.
    pub vision: Vision,
    /// Derived: units bucketed by cell, rebuilt when positions change.
    pub spatial: Spatial,
    /// Per-tick scratch: staged spawns, outcome events, removals, tiberium changes.
    pub pending: Vec<Pending>,
    pub events: Vec<GameEvent>,
    pub removed: Vec<(UnitId, u8)>,
    pub tiberium: Vec<TiberiumChange>,
    /// Per-tick scratch for the view: shots fired and deaths by shots (not hashed).
    pub shots: Vec<ShotView>,
    pub deaths: Vec<DeathView>,
}

impl State {
    /// The index of a player in `players`, if it plays in this match.
    pub fn player_index(&self, p: PlayerId) -> Option<usize> {
        self.players.iter().position(|s| s.id == p)
    }

    pub fn entity(&self, id: UnitId) -> Option<hecs::Entity> {
        self.index.get(&id).copied()
    }

    pub fn ident(&self, id: UnitId) -> Option<Ident> {
        let e = self.entity(id)?;
        self.world.get::<&Ident>(e).ok().map(|i| *i)
    }

    pub fn pos(&self, id: UnitId) -> Option<Pos> {
        let e = self.entity(id)?;
        self.world.get::<&Body>(e).ok().map(|b| b.pos)
    }

    pub fn footprint(&self, id: UnitId) -> Option<Footprint> {
        let e = self.entity(id)?;
        self.world.get::<&Footprint>(e).ok().map(|f| *f)
    }

    /// Allocates the next entity id (ids are never reused).
    pub fn alloc_id(&mut self) -> UnitId {
        let id = UnitId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Whether a ground unit may stand on a cell (terrain and buildings).
    pub fn is_free(&self, c: Cell) -> bool {
        self.map.in_bounds(c) && crate::path::free(&self.map, &self.blocked, self.map.index(c))
    }

    /// The sorted ids of one player's buildings of a kind.
    pub fn buildings_of(&self, owner: PlayerId, kind: BuildingKind) -> Vec<UnitId> {
        let mut ids: Vec<UnitId> = self
            .world
            .query::<(&Ident, &Footprint)>()
            .iter()
            .filter(|(i, _)| i.owner == owner && i.kind == EntityKind::Building(kind))
            .map(|(i, _)| i.id)
            .collect();
        // hecs order is arbitrary.
        ids.sort_unstable();
        ids
    }

    /// Every entity's record in id order (snapshots, hashing).
    pub fn records(&self) -> Vec<EntityRecord> {
        self.index
            .values()
            .filter_map(|&e| self.record(e))
            .collect()
    }

    pub fn record(&self, e: hecs::Entity) -> Option<EntityRecord> {
        let w = &self.world;
        Some(EntityRecord {
            ident: *w.get::<&Ident>(e).ok()?,
            health: *w.get::<&Health>(e).ok()?,
            body: *w.get::<&Body>(e).ok()?,
            mobile: w.get::<&Mobile>(e).ok().map(|m| (*m).clone()),
            weapon: w.get::<&Weapon>(e).ok().map(|m| *m),
            footprint: w.get::<&Footprint>(e).ok().map(|m| *m),
            harvester: w.get::<&Harvester>(e).ok().map(|m| *m),
            dock: w.get::<&Dock>(e).ok().map(|m| (*m).clone()),
            rally: w.get::<&Rally>(e).ok().map(|m| *m),
        })
    }

    /// Bit mask of a player id (0 for ids that do not fit the mask).
    pub fn bit(p: PlayerId) -> u8 {
        if p.0 < 8 {
            1 << p.0
        } else {
            0
        }
    }
}
