//! The whole stack in process: the engine's [`Sim`], the [`Economy`] and the AI players
//! wired together the way the services are over the bus, with no bus, no clock and no
//! threads (in the spirit of lightyear's test stepper).
//!
//! [`Stack`] is the one wiring: per tick, the commands appended since the last tick go to
//! the engine (which applies the unit orders and economy operations) and to the economy
//! (which handles the production ones) together with the committed tick; the economy's
//! commands and then the AIs' are what gets appended for the next tick. [`Stepper`] runs
//! it with counter ids and records every tick's inputs, so a match can be re-run from its
//! log and its hashes compared; the recorder ([`crate::record`]) runs it and writes the
//! services' stream layout.

use std::sync::Arc;

use economy::map_view::MapView;
use economy::state::rules_for_rate;
use economy::{Ai, Economy, Input};
use engine::sim::{Input as SimInput, SetupError, Sim, StepOutput};
use engine::Rules;
use events::{
    Command, EconomyStepCommitted, Envelope, GameEvent, MatchCreated, PlayerId, PlayerKind, Source,
    TickCommitted, ViewFrame, SCHEMA_VERSION,
};

/// The engine, the economy and the AIs of one match.
pub struct Stack {
    /// The rules at the match's tick rate.
    pub rules: Arc<Rules>,
    pub setup: MatchCreated,
    pub sim: Sim,
    pub eco: Economy,
    pub ais: Vec<Ai>,
    pub map: Arc<MapView>,
}

/// What one tick of the [`Stack`] produced.
pub struct Stepped {
    /// The engine's tick and view frame.
    pub engine: StepOutput,
    /// The economy's step.
    pub economy: EconomyStepCommitted,
    /// Commands to append for the next tick: the economy's, then the AIs', in order.
    pub commands: Vec<(Source, Command)>,
}

impl Stack {
    /// A match with an AI for every `PlayerKind::Ai` slot (seeded from the match seed),
    /// from the initial state its setup describes (`engine::scenario::initial`: a battle
    /// starts after its warm-up, at `engine::scenario::first_tick`).
    pub fn new(rules: Arc<Rules>, setup: &MatchCreated) -> Result<Stack, SetupError> {
        let rules = rules_for_rate(rules, setup.tick_hz);
        let sim = engine::scenario::initial(rules.clone(), setup)?;
        Ok(Self::with_sim(rules, setup, sim))
    }

    /// A match on a hand-made engine map (players take its starts in slot order).
    pub fn on_map(rules: Arc<Rules>, setup: &MatchCreated, map: engine::Map) -> Stack {
        let rules = rules_for_rate(rules, setup.tick_hz);
        let ids: Vec<PlayerId> = setup.players.iter().map(|p| p.id).collect();
        let sim = Sim::with_map(rules.clone(), map, &ids, setup.seed);
        Self::with_sim(rules, setup, sim)
    }

    fn with_sim(rules: Arc<Rules>, setup: &MatchCreated, sim: Sim) -> Stack {
        let map = Arc::new(MapView::from_engine(sim.map()));
        let eco = Economy::with_map(rules.clone(), setup, &map);
        let ais = setup
            .players
            .iter()
            .filter_map(|p| match p.kind {
                PlayerKind::Ai(d) => Some(
                    Ai::new(
                        p.id,
                        d,
                        rules.clone(),
                        setup.seed ^ (u64::from(p.id.0) << 32),
                    )
                    .with_map(map.clone()),
                ),
                PlayerKind::Human => None,
            })
            .collect();
        Stack {
            rules,
            setup: setup.clone(),
            sim,
            eco,
            ais,
            map,
        }
    }

    /// Runs one tick: the engine on `inputs`, the economy on the committed tick (its step
    /// logged under `tick_id(tick)`) and the production commands among `inputs`, then the
    /// AIs observe the view and decide.
    pub fn step(&mut self, inputs: &[SimInput], tick_id: impl Fn(u64) -> String) -> Stepped {
        let engine = self.sim.step(inputs);
        let tick = engine.committed.tick;
        let eco = self
            .eco
            .step(&engine.committed, &tick_id(tick), &production(inputs));
        let mut commands = eco.commands;
        for ai in &mut self.ais {
            ai.observe(&engine.view);
            if let Some(ledger) = self.eco.player(ai.player()) {
                for c in ai.decide(tick, ledger) {
                    commands.push((Source::Bot(ai.player()), c));
                }
            }
        }
        Stepped {
            engine,
            economy: eco.committed,
            commands,
        }
    }
}

/// The production commands among a tick's inputs: what the economy folds.
fn production(inputs: &[SimInput]) -> Vec<Input> {
    inputs
        .iter()
        .filter(|i| i.envelope.body.is_production())
        .map(|i| Input {
            stream_id: i.stream_id.clone(),
            envelope: i.envelope.clone(),
        })
        .collect()
}

