// render.js: draws the game view on a 2D canvas (pre-rendered terrain, tiberium crystals,
// sprites of buildings and units in their owners' colours, combat effects, soft shroud and
// fog, selection, placement ghost) and the minimap. Sprites, terrain and effects live in
// sprites.js, terrain.js and effects.js.

import { Sprites, UNIT_DIRS } from './sprites.js';
import { TerrainLayer, ShroudLayer } from './terrain.js';
import { Effects } from './effects.js';

const TERRAIN_COLORS = ['#5a6b3a', '#2f4a24', '#6b6259', '#2a4d7a', '#5a6b3a'];
const PLAYER_COLORS = ['#e04848', '#4880e0', '#e0c040', '#40c0a0', '#c060e0', '#e08a30', '#a0a0a0', '#60d060'];
// How long a new building takes to rise on screen (ms).
const CONSTRUCT_MS = 1600;
export const BASE_CELL_PX = 24;

export function playerColor(id) { return PLAYER_COLORS[id % PLAYER_COLORS.length]; }

export class Camera {
  constructor() { this.x = 0; this.y = 0; this.zoom = 1; this.vw = 800; this.vh = 600; }
  get cellPx() { return BASE_CELL_PX * this.zoom; }
  // Fixed-point world → canvas pixels.
  toScreen(state, wx, wy) {
    const k = this.cellPx / state.cell;
    return { x: wx * k - this.x, y: wy * k - this.y };
  }
  // Canvas pixels → fractional cell.
  toCell(sx, sy) {
    return { x: (sx + this.x) / this.cellPx, y: (sy + this.y) / this.cellPx };
  }
  centerOnCell(state, cx, cy) {
    this.x = cx * this.cellPx - this.vw / 2;
    this.y = cy * this.cellPx - this.vh / 2;
    this.clamp(state);
  }
  // Keeps the map on screen; a map smaller than the view is centred.
  clamp(state) {
    const maxX = state.w * this.cellPx - this.vw, maxY = state.h * this.cellPx - this.vh;
    this.x = maxX < 0 ? maxX / 2 : Math.max(0, Math.min(this.x, maxX));
    this.y = maxY < 0 ? maxY / 2 : Math.max(0, Math.min(this.y, maxY));
  }
}

