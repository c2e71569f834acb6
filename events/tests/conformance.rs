//! The Bus conformance suite: every body is generic over `B: Bus` and runs against both
//! `MemoryBus` and `RedisBus` (a throwaway redis-server, or `REDIS_URL`), so the two
//! stay interchangeable.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Ctx, BLOCK, WAKE_BOUND};
use events::bus::RawField;
use events::{Append, Bus, BusError, IdSpec, MemoryBus, RedisBus, StreamId};

/// Appending an entry of arbitrary fields, as a foreign producer (`redis-cli XADD`) would.
trait ForeignProducer: Bus {
    async fn append_fields(&self, stream: &str, fields: &[RawField]) -> StreamId;
}

impl ForeignProducer for MemoryBus {
    async fn append_fields(&self, stream: &str, fields: &[RawField]) -> StreamId {
        MemoryBus::append_fields(self, stream, IdSpec::Auto, fields).unwrap()
    }
}

impl ForeignProducer for RedisBus {
    async fn append_fields(&self, stream: &str, fields: &[RawField]) -> StreamId {
        RedisBus::append_fields(self, stream, IdSpec::Auto, fields)
            .await
            .unwrap()
    }
}

fn field(name: &str, value: &[u8]) -> RawField {
    (name.as_bytes().to_vec(), value.to_vec())
}

bus_tests!(
    auto_ids_increase_and_range_returns_in_order,
    range_bounds_count_and_rev_range,
    explicit_ids_are_fenced,
    fencing_survives_trim,
    stale_writer_of_the_same_tick_is_refused,
    append_batch_in_order,
    append_batch_stops_at_the_fenced_entry,
    one_delivery_per_group_across_consumers,
    concurrent_consumers_share_without_duplicates,
    every_group_sees_everything,
    group_start_and_recreate,
    pending_and_claim_idle,
    claim_idle_drops_trimmed_entries,
    claim_idle_fills_count_past_busy_entries,
    ack_removes_from_pending,
    touch_keeps_a_lease_and_reveals_a_takeover,
    release_hands_over_at_once,
    trim_is_approximate_but_bounded,
    concurrent_producers,
    blocking_read_after_wakes_on_append,
    blocking_read_group_wakes_on_append,
    blocking_reads_time_out_empty,
    len_last_id_keys_delete,
    missing_group_is_no_group,
    foreign_entries_keep_all_their_fields,
    an_entry_without_the_payload_field_is_dead_lettered_with_its_fields,
);

/// Idle time the claim tests wait for; they sleep longer than this, and assume two
/// consecutive calls are never this far apart.
const IDLE: Duration = Duration::from_millis(250);

fn payload(i: usize) -> Vec<u8> {
    format!("p{i}").into_bytes()
}

async fn fill<B: Bus>(bus: &B, stream: &str, n: usize) -> Vec<StreamId> {
    let items = (0..n)
        .map(|i| Append {
            stream: stream.to_string(),
            id: IdSpec::Auto,
            payload: payload(i),
            maxlen: None,
        })
        .collect();
    bus.append_batch(items).await.unwrap()
}

fn assert_fenced(r: Result<StreamId, BusError>, stream: &str, id: StreamId, last: StreamId) {
    match r {
        Err(BusError::Fenced {
            stream: s,
            id: i,
            last: l,
        }) => {
            assert_eq!(s, stream);
            assert_eq!(i, id);
            assert_eq!(l, last);
        }
        other => panic!("expected Fenced for {id} (last {last}), got {other:?}"),
    }
}

async fn auto_ids_increase_and_range_returns_in_order<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("order");
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(
            cx.bus
                .append(&s, IdSpec::Auto, &payload(i), None)
                .await
                .unwrap(),
        );
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let got = cx
        .bus
        .range(&s, StreamId::ZERO, StreamId::MAX, 1000)
        .await
        .unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.payload, payload(i));
    }
    // The other client sees the same log.
    let got2 = cx
        .other
        .range(&s, StreamId::ZERO, StreamId::MAX, 1000)
        .await
        .unwrap();
    assert_eq!(got, got2);
}

