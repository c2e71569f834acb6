//! The army mix: the difficulty's weights, shifted towards the units whose warheads do
//! most against the armour of the enemy units the AI has met (more rocket soldiers and
//! tanks against vehicles, more riflemen against infantry).

use events::{Armor, UnitKind};

use super::Ai;

/// Enemy units not seen for this many seconds no longer count towards the enemy's mix.
const MET_MEMORY_S: u64 = 240;

impl Ai {
    /// The enemy army's armour as the AI knows it: the cost of each armour class among
    /// the enemy combat units met recently (harvesters left out).
    pub fn enemy_armor(&self, tick: u64) -> [(Armor, u64); 3] {
        let hz = u64::from(self.rules.tick_hz.max(1));
        let mut by = [(Armor::None, 0u64), (Armor::Light, 0), (Armor::Heavy, 0)];
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

    /// `mix` with each weight scaled by the square of how well the kind's warhead does
    /// against the enemy's armour (percent, cost-weighted); unchanged while no enemy unit
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
                // Squared so the shift is felt, kept above zero so no kind vanishes.
                (*k, (u64::from(*w) * pct * pct / 100).max(1))
            })
            .collect()
    }
}
