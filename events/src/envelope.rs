//! The envelope every stream entry is wrapped in: schema version, ids, source, time, body.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{MatchId, PlayerId};

/// The schema version this build writes. Older versions are upcast on read
/// (see [`crate::codec`]); newer ones are refused with a clear error.
pub const SCHEMA_VERSION: u16 = 2;

/// Who produced an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A human player, through a gateway.
    Player(PlayerId),
    /// An AI opponent playing this player slot.
    Bot(PlayerId),
    /// The economy service.
    Economy,
    /// The engine or another part of the system itself.
    System,
}

impl Source {
    /// The player this source commands for, if any.
    pub fn player(self) -> Option<PlayerId> {
        match self {
            Source::Player(p) | Source::Bot(p) => Some(p),
            Source::Economy | Source::System => None,
        }
    }
}

/// A typed body with its metadata. `B` is the stream's body type
/// ([`crate::Command`], [`crate::TickCommitted`], ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<B> {
    /// Schema version the entry was written with.
    pub v: u16,
    /// Unique event id (uuid v7: time-ordered).
    pub id: Uuid,
    pub match_id: MatchId,
    pub source: Source,
    /// Wall-clock send time, milliseconds since the Unix epoch. Informational only:
    /// the simulation never reads it.
    pub sent_ms: u64,
    pub body: B,
}

impl<B> Envelope<B> {
    /// A new envelope at the current schema version with a fresh v7 id and the current time.
    pub fn new(match_id: MatchId, source: Source, body: B) -> Self {
        Self {
            v: SCHEMA_VERSION,
            id: Uuid::now_v7(),
            match_id,
            source,
            sent_ms: now_ms(),
            body,
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
