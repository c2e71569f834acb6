//! One match of the engine as a fold ([`::service::MatchFold`]): at each tick boundary
//! read the commands that arrived, step the simulation, commit the tick under its
//! explicit id with its view frame, then write, now and then, a snapshot and a seek
//! state, and the match's end.

use std::sync::Arc;
use std::time::Duration;

use ::service::{Flow, MatchFold, MatchIo, Start};
use events::commit::with_retry;
use events::dlq::dead_letter;
use events::group_commit::Settled;
use events::{
    decode, encode, encode_compact, Append, Bus, BusError, Envelope, IdSpec, MatchEnded,
    MatchEvent, PlayerId, Snapshot, SnapshotOwner, Source, StreamId, ViewFrame, ViewKind,
};
use tokio::time::Interval;

use super::{metric, recover, EngineConfig, Pace};
use crate::sim::{Input, Sim};

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

/// One match's simulation between ticks.
pub struct EngineMatch {
    config: Arc<EngineConfig>,
    sim: Sim,
    /// The last command entry consumed (applied or dead-lettered).
    cursor: StreamId,
    /// The tick schedule (unused when unpaced).
    interval: Interval,
    /// No frame of this instance's is in the view stream yet (after a takeover the view
    /// may lack this instance's frames): the next frame is a keyframe.
    force_keyframe: bool,
}

/// What one tick folds: the commands that arrived since the last one, and the ids of
/// those that did not decode (dead-lettered, named by the tick).
pub struct TickInputs {
    commands: Vec<Input>,
    dead_lettered: Vec<String>,
}

/// One stepped tick, until its commit and what follows it are written.
pub struct EngineStep {
    tick: u64,
    committed: Vec<u8>,
    view: Option<ViewFrame>,
    winner: Option<Option<PlayerId>>,
    snapshot_due: bool,
    seek_due: bool,
}

impl MatchFold for EngineMatch {
    type Config = EngineConfig;
    type Input = TickInputs;
    type Step = EngineStep;
    type Error = MatchLoopError;

    const STEP_TIME_METRIC: &'static str = metric::FRAME_TIME;
    const STEPS_METRIC: &'static str = metric::TICKS;