export class Renderer {
  constructor(canvas, minimap, state, camera) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.minimap = minimap;
    this.mctx = minimap.getContext('2d');
    this.state = state;
    this.camera = camera;
    this.lastMinimap = 0;
    this.dpr = window.devicePixelRatio || 1;
    this.sprites = new Sprites();
    this.terrain = new TerrainLayer(state);
    this.shroud = new ShroudLayer(state);
    this.effects = new Effects(this.sprites);
  }

  resize() {
    const r = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.dpr = dpr;
    this.canvas.width = Math.max(1, Math.floor(r.width * dpr));
    this.canvas.height = Math.max(1, Math.floor(r.height * dpr));
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.camera.vw = r.width;
    this.camera.vh = r.height;
    this.camera.clamp(this.state);
  }

  // Blits a cached sprite centred on (x, y) at its natural size (whole device pixels, so
  // the owner's colour stays exact).
  blit(img, x, y) {
    const d = this.dpr, w = img.width / d, h = img.height / d;
    this.ctx.drawImage(img, Math.round((x - w / 2) * d) / d, Math.round((y - h / 2) * d) / d, w, h);
  }

  draw(now, ui) {
    const { ctx, state: s, camera: cam } = this;
    const cp = cam.cellPx;
    this.sprites.setScale(cp * this.dpr);
    this.effects.dpr = this.dpr;
    for (const f of s.combat) {
      for (const d of f.deaths) d.color = playerColor(d.owner);
      this.effects.ingest(s, f, f.at);
    }
    s.combat.length = 0;
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, cam.vw, cam.vh);
    this.terrain.draw(ctx, cam);
    const x0 = Math.max(0, Math.floor(cam.x / cp)), y0 = Math.max(0, Math.floor(cam.y / cp));
    const x1 = Math.min(s.w - 1, Math.ceil((cam.x + cam.vw) / cp)), y1 = Math.min(s.h - 1, Math.ceil((cam.y + cam.vh) / cp));
    // Tiberium crystals (explored cells): their number and size follow the cell's bails.
    const max = s.rules.max_bails || 12;
    const d = this.dpr;
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const i = y * s.w + x;
        const t = s.tiberium.get(i);
        if (!t || !s.explored[i]) continue;
        const img = this.sprites.crystals(Math.min(max, t.bails), max, t.blue, (x * 7 + y * 13) % 4);
        ctx.drawImage(img, Math.round((x * cp - cam.x) * d) / d, Math.round((y * cp - cam.y) * d) / d, img.width / d, img.height / d);
      }
    }
    this.effects.drawDecals(ctx, s, cam, now);
    // Last-known buildings in the fog.
    ctx.globalAlpha = 0.55;
    for (const g of s.ghosts.values()) this.drawBuilding(g, false, now);
    ctx.globalAlpha = 1;
    // Buildings, then units, then what they fire.
    for (const e of s.entities.values()) if (e.building) this.drawBuilding(e, s.selection.has(e.id), now);
    for (const e of s.entities.values()) if (!e.building) this.drawUnit(e, now, s.selection.has(e.id));
    this.effects.draw(ctx, s, cam, now);
    // Fog (explored, not visible) and shroud, with soft edges.
    this.shroud.draw(ctx, cam);
    // Placement ghost.
    if (ui.placing && ui.hoverCell) {
      const r = s.rules.buildings[ui.placing];
      const tl = ui.placeAt();
      const ok = s.canPlace(ui.placing, tl.x, tl.y);
      const sx = tl.x * cp - cam.x, sy = tl.y * cp - cam.y;
      ctx.globalAlpha = 0.6;
      const img = this.sprites.building(ui.placing, s.me !== null ? playerColor(s.me) : '#a0a0a0', r.width, r.height, false);
      ctx.drawImage(img, sx, sy, r.width * cp, r.height * cp);
      ctx.globalAlpha = 1;
      ctx.fillStyle = ok ? 'rgba(80,220,80,0.3)' : 'rgba(230,60,60,0.4)';
      ctx.fillRect(sx, sy, r.width * cp, r.height * cp);
      ctx.strokeStyle = ok ? '#8f8' : '#f66';
      ctx.strokeRect(sx, sy, r.width * cp, r.height * cp);
    }
    // Selection box.
    if (ui.box) {
      ctx.strokeStyle = '#8f8';
      ctx.lineWidth = 1;
      ctx.setLineDash([4, 3]);
      ctx.strokeRect(ui.box.x0, ui.box.y0, ui.box.x1 - ui.box.x0, ui.box.y1 - ui.box.y0);
      ctx.setLineDash([]);
    }
    if (ui.marker && now - ui.marker.at < 500) {
      const p = cam.toScreen(s, ui.marker.x, ui.marker.y);
      ctx.strokeStyle = ui.marker.color;
      ctx.beginPath();
      ctx.arc(p.x, p.y, 4 + (now - ui.marker.at) / 40, 0, Math.PI * 2);
      ctx.stroke();
    }
    if (now - this.lastMinimap > 250) { this.drawMinimap(); this.lastMinimap = now; }
  }

  // White corner brackets around a selected thing.
  brackets(x, y, w, h) {
    const ctx = this.ctx, k = Math.max(3, Math.min(w, h) * 0.25);
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const [cx, cy, dx, dy] of [[x, y, 1, 1], [x + w, y, -1, 1], [x, y + h, 1, -1], [x + w, y + h, -1, -1]]) {
      ctx.moveTo(cx + dx * k, cy); ctx.lineTo(cx, cy); ctx.lineTo(cx, cy + dy * k);
    }
    ctx.stroke();
  }

  drawBuilding(e, selected, now = performance.now()) {
    const { ctx, state: s, camera: cam } = this;
    const cp = cam.cellPx;
    const f = s.footprint(e);
    const sx = f.x * cp - cam.x, sy = f.y * cp - cam.y, w = f.w * cp, h = f.h * cp;
    if (sx > cam.vw || sy > cam.vh || sx + w < 0 || sy + h < 0) return;
    const color = playerColor(e.owner);
    const damaged = e.hp * 2 < e.max_hp;
    const img = this.sprites.building(e.kind, color, f.w, f.h, damaged);
    const iw = img.width / this.dpr, ih = img.height / this.dpr;
    const x = Math.round(sx), y = Math.round(sy);
    const age = e.born ? now - e.born : CONSTRUCT_MS;
    if (age < CONSTRUCT_MS) {
      // Construction: the building rises from its foundations inside a scaffold.
      const p = Math.max(0.05, age / CONSTRUCT_MS);
      ctx.fillStyle = 'rgba(60,58,52,0.8)';
      ctx.fillRect(x, y, iw, ih);
      ctx.drawImage(img, 0, img.height * (1 - p), img.width, img.height * p, x, y + ih * (1 - p), iw, ih * p);
      ctx.strokeStyle = color;
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let k = 0; k <= f.w; k++) { ctx.moveTo(x + k * cp, y); ctx.lineTo(x + k * cp, y + ih); }
      for (let k = 0; k <= f.h; k++) { ctx.moveTo(x, y + k * cp); ctx.lineTo(x + iw, y + k * cp); }
      ctx.stroke();
      ctx.fillStyle = 'rgba(255,240,160,0.9)';
      ctx.fillRect(x, y + ih * (1 - p) - 1, iw, 2);
    } else {
      ctx.drawImage(img, x, y, iw, ih);
    }
    if (this.sprites.hasTurret(e.kind)) {
      const aim = this.effects.aimOf(e.id, now);
      const ang = aim ? Math.atan2(-(aim.y - e.y), aim.x - e.x) : (e.facing / 256) * Math.PI * 2;
      this.blit(this.sprites.turret(e.kind, color, Sprites.dirOf(ang)), sx + w / 2, sy + h / 2);
    }
    if (damaged && ctx.globalAlpha === 1) this.effects.smoke(ctx, sx + w * 0.6, sy + h * 0.35, cp * 1.1, now, e.id);
    if (selected) this.brackets(sx, sy, w, h);
    if (selected || e.hp < e.max_hp) this.healthBar(sx + 2, sy - 5, w - 4, e.hp / Math.max(1, e.max_hp));
  }

  drawUnit(e, now, selected) {
    const { ctx, state: s, camera: cam } = this;
    const cp = cam.cellPx;
    const p = s.drawPos(e, now);
    const c = cam.toScreen(s, p.x, p.y);
    if (c.x < -cp || c.y < -cp || c.x > cam.vw + cp || c.y > cam.vh + cp) return;
    const r = s.rules.units[e.kind];
    const color = playerColor(e.owner);
    const facing = (s.drawFacing(e, p.a) / 256) * Math.PI * 2; // counter-clockwise from east
    if (selected) {
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.ellipse(c.x, c.y + cp * 0.1, cp * 0.45, cp * 0.32, 0, 0, Math.PI * 2);
      ctx.stroke();
    }
    if (r && r.infantry) {
      const moving = e.x !== e.px || e.y !== e.py;
      const step = moving ? 1 + (Math.floor(now / 160) % 2) : 0;
      const dir = Sprites.dirOf(facing, UNIT_DIRS / 2) * 2;
      this.blit(this.sprites.unit(e.kind, color, dir, step, true), c.x, c.y);
    } else {
      const hull = this.sprites.hasTurret(e.kind) ? e.hull ?? facing : facing;
      const variant = e.kind === 'harvester' && e.cargo > 0 ? Math.min(6, Math.ceil(e.cargo / 5)) : 0;
      this.blit(this.sprites.unit(e.kind, color, Sprites.dirOf(hull), variant), c.x, c.y);
      if (this.sprites.hasTurret(e.kind)) {
        // The turret turns to its target while fighting, else looks where the unit faces.
        const aim = this.effects.aimOf(e.id, now);
        let ang = facing;
        if (aim) {
          const t = s.entities.get(aim.target);
          const tx = t ? t.x : aim.x, ty = t ? t.y : aim.y;
          ang = Math.atan2(-(ty - p.y), tx - p.x);
        }
        this.blit(this.sprites.turret(e.kind, color, Sprites.dirOf(ang)), c.x, c.y);
      }
      if (e.hp * 2 < e.max_hp) this.effects.smoke(ctx, c.x, c.y - cp * 0.2, cp * 0.6, now, e.id);
    }
    if (selected || e.hp < e.max_hp) this.healthBar(c.x - cp * 0.35, c.y - cp * 0.5, cp * 0.7, e.hp / Math.max(1, e.max_hp));
  }

  healthBar(x, y, w, frac) {
    const ctx = this.ctx;
    ctx.fillStyle = '#000';
    ctx.fillRect(x, y, w, 3);
    ctx.fillStyle = frac > 0.5 ? '#4e4' : frac > 0.25 ? '#ec4' : '#e44';
    ctx.fillRect(x, y, w * Math.max(0, Math.min(1, frac)), 3);
  }

  drawMinimap() {
    const { mctx: m, state: s, camera: cam } = this;
    const W = this.minimap.width, H = this.minimap.height;
    const k = Math.min(W / s.w, H / s.h);
    if (!this.mini || this.miniW !== s.w) {
      this.mini = m.createImageData(s.w, s.h);
      this.miniW = s.w;
    }
    const img = this.mini.data;
    const rgb = TERRAIN_COLORS.map((c) => [parseInt(c.slice(1, 3), 16), parseInt(c.slice(3, 5), 16), parseInt(c.slice(5, 7), 16)]);
    for (let i = 0; i < s.w * s.h; i++) {
      let c = [0, 0, 0];
      if (s.explored[i]) {
        c = rgb[s.terrain[i]];
        const t = s.tiberium.get(i);
        if (t) c = t.blue ? [74, 168, 255] : [95, 224, 95];
        if (s.role !== 'spectator' && !s.visible[i]) c = [c[0] >> 1, c[1] >> 1, c[2] >> 1];
      }
      img[i * 4] = c[0]; img[i * 4 + 1] = c[1]; img[i * 4 + 2] = c[2]; img[i * 4 + 3] = 255;
    }
    const paint = (e) => {
      const col = playerColor(e.owner);
      const r = parseInt(col.slice(1, 3), 16), g = parseInt(col.slice(3, 5), 16), b = parseInt(col.slice(5, 7), 16);
      const fp = e.building ? s.footprint(e) : { x: Math.floor(e.x / s.cell), y: Math.floor(e.y / s.cell), w: 1, h: 1 };
      for (let y = fp.y; y < fp.y + fp.h; y++) for (let x = fp.x; x < fp.x + fp.w; x++) {
        if (x < 0 || y < 0 || x >= s.w || y >= s.h) continue;
        const i = (y * s.w + x) * 4;
        img[i] = r; img[i + 1] = g; img[i + 2] = b;
      }
    };
    for (const g of s.ghosts.values()) paint(g);
    for (const e of s.entities.values()) paint(e);
    if (!this.miniCanvas) { this.miniCanvas = document.createElement('canvas'); }
    this.miniCanvas.width = s.w; this.miniCanvas.height = s.h;
    this.miniCanvas.getContext('2d').putImageData(this.mini, 0, 0);
    m.imageSmoothingEnabled = false;
    m.fillStyle = '#000';
    m.fillRect(0, 0, W, H);
    m.drawImage(this.miniCanvas, 0, 0, s.w * k, s.h * k);
    m.strokeStyle = '#fff';
    m.strokeRect(cam.x / cam.cellPx * k, cam.y / cam.cellPx * k, cam.vw / cam.cellPx * k, cam.vh / cam.cellPx * k);
    this.miniScale = k;
  }
}
