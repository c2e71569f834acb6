//! Group commit: one task per service instance sends the fenced commits of all of its
//! matches that are waiting in one pipeline per round ([`Bus::append_batches`]), so one
//! round trip, and with Redis's `appendfsync always` one fsync, covers many matches.
//!
//! Fencing stays exact per match: each match's commit is its own batch (one atomic script
//! on Redis), whose first entry is the commit under its explicit id and whose other
//! entries (the tick's view frame, the economy's commands) are written only when the
//! commit is. A batch refused at its commit is checked the way [`commit_explicit`]
//! checks it (same bytes already there: an earlier attempt landed), so a stale owner's
//! match learns [`Commit::Fenced`] while the other matches of the same round commit.
//! A round holds every commit waiting when it is sent; up to [`ROUNDS_IN_FLIGHT`] rounds
//! await their answers at once, and the commits submitted while they do form the next:
//! the slower the fsync, the more matches one round covers. A match has at most one
//! commit in flight (it waits for the answer before its next), so its commits stay in
//! order.
//!
//! [`commit_explicit`]: crate::commit::commit_explicit

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::bus::{Append, Bus, BusError, IdSpec};
use crate::commit::{Commit, BACKOFF_MAX, BACKOFF_START};

/// Most commits sent in one round; the rest go in the next.
pub const MAX_ROUND: usize = 256;
/// Most rounds awaiting their answer at once; commits submitted meanwhile form the next.
pub const ROUNDS_IN_FLIGHT: usize = 4;

/// The answer to one submitted commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub commit: Commit,
    /// True when every entry of the batch was written by this commit; false when an
    /// entry after the commit was refused (e.g. a projection a previous owner already
    /// wrote under the same explicit id) or the commit was found already written.
    pub complete: bool,
    /// When the answer arrived.
    pub at: Instant,
}

struct Request {
    batch: Vec<Append>,
    cancel: CancellationToken,
    reply: Reply,
}

/// Handle of an instance's group committer; cloning shares it. The committer task ends
/// when the last handle is dropped.
#[derive(Clone)]
pub struct GroupCommitter {
    tx: mpsc::UnboundedSender<Request>,
}

/// A submitted commit whose answer has not been read yet.
pub struct PendingCommit {
    rx: oneshot::Receiver<Result<Committed, BusError>>,
}

impl PendingCommit {
    /// Waits for the answer. A commit whose match was cancelled before it was sent is
    /// [`Commit::Cancelled`] (and never sent).
    pub async fn wait(self) -> Result<Committed, BusError> {
        self.rx
            .await
            .unwrap_or_else(|_| Err(BusError::Unavailable("group committer stopped".into())))
    }
}

impl GroupCommitter {
    /// Starts the committer task on the current runtime.
    pub fn start<B: Bus>(bus: B) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(bus, rx));
        Self { tx }
    }

    /// Queues `batch` for the next round. Its first entry is the fenced commit (an
    /// explicit id); the others are written only after it, in the same atomic batch.
    /// Transient failures are retried with backoff until `cancel` fires.
    pub fn submit(&self, batch: Vec<Append>, cancel: &CancellationToken) -> PendingCommit {
        let (reply, rx) = oneshot::channel();
        let req = Request {
            batch,
            cancel: cancel.clone(),
            reply,
        };
        if let Err(mpsc::error::SendError(req)) = self.tx.send(req) {
            let _ = req
                .reply
                .send(Err(BusError::Unavailable("group committer stopped".into())));
        }
        PendingCommit { rx }
    }

    /// [`GroupCommitter::submit`], then waits for the answer.
    pub async fn commit(
        &self,
        batch: Vec<Append>,
        cancel: &CancellationToken,
    ) -> Result<Committed, BusError> {
        self.submit(batch, cancel).wait().await
    }
}

async fn run<B: Bus>(bus: B, mut rx: mpsc::UnboundedReceiver<Request>) {
    // Rounds overlap (up to ROUNDS_IN_FLIGHT): a round does not wait for the previous
    // one's answer, so the server always has the next commits queued. Each match has at
    // most one commit in flight (it waits for the answer before its next), so rounds
    // never reorder one match's commits.
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(ROUNDS_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut round = vec![first];
        while round.len() < MAX_ROUND {
            match rx.try_recv() {
                Ok(r) => round.push(r),
                Err(_) => break,
            }
        }
        let bus = bus.clone();
        tokio::spawn(async move {
            commit_round(&bus, round).await;
            drop(slot);
        });
    }
}

