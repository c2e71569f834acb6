//! Recordings on a bus: list a Redis's matches, read one match's durable streams, and
//! write a recording back (import) under its own or a new match id.

use std::collections::BTreeMap;

use events::{decode, Append, Bus, IdSpec, Keys, MatchEvent, MatchId, PlayerSlot, StreamId};

use crate::error::{Error, Result};
use crate::recording::{RawEntry, Recording, Streams};

/// Entries read per round trip.
pub const PAGE: usize = 2_000;

/// Entries written per pipelined batch.
pub const BATCH: usize = 1_000;

/// Reads a whole stream, oldest first, a page at a time.
pub async fn read_stream<B: Bus>(bus: &B, stream: &str) -> Result<Vec<RawEntry>> {
    let mut out = Vec::new();
    let mut from = StreamId::ZERO;
    loop {
        let page = bus.range(stream, from, StreamId::MAX, PAGE).await?;
        let n = page.len();
        for e in page {
            from = e.id.next();
            out.push(RawEntry {
                id: e.id,
                payload: e.payload,
            });
        }
        if n < PAGE {
            return Ok(out);
        }
    }
}

/// One match as `list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MatchSummary {
    pub match_id: MatchId,
    pub players: Vec<PlayerSlot>,
    pub tick_hz: u32,
    /// Ticks committed so far.
    pub ticks: u64,
    pub status: MatchStatus,
    /// Imported replays name the match they copy.
    pub replay_of: Option<MatchId>,
}

/// Where a match is in its life.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchStatus {
    /// Created, no tick committed yet.
    Waiting,
    /// Ticking (or abandoned mid-way: the log cannot tell a crashed match from a live one).
    Running,
    /// Over at this tick.
    Ended {
        tick: u64,
        winner: Option<events::PlayerId>,
    },
}

impl std::fmt::Display for MatchStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MatchStatus::Waiting => f.write_str("waiting"),
            MatchStatus::Running => f.write_str("running"),
            MatchStatus::Ended {
                winner: Some(p), ..
            } => write!(f, "ended, {p} won"),
            MatchStatus::Ended { winner: None, .. } => f.write_str("ended, no winner"),
        }
    }
}

/// Every match of the matches stream under these keys, oldest first.
pub async fn list<B: Bus>(bus: &B, keys: &Keys) -> Result<Vec<MatchSummary>> {
    let entries = read_stream(bus, &keys.matches()).await?;
    let mut order = Vec::new();
    let mut found: BTreeMap<MatchId, MatchSummary> = BTreeMap::new();
    for e in entries {
        // An undecodable entry of a shared stream is someone else's problem (the DLQ's).
        let Ok(env) = decode::<MatchEvent>(&e.payload) else {
            continue;
        };
        match env.body {
            MatchEvent::MatchCreated(c) => {
                if !found.contains_key(&c.match_id) {
                    order.push(c.match_id.clone());
                }
                found.insert(
                    c.match_id.clone(),
                    MatchSummary {
                        match_id: c.match_id,
                        players: c.players,
                        tick_hz: c.tick_hz,
                        ticks: 0,
                        status: MatchStatus::Waiting,
                        replay_of: crate::recording::replay_of(&e.payload),
                    },
                );
            }
            MatchEvent::MatchEnded(x) => {
                if let Some(m) = found.get_mut(&x.match_id) {
                    m.status = MatchStatus::Ended {
                        tick: x.tick,
                        winner: x.winner,
                    };
                }
            }
        }
    }
    let mut out = Vec::with_capacity(order.len());
    for id in order {
        let Some(mut m) = found.remove(&id) else {
            continue;
        };
        if let Some(last) = bus.last_id(&keys.tick(&id)).await? {
            m.ticks = last.tick().saturating_add(1);
            if m.status == MatchStatus::Waiting {
                m.status = MatchStatus::Running;
            }
        }
        out.push(m);
    }
    Ok(out)
}

