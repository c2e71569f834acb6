//! Rebuilding a match's simulation when an instance (re)starts it: from the newest
//! usable engine snapshot (or, without one, the initial state its `MatchCreated`
//! describes: `scenario::initial`), then re-running every committed tick after it with
//! exactly the commands that tick recorded, checking each recorded hash.

use std::collections::BTreeMap;
use std::sync::Arc;

use events::{
    decode, encode, Bus, BusError, Command, Envelope, IdSpec, Keys, MatchCreated, Snapshot,
    SnapshotOwner, Source, StreamId, TickCommitted,
};
use tokio_util::sync::CancellationToken;

use super::metric;
use crate::rules::Rules;
use crate::scenario;
use crate::sim::{Input, Sim};
use events::commit::with_retry;

/// Why a match's simulation could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("bus: {0}")]
    Bus(#[from] events::BusError),
    #[error("cannot start the match: {0}")]
    Setup(String),
    #[error("recovery diverged at tick {tick}: recorded hash {recorded:#x}, re-run {rerun:#x}")]
    Desync {
        tick: u64,
        recorded: u64,
        rerun: u64,
    },
}

/// Snapshots looked at (newest first) when recovering.
const SNAPSHOTS_SCANNED: usize = 16;
/// Tick entries read per page while re-running.
const TICK_PAGE: usize = 256;

pub(crate) struct Recovered {
    pub sim: Sim,
    /// The last command entry consumed (applied or dead-lettered) by a committed tick.
    pub cmd_cursor: StreamId,
    pub replayed_ticks: u64,
}

/// The newest engine snapshot of the match that restores, if any.
pub async fn latest_snapshot<B: Bus>(
    bus: &B,
    keys: &Keys,
    rules: &Arc<Rules>,
    m: &events::MatchId,
    before_tick: Option<u64>,
) -> Result<Option<(Snapshot, Sim)>, events::BusError> {
    let snaps = bus.rev_range(&keys.snap(m), SNAPSHOTS_SCANNED).await?;
    for e in snaps {
        let Ok(env) = decode::<Snapshot>(&e.payload) else {
            continue;
        };
        let snap = env.body;
        if snap.owner != SnapshotOwner::Engine {
            continue;
        }
        if before_tick.is_some_and(|t| snap.tick > t) {
            continue;
        }
        match Sim::restore(rules.clone(), &snap.state) {
            Ok(sim) if sim.hash() == snap.hash => return Ok(Some((snap, sim))),
            Ok(_) => tracing::warn!(tick = snap.tick, "snapshot hash mismatch; skipped"),
            Err(e) => tracing::warn!(tick = snap.tick, error = %e, "snapshot unusable; skipped"),
        }
    }
    Ok(None)
}

/// The newest `cmd` entry a tick consumed: applied, or dead-lettered (it did not decode).
/// Resuming after the applied ones only would read the dead-lettered ones again and send
/// each to the DLQ once more per takeover.
fn last_consumed(tick: &TickCommitted) -> StreamId {
    tick.applied
        .iter()
        .map(|a| a.stream_id.as_str())
        .chain(tick.dead_lettered.iter().map(String::as_str))
        .filter_map(|id| id.parse::<StreamId>().ok())
        .max()
        .unwrap_or(StreamId::ZERO)
}

/// The match's initial state, built from its `MatchCreated` ([`scenario::initial`]). A
/// battle's (CPU work: up to 1,000 units stepped through their warm-up, on the blocking
/// pool) is also written to the uncapped `seek` stream under its tick's id, as a seek
/// state: a replay restores it instead of building it, like the engine's other seek
/// states. Written at most once (a second owner's is refused by its id); one not written
/// is only slower to seek, since every reader can build it too.
async fn initial<B: Bus>(
    bus: &B,
    keys: &Keys,
    rules: &Arc<Rules>,
    setup: &MatchCreated,
) -> Result<Sim, RecoverError> {
    let setup_error = |e: crate::sim::SetupError| RecoverError::Setup(e.to_string());
    if scenario::first_tick(setup) == 0 {
        return scenario::initial(rules.clone(), setup).map_err(setup_error);
    }
    let (rules, created) = (rules.clone(), setup.clone());
    let sim = tokio::task::spawn_blocking(move || scenario::initial(rules, &created))
        .await
        .map_err(|e| RecoverError::Setup(format!("building the initial state failed: {e}")))?
        .map_err(setup_error)?;
    let m = &setup.match_id;
    let tick = sim.next_tick().saturating_sub(1);
    let at = StreamId::for_tick(tick);
    let state = Snapshot {
        owner: SnapshotOwner::Engine,
        tick,
        hash: sim.hash(),
        log_id: at.to_string(),
        state: sim.snapshot(),
    };
    let bytes = match encode(&Envelope::new(m.clone(), Source::System, state)) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(match_id = %m, tick, error = %e, "initial seek state not written");
            return Ok(sim);
        }
    };
    match bus
        .append(&keys.seek(m), IdSpec::Explicit(at), &bytes, None)
        .await
    {
        Ok(_) => tracing::info!(match_id = %m, tick, "built the initial state; seek state written"),
        // A previous owner built and wrote it.
        Err(BusError::Fenced { .. }) => {}
        Err(e) => tracing::warn!(match_id = %m, tick, error = %e, "initial seek state not written"),
    }
    Ok(sim)
}

