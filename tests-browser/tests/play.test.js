// play.test.js: a person's first minute against the AI: start a game, box-select the
// starting units, right-click to move them, then queue and place a Power Plant.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, launch, shot, until } from './helpers.js';

test('play vs AI: box-select, move, build and place a Power Plant', { timeout: 180000 }, async () => {
  const { browser, page, errors } = await launch();
  try {
    await page.goto(BASE);
    await page.selectOption('#map-size', '48');
    await page.selectOption('#difficulty', 'easy');
    await page.click('#start-vs-ai');
    await until(page, () => window.__game && window.__game.ready && window.__game.tick !== null, null, { what: 'the first frame' });
    const me = await page.evaluate(() => window.__game.player);
    assert.equal(me, 0);
    const units = await until(page, () => {
      const g = window.__game;
      const mine = g.entities().filter((e) => e.owner === g.player && !e.building);
      return mine.length >= 2 ? mine : null;
    }, null, { what: 'own starting units' });
    await shot(page, 'game-start');

    // Box-select every starting unit.
    const pts = await page.evaluate((ids) => ids.map((id) => window.__game.screenOf(id)), units.map((u) => u.id));
    const xs = pts.map((p) => p.x), ys = pts.map((p) => p.y);
    const pad = 30;
    await page.mouse.move(Math.min(...xs) - pad, Math.min(...ys) - pad);
    await page.mouse.down();
    await page.mouse.move((Math.min(...xs) + Math.max(...xs)) / 2, (Math.min(...ys) + Math.max(...ys)) / 2, { steps: 4 });
    await page.mouse.move(Math.max(...xs) + pad, Math.max(...ys) + pad, { steps: 4 });
    await page.mouse.up();
    const selected = await page.evaluate(() => window.__game.selection);
    assert.deepEqual([...selected].sort(), units.map((u) => u.id).sort(), 'box selection holds the starting units');

    // Control groups, click, shift-add, ctrl-toggle and double-click select.
    const ids = units.map((u) => u.id).sort();
    const sel = async () => (await page.evaluate(() => window.__game.selection)).sort();
    await page.keyboard.down('Control');
    await page.keyboard.press('Digit1');
    await page.keyboard.up('Control');
    const p0 = await page.evaluate((id) => window.__game.screenOf(id), ids[0]);
    const p1 = await page.evaluate((id) => window.__game.screenOf(id), ids[1]);
    await page.mouse.click(p0.x, p0.y);
    assert.deepEqual(await sel(), [ids[0]], 'click selects one unit');
    await page.keyboard.down('Shift');
    await page.mouse.click(p1.x, p1.y);
    await page.keyboard.up('Shift');
    assert.deepEqual(await sel(), [ids[0], ids[1]].sort(), 'shift-click adds');
    await page.keyboard.down('Control');
    await page.mouse.click(p0.x, p0.y);
    await page.keyboard.up('Control');
    assert.deepEqual(await sel(), [ids[1]], 'ctrl-click toggles');
    await page.keyboard.press('Digit1');
    assert.deepEqual(await sel(), ids, 'group 1 recalled');
    await page.mouse.click(p0.x, p0.y);
    await page.mouse.dblclick(p0.x, p0.y);
    const same = (await page.evaluate(() => window.__game.entities()))
      .filter((e) => e.owner === 0 && !e.building && e.kind === units[0].kind).length;
    assert.equal((await sel()).length, same, 'double-click selects every visible unit of that type');

    // Right-click a clear, explored cell a few cells away: the units move there.
    const target = await page.evaluate((ids) => {
      const s = window.__game.state;
      const u = s.entities.get(ids[0]);
      const ux = Math.floor(u.x / s.cell), uy = Math.floor(u.y / s.cell);
      for (let r = 3; r < 8; r++) {
        for (const [dx, dy] of [[r, 0], [-r, 0], [0, r], [0, -r], [r, r], [-r, -r], [r, -r], [-r, r]]) {
          const x = ux + dx, y = uy + dy;
          if (x < 0 || y < 0 || x >= s.w || y >= s.h) continue;
          const i = y * s.w + x;
          if (s.terrain[i] === 0 && !s.tiberium.has(i) && s.visible[i] && !s.entityAtCell(x, y)) return { x, y };
        }
      }
      return null;
    }, units.map((u) => u.id));
    assert.ok(target, 'a clear cell near the units');
    const at = await page.evaluate(({ x, y }) => window.__game.screenOfCell(x, y), target);
    await page.mouse.click(at.x, at.y, { button: 'right' });
    const start = Object.fromEntries(units.map((u) => [u.id, [u.x, u.y]]));
    await until(page, (startPos) => {
      const g = window.__game;
      return Object.entries(startPos).every(([id, [x, y]]) => {
        const e = g.state.entities.get(Number(id));
        return e && (e.x !== x || e.y !== y);
      });
    }, start, { what: 'every selected unit to move', timeout: 20000 });
    const dist = await until(page, ({ target, ids }) => {
      const s = window.__game.state;
      const d = ids.map((id) => {
        const e = s.entities.get(id);
        return Math.hypot(e.x / s.cell - (target.x + 0.5), e.y / s.cell - (target.y + 0.5));
      });
      return Math.max(...d) < 2.5 ? d : null;
    }, { target, ids: units.map((u) => u.id) }, { what: 'the units to arrive', timeout: 30000 });
    assert.ok(dist.length === units.length);
    await shot(page, 'units-moved');

    // Queue a Power Plant, wait until it is ready, then place it.
    await until(page, () => window.__game.ledger && window.__game.ledger.credits > 0, null, { what: 'the ledger' });
    await page.click('button.item[data-item="power_plant"]');
    await until(page, () => window.__game.ledger?.buildings?.item === 'power_plant', null, { what: 'the power plant to be queued' });
    await shot(page, 'power-plant-building');
    await until(page, () => window.__game.ledger?.buildings?.state === 'ready', null, { what: 'the power plant to be ready', timeout: 60000 });
    await page.click('button.item[data-item="power_plant"]');
    assert.equal(await page.evaluate(() => window.__game.placing), 'power_plant');
    const spot = await page.evaluate(() => window.__game.findPlacement('power_plant'));
    assert.ok(spot, 'a valid spot for the power plant');
    // The ghost is centred on the hovered cell: hover the cell that puts its corner at `spot`.
    const w = await page.evaluate(() => window.__game.state.rules.buildings.power_plant.width);
    const h = await page.evaluate(() => window.__game.state.rules.buildings.power_plant.height);
    const hover = await page.evaluate(({ x, y }) => window.__game.screenOfCell(x, y), { x: spot.x + Math.floor(w / 2), y: spot.y + Math.floor(h / 2) });
    await page.mouse.move(hover.x, hover.y, { steps: 3 });
    await shot(page, 'placement-ghost');
    await page.mouse.click(hover.x, hover.y);
    await until(page, () => {
      const g = window.__game;
      return g.entities().some((e) => e.owner === g.player && e.kind === 'power_plant');
    }, null, { what: 'the power plant on the map', timeout: 20000 });
    await until(page, () => (window.__game.ledger?.power_output ?? 0) >= 100, null, { what: 'power output' });
    await shot(page, 'power-plant-placed');

    // Drop the socket: the client reconnects by itself and resumes without a gap.
    const before = await page.evaluate(() => ({ tick: window.__game.tick, frames: window.__game.state.framesApplied }));
    await page.evaluate(() => window.__game.dropConnection());
    await until(page, () => window.__game.reconnects >= 1, null, { what: 'a reconnect' });
    await until(page, (t) => window.__game.tick > t + 40, before.tick, { what: 'ticks after the reconnect' });
    const after = await page.evaluate(() => ({ tick: window.__game.tick, frames: window.__game.state.framesApplied, gaps: window.__game.state.gaps }));
    assert.equal(after.gaps, 0, 'no tick was skipped across the reconnect');
    assert.equal(after.frames - before.frames, after.tick - before.tick, 'every tick applied exactly once');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
