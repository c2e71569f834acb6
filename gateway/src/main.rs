//! The `gateway` binary: with no `--redis-url` (or an empty one) it runs the whole game in
//! one process (gateway + engine + economy over the in-memory bus) and prints the URL to
//! open; with `--redis-url` it runs the gateway alone against Redis. Either way `/metrics`
//! (with `/health` and `/ready`) is served on the ops address, not on the player port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use events::{Bus, Keys, MemoryBus, RedisBus, RedisBusConfig};
use gateway::embedded::{self, EmbeddedConfig};
use gateway::GatewayConfig;

#[derive(Parser, Debug)]
#[command(
    name = "gateway",
    about = "Command and Independent Thought: gateway and browser client"
)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the URL is printed).
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address of the ops endpoint (/metrics, /health, /ready); port 0 picks a free port
    /// (the address is printed).
    #[arg(long, env = "OPS_ADDR", default_value = DEFAULT_OPS_ADDR)]
    ops_addr: SocketAddr,
    /// Once both listeners are bound, write their addresses here as JSON (`{"listen":
    /// "127.0.0.1:PORT", "ops": "127.0.0.1:PORT"}`), for whoever started the process with
    /// port 0.
    #[arg(long, env = "GATEWAY_ADDR_FILE")]
    addr_file: Option<std::path::PathBuf>,
    /// Redis URL (one node `redis://[user:pass@]host:port`, or a Redis Cluster:
    /// `redis+cluster://[user:pass@]host:port,host:port,...` or a comma-separated list of
    /// seed nodes); without it (or with an empty one) the game runs embedded over the
    /// in-memory bus.
    #[arg(long, env = "REDIS_URL")]
    redis_url: Option<String>,
    /// Stream key prefix.
    #[arg(long, env = "CNIT_PREFIX", default_value = events::keys::DEFAULT_PREFIX)]
    prefix: String,
    /// Secret for signing player tokens (shared by all gateway instances); random if unset.
    #[arg(long, env = "GATEWAY_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    /// Lifetime of player tokens, in seconds.
    #[arg(long, env = "GATEWAY_TOKEN_TTL_SECS", default_value_t = 12 * 3600)]
    token_ttl_secs: u64,
    /// A rules file to use instead of the shipped one.
    #[arg(long, env = "CNIT_RULES")]
    rules: Option<std::path::PathBuf>,
}

/// The ops endpoint's address unless `--ops-addr` says otherwise (engine 9101, economy
/// 9102, gateway 9103).
const DEFAULT_OPS_ADDR: &str = "0.0.0.0:9103";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    // `REDIS_URL=` (exported but empty) means no Redis: embedded mode.
    let redis_url = args.redis_url.clone().filter(|u| !u.trim().is_empty());
    let rules = match &args.rules {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading rules file {}", p.display()))?;
            engine::Rules::from_toml(&text).context("loading the rules file")?
        }
        None => engine::Rules::standard(),
    };
    let config = GatewayConfig {
        keys: Keys::new(args.prefix.clone()),
        rules: Arc::new(rules),
        token_secret: args.token_secret.clone().map(String::into_bytes),
        token_ttl: Duration::from_secs(args.token_ttl_secs),
        embedded: redis_url.is_none(),
        abandoned_match_after: redis_url
            .is_none()
            .then_some(gateway::limits::ABANDONED_MATCH_AFTER),
        kept_recordings: redis_url.is_none().then_some(embedded::KEPT_RECORDINGS),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let ops = tokio::net::TcpListener::bind(args.ops_addr)
        .await
        .with_context(|| format!("binding the ops endpoint {}", args.ops_addr))?;
    let ops_addr = ops.local_addr().context("reading the ops address")?;
    if let Some(path) = &args.addr_file {
        service::addr_file::write(path, &[("listen", addr), ("ops", ops_addr)])
            .with_context(|| format!("writing the bound addresses to {}", path.display()))?;
    }
    // One recorder for the whole process, installed before any service records.
    gateway::metrics::install();
    match &redis_url {
        Some(url) => {
            let bus = RedisBus::connect(url, RedisBusConfig::default())
                .await
                .with_context(|| format!("connecting to Redis at {url}"))?;
            announce(addr, ops_addr, "gateway against Redis");
            serve(listener, ops, bus, config).await
        }
        None => {
            let bus = MemoryBus::new();
            embedded::register_metrics();
            let services = embedded::start(bus.clone(), &config, EmbeddedConfig::default());
            announce(
                addr,
                ops_addr,
                "embedded: gateway + engine + economy in one process",
            );
            let res = serve(listener, ops, bus, config).await;
            services.stop().await;
            res
        }
    }
}

/// `http://HOST:PORT/` of a bound address (an unspecified host reads as 127.0.0.1).
fn url(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    format!("http://{host}:{}/", addr.port())
}

fn announce(addr: SocketAddr, ops: SocketAddr, mode: &str) {
    tracing::info!(%addr, mode, "listening");
    tracing::info!(addr = %ops, "ops endpoint listening (/metrics, /health, /ready)");
    println!(
        "Command and Independent Thought ({mode}): open {}",
        url(addr)
    );
    println!("ops endpoint (/metrics, /health, /ready): {}", url(ops));
}

async fn serve<B: Bus>(
    listener: tokio::net::TcpListener,
    ops: tokio::net::TcpListener,
    bus: B,
    config: GatewayConfig,
) -> anyhow::Result<()> {
    use service::ops;
    // RSS and its growth trend, like every service (the memory alerts read them).
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let watch = tokio::spawn(ops::memory_watch(
        "gateway",
        ops::MEMORY_SAMPLE_EVERY,
        ops::MEMORY_WINDOW,
        ops::MEMORY_WARN_BYTES_PER_MINUTE,
        async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        },
    ));
    let res = gateway::run_with_ops(listener, Some(ops), bus, config, async {
        ops::shutdown_signal().await;
        tracing::info!("shutting down");
    })
    .await;
    let _ = stop_tx.send(true);
    let _ = watch.await;
    res.context("serving HTTP")
}
