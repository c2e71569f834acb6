//! The delivery audit of a match's log: every tick and economy step once and in place
//! (tick n under the id `n-1`, no gap, no double), every decodable command consumed
//! exactly once (unit orders by a tick's `applied` list, production by an economy step),
//! every undecodable one dead-lettered exactly once. It reads the raw streams, so it
//! works on logs too damaged to re-run.

use std::collections::{BTreeMap, BTreeSet};

use events::dlq::decode_dead_letter;
use events::{
    decode, Bus, Command, DeadLetter, EconomyStepCommitted, Keys, MatchEvent, MatchId, StreamId,
    TickCommitted,
};
use serde::Serialize;

use crate::bus::read_stream;
use crate::error::{Error, Result};
use crate::recording::{RawEntry, Streams};

/// What is wrong, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A tick entry that does not decode, is not under `for_tick(n)` at position n, or
    /// names another tick (a gap or a double commit).
    TickOutOfPlace,
    /// The same for an economy step.
    StepOutOfPlace,
    /// A command applied or consumed by more than one tick or step.
    ConsumedTwice,
    /// A decodable command neither applied nor consumed (and not in a tail the log
    /// explains: after the end, or after the economy's last step).
    Lost,
    /// An undecodable command with no dead letter.
    NotDeadLettered,
    /// An undecodable command dead-lettered (or named by ticks) more than once.
    DeadLetteredTwice,
}

/// One finding: its kind, the entry it is about, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The stream entry id.
    pub entry: String,
    pub detail: String,
}

/// The audit of one match's log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub match_id: String,
    /// Tick entries.
    pub ticks: u64,
    /// Economy steps.
    pub steps: u64,
    /// Command entries in the stream.
    pub commands: u64,
    /// Unit and economy-only commands applied by exactly one tick.
    pub applied: u64,
    /// Production commands consumed by exactly one economy step.
    pub production_consumed: u64,
    /// Production commands after the economy's last consumed one (appended after its
    /// last step: the tail a stopped economy leaves, not a loss).
    pub production_tail: u64,
    /// Unit orders appended after the match's final tick (not lost: the match was over).
    pub after_end: u64,
    /// Command entries that do not decode or name another match.
    pub undecodable: u64,
    /// Of those, how many were dead-lettered exactly once.
    pub dead_lettered: u64,
    /// Dead letters of this match's `cmd` stream, counting repeats; `None` when the DLQ
    /// was not available (a replay file): the ticks' `dead_lettered` lists are the
    /// evidence then.
    pub dlq_entries: Option<u64>,
    pub findings: Vec<Finding>,
    /// Largest gap between consecutive tick commits (envelope send times, ms), and the
    /// tick after it.
    pub max_tick_gap_ms: u64,
    pub max_gap_tick: u64,
    /// Send times of every tick commit (ms since the epoch), by tick.
    #[serde(skip)]
    pub tick_times: Vec<u64>,
}

impl AuditReport {
    /// Nothing lost, nothing doubled, every tick and step once and in place.
    pub fn clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// The gaps between consecutive tick commits longer than `min_ms`: `(tick, gap)`.
    pub fn gaps_over(&self, min_ms: u64) -> Vec<(u64, u64)> {
        self.tick_times
            .windows(2)
            .enumerate()
            .filter_map(|(i, w)| {
                let gap = w[1].saturating_sub(w[0]);
                (gap > min_ms).then_some((i as u64 + 1, gap))
            })
            .collect()
    }

    fn find(&mut self, kind: FindingKind, entry: impl ToString, detail: impl Into<String>) {
        self.findings.push(Finding {
            kind,
            entry: entry.to_string(),
            detail: detail.into(),
        });
    }
}

