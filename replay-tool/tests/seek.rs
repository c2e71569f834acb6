//! Seeking and playback: the state at any tick equals the log's, from recorded snapshots
//! or the seeker's own index, and a keyframe plus deltas equals a later keyframe.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::{record, rules, Options};
use events::{EntityView, UnitId, ViewFrame};
use replay_tool::progress::NoProgress;
use replay_tool::{EconomyRun, EngineRun, EngineSeeker, Machine, Playback, Seeker};

#[test]
fn seeks_land_on_the_recorded_hash() {
    // The live snap stream keeps only the last few snapshots.
    let (rec, _) = record(
        "seek",
        &Options {
            ticks: 500,
            snapshot_every: 200,
            snap_maxlen: Some(2),
            ..Options::default()
        },
    );
    let rec = Arc::new(rec);
    let mut s = EngineSeeker::new(rec.clone(), rules()).with_interval(64);
    assert_eq!(s.indexed(), 1, "one engine snapshot survives the cap");
    for t in [0, 1, 63, 64, 130, 250, 399, 400, 401, 499] {
        let m = s.at(t).expect("seek");
        assert_eq!(m.next_tick(), t + 1);
        assert_eq!(
            Some(m.hash()),
            EngineRun::recorded_hash(&rec.log, t),
            "tick {t}"
        );
    }
    s.index_all(&NoProgress).expect("index");
    assert!(s.indexed() >= 7);
    assert_eq!(s.mismatch(), None);
    let m = s.at(333).expect("seek");
    assert_eq!(Some(m.hash()), EngineRun::recorded_hash(&rec.log, 333));
    assert!(matches!(
        s.at(500),
        Err(replay_tool::Error::TickOutOfRange {
            asked: 500,
            last: 499
        })
    ));

    let mut e = Seeker::<EconomyRun>::new(rec.clone(), rules());
    for t in [0, 150, 450] {
        let m = e.at(t).expect("seek");
        assert_eq!(
            Some(m.hash()),
            EconomyRun::recorded_hash(&rec.log, t),
            "tick {t}"
        );
    }
}

/// Applies a delta (or a keyframe) to a client-side picture.
fn apply(
    world: &mut BTreeMap<UnitId, EntityView>,
    tib: &mut BTreeMap<(u16, u16), u8>,
    f: &ViewFrame,
) {
    if f.kind == events::ViewKind::Keyframe {
        world.clear();
        tib.clear();
    }
    for e in &f.entities {
        world.insert(e.id, e.clone());
    }
    for (id, _) in &f.removed {
        world.remove(id);
    }
    for t in &f.tiberium {
        if t.bails == 0 {
            tib.remove(&(t.cell.x, t.cell.y));
        } else {
            tib.insert((t.cell.x, t.cell.y), t.bails);
        }
    }
}

#[test]
fn playback_deltas_rebuild_later_keyframes() {
    let (rec, _) = record("play", &Options::default());
    let rec = Arc::new(rec);
    let mut p = Playback::new(rec.clone(), rules());
    let mut world = BTreeMap::new();
    let mut tib = BTreeMap::new();
    let k = p.seek(120).expect("seek");
    assert_eq!(k.tick, 120);
    apply(&mut world, &mut tib, &k);
    for _ in 0..80 {
        let f = p.next_frame().expect("frame").expect("not at the end");
        apply(&mut world, &mut tib, &f);
    }
    assert_eq!(p.position(), Some(200));
    let mut s = EngineSeeker::new(rec.clone(), rules());
    let k200 = s.keyframe(200).expect("keyframe");
    let mut w2 = BTreeMap::new();
    let mut t2 = BTreeMap::new();
    apply(&mut w2, &mut t2, &k200);
    assert_eq!(world, w2);
    assert_eq!(tib, t2);
    // Back to the start, then to the end.
    assert_eq!(p.seek(0).expect("seek").tick, 0);
    let last = rec.log.last_tick().expect("ticks");
    p.seek(last).expect("seek");
    assert!(p.next_frame().expect("frame").is_none());
}

