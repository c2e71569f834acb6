//! The lobby's `battle` mode: the lobby appends a `MatchCreated` carrying the battle
//! scenario (and writes no engine state), a real engine builds the battle when it picks
//! the match up, spectators see both armies, and bad unit counts are refused.

use std::sync::Arc;
use std::time::Duration;

use engine::Rules;
use events::{
    decode, Bus, MatchEvent, MatchId, PlayerId, Scenario, Snapshot, SnapshotOwner, StreamId,
};
use serde_json::{json, Value};

use crate::common::*;

/// Units per owner in a list of wire entities (buildings left out).
fn units_by_owner(entities: &[Value]) -> [usize; 2] {
    let mut n = [0; 2];
    for e in entities.iter().filter(|e| e["building"] == false) {
        if let Some(o) = e["owner"].as_u64().filter(|&o| o < 2) {
            n[o as usize] += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_builds_a_battle_from_its_match_created_with_both_armies_on_screen() {
    let gw = TestGateway::start().await;
    let rules = Arc::new(Rules::standard());

    let (s, body) = gw
        .http(
            "POST",
            "/api/matches",
            Some(json!({"mode": "battle", "units": 60, "map_size": 64, "seed": 3})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let c: Value = serde_json::from_str(&body).unwrap();
    let m = MatchId::new(c["match"].as_str().unwrap()).unwrap();
    let kinds: Vec<&str> = c["summary"]["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["human", "human"]);
    assert_eq!(
        c["grant"]["player"], 0,
        "the creator may command the red army"
    );

    // The lobby only appended the `MatchCreated`, which carries the scenario; it wrote no
    // engine state.
    let entries = gw
        .bus
        .range(&gw.keys.matches(), StreamId::ZERO, StreamId::MAX, 10)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    let MatchEvent::MatchCreated(created) = decode::<MatchEvent>(&entries[0].payload).unwrap().body
    else {
        panic!("not a MatchCreated");
    };
    assert_eq!(created.scenario, Scenario::Battle { units_per_side: 60 });
    for key in [gw.keys.snap(&m), gw.keys.seek(&m)] {
        assert_eq!(gw.bus.len(&key).await.unwrap(), 0, "{key}");
    }

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = tokio::spawn(engine::service::run(
        gw.bus.clone(),
        gw.keys.clone(),
        rules.clone(),
        engine::service::EngineConfig::default(),
        Arc::new(engine::service::Progress::default()),
        async move {
            let _ = stopped.await;
        },
    ));

    // The engine builds the battle and keeps that state in the seek stream: 60 battle
    // units per side on top of the start units, on this match's map.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let seek = loop {
        let seek = gw.bus.rev_range(&gw.keys.seek(&m), 16).await.unwrap();
        if !seek.is_empty() {
            break seek;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no initial seek state"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let snap: Snapshot = decode::<Snapshot>(&seek.last().unwrap().payload)
        .unwrap()
        .body;
    assert_eq!(snap.owner, SnapshotOwner::Engine);
    assert_eq!(snap.tick + 1, engine::scenario::first_tick(&created));
    let sim = engine::Sim::restore(rules.clone(), &snap.state).unwrap();
    assert_eq!(sim.hash(), snap.hash);
    assert_eq!(
        sim.hash(),
        engine::scenario::initial(rules.clone(), &created)
            .unwrap()
            .hash(),
        "the state any reader of the log builds from the MatchCreated"
    );
    assert_eq!(sim.map().size, 64);
    let start_units = rules.economy.start_units.len();
    for p in 0..2u8 {
        let units = sim
            .entities()
            .iter()
            .filter(|e| e.owner == PlayerId(p))
            .filter(|e| matches!(e.kind, events::EntityKind::Unit(_)))
            .count();
        assert_eq!(units, 60 + start_units, "player {p}");
    }

    // The engine continues from that state (no tick 0 in the log) and spectators see
    // both armies.
    let (mut ws, welcome) = gw.spectate(&m, None).await;
    assert_eq!(welcome["map"]["width"], 64);
    let (key, _) = recv_until(&mut ws, |v| v["t"] == "keyframe").await;
    assert!(
        key["tick"].as_u64().unwrap() > snap.tick,
        "the first frame comes after the snapshot's tick: {}",
        key["tick"]
    );
    let on_screen = units_by_owner(key["entities"].as_array().unwrap());
    assert!(
        on_screen.iter().all(|&n| n > 30),
        "both armies are shown: {on_screen:?}"
    );
    let first = gw
        .bus
        .range(&gw.keys.tick(&m), StreamId::ZERO, StreamId::MAX, 1)
        .await
        .unwrap();
    assert_eq!(
        first[0].id,
        StreamId::for_tick(snap.tick + 1),
        "the engine's first tick follows the built state"
    );
    // The armies move: some unit's position changes within a second of ticks.
    let before: Vec<(u64, i64, i64)> = key["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_u64().unwrap(),
                e["x"].as_i64().unwrap(),
                e["y"].as_i64().unwrap(),
            )
        })
        .collect();
    let (_, _) = recv_until(&mut ws, |v| {
        v["t"] == "delta"
            && v["entities"].as_array().is_some_and(|es| {
                es.iter().any(|e| {
                    before.iter().any(|&(id, x, y)| {
                        e["id"].as_u64() == Some(id)
                            && (e["x"].as_i64() != Some(x) || e["y"].as_i64() != Some(y))
                    })
                })
            })
    })
    .await;

    stop.send(()).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), engine).await;
    gw.stop().await;
}

#[tokio::test]
async fn battle_unit_counts_are_bounded_and_only_for_battles() {
    let gw = TestGateway::start().await;
    for (bad, why) in [
        (json!({"mode": "battle", "units": 0}), "1-"),
        (json!({"mode": "battle", "units": 501}), "1-500"),
        (json!({"mode": "battle", "units": -3}), ""),
        (json!({"mode": "battle", "units": "many"}), ""),
        (
            json!({"mode": "battle", "units": 300, "map_size": 32}),
            "1-256",
        ),
        (json!({"mode": "vs_ai", "units": 10}), "battle mode only"),
    ] {
        let (s, body) = gw.http("POST", "/api/matches", Some(bad.clone())).await;
        assert!((400..500).contains(&s), "{bad}: {s} {body}");
        assert!(body.contains(why), "{bad}: {body}");
    }
    // Nothing was created by the refused requests.
    assert_eq!(gw.bus.len(&gw.keys.matches()).await.unwrap(), 0);
    gw.stop().await;
}
