//! The lobby's `battle` mode: a real engine picks the match up from the battle snapshot
//! the lobby wrote, spectators see both armies, and bad unit counts are refused.

use std::sync::Arc;
use std::time::Duration;

use engine::Rules;
use events::{decode, Bus, MatchId, PlayerId, Snapshot, SnapshotOwner, StreamId};
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
async fn a_battle_starts_from_its_snapshot_with_both_armies_on_screen() {
    let gw = TestGateway::start().await;
    let rules = Arc::new(Rules::standard());
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

    // The snapshot the lobby wrote: an engine snapshot holding 60 battle units per side
    // on top of the start units, for this match's map.
    let snaps = gw.bus.rev_range(&gw.keys.snap(&m), 16).await.unwrap();
    assert_eq!(snaps.len(), 1);
    let snap: Snapshot = decode::<Snapshot>(&snaps[0].payload).unwrap().body;
    assert_eq!(snap.owner, SnapshotOwner::Engine);
    let sim = engine::Sim::restore(rules.clone(), &snap.state).unwrap();
    assert_eq!(sim.hash(), snap.hash);
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

    // The engine continues from the snapshot (no tick 0 in the log) and spectators see
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
        "the engine's first tick follows the snapshot"
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
