//! Browser wire types: the JSON frames of the WebSocket protocol (`docs/protocol.md`).
//! They live only here and are converted by hand from `events` types (see `convert`), so
//! an internal type never becomes part of the browser protocol by accident.

use serde::{Deserialize, Serialize};

/// A frame from the browser. The tag is the `t` field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ClientMsg {
    Hello {
        protocol: u32,
    },
    Join {
        token: String,
        #[serde(default)]
        last_tick: Option<u64>,
    },
    Spectate {
        #[serde(rename = "match")]
        match_id: String,
        #[serde(default)]
        last_tick: Option<u64>,
        /// Watch a live match this many seconds behind (0 to `MAX_SPECTATOR_DELAY_S`; any
        /// other number is refused with `bad_delay`).
        #[serde(default)]
        delay_s: Option<f64>,
    },
    Cmd {
        seq: u64,
        cmd: WireCommand,
    },
    Ping {
        id: u64,
    },
    Pong {
        id: u64,
    },
    Telemetry {
        #[serde(default)]
        selection_latency_ms: Vec<f64>,
        #[serde(default)]
        frame_ms: Vec<f64>,
    },
    /// Replay controls (recorded matches only): `action` `play` / `pause`, a `speed`
    /// factor, or a tick to `seek` to.
    Replay {
        #[serde(default)]
        action: Option<String>,
        #[serde(default)]
        speed: Option<f64>,
        #[serde(default)]
        seek: Option<u64>,
    },
}

/// The `t` values a client may send, for telling an unknown frame from a malformed one.
pub const CLIENT_MSG_TYPES: [&str; 8] = [
    "hello",
    "join",
    "spectate",
    "cmd",
    "ping",
    "pong",
    "telemetry",
    "replay",
];

/// A command as the browser sends it. Cells are `[x, y]`, units are entity ids.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireCommand {
    Move {
        units: Vec<u32>,
        to: [u16; 2],
    },
    AttackMove {
        units: Vec<u32>,
        to: [u16; 2],
    },
    Attack {
        units: Vec<u32>,
        target: u32,
    },
    Stop {
        units: Vec<u32>,
    },
    Hold {
        units: Vec<u32>,
    },
    Harvest {
        units: Vec<u32>,
        at: [u16; 2],
    },
    ReturnToRefinery {
        units: Vec<u32>,
    },
    Sell {
        building: u32,
    },
    Queue {
        item: String,
    },
    Cancel {
        queue: String,
    },
    Place {
        building: String,
        at: [u16; 2],
    },
    /// Give up the match (it counts as a defeat).
    Surrender {},
    /// Hold (`hold: true`) or resume a production queue.
    HoldQueue {
        queue: String,
        hold: bool,
    },
    /// Start (`on: true`) or stop repairing an own building.
    Repair {
        building: u32,
        on: bool,
    },
    /// Units leaving this Barracks / War Factory go to `at`.
    Rally {
        building: u32,
        at: [u16; 2],
    },
}

impl WireCommand {
    /// The unit ids a command orders (empty for production commands).
    pub fn units(&self) -> &[u32] {
        match self {
            WireCommand::Move { units, .. }
            | WireCommand::AttackMove { units, .. }
            | WireCommand::Attack { units, .. }
            | WireCommand::Stop { units }
            | WireCommand::Hold { units }
            | WireCommand::Harvest { units, .. }
            | WireCommand::ReturnToRefinery { units } => units,
            WireCommand::Sell { building }
            | WireCommand::Repair { building, .. }
            | WireCommand::Rally { building, .. } => std::slice::from_ref(building),
            WireCommand::Queue { .. }
            | WireCommand::Cancel { .. }
            | WireCommand::Place { .. }
            | WireCommand::HoldQueue { .. }
            | WireCommand::Surrender {} => &[],
        }
    }
}

/// An entity as the browser draws it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireEntity {
    pub id: u32,
    pub owner: u8,
    /// Unit or building kind name (`rifleman`, `power_plant`, ...).
    pub kind: String,
    pub building: bool,
    /// Fixed-point position (1024 per cell).
    pub x: i32,
    pub y: i32,
    /// 1/256 turns, 0 = east, counter-clockwise.
    pub facing: u8,
    pub hp: u32,
    pub max_hp: u32,
    pub cargo: u32,
}

/// A shot fired this tick: who fired (`attacker`, its `kind`) at what (`target`), with
/// which `warhead`, from where to where (fixed-point positions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireAttack {
    pub attacker: u32,
    pub kind: String,
    pub target: u32,
    pub warhead: String,
    pub from: [i32; 2],
    pub to: [i32; 2],
}

