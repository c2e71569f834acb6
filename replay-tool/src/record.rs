//! Records a match by running the engine, the economy and the AI players in process and
//! writing exactly the stream layout the services write (matches entry, `cmd` with
//! stream-assigned ids, `tick` and `eco` at `StreamId::for_tick(n)`, capped `snap`, the
//! engine's `seek` states at `StreamId::for_tick(n)`, a battle's built base state among
//! them). A battle is recorded from its setup's scenario, like the services run it.
//!
//! This is how tests, fixtures and benchmarks get real recordings without Redis or the
//! services; [`crate::bus::import`] puts one on a bus. A virtual clock (the match's tick
//! rate from a fixed origin) stands in for wall time, so the same setup and commands give
//! the same bytes every run.

use std::sync::Arc;

use engine::sim::{Input as SimInput, Sim};
use engine::Rules;
use events::{
    encode, Command, EconomyStepCommitted, Envelope, MatchCreated, MatchEnded, MatchEvent,
    PlayerId, PlayerKind, Snapshot, SnapshotOwner, Source, StreamId, TickCommitted, SCHEMA_VERSION,
};

use crate::error::{Error, Result};
use crate::progress::{Progress, REPORT_EVERY};
use crate::recording::{RawEntry, Recording, Streams};
use crate::stepper::{winner, Stack};

/// How the recorder writes.
#[derive(Clone, Debug)]
pub struct RecordConfig {
    /// Both services snapshot every this many ticks (the engine service's default).
    pub snapshot_every: u64,
    /// The snap stream keeps about this many entries (MAXLEN ~); `None` keeps all.
    pub snap_maxlen: Option<usize>,
    /// Virtual wall clock at tick 0, in ms since the Unix epoch.
    pub origin_ms: u64,
}

impl Default for RecordConfig {
    fn default() -> Self {
        Self {
            snapshot_every: 200,
            snap_maxlen: Some(16),
            origin_ms: 1_767_225_600_000,
        }
    }
}

/// Runs a match in process (a [`Stack`]) and records its streams.
pub struct Recorder {
    pub stack: Stack,
    config: RecordConfig,
    /// Commands appended since the last tick, in stream order.
    pending: Vec<SimInput>,
    streams: Streams,
    last_cmd: StreamId,
    last_snap: StreamId,
    uuids: u64,
    winner: Option<Option<PlayerId>>,
}

impl Recorder {
    /// A match with an AI for every `PlayerKind::Ai` slot.
    pub fn new(rules: Arc<Rules>, setup: &MatchCreated, config: RecordConfig) -> Result<Self> {
        let mut r = Self {
            stack: Stack::new(rules, setup)?,
            pending: Vec::new(),
            streams: Streams::default(),
            last_cmd: StreamId::ZERO,
            last_snap: StreamId::ZERO,
            uuids: 0,
            winner: None,
            config,
        };
        let created = r.envelope(Source::System, MatchEvent::MatchCreated(setup.clone()));
        r.streams.matches.push(RawEntry {
            id: StreamId::new(r.config.origin_ms, 0),
            payload: encode(&created)?,
        });
        // A start that took building (a battle's warm-up): the engine service keeps it in
        // the seek stream, under its tick's id.
        if let Some(base) = r.stack.sim.next_tick().checked_sub(1) {
            r.seek_state(base)?;
        }
        Ok(r)
    }

    /// Starts the match from a prepared engine state instead of its setup, before the
    /// first step: the layout of a battle created before `MatchCreated` carried its
    /// scenario (its lobby built it and wrote the state to the `snap` stream and, under its
    /// tick's id, to the `seek` stream: the base the log starts after, the first tick
    /// committed being the next one). For tests that such logs still replay.
    pub fn start_from(&mut self, sim: Sim) -> Result<()> {
        if !self.streams.tick.is_empty() {
            return Err(Error::Log("start_from after the first step".into()));
        }
        let Some(tick) = sim.next_tick().checked_sub(1) else {
            return Err(Error::Log("a base state has run at least one tick".into()));
        };
        self.stack.sim = sim;
        self.snapshot(SnapshotOwner::Engine, tick)?;
        self.seek_state(tick)
    }

