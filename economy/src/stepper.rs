//! An in-process tick stepper: the engine's [`Sim`], the [`Economy`] and the AI players
//! wired together the way the services are over the bus, with no bus, no clock and no
//! threads (in the spirit of lightyear's test stepper).
//!
//! Per tick: the commands appended since the last tick go to the engine (which applies
//! the unit orders and economy operations) and to the economy (which handles the
//! production ones) together with the committed tick; the economy's commands and the
//! AIs' commands are appended for the next tick. Every tick's inputs are recorded, so a
//! match can be re-run from its log and its hashes compared.

use std::sync::Arc;

use engine::sim::{Input as SimInput, SetupError, Sim};
use engine::Rules;
use events::{
    Command, Envelope, GameEvent, MatchCreated, PlayerId, PlayerKind, Source, TickCommitted,
    ViewFrame, SCHEMA_VERSION,
};

use crate::ai::Ai;
use crate::map_view::MapView;
use crate::state::{rules_for_rate, Economy, Input};

/// One tick's result.
#[derive(Clone, Debug)]
pub struct TickReport {
    pub tick: u64,
    pub engine_hash: u64,
    pub economy_hash: u64,
    pub committed: TickCommitted,
    pub view: ViewFrame,
}

/// The engine, the economy and the AIs of one match, stepped together.
pub struct Stepper {
    pub rules: Arc<Rules>,
    pub setup: MatchCreated,
    pub sim: Sim,
    pub eco: Economy,
    pub ais: Vec<Ai>,
    pub map: Arc<MapView>,
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
        let rules = rules_for_rate(rules, setup.tick_hz);
        let sim = Sim::new(rules.clone(), setup)?;
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
        Ok(Stepper {
            rules,
            setup: setup.clone(),
            sim,
            eco,
            ais,
            map,
            pending: Vec::new(),
            seq: 0,
            log: Vec::new(),
            hashes: Vec::new(),
        })
    }

    /// A match on a hand-made engine map (players take its starts in slot order).
    pub fn on_map(rules: Arc<Rules>, setup: &MatchCreated, map: engine::Map) -> Stepper {
        let rules = rules_for_rate(rules, setup.tick_hz);
        let view = Arc::new(MapView::from_engine(&map));
        let ids: Vec<PlayerId> = setup.players.iter().map(|p| p.id).collect();
        let sim = Sim::with_map(rules.clone(), map, &ids, setup.seed);
        let eco = Economy::with_map(rules.clone(), setup, &view);
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
                    .with_map(view.clone()),
                ),
                PlayerKind::Human => None,
            })
            .collect();
        Stepper {
            rules,
            setup: setup.clone(),
            sim,
            eco,
            ais,
            map: view,
            pending: Vec::new(),
            seq: 0,
            log: Vec::new(),
            hashes: Vec::new(),
        }
    }

    /// The tick the next [`Stepper::step`] runs.
    pub fn tick(&self) -> u64 {
        self.sim.next_tick()
    }

    /// Appends a command to the match's `cmd` stream (as a gateway or bot would).
    /// Envelopes get counter-based ids and a simulated send time, so runs are repeatable.
    pub fn push(&mut self, source: Source, body: Command) {
        self.seq += 1;
        let hz = u64::from(self.rules.tick_hz.max(1));
        let envelope = Envelope {
            v: SCHEMA_VERSION,
            id: uuid::Uuid::from_u128(u128::from(self.seq)),
            match_id: self.setup.match_id.clone(),
            source,
            sent_ms: self.sim.next_tick() * 1000 / hz,
            body,
        };
        self.pending.push(SimInput {
            stream_id: format!("{}-{}", self.sim.next_tick() + 1, self.seq),
            envelope,
        });
    }

    /// Runs one tick of the whole stack.
    pub fn step(&mut self) -> TickReport {
        let inputs = std::mem::take(&mut self.pending);
        let out = self.sim.step(&inputs);
        let tick = out.committed.tick;
        let production: Vec<Input> = inputs
            .iter()
            .filter(|i| i.envelope.body.is_production())
            .map(|i| Input {
                stream_id: i.stream_id.clone(),
                envelope: i.envelope.clone(),
            })
            .collect();
        let eco = self
            .eco
            .step(&out.committed, &format!("{}-0", tick + 1), &production);
        self.log.push(inputs);
        for (source, cmd) in eco.commands {
            self.push(source, cmd);
        }
        let mut ai_cmds = Vec::new();
        for ai in &mut self.ais {
            ai.observe(&out.view);
            if let Some(ledger) = self.eco.player(ai.player()) {
                for c in ai.decide(tick, ledger) {
                    ai_cmds.push((Source::Bot(ai.player()), c));
                }
            }
        }
        for (s, c) in ai_cmds {
            self.push(s, c);
        }
        let hashes = (out.committed.hash, eco.committed.hash);
        self.hashes.push(hashes);
        TickReport {
            tick,
            engine_hash: hashes.0,
            economy_hash: hashes.1,
            committed: out.committed,
            view: out.view,
        }
    }

    /// Runs until the engine declares a winner or `max_ticks` ticks have run; returns the
    /// winner (`Some(None)`: the match ended with nobody standing) and the ticks run.
    pub fn run(&mut self, max_ticks: u64) -> (Option<Option<PlayerId>>, u64) {
        let start = self.tick();
        while self.tick() - start < max_ticks {
            let r = self.step();
            if let Some(w) = r.committed.events.iter().find_map(|e| match e {
                GameEvent::MatchWon { winner } => Some(*winner),
                _ => None,
            }) {
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
        let mut sim = Sim::new(rules.clone(), setup)?;
        let map = MapView::from_engine(sim.map());
        let mut eco = Economy::with_map(rules, setup, &map);
        let mut hashes = Vec::with_capacity(log.len());
        for inputs in log {
            let out = sim.step(inputs);
            let production: Vec<Input> = inputs
                .iter()
                .filter(|i| i.envelope.body.is_production())
                .map(|i| Input {
                    stream_id: i.stream_id.clone(),
                    envelope: i.envelope.clone(),
                })
                .collect();
            let tick = out.committed.tick;
            let r = eco.step(&out.committed, &format!("{}-0", tick + 1), &production);
            hashes.push((out.committed.hash, r.committed.hash));
        }
        Ok(hashes)
    }
}
