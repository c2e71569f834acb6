//! `RedisBus` on a Redis Cluster, beyond the conformance suite (which runs every generic
//! body on a cluster too): batches across slots are refused before they reach a server,
//! listing keys covers every shard, and blocking reads follow a slot that moves (`ASK`
//! while it migrates, `MOVED` after) and a master that dies (its promoted replica).

use std::time::{Duration, Instant};

use events::bus::redis_cluster::key_slot;
use events::testkit::{redis_cluster_for_tests, unique_prefix, RedisCluster};
use events::{Append, Bus, BusError, IdSpec, Keys, MatchId, RedisBus, RedisBusConfig, StreamId};

async fn connect(url: &str) -> RedisBus {
    RedisBus::connect(url, RedisBusConfig::default())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test cluster {url}: {e}"))
}

fn cmd(parts: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd(parts[0]);
    for p in &parts[1..] {
        c.arg(*p);
    }
    c
}

fn text(v: redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        redis::Value::SimpleString(s) => s,
        other => panic!("expected a string, got {other:?}"),
    }
}

/// Retries a bus call while it fails with a transient error (a failover in progress),
/// for at most `within`.
async fn retry<T, F, Fut>(within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BusError>>,
{
    let deadline = Instant::now() + within;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("bus call failed: {e}"),
        }
    }
}

