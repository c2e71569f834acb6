//! The bus reader of a match hub: one task per hub that backfills the match's history
//! (the newest keyframe and the deltas after it, the economy and tick logs) and then
//! tails the `view`, `tick` and `eco` streams, decoding each entry and handing it to the
//! hub's fold; it computes the score once the match is over, retries failed reads after
//! `HUB_RETRY_AFTER`, and stops on shutdown or once nobody watches.

use std::sync::Arc;
use std::time::Duration;

use events::{
    decode, now_ms, Body, Bus, EconomyStepCommitted, Envelope, StreamId, TickCommitted, ViewFrame,
    ViewKind,
};
use tokio::sync::watch;
use tokio::time::Instant;

use super::{Hub, Hubs};
use crate::limits::{
    HUB_BACKFILL_MAX, HUB_BACKFILL_PAGE, HUB_BLOCK, HUB_ECO_BACKFILL_MAX, HUB_IDLE_TIMEOUT,
    HUB_READ_BATCH, HUB_RETRY_AFTER, HUB_TICK_BACKFILL_MAX,
};
use crate::metrics as m;

impl<B: Bus> Hubs<B> {
    pub(super) async fn run_hub(&self, hub: Arc<Hub>) {
        let mut shutdown = self.shutdown.clone();
        tracing::debug!(match_id = %hub.match_id, "hub starting");
        let cursors = loop {
            match self.backfill(&hub).await {
                Ok(c) => break c,
                Err(e) => {
                    metrics::counter!(m::BUS_ERRORS).increment(1);
                    tracing::warn!(match_id = %hub.match_id, error = %e, "hub backfill failed; retrying");
                    if sleep_or_shutdown(&mut shutdown, HUB_RETRY_AFTER).await {
                        self.remove(&hub);
                        return;
                    }
                }
            }
        };
        hub.ready.send_replace(true);
        let (mut view_at, mut tick_at, mut eco_at) = cursors;
        let mut idle_since: Option<Instant> = None;
        let view_key = self.keys.view(&hub.match_id);
        let tick_key = self.keys.tick(&hub.match_id);
        let eco_key = self.keys.eco(&hub.match_id);
        loop {
            if *shutdown.borrow() {
                break;
            }
            if hub.tx.receiver_count() == 0 {
                let since = *idle_since.get_or_insert_with(Instant::now);
                // An ended match has nothing more to read (spectating it replays it).
                let ended = hub.winner().is_some();
                if (ended || since.elapsed() >= HUB_IDLE_TIMEOUT) && self.remove_if_idle(&hub) {
                    break;
                }
            } else {
                idle_since = None;
            }
            let step = async {
                self.tail(
                    &view_key,
                    &mut view_at,
                    Some(HUB_BLOCK),
                    |env: Envelope<ViewFrame>| {
                        let lag = now_ms().saturating_sub(env.sent_ms);
                        metrics::histogram!(m::VIEW_LAG_SECONDS).record(lag as f64 / 1000.0);
                        hub.apply_view(&env.body);
                    },
                )
                .await?;
                self.tail(
                    &tick_key,
                    &mut tick_at,
                    None,
                    |env: Envelope<TickCommitted>| {
                        hub.apply_tick(&env.body);
                    },
                )
                .await?;
                self.tail(
                    &eco_key,
                    &mut eco_at,
                    None,
                    |env: Envelope<EconomyStepCommitted>| {
                        hub.apply_eco(&env.body, true);
                    },
                )
                .await?;
                Ok::<_, events::BusError>(())
            };
            let res = tokio::select! {
                r = step => r,
                _ = shutdown.changed() => break,
            };
            if let Err(e) = res {
                metrics::counter!(m::BUS_ERRORS).increment(1);
                tracing::warn!(match_id = %hub.match_id, error = %e, "hub read failed; retrying");
                if sleep_or_shutdown(&mut shutdown, HUB_RETRY_AFTER).await {
                    break;
                }
                continue;
            }
            hub.send_players_stats();
            if hub.score_due() {
                let scored = tokio::select! {
                    r = crate::score::score_from_bus(&self.bus, &self.keys, &hub.match_id) => r,
                    _ = shutdown.changed() => break,
                };
                match scored {
                    Ok(msg) => hub.set_score(Some(msg.to_json().into())),
                    Err(e) => {
                        tracing::warn!(match_id = %hub.match_id, error = %e, "no score: the log cannot be read");
                        hub.set_score(None);
                    }
                }
            }
        }
        self.remove(&hub);
        tracing::debug!(match_id = %hub.match_id, "hub stopped");
    }

