//! Protocol round trips: handshake, welcome, frames, commands, rejections, ledger,
//! ping/pong, version mismatch, and malformed frames that get an error reply.

use std::time::Duration;

use events::{
    BuildingKind, Cell, Command, GameEvent, LedgerEvent, PlayerId, RejectReason, Source, UnitKind,
    ViewKind,
};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use futures::{SinkExt, StreamExt};

use crate::common::*;

#[tokio::test]
async fn join_gets_welcome_keyframe_ledger_and_commands_round_trip() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    gw.write_view(
        &m,
        frame(
            0,
            ViewKind::Keyframe,
            vec![
                unit(1, 0, UnitKind::Rifleman, (3, 3), 0b01),
                unit(2, 1, UnitKind::Rifleman, (20, 20), 0b10),
            ],
            vec![],
        ),
    )
    .await;
    let (mut ws, welcome) = gw.join(&gw.token(&m, 0), None).await;
    assert_eq!(welcome["role"], "player");
    assert_eq!(welcome["player"], 0);
    assert_eq!(welcome["protocol"], 2);
    assert_eq!(welcome["match"], m.as_str());
    assert_eq!(welcome["map"]["terrain"].as_str().unwrap().len(), 32 * 32);
    assert_eq!(welcome["rules"]["buildings"]["power_plant"]["width"], 2);
    assert_eq!(welcome["players"].as_array().unwrap().len(), 2);

    let kf = recv(&mut ws).await;
    assert_eq!(kf["t"], "keyframe");
    assert_eq!(kf["tick"], 0);
    let ids: Vec<u64> = kf["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![1], "the enemy rifleman is in the fog");
    let ledger = recv(&mut ws).await;
    assert_eq!(ledger["t"], "ledger");
    assert_eq!(ledger["credits"], 5000, "the rules' starting credits");

    // A delta moves our unit.
    let mut moved = unit(1, 0, UnitKind::Rifleman, (4, 3), 0b01);
    moved.facing = 64;
    gw.write_view(&m, frame(1, ViewKind::Delta, vec![moved], vec![]))
        .await;
    let d = recv(&mut ws).await;
    assert_eq!(d["t"], "delta");
    assert_eq!(d["tick"], 1);
    assert_eq!(d["entities"][0]["x"], 4 * 1024 + 512);
    assert_eq!(d["entities"][0]["facing"], 64);
    assert_eq!(d["entities"][0]["kind"], "rifleman");

    // A command becomes an Envelope<Command> from Player(0) on the cmd stream.
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 7, "cmd": {"kind": "move", "units": [1], "to": [10, 11]}}),
    )
    .await;
    let ack = recv(&mut ws).await;
    assert_eq!(ack["t"], "ack");
    assert_eq!(ack["seq"], 7);
    let cmds = gw.commands(&m).await;
    assert_eq!(cmds.len(), 1);
    assert_eq!(cmds[0].source, Source::Player(PlayerId(0)));
    assert_eq!(cmds[0].id.to_string(), ack["id"].as_str().unwrap());
    match &cmds[0].body {
        Command::MoveUnits(mv) => {
            assert_eq!(mv.units, vec![events::UnitId(1)]);
            assert_eq!((mv.to.x, mv.to.y), (10, 11));
        }
        other => panic!("unexpected command {other:?}"),
    }

    // The engine rejects it: the notice comes back with the client's seq.
    gw.write_tick(
        &m,
        1,
        vec![GameEvent::CommandRejected {
            command: cmds[0].id,
            player: Some(PlayerId(0)),
            reason: RejectReason::Unreachable(events::Cell::new(10, 11)),
        }],
    )
    .await;
    let (rej, _) = recv_until(&mut ws, |v| v["t"] == "rejected").await;
    assert_eq!(rej["seq"], 7);
    assert_eq!(rej["code"], "unreachable");

    // Production goes to the same stream; the economy's ledger reaches only its player.
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 8, "cmd": {"kind": "queue", "item": "power_plant"}}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["t"], "ack");
    let cmds = gw.commands(&m).await;
    assert!(matches!(cmds[1].body, Command::QueueProduction(_)));
    gw.write_eco(
        &m,
        2,
        vec![
            LedgerEvent::CreditsChanged {
                player: PlayerId(1),
                delta: -1,
                balance: 1111,
            },
            LedgerEvent::CreditsChanged {
                player: PlayerId(0),
                delta: -300,
                balance: 4700,
            },
            LedgerEvent::PowerChanged {
                player: PlayerId(0),
                output: 100,
                consumption: 0,
                speed_pct: 100,
            },
            LedgerEvent::CommandRejected {
                command: cmds[1].id,
                player: Some(PlayerId(0)),
                reason: RejectReason::NoFunds,
            },
        ],
    )
    .await;
    let (rej, _) = recv_until(&mut ws, |v| v["t"] == "rejected").await;
    assert_eq!(rej["seq"], 8);
    assert_eq!(rej["code"], "no_funds");
    let (ledger, _) = recv_until(&mut ws, |v| v["t"] == "ledger").await;
    assert_eq!(ledger["credits"], 4700);
    assert_eq!(ledger["power_output"], 100);
    // No ledger of player 1 ever reaches player 0.
    while let Some(v) = try_recv(&mut ws, Duration::from_millis(400)).await {
        assert_ne!(v["credits"], 1111, "leaked another player's ledger: {v}");
    }

    // Ping / pong.
    send(&mut ws, json!({"t": "ping", "id": 99})).await;
    let (pong, _) = recv_until(&mut ws, |v| v["t"] == "pong").await;
    assert_eq!(pong["id"], 99);

    // Game over reaches everyone.
    gw.write_tick(
        &m,
        3,
        vec![GameEvent::MatchWon {
            winner: Some(PlayerId(0)),
        }],
    )
    .await;
    let (over, _) = recv_until(&mut ws, |v| v["t"] == "game_over").await;
    assert_eq!(over["winner"], 0);
    gw.stop().await;
}

