// sprites.js: unit and building sprites drawn with vector paths in the owner's colour and
// pre-rendered to offscreen canvases, cached per kind, colour, facing and zoom, so that a
// frame only blits images. Units face east at angle 0; hulls and turrets are separate.

export const UNIT_DIRS = 32;

// '#rrggbb' scaled towards black (k < 1) or white (k > 1).
export function shade(hex, k) {
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const m = c.map((v) => Math.round(k <= 1 ? v * k : v + (255 - v) * (k - 1)));
  return `rgb(${m[0]},${m[1]},${m[2]})`;
}

const OUTLINE = '#141414';
// Whether the sprite being drawn is large enough for outlines and small details; small
// (zoomed-out) sprites are flat shapes, so each keeps solid areas of its owner's colour.
let fine = true;
const METAL = '#5d6166';
const DARK = '#2c2f33';
const TRACK = '#23251f';

function canvas(w, h) {
  const c = document.createElement('canvas');
  c.width = Math.max(1, Math.ceil(w));
  c.height = Math.max(1, Math.ceil(h));
  return c;
}

function rect(g, x, y, w, h, fill, stroke = OUTLINE, lw = 0.03) {
  g.fillStyle = fill;
  g.fillRect(x, y, w, h);
  if (stroke && (fine || stroke !== OUTLINE)) { g.lineWidth = lw; g.strokeStyle = stroke; g.strokeRect(x, y, w, h); }
}

function circle(g, x, y, r, fill, stroke = OUTLINE, lw = 0.03) {
  g.beginPath();
  g.arc(x, y, r, 0, Math.PI * 2);
  g.fillStyle = fill;
  g.fill();
  if (stroke && (fine || stroke !== OUTLINE)) { g.lineWidth = lw; g.strokeStyle = stroke; g.stroke(); }
}

function poly(g, pts, fill, stroke = OUTLINE, lw = 0.03) {
  g.beginPath();
  g.moveTo(pts[0], pts[1]);
  for (let i = 2; i < pts.length; i += 2) g.lineTo(pts[i], pts[i + 1]);
  g.closePath();
  g.fillStyle = fill;
  g.fill();
  if (stroke && (fine || stroke !== OUTLINE)) { g.lineWidth = lw; g.strokeStyle = stroke; g.stroke(); }
}

// ---- Units (in cells, centred on the unit, facing +x) ----

function tracks(g, len, half, w) {
  for (const s of [-1, 1]) {
    rect(g, -len, s * half - w / 2, len * 2, w, TRACK);
    g.strokeStyle = '#4a4c44';
    g.lineWidth = 0.02;
    for (let x = -len + 0.06; x < len; x += 0.08) {
      g.beginPath(); g.moveTo(x, s * half - w / 2); g.lineTo(x, s * half + w / 2); g.stroke();
    }
  }
}

function shadow(g, fn) {
  g.save();
  g.translate(0.05, 0.07);
  g.globalAlpha = 0.35;
  fn('rgba(0,0,0,1)');
  g.restore();
}

