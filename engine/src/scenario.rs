//! Benchmark and load scenarios built on the public simulation API: two armies fighting
//! across a generated map. Used by the engine benches and the performance gate.

use std::sync::Arc;

use events::cmd::AttackMove;
use events::{Cell, Command, Envelope, MatchCreated, MatchId, PlayerId, Source, UnitId, UnitKind};

use crate::map::Map;
use crate::systems::spawn_unit;
use crate::{Input, Rules, Sim};

/// Ticks run after the armies get their orders, before a scenario is handed out.
pub const WARM_UP_TICKS: usize = 20;
/// Units per attack-move order.
pub const GROUP: usize = 40;

/// A two-player match on a generated map of this size.
pub fn setup(size: u16) -> MatchCreated {
    MatchCreated::humans(
        MatchId::new("bench").expect("a valid match id"),
        2,
        size,
        42,
    )
}

/// Two armies of `units / 2` each, one per half of the map, attack-moving at each other in
/// groups of [`GROUP`], warmed up for [`WARM_UP_TICKS`].
pub fn battle(size: u16, units: usize) -> Sim {
    match battle_for(Arc::new(Rules::standard()), &setup(size), units) {
        Ok(sim) => sim,
        // The generator takes every size 32-256; callers pass sizes in that range.
        Err(e) => panic!("battle map of size {size}: {e}"),
    }
}

/// The battle of [`battle`] for a given match (its map, seed and first two players), as
/// the lobby's battle mode starts it: the caller writes the simulation's snapshot before
/// the match's `MatchCreated`, and the engine's recovery restores it.
pub fn battle_for(
    rules: Arc<Rules>,
    created: &MatchCreated,
    units: usize,
) -> Result<Sim, crate::sim::SetupError> {
    let mut sim = Sim::new(rules, created)?;
    let size = created.map.size;
    let match_id = created.match_id.clone();
    sim.step(&[]);
    let map = sim.map().clone();
    let main = map.component(map.starts[0]);
    let kinds = [
        UnitKind::Rifleman,
        UnitKind::LightTank,
        UnitKind::RocketSoldier,
        UnitKind::MediumTank,
    ];
    let free: Vec<bool> = {
        let st = sim.state_mut();
        (0..map.len()).map(|i| st.is_free(map.cell_at(i))).collect()
    };
    let half = size / 2;
    let mut armies: [Vec<UnitId>; 2] = [Vec::new(), Vec::new()];
    for (side, army) in armies.iter_mut().enumerate() {
        let x0 = if side == 0 { 0 } else { half };
        let cells: Vec<Cell> = (0..size)
            .flat_map(|y| (x0..x0 + half).map(move |x| Cell::new(x, y)))
            .filter(|&c| map.component(c) == main && free[map.index(c)])
            .collect();
        if cells.is_empty() {
            continue;
        }
        for k in 0..units / 2 {
            let c = cells[(k * 7919) % cells.len()];
            let id = spawn_unit(
                sim.state_mut(),
                PlayerId(side as u8),
                kinds[k % kinds.len()],
                c,
            );
            army.push(id);
        }
    }
    let mut inputs = Vec::new();
    for (side, army) in armies.iter().enumerate() {
        for (g, chunk) in army.chunks(GROUP).enumerate() {
            let y = (g as u16 * 7) % size;
            let x = if side == 0 { size * 3 / 4 } else { size / 4 };
            let Some(to) = near_in(&map, Cell::new(x, y), main) else {
                continue;
            };
            let mut envelope = Envelope::new(
                match_id.clone(),
                Source::Player(PlayerId(side as u8)),
                Command::AttackMove(AttackMove {
                    units: chunk.to_vec(),
                    to,
                }),
            );
            envelope.id = uuid::Uuid::from_u128(inputs.len() as u128 + 1);
            inputs.push(Input {
                stream_id: format!("1-{}", inputs.len()),
                envelope,
            });
        }
    }
    sim.step(&inputs);
    for _ in 0..WARM_UP_TICKS {
        sim.step(&[]);
    }
    Ok(sim)
}

/// The cell nearest to `c` (scanning outwards) in component `comp`.
fn near_in(map: &Map, c: Cell, comp: u32) -> Option<Cell> {
    for r in 0..map.size as i32 {
        for dy in -r..=r {
            for dx in -r..=r {
                if let Some(n) = map.offset(c, dx, dy) {
                    if map.component(n) == comp {
                        return Some(n);
                    }
                }
            }
        }
    }
    None
}
