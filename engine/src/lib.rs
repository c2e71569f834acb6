//! Deterministic simulation core of Command and Independent Thought.
//!
//! Architecture invariant: this crate does no I/O (no Redis, sockets, clocks or threads);
//! the same inputs always give the same outputs, bit for bit, on every platform.

pub mod fixed;
pub mod map;
pub mod rng;
pub mod rules;

pub use map::{generate, Field, Map, MapError, Terrain};
pub use rules::Rules;
