//! A recorded match: the raw entries of its durable streams (exactly the bytes the services
//! wrote, so old schema versions stay old until read) and the decoded log built from them.

use std::collections::BTreeMap;
use std::sync::Arc;

use events::{
    decode, Command, EconomyStepCommitted, Envelope, MatchCreated, MatchEnded, MatchEvent, MatchId,
    Snapshot, SnapshotOwner, StreamId, TickCommitted,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, Service};

/// One stream entry as stored: its id and the encoded envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawEntry {
    /// The entry id, `ms-seq`.
    #[serde(with = "stream_id_str")]
    pub id: StreamId,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

mod stream_id_str {
    use events::StreamId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &StreamId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<StreamId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The durable streams of one match. `matches` holds only this match's entries of the
/// shared matches stream (its `MatchCreated` and, once over, `MatchEnded`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streams {
    pub matches: Vec<RawEntry>,
    pub cmd: Vec<RawEntry>,
    pub tick: Vec<RawEntry>,
    pub eco: Vec<RawEntry>,
    pub snap: Vec<RawEntry>,
    /// The engine's seek states (`Snapshot` envelopes, one every
    /// `events::keys::SEEK_STATE_EVERY` ticks, under the tick's id), kept for the whole
    /// match. Absent from files written before the engine kept them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seek: Vec<RawEntry>,
    /// Not a stream: engine states an exporter added (see
    /// [`Recording::build_seek_index`]) so that seeks into a file are fast from the first
    /// one, although the live snap stream kept only the last few snapshots. Never
    /// imported into a bus.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seek_index: Vec<SeekPoint>,
}

/// An engine state after tick `tick` (`Sim::snapshot` bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeekPoint {
    pub tick: u64,
    #[serde(with = "serde_bytes")]
    pub state: Vec<u8>,
}

/// A decoded snapshot entry.
#[derive(Clone, Debug)]
pub struct SnapEntry {
    pub id: StreamId,
    pub owner: SnapshotOwner,
    /// The state after this tick.
    pub tick: u64,
    pub hash: u64,
    pub state: Arc<Vec<u8>>,
}

/// The decoded log: what re-running needs, indexed for lookups.
#[derive(Clone, Debug)]
pub struct Log {
    /// The match setup as the services ran it (for a renamed import: with the original
    /// match id, which the economy's state hash covers).
    pub setup: MatchCreated,
    pub ended: Option<MatchEnded>,
    /// The first tick the log holds: the one after the state its setup's scenario starts
    /// from (`engine::scenario::first_tick`: 0, or after a battle's warm-up). For a battle
    /// created before `MatchCreated` carried its scenario, the tick after the base state
    /// the lobby wrote to `snap` and `seek` (which the log must then hold).
    pub first_tick: u64,
    /// Tick entries in tick order; `ticks[i].tick == first_tick + i` (the tick stream is
    /// durable).
    pub ticks: Vec<TickCommitted>,
    /// Decoded commands by stream id; entries that do not decode keep the reason, and are
    /// an error only if a tick or step names them (the services dead-letter those).
    pub cmds: BTreeMap<StreamId, std::result::Result<Envelope<Command>, String>>,
    /// The schema version each command entry was written with.
    pub cmd_versions: BTreeMap<StreamId, u16>,
    /// Economy steps in tick order.
    pub ecos: Vec<EconomyStepCommitted>,
    /// Snapshots of both owners, oldest first.
    pub snaps: Vec<SnapEntry>,
    /// The engine's seek states, oldest first (checked against the tick log when used).
    pub seek: Vec<SnapEntry>,
}

impl Log {
    /// The last tick recorded, if any.
    pub fn last_tick(&self) -> Option<u64> {
        self.ticks.last().map(|t| t.tick)
    }

    /// The tick entry of tick `t`.
    pub fn tick(&self, t: u64) -> Option<&TickCommitted> {
        t.checked_sub(self.first_tick)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.ticks.get(i))
    }

    /// The tick entry a stream id names (`StreamId::for_tick`).
    pub fn tick_by_id(&self, id: &str) -> Result<&TickCommitted> {
        let sid: StreamId = id
            .parse()
            .map_err(|_| Error::Log(format!("{id:?} is not a tick stream id")))?;
        if sid != StreamId::for_tick(sid.tick()) {
            return Err(Error::Log(format!("{id} is not a tick stream id")));
        }
        self.tick(sid.tick())
            .ok_or_else(|| Error::Log(format!("tick entry {id} is not in the log")))
    }

    /// The command a stream id names.
    pub fn cmd(&self, id: &str) -> Result<&Envelope<Command>> {
        let sid: StreamId = id
            .parse()
            .map_err(|_| Error::Log(format!("{id:?} is not a stream id")))?;
        match self.cmds.get(&sid) {
            Some(Ok(env)) => Ok(env),
            Some(Err(why)) => Err(Error::Log(format!(
                "command {id} is applied by the log but does not decode: {why}"
            ))),
            None => Err(Error::Log(format!("command {id} is not in the cmd stream"))),
        }
    }

    /// The economy step of tick `t`. Steps are one per tick from the first tick.
    pub fn eco(&self, t: u64) -> Option<&EconomyStepCommitted> {
        t.checked_sub(self.first_tick)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.ecos.get(i))
            .filter(|e| e.tick == t)
    }

    /// The last economy step recorded, if any.
    pub fn last_eco_tick(&self) -> Option<u64> {
        self.ecos.last().map(|e| e.tick)
    }

    /// Snapshots of one service, oldest first.
    pub fn snaps_of(&self, service: Service) -> impl Iterator<Item = &SnapEntry> {
        let owner = match service {
            Service::Engine => SnapshotOwner::Engine,
            Service::Economy => SnapshotOwner::Economy,
        };
        self.snaps.iter().filter(move |s| s.owner == owner)
    }
}

