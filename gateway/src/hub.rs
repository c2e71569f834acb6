//! Match hubs: one bus reader task per match per gateway instance. A hub folds the match's
//! `view`, `tick` and `eco` streams into the current picture, turns every view frame into
//! one pre-serialized frame per audience (spectators, and each human player with fog
//! applied), keeps a window of recent frames for resuming clients, and fans everything
//! out to its sessions over a bounded broadcast channel.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use engine::Rules;
use events::{
    decode, now_ms, BuildingKind, Bus, EconomyStepCommitted, EntityView, GameEvent, Keys,
    LedgerEvent, MatchCreated, MatchId, PlayerId, PlayerKind, QueueKind, RejectReason, StreamId,
    TickCommitted, UnitId, ViewFrame, ViewKind, MAX_PLAYERS,
};
use replay_tool::stats::Tally;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use uuid::Uuid;

use crate::convert;
use crate::limits::{
    HUB_BACKFILL_MAX, HUB_BLOCK, HUB_CHANNEL_CAPACITY, HUB_ECO_BACKFILL_MAX, HUB_IDLE_TIMEOUT,
    HUB_READ_BATCH, HUB_TICK_BACKFILL_MAX, PLAYERS_STATS_EVERY, RESUME_WINDOW_TICKS,
    SCORE_ECONOMY_WAIT,
};
use crate::metrics as m;
use crate::wire::{Delta, Keyframe, ServerMsg, Welcome, WireLedger, WireTiberium};

/// Who a frame is for: spectators see everything, a player only what its bit allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    Spectator,
    Player(PlayerId),
}

impl Audience {
    fn sees(self, mask: u8) -> bool {
        match self {
            Audience::Spectator => true,
            Audience::Player(p) => p.0 < 8 && mask & (1u8 << p.0) != 0,
        }
    }
}

/// One view frame, serialized once per audience.
#[derive(Debug)]
pub struct Frame {
    pub tick: u64,
    pub spectator: Utf8Bytes,
    /// Indexed by player id; `None` for slots that are not human.
    pub players: [Option<Utf8Bytes>; MAX_PLAYERS],
}

impl Frame {
    pub fn for_audience(&self, a: Audience) -> Option<&Utf8Bytes> {
        match a {
            Audience::Spectator => Some(&self.spectator),
            Audience::Player(p) => self.players.get(usize::from(p.0))?.as_ref(),
        }
    }
}

/// What a hub broadcasts to its sessions.
#[derive(Debug)]
pub enum HubMsg {
    Frame(Arc<Frame>),
    /// A player's full ledger after a change (only that player's sessions forward it).
    Ledger {
        player: PlayerId,
        text: Utf8Bytes,
    },
    /// A command of `player` was rejected by the engine or the economy.
    Rejected {
        player: PlayerId,
        command: Uuid,
        code: &'static str,
        message: String,
    },
    /// The engine answered one of `player`'s placements: placed (`failed: None`) or not,
    /// and why. The economy's placement request carries no command id, so each session
    /// matches it to the oldest `place` of that building it is still waiting on.
    Placement {
        player: PlayerId,
        building: BuildingKind,
        failed: Option<String>,
    },
    /// Something every viewer may know (a defeat, the end of the match, the score).
    Public(Utf8Bytes),
    /// For spectators only (every player's standing: players must not see the enemy's
    /// credits).
    Spectators(Utf8Bytes),
}

/// Why a placement failed, as the player reads it (`cannot place there: ...`).
pub fn placement_message(reason: &RejectReason) -> String {
    match reason {
        RejectReason::BadPlacement(_) => reason.to_string(),
        other => format!("cannot place there: {other}"),
    }
}

/// Where a joining or resuming session starts.
pub struct Start {
    /// Frames to send first (a keyframe, or the deltas since the client's last tick).
    pub frames: Vec<Utf8Bytes>,
    /// Broadcast frames up to this tick are already covered by `frames`.
    pub covered_tick: Option<u64>,
    /// The player's ledger, for players.
    pub ledger: Option<Utf8Bytes>,
    /// Whether `frames` resumed from the client's tick (no keyframe needed).
    pub resumed: bool,
    /// The newest players' standings (spectators) and the score (once the match is over).
    pub extra: Vec<Utf8Bytes>,
}

