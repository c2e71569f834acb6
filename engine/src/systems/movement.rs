//! Movement: queue path searches, serve them within a per-tick budget (fair round-robin
//! between players), step units along their paths, repath when blocked, and push units
//! apart so they do not stack.

use events::{Cell, PlayerId, Pos, UnitId};

use super::{
    harvest, nearest_free, set_dest, ARRIVE_RADIUS, FREE_CELL_SEARCH, GIVE_UP_AFTER, MAX_PUSH,
    PATH_NODES_PER_TICK, PATH_REQUESTS_PER_TICK, REPATH_AFTER, SEPARATION, SETTLE_AFTER,
};
use crate::fixed::{chebyshev, facing, isqrt};
use crate::path::{can_step, search};
use crate::sim::spatial;
use crate::sim::state::{Body, Harvester, Ident, Job, Mobile, Order, PathRequest, State};

pub fn run(state: &mut State) {
    enqueue_individual(state);
    serve_paths(state);
    step(state);
    separate(state);
}

/// Adds a path request to its player's queue.
pub fn enqueue(state: &mut State, owner: PlayerId, req: PathRequest) {
    if let Some(k) = state.player_index(owner) {
        if let Some(q) = state.paths.queues.get_mut(k) {
            q.push_back(req);
        }
    }
}

/// Every unit that has somewhere to go but no path and no pending search asks for one.
fn enqueue_individual(state: &mut State) {
    let mut reqs: Vec<(UnitId, PlayerId, u32, Cell)> = Vec::new();
    for (ident, m) in state.world.query_mut::<(&Ident, &mut Mobile)>() {
        if let Some(d) = m.dest {
            if m.path.is_empty() && !m.waiting {
                m.waiting = true;
                reqs.push((ident.id, ident.owner, m.token, d));
            }
        }
    }
    // hecs order is arbitrary: queue order must not be.
    reqs.sort_by_key(|r| r.0);
    for (id, owner, token, goal) in reqs {
        enqueue(
            state,
            owner,
            PathRequest {
                units: vec![(id, token)],
                goal,
            },
        );
    }
}

/// Serves queued searches round-robin across players until the request or node budget
/// for this tick is spent.
fn serve_paths(state: &mut State) {
    let n = state.paths.queues.len();
    if n == 0 {
        return;
    }
    let (mut served, mut nodes) = (0usize, 0usize);
    let mut k = state.paths.next % n;
    while served < PATH_REQUESTS_PER_TICK && nodes < PATH_NODES_PER_TICK {
        let Some(q) = (0..n)
            .map(|j| (k + j) % n)
            .find(|&q| !state.paths.queues[q].is_empty())
        else {
            break;
        };
        k = (q + 1) % n;
        let Some(req) = state.paths.queues[q].pop_front() else {
            break;
        };
        if let Some(cost) = serve(state, req) {
            served += 1;
            nodes += cost;
        }
    }
    state.paths.next = k;
}

/// Runs one search for a request's still-interested units; `None` if none is left.
fn serve(state: &mut State, req: PathRequest) -> Option<usize> {
    // (id, entity, own destination, current cell) of units still waiting on this answer.
    let units: Vec<(UnitId, hecs::Entity, Cell, Cell)> = req
        .units
        .iter()
        .filter_map(|&(id, token)| {
            let e = state.entity(id)?;
            let mut q = state.world.query_one::<(&Mobile, &Body)>(e);
            let (m, b) = q.get().ok()?;
            (m.token == token && m.waiting)
                .then_some(())
                .and(m.dest)
                .map(|d| (id, e, d, b.pos.cell()))
        })
        .collect();
    let &(_, _, _, from) = units.first()?;
    // A building may have been placed on the goal since the order.
    let goal = if state.is_free(req.goal) {
        Some(req.goal)
    } else {
        nearest_free(state, req.goal, FREE_CELL_SEARCH, state.map.component(from))
    };
    let (result, cost) = match goal {
        Some(g) => search(&state.map, &state.blocked, from, g, state.map.len()),
        None => (Err(crate::path::PathError::Unreachable(req.goal)), 0),
    };
    match (result, goal) {
        (Ok(path), Some(goal)) => {
            for &(_, e, own, _) in &units {
                let own = if own == req.goal { goal } else { own };
                let p = tailor(&path, goal, own);
                if let Ok(mut m) = state.world.get::<&mut Mobile>(e) {
                    m.dest = Some(own);
                    let first = u32::from(p.len() > 1);
                    m.set_path(p, first);
                    m.waiting = false;
                }
            }
        }
        _ => {
            for &(id, e, _, _) in &units {
                fail(state, id, e);
            }
        }
    }
    Some(cost)
}

/// The shared path for one member of a group: the leader's path up to the point where it
/// reaches the member's formation slot's distance from the goal, then the slot.
fn tailor(path: &[Cell], goal: Cell, own: Cell) -> Vec<Cell> {
    if own == goal {
        return path.to_vec();
    }
    let keep = chebyshev(own, goal);
    let mut end = path.len();
    while end > 1 && chebyshev(path[end - 1], goal) <= keep {
        end -= 1;
    }
    let mut p = path[..end].to_vec();
    p.push(own);
    p
}

/// No path: the unit stops; a harvester reports idle to the economy.
fn fail(state: &mut State, id: UnitId, e: hecs::Entity) {
    let harvesting = state
        .world
        .get::<&Harvester>(e)
        .is_ok_and(|h| h.job != Job::Idle);
    if let Ok(mut m) = state.world.get::<&mut Mobile>(e) {
        set_dest(&mut m, None);
        if matches!(m.order, Order::Move | Order::AttackMove { .. }) {
            m.order = Order::Idle;
        }
    }
    if harvesting {
        harvest::go_idle(state, id);
    }
}

