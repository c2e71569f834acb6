// hotkeys.js: the hotkey help overlay (F1 or ?), listing every mouse and keyboard control.

export const HOTKEYS = [
  ['Left-click / drag', 'select a unit or building / box-select your units'],
  ['Shift / Ctrl + click', 'add to / toggle in the selection'],
  ['Double-click', 'select all your units of that type on screen'],
  ['T', 'select all your units of the selected types'],
  ['Right-click', 'move, attack, harvest or return (by what is under the cursor); with a Barracks or War Factory selected: set its rally point'],
  ['A, then click', 'attack-move: go there, fighting whatever is met'],
  ['S', 'stop'],
  ['G', 'guard: stand and engage whatever comes into sight'],
  ['H', 'hold position: never move, fire at what comes into range'],
  ['X', 'scatter'],
  ['Ctrl + 0–9', 'set a control group'],
  ['0–9 (twice)', 'select a control group (and centre on it)'],
  ['R', 'repair the selected building (again to stop)'],
  ['Delete / Z', 'sell the selected building (half its cost back)'],
  ['Sidebar left-click', 'build (again to stack, up to 5 units); resume a held item; place a ready building'],
  ['Sidebar right-click', 'hold the item; on a held or ready item: cancel one (refunds what was paid)'],
  ['Arrows, screen edge, minimap', 'move the view; mouse wheel zooms'],
  ['Esc', 'cancel placement or attack-move; close this help'],
  ['F1 or ?', 'show or hide this help'],
];

export class Hotkeys {
  constructor() {
    this.el = document.getElementById('help');
    const rows = HOTKEYS.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('');
    this.el.innerHTML = `<div class="box"><h2>Controls</h2><table>${rows}</table><button id="help-close" class="small">Close (Esc)</button></div>`;
    this.el.hidden = true;
    this.el.querySelector('#help-close').onclick = () => this.toggle(false);
    const open = document.getElementById('help-btn');
    if (open) open.onclick = () => this.toggle(true);
  }

  toggle(show) {
    this.el.hidden = show === undefined ? !this.el.hidden : !show;
  }

  get open() { return !this.el.hidden; }
}
