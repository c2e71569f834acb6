// app.js: entry point of the browser client: routes between the lobby and the game
// view, wires connection, state, renderer, input and sidebar, runs the frame loop, and
// exposes `window.__game` for tests.

import { Connection } from './net.js';
import { GameState } from './state.js';
import { Camera, Renderer } from './render.js';
import { Input } from './input.js';
import { Sidebar } from './sidebar.js';
import { Hud } from './hud.js';
import { showLobby, loadGrant, showError } from './lobby.js';
import { PlayersPanel } from './players-panel.js';
import { ScoreScreen } from './score.js';

const $ = (id) => document.getElementById(id);
let game = null;

function notice(text, kind) {
  const box = $('notices');
  const div = document.createElement('div');
  div.textContent = text;
  if (kind) div.className = kind;
  box.appendChild(div);
  while (box.children.length > 5) box.firstChild.remove();
  setTimeout(() => div.remove(), 4000);
}

class Game {
  constructor(target) {
    this.target = target;
    this.state = null;
    this.camera = new Camera();
    this.frameSamples = [];
    this.drawSamples = [];
    this.fps = 0;
    this.lastFrame = performance.now();
    this.lastTelemetry = performance.now();
    this.rejections = [];
    this.acks = 0;
    this.ended = false;
    this.conn = new Connection(target, {
      onMessage: (m) => this.onMessage(m),
      onStatus: (s) => { const el = $('status'); el.textContent = s || ''; el.classList.toggle('show', !!s); },
      lastTick: () => (this.state ? this.state.tick : null),
    });
    this.conn.connect();
    this.running = true;
    requestAnimationFrame((t) => this.frame(t));
  }

  onMessage(m) {
    if (this.hud) this.hud.before(m);
    this.handle(m);
    if (this.hud) this.hud.after(m);
  }

  handle(m) {
    switch (m.t) {
      case 'welcome':
        if (!this.state || this.state.welcome.match !== m.match) this.start(m);
        break;
      case 'keyframe': this.state?.applyKeyframe(m); this.homeOnce(); this.checkEnd(); break;
      case 'delta': this.state?.applyDelta(m); this.checkEnd(); break;
      case 'ledger': if (this.state) { this.state.ledger = m; this.sidebar.ledgerChanged(); } break;
      case 'ack': this.acks++; break;
      case 'rejected':
        this.rejections.push(m);
        if (this.rejections.length > 50) this.rejections.shift();
        if (m.code === 'bad_placement') notice(m.message.charAt(0).toUpperCase() + m.message.slice(1), 'placement');
        else notice(`Rejected: ${m.message}`);
        break;
      case 'event':
        if (m.kind === 'player_defeated' && this.state) {
          this.state.defeated.add(m.player);
          const p = this.state.players.find((x) => x.id === m.player);
          notice(`${p ? p.name : 'A player'} was defeated`);
        }
        break;
      case 'game_over': if (this.state) { this.state.winner = m.winner; this.checkEnd(); } break;
      case 'replay_state': this.replayState = m; this.updateReplayBar(); break;
      case 'players_stats': this.playersPanel?.update(m); break;
      case 'score': this.scoreScreen?.show(m); if (this.state) $('endscreen').hidden = false; break;
      case 'error':
        notice(`Error: ${m.message}`);
        if (['bad_token', 'unknown_match', 'protocol_mismatch', 'not_a_player'].includes(m.code) && !this.state) {
          this.stop();
          location.hash = '';
          showError(m.message);
        }
        break;
    }
  }

  start(welcome) {
    this.state = new GameState(welcome);
    this.renderer = new Renderer($('view'), $('minimap'), this.state, this.camera);
    this.input = new Input($('view'), $('minimap'), this.state, this.camera, this.renderer, {
      command: (c) => this.command(c),
      notice,
    });
    this.sidebar = new Sidebar($('sidebar'), this.state, this.input, { command: (c) => this.command(c), notice });
    this.hud = new Hud(this, { command: (c) => this.command(c), notice });
    this.renderer.resize();
    this.onResize = () => { this.renderer.resize(); this.hud.resize(); };
    window.addEventListener('resize', this.onResize);
    // The camera starts on a base: the player's own, or player 0's for spectators.
    const starts = welcome.map.starts;
    const home = starts[welcome.player ?? 0] || [welcome.map.width / 2, welcome.map.height / 2];
    this.camera.centerOnCell(this.state, home[0], home[1]);
    this.playersPanel = new PlayersPanel($('players-panel'), this.state);
    this.scoreScreen = new ScoreScreen($('end-score'));
    $('game').classList.toggle('replay', !!welcome.replay);
    this.sidebar.update();
    $('game').classList.toggle('spectator', welcome.role === 'spectator');
    this.setupReplayBar(welcome.replay);
  }

  // Once the first picture is in, centres the camera on the home construction yard.
  homeOnce() {
    const s = this.state;
    if (!s || this.homed) return;
    const owner = s.me ?? 0;
    const yard = [...s.entities.values()].find((e) => e.owner === owner && e.kind === 'construction_yard');
    if (!yard) return;
    this.homed = true;
    this.camera.centerOnCell(s, yard.x / s.cell, yard.y / s.cell);
  }

