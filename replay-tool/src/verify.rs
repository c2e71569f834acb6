//! The desync audit: re-run the engine and the economy from their logged inputs, compare
//! every tick's hash with the recorded one, and explain the first divergence down to the
//! entity and component.
//!
//! A tick diverges when its re-run hash differs from the log's, or when the log does not
//! hold an input the tick names in usable form (a deleted command, one that no longer
//! decodes or is another event): the tick is reported like any other divergence, naming
//! the missing entry.
//!
//! The recorded state at the divergent tick T comes from, in order of preference (the
//! recorded states are the `snap` snapshots and, for the engine, the `seek` states):
//! 1. a recorded state at T;
//! 2. the nearest recorded state before T, re-run forward to T, when that re-run
//!    reproduces the recorded hash at T (then the full re-run differs because of its
//!    history: a nondeterminism such as iteration order);
//! 3. the nearest recorded state after T, with the full re-run carried forward to it:
//!    when they agree, only the recorded hash was wrong;
//! 4. otherwise, when T applied inputs, the state at T itself: the logged state before T
//!    (the nearest earlier recorded state re-run to T−1, every hash matching) stepped
//!    through T without those inputs, against the re-run's state after T. The original
//!    inputs are not in the log, so the state they led to is not either; these
//!    differences are what the inputs as logged did at T, the closest evidence at T
//!    itself (how many entities differ at the later state is added as a note).
//!
//! Every tick of this log carries its hash, so the first divergent tick is found by the
//! re-run itself, tick by tick; no bisection over sparse hashes is needed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::Rules;
use serde::Serialize;

use crate::error::{Result, Service};
use crate::inspect::{diff, Difference};
use crate::progress::{Progress, REPORT_EVERY};
use crate::recording::{Log, Recording, SnapEntry};
use crate::rerun::{EconomyRun, EngineRun, Fault, Machine, Stepped};

/// What to verify.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    pub engine: bool,
    pub economy: bool,
    /// Start at the nearest snapshot at or before this tick instead of tick 0.
    pub from_tick: Option<u64>,
    /// Differences reported at most.
    pub max_differences: usize,
    /// A deliberate bug (desync tests only).
    #[doc(hidden)]
    pub fault: Option<Fault>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            engine: true,
            economy: true,
            from_tick: None,
            max_differences: 40,
            fault: None,
        }
    }
}

/// One command (or the tick) an input list named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputInfo {
    pub stream_id: String,
    /// The schema version the entry was written with.
    pub schema_version: Option<u16>,
    pub source: String,
    pub command: String,
}

/// Where the recorded side of a divergence came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// A snapshot taken at the divergent tick.
    SnapshotAt { tick: u64 },
    /// A snapshot before it, re-run forward; this re-run reproduced the recorded hash.
    ReplayedFrom { snapshot_tick: u64 },
    /// The next snapshot after it; the full re-run was carried forward to that tick.
    LaterSnapshot { tick: u64 },
    /// The logged state before the tick (re-run from the recorded state at
    /// `state_tick`, every hash matching) stepped through it without its inputs: the
    /// differences are what the logged inputs did at the tick.
    WithoutInputs { state_tick: u64 },
    /// No snapshot could stand for the recorded state.
    Unavailable,
}

/// What the evidence says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The re-run's state differs from the recorded one: the inputs or the code differ
    /// from what ran.
    State,
    /// Re-running from a snapshot reproduces the log but the full re-run does not: the
    /// result depends on the state's history (nondeterminism).
    HistoryDependent,
    /// The recorded state equals the re-run's; only the recorded hash disagrees (the hash
    /// in the log was altered, or the hash function changed).
    RecordedHash,
    /// No recorded state to compare with.
    Unexplained,
    /// An input the tick names is not in the log in usable form (deleted, no longer
    /// decoding, or another event under its id).
    MissingInput,
}

/// The first divergent tick of one service and what differs there.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Divergence {
    pub service: Service,
    pub tick: u64,
    pub recorded_hash: u64,
    pub rerun_hash: u64,
    /// The inputs applied at that tick, in order.
    pub inputs: Vec<InputInfo>,
    /// Inputs the tick names that the log does not hold in usable form, and why.
    pub unusable_inputs: Vec<String>,
    /// Outcome events (and consumed ids) only the log (`-`) or only the re-run (`+`) has.
    pub outcome_diff: Vec<String>,
    /// Whether the re-run matches the log again at the next tick.
    pub next_tick_matches: Option<bool>,
    pub basis: Basis,
    /// The tick the differences are taken at (T, or a later snapshot's tick).
    pub compared_at: Option<u64>,
    pub kind: Kind,
    pub differences: Vec<Difference>,
    /// Entities that differ and that the inputs at the divergent tick name: where to
    /// look first when the differences have had ticks to spread.
    pub named_by_inputs: Vec<events::UnitId>,
    /// Labels of the entities the differences name ("light_tank of P0").
    pub labels: std::collections::BTreeMap<events::UnitId, String>,
    pub notes: Vec<String>,
}

