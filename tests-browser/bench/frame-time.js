// frame-time.js: client frame time with ~500 and ~1,000 live units on screen in headless
// Chromium, with the sprites and combat effects: creates a lobby battle per size, watches it
// as a spectator zoomed out to the whole map, and reports requestAnimationFrame intervals,
// the renderer's own draw time (p50/p95/p99) and how many effects were on screen.
//
// Needs a running gateway (embedded is fine): GATEWAY_URL=http://127.0.0.1:PORT/ node
// bench/frame-time.js, or bench/run.sh to build and start one. Settings (env):
// BENCH_UNITS_PER_SIDE (comma-separated runs, "250,500"), BENCH_MAP_SIZE (96),
// BENCH_SECONDS (10), BENCH_SEED (7).

import { chromium } from 'playwright-core';

const BASE = process.env.GATEWAY_URL || 'http://127.0.0.1:8080/';
const RUNS = String(process.env.BENCH_UNITS_PER_SIDE || '250,500').split(',').map(Number);
const MAP = Number(process.env.BENCH_MAP_SIZE || 96);
const SECONDS = Number(process.env.BENCH_SECONDS || 10);
const SEED = Number(process.env.BENCH_SEED || 7);
// A canvas of 1400×1000 CSS px (the sidebar takes 200): a 96×96 map fits at the
// client's smallest zoom (0.4, 9.6 px per cell).
const VIEWPORT = { width: 1600, height: 1000 };

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.round((sorted.length - 1) * p))];
}

function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return { n: s.length, mean, p50: pct(s, 0.5), p95: pct(s, 0.95), p99: pct(s, 0.99), max: s[s.length - 1] };
}

const f = (x) => x.toFixed(2);

async function measure(PER_SIDE) {
  const res = await fetch(new URL('/api/matches', BASE), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ mode: 'battle', units: PER_SIDE, map_size: MAP, seed: SEED }),
  });
  const created = await res.json();
  if (!res.ok) throw new Error(`creating the battle: ${res.status} ${JSON.stringify(created)}`);

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: VIEWPORT });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(new URL(`#/watch/${created.match}`, BASE).toString());
    await page.waitForFunction(() => window.__game && window.__game.ready && window.__game.tick !== null,
      null, { timeout: 30000 });
    // Zoom out with the mouse wheel (as a player would) until the whole map shows.
    const box = await page.locator('#view').boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    for (let i = 0; i < 12; i++) {
      await page.mouse.wheel(0, 120);
      await page.waitForTimeout(30);
    }
    await page.evaluate((m) => window.__game.centerOnCell(m / 2, m / 2), MAP);
    await page.waitForTimeout(1000);

    const before = await page.evaluate(() => ({
      tick: window.__game.tick,
      units: window.__game.entities().filter((e) => !e.building).length,
      onScreen: window.__game.unitsOnScreen(),
    }));
    await page.evaluate(() => window.__game.takeDrawTimes());
    // rAF intervals from a loop of the benchmark's own (it runs next to the client's),
    // and units on screen once a second.
    const measured = await page.evaluate((ms) => new Promise((resolve) => {
      const deltas = [], onScreen = [], effects = [];
      const t0 = performance.now();
      let last = t0, nextCount = t0;
      function step(t) {
        deltas.push(t - last);
        last = t;
        if (t >= nextCount) {
          onScreen.push(window.__game.unitsOnScreen());
          effects.push(window.__game.effects()?.active.length || 0);
          nextCount += 1000;
        }
        if (t - t0 < ms) requestAnimationFrame(step);
        else resolve({ deltas: deltas.slice(1), onScreen, effects, elapsed: t - t0 });
      }
      requestAnimationFrame((t) => { last = t; requestAnimationFrame(step); });
    }), SECONDS * 1000);
    const draws = await page.evaluate(() => window.__game.takeDrawTimes());
    const after = await page.evaluate(() => ({
      tick: window.__game.tick,
      units: window.__game.entities().filter((e) => !e.building).length,
      onScreen: window.__game.unitsOnScreen(),
      winner: window.__game.winner,
    }));
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);

    const raf = summary(measured.deltas);
    const draw = summary(draws);
    const counts = [...measured.onScreen].sort((a, b) => a - b);
    const version = browser.version();
    console.log(`Chromium ${version}, viewport ${VIEWPORT.width}×${VIEWPORT.height}, battle ${PER_SIDE} units per side on ${MAP}×${MAP} (seed ${SEED}), ${(measured.elapsed / 1000).toFixed(1)} s measured`);
    console.log(`units in the client: ${before.units} at start, ${after.units} at end; on screen (sampled each second): min ${counts[0]}, median ${pct(counts, 0.5)}, max ${counts[counts.length - 1]}`);
    console.log(`match ticks during the run: ${before.tick} → ${after.tick}${after.winner !== undefined ? ` (ended, winner ${after.winner})` : ''}`);
    const fx = [...measured.effects].sort((a, b) => a - b);
    console.log(`live combat effects (sampled each second): min ${fx[0]}, median ${pct(fx, 0.5)}, max ${fx[fx.length - 1]}`);
    console.log('| measure | frames | mean (ms) | p50 | p95 | p99 | max | fps (1000 / mean) |');
    console.log('|---|---|---|---|---|---|---|---|');
    console.log(`| requestAnimationFrame interval | ${raf.n} | ${f(raf.mean)} | ${f(raf.p50)} | ${f(raf.p95)} | ${f(raf.p99)} | ${f(raf.max)} | ${(1000 / raf.mean).toFixed(1)} |`);
    console.log(`| client draw (Renderer.draw) | ${draw.n} | ${f(draw.mean)} | ${f(draw.p50)} | ${f(draw.p95)} | ${f(draw.p99)} | ${f(draw.max)} | – |`);
  } finally {
    await browser.close();
  }
}

async function main() {
  for (const n of RUNS) {
    await measure(n);
    console.log('');
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
