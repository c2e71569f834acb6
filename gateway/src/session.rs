//! One WebSocket session: handshake (`hello`, then `join` or `spectate`), then a loop that
//! forwards the match hub's frames for this audience, turns the client's commands into
//! `Envelope<Command>`s stamped with the token's player, and answers pings. A bad frame
//! gets an error reply; only a version mismatch, a slow client, an idle client or
//! shutdown end the session.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use events::{encode, Bus, BusError, Envelope, IdSpec, MatchId, Source, UnitId};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;
use uuid::Uuid;

use crate::hub::{Audience, Hub, HubMsg};
use crate::limits::{
    CLIENT_IDLE_TIMEOUT, COMMANDS_PER_SECOND, COMMAND_BURST, HANDSHAKE_TIMEOUT,
    MAX_DELAYED_MESSAGES, MAX_SPECTATOR_DELAY_S, MAX_TELEMETRY_SAMPLES, PROTOCOL_VERSION,
    REMEMBERED_COMMANDS, SEND_QUEUE_CAPACITY, SERVER_PING_INTERVAL,
};
use crate::metrics as m;
use crate::replay::{Replay, ReplayError};
use crate::wire::{ClientMsg, ReplayInfo, ServerMsg, WireCommand, CLIENT_MSG_TYPES};
use crate::{convert, Gateway};

/// Longest a session waits for room in its send queue before reading the client's next
/// frame. Replies to the client's own frames wait for the writer (so a burst of frames is
/// answered in full, the reading pausing meanwhile) instead of overflowing the queue; a
/// client that does not read its replies for this long is dropped as a slow client.
pub const REPLY_WAIT: Duration = Duration::from_secs(5);

/// Most replies one client frame gets (a replay seek: the frame and the replay state).
const REPLIES_PER_FRAME: usize = 2;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    ClientGone,
    Slow,
    Shutdown,
    Timeout,
    Refused,
}

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

/// Parses a client frame, telling an unknown frame type from a malformed frame.
pub fn parse(text: &str) -> Result<ClientMsg, (&'static str, String)> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ("malformed", format!("not JSON: {e}")))?;
    let t = v
        .get("t")
        .and_then(|t| t.as_str())
        .ok_or(("malformed", "frame has no string \"t\" field".to_string()))?;
    if !CLIENT_MSG_TYPES.contains(&t) {
        return Err(("unknown_type", format!("unknown frame type {t:?}")));
    }
    let t = t.to_string();
    serde_json::from_value(v).map_err(|e| ("malformed", format!("bad {t} frame: {e}")))
}

/// What a handshake ended in.
enum Attached {
    Live(Joined),
    Replay(Box<Replay>),
}