/// A recorded match: raw streams plus the decoded log.
#[derive(Clone, Debug)]
pub struct Recording {
    pub match_id: MatchId,
    pub streams: Streams,
    pub log: Log,
}

impl Recording {
    /// Decodes and indexes raw streams. A match imported under a new id is re-run under
    /// the id it ran with (named by the `replay_of` field of its `MatchCreated` envelope).
    pub fn from_streams(streams: Streams) -> Result<Recording> {
        let mut setup = None;
        let mut ended = None;
        let mut original_id = None;
        for e in &streams.matches {
            let env = decode::<MatchEvent>(&e.payload).map_err(|source| Error::Decode {
                stream: "matches",
                id: e.id,
                source,
            })?;
            match env.body {
                MatchEvent::MatchCreated(c) => {
                    original_id = replay_of(&e.payload);
                    setup = Some(c);
                }
                MatchEvent::MatchEnded(x) => ended = Some(x),
            }
        }
        let Some(mut setup) = setup else {
            return Err(Error::Log("no MatchCreated entry".into()));
        };
        let match_id = setup.match_id.clone();
        if let Some(orig) = original_id {
            setup.match_id = orig;
        }

        let mut ticks: Vec<TickCommitted> = Vec::with_capacity(streams.tick.len());
        let scenario_first = engine::scenario::first_tick(&setup);
        let mut first_tick = scenario_first;
        for e in &streams.tick {
            let env = decode::<TickCommitted>(&e.payload).map_err(|source| Error::Decode {
                stream: "tick",
                id: e.id,
                source,
            })?;
            let t = env.body.tick;
            if t == u64::MAX {
                // No tick follows it: the arithmetic on the next tick has no answer.
                return Err(Error::Log(format!(
                    "tick stream entry {} holds tick {t}, past the last tick a match can run",
                    e.id
                )));
            }
            if ticks.is_empty() && scenario_first == 0 {
                // A battle created before `MatchCreated` carried its scenario commits from
                // the tick after the base state the lobby wrote (checked below).
                first_tick = t;
            }
            let expected = first_tick.saturating_add(ticks.len() as u64);
            if t != expected || e.id != StreamId::for_tick(t) {
                return Err(Error::Log(format!(
                    "tick stream entry {} holds tick {t} where tick {expected} was expected",
                    e.id
                )));
            }
            ticks.push(env.body);
        }

        let mut cmds = BTreeMap::new();
        let mut cmd_versions = BTreeMap::new();
        for e in &streams.cmd {
            if let Some(v) = envelope_version(&e.payload) {
                cmd_versions.insert(e.id, v);
            }
            cmds.insert(
                e.id,
                decode::<Command>(&e.payload).map_err(|err| err.to_string()),
            );
        }

        let mut ecos: Vec<EconomyStepCommitted> = Vec::with_capacity(streams.eco.len());
        for e in &streams.eco {
            let env =
                decode::<EconomyStepCommitted>(&e.payload).map_err(|source| Error::Decode {
                    stream: "eco",
                    id: e.id,
                    source,
                })?;
            let expected = first_tick.saturating_add(ecos.len() as u64);
            if env.body.tick != expected {
                return Err(Error::Log(format!(
                    "eco stream entry {} holds tick {} where tick {expected} was expected",
                    e.id, env.body.tick
                )));
            }
            ecos.push(env.body);
        }

        // A snapshot that does not decode is not fatal: the services skip those too, and
        // the log alone is enough to re-run.
        let decode_snaps = |entries: &[RawEntry]| -> Vec<SnapEntry> {
            entries
                .iter()
                .filter_map(|e| {
                    let s = decode::<Snapshot>(&e.payload).ok()?.body;
                    Some(SnapEntry {
                        id: e.id,
                        owner: s.owner,
                        tick: s.tick,
                        hash: s.hash,
                        state: Arc::new(s.state),
                    })
                })
                .collect()
        };
        let snaps = decode_snaps(&streams.snap);
        let seek: Vec<SnapEntry> = decode_snaps(&streams.seek)
            .into_iter()
            .filter(|s| s.owner == SnapshotOwner::Engine)
            .collect();

        // A log may start later than its scenario only from a base state it holds (an
        // older battle's); otherwise its start is missing, and a tick stream starting
        // anywhere would let one entry at a huge tick stand for a whole match.
        if let Some(base) = first_tick
            .checked_sub(1)
            .filter(|_| first_tick != scenario_first)
        {
            let has_base = seek
                .iter()
                .chain(snaps.iter().filter(|s| s.owner == SnapshotOwner::Engine))
                .any(|s| s.tick == base);
            if !has_base {
                let id = StreamId::for_tick(first_tick);
                return Err(Error::Log(format!(
                    "tick stream entry {id} holds tick {first_tick} where tick 0 was expected \
                     (no engine state after tick {base}, to start from, is in the seek or \
                     snap stream)"
                )));
            }
        }

        Ok(Recording {
            match_id,
            streams,
            log: Log {
                setup,
                ended,
                first_tick,
                ticks,
                cmds,
                cmd_versions,
                ecos,
                snaps,
                seek,
            },
        })
    }