/// The economy's log id for a tick in a [`Stepper`] run.
fn stepper_tick_id(tick: u64) -> String {
    format!("{}-0", tick + 1)
}

/// One tick's result.
#[derive(Clone, Debug)]
pub struct TickReport {
    pub tick: u64,
    pub engine_hash: u64,
    pub economy_hash: u64,
    pub committed: TickCommitted,
    pub view: ViewFrame,
}

/// A [`Stack`] stepped with counter-based command ids, recording every tick's inputs.
pub struct Stepper {
    pub stack: Stack,
    /// Commands appended since the last tick, in stream order.
    pending: Vec<SimInput>,
    seq: u64,
    /// The inputs of every tick run so far (the match's `cmd` log, grouped by tick).
    pub log: Vec<Vec<SimInput>>,
    /// (engine hash, economy hash) after every tick.
    pub hashes: Vec<(u64, u64)>,
}

impl Stepper {
    /// A match with an AI for every `PlayerKind::Ai` slot (seeded from the match seed).
    pub fn new(rules: Arc<Rules>, setup: &MatchCreated) -> Result<Stepper, SetupError> {
        Ok(Self::from_stack(Stack::new(rules, setup)?))
    }

    /// A match on a hand-made engine map (players take its starts in slot order).
    pub fn on_map(rules: Arc<Rules>, setup: &MatchCreated, map: engine::Map) -> Stepper {
        Self::from_stack(Stack::on_map(rules, setup, map))
    }

    fn from_stack(stack: Stack) -> Stepper {
        Stepper {
            stack,
            pending: Vec::new(),
            seq: 0,
            log: Vec::new(),
            hashes: Vec::new(),
        }
    }

    /// The tick the next [`Stepper::step`] runs.
    pub fn tick(&self) -> u64 {
        self.stack.sim.next_tick()
    }

    /// Appends a command to the match's `cmd` stream (as a gateway or bot would).
    /// Envelopes get counter-based ids and a simulated send time, so runs are repeatable.
    pub fn push(&mut self, source: Source, body: Command) {
        self.seq += 1;
        let hz = u64::from(self.stack.rules.tick_hz.max(1));
        let next = self.stack.sim.next_tick();
        let envelope = Envelope {
            v: SCHEMA_VERSION,
            id: uuid::Uuid::from_u128(u128::from(self.seq)),
            match_id: self.stack.setup.match_id.clone(),
            source,
            sent_ms: next * 1000 / hz,
            body,
        };
        self.pending.push(SimInput {
            stream_id: format!("{}-{}", next + 1, self.seq),
            envelope,
        });
    }

    /// Runs one tick of the whole stack.
    pub fn step(&mut self) -> TickReport {
        let inputs = std::mem::take(&mut self.pending);
        let s = self.stack.step(&inputs, stepper_tick_id);
        self.log.push(inputs);
        for (source, cmd) in s.commands {
            self.push(source, cmd);
        }
        let hashes = (s.engine.committed.hash, s.economy.hash);
        self.hashes.push(hashes);
        TickReport {
            tick: s.engine.committed.tick,
            engine_hash: hashes.0,
            economy_hash: hashes.1,
            committed: s.engine.committed,
            view: s.engine.view,
        }
    }

    /// Runs until the engine declares a winner or `max_ticks` ticks have run; returns the
    /// winner (`Some(None)`: the match ended with nobody standing) and the ticks run.
    pub fn run(&mut self, max_ticks: u64) -> (Option<Option<PlayerId>>, u64) {
        let start = self.tick();
        while self.tick() - start < max_ticks {
            let r = self.step();
            if let Some(w) = winner(&r.committed) {
                return (Some(w), self.tick() - start);
            }
        }
        (None, self.tick() - start)
    }

    /// Re-runs a recorded match (engine and economy only, fed the logged inputs) and
    /// returns its hashes, to compare with [`Stepper::hashes`].
    pub fn replay(
        rules: Arc<Rules>,
        setup: &MatchCreated,
        log: &[Vec<SimInput>],
    ) -> Result<Vec<(u64, u64)>, SetupError> {
        let rules = rules_for_rate(rules, setup.tick_hz);
        let mut sim = engine::scenario::initial(rules.clone(), setup)?;
        let map = MapView::from_engine(sim.map());
        let mut eco = Economy::with_map(rules, setup, &map);
        let mut hashes = Vec::with_capacity(log.len());
        for inputs in log {
            let out = sim.step(inputs);
            let tick = out.committed.tick;
            let r = eco.step(&out.committed, &stepper_tick_id(tick), &production(inputs));
            hashes.push((out.committed.hash, r.committed.hash));
        }
        Ok(hashes)
    }
}

/// The winner a committed tick declares, if it ends the match (`Some(None)`: nobody
/// standing).
pub fn winner(committed: &TickCommitted) -> Option<Option<PlayerId>> {
    committed.events.iter().find_map(|e| match e {
        GameEvent::MatchWon { winner } => Some(*winner),
        _ => None,
    })
}
