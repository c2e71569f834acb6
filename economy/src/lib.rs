//! Economy of Command and Independent Thought: the pure core (credits ledger, production
//! queues, power, tech tree, harvester AI, AI opponent) that the economy service wraps.
//!
//! Nothing in this crate's core does I/O or reads a clock: [`Economy::step`] is a
//! deterministic function of its state and inputs, which is what makes the `eco` log
//! re-playable and verifiable.

pub mod ai;
pub mod fields;
pub mod harvester_ai;
pub mod ledger;
pub mod map_view;
pub mod power;
pub mod production;
pub mod service;
pub mod state;
pub mod tech;
pub mod testing;

pub use ai::Ai;
pub use ledger::{OwnedBuilding, PlayerLedger};
pub use map_view::MapView;
pub use power::Power;
pub use production::{Job, JobStatus};
pub use state::{Economy, Input, RestoreError, StepResult, SNAPSHOT_VERSION};
