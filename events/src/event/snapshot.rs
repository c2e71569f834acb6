//! Snapshots of the `snap` stream: a service's full state at a tick, for takeover and seek.

use serde::{Deserialize, Serialize};

/// Which service's state a snapshot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotOwner {
    Engine,
    Economy,
}

/// The state after tick `tick`; `state` is the owner's own encoding, `hash` its state hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub owner: SnapshotOwner,
    pub tick: u64,
    pub hash: u64,
    /// The id of the last entry of the owner's log this snapshot includes.
    pub log_id: String,
    #[serde(with = "serde_bytes")]
    pub state: Vec<u8>,
}
