//! Commits that wait for replica acknowledgements (`RedisBusConfig::replica_acks`) on a
//! master without a replica skip the wait instead of paying its full timeout on every
//! commit, and wait again once a replica has joined.

use std::time::{Duration, Instant};

use events::bus::{ReplicaAckStats, REPLICA_RECHECK};
use events::testkit::{unique_prefix, RedisServer};
use events::{Bus, IdSpec, RedisBus, RedisBusConfig, StreamId};

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_skip_the_wait_on_a_master_without_replicas_and_wait_again_once_one_joins() {
    let master = RedisServer::start().unwrap();
    let config = RedisBusConfig {
        replica_acks: 1,
        replica_ack_timeout: Duration::from_millis(100),
        ..RedisBusConfig::default()
    };
    let bus = RedisBus::connect(&master.url(), config).await.unwrap();
    let key = format!("{}:{{m:acks}}:tick", unique_prefix());
    let commit = |n: u64| {
        let (bus, key) = (bus.clone(), key.clone());
        async move {
            bus.append(&key, IdSpec::Explicit(StreamId::for_tick(n)), b"t", None)
                .await
                .unwrap()
        }
    };

    // No replica: the first commit waits its 100 ms and falls short, the master says it
    // has no replica, and the next commits (well within REPLICA_RECHECK) do not wait.
    for n in 1..=10 {
        commit(n).await;
    }
    assert_eq!(
        bus.replica_ack_stats(),
        ReplicaAckStats {
            waited: 1,
            short: 1,
            skipped: 9
        }
    );

    // A replica joins; after the recheck interval commits wait again, and are acknowledged.
    let replica = RedisServer::start().unwrap();
    let port = master.port().to_string();
    assert!(redis_cli(replica.port(), &["REPLICAOF", "127.0.0.1", &port]).contains("OK"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !redis_cli(master.port(), &["INFO", "replication"]).contains("state=online") {
        assert!(Instant::now() < deadline, "the replica did not come online");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(REPLICA_RECHECK).await;
    for n in 11..=15 {
        commit(n).await;
    }
    assert_eq!(
        bus.replica_ack_stats(),
        ReplicaAckStats {
            waited: 6,
            short: 1,
            skipped: 9
        }
    );
    // The replica has every commit (the ones made before it joined came with its sync).
    let on_replica = RedisBus::connect(&replica.url(), RedisBusConfig::default())
        .await
        .unwrap()
        .range(&key, StreamId::ZERO, StreamId::MAX, 100)
        .await
        .unwrap();
    assert_eq!(on_replica.len(), 15);
}
