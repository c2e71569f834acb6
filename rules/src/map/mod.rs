//! The map: square grid of terrain cells with tiberium bails, the start positions and the
//! tiberium fields, plus ground connectivity (for fast reachability checks).

mod format;
mod gen;

pub use gen::{footprint_origin, generate};

use events::Cell;
use serde::{Deserialize, Serialize};

/// Smallest and largest map side the file format accepts. The generator is stricter
/// (the rules file's `map.min_size..=map.max_size`).
pub const MIN_SIZE: u16 = 8;
pub const MAX_SIZE: u16 = 256;

/// Component id of impassable cells: never equal to any ground component.
pub const NO_COMPONENT: u32 = 0;

/// Marks a cell that belongs to no tiberium field.
const NO_FIELD: u16 = u16::MAX;

/// What a cell is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Terrain {
    /// Open ground: passable and buildable.
    Clear = 0,
    /// Blocks ground units, not buildable.
    Trees = 1,
    /// Blocks everything.
    Rock = 2,
    /// Blocks ground units.
    Water = 3,
    /// Passable, not buildable, harvestable.
    Tiberium = 4,
}

impl Terrain {
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_code(c: u8) -> Option<Terrain> {
        Some(match c {
            0 => Terrain::Clear,
            1 => Terrain::Trees,
            2 => Terrain::Rock,
            3 => Terrain::Water,
            4 => Terrain::Tiberium,
            _ => return None,
        })
    }

    /// Ground units may stand here.
    pub fn is_passable(self) -> bool {
        matches!(self, Terrain::Clear | Terrain::Tiberium)
    }
}

/// A tiberium field: the cells it covers (harvested or not) and its colour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub id: u16,
    pub cells: Vec<Cell>,
    pub blue: bool,
}

/// Why a map could not be generated or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("map size {size} is outside {min}-{max}")]
    BadSize { size: u16, min: u16, max: u16 },
    #[error("{0} players is not supported (1-8)")]
    BadPlayers(usize),
    #[error("no valid map after {attempts} attempts: {last}")]
    Generation { attempts: u32, last: String },
    #[error("map file is corrupt: {0}")]
    Corrupt(String),
    #[error("map file version {0} is not supported")]
    Version(u8),
}

/// A square map of `size × size` cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Map {
    pub size: u16,
    /// Start cell of each player slot (the centre of its Construction Yard).
    pub starts: Vec<Cell>,
    pub fields: Vec<Field>,
    terrain: Vec<Terrain>,
    bails: Vec<u8>,
    /// 1 where the cell's tiberium is blue (bytes, so the state hash can take the grid
    /// as it is).
    blue: Vec<u8>,
    field_of: Vec<u16>,
    /// Ground-connectivity id per cell ([`NO_COMPONENT`] where impassable).
    comp: Vec<u32>,
}

impl Map {
    /// An all-clear map with no starts or fields (tests and tools build on it).
    pub fn blank(size: u16) -> Map {
        let n = usize::from(size) * usize::from(size);
        let mut m = Map {
            size,
            starts: Vec::new(),
            fields: Vec::new(),
            terrain: vec![Terrain::Clear; n],
            bails: vec![0; n],
            blue: vec![0; n],
            field_of: vec![NO_FIELD; n],
            comp: vec![NO_COMPONENT; n],
        };
        m.recompute_components();
        m
    }

    /// The grid index of an in-bounds cell.
    #[inline]
    pub fn index(&self, c: Cell) -> usize {
        usize::from(c.y) * usize::from(self.size) + usize::from(c.x)
    }

    /// The cell at a grid index.
    #[inline]
    pub fn cell_at(&self, i: usize) -> Cell {
        let s = usize::from(self.size);
        Cell::new((i % s) as u16, (i / s) as u16)
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.terrain.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terrain.is_empty()
    }

    #[inline]
    pub fn in_bounds(&self, c: Cell) -> bool {
        c.x < self.size && c.y < self.size
    }

    /// Terrain (out-of-map cells read as rock).
    pub fn terrain(&self, c: Cell) -> Terrain {
        if self.in_bounds(c) {
            self.terrain[self.index(c)]
        } else {
            Terrain::Rock
        }
    }

    /// Tiberium bails on a cell (0 off the map).
    pub fn bails(&self, c: Cell) -> u8 {
        if self.in_bounds(c) {
            self.bails[self.index(c)]
        } else {
            0
        }
    }

