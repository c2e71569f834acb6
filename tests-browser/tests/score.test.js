// score.test.js: spectating and replays: the camera starts on a base, spectators get a
// per-player panel with numbers, the end-of-game overlay never covers the replay bar, and
// the score screen appears at game over (for the player) and at the end of a replay.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, shot, until } from './helpers.js';

// Whether the construction yard of `owner` is drawn inside the game view.
function yardOnScreen(owner) {
  const yard = window.__game.entities().find((e) => e.owner === owner && e.kind === 'construction_yard');
  if (!yard) return null;
  const p = window.__game.screenOf(yard.id);
  const r = document.getElementById('view').getBoundingClientRect();
  return p.x >= r.left && p.x <= r.right && p.y >= r.top && p.y <= r.bottom ? { yard: yard.id } : false;
}

// The score table's figures as shown: [{name, units_built, …, apm}] by row.
function scoreShown() {
  const el = document.getElementById('end-score');
  if (!el || el.hidden) return null;
  return [...el.querySelectorAll('tr[data-player]')].map((tr) => {
    const row = { player: Number(tr.dataset.player) };
    for (const td of tr.querySelectorAll('td[class]')) row[td.className] = Number(td.textContent.replace(/,/g, ''));
    return row;
  });
}

const FIGURES = ['units_built', 'units_lost', 'kills', 'buildings_built', 'buildings_lost', 'harvested', 'apm'];

function sameFigures(shown, score) {
  assert.equal(shown.length, score.players.length);
  for (const [i, p] of score.players.entries()) {
    assert.equal(shown[i].player, p.player);
    for (const k of FIGURES) assert.equal(shown[i][k], k === 'apm' ? Number(p.apm.toFixed(1)) : p[k], `${k} of player ${p.player}`);
  }
}

