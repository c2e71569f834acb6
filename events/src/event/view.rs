//! View frames of the `view` stream: what clients draw, with a visibility mask per entity.

use serde::{Deserialize, Serialize};

use crate::ids::{Cell, PlayerId, Pos, UnitId};
use crate::kinds::{EntityKind, Warhead};

/// A keyframe carries every entity; a delta only the changed ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewKind {
    Keyframe,
    Delta,
}

/// One entity as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityView {
    pub id: UnitId,
    pub owner: PlayerId,
    pub kind: EntityKind,
    pub pos: Pos,
    /// Facing in 1/256 turns, 0 = east, counter-clockwise.
    pub facing: u8,
    pub hp: u32,
    pub max_hp: u32,
    /// Bails carried (harvesters), 0 otherwise.
    pub cargo: u32,
    /// Bit `p` set: player `p` sees this entity this tick.
    pub visible_to: u8,
}

/// A cell's tiberium changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TiberiumChange {
    pub cell: Cell,
    pub bails: u8,
    pub blue: bool,
}

/// A volley fired this tick, for drawing (muzzle flash, tracer, rocket, beam). Effects
/// only: not simulation state and not part of the state hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShotView {
    pub attacker: UnitId,
    /// The attacker's kind (what fired: a rifle, a tank gun, a laser tower...).
    pub kind: EntityKind,
    pub target: UnitId,
    pub warhead: Warhead,
    /// The attacker's position and the point it aimed at.
    pub from: Pos,
    pub to: Pos,
    /// Bit `p` set: player `p` sees the attacker or the target.
    pub visible_to: u8,
}

/// An entity destroyed by a shot this tick (sold buildings are not deaths).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeathView {
    pub id: UnitId,
    pub owner: PlayerId,
    pub kind: EntityKind,
    pub pos: Pos,
    /// The unit whose shot killed it and that shot's warhead.
    pub by: UnitId,
    pub warhead: Warhead,
    /// Bit `p` set: player `p` saw the entity when it died.
    pub visible_to: u8,
}

/// The view after tick `tick`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewFrame {
    pub tick: u64,
    pub kind: ViewKind,
    /// Changed (delta) or all (keyframe) entities.
    pub entities: Vec<EntityView>,
    /// Entities gone since the previous frame, with the players who saw them go.
    pub removed: Vec<(UnitId, u8)>,
    pub tiberium: Vec<TiberiumChange>,
    pub winner: Option<Option<PlayerId>>,
    /// Shots fired this tick (deltas only; absent in frames recorded before effects).
    #[serde(default)]
    pub attacks: Vec<ShotView>,
    /// Entities destroyed by shots this tick (deltas only).
    #[serde(default)]
    pub deaths: Vec<DeathView>,
}
