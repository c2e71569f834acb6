//! The engine service: its settings ([`EngineConfig`], the service's
//! [`::service::ServiceConfig`]) and its per-match fold ([`EngineMatch`]: a fixed-rate
//! tick loop committing ticks with explicit ids, fencing out a stale owner, and writing
//! view frames and snapshots), run by the shared runner ([`run`]) that claims matches
//! (bounded per instance), keeps their leases alive, takes over idle ones and hands them
//! over on shutdown.

mod fold;
mod recover;

use std::time::Duration;

pub use ::service::{run, Progress};
use ::service::{RunnerConfig, ServiceArgs, ServiceConfig};

pub use fold::{EngineMatch, EngineStep, MatchLoopError, TickInputs};
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
    /// Large view frames are written zstd-compressed (`events::codec::encode_compact`);
    /// off writes every frame as plain msgpack, for readers built before compressed
    /// frames (during a rolling upgrade) and for measuring.
    pub compress_views: bool,
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
            compress_views: true,
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

/// The engine binary's own flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EngineFlags {
    /// Run ticks as fast as possible instead of at the match's tick rate.
    #[arg(long)]
    pub unpaced: bool,
    /// Write view frames as plain msgpack, never zstd-compressed: for gateways and
    /// economies older than compressed frames while a rolling upgrade is under way.
    #[arg(long)]
    pub plain_views: bool,
}

impl ServiceConfig for EngineConfig {
    const NAME: &'static str = ENGINE_GROUP;
    const ABOUT: &'static str =
        "Runs the deterministic simulation of the matches this instance claims";
    const DEFAULT_OPS_ADDR: &'static str = "0.0.0.0:9101";
    const READY_CHECK: &'static str = "tick_loop";

    type Flags = EngineFlags;
    type Fold = EngineMatch;

    fn from_args(args: &ServiceArgs, flags: EngineFlags) -> Self {
        let default = Self::default();
        Self {
            consumer: args.consumer.clone().unwrap_or(default.consumer),
            capacity: args.capacity,
            lease_idle: args.lease_idle(),
            pace: if flags.unpaced {
                Pace::Unpaced
            } else {
                Pace::RealTime
            },
            compress_views: !flags.plain_views,
            ..default
        }
    }

    fn runner(&self) -> RunnerConfig {
        RunnerConfig::new(&self.consumer, self.capacity, self.lease_idle, self.poll)
    }

    fn register_metrics() {
        metric::register();
    }

    fn announce(&self) {
        #[cfg(feature = "fault-injection")]
        tracing::warn!(
            fault = ?crate::fault::active(),
            "built with the test-only fault-injection feature: never run this binary for real"
        );
    }
}