async fn range_bounds_count_and_rev_range<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("range");
    let ids = fill(&cx.bus, &s, 10).await;
    let mid = cx.bus.range(&s, ids[2], ids[5], 100).await.unwrap();
    assert_eq!(mid.iter().map(|e| e.id).collect::<Vec<_>>(), ids[2..=5]);
    let capped = cx.bus.range(&s, ids[2], StreamId::MAX, 3).await.unwrap();
    assert_eq!(capped.iter().map(|e| e.id).collect::<Vec<_>>(), ids[2..5]);
    assert!(cx
        .bus
        .range(&s, ids[5], ids[2], 100)
        .await
        .unwrap()
        .is_empty());
    let rev = cx.bus.rev_range(&s, 3).await.unwrap();
    assert_eq!(
        rev.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[9], ids[8], ids[7]]
    );
    assert_eq!(rev[0].payload, payload(9));
    assert!(cx
        .bus
        .range(&cx.key("none"), StreamId::ZERO, StreamId::MAX, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(cx
        .bus
        .rev_range(&cx.key("none"), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(cx
        .bus
        .read_after(&cx.key("none"), StreamId::ZERO, 10, None)
        .await
        .unwrap()
        .is_empty());
    let after = cx.bus.read_after(&s, ids[6], 2, None).await.unwrap();
    assert_eq!(after.iter().map(|e| e.id).collect::<Vec<_>>(), ids[7..9]);
}

async fn explicit_ids_are_fenced<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("tick");
    for n in 0..5 {
        let id = StreamId::for_tick(n);
        assert_eq!(
            cx.bus
                .append(&s, IdSpec::Explicit(id), b"t", None)
                .await
                .unwrap(),
            id
        );
    }
    let last = StreamId::for_tick(4);
    for n in [4, 3, 0] {
        let id = StreamId::for_tick(n);
        assert_fenced(
            cx.bus.append(&s, IdSpec::Explicit(id), b"x", None).await,
            &s,
            id,
            last,
        );
    }
    // `0-0` is never a valid id, even on an empty stream.
    let empty = cx.key("empty");
    let r = cx
        .bus
        .append(&empty, IdSpec::Explicit(StreamId::ZERO), b"x", None)
        .await;
    assert_fenced(r, &empty, StreamId::ZERO, StreamId::ZERO);
    // The refused appends wrote nothing; the next tick still goes in.
    assert_eq!(cx.bus.len(&s).await.unwrap(), 5);
    let next = StreamId::for_tick(5);
    assert_eq!(
        cx.bus
            .append(&s, IdSpec::Explicit(next), b"t", None)
            .await
            .unwrap(),
        next
    );
    // An auto id after explicit tick ids is still after them.
    let auto = cx.bus.append(&s, IdSpec::Auto, b"a", None).await.unwrap();
    assert!(auto > next);
}

async fn fencing_survives_trim<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("tick");
    let items = (1..=300)
        .map(|n| Append {
            stream: s.clone(),
            id: IdSpec::Explicit(StreamId::for_tick(n)),
            payload: payload(n as usize),
            maxlen: None,
        })
        .collect();
    cx.bus.append_batch(items).await.unwrap();
    let removed = cx.bus.trim(&s, 10).await.unwrap();
    assert!(removed > 0);
    let last = StreamId::for_tick(300);
    // Trimmed-away ids and the last id are both refused: the stream remembers its top.
    for n in [1, 150, 300] {
        let id = StreamId::for_tick(n);
        assert_fenced(
            cx.bus.append(&s, IdSpec::Explicit(id), b"x", None).await,
            &s,
            id,
            last,
        );
    }
    let id = StreamId::for_tick(301);
    assert_eq!(
        cx.bus
            .append(&s, IdSpec::Explicit(id), b"t", None)
            .await
            .unwrap(),
        id
    );
}

async fn stale_writer_of_the_same_tick_is_refused<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("tick");
    // The old owner committed ticks 1..=7, then stalled; the new owner took over and
    // committed ticks 8..=9 from its own connection.
    for n in 1..=7 {
        cx.bus
            .append(&s, IdSpec::Explicit(StreamId::for_tick(n)), b"old", None)
            .await
            .unwrap();
    }
    for n in 8..=9 {
        cx.other
            .append(&s, IdSpec::Explicit(StreamId::for_tick(n)), b"new", None)
            .await
            .unwrap();
    }
    // The stale owner wakes up and tries to commit tick 8 (and 9): refused.
    for n in [8, 9] {
        let id = StreamId::for_tick(n);
        let r = cx.bus.append(&s, IdSpec::Explicit(id), b"old", None).await;
        assert_fenced(r, &s, id, StreamId::for_tick(9));
    }
    let top = cx.bus.rev_range(&s, 2).await.unwrap();
    assert!(top.iter().all(|e| e.payload == b"new"));
    // Two racing writers of the same tick: exactly one wins.
    let id = StreamId::for_tick(10);
    let (a, b) = tokio::join!(
        cx.bus.append(&s, IdSpec::Explicit(id), b"a", None),
        cx.other.append(&s, IdSpec::Explicit(id), b"b", None),
    );
    assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
    assert!(matches!(a.err().or(b.err()), Some(BusError::Fenced { .. })));
    assert_eq!(cx.bus.len(&s).await.unwrap(), 10);
}

