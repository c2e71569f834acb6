//! Security: forged and expired tokens are refused, a player can only command its own
//! units (the source is stamped from the token), spectators are read-only.

use std::time::Duration;

use events::{PlayerId, PlayerKind, Source, UnitKind, ViewKind};
use gateway::token::TokenSigner;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn forged_tampered_and_expired_tokens_are_refused() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    gw.write_view(&m, frame(0, ViewKind::Keyframe, vec![], vec![]))
        .await;
    let forged = TokenSigner::new(b"not-the-secret".to_vec(), Duration::from_secs(60))
        .issue(&m, PlayerId(0))
        .0;
    let good = gw.token(&m, 0);
    let tampered = good.replacen(&format!("{}.0.", m), &format!("{}.1.", m), 1);
    let expired = gw.signer.issue_until(&m, PlayerId(0), 1);
    let mut ws = gw.ws().await;
    send(&mut ws, json!({"t": "hello", "protocol": 2})).await;
    recv(&mut ws).await;
    for t in [
        forged.as_str(),
        tampered.as_str(),
        expired.as_str(),
        "garbage",
    ] {
        send(&mut ws, json!({"t": "join", "token": t})).await;
        let e = recv(&mut ws).await;
        assert_eq!(e["t"], "error");
        assert_eq!(e["code"], "bad_token", "{t}: {e}");
    }
    // A valid token for an AI slot cannot exist through the lobby; a forged-but-signed
    // one is still refused because the slot is not human.
    send(&mut ws, json!({"t": "join", "token": gw.token(&m, 1)})).await;
    assert_eq!(recv(&mut ws).await["code"], "not_a_player");
    // The session survives all of that.
    send(&mut ws, json!({"t": "join", "token": good})).await;
    assert_eq!(recv(&mut ws).await["t"], "welcome");
    gw.stop().await;
}

#[tokio::test]
async fn a_player_cannot_command_another_players_units() {
    let gw = TestGateway::start().await;
    let m = gw
        .create_match_with(vec![PlayerKind::Human, PlayerKind::Human])
        .await;
    gw.write_view(
        &m,
        frame(
            0,
            ViewKind::Keyframe,
            vec![
                unit(1, 0, UnitKind::Rifleman, (3, 3), 0b11),
                unit(2, 1, UnitKind::Rifleman, (5, 5), 0b11),
            ],
            vec![],
        ),
    )
    .await;
    let (mut ws, _) = gw.join(&gw.token(&m, 0), None).await;
    // Orders naming the enemy's unit (alone or mixed with ours) never reach the log.
    for (seq, cmd) in [
        json!({"kind": "move", "units": [2], "to": [1, 1]}),
        json!({"kind": "stop", "units": [1, 2]}),
        json!({"kind": "attack_move", "units": [2], "to": [1, 1]}),
        json!({"kind": "sell", "building": 2}),
    ]
    .into_iter()
    .enumerate()
    {
        send(&mut ws, json!({"t": "cmd", "seq": seq, "cmd": cmd})).await;
        let (r, _) = recv_until(&mut ws, |v| v["seq"] == seq).await;
        assert_eq!(r["t"], "rejected");
        assert_eq!(r["code"], "not_your_unit");
    }
    // A client cannot choose its source: extra fields are ignored, the token decides.
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 10, "source": {"player": 1}, "player": 1,
               "cmd": {"kind": "move", "units": [1], "to": [2, 2], "source": "economy"}}),
    )
    .await;
    let (a, _) = recv_until(&mut ws, |v| v["seq"] == 10).await;
    assert_eq!(a["t"], "ack");
    // An id the gateway has not seen yet goes through, stamped as ours: the engine will
    // refuse it if it is not ours (NotYourUnit, or NoSuchUnit when player 0 cannot see it).
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 11, "cmd": {"kind": "stop", "units": [999]}}),
    )
    .await;
    recv_until(&mut ws, |v| v["seq"] == 11).await;
    let cmds = gw.commands(&m).await;
    assert_eq!(cmds.len(), 2);
    for c in &cmds {
        assert_eq!(c.source, Source::Player(PlayerId(0)));
        let names_enemy = format!("{:?}", c.body).contains("UnitId(2)");
        assert!(!names_enemy, "{:?}", c.body);
    }
    gw.stop().await;
}