#[derive(Default)]
struct HubState {
    tick: Option<u64>,
    entities: BTreeMap<UnitId, EntityView>,
    tiberium: BTreeMap<(u16, u16), (u8, bool)>,
    winner: Option<Option<PlayerId>>,
    ledgers: BTreeMap<u8, WireLedger>,
    ring: VecDeque<Arc<Frame>>,
    /// Every player's standing, folded from the tick and economy streams.
    tally: Tally,
    /// The newest `players_stats` sent, and the tick it was for.
    stats: Option<(u64, Utf8Bytes)>,
    /// The final tick, once the match is over.
    final_tick: Option<u64>,
    /// When this hub learnt of the end (the score waits a while for the economy's step).
    over_at: Option<Instant>,
    /// The newest economy step folded.
    eco_tick: Option<u64>,
    /// The score message, once computed (or given up on: `Some(None)`).
    score: Option<Option<Utf8Bytes>>,
}

/// One match as this gateway instance sees it.
pub struct Hub {
    pub match_id: MatchId,
    pub created: Arc<MatchCreated>,
    /// The parts of `welcome` that never change (map, rules, players).
    pub welcome: Arc<Welcome>,
    humans: [bool; MAX_PLAYERS],
    /// Unit costs for the army values of `players_stats`.
    rules: Arc<Rules>,
    state: Mutex<HubState>,
    tx: broadcast::Sender<Arc<HubMsg>>,
    ready: watch::Sender<bool>,
}

impl Hub {
    /// A hub for a match; `initial_tiberium` is the generated map's tiberium and
    /// `starting_credits` every player's balance before the economy reports a change.
    pub fn new(
        created: Arc<MatchCreated>,
        welcome: Arc<Welcome>,
        initial_tiberium: &[WireTiberium],
        starting_credits: i64,
        rules: Arc<Rules>,
    ) -> Self {
        let mut humans = [false; MAX_PLAYERS];
        for p in &created.players {
            if p.kind == PlayerKind::Human {
                if let Some(h) = humans.get_mut(usize::from(p.id.0)) {
                    *h = true;
                }
            }
        }
        let state = HubState {
            tiberium: initial_tiberium
                .iter()
                .map(|t| ((t[0], t[1]), (t[2] as u8, t[3] != 0)))
                .collect(),
            ledgers: created
                .players
                .iter()
                .map(|p| {
                    let l = WireLedger {
                        credits: starting_credits,
                        production_speed_pct: 100,
                        ..WireLedger::default()
                    };
                    (p.id.0, l)
                })
                .collect(),
            tally: Tally::new(created.players.iter().map(|p| p.id), starting_credits),
            ..HubState::default()
        };
        Self {
            match_id: created.match_id.clone(),
            created,
            welcome,
            humans,
            rules,
            state: Mutex::new(state),
            tx: broadcast::channel(HUB_CHANNEL_CAPACITY).0,
            ready: watch::channel(false).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // Every mutation under this lock is completed before it is released; a panic in
        // a reader cannot leave it half-applied, so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new receiver of this hub's broadcasts.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HubMsg>> {
        self.tx.subscribe()
    }

    /// Waits until the hub has read the match's history (or `timeout` passes).
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut rx = self.ready.subscribe();
        let ready = tokio::time::timeout(timeout, rx.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok());
        ready
    }

    /// The current tick, if any frame has been seen.
    pub fn tick(&self) -> Option<u64> {
        self.lock().tick
    }

    /// The winner, once the match is over.
    pub fn winner(&self) -> Option<Option<PlayerId>> {
        self.lock().winner
    }

    /// The owner of a live entity, as of the last frame.
    pub fn owner_of(&self, id: UnitId) -> Option<PlayerId> {
        self.lock().entities.get(&id).map(|e| e.owner)
    }

    /// The owner of a live entity and whether `viewer` sees it, as of the last frame.
    pub fn owner_and_sight(&self, id: UnitId, viewer: PlayerId) -> Option<(PlayerId, bool)> {
        self.lock()
            .entities
            .get(&id)
            .map(|e| (e.owner, Audience::Player(viewer).sees(e.visible_to)))
    }

