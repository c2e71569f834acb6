//! Fast seeks into a recording: the state (or a keyframe) after any tick, restored from the
//! nearest snapshot and re-run forward.
//!
//! A live match keeps only its last few snapshots, so the seeker builds its own index of
//! in-memory snapshots, one every [`Seeker::interval`] ticks, as it steps through the log
//! (on [`Seeker::index_all`], or as seeks and playback pass by). After that, any seek
//! re-runs at most one interval.

use std::collections::BTreeMap;
use std::sync::Arc;

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

/// Seeks one service's state; `M` is [`EngineRun`] or [`crate::rerun::EconomyRun`].
pub struct Seeker<M: Machine> {
    rec: Arc<Recording>,
    rules: Arc<Rules>,
    /// Snapshot bytes by the tick they are after.
    index: BTreeMap<u64, Arc<Vec<u8>>>,
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
            // Checked when used: one that fails to restore is dropped then.
            for p in &rec.streams.seek_index {
                index
                    .entry(p.tick)
                    .or_insert_with(|| Arc::new(p.state.clone()));
            }
        }
        Self {
            rec,
            rules,
            index,
            interval: DEFAULT_INTERVAL,
            mismatch: None,
            _m: std::marker::PhantomData,
        }
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
    pub fn snapshots(&self) -> impl Iterator<Item = (u64, &Arc<Vec<u8>>)> {
        self.index.iter().map(|(t, s)| (*t, s))
    }

    /// Snapshots held (recorded and built).
    pub fn indexed(&self) -> usize {
        self.index.len()
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
        if tick > last {
            return Err(Error::TickOutOfRange { asked: tick, last });
        }
        let mut m = self.start_before(tick)?;
        self.advance(&mut m, tick)?;
        Ok(m)
    }

    /// A machine restored from the nearest indexed snapshot at or before `tick` (or fresh).
    fn start_before(&mut self, tick: u64) -> Result<M> {
        // Walk back past snapshots that fail to restore (they are then dropped).
        loop {
            let Some((&t, bytes)) = self.index.range(..=tick).next_back() else {
                return M::fresh(&self.rules, &self.rec.log);
            };
            match M::restore_bytes(&self.rules, bytes, t) {
                Ok(m) => return Ok(m),
                Err(_) => {
                    self.index.remove(&t);
                }
            }
        }
    }

    /// Steps `m` until it has run tick `tick`, indexing snapshots on the way.
    pub fn advance(&mut self, m: &mut M, tick: u64) -> Result<()> {
        while m.next_tick() <= tick {
            self.step(m)?;
        }
        Ok(())
    }

    /// Runs one tick, indexing a snapshot on interval boundaries not yet held.
    pub fn step(&mut self, m: &mut M) -> Result<crate::rerun::Stepped> {
        let s = m.step(&self.rec.log, None)?;
        if !s.matches() && self.mismatch.is_none_or(|t| s.tick < t) {
            self.mismatch = Some(s.tick);
        }
        if s.tick > 0 && s.tick.is_multiple_of(self.interval) && !self.index.contains_key(&s.tick) {
            self.index.insert(s.tick, Arc::new(m.snapshot()));
        }
        Ok(s)
    }

    /// Steps through the log once, so later seeks anywhere are fast: from the first
    /// interval boundary not yet indexed to the last one.
    pub fn index_all(&mut self, progress: &dyn Progress) -> Result<()> {
        let Some(last) = self.last_tick() else {
            return Ok(());
        };
        let every = self.interval;
        let end = last / every * every;
        let Some(first_missing) = (1..=last / every)
            .map(|k| k * every)
            .find(|t| !self.index.contains_key(t))
        else {
            return Ok(());
        };
        let mut m = self.start_before(first_missing - 1)?;
        progress.begin("index", end + 1 - m.next_tick());
        let mut n = 0u64;
        while m.next_tick() <= end {
            self.step(&mut m)?;
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
            None => EngineRun::fresh(self.seeker.rules(), &self.seeker.recording().log)?,
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
        self.index.entry(tick).or_insert(snap);
    }
}
