//! Fuzzing of the decoders that face bad input: the event codec
//! (`events::decode::<Command | TickCommitted | MatchEvent | EconomyStepCommitted |
//! Snapshot>`, and dead letters) and the gateway's WebSocket frame parser
//! (`gateway::session::parse`). Structure-aware: most inputs are mutations of valid
//! encodings (bit flips, msgpack/JSON markers with huge lengths, splices between corpus
//! entries, truncations, deep nesting, version bytes steered into the upcast path), the
//! rest random bytes. No input may panic; the test counts how many still decoded.
//!
//! CI runs 20,000 inputs per target. The bench run, one million per target:
//! `CNIT_FUZZ_INPUTS=1000000 cargo test --release -p system-tests --test fuzz_decoders -- --nocapture`
//! (`CNIT_FUZZ_SEED` replays another seed).

use std::sync::Arc;
use std::time::Instant;

use engine::{Rules, Sim};
use events::cmd::*;
use events::{
    decode, encode, AppliedCommand, BuildingKind, Cell, Command, Difficulty, EconomyStepCommitted,
    Envelope, GameEvent, Item, LedgerEvent, MapSpec, MatchCreated, MatchEnded, MatchEvent, MatchId,
    PlayerId, PlayerKind, PlayerSlot, QueueKind, RejectReason, Snapshot, SnapshotOwner, Source,
    TickCommitted, UnitId, UnitKind,
};

fn inputs_per_target() -> u64 {
    std::env::var("CNIT_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

fn seed() -> u64 {
    std::env::var("CNIT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_c0de)
}

/// xorshift64*: fast, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Bytes that mean something to msgpack: nil, bools, length headers of every width.
const MSGPACK_MARKERS: &[u8] = &[
    0xc0, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd3, 0xd9, 0xda,
    0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0x90, 0x9f, 0x80, 0x8f, 0xa0, 0xbf, 0x00, 0x7f, 0xff, 0x01, 0x02,
];

/// Tokens that mean something to JSON and to the protocol.
const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "-0",
    "1e999",
    "18446744073709551616",
    "-1",
    "\"t\"",
    "\"cmd\"",
    "\"join\"",
    "\"hello\"",
    "\"units\"",
    "\"kind\"",
    "\"move\"",
    "[[[[[[[[",
    "]]]]]]]]",
    "\u{0}",
    "\u{feff}",
    "é",
    "\"protocol\"",
    "4294967296",
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], markers: &[u8]) -> Vec<u8> {
    if rng.chance(5) {
        let n = rng.below(256);
        return (0..n).map(|_| rng.next() as u8).collect();
    }
    let mut b = corpus[rng.below(corpus.len())].clone();
    let rounds = if rng.chance(50) { 1 } else { 1 + rng.below(6) };
    for _ in 0..rounds {
        if b.is_empty() {
            b.push(rng.next() as u8);
        }
        let i = rng.below(b.len());
        match rng.below(9) {
            0 => b[i] ^= 1 << rng.below(8),
            1 => b[i] = markers[rng.below(markers.len())],
            2 => b[i] = rng.next() as u8,
            3 => {
                // A length header claiming a huge size.
                let hdr = [0xdd, 0xdf, 0xdb, 0xc6][rng.below(4)];
                let len = [u32::MAX, 0x7fff_ffff, 65_536, 1 << 20][rng.below(4)];
                let mut ins = vec![hdr];
                ins.extend_from_slice(&len.to_be_bytes());
                b.splice(i..i, ins);
            }
            4 => b.truncate(i),
            5 => {
                let end = (i + rng.below(16)).min(b.len());
                b.drain(i..end);
            }
            6 => {
                // Duplicate a chunk.
                let end = (i + 1 + rng.below(32)).min(b.len());
                let chunk = b[i..end].to_vec();
                b.splice(i..i, chunk);
            }
            7 => {
                // Splice in a piece of another corpus entry.
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let s = rng.below(other.len());
                    let e = (s + 1 + rng.below(64)).min(other.len());
                    b.splice(i..i, other[s..e].iter().copied());
                }
            }
            _ => {
                // Steer the schema version: `v` is the envelope's first field, so its
                // value byte is right after the "v" key (0xa1 'v').
                if let Some(p) = b.windows(2).position(|w| w == [0xa1, b'v']) {
                    if p + 2 < b.len() {
                        b[p + 2] = [0, 1, 2, 3, 0xcc, 0x7f][rng.below(6)];
                    }
                }
            }
        }
    }
    b
}