const HULLS = {
  light_tank(g, col) {
    shadow(g, (s) => rect(g, -0.34, -0.3, 0.68, 0.6, s, null));
    tracks(g, 0.34, 0.23, 0.13);
    rect(g, -0.3, -0.18, 0.6, 0.36, col);
    poly(g, [0.18, -0.18, 0.3, -0.12, 0.3, 0.12, 0.18, 0.18], shade(col, 0.75));
    rect(g, -0.3, -0.12, 0.08, 0.24, shade(col, 0.6));
  },
  medium_tank(g, col) {
    shadow(g, (s) => rect(g, -0.4, -0.34, 0.8, 0.68, s, null));
    tracks(g, 0.4, 0.27, 0.15);
    rect(g, -0.36, -0.21, 0.72, 0.42, col);
    poly(g, [0.22, -0.21, 0.36, -0.14, 0.36, 0.14, 0.22, 0.21], shade(col, 0.75));
    rect(g, -0.36, -0.15, 0.1, 0.3, shade(col, 0.6));
    g.strokeStyle = shade(col, 0.55); g.lineWidth = 0.02;
    g.beginPath(); g.moveTo(-0.22, -0.15); g.lineTo(-0.22, 0.15); g.stroke();
  },
  heavy_tank(g, col) {
    shadow(g, (s) => rect(g, -0.48, -0.42, 0.96, 0.84, s, null));
    tracks(g, 0.48, 0.32, 0.2);
    rect(g, -0.42, -0.24, 0.84, 0.48, col);
    poly(g, [0.28, -0.24, 0.44, -0.16, 0.44, 0.16, 0.28, 0.24], shade(col, 0.75));
    rect(g, -0.42, -0.18, 0.12, 0.36, shade(col, 0.6));
    // Missile pods on the flanks.
    rect(g, -0.3, -0.3, 0.24, 0.1, METAL);
    rect(g, -0.3, 0.2, 0.24, 0.1, METAL);
  },
  recon_bike(g, col) {
    shadow(g, (s) => rect(g, -0.3, -0.14, 0.6, 0.28, s, null));
    circle(g, 0.22, 0, 0.08, TRACK);
    circle(g, -0.22, 0, 0.08, TRACK);
    poly(g, [-0.24, -0.1, 0.18, -0.08, 0.26, 0, 0.18, 0.08, -0.24, 0.1], col);
    // Rocket pods and the rider.
    rect(g, -0.12, -0.2, 0.26, 0.07, METAL);
    rect(g, -0.12, 0.13, 0.26, 0.07, METAL);
    circle(g, -0.04, 0, 0.07, '#c9b48a');
  },
  harvester(g, col, cargo) {
    shadow(g, (s) => rect(g, -0.46, -0.36, 0.92, 0.72, s, null));
    tracks(g, 0.44, 0.3, 0.14);
    rect(g, -0.44, -0.24, 0.7, 0.48, col);
    // Cargo bed with its load of tiberium.
    rect(g, -0.38, -0.18, 0.44, 0.36, DARK);
    if (cargo > 0) {
      const n = Math.min(6, cargo);
      for (let i = 0; i < n; i++) {
        const x = -0.32 + (i % 3) * 0.14, y = -0.1 + Math.floor(i / 3) * 0.16;
        poly(g, [x, y + 0.07, x + 0.05, y - 0.05, x + 0.1, y + 0.07], '#66e060', '#1f6a1c', 0.015);
      }
    }
    // Cab and the front harvesting drum.
    rect(g, 0.1, -0.2, 0.18, 0.4, shade(col, 0.8));
    rect(g, 0.16, -0.14, 0.08, 0.12, '#9fd3ff', OUTLINE, 0.02);
    rect(g, 0.3, -0.3, 0.12, 0.6, METAL);
    g.strokeStyle = DARK; g.lineWidth = 0.025;
    for (let y = -0.26; y < 0.3; y += 0.1) { g.beginPath(); g.moveTo(0.3, y); g.lineTo(0.42, y + 0.05); g.stroke(); }
  },
};

const TURRETS = {
  light_tank(g, col) {
    rect(g, 0.08, -0.035, 0.38, 0.07, DARK);
    circle(g, 0, 0, 0.14, col);
    if (fine) circle(g, -0.02, -0.03, 0.05, shade(col, 1.35), null);
  },
  medium_tank(g, col) {
    rect(g, 0.1, -0.04, 0.46, 0.08, DARK);
    poly(g, [-0.16, -0.14, 0.1, -0.15, 0.18, -0.06, 0.18, 0.06, 0.1, 0.15, -0.16, 0.14], col);
    if (fine) circle(g, -0.05, -0.05, 0.045, shade(col, 1.35), null);
  },
  heavy_tank(g, col) {
    rect(g, 0.14, -0.11, 0.5, 0.07, DARK);
    rect(g, 0.14, 0.04, 0.5, 0.07, DARK);
    poly(g, [-0.22, -0.18, 0.12, -0.19, 0.22, -0.08, 0.22, 0.08, 0.12, 0.19, -0.22, 0.18], col);
    rect(g, -0.14, -0.08, 0.12, 0.16, shade(col, 0.7), OUTLINE, 0.02);
  },
  guard_tower(g, col) {
    rect(g, 0.08, -0.04, 0.36, 0.08, DARK);
    circle(g, 0, 0, 0.17, col);
    circle(g, 0, 0, 0.08, shade(col, 0.65));
  },
};