async fn append_batch_in_order<B: Bus>(cx: &Ctx<B>) {
    let (a, b) = (cx.key("a"), cx.key("b"));
    assert!(cx.bus.append_batch(Vec::new()).await.unwrap().is_empty());
    let items = vec![
        Append {
            stream: a.clone(),
            id: IdSpec::Explicit(StreamId::for_tick(1)),
            payload: b"tick1".to_vec(),
            maxlen: None,
        },
        Append {
            stream: b.clone(),
            id: IdSpec::Auto,
            payload: b"view1".to_vec(),
            maxlen: Some(100),
        },
        Append {
            stream: a.clone(),
            id: IdSpec::Explicit(StreamId::for_tick(2)),
            payload: b"tick2".to_vec(),
            maxlen: None,
        },
        Append {
            stream: b.clone(),
            id: IdSpec::Auto,
            payload: b"view2".to_vec(),
            maxlen: Some(100),
        },
    ];
    let ids = cx.bus.append_batch(items).await.unwrap();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[0], StreamId::for_tick(1));
    assert_eq!(ids[2], StreamId::for_tick(2));
    assert!(ids[1] < ids[3]);
    let got_a = cx
        .bus
        .range(&a, StreamId::ZERO, StreamId::MAX, 10)
        .await
        .unwrap();
    assert_eq!(
        got_a
            .iter()
            .map(|e| e.payload.as_slice())
            .collect::<Vec<_>>(),
        vec![b"tick1".as_slice(), b"tick2"]
    );
    let got_b = cx
        .bus
        .range(&b, StreamId::ZERO, StreamId::MAX, 10)
        .await
        .unwrap();
    assert_eq!(
        got_b.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![ids[1], ids[3]]
    );
    // A batch's maxlen trims (approximately, so only bounds are checked).
    let many = (0..500)
        .map(|i| Append {
            stream: b.clone(),
            id: IdSpec::Auto,
            payload: payload(i),
            maxlen: Some(50),
        })
        .collect();
    cx.bus.append_batch(many).await.unwrap();
    let len = cx.bus.len(&b).await.unwrap();
    assert!((50..=502).contains(&len), "len {len}");
}

async fn append_batch_stops_at_the_fenced_entry<B: Bus>(cx: &Ctx<B>) {
    let (tick, view) = (cx.key("tick"), cx.key("view"));
    cx.other
        .append(
            &tick,
            IdSpec::Explicit(StreamId::for_tick(5)),
            b"new owner",
            None,
        )
        .await
        .unwrap();
    // A stale owner's commit: the tick is refused, and the view delta after it in the
    // same batch must not leak out.
    let items = vec![
        Append {
            stream: tick.clone(),
            id: IdSpec::Explicit(StreamId::for_tick(5)),
            payload: b"stale".to_vec(),
            maxlen: None,
        },
        Append {
            stream: view.clone(),
            id: IdSpec::Auto,
            payload: b"stale view".to_vec(),
            maxlen: Some(100),
        },
    ];
    match cx.bus.append_batch(items).await {
        Err(BusError::Fenced { stream, id, last }) => {
            assert_eq!(stream, tick);
            assert_eq!(id, StreamId::for_tick(5));
            assert_eq!(last, StreamId::for_tick(5));
        }
        other => panic!("expected Fenced, got {other:?}"),
    }
    assert_eq!(cx.bus.len(&tick).await.unwrap(), 1);
    assert_eq!(
        cx.bus.len(&view).await.unwrap(),
        0,
        "entry after the fence was written"
    );
    // The entries before the failure are kept.
    let items = vec![
        Append {
            stream: view.clone(),
            id: IdSpec::Auto,
            payload: b"before".to_vec(),
            maxlen: None,
        },
        Append {
            stream: tick.clone(),
            id: IdSpec::Explicit(StreamId::for_tick(3)),
            payload: b"stale".to_vec(),
            maxlen: None,
        },
        Append {
            stream: view.clone(),
            id: IdSpec::Auto,
            payload: b"after".to_vec(),
            maxlen: None,
        },
    ];
    let r = cx.bus.append_batch(items).await;
    assert!(
        matches!(r, Err(BusError::Fenced { id, .. }) if id == StreamId::for_tick(3)),
        "{r:?}"
    );
    let v = cx
        .bus
        .range(&view, StreamId::ZERO, StreamId::MAX, 10)
        .await
        .unwrap();
    assert_eq!(
        v.iter().map(|e| e.payload.as_slice()).collect::<Vec<_>>(),
        vec![b"before".as_slice()]
    );
}

async fn one_delivery_per_group_across_consumers<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("cmd");
    cx.bus.create_group(&s, "g", StreamId::ZERO).await.unwrap();
    let ids = fill(&cx.bus, &s, 20).await;
    let mut seen = Vec::new();
    let (mut got1, mut got2) = (0, 0);
    loop {
        let a = cx.bus.read_group(&s, "g", "c1", 3, None).await.unwrap();
        let b = cx.other.read_group(&s, "g", "c2", 3, None).await.unwrap();
        if a.is_empty() && b.is_empty() {
            break;
        }
        got1 += a.len();
        got2 += b.len();
        seen.extend(a.into_iter().chain(b).map(|e| e.id));
    }
    assert!(got1 > 0 && got2 > 0);
    seen.sort();
    assert_eq!(seen, ids, "each entry exactly once");
    let pending = cx.bus.pending(&s, "g", 100).await.unwrap();
    assert_eq!(pending.len(), 20);
    assert!(pending.iter().all(|p| p.deliveries == 1));
    assert_eq!(pending.iter().filter(|p| p.consumer == "c1").count(), got1);
}

