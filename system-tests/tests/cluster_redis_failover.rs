//! The services on a Redis Cluster (three masters, three replicas, made on this machine)
//! when a master dies: 12 AI-vs-AI matches spread over the three shards, `kill -9` of the
//! master holding some of them; its replica is promoted, every match runs on, and the
//! delivery audit and `verify` pass for every match. With `--redis-wait-replicas 1` a
//! commit returns only once the replica has it, so the failover loses nothing; without
//! it, replication is asynchronous and the test measures what was lost (the audit's tick
//! and step gaps) instead. In both runs the engines must tick and the economies step again
//! after the kill (the economies are waited for on their own: the engines catch the
//! missed ticks up in a burst, so "40 more ticks" can be over before an economy's next
//! retry). Figures go to docs/reliability.md.

#[path = "common/cluster.rs"]
mod cluster;

use std::collections::BTreeMap;
use std::time::Duration;

use cluster::{gap_around, serial, step_times, Cluster, ClusterConfig};
use events::{now_ms, MatchId};
use replay_tool::audit::FindingKind;

const MATCHES: usize = 12;

async fn start(wait_replicas: usize) -> (Cluster, Vec<MatchId>, BTreeMap<u16, Vec<MatchId>>) {
    let config = ClusterConfig {
        lease_idle: Duration::from_millis(1000),
        persistent: false,
        redis_cluster: true,
        wait_replicas,
        ..ClusterConfig::default()
    };
    let mut c = Cluster::start(config, 2, 2, 0).await;
    // Match ids whose `{m:ID}` slots fall on each master in turn: four per shard.
    let mut per_shard: BTreeMap<u16, Vec<MatchId>> = BTreeMap::new();
    for port in c.redis_cluster().masters().unwrap() {
        per_shard.insert(port, Vec::new());
    }
    assert_eq!(per_shard.len(), 3, "three masters");
    let mut i = 0;
    while per_shard.values().map(Vec::len).sum::<usize>() < MATCHES {
        let m = MatchId::new(format!("rf-{i}")).unwrap();
        let tick_key = c.keys.tick(&m);
        let port = c.redis_cluster().master_of(&tick_key).unwrap();
        let list = per_shard.get_mut(&port).expect("a master");
        if list.len() < MATCHES / 3 {
            list.push(m);
        }
        i += 1;
    }
    let mut matches = Vec::new();
    for (port, ms) in &per_shard {
        eprintln!(
            "SPREAD master 127.0.0.1:{port}: {}",
            ms.iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        for m in ms {
            let n = matches.len() as u64;
            c.create_ai_match(m.as_str(), 300 + n, 32).await;
            matches.push(m.clone());
        }
    }
    c.wait_ticks(&matches, 40, Duration::from_secs(120)).await;
    c.wait_steps(&matches, 20, Duration::from_secs(120)).await;
    (c, matches, per_shard)
}

/// Ticks and steps the audit found out of place (lost or doubled around the failover).
fn gaps(a: &cluster::Audit) -> (usize, usize, usize) {
    let count = |k: FindingKind| a.findings.iter().filter(|f| f.kind == k).count();
    (
        count(FindingKind::TickOutOfPlace),
        count(FindingKind::StepOutOfPlace),
        count(FindingKind::Lost) + count(FindingKind::ConsumedTwice),
    )
}

async fn master_failover(wait_replicas: usize) {
    let (mut c, matches, per_shard) = start(wait_replicas).await;
    let (&victim, moved) = per_shard.iter().next().expect("a shard");
    let moved = moved.clone();
    let mut base = BTreeMap::new();
    for m in &matches {
        base.insert(m.clone(), c.ticks(m).await);
    }
    let t_kill = now_ms();
    c.redis_cluster().kill(victim).unwrap();
    eprintln!("killed master 127.0.0.1:{victim} (kill -9)");

    // Every match goes on: those of the other shards at once, those of the dead master's
    // once its replica is promoted.
    let resumed = cluster::wait_until(
        Duration::from_secs(90),
        Duration::from_millis(100),
        || async {
            for m in &matches {
                if c.ticks(m).await < base[m] + 40 {
                    return false;
                }
            }
            true
        },
    )
    .await;
    assert!(
        resumed,
        "not every match ran 40 more ticks within 90 s of the kill\n{}",
        c.logs(30)
    );
    // The engines catch up the ticks a stall missed in a burst, so the 40 ticks can be
    // done well before the economies read again: the window is only the ticks'.
    let forty_more = now_ms().saturating_sub(t_kill);
    // The economy of every match steps again too (within 30 s of the ticks' resuming:
    // with a 1 s node timeout the slot is served again after ~2.5 s).
    let stepped = cluster::wait_until(
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            for m in &moved {
                let steps = step_times(&c.bus, &c.keys, m).await;
                if !steps.iter().any(|&t| t > t_kill) {
                    return false;
                }
            }
            true
        },
    )
    .await;
    assert!(
        stepped,
        "the economy of a match on the killed master did not step again within 30 s\n{}",
        c.logs(60)
    );
    let moved_key = c.keys.tick(&moved[0]);
    let rc = c.redis_cluster();
    rc.wait_ok(Duration::from_secs(30)).unwrap();
    let promoted = rc.master_of(&moved_key).unwrap();
    assert_ne!(promoted, victim, "the slot is still on the dead master");
    let unclean = c.stop_all(Duration::from_millis(500)).await;
    assert!(
        unclean.is_empty(),
        "unclean stop: {unclean:?}\n{}",
        c.logs(20)
    );

    let mut resumes = Vec::new();
    let mut lost = (0, 0, 0);
    let mut unverified = Vec::new();
    let mut applied = 0;
    for m in &matches {
        let a = c.audit(m).await;
        let (t, s, cmds) = gaps(&a);
        lost = (lost.0 + t, lost.1 + s, lost.2 + cmds);
        applied += a.applied;
        if wait_replicas > 0 {
            assert!(a.clean(), "{m}: {a:?}");
        }
        let v = c.verify(m);
        if wait_replicas > 0 {
            assert!(v.ok, "{m} does not verify:\n{}", v.output);
        } else if !v.ok {
            unverified.push(m.to_string());
        }
        if moved.contains(m) {
            // With asynchronous replication the commits around the kill may be gone: a
            // side without any is recorded (as `None`) rather than assumed.
            let ticks_after = gap_around(&a.tick_times, t_kill).map(|(_, after, _)| after);
            let steps = step_times(&c.bus, &c.keys, m).await;
            let steps_after = gap_around(&steps, t_kill).map(|(_, after, _)| after);
            // Both sides of the kill must have ticks and steps in both runs: even a lost
            // commit leaves the ones before it, and both services must resume.
            assert!(
                ticks_after.is_some() && steps_after.is_some(),
                "{m}: no ticks or steps on one side of the kill"
            );
            resumes.push((
                ticks_after.map(|t| t.saturating_sub(t_kill)),
                steps_after.map(|t| t.saturating_sub(t_kill)),
            ));
        }
    }
    resumes.sort_unstable();
    eprintln!(
        "FIGURES redis failover (wait_replicas {wait_replicas}): master 127.0.0.1:{victim} killed, {} of \
         {MATCHES} matches on it, its replica 127.0.0.1:{promoted} promoted; first tick / economy step \
         after the kill (ms) {resumes:?}; every match 40 ticks on {forty_more} ms after the kill; out-of-place ticks {}, steps {}, lost or doubled commands {}; \
         {applied} unit orders applied; verify failed for {unverified:?}",
        moved.len(),
        lost.0,
        lost.1,
        lost.2
    );
    if wait_replicas > 0 {
        assert_eq!(lost, (0, 0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_killed_with_replica_acks_loses_nothing() {
    let _serial = serial().await;
    master_failover(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_killed_with_asynchronous_replication_is_measured() {
    let _serial = serial().await;
    master_failover(0).await;
}
