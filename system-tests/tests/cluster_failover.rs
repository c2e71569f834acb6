//! Failover with real processes: an engine or economy instance is killed (`kill -9`) or
//! frozen (SIGSTOP until its leases are taken over, then SIGCONT) in the middle of
//! AI-vs-AI matches. Its matches resume on the other instance within 2 s of the lease
//! going idle; commands appended before, during and after the outage are each applied
//! exactly once; no tick or step is committed twice; a thawed stale owner stops every
//! match it had, by a refused commit (`cnit_fenced_commits_total`) or by finding the lease
//! taken (`cnit_leases_lost_total`), whichever comes first; the engine keeps ticking while the economy
//! is down; every match verifies. CI: 4 matches; `CNIT_LONG=1`: 20.

#[path = "common/cluster.rs"]
mod cluster;

use std::collections::BTreeMap;
use std::time::Duration;

use cluster::{
    ci_or_long, gap_around, max_gap_within, probe_command, serial, step_times, Cluster,
    ClusterConfig,
};
use events::{now_ms, MatchId};

/// Lease idle timeout of these tests.
const IDLE: Duration = Duration::from_millis(1000);
/// The goal: a match resumes within this long after its lease went idle.
const TAKEOVER_GOAL: Duration = Duration::from_secs(2);
/// Slack on top of the goal for a loaded two-core CI machine (the measured figure is
/// printed and documented; the assertion only catches a broken takeover).
const CI_MARGIN: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Group {
    Engine,
    Economy,
}

