//! The replay dispatcher: a session watching a recorded match plays its log back through
//! `crate::replay::Replay`, paced by the client's `replay` controls (play, pause, speed,
//! seek); everything else the client sends is answered by the shared arm (`common.rs`).

use std::time::Duration;

use axum::extract::ws::WebSocket;
use events::{Bus, MatchId};
use futures::stream::SplitStream;
use futures::StreamExt;
use tokio::time::Instant;

use super::common::{pinger, Phase};
use super::{Exit, Session};
use crate::hub::spectator_frame;
use crate::metrics as m;
use crate::replay::{Replay, ReplayError};
use crate::wire::{ClientMsg, ReplayInfo, ServerMsg};

/// How far playback may fall behind its pace (a slow re-run) before it stops trying to
/// catch up: it goes on from now rather than bursting the missed frames out.
const MAX_PACING_LAG: Duration = Duration::from_secs(1);

impl<B: Bus> Session<B> {
    /// Loads a recorded match and sends its welcome (and, on a resume, the keyframe at
    /// the client's tick); `Ok(None)` when it cannot be replayed (the client was told).
    pub(super) async fn start_replay(
        &mut self,
        mid: MatchId,
        last_tick: Option<u64>,
    ) -> Result<Option<Box<Replay>>, Exit> {
        let created = match self.gw.lobby.created(&mid).await {
            Ok(c) => c,
            Err(e) => {
                self.error("unknown_match", e.to_string())?;
                return Ok(None);
            }
        };
        let gw = self.gw.clone();
        let loaded = Replay::load(
            &gw.bus,
            &gw.keys,
            gw.rules.clone(),
            &mid,
            created.tick_hz,
            &gw.replay_loads,
        )
        .await;
        let mut replay = match loaded {
            Ok(r) => r,
            Err(e @ ReplayError::Busy) => {
                self.error("busy", e.to_string())?;
                return Ok(None);
            }
            Err(e) => {
                self.error("unavailable", e.to_string())?;
                return Ok(None);
            }
        };
        let Some(mut welcome) = self.map_welcome(&created).await? else {
            return Ok(None);
        };
        welcome.role = "spectator".into();
        welcome.player = None;
        welcome.replay = Some(ReplayInfo {
            last_tick: replay.last_tick,
            tick_hz: replay.tick_hz,
        });
        self.send(&ServerMsg::Welcome(Box::new(welcome)))?;
        if let Some(t) = last_tick {
            if !self.seek(&mut replay, t).await? {
                return Ok(None);
            }
        }
        self.send(&replay.state())?;
        metrics::counter!(m::SESSIONS_TOTAL, "role" => "replay").increment(1);
        Ok(Some(Box::new(replay)))
    }

    pub(super) async fn serve_replay(
        &mut self,
        stream: &mut SplitStream<WebSocket>,
        mut r: Box<Replay>,
    ) -> Exit {
        let mut shutdown = self.gw.shutdown.clone();
        let mut ping = pinger();
        let mut next_at = Instant::now();
        loop {
            let due = r.playing && !r.ended;
            let step = tokio::select! {
                msg = stream.next() => {
                    let was_playing = r.playing;
                    let res = match self.next_frame(msg, Phase::Replay).await {
                        Ok(Some(ClientMsg::Replay { action, speed, seek })) => {
                            self.control(&mut r, action.as_deref(), speed, seek).await
                        }
                        // Anything else the shared arm answered.
                        other => other.map(drop),
                    };
                    if r.playing && !was_playing {
                        next_at = Instant::now();
                    }
                    res
                }
                _ = tokio::time::sleep_until(next_at), if due => {
                    let res = self.replay_step(&mut r).await;
                    next_at += r.period();
                    let now = Instant::now();
                    if next_at + MAX_PACING_LAG < now {
                        next_at = now;
                    }
                    res
                }
                _ = ping.tick() => self.on_ping(),
                _ = shutdown.changed() => Err(self.shutting_down()),
            };
            if let Err(e) = step {
                return e;
            }
        }
    }

    async fn replay_step(&mut self, r: &mut Replay) -> Result<(), Exit> {
        match r.next().await {
            Ok(Some(frame)) => {
                self.send(&spectator_frame(&frame))?;
                if r.stats_due(frame.tick) {
                    self.send(&r.players_stats(frame.tick))?;
                }
                Ok(())
            }
            Ok(None) => {
                self.send(&r.state())?;
                match r.score().await {
                    Ok(score) => self.send(&score),
                    Err(e) => self.error("unavailable", e.to_string()),
                }
            }
            Err(e) => {
                let _ = self.error("unavailable", e.to_string());
                Err(Exit::Unavailable)
            }
        }
    }

    /// Applies a `replay` frame: play or pause, the speed, a seek; answers with the
    /// replay's state.
    async fn control(
        &mut self,
        r: &mut Replay,
        action: Option<&str>,
        speed: Option<f64>,
        seek: Option<u64>,
    ) -> Result<(), Exit> {
        match action {
            Some("play") => r.playing = !r.ended || seek.is_some(),
            Some("pause") => r.playing = false,
            Some(other) => {
                return self.error("malformed", format!("unknown replay action {other:?}"))
            }
            None => {}
        }
        if let Some(s) = speed {
            r.set_speed(s);
        }
        if let Some(t) = seek {
            if !self.seek(r, t).await? {
                return Ok(());
            }
        }
        self.send(&r.state())
    }

    /// Seeks to tick `t` and sends the keyframe there and the standings; false when the
    /// seek failed (the client was told).
    async fn seek(&self, r: &mut Replay, t: u64) -> Result<bool, Exit> {
        match r.seek(t).await {
            Ok(f) => {
                self.send(&spectator_frame(&f))?;
                self.send(&r.players_stats(f.tick))?;
                Ok(true)
            }
            Err(e) => {
                self.error("unavailable", e.to_string())?;
                Ok(false)
            }
        }
    }
}
