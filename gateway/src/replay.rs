//! Replays of recorded matches: the match's durable log is loaded from the bus and re-run
//! with the replay tool's `Playback` (the view stream is a capped projection, so a replay
//! regenerates it), paced by the session at the match's tick rate times a speed factor.
//!
//! Seeks restore the nearest engine state and re-run from it: the match's `seek` stream
//! holds one every `SEEK_STATE_EVERY` ticks, so a first seek re-runs at most that many.
//! A log without those states (written before the engine kept them) holds only the last
//! few snapshots, and a first seek would re-run the match from its start: opening such a
//! replay starts the seek index build (`Seeker::index_all`, one state every
//! `seek::DEFAULT_INTERVAL` ticks) on a blocking task. Playback starts at once; seeks use
//! the states built so far (or wait for the indexer when it will get there first), and
//! closing the replay stops the build and any seek still re-running.
//!
//! Loads and index builds hold one of the gateway's `REPLAY_LOADS_AT_ONCE` permits while
//! they run; a replay opened when none is free is refused with [`ReplayError::Busy`].

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use engine::Rules;
use events::{Bus, EntityView, Keys, MatchId, UnitId, ViewFrame, ViewKind};
use replay_tool::progress::NoProgress;
use replay_tool::seek::IndexCancel;
use replay_tool::stats::LogTally;
use replay_tool::{Playback, Recording};
use tokio::sync::Semaphore;

use crate::limits::{PLAYERS_STATS_EVERY, REPLAY_LOADS_AT_ONCE};
use crate::wire::ServerMsg;

/// Slowest and fastest replay speed factors.
pub const MIN_SPEED: f64 = 0.25;
pub const MAX_SPEED: f64 = 16.0;

/// Why a replay cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The log could not be read or re-run.
    #[error("replay: {0}")]
    Log(String),
    /// The blocking re-run task died.
    #[error("replay task failed: {0}")]
    Task(String),
    /// Every replay load permit of this gateway is taken.
    #[error(
        "this gateway is loading {REPLAY_LOADS_AT_ONCE} replays already (the most at once); \
         try again shortly"
    )]
    Busy,
}

/// A recorded match being watched by one session.
pub struct Replay {
    pub match_id: MatchId,
    playback: Option<Playback>,
    pub last_tick: u64,
    /// The earliest tick a seek can show (a battle's log starts after its base state).
    first_position: u64,
    pub tick_hz: u32,
    pub playing: bool,
    pub speed: f64,
    pub ended: bool,
    position: Option<u64>,
    /// Stops the background index build when the replay is closed.
    index: IndexCancel,
    rec: Arc<Recording>,
    rules: Arc<Rules>,
    /// The players' standings, folded from the log up to the tick shown.
    tally: LogTally,
    /// The entities shown (for the army values).
    entities: BTreeMap<UnitId, EntityView>,
    /// The score, once computed.
    score: Option<ServerMsg>,
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.index.cancel();
    }
}

