//! Ground pathfinding: a connected-component check first (an unreachable goal costs a
//! couple of array reads, not a full-grid search), then A* from the `pathfinding` crate
//! over the passability grid: 8 directions, no corner cutting, buildings block.

use events::Cell;
use pathfinding::directed::astar::astar;

use crate::map::{Map, NO_COMPONENT};

/// Cost of an orthogonal step; a diagonal costs [`DIAGONAL_COST`] (≈ √2 × 100).
const STRAIGHT_COST: u32 = 100;
const DIAGONAL_COST: u32 = 141;
/// The octile heuristic is weighted by this percentage (weighted A*): paths are at most
/// this much longer than the shortest, and on open maps the search expands a narrow
/// corridor instead of a wide front of equal-cost cells.
pub const HEURISTIC_WEIGHT_PCT: u32 = 115;

/// Why no path was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("cell ({}, {}) is off the map", .0.x, .0.y)]
    OutOfMap(Cell),
    /// Different ground components, impassable goal, or walled in by buildings.
    #[error("cell ({}, {}) cannot be reached", .0.x, .0.y)]
    Unreachable(Cell),
    /// The search hit its node budget; the caller may retry later.
    #[error("search budget exhausted")]
    Exhausted,
}

/// Cells occupied by buildings: non-zero means blocked. An empty slice means none.
pub type Blocked<'a> = &'a [u32];

/// Whether a ground unit may stand on the cell at grid index `i`.
#[inline]
pub fn free(map: &Map, blocked: Blocked<'_>, i: usize) -> bool {
    map.is_passable_index(i) && blocked.get(i).is_none_or(|&b| b == 0)
}

/// Whether a ground unit may step from `a` to the neighbouring cell `b` (diagonal steps
/// need both orthogonal cells free: no corner cutting).
pub fn can_step(map: &Map, blocked: Blocked<'_>, a: Cell, b: Cell) -> bool {
    if !map.in_bounds(b) || !free(map, blocked, map.index(b)) {
        return false;
    }
    if a.x != b.x && a.y != b.y {
        let c1 = Cell::new(b.x, a.y);
        let c2 = Cell::new(a.x, b.y);
        return map.in_bounds(c1)
            && map.in_bounds(c2)
            && free(map, blocked, map.index(c1))
            && free(map, blocked, map.index(c2));
    }
    true
}

/// Fast reachability: same non-zero ground component (buildings ignored).
pub fn reachable(map: &Map, from: Cell, to: Cell) -> bool {
    let c = map.component(to);
    c != NO_COMPONENT && map.component(from) == c
}

/// The free cell of ground component `comp` nearest to `to` (squared distance, then
/// row-major order), searched ring by ring outwards over the whole map; `None` when the
/// component has no free cell. Moves into water, rock, another island or the shroud go
/// here instead of being refused.
pub fn nearest_reachable(map: &Map, blocked: Blocked<'_>, to: Cell, comp: u32) -> Option<Cell> {
    if comp == NO_COMPONENT || !map.in_bounds(to) {
        return None;
    }
    let ok = |c: Cell| map.component(c) == comp && free(map, blocked, map.index(c));
    let d2 = |c: Cell| {
        let (dx, dy) = (
            i64::from(c.x) - i64::from(to.x),
            i64::from(c.y) - i64::from(to.y),
        );
        dx * dx + dy * dy
    };
    let mut best: Option<(i64, u16, u16, Cell)> = None;
    for r in 0..i32::from(map.size) {
        // Every cell of ring r is at least r away: past the best, nothing nearer is left.
        if best.is_some_and(|(d, ..)| i64::from(r) * i64::from(r) > d) {
            break;
        }
        for dy in -r..=r {
            for dx in -r..=r {
                if dx.abs().max(dy.abs()) != r {
                    continue;
                }
                let Some(c) = map.offset(to, dx, dy) else {
                    continue;
                };
                if ok(c) {
                    let key = (d2(c), c.y, c.x, c);
                    if best.is_none_or(|b| (key.0, key.1, key.2) < (b.0, b.1, b.2)) {
                        best = Some(key);
                    }
                }
            }
        }
    }
    best.map(|(.., c)| c)
}

/// Finds a path from `from` to `to` (both included), expanding at most `max_nodes` cells.
pub fn find_path(
    map: &Map,
    blocked: Blocked<'_>,
    from: Cell,
    to: Cell,
    max_nodes: usize,
) -> Result<Vec<Cell>, PathError> {
    search(map, blocked, from, to, max_nodes).0
}