// Infantry: a figure seen from above; `step` (1, 2) alternates the legs while walking.
function infantry(g, col, kind, step) {
  const legs = step === 0 ? 0.02 : step === 1 ? 0.11 : -0.11;
  g.scale(1.3, 1.3);
  g.lineCap = 'round';
  shadow(g, () => circle(g, 0, 0, 0.13, '#000', null));
  g.strokeStyle = '#3b3526'; g.lineWidth = 0.07;
  g.beginPath(); g.moveTo(0, -0.07); g.lineTo(legs, -0.08); g.moveTo(0, 0.07); g.lineTo(-legs, 0.08); g.stroke();
  // Body (shoulders) in the owner's colour, head in skin tone with a helmet.
  poly(g, [-0.08, -0.15, 0.07, -0.13, 0.09, 0, 0.07, 0.13, -0.08, 0.15, -0.1, 0], col, OUTLINE, 0.025);
  if (kind === 'rocket_soldier') {
    rect(g, -0.2, 0.06, 0.42, 0.08, '#55604a', OUTLINE, 0.02);
    rect(g, 0.2, 0.055, 0.04, 0.09, '#2a2a2a', null);
  } else {
    g.strokeStyle = '#1e1e1e'; g.lineWidth = 0.04;
    g.beginPath(); g.moveTo(0.02, 0.07); g.lineTo(0.3, 0.05); g.stroke();
  }
  if (fine) circle(g, 0, 0, 0.065, '#4b5a36', OUTLINE, 0.02);
}

// ---- Buildings (in cells, top-left at 0,0, width w and height h) ----

function concrete(g, w, h) {
  rect(g, 0.04, 0.04, w - 0.08, h - 0.08, '#6f6d66', '#3b3a36', 0.03);
  g.strokeStyle = 'rgba(40,40,36,0.45)'; g.lineWidth = 0.02;
  for (let x = 0.5; x < w - 0.1; x += 0.5) { g.beginPath(); g.moveTo(x, 0.06); g.lineTo(x, h - 0.06); g.stroke(); }
  for (let y = 0.5; y < h - 0.1; y += 0.5) { g.beginPath(); g.moveTo(0.06, y); g.lineTo(w - 0.06, y); g.stroke(); }
}

// A box with a lit top face and a darker front face (a little height for a 3/4 look).
function block(g, x, y, w, h, depth, top, front) {
  rect(g, x + 0.06, y + 0.1, w, h + depth, 'rgba(0,0,0,0.35)', null);
  rect(g, x, y + h, w, depth, front);
  rect(g, x, y, w, h, top);
}

function stripes(g, x, y, w, h) {
  g.save();
  g.beginPath(); g.rect(x, y, w, h); g.clip();
  g.fillStyle = '#e8c030'; g.fillRect(x, y, w, h);
  g.fillStyle = '#1a1a1a';
  for (let k = -h; k < w; k += 0.16) {
    g.beginPath(); g.moveTo(x + k, y + h); g.lineTo(x + k + 0.08, y + h); g.lineTo(x + k + 0.08 + h, y); g.lineTo(x + k + h, y); g.closePath(); g.fill();
  }
  g.restore();
}

