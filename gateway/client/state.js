// state.js: the client's picture of the match: map, tiberium, visible entities with
// their previous positions (for interpolation), last-known buildings in the fog, vision,
// ledger, selection and control groups. Fed by keyframes and deltas from the server.

export const TERRAIN = { '.': 0, T: 1, R: 2, W: 3, '~': 4 };

export class GameState {
  constructor(welcome) {
    this.welcome = welcome;
    this.rules = welcome.rules;
    this.cell = welcome.rules.cell;
    this.players = welcome.players;
    this.role = welcome.role;
    this.me = welcome.player; // null for spectators
    this.w = welcome.map.width;
    this.h = welcome.map.height;
    this.terrain = new Uint8Array(this.w * this.h);
    const t = welcome.map.terrain;
    for (let i = 0; i < this.terrain.length; i++) this.terrain[i] = TERRAIN[t[i]] ?? 0;
    this.tiberium = new Map(); // index -> {bails, blue}
    for (const [x, y, b, blue] of welcome.map.tiberium) this.tiberium.set(y * this.w + x, { bails: b, blue: !!blue });
    this.entities = new Map();
    this.ghosts = new Map(); // last-known enemy buildings in the fog
    this.explored = new Uint8Array(this.w * this.h);
    this.visible = new Uint8Array(this.w * this.h);
    this.tick = null;
    this.tickAt = performance.now();
    this.tickMs = 1000 / welcome.rules.tick_hz;
    this.ledger = null;
    this.winner = undefined;
    this.defeated = new Set();
    this.selection = new Set();
    this.groups = new Map();
    this.framesApplied = 0;
    this.gaps = 0;
    this.terrainVersion = 0;
    // Shots and deaths of the deltas not yet handed to the renderer's effects.
    this.combat = [];
    if (this.role === 'spectator') { this.explored.fill(1); this.visible.fill(1); }
  }

  isMine(e) { return this.me !== null && e.owner === this.me; }
  isEnemy(e) { return this.me !== null && e.owner !== this.me; }

  kindRules(e) {
    return e.building ? this.rules.buildings[e.kind] : this.rules.units[e.kind];
  }

  // Footprint of a building: top-left cell and size (pos is the footprint's centre).
  footprint(e) {
    const r = this.rules.buildings[e.kind] || { width: 1, height: 1 };
    const x = Math.round((e.x - (r.width * this.cell) / 2) / this.cell);
    const y = Math.round((e.y - (r.height * this.cell) / 2) / this.cell);
    return { x, y, w: r.width, h: r.height };
  }

  // `fresh`: the entity appeared in a delta (a building then plays its construction).
  upsert(src, now, fresh = false) {
    const old = this.entities.get(src.id);
    const e = Object.assign({}, src);
    if (old) { e.px = old.x; e.py = old.y; e.pf = old.facing; } else { e.px = e.x; e.py = e.y; e.pf = e.facing; }
    // Hull direction (radians, counter-clockwise from east): where the unit last drove.
    const dx = e.x - e.px, dy = e.y - e.py;
    if (old && (dx || dy)) e.hull = Math.atan2(-dy, dx);
    else e.hull = old && old.hull !== undefined ? old.hull : (e.facing / 256) * Math.PI * 2;
    e.born = old ? old.born : fresh && !this.ghosts.has(e.id) ? now : 0;
    e.seen = now;
    this.entities.set(e.id, e);
    if (e.building) this.ghosts.delete(e.id);
  }

  hide(id) {
    const e = this.entities.get(id);
    if (!e) return;
    this.entities.delete(id);
    if (e.building && !this.isMine(e)) this.ghosts.set(id, e);
    this.selection.delete(id);
  }

  remove(id) {
    this.entities.delete(id);
    this.ghosts.delete(id);
    this.selection.delete(id);
  }

  setTiberium(list) {
    for (const [x, y, b, blue] of list) {
      const i = y * this.w + x;
      if (b > 0) this.tiberium.set(i, { bails: b, blue: !!blue }); else this.tiberium.delete(i);
    }
    this.terrainVersion++;
  }

  applyKeyframe(kf) {
    const now = performance.now();
    const keep = new Set(kf.entities.map((e) => e.id));
    for (const id of [...this.entities.keys()]) if (!keep.has(id)) this.hide(id);
    for (const e of kf.entities) this.upsert(e, now);
    this.tiberium.clear();
    this.setTiberium(kf.tiberium);
    if (kf.game_over) this.winner = kf.winner;
    this.setTick(kf.tick, now, true);
  }

  applyDelta(d) {
    const now = performance.now();
    // Entities not in this delta did not move: their previous position is their current.
    for (const e of this.entities.values()) { e.px = e.x; e.py = e.y; e.pf = e.facing; }
    for (const e of d.entities) this.upsert(e, now, true);
    if ((d.attacks && d.attacks.length) || (d.deaths && d.deaths.length)) {
      // A death keeps the facing of what died (for its wreck) before it is removed.
      const deaths = (d.deaths || []).map((x) => {
        const e = this.entities.get(x.id);
        return { ...x, dir: e ? (e.hull ?? (e.facing / 256) * Math.PI * 2) : 0 };
      });
      this.combat.push({ attacks: d.attacks || [], deaths, at: now });
      if (this.combat.length > 100) this.combat.shift();
    }
    for (const id of d.hidden) this.hide(id);
    for (const id of d.removed) this.remove(id);
    if (d.tiberium.length) this.setTiberium(d.tiberium);
    if (d.game_over) this.winner = d.winner ?? null;
    this.setTick(d.tick, now, false);
  }

