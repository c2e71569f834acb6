//! Deterministic simulation core of Command and Independent Thought.
//!
//! Architecture invariant: the simulation core (everything but [`service`], which wraps
//! it with the bus) does no I/O (no Redis, sockets, clocks or threads); the same inputs
//! always give the same outputs, bit for bit, on every platform. Positions are
//! fixed-point integers, the one RNG lives in the state, and every iteration that affects
//! results runs in `UnitId` order.

#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod path;
pub mod scenario;
pub mod sim;
pub mod systems;

// The shared data (balance rules, maps, fixed-point helpers, the match RNG) lives in the
// `rules` crate, below both the engine and the economy; re-exported under the old paths.
pub use rules::{self, fixed, map, rng};
pub use rules::{generate, Field, Map, MapError, Rules, Terrain};

/// Version of the simulation logic, announced in `MatchStarted`. Bump it with every change
/// that makes the same log play out differently (so `replay-tool verify` can tell a logic
/// change from a desync). 1: the logic before it was announced; 2: unit orders skip units
/// that are gone, a unit that cannot be placed is refunded (`SpawnFailed`); 3: a human
/// player's command naming an enemy entity it does not see is answered as if the entity
/// did not exist (`NoSuchUnit`, left out of a unit list), `Surrender` defeats its sender,
/// a move to an unreachable cell goes to the nearest reachable one instead of being
/// refused, rally points, paid repair steps (`HealBuilding` → `BuildingRepaired`).
pub const SIM_VERSION: u32 = 3;
pub mod service;

pub use sim::{Input, SetupError, Sim, SnapshotError, StepOutput};
