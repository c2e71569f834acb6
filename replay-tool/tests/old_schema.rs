//! Logs written by an older schema version still verify: the stored fixture
//! `tests/fixtures/v1_match.cnitreplay` is a recorded match whose `cmd` stream holds a
//! `MoveUnits` encoded by schema v1 (`target: [x, y]`), upcast on read to v2's
//! `to: {x, y}`. The fixture was written by `regenerate_v1_fixture` below and is
//! committed; the tests only read it.
//!
//! Two checks: the stored log verifies as stored (its hashes were computed by the engine
//! of the day it was written, so a deliberate change of the simulation's behaviour makes
//! it diverge — exactly what `verify` is for; then regenerate it:
//! `cargo test -p replay-tool --test old_schema -- --ignored regenerate_v1_fixture`),
//! and the stored player commands, v1 bytes included, fed to today's engine and economy
//! give a log that verifies (this one does not depend on the engine's behaviour).

mod common;

use std::path::PathBuf;

use common::{rules, setup};
use events::{Cell, Command, PlayerId, PlayerKind, Source};
use replay_tool::progress::NoProgress;
use replay_tool::record::{RecordConfig, Recorder};
use replay_tool::{verify, Recording, VerifyOptions};
use serde::Serialize;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1_match.cnitreplay")
}

/// The envelope as schema v1 wrote it.
#[derive(Serialize)]
struct V1Envelope {
    v: u16,
    id: uuid::Uuid,
    match_id: String,
    source: V1Source,
    sent_ms: u64,
    body: V1Command,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum V1Source {
    Player(u8),
}

#[derive(Serialize)]
enum V1Command {
    MoveUnits { units: Vec<u32>, target: [u16; 2] },
}

/// The tick at which the v1 command is applied.
const V1_TICK: u64 = 60;
const V1_GOAL: Cell = Cell::new(20, 24);

#[test]
#[ignore = "writes the committed fixture; run by hand"]
fn regenerate_v1_fixture() {
    // Both players scripted: the stored inputs then do not depend on an AI's choices.
    let mut s = setup("v1-fixture");
    s.players[1].kind = PlayerKind::Human;
    let config = RecordConfig {
        snapshot_every: 100,
        ..RecordConfig::default()
    };
    let mut r = Recorder::new(rules(), &s, config).expect("recorder");
    let first = r.step().expect("tick 0");
    let unit = first
        .events
        .iter()
        .find_map(|e| match e {
            events::GameEvent::UnitSpawned { id, owner, .. } if owner.0 == 0 => Some(*id),
            _ => None,
        })
        .expect("a start unit");
    while r.next_tick() < 300 {
        if r.next_tick() == V1_TICK {
            let (id, sent_ms) = r.next_event();
            let bytes = rmp_serde::to_vec_named(&V1Envelope {
                v: 1,
                id,
                match_id: s.match_id.to_string(),
                source: V1Source::Player(0),
                sent_ms,
                body: V1Command::MoveUnits {
                    units: vec![unit.0],
                    target: [V1_GOAL.x, V1_GOAL.y],
                },
            })
            .expect("encode v1");
            r.push_encoded(bytes)
                .expect("v1 decodes through the upcaster");
        }
        if r.next_tick() == 3 {
            r.push(
                Source::Player(PlayerId(0)),
                Command::QueueProduction(events::cmd::QueueProduction {
                    item: events::Item::Building(events::BuildingKind::PowerPlant),
                }),
            )
            .expect("push");
        }
        if r.next_tick() == 150 {
            r.push(
                Source::Player(PlayerId(0)),
                Command::Stop(events::cmd::Stop { units: vec![unit] }),
            )
            .expect("push");
        }
        r.step().expect("step");
    }
    let rec = r.finish().expect("recording");
    rec.to_file(&fixture(), true).expect("write fixture");
}

#[test]
fn the_v1_fixture_holds_a_v1_command_that_a_tick_applied() {
    let rec = Recording::from_file(&fixture()).expect("fixture reads");
    let v1: Vec<_> = rec
        .log
        .cmd_versions
        .iter()
        .filter(|(_, v)| **v == 1)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(v1.len(), 1, "exactly one v1 entry");
    let id = v1[0];
    let raw = rec
        .streams
        .cmd
        .iter()
        .find(|e| e.id == id)
        .expect("raw entry");
    assert!(
        raw.payload.windows(6).any(|w| w == b"target"),
        "stored as v1 wrote it"
    );
    let tick = rec.log.tick(V1_TICK).expect("tick");
    assert!(tick.applied.iter().any(|a| a.stream_id == id.to_string()));
    match rec.log.cmd(&id.to_string()).expect("upcast") {
        env if env.v == events::SCHEMA_VERSION => match &env.body {
            Command::MoveUnits(m) => assert_eq!(m.to, V1_GOAL),
            other => panic!("not a move: {other:?}"),
        },
        env => panic!("not upcast: v{}", env.v),
    }
}

#[test]
fn the_v1_fixture_verifies() {
    let rec = Recording::from_file(&fixture()).expect("fixture reads");
    let r = verify(&rec, &rules(), &VerifyOptions::default(), &NoProgress).expect("verify");
    assert!(
        r.ok(),
        "the stored v1 match no longer verifies; if the simulation changed on purpose, \
         regenerate the fixture (see this file's docs): {:#?}",
        r.first_divergence()
    );
    assert_eq!(r.ticks_checked(), 300);
    // It predates the engine announcing its logic version: verify says so.
    assert_eq!(replay_tool::verify::recorded_sim_version(&rec), Some(0));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("engine logic version 0")),
        "{:?}",
        r.warnings
    );
}

