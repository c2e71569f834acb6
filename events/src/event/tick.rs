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
    /// Entries of the `cmd` stream this tick consumed without applying them, by stream
    /// id: they did not decode (or named another match) and went to the dead-letter
    /// stream. With `applied` this names everything the tick read, so an instance taking
    /// the match over resumes after it instead of dead-lettering them again. Absent from
    /// older logs and from ticks that dead-lettered nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dead_lettered: Vec<String>,
}