async fn concurrent_consumers_share_without_duplicates<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("cmd");
    cx.bus.create_group(&s, "g", StreamId::ZERO).await.unwrap();
    let total = 300;
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for (c, bus) in [("c1", cx.bus.clone()), ("c2", cx.other.clone())] {
        let (s, done) = (s.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                // Read the flag first: an empty read that started after the producer
                // finished means everything was delivered.
                let finished = done.load(Ordering::SeqCst);
                let batch = bus
                    .read_group(&s, "g", c, 7, Some(Duration::from_millis(200)))
                    .await
                    .unwrap();
                if batch.is_empty() && finished {
                    return got;
                }
                got.extend(batch.into_iter().map(|e| e.id));
            }
        }));
    }
    let mut ids = Vec::new();
    for i in 0..total {
        ids.push(
            cx.bus
                .append(&s, IdSpec::Auto, &payload(i), None)
                .await
                .unwrap(),
        );
    }
    done.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await.unwrap());
    }
    all.sort();
    assert_eq!(all, ids);
}

async fn every_group_sees_everything<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("tick");
    cx.bus
        .create_group(&s, "engine", StreamId::ZERO)
        .await
        .unwrap();
    cx.bus
        .create_group(&s, "economy", StreamId::ZERO)
        .await
        .unwrap();
    let ids = fill(&cx.bus, &s, 12).await;
    for g in ["engine", "economy"] {
        let got = cx.bus.read_group(&s, g, "c", 100, None).await.unwrap();
        assert_eq!(
            got.iter().map(|e| e.id).collect::<Vec<_>>(),
            ids,
            "group {g}"
        );
        assert!(cx
            .bus
            .read_group(&s, g, "c", 100, None)
            .await
            .unwrap()
            .is_empty());
    }
}

async fn group_start_and_recreate<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("matches");
    let old = fill(&cx.bus, &s, 3).await;
    cx.bus.create_group(&s, "late", old[2]).await.unwrap();
    cx.bus.create_group(&s, "mid", old[0]).await.unwrap();
    let new = cx.bus.append(&s, IdSpec::Auto, b"new", None).await.unwrap();
    let late = cx.bus.read_group(&s, "late", "c", 10, None).await.unwrap();
    assert_eq!(late.iter().map(|e| e.id).collect::<Vec<_>>(), vec![new]);
    let mid = cx.bus.read_group(&s, "mid", "c", 10, None).await.unwrap();
    assert_eq!(
        mid.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![old[1], old[2], new]
    );
    // Creating an existing group is fine and does not rewind it.
    cx.bus
        .create_group(&s, "late", StreamId::ZERO)
        .await
        .unwrap();
    cx.other
        .create_group(&s, "late", StreamId::ZERO)
        .await
        .unwrap();
    assert!(cx
        .bus
        .read_group(&s, "late", "c", 10, None)
        .await
        .unwrap()
        .is_empty());
    // A group on a stream that does not exist yet creates the stream.
    let fresh = cx.key("fresh");
    cx.bus
        .create_group(&fresh, "g", StreamId::ZERO)
        .await
        .unwrap();
    assert!(cx
        .bus
        .read_group(&fresh, "g", "c", 10, None)
        .await
        .unwrap()
        .is_empty());
    let id = cx
        .bus
        .append(&fresh, IdSpec::Auto, b"x", None)
        .await
        .unwrap();
    let got = cx.bus.read_group(&fresh, "g", "c", 10, None).await.unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);
}

async fn pending_and_claim_idle<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("matches");
    cx.bus.create_group(&s, "g", StreamId::ZERO).await.unwrap();
    let ids = fill(&cx.bus, &s, 3).await;
    let got = cx.bus.read_group(&s, "g", "dead", 10, None).await.unwrap();
    assert_eq!(got.len(), 3);
    let pending = cx.bus.pending(&s, "g", 10).await.unwrap();
    assert_eq!(pending.iter().map(|p| p.id).collect::<Vec<_>>(), ids);
    assert!(pending
        .iter()
        .all(|p| p.consumer == "dead" && p.deliveries == 1));
    // Not before: nothing has been idle for a minute.
    let none = cx
        .bus
        .claim_idle(&s, "g", "alive", Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert!(none.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pending = cx.bus.pending(&s, "g", 10).await.unwrap();
    assert!(pending.iter().all(|p| p.idle >= IDLE), "{pending:?}");
    // After: the idle entries move to the new consumer, at most `count` of them.
    let claimed = cx
        .other
        .claim_idle(&s, "g", "alive", IDLE, 2)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|e| e.id).collect::<Vec<_>>(), ids[..2]);
    assert_eq!(claimed[0].payload, payload(0));
    let pending = cx.bus.pending(&s, "g", 10).await.unwrap();
    let by: Vec<(&str, u64)> = pending
        .iter()
        .map(|p| (p.consumer.as_str(), p.deliveries))
        .collect();
    assert_eq!(by, vec![("alive", 2), ("alive", 2), ("dead", 1)]);
    // A claim resets the idle time: an immediate second claim finds only the third.
    let again = cx.bus.claim_idle(&s, "g", "third", IDLE, 10).await.unwrap();
    assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[2]]);
}

