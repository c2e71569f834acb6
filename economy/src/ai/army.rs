//! The AI's army: defend the base when enemies come close and the harvesters when they
//! are hit, gather at a rally point, and send attack waves that grow over time at the
//! enemy it knows of (or where it expects the enemy to be).

use events::cmd::{AttackMove, AttackTarget, MoveUnits, ReturnToRefinery};
use events::{Cell, Command, EntityKind, Pos, UnitId, CELL};

use super::Ai;
use crate::ledger::PlayerLedger;

/// Seconds between repeated orders to the attack wave (targets die, units get stuck).
const WAVE_ORDER_S: u64 = 5;
/// Seconds between repeated defence orders against the same intruder.
const DEFEND_ORDER_S: u64 = 3;
/// Seconds between rally orders to units at home.
const RALLY_S: u64 = 10;
/// A wave this close (cells) to a visible target building attacks it directly.
const CLOSE_CELLS: i32 = 8;
/// A wave this close (cells) to an enemy start and seeing no building there marks it
/// as scouted.
const SCOUTED_CELLS: i32 = 5;
/// A search goal not reached within this many seconds is given up.
const SEARCH_GOAL_S: u64 = 60;
/// Home units gather this many cells from the yard towards the enemy.
const RALLY_CELLS: i32 = 6;
/// Enemies within this many cells of a wave's unit are weighed against the wave.
const ENGAGE_CELLS: i32 = 7;
/// A tower counts as this many times its cost against a wave.
const TOWER_WORTH: u64 = 2;
/// A harvester hit within this many seconds is under attack.
const HARVESTER_HIT_S: u64 = 3;
/// Seconds between orders sending the same harvester home.
const FLEE_ORDER_S: u64 = 5;
/// Enemy combat units within this many cells of a harvester threaten it.
const HARVESTER_THREAT_CELLS: i32 = 5;

pub(super) fn dist2(a: Pos, b: Pos) -> i64 {
    let dx = i64::from(a.x - b.x);
    let dy = i64::from(a.y - b.y);
    dx * dx + dy * dy
}

pub(super) fn cells2(n: i32) -> i64 {
    let v = i64::from(n) * i64::from(CELL);
    v * v
}

impl Ai {
    /// The own start: the map start nearest to the first base seen (remembered, so a
    /// wave near the enemy's start does not mistake it for home).
    fn own_start(&mut self, base: Cell) -> Option<Cell> {
        if self.own_start.is_none() {
            self.own_start = self.map.as_ref().and_then(|m| {
                m.starts
                    .iter()
                    .min_by_key(|s| (crate::fields::octile(**s, base), **s))
                    .copied()
            });
            if self.own_start.is_none() {
                self.own_start = Some(base);
            }
        }
        self.own_start
    }

    /// The enemy start position nearest to `from` that is not yet found empty.
    pub(super) fn enemy_start(&self, from: Cell) -> Option<Cell> {
        let own = self.own_start;
        let mut others: Vec<Cell> = self
            .map
            .as_ref()
            .map(|m| m.starts.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|s| Some(*s) != own && !self.scouted.contains(s))
            .collect();
        if self.map.as_ref().is_none_or(|m| m.starts.is_empty()) {
            // No map: guess the point-symmetric spot.
            if let Some(home) = own {
                let n = self.size().saturating_sub(1);
                let guess = Cell::new(n - home.x.min(n), n - home.y.min(n));
                if !self.scouted.contains(&guess) {
                    others.push(guess);
                }
            }
        }
        others
            .into_iter()
            .min_by_key(|s| (crate::fields::octile(*s, from), *s))
    }

