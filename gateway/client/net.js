// net.js: the WebSocket connection: handshake, join/spectate, automatic reconnect that
// resumes from the last tick, pings for the round trip, telemetry and commands.

export const PROTOCOL_VERSION = 2;

export class Connection {
  // target: {token} to play or {match} to spectate. handlers: {onMessage, onStatus, lastTick}.
  constructor(target, handlers) {
    this.target = target;
    this.handlers = handlers;
    this.ws = null;
    this.seq = 0;
    this.rtt = null;
    this.closed = false;
    this.fatal = null;
    this.backoff = 250;
    this.pingId = 0;
    this.pings = new Map();
    this.reconnects = 0;
    this.pingTimer = setInterval(() => this.ping(), 2000);
  }

  connect() {
    if (this.closed) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/ws`);
    this.ws = ws;
    ws.onopen = () => {
      this.backoff = 250;
      this.raw({ t: 'hello', protocol: PROTOCOL_VERSION });
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      this.onFrame(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closed || this.fatal) return;
      this.handlers.onStatus?.('reconnecting…');
      const wait = this.backoff;
      this.backoff = Math.min(this.backoff * 2, 4000);
      this.reconnects += 1;
      setTimeout(() => this.connect(), wait);
    };
  }

  onFrame(msg) {
    switch (msg.t) {
      case 'hello_ok': {
        const lastTick = this.handlers.lastTick?.() ?? null;
        if (this.target.token) this.raw({ t: 'join', token: this.target.token, last_tick: lastTick });
        else this.raw({ t: 'spectate', match: this.target.match, last_tick: lastTick, delay_s: this.target.delay_s || 0 });
        return;
      }
      case 'welcome':
        this.handlers.onStatus?.(null);
        break;
      case 'ping':
        this.raw({ t: 'pong', id: msg.id });
        return;
      case 'pong': {
        const sent = this.pings.get(msg.id);
        if (sent !== undefined) {
          this.rtt = performance.now() - sent;
          this.pings.delete(msg.id);
        }
        return;
      }
      case 'error':
        if (['protocol_mismatch', 'bad_token', 'unknown_match', 'not_a_player'].includes(msg.code)) {
          this.fatal = msg;
          this.handlers.onStatus?.(msg.message);
        }
        break;
    }
    this.handlers.onMessage(msg);
  }

  raw(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  // Sends a command; returns its sequence number (or null when offline).
  command(cmd) {
    const seq = ++this.seq;
    return this.raw({ t: 'cmd', seq, cmd }) ? seq : null;
  }

  ping() {
    const id = ++this.pingId;
    this.pings.set(id, performance.now());
    if (this.pings.size > 20) this.pings.delete(this.pings.keys().next().value);
    this.raw({ t: 'ping', id });
  }

  telemetry(selection, frames) {
    if (!selection.length && !frames.length) return;
    this.raw({ t: 'telemetry', selection_latency_ms: selection, frame_ms: frames });
  }

  // Drops the socket without closing the session, to test reconnects.
  dropForTest() {
    this.ws?.close();
  }

  close() {
    this.closed = true;
    clearInterval(this.pingTimer);
    this.ws?.close();
  }
}
