//! Fast seeks into a recording: the state (or a keyframe) after any tick, restored from the
//! nearest snapshot and re-run forward.
//!
//! A live match keeps only its last few snapshots, so the seeker builds its own index of
//! in-memory snapshots, one every [`Seeker::interval`] ticks, as it steps through the log
//! (on [`Seeker::index_all`], or as seeks and playback pass by). After that, any seek
//! re-runs at most one interval.
//!
//! The index is shared: [`Seeker::share`] gives a second seeker over the same index, which
//! a background thread runs [`Seeker::index_all`] on (the gateway does this as soon as a
//! replay is opened; see [`Playback::indexer`]). A seek beyond what is indexed so far
//! waits for that indexer when it is already past the seek's own starting point (it
//! reaches the target sooner than a second re-run would, and does not compete with one
//! for a core), and otherwise re-runs from the nearest state it has.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use engine::Rules;
use events::ViewFrame;

use crate::error::{Error, Result};
use crate::progress::{Progress, REPORT_EVERY};
use crate::recording::Recording;
use crate::rerun::{EngineRun, Machine};

/// Default ticks between in-memory snapshots: at a few tens of microseconds per tick,
/// a seek re-runs at most this many (a few tens of milliseconds), and the index of a
/// 30-minute match holds ~120 snapshots.
pub const DEFAULT_INTERVAL: u64 = 300;

/// The index seekers share: snapshot bytes by the tick they are after, and where a
/// background [`Seeker::index_all`] stands.
#[derive(Default)]
struct Shared {
    inner: Mutex<Inner>,
    /// Signalled whenever the index grows or an indexer stops.
    changed: Condvar,
    /// Asks a running `index_all` to stop.
    cancel: AtomicBool,
}

#[derive(Default)]
struct Inner {
    states: BTreeMap<u64, Arc<Vec<u8>>>,
    /// While an `index_all` runs: the tick it runs next, and the last boundary it indexes.
    indexer: Option<(u64, u64)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking holder leaves a map that is still a valid index.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Clears the indexer's mark however `index_all` ends (error or panic included), so
/// waiting seeks stop waiting.
struct IndexerMark(Arc<Shared>);

impl Drop for IndexerMark {
    fn drop(&mut self) {
        self.0.lock().indexer = None;
        self.0.changed.notify_all();
    }
}

/// Stops a background [`Seeker::index_all`] over a shared index (e.g. when the replay's
/// viewer leaves), and any seek waiting or re-running on that index.
#[derive(Clone)]
pub struct IndexCancel(Arc<Shared>);

impl IndexCancel {
    /// For good: an `index_all` on this index then stops (returning `Ok`), and seeks
    /// through any seeker sharing it fail with [`Error::Cancelled`] instead of waiting or
    /// re-running.
    pub fn cancel(&self) {
        self.0.cancel.store(true, Ordering::Relaxed);
    }

    /// True while an `index_all` runs on this index.
    pub fn running(&self) -> bool {
        self.0.lock().indexer.is_some()
    }