    pub fn is_human(&self, p: PlayerId) -> bool {
        self.humans.get(usize::from(p.0)).copied().unwrap_or(false)
    }

    /// Where a session of `audience` starts: the deltas since `last_tick` when this hub
    /// still holds all of them, else a keyframe of the current state.
    pub fn start(&self, audience: Audience, last_tick: Option<u64>) -> Start {
        let st = self.lock();
        let mut extra = Vec::new();
        if audience == Audience::Spectator {
            extra.extend(st.stats.as_ref().map(|(_, t)| t.clone()));
        }
        extra.extend(st.score.clone().flatten());
        let ledger = match audience {
            Audience::Player(p) => Some(ledger_text(
                st.ledgers.get(&p.0).cloned().unwrap_or_default(),
            )),
            Audience::Spectator => None,
        };
        let Some(cur) = st.tick else {
            return Start {
                frames: Vec::new(),
                covered_tick: None,
                ledger,
                resumed: false,
                extra,
            };
        };
        if let Some(t) = last_tick {
            let window_ok = t == cur
                || (t < cur
                    && st
                        .ring
                        .front()
                        .is_some_and(|f| f.tick <= t.saturating_add(1)));
            if window_ok {
                let frames = st
                    .ring
                    .iter()
                    .filter(|f| f.tick > t)
                    .filter_map(|f| f.for_audience(audience).cloned())
                    .collect();
                return Start {
                    frames,
                    covered_tick: Some(cur),
                    ledger,
                    resumed: true,
                    extra,
                };
            }
        }
        let kf = ServerMsg::Keyframe(keyframe(&st, audience, cur)).to_json();
        Start {
            frames: vec![kf.into()],
            covered_tick: Some(cur),
            ledger,
            resumed: false,
            extra,
        }
    }

    fn send(&self, msg: HubMsg) {
        // No receivers is fine: nobody is watching right now.
        let _ = self.tx.send(Arc::new(msg));
    }

    fn set_winner(&self, st: &mut HubState, w: Option<PlayerId>, tick: u64) -> bool {
        if st.winner.is_some() {
            return false;
        }
        st.winner = Some(w);
        st.final_tick = Some(tick);
        st.over_at = Some(Instant::now());
        true
    }

    /// Sends every player's standing to spectators when the match has moved on by
    /// `PLAYERS_STATS_EVERY` ticks since the last (or ended).
    pub fn send_players_stats(&self) {
        let mut st = self.lock();
        let Some(tick) = st.tick else {
            return;
        };
        let due = match &st.stats {
            None => true,
            Some((at, _)) => {
                tick / PLAYERS_STATS_EVERY > at / PLAYERS_STATS_EVERY
                    || (st.winner.is_some() && tick > *at)
            }
        };
        if !due {
            return;
        }
        let text: Utf8Bytes =
            crate::score::players_stats(tick, &st.tally, &self.rules, st.entities.values())
                .to_json()
                .into();
        st.stats = Some((tick, text.clone()));
        drop(st);
        self.send(HubMsg::Spectators(text));
    }

    /// True when the match is over and its score is still to be computed: the economy
    /// has folded the final tick (its last step is in the log), or it has been waited
    /// for `SCORE_ECONOMY_WAIT`.
    fn score_due(&self) -> bool {
        let st = self.lock();
        if st.score.is_some() {
            return false;
        }
        match (st.final_tick, st.over_at) {
            (Some(t), Some(at)) => {
                st.eco_tick.is_some_and(|e| e >= t) || at.elapsed() >= SCORE_ECONOMY_WAIT
            }
            _ => false,
        }
    }

    /// Records the score (or that it cannot be had) and sends it to everyone.
    fn set_score(&self, text: Option<Utf8Bytes>) {
        self.lock().score = Some(text.clone());
        if let Some(t) = text {
            self.send(HubMsg::Public(t));
        }
    }

    /// Folds one historical tick into the standings only (a starting hub's backfill).
    fn fold_tick_history(&self, tc: &TickCommitted) {
        self.lock().tally.game_events(tc.tick, &tc.events);
    }

