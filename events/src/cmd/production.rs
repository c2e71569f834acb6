//! Production requests a player (or bot) makes of the economy.

use serde::{Deserialize, Serialize};

use crate::ids::Cell;
use crate::kinds::{BuildingKind, Item, QueueKind};

/// Start building an item in its queue (one item at a time per queue).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueProduction {
    pub item: Item,
}

/// Cancel what a queue is building; what was paid is refunded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelProduction {
    pub queue: QueueKind,
}

/// Place a finished ("ready") building with its top-left corner at a cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceBuilding {
    pub building: BuildingKind,
    pub at: Cell,
}
