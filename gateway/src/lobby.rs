//! The lobby: creates matches (a `MatchCreated` on the matches stream starts one), keeps
//! an index of the matches stream for listing, and hands out player tokens.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use engine::Rules;
use events::{
    decode, encode, Bus, BusError, Command, Difficulty, Envelope, IdSpec, Keys, MapSpec,
    MatchCreated, MatchEnded, MatchEvent, MatchId, PlayerId, PlayerKind, PlayerSlot, Scenario,
    Source, StreamId,
};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::convert;
use crate::limits::{
    ABANDONED_CHECK_EVERY, DEFAULT_BATTLE_UNITS_PER_SIDE, MAX_INDEXED_MATCHES, MAX_LISTED_MATCHES,
};
use crate::token::TokenSigner;
use crate::wire::{CreateMatch, Created, JoinMatch, MatchList, MatchSummary, TokenGrant};

/// Why a lobby request failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum LobbyError {
    /// The request itself is wrong (400).
    #[error("{0}")]
    BadRequest(String),
    /// No such match (404).
    #[error("no match {0}")]
    NotFound(String),
    /// The slot is taken or not a human slot (409).
    #[error("{0}")]
    Conflict(String),
    /// The bus failed (503).
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    /// Something on our side broke (500).
    #[error("{0}")]
    Internal(String),
}

struct Record {
    created: Arc<MatchCreated>,
    created_ms: u64,
    order: StreamId,
    ended: Option<MatchEnded>,
    /// Where the first `MatchEnded` of the match stands on the matches stream.
    ended_order: StreamId,
}

#[derive(Default)]
struct Index {
    last_id: StreamId,
    matches: BTreeMap<MatchId, Record>,
    claimed: HashSet<(MatchId, u8)>,
}

/// The lobby of one gateway instance. Its index is rebuilt from the matches stream, so
/// instances agree on what exists; slot claims are per instance (see `docs/protocol.md`).
pub struct Lobby<B: Bus> {
    bus: B,
    keys: Keys,
    rules: Arc<Rules>,
    signer: TokenSigner,
    index: Mutex<Index>,
    /// Player sessions on this instance, by match and slot.
    seats: Arc<Mutex<HashMap<(MatchId, u8), Seat>>>,
    /// Recorded matches listed and replayed: the last this many to end (all if `None`).
    kept_recordings: Option<usize>,
}

/// A human slot as this instance sees it: its sessions, and since when it has none.
#[derive(Debug, Clone, Copy)]
struct Seat {
    sessions: usize,
    empty_since: Instant,
    /// The gateway appended this player's `Surrender` for abandoning the match.
    surrendered: bool,
}

/// Counts one player session for [`Lobby::watch_abandoned`] while it lives.
pub struct Seated {
    seats: Arc<Mutex<HashMap<(MatchId, u8), Seat>>>,
    key: (MatchId, u8),
}

impl Drop for Seated {
    fn drop(&mut self) {
        let mut seats = self.seats.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = seats.get_mut(&self.key) {
            s.sessions = s.sessions.saturating_sub(1);
            if s.sessions == 0 {
                s.empty_since = Instant::now();
            }
        }
    }
}

impl<B: Bus> Lobby<B> {
    pub fn new(bus: B, keys: Keys, rules: Arc<Rules>, signer: TokenSigner) -> Self {
        Self {
            bus,
            keys,
            rules,
            signer,
            index: Mutex::new(Index::default()),
            seats: Arc::new(Mutex::new(HashMap::new())),
            kept_recordings: None,
        }
    }

    /// Lists and replays only the last `kept` recorded matches to end (where older
    /// recordings are dropped from the bus, as in embedded mode).
    pub fn with_kept_recordings(mut self, kept: Option<usize>) -> Self {
        self.kept_recordings = kept;
        self
    }

    /// Counts a session of `player` in `m` until the returned guard drops.
    pub fn seat(&self, m: &MatchId, player: PlayerId) -> Seated {
        let key = (m.clone(), player.0);
        let mut seats = self.seats.lock().unwrap_or_else(|p| p.into_inner());
        seats
            .entry(key.clone())
            .or_insert(Seat {
                sessions: 0,
                empty_since: Instant::now(),
                surrendered: false,
            })
            .sessions += 1;
        Seated {
            seats: self.seats.clone(),
            key,
        }
    }