/// An entity destroyed by a shot this tick: what died (`id`, `owner`, `kind`), where
/// (`at`, fixed-point), and the unit (`by`) and warhead that killed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireDeath {
    pub id: u32,
    pub owner: u8,
    pub kind: String,
    pub building: bool,
    pub at: [i32; 2],
    pub by: u32,
    pub warhead: String,
}

/// A tiberium cell: `[x, y, bails, blue (0/1)]`.
pub type WireTiberium = [u16; 4];

/// One player of the match as the lobby and the welcome frame show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WirePlayer {
    pub id: u8,
    pub name: String,
    /// `human`, or `ai_easy` / `ai_normal` / `ai_hard`.
    pub kind: String,
}

/// The map as the browser draws it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireMap {
    pub width: u16,
    pub height: u16,
    /// One character per cell, row-major: `.` clear, `T` trees, `R` rock, `W` water,
    /// `~` tiberium ground.
    pub terrain: String,
    /// Tiberium at match start.
    pub tiberium: Vec<WireTiberium>,
    /// Start cells of the players, by player id.
    pub starts: Vec<[u16; 2]>,
}

/// What the client needs of a unit kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireUnitRules {
    pub cost: u32,
    pub hp: u32,
    pub speed_milli: u32,
    pub sight: u32,
    pub build_ms: u32,
    pub range_milli: u32,
    pub infantry: bool,
    pub armed: bool,
}

/// What the client needs of a building kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireBuildingRules {
    pub cost: u32,
    pub hp: u32,
    pub power: i32,
    pub width: u16,
    pub height: u16,
    pub build_ms: u32,
    pub sight: u32,
    pub requires: Option<String>,
    pub produces: Option<String>,
    /// Whether the player can build it (the Construction Yard cannot be built).
    pub buildable: bool,
}

/// The rules subset a client needs: sizes, costs, sight, placement radius.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireRules {
    pub tick_hz: u32,
    pub cell: i32,
    pub placement_radius: u16,
    pub max_bails: u8,
    /// Most items of one kind a unit queue holds.
    pub queue_limit: u32,
    /// Percent of a building's cost a sale refunds.
    pub sell_refund_pct: u32,
    /// Repair: `repair_hp_per_step` health points every `repair_step_ms`, costing
    /// `repair_credits_per_100_hp` per 100 points.
    pub repair_step_ms: u32,
    pub repair_hp_per_step: u32,
    pub repair_credits_per_100_hp: u32,
    pub units: std::collections::BTreeMap<String, WireUnitRules>,
    pub buildings: std::collections::BTreeMap<String, WireBuildingRules>,
}

/// A production queue's state on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireQueue {
    pub item: String,
    /// `building`, `paused` (waiting for credits), `held` (by the player) or `ready`.
    pub state: String,
    pub paid: u32,
    pub cost: u32,
    /// How many of the item the queue holds, the current one included.
    pub count: u32,
}

/// A player's ledger: credits, power, the three queues.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WireLedger {
    pub credits: i64,
    pub power_output: i32,
    pub power_consumption: i32,
    /// Consumption exceeds output: production is slowed and Laser Towers are off.
    pub low_power: bool,
    /// Production speed in percent (100 unless power is low).
    pub production_speed_pct: u32,
    /// Own buildings being repaired.
    pub repairing: Vec<u32>,
    pub buildings: Option<WireQueue>,
    pub infantry: Option<WireQueue>,
    pub vehicles: Option<WireQueue>,
}

/// One player's standing so far, for spectators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WirePlayerStats {
    pub player: u8,
    pub credits: i64,
    pub power_output: i32,
    pub power_consumption: i32,
    /// Cost of the player's live units, harvesters excluded.
    pub army_value: u64,
    pub units_built: u32,
    pub units_lost: u32,
    pub buildings_lost: u32,
    /// Enemy units and buildings destroyed.
    pub kills: u32,
    /// Credits delivered by harvesters.
    pub harvested: u64,
}

/// One player's line of the post-game score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WireScore {
    pub player: u8,
    pub name: String,
    pub units_built: u32,
    pub units_lost: u32,
    pub kills: u32,
    pub buildings_built: u32,
    pub buildings_lost: u32,
    pub harvested: u64,
    pub actions: u32,
    /// Actions per minute of game time, to one decimal.
    pub apm: f64,
}

