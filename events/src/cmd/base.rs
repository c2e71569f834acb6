//! Base management a player (or bot) asks for: rally points, repair, and holding a
//! production queue.

use serde::{Deserialize, Serialize};

use crate::ids::{Cell, PlayerId, UnitId};
use crate::kinds::QueueKind;

/// Units that leave this (producing) building go to `at`. Applied by the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRally {
    pub building: UnitId,
    pub at: Cell,
}

/// Start (`on`) or stop repairing an own building. Handled by the economy, which charges
/// for each repair step and asks the engine to heal with [`HealBuilding`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairBuilding {
    pub building: UnitId,
    pub on: bool,
}

/// Hold (`hold`) or resume a production queue's current item. Handled by the economy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldProduction {
    pub queue: QueueKind,
    pub hold: bool,
}

/// Economy only: one paid repair step of `hp` health points for a player's building. The
/// engine heals at most up to full health and answers with `BuildingRepaired`, so the
/// economy refunds what was not healed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealBuilding {
    pub player: PlayerId,
    pub building: UnitId,
    pub hp: u32,
}
