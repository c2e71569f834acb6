//! `TickCommitted`: the engine's one entry per tick in the `tick` stream.

use serde::{Deserialize, Serialize};

use super::game::GameEvent;

/// A command the engine consumed at this tick, by its position in the `cmd` stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedCommand {
    /// The command's id in the `cmd` stream.
    pub stream_id: String,
    /// The command envelope's event id.
    pub event_id: uuid::Uuid,
}

/// Tick `tick` is done: these commands were applied (in this order), this happened, and the
/// state now hashes to `hash`. Re-running the tick from the previous state and these
/// commands must give the same events and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickCommitted {
    pub tick: u64,
    pub applied: Vec<AppliedCommand>,
    pub events: Vec<GameEvent>,
    pub hash: u64,
}
