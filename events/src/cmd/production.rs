//! Production requests a player (or bot) makes of the economy.

use serde::{Deserialize, Serialize};

use crate::ids::Cell;
use crate::kinds::{BuildingKind, Item, QueueKind};

/// Start building an item in its queue, or queue one more of the item the queue is
/// building (one kind of item at a time per queue, up to the rules' `queue_limit`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueProduction {
    pub item: Item,
}

/// Cancel one item of a queue: one of those waiting behind the current item (nothing was
/// paid for them), else the current item, whose payment is refunded.
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
