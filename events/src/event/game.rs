//! Outcome events of a tick: what the simulation decided happened.

use serde::{Deserialize, Serialize};

use crate::ids::{Cell, PlayerId, Pos, UnitId};
use crate::kinds::{BuildingKind, EntityKind, UnitKind};

/// Why a command was not applied. Clients show these to players.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The unit or building belongs to someone else.
    NotYourUnit(UnitId),
    /// No such live entity.
    NoSuchUnit(UnitId),
    /// The order does not apply to this kind of entity (e.g. harvest with a tank).
    WrongKind(UnitId),
    /// A cell outside the map.
    OutOfMap(Cell),
    /// The goal cell cannot be reached by ground units.
    Unreachable(Cell),
    /// Only the economy service may send this command.
    NotAllowed,
    /// A spectator or an unknown player sent it.
    NotAPlayer,
    /// The player has been defeated.
    Defeated,
    /// Not enough credits.
    NoFunds,
    /// A prerequisite building is missing.
    MissingPrerequisite(BuildingKind),
    /// The queue is already building something.
    QueueBusy,
    /// Nothing to cancel or place.
    NothingReady,
    /// Placement rules: blocked cells, not clear, too far from own buildings.
    BadPlacement(String),
    /// The command names nothing (empty unit list and the like).
    Empty,
    /// No own refinery to return to, or no producing building.
    NoProducer,
    /// The queue already holds as many of the item as the rules allow.
    QueueFull,
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectReason::NotYourUnit(u) => write!(f, "unit {u} is not yours"),
            RejectReason::NoSuchUnit(u) => write!(f, "no unit {u}"),
            RejectReason::WrongKind(u) => write!(f, "unit {u} cannot do that"),
            RejectReason::OutOfMap(c) => write!(f, "cell ({}, {}) is outside the map", c.x, c.y),
            RejectReason::Unreachable(c) => write!(f, "cell ({}, {}) cannot be reached", c.x, c.y),
            RejectReason::NotAllowed => f.write_str("only the economy may send this command"),
            RejectReason::NotAPlayer => f.write_str("only players may command"),
            RejectReason::Defeated => f.write_str("you have been defeated"),
            RejectReason::NoFunds => f.write_str("not enough credits"),
            RejectReason::MissingPrerequisite(b) => write!(f, "requires {}", b.name()),
            RejectReason::QueueBusy => f.write_str("that queue is busy"),
            RejectReason::NothingReady => f.write_str("nothing ready"),
            RejectReason::BadPlacement(why) => write!(f, "cannot place there: {why}"),
            RejectReason::Empty => f.write_str("the command names no units"),
            RejectReason::NoProducer => f.write_str("no building can do that"),
            RejectReason::QueueFull => f.write_str("that queue is full"),
        }
    }
}

/// One outcome of a tick, in the order the systems produced them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GameEvent {
    /// Tick 0: the match started with these rules and map.
    MatchStarted {
        rules_hash: u64,
        map_hash: u64,
        players: Vec<PlayerId>,
        /// The simulation logic version of the engine that ran the match (`0`: recorded
        /// before the engine announced it). A re-run by another version may differ by
        /// design rather than by a desync.
        #[serde(default)]
        sim_version: u32,
    },
    UnitSpawned {
        id: UnitId,
        owner: PlayerId,
        kind: UnitKind,
        at: Pos,
    },
    BuildingPlaced {
        id: UnitId,
        owner: PlayerId,
        kind: BuildingKind,
        at: Cell,
        /// The economy's request number; 0 for start buildings.
        request: u64,
    },
    PlacementFailed {
        owner: PlayerId,
        kind: BuildingKind,
        request: u64,
        reason: RejectReason,
    },
    EntityDestroyed {
        id: UnitId,
        owner: PlayerId,
        kind: EntityKind,
        by: Option<PlayerId>,
    },
    BuildingSold {
        id: UnitId,
        owner: PlayerId,
        kind: BuildingKind,
    },
    CommandRejected {
        /// The rejected command's event id.
        command: uuid::Uuid,
        player: Option<PlayerId>,
        reason: RejectReason,
    },
    /// A finished unit could not be put on the map (its producing building is gone);
    /// the economy refunds its cost.
    SpawnFailed {
        /// The economy's `SpawnUnit` command.
        command: uuid::Uuid,
        player: PlayerId,
        kind: UnitKind,
        reason: RejectReason,
    },
    HarvesterUnloaded {
        unit: UnitId,
        owner: PlayerId,
        refinery: UnitId,
        bails: u32,
        credits: u32,
    },
    HarvesterFull {
        unit: UnitId,
        owner: PlayerId,
    },
    HarvesterIdle {
        unit: UnitId,
        owner: PlayerId,
        at: Cell,
    },
    HarvesterAttacked {
        unit: UnitId,
        owner: PlayerId,
        by: Option<PlayerId>,
    },
    BuildingAttacked {
        id: UnitId,
        owner: PlayerId,
        by: Option<PlayerId>,
    },
    /// The engine applied one of the economy's paid repair steps (`HealBuilding`): it
    /// healed `healed` of the `requested` health points (0 when the building is gone or
    /// not the player's), leaving it at `hp` of `max_hp` (both 0 when gone). The economy
    /// refunds what was not healed and stops repairing at full health.
    BuildingRepaired {
        id: UnitId,
        owner: PlayerId,
        requested: u32,
        healed: u32,
        hp: u32,
        max_hp: u32,
    },
    /// A cell's tiberium changed (harvested, regrown, spread). The economy folds these
    /// into its own view of the fields for the harvester AI.
    TiberiumChanged {
        cell: Cell,
        bails: u8,
        blue: bool,
    },
    PlayerDefeated {
        player: PlayerId,
    },
    MatchWon {
        winner: Option<PlayerId>,
    },
}