/// The tick each player command was consumed at (by the engine, or by the economy for
/// production), with its stored bytes.
fn player_inputs(rec: &Recording) -> Vec<(u64, Vec<u8>)> {
    let mut at = std::collections::BTreeMap::new();
    for t in &rec.log.ticks {
        for a in &t.applied {
            at.insert(a.stream_id.clone(), t.tick);
        }
    }
    for e in &rec.log.ecos {
        for id in e.consumed.iter().skip(1) {
            at.insert(id.clone(), e.tick);
        }
    }
    rec.streams
        .cmd
        .iter()
        .filter(|e| {
            rec.log
                .cmd(&e.id.to_string())
                .is_ok_and(|env| matches!(env.source, Source::Player(_)))
        })
        .filter_map(|e| at.get(&e.id.to_string()).map(|t| (*t, e.payload.clone())))
        .collect()
}

#[test]
fn the_stored_v1_inputs_verify_on_todays_engine() {
    let stored = Recording::from_file(&fixture()).expect("fixture reads");
    let inputs = player_inputs(&stored);
    assert!(inputs.len() >= 3, "{} player inputs", inputs.len());
    let mut r =
        Recorder::new(rules(), &stored.log.setup, RecordConfig::default()).expect("recorder");
    while r.next_tick() < stored.tick_count() {
        let now = r.next_tick();
        for (_, bytes) in inputs.iter().filter(|(t, _)| *t == now) {
            r.push_encoded(bytes.clone()).expect("stored bytes decode");
        }
        r.step().expect("step");
    }
    let rec = r.finish().expect("recording");
    assert_eq!(
        rec.log.cmd_versions.values().filter(|v| **v == 1).count(),
        1,
        "the v1 bytes are in the new log as stored"
    );
    let v1 = rec
        .log
        .cmd_versions
        .iter()
        .find(|(_, v)| **v == 1)
        .map(|(id, _)| id.to_string())
        .expect("v1 entry");
    let tick = rec.log.tick(V1_TICK).expect("tick");
    assert!(
        tick.applied.iter().any(|a| a.stream_id == v1),
        "applied at its tick"
    );
    let r = verify(&rec, &rules(), &VerifyOptions::default(), &NoProgress).expect("verify");
    assert!(r.ok(), "{:#?}", r.first_divergence());
    assert_eq!(
        replay_tool::verify::recorded_sim_version(&rec),
        Some(engine::SIM_VERSION)
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}