async fn claim_idle_drops_trimmed_entries<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("cmd");
    cx.bus.create_group(&s, "g", StreamId::ZERO).await.unwrap();
    fill(&cx.bus, &s, 300).await;
    assert_eq!(
        cx.bus
            .read_group(&s, "g", "dead", 1000, None)
            .await
            .unwrap()
            .len(),
        300
    );
    cx.bus.trim(&s, 10).await.unwrap();
    let left = cx.bus.len(&s).await.unwrap() as usize;
    assert!(left < 300);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let claimed = cx
        .bus
        .claim_idle(&s, "g", "alive", Duration::from_millis(1), 1000)
        .await
        .unwrap();
    let present = cx
        .bus
        .range(&s, StreamId::ZERO, StreamId::MAX, 1000)
        .await
        .unwrap();
    assert_eq!(
        claimed, present,
        "claims exactly the entries still in the stream"
    );
    let pending = cx.bus.pending(&s, "g", 1000).await.unwrap();
    assert_eq!(
        pending.len(),
        left,
        "trimmed entries leave the pending list"
    );
    assert!(pending.iter().all(|p| p.consumer == "alive"));
}

async fn claim_idle_fills_count_past_busy_entries<B: Bus>(cx: &Ctx<B>) {
    // Many recently delivered entries in front of idle ones must not hide them.
    let s = cx.key("cmd");
    cx.bus.create_group(&s, "g", StreamId::ZERO).await.unwrap();
    let ids = fill(&cx.bus, &s, 100).await;
    cx.bus.read_group(&s, "g", "a", 100, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Re-claim the first 90 so they are fresh again; the last 10 stay idle.
    let fresh = cx
        .bus
        .claim_idle(&s, "g", "b", Duration::ZERO, 90)
        .await
        .unwrap();
    assert_eq!(fresh.len(), 90);
    let idle = cx.bus.claim_idle(&s, "g", "c", IDLE, 5).await.unwrap();
    assert_eq!(idle.iter().map(|e| e.id).collect::<Vec<_>>(), ids[90..95]);
}

async fn ack_removes_from_pending<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("cmd");
    cx.bus.create_group(&s, "g", StreamId::ZERO).await.unwrap();
    let ids = fill(&cx.bus, &s, 5).await;
    cx.bus.read_group(&s, "g", "c", 10, None).await.unwrap();
    assert_eq!(cx.bus.ack(&s, "g", &ids[..2]).await.unwrap(), 2);
    assert_eq!(
        cx.bus.ack(&s, "g", &ids[..2]).await.unwrap(),
        0,
        "double ack"
    );
    assert_eq!(cx.bus.ack(&s, "g", &[]).await.unwrap(), 0);
    assert_eq!(
        cx.bus.ack(&s, "g", &[StreamId::new(1, 1)]).await.unwrap(),
        0,
        "unknown id"
    );
    let pending = cx.bus.pending(&s, "g", 10).await.unwrap();
    assert_eq!(pending.iter().map(|p| p.id).collect::<Vec<_>>(), ids[2..]);
    assert_eq!(cx.other.ack(&s, "g", &ids[2..]).await.unwrap(), 3);
    assert!(cx.bus.pending(&s, "g", 10).await.unwrap().is_empty());
    // Acknowledged entries are never delivered again.
    assert!(cx
        .bus
        .claim_idle(&s, "g", "x", Duration::ZERO, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(cx.bus.ack(&s, "nogroup", &ids).await.unwrap(), 0);
}

async fn touch_keeps_a_lease_and_reveals_a_takeover<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("matches");
    cx.bus.create_group(&s, "g", StreamId::ZERO).await.unwrap();
    let ids = fill(&cx.bus, &s, 3).await;
    cx.bus.read_group(&s, "g", "a", 10, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // `a` keeps its first two leases alive; only the third can be taken over.
    let kept = cx.bus.touch(&s, "g", "a", &ids[..2]).await.unwrap();
    assert_eq!(kept, ids[..2]);
    let taken = cx.other.claim_idle(&s, "g", "b", IDLE, 10).await.unwrap();
    assert_eq!(taken.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[2]]);
    // `a` learns it lost the third, and touching does not steal it back.
    let kept = cx.bus.touch(&s, "g", "a", &[ids[0], ids[2]]).await.unwrap();
    assert_eq!(kept, vec![ids[0]]);
    let pending = cx.bus.pending(&s, "g", 10).await.unwrap();
    let owners: Vec<&str> = pending.iter().map(|p| p.consumer.as_str()).collect();
    assert_eq!(owners, vec!["a", "a", "b"]);
    // Touching does not count as a delivery.
    assert_eq!(pending[0].deliveries, 1);
    // Acknowledged or unknown ids are not owned.
    cx.bus.ack(&s, "g", &ids[..1]).await.unwrap();
    let kept = cx
        .bus
        .touch(&s, "g", "a", &[ids[0], StreamId::new(1, 1), ids[1]])
        .await
        .unwrap();
    assert_eq!(kept, vec![ids[1]]);
    assert!(cx.bus.touch(&s, "g", "a", &[]).await.unwrap().is_empty());
}

async fn release_hands_over_at_once<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("matches");
    cx.bus.create_group(&s, "g", StreamId::ZERO).await.unwrap();
    let ids = fill(&cx.bus, &s, 2).await;
    cx.bus.read_group(&s, "g", "a", 10, None).await.unwrap();
    cx.bus.release(&s, "g", "a", &ids[..1]).await.unwrap();
    let pending = cx.bus.pending(&s, "g", 10).await.unwrap();
    assert!(pending[0].idle >= Duration::from_secs(3600), "{pending:?}");
    assert!(pending[1].idle < Duration::from_secs(3600));
    // Another instance takes the released lease without waiting for a timeout.
    let taken = cx
        .other
        .claim_idle(&s, "g", "b", Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert_eq!(taken.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ids[0]]);
    // Releasing what one no longer owns changes nothing.
    cx.bus.release(&s, "g", "a", &ids[..1]).await.unwrap();
    assert!(cx
        .bus
        .claim_idle(&s, "g", "c", Duration::from_secs(60), 10)
        .await
        .unwrap()
        .is_empty());
    cx.bus.release(&s, "g", "a", &[]).await.unwrap();
}

