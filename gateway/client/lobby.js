// lobby.js: the lobby page: create a game (vs AI, two players, AI vs AI, a battle of two
// armies), join or spectate by id, and list live and recorded matches.

const $ = (id) => document.getElementById(id);

export function saveGrant(grant) {
  sessionStorage.setItem(`cnit.grant.${grant.match}`, JSON.stringify(grant));
}

export function loadGrant(match) {
  try {
    const g = JSON.parse(sessionStorage.getItem(`cnit.grant.${match}`) || 'null');
    if (g && g.expires_ms > Date.now()) return g;
  } catch { /* ignore a corrupt entry */ }
  return null;
}

async function api(path, body) {
  const res = await fetch(path, body === undefined ? {} : {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || `${res.status} ${res.statusText}`);
  return data;
}

function showError(e) {
  const el = $('lobby-error');
  el.textContent = e ? String(e.message || e) : '';
  el.hidden = !e;
}

function playersText(m) {
  return m.players.map((p) => `${p.name}${p.kind === 'human' ? '' : ''}`).join(' vs ');
}

// The watch route of a live match, with the spectator delay the lobby asks for (0–300 s).
function watchHash(id) {
  const d = Math.max(0, Math.min(300, Math.floor(Number($('spectate-delay')?.value) || 0)));
  return d > 0 ? `#/watch/${id}?delay=${d}` : `#/watch/${id}`;
}

function renderList(el, matches, recorded) {
  el.innerHTML = '';
  if (!matches.length) { el.innerHTML = '<li class="hint">none</li>'; return; }
  for (const m of matches) {
    const li = document.createElement('li');
    const result = recorded ? (m.winner === null || m.winner === undefined ? ' — draw' : ` — winner: ${m.players.find((p) => p.id === m.winner)?.name ?? m.winner}`) : '';
    li.innerHTML = `<span class="id">${m.match.slice(-8)}</span><span>${playersText(m)} · ${m.map_size}²${result}</span>`;
    const watch = document.createElement('button');
    watch.className = 'small';
    watch.textContent = recorded ? 'View' : 'Spectate';
    watch.onclick = () => { location.hash = recorded ? `#/watch/${m.match}` : watchHash(m.match); };
    li.appendChild(watch);
    if (!recorded && loadGrant(m.match)) {
      // This browser played here: its token takes the slot back.
      const back = document.createElement('button');
      back.className = 'small rejoin';
      back.textContent = 'Rejoin';
      back.onclick = () => { location.hash = `#/play/${m.match}`; };
      li.appendChild(back);
    } else if (!recorded && m.open_slots.length) {
      const join = document.createElement('button');
      join.className = 'small';
      join.textContent = 'Join';
      join.onclick = () => joinMatch(m.match);
      li.appendChild(join);
    }
    el.appendChild(li);
  }
}

export async function refreshLists() {
  try {
    const l = await api('/api/matches');
    renderList($('live-list'), l.live, false);
    renderList($('recorded-list'), l.recorded, true);
    showError(null);
  } catch (e) { showError(e); }
}

async function create(mode) {
  const seedText = $('seed').value.trim();
  const body = {
    mode,
    difficulty: $('difficulty').value,
    map_size: Number($('map-size').value),
    name: $('player-name').value,
  };
  if (seedText) body.seed = Number(seedText);
  if (mode === 'battle') body.units = Number($('battle-units').value);
  try {
    const c = await api('/api/matches', body);
    if (mode === 'ai_vs_ai' || mode === 'battle') { location.hash = `#/watch/${c.match}`; return; }
    saveGrant(c.grant);
    if (mode === 'two_players') {
      const inv = $('invite');
      inv.hidden = false;
      inv.textContent = `Second player: join match ${c.match}`;
    }
    location.hash = `#/play/${c.match}`;
  } catch (e) { showError(e); }
}

async function joinMatch(id) {
  try {
    const g = await api(`/api/matches/${encodeURIComponent(id)}/join`, {});
    saveGrant(g);
    location.hash = `#/play/${g.match}`;
  } catch (e) { showError(e); }
}

let bound = false;
export function showLobby() {
  $('lobby').hidden = false;
  $('game').hidden = true;
  if (!bound) {
    bound = true;
    $('start-vs-ai').onclick = () => create('vs_ai');
    $('start-two').onclick = () => create('two_players');
    $('watch-ai').onclick = () => create('ai_vs_ai');
    $('watch-battle').onclick = () => create('battle');
    $('refresh').onclick = () => refreshLists();
    $('join-btn').onclick = () => { const id = $('join-id').value.trim(); if (id) joinMatch(id); };
    $('spectate-btn').onclick = () => { const id = $('join-id').value.trim(); if (id) location.hash = watchHash(id); };
  }
  refreshLists();
}

export { showError };