const BUILDINGS = {
  construction_yard(g, col, w, h) {
    concrete(g, w, h);
    block(g, 0.35, 0.9, 1.7, 1.4, 0.3, '#8b8a82', '#55534d');
    rect(g, 0.5, 1.05, 0.6, 0.5, col);
    rect(g, 1.25, 1.05, 0.65, 0.5, col);
    rect(g, 0.5, 1.7, 1.4, 0.35, shade(col, 0.7));
    stripes(g, 0.35, 2.35, 1.7, 0.18);
    // The crane: a mast and a lattice boom swinging over the pad.
    rect(g, 2.2, 0.35, 0.35, 0.35, '#d9b22c');
    g.strokeStyle = '#d9b22c'; g.lineWidth = 0.09;
    g.beginPath(); g.moveTo(2.37, 0.52); g.lineTo(0.55, 0.4); g.stroke();
    g.strokeStyle = '#6b5410'; g.lineWidth = 0.02;
    for (let x = 0.7; x < 2.2; x += 0.18) { g.beginPath(); g.moveTo(x, 0.36); g.lineTo(x + 0.09, 0.49); g.stroke(); }
    g.strokeStyle = '#222'; g.lineWidth = 0.02;
    g.beginPath(); g.moveTo(0.7, 0.42); g.lineTo(0.7, 0.8); g.stroke();
    rect(g, 0.62, 0.8, 0.16, 0.1, '#333');
    rect(g, 2.3, 1.2, 0.45, 1.2, '#7b7a72');
    rect(g, 2.36, 1.3, 0.33, 0.2, col, null);
  },
  power_plant(g, col, w, h) {
    concrete(g, w, h);
    block(g, 0.15, 0.95, 1.7, 0.75, 0.2, '#8c8b84', '#55534d');
    rect(g, 0.3, 1.05, 1.4, 0.2, col);
    // Two cooling towers.
    for (const [x, y] of [[0.55, 0.6], [1.4, 0.6]]) {
      circle(g, x + 0.05, y + 0.08, 0.36, 'rgba(0,0,0,0.35)', null);
      circle(g, x, y, 0.36, '#a9a79d');
      circle(g, x, y, 0.24, '#3a3935');
      circle(g, x - 0.06, y - 0.06, 0.08, 'rgba(255,255,255,0.25)', null);
    }
    stripes(g, 0.15, 1.78, 1.7, 0.12);
    circle(g, 1.65, 1.5, 0.08, '#f5e05a', OUTLINE, 0.02);
  },
  refinery(g, col, w, h) {
    concrete(g, w, h);
    // The harvester dock pad.
    rect(g, 0.15, 2.0, 1.6, 0.85, '#4f4d47');
    stripes(g, 0.15, 2.0, 1.6, 0.12);
    block(g, 0.2, 0.3, 1.5, 1.35, 0.3, '#8d8c84', '#55534d');
    rect(g, 0.35, 0.45, 1.2, 0.35, col);
    rect(g, 0.35, 0.95, 1.2, 0.55, '#6c6b64');
    // Silos holding processed tiberium.
    for (const y of [0.7, 1.75]) {
      circle(g, 2.36, y + 0.08, 0.42, 'rgba(0,0,0,0.35)', null);
      circle(g, 2.3, y, 0.42, '#9b998f');
      circle(g, 2.3, y, 0.28, '#3f8a3a');
      circle(g, 2.24, y - 0.06, 0.1, '#8ae67e', null);
    }
    rect(g, 1.7, 0.62, 0.2, 0.16, METAL);
  },
  barracks(g, col, w, h) {
    concrete(g, w, h);
    // Sandbags along the front.
    for (let x = 0.15; x < w - 0.2; x += 0.22) circle(g, x + 0.1, h - 0.2, 0.1, '#a8926a', '#5c4c30', 0.02);
    // A quonset hut: rounded roof with ribs.
    rect(g, 0.25, 0.3 + 0.08, 1.5, 1.1, 'rgba(0,0,0,0.35)', null);
    const grd = g.createLinearGradient(0, 0.25, 0, 1.35);
    grd.addColorStop(0, '#8c8f78'); grd.addColorStop(0.5, '#b5b89c'); grd.addColorStop(1, '#5f624f');
    rect(g, 0.2, 0.25, 1.5, 1.1, grd);
    g.strokeStyle = 'rgba(30,30,20,0.6)'; g.lineWidth = 0.025;
    for (let x = 0.35; x < 1.7; x += 0.2) { g.beginPath(); g.moveTo(x, 0.25); g.lineTo(x, 1.35); g.stroke(); }
    rect(g, 0.2, 1.12, 1.5, 0.23, shade(col, 0.85));
    rect(g, 0.8, 1.15, 0.3, 0.2, '#222');
    // The flag.
    g.strokeStyle = '#ddd'; g.lineWidth = 0.03;
    g.beginPath(); g.moveTo(1.82, 1.5); g.lineTo(1.82, 0.35); g.stroke();
    poly(g, [1.82, 0.35, 1.82, 0.65, 1.45, 0.5], col, OUTLINE, 0.02);
  },
  war_factory(g, col, w, h) {
    concrete(g, w, h);
    block(g, 0.15, 0.2, 2.7, 1.9, 0.35, '#7f7e77', '#4d4b46');
    // Roof ribs and a band in the owner's colour.
    g.strokeStyle = 'rgba(35,35,30,0.55)'; g.lineWidth = 0.03;
    for (let x = 0.35; x < 2.8; x += 0.25) { g.beginPath(); g.moveTo(x, 0.25); g.lineTo(x, 2.05); g.stroke(); }
    rect(g, 0.15, 0.2, 2.7, 0.35, col);
    rect(g, 0.3, 0.7, 0.5, 0.5, shade(col, 0.7));
    // The big door onto the apron.
    rect(g, 0.8, 2.1, 1.4, 0.35, '#2b2b2b');
    stripes(g, 0.8, 2.45, 1.4, 0.12);
    rect(g, 0.8, 2.6, 1.4, 0.3, '#5b5a54', null);
    circle(g, 2.55, 0.9, 0.18, '#9a988e');
  },
  guard_tower(g, col, w, h) {
    rect(g, 0.12, 0.16, 0.82, 0.82, 'rgba(0,0,0,0.35)', null);
    rect(g, 0.08, 0.08, 0.84, 0.84, '#8a8880');
    rect(g, 0.16, 0.16, 0.68, 0.68, '#6c6a63');
    for (const [x, y] of [[0.08, 0.08], [0.78, 0.08], [0.08, 0.78], [0.78, 0.78]]) rect(g, x, y, 0.14, 0.14, shade(col, 0.8), OUTLINE, 0.02);
  },
  laser_tower(g, col, w, h) {
    // An obelisk: a tall dark spire on a plinth, its crystal glowing at the top.
    poly(g, [0.15, 1.9, 0.85, 1.9, 0.95, 1.7, 0.05, 1.7], '#55534d');
    poly(g, [0.3, 1.75, 0.7, 1.75, 0.6, 0.35, 0.5, 0.12, 0.4, 0.35], '#2a2a33');
    poly(g, [0.5, 0.12, 0.6, 0.35, 0.7, 1.75, 0.5, 1.75], '#1a1a22', null);
    rect(g, 0.33, 1.45, 0.34, 0.12, col, OUTLINE, 0.02);
    const glow = g.createRadialGradient(0.5, 0.3, 0.01, 0.5, 0.3, 0.2);
    glow.addColorStop(0, 'rgba(255,220,220,1)'); glow.addColorStop(0.4, 'rgba(255,60,40,0.9)'); glow.addColorStop(1, 'rgba(255,0,0,0)');
    g.fillStyle = glow; g.fillRect(0.28, 0.08, 0.44, 0.44);
  },
};

