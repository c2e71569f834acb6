//! `replay-tool audit`: a clean recorded log passes; each kind of tampering (a tick gap or
//! double, a step out of place, a command consumed twice, a lost or deleted command, an
//! undecodable command not dead-lettered or dead-lettered twice) is found, from a file,
//! from a bus (with the DLQ as evidence) and through the binary's exit codes and JSON.

mod common;

use std::process::Command;

use common::{record, temp_path, Options};
use events::dlq::dead_letter;
use events::testkit::{redis_url_for_tests, unique_prefix, PrefixGuard};
use events::{decode, encode, Bus, Entry, Keys, RedisBus, RedisBusConfig, StreamId};
use replay_tool::audit::{audit_bus, audit_file_streams, FindingKind};
use replay_tool::bus::{import, ImportOptions};
use replay_tool::{RawEntry, Recording, Streams};

fn tool(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_replay-tool"))
        .args(args)
        .output()
        .expect("runs")
}

fn recorded() -> Recording {
    record(
        "audited",
        &Options {
            ticks: 200,
            ..Options::default()
        },
    )
    .0
}

fn kinds(s: &Streams) -> Vec<FindingKind> {
    let r = audit_file_streams(s).expect("audits");
    let mut k: Vec<FindingKind> = r.findings.iter().map(|f| f.kind).collect();
    k.dedup();
    k
}

fn tick_entry(s: &Streams, t: u64) -> events::Envelope<events::TickCommitted> {
    decode(&s.tick[t as usize].payload).expect("tick")
}

fn set_tick(s: &mut Streams, t: u64, env: &events::Envelope<events::TickCommitted>) {
    s.tick[t as usize].payload = encode(env).expect("encodes");
}

/// The id of a command applied by some tick, and that tick.
fn an_applied_command(s: &Streams) -> (u64, String) {
    (0..s.tick.len() as u64)
        .find_map(|t| {
            tick_entry(s, t)
                .body
                .applied
                .first()
                .map(|a| (t, a.stream_id.clone()))
        })
        .expect("a tick applied a command")
}

