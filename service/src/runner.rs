//! The one runner of a leased service: it joins the service's group on the matches
//! stream, takes matches (takeovers first, bounded per instance), runs each match's fold
//! on its own task until it ends, is fenced out or loses its lease, settles each lease by
//! how its match ended, and hands every match over on shutdown. A service is one fold per
//! match (read inputs, step, fenced commit, publish: [`crate::fold`]) named by its
//! settings ([`ServiceConfig`]) and handed to [`run`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use events::group_commit::GroupCommitter;
use events::lease::{Acquired, LeaseConfig, Leases};
use events::{Bus, BusError, Keys, MatchId, StreamId};
use rules::Rules;
use tokio_util::sync::CancellationToken;

use crate::binary::ServiceConfig;
use crate::fold::{drive, MatchIo};
use crate::ops::{Check, CheckResult};

/// How a leased service takes its matches (its consumer group is its name).
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// This instance's consumer name in the group.
    pub consumer: String,
    /// Most matches this instance runs at once.
    pub capacity: usize,
    /// A lease idle this long is taken over by another instance.
    pub lease_idle: Duration,
    /// How often leases are kept alive and new matches looked for.
    pub poll: Duration,
}

impl RunnerConfig {
    pub fn new(consumer: &str, capacity: usize, lease_idle: Duration, poll: Duration) -> Self {
        Self {
            consumer: consumer.to_string(),
            capacity,
            lease_idle,
            poll,
        }
    }
}

