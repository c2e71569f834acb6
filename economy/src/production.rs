//! One production job: progressive payment, speed, pause at zero credits, ready state.
//!
//! Work is counted in "percent-ticks": an item needs `build ticks × 100` of them and a
//! tick at speed `s`% adds `s`. Payment follows work exactly (`paid = cost × work / total`,
//! rounded down), so what was paid is always what a cancel refunds, and the last tick
//! pays the remainder so a finished item cost exactly its price.
//!
//! A queue works on one job at a time (the C&C model): `queued` more of the same item
//! wait behind it, unpaid, and each starts when the one before it is done. A held job
//! makes no progress and pays nothing until it is resumed.

use events::{Item, ProductionState};
use rules::Rules;
use serde::{Deserialize, Serialize};

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    /// Making progress.
    Building,
    /// Waiting for credits (or for a producer building to exist again).
    Paused,
    /// Finished and paid. Buildings wait here until placed; `placing` is the request the
    /// engine has not answered yet.
    Ready { placing: Option<u64> },
}

/// An item in a production queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub item: Item,
    pub cost: u32,
    pub paid: u32,
    /// Work done, in percent-ticks.
    pub work: u64,
    /// Work needed, in percent-ticks.
    pub total: u64,
    pub status: JobStatus,
    /// More of the same item waiting behind this one (left out of the encoding when 0,
    /// so ledgers from before stacking hash and restore as they did).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub queued: u32,
    /// Put on hold by the player.
    #[serde(default, skip_serializing_if = "is_false")]
    pub held: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What one tick of production did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Advance {
    /// Credits paid this tick.
    pub spent: u32,
    /// The job became ready this tick.
    pub finished: bool,
}

impl Job {
    /// A fresh job for `item` with its price and build time from the rules.
    pub fn new(rules: &Rules, item: Item) -> Job {
        let (cost, build_ms) = match item {
            Item::Unit(u) => rules.units.get(&u).map_or((0, 0), |r| (r.cost, r.build_ms)),
            Item::Building(b) => rules
                .buildings
                .get(&b)
                .map_or((0, 0), |r| (r.cost, r.build_ms)),
        };
        let total = u64::from(rules.ticks(build_ms).max(1)) * 100;
        Job {
            item,
            cost,
            paid: 0,
            work: 0,
            total,
            status: JobStatus::Building,
            queued: 0,
            held: false,
        }
    }

    /// The next job of a stack: the same item from scratch, one fewer behind it. The hold
    /// carries over.
    pub fn next_of_stack(&self, rules: &Rules) -> Option<Job> {
        let queued = self.queued.checked_sub(1)?;
        let mut next = Job::new(rules, self.item);
        next.queued = queued;
        next.held = self.held;
        Some(next)
    }

    /// How many of the item the queue holds, this one included.
    pub fn count(&self) -> u32 {
        self.queued.saturating_add(1)
    }

    pub fn is_ready(&self) -> bool {
        matches!(self.status, JobStatus::Ready { .. })
    }

    /// What the job has cost so far for `work` done.
    fn paid_for(&self, work: u64) -> u32 {
        (u64::from(self.cost) * work / self.total.max(1)) as u32
    }

    /// The most work `budget` credits (in total, including what is already paid) buy.
    fn affordable_work(&self, budget: u64) -> u64 {
        if self.cost == 0 {
            return self.total;
        }
        // Largest w with floor(cost × w / total) <= budget.
        ((budget + 1) * self.total - 1) / u64::from(self.cost)
    }

    /// One tick at `speed_pct` with `credits` available. A job that cannot move for lack
    /// of credits (or because `can_progress` is false) is paused; it resumes by itself.
    pub fn advance(&mut self, speed_pct: u32, credits: u64, can_progress: bool) -> Advance {
        if self.is_ready() || self.held {
            return Advance::default();
        }
        let want = (self.work + u64::from(speed_pct)).min(self.total);
        let target = if can_progress {
            want.min(self.affordable_work(u64::from(self.paid) + credits))
        } else {
            self.work
        };
        if target <= self.work {
            self.status = JobStatus::Paused;
            return Advance::default();
        }
        let new_paid = self.paid_for(target);
        let spent = new_paid - self.paid;
        self.paid = new_paid;
        self.work = target;
        if self.work >= self.total {
            self.status = JobStatus::Ready { placing: None };
            Advance {
                spent,
                finished: true,
            }
        } else {
            self.status = JobStatus::Building;
            Advance {
                spent,
                finished: false,
            }
        }
    }