/// How one service's re-run went.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceReport {
    pub service: Service,
    pub first_tick: u64,
    pub ticks_checked: u64,
    pub elapsed_s: f64,
    pub divergence: Option<Divergence>,
    /// The first tick whose hash matched but whose outcome events did not.
    pub first_outcome_mismatch: Option<u64>,
    /// Snapshots that do not restore to their hash or disagree with the log.
    pub snapshot_warnings: Vec<String>,
}

/// The whole audit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerifyReport {
    pub match_id: String,
    pub tick_hz: u32,
    pub engine: Option<ServiceReport>,
    pub economy: Option<ServiceReport>,
    /// Wall time of the audit (both services run in parallel).
    pub wall_s: f64,
    pub warnings: Vec<String>,
}

impl VerifyReport {
    /// No divergence in any service checked.
    pub fn ok(&self) -> bool {
        self.first_divergence().is_none()
    }

    /// The earliest divergence over the services.
    pub fn first_divergence(&self) -> Option<&Divergence> {
        [&self.engine, &self.economy]
            .into_iter()
            .flatten()
            .filter_map(|r| r.divergence.as_ref())
            .min_by_key(|d| (d.tick, d.service))
    }

    /// Ticks checked (the larger of the two services').
    pub fn ticks_checked(&self) -> u64 {
        [&self.engine, &self.economy]
            .into_iter()
            .flatten()
            .map(|r| r.ticks_checked)
            .max()
            .unwrap_or(0)
    }

    pub fn ticks_per_second(&self) -> f64 {
        self.ticks_checked() as f64 / self.wall_s.max(1e-9)
    }

    /// How many times faster than the match ran.
    pub fn realtime_multiple(&self) -> f64 {
        self.ticks_per_second() / f64::from(self.tick_hz.max(1))
    }
}

/// Audits a recording.
pub fn verify(
    rec: &Recording,
    rules: &Arc<Rules>,
    opts: &VerifyOptions,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let started = Instant::now();
    let mut warnings = Vec::new();
    if let Some(recorded) = rec.recorded_rules_hash() {
        let ours = engine::sim::Sim::new(rules.clone(), &rec.log.setup)
            .map(|s| s.rules().hash())
            .ok();
        if ours.is_some_and(|h| h != recorded) {
            warnings.push(format!(
                "the match ran with rules {recorded:016x}; this re-run uses {:016x} (pass the match's rules file)",
                ours.unwrap_or_default()
            ));
        }
    }
    if let Some(recorded) = recorded_sim_version(rec) {
        if recorded != engine::SIM_VERSION {
            warnings.push(format!(
                "the match ran with engine logic version {recorded}; this re-run uses version {}: a divergence may be a deliberate logic change rather than a desync",
                engine::SIM_VERSION
            ));
        }
    }
    let (engine, economy) = std::thread::scope(|s| {
        let e = opts
            .engine
            .then(|| s.spawn(|| run_service::<EngineRun>(rec, rules, opts, progress)));
        let c = opts
            .economy
            .then(|| s.spawn(|| run_service::<EconomyRun>(rec, rules, opts, progress)));
        let join = |h: Option<std::thread::ScopedJoinHandle<'_, Result<ServiceReport>>>| {
            h.map(|h| match h.join() {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            })
            .transpose()
        };
        (join(e), join(c))
    });
    Ok(VerifyReport {
        match_id: rec.match_id.to_string(),
        tick_hz: rec.tick_hz(),
        engine: engine?,
        economy: economy?,
        wall_s: started.elapsed().as_secs_f64(),
        warnings,
    })
}

/// The engine logic version the match announced at tick 0 (`0` when it predates the
/// announcement); `None` when the log has no tick 0 (it starts from a base state).
pub fn recorded_sim_version(rec: &Recording) -> Option<u32> {
    rec.log.tick(0).and_then(|t| {
        t.events.iter().find_map(|e| match e {
            events::GameEvent::MatchStarted { sim_version, .. } => Some(*sim_version),
            _ => None,
        })
    })
}

