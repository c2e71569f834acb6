//! The simulation: [`Sim`] runs one tick at a time from a match setup and the commands of
//! that tick, and reports the tick's outcome events, state hash and view delta.
//!
//! Each tick runs the systems in this fixed order (see [`crate::systems`]): apply commands
//! → spawns/placements → target acquisition → movement → combat → harvest/unload →
//! tiberium growth/spread → visibility → defeat/victory → state hash → view delta.

pub mod commands;
pub mod hash;
pub mod snapshot;
pub mod spatial;
pub mod state;
pub mod view;
pub mod vision;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use events::{GameEvent, MatchCreated, PlayerId, TickCommitted, ViewFrame, MAX_PLAYERS};

pub use snapshot::SnapshotError;
use state::{PathQueue, PlayerState, State};

use crate::map::{generate, Map, MapError};
use crate::rng::Rng;
use crate::rules::Rules;
use crate::systems::{combat, harvest, movement, spawn, targeting, tiberium, victory, visibility};
use spatial::Spatial;
use vision::Vision;

/// One command to apply, with its id in the `cmd` stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    pub stream_id: String,
    pub envelope: events::Envelope<events::Command>,
}

/// What one tick produced.
#[derive(Clone, Debug, PartialEq)]
pub struct StepOutput {
    pub committed: TickCommitted,
    pub view: ViewFrame,
}

/// Why a match could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("a match needs 1-{MAX_PLAYERS} players, got {0}")]
    PlayerCount(usize),
    #[error("player {0} appears twice")]
    DuplicatePlayer(PlayerId),
    #[error("player id {0} is out of range (0-7)")]
    PlayerId(PlayerId),
    #[error("tick rate {0} Hz is outside 10-30")]
    TickRate(u32),
    #[error("map: {0}")]
    Map(#[from] MapError),
    #[error("a battle on a {size}x{size} map takes 1-{room} units per side, not {units}")]
    BattleSize { size: u16, room: u32, units: u32 },
    #[error("a battle is fought by players 0 and 1")]
    BattlePlayers,
}

/// The rules with the match's tick rate (`0` keeps the rules' own).
pub(crate) fn rules_for_rate(rules: &Arc<Rules>, hz: u32) -> Result<Arc<Rules>, SetupError> {
    if hz == 0 || hz == rules.tick_hz {
        return Ok(rules.clone());
    }
    if !(10..=30).contains(&hz) {
        return Err(SetupError::TickRate(hz));
    }
    let mut r = (**rules).clone();
    r.tick_hz = hz;
    Ok(Arc::new(r))
}

/// A running match simulation.
pub struct Sim {
    state: State,
    player_ids: Vec<PlayerId>,
    map_hash: u64,
    last_hash: u64,
    scratch: Vec<u8>,
}

