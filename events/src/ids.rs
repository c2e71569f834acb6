//! Identifiers shared by every service: matches, players, entities, cells and positions.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Fixed-point units per map cell: positions and speeds are integers in these units.
pub const CELL: i32 = 1024;

/// Longest accepted match id; ids end up inside every stream key of the match.
pub const MAX_MATCH_ID_LEN: usize = 64;

/// A match identifier: 1–64 characters of `[A-Za-z0-9_-]`, safe inside a Redis key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MatchId(String);

/// Why a string is not a valid [`MatchId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid match id {0:?}: expected 1-{MAX_MATCH_ID_LEN} characters of [A-Za-z0-9_-]")]
pub struct InvalidMatchId(pub String);

impl MatchId {
    /// Validates and wraps a match id.
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidMatchId> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= MAX_MATCH_ID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s))
        } else {
            Err(InvalidMatchId(s))
        }
    }

    /// A fresh random id (uuid v7, simple form), sortable by creation time.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MatchId {
    type Error = InvalidMatchId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<MatchId> for String {
    fn from(m: MatchId) -> String {
        m.0
    }
}

impl fmt::Display for MatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A player slot within a match (0-based, at most 8 players).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct PlayerId(pub u8);

/// Most players one match can hold.
pub const MAX_PLAYERS: usize = 8;

impl fmt::Display for PlayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.0)
    }
}

/// A unit or building, numbered by the engine in creation order; never reused in a match.
/// This is the stable order every deterministic iteration sorts by.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct UnitId(pub u32);

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A map cell (column `x`, row `y`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Cell {
    pub x: u16,
    pub y: u16,
}

impl Cell {
    pub const fn new(x: u16, y: u16) -> Self {
        Self { x, y }
    }

    /// The fixed-point position of this cell's centre.
    pub fn center(self) -> Pos {
        Pos {
            x: i32::from(self.x) * CELL + CELL / 2,
            y: i32::from(self.y) * CELL + CELL / 2,
        }
    }
}

/// A fixed-point position: [`CELL`] units per cell.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Pos {
    pub x: i32,
    pub y: i32,
}

impl Pos {
    pub const fn new(x: i32, y: i32) -> Self {
        Self { x, y }
    }

    /// The cell containing this position (positions are never negative in a valid state).
    pub fn cell(self) -> Cell {
        Cell {
            x: (self.x.max(0) / CELL).min(i32::from(u16::MAX)) as u16,
            y: (self.y.max(0) / CELL).min(i32::from(u16::MAX)) as u16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_id_validation() {
        assert!(MatchId::new("abc_DEF-123").is_ok());
        assert!(MatchId::new("").is_err());
        assert!(MatchId::new("a}b").is_err());
        assert!(MatchId::new("x".repeat(65)).is_err());
        assert_eq!(MatchId::generate().as_str().len(), 32);
    }

    #[test]
    fn cell_pos_round_trip() {
        let c = Cell::new(7, 9);
        assert_eq!(c.center().cell(), c);
        assert_eq!(Pos::new(-5, -5).cell(), Cell::new(0, 0));
    }
}
