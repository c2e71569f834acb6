//! Given/when/then helper for engine tests: set up a match (generated or hand-made map),
//! put units and buildings where a test wants them, apply commands, run ticks, and look
//! at the events, entities and hashes that came out.

#![allow(dead_code)]

use std::sync::Arc;

use engine::map::Map;
use engine::sim::state::State;
use engine::systems::{spawn_building, spawn_unit};
use engine::{Input, Rules, Sim};
use events::{
    BuildingKind, Cell, Command, EntityView, Envelope, GameEvent, MapSpec, MatchCreated, MatchId,
    PlayerId, PlayerKind, PlayerSlot, RejectReason, Source, UnitId, UnitKind,
};

pub fn rules() -> Arc<Rules> {
    Arc::new(Rules::standard())
}

pub fn setup(size: u16, players: usize, seed: u64) -> MatchCreated {
    MatchCreated {
        match_id: MatchId::new("test").unwrap(),
        seed,
        map: MapSpec { size, seed },
        players: (0..players)
            .map(|i| PlayerSlot {
                id: PlayerId(i as u8),
                name: format!("p{i}"),
                kind: PlayerKind::Human,
            })
            .collect(),
        tick_hz: 20,
        scenario: events::Scenario::Skirmish,
    }
}

pub fn p(i: u8) -> Source {
    Source::Player(PlayerId(i))
}

/// A test scenario, from setup through commands to what came out.
pub struct Given {
    pub sim: Sim,
    /// Every event of every tick run so far.
    pub events: Vec<GameEvent>,
    /// Events of the last `when`/`ticks` call.
    pub last: Vec<GameEvent>,
    pub hashes: Vec<u64>,
    pub views: Vec<events::ViewFrame>,
    /// Ids the engine listed as applied in the last call.
    pub applied: Vec<uuid::Uuid>,
    seq: u64,
}

impl Given {
    /// A generated map (tick 0 already run: start yards and units are placed).
    pub fn r#match(size: u16, players: usize) -> Given {
        let sim = Sim::new(rules(), &setup(size, players, 1)).expect("setup");
        Given::start(sim)
    }

    /// An all-clear map with the given starts, edited by `edit` (tick 0 already run).
    pub fn blank(size: u16, starts: &[Cell], edit: impl FnOnce(&mut Map)) -> Given {
        let mut map = Map::blank(size);
        map.starts = starts.to_vec();
        edit(&mut map);
        let players: Vec<PlayerId> = (0..starts.len()).map(|i| PlayerId(i as u8)).collect();
        Given::start(Sim::with_map(rules(), map, &players, 7))
    }

    /// Two players on a clear 64×64 map, yards in opposite corners.
    pub fn duel() -> Given {
        Given::blank(64, &[Cell::new(4, 4), Cell::new(59, 59)], |_| {})
    }

    fn start(sim: Sim) -> Given {
        let mut g = Given {
            sim,
            events: Vec::new(),
            last: Vec::new(),
            hashes: Vec::new(),
            views: Vec::new(),
            applied: Vec::new(),
            seq: 0,
        };
        g.run(&[]);
        g
    }

    fn state(&mut self) -> &mut State {
        self.sim.state_mut()
    }

    /// Puts a unit on a cell (bypassing production).
    pub fn unit(&mut self, owner: u8, kind: UnitKind, at: Cell) -> UnitId {
        let id = spawn_unit(self.state(), PlayerId(owner), kind, at);
        self.state().events.clear();
        id
    }

    /// Puts a building with its top-left corner on a cell (bypassing placement rules).
    pub fn building(&mut self, owner: u8, kind: BuildingKind, at: Cell) -> UnitId {
        let id = spawn_building(self.state(), PlayerId(owner), kind, at, 0);
        self.state().events.clear();
        id
    }

    pub fn envelope(&mut self, source: Source, cmd: Command) -> Input {
        self.seq += 1;
        let mut envelope = Envelope::new(MatchId::new("test").unwrap(), source, cmd);
        // Stable ids make test runs repeatable.
        envelope.id = uuid::Uuid::from_u128(u128::from(self.seq));
        envelope.sent_ms = 0;
        Input {
            stream_id: format!("{}-0", self.seq),
            envelope,
        }
    }

    fn run(&mut self, inputs: &[Input]) {
        let out = self.sim.step(inputs);
        self.applied = out.committed.applied.iter().map(|a| a.event_id).collect();
        self.hashes.push(out.committed.hash);
        self.events.extend(out.committed.events.iter().cloned());
        self.last = out.committed.events;
        self.views.push(out.view);
    }

    /// Applies commands in one tick.
    pub fn when(mut self, cmds: Vec<(Source, Command)>) -> Given {
        let inputs: Vec<Input> = cmds.into_iter().map(|(s, c)| self.envelope(s, c)).collect();
        self.run(&inputs);
        self
    }

    /// Runs `n` ticks without commands; `last` holds all their events.
    pub fn ticks(mut self, n: u64) -> Given {
        let mut all = Vec::new();
        for _ in 0..n {
            self.run(&[]);
            all.append(&mut self.last);
        }
        self.last = all;
        self
    }

    /// Runs ticks until `stop` says so (at most `max`); panics if it never does.
    pub fn until(mut self, max: u64, mut stop: impl FnMut(&GameEvent) -> bool) -> Given {
        let mut all = Vec::new();
        for _ in 0..max {
            self.run(&[]);
            let hit = self.last.iter().any(&mut stop);
            all.append(&mut self.last);
            if hit {
                self.last = all;
                return self;
            }
        }
        panic!("condition not met within {max} ticks");
    }

    pub fn then(self, check: impl FnOnce(&Given)) -> Given {
        check(&self);
        self
    }

    /// The rejection reasons of the last call.
    pub fn rejections(&self) -> Vec<RejectReason> {
        self.last
            .iter()
            .filter_map(|e| match e {
                GameEvent::CommandRejected { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn view(&self, id: UnitId) -> Option<EntityView> {
        self.sim.entity(id)
    }

    pub fn cell_of(&self, id: UnitId) -> Cell {
        self.view(id).expect("unit is alive").pos.cell()
    }

    pub fn hp(&self, id: UnitId) -> u32 {
        self.view(id).map_or(0, |v| v.hp)
    }

    /// Ids of a player's units of a kind, in id order.
    pub fn units_of(&self, owner: u8, kind: UnitKind) -> Vec<UnitId> {
        self.sim
            .entities()
            .into_iter()
            .filter(|e| e.owner == PlayerId(owner) && e.kind == events::EntityKind::Unit(kind))
            .map(|e| e.id)
            .collect()
    }
}