    /// Reads up to `HUB_READ_BATCH` entries of `key` after `*at` (waiting up to `block`
    /// for one), moving `*at` past each and handing each one that decodes to `apply`.
    async fn tail<T: Body>(
        &self,
        key: &str,
        at: &mut StreamId,
        block: Option<Duration>,
        mut apply: impl FnMut(Envelope<T>) + Send,
    ) -> Result<(), events::BusError> {
        let batch = self.bus.read_after(key, *at, HUB_READ_BATCH, block).await?;
        for e in &batch {
            *at = e.id;
            match decode::<T>(&e.payload) {
                Ok(env) => apply(env),
                Err(err) => undecodable(key, e.id, &err),
            }
        }
        Ok(())
    }

    /// Reads the match's history: the newest keyframe and the deltas after it, and the
    /// whole economy log (for ledgers). Returns the cursors to tail from.
    async fn backfill(
        &self,
        hub: &Hub,
    ) -> Result<(StreamId, StreamId, StreamId), events::BusError> {
        let view_key = self.keys.view(&hub.match_id);
        let newest = self.bus.rev_range(&view_key, HUB_BACKFILL_MAX).await?;
        let view_at = newest.first().map(|e| e.id).unwrap_or(StreamId::ZERO);
        let mut frames: Vec<ViewFrame> = Vec::new();
        for e in &newest {
            match decode::<ViewFrame>(&e.payload) {
                Ok(env) => {
                    let key = env.body.kind == ViewKind::Keyframe;
                    frames.push(env.body);
                    if key {
                        break;
                    }
                }
                Err(err) => undecodable(&view_key, e.id, &err),
            }
        }
        for f in frames.iter().rev() {
            hub.apply_view(f);
        }
        let eco_key = self.keys.eco(&hub.match_id);
        let mut eco_at = StreamId::ZERO;
        let mut folded = 0usize;
        loop {
            let batch = self
                .bus
                .read_after(&eco_key, eco_at, HUB_BACKFILL_PAGE, None)
                .await?;
            if batch.is_empty() {
                break;
            }
            for e in &batch {
                eco_at = e.id;
                if let Ok(env) = decode::<EconomyStepCommitted>(&e.payload) {
                    hub.apply_eco(&env.body, false);
                }
            }
            folded += batch.len();
            if folded >= HUB_ECO_BACKFILL_MAX {
                tracing::warn!(match_id = %hub.match_id, "economy backfill cut short");
                if let Some(last) = self.bus.last_id(&eco_key).await? {
                    eco_at = last;
                }
                break;
            }
        }
        // The tick history, for the players' standings (kills, losses, harvest).
        let tick_key = self.keys.tick(&hub.match_id);
        let mut tick_at = StreamId::ZERO;
        let mut folded = 0usize;
        loop {
            let batch = self
                .bus
                .read_after(&tick_key, tick_at, HUB_BACKFILL_PAGE, None)
                .await?;
            if batch.is_empty() {
                break;
            }
            for e in &batch {
                tick_at = e.id;
                if let Ok(env) = decode::<TickCommitted>(&e.payload) {
                    hub.fold_tick_history(&env.body);
                }
            }
            folded += batch.len();
            if folded >= HUB_TICK_BACKFILL_MAX {
                tracing::warn!(match_id = %hub.match_id, "tick backfill cut short");
                if let Some(last) = self.bus.last_id(&tick_key).await? {
                    tick_at = last;
                }
                break;
            }
        }
        Ok((view_at, tick_at, eco_at))
    }
}

fn undecodable(stream: &str, id: StreamId, err: &events::DecodeError) {
    // The gateway only reads these streams; their writers dead-letter bad entries, so a
    // reader that cannot decode one counts it and moves on.
    metrics::counter!(m::UNDECODABLE).increment(1);
    tracing::warn!(stream, %id, error = %err, "skipping undecodable entry");
}

/// Sleeps; true when shutdown began meanwhile.
async fn sleep_or_shutdown(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}
