//! The per-tick state hash: xxh3 over every simulation field in canonical order (scalars,
//! players, path queues, then each entity in id order, then the map's tiberium grids).
//! Derived data (vision, spatial buckets, last views) is left out: it follows from this.

use events::{Cell, EntityKind, PlayerId, Pos, UnitId};

use super::state::{
    Body, Dock, Footprint, Harvester, Health, Ident, Job, Mobile, Order, Rally, State, Weapon,
};

/// A little-endian byte sink; fields are appended, then hashed in one go.
struct W<'a>(&'a mut Vec<u8>);

impl W<'_> {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    fn cell(&mut self, c: Cell) {
        self.u16(c.x);
        self.u16(c.y);
    }
    fn opt_cell(&mut self, c: Option<Cell>) {
        match c {
            Some(c) => {
                self.u8(1);
                self.cell(c);
            }
            None => self.u8(0),
        }
    }
    fn id(&mut self, u: UnitId) {
        self.u32(u.0);
    }
    fn opt_id(&mut self, u: Option<UnitId>) {
        self.u32(u.map_or(u32::MAX, |u| u.0));
    }
    fn player(&mut self, p: PlayerId) {
        self.u8(p.0);
    }
    fn pos(&mut self, p: Pos) {
        self.i32(p.x);
        self.i32(p.y);
    }
    fn kind(&mut self, k: EntityKind) {
        match k {
            EntityKind::Unit(u) => {
                self.u8(0);
                self.u8(u as u8);
            }
            EntityKind::Building(b) => {
                self.u8(1);
                self.u8(b as u8);
            }
        }
    }
}

/// Hashes the state, reusing `buf` as scratch.
pub fn state_hash(state: &State, buf: &mut Vec<u8>) -> u64 {
    buf.clear();
    let mut w = W(buf);
    w.u64(state.tick);
    w.u64(state.rng.state());
    w.u32(state.next_id);
    match state.winner {
        None => w.u8(0),
        Some(None) => w.u8(1),
        Some(Some(p)) => {
            w.u8(2);
            w.player(p);
        }
    }
    for p in &state.players {
        w.player(p.id);
        w.bool(p.low_power);
        w.bool(p.defeated);
    }
    w.u32(state.paths.next as u32);
    for q in &state.paths.queues {
        w.u32(q.len() as u32);
        for r in q {
            w.cell(r.goal);
            w.u32(r.units.len() as u32);
            for &(u, t) in &r.units {
                w.id(u);
                w.u32(t);
            }
        }
    }
    w.u32(state.index.len() as u32);
    let mut q = state.world.query::<Row<'_>>();
    let mut rows: Vec<_> = q.iter().collect();
    // hecs order is arbitrary: hash in id order.
    rows.sort_by_key(|r| r.0.id);
    for r in rows {
        entity(r, &mut w);
    }
    for f in &state.map.fields {
        w.u16(f.id);
        w.bool(f.blue);
        w.u32(f.cells.len() as u32);
    }
    for c in &state.map.starts {
        w.cell(*c);
    }
    w.u64(state.map.tiberium_digest());
    xxhash_rust::xxh3::xxh3_64(buf)
}

/// Every component of an entity (optional ones for the kinds that have them).
type Row<'a> = (
    &'a Ident,
    &'a Health,
    &'a Body,
    Option<&'a Mobile>,
    Option<&'a Weapon>,
    Option<&'a Footprint>,
    Option<&'a Harvester>,
    Option<&'a Dock>,
    Option<&'a Rally>,
);

fn entity(row: <Row<'_> as hecs::Query>::Item<'_>, w: &mut W<'_>) {
    let (i, h, b, m, wp, fp, hv, dock, rally) = row;
    w.id(i.id);
    w.player(i.owner);
    w.kind(i.kind);
    w.u32(h.hp);
    w.u32(h.max);
    w.pos(b.pos);
    w.u8(b.facing);
    if let Some(m) = m {
        w.u8(1);
        w.i32(m.speed);
        match m.order {
            Order::Idle => w.u8(0),
            Order::Move => w.u8(1),
            Order::AttackMove { goal } => {
                w.u8(2);
                w.cell(goal);
            }
            Order::Attack { target } => {
                w.u8(3);
                w.id(target);
            }
            Order::Hold => w.u8(4),
            Order::Harvest => w.u8(5),
        }
        w.opt_cell(m.dest);
        w.u32(m.path.len() as u32);
        w.u64(m.path_digest);
        w.u32(m.step);
        w.bool(m.waiting);
        w.u32(m.token);
        w.u16(m.stuck);
        w.u32(m.last_dist);
    }
    if let Some(wp) = wp {
        w.u8(2);
        w.u32(wp.reload);
        w.opt_id(wp.target);
        w.bool(wp.explicit);
    }
    if let Some(f) = fp {
        w.u8(3);
        w.cell(f.at);
        w.u16(f.w);
        w.u16(f.h);
    }
    if let Some(h) = hv {
        w.u8(4);
        w.u32(h.green);
        w.u32(h.blue);
        w.u32(h.timer);
        match h.job {
            Job::Idle => w.u8(0),
            Job::Going { field, cell } => {
                w.u8(1);
                w.u16(field);
                w.cell(cell);
            }
            Job::Loading { field, cell } => {
                w.u8(2);
                w.u16(field);
                w.cell(cell);
            }
            Job::Returning { refinery } => {
                w.u8(3);
                w.id(refinery);
            }
            Job::Queued { refinery } => {
                w.u8(4);
                w.id(refinery);
            }
            Job::Docked { refinery } => {
                w.u8(5);
                w.id(refinery);
            }
        }
    }
    if let Some(d) = dock {
        w.u8(5);
        w.opt_id(d.docked);
        w.u32(d.queue.len() as u32);
        for &u in &d.queue {
            w.id(u);
        }
    }
    if let Some(r) = rally {
        w.u8(6);
        w.cell(r.0);
    }
    w.u8(0xFF);
}
