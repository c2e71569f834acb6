//! Every limit of the gateway, named in one place; `docs/protocol.md` lists the same numbers.

use std::time::Duration;

/// Version of the browser WebSocket protocol; a `hello` with another version is refused
/// with a typed `protocol_mismatch` error.
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest WebSocket message (and frame) a client may send; bigger ones close the socket.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Commands per second a connection may send (token bucket refill rate).
pub const COMMANDS_PER_SECOND: u32 = 20;

/// Burst size of the command token bucket: a full second's worth.
pub const COMMAND_BURST: u32 = COMMANDS_PER_SECOND;

/// Most WebSocket sessions one gateway instance holds; further upgrades get HTTP 503.
pub const MAX_SESSIONS: usize = 10_000;

/// Outgoing frames queued for one client; a client that lets this fill up is dropped
/// (and counted in `gateway_slow_clients_dropped_total`).
pub const SEND_QUEUE_CAPACITY: usize = 128;

/// Messages a match hub buffers for its sessions; a session that falls this far behind
/// is dropped as a slow client.
pub const HUB_CHANNEL_CAPACITY: usize = 512;

/// Ticks of per-tick deltas a hub keeps for resuming clients; a client whose last tick is
/// older gets a fresh keyframe instead.
pub const RESUME_WINDOW_TICKS: usize = 600;

/// Most view entries a hub reads back to find the newest keyframe when it starts.
pub const HUB_BACKFILL_MAX: usize = 4_000;

/// Most economy entries a hub folds when it starts (to show current credits and queues).
pub const HUB_ECO_BACKFILL_MAX: usize = 500_000;

/// Most tick entries a hub folds when it starts (for the players' standings).
pub const HUB_TICK_BACKFILL_MAX: usize = 500_000;

/// Ticks between two `players_stats` messages to spectators.
pub const PLAYERS_STATS_EVERY: u64 = 20;

/// How long a hub waits for the economy's final step before computing the score anyway.
pub const SCORE_ECONOMY_WAIT: Duration = Duration::from_secs(5);

/// Entries read per bus call by a hub.
pub const HUB_READ_BATCH: usize = 256;

/// How long a hub's blocking read on the view stream waits before polling the others.
pub const HUB_BLOCK: Duration = Duration::from_millis(200);

/// A hub with no sessions for this long stops reading and is dropped.
pub const HUB_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Time a new connection has to send `hello` and `join`/`spectate`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// A session that receives nothing from its client for this long is closed.
pub const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Interval of the server's own pings (round-trip measurement and liveness).
pub const SERVER_PING_INTERVAL: Duration = Duration::from_secs(5);

/// Most unit ids one command may name.
pub const MAX_UNITS_PER_COMMAND: usize = 256;

/// Command ids a session remembers to match rejection notices back to the client's `seq`.
pub const REMEMBERED_COMMANDS: usize = 128;

/// Most samples one telemetry frame may carry (extra samples are ignored).
pub const MAX_TELEMETRY_SAMPLES: usize = 256;

/// Matches the lobby lists per category (live / recorded), newest first.
pub const MAX_LISTED_MATCHES: usize = 100;

/// Most matches the lobby index keeps in memory; the oldest ended ones go first.
pub const MAX_INDEXED_MATCHES: usize = 10_000;

/// Most units per side of a lobby `battle` (two sides: twice this many in the match): the
/// engine's bound, since it builds the battle (and a quarter of the map's cells at most:
/// `engine::scenario::battle_room`).
pub const MAX_BATTLE_UNITS_PER_SIDE: u32 = engine::scenario::MAX_BATTLE_UNITS_PER_SIDE;

/// Default units per side of a lobby `battle` when the request names none.
pub const DEFAULT_BATTLE_UNITS_PER_SIDE: u32 = 250;

/// Most replays one gateway instance loads at once: reading and decoding a match's whole
/// log, and for a log without the engine's seek states the seek index build that follows
/// on the blocking pool (a re-run of the whole match). A `spectate` of a recorded match
/// beyond that gets an `error{code: "busy"}` at once (the session goes on and may ask
/// again).
pub const REPLAY_LOADS_AT_ONCE: usize = 4;

/// Default lifetime of a player token.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// How long graceful shutdown waits for sessions and hubs to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Longest delay a spectator of a live match may ask for (`spectate {delay_s}`).
pub const MAX_SPECTATOR_DELAY_S: u32 = 300;

/// Messages a delayed spectator's session may hold back (a 300 s delay at 20 Hz holds about
/// 6,000 frames, each shared with the other spectators); beyond it the client is dropped
/// as too slow.
pub const MAX_DELAYED_MESSAGES: usize = 20_000;

/// A match against the AI whose human player has had no session for this long is ended:
/// the gateway appends that player's `Surrender` (embedded mode, where one instance sees
/// every session; see `Lobby::watch_abandoned`).
pub const ABANDONED_MATCH_AFTER: Duration = Duration::from_secs(120);

/// Longest interval between two looks for abandoned matches.
pub const ABANDONED_CHECK_EVERY: Duration = Duration::from_secs(5);

/// `place` commands a session remembers while it waits for the engine's answer (placed or
/// failed); the answer to an older one arrives with `seq: null`.
pub const PENDING_PLACEMENTS: usize = 8;

/// How long a match hub waits after a failed bus read (backfill or live) before it tries
/// again.
pub const HUB_RETRY_AFTER: Duration = Duration::from_millis(500);

/// Entries of the economy and tick streams a hub reads per round trip while it backfills.
pub const HUB_BACKFILL_PAGE: usize = 1000;

/// How long a joining session waits for its match's hub to have read the streams before
/// it answers `unavailable`.
pub const HUB_READY_WAIT: Duration = Duration::from_secs(10);