pub(crate) async fn recover<B: Bus>(
    bus: &B,
    keys: &Keys,
    rules: &Arc<Rules>,
    setup: &MatchCreated,
    cancel: &CancellationToken,
) -> Result<Option<Recovered>, RecoverError> {
    let m = &setup.match_id;
    let Some(found) = with_retry(cancel, || latest_snapshot(bus, keys, rules, m, None)).await?
    else {
        return Ok(None);
    };
    let mut sim = match found {
        Some((_, sim)) => sim,
        None => initial(bus, keys, rules, setup).await?,
    };
    let mut cmd_cursor = StreamId::ZERO;
    let mut replayed = 0;
    let tick_key = keys.tick(m);
    let cmd_key = keys.cmd(m);
    // Commands consumed up to the snapshot: the cursor is the newest id any tick up to it
    // applied. Ticks before the snapshot are scanned (cheap: no simulation) for it.
    if sim.next_tick() > 0 {
        let last = StreamId::for_tick(sim.next_tick() - 1);
        let mut from = StreamId::ZERO;
        loop {
            let Some(page) =
                with_retry(cancel, || bus.range(&tick_key, from, last, TICK_PAGE)).await?
            else {
                return Ok(None);
            };
            for e in &page {
                if let Ok(env) = decode::<TickCommitted>(&e.payload) {
                    cmd_cursor = cmd_cursor.max(last_consumed(&env.body));
                }
            }
            match page.last() {
                Some(e) if page.len() == TICK_PAGE => from = e.id.next(),
                _ => break,
            }
        }
    }
    loop {
        let from = StreamId::for_tick(sim.next_tick());
        let Some(page) = with_retry(cancel, || {
            bus.range(&tick_key, from, StreamId::MAX, TICK_PAGE)
        })
        .await?
        else {
            return Ok(None);
        };
        if page.is_empty() {
            break;
        }
        for e in &page {
            let Ok(env) = decode::<TickCommitted>(&e.payload) else {
                // Only this engine writes ticks; an undecodable one means the log is damaged.
                return Err(RecoverError::Setup(format!(
                    "tick entry {} does not decode",
                    e.id
                )));
            };
            let recorded = env.body;
            let ids: Vec<StreamId> = recorded
                .applied
                .iter()
                .filter_map(|a| a.stream_id.parse().ok())
                .collect();
            let mut by_id: BTreeMap<StreamId, Input> = BTreeMap::new();
            if let (Some(lo), Some(hi)) = (ids.iter().min(), ids.iter().max()) {
                let Some(cmds) =
                    with_retry(cancel, || bus.range(&cmd_key, *lo, *hi, usize::MAX / 2)).await?
                else {
                    return Ok(None);
                };
                for c in cmds {
                    if ids.contains(&c.id) {
                        if let Ok(envelope) = decode::<Command>(&c.payload) {
                            by_id.insert(
                                c.id,
                                Input {
                                    stream_id: c.id.to_string(),
                                    envelope,
                                },
                            );
                        }
                    }
                }
            }
            cmd_cursor = cmd_cursor.max(last_consumed(&recorded));
            let inputs: Vec<Input> = ids.iter().filter_map(|id| by_id.remove(id)).collect();
            let out = sim.step(&inputs);
            replayed += 1;
            if out.committed.hash != recorded.hash {
                metrics::counter!(metric::DESYNCS).increment(1);
                return Err(RecoverError::Desync {
                    tick: recorded.tick,
                    recorded: recorded.hash,
                    rerun: out.committed.hash,
                });
            }
        }
    }
    Ok(Some(Recovered {
        sim,
        cmd_cursor,
        replayed_ticks: replayed,
    }))
}
