//! Shared harness of the bus tests: a context per test (bus, second bus, unique prefix)
//! for both buses, and the macro that runs one generic test body against each.

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
/// `memory::name` and a `redis::name` test.
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
    };
}
