// effects.js: combat you can see. Turns the shots and deaths of each view delta into
// short-lived effects (muzzle flashes, tracers, shells, rockets with smoke trails, laser
// beams, impacts and explosions by warhead) and lasting marks (wrecks, fallen soldiers,
// rubble), keeps where each shooter aims its turret, and draws smoke over damaged things.

import { Sprites } from './sprites.js';

const MAX_EFFECTS = 800;
const MAX_DECALS = 400;

// Travel times (ms per cell) and lifetimes (ms) of what a warhead fires.
const SPEED = { bullet: 25, armor_piercing: 30, missile: 90, laser: 0 };

function fireball(size) {
  const c = document.createElement('canvas');
  c.width = c.height = size;
  const g = c.getContext('2d');
  const gr = g.createRadialGradient(size / 2, size / 2, 0, size / 2, size / 2, size / 2);
  gr.addColorStop(0, 'rgba(255,255,220,1)');
  gr.addColorStop(0.25, 'rgba(255,210,90,0.95)');
  gr.addColorStop(0.55, 'rgba(235,100,30,0.8)');
  gr.addColorStop(0.8, 'rgba(120,40,20,0.4)');
  gr.addColorStop(1, 'rgba(60,20,10,0)');
  g.fillStyle = gr;
  g.fillRect(0, 0, size, size);
  return c;
}

function puff(size) {
  const c = document.createElement('canvas');
  c.width = c.height = size;
  const g = c.getContext('2d');
  const gr = g.createRadialGradient(size / 2, size / 2, 0, size / 2, size / 2, size / 2);
  gr.addColorStop(0, 'rgba(70,68,64,0.75)');
  gr.addColorStop(0.6, 'rgba(60,58,55,0.4)');
  gr.addColorStop(1, 'rgba(50,50,50,0)');
  g.fillStyle = gr;
  g.fillRect(0, 0, size, size);
  return c;
}

export class Effects {
  constructor(sprites) {
    this.sprites = sprites;
    this.list = []; // {type, warhead, x0, y0, x1, y1, start, dur, ...} in world coordinates
    this.decals = []; // {type, kind, x, y, dir, color, w, h, start, dur}
    this.aims = new Map(); // attacker id -> {target, x, y, until}
    // How many effects of each type were drawn at least once (for tests and diagnostics).
    this.drawn = {};
    this.fire = fireball(64);
    this.smokeImg = puff(48);
  }

  // Takes the shots and deaths a delta carried; `now` is when it arrived.
  ingest(state, frame, now) {
    const cell = state.cell;
    for (const a of frame.attacks || []) {
      const [x0, y0] = a.from, [x1, y1] = a.to;
      const dist = Math.hypot(x1 - x0, y1 - y0) / cell;
      const travel = SPEED[a.warhead] * dist;
      this.aims.set(a.attacker, { target: a.target, x: x1, y: y1, until: now + 2500 });
      this.add({ type: 'flash', warhead: a.warhead, x0, y0, x1, y1, start: now, dur: 90, big: a.kind.endsWith('tank') || a.kind === 'guard_tower' });
      if (a.warhead === 'laser') {
        this.add({ type: 'laser', warhead: a.warhead, x0, y0, x1, y1, start: now, dur: 260 });
        this.add({ type: 'impact', warhead: a.warhead, x0: x1, y0: y1, start: now, dur: 300, size: 0.5 });
      } else {
        const type = a.warhead === 'missile' ? 'rocket' : a.warhead === 'bullet' ? 'tracer' : 'shell';
        this.add({ type, warhead: a.warhead, x0, y0, x1, y1, start: now, dur: Math.max(60, travel) });
        const size = a.warhead === 'missile' ? 0.9 : a.warhead === 'armor_piercing' ? 0.6 : 0.25;
        this.add({ type: 'impact', warhead: a.warhead, x0: x1, y0: y1, start: now + travel, dur: a.warhead === 'bullet' ? 180 : 380, size });
      }
    }
    for (const d of frame.deaths || []) {
      const [x, y] = d.at;
      const color = d.color;
      if (d.building) {
        const r = state.rules.buildings[d.kind] || { width: 2, height: 2 };
        for (let k = 0; k < 5; k++) {
          const ox = ((k * 37) % 7 / 7 - 0.5) * r.width * cell * 0.8, oy = ((k * 53) % 7 / 7 - 0.5) * r.height * cell * 0.8;
          this.add({ type: 'explosion', x0: x + ox, y0: y + oy, start: now + k * 140, dur: 700, size: 1.4 + (k % 2) * 0.6 });
        }
        this.decal({ type: 'rubble', x, y, w: r.width, h: r.height, start: now, dur: 90000 });
      } else if (state.rules.units[d.kind]?.infantry) {
        this.add({ type: 'death', x0: x, y0: y, start: now, dur: 500, size: 0.35 });
        this.decal({ type: 'corpse', x, y, dir: Sprites.dirOf(d.dir || 0), color, start: now, dur: 12000 });
      } else {
        this.add({ type: 'explosion', x0: x, y0: y, start: now, dur: 800, size: d.kind === 'heavy_tank' || d.kind === 'harvester' ? 2.2 : 1.6 });
        this.decal({ type: 'wreck', kind: d.kind, x, y, dir: Sprites.dirOf(d.dir || 0), start: now, dur: 30000 });
      }
      this.aims.delete(d.id);
    }
  }

