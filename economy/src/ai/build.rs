//! The AI's base and production: build order with power kept positive, rebuilding what
//! was lost, placing finished buildings, harvesters and army by difficulty.

use events::cmd::{PlaceBuilding, QueueProduction};
use events::{BuildingKind, Cell, Command, EntityKind, Item, QueueKind, UnitKind};

use super::placement::{self, Rect, Site};
use super::Ai;
use crate::ledger::PlayerLedger;
use crate::tech;

/// Seconds to wait for the economy and engine to answer a placement before trying
/// another spot.
const PLACEMENT_ANSWER_S: u64 = 2;
/// Refused spots are forgotten after this long (the units that stood there moved on).
const FAILED_MEMORY_S: u64 = 30;

impl Ai {
    /// Places a finished building, trying another spot when the last one was refused.
    pub(super) fn place_ready(&mut self, tick: u64, ledger: &PlayerLedger, out: &mut Vec<Command>) {
        if self.seconds(tick) >= self.seconds(self.failed_since) + FAILED_MEMORY_S {
            self.failed.clear();
            self.failed_since = tick;
        }
        let Some((kind, pending)) = ledger.ready_building() else {
            self.placing = None;
            return;
        };
        if pending {
            return;
        }
        if let Some((k, at, sent)) = self.placing {
            if k == kind {
                let wait = u64::from(self.rules.tick_hz) * PLACEMENT_ANSWER_S;
                if tick < sent + wait {
                    return;
                }
                self.failed.insert((k, at));
            }
        }
        let Some(prefer) = self.placement_preference(kind, ledger) else {
            return;
        };
        let own: Vec<Rect> = ledger
            .buildings
            .values()
            .map(|b| Rect::of(&self.rules, b.kind, b.at))
            .collect();
        let others: Vec<Rect> = self
            .know
            .ghosts
            .values()
            .filter_map(|g| match g.kind {
                EntityKind::Building(b) => {
                    let r = Rect::of(&self.rules, b, Cell::new(0, 0));
                    let c = g.pos.cell();
                    Some(Rect::of(
                        &self.rules,
                        b,
                        Cell::new(
                            c.x.saturating_sub((r.w / 2) as u16),
                            c.y.saturating_sub((r.h / 2) as u16),
                        ),
                    ))
                }
                EntityKind::Unit(_) => None,
            })
            .collect();
        let site = Site {
            rules: &self.rules,
            map: self.map.as_deref(),
            size: self.size(),
            own: &own,
            others: &others,
            failed: &self.failed,
        };
        match placement::choose(&site, kind, prefer) {
            Some(at) => {
                self.placing = Some((kind, at, tick));
                out.push(Command::PlaceBuilding(PlaceBuilding { building: kind, at }));
            }
            None => {
                // Nothing fits: forget refusals so the next think retries everything.
                self.failed.clear();
                self.placing = None;
            }
        }
    }

    /// Where a building of this kind should go: refineries towards the nearest field,
    /// defences towards the enemy, everything else close to the yard.
    fn placement_preference(&self, kind: BuildingKind, ledger: &PlayerLedger) -> Option<Cell> {
        let base = self.base_center(ledger)?;
        let toward = |to: Cell, cells: i32| {
            let dx = i32::from(to.x) - i32::from(base.x);
            let dy = i32::from(to.y) - i32::from(base.y);
            let len = (dx * dx + dy * dy).isqrt().max(1);
            let x = i32::from(base.x) + dx * cells / len;
            let y = i32::from(base.y) + dy * cells / len;
            let n = i32::from(self.size()) - 1;
            Cell::new(x.clamp(0, n) as u16, y.clamp(0, n) as u16)
        };
        match kind {
            BuildingKind::Refinery => {
                let field = self.map.as_ref().and_then(|m| {
                    m.fields
                        .iter()
                        .flat_map(|f| f.cells.iter().map(|(c, _)| *c))
                        .min_by_key(|c| (crate::fields::octile(*c, base), *c))
                });
                Some(field.map_or(base, |f| toward(f, 5)))
            }
            BuildingKind::GuardTower | BuildingKind::LaserTower => {
                Some(self.enemy_start(base).map_or(base, |e| toward(e, 6)))
            }
            _ => Some(base),
        }
    }

