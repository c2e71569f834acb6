//! A match started from a base state (a battle: its `MatchCreated` names the scenario,
//! the engine builds it and warms it up, so its log starts after that state's tick)
//! verifies, seeks, plays back and answers every file command, like a match started at
//! tick 0: from the base state the engine keeps in its seek stream, or built anew from
//! the `MatchCreated` when the log lacks it. Battles created before `MatchCreated` carried
//! its scenario (the lobby wrote their base state to `snap` and `seek`) still replay.

mod common;

use std::process::Command as Process;
use std::sync::Arc;

use common::{rules, temp_path};
use events::{
    decode, encode, MapSpec, MatchCreated, MatchEvent, MatchId, PlayerId, PlayerKind, PlayerSlot,
    Scenario,
};
use replay_tool::progress::NoProgress;
use replay_tool::record::{RecordConfig, Recorder};
use replay_tool::{verify, EngineRun, EngineSeeker, Machine, Playback, VerifyOptions};

const TICKS: u64 = 300;

fn battle_setup(units_per_side: u32) -> MatchCreated {
    MatchCreated {
        match_id: MatchId::new("battle-replay").expect("id"),
        seed: 9,
        map: MapSpec { size: 32, seed: 9 },
        players: (0..2)
            .map(|i| PlayerSlot {
                id: PlayerId(i),
                name: format!("army {i}"),
                kind: PlayerKind::Human,
            })
            .collect(),
        tick_hz: 20,
        scenario: Scenario::Battle { units_per_side },
    }
}

