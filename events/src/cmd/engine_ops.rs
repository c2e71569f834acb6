//! Operations on the world that only the economy may ask of the engine.

use serde::{Deserialize, Serialize};

use crate::ids::{Cell, PlayerId};
use crate::kinds::{BuildingKind, UnitKind};

/// A finished unit leaves the player's producing building.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnUnit {
    pub player: PlayerId,
    pub kind: UnitKind,
}

/// Put a paid, ready building on the map. `request` ties the engine's answer
/// (placed or placement failed) to this request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConstructBuilding {
    pub player: PlayerId,
    pub kind: BuildingKind,
    pub at: Cell,
    pub request: u64,
}

/// The player's power balance: when low, Laser Towers are offline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetLowPower {
    pub player: PlayerId,
    pub low: bool,
}