    /// Snapshots held so far.
    pub fn indexed(&self) -> usize {
        self.0.lock().states.len()
    }
}

/// A replay viewer builds its own seek index in the background when the log's states
/// leave a seek more than this many ticks to re-run (two of the engine's seek intervals).
pub const BACKGROUND_INDEX_IF_GAP_OVER: u64 = 2 * events::keys::SEEK_STATE_EVERY;

/// Seeks one service's state; `M` is [`EngineRun`] or [`crate::rerun::EconomyRun`].
pub struct Seeker<M: Machine> {
    rec: Arc<Recording>,
    rules: Arc<Rules>,
    /// Snapshot bytes by the tick they are after (shared with [`Seeker::share`]s).
    index: Arc<Shared>,
    interval: u64,
    /// The first tick whose re-run hash differed from the log's, if any was seen.
    mismatch: Option<u64>,
    _m: std::marker::PhantomData<fn() -> M>,
}

impl<M: Machine> Seeker<M> {
    /// A seeker over a recording, seeded with its snapshots that restore to their hash.
    pub fn new(rec: Arc<Recording>, rules: Arc<Rules>) -> Self {
        let mut index = BTreeMap::new();
        for s in rec.log.snaps_of(M::SERVICE) {
            if M::restore(&rules, s).is_ok() {
                index.insert(s.tick, s.state.clone());
            }
        }
        if M::SERVICE == crate::Service::Engine {
            // Checked when used: one that fails to restore to the log's hash is dropped
            // then.
            for s in &rec.log.seek {
                index.entry(s.tick).or_insert_with(|| s.state.clone());
            }
            for p in &rec.streams.seek_index {
                index
                    .entry(p.tick)
                    .or_insert_with(|| Arc::new(p.state.clone()));
            }
        }
        Self {
            rec,
            rules,
            index: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    states: index,
                    indexer: None,
                }),
                ..Shared::default()
            }),
            interval: DEFAULT_INTERVAL,
            mismatch: None,
            _m: std::marker::PhantomData,
        }
    }

    /// A second seeker over the same recording and the same index (same interval), e.g.
    /// to run [`Seeker::index_all`] on another thread while this one seeks.
    pub fn share(&self) -> Self {
        Self {
            rec: self.rec.clone(),
            rules: self.rules.clone(),
            index: self.index.clone(),
            interval: self.interval,
            mismatch: None,
            _m: std::marker::PhantomData,
        }
    }

    /// A handle that stops an `index_all` running on this index.
    pub fn cancel_handle(&self) -> IndexCancel {
        IndexCancel(self.index.clone())
    }

    /// Sets the ticks between in-memory snapshots (at least 1).
    pub fn with_interval(mut self, every: u64) -> Self {
        self.interval = every.max(1);
        self
    }

    pub fn interval(&self) -> u64 {
        self.interval
    }

    pub fn recording(&self) -> &Arc<Recording> {
        &self.rec
    }

    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    /// The snapshots held, by the tick they are after.
    pub fn snapshots(&self) -> Vec<(u64, Arc<Vec<u8>>)> {
        self.index
            .lock()
            .states
            .iter()
            .map(|(t, s)| (*t, s.clone()))
            .collect()
    }

    /// Snapshots held (recorded and built).
    pub fn indexed(&self) -> usize {
        self.index.lock().states.len()
    }

    /// The most ticks a seek may have to re-run with the states held now (the whole log
    /// when none is held).
    pub fn widest_gap(&self) -> u64 {
        let Some(last) = self.last_tick() else {
            return 0;
        };
        let g = self.index.lock();
        // The next tick a re-run would start at, from the latest state before it (a
        // fresh run starts at the log's first tick).
        let mut start = self.rec.log.first_tick;
        let mut widest = 0u64;
        for &t in g.states.keys().take_while(|&&t| t <= last) {
            widest = widest.max(t.saturating_sub(start));
            start = start.max(t.saturating_add(1));
        }
        widest.max(last.saturating_add(1).saturating_sub(start))
    }

    /// The first tick at which a re-run seen by this seeker disagreed with the log.
    pub fn mismatch(&self) -> Option<u64> {
        self.mismatch
    }

    /// The last tick of this service's log.
    pub fn last_tick(&self) -> Option<u64> {
        M::last_tick(&self.rec.log)
    }

    /// The state after tick `tick`.
    pub fn at(&mut self, tick: u64) -> Result<M> {
        let last = self.last_tick().ok_or(Error::TickOutOfRange {
            asked: tick,
            last: 0,
        })?;
        // A log that starts after a base state holds nothing before that state.
        if tick > last || tick.saturating_add(1) < self.rec.log.first_tick {
            return Err(Error::TickOutOfRange { asked: tick, last });
        }
        let mut m = self.start_before(tick)?;
        self.advance(&mut m, tick)?;
        Ok(m)
    }

    /// A machine restored from the nearest indexed snapshot at or before `tick` (or
    /// fresh), after waiting for a background indexer that will index a nearer one
    /// sooner than re-running from here would.
    fn start_before(&mut self, tick: u64) -> Result<M> {
        let boundary = tick / self.interval * self.interval;
        // Walk back past snapshots that fail to restore (they are then dropped).
        loop {
            let (t, bytes) = {
                let mut g = self.index.lock();
                loop {
                    if self.cancelled() {
                        return Err(Error::Cancelled);
                    }
                    let from = g.states.range(..=tick).next_back().map(|(t, _)| *t);
                    // The re-run would start at the tick after `from` (or at the first).
                    let start = from.map_or(self.rec.log.first_tick, |t| t.saturating_add(1));
                    let wait = match g.indexer {
                        // It runs `boundary` later, and is already past our start.
                        Some((next, end)) => {
                            start < next
                                && next <= boundary
                                && boundary <= end
                                && from.is_none_or(|f| boundary > f)
                        }
                        None => false,
                    };
                    if !wait {
                        break;
                    }
                    g = self
                        .index
                        .changed
                        .wait(g)
                        .unwrap_or_else(|p| p.into_inner());
                }
                match g.states.range(..=tick).next_back() {
                    Some((t, b)) => (*t, b.clone()),
                    None => {
                        drop(g);
                        let m = M::fresh(&self.rules, &self.rec.log)?;
                        // A start that took building (a battle's warm-up) is kept: later
                        // seeks restore it instead.
                        if let Some(t) = m.next_tick().checked_sub(1) {
                            self.insert(t, Arc::new(m.snapshot()));
                        }
                        return Ok(m);
                    }
                }
            };
            match M::restore_bytes(&self.rules, &bytes, t) {
                Ok(m)
                    if t.checked_add(1) == Some(m.next_tick())
                        && M::recorded_hash(&self.rec.log, t).is_none_or(|h| h == m.hash()) =>
                {
                    return Ok(m)
                }
                _ => {
                    self.index.lock().states.remove(&t);
                }
            }
        }
    }

    /// Steps `m` until it has run tick `tick`, indexing snapshots on the way; stops with
    /// [`Error::Cancelled`] once the index is cancelled.
    pub fn advance(&mut self, m: &mut M, tick: u64) -> Result<()> {
        while m.next_tick() <= tick {
            if self.cancelled() {
                return Err(Error::Cancelled);
            }
            self.step(m)?;
        }
        Ok(())
    }

    /// True once [`IndexCancel::cancel`] was called on this index.
    fn cancelled(&self) -> bool {
        self.index.cancel.load(Ordering::Relaxed)
    }

    /// Runs one tick, indexing a snapshot on interval boundaries not yet held.
    pub fn step(&mut self, m: &mut M) -> Result<crate::rerun::Stepped> {
        let s = m.step(&self.rec.log, None)?;
        if !s.matches() && self.mismatch.is_none_or(|t| s.tick < t) {
            self.mismatch = Some(s.tick);
        }
        if s.tick > 0 && s.tick.is_multiple_of(self.interval) {
            let held = self.index.lock().states.contains_key(&s.tick);
            if !held {
                let snap = Arc::new(m.snapshot());
                self.insert(s.tick, snap);
            }
        }
        Ok(s)
    }

    /// Steps through the log once, so later seeks anywhere are fast: from the first
    /// interval boundary not yet indexed to the last one. Seekers sharing the index see
    /// each state as soon as it is built; [`IndexCancel::cancel`] stops it early.
    pub fn index_all(&mut self, progress: &dyn Progress) -> Result<()> {
        let Some(last) = self.last_tick() else {
            return Ok(());
        };
        let every = self.interval;
        let end = last / every * every;
        // Boundaries a re-run reaches: from the log's first tick (a battle's log starts
        // after its base state) to the last. Their number follows the ticks the log holds.
        let first = self.rec.log.first_tick.max(1);
        let Some(first_missing) = ({
            let g = self.index.lock();
            (first.div_ceil(every)..=last / every)
                .map(|k| k * every)
                .find(|t| !g.states.contains_key(t))
        }) else {
            return Ok(());
        };
        let mut m = match self.start_before(first_missing - 1) {
            Err(Error::Cancelled) => return Ok(()),
            r => r?,
        };
        self.index.lock().indexer = Some((m.next_tick(), end));
        let _mark = IndexerMark(self.index.clone());
        progress.begin("index", end.saturating_add(1).saturating_sub(m.next_tick()));
        let mut n = 0u64;
        while m.next_tick() <= end {
            if self.cancelled() {
                break;
            }
            self.step(&mut m)?;
            if let Some((next, _)) = self.index.lock().indexer.as_mut() {
                *next = m.next_tick();
            }
            n += 1;
            if n.is_multiple_of(REPORT_EVERY) {
                progress.advance("index", REPORT_EVERY);
            }
        }
        progress.advance("index", n % REPORT_EVERY);
        progress.end("index");
        Ok(())
    }
}