    pub(super) fn command_army(
        &mut self,
        tick: u64,
        ledger: &PlayerLedger,
        out: &mut Vec<Command>,
    ) {
        let hz = u64::from(self.rules.tick_hz.max(1));
        let army: Vec<(UnitId, Pos)> = self.know.army().map(|(id, s)| (id, s.pos)).collect();
        self.wave.retain(|id| army.iter().any(|(a, _)| a == id));
        let own = &self.know.own;
        self.fleeing.retain(|id, _| own.contains_key(id));
        let home: Vec<(UnitId, Pos)> = self
            .free_units()
            .into_iter()
            .map(|(id, pos, _)| (id, pos))
            .collect();
        if let Some(base) = self.base_center(ledger) {
            self.own_start(base);
        }
        let Some(base) = self.base_center(ledger) else {
            // No buildings: throw everything at the enemy.
            self.wave.extend(home.iter().map(|(id, _)| *id));
            self.order_wave(tick, &army, true, out);
            return;
        };

        // Defence: the nearest visible enemy close to any own building brings every home
        // unit; else a harvester under attack brings the home units near it.
        let radius = cells2(i32::from(self.profile.defend_radius));
        let buildings: Vec<Pos> = self.know.own_buildings().map(|(_, _, s)| s.pos).collect();
        let intruder = self
            .know
            .enemies
            .iter()
            .filter(|(_, e)| buildings.iter().any(|b| dist2(*b, e.pos) <= radius))
            .min_by_key(|(id, e)| (dist2(e.pos, base.center()), **id))
            .map(|(_, e)| (e.pos.cell(), home.clone()));
        let threat = match intruder {
            Some(t) => Some(t),
            None => self.harvester_threat(tick, &home, out),
        };
        match threat {
            Some((at, responders)) => {
                let fresh = self.defending != Some(at)
                    || tick >= self.last_defend_order + DEFEND_ORDER_S * hz;
                if fresh && !responders.is_empty() {
                    out.push(Command::AttackMove(AttackMove {
                        units: responders.iter().map(|(id, _)| *id).collect(),
                        to: at,
                    }));
                    self.last_defend_order = tick;
                }
                self.defending = Some(at);
            }
            None => self.defending = None,
        }

        // Attack waves.
        let secs = self.seconds(tick);
        let p = self.profile;
        // A wave never asks for more units than the AI is willing to keep (an easy AI's
        // growing waves would otherwise outgrow its army cap and never leave).
        let threshold = if secs >= u64::from(p.all_in_s) {
            1
        } else {
            (p.wave_size + p.wave_growth * self.waves_sent).min(p.max_army.max(1))
        };
        let mut launched = false;
        if self.defending.is_none()
            && secs >= u64::from(p.first_wave_s)
            && home.len() as u32 >= threshold
        {
            self.wave.extend(home.iter().map(|(id, _)| *id));
            self.waves_sent += 1;
            launched = true;
        } else if self.defending.is_none()
            && !home.is_empty()
            && tick >= self.last_rally + RALLY_S * hz
        {
            self.last_rally = tick;
            let rally = self
                .enemy_start(base)
                .map_or(base, |e| step_toward(base, e, RALLY_CELLS, self.size()));
            self.rally = Some(rally);
            let far: Vec<UnitId> = home
                .iter()
                .filter(|(_, pos)| dist2(*pos, rally.center()) > cells2(3))
                .map(|(id, _)| *id)
                .collect();
            if !far.is_empty() {
                out.push(Command::MoveUnits(MoveUnits {
                    units: far,
                    to: rally,
                }));
            }
        }
        self.order_wave(tick, &army, launched, out);
    }

    /// An own harvester under attack (hit lately, or enemy combat units close to it) and
    /// the home units within reach to help it: where to go and who goes. When the
    /// attackers in sight outweigh the helpers, the harvester is sent back to its refinery
    /// instead and nobody leaves the base's defences for it.
    fn harvester_threat(
        &mut self,
        tick: u64,
        home: &[(UnitId, Pos)],
        out: &mut Vec<Command>,
    ) -> Option<(Cell, Vec<(UnitId, Pos)>)> {
        let reach = self.profile.guard_harvesters_cells;
        if reach == 0 {
            return None;
        }
        let hz = u64::from(self.rules.tick_hz.max(1));
        let harvester = EntityKind::Unit(events::UnitKind::Harvester);
        let threats = |p: Pos| {
            self.know.enemies.iter().filter(move |(_, e)| {
                matches!(e.kind, EntityKind::Unit(u) if u != events::UnitKind::Harvester)
                    && dist2(e.pos, p) <= cells2(HARVESTER_THREAT_CELLS)
            })
        };
        let (id, at, hpos) = self
            .know
            .own
            .iter()
            .filter(|(_, s)| s.kind == harvester)
            .find_map(|(id, s)| {
                let hit = self
                    .know
                    .hurt
                    .get(id)
                    .is_some_and(|t| t + HARVESTER_HIT_S * hz >= tick);
                // Go for the attacker when it can be seen, else to the harvester.
                let nearest = threats(s.pos)
                    .min_by_key(|(eid, e)| (dist2(e.pos, s.pos), **eid))
                    .map(|(_, e)| e.pos);
                match nearest {
                    Some(e) => Some((*id, e, s.pos)),
                    None if hit => Some((*id, s.pos, s.pos)),
                    None => None,
                }
            })?;
        let responders: Vec<(UnitId, Pos)> = home
            .iter()
            .filter(|(_, p)| dist2(*p, at) <= cells2(i32::from(reach)))
            .copied()
            .collect();
        let theirs: u64 = threats(hpos).map(|(_, e)| self.worth(e)).sum();
        let ours: u64 = responders
            .iter()
            .filter_map(|(rid, _)| self.know.own.get(rid))
            .map(|s| self.worth(s))
            .sum();
        if responders.is_empty() || theirs > ours {
            if self
                .fleeing
                .get(&id)
                .is_none_or(|t| tick >= t + FLEE_ORDER_S * hz)
            {
                self.fleeing.insert(id, tick);
                out.push(Command::ReturnToRefinery(ReturnToRefinery {
                    units: vec![id],
                }));
            }
            return None;
        }
        Some((at.cell(), responders))
    }

