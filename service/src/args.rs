//! What every leased service binary shares before it runs: its command-line settings
//! ([`ServiceArgs`]), logging set-up, the metrics recorder, the Redis connection and the
//! bound ops listener.

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::ops::install_metrics;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`); a second call does nothing.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
}

/// Command-line settings every leased service binary shares (flattened into its own).
#[derive(clap::Args, Debug, Clone)]
pub struct ServiceArgs {
    /// Redis URL: one node, `redis://[user:pass@]host:port`; or a Redis Cluster through
    /// seed nodes, `redis+cluster://[user:pass@]host:port,host:port,...` or a
    /// comma-separated list `redis://[user:pass@]host:port,host:port,...` (bare
    /// `host:port` items take the first one's credentials).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Replicas that must acknowledge each tick or step commit (Redis `WAIT`) before the
    /// next one; 0 keeps replication asynchronous (a failover may lose the last commits).
    #[arg(long, env = "CNIT_REDIS_WAIT_REPLICAS", default_value_t = 0)]
    pub redis_wait_replicas: usize,
    /// Longest wait, in milliseconds, for those acknowledgements.
    #[arg(long, env = "CNIT_REDIS_WAIT_MS", default_value_t = 100)]
    pub redis_wait_ms: u64,
    /// Stream key prefix.
    #[arg(long, env = "CNIT_PREFIX", default_value = events::keys::DEFAULT_PREFIX)]
    pub prefix: String,
    /// Address of the ops endpoint (/health, /ready, /metrics); each service has its own
    /// default port. Port 0 picks a free one: see `--addr-file`.
    #[arg(long, env = "CNIT_OPS_ADDR")]
    pub ops_addr: Option<String>,
    /// Once the ops endpoint is bound, write its address here as JSON (`{"ops":
    /// "127.0.0.1:PORT"}`), for whoever started the process with port 0.
    #[arg(long, env = "CNIT_ADDR_FILE")]
    pub addr_file: Option<std::path::PathBuf>,
    /// Most matches this instance runs.
    #[arg(long, env = "CNIT_CAPACITY", default_value_t = 64)]
    pub capacity: usize,
    /// Lease idle timeout in milliseconds before another instance takes a match over.
    #[arg(long, env = "CNIT_LEASE_IDLE_MS", default_value_t = 3000)]
    pub lease_idle_ms: u64,
    /// Consumer name (defaults to a random one).
    #[arg(long, env = "CNIT_CONSUMER")]
    pub consumer: Option<String>,
    /// Rules file (defaults to the built-in rules).
    #[arg(long, env = "CNIT_RULES")]
    pub rules: Option<std::path::PathBuf>,
}

/// What a service binary has once its shared settings are applied.
pub struct ServiceSetup {
    pub bus: events::RedisBus,
    pub keys: events::Keys,
    pub listener: tokio::net::TcpListener,
    pub metrics: PrometheusHandle,
}

/// Why a service binary could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "REDIS_URL (or --redis-url) is set but empty: give a Redis URL such as \
         redis://127.0.0.1:6379, or unset REDIS_URL to use that default"
    )]
    EmptyRedisUrl,
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("connecting to {url}: {source}")]
    Redis {
        url: String,
        source: events::BusError,
    },
    #[error("binding {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("writing the bound address to {path}: {source}")]
    AddrFile {
        path: String,
        source: std::io::Error,
    },
}

impl ServiceArgs {
    /// Logs to stderr (filter from `RUST_LOG`, default `info`), installs the metrics
    /// recorder, connects to Redis and binds the ops endpoint (`default_ops_addr` unless
    /// given).
    pub async fn setup(&self, default_ops_addr: &str) -> Result<ServiceSetup, SetupError> {
        // `REDIS_URL=` (exported but empty) reaches here as "", which the Redis client
        // would only call unparsable.
        if self.redis_url.trim().is_empty() {
            return Err(SetupError::EmptyRedisUrl);
        }
        init_tracing();
        let metrics = install_metrics().map_err(SetupError::Metrics)?;
        let config = events::RedisBusConfig {
            replica_acks: self.redis_wait_replicas,
            replica_ack_timeout: Duration::from_millis(self.redis_wait_ms),
            ..events::RedisBusConfig::default()
        };
        let bus = events::RedisBus::connect(&self.redis_url, config)
            .await
            .map_err(|source| SetupError::Redis {
                url: events::bus::redis_cluster::redact(&self.redis_url),
                source,
            })?;
        let addr = self.ops_addr.as_deref().unwrap_or(default_ops_addr);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SetupError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        if let Some(path) = &self.addr_file {
            let bound = listener.local_addr().map_err(|source| SetupError::Bind {
                addr: addr.to_string(),
                source,
            })?;
            crate::addr_file::write(path, &[("ops", bound)]).map_err(|source| {
                SetupError::AddrFile {
                    path: path.display().to_string(),
                    source,
                }
            })?;
        }
        Ok(ServiceSetup {
            bus,
            keys: events::Keys::new(self.prefix.clone()),
            listener,
            metrics,
        })
    }

    pub fn lease_idle(&self) -> Duration {
        Duration::from_millis(self.lease_idle_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_redis_url_is_named_as_such() {
        let args = ServiceArgs {
            redis_url: String::new(),
            redis_wait_replicas: 0,
            redis_wait_ms: 100,
            prefix: "t".into(),
            ops_addr: None,
            addr_file: None,
            capacity: 1,
            lease_idle_ms: 1,
            consumer: None,
            rules: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = match rt.block_on(args.setup("127.0.0.1:0")) {
            Ok(_) => panic!("an empty REDIS_URL was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("REDIS_URL") && err.contains("empty"), "{err}");
    }
}
