//! One match's tick loop: read commands, step the simulation, commit the tick under its
//! explicit id, then write the view frame and, now and then, a snapshot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use events::commit::{commit_explicit, with_retry, Commit};

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
pub(crate) async fn run<B: Bus>(
    bus: B,
    keys: Keys,
    rules: Arc<Rules>,
    config: Arc<EngineConfig>,
    setup: MatchCreated,
    progress: Arc<Progress>,
    cancel: CancellationToken,
) -> ::service::MatchOutcome {
    use ::service::MatchOutcome;
    match run_match(bus, keys, rules, config, setup, progress, cancel).await {
        Ok(MatchExit::Finished { .. }) => MatchOutcome::Finished,
        Ok(MatchExit::Fenced) => MatchOutcome::Fenced,
        Ok(MatchExit::Cancelled) => MatchOutcome::Cancelled,
        Err(e) => MatchOutcome::Failed(e.to_string()),
    }
}

async fn run_match<B: Bus>(
    bus: B,
    keys: Keys,
    rules: Arc<Rules>,
    config: Arc<EngineConfig>,
    setup: MatchCreated,
    progress: Arc<Progress>,
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
        match commit_explicit(
            &bus,
            &cancel,
            &tick_key,
            StreamId::for_tick(tick),
            &committed,
        )
        .await?
        {
            Commit::Cancelled => return Ok(MatchExit::Cancelled),
            Commit::Fenced => return Ok(MatchExit::Fenced),
            Commit::Written => {}
        }
        let keyframe = force_keyframe || tick.is_multiple_of(config.keyframe_every.max(1));
        let frame = if keyframe { sim.keyframe() } else { out.view };
        if frame.kind == ViewKind::Keyframe {
            metrics::gauge!(metric::ENTITIES, "match" => m.to_string())
                .set(frame.entities.len() as f64);
        }
        let view = encode(&Envelope::new(m.clone(), Source::System, frame))?;
        // The view is a projection: a frame already written for this tick (by a previous
        // owner) is fine to keep.
        match bus
            .append(
                &view_key,
                IdSpec::Explicit(StreamId::for_tick(tick)),
                &view,
                Some(config.view_maxlen),
            )
            .await
        {
            Ok(_) => force_keyframe = false,
            Err(BusError::Fenced { .. }) => {}
            Err(e) if e.is_transient() => {
                tracing::warn!(match_id = %m, error = %e, "view frame dropped");
                force_keyframe = true;
            }
            Err(e) => return Err(e.into()),
        }
        let snapshot_due = tick > 0 && tick.is_multiple_of(config.snapshot_every.max(1));
        let seek_due = tick > 0 && tick.is_multiple_of(events::keys::SEEK_STATE_EVERY);
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
        metrics::histogram!(metric::FRAME_TIME).record(started.elapsed().as_secs_f64() * 1000.0);
        metrics::counter!(metric::TICKS).increment(1);
        progress.advanced();
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