/// Seeks while another thread builds the shared index land on the recorded hash; the
/// index ends up complete, and a cancelled build stops early.
#[test]
fn seeks_during_a_background_index_build_land_on_the_recorded_hash() {
    let (rec, _) = record(
        "seek-bg",
        &Options {
            ticks: 900,
            snapshot_every: 200,
            snap_maxlen: Some(2),
            ..Options::default()
        },
    );
    let rec = Arc::new(rec);
    let last = rec.log.last_tick().expect("ticks");
    let mut p = Playback::new(rec.clone(), rules());
    let before = p.seeker().widest_gap();
    assert!(before > 600, "only the last snapshot is held: {before}");
    let mut indexer = p.indexer().with_interval(p.seeker().interval());
    let handle = indexer.cancel_handle();
    let bg = std::thread::spawn(move || indexer.index_all(&NoProgress));
    for t in [last, 650, 10, 333, 899.min(last), 450] {
        let k = p.seek(t).expect("seek");
        assert_eq!(k.tick, t);
        let m = p.seeker().at(t).expect("seek");
        assert_eq!(
            Some(m.hash()),
            EngineRun::recorded_hash(&rec.log, t),
            "tick {t}"
        );
    }
    bg.join().expect("indexer thread").expect("index built");
    assert!(!handle.running());
    let every = p.seeker().interval();
    let held: Vec<u64> = p.seeker().snapshots().iter().map(|(t, _)| *t).collect();
    for b in (1..=last / every).map(|k| k * every) {
        assert!(held.contains(&b), "boundary {b} indexed: {held:?}");
    }
    assert_eq!(p.seeker().mismatch(), None);
    assert!(
        p.seeker().widest_gap() <= every,
        "{}",
        p.seeker().widest_gap()
    );

    // A build cancelled while it runs (from its first progress report) stops at once,
    // before the end, and clears its running mark.
    let mut p2 = Playback::new(rec.clone(), rules());
    let mut idx2 = p2.indexer().with_interval(1);
    let h2 = idx2.cancel_handle();
    let held_before = h2.indexed();
    let cancel = CancelOnFirstReport {
        handle: h2.clone(),
        seen: Mutex::new(None),
    };
    idx2.index_all(&cancel).expect("stops cleanly");
    let (running, indexed_at_cancel) = cancel
        .seen
        .lock()
        .expect("lock")
        .expect("a progress report came while the build ran");
    assert!(running, "the build was running when cancelled");
    assert!(
        indexed_at_cancel > held_before,
        "the build had indexed states when cancelled"
    );
    assert_eq!(
        h2.indexed(),
        indexed_at_cancel,
        "no state indexed after the cancel"
    );
    assert!(
        (h2.indexed() as u64) < last,
        "cancelled before indexing every tick"
    );
    assert!(!h2.running());
    // A seek on the cancelled index (its replay closed) stops instead of re-running.
    assert!(matches!(
        p2.seek(last / 2),
        Err(replay_tool::Error::Cancelled)
    ));
}

/// Cancels the index build it reports on at its first report, noting whether the build
/// was running then and how many states it held.
struct CancelOnFirstReport {
    handle: replay_tool::seek::IndexCancel,
    seen: Mutex<Option<(bool, usize)>>,
}

impl replay_tool::progress::Progress for CancelOnFirstReport {
    fn advance(&self, _task: &str, n: u64) {
        let mut seen = self.seen.lock().expect("lock");
        if seen.is_none() && n > 0 {
            *seen = Some((self.handle.running(), self.handle.indexed()));
            self.handle.cancel();
        }
    }
}

/// The engine's seek stream serves first seeks; a seek state that does not restore to
/// the log's hash is dropped and the seek re-runs from an earlier state instead.
#[test]
fn seek_stream_states_are_used_and_checked() {
    use events::keys::SEEK_STATE_EVERY;
    let (rec, _) = record(
        "seek-stream",
        &Options {
            ticks: SEEK_STATE_EVERY + 60,
            snapshot_every: 200,
            snap_maxlen: Some(2),
            ..Options::default()
        },
    );
    assert_eq!(
        rec.log.seek.len(),
        1,
        "one seek state at tick {SEEK_STATE_EVERY}"
    );
    assert_eq!(rec.log.seek[0].tick, SEEK_STATE_EVERY);
    let target = SEEK_STATE_EVERY + 30;
    // Files and buses keep the seek stream byte for byte.
    let path = common::temp_path("seek-stream.cnitreplay");
    rec.to_file(&path, true).expect("write");
    let back = replay_tool::Recording::from_file(&path).expect("read");
    std::fs::remove_file(&path).ok();
    assert_eq!(back.streams.seek, rec.streams.seek);
    let bus = events::MemoryBus::new();
    let keys = events::Keys::new("t");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let loaded = rt.block_on(async {
        replay_tool::bus::import(&bus, &keys, &rec, &Default::default())
            .await
            .expect("import");
        replay_tool::bus::load(&bus, &keys, &rec.match_id)
            .await
            .expect("load")
    });
    assert_eq!(loaded.streams.seek, rec.streams.seek);
    let rec = Arc::new(rec);
    let mut s = EngineSeeker::new(rec.clone(), rules());
    assert!(s.snapshots().iter().any(|(t, _)| *t == SEEK_STATE_EVERY));
    let m = s.at(target).expect("seek");
    assert_eq!(Some(m.hash()), EngineRun::recorded_hash(&rec.log, target));

    // The same state, claimed to be two ticks later: it restores, but not to the hash
    // the log has for that tick, so it is not used.
    let mut bad = (*rec).clone();
    bad.log.seek[0].tick = SEEK_STATE_EVERY + 2;
    let bad = Arc::new(bad);
    let mut s = EngineSeeker::new(bad.clone(), rules());
    let m = s.at(target).expect("seek");
    assert_eq!(Some(m.hash()), EngineRun::recorded_hash(&bad.log, target));
    assert!(!s
        .snapshots()
        .iter()
        .any(|(t, _)| *t == SEEK_STATE_EVERY + 2));
}