type Reply = oneshot::Sender<Result<Committed, BusError>>;

fn answer(reply: Reply, commit: Commit, complete: bool) {
    let _ = reply.send(Ok(Committed {
        commit,
        complete,
        at: Instant::now(),
    }));
}

/// Sends one round, retrying the commits that met a transient failure. On a bus that
/// writes each batch on its own (a Redis Cluster's shards), each commit is answered as
/// soon as its own write is, not with the round's slowest shard.
async fn commit_round<B: Bus>(bus: &B, reqs: Vec<Request>) {
    if bus.batches_share_a_round_trip() || reqs.len() < 2 {
        return commit_together(bus, reqs).await;
    }
    futures::future::join_all(reqs.into_iter().map(|r| commit_together(bus, vec![r]))).await;
}

/// Sends these commits in one [`Bus::append_batches`] and answers them together, retrying
/// the ones that met a transient failure.
async fn commit_together<B: Bus>(bus: &B, reqs: Vec<Request>) {
    let mut backoff = BACKOFF_START;
    let (mut batches, mut waiting): (Vec<_>, Vec<_>) = reqs
        .into_iter()
        .map(|r| (r.batch, (r.cancel, r.reply)))
        .unzip();
    loop {
        // A cancelled match's commit is not sent (nor retried).
        let mut i = 0;
        while i < waiting.len() {
            if waiting[i].0.is_cancelled() {
                batches.swap_remove(i);
                let (_, reply) = waiting.swap_remove(i);
                answer(reply, Commit::Cancelled, false);
            } else {
                i += 1;
            }
        }
        if batches.is_empty() {
            return;
        }
        let results = bus.append_batches(&batches).await;
        let (mut retry_batches, mut retry_waiting) = (Vec::new(), Vec::new());
        for ((batch, (cancel, reply)), res) in batches.into_iter().zip(waiting).zip(results) {
            match outcome(bus, &batch, res).await {
                Ok(Some((commit, complete))) => answer(reply, commit, complete),
                Ok(None) => {
                    retry_batches.push(batch);
                    retry_waiting.push((cancel, reply));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
        if retry_batches.is_empty() {
            return;
        }
        tracing::warn!(
            commits = retry_batches.len(),
            ?backoff,
            "bus unavailable; retrying the commits"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
        (batches, waiting) = (retry_batches, retry_waiting);
    }
}

/// What a batch's result means for its commit: `Ok(None)` to retry.
async fn outcome<B: Bus>(
    bus: &B,
    batch: &[Append],
    res: Result<Vec<crate::bus::StreamId>, BusError>,
) -> Result<Option<(Commit, bool)>, BusError> {
    let Some(first) = batch.first() else {
        return Ok(Some((Commit::Written, true)));
    };
    match res {
        Ok(_) => Ok(Some((Commit::Written, true))),
        Err(BusError::Fenced { stream, id, .. })
            if stream == first.stream && first.id == IdSpec::Explicit(id) =>
        {
            // The commit itself was refused: written by an earlier attempt of ours whose
            // answer was lost (same bytes), or by another writer.
            match bus.range(&first.stream, id, id, 1).await {
                Ok(existing) => Ok(Some(
                    if existing.first().is_some_and(|e| e.payload == first.payload) {
                        (Commit::Written, false)
                    } else {
                        (Commit::Fenced, false)
                    },
                )),
                Err(e) if e.is_transient() => Ok(None),
                Err(e) => Err(e),
            }
        }
        // A later entry was refused: the commit before it is written.
        Err(BusError::Fenced { .. }) => Ok(Some((Commit::Written, false))),
        Err(e) if e.is_transient() => Ok(None),
        Err(e) => Err(e),
    }
}

/// One match's commits through a [`GroupCommitter`] with at most one in flight: the
/// match steps its next tick while the previous commit waits for its round, and learns
/// that commit's answer before it submits the next one, so a fenced match stops at the
/// first refused commit and never writes past it.
pub struct MatchCommits {
    committer: GroupCommitter,
    cancel: CancellationToken,
    in_flight: Option<(Instant, PendingCommit)>,
}

/// The answer to a match's previous commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub commit: Commit,
    /// See [`Committed::complete`].
    pub complete: bool,
    /// From the `started` given at submission to the answer.
    pub elapsed: Duration,
}

impl MatchCommits {
    pub fn new(committer: GroupCommitter, cancel: CancellationToken) -> Self {
        Self {
            committer,
            cancel,
            in_flight: None,
        }
    }

    /// Submits the next commit; `started` is when its work began (for
    /// [`Settled::elapsed`]). The previous one must have been settled.
    pub fn submit(&mut self, started: Instant, batch: Vec<Append>) {
        debug_assert!(self.in_flight.is_none(), "settle the previous commit first");
        self.in_flight = Some((started, self.committer.submit(batch, &self.cancel)));
    }

    /// Waits for the commit in flight, if any.
    pub async fn settle(&mut self) -> Result<Option<Settled>, BusError> {
        let Some((started, pending)) = self.in_flight.take() else {
            return Ok(None);
        };
        let c = pending.wait().await?;
        Ok(Some(Settled {
            commit: c.commit,
            complete: c.complete,
            elapsed: c.at.saturating_duration_since(started),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{MemoryBus, StreamId};

    fn commit(stream: &str, tick: u64, payload: &[u8]) -> Append {
        Append {
            stream: stream.into(),
            id: IdSpec::Explicit(StreamId::for_tick(tick)),
            payload: payload.to_vec(),
            maxlen: None,
        }
    }

    /// On a bus that writes batches apart (a cluster), a slow shard delays only the
    /// commits on it: the others of the same round are answered first.
    #[tokio::test(start_paused = true)]
    async fn on_a_cluster_a_slow_shard_delays_only_its_own_commits() {
        use crate::testkit::{Fault, FaultyBus, Op, Rule};
        let bus = FaultyBus::new(MemoryBus::new());
        bus.batches_apart().inject(
            Rule::new(&[Op::AppendBatch], Fault::Delay(Duration::from_secs(1))).on_key("m0:tick"),
        );
        let gc = GroupCommitter::start(bus.clone());
        let cancel = CancellationToken::new();
        let mut pending: Vec<_> = (0..4)
            .map(|m| gc.submit(vec![commit(&format!("m{m}:tick"), 1, b"t")], &cancel))
            .collect();
        let slow = tokio::spawn(pending.remove(0).wait());
        for p in pending {
            assert_eq!(p.wait().await.unwrap().commit, Commit::Written);
        }
        // Time stands still until every task waits on a timer: the slow one still does.
        assert!(!slow.is_finished());
        assert_eq!(slow.await.unwrap().unwrap().commit, Commit::Written);
        assert_eq!(bus.calls(Op::AppendBatch), 4);
    }

    #[tokio::test]
    async fn many_matches_commit_and_a_fenced_one_is_told() {
        let bus = MemoryBus::new();
        let gc = GroupCommitter::start(bus.clone());
        let cancel = CancellationToken::new();
        // Another writer owns match 3's tick 1.
        bus.append(
            "m3:tick",
            IdSpec::Explicit(StreamId::for_tick(1)),
            b"other",
            None,
        )
        .await
        .unwrap();
        let pending: Vec<_> = (0..8)
            .map(|m| {
                let tick = format!("m{m}:tick");
                let view = format!("m{m}:view");
                gc.submit(
                    vec![commit(&tick, 1, b"mine"), commit(&view, 1, b"frame")],
                    &cancel,
                )
            })
            .collect();
        for (m, p) in pending.into_iter().enumerate() {
            let c = p.wait().await.unwrap();
            let key = format!("m{m}:view");
            let view = bus.range(&key, StreamId::ZERO, StreamId::MAX, 10);
            if m == 3 {
                assert_eq!(c.commit, Commit::Fenced);
                assert!(
                    view.await.unwrap().is_empty(),
                    "nothing written past a fence"
                );
            } else {
                assert_eq!((c.commit, c.complete), (Commit::Written, true));
                assert_eq!(view.await.unwrap().len(), 1);
            }
        }
    }
}
