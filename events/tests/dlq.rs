//! The dead-letter path on both buses: undecodable entries read through a consumer group
//! land in the DLQ with their source, id, reason and raw bytes, are acknowledged, and the
//! consumer goes on with the next valid entry. Plus a property test on `MemoryBus`.

mod common;

use common::Ctx;
use events::dlq::{decode_dead_letter, decode_or_dead_letter};
use events::{
    cmd::Stop, encode, Bus, Command, Envelope, IdSpec, Keys, MatchId, MemoryBus, PlayerId, Source,
    StreamId, UnitId, SCHEMA_VERSION,
};
use proptest::prelude::*;

bus_tests!(
    garbage_is_dead_lettered_acked_and_skipped,
    dead_letter_without_a_group
);

fn stop(units: Vec<u32>) -> Envelope<Command> {
    Envelope::new(
        MatchId::new("m1").unwrap(),
        Source::Player(PlayerId(1)),
        Command::Stop(Stop {
            units: units.into_iter().map(UnitId).collect(),
        }),
    )
}

async fn garbage_is_dead_lettered_acked_and_skipped<B: Bus>(cx: &Ctx<B>) {
    let keys = Keys::new(cx.prefix.clone());
    let s = keys.cmd(&MatchId::new("m1").unwrap());
    cx.bus
        .create_group(&s, "engine", StreamId::ZERO)
        .await
        .unwrap();

    // 0xc1 is never valid msgpack.
    let garbage = vec![0xc1, 0xff, 0x00, b'x', 0x93];
    let bad_id = cx
        .bus
        .append(&s, IdSpec::Auto, &garbage, None)
        .await
        .unwrap();
    let mut too_new = stop(vec![1]);
    too_new.v = SCHEMA_VERSION + 1;
    let too_new_bytes = encode(&too_new).unwrap();
    let new_id = cx
        .bus
        .append(&s, IdSpec::Auto, &too_new_bytes, None)
        .await
        .unwrap();
    let good = stop(vec![4, 9]);
    let good_id = cx
        .bus
        .append(&s, IdSpec::Auto, &encode(&good).unwrap(), None)
        .await
        .unwrap();

    let entries = cx
        .bus
        .read_group(&s, "engine", "e1", 10, None)
        .await
        .unwrap();
    assert_eq!(entries.len(), 3);
    let mut decoded = Vec::new();
    for e in &entries {
        let got =
            decode_or_dead_letter::<Command, _>(&cx.bus, &keys, &s, Some(("engine", "e1")), e)
                .await
                .unwrap();
        decoded.push(got.map(|env| (e.id, env)));
    }
    assert!(decoded[0].is_none() && decoded[1].is_none());
    assert_eq!(decoded[2], Some((good_id, good)));

    // Both bad entries are in the DLQ, in order, with everything needed to inspect them.
    let dlq = cx
        .bus
        .range(&keys.dlq(), StreamId::ZERO, StreamId::MAX, 10)
        .await
        .unwrap();
    assert_eq!(dlq.len(), 2);
    let letters: Vec<_> = dlq
        .iter()
        .map(|e| decode_dead_letter(&e.payload).expect("a dead letter"))
        .collect();
    assert_eq!(letters[0].source_stream, s);
    assert_eq!(letters[0].entry_id, bad_id.to_string());
    assert_eq!(letters[0].consumer, "e1");
    assert_eq!(letters[0].raw, garbage);
    assert!(
        letters[0].reason.contains("msgpack"),
        "{}",
        letters[0].reason
    );
    assert!(letters[0].at_ms > 0);
    assert_eq!(letters[1].entry_id, new_id.to_string());
    assert_eq!(letters[1].raw, too_new_bytes);
    assert!(letters[1].reason.contains("newer"), "{}", letters[1].reason);

    // The bad entries were acknowledged; only the good one waits for its consumer.
    let pending = cx.bus.pending(&s, "engine", 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![good_id]
    );
    cx.bus.ack(&s, "engine", &[good_id]).await.unwrap();
    assert!(cx.bus.pending(&s, "engine", 10).await.unwrap().is_empty());
}

async fn dead_letter_without_a_group<B: Bus>(cx: &Ctx<B>) {
    // Tailing readers (gateways, replay) have no group: dead-letter, nothing to ack.
    let keys = Keys::new(cx.prefix.clone());
    let s = keys.tick(&MatchId::new("m1").unwrap());
    let id = cx
        .bus
        .append(&s, IdSpec::Auto, b"\x00junk", None)
        .await
        .unwrap();
    let entries = cx
        .bus
        .read_after(&s, StreamId::ZERO, 10, None)
        .await
        .unwrap();
    let got = decode_or_dead_letter::<Command, _>(&cx.bus, &keys, &s, None, &entries[0])
        .await
        .unwrap();
    assert!(got.is_none());
    let dlq = cx.bus.rev_range(&keys.dlq(), 1).await.unwrap();
    let letter = decode_dead_letter(&dlq[0].payload).unwrap();
    assert_eq!(
        (letter.entry_id, letter.consumer),
        (id.to_string(), String::new())
    );
}

/// An entry of a generated stream: valid command bytes or arbitrary bytes.
fn entry() -> impl Strategy<Value = (bool, Vec<u8>)> {
    prop_oneof![
        proptest::collection::vec(any::<u32>(), 0..4)
            .prop_map(|units| (true, encode(&stop(units)).unwrap())),
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| (false, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever is in the stream, the consumer never panics, every entry is either
    /// decoded or dead-lettered with its raw bytes, and nothing stays pending.
    #[test]
    fn every_entry_is_decoded_or_dead_lettered(entries in proptest::collection::vec(entry(), 1..8)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let bus = MemoryBus::new();
            let keys = Keys::new("p");
            let s = keys.cmd(&MatchId::new("m1").unwrap());
            bus.create_group(&s, "g", StreamId::ZERO).await.unwrap();
            for (_, bytes) in &entries {
                bus.append(&s, IdSpec::Auto, bytes, None).await.unwrap();
            }
            let read = bus.read_group(&s, "g", "c", 100, None).await.unwrap();
            let mut dead = Vec::new();
            for (e, (valid, bytes)) in read.iter().zip(&entries) {
                match decode_or_dead_letter::<Command, _>(&bus, &keys, &s, Some(("g", "c")), e)
                    .await
                    .unwrap()
                {
                    Some(_) => {
                        bus.ack(&s, "g", &[e.id]).await.unwrap();
                    }
                    None => {
                        assert!(!valid, "a valid entry was dead-lettered");
                        dead.push(bytes.clone());
                    }
                }
            }
            let dlq = bus.range(&keys.dlq(), StreamId::ZERO, StreamId::MAX, 100).await.unwrap();
            let raws: Vec<Vec<u8>> = dlq
                .iter()
                .map(|e| decode_dead_letter(&e.payload).unwrap().raw)
                .collect();
            assert_eq!(raws, dead);
            assert!(bus.pending(&s, "g", 100).await.unwrap().is_empty());
        });
    }
}
