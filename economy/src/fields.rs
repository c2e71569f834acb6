//! Tiberium as the economy sees it: fields, their cells and value, folded from the
//! generated map and the engine's `TiberiumChanged` events; plus path distances to fields.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use events::Cell;
use rules::Rules;
use serde::{Deserialize, Serialize};

/// Field ids; the generator's ids first, fields discovered later after them.
pub type FieldId = u32;

/// One tiberium cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TibCell {
    pub bails: u8,
    pub blue: bool,
    pub field: FieldId,
    /// Credits one bail of this cell pays (from the rules, kept so the fields' values can
    /// be rebuilt from the cells alone).
    pub value_per_bail: u32,
}

/// One field: its cells (also the empty ones, which may regrow or be seeded) and the
/// credits still on them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub cells: BTreeSet<Cell>,
    pub value: u64,
}

/// Every tiberium cell and field of the match. Part of the hashed economy state; only
/// the cells and the next field id are serialized, the fields are rebuilt from them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tiberium {
    cells: BTreeMap<Cell, TibCell>,
    fields: BTreeMap<FieldId, Field>,
    next_field: FieldId,
}

fn per_bail(rules: &Rules, blue: bool) -> u32 {
    if blue {
        rules.tiberium.blue_bail_credits
    } else {
        rules.tiberium.green_bail_credits
    }
}

fn cell_value(t: &TibCell) -> u64 {
    u64::from(t.bails) * u64::from(t.value_per_bail)
}

/// The eight neighbours of a cell that lie on a `size`×`size` map, in a fixed order.
pub fn neighbours(c: Cell, size: u16) -> impl Iterator<Item = Cell> {
    // The engine's order (`Map::neighbours8`), so a seeded cell joins the same field here
    // as there.
    const D: [(i32, i32); 8] = [
        (0, -1),
        (1, 0),
        (0, 1),
        (-1, 0),
        (1, -1),
        (1, 1),
        (-1, 1),
        (-1, -1),
    ];
    D.iter().filter_map(move |(dx, dy)| {
        let x = i32::from(c.x) + dx;
        let y = i32::from(c.y) + dy;
        let s = i32::from(size);
        (x >= 0 && y >= 0 && x < s && y < s).then(|| Cell::new(x as u16, y as u16))
    })
}

/// Octile distance in tenths of a cell (10 straight, 14 diagonal).
pub fn octile(a: Cell, b: Cell) -> u32 {
    let dx = u32::from(a.x.abs_diff(b.x));
    let dy = u32::from(a.y.abs_diff(b.y));
    let (lo, hi) = if dx < dy { (dx, dy) } else { (dy, dx) };
    14 * lo + 10 * (hi - lo)
}

/// The serialized form of [`Tiberium`].
#[derive(Serialize, Deserialize)]
struct TiberiumRepr<C> {
    cells: C,
    next_field: FieldId,
}

impl Serialize for Tiberium {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TiberiumRepr {
            cells: &self.cells,
            next_field: self.next_field,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Tiberium {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let repr = TiberiumRepr::<BTreeMap<Cell, TibCell>>::deserialize(d)?;
        let mut fields: BTreeMap<FieldId, Field> = BTreeMap::new();
        for (c, t) in &repr.cells {
            let f = fields.entry(t.field).or_default();
            f.cells.insert(*c);
            f.value += u64::from(t.bails) * u64::from(t.value_per_bail);
        }
        Ok(Tiberium {
            cells: repr.cells,
            fields,
            next_field: repr.next_field,
        })
    }
}

impl Tiberium {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a field from the generated map.
    pub fn add_field(
        &mut self,
        rules: &Rules,
        id: FieldId,
        cells: impl IntoIterator<Item = (Cell, u8, bool)>,
    ) {
        let field = self.fields.entry(id).or_default();
        for (c, bails, blue) in cells {
            let t = TibCell {
                bails,
                blue,
                field: id,
                value_per_bail: per_bail(rules, blue),
            };
            if let Some(old) = self.cells.insert(c, t) {
                field.value = field.value.saturating_sub(cell_value(&old));
            }
            field.cells.insert(c);
            field.value += cell_value(&t);
        }
        self.next_field = self.next_field.max(id.saturating_add(1));
    }

