//! The HTTP surface: lobby API (create, list, join), health, readiness, metrics and the
//! client's files.

use serde_json::{json, Value};

use crate::common::*;

#[tokio::test]
async fn lobby_creates_lists_and_joins_matches() {
    let gw = TestGateway::start().await;
    let (s, body) = gw
        .http(
            "POST",
            "/api/matches",
            Some(json!({"mode": "vs_ai", "difficulty": "hard", "map_size": 48, "seed": 5})),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let c: Value = serde_json::from_str(&body).unwrap();
    let id = c["match"].as_str().unwrap().to_string();
    assert_eq!(c["summary"]["map_size"], 48);
    assert_eq!(c["summary"]["seed"], 5);
    assert_eq!(c["summary"]["players"][1]["kind"], "ai_hard");
    assert_eq!(c["grant"]["player"], 0);
    // The grant's token verifies with the shared secret.
    let g = gw
        .signer
        .verify(c["grant"]["token"].as_str().unwrap())
        .unwrap();
    assert_eq!(g.match_id.as_str(), id);
    // The MatchCreated went onto the matches stream.
    assert_eq!(
        events::Bus::len(&gw.bus, &gw.keys.matches()).await.unwrap(),
        1
    );
    // The only human slot is taken now.
    let (s, _) = gw
        .http("POST", &format!("/api/matches/{id}/join"), None)
        .await;
    assert_eq!(s, 409);

    let (s, body) = gw
        .http("POST", "/api/matches", Some(json!({"mode": "two_players"})))
        .await;
    assert_eq!(s, 201);
    let two: Value = serde_json::from_str(&body).unwrap();
    let two_id = two["match"].as_str().unwrap().to_string();
    assert_eq!(two["summary"]["map_size"], 64, "the rules' default size");
    let (s, body) = gw
        .http(
            "POST",
            &format!("/api/matches/{two_id}/join"),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let j: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["player"], 1);

    let (s, body) = gw
        .http("POST", "/api/matches", Some(json!({"mode": "ai_vs_ai"})))
        .await;
    assert_eq!(s, 201);
    let ai: Value = serde_json::from_str(&body).unwrap();
    assert!(ai["grant"].is_null(), "nobody plays an AI-vs-AI match");

    let (s, body) = gw.http("GET", "/api/matches", None).await;
    assert_eq!(s, 200);
    let l: Value = serde_json::from_str(&body).unwrap();
    let live: Vec<&str> = l["live"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["match"].as_str().unwrap())
        .collect();
    assert_eq!(live.len(), 3);
    assert_eq!(live[2], id, "newest first");
    assert!(l["recorded"].as_array().unwrap().is_empty());

    let (s, _) = gw.http("GET", &format!("/api/matches/{id}"), None).await;
    assert_eq!(s, 200);
    let (s, _) = gw.http("GET", "/api/matches/nope", None).await;
    assert_eq!(s, 404);
    for bad in [
        json!({"mode": "chess"}),
        json!({"mode": "vs_ai", "map_size": 4}),
        json!({"mode": "vs_ai", "difficulty": "brutal"}),
    ] {
        let (s, _) = gw.http("POST", "/api/matches", Some(bad)).await;
        assert_eq!(s, 400);
    }
    gw.stop().await;
}

#[tokio::test]
async fn ended_matches_are_listed_as_recorded() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    gw.write_view(&m, frame(0, events::ViewKind::Keyframe, vec![], vec![]))
        .await;
    let (mut ws, _) = gw.spectate(&m, None).await;
    gw.write_tick(
        &m,
        1,
        vec![events::GameEvent::MatchWon {
            winner: Some(events::PlayerId(1)),
        }],
    )
    .await;
    recv_until(&mut ws, |v| v["t"] == "game_over").await;
    // The engine records the end on the matches stream; the lobby lists it as recorded.
    end_match(&gw, &m).await;
    let mut recorded = Value::Null;
    for _ in 0..50 {
        let (_, body) = gw.http("GET", "/api/matches", None).await;
        let l: Value = serde_json::from_str(&body).unwrap();
        if !l["recorded"].as_array().unwrap().is_empty() {
            recorded = l["recorded"][0].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(recorded["match"], m.as_str());
    assert_eq!(recorded["winner"], 1);
    assert_eq!(recorded["status"], "ended");
    gw.stop().await;
}

/// Appends a match's `MatchEnded` to the matches stream, as the engine does.
async fn end_match(gw: &TestGateway, m: &events::MatchId) {
    let ended = events::Envelope::new(
        m.clone(),
        events::Source::System,
        events::MatchEvent::MatchEnded(events::MatchEnded {
            match_id: m.clone(),
            tick: 1,
            winner: Some(events::PlayerId(1)),
        }),
    );
    events::Bus::append(
        &gw.bus,
        &gw.keys.matches(),
        events::IdSpec::Auto,
        &events::encode(&ended).unwrap(),
        None,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn only_kept_recordings_are_listed() {
    // Where only the last recording to end is kept (embedded mode keeps a few), the lobby
    // neither lists nor finds the older ones: a listed replay always opens.
    let gw =
        TestGateway::start_with(events::MemoryBus::new(), |c| c.kept_recordings = Some(1)).await;
    // The second match is created first and ends last.
    let second = gw.create_match().await;
    let first = gw.create_match().await;
    end_match(&gw, &first).await;
    end_match(&gw, &second).await;
    let (s, body) = gw.http("GET", "/api/matches", None).await;
    assert_eq!(s, 200, "{body}");
    let l: Value = serde_json::from_str(&body).unwrap();
    let recorded: Vec<&str> = l["recorded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["match"].as_str().unwrap())
        .collect();
    assert_eq!(recorded, vec![second.as_str()]);
    let (s, body) = gw.http("GET", &format!("/api/matches/{first}"), None).await;
    assert_eq!(s, 404, "{body}");
    assert!(body.contains("no longer kept"), "{body}");
    let (s, _) = gw
        .http("GET", &format!("/api/matches/{second}"), None)
        .await;
    assert_eq!(s, 200);
    gw.stop().await;
}

#[tokio::test]
async fn health_ready_metrics_and_client_files() {
    let gw = TestGateway::start().await;
    assert_eq!(gw.http("GET", "/health", None).await.0, 200);
    let (s, body) = gw.http("GET", "/ready", None).await;
    assert_eq!(s, 200);
    assert!(body.contains("\"ready\":true"));
    let (s, body) = gw.http("GET", "/", None).await;
    assert_eq!(s, 200);
    assert!(body.contains("<canvas id=\"view\""));
    for f in gateway::assets::FILES {
        let (s, body) = gw.http("GET", &format!("/{}", f.0), None).await;
        assert_eq!(s, 200, "{}", f.0);
        assert!(!body.is_empty());
    }
    assert_eq!(gw.http("GET", "/nope.js", None).await.0, 404);
    // Metrics are not served to players: they are on the ops endpoint.
    assert_eq!(gw.http("GET", "/metrics", None).await.0, 404);
    let (s, body) = gw.ops_http("GET", "/metrics").await;
    assert_eq!(s, 200);
    assert!(body.contains("# TYPE gateway_ws_sessions gauge"), "{body}");
    assert_eq!(gw.ops_http("GET", "/health").await.0, 200);
    let (s, body) = gw.ops_http("GET", "/ready").await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("\"ready\":true"), "{body}");
    gw.stop().await;
}

#[tokio::test]
async fn every_http_error_is_a_json_error_object() {
    let gw = TestGateway::start().await;
    let big = format!(
        "{{\"mode\": \"vs_ai\", \"name\": \"{}\"}}",
        "x".repeat(20_000)
    );
    let cases: Vec<(&str, String, Option<&str>, String, u16)> = vec![
        // Not JSON, JSON of the wrong shape, no content type, a body over the limit.
        (
            "POST",
            "/api/matches".into(),
            Some("application/json"),
            "{nope".into(),
            400,
        ),
        (
            "POST",
            "/api/matches".into(),
            Some("application/json"),
            "{\"mode\": 5}".into(),
            422,
        ),
        (
            "POST",
            "/api/matches".into(),
            None,
            "{\"mode\": \"vs_ai\"}".into(),
            415,
        ),
        (
            "POST",
            "/api/matches".into(),
            Some("application/json"),
            big.clone(),
            413,
        ),
        (
            "POST",
            "/api/matches/abc/join".into(),
            Some("application/json"),
            big,
            413,
        ),
        (
            "POST",
            "/api/matches/abc/join".into(),
            Some("application/json"),
            "{\"player\": \"x\"}".into(),
            400,
        ),
        // The lobby's own refusals.
        (
            "POST",
            "/api/matches".into(),
            Some("application/json"),
            "{\"mode\": \"chess\"}".into(),
            400,
        ),
        ("GET", "/api/matches/nope".into(), None, String::new(), 404),
        // No such route or method, a missing file, a plain GET of the socket path.
        ("GET", "/api/matches/a/b/c".into(), None, String::new(), 404),
        ("DELETE", "/api/matches".into(), None, String::new(), 405),
        ("GET", "/no-such-file.js".into(), None, String::new(), 404),
        ("GET", "/ws".into(), None, String::new(), 0),
    ];
    for (method, path, ctype, body, status) in cases {
        let (s, text) = gw.http_raw(method, &path, ctype, &body).await;
        if status != 0 {
            assert_eq!(s, status, "{method} {path}: {text}");
        } else {
            assert!((400..500).contains(&s), "{method} {path}: {s} {text}");
        }
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path} ({s}): not JSON ({e}): {text:?}"));
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{method} {path}: {v}"
        );
    }
    gw.stop().await;
}