    /// The job as the `eco` stream shows it.
    pub fn state(&self) -> ProductionState {
        let (item, paid, cost, queued) = (self.item, self.paid, self.cost, self.queued);
        match self.status {
            JobStatus::Ready { .. } => ProductionState::Ready { item, queued },
            _ if self.held => ProductionState::Held {
                item,
                paid,
                cost,
                queued,
            },
            JobStatus::Building => ProductionState::Building {
                item,
                paid,
                cost,
                queued,
            },
            JobStatus::Paused => ProductionState::Paused {
                item,
                paid,
                cost,
                queued,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::UnitKind;

    #[test]
    fn full_speed_job_costs_exactly_its_price_in_its_build_time() {
        let r = Rules::standard();
        let item = Item::Unit(UnitKind::Rifleman);
        let mut j = Job::new(&r, item);
        let ticks = r.ticks(r.unit(UnitKind::Rifleman).build_ms);
        let mut spent = 0;
        for t in 0..ticks {
            let a = j.advance(100, 1_000_000, true);
            spent += a.spent;
            assert_eq!(a.finished, t + 1 == ticks);
        }
        assert_eq!(spent, r.unit(UnitKind::Rifleman).cost);
        assert!(j.is_ready());
        assert_eq!(j.advance(100, 1_000_000, true), Advance::default());
    }

    #[test]
    fn pauses_when_credits_run_out_and_never_overspends() {
        let r = Rules::standard();
        let mut j = Job::new(&r, Item::Unit(UnitKind::HeavyTank));
        let mut credits: u64 = 7;
        for _ in 0..50 {
            let a = j.advance(100, credits, true);
            credits -= u64::from(a.spent);
        }
        assert_eq!(j.status, JobStatus::Paused);
        assert!(j.paid <= 7);
        assert!(j.work > 0);
        let a = j.advance(100, 1000, true);
        assert!(a.spent > 0);
        assert_eq!(j.status, JobStatus::Building);
    }

    #[test]
    fn a_held_job_neither_progresses_nor_pays() {
        let r = Rules::standard();
        let mut j = Job::new(&r, Item::Unit(UnitKind::Rifleman));
        j.advance(100, 1_000, true);
        let (work, paid) = (j.work, j.paid);
        j.held = true;
        for _ in 0..20 {
            assert_eq!(j.advance(100, 1_000, true), Advance::default());
        }
        assert_eq!((j.work, j.paid), (work, paid));
        assert!(matches!(j.state(), ProductionState::Held { .. }));
        j.held = false;
        assert!(j.advance(100, 1_000, true).spent > 0);
    }

    #[test]
    fn a_stack_hands_on_to_a_fresh_job_of_the_same_item() {
        let r = Rules::standard();
        let mut j = Job::new(&r, Item::Unit(UnitKind::Rifleman));
        j.queued = 2;
        while !j.is_ready() {
            j.advance(100, 1_000_000, true);
        }
        let next = j.next_of_stack(&r).unwrap();
        assert_eq!(
            (next.item, next.paid, next.work, next.queued),
            (j.item, 0, 0, 1)
        );
        assert_eq!(next.count(), 2);
        let last = next.next_of_stack(&r).unwrap();
        assert_eq!(last.queued, 0);
        assert!(last.next_of_stack(&r).is_none());
    }

    #[test]
    fn slow_speed_takes_longer_for_the_same_price() {
        let r = Rules::standard();
        let mut j = Job::new(&r, Item::Unit(UnitKind::Rifleman));
        let ticks = r.ticks(r.unit(UnitKind::Rifleman).build_ms);
        let mut n = 0;
        while !j.is_ready() {
            j.advance(25, 1_000_000, true);
            n += 1;
        }
        assert_eq!(n, ticks * 4);
        assert_eq!(j.paid, r.unit(UnitKind::Rifleman).cost);
    }
}
