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
