//! The army mix: the difficulty's weights, shifted towards the units whose warheads do
//! most against the armour of the enemy units the AI has met (more rocket soldiers and
//! tanks against vehicles, more riflemen against infantry).

use events::{Armor, UnitKind};

use super::Ai;

/// Known enemy buildings count at this share of their cost (percent) in what the army
/// mix answers.
const BUILDING_SHARE_PCT: u64 = 50;
/// Enemy units not seen for this many seconds no longer count towards the enemy's mix.
const MET_MEMORY_S: u64 = 240;

impl Ai {
    /// What the army will have to fight, as the AI knows it: the cost of each armour
    /// class among the enemy combat units met recently (harvesters left out) and, at
    /// [`BUILDING_SHARE_PCT`] of their cost, the enemy buildings it knows of (the waves
    /// must bring them down too).
    pub fn enemy_armor(&self, tick: u64) -> [(Armor, u64); 4] {
        let hz = u64::from(self.rules.tick_hz.max(1));
        let mut by = [
            (Armor::None, 0u64),
            (Armor::Light, 0),
            (Armor::Heavy, 0),
            (Armor::Building, 0),
        ];
        by[3].1 = self
            .know
            .ghosts
            .values()
            .filter_map(|g| match g.kind {
                events::EntityKind::Building(b) => self.rules.buildings.get(&b),
                events::EntityKind::Unit(_) => None,
            })
            .map(|b| u64::from(b.cost) * BUILDING_SHARE_PCT / 100)
            .sum();
        for (kind, seen) in self.know.met.values() {
            if *kind == UnitKind::Harvester || seen + MET_MEMORY_S * hz < tick {
                continue;
            }
            let Some(u) = self.rules.units.get(kind) else {
                continue;
            };
            if let Some(slot) = by.iter_mut().find(|(a, _)| *a == u.armor) {
                slot.1 += u64::from(u.cost);
            }
        }
        by
    }

    /// `mix` with each weight scaled by how well the kind's warhead does against the
    /// enemy's armour (percent, cost-weighted); unchanged while no enemy unit
    /// has been met or when the difficulty does not counter.
    pub(super) fn countered(&self, tick: u64, mix: &[(UnitKind, u32)]) -> Vec<(UnitKind, u64)> {
        let armor = self.enemy_armor(tick);
        let total: u64 = armor.iter().map(|(_, c)| c).sum();
        if !self.profile.counters || total == 0 {
            return mix.iter().map(|(k, w)| (*k, u64::from(*w) * 100)).collect();
        }
        mix.iter()
            .map(|(k, w)| {
                let warhead = self
                    .rules
                    .units
                    .get(k)
                    .and_then(|u| u.weapon.as_ref())
                    .map(|w| w.warhead);
                let pct = warhead.map_or(0, |wh| {
                    armor
                        .iter()
                        .map(|(a, c)| u64::from(self.rules.warhead_pct(wh, *a)) * c)
                        .sum::<u64>()
                        / total
                });
                // Kept above zero so no kind vanishes.
                (*k, (u64::from(*w) * pct).max(1))
            })
            .collect()
    }
}
