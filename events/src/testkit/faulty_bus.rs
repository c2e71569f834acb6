//! [`FaultyBus`]: any [`Bus`] with faults injected by rule (fail the next N appends, fail
//! every read of a key, lose the answer of a write that happened, delay a call), for tests
//! of what a caller does when the bus misbehaves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::bus::{Append, Bus, BusError, Entry, IdSpec, PendingEntry, StreamId};

/// A bus operation (one method of [`Bus`]), for choosing which calls a rule hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Append,
    /// [`Bus::append_batch`], and each batch of [`Bus::append_batches`].
    AppendBatch,
    Range,
    RevRange,
    ReadAfter,
    CreateGroup,
    ReadGroup,
    Ack,
    Pending,
    ClaimIdle,
    Touch,
    Release,
    Trim,
    Len,
    LastId,
    Delete,
    Keys,
}

impl Op {
    /// The operations that only read.
    pub const READS: &'static [Op] = &[
        Op::Range,
        Op::RevRange,
        Op::ReadAfter,
        Op::ReadGroup,
        Op::Pending,
        Op::Len,
        Op::LastId,
        Op::Keys,
    ];

    /// The operations that append entries.
    pub const APPENDS: &'static [Op] = &[Op::Append, Op::AppendBatch];
}

/// What a rule does to a call it hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call fails without reaching the inner bus (the connection was down).
    Before,
    /// The call reaches the inner bus and takes effect, then fails anyway (the answer was
    /// lost): an append is written, a group read delivers its entries.
    After,
    /// The call reaches the inner bus after this wait (a slow server).
    Delay(Duration),
}

/// One fault rule: which calls it hits, how often, and what it does to them.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The operations it hits; empty: every operation.
    pub ops: Vec<Op>,
    /// Only calls naming this stream key (any of a batch's or a delete's; the prefix of
    /// [`Bus::keys`]); `None`: any key.
    pub key: Option<String>,
    /// How many calls it hits before it is spent; `None`: until [`FaultyBus::heal`].
    pub times: Option<usize>,
    pub fault: Fault,
    /// The error a failed call returns (not used by [`Fault::Delay`]).
    pub error: BusError,
}

impl Rule {
    /// A rule hitting every call of `ops` with `fault`, until healed, failing with
    /// [`unavailable`].
    pub fn new(ops: &[Op], fault: Fault) -> Self {
        Self {
            ops: ops.to_vec(),
            key: None,
            times: None,
            fault,
            error: unavailable(),
        }
    }

    /// Only calls naming `key`.
    pub fn on_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Only the next `n` matching calls.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    /// Failing with `error` instead of [`unavailable`].
    pub fn error(mut self, error: BusError) -> Self {
        self.error = error;
        self
    }

    fn hits(&self, op: Op, keys: &[&str]) -> bool {
        (self.ops.is_empty() || self.ops.contains(&op))
            && self.key.as_deref().is_none_or(|k| keys.contains(&k))
    }
}

/// The error of a failed call unless a rule names another: a broken connection, which
/// callers treat as transient.
pub fn unavailable() -> BusError {
    BusError::Unavailable("injected fault: connection reset".into())
}

#[derive(Default)]
struct Faults {
    rules: Vec<Rule>,
    calls: HashMap<Op, usize>,
    /// Reports its batches as written apart ([`FaultyBus::batches_apart`]).
    apart: bool,
}

/// A [`Bus`] that passes every call to `inner` except those a [`Rule`] hits. The first
/// rule (in the order added) that hits a call decides it and is spent by one. Clones share
/// their rules and call counts.
#[derive(Clone)]
pub struct FaultyBus<B> {
    inner: B,
    faults: Arc<Mutex<Faults>>,
}

