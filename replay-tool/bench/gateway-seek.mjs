// gateway-seek.mjs: times replay seeks the way the browser makes them: a WebSocket to a
// gateway, `spectate` a recorded match, then `replay {seek}` and the wall time until that
// tick's keyframe arrives (JSON encoding and the socket included). Each target is the
// first seek of a fresh connection, sent right after the welcome (nothing indexed yet).
// With DELAY_MS the seek is sent that long after the welcome instead (the background seek
// index has had that long).
// Usage: node --experimental-websocket gateway-seek.mjs GATEWAY_URL MATCH_ID [runs] [DELAY_MS]

const [base, match, runsArg, delayArg] = process.argv.slice(2);
if (!base || !match) {
  console.error('usage: gateway-seek.mjs GATEWAY_URL MATCH_ID [runs] [DELAY_MS]');
  process.exit(2);
}
const runs = Number(runsArg || 3);
const delayMs = Number(delayArg || 0);
const wsUrl = base.replace(/^http/, 'ws').replace(/\/?$/, '/ws');

function open() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl);
    const queue = [];
    let waiter = null;
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.t === 'ping') { ws.send(JSON.stringify({ t: 'pong', id: m.id })); return; }
      if (waiter && waiter.pred(m)) { const w = waiter; waiter = null; w.resolve(m); return; }
      queue.push(m);
    };
    ws.onerror = (e) => reject(new Error(String(e.message || e)));
    ws.onopen = () => resolve({
      ws,
      send: (o) => ws.send(JSON.stringify(o)),
      next: (pred, timeoutMs = 30000) => new Promise((res, rej) => {
        const i = queue.findIndex(pred);
        if (i >= 0) { res(queue.splice(i, 1)[0]); return; }
        const t = setTimeout(() => { waiter = null; rej(new Error('timed out')); }, timeoutMs);
        waiter = { pred, resolve: (m) => { clearTimeout(t); res(m); } };
      }),
    });
  });
}

async function firstSeek(target) {
  const c = await open();
  c.send({ t: 'hello', protocol: 1 });
  await c.next((m) => m.t === 'hello_ok');
  const opened = performance.now();
  c.send({ t: 'spectate', match, last_tick: null });
  const welcome = await c.next((m) => m.t === 'welcome');
  const welcomeMs = performance.now() - opened;
  if (!welcome.replay) throw new Error(`match ${match} is not a recorded match`);
  const last = welcome.replay.last_tick;
  const tick = target(last);
  c.send({ t: 'replay', action: 'pause' });
  if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  const sent = performance.now();
  c.send({ t: 'replay', seek: tick });
  // The keyframe the seek answers with (a seek before a battle's base state is clamped).
  const kf = await c.next((m) => m.t === 'keyframe' && (m.tick === tick || tick === 0));
  const seekMs = performance.now() - sent;
  c.ws.close();
  return { tick: kf.tick, last, welcomeMs, seekMs, entities: kf.entities.length };
}

const targets = [
  ['start', () => 0],
  ['middle', (l) => Math.floor(l / 2)],
  ['3/4', (l) => Math.floor((l * 3) / 4)],
  ['end', (l) => l],
];
for (const [name, f] of targets) {
  const rows = [];
  for (let i = 0; i < runs; i++) rows.push(await firstSeek(f));
  const ms = rows.map((r) => r.seekMs.toFixed(1)).join(' / ');
  const w = rows.map((r) => r.welcomeMs.toFixed(0)).join(' / ');
  console.log(`${name.padEnd(6)} tick ${String(rows[0].tick).padStart(6)} of ${rows[0].last}: first seek ${ms} ms (welcome after ${w} ms; ${rows[0].entities} entities)`);
}