/// The nearest snapshot of `M` whose tick is at most `tick` and that restores.
pub fn restore_at_or_before<M: Machine>(
    log: &Log,
    rules: &Arc<Rules>,
    tick: u64,
) -> Option<(u64, M)> {
    let snaps: Vec<&SnapEntry> = log
        .snaps_of(M::SERVICE)
        .filter(|s| s.tick <= tick)
        .collect();
    snaps
        .into_iter()
        .rev()
        .find_map(|s| M::restore(rules, s).ok().map(|m| (s.tick, m)))
}

/// Re-runs one service over the whole log.
pub fn run_service<M: Machine>(
    rec: &Recording,
    rules: &Arc<Rules>,
    opts: &VerifyOptions,
    progress: &dyn Progress,
) -> Result<ServiceReport> {
    let log = &rec.log;
    let task = M::SERVICE.to_string();
    let mut m = match opts.from_tick {
        Some(t) if t > 0 => match restore_at_or_before::<M>(log, rules, t - 1) {
            Some((_, m)) => m,
            None => M::fresh(rules, log)?,
        },
        _ => M::fresh(rules, log)?,
    };
    let first_tick = m.next_tick();
    let last = M::last_tick(log);
    let total = last.map_or(0, |l| (l + 1).saturating_sub(first_tick));
    progress.begin(&task, total);
    let started = Instant::now();
    let mut checked = 0u64;
    let mut first_outcome_mismatch = None;
    let mut divergence = None;
    let mut elapsed = Duration::ZERO;
    while last.is_some_and(|l| m.next_tick() <= l) {
        let s = m.step(log, opts.fault)?;
        checked += 1;
        if checked.is_multiple_of(REPORT_EVERY) {
            progress.advance(&task, REPORT_EVERY);
        }
        if !s.matches() {
            elapsed = started.elapsed();
            divergence = Some(explain(rec, rules, m, s, opts)?);
            break;
        }
        if !s.same_outcome && first_outcome_mismatch.is_none() {
            first_outcome_mismatch = Some(s.tick);
        }
    }
    if divergence.is_none() {
        elapsed = started.elapsed();
    }
    progress.advance(&task, checked % REPORT_EVERY);
    progress.end(&task);
    Ok(ServiceReport {
        service: M::SERVICE,
        first_tick,
        ticks_checked: checked,
        elapsed_s: elapsed.as_secs_f64(),
        divergence,
        first_outcome_mismatch,
        snapshot_warnings: check_snapshots::<M>(log, rules),
    })
}

/// Every snapshot of `M` must restore to its own hash and agree with the log's hash of
/// its tick; the services skip snapshots that do not, so these are warnings.
fn check_snapshots<M: Machine>(log: &Log, rules: &Arc<Rules>) -> Vec<String> {
    let mut out = Vec::new();
    for s in log.snaps_of(M::SERVICE) {
        if let Err(e) = M::restore(rules, s) {
            out.push(e.to_string());
        } else if M::recorded_hash(log, s.tick).is_some_and(|h| h != s.hash) {
            out.push(format!(
                "{} snapshot at tick {} hashes to {:016x}; the log's hash of that tick is {:016x}",
                M::SERVICE,
                s.tick,
                s.hash,
                M::recorded_hash(log, s.tick).unwrap_or_default()
            ));
        }
    }
    out
}

/// The stream ids of the commands a service consumed at tick `t`.
fn input_ids<M: Machine>(log: &Log, t: u64) -> Vec<String> {
    match M::SERVICE {
        Service::Engine => log
            .tick(t)
            .map(|e| e.applied.iter().map(|a| a.stream_id.clone()).collect())
            .unwrap_or_default(),
        Service::Economy => log
            .eco(t)
            .map(|e| e.consumed.iter().skip(1).cloned().collect())
            .unwrap_or_default(),
    }
}

/// The inputs a service consumed at tick `t`, for the report.
fn inputs_at<M: Machine>(log: &Log, t: u64) -> Vec<InputInfo> {
    input_ids::<M>(log, t)
        .into_iter()
        .map(|id| {
            let sid = id.parse().ok();
            let version = sid.and_then(|s| log.cmd_versions.get(&s).copied());
            match log.cmd(&id) {
                Ok(env) => InputInfo {
                    stream_id: id,
                    schema_version: version,
                    source: format!("{:?}", env.source),
                    command: format!("{:?}", env.body),
                },
                Err(e) => InputInfo {
                    stream_id: id,
                    schema_version: version,
                    source: "?".into(),
                    command: e.to_string(),
                },
            }
        })
        .collect()
}

