//! Combat effects: shots and deaths reach only the players who see them (the attacker or
//! the target for a shot, the victim for a death), spectators get all of them, and they
//! arrive in the wire shape of `docs/protocol.md`.

use events::{
    DeathView, EntityKind, PlayerKind, Pos, ShotView, UnitId, UnitKind, ViewKind, Warhead,
};
use serde_json::Value;

use crate::common::*;

fn shot(attacker: u32, target: u32, mask: u8) -> ShotView {
    ShotView {
        attacker: UnitId(attacker),
        kind: EntityKind::Unit(UnitKind::RocketSoldier),
        target: UnitId(target),
        warhead: Warhead::Missile,
        from: Pos::new(2048, 4096),
        to: Pos::new(6144, 4096),
        visible_to: mask,
    }
}

fn death(id: u32, owner: u8, by: u32, mask: u8) -> DeathView {
    DeathView {
        id: UnitId(id),
        owner: events::PlayerId(owner),
        kind: EntityKind::Unit(UnitKind::Rifleman),
        pos: Pos::new(6144, 4096),
        by: UnitId(by),
        warhead: Warhead::Missile,
        visible_to: mask,
    }
}

/// The ids of a delta's `attacks` (as attacker→target) and `deaths`.
fn effects(v: &Value) -> (Vec<(u64, u64)>, Vec<u64>) {
    let attacks = v["attacks"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["attacker"].as_u64().unwrap(),
                        s["target"].as_u64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let deaths = v["deaths"]
        .as_array()
        .map(|a| a.iter().map(|d| d["id"].as_u64().unwrap()).collect())
        .unwrap_or_default();
    (attacks, deaths)
}

#[tokio::test]
async fn shots_and_deaths_reach_only_players_who_see_them() {
    let gw = TestGateway::start().await;
    let m = gw
        .create_match_with(vec![
            PlayerKind::Human,
            PlayerKind::Human,
            PlayerKind::Human,
        ])
        .await;
    // Player 0's rocket soldier (1) and player 1's riflemen (2, 3) fight; player 2's
    // scout (4) sees the rifleman 3 only.
    let a = unit(1, 0, UnitKind::RocketSoldier, (2, 4), 0b011);
    let b = unit(2, 1, UnitKind::Rifleman, (6, 4), 0b011);
    let c = unit(3, 1, UnitKind::Rifleman, (6, 6), 0b111);
    let d = unit(4, 2, UnitKind::ReconBike, (9, 6), 0b100);
    gw.write_view(
        &m,
        frame(
            0,
            ViewKind::Keyframe,
            vec![a, b.clone(), c.clone(), d],
            vec![],
        ),
    )
    .await;
    let (mut p0, _) = gw.join(&gw.token(&m, 0), None).await;
    let (mut p1, _) = gw.join(&gw.token(&m, 1), None).await;
    let (mut p2, _) = gw.join(&gw.token(&m, 2), None).await;
    let (mut spec, _) = gw.spectate(&m, None).await;
    // Tick 1: 1 shoots 2 (players 0 and 1 see it) and 3 shoots 1 (all three see it: player
    // 2 sees the attacker). Tick 2: 2 dies, seen by 0 and 1; 3 dies, seen by all.
    let mut f1 = frame(1, ViewKind::Delta, vec![], vec![]);
    f1.attacks = vec![shot(1, 2, 0b011), shot(3, 1, 0b111)];
    gw.write_view(&m, f1).await;
    let mut f2 = frame(
        2,
        ViewKind::Delta,
        vec![],
        vec![(UnitId(2), 0b011), (UnitId(3), 0b111)],
    );
    f2.attacks = vec![shot(1, 3, 0b111)];
    f2.deaths = vec![death(2, 1, 1, 0b011), death(3, 1, 1, 0b111)];
    gw.write_view(&m, f2).await;
    // A quiet tick: no effects, and the fields are left out.
    gw.write_view(&m, frame(3, ViewKind::Delta, vec![], vec![]))
        .await;

    let expect = [
        // (socket, tick-1 shots, tick-2 shots, tick-2 deaths)
        (&mut p0, vec![(1, 2), (3, 1)], vec![(1, 3)], vec![2, 3]),
        (&mut p1, vec![(1, 2), (3, 1)], vec![(1, 3)], vec![2, 3]),
        (&mut p2, vec![(3, 1)], vec![(1, 3)], vec![3]),
        (&mut spec, vec![(1, 2), (3, 1)], vec![(1, 3)], vec![2, 3]),
    ];
    for (who, (ws, shots1, shots2, deaths2)) in expect.into_iter().enumerate() {
        let (d1, _) = recv_until(ws, |v| v["t"] == "delta" && v["tick"] == 1).await;
        assert_eq!(effects(&d1), (shots1, vec![]), "viewer {who}, tick 1");
        let (d2, _) = recv_until(ws, |v| v["t"] == "delta" && v["tick"] == 2).await;
        assert_eq!(effects(&d2), (shots2, deaths2), "viewer {who}, tick 2");
        let (d3, _) = recv_until(ws, |v| v["t"] == "delta" && v["tick"] == 3).await;
        assert!(d3.get("attacks").is_none() && d3.get("deaths").is_none());
        if who == 0 {
            // The wire shape.
            let s = &d1["attacks"][0];
            assert_eq!(s["kind"], "rocket_soldier");
            assert_eq!(s["warhead"], "missile");
            assert_eq!(s["from"], serde_json::json!([2048, 4096]));
            assert_eq!(s["to"], serde_json::json!([6144, 4096]));
            let dd = &d2["deaths"][0];
            assert_eq!(dd["kind"], "rifleman");
            assert_eq!(dd["owner"], 1);
            assert_eq!(dd["building"], false);
            assert_eq!(dd["by"], 1);
            assert_eq!(dd["warhead"], "missile");
            assert_eq!(dd["at"], serde_json::json!([6144, 4096]));
        }
    }
    gw.stop().await;
}
