//! One match of the economy as a fold ([`::service::MatchFold`]): fold each committed
//! engine tick (plus the production commands that arrived by then) into the ledger,
//! commit the step under the tick's explicit id with the commands it decided, and let the
//! AI opponents act.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ::service::{Flow, MatchFold, MatchIo, Start};
use events::commit::with_retry;
use events::dlq::dead_letter;
use events::{
    decode, encode, Bus, BusError, Command, EconomyStepCommitted, Entry, Envelope, IdSpec, Keys,
    MatchCreated, PlayerKind, Snapshot, SnapshotOwner, Source, StreamId, TickCommitted, ViewFrame,
};
use rules::Rules;
use tokio_util::sync::CancellationToken;

use super::{metric, EconomyConfig};
use crate::ai::Ai;
use crate::{Economy, Input};

/// Why an economy loop gave up (its lease goes idle for another attempt).
#[derive(Debug, thiserror::Error)]
pub enum EconomyLoopError {
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    #[error("recovery diverged at tick {tick}: recorded hash {recorded:#x}, re-run {rerun:#x}")]
    Desync {
        tick: u64,
        recorded: u64,
        rerun: u64,
    },
    #[error("encode: {0}")]
    Encode(#[from] events::EncodeError),
    #[error("the log is damaged: {0}")]
    Damaged(String),
}

/// How long a tick read blocks before the loop checks for cancellation again.
const TICK_BLOCK: Duration = Duration::from_millis(500);
/// Command entries scanned backwards to find already-appended economy commands after a
/// restart.
const RECENT_COMMANDS_SCANNED: usize = 2_048;
/// Economy steps read per page when looking back from a snapshot for the command cursor.
const CURSOR_SCAN_PAGE: usize = 256;

struct Cursors {
    tick: StreamId,
    cmd: StreamId,
    view: StreamId,
}

fn is_final(tick: &TickCommitted) -> bool {
    tick.events
        .iter()
        .any(|e| matches!(e, events::GameEvent::MatchWon { .. }))
}

/// Rebuilds the economy from its newest snapshot and its log, and returns the commands
/// of the last step that may not have been appended yet.
async fn recover<B: Bus>(
    bus: &B,
    keys: &Keys,
    rules: &Arc<Rules>,
    setup: &MatchCreated,
    cancel: &CancellationToken,
) -> Result<Option<(Economy, Cursors, Vec<(Source, Command)>, bool)>, EconomyLoopError> {
    let m = &setup.match_id;
    let (snap_key, eco_key, tick_key, cmd_key) =
        (keys.snap(m), keys.eco(m), keys.tick(m), keys.cmd(m));
    let mut economy = None;
    if let Some(snaps) = with_retry(cancel, || bus.rev_range(&snap_key, 16)).await? {
        for e in snaps {
            let Ok(env) = decode::<Snapshot>(&e.payload) else {
                continue;
            };
            if env.body.owner != SnapshotOwner::Economy {
                continue;
            }
            if let Ok(eco) = Economy::restore(rules.clone(), &env.body.state) {
                if eco.hash() == env.body.hash {
                    economy = Some((eco, env.body.tick));
                    break;
                }
            }
        }
    } else {
        return Ok(None);
    }
    let (mut eco, mut next_tick) = match economy {
        Some((eco, t)) => (eco, t + 1),
        None => (Economy::new(rules.clone(), setup), 0),
    };
    let mut cursors = Cursors {
        tick: StreamId::ZERO,
        cmd: StreamId::ZERO,
        view: StreamId::ZERO,
    };
    let mut pending_out = Vec::new();
    let mut finished = false;
    // Cursors up to the snapshot: the command cursor is the newest command any step up to
    // it consumed. The step at the snapshot alone is not enough: when it consumed no
    // command the cursor stayed at the stream's start, and a restarted instance folded
    // every production command of the match a second time (found by the cluster failover
    // test: `ConsumedTwice` after a takeover past tick 200). Steps are scanned backwards
    // a page at a time until one names a command.
    if next_tick > 0 {
        let at = StreamId::for_tick(next_tick - 1);
        let mut hi = next_tick - 1;
        loop {
            let lo = hi.saturating_sub(CURSOR_SCAN_PAGE as u64 - 1);
            let (from, to) = (StreamId::for_tick(lo), StreamId::for_tick(hi));
            let Some(page) =
                with_retry(cancel, || bus.range(&eco_key, from, to, CURSOR_SCAN_PAGE)).await?
            else {
                return Ok(None);
            };
            let newest = page.iter().rev().find_map(|e| {
                decode::<EconomyStepCommitted>(&e.payload)
                    .ok()
                    .filter(|env| env.body.consumed.len() > 1)
            });
            if let Some(env) = newest {
                advance(&mut cursors, &env.body.consumed);
                break;
            }
            if lo == 0 {
                break;
            }
            hi = lo - 1;
        }
        cursors.tick = cursors.tick.max(at);
    }
    loop {
        let from = StreamId::for_tick(next_tick);
        let Some(page) =
            with_retry(cancel, || bus.range(&eco_key, from, StreamId::MAX, 256)).await?
        else {
            return Ok(None);
        };
        if page.is_empty() {
            break;
        }
        for e in &page {
            let recorded = decode::<EconomyStepCommitted>(&e.payload)
                .map_err(|err| EconomyLoopError::Damaged(format!("eco entry {}: {err}", e.id)))?
                .body;
            // consumed[0] is the tick entry, the rest the production commands, in order.
            let mut ids = recorded
                .consumed
                .iter()
                .filter_map(|s| s.parse::<StreamId>().ok());
            let Some(tick_id) = ids.next() else {
                return Err(EconomyLoopError::Damaged(format!(
                    "eco entry {} names no tick",
                    e.id
                )));
            };
            let Some(found) =
                with_retry(cancel, || bus.range(&tick_key, tick_id, tick_id, 1)).await?
            else {
                return Ok(None);
            };
            let Some(tick) = found
                .into_iter()
                .next()
                .and_then(|t| decode::<TickCommitted>(&t.payload).ok())
                .map(|env| env.body)
            else {
                return Err(EconomyLoopError::Damaged(format!(
                    "tick entry {tick_id} is gone"
                )));
            };
            let mut inputs = Vec::new();
            for sid in ids {
                let Some(found) = with_retry(cancel, || bus.range(&cmd_key, sid, sid, 1)).await?
                else {
                    return Ok(None);
                };
                let Some(entry) = found.into_iter().next() else {
                    return Err(EconomyLoopError::Damaged(format!(
                        "cmd entry {sid} is gone"
                    )));
                };
                if let Ok(envelope) = decode::<Command>(&entry.payload) {
                    inputs.push(Input {
                        stream_id: sid.to_string(),
                        envelope,
                    });
                }
            }
            let out = eco.step(&tick, &tick_id.to_string(), &inputs);
            if out.committed.hash != recorded.hash {
                return Err(EconomyLoopError::Desync {
                    tick: recorded.tick,
                    recorded: recorded.hash,
                    rerun: out.committed.hash,
                });
            }
            advance(&mut cursors, &recorded.consumed);
            finished = is_final(&tick);
            pending_out = out.commands;
            next_tick = recorded.tick + 1;
        }
    }
    Ok(Some((eco, cursors, pending_out, finished)))
}

/// Moves the cursors past a step's inputs: `consumed[0]` is its tick entry, the rest
/// its command entries.
fn advance(c: &mut Cursors, consumed: &[String]) {
    for (i, id) in consumed.iter().enumerate() {
        if let Ok(sid) = id.parse::<StreamId>() {
            if i == 0 {
                c.tick = c.tick.max(sid);
            } else {
                c.cmd = c.cmd.max(sid);
            }
        }
    }
}

/// Envelopes for the commands a step decided. Their ids are derived from the step, so a
/// restarted instance recognises which of them already reached the command stream.
fn command_envelopes(
    setup: &MatchCreated,
    tick: u64,
    cmds: Vec<(Source, Command)>,
) -> Vec<Envelope<Command>> {
    cmds.into_iter()
        .enumerate()
        .map(|(i, (source, body))| {
            let mut env = Envelope::new(setup.match_id.clone(), source, body);
            let mut bytes = [0u8; 16];
            let h =
                xxhash_rust::xxh3::xxh3_128(format!("{}:{tick}:{i}", setup.match_id).as_bytes());
            bytes.copy_from_slice(&h.to_be_bytes());
            env.id = uuid::Builder::from_custom_bytes(bytes).into_uuid();
            env
        })
        .collect()
}

async fn append_commands<B: Bus>(
    bus: &B,
    keys: &Keys,
    setup: &MatchCreated,
    envs: &[Envelope<Command>],
    skip_existing: bool,
) -> Result<(), EconomyLoopError> {
    if envs.is_empty() {
        return Ok(());
    }
    let key = keys.cmd(&setup.match_id);
    let mut existing = std::collections::BTreeSet::new();
    if skip_existing {
        for e in bus.rev_range(&key, RECENT_COMMANDS_SCANNED).await? {
            if let Ok(env) = decode::<Command>(&e.payload) {
                existing.insert(env.id);
            }
        }
    }
    let mut batch = Vec::new();
    for env in envs.iter().filter(|e| !existing.contains(&e.id)) {
        batch.push(events::Append {
            stream: key.clone(),
            id: IdSpec::Auto,
            payload: encode(env)?,
            maxlen: None,
        });
    }
    bus.append_batch(batch).await?;
    Ok(())
}

/// Only what `player` sees of a frame: the AI's fogged view.
fn fogged(frame: &ViewFrame, player: events::PlayerId) -> ViewFrame {
    let bit = 1u8 << (player.0 & 7);
    ViewFrame {
        tick: frame.tick,
        kind: frame.kind,
        entities: frame
            .entities
            .iter()
            .filter(|e| e.visible_to & bit != 0)
            .cloned()
            .collect(),
        removed: frame
            .removed
            .iter()
            .filter(|(_, seen)| seen & bit != 0)
            .cloned()
            .collect(),
        tiberium: frame.tiberium.clone(),
        winner: frame.winner,
        attacks: frame
            .attacks
            .iter()
            .filter(|a| a.visible_to & bit != 0)
            .copied()
            .collect(),
        deaths: frame
            .deaths
            .iter()
            .filter(|d| d.visible_to & bit != 0)
            .copied()
            .collect(),
    }
}

/// One match's economy between steps.
pub struct EconomyMatch {
    config: Arc<EconomyConfig>,
    eco: Economy,
    cur: Cursors,
    /// The match's AI opponents (none when this instance runs no AI).
    ais: Vec<(events::PlayerId, Ai)>,
    /// Tick entries read and not folded yet, oldest first.
    page: VecDeque<Entry>,
    /// How many tick entries the last read returned (`None` before the first read).
    page_len: Option<usize>,
    /// The tick the AIs last decided at (`None` before they first did).
    ai_tick: Option<u64>,
}

/// What one step folds: a committed engine tick and the production commands that
/// arrived by then.
pub struct EconomyInputs {
    tick: TickCommitted,
    tick_entry: StreamId,
    commands: Vec<Input>,
    /// The last command entry read (folded or not: unit orders are the engine's).
    cmd_cursor: StreamId,
    /// The newest tick read so far (the last of its page): the AIs may act on it.
    newest: bool,
}

/// One folded step, until its commit and what follows it are written.
pub struct EconomyStep {
    inputs: EconomyInputs,
    committed: Vec<u8>,
    commands: Vec<(Source, Command)>,
}

impl EconomyMatch {
    /// The AI opponents of the match, with the map's terrain, having seen the newest
    /// keyframe (they only need the present).
    async fn start_ais<B: Bus>(&mut self, io: &MatchIo<B>) -> Result<(), EconomyLoopError> {
        let (setup, rules) = (&io.setup, &io.rules);
        // AIs count build times in ticks at the match's rate and know the map's terrain,
        // like the in-process stepper's (`replay_tool::stepper`).
        let ai_rules = crate::state::rules_for_rate(rules.clone(), setup.tick_hz);
        let map = Arc::new(crate::map_view::generate(&ai_rules, setup));
        self.ais = setup
            .players
            .iter()
            .filter_map(|p| match p.kind {
                PlayerKind::Ai(d) => Some((
                    p.id,
                    Ai::new(
                        p.id,
                        d,
                        ai_rules.clone(),
                        setup.seed ^ (u64::from(p.id.0) << 32),
                    )
                    .with_map(map.clone()),
                )),
                PlayerKind::Human => None,
            })
            .collect();
        if self.ais.is_empty() {
            return Ok(());
        }
        let view_key = io.keys.view(io.match_id());
        // Cancelled meanwhile: the loop stops at its first check.
        let Some(frames) = with_retry(&io.cancel, || io.bus.rev_range(&view_key, 200)).await?
        else {
            return Ok(());
        };
        if let Some(k) = frames.iter().find_map(|e| {
            decode::<ViewFrame>(&e.payload)
                .ok()
                .filter(|f| f.body.kind == events::ViewKind::Keyframe)
                .map(|f| (e.id, f.body))
        }) {
            self.cur.view = k.0;
            for (p, ai) in &mut self.ais {
                ai.observe(&fogged(&k.1, *p));
            }
        }
        Ok(())
    }

