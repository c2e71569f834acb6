//! Harvest physics: a harvester loads one bail per `load_ms_per_bail` while standing on a
//! cell with bails, moves on to the nearest cell of the same field when one runs dry,
//! stops when full; at a refinery one harvester docks at a time (the rest queue) and
//! unloads one bail per `unload_ms_per_bail`, paid per bail.

use events::{Cell, GameEvent, PlayerId, TiberiumChange, UnitId};

use super::{dock_cell, nearest_refinery, release_harvester, set_dest};
use crate::fixed::cell_dist2;
use crate::sim::state::{Body, Dock, Footprint, Harvester, Ident, Job, Mobile, Order, State};

/// The cell of a field with bails nearest to `from` (squared distance, then field order).
pub fn next_cell(state: &State, field: u16, from: Cell) -> Option<Cell> {
    let f = state.map.field(field)?;
    f.cells
        .iter()
        .copied()
        .filter(|&c| state.map.bails(c) > 0)
        .min_by_key(|&c| cell_dist2(c, from))
}

/// Stops a harvester's job and tells the economy it is idle.
pub fn go_idle(state: &mut State, unit: UnitId) {
    release_harvester(state, unit);
    let Some(e) = state.entity(unit) else {
        return;
    };
    let mut q = state
        .world
        .query_one::<(&Ident, &Body, &mut Mobile, &mut Harvester)>(e);
    let Ok((ident, body, m, h)) = q.get() else {
        return;
    };
    h.job = Job::Idle;
    if m.order == Order::Harvest {
        m.order = Order::Idle;
        set_dest(m, None);
    }
    state.events.push(GameEvent::HarvesterIdle {
        unit,
        owner: ident.owner,
        at: body.pos.cell(),
    });
}

/// Sends a harvester to a field (the cell with bails nearest to `at`); idle if the field
/// is exhausted or `at` is no field.
pub fn start_harvest(state: &mut State, unit: UnitId, at: Cell) {
    release_harvester(state, unit);
    let target = state
        .map
        .field_of(at)
        .and_then(|f| next_cell(state, f, at).map(|c| (f, c)));
    let Some((field, cell)) = target else {
        go_idle(state, unit);
        return;
    };
    set_job(state, unit, Job::Going { field, cell }, Some(cell));
}

/// Sends a harvester to its owner's nearest refinery; false if it has none.
pub fn start_return(state: &mut State, unit: UnitId) -> bool {
    release_harvester(state, unit);
    let Some(e) = state.entity(unit) else {
        return false;
    };
    let Some((owner, pos)) = state
        .world
        .query_one::<(&Ident, &Body)>(e)
        .get()
        .ok()
        .map(|(i, b)| (i.owner, b.pos))
    else {
        return false;
    };
    let Some((refinery, dock)) = nearest_refinery(state, owner, pos) else {
        return false;
    };
    set_job(state, unit, Job::Returning { refinery }, Some(dock));
    true
}

fn set_job(state: &mut State, unit: UnitId, job: Job, dest: Option<Cell>) {
    let Some(e) = state.entity(unit) else {
        return;
    };
    {
        let mut q = state.world.query_one::<(&mut Mobile, &mut Harvester)>(e);
        if let Ok((m, h)) = q.get() {
            h.job = job;
            m.order = Order::Harvest;
            if m.dest != dest || dest.is_none() {
                set_dest(m, dest);
            }
        }
    }
}

pub fn run(state: &mut State) {
    let mut harvesters: Vec<(UnitId, hecs::Entity)> = state
        .world
        .query::<(hecs::Entity, &Ident, &Harvester)>()
        .iter()
        .map(|(e, i, _)| (i.id, e))
        .collect();
    // hecs order is arbitrary: act in id order.
    harvesters.sort_by_key(|h| h.0);
    let load = state.rules.ticks(state.rules.harvest.load_ms_per_bail);
    let unload = state.rules.ticks(state.rules.harvest.unload_ms_per_bail);
    let capacity = state.rules.harvest.capacity_bails;
    for (id, e) in harvesters {
        let Some((owner, cell, standing, h)) = state
            .world
            .query_one::<(&Ident, &Body, &Mobile, &Harvester)>(e)
            .get()
            .ok()
            .map(|(i, b, m, h)| (i.owner, b.pos.cell(), m.dest.is_none(), *h))
        else {
            continue;
        };
        match h.job {
            Job::Idle => {}
            Job::Going { field, cell: goal } => {
                if state.map.bails(goal) == 0 {
                    // Someone else emptied it on the way.
                    match next_cell(state, field, goal) {
                        Some(c) => set_job(state, id, Job::Going { field, cell: c }, Some(c)),
                        None => go_idle(state, id),
                    }
                } else if standing && cell == goal {
                    put(state, e, Job::Loading { field, cell: goal }, load);
                } else if standing {
                    // Stopped short (blocked): try again from here.
                    set_job(state, id, h.job, Some(goal));
                }
            }
            Job::Loading { field, cell: at } => {
                load_tick(state, id, e, owner, field, at, h, load, capacity);
            }
            Job::Returning { refinery } => {
                let Some(dock) = refinery_dock(state, refinery) else {
                    if !start_return(state, id) {
                        go_idle(state, id);
                    }
                    continue;
                };
                if standing && cell == dock {
                    arrive_at_dock(state, id, e, refinery, unload);
                } else if standing {
                    set_job(state, id, h.job, Some(dock));
                }
            }
            Job::Queued { refinery } => {
                let Some(re) = state.entity(refinery) else {
                    go_idle(state, id);
                    continue;
                };
                let my_turn = state
                    .world
                    .get::<&Dock>(re)
                    .is_ok_and(|d| d.docked.is_none() && d.queue.front() == Some(&id));
                if my_turn {
                    if let Ok(mut d) = state.world.get::<&mut Dock>(re) {
                        d.queue.pop_front();
                        d.docked = Some(id);
                    }
                    let dock = refinery_dock(state, refinery);
                    set_job(state, id, Job::Docked { refinery }, dock);
                    put(state, e, Job::Docked { refinery }, unload);
                }
            }
            Job::Docked { refinery } => {
                let Some(dock) = refinery_dock(state, refinery) else {
                    go_idle(state, id);
                    continue;
                };
                if cell != dock {
                    if standing {
                        set_job(state, id, h.job, Some(dock));
                    }
                    continue;
                }
                unload_tick(state, id, e, owner, refinery, h, unload);
            }
        }
    }
}