/// Audits a match on a bus, with the dead-letter stream as evidence. A match with no
/// entry in any of its streams is [`Error::NoMatch`].
pub async fn audit_bus<B: Bus>(bus: &B, keys: &Keys, m: &MatchId) -> Result<AuditReport> {
    let streams = Streams {
        tick: read_stream(bus, &keys.tick(m)).await?,
        eco: read_stream(bus, &keys.eco(m)).await?,
        cmd: read_stream(bus, &keys.cmd(m)).await?,
        ..Streams::default()
    };
    if streams.tick.is_empty() && streams.eco.is_empty() && streams.cmd.is_empty() {
        return Err(Error::NoMatch(m.to_string()));
    }
    let cmd_key = keys.cmd(m);
    let letters: Vec<DeadLetter> = read_stream(bus, &keys.dlq())
        .await?
        .iter()
        .filter_map(|e| decode_dead_letter(&e.payload))
        .filter(|l| l.source_stream == cmd_key)
        .collect();
    Ok(audit_streams(m, &streams, Some(&letters)))
}

/// Audits a recording's raw streams (a replay file's: no DLQ). The match id commands
/// must carry is the one its `MatchCreated` names (for a renamed import, the new one).
pub fn audit_file_streams(streams: &Streams) -> Result<AuditReport> {
    let m = streams
        .matches
        .iter()
        .find_map(|e| match decode::<MatchEvent>(&e.payload).ok()?.body {
            MatchEvent::MatchCreated(c) => Some(c.match_id),
            MatchEvent::MatchEnded(_) => None,
        })
        .ok_or_else(|| Error::Log("no MatchCreated entry".into()))?;
    Ok(audit_streams(&m, streams, None))
}

/// Audits raw streams; `letters` are the dead letters of the match's `cmd` stream, when
/// the DLQ is available.
pub fn audit_streams(m: &MatchId, s: &Streams, letters: Option<&[DeadLetter]>) -> AuditReport {
    let mut a = AuditReport {
        match_id: m.to_string(),
        ..AuditReport::default()
    };
    let mut applied: BTreeMap<String, u32> = BTreeMap::new();
    let mut named_dead: BTreeMap<String, u32> = BTreeMap::new();
    let mut last_ms = None;
    let mut ended = false;
    for (n, e) in s.tick.iter().enumerate() {
        a.ticks += 1;
        let Ok(env) = decode::<TickCommitted>(&e.payload) else {
            a.find(FindingKind::TickOutOfPlace, e.id, "does not decode");
            continue;
        };
        let t = env.body.tick;
        if e.id != StreamId::for_tick(n as u64) || t != n as u64 {
            a.find(
                FindingKind::TickOutOfPlace,
                e.id,
                format!(
                    "entry {n} holds tick {t}; expected tick {n} under {}",
                    StreamId::for_tick(n as u64)
                ),
            );
        }
        for c in &env.body.applied {
            *applied.entry(c.stream_id.clone()).or_default() += 1;
        }
        for id in &env.body.dead_lettered {
            *named_dead.entry(id.clone()).or_default() += 1;
        }
        ended = env
            .body
            .events
            .iter()
            .any(|ev| matches!(ev, events::GameEvent::MatchWon { .. }));
        a.tick_times.push(env.sent_ms);
        if let Some(prev) = last_ms {
            let gap = env.sent_ms.saturating_sub(prev);
            if gap > a.max_tick_gap_ms {
                a.max_tick_gap_ms = gap;
                a.max_gap_tick = n as u64;
            }
        }
        last_ms = Some(env.sent_ms);
    }
    let mut consumed: BTreeMap<String, u32> = BTreeMap::new();
    for (n, e) in s.eco.iter().enumerate() {
        a.steps += 1;
        let Ok(env) = decode::<EconomyStepCommitted>(&e.payload) else {
            a.find(FindingKind::StepOutOfPlace, e.id, "does not decode");
            continue;
        };
        let t = env.body.tick;
        if e.id != StreamId::for_tick(n as u64) || t != n as u64 {
            a.find(
                FindingKind::StepOutOfPlace,
                e.id,
                format!(
                    "entry {n} holds step {t}; expected step {n} under {}",
                    StreamId::for_tick(n as u64)
                ),
            );
        }
        for c in env.body.consumed.iter().skip(1) {
            *consumed.entry(c.clone()).or_default() += 1;
        }
    }
    let mut letters_of: BTreeMap<String, u32> = BTreeMap::new();
    if let Some(letters) = letters {
        a.dlq_entries = Some(letters.len() as u64);
        for l in letters {
            *letters_of.entry(l.entry_id.clone()).or_default() += 1;
        }
    }
    let present: BTreeSet<String> = s.cmd.iter().map(|e| e.id.to_string()).collect();
    let last_of = |set: &BTreeMap<String, u32>| {
        s.cmd
            .iter()
            .filter(|e| set.contains_key(&e.id.to_string()))
            .map(|e| e.id)
            .max()
            .unwrap_or(StreamId::ZERO)
    };
    let last_applied = last_of(&applied);
    let last_consumed = last_of(&consumed);
    for e in &s.cmd {
        a.commands += 1;
        audit_command(
            &mut a,
            m,
            e,
            &applied,
            &consumed,
            &named_dead,
            letters.map(|_| &letters_of),
            ended,
            last_applied,
            last_consumed,
        );
    }
    // Inputs the log names but does not hold (deleted entries).
    for (id, _) in applied.iter().chain(consumed.iter()) {
        if !present.contains(id) {
            a.find(
                FindingKind::Lost,
                id,
                "named as consumed by a tick or step, not in the cmd stream",
            );
        }
    }
    a.findings
        .sort_by(|x, y| (x.kind, &x.entry).cmp(&(y.kind, &y.entry)));
    a
}

