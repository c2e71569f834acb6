//! The `gateway` binary: with no `--redis-url` it runs the whole game in one process
//! (gateway + engine + economy over the in-memory bus) and prints the URL to open; with
//! `--redis-url` it runs the gateway alone against Redis.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use events::{Bus, Keys, MemoryBus, RedisBus, RedisBusConfig};
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
    /// Redis URL; without it the game runs embedded over the in-memory bus.
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
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
        embedded: args.redis_url.is_none(),
        abandoned_match_after: args
            .redis_url
            .is_none()
            .then_some(gateway::limits::ABANDONED_MATCH_AFTER),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    match &args.redis_url {
        Some(url) => {
            let bus = RedisBus::connect(url, RedisBusConfig::default())
                .await
                .with_context(|| format!("connecting to Redis at {url}"))?;
            announce(addr, "gateway against Redis");
            serve(listener, bus, config).await
        }
        None => {
            let bus = MemoryBus::new();
            let services = embedded::start(bus.clone(), &config);
            announce(addr, "embedded: gateway + engine + economy in one process");
            let res = serve(listener, bus, config).await;
            services.stop().await;
            res
        }
    }
}

fn announce(addr: SocketAddr, mode: &str) {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    tracing::info!(%addr, mode, "listening");
    println!(
        "Command and Independent Thought ({mode}): open http://{host}:{}/",
        addr.port()
    );
}

async fn serve<B: Bus>(
    listener: tokio::net::TcpListener,
    bus: B,
    config: GatewayConfig,
) -> anyhow::Result<()> {
    use events::ops;
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
    let res = gateway::run(listener, bus, config, async {
        ops::shutdown_signal().await;
        tracing::info!("shutting down");
    })
    .await;
    let _ = stop_tx.send(true);
    let _ = watch.await;
    res.context("serving HTTP")
}

/// The engine and economy services, in process, over the same bus as the gateway.
mod embedded {
    use std::sync::Arc;
    use std::time::Duration;

    use events::MemoryBus;
    use gateway::GatewayConfig;
    use tokio::sync::watch;
    use tokio::task::JoinHandle;

    /// How long stopping waits for the services to hand their matches over.
    const STOP_GRACE: Duration = Duration::from_secs(5);

    pub struct Services {
        stop: watch::Sender<bool>,
        tasks: Vec<(&'static str, JoinHandle<Result<(), events::BusError>>)>,
    }

    async fn stopped(mut rx: watch::Receiver<bool>) {
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Starts engine and economy over the in-memory bus.
    pub fn start(bus: MemoryBus, config: &GatewayConfig) -> Services {
        let (stop, rx) = watch::channel(false);
        let engine = tokio::spawn(engine::service::run(
            bus.clone(),
            config.keys.clone(),
            config.rules.clone(),
            engine::service::EngineConfig::default(),
            Arc::new(engine::service::Progress::default()),
            stopped(rx.clone()),
        ));
        let economy = tokio::spawn(economy::service::run(
            bus,
            config.keys.clone(),
            config.rules.clone(),
            economy::service::EconomyConfig::default(),
            Arc::new(economy::service::Progress::default()),
            stopped(rx),
        ));
        Services {
            stop,
            tasks: vec![("engine", engine), ("economy", economy)],
        }
    }

    impl Services {
        /// Stops the services and waits (bounded) for them to finish.
        pub async fn stop(self) {
            self.stop.send_replace(true);
            for (name, task) in self.tasks {
                match tokio::time::timeout(STOP_GRACE, task).await {
                    Ok(Ok(Ok(()))) => {}
                    Ok(Ok(Err(e))) => tracing::error!(service = name, error = %e, "service failed"),
                    Ok(Err(e)) => tracing::error!(service = name, error = %e, "service panicked"),
                    Err(_) => tracing::warn!(service = name, "service did not stop in time"),
                }
            }
        }
    }
}