impl<B: Bus> FaultyBus<B> {
    /// `inner` with no faults yet.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            faults: Arc::default(),
        }
    }

    /// The bus underneath, to set up or check data past the faults.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Adds a rule after the ones already there.
    pub fn inject(&self, rule: Rule) -> &Self {
        self.lock().rules.push(rule);
        self
    }

    /// The next `n` calls of `op` fail as `fault` says, with [`unavailable`].
    pub fn fail_next(&self, op: Op, n: usize, fault: Fault) -> &Self {
        self.inject(Rule::new(&[op], fault).times(n))
    }

    /// The next `n` calls of `op` fail as `fault` says, with `error`.
    pub fn fail_next_with(&self, op: Op, n: usize, fault: Fault, error: BusError) -> &Self {
        self.inject(Rule::new(&[op], fault).times(n).error(error))
    }

    /// Every read of `key` fails until [`FaultyBus::heal`].
    pub fn fail_reads_of(&self, key: impl Into<String>) -> &Self {
        self.inject(Rule::new(Op::READS, Fault::Before).on_key(key))
    }

    /// Every call of `op` waits `by` first, until [`FaultyBus::heal`].
    pub fn delay(&self, op: Op, by: Duration) -> &Self {
        self.inject(Rule::new(&[op], Fault::Delay(by)))
    }

    /// Reports [`Bus::batches_share_a_round_trip`] false, as a Redis Cluster does, so a
    /// group committer sends each batch on its own (and a delay hits only its batch).
    pub fn batches_apart(&self) -> &Self {
        self.lock().apart = true;
        self
    }

    /// Drops every rule: the bus works again.
    pub fn heal(&self) {
        self.lock().rules.clear();
    }

    /// How many calls of `op` were made, faulty or not.
    pub fn calls(&self, op: Op) -> usize {
        self.lock().calls.get(&op).copied().unwrap_or(0)
    }

    fn lock(&self) -> MutexGuard<'_, Faults> {
        // Nothing panics while holding it; a poisoned lock is still consistent.
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts the call and finds the fault that hits it, spending one use of its rule.
    fn decide(&self, op: Op, keys: &[&str]) -> Option<(Fault, BusError)> {
        let mut f = self.lock();
        *f.calls.entry(op).or_default() += 1;
        let i = f.rules.iter().position(|r| r.hits(op, keys))?;
        let rule = &mut f.rules[i];
        let decided = (rule.fault, rule.error.clone());
        if let Some(n) = rule.times.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                f.rules.remove(i);
            }
        }
        Some(decided)
    }

    /// Runs `call` (an inner bus call, not started yet) as the fault for `op` on `keys`
    /// says.
    async fn run<T>(
        &self,
        op: Op,
        keys: &[&str],
        call: impl std::future::Future<Output = Result<T, BusError>>,
    ) -> Result<T, BusError> {
        match self.decide(op, keys) {
            None => call.await,
            Some((Fault::Before, e)) => Err(e),
            Some((Fault::After, e)) => {
                call.await?;
                Err(e)
            }
            Some((Fault::Delay(by), _)) => {
                tokio::time::sleep(by).await;
                call.await
            }
        }
    }
}

fn streams_of(items: &[Append]) -> Vec<&str> {
    items.iter().map(|a| a.stream.as_str()).collect()
}

impl<B: Bus> Bus for FaultyBus<B> {
    async fn append(
        &self,
        stream: &str,
        id: IdSpec,
        payload: &[u8],
        maxlen: Option<usize>,
    ) -> Result<StreamId, BusError> {
        let call = self.inner.append(stream, id, payload, maxlen);
        self.run(Op::Append, &[stream], call).await
    }

    fn batches_share_a_round_trip(&self) -> bool {
        !self.lock().apart && self.inner.batches_share_a_round_trip()
    }

    async fn append_batch(&self, items: Vec<Append>) -> Result<Vec<StreamId>, BusError> {
        let streams: Vec<String> = items.iter().map(|a| a.stream.clone()).collect();
        let keys: Vec<&str> = streams.iter().map(String::as_str).collect();
        let call = self.inner.append_batch(items);
        self.run(Op::AppendBatch, &keys, call).await
    }

    /// Each batch is decided like an [`Bus::append_batch`]; the batches that reach the
    /// inner bus go in one [`Bus::append_batches`] call, so its pipelining is kept.
    async fn append_batches(
        &self,
        batches: &[Vec<Append>],
    ) -> Vec<Result<Vec<StreamId>, BusError>> {
        let faults: Vec<_> = batches
            .iter()
            .map(|b| self.decide(Op::AppendBatch, &streams_of(b)))
            .collect();
        let longest = faults
            .iter()
            .filter_map(|f| match f {
                Some((Fault::Delay(by), _)) => Some(*by),
                _ => None,
            })
            .max();
        if let Some(by) = longest {
            tokio::time::sleep(by).await;
        }
        let sent: Vec<Vec<Append>> = batches
            .iter()
            .zip(&faults)
            .filter(|(_, f)| !matches!(f, Some((Fault::Before, _))))
            .map(|(b, _)| b.clone())
            .collect();
        let mut answers = self.inner.append_batches(&sent).await.into_iter();
        faults
            .into_iter()
            .map(|f| match f {
                Some((Fault::Before, e)) => Err(e),
                Some((Fault::After, e)) => {
                    let answer = answers.next().unwrap_or_else(|| Err(e.clone()));
                    answer.and(Err(e))
                }
                None | Some((Fault::Delay(_), _)) => answers
                    .next()
                    .unwrap_or_else(|| Err(BusError::Protocol("missing batch answer".into()))),
            })
            .collect()
    }

