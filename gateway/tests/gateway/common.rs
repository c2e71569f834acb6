//! Shared harness of the gateway tests: a gateway on a free port over a MemoryBus, a
//! WebSocket client, a tiny HTTP client, and writers that play the engine's and the
//! economy's part by appending frames to the bus directly.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use events::{
    encode, Bus, EconomyStepCommitted, EntityKind, EntityView, Envelope, GameEvent, IdSpec, Keys,
    LedgerEvent, MapSpec, MatchCreated, MatchEvent, MatchId, MemoryBus, PlayerId, PlayerKind,
    PlayerSlot, Pos, Source, TiberiumChange, TickCommitted, UnitId, UnitKind, ViewFrame, ViewKind,
};
use futures::{SinkExt, StreamExt};
use gateway::token::TokenSigner;
use gateway::GatewayConfig;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &[u8] = b"test-secret";

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct TestGateway {
    pub addr: SocketAddr,
    /// The ops endpoint (`/metrics`, `/health`, `/ready`).
    pub ops_addr: SocketAddr,
    pub bus: MemoryBus,
    pub keys: Keys,
    pub signer: TokenSigner,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestGateway {
    pub async fn start() -> Self {
        Self::start_on(MemoryBus::new()).await
    }

    pub async fn start_on(bus: MemoryBus) -> Self {
        Self::start_with(bus, |_| {}).await
    }

    /// A gateway whose config `tweak` adjusts (after the test defaults are set).
    pub async fn start_with(bus: MemoryBus, tweak: impl FnOnce(&mut GatewayConfig)) -> Self {
        let keys = Keys::new(format!("t{}", uuid::Uuid::now_v7().simple()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ops = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ops_addr = ops.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let mut config = GatewayConfig {
            keys: keys.clone(),
            token_secret: Some(SECRET.to_vec()),
            ..GatewayConfig::default()
        };
        tweak(&mut config);
        let task = tokio::spawn(gateway::run_with_ops(
            listener,
            Some(ops),
            bus.clone(),
            config,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            ops_addr,
            bus,
            keys,
            signer: TokenSigner::new(SECRET.to_vec(), Duration::from_secs(600)),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }

    pub fn token(&self, m: &MatchId, p: u8) -> String {
        self.signer.issue(m, PlayerId(p)).0
    }

    /// A match with a human P0 and an AI P1 on a 32×32 map, written to the matches stream.
    pub async fn create_match(&self) -> MatchId {
        self.create_match_with(vec![
            PlayerKind::Human,
            PlayerKind::Ai(events::Difficulty::Easy),
        ])
        .await
    }

    pub async fn create_match_with(&self, kinds: Vec<PlayerKind>) -> MatchId {
        let m = MatchId::generate();
        let created = MatchCreated {
            match_id: m.clone(),
            seed: 42,
            map: MapSpec { size: 32, seed: 42 },
            players: kinds
                .into_iter()
                .enumerate()
                .map(|(i, kind)| PlayerSlot {
                    id: PlayerId(i as u8),
                    name: format!("p{i}"),
                    kind,
                })
                .collect(),
            tick_hz: 20,
            scenario: events::Scenario::Skirmish,
        };
        let env = Envelope::new(m.clone(), Source::System, MatchEvent::MatchCreated(created));
        self.bus
            .append(
                &self.keys.matches(),
                IdSpec::Auto,
                &encode(&env).unwrap(),
                None,
            )
            .await
            .unwrap();
        m
    }

    /// Appends a view frame as the engine writes it (compressed when large).
    pub async fn write_view(&self, m: &MatchId, frame: ViewFrame) {
        let env = Envelope::new(m.clone(), Source::System, frame);
        self.bus
            .append(
                &self.keys.view(m),
                IdSpec::Auto,
                &events::encode_compact(&env).unwrap(),
                None,
            )
            .await
            .unwrap();
    }

    pub async fn write_tick(&self, m: &MatchId, tick: u64, events: Vec<GameEvent>) {
        let env = Envelope::new(
            m.clone(),
            Source::System,
            TickCommitted {
                tick,
                applied: vec![],
                events,
                hash: 0,
                dead_lettered: Vec::new(),
            },
        );
        self.bus
            .append(
                &self.keys.tick(m),
                IdSpec::Explicit(events::StreamId::for_tick(tick)),
                &encode(&env).unwrap(),
                None,
            )
            .await
            .unwrap();
    }

    pub async fn write_eco(&self, m: &MatchId, tick: u64, events: Vec<LedgerEvent>) {
        let env = Envelope::new(
            m.clone(),
            Source::Economy,
            EconomyStepCommitted {
                tick,
                consumed: vec![],
                events,
                hash: 0,
            },
        );
        self.bus
            .append(
                &self.keys.eco(m),
                IdSpec::Auto,
                &encode(&env).unwrap(),
                None,
            )
            .await
            .unwrap();
    }

    /// Every command on the match's cmd stream.
    pub async fn commands(&self, m: &MatchId) -> Vec<Envelope<events::Command>> {
        self.bus
            .range(
                &self.keys.cmd(m),
                events::StreamId::ZERO,
                events::StreamId::MAX,
                10_000,
            )
            .await
            .unwrap()
            .iter()
            .map(|e| events::decode(&e.payload).unwrap())
            .collect()
    }

    pub async fn ws(&self) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", self.addr))
            .await
            .unwrap();
        ws
    }

    /// Connects, says hello and joins with a token; returns the socket and the welcome.
    pub async fn join(&self, token: &str, last_tick: Option<u64>) -> (Ws, Value) {
        let mut ws = self.ws().await;
        send(&mut ws, json!({"t": "hello", "protocol": 2})).await;
        assert_eq!(recv(&mut ws).await["t"], "hello_ok");
        send(
            &mut ws,
            json!({"t": "join", "token": token, "last_tick": last_tick}),
        )
        .await;
        let w = recv(&mut ws).await;
        assert_eq!(w["t"], "welcome", "{w}");
        (ws, w)
    }

    pub async fn spectate(&self, m: &MatchId, last_tick: Option<u64>) -> (Ws, Value) {
        let mut ws = self.ws().await;
        send(&mut ws, json!({"t": "hello", "protocol": 2})).await;
        assert_eq!(recv(&mut ws).await["t"], "hello_ok");
        send(
            &mut ws,
            json!({"t": "spectate", "match": m.as_str(), "last_tick": last_tick}),
        )
        .await;
        let w = recv(&mut ws).await;
        assert_eq!(w["t"], "welcome", "{w}");
        (ws, w)
    }

    /// A minimal HTTP/1.1 request; returns status and body.
    pub async fn http(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.http_raw(method, path, Some("application/json"), &body)
            .await
    }

    /// An HTTP/1.1 request with any body and content type; returns status and body.
    pub async fn http_raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        let ctype = content_type
            .map(|c| format!("Content-Type: {c}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out).to_string();
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        (status, body)
    }

    /// A request to the ops endpoint.
    pub async fn ops_http(&self, method: &str, path: &str) -> (u16, String) {
        http_at(self.ops_addr, method, path, None).await
    }
}

/// A minimal HTTP/1.1 request to `addr`; returns status and body.
pub async fn http_at(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n.min(rest.len())]);
        s = rest.get(n + 2..).unwrap_or("");
    }
    out
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

pub async fn send_raw(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON frame (skipping the server's pings), or panics after 5 s.
pub async fn recv(ws: &mut Ws) -> Value {
    try_recv(ws, Duration::from_secs(5))
        .await
        .expect("expected a frame within 5 s")
}

/// The next JSON frame (skipping pings) within `wait`, or `None`.
pub async fn try_recv(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match msg {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["t"] == "ping" {
                    continue;
                }
                return Some(v);
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Frames until one matches `pred` (returned with everything before it).
pub async fn recv_until(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
    let mut seen = Vec::new();
    loop {
        let v = recv(ws).await;
        if pred(&v) {
            return (v, seen);
        }
        seen.push(v);
    }
}

pub fn unit(id: u32, owner: u8, kind: UnitKind, cell: (i32, i32), mask: u8) -> EntityView {
    EntityView {
        id: UnitId(id),
        owner: PlayerId(owner),
        kind: EntityKind::Unit(kind),
        pos: Pos::new(cell.0 * 1024 + 512, cell.1 * 1024 + 512),
        facing: 0,
        hp: 50,
        max_hp: 50,
        cargo: 0,
        visible_to: mask,
    }
}

pub fn frame(
    tick: u64,
    kind: ViewKind,
    entities: Vec<EntityView>,
    removed: Vec<(UnitId, u8)>,
) -> ViewFrame {
    ViewFrame {
        tick,
        kind,
        entities,
        removed,
        tiberium: Vec::<TiberiumChange>::new(),
        winner: None,
        attacks: Vec::new(),
        deaths: Vec::new(),
    }
}

pub fn shared<T>(t: T) -> Arc<T> {
    Arc::new(t)
}

/// The engine and economy services over a test gateway's bus, as in embedded mode.
pub struct Services {
    stop: Option<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<Result<(), events::BusError>>>,
}

impl Services {
    pub fn start(gw: &TestGateway) -> Self {
        let rules = Arc::new(engine::Rules::standard());
        let (stop, stopped) = oneshot::channel::<()>();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let engine = tokio::spawn(engine::service::run(
            gw.bus.clone(),
            gw.keys.clone(),
            rules.clone(),
            engine::service::EngineConfig::default(),
            Arc::new(engine::service::Progress::default()),
            until(rx.clone()),
        ));
        let economy = tokio::spawn(economy::service::run(
            gw.bus.clone(),
            gw.keys.clone(),
            rules,
            economy::service::EconomyConfig::default(),
            Arc::new(economy::service::Progress::default()),
            until(rx),
        ));
        tokio::spawn(async move {
            let _ = stopped.await;
            tx.send_replace(true);
        });
        Self {
            stop: Some(stop),
            tasks: vec![engine, economy],
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

/// The close frame that ends a socket (`None` when it ends without one), skipping frames.
pub async fn close_code(ws: &mut Ws, wait: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.ok()?? {
            Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}
