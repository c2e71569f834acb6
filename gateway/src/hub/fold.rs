//! The pure fold of a match hub: the match's `view`, `tick` and `eco` entries (decoded) in,
//! the messages for its sessions out, each view frame serialized once per audience
//! (spectators, and each human player with fog applied); plus the current picture a
//! joining or resuming session starts from. No bus, no tasks, no clock: the reader
//! (`reader.rs`) feeds it and `Hub` broadcasts what it returns.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use engine::Rules;
use events::{
    BuildingKind, EconomyStepCommitted, EntityView, GameEvent, LedgerEvent, MatchCreated, PlayerId,
    PlayerKind, QueueKind, RejectReason, TickCommitted, UnitId, ViewFrame, ViewKind, MAX_PLAYERS,
};
use replay_tool::stats::Tally;
use uuid::Uuid;

use crate::convert;
use crate::limits::{PLAYERS_STATS_EVERY, RESUME_WINDOW_TICKS};
use crate::wire::{Delta, Keyframe, ServerMsg, WireLedger, WireTiberium};

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

/// A match as its messages so far made it: the entities and tiberium of the newest view
/// frame, the winner, every player's ledger and standing, the recent frames for resuming
/// sessions, and the score once the match is over.
pub struct Fold {
    /// Human slots, by player id: only they get frames of their own.
    humans: [bool; MAX_PLAYERS],
    /// Unit costs for the army values of `players_stats`.
    rules: Arc<Rules>,
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
    /// The newest economy step folded.
    eco_tick: Option<u64>,
    /// The score message, once computed (or given up on: `Some(None)`).
    score: Option<Option<Utf8Bytes>>,
}

impl Fold {
    /// The fold of a match before its first entry; `initial_tiberium` is the generated
    /// map's tiberium and `starting_credits` every player's balance before the economy
    /// reports a change.
    pub fn new(
        created: &MatchCreated,
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
        Self {
            humans,
            rules,
            tick: None,
            entities: BTreeMap::new(),
            tiberium: initial_tiberium
                .iter()
                .map(|t| ((t[0], t[1]), (t[2] as u8, t[3] != 0)))
                .collect(),
            winner: None,
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
            ring: VecDeque::new(),
            tally: Tally::new(created.players.iter().map(|p| p.id), starting_credits),
            stats: None,
            final_tick: None,
            eco_tick: None,
            score: None,
        }
    }

    /// The current tick, if any frame has been seen.
    pub fn tick(&self) -> Option<u64> {
        self.tick
    }

    /// The winner, once the match is over.
    pub fn winner(&self) -> Option<Option<PlayerId>> {
        self.winner
    }

    /// The owner of a live entity, as of the last frame.
    pub fn owner_of(&self, id: UnitId) -> Option<PlayerId> {
        self.entities.get(&id).map(|e| e.owner)
    }

    /// The owner of a live entity and whether `viewer` sees it, as of the last frame.
    pub fn owner_and_sight(&self, id: UnitId, viewer: PlayerId) -> Option<(PlayerId, bool)> {
        self.entities
            .get(&id)
            .map(|e| (e.owner, Audience::Player(viewer).sees(e.visible_to)))
    }

    pub fn is_human(&self, p: PlayerId) -> bool {
        self.humans.get(usize::from(p.0)).copied().unwrap_or(false)
    }