    /// Folds a `TiberiumChanged`: a known cell changes; a new cell (spread) joins the
    /// field of a neighbouring cell, or starts a new field, as the engine's map does.
    /// Returns the cell's field (`None` for an empty cell outside every field).
    pub fn set(
        &mut self,
        rules: &Rules,
        size: u16,
        c: Cell,
        bails: u8,
        blue: bool,
    ) -> Option<FieldId> {
        let field = match self.cells.get(&c) {
            Some(t) => t.field,
            None if bails == 0 => return None,
            None => {
                let near = neighbours(c, size).find_map(|n| self.cells.get(&n).map(|t| t.field));
                near.unwrap_or_else(|| {
                    let id = self.next_field;
                    self.next_field = self.next_field.saturating_add(1);
                    id
                })
            }
        };
        let t = TibCell {
            bails,
            blue,
            field,
            value_per_bail: per_bail(rules, blue),
        };
        let old = self.cells.insert(c, t);
        let f = self.fields.entry(field).or_default();
        if let Some(o) = old {
            f.value = f.value.saturating_sub(cell_value(&o));
        }
        f.value += cell_value(&t);
        f.cells.insert(c);
        Some(field)
    }

    pub fn field(&self, id: FieldId) -> Option<&Field> {
        self.fields.get(&id)
    }

    /// Fields in id order.
    pub fn fields(&self) -> impl Iterator<Item = (FieldId, &Field)> {
        self.fields.iter().map(|(k, v)| (*k, v))
    }

    pub fn cell(&self, c: Cell) -> Option<TibCell> {
        self.cells.get(&c).copied()
    }

    /// The field's cell with bails nearest to `from` (ties: lowest cell).
    pub fn nearest_cell_with_bails(&self, id: FieldId, from: Cell) -> Option<Cell> {
        let f = self.fields.get(&id)?;
        f.cells
            .iter()
            .filter(|c| self.cells.get(c).is_some_and(|t| t.bails > 0))
            .min_by_key(|c| (octile(**c, from), **c))
            .copied()
    }

    /// Whether any cell of the field lies within `radius` cells (Chebyshev) of `p`.
    pub fn field_near(&self, id: FieldId, p: Cell, radius: u16) -> bool {
        self.fields.get(&id).is_some_and(|f| {
            f.cells
                .iter()
                .any(|c| c.x.abs_diff(p.x) <= radius && c.y.abs_diff(p.y) <= radius)
        })
    }
}

/// Ground distances to fields, derived from the map (never hashed or snapshotted: it is
/// rebuilt from the match's map spec). Distance maps are computed on first use.
#[derive(Clone, Debug)]
pub struct Geo {
    size: u16,
    passable: Vec<bool>,
    dist: BTreeMap<FieldId, Vec<u16>>,
}

/// Not reachable on the ground.
pub const UNREACHABLE: u16 = u16::MAX;

impl Geo {
    /// A map where every cell is passable: distances are octile distances.
    pub fn open(size: u16) -> Geo {
        Geo::new(size, vec![true; usize::from(size) * usize::from(size)])
    }

