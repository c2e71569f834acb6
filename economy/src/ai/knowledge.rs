//! What the AI knows: its own entities, the enemies it sees now, the enemy buildings it
//! saw before (last known positions), the enemy units it has met (for its army mix) and
//! which of its own entities were just hurt, folded from its fogged view frames only.

use std::collections::BTreeMap;

use events::{
    BuildingKind, EntityKind, EntityView, PlayerId, Pos, UnitId, UnitKind, ViewFrame, ViewKind,
};
use rules::Rules;

/// One entity as last seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub owner: PlayerId,
    pub kind: EntityKind,
    pub pos: Pos,
    pub hp: u32,
    pub max_hp: u32,
    /// Tick of the frame it was last seen in.
    pub tick: u64,
}

impl Seen {
    /// Health in percent of the maximum (100 for an entity without health).
    pub fn hp_pct(&self) -> u32 {
        if self.max_hp == 0 {
            100
        } else {
            (u64::from(self.hp) * 100 / u64::from(self.max_hp)) as u32
        }
    }
}

/// The AI's memory of the world.
#[derive(Clone, Debug, Default)]
pub struct Knowledge {
    pub own: BTreeMap<UnitId, Seen>,
    /// Enemies visible in the latest frame.
    pub enemies: BTreeMap<UnitId, Seen>,
    /// Enemy buildings seen at some point and not known to be gone.
    pub ghosts: BTreeMap<UnitId, Seen>,
    /// Own entities lost since the last decision (to notice attacks on the base).
    pub lost: u32,
    /// Enemy units met and not seen dying, with the tick they were last seen: what the
    /// enemy's army is made of, as far as this player knows.
    pub met: BTreeMap<UnitId, (UnitKind, u64)>,
    /// Own entities whose health fell, with the tick it last fell (forgotten when they
    /// are gone).
    pub hurt: BTreeMap<UnitId, u64>,
}

fn seen(e: &EntityView, tick: u64) -> Seen {
    Seen {
        owner: e.owner,
        kind: e.kind,
        pos: e.pos,
        hp: e.hp,
        max_hp: e.max_hp,
        tick,
    }
}

impl Knowledge {
    /// Folds one frame as player `me` sees it: entities whose mask lacks `me`'s bit are
    /// used only to forget what `me` can no longer see, never for their content.
    pub fn observe(&mut self, me: PlayerId, frame: &ViewFrame) {
        let bit = 1u8.checked_shl(u32::from(me.0)).unwrap_or(0);
        // A keyframe lists everything: what it lacks is gone (compared with the
        // previous health below, so damage across a keyframe is still noticed).
        let before = if frame.kind == ViewKind::Keyframe {
            self.enemies.clear();
            std::mem::take(&mut self.own)
        } else {
            BTreeMap::new()
        };
        for e in &frame.entities {
            let visible = e.visible_to & bit != 0;
            if e.owner == me {
                let was = self.own.get(&e.id).or_else(|| before.get(&e.id));
                if was.is_some_and(|w| e.hp < w.hp) {
                    self.hurt.insert(e.id, frame.tick);
                }
                self.own.insert(e.id, seen(e, frame.tick));
            } else if visible {
                self.enemies.insert(e.id, seen(e, frame.tick));
                match e.kind {
                    EntityKind::Building(_) => {
                        self.ghosts.insert(e.id, seen(e, frame.tick));
                    }
                    EntityKind::Unit(u) => {
                        self.met.insert(e.id, (u, frame.tick));
                    }
                }
            } else {
                self.enemies.remove(&e.id);
            }
        }
        for (id, mask) in &frame.removed {
            if self.own.remove(id).is_some() {
                self.lost += 1;
            }
            self.hurt.remove(id);
            self.enemies.remove(id);
            if mask & bit != 0 {
                self.ghosts.remove(id);
                self.met.remove(id);
            }
        }
        if frame.kind == ViewKind::Keyframe {
            let own = &self.own;
            self.lost += before.keys().filter(|id| !own.contains_key(id)).count() as u32;
            self.hurt.retain(|id, _| own.contains_key(id));
        }
    }

    /// Own entities hurt within the last `ticks` ticks before `now`, in id order.
    pub fn hurt_since(&self, now: u64, ticks: u64) -> impl Iterator<Item = (UnitId, &Seen)> {
        self.hurt
            .iter()
            .filter(move |(_, t)| **t + ticks >= now)
            .filter_map(|(id, _)| self.own.get(id).map(|s| (*id, s)))
    }

