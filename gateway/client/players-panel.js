// players-panel.js: the per-player panel of spectators and replay viewers: credits,
// power, army value, units lost and killed, and credits harvested, from the server's
// `players_stats` messages (which only spectators receive).

import { playerColor } from './render.js';

const num = (n) => Number(n).toLocaleString('en-US');

export class PlayersPanel {
  constructor(root, state) {
    this.root = root;
    this.state = state;
    this.last = null;
    root.replaceChildren();
    root.hidden = state.role !== 'spectator';
  }

  // A `players_stats` message.
  update(m) {
    this.last = m;
    const rows = m.players.map((p) => {
      const info = this.state.players.find((x) => x.id === p.player);
      const tr = document.createElement('tr');
      tr.dataset.player = String(p.player);
      const low = p.power_consumption > p.power_output;
      const cells = [
        [info ? info.name : `Player ${p.player}`, 'name'],
        [`$${num(p.credits)}`, 'credits'],
        [`${p.power_output}/${p.power_consumption}`, low ? 'power low' : 'power'],
        [num(p.army_value), 'army'],
        [String(p.units_lost), 'lost'],
        [String(p.kills), 'kills'],
        [num(p.harvested), 'harvested'],
      ];
      for (const [text, cls] of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        td.className = cls;
        tr.appendChild(td);
      }
      tr.firstChild.style.color = playerColor(p.player);
      return tr;
    });
    const head = document.createElement('tr');
    for (const [h, title] of [['Player', ''], ['Credits', ''], ['Power', 'output / consumption'],
      ['Army', 'value of live units'], ['Lost', 'units lost'], ['Kills', 'enemy units and buildings destroyed'],
      ['Harvested', 'credits harvested']]) {
      const th = document.createElement('th');
      th.textContent = h;
      if (title) th.title = title;
      head.appendChild(th);
    }
    const table = document.createElement('table');
    table.append(head, ...rows);
    this.root.replaceChildren(table);
  }
}