impl Replay {
    /// Loads a match's log from the bus, holding one of `loads`' permits (none free:
    /// [`ReplayError::Busy`] at once) until the log is loaded or, when one is started,
    /// until the background index build ends.
    pub async fn load<B: Bus>(
        bus: &B,
        keys: &Keys,
        rules: Arc<Rules>,
        m: &MatchId,
        tick_hz: u32,
        loads: &Arc<Semaphore>,
    ) -> Result<Self, ReplayError> {
        let permit = loads
            .clone()
            .try_acquire_owned()
            .map_err(|_| ReplayError::Busy)?;
        let rec = replay_tool::bus::load(bus, keys, m)
            .await
            .map_err(|e| ReplayError::Log(e.to_string()))?;
        let rec = Arc::new(rec);
        let tally = LogTally::new(&rec.log);
        let playback = Playback::new(rec.clone(), rules.clone());
        let last_tick = playback.last_tick().unwrap_or(0);
        let first_position = playback.first_position();
        let mut indexer = playback.indexer();
        let index = indexer.cancel_handle();
        if playback.wants_background_index() {
            let id = m.clone();
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                if let Err(e) = indexer.index_all(&NoProgress) {
                    // Seeks still work (re-running from the nearest state they have).
                    tracing::warn!(match_id = %id, error = %e, "replay seek index not built");
                }
            });
        }
        Ok(Self {
            match_id: m.clone(),
            playback: Some(playback),
            last_tick,
            first_position,
            tick_hz: tick_hz.max(1),
            playing: true,
            speed: 1.0,
            ended: false,
            position: None,
            index,
            rec,
            rules,
            tally,
            entities: BTreeMap::new(),
            score: None,
        })
    }

    /// Runs `f` on the playback off the async workers (re-running ticks is CPU work).
    async fn with_playback<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Playback) -> replay_tool::Result<T> + Send + 'static,
    ) -> Result<T, ReplayError> {
        let mut pb = self
            .playback
            .take()
            .ok_or_else(|| ReplayError::Task("playback lost by an earlier failure".into()))?;
        let (pb, res) = tokio::task::spawn_blocking(move || {
            let r = f(&mut pb);
            (pb, r)
        })
        .await
        .map_err(|e| ReplayError::Task(e.to_string()))?;
        self.position = pb.position();
        self.playback = Some(pb);
        res.map_err(|e| ReplayError::Log(e.to_string()))
    }

    /// The next tick's frame, or `None` at the end of the recording.
    pub async fn next(&mut self) -> Result<Option<ViewFrame>, ReplayError> {
        let frame = self.with_playback(|pb| pb.next_frame()).await?;
        match &frame {
            Some(f) => self.fold(f),
            None => {
                self.ended = true;
                self.playing = false;
            }
        }
        Ok(frame)
    }

    /// Jumps to just after `tick` (clamped to the recording) and returns its keyframe.
    pub async fn seek(&mut self, tick: u64) -> Result<ViewFrame, ReplayError> {
        let tick = tick.min(self.last_tick).max(self.first_position);
        let frame = self.with_playback(move |pb| pb.seek(tick)).await?;
        self.ended = false;
        self.fold(&frame);
        Ok(frame)
    }

    /// Folds a frame shown into the entities the army values count.
    fn fold(&mut self, f: &ViewFrame) {
        if f.kind == ViewKind::Keyframe {
            self.entities.clear();
        }
        for e in &f.entities {
            self.entities.insert(e.id, e.clone());
        }
        for (id, _) in &f.removed {
            self.entities.remove(id);
        }
    }

    /// Whether the standings are due with the frame of `tick`.
    pub fn stats_due(&self, tick: u64) -> bool {
        tick.is_multiple_of(PLAYERS_STATS_EVERY) || tick >= self.last_tick
    }

    /// Every player's standing as of `tick` (the log folded up to it).
    pub fn players_stats(&mut self, tick: u64) -> ServerMsg {
        let tally = self.tally.advance_to(&self.rec.log, tick);
        crate::score::players_stats(tick, tally, &self.rules, self.entities.values())
    }

    /// The match's score (computed once, off the async workers).
    pub async fn score(&mut self) -> Result<ServerMsg, ReplayError> {
        if let Some(s) = &self.score {
            return Ok(s.clone());
        }
        let rec = self.rec.clone();
        let s = tokio::task::spawn_blocking(move || {
            crate::score::score(&replay_tool::stats::stats(&rec))
        })
        .await
        .map_err(|e| ReplayError::Task(e.to_string()))?;
        self.score = Some(s.clone());
        Ok(s)
    }

    /// True while the seek index is still being built.
    pub fn indexing(&self) -> bool {
        self.index.running()
    }

    /// Time between two frames at the current speed.
    pub fn period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / (f64::from(self.tick_hz) * self.speed))
    }

    pub fn set_speed(&mut self, speed: f64) {
        if speed.is_finite() {
            self.speed = speed.clamp(MIN_SPEED, MAX_SPEED);
        }
    }

    /// Where the replay stands, for the client's controls.
    pub fn state(&self) -> ServerMsg {
        ServerMsg::ReplayState {
            playing: self.playing,
            speed: self.speed,
            tick: self.position,
            last_tick: self.last_tick,
        }
    }
}

#[cfg(test)]
mod tests {
    use events::{MatchCreated, MemoryBus};
    use replay_tool::record::{RecordConfig, Recorder};

    use super::*;

    /// A short recorded match on `bus`.
    async fn recorded(bus: &MemoryBus, keys: &Keys, rules: &Arc<Rules>) -> MatchId {
        let setup = MatchCreated::humans(MatchId::new("replay-loads").expect("id"), 2, 32, 3);
        let mut r = Recorder::new(rules.clone(), &setup, RecordConfig::default()).expect("rec");
        for _ in 0..40 {
            r.step().expect("step");
        }
        let rec = r.finish().expect("recording");
        replay_tool::bus::import(bus, keys, &rec, &Default::default())
            .await
            .expect("import");
        rec.match_id
    }

    #[tokio::test]
    async fn a_replay_opened_with_every_load_permit_taken_is_refused_as_busy() {
        let bus = MemoryBus::new();
        let keys = Keys::new("t");
        let rules = Arc::new(Rules::standard());
        let m = recorded(&bus, &keys, &rules).await;
        let loads = Arc::new(Semaphore::new(1));

        let held = loads.clone().try_acquire_owned().expect("the one permit");
        match Replay::load(&bus, &keys, rules.clone(), &m, 20, &loads).await {
            Err(e @ ReplayError::Busy) => {
                assert!(e.to_string().contains("try again"), "{e}");
            }
            Err(e) => panic!("refused for another reason: {e}"),
            Ok(_) => panic!("loaded without a permit"),
        }
        drop(held);

        let replay = match Replay::load(&bus, &keys, rules.clone(), &m, 20, &loads).await {
            Ok(r) => r,
            Err(e) => panic!("a free permit loads it: {e}"),
        };
        assert_eq!(replay.last_tick, 39);
        assert!(!replay.indexing(), "a short log needs no index build");
        assert_eq!(
            loads.available_permits(),
            1,
            "the load gave its permit back"
        );

        // A failed load gives it back too.
        let unknown = MatchId::new("no-such-match").expect("id");
        assert!(Replay::load(&bus, &keys, rules, &unknown, 20, &loads)
            .await
            .is_err());
        assert_eq!(loads.available_permits(), 1);
    }
}
