//! The live dispatcher: a session in a live match forwards its hub's frames for its
//! audience (holding them back for a delayed spectator, catching up after a resume) and
//! turns a player's `cmd`s into commands on the match's `cmd` stream, stamped with the
//! token's player and rate-limited; everything else the client sends is answered by the
//! shared arm (`common.rs`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Utf8Bytes, WebSocket};
use events::commit::append_retrying_once;
use events::{encode, Bus, BusError, Envelope, MatchId, Source, UnitId};
use futures::stream::SplitStream;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;

use super::common::{pinger, Phase};
use super::{Exit, Session, REPLY_WAIT};
use crate::convert;
use crate::hub::{Audience, Hub, HubMsg};
use crate::limits::{
    COMMANDS_PER_SECOND, HUB_READY_WAIT, MAX_DELAYED_MESSAGES, PENDING_PLACEMENTS,
    REMEMBERED_COMMANDS, SEND_QUEUE_CAPACITY,
};
use crate::metrics as m;
use crate::wire::{ClientMsg, ServerMsg, WireCommand};

/// A token bucket: `rate` tokens per second, at most `burst` stored.
#[derive(Debug)]
pub struct TokenBucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            rate: f64::from(rate),
            last: Instant::now(),
        }
    }

    /// Takes one token; false when the bucket is empty.
    pub fn take(&mut self) -> bool {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A session attached to a live match.
pub(super) struct Joined {
    hub: Arc<Hub>,
    rx: broadcast::Receiver<Arc<HubMsg>>,
    audience: Audience,
    covered_tick: Option<u64>,
    /// A delayed spectator's held-back messages.
    delay: Option<Delay>,
    /// Counts this player session for the abandoned-match check while it lives.
    _seated: Option<crate::lobby::Seated>,
}

/// Spectating a live match `by` behind: every message is held until `by` after it arrived.
struct Delay {
    by: Duration,
    held: VecDeque<(Instant, Utf8Bytes)>,
}

impl Delay {
    fn hold(&mut self, text: Utf8Bytes) -> Result<(), Exit> {
        if self.held.len() >= MAX_DELAYED_MESSAGES {
            metrics::counter!(m::SLOW_CLIENTS, "why" => "delay_full").increment(1);
            return Err(Exit::Slow);
        }
        self.held.push_back((Instant::now() + self.by, text));
        Ok(())
    }

    fn next_due(&self) -> Option<Instant> {
        self.held.front().map(|(at, _)| *at)
    }
}

impl<B: Bus> Session<B> {
    /// Subscribes to the match and sends welcome plus the starting frames;
    /// `Ok(None)` when the match cannot be joined (the client was told why).
    pub(super) async fn attach(
        &mut self,
        mid: MatchId,
        audience: Audience,
        last_tick: Option<u64>,
        delay: Option<Duration>,
    ) -> Result<Option<Joined>, Exit> {
        let created = match self.gw.lobby.created(&mid).await {
            Ok(c) => c,
            Err(crate::lobby::LobbyError::NotFound(_)) => {
                self.error("unknown_match", format!("no match {mid}"))?;
                return Ok(None);
            }
            Err(e) => {
                self.error("unavailable", e.to_string())?;
                return Ok(None);
            }
        };
        let gw = self.gw.clone();
        // Map generation runs outside the registry lock, and only when this instance has
        // no hub for the match yet.
        let (hub, rx) = match gw.hubs.subscribe_existing(&mid) {
            Some(found) => found,
            None => {
                let Some(w) = self.map_welcome(&created).await? else {
                    return Ok(None);
                };
                let rules = gw.rules.clone();
                gw.hubs
                    .subscribe(&mid, move || crate::mapview::hub(created, w, &rules))
            }
        };
        if let Audience::Player(p) = audience {
            if !hub.is_human(p) {
                self.error("not_a_player", format!("{p} is not a human slot"))?;
                return Ok(None);
            }
        }
        if !hub.wait_ready(HUB_READY_WAIT).await {
            self.error(
                "unavailable",
                "the match's streams cannot be read right now",
            )?;
            return Ok(None);
        }
        let mut welcome = (*hub.welcome).clone();
        match audience {
            Audience::Player(p) => {
                welcome.role = "player".into();
                welcome.player = Some(p.0);
            }
            Audience::Spectator => {
                welcome.role = "spectator".into();
                welcome.player = None;
            }
        }
        self.send(&ServerMsg::Welcome(Box::new(welcome)))?;
        let start = hub.start(audience, last_tick);
        let seated = match audience {
            Audience::Player(p) => Some(self.gw.lobby.seat(&mid, p)),
            Audience::Spectator => None,
        };
        let mut j = Joined {
            hub,
            rx,
            audience,
            covered_tick: start.covered_tick,
            delay: delay.map(|by| Delay {
                by,
                held: VecDeque::new(),
            }),
            _seated: seated,
        };
        let over = j.hub.winner().map(|w| {
            ServerMsg::GameOver {
                winner: w.map(|p| p.0),
            }
            .to_json()
            .into()
        });
        // A resume may start with up to `RESUME_WINDOW_TICKS` frames, more than the send
        // queue holds: they wait for room, and so does what the hub broadcast meanwhile.
        let extra = start.extra;
        for text in start
            .frames
            .into_iter()
            .chain(start.ledger)
            .chain(over)
            .chain(extra)
        {
            self.deliver(&mut j, text, true).await?;
        }
        self.catch_up(&mut j).await?;
        let role = match audience {
            Audience::Player(_) => "player",
            Audience::Spectator => "spectator",
        };
        metrics::counter!(m::SESSIONS_TOTAL, "role" => role).increment(1);
        tracing::debug!(match_id = %mid, ?audience, resumed = start.resumed, "session joined");
        Ok(Some(j))
    }

    /// Forwards what the hub broadcast while the starting frames went out, waiting for room
    /// in the send queue, until the queue has drained with nothing more waiting: from then
    /// on the session keeps up like any other.
    async fn catch_up(&mut self, j: &mut Joined) -> Result<(), Exit> {
        loop {
            loop {
                let got = match j.rx.try_recv() {
                    Ok(msg) => Ok(msg),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                    Err(TryRecvError::Closed) => Err(RecvError::Closed),
                };
                self.on_hub(got, j, true).await?;
            }
            match tokio::time::timeout(REPLY_WAIT, self.out.reserve_many(SEND_QUEUE_CAPACITY)).await
            {
                Ok(Ok(_drained)) => {}
                Ok(Err(_)) => return Err(Exit::ClientGone),
                Err(_) => {
                    metrics::counter!(m::SLOW_CLIENTS, "why" => "send_queue_full").increment(1);
                    tracing::info!("dropping a slow client: catch-up frames not read");
                    return Err(Exit::Slow);
                }
            }
            if j.rx.is_empty() {
                return Ok(());
            }
        }
    }

    pub(super) async fn serve(
        &mut self,
        stream: &mut SplitStream<WebSocket>,
        mut j: Joined,
    ) -> Exit {
        let mut shutdown = self.gw.shutdown.clone();
        let mut ping = pinger();
        loop {
            let due = j.delay.as_ref().and_then(Delay::next_due);
            let step = tokio::select! {
                msg = stream.next() => match self.next_frame(msg, Phase::Live).await {
                    Ok(Some(ClientMsg::Cmd { seq, cmd })) => self.command(seq, &cmd, &j).await,
                    // Anything else the shared arm answered.
                    other => other.map(drop),
                },
                got = j.rx.recv() => self.on_hub(got, &mut j, false).await,
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    self.release_delayed(&mut j).await
                }
                _ = ping.tick() => self.on_ping(),
                _ = shutdown.changed() => Err(self.shutting_down()),
            };
            if let Err(e) = step {
                return e;
            }
        }
    }

    /// Sends a delayed spectator's messages whose time has come (a resume's catch-up comes
    /// due at once: it waits for room in the send queue).
    async fn release_delayed(&mut self, j: &mut Joined) -> Result<(), Exit> {
        let Some(d) = j.delay.as_mut() else {
            return Ok(());
        };
        let now = Instant::now();
        while d.held.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, text)) = d.held.pop_front() {
                self.send_waiting(text).await?;
            }
        }
        Ok(())
    }

    /// Sends `text` now (waiting for room when `wait`), or holds it back for a delayed
    /// spectator.
    async fn deliver(&self, j: &mut Joined, text: Utf8Bytes, wait: bool) -> Result<(), Exit> {
        match j.delay.as_mut() {
            Some(d) => d.hold(text),
            None => self.push(text, wait).await,
        }
    }

    /// Forwards one hub message; `wait` waits for room in the send queue (catching up)
    /// instead of dropping a client whose queue is full.
    async fn on_hub(
        &mut self,
        got: Result<Arc<HubMsg>, RecvError>,
        j: &mut Joined,
        wait: bool,
    ) -> Result<(), Exit> {
        let msg = match got {
            Ok(m) => m,
            Err(RecvError::Lagged(n)) => {
                metrics::counter!(m::SLOW_CLIENTS, "why" => "lagged").increment(1);
                tracing::info!(missed = n, "dropping a slow client: fell behind the match");
                let _ = self.error(
                    "too_slow",
                    "the connection fell behind; reconnect to resume",
                );
                return Err(Exit::Slow);
            }
            Err(RecvError::Closed) => {
                let _ = self.error("unavailable", "the match stream stopped");
                return Err(Exit::Unavailable);
            }
        };
        match &*msg {
            HubMsg::Frame(f) => {
                if j.covered_tick.is_some_and(|c| f.tick <= c) {
                    return Ok(());
                }
                if let Some(text) = f.for_audience(j.audience) {
                    self.deliver(j, text.clone(), wait).await?;
                }
            }
            HubMsg::Ledger { player, text } => {
                if j.audience == Audience::Player(*player) {
                    self.push(text.clone(), wait).await?;
                }
            }
            HubMsg::Rejected {
                player,
                command,
                code,
                message,
            } => {
                if j.audience == Audience::Player(*player) {
                    let seq = self
                        .sent
                        .iter()
                        .find(|(id, _)| id == command)
                        .map(|(_, s)| *s);
                    self.placing.retain(|(id, _, _)| id != command);
                    self.rejected_by_sim(seq, code, message, wait).await?;
                }
            }
            HubMsg::Placement {
                player,
                building,
                failed,
            } => {
                if j.audience == Audience::Player(*player) {
                    let seq = self
                        .placing
                        .iter()
                        .position(|(_, _, b)| b == building)
                        .and_then(|i| self.placing.remove(i))
                        .map(|(_, seq, _)| seq);
                    if let Some(message) = failed {
                        self.rejected_by_sim(seq, "bad_placement", message, wait)
                            .await?;
                    }
                }
            }
            HubMsg::Public(text) => self.deliver(j, text.clone(), wait).await?,
            HubMsg::Spectators(text) => {
                if j.audience == Audience::Spectator {
                    self.deliver(j, text.clone(), wait).await?;
                }
            }
        }
        Ok(())
    }

    /// Tells the player the engine or the economy rejected its command `seq` (when still
    /// remembered).
    async fn rejected_by_sim(
        &self,
        seq: Option<u64>,
        code: &str,
        message: &str,
        wait: bool,
    ) -> Result<(), Exit> {
        metrics::counter!(m::COMMANDS, "result" => "rejected_by_sim").increment(1);
        let text = ServerMsg::Rejected {
            seq,
            code: code.to_string(),
            message: message.to_string(),
        }
        .to_json();
        self.push(text.into(), wait).await
    }

    async fn command(&mut self, seq: u64, cmd: &WireCommand, j: &Joined) -> Result<(), Exit> {
        let Audience::Player(player) = j.audience else {
            return self.reject(seq, "read_only", "spectators cannot command");
        };
        if j.hub.winner().is_some() {
            return self.reject(seq, "match_over", "the match is over");
        }
        if !self.bucket.take() {
            return self.reject(
                seq,
                "rate_limited",
                format!("at most {COMMANDS_PER_SECOND} commands per second"),
            );
        }
        let command = match convert::command(cmd) {
            Ok(c) => c,
            Err(e) => return self.reject(seq, e.code, e.message),
        };
        // The engine refuses foreign units too; refusing the ones the player sees here keeps
        // them off the log. One it does not see goes to the engine like an id that does not
        // exist, and gets the same answer (`no_such_unit`): nothing tells what the fog hides.
        for &u in cmd.units() {
            if let Some((owner, seen)) = j.hub.owner_and_sight(UnitId(u), player) {
                if owner != player && seen {
                    return self.reject(seq, "not_your_unit", format!("unit #{u} is not yours"));
                }
            }
        }
        let env = Envelope::new(j.hub.match_id.clone(), Source::Player(player), command);
        let bytes = match encode(&env) {
            Ok(b) => b,
            Err(e) => return self.reject(seq, "internal", e.to_string()),
        };
        let stream = self.gw.keys.cmd(&j.hub.match_id);
        let counted = |_: &BusError| metrics::counter!(m::BUS_ERRORS).increment(1);
        if let Err(e) = append_retrying_once(&self.gw.bus, &stream, &bytes, counted).await {
            return self.reject(seq, "unavailable", e.to_string());
        }
        metrics::counter!(m::COMMANDS, "result" => "accepted").increment(1);
        self.sent.push_back((env.id, seq));
        while self.sent.len() > REMEMBERED_COMMANDS {
            self.sent.pop_front();
        }
        if let events::Command::PlaceBuilding(p) = &env.body {
            self.placing.push_back((env.id, seq, p.building));
            while self.placing.len() > PENDING_PLACEMENTS {
                self.placing.pop_front();
            }
        }
        self.send(&ServerMsg::Ack {
            seq,
            id: env.id.to_string(),
        })
    }
}
