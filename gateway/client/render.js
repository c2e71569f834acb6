// render.js: draws the game view on a 2D canvas (terrain, tiberium, buildings, units
// with facing and health bars, shroud and fog, selection, placement ghost) and the minimap.

const TERRAIN_COLORS = ['#5a6b3a', '#2f4a24', '#6b6259', '#2a4d7a', '#5a6b3a'];
const PLAYER_COLORS = ['#e04848', '#4880e0', '#e0c040', '#40c0a0', '#c060e0', '#e08a30', '#a0a0a0', '#60d060'];
const SHORT = {
  construction_yard: 'YARD', power_plant: 'PWR', refinery: 'REF', barracks: 'BAR',
  war_factory: 'FAC', guard_tower: 'GT', laser_tower: 'LT',
};
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
  }

  resize() {
    const r = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.floor(r.width * dpr));
    this.canvas.height = Math.max(1, Math.floor(r.height * dpr));
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.camera.vw = r.width;
    this.camera.vh = r.height;
    this.camera.clamp(this.state);
  }

  draw(now, ui) {
    const { ctx, state: s, camera: cam } = this;
    const cp = cam.cellPx;
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, cam.vw, cam.vh);
    const x0 = Math.max(0, Math.floor(cam.x / cp)), y0 = Math.max(0, Math.floor(cam.y / cp));
    const x1 = Math.min(s.w - 1, Math.ceil((cam.x + cam.vw) / cp)), y1 = Math.min(s.h - 1, Math.ceil((cam.y + cam.vh) / cp));
    // Terrain and tiberium (only explored cells).
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const i = y * s.w + x;
        if (!s.explored[i]) continue;
        const sx = x * cp - cam.x, sy = y * cp - cam.y;
        ctx.fillStyle = TERRAIN_COLORS[s.terrain[i]];
        ctx.fillRect(sx, sy, cp + 0.5, cp + 0.5);
        const t = s.tiberium.get(i);
        if (t) {
          ctx.fillStyle = t.blue ? '#4aa8ff' : '#5fe05f';
          const n = Math.min(4, 1 + Math.floor(t.bails / 3));
          const r = cp * (0.08 + 0.012 * t.bails);
          for (let k = 0; k < n; k++) {
            const ox = ((k * 37 + x * 13) % 7) / 7, oy = ((k * 53 + y * 17) % 7) / 7;
            ctx.beginPath();
            ctx.arc(sx + cp * (0.2 + 0.6 * ox), sy + cp * (0.2 + 0.6 * oy), r, 0, Math.PI * 2);
            ctx.fill();
          }
        }
      }
    }
    // Last-known buildings in the fog.
    ctx.globalAlpha = 0.5;
    for (const g of s.ghosts.values()) this.drawBuilding(g, false);
    ctx.globalAlpha = 1;
    // Buildings, then units.
    for (const e of s.entities.values()) if (e.building) this.drawBuilding(e, s.selection.has(e.id));
    for (const e of s.entities.values()) if (!e.building) this.drawUnit(e, now, s.selection.has(e.id));
    // Fog (explored, not visible) and shroud edges.
    if (s.role !== 'spectator') {
      ctx.fillStyle = 'rgba(0,0,0,0.45)';
      for (let y = y0; y <= y1; y++) {
        for (let x = x0; x <= x1; x++) {
          const i = y * s.w + x;
          if (!s.explored[i]) { ctx.fillStyle = '#000'; ctx.fillRect(x * cp - cam.x, y * cp - cam.y, cp + 0.5, cp + 0.5); ctx.fillStyle = 'rgba(0,0,0,0.45)'; }
          else if (!s.visible[i]) ctx.fillRect(x * cp - cam.x, y * cp - cam.y, cp + 0.5, cp + 0.5);
        }
      }
    }
    // Placement ghost.
    if (ui.placing && ui.hoverCell) {
      const r = s.rules.buildings[ui.placing];
      const tl = ui.placeAt();
      const ok = s.canPlace(ui.placing, tl.x, tl.y);
      ctx.fillStyle = ok ? 'rgba(80,220,80,0.45)' : 'rgba(230,60,60,0.45)';
      ctx.fillRect(tl.x * cp - cam.x, tl.y * cp - cam.y, r.width * cp, r.height * cp);
      ctx.strokeStyle = ok ? '#8f8' : '#f66';
      ctx.strokeRect(tl.x * cp - cam.x, tl.y * cp - cam.y, r.width * cp, r.height * cp);
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

  drawBuilding(e, selected) {
    const { ctx, state: s, camera: cam } = this;
    const cp = cam.cellPx;
    const f = s.footprint(e);
    const sx = f.x * cp - cam.x, sy = f.y * cp - cam.y, w = f.w * cp, h = f.h * cp;
    if (sx > cam.vw || sy > cam.vh || sx + w < 0 || sy + h < 0) return;
    ctx.fillStyle = '#3a3f44';
    ctx.fillRect(sx + 2, sy + 2, w - 4, h - 4);
    ctx.strokeStyle = playerColor(e.owner);
    ctx.lineWidth = 3;
    ctx.strokeRect(sx + 3, sy + 3, w - 6, h - 6);
    ctx.lineWidth = 1;
    ctx.fillStyle = playerColor(e.owner);
    ctx.font = `${Math.max(8, Math.floor(cp * 0.45))}px sans-serif`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText(SHORT[e.kind] || e.kind, sx + w / 2, sy + h / 2);
    if (selected) { ctx.strokeStyle = '#fff'; ctx.strokeRect(sx, sy, w, h); }
    if (selected || e.hp < e.max_hp) this.healthBar(sx + 2, sy - 5, w - 4, e.hp / Math.max(1, e.max_hp));
  }

  drawUnit(e, now, selected) {
    const { ctx, state: s, camera: cam } = this;
    const cp = cam.cellPx;
    const p = s.drawPos(e, now);
    const c = cam.toScreen(s, p.x, p.y);
    if (c.x < -cp || c.y < -cp || c.x > cam.vw + cp || c.y > cam.vh + cp) return;
    const ang = -(s.drawFacing(e, p.a) / 256) * Math.PI * 2; // 0 = east, counter-clockwise
    const r = s.rules.units[e.kind];
    const color = playerColor(e.owner);
    ctx.save();
    ctx.translate(c.x, c.y);
    if (selected) {
      ctx.strokeStyle = '#fff';
      ctx.beginPath();
      ctx.arc(0, 0, cp * 0.45, 0, Math.PI * 2);
      ctx.stroke();
    }
    ctx.rotate(ang);
    ctx.fillStyle = color;
    ctx.strokeStyle = '#111';
    if (r && r.infantry) {
      ctx.beginPath();
      ctx.arc(0, 0, cp * 0.18, 0, Math.PI * 2);
      ctx.fill();
      ctx.stroke();
      ctx.fillRect(0, -1, cp * 0.28, 2);
    } else if (e.kind === 'harvester') {
      ctx.fillRect(-cp * 0.38, -cp * 0.28, cp * 0.76, cp * 0.56);
      ctx.strokeRect(-cp * 0.38, -cp * 0.28, cp * 0.76, cp * 0.56);
      ctx.fillStyle = e.cargo > 0 ? '#5fe05f' : '#333';
      ctx.fillRect(-cp * 0.3, -cp * 0.18, cp * 0.35, cp * 0.36);
    } else {
      const big = e.kind === 'heavy_tank' ? 0.4 : e.kind === 'recon_bike' ? 0.26 : 0.33;
      ctx.fillRect(-cp * big, -cp * big * 0.8, cp * big * 2, cp * big * 1.6);
      ctx.strokeRect(-cp * big, -cp * big * 0.8, cp * big * 2, cp * big * 1.6);
      ctx.fillStyle = '#222';
      ctx.fillRect(0, -2, cp * (big + 0.2), 4);
    }
    ctx.restore();
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