#[allow(clippy::too_many_arguments)]
fn audit_command(
    a: &mut AuditReport,
    m: &MatchId,
    e: &RawEntry,
    applied: &BTreeMap<String, u32>,
    consumed: &BTreeMap<String, u32>,
    named_dead: &BTreeMap<String, u32>,
    letters: Option<&BTreeMap<String, u32>>,
    ended: bool,
    last_applied: StreamId,
    last_consumed: StreamId,
) {
    let id = e.id.to_string();
    match decode::<Command>(&e.payload) {
        Ok(env) if env.match_id == *m => {
            let name = env.body.name();
            let (uses, production) = if env.body.is_production() {
                (consumed.get(&id).copied().unwrap_or(0), true)
            } else {
                (applied.get(&id).copied().unwrap_or(0), false)
            };
            match uses {
                1 if production => a.production_consumed += 1,
                1 => a.applied += 1,
                0 if production && e.id > last_consumed => a.production_tail += 1,
                0 if !production && ended && e.id > last_applied => a.after_end += 1,
                0 => a.find(FindingKind::Lost, id, format!("{name}: never consumed")),
                n => a.find(
                    FindingKind::ConsumedTwice,
                    id,
                    format!("{name}: consumed {n} times"),
                ),
            }
        }
        _ => {
            a.undecodable += 1;
            let named = named_dead.get(&id).copied().unwrap_or(0);
            // The DLQ when available; else the ticks that name the entry as dead-lettered.
            let letters = letters.map_or(named, |l| l.get(&id).copied().unwrap_or(0));
            match (letters, named) {
                (1, 0 | 1) => a.dead_lettered += 1,
                (0, _) => a.find(
                    FindingKind::NotDeadLettered,
                    id,
                    "undecodable, and no dead letter for it",
                ),
                (n, k) => a.find(
                    FindingKind::DeadLetteredTwice,
                    id,
                    format!("{n} dead letters, named by {k} ticks"),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_log_is_clean() {
        let m = MatchId::new("empty").unwrap();
        let r = audit_streams(&m, &Streams::default(), Some(&[]));
        assert!(r.clean());
        assert_eq!(r.dlq_entries, Some(0));
    }
}
