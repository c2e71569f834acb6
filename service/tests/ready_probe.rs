//! Readiness probes across a Redis restart: the first `/ready` check after the server
//! came back on the same port answers ready (the connection the restart broke is replaced
//! by a fresh one and the probe retried), for the Redis PING check and the generic bus
//! check alike. These tests restart their own server, so they never use `REDIS_URL`.

use events::testkit::{unique_prefix, RedisServer};
use events::{Bus, IdSpec, RedisBus, RedisBusConfig};
use service::ops::{bus_check, redis_check, Check};

async fn restart(mut server: RedisServer) -> RedisServer {
    tokio::task::spawn_blocking(move || {
        server.restart().expect("redis-server restarts");
        server
    })
    .await
    .unwrap()
}

async fn probe(check: &Check) -> (bool, String) {
    let r = check().await;
    (r.ok, r.detail)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_probe_after_a_redis_restart_is_ready() {
    let mut server = RedisServer::start()
        .unwrap_or_else(|e| panic!("this test needs a local redis-server: {e}"));
    let port = server.port();
    let bus = RedisBus::connect(&server.url(), RedisBusConfig::default())
        .await
        .unwrap();
    let stream = format!("{}:matches", unique_prefix());
    bus.append(&stream, IdSpec::Auto, b"m", None).await.unwrap();
    let checks = [
        ("redis", redis_check(bus.clone())),
        ("bus", bus_check(bus.clone(), stream.clone())),
    ];
    for (name, check) in &checks {
        let (ok, detail) = probe(check).await;
        assert!(ok, "{name} before the restart: {detail}");
    }
    for (name, check) in &checks {
        server = restart(server).await;
        assert_eq!(server.port(), port, "restarted on the same port");
        // The server is back: the very first probe says so.
        let (ok, detail) = probe(check).await;
        assert!(ok, "{name}: first probe after the restart failed: {detail}");
    }
}
