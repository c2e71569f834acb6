//! Combat: reload timers, shots at targets in range (damage = weapon damage × warhead
//! percentage against the target's armor / 100, per shot), attack notices, deaths, and
//! the shots and deaths of the view (for drawing; not hashed).

use events::{
    Armor, DeathView, EntityKind, GameEvent, PlayerId, Pos, ShotView, UnitId, UnitKind, Warhead,
};

use super::{despawn, targeting::aim_point, weapon_rules};
use crate::fixed::{dist2, facing};
use crate::sim::state::{Body, Footprint, Health, Ident, State, Weapon};
use crate::sim::vision::mask_of;

/// One shot's effect, collected before any damage lands so that every shooter of a tick
/// sees the same world.
struct Hit {
    target: UnitId,
    damage: u32,
    by: PlayerId,
    attacker: UnitId,
    warhead: Warhead,
}

/// Damage one volley of a weapon does to an armor class.
pub fn volley_damage(state: &State, kind: EntityKind, armor: Armor) -> u32 {
    weapon_rules(state, kind).map_or(0, |w| {
        w.damage * state.rules.warhead_pct(w.warhead, armor) / 100 * w.shots.max(1)
    })
}

/// The armor class of an entity kind.
pub fn armor_of(state: &State, kind: EntityKind) -> Armor {
    match kind {
        EntityKind::Unit(u) => state.rules.unit(u).armor,
        EntityKind::Building(_) => Armor::Building,
    }
}

pub fn run(state: &mut State) {
    let mut shooters: Vec<(hecs::Entity, Ident, Pos, Weapon)> = state
        .world
        .query::<(hecs::Entity, &Ident, &Body, &Weapon)>()
        .iter()
        .map(|(e, i, b, w)| (e, *i, b.pos, *w))
        .collect();
    // hecs order is arbitrary: shots are collected in id order.
    shooters.sort_by_key(|s| s.1.id);
    let mut hits: Vec<Hit> = Vec::new();
    for (e, ident, pos, mut w) in shooters {
        let Some(wr) = weapon_rules(state, ident.kind) else {
            continue;
        };
        let (range, reload_ticks) = (wr.range_fixed(), state.rules.ticks(wr.reload_ms));
        let before = w;
        w.reload = w.reload.saturating_sub(1);
        let mut aim_at = None;
        if let Some(t) = w.target {
            if let (Some(aim), Some(ti)) = (aim_point(state, t, pos), state.ident(t)) {
                if w.reload == 0 && dist2(aim, pos) <= range * range {
                    let damage = volley_damage(state, ident.kind, armor_of(state, ti.kind));
                    hits.push(Hit {
                        target: t,
                        damage,
                        by: ident.owner,
                        attacker: ident.id,
                        warhead: wr.warhead,
                    });
                    // Seen by whoever sees either end (owners always see their own).
                    let vision = &state.vision;
                    let seen = vision.mask(pos.cell())
                        | vision.mask(aim.cell())
                        | State::bit(ident.owner)
                        | State::bit(ti.owner);
                    state.shots.push(ShotView {
                        attacker: ident.id,
                        kind: ident.kind,
                        target: t,
                        warhead: wr.warhead,
                        from: pos,
                        to: aim,
                        visible_to: seen,
                    });
                    w.reload = reload_ticks;
                    aim_at = Some(aim);
                }
            }
        }
        if w != before {
            if let Ok(mut wc) = state.world.get::<&mut Weapon>(e) {
                *wc = w;
            }
        }
        if let Some(aim) = aim_at {
            if let Ok(mut b) = state.world.get::<&mut Body>(e) {
                if let Some(f) = facing(aim.x - b.pos.x, aim.y - b.pos.y) {
                    b.facing = f;
                }
            }
        }
    }
    apply_hits(state, hits);
}

fn apply_hits(state: &mut State, hits: Vec<Hit>) {
    // Attack notices once per victim per tick, deaths in the order they happened.
    let mut noticed: Vec<UnitId> = Vec::new();
    let mut dead: Vec<(UnitId, PlayerId, EntityKind, PlayerId)> = Vec::new();
    let mut deaths: Vec<DeathView> = Vec::new();
    for h in hits {
        let Some(e) = state.entity(h.target) else {
            continue;
        };
        let Ok(ident) = state.world.get::<&Ident>(e).map(|i| *i) else {
            continue;
        };
        let Ok(mut hp) = state.world.get::<&mut Health>(e) else {
            continue;
        };
        if hp.hp == 0 {
            continue;
        }
        hp.hp = hp.hp.saturating_sub(h.damage);
        let died = hp.hp == 0;
        drop(hp);
        if !noticed.contains(&h.target) {
            noticed.push(h.target);
            match ident.kind {
                EntityKind::Unit(UnitKind::Harvester) => {
                    state.events.push(GameEvent::HarvesterAttacked {
                        unit: h.target,
                        owner: ident.owner,
                        by: Some(h.by),
                    })
                }
                EntityKind::Building(_) => state.events.push(GameEvent::BuildingAttacked {
                    id: h.target,
                    owner: ident.owner,
                    by: Some(h.by),
                }),
                EntityKind::Unit(_) => {}
            }
        }
        if died {
            dead.push((h.target, ident.owner, ident.kind, h.by));
            let mut q = state.world.query_one::<(&Body, Option<&Footprint>)>(e);
            if let Ok((body, fp)) = q.get() {
                deaths.push(DeathView {
                    id: h.target,
                    owner: ident.owner,
                    kind: ident.kind,
                    pos: body.pos,
                    by: h.attacker,
                    warhead: h.warhead,
                    visible_to: mask_of(&state.vision, &ident, body, fp),
                });
            }
        }
    }
    state.deaths.append(&mut deaths);
    for (id, owner, kind, by) in dead {
        state.events.push(GameEvent::EntityDestroyed {
            id,
            owner,
            kind,
            by: Some(by),
        });
        despawn(state, id);
    }
}