    /// Whether the cell's tiberium is blue.
    pub fn is_blue(&self, c: Cell) -> bool {
        self.in_bounds(c) && self.blue[self.index(c)] != 0
    }

    /// The field a cell belongs to, if any.
    pub fn field_of(&self, c: Cell) -> Option<u16> {
        if !self.in_bounds(c) {
            return None;
        }
        let f = self.field_of[self.index(c)];
        (f != NO_FIELD).then_some(f)
    }

    /// A field by id.
    pub fn field(&self, id: u16) -> Option<&Field> {
        self.fields.get(usize::from(id))
    }

    /// Ground units may stand here (ignoring buildings).
    #[inline]
    pub fn is_passable(&self, c: Cell) -> bool {
        self.in_bounds(c) && self.terrain[self.index(c)].is_passable()
    }

    /// Ground units may stand on the cell at this grid index (ignoring buildings).
    #[inline]
    pub fn is_passable_index(&self, i: usize) -> bool {
        self.terrain[i].is_passable()
    }

    /// A building may cover this cell (ignoring other buildings).
    pub fn is_buildable(&self, c: Cell) -> bool {
        self.terrain(c) == Terrain::Clear
    }

    /// Ground-connectivity id: two cells with the same non-zero id are connected by a
    /// ground path (ignoring buildings); 0 for impassable or off-map cells.
    #[inline]
    pub fn component(&self, c: Cell) -> u32 {
        if self.in_bounds(c) {
            self.comp[self.index(c)]
        } else {
            NO_COMPONENT
        }
    }

    /// Total tiberium value of a field in credits.
    pub fn field_value(&self, id: u16, green: u32, blue: u32) -> u64 {
        self.field(id).map_or(0, |f| {
            f.cells
                .iter()
                .map(|&c| u64::from(self.bails(c)) * u64::from(if f.blue { blue } else { green }))
                .sum()
        })
    }

