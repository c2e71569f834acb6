// replay.test.js: the replay viewer on a finished match: a short game against the AI is
// played over the WebSocket protocol (moves, then the player sells its construction yard
// and loses), then the match is opened from the lobby's recorded list: frames play,
// pause and resume, the speed changes, and a seek shows the tick asked for.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, shot, until } from './helpers.js';

// Plays player 0 of a new vs-AI match from the page (same origin as the gateway) and
// resolves once the match is over: { match, lastTick, acks }.
async function playAndResign(page) {
  return page.evaluate(async () => {
    const res = await fetch('/api/matches', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'vs_ai', difficulty: 'easy', map_size: 32, seed: 5, name: 'replayer' }),
    });
    if (!res.ok) throw new Error(`create: ${res.status}`);
    const created = await res.json();
    const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/ws`);
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the match did not end')), 60000);
      let seq = 0, acks = 0, tick = 0, yard = null, moves = 0, lastMove = 0, sold = false;
      const units = new Set();
      const send = (o) => ws.send(JSON.stringify(o));
      ws.onerror = () => reject(new Error('websocket error'));
      ws.onopen = () => send({ t: 'hello', protocol: 2 });
      ws.onmessage = (ev) => {
        const m = JSON.parse(ev.data);
        if (m.t === 'ping') { send({ t: 'pong', id: m.id }); return; }
        if (m.t === 'hello_ok') { send({ t: 'join', token: created.grant.token, last_tick: null }); return; }
        if (m.t === 'ack') acks += 1;
        if (m.t === 'rejected') { clearTimeout(timer); reject(new Error(`rejected: ${m.code} ${m.message}`)); return; }
        if (m.t === 'game_over' || m.game_over) {
          clearTimeout(timer);
          ws.close();
          resolve({ match: created.match, lastTick: tick, acks });
          return;
        }
        if (m.t !== 'keyframe' && m.t !== 'delta') return;
        tick = m.tick;
        for (const e of m.entities) {
          if (e.owner !== 0) continue;
          if (e.kind === 'construction_yard') yard = e.id;
          else if (!e.building) units.add(e.id);
        }
        if (!units.size || sold) return;
        if (moves < 3 && tick >= lastMove + 30) {
          moves += 1;
          lastMove = tick;
          send({ t: 'cmd', seq: ++seq, cmd: { kind: 'move', units: [...units], to: [6 + 4 * moves, 20 - 3 * moves] } });
        } else if (moves === 3 && tick >= lastMove + 60 && yard !== null) {
          sold = true;
          send({ t: 'cmd', seq: ++seq, cmd: { kind: 'sell', building: yard } });
        }
      };
    });
  });
}

test('replay viewer: open a finished match, play, pause, speed, seek', { timeout: 120000 }, async () => {
  const { browser, page, errors } = await launch();
  try {
    await page.goto(BASE);
    const played = await playAndResign(page);
    assert.ok(played.acks >= 4, `the moves and the sell were acknowledged (${played.acks})`);

    // The lobby lists it as recorded; "View" opens the replay.
    const short = played.match.slice(-8);
    await page.click('#refresh');
    await until(page, (s) => [...document.querySelectorAll('#recorded-list li')].some((li) => li.textContent.includes(s)),
      short, { what: 'the match in the recorded list' });
    await page.locator('#recorded-list li', { hasText: short }).locator('button').click();
    await until(page, () => window.__game && window.__game.ready && window.__game.replay, null, { what: 'the replay to open' });
    assert.equal(await page.evaluate(() => window.__game.role), 'spectator');
    assert.equal(await page.isVisible('#replaybar'), true, 'replay controls are shown');
    const lastTick = await page.evaluate(() => window.__game.replay.last_tick);
    assert.ok(lastTick >= played.lastTick, `the replay runs to the end (${lastTick} >= ${played.lastTick})`);

    // Frames play.
    const t0 = await until(page, () => window.__game.tick, null, { what: 'a first frame' });
    await until(page, (t) => window.__game.tick >= t + 10, t0, { what: 'frames to play' });
    assert.ok((await page.evaluate(() => window.__game.entities().length)) > 0);

    // Pause: the tick stops; resume: it moves on.
    await page.click('#rp-play');
    await until(page, () => window.__game.replay.playing === false, null, { what: 'paused' });
    assert.equal(await page.textContent('#rp-play'), 'Play');
    const paused = await page.evaluate(() => window.__game.tick);
    await page.waitForTimeout(600);
    assert.equal(await page.evaluate(() => window.__game.tick), paused, 'no frames while paused');
    await page.click('#rp-play');
    await until(page, () => window.__game.replay.playing === true, null, { what: 'playing again' });
    await until(page, (t) => window.__game.tick > t, paused, { what: 'frames after resuming' });

    // Speed.
    await page.selectOption('#rp-speed', '4');
    await until(page, () => window.__game.replay.speed === 4, null, { what: 'speed 4x' });
    const fast = await page.evaluate(() => window.__game.tick);
    await until(page, (t) => window.__game.tick >= t + 20, fast, { what: 'frames at 4x' });

    // Seek (paused, so the tick shown stays the one asked for).
    await page.click('#rp-play');
    await until(page, () => window.__game.replay.playing === false, null, { what: 'paused for the seek' });
    const target = Math.floor(lastTick / 3);
    await page.evaluate((t) => {
      const s = document.getElementById('rp-seek');
      s.value = String(t);
      s.dispatchEvent(new Event('input'));
      s.dispatchEvent(new Event('change'));
    }, target);
    await until(page, (t) => window.__game.tick === t, target, { what: `the keyframe of tick ${target}` });
    await until(page, (t) => window.__game.replay.tick === t, target, { what: 'replay_state at the seek' });
    const hz = await page.evaluate(() => window.__game.state.rules.tick_hz || 20);
    const fmt = (t) => `${Math.floor(t / hz / 60)}:${String(Math.floor(t / hz) % 60).padStart(2, '0')}`;
    await until(page, (want) => document.getElementById('rp-pos').textContent === want,
      `${fmt(target)} / ${fmt(lastTick)}`, { what: 'the position label' });
    assert.equal(await page.inputValue('#rp-seek'), String(target));
    assert.ok((await page.evaluate(() => window.__game.entities().length)) > 0, 'the keyframe shows the match');
    await shot(page, 'replay');

    // Seek back to the start and play on from there.
    await page.evaluate(() => {
      const s = document.getElementById('rp-seek');
      s.value = '0';
      s.dispatchEvent(new Event('change'));
    });
    await until(page, () => window.__game.tick === 0, null, { what: 'the keyframe of tick 0' });
    await page.click('#rp-play');
    await until(page, () => window.__game.tick > 0, null, { what: 'playing from the start' });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
