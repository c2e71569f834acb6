// hud.js: everything drawn and handled over the game view besides the renderer and the
// sidebar: the building info panel and control-group bar, alerts with minimap pings, the
// hotkey help, and an overlay canvas (pings, the selected building's rally point,
// repair marks). One per game; `destroy()` undoes what it set up.

import { Panel } from './panel.js';
import { Alerts, PING_MS } from './alerts.js';
import { Hotkeys } from './hotkeys.js';

export class Hud {
  constructor(game, actions) {
    this.g = game;
    const s = game.state;
    this.panel = new Panel(s, game.input, actions);
    this.alerts = new Alerts(s);
    this.help = new Hotkeys();
    this.view = document.getElementById('overlay');
    this.mini = document.getElementById('minimap-pings');
    game.input.hooks = {
      help: (show) => this.help.toggle(show),
      sell: () => this.panel.sell(),
      repair: () => this.panel.repair(),
      groups: () => this.panel.updateGroups(),
    };
    this.resize();
  }

  resize() {
    const r = this.view.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.view.width = Math.max(1, Math.floor(r.width * dpr));
    this.view.height = Math.max(1, Math.floor(r.height * dpr));
    this.view.getContext('2d').setTransform(dpr, 0, 0, dpr, 0, 0);
    const m = document.getElementById('minimap');
    this.mini.width = m.width;
    this.mini.height = m.height;
  }

  // Called for every server message before the game applies it.
  before(m) {
    if (m.t === 'delta') this.alerts.beforeDelta(m);
  }

  // Called for every server message after the game applied it.
  after(m) {
    if (m.t === 'delta' || m.t === 'keyframe') this.alerts.afterFrame(m.t === 'keyframe');
    else if (m.t === 'ledger') this.alerts.onLedger(m);
    else if (m.t === 'rejected') this.alerts.onRejected(m);
  }

  update() { this.panel.update(); }

  frame(now) {
    const s = this.g.state, cam = this.g.camera;
    const ctx = this.view.getContext('2d');
    ctx.clearRect(0, 0, cam.vw, cam.vh);
    const pings = this.alerts.livePings(now);
    // The selected building's rally point (as this client set it).
    const b = this.g.input.rallyBuilding();
    const rally = b && this.g.input.rallies.get(b.id);
    if (rally) {
      const from = cam.toScreen(s, b.x, b.y);
      const to = cam.toScreen(s, (rally[0] + 0.5) * s.cell, (rally[1] + 0.5) * s.cell);
      ctx.strokeStyle = 'rgba(255,240,80,0.8)';
      ctx.setLineDash([5, 4]);
      ctx.beginPath(); ctx.moveTo(from.x, from.y); ctx.lineTo(to.x, to.y); ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = '#ff4';
      ctx.fillRect(to.x, to.y - 12, 2, 12);
      ctx.beginPath(); ctx.moveTo(to.x + 2, to.y - 12); ctx.lineTo(to.x + 10, to.y - 9); ctx.lineTo(to.x + 2, to.y - 6); ctx.fill();
    }
    // Repairing buildings: a pulsing wrench mark.
    const rep = (s.ledger && s.ledger.repairing) || [];
    for (const id of rep) {
      const e = s.entities.get(id);
      if (!e) continue;
      const p = cam.toScreen(s, e.x, e.y);
      ctx.globalAlpha = 0.5 + 0.5 * Math.sin(now / 150);
      ctx.fillStyle = '#fd4';
      ctx.font = 'bold 16px sans-serif';
      ctx.fillText('🔧', p.x - 8, p.y + 6);
      ctx.globalAlpha = 1;
    }
    for (const p of pings) {
      const sp = cam.toScreen(s, p.x, p.y);
      const t = (now - p.at) / PING_MS;
      ctx.strokeStyle = p.kind === 'base_under_attack' || p.kind === 'unit_lost' ? 'rgba(255,70,70,0.9)' : 'rgba(120,255,120,0.9)';
      ctx.beginPath(); ctx.arc(sp.x, sp.y, 10 + 30 * t, 0, Math.PI * 2); ctx.stroke();
    }
    // Minimap pings.
    const m = this.mini.getContext('2d');
    m.clearRect(0, 0, this.mini.width, this.mini.height);
    const k = this.g.renderer.miniScale || 1;
    for (const p of pings) {
      const t = ((now - p.at) % 1000) / 1000;
      m.strokeStyle = p.kind === 'base_under_attack' || p.kind === 'unit_lost' ? '#f44' : '#4f4';
      m.lineWidth = 2;
      m.beginPath();
      m.arc((p.x / s.cell) * k, (p.y / s.cell) * k, 3 + 12 * t, 0, Math.PI * 2);
      m.stroke();
    }
  }

  destroy() {
    this.help.toggle(false);
    document.getElementById('info').hidden = true;
    document.getElementById('groups').innerHTML = '';
    document.getElementById('alerts').innerHTML = '';
    const tip = document.getElementById('tooltip');
    if (tip) tip.hidden = true;
    this.view.getContext('2d').clearRect(0, 0, this.view.width, this.view.height);
    this.mini.getContext('2d').clearRect(0, 0, this.mini.width, this.mini.height);
  }
}
