//! Units bucketed by cell (intrusive linked lists over a flat grid), rebuilt in id order
//! so every query visits units in a stable order: derived state owned by [`State`], used
//! by target acquisition, local separation and placement checks.

use events::{Cell, PlayerId, Pos, UnitId};

use crate::fixed::dist2;
use crate::sim::state::{Body, Ident, Mobile, State};

const NONE: u32 = u32::MAX;

/// A unit as the spatial index knows it.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub id: UnitId,
    pub entity: hecs::Entity,
    pub pos: Pos,
    pub owner: PlayerId,
}

/// Cells per side of a coarse block (as a shift): each block remembers which players have
/// units in it, so searches skip empty or friendly-only areas.
const BLOCK_SHIFT: u16 = 2;

/// The bucket grid (derived state).
#[derive(Default)]
pub struct Spatial {
    size: u16,
    head: Vec<u32>,
    next: Vec<u32>,
    /// Owner bit mask per block of `2^BLOCK_SHIFT` cells square.
    blocks: Vec<u8>,
    bside: usize,
    /// Every unit, in id order.
    pub units: Vec<Entry>,
}

impl Spatial {
    pub fn new(size: u16) -> Spatial {
        let bside = usize::from(size).div_ceil(1 << BLOCK_SHIFT);
        Spatial {
            size,
            head: vec![NONE; usize::from(size) * usize::from(size)],
            next: Vec::new(),
            blocks: vec![0; bside * bside],
            bside,
            units: Vec::new(),
        }
    }

    fn cell_index(&self, c: Cell) -> Option<usize> {
        (c.x < self.size && c.y < self.size)
            .then(|| usize::from(c.y) * usize::from(self.size) + usize::from(c.x))
    }

    /// Units whose cell is `c`, in id order.
    pub fn at(&self, c: Cell) -> impl Iterator<Item = &Entry> + '_ {
        let i = self.cell_index(c).map_or(NONE, |k| self.head[k]);
        self.list(i)
    }

    fn list(&self, mut i: u32) -> impl Iterator<Item = &Entry> + '_ {
        std::iter::from_fn(move || {
            if i == NONE {
                return None;
            }
            let e = &self.units[i as usize];
            i = self.next[i as usize];
            Some(e)
        })
    }

    /// Whether any unit stands on the cell.
    pub fn occupied(&self, c: Cell) -> bool {
        self.cell_index(c).is_some_and(|k| self.head[k] != NONE)
    }

    /// Calls `f` for every unit in the cells of the square `center ± r`, row by row, each
    /// cell in id order.
    pub fn for_each_near(&self, center: Cell, r: u16, mut f: impl FnMut(&Entry)) {
        let s = self.size.saturating_sub(1);
        let (x0, x1) = (
            center.x.saturating_sub(r),
            center.x.saturating_add(r).min(s),
        );
        let (y0, y1) = (
            center.y.saturating_sub(r),
            center.y.saturating_add(r).min(s),
        );
        let w = usize::from(self.size);
        for y in y0..=y1 {
            let row = usize::from(y) * w;
            for x in x0..=x1 {
                let mut i = self.head[row + usize::from(x)];
                while i != NONE {
                    f(&self.units[i as usize]);
                    i = self.next[i as usize];
                }
            }
        }
    }

    /// The nearest unit not owned by `own` within `r` (fixed-point) of `from`, by squared
    /// distance then id: blocks holding no enemy are skipped without visiting their cells.
    pub fn nearest_enemy(&self, from: Pos, r: i64, own: PlayerId) -> Option<(i64, UnitId)> {
        let own_bit = State::bit(own);
        let r2 = r * r;
        let rc = (r / i64::from(events::CELL) + 1).min(i64::from(self.size)) as i32;
        let c = from.cell();
        let s = i32::from(self.size) - 1;
        let (x0, x1) = ((i32::from(c.x) - rc).max(0), (i32::from(c.x) + rc).min(s));
        let (y0, y1) = ((i32::from(c.y) - rc).max(0), (i32::from(c.y) + rc).min(s));
        let sh = i32::from(BLOCK_SHIFT);
        let w = usize::from(self.size);
        let mut best: Option<(i64, UnitId)> = None;
        for by in (y0 >> sh)..=(y1 >> sh) {
            for bx in (x0 >> sh)..=(x1 >> sh) {
                if self.blocks[by as usize * self.bside + bx as usize] & !own_bit == 0 {
                    continue;
                }
                let (cy0, cy1) = ((by << sh).max(y0), ((by + 1) << sh).min(y1 + 1));
                let (cx0, cx1) = ((bx << sh).max(x0), ((bx + 1) << sh).min(x1 + 1));
                for y in cy0..cy1 {
                    for x in cx0..cx1 {
                        let mut i = self.head[y as usize * w + x as usize];
                        while i != NONE {
                            let e = &self.units[i as usize];
                            if e.owner != own {
                                let d = dist2(e.pos, from);
                                if d <= r2 && best.is_none_or(|b| (d, e.id) < b) {
                                    best = Some((d, e.id));
                                }
                            }
                            i = self.next[i as usize];
                        }
                    }
                }
            }
        }
        best
    }
}

/// Rebuilds the grid from the current unit positions.
pub fn rebuild(state: &mut State) {
    let mut sp = std::mem::take(&mut state.spatial);
    if sp.head.len() != state.map.len() {
        sp = Spatial::new(state.map.size);
    }
    sp.head.fill(NONE);
    sp.blocks.fill(0);
    sp.units.clear();
    for (entity, ident, body, _) in state
        .world
        .query::<(hecs::Entity, &Ident, &Body, &Mobile)>()
        .iter()
    {
        sp.units.push(Entry {
            id: ident.id,
            entity,
            pos: body.pos,
            owner: ident.owner,
        });
    }
    // hecs order is arbitrary; ids are unique, so this order is canonical.
    sp.units.sort_by_key(|e| e.id);
    sp.next.clear();
    sp.next.resize(sp.units.len(), NONE);
    let sh = BLOCK_SHIFT;
    // Insert in reverse so each cell's list comes out in ascending id order.
    for i in (0..sp.units.len()).rev() {
        let c = sp.units[i].pos.cell();
        if let Some(k) = sp.cell_index(c) {
            sp.next[i] = sp.head[k];
            sp.head[k] = i as u32;
            let b = usize::from(c.y >> sh) * sp.bside + usize::from(c.x >> sh);
            sp.blocks[b] |= State::bit(sp.units[i].owner);
        }
    }
    state.spatial = sp;
}
