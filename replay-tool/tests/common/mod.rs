//! Recorded matches for the tests: the engine, the economy and an AI run in process by
//! `replay_tool::record::Recorder`, with player 0 scripted so the tests know which
//! command lands at which tick.

#![allow(dead_code)]

use std::sync::Arc;

use engine::Rules;
use events::cmd::{MoveUnits, QueueProduction};
use events::{
    BuildingKind, Cell, Command, Difficulty, GameEvent, Item, MapSpec, MatchCreated, MatchId,
    PlayerId, PlayerKind, PlayerSlot, Source, StreamId, UnitId,
};
use replay_tool::record::{RecordConfig, Recorder};
use replay_tool::Recording;

pub fn rules() -> Arc<Rules> {
    Arc::new(Rules::standard())
}

/// P0 is a scripted human, P1 an AI, on a small generated map.
pub fn setup(id: &str) -> MatchCreated {
    MatchCreated {
        match_id: MatchId::new(id).expect("valid id"),
        seed: 42,
        map: MapSpec { size: 64, seed: 42 },
        players: vec![
            PlayerSlot {
                id: PlayerId(0),
                name: "scripted".into(),
                kind: PlayerKind::Human,
            },
            PlayerSlot {
                id: PlayerId(1),
                name: "bot".into(),
                kind: PlayerKind::Ai(Difficulty::Normal),
            },
        ],
        tick_hz: 20,
        scenario: events::Scenario::Skirmish,
    }
}

/// What the script did, for the tests' expectations.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// P0's start units.
    pub units: Vec<UnitId>,
    /// Every MoveUnits sent: (tick applied, cmd stream id, unit, goal).
    pub moves: Vec<(u64, StreamId, UnitId, Cell)>,
    /// Ticks at which two conflicting MoveUnits for the same unit were applied.
    pub conflicts: Vec<u64>,
    /// QueueProduction sent: (tick consumed, cmd stream id).
    pub production: Vec<(u64, StreamId)>,
}

/// A goal near the unit's start, varying with `k`.
fn goal(k: u64) -> Cell {
    let x = 8 + (k * 7 % 40) as u16;
    let y = 8 + (k * 13 % 40) as u16;
    Cell::new(x, y)
}

/// Options of [`record`].
#[derive(Clone, Debug)]
pub struct Options {
    pub ticks: u64,
    pub snapshot_every: u64,
    pub snap_maxlen: Option<usize>,
    /// Send two conflicting moves for the same unit every this many ticks (0: never).
    pub conflict_every: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ticks: 400,
            snapshot_every: 50,
            snap_maxlen: None,
            conflict_every: 0,
        }
    }
}

/// Records a match with the script; returns the recording and what was sent when.
pub fn record(id: &str, o: &Options) -> (Recording, Script) {
    let config = RecordConfig {
        snapshot_every: o.snapshot_every,
        snap_maxlen: o.snap_maxlen,
        ..RecordConfig::default()
    };
    let mut r = Recorder::new(rules(), &setup(id), config).expect("recorder");
    let mut script = Script::default();
    let first = r.step().expect("tick 0");
    script.units = first
        .events
        .iter()
        .filter_map(|e| match e {
            GameEvent::UnitSpawned { id, owner, .. } if *owner == PlayerId(0) => Some(*id),
            _ => None,
        })
        .collect();
    assert!(!script.units.is_empty(), "P0 starts with units");
    while r.next_tick() < o.ticks && r.winner().is_none() {
        let t = r.next_tick();
        if t == 3 || t == 140 {
            let id = r
                .push(
                    Source::Player(PlayerId(0)),
                    Command::QueueProduction(QueueProduction {
                        item: Item::Building(BuildingKind::PowerPlant),
                    }),
                )
                .expect("push");
            script.production.push((t, id));
        }
        if t.is_multiple_of(10) {
            let unit = script.units[(t / 10) as usize % script.units.len()];
            let to = goal(t / 10);
            let id = r
                .push(
                    Source::Player(PlayerId(0)),
                    Command::MoveUnits(MoveUnits {
                        units: vec![unit],
                        to,
                    }),
                )
                .expect("push");
            script.moves.push((t, id, unit, to));
        }
        if o.conflict_every > 0 && t % o.conflict_every == 5 {
            let unit = script.units[0];
            for k in [t, t + 3] {
                let to = goal(k);
                let id = r
                    .push(
                        Source::Player(PlayerId(0)),
                        Command::MoveUnits(MoveUnits {
                            units: vec![unit],
                            to,
                        }),
                    )
                    .expect("push");
                script.moves.push((t, id, unit, to));
            }
            script.conflicts.push(t);
        }
        r.step().expect("step");
    }
    (r.finish().expect("recording"), script)
}

/// The recording with one cmd entry's body changed (same id, same event id).
pub fn perturb_cmd(rec: &Recording, id: StreamId, f: impl FnOnce(&mut Command)) -> Recording {
    let mut streams = rec.streams.clone();
    let e = streams
        .cmd
        .iter_mut()
        .find(|e| e.id == id)
        .expect("cmd entry");
    let mut env = events::decode::<Command>(&e.payload).expect("decodes");
    f(&mut env.body);
    e.payload = events::encode(&env).expect("encodes");
    Recording::from_streams(streams).expect("still a recording")
}

/// The recording with one cmd entry deleted.
pub fn delete_cmd(rec: &Recording, id: StreamId) -> Recording {
    let mut streams = rec.streams.clone();
    let before = streams.cmd.len();
    streams.cmd.retain(|e| e.id != id);
    assert_eq!(streams.cmd.len() + 1, before, "cmd entry {id}");
    Recording::from_streams(streams).expect("still a recording")
}

/// The recording with one tick entry's hash changed.
pub fn perturb_tick_hash(rec: &Recording, tick: u64) -> Recording {
    let mut streams = rec.streams.clone();
    let e = streams
        .tick
        .iter_mut()
        .find(|e| e.id == StreamId::for_tick(tick))
        .expect("tick entry");
    let mut env = events::decode::<events::TickCommitted>(&e.payload).expect("decodes");
    env.body.hash ^= 0x5a5a;
    e.payload = events::encode(&env).expect("encodes");
    Recording::from_streams(streams).expect("still a recording")
}

/// A unique temp path.
pub fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "replay-tool-test-{}-{name}",
        uuid::Uuid::now_v7().simple()
    ))
}
