//! One player's ledger: credits, production queues, owned buildings and power.

use std::collections::{BTreeMap, BTreeSet};

use events::{BuildingKind, Cell, Item, PlayerId, PlayerKind, QueueKind, UnitId};
use serde::{Deserialize, Serialize};

use crate::power::Power;
use crate::production::{Job, JobStatus};

/// A building the player owns, as the engine reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedBuilding {
    pub kind: BuildingKind,
    /// Top-left cell.
    pub at: Cell,
}

/// Everything the economy keeps for one player.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerLedger {
    pub id: PlayerId,
    pub kind: PlayerKind,
    pub credits: u64,
    pub queues: BTreeMap<QueueKind, Job>,
    pub buildings: BTreeMap<UnitId, OwnedBuilding>,
    pub power: Power,
    /// The low-power state last sent to the engine.
    pub low_power: bool,
    pub defeated: bool,
    /// Buildings being repaired (left out of the encoding when empty, so ledgers from
    /// before repair hash and restore as they did).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub repairing: BTreeSet<UnitId>,
}

impl PlayerLedger {
    pub fn new(id: PlayerId, kind: PlayerKind, credits: u64) -> Self {
        Self {
            id,
            kind,
            credits,
            queues: BTreeMap::new(),
            buildings: BTreeMap::new(),
            power: Power::default(),
            low_power: false,
            defeated: false,
            repairing: BTreeSet::new(),
        }
    }

    /// How many buildings of each kind the player owns.
    pub fn owned(&self) -> BTreeMap<BuildingKind, u32> {
        let mut m = BTreeMap::new();
        for b in self.buildings.values() {
            *m.entry(b.kind).or_insert(0) += 1;
        }
        m
    }

    pub fn count(&self, kind: BuildingKind) -> u32 {
        self.buildings.values().filter(|b| b.kind == kind).count() as u32
    }

    pub fn owns(&self, kind: BuildingKind) -> bool {
        self.buildings.values().any(|b| b.kind == kind)
    }

    pub fn queue(&self, q: QueueKind) -> Option<&Job> {
        self.queues.get(&q)
    }

    /// The item a queue is working on (or holding ready), if any.
    pub fn producing(&self, q: QueueKind) -> Option<Item> {
        self.queues.get(&q).map(|j| j.item)
    }

    /// The finished building waiting to be placed, if any, and whether a placement
    /// request for it is still unanswered.
    pub fn ready_building(&self) -> Option<(BuildingKind, bool)> {
        let j = self.queues.get(&QueueKind::Buildings)?;
        match (j.item, j.status) {
            (Item::Building(b), JobStatus::Ready { placing }) => Some((b, placing.is_some())),
            _ => None,
        }
    }
}
