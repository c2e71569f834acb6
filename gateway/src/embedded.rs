//! Embedded mode: the engine and economy services in the gateway's process, over the same
//! in-memory bus, with one metrics recorder for all three, and the retention that keeps
//! the bus from growing with every match played: once a match has ended (its recording is
//! complete), its view stream (a capped projection a replay regenerates) is dropped after
//! [`RetentionConfig::view_grace`], keeping only what a replay reads (the matches entries
//! and the `cmd`, `tick`, `eco`, `snap` and `seek` streams); and only the newest
//! [`RetentionConfig::max_recordings`] ended matches keep even that (a match's recording
//! is ~0.5 MB per minute played), so memory stays bounded however many matches are
//! played. Export a match (`replay-tool`, over Redis) to keep it for good.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use events::{decode, Bus, BusError, Keys, MatchEvent, MatchId, MemoryBus, StreamId};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::GatewayConfig;

/// How long stopping waits for the services to hand their matches over.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long an ended match's view stream is kept: its hubs read the last frames and the
/// end of the match long before, and a hub with no sessions stops after
/// [`crate::limits::HUB_IDLE_TIMEOUT`]; spectating an ended match replays its log.
pub const ENDED_VIEW_GRACE: Duration = Duration::from_secs(60);

/// Ended matches whose recording embedded mode keeps (the newest; older ones are dropped
/// from the bus). About 4 MB each for a 7-minute AI match.
pub const KEPT_RECORDINGS: usize = 10;

/// Entries of the matches stream the retention task reads at once.
const RETENTION_READ_BATCH: usize = 256;

/// How long one read of the matches stream by the retention task blocks.
const RETENTION_BLOCK: Duration = Duration::from_secs(1);

/// Wait before the retention task reads again after a bus error.
const RETENTION_RETRY: Duration = Duration::from_secs(1);

/// What an embedded game keeps of ended matches.
#[derive(Clone, Debug)]
pub struct RetentionConfig {
    /// How long after its end a match's view stream is dropped.
    pub view_grace: Duration,
    /// How many ended matches keep their recording (the newest ones).
    pub max_recordings: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            view_grace: ENDED_VIEW_GRACE,
            max_recordings: KEPT_RECORDINGS,
        }
    }
}

/// How the in-process services run.
#[derive(Clone, Debug, Default)]
pub struct EmbeddedConfig {
    pub engine: engine::service::EngineConfig,
    pub economy: economy::service::EconomyConfig,
    pub retention: RetentionConfig,
}

/// Describes the engine's and the economy's metrics (and their lease and DLQ metrics) in
/// this process's recorder, as their own binaries do, so the one `/metrics` of embedded
/// mode carries every service's series with help text.
pub fn register_metrics() {
    engine::service::metric::register();
    economy::service::metric::register();
    service::ops::register_common_metrics("engine");
    service::ops::register_common_metrics("economy");
}

/// The running in-process services.
pub struct Services {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<Result<(), BusError>>)>,
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Starts engine, economy and the retention task over the in-memory bus.
pub fn start(bus: MemoryBus, config: &GatewayConfig, embedded: EmbeddedConfig) -> Services {
    let (stop, rx) = watch::channel(false);
    let engine = tokio::spawn(engine::service::run(
        bus.clone(),
        config.keys.clone(),
        config.rules.clone(),
        embedded.engine,
        Arc::new(engine::service::Progress::default()),
        stopped(rx.clone()),
    ));
    let economy = tokio::spawn(economy::service::run(
        bus.clone(),
        config.keys.clone(),
        config.rules.clone(),
        embedded.economy,
        Arc::new(economy::service::Progress::default()),
        stopped(rx.clone()),
    ));
    let retention = tokio::spawn(retain(
        bus,
        config.keys.clone(),
        embedded.retention,
        stopped(rx),
    ));
    Services {
        stop,
        tasks: vec![
            ("engine", engine),
            ("economy", economy),
            ("retention", retention),
        ],
    }
}

impl Services {
    /// Stops the services and waits (bounded) for them to finish.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for (name, task) in self.tasks {
            match tokio::time::timeout(STOP_GRACE, task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::error!(service = name, error = %e, "service failed"),
                Ok(Err(e)) => tracing::error!(service = name, error = %e, "service panicked"),
                Err(_) => tracing::warn!(service = name, "service did not stop in time"),
            }
        }
    }
}

/// Follows the matches stream and drops each ended match's view stream
/// `config.view_grace` after its end, and every stream of the ended matches older than
/// the newest `config.max_recordings`, until `shutdown`.
pub async fn retain<B: Bus>(
    bus: B,
    keys: Keys,
    config: RetentionConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), BusError> {
    tokio::pin!(shutdown);
    let matches = keys.matches();
    let mut after = StreamId::ZERO;
    // Ended matches in end order, with when their view goes.
    let mut due: VecDeque<(Instant, MatchId)> = VecDeque::new();
    // Ended matches whose recording is kept, oldest first.
    let mut kept: VecDeque<MatchId> = VecDeque::new();
    loop {
        while kept.len() > config.max_recordings {
            let Some(m) = kept.pop_front() else { break };
            if let Err(e) = bus.delete(&keys.match_streams(&m)).await {
                tracing::warn!(match_id = %m, error = %e, "old recording not dropped");
                kept.push_front(m);
                break;
            }
            tracing::info!(match_id = %m, "recording dropped (only the newest are kept)");
        }
        while due.front().is_some_and(|(at, _)| *at <= Instant::now()) {
            let Some((_, m)) = due.pop_front() else { break };
            if let Err(e) = bus.delete(&[keys.view(&m)]).await {
                tracing::warn!(match_id = %m, error = %e, "ended match's view not dropped");
                due.push_front((Instant::now() + RETENTION_RETRY, m));
                break;
            }
            tracing::debug!(match_id = %m, "ended match's view stream dropped");
        }
        // Block no longer than until the next view is due.
        let block = due
            .front()
            .map(|(at, _)| at.saturating_duration_since(Instant::now()))
            .unwrap_or(RETENTION_BLOCK)
            .clamp(Duration::from_millis(1), RETENTION_BLOCK);
        let read = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            r = bus.read_after(&matches, after, RETENTION_READ_BATCH, Some(block)) => r,
        };
        let entries = match read {
            Ok(entries) => entries,
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "retention: reading the matches stream");
                tokio::time::sleep(RETENTION_RETRY).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        for e in entries {
            after = e.id;
            if let Ok(env) = decode::<MatchEvent>(&e.payload) {
                if let MatchEvent::MatchEnded(end) = env.body {
                    if !kept.contains(&end.match_id) {
                        kept.push_back(end.match_id.clone());
                    }
                    due.push_back((Instant::now() + config.view_grace, end.match_id));
                }
            }
        }
    }
}
