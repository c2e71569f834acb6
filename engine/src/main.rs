//! The engine service binary: parse config, connect to Redis, serve ops endpoints, run.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use engine::service::{self, EngineConfig, Pace, Progress};
use events::ops::{self, Check, CheckResult, ServiceArgs, ServiceSetup};

/// Runs the deterministic simulation of the matches this instance claims.
#[derive(Parser, Debug)]
#[command(name = "engine", version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
    /// Run ticks as fast as possible instead of at the match's tick rate.
    #[arg(long)]
    unpaced: bool,
}

/// The ops endpoint's address unless `--ops-addr` says otherwise.
const DEFAULT_OPS_ADDR: &str = "0.0.0.0:9101";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rules = rules::load(args.service.rules.as_deref())?;
    let ServiceSetup {
        bus,
        keys,
        listener,
        metrics,
    } = args.service.setup(DEFAULT_OPS_ADDR).await?;
    #[cfg(feature = "fault-injection")]
    tracing::warn!(
        fault = ?engine::fault::active(),
        "built with the test-only fault-injection feature: never run this binary for real"
    );
    let mut config = EngineConfig {
        capacity: args.service.capacity,
        lease_idle: args.service.lease_idle(),
        pace: if args.unpaced {
            Pace::Unpaced
        } else {
            Pace::RealTime
        },
        ..EngineConfig::default()
    };
    if let Some(c) = args.service.consumer {
        config.consumer = c;
    }
    service::metric::register();
    let progress = Arc::new(Progress::default());
    let checks = vec![
        ops::redis_check(bus.clone()),
        tick_loop_check(progress.clone()),
    ];
    ops::run_with_ops("engine", listener, metrics, checks, |shutdown| {
        service::run(bus, keys, Arc::new(rules), config, progress, shutdown)
    })
    .await
    .context("engine service failed")?;
    tracing::info!("engine stopped");
    Ok(())
}

/// `/ready` fails when no tick loop has made progress for this long (ms).
const MAX_READY_STALL_MS: u64 = 5_000;

/// `/ready`: the tick loops are making progress.
fn tick_loop_check(progress: Arc<Progress>) -> Check {
    Arc::new(move || {
        let progress = progress.clone();
        Box::pin(async move {
            let last = progress.last_progress_ms.load(Ordering::Relaxed);
            let age = events::now_ms().saturating_sub(last);
            CheckResult {
                name: "tick_loop",
                ok: last > 0 && age < MAX_READY_STALL_MS,
                detail: format!(
                    "last progress {age} ms ago, {} matches",
                    progress.matches.load(Ordering::Relaxed)
                ),
            }
        })
    })
}
