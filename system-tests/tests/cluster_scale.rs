//! Scale: two engine, two economy and two gateway processes over one Redis run concurrent
//! AI-vs-AI matches; the matches spread over both engine instances, spectators on both
//! gateways see every tick, every log is contiguous with nothing lost, and every match
//! passes `replay-tool verify`. CI: 4 matches × 100 ticks; `CNIT_LONG=1`: 20 × 600.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/ws.rs"]
mod ws;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cluster::{ci_or_long, Cluster, ClusterConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_spread_over_two_engines_and_every_match_verifies() {
    let n: usize = ci_or_long(4, 20);
    let ticks: u64 = ci_or_long(100, 600);
    // Capacity is left at its default (far above n): the burst of new matches spreads
    // because each instance takes at most `NEW_MATCHES_PER_POLL` new matches per poll.
    let mut c = Cluster::start(ClusterConfig::default(), 2, 2, 2).await;
    for i in 0..n {
        c.create_ai_match(&format!("scale-{i}"), 100 + i as u64, 32)
            .await;
    }
    let matches = c.matches.clone();
    let gateways: Vec<_> = c.gateways.iter().map(|g| g.addr).collect();
    let deadline = Instant::now() + Duration::from_secs(ticks / 20 * 4 + 60);
    let viewers: Vec<_> = matches
        .iter()
        .enumerate()
        .map(|(i, m)| {
            tokio::spawn(ws::view(
                ws::Role::Spectator {
                    match_id: m.to_string(),
                },
                gateways.clone(),
                i,
                ticks - 10,
                deadline,
            ))
        })
        .collect();
    c.wait_ticks(&matches, 20, Duration::from_secs(60)).await;

    let engine_owners = c.owners("engine").await;
    let economy_owners = c.owners("economy").await;
    let mut per_engine: BTreeMap<String, usize> = BTreeMap::new();
    for o in engine_owners.values() {
        *per_engine.entry(o.clone()).or_default() += 1;
    }
    let mut per_economy: BTreeMap<String, usize> = BTreeMap::new();
    for o in economy_owners.values() {
        *per_economy.entry(o.clone()).or_default() += 1;
    }
    let mut owned_metric = Vec::new();
    for e in &c.engines {
        owned_metric.push((
            e.name.clone(),
            e.metric("cnit_matches_owned", &["service=\"engine\""])
                .await,
        ));
    }
    eprintln!("engine leases (XPENDING): {per_engine:?}; cnit_matches_owned: {owned_metric:?}");
    eprintln!("economy leases (XPENDING): {per_economy:?}");
    assert_eq!(engine_owners.len(), n, "every match has an engine");
    assert_eq!(per_engine.len(), 2, "matches spread over both engines");
    assert_eq!(economy_owners.len(), n, "every match has an economy");
    assert_eq!(per_economy.len(), 2, "matches spread over both economies");
    assert!(
        owned_metric.iter().all(|(_, v)| *v > 0.0),
        "both engines report owned matches"
    );

    c.wait_ticks(&matches, ticks, Duration::from_secs(ticks / 20 * 4 + 60))
        .await;
    let mut seen = Vec::new();
    for v in viewers {
        let r = v.await.expect("viewer task");
        let (dups, gaps) = r.violations();
        assert!(
            dups.is_empty() && gaps.is_empty(),
            "spectator: duplicates {dups:?}, gaps {gaps:?}"
        );
        assert!(
            r.ticks.len() as u64 > ticks / 2,
            "spectator saw {} ticks",
            r.ticks.len()
        );
        seen.push(r.ticks.len());
    }
    let unclean = c.stop_all(Duration::from_millis(500)).await;
    assert!(
        unclean.is_empty(),
        "services did not stop cleanly: {unclean:?}\n{}",
        c.logs(20)
    );

    let mut total = (0, 0, 0, 0);
    for m in &matches {
        let a = c.audit(m).await;
        assert!(a.clean(), "{m}: {a:?}");
        let v = c.verify(m);
        assert!(v.ok, "{m} does not verify:\n{}", v.output);
        assert_eq!(v.engine_ticks, a.ticks, "{m}: verify checked every tick");
        total.0 += a.ticks;
        total.1 += a.applied + a.production_consumed;
        total.2 += a.production_tail;
        total.3 += v.economy_ticks;
    }
    eprintln!(
        "scale: {n} matches, {} ticks committed, {} commands applied/consumed (0 lost, 0 duplicated), \
         {} production commands left after the economies stopped, {} economy steps verified; \
         spectator frames per match {seen:?}",
        total.0, total.1, total.2, total.3
    );
}