/// Reads one match's durable streams (its matches entries, cmd, tick, eco, snap, seek). The
/// capped view stream is not part of a recording: it is regenerated from the log.
pub async fn load<B: Bus>(bus: &B, keys: &Keys, m: &MatchId) -> Result<Recording> {
    let mut streams = Streams::default();
    for e in read_stream(bus, &keys.matches()).await? {
        let mine = match decode::<MatchEvent>(&e.payload) {
            Ok(env) => match &env.body {
                MatchEvent::MatchCreated(c) => &c.match_id == m,
                MatchEvent::MatchEnded(x) => &x.match_id == m,
            },
            Err(_) => false,
        };
        if mine {
            streams.matches.push(e);
        }
    }
    if streams.matches.is_empty() {
        return Err(Error::NoMatch(m.to_string()));
    }
    // Consumers before what they consume: on a live match, every economy step read
    // names a tick already committed, and every tick read names commands already in
    // the cmd stream, so the snapshot of the log read here is self-contained.
    streams.eco = read_stream(bus, &keys.eco(m)).await?;
    streams.tick = read_stream(bus, &keys.tick(m)).await?;
    streams.cmd = read_stream(bus, &keys.cmd(m)).await?;
    streams.snap = read_stream(bus, &keys.snap(m)).await?;
    streams.seek = read_stream(bus, &keys.seek(m)).await?;
    Recording::from_streams(streams)
}

/// Options of [`import`].
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Import under this id instead of the recording's own.
    pub rename: Option<MatchId>,
    /// Do not append the match's entries to the shared matches stream. Without them the
    /// match is invisible to `list` and the gateway, but no service's consumer group is
    /// offered the match either (see [`import`]).
    pub skip_matches_entry: bool,
}

/// What an import wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    pub match_id: MatchId,
    pub entries: u64,
}

/// Writes a recording into a bus. Per-match entries keep their ids (ticks and economy
/// steps name commands by id, and tick ids are the engine's fencing tokens); the
/// matches entries are appended with fresh ids, after everything else, so a reader that
/// sees the match sees all of it.
///
/// The `MatchCreated` entry of a match lands in the engine's and economy's consumer
/// groups like any new match; for a finished match its `MatchEnded` follows right after.
pub async fn import<B: Bus>(
    bus: &B,
    keys: &Keys,
    rec: &Recording,
    opts: &ImportOptions,
) -> Result<Imported> {
    let renamed;
    let rec = match &opts.rename {
        Some(to) if to != &rec.match_id => {
            renamed = rec.renamed(to)?;
            &renamed
        }
        _ => rec,
    };
    let m = &rec.match_id;
    for key in [
        keys.cmd(m),
        keys.tick(m),
        keys.eco(m),
        keys.snap(m),
        keys.seek(m),
    ] {
        if bus.len(&key).await? > 0 {
            return Err(Error::Exists(m.to_string()));
        }
    }
    let s = &rec.streams;
    let mut entries = 0u64;
    for (key, list) in [
        (keys.cmd(m), &s.cmd),
        (keys.tick(m), &s.tick),
        (keys.eco(m), &s.eco),
        (keys.snap(m), &s.snap),
        (keys.seek(m), &s.seek),
    ] {
        for chunk in list.chunks(BATCH) {
            let items = chunk
                .iter()
                .map(|e| Append {
                    stream: key.clone(),
                    id: IdSpec::Explicit(e.id),
                    payload: e.payload.clone(),
                    maxlen: None,
                })
                .collect();
            entries += bus.append_batch(items).await?.len() as u64;
        }
    }
    if !opts.skip_matches_entry {
        let matches = keys.matches();
        for e in &s.matches {
            bus.append(&matches, IdSpec::Auto, &e.payload, None).await?;
            entries += 1;
        }
    }
    Ok(Imported {
        match_id: m.clone(),
        entries,
    })
}