    /// Ends abandoned matches against the AI until `shutdown`: every
    /// [`ABANDONED_CHECK_EVERY`] (or a quarter of `after`, if shorter) it looks at the live
    /// matches with a human and an AI slot, and for a human slot that has had no session on
    /// this instance for `after` (counted from when this instance first saw the match
    /// without one) appends that player's `Surrender`, which the engine plays out as its
    /// defeat. Session counts are per instance, so this runs only where one instance serves
    /// every session of its matches (embedded mode).
    pub async fn watch_abandoned(&self, after: Duration, mut shutdown: watch::Receiver<bool>) {
        let every = ABANDONED_CHECK_EVERY
            .min(after / 4)
            .max(Duration::from_millis(10));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.end_abandoned(after).await {
                tracing::warn!(error = %e, "checking for abandoned matches failed");
            }
        }
    }

    /// One pass of [`Lobby::watch_abandoned`]; returns the surrenders it appended.
    pub async fn end_abandoned(&self, after: Duration) -> Result<usize, LobbyError> {
        self.refresh().await?;
        let now = Instant::now();
        let mut due: Vec<(MatchId, PlayerId)> = Vec::new();
        {
            let idx = self.lock();
            let mut seats = self.seats.lock().unwrap_or_else(|p| p.into_inner());
            // Matches that ended (or left the index) need no seats.
            seats.retain(|(m, _), _| idx.matches.get(m).is_some_and(|r| r.ended.is_none()));
            for (m, r) in &idx.matches {
                let players = &r.created.players;
                let vs_ai = players.iter().any(|p| p.kind == PlayerKind::Human)
                    && players.iter().any(|p| matches!(p.kind, PlayerKind::Ai(_)));
                if r.ended.is_some() || !vs_ai {
                    continue;
                }
                for p in players.iter().filter(|p| p.kind == PlayerKind::Human) {
                    let seat = seats.entry((m.clone(), p.id.0)).or_insert(Seat {
                        sessions: 0,
                        empty_since: now,
                        surrendered: false,
                    });
                    if seat.sessions == 0
                        && !seat.surrendered
                        && now.duration_since(seat.empty_since) >= after
                    {
                        due.push((m.clone(), p.id));
                    }
                }
            }
        }
        for (m, p) in &due {
            let env = Envelope::new(
                m.clone(),
                Source::Player(*p),
                Command::Surrender(events::cmd::Surrender {}),
            );
            let bytes = encode(&env).map_err(|e| LobbyError::Internal(e.to_string()))?;
            self.bus
                .append(&self.keys.cmd(m), IdSpec::Auto, &bytes, None)
                .await?;
            let mut seats = self.seats.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(seat) = seats.get_mut(&(m.clone(), p.0)) {
                seat.surrendered = true;
            }
            drop(seats);
            tracing::info!(match_id = %m, player = p.0, "abandoned match: the player surrenders");
        }
        Ok(due.len())
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    /// Reads new entries of the matches stream into the index.
    pub async fn refresh(&self) -> Result<(), BusError> {
        let stream = self.keys.matches();
        loop {
            let after = self.lock().last_id;
            let batch = self.bus.read_after(&stream, after, 500, None).await?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut idx = self.lock();
            for e in &batch {
                if e.id <= idx.last_id {
                    continue;
                }
                idx.last_id = e.id;
                let Ok(env) = decode::<MatchEvent>(&e.payload) else {
                    metrics::counter!(crate::metrics::UNDECODABLE).increment(1);
                    continue;
                };
                match env.body {
                    MatchEvent::MatchCreated(c) => {
                        idx.matches.entry(c.match_id.clone()).or_insert(Record {
                            created: Arc::new(c),
                            created_ms: env.sent_ms,
                            order: e.id,
                            ended: None,
                            ended_order: StreamId::ZERO,
                        });
                    }
                    MatchEvent::MatchEnded(end) => {
                        if let Some(r) = idx.matches.get_mut(&end.match_id) {
                            if r.ended.is_none() {
                                r.ended = Some(end);
                                r.ended_order = e.id;
                            }
                        }
                    }
                }
            }
            evict(&mut idx);
        }
    }

    /// The `MatchCreated` of a match, refreshing the index once if it is not known yet.
    pub async fn created(&self, m: &MatchId) -> Result<Arc<MatchCreated>, LobbyError> {
        if let Some(r) = self.lock().matches.get(m) {
            return Ok(r.created.clone());
        }
        self.refresh().await?;
        self.lock()
            .matches
            .get(m)
            .map(|r| r.created.clone())
            .ok_or_else(|| LobbyError::NotFound(m.to_string()))
    }

    /// Live and recorded matches, newest first.
    pub async fn list(&self) -> Result<MatchList, LobbyError> {
        self.refresh().await?;
        let idx = self.lock();
        let mut all: Vec<&Record> = idx.matches.values().collect();
        all.sort_by_key(|r| std::cmp::Reverse(r.order));
        let live = all
            .iter()
            .filter(|r| r.ended.is_none())
            .take(MAX_LISTED_MATCHES)
            .map(|r| summary(r, &idx.claimed))
            .collect();
        let dropped = dropped_recordings(&idx, self.kept_recordings);
        let recorded = all
            .iter()
            .filter(|r| r.ended.is_some() && !dropped.contains(&r.created.match_id))
            .take(MAX_LISTED_MATCHES)
            .map(|r| summary(r, &idx.claimed))
            .collect();
        Ok(MatchList { live, recorded })
    }

    /// One match's summary (read anew while the index holds it as live: it may have
    /// ended since, and spectating an ended match replays it).
    pub async fn get(&self, m: &MatchId) -> Result<MatchSummary, LobbyError> {
        self.created(m).await?;
        let live = self
            .lock()
            .matches
            .get(m)
            .is_some_and(|r| r.ended.is_none());
        if live {
            self.refresh().await?;
        }
        let idx = self.lock();
        if dropped_recordings(&idx, self.kept_recordings).contains(m) {
            return Err(LobbyError::NotFound(format!(
                "{m}: its recording is no longer kept"
            )));
        }
        idx.matches
            .get(m)
            .map(|r| summary(r, &idx.claimed))
            .ok_or_else(|| LobbyError::NotFound(m.to_string()))
    }

    /// Creates a match; the creator gets a token for the first human slot, if any.
    pub async fn create(&self, req: &CreateMatch) -> Result<Created, LobbyError> {
        let difficulty = match req.difficulty.as_deref() {
            None => Difficulty::Normal,
            Some(d) => d
                .parse::<Difficulty>()
                .map_err(|e| LobbyError::BadRequest(e.to_string()))?,
        };
        let size = req.map_size.unwrap_or(self.rules.map.default_size);
        if !(self.rules.map.min_size..=self.rules.map.max_size).contains(&size) {
            return Err(LobbyError::BadRequest(format!(
                "map size must lie within {}-{}",
                self.rules.map.min_size, self.rules.map.max_size
            )));
        }
        let battle_units = battle_units(req)?;
        let name = req
            .name
            .as_deref()
            .map(|n| n.chars().filter(|c| !c.is_control()).take(24).collect())
            .filter(|n: &String| !n.trim().is_empty())
            .unwrap_or_else(|| "Commander".to_string());
        let ai = |id: u8, label: &str| PlayerSlot {
            id: PlayerId(id),
            name: format!("{label} ({})", difficulty.name()),
            kind: PlayerKind::Ai(difficulty),
        };
        let human = |id: u8, name: String| PlayerSlot {
            id: PlayerId(id),
            name,
            kind: PlayerKind::Human,
        };
        let players = match req.mode.as_str() {
            "vs_ai" => vec![human(0, name), ai(1, "AI")],
            "two_players" => vec![human(0, name), human(1, "Player 2".to_string())],
            "ai_vs_ai" => vec![ai(0, "AI Red"), ai(1, "AI Blue")],
            "battle" => vec![
                human(0, "Red army".to_string()),
                human(1, "Blue army".to_string()),
            ],
            other => {
                return Err(LobbyError::BadRequest(format!(
                    "unknown mode {other:?}: expected vs_ai, two_players, ai_vs_ai or battle"
                )))
            }
        };
        let seed = req.seed.unwrap_or_else(rand::random);
        let match_id = MatchId::generate();
        let created = MatchCreated {
            match_id: match_id.clone(),
            seed,
            map: MapSpec { size, seed },
            players,
            tick_hz: self.rules.tick_hz,
            // The engine builds a battle from this when it picks the match up.
            scenario: match battle_units {
                Some(units_per_side) => Scenario::Battle { units_per_side },
                None => Scenario::Skirmish,
            },
        };
        // What the engine checks before it builds the match (a battle's size for its map):
        // refused here, it is a 400 rather than a match that never starts.
        engine::scenario::check(&created).map_err(|e| LobbyError::BadRequest(e.to_string()))?;
        let env = Envelope::new(
            match_id.clone(),
            Source::System,
            MatchEvent::MatchCreated(created),
        );
        let bytes = encode(&env).map_err(|e| LobbyError::BadRequest(e.to_string()))?;
        self.bus
            .append(&self.keys.matches(), IdSpec::Auto, &bytes, None)
            .await?;
        metrics::counter!(crate::metrics::MATCHES_CREATED, "mode" => req.mode.clone()).increment(1);
        self.refresh().await?;
        let grant = match self.join(&match_id, &JoinMatch::default()).await {
            Ok(g) => Some(g),
            Err(LobbyError::Conflict(_)) => None,
            Err(e) => return Err(e),
        };
        let summary = self.get(&match_id).await?;
        Ok(Created {
            match_id: match_id.to_string(),
            summary,
            grant,
        })
    }

    /// Claims a human slot (the requested one, or the first open one) and signs a token.
    pub async fn join(&self, m: &MatchId, req: &JoinMatch) -> Result<TokenGrant, LobbyError> {
        let created = self.created(m).await?;
        let mut idx = self.lock();
        if idx.matches.get(m).is_some_and(|r| r.ended.is_some()) {
            return Err(LobbyError::Conflict("the match is over".into()));
        }
        let open: Vec<u8> = created
            .players
            .iter()
            .filter(|p| p.kind == PlayerKind::Human)
            .map(|p| p.id.0)
            .filter(|id| !idx.claimed.contains(&(m.clone(), *id)))
            .collect();
        let slot = match req.player {
            Some(p) if open.contains(&p) => p,
            Some(p) => {
                return Err(LobbyError::Conflict(format!(
                    "player slot {p} is not an open human slot"
                )))
            }
            None => *open
                .first()
                .ok_or_else(|| LobbyError::Conflict("no open human slot".into()))?,
        };
        idx.claimed.insert((m.clone(), slot));
        drop(idx);
        let (token, expires_ms) = self.signer.issue(m, PlayerId(slot));
        Ok(TokenGrant {
            match_id: m.to_string(),
            player: slot,
            token,
            expires_ms,
        })
    }
}