async fn trim_is_approximate_but_bounded<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("view");
    fill(&cx.bus, &s, 1000).await;
    let removed = cx.bus.trim(&s, 300).await.unwrap();
    let len = cx.bus.len(&s).await.unwrap();
    assert!((300..=1000).contains(&len), "len {len}");
    assert_eq!(removed, 1000 - len);
    // The newest entries are the ones kept.
    let newest = cx.bus.rev_range(&s, 1).await.unwrap();
    assert_eq!(newest[0].payload, payload(999));
    // Capped appends keep the stream around the cap.
    for i in 0..300 {
        cx.bus
            .append(&s, IdSpec::Auto, &payload(i), Some(100))
            .await
            .unwrap();
    }
    let capped = cx.bus.len(&s).await.unwrap();
    assert!(capped >= 100 && capped < len + 300, "len {capped}");
    assert_eq!(cx.bus.trim(&cx.key("missing"), 10).await.unwrap(), 0);
}

async fn concurrent_producers<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("cmd");
    let (tasks, per_task) = (8, 200);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let bus = if t % 2 == 0 {
            cx.bus.clone()
        } else {
            cx.other.clone()
        };
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(per_task);
            for i in 0..per_task {
                let p = format!("{t}:{i}").into_bytes();
                ids.push(bus.append(&s, IdSpec::Auto, &p, None).await.unwrap());
            }
            ids
        }));
    }
    let mut all = BTreeSet::new();
    for h in handles {
        let ids = h.await.unwrap();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "one producer's ids increase"
        );
        all.extend(ids);
    }
    assert_eq!(all.len(), tasks * per_task, "ids are unique");
    let got = cx
        .bus
        .range(&s, StreamId::ZERO, StreamId::MAX, 10_000)
        .await
        .unwrap();
    assert_eq!(got.len(), tasks * per_task);
    assert!(got.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(got.iter().map(|e| e.id).collect::<BTreeSet<_>>(), all);
    // Each producer's entries are in the log in its own order.
    for t in 0..tasks {
        let mine: Vec<usize> = got
            .iter()
            .filter_map(|e| {
                let text = String::from_utf8(e.payload.clone()).unwrap();
                let (who, i) = text.split_once(':').unwrap();
                (who == t.to_string()).then(|| i.parse().unwrap())
            })
            .collect();
        assert_eq!(mine, (0..per_task).collect::<Vec<_>>());
    }
}

async fn blocking_read_after_wakes_on_append<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("view");
    let last = cx.bus.append(&s, IdSpec::Auto, b"old", None).await.unwrap();
    let writer = {
        let (bus, s) = (cx.other.clone(), s.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            bus.append(&s, IdSpec::Auto, b"new", None).await.unwrap()
        })
    };
    let t0 = Instant::now();
    let got = cx.bus.read_after(&s, last, 10, Some(BLOCK)).await.unwrap();
    let waited = t0.elapsed();
    let id = writer.await.unwrap();
    assert_eq!(got.len(), 1, "woke with the new entry");
    assert_eq!(
        (got[0].id, got[0].payload.as_slice()),
        (id, b"new".as_slice())
    );
    assert!(
        waited < WAKE_BOUND,
        "woke after {waited:?}, not on the append"
    );
    // Tailing a stream that does not exist yet also wakes on its first append.
    let fresh = cx.key("fresh");
    let writer = {
        let (bus, fresh) = (cx.other.clone(), fresh.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            bus.append(&fresh, IdSpec::Auto, b"first", None)
                .await
                .unwrap()
        })
    };
    let t0 = Instant::now();
    let got = cx
        .bus
        .read_after(&fresh, StreamId::ZERO, 10, Some(BLOCK))
        .await
        .unwrap();
    let waited = t0.elapsed();
    assert_eq!(
        got.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![writer.await.unwrap()]
    );
    assert!(waited < WAKE_BOUND, "woke after {waited:?}");
}

