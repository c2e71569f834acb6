// alerts.js: EVA-style alerts from what the client sees change: "Base under attack" (an
// own building lost health), "Unit lost", "Construction complete", "Unit ready", "Low
// power", "Insufficient funds". Each is an on-screen notice with a minimap ping where it
// happened, rate-limited per kind, with an optional generated tone (Web Audio, mutable).

// Least time between two alerts of one kind, in milliseconds.
export const ALERT_INTERVAL_MS = {
  base_under_attack: 10000, unit_lost: 3000, construction_complete: 1000, unit_ready: 1500,
  low_power: 10000, insufficient_funds: 8000,
};
const TEXT = {
  base_under_attack: 'Base under attack', unit_lost: 'Unit lost', construction_complete: 'Construction complete',
  unit_ready: 'Unit ready', low_power: 'Low power', insufficient_funds: 'Insufficient funds',
};
// Tone of each alert: [frequency Hz, second frequency Hz].
const TONES = {
  base_under_attack: [440, 330], unit_lost: [300, 220], construction_complete: [660, 880],
  unit_ready: [587, 784], low_power: [250, 250], insufficient_funds: [350, 280],
};
// How long a ping shows on the minimap, in milliseconds.
export const PING_MS = 3000;
// Alerts kept for the page (and tests) to read.
const KEPT_ALERTS = 50;

export class Alerts {
  constructor(state) {
    this.s = state;
    this.box = document.getElementById('alerts');
    this.box.innerHTML = '';
    this.last = new Map(); // kind -> time
    this.log = [];
    this.pings = [];
    this.hp = new Map(); // own building id -> hp last seen
    this.seeded = false;
    this.prevLedger = null;
    this.muted = localStorage.getItem('cnit.muted') !== '0';
    this.audio = null;
    this.muteBtn = document.getElementById('mute');
    this.muteBtn.onclick = () => this.setMuted(!this.muted);
    this.setMuted(this.muted);
  }

  setMuted(m) {
    this.muted = m;
    localStorage.setItem('cnit.muted', m ? '1' : '0');
    this.muteBtn.textContent = m ? '🔇 Sound off' : '🔊 Sound on';
    // A click is a user gesture: the one moment a page may start audio.
    if (!m && !this.audio && window.AudioContext) this.audio = new AudioContext();
  }

  tone(kind) {
    if (this.muted || !this.audio) return;
    const [f1, f2] = TONES[kind] || [440, 440];
    const a = this.audio, t = a.currentTime;
    const osc = a.createOscillator(), gain = a.createGain();
    osc.type = 'square';
    osc.frequency.setValueAtTime(f1, t);
    osc.frequency.setValueAtTime(f2, t + 0.12);
    gain.gain.setValueAtTime(0.05, t);
    gain.gain.exponentialRampToValueAtTime(0.001, t + 0.3);
    osc.connect(gain).connect(a.destination);
    osc.start(t);
    osc.stop(t + 0.32);
  }

  // Raises an alert unless one of its kind was raised too recently; `at` is a fixed-point
  // position for the ping.
  raise(kind, at) {
    const now = performance.now();
    const prev = this.last.get(kind);
    if (prev !== undefined && now - prev < (ALERT_INTERVAL_MS[kind] || 1000)) return false;
    this.last.set(kind, now);
    const entry = { kind, text: TEXT[kind] || kind, at: now, x: at ? at.x : null, y: at ? at.y : null };
    this.log.push(entry);
    if (this.log.length > KEPT_ALERTS) this.log.shift();
    if (at) this.pings.push({ x: at.x, y: at.y, at: now, kind });
    const div = document.createElement('div');
    div.className = `alert ${kind}`;
    div.textContent = entry.text;
    this.box.appendChild(div);
    while (this.box.children.length > 4) this.box.firstChild.remove();
    setTimeout(() => div.remove(), 4000);
    this.tone(kind);
    return true;
  }

  // Before a delta is applied: own units it removes were lost.
  beforeDelta(d) {
    if (this.s.me === null) return;
    for (const id of d.removed) {
      const e = this.s.entities.get(id);
      if (e && this.s.isMine(e) && !e.building) this.raise('unit_lost', { x: e.x, y: e.y });
    }
  }

  // After a keyframe or delta: buildings that lost health, units that appeared.
  afterFrame(key) {
    if (this.s.me === null) return;
    const seen = new Set();
    for (const e of this.s.entities.values()) {
      if (!this.s.isMine(e)) continue;
      seen.add(e.id);
      const before = this.hp.get(e.id);
      if (e.building && before !== undefined && e.hp < before) this.raise('base_under_attack', { x: e.x, y: e.y });
      if (!e.building && before === undefined && this.seeded && !key) this.raise('unit_ready', { x: e.x, y: e.y });
      this.hp.set(e.id, e.hp);
    }
    for (const id of [...this.hp.keys()]) if (!seen.has(id)) this.hp.delete(id);
    this.seeded = true;
  }

  onLedger(l) {
    const p = this.prevLedger;
    this.prevLedger = l;
    if (!p) return;
    const b = l.buildings, pb = p.buildings;
    if (b && b.state === 'ready' && !(pb && pb.state === 'ready')) this.raise('construction_complete', this.home());
    if (l.low_power && !p.low_power) this.raise('low_power', this.home());
    for (const q of ['buildings', 'infantry', 'vehicles']) {
      if (l[q] && l[q].state === 'paused' && !(p[q] && p[q].state === 'paused')) this.raise('insufficient_funds', null);
    }
  }

  onRejected(m) {
    if (m.code === 'no_funds') this.raise('insufficient_funds', null);
  }

  // Where base-wide alerts ping: the construction yard, else any own building.
  home() {
    let any = null;
    for (const e of this.s.entities.values()) {
      if (!e.building || !this.s.isMine(e)) continue;
      if (e.kind === 'construction_yard') return { x: e.x, y: e.y };
      any = any || { x: e.x, y: e.y };
    }
    return any;
  }

  livePings(now) {
    this.pings = this.pings.filter((p) => now - p.at < PING_MS);
    return this.pings;
  }
}
