//! Spectators' `players_stats` and the post-game `score`, over the real engine and
//! economy: the standings go to spectators only, and the score every viewer gets at the
//! end carries the figures `replay-tool stats` computes from the match's log.

use std::time::Duration;

use events::MatchId;
use serde_json::{json, Value};

use crate::common::*;

/// Reads frames until `pred` matches (within `wait`), keeping all of them.
async fn read_until(ws: &mut Ws, seen: &mut Vec<Value>, pred: impl Fn(&Value) -> bool) -> Value {
    let fut = async {
        loop {
            let v = recv(ws).await;
            seen.push(v.clone());
            if pred(&v) {
                return v;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(90), fut)
        .await
        .expect("the awaited frame within 90 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standings_go_to_spectators_only_and_the_score_is_replay_tools_stats() {
    let gw = TestGateway::start().await;
    let services = Services::start(&gw);
    let (s, body) = gw
        .http(
            "POST",
            "/api/matches",
            Some(json!({"mode": "two_players", "map_size": 32, "seed": 9})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let c: Value = serde_json::from_str(&body).unwrap();
    let m = MatchId::new(c["match"].as_str().unwrap()).unwrap();
    let t0 = c["grant"]["token"].as_str().unwrap().to_string();
    let t1 = gw.token(&m, 1);

    let (mut p0, _) = gw.join(&t0, None).await;
    let (mut p1, _) = gw.join(&t1, None).await;
    let (mut spec, _) = gw.spectate(&m, None).await;
    let (mut seen0, mut seen1, mut seen_s) = (Vec::new(), Vec::new(), Vec::new());
    let frame = |v: &Value| v["t"] == "keyframe" || v["t"] == "delta";
    read_until(&mut p0, &mut seen0, frame).await;
    read_until(&mut p1, &mut seen1, frame).await;

    // Both players start a power plant (an action each, credits spent).
    for (ws, seen) in [(&mut p0, &mut seen0), (&mut p1, &mut seen1)] {
        send(
            ws,
            json!({"t": "cmd", "seq": 1, "cmd": {"kind": "queue", "item": "power_plant"}}),
        )
        .await;
        let a = read_until(ws, seen, |v| v["seq"] == 1).await;
        assert_eq!(a["t"], "ack", "{a}");
    }
    // The spectator's panel shows both paying for it, and both armies (the start units).
    let rules = engine::Rules::standard();
    let start = i64::from(rules.economy.starting_credits);
    let paying = |v: &Value| {
        v["t"] == "players_stats"
            && v["players"].as_array().is_some_and(|ps| {
                ps.len() == 2 && ps.iter().all(|p| p["credits"].as_i64().unwrap() < start)
            })
    };
    let stats = read_until(&mut spec, &mut seen_s, paying).await;
    let army: u64 = rules
        .economy
        .start_units
        .iter()
        .filter(|k| **k != events::UnitKind::Harvester)
        .map(|k| u64::from(rules.unit(*k).cost))
        .sum();
    for p in stats["players"].as_array().unwrap() {
        assert_eq!(p["army_value"].as_u64().unwrap(), army, "{p}");
        assert!(
            p["power_output"].is_i64() && p["power_consumption"].is_i64(),
            "{p}"
        );
        assert_eq!(p["units_lost"], 0, "{p}");
    }
    // And keeps coming, every 20 ticks (the first one, on joining, at any tick).
    for _ in 0..2 {
        read_until(&mut spec, &mut seen_s, |v| v["t"] == "players_stats").await;
    }
    let ticks: Vec<u64> = seen_s
        .iter()
        .filter(|v| v["t"] == "players_stats")
        .map(|v| v["tick"].as_u64().unwrap())
        .collect();
    assert!(ticks.len() >= 3, "sent repeatedly: {ticks:?}");
    for w in ticks.windows(2) {
        assert!(w[1] / 20 > w[0] / 20, "one per 20 ticks: {ticks:?}");
    }

    // Player 0 gives up: the match ends, everyone gets the score.
    send(
        &mut p0,
        json!({"t": "cmd", "seq": 2, "cmd": {"kind": "surrender"}}),
    )
    .await;
    let is_score = |v: &Value| v["t"] == "score";
    let s0 = read_until(&mut p0, &mut seen0, is_score).await;
    let s1 = read_until(&mut p1, &mut seen1, is_score).await;
    let ss = read_until(&mut spec, &mut seen_s, is_score).await;
    assert_eq!(s0, s1);
    assert_eq!(s0, ss);
    for seen in [&seen0, &seen1] {
        assert!(
            seen.iter().all(|v| v["t"] != "players_stats"),
            "a player never gets the standings (the enemy's credits)"
        );
        assert!(seen.iter().any(|v| v["t"] == "game_over"));
    }

    // The same figures as replay-tool's stats of the match's log.
    let rec = replay_tool::Recording::from_bus(&gw.bus, &gw.keys, &m)
        .await
        .expect("the match's log");
    let want = replay_tool::stats::stats(&rec);
    assert_eq!(s0["match"], m.as_str());
    assert_eq!(s0["ticks"].as_u64().unwrap(), want.ticks);
    let got = s0["players"].as_array().unwrap();
    assert_eq!(got.len(), want.players.len());
    for (g, w) in got.iter().zip(&want.players) {
        assert_eq!(g["player"], w.player);
        assert_eq!(g["name"], w.name.as_str());
        assert_eq!(g["units_built"], w.counts.units_built);
        assert_eq!(g["units_lost"], w.counts.units_lost);
        assert_eq!(g["kills"], w.counts.kills);
        assert_eq!(g["buildings_built"], w.counts.buildings_built);
        assert_eq!(g["buildings_lost"], w.counts.buildings_lost);
        assert_eq!(g["harvested"], w.counts.harvested);
        assert_eq!(g["actions"], w.actions);
        assert_eq!(g["apm"].as_f64().unwrap(), w.apm);
    }
    // Player 0 queued and surrendered; player 1 queued.
    assert_eq!(got[0]["actions"], 2);
    assert_eq!(got[1]["actions"], 1);
    services.stop().await;
    gw.stop().await;
}