async fn blocking_read_group_wakes_on_append<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("cmd");
    cx.bus.create_group(&s, "g", StreamId::ZERO).await.unwrap();
    let writer = {
        let (bus, s) = (cx.other.clone(), s.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            bus.append(&s, IdSpec::Auto, b"cmd", None).await.unwrap()
        })
    };
    let t0 = Instant::now();
    let got = cx
        .bus
        .read_group(&s, "g", "c", 10, Some(BLOCK))
        .await
        .unwrap();
    let waited = t0.elapsed();
    let id = writer.await.unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);
    assert!(
        waited < WAKE_BOUND,
        "woke after {waited:?}, not on the append"
    );
    assert_eq!(cx.bus.pending(&s, "g", 10).await.unwrap().len(), 1);
}

async fn blocking_reads_time_out_empty<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("quiet");
    let last = cx.bus.append(&s, IdSpec::Auto, b"x", None).await.unwrap();
    cx.bus.create_group(&s, "g", last).await.unwrap();
    let short = Some(Duration::from_millis(100));
    assert!(cx
        .bus
        .read_after(&s, last, 10, short)
        .await
        .unwrap()
        .is_empty());
    assert!(cx
        .bus
        .read_group(&s, "g", "c", 10, short)
        .await
        .unwrap()
        .is_empty());
    // A zero block is a short wait, never "forever".
    let zero = Some(Duration::ZERO);
    assert!(cx
        .bus
        .read_after(&s, last, 10, zero)
        .await
        .unwrap()
        .is_empty());
    // Blocking reads see what is already there without waiting.
    let got = cx
        .bus
        .read_after(&s, StreamId::ZERO, 10, Some(BLOCK))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
}

async fn len_last_id_keys_delete<B: Bus>(cx: &Ctx<B>) {
    let (a, b, g) = (cx.key("a"), cx.key("b"), cx.key("g"));
    assert_eq!(cx.bus.len(&a).await.unwrap(), 0);
    assert_eq!(cx.bus.last_id(&a).await.unwrap(), None);
    assert!(cx.bus.keys(&cx.prefix).await.unwrap().is_empty());
    let ids = fill(&cx.bus, &a, 4).await;
    cx.bus
        .append(&b, IdSpec::Explicit(StreamId::for_tick(9)), b"t", None)
        .await
        .unwrap();
    cx.bus
        .create_group(&g, "grp", StreamId::ZERO)
        .await
        .unwrap();
    // A blocking read on a missing stream does not make it exist.
    cx.bus
        .read_after(
            &cx.key("ghost"),
            StreamId::ZERO,
            1,
            Some(Duration::from_millis(10)),
        )
        .await
        .unwrap();
    assert_eq!(cx.bus.len(&a).await.unwrap(), 4);
    assert_eq!(cx.bus.last_id(&a).await.unwrap(), Some(ids[3]));
    assert_eq!(
        cx.bus.last_id(&b).await.unwrap(),
        Some(StreamId::for_tick(9))
    );
    assert_eq!(
        cx.bus.keys(&cx.prefix).await.unwrap(),
        vec![a.clone(), b.clone(), g.clone()]
    );
    assert_eq!(
        cx.bus.keys(&format!("{}:a", cx.prefix)).await.unwrap(),
        vec![a.clone()]
    );
    assert!(cx
        .bus
        .keys(&format!("{}:zzz", cx.prefix))
        .await
        .unwrap()
        .is_empty());
    cx.bus
        .delete(&[a.clone(), g.clone(), cx.key("never")])
        .await
        .unwrap();
    cx.bus.delete(&[]).await.unwrap();
    assert_eq!(cx.bus.len(&a).await.unwrap(), 0);
    assert_eq!(cx.bus.last_id(&a).await.unwrap(), None);
    assert_eq!(cx.bus.keys(&cx.prefix).await.unwrap(), vec![b.clone()]);
    assert!(matches!(
        cx.bus.read_group(&g, "grp", "c", 1, None).await,
        Err(BusError::NoGroup { .. })
    ));
    // A deleted stream starts over: old ids are writable again.
    assert_eq!(
        cx.bus
            .append(&a, IdSpec::Explicit(StreamId::new(1, 1)), b"x", None)
            .await
            .unwrap(),
        StreamId::new(1, 1)
    );
}

