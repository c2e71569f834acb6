// sidebar.js: credits, power and the three build queues (click to queue, right-click to
// cancel, click a ready building to place it).

import { playerColor } from './render.js';

const LABELS = {
  construction_yard: 'Construction Yard', power_plant: 'Power Plant', refinery: 'Refinery',
  barracks: 'Barracks', war_factory: 'War Factory', guard_tower: 'Guard Tower', laser_tower: 'Laser Tower',
  rifleman: 'Rifleman', rocket_soldier: 'Rocket Soldier', recon_bike: 'Recon Bike', light_tank: 'Light Tank',
  medium_tank: 'Medium Tank', heavy_tank: 'Heavy Tank', harvester: 'Harvester',
};

export function label(kind) { return LABELS[kind] || kind; }

export class Sidebar {
  constructor(root, state, input, actions) {
    this.root = root;
    this.s = state;
    this.input = input;
    this.actions = actions;
    this.buttons = new Map(); // item -> {btn, queue, bar}
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
        btn.innerHTML = `${label(item)}<span class="cost">$${this.cost(item)}</span><div class="progress"></div>`;
        btn.addEventListener('click', () => this.click(queue, item));
        btn.addEventListener('contextmenu', (e) => { e.preventDefault(); this.cancel(queue, item); });
        grid.appendChild(btn);
        this.buttons.set(item, { btn, queue, bar: btn.querySelector('.progress') });
      }
      div.appendChild(grid);
      queues.appendChild(div);
    }
  }

  cost(item) {
    const r = this.s.rules;
    return (r.buildings[item] || r.units[item]).cost;
  }

  queueState(queue) { return this.s.ledger ? this.s.ledger[queue] : null; }

  available(queue, item) {
    const r = this.s.rules;
    if (queue === 'buildings') {
      const req = r.buildings[item].requires;
      return !req || this.s.has(req);
    }
    // Units need a building that produces their queue (the harvester: a war factory).
    return Object.entries(r.buildings).some(([k, b]) => b.produces === queue && this.s.has(k));
  }

  click(queue, item) {
    const q = this.queueState(queue);
    if (q && q.item === item && q.state === 'ready' && queue === 'buildings') {
      this.input.ui.placing = item;
      this.actions.notice(`Place the ${label(item)}`);
      return;
    }
    if (q) { this.actions.notice(`The ${queue} queue is busy`); return; }
    this.actions.command({ kind: 'queue', item });
  }

  cancel(queue, item) {
    const q = this.queueState(queue);
    if (q && q.item === item) {
      this.actions.command({ kind: 'cancel', queue });
      if (this.input.ui.placing === item) this.input.ui.placing = null;
    }
  }

  update() {
    const l = this.s.ledger;
    document.getElementById('credits-value').textContent = l ? Math.floor(l.credits) : '—';
    const out = l ? l.power_output : 0, use = l ? l.power_consumption : 0;
    document.getElementById('power-text').textContent = `${use} / ${out}`;
    document.getElementById('power-fill').style.width = `${out > 0 ? Math.min(100, (use / out) * 100) : use > 0 ? 100 : 0}%`;
    document.getElementById('power').classList.toggle('low', use > out);
    for (const [item, { btn, queue, bar }] of this.buttons) {
      const q = this.queueState(queue);
      const mine = q && q.item === item;
      btn.disabled = !this.available(queue, item) && !mine;
      btn.classList.toggle('active', !!mine && q.state === 'building');
      btn.classList.toggle('paused', !!mine && q.state === 'paused');
      btn.classList.toggle('ready', !!mine && q.state === 'ready');
      bar.style.width = mine ? (q.state === 'ready' ? '100%' : `${q.cost ? (q.paid / q.cost) * 100 : 0}%`) : '0';
    }
  }
}
