//! One WebSocket session: handshake (`hello`, then `join` or `spectate`), then a loop that
//! forwards the match hub's frames for this audience, turns the client's commands into
//! `Envelope<Command>`s stamped with the token's player, and answers pings. A bad frame
//! gets an error reply; only a version mismatch, a slow client, an idle client, a frame
//! over the size limit or shutdown end the session, with a close code saying which.
//!
//! A session lives through one of two dispatchers after its handshake: `handshake.rs`
//! (until `join` or `spectate` succeeds), then `live.rs` (a live match: hub frames,
//! commands) or `replay.rs` (a recorded match played back). The frames every phase
//! answers alike (ping, pong, telemetry, hello, frames of another phase, bad frames) are
//! answered once, by the shared arm in `common.rs`; this file holds the session itself,
//! its send queue and its writer.

mod common;
mod handshake;
mod live;
mod replay;

pub use self::common::{parse, BadFrame};
pub use self::live::TokenBucket;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket};
use events::{BuildingKind, Bus};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;
use uuid::Uuid;

use crate::limits::{COMMANDS_PER_SECOND, COMMAND_BURST, SEND_QUEUE_CAPACITY};
use crate::metrics as m;
use crate::wire::ServerMsg;
use crate::Gateway;

use self::handshake::Attached;

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

/// One connection's state across its phases (the dispatchers are its methods, one file
/// each).
struct Session<B: Bus> {
    gw: Arc<Gateway<B>>,
    /// The send queue the writer task drains.
    out: mpsc::Sender<Message>,
    said_hello: bool,
    bucket: TokenBucket,
    /// The ids of recent accepted commands and their `seq`, for the engine's rejections.
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
}