  setTick(tick, now, key) {
    if (!key && this.tick !== null && tick !== this.tick + 1) this.gaps++;
    this.tick = tick;
    this.tickAt = now;
    this.framesApplied++;
    this.computeVision();
  }

  // Vision: union of own units' and buildings' sight circles (the server filters what
  // we receive; this only draws shroud and fog and expires stale ghosts).
  computeVision() {
    if (this.role === 'spectator') return;
    this.visible.fill(0);
    const W = this.w, H = this.h;
    for (const e of this.entities.values()) {
      if (!this.isMine(e)) continue;
      const r = this.kindRules(e);
      const sight = r ? r.sight : 3;
      const cx = Math.floor(e.x / this.cell), cy = Math.floor(e.y / this.cell);
      const r2 = (sight + 0.5) * (sight + 0.5);
      for (let dy = -sight; dy <= sight; dy++) {
        const y = cy + dy;
        if (y < 0 || y >= H) continue;
        for (let dx = -sight; dx <= sight; dx++) {
          const x = cx + dx;
          if (x < 0 || x >= W || dx * dx + dy * dy > r2) continue;
          const i = y * W + x;
          this.visible[i] = 1;
          this.explored[i] = 1;
        }
      }
    }
    // A ghost whose footprint is in view but which the server did not send is gone.
    for (const [id, g] of this.ghosts) {
      const f = this.footprint(g);
      let seen = false;
      for (let y = f.y; y < f.y + f.h && !seen; y++) for (let x = f.x; x < f.x + f.w; x++) {
        if (x >= 0 && y >= 0 && x < W && y < H && this.visible[y * W + x]) { seen = true; break; }
      }
      if (seen) this.ghosts.delete(id);
    }
  }

  // Interpolated position of an entity at time `now`.
  drawPos(e, now) {
    const a = Math.max(0, Math.min(1, (now - this.tickAt) / this.tickMs));
    return { x: e.px + (e.x - e.px) * a, y: e.py + (e.y - e.py) * a, a };
  }

  drawFacing(e, a) {
    let d = e.facing - e.pf;
    if (d > 128) d -= 256; else if (d < -128) d += 256;
    return e.pf + d * a;
  }

  tiberiumAt(cx, cy) {
    if (cx < 0 || cy < 0 || cx >= this.w || cy >= this.h) return null;
    return this.tiberium.get(cy * this.w + cx) || null;
  }

  entityAtCell(cx, cy) {
    for (const e of this.entities.values()) {
      if (e.building) {
        const f = this.footprint(e);
        if (cx >= f.x && cx < f.x + f.w && cy >= f.y && cy < f.y + f.h) return e;
      }
    }
    return null;
  }

  ownBuildings() {
    return [...this.entities.values()].filter((e) => e.building && this.isMine(e));
  }

  has(kind) {
    for (const e of this.entities.values()) if (this.isMine(e) && e.kind === kind) return true;
    return false;
  }

  // Whether a building of `kind` may go with its top-left corner at (x, y), as far as
  // this client knows (the economy and engine decide for real).
  canPlace(kind, x, y) {
    const r = this.rules.buildings[kind];
    if (!r) return false;
    if (x < 0 || y < 0 || x + r.width > this.w || y + r.height > this.h) return false;
    for (let cy = y; cy < y + r.height; cy++) for (let cx = x; cx < x + r.width; cx++) {
      const i = cy * this.w + cx;
      if (this.terrain[i] !== 0 && !(this.terrain[i] === 4 && !this.tiberium.has(i))) return false;
      if (this.tiberium.has(i)) return false;
      if (this.role !== 'spectator' && !this.explored[i]) return false;
    }
    const overlaps = (f) => x < f.x + f.w && f.x < x + r.width && y < f.y + f.h && f.y < y + r.height;
    for (const e of this.entities.values()) {
      if (e.building) { if (overlaps(this.footprint(e))) return false; }
      else {
        const ux = Math.floor(e.x / this.cell), uy = Math.floor(e.y / this.cell);
        if (overlaps({ x: ux, y: uy, w: 1, h: 1 })) return false;
      }
    }
    for (const g of this.ghosts.values()) if (overlaps(this.footprint(g))) return false;
    const rad = this.rules.placement_radius;
    for (const b of this.ownBuildings()) {
      const f = this.footprint(b);
      const gapX = Math.max(0, f.x - (x + r.width), x - (f.x + f.w));
      const gapY = Math.max(0, f.y - (y + r.height), y - (f.y + f.h));
      if (Math.max(gapX, gapY) <= rad) return true;
    }
    return false;
  }

  // A valid top-left cell for `kind` near own buildings (for tests and a hint).
  findPlacement(kind) {
    const own = this.ownBuildings();
    if (!own.length) return null;
    const yard = own.find((b) => b.kind === 'construction_yard') || own[0];
    const f = this.footprint(yard);
    for (let r = 1; r < 12; r++) {
      for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) {
        if (Math.max(Math.abs(dx), Math.abs(dy)) !== r) continue;
        const x = f.x + dx, y = f.y + dy;
        if (this.canPlace(kind, x, y)) return { x, y };
      }
    }
    return null;
  }
}