#[test]
fn a_battle_log_starting_after_its_base_state_replays() {
    let setup = battle_setup(20);
    let config = RecordConfig {
        snapshot_every: 50,
        snap_maxlen: Some(4),
        ..RecordConfig::default()
    };
    let base = engine::scenario::initial(rules(), &setup).expect("battle");
    let base_hash = base.hash();
    let base_tick = base.next_tick() - 1;
    assert_eq!(base_tick + 1, engine::scenario::first_tick(&setup));
    let mut r = Recorder::new(rules(), &setup, config).expect("recorder");
    while r.next_tick() <= TICKS && r.winner().is_none() {
        r.step().expect("step");
    }
    let rec = r.finish().expect("recording");
    assert_eq!(rec.log.first_tick, base_tick + 1);
    assert!(
        rec.log
            .snaps_of(replay_tool::Service::Engine)
            .all(|s| s.tick > base_tick),
        "no snapshot of the base state in the snap stream"
    );
    assert!(
        rec.log
            .seek
            .iter()
            .any(|s| s.tick == base_tick && s.hash == base_hash),
        "the base state in the seek stream, as the engine service keeps it"
    );
    let last = rec.log.last_tick().expect("ticks");

    let report = verify(&rec, &rules(), &VerifyOptions::default(), &NoProgress).expect("verify");
    assert!(report.ok(), "{report:#?}");
    assert_eq!(report.ticks_checked(), last - base_tick);

    let rec = Arc::new(rec);
    let mut s = EngineSeeker::new(rec.clone(), rules());
    assert_eq!(s.at(base_tick).expect("the base state").hash(), base_hash);
    assert!(
        s.at(base_tick - 1).is_err(),
        "nothing before the base state"
    );
    for t in [base_tick + 1, base_tick + 77, last / 2, last] {
        let m = s.at(t).expect("seek");
        assert_eq!(Some(m.hash()), EngineRun::recorded_hash(&rec.log, t), "{t}");
    }
    let mut p = Playback::new(rec.clone(), rules());
    assert_eq!(p.first_position(), base_tick);
    let f = p.next_frame().expect("frame").expect("a first frame");
    assert_eq!(
        f.tick,
        base_tick + 1,
        "playback starts after the base state"
    );
    assert_eq!(p.seek(base_tick).expect("seek to the base").tick, base_tick);
    assert_eq!(p.seek(last).expect("seek to the end").tick, last);

    // The CLI on the file.
    let path = temp_path("battle.cnitreplay");
    rec.to_file(&path, true).expect("write");
    let file = path.to_str().expect("utf-8 path");
    let tick = (last / 2).to_string();
    for args in [
        vec!["verify", file],
        vec!["state", file, "--tick", &tick, "--json"],
        vec!["bench", file],
        vec!["seek", file, "--interval", "50"],
        vec!["stats", file, "--json"],
        vec!["info", file],
    ] {
        let o = Process::new(env!("CARGO_BIN_EXE_replay-tool"))
            .args(&args)
            .output()
            .expect("runs");
        assert!(
            o.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    std::fs::remove_file(path).ok();
}

/// A battle recorded for `ticks` ticks after its base state; returns it and the base
/// state's tick.
fn short_battle(ticks: u64) -> (replay_tool::Recording, u64) {
    let setup = battle_setup(5);
    let mut r = Recorder::new(rules(), &setup, RecordConfig::default()).expect("recorder");
    let base_tick = r.next_tick() - 1;
    while r.next_tick() <= base_tick + ticks {
        r.step().expect("step");
    }
    (r.finish().expect("recording"), base_tick)
}

/// The streams of `rec` with its `MatchCreated` rewritten by `f`.
fn with_setup(
    rec: &replay_tool::Recording,
    f: impl FnOnce(&mut MatchCreated),
) -> replay_tool::Streams {
    let mut streams = rec.streams.clone();
    let mut env = decode::<MatchEvent>(&streams.matches[0].payload).expect("matches entry");
    let MatchEvent::MatchCreated(c) = &mut env.body else {
        panic!("the first matches entry is not a MatchCreated");
    };
    f(c);
    streams.matches[0].payload = encode(&env).expect("encode");
    streams
}

/// Verify, seeks at the base state and after it, and playback from its start, all
/// agreeing with the log.
fn replays(rec: replay_tool::Recording, base_tick: u64) {
    let report = verify(&rec, &rules(), &VerifyOptions::default(), &NoProgress).expect("verify");
    assert!(report.ok(), "{report:#?}");
    let last = rec.log.last_tick().expect("ticks");
    assert_eq!(report.ticks_checked(), last - base_tick);
    let rec = Arc::new(rec);
    let mut s = EngineSeeker::new(rec.clone(), rules());
    s.at(base_tick).expect("the base state");
    for t in [base_tick + 1, last] {
        let m = s.at(t).expect("seek");
        assert_eq!(Some(m.hash()), EngineRun::recorded_hash(&rec.log, t), "{t}");
    }
    let mut p = Playback::new(rec.clone(), rules());
    assert_eq!(p.first_position(), base_tick);
    let f = p.next_frame().expect("frame").expect("a first frame");
    assert_eq!(f.tick, base_tick + 1);
}

/// Without the base state the engine keeps in its seek stream (its write failed, or the
/// entry is gone), a battle replays from the state built anew from its `MatchCreated`;
/// the first seek that needs it keeps it in the index, so it is built once.
#[test]
fn a_battle_log_without_its_base_state_replays_from_its_match_created() {
    let (rec, base) = short_battle(60);
    let mut streams = rec.streams.clone();
    let held = streams.seek.len();
    streams
        .seek
        .retain(|e| e.id != events::StreamId::for_tick(base));
    assert_eq!(streams.seek.len(), held - 1, "the base state was held");
    streams.snap.clear();
    let rec = replay_tool::Recording::from_streams(streams).expect("a battle log");
    assert_eq!(rec.log.first_tick, base + 1);

    let shared = Arc::new(rec.clone());
    let mut s = EngineSeeker::new(shared.clone(), rules());
    assert_eq!(s.indexed(), 0);
    let m = s.at(base + 3).expect("seek");
    assert_eq!(
        Some(m.hash()),
        EngineRun::recorded_hash(&shared.log, base + 3)
    );
    assert_eq!(
        s.snapshots().iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [base],
        "the built base state is kept"
    );
    replays(rec, base);
}

/// A battle created before `MatchCreated` carried its scenario: its `MatchCreated` has no
/// scenario (a skirmish, to this build) and its log starts after the base state its lobby
/// wrote to `snap` and `seek`; it replays from that state. Without it, the log is refused
/// as one missing its start.
#[test]
fn a_battle_created_before_the_scenario_field_replays_from_its_base_state() {
    let battle = battle_setup(5);
    let old_setup = MatchCreated {
        scenario: Scenario::Skirmish,
        ..battle.clone()
    };
    let mut r = Recorder::new(rules(), &old_setup, RecordConfig::default()).expect("recorder");
    let base_state = engine::scenario::initial(rules(), &battle).expect("battle");
    let base = base_state.next_tick() - 1;
    r.start_from(base_state).expect("base state");
    while r.next_tick() <= base + 60 {
        r.step().expect("step");
    }
    let rec = r.finish().expect("recording");
    let created = decode::<MatchEvent>(&rec.streams.matches[0].payload).expect("decodes");
    assert!(
        matches!(&created.body, MatchEvent::MatchCreated(c) if c.scenario.is_skirmish()),
        "no scenario field"
    );
    assert_eq!(rec.log.first_tick, base + 1);
    let old = rec.streams.clone();
    replays(rec, base);

    let mut lost = old;
    lost.seek.clear();
    lost.snap.clear();
    let err = replay_tool::Recording::from_streams(lost)
        .expect_err("no base state to start from")
        .to_string();
    assert!(err.contains("where tick 0 was expected"), "{err}");
}

/// A tick stream that starts elsewhere than its scenario's first tick (e.g. one entry at
/// a huge tick) is refused as a log missing its start, by the library and by every
/// command on such a file: a battle's log starts after its warm-up, an older log without
/// a scenario at tick 0 unless it holds the base state it starts after.
#[test]
fn a_log_starting_late_without_its_base_state_is_refused() {
    let (rec, base) = short_battle(4);
    let huge = 1_000_000_000_000u64;
    let mut env =
        events::decode::<events::TickCommitted>(&rec.streams.tick[0].payload).expect("tick entry");
    env.body.tick = huge;
    let mut streams = rec.streams.clone();
    streams.tick = vec![replay_tool::RawEntry {
        id: events::StreamId::for_tick(huge),
        payload: events::encode(&env).expect("encode"),
    }];
    streams.eco.clear();
    let err = replay_tool::Recording::from_streams(streams.clone())
        .expect_err("a battle's log starts after its warm-up")
        .to_string();
    assert!(
        err.contains(&format!("where tick {} was expected", base + 1)),
        "{err}"
    );
    assert!(err.contains(&format!("{huge}-1")), "{err}");
    let older = with_setup(
        &replay_tool::Recording {
            match_id: rec.match_id.clone(),
            streams: streams.clone(),
            log: rec.log.clone(),
        },
        |c| c.scenario = Scenario::Skirmish,
    );
    let err = replay_tool::Recording::from_streams(older.clone())
        .expect_err("no base state at the huge tick")
        .to_string();
    assert!(err.contains("where tick 0 was expected"), "{err}");
    // The battle's own base state (at another tick) is held, and is no base for it.
    assert!(rec.log.seek.iter().any(|s| s.tick == base));

    // The same streams in a file: every command refuses it with the same reason.
    let bad = replay_tool::Recording {
        match_id: rec.match_id.clone(),
        streams: older,
        log: rec.log.clone(),
    };
    let path = temp_path("late-start.cnitreplay");
    bad.to_file(&path, true).expect("write");
    let file = path.to_str().expect("utf-8 path");
    for args in [
        vec!["stats", file, "--json"],
        vec!["seek", file],
        vec!["verify", file],
    ] {
        let o = Process::new(env!("CARGO_BIN_EXE_replay-tool"))
            .args(&args)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} accepted it");
        assert!(
            stderr.contains("where tick 0 was expected"),
            "{args:?}: {stderr}"
        );
    }
    std::fs::remove_file(path).ok();
}

/// A tick entry at the last tick a `u64` holds is refused (no tick follows it).
#[test]
fn a_tick_entry_at_the_largest_tick_is_refused() {
    let (rec, _) = short_battle(1);
    let mut env =
        events::decode::<events::TickCommitted>(&rec.streams.tick[0].payload).expect("tick entry");
    env.body.tick = u64::MAX;
    let mut streams = rec.streams.clone();
    streams.tick = vec![replay_tool::RawEntry {
        id: events::StreamId::for_tick(u64::MAX),
        payload: events::encode(&env).expect("encode"),
    }];
    streams.eco.clear();
    let err = replay_tool::Recording::from_streams(streams)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("past the last tick"), "{err}");
}
