//! Writing a service's log safely: retry transient bus failures with backoff, commit
//! under an explicit id where a refusal means another writer owns the log (fencing), and
//! append an auto-id entry with one retry that never writes it twice.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusError, IdSpec, StreamId};

/// First wait after a transient failure.
pub const BACKOFF_START: Duration = Duration::from_millis(50);
/// Longest wait between retries. Short, because the retries are the only thing that
/// notices the bus is back: a service waits up to this long after the bus (or, on a
/// cluster, the slot's promoted replica) answers again before it reads or commits. At
/// 2 s, an economy whose shard failed over after ~2.3 s read again only 3.15 s after the
/// failure (50 + 100 + … + 1,600 ms), and 5.15 s after it when that attempt came just too
/// early, while its engine was already ticking again (docs/reliability.md, "Redis Cluster
/// failover"). A failed attempt on a down node costs a refused connection, so a few per
/// second per match are cheap.
pub const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// Retries a bus operation on transient errors with exponential backoff
/// ([`BACKOFF_START`] → [`BACKOFF_MAX`]) until it succeeds, fails for good, or `cancel`
/// fires (then `Ok(None)`).
pub async fn with_retry<T, F, Fut>(
    cancel: &CancellationToken,
    mut op: F,
) -> Result<Option<T>, BusError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BusError>>,
{
    let mut backoff = BACKOFF_START;
    loop {
        match op().await {
            Ok(v) => return Ok(Some(v)),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, ?backoff, "bus unavailable; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(e) => return Err(e),
        }
    }
}

/// The result of an explicit-id commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Written (or found already written with the same bytes by an earlier attempt whose
    /// reply was lost).
    Written,
    /// Another writer holds this id with other content: this writer is stale.
    Fenced,
    /// Cancelled while retrying.
    Cancelled,
}

/// Appends `payload` under the explicit `id`, retrying transient failures.
pub async fn commit_explicit<B: Bus>(
    bus: &B,
    cancel: &CancellationToken,
    stream: &str,
    id: StreamId,
    payload: &[u8],
) -> Result<Commit, BusError> {
    let res = with_retry(cancel, || async move {
        match bus
            .append(stream, IdSpec::Explicit(id), payload, None)
            .await
        {
            Ok(_) => Ok(Commit::Written),
            Err(BusError::Fenced { .. }) => {
                let existing = bus.range(stream, id, id, 1).await?;
                Ok(if existing.first().is_some_and(|e| e.payload == payload) {
                    Commit::Written
                } else {
                    Commit::Fenced
                })
            }
            Err(e) => Err(e),
        }
    })
    .await?;
    Ok(res.unwrap_or(Commit::Cancelled))
}

/// Wait before the one retry of [`append_retrying_once`] (the first call after Redis
/// restarted fails while the connection is re-established).
pub const APPEND_RETRY_AFTER: Duration = Duration::from_millis(100);

/// Newest entries of the stream [`append_retrying_once`] searches for the payload before
/// it retries.
pub const APPEND_RETRY_LOOKBACK: usize = 256;

