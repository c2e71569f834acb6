//! Old logs stay readable: a stored schema-v1 `MoveUnits` (`target: [x, y]`) decodes as
//! the current `MoveUnits { to: Cell }`. The fixture file was written once by the v1
//! encoder below and is committed; the tests read it, they never regenerate it.

use std::path::PathBuf;

use events::cmd::{MoveUnits, Stop};
use events::{
    decode, Cell, Command, DecodeError, MatchId, PlayerId, Source, UnitId, SCHEMA_VERSION,
};
use serde::Serialize;
use uuid::Uuid;

/// The envelope as schema v1 wrote it (same fields, `v: 1`).
#[derive(Serialize)]
struct V1Envelope<B> {
    v: u16,
    id: Uuid,
    match_id: String,
    source: V1Source,
    sent_ms: u64,
    body: B,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum V1Source {
    Player(u8),
}

/// v1 commands (only those the tests need).
#[derive(Serialize)]
enum V1Command {
    MoveUnits(V1MoveUnits),
    Stop(V1Stop),
}

#[derive(Serialize)]
struct V1MoveUnits {
    units: Vec<u32>,
    target: [u16; 2],
}

#[derive(Serialize)]
struct V1Stop {
    units: Vec<u32>,
}

const FIXTURE_ID: u128 = 0x0190_0000_0000_7000_8000_0000_0000_0001;
const FIXTURE_SENT_MS: u64 = 1_700_000_000_000;

fn v1_bytes(body: V1Command) -> Vec<u8> {
    rmp_serde::to_vec_named(&V1Envelope {
        v: 1,
        id: Uuid::from_u128(FIXTURE_ID),
        match_id: "m1".into(),
        source: V1Source::Player(1),
        sent_ms: FIXTURE_SENT_MS,
        body,
    })
    .unwrap()
}

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/command_v1_move.msgpack")
}

fn stored_fixture() -> Vec<u8> {
    let path = fixture_path();
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the committed fixture {}: {e} (it is generated once with \
             `cargo test -p events --test upcast -- --ignored write_v1_fixture`)",
            path.display()
        )
    })
}

/// Writes the fixture if it is missing. Run once; the file is committed and must not
/// change, because it stands for bytes an old build wrote.
#[test]
#[ignore = "generates the committed fixture; run once with --ignored"]
fn write_v1_fixture() {
    let path = fixture_path();
    if path.exists() {
        eprintln!("{} exists; not overwriting", path.display());
        return;
    }
    let bytes = v1_bytes(V1Command::MoveUnits(V1MoveUnits {
        units: vec![3, 5, 8],
        target: [12, 34],
    }));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn stored_fixture_is_a_v1_move_with_a_target_array() {
    let bytes = stored_fixture();
    let value = rmpv::decode::read_value(&mut bytes.as_slice()).unwrap();
    let map = value.as_map().expect("an envelope map");
    let get = |m: &Vec<(rmpv::Value, rmpv::Value)>, k: &str| {
        m.iter()
            .find(|(key, _)| key.as_str() == Some(k))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get(map, "v").and_then(|v| v.as_u64()), Some(1));
    let body = get(map, "body").unwrap();
    let mv = get(body.as_map().unwrap(), "MoveUnits").unwrap();
    let target = get(mv.as_map().unwrap(), "target").unwrap();
    assert_eq!(target.as_array().map(|a| a.len()), Some(2));
}

#[test]
fn stored_v1_move_decodes_as_current_move() {
    let env = decode::<Command>(&stored_fixture()).expect("v1 fixture decodes");
    assert_eq!(env.v, SCHEMA_VERSION);
    assert_eq!(env.id, Uuid::from_u128(FIXTURE_ID));
    assert_eq!(env.match_id, MatchId::new("m1").unwrap());
    assert_eq!(env.source, Source::Player(PlayerId(1)));
    assert_eq!(env.sent_ms, FIXTURE_SENT_MS);
    assert_eq!(
        env.body,
        Command::MoveUnits(MoveUnits {
            units: vec![UnitId(3), UnitId(5), UnitId(8)],
            to: Cell { x: 12, y: 34 },
        })
    );
}

#[test]
fn v1_commands_without_a_change_pass_through() {
    let env = decode::<Command>(&v1_bytes(V1Command::Stop(V1Stop { units: vec![7] }))).unwrap();
    assert_eq!(env.v, SCHEMA_VERSION);
    assert_eq!(
        env.body,
        Command::Stop(Stop {
            units: vec![UnitId(7)]
        })
    );
}

#[test]
fn broken_v1_move_is_an_upcast_error() {
    #[derive(Serialize)]
    enum Broken {
        MoveUnits { units: Vec<u32>, target: u16 },
    }
    let bytes = rmp_serde::to_vec_named(&V1Envelope {
        v: 1,
        id: Uuid::from_u128(FIXTURE_ID),
        match_id: "m1".into(),
        source: V1Source::Player(1),
        sent_ms: FIXTURE_SENT_MS,
        body: Broken::MoveUnits {
            units: vec![1],
            target: 3,
        },
    })
    .unwrap();
    assert!(matches!(
        decode::<Command>(&bytes),
        Err(DecodeError::Upcast { found: 1, .. })
    ));
}