impl Sim {
    /// Sets up a match: generates its map; nothing has run yet (tick 0 places the start
    /// buildings and units).
    pub fn new(rules: Arc<Rules>, setup: &MatchCreated) -> Result<Sim, SetupError> {
        let n = setup.players.len();
        if n == 0 || n > MAX_PLAYERS {
            return Err(SetupError::PlayerCount(n));
        }
        let mut ids: Vec<PlayerId> = setup.players.iter().map(|p| p.id).collect();
        if let Some(&p) = ids.iter().find(|p| p.0 as usize >= MAX_PLAYERS) {
            return Err(SetupError::PlayerId(p));
        }
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(SetupError::DuplicatePlayer(w[0]));
        }
        let rules = rules_for_rate(&rules, setup.tick_hz)?;
        let map = generate(&setup.map, n, &rules)?;
        Ok(Sim::from_map(rules, map, &ids, setup.seed))
    }

    /// A match on a given map (tests and tools); players take the map's starts in order.
    pub fn with_map(rules: Arc<Rules>, map: Map, players: &[PlayerId], seed: u64) -> Sim {
        Sim::from_map(rules, map, players, seed)
    }

    fn from_map(rules: Arc<Rules>, map: Map, ids: &[PlayerId], seed: u64) -> Sim {
        let players: Vec<PlayerState> = ids
            .iter()
            .map(|&id| PlayerState {
                id,
                low_power: false,
                defeated: false,
            })
            .collect();
        let map_hash = map.hash();
        let state = State {
            rules,
            tick: 0,
            rng: Rng::new(seed),
            next_id: 1,
            vision: Vision::new(map.size, &players),
            spatial: Spatial::new(map.size),
            blocked: vec![0; map.len()],
            map,
            paths: PathQueue {
                queues: vec![VecDeque::new(); players.len()],
                next: 0,
            },
            players,
            world: hecs::World::new(),
            index: BTreeMap::new(),
            winner: None,
            pending: Vec::new(),
            events: Vec::new(),
            removed: Vec::new(),
            tiberium: Vec::new(),
            shots: Vec::new(),
            deaths: Vec::new(),
        };
        let mut sim = Sim {
            state,
            player_ids: ids.to_vec(),
            map_hash,
            last_hash: 0,
            scratch: Vec::new(),
        };
        sim.last_hash = hash::state_hash(&sim.state, &mut sim.scratch);
        sim
    }

    /// The tick the next [`Sim::step`] runs (0 at start).
    pub fn next_tick(&self) -> u64 {
        self.state.tick
    }

    /// Runs one tick with these commands (in order).
    pub fn step(&mut self, inputs: &[Input]) -> StepOutput {
        let s = &mut self.state;
        s.events.clear();
        s.removed.clear();
        s.tiberium.clear();
        s.shots.clear();
        s.deaths.clear();
        let tick = s.tick;
        if tick == 0 {
            s.events.push(GameEvent::MatchStarted {
                rules_hash: s.rules.hash(),
                map_hash: self.map_hash,
                players: self.player_ids.clone(),
                sim_version: crate::SIM_VERSION,
            });
            spawn::start(s);
        }
        let mut applied = Vec::new();
        commands::run(s, inputs, &mut applied);
        spawn::run(s);
        targeting::run(s);
        movement::run(s);
        combat::run(s);
        harvest::run(s);
        tiberium::run(s);
        visibility::run(s);
        victory::run(s);
        let hash = hash::state_hash(s, &mut self.scratch);
        let view = view::delta(s, tick);
        s.tick += 1;
        self.last_hash = hash;
        StepOutput {
            committed: TickCommitted {
                tick,
                applied,
                events: std::mem::take(&mut s.events),
                hash,
                dead_lettered: Vec::new(),
            },
            view,
        }
    }

    /// Every entity and all tiberium, as of the last tick run.
    pub fn keyframe(&self) -> ViewFrame {
        view::keyframe(&self.state, self.state.tick.saturating_sub(1))
    }

    /// The state hash after the last step (of the initial state before any).
    pub fn hash(&self) -> u64 {
        self.last_hash
    }

    /// The full state, to restore with [`Sim::restore`].
    pub fn snapshot(&self) -> Vec<u8> {
        snapshot::save(&self.state, self.map_hash, self.last_hash)
    }

    /// Rebuilds a simulation from a snapshot (external bytes: validated, never panics).
    pub fn restore(rules: Arc<Rules>, bytes: &[u8]) -> Result<Sim, SnapshotError> {
        let r = snapshot::restore(rules, bytes)?;
        let player_ids = r.state.players.iter().map(|p| p.id).collect();
        Ok(Sim {
            state: r.state,
            player_ids,
            map_hash: r.map_hash,
            last_hash: r.last_hash,
            scratch: Vec::new(),
        })
    }

    /// The current map, tiberium included.
    pub fn map(&self) -> &Map {
        &self.state.map
    }

    /// `Some(winner)` once the match is over (`Some(None)`: nobody won).
    pub fn winner(&self) -> Option<Option<PlayerId>> {
        self.state.winner
    }

    /// The players, in id order.
    pub fn players(&self) -> &[PlayerId] {
        &self.player_ids
    }

    /// The rules in force (with the match's tick rate).
    pub fn rules(&self) -> &Rules {
        &self.state.rules
    }

    /// The number of live entities.
    pub fn entity_count(&self) -> usize {
        self.state.index.len()
    }

    /// One entity as the view shows it (tests, tools).
    pub fn entity(&self, id: events::UnitId) -> Option<events::EntityView> {
        let e = self.state.entity(id)?;
        view::view_of(&self.state, e)
    }

    /// Every entity as the view shows it, in id order.
    pub fn entities(&self) -> Vec<events::EntityView> {
        self.state
            .index
            .values()
            .filter_map(|&e| view::view_of(&self.state, e))
            .collect()
    }

    /// Whether a player currently sees a cell.
    pub fn sees(&self, player: PlayerId, cell: events::Cell) -> bool {
        self.state.vision.sees(player, cell)
    }

    /// Whether a player has low power (Laser Towers offline).
    pub fn low_power(&self, player: PlayerId) -> bool {
        self.state
            .player_index(player)
            .is_some_and(|k| self.state.players[k].low_power)
    }

    /// Path searches waiting in the queue (all players).
    pub fn queued_paths(&self) -> usize {
        self.state.paths.queues.iter().map(VecDeque::len).sum()
    }

    /// The whole simulation state, read only (inspection and audit tools).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Crate-internal access for tests and benches of this crate.
    #[doc(hidden)]
    pub fn state_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::{EntityKind, MapSpec, MatchId, PlayerKind, PlayerSlot};

    fn setup(players: &[u8], hz: u32) -> MatchCreated {
        MatchCreated {
            match_id: MatchId::new("unit").unwrap(),
            seed: 9,
            map: MapSpec { size: 48, seed: 9 },
            players: players
                .iter()
                .map(|&i| PlayerSlot {
                    id: PlayerId(i),
                    name: format!("p{i}"),
                    kind: PlayerKind::Human,
                })
                .collect(),
            tick_hz: hz,
            scenario: events::Scenario::Skirmish,
        }
    }

    #[test]
    fn tick_zero_starts_the_match() {
        let rules = Arc::new(Rules::standard());
        let mut sim = Sim::new(rules.clone(), &setup(&[1, 0], 20)).unwrap();
        assert_eq!(sim.next_tick(), 0);
        assert_eq!(sim.players(), &[PlayerId(0), PlayerId(1)]);
        let out = sim.step(&[]);
        assert_eq!(out.committed.tick, 0);
        assert_eq!(sim.next_tick(), 1);
        assert!(matches!(
            &out.committed.events[0],
            GameEvent::MatchStarted { rules_hash, map_hash, players, sim_version }
                if *rules_hash == rules.hash() && *map_hash == sim.map().hash()
                    && players == &[PlayerId(0), PlayerId(1)]
                    && *sim_version == crate::SIM_VERSION
        ));
        let yards = sim
            .entities()
            .iter()
            .filter(|e| matches!(e.kind, EntityKind::Building(_)))
            .count();
        assert_eq!(yards, 2);
        let units = sim.entities().len() - yards;
        assert_eq!(units, 2 * rules.economy.start_units.len());
        // Every entity appears in the first delta; the keyframe has them all too.
        assert_eq!(out.view.entities.len(), sim.entity_count());
        assert_eq!(sim.keyframe().entities, out.view.entities);
        assert_eq!(sim.hash(), out.committed.hash);
        assert_eq!(sim.winner(), None);
    }

    #[test]
    fn bad_setups_are_refused() {
        let rules = Arc::new(Rules::standard());
        assert!(matches!(
            Sim::new(rules.clone(), &setup(&[], 20)),
            Err(SetupError::PlayerCount(0))
        ));
        assert!(matches!(
            Sim::new(rules.clone(), &setup(&[0, 0], 20)),
            Err(SetupError::DuplicatePlayer(_))
        ));
        assert!(matches!(
            Sim::new(rules.clone(), &setup(&[0, 9], 20)),
            Err(SetupError::PlayerId(_))
        ));
        assert!(matches!(
            Sim::new(rules.clone(), &setup(&[0, 1], 99)),
            Err(SetupError::TickRate(99))
        ));
        let mut s = setup(&[0, 1], 20);
        s.map.size = 8;
        assert!(matches!(Sim::new(rules, &s), Err(SetupError::Map(_))));
    }

    #[test]
    fn the_match_tick_rate_overrides_the_rules() {
        let rules = Arc::new(Rules::standard());
        let sim = Sim::new(rules.clone(), &setup(&[0, 1], 30)).unwrap();
        assert_eq!(sim.rules().tick_hz, 30);
        assert_ne!(sim.rules().hash(), rules.hash());
        // And a snapshot restores with the same rate.
        let back = Sim::restore(rules, &sim.snapshot()).unwrap();
        assert_eq!(back.rules().tick_hz, 30);
    }
}
