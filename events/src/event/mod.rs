//! Events: past-tense facts, one module per stream family.

mod dlq;
mod eco;
mod game;
mod matches;
mod snapshot;
mod tick;
mod view;

pub use dlq::{DeadField, DeadLetter};
pub use eco::{EconomyStepCommitted, LedgerEvent, ProductionState};
pub use game::{GameEvent, RejectReason};
pub use matches::{
    MapSpec, MatchCreated, MatchEnded, MatchEvent, PlayerKind, PlayerSlot, Scenario,
};
pub use snapshot::{Snapshot, SnapshotOwner};
pub use tick::{AppliedCommand, TickCommitted};
pub use view::{DeathView, EntityView, ShotView, TiberiumChange, ViewFrame, ViewKind};
