//! Decoders of outside bytes never panic: map files and snapshots, random or mutated; a
//! snapshot that still decodes after mutation can be run without panicking.

mod common;

use common::{rules, setup};
use engine::map::Map;
use engine::Sim;
use proptest::prelude::*;

fn busy_snapshot() -> Vec<u8> {
    let mut sim = Sim::new(rules(), &setup(32, 2, 4)).unwrap();
    for _ in 0..30 {
        sim.step(&[]);
    }
    sim.snapshot()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Map::load(&bytes);
        let _ = Sim::restore(rules(), &bytes);
    }

    #[test]
    fn mutated_snapshots_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = busy_snapshot();
        for (i, v) in flips {
            let k = i.index(bytes.len());
            bytes[k] = v;
        }
        if let Ok(mut sim) = Sim::restore(rules(), &bytes) {
            for _ in 0..40 {
                sim.step(&[]);
            }
            let _ = sim.snapshot();
            let _ = sim.keyframe();
        }
    }

    #[test]
    fn mutated_maps_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let map = engine::generate(&events::MapSpec { size: 32, seed: 2 }, 2, &rules()).unwrap();
        let mut bytes = map.save();
        for (i, v) in flips {
            let k = i.index(bytes.len());
            bytes[k] = v;
        }
        if let Ok(m) = Map::load(&bytes) {
            let _ = m.hash();
            let _ = engine::path::find_path(&m, &[], events::Cell::new(0, 0), events::Cell::new(31, 31), m.len());
        }
    }
}

/// The number of integer leaves of a msgpack value.
fn count_ints(v: &rmpv::Value) -> usize {
    match v {
        rmpv::Value::Integer(_) => 1,
        rmpv::Value::Array(a) => a.iter().map(count_ints).sum(),
        rmpv::Value::Map(m) => m.iter().map(|(_, x)| count_ints(x)).sum(),
        _ => 0,
    }
}

/// Replaces the `n`th integer leaf (depth first); true once done.
fn set_int(v: &mut rmpv::Value, n: &mut usize, new: u64) -> bool {
    match v {
        rmpv::Value::Integer(_) => {
            if *n == 0 {
                *v = rmpv::Value::from(new);
                return true;
            }
            *n -= 1;
            false
        }
        rmpv::Value::Array(a) => a.iter_mut().any(|x| set_int(x, n, new)),
        rmpv::Value::Map(m) => m.iter_mut().any(|(_, x)| set_int(x, n, new)),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Well-formed snapshots with nonsense numbers (ids, positions, timers, paths, ...):
    /// restore validates what it must, and whatever it accepts runs without panicking.
    #[test]
    fn snapshots_with_nonsense_numbers_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop_oneof![
            Just(0u64), Just(1), Just(u64::from(u16::MAX)), Just(u64::from(u32::MAX)), any::<u64>(), 0u64..300,
        ]), 1..8)
    ) {
        let bytes = busy_snapshot();
        let mut value = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
        let leaves = count_ints(&value);
        for (i, n) in edits {
            let mut k = i.index(leaves);
            set_int(&mut value, &mut k, n);
        }
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &value).unwrap();
        if let Ok(mut sim) = Sim::restore(rules(), &out) {
            for _ in 0..40 {
                sim.step(&[]);
            }
            let _ = sim.snapshot();
            let _ = sim.keyframe();
        }
    }
}
