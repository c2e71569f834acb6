// input.js: mouse and keyboard: selection (click, box, shift-add, ctrl-toggle,
// double-click / T same type, control groups), context commands on right-click (a rally
// point with a Barracks or War Factory selected), A/S/G/H/X orders, building placement,
// camera panning (keys, screen edges, minimap) and zoom. Every listener is tied to one
// AbortController, so `destroy()` removes them all when the game is left.

export class Input {
  constructor(canvas, minimap, state, camera, renderer, actions) {
    this.canvas = canvas;
    this.minimap = minimap;
    this.s = state;
    this.cam = camera;
    this.renderer = renderer;
    this.actions = actions; // {command(cmd) -> seq, notice(text)}
    this.hooks = {}; // {help(), sell(), repair(), groups()} set by the HUD
    this.rallies = new Map(); // building id -> cell [x, y] this client set
    this.ui = { placing: null, hoverCell: null, box: null, marker: null, placeAt: () => this.placeAt() };
    this.mode = null; // 'attack_move' after pressing A
    this.keys = new Set();
    this.mouse = null;
    this.drag = null;
    this.lastGroupKey = { key: null, at: 0 };
    this.selectionPending = null; // performance.now() of the last selection change
    this.selectionSamples = [];
    this.bind();
  }

  bind() {
    const c = this.canvas;
    this.abort = new AbortController();
    const o = { signal: this.abort.signal };
    c.addEventListener('contextmenu', (e) => e.preventDefault(), o);
    c.addEventListener('mousedown', (e) => this.onDown(e), o);
    window.addEventListener('mousemove', (e) => this.onMove(e), o);
    window.addEventListener('mouseup', (e) => this.onUp(e), o);
    c.addEventListener('mouseleave', () => { this.mouse = null; }, o);
    c.addEventListener('dblclick', (e) => this.onDouble(e), o);
    c.addEventListener('wheel', (e) => this.onWheel(e), { passive: false, signal: this.abort.signal });
    window.addEventListener('keydown', (e) => this.onKey(e, true), o);
    window.addEventListener('keyup', (e) => this.onKey(e, false), o);
    window.addEventListener('blur', () => this.keys.clear(), o);
    const mm = (e) => {
      if (!(e.buttons & 1) && e.type !== 'mousedown') return;
      const r = this.minimap.getBoundingClientRect();
      const k = this.renderer.miniScale || 1;
      const sx = (e.clientX - r.left) * (this.minimap.width / r.width), sy = (e.clientY - r.top) * (this.minimap.height / r.height);
      this.cam.centerOnCell(this.s, sx / k, sy / k);
    };
    this.minimap.addEventListener('mousedown', mm, o);
    this.minimap.addEventListener('mousemove', mm, o);
  }

  // Removes every listener this game added (leaving the game).
  destroy() { this.abort.abort(); this.keys.clear(); }

