//! Base upkeep: a building about to be destroyed is sold for what it still brings back,
//! and a damaged building is repaired once the fighting around it is over.

use events::cmd::{RepairBuilding, Sell};
use events::{BuildingKind, Command, UnitId};

use super::Ai;
use crate::ledger::PlayerLedger;

/// A building at or under this share of its health (percent) that is still being hit is
/// sold before it falls.
pub const SELL_HP_PCT: u32 = 25;
/// "Still being hit": its health fell within this many seconds.
const UNDER_FIRE_S: u64 = 2;
/// A building under this share of its health (percent) wants repairs.
pub const REPAIR_HP_PCT: u32 = 75;
/// Repairs wait until a building has not been hit for this many seconds.
const CALM_S: u64 = 10;
/// Credits kept back from repairs (the army and rebuilding come first).
const REPAIR_RESERVE: u64 = 1000;
/// A repair order the economy has not taken up (or one that ran out of credits) is given
/// again after this many seconds.
const REPAIR_RETRY_S: u64 = 5;

impl Ai {
    /// Sells what is about to be lost and repairs what survived.
    pub(super) fn upkeep(&mut self, tick: u64, ledger: &PlayerLedger, out: &mut Vec<Command>) {
        if !self.profile.upkeep {
            return;
        }
        let hz = u64::from(self.rules.tick_hz.max(1));
        let own = &self.know.own;
        self.sold.retain(|id| own.contains_key(id));
        let buildings = ledger.buildings.len();
        let under_fire: Vec<UnitId> = self
            .know
            .hurt_since(tick, UNDER_FIRE_S * hz)
            .filter(|(id, s)| {
                matches!(s.kind, events::EntityKind::Building(b) if b != BuildingKind::ConstructionYard)
                    && s.hp_pct() <= SELL_HP_PCT
                    && !self.sold.contains(id)
            })
            .map(|(id, _)| id)
            .collect();
        for id in under_fire {
            // Never the last building: that would be giving up the match.
            if buildings.saturating_sub(self.sold.len()) <= 1 {
                break;
            }
            self.sold.insert(id);
            out.push(Command::Sell(Sell { building: id }));
        }
        if ledger.credits < REPAIR_RESERVE {
            return;
        }
        let calm = CALM_S * hz;
        let damaged: Vec<UnitId> = self
            .know
            .own_buildings()
            .filter(|(id, _, s)| {
                s.hp_pct() < REPAIR_HP_PCT
                    && !self.sold.contains(id)
                    && self.know.hurt.get(id).is_none_or(|t| t + calm < tick)
            })
            .map(|(id, _, _)| id)
            .collect();
        let retry = REPAIR_RETRY_S * hz;
        self.repair_asked
            .retain(|id, at| own.contains_key(id) && *at + retry > tick);
        for id in damaged {
            if ledger.repairing.contains(&id) || self.repair_asked.contains_key(&id) {
                continue;
            }
            self.repair_asked.insert(id, tick);
            out.push(Self::repair_order(id));
        }
    }

    /// The command that sets a building under repair: the economy repairs it step by step
    /// until it is whole (or the credits run out) and then stops by itself.
    fn repair_order(building: UnitId) -> Command {
        Command::RepairBuilding(RepairBuilding { building, on: true })
    }
}
