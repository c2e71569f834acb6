//! Fog: over a long run of frames with enemies flickering in and out of vision, a
//! player's client never receives an entity whose visibility mask lacks its bit, and its
//! picture of what is visible always equals the engine's.

use std::collections::{BTreeMap, BTreeSet};

use events::{BuildingKind, EntityKind, EntityView, UnitId, UnitKind, ViewKind};

use crate::common::*;

/// A small deterministic generator (tests must not depend on a seeded RNG crate).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

fn visible_to_p0(world: &BTreeMap<u32, EntityView>) -> BTreeSet<u64> {
    world
        .values()
        .filter(|e| e.visible_to & 1 != 0)
        .map(|e| u64::from(e.id.0))
        .collect()
}

#[tokio::test]
async fn a_player_never_receives_an_enemy_outside_its_vision() {
    let gw = TestGateway::start().await;
    let m = gw.create_match().await;
    let mut rng = Lcg(7);
    let mut world: BTreeMap<u32, EntityView> = BTreeMap::new();
    for id in 1..=4 {
        world.insert(id, unit(id, 0, UnitKind::LightTank, (id as i32, 2), 0b11));
    }
    for id in 10..=21 {
        world.insert(id, unit(id, 1, UnitKind::Rifleman, (id as i32, 20), 0b10));
    }
    for id in 30..=32 {
        let mut b = unit(id, 1, UnitKind::Rifleman, (id as i32 - 10, 25), 0b10);
        b.kind = EntityKind::Building(BuildingKind::PowerPlant);
        world.insert(id, b);
    }
    let mut next_id = 100;
    const TICKS: u64 = 300;
    // The expected visible set of player 0 after every tick.
    let mut expected: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut frames = Vec::new();
    for tick in 0..TICKS {
        let key = tick % 60 == 0;
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        if !key {
            let ids: Vec<u32> = world.keys().copied().collect();
            for id in ids {
                let e = world.get_mut(&id).unwrap();
                if e.owner.0 == 1 && rng.chance(25) {
                    e.visible_to = 0b10 | if rng.chance(50) { 1 } else { 0 };
                    e.pos.x += 64;
                    changed.push(e.clone());
                } else if e.owner.0 == 0 && rng.chance(20) {
                    e.pos.y += 64;
                    changed.push(e.clone());
                }
            }
            if rng.chance(10) {
                let enemies: Vec<u32> = world
                    .values()
                    .filter(|e| e.owner.0 == 1)
                    .map(|e| e.id.0)
                    .collect();
                if let Some(&victim) = enemies.get(rng.next() as usize % enemies.len().max(1)) {
                    let seen_by = 0b10 | if rng.chance(50) { 1 } else { 0 };
                    world.remove(&victim);
                    changed.retain(|e| e.id.0 != victim);
                    removed.push((UnitId(victim), seen_by));
                }
                let mask = 0b10 | if rng.chance(50) { 1 } else { 0 };
                let e = unit(next_id, 1, UnitKind::HeavyTank, (9, 9), mask);
                world.insert(next_id, e.clone());
                changed.push(e);
                next_id += 1;
            }
        }
        let entities = if key {
            world.values().cloned().collect()
        } else {
            changed
        };
        let kind = if key {
            ViewKind::Keyframe
        } else {
            ViewKind::Delta
        };
        frames.push(frame(tick, kind, entities, removed));
        expected.insert(tick, visible_to_p0(&world));
    }
    // The first keyframe exists before the client joins; the rest stream in.
    let mut frames = frames.into_iter();
    gw.write_view(&m, frames.next().unwrap()).await;
    let (mut ws, _) = gw.join(&gw.token(&m, 0), None).await;
    let (bus, keys, mid) = (gw.bus.clone(), gw.keys.clone(), m.clone());
    let writer = tokio::spawn(async move {
        // Written as the engine writes them: the large frames (the keyframes) compressed.
        let mut compressed = 0;
        for (i, f) in frames.enumerate() {
            let env = events::Envelope::new(mid.clone(), events::Source::System, f);
            let bytes = events::encode_compact(&env).unwrap();
            compressed += usize::from(bytes.starts_with(&events::codec::ZSTD_MAGIC));
            events::Bus::append(&bus, &keys.view(&mid), events::IdSpec::Auto, &bytes, None)
                .await
                .unwrap();
            if i % 20 == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        compressed
    });
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    let mut last_tick = None;
    while last_tick != Some(TICKS - 1) {
        let v = recv(&mut ws).await;
        let t = v["t"].as_str().unwrap_or("");
        if t != "keyframe" && t != "delta" {
            continue;
        }
        let tick = v["tick"].as_u64().unwrap();
        let allowed = &expected[&tick];
        if t == "keyframe" {
            seen.clear();
        }
        for e in v["entities"].as_array().unwrap() {
            let id = e["id"].as_u64().unwrap();
            assert!(
                allowed.contains(&id),
                "tick {tick}: entity {id} (owner {}) sent outside player 0's vision",
                e["owner"]
            );
            seen.insert(id);
        }
        if t == "delta" {
            for k in ["hidden", "removed"] {
                for id in v[k].as_array().unwrap() {
                    seen.remove(&id.as_u64().unwrap());
                }
            }
        }
        assert_eq!(&seen, allowed, "tick {tick}: client picture differs");
        last_tick = Some(tick);
    }
    let compressed = writer.await.unwrap();
    assert!(
        compressed >= 4,
        "the keyframes went compressed: {compressed}"
    );
    gw.stop().await;
}