    /// What an entity weighs in a fight: the cost of a combat unit, or a tower's cost
    /// [`TOWER_WORTH`] times, by the share of health it has left; nothing for the rest.
    pub(super) fn worth(&self, s: &super::knowledge::Seen) -> u64 {
        let (cost, weight) = match s.kind {
            EntityKind::Unit(events::UnitKind::Harvester) => (0, 0),
            EntityKind::Unit(u) => (self.rules.units.get(&u).map_or(0, |r| r.cost), 1),
            EntityKind::Building(
                b @ (events::BuildingKind::GuardTower | events::BuildingKind::LaserTower),
            ) => (
                self.rules.buildings.get(&b).map_or(0, |r| r.cost),
                TOWER_WORTH,
            ),
            EntityKind::Building(_) => (0, 0),
        };
        u64::from(cost) * weight * u64::from(s.hp_pct()) / 100
    }

    /// Whether the enemies the wave sees close to it (units and towers, by what they cost
    /// and the health they have left) outweigh the wave by the difficulty's margin.
    fn outmatched(&self, members: &[(UnitId, Pos)]) -> bool {
        let Some(pct) = self.profile.retreat_pct else {
            return false;
        };
        let worth = |s: &super::knowledge::Seen| self.worth(s);
        let ours: u64 = members
            .iter()
            .filter_map(|(id, _)| self.know.own.get(id))
            .map(worth)
            .sum();
        let theirs: u64 = self
            .know
            .enemies
            .values()
            .filter(|e| {
                members
                    .iter()
                    .any(|(_, p)| dist2(*p, e.pos) <= cells2(ENGAGE_CELLS))
            })
            .map(worth)
            .sum();
        theirs * 100 > ours * u64::from(pct)
    }

    /// Sends the wave at its target: a visible building close by is attacked directly,
    /// otherwise the wave attack-moves to the nearest known enemy building, else to the
    /// nearest unscouted enemy start, else somewhere at random.
    fn order_wave(
        &mut self,
        tick: u64,
        army: &[(UnitId, Pos)],
        force: bool,
        out: &mut Vec<Command>,
    ) {
        let hz = u64::from(self.rules.tick_hz.max(1));
        if self.wave.is_empty() || !(force || tick >= self.last_wave_order + WAVE_ORDER_S * hz) {
            return;
        }
        self.last_wave_order = tick;
        let members: Vec<(UnitId, Pos)> = army
            .iter()
            .filter(|(id, _)| self.wave.contains(id))
            .copied()
            .collect();
        let n = members.len().max(1) as i64;
        let cx = members.iter().map(|(_, p)| i64::from(p.x)).sum::<i64>() / n;
        let cy = members.iter().map(|(_, p)| i64::from(p.y)).sum::<i64>() / n;
        let centre = Pos::new(cx as i32, cy as i32);
        let units: Vec<UnitId> = members.iter().map(|(id, _)| *id).collect();

        if self.outmatched(&members) {
            // Fall back and come again bigger (the next wave's size counts this one).
            self.wave.clear();
            self.last_rally = 0;
            out.push(Command::MoveUnits(MoveUnits {
                units,
                to: self.rally.unwrap_or(centre.cell()),
            }));
            return;
        }

        let target = self
            .know
            .ghosts
            .iter()
            .filter(|(_, g)| matches!(g.kind, EntityKind::Building(_)))
            .min_by_key(|(id, g)| (dist2(g.pos, centre), **id))
            .map(|(id, g)| (*id, g.pos));
        if let Some((id, pos)) = target {
            if self.know.enemies.contains_key(&id) && dist2(pos, centre) <= cells2(CLOSE_CELLS) {
                // Enemy units near the wave come first: the attack-move engages them.
                let threat = self.know.enemies.values().any(|e| {
                    matches!(e.kind, EntityKind::Unit(_))
                        && dist2(e.pos, centre) <= cells2(CLOSE_CELLS)
                });
                if !threat {
                    out.push(Command::AttackTarget(AttackTarget { units, target: id }));
                    return;
                }
            }
            self.wave_goal = Some(pos.cell());
            out.push(Command::AttackMove(AttackMove {
                units,
                to: pos.cell(),
            }));
            return;
        }
        let here = centre.cell();
        if let Some(start) = self.enemy_start(here) {
            if dist2(start.center(), centre) <= cells2(SCOUTED_CELLS) {
                self.scouted.insert(start);
            }
        }
        let goal = match self.enemy_start(here) {
            Some(s) => s,
            None => {
                // Everything scouted and nothing known: sweep the part of the map seen
                // longest ago.
                let reached = self
                    .wave_goal
                    .is_none_or(|g| dist2(g.center(), centre) <= cells2(SCOUTED_CELLS));
                let hz = u64::from(self.rules.tick_hz.max(1));
                let stale = tick >= self.goal_since + SEARCH_GOAL_S * hz;
                if reached || stale {
                    if let (Some(g), true) = (self.wave_goal, stale) {
                        // Could not get there: count it as seen so the sweep moves on.
                        self.mark_cell_seen(g, tick);
                    }
                    self.wave_goal = self.stalest_sector(here);
                    self.goal_since = tick;
                }
                self.wave_goal.unwrap_or(here)
            }
        };
        out.push(Command::AttackMove(AttackMove { units, to: goal }));
    }