    async fn start<B: Bus>(
        config: &Arc<EngineConfig>,
        io: &MatchIo<B>,
    ) -> Result<Start<Self>, MatchLoopError> {
        let (m, setup) = (io.match_id(), &io.setup);
        let Some(recovered) =
            recover::recover(&io.bus, &io.keys, &io.rules, setup, &io.cancel).await?
        else {
            return Ok(Start::Cancelled);
        };
        let sim = recovered.sim;
        if recovered.replayed_ticks > 0 {
            tracing::info!(match_id = %m, ticks = recovered.replayed_ticks, next = sim.next_tick(), "recovered from the log");
        }
        if sim.winner().is_some() {
            return Ok(Start::Finished);
        }
        let hz = setup.tick_hz.clamp(10, 30);
        let speed = match config.pace {
            Pace::Speed(x) => u64::from(x.max(1)),
            _ => 1,
        };
        let mut interval =
            tokio::time::interval(Duration::from_micros(1_000_000 / (u64::from(hz) * speed)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        Ok(Start::Run(Self {
            config: config.clone(),
            sim,
            cursor: recovered.cmd_cursor,
            interval,
            force_keyframe: true,
        }))
    }

    async fn inputs<B: Bus>(
        &mut self,
        io: &MatchIo<B>,
    ) -> Result<Option<TickInputs>, MatchLoopError> {
        let (bus, keys, cancel, m) = (&io.bus, &io.keys, &io.cancel, io.match_id());
        match self.config.pace {
            Pace::RealTime | Pace::Speed(_) => {
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(None),
                    _ = self.interval.tick() => {}
                }
            }
            Pace::Unpaced => tokio::task::yield_now().await,
        }
        // Commands that arrived since the last tick, in stream order.
        let cmd_key = keys.cmd(m);
        let Some(entries) = with_retry(cancel, || {
            bus.read_after(
                &cmd_key,
                self.cursor,
                self.config.max_commands_per_tick,
                None,
            )
        })
        .await?
        else {
            return Ok(None);
        };
        let mut inputs = Vec::with_capacity(entries.len());
        // Dead-lettered before the tick that names them is committed: a crash in between
        // can dead-letter an entry twice (never lose it); a takeover after the commit
        // resumes past it.
        let mut dead_lettered = Vec::new();
        for e in entries {
            self.cursor = e.id;
            let why = match decode::<events::Command>(&e.payload) {
                Ok(env) if env.match_id == *m => {
                    inputs.push(Input {
                        stream_id: e.id.to_string(),
                        envelope: env,
                    });
                    continue;
                }
                Ok(env) => format!("command for match {} in the stream of {m}", env.match_id),
                Err(err) => err.to_string(),
            };
            dead_letter(bus, keys, &cmd_key, None, &e, &why).await?;
            dead_lettered.push(e.id.to_string());
        }
        Ok(Some(TickInputs {
            commands: inputs,
            dead_lettered,
        }))
    }

    fn step<B: Bus>(
        &mut self,
        io: &MatchIo<B>,
        inputs: TickInputs,
    ) -> Result<EngineStep, MatchLoopError> {
        let TickInputs {
            commands: inputs,
            dead_lettered,
        } = inputs;
        let mut out = self.sim.step(&inputs);
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
        let winner = self.sim.winner();
        let m = io.match_id().clone();
        let committed = encode(&Envelope::new(m, Source::System, out.committed))?;
        Ok(EngineStep {
            tick,
            committed,
            view: Some(out.view),
            winner,
            snapshot_due: tick > 0 && tick.is_multiple_of(self.config.snapshot_every.max(1)),
            seek_due: tick > 0 && tick.is_multiple_of(events::keys::SEEK_STATE_EVERY),
        })
    }

    fn commit<B: Bus>(
        &mut self,
        io: &MatchIo<B>,
        step: &mut EngineStep,
    ) -> Result<Vec<Append>, MatchLoopError> {
        let (m, tick) = (io.match_id(), step.tick);
        let keyframe =
            self.force_keyframe || tick.is_multiple_of(self.config.keyframe_every.max(1));
        let delta = step.view.take();
        let frame = match delta {
            Some(delta) if !keyframe => delta,
            _ => self.sim.keyframe(),
        };
        if frame.kind == ViewKind::Keyframe {
            metrics::gauge!(metric::ENTITIES, "match" => m.to_string())
                .set(frame.entities.len() as f64);
        }
        let frame = Envelope::new(m.clone(), Source::System, frame);
        let view = if self.config.compress_views {
            encode_compact(&frame)?
        } else {
            encode(&frame)?
        };
        // The tick under its explicit id, then its view frame, written only with it (a
        // frame a previous owner already wrote for this tick is kept).
        let at = |key: String, payload, maxlen| Append {
            stream: key,
            id: IdSpec::Explicit(StreamId::for_tick(tick)),
            payload,
            maxlen,
        };
        Ok(vec![
            at(io.keys.tick(m), std::mem::take(&mut step.committed), None),
            at(io.keys.view(m), view, Some(self.config.view_maxlen)),
        ])
    }

    fn written(&mut self, settled: &Settled) {
        // A view frame of ours is in the stream: deltas may follow it.
        if settled.complete {
            self.force_keyframe = false;
        }
    }

    fn settle_before_publish(&self, step: &EngineStep) -> bool {
        // Snapshots and the match's end follow a commit known to be written.
        step.snapshot_due || step.seek_due || step.winner.is_some()
    }

    async fn publish<B: Bus>(
        &mut self,
        io: &MatchIo<B>,
        step: EngineStep,
    ) -> Result<Flow, MatchLoopError> {
        let (bus, keys, m, tick) = (&io.bus, &io.keys, io.match_id(), step.tick);
        if step.snapshot_due || step.seek_due {
            let snap = Snapshot {
                owner: SnapshotOwner::Engine,
                tick,
                hash: self.sim.hash(),
                log_id: StreamId::for_tick(tick).to_string(),
                state: self.sim.snapshot(),
            };
            let bytes = encode(&Envelope::new(m.clone(), Source::System, snap))?;
            if step.snapshot_due {
                let snap_maxlen = Some(self.config.snap_maxlen);
                if let Err(e) = bus
                    .append(&keys.snap(m), IdSpec::Auto, &bytes, snap_maxlen)
                    .await
                {
                    tracing::warn!(match_id = %m, error = %e, "snapshot not written");
                }
            }
            if step.seek_due {
                // Under the tick's id: a state already written (by a previous owner) is
                // refused, so there is one per tick.
                let at = IdSpec::Explicit(StreamId::for_tick(tick));
                match bus.append(&keys.seek(m), at, &bytes, None).await {
                    Ok(_) | Err(BusError::Fenced { .. }) => {}
                    Err(e) => {
                        tracing::warn!(match_id = %m, error = %e, "seek state not written")
                    }
                }
            }
        }
        let Some(winner) = step.winner else {
            return Ok(Flow::Continue);
        };
        let ended = MatchEvent::MatchEnded(MatchEnded {
            match_id: m.clone(),
            tick,
            winner,
        });
        let bytes = encode(&Envelope::new(m.clone(), Source::System, ended))?;
        let matches = keys.matches();
        with_retry(&io.cancel, || {
            bus.append(&matches, IdSpec::Auto, &bytes, None)
        })
        .await?;
        Ok(Flow::Finished)
    }
}
