//! Shared harness of the bus tests: a context per test (bus, second bus, unique prefix)
//! for every bus, and the macro that runs one generic test body against each: the
//! in-memory bus, one Redis node, and a Redis Cluster of three masters and three replicas.

#![allow(dead_code)]

use std::time::Duration;

use events::testkit::{redis_url_for_tests, unique_prefix, PrefixGuard, TestRedis};
use events::{Bus, MemoryBus, RedisBus, RedisBusConfig};

/// What a generic test body gets: a bus, a second independent client of the same store
/// (a separate connection on Redis, a clone in memory), and keys unique to this test.
pub struct Ctx<B> {
    pub bus: B,
    pub other: B,
    pub prefix: String,
    // Drop order matters: delete the keys before the server (if ours) goes away.
    _guard: Option<PrefixGuard>,
    _redis: Option<TestRedis>,
}

impl<B: Bus> Ctx<B> {
    /// A stream key unique to this test.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{}", self.prefix, name)
    }
}

pub fn memory() -> Ctx<MemoryBus> {
    let bus = MemoryBus::new();
    Ctx {
        other: bus.clone(),
        bus,
        prefix: unique_prefix(),
        _guard: None,
        _redis: None,
    }
}

pub async fn redis() -> Ctx<RedisBus> {
    let redis = redis_url_for_tests();
    let bus = connect(redis.url()).await;
    let other = connect(redis.url()).await;
    let prefix = unique_prefix();
    Ctx {
        bus,
        other,
        _guard: Some(PrefixGuard::new(redis.url(), prefix.clone())),
        prefix,
        _redis: Some(redis),
    }
}

/// A context on a Redis Cluster: the test's keys share the hash tag of its prefix
/// (`{t-...}:name`), as the keys of one match share `{m:ID}`, so its multi-key batches stay
/// on one slot. The cluster itself belongs to the caller.
pub async fn cluster(url: &str) -> Ctx<RedisBus> {
    let bus = connect(url).await;
    let other = connect(url).await;
    assert!(bus.is_cluster() && other.is_cluster());
    Ctx {
        bus,
        other,
        prefix: format!("{{{}}}", unique_prefix()),
        _guard: None,
        _redis: None,
    }
}

/// Runs one generic body on a fresh cluster context, catching its panic so that one
/// cluster serves every body of the suite; returns the failure, if any.
pub async fn run_on_cluster<F, Fut>(url: &str, name: &str, body: F) -> Option<String>
where
    F: FnOnce(Ctx<RedisBus>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures::FutureExt;
    let cx = cluster(url).await;
    let started = std::time::Instant::now();
    let outcome = std::panic::AssertUnwindSafe(body(cx)).catch_unwind().await;
    match outcome {
        Ok(()) => {
            eprintln!("cluster::{name} ... ok ({:?})", started.elapsed());
            None
        }
        Err(p) => {
            let why = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into());
            eprintln!("cluster::{name} ... FAILED: {why}");
            Some(format!("{name}: {why}"))
        }
    }
}

pub async fn connect(url: &str) -> RedisBus {
    RedisBus::connect(url, RedisBusConfig::default())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to test redis at {url}: {e}"))
}

/// Generous bound for "a blocked read woke up because of an append": far below the BLOCK
/// time the tests use, far above any wake-up latency even on a loaded machine.
pub const WAKE_BOUND: Duration = Duration::from_millis(1200);

/// The BLOCK time of wake-up tests.
pub const BLOCK: Duration = Duration::from_millis(1500);

/// Generates, for every listed generic body `async fn name<B: Bus>(cx: &Ctx<B>)`, a
/// `memory::name` and a `redis::name` test, and one `cluster::every_body` test that runs
/// every body on one throwaway Redis Cluster (starting six nodes per body would cost more
/// than the bodies) and names each body that failed.
#[macro_export]
macro_rules! bus_tests {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let cx = $crate::common::memory();
                    super::$name(&cx).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let cx = $crate::common::redis().await;
                    super::$name(&cx).await;
                }
            )*
        }
        mod cluster {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn every_body() {
                let cluster = events::testkit::redis_cluster_for_tests();
                let url = cluster.url();
                let mut failed = Vec::new();
                $(
                    failed.extend(
                        $crate::common::run_on_cluster(&url, stringify!($name), |cx| async move {
                            super::$name(&cx).await
                        })
                        .await,
                    );
                )*
                assert!(failed.is_empty(), "failed on the cluster: {failed:#?}");
            }
        }
    };
}
