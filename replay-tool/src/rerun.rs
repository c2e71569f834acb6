//! Re-running the engine and the economy from their logged inputs, one tick at a time,
//! behind one trait so verify, seek and bench treat both services alike.

use std::collections::HashMap;
use std::sync::Arc;

use economy::Economy;
use engine::sim::{Input, Sim};
use engine::Rules;

use crate::error::{Error, Result, Service};
use crate::inspect::Inspection;
use crate::recording::{Log, SnapEntry};

/// Deliberate bugs for the desync tests: a verify run with a fault must catch it.
/// Hidden from the docs; nothing but tests sets one.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Feed each tick's commands to the engine in `HashMap` iteration order instead of
    /// the logged order: the classic "iterated a hash map" nondeterminism (the order
    /// differs between maps, so between runs and within one).
    HashOrderInputs,
}

/// One re-run step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stepped {
    pub tick: u64,
    /// The re-run's state hash after the step.
    pub hash: u64,
    /// The hash the log recorded for this step.
    pub recorded: u64,
    /// The step's outcome (events, and the inputs it says it consumed) equals the log's.
    pub same_outcome: bool,
    /// When the outcome differs: what only the log has (`- ...`) and what only the
    /// re-run has (`+ ...`).
    pub outcome_diff: Vec<String>,
    /// Inputs the log names for this step that it does not hold in usable form (a
    /// deleted entry, one that no longer decodes, another event under its id): the step
    /// ran without them, and it diverges whatever its hash.
    pub unusable: Vec<String>,
}

impl Stepped {
    pub fn matches(&self) -> bool {
        self.hash == self.recorded && self.unusable.is_empty()
    }
}

/// The command `id` names, or why the log cannot give it.
fn usable_cmd<'a>(
    log: &'a Log,
    id: &str,
) -> std::result::Result<&'a events::Envelope<events::Command>, String> {
    log.cmd(id).map_err(|e| match e {
        Error::Log(why) => why,
        other => other.to_string(),
    })
}

/// A service re-run from its log.
pub trait Machine: Sized + Send {
    const SERVICE: Service;

    /// The state before the first tick.
    fn fresh(rules: &Arc<Rules>, log: &Log) -> Result<Self>;

    /// The state from snapshot bytes of this service.
    fn restore_bytes(rules: &Arc<Rules>, bytes: &[u8], tick: u64) -> Result<Self>;

    /// The state from a recorded snapshot, checked against the snapshot's hash.
    fn restore(rules: &Arc<Rules>, snap: &SnapEntry) -> Result<Self> {
        let m = Self::restore_bytes(rules, &snap.state, snap.tick)?;
        if m.hash() != snap.hash {
            return Err(Error::Snapshot {
                service: Self::SERVICE,
                tick: snap.tick,
                why: format!(
                    "restored state hashes to {:016x}, the snapshot says {:016x}",
                    m.hash(),
                    snap.hash
                ),
            });
        }
        if snap.tick.checked_add(1) != Some(m.next_tick()) {
            return Err(Error::Snapshot {
                service: Self::SERVICE,
                tick: snap.tick,
                why: format!("restored state is before tick {}", m.next_tick()),
            });
        }
        Ok(m)
    }

    /// The tick the next [`Machine::step`] runs.
    fn next_tick(&self) -> u64;

    /// Runs the next tick from the log.
    fn step(&mut self, log: &Log, fault: Option<Fault>) -> Result<Stepped>;

    fn hash(&self) -> u64;

    fn snapshot(&self) -> Vec<u8>;

    /// Runs the next tick as the log has it but without any of the commands it names
    /// (the state that tick would have led to had they not been sent).
    fn step_without_inputs(&mut self, log: &Log) -> Result<()>;

    /// Everything the state holds, for diffs and `state`.
    fn inspect(&mut self) -> Inspection;

    /// The last tick this service's log holds.
    fn last_tick(log: &Log) -> Option<u64>;

    /// The hash the log recorded after tick `t`.
    fn recorded_hash(log: &Log, t: u64) -> Option<u64>;

    /// An independent copy (through a snapshot: neither state type is `Clone`-able
    /// cheaply and correctly in every derived field).
    fn fork(&self, rules: &Arc<Rules>) -> Result<Self> {
        Self::restore_bytes(rules, &self.snapshot(), self.next_tick().saturating_sub(1))
    }
}

/// The engine's simulation, fed the commands each tick entry lists.
pub struct EngineRun {
    pub sim: Sim,
    /// Reused input buffer (commands are cloned into it each tick).
    inputs: Vec<Input>,
}

impl EngineRun {
    pub fn new(sim: Sim) -> Self {
        Self {
            sim,
            inputs: Vec::new(),
        }
    }

