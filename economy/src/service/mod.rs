//! The economy service: its settings ([`EconomyConfig`], the service's
//! [`::service::ServiceConfig`]) and its per-match fold ([`EconomyMatch`]), run by the
//! shared runner ([`run`]) that claims matches like the engine's (its own consumer group
//! on the matches stream). The fold folds each committed engine tick and the production
//! commands into the ledger, commits one economy step per tick under an explicit id
//! (fencing), appends the commands the ledger decides (spawns, constructions, power,
//! harvester orders), and runs the match's AI opponents as ordinary command producers on
//! their own fogged view.

mod fold;

use std::time::Duration;

pub use ::service::{run, Progress};
use ::service::{RunnerConfig, ServiceArgs, ServiceConfig};
use events::MatchId;

pub use fold::{EconomyInputs, EconomyLoopError, EconomyMatch, EconomyStep};

/// Consumer group of economy instances on the matches stream.
pub const ECONOMY_GROUP: &str = "economy";

/// Economy service settings; every limit has a name here.
#[derive(Clone, Debug)]
pub struct EconomyConfig {
    /// This instance's consumer name (unique per process).
    pub consumer: String,
    /// Most matches run at once by this instance.
    pub capacity: usize,
    /// A lease untouched this long is taken over by another instance.
    pub lease_idle: Duration,
    /// How often leases are touched and new matches looked for.
    pub poll: Duration,
    /// A snapshot is written every this many steps.
    pub snapshot_every: u64,
    /// Snapshot stream cap (MAXLEN ~), shared with the engine's snapshots.
    pub snap_maxlen: usize,
    /// Tick entries folded per read.
    pub ticks_per_read: usize,
    /// Production commands consumed per step at most.
    pub max_commands_per_step: usize,
    /// AI opponents decide every this many ticks, on the newest tick read (behind the
    /// engine, once per page of `ticks_per_read`).
    pub ai_every: u64,
    /// Run AI opponents in this instance.
    pub run_ai: bool,
}

impl Default for EconomyConfig {
    fn default() -> Self {
        Self {
            consumer: format!("economy-{}", &MatchId::generate().as_str()[20..]),
            capacity: 64,
            lease_idle: Duration::from_secs(3),
            poll: Duration::from_millis(200),
            snapshot_every: 200,
            snap_maxlen: 16,
            ticks_per_read: 256,
            max_commands_per_step: 256,
            ai_every: 10,
            run_ai: true,
        }
    }
}

/// Metric names of the economy service.
pub mod metric {
    /// Histogram: one economy step's fold + commit time.
    pub const STEP_TIME: &str = "economy_step_time_ms";
    /// Gauge: engine ticks not yet folded (stream consumer lag), per match.
    pub const LAG: &str = "cnit_stream_lag_entries";
    /// Counter: economy steps committed.
    pub const STEPS: &str = "cnit_economy_steps_total";
    /// Counter: commands issued by AI opponents.
    pub const AI_COMMANDS: &str = "cnit_ai_commands_total";

    /// Registers the economy's metrics so they are exported before their first event.
    pub fn register() {
        metrics::describe_histogram!(
            STEP_TIME,
            metrics::Unit::Milliseconds,
            "Economy step duration: fold and commit"
        );
        let _ = metrics::histogram!(STEP_TIME);
        metrics::describe_gauge!(LAG, "Engine ticks not yet folded by the economy");
        metrics::gauge!(LAG).set(0.0);
        metrics::describe_counter!(STEPS, "Economy steps committed");
        metrics::counter!(STEPS).increment(0);
        metrics::describe_counter!(AI_COMMANDS, "Commands issued by AI opponents");
        metrics::counter!(AI_COMMANDS).increment(0);
    }
}

/// The economy binary's own flags.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EconomyFlags {
    /// Do not run AI opponents in this instance.
    #[arg(long)]
    pub no_ai: bool,
}

impl ServiceConfig for EconomyConfig {
    const NAME: &'static str = ECONOMY_GROUP;
    const ABOUT: &'static str = "Runs the economy (ledger, production, harvester AI, AI \
                                 opponents) of the matches this instance claims";
    const DEFAULT_OPS_ADDR: &'static str = "0.0.0.0:9102";
    const READY_CHECK: &'static str = "economy_loop";
    /// Ticks the economy may lag behind the engine and still report ready.
    const MAX_READY_LAG: Option<u64> = Some(200);

    type Flags = EconomyFlags;
    type Fold = EconomyMatch;

    fn from_args(args: &ServiceArgs, flags: EconomyFlags) -> Self {
        let default = Self::default();
        Self {
            consumer: args.consumer.clone().unwrap_or(default.consumer),
            capacity: args.capacity,
            lease_idle: args.lease_idle(),
            run_ai: !flags.no_ai,
            ..default
        }
    }

    fn runner(&self) -> RunnerConfig {
        RunnerConfig::new(&self.consumer, self.capacity, self.lease_idle, self.poll)
    }

    fn register_metrics() {
        metric::register();
    }
}