    /// Sets the lag gauges after a page of ticks was folded.
    async fn report_lag<B: Bus>(&self, io: &MatchIo<B>) {
        let lag = io
            .bus
            .len(&io.keys.tick(io.match_id()))
            .await
            .map(|n| n.saturating_sub(self.cur.tick.tick() + 1))
            .unwrap_or(0);
        io.progress.lag.store(lag, Ordering::Relaxed);
        metrics::gauge!(metric::LAG, "match" => io.match_id().to_string()).set(lag as f64);
    }

    /// The AIs observe the view frames since the last time and decide; their commands
    /// are appended like players'.
    async fn run_ais<B: Bus>(
        &mut self,
        io: &MatchIo<B>,
        tick: u64,
    ) -> Result<(), EconomyLoopError> {
        let (bus, m) = (&io.bus, io.match_id());
        let (view_key, cmd_key) = (io.keys.view(m), io.keys.cmd(m));
        let Some(frames) = with_retry(&io.cancel, || {
            bus.read_after(&view_key, self.cur.view, 1_000, None)
        })
        .await?
        else {
            // Cancelled: the loop stops at its next check.
            return Ok(());
        };
        for fe in frames {
            self.cur.view = fe.id;
            if let Ok(env) = decode::<ViewFrame>(&fe.payload) {
                for (p, ai) in &mut self.ais {
                    ai.observe(&fogged(&env.body, *p));
                }
            }
        }
        let mut batch = Vec::new();
        for (p, ai) in &mut self.ais {
            let Some(ledger) = self.eco.player(*p) else {
                continue;
            };
            for c in ai.decide(tick, ledger) {
                batch.push(events::Append {
                    stream: cmd_key.clone(),
                    id: IdSpec::Auto,
                    payload: encode(&Envelope::new(m.clone(), Source::Bot(*p), c))?,
                    maxlen: None,
                });
            }
        }
        metrics::counter!(metric::AI_COMMANDS).increment(batch.len() as u64);
        bus.append_batch(batch).await?;
        Ok(())
    }
}

impl MatchFold for EconomyMatch {
    type Config = EconomyConfig;
    type Input = EconomyInputs;
    type Step = EconomyStep;
    type Error = EconomyLoopError;