    /// The commands tick `t` applied, in the logged order.
    pub fn inputs_of(log: &Log, t: u64) -> Result<Vec<Input>> {
        let entry = log
            .tick(t)
            .ok_or_else(|| Error::Log(format!("no tick entry for tick {t}")))?;
        let mut out = Vec::with_capacity(entry.applied.len());
        for a in &entry.applied {
            let env = log.cmd(&a.stream_id)?;
            if env.id != a.event_id {
                return Err(Error::Log(format!(
                    "tick {t} applied event {} at {}, but that entry is event {}",
                    a.event_id, a.stream_id, env.id
                )));
            }
            out.push(Input {
                stream_id: a.stream_id.clone(),
                envelope: env.clone(),
            });
        }
        Ok(out)
    }
}

impl Machine for EngineRun {
    const SERVICE: Service = Service::Engine;

    /// The state before the log's first tick, as its setup describes it
    /// (`engine::scenario::initial`: a new match, or a battle built and warmed up), or for
    /// a battle created before `MatchCreated` carried its scenario, the base state the
    /// lobby wrote, from the `seek` or `snap` stream.
    fn fresh(rules: &Arc<Rules>, log: &Log) -> Result<Self> {
        if log.first_tick == engine::scenario::first_tick(&log.setup) {
            return Ok(Self::new(engine::scenario::initial(
                rules.clone(),
                &log.setup,
            )?));
        }
        let base = log.first_tick.saturating_sub(1);
        let mut why = format!("no engine state after tick {base} is in the seek or snap stream");
        for s in log.seek.iter().chain(log.snaps_of(Service::Engine)) {
            if s.tick != base {
                continue;
            }
            match Self::restore(rules, s) {
                Ok(m) => return Ok(m),
                Err(e) => why = e.to_string(),
            }
        }
        Err(Error::Log(format!(
            "the log starts at tick {} from a base state it no longer holds: {why}",
            log.first_tick
        )))
    }

    fn restore_bytes(rules: &Arc<Rules>, bytes: &[u8], tick: u64) -> Result<Self> {
        Sim::restore(rules.clone(), bytes)
            .map(Self::new)
            .map_err(|e| Error::Snapshot {
                service: Service::Engine,
                tick,
                why: e.to_string(),
            })
    }

    fn next_tick(&self) -> u64 {
        self.sim.next_tick()
    }

    fn step(&mut self, log: &Log, fault: Option<Fault>) -> Result<Stepped> {
        let t = self.sim.next_tick();
        let entry = log
            .tick(t)
            .ok_or_else(|| Error::Log(format!("no tick entry for tick {t}")))?;
        self.inputs.clear();
        let mut unusable = Vec::new();
        for a in &entry.applied {
            match usable_cmd(log, &a.stream_id) {
                Ok(env) if env.id == a.event_id => self.inputs.push(Input {
                    stream_id: a.stream_id.clone(),
                    envelope: env.clone(),
                }),
                Ok(env) => unusable.push(format!(
                    "tick {t} applied event {} at {}, but that entry is event {}",
                    a.event_id, a.stream_id, env.id
                )),
                Err(why) => unusable.push(why),
            }
        }
        if fault == Some(Fault::HashOrderInputs) {
            let by_id: HashMap<String, Input> = self
                .inputs
                .drain(..)
                .map(|i| (i.stream_id.clone(), i))
                .collect();
            self.inputs.extend(by_id.into_values());
        }
        let out = self.sim.step(&self.inputs);
        let c = out.committed;
        let same_outcome = c.events == entry.events && c.applied == entry.applied;
        let outcome_diff = if same_outcome {
            Vec::new()
        } else {
            let mut d = list_diff(&entry.events, &c.events);
            d.extend(list_diff(&entry.applied, &c.applied));
            d
        };
        Ok(Stepped {
            tick: t,
            hash: c.hash,
            recorded: entry.hash,
            same_outcome,
            outcome_diff,
            unusable,
        })
    }

    fn step_without_inputs(&mut self, _log: &Log) -> Result<()> {
        self.sim.step(&[]);
        Ok(())
    }

    fn hash(&self) -> u64 {
        self.sim.hash()
    }

    fn snapshot(&self) -> Vec<u8> {
        self.sim.snapshot()
    }

    fn inspect(&mut self) -> Inspection {
        Inspection::of_engine(&self.sim)
    }

    fn last_tick(log: &Log) -> Option<u64> {
        log.last_tick()
    }

    fn recorded_hash(log: &Log, t: u64) -> Option<u64> {
        log.tick(t).map(|e| e.hash)
    }
}

/// The economy, fed the tick and the commands each economy step names.
pub struct EconomyRun {
    pub eco: Economy,
    /// The first tick a fresh economy steps (after a battle's base state: not 0).
    first: u64,
}