    /// Folds one view frame and broadcasts its per-audience forms.
    pub fn apply_view(&self, frame: &ViewFrame) {
        let mut st = self.lock();
        let built = Arc::new(self.build_frame(&st, frame));
        if frame.kind == ViewKind::Keyframe {
            // A keyframe lists every cell holding tiberium; the others hold none.
            st.tiberium.clear();
        }
        for t in &frame.tiberium {
            if t.bails == 0 {
                st.tiberium.remove(&(t.cell.x, t.cell.y));
            } else {
                st.tiberium.insert((t.cell.x, t.cell.y), (t.bails, t.blue));
            }
        }
        if frame.kind == ViewKind::Keyframe {
            st.entities.clear();
        }
        for e in &frame.entities {
            st.entities.insert(e.id, e.clone());
        }
        for (id, _) in &frame.removed {
            st.entities.remove(id);
        }
        st.tick = Some(frame.tick);
        st.ring.push_back(built.clone());
        while st.ring.len() > RESUME_WINDOW_TICKS {
            st.ring.pop_front();
        }
        let game_over = match frame.winner {
            Some(w) => self.set_winner(&mut st, w, frame.tick),
            None => false,
        };
        drop(st);
        self.send(HubMsg::Frame(built));
        if game_over {
            self.announce_winner(frame.winner.flatten());
        }
    }

    fn announce_winner(&self, winner: Option<PlayerId>) {
        let text = ServerMsg::GameOver {
            winner: winner.map(|p| p.0),
        }
        .to_json();
        self.send(HubMsg::Public(text.into()));
    }

    fn build_frame(&self, st: &HubState, frame: &ViewFrame) -> Frame {
        let build = |aud: Audience| -> Utf8Bytes {
            audience_msg(&st.entities, frame, aud).to_json().into()
        };
        let mut players: [Option<Utf8Bytes>; MAX_PLAYERS] = Default::default();
        for (i, slot) in players.iter_mut().enumerate() {
            if self.humans[i] {
                *slot = Some(build(Audience::Player(PlayerId(i as u8))));
            }
        }
        Frame {
            tick: frame.tick,
            spectator: build(Audience::Spectator),
            players,
        }
    }

    /// Folds one tick's outcome events: rejections, defeats, the end of the match.
    pub fn apply_tick(&self, tc: &TickCommitted) {
        self.lock().tally.game_events(tc.tick, &tc.events);
        for ev in &tc.events {
            match ev {
                GameEvent::CommandRejected {
                    command,
                    player: Some(p),
                    reason,
                } => self.send(HubMsg::Rejected {
                    player: *p,
                    command: *command,
                    code: convert::reject_code(reason),
                    message: reason.to_string(),
                }),
                GameEvent::SpawnFailed {
                    command,
                    player,
                    kind,
                    reason,
                } => self.send(HubMsg::Rejected {
                    player: *player,
                    command: *command,
                    code: convert::reject_code(reason),
                    message: format!(
                        "{} could not leave the factory ({reason}); refunded",
                        kind.name()
                    ),
                }),
                GameEvent::PlacementFailed {
                    owner,
                    kind,
                    request,
                    reason,
                } if *request != 0 => self.send(HubMsg::Placement {
                    player: *owner,
                    building: *kind,
                    failed: Some(placement_message(reason)),
                }),
                GameEvent::BuildingPlaced {
                    owner,
                    kind,
                    request,
                    ..
                } if *request != 0 => self.send(HubMsg::Placement {
                    player: *owner,
                    building: *kind,
                    failed: None,
                }),
                GameEvent::PlayerDefeated { player } => {
                    let text = ServerMsg::Event {
                        kind: "player_defeated".into(),
                        player: Some(player.0),
                    }
                    .to_json();
                    self.send(HubMsg::Public(text.into()));
                }
                GameEvent::MatchWon { winner } => {
                    let fresh = {
                        let mut st = self.lock();
                        self.set_winner(&mut st, *winner, tc.tick)
                    };
                    if fresh {
                        self.announce_winner(*winner);
                    }
                }
                _ => {}
            }
        }
    }