#[test]
fn a_clean_log_passes_and_each_tampering_is_found() {
    let rec = recorded();
    let s = &rec.streams;
    let r = audit_file_streams(s).expect("audits");
    assert!(r.clean(), "{:#?}", r.findings);
    assert_eq!(r.ticks, rec.tick_count());
    assert!(r.applied > 0 && r.production_consumed > 0);
    assert_eq!(r.dlq_entries, None);

    // A gap in the tick stream (a tick that applied nothing: nothing else is lost).
    let mut t = s.clone();
    let quiet = (1..t.tick.len() as u64 - 1)
        .find(|&n| tick_entry(&t, n).body.applied.is_empty())
        .expect("a tick without commands");
    t.tick.remove(quiet as usize);
    assert_eq!(kinds(&t), vec![FindingKind::TickOutOfPlace]);
    // A double: tick 50 committed again in place of tick 51.
    let mut t = s.clone();
    t.tick[51] = RawEntry {
        id: StreamId::for_tick(51),
        payload: t.tick[50].payload.clone(),
    };
    assert!(kinds(&t).contains(&FindingKind::TickOutOfPlace));
    // An economy step missing.
    let mut t = s.clone();
    t.eco.remove(10);
    assert_eq!(kinds(&t), vec![FindingKind::StepOutOfPlace]);
    // A command applied by a second tick too.
    let mut t = s.clone();
    let (at, id) = an_applied_command(&t);
    let mut env = tick_entry(&t, at + 1);
    let first = tick_entry(&t, at).body.applied[0].clone();
    env.body.applied.push(first);
    set_tick(&mut t, at + 1, &env);
    assert_eq!(kinds(&t), vec![FindingKind::ConsumedTwice]);
    // A command applied by no tick.
    let mut t = s.clone();
    let mut env = tick_entry(&t, at);
    env.body.applied.retain(|a| a.stream_id != id);
    set_tick(&mut t, at, &env);
    assert_eq!(kinds(&t), vec![FindingKind::Lost]);
    // A command deleted from the stream that a tick names.
    let mut t = s.clone();
    t.cmd.retain(|e| e.id.to_string() != id);
    assert_eq!(kinds(&t), vec![FindingKind::Lost]);
    // An undecodable entry no tick dead-lettered.
    let mut t = s.clone();
    let garbage_id = StreamId::new(t.cmd[0].id.ms, t.cmd[0].id.seq + 1_000);
    t.cmd.push(RawEntry {
        id: garbage_id,
        payload: vec![0xc1],
    });
    t.cmd.sort_by_key(|e| e.id);
    assert_eq!(kinds(&t), vec![FindingKind::NotDeadLettered]);
    // ... dead-lettered by one tick: clean; by two: found.
    let mut env = tick_entry(&t, 5);
    env.body.dead_lettered.push(garbage_id.to_string());
    set_tick(&mut t, 5, &env);
    assert!(audit_file_streams(&t).expect("audits").clean());
    let mut env = tick_entry(&t, 6);
    env.body.dead_lettered.push(garbage_id.to_string());
    set_tick(&mut t, 6, &env);
    assert_eq!(kinds(&t), vec![FindingKind::DeadLetteredTwice]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_from_a_bus_and_through_the_binary() {
    let rec = recorded();
    let redis = redis_url_for_tests();
    let prefix = unique_prefix();
    let _guard = PrefixGuard::new(redis.url(), prefix.clone());
    let bus = RedisBus::connect(redis.url(), RedisBusConfig::default())
        .await
        .expect("redis");
    let keys = Keys::new(prefix.clone());
    import(&bus, &keys, &rec, &ImportOptions::default())
        .await
        .expect("import");
    let m = rec.match_id.clone();
    let r = audit_bus(&bus, &keys, &m).await.expect("audits");
    assert!(r.clean(), "{:#?}", r.findings);
    assert_eq!(r.dlq_entries, Some(0));
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["--redis-url", redis.url(), "--prefix", &prefix, "audit"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |extra: &[&str]| {
        let a = args(extra);
        tool(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let o = run(&["--match", m.as_str()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("clean"));

    // An undecodable entry: not dead-lettered, then dead-lettered twice.
    let cmd = keys.cmd(&m);
    let id = bus
        .append(&cmd, events::IdSpec::Auto, &[0xc1], None)
        .await
        .expect("append");
    let r = audit_bus(&bus, &keys, &m).await.expect("audits");
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].kind, FindingKind::NotDeadLettered);
    let entry = Entry::new(id, vec![0xc1]);
    for _ in 0..2 {
        dead_letter(&bus, &keys, &cmd, None, &entry, "test")
            .await
            .expect("dead letter");
    }
    let r = audit_bus(&bus, &keys, &m).await.expect("audits");
    assert_eq!(r.dlq_entries, Some(2));
    assert_eq!(r.findings[0].kind, FindingKind::DeadLetteredTwice);
    let o = run(&["--match", m.as_str(), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["findings"][0]["kind"], "dead_lettered_twice");
    assert_eq!(v["findings"][0]["entry"], id.to_string());

    // Unusable input: a match that is not there, a file that is not a replay.
    let o = run(&["--match", "nosuchmatch"]);
    assert_eq!(o.status.code(), Some(2));
    let junk = temp_path("junk.cnitreplay");
    std::fs::write(&junk, b"junk").expect("write");
    let o = tool(&["audit", junk.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(2));

    // A file: clean, then with a gap (exit 1).
    let f = temp_path("audit.cnitreplay");
    rec.to_file(&f, true).expect("write");
    let o = tool(&["audit", f.to_str().expect("utf-8"), "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let mut gap = rec.streams.clone();
    gap.tick.remove(7);
    let bytes = replay_tool::file::to_bytes(
        &Recording {
            streams: gap,
            ..rec.clone()
        },
        true,
    )
    .expect("encode");
    std::fs::write(&f, bytes).expect("write");
    let o = tool(&["audit", f.to_str().expect("utf-8")]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("TickOutOfPlace"));
    for p in [f, junk] {
        std::fs::remove_file(p).ok();
    }
}