  local(e) {
    const r = this.canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  cellAt(p) {
    const c = this.cam.toCell(p.x, p.y);
    return { x: Math.floor(c.x), y: Math.floor(c.y) };
  }

  placeAt() {
    const r = this.s.rules.buildings[this.ui.placing];
    const h = this.ui.hoverCell;
    return { x: h.x - Math.floor(r.width / 2), y: h.y - Math.floor(r.height / 2) };
  }

  // The visible entity under a canvas point (units first, then buildings).
  pick(p) {
    const now = performance.now();
    let best = null, bestD = Infinity;
    const cp = this.cam.cellPx;
    for (const e of this.s.entities.values()) {
      if (e.building) continue;
      const d = this.s.drawPos(e, now);
      const sp = this.cam.toScreen(this.s, d.x, d.y);
      const dist = Math.hypot(sp.x - p.x, sp.y - p.y);
      if (dist < cp * 0.5 && dist < bestD) { best = e; bestD = dist; }
    }
    if (best) return best;
    const c = this.cellAt(p);
    return this.s.entityAtCell(c.x, c.y);
  }

  selectionChanged() { this.selectionPending = performance.now(); }

  // Called by the frame loop after drawing: the selection is now on screen.
  frameDrawn(now) {
    if (this.selectionPending !== null) {
      this.selectionSamples.push(now - this.selectionPending);
      if (this.selectionSamples.length > 200) this.selectionSamples.shift();
      this.selectionPending = null;
    }
  }

  mine(e) { return e && this.s.isMine(e); }

  onDown(e) {
    this.canvas.focus();
    const p = this.local(e);
    if (e.button === 0) {
      if (this.ui.placing) { this.place(); return; }
      if (this.mode === 'attack_move') { this.order(p, 'attack_move'); this.mode = null; this.updateCursor(p); return; }
      this.drag = { x0: p.x, y0: p.y, x1: p.x, y1: p.y, shift: e.shiftKey, ctrl: e.ctrlKey || e.metaKey };
    } else if (e.button === 2) {
      if (this.ui.placing) { this.ui.placing = null; return; }
      if (this.mode) { this.mode = null; this.updateCursor(p); return; }
      if (!this.selectedUnits().length && this.rallyBuilding()) { this.rally(p); return; }
      this.order(p, null);
    }
  }

  onMove(e) {
    const p = this.local(e);
    const inside = p.x >= 0 && p.y >= 0 && p.x < this.cam.vw && p.y < this.cam.vh;
    this.mouse = inside ? p : null;
    if (inside) this.ui.hoverCell = this.cellAt(p);
    if (this.drag) {
      this.drag.x1 = p.x; this.drag.y1 = p.y;
      if (Math.abs(this.drag.x1 - this.drag.x0) + Math.abs(this.drag.y1 - this.drag.y0) > 6) {
        this.ui.box = { x0: Math.min(this.drag.x0, p.x), y0: Math.min(this.drag.y0, p.y), x1: Math.max(this.drag.x0, p.x), y1: Math.max(this.drag.y0, p.y) };
      }
    }
    if (inside) this.updateCursor(p);
  }

  onUp(e) {
    if (e.button !== 0 || !this.drag) return;
    const d = this.drag;
    this.drag = null;
    const box = this.ui.box;
    this.ui.box = null;
    const sel = this.s.selection;
    if (box) {
      const now = performance.now();
      const inBox = [];
      for (const ent of this.s.entities.values()) {
        if (ent.building || !this.mine(ent)) continue;
        const dp = this.s.drawPos(ent, now);
        const sp = this.cam.toScreen(this.s, dp.x, dp.y);
        if (sp.x >= box.x0 && sp.x <= box.x1 && sp.y >= box.y0 && sp.y <= box.y1) inBox.push(ent.id);
      }
      if (!d.shift && !d.ctrl) sel.clear();
      for (const id of inBox) { if (d.ctrl && sel.has(id)) sel.delete(id); else sel.add(id); }
    } else {
      const hit = this.pick({ x: d.x0, y: d.y0 });
      if (d.ctrl && hit) { if (sel.has(hit.id)) sel.delete(hit.id); else sel.add(hit.id); }
      else if (d.shift && hit) sel.add(hit.id);
      else { sel.clear(); if (hit) sel.add(hit.id); }
    }
    this.selectionChanged();
  }

  onDouble(e) {
    const hit = this.pick(this.local(e));
    if (!hit) return;
    const now = performance.now();
    this.s.selection.clear();
    for (const ent of this.s.entities.values()) {
      if (ent.kind !== hit.kind || ent.owner !== hit.owner) continue;
      const dp = ent.building ? { x: ent.x, y: ent.y } : this.s.drawPos(ent, now);
      const sp = this.cam.toScreen(this.s, dp.x, dp.y);
      if (sp.x >= 0 && sp.y >= 0 && sp.x <= this.cam.vw && sp.y <= this.cam.vh) this.s.selection.add(ent.id);
    }
    this.selectionChanged();
  }

  onWheel(e) {
    e.preventDefault();
    const p = this.local(e);
    const before = this.cam.toCell(p.x, p.y);
    const z = Math.max(0.4, Math.min(2.5, this.cam.zoom * (e.deltaY < 0 ? 1.15 : 1 / 1.15)));
    this.cam.zoom = z;
    this.cam.x = before.x * this.cam.cellPx - p.x;
    this.cam.y = before.y * this.cam.cellPx - p.y;
    this.cam.clamp(this.s);
  }

  selectedUnits() {
    return [...this.s.selection].map((id) => this.s.entities.get(id)).filter((e) => e && !e.building && this.mine(e));
  }

  // What a right-click at `p` would do with the current selection.
  intent(p) {
    const units = this.selectedUnits();
    if (!units.length) return null;
    const c = this.cellAt(p);
    const hit = this.pick(p);
    const harvesters = units.filter((u) => u.kind === 'harvester');
    if (this.mode === 'attack_move') return { kind: 'attack_move', cursor: 'crosshair' };
    if (hit && this.s.isEnemy(hit)) return { kind: 'attack', target: hit.id, cursor: 'crosshair' };
    if (hit && this.mine(hit) && hit.kind === 'refinery' && harvesters.length) return { kind: 'return_to_refinery', cursor: 'alias' };
    if (this.s.tiberiumAt(c.x, c.y) && harvesters.length) return { kind: 'harvest', at: [c.x, c.y], cursor: 'copy' };
    return { kind: 'move', to: [c.x, c.y], cursor: 'move' };
  }

  updateCursor(p) {
    let cursor = 'default';
    if (this.ui.placing) {
      const tl = this.placeAt();
      cursor = this.s.canPlace(this.ui.placing, tl.x, tl.y) ? 'cell' : 'not-allowed';
    } else if (this.mode === 'attack_move') cursor = 'crosshair';
    else {
      const hit = this.pick(p);
      const it = this.intent(p);
      if (it) cursor = it.cursor;
      else if (hit && this.mine(hit)) cursor = 'pointer';
    }
    this.canvas.style.cursor = cursor;
  }

  order(p, forced) {
    const units = this.selectedUnits();
    if (!units.length) return;
    const it = forced === 'attack_move' ? { kind: 'attack_move' } : this.intent(p);
    if (!it) return;
    const c = this.cellAt(p);
    const ids = units.map((u) => u.id);
    const cellW = this.s.cell;
    this.ui.marker = { x: (c.x + 0.5) * cellW, y: (c.y + 0.5) * cellW, at: performance.now(), color: it.kind === 'attack' || it.kind === 'attack_move' ? '#f44' : '#4f4' };
    switch (it.kind) {
      case 'attack': this.actions.command({ kind: 'attack', units: ids, target: it.target }); break;
      case 'attack_move': this.actions.command({ kind: 'attack_move', units: ids, to: [c.x, c.y] }); break;
      case 'return_to_refinery': {
        const h = units.filter((u) => u.kind === 'harvester').map((u) => u.id);
        this.actions.command({ kind: 'return_to_refinery', units: h });
        break;
      }
      case 'harvest': {
        const h = units.filter((u) => u.kind === 'harvester').map((u) => u.id);
        const others = ids.filter((id) => !h.includes(id));
        this.actions.command({ kind: 'harvest', units: h, at: it.at });
        if (others.length) this.actions.command({ kind: 'move', units: others, to: [c.x, c.y] });
        break;
      }
      default: this.actions.command({ kind: 'move', units: ids, to: [c.x, c.y] });
    }
  }

  // The one selected own building that sends units out (Barracks, War Factory), if any.
  selectedBuilding() {
    if (this.s.selection.size !== 1) return null;
    const e = this.s.entities.get([...this.s.selection][0]);
    return e && e.building && this.mine(e) ? e : null;
  }

  rallyBuilding() {
    const b = this.selectedBuilding();
    return b && this.s.rules.buildings[b.kind]?.produces && b.kind !== 'construction_yard' ? b : null;
  }

  rally(p) {
    const b = this.rallyBuilding();
    const c = this.cellAt(p);
    this.rallies.set(b.id, [c.x, c.y]);
    this.ui.marker = { x: (c.x + 0.5) * this.s.cell, y: (c.y + 0.5) * this.s.cell, at: performance.now(), color: '#ff4' };
    this.actions.command({ kind: 'rally', building: b.id, at: [c.x, c.y] });
  }

  // Every own unit of the selected units' kinds, anywhere on the map (T).
  selectSameType() {
    const kinds = new Set(this.selectedUnits().map((u) => u.kind));
    if (!kinds.size) return;
    for (const e of this.s.entities.values()) if (!e.building && this.mine(e) && kinds.has(e.kind)) this.s.selection.add(e.id);
    this.selectionChanged();
  }

  // X: the selected units spread out from their centre, a few cells each way; one move
  // per direction, so a scatter of any size is at most eight commands.
  scatter() {
    const units = this.selectedUnits();
    if (!units.length) return;
    const cw = this.s.cell;
    const cx = units.reduce((a, u) => a + u.x, 0) / units.length / cw;
    const cy = units.reduce((a, u) => a + u.y, 0) / units.length / cw;
    const dirs = new Map();
    units.forEach((u, i) => {
      let a = Math.atan2(u.y / cw - cy, u.x / cw - cx);
      if (Math.hypot(u.x / cw - cx, u.y / cw - cy) < 0.5) a = (i * Math.PI) / 4;
      const k = ((Math.round(a / (Math.PI / 4)) % 8) + 8) % 8;
      if (!dirs.has(k)) dirs.set(k, []);
      dirs.get(k).push(u);
    });
    for (const [k, group] of dirs) {
      const a = (k * Math.PI) / 4;
      const gx = group.reduce((s, u) => s + u.x, 0) / group.length / cw, gy = group.reduce((s, u) => s + u.y, 0) / group.length / cw;
      const x = Math.max(0, Math.min(this.s.w - 1, Math.floor(gx + Math.cos(a) * 3)));
      const y = Math.max(0, Math.min(this.s.h - 1, Math.floor(gy + Math.sin(a) * 3)));
      this.actions.command({ kind: 'move', units: group.map((u) => u.id), to: [x, y] });
    }
  }

  // The local check only colours the cursor: the client's picture is partial (fog, units
  // on the move), so the server decides and its rejection names the reason.
  place() {
    const tl = this.placeAt();
    this.actions.command({ kind: 'place', building: this.ui.placing, at: [tl.x, tl.y] });
    this.ui.placing = null;
  }

  onKey(e, down) {
    if (e.target && ['INPUT', 'SELECT', 'TEXTAREA'].includes(e.target.tagName)) return;
    const k = e.key;
    if (!down) { this.keys.delete(k); return; }
    this.keys.add(k);
    if (k.startsWith('Arrow')) { e.preventDefault(); return; }
    const lower = k.toLowerCase();
    const ids = this.selectedUnits().map((u) => u.id);
    if (k === 'F1' || k === '?') { e.preventDefault(); if (this.hooks.help) this.hooks.help(); return; }
    if (k === 'Escape') { this.ui.placing = null; this.mode = null; if (this.hooks.help) this.hooks.help(false); return; }
    if (e.ctrlKey || e.metaKey || e.altKey) {
      if (!e.code || !e.code.startsWith('Digit')) return;
    }
    if (lower === 'a' && !e.ctrlKey) { if (ids.length) this.mode = 'attack_move'; return; }
    if (lower === 's' && !e.ctrlKey) { if (ids.length) this.actions.command({ kind: 'stop', units: ids }); return; }
    // Guard: stand and engage whatever comes into sight (what a stopped unit does).
    if (lower === 'g' && !e.ctrlKey) { if (ids.length) { this.actions.command({ kind: 'stop', units: ids }); this.actions.notice('Guarding'); } return; }
    if (lower === 'h' && !e.ctrlKey) { if (ids.length) this.actions.command({ kind: 'hold', units: ids }); return; }
    if (lower === 'x' && !e.ctrlKey) { this.scatter(); return; }
    if (lower === 't' && !e.ctrlKey) { this.selectSameType(); return; }
    if ((k === 'Delete' || lower === 'z') && this.hooks.sell) { this.hooks.sell(); return; }
    if (lower === 'r' && this.hooks.repair) { this.hooks.repair(); return; }
    const digit = e.code && e.code.startsWith('Digit') ? e.code.slice(5) : (/^[0-9]$/.test(k) ? k : null);
    if (digit !== null) {
      e.preventDefault();
      if (e.ctrlKey || e.metaKey) {
        this.s.groups.set(digit, [...this.s.selection]);
        this.actions.notice(`Group ${digit} set (${this.s.selection.size})`);
        if (this.hooks.groups) this.hooks.groups();
        return;
      }
      const g = (this.s.groups.get(digit) || []).filter((id) => this.s.entities.has(id));
      const now = performance.now();
      const again = this.lastGroupKey.key === digit && now - this.lastGroupKey.at < 400;
      this.lastGroupKey = { key: digit, at: now };
      if (!g.length) return;
      if (e.shiftKey) for (const id of g) this.s.selection.add(id);
      else this.s.selection = new Set(g);
      this.selectionChanged();
      if (again) this.centerOnSelection();
    }
  }

  centerOnSelection() {
    const es = [...this.s.selection].map((id) => this.s.entities.get(id)).filter(Boolean);
    if (!es.length) return;
    const x = es.reduce((a, e) => a + e.x, 0) / es.length / this.s.cell;
    const y = es.reduce((a, e) => a + e.y, 0) / es.length / this.s.cell;
    this.cam.centerOnCell(this.s, x, y);
  }

  // Per frame: pan with arrow keys and at the screen edges.
  update(dt) {
    const speed = 900 * dt;
    let dx = 0, dy = 0;
    if (this.keys.has('ArrowLeft')) dx -= speed;
    if (this.keys.has('ArrowRight')) dx += speed;
    if (this.keys.has('ArrowUp')) dy -= speed;
    if (this.keys.has('ArrowDown')) dy += speed;
    const m = this.mouse, edge = 10;
    if (m && !this.drag && document.hasFocus()) {
      if (m.x < edge) dx -= speed; else if (m.x > this.cam.vw - edge) dx += speed;
      if (m.y < edge) dy -= speed; else if (m.y > this.cam.vh - edge) dy += speed;
    }
    if (dx || dy) { this.cam.x += dx; this.cam.y += dy; this.cam.clamp(this.s); }
  }
}
