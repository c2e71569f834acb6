//! The gateway of Command and Independent Thought: axum HTTP (lobby API, health, the
//! browser client) and the WebSocket protocol of `docs/protocol.md`, with per-player fog
//! filtering, signed player tokens and bounded everything; `/metrics` is served on a
//! separate ops listener with `/health` and `/ready` (like the engine's and economy's).
//!
//! Stateless: any instance serves any match. Each instance runs one bus reader (a [`hub`])
//! per match it has sessions for and fans its frames out in process.

pub mod assets;
pub mod convert;
pub mod embedded;
pub mod http;
pub mod hub;
pub mod limits;
pub mod lobby;
pub mod mapview;
pub mod metrics;
pub mod replay;
pub mod score;
pub mod session;
pub mod token;
pub mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use engine::Rules;
use events::{Bus, Keys};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::hub::Hubs;
use crate::limits::{DEFAULT_TOKEN_TTL, MAX_SESSIONS, REPLAY_LOADS_AT_ONCE, SHUTDOWN_GRACE};
use crate::lobby::Lobby;
use crate::token::TokenSigner;

/// How a gateway is set up.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub keys: Keys,
    pub rules: Arc<Rules>,
    /// Token signing secret; `None` makes a random one (tokens die with the process,
    /// and instances do not accept each other's tokens).
    pub token_secret: Option<Vec<u8>>,
    pub token_ttl: Duration,
    /// Whether engine and economy run in this process (shown by `/ready`).
    pub embedded: bool,
    /// End a match against the AI whose human has had no session this long (the player
    /// surrenders); `None` never does. Only for a gateway that serves every session of its
    /// matches (embedded mode: [`limits::ABANDONED_MATCH_AFTER`]).
    pub abandoned_match_after: Option<Duration>,
    /// The lobby lists (and replays) only this many recorded matches, the last to end;
    /// `None` lists every one it indexes. Embedded mode drops older recordings
    /// ([`embedded::KEPT_RECORDINGS`]), so it lists no more than it keeps.
    pub kept_recordings: Option<usize>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            keys: Keys::default(),
            rules: Arc::new(Rules::standard()),
            token_secret: None,
            token_ttl: DEFAULT_TOKEN_TTL,
            embedded: false,
            abandoned_match_after: None,
            kept_recordings: None,
        }
    }
}

/// Everything the handlers and sessions share.
pub struct Gateway<B: Bus> {
    pub bus: B,
    pub keys: Keys,
    pub rules: Arc<Rules>,
    pub lobby: Lobby<B>,
    pub hubs: Arc<Hubs<B>>,
    pub embedded: bool,
    /// Replay loads and seek index builds running ([`limits::REPLAY_LOADS_AT_ONCE`]).
    pub replay_loads: Arc<Semaphore>,
    sessions: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
}

impl<B: Bus> Gateway<B> {
    /// Sets the gauges that are sampled at each scrape: open sessions and running hubs
    /// (the recorder drops a gauge not updated for a while, which an increment-only
    /// gauge could not survive).
    pub fn sample_gauges(&self) {
        let open = MAX_SESSIONS.saturating_sub(self.sessions.available_permits());
        ::metrics::gauge!(crate::metrics::SESSIONS).set(open as f64);
        ::metrics::gauge!(crate::metrics::HUBS).set(self.hubs.len() as f64);
    }
}

/// Serves the gateway on `listener` until `shutdown` resolves, then tells every session
/// and hub to stop and waits (at most [`SHUTDOWN_GRACE`]) for them to finish. Without an
/// ops listener `/metrics` is not served (see [`run_with_ops`]).
pub async fn run<B: Bus>(
    listener: TcpListener,
    bus: B,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_with_ops(listener, None, bus, config, shutdown).await
}

/// [`run`], plus the ops endpoint on `ops` when given: `/metrics` (this process's one
/// recorder: in embedded mode the engine's and the economy's series too), `/health` and
/// `/ready` (the bus answers), kept off the player port.
pub async fn run_with_ops<B: Bus>(
    listener: TcpListener,
    ops: Option<TcpListener>,
    bus: B,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let signer = match &config.token_secret {
        Some(s) => TokenSigner::new(s.clone(), config.token_ttl),
        None => TokenSigner::random(config.token_ttl),
    };
    let metrics = crate::metrics::install();
    let gw = Arc::new(Gateway {
        lobby: Lobby::new(
            bus.clone(),
            config.keys.clone(),
            config.rules.clone(),
            signer,
        )
        .with_kept_recordings(config.kept_recordings),
        hubs: Arc::new(Hubs::new(
            bus.clone(),
            config.keys.clone(),
            stop_rx.clone(),
            done_tx.clone(),
        )),
        bus,
        keys: config.keys,
        rules: config.rules,
        embedded: config.embedded,
        replay_loads: Arc::new(Semaphore::new(REPLAY_LOADS_AT_ONCE)),
        sessions: Arc::new(Semaphore::new(MAX_SESSIONS)),
        shutdown: stop_rx.clone(),
        done: done_tx,
    });
    let ops_server = match (ops, metrics) {
        (Some(ops), Some(handle)) => Some(tokio::spawn(serve_ops(
            ops,
            handle,
            Arc::downgrade(&gw),
            stop_rx,
        ))),
        (Some(_), None) => {
            tracing::warn!("no prometheus recorder in this process: the ops endpoint is off");
            None
        }
        (None, _) => None,
    };
    if let Some(after) = config.abandoned_match_after {
        let (gw, stop, done) = (gw.clone(), gw.shutdown.clone(), gw.done.clone());
        tokio::spawn(async move {
            let _done = done;
            gw.lobby.watch_abandoned(after, stop).await;
        });
    }
    let app = http::router(gw.clone());
    // Without TCP_NODELAY a frame written right after a small one (a delta after an
    // `ack`) waits for the client's delayed ACK: about 40 ms on Linux.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stop_tx.send_replace(true);
        })
        .await;
    drop(gw);
    if let Some(ops) = ops_server {
        match ops.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "ops endpoint failed"),
            Err(e) => tracing::warn!(error = %e, "ops endpoint task failed"),
        }
    }
    // Every session and hub holds a clone of `done`; all dropped means all finished.
    if tokio::time::timeout(SHUTDOWN_GRACE, done_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("some sessions did not finish within the shutdown grace period");
    }
    served
}

/// The gateway's ops endpoint until `stop`: `service::ops`' router with the gateway's
/// sampled gauges and a bus readiness check. Holds the gateway weakly, so it never keeps
/// it (and its sessions' shutdown signal) alive.
async fn serve_ops<B: Bus>(
    listener: TcpListener,
    handle: PrometheusHandle,
    gw: std::sync::Weak<Gateway<B>>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let check = match gw.upgrade() {
        Some(g) => service::ops::bus_check(g.bus.clone(), g.keys.matches()),
        None => return Ok(()),
    };
    let sample: service::ops::Sampler = Arc::new(move || {
        if let Some(g) = gw.upgrade() {
            g.sample_gauges();
        }
    });
    let app = service::ops::router_sampling("gateway", handle, vec![check], sample);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
}
