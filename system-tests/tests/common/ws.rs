//! Browser-protocol clients for the cluster tests (`docs/protocol.md`): a viewer that
//! plays or spectates a match through a list of gateways, reconnects to the next one when
//! its socket drops, resumes from its last tick, and records every tick it was sent, so a
//! test can check that each tick arrived exactly once.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a viewer joins.
#[derive(Clone, Debug)]
pub enum Role {
    Player { token: String },
    Spectator { match_id: String },
}

/// Connects a WebSocket to a gateway (3 s budget).
pub async fn connect(addr: SocketAddr) -> Option<Ws> {
    let url = format!("ws://{addr}/ws");
    match tokio::time::timeout(
        Duration::from_secs(3),
        tokio_tungstenite::connect_async(url),
    )
    .await
    {
        Ok(Ok((ws, _))) => Some(ws),
        _ => None,
    }
}

pub async fn send(ws: &mut Ws, v: Value) -> bool {
    ws.send(Message::Text(v.to_string().into())).await.is_ok()
}

/// The next JSON frame within `wait` (skipping the server's pings); `Err` when the socket
/// closed, `Ok(None)` on timeout.
pub async fn next_json(ws: &mut Ws, wait: Duration) -> Result<Option<Value>, String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => return Err("stream ended".into()),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(m))) => m,
        };
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).map_err(|e| format!("bad json: {e}"))?;
                if v["t"] == "ping" {
                    let id = v["id"].clone();
                    let _ = send(ws, json!({"t": "pong", "id": id})).await;
                    continue;
                }
                return Ok(Some(v));
            }
            Message::Close(c) => return Err(format!("closed: {c:?}")),
            _ => continue,
        }
    }
}

/// Says hello and joins or spectates; returns the welcome frame.
pub async fn handshake(ws: &mut Ws, role: &Role, last_tick: Option<u64>) -> Result<Value, String> {
    if !send(ws, json!({"t": "hello", "protocol": 2})).await {
        return Err("send hello".into());
    }
    let ok = next_json(ws, Duration::from_secs(5))
        .await?
        .ok_or("no hello_ok")?;
    if ok["t"] != "hello_ok" {
        return Err(format!("expected hello_ok, got {ok}"));
    }
    let join = match role {
        Role::Player { token } => json!({"t": "join", "token": token, "last_tick": last_tick}),
        Role::Spectator { match_id } => {
            json!({"t": "spectate", "match": match_id, "last_tick": last_tick})
        }
    };
    if !send(ws, join).await {
        return Err("send join".into());
    }
    let w = next_json(ws, Duration::from_secs(10))
        .await?
        .ok_or("no welcome")?;
    if w["t"] != "welcome" {
        return Err(format!("expected welcome, got {w}"));
    }
    Ok(w)
}

/// What one viewer received.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Ticks of every keyframe/delta, in arrival order, with `true` for keyframes.
    pub ticks: Vec<(u64, bool)>,
    /// Sockets lost and re-established.
    pub reconnects: u32,
    /// Reconnects after which the gateway resumed with deltas (no keyframe needed).
    pub resumed: u32,
    /// Reconnects after which the gateway sent a keyframe instead (the gap is covered by
    /// the keyframe's full state, but those ticks were not delivered one by one).
    pub keyframe_resumes: u32,
    /// Why sockets were lost.
    pub drops: Vec<String>,
    /// Entities of the first keyframe (`id`, `owner`).
    pub first_entities: Vec<(u32, u8)>,
    /// Milliseconds from losing a socket to the first frame from the next gateway.
    pub reconnect_ms: Vec<u64>,
    /// Commands sent, event ids acknowledged, rejection codes, error codes.
    pub commands_sent: u64,
    pub acked: Vec<String>,
    pub rejected: Vec<String>,
    pub errors: Vec<String>,
}

impl Received {
    /// The last tick received.
    pub fn last(&self) -> Option<u64> {
        self.ticks.last().map(|t| t.0)
    }

    /// Ticks received twice or out of order, and ticks skipped without a keyframe
    /// standing in for them: `(duplicates, gaps)`.
    pub fn violations(&self) -> (Vec<u64>, Vec<(u64, u64)>) {
        let mut dups = Vec::new();
        let mut gaps = Vec::new();
        for w in self.ticks.windows(2) {
            let (a, (b, key)) = (w[0].0, w[1]);
            if b <= a {
                dups.push(b);
            } else if b != a + 1 && !key {
                gaps.push((a, b));
            }
        }
        (dups, gaps)
    }
}

/// Options of a viewer.
#[derive(Clone, Debug)]
pub struct ViewOptions {
    /// Stop after receiving this tick.
    pub until: u64,
    pub deadline: Instant,
    /// Players: send a `stop` order for one of their own units this often.
    pub command_every: Option<Duration>,
}

