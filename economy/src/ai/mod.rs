//! The AI opponent: an ordinary command producer that plays one player slot from that
//! player's fogged view and its own ledger, at easy, normal or hard.
//!
//! It knows the map's terrain and start positions (the generator is public and
//! deterministic, as a map preview is in any RTS lobby), but never an entity its
//! player cannot see: [`Ai::observe`] reads only entities whose visibility mask has the
//! player's bit, and remembers enemy buildings as last seen until it sees they are gone.

mod army;
mod build;
pub mod knowledge;
mod mix;
pub mod placement;
pub mod profile;
mod raid;
pub mod upkeep;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use events::{BuildingKind, Cell, Command, Difficulty, PlayerId, UnitId, ViewFrame};
use rules::Rules;

use crate::ledger::PlayerLedger;
use crate::map_view::MapView;
pub use knowledge::Knowledge;
pub use profile::Profile;

/// A deterministic generator for the AI's small choices (splitmix64).
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// One AI player.
#[derive(Clone, Debug)]
pub struct Ai {
    player: PlayerId,
    difficulty: Difficulty,
    profile: &'static Profile,
    rules: Arc<Rules>,
    rng: Rng,
    map: Option<Arc<MapView>>,
    know: Knowledge,
    next_think: u64,
    /// The last placement sent: kind, cell, tick.
    placing: Option<(BuildingKind, Cell, u64)>,
    failed: BTreeSet<(BuildingKind, Cell)>,
    failed_since: u64,
    /// Units sent to attack.
    wave: BTreeSet<UnitId>,
    waves_sent: u32,
    last_wave_order: u64,
    wave_goal: Option<Cell>,
    /// Tick the current search goal was chosen.
    goal_since: u64,
    /// The start position of this player (found from its first base).
    own_start: Option<Cell>,
    /// Enemy start positions found empty.
    scouted: BTreeSet<Cell>,
    defending: Option<Cell>,
    last_defend_order: u64,
    /// Per exploration sector: 1 + the last tick an own entity stood in it (0: never).
    seen: Vec<u64>,
    last_rally: u64,
    /// The unit looking for the enemy base, scouts sent so far and the last order's tick.
    scout: Option<UnitId>,
    scouts_sent: u32,
    last_scout_order: u64,
    /// The raiding party, its current goal and target, and its timing (ticks; 0: none).
    raid: BTreeSet<UnitId>,
    raids_sent: u32,
    raid_goal: Option<Cell>,
    raid_target: Option<UnitId>,
    raid_since: u64,
    raid_ended: u64,
    raid_idle_since: u64,
    last_raid_order: u64,
    /// Buildings sold and not yet gone.
    sold: BTreeSet<UnitId>,
    /// Repairs asked for, with the tick of the order (asked again only after a while).
    repair_asked: BTreeMap<UnitId, u64>,
    /// Where home units gather.
    rally: Option<Cell>,
    /// Harvesters sent home from a stronger enemy, with the tick of the order.
    fleeing: BTreeMap<UnitId, u64>,
}

impl Ai {
    pub fn new(player: PlayerId, difficulty: Difficulty, rules: Arc<Rules>, seed: u64) -> Ai {
        Ai {
            player,
            difficulty,
            profile: Profile::of(difficulty),
            rules,
            rng: Rng(seed ^ (u64::from(player.0) << 56)),
            map: None,
            know: Knowledge::default(),
            next_think: 0,
            placing: None,
            failed: BTreeSet::new(),
            failed_since: 0,
            wave: BTreeSet::new(),
            waves_sent: 0,
            last_wave_order: 0,
            wave_goal: None,
            goal_since: 0,
            own_start: None,
            scouted: BTreeSet::new(),
            defending: None,
            last_defend_order: 0,
            seen: Vec::new(),
            last_rally: 0,
            scout: None,
            scouts_sent: 0,
            last_scout_order: 0,
            raid: BTreeSet::new(),
            raids_sent: 0,
            raid_goal: None,
            raid_target: None,
            raid_since: 0,
            raid_ended: 0,
            raid_idle_since: 0,
            last_raid_order: 0,
            sold: BTreeSet::new(),
            repair_asked: BTreeMap::new(),
            rally: None,
            fleeing: BTreeMap::new(),
        }
    }

    /// The AI with the match's terrain and start positions (for placement and scouting).
    pub fn with_map(mut self, map: Arc<MapView>) -> Ai {
        self.map = Some(map);
        self
    }

    pub fn player(&self) -> PlayerId {
        self.player
    }

    pub fn difficulty(&self) -> Difficulty {
        self.difficulty
    }

    /// A one-line summary for logs and tests: waves, wave size, goal, defence, scouting,
    /// raids.
    pub fn status(&self) -> String {
        format!(
            "waves={} wave={} goal={:?} defending={:?} ghosts={} enemies={} scouted={} \
             scouts={} raids={} raid={}",
            self.waves_sent,
            self.wave.len(),
            self.wave_goal,
            self.defending,
            self.know.ghosts.len(),
            self.know.enemies.len(),
            self.scouted.len(),
            self.scouts_sent,
            self.raids_sent,
            self.raid.len()
        )
    }

    /// Scouts sent and raids started so far.
    pub fn scouting(&self) -> (u32, u32) {
        (self.scouts_sent, self.raids_sent)
    }

    /// What the AI has seen so far.
    pub fn knowledge(&self) -> &Knowledge {
        &self.know
    }

    /// Folds one view frame, as this player sees it.
    pub fn observe(&mut self, frame: &ViewFrame) {
        self.know.observe(self.player, frame);
    }

    /// The commands to send at this tick (usually none: the AI thinks a few times a
    /// second, faster when harder).
    pub fn decide(&mut self, tick: u64, ledger: &PlayerLedger) -> Vec<Command> {
        if tick < self.next_think || ledger.defeated {
            return Vec::new();
        }
        self.next_think = tick + u64::from(self.rules.ticks(self.profile.think_ms).max(1));
        self.know.prune_ghosts(&self.rules);
        self.mark_seen(tick);
        let mut out = Vec::new();
        self.place_ready(tick, ledger, &mut out);
        let wants_building = self.queue_building(ledger, &mut out);
        self.queue_units(tick, ledger, wants_building, &mut out);
        self.upkeep(tick, ledger, &mut out);
        self.command_army(tick, ledger, &mut out);
        self.scout(tick, ledger, &mut out);
        self.raid(tick, ledger, &mut out);
        self.know.lost = 0;
        out
    }

    fn size(&self) -> u16 {
        self.map
            .as_ref()
            .map_or(self.rules.map.default_size, |m| m.size)
    }

    fn seconds(&self, tick: u64) -> u64 {
        tick / u64::from(self.rules.tick_hz.max(1))
    }

    /// The centre of the own base, from the ledger's buildings (yard first).
    fn base_center(&self, ledger: &PlayerLedger) -> Option<Cell> {
        let b = ledger
            .buildings
            .values()
            .find(|b| b.kind == BuildingKind::ConstructionYard)
            .or_else(|| ledger.buildings.values().next())?;
        let r = placement::Rect::of(&self.rules, b.kind, b.at);
        Some(Cell::new(
            (r.x + r.w / 2).max(0) as u16,
            (r.y + r.h / 2).max(0) as u16,
        ))
    }
}