  // Play/pause, speed and seek for recorded matches.
  setupReplayBar(replay) {
    const bar = $('replaybar');
    bar.hidden = !replay;
    if (!replay) return;
    const seek = $('rp-seek');
    seek.max = String(replay.last_tick);
    $('rp-play').onclick = () => {
      const playing = this.replayState ? this.replayState.playing : true;
      this.conn.raw({ t: 'replay', action: playing ? 'pause' : 'play' });
    };
    $('rp-speed').onchange = (e) => this.conn.raw({ t: 'replay', speed: Number(e.target.value) });
    seek.oninput = () => { this.seeking = true; };
    seek.onchange = () => {
      this.seeking = false;
      this.ended = false;
      $('endscreen').hidden = true;
      this.scoreScreen?.clear();
      if (this.state) this.state.winner = undefined;
      this.conn.raw({ t: 'replay', seek: Number(seek.value) });
    };
  }

  updateReplayBar() {
    const r = this.replayState;
    if (!r) return;
    $('rp-play').textContent = r.playing ? 'Pause' : 'Play';
    const tick = this.state?.tick ?? r.tick ?? 0;
    if (!this.seeking) $('rp-seek').value = String(tick);
    const hz = this.state?.rules.tick_hz || 20;
    const fmt = (t) => `${Math.floor(t / hz / 60)}:${String(Math.floor(t / hz) % 60).padStart(2, '0')}`;
    $('rp-pos').textContent = `${fmt(tick)} / ${fmt(r.last_tick)}`;
  }

  command(cmd) {
    if (!this.state || this.state.me === null) return null;
    return this.conn.command(cmd);
  }

  checkEnd() {
    const s = this.state;
    if (!s || s.winner === undefined || this.ended) return;
    this.ended = true;
    const title = $('end-title');
    let text;
    if (s.me !== null) {
      const won = s.winner === s.me;
      title.textContent = s.winner === null ? 'Draw' : won ? 'Victory' : 'Defeat';
      title.className = won ? 'win' : 'lose';
      text = won ? 'The enemy has no buildings left.' : s.winner === null ? 'Nobody is left standing.'
        : this.surrendered ? 'You surrendered.' : 'Your base has fallen.';
    } else {
      const p = s.players.find((x) => x.id === s.winner);
      title.textContent = s.winner === null ? 'Draw' : `${p ? p.name : 'Player ' + s.winner} wins`;
      title.className = 'win';
      text = `The match ended at tick ${s.tick}.`;
    }
    $('end-text').textContent = text;
    $('endscreen').hidden = false;
  }

  frame(t) {
    if (!this.running) return;
    const now = performance.now();
    const dt = Math.min(0.1, (now - this.lastFrame) / 1000);
    const frameMs = now - this.lastFrame;
    this.lastFrame = now;
    this.frameSamples.push(frameMs);
    if (this.frameSamples.length > 240) this.frameSamples.shift();
    this.fps = this.fps * 0.9 + (frameMs > 0 ? 1000 / frameMs : 0) * 0.1;
    if (this.state) {
      this.input.update(dt);
      const drawStart = performance.now();
      this.renderer.draw(now, this.input.ui);
      this.drawSamples.push(performance.now() - drawStart);
      if (this.drawSamples.length > 4000) this.drawSamples.splice(0, 2000);
      this.hud.frame(now);
      this.input.frameDrawn(performance.now());
      if (Math.floor(now / 250) !== Math.floor((now - frameMs) / 250)) { this.sidebar.update(); this.hud.update(); this.updateReplayBar(); }
    }
    const rtt = this.conn.rtt === null ? '–' : `${Math.round(this.conn.rtt)} ms`;
    $('perf').textContent = `fps ${Math.round(this.fps)} · ping ${rtt} · tick ${this.state?.tick ?? '–'}`;
    if (now - this.lastTelemetry > 5000) {
      this.lastTelemetry = now;
      const sel = this.input ? this.input.selectionSamples.splice(0) : [];
      this.conn.telemetry(sel, this.frameSamples.slice(-100));
    }
    requestAnimationFrame((tt) => this.frame(tt));
  }

  // Against the AI, leaving surrenders (after asking); a two-player match goes on and the
  // slot can be taken back from the lobby; spectators and finished games just leave.
  leave() {
    const s = this.state;
    const vsAi = s && s.me !== null && s.players.some((p) => p.kind !== 'human')
      && s.players.filter((p) => p.kind === 'human').length === 1;
    if (!vsAi || this.ended) { location.hash = ''; return; }
    $('leave-dialog').hidden = false;
    $('leave-surrender').onclick = () => {
      $('leave-dialog').hidden = true;
      this.surrendered = true;
      if (this.command({ kind: 'surrender' }) === null) notice('Not connected: try again in a moment');
    };
    $('leave-cancel').onclick = () => { $('leave-dialog').hidden = true; };
  }

