//! Embedded mode keeps no per-match state of ended matches beyond their recording, and
//! only the newest recordings: AI matches played to their end by the in-process engine and
//! economy leave their durable streams (what a replay reads, and the replay still plays)
//! but no view stream and no other stream on the bus, and the oldest recording beyond the
//! kept number is dropped.

use std::time::Duration;

use events::MemoryBus;
use gateway::embedded::{self, EmbeddedConfig, RetentionConfig};
use gateway::GatewayConfig;
use serde_json::{json, Value};

use crate::common::{recv, send, TestGateway};

/// Matches played to their end.
const MATCHES: usize = 2;
/// How long the matches may take (unpaced, on the smallest map).
const PLAY_LIMIT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_matches_keep_their_recording_and_nothing_else() {
    let bus = MemoryBus::new();
    let gw = TestGateway::start_on(bus.clone()).await;
    let config = GatewayConfig {
        keys: gw.keys.clone(),
        ..GatewayConfig::default()
    };
    let mut services = EmbeddedConfig::default();
    services.engine.pace = engine::service::Pace::Unpaced;
    services.retention = RetentionConfig {
        view_grace: Duration::from_millis(300),
        max_recordings: MATCHES - 1,
    };
    let services = embedded::start(bus.clone(), &config, services);
    let mut ids = Vec::new();
    for seed in 0..MATCHES {
        let (status, body) = gw
            .http(
                "POST",
                "/api/matches",
                Some(
                    json!({"mode": "ai_vs_ai", "difficulty": "hard", "map_size": 32, "seed": seed}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        ids.push(v["match"].as_str().unwrap().to_string());
    }
    // A spectator watches the first match live (its hub reads the view stream).
    let (mut live, _) = gw
        .spectate(&events::MatchId::new(&ids[0]).unwrap(), None)
        .await;
    let started = std::time::Instant::now();
    loop {
        let (_, body) = gw.http("GET", "/api/matches", None).await;
        let list: Value = serde_json::from_str(&body).unwrap();
        let ended = list["recorded"].as_array().unwrap().len();
        if ended == MATCHES {
            break;
        }
        assert!(
            started.elapsed() < PLAY_LIMIT,
            "the matches did not end in time: {list}"
        );
        // Keep the spectator's queue drained.
        while crate::common::try_recv(&mut live, Duration::from_millis(1))
            .await
            .is_some()
        {}
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("matches ended after {:?}", started.elapsed());
    drop(live);
    // After the grace period, an ended match's streams are its recording only, and only
    // the newest MATCHES - 1 recordings are kept.
    let recording = ["cmd", "tick", "eco", "snap", "seek"];
    let clean = |bus: &MemoryBus| {
        let held = bus.footprint();
        let kept: Vec<&String> = ids
            .iter()
            .filter(|m| {
                held.iter()
                    .any(|s| s.name.ends_with(&format!("{{m:{m}}}:tick")))
            })
            .collect();
        let only_recordings = held.iter().all(|s| {
            s.name.ends_with(":matches")
                || (s.groups == 0 && recording.iter().any(|k| s.name.ends_with(&format!(":{k}"))))
        });
        (
            kept.len() == MATCHES - 1 && only_recordings,
            held,
            kept.into_iter().cloned().collect::<Vec<_>>(),
        )
    };
    let mut state = clean(&bus);
    for _ in 0..100 {
        if state.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        state = clean(&bus);
    }
    let (ok, held, kept) = state;
    assert!(
        ok,
        "the bus holds more than the newest recordings: {:#?}",
        held.iter()
            .map(|s| format!(
                "{} ({} entries, {} bytes, {} groups)",
                s.name, s.entries, s.bytes, s.groups
            ))
            .collect::<Vec<_>>()
    );
    for s in &held {
        eprintln!("{} {} entries {} bytes", s.name, s.entries, s.bytes);
    }
    // An ended match still replays from the lobby.
    let mut ws = gw.ws().await;
    send(&mut ws, json!({"t": "hello", "protocol": 2})).await;
    assert_eq!(recv(&mut ws).await["t"], "hello_ok");
    send(&mut ws, json!({"t": "spectate", "match": kept[0]})).await;
    let welcome = recv(&mut ws).await;
    assert_eq!(welcome["t"], "welcome", "{welcome}");
    assert!(!welcome["replay"].is_null(), "{welcome}");
    services.stop().await;
    gw.stop().await;
}