  add(e) {
    if (this.list.length >= MAX_EFFECTS) this.list.shift();
    this.list.push(e);
  }

  decal(d) {
    if (this.decals.length >= MAX_DECALS) this.decals.shift();
    this.decals.push(d);
  }

  // Where a unit's turret points: its target while it fights, else null.
  aimOf(id, now) {
    const a = this.aims.get(id);
    if (!a) return null;
    if (now > a.until) { this.aims.delete(id); return null; }
    return a;
  }

  count(type) { this.drawn[type] = (this.drawn[type] || 0) + 1; }

  // Lasting marks, drawn under units and buildings.
  drawDecals(ctx, state, cam, now) {
    const cp = cam.cellPx, dpr = this.dpr || 1;
    this.decals = this.decals.filter((d) => now - d.start < d.dur);
    for (const d of this.decals) {
      const p = cam.toScreen(state, d.x, d.y);
      if (p.x < -3 * cp || p.y < -3 * cp || p.x > cam.vw + 3 * cp || p.y > cam.vh + 3 * cp) continue;
      const left = d.dur - (now - d.start);
      ctx.globalAlpha = Math.min(1, left / 3000);
      let img;
      if (d.type === 'rubble') img = this.sprites.rubble(d.w, d.h);
      else if (d.type === 'wreck') img = this.sprites.wreck(d.kind, d.dir);
      else img = this.sprites.corpse(d.color || '#888888', d.dir);
      const w = img.width / dpr, h = img.height / dpr;
      ctx.drawImage(img, Math.round(p.x - w / 2), Math.round(p.y - h / 2), w, h);
      if (d.type !== 'corpse' && now - d.start < 8000) this.smoke(ctx, p.x, p.y, cp * 0.8, now, d.x + d.y);
    }
    ctx.globalAlpha = 1;
  }

  // Rising smoke puffs (damaged units and buildings, fresh wrecks).
  smoke(ctx, x, y, size, now, seed) {
    for (let k = 0; k < 3; k++) {
      const t = ((now / 1400 + k / 3 + (seed % 97) / 97) % 1);
      const s = size * (0.4 + t * 0.8);
      ctx.globalAlpha = 0.6 * (1 - t);
      ctx.drawImage(this.smokeImg, x - s / 2 + Math.sin(t * 5 + k) * size * 0.15, y - s / 2 - t * size * 1.3, s, s);
    }
    ctx.globalAlpha = 1;
  }

