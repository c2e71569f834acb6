//! Test-only nondeterminism (feature `fault-injection`, never enabled by default): a real
//! engine bug that a desync audit (`replay-tool verify`) must catch, switched on at run time.
//!
//! The bug, [`Fault::HashSetUnitOrder`]: a unit list (a move's selection) is deduplicated
//! through a `HashSet` and iterated in the set's order instead of `UnitId` order. The
//! leader of a group move and the formation slot each unit gets then depend on the
//! hasher's keys, which std draws at random per process; two runs of the same log
//! disagree from the first multi-unit move whose order differs.
//!
//! The switch is off unless a test calls [`set`] or the process starts with
//! `CNIT_ENGINE_FAULT=hash-set-unit-order[:SEED]` (a fixed SEED makes the order
//! reproducible; without it the keys are random, like std's). Release binaries are built
//! without the feature, so neither the switch nor the bug is in them.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use events::UnitId;

/// The faults the engine can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Unit lists iterated in a hash set's order; the hasher's seed.
    HashSetUnitOrder { seed: u64 },
}

/// Environment variable read once, when no test has called [`set`].
pub const ENV: &str = "CNIT_ENGINE_FAULT";

/// 0: unset (read the environment), 1: off, 2: hash-set order with [`SEED`].
static MODE: AtomicU64 = AtomicU64::new(0);
static SEED: AtomicU64 = AtomicU64::new(0);
static FROM_ENV: OnceLock<Option<Fault>> = OnceLock::new();

/// Switches a fault on (or every fault off) for the whole process.
pub fn set(fault: Option<Fault>) {
    match fault {
        None => MODE.store(1, Ordering::SeqCst),
        Some(Fault::HashSetUnitOrder { seed }) => {
            SEED.store(seed, Ordering::SeqCst);
            MODE.store(2, Ordering::SeqCst);
        }
    }
}

/// The fault in force, if any.
pub fn active() -> Option<Fault> {
    match MODE.load(Ordering::SeqCst) {
        1 => None,
        2 => Some(Fault::HashSetUnitOrder {
            seed: SEED.load(Ordering::SeqCst),
        }),
        _ => *FROM_ENV.get_or_init(|| parse(std::env::var(ENV).ok().as_deref())),
    }
}

/// Parses the environment variable's value (`None`, empty or unknown: off).
pub fn parse(v: Option<&str>) -> Option<Fault> {
    let v = v?.trim();
    let (name, seed) = match v.split_once(':') {
        Some((n, s)) => (n, s.trim().parse::<u64>().ok()),
        None => (v, None),
    };
    if name != "hash-set-unit-order" {
        return None;
    }
    let seed = seed.unwrap_or_else(|| {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(0u8)
    });
    Some(Fault::HashSetUnitOrder { seed })
}

/// The ids deduplicated in a seeded hash set's iteration order, when the fault is on.
pub fn unit_order(ids: &[UnitId]) -> Option<Vec<UnitId>> {
    let Some(Fault::HashSetUnitOrder { seed }) = active() else {
        return None;
    };
    let mut set: HashSet<UnitId, xxhash_rust::xxh3::Xxh3Builder> =
        HashSet::with_hasher(xxhash_rust::xxh3::Xxh3Builder::new().with_seed(seed));
    set.extend(ids.iter().copied());
    Some(set.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_names_the_fault_and_its_seed() {
        assert_eq!(parse(None), None);
        assert_eq!(parse(Some("")), None);
        assert_eq!(parse(Some("something-else:3")), None);
        assert_eq!(
            parse(Some("hash-set-unit-order:42")),
            Some(Fault::HashSetUnitOrder { seed: 42 })
        );
        assert!(matches!(
            parse(Some("hash-set-unit-order")),
            Some(Fault::HashSetUnitOrder { .. })
        ));
    }
}
