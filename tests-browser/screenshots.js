// screenshots.js: takes the README's screenshots in headless Chromium: a 1v1 against the
// hard AI at 0:30 and at 5:00 (the script plays a plain build order with the sidebar and
// the mouse), and a battle watched as a spectator. Writes PNGs to docs/screenshots/.
// Needs a running gateway: GATEWAY_URL=http://127.0.0.1:PORT/ node screenshots.js (or
// screenshots.sh, which builds and starts one).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BASE = process.env.GATEWAY_URL || 'http://127.0.0.1:8080/';
const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'screenshots');
const VIEWPORT = { width: 1280, height: 800 };

async function until(page, fn, arg, timeout = 60000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const v = await page.evaluate(fn, arg);
    if (v) return v;
    await page.waitForTimeout(200);
  }
  throw new Error(`timed out: ${fn}`);
}

const seconds = (page) => page.evaluate(() => (window.__game.tick ?? 0) / (window.__game.state?.rules.tick_hz || 20));

async function newPage(browser) {
  const page = await browser.newPage({ viewport: VIEWPORT });
  page.on('pageerror', (e) => console.error('page error:', String(e)));
  return page;
}

// Builds `kind` (a building) and places it next to the base with the mouse, trying a few
// spots if the server refuses one.
async function build(page, kind) {
  const ok = await page.evaluate((k) => !!document.querySelector(`button.item[data-item="${k}"]:not([disabled])`), kind);
  if (!ok) return false;
  await page.click(`button.item[data-item="${kind}"]`);
  await until(page, () => window.__game.ledger?.buildings?.state === 'ready', null, 90000);
  const r = await page.evaluate((k) => window.__game.state.rules.buildings[k], kind);
  const tried = [];
  for (let attempt = 0; attempt < 6; attempt++) {
    const at = await page.evaluate(([k, skip]) => {
      const s = window.__game.state;
      const own = s.ownBuildings();
      const yard = own.find((b) => b.kind === 'construction_yard') || own[0];
      const f = s.footprint(yard);
      for (let rr = 1; rr < 12; rr++) {
        for (let dy = -rr; dy <= rr; dy++) for (let dx = -rr; dx <= rr; dx++) {
          if (Math.max(Math.abs(dx), Math.abs(dy)) !== rr) continue;
          const x = f.x + dx, y = f.y + dy;
          if (skip.some((p) => Math.abs(p[0] - x) < 2 && Math.abs(p[1] - y) < 2)) continue;
          if (s.canPlace(k, x, y)) return [x, y];
        }
      }
      return null;
    }, [kind, tried]);
    if (!at) return false;
    tried.push(at);
    if (!(await page.evaluate(() => window.__game.placing))) await page.click(`button.item[data-item="${kind}"]`);
    const cx = at[0] + Math.floor(r.width / 2), cy = at[1] + Math.floor(r.height / 2);
    await page.evaluate(([x, y]) => window.__game.centerOnCell(x, y), [cx, cy]);
    await page.waitForTimeout(100);
    const p = await page.evaluate(([x, y]) => window.__game.screenOfCell(x, y), [cx, cy]);
    await page.mouse.move(p.x, p.y, { steps: 3 });
    await page.mouse.click(p.x, p.y);
    try {
      await until(page, (k) => window.__game.entities().some((e) => e.kind === k && e.owner === window.__game.player && e.born > performance.now() - 6000), kind, 6000);
      return true;
    } catch { /* refused: try another spot */ }
  }
  return false;
}

async function queue(page, kind, n) {
  for (let i = 0; i < n; i++) {
    const ok = await page.evaluate((k) => !!document.querySelector(`button.item[data-item="${k}"]:not([disabled])`), kind);
    if (!ok) return;
    await page.click(`button.item[data-item="${kind}"]`);
  }
}

async function centerOnBase(page) {
  // The pointer rests over the map, not on a sidebar button (no tooltip in the picture).
  await page.mouse.move(300, 500);
  await page.evaluate(() => {
    const g = window.__game;
    const own = g.entities().filter((e) => e.owner === g.player && e.building);
    const cell = g.state.cell;
    const x = own.reduce((a, e) => a + e.x, 0) / own.length / cell, y = own.reduce((a, e) => a + e.y, 0) / own.length / cell;
    g.centerOnCell(x, y + 2);
  });
  await page.waitForTimeout(400);
}

async function vsHard(browser) {
  const page = await newPage(browser);
  await page.goto(BASE);
  await page.selectOption('#map-size', '64');
  await page.selectOption('#difficulty', 'hard');
  await page.fill('#seed', '11');
  await page.click('#start-vs-ai');
  await until(page, () => window.__game && window.__game.ready && window.__game.ledger, null);
  await build(page, 'power_plant');
  while (await seconds(page) < 30) await page.waitForTimeout(200);
  await centerOnBase(page);
  await page.screenshot({ path: join(OUT, 'vs-hard-0m30.png') });
  console.log('vs-hard-0m30.png at', (await seconds(page)).toFixed(1), 's');
  await build(page, 'refinery');
  await build(page, 'barracks');
  await queue(page, 'rifleman', 5);
  await build(page, 'power_plant');
  await build(page, 'war_factory');
  await queue(page, 'light_tank', 3);
  await build(page, 'guard_tower');
  await queue(page, 'rocket_soldier', 3);
  while (await seconds(page) < 300) {
    await page.waitForTimeout(2000);
    await queue(page, 'medium_tank', 1);
  }
  await centerOnBase(page);
  await page.screenshot({ path: join(OUT, 'vs-hard-5m00.png') });
  console.log('vs-hard-5m00.png at', (await seconds(page)).toFixed(1), 's');
  await page.close();
}

async function battle(browser) {
  const page = await newPage(browser);
  await page.goto(BASE);
  await page.selectOption('#map-size', '48');
  await page.fill('#seed', '4');
  await page.fill('#battle-units', '60');
  await page.click('#watch-battle');
  await until(page, () => window.__game && window.__game.ready && window.__game.tick !== null, null);
  // Follow the fighting until it is in full swing, then frame where most shots land.
  await until(page, () => (window.__game.effects()?.active.length || 0) > 25 && window.__game.effects().decals.length > 4, null, 120000);
  await page.evaluate(() => {
    const g = window.__game, s = g.state;
    const hurt = g.entities().filter((e) => !e.building && e.hp < e.max_hp);
    const pick = hurt.length ? hurt : g.entities();
    const x = pick.reduce((a, e) => a + e.x, 0) / pick.length / s.cell, y = pick.reduce((a, e) => a + e.y, 0) / pick.length / s.cell;
    g.centerOnCell(x, y);
  });
  await page.waitForTimeout(700);
  await page.screenshot({ path: join(OUT, 'battle.png') });
  console.log('battle.png at', (await seconds(page)).toFixed(1), 's');
  await page.close();
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const only = process.argv[2];
    if (!only || only === 'battle') await battle(browser);
    if (!only || only === 'vs-hard') await vsHard(browser);
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