/// Appends `payload` under an auto id; on a transient failure retries once (after
/// [`APPEND_RETRY_AFTER`]), unless the payload reached the stream after all (the failure
/// was the answer, not the write): it is looked for among the [`APPEND_RETRY_LOOKBACK`]
/// newest entries first, so an entry is never appended twice. For payloads unique in
/// their stream (an encoded envelope: its id is). `on_failure` sees every failed bus call
/// (for counting); a failure that is not transient is returned at once.
///
/// One retry, not [`with_retry`]'s backoff: the caller (a player waiting for an `ack`)
/// wants a prompt answer more than a certain one.
pub async fn append_retrying_once<B: Bus>(
    bus: &B,
    stream: &str,
    payload: &[u8],
    mut on_failure: impl FnMut(&BusError),
) -> Result<(), BusError> {
    let first = match bus.append(stream, IdSpec::Auto, payload, None).await {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    on_failure(&first);
    if !first.is_transient() {
        return Err(first);
    }
    tokio::time::sleep(APPEND_RETRY_AFTER).await;
    let retried = async {
        let newest = bus.rev_range(stream, APPEND_RETRY_LOOKBACK).await?;
        if newest.iter().any(|e| e.payload == payload) {
            return Ok(());
        }
        bus.append(stream, IdSpec::Auto, payload, None)
            .await
            .map(|_| ())
    };
    let r = retried.await;
    if let Err(e) = &r {
        on_failure(e);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::MemoryBus;
    use crate::testkit::{Fault, FaultyBus, Op};

    #[tokio::test]
    async fn second_writer_is_fenced_but_a_retry_is_not() {
        let bus = MemoryBus::new();
        let cancel = CancellationToken::new();
        let id = StreamId::for_tick(7);
        assert_eq!(
            commit_explicit(&bus, &cancel, "s", id, b"a").await.unwrap(),
            Commit::Written
        );
        assert_eq!(
            commit_explicit(&bus, &cancel, "s", id, b"a").await.unwrap(),
            Commit::Written,
            "same bytes: an earlier attempt landed"
        );
        assert_eq!(
            commit_explicit(&bus, &cancel, "s", id, b"b").await.unwrap(),
            Commit::Fenced
        );
    }

    const CMD: &str = "t:{m:x}:cmd";

    async fn stored<B: Bus>(bus: &B) -> Vec<Vec<u8>> {
        let all = bus
            .rev_range(CMD, 100)
            .await
            .expect("reading the test stream");
        all.into_iter().map(|e| e.payload).collect()
    }

    /// Appends `b"command"` with one retry; returns the result and the failures seen.
    async fn append(bus: &FaultyBus<MemoryBus>) -> (Result<(), BusError>, usize) {
        let mut failures = 0;
        let r = append_retrying_once(bus, CMD, b"command", |_| failures += 1).await;
        (r, failures)
    }

    #[tokio::test(start_paused = true)]
    async fn an_append_that_failed_once_is_appended_by_the_retry() {
        let bus = FaultyBus::new(MemoryBus::new());
        bus.inner()
            .append(CMD, IdSpec::Auto, b"earlier", None)
            .await
            .unwrap();
        bus.fail_next(Op::Append, 1, Fault::Before);
        let (r, failures) = append(&bus).await;
        r.unwrap();
        assert_eq!(failures, 1);
        assert_eq!(
            stored(&bus).await,
            vec![b"command".to_vec(), b"earlier".to_vec()]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_written_before_its_answer_was_lost_is_not_appended_twice() {
        let bus = FaultyBus::new(MemoryBus::new());
        bus.fail_next(Op::Append, 1, Fault::After);
        let (r, failures) = append(&bus).await;
        r.unwrap();
        assert_eq!(failures, 1);
        assert_eq!(stored(&bus).await, vec![b"command".to_vec()]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_bus_still_down_at_the_retry_is_reported() {
        let bus = FaultyBus::new(MemoryBus::new());
        bus.fail_next(Op::Append, 2, Fault::Before);
        let (r, failures) = append(&bus).await;
        assert!(matches!(r, Err(BusError::Unavailable(_))), "{r:?}");
        assert_eq!(failures, 2, "the first append and the retry");
        assert!(stored(&bus).await.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_lookup_before_the_retry_is_reported_and_nothing_is_appended() {
        let bus = FaultyBus::new(MemoryBus::new());
        bus.fail_next(Op::Append, 1, Fault::Before);
        bus.fail_next(Op::RevRange, 1, Fault::Before);
        let (r, failures) = append(&bus).await;
        assert!(matches!(r, Err(BusError::Unavailable(_))), "{r:?}");
        assert_eq!(failures, 2);
        assert!(stored(&bus).await.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_is_not_retried() {
        let bus = FaultyBus::new(MemoryBus::new());
        bus.fail_next_with(
            Op::Append,
            1,
            Fault::Before,
            BusError::Protocol("WRONGTYPE".into()),
        );
        let (r, failures) = append(&bus).await;
        assert!(matches!(r, Err(BusError::Protocol(_))), "{r:?}");
        assert_eq!(failures, 1);
        assert_eq!(bus.calls(Op::Append), 1, "no second append");
        assert_eq!(bus.calls(Op::RevRange), 0, "no lookup");
    }
}