    /// Where a session of `audience` starts: the deltas since `last_tick` when the fold
    /// still holds all of them, else a keyframe of the current state.
    pub fn start(&self, audience: Audience, last_tick: Option<u64>) -> Start {
        let mut extra = Vec::new();
        if audience == Audience::Spectator {
            extra.extend(self.stats.as_ref().map(|(_, t)| t.clone()));
        }
        extra.extend(self.score.clone().flatten());
        let ledger = match audience {
            Audience::Player(p) => Some(ledger_text(
                self.ledgers.get(&p.0).cloned().unwrap_or_default(),
            )),
            Audience::Spectator => None,
        };
        let Some(cur) = self.tick else {
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
                    && self
                        .ring
                        .front()
                        .is_some_and(|f| f.tick <= t.saturating_add(1)));
            if window_ok {
                let frames = self
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
        let kf = ServerMsg::Keyframe(keyframe(self, audience, cur)).to_json();
        Start {
            frames: vec![kf.into()],
            covered_tick: Some(cur),
            ledger,
            resumed: false,
            extra,
        }
    }

    /// Records the end of the match (the first word on it wins); true when it is news.
    fn set_winner(&mut self, w: Option<PlayerId>, tick: u64) -> bool {
        if self.winner.is_some() {
            return false;
        }
        self.winner = Some(w);
        self.final_tick = Some(tick);
        true
    }

    /// Every player's standing for spectators when the match has moved on by
    /// `PLAYERS_STATS_EVERY` ticks since the last (or ended).
    pub fn players_stats(&mut self) -> Option<HubMsg> {
        let tick = self.tick?;
        let due = match &self.stats {
            None => true,
            Some((at, _)) => {
                tick / PLAYERS_STATS_EVERY > at / PLAYERS_STATS_EVERY
                    || (self.winner.is_some() && tick > *at)
            }
        };
        if !due {
            return None;
        }
        let text: Utf8Bytes =
            crate::score::players_stats(tick, &self.tally, &self.rules, self.entities.values())
                .to_json()
                .into();
        self.stats = Some((tick, text.clone()));
        Some(HubMsg::Spectators(text))
    }

    /// The final tick while the match is over and its score still to be computed.
    pub fn score_pending(&self) -> Option<u64> {
        if self.score.is_some() {
            return None;
        }
        self.final_tick
    }

    /// True when the economy has folded `tick` (its step for it is in the log).
    pub fn economy_folded(&self, tick: u64) -> bool {
        self.eco_tick.is_some_and(|e| e >= tick)
    }

    /// Records the score (or that it cannot be had); the message for everyone.
    pub fn set_score(&mut self, text: Option<Utf8Bytes>) -> Option<HubMsg> {
        self.score = Some(text.clone());
        text.map(HubMsg::Public)
    }

    /// Folds one historical tick into the standings only (a starting hub's backfill).
    pub fn fold_tick_history(&mut self, tc: &TickCommitted) {
        self.tally.game_events(tc.tick, &tc.events);
    }

    /// Folds one view frame: its per-audience forms, and the end of the match if it
    /// tells it first.
    pub fn apply_view(&mut self, frame: &ViewFrame) -> Vec<HubMsg> {
        let built = Arc::new(self.build_frame(frame));
        if frame.kind == ViewKind::Keyframe {
            // A keyframe lists every cell holding tiberium; the others hold none.
            self.tiberium.clear();
        }
        for t in &frame.tiberium {
            if t.bails == 0 {
                self.tiberium.remove(&(t.cell.x, t.cell.y));
            } else {
                self.tiberium
                    .insert((t.cell.x, t.cell.y), (t.bails, t.blue));
            }
        }
        if frame.kind == ViewKind::Keyframe {
            self.entities.clear();
        }
        for e in &frame.entities {
            self.entities.insert(e.id, e.clone());
        }
        for (id, _) in &frame.removed {
            self.entities.remove(id);
        }
        self.tick = Some(frame.tick);
        self.ring.push_back(built.clone());
        while self.ring.len() > RESUME_WINDOW_TICKS {
            self.ring.pop_front();
        }
        let game_over = match frame.winner {
            Some(w) => self.set_winner(w, frame.tick),
            None => false,
        };
        let mut out = vec![HubMsg::Frame(built)];
        if game_over {
            out.push(game_over_msg(frame.winner.flatten()));
        }
        out
    }

    fn build_frame(&self, frame: &ViewFrame) -> Frame {
        let build = |aud: Audience| -> Utf8Bytes {
            audience_msg(&self.entities, frame, aud).to_json().into()
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
    pub fn apply_tick(&mut self, tc: &TickCommitted) -> Vec<HubMsg> {
        self.tally.game_events(tc.tick, &tc.events);
        let mut out = Vec::new();
        for ev in &tc.events {
            match ev {
                GameEvent::CommandRejected {
                    command,
                    player: Some(p),
                    reason,
                } => out.push(HubMsg::Rejected {
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
                } => out.push(HubMsg::Rejected {
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
                } if *request != 0 => out.push(HubMsg::Placement {
                    player: *owner,
                    building: *kind,
                    failed: Some(placement_message(reason)),
                }),
                GameEvent::BuildingPlaced {
                    owner,
                    kind,
                    request,
                    ..
                } if *request != 0 => out.push(HubMsg::Placement {
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
                    out.push(HubMsg::Public(text.into()));
                }
                GameEvent::MatchWon { winner } => {
                    let fresh = self.set_winner(*winner, tc.tick);
                    out.extend(fresh.then(|| game_over_msg(*winner)));
                }
                _ => {}
            }
        }
        out
    }

    /// Folds one economy step: ledgers of the players it touched, and rejections.
    /// With `broadcast` off (a starting hub's backfill) nothing is sent: no ledgers, no
    /// rejections.
    pub fn apply_eco(&mut self, step: &EconomyStepCommitted, broadcast: bool) -> Vec<HubMsg> {
        let mut touched: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        self.tally.ledger_events(&step.events);
        self.eco_tick = Some(step.tick);
        for ev in &step.events {
            let p = match ev {
                LedgerEvent::CreditsChanged {
                    player, balance, ..
                } => {
                    self.ledgers.entry(player.0).or_default().credits = *balance;
                    player.0
                }
                LedgerEvent::QueueChanged {
                    player,
                    queue,
                    state,
                } => {
                    let l = self.ledgers.entry(player.0).or_default();
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
                    let l = self.ledgers.entry(player.0).or_default();
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
                    let l = self.ledgers.entry(player.0).or_default();
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
                    out.push(HubMsg::Rejected {
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
            return Vec::new();
        }
        for p in &touched {
            if self.humans.get(usize::from(*p)).copied().unwrap_or(false) {
                let text = ledger_text(self.ledgers.get(p).cloned().unwrap_or_default());
                out.push(HubMsg::Ledger {
                    player: PlayerId(*p),
                    text,
                });
            }
        }
        out
    }
}

fn game_over_msg(winner: Option<PlayerId>) -> HubMsg {
    let text = ServerMsg::GameOver {
        winner: winner.map(|p| p.0),
    }
    .to_json();
    HubMsg::Public(text.into())
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

fn keyframe(fold: &Fold, aud: Audience, tick: u64) -> Keyframe {
    Keyframe {
        tick,
        entities: fold
            .entities
            .values()
            .filter(|e| aud.sees(e.visible_to))
            .map(convert::entity)
            .collect(),
        tiberium: tiberium_list(&fold.tiberium),
        game_over: fold.winner.is_some(),
        winner: fold.winner.flatten().map(|p| p.0),
    }
}

#[cfg(test)]
mod tests {
    use events::{EntityKind, MatchId, Pos, UnitKind};
    use serde_json::Value;

    use super::*;

    const P0: PlayerId = PlayerId(0);
    const P1: PlayerId = PlayerId(1);

    /// A match with a human P0, an AI P1 and a human P2.
    fn fold() -> Fold {
        let mut created = MatchCreated::humans(MatchId::new("m").unwrap(), 3, 32, 7);
        created.players[1].kind = PlayerKind::Ai(events::Difficulty::Easy);
        Fold::new(&created, &[], 5000, Arc::new(Rules::standard()))
    }

    fn unit(id: u32, owner: PlayerId, visible_to: u8) -> EntityView {
        EntityView {
            id: UnitId(id),
            owner,
            kind: EntityKind::Unit(UnitKind::Rifleman),
            pos: Pos { x: 100, y: 100 },
            facing: 0,
            hp: 50,
            max_hp: 50,
            cargo: 0,
            visible_to,
        }
    }

    fn frame(tick: u64, kind: ViewKind, entities: Vec<EntityView>) -> ViewFrame {
        ViewFrame {
            tick,
            kind,
            entities,
            removed: vec![],
            tiberium: vec![],
            winner: None,
            attacks: vec![],
            deaths: vec![],
        }
    }

    fn json(text: &Utf8Bytes) -> Value {
        serde_json::from_str(text.as_str()).unwrap()
    }

    fn ids(v: &Value, field: &str) -> Vec<u64> {
        v[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.get("id").unwrap_or(e).as_u64().unwrap())
            .collect()
    }

    fn the_frame(out: &[HubMsg]) -> &Frame {
        match out.first() {
            Some(HubMsg::Frame(f)) => f,
            other => panic!("expected a frame first, got {other:?}"),
        }
    }

    fn public_types(out: &[HubMsg]) -> Vec<String> {
        out.iter()
            .filter_map(|m| match m {
                HubMsg::Public(t) => Some(json(t)["t"].as_str().unwrap().to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn each_audience_sees_only_what_its_bit_allows_and_ai_slots_get_no_frame() {
        let mut f = fold();
        let out = f.apply_view(&frame(
            1,
            ViewKind::Keyframe,
            vec![unit(1, P0, 0b001), unit(2, P1, 0b011), unit(3, P1, 0b010)],
        ));
        let built = the_frame(&out);
        assert_eq!(built.tick, 1);
        assert_eq!(ids(&json(&built.spectator), "entities"), vec![1, 2, 3]);
        let p0 = json(built.for_audience(Audience::Player(P0)).unwrap());
        assert_eq!(p0["t"], "keyframe");
        assert_eq!(ids(&p0, "entities"), vec![1, 2]);
        assert!(
            built.for_audience(Audience::Player(P1)).is_none(),
            "AI slot"
        );
        let p2 = json(built.for_audience(Audience::Player(PlayerId(2))).unwrap());
        assert!(ids(&p2, "entities").is_empty());
        assert_eq!(f.owner_and_sight(UnitId(3), P0), Some((P1, false)));
        assert_eq!(f.owner_and_sight(UnitId(2), P0), Some((P1, true)));
    }

    #[test]
    fn an_entity_leaving_a_players_sight_is_hidden_and_a_removal_only_told_to_who_saw_it() {
        let mut f = fold();
        f.apply_view(&frame(
            1,
            ViewKind::Keyframe,
            vec![unit(2, P1, 0b011), unit(3, P1, 0b011)],
        ));
        let mut delta = frame(2, ViewKind::Delta, vec![unit(2, P1, 0b010)]);
        delta.removed = vec![(UnitId(3), 0b010)];
        let out = f.apply_view(&delta);
        let p0 = json(the_frame(&out).for_audience(Audience::Player(P0)).unwrap());
        assert_eq!(p0["t"], "delta");
        assert!(ids(&p0, "entities").is_empty());
        assert_eq!(ids(&p0, "hidden"), vec![2, 3]);
        assert!(ids(&p0, "removed").is_empty());
        let spectator = json(&the_frame(&out).spectator);
        assert_eq!(ids(&spectator, "entities"), vec![2]);
        assert_eq!(ids(&spectator, "removed"), vec![3]);
        assert_eq!(f.owner_of(UnitId(3)), None);
    }

    #[test]
    fn a_resume_within_the_window_gets_the_missed_deltas_else_a_keyframe() {
        let mut f = fold();
        assert!(f.start(Audience::Spectator, None).frames.is_empty());
        f.apply_view(&frame(1, ViewKind::Keyframe, vec![unit(1, P0, 0b001)]));
        for t in 2..=5 {
            f.apply_view(&frame(t, ViewKind::Delta, vec![]));
        }
        let resumed = f.start(Audience::Player(P0), Some(3));
        assert!(resumed.resumed);
        assert_eq!(resumed.covered_tick, Some(5));
        let ticks: Vec<u64> = resumed
            .frames
            .iter()
            .map(|t| json(t)["tick"].as_u64().unwrap())
            .collect();
        assert_eq!(ticks, vec![4, 5]);
        assert!(resumed.ledger.is_some(), "a player gets its ledger");
        for t in 6..6 + RESUME_WINDOW_TICKS as u64 {
            f.apply_view(&frame(t, ViewKind::Delta, vec![]));
        }
        let fresh = f.start(Audience::Spectator, Some(3));
        assert!(!fresh.resumed);
        assert_eq!(fresh.frames.len(), 1);
        let kf = json(&fresh.frames[0]);
        assert_eq!(kf["t"], "keyframe");
        assert_eq!(ids(&kf, "entities"), vec![1]);
        assert!(fresh.ledger.is_none(), "spectators have no ledger");
    }

    #[test]
    fn the_end_of_the_match_is_announced_once() {
        let mut f = fold();
        let mut last = frame(7, ViewKind::Delta, vec![]);
        last.winner = Some(Some(P0));
        let out = f.apply_view(&last);
        assert_eq!(public_types(&out), vec!["game_over"]);
        assert_eq!(f.winner(), Some(Some(P0)));
        assert_eq!(f.score_pending(), Some(7));
        let tc = TickCommitted {
            tick: 7,
            applied: vec![],
            events: vec![
                GameEvent::PlayerDefeated { player: P1 },
                GameEvent::MatchWon { winner: Some(P0) },
            ],
            hash: 0,
            dead_lettered: vec![],
        };
        let out = f.apply_tick(&tc);
        assert_eq!(public_types(&out), vec!["event"], "no second game_over");
        let score = f.set_score(Some(Utf8Bytes::from_static("{\"t\":\"score\"}")));
        assert!(matches!(score, Some(HubMsg::Public(_))));
        assert_eq!(f.score_pending(), None);
    }

    #[test]
    fn a_ledger_change_goes_to_its_human_player_and_a_backfill_sends_nothing() {
        let mut f = fold();
        let step = |tick, events| EconomyStepCommitted {
            tick,
            consumed: vec![],
            events,
            hash: 0,
        };
        let changed = |player, balance| LedgerEvent::CreditsChanged {
            player,
            delta: 0,
            balance,
        };
        assert!(f
            .apply_eco(&step(1, vec![changed(P0, 4000)]), false)
            .is_empty());
        assert!(f.economy_folded(1));
        let out = f.apply_eco(&step(2, vec![changed(P0, 3000), changed(P1, 10)]), true);
        let [HubMsg::Ledger { player, text }] = out.as_slice() else {
            panic!("one ledger, for the human: {out:?}");
        };
        assert_eq!(*player, P0);
        assert_eq!(json(text)["credits"], 3000);
        let start = f.start(Audience::Player(P0), None);
        assert_eq!(json(&start.ledger.unwrap())["credits"], 3000);
    }

    #[test]
    fn spectators_get_standings_every_few_ticks() {
        let mut f = fold();
        assert!(f.players_stats().is_none(), "no tick yet");
        f.apply_view(&frame(1, ViewKind::Keyframe, vec![]));
        assert!(matches!(f.players_stats(), Some(HubMsg::Spectators(_))));
        assert!(f.players_stats().is_none(), "not due again yet");
        f.apply_view(&frame(PLAYERS_STATS_EVERY, ViewKind::Delta, vec![]));
        assert!(f.players_stats().is_some());
        let start = f.start(Audience::Spectator, None);
        assert_eq!(start.extra.len(), 1, "the newest standings");
    }
}
