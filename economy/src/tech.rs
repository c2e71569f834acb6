//! The tech tree: which owned buildings an item needs, taken from the rules file.

use std::collections::BTreeMap;

use events::{BuildingKind, Item, QueueKind};
use rules::Rules;

/// The building kind that makes a queue produce. The rules file names producers with
/// `produces`; the Construction Yard is the builder of buildings even though the sheet
/// gives it no `produces` line, so it is the fallback for the buildings queue.
pub fn producer(rules: &Rules, queue: QueueKind) -> Option<BuildingKind> {
    let named = rules
        .buildings
        .iter()
        .find(|(_, b)| b.produces == Some(queue))
        .map(|(k, _)| *k);
    match (named, queue) {
        (Some(k), _) => Some(k),
        (None, QueueKind::Buildings) => Some(BuildingKind::ConstructionYard),
        (None, _) => None,
    }
}

/// Whether the rules let anyone produce this item at all: the Construction Yard (no cost,
/// no build time) only comes with the start.
pub fn is_producible(rules: &Rules, item: Item) -> bool {
    match item {
        Item::Unit(u) => rules.units.get(&u).is_some_and(|r| r.build_ms > 0),
        Item::Building(b) => rules.buildings.get(&b).is_some_and(|r| r.build_ms > 0),
    }
}

/// The first prerequisite the player lacks for `item`, if any: the producer of the item's
/// queue, then (for buildings) the building the rules say it `requires`.
pub fn missing_prerequisite(
    rules: &Rules,
    owned: &BTreeMap<BuildingKind, u32>,
    item: Item,
) -> Option<BuildingKind> {
    let has = |k: BuildingKind| owned.get(&k).copied().unwrap_or(0) > 0;
    if let Some(p) = producer(rules, item.queue()) {
        if !has(p) {
            return Some(p);
        }
    }
    if let Item::Building(b) = item {
        if let Some(req) = rules.buildings.get(&b).and_then(|r| r.requires) {
            if !has(req) {
                return Some(req);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::UnitKind;

    fn owned(kinds: &[BuildingKind]) -> BTreeMap<BuildingKind, u32> {
        let mut m = BTreeMap::new();
        for k in kinds {
            *m.entry(*k).or_insert(0) += 1;
        }
        m
    }

    #[test]
    fn producers_come_from_the_rules() {
        let r = Rules::standard();
        assert_eq!(
            producer(&r, QueueKind::Buildings),
            Some(BuildingKind::ConstructionYard)
        );
        assert_eq!(
            producer(&r, QueueKind::Infantry),
            Some(BuildingKind::Barracks)
        );
        assert_eq!(
            producer(&r, QueueKind::Vehicles),
            Some(BuildingKind::WarFactory)
        );
    }

    #[test]
    fn prerequisites_follow_the_chain() {
        let r = Rules::standard();
        let cy = owned(&[BuildingKind::ConstructionYard]);
        assert_eq!(
            missing_prerequisite(&r, &cy, Item::Building(BuildingKind::PowerPlant)),
            None
        );
        assert_eq!(
            missing_prerequisite(&r, &cy, Item::Building(BuildingKind::Barracks)),
            Some(BuildingKind::PowerPlant)
        );
        assert_eq!(
            missing_prerequisite(&r, &cy, Item::Unit(UnitKind::Rifleman)),
            Some(BuildingKind::Barracks)
        );
        let none = owned(&[BuildingKind::PowerPlant]);
        assert_eq!(
            missing_prerequisite(&r, &none, Item::Building(BuildingKind::Barracks)),
            Some(BuildingKind::ConstructionYard)
        );
        assert!(!is_producible(
            &r,
            Item::Building(BuildingKind::ConstructionYard)
        ));
        assert!(is_producible(&r, Item::Unit(UnitKind::HeavyTank)));
    }
}
