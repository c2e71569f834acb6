//! Leaving a game, over the real engine and economy: a surrender ends a match against the
//! AI (recorded with the AI as winner), a two-player match goes on without the player who
//! left and takes them back on their token, and an abandoned match against the AI ends.

use std::time::Duration;

use events::{Command, MatchId, PlayerId, Source};
use serde_json::{json, Value};

use crate::common::*;

async fn create(gw: &TestGateway, mode: &str) -> (MatchId, String) {
    let (s, body) = gw
        .http(
            "POST",
            "/api/matches",
            Some(json!({"mode": mode, "map_size": 32, "seed": 9, "difficulty": "easy"})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let c: Value = serde_json::from_str(&body).unwrap();
    let m = MatchId::new(c["match"].as_str().unwrap()).unwrap();
    (m, c["grant"]["token"].as_str().unwrap().to_string())
}

async fn summary(gw: &TestGateway, m: &MatchId) -> Value {
    let (s, body) = gw.http("GET", &format!("/api/matches/{m}"), None).await;
    assert_eq!(s, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls the lobby until the match is recorded as ended (at most `wait`).
async fn ended(gw: &TestGateway, m: &MatchId, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        let s = summary(gw, m).await;
        if s["status"] == "ended" {
            return Some(s);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

fn surrenders(cmds: &[events::Envelope<Command>]) -> Vec<Source> {
    cmds.iter()
        .filter(|c| matches!(c.body, Command::Surrender(_)))
        .map(|c| c.source)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_surrender_ends_a_match_against_the_ai_with_the_ai_as_winner() {
    let gw = TestGateway::start().await;
    let services = Services::start(&gw);
    let (m, token) = create(&gw, "vs_ai").await;
    let (mut ws, _) = gw.join(&token, None).await;
    recv_until(&mut ws, |v| v["t"] == "keyframe" || v["t"] == "delta").await;
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 1, "cmd": {"kind": "surrender"}}),
    )
    .await;
    let (a, _) = recv_until(&mut ws, |v| v["seq"] == 1).await;
    assert_eq!(a["t"], "ack");
    let defeat =
        |v: &Value| v["t"] == "event" && v["kind"] == "player_defeated" && v["player"] == 0;
    let (over, before) = recv_until(&mut ws, |v| v["t"] == "game_over").await;
    assert_eq!(over["winner"], 1, "the AI wins");
    // The defeat is announced too (the hub reads the result from the view and the tick
    // streams, whichever comes first, so it may follow `game_over`).
    if !before.iter().any(defeat) {
        recv_until(&mut ws, defeat).await;
    }
    // Recorded as such: MatchEnded with the AI as winner, the Surrender in the log.
    let s = ended(&gw, &m, Duration::from_secs(10))
        .await
        .expect("the match is recorded as ended");
    assert_eq!(s["winner"], 1);
    assert_eq!(
        surrenders(&gw.commands(&m).await),
        vec![Source::Player(PlayerId(0))]
    );
    // Nothing more is taken from that player.
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 2, "cmd": {"kind": "surrender"}}),
    )
    .await;
    let (r, _) = recv_until(&mut ws, |v| v["seq"] == 2).await;
    assert_eq!(r["code"], "match_over");
    services.stop().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_player_match_goes_on_after_a_player_leaves_and_takes_them_back() {
    let gw = TestGateway::start().await;
    let services = Services::start(&gw);
    let (m, token) = create(&gw, "two_players").await;
    let (mut ws, w) = gw.join(&token, None).await;
    assert_eq!(w["player"], 0);
    let (kf, _) = recv_until(&mut ws, |v| v["t"] == "keyframe").await;
    let mine: Vec<u64> = kf["entities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["owner"] == 0 && e["building"] == false)
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert!(!mine.is_empty());
    let (d, _) = recv_until(&mut ws, |v| v["t"] == "delta").await;
    let left_at = d["tick"].as_u64().unwrap();
    // Leaving: the socket closes, no surrender.
    drop(ws);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = summary(&gw, &m).await;
    assert_eq!(s["status"], "live", "the match goes on");
    assert!(surrenders(&gw.commands(&m).await).is_empty());
    // The slot is not handed to anyone else …
    let (status, _) = gw
        .http(
            "POST",
            &format!("/api/matches/{m}/join"),
            Some(json!({"player": 0})),
        )
        .await;
    assert_eq!(status, 409);
    // … and the player's token takes it back, resuming from where the client left.
    let (mut ws, w) = gw.join(&token, Some(left_at)).await;
    assert_eq!(w["role"], "player");
    assert_eq!(w["player"], 0);
    let (next, _) = recv_until(&mut ws, |v| v["t"] == "delta" || v["t"] == "keyframe").await;
    assert!(next["tick"].as_u64().unwrap() > left_at);
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 1, "cmd": {"kind": "stop", "units": [mine[0]]}}),
    )
    .await;
    let (a, _) = recv_until(&mut ws, |v| v["seq"] == 1).await;
    assert_eq!(a["t"], "ack", "{a}");
    // The engine takes the order (no rejection follows within a second).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Some(v) = try_recv(
        &mut ws,
        deadline.saturating_duration_since(tokio::time::Instant::now()),
    )
    .await
    {
        assert_ne!(v["t"], "rejected", "{v}");
    }
    services.stop().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_match_against_the_ai_ends_with_the_players_surrender() {
    let after = Duration::from_secs(1);
    let gw = TestGateway::start_with(events::MemoryBus::new(), |c| {
        c.abandoned_match_after = Some(after);
    })
    .await;
    let services = Services::start(&gw);
    // Joined, then left; never joined; still playing; two humans, both away.
    let (left, left_token) = create(&gw, "vs_ai").await;
    let (never, _) = create(&gw, "vs_ai").await;
    let (playing, playing_token) = create(&gw, "vs_ai").await;
    let (two, _) = create(&gw, "two_players").await;
    let (mut ws, _) = gw.join(&left_token, None).await;
    recv_until(&mut ws, |v| v["t"] == "keyframe").await;
    drop(ws);
    let (mut stay, _) = gw.join(&playing_token, None).await;
    for m in [&left, &never] {
        let s = ended(&gw, m, Duration::from_secs(20))
            .await
            .expect("the abandoned match ends");
        assert_eq!(s["winner"], 1, "the AI wins");
        assert_eq!(
            surrenders(&gw.commands(m).await),
            vec![Source::Player(PlayerId(0))],
            "ended by one surrender of the absent player"
        );
    }
    // The session kept answering pings all along; that match and the two-player one go on.
    send(&mut stay, json!({"t": "ping", "id": 1})).await;
    recv_until(&mut stay, |v| v["t"] == "pong").await;
    for m in [&playing, &two] {
        assert_eq!(summary(&gw, m).await["status"], "live");
        assert!(surrenders(&gw.commands(m).await).is_empty());
    }
    services.stop().await;
    gw.stop().await;
}