/// The recorded states of `M`, oldest first: its snapshots and, for the engine, the
/// `seek` states.
fn recorded_states<M: Machine>(log: &Log) -> Vec<&SnapEntry> {
    let mut v: Vec<&SnapEntry> = log.snaps_of(M::SERVICE).collect();
    if M::SERVICE == Service::Engine {
        v.extend(log.seek.iter());
    }
    v.sort_by_key(|s| s.tick);
    v
}

/// The nearest recorded state at or before `tick` that restores.
fn recorded_at_or_before<M: Machine>(log: &Log, rules: &Arc<Rules>, tick: u64) -> Option<(u64, M)> {
    recorded_states::<M>(log)
        .into_iter()
        .rev()
        .filter(|s| s.tick <= tick)
        .find_map(|s| M::restore(rules, s).ok().map(|m| (s.tick, m)))
}

/// The logged state before tick `t` (next tick `t`): from the nearest recorded state
/// before it (or the start), re-run while every hash matches the log; `None` when one
/// does not.
fn logged_state_before<M: Machine>(
    log: &Log,
    rules: &Arc<Rules>,
    t: u64,
    fault: Option<Fault>,
) -> Result<Option<(u64, M)>> {
    let (from, mut m) = match t
        .checked_sub(1)
        .and_then(|b| recorded_at_or_before::<M>(log, rules, b))
    {
        Some(found) => found,
        None => {
            let m = M::fresh(rules, log)?;
            (m.next_tick().saturating_sub(1), m)
        }
    };
    while m.next_tick() < t {
        if !m.step(log, fault)?.matches() {
            return Ok(None);
        }
    }
    Ok((m.next_tick() == t).then_some((from, m)))
}