// Scorch marks and cracks for the damaged look (below half health).
function scorch(g, w, h, seed) {
  let r = seed * 9301 + 49297;
  const rnd = () => { r = (r * 9301 + 49297) % 233280; return r / 233280; };
  for (let i = 0; i < 2 + w * h / 2; i++) {
    const x = 0.2 + rnd() * (w - 0.4), y = 0.2 + rnd() * (h - 0.4), rr = 0.15 + rnd() * 0.25;
    const gr = g.createRadialGradient(x, y, 0, x, y, rr);
    gr.addColorStop(0, 'rgba(10,8,6,0.85)'); gr.addColorStop(1, 'rgba(10,8,6,0)');
    g.fillStyle = gr; g.fillRect(x - rr, y - rr, rr * 2, rr * 2);
  }
  g.strokeStyle = 'rgba(15,15,15,0.8)'; g.lineWidth = 0.03;
  for (let i = 0; i < 2; i++) {
    let x = 0.3 + rnd() * (w - 0.6), y = 0.3 + rnd() * (h - 0.6);
    g.beginPath(); g.moveTo(x, y);
    for (let k = 0; k < 4; k++) { x += (rnd() - 0.5) * 0.4; y += (rnd() - 0.5) * 0.4; g.lineTo(x, y); }
    g.stroke();
  }
}

