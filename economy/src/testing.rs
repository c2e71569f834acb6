//! A given/when/then harness for the economy core (in the spirit of cqrs-es's test
//! framework): feed engine outcome events and commands tick by tick, then check the
//! ledger events, the commands the economy sent, and the ledger itself.

use std::sync::Arc;

use events::{
    BuildingKind, Cell, Command, Envelope, GameEvent, LedgerEvent, MapSpec, MatchCreated, MatchId,
    PlayerId, PlayerKind, PlayerSlot, RejectReason, Source, TickCommitted, UnitId,
};
use rules::Rules;

use crate::ledger::PlayerLedger;
use crate::map_view::MapView;
use crate::state::{Economy, Input, StepResult};

/// A match for tests: `n` human players on an open map of `size` cells.
pub fn match_created(n: u8, size: u16) -> MatchCreated {
    MatchCreated {
        match_id: MatchId::new("test").unwrap_or_else(|_| MatchId::generate()),
        seed: 7,
        map: MapSpec { size, seed: 7 },
        players: (0..n)
            .map(|i| PlayerSlot {
                id: PlayerId(i),
                name: format!("p{i}"),
                kind: PlayerKind::Human,
            })
            .collect(),
        tick_hz: 20,
        scenario: events::Scenario::Skirmish,
    }
}

/// Drives one [`Economy`] tick by tick.
pub struct Harness {
    pub eco: Economy,
    pub rules: Arc<Rules>,
    pub map: MapView,
    pub tick: u64,
    next_unit: u32,
    next_cmd: u64,
}

impl Harness {
    /// `n` players with the standard rules on an open 64×64 map, no buildings yet.
    pub fn new(n: u8) -> Harness {
        Self::on_map(n, MapView::open(64))
    }

    pub fn on_map(n: u8, map: MapView) -> Harness {
        let rules = Arc::new(Rules::standard());
        let setup = match_created(n, map.size);
        Harness {
            eco: Economy::with_map(rules.clone(), &setup, &map),
            rules,
            map,
            tick: 0,
            next_unit: 1,
            next_cmd: 1,
        }
    }

    /// Given: every player owns a Construction Yard (as the engine reports at tick 0).
    pub fn with_yards(mut self) -> Harness {
        let n = self.eco.players().count() as u8;
        let events = (0..n)
            .map(|p| self.placed_event(PlayerId(p), BuildingKind::ConstructionYard, 0))
            .collect();
        self.given(events);
        self
    }

    /// A `BuildingPlaced` for a new building id, at a made-up cell per player.
    pub fn placed_event(&mut self, owner: PlayerId, kind: BuildingKind, request: u64) -> GameEvent {
        let id = self.new_unit_id();
        GameEvent::BuildingPlaced {
            id,
            owner,
            kind,
            at: Cell::new(4 + 16 * u16::from(owner.0 % 3), 4 + (id.0 % 40) as u16),
            request,
        }
    }

    pub fn new_unit_id(&mut self) -> UnitId {
        let id = UnitId(self.next_unit);
        self.next_unit += 1;
        id
    }

    /// Given: these engine events happened in one tick.
    pub fn given(&mut self, events: Vec<GameEvent>) -> StepResult {
        self.step(events, Vec::new())
    }

    /// When: a source sends one command; the next tick folds it.
    pub fn when(&mut self, source: Source, command: Command) -> StepResult {
        self.step(Vec::new(), vec![(source, command)])
    }

    /// Given: a player already owns a building (placed by the engine).
    pub fn owns(&mut self, owner: PlayerId, kind: BuildingKind) -> UnitId {
        let e = self.placed_event(owner, kind, 0);
        let GameEvent::BuildingPlaced { id, .. } = e else {
            unreachable!("placed_event makes BuildingPlaced")
        };
        self.given(vec![e]);
        id
    }

    /// `n` ticks with nothing happening; returns every step.
    pub fn idle(&mut self, n: u64) -> Vec<StepResult> {
        (0..n).map(|_| self.step(Vec::new(), Vec::new())).collect()
    }

    /// Runs empty ticks until `f` holds for the step (at most `limit`); returns the step.
    pub fn until(&mut self, limit: u64, f: impl Fn(&StepResult) -> bool) -> Option<StepResult> {
        for _ in 0..limit {
            let r = self.step(Vec::new(), Vec::new());
            if f(&r) {
                return Some(r);
            }
        }
        None
    }

    /// One tick with engine events and commands.
    pub fn step(&mut self, events: Vec<GameEvent>, commands: Vec<(Source, Command)>) -> StepResult {
        let inputs: Vec<Input> = commands
            .into_iter()
            .map(|(source, body)| {
                let id = format!("{}-{}", self.tick + 1, self.next_cmd);
                self.next_cmd += 1;
                Input {
                    stream_id: id,
                    envelope: Envelope::new(self.eco.setup().match_id.clone(), source, body),
                }
            })
            .collect();
        let tick = TickCommitted {
            tick: self.tick,
            applied: Vec::new(),
            events,
            hash: 0,
            dead_lettered: Vec::new(),
        };
        let id = format!("{}-0", self.tick + 1);
        self.tick += 1;
        self.eco.step(&tick, &id, &inputs)
    }

    pub fn ledger(&self, p: u8) -> &PlayerLedger {
        match self.eco.player(PlayerId(p)) {
            Some(l) => l,
            None => panic!("no player {p}"),
        }
    }
}

/// Then: checks on one step's result.
pub trait Then {
    fn rejected(&self) -> Vec<RejectReason>;
    fn commands(&self) -> Vec<Command>;
    fn ledger_events(&self) -> &[LedgerEvent];
}

impl Then for StepResult {
    fn rejected(&self) -> Vec<RejectReason> {
        self.committed
            .events
            .iter()
            .filter_map(|e| match e {
                LedgerEvent::CommandRejected { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }

    fn commands(&self) -> Vec<Command> {
        self.commands.iter().map(|(_, c)| c.clone()).collect()
    }

    fn ledger_events(&self) -> &[LedgerEvent] {
        &self.committed.events
    }
}
