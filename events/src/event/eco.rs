//! `EconomyStepCommitted`: the economy's one entry per step in the `eco` stream.

use serde::{Deserialize, Serialize};

use crate::event::RejectReason;
use crate::ids::{PlayerId, UnitId};
use crate::kinds::{Item, QueueKind};

/// What a production queue is doing. `queued` counts the further items of the same kind
/// waiting behind the current one (absent in logs written before queues stacked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductionState {
    Building {
        item: Item,
        paid: u32,
        cost: u32,
        #[serde(default, skip_serializing_if = "is_zero")]
        queued: u32,
    },
    /// Waiting for credits (or for its producing building).
    Paused {
        item: Item,
        paid: u32,
        cost: u32,
        #[serde(default, skip_serializing_if = "is_zero")]
        queued: u32,
    },
    /// Put on hold by its player.
    Held {
        item: Item,
        paid: u32,
        cost: u32,
        #[serde(default, skip_serializing_if = "is_zero")]
        queued: u32,
    },
    Ready {
        item: Item,
        #[serde(default, skip_serializing_if = "is_zero")]
        queued: u32,
    },
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One change of the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerEvent {
    CreditsChanged {
        player: PlayerId,
        delta: i64,
        balance: i64,
    },
    QueueChanged {
        player: PlayerId,
        queue: QueueKind,
        state: Option<ProductionState>,
    },
    PowerChanged {
        player: PlayerId,
        output: i32,
        consumption: i32,
        /// Production speed in percent this balance gives (100 unless power is low; 0 in
        /// logs written before it was recorded).
        #[serde(default)]
        speed_pct: u32,
    },
    /// A building's repair started (`on`) or stopped (full health, no credits, sold,
    /// destroyed, or the player's order).
    RepairChanged {
        player: PlayerId,
        building: UnitId,
        on: bool,
    },
    CommandRejected {
        command: uuid::Uuid,
        player: Option<PlayerId>,
        reason: RejectReason,
    },
}

/// The economy folded its inputs up to engine tick `tick`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EconomyStepCommitted {
    pub tick: u64,
    /// Stream ids of the inputs consumed, in order (`tick` entries and `cmd` entries).
    pub consumed: Vec<String>,
    pub events: Vec<LedgerEvent>,
    pub hash: u64,
}