async fn missing_group_is_no_group<B: Bus>(cx: &Ctx<B>) {
    let s = cx.key("cmd");
    let missing_stream = cx.key("missing");
    cx.bus.append(&s, IdSpec::Auto, b"x", None).await.unwrap();
    for stream in [&s, &missing_stream] {
        let expect = |r: BusError| match r {
            BusError::NoGroup { stream: st, group } => {
                assert_eq!(&st, stream);
                assert_eq!(group, "nope");
            }
            other => panic!("expected NoGroup, got {other:?}"),
        };
        expect(
            cx.bus
                .read_group(stream, "nope", "c", 1, None)
                .await
                .unwrap_err(),
        );
        expect(
            cx.bus
                .read_group(stream, "nope", "c", 1, Some(Duration::from_millis(100)))
                .await
                .unwrap_err(),
        );
        expect(cx.bus.pending(stream, "nope", 10).await.unwrap_err());
        expect(
            cx.bus
                .claim_idle(stream, "nope", "c", Duration::ZERO, 10)
                .await
                .unwrap_err(),
        );
        let id = [StreamId::new(1, 1)];
        expect(cx.bus.touch(stream, "nope", "c", &id).await.unwrap_err());
        expect(cx.bus.release(stream, "nope", "c", &id).await.unwrap_err());
    }
    assert!(!BusError::NoGroup {
        stream: s,
        group: "nope".into()
    }
    .is_transient());
}

async fn foreign_entries_keep_all_their_fields<B: ForeignProducer>(cx: &Ctx<B>) {
    let s = cx.key("cmd");
    cx.bus.create_group(&s, "g", StreamId::ZERO).await.unwrap();
    let ours = cx.bus.append(&s, IdSpec::Auto, b"env", None).await.unwrap();
    let without = vec![field("x", b"1"), field("y", b"\x00\xffbin")];
    let no_d = cx.bus.append_fields(&s, &without).await;
    let beside = vec![field("d", b"env2"), field("trace", b"abc")];
    let with_d = cx.bus.append_fields(&s, &beside).await;
    // Exactly our shape, written by someone else, is ours.
    let plain = cx.bus.append_fields(&s, &[field("d", b"env3")]).await;

    let check = |got: &[events::Entry]| {
        assert_eq!(
            got.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![ours, no_d, with_d, plain]
        );
        assert_eq!(got[0], events::Entry::new(ours, b"env".to_vec()));
        assert_eq!(got[1].payload, b"");
        assert_eq!(got[1].fields.as_deref(), Some(without.as_slice()));
        assert!(got[1].lacks_payload());
        assert_eq!(got[2].payload, b"env2");
        assert_eq!(got[2].fields.as_deref(), Some(beside.as_slice()));
        assert!(!got[2].lacks_payload());
        assert_eq!(got[3], events::Entry::new(plain, b"env3".to_vec()));
    };
    check(
        &cx.bus
            .range(&s, StreamId::ZERO, StreamId::MAX, 10)
            .await
            .unwrap(),
    );
    check(
        &cx.other
            .read_after(&s, StreamId::ZERO, 10, None)
            .await
            .unwrap(),
    );
    check(&cx.bus.read_group(&s, "g", "c1", 10, None).await.unwrap());
    tokio::time::sleep(IDLE).await;
    check(&cx.bus.claim_idle(&s, "g", "c2", IDLE, 10).await.unwrap());
    let mut rev = cx.bus.rev_range(&s, 10).await.unwrap();
    rev.reverse();
    check(&rev);
}

async fn an_entry_without_the_payload_field_is_dead_lettered_with_its_fields<B: ForeignProducer>(
    cx: &Ctx<B>,
) {
    use events::dlq::{decode_dead_letter, decode_or_dead_letter};
    let keys = events::Keys::new(cx.prefix.clone());
    let m = events::MatchId::new("m1").unwrap();
    let s = keys.cmd(&m);
    cx.bus
        .create_group(&s, "engine", StreamId::ZERO)
        .await
        .unwrap();
    let fields = vec![field("cmd", b"move 3 4"), field("player", b"\x01")];
    let id = cx.bus.append_fields(&s, &fields).await;
    let got = cx
        .bus
        .read_group(&s, "engine", "e1", 10, None)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let decoded = decode_or_dead_letter::<events::Command, _>(
        &cx.bus,
        &keys,
        &s,
        Some(("engine", "e1")),
        &got[0],
    )
    .await
    .unwrap();
    assert!(decoded.is_none());
    let dlq = cx
        .bus
        .range(&keys.dlq(), StreamId::ZERO, StreamId::MAX, 10)
        .await
        .unwrap();
    assert_eq!(dlq.len(), 1);
    let letter = decode_dead_letter(&dlq[0].payload).expect("a dead letter");
    assert_eq!(letter.entry_id, id.to_string());
    assert_eq!(letter.reason, "missing field d");
    assert!(letter.raw.is_empty());
    assert_eq!(
        letter
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect::<Vec<_>>(),
        fields
    );
    assert!(cx.bus.pending(&s, "engine", 10).await.unwrap().is_empty());
}