    /// Forgets ghost buildings whose place an own entity can see now while they are not
    /// visible: they are gone.
    pub fn prune_ghosts(&mut self, rules: &Rules) {
        let own = &self.own;
        let enemies = &self.enemies;
        self.ghosts.retain(|id, g| {
            if enemies.contains_key(id) {
                return true;
            }
            let seen_there = own.values().any(|o| {
                let sight = match o.kind {
                    EntityKind::Unit(u) => rules.units.get(&u).map_or(0, |r| r.sight),
                    EntityKind::Building(b) => rules.buildings.get(&b).map_or(0, |r| r.sight),
                };
                // Shrink by a cell so a ghost at the edge of sight is not dropped early.
                let r = i64::from(sight.saturating_sub(1)) * i64::from(events::CELL);
                let dx = i64::from(o.pos.x - g.pos.x);
                let dy = i64::from(o.pos.y - g.pos.y);
                dx * dx + dy * dy <= r * r
            });
            !seen_there
        });
    }

    /// Own units of a kind.
    pub fn own_units(&self, kind: UnitKind) -> impl Iterator<Item = (UnitId, &Seen)> {
        self.own
            .iter()
            .filter(move |(_, s)| s.kind == EntityKind::Unit(kind))
            .map(|(id, s)| (*id, s))
    }

    /// Own combat units (everything but harvesters), in id order.
    pub fn army(&self) -> impl Iterator<Item = (UnitId, &Seen)> {
        self.own
            .iter()
            .filter(|(_, s)| matches!(s.kind, EntityKind::Unit(u) if u != UnitKind::Harvester))
            .map(|(id, s)| (*id, s))
    }

    /// Own buildings, in id order.
    pub fn own_buildings(&self) -> impl Iterator<Item = (UnitId, BuildingKind, &Seen)> {
        self.own.iter().filter_map(|(id, s)| match s.kind {
            EntityKind::Building(b) => Some((*id, b, s)),
            EntityKind::Unit(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::EntityView;

    fn ev(id: u32, owner: u8, kind: EntityKind, x: i32, mask: u8) -> EntityView {
        EntityView {
            id: UnitId(id),
            owner: PlayerId(owner),
            kind,
            pos: Pos::new(x * 1024, 0),
            facing: 0,
            hp: 10,
            max_hp: 10,
            cargo: 0,
            visible_to: mask,
        }
    }

    #[test]
    fn sees_only_through_its_own_bit() {
        let me = PlayerId(1);
        let mut k = Knowledge::default();
        let tank = EntityKind::Unit(UnitKind::LightTank);
        let yard = EntityKind::Building(BuildingKind::ConstructionYard);
        k.observe(
            me,
            &ViewFrame {
                tick: 1,
                kind: ViewKind::Keyframe,
                entities: vec![
                    ev(1, 1, tank, 1, 0b10),
                    ev(2, 0, tank, 2, 0b01),
                    ev(3, 0, yard, 3, 0b11),
                ],
                removed: vec![],
                tiberium: vec![],
                winner: None,
                attacks: Vec::new(),
                deaths: Vec::new(),
            },
        );
        assert!(k.own.contains_key(&UnitId(1)));
        assert!(
            !k.enemies.contains_key(&UnitId(2)),
            "hidden enemy must not be known"
        );
        assert!(k.ghosts.contains_key(&UnitId(3)));
        // The yard slips into fog: still a ghost. Then it dies out of sight: still a ghost.
        k.observe(
            me,
            &ViewFrame {
                tick: 2,
                kind: ViewKind::Delta,
                entities: vec![ev(3, 0, yard, 3, 0b01)],
                removed: vec![(UnitId(3), 0b01)],
                tiberium: vec![],
                winner: None,
                attacks: Vec::new(),
                deaths: Vec::new(),
            },
        );
        assert!(!k.enemies.contains_key(&UnitId(3)));
        assert!(k.ghosts.contains_key(&UnitId(3)));
        // Our tank drives up to the ghost: it is gone.
        k.observe(
            me,
            &ViewFrame {
                tick: 3,
                kind: ViewKind::Delta,
                entities: vec![ev(1, 1, tank, 3, 0b10)],
                removed: vec![],
                tiberium: vec![],
                winner: None,
                attacks: Vec::new(),
                deaths: Vec::new(),
            },
        );
        k.prune_ghosts(&Rules::standard());
        assert!(k.ghosts.is_empty());
    }
}
