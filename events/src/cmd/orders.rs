//! Unit orders a player (or bot) gives to its own units.

use serde::{Deserialize, Serialize};

use crate::ids::{Cell, UnitId};

/// Move the units to a cell; a group shares one path and keeps a formation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveUnits {
    pub units: Vec<UnitId>,
    pub to: Cell,
}

/// Move towards a cell, engaging any enemy met on the way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackMove {
    pub units: Vec<UnitId>,
    pub to: Cell,
}

/// Attack one target until it dies or the order changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackTarget {
    pub units: Vec<UnitId>,
    pub target: UnitId,
}

/// Drop every order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {
    pub units: Vec<UnitId>,
}

/// Stay put; fire only at what comes into range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldPosition {
    pub units: Vec<UnitId>,
}

/// Harvesters: go and harvest the field at this cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Harvest {
    pub units: Vec<UnitId>,
    pub at: Cell,
}

/// Harvesters: go back to the nearest own refinery and unload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnToRefinery {
    pub units: Vec<UnitId>,
}

/// Sell an own building for half its cost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sell {
    pub building: UnitId,
}