fn env<B>(body: B, source: Source) -> Envelope<B> {
    Envelope::new(MatchId::new("fuzz").unwrap(), source, body)
}

fn command_corpus() -> Vec<Vec<u8>> {
    let u = || vec![UnitId(1), UnitId(7), UnitId(4_000_000)];
    let c = Cell::new(3, 250);
    let cmds = vec![
        Command::MoveUnits(MoveUnits { units: u(), to: c }),
        Command::AttackMove(AttackMove { units: u(), to: c }),
        Command::AttackTarget(AttackTarget {
            units: u(),
            target: UnitId(9),
        }),
        Command::Stop(Stop { units: vec![] }),
        Command::HoldPosition(HoldPosition { units: u() }),
        Command::Harvest(Harvest { units: u(), at: c }),
        Command::ReturnToRefinery(ReturnToRefinery { units: u() }),
        Command::Sell(Sell {
            building: UnitId(2),
        }),
        Command::QueueProduction(QueueProduction {
            item: Item::Unit(UnitKind::HeavyTank),
        }),
        Command::QueueProduction(QueueProduction {
            item: Item::Building(BuildingKind::LaserTower),
        }),
        Command::CancelProduction(CancelProduction {
            queue: QueueKind::Vehicles,
        }),
        Command::PlaceBuilding(PlaceBuilding {
            building: BuildingKind::Refinery,
            at: c,
        }),
        Command::SpawnUnit(SpawnUnit {
            player: PlayerId(1),
            kind: UnitKind::Harvester,
        }),
        Command::ConstructBuilding(ConstructBuilding {
            player: PlayerId(0),
            kind: BuildingKind::PowerPlant,
            at: c,
            request: u64::MAX,
        }),
        Command::SetLowPower(SetLowPower {
            player: PlayerId(0),
            low: true,
        }),
    ];
    let sources = [
        Source::Player(PlayerId(0)),
        Source::Bot(PlayerId(7)),
        Source::Economy,
        Source::System,
    ];
    let mut out: Vec<Vec<u8>> = cmds
        .into_iter()
        .enumerate()
        .map(|(i, c)| encode(&env(c, sources[i % sources.len()])).unwrap())
        .collect();
    // A schema-v1 MoveUnits (`target: [x, y]`), which goes through the upcast path.
    #[derive(serde::Serialize)]
    struct V1Move {
        units: Vec<u32>,
        target: [u16; 2],
    }
    #[derive(serde::Serialize)]
    enum V1 {
        MoveUnits(V1Move),
    }
    let mut v1 = env(
        V1::MoveUnits(V1Move {
            units: vec![1, 2],
            target: [4, 5],
        }),
        Source::Player(PlayerId(0)),
    );
    v1.v = 1;
    out.push(rmp_serde::to_vec_named(&v1).unwrap());
    out
}

fn setup() -> MatchCreated {
    MatchCreated {
        match_id: MatchId::new("fuzz").unwrap(),
        seed: 3,
        map: MapSpec { size: 32, seed: 3 },
        players: vec![
            PlayerSlot {
                id: PlayerId(0),
                name: "a \"quoted\" name é".into(),
                kind: PlayerKind::Human,
            },
            PlayerSlot {
                id: PlayerId(1),
                name: String::new(),
                kind: PlayerKind::Ai(Difficulty::Hard),
            },
        ],
        tick_hz: 20,
        scenario: events::Scenario::Skirmish,
    }
}

/// Tick entries of a real (short) simulation, plus one carrying every kind of detail.
fn tick_corpus() -> (Vec<Vec<u8>>, Vec<u8>) {
    let rules = Arc::new(Rules::standard());
    let mut sim = Sim::new(rules, &setup()).unwrap();
    let mut out = Vec::new();
    for t in 0..60 {
        let o = sim.step(&[]);
        if t % 10 == 0 || !o.committed.events.is_empty() {
            out.push(encode(&env(o.committed, Source::System)).unwrap());
        }
    }
    let snapshot = encode(&env(
        Snapshot {
            owner: SnapshotOwner::Engine,
            tick: 60,
            hash: sim.hash(),
            log_id: "60-1".into(),
            state: sim.snapshot(),
        },
        Source::System,
    ))
    .unwrap();
    out.push(
        encode(&env(
            TickCommitted {
                tick: u64::MAX,
                applied: vec![AppliedCommand {
                    stream_id: "1-0".into(),
                    event_id: uuid::Uuid::now_v7(),
                }],
                events: vec![
                    GameEvent::CommandRejected {
                        command: uuid::Uuid::now_v7(),
                        player: Some(PlayerId(1)),
                        reason: RejectReason::BadPlacement("overlaps".into()),
                    },
                    GameEvent::PlayerDefeated {
                        player: PlayerId(1),
                    },
                    GameEvent::MatchWon {
                        winner: Some(PlayerId(0)),
                    },
                ],
                hash: 42,
                dead_lettered: vec!["2-0".into()],
            },
            Source::System,
        ))
        .unwrap(),
    );
    (out, snapshot)
}