/// [`find_path`], also returning how many cells the search expanded (for budgets).
pub fn search(
    map: &Map,
    blocked: Blocked<'_>,
    from: Cell,
    to: Cell,
    max_nodes: usize,
) -> (Result<Vec<Cell>, PathError>, usize) {
    if !map.in_bounds(from) {
        return (Err(PathError::OutOfMap(from)), 0);
    }
    if !map.in_bounds(to) {
        return (Err(PathError::OutOfMap(to)), 0);
    }
    if !reachable(map, from, to) || !free(map, blocked, map.index(to)) {
        return (Err(PathError::Unreachable(to)), 0);
    }
    if from == to {
        return (Ok(vec![from]), 0);
    }
    let size = i32::from(map.size);
    let goal = map.index(to) as u32;
    let (gx, gy) = (i32::from(to.x), i32::from(to.y));
    let mut expanded = 0usize;
    let mut exhausted = false;
    let successors = |&i: &u32| {
        let mut out = [(0u32, 0u32); 8];
        let mut k = 0;
        expanded += 1;
        if expanded > max_nodes {
            exhausted = true;
            return out.into_iter().take(0);
        }
        let (x, y) = (i as i32 % size, i as i32 / size);
        let ok = |x: i32, y: i32| {
            x >= 0 && y >= 0 && x < size && y < size && free(map, blocked, (y * size + x) as usize)
        };
        let (n, e, s, w) = (ok(x, y - 1), ok(x + 1, y), ok(x, y + 1), ok(x - 1, y));
        let mut push = |dx: i32, dy: i32, cost: u32| {
            out[k] = (((y + dy) * size + x + dx) as u32, cost);
            k += 1;
        };
        if n {
            push(0, -1, STRAIGHT_COST);
        }
        if e {
            push(1, 0, STRAIGHT_COST);
        }
        if s {
            push(0, 1, STRAIGHT_COST);
        }
        if w {
            push(-1, 0, STRAIGHT_COST);
        }
        if n && e && ok(x + 1, y - 1) {
            push(1, -1, DIAGONAL_COST);
        }
        if s && e && ok(x + 1, y + 1) {
            push(1, 1, DIAGONAL_COST);
        }
        if s && w && ok(x - 1, y + 1) {
            push(-1, 1, DIAGONAL_COST);
        }
        if n && w && ok(x - 1, y - 1) {
            push(-1, -1, DIAGONAL_COST);
        }
        out.into_iter().take(k)
    };
    let heuristic = |&i: &u32| {
        let (x, y) = (i as i32 % size, i as i32 / size);
        let (dx, dy) = ((x - gx).unsigned_abs(), (y - gy).unsigned_abs());
        let (lo, hi) = (dx.min(dy), dx.max(dy));
        (STRAIGHT_COST * hi + (DIAGONAL_COST - STRAIGHT_COST) * lo) * HEURISTIC_WEIGHT_PCT / 100
    };
    let start = map.index(from) as u32;
    let found = astar(&start, successors, heuristic, |&i| i == goal);
    let result = match found {
        Some((nodes, _)) => Ok(nodes.into_iter().map(|i| map.cell_at(i as usize)).collect()),
        None if exhausted => Err(PathError::Exhausted),
        None => Err(PathError::Unreachable(to)),
    };
    (result, expanded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Terrain;

    fn walled() -> Map {
        let mut m = Map::blank(20);
        for y in 0..15 {
            m.set_terrain(Cell::new(10, y), Terrain::Rock);
        }
        m
    }

    #[test]
    fn goes_around_a_wall_without_cutting_corners() {
        let m = walled();
        let p = find_path(&m, &[], Cell::new(2, 2), Cell::new(17, 2), 10_000).unwrap();
        assert_eq!(p.first(), Some(&Cell::new(2, 2)));
        assert_eq!(p.last(), Some(&Cell::new(17, 2)));
        assert!(p.iter().any(|c| c.y >= 15));
        for w in p.windows(2) {
            assert!(can_step(&m, &[], w[0], w[1]));
        }
    }

    #[test]
    fn unreachable_is_refused_without_search() {
        let mut m = walled();
        m.set_terrain(Cell::new(10, 15), Terrain::Water);
        for x in 11..20 {
            m.set_terrain(Cell::new(x, 15), Terrain::Water);
        }
        // (17, 2) is now sealed off; a zero node budget proves no search ran.
        assert_eq!(
            find_path(&m, &[], Cell::new(2, 2), Cell::new(17, 2), 0),
            Err(PathError::Unreachable(Cell::new(17, 2)))
        );
        assert_eq!(
            find_path(&m, &[], Cell::new(2, 2), Cell::new(10, 2), 0),
            Err(PathError::Unreachable(Cell::new(10, 2)))
        );
        assert_eq!(
            find_path(&m, &[], Cell::new(2, 2), Cell::new(99, 2), 0),
            Err(PathError::OutOfMap(Cell::new(99, 2)))
        );
    }

    #[test]
    fn the_nearest_reachable_cell_lies_on_the_units_side() {
        let mut m = walled();
        m.set_terrain(Cell::new(10, 15), Terrain::Water);
        for x in 11..20 {
            m.set_terrain(Cell::new(x, 15), Terrain::Water);
        }
        let comp = m.component(Cell::new(2, 2));
        // (17, 2) is sealed off: the nearest cell on this side is across the wall.
        let c = nearest_reachable(&m, &[], Cell::new(17, 2), comp).unwrap();
        assert_eq!(c, Cell::new(9, 2));
        // A reachable goal is its own answer; a rock cell gives its nearest free one.
        assert_eq!(
            nearest_reachable(&m, &[], Cell::new(3, 3), comp),
            Some(Cell::new(3, 3))
        );
        assert_eq!(
            nearest_reachable(&m, &[], Cell::new(10, 4), comp),
            Some(Cell::new(9, 4))
        );
        assert_eq!(nearest_reachable(&m, &[], Cell::new(99, 2), comp), None);
    }

    #[test]
    fn buildings_block_and_budget_is_enforced() {
        let m = Map::blank(20);
        let mut blocked = vec![0u32; m.len()];
        for y in 0..19 {
            blocked[m.index(Cell::new(5, y))] = 1;
        }
        let p = find_path(&m, &blocked, Cell::new(0, 0), Cell::new(10, 0), 10_000).unwrap();
        assert!(p.contains(&Cell::new(5, 19)));
        assert_eq!(
            find_path(&m, &blocked, Cell::new(0, 0), Cell::new(10, 0), 3),
            Err(PathError::Exhausted)
        );
    }
}
