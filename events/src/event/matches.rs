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

/// What a match starts as. The engine builds the initial state from it deterministically
/// (`engine::scenario::initial`), so every reader of the log derives the same start.
///
/// Added after schema version 2 without a version bump (named fields: an absent field is
/// the default, `Skirmish`, which is also never written, so a skirmish's `MatchCreated`
/// has the bytes it always had). A battle's `MatchCreated` written before the field
/// existed has no scenario; its log holds the state it starts from instead (the lobby
/// wrote it to `snap` and `seek`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Every player at its start with the rules' start units and buildings, at tick 0.
    #[default]
    Skirmish,
    /// A skirmish plus two armies of `units_per_side` each (players 0 and 1) attack-moving
    /// across the map, warmed up for a few ticks before the log's first tick.
    Battle { units_per_side: u32 },
}

impl Scenario {
    pub fn is_skirmish(&self) -> bool {
        *self == Scenario::Skirmish
    }
}

/// A new match: everything needed to start its simulation from nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchCreated {
    pub match_id: MatchId,
    pub seed: u64,
    pub map: MapSpec,
    pub players: Vec<PlayerSlot>,
    pub tick_hz: u32,
    /// What the match starts as (absent in older entries: a skirmish).
    #[serde(default, skip_serializing_if = "Scenario::is_skirmish")]
    pub scenario: Scenario,
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
            scenario: Scenario::Skirmish,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};
    use crate::envelope::{Envelope, Source};

    /// `MatchCreated` as it was before the scenario field.
    #[derive(Serialize)]
    struct OldCreated {
        match_id: MatchId,
        seed: u64,
        map: MapSpec,
        players: Vec<PlayerSlot>,
        tick_hz: u32,
    }

    #[derive(Serialize)]
    enum OldEvent {
        MatchCreated(OldCreated),
    }

    fn created(scenario: Scenario) -> MatchCreated {
        MatchCreated {
            scenario,
            ..MatchCreated::humans(MatchId::new("m1").unwrap(), 2, 48, 7)
        }
    }

    fn old_bytes(c: &MatchCreated) -> Vec<u8> {
        let old = OldEvent::MatchCreated(OldCreated {
            match_id: c.match_id.clone(),
            seed: c.seed,
            map: c.map.clone(),
            players: c.players.clone(),
            tick_hz: c.tick_hz,
        });
        let mut env = Envelope::new(c.match_id.clone(), Source::System, old);
        env.id = uuid::Uuid::from_u128(1);
        env.sent_ms = 5;
        encode(&env).unwrap()
    }

    #[test]
    fn an_entry_written_before_the_scenario_field_is_a_skirmish() {
        let c = created(Scenario::Skirmish);
        let back = decode::<MatchEvent>(&old_bytes(&c)).unwrap().body;
        assert_eq!(back, MatchEvent::MatchCreated(c));
    }

    #[test]
    fn a_skirmish_is_written_as_before_the_scenario_field() {
        let c = created(Scenario::Skirmish);
        let mut env = Envelope::new(
            c.match_id.clone(),
            Source::System,
            MatchEvent::MatchCreated(c.clone()),
        );
        env.id = uuid::Uuid::from_u128(1);
        env.sent_ms = 5;
        assert_eq!(encode(&env).unwrap(), old_bytes(&c));
    }

    #[test]
    fn a_battle_round_trips() {
        let c = created(Scenario::Battle { units_per_side: 60 });
        let env = Envelope::new(
            c.match_id.clone(),
            Source::System,
            MatchEvent::MatchCreated(c.clone()),
        );
        let back = decode::<MatchEvent>(&encode(&env).unwrap()).unwrap().body;
        assert_eq!(back, MatchEvent::MatchCreated(c));
    }
}
