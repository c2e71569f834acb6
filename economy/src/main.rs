//! The economy service binary: parse config, connect to Redis, serve ops endpoints, run.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use economy::service::{self, EconomyConfig, Progress};
use engine::Rules;
use events::ops::{self, Check, CheckResult};
use events::{Keys, RedisBus, RedisBusConfig};

/// Runs the economy (ledger, production, harvester AI, AI opponents) of the matches this instance claims.
#[derive(Parser, Debug)]
#[command(name = "economy", version)]
struct Args {
    /// Redis URL.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Stream key prefix.
    #[arg(long, env = "CNIT_PREFIX", default_value = events::keys::DEFAULT_PREFIX)]
    prefix: String,
    /// Address of the ops endpoint (/health, /ready, /metrics).
    #[arg(long, env = "CNIT_OPS_ADDR", default_value = "0.0.0.0:9102")]
    ops_addr: String,
    /// Most matches this instance runs.
    #[arg(long, env = "CNIT_CAPACITY", default_value_t = 64)]
    capacity: usize,
    /// Lease idle timeout in milliseconds before another instance takes a match over.
    #[arg(long, env = "CNIT_LEASE_IDLE_MS", default_value_t = 3000)]
    lease_idle_ms: u64,
    /// Consumer name (defaults to a random one).
    #[arg(long, env = "CNIT_CONSUMER")]
    consumer: Option<String>,
    /// Do not run AI opponents in this instance.
    #[arg(long)]
    no_ai: bool,
    /// Rules file (defaults to the built-in rules).
    #[arg(long, env = "CNIT_RULES")]
    rules: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let rules = match &args.rules {
        Some(p) => Rules::from_toml(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?,
        None => Rules::standard(),
    };
    let metrics = ops::install_metrics().map_err(anyhow::Error::msg)?;
    let bus = RedisBus::connect(&args.redis_url, RedisBusConfig::default())
        .await
        .with_context(|| format!("connecting to {}", args.redis_url))?;
    let mut config = EconomyConfig {
        capacity: args.capacity,
        lease_idle: Duration::from_millis(args.lease_idle_ms),
        run_ai: !args.no_ai,
        ..EconomyConfig::default()
    };
    if let Some(c) = args.consumer {
        config.consumer = c;
    }
    let progress = Arc::new(Progress::default());
    let checks = vec![
        ops::redis_check(bus.clone()),
        economy_loop_check(progress.clone()),
    ];
    let listener = tokio::net::TcpListener::bind(&args.ops_addr)
        .await
        .with_context(|| format!("binding {}", args.ops_addr))?;
    let keys = Keys::new(args.prefix);
    ops::run_with_ops("economy", listener, metrics, checks, |shutdown| {
        service::run(bus, keys, Arc::new(rules), config, progress, shutdown)
    })
    .await
    .context("economy service failed")?;
    tracing::info!("economy stopped");
    Ok(())
}

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
                ok: last > 0 && age < 5_000 && lag < MAX_READY_LAG,
                detail: format!(
                    "last progress {age} ms ago, {} matches, {lag} ticks behind",
                    progress.matches.load(Ordering::Relaxed)
                ),
            }
        })
    })
}
