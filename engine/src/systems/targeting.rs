//! Target acquisition and chase intents: drop dead or escaped targets, pick the nearest
//! enemy in sight (in range for Hold and for defence buildings), and point units that are
//! out of range at their target.

use events::{Cell, EntityKind, Pos, UnitId, CELL};

use super::{
    nearest_free, set_dest, weapon_rules, ACQUIRE_PERIOD, CHASE_SLACK, FREE_CELL_SEARCH,
    LEASH_CELLS,
};
use crate::fixed::{chebyshev, dist2};
use crate::sim::spatial;
use crate::sim::state::{Body, Footprint, Ident, Mobile, Order, State, Weapon};

/// Where a target can be hit from `from`: its position, or the nearest point of its
/// footprint.
pub fn aim_point(state: &State, target: UnitId, from: Pos) -> Option<Pos> {
    let e = state.entity(target)?;
    if let Ok(fp) = state.world.get::<&Footprint>(e) {
        return Some(fp.nearest_point(from));
    }
    state.world.get::<&Body>(e).ok().map(|b| b.pos)
}

struct Shooter {
    id: UnitId,
    entity: hecs::Entity,
    ident: Ident,
    pos: Pos,
    weapon: Weapon,
    order: Option<Order>,
    dest: Option<Cell>,
}

pub fn run(state: &mut State) {
    spatial::rebuild(state);
    // Enemy candidates that are not in the spatial grid: buildings, in id order.
    let mut buildings: Vec<(UnitId, Ident, Footprint)> = state
        .world
        .query::<(&Ident, &Footprint)>()
        .iter()
        .map(|(i, f)| (i.id, *i, *f))
        .collect();
    buildings.sort_unstable_by_key(|b| b.0);
    let mut shooters: Vec<Shooter> = state
        .world
        .query::<(hecs::Entity, &Ident, &Body, &Weapon, Option<&Mobile>)>()
        .iter()
        .map(|(e, i, b, w, m)| Shooter {
            id: i.id,
            entity: e,
            ident: *i,
            pos: b.pos,
            weapon: *w,
            order: m.map(|m| m.order),
            dest: m.and_then(|m| m.dest),
        })
        .collect();
    // hecs order is arbitrary: act in id order.
    shooters.sort_by_key(|s| s.id);
    let tick = state.tick;
    for s in shooters {
        let Some(wr) = weapon_rules(state, s.ident.kind) else {
            continue;
        };
        let range = wr.range_fixed();
        let is_building = matches!(s.ident.kind, EntityKind::Building(_));
        let offline = match s.ident.kind {
            EntityKind::Building(b) => {
                state.rules.building(b).needs_power
                    && state
                        .player_index(s.ident.owner)
                        .is_some_and(|k| state.players[k].low_power)
            }
            EntityKind::Unit(_) => false,
        };
        let sight = i64::from(match s.ident.kind {
            EntityKind::Unit(u) => state.rules.unit(u).sight,
            EntityKind::Building(b) => state.rules.building(b).sight,
        }) * i64::from(CELL);
        let mut w = s.weapon;
        if offline {
            w.target = None;
        }
        // Keep the current target only while it lives and (if picked up on sight) stays
        // within the leash.
        if let Some(t) = w.target {
            let alive = state.ident(t).is_some_and(|ti| ti.owner != s.ident.owner);
            let leash = sight + LEASH_CELLS * i64::from(CELL);
            let near = aim_point(state, t, s.pos)
                .is_some_and(|p| w.explicit || dist2(p, s.pos) <= leash * leash);
            if !alive || !near {
                w.target = None;
                w.explicit = false;
            }
        }
        let may_acquire = !offline
            && match s.order {
                None => is_building,
                Some(o) => matches!(o, Order::Idle | Order::AttackMove { .. } | Order::Hold),
            };
        if w.target.is_none()
            && may_acquire
            && (tick + u64::from(s.id.0)).is_multiple_of(ACQUIRE_PERIOD)
        {
            let radius = if is_building || s.order == Some(Order::Hold) {
                range
            } else {
                sight
            };
            w.target = nearest_enemy(state, &s, radius, &buildings);
            w.explicit = false;
        }
        if w != s.weapon {
            if let Ok(mut wc) = state.world.get::<&mut Weapon>(s.entity) {
                *wc = w;
            }
        }
        if s.order.is_some() {
            chase(state, &s, w, range);
        }
    }
}

/// The nearest enemy unit within `radius` (ties: lower id), else the nearest enemy
/// building.
fn nearest_enemy(
    state: &State,
    s: &Shooter,
    radius: i64,
    buildings: &[(UnitId, Ident, Footprint)],
) -> Option<UnitId> {
    let r2 = radius * radius;
    let mut best = state.spatial.nearest_enemy(s.pos, radius, s.ident.owner);
    if best.is_none() {
        for (id, i, fp) in buildings {
            if i.owner == s.ident.owner {
                continue;
            }
            let d = dist2(fp.nearest_point(s.pos), s.pos);
            if d <= r2 && best.is_none_or(|b| (d, *id) < b) {
                best = Some((d, *id));
            }
        }
    }
    best.map(|(_, id)| id)
}

/// Moves a unit towards its target when out of range, stops it when in range, and
/// resumes an attack-move when there is no target.
fn chase(state: &mut State, s: &Shooter, w: Weapon, range: i64) {
    let Some(mut order) = s.order else {
        return;
    };
    let dest = s.dest;
    // Decide first (reads only), then change the unit.
    let mut new_dest: Option<Option<Cell>> = None;
    if let Order::Attack { target } = order {
        if w.target != Some(target) {
            // The ordered target is gone.
            order = Order::Idle;
            new_dest = Some(None);
        }
    }
    match (w.target, order) {
        (_, Order::Hold | Order::Move | Order::Harvest) => {}
        (Some(t), _) => {
            if let Some(aim) = aim_point(state, t, s.pos) {
                if dist2(aim, s.pos) <= range * range {
                    if dest.is_some() {
                        new_dest = Some(None);
                    }
                } else {
                    let comp = state.map.component(s.pos.cell());
                    if let Some(want) = nearest_free(state, aim.cell(), FREE_CELL_SEARCH, comp) {
                        if dest.is_none_or(|d| chebyshev(d, want) > CHASE_SLACK) {
                            new_dest = Some(Some(want));
                        }
                    }
                }
            }
        }
        (None, Order::AttackMove { goal }) => {
            if dest.is_none() {
                if s.pos.cell() == goal {
                    order = Order::Idle;
                } else {
                    new_dest = Some(Some(goal));
                }
            }
        }
        (None, Order::Idle) => {
            if dest.is_some() {
                new_dest = Some(None);
            }
        }
        (None, _) => {}
    }
    if Some(order) == s.order && new_dest.is_none() {
        return;
    }
    if let Ok(mut m) = state.world.get::<&mut Mobile>(s.entity) {
        m.order = order;
        if let Some(d) = new_dest {
            set_dest(&mut m, d);
        }
    }
}
