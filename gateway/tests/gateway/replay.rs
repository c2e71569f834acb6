//! Recorded matches: spectating an ended match replays its log (re-run by the replay
//! tool), paced and controllable (pause, speed, seek), ending at the recording's end.

use std::sync::Arc;
use std::time::Duration;

use engine::Rules;
use events::{Bus, Difficulty, Envelope, IdSpec, MatchEnded, MatchEvent, Source};
use replay_tool::bus::{import, ImportOptions};
use replay_tool::progress::NoProgress;
use replay_tool::record::{ai_vs_ai, RecordConfig, Recorder};
use serde_json::json;

use crate::common::*;

const TICKS: u64 = 300;

#[tokio::test]
async fn an_ended_match_is_replayed_with_pause_speed_and_seek() {
    let gw = TestGateway::start().await;
    let setup = ai_vs_ai("rec1", 3, 32, Difficulty::Normal).unwrap();
    let mut rec =
        Recorder::new(Arc::new(Rules::standard()), &setup, RecordConfig::default()).unwrap();
    rec.run(TICKS, &NoProgress).unwrap();
    let recording = rec.finish().unwrap();
    import(&gw.bus, &gw.keys, &recording, &ImportOptions::default())
        .await
        .unwrap();
    // The match was cut short: record its end as the engine would.
    let m = setup.match_id.clone();
    let ended = Envelope::new(
        m.clone(),
        Source::System,
        MatchEvent::MatchEnded(MatchEnded {
            match_id: m.clone(),
            tick: TICKS - 1,
            winner: None,
        }),
    );
    gw.bus
        .append(
            &gw.keys.matches(),
            IdSpec::Auto,
            &events::encode(&ended).unwrap(),
            None,
        )
        .await
        .unwrap();
    let (_, body) = gw.http("GET", "/api/matches", None).await;
    assert!(body.contains("\"recorded\":[{"), "{body}");

    let (mut ws, w) = gw.spectate(&m, None).await;
    assert_eq!(w["role"], "spectator");
    assert_eq!(w["replay"]["last_tick"], TICKS - 1);
    let (st, _) = recv_until(&mut ws, |v| v["t"] == "replay_state").await;
    assert_eq!(st["playing"], true);
    // Frames arrive in tick order from tick 0.
    let mut ticks = Vec::new();
    while ticks.len() < 5 {
        let v = recv(&mut ws).await;
        if v["t"] == "delta" {
            ticks.push(v["tick"].as_u64().unwrap());
        }
    }
    assert_eq!(ticks, vec![0, 1, 2, 3, 4]);
    // Pause: frames stop.
    send(&mut ws, json!({"t": "replay", "action": "pause"})).await;
    let (st, _) = recv_until(&mut ws, |v| v["t"] == "replay_state").await;
    assert_eq!(st["playing"], false);
    while let Some(v) = try_recv(&mut ws, Duration::from_millis(300)).await {
        assert_ne!(v["t"], "delta", "a paused replay sent {v}");
    }
    // Seek: a keyframe of that tick, with both bases in it.
    send(&mut ws, json!({"t": "replay", "seek": 200})).await;
    let kf = recv(&mut ws).await;
    assert_eq!(kf["t"], "keyframe");
    assert_eq!(kf["tick"], 200);
    let owners: std::collections::BTreeSet<u64> = kf["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["owner"].as_u64().unwrap())
        .collect();
    assert_eq!(owners.len(), 2);
    // The players' standings at that tick, then the replay's state.
    let ps = recv(&mut ws).await;
    assert_eq!(ps["t"], "players_stats");
    assert_eq!(ps["tick"], 200);
    assert_eq!(ps["players"].as_array().map(Vec::len), Some(2));
    let st = recv(&mut ws).await;
    assert_eq!(st["t"], "replay_state");
    assert_eq!(st["tick"], 200);
    assert_eq!(st["playing"], false, "seeking keeps a paused replay paused");
    // Play fast to the end.
    send(
        &mut ws,
        json!({"t": "replay", "action": "play", "speed": 16.0}),
    )
    .await;
    let mut last = 200;
    loop {
        let v = recv(&mut ws).await;
        if v["t"] == "delta" {
            let t = v["tick"].as_u64().unwrap();
            assert_eq!(t, last + 1, "ticks in order without gaps");
            last = t;
        }
        if v["t"] == "replay_state" && v["playing"] == false {
            break;
        }
    }
    assert_eq!(last, TICKS - 1);
    // The end brings the score.
    let score = recv(&mut ws).await;
    assert_eq!(score["t"], "score", "{score}");
    assert_eq!(score["ticks"], TICKS);
    // A replay cannot be commanded.
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 1, "cmd": {"kind": "stop", "units": [1]}}),
    )
    .await;
    let (r, _) = recv_until(&mut ws, |v| v["seq"] == 1).await;
    assert_eq!(r["code"], "read_only");
    gw.stop().await;
}

/// A gateway that knew a match while it was live replays it once it has ended, without
/// anyone reading the lobby list first (the lobby looks for the end when asked).
#[tokio::test]
async fn a_match_seen_live_is_replayed_once_it_ends() {
    let gw = TestGateway::start().await;
    let setup = ai_vs_ai("rec-late", 4, 32, Difficulty::Easy).unwrap();
    let mut rec =
        Recorder::new(Arc::new(Rules::standard()), &setup, RecordConfig::default()).unwrap();
    rec.run(60, &NoProgress).unwrap();
    let recording = rec.finish().unwrap();
    import(&gw.bus, &gw.keys, &recording, &ImportOptions::default())
        .await
        .unwrap();
    let m = setup.match_id.clone();
    let (code, body) = gw.http("GET", &format!("/api/matches/{m}"), None).await;
    assert_eq!(code, 200);
    assert!(body.contains("\"status\":\"live\""), "{body}");
    let ended = Envelope::new(
        m.clone(),
        Source::System,
        MatchEvent::MatchEnded(MatchEnded {
            match_id: m.clone(),
            tick: 59,
            winner: None,
        }),
    );
    gw.bus
        .append(
            &gw.keys.matches(),
            IdSpec::Auto,
            &events::encode(&ended).unwrap(),
            None,
        )
        .await
        .unwrap();
    let (_, w) = gw.spectate(&m, None).await;
    assert_eq!(w["replay"]["last_tick"], 59, "{w}");
    let (_, body) = gw.http("GET", &format!("/api/matches/{m}"), None).await;
    assert!(body.contains("\"status\":\"ended\""), "{body}");
}