/// Runs the leased service `config` describes until `shutdown` completes, then hands
/// every match over: each match it takes is its fold ([`ServiceConfig::Fold`]) driven on
/// its own task, all of them committing through one group commit.
pub async fn run<C: ServiceConfig, B: Bus>(
    bus: B,
    keys: Keys,
    rules: Arc<Rules>,
    config: C,
    progress: Arc<Progress>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BusError> {
    let runner = config.runner();
    let lease_config = LeaseConfig {
        group: C::NAME.into(),
        consumer: runner.consumer,
        capacity: runner.capacity,
        idle_timeout: runner.lease_idle,
    };
    let config = Arc::new(config);
    // One group committer per instance: the commits of all its matches share rounds.
    let committer = GroupCommitter::start(bus.clone());
    serve_matches(
        bus.clone(),
        keys.clone(),
        lease_config,
        runner.poll,
        shutdown,
        progress.clone(),
        |a, cancel| {
            let io = MatchIo {
                bus: bus.clone(),
                keys: keys.clone(),
                rules: rules.clone(),
                setup: a.setup,
                cancel,
                progress: progress.clone(),
            };
            drive::<C::Fold, B>(config.clone(), io, committer.clone())
        },
    )
    .await
}

/// `/ready` for a leased service named `name`: fails when no match loop has made progress
/// for `max_stall_ms`, or when the service is `max_lag` or more entries behind its input.
pub fn progress_check(
    name: &'static str,
    progress: Arc<Progress>,
    max_stall_ms: u64,
    max_lag: Option<u64>,
) -> Check {
    Arc::new(move || {
        let progress = progress.clone();
        Box::pin(async move {
            let last = progress.last_progress_ms.load(Ordering::Relaxed);
            let age = events::now_ms().saturating_sub(last);
            let lag = progress.lag.load(Ordering::Relaxed);
            let matches = progress.matches.load(Ordering::Relaxed);
            let detail = match max_lag {
                Some(_) => {
                    format!("last progress {age} ms ago, {matches} matches, {lag} ticks behind")
                }
                None => format!("last progress {age} ms ago, {matches} matches"),
            };
            CheckResult {
                name,
                ok: last > 0 && age < max_stall_ms && max_lag.is_none_or(|m| lag < m),
                detail,
            }
        })
    })
}

/// Liveness facts of a leased service, for `/health` and `/ready`.
#[derive(Default, Debug)]
pub struct Progress {
    /// Milliseconds since the epoch of the last commit by any match, or of the last
    /// poll while the instance owns no match.
    pub last_progress_ms: std::sync::atomic::AtomicU64,
    /// Matches owned now.
    pub matches: std::sync::atomic::AtomicUsize,
    /// Entries behind the service's input (the economy's ticks behind the engine).
    pub lag: std::sync::atomic::AtomicU64,
}

impl Progress {
    /// A commit happened now.
    pub fn advanced(&self) {
        self.last_progress_ms
            .store(events::now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    fn owned(&self, n: usize) {
        self.matches.store(n, std::sync::atomic::Ordering::Relaxed);
        if n == 0 {
            self.advanced();
        }
    }
}

/// How one match's run ended, as far as its lease is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchOutcome {
    /// Over for good: the lease is acknowledged.
    Finished,
    /// Another instance committed first: this one was stale. The lease is forgotten.
    Fenced,
    /// Stopped by shutdown or a lost lease.
    Cancelled,
    /// Gave up on an error: the lease is left to go idle so another attempt is made.
    Failed(String),
}

/// Metric names of lease handling (label `service`).
pub mod metric {
    /// Gauge: matches owned by this instance.
    pub const MATCHES_OWNED: &str = "cnit_matches_owned";
    /// Counter: matches taken over from another instance.
    pub const TAKEOVERS: &str = "cnit_match_takeovers_total";
    /// Counter: commits refused by fencing (a stale owner stopped).
    pub const FENCED: &str = "cnit_fenced_commits_total";
    /// Counter: matches stopped because the keep-alive found their lease taken (a stale
    /// owner that noticed before its next commit was refused).
    pub const LEASES_LOST: &str = "cnit_leases_lost_total";
    /// Gauge: entries pending in the service's group on the matches stream (label
    /// `group`): one per running match; growth without matches means stuck leases.
    pub const PENDING: &str = "cnit_pending_entries";
}

/// How often the pending-entries gauge is sampled.
const PENDING_SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// How long a service waits to join its consumer group again when the bus is down.
const JOIN_RETRY_AFTER: Duration = Duration::from_millis(500);

/// Most pending entries one sample of the group's pending list reads.
const PENDING_SAMPLE_MAX: usize = 100_000;

/// Runs a leased service until `shutdown`: polls for matches (takeovers first), starts
/// each with `start` on its own task with a cancellation token, keeps the leases alive,
/// cancels a match whose lease was lost, settles each lease by its outcome, and on
/// shutdown cancels every match, waits for them, and hands the leases over.
pub async fn serve_matches<B, F, Fut>(
    bus: B,
    keys: Keys,
    config: LeaseConfig,
    poll: Duration,
    shutdown: impl std::future::Future<Output = ()>,
    progress: std::sync::Arc<Progress>,
    mut start: F,
) -> Result<(), BusError>
where
    B: Bus,
    F: FnMut(Acquired, tokio_util::sync::CancellationToken) -> Fut,
    Fut: std::future::Future<Output = MatchOutcome> + Send + 'static,
{
    let service = config.group.clone();
    tokio::pin!(shutdown);
    let mut leases = loop {
        match Leases::join(bus.clone(), keys.clone(), config.clone()).await {
            Ok(l) => break l,
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "bus unavailable, retrying");
                tokio::select! {
                    _ = &mut shutdown => return Ok(()),
                    _ = tokio::time::sleep(JOIN_RETRY_AFTER) => {}
                }
            }
            Err(e) => return Err(e),
        }
    };
    tracing::info!(service, consumer = %config.consumer, capacity = config.capacity, "serving matches");
    let cancel_all = CancellationToken::new();
    let mut running: BTreeMap<MatchId, CancellationToken> = BTreeMap::new();
    let mut tasks: tokio::task::JoinSet<(StreamId, MatchId, MatchOutcome)> =
        tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sampled = tokio::time::Instant::now() - PENDING_SAMPLE_EVERY;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                let Ok((lease, m, outcome)) = done else { continue };
                running.remove(&m);
                match outcome {
                    MatchOutcome::Finished => {
                        tracing::info!(service, match_id = %m, "match finished");
                        if let Err(e) = leases.finish(lease).await {
                            tracing::warn!(match_id = %m, error = %e, "could not acknowledge the lease");
                            leases.forget(lease);
                        }
                    }
                    MatchOutcome::Fenced => {
                        metrics::counter!(metric::FENCED, "service" => service.clone()).increment(1);
                        tracing::warn!(service, match_id = %m, "fenced out: another instance owns the match");
                        leases.forget(lease);
                    }
                    MatchOutcome::Cancelled => leases.forget(lease),
                    MatchOutcome::Failed(why) => {
                        tracing::error!(service, match_id = %m, why, "match failed; its lease goes idle for another attempt");
                        leases.forget(lease);
                    }
                }
            }
            _ = tick.tick() => {
                // Nothing is acquired in a poll whose keep-alive failed: this instance
                // cannot vouch for its own leases then.
                let kept = match leases.keepalive().await {
                    Ok(lost) => {
                        for m in lost {
                            if let Some(c) = running.remove(&m) {
                                metrics::counter!(metric::LEASES_LOST, "service" => service.clone()).increment(1);
                                tracing::warn!(service, match_id = %m, "lease lost; stopping the match");
                                c.cancel();
                            }
                        }
                        true
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "lease keep-alive failed");
                        false
                    }
                };
                let acquired = if kept { leases.acquire(None).await } else { Ok(Vec::new()) };
                match acquired {
                    Ok(acquired) => for a in acquired {
                        if a.takeover {
                            metrics::counter!(metric::TAKEOVERS, "service" => service.clone()).increment(1);
                        }
                        tracing::info!(service, match_id = %a.setup.match_id, takeover = a.takeover, "match acquired");
                        let cancel = cancel_all.child_token();
                        running.insert(a.setup.match_id.clone(), cancel.clone());
                        let (lease, m) = (a.lease, a.setup.match_id.clone());
                        let fut = start(a, cancel);
                        tasks.spawn(async move { (lease, m, fut.await) });
                    },
                    Err(e) => tracing::warn!(error = %e, "acquiring matches failed"),
                }
                progress.owned(running.len());
                if sampled.elapsed() >= PENDING_SAMPLE_EVERY {
                    sampled = tokio::time::Instant::now();
                    if let Ok(p) = bus.pending(&keys.matches(), &config.group, PENDING_SAMPLE_MAX).await {
                        metrics::gauge!(metric::PENDING, "group" => service.clone()).set(p.len() as f64);
                    }
                }
                metrics::gauge!(metric::MATCHES_OWNED, "service" => service.clone()).set(running.len() as f64);
            }
        }
    }
    tracing::info!(service, "shutting down; handing matches over");
    cancel_all.cancel();
    while tasks.join_next().await.is_some() {}
    if let Err(e) = leases.release_all().await {
        tracing::warn!(error = %e, "could not release leases; they will go idle instead");
    }
    Ok(())
}