// Rubble left where a building stood.
function rubble(g, w, h) {
  let r = (w * 31 + h * 17) * 9301;
  const rnd = () => { r = (r * 9301 + 49297) % 233280; return r / 233280; };
  const gr = g.createRadialGradient(w / 2, h / 2, 0, w / 2, h / 2, Math.max(w, h) * 0.6);
  gr.addColorStop(0, 'rgba(20,18,15,0.85)'); gr.addColorStop(1, 'rgba(20,18,15,0)');
  g.fillStyle = gr; g.fillRect(0, 0, w, h);
  for (let i = 0; i < w * h * 6; i++) {
    const x = rnd() * w, y = rnd() * h, s = 0.05 + rnd() * 0.18;
    const v = 60 + Math.floor(rnd() * 60);
    poly(g, [x, y, x + s, y + s * 0.3, x + s * 0.6, y + s, x - s * 0.2, y + s * 0.7], `rgb(${v},${v - 4},${v - 10})`, 'rgba(0,0,0,0.5)', 0.015);
  }
}

// A burnt-out vehicle hull.
function wreck(g, kind) {
  const big = kind === 'heavy_tank' ? 1.25 : kind === 'harvester' ? 1.2 : kind === 'recon_bike' ? 0.7 : 1;
  g.scale(big, big);
  rect(g, -0.34, -0.28, 0.68, 0.56, '#2a2622', '#0e0d0c', 0.03);
  rect(g, -0.24, -0.16, 0.4, 0.32, '#3b342c', null);
  circle(g, 0.02, 0, 0.12, '#1c1a18', null);
  g.strokeStyle = '#111'; g.lineWidth = 0.06;
  g.beginPath(); g.moveTo(0.05, 0.02); g.lineTo(0.32, 0.14); g.stroke();
}

export class Sprites {
  constructor() {
    this.px = 0; // device pixels per cell the caches are drawn for
    this.cache = new Map();
    this.made = 0;
  }

  // Drops every cached image when the zoom (or pixel ratio) changes.
  setScale(px) {
    const p = Math.max(4, Math.round(px));
    if (p !== this.px) { this.px = p; this.cache.clear(); }
  }

  make(key, w, h, draw) {
    let c = this.cache.get(key);
    if (c) return c;
    c = canvas(w * this.px, h * this.px);
    const g = c.getContext('2d');
    g.scale(this.px, this.px);
    fine = this.px >= 16;
    draw(g);
    fine = true;
    this.cache.set(key, c);
    this.made++;
    return c;
  }

  static dirOf(angle, dirs = UNIT_DIRS) {
    const t = angle / (Math.PI * 2);
    return ((Math.round(t * dirs) % dirs) + dirs) % dirs;
  }

