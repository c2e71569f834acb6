//! The visibility system: moves each entity's sight circle in the fog-of-war counts
//! ([`Vision`], owned by the state) when it changes cell, and removes it when it goes.

use crate::sim::state::{Body, Footprint, Ident, Sight, State};
use crate::sim::vision::eye;
#[cfg(doc)]
use crate::sim::vision::Vision;

/// Moves each entity's sight circle to where it now stands. Addition commutes, so the
/// hecs iteration order does not matter here.
pub fn run(state: &mut State) {
    let vision = &mut state.vision;
    for (ident, body, sight, fp) in state
        .world
        .query_mut::<(&Ident, &Body, &mut Sight, Option<&Footprint>)>()
    {
        let at = eye(body, fp);
        if sight.stamped != Some(at) {
            if let Some(old) = sight.stamped {
                vision.stamp(ident.owner, old, sight.radius, false);
            }
            vision.stamp(ident.owner, at, sight.radius, true);
            sight.stamped = Some(at);
        }
    }
}

/// Removes an entity's sight circle (it died or was sold).
pub fn unstamp(state: &mut State, e: hecs::Entity) {
    let mut q = state.world.query_one::<(&Ident, &mut Sight)>(e);
    if let Ok((ident, sight)) = q.get() {
        if let Some(old) = sight.stamped.take() {
            state.vision.stamp(ident.owner, old, sight.radius, false);
        }
    }
}