/// Views a match through `gateways` (starting at index `first`) until it has seen tick
/// `until` or `deadline` passes; on a lost socket it reconnects to the next gateway
/// (backoff 100 ms) and resumes from its last tick.
pub async fn view(
    role: Role,
    gateways: Vec<SocketAddr>,
    first: usize,
    until: u64,
    deadline: Instant,
) -> Received {
    view_with(
        role,
        gateways,
        first,
        ViewOptions {
            until,
            deadline,
            command_every: None,
        },
    )
    .await
}

/// [`view`] with options: a player viewer can also send commands, and records the
/// event ids the gateway acknowledged.
pub async fn view_with(
    role: Role,
    gateways: Vec<SocketAddr>,
    first: usize,
    o: ViewOptions,
) -> Received {
    let mut r = Received::default();
    let mut cur = first % gateways.len();
    let mut lost_at: Option<Instant> = None;
    let mut seq = 0u64;
    let player = match &role {
        Role::Player { token } => token.split('.').nth(2).and_then(|p| p.parse::<u8>().ok()),
        Role::Spectator { .. } => None,
    };
    while Instant::now() < o.deadline {
        let Some(mut ws) = connect(gateways[cur]).await else {
            cur = (cur + 1) % gateways.len();
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let last = r.last();
        if let Err(e) = handshake(&mut ws, &role, last).await {
            r.drops.push(format!("handshake on {}: {e}", gateways[cur]));
            cur = (cur + 1) % gateways.len();
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let (mut sink, mut stream) = ws.split();
        let mut first_frame = true;
        let mut orders =
            tokio::time::interval(o.command_every.unwrap_or(Duration::from_secs(3600)));
        orders.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        orders.tick().await;
        let why: String = loop {
            let now = Instant::now();
            if now >= o.deadline {
                return r;
            }
            let wait = o
                .deadline
                .saturating_duration_since(now)
                .min(Duration::from_secs(5));
            let msg = tokio::select! {
                m = tokio::time::timeout(wait, stream.next()) => m,
                _ = orders.tick(), if o.command_every.is_some() => {
                    let mine = r.first_entities.iter().find(|(_, owner)| Some(*owner) == player);
                    if let Some((id, _)) = mine {
                        seq += 1;
                        let cmd = json!({"t": "cmd", "seq": seq, "cmd": {"kind": "stop", "units": [id]}});
                        if sink.send(Message::Text(cmd.to_string().into())).await.is_ok() {
                            r.commands_sent += 1;
                        }
                    }
                    continue;
                }
            };
            let msg = match msg {
                Err(_) => break format!("silent for 5 s on {}", gateways[cur]),
                Ok(None) => break format!("{}: stream ended", gateways[cur]),
                Ok(Some(Err(e))) => break format!("{}: {e}", gateways[cur]),
                Ok(Some(Ok(m))) => m,
            };
            let text = match msg {
                Message::Text(t) => t,
                Message::Close(c) => break format!("{}: closed {c:?}", gateways[cur]),
                _ => continue,
            };
            let Ok(v) = serde_json::from_str::<Value>(&text) else {
                r.errors.push(format!("not json: {text}"));
                continue;
            };
            match v["t"].as_str().unwrap_or("") {
                "ping" => {
                    let pong = json!({"t": "pong", "id": v["id"].clone()});
                    let _ = sink.send(Message::Text(pong.to_string().into())).await;
                }
                "ack" => r.acked.push(v["id"].as_str().unwrap_or("").to_string()),
                "rejected" => r
                    .rejected
                    .push(v["code"].as_str().unwrap_or("").to_string()),
                "error" => r.errors.push(v["code"].as_str().unwrap_or("").to_string()),
                t @ ("keyframe" | "delta") => {
                    let tick = v["tick"].as_u64().unwrap_or(0);
                    let key = t == "keyframe";
                    if first_frame && last.is_some() {
                        if key {
                            r.keyframe_resumes += 1;
                        } else {
                            r.resumed += 1;
                        }
                        if let Some(at) = lost_at.take() {
                            r.reconnect_ms.push(at.elapsed().as_millis() as u64);
                        }
                    }
                    if key && r.first_entities.is_empty() {
                        if let Some(es) = v["entities"].as_array() {
                            r.first_entities = es
                                .iter()
                                .map(|e| {
                                    (
                                        e["id"].as_u64().unwrap_or(0) as u32,
                                        e["owner"].as_u64().unwrap_or(0) as u8,
                                    )
                                })
                                .collect();
                        }
                    }
                    first_frame = false;
                    r.ticks.push((tick, key));
                    if tick >= o.until {
                        let _ = sink.close().await;
                        return r;
                    }
                }
                _ => {}
            }
        };
        r.drops.push(why);
        r.reconnects += 1;
        lost_at = Some(Instant::now());
        cur = (cur + 1) % gateways.len();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    r
}