  stop() {
    this.running = false;
    this.conn.close();
    if (this.onResize) window.removeEventListener('resize', this.onResize);
    if (this.input) this.input.destroy();
    if (this.hud) this.hud.destroy();
  }
}

function route() {
  const m = location.hash.match(/^#\/(play|watch)\/([A-Za-z0-9_-]+)(?:\?delay=(\d+))?$/);
  if (game) { game.stop(); game = null; }
  $('endscreen').hidden = true;
  $('leave-dialog').hidden = true;
  if (!m) { showLobby(); return; }
  const [, mode, match, delay] = m;
  let target;
  if (mode === 'play') {
    const grant = loadGrant(match);
    if (!grant) { location.hash = ''; showError('No player token for that match: join it from the lobby.'); return; }
    target = { token: grant.token, match };
  } else {
    target = { match, delay_s: delay ? Number(delay) : 0 };
  }
  $('lobby').hidden = true;
  $('game').hidden = false;
  game = new Game(target);
}

$('leave').onclick = () => { if (game) game.leave(); else location.hash = ''; };
$('end-lobby').onclick = () => { location.hash = ''; };
$('end-stay').onclick = () => { $('endscreen').hidden = true; };
window.addEventListener('hashchange', route);
route();

// State for browser tests (read-only by convention).
window.__game = {
  get ready() { return !!(game && game.state); },
  get state() { return game?.state ?? null; },
  get tick() { return game?.state?.tick ?? null; },
  get player() { return game?.state?.me ?? null; },
  get role() { return game?.state?.role ?? null; },
  get selection() { return game?.state ? [...game.state.selection] : []; },
  get ledger() { return game?.state?.ledger ?? null; },
  get winner() { return game?.state?.winner; },
  get rejections() { return game ? game.rejections.slice() : []; },
  // Alerts raised so far ({kind, text, at, x, y}) and the pings still on the minimap.
  get alerts() { return game?.hud ? game.hud.alerts.log.slice() : []; },
  get pings() { return game?.hud ? game.hud.alerts.pings.slice() : []; },
  // The renderer's combat effects: live ones ({type, warhead}), lasting marks, and how many
  // of each type were drawn so far.
  effects() { return game?.renderer ? game.renderer.effects.snapshot(performance.now()) : null; },
  get acks() { return game ? game.acks : 0; },
  get fps() { return game ? game.fps : 0; },
  // Milliseconds each frame spent in the renderer's draw, oldest first; taking them
  // empties the buffer (the frame-time benchmark reads them).
  takeDrawTimes() { return game ? game.drawSamples.splice(0) : []; },
  // Units whose drawn centre lies inside the game view.
  unitsOnScreen() {
    const s = game?.state; if (!s) return 0;
    const cam = game.camera, now = performance.now();
    let n = 0;
    for (const e of s.entities.values()) {
      if (e.building) continue;
      const p = s.drawPos(e, now);
      const c = cam.toScreen(s, p.x, p.y);
      if (c.x >= 0 && c.y >= 0 && c.x <= cam.vw && c.y <= cam.vh) n++;
    }
    return n;
  },
  get reconnects() { return game ? game.conn.reconnects : 0; },
  get replay() { return game?.replayState ?? null; },
  // The newest `players_stats` (spectators) and the `score` shown, as received.
  get playersStats() { return game?.playersPanel?.last ?? null; },
  get score() { return game?.scoreScreen?.score ?? null; },
  // The map cell at the centre of the game view.
  cameraCell() {
    const s = game?.state; if (!s) return null;
    const cam = game.camera;
    return { x: (cam.x + cam.vw / 2) / cam.cellPx, y: (cam.y + cam.vh / 2) / cam.cellPx };
  },
  entities() { return game?.state ? [...game.state.entities.values()].map((e) => ({ ...e })) : []; },
  ghosts() { return game?.state ? [...game.state.ghosts.values()].map((e) => ({ ...e })) : []; },
  // Page coordinates of an entity's drawn centre (or of a cell's centre).
  screenOf(id) {
    const s = game?.state; if (!s) return null;
    const e = s.entities.get(id); if (!e) return null;
    const r = document.getElementById('view').getBoundingClientRect();
    const p = e.building ? { x: e.x, y: e.y } : s.drawPos(e, performance.now());
    const sp = game.camera.toScreen(s, p.x, p.y);
    return { x: r.left + sp.x, y: r.top + sp.y };
  },
  screenOfCell(cx, cy) {
    const s = game?.state; if (!s) return null;
    const r = document.getElementById('view').getBoundingClientRect();
    const sp = game.camera.toScreen(s, (cx + 0.5) * s.cell, (cy + 0.5) * s.cell);
    return { x: r.left + sp.x, y: r.top + sp.y };
  },
  centerOnCell(cx, cy) { if (game?.state) game.camera.centerOnCell(game.state, cx, cy); },
  canPlace(kind, x, y) { return game?.state ? game.state.canPlace(kind, x, y) : false; },
  findPlacement(kind) { return game?.state ? game.state.findPlacement(kind) : null; },
  get placing() { return game?.input?.ui.placing ?? null; },
  dropConnection() { game?.conn.dropForTest(); },
};
