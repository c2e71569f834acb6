// battle.test.js: start a battle from the lobby and watch it as a spectator: both armies
// stream in and their units are drawn in their owners' colours.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, shot, until } from './helpers.js';

const COLORS = { 0: [0xe0, 0x48, 0x48], 1: [0x48, 0x80, 0xe0] };

test('watch a battle as a spectator', { timeout: 120000 }, async () => {
  const { browser, page, errors } = await launch();
  try {
    await page.goto(BASE);
    await page.selectOption('#map-size', '48');
    await page.fill('#battle-units', '40');
    await page.click('#watch-battle');
    await until(page, () => window.__game && window.__game.ready && window.__game.tick !== null, null, { what: 'the first frame' });
    assert.equal(await page.evaluate(() => window.__game.role), 'spectator');
    const perOwner = await until(page, () => {
      const n = [0, 0];
      for (const e of window.__game.entities()) if (!e.building && e.owner < 2) n[e.owner]++;
      return n[0] >= 30 && n[1] >= 30 ? n : null;
    }, null, { what: 'both armies' });
    assert.ok(perOwner[0] <= 42 && perOwner[1] <= 42, `40 units per side plus the start units: ${perOwner}`);
    // Zoom out with the wheel so most of the map is in view, let a few frames draw.
    const box = await page.locator('#view').boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    for (let i = 0; i < 8; i++) await page.mouse.wheel(0, 120);
    await page.evaluate(() => window.__game.centerOnCell(24, 24));
    await page.waitForTimeout(300);
    // Every unit on screen has its owner's colour drawn within a few pixels of its centre.
    const check = await page.evaluate((colors) => {
      const canvas = document.getElementById('view');
      const rect = canvas.getBoundingClientRect();
      const ctx = canvas.getContext('2d');
      const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
      const dpr = canvas.width / rect.width;
      let onScreen = 0, drawn = 0;
      for (const e of window.__game.entities()) {
        if (e.building || !(e.owner in colors)) continue;
        const p = window.__game.screenOf(e.id);
        const cx = Math.round((p.x - rect.left) * dpr), cy = Math.round((p.y - rect.top) * dpr);
        if (cx < 4 || cy < 4 || cx >= canvas.width - 4 || cy >= canvas.height - 4) continue;
        onScreen++;
        const [r, g, b] = colors[e.owner];
        let found = false;
        for (let dy = -4; dy <= 4 && !found; dy++) {
          for (let dx = -4; dx <= 4 && !found; dx++) {
            const i = ((cy + dy) * canvas.width + (cx + dx)) * 4;
            found = img.data[i] === r && img.data[i + 1] === g && img.data[i + 2] === b;
          }
        }
        if (found) drawn++;
      }
      return { onScreen, drawn };
    }, COLORS);
    assert.ok(check.onScreen >= 40, `units on screen: ${JSON.stringify(check)}`);
    assert.ok(check.drawn >= check.onScreen * 0.9, `units drawn in their colour: ${JSON.stringify(check)}`);
    await shot(page, 'battle');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