    /// Folds one economy step: ledgers of the players it touched, and rejections.
    pub fn apply_eco(&self, step: &EconomyStepCommitted, broadcast: bool) {
        let mut touched: Vec<u8> = Vec::new();
        let mut rejected = Vec::new();
        {
            let mut st = self.lock();
            st.tally.ledger_events(&step.events);
            st.eco_tick = Some(step.tick);
            for ev in &step.events {
                let p = match ev {
                    LedgerEvent::CreditsChanged {
                        player, balance, ..
                    } => {
                        st.ledgers.entry(player.0).or_default().credits = *balance;
                        player.0
                    }
                    LedgerEvent::QueueChanged {
                        player,
                        queue,
                        state,
                    } => {
                        let l = st.ledgers.entry(player.0).or_default();
                        let slot = match queue {
                            QueueKind::Buildings => &mut l.buildings,
                            QueueKind::Infantry => &mut l.infantry,
                            QueueKind::Vehicles => &mut l.vehicles,
                        };
                        *slot = state.as_ref().map(convert::queue_state);
                        player.0
                    }
                    LedgerEvent::PowerChanged {
                        player,
                        output,
                        consumption,
                        speed_pct,
                    } => {
                        let l = st.ledgers.entry(player.0).or_default();
                        l.power_output = *output;
                        l.power_consumption = *consumption;
                        l.low_power = consumption > output;
                        // Logs from before the speed was recorded carry 0.
                        l.production_speed_pct = if *speed_pct == 0 { 100 } else { *speed_pct };
                        player.0
                    }
                    LedgerEvent::RepairChanged {
                        player,
                        building,
                        on,
                    } => {
                        let l = st.ledgers.entry(player.0).or_default();
                        l.repairing.retain(|b| *b != building.0);
                        if *on {
                            l.repairing.push(building.0);
                            l.repairing.sort_unstable();
                        }
                        player.0
                    }
                    LedgerEvent::CommandRejected {
                        command,
                        player: Some(p),
                        reason,
                    } => {
                        rejected.push(HubMsg::Rejected {
                            player: *p,
                            command: *command,
                            code: convert::reject_code(reason),
                            message: reason.to_string(),
                        });
                        continue;
                    }
                    LedgerEvent::CommandRejected { player: None, .. } => continue,
                };
                if !touched.contains(&p) {
                    touched.push(p);
                }
            }
            if !broadcast {
                return;
            }
            for p in &touched {
                if self.humans.get(usize::from(*p)).copied().unwrap_or(false) {
                    let text = ledger_text(st.ledgers.get(p).cloned().unwrap_or_default());
                    rejected.push(HubMsg::Ledger {
                        player: PlayerId(*p),
                        text,
                    });
                }
            }
        }
        for msg in rejected {
            self.send(msg);
        }
    }
}

/// One view frame as `aud` may see it; `known` is the picture before the frame (to tell
/// which entities just left the audience's vision).
fn audience_msg(
    known: &BTreeMap<UnitId, EntityView>,
    frame: &ViewFrame,
    aud: Audience,
) -> ServerMsg {
    match frame.kind {
        ViewKind::Keyframe => {
            // The keyframe's entity and tiberium lists replace the client's.
            let tib: BTreeMap<(u16, u16), (u8, bool)> = frame
                .tiberium
                .iter()
                .filter(|t| t.bails > 0)
                .map(|t| ((t.cell.x, t.cell.y), (t.bails, t.blue)))
                .collect();
            ServerMsg::Keyframe(Keyframe {
                tick: frame.tick,
                entities: frame
                    .entities
                    .iter()
                    .filter(|e| aud.sees(e.visible_to))
                    .map(convert::entity)
                    .collect(),
                tiberium: tiberium_list(&tib),
                game_over: frame.winner.is_some(),
                winner: frame.winner.flatten().map(|p| p.0),
            })
        }
        ViewKind::Delta => {
            let mut entities = Vec::new();
            let mut hidden = Vec::new();
            for e in &frame.entities {
                if aud.sees(e.visible_to) {
                    entities.push(convert::entity(e));
                } else if known.get(&e.id).is_some_and(|old| aud.sees(old.visible_to)) {
                    hidden.push(e.id.0);
                }
            }
            let mut removed = Vec::new();
            for (id, mask) in &frame.removed {
                if aud.sees(*mask) {
                    removed.push(id.0);
                } else if known.get(id).is_some_and(|old| aud.sees(old.visible_to)) {
                    hidden.push(id.0);
                }
            }
            ServerMsg::Delta(Delta {
                tick: frame.tick,
                entities,
                hidden,
                removed,
                tiberium: frame.tiberium.iter().map(convert::tiberium).collect(),
                attacks: frame
                    .attacks
                    .iter()
                    .filter(|a| aud.sees(a.visible_to))
                    .map(convert::attack)
                    .collect(),
                deaths: frame
                    .deaths
                    .iter()
                    .filter(|d| aud.sees(d.visible_to))
                    .map(convert::death)
                    .collect(),
                game_over: frame.winner.is_some(),
                winner: frame.winner.flatten().map(|p| p.0),
            })
        }
    }
}

