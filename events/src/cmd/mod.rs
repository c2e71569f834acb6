//! Commands: imperative requests appended to a match's `cmd` stream. The engine applies
//! them at the next tick boundary (or rejects them with a reason); the economy handles
//! the production family.

mod base;
mod engine_ops;
mod orders;
mod production;
mod surrender;

pub use base::{HealBuilding, HoldProduction, RepairBuilding, SetRally};
pub use engine_ops::{ConstructBuilding, SetLowPower, SpawnUnit};
pub use orders::{
    AttackMove, AttackTarget, Harvest, HoldPosition, MoveUnits, ReturnToRefinery, Sell, Stop,
};
pub use production::{CancelProduction, PlaceBuilding, QueueProduction};
pub use surrender::Surrender;

use serde::{Deserialize, Serialize};

/// Every command of the `cmd` stream. Who sent it is in the envelope's `source`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    // Unit orders, from players and bots, applied by the engine.
    MoveUnits(MoveUnits),
    AttackMove(AttackMove),
    AttackTarget(AttackTarget),
    Stop(Stop),
    HoldPosition(HoldPosition),
    Harvest(Harvest),
    ReturnToRefinery(ReturnToRefinery),
    Sell(Sell),
    /// The sender gives up (applied by the engine as that player's defeat).
    Surrender(Surrender),
    // Production, from players and bots, handled by the economy.
    QueueProduction(QueueProduction),
    CancelProduction(CancelProduction),
    PlaceBuilding(PlaceBuilding),
    // Economy-only operations on the world, applied by the engine.
    SpawnUnit(SpawnUnit),
    ConstructBuilding(ConstructBuilding),
    SetLowPower(SetLowPower),
    // Base management: rally points (engine), repair and holding queues (economy), and
    // the economy's paid repair steps (engine).
    SetRally(SetRally),
    RepairBuilding(RepairBuilding),
    HoldProduction(HoldProduction),
    HealBuilding(HealBuilding),
}

impl Command {
    /// The command's type name, as used in logs and rejection notices.
    pub fn name(&self) -> &'static str {
        match self {
            Command::MoveUnits(_) => "MoveUnits",
            Command::AttackMove(_) => "AttackMove",
            Command::AttackTarget(_) => "AttackTarget",
            Command::Stop(_) => "Stop",
            Command::HoldPosition(_) => "HoldPosition",
            Command::Harvest(_) => "Harvest",
            Command::ReturnToRefinery(_) => "ReturnToRefinery",
            Command::Sell(_) => "Sell",
            Command::Surrender(_) => "Surrender",
            Command::QueueProduction(_) => "QueueProduction",
            Command::CancelProduction(_) => "CancelProduction",
            Command::PlaceBuilding(_) => "PlaceBuilding",
            Command::SpawnUnit(_) => "SpawnUnit",
            Command::ConstructBuilding(_) => "ConstructBuilding",
            Command::SetLowPower(_) => "SetLowPower",
            Command::SetRally(_) => "SetRally",
            Command::RepairBuilding(_) => "RepairBuilding",
            Command::HoldProduction(_) => "HoldProduction",
            Command::HealBuilding(_) => "HealBuilding",
        }
    }

    /// True for the commands only the economy service may send.
    pub fn is_economy_only(&self) -> bool {
        matches!(
            self,
            Command::SpawnUnit(_)
                | Command::ConstructBuilding(_)
                | Command::SetLowPower(_)
                | Command::HealBuilding(_)
        )
    }

    /// True for the commands the economy (not the engine) handles.
    pub fn is_production(&self) -> bool {
        matches!(
            self,
            Command::QueueProduction(_)
                | Command::CancelProduction(_)
                | Command::PlaceBuilding(_)
                | Command::RepairBuilding(_)
                | Command::HoldProduction(_)
        )
    }
}

impl crate::codec::Body for Command {
    /// v1 → v2: `MoveUnits` carried its goal as `target: [x, y]`; v2 names it
    /// `to: {x, y}` like every other cell-addressed order.
    fn upcast(from: u16, envelope: &mut rmpv::Value) -> Result<(), String> {
        use crate::codec::{field_mut, rename_field, set_field};
        if from != 1 {
            return Ok(());
        }
        let Some(body) = field_mut(envelope, "body") else {
            return Err("envelope has no body".into());
        };
        let Some(mv) = field_mut(body, "MoveUnits") else {
            return Ok(());
        };
        let Some(rmpv::Value::Array(xy)) = field_mut(mv, "target").cloned() else {
            return Err("v1 MoveUnits without a [x, y] target".into());
        };
        let [x, y] = xy.as_slice() else {
            return Err("v1 MoveUnits target is not [x, y]".into());
        };
        rename_field(mv, "target", "to");
        set_field(
            mv,
            "to",
            rmpv::Value::Map(vec![("x".into(), x.clone()), ("y".into(), y.clone())]),
        );
        Ok(())
    }
}
