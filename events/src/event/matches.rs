//! Match lifecycle events of the `cnit:matches` stream.

use serde::{Deserialize, Serialize};

use crate::ids::{MatchId, PlayerId};
use crate::kinds::Difficulty;

/// Events of the matches stream; the pending `MatchCreated` entry is the match lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchEvent {
    MatchCreated(MatchCreated),
    MatchEnded(MatchEnded),
}

/// Who controls a player slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlayerKind {
    Human,
    Ai(Difficulty),
}

/// One player of a match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerSlot {
    pub id: PlayerId,
    pub name: String,
    pub kind: PlayerKind,
}

/// How to make the map: the generator is deterministic in these fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSpec {
    pub size: u16,
    pub seed: u64,
}

/// A new match: everything needed to start its simulation from nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchCreated {
    pub match_id: MatchId,
    pub seed: u64,
    pub map: MapSpec,
    pub players: Vec<PlayerSlot>,
    pub tick_hz: u32,
}

impl MatchCreated {
    /// A match of `players` human slots named `p0`, `p1`, … on a map generated from
    /// `seed` (which also seeds the match), at 20 Hz: scenarios, benches and tests.
    pub fn humans(match_id: MatchId, players: u8, size: u16, seed: u64) -> MatchCreated {
        MatchCreated {
            match_id,
            seed,
            map: MapSpec { size, seed },
            players: (0..players)
                .map(|i| PlayerSlot {
                    id: PlayerId(i),
                    name: format!("p{i}"),
                    kind: PlayerKind::Human,
                })
                .collect(),
            tick_hz: 20,
        }
    }
}

/// A match is over (won, or abandoned by everyone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchEnded {
    pub match_id: MatchId,
    pub tick: u64,
    pub winner: Option<PlayerId>,
}