/// The engine's seeker.
pub type EngineSeeker = Seeker<EngineRun>;

impl Seeker<EngineRun> {
    /// Every entity and all tiberium after tick `tick`.
    pub fn keyframe(&mut self, tick: u64) -> Result<ViewFrame> {
        Ok(self.at(tick)?.sim.keyframe())
    }
}

/// A replay being watched: a keyframe on every seek, then one delta per tick, the way a
/// live match's view stream looks. The caller paces it (play, pause, speed).
pub struct Playback {
    seeker: EngineSeeker,
    run: Option<EngineRun>,
}

impl Playback {
    pub fn new(rec: Arc<Recording>, rules: Arc<Rules>) -> Self {
        Self {
            seeker: Seeker::new(rec, rules),
            run: None,
        }
    }

    pub fn seeker(&mut self) -> &mut EngineSeeker {
        &mut self.seeker
    }

    /// True when the states the log holds leave some seek more than
    /// [`BACKGROUND_INDEX_IF_GAP_OVER`] ticks to re-run (a log without the engine's seek
    /// stream): then a viewer should build the index in the background ([`Playback::indexer`]).
    pub fn wants_background_index(&self) -> bool {
        self.seeker.widest_gap() > BACKGROUND_INDEX_IF_GAP_OVER
    }