    /// `passable` is row-major, `size × size`.
    pub fn new(size: u16, passable: Vec<bool>) -> Geo {
        Geo {
            size,
            passable,
            dist: BTreeMap::new(),
        }
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    fn index(&self, c: Cell) -> Option<usize> {
        (c.x < self.size && c.y < self.size)
            .then(|| usize::from(c.y) * usize::from(self.size) + usize::from(c.x))
    }

    pub fn is_passable(&self, c: Cell) -> bool {
        self.index(c)
            .and_then(|i| self.passable.get(i).copied())
            .unwrap_or(false)
    }

    /// Ground distance in tenths of a cell from `from` to the nearest cell of the field,
    /// or `None` when there is no ground path.
    pub fn distance(&mut self, tib: &Tiberium, id: FieldId, from: Cell) -> Option<u32> {
        let i = self.index(from)?;
        if !self.dist.contains_key(&id) {
            let sources: Vec<Cell> = tib
                .field(id)
                .map(|f| f.cells.iter().copied().collect())
                .unwrap_or_default();
            let d = self.dijkstra(&sources);
            self.dist.insert(id, d);
        }
        let d = self.dist.get(&id)?.get(i).copied()?;
        (d != UNREACHABLE).then_some(u32::from(d))
    }

    /// Drops the field's distance map after a cell joined it; the next use computes it
    /// from the field's cells as they are then. Without this the cached map would depend
    /// on when it was first used, which a restored economy cannot know.
    pub fn field_grew(&mut self, id: FieldId) {
        self.dist.remove(&id);
    }

    /// Multi-source octile Dijkstra over passable cells; diagonal steps may not cut a
    /// blocked corner. Ties pop in cell-index order, so the result is deterministic.
    fn dijkstra(&self, sources: &[Cell]) -> Vec<u16> {
        let n = usize::from(self.size) * usize::from(self.size);
        let mut dist = vec![UNREACHABLE; n];
        let mut heap = BinaryHeap::new();
        for s in sources {
            if let Some(i) = self.index(*s) {
                dist[i] = 0;
                heap.push(Reverse((0u32, i)));
            }
        }
        let size = usize::from(self.size);
        while let Some(Reverse((d, i))) = heap.pop() {
            if d > u32::from(dist[i]) {
                continue;
            }
            let c = Cell::new((i % size) as u16, (i / size) as u16);
            for nb in neighbours(c, self.size) {
                let Some(j) = self.index(nb) else { continue };
                if !self.passable[j] {
                    continue;
                }
                let diagonal = nb.x != c.x && nb.y != c.y;
                if diagonal
                    && !(self.is_passable(Cell::new(nb.x, c.y))
                        && self.is_passable(Cell::new(c.x, nb.y)))
                {
                    continue;
                }
                let nd = d + if diagonal { 14 } else { 10 };
                if nd < u32::from(dist[j]) && nd < u32::from(UNREACHABLE) {
                    dist[j] = nd as u16;
                    heap.push(Reverse((nd, j)));
                }
            }
        }
        dist
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_joins_the_neighbouring_field_and_values_follow() {
        let r = Rules::standard();
        let g = u64::from(r.tiberium.green_bail_credits);
        let mut t = Tiberium::new();
        t.add_field(
            &r,
            0,
            [(Cell::new(5, 5), 12, false), (Cell::new(6, 5), 3, false)],
        );
        assert_eq!(t.field(0).map(|f| f.value), Some(15 * g));
        assert_eq!(t.set(&r, 64, Cell::new(7, 6), 1, false), Some(0));
        assert_eq!(t.set(&r, 64, Cell::new(5, 5), 11, false), Some(0));
        assert_eq!(t.field(0).map(|f| f.value), Some(15 * g));
        assert_eq!(t.set(&r, 64, Cell::new(40, 40), 1, true), Some(1));
        assert_eq!(t.set(&r, 64, Cell::new(50, 50), 0, true), None);
        assert_eq!(
            t.nearest_cell_with_bails(0, Cell::new(9, 9)),
            Some(Cell::new(7, 6))
        );
    }

    #[test]
    fn distances_go_around_walls() {
        let r = Rules::standard();
        let size = 10u16;
        let mut passable = vec![true; 100];
        // A wall at x = 5 from y = 0 to y = 8.
        for y in 0..9 {
            passable[y * 10 + 5] = false;
        }
        let mut t = Tiberium::new();
        t.add_field(&r, 0, [(Cell::new(9, 0), 5, false)]);
        let mut open = Geo::open(size);
        assert_eq!(open.distance(&t, 0, Cell::new(0, 0)), Some(90));
        let mut walled = Geo::new(size, passable);
        let d = walled.distance(&t, 0, Cell::new(0, 0));
        assert!(d.is_some_and(|d| d > 150), "{d:?}");
        assert_eq!(walled.distance(&t, 0, Cell::new(5, 0)), None);
    }
}
