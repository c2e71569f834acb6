//! Power: output and consumption of a player's buildings, and what low power does to
//! production speed.

use events::BuildingKind;
use rules::Rules;
use serde::{Deserialize, Serialize};

/// A player's power balance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Power {
    pub output: i32,
    pub consumption: i32,
}

impl Power {
    /// Sums the rules' power numbers of the given buildings.
    pub fn of(rules: &Rules, buildings: impl IntoIterator<Item = BuildingKind>) -> Power {
        let mut p = Power::default();
        for k in buildings {
            let v = rules.buildings.get(&k).map_or(0, |b| b.power);
            if v >= 0 {
                p.output = p.output.saturating_add(v);
            } else {
                p.consumption = p.consumption.saturating_add(v.saturating_neg());
            }
        }
        p
    }

    /// Consumption exceeds output: production slows and power-hungry defences go offline.
    pub fn is_low(&self) -> bool {
        self.consumption > self.output
    }

    /// Production speed in percent: output/consumption when low, never below the rules'
    /// floor, 100 otherwise.
    pub fn speed_pct(&self, rules: &Rules) -> u32 {
        if !self.is_low() {
            return 100;
        }
        let floor = rules.economy.min_production_speed_pct.clamp(1, 100);
        let ratio = i64::from(self.output.max(0)) * 100 / i64::from(self.consumption.max(1));
        (ratio.clamp(0, 100) as u32).max(floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BuildingKind::*;

    #[test]
    fn balance_and_speed() {
        let r = Rules::standard();
        let pp = r.building(PowerPlant).power;
        let refinery = -r.building(Refinery).power;
        let p = Power::of(&r, [ConstructionYard, PowerPlant, Refinery]);
        assert_eq!(p.output, pp);
        assert_eq!(p.consumption, refinery);
        assert!(!p.is_low());
        assert_eq!(p.speed_pct(&r), 100);

        let laser = -r.building(LaserTower).power;
        let p = Power::of(&r, [PowerPlant, LaserTower]);
        assert!(p.is_low());
        let expected = (i64::from(pp) * 100 / i64::from(laser)) as u32;
        assert_eq!(
            p.speed_pct(&r),
            expected.max(r.economy.min_production_speed_pct)
        );

        let p = Power::of(&r, [LaserTower]);
        assert_eq!(p.speed_pct(&r), r.economy.min_production_speed_pct);
    }
}