    /// The stable hash of the whole map (terrain, tiberium, starts, fields).
    pub fn hash(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&self.save())
    }

    /// Sets a cell's tiberium. A clear cell that gains bails becomes tiberium and joins
    /// the field of a neighbouring cell (or a new field); a cell losing its last bail
    /// becomes clear ground again (it stays part of its field, so it can be reseeded).
    pub fn set_bails(&mut self, c: Cell, bails: u8, blue: bool) {
        if !self.in_bounds(c) {
            return;
        }
        let i = self.index(c);
        match self.terrain[i] {
            Terrain::Clear | Terrain::Tiberium => {}
            // Tiberium never grows on rock, trees or water.
            _ => return,
        }
        self.bails[i] = bails;
        self.blue[i] = u8::from(bails > 0 && blue);
        self.terrain[i] = if bails > 0 {
            Terrain::Tiberium
        } else {
            Terrain::Clear
        };
        if bails > 0 && self.field_of[i] == NO_FIELD {
            let near = self.neighbours8(c).find_map(|n| self.field_of(n));
            let fid = near.unwrap_or_else(|| {
                let id = self.fields.len() as u16;
                self.fields.push(Field {
                    id,
                    cells: Vec::new(),
                    blue,
                });
                id
            });
            self.field_of[i] = fid;
            if let Some(f) = self.fields.get_mut(usize::from(fid)) {
                f.cells.push(c);
            }
        }
        // Passability is the same for clear and tiberium cells: components stay valid.
    }

    /// The up to 8 in-bounds neighbours of a cell, in a fixed order.
    pub fn neighbours8(&self, c: Cell) -> impl Iterator<Item = Cell> + '_ {
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
        D.iter().filter_map(move |&(dx, dy)| self.offset(c, dx, dy))
    }

    /// `c + (dx, dy)` if that is on the map.
    #[inline]
    pub fn offset(&self, c: Cell, dx: i32, dy: i32) -> Option<Cell> {
        let x = i32::from(c.x) + dx;
        let y = i32::from(c.y) + dy;
        let s = i32::from(self.size);
        (x >= 0 && y >= 0 && x < s && y < s).then(|| Cell::new(x as u16, y as u16))
    }

    /// Labels 4-connected passable regions. With no corner cutting an 8-direction move
    /// needs both orthogonal cells free, so 4-connectivity is exactly ground reachability.
    pub(crate) fn recompute_components(&mut self) {
        let n = self.terrain.len();
        self.comp = vec![NO_COMPONENT; n];
        let s = usize::from(self.size);
        let mut next = 1u32;
        let mut stack = Vec::new();
        for start in 0..n {
            if self.comp[start] != NO_COMPONENT || !self.terrain[start].is_passable() {
                continue;
            }
            self.comp[start] = next;
            stack.push(start);
            while let Some(i) = stack.pop() {
                let (x, y) = (i % s, i / s);
                let mut visit = |j: usize| {
                    if self.comp[j] == NO_COMPONENT && self.terrain[j].is_passable() {
                        self.comp[j] = next;
                        stack.push(j);
                    }
                };
                if x > 0 {
                    visit(i - 1);
                }
                if x + 1 < s {
                    visit(i + 1);
                }
                if y > 0 {
                    visit(i - s);
                }
                if y + 1 < s {
                    visit(i + s);
                }
            }
            next += 1;
        }
    }

    /// Direct grid access for the generator and the file format.
    pub(crate) fn from_parts(
        size: u16,
        starts: Vec<Cell>,
        fields: Vec<Field>,
        terrain: Vec<Terrain>,
        bails: Vec<u8>,
        blue: Vec<bool>,
    ) -> Map {
        let n = terrain.len();
        let mut field_of = vec![NO_FIELD; n];
        let s = usize::from(size);
        for f in &fields {
            for c in &f.cells {
                let i = usize::from(c.y) * s + usize::from(c.x);
                if i < n {
                    field_of[i] = f.id;
                }
            }
        }
        let mut m = Map {
            size,
            starts,
            fields,
            terrain,
            bails,
            blue: blue.into_iter().map(u8::from).collect(),
            field_of,
            comp: Vec::new(),
        };
        m.recompute_components();
        m
    }

    /// Sets terrain directly (map editing in tests and tools); recomputes connectivity.
    pub fn set_terrain(&mut self, c: Cell, t: Terrain) {
        if !self.in_bounds(c) {
            return;
        }
        let i = self.index(c);
        self.terrain[i] = t;
        if t != Terrain::Tiberium {
            self.bails[i] = 0;
            self.blue[i] = 0;
        }
        self.recompute_components();
    }

    pub(crate) fn terrain_grid(&self) -> &[Terrain] {
        &self.terrain
    }

    pub(crate) fn bails_grid(&self) -> &[u8] {
        &self.bails
    }

    pub(crate) fn blue_grid(&self) -> &[u8] {
        &self.blue
    }

    /// A digest of everything the simulation changes on a map (bails and colours; the
    /// terrain follows from them), cheap enough to take every tick.
    pub fn tiberium_digest(&self) -> u64 {
        let a = xxhash_rust::xxh3::xxh3_64(&self.bails);
        let b = xxhash_rust::xxh3::xxh3_64(&self.blue);
        a ^ b.rotate_left(17)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walls_split_components() {
        let mut m = Map::blank(10);
        for y in 0..10 {
            m.set_terrain(Cell::new(5, y), Terrain::Rock);
        }
        assert_ne!(m.component(Cell::new(0, 0)), m.component(Cell::new(9, 9)));
        assert_eq!(m.component(Cell::new(5, 5)), NO_COMPONENT);
        m.set_terrain(Cell::new(5, 5), Terrain::Clear);
        assert_eq!(m.component(Cell::new(0, 0)), m.component(Cell::new(9, 9)));
    }

    #[test]
    fn diagonal_gap_does_not_connect() {
        // Two rocks touching at a corner: no corner cutting, so the diagonal is closed.
        let mut m = Map::blank(3);
        m.set_terrain(Cell::new(1, 0), Terrain::Rock);
        m.set_terrain(Cell::new(0, 1), Terrain::Rock);
        assert_ne!(m.component(Cell::new(0, 0)), m.component(Cell::new(1, 1)));
    }

    #[test]
    fn bails_turn_clear_into_tiberium_and_back() {
        let mut m = Map::blank(8);
        let c = Cell::new(3, 3);
        m.set_bails(c, 5, true);
        assert_eq!(m.terrain(c), Terrain::Tiberium);
        assert!(m.is_blue(c));
        assert!(!m.is_buildable(c));
        let f = m.field_of(c).unwrap();
        m.set_bails(Cell::new(4, 3), 1, true);
        assert_eq!(m.field_of(Cell::new(4, 3)), Some(f));
        m.set_bails(c, 0, true);
        assert_eq!(m.terrain(c), Terrain::Clear);
        assert_eq!(m.field_of(c), Some(f));
        m.set_terrain(Cell::new(0, 0), Terrain::Rock);
        m.set_bails(Cell::new(0, 0), 3, false);
        assert_eq!(m.bails(Cell::new(0, 0)), 0);
    }
}