impl Group {
    fn name(self) -> &'static str {
        match self {
            Group::Engine => "engine",
            Group::Economy => "economy",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    /// `kill -9`.
    Crash,
    /// SIGSTOP until the leases are taken over, then SIGCONT.
    Freeze,
}

async fn start(n: usize) -> (Cluster, Vec<MatchId>) {
    let config = ClusterConfig {
        lease_idle: IDLE,
        ..ClusterConfig::default()
    };
    let mut c = Cluster::start(config, 2, 2, 0).await;
    for i in 0..n {
        c.create_ai_match(&format!("fo-{i}"), 200 + i as u64, 32)
            .await;
    }
    let matches = c.matches.clone();
    c.wait_ticks(&matches, 40, Duration::from_secs(60)).await;
    c.wait_steps(&matches, 20, Duration::from_secs(60)).await;
    (c, matches)
}

/// The instance of `group` owning the most matches, and those matches.
async fn victim(c: &Cluster, group: Group) -> (usize, String, Vec<MatchId>) {
    let owners = c.owners(group.name()).await;
    let mut per: BTreeMap<String, Vec<MatchId>> = BTreeMap::new();
    for (m, o) in owners {
        per.entry(o).or_default().push(m);
    }
    let (name, ms) = per
        .into_iter()
        .max_by_key(|(_, ms)| ms.len())
        .expect("some instance owns matches");
    let list = match group {
        Group::Engine => &c.engines,
        Group::Economy => &c.economies,
    };
    let idx = list
        .iter()
        .position(|s| s.name == name)
        .expect("owner is one of ours");
    (idx, name, ms)
}

async fn probe_all(c: &Cluster, matches: &[MatchId], k: usize) -> usize {
    for m in matches {
        for _ in 0..k {
            c.append_command(&probe_command(m)).await;
        }
    }
    matches.len() * k
}

async fn log_len(c: &Cluster, group: Group, m: &MatchId) -> u64 {
    let key = match group {
        Group::Engine => c.keys.tick(m),
        Group::Economy => c.keys.eco(m),
    };
    events::Bus::len(&c.bus, &key).await.unwrap_or(0)
}

/// Faults the busiest instance of `group`, waits for the other to take its matches over
/// and run them on, then checks and measures everything.
async fn fail_over(group: Group, fault: Fault) {
    let n: usize = ci_or_long(4, 20);
    let (mut c, matches) = start(n).await;
    let (vi, victim_name, moved) = victim(&c, group).await;
    let mut probes = probe_all(&c, &matches, 3).await;
    let mut base = BTreeMap::new();
    for m in &moved {
        base.insert(m.clone(), log_len(&c, group, m).await);
    }

    let t_fault = now_ms();
    {
        let list = match group {
            Group::Engine => &mut c.engines,
            Group::Economy => &mut c.economies,
        };
        match fault {
            Fault::Crash => list[vi].kill9(),
            Fault::Freeze => list[vi].freeze(),
        }
    }
    // Commands appended while nobody runs the moved matches.
    probes += probe_all(&c, &matches, 3).await;

    let took_over = cluster::wait_until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let owners = c.owners(group.name()).await;
            for m in &moved {
                if owners.get(m).is_none_or(|o| *o == victim_name) {
                    return false;
                }
                if log_len(&c, group, m).await < base[m] + 30 {
                    return false;
                }
            }
            true
        },
    )
    .await;
    assert!(
        took_over,
        "{group:?} matches were not taken over within 30 s\n{}",
        c.logs(30)
    );
    let t_resumed = now_ms();
    probes += probe_all(&c, &matches, 3).await;

    let mut fenced = 0.0;
    if fault == Fault::Freeze {
        let list = match group {
            Group::Engine => &c.engines,
            Group::Economy => &c.economies,
        };
        list[vi].thaw();
        let v = &list[vi];
        let filter = format!("service=\"{}\"", group.name());
        // The thawed owner stops each match one of two ways, whichever it reaches first:
        // its next commit is refused by fencing, or its keep-alive finds the lease taken.
        let stopped = || async {
            (
                v.metric("cnit_fenced_commits_total", &[&filter]).await,
                v.metric("cnit_leases_lost_total", &[&filter]).await,
            )
        };
        cluster::wait_until(
            Duration::from_secs(10),
            Duration::from_millis(100),
            || async {
                let (f, l) = stopped().await;
                f + l >= moved.len() as f64
            },
        )
        .await;
        let (f, lost) = stopped().await;
        fenced = f;
        assert!(
            fenced + lost >= moved.len() as f64,
            "the thawed stale {group:?} stopped {fenced} matches by fencing and {lost} by a lost lease, of {}; log:\n{}",
            moved.len(),
            v.log_tail(40)
        );
    }
    let survivor = match group {
        Group::Engine => &c.engines[1 - vi],
        Group::Economy => &c.economies[1 - vi],
    };
    let takeovers = survivor
        .metric(
            "cnit_match_takeovers_total",
            &[&format!("service=\"{}\"", group.name())],
        )
        .await;
    assert!(
        takeovers >= moved.len() as f64,
        "survivor counted {takeovers} takeovers"
    );

    let now = c.ticks(&matches[0]).await;
    c.wait_ticks(&matches, now + 20, Duration::from_secs(60))
        .await;
    let unclean = c.stop_all(Duration::from_millis(500)).await;
    assert!(
        unclean.is_empty(),
        "unclean stop: {unclean:?}\n{}",
        c.logs(20)
    );

    let mut gaps = Vec::new();
    let mut resumes = Vec::new();
    let mut engine_gap_during_outage = 0;
    let mut applied = 0;
    for m in &matches {
        let a = c.audit(m).await;
        assert!(a.clean(), "{m}: {a:?}");
        applied += a.applied;
        let v = c.verify(m);
        assert!(v.ok, "{m} does not verify:\n{}", v.output);
        let times = match group {
            Group::Engine => a.tick_times.clone(),
            Group::Economy => step_times(&c.bus, &c.keys, m).await,
        };
        if moved.contains(m) {
            let (before, after, gap) =
                gap_around(&times, t_fault).expect("commits on both sides of the fault");
            // The lease went idle between `idle - poll` and `idle` after the fault (the
            // victim touched it every poll), so `after - t_fault - idle` is how long the
            // takeover took after the lease went idle, give or take one poll (200 ms).
            let resumed = after.saturating_sub(t_fault);
            resumes.push(resumed);
            gaps.push(gap);
            let limit = (IDLE + TAKEOVER_GOAL + CI_MARGIN).as_millis() as u64;
            assert!(
                resumed <= limit,
                "{m}: last commit before the fault at {before}, first after at {after}: resumed {resumed} ms after the fault > {limit} ms"
            );
        }
        if group == Group::Economy {
            engine_gap_during_outage =
                engine_gap_during_outage.max(max_gap_within(&a.tick_times, t_fault, t_resumed));
        }
    }
    if group == Group::Economy {
        assert!(
            engine_gap_during_outage < 2_000,
            "the engine stalled {engine_gap_during_outage} ms while the economy was down"
        );
    }
    gaps.sort_unstable();
    resumes.sort_unstable();
    let idle = IDLE.as_millis() as u64;
    let after_idle: Vec<i64> = resumes.iter().map(|r| *r as i64 - idle as i64).collect();
    eprintln!(
        "FIGURES {group:?} {fault:?}: {} of {n} matches moved from {victim_name}; first commit by the new \
         owner {resumes:?} ms after the fault (lease idle {idle} ms, poll 200 ms: {after_idle:?} ms after \
         the idle timeout, +0..200 ms since the last keep-alive); commit gap old owner -> new owner {gaps:?} \
         ms; {probes} probe commands + {applied} unit orders applied exactly once, 0 lost, 0 duplicate \
         ticks; fenced commits on the thawed owner: {fenced}; longest engine tick gap while the economy was \
         down: {engine_gap_during_outage} ms",
        moved.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_kill9_matches_resume_on_the_other_engine() {
    let _serial = serial().await;
    fail_over(Group::Engine, Fault::Crash).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_engine_is_fenced_after_takeover() {
    let _serial = serial().await;
    fail_over(Group::Engine, Fault::Freeze).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn economy_kill9_matches_resume_while_the_engine_keeps_ticking() {
    let _serial = serial().await;
    fail_over(Group::Economy, Fault::Crash).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_economy_is_fenced_after_takeover() {
    let _serial = serial().await;
    fail_over(Group::Economy, Fault::Freeze).await;
}
