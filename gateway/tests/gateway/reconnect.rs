//! Reconnect: a client that drops and comes back with its last tick gets every tick
//! exactly once; one whose tick is too old gets a fresh keyframe.

use std::collections::BTreeSet;
use std::time::Duration;

use events::{UnitKind, ViewKind};
use gateway::limits::RESUME_WINDOW_TICKS;
use serde_json::Value;

use crate::common::*;

async fn write_ticks(gw: &TestGateway, m: &events::MatchId, range: std::ops::Range<u64>) {
    for t in range {
        let kind = if t % 100 == 0 {
            ViewKind::Keyframe
        } else {
            ViewKind::Delta
        };
        let e = unit(1, 0, UnitKind::Rifleman, ((t % 30) as i32, 1), 0b01);
        gw.write_view(m, frame(t, kind, vec![e], vec![])).await;
        if t % 25 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Reads frames until `tick` arrives; returns the ticks of every keyframe/delta read.
async fn read_until_tick(ws: &mut Ws, tick: u64) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    loop {
        let v: Value = recv(ws).await;
        let t = v["t"].as_str().unwrap_or("").to_string();
        if t == "keyframe" || t == "delta" {
            let n = v["tick"].as_u64().unwrap();
            out.push((t, n));
            if n >= tick {
                return out;
            }
        }
    }
}

#[tokio::test]
async fn reconnect_resumes_every_tick_exactly_once() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    write_ticks(&gw, &m, 0..1).await;
    let token = gw.token(&m, 0);
    let (mut ws, _) = gw.join(&token, None).await;
    let mut got = read_until_tick(&mut ws, 0).await;
    write_ticks(&gw, &m, 1..120).await;
    got.extend(read_until_tick(&mut ws, 119).await);
    drop(ws);
    // Ticks written while the client is away.
    write_ticks(&gw, &m, 120..200).await;
    let last = got.last().unwrap().1;
    let (mut ws, _) = gw.join(&token, Some(last)).await;
    // More ticks stream in while the client catches up.
    let (gw_bus, keys, mid) = (gw.bus.clone(), gw.keys.clone(), m.clone());
    let more = tokio::spawn(async move {
        for t in 200..260u64 {
            let e = unit(1, 0, UnitKind::Rifleman, ((t % 30) as i32, 1), 0b01);
            let env = events::Envelope::new(
                mid.clone(),
                events::Source::System,
                frame(t, ViewKind::Delta, vec![e], vec![]),
            );
            events::Bus::append(
                &gw_bus,
                &keys.view(&mid),
                events::IdSpec::Auto,
                &events::encode(&env).unwrap(),
                None,
            )
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let after = read_until_tick(&mut ws, 259).await;
    more.await.unwrap();
    assert!(
        after.iter().all(|(t, _)| t == "delta"),
        "a resume within the window needs no keyframe"
    );
    got.extend(after);
    let ticks: Vec<u64> = got.iter().map(|(_, n)| *n).collect();
    let unique: BTreeSet<u64> = ticks.iter().copied().collect();
    assert_eq!(ticks.len(), unique.len(), "a tick was delivered twice");
    assert_eq!(
        unique,
        (0..260).collect::<BTreeSet<u64>>(),
        "a tick was lost"
    );
    assert!(ticks.windows(2).all(|w| w[0] < w[1]), "ticks out of order");
    gw.stop().await;
}

#[tokio::test]
async fn a_client_too_far_behind_gets_a_keyframe() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    let n = RESUME_WINDOW_TICKS as u64 + 150;
    write_ticks(&gw, &m, 0..1).await;
    let token = gw.token(&m, 0);
    let (ws, _) = gw.join(&token, None).await;
    write_ticks(&gw, &m, 1..n).await;
    // Give the hub time to fold everything (the session keeps it alive).
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(ws);
    let (mut ws, _) = gw.join(&token, Some(5)).await;
    let v = recv(&mut ws).await;
    assert_eq!(v["t"], "keyframe");
    assert_eq!(v["tick"], n - 1);
    // A fresh join (no last tick) also starts from a keyframe of the current state.
    let (mut ws2, _) = gw.join(&token, None).await;
    let v = recv(&mut ws2).await;
    assert_eq!(v["t"], "keyframe");
    assert_eq!(v["entities"].as_array().unwrap().len(), 1);
    gw.stop().await;
}

/// A view frame for `t` written straight to the bus (for writers running beside a client).
async fn append_tick(bus: &events::MemoryBus, keys: &events::Keys, m: &events::MatchId, t: u64) {
    let kind = if t.is_multiple_of(100) {
        ViewKind::Keyframe
    } else {
        ViewKind::Delta
    };
    let e = unit(1, 0, UnitKind::Rifleman, ((t % 30) as i32, 1), 0b01);
    let env = events::Envelope::new(
        m.clone(),
        events::Source::System,
        frame(t, kind, vec![e], vec![]),
    );
    events::Bus::append(
        bus,
        &keys.view(m),
        events::IdSpec::Auto,
        &events::encode(&env).unwrap(),
        None,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn every_gap_inside_the_window_resumes_with_exactly_the_missed_ticks() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    write_ticks(&gw, &m, 0..1).await;
    let token = gw.token(&m, 0);
    let (mut ws, _) = gw.join(&token, None).await;
    let mut last = read_until_tick(&mut ws, 0).await.last().unwrap().1;
    // Gaps beyond the send queue (128 frames), up to the edge of the window.
    for gap in [130u64, 300, 599] {
        assert!(gap < RESUME_WINDOW_TICKS as u64);
        drop(ws);
        write_ticks(&gw, &m, last + 1..last + 1 + gap).await;
        // Let the hub fold them all (the frames arrive while nobody listens).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (mut again, _) = gw.join(&token, Some(last)).await;
        // More ticks stream in while the client catches up.
        let (bus, keys, mid) = (gw.bus.clone(), gw.keys.clone(), m.clone());
        let from = last + 1 + gap;
        let more = tokio::spawn(async move {
            for t in from..from + 40 {
                append_tick(&bus, &keys, &mid, t).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        let got = read_until_tick(&mut again, from + 39).await;
        more.await.unwrap();
        let ticks: Vec<u64> = got.iter().map(|(_, n)| *n).collect();
        assert_eq!(
            ticks,
            (last + 1..from + 40).collect::<Vec<u64>>(),
            "a gap of {gap} ticks resumes with every missed tick once, in order"
        );
        // Only the log's own periodic keyframes; the gateway added none.
        assert!(
            got.iter()
                .all(|(t, n)| (t == "keyframe") == n.is_multiple_of(100)),
            "gap {gap}: {got:?}"
        );
        last = from + 39;
        ws = again;
    }
    gw.stop().await;
}