#[tokio::test]
async fn spectators_are_read_only() {
    let gw = TestGateway::start().await;
    let m = gw
        .create_match_with(vec![
            PlayerKind::Ai(events::Difficulty::Easy),
            PlayerKind::Ai(events::Difficulty::Hard),
        ])
        .await;
    gw.write_view(
        &m,
        frame(
            0,
            ViewKind::Keyframe,
            vec![
                unit(1, 0, UnitKind::Rifleman, (3, 3), 0b01),
                unit(2, 1, UnitKind::Rifleman, (5, 5), 0b10),
            ],
            vec![],
        ),
    )
    .await;
    let (mut ws, w) = gw.spectate(&m, None).await;
    assert_eq!(w["role"], "spectator");
    assert!(w["player"].is_null());
    let kf = recv(&mut ws).await;
    assert_eq!(
        kf["entities"].as_array().unwrap().len(),
        2,
        "spectators see everything"
    );
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 1, "cmd": {"kind": "move", "units": [1], "to": [1, 1]}}),
    )
    .await;
    let (r, _) = recv_until(&mut ws, |v| v["seq"] == 1).await;
    assert_eq!(r["code"], "read_only");
    assert!(gw.commands(&m).await.is_empty());
    // Unknown match ids get a typed error.
    let mut ws2 = gw.ws().await;
    send(&mut ws2, json!({"t": "hello", "protocol": 2})).await;
    recv(&mut ws2).await;
    send(&mut ws2, json!({"t": "spectate", "match": "nope"})).await;
    assert_eq!(recv(&mut ws2).await["code"], "unknown_match");
    send(&mut ws2, json!({"t": "spectate", "match": "bad}id"})).await;
    assert_eq!(recv(&mut ws2).await["code"], "unknown_match");
    gw.stop().await;
}

#[tokio::test]
async fn a_unit_in_the_fog_gets_the_same_answer_as_a_missing_id() {
    let gw = TestGateway::start().await;
    let m = gw
        .create_match_with(vec![PlayerKind::Human, PlayerKind::Human])
        .await;
    gw.write_view(
        &m,
        frame(
            0,
            ViewKind::Keyframe,
            vec![
                unit(1, 0, UnitKind::Rifleman, (3, 3), 0b01),
                // Player 1's: #2 in player 0's sight, #3 in its fog.
                unit(2, 1, UnitKind::Rifleman, (5, 5), 0b11),
                unit(3, 1, UnitKind::Rifleman, (25, 25), 0b10),
            ],
            vec![],
        ),
    )
    .await;
    let (mut ws, _) = gw.join(&gw.token(&m, 0), None).await;
    // Probing #3 (hidden) and #999 (missing) reads the same: acknowledged, then the
    // engine's `no_such_unit` for that seq.
    let mut answers = Vec::new();
    for (seq, id) in [(1u64, 3u32), (2, 999)] {
        send(
            &mut ws,
            json!({"t": "cmd", "seq": seq, "cmd": {"kind": "stop", "units": [id]}}),
        )
        .await;
        let (a, _) = recv_until(&mut ws, |v| v["seq"] == seq).await;
        answers.push(a["t"].clone());
    }
    assert_eq!(answers, ["ack", "ack"]);
    let cmds = gw.commands(&m).await;
    gw.write_tick(
        &m,
        1,
        cmds.iter()
            .zip([3u32, 999])
            .map(|(c, id)| events::GameEvent::CommandRejected {
                command: c.id,
                player: Some(PlayerId(0)),
                reason: events::RejectReason::NoSuchUnit(events::UnitId(id)),
            })
            .collect(),
    )
    .await;
    for (seq, id) in [(1u64, 3u32), (2, 999)] {
        let (r, _) = recv_until(&mut ws, |v| v["t"] == "rejected" && v["seq"] == seq).await;
        assert_eq!(r["code"], "no_such_unit");
        assert_eq!(r["message"], format!("no unit #{id}"));
    }
    // A unit the player sees is refused at once, as before.
    send(
        &mut ws,
        json!({"t": "cmd", "seq": 3, "cmd": {"kind": "stop", "units": [2]}}),
    )
    .await;
    let (r, _) = recv_until(&mut ws, |v| v["seq"] == 3).await;
    assert_eq!(r["code"], "not_your_unit");
    assert_eq!(r["message"], "unit #2 is not yours");
    gw.stop().await;
}
