//! Tiberium growth: every `regrow_ms` each cell holding at least one bail gains one (up to
//! `max_bails`); every `spread_ms` each full cell seeds one free neighbouring clear cell
//! with chance 1 in `spread_chance_one_in`, drawn from the match RNG.

use events::{Cell, GameEvent, TiberiumChange};

use crate::map::Terrain;
use crate::sim::state::State;

fn changed(state: &mut State, cell: Cell, bails: u8, blue: bool) {
    state
        .events
        .push(GameEvent::TiberiumChanged { cell, bails, blue });
    state.tiberium.push(TiberiumChange { cell, bails, blue });
}

pub fn run(state: &mut State) {
    let t = &state.rules.tiberium;
    let (max, chance) = (t.max_bails, t.spread_chance_one_in);
    let regrow = u64::from(state.rules.ticks(t.regrow_ms));
    let spread = u64::from(state.rules.ticks(t.spread_ms));
    let tick = state.tick;
    if tick == 0 {
        return;
    }
    if regrow > 0 && tick.is_multiple_of(regrow) {
        // Field order, then each field's cell order: stable.
        let cells: Vec<Cell> = state
            .map
            .fields
            .iter()
            .flat_map(|f| f.cells.iter().copied())
            .collect();
        for c in cells {
            let b = state.map.bails(c);
            if b >= 1 && b < max {
                let blue = state.map.is_blue(c);
                state.map.set_bails(c, b + 1, blue);
                changed(state, c, b + 1, blue);
            }
        }
    }
    if spread > 0 && tick.is_multiple_of(spread) {
        let full: Vec<Cell> = state
            .map
            .fields
            .iter()
            .flat_map(|f| f.cells.iter().copied())
            .filter(|&c| state.map.bails(c) >= max)
            .collect();
        for c in full {
            if !state.rng.one_in(chance) {
                continue;
            }
            let free: Vec<Cell> = state
                .map
                .neighbours8(c)
                .filter(|&n| {
                    state.map.terrain(n) == Terrain::Clear && state.blocked[state.map.index(n)] == 0
                })
                .collect();
            if free.is_empty() {
                continue;
            }
            let n = free[state.rng.below(free.len() as u32) as usize];
            let blue = state.map.is_blue(c);
            state.map.set_bails(n, 1, blue);
            changed(state, n, 1, blue);
        }
    }
}