    const STEP_TIME_METRIC: &'static str = metric::STEP_TIME;
    const STEPS_METRIC: &'static str = metric::STEPS;

    async fn start<B: Bus>(
        config: &Arc<EconomyConfig>,
        io: &MatchIo<B>,
    ) -> Result<Start<Self>, EconomyLoopError> {
        let (bus, keys, setup) = (&io.bus, &io.keys, &io.setup);
        let Some((eco, cur, unsent, finished)) =
            recover(bus, keys, &io.rules, setup, &io.cancel).await?
        else {
            return Ok(Start::Cancelled);
        };
        let last_tick = cur.tick.tick();
        let unsent = command_envelopes(setup, last_tick, unsent);
        append_commands(bus, keys, setup, &unsent, true).await?;
        if finished {
            return Ok(Start::Finished);
        }
        let mut fold = Self {
            config: config.clone(),
            eco,
            cur,
            ais: Vec::new(),
            page: VecDeque::new(),
            page_len: None,
            ai_tick: None,
        };
        if config.run_ai {
            fold.start_ais(io).await?;
        }
        Ok(Start::Run(fold))
    }

    async fn inputs<B: Bus>(
        &mut self,
        io: &MatchIo<B>,
    ) -> Result<Option<EconomyInputs>, EconomyLoopError> {
        let (bus, keys, cancel, m) = (&io.bus, &io.keys, &io.cancel, io.match_id());
        let (tick_key, cmd_key) = (keys.tick(m), keys.cmd(m));
        let (te, tick) = loop {
            let Some(te) = self.page.pop_front() else {
                if self.page_len.is_some() {
                    self.report_lag(io).await;
                }
                if cancel.is_cancelled() {
                    return Ok(None);
                }
                let Some(ticks) = with_retry(cancel, || {
                    bus.read_after(
                        &tick_key,
                        self.cur.tick,
                        self.config.ticks_per_read,
                        Some(TICK_BLOCK),
                    )
                })
                .await?
                else {
                    return Ok(None);
                };
                self.page_len = Some(ticks.len());
                self.page = ticks.into();
                continue;
            };
            match decode::<TickCommitted>(&te.payload) {
                Ok(env) => break (te, env.body),
                Err(err) => {
                    // Only the engine writes here; a bad entry is kept for operators.
                    dead_letter(bus, keys, &tick_key, None, &te, &err.to_string()).await?;
                    self.cur.tick = te.id;
                }
            }
        };
        // Production commands that have arrived by now are folded with this tick.
        let Some(cmds) = with_retry(cancel, || {
            bus.read_after(
                &cmd_key,
                self.cur.cmd,
                self.config.max_commands_per_step,
                None,
            )
        })
        .await?
        else {
            return Ok(None);
        };
        let mut commands = Vec::new();
        let mut cmd_cursor = self.cur.cmd;
        for ce in cmds {
            cmd_cursor = ce.id;
            match decode::<Command>(&ce.payload) {
                Ok(env) if env.body.is_production() && env.match_id == *m => {
                    commands.push(Input {
                        stream_id: ce.id.to_string(),
                        envelope: env,
                    });
                }
                // Unit orders are the engine's; it dead-letters what does not decode.
                _ => {}
            }
        }
        // AIs act on the newest tick read, not on each tick of a page: caught up, pages
        // hold a tick or two; behind, the AIs still act once a page (every
        // `ticks_per_read` ticks at worst) instead of waiting for a present the economy
        // may never reach while the engine outruns it.
        let newest = self.page.is_empty();
        Ok(Some(EconomyInputs {
            tick,
            tick_entry: te.id,
            commands,
            cmd_cursor,
            newest,
        }))
    }