#[tokio::test]
async fn version_mismatch_is_a_typed_error() {
    let gw = TestGateway::start().await;
    let mut ws = gw.ws().await;
    send(&mut ws, json!({"t": "hello", "protocol": 99})).await;
    let e = recv(&mut ws).await;
    assert_eq!(e["t"], "error");
    assert_eq!(e["code"], "protocol_mismatch");
    assert_eq!(e["expected"], 2);
    assert!(
        try_recv(&mut ws, Duration::from_secs(2)).await.is_none(),
        "the connection closes after a mismatch"
    );
    gw.stop().await;
}

#[tokio::test]
async fn malformed_and_unknown_frames_get_error_replies_and_never_kill_the_session() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    gw.write_view(&m, frame(0, ViewKind::Keyframe, vec![], vec![]))
        .await;
    let mut ws = gw.ws().await;
    let bad = [
        "not json at all",
        "{\"no\": \"type\"}",
        "{\"t\": 5}",
        "{\"t\": \"bogus\"}",
        "{\"t\": \"hello\"}",
        "{\"t\": \"join\"}",
        "[1,2,3]",
        "{\"t\": \"cmd\", \"seq\": \"x\"}",
    ];
    for b in bad {
        send_raw(&mut ws, b).await;
        let e = recv(&mut ws).await;
        assert_eq!(e["t"], "error", "for {b}: {e}");
        assert!(
            ["malformed", "unknown_type"].contains(&e["code"].as_str().unwrap()),
            "{e}"
        );
    }
    // Joining before hello is refused, then the handshake still works.
    send(&mut ws, json!({"t": "join", "token": gw.token(&m, 0)})).await;
    assert_eq!(recv(&mut ws).await["code"], "hello_required");
    ws.send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await["code"], "binary_not_supported");
    send(&mut ws, json!({"t": "hello", "protocol": 2})).await;
    assert_eq!(recv(&mut ws).await["t"], "hello_ok");
    send(&mut ws, json!({"t": "join", "token": gw.token(&m, 0)})).await;
    assert_eq!(recv(&mut ws).await["t"], "welcome");
    // In the game loop too.
    for b in bad {
        send_raw(&mut ws, b).await;
        let (e, _) = recv_until(&mut ws, |v| v["t"] == "error").await;
        assert!(
            ["malformed", "unknown_type", "already_joined"].contains(&e["code"].as_str().unwrap()),
            "{e}"
        );
    }
    // A malformed command whose seq can be read is answered for that seq.
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 1, "cmd": {"kind": "teleport", "units": [1]}}),
    )
    .await;
    let (e, _) = recv_until(&mut ws, |v| v["t"] == "rejected").await;
    assert_eq!(e["seq"], 1);
    assert_eq!(e["code"], "malformed");
    assert!(e["message"].as_str().unwrap().contains("teleport"), "{e}");
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 9, "cmd": {"kind": "move", "units": [1], "to": "here"}}),
    )
    .await;
    let (e, _) = recv_until(&mut ws, |v| v["t"] == "rejected").await;
    assert_eq!(
        (e["seq"].as_u64(), e["code"].as_str()),
        (Some(9), Some("malformed"))
    );
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 2, "cmd": {"kind": "queue", "item": "nuke"}}),
    )
    .await;
    let (r, _) = recv_until(&mut ws, |v| v["t"] == "rejected").await;
    assert_eq!(r["code"], "unknown_item");
    send(&mut ws, json!({"t": "ping", "id": 5})).await;
    let (p, _) = recv_until(&mut ws, |v| v["t"] == "pong").await;
    assert_eq!(p["id"], 5);
    assert!(gw.commands(&m).await.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn commands_are_rate_limited_per_connection() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    gw.write_view(&m, frame(0, ViewKind::Keyframe, vec![], vec![]))
        .await;
    let (mut ws, _) = gw.join(&gw.token(&m, 0), None).await;
    for seq in 0..60u64 {
        send(
            &mut ws,
            json!({"t": "cmd", "seq": seq, "cmd": {"kind": "stop", "units": [1]}}),
        )
        .await;
    }
    let (mut acks, mut limited) = (0, 0);
    while acks + limited < 60 {
        let v = recv(&mut ws).await;
        match v["t"].as_str() {
            Some("ack") => acks += 1,
            Some("rejected") if v["code"] == "rate_limited" => limited += 1,
            _ => {}
        }
    }
    assert!(
        (20..=22).contains(&acks),
        "a burst of 20 (plus refill) passes, got {acks}"
    );
    assert_eq!(acks + limited, 60);
    assert_eq!(gw.commands(&m).await.len(), acks);
    // After a second the bucket has refilled.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 100, "cmd": {"kind": "stop", "units": [1]}}),
    )
    .await;
    let (a, _) = recv_until(&mut ws, |v| v["seq"] == 100).await;
    assert_eq!(a["t"], "ack");
    gw.stop().await;
}

