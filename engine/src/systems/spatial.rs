//! Units bucketed by cell (intrusive linked lists over a flat grid), rebuilt in id order
//! so every query visits units in a stable order. Used by target acquisition, local
//! separation and placement checks.

use events::{Cell, PlayerId, Pos, UnitId};

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

/// The bucket grid (derived state).
#[derive(Default)]
pub struct Spatial {
    size: u16,
    head: Vec<u32>,
    next: Vec<u32>,
    /// Every unit, in id order.
    pub units: Vec<Entry>,
}

impl Spatial {
    pub fn new(size: u16) -> Spatial {
        Spatial {
            size,
            head: vec![NONE; usize::from(size) * usize::from(size)],
            next: Vec::new(),
            units: Vec::new(),
        }
    }

    fn cell_index(&self, c: Cell) -> Option<usize> {
        (c.x < self.size && c.y < self.size)
            .then(|| usize::from(c.y) * usize::from(self.size) + usize::from(c.x))
    }

    /// Units whose cell is `c`, in id order.
    pub fn at(&self, c: Cell) -> impl Iterator<Item = &Entry> + '_ {
        let mut i = self.cell_index(c).map_or(NONE, |k| self.head[k]);
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
        for y in y0..=y1 {
            for x in x0..=x1 {
                for e in self.at(Cell::new(x, y)) {
                    f(e);
                }
            }
        }
    }
}

/// Rebuilds the grid from the current unit positions.
pub fn rebuild(state: &mut State) {
    let mut sp = std::mem::take(&mut state.spatial);
    if sp.head.len() != state.map.len() {
        sp = Spatial::new(state.map.size);
    }
    sp.head.fill(NONE);
    sp.units.clear();
    for (&id, &e) in &state.index {
        let mut q = state.world.query_one::<(&Ident, &Body, &Mobile)>(e);
        if let Ok((ident, body, _)) = q.get() {
            sp.units.push(Entry {
                id,
                entity: e,
                pos: body.pos,
                owner: ident.owner,
            });
        }
    }
    sp.next.clear();
    sp.next.resize(sp.units.len(), NONE);
    // Insert in reverse so each cell's list comes out in ascending id order.
    for i in (0..sp.units.len()).rev() {
        if let Some(k) = sp.cell_index(sp.units[i].pos.cell()) {
            sp.next[i] = sp.head[k];
            sp.head[k] = i as u32;
        }
    }
    state.spatial = sp;
}