    fn step<B: Bus>(
        &mut self,
        io: &MatchIo<B>,
        inputs: EconomyInputs,
    ) -> Result<EconomyStep, EconomyLoopError> {
        let tick_id = inputs.tick_entry.to_string();
        let out = self.eco.step(&inputs.tick, &tick_id, &inputs.commands);
        let m = io.match_id().clone();
        let committed = encode(&Envelope::new(m, Source::Economy, out.committed))?;
        Ok(EconomyStep {
            inputs,
            committed,
            commands: out.commands,
        })
    }

    fn commit<B: Bus>(
        &mut self,
        io: &MatchIo<B>,
        step: &mut EconomyStep,
    ) -> Result<Vec<events::Append>, EconomyLoopError> {
        let (m, tick) = (io.match_id(), step.inputs.tick.tick);
        // The step under its explicit id and the commands it decided, in one batch of
        // the instance's group commit: the commands are written only with the step.
        let mut batch = vec![events::Append {
            stream: io.keys.eco(m),
            id: IdSpec::Explicit(StreamId::for_tick(tick)),
            payload: std::mem::take(&mut step.committed),
            maxlen: None,
        }];
        let cmd_key = io.keys.cmd(m);
        let commands = std::mem::take(&mut step.commands);
        for env in command_envelopes(&io.setup, tick, commands) {
            batch.push(events::Append {
                stream: cmd_key.clone(),
                id: IdSpec::Auto,
                payload: encode(&env)?,
                maxlen: None,
            });
        }
        Ok(batch)
    }

