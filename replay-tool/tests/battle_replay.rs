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
