//! The economy service binary: parse config, connect to Redis, serve ops endpoints, run.

use std::sync::Arc;

use ::service::ops;
use ::service::{progress_check, ServiceArgs, ServiceSetup};
use anyhow::Context;
use clap::Parser;
use economy::service::{self, EconomyConfig, Progress};

/// Runs the economy (ledger, production, harvester AI, AI opponents) of the matches this
/// instance claims.
#[derive(Parser, Debug)]
#[command(name = "economy", version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
    /// Do not run AI opponents in this instance.
    #[arg(long)]
    no_ai: bool,
}

/// The ops endpoint's address unless `--ops-addr` says otherwise.
const DEFAULT_OPS_ADDR: &str = "0.0.0.0:9102";

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
    let mut config = EconomyConfig {
        capacity: args.service.capacity,
        lease_idle: args.service.lease_idle(),
        run_ai: !args.no_ai,
        ..EconomyConfig::default()
    };
    if let Some(c) = args.service.consumer {
        config.consumer = c;
    }
    service::metric::register();
    let progress = Arc::new(Progress::default());
    let checks = vec![
        ops::redis_check(bus.clone()),
        progress_check(
            "economy_loop",
            progress.clone(),
            MAX_READY_STALL_MS,
            Some(MAX_READY_LAG),
        ),
    ];
    ops::run_with_ops("economy", listener, metrics, checks, |shutdown| {
        service::run(bus, keys, Arc::new(rules), config, progress, shutdown)
    })
    .await
    .context("economy service failed")?;
    tracing::info!("economy stopped");
    Ok(())
}

/// `/ready` fails when no economy loop has made progress for this long (ms).
const MAX_READY_STALL_MS: u64 = 5_000;

/// Ticks the economy may lag behind the engine and still report ready.
const MAX_READY_LAG: u64 = 200;