    async fn publish<B: Bus>(
        &mut self,
        io: &MatchIo<B>,
        step: EconomyStep,
    ) -> Result<Flow, EconomyLoopError> {
        let (inputs, m) = (step.inputs, io.match_id());
        let tick = inputs.tick.tick;
        self.cur.tick = inputs.tick_entry;
        self.cur.cmd = inputs.cmd_cursor;
        if tick > 0 && tick.is_multiple_of(self.config.snapshot_every.max(1)) {
            let snap = Snapshot {
                owner: SnapshotOwner::Economy,
                tick,
                hash: self.eco.hash(),
                log_id: StreamId::for_tick(tick).to_string(),
                state: self.eco.snapshot(),
            };
            let bytes = encode(&Envelope::new(m.clone(), Source::Economy, snap))?;
            let snap_maxlen = Some(self.config.snap_maxlen);
            if let Err(e) = io
                .bus
                .append(&io.keys.snap(m), IdSpec::Auto, &bytes, snap_maxlen)
                .await
            {
                tracing::warn!(match_id = %m, error = %e, "snapshot not written");
            }
        }
        if is_final(&inputs.tick) {
            return Ok(Flow::Finished);
        }
        let ai_due = self
            .ai_tick
            .is_none_or(|last| tick >= last + self.config.ai_every.max(1));
        if inputs.newest && !self.ais.is_empty() && ai_due {
            self.ai_tick = Some(tick);
            self.run_ais(io, tick).await?;
        }
        Ok(Flow::Continue)
    }
}
