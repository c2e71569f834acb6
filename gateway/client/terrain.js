// terrain.js: the map's ground pre-rendered once into one image (textured grass, dirt, sand
// shores, water, rock, forest, with soft transitions between terrain types), and the shroud
// and fog drawn as a smoothly scaled low-resolution layer so their edges are soft.

// Terrain codes as state.js reads them: 0 clear, 1 trees, 2 rock, 3 water, 4 tiberium ground.
const BASE = [
  [96, 112, 58], // clear: grass
  [70, 94, 46], // trees: forest floor
  [112, 104, 92], // rock
  [38, 78, 120], // water
  [104, 108, 62], // tiberium ground: worn grass
];
const SAND = [150, 138, 98];

// A small deterministic hash noise in [0, 1).
function hash2(x, y, s) {
  let h = (x * 374761393 + y * 668265263 + s * 1442695041) | 0;
  h = Math.imul(h ^ (h >>> 13), 1274126177);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

// Smooth value noise, for large-scale colour variation.
function valueNoise(x, y, s) {
  const xi = Math.floor(x), yi = Math.floor(y), xf = x - xi, yf = y - yi;
  const u = xf * xf * (3 - 2 * xf), v = yf * yf * (3 - 2 * yf);
  const a = hash2(xi, yi, s), b = hash2(xi + 1, yi, s), c = hash2(xi, yi + 1, s), d = hash2(xi + 1, yi + 1, s);
  return a + (b - a) * u + (c - a) * v + (a - b - c + d) * u * v;
}

export class TerrainLayer {
  // Renders the whole map once at `px` pixels per cell (at most 3072 pixels a side).
  constructor(state) {
    this.state = state;
    const w = state.w, h = state.h;
    this.px = Math.max(6, Math.min(24, Math.floor(3072 / Math.max(w, h))));
    this.canvas = document.createElement('canvas');
    this.canvas.width = w * this.px;
    this.canvas.height = h * this.px;
    this.render();
  }

  at(x, y) {
    const s = this.state;
    if (x < 0 || y < 0 || x >= s.w || y >= s.h) return -1;
    return s.terrain[y * s.w + x];
  }

  render() {
    const s = this.state, W = s.w, H = s.h, P = this.px;
    const g = this.canvas.getContext('2d');
    // 1. One colour per cell (sand where clear ground meets water), scaled up smoothly:
    //    neighbouring terrain types blend into each other over a cell.
    const small = document.createElement('canvas');
    small.width = W; small.height = H;
    const sg = small.getContext('2d');
    const img = sg.createImageData(W, H);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const t = s.terrain[y * W + x];
        let c = BASE[t] || BASE[0];
        if (t === 0 || t === 4) {
          let water = false;
          for (let dy = -1; dy <= 1 && !water; dy++) for (let dx = -1; dx <= 1; dx++) if (this.at(x + dx, y + dy) === 3) { water = true; break; }
          if (water) c = SAND;
        }
        const n = 0.88 + valueNoise(x / 5, y / 5, 3) * 0.24;
        const i = (y * W + x) * 4;
        img.data[i] = c[0] * n; img.data[i + 1] = c[1] * n; img.data[i + 2] = c[2] * n; img.data[i + 3] = 255;
      }
    }
    sg.putImageData(img, 0, 0);
    g.imageSmoothingEnabled = true;
    g.imageSmoothingQuality = 'high';
    g.drawImage(small, 0, 0, W * P, H * P);
    // 2. Fine grain: per-pixel light and dark speckle over everything.
    const full = g.getImageData(0, 0, W * P, H * P);
    const d = full.data;
    for (let y = 0; y < H * P; y++) {
      for (let x = 0; x < W * P; x++) {
        const i = (y * W * P + x) * 4;
        const k = 0.86 + hash2(x, y, 11) * 0.22 + (valueNoise(x / 3, y / 3, 5) - 0.5) * 0.14;
        d[i] = Math.min(255, d[i] * k); d[i + 1] = Math.min(255, d[i + 1] * k); d[i + 2] = Math.min(255, d[i + 2] * k);
      }
    }
    g.putImageData(full, 0, 0);
    // 3. Details per cell: grass tufts and dirt, ripples, boulders, tree canopies.
    g.save();
    g.scale(P, P);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const t = s.terrain[y * W + x], r = (k) => hash2(x, y, k);
      if (t === 0 || t === 4) this.grass(g, x, y, r);
      else if (t === 3) this.water(g, x, y, r);
      else if (t === 2) this.rock(g, x, y, r);
    }
    // Trees last, so canopies overlap the cells around them.
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      if (s.terrain[y * W + x] === 1) this.trees(g, x, y, (k) => hash2(x, y, k));
    }
    g.restore();
  }

  grass(g, x, y, r) {
    if (r(1) < 0.18) {
      const gr = g.createRadialGradient(x + r(2), y + r(3), 0, x + r(2), y + r(3), 0.5 + r(4) * 0.5);
      gr.addColorStop(0, 'rgba(120,96,60,0.35)'); gr.addColorStop(1, 'rgba(120,96,60,0)');
      g.fillStyle = gr; g.fillRect(x - 0.5, y - 0.5, 2, 2);
    }
    g.strokeStyle = 'rgba(40,60,20,0.5)';
    g.lineWidth = 0.04;
    const n = Math.floor(r(5) * 4);
    for (let k = 0; k < n; k++) {
      const tx = x + r(10 + k), ty = y + r(20 + k);
      g.beginPath(); g.moveTo(tx, ty); g.lineTo(tx - 0.05, ty - 0.14); g.moveTo(tx, ty); g.lineTo(tx + 0.06, ty - 0.12); g.stroke();
    }
  }

  water(g, x, y, r) {
    g.strokeStyle = 'rgba(170,210,240,0.28)';
    g.lineWidth = 0.05;
    for (let k = 0; k < 2; k++) {
      const wx = x + r(30 + k) * 0.7, wy = y + 0.2 + r(40 + k) * 0.6;
      g.beginPath(); g.moveTo(wx, wy); g.quadraticCurveTo(wx + 0.15, wy - 0.08, wx + 0.3, wy); g.stroke();
    }
    // Foam along shores.
    for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
      const t = this.at(x + dx, y + dy);
      if (t === 3 || t === -1) continue;
      g.fillStyle = 'rgba(220,235,240,0.22)';
      g.fillRect(x + (dx > 0 ? 0.82 : 0), y + (dy > 0 ? 0.82 : 0), dx ? 0.18 : 1, dy ? 0.18 : 1);
    }
  }

  rock(g, x, y, r) {
    for (let k = 0; k < 3; k++) {
      const cx = x + 0.2 + r(50 + k) * 0.6, cy = y + 0.2 + r(60 + k) * 0.6, s = 0.25 + r(70 + k) * 0.3;
      const pts = [];
      for (let a = 0; a < 6; a++) {
        const ang = (a / 6) * Math.PI * 2, rr = s * (0.7 + r(80 + a + k * 6) * 0.5);
        pts.push([cx + Math.cos(ang) * rr, cy + Math.sin(ang) * rr * 0.8]);
      }
      g.fillStyle = 'rgba(0,0,0,0.35)';
      g.beginPath(); pts.forEach(([px, py], i) => (i ? g.lineTo(px + 0.06, py + 0.08) : g.moveTo(px + 0.06, py + 0.08))); g.fill();
      const v = 100 + Math.floor(r(90 + k) * 40);
      const gr = g.createLinearGradient(cx - s, cy - s, cx + s, cy + s);
      gr.addColorStop(0, `rgb(${v + 40},${v + 36},${v + 28})`); gr.addColorStop(1, `rgb(${v - 40},${v - 42},${v - 46})`);
      g.fillStyle = gr;
      g.beginPath(); pts.forEach(([px, py], i) => (i ? g.lineTo(px, py) : g.moveTo(px, py))); g.closePath(); g.fill();
      g.strokeStyle = 'rgba(30,28,25,0.6)'; g.lineWidth = 0.03; g.stroke();
    }
  }

  trees(g, x, y, r) {
    for (let k = 0; k < 2; k++) {
      const cx = x + 0.25 + r(100 + k) * 0.5, cy = y + 0.25 + r(110 + k) * 0.5, s = 0.32 + r(120 + k) * 0.2;
      g.fillStyle = 'rgba(0,0,0,0.35)';
      g.beginPath(); g.arc(cx + 0.12, cy + 0.15, s, 0, Math.PI * 2); g.fill();
      const gr = g.createRadialGradient(cx - s * 0.35, cy - s * 0.35, s * 0.1, cx, cy, s);
      const v = Math.floor(r(130 + k) * 30);
      gr.addColorStop(0, `rgb(${80 + v},${130 + v},${50 + v})`); gr.addColorStop(1, `rgb(${24 + v / 2},${54 + v / 2},${22})`);
      g.fillStyle = gr;
      g.beginPath();
      for (let a = 0; a <= 8; a++) {
        const ang = (a / 8) * Math.PI * 2, rr = s * (0.85 + r(140 + a) * 0.25);
        const px = cx + Math.cos(ang) * rr, py = cy + Math.sin(ang) * rr;
        if (a) g.lineTo(px, py); else g.moveTo(px, py);
      }
      g.fill();
    }
  }

  // Draws the part of the ground in view.
  draw(ctx, cam) {
    const k = this.px / cam.cellPx;
    const sx = Math.max(0, cam.x * k), sy = Math.max(0, cam.y * k);
    const sw = Math.min(this.canvas.width - sx, cam.vw * k), sh = Math.min(this.canvas.height - sy, cam.vh * k);
    if (sw <= 0 || sh <= 0) return;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(this.canvas, sx, sy, sw, sh, sx / k - cam.x, sy / k - cam.y, sw / k, sh / k);
  }
}

