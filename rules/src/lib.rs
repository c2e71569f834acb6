//! The game's shared data, below both the engine and the economy: the balance rules (one
//! data file, `rules/rules.toml`, loaded by both, validated, and hashed: the hash goes
//! into `MatchStarted`), the map model, file format and seeded generator (`map`), and the
//! fixed-point helpers and match RNG the generator and the simulation share.
//!
//! Nothing here does I/O but [`load`], which reads a rules file for a service binary.

pub mod fixed;
pub mod map;
pub mod rng;

pub use map::{generate, Field, Map, MapError, Terrain};

use std::collections::BTreeMap;

use events::{Armor, BuildingKind, QueueKind, UnitKind, Warhead, CELL};
use serde::{Deserialize, Serialize};

/// The rules shipped with this build.
pub const DEFAULT_RULES_TOML: &str = include_str!("../rules.toml");

/// Why a rules file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rules file does not parse: {0}")]
    Parse(String),
    #[error("rules file is invalid: {0}")]
    Invalid(String),
}

/// A weapon of a unit or a defence building.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeaponRules {
    pub warhead: Warhead,
    pub damage: u32,
    /// Range in thousandths of a cell.
    pub range_milli: u32,
    pub reload_ms: u32,
    /// Shots per volley (the Heavy Tank fires two).
    pub shots: u32,
}

impl WeaponRules {
    /// Range in fixed-point units.
    pub fn range_fixed(&self) -> i64 {
        i64::from(self.range_milli) * i64::from(CELL) / 1000
    }
}

/// One unit kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitRules {
    pub cost: u32,
    pub hp: u32,
    pub armor: Armor,
    /// Cells per second × 1000.
    pub speed_milli: u32,
    /// Sight radius in cells.
    pub sight: u32,
    pub build_ms: u32,
    #[serde(default)]
    pub weapon: Option<WeaponRules>,
}

/// One building kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildingRules {
    pub cost: u32,
    pub hp: u32,
    /// Positive: output; negative: consumption.
    pub power: i32,
    pub width: u16,
    pub height: u16,
    pub build_ms: u32,
    pub sight: u32,
    #[serde(default)]
    pub requires: Option<BuildingKind>,
    #[serde(default)]
    pub produces: Option<QueueKind>,
    #[serde(default)]
    pub free_unit: Option<UnitKind>,
    /// Goes offline when its owner's power is low.
    #[serde(default)]
    pub needs_power: bool,
    #[serde(default)]
    pub weapon: Option<WeaponRules>,
}

/// Map generator settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapRules {
    pub default_size: u16,
    pub min_size: u16,
    pub max_size: u16,
    pub fields_per_player: u32,
    pub field_min_distance: u32,
    pub field_max_distance: u32,
    pub balance_tolerance_pct: u32,
    pub blue_field_pct: u32,
    pub scattered_fields: u32,
}

/// Tiberium value, regrowth and spread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TiberiumRules {
    pub max_bails: u8,
    pub green_bail_credits: u32,
    pub blue_bail_credits: u32,
    pub regrow_ms: u32,
    pub spread_ms: u32,
    pub spread_chance_one_in: u32,
}

/// Harvester capacity and speeds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HarvestRules {
    pub capacity_bails: u32,
    pub load_ms_per_bail: u32,
    pub unload_ms_per_bail: u32,
}

/// Starting conditions and economy-wide numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EconomyRules {
    pub starting_credits: u32,
    pub start_units: Vec<UnitKind>,
    pub sell_refund_pct: u32,
    pub min_production_speed_pct: u32,
    /// A building is placed within this many cells of an existing own building.
    pub placement_radius: u16,
    /// Most items of one kind a production queue holds (the current one included); the
    /// buildings queue always holds one, since a finished building waits to be placed.
    pub queue_limit: u32,
    /// A repairing building is healed one step every this many milliseconds ...
    pub repair_step_ms: u32,
    /// ... of this many health points ...
    pub repair_hp_per_step: u32,
    /// ... costing this many credits per 100 health points (rounded up per step).
    pub repair_credits_per_100_hp: u32,
}

/// Every balance number of the game.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub tick_hz: u32,
    pub map: MapRules,
    pub tiberium: TiberiumRules,
    pub harvest: HarvestRules,
    pub economy: EconomyRules,
    pub warheads: BTreeMap<Warhead, BTreeMap<Armor, u32>>,
    pub units: BTreeMap<UnitKind, UnitRules>,
    pub buildings: BTreeMap<BuildingKind, BuildingRules>,
}

