//! The seeded map generator: symmetric 2- and 4-player maps (ring layouts for other
//! counts), start positions, balanced tiberium fields, obstacles, and a validated ground
//! path between all starts. Same spec, player count and rules → the same map, everywhere.

use events::{BuildingKind, Cell, MapSpec, MAX_PLAYERS};

use super::{Field, Map, MapError, Terrain, NO_COMPONENT, NO_FIELD};
use crate::fixed::{chebyshev, cos_deg, facing, sin_deg};
use crate::rng::Rng;
use crate::Rules;

/// Attempts before giving up; the last one places no obstacles, so a bad seed still
/// yields a (plainer) valid map instead of an error.
const MAX_ATTEMPTS: u32 = 32;
/// Cells (Chebyshev) around each start kept free of obstacles and tiberium: room for the
/// Construction Yard, the start units and the first buildings.
const START_CLEAR_RADIUS: i32 = 5;
/// One obstacle blob per this many cells (before symmetry copies).
const CELLS_PER_OBSTACLE_BLOB: i32 = 160;
/// Size of one tiberium field in cells.
const FIELD_CELLS: (i32, i32) = (9, 16);
/// Tries to find room for one field before skipping it.
const FIELD_PLACEMENT_TRIES: u32 = 60;
/// Keeps field centres this far from the map edge so the whole blob fits.
const FIELD_EDGE_MARGIN: i32 = 3;
/// Salt so the map stream differs from the match RNG seeded with the same number.
const MAP_SALT: u64 = 0x6D61_705F_6765_6E31;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Symmetry {
    /// 2 players: 180° rotation.
    Point,
    /// 4 players: mirrored on both axes.
    Mirror4,
    /// Any other count: starts on a ring, fields copied per player.
    Ring,
}

/// Generates the map for a spec and a player count.
pub fn generate(spec: &MapSpec, players: usize, rules: &Rules) -> Result<Map, MapError> {
    let (min, max) = (rules.map.min_size, rules.map.max_size);
    if !(min..=max).contains(&spec.size) {
        return Err(MapError::BadSize {
            size: spec.size,
            min,
            max,
        });
    }
    if players == 0 || players > MAX_PLAYERS {
        return Err(MapError::BadPlayers(players));
    }
    let mut rng = Rng::new(spec.seed ^ MAP_SALT);
    let mut last = String::new();
    for attempt in 0..MAX_ATTEMPTS {
        let obstacles = attempt + 1 < MAX_ATTEMPTS;
        let (map, owners) = build(spec.size, players, rules, &mut rng, obstacles);
        match validate(&map, &owners, players, rules) {
            Ok(()) => return Ok(map),
            Err(e) => last = e,
        }
    }
    Err(MapError::Generation {
        attempts: MAX_ATTEMPTS,
        last,
    })
}

/// The top-left cell of a `w × h` footprint centred on `center`.
pub fn footprint_origin(center: Cell, w: u16, h: u16) -> Cell {
    Cell::new(
        center.x.saturating_sub(w / 2),
        center.y.saturating_sub(h / 2),
    )
}

struct Builder {
    n: i32,
    sym: Symmetry,
    terrain: Vec<Terrain>,
    bails: Vec<u8>,
    field_of: Vec<u16>,
    protected: Vec<bool>,
    fields: Vec<Field>,
    /// Which player each field was made for (`None`: scattered).
    owners: Vec<Option<usize>>,
    /// Fields that are images of one another (they must share a colour for balance).
    groups: Vec<(Vec<u16>, bool)>,
    starts: Vec<Cell>,
}

impl Builder {
    fn idx(&self, x: i32, y: i32) -> Option<usize> {
        (x >= 0 && y >= 0 && x < self.n && y < self.n).then(|| (y * self.n + x) as usize)
    }

    /// The symmetric images of a point; index `k` is player `k`'s copy.
    fn images(&self, x: i32, y: i32) -> Vec<(i32, i32)> {
        let m = self.n - 1;
        match self.sym {
            Symmetry::Point => vec![(x, y), (m - x, m - y)],
            Symmetry::Mirror4 => vec![(x, y), (m - x, y), (x, m - y), (m - x, m - y)],
            Symmetry::Ring => vec![(x, y)],
        }
    }

    fn paint_obstacle(&mut self, x: i32, y: i32, t: Terrain) {
        for (ix, iy) in self.images(x, y) {
            if let Some(i) = self.idx(ix, iy) {
                if !self.protected[i] && self.field_of[i] == NO_FIELD {
                    self.terrain[i] = t;
                }
            }
        }
    }

