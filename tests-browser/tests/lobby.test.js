// lobby.test.js: the lobby page loads, shows its forms and lists, and the API answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, shot } from './helpers.js';

test('the lobby loads with new-game, join and match lists', async () => {
  const { browser, page, errors } = await launch();
  try {
    await page.goto(BASE);
    await page.waitForSelector('#start-vs-ai');
    assert.equal(await page.title(), 'Command and Independent Thought');
    assert.ok(await page.isVisible('#difficulty'));
    assert.ok(await page.isVisible('#map-size'));
    assert.ok(await page.isVisible('#watch-ai'));
    assert.ok(await page.isVisible('#live-list'));
    assert.ok(await page.isVisible('#recorded-list'));
    await shot(page, 'lobby');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
