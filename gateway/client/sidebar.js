// sidebar.js: credits, the power bar (red with a warning on low power) and the three
// C&C-style build queues: left-click queues (stacks up to the rules' limit; resumes a held
// item; places a ready building), right-click holds, right-click on a held or ready item
// cancels one; counts on the buttons, a clock-wipe for progress, tooltips on every button.

import { playerColor } from './render.js';

const LABELS = {
  construction_yard: 'Construction Yard', power_plant: 'Power Plant', refinery: 'Refinery',
  barracks: 'Barracks', war_factory: 'War Factory', guard_tower: 'Guard Tower', laser_tower: 'Laser Tower',
  rifleman: 'Rifleman', rocket_soldier: 'Rocket Soldier', recon_bike: 'Recon Bike', light_tank: 'Light Tank',
  medium_tank: 'Medium Tank', heavy_tank: 'Heavy Tank', harvester: 'Harvester',
};

// Short marks drawn on the build icons.
const ICONS = {
  power_plant: 'PWR', refinery: 'REF', barracks: 'BAR', war_factory: 'WF', guard_tower: 'GT', laser_tower: 'LT',
  rifleman: 'E1', rocket_soldier: 'E3', recon_bike: 'BK', light_tank: 'LT', medium_tank: 'MT', heavy_tank: 'HT', harvester: 'HV',
};

export function label(kind) { return LABELS[kind] || kind; }

// What a building kind lets its owner build: the buildings that require it and the units
// of the queue it produces.
export function unlocks(rules, kind) {
  const out = Object.entries(rules.buildings).filter(([, b]) => b.requires === kind).map(([k]) => k);
  const q = rules.buildings[kind]?.produces;
  if (q) out.push(...Object.entries(rules.units).filter(([, u]) => unitQueue(u) === q).map(([k]) => k));
  return out;
}

function unitQueue(u) { return u.infantry ? 'infantry' : 'vehicles'; }

export class Sidebar {
  constructor(root, state, input, actions) {
    this.root = root;
    this.s = state;
    this.input = input;
    this.actions = actions;
    this.buttons = new Map(); // item -> {btn, queue, wipe, count, tag}
    this.ledgerAt = performance.now();
    this.tip = document.getElementById('tooltip');
    const me = root.querySelector('#me');
    if (state.me !== null) {
      const p = state.players.find((x) => x.id === state.me);
      me.textContent = p ? p.name : `Player ${state.me}`;
      me.style.color = playerColor(state.me);
    } else {
      me.textContent = 'Spectating';
    }
    root.querySelector('#credits').hidden = state.me === null;
    root.querySelector('#power').style.display = state.me === null ? 'none' : '';
    const queues = root.querySelector('#queues');
    queues.innerHTML = '';
    if (state.me === null) return;
    const r = state.rules;
    const groups = [
      ['buildings', Object.entries(r.buildings).filter(([, b]) => b.buildable).map(([k]) => k)],
      ['infantry', Object.entries(r.units).filter(([, u]) => u.infantry).map(([k]) => k)],
      ['vehicles', Object.entries(r.units).filter(([, u]) => !u.infantry).map(([k]) => k)],
    ];
    for (const [queue, items] of groups) {
      const div = document.createElement('div');
      div.className = 'queue';
      div.innerHTML = `<h3>${queue}</h3>`;
      const grid = document.createElement('div');
      grid.className = 'items';
      items.sort((a, b) => this.cost(a) - this.cost(b));
      for (const item of items) {
        const btn = document.createElement('button');
        btn.className = 'item';
        btn.dataset.item = item;
        btn.dataset.queue = queue;
        btn.innerHTML = `<span class="icon">${ICONS[item] || ''}</span><span class="name">${label(item)}</span>`
          + `<span class="cost">$${this.cost(item)}</span><div class="wipe"></div><span class="count"></span><span class="tag"></span>`;
        btn.addEventListener('click', () => this.click(queue, item));
        btn.addEventListener('contextmenu', (e) => { e.preventDefault(); this.rightClick(queue, item); });
        btn.addEventListener('mouseenter', () => this.showTip(btn, queue, item));
        btn.addEventListener('mouseleave', () => this.hideTip());
        grid.appendChild(btn);
        this.buttons.set(item, {
          btn, queue, wipe: btn.querySelector('.wipe'), count: btn.querySelector('.count'), tag: btn.querySelector('.tag'),
        });
      }
      div.appendChild(grid);
      queues.appendChild(div);
    }
  }

  kindRules(item) { const r = this.s.rules; return r.buildings[item] || r.units[item]; }

  cost(item) { return this.kindRules(item).cost; }

  queueState(queue) { return this.s.ledger ? this.s.ledger[queue] : null; }

  // The building kind the player lacks for `item`, or null.
  missing(queue, item) {
    const r = this.s.rules;
    const producer = Object.entries(r.buildings).find(([, b]) => b.produces === queue);
    const prod = producer ? producer[0] : (queue === 'buildings' ? 'construction_yard' : null);
    if (prod && !this.s.has(prod)) return prod;
    if (queue === 'buildings') {
      const req = r.buildings[item].requires;
      if (req && !this.s.has(req)) return req;
    }
    return null;
  }

  limit(item) { return this.s.rules.buildings[item] ? 1 : (this.s.rules.queue_limit || 5); }