  // Hull (or whole body) of a unit at direction index `dir`; `variant` is the cargo
  // level of a harvester or the walking step of infantry.
  unit(kind, color, dir, variant = 0, infantryKind = false) {
    const S = infantryKind ? 0.8 : 1.4;
    return this.make(`u|${kind}|${color}|${dir}|${variant}`, S, S, (g) => {
      g.translate(S / 2, S / 2);
      g.rotate(-(dir / UNIT_DIRS) * Math.PI * 2);
      if (infantryKind) infantry(g, color, kind, variant);
      else (HULLS[kind] || HULLS.light_tank)(g, color, variant);
    });
  }

  hasTurret(kind) { return kind in TURRETS; }

  turret(kind, color, dir) {
    const S = 1.4;
    return this.make(`t|${kind}|${color}|${dir}`, S, S, (g) => {
      g.translate(S / 2, S / 2);
      g.rotate(-(dir / UNIT_DIRS) * Math.PI * 2);
      TURRETS[kind](g, color);
    });
  }

  building(kind, color, w, h, damaged) {
    return this.make(`b|${kind}|${color}|${damaged ? 1 : 0}`, w, h, (g) => {
      (BUILDINGS[kind] || BUILDINGS.power_plant)(g, color, w, h);
      if (damaged) scorch(g, w, h, kind.length * 7 + w);
    });
  }

  rubble(w, h) {
    return this.make(`r|${w}|${h}`, w, h, (g) => rubble(g, w, h));
  }

  wreck(kind, dir) {
    const S = 1.6;
    return this.make(`w|${kind}|${dir}`, S, S, (g) => {
      g.translate(S / 2, S / 2);
      g.rotate(-(dir / UNIT_DIRS) * Math.PI * 2);
      wreck(g, kind);
    });
  }

  // A fallen soldier: a body and a dark stain.
  corpse(color, dir) {
    const S = 0.8;
    return this.make(`c|${color}|${dir}`, S, S, (g) => {
      g.translate(S / 2, S / 2);
      g.rotate(-(dir / UNIT_DIRS) * Math.PI * 2);
      circle(g, 0, 0, 0.2, 'rgba(70,10,8,0.55)', null);
      rect(g, -0.16, -0.06, 0.26, 0.12, shade(color, 0.55), OUTLINE, 0.02);
      circle(g, 0.14, 0, 0.055, '#4b5a36', OUTLINE, 0.02);
    });
  }

  // A cluster of tiberium crystals; `bails` (1..max) sets how many and how big.
  crystals(bails, max, blue, variant) {
    return this.make(`x|${bails}|${blue ? 1 : 0}|${variant}`, 1, 1, (g) => {
      let r = (variant + 1) * 7919 + bails * 104729;
      const rnd = () => { r = (r * 9301 + 49297) % 233280; return r / 233280; };
      const f = bails / Math.max(1, max);
      const n = 2 + Math.round(f * 5);
      const base = blue ? [70, 150, 255] : [80, 220, 70];
      const gr = g.createRadialGradient(0.5, 0.5, 0, 0.5, 0.5, 0.55);
      gr.addColorStop(0, `rgba(${base[0] >> 1},${base[1] >> 1},${base[2] >> 1},${0.25 + f * 0.35})`);
      gr.addColorStop(1, 'rgba(0,0,0,0)');
      g.fillStyle = gr; g.fillRect(0, 0, 1, 1);
      for (let i = 0; i < n; i++) {
        const x = 0.15 + rnd() * 0.7, y = 0.2 + rnd() * 0.65;
        const s = (0.07 + f * 0.14) * (0.7 + rnd() * 0.6);
        const lean = (rnd() - 0.5) * s;
        const c = `rgb(${base[0]},${base[1]},${base[2]})`;
        poly(g, [x - s * 0.45, y, x + lean, y - s * 1.6, x + s * 0.45, y], c, `rgb(${base[0] >> 2},${base[1] >> 2},${base[2] >> 2})`, 0.015);
        poly(g, [x + lean, y - s * 1.6, x + s * 0.45, y, x + s * 0.05, y], `rgba(255,255,255,0.35)`, null);
      }
    });
  }
}