    /// The cells of each copy of a field: mirrored images of copy 0 on symmetric maps
    /// (so the map really is symmetric), translated copies on a ring.
    fn copies(
        &self,
        centres: &[(i32, i32)],
        shape: &[((i32, i32), u8)],
    ) -> Vec<Vec<((i32, i32), u8)>> {
        let mut out = vec![Vec::with_capacity(shape.len()); centres.len()];
        for &((dx, dy), b) in shape {
            match self.sym {
                Symmetry::Ring => {
                    for (k, &(cx, cy)) in centres.iter().enumerate() {
                        out[k].push(((cx + dx, cy + dy), b));
                    }
                }
                Symmetry::Point | Symmetry::Mirror4 => {
                    let (cx, cy) = centres[0];
                    for (k, img) in self.images(cx + dx, cy + dy).into_iter().enumerate() {
                        if let Some(v) = out.get_mut(k) {
                            v.push((img, b));
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether a field shape centred at each of `centres` fits on free ground.
    fn field_fits(&self, centres: &[(i32, i32)], shape: &[((i32, i32), u8)]) -> bool {
        let copies = self.copies(centres, shape);
        let m = FIELD_EDGE_MARGIN;
        let centred = centres
            .iter()
            .all(|&(cx, cy)| cx >= m && cy >= m && cx < self.n - m && cy < self.n - m);
        if self.sym == Symmetry::Ring {
            // Ring copies are only translated, so crowded maps may clip a few cells; the
            // balance check after generation decides whether the result is fair enough.
            let mut claimed: Vec<(i32, i32)> = Vec::new();
            return centred
                && copies.iter().all(|copy| {
                    let free = copy
                        .iter()
                        .filter(|&&((x, y), _)| {
                            !claimed.contains(&(x, y))
                                && self.idx(x, y).is_some_and(|i| {
                                    !self.protected[i] && self.field_of[i] == NO_FIELD
                                })
                        })
                        .count();
                    claimed.extend(copy.iter().map(|&(c, _)| c));
                    free * 100 >= copy.len() * 60
                });
        }
        // Mirrored copies must not overlap one another, or they would differ.
        let mut all: Vec<(i32, i32)> = copies.iter().flatten().map(|&(c, _)| c).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        if all.len() != n {
            return false;
        }
        centred
            && all.iter().all(|&(x, y)| {
                self.idx(x, y)
                    .is_some_and(|i| !self.protected[i] && self.field_of[i] == NO_FIELD)
            })
    }

    /// Paints one field per centre (clearing obstacles under it); returns the new ids.
    fn paint_fields(
        &mut self,
        centres: &[(i32, i32)],
        shape: &[((i32, i32), u8)],
        owners: &[Option<usize>],
    ) {
        let mut ids = Vec::new();
        for (k, copy) in self.copies(centres, shape).into_iter().enumerate() {
            let id = self.fields.len() as u16;
            let mut cells = Vec::new();
            for ((x, y), b) in copy {
                let Some(i) = self.idx(x, y) else {
                    continue;
                };
                if self.protected[i] || self.field_of[i] != NO_FIELD {
                    continue;
                }
                self.terrain[i] = Terrain::Tiberium;
                self.bails[i] = b;
                self.field_of[i] = id;
                cells.push(Cell::new(x as u16, y as u16));
            }
            if cells.is_empty() {
                continue;
            }
            self.fields.push(Field {
                id,
                cells,
                blue: false,
            });
            self.owners.push(owners.get(k).copied().flatten());
            ids.push(id);
        }
        let player_group = owners.iter().any(Option::is_some);
        if !ids.is_empty() {
            self.groups.push((ids, player_group));
        }
    }
}

fn field_shape(rng: &mut Rng, max_bails: u8) -> Vec<((i32, i32), u8)> {
    let target = rng.range(FIELD_CELLS.0, FIELD_CELLS.1) as usize;
    let mut cells: Vec<(i32, i32)> = vec![(0, 0)];
    let mut guard = 0;
    while cells.len() < target && guard < 1000 {
        guard += 1;
        let (x, y) = cells[rng.below(cells.len() as u32) as usize];
        let (dx, dy) = [(1, 0), (-1, 0), (0, 1), (0, -1)][rng.below(4) as usize];
        let c = (x + dx, y + dy);
        // Keep blobs compact: at most 2 cells from the centre.
        if c.0.abs() <= 2 && c.1.abs() <= 2 && !cells.contains(&c) {
            cells.push(c);
        }
    }
    let lo = i32::from(max_bails / 2).max(1);
    cells
        .into_iter()
        .map(|c| (c, rng.range(lo, i32::from(max_bails)) as u8))
        .collect()
}

/// A point `d` cells from `(x, y)` in direction `deg` (0 = east, 90 = north).
fn polar(x: i32, y: i32, deg: i32, d: i32) -> (i32, i32) {
    (x + d * cos_deg(deg) / 1024, y - d * sin_deg(deg) / 1024)
}

/// Direction in whole degrees (0 = east, 90 = north) from one point to another.
fn angle_to(from: (i32, i32), to: (i32, i32)) -> i32 {
    facing(to.0 - from.0, to.1 - from.1).map_or(0, |f| i32::from(f) * 360 / 256)
}

fn build(
    size: u16,
    players: usize,
    rules: &Rules,
    rng: &mut Rng,
    obstacles: bool,
) -> (Map, Vec<Option<usize>>) {
    let n = i32::from(size);
    let sym = match players {
        2 => Symmetry::Point,
        4 => Symmetry::Mirror4,
        _ => Symmetry::Ring,
    };
    let cells = (n * n) as usize;
    let mut b = Builder {
        n,
        sym,
        terrain: vec![Terrain::Clear; cells],
        bails: vec![0; cells],
        field_of: vec![NO_FIELD; cells],
        protected: vec![false; cells],
        fields: Vec::new(),
        owners: Vec::new(),
        groups: Vec::new(),
        starts: Vec::new(),
    };

    // Starts.
    let inset = (n / 5).max(START_CLEAR_RADIUS + 1);
    let clamp = |v: i32| v.clamp(START_CLEAR_RADIUS, n - 1 - START_CLEAR_RADIUS);
    let jitter = |rng: &mut Rng| rng.range(-2, 2);
    let starts: Vec<(i32, i32)> = match sym {
        Symmetry::Point => {
            let (jx, jy) = (jitter(rng), jitter(rng));
            let s0 = if rng.below(2) == 0 {
                (clamp(inset + jx), clamp(inset + jy))
            } else {
                (clamp(n - 1 - inset + jx), clamp(inset + jy))
            };
            b.images(s0.0, s0.1)
        }
        Symmetry::Mirror4 => {
            let s0 = (clamp(inset + jitter(rng)), clamp(inset + jitter(rng)));
            b.images(s0.0, s0.1)
        }
        Symmetry::Ring => {
            let c = n / 2;
            let r = if players == 1 { 0 } else { c - inset };
            let rot = rng.below(360) as i32;
            (0..players)
                .map(|k| {
                    let (x, y) = polar(c, c, rot + 360 * k as i32 / players as i32, r);
                    (clamp(x), clamp(y))
                })
                .collect()
        }
    };
    // Crowded ring layouts (many players on a small map) shrink the kept-clear area so
    // the fields still fit between the starts.
    let min_sep = starts
        .iter()
        .enumerate()
        .flat_map(|(i, a)| {
            starts[..i]
                .iter()
                .map(move |b| (a.0 - b.0).abs().max((a.1 - b.1).abs()))
        })
        .min()
        .unwrap_or(n);
    let clear = START_CLEAR_RADIUS.min(((min_sep - 1) / 2).max(2));
    for &(sx, sy) in &starts {
        for y in sy - clear..=sy + clear {
            for x in sx - clear..=sx + clear {
                if let Some(i) = b.idx(x, y) {
                    b.protected[i] = true;
                }
            }
        }
    }
    b.starts = starts
        .iter()
        .map(|&(x, y)| Cell::new(x as u16, y as u16))
        .collect();

    // Player fields: made for player 0 and mirrored, or copied per player on a ring.
    let centre = (n / 2, n / 2);
    let (dmin, dmax) = (
        rules.map.field_min_distance as i32,
        rules.map.field_max_distance as i32,
    );
    for _ in 0..rules.map.fields_per_player {
        let shape = field_shape(rng, rules.tiberium.max_bails);
        for attempt in 0..FIELD_PLACEMENT_TRIES {
            let crowded = sym == Symmetry::Ring && attempt >= FIELD_PLACEMENT_TRIES / 2;
            let d = if crowded {
                rng.range(dmin.min(clear + 3), dmax)
            } else {
                rng.range(dmin, dmax)
            };
            // Prefer the side facing the map centre; crowded ring maps need any side.
            let spread = if crowded { 180 } else { 80 };
            let turn = rng.range(-spread, spread);
            let centres: Vec<(i32, i32)> = match sym {
                Symmetry::Point | Symmetry::Mirror4 => {
                    let s0 = starts[0];
                    let (x, y) = polar(s0.0, s0.1, angle_to(s0, centre) + turn, d);
                    b.images(x, y)
                }
                Symmetry::Ring => starts
                    .iter()
                    .map(|&s| polar(s.0, s.1, angle_to(s, centre) + turn, d))
                    .collect(),
            };
            let distinct = centres
                .iter()
                .enumerate()
                .all(|(i, c)| !centres[..i].contains(c));
            if distinct && b.field_fits(&centres, &shape) {
                let owners: Vec<Option<usize>> = (0..centres.len()).map(Some).collect();
                b.paint_fields(&centres, &shape, &owners);
                break;
            }
        }
    }

    // Scattered fields, away from every start.
    let order = b.images(0, 0).len() as u32;
    let groups = rules.map.scattered_fields.div_ceil(order);
    for _ in 0..groups {
        let shape = field_shape(rng, rules.tiberium.max_bails);
        for _ in 0..FIELD_PLACEMENT_TRIES {
            let x = rng.range(FIELD_EDGE_MARGIN, n - 1 - FIELD_EDGE_MARGIN);
            let y = rng.range(FIELD_EDGE_MARGIN, n - 1 - FIELD_EDGE_MARGIN);
            let centres = b.images(x, y);
            let far = centres.iter().all(|&(cx, cy)| {
                starts
                    .iter()
                    .all(|&(sx, sy)| (cx - sx).abs().max((cy - sy).abs()) > dmin + 2)
            });
            let distinct = centres
                .iter()
                .enumerate()
                .all(|(i, c)| !centres[..i].contains(c));
            if far && distinct && b.field_fits(&centres, &shape) {
                b.paint_fields(&centres, &shape, &vec![None; centres.len()]);
                break;
            }
        }
    }

    // Blue: whole symmetric groups (so balance holds), scattered groups first, until the
    // blue share is as close to the rules' percentage as whole groups allow.
    let total = b.fields.len() as i64;
    let target = (total * i64::from(rules.map.blue_field_pct) + 50) / 100;
    let mut order_groups: Vec<usize> = (0..b.groups.len()).filter(|&g| !b.groups[g].1).collect();
    order_groups.extend((0..b.groups.len()).rev().filter(|&g| b.groups[g].1));
    let mut blue_count = 0i64;
    for g in order_groups {
        let len = b.groups[g].0.len() as i64;
        if (blue_count + len - target).abs() < (blue_count - target).abs() {
            blue_count += len;
            for id in b.groups[g].0.clone() {
                b.fields[usize::from(id)].blue = true;
            }
        }
    }

    // Obstacles last, so they never cover a field or a start area.
    if obstacles {
        let blobs = (n * n / CELLS_PER_OBSTACLE_BLOB / order as i32).max(1);
        for _ in 0..blobs {
            let roll = rng.below(10);
            let (t, len, radius) = match roll {
                0..=3 => (Terrain::Rock, rng.range(3, 10), 0),
                4..=7 => (Terrain::Trees, rng.range(3, 10), rng.range(0, 1)),
                _ => (Terrain::Water, rng.range(8, 20), 1),
            };
            let (mut x, mut y) = (rng.range(0, n - 1), rng.range(0, n - 1));
            for _ in 0..len {
                for dy in -radius..=radius {
                    for dx in -radius..=radius {
                        b.paint_obstacle(x + dx, y + dy, t);
                    }
                }
                x = (x + rng.range(-1, 1)).clamp(0, n - 1);
                y = (y + rng.range(-1, 1)).clamp(0, n - 1);
            }
        }
    }

    let mut blue = vec![false; cells];
    for f in &b.fields {
        if f.blue {
            for c in &f.cells {
                blue[usize::from(c.y) * cells.isqrt() + usize::from(c.x)] = true;
            }
        }
    }
    let owners = b.owners;
    let map = Map::from_parts(size, b.starts, b.fields, b.terrain, b.bails, blue);
    (map, owners)
}

/// Checks a generated map: buildable start areas, one ground component joining every
/// start and every field, and per-player field value within the rules' tolerance.
fn validate(
    m: &Map,
    owners: &[Option<usize>],
    players: usize,
    rules: &Rules,
) -> Result<(), String> {
    if m.starts.len() != players {
        return Err(format!("{} starts for {players} players", m.starts.len()));
    }
    let cy = rules.building(BuildingKind::ConstructionYard);
    for (k, &s) in m.starts.iter().enumerate() {
        let o = footprint_origin(s, cy.width, cy.height);
        for y in o.y..o.y + cy.height {
            for x in o.x..o.x + cy.width {
                if !m.is_buildable(Cell::new(x, y)) {
                    return Err(format!("start {k} is not buildable"));
                }
            }
        }
        for (j, &t) in m.starts.iter().enumerate().take(k) {
            if chebyshev(s, t) < cy.width.max(cy.height) + 2 {
                return Err(format!("starts {j} and {k} overlap"));
            }
        }
    }
    let main = m.component(m.starts[0]);
    if main == NO_COMPONENT || m.starts.iter().any(|&s| m.component(s) != main) {
        return Err("no ground path between the starts".into());
    }
    for f in &m.fields {
        if f.cells.iter().any(|&c| m.component(c) != main) {
            return Err(format!("field {} is cut off", f.id));
        }
    }
    let (green, blue) = (
        rules.tiberium.green_bail_credits,
        rules.tiberium.blue_bail_credits,
    );
    let mut value = vec![0u64; players];
    let mut count = vec![0u32; players];
    for (f, owner) in m.fields.iter().zip(owners) {
        if let Some(p) = *owner {
            value[p] += m.field_value(f.id, green, blue);
            count[p] += 1;
        }
    }
    if count.iter().any(|&c| c < rules.map.fields_per_player) {
        return Err("a player is missing a field".into());
    }
    let (lo, hi) = (
        value.iter().copied().min().unwrap_or(0),
        value.iter().copied().max().unwrap_or(0),
    );
    if (hi - lo) * 100 > u64::from(rules.map.balance_tolerance_pct) * hi {
        return Err(format!("fields unbalanced: {lo} vs {hi} credits"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(size: u16, seed: u64) -> MapSpec {
        MapSpec { size, seed }
    }

    #[test]
    fn same_seed_same_map_different_seed_different_map() {
        let r = Rules::standard();
        let a = generate(&spec(64, 7), 2, &r).unwrap();
        let b = generate(&spec(64, 7), 2, &r).unwrap();
        let c = generate(&spec(64, 8), 2, &r).unwrap();
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
    }

    #[test]
    fn generated_maps_are_valid_for_every_size_and_player_count() {
        let r = Rules::standard();
        let mut failures = Vec::new();
        for size in [32u16, 48, 64, 128, 256] {
            for players in 1..=8usize {
                for seed in 0..6u64 {
                    let m = match generate(&spec(size, seed), players, &r) {
                        Ok(m) => m,
                        Err(e) => {
                            failures.push(format!("{size} {players} {seed}: {e}"));
                            continue;
                        }
                    };
                    assert_eq!(m.starts.len(), players);
                    let comp = m.component(m.starts[0]);
                    assert!(m.starts.iter().all(|&s| m.component(s) == comp));
                    assert!(!m.fields.is_empty());
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn two_and_four_player_maps_are_symmetric() {
        let r = Rules::standard();
        let m = generate(&spec(64, 3), 2, &r).unwrap();
        let n = m.size - 1;
        for y in 0..m.size {
            for x in 0..m.size {
                let (a, b) = (Cell::new(x, y), Cell::new(n - x, n - y));
                assert_eq!(m.terrain(a), m.terrain(b));
                assert_eq!(m.bails(a), m.bails(b));
            }
        }
        let m = generate(&spec(64, 3), 4, &r).unwrap();
        for y in 0..m.size {
            for x in 0..m.size {
                assert_eq!(m.terrain(Cell::new(x, y)), m.terrain(Cell::new(n - x, y)));
                assert_eq!(m.bails(Cell::new(x, y)), m.bails(Cell::new(x, n - y)));
            }
        }
    }

    #[test]
    fn fields_are_near_starts_and_some_are_blue() {
        let r = Rules::standard();
        let m = generate(&spec(96, 11), 2, &r).unwrap();
        for s in &m.starts {
            let near = m
                .fields
                .iter()
                .filter(|f| {
                    f.cells.iter().any(|&c| {
                        chebyshev(c, *s) <= (r.map.field_max_distance + 3) as u16
                            && chebyshev(c, *s) >= 3
                    })
                })
                .count();
            assert!(near >= r.map.fields_per_player as usize);
        }
        assert!(m.fields.iter().any(|f| f.blue));
        assert!(m.fields.iter().any(|f| !f.blue));
        // Obstacles exist.
        let blocked = (0..m.len()).filter(|&i| !m.is_passable_index(i)).count();
        assert!(blocked > 0);
    }

    #[test]
    fn bad_specs_are_errors() {
        let r = Rules::standard();
        assert!(matches!(
            generate(&spec(16, 1), 2, &r),
            Err(MapError::BadSize { .. })
        ));
        assert!(matches!(
            generate(&spec(64, 1), 9, &r),
            Err(MapError::BadPlayers(9))
        ));
        assert!(matches!(
            generate(&spec(64, 1), 0, &r),
            Err(MapError::BadPlayers(0))
        ));
    }
}
