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
