// score.js: the post-game score screen: per player units built, lost and killed,
// buildings built and lost, credits harvested and APM, from the server's `score`
// message (the same figures as `replay-tool stats`), shown in the end-of-game overlay.

import { playerColor } from './render.js';

const COLUMNS = [
  ['units_built', 'Units built'],
  ['units_lost', 'Units lost'],
  ['kills', 'Kills'],
  ['buildings_built', 'Buildings built'],
  ['buildings_lost', 'Buildings lost'],
  ['harvested', 'Harvested'],
  ['apm', 'APM'],
];

export class ScoreScreen {
  constructor(root) {
    this.root = root;
    this.score = null;
    root.replaceChildren();
    root.hidden = true;
  }

  // A `score` message.
  show(m) {
    this.score = m;
    const table = document.createElement('table');
    const head = document.createElement('tr');
    for (const h of ['Player', ...COLUMNS.map((c) => c[1])]) {
      const th = document.createElement('th');
      th.textContent = h;
      head.appendChild(th);
    }
    table.appendChild(head);
    for (const p of m.players) {
      const tr = document.createElement('tr');
      tr.dataset.player = String(p.player);
      const name = document.createElement('td');
      name.textContent = p.name;
      name.style.color = playerColor(p.player);
      tr.appendChild(name);
      for (const [key] of COLUMNS) {
        const td = document.createElement('td');
        td.className = key;
        td.textContent = key === 'apm' ? Number(p.apm).toFixed(1) : Number(p[key]).toLocaleString('en-US');
        tr.appendChild(td);
      }
      table.appendChild(tr);
    }
    const hz = m.tick_hz || 20;
    const secs = Math.floor(m.ticks / hz);
    const caption = document.createElement('caption');
    caption.textContent = `Score · ${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, '0')} of game time`;
    table.prepend(caption);
    this.root.replaceChildren(table);
    this.root.hidden = false;
  }

  clear() {
    this.score = null;
    this.root.replaceChildren();
    this.root.hidden = true;
  }
}
