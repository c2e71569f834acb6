//! Scouting and raids: one fast unit goes to find the enemy base early, and small parties
//! of the units best against armour hit the enemy's harvesters and outlying buildings
//! before the attack waves, falling back when they meet a stronger force.

use events::cmd::{AttackMove, AttackTarget, MoveUnits};
use events::{Armor, BuildingKind, Cell, Command, EntityKind, Pos, UnitId, UnitKind};

use super::army::{cells2, dist2};
use super::Ai;
use crate::ledger::PlayerLedger;

/// Scouts sent at most while the enemy base is still unknown (the first may die).
const MAX_SCOUTS: u32 = 3;
/// Seconds between repeated orders to the scout or the raid (units get stuck or their
/// target dies).
const ORDER_S: u64 = 4;
/// A scout this close (cells) to an enemy start that shows no building marks it as
/// scouted.
const SCOUTED_CELLS: i32 = 4;
/// Enemies within this many cells of the raid's centre are weighed against it.
const DANGER_CELLS: i32 = 7;
/// A raid attacks a visible target within this many cells of its centre directly.
const STRIKE_CELLS: i32 = 9;
/// Seconds a raid waits at its goal seeing nothing worth attacking before it moves on to
/// the next known building.
const IDLE_S: u64 = 20;
/// A guard tower counts as this many units against a raid.
const TOWER_WEIGHT: u32 = 3;

impl Ai {
    /// Own units a role may take: combat units neither in the wave, nor scouting, nor
    /// raiding, in id order.
    pub(super) fn free_units(&self) -> Vec<(UnitId, Pos, UnitKind)> {
        self.know
            .army()
            .filter(|(id, _)| {
                !self.wave.contains(id) && !self.raid.contains(id) && self.scout != Some(*id)
            })
            .filter_map(|(id, s)| match s.kind {
                EntityKind::Unit(u) => Some((id, s.pos, u)),
                EntityKind::Building(_) => None,
            })
            .collect()
    }

    fn speed(&self, kind: UnitKind) -> u32 {
        self.rules.units.get(&kind).map_or(0, |u| u.speed_milli)
    }

    /// Damage per minute a unit kind does to heavy armour (harvesters, tanks).
    fn anti_armor(&self, kind: UnitKind) -> u64 {
        self.rules
            .units
            .get(&kind)
            .and_then(|u| u.weapon.as_ref())
            .map_or(0, |w| {
                let volley = u64::from(w.damage)
                    * u64::from(self.rules.warhead_pct(w.warhead, Armor::Heavy))
                    * u64::from(w.shots.max(1));
                volley * 600 / u64::from(w.reload_ms.max(1))
            })
    }

    /// Sends (and keeps sending) one fast unit to the enemy start until an enemy building
    /// has been seen; then it comes home.
    pub(super) fn scout(&mut self, tick: u64, ledger: &PlayerLedger, out: &mut Vec<Command>) {
        let Some(from_s) = self.profile.scout_s else {
            return;
        };
        if let Some(id) = self.scout {
            if !self.know.own.contains_key(&id) {
                self.scout = None;
            }
        }
        let known = self.enemy_base_known();
        if let Some(id) = self.scout {
            if known {
                // Found: back to the others (the rally brings it home).
                self.scout = None;
                if let Some(base) = self.base_center(ledger) {
                    out.push(Command::MoveUnits(MoveUnits {
                        units: vec![id],
                        to: base,
                    }));
                }
                return;
            }
            if let Some(pos) = self.know.own.get(&id).map(|s| s.pos) {
                if let Some(goal) = self.enemy_start(pos.cell()) {
                    if dist2(goal.center(), pos) <= cells2(SCOUTED_CELLS) {
                        self.scouted.insert(goal);
                        // On to the next start at once.
                        self.last_scout_order = 0;
                    }
                }
            }
            self.order_scout(tick, id, out);
            return;
        }
        // Nobody leaves while the base or a harvester is being defended.
        if known
            || self.defending.is_some()
            || self.scouts_sent >= MAX_SCOUTS
            || self.seconds(tick) < u64::from(from_s)
        {
            return;
        }
        let pick = self
            .free_units()
            .into_iter()
            .max_by_key(|(id, _, k)| (self.speed(*k), std::cmp::Reverse(*id)));
        if let Some((id, _, _)) = pick {
            self.scout = Some(id);
            self.scouts_sent += 1;
            self.last_scout_order = 0;
            self.order_scout(tick, id, out);
        }
    }

    fn order_scout(&mut self, tick: u64, id: UnitId, out: &mut Vec<Command>) {
        let hz = u64::from(self.rules.tick_hz.max(1));
        if self.last_scout_order != 0 && tick < self.last_scout_order + ORDER_S * hz {
            return;
        }
        let Some(pos) = self.know.own.get(&id).map(|s| s.pos) else {
            return;
        };
        let goal = self
            .enemy_start(pos.cell())
            .or_else(|| self.stalest_sector(pos.cell()));
        if let Some(to) = goal {
            self.last_scout_order = tick.max(1);
            // A move, not an attack-move: a scout looks, it does not stop to fight.
            out.push(Command::MoveUnits(MoveUnits {
                units: vec![id],
                to,
            }));
        }
    }

    /// Whether an enemy building has been seen and not found gone.
    pub(super) fn enemy_base_known(&self) -> bool {
        self.know
            .ghosts
            .values()
            .any(|g| matches!(g.kind, EntityKind::Building(_)))
    }

