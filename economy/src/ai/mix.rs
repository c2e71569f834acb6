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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use events::{
        Difficulty, EntityKind, EntityView, PlayerId, Pos, UnitId, UnitKind, ViewFrame, ViewKind,
    };
    use rules::Rules;

    use super::*;

    /// An AI for player 0 that has met `n` enemy units of `kind`.
    fn met(d: Difficulty, kind: UnitKind, n: u32) -> Ai {
        let mut ai = Ai::new(PlayerId(0), d, Arc::new(Rules::standard()), 1);
        ai.observe(&ViewFrame {
            tick: 1,
            kind: ViewKind::Keyframe,
            entities: (0..n)
                .map(|i| EntityView {
                    id: UnitId(100 + i),
                    owner: PlayerId(1),
                    kind: EntityKind::Unit(kind),
                    pos: Pos::new(1024 * i as i32, 0),
                    facing: 0,
                    hp: 10,
                    max_hp: 10,
                    cargo: 0,
                    visible_to: 0b11,
                })
                .collect(),
            removed: vec![],
            tiberium: vec![],
            winner: None,
            attacks: Vec::new(),
            deaths: Vec::new(),
        });
        ai
    }

    /// The share (percent) of `kind` in a weighted mix.
    fn share(mix: &[(UnitKind, u64)], kind: UnitKind) -> u64 {
        let total: u64 = mix.iter().map(|(_, w)| w).sum();
        mix.iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, w)| w * 100 / total)
    }

    #[test]
    fn more_riflemen_against_infantry_more_rockets_against_vehicles() {
        let mix = [(UnitKind::RocketSoldier, 2), (UnitKind::Rifleman, 1)];
        let none = met(Difficulty::Hard, UnitKind::Rifleman, 0);
        let base = share(&none.countered(10, &mix), UnitKind::Rifleman);
        let infantry = met(Difficulty::Hard, UnitKind::Rifleman, 6);
        let vs_infantry = share(&infantry.countered(10, &mix), UnitKind::Rifleman);
        let tanks = met(Difficulty::Hard, UnitKind::MediumTank, 3);
        let vs_tanks = share(&tanks.countered(10, &mix), UnitKind::Rifleman);
        assert!(
            vs_infantry > base && vs_tanks < base,
            "rifleman share: {base}% unseen, {vs_infantry}% vs infantry, {vs_tanks}% vs tanks"
        );
        // Long unseen units stop counting.
        assert_eq!(
            share(
                &tanks.countered(10 + 20 * MET_MEMORY_S + 20, &mix),
                UnitKind::Rifleman
            ),
            base
        );
        // An AI that does not counter keeps its mix.
        let easy = met(Difficulty::Easy, UnitKind::MediumTank, 3);
        assert_eq!(share(&easy.countered(10, &mix), UnitKind::Rifleman), base);
    }
}
