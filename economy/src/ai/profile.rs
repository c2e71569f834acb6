//! How each difficulty plays: tempo, economy size, army mix and attack timing. These are
//! AI tuning knobs, not balance numbers: the game's numbers stay in the rules file.

use events::{BuildingKind, Difficulty, UnitKind};

/// One difficulty's choices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Milliseconds between decisions (a slower AI reacts and spends later).
    pub think_ms: u32,
    /// Buildings wanted, in order; the first one short of its count is built next, which
    /// also rebuilds whatever was lost.
    pub base: &'static [(BuildingKind, u32)],
    /// Harvesters wanted (the free one of each refinery included).
    pub harvesters: u32,
    /// Spare power kept above consumption, in the rules' power units, as a fraction of
    /// one power plant's output (percent).
    pub power_margin_pct: i32,
    /// Infantry and vehicle mixes: (kind, weight).
    pub infantry: &'static [(UnitKind, u32)],
    pub vehicles: &'static [(UnitKind, u32)],
    /// No attack before this many seconds.
    pub first_wave_s: u32,
    /// Units in the first wave, and how many more each later wave brings.
    pub wave_size: u32,
    pub wave_growth: u32,
    /// From this many seconds on every unit goes as soon as it is built.
    pub all_in_s: u32,
    /// Enemies within this many cells of a building count as an attack on the base.
    pub defend_radius: u16,
    /// Credits kept back from army production while a building is in production: the
    /// base (refineries, factories) comes first.
    pub building_reserve: u32,
    /// Combat units the AI keeps at most (an easy AI stops building at this size).
    pub max_army: u32,
    /// From this many seconds on one fast unit looks for the enemy base (`None`: never
    /// scouts, it learns where the enemy is when its waves get there).
    pub scout_s: Option<u32>,
    /// Small raids on the enemy's harvesters and outlying buildings before the waves.
    pub raid: Option<Raid>,
    /// Home units within this many cells of a harvester under attack go to help it
    /// (0: harvesters fend for themselves).
    pub guard_harvesters_cells: u16,
    /// Sells buildings about to be destroyed, and repairs damaged ones once the fighting
    /// around them is over.
    pub upkeep: bool,
    /// Weights the army mix towards what beats the enemy units it has met.
    pub counters: bool,
    /// A wave falls back when the enemies around it are worth more than this share of it
    /// (percent; `None`: waves fight to the last unit).
    pub retreat_pct: Option<u32>,
}

/// A raiding party's timing and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raid {
    /// No raid before this many seconds.
    pub from_s: u32,
    /// Units per raid.
    pub squad: u32,
    /// Seconds between the end of one raid and the next.
    pub every_s: u32,
}

use BuildingKind::*;
use UnitKind::*;

const EASY: Profile = Profile {
    think_ms: 2000,
    base: &[
        (PowerPlant, 1),
        (Barracks, 1),
        (Refinery, 1),
        (PowerPlant, 2),
        (WarFactory, 1),
    ],
    harvesters: 1,
    power_margin_pct: 0,
    infantry: &[(Rifleman, 3), (RocketSoldier, 1)],
    vehicles: &[(LightTank, 1)],
    first_wave_s: 600,
    wave_size: 6,
    wave_growth: 2,
    all_in_s: 1500,
    defend_radius: 8,
    building_reserve: 0,
    max_army: 10,
    scout_s: None,
    raid: None,
    guard_harvesters_cells: 0,
    upkeep: false,
    counters: false,
    retreat_pct: None,
};

const NORMAL: Profile = Profile {
    think_ms: 1000,
    base: &[
        (PowerPlant, 1),
        (Barracks, 1),
        (Refinery, 1),
        (PowerPlant, 2),
        (WarFactory, 1),
        (PowerPlant, 3),
        (Refinery, 2),
        (GuardTower, 2),
    ],
    harvesters: 3,
    power_margin_pct: 20,
    infantry: &[(Rifleman, 2), (RocketSoldier, 2)],
    vehicles: &[(LightTank, 2), (MediumTank, 2)],
    first_wave_s: 360,
    wave_size: 8,
    wave_growth: 3,
    all_in_s: 1200,
    defend_radius: 10,
    building_reserve: 600,
    max_army: 30,
    scout_s: Some(120),
    raid: None,
    guard_harvesters_cells: 12,
    upkeep: true,
    counters: false,
    retreat_pct: None,
};

const HARD: Profile = Profile {
    think_ms: 500,
    base: &[
        (PowerPlant, 1),
        (Refinery, 1),
        (Barracks, 1),
        (PowerPlant, 2),
        (Refinery, 2),
        (WarFactory, 1),
        (PowerPlant, 3),
        (GuardTower, 2),
        (PowerPlant, 4),
        (WarFactory, 2),
        (PowerPlant, 5),
    ],
    harvesters: 5,
    power_margin_pct: 30,
    infantry: &[(RocketSoldier, 2), (Rifleman, 1)],
    vehicles: &[(MediumTank, 3), (LightTank, 1), (HeavyTank, 1)],
    first_wave_s: 420,
    wave_size: 12,
    wave_growth: 4,
    all_in_s: 900,
    defend_radius: 12,
    building_reserve: 800,
    max_army: 80,
    scout_s: Some(0),
    raid: Some(Raid {
        from_s: 100,
        squad: 2,
        every_s: 60,
    }),
    guard_harvesters_cells: 20,
    upkeep: true,
    counters: true,
    retreat_pct: Some(150),
};

impl Profile {
    pub fn of(d: Difficulty) -> &'static Profile {
        match d {
            Difficulty::Easy => &EASY,
            Difficulty::Normal => &NORMAL,
            Difficulty::Hard => &HARD,
        }
    }
}
