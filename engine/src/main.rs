//! The engine service binary: parse config, connect to Redis, serve ops endpoints, run.

use std::sync::Arc;

use ::service::ops;
use ::service::{progress_check, ServiceArgs, ServiceSetup};
use anyhow::Context;
use clap::Parser;
use engine::service::{self, EngineConfig, Pace, Progress};

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
        progress_check("tick_loop", progress.clone(), MAX_READY_STALL_MS, None),
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