    /// Marks the sectors the own entities stand in as seen now.
    pub(super) fn mark_seen(&mut self, tick: u64) {
        let n = self.sectors_per_side();
        if self.seen.len() != n * n {
            self.seen = vec![0; n * n];
        }
        for s in self.know.own.values() {
            let c = s.pos.cell();
            let (x, y) = (usize::from(c.x) / SECTOR, usize::from(c.y) / SECTOR);
            if x < n && y < n {
                self.seen[y * n + x] = tick + 1;
            }
        }
    }

    fn mark_cell_seen(&mut self, c: Cell, tick: u64) {
        let n = self.sectors_per_side();
        let i = usize::from(c.y) / SECTOR * n + usize::from(c.x) / SECTOR;
        if let Some(s) = self.seen.get_mut(i) {
            *s = tick + 1;
        }
    }

    fn sectors_per_side(&self) -> usize {
        usize::from(self.size()).div_ceil(SECTOR)
    }

    /// A passable cell in the sector seen longest ago (nearest to `from` among equals).
    pub(super) fn stalest_sector(&self, from: Cell) -> Option<Cell> {
        let n = self.sectors_per_side();
        let size = self.size();
        let mut best: Option<(u64, u32, Cell)> = None;
        for (i, seen) in self.seen.iter().enumerate() {
            let (sx, sy) = ((i % n) * SECTOR, (i / n) * SECTOR);
            let cell = (0..SECTOR * SECTOR)
                .map(|k| {
                    // From the sector's centre outwards, roughly.
                    let (dx, dy) = (
                        (k + SECTOR / 2) % SECTOR,
                        (k / SECTOR + SECTOR / 2) % SECTOR,
                    );
                    Cell::new((sx + dx) as u16, (sy + dy) as u16)
                })
                .find(|c| {
                    c.x < size && c.y < size && self.map.as_ref().is_none_or(|m| m.is_passable(*c))
                });
            let Some(cell) = cell else { continue };
            let key = (*seen, crate::fields::octile(cell, from), cell);
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        best.map(|(_, _, c)| c)
    }
}

/// Side of the exploration sectors, in cells.
const SECTOR: usize = 8;

/// `cells` cells from `from` towards `to`, on the map.
fn step_toward(from: Cell, to: Cell, cells: i32, size: u16) -> Cell {
    let dx = i32::from(to.x) - i32::from(from.x);
    let dy = i32::from(to.y) - i32::from(from.y);
    let len = (dx * dx + dy * dy).isqrt().max(1);
    let n = i32::from(size) - 1;
    let x = i32::from(from.x) + dx * cells / len;
    let y = i32::from(from.y) + dy * cells / len;
    Cell::new(x.clamp(0, n) as u16, y.clamp(0, n) as u16)
}