    /// The tick the next [`Recorder::step`] runs.
    pub fn next_tick(&self) -> u64 {
        self.stack.sim.next_tick()
    }

    /// `Some(winner)` once the match is over.
    pub fn winner(&self) -> Option<Option<PlayerId>> {
        self.winner
    }

    /// The virtual wall clock now.
    fn now_ms(&self) -> u64 {
        let hz = u64::from(self.stack.setup.tick_hz.max(1));
        self.config.origin_ms + self.stack.sim.next_tick() * 1000 / hz
    }

    /// A time-ordered (v7-layout) event id from the virtual clock and a counter.
    fn uuid(&mut self) -> uuid::Uuid {
        self.uuids += 1;
        let mut rand = [0u8; 10];
        rand[2..].copy_from_slice(&self.uuids.to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(self.now_ms(), &rand).into_uuid()
    }

    fn envelope<B>(&mut self, source: Source, body: B) -> Envelope<B> {
        Envelope {
            v: SCHEMA_VERSION,
            id: self.uuid(),
            match_id: self.stack.setup.match_id.clone(),
            source,
            sent_ms: self.now_ms(),
            body,
        }
    }

    /// The next auto id of a stream whose last id is `last`, Redis style.
    fn auto_id(now: u64, last: StreamId) -> StreamId {
        std::cmp::max(StreamId::new(now, 0), last.next())
    }

    /// Appends a command to the `cmd` stream (as a gateway, bot or the economy would);
    /// the next tick applies it. Returns its stream id.
    pub fn push(&mut self, source: Source, body: Command) -> Result<StreamId> {
        let env = self.envelope(source, body);
        let payload = encode(&env)?;
        Ok(self.push_entry(payload, env))
    }

    /// Appends an already-encoded command envelope (e.g. written by an older schema
    /// version); it must decode, since the simulation is fed the decoded command.
    pub fn push_encoded(&mut self, payload: Vec<u8>) -> Result<StreamId> {
        let id = Self::auto_id(self.now_ms(), self.last_cmd);
        let env = events::decode::<Command>(&payload).map_err(|source| Error::Decode {
            stream: "cmd",
            id,
            source,
        })?;
        Ok(self.push_entry(payload, env))
    }

    /// A fresh event id and the current virtual time, for hand-built envelopes.
    pub fn next_event(&mut self) -> (uuid::Uuid, u64) {
        (self.uuid(), self.now_ms())
    }

    fn push_entry(&mut self, payload: Vec<u8>, envelope: Envelope<Command>) -> StreamId {
        let id = Self::auto_id(self.now_ms(), self.last_cmd);
        self.last_cmd = id;
        self.streams.cmd.push(RawEntry { id, payload });
        self.pending.push(SimInput {
            stream_id: id.to_string(),
            envelope,
        });
        id
    }

    /// Runs one tick of the whole stack; returns the committed tick.
    pub fn step(&mut self) -> Result<TickCommitted> {
        let inputs = std::mem::take(&mut self.pending);
        let out = self
            .stack
            .step(&inputs, |t| StreamId::for_tick(t).to_string());
        let committed = out.engine.committed;
        let t = committed.tick;
        let tick_id = StreamId::for_tick(t);
        let env = self.envelope(Source::System, committed.clone());
        self.streams.tick.push(RawEntry {
            id: tick_id,
            payload: encode(&env)?,
        });
        let env: Envelope<EconomyStepCommitted> = self.envelope(Source::Economy, out.economy);
        self.streams.eco.push(RawEntry {
            id: tick_id,
            payload: encode(&env)?,
        });
        for (source, cmd) in out.commands {
            self.push(source, cmd)?;
        }

        if t > 0 && t.is_multiple_of(self.config.snapshot_every.max(1)) {
            self.snapshot(SnapshotOwner::Engine, t)?;
            self.snapshot(SnapshotOwner::Economy, t)?;
        }
        if t > 0 && t.is_multiple_of(events::keys::SEEK_STATE_EVERY) {
            self.seek_state(t)?;
        }
        if let Some(w) = winner(&committed) {
            self.winner = Some(w);
            let ended = self.envelope(
                Source::System,
                MatchEvent::MatchEnded(MatchEnded {
                    match_id: self.stack.setup.match_id.clone(),
                    tick: t,
                    winner: w,
                }),
            );
            let last = self.streams.matches.last().map_or(StreamId::ZERO, |e| e.id);
            self.streams.matches.push(RawEntry {
                id: Self::auto_id(self.now_ms(), last),
                payload: encode(&ended)?,
            });
        }
        Ok(committed)
    }

    /// The engine service's seek stream: the state after `tick` under the tick's id, kept.
    fn seek_state(&mut self, tick: u64) -> Result<()> {
        let env = self.envelope(
            Source::System,
            Snapshot {
                owner: SnapshotOwner::Engine,
                tick,
                hash: self.stack.sim.hash(),
                log_id: StreamId::for_tick(tick).to_string(),
                state: self.stack.sim.snapshot(),
            },
        );
        self.streams.seek.push(RawEntry {
            id: StreamId::for_tick(tick),
            payload: encode(&env)?,
        });
        Ok(())
    }

    fn snapshot(&mut self, owner: SnapshotOwner, tick: u64) -> Result<()> {
        let (hash, state) = match owner {
            SnapshotOwner::Engine => (self.stack.sim.hash(), self.stack.sim.snapshot()),
            SnapshotOwner::Economy => (self.stack.eco.hash(), self.stack.eco.snapshot()),
        };
        let source = match owner {
            SnapshotOwner::Engine => Source::System,
            SnapshotOwner::Economy => Source::Economy,
        };
        let env = self.envelope(
            source,
            Snapshot {
                owner,
                tick,
                hash,
                log_id: StreamId::for_tick(tick).to_string(),
                state,
            },
        );
        let id = Self::auto_id(self.now_ms(), self.last_snap);
        self.last_snap = id;
        self.streams.snap.push(RawEntry {
            id,
            payload: encode(&env)?,
        });
        if let Some(max) = self.config.snap_maxlen {
            let n = self.streams.snap.len();
            if n > max {
                self.streams.snap.drain(..n - max);
            }
        }
        Ok(())
    }

    /// Runs until the match is won or `max_ticks` more ticks have run.
    pub fn run(
        &mut self,
        max_ticks: u64,
        progress: &dyn Progress,
    ) -> Result<Option<Option<PlayerId>>> {
        progress.begin("record", max_ticks);
        let mut n = 0;
        while n < max_ticks && self.winner.is_none() {
            self.step()?;
            n += 1;
            if n.is_multiple_of(REPORT_EVERY) {
                progress.advance("record", REPORT_EVERY);
            }
        }
        progress.end("record");
        Ok(self.winner)
    }

    /// The recording so far.
    pub fn recording(&self) -> Result<Recording> {
        Recording::from_streams(self.streams.clone())
    }

    /// The recording, consuming the recorder.
    pub fn finish(self) -> Result<Recording> {
        Recording::from_streams(self.streams)
    }
}

/// A standard AI-vs-AI match setup: two AIs of a difficulty on a generated map.
pub fn ai_vs_ai(
    match_id: &str,
    seed: u64,
    map_size: u16,
    difficulty: events::Difficulty,
) -> Result<MatchCreated> {
    let match_id = events::MatchId::new(match_id).map_err(|e| Error::Log(e.to_string()))?;
    Ok(MatchCreated {
        match_id,
        seed,
        map: events::MapSpec {
            size: map_size,
            seed,
        },
        players: (0..2)
            .map(|i| events::PlayerSlot {
                id: PlayerId(i),
                name: format!("ai{i}"),
                kind: PlayerKind::Ai(difficulty),
            })
            .collect(),
        tick_hz: 20,
        scenario: events::Scenario::Skirmish,
    })
}