impl EconomyRun {
    /// The commands economy step `t` consumed, in the logged order.
    pub fn inputs_of(log: &Log, t: u64) -> Result<Vec<economy::Input>> {
        let entry = log
            .eco(t)
            .ok_or_else(|| Error::Log(format!("no economy step for tick {t}")))?;
        entry
            .consumed
            .iter()
            .skip(1)
            .map(|id| {
                Ok(economy::Input {
                    stream_id: id.clone(),
                    envelope: log.cmd(id)?.clone(),
                })
            })
            .collect()
    }
}

impl Machine for EconomyRun {
    const SERVICE: Service = Service::Economy;

    fn fresh(rules: &Arc<Rules>, log: &Log) -> Result<Self> {
        Ok(Self {
            eco: Economy::new(rules.clone(), &log.setup),
            first: log.first_tick,
        })
    }

    fn restore_bytes(rules: &Arc<Rules>, bytes: &[u8], tick: u64) -> Result<Self> {
        Economy::restore(rules.clone(), bytes)
            .map(|eco| Self {
                eco,
                first: tick.saturating_add(1),
            })
            .map_err(|e| Error::Snapshot {
                service: Service::Economy,
                tick,
                why: e.to_string(),
            })
    }

    fn next_tick(&self) -> u64 {
        self.eco
            .last_tick()
            .map_or(self.first, |t| t.saturating_add(1))
    }

    fn step(&mut self, log: &Log, _fault: Option<Fault>) -> Result<Stepped> {
        let t = self.next_tick();
        let entry = log
            .eco(t)
            .ok_or_else(|| Error::Log(format!("no economy step for tick {t}")))?;
        let Some(tick_id) = entry.consumed.first() else {
            return Err(Error::Log(format!(
                "economy step {t} names no tick it consumed"
            )));
        };
        let tick = log.tick_by_id(tick_id)?;
        if tick.tick != t {
            return Err(Error::Log(format!(
                "economy step {t} consumed tick {} ({tick_id})",
                tick.tick
            )));
        }
        let mut inputs = Vec::with_capacity(entry.consumed.len());
        let mut unusable = Vec::new();
        for id in entry.consumed.iter().skip(1) {
            match usable_cmd(log, id) {
                Ok(env) => inputs.push(economy::Input {
                    stream_id: id.clone(),
                    envelope: env.clone(),
                }),
                Err(why) => unusable.push(why),
            }
        }
        let r = self.eco.step(tick, tick_id, &inputs);
        let c = r.committed;
        let same_outcome = c.events == entry.events && c.consumed == entry.consumed;
        let outcome_diff = if same_outcome {
            Vec::new()
        } else {
            let mut d = list_diff(&entry.events, &c.events);
            d.extend(list_diff(&entry.consumed, &c.consumed));
            d
        };
        Ok(Stepped {
            tick: t,
            hash: c.hash,
            recorded: entry.hash,
            same_outcome,
            outcome_diff,
            unusable,
        })
    }

    fn step_without_inputs(&mut self, log: &Log) -> Result<()> {
        let t = self.next_tick();
        let entry = log
            .eco(t)
            .ok_or_else(|| Error::Log(format!("no economy step for tick {t}")))?;
        let tick_id = entry
            .consumed
            .first()
            .ok_or_else(|| Error::Log(format!("economy step {t} names no tick it consumed")))?;
        let tick = log.tick_by_id(tick_id)?;
        self.eco.step(tick, tick_id, &[]);
        Ok(())
    }

    fn hash(&self) -> u64 {
        self.eco.hash()
    }

    fn snapshot(&self) -> Vec<u8> {
        self.eco.snapshot()
    }

    fn inspect(&mut self) -> Inspection {
        Inspection::of_economy(&self.eco)
    }

    fn last_tick(log: &Log) -> Option<u64> {
        log.last_eco_tick()
    }

    fn recorded_hash(log: &Log, t: u64) -> Option<u64> {
        log.eco(t).map(|e| e.hash)
    }
}

/// The rules to re-run with: the standard rules of this build.
pub fn standard_rules() -> Arc<Rules> {
    Arc::new(Rules::standard())
}

/// Items only in `recorded` (`- ...`) and only in `rerun` (`+ ...`), as multisets.
pub fn list_diff<T: std::fmt::Debug + PartialEq>(recorded: &[T], rerun: &[T]) -> Vec<String> {
    let mut left: Vec<Option<&T>> = rerun.iter().map(Some).collect();
    let mut out = Vec::new();
    for r in recorded {
        match left.iter().position(|x| *x == Some(r)) {
            Some(i) => left[i] = None,
            None => out.push(format!("- {r:?}")),
        }
    }
    out.extend(left.into_iter().flatten().map(|x| format!("+ {x:?}")));
    out
}