// Shroud (never explored: black) and fog (explored, out of sight: dimmed), one pixel per
// cell, scaled up with smoothing so the edges fade over a cell.
export class ShroudLayer {
  constructor(state) {
    this.state = state;
    this.canvas = document.createElement('canvas');
    this.canvas.width = state.w + 2;
    this.canvas.height = state.h + 2;
    this.g = this.canvas.getContext('2d');
    this.img = this.g.createImageData(state.w + 2, state.h + 2);
    this.version = -1;
  }

  update() {
    const s = this.state;
    if (this.version === s.framesApplied) return;
    this.version = s.framesApplied;
    const W = s.w + 2, d = this.img.data;
    // A border of shroud around the map keeps its edge dark too.
    for (let y = 0; y < s.h + 2; y++) for (let x = 0; x < W; x++) {
      const mx = x - 1, my = y - 1;
      let a = 255;
      if (mx >= 0 && my >= 0 && mx < s.w && my < s.h) {
        const i = my * s.w + mx;
        a = !s.explored[i] ? 255 : s.visible[i] ? 0 : 115;
      }
      d[(y * W + x) * 4 + 3] = a;
    }
    this.g.putImageData(this.img, 0, 0);
  }

  draw(ctx, cam) {
    const s = this.state;
    if (s.role === 'spectator') return;
    this.update();
    const cp = cam.cellPx;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(this.canvas, -cp - cam.x, -cp - cam.y, (s.w + 2) * cp, (s.h + 2) * cp);
  }
}
