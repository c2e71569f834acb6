//! The view output: per-tick deltas (entities whose view changed, removals with the
//! players who saw them, tiberium changes) and full keyframes.

use events::{EntityView, TiberiumChange, ViewFrame, ViewKind};

use super::state::{Body, Footprint, Harvester, Health, Ident, LastView, State};
use crate::sim::vision::mask_of;

/// How clients see an entity now.
pub fn view_of(state: &State, e: hecs::Entity) -> Option<EntityView> {
    let mut q = state.world.query_one::<(
        &Ident,
        &Body,
        &Health,
        Option<&Harvester>,
        Option<&Footprint>,
    )>(e);
    let (i, b, h, hv, fp) = q.get().ok()?;
    Some(EntityView {
        id: i.id,
        owner: i.owner,
        kind: i.kind,
        pos: b.pos,
        facing: b.facing,
        hp: h.hp,
        max_hp: h.max,
        cargo: hv.map_or(0, |h| h.cargo()),
        visible_to: mask_of(&state.vision, i, b, fp),
    })
}

/// The delta after the tick just run; remembers what was sent.
pub fn delta(state: &mut State, tick: u64) -> ViewFrame {
    let vision = &state.vision;
    let mut entities: Vec<EntityView> = Vec::new();
    for (i, b, h, hv, fp, last) in state.world.query_mut::<(
        &Ident,
        &Body,
        &Health,
        Option<&Harvester>,
        Option<&Footprint>,
        &mut LastView,
    )>() {
        let v = EntityView {
            id: i.id,
            owner: i.owner,
            kind: i.kind,
            pos: b.pos,
            facing: b.facing,
            hp: h.hp,
            max_hp: h.max,
            cargo: hv.map_or(0, |h| h.cargo()),
            visible_to: mask_of(vision, i, b, fp),
        };
        if last.0.as_ref() != Some(&v) {
            last.0 = Some(v.clone());
            entities.push(v);
        }
    }
    // hecs order is arbitrary: the frame lists entities in id order.
    entities.sort_by_key(|v| v.id);
    ViewFrame {
        tick,
        kind: ViewKind::Delta,
        entities,
        removed: std::mem::take(&mut state.removed),
        tiberium: std::mem::take(&mut state.tiberium),
        winner: state.winner,
        attacks: std::mem::take(&mut state.shots),
        deaths: std::mem::take(&mut state.deaths),
    }
}

/// Marks every entity's current view as sent (after a restore).
pub fn remember_all(state: &mut State) {
    let views: Vec<(hecs::Entity, Option<EntityView>)> = state
        .index
        .values()
        .map(|&e| (e, view_of(state, e)))
        .collect();
    for (e, v) in views {
        if let Ok(mut l) = state.world.get::<&mut LastView>(e) {
            l.0 = v;
        }
    }
}

/// Every entity and every cell holding tiberium (cells not listed hold none).
pub fn keyframe(state: &State, tick: u64) -> ViewFrame {
    let entities = state
        .index
        .values()
        .filter_map(|&e| view_of(state, e))
        .collect();
    let map = &state.map;
    let tiberium = (0..map.len())
        .map(|i| map.cell_at(i))
        .filter(|&c| map.bails(c) > 0)
        .map(|c| TiberiumChange {
            cell: c,
            bails: map.bails(c),
            blue: map.is_blue(c),
        })
        .collect();
    ViewFrame {
        tick,
        kind: ViewKind::Keyframe,
        entities,
        removed: Vec::new(),
        tiberium,
        winner: state.winner,
        attacks: Vec::new(),
        deaths: Vec::new(),
    }
}
