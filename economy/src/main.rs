//! The economy service binary: parse config, connect to Redis, serve ops endpoints, run.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use economy::service::{self, EconomyConfig, Progress};
use events::ops::{self, Check, CheckResult, ServiceArgs, ServiceSetup};

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
        economy_loop_check(progress.clone()),
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

/// `/ready`: the economy keeps up with the engine and its loops progress.
fn economy_loop_check(progress: Arc<Progress>) -> Check {
    Arc::new(move || {
        let progress = progress.clone();
        Box::pin(async move {
            let last = progress.last_progress_ms.load(Ordering::Relaxed);
            let age = events::now_ms().saturating_sub(last);
            let lag = progress.lag.load(Ordering::Relaxed);
            CheckResult {
                name: "economy_loop",
                ok: last > 0 && age < MAX_READY_STALL_MS && lag < MAX_READY_LAG,
                detail: format!(
                    "last progress {age} ms ago, {} matches, {lag} ticks behind",
                    progress.matches.load(Ordering::Relaxed)
                ),
            }
        })
    })
}