struct Joined {
    hub: Arc<Hub>,
    rx: broadcast::Receiver<Arc<HubMsg>>,
    audience: Audience,
    covered_tick: Option<u64>,
    /// A delayed spectator's held-back messages.
    delay: Option<Delay>,
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

struct Session<B: Bus> {
    gw: Arc<Gateway<B>>,
    out: mpsc::Sender<Message>,
    said_hello: bool,
    bucket: TokenBucket,
    sent: VecDeque<(Uuid, u64)>,
    next_ping: u64,
    ping_out: Option<(u64, Instant)>,
    last_heard: Instant,
}

/// Runs one upgraded WebSocket to its end. The permit counts it against `MAX_SESSIONS`.
pub async fn handle<B: Bus>(gw: Arc<Gateway<B>>, socket: WebSocket, permit: OwnedSemaphorePermit) {
    let _permit = permit;
    let _done = gw.done.clone();
    metrics::gauge!(m::SESSIONS).increment(1.0);
    let (sink, mut stream) = socket.split();
    let (out, out_rx) = mpsc::channel(SEND_QUEUE_CAPACITY);
    let writer = tokio::spawn(write_loop(sink, out_rx));
    let mut s = Session {
        gw,
        out,
        said_hello: false,
        bucket: TokenBucket::new(COMMANDS_PER_SECOND, COMMAND_BURST),
        sent: VecDeque::new(),
        next_ping: 1,
        ping_out: None,
        last_heard: Instant::now(),
    };
    let exit = match s.handshake(&mut stream).await {
        Ok(Attached::Live(joined)) => s.serve(&mut stream, joined).await,
        Ok(Attached::Replay(replay)) => s.serve_replay(&mut stream, replay).await,
        Err(e) => e,
    };
    tracing::debug!(?exit, "session ended");
    drop(s);
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_secs(1), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    metrics::gauge!(m::SESSIONS).decrement(1.0);
}

async fn write_loop(mut sink: SplitSink<WebSocket, Message>, mut rx: mpsc::Receiver<Message>) {
    while let Some(msg) = rx.recv().await {
        if sink.send(msg).await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

impl<B: Bus> Session<B> {
    fn send_text(&self, text: Utf8Bytes) -> Result<(), Exit> {
        match self.out.try_send(Message::Text(text)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!(m::SLOW_CLIENTS, "why" => "send_queue_full").increment(1);
                tracing::info!("dropping a slow client: send queue full");
                Err(Exit::Slow)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Exit::ClientGone),
        }
    }

    fn send(&self, msg: &ServerMsg) -> Result<(), Exit> {
        self.send_text(msg.to_json().into())
    }

    /// Waits (up to [`REPLY_WAIT`]) until the send queue has room for the reply to one
    /// client frame. Called before each frame is handled, so a client's burst makes the
    /// reading wait for the writer rather than fill the queue; hub frames keep using
    /// `try_send` and still drop a client that does not read.
    async fn room_for_reply(&self) -> Result<(), Exit> {
        match tokio::time::timeout(REPLY_WAIT, self.out.reserve_many(REPLIES_PER_FRAME)).await {
            // Dropping the permits frees the slots again; this task is the queue's only
            // sender, so the replies that follow find them free.
            Ok(Ok(_permits)) => Ok(()),
            Ok(Err(_)) => Err(Exit::ClientGone),
            Err(_) => {
                metrics::counter!(m::SLOW_CLIENTS, "why" => "send_queue_full").increment(1);
                tracing::info!("dropping a slow client: replies not read");
                Err(Exit::Slow)
            }
        }
    }

    fn error(&self, code: &'static str, message: impl Into<String>) -> Result<(), Exit> {
        metrics::counter!(m::ERRORS, "code" => code).increment(1);
        self.send(&ServerMsg::error(code, message))
    }

    fn reject(&self, seq: u64, code: &'static str, message: impl Into<String>) -> Result<(), Exit> {
        metrics::counter!(m::COMMANDS, "result" => code).increment(1);
        self.send(&ServerMsg::Rejected {
            seq: Some(seq),
            code: code.to_string(),
            message: message.into(),
        })
    }

    /// The next text frame from the client; `Ok(None)` for frames that need no answer.
    fn text_of(
        &mut self,
        msg: Option<Result<Message, axum::Error>>,
    ) -> Result<Option<String>, Exit> {
        self.last_heard = Instant::now();
        match msg {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => Err(Exit::ClientGone),
            Some(Ok(Message::Text(t))) => Ok(Some(t.as_str().to_string())),
            Some(Ok(Message::Binary(_))) => {
                self.error("binary_not_supported", "frames are JSON text")?;
                Ok(None)
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(None),
        }
    }

    async fn handshake(&mut self, stream: &mut SplitStream<WebSocket>) -> Result<Attached, Exit> {
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let mut shutdown = self.gw.shutdown.clone();
        loop {
            let msg = tokio::select! {
                m = stream.next() => m,
                _ = tokio::time::sleep_until(deadline) => {
                    let _ = self.error("handshake_timeout", "send hello and join or spectate sooner");
                    return Err(Exit::Timeout);
                }
                _ = shutdown.changed() => {
                    let _ = self.error("shutting_down", "the gateway is shutting down");
                    return Err(Exit::Shutdown);
                }
            };
            let Some(text) = self.text_of(msg)? else {
                continue;
            };
            let parsed = match parse(&text) {
                Ok(p) => p,
                Err((code, message)) => {
                    self.error(code, message)?;
                    continue;
                }
            };
            match parsed {
                ClientMsg::Hello { protocol } if protocol == PROTOCOL_VERSION => {
                    self.said_hello = true;
                    self.send(&ServerMsg::HelloOk {
                        protocol: PROTOCOL_VERSION,
                    })?;
                }
                ClientMsg::Hello { protocol } => {
                    metrics::counter!(m::ERRORS, "code" => "protocol_mismatch").increment(1);
                    self.send(&ServerMsg::Error {
                        code: "protocol_mismatch".into(),
                        message: format!(
                            "this gateway speaks protocol {PROTOCOL_VERSION}, the client {protocol}; reload the page"
                        ),
                        expected: Some(PROTOCOL_VERSION),
                    })?;
                    return Err(Exit::Refused);
                }
                ClientMsg::Join { .. } | ClientMsg::Spectate { .. } if !self.said_hello => {
                    self.error("hello_required", "send hello first")?;
                }
                ClientMsg::Join { token, last_tick } => {
                    let grant = match self.gw.lobby.signer().verify(&token) {
                        Ok(g) => g,
                        Err(e) => {
                            self.error("bad_token", e.to_string())?;
                            continue;
                        }
                    };
                    if let Some(j) = self
                        .attach(
                            grant.match_id,
                            Audience::Player(grant.player),
                            last_tick,
                            None,
                        )
                        .await?
                    {
                        return Ok(Attached::Live(j));
                    }
                }
                ClientMsg::Spectate {
                    match_id,
                    last_tick,
                    delay_s,
                } => {
                    let Ok(mid) = MatchId::new(match_id) else {
                        self.error("unknown_match", "not a match id")?;
                        continue;
                    };
                    let delay_s = delay_s.unwrap_or(0);
                    if delay_s > MAX_SPECTATOR_DELAY_S {
                        self.error(
                            "bad_delay",
                            format!("delay_s must lie within 0-{MAX_SPECTATOR_DELAY_S}"),
                        )?;
                        continue;
                    }
                    let ended = self
                        .gw
                        .lobby
                        .get(&mid)
                        .await
                        .is_ok_and(|m| m.status == "ended");
                    if ended {
                        if let Some(r) = self.start_replay(mid, last_tick).await? {
                            return Ok(Attached::Replay(r));
                        }
                        continue;
                    }
                    let delay = (delay_s > 0).then(|| Duration::from_secs(u64::from(delay_s)));
                    if let Some(j) = self
                        .attach(mid, Audience::Spectator, last_tick, delay)
                        .await?
                    {
                        return Ok(Attached::Live(j));
                    }
                }
                ClientMsg::Ping { id } => self.send(&ServerMsg::Pong { id })?,
                ClientMsg::Pong { id } => self.pong(id),
                ClientMsg::Telemetry {
                    selection_latency_ms,
                    frame_ms,
                } => telemetry(&selection_latency_ms, &frame_ms),
                ClientMsg::Cmd { seq, .. } => {
                    self.reject(seq, "not_joined", "join a match first")?;
                }
                ClientMsg::Replay { .. } => {
                    self.error("not_joined", "spectate a recorded match first")?;
                }
            }
        }
    }

    /// Subscribes to the match and sends welcome plus the starting frames;
    /// `Ok(None)` when the match cannot be joined (the client was told why).
    async fn attach(
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
                let (c, r) = (created.clone(), gw.rules.clone());
                let built =
                    tokio::task::spawn_blocking(move || crate::mapview::welcome(&c, &r)).await;
                let rules = gw.rules.clone();
                match built {
                    Ok(Ok(w)) => gw
                        .hubs
                        .subscribe(&mid, move || crate::mapview::hub(created, w, &rules)),
                    Ok(Err(e)) => {
                        self.error(
                            "unavailable",
                            format!("the match's map cannot be built: {e}"),
                        )?;
                        return Ok(None);
                    }
                    Err(e) => {
                        self.error("internal", e.to_string())?;
                        return Ok(None);
                    }
                }
            }
        };
        if let Audience::Player(p) = audience {
            if !hub.is_human(p) {
                self.error("not_a_player", format!("{p} is not a human slot"))?;
                return Ok(None);
            }
        }
        if !hub.wait_ready(Duration::from_secs(10)).await {
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
        let mut j = Joined {
            hub,
            rx,
            audience,
            covered_tick: start.covered_tick,
            delay: delay.map(|by| Delay {
                by,
                held: VecDeque::new(),
            }),
        };
        let over = j.hub.winner().map(|w| {
            ServerMsg::GameOver {
                winner: w.map(|p| p.0),
            }
            .to_json()
            .into()
        });
        for text in start.frames.into_iter().chain(start.ledger).chain(over) {
            self.deliver(&mut j, text)?;
        }
        let role = match audience {
            Audience::Player(_) => "player",
            Audience::Spectator => "spectator",
        };
        metrics::counter!(m::SESSIONS_TOTAL, "role" => role).increment(1);
        tracing::debug!(match_id = %mid, ?audience, resumed = start.resumed, "session joined");
        Ok(Some(j))
    }

    fn pong(&mut self, id: u64) {
        if let Some((sent_id, at)) = self.ping_out {
            if sent_id == id {
                metrics::histogram!(m::RTT_SECONDS).record(at.elapsed().as_secs_f64());
                self.ping_out = None;
            }
        }
    }

    async fn serve(&mut self, stream: &mut SplitStream<WebSocket>, mut j: Joined) -> Exit {
        let mut shutdown = self.gw.shutdown.clone();
        let mut ping = tokio::time::interval(SERVER_PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = j.delay.as_ref().and_then(Delay::next_due);
            let step = tokio::select! {
                msg = stream.next() => self.on_client(msg, &j).await,
                got = j.rx.recv() => self.on_hub(got, &mut j),
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    self.release_delayed(&mut j)
                }
                _ = ping.tick() => self.on_ping(),
                _ = shutdown.changed() => {
                    let _ = self.error("shutting_down", "the gateway is shutting down");
                    Err(Exit::Shutdown)
                }
            };
            if let Err(e) = step {
                return e;
            }
        }
    }

    fn on_ping(&mut self) -> Result<(), Exit> {
        if self.last_heard.elapsed() > CLIENT_IDLE_TIMEOUT {
            let _ = self.error("idle_timeout", "no frames from the client");
            return Err(Exit::Timeout);
        }
        let id = self.next_ping;
        self.next_ping += 1;
        self.ping_out = Some((id, Instant::now()));
        self.send(&ServerMsg::Ping { id })
    }

    /// Sends a delayed spectator's messages whose time has come.
    fn release_delayed(&mut self, j: &mut Joined) -> Result<(), Exit> {
        let Some(d) = j.delay.as_mut() else {
            return Ok(());
        };
        let now = Instant::now();
        while d.held.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, text)) = d.held.pop_front() {
                self.send_text(text)?;
            }
        }
        Ok(())
    }

    /// Sends `text` now, or holds it back for a delayed spectator.
    fn deliver(&self, j: &mut Joined, text: Utf8Bytes) -> Result<(), Exit> {
        match j.delay.as_mut() {
            Some(d) => d.hold(text),
            None => self.send_text(text),
        }
    }

    fn on_hub(&mut self, got: Result<Arc<HubMsg>, RecvError>, j: &mut Joined) -> Result<(), Exit> {
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
                return Err(Exit::Shutdown);
            }
        };
        match &*msg {
            HubMsg::Frame(f) => {
                if j.covered_tick.is_some_and(|c| f.tick <= c) {
                    return Ok(());
                }
                if let Some(text) = f.for_audience(j.audience) {
                    self.deliver(j, text.clone())?;
                }
            }
            HubMsg::Ledger { player, text } => {
                if j.audience == Audience::Player(*player) {
                    self.send_text(text.clone())?;
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
                    metrics::counter!(m::COMMANDS, "result" => "rejected_by_sim").increment(1);
                    self.send(&ServerMsg::Rejected {
                        seq,
                        code: code.to_string(),
                        message: message.clone(),
                    })?;
                }
            }
            HubMsg::Public(text) => self.deliver(j, text.clone())?,
        }
        Ok(())
    }

    async fn on_client(
        &mut self,
        msg: Option<Result<Message, axum::Error>>,
        j: &Joined,
    ) -> Result<(), Exit> {
        self.room_for_reply().await?;
        let Some(text) = self.text_of(msg)? else {
            return Ok(());
        };
        let parsed = match parse(&text) {
            Ok(p) => p,
            Err((code, message)) => return self.error(code, message),
        };
        match parsed {
            ClientMsg::Hello { .. } | ClientMsg::Join { .. } | ClientMsg::Spectate { .. } => {
                self.error("already_joined", "this connection is already in a match")
            }
            ClientMsg::Ping { id } => self.send(&ServerMsg::Pong { id }),
            ClientMsg::Pong { id } => {
                self.pong(id);
                Ok(())
            }
            ClientMsg::Telemetry {
                selection_latency_ms,
                frame_ms,
            } => {
                telemetry(&selection_latency_ms, &frame_ms);
                Ok(())
            }
            ClientMsg::Cmd { seq, cmd } => self.command(seq, &cmd, j).await,
            ClientMsg::Replay { .. } => self.error("not_a_replay", "this match is live"),
        }
    }

    /// Loads a recorded match and sends its welcome (and, on a resume, the keyframe at
    /// the client's tick); `Ok(None)` when it cannot be replayed (the client was told).
    async fn start_replay(
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
        let (c, r) = (created.clone(), gw.rules.clone());
        let mut welcome =
            match tokio::task::spawn_blocking(move || crate::mapview::welcome(&c, &r)).await {
                Ok(Ok(w)) => w,
                Ok(Err(e)) => {
                    self.error(
                        "unavailable",
                        format!("the match's map cannot be built: {e}"),
                    )?;
                    return Ok(None);
                }
                Err(e) => {
                    self.error("internal", e.to_string())?;
                    return Ok(None);
                }
            };
        welcome.role = "spectator".into();
        welcome.player = None;
        welcome.replay = Some(ReplayInfo {
            last_tick: replay.last_tick,
            tick_hz: replay.tick_hz,
        });
        self.send(&ServerMsg::Welcome(Box::new(welcome)))?;
        if let Some(t) = last_tick {
            match replay.seek(t).await {
                Ok(f) => self.send(&crate::hub::spectator_frame(&f))?,
                Err(e) => {
                    self.error("unavailable", e.to_string())?;
                    return Ok(None);
                }
            }
        }
        self.send(&replay.state())?;
        metrics::counter!(m::SESSIONS_TOTAL, "role" => "replay").increment(1);
        Ok(Some(Box::new(replay)))
    }

    async fn serve_replay(
        &mut self,
        stream: &mut SplitStream<WebSocket>,
        mut r: Box<Replay>,
    ) -> Exit {
        let mut shutdown = self.gw.shutdown.clone();
        let mut ping = tokio::time::interval(SERVER_PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_at = Instant::now();
        loop {
            let due = r.playing && !r.ended;
            let step = tokio::select! {
                msg = stream.next() => {
                    let was_playing = r.playing;
                    let res = self.on_replay_client(msg, &mut r).await;
                    if r.playing && !was_playing {
                        next_at = Instant::now();
                    }
                    res
                }
                _ = tokio::time::sleep_until(next_at), if due => {
                    let res = self.replay_step(&mut r).await;
                    next_at += r.period();
                    let now = Instant::now();
                    if next_at + Duration::from_secs(1) < now {
                        // Fell behind (slow re-run): do not burst to catch up.
                        next_at = now;
                    }
                    res
                }
                _ = ping.tick() => self.on_ping(),
                _ = shutdown.changed() => {
                    let _ = self.error("shutting_down", "the gateway is shutting down");
                    Err(Exit::Shutdown)
                }
            };
            if let Err(e) = step {
                return e;
            }
        }
    }

    async fn replay_step(&mut self, r: &mut Replay) -> Result<(), Exit> {
        match r.next().await {
            Ok(Some(frame)) => self.send(&crate::hub::spectator_frame(&frame)),
            Ok(None) => self.send(&r.state()),
            Err(e) => {
                let _ = self.error("unavailable", e.to_string());
                Err(Exit::Refused)
            }
        }
    }

    async fn on_replay_client(
        &mut self,
        msg: Option<Result<Message, axum::Error>>,
        r: &mut Replay,
    ) -> Result<(), Exit> {
        self.room_for_reply().await?;
        let Some(text) = self.text_of(msg)? else {
            return Ok(());
        };
        let parsed = match parse(&text) {
            Ok(p) => p,
            Err((code, message)) => return self.error(code, message),
        };
        match parsed {
            ClientMsg::Replay {
                action,
                speed,
                seek,
            } => {
                match action.as_deref() {
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
                    match r.seek(t).await {
                        Ok(f) => self.send(&crate::hub::spectator_frame(&f))?,
                        Err(e) => return self.error("unavailable", e.to_string()),
                    }
                }
                self.send(&r.state())
            }
            ClientMsg::Hello { .. } | ClientMsg::Join { .. } | ClientMsg::Spectate { .. } => {
                self.error("already_joined", "this connection is already in a match")
            }
            ClientMsg::Ping { id } => self.send(&ServerMsg::Pong { id }),
            ClientMsg::Pong { id } => {
                self.pong(id);
                Ok(())
            }
            ClientMsg::Telemetry {
                selection_latency_ms,
                frame_ms,
            } => {
                telemetry(&selection_latency_ms, &frame_ms);
                Ok(())
            }
            ClientMsg::Cmd { seq, .. } => {
                self.reject(seq, "read_only", "a replay cannot be commanded")
            }
        }
    }

    async fn command(&mut self, seq: u64, cmd: &WireCommand, j: &Joined) -> Result<(), Exit> {
        let Audience::Player(player) = j.audience else {
            return self.reject(seq, "read_only", "spectators cannot command");
        };
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
        // The engine refuses foreign units too; refusing here keeps them off the log.
        for &u in cmd.units() {
            if let Some(owner) = j.hub.owner_of(UnitId(u)) {
                if owner != player {
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
        if let Err(e) = append_command(&self.gw.bus, &stream, &bytes).await {
            return self.reject(seq, "unavailable", e.to_string());
        }
        metrics::counter!(m::COMMANDS, "result" => "accepted").increment(1);
        self.sent.push_back((env.id, seq));
        while self.sent.len() > REMEMBERED_COMMANDS {
            self.sent.pop_front();
        }
        self.send(&ServerMsg::Ack {
            seq,
            id: env.id.to_string(),
        })
    }
}

/// Wait before the one retry of a command append that failed on an unreachable bus (the
/// first call after Redis restarted fails while the connection is re-established).
pub const APPEND_RETRY_AFTER: Duration = Duration::from_millis(100);

/// Newest entries of the command stream searched for the command before it is retried.
const RETRY_LOOKBACK: usize = 256;

/// Appends a player's command; on a transient failure retries once, unless the command
/// reached the stream after all (the failure was the answer, not the write): its bytes,
/// unique by the envelope's id, are looked for among the newest entries first, so a
/// command is never appended twice.
async fn append_command<B: Bus>(bus: &B, stream: &str, bytes: &[u8]) -> Result<(), BusError> {
    let first = match bus.append(stream, IdSpec::Auto, bytes, None).await {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    metrics::counter!(m::BUS_ERRORS).increment(1);
    if !first.is_transient() {
        return Err(first);
    }
    tokio::time::sleep(APPEND_RETRY_AFTER).await;
    let retried = async {
        let newest = bus.rev_range(stream, RETRY_LOOKBACK).await?;
        if newest.iter().any(|e| e.payload == bytes) {
            return Ok(());
        }
        bus.append(stream, IdSpec::Auto, bytes, None)
            .await
            .map(|_| ())
    };
    let r = retried.await;
    if r.is_err() {
        metrics::counter!(m::BUS_ERRORS).increment(1);
    }
    r
}

fn telemetry(selection: &[f64], frames: &[f64]) {
    let ok = |v: &&f64| v.is_finite() && **v >= 0.0 && **v < 60_000.0;
    for v in selection.iter().take(MAX_TELEMETRY_SAMPLES).filter(ok) {
        metrics::histogram!(m::SELECTION_LATENCY_MS).record(*v);
    }
    for v in frames.iter().take(MAX_TELEMETRY_SAMPLES).filter(ok) {
        metrics::histogram!(m::CLIENT_FRAME_MS).record(*v);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use events::{Append, Entry, MemoryBus, PendingEntry, StreamId};

    use super::*;

    /// How the next appends fail.
    #[derive(Clone, Copy)]
    enum Fail {
        /// The write does not happen (the connection was down).
        Before,
        /// The write happens, the answer is lost.
        After,
    }

    /// A `MemoryBus` whose next `failures` appends fail as `how`.
    #[derive(Clone)]
    struct FlakyBus {
        inner: MemoryBus,
        failures: Arc<AtomicUsize>,
        how: Fail,
    }

    impl FlakyBus {
        fn new(failures: usize, how: Fail) -> Self {
            Self {
                inner: MemoryBus::new(),
                failures: Arc::new(AtomicUsize::new(failures)),
                how,
            }
        }
    }

    fn down() -> BusError {
        BusError::Unavailable("connection reset".into())
    }

    impl Bus for FlakyBus {
        async fn append(
            &self,
            stream: &str,
            id: IdSpec,
            payload: &[u8],
            maxlen: Option<usize>,
        ) -> Result<StreamId, BusError> {
            let failing = self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            match (failing, self.how) {
                (false, _) => self.inner.append(stream, id, payload, maxlen).await,
                (true, Fail::Before) => Err(down()),
                (true, Fail::After) => {
                    self.inner.append(stream, id, payload, maxlen).await?;
                    Err(down())
                }
            }
        }
        async fn append_batch(&self, items: Vec<Append>) -> Result<Vec<StreamId>, BusError> {
            self.inner.append_batch(items).await
        }
        async fn range(
            &self,
            stream: &str,
            from: StreamId,
            to: StreamId,
            count: usize,
        ) -> Result<Vec<Entry>, BusError> {
            self.inner.range(stream, from, to, count).await
        }
        async fn rev_range(&self, stream: &str, count: usize) -> Result<Vec<Entry>, BusError> {
            self.inner.rev_range(stream, count).await
        }
        async fn read_after(
            &self,
            stream: &str,
            after: StreamId,
            count: usize,
            block: Option<Duration>,
        ) -> Result<Vec<Entry>, BusError> {
            self.inner.read_after(stream, after, count, block).await
        }
        async fn create_group(
            &self,
            stream: &str,
            group: &str,
            start: StreamId,
        ) -> Result<(), BusError> {
            self.inner.create_group(stream, group, start).await
        }
        async fn read_group(
            &self,
            stream: &str,
            group: &str,
            consumer: &str,
            count: usize,
            block: Option<Duration>,
        ) -> Result<Vec<Entry>, BusError> {
            self.inner
                .read_group(stream, group, consumer, count, block)
                .await
        }
        async fn ack(&self, stream: &str, group: &str, ids: &[StreamId]) -> Result<u64, BusError> {
            self.inner.ack(stream, group, ids).await
        }
        async fn pending(
            &self,
            stream: &str,
            group: &str,
            count: usize,
        ) -> Result<Vec<PendingEntry>, BusError> {
            self.inner.pending(stream, group, count).await
        }
        async fn claim_idle(
            &self,
            stream: &str,
            group: &str,
            consumer: &str,
            min_idle: Duration,
            count: usize,
        ) -> Result<Vec<Entry>, BusError> {
            self.inner
                .claim_idle(stream, group, consumer, min_idle, count)
                .await
        }
        async fn touch(
            &self,
            stream: &str,
            group: &str,
            consumer: &str,
            ids: &[StreamId],
        ) -> Result<Vec<StreamId>, BusError> {
            self.inner.touch(stream, group, consumer, ids).await
        }
        async fn release(
            &self,
            stream: &str,
            group: &str,
            consumer: &str,
            ids: &[StreamId],
        ) -> Result<(), BusError> {
            self.inner.release(stream, group, consumer, ids).await
        }
        async fn trim(&self, stream: &str, maxlen: usize) -> Result<u64, BusError> {
            self.inner.trim(stream, maxlen).await
        }
        async fn len(&self, stream: &str) -> Result<u64, BusError> {
            self.inner.len(stream).await
        }
        async fn delete(&self, streams: &[String]) -> Result<(), BusError> {
            self.inner.delete(streams).await
        }
        async fn keys(&self, prefix: &str) -> Result<Vec<String>, BusError> {
            self.inner.keys(prefix).await
        }
    }

    const CMD: &str = "t:{m:x}:cmd";

    async fn stored(bus: &FlakyBus) -> Vec<Vec<u8>> {
        let all = bus
            .rev_range(CMD, 100)
            .await
            .expect("reading the test stream");
        all.into_iter().map(|e| e.payload).collect()
    }

    #[tokio::test]
    async fn a_command_whose_append_failed_once_is_appended_by_the_retry() {
        let bus = FlakyBus::new(1, Fail::Before);
        bus.inner
            .append(CMD, IdSpec::Auto, b"earlier", None)
            .await
            .unwrap();
        append_command(&bus, CMD, b"command").await.unwrap();
        assert_eq!(
            stored(&bus).await,
            vec![b"command".to_vec(), b"earlier".to_vec()]
        );
    }

    #[tokio::test]
    async fn a_command_written_before_its_answer_was_lost_is_not_appended_twice() {
        let bus = FlakyBus::new(1, Fail::After);
        append_command(&bus, CMD, b"command").await.unwrap();
        assert_eq!(stored(&bus).await, vec![b"command".to_vec()]);
    }

    #[tokio::test]
    async fn a_bus_still_down_at_the_retry_is_reported() {
        let bus = FlakyBus::new(2, Fail::Before);
        let r = append_command(&bus, CMD, b"command").await;
        assert!(matches!(r, Err(BusError::Unavailable(_))), "{r:?}");
        assert!(stored(&bus).await.is_empty());
    }
}
