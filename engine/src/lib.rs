//! Deterministic simulation core of Command and Independent Thought.

pub mod rules;

pub use rules::Rules;