    /// A seeker over this playback's index, to run [`Seeker::index_all`] on a background
    /// thread: seeks made meanwhile use every state it has built so far (and wait for it
    /// when it is nearer the target than their own starting point).
    pub fn indexer(&self) -> EngineSeeker {
        self.seeker.share()
    }

    /// The last tick shown, if any.
    pub fn position(&self) -> Option<u64> {
        self.run
            .as_ref()
            .and_then(|r| r.sim.next_tick().checked_sub(1))
    }

    /// The last tick of the recording.
    pub fn last_tick(&self) -> Option<u64> {
        self.seeker.last_tick()
    }

    /// The earliest tick a seek can show: 0, or a base state's tick.
    pub fn first_position(&self) -> u64 {
        self.seeker.recording().log.first_tick.saturating_sub(1)
    }

    /// Jumps to just after `tick`; returns the keyframe to show.
    pub fn seek(&mut self, tick: u64) -> Result<ViewFrame> {
        let run = self.seeker.at(tick)?;
        let frame = run.sim.keyframe();
        self.run = Some(run);
        Ok(frame)
    }

    /// The next tick's delta (the first call starts with tick 0's keyframe-sized delta);
    /// `None` at the end of the recording.
    pub fn next_frame(&mut self) -> Result<Option<ViewFrame>> {
        let Some(last) = self.seeker.last_tick() else {
            return Ok(None);
        };
        let mut run = match self.run.take() {
            Some(r) => r,
            // A log that starts after a base state (a battle's) starts through the seeker,
            // which restores that state if it is held rather than building it.
            None => match self.seeker.recording().log.first_tick.checked_sub(1) {
                Some(base) => self.seeker.at(base)?,
                None => EngineRun::fresh(self.seeker.rules(), &self.seeker.recording().log)?,
            },
        };
        if run.sim.next_tick() > last {
            self.run = Some(run);
            return Ok(None);
        }
        let t = run.sim.next_tick();
        let inputs = EngineRun::inputs_of(&self.seeker.recording().log, t)?;
        let out = run.sim.step(&inputs);
        if t > 0 && t.is_multiple_of(self.seeker.interval()) {
            // Same index as the seeker's own stepping: playing through a match makes
            // every later seek into the part watched fast.
            let snap = Arc::new(run.sim.snapshot());
            self.seeker.insert(t, snap);
        }
        self.run = Some(run);
        Ok(Some(out.view))
    }
}

impl<M: Machine> Seeker<M> {
    fn insert(&mut self, tick: u64, snap: Arc<Vec<u8>>) {
        self.index.lock().states.entry(tick).or_insert(snap);
        self.index.changed.notify_all();
    }
}

impl Recording {
    /// Re-runs the engine once and keeps its state every `every` ticks in
    /// [`Streams::seek_index`] (replacing any index held), for files whose seeks must be
    /// fast without a first pass. Returns the number of states kept.
    pub fn build_seek_index(
        &mut self,
        rules: &Arc<Rules>,
        every: u64,
        progress: &dyn Progress,
    ) -> Result<usize> {
        self.streams.seek_index.clear();
        if every == 0 {
            return Ok(0);
        }
        let recorded: std::collections::BTreeSet<u64> = self
            .log
            .snaps_of(crate::Service::Engine)
            .chain(&self.log.seek)
            .map(|s| s.tick)
            .collect();
        let mut seeker =
            EngineSeeker::new(Arc::new(self.clone()), rules.clone()).with_interval(every);
        seeker.index_all(progress)?;
        self.streams.seek_index = seeker
            .snapshots()
            .into_iter()
            .filter(|(t, _)| t.is_multiple_of(every) && !recorded.contains(t))
            .map(|(tick, state)| crate::recording::SeekPoint {
                tick,
                state: state.to_vec(),
            })
            .collect();
        Ok(self.streams.seek_index.len())
    }
}