test('play, surrender, see the score; watch the replay to its end', { timeout: 180000 }, async () => {
  const { browser, page, errors } = await launch();
  try {
    // A player's camera starts on its own yard; a player gets no standings panel.
    await page.goto(BASE);
    await page.selectOption('#map-size', '64');
    await page.selectOption('#difficulty', 'easy');
    await page.fill('#seed', '11');
    await page.click('#start-vs-ai');
    await until(page, () => window.__game && window.__game.ready && window.__game.tick !== null, null, { what: 'the first frame' });
    const match = await page.evaluate(() => window.__game.state.welcome.match);
    assert.ok(await until(page, yardOnScreen, 0, { what: 'the own yard on screen' }));
    assert.equal(await page.isVisible('#players-panel'), false, 'players see no standings');
    const t0 = await page.evaluate(() => window.__game.tick);
    await until(page, (t) => window.__game.tick >= t + 60, t0, { what: 'the match to run a few seconds' });
    assert.equal(await page.evaluate(() => window.__game.playersStats), null, 'no standings sent to a player');

    // Leave → surrender: the end screen shows the score.
    await page.click('#leave');
    await page.click('#leave-surrender');
    const score = await until(page, () => window.__game.score, null, { what: 'the score', timeout: 30000 });
    assert.equal(score.match, match);
    assert.equal(score.players.length, 2);
    assert.ok(score.players[0].actions >= 1, 'the surrender is an action');
    assert.equal(await page.isVisible('#endscreen'), true);
    sameFigures(await until(page, scoreShown, null, { what: 'the score table' }), score);
    await shot(page, 'score-player');

    // The replay of that match (once the lobby lists it as ended): camera on player 0's
    // base, the panel fills in.
    await until(page, (m) => fetch(`/api/matches/${m}`).then((r) => r.json()).then((x) => x.status === 'ended'),
      match, { what: 'the match to be recorded as ended' });
    await page.evaluate((m) => { location.hash = `#/watch/${m}`; }, match);
    await until(page, () => window.__game && window.__game.ready && window.__game.replay, null, { what: 'the replay to open' });
    assert.ok(await until(page, yardOnScreen, 0, { what: "player 0's yard on screen" }));
    const stats = await until(page, () => {
      const s = window.__game.playersStats;
      return s && s.players.length === 2 && document.querySelectorAll('#players-panel tr[data-player]').length === 2 ? s : null;
    }, null, { what: 'the standings panel' });
    assert.equal(await page.isVisible('#players-panel'), true);
    const credits = await page.textContent('#players-panel tr[data-player="0"] td.credits');
    assert.equal(credits, `$${stats.players[0].credits.toLocaleString('en-US')}`);
    for (const p of stats.players) {
      for (const k of ['credits', 'power_output', 'power_consumption', 'army_value', 'units_lost', 'kills', 'harvested']) {
        assert.equal(typeof p[k], 'number', `${k} of player ${p.player}`);
      }
      assert.ok(p.army_value > 0, 'the start units count');
    }

    // Fast to the end: the score screen, above the replay bar.
    await page.selectOption('#rp-speed', '16');
    const end = await until(page, () => window.__game.score, null, { what: 'the score at the end of the replay', timeout: 60000 });
    assert.deepEqual(end, score, 'the replay scores the match as the live game did');
    await until(page, () => !document.getElementById('endscreen').hidden, null, { what: 'the end screen' });
    sameFigures(await until(page, scoreShown, null, { what: 'the replay score table' }), end);
    const boxes = await page.evaluate(() => {
      const r = (id) => { const b = document.getElementById(id).getBoundingClientRect(); return { l: b.left, t: b.top, r: b.right, b: b.bottom }; };
      const bar = document.getElementById('replaybar').getBoundingClientRect();
      const hit = document.elementFromPoint(bar.left + bar.width / 2, bar.top + bar.height / 2);
      return { end: r('endscreen'), bar: r('replaybar'), barOnTop: !!hit && !!hit.closest('#replaybar') };
    });
    const overlap = boxes.end.l < boxes.bar.r && boxes.bar.l < boxes.end.r && boxes.end.t < boxes.bar.b && boxes.bar.t < boxes.end.b;
    assert.equal(overlap, false, `the end screen ${JSON.stringify(boxes.end)} covers the replay bar ${JSON.stringify(boxes.bar)}`);
    assert.equal(boxes.barOnTop, true, 'the replay bar takes clicks');
    assert.equal(await page.isVisible('#replaybar'), true);
    await shot(page, 'score-replay');

    // The bar still works: seeking back hides the score and plays on.
    await page.evaluate(() => {
      const s = document.getElementById('rp-seek');
      s.value = '0';
      s.dispatchEvent(new Event('change'));
    });
    await until(page, () => window.__game.tick === 0 && document.getElementById('endscreen').hidden, null, { what: 'the seek back' });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('a spectator of a live match sees every player\'s standing', { timeout: 90000 }, async () => {
  const { browser, page, errors } = await launch();
  try {
    await page.goto(BASE);
    const id = await page.evaluate(() => fetch('/api/matches', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'ai_vs_ai', map_size: 64, seed: 12 }),
    }).then((r) => r.json()).then((c) => c.match));
    await page.evaluate((m) => { location.hash = `#/watch/${m}`; }, id);
    await until(page, () => window.__game && window.__game.ready && window.__game.tick !== null, null, { what: 'the first frame' });
    assert.equal(await page.evaluate(() => window.__game.role), 'spectator');
    assert.ok(await until(page, yardOnScreen, 0, { what: "player 0's yard on screen" }));
    // The AIs spend: the standings move (credits change from the start).
    const moved = await until(page, () => {
      const s = window.__game.playersStats;
      return s && s.players.every((p) => p.credits !== 5000) ? s : null;
    }, null, { what: 'the AIs to spend', timeout: 60000 });
    assert.equal(moved.players.length, 2);
    const rows = await page.locator('#players-panel tr[data-player]').count();
    assert.equal(rows, 2);
    assert.equal(await page.isVisible('#players-panel'), true);
    await shot(page, 'spectator-panel');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