/// Explains a divergence at `step.tick`; `rerun` is the full re-run's state right after it.
fn explain<M: Machine>(
    rec: &Recording,
    rules: &Arc<Rules>,
    mut rerun: M,
    step: Stepped,
    opts: &VerifyOptions,
) -> Result<Divergence> {
    let log = &rec.log;
    let t = step.tick;
    let mut notes = Vec::new();
    for why in &step.unusable {
        notes.push(format!(
            "tick {t} names an input the log does not hold: {why}"
        ));
    }
    let next_tick_matches = if M::recorded_hash(log, t + 1).is_some() {
        let mut f = rerun.fork(rules)?;
        Some(f.step(log, opts.fault)?.matches())
    } else {
        None
    };
    let states = recorded_states::<M>(log);

    let mut recorded: Option<(Basis, u64, M)> = None;
    // 1. A recorded state at T.
    if let Some(s) = states.iter().rev().find(|s| s.tick == t) {
        match M::restore(rules, s) {
            Ok(m) => recorded = Some((Basis::SnapshotAt { tick: t }, t, m)),
            Err(e) => notes.push(e.to_string()),
        }
    }
    // 2. The nearest recorded state before T, re-run forward.
    if recorded.is_none() {
        if let Some((from, mut m)) = t
            .checked_sub(1)
            .and_then(|b| recorded_at_or_before::<M>(log, rules, b))
        {
            let mut reproduced = true;
            while m.next_tick() <= t {
                let s = m.step(log, opts.fault)?;
                if !s.matches() {
                    reproduced = false;
                    if s.tick < t {
                        notes.push(format!(
                            "re-running from the recorded state at tick {from} diverges already at tick {}, which the full re-run matched: restoring that state loses state",
                            s.tick
                        ));
                    }
                    break;
                }
            }
            if reproduced {
                recorded = Some((
                    Basis::ReplayedFrom {
                        snapshot_tick: from,
                    },
                    t,
                    m,
                ));
            }
        }
    }
    let compare = |recorded: &mut M, rerun: &mut M| {
        let a = recorded.inspect();
        let b = rerun.inspect();
        let d = diff(&a, &b, opts.max_differences);
        let mut labels = std::collections::BTreeMap::new();
        for x in &d {
            if let Some(u) = x.entity() {
                if let Some(l) = a.labels.get(&u).or_else(|| b.labels.get(&u)) {
                    labels.insert(u, l.clone());
                }
            }
        }
        (d, labels)
    };
    let mut compared = None;
    if let Some((basis, at, mut m)) = recorded {
        let (d, labels) = compare(&mut m, &mut rerun);
        compared = Some((basis, at, d, labels));
    }
    // 3. The nearest recorded state after T, with the full re-run carried forward to it;
    // 4. when they differ (or there is none) and T applied inputs, the state at T
    // without them.
    if compared.is_none() {
        let at_t = rerun.fork(rules)?;
        if let Some((s, mut m)) = states
            .iter()
            .filter(|s| s.tick > t)
            .find_map(|s| M::restore(rules, s).ok().map(|m| (s, m)))
        {
            while rerun.next_tick() <= s.tick {
                rerun.step(log, opts.fault)?;
            }
            let (d, labels) = compare(&mut m, &mut rerun);
            compared = Some((Basis::LaterSnapshot { tick: s.tick }, s.tick, d, labels));
        }
        let spread = compared.as_ref().is_none_or(|c| !c.2.is_empty());
        let had_inputs = !input_ids::<M>(log, t).is_empty();
        if spread && had_inputs && step.unusable.is_empty() {
            if let Some((from, mut before)) = logged_state_before::<M>(log, rules, t, opts.fault)? {
                before.step_without_inputs(log)?;
                let mut at_t = at_t;
                let (d, labels) = compare(&mut before, &mut at_t);
                if !d.is_empty() {
                    if let Some((Basis::LaterSnapshot { tick }, _, later, _)) = &compared {
                        notes.push(format!(
                            "the next recorded state, at tick {tick}, differs from the re-run carried forward to it in {} place(s)",
                            later.len()
                        ));
                    }
                    compared = Some((Basis::WithoutInputs { state_tick: from }, t, d, labels));
                }
            }
        }
    }

    let (basis, compared_at, differences, labels) = match compared {
        Some((basis, at, d, labels)) => (basis, Some(at), d, labels),
        None => {
            notes.push(format!(
                "no usable recorded {} state: the recorded state at tick {t} is known only by its hash",
                M::SERVICE
            ));
            (Basis::Unavailable, None, Vec::new(), Default::default())
        }
    };
    let named: std::collections::BTreeSet<events::UnitId> = input_ids::<M>(log, t)
        .iter()
        .filter_map(|id| log.cmd(id).ok())
        .flat_map(|env| units_named(&env.body))
        .collect();
    let mut named_by_inputs: Vec<events::UnitId> = differences
        .iter()
        .filter_map(|d| d.entity())
        .filter(|u| named.contains(u))
        .collect();
    named_by_inputs.dedup();
    let kind = match (&basis, differences.is_empty()) {
        _ if !step.unusable.is_empty() => Kind::MissingInput,
        (Basis::Unavailable, _) => Kind::Unexplained,
        (_, true) => Kind::RecordedHash,
        (Basis::ReplayedFrom { .. }, false) => Kind::HistoryDependent,
        (_, false) => Kind::State,
    };
    Ok(Divergence {
        service: M::SERVICE,
        tick: t,
        recorded_hash: step.recorded,
        rerun_hash: step.hash,
        inputs: inputs_at::<M>(log, t),
        unusable_inputs: step.unusable,
        outcome_diff: step.outcome_diff,
        next_tick_matches,
        basis,
        compared_at,
        kind,
        differences,
        named_by_inputs,
        labels,
        notes,
    })
}

/// The entities a command names.
pub fn units_named(c: &events::Command) -> Vec<events::UnitId> {
    use events::Command as C;
    match c {
        C::MoveUnits(m) => m.units.clone(),
        C::AttackMove(m) => m.units.clone(),
        C::AttackTarget(a) => {
            let mut v = a.units.clone();
            v.push(a.target);
            v
        }
        C::Stop(x) => x.units.clone(),
        C::HoldPosition(x) => x.units.clone(),
        C::Harvest(x) => x.units.clone(),
        C::ReturnToRefinery(x) => x.units.clone(),
        C::Sell(x) => vec![x.building],
        C::SetRally(x) => vec![x.building],
        C::RepairBuilding(x) => vec![x.building],
        C::HealBuilding(x) => vec![x.building],
        C::QueueProduction(_)
        | C::HoldProduction(_)
        | C::CancelProduction(_)
        | C::PlaceBuilding(_)
        | C::SpawnUnit(_)
        | C::ConstructBuilding(_)
        | C::SetLowPower(_)
        | C::Surrender(_) => Vec::new(),
    }
}
