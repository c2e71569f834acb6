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
    let checks = readiness_checks(bus.clone(), progress.clone());
    let listener = tokio::net::TcpListener::bind(&args.ops_addr)
        .await
        .with_context(|| format!("binding {}", args.ops_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "ops endpoint listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let ops_server = tokio::spawn({
        let stop = stopped(stop_rx.clone());
        async move {
            axum::serve(listener, ops::router("economy", metrics, checks))
                .with_graceful_shutdown(stop)
                .await
        }
    });
    let watch = tokio::spawn(ops::memory_watch(
        "economy",
        Duration::from_secs(15),
        40,
        5.0 * 1024.0 * 1024.0,
        stopped(stop_rx.clone()),
    ));
    let svc = service::run(
        bus,
        Keys::new(args.prefix),
        Arc::new(rules),
        config,
        progress,
        ops::shutdown_signal(),
    )
    .await;
    let _ = stop_tx.send(true);
    let _ = ops_server.await;
    let _ = watch.await;
    svc.context("economy service failed")?;
    tracing::info!("economy stopped");
    Ok(())
}

/// Ticks the economy may lag behind the engine and still report ready.
const MAX_READY_LAG: u64 = 200;

/// `/ready`: Redis answers, the economy keeps up with the engine, and its loops progress.
fn readiness_checks(bus: RedisBus, progress: Arc<Progress>) -> Vec<Check> {
    let redis: Check = Arc::new(move || {
        let bus = bus.clone();
        Box::pin(async move {
            match bus.ping().await {
                Ok(()) => CheckResult {
                    name: "redis",
                    ok: true,
                    detail: "PONG".into(),
                },
                Err(e) => CheckResult {
                    name: "redis",
                    ok: false,
                    detail: e.to_string(),
                },
            }
        })
    });
    let ticking: Check = Arc::new(move || {
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
    });
    vec![redis, ticking]
}