    /// Queues the next building of the build order; true when the base still wants one.
    pub(super) fn queue_building(&mut self, ledger: &PlayerLedger, out: &mut Vec<Command>) -> bool {
        if ledger.queue(QueueKind::Buildings).is_some() {
            return false;
        }
        if !ledger.owns(BuildingKind::ConstructionYard) || ledger.credits == 0 {
            return false;
        }
        let owned = ledger.owned();
        let ok = |k: BuildingKind| {
            tech::is_producible(&self.rules, Item::Building(k))
                && tech::missing_prerequisite(&self.rules, &owned, Item::Building(k)).is_none()
        };
        let Some(mut next) = self
            .profile
            .base
            .iter()
            .find(|(k, n)| owned.get(k).copied().unwrap_or(0) < *n && ok(*k))
            .map(|(k, _)| *k)
        else {
            return false;
        };
        let plant = BuildingKind::PowerPlant;
        let plant_out = self
            .rules
            .buildings
            .get(&plant)
            .map_or(0, |b| b.power.max(0));
        let margin = plant_out * self.profile.power_margin_pct / 100;
        let need = self
            .rules
            .buildings
            .get(&next)
            .map_or(0, |b| (-b.power).max(0));
        let spare = ledger.power.output - ledger.power.consumption;
        if (ledger.power.is_low() || (need > 0 && spare - need < margin)) && ok(plant) {
            next = plant;
        }
        out.push(Command::QueueProduction(QueueProduction {
            item: Item::Building(next),
        }));
        true
    }

    /// Keeps the barracks and war factory busy: harvesters first, then the army mix.
    pub(super) fn queue_units(
        &mut self,
        tick: u64,
        ledger: &PlayerLedger,
        wants_building: bool,
        out: &mut Vec<Command>,
    ) {
        let building = wants_building
            || ledger
                .queue(QueueKind::Buildings)
                .is_some_and(|j| !j.is_ready());
        let reserve = if building {
            u64::from(self.profile.building_reserve)
        } else {
            0
        };
        let army = self.know.army().count() as u32;
        let spendable = ledger.credits > reserve && army < self.profile.max_army;
        if ledger.owns(BuildingKind::WarFactory) && ledger.queue(QueueKind::Vehicles).is_none() {
            let harvesters = self.know.own_units(UnitKind::Harvester).count() as u32;
            let refineries = ledger.count(BuildingKind::Refinery);
            let kind = if refineries > 0 && harvesters < self.profile.harvesters {
                Some(UnitKind::Harvester)
            } else if spendable {
                self.pick(tick, self.profile.vehicles)
            } else {
                None
            };
            if let Some(k) = kind {
                out.push(Command::QueueProduction(QueueProduction {
                    item: Item::Unit(k),
                }));
            }
        }
        if spendable
            && ledger.owns(BuildingKind::Barracks)
            && ledger.queue(QueueKind::Infantry).is_none()
        {
            if let Some(k) = self.pick(tick, self.profile.infantry) {
                out.push(Command::QueueProduction(QueueProduction {
                    item: Item::Unit(k),
                }));
            }
        }
    }

    /// A weighted choice from a mix, shifted to counter the enemy (see [`Ai::countered`]).
    fn pick(&mut self, tick: u64, mix: &[(UnitKind, u32)]) -> Option<UnitKind> {
        let mix = self.countered(tick, mix);
        let total: u64 = mix.iter().map(|(_, w)| *w).sum();
        let mut r = self.rng.below(total);
        for (k, w) in mix {
            if r < w {
                return Some(k);
            }
            r -= w;
        }
        None
    }
}