impl Rules {
    /// Parses and validates a rules file.
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let rules: Rules = toml::from_str(text).map_err(|e| RulesError::Parse(e.to_string()))?;
        rules.validate()?;
        Ok(rules)
    }

    /// The rules shipped with this build.
    pub fn standard() -> Self {
        // The shipped file is checked by a unit test, so this cannot fail in a release.
        Self::from_toml(DEFAULT_RULES_TOML).expect("the shipped rules.toml is valid")
    }

    fn validate(&self) -> Result<(), RulesError> {
        let bad = |s: String| Err(RulesError::Invalid(s));
        if !(10..=30).contains(&self.tick_hz) {
            return bad(format!("tick_hz {} is outside 10-30", self.tick_hz));
        }
        for u in UnitKind::ALL {
            if !self.units.contains_key(&u) {
                return bad(format!("unit {} is missing", u.name()));
            }
        }
        for b in BuildingKind::ALL {
            let Some(r) = self.buildings.get(&b) else {
                return bad(format!("building {} is missing", b.name()));
            };
            if r.width == 0 || r.height == 0 || r.width > 4 || r.height > 4 {
                return bad(format!("building {} has a bad footprint", b.name()));
            }
        }
        for w in [
            Warhead::Bullet,
            Warhead::ArmorPiercing,
            Warhead::Missile,
            Warhead::Laser,
        ] {
            let Some(t) = self.warheads.get(&w) else {
                return bad(format!("warhead {w:?} is missing"));
            };
            for a in [Armor::None, Armor::Light, Armor::Heavy, Armor::Building] {
                if !t.contains_key(&a) {
                    return bad(format!("warhead {w:?} has no entry for armor {a:?}"));
                }
            }
        }
        if self.map.min_size < 32
            || self.map.max_size > 256
            || self.map.min_size > self.map.max_size
        {
            return bad("map sizes must lie within 32-256".into());
        }
        if self.tiberium.spread_chance_one_in == 0 || self.tiberium.max_bails == 0 {
            return bad("tiberium numbers must be positive".into());
        }
        let e = &self.economy;
        if e.queue_limit == 0 || e.repair_step_ms == 0 || e.repair_hp_per_step == 0 {
            return bad("queue_limit and the repair step must be positive".into());
        }
        Ok(())
    }

    /// A stable hash of the parsed rules (independent of the file's formatting).
    pub fn hash(&self) -> u64 {
        let bytes = rmp_serde::to_vec_named(self).unwrap_or_default();
        xxhash_rust::xxh3::xxh3_64(&bytes)
    }

    pub fn unit(&self, k: UnitKind) -> &UnitRules {
        &self.units[&k]
    }

    pub fn building(&self, k: BuildingKind) -> &BuildingRules {
        &self.buildings[&k]
    }

    /// Percent damage a warhead does against an armor class.
    pub fn warhead_pct(&self, w: Warhead, a: Armor) -> u32 {
        self.warheads
            .get(&w)
            .and_then(|t| t.get(&a))
            .copied()
            .unwrap_or(100)
    }

    /// Milliseconds as whole ticks (at least 1 for any positive duration).
    pub fn ticks(&self, ms: u32) -> u32 {
        if ms == 0 {
            return 0;
        }
        ((u64::from(ms) * u64::from(self.tick_hz) + 500) / 1000).max(1) as u32
    }

    /// Fixed-point distance per tick for a speed in cells/s × 1000.
    pub fn speed_per_tick(&self, speed_milli: u32) -> i32 {
        let per_tick =
            i64::from(speed_milli) * i64::from(CELL) / 1000 / i64::from(self.tick_hz.max(1));
        per_tick.max(1) as i32
    }
}

/// Why a rules file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadRulesError {
    #[error("reading {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Rules {
        path: std::path::PathBuf,
        source: RulesError,
    },
}

/// The rules from a file, or the shipped ones without one (the service binaries'
/// `--rules`).
pub fn load(path: Option<&std::path::Path>) -> Result<Rules, LoadRulesError> {
    let Some(path) = path else {
        return Ok(Rules::standard());
    };
    let text = std::fs::read_to_string(path).map_err(|source| LoadRulesError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Rules::from_toml(&text).map_err(|source| LoadRulesError::Rules {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_load_and_match_the_balance_sheet() {
        let r = Rules::standard();
        assert_eq!(r.tick_hz, 20);
        assert_eq!(r.unit(UnitKind::Rifleman).cost, 100);
        assert_eq!(
            r.unit(UnitKind::HeavyTank).weapon.as_ref().unwrap().shots,
            2
        );
        assert_eq!(
            r.building(BuildingKind::Refinery).free_unit,
            Some(UnitKind::Harvester)
        );
        assert_eq!(r.warhead_pct(Warhead::Bullet, Armor::Heavy), 25);
        assert_eq!(r.economy.starting_credits, 5000);
        assert_eq!(r.harvest.capacity_bails, 28);
    }

    #[test]
    fn hash_ignores_formatting_but_not_numbers() {
        let a = Rules::standard();
        let spaced = DEFAULT_RULES_TOML.replace(" = ", "   =   ");
        assert_eq!(Rules::from_toml(&spaced).unwrap().hash(), a.hash());
        let changed =
            DEFAULT_RULES_TOML.replace("starting_credits = 5000", "starting_credits = 5001");
        assert_ne!(Rules::from_toml(&changed).unwrap().hash(), a.hash());
    }

    #[test]
    fn invalid_rules_are_refused() {
        let bad = DEFAULT_RULES_TOML.replace("tick_hz = 20", "tick_hz = 99");
        assert!(matches!(
            Rules::from_toml(&bad),
            Err(RulesError::Invalid(_))
        ));
        assert!(matches!(
            Rules::from_toml("nonsense ="),
            Err(RulesError::Parse(_))
        ));
    }

    #[test]
    fn time_and_speed_conversions() {
        let r = Rules::standard();
        assert_eq!(r.ticks(500), 10);
        assert_eq!(r.ticks(100), 2);
        assert_eq!(r.ticks(30_000), 600);
        assert_eq!(r.speed_per_tick(1000), 51);
    }
}
