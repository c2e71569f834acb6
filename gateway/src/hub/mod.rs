//! Match hubs: one bus reader task per match per gateway instance. A hub folds the match's
//! `view`, `tick` and `eco` streams into the current picture, turns every view frame into
//! one pre-serialized frame per audience (spectators, and each human player with fog
//! applied), keeps a window of recent frames for resuming clients, and fans everything
//! out to its sessions over a bounded broadcast channel.
//!
//! The fold itself is pure (`fold.rs`: decoded entries in, messages out); the reader task
//! (`reader.rs`) feeds it from the bus; this file holds the `Hub` that shares a fold with
//! its sessions and broadcasts what it returns, and the registry of an instance's hubs.

pub mod fold;
mod reader;

pub use self::fold::{placement_message, spectator_frame, Audience, Frame, HubMsg, Start};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use engine::Rules;
use events::{
    Bus, EconomyStepCommitted, Keys, MatchCreated, MatchId, PlayerId, TickCommitted, UnitId,
    ViewFrame,
};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use self::fold::Fold;
use crate::limits::{HUB_CHANNEL_CAPACITY, SCORE_ECONOMY_WAIT};
use crate::metrics as m;
use crate::wire::{Welcome, WireTiberium};

/// A hub's fold and when the hub learnt of the end of the match (the score waits a
/// while for the economy's step).
struct Shared {
    fold: Fold,
    over_at: Option<Instant>,
}

/// One match as this gateway instance sees it.
pub struct Hub {
    pub match_id: MatchId,
    pub created: Arc<MatchCreated>,
    /// The parts of `welcome` that never change (map, rules, players).
    pub welcome: Arc<Welcome>,
    state: Mutex<Shared>,
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
        let fold = Fold::new(&created, initial_tiberium, starting_credits, rules);
        Self {
            match_id: created.match_id.clone(),
            created,
            welcome,
            state: Mutex::new(Shared {
                fold,
                over_at: None,
            }),
            tx: broadcast::channel(HUB_CHANNEL_CAPACITY).0,
            ready: watch::channel(false).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Every mutation under this lock is completed before it is released; a panic in
        // a reader cannot leave it half-applied, so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the fold and broadcasts the messages it returns (after the lock is
    /// released), noting when the match was seen to end.
    fn fold_and_send<T: IntoIterator<Item = HubMsg>>(&self, f: impl FnOnce(&mut Fold) -> T) {
        let out = {
            let mut st = self.lock();
            let out = f(&mut st.fold);
            if st.fold.winner().is_some() && st.over_at.is_none() {
                st.over_at = Some(Instant::now());
            }
            out
        };
        for msg in out {
            // No receivers is fine: nobody is watching right now.
            let _ = self.tx.send(Arc::new(msg));
        }
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
        self.lock().fold.tick()
    }

    /// The winner, once the match is over.
    pub fn winner(&self) -> Option<Option<PlayerId>> {
        self.lock().fold.winner()
    }

    /// The owner of a live entity, as of the last frame.
    pub fn owner_of(&self, id: UnitId) -> Option<PlayerId> {
        self.lock().fold.owner_of(id)
    }

    /// The owner of a live entity and whether `viewer` sees it, as of the last frame.
    pub fn owner_and_sight(&self, id: UnitId, viewer: PlayerId) -> Option<(PlayerId, bool)> {
        self.lock().fold.owner_and_sight(id, viewer)
    }

    pub fn is_human(&self, p: PlayerId) -> bool {
        self.lock().fold.is_human(p)
    }

    /// Where a session of `audience` starts: the deltas since `last_tick` when this hub
    /// still holds all of them, else a keyframe of the current state.
    pub fn start(&self, audience: Audience, last_tick: Option<u64>) -> Start {
        self.lock().fold.start(audience, last_tick)
    }

    /// Sends every player's standing to spectators when the match has moved on by
    /// `PLAYERS_STATS_EVERY` ticks since the last (or ended).
    pub fn send_players_stats(&self) {
        self.fold_and_send(Fold::players_stats);
    }

    /// True when the match is over and its score is still to be computed: the economy
    /// has folded the final tick (its last step is in the log), or it has been waited
    /// for `SCORE_ECONOMY_WAIT`.
    fn score_due(&self) -> bool {
        let st = self.lock();
        match (st.fold.score_pending(), st.over_at) {
            (Some(t), Some(at)) => st.fold.economy_folded(t) || at.elapsed() >= SCORE_ECONOMY_WAIT,
            _ => false,
        }
    }

    /// Records the score (or that it cannot be had) and sends it to everyone.
    fn set_score(&self, text: Option<axum::extract::ws::Utf8Bytes>) {
        self.fold_and_send(|f| f.set_score(text));
    }

    /// Folds one historical tick into the standings only (a starting hub's backfill).
    fn fold_tick_history(&self, tc: &TickCommitted) {
        self.lock().fold.fold_tick_history(tc);
    }

    /// Folds one view frame and broadcasts its per-audience forms.
    pub fn apply_view(&self, frame: &ViewFrame) {
        self.fold_and_send(|f| f.apply_view(frame));
    }

    /// Folds one tick's outcome events: rejections, defeats, the end of the match.
    pub fn apply_tick(&self, tc: &TickCommitted) {
        self.fold_and_send(|f| f.apply_tick(tc));
    }

    /// Folds one economy step: ledgers of the players it touched, and rejections
    /// (`broadcast` off: folded only, as a starting hub's backfill does).
    pub fn apply_eco(&self, step: &EconomyStepCommitted, broadcast: bool) {
        self.fold_and_send(|f| f.apply_eco(step, broadcast));
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
}
