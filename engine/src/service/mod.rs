//! The engine service: claims matches from the matches stream (bounded per instance),
//! runs each match's fixed-rate tick loop, commits ticks with explicit ids (fencing out a
//! stale owner), writes view frames and snapshots, keeps its leases alive, takes over idle
//! matches, and hands its matches over on shutdown.

mod match_loop;
mod recover;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use ::service::Progress;
use ::service::RunnerConfig;
use events::{Bus, BusError, Keys};

use rules::Rules;

pub use match_loop::{MatchExit, MatchLoopError};
pub use recover::RecoverError;

/// Consumer group of engine instances on the matches stream.
pub const ENGINE_GROUP: &str = "engine";

/// How ticks are paced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// At the match's tick rate, on a fixed schedule (no drift).
    RealTime,
    /// At this multiple of the match's tick rate (headless matches in tests).
    Speed(u32),
    /// As fast as possible (headless AI matches, load tests).
    Unpaced,
}

/// Engine service settings; every limit has a name here.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// This instance's consumer name (unique per process).
    pub consumer: String,
    /// Most matches run at once by this instance.
    pub capacity: usize,
    /// A lease untouched this long is taken over by another instance.
    pub lease_idle: Duration,
    /// How often leases are touched and new matches looked for.
    pub poll: Duration,
    /// A keyframe replaces the delta every this many ticks.
    pub keyframe_every: u64,
    /// A snapshot is written every this many ticks.
    pub snapshot_every: u64,
    /// View stream cap (MAXLEN ~): 30 s at 20 Hz, the gateways' resume window
    /// (`RESUME_WINDOW_TICKS`); a gateway needs only the newest keyframe and the deltas
    /// after it, and the view is a projection the log can regenerate.
    pub view_maxlen: usize,
    /// Snapshot stream cap (MAXLEN ~), shared with the economy's snapshots.
    pub snap_maxlen: usize,
    /// Most commands applied in one tick; the rest wait for the next.
    pub max_commands_per_tick: usize,
    pub pace: Pace,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            consumer: format!("engine-{}", uuid_simple()),
            capacity: 64,
            lease_idle: Duration::from_secs(3),
            poll: Duration::from_millis(200),
            keyframe_every: 100,
            snapshot_every: 200,
            view_maxlen: 600,
            snap_maxlen: 16,
            max_commands_per_tick: 512,
            pace: Pace::RealTime,
        }
    }
}

fn uuid_simple() -> String {
    events::MatchId::generate().as_str()[20..].to_string()
}

/// Metric names of the engine service.
pub mod metric {
    /// Histogram: one tick's simulation + commit time.
    pub const FRAME_TIME: &str = "game_frame_time_ms";
    /// Gauge: entities in this instance's matches (updated at keyframes).
    pub const ENTITIES: &str = "game_entity_count";
    /// Histogram: command sent → applied at a tick.
    pub const COMMAND_LATENCY: &str = "command_apply_latency_ms";
    /// Counter: ticks committed.
    pub const TICKS: &str = "cnit_ticks_total";
    /// Counter: re-run ticks whose hash differed from the recorded one.
    pub const DESYNCS: &str = "cnit_recovery_desyncs_total";

    /// Registers the engine's metrics so they are exported before their first event.
    pub fn register() {
        metrics::describe_histogram!(
            FRAME_TIME,
            metrics::Unit::Milliseconds,
            "Tick duration: simulation and commit"
        );
        let _ = metrics::histogram!(FRAME_TIME);
        metrics::describe_gauge!(ENTITIES, "Entities in the match (updated at keyframes)");
        // The unlabelled series is this instance's total before any match reports.
        metrics::gauge!(ENTITIES).set(0.0);
        metrics::describe_histogram!(
            COMMAND_LATENCY,
            metrics::Unit::Milliseconds,
            "Command sent to applied at a tick"
        );
        let _ = metrics::histogram!(COMMAND_LATENCY);
        metrics::describe_counter!(TICKS, "Ticks committed");
        metrics::counter!(TICKS).increment(0);
        metrics::describe_counter!(DESYNCS, "Recovered ticks whose re-run hash differed");
        metrics::counter!(DESYNCS).increment(0);
    }
}

/// Runs the engine service until `shutdown` completes, then hands every match over.
pub async fn run<B: Bus>(
    bus: B,
    keys: Keys,
    rules: Arc<Rules>,
    config: EngineConfig,
    progress: Arc<Progress>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BusError> {
    let config = Arc::new(config);
    let runner = RunnerConfig {
        group: ENGINE_GROUP.into(),
        consumer: config.consumer.clone(),
        capacity: config.capacity,
        lease_idle: config.lease_idle,
        poll: config.poll,
    };
    // One group committer per instance: the ticks of all its matches share rounds.
    let committer = events::group_commit::GroupCommitter::start(bus.clone());
    ::service::run(
        bus.clone(),
        keys.clone(),
        runner,
        progress.clone(),
        shutdown,
        |setup, cancel| {
            match_loop::run(
                bus.clone(),
                keys.clone(),
                rules.clone(),
                config.clone(),
                setup,
                progress.clone(),
                committer.clone(),
                cancel,
            )
        },
    )
    .await
}