fn refinery_dock(state: &State, refinery: UnitId) -> Option<Cell> {
    let e = state.entity(refinery)?;
    let fp = *state.world.get::<&Footprint>(e).ok()?;
    dock_cell(state, fp)
}

/// Sets a harvester's job and timer.
fn put(state: &mut State, e: hecs::Entity, job: Job, timer: u32) {
    if let Ok(mut h) = state.world.get::<&mut Harvester>(e) {
        h.job = job;
        h.timer = timer;
    }
}

#[allow(clippy::too_many_arguments)]
fn load_tick(
    state: &mut State,
    id: UnitId,
    e: hecs::Entity,
    owner: PlayerId,
    field: u16,
    at: Cell,
    h: Harvester,
    load: u32,
    capacity: u32,
) {
    if h.cargo() >= capacity {
        full(state, id, owner);
        return;
    }
    let bails = state.map.bails(at);
    if bails == 0 {
        match next_cell(state, field, at) {
            Some(c) => set_job(state, id, Job::Going { field, cell: c }, Some(c)),
            None => go_idle(state, id),
        }
        return;
    }
    let timer = h.timer.saturating_sub(1);
    if timer > 0 {
        put(state, e, h.job, timer);
        return;
    }
    let blue = state.map.is_blue(at);
    state.map.set_bails(at, bails - 1, blue);
    state.events.push(GameEvent::TiberiumChanged {
        cell: at,
        bails: bails - 1,
        blue,
    });
    state.tiberium.push(TiberiumChange {
        cell: at,
        bails: bails - 1,
        blue,
    });
    let cargo = if let Ok(mut hc) = state.world.get::<&mut Harvester>(e) {
        if blue {
            hc.blue += 1;
        } else {
            hc.green += 1;
        }
        hc.timer = load;
        hc.cargo()
    } else {
        return;
    };
    if cargo >= capacity {
        full(state, id, owner);
    }
}

fn full(state: &mut State, id: UnitId, owner: PlayerId) {
    state
        .events
        .push(GameEvent::HarvesterFull { unit: id, owner });
    if let Some(e) = state.entity(id) {
        {
            let mut q = state.world.query_one::<(&mut Mobile, &mut Harvester)>(e);
            if let Ok((m, h)) = q.get() {
                h.job = Job::Idle;
                m.order = Order::Idle;
                set_dest(m, None);
            }
        }
    }
}

fn arrive_at_dock(state: &mut State, id: UnitId, e: hecs::Entity, refinery: UnitId, unload: u32) {
    let Some(re) = state.entity(refinery) else {
        return;
    };
    let docked = match state.world.get::<&mut Dock>(re) {
        Ok(mut d) => {
            if d.docked.is_none() && d.queue.is_empty() {
                d.docked = Some(id);
                true
            } else {
                if !d.queue.contains(&id) {
                    d.queue.push_back(id);
                }
                false
            }
        }
        Err(_) => return,
    };
    if docked {
        put(state, e, Job::Docked { refinery }, unload);
    } else {
        put(state, e, Job::Queued { refinery }, 0);
    }
}

fn unload_tick(
    state: &mut State,
    id: UnitId,
    e: hecs::Entity,
    owner: PlayerId,
    refinery: UnitId,
    h: Harvester,
    unload: u32,
) {
    if h.cargo() == 0 {
        go_idle(state, id);
        return;
    }
    let timer = h.timer.saturating_sub(1);
    if timer > 0 {
        put(state, e, h.job, timer);
        return;
    }
    // Blue first: the most valuable cargo is paid first should the harvester die.
    let credits = if let Ok(mut hc) = state.world.get::<&mut Harvester>(e) {
        hc.timer = unload;
        if hc.blue > 0 {
            hc.blue -= 1;
            state.rules.tiberium.blue_bail_credits
        } else {
            hc.green -= 1;
            state.rules.tiberium.green_bail_credits
        }
    } else {
        return;
    };
    state.events.push(GameEvent::HarvesterUnloaded {
        unit: id,
        owner,
        refinery,
        bails: 1,
        credits,
    });
    if h.cargo() == 1 {
        go_idle(state, id);
    }
}
