//! One WebSocket session: handshake (`hello`, then `join` or `spectate`), then a loop that
//! forwards the match hub's frames for this audience, turns the client's commands into
//! `Envelope<Command>`s stamped with the token's player, and answers pings. A bad frame
//! gets an error reply; only a version mismatch, a slow client, an idle client, a frame
//! over the size limit or shutdown end the session, with a close code saying which.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket};
use events::{encode, BuildingKind, Bus, BusError, Envelope, IdSpec, MatchId, Source, UnitId};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;
use uuid::Uuid;

use crate::hub::{Audience, Hub, HubMsg};
use crate::limits::{
    CLIENT_IDLE_TIMEOUT, COMMANDS_PER_SECOND, COMMAND_BURST, HANDSHAKE_TIMEOUT,
    MAX_DELAYED_MESSAGES, MAX_SPECTATOR_DELAY_S, MAX_TELEMETRY_SAMPLES, PENDING_PLACEMENTS,
    PROTOCOL_VERSION, REMEMBERED_COMMANDS, SEND_QUEUE_CAPACITY, SERVER_PING_INTERVAL,
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

/// Longest the writer of an ended session may take to send what is still queued and the
/// close frame (a slow client's close is sent right after the frame being written, the
/// queued ones are dropped); then the socket is dropped without one.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How a session's writer ends: the close frame to send, and whether the frames still
/// queued go first (they do, except for a slow client, who would not read them).
struct Closing {
    frame: Option<CloseFrame>,
    flush: bool,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// The client closed the socket or it broke: nothing left to say.
    ClientGone,
    /// A slow client (send queue full, fell behind the match, delay buffer full).
    Slow,
    Shutdown,
    /// `handshake_timeout` or `idle_timeout`.
    Timeout,
    /// `protocol_mismatch`.
    Refused,
    /// A frame over `MAX_FRAME_BYTES`.
    TooBig,
    /// A WebSocket protocol violation.
    BadWebSocket,
    /// A text frame that is not UTF-8.
    BadText,
    /// What the session serves stopped or broke (match stream, replay).
    Unavailable,
}

impl Exit {
    /// The close frame that ends the socket, if the gateway still sends one.
    fn close(self) -> Option<(u16, &'static str)> {
        Some(match self {
            Exit::ClientGone => return None,
            Exit::Slow => (close_code::POLICY, "too slow"),
            Exit::Timeout => (close_code::POLICY, "timed out"),
            Exit::Shutdown => (close_code::AWAY, "shutting down"),
            Exit::Refused => (close_code::PROTOCOL, "protocol mismatch"),
            Exit::TooBig => (close_code::SIZE, "frame too big"),
            Exit::BadWebSocket => (close_code::PROTOCOL, "websocket protocol error"),
            Exit::BadText => (close_code::INVALID, "text frame is not UTF-8"),
            Exit::Unavailable => (close_code::ERROR, "unavailable"),
        })
    }

    /// How a read error of the socket ends the session.
    fn from_read_error(e: axum::Error) -> Exit {
        match e.into_inner().downcast::<tungstenite::Error>().map(|e| *e) {
            Ok(tungstenite::Error::Capacity(_)) => Exit::TooBig,
            Ok(tungstenite::Error::Protocol(_)) => Exit::BadWebSocket,
            Ok(tungstenite::Error::Utf8(_)) => Exit::BadText,
            _ => Exit::ClientGone,
        }
    }
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

/// A client frame that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame {
    /// `malformed` or `unknown_type`.
    pub code: &'static str,
    pub message: String,
    /// The `seq` of a `cmd` frame whose command is malformed, when it can be read: the
    /// answer is then a `rejected` for that `seq`.
    pub seq: Option<u64>,
}

impl BadFrame {
    fn new(code: &'static str, message: String) -> Self {
        Self {
            code,
            message,
            seq: None,
        }
    }
}

/// Parses a client frame, telling an unknown frame type from a malformed frame.
pub fn parse(text: &str) -> Result<ClientMsg, BadFrame> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| BadFrame::new("malformed", format!("not JSON: {e}")))?;
    let t = v
        .get("t")
        .and_then(|t| t.as_str())
        .ok_or_else(|| BadFrame::new("malformed", "frame has no string \"t\" field".to_string()))?;
    if !CLIENT_MSG_TYPES.contains(&t) {
        return Err(BadFrame::new(
            "unknown_type",
            format!("unknown frame type {t:?}"),
        ));
    }
    let t = t.to_string();
    let seq = (t == "cmd")
        .then(|| v.get("seq").and_then(serde_json::Value::as_u64))
        .flatten();
    serde_json::from_value(v).map_err(|e| BadFrame {
        code: "malformed",
        message: format!("bad {t} frame: {e}"),
        seq,
    })
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

