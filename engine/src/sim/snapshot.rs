//! Snapshots: the full simulation state as msgpack, and its validated restore. Derived
//! data (building occupancy, vision, last views, path digests) is rebuilt, not stored.

use std::collections::BTreeMap;
use std::sync::Arc;

use events::{EntityKind, PlayerId, CELL};
use serde::{Deserialize, Serialize};

use super::state::{path_digest, EntityRecord, LastView, PathQueue, PlayerState, Sight, State};
use crate::map::Map;
use crate::rng::Rng;
use crate::rules::Rules;
use crate::sim::spatial::Spatial;
use crate::sim::vision::Vision;
use crate::systems::visibility;

/// Bumped whenever the snapshot layout changes.
const FORMAT: u32 = 1;

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot does not decode: {0}")]
    Decode(String),
    #[error("snapshot format {0} is not supported (this build reads {FORMAT})")]
    Format(u32),
    #[error("snapshot was taken with other rules")]
    RulesMismatch,
    #[error("snapshot map is invalid: {0}")]
    Map(#[from] crate::map::MapError),
    #[error("snapshot is inconsistent: {0}")]
    Invalid(String),
}

#[derive(Serialize, Deserialize)]
struct Data {
    format: u32,
    tick_hz: u32,
    rules_hash: u64,
    map_hash: u64,
    tick: u64,
    rng: Rng,
    next_id: u32,
    #[serde(with = "serde_bytes")]
    map: Vec<u8>,
    players: Vec<PlayerState>,
    paths: PathQueue,
    winner: Option<Option<PlayerId>>,
    last_hash: u64,
    entities: Vec<EntityRecord>,
}

/// What a restore yields besides the state.
pub struct Restored {
    pub state: State,
    pub map_hash: u64,
    pub last_hash: u64,
}

pub fn save(state: &State, map_hash: u64, last_hash: u64) -> Vec<u8> {
    let data = Data {
        format: FORMAT,
        tick_hz: state.rules.tick_hz,
        rules_hash: state.rules.hash(),
        map_hash,
        tick: state.tick,
        rng: state.rng.clone(),
        next_id: state.next_id,
        map: state.map.save(),
        players: state.players.clone(),
        paths: state.paths.clone(),
        winner: state.winner,
        last_hash,
        entities: state.records(),
    };
    // Encoding plain data into a Vec cannot fail.
    rmp_serde::to_vec(&data).unwrap_or_default()
}

pub fn restore(rules: Arc<Rules>, bytes: &[u8]) -> Result<Restored, SnapshotError> {
    let data: Data =
        rmp_serde::from_slice(bytes).map_err(|e| SnapshotError::Decode(e.to_string()))?;
    if data.format != FORMAT {
        return Err(SnapshotError::Format(data.format));
    }
    let rules = super::rules_for_rate(&rules, data.tick_hz)
        .map_err(|_| SnapshotError::Invalid("bad tick rate".into()))?;
    if rules.hash() != data.rules_hash {
        return Err(SnapshotError::RulesMismatch);
    }
    let map = Map::load(&data.map)?;
    let bad = |s: &str| Err(SnapshotError::Invalid(s.to_string()));
    if data.players.is_empty() || data.players.len() > events::MAX_PLAYERS {
        return bad("player count");
    }
    if data.players.iter().any(|p| p.id.0 >= 8) {
        return bad("player id");
    }
    if data.paths.queues.len() != data.players.len() {
        return bad("path queues");
    }
    let limit = i32::from(map.size) * CELL;
    let in_map = |c: events::Cell| map.in_bounds(c);
    let mut index = BTreeMap::new();
    let mut world = hecs::World::new();
    let mut blocked = vec![0u32; map.len()];
    for r in data.entities {
        let id = r.ident.id;
        if id.0 >= data.next_id || index.contains_key(&id) {
            return bad("entity id");
        }
        if !data.players.iter().any(|p| p.id == r.ident.owner) {
            return bad("entity owner");
        }
        let p = r.body.pos;
        if p.x < 0 || p.y < 0 || p.x >= limit || p.y >= limit {
            return bad("entity position");
        }
        let sight = match r.ident.kind {
            EntityKind::Unit(u) => {
                if r.mobile.is_none() || r.footprint.is_some() {
                    return bad("unit components");
                }
                rules.unit(u).sight
            }
            EntityKind::Building(b) => {
                let Some(fp) = r.footprint else {
                    return bad("building footprint");
                };
                let br = rules.building(b);
                if fp.w != br.width || fp.h != br.height || r.mobile.is_some() {
                    return bad("building components");
                }
                let size = u32::from(map.size);
                if u32::from(fp.at.x) + u32::from(fp.w) > size
                    || u32::from(fp.at.y) + u32::from(fp.h) > size
                {
                    return bad("building outside the map");
                }
                for c in fp.cells() {
                    if !in_map(c) {
                        return bad("building outside the map");
                    }
                    blocked[map.index(c)] = id.0 + 1;
                }
                br.sight
            }
        };
        let e = world.spawn((
            r.ident,
            r.health,
            r.body,
            Sight {
                radius: sight as u16,
                stamped: None,
            },
            LastView(None),
        ));
        if let Some(mut m) = r.mobile {
            if m.path.iter().any(|&c| !in_map(c)) || m.dest.is_some_and(|c| !in_map(c)) {
                return bad("path outside the map");
            }
            m.path_digest = if m.path.is_empty() {
                0
            } else {
                path_digest(&m.path)
            };
            let _ = world.insert_one(e, m);
        }
        if let Some(w) = r.weapon {
            let _ = world.insert_one(e, w);
        }
        if let Some(f) = r.footprint {
            let _ = world.insert_one(e, f);
        }
        if let Some(h) = r.harvester {
            let _ = world.insert_one(e, h);
        }
        if let Some(d) = r.dock {
            let _ = world.insert_one(e, d);
        }
        if let Some(rally) = r.rally {
            if r.footprint.is_none() || !in_map(rally.0) {
                return bad("rally point");
            }
            let _ = world.insert_one(e, rally);
        }
        index.insert(id, e);
    }
    for q in &data.paths.queues {
        for req in q {
            if !in_map(req.goal) {
                return bad("path request outside the map");
            }
        }
    }
    let vision = Vision::new(map.size, &data.players);
    let spatial = Spatial::new(map.size);
    let mut state = State {
        rules,
        tick: data.tick,
        rng: data.rng,
        next_id: data.next_id,
        map,
        players: data.players,
        world,
        index,
        paths: data.paths,
        winner: data.winner,
        blocked,
        vision,
        spatial,
        pending: Vec::new(),
        events: Vec::new(),
        removed: Vec::new(),
        tiberium: Vec::new(),
        shots: Vec::new(),
        deaths: Vec::new(),
    };
    visibility::run(&mut state);
    super::view::remember_all(&mut state);
    Ok(Restored {
        state,
        map_hash: data.map_hash,
        last_hash: data.last_hash,
    })
}