fn match_corpus() -> Vec<Vec<u8>> {
    vec![
        encode(&env(MatchEvent::MatchCreated(setup()), Source::System)).unwrap(),
        encode(&env(
            MatchEvent::MatchEnded(MatchEnded {
                match_id: MatchId::new("fuzz").unwrap(),
                tick: 1234,
                winner: None,
            }),
            Source::System,
        ))
        .unwrap(),
    ]
}

fn eco_corpus() -> Vec<Vec<u8>> {
    vec![encode(&env(
        EconomyStepCommitted {
            tick: 9,
            consumed: vec!["9-1".into(), "1700000000000-0".into()],
            events: vec![
                LedgerEvent::CreditsChanged {
                    player: PlayerId(0),
                    delta: -700,
                    balance: 300,
                },
                LedgerEvent::PowerChanged {
                    player: PlayerId(1),
                    output: 100,
                    consumption: -5,
                    speed_pct: 100,
                },
                LedgerEvent::CommandRejected {
                    command: uuid::Uuid::now_v7(),
                    player: None,
                    reason: RejectReason::NoFunds,
                },
            ],
            hash: 7,
        },
        Source::Economy,
    ))
    .unwrap()]
}

/// Runs `inputs` mutations of `corpus` through `f` (which reports whether it decoded).
fn run(name: &str, corpus: &[Vec<u8>], markers: &[u8], inputs: u64, f: impl Fn(&[u8]) -> bool) {
    for c in corpus {
        assert!(f(c), "{name}: a valid corpus entry does not decode");
    }
    let mut rng = Rng::new(seed() ^ name.len() as u64);
    let started = Instant::now();
    let mut decoded = 0u64;
    for _ in 0..inputs {
        let input = mutate(&mut rng, corpus, markers);
        if f(&input) {
            decoded += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "FIGURES fuzz {name}: {inputs} inputs, {decoded} still decoded ({:.1} %), 0 panics, {:.0} inputs/s (seed {:#x})",
        decoded as f64 * 100.0 / inputs.max(1) as f64,
        inputs as f64 / secs.max(1e-9),
        seed()
    );
}

#[test]
fn event_decoders_never_panic() {
    let n = inputs_per_target();
    let commands = command_corpus();
    run("decode::<Command>", &commands, MSGPACK_MARKERS, n, |b| {
        decode::<Command>(b).is_ok()
    });
    let (ticks, snapshot) = tick_corpus();
    run("decode::<TickCommitted>", &ticks, MSGPACK_MARKERS, n, |b| {
        decode::<TickCommitted>(b).is_ok()
    });
    run(
        "decode::<MatchEvent>",
        &match_corpus(),
        MSGPACK_MARKERS,
        n,
        |b| decode::<MatchEvent>(b).is_ok(),
    );
    run(
        "decode::<EconomyStepCommitted>",
        &eco_corpus(),
        MSGPACK_MARKERS,
        n / 4,
        |b| decode::<EconomyStepCommitted>(b).is_ok(),
    );
    // Snapshots are big: fewer inputs, and a restore of whatever still decodes.
    let rules = Arc::new(Rules::standard());
    run(
        "decode::<Snapshot> + Sim::restore",
        &[snapshot],
        MSGPACK_MARKERS,
        (n / 100).max(200),
        |b| match decode::<Snapshot>(b) {
            Ok(s) => {
                let _ = Sim::restore(rules.clone(), &s.body.state);
                true
            }
            Err(_) => false,
        },
    );
    // The state bytes inside a snapshot: a damaged one must be refused, not crash the
    // instance taking the match over.
    let (_, snapshot) = tick_corpus();
    let state = decode::<Snapshot>(&snapshot).unwrap().body.state;
    run(
        "Sim::restore",
        &[state],
        MSGPACK_MARKERS,
        (n / 20).max(200),
        |b| Sim::restore(rules.clone(), b).is_ok(),
    );
    let letters: Vec<Vec<u8>> = commands
        .iter()
        .map(|raw| {
            events::dlq::encode_dead_letter(&events::DeadLetter {
                source_stream: "cnit:{m:fuzz}:cmd".into(),
                entry_id: "1-0".into(),
                consumer: "engine-a".into(),
                reason: "fuzz".into(),
                raw: raw.clone(),
                at_ms: 1,
                fields: vec![events::DeadField {
                    name: b"x".to_vec(),
                    value: raw.clone(),
                }],
            })
        })
        .collect();
    run(
        "decode_dead_letter",
        &letters,
        MSGPACK_MARKERS,
        n / 4,
        |b| events::dlq::decode_dead_letter(b).is_some(),
    );
}

fn frame_corpus() -> Vec<Vec<u8>> {
    [
        r#"{"t":"hello","protocol":2}"#,
        r#"{"t":"join","token":"v1.m.0.1700000000000.abcdef","last_tick":12}"#,
        r#"{"t":"join","token":"x","last_tick":null}"#,
        r#"{"t":"spectate","match":"abc_DEF-1","last_tick":null}"#,
        r#"{"t":"cmd","seq":1,"cmd":{"kind":"move","units":[1,2,3],"to":[4,5]}}"#,
        r#"{"t":"cmd","seq":2,"cmd":{"kind":"attack_move","units":[1],"to":[0,0]}}"#,
        r#"{"t":"cmd","seq":3,"cmd":{"kind":"attack","units":[1],"target":9}}"#,
        r#"{"t":"cmd","seq":4,"cmd":{"kind":"stop","units":[]}}"#,
        r#"{"t":"cmd","seq":5,"cmd":{"kind":"hold","units":[4]}}"#,
        r#"{"t":"cmd","seq":6,"cmd":{"kind":"harvest","units":[4],"at":[9,9]}}"#,
        r#"{"t":"cmd","seq":7,"cmd":{"kind":"return_to_refinery","units":[4]}}"#,
        r#"{"t":"cmd","seq":8,"cmd":{"kind":"sell","building":3}}"#,
        r#"{"t":"cmd","seq":9,"cmd":{"kind":"queue","item":"heavy_tank"}}"#,
        r#"{"t":"cmd","seq":10,"cmd":{"kind":"cancel","queue":"vehicles"}}"#,
        r#"{"t":"cmd","seq":11,"cmd":{"kind":"place","building":"refinery","at":[3,4]}}"#,
        r#"{"t":"ping","id":5}"#,
        r#"{"t":"pong","id":18446744073709551615}"#,
        r#"{"t":"telemetry","selection_latency_ms":[1.5,2,1e308],"frame_ms":[16.7]}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn mutate_json(rng: &mut Rng, corpus: &[Vec<u8>]) -> String {
    let mut b = mutate(rng, corpus, b"{}[],:\"\\0123456789-+.eEtfn ");
    // Token-level edits on top of the byte-level ones.
    for _ in 0..rng.below(3) {
        let tok = JSON_TOKENS[rng.below(JSON_TOKENS.len())].as_bytes();
        let i = rng.below(b.len() + 1);
        b.splice(i..i, tok.iter().copied());
    }
    if rng.chance(2) {
        // Nesting far past serde_json's recursion limit.
        let depth = 1 + rng.below(100_000);
        let mut s = "[".repeat(depth);
        s.push_str(&"]".repeat(depth));
        return s;
    }
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn websocket_frame_parser_never_panics() {
    let n = inputs_per_target();
    let corpus = frame_corpus();
    for c in &corpus {
        let text = std::str::from_utf8(c).unwrap();
        assert!(gateway::session::parse(text).is_ok(), "corpus entry {text}");
    }
    let mut rng = Rng::new(seed());
    let started = Instant::now();
    let mut ok = 0u64;
    let mut by_code = std::collections::BTreeMap::<&str, u64>::new();
    for _ in 0..n {
        let text = mutate_json(&mut rng, &corpus);
        match gateway::session::parse(&text) {
            Ok(msg) => {
                ok += 1;
                // What the session would do next with a command must not panic either.
                if let gateway::wire::ClientMsg::Cmd { cmd, .. } = msg {
                    let _ = cmd.units();
                    let _ = gateway::convert::command(&cmd);
                }
            }
            Err(bad) => *by_code.entry(bad.code).or_default() += 1,
        }
    }
    eprintln!(
        "FIGURES fuzz gateway::session::parse: {n} inputs, {ok} parsed ({:.1} %), errors by code \
         {by_code:?}, 0 panics, {:.0} inputs/s (seed {:#x})",
        ok as f64 * 100.0 / n.max(1) as f64,
        n as f64 / started.elapsed().as_secs_f64().max(1e-9),
        seed()
    );
}
