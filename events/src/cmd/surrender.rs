//! Giving up: a player (or bot) concedes the match.

use serde::{Deserialize, Serialize};

/// The sender concedes: the engine destroys everything it owns at the next tick, so it is
/// defeated like a player whose base fell (and in a two-player match the other wins).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Surrender {}