/// Two keys in different slots served by different masters.
fn keys_on_two_masters(cluster: &mut RedisCluster, prefix: &str) -> (String, String) {
    let a = format!("{prefix}:{{a}}");
    let owner = cluster.master_of(&a).unwrap();
    for i in 0.. {
        let b = format!("{prefix}:{{b{i}}}");
        if cluster.master_of(&b).unwrap() != owner {
            return (a, b);
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_across_slots_is_refused_and_writes_nothing() {
    let mut cluster = redis_cluster_for_tests();
    let bus = connect(&cluster.url()).await;
    assert!(bus.is_cluster());
    let keys = Keys::new(unique_prefix());
    let (m1, m2) = (MatchId::new("one").unwrap(), MatchId::new("two").unwrap());
    assert_ne!(
        key_slot(keys.tick(&m1).as_bytes()),
        key_slot(keys.tick(&m2).as_bytes())
    );
    let item = |stream: String| Append {
        stream,
        id: IdSpec::Explicit(StreamId::for_tick(1)),
        payload: b"t".to_vec(),
        maxlen: None,
    };
    match bus
        .append_batch(vec![item(keys.tick(&m1)), item(keys.tick(&m2))])
        .await
    {
        Err(BusError::CrossSlot { first, other }) => {
            assert_eq!(first, keys.tick(&m1));
            assert_eq!(other, keys.tick(&m2));
        }
        r => panic!("expected CrossSlot, got {r:?}"),
    }
    assert_eq!(bus.len(&keys.tick(&m1)).await.unwrap(), 0);
    assert_eq!(bus.len(&keys.tick(&m2)).await.unwrap(), 0);
    // One match's streams go together.
    let batch = vec![
        item(keys.tick(&m1)),
        Append {
            stream: keys.view(&m1),
            id: IdSpec::Auto,
            payload: b"v".to_vec(),
            maxlen: Some(10),
        },
    ];
    assert_eq!(bus.append_batch(batch).await.unwrap().len(), 2);
    // The global streams live on one slot each and take single-key commands.
    bus.append(&keys.matches(), IdSpec::Auto, b"m", None)
        .await
        .unwrap();
    bus.append(&keys.dlq(), IdSpec::Auto, b"d", None)
        .await
        .unwrap();
    let listed = bus.keys(keys.prefix()).await.unwrap();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(cluster.cleanup_prefix(keys.prefix()).unwrap() >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_lists_the_streams_of_every_shard() {
    let mut cluster = redis_cluster_for_tests();
    let bus = connect(&cluster.url()).await;
    let prefix = unique_prefix();
    let mut expected = Vec::new();
    let mut masters = std::collections::BTreeSet::new();
    for i in 0..30 {
        let key = format!("{prefix}:{{k{i}}}");
        masters.insert(cluster.master_of(&key).unwrap());
        bus.append(&key, IdSpec::Auto, b"x", None).await.unwrap();
        expected.push(key);
    }
    assert_eq!(masters.len(), 3, "30 tags should land on all three masters");
    expected.sort();
    assert_eq!(bus.keys(&prefix).await.unwrap(), expected);
}

/// Moves `slot` from master `from` to master `to` in the steps `redis-cli --cluster
/// reshard` takes; `between` runs while the slot is migrating (before any key moved).
async fn migrate_slot<F, Fut>(cluster: &RedisCluster, slot: u16, from: u16, to: u16, between: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let id = |port| {
        text(
            cluster
                .node_query(port, &cmd(&["CLUSTER", "MYID"]))
                .unwrap(),
        )
    };
    let (from_id, to_id) = (id(from), id(to));
    let slot = slot.to_string();
    cluster
        .node_query(
            to,
            &cmd(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]),
        )
        .unwrap();
    cluster
        .node_query(
            from,
            &cmd(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]),
        )
        .unwrap();
    between().await;
    loop {
        let keys = cluster
            .node_query(from, &cmd(&["CLUSTER", "GETKEYSINSLOT", &slot, "100"]))
            .unwrap();
        let redis::Value::Array(keys) = keys else {
            panic!("bad GETKEYSINSLOT reply");
        };
        if keys.is_empty() {
            break;
        }
        let mut migrate = cmd(&[
            "MIGRATE",
            "127.0.0.1",
            &to.to_string(),
            "",
            "0",
            "5000",
            "KEYS",
        ]);
        for k in keys {
            migrate.arg(text(k));
        }
        cluster.node_query(from, &migrate).unwrap();
    }
    // The new owner first, then the old one, then everyone else (as the docs advise).
    let mut order = vec![to, from];
    let mut cluster_ports: Vec<u16> = {
        let mut all = Vec::new();
        let nodes = cluster.slot_owners(to).unwrap();
        for (_, _, p) in nodes {
            all.push(p);
        }
        all
    };
    cluster_ports.sort();
    cluster_ports.dedup();
    order.extend(cluster_ports.into_iter().filter(|p| *p != to && *p != from));
    for port in order {
        cluster
            .node_query(port, &cmd(&["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]))
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reads_follow_a_migrating_slot() {
    let mut cluster = redis_cluster_for_tests();
    let bus = connect(&cluster.url()).await;
    let prefix = unique_prefix();
    let (stream, fresh) = (format!("{prefix}:{{mv}}:a"), format!("{prefix}:{{mv}}:b"));
    let slot = key_slot(stream.as_bytes());
    let from = cluster.master_of(&stream).unwrap();
    let to = *cluster
        .masters()
        .unwrap()
        .iter()
        .find(|p| **p != from)
        .unwrap();
    bus.create_group(&stream, "g", StreamId::ZERO)
        .await
        .unwrap();
    bus.append(&stream, IdSpec::Auto, b"before", None)
        .await
        .unwrap();
    // A blocking read on the old owner: the bus now knows where the slot lives.
    let got = bus
        .read_group(&stream, "g", "c", 10, Some(Duration::from_millis(100)))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);

    migrate_slot(&cluster, slot, from, to, || async {
        // While the slot migrates, a stream that does not exist on the old owner is
        // served by the new one: the old owner answers ASK.
        let id = bus
            .append(&fresh, IdSpec::Auto, b"asked", None)
            .await
            .unwrap();
        let got = bus
            .read_after(&fresh, StreamId::ZERO, 10, Some(Duration::from_millis(500)))
            .await
            .unwrap();
        assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);
        assert_eq!(got[0].payload, b"asked");
    })
    .await;
    assert_eq!(cluster.master_of(&stream).unwrap(), to);

    // The bus still maps the slot to the old owner: its blocking read gets MOVED and
    // goes to the new one, where an append wakes it up.
    let reader = {
        let bus = bus.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            bus.read_group(&stream, "g", "c", 10, Some(Duration::from_millis(1500)))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = bus
        .append(&stream, IdSpec::Auto, b"after", None)
        .await
        .unwrap();
    let got = reader.await.unwrap().unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(bus.pending(&stream, "g", 10).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reads_move_to_the_promoted_replica() {
    let mut cluster = redis_cluster_for_tests();
    let bus = connect(&cluster.url()).await;
    let prefix = unique_prefix();
    let (stream, elsewhere) = keys_on_two_masters(&mut cluster, &prefix);
    bus.create_group(&stream, "g", StreamId::ZERO)
        .await
        .unwrap();
    bus.create_group(&elsewhere, "g", StreamId::ZERO)
        .await
        .unwrap();
    let first = bus
        .append(&stream, IdSpec::Auto, b"one", None)
        .await
        .unwrap();
    let got = bus
        .read_group(&stream, "g", "c", 10, Some(Duration::from_millis(100)))
        .await
        .unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![first]);
    // Replication is asynchronous: wait until the replica has all of it before the kill.
    let master = cluster.master_of(&stream).unwrap();
    let wait = cluster
        .node_query(master, &cmd(&["WAIT", "1", "2000"]))
        .unwrap();
    assert_eq!(
        wait,
        redis::Value::Int(1),
        "the replica did not acknowledge"
    );

    cluster.kill(master).unwrap();
    let killed = Instant::now();
    // The other shard keeps working throughout.
    retry(Duration::from_secs(5), || {
        bus.append(&elsewhere, IdSpec::Auto, b"still", None)
    })
    .await;
    // Reads of the dead master's slot fail transiently until its replica takes over.
    let got = retry(Duration::from_secs(30), || {
        bus.read_group(&stream, "g", "c", 10, Some(Duration::from_millis(100)))
    })
    .await;
    assert!(got.is_empty(), "{got:?}");
    eprintln!(
        "blocking reads resumed {:?} after the kill",
        killed.elapsed()
    );
    cluster.wait_ok(Duration::from_secs(30)).unwrap();
    let promoted = cluster.master_of(&stream).unwrap();
    assert_ne!(promoted, master);

    let reader = {
        let bus = bus.clone();
        let stream = stream.clone();
        tokio::spawn(async move {
            bus.read_group(&stream, "g", "c", 10, Some(Duration::from_millis(1500)))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = bus
        .append(&stream, IdSpec::Auto, b"two", None)
        .await
        .unwrap();
    let got = reader.await.unwrap().unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);
    // The entry delivered before the failover is still pending on the promoted replica.
    assert_eq!(
        bus.pending(&stream, "g", 10)
            .await
            .unwrap()
            .iter()
            .map(|p| p.id)
            .collect::<Vec<_>>(),
        vec![first, id]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_replica_acks_a_commit_survives_the_failover_right_after_it() {
    let mut cluster = redis_cluster_for_tests();
    let config = RedisBusConfig {
        replica_acks: 1,
        replica_ack_timeout: Duration::from_secs(2),
        ..RedisBusConfig::default()
    };
    let bus = RedisBus::connect(&cluster.url(), config).await.unwrap();
    let keys = Keys::new(unique_prefix());
    let m = MatchId::new("acked").unwrap();
    let master = cluster.master_of(&keys.tick(&m)).unwrap();
    // Commits in a burst, the master killed right after the last one returned: every
    // commit was acknowledged by the replica that gets promoted.
    let mut ticks = Vec::new();
    for n in 1..=200u64 {
        let batch = vec![
            Append {
                stream: keys.tick(&m),
                id: IdSpec::Explicit(StreamId::for_tick(n)),
                payload: n.to_le_bytes().to_vec(),
                maxlen: None,
            },
            Append {
                stream: keys.view(&m),
                id: IdSpec::Auto,
                payload: b"v".to_vec(),
                maxlen: Some(50),
            },
        ];
        bus.append_batch(batch).await.unwrap();
        ticks.push(StreamId::for_tick(n));
    }
    cluster.kill(master).unwrap();
    let tick_key = keys.tick(&m);
    let got = retry(Duration::from_secs(30), || {
        bus.range(&tick_key, StreamId::ZERO, StreamId::MAX, 1000)
    })
    .await;
    cluster.wait_ok(Duration::from_secs(30)).unwrap();
    assert_ne!(cluster.master_of(&keys.tick(&m)).unwrap(), master);
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), ticks);
    // And the next commit goes on from there.
    retry(Duration::from_secs(10), || {
        bus.append(
            &tick_key,
            IdSpec::Explicit(StreamId::for_tick(201)),
            b"next",
            None,
        )
    })
    .await;
    // The promoted replica has no replica of its own: after one commit found that out
    // (its wait fell short), the next ones do not wait for acknowledgements that cannot
    // come (`REPLICA_RECHECK` passes before it is asked again).
    let before = bus.replica_ack_stats();
    assert_eq!(before.skipped, 0);
    for n in 202..=221u64 {
        bus.append(
            &tick_key,
            IdSpec::Explicit(StreamId::for_tick(n)),
            b"next",
            None,
        )
        .await
        .unwrap();
    }
    let after = bus.replica_ack_stats();
    assert!(after.short >= 1, "{before:?} → {after:?}");
    assert!(after.skipped >= 10, "{before:?} → {after:?}");
}