/// The units per side of a `battle` request, `None` for the other modes. Their number is
/// checked with the rest of the `MatchCreated` ([`Lobby::create`]).
fn battle_units(req: &CreateMatch) -> Result<Option<u32>, LobbyError> {
    if req.mode != "battle" {
        return match req.units {
            Some(_) => Err(LobbyError::BadRequest(
                "units applies to the battle mode only".into(),
            )),
            None => Ok(None),
        };
    }
    Ok(Some(req.units.unwrap_or(DEFAULT_BATTLE_UNITS_PER_SIDE)))
}

fn summary(r: &Record, claimed: &HashSet<(MatchId, u8)>) -> MatchSummary {
    let c = &r.created;
    MatchSummary {
        match_id: c.match_id.to_string(),
        created_ms: r.created_ms,
        map_size: c.map.size,
        seed: c.seed,
        players: c.players.iter().map(convert::player).collect(),
        status: if r.ended.is_some() { "ended" } else { "live" }.to_string(),
        winner: r.ended.as_ref().and_then(|e| e.winner.map(|p| p.0)),
        ended_tick: r.ended.as_ref().map(|e| e.tick),
        open_slots: c
            .players
            .iter()
            .filter(|p| p.kind == PlayerKind::Human)
            .map(|p| p.id.0)
            .filter(|id| !claimed.contains(&(c.match_id.clone(), *id)))
            .collect(),
    }
}

/// Keeps the index bounded: drops the oldest ended matches first, then the oldest.
fn evict(idx: &mut Index) {
    while idx.matches.len() > MAX_INDEXED_MATCHES {
        let victim = idx
            .matches
            .iter()
            .filter(|(_, r)| r.ended.is_some())
            .min_by_key(|(_, r)| r.order)
            .or_else(|| idx.matches.iter().min_by_key(|(_, r)| r.order))
            .map(|(k, _)| k.clone());
        let Some(k) = victim else { break };
        idx.matches.remove(&k);
        idx.claimed.retain(|(m, _)| m != &k);
    }
}

/// The ended matches beyond the last `kept` to end: their recordings are gone.
fn dropped_recordings(idx: &Index, kept: Option<usize>) -> BTreeSet<MatchId> {
    let Some(kept) = kept else {
        return BTreeSet::new();
    };
    let mut ended: Vec<&Record> = idx.matches.values().filter(|r| r.ended.is_some()).collect();
    ended.sort_by_key(|r| std::cmp::Reverse(r.ended_order));
    ended
        .into_iter()
        .skip(kept)
        .map(|r| r.created.match_id.clone())
        .collect()
}
