// leave.test.js: Leave in a game against the AI asks first; "Keep playing" goes back to the
// game, "Surrender and leave" ends it with a defeat on screen and the match is recorded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, shot, until } from './helpers.js';

test('Leave against the AI asks, surrenders and shows the result', { timeout: 120000 }, async () => {
  const { browser, page, errors } = await launch();
  try {
    await page.goto(BASE);
    await page.selectOption('#map-size', '32');
    await page.selectOption('#difficulty', 'easy');
    await page.click('#start-vs-ai');
    await until(page, () => window.__game && window.__game.ready && window.__game.tick !== null, null, { what: 'the first frame' });
    const match = await page.evaluate(() => window.__game.state.welcome.match);

    // Asked first; keeping on playing changes nothing.
    await page.click('#leave');
    assert.ok(await page.isVisible('#leave-dialog'), 'Leave asks before surrendering');
    await shot(page, 'leave-asks');
    await page.click('#leave-cancel');
    assert.ok(!(await page.isVisible('#leave-dialog')));
    const t = await page.evaluate(() => window.__game.tick);
    await until(page, (t0) => window.__game.tick > t0 + 5, t, { what: 'the game to go on' });
    assert.equal(await page.evaluate(() => window.__game.winner), undefined);

    // Leave again and surrender: the AI wins, the end screen says so.
    await page.click('#leave');
    await page.click('#leave-surrender');
    await until(page, () => window.__game.winner === 1, null, { what: 'the AI to win', timeout: 20000 });
    await page.waitForSelector('#endscreen:not([hidden])');
    assert.equal(await page.textContent('#end-title'), 'Defeat');
    assert.equal(await page.textContent('#end-text'), 'You surrendered.');
    await shot(page, 'surrendered');

    // Back in the lobby the match is listed as recorded, with the AI as winner.
    await page.click('#end-lobby');
    await page.waitForSelector('#lobby:not([hidden])');
    const listed = async () => {
      await page.click('#refresh');
      return page.evaluate((id) => [...document.querySelectorAll('#recorded-list li')]
        .map((li) => li.textContent).find((t) => t.includes(id.slice(-8))), match);
    };
    let row = null;
    for (let i = 0; i < 40 && !row; i++) {
      row = await listed();
      if (!row) await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(row, 'the surrendered match is recorded');
    assert.match(row, /winner: AI/);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
