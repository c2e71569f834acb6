//! The handshake dispatcher: from the socket's upgrade until `join` (a player's token) or
//! `spectate` (a live match, maybe delayed, or a recorded one) succeeds, within
//! `HANDSHAKE_TIMEOUT`. `hello` and everything not particular to joining is answered by
//! the shared arm (`common.rs`).

use std::time::Duration;

use axum::extract::ws::WebSocket;
use events::{Bus, MatchId};
use futures::stream::SplitStream;
use futures::StreamExt;
use tokio::time::Instant;

use super::common::Phase;
use super::live::Joined;
use super::{Exit, Session};
use crate::hub::Audience;
use crate::limits::{HANDSHAKE_TIMEOUT, MAX_SPECTATOR_DELAY_S};
use crate::replay::Replay;
use crate::wire::ClientMsg;

/// What a handshake ended in.
pub(super) enum Attached {
    Live(Joined),
    Replay(Box<Replay>),
}

impl<B: Bus> Session<B> {
    pub(super) async fn handshake(
        &mut self,
        stream: &mut SplitStream<WebSocket>,
    ) -> Result<Attached, Exit> {
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let mut shutdown = self.gw.shutdown.clone();
        loop {
            let msg = tokio::select! {
                m = stream.next() => m,
                _ = tokio::time::sleep_until(deadline) => {
                    let _ = self.error("handshake_timeout", "send hello and join or spectate sooner");
                    return Err(Exit::Timeout);
                }
                _ = shutdown.changed() => return Err(self.shutting_down()),
            };
            let attached = match self.next_frame(msg, Phase::Handshake).await? {
                Some(ClientMsg::Join { token, last_tick }) => self.join(&token, last_tick).await?,
                Some(ClientMsg::Spectate {
                    match_id,
                    last_tick,
                    delay_s,
                }) => self.spectate(match_id, last_tick, delay_s).await?,
                // Anything else the shared arm answered.
                _ => None,
            };
            if let Some(a) = attached {
                return Ok(a);
            }
        }
    }

    /// `join`: the player the token names, in its match; `Ok(None)` when refused (the
    /// client was told why).
    async fn join(
        &mut self,
        token: &str,
        last_tick: Option<u64>,
    ) -> Result<Option<Attached>, Exit> {
        let grant = match self.gw.lobby.signer().verify(token) {
            Ok(g) => g,
            Err(e) => {
                self.error("bad_token", e.to_string())?;
                return Ok(None);
            }
        };
        let joined = self
            .attach(
                grant.match_id,
                Audience::Player(grant.player),
                last_tick,
                None,
            )
            .await?;
        Ok(joined.map(Attached::Live))
    }

    /// `spectate`: a live match (maybe `delay_s` behind) or, once it ended, its replay;
    /// `Ok(None)` when refused (the client was told why).
    async fn spectate(
        &mut self,
        match_id: String,
        last_tick: Option<u64>,
        delay_s: Option<f64>,
    ) -> Result<Option<Attached>, Exit> {
        let Ok(mid) = MatchId::new(match_id) else {
            self.error("unknown_match", "not a match id")?;
            return Ok(None);
        };
        let delay_s = delay_s.unwrap_or(0.0);
        if !(0.0..=f64::from(MAX_SPECTATOR_DELAY_S)).contains(&delay_s) {
            self.error(
                "bad_delay",
                format!("delay_s must lie within 0-{MAX_SPECTATOR_DELAY_S}"),
            )?;
            return Ok(None);
        }
        let ended = self
            .gw
            .lobby
            .get(&mid)
            .await
            .is_ok_and(|m| m.status == "ended");
        if ended {
            let replay = self.start_replay(mid, last_tick).await?;
            return Ok(replay.map(Attached::Replay));
        }
        let delay = (delay_s > 0.0).then(|| Duration::from_secs_f64(delay_s));
        let joined = self
            .attach(mid, Audience::Spectator, last_tick, delay)
            .await?;
        Ok(joined.map(Attached::Live))
    }
}