    /// Ticks recorded (0 when the match never started).
    pub fn tick_count(&self) -> u64 {
        self.log.ticks.len() as u64
    }

    /// Game time recorded, in seconds.
    pub fn seconds(&self) -> f64 {
        self.tick_count() as f64 / f64::from(self.tick_hz())
    }

    /// The match's tick rate.
    pub fn tick_hz(&self) -> u32 {
        self.log.setup.tick_hz.max(1)
    }

    /// The rules hash the match ran with, as the engine announced it at tick 0.
    pub fn recorded_rules_hash(&self) -> Option<u64> {
        self.log.tick(0).and_then(|t| {
            t.events.iter().find_map(|e| match e {
                events::GameEvent::MatchStarted { rules_hash, .. } => Some(*rules_hash),
                _ => None,
            })
        })
    }

    /// The same recording under another match id: every envelope's `match_id` (and the
    /// match events' own) rewritten in place, other fields and schema versions untouched.
    /// The `MatchCreated` envelope gets a `replay_of` field naming the original id, which
    /// older readers ignore and [`Recording::from_streams`] callers use to re-run the
    /// economy (whose state hash covers the match id) as it ran.
    pub fn renamed(&self, to: &MatchId) -> Result<Recording> {
        let from = self.log.setup.match_id.clone();
        let mut streams = self.streams.clone();
        for e in streams
            .cmd
            .iter_mut()
            .chain(streams.tick.iter_mut())
            .chain(streams.eco.iter_mut())
            .chain(streams.snap.iter_mut())
            .chain(streams.seek.iter_mut())
        {
            // Entries that do not decode are kept byte for byte: they were dead-lettered
            // and never applied, and rewriting them could only hide why.
            if let Ok(p) = rewrite_match_id(&e.payload, to, None) {
                e.payload = p;
            }
        }
        for e in streams.matches.iter_mut() {
            e.payload = rewrite_match_id(&e.payload, to, Some(&from))?;
        }
        Recording::from_streams(streams)
    }

    /// The id the match originally ran under, if this recording was renamed.
    pub fn original_id(&self) -> Option<&MatchId> {
        (self.log.setup.match_id != self.match_id).then_some(&self.log.setup.match_id)
    }
}

/// The `v` field of an encoded envelope.
pub fn envelope_version(payload: &[u8]) -> Option<u16> {
    #[derive(Deserialize)]
    struct V {
        v: u16,
    }
    rmp_serde::from_slice::<V>(payload).ok().map(|v| v.v)
}

/// The `replay_of` field of an encoded `MatchCreated` envelope, if any.
pub fn replay_of(payload: &[u8]) -> Option<MatchId> {
    #[derive(Deserialize)]
    struct R {
        replay_of: Option<String>,
    }
    rmp_serde::from_slice::<R>(payload)
        .ok()
        .and_then(|r| r.replay_of)
        .and_then(|s| MatchId::new(s).ok())
}

/// Rewrites `match_id` in an envelope and in a match event body, at the msgpack level.
fn rewrite_match_id(payload: &[u8], to: &MatchId, replay_of: Option<&MatchId>) -> Result<Vec<u8>> {
    use events::codec::{field_mut, set_field};
    let mut v = rmpv::decode::read_value(&mut &payload[..])
        .map_err(|e| Error::Log(format!("entry is not msgpack: {e}")))?;
    if !matches!(v, rmpv::Value::Map(_)) {
        return Err(Error::Log("entry is not an envelope".into()));
    }
    set_field(&mut v, "match_id", rmpv::Value::from(to.as_str()));
    if let Some(body) = field_mut(&mut v, "body") {
        for variant in ["MatchCreated", "MatchEnded"] {
            if let Some(inner) = field_mut(body, variant) {
                set_field(inner, "match_id", rmpv::Value::from(to.as_str()));
            }
        }
    }
    if let Some(orig) = replay_of {
        let is_created = field_mut(&mut v, "body")
            .and_then(|b| field_mut(b, "MatchCreated"))
            .is_some();
        if is_created && field_mut(&mut v, "replay_of").is_none() {
            set_field(&mut v, "replay_of", rmpv::Value::from(orig.as_str()));
        }
    }
    let mut out = Vec::with_capacity(payload.len() + 16);
    rmpv::encode::write_value(&mut out, &v).map_err(|e| Error::Encode(e.to_string()))?;
    Ok(out)
}