/// Steps every moving unit towards its next waypoint. A unit's step reads only its own
/// state and the static grids, so hecs order does not matter.
///
/// Intermediate waypoints count as passed once the unit is inside their cell (from there
/// the straight line to the next one never cuts a corner); the last one once the unit is
/// within [`ARRIVE_RADIUS`] of its centre, or inside its cell and no longer getting closer
/// (another unit stands there).
fn step(state: &mut State) {
    let map = &state.map;
    let blocked = &state.blocked;
    let max = i64::from(map.size) * i64::from(events::CELL) - 1;
    for (body, m) in state.world.query_mut::<(&mut Body, &mut Mobile)>() {
        if m.dest.is_none() || m.path.is_empty() {
            continue;
        }
        // Skip waypoints already reached.
        while (m.step as usize) + 1 < m.path.len() && body.pos.cell() == m.path[m.step as usize] {
            m.step += 1;
            m.last_dist = u32::MAX;
        }
        let Some(&wp) = m.path.get(m.step as usize) else {
            arrive(m);
            continue;
        };
        let last = m.step as usize + 1 >= m.path.len();
        let target = wp.center();
        let (dx, dy) = (
            i64::from(target.x) - i64::from(body.pos.x),
            i64::from(target.y) - i64::from(body.pos.y),
        );
        let dist = isqrt((dx * dx + dy * dy) as u64) as i64;
        if last && dist <= ARRIVE_RADIUS {
            arrive(m);
            continue;
        }
        // Progress detection: separation or a blocker may hold a unit in place.
        if dist >= i64::from(m.last_dist) {
            m.stuck = m.stuck.saturating_add(1);
        } else {
            m.stuck = 0;
        }
        m.last_dist = dist.min(i64::from(u32::MAX - 1)) as u32;
        if last && body.pos.cell() == wp && m.stuck >= SETTLE_AFTER {
            arrive(m);
            continue;
        }
        if m.stuck >= GIVE_UP_AFTER {
            set_dest(m, None);
            if matches!(m.order, Order::Move | Order::AttackMove { .. }) {
                m.order = Order::Idle;
            }
            continue;
        }
        let speed = i64::from(m.speed);
        let next = if dist <= speed {
            target
        } else {
            Pos::new(
                (i64::from(body.pos.x) + dx * speed / dist).clamp(0, max) as i32,
                (i64::from(body.pos.y) + dy * speed / dist).clamp(0, max) as i32,
            )
        };
        let (a, b) = (body.pos.cell(), next.cell());
        if a != b && !can_step(map, blocked, a, b) {
            // Blocked by terrain or a building (not by a crowd, which a new path would
            // not help with): ask for a new path from here now and then; the movement
            // phase of the next tick queues it.
            if m.stuck > 0 && m.stuck.is_multiple_of(REPATH_AFTER) {
                let stuck = m.stuck;
                m.clear_path();
                m.stuck = stuck;
                m.waiting = false;
            }
            continue;
        }
        if let Some(f) = facing(dx as i32, dy as i32) {
            body.facing = f;
        }
        body.pos = next;
        if last && next == target {
            arrive(m);
        }
    }
}

fn arrive(m: &mut Mobile) {
    m.dest = None;
    m.clear_path();
    m.waiting = false;
    if matches!(m.order, Order::Move | Order::AttackMove { .. }) {
        m.order = Order::Idle;
    }
}

/// Pushes overlapping units apart. Pushes are computed from one snapshot of positions
/// (in id order) and applied afterwards, so the result does not depend on order.
fn separate(state: &mut State) {
    spatial::rebuild(state);
    let sep2 = i64::from(SEPARATION) * i64::from(SEPARATION);
    let mut pushes: Vec<(hecs::Entity, i32, i32)> = Vec::new();
    for e in &state.spatial.units {
        let (mut px, mut py) = (0i64, 0i64);
        state.spatial.for_each_near(e.pos.cell(), 1, |o| {
            if o.id == e.id {
                return;
            }
            let dx = i64::from(e.pos.x) - i64::from(o.pos.x);
            let dy = i64::from(e.pos.y) - i64::from(o.pos.y);
            let d2 = dx * dx + dy * dy;
            if d2 >= sep2 {
                return;
            }
            if d2 == 0 {
                // Exactly on top of each other: split along x by id.
                px += if e.id < o.id { -1 } else { 1 } * i64::from(MAX_PUSH);
                return;
            }
            let d = isqrt(d2 as u64) as i64;
            let f = (i64::from(SEPARATION) - d) / 2;
            px += dx * f / d;
            py += dy * f / d;
        });
        let cap = i64::from(MAX_PUSH);
        let (px, py) = (px.clamp(-cap, cap) as i32, py.clamp(-cap, cap) as i32);
        if px != 0 || py != 0 {
            pushes.push((e.entity, px, py));
        }
    }
    let max = i32::from(state.map.size) * events::CELL - 1;
    for (e, px, py) in pushes {
        let mut q = state
            .world
            .query_one::<(&mut Body, &Mobile, Option<&Harvester>)>(e);
        let Ok((body, m, h)) = q.get() else {
            continue;
        };
        // Loading and unloading harvesters hold their cell; held units hold theirs.
        if m.order == Order::Hold
            || h.is_some_and(|h| matches!(h.job, Job::Loading { .. } | Job::Docked { .. }))
        {
            continue;
        }
        let from = body.pos;
        for (ddx, ddy) in [(px, py), (px, 0), (0, py)] {
            let to = Pos::new((from.x + ddx).clamp(0, max), (from.y + ddy).clamp(0, max));
            let (a, b) = (from.cell(), to.cell());
            if a == b || can_step(&state.map, &state.blocked, a, b) {
                body.pos = to;
                break;
            }
        }
    }
}
