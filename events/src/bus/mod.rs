//! The `Bus`: the stream operations the services need, implemented over Redis Streams
//! ([`RedisBus`]) and in process ([`MemoryBus`]) with the same semantics, checked by one
//! conformance suite (`events/tests/conformance.rs`).

mod memory;
mod redis;
pub mod redis_cluster;

pub use self::memory::{MemoryBus, StreamFootprint};
pub use self::redis::{RedisBus, RedisBusConfig, ReplicaAckStats, REPLICA_RECHECK};

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

/// Idle time a released pending entry reports: longer than any lease timeout.
pub const RELEASED_IDLE: Duration = Duration::from_secs(24 * 3600);

/// Longest BLOCK a blocking read may ask for; longer waits are split by the caller's loop.
/// Kept well under the blocking connections' response timeout (see [`RedisBusConfig`]).
pub const MAX_BLOCK: Duration = Duration::from_secs(2);

/// A stream entry id, `ms-seq`, ordered like Redis orders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    /// `0-0`: before every entry.
    pub const ZERO: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest id: after every entry.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }

    /// The explicit id tick `n` is committed under (`n-1`): a second writer of the same
    /// tick is refused by the stream, which fences out a stale owner.
    pub const fn for_tick(n: u64) -> Self {
        Self { ms: n, seq: 1 }
    }

    /// The tick a [`StreamId::for_tick`] id stands for.
    pub const fn tick(self) -> u64 {
        self.ms
    }

    /// The next possible id.
    pub fn next(self) -> Self {
        if self.seq == u64::MAX {
            Self {
                ms: self.ms.saturating_add(1),
                seq: 0,
            }
        } else {
            Self {
                ms: self.ms,
                seq: self.seq + 1,
            }
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for StreamId {
    type Err = BusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BusError::InvalidId(s.to_string());
        let (ms, seq) = match s.split_once('-') {
            Some((ms, seq)) => (ms, seq),
            None => (s, "0"),
        };
        Ok(Self {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// How an appended entry gets its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdSpec {
    /// The stream assigns the next id from its clock.
    Auto,
    /// This id, which must be greater than the stream's last id; otherwise the append
    /// fails with [`BusError::Fenced`]. This is the fencing primitive.
    Explicit(StreamId),
}

/// The one field every entry this crate writes carries its payload (an encoded envelope)
/// in.
pub const PAYLOAD_FIELD: &str = "d";

/// One field of a stream entry as stored: its name and its value.
pub type RawField = (Vec<u8>, Vec<u8>);

/// One entry: its id and its payload (an encoded envelope).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: StreamId,
    /// The value of the [`PAYLOAD_FIELD`] (empty when the entry has none).
    pub payload: Vec<u8>,
    /// `None` for an entry of this crate's shape (exactly one field, [`PAYLOAD_FIELD`]).
    /// An entry of another shape (a foreign producer's: our field missing, or others
    /// beside it) keeps all of its fields here, in order, so that a dead letter shows
    /// what was really there.
    pub fields: Option<Vec<RawField>>,
}

impl Entry {
    /// An entry of this crate's shape.
    pub fn new(id: StreamId, payload: Vec<u8>) -> Self {
        Self {
            id,
            payload,
            fields: None,
        }
    }

    /// An entry made of these fields: of this crate's shape when they are exactly one
    /// [`PAYLOAD_FIELD`], else keeping them all.
    pub fn from_fields(id: StreamId, fields: Vec<RawField>) -> Self {
        match fields.as_slice() {
            [(name, value)] if name.as_slice() == PAYLOAD_FIELD.as_bytes() => {
                Self::new(id, value.clone())
            }
            _ => Self {
                id,
                payload: fields
                    .iter()
                    .find(|(name, _)| name.as_slice() == PAYLOAD_FIELD.as_bytes())
                    .map(|(_, value)| value.clone())
                    .unwrap_or_default(),
                fields: Some(fields),
            },
        }
    }

    /// True when the entry has no [`PAYLOAD_FIELD`] at all (not the same as an empty one).
    pub fn lacks_payload(&self) -> bool {
        self.fields.as_ref().is_some_and(|f| {
            !f.iter()
                .any(|(name, _)| name.as_slice() == PAYLOAD_FIELD.as_bytes())
        })
    }
}

/// One append of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Append {
    pub stream: String,
    pub id: IdSpec,
    pub payload: Vec<u8>,
    /// Trim the stream to about this many entries (MAXLEN ~) while appending.
    pub maxlen: Option<usize>,
}

/// An entry delivered to a consumer of a group and not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEntry {
    pub id: StreamId,
    pub consumer: String,
    pub idle: Duration,
    pub deliveries: u64,
}

/// What went wrong on the bus, by how to handle it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// An explicit id was not greater than the stream's last id: someone else already
    /// wrote there. A service that sees this on a commit has lost the match and must stop.
    #[error("fenced: id {id} is not after the last id {last} of stream {stream}")]
    Fenced {
        stream: String,
        id: StreamId,
        last: StreamId,
    },
    /// The consumer group does not exist.
    #[error("no consumer group {group} on stream {stream}")]
    NoGroup { stream: String, group: String },
    /// Not a stream id.
    #[error("invalid stream id {0:?}")]
    InvalidId(String),
    /// The server could not be reached or the connection broke; retry after backoff.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The server answered something unexpected.
    #[error("bus protocol error: {0}")]
    Protocol(String),
    /// On a Redis Cluster, the keys of one atomic batch or script are in different hash
    /// slots (so on different nodes, maybe): the caller must split it. Keys of one match
    /// share the `{m:ID}` tag and so a slot.
    #[error("keys {first} and {other} of one atomic batch are in different cluster hash slots")]
    CrossSlot { first: String, other: String },
}

