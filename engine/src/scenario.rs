//! A match's initial state, built deterministically from its `MatchCreated` (its
//! [`Scenario`]): [`initial`] is the one builder the engine service, the replay tool's
//! re-runs and the in-process stack start a match from. Also the benchmark and load
//! scenarios built on it: two armies fighting across a generated map (the engine benches,
//! the performance gate, the lobby's `battle` mode).

use std::sync::Arc;

use events::cmd::AttackMove;
use events::{
    Cell, Command, Envelope, MatchCreated, MatchId, PlayerId, Scenario, Source, UnitId, UnitKind,
};

use crate::map::Map;
use crate::sim::SetupError;
use crate::systems::spawn_unit;
use crate::{Input, Rules, Sim};

/// Ticks run after the armies get their orders, before a scenario is handed out.
pub const WARM_UP_TICKS: usize = 20;
/// Units per attack-move order.
pub const GROUP: usize = 40;
/// Most units per side of a battle scenario: building one steps up to twice this many
/// units through its warm-up, so a `MatchCreated` asking for more is refused.
pub const MAX_BATTLE_UNITS_PER_SIDE: u32 = 500;
/// Ticks a battle has run when its log starts: a first tick, the one that applies the
/// armies' orders, then [`WARM_UP_TICKS`]. The first tick its log holds is this one.
pub const BATTLE_START_TICK: u64 = 2 + WARM_UP_TICKS as u64;

/// The most units per side a battle on a `map_size` map takes: each army starts on its
/// half of the map, at most one unit per two of its cells, and at most
/// [`MAX_BATTLE_UNITS_PER_SIDE`].
pub fn battle_room(map_size: u16) -> u32 {
    (u32::from(map_size) * u32::from(map_size) / 4).min(MAX_BATTLE_UNITS_PER_SIDE)
}

/// Checks a match's scenario against the match (cheap, nothing is built): a battle's
/// armies must fit its map ([`battle_room`]) and be players 0 and 1.
pub fn check(created: &MatchCreated) -> Result<(), SetupError> {
    match created.scenario {
        Scenario::Skirmish => Ok(()),
        Scenario::Battle { units_per_side } => {
            let size = created.map.size;
            let room = battle_room(size);
            if !(1..=room).contains(&units_per_side) {
                return Err(SetupError::BattleSize {
                    size,
                    room,
                    units: units_per_side,
                });
            }
            let has = |p: u8| created.players.iter().any(|s| s.id == PlayerId(p));
            if !(has(0) && has(1)) {
                return Err(SetupError::BattlePlayers);
            }
            Ok(())
        }
    }
}

/// The first tick a match's log holds (the tick after the state [`initial`] builds): 0,
/// or [`BATTLE_START_TICK`] for a battle.
pub fn first_tick(created: &MatchCreated) -> u64 {
    match created.scenario {
        Scenario::Skirmish => 0,
        Scenario::Battle { .. } => BATTLE_START_TICK,
    }
}

/// The state a match starts from, built from its `MatchCreated` alone: a new skirmish, or
/// a battle ([`battle_for`] with its units per side) run to just before
/// [`first_tick`]. Deterministic: the engine service (a match with no snapshot), the
/// replay tool's re-runs and the in-process stack all start from it and agree.
pub fn initial(rules: Arc<Rules>, created: &MatchCreated) -> Result<Sim, SetupError> {
    check(created)?;
    match created.scenario {
        Scenario::Skirmish => Sim::new(rules, created),
        Scenario::Battle { units_per_side } => {
            battle_for(rules, created, 2 * units_per_side as usize)
        }
    }
}

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

/// The battle of [`battle`] for a given match (its map, seed and first two players), with
/// `units` in all: what [`initial`] builds for a [`Scenario::Battle`] (which checks its
/// size first). Its next tick is [`BATTLE_START_TICK`].
pub fn battle_for(
    rules: Arc<Rules>,
    created: &MatchCreated,
    units: usize,
) -> Result<Sim, SetupError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn battle_setup(units_per_side: u32, size: u16) -> MatchCreated {
        MatchCreated {
            scenario: Scenario::Battle { units_per_side },
            ..setup(size)
        }
    }

    #[test]
    fn a_skirmish_starts_at_tick_zero() {
        let created = setup(32);
        let sim = initial(Arc::new(Rules::standard()), &created).expect("skirmish");
        assert_eq!(sim.next_tick(), first_tick(&created));
        assert_eq!(sim.next_tick(), 0);
    }

    #[test]
    fn a_battle_is_built_the_same_way_every_time_up_to_its_first_tick() {
        let created = battle_setup(12, 32);
        let rules = Arc::new(Rules::standard());
        let a = initial(rules.clone(), &created).expect("battle");
        let b = initial(rules.clone(), &created).expect("battle");
        assert_eq!(a.next_tick(), first_tick(&created));
        assert_eq!(a.hash(), b.hash());
        assert_eq!(
            a.hash(),
            battle_for(rules, &created, 24).expect("battle").hash()
        );
        let units = a
            .entities()
            .iter()
            .filter(|e| matches!(e.kind, events::EntityKind::Unit(_)))
            .count();
        let start_units = 2 * Rules::standard().economy.start_units.len();
        assert_eq!(units, 24 + start_units);
    }

    #[test]
    fn a_battle_too_big_for_its_map_or_empty_is_refused() {
        let rules = Arc::new(Rules::standard());
        assert_eq!(battle_room(32), 256);
        assert_eq!(battle_room(128), MAX_BATTLE_UNITS_PER_SIDE);
        for (units, size) in [(0, 64), (257, 32), (MAX_BATTLE_UNITS_PER_SIDE + 1, 128)] {
            let err = initial(rules.clone(), &battle_setup(units, size))
                .err()
                .expect("refused");
            assert!(
                matches!(err, SetupError::BattleSize { .. }),
                "{units} on {size}: {err}"
            );
        }
        let mut one_army = battle_setup(10, 32);
        one_army.players.truncate(1);
        assert!(matches!(
            initial(rules, &one_army),
            Err(SetupError::BattlePlayers)
        ));
    }
}