struct Session<B: Bus> {
    gw: Arc<Gateway<B>>,
    out: mpsc::Sender<Message>,
    said_hello: bool,
    bucket: TokenBucket,
    sent: VecDeque<(Uuid, u64)>,
    /// Acknowledged `place` commands waiting for the engine's answer, oldest first.
    placing: VecDeque<(Uuid, u64, BuildingKind)>,
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
    let (close_tx, close_rx) = tokio::sync::oneshot::channel();
    let writer = tokio::spawn(write_loop(sink, out_rx, close_rx));
    let mut s = Session {
        gw,
        out,
        said_hello: false,
        bucket: TokenBucket::new(COMMANDS_PER_SECOND, COMMAND_BURST),
        sent: VecDeque::new(),
        placing: VecDeque::new(),
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
    let _ = close_tx.send(Closing {
        frame: exit.close().map(|(code, reason)| CloseFrame {
            code,
            reason: reason.into(),
        }),
        flush: exit != Exit::Slow,
    });
    drop(s);
    let mut writer = writer;
    if tokio::time::timeout(CLOSE_GRACE, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    metrics::gauge!(m::SESSIONS).decrement(1.0);
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Message>,
    mut closing: tokio::sync::oneshot::Receiver<Closing>,
) {
    loop {
        let msg = tokio::select! {
            biased;
            c = &mut closing => {
                let Ok(c) = c else { break };
                if c.flush {
                    while let Ok(msg) = rx.try_recv() {
                        if sink.send(msg).await.is_err() {
                            return;
                        }
                    }
                }
                if let Some(frame) = c.frame {
                    let _ = sink.send(Message::Close(Some(frame))).await;
                }
                break;
            }
            m = rx.recv() => m,
        };
        let Some(msg) = msg else { break };
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

    /// Sends `text`, waiting (up to [`REPLY_WAIT`]) for room in the send queue: for the
    /// frames a session starts or resumes with, which may outnumber the queue.
    async fn send_waiting(&self, text: Utf8Bytes) -> Result<(), Exit> {
        match tokio::time::timeout(REPLY_WAIT, self.out.send(Message::Text(text))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Exit::ClientGone),
            Err(_) => {
                metrics::counter!(m::SLOW_CLIENTS, "why" => "send_queue_full").increment(1);
                tracing::info!("dropping a slow client: catch-up frames not read");
                Err(Exit::Slow)
            }
        }
    }

    /// Sends `text`, waiting for room (`wait`) or dropping a client whose queue is full.
    async fn push(&self, text: Utf8Bytes, wait: bool) -> Result<(), Exit> {
        if wait {
            self.send_waiting(text).await
        } else {
            self.send_text(text)
        }
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

    /// Answers a frame that cannot be used: a `cmd` whose `seq` could be read gets a
    /// `rejected` for it, anything else an `error`.
    fn bad_frame(&self, bad: BadFrame) -> Result<(), Exit> {
        match bad.seq {
            Some(seq) => self.reject(seq, bad.code, bad.message),
            None => self.error(bad.code, bad.message),
        }
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
            None | Some(Ok(Message::Close(_))) => Err(Exit::ClientGone),
            Some(Err(e)) => Err(Exit::from_read_error(e)),
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
                Err(bad) => {
                    self.bad_frame(bad)?;
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
                    let delay_s = delay_s.unwrap_or(0.0);
                    if !(0.0..=f64::from(MAX_SPECTATOR_DELAY_S)).contains(&delay_s) {
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
                    let delay = (delay_s > 0.0).then(|| Duration::from_secs_f64(delay_s));
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
        if !hub.wait_ready(crate::limits::HUB_READY_WAIT).await {
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

    fn pong(&mut self, id: u64) {
        if let Some((sent_id, at)) = self.ping_out {
            if sent_id == id {
                metrics::histogram!(m::RTT_SECONDS).record(at.elapsed().as_secs_f64());
                self.ping_out = None;
            }
        }
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

    async fn serve(&mut self, stream: &mut SplitStream<WebSocket>, mut j: Joined) -> Exit {
        let mut shutdown = self.gw.shutdown.clone();
        let mut ping = tokio::time::interval(SERVER_PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let due = j.delay.as_ref().and_then(Delay::next_due);
            let step = tokio::select! {
                msg = stream.next() => self.on_client(msg, &j).await,
                got = j.rx.recv() => self.on_hub(got, &mut j, false).await,
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    self.release_delayed(&mut j).await
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
                    metrics::counter!(m::COMMANDS, "result" => "rejected_by_sim").increment(1);
                    let text = ServerMsg::Rejected {
                        seq,
                        code: code.to_string(),
                        message: message.clone(),
                    }
                    .to_json();
                    self.push(text.into(), wait).await?;
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
                        metrics::counter!(m::COMMANDS, "result" => "rejected_by_sim").increment(1);
                        let text = ServerMsg::Rejected {
                            seq,
                            code: "bad_placement".into(),
                            message: message.clone(),
                        }
                        .to_json();
                        self.push(text.into(), wait).await?;
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
            Err(bad) => return self.bad_frame(bad),
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
                Ok(f) => {
                    self.send(&crate::hub::spectator_frame(&f))?;
                    self.send(&replay.players_stats(f.tick))?;
                }
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
            Ok(Some(frame)) => {
                self.send(&crate::hub::spectator_frame(&frame))?;
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
            Err(bad) => return self.bad_frame(bad),
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
                        Ok(f) => {
                            self.send(&crate::hub::spectator_frame(&f))?;
                            self.send(&r.players_stats(f.tick))?;
                        }
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
        if let Err(e) = append_command(&self.gw.bus, &stream, &bytes).await {
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
