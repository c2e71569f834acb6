//! Seeking and playback: the state at any tick equals the log's, from recorded snapshots
//! or the seeker's own index, and a keyframe plus deltas equals a later keyframe.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

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