/// A frame to the browser. The tag is the `t` field. Keyframes and deltas are built by
/// the match hub once per audience and sent as pre-serialized text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerMsg {
    /// Answer to `hello`: the version matched; send `join` or `spectate` next.
    HelloOk {
        protocol: u32,
    },
    Welcome(Box<Welcome>),
    Keyframe(Keyframe),
    Delta(Delta),
    Ledger(WireLedger),
    /// The client's command went onto the match's command stream.
    Ack {
        seq: u64,
        id: String,
    },
    /// A command was refused (by the gateway, the engine or the economy).
    Rejected {
        seq: Option<u64>,
        code: String,
        message: String,
    },
    /// Something that happened in the match that every viewer may know.
    Event {
        kind: String,
        player: Option<u8>,
    },
    /// The match is over; `winner` is `null` for a draw.
    GameOver {
        winner: Option<u8>,
    },
    Ping {
        id: u64,
    },
    Pong {
        id: u64,
    },
    /// Every player's standing (spectators and replay viewers only, every
    /// `PLAYERS_STATS_EVERY` ticks and when they join).
    PlayersStats {
        tick: u64,
        players: Vec<WirePlayerStats>,
    },
    /// The post-game score: sent to everyone at the end of a match (and of a replay),
    /// the figures `replay-tool stats` prints for the same log.
    Score {
        #[serde(rename = "match")]
        match_id: String,
        /// Ticks the log holds and the match's tick rate.
        ticks: u64,
        tick_hz: u32,
        players: Vec<WireScore>,
    },
    /// Where a replay stands (after every control and at its end).
    ReplayState {
        playing: bool,
        speed: f64,
        tick: Option<u64>,
        last_tick: u64,
    },
    Error {
        code: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        expected: Option<u32>,
    },
}

impl ServerMsg {
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        ServerMsg::Error {
            code: code.to_string(),
            message: message.into(),
            expected: None,
        }
    }

    /// The JSON text of the frame.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"t":"error","code":"internal","message":"encode failed"}"#.to_string()
        })
    }
}

/// The first frame after a successful `join`/`spectate`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Welcome {
    pub protocol: u32,
    #[serde(rename = "match")]
    pub match_id: String,
    /// `player` or `spectator`.
    pub role: String,
    pub player: Option<u8>,
    pub players: Vec<WirePlayer>,
    pub map: WireMap,
    pub rules: WireRules,
    /// Present when this is a replay of a recorded match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayInfo>,
}

/// A recorded match being replayed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayInfo {
    pub last_tick: u64,
    pub tick_hz: u32,
}

/// Every entity this audience sees at `tick`, and the whole current tiberium.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Keyframe {
    pub tick: u64,
    pub entities: Vec<WireEntity>,
    pub tiberium: Vec<WireTiberium>,
    /// The match is over (then `winner` is the winner, `null` for a draw).
    pub game_over: bool,
    pub winner: Option<u8>,
}

/// What changed for this audience at `tick`: changed entities, entities that left its
/// view (`hidden`, still alive) and entities it saw destroyed (`removed`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delta {
    pub tick: u64,
    pub entities: Vec<WireEntity>,
    pub hidden: Vec<u32>,
    pub removed: Vec<u32>,
    pub tiberium: Vec<WireTiberium>,
    /// Shots this audience sees (it sees the attacker or the target); absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attacks: Vec<WireAttack>,
    /// Deaths by shots of entities this audience saw; absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deaths: Vec<WireDeath>,
    /// Present (true) only on the frame that ends the match.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub game_over: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub winner: Option<u8>,
}

/// Lobby: a request to create a match.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CreateMatch {
    /// `vs_ai`, `two_players`, `ai_vs_ai` or `battle`.
    pub mode: String,
    #[serde(default)]
    pub difficulty: Option<String>,
    #[serde(default)]
    pub map_size: Option<u16>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub name: Option<String>,
    /// Units per side of a `battle` (only that mode takes it).
    #[serde(default)]
    pub units: Option<u32>,
}

/// Lobby: a request to join a match as a player.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct JoinMatch {
    #[serde(default)]
    pub player: Option<u8>,
}

/// Lobby: a player token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenGrant {
    #[serde(rename = "match")]
    pub match_id: String,
    pub player: u8,
    pub token: String,
    pub expires_ms: u64,
}

/// Lobby: one match in a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchSummary {
    #[serde(rename = "match")]
    pub match_id: String,
    pub created_ms: u64,
    pub map_size: u16,
    pub seed: u64,
    pub players: Vec<WirePlayer>,
    /// `live` or `ended`.
    pub status: String,
    pub winner: Option<u8>,
    pub ended_tick: Option<u64>,
    /// Human slots nobody has joined through this instance yet.
    pub open_slots: Vec<u8>,
}

/// Lobby: the answer to creating a match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Created {
    #[serde(rename = "match")]
    pub match_id: String,
    pub summary: MatchSummary,
    /// A token for the creator's slot, when the match has a human slot.
    pub grant: Option<TokenGrant>,
}

/// Lobby: the match listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchList {
    pub live: Vec<MatchSummary>,
    pub recorded: Vec<MatchSummary>,
}