  // Shots, impacts and explosions, drawn over units.
  draw(ctx, state, cam, now) {
    const cp = cam.cellPx;
    this.list = this.list.filter((e) => now - e.start < e.dur);
    for (const e of this.list) {
      const t = (now - e.start) / e.dur;
      if (t < 0) continue;
      const a = cam.toScreen(state, e.x0, e.y0);
      if (a.x < -8 * cp || a.y < -8 * cp || a.x > cam.vw + 8 * cp || a.y > cam.vh + 8 * cp) continue;
      const b = e.x1 !== undefined ? cam.toScreen(state, e.x1, e.y1) : a;
      this.count(e.type);
      switch (e.type) {
        case 'flash': {
          const ang = Math.atan2(b.y - a.y, b.x - a.x);
          const fx = a.x + Math.cos(ang) * cp * (e.big ? 0.45 : 0.25), fy = a.y + Math.sin(ang) * cp * (e.big ? 0.45 : 0.25);
          const s = cp * (e.big ? 0.55 : 0.3) * (1 - t * 0.5);
          ctx.globalAlpha = 1 - t;
          ctx.drawImage(this.fire, fx - s / 2, fy - s / 2, s, s);
          break;
        }
        case 'tracer': {
          const hx = a.x + (b.x - a.x) * t, hy = a.y + (b.y - a.y) * t;
          const tl = Math.max(0, t - 0.25);
          ctx.strokeStyle = '#fff3a0';
          ctx.lineWidth = Math.max(1, cp * 0.06);
          ctx.beginPath(); ctx.moveTo(a.x + (b.x - a.x) * tl, a.y + (b.y - a.y) * tl); ctx.lineTo(hx, hy); ctx.stroke();
          break;
        }
        case 'shell': {
          const hx = a.x + (b.x - a.x) * t, hy = a.y + (b.y - a.y) * t;
          const tl = Math.max(0, t - 0.15);
          ctx.strokeStyle = 'rgba(255,170,60,0.8)';
          ctx.lineWidth = Math.max(1, cp * 0.08);
          ctx.beginPath(); ctx.moveTo(a.x + (b.x - a.x) * tl, a.y + (b.y - a.y) * tl); ctx.lineTo(hx, hy); ctx.stroke();
          ctx.fillStyle = '#fff0c0';
          ctx.fillRect(hx - cp * 0.06, hy - cp * 0.06, cp * 0.12, cp * 0.12);
          break;
        }
        case 'rocket': {
          // A slight arc, a smoke trail behind, a bright motor at the head.
          const arc = Math.sin(t * Math.PI) * cp * 0.5;
          const at = (u) => ({ x: a.x + (b.x - a.x) * u, y: a.y + (b.y - a.y) * u - Math.sin(u * Math.PI) * cp * 0.5 });
          for (let k = 1; k <= 5; k++) {
            const u = Math.max(0, t - k * 0.07);
            const p = at(u), s = cp * (0.18 + k * 0.06);
            ctx.globalAlpha = 0.5 * (1 - k / 6);
            ctx.drawImage(this.smokeImg, p.x - s / 2, p.y - s / 2, s, s);
          }
          ctx.globalAlpha = 1;
          const hx = a.x + (b.x - a.x) * t, hy = a.y + (b.y - a.y) * t - arc;
          const ang = Math.atan2(b.y - a.y, b.x - a.x);
          ctx.strokeStyle = '#d8d8d0';
          ctx.lineWidth = Math.max(1.5, cp * 0.08);
          ctx.beginPath(); ctx.moveTo(hx - Math.cos(ang) * cp * 0.18, hy - Math.sin(ang) * cp * 0.18); ctx.lineTo(hx, hy); ctx.stroke();
          const s = cp * 0.22;
          ctx.drawImage(this.fire, hx - Math.cos(ang) * cp * 0.2 - s / 2, hy - Math.sin(ang) * cp * 0.2 - s / 2, s, s);
          break;
        }
        case 'laser': {
          ctx.globalAlpha = 1 - t;
          ctx.strokeStyle = 'rgba(255,40,30,0.5)';
          ctx.lineWidth = Math.max(3, cp * 0.28);
          ctx.beginPath(); ctx.moveTo(a.x, a.y - cp * 0.6); ctx.lineTo(b.x, b.y); ctx.stroke();
          ctx.strokeStyle = '#ffe0e0';
          ctx.lineWidth = Math.max(1, cp * 0.08);
          ctx.beginPath(); ctx.moveTo(a.x, a.y - cp * 0.6); ctx.lineTo(b.x, b.y); ctx.stroke();
          break;
        }
        case 'impact': {
          const s = cp * e.size * (0.5 + t);
          ctx.globalAlpha = 1 - t;
          if (e.warhead === 'bullet') {
            ctx.fillStyle = '#e8d8a0';
            for (let k = 0; k < 3; k++) {
              const ang = k * 2.1 + e.start;
              ctx.fillRect(a.x + Math.cos(ang) * s, a.y + Math.sin(ang) * s, Math.max(1, cp * 0.05), Math.max(1, cp * 0.05));
            }
            ctx.drawImage(this.smokeImg, a.x - s / 2, a.y - s / 2, s, s);
          } else {
            ctx.drawImage(this.fire, a.x - s / 2, a.y - s / 2, s, s);
            if (t > 0.4) ctx.drawImage(this.smokeImg, a.x - s / 2, a.y - s * 0.8, s, s);
          }
          break;
        }
        case 'explosion': {
          const s = cp * e.size * (0.4 + t * 0.9);
          ctx.globalAlpha = t < 0.6 ? 1 : (1 - t) / 0.4;
          ctx.drawImage(this.smokeImg, a.x - s * 0.6, a.y - s * 0.6 - t * cp * 0.6, s * 1.2, s * 1.2);
          ctx.drawImage(this.fire, a.x - s / 2, a.y - s / 2, s, s);
          if (t < 0.3) {
            ctx.globalAlpha = 1 - t / 0.3;
            ctx.drawImage(this.fire, a.x - s * 0.25, a.y - s * 0.25, s * 0.5, s * 0.5);
          }
          break;
        }
        case 'death': {
          const s = cp * e.size * (0.6 + t);
          ctx.globalAlpha = 1 - t;
          ctx.fillStyle = 'rgba(150,20,15,0.9)';
          ctx.beginPath(); ctx.arc(a.x, a.y, s * 0.5, 0, Math.PI * 2); ctx.fill();
          ctx.drawImage(this.smokeImg, a.x - s / 2, a.y - s, s, s);
          break;
        }
        default: break;
      }
      ctx.globalAlpha = 1;
    }
  }

  // What is on the list now (for tests): type and warhead of each live effect.
  snapshot(now) {
    return {
      active: this.list.filter((e) => now >= e.start && now - e.start < e.dur).map((e) => ({ type: e.type, warhead: e.warhead ?? null })),
      decals: this.decals.map((d) => d.type),
      drawn: { ...this.drawn },
    };
  }
}
