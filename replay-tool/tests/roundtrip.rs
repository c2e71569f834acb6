//! Export → import round trips: replay files, the in-memory bus and a real Redis, under
//! the same and a new match id; the imported match still verifies.

mod common;

use common::{record, rules, temp_path, Options};
use events::testkit::{redis_url_for_tests, unique_prefix, PrefixGuard};
use events::{Keys, MatchId, MemoryBus, RedisBus, RedisBusConfig};
use replay_tool::bus::{self, ImportOptions, MatchStatus};
use replay_tool::progress::NoProgress;
use replay_tool::{file, verify, Error, Recording, VerifyOptions};

fn short() -> Options {
    Options {
        ticks: 240,
        ..Options::default()
    }
}

#[test]
fn file_round_trip_keeps_every_entry_byte_for_byte() {
    let (rec, _) = record("file-rt", &short());
    for compress in [true, false] {
        let path = temp_path("rt.cnitreplay");
        let size = rec.to_file(&path, compress).expect("write");
        assert!(size > 0);
        let (h, back) = file::read(&path).expect("read");
        std::fs::remove_file(&path).ok();
        assert_eq!(back.streams, rec.streams);
        assert_eq!(h.match_id, rec.match_id);
        assert_eq!(h.ticks, rec.tick_count());
        assert_eq!(h.compressed, compress);
        assert_eq!(h.engine_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(Some(h.rules_hash), rec.recorded_rules_hash());
        assert_eq!(h.setup, rec.log.setup);
    }
}

#[test]
fn a_damaged_file_is_refused() {
    let (rec, _) = record("damaged", &short());
    let mut bytes = file::to_bytes(&rec, false).expect("encode");
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    assert!(matches!(file::from_bytes(&bytes), Err(Error::Format(_))));
    assert!(matches!(
        file::from_bytes(&bytes[..n / 2]),
        Err(Error::Format(_))
    ));
}

#[tokio::test]
async fn memory_bus_round_trip_and_list() {
    let (rec, _) = record("mem-rt", &short());
    let bus = MemoryBus::new();
    let keys = Keys::new("rt");
    let done = bus::import(&bus, &keys, &rec, &ImportOptions::default())
        .await
        .expect("import");
    assert_eq!(done.match_id, rec.match_id);
    let back = Recording::from_bus(&bus, &keys, &rec.match_id)
        .await
        .expect("load");
    assert_eq!(back.streams.cmd, rec.streams.cmd);
    assert_eq!(back.streams.tick, rec.streams.tick);
    assert_eq!(back.streams.eco, rec.streams.eco);
    assert_eq!(back.streams.snap, rec.streams.snap);
    assert_eq!(back.log.setup, rec.log.setup);

    // Importing the same match again is refused; under a new id it is fine.
    assert!(matches!(
        bus::import(&bus, &keys, &rec, &ImportOptions::default()).await,
        Err(Error::Exists(_))
    ));
    let copy = MatchId::new("mem-rt-copy").expect("id");
    bus::import(
        &bus,
        &keys,
        &rec,
        &ImportOptions {
            rename: Some(copy.clone()),
            ..ImportOptions::default()
        },
    )
    .await
    .expect("import renamed");
    let list = bus::list(&bus, &keys).await.expect("list");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].match_id, rec.match_id);
    assert_eq!(list[0].ticks, rec.tick_count());
    assert_eq!(list[0].status, MatchStatus::Running);
    assert_eq!(list[0].players.len(), 2);
    assert_eq!(list[1].match_id, copy);
    assert_eq!(list[1].replay_of.as_ref(), Some(&rec.match_id));

    // The renamed copy carries the new id everywhere, and still verifies.
    let renamed = Recording::from_bus(&bus, &keys, &copy).await.expect("load");
    assert_eq!(renamed.match_id, copy);
    assert_eq!(renamed.original_id(), Some(&rec.match_id));
    for e in &renamed.streams.cmd {
        let env = events::decode::<events::Command>(&e.payload).expect("decodes");
        assert_eq!(env.match_id, copy);
    }
    let r = verify(&renamed, &rules(), &VerifyOptions::default(), &NoProgress).expect("verify");
    assert!(r.ok(), "{:#?}", r.first_divergence());
}

#[test]
fn redis_round_trip_under_a_new_id() {
    let redis = redis_url_for_tests();
    let prefix = unique_prefix();
    let _guard = PrefixGuard::new(redis.url(), &prefix);
    let (rec, _) = record("redis-rt", &short());
    let path = temp_path("redis.cnitreplay");
    rec.to_file(&path, true).expect("write");
    let loaded = Recording::from_file(&path).expect("read");
    std::fs::remove_file(&path).ok();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let bus = RedisBus::connect(redis.url(), RedisBusConfig::default())
            .await
            .expect("connect");
        let keys = Keys::new(&prefix);
        bus::import(&bus, &keys, &loaded, &ImportOptions::default())
            .await
            .expect("import");
        let new_id = MatchId::new("redis-rt-2").expect("id");
        bus::import(
            &bus,
            &keys,
            &loaded,
            &ImportOptions {
                rename: Some(new_id.clone()),
                ..ImportOptions::default()
            },
        )
        .await
        .expect("import renamed");
        let list = bus::list(&bus, &keys).await.expect("list");
        let ids: Vec<&MatchId> = list.iter().map(|m| &m.match_id).collect();
        assert_eq!(ids, vec![&rec.match_id, &new_id]);
        let same = Recording::from_bus(&bus, &keys, &rec.match_id)
            .await
            .expect("load");
        assert_eq!(same.streams.cmd, rec.streams.cmd);
        assert_eq!(same.streams.tick, rec.streams.tick);
        let copy = Recording::from_bus(&bus, &keys, &new_id)
            .await
            .expect("load");
        let r = verify(&copy, &rules(), &VerifyOptions::default(), &NoProgress).expect("verify");
        assert!(r.ok(), "{:#?}", r.first_divergence());
        assert!(matches!(
            Recording::from_bus(&bus, &keys, &MatchId::new("nope").expect("id")).await,
            Err(Error::NoMatch(_))
        ));
    });
}