impl BusError {
    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, BusError::Unavailable(_))
    }
}

/// Stream operations over Redis Streams semantics. Every method is safe to call
/// concurrently from many tasks.
pub trait Bus: Clone + Send + Sync + 'static {
    /// Appends one entry, optionally trimming to about `maxlen` entries.
    fn append(
        &self,
        stream: &str,
        id: IdSpec,
        payload: &[u8],
        maxlen: Option<usize>,
    ) -> impl Future<Output = Result<StreamId, BusError>> + Send;

    /// Appends many entries in one round trip (pipelined), in order. Stops at the first
    /// failure: the entries before it are written, and their ids are in the error's context
    /// only through a re-read, so callers use batches whose prefix is safe to keep.
    fn append_batch(
        &self,
        items: Vec<Append>,
    ) -> impl Future<Output = Result<Vec<StreamId>, BusError>> + Send;

    /// Appends several independent batches, each with [`Bus::append_batch`]'s semantics
    /// (in order, stopping at its first failure), and returns one result per batch, in
    /// order. A failure in one batch does not stop the others. The Redis bus sends them
    /// all in one pipeline, so one round trip (and, with `appendfsync always`, one fsync)
    /// serves them all: the group commit of [`crate::group_commit`].
    fn append_batches(
        &self,
        batches: &[Vec<Append>],
    ) -> impl Future<Output = Vec<Result<Vec<StreamId>, BusError>>> + Send {
        futures::future::join_all(batches.iter().map(|b| self.append_batch(b.clone())))
    }

    /// True when [`Bus::append_batches`] writes all its batches in one round trip whose
    /// answers come back together (one Redis node: one pipeline, one fsync). False when
    /// each batch is written on its own (a Redis Cluster: each on the master of its slot;
    /// commits waiting for replica acknowledgements): a group committer then answers
    /// each batch as soon as it is written instead of with the round's slowest.
    fn batches_share_a_round_trip(&self) -> bool {
        true
    }

    /// Entries with `from <= id <= to`, oldest first, at most `count`.
    fn range(
        &self,
        stream: &str,
        from: StreamId,
        to: StreamId,
        count: usize,
    ) -> impl Future<Output = Result<Vec<Entry>, BusError>> + Send;

    /// The newest entries, newest first, at most `count`.
    fn rev_range(
        &self,
        stream: &str,
        count: usize,
    ) -> impl Future<Output = Result<Vec<Entry>, BusError>> + Send;

    /// Entries after `after`, at most `count`; with `block`, waits up to that long
    /// (capped at [`MAX_BLOCK`]) for one to arrive.
    fn read_after(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
        block: Option<Duration>,
    ) -> impl Future<Output = Result<Vec<Entry>, BusError>> + Send;

    /// Creates a consumer group (and the stream if missing) delivering entries after
    /// `start`. Creating an existing group is not an error.
    fn create_group(
        &self,
        stream: &str,
        group: &str,
        start: StreamId,
    ) -> impl Future<Output = Result<(), BusError>> + Send;

    /// New entries for this consumer of the group (`XREADGROUP ... >`); each entry goes
    /// to exactly one consumer of a group and stays pending until acknowledged.
    fn read_group(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
    ) -> impl Future<Output = Result<Vec<Entry>, BusError>> + Send;

    /// Acknowledges entries; returns how many were pending.
    fn ack(
        &self,
        stream: &str,
        group: &str,
        ids: &[StreamId],
    ) -> impl Future<Output = Result<u64, BusError>> + Send;

    /// The group's pending entries, oldest first, at most `count`.
    fn pending(
        &self,
        stream: &str,
        group: &str,
        count: usize,
    ) -> impl Future<Output = Result<Vec<PendingEntry>, BusError>> + Send;

    /// Claims for `consumer` the pending entries idle at least `min_idle`
    /// (`XAUTOCLAIM` from the start), at most `count`. Entries deleted meanwhile are
    /// dropped from the pending list and not returned.
    fn claim_idle(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> impl Future<Output = Result<Vec<Entry>, BusError>> + Send;

    /// Resets the idle time of those of `ids` still pending for `consumer` (a lease
    /// keep-alive), atomically; returns the ids still owned by `consumer`. An entry another
    /// consumer claimed meanwhile is left alone and not returned: the lease is lost.
    fn touch(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        ids: &[StreamId],
    ) -> impl Future<Output = Result<Vec<StreamId>, BusError>> + Send;

    /// Marks those of `ids` pending for `consumer` as long idle, so another consumer's
    /// [`Bus::claim_idle`] takes them at once (graceful hand-over on shutdown).
    fn release(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        ids: &[StreamId],
    ) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Trims to about `maxlen` entries (MAXLEN ~); returns how many were removed.
    fn trim(
        &self,
        stream: &str,
        maxlen: usize,
    ) -> impl Future<Output = Result<u64, BusError>> + Send;

    /// Number of entries.
    fn len(&self, stream: &str) -> impl Future<Output = Result<u64, BusError>> + Send;

    /// The id of the newest entry, if any.
    fn last_id(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<Option<StreamId>, BusError>> + Send {
        async move { Ok(self.rev_range(stream, 1).await?.first().map(|e| e.id)) }
    }

    /// Deletes whole streams (with their groups).
    fn delete(&self, streams: &[String]) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Stream keys starting with `prefix` (for listing matches; not for hot paths).
    fn keys(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>, BusError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_id_parse_order_display() {
        let a: StreamId = "5-1".parse().unwrap();
        assert_eq!(a, StreamId::new(5, 1));
        assert_eq!(a.to_string(), "5-1");
        assert_eq!("7".parse::<StreamId>().unwrap(), StreamId::new(7, 0));
        assert!("x-1".parse::<StreamId>().is_err());
        assert!(StreamId::new(1, 9) < StreamId::new(2, 0));
        assert_eq!(StreamId::for_tick(0).to_string(), "0-1");
        assert!(StreamId::for_tick(0) > StreamId::ZERO);
        assert_eq!(StreamId::for_tick(42).tick(), 42);
    }
}