#[tokio::test]
async fn a_burst_of_frames_larger_than_the_send_queue_is_answered_in_full() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    gw.write_view(&m, frame(0, ViewKind::Keyframe, vec![], vec![]))
        .await;
    let (mut ws, _) = gw.join(&gw.token(&m, 0), None).await;
    // Three times the send queue in one write: the gateway reads them back to back.
    let n = 3 * gateway::limits::SEND_QUEUE_CAPACITY as u64;
    for id in 0..n {
        ws.feed(Message::Text(
            json!({"t": "ping", "id": id}).to_string().into(),
        ))
        .await
        .unwrap();
    }
    ws.flush().await.unwrap();
    let mut pongs = Vec::new();
    while (pongs.len() as u64) < n {
        let Some(v) = try_recv(&mut ws, Duration::from_secs(10)).await else {
            panic!("closed after {} of {n} pongs", pongs.len());
        };
        assert_ne!(v["t"], "error", "{v}");
        if v["t"] == "pong" {
            pongs.push(v["id"].as_u64().unwrap());
        }
    }
    assert_eq!(
        pongs,
        (0..n).collect::<Vec<_>>(),
        "every ping answered, in order"
    );
    gw.stop().await;
}

#[tokio::test]
async fn telemetry_feeds_the_metrics() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    gw.write_view(&m, frame(0, ViewKind::Keyframe, vec![], vec![]))
        .await;
    let (mut ws, _) = gw.join(&gw.token(&m, 0), None).await;
    send(
        &mut ws,
        json!({"t": "telemetry", "selection_latency_ms": [3.0, 12.0, 40.0, -1.0, 1e99], "frame_ms": [16.0, 17.0]}),
    )
    .await;
    send(&mut ws, json!({"t": "ping", "id": 1})).await;
    recv_until(&mut ws, |v| v["t"] == "pong").await;
    let (status, body) = gw.ops_http("GET", "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("selection_latency_ms_bucket{le=\"16\"}"),
        "{body}"
    );
    assert!(body.contains("client_frame_time_ms"), "{body}");
    assert!(body.contains("gateway_ws_sessions"), "{body}");
    gw.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_counted() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    gw.write_view(&m, frame(0, ViewKind::Keyframe, vec![], vec![]))
        .await;
    let (mut ws, _) = gw.spectate(&m, None).await;
    // ~40 KB per frame; the client reads nothing while hundreds are written.
    let big: Vec<events::EntityView> = (0..300)
        .map(|i| unit(i, (i % 2) as u8, UnitKind::HeavyTank, (1, 1), 0b11))
        .collect();
    for t in 1..900u64 {
        gw.write_view(&m, frame(t, ViewKind::Keyframe, big.clone(), vec![]))
            .await;
        if t % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Draining what was buffered ends in a close (policy, 1008), not in tick 899.
    let mut last = 0;
    let mut too_slow = false;
    let mut close = None;
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        match msg {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if let Some(t) = v["tick"].as_u64() {
                    last = t;
                }
                too_slow |= v["code"] == "too_slow";
            }
            Ok(Message::Close(f)) => {
                close = f.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(last < 899, "a client that never read got every frame");
    assert_eq!(close, Some(1008), "a slow client's socket closes with 1008");
    let (_, metrics) = gw.ops_http("GET", "/metrics").await;
    assert!(
        metrics.contains("gateway_slow_clients_dropped_total"),
        "the drop is counted (too_slow notice seen: {too_slow})"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_delayed_spectator_sees_the_same_frames_later() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    gw.write_view(&m, frame(0, ViewKind::Keyframe, vec![], vec![]))
        .await;
    let (mut live, _) = gw.spectate(&m, None).await;
    let mut delayed = gw.ws().await;
    send(&mut delayed, json!({"t": "hello", "protocol": 2})).await;
    assert_eq!(recv(&mut delayed).await["t"], "hello_ok");
    // Past the limit: a clear error, and the session goes on.
    send(
        &mut delayed,
        json!({"t": "spectate", "match": m.as_str(), "delay_s": 301}),
    )
    .await;
    assert_eq!(recv(&mut delayed).await["code"], "bad_delay");
    send(
        &mut delayed,
        json!({"t": "spectate", "match": m.as_str(), "delay_s": 2}),
    )
    .await;
    assert_eq!(recv(&mut delayed).await["t"], "welcome");
    let joined = tokio::time::Instant::now();

    let pos = |t: u64| unit(1, 0, UnitKind::Rifleman, (1 + t as i32, 1), 0b11);
    for t in 1..=5u64 {
        gw.write_view(&m, frame(t, ViewKind::Delta, vec![pos(t)], vec![]))
            .await;
    }
    let ticks = |frames: &[Value]| -> Vec<u64> {
        frames.iter().filter_map(|v| v["tick"].as_u64()).collect()
    };
    // The live spectator has them at once.
    let (_, mut seen) = recv_until(&mut live, |v| v["tick"] == 5).await;
    seen.push(json!({"tick": 5}));
    assert_eq!(ticks(&seen), vec![0, 1, 2, 3, 4, 5]);
    // The delayed one gets nothing before its delay is up (a lower bound only: the
    // messages are held at least that long) …
    assert!(
        try_recv(&mut delayed, Duration::from_millis(1500))
            .await
            .is_none(),
        "a frame arrived before the delay was up"
    );
    // … then the very same frames, in order, each once.
    let mut got = Vec::new();
    while got.last().and_then(|v: &Value| v["tick"].as_u64()) != Some(5) {
        got.push(recv(&mut delayed).await);
    }
    assert!(joined.elapsed() >= Duration::from_secs(2));
    assert_eq!(ticks(&got), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(got[0]["t"], "keyframe");
    gw.stop().await;
}

#[tokio::test]
async fn an_illegal_placement_is_rejected_with_the_engines_reason() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    gw.write_view(&m, frame(0, ViewKind::Keyframe, vec![], vec![]))
        .await;
    let token = gw.token(&m, 0);
    let (mut ws, _) = gw.join(&token, None).await;
    // A second session of the same player hears of it too, without a seq of its own.
    let (mut other, _) = gw.join(&token, None).await;
    let place = |seq: u64, building: &str| json!({"t": "cmd", "seq": seq, "cmd": {"kind": "place", "building": building, "at": [1, 1]}});
    let failed =
        |request: u64, kind: BuildingKind, reason: RejectReason| GameEvent::PlacementFailed {
            owner: PlayerId(0),
            kind,
            request,
            reason,
        };
    send(&mut ws, place(3, "power_plant")).await;
    let (a, _) = recv_until(&mut ws, |v| v["seq"] == 3).await;
    assert_eq!(a["t"], "ack");
    gw.write_tick(
        &m,
        1,
        vec![failed(
            1,
            BuildingKind::PowerPlant,
            RejectReason::BadPlacement("a building is in the way".into()),
        )],
    )
    .await;
    let (r, _) = recv_until(&mut ws, |v| v["t"] == "rejected").await;
    assert_eq!(r["seq"], 3);
    assert_eq!(r["code"], "bad_placement");
    assert_eq!(r["message"], "cannot place there: a building is in the way");
    let (r, _) = recv_until(&mut other, |v| v["t"] == "rejected").await;
    assert!(r["seq"].is_null(), "{r}");
    assert_eq!(r["code"], "bad_placement");

    // A placement that succeeds answers its command silently; the next failure names the
    // next command's seq, and an engine reason other than `BadPlacement` says so too.
    send(&mut ws, place(4, "barracks")).await;
    recv_until(&mut ws, |v| v["seq"] == 4).await;
    gw.write_tick(
        &m,
        2,
        vec![GameEvent::BuildingPlaced {
            id: events::UnitId(50),
            owner: PlayerId(0),
            kind: BuildingKind::Barracks,
            at: Cell::new(1, 1),
            request: 2,
        }],
    )
    .await;
    send(&mut ws, place(5, "refinery")).await;
    recv_until(&mut ws, |v| v["seq"] == 5).await;
    gw.write_tick(
        &m,
        3,
        vec![failed(
            3,
            BuildingKind::Refinery,
            RejectReason::OutOfMap(Cell::new(31, 31)),
        )],
    )
    .await;
    let (r, _) = recv_until(&mut ws, |v| v["t"] == "rejected").await;
    assert_eq!(r["seq"], 5);
    assert_eq!(r["code"], "bad_placement");
    assert_eq!(
        r["message"],
        "cannot place there: cell (31, 31) is outside the map"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_command_after_the_match_ended_is_rejected_match_over() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    gw.write_view(
        &m,
        frame(
            0,
            ViewKind::Keyframe,
            vec![unit(1, 0, UnitKind::Rifleman, (3, 3), 0b01)],
            vec![],
        ),
    )
    .await;
    let (mut ws, _) = gw.join(&gw.token(&m, 0), None).await;
    gw.write_tick(
        &m,
        1,
        vec![GameEvent::MatchWon {
            winner: Some(PlayerId(1)),
        }],
    )
    .await;
    recv_until(&mut ws, |v| v["t"] == "game_over").await;
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 1, "cmd": {"kind": "stop", "units": [1]}}),
    )
    .await;
    let (r, _) = recv_until(&mut ws, |v| v["seq"] == 1).await;
    assert_eq!(r["t"], "rejected");
    assert_eq!(r["code"], "match_over");
    assert!(gw.commands(&m).await.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn a_spectator_delay_outside_the_range_is_bad_delay() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    gw.write_view(&m, frame(0, ViewKind::Keyframe, vec![], vec![]))
        .await;
    let mut ws = gw.ws().await;
    send(&mut ws, json!({"t": "hello", "protocol": 2})).await;
    recv(&mut ws).await;
    for d in [json!(-1), json!(-0.5), json!(301), json!(1e9)] {
        send(
            &mut ws,
            json!({"t": "spectate", "match": m.as_str(), "delay_s": d}),
        )
        .await;
        assert_eq!(recv(&mut ws).await["code"], "bad_delay", "delay_s {d}");
    }
    send(
        &mut ws,
        json!({"t": "spectate", "match": m.as_str(), "delay_s": "soon"}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["code"], "malformed");
    send(
        &mut ws,
        json!({"t": "spectate", "match": m.as_str(), "delay_s": 0}),
    )
    .await;
    assert_eq!(recv(&mut ws).await["t"], "welcome");
    gw.stop().await;
}

#[tokio::test]
async fn closes_carry_a_status_code() {
    let gw = TestGateway::start().await;
    // A frame over the size limit: 1009.
    let mut ws = gw.ws().await;
    let huge = format!(
        "{{\"t\": \"ping\", \"pad\": \"{}\"}}",
        "x".repeat(gateway::limits::MAX_FRAME_BYTES + 10)
    );
    let _ = ws.send(Message::Text(huge.into())).await;
    assert_eq!(
        close_code(&mut ws, Duration::from_secs(5)).await,
        Some(1009)
    );
    // A protocol version mismatch: 1002, after the typed error.
    let mut ws = gw.ws().await;
    send(&mut ws, json!({"t": "hello", "protocol": 99})).await;
    assert_eq!(recv(&mut ws).await["code"], "protocol_mismatch");
    assert_eq!(
        close_code(&mut ws, Duration::from_secs(5)).await,
        Some(1002)
    );
    // Shutting down: 1001 (going away).
    let mut ws = gw.ws().await;
    send(&mut ws, json!({"t": "hello", "protocol": 2})).await;
    recv(&mut ws).await;
    let closed = tokio::spawn(async move { close_code(&mut ws, Duration::from_secs(10)).await });
    gw.stop().await;
    assert_eq!(closed.await.unwrap(), Some(1001));
}