    async fn range(
        &self,
        stream: &str,
        from: StreamId,
        to: StreamId,
        count: usize,
    ) -> Result<Vec<Entry>, BusError> {
        let call = self.inner.range(stream, from, to, count);
        self.run(Op::Range, &[stream], call).await
    }

    async fn rev_range(&self, stream: &str, count: usize) -> Result<Vec<Entry>, BusError> {
        let call = self.inner.rev_range(stream, count);
        self.run(Op::RevRange, &[stream], call).await
    }

    async fn read_after(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Entry>, BusError> {
        let call = self.inner.read_after(stream, after, count, block);
        self.run(Op::ReadAfter, &[stream], call).await
    }

    async fn create_group(
        &self,
        stream: &str,
        group: &str,
        start: StreamId,
    ) -> Result<(), BusError> {
        let call = self.inner.create_group(stream, group, start);
        self.run(Op::CreateGroup, &[stream], call).await
    }

    async fn read_group(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Entry>, BusError> {
        let call = self.inner.read_group(stream, group, consumer, count, block);
        self.run(Op::ReadGroup, &[stream], call).await
    }

    async fn ack(&self, stream: &str, group: &str, ids: &[StreamId]) -> Result<u64, BusError> {
        let call = self.inner.ack(stream, group, ids);
        self.run(Op::Ack, &[stream], call).await
    }

    async fn pending(
        &self,
        stream: &str,
        group: &str,
        count: usize,
    ) -> Result<Vec<PendingEntry>, BusError> {
        let call = self.inner.pending(stream, group, count);
        self.run(Op::Pending, &[stream], call).await
    }

    async fn claim_idle(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Entry>, BusError> {
        let call = self
            .inner
            .claim_idle(stream, group, consumer, min_idle, count);
        self.run(Op::ClaimIdle, &[stream], call).await
    }

    async fn touch(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        ids: &[StreamId],
    ) -> Result<Vec<StreamId>, BusError> {
        let call = self.inner.touch(stream, group, consumer, ids);
        self.run(Op::Touch, &[stream], call).await
    }

    async fn release(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        ids: &[StreamId],
    ) -> Result<(), BusError> {
        let call = self.inner.release(stream, group, consumer, ids);
        self.run(Op::Release, &[stream], call).await
    }

    async fn trim(&self, stream: &str, maxlen: usize) -> Result<u64, BusError> {
        let call = self.inner.trim(stream, maxlen);
        self.run(Op::Trim, &[stream], call).await
    }

    async fn len(&self, stream: &str) -> Result<u64, BusError> {
        let call = self.inner.len(stream);
        self.run(Op::Len, &[stream], call).await
    }

    async fn last_id(&self, stream: &str) -> Result<Option<StreamId>, BusError> {
        let call = self.inner.last_id(stream);
        self.run(Op::LastId, &[stream], call).await
    }

    async fn delete(&self, streams: &[String]) -> Result<(), BusError> {
        let keys: Vec<&str> = streams.iter().map(String::as_str).collect();
        let call = self.inner.delete(streams);
        self.run(Op::Delete, &keys, call).await
    }

    async fn keys(&self, prefix: &str) -> Result<Vec<String>, BusError> {
        let call = self.inner.keys(prefix);
        self.run(Op::Keys, &[prefix], call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::MemoryBus;

    fn item(stream: &str, payload: &[u8]) -> Append {
        Append {
            stream: stream.into(),
            id: IdSpec::Auto,
            payload: payload.to_vec(),
            maxlen: None,
        }
    }

    async fn payloads(bus: &MemoryBus, stream: &str) -> Vec<Vec<u8>> {
        let all = bus
            .range(stream, StreamId::ZERO, StreamId::MAX, 100)
            .await
            .unwrap();
        all.into_iter().map(|e| e.payload).collect()
    }

    #[tokio::test]
    async fn a_rule_hits_as_many_calls_as_it_says_then_the_bus_works() {
        let bus = FaultyBus::new(MemoryBus::new());
        bus.fail_next(Op::Append, 2, Fault::Before);
        for _ in 0..2 {
            let r = bus.append("s", IdSpec::Auto, b"x", None).await;
            assert_eq!(r, Err(unavailable()));
        }
        bus.append("s", IdSpec::Auto, b"y", None).await.unwrap();
        assert_eq!(payloads(bus.inner(), "s").await, vec![b"y".to_vec()]);
        assert_eq!(bus.calls(Op::Append), 3);
    }

    #[tokio::test]
    async fn a_lost_answer_still_writes() {
        let bus = FaultyBus::new(MemoryBus::new());
        bus.fail_next(Op::Append, 1, Fault::After);
        assert!(bus.append("s", IdSpec::Auto, b"x", None).await.is_err());
        assert_eq!(payloads(bus.inner(), "s").await, vec![b"x".to_vec()]);
    }

    #[tokio::test]
    async fn reads_of_one_key_fail_until_healed_and_other_keys_are_untouched() {
        let bus = FaultyBus::new(MemoryBus::new());
        bus.append("a", IdSpec::Auto, b"1", None).await.unwrap();
        bus.append("b", IdSpec::Auto, b"2", None).await.unwrap();
        bus.fail_reads_of("a");
        assert!(bus.rev_range("a", 10).await.is_err());
        assert!(bus.read_after("a", StreamId::ZERO, 10, None).await.is_err());
        assert!(bus.len("a").await.is_err());
        assert_eq!(bus.rev_range("b", 10).await.unwrap().len(), 1);
        bus.append("a", IdSpec::Auto, b"3", None)
            .await
            .expect("writes are not reads");
        bus.heal();
        assert_eq!(bus.rev_range("a", 10).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn an_error_named_by_the_rule_is_returned() {
        let bus = FaultyBus::new(MemoryBus::new());
        let err = BusError::Protocol("boom".into());
        bus.fail_next_with(Op::Keys, 1, Fault::Before, err.clone());
        assert_eq!(bus.keys("x").await, Err(err));
        assert_eq!(bus.keys("x").await, Ok(vec![]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_delayed_call_waits_then_succeeds() {
        let bus = FaultyBus::new(MemoryBus::new());
        bus.delay(Op::Append, Duration::from_secs(3));
        let started = tokio::time::Instant::now();
        bus.append("s", IdSpec::Auto, b"x", None).await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(3));
        assert_eq!(payloads(bus.inner(), "s").await, vec![b"x".to_vec()]);
    }

    #[tokio::test]
    async fn batches_fail_one_by_one() {
        let bus = FaultyBus::new(MemoryBus::new());
        bus.inject(Rule::new(Op::APPENDS, Fault::Before).on_key("b").times(1));
        bus.inject(Rule::new(Op::APPENDS, Fault::After).on_key("c").times(1));
        let answers = bus
            .append_batches(&[
                vec![item("a", b"1")],
                vec![item("b", b"2")],
                vec![item("c", b"3")],
            ])
            .await;
        assert!(answers[0].is_ok());
        assert_eq!(answers[1], Err(unavailable()));
        assert_eq!(answers[2], Err(unavailable()));
        assert_eq!(payloads(bus.inner(), "a").await, vec![b"1".to_vec()]);
        assert!(payloads(bus.inner(), "b").await.is_empty(), "failed before");
        assert_eq!(
            payloads(bus.inner(), "c").await,
            vec![b"3".to_vec()],
            "answer lost"
        );
        assert_eq!(bus.calls(Op::AppendBatch), 3);
        bus.append_batch(vec![item("b", b"4")]).await.unwrap();
    }

    #[tokio::test]
    async fn clones_share_their_rules() {
        let bus = FaultyBus::new(MemoryBus::new());
        let other = bus.clone();
        bus.fail_next(Op::Len, 1, Fault::Before);
        assert!(other.len("s").await.is_err());
        assert_eq!(bus.len("s").await, Ok(0));
        assert_eq!(bus.calls(Op::Len), 2);
    }
}
