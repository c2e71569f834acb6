//! Restarts with real processes: Redis killed and restarted from its append-only file
//! under running services (they reconnect with backoff, matches continue, nothing is
//! lost), and a graceful SIGTERM of an engine or economy instance, which hands its
//! matches over at once instead of letting the other instance wait for the lease idle
//! timeout. CI: 4 matches; `CNIT_LONG=1`: 20.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/ws.rs"]
mod ws;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cluster::{
    ci_or_long, gap_around, probe_command, serial, step_times, Cluster, ClusterConfig, TOKEN_SECRET,
};
use events::{now_ms, Difficulty, MatchId, PlayerId, PlayerKind};
use gateway::token::TokenSigner;
use serde_json::json;

/// A player connected through a gateway who sends one command when told and returns the
/// gateway's answer to it (`ack`, or the rejection code); it reads (and answers pings)
/// all along so its connection stays healthy.
async fn player_probe(
    addr: std::net::SocketAddr,
    token: String,
    go: tokio::sync::oneshot::Receiver<()>,
) -> String {
    let mut w = ws::connect(addr).await.expect("connect");
    ws::handshake(&mut w, &ws::Role::Player { token }, None)
        .await
        .expect("join");
    let mut go = go;
    loop {
        tokio::select! {
            r = &mut go => {
                r.expect("go signal");
                break;
            }
            f = ws::next_json(&mut w, Duration::from_millis(200)) => {
                f.expect("player socket");
            }
        }
    }
    let cmd = json!({"t": "cmd", "seq": 1, "cmd": {"kind": "stop", "units": [1]}});
    assert!(ws::send(&mut w, cmd).await, "send the command");
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Some(v) = ws::next_json(&mut w, Duration::from_millis(500))
            .await
            .expect("player socket")
        {
            match v["t"].as_str() {
                Some("ack") if v["seq"] == 1 => return "ack".into(),
                Some("rejected") if v["seq"] == 1 => {
                    return v["code"].as_str().unwrap_or("").into()
                }
                _ => {}
            }
        }
    }
    "no answer".into()
}

