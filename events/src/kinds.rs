//! Names of the things the rules file gives numbers to: unit, building and warhead kinds.

use serde::{Deserialize, Serialize};

/// Every mobile unit kind. Numbers for each live in the rules data file, never in code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    Rifleman,
    RocketSoldier,
    ReconBike,
    LightTank,
    MediumTank,
    HeavyTank,
    Harvester,
}

impl UnitKind {
    pub const ALL: [UnitKind; 7] = [
        UnitKind::Rifleman,
        UnitKind::RocketSoldier,
        UnitKind::ReconBike,
        UnitKind::LightTank,
        UnitKind::MediumTank,
        UnitKind::HeavyTank,
        UnitKind::Harvester,
    ];

    /// Infantry are trained at a Barracks, everything else comes from a War Factory
    /// (or with a Refinery, for the free Harvester).
    pub fn is_infantry(self) -> bool {
        matches!(self, UnitKind::Rifleman | UnitKind::RocketSoldier)
    }

    /// The stable name used on the wire and in the rules file.
    pub fn name(self) -> &'static str {
        match self {
            UnitKind::Rifleman => "rifleman",
            UnitKind::RocketSoldier => "rocket_soldier",
            UnitKind::ReconBike => "recon_bike",
            UnitKind::LightTank => "light_tank",
            UnitKind::MediumTank => "medium_tank",
            UnitKind::HeavyTank => "heavy_tank",
            UnitKind::Harvester => "harvester",
        }
    }
}

/// Every building kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildingKind {
    ConstructionYard,
    PowerPlant,
    Refinery,
    Barracks,
    WarFactory,
    GuardTower,
    LaserTower,
}

impl BuildingKind {
    pub const ALL: [BuildingKind; 7] = [
        BuildingKind::ConstructionYard,
        BuildingKind::PowerPlant,
        BuildingKind::Refinery,
        BuildingKind::Barracks,
        BuildingKind::WarFactory,
        BuildingKind::GuardTower,
        BuildingKind::LaserTower,
    ];

    /// The stable name used on the wire and in the rules file.
    pub fn name(self) -> &'static str {
        match self {
            BuildingKind::ConstructionYard => "construction_yard",
            BuildingKind::PowerPlant => "power_plant",
            BuildingKind::Refinery => "refinery",
            BuildingKind::Barracks => "barracks",
            BuildingKind::WarFactory => "war_factory",
            BuildingKind::GuardTower => "guard_tower",
            BuildingKind::LaserTower => "laser_tower",
        }
    }
}

/// A unit or a building: what an entity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Unit(UnitKind),
    Building(BuildingKind),
}

/// Damage classes of the warhead table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Warhead {
    Bullet,
    ArmorPiercing,
    Missile,
    Laser,
}

/// Armor classes of the warhead table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Armor {
    None,
    Light,
    Heavy,
    Building,
}

/// The three production queues of a player.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    Buildings,
    Infantry,
    Vehicles,
}

impl QueueKind {
    pub const ALL: [QueueKind; 3] = [
        QueueKind::Buildings,
        QueueKind::Infantry,
        QueueKind::Vehicles,
    ];

    /// The name on the wire and in tools (as serialized).
    pub fn name(self) -> &'static str {
        match self {
            QueueKind::Buildings => "buildings",
            QueueKind::Infantry => "infantry",
            QueueKind::Vehicles => "vehicles",
        }
    }
}

impl std::fmt::Display for QueueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for QueueKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        from_name(&QueueKind::ALL, QueueKind::name, "queue", s)
    }
}

/// Something a production queue can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    Unit(UnitKind),
    Building(BuildingKind),
}

impl Item {
    /// The queue this item is built in.
    pub fn queue(self) -> QueueKind {
        match self {
            Item::Building(_) => QueueKind::Buildings,
            Item::Unit(u) if u.is_infantry() => QueueKind::Infantry,
            Item::Unit(_) => QueueKind::Vehicles,
        }
    }
}

/// AI opponent strength.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Difficulty {
    Easy,
    Normal,
    Hard,
}

impl Difficulty {
    pub const ALL: [Difficulty; 3] = [Difficulty::Easy, Difficulty::Normal, Difficulty::Hard];

    /// The name on the wire and in tools (as serialized).
    pub fn name(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Normal => "normal",
            Difficulty::Hard => "hard",
        }
    }
}

impl std::fmt::Display for Difficulty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Difficulty {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, UnknownName> {
        from_name(&Difficulty::ALL, Difficulty::name, "difficulty", s)
    }
}

/// A name that is none of a kind's names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?} (one of: {known})")]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub known: String,
}

fn from_name<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    what: &'static str,
    s: &str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|k| name(*k) == s)
        .ok_or_else(|| UnknownName {
            what,
            given: s.to_string(),
            known: all.iter().map(|k| name(*k)).collect::<Vec<_>>().join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_match_serde() {
        for d in Difficulty::ALL {
            assert_eq!(d.name().parse::<Difficulty>(), Ok(d));
            let named = rmp_serde::to_vec(d.name()).expect("encodes");
            assert_eq!(rmp_serde::from_slice::<Difficulty>(&named).ok(), Some(d));
        }
        for q in QueueKind::ALL {
            assert_eq!(q.name().parse::<QueueKind>(), Ok(q));
            let named = rmp_serde::to_vec(q.name()).expect("encodes");
            assert_eq!(rmp_serde::from_slice::<QueueKind>(&named).ok(), Some(q));
        }
        let e = "brutal".parse::<Difficulty>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown difficulty \"brutal\" (one of: easy, normal, hard)"
        );
    }
}