/// A view frame as a spectator sees it (everything), for replays.
pub fn spectator_frame(frame: &ViewFrame) -> ServerMsg {
    audience_msg(&BTreeMap::new(), frame, Audience::Spectator)
}

fn ledger_text(l: WireLedger) -> Utf8Bytes {
    ServerMsg::Ledger(l).to_json().into()
}

fn tiberium_list(t: &BTreeMap<(u16, u16), (u8, bool)>) -> Vec<WireTiberium> {
    t.iter()
        .map(|(&(x, y), &(b, blue))| [x, y, u16::from(b), u16::from(blue)])
        .collect()
}

fn keyframe(st: &HubState, aud: Audience, tick: u64) -> Keyframe {
    Keyframe {
        tick,
        entities: st
            .entities
            .values()
            .filter(|e| aud.sees(e.visible_to))
            .map(convert::entity)
            .collect(),
        tiberium: tiberium_list(&st.tiberium),
        game_over: st.winner.is_some(),
        winner: st.winner.flatten().map(|p| p.0),
    }
}

/// The hubs of one gateway instance, by match.
pub struct Hubs<B: Bus> {
    bus: B,
    keys: Keys,
    hubs: Mutex<HashMap<MatchId, Arc<Hub>>>,
    shutdown: watch::Receiver<bool>,
    /// Held by every hub task; the gateway waits for all clones to drop on shutdown.
    done: mpsc::Sender<()>,
}

