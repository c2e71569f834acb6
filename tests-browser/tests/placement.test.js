// placement.test.js: an illegal placement (a Power Plant dropped on the own Construction
// Yard) is refused by the server, and the reason shows on screen; the building stays ready.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, shot, until } from './helpers.js';

test('an illegal placement shows the server\'s reason on screen', { timeout: 180000 }, async () => {
  const { browser, page, errors } = await launch();
  try {
    await page.goto(BASE);
    await page.selectOption('#map-size', '32');
    await page.selectOption('#difficulty', 'easy');
    await page.click('#start-vs-ai');
    await until(page, () => window.__game && window.__game.ready && window.__game.tick !== null, null, { what: 'the first frame' });
    await until(page, () => window.__game.ledger && window.__game.ledger.credits > 0, null, { what: 'the ledger' });
    await page.click('button.item[data-item="power_plant"]');
    await until(page, () => window.__game.ledger?.buildings?.state === 'ready', null, { what: 'the power plant to be ready', timeout: 60000 });
    await page.click('button.item[data-item="power_plant"]');
    assert.equal(await page.evaluate(() => window.__game.placing), 'power_plant');

    // Hover the own Construction Yard and click: the client sends it, the server refuses.
    const yard = await page.evaluate(() => {
      const g = window.__game;
      return g.entities().find((e) => e.owner === g.player && e.kind === 'construction_yard');
    });
    assert.ok(yard, 'the own construction yard');
    const at = await page.evaluate((id) => window.__game.screenOf(id), yard.id);
    await page.mouse.move(at.x, at.y, { steps: 3 });
    await page.mouse.click(at.x, at.y);
    const rejection = await until(page, () => window.__game.rejections.find((r) => r.code === 'bad_placement'), null, { what: 'the placement rejection', timeout: 20000 });
    assert.equal(typeof rejection.seq, 'number', 'matched to the place command');
    assert.match(rejection.message, /a building is in the way/);
    const shown = await until(page, () => [...document.querySelectorAll('#notices div')].map((d) => d.textContent).find((t) => /in the way/.test(t)), null, { what: 'the reason on screen' });
    assert.equal(shown, 'Cannot place there: a building is in the way');
    assert.ok(await page.isVisible('#notices div.placement'));
    await shot(page, 'placement-refused');
    // The building is still ready for another try.
    assert.equal(await page.evaluate(() => window.__game.ledger?.buildings?.state), 'ready');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
