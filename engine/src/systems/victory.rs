//! Defeat and victory: a player without buildings is defeated (its remaining units are
//! destroyed); when one player is left standing it wins. A one-player match ends (with no
//! winner) when that player is defeated.

use events::{EntityKind, GameEvent, PlayerId, UnitId};

use super::despawn;
use crate::sim::state::{Ident, State};

pub fn run(state: &mut State) {
    if state.winner.is_some() {
        return;
    }
    let mut has_building = vec![false; state.players.len()];
    for i in state.world.query::<&Ident>().iter() {
        if let EntityKind::Building(_) = i.kind {
            if let Some(k) = state.player_index(i.owner) {
                has_building[k] = true;
            }
        }
    }
    let mut newly: Vec<PlayerId> = Vec::new();
    for (k, p) in state.players.iter_mut().enumerate() {
        if !p.defeated && !has_building[k] {
            p.defeated = true;
            newly.push(p.id);
        }
    }
    for p in &newly {
        state.events.push(GameEvent::PlayerDefeated { player: *p });
        let mut units: Vec<(UnitId, Ident)> = state
            .world
            .query::<&Ident>()
            .iter()
            .filter(|i| i.owner == *p && matches!(i.kind, EntityKind::Unit(_)))
            .map(|i| (i.id, *i))
            .collect();
        // hecs order is arbitrary: destroy in id order.
        units.sort_by_key(|u| u.0);
        for (id, i) in &units {
            state.events.push(GameEvent::EntityDestroyed {
                id: *id,
                owner: i.owner,
                kind: i.kind,
                by: None,
            });
            despawn(state, *id);
        }
    }
    let alive: Vec<PlayerId> = state
        .players
        .iter()
        .filter(|p| !p.defeated)
        .map(|p| p.id)
        .collect();
    let over = if state.players.len() >= 2 {
        alive.len() <= 1
    } else {
        alive.is_empty()
    };
    if over {
        let winner = alive.first().copied();
        state.events.push(GameEvent::MatchWon { winner });
        state.winner = Some(winner);
    }
}
