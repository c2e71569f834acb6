//! The shared arm of every session's dispatchers: parsing a client frame, and answering
//! once, for every phase, the frames whose answer does not depend on it (ping, pong,
//! telemetry), those that depend only on the phase (`hello`, and a frame of another phase:
//! `join` once joined, `cmd` before joining or in a replay, `replay` in a live match),
//! bad frames and errors; plus what the phases share around it (server pings, shutdown,
//! the welcome's map).

use std::sync::Arc;

use axum::extract::ws::Message;
use events::{Bus, MatchCreated};
use tokio::time::{Instant, Interval};

use super::{Exit, Session};
use crate::limits::{
    CLIENT_IDLE_TIMEOUT, MAX_TELEMETRY_SAMPLES, PROTOCOL_VERSION, SERVER_PING_INTERVAL,
};
use crate::metrics as m;
use crate::wire::{ClientMsg, ServerMsg, Welcome, CLIENT_MSG_TYPES};

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

/// Which part of its life a session is in: what the shared arm answers for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Before `join` or `spectate` succeeded (`handshake.rs`).
    Handshake,
    /// In a live match (`live.rs`).
    Live,
    /// Watching a recorded match (`replay.rs`).
    Replay,
}

/// A client frame as the socket delivers it.
pub(super) type Incoming = Option<Result<Message, axum::Error>>;

/// The server's ping timer (round-trip measurement and the idle check), one per session.
pub(super) fn pinger() -> Interval {
    let mut ping = tokio::time::interval(SERVER_PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping
}

impl<B: Bus> Session<B> {
    /// The shared arm: reads one client frame and answers it unless only `phase`'s own
    /// dispatcher can (`join` and `spectate` in the handshake, `cmd` live, `replay` in a
    /// replay), which it returns. Once attached (live or replay), it first waits for room
    /// for the replies (see [`Session::room_for_reply`]).
    pub(super) async fn next_frame(
        &mut self,
        msg: Incoming,
        phase: Phase,
    ) -> Result<Option<ClientMsg>, Exit> {
        if phase != Phase::Handshake {
            self.room_for_reply().await?;
        }
        let Some(text) = self.text_of(msg)? else {
            return Ok(None);
        };
        let parsed = match parse(&text) {
            Ok(p) => p,
            Err(bad) => {
                self.bad_frame(bad)?;
                return Ok(None);
            }
        };
        match (parsed, phase) {
            (ClientMsg::Ping { id }, _) => self.send(&ServerMsg::Pong { id })?,
            (ClientMsg::Pong { id }, _) => self.pong(id),
            (
                ClientMsg::Telemetry {
                    selection_latency_ms,
                    frame_ms,
                },
                _,
            ) => telemetry(&selection_latency_ms, &frame_ms),
            (ClientMsg::Hello { protocol }, Phase::Handshake) => self.hello(protocol)?,
            (ClientMsg::Join { .. } | ClientMsg::Spectate { .. }, Phase::Handshake)
                if !self.said_hello =>
            {
                self.error("hello_required", "send hello first")?;
            }
            (own @ (ClientMsg::Join { .. } | ClientMsg::Spectate { .. }), Phase::Handshake)
            | (own @ ClientMsg::Cmd { .. }, Phase::Live)
            | (own @ ClientMsg::Replay { .. }, Phase::Replay) => return Ok(Some(own)),
            (
                ClientMsg::Hello { .. } | ClientMsg::Join { .. } | ClientMsg::Spectate { .. },
                Phase::Live | Phase::Replay,
            ) => self.error("already_joined", "this connection is already in a match")?,
            (ClientMsg::Cmd { seq, .. }, Phase::Handshake) => {
                self.reject(seq, "not_joined", "join a match first")?;
            }
            (ClientMsg::Cmd { seq, .. }, Phase::Replay) => {
                self.reject(seq, "read_only", "a replay cannot be commanded")?;
            }
            (ClientMsg::Replay { .. }, Phase::Handshake) => {
                self.error("not_joined", "spectate a recorded match first")?;
            }
            (ClientMsg::Replay { .. }, Phase::Live) => {
                self.error("not_a_replay", "this match is live")?;
            }
        }
        Ok(None)
    }

    /// Answers `hello`: the protocol versions agree, or the session ends refused.
    fn hello(&mut self, protocol: u32) -> Result<(), Exit> {
        if protocol == PROTOCOL_VERSION {
            self.said_hello = true;
            return self.send(&ServerMsg::HelloOk {
                protocol: PROTOCOL_VERSION,
            });
        }
        metrics::counter!(m::ERRORS, "code" => "protocol_mismatch").increment(1);
        self.send(&ServerMsg::Error {
            code: "protocol_mismatch".into(),
            message: format!(
                "this gateway speaks protocol {PROTOCOL_VERSION}, the client {protocol}; reload the page"
            ),
            expected: Some(PROTOCOL_VERSION),
        })?;
        Err(Exit::Refused)
    }

    pub(super) fn error(&self, code: &'static str, message: impl Into<String>) -> Result<(), Exit> {
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

    pub(super) fn reject(
        &self,
        seq: u64,
        code: &'static str,
        message: impl Into<String>,
    ) -> Result<(), Exit> {
        metrics::counter!(m::COMMANDS, "result" => code).increment(1);
        self.send(&ServerMsg::Rejected {
            seq: Some(seq),
            code: code.to_string(),
            message: message.into(),
        })
    }

    /// The next text frame from the client; `Ok(None)` for frames that need no answer.
    fn text_of(&mut self, msg: Incoming) -> Result<Option<String>, Exit> {
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

    fn pong(&mut self, id: u64) {
        if let Some((sent_id, at)) = self.ping_out {
            if sent_id == id {
                metrics::histogram!(m::RTT_SECONDS).record(at.elapsed().as_secs_f64());
                self.ping_out = None;
            }
        }
    }

    pub(super) fn on_ping(&mut self) -> Result<(), Exit> {
        if self.last_heard.elapsed() > CLIENT_IDLE_TIMEOUT {
            let _ = self.error("idle_timeout", "no frames from the client");
            return Err(Exit::Timeout);
        }
        let id = self.next_ping;
        self.next_ping += 1;
        self.ping_out = Some((id, Instant::now()));
        self.send(&ServerMsg::Ping { id })
    }

    /// Tells the client the gateway is shutting down; the session ends.
    pub(super) fn shutting_down(&self) -> Exit {
        let _ = self.error("shutting_down", "the gateway is shutting down");
        Exit::Shutdown
    }

    /// The welcome template of a match, its map generated on the blocking pool;
    /// `Ok(None)` when it cannot be built (the client was told why).
    pub(super) async fn map_welcome(
        &self,
        created: &Arc<MatchCreated>,
    ) -> Result<Option<Welcome>, Exit> {
        let (c, r) = (created.clone(), self.gw.rules.clone());
        match tokio::task::spawn_blocking(move || crate::mapview::welcome(&c, &r)).await {
            Ok(Ok(w)) => Ok(Some(w)),
            Ok(Err(e)) => {
                self.error(
                    "unavailable",
                    format!("the match's map cannot be built: {e}"),
                )?;
                Ok(None)
            }
            Err(e) => {
                self.error("internal", e.to_string())?;
                Ok(None)
            }
        }
    }
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
