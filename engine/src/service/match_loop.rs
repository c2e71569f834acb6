//! One match's tick loop: read commands, step the simulation, commit the tick under its
//! explicit id, then write the view frame and, now and then, a snapshot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use events::commit::{with_retry, Commit};
use events::group_commit::{GroupCommitter, MatchCommits, Settled};

use events::dlq::dead_letter;
use events::{
    decode, encode, Bus, BusError, Envelope, IdSpec, Keys, MatchCreated, MatchEnded, MatchEvent,
    PlayerId, Snapshot, SnapshotOwner, Source, StreamId, ViewKind,
};
use tokio_util::sync::CancellationToken;

use super::{metric, recover, EngineConfig, Pace, Progress};
use crate::rules::Rules;
use crate::sim::{Input, Sim};

/// How a match loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchExit {
    /// The match was decided and its end recorded.
    Finished { tick: u64, winner: Option<PlayerId> },
    /// Another instance committed this tick first: this one is stale and stopped.
    Fenced,
    /// Shutdown, or the lease was lost.
    Cancelled,
}

/// Why a match loop gave up (its lease is left to go idle for another attempt).
#[derive(Debug, thiserror::Error)]
pub enum MatchLoopError {
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error(transparent)]
    Recover(#[from] recover::RecoverError),
    #[error("encode: {0}")]
    Encode(#[from] events::EncodeError),
}

/// Runs one match to its end and says how, for its lease.
// The service's shared parts (bus, keys, rules, config, progress, group committer).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<B: Bus>(
    bus: B,
    keys: Keys,
    rules: Arc<Rules>,
    config: Arc<EngineConfig>,
    setup: MatchCreated,
    progress: Arc<Progress>,
    committer: GroupCommitter,
    cancel: CancellationToken,
) -> ::service::MatchOutcome {
    use ::service::MatchOutcome;
    let commits = MatchCommits::new(committer, cancel.clone());
    match run_match(bus, keys, rules, config, setup, progress, commits, cancel).await {
        Ok(MatchExit::Finished { .. }) => MatchOutcome::Finished,
        Ok(MatchExit::Fenced) => MatchOutcome::Fenced,
        Ok(MatchExit::Cancelled) => MatchOutcome::Cancelled,
        Err(e) => MatchOutcome::Failed(e.to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_match<B: Bus>(
    bus: B,
    keys: Keys,
    rules: Arc<Rules>,
    config: Arc<EngineConfig>,
    setup: MatchCreated,
    progress: Arc<Progress>,
    mut commits: MatchCommits,
    cancel: CancellationToken,
) -> Result<MatchExit, MatchLoopError> {
    let m = setup.match_id.clone();
    let Some(recovered) = recover::recover(&bus, &keys, &rules, &setup, &cancel).await? else {
        return Ok(MatchExit::Cancelled);
    };
    let mut sim: Sim = recovered.sim;
    let mut cursor = recovered.cmd_cursor;
    if recovered.replayed_ticks > 0 {
        tracing::info!(match_id = %m, ticks = recovered.replayed_ticks, next = sim.next_tick(), "recovered from the log");
    }
    if let Some(done) = sim.winner() {
        return Ok(MatchExit::Finished {
            tick: sim.next_tick().saturating_sub(1),
            winner: done,
        });
    }
    let (cmd_key, tick_key, view_key, snap_key) =
        (keys.cmd(&m), keys.tick(&m), keys.view(&m), keys.snap(&m));
    let seek_key = keys.seek(&m);
    let hz = setup.tick_hz.clamp(10, 30);
    let speed = match config.pace {
        Pace::Speed(x) => u64::from(x.max(1)),
        _ => 1,
    };
    let mut interval =
        tokio::time::interval(Duration::from_micros(1_000_000 / (u64::from(hz) * speed)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    // After a takeover the view may lack this instance's frames: start with a keyframe.
    let mut force_keyframe = true;
    loop {
        match config.pace {
            Pace::RealTime | Pace::Speed(_) => {
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(MatchExit::Cancelled),
                    _ = interval.tick() => {}
                }
            }
            Pace::Unpaced => {
                if cancel.is_cancelled() {
                    return Ok(MatchExit::Cancelled);
                }
                tokio::task::yield_now().await;
            }
        }
        // Commands that arrived since the last tick, in stream order.
        let Some(entries) = with_retry(&cancel, || {
            bus.read_after(&cmd_key, cursor, config.max_commands_per_tick, None)
        })
        .await?
        else {
            return Ok(MatchExit::Cancelled);
        };
        let mut inputs = Vec::with_capacity(entries.len());
        // Dead-lettered before the tick that names them is committed: a crash in between
        // can dead-letter an entry twice (never lose it); a takeover after the commit
        // resumes past it.
        let mut dead_lettered = Vec::new();
        for e in entries {
            cursor = e.id;
            let why = match decode::<events::Command>(&e.payload) {
                Ok(env) if env.match_id == m => {
                    inputs.push(Input {
                        stream_id: e.id.to_string(),
                        envelope: env,
                    });
                    continue;
                }
                Ok(env) => format!("command for match {} in the stream of {m}", env.match_id),
                Err(err) => err.to_string(),
            };
            dead_letter(&bus, &keys, &cmd_key, None, &e, &why).await?;
            dead_lettered.push(e.id.to_string());
        }
        let started = Instant::now();
        let mut out = sim.step(&inputs);
        out.committed.dead_lettered = dead_lettered;
        let tick = out.committed.tick;
        let now = events::now_ms();
        let applied: std::collections::BTreeSet<&str> = out
            .committed
            .applied
            .iter()
            .map(|a| a.stream_id.as_str())
            .collect();
        for i in &inputs {
            if applied.contains(i.stream_id.as_str()) {
                metrics::histogram!(metric::COMMAND_LATENCY)
                    .record(now.saturating_sub(i.envelope.sent_ms) as f64);
            }
        }
        let winner = sim.winner();
        let committed = encode(&Envelope::new(m.clone(), Source::System, out.committed))?;
        // The previous tick's commit went to the instance's group commit while this tick
        // stepped; a refused one stops the match before anything of this tick is written.
        if let Some(exit) = settled(commits.settle().await?, &mut force_keyframe, &progress) {
            return Ok(exit);
        }
        let keyframe = force_keyframe || tick.is_multiple_of(config.keyframe_every.max(1));
        let frame = if keyframe { sim.keyframe() } else { out.view };
        if frame.kind == ViewKind::Keyframe {
            metrics::gauge!(metric::ENTITIES, "match" => m.to_string())
                .set(frame.entities.len() as f64);
        }
        let view = encode(&Envelope::new(m.clone(), Source::System, frame))?;
        // The tick under its explicit id, then its view frame, written only with it (a
        // frame a previous owner already wrote for this tick is kept).
        let at = |key: &str, payload, maxlen| events::Append {
            stream: key.to_string(),
            id: IdSpec::Explicit(StreamId::for_tick(tick)),
            payload,
            maxlen,
        };
        commits.submit(
            started,
            vec![
                at(&tick_key, committed, None),
                at(&view_key, view, Some(config.view_maxlen)),
            ],
        );
        let snapshot_due = tick > 0 && tick.is_multiple_of(config.snapshot_every.max(1));
        let seek_due = tick > 0 && tick.is_multiple_of(events::keys::SEEK_STATE_EVERY);
        if snapshot_due || seek_due || winner.is_some() {
            // Snapshots and the match's end follow a commit known to be written.
            if let Some(exit) = settled(commits.settle().await?, &mut force_keyframe, &progress) {
                return Ok(exit);
            }
        }
        if snapshot_due || seek_due {
            let snap = Snapshot {
                owner: SnapshotOwner::Engine,
                tick,
                hash: sim.hash(),
                log_id: StreamId::for_tick(tick).to_string(),
                state: sim.snapshot(),
            };
            let bytes = encode(&Envelope::new(m.clone(), Source::System, snap))?;
            if snapshot_due {
                if let Err(e) = bus
                    .append(&snap_key, IdSpec::Auto, &bytes, Some(config.snap_maxlen))
                    .await
                {
                    tracing::warn!(match_id = %m, error = %e, "snapshot not written");
                }
            }
            if seek_due {
                // Under the tick's id: a state already written (by a previous owner) is
                // refused, so there is one per tick.
                match bus
                    .append(
                        &seek_key,
                        IdSpec::Explicit(StreamId::for_tick(tick)),
                        &bytes,
                        None,
                    )
                    .await
                {
                    Ok(_) | Err(BusError::Fenced { .. }) => {}
                    Err(e) => {
                        tracing::warn!(match_id = %m, error = %e, "seek state not written")
                    }
                }
            }
        }
        if let Some(winner) = winner {
            let ended = MatchEvent::MatchEnded(MatchEnded {
                match_id: m.clone(),
                tick,
                winner,
            });
            let bytes = encode(&Envelope::new(m.clone(), Source::System, ended))?;
            let matches = keys.matches();
            with_retry(&cancel, || bus.append(&matches, IdSpec::Auto, &bytes, None)).await?;
            return Ok(MatchExit::Finished { tick, winner });
        }
    }
}

/// Accounts for a settled commit; the match's exit when it was not written.
fn settled(
    done: Option<Settled>,
    force_keyframe: &mut bool,
    progress: &Progress,
) -> Option<MatchExit> {
    let done = done?;
    match done.commit {
        Commit::Cancelled => Some(MatchExit::Cancelled),
        Commit::Fenced => Some(MatchExit::Fenced),
        Commit::Written => {
            // A view frame of ours is in the stream: deltas may follow it.
            if done.complete {
                *force_keyframe = false;
            }
            metrics::histogram!(metric::FRAME_TIME).record(done.elapsed.as_secs_f64() * 1000.0);
            metrics::counter!(metric::TICKS).increment(1);
            progress.advanced();
            None
        }
    }
}