  click(queue, item) {
    const q = this.queueState(queue);
    const mine = q && q.item === item;
    const miss = this.missing(queue, item);
    if (miss && !mine) { this.actions.notice(`${label(item)} requires a ${label(miss)}`); return; }
    if (mine && q.state === 'ready' && queue === 'buildings') {
      this.input.ui.placing = item;
      this.actions.notice(`Place the ${label(item)}`);
      return;
    }
    if (mine && q.state === 'held') { this.actions.command({ kind: 'hold_queue', queue, hold: false }); return; }
    if (q && !mine) { this.actions.notice(`The ${queue} queue is building a ${label(q.item)}`); return; }
    if (mine && q.count >= this.limit(item)) { this.actions.notice(`At most ${this.limit(item)} at a time`); return; }
    this.actions.command({ kind: 'queue', item });
  }

  // C&C: the first right-click holds, a right-click on a held (or ready) item cancels one.
  rightClick(queue, item) {
    const q = this.queueState(queue);
    if (!q || q.item !== item) return;
    if (q.state === 'held' || q.state === 'ready') {
      this.actions.command({ kind: 'cancel', queue });
      if (this.input.ui.placing === item) this.input.ui.placing = null;
    } else {
      this.actions.command({ kind: 'hold_queue', queue, hold: true });
    }
  }

  speed() { return this.s.ledger ? (this.s.ledger.production_speed_pct || 100) : 100; }

  tipText(queue, item) {
    const r = this.kindRules(item);
    const secs = (r.build_ms / 1000) * (100 / this.speed());
    const lines = [`<b>${label(item)}</b>`, `Cost $${r.cost} · build ${secs.toFixed(secs < 10 ? 1 : 0)} s${this.speed() < 100 ? ' (low power)' : ''}`];
    if (this.s.rules.buildings[item]) {
      const p = r.power;
      lines.push(`Power ${p > 0 ? '+' : ''}${p} · ${r.width}×${r.height}`);
    } else {
      lines.push(`HP ${r.hp} · ${r.armed ? `range ${(r.range_milli / 1000).toFixed(1)}` : 'unarmed'}`);
    }
    const miss = this.missing(queue, item);
    if (miss) lines.push(`<span class="need">Requires: ${label(miss)}</span>`);
    const u = this.s.rules.buildings[item] ? unlocks(this.s.rules, item) : [];
    if (u.length) lines.push(`Unlocks: ${u.map(label).join(', ')}`);
    lines.push('<i>Left: build · Right: hold / cancel</i>');
    return lines.join('<br>');
  }

  showTip(btn, queue, item) {
    if (!this.tip) return;
    this.tip.innerHTML = this.tipText(queue, item);
    this.tip.hidden = false;
    const b = btn.getBoundingClientRect();
    const w = this.tip.offsetWidth;
    this.tip.style.left = `${Math.max(4, b.left - w - 8)}px`;
    this.tip.style.top = `${Math.max(4, b.top)}px`;
    this.tipFor = item;
  }

  hideTip() { if (this.tip) this.tip.hidden = true; this.tipFor = null; }

  ledgerChanged() { this.ledgerAt = performance.now(); this.update(); }

  // Progress of a queue's current item (0..1), moving on smoothly between ledger frames.
  progress(q) {
    if (q.state === 'ready') return 1;
    const base = q.cost ? q.paid / q.cost : 0;
    if (q.state !== 'building') return base;
    const r = this.kindRules(q.item);
    const extra = r && r.build_ms ? ((performance.now() - this.ledgerAt) * this.speed()) / 100 / r.build_ms : 0;
    return Math.min(0.99, base + Math.min(extra, 0.25));
  }

  update() {
    const l = this.s.ledger;
    document.getElementById('credits-value').textContent = l ? Math.floor(l.credits) : '—';
    const out = l ? l.power_output : 0, use = l ? l.power_consumption : 0;
    const low = l ? (l.low_power ?? use > out) : false;
    document.getElementById('power-text').textContent = `${use} / ${out}`;
    document.getElementById('power-fill').style.width = `${out > 0 ? Math.min(100, (use / out) * 100) : use > 0 ? 100 : 0}%`;
    document.getElementById('power').classList.toggle('low', low);
    const warn = document.getElementById('power-warning');
    if (warn) {
      warn.hidden = !low;
      warn.textContent = low ? `LOW POWER — production at ${this.speed()}%` : '';
    }
    for (const [item, { btn, queue, wipe, count, tag }] of this.buttons) {
      const q = this.queueState(queue);
      const mine = q && q.item === item;
      const miss = this.missing(queue, item);
      btn.classList.toggle('unavailable', !!miss && !mine);
      btn.setAttribute('aria-disabled', miss && !mine ? 'true' : 'false');
      btn.classList.toggle('active', !!mine && q.state === 'building');
      btn.classList.toggle('paused', !!mine && q.state === 'paused');
      btn.classList.toggle('held', !!mine && q.state === 'held');
      btn.classList.toggle('ready', !!mine && q.state === 'ready');
      btn.classList.toggle('busy', !!q && !mine);
      const n = mine ? q.count || 1 : 0;
      count.textContent = n > 1 ? String(n) : '';
      tag.textContent = !mine ? '' : q.state === 'held' ? 'HOLD' : q.state === 'ready' ? 'READY' : q.state === 'paused' ? '$' : '';
      if (mine) {
        // Clock-wipe: the part still to build stays dark, clockwise from 12 o'clock.
        const p = Math.round(this.progress(q) * 1000) / 10;
        btn.dataset.progress = String(p);
        wipe.style.background = `conic-gradient(transparent 0 ${p}%, rgba(0,0,0,0.62) ${p}% 100%)`;
        wipe.hidden = false;
      } else {
        delete btn.dataset.progress;
        wipe.hidden = true;
      }
      if (this.tipFor === item && this.tip && !this.tip.hidden) this.tip.innerHTML = this.tipText(queue, item);
    }
  }
}
