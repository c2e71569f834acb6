// panel.js: the info panel of a selected building (name, health, power, what it unlocks,
// sell and repair buttons with their hotkeys, the rally hint) and the control-group bar
// with each group's unit count.

import { label, unlocks } from './sidebar.js';

export class Panel {
  constructor(state, input, actions) {
    this.s = state;
    this.input = input;
    this.actions = actions;
    this.el = document.getElementById('info');
    this.groupsEl = document.getElementById('groups');
    this.shownFor = null;
    this.el.hidden = true;
    this.el.innerHTML = '';
    this.groupsEl.innerHTML = '';
  }

  // The selected building the panel describes (own or seen enemy), if exactly one.
  building() {
    if (this.s.selection.size !== 1) return null;
    const e = this.s.entities.get([...this.s.selection][0]);
    return e && e.building ? e : null;
  }

  sell() {
    const b = this.building();
    if (!b || !this.s.isMine(b)) return;
    const r = this.s.rules.buildings[b.kind];
    const refund = Math.floor((r.cost * (this.s.rules.sell_refund_pct ?? 50)) / 100);
    this.actions.command({ kind: 'sell', building: b.id });
    this.actions.notice(`Sold the ${label(b.kind)} for $${refund}`);
  }

  repairing(id) { return !!(this.s.ledger && (this.s.ledger.repairing || []).includes(id)); }

  repair() {
    const b = this.building();
    if (!b || !this.s.isMine(b)) return;
    const on = !this.repairing(b.id);
    if (on && b.hp >= b.max_hp) { this.actions.notice(`The ${label(b.kind)} is not damaged`); return; }
    this.actions.command({ kind: 'repair', building: b.id, on });
  }

  update() {
    this.updateGroups();
    const b = this.building();
    if (!b) { this.el.hidden = true; this.shownFor = null; return; }
    const r = this.s.rules.buildings[b.kind];
    const mine = this.s.isMine(b);
    if (this.shownFor !== b.id) {
      this.shownFor = b.id;
      const u = unlocks(this.s.rules, b.kind);
      const refund = Math.floor((r.cost * (this.s.rules.sell_refund_pct ?? 50)) / 100);
      const rally = mine && r.produces && b.kind !== 'construction_yard'
        ? '<div class="hint">Right-click the map to set the rally point</div>' : '';
      this.el.innerHTML = `<div class="title">${label(b.kind)}</div>`
        + '<div class="hpbar"><div class="hpfill"></div></div><div class="hptext"></div>'
        + `<div>Power ${r.power > 0 ? '+' : ''}${r.power}</div>`
        + (u.length ? `<div class="unlocks">Unlocks: ${u.map(label).join(', ')}</div>` : '')
        + rally
        + (mine ? `<div class="buttons"><button id="sell-btn" class="small" title="Sell (Delete or Z): refund $${refund}">Sell $${refund}</button>`
          + '<button id="repair-btn" class="small" title="Repair (R)">Repair</button></div>' : '');
      if (mine) {
        this.el.querySelector('#sell-btn').onclick = () => this.sell();
        this.el.querySelector('#repair-btn').onclick = () => this.repair();
      }
    }
    this.el.hidden = false;
    const frac = b.max_hp ? b.hp / b.max_hp : 0;
    const fill = this.el.querySelector('.hpfill');
    fill.style.width = `${Math.round(frac * 100)}%`;
    fill.style.background = frac > 0.5 ? '#4e4' : frac > 0.25 ? '#ec4' : '#e44';
    this.el.querySelector('.hptext').textContent = `Health ${b.hp} / ${b.max_hp}`;
    const rb = this.el.querySelector('#repair-btn');
    if (rb) {
      const on = this.repairing(b.id);
      rb.textContent = on ? 'Repairing…' : 'Repair';
      rb.classList.toggle('on', on);
    }
  }

  // Control groups that hold live units, with their counts; a click selects the group.
  updateGroups() {
    const parts = [];
    for (const [k, ids] of [...this.s.groups.entries()].sort()) {
      const n = ids.filter((id) => this.s.entities.has(id)).length;
      if (n) parts.push([k, n]);
    }
    const key = parts.map(([k, n]) => `${k}:${n}`).join(' ');
    if (key === this.groupsKey) return;
    this.groupsKey = key;
    this.groupsEl.innerHTML = '';
    for (const [k, n] of parts) {
      const b = document.createElement('button');
      b.className = 'small group';
      b.dataset.group = k;
      b.innerHTML = `<b>${k}</b> ${n}`;
      b.title = `Group ${k}: ${n} unit${n === 1 ? '' : 's'} (press ${k}; Ctrl+${k} sets it)`;
      b.onclick = () => {
        this.s.selection = new Set((this.s.groups.get(k) || []).filter((id) => this.s.entities.has(id)));
        this.input.selectionChanged();
      };
      this.groupsEl.appendChild(b);
    }
  }
}
