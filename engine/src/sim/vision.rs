//! Fog of war state: per-player vision counts (how many own sight circles cover each
//! cell), derived state owned by [`State`] and updated incrementally by the visibility
//! system (`systems::visibility`) when an entity changes cell, and the per-entity
//! visibility mask of the view output.

use events::{Cell, EntityKind, PlayerId};

use crate::sim::state::{Body, Footprint, Ident, PlayerState, State};

/// Largest sight radius in cells; larger rules values are clamped (bounds the work of one
/// stamp).
pub const MAX_SIGHT: u16 = 24;

/// The cells within `r` of the origin.
fn disc(r: u16) -> Vec<(i16, i16)> {
    let k = i32::from(r);
    let mut d = Vec::new();
    for dy in -k..=k {
        for dx in -k..=k {
            // `+ k` rounds the circle out a little, like the classic games.
            if dx * dx + dy * dy <= k * k + k {
                d.push((dx as i16, dy as i16));
            }
        }
    }
    d
}

/// Vision grids (derived state; rebuilt on restore).
#[derive(Default)]
pub struct Vision {
    size: u16,
    cells: usize,
    /// `players × cells` counters.
    counts: Vec<u32>,
    /// Disc offsets per sight radius.
    discs: Vec<Vec<(i16, i16)>>,
    /// Player index by player id (255: not in the match).
    slot: Vec<u8>,
    ids: Vec<PlayerId>,
}

impl Vision {
    pub fn new(size: u16, players: &[PlayerState]) -> Vision {
        let cells = usize::from(size) * usize::from(size);
        let mut slot = vec![u8::MAX; 256];
        for (i, p) in players.iter().enumerate() {
            slot[usize::from(p.id.0)] = i as u8;
        }
        Vision {
            size,
            cells,
            counts: vec![0; cells * players.len()],
            discs: (0..=MAX_SIGHT).map(disc).collect(),
            slot,
            ids: players.iter().map(|p| p.id).collect(),
        }
    }

    /// Adds (`add`) or removes one sight circle of a player.
    pub fn stamp(&mut self, owner: PlayerId, at: Cell, r: u16, add: bool) {
        let slot = self.slot[usize::from(owner.0)];
        if slot == u8::MAX {
            return;
        }
        let base = usize::from(slot) * self.cells;
        let size = i32::from(self.size);
        let disc = &self.discs[usize::from(r.min(MAX_SIGHT))];
        for &(dx, dy) in disc {
            let x = i32::from(at.x) + i32::from(dx);
            let y = i32::from(at.y) + i32::from(dy);
            if x < 0 || y < 0 || x >= size || y >= size {
                continue;
            }
            let c = &mut self.counts[base + (y * size + x) as usize];
            *c = if add { *c + 1 } else { c.saturating_sub(1) };
        }
    }

    /// Bit mask (bit = player id) of the players who see a cell.
    pub fn mask(&self, c: Cell) -> u8 {
        if c.x >= self.size || c.y >= self.size {
            return 0;
        }
        let i = usize::from(c.y) * usize::from(self.size) + usize::from(c.x);
        let mut m = 0u8;
        for (k, p) in self.ids.iter().enumerate() {
            if self.counts[k * self.cells + i] > 0 {
                m |= State::bit(*p);
            }
        }
        m
    }

    /// Whether a player sees a cell.
    pub fn sees(&self, p: PlayerId, c: Cell) -> bool {
        self.mask(c) & State::bit(p) != 0
    }
}

/// The cell an entity sees from: its own, or its footprint's centre.
pub(crate) fn eye(body: &Body, fp: Option<&Footprint>) -> Cell {
    match fp {
        Some(f) => Cell::new(
            f.at.x.saturating_add(f.w / 2),
            f.at.y.saturating_add(f.h / 2),
        ),
        None => body.pos.cell(),
    }
}

/// Who sees an entity: its owner always, others when their vision covers it (any
/// footprint cell, for buildings).
pub fn mask_of(vision: &Vision, ident: &Ident, body: &Body, fp: Option<&Footprint>) -> u8 {
    let mut m = State::bit(ident.owner);
    match (ident.kind, fp) {
        (EntityKind::Building(_), Some(f)) => {
            for c in f.cells() {
                m |= vision.mask(c);
            }
        }
        _ => m |= vision.mask(body.pos.cell()),
    }
    m
}
