// effects.test.js: combat you can see. A fixed battle (seed 5, 32×32, 24 units a side) is
// watched zoomed out to the whole map; once the armies meet, the renderer's effect list
// holds shots and explosions and it has drawn projectiles, impacts and wrecks or bodies.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, shot, until } from './helpers.js';

const PROJECTILES = ['tracer', 'shell', 'rocket', 'laser'];

test('shots, impacts and deaths are drawn during a battle', { timeout: 150000 }, async () => {
  const { browser, page, errors } = await launch();
  try {
    await page.goto(BASE);
    await page.selectOption('#map-size', '32');
    await page.fill('#seed', '5');
    await page.fill('#battle-units', '24');
    await page.click('#watch-battle');
    await until(page, () => window.__game && window.__game.ready && window.__game.tick !== null, null, { what: 'the first frame' });
    // The whole map in view: zoom out with the wheel, centre on the middle.
    const box = await page.locator('#view').boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    for (let i = 0; i < 8; i++) await page.mouse.wheel(0, 120);
    await page.evaluate(() => window.__game.centerOnCell(16, 16));
    // The armies meet: shots and impacts are on the effect list and drawn.
    const fx = await until(page, (kinds) => {
      const e = window.__game.effects();
      if (!e) return null;
      const shots = kinds.filter((k) => e.drawn[k] > 0);
      const hits = (e.drawn.impact || 0) + (e.drawn.explosion || 0);
      const live = e.active.filter((a) => kinds.includes(a.type) || a.type === 'impact' || a.type === 'explosion' || a.type === 'flash');
      return shots.length && hits > 0 && live.length ? { e, shots, live } : null;
    }, PROJECTILES, { what: 'shots and impacts drawn', timeout: 90000 });
    assert.ok(fx.shots.length >= 1, JSON.stringify(fx.e.drawn));
    assert.ok(fx.e.drawn.flash > 0, 'muzzle flashes drawn');
    assert.ok(fx.live.every((a) => a.type === 'flash' || a.type === 'explosion' || a.warhead), 'shots carry their warhead');
    // Units die: an explosion or a body is drawn and a wreck or corpse stays on the ground.
    const dead = await until(page, () => {
      const e = window.__game.effects();
      return (e.drawn.explosion > 0 || e.drawn.death > 0) && e.decals.length > 0 ? e : null;
    }, null, { what: 'a death drawn', timeout: 60000 });
    assert.ok(dead.decals.every((d) => ['wreck', 'corpse', 'rubble'].includes(d)), JSON.stringify(dead.decals));
    await shot(page, 'effects');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