impl<B: Bus> Hubs<B> {
    pub fn new(
        bus: B,
        keys: Keys,
        shutdown: watch::Receiver<bool>,
        done: mpsc::Sender<()>,
    ) -> Self {
        Self {
            bus,
            keys,
            hubs: Mutex::new(HashMap::new()),
            shutdown,
            done,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<MatchId, Arc<Hub>>> {
        self.hubs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The running hub of a match, if any.
    pub fn get(&self, m: &MatchId) -> Option<Arc<Hub>> {
        self.lock().get(m).cloned()
    }

    /// Number of running hubs.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Subscribes to a match's running hub, if this instance has one.
    pub fn subscribe_existing(
        &self,
        m: &MatchId,
    ) -> Option<(Arc<Hub>, broadcast::Receiver<Arc<HubMsg>>)> {
        let map = self.lock();
        let h = map.get(m)?;
        Some((h.clone(), h.subscribe()))
    }

    /// Subscribes to a match's hub, starting it (with `make`) when this instance has none.
    /// Subscribing under the registry lock means a hub never stops between being found
    /// and being subscribed to.
    pub fn subscribe(
        self: &Arc<Self>,
        m: &MatchId,
        make: impl FnOnce() -> Hub,
    ) -> (Arc<Hub>, broadcast::Receiver<Arc<HubMsg>>) {
        let mut map = self.lock();
        if let Some(h) = map.get(m) {
            let rx = h.subscribe();
            return (h.clone(), rx);
        }
        let hub = Arc::new(make());
        let rx = hub.subscribe();
        map.insert(m.clone(), hub.clone());
        metrics::gauge!(m::HUBS).set(map.len() as f64);
        drop(map);
        let this = self.clone();
        let task_hub = hub.clone();
        let done = self.done.clone();
        tokio::spawn(async move {
            let _done = done;
            this.run_hub(task_hub).await;
        });
        (hub, rx)
    }

    /// Removes the hub if nobody is subscribed; true when it was removed.
    fn remove_if_idle(&self, hub: &Arc<Hub>) -> bool {
        let mut map = self.lock();
        if hub.tx.receiver_count() > 0 {
            return false;
        }
        if map.get(&hub.match_id).is_some_and(|h| Arc::ptr_eq(h, hub)) {
            map.remove(&hub.match_id);
        }
        metrics::gauge!(m::HUBS).set(map.len() as f64);
        true
    }

    fn remove(&self, hub: &Arc<Hub>) {
        let mut map = self.lock();
        if map.get(&hub.match_id).is_some_and(|h| Arc::ptr_eq(h, hub)) {
            map.remove(&hub.match_id);
        }
        metrics::gauge!(m::HUBS).set(map.len() as f64);
    }

    async fn run_hub(&self, hub: Arc<Hub>) {
        let mut shutdown = self.shutdown.clone();
        tracing::debug!(match_id = %hub.match_id, "hub starting");
        let cursors = loop {
            match self.backfill(&hub).await {
                Ok(c) => break c,
                Err(e) => {
                    metrics::counter!(m::BUS_ERRORS).increment(1);
                    tracing::warn!(match_id = %hub.match_id, error = %e, "hub backfill failed; retrying");
                    if sleep_or_shutdown(&mut shutdown, crate::limits::HUB_RETRY_AFTER).await {
                        self.remove(&hub);
                        return;
                    }
                }
            }
        };
        hub.ready.send_replace(true);
        let (mut view_at, mut tick_at, mut eco_at) = cursors;
        let mut idle_since: Option<Instant> = None;
        let view_key = self.keys.view(&hub.match_id);
        let tick_key = self.keys.tick(&hub.match_id);
        let eco_key = self.keys.eco(&hub.match_id);
        loop {
            if *shutdown.borrow() {
                break;
            }
            if hub.tx.receiver_count() == 0 {
                let since = *idle_since.get_or_insert_with(Instant::now);
                // An ended match has nothing more to read (spectating it replays it).
                let ended = hub.winner().is_some();
                if (ended || since.elapsed() >= HUB_IDLE_TIMEOUT) && self.remove_if_idle(&hub) {
                    break;
                }
            } else {
                idle_since = None;
            }
            let step = async {
                let views = self
                    .bus
                    .read_after(&view_key, view_at, HUB_READ_BATCH, Some(HUB_BLOCK))
                    .await?;
                for e in &views {
                    view_at = e.id;
                    match decode::<ViewFrame>(&e.payload) {
                        Ok(env) => {
                            let lag = now_ms().saturating_sub(env.sent_ms);
                            metrics::histogram!(m::VIEW_LAG_SECONDS).record(lag as f64 / 1000.0);
                            hub.apply_view(&env.body);
                        }
                        Err(err) => undecodable(&view_key, e.id, &err),
                    }
                }
                let ticks = self
                    .bus
                    .read_after(&tick_key, tick_at, HUB_READ_BATCH, None)
                    .await?;
                for e in &ticks {
                    tick_at = e.id;
                    match decode::<TickCommitted>(&e.payload) {
                        Ok(env) => hub.apply_tick(&env.body),
                        Err(err) => undecodable(&tick_key, e.id, &err),
                    }
                }
                let ecos = self
                    .bus
                    .read_after(&eco_key, eco_at, HUB_READ_BATCH, None)
                    .await?;
                for e in &ecos {
                    eco_at = e.id;
                    match decode::<EconomyStepCommitted>(&e.payload) {
                        Ok(env) => hub.apply_eco(&env.body, true),
                        Err(err) => undecodable(&eco_key, e.id, &err),
                    }
                }
                Ok::<_, events::BusError>(())
            };
            let res = tokio::select! {
                r = step => r,
                _ = shutdown.changed() => break,
            };
            if let Err(e) = res {
                metrics::counter!(m::BUS_ERRORS).increment(1);
                tracing::warn!(match_id = %hub.match_id, error = %e, "hub read failed; retrying");
                if sleep_or_shutdown(&mut shutdown, crate::limits::HUB_RETRY_AFTER).await {
                    break;
                }
                continue;
            }
            hub.send_players_stats();
            if hub.score_due() {
                let scored = tokio::select! {
                    r = crate::score::score_from_bus(&self.bus, &self.keys, &hub.match_id) => r,
                    _ = shutdown.changed() => break,
                };
                match scored {
                    Ok(msg) => hub.set_score(Some(msg.to_json().into())),
                    Err(e) => {
                        tracing::warn!(match_id = %hub.match_id, error = %e, "no score: the log cannot be read");
                        hub.set_score(None);
                    }
                }
            }
        }
        self.remove(&hub);
        tracing::debug!(match_id = %hub.match_id, "hub stopped");
    }

    /// Reads the match's history: the newest keyframe and the deltas after it, and the
    /// whole economy log (for ledgers). Returns the cursors to tail from.
    async fn backfill(
        &self,
        hub: &Hub,
    ) -> Result<(StreamId, StreamId, StreamId), events::BusError> {
        let view_key = self.keys.view(&hub.match_id);
        let newest = self.bus.rev_range(&view_key, HUB_BACKFILL_MAX).await?;
        let view_at = newest.first().map(|e| e.id).unwrap_or(StreamId::ZERO);
        let mut frames: Vec<ViewFrame> = Vec::new();
        for e in &newest {
            match decode::<ViewFrame>(&e.payload) {
                Ok(env) => {
                    let key = env.body.kind == ViewKind::Keyframe;
                    frames.push(env.body);
                    if key {
                        break;
                    }
                }
                Err(err) => undecodable(&view_key, e.id, &err),
            }
        }
        for f in frames.iter().rev() {
            hub.apply_view(f);
        }
        let eco_key = self.keys.eco(&hub.match_id);
        let mut eco_at = StreamId::ZERO;
        let mut folded = 0usize;
        loop {
            let batch = self
                .bus
                .read_after(&eco_key, eco_at, crate::limits::HUB_BACKFILL_PAGE, None)
                .await?;
            if batch.is_empty() {
                break;
            }
            for e in &batch {
                eco_at = e.id;
                if let Ok(env) = decode::<EconomyStepCommitted>(&e.payload) {
                    hub.apply_eco(&env.body, false);
                }
            }
            folded += batch.len();
            if folded >= HUB_ECO_BACKFILL_MAX {
                tracing::warn!(match_id = %hub.match_id, "economy backfill cut short");
                if let Some(last) = self.bus.last_id(&eco_key).await? {
                    eco_at = last;
                }
                break;
            }
        }
        // The tick history, for the players' standings (kills, losses, harvest).
        let tick_key = self.keys.tick(&hub.match_id);
        let mut tick_at = StreamId::ZERO;
        let mut folded = 0usize;
        loop {
            let batch = self.bus.read_after(&tick_key, tick_at, 1000, None).await?;
            if batch.is_empty() {
                break;
            }
            for e in &batch {
                tick_at = e.id;
                if let Ok(env) = decode::<TickCommitted>(&e.payload) {
                    hub.fold_tick_history(&env.body);
                }
            }
            folded += batch.len();
            if folded >= HUB_TICK_BACKFILL_MAX {
                tracing::warn!(match_id = %hub.match_id, "tick backfill cut short");
                if let Some(last) = self.bus.last_id(&tick_key).await? {
                    tick_at = last;
                }
                break;
            }
        }
        Ok((view_at, tick_at, eco_at))
    }
}

fn undecodable(stream: &str, id: StreamId, err: &events::DecodeError) {
    // The gateway only reads these streams; their writers dead-letter bad entries, so a
    // reader that cannot decode one counts it and moves on.
    metrics::counter!(m::UNDECODABLE).increment(1);
    tracing::warn!(stream, %id, error = %err, "skipping undecodable entry");
}

/// Sleeps; true when shutdown began meanwhile.
async fn sleep_or_shutdown(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}