    /// Forms (when at least as many units stay home), leads and recalls the raiding
    /// party.
    pub(super) fn raid(&mut self, tick: u64, ledger: &PlayerLedger, out: &mut Vec<Command>) {
        let Some(p) = self.profile.raid else {
            return;
        };
        let hz = u64::from(self.rules.tick_hz.max(1));
        let own = &self.know.own;
        self.raid.retain(|id| own.contains_key(id));
        let secs = self.seconds(tick);
        if self.raid.is_empty() {
            if self.raid_since != 0 {
                // The last raid is over (all its units lost).
                self.raid_since = 0;
                self.raid_ended = tick;
            }
            let rested =
                self.raids_sent == 0 || tick >= self.raid_ended + u64::from(p.every_s) * hz;
            let free = self.free_units();
            if !rested
                || secs < u64::from(p.from_s)
                || secs >= u64::from(self.profile.all_in_s)
                || self.defending.is_some()
                || (free.len() as u32) < p.squad * 2
            {
                return;
            }
            let mut picks = free;
            picks.sort_by_key(|(id, _, k)| (std::cmp::Reverse(self.anti_armor(*k)), *id));
            self.raid
                .extend(picks.iter().take(p.squad as usize).map(|(id, _, _)| *id));
            self.raids_sent += 1;
            self.raid_since = tick.max(1);
            self.raid_goal = None;
            self.last_raid_order = 0;
        }
        let members: Vec<(UnitId, Pos)> = self
            .raid
            .iter()
            .filter_map(|id| self.know.own.get(id).map(|s| (*id, s.pos)))
            .collect();
        let n = members.len().max(1) as i64;
        let centre = Pos::new(
            (members.iter().map(|(_, p)| i64::from(p.x)).sum::<i64>() / n) as i32,
            (members.iter().map(|(_, p)| i64::from(p.y)).sum::<i64>() / n) as i32,
        );
        let units: Vec<UnitId> = members.iter().map(|(id, _)| *id).collect();

        // Fall back from a stronger force: the raid is for picking off the unguarded.
        let danger: u32 = self
            .know
            .enemies
            .values()
            .filter(|e| dist2(e.pos, centre) <= cells2(DANGER_CELLS))
            .map(|e| match e.kind {
                EntityKind::Unit(UnitKind::Harvester) => 0,
                EntityKind::Unit(_) => 1,
                EntityKind::Building(BuildingKind::GuardTower | BuildingKind::LaserTower) => {
                    TOWER_WEIGHT
                }
                EntityKind::Building(_) => 0,
            })
            .sum();
        if danger > units.len() as u32 {
            self.raid.clear();
            self.raid_since = 0;
            self.raid_ended = tick;
            if let Some(base) = self.base_center(ledger) {
                out.push(Command::MoveUnits(MoveUnits { units, to: base }));
            }
            return;
        }

        // A harvester first, then an undefended building, in sight and close.
        let target = self
            .know
            .enemies
            .iter()
            .filter(|(_, e)| dist2(e.pos, centre) <= cells2(STRIKE_CELLS))
            .filter_map(|(id, e)| {
                let rank = match e.kind {
                    EntityKind::Unit(UnitKind::Harvester) => 0,
                    EntityKind::Building(BuildingKind::PowerPlant) => 1,
                    EntityKind::Building(BuildingKind::Refinery) => 2,
                    EntityKind::Building(BuildingKind::GuardTower | BuildingKind::LaserTower) => {
                        return None
                    }
                    EntityKind::Building(_) => 3,
                    EntityKind::Unit(_) => return None,
                };
                Some((rank, dist2(e.pos, centre), *id))
            })
            .min();
        let fresh = self.last_raid_order == 0 || tick >= self.last_raid_order + ORDER_S * hz;
        if let Some((_, _, id)) = target {
            if fresh || self.raid_target != Some(id) {
                self.raid_target = Some(id);
                self.raid_idle_since = tick;
                self.last_raid_order = tick.max(1);
                out.push(Command::AttackTarget(AttackTarget { units, target: id }));
            }
            return;
        }
        self.raid_target = None;
        let arrived = self
            .raid_goal
            .is_some_and(|g| dist2(g.center(), centre) <= cells2(SCOUTED_CELLS));
        if self.raid_goal.is_none() || (arrived && tick >= self.raid_idle_since + IDLE_S * hz) {
            self.raid_goal = self.raid_goal_from(centre.cell());
            self.raid_idle_since = tick;
        } else if !arrived {
            self.raid_idle_since = tick;
        }
        if fresh {
            if let Some(to) = self.raid_goal {
                self.last_raid_order = tick.max(1);
                out.push(Command::AttackMove(AttackMove { units, to }));
            }
        }
    }

    /// Where a raid goes next: the known enemy building that is no tower, nearest to the
    /// tiberium the enemy harvests (the field nearest its start), away from the last goal;
    /// else that field; else the enemy start.
    fn raid_goal_from(&self, here: Cell) -> Option<Cell> {
        let start = self.enemy_start(here);
        let field = start.and_then(|s| {
            self.map.as_ref().and_then(|m| {
                m.fields
                    .iter()
                    .flat_map(|f| f.cells.iter().map(|(c, _)| *c))
                    .min_by_key(|c| (crate::fields::octile(*c, s), *c))
            })
        });
        let anchor = field.or(start)?;
        let last = self.raid_goal;
        let building = self
            .know
            .ghosts
            .values()
            .filter(|g| {
                matches!(g.kind, EntityKind::Building(b)
                    if b != BuildingKind::GuardTower && b != BuildingKind::LaserTower)
            })
            .map(|g| g.pos.cell())
            .filter(|c| Some(*c) != last)
            .min_by_key(|c| (crate::fields::octile(*c, anchor), *c));
        match (building, last) {
            (Some(b), _) => Some(b),
            (None, Some(l)) if l == anchor => start,
            _ => Some(anchor),
        }
    }
}