async fn probe_all(c: &Cluster, matches: &[MatchId], k: usize) -> usize {
    for m in matches {
        for _ in 0..k {
            c.append_command(&probe_command(m)).await;
        }
    }
    matches.len() * k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_services_reconnect_and_nothing_is_lost() {
    let _serial = serial().await;
    let n: usize = ci_or_long(4, 20);
    let outage = Duration::from_secs(2);
    let mut c = Cluster::start(ClusterConfig::default(), 2, 2, 1).await;
    for i in 0..n {
        c.create_ai_match(&format!("rr-{i}"), 300 + i as u64, 32)
            .await;
    }
    let played = c
        .create_match(
            "rr-player",
            399,
            32,
            vec![PlayerKind::Human, PlayerKind::Ai(Difficulty::Easy)],
        )
        .await;
    let matches = c.matches.clone();
    c.wait_ticks(&matches, 40, Duration::from_secs(60)).await;
    let token = TokenSigner::new(TOKEN_SECRET.as_bytes().to_vec(), Duration::from_secs(3600))
        .issue(&played, PlayerId(0))
        .0;
    let (go, go_rx) = tokio::sync::oneshot::channel();
    let player = tokio::spawn(player_probe(c.gateways[0].addr, token, go_rx));
    let gw = vec![c.gateways[0].addr];
    let viewer = tokio::spawn(ws::view(
        ws::Role::Spectator {
            match_id: matches[0].to_string(),
        },
        gw,
        0,
        u64::MAX,
        Instant::now() + Duration::from_secs(40),
    ));
    let mut probes = probe_all(&c, &matches, 3).await;
    let mut base = BTreeMap::new();
    for m in &matches {
        base.insert(m.clone(), c.ticks(m).await);
    }

    let t_down = now_ms();
    tokio::task::block_in_place(|| c.redis_mut().stop());
    tokio::time::sleep(outage).await;
    tokio::task::block_in_place(|| c.redis_mut().start_again()).expect("restarting redis");
    let t_up = now_ms();
    // The first player command after the restart: the gateway's first call on its
    // connection fails while it reconnects; the command must still be acknowledged.
    go.send(()).expect("player task");
    let first_command = player.await.expect("player task");
    probes += probe_all(&c, &matches, 3).await;
    for m in &matches {
        let want = base[m] + 60;
        c.wait_ticks(std::slice::from_ref(m), want, Duration::from_secs(60))
            .await;
    }
    probes += probe_all(&c, &matches, 3).await;
    let now = c.ticks(&matches[0]).await;
    c.wait_ticks(&matches, now + 20, Duration::from_secs(60))
        .await;
    for s in c
        .engines
        .iter_mut()
        .chain(c.economies.iter_mut())
        .chain(c.gateways.iter_mut())
    {
        assert!(s.is_running(), "{} died across the Redis restart", s.name);
    }
    assert_eq!(
        first_command, "ack",
        "the first player command after the Redis restart"
    );
    let mut takeovers = 0.0;
    let mut fenced = 0.0;
    for s in c.engines.iter().chain(&c.economies) {
        takeovers += s.metric("cnit_match_takeovers_total", &[]).await;
        fenced += s.metric("cnit_fenced_commits_total", &[]).await;
    }
    let hub_errors = c.gateways[0].metric("gateway_bus_errors_total", &[]).await;
    let unclean = c.stop_all(Duration::from_millis(500)).await;
    assert!(
        unclean.is_empty(),
        "unclean stop: {unclean:?}\n{}",
        c.logs(20)
    );
    let spectator = viewer.await.expect("viewer");

    let mut resumed = Vec::new();
    let mut applied = 0;
    for m in &matches {
        let a = c.audit(m).await;
        assert!(a.clean(), "{m}: {a:?}");
        applied += a.applied;
        let (_, after, _) = gap_around(&a.tick_times, t_down).expect("ticks on both sides");
        resumed.push(after.saturating_sub(t_up));
        let v = c.verify(m);
        assert!(v.ok, "{m} does not verify:\n{}", v.output);
    }
    let (dups, gaps) = spectator.violations();
    assert!(dups.is_empty(), "spectator got ticks twice: {dups:?}");
    assert!(gaps.is_empty(), "spectator missed ticks: {gaps:?}");
    resumed.sort_unstable();
    eprintln!(
        "FIGURES redis restart: down {} ms (SIGKILL, AOF appendfsync always); first tick after Redis \
         came back: {resumed:?} ms per match; takeovers: {takeovers}; \
         fenced commits: {fenced}; gateway bus errors (retried): {hub_errors}; first player command \
         after the restart: {first_command}; {probes} probe \
         commands + {applied} unit orders applied exactly once, 0 lost, 0 duplicate ticks; spectator: \
         {} frames, {} reconnects, {} keyframe resumes, no duplicate and no missing tick",
        t_up - t_down,
        spectator.ticks.len(),
        spectator.reconnects,
        spectator.keyframe_resumes
    );
}

/// Lease idle timeout of the hand-over tests: long, so that a hand-over that waited for
/// it would stand out.
const LONG_IDLE: Duration = Duration::from_secs(5);

async fn sigterm_hands_over(engine: bool) {
    let n: usize = ci_or_long(4, 20);
    let config = ClusterConfig {
        lease_idle: LONG_IDLE,
        ..ClusterConfig::default()
    };
    let mut c = Cluster::start(config, 2, 2, 0).await;
    for i in 0..n {
        c.create_ai_match(&format!("term-{i}"), 400 + i as u64, 32)
            .await;
    }
    let matches = c.matches.clone();
    c.wait_ticks(&matches, 40, Duration::from_secs(60)).await;
    c.wait_steps(&matches, 20, Duration::from_secs(60)).await;
    let group = if engine { "engine" } else { "economy" };
    let owners = c.owners(group).await;
    let mut per: BTreeMap<String, Vec<MatchId>> = BTreeMap::new();
    for (m, o) in owners {
        per.entry(o).or_default().push(m);
    }
    let (victim, moved) = per
        .into_iter()
        .max_by_key(|(_, v)| v.len())
        .expect("owned matches");
    let probes = probe_all(&c, &matches, 3).await;

    let t_term = now_ms();
    let started = Instant::now();
    let clean = tokio::task::block_in_place(|| {
        let list = if engine {
            &mut c.engines
        } else {
            &mut c.economies
        };
        let s = list.iter_mut().find(|s| s.name == victim).expect("victim");
        s.terminate(Duration::from_secs(15))
    });
    let exit_ms = started.elapsed().as_millis();
    assert!(
        clean,
        "{victim} did not exit cleanly on SIGTERM\n{}",
        c.logs(30)
    );
    let moved_ok = cluster::wait_until(
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async {
            let owners = c.owners(group).await;
            moved
                .iter()
                .all(|m| owners.get(m).is_some_and(|o| *o != victim))
        },
    )
    .await;
    assert!(moved_ok, "matches not handed over\n{}", c.logs(30));
    let now = c.ticks(&matches[0]).await;
    c.wait_ticks(&matches, now + 40, Duration::from_secs(60))
        .await;
    if !engine {
        let now = c.bus_len_eco(&matches[0]).await;
        c.wait_steps(&matches, now + 20, Duration::from_secs(60))
            .await;
    }
    let unclean = c.stop_all(Duration::from_millis(500)).await;
    assert!(
        unclean.is_empty(),
        "unclean stop: {unclean:?}\n{}",
        c.logs(20)
    );

    let mut handover = Vec::new();
    for m in &matches {
        let a = c.audit(m).await;
        assert!(a.clean(), "{m}: {a:?}");
        let v = c.verify(m);
        assert!(v.ok, "{m} does not verify:\n{}", v.output);
        if moved.contains(m) {
            let times = if engine {
                a.tick_times.clone()
            } else {
                step_times(&c.bus, &c.keys, m).await
            };
            let (_, after, gap) = gap_around(&times, t_term).expect("commits around SIGTERM");
            let resumed = after.saturating_sub(t_term);
            assert!(
                (resumed as u128) < LONG_IDLE.as_millis(),
                "{m}: resumed {resumed} ms after SIGTERM, no faster than the idle timeout"
            );
            handover.push((resumed, gap));
        }
    }
    handover.sort_unstable();
    eprintln!(
        "FIGURES SIGTERM {group}: {victim} exited cleanly {exit_ms} ms after SIGTERM; {} matches \
         resumed on the other instance (ms after SIGTERM, commit gap) {handover:?} with the lease \
         idle timeout at {} ms; {probes} probe commands applied, 0 lost, 0 duplicate ticks",
        moved.len(),
        LONG_IDLE.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_sigterm_hands_matches_over_without_the_idle_timeout() {
    let _serial = serial().await;
    sigterm_hands_over(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn economy_sigterm_hands_matches_over_without_the_idle_timeout() {
    let _serial = serial().await;
    sigterm_hands_over(false).await;
}
