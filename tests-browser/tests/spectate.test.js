// spectate.test.js: watch an AI-vs-AI match as a spectator: the view streams in, both
// sides are visible, and commands are not offered.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, shot, until } from './helpers.js';

test('watch AI vs AI as a spectator', { timeout: 120000 }, async () => {
  const { browser, page, errors } = await launch();
  try {
    await page.goto(BASE);
    await page.selectOption('#map-size', '48');
    await page.click('#watch-ai');
    await until(page, () => window.__game && window.__game.ready && window.__game.tick !== null, null, { what: 'the first frame' });
    assert.equal(await page.evaluate(() => window.__game.role), 'spectator');
    assert.equal(await page.evaluate(() => window.__game.player), null);
    const t0 = await page.evaluate(() => window.__game.tick);
    await until(page, (t) => window.__game.tick > t + 40, t0, { what: 'the match to advance' });
    const owners = await until(page, () => {
      const o = new Set(window.__game.entities().map((e) => e.owner));
      return o.size >= 2 ? [...o] : null;
    }, null, { what: 'entities of both players' });
    assert.ok(owners.length >= 2);
    assert.equal(await page.locator('button.item').count(), 0, 'spectators get no build buttons');
    // The AIs build: wait for a building beyond the two construction yards.
    await until(page, () => window.__game.entities().filter((e) => e.building).length >= 3, null,
      { what: 'an AI to build', timeout: 60000 });
    await shot(page, 'spectator');
    const lobby = await page.evaluate(() => fetch('/api/matches').then((r) => r.json()));
    assert.ok(lobby.live.length >= 1);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('watch a live match with a spectator delay', { timeout: 60000 }, async () => {
  const { browser, page, errors } = await launch();
  try {
    await page.goto(BASE);
    const id = await page.evaluate(() => fetch('/api/matches', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'ai_vs_ai', map_size: 32 }),
    }).then((r) => r.json()).then((c) => c.match));
    await page.fill('#join-id', id);
    await page.fill('#spectate-delay', '2');
    const t0 = Date.now();
    await page.click('#spectate-btn');
    assert.match(await page.evaluate(() => location.hash), /\?delay=2$/);
    await until(page, () => window.__game && window.__game.tick !== null, null,
      { what: 'the first delayed frame', timeout: 20000 });
    // The gateway holds every message at least the delay (a lower bound, not a timing race).
    assert.ok(Date.now() - t0 >= 2000, `first frame after ${Date.now() - t0} ms`);
    const t1 = await page.evaluate(() => window.__game.tick);
    await until(page, (t) => window.__game.tick > t + 20, t1, { what: 'the delayed view to advance' });
    assert.equal(await page.evaluate(() => window.__game.role), 'spectator');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
