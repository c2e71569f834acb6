//! A match started from a base state (a battle: the engine snapshot the lobby writes
//! before its `MatchCreated`, so its log starts after that state's tick) verifies, seeks, plays back and
//! answers every file command, like a match started from its setup.

mod common;

use std::process::Command as Process;
use std::sync::Arc;

use common::{rules, temp_path};
use events::{MapSpec, MatchCreated, MatchId, PlayerId, PlayerKind, PlayerSlot};
use replay_tool::progress::NoProgress;
use replay_tool::record::{RecordConfig, Recorder};
use replay_tool::{verify, EngineRun, EngineSeeker, Machine, Playback, VerifyOptions};

const TICKS: u64 = 300;

fn battle_setup() -> MatchCreated {
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
    }
}

#[test]
fn a_battle_log_starting_after_its_base_state_replays() {
    let setup = battle_setup();
    let config = RecordConfig {
        snapshot_every: 50,
        // The base snapshot is trimmed from the snap stream; the seek stream keeps it.
        snap_maxlen: Some(4),
        ..RecordConfig::default()
    };
    let mut r = Recorder::new(rules(), &setup, config).expect("recorder");
    let base = engine::scenario::battle_for(rules(), &setup, 40).expect("battle");
    let base_hash = base.hash();
    let base_tick = base.next_tick() - 1;
    r.start_from(base).expect("base state");
    while r.next_tick() <= TICKS && r.winner().is_none() {
        r.step().expect("step");
    }
    let rec = r.finish().expect("recording");
    assert_eq!(rec.log.first_tick, base_tick + 1);
    assert!(
        rec.log
            .snaps_of(replay_tool::Service::Engine)
            .all(|s| s.tick > base_tick),
        "the base snapshot left the capped snap stream"
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
    let setup = battle_setup();
    let mut r = Recorder::new(rules(), &setup, RecordConfig::default()).expect("recorder");
    let base = engine::scenario::battle_for(rules(), &setup, 10).expect("battle");
    let base_tick = base.next_tick() - 1;
    r.start_from(base).expect("base state");
    while r.next_tick() <= base_tick + ticks {
        r.step().expect("step");
    }
    (r.finish().expect("recording"), base_tick)
}

/// An index build whose only interval boundaries before the log's end fall before the
/// base state has nothing to build (and does not count the ticks backwards).
#[test]
fn an_index_build_with_every_boundary_before_the_base_state_is_empty() {
    let (rec, base) = short_battle(4);
    let last = rec.log.last_tick().expect("ticks");
    assert_eq!(last, base + 4);
    // An interval with a boundary below the base state (which is not one) and none from
    // the log's first tick to its last: a short battle seeked with `--interval 10`.
    let every = (2..=base)
        .find(|e| base % e != 0 && (base + 1..=last).all(|t| t % e != 0))
        .expect("such an interval");
    let rec = Arc::new(rec);
    let mut s = EngineSeeker::new(rec.clone(), rules()).with_interval(every);
    let held = s.indexed();
    s.index_all(&NoProgress).expect("index");
    assert_eq!(s.indexed(), held, "no boundary to index");
    assert_eq!(s.widest_gap(), last - base);
    let m = s.at(last).expect("seek");
    assert_eq!(Some(m.hash()), EngineRun::recorded_hash(&rec.log, last));

    let path = temp_path("short-battle.cnitreplay");
    rec.to_file(&path, true).expect("write");
    let interval = every.to_string();
    let o = Process::new(env!("CARGO_BIN_EXE_replay-tool"))
        .args([
            "seek",
            path.to_str().expect("utf-8 path"),
            "--interval",
            &interval,
        ])
        .output()
        .expect("runs");
    std::fs::remove_file(path).ok();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A tick stream that starts after tick 0 without the base state to start from (e.g. one
/// entry at a huge tick) is refused as a log missing its start, by the library and by
/// every command on such a file.
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
        .expect_err("no base state at the huge tick")
        .to_string();
    assert!(err.contains("where tick 0 was expected"), "{err}");
    assert!(err.contains(&format!("{huge}-1")), "{err}");
    // The battle's own base state (at another tick) is held, and is no base for it.
    assert!(rec.log.seek.iter().any(|s| s.tick == base));

    // The same streams in a file: every command refuses it with the same reason.
    let bad = replay_tool::Recording {
        match_id: rec.match_id.clone(),
        streams,
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
