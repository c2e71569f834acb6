//! Fog over a whole AI match: the engine, the economy and two AIs play a match in process
//! (replay-tool's stepper); every view frame goes through a match hub, and each player's
//! frames must never hold an entity whose engine mask lacks that player's bit, while the
//! picture a client builds from them always equals the engine's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use engine::Rules;
use events::{
    Difficulty, GameEvent, MapSpec, MatchCreated, MatchId, PlayerId, PlayerKind, PlayerSlot,
};
use gateway::hub::{Audience, HubMsg};
use replay_tool::stepper::Stepper;
use serde_json::Value;

/// Ticks the match may run at most (15 game minutes at 20 Hz).
const MAX_TICKS: u64 = 18_000;

#[tokio::test]
async fn a_whole_ai_match_never_leaks_an_entity_through_the_fog() {
    let rules = Arc::new(Rules::standard());
    let setup = MatchCreated {
        match_id: MatchId::new("fog-ai").unwrap(),
        seed: 11,
        map: MapSpec { size: 32, seed: 11 },
        players: vec![
            PlayerSlot {
                id: PlayerId(0),
                name: "a".into(),
                kind: PlayerKind::Ai(Difficulty::Hard),
            },
            PlayerSlot {
                id: PlayerId(1),
                name: "b".into(),
                kind: PlayerKind::Ai(Difficulty::Easy),
            },
        ],
        tick_hz: 20,
        scenario: events::Scenario::Skirmish,
    };
    let mut stepper = Stepper::new(rules.clone(), &setup).expect("match setup");
    // The hub treats both slots as human so it builds a filtered stream for each.
    let mut as_humans = setup.clone();
    for p in &mut as_humans.players {
        p.kind = PlayerKind::Human;
    }
    let welcome = gateway::mapview::welcome(&as_humans, &rules).unwrap();
    let hub = gateway::mapview::hub(Arc::new(as_humans), welcome, &rules);
    let mut rx = hub.subscribe();

    // The engine's truth: every live entity's current mask.
    let mut truth: BTreeMap<u32, u8> = BTreeMap::new();
    // What each player's client holds.
    let mut client: [BTreeSet<u64>; 2] = [BTreeSet::new(), BTreeSet::new()];
    let mut frames = 0u64;
    let mut enemy_sightings = [0u64; 2];
    let mut winner = None;
    for _ in 0..MAX_TICKS {
        let report = stepper.step();
        let view = report.view;
        let masks: BTreeMap<u32, u8> = view
            .entities
            .iter()
            .map(|e| (e.id.0, e.visible_to))
            .collect();
        if view.kind == events::ViewKind::Keyframe {
            truth.clear();
        }
        truth.extend(masks.iter());
        for (id, _) in &view.removed {
            truth.remove(&id.0);
        }
        hub.apply_view(&view);
        let HubMsg::Frame(f) = &*rx.recv().await.unwrap() else {
            panic!("expected a frame");
        };
        frames += 1;
        for p in 0..2u8 {
            let text = f.for_audience(Audience::Player(PlayerId(p))).unwrap();
            let v: Value = serde_json::from_str(text).unwrap();
            if v["t"] == "keyframe" {
                client[usize::from(p)].clear();
            }
            for e in v["entities"].as_array().unwrap() {
                let id = e["id"].as_u64().unwrap() as u32;
                let mask = masks[&id];
                assert!(
                    mask & (1 << p) != 0,
                    "tick {}: player {p} was sent entity {id} (owner {}) with mask {mask:#b}",
                    view.tick,
                    e["owner"]
                );
                if e["owner"] != p {
                    enemy_sightings[usize::from(p)] += 1;
                }
                client[usize::from(p)].insert(u64::from(id));
            }
            for k in ["hidden", "removed"] {
                for id in v[k].as_array().into_iter().flatten() {
                    client[usize::from(p)].remove(&id.as_u64().unwrap());
                }
            }
            let expected: BTreeSet<u64> = truth
                .iter()
                .filter(|(_, m)| *m & (1 << p) != 0)
                .map(|(id, _)| u64::from(*id))
                .collect();
            assert_eq!(
                client[usize::from(p)],
                expected,
                "tick {}: player {p}'s picture differs from the engine's",
                view.tick
            );
        }
        // A joiner's keyframe obeys the same rule.
        if view.tick.is_multiple_of(1000) {
            for p in 0..2u8 {
                let start = hub.start(Audience::Player(PlayerId(p)), None);
                let v: Value = serde_json::from_str(&start.frames[0]).unwrap();
                for e in v["entities"].as_array().unwrap() {
                    let id = e["id"].as_u64().unwrap() as u32;
                    assert!(truth[&id] & (1 << p) != 0, "joiner keyframe leaks {id}");
                }
            }
        }
        if let Some(w) = report.committed.events.iter().find_map(|e| match e {
            GameEvent::MatchWon { winner } => Some(*winner),
            _ => None,
        }) {
            winner = Some(w);
            break;
        }
    }
    assert!(frames > 1000, "the match ran ({frames} frames)");
    assert!(
        enemy_sightings.iter().all(|&n| n > 0),
        "the armies met at least once, so the filter was exercised: {enemy_sightings:?}"
    );
    eprintln!(
        "fog checked over {frames} ticks; winner {winner:?}; enemy sightings {enemy_sightings:?}"
    );
}
