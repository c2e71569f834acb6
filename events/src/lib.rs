//! Typed events and commands of Command and Independent Thought, their msgpack codec,
//! stream keys, and the [`Bus`] over Redis Streams (or its in-memory twin).
//!
//! Everything a service writes to or reads from a stream goes through this crate: an
//! [`Envelope`] around a typed body, encoded by [`codec`], appended to a key built by
//! [`Keys`], on a [`Bus`].

pub mod bus;
pub mod cmd;
pub mod codec;
pub mod commit;
pub mod dlq;
pub mod envelope;
pub mod event;
pub mod group_commit;
pub mod ids;
pub mod keys;
pub mod kinds;
pub mod lease;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use bus::{
    Append, Bus, BusError, Entry, IdSpec, MemoryBus, PendingEntry, RedisBus, RedisBusConfig,
    StreamId,
};
pub use cmd::Command;
pub use codec::{decode, encode, encode_compact, Body, DecodeError, EncodeError};
pub use envelope::{now_ms, Envelope, Source, SCHEMA_VERSION};
pub use event::*;
pub use ids::{Cell, MatchId, PlayerId, Pos, UnitId, CELL, MAX_PLAYERS};
pub use keys::Keys;
pub use kinds::{Armor, BuildingKind, Difficulty, EntityKind, Item, QueueKind, UnitKind, Warhead};

impl Body for MatchEvent {}
impl Body for TickCommitted {}
impl Body for EconomyStepCommitted {}
impl Body for ViewFrame {}
impl Body for Snapshot {}
