//! `EconomyStepCommitted`: the economy's one entry per step in the `eco` stream.

use serde::{Deserialize, Serialize};

use crate::event::RejectReason;
use crate::ids::PlayerId;
use crate::kinds::{Item, QueueKind};

/// What a production queue is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductionState {
    Building { item: Item, paid: u32, cost: u32 },
    Paused { item: Item, paid: u32, cost: u32 },
    Ready { item: Item },
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
