//! `MemoryBus`: the Bus in process, with Redis Streams semantics (ordering, fencing,
//! per-group pending lists, idle claims, blocking tails woken by appends). Embedded mode
//! and fast tests run on it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    Append, Bus, BusError, Entry, IdSpec, PendingEntry, RawField, StreamId, MAX_BLOCK,
    RELEASED_IDLE,
};

struct Pending {
    consumer: String,
    /// Last delivery (or touch); `None` once released, which reads as [`RELEASED_IDLE`].
    delivered_at: Option<Instant>,
    deliveries: u64,
}

impl Pending {
    fn idle(&self, now: Instant) -> Duration {
        self.delivered_at
            .map(|t| now.saturating_duration_since(t))
            .unwrap_or(RELEASED_IDLE)
    }
}

#[derive(Default)]
struct Group {
    last_delivered: StreamId,
    pending: BTreeMap<StreamId, Pending>,
}

#[derive(Default)]
struct Stream {
    entries: BTreeMap<StreamId, Vec<u8>>,
    /// All fields of the entries not of this crate's shape ([`MemoryBus::append_fields`]).
    foreign: BTreeMap<StreamId, Vec<RawField>>,
    /// The last id ever written (survives trims, like Redis' `last-generated-id`).
    last_id: StreamId,
    groups: BTreeMap<String, Group>,
    appended: Arc<Notify>,
}

impl Stream {
    fn next_auto_id(&self) -> StreamId {
        let now = crate::envelope::now_ms();
        if now > self.last_id.ms {
            StreamId::new(now, 0)
        } else {
            self.last_id.next()
        }
    }

    fn trim_to(&mut self, maxlen: usize) -> u64 {
        let mut removed = 0;
        while self.entries.len() > maxlen {
            if let Some((id, _)) = self.entries.pop_first() {
                self.foreign.remove(&id);
            }
            removed += 1;
        }
        removed
    }
}

/// The entry stored under `id`, with its fields if it is of a foreign shape.
fn entry(foreign: &BTreeMap<StreamId, Vec<RawField>>, id: StreamId, payload: &[u8]) -> Entry {
    match foreign.get(&id) {
        Some(fields) => Entry::from_fields(id, fields.clone()),
        None => Entry::new(id, payload.to_vec()),
    }
}

/// The in-process bus. Cloning shares the same streams.
#[derive(Clone, Default)]
pub struct MemoryBus {
    streams: Arc<Mutex<HashMap<String, Stream>>>,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Stream>> {
        // A panic while holding the lock cannot leave a stream half-written (every
        // mutation is a single map operation), so a poisoned lock is still usable.
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append_locked(
        map: &mut HashMap<String, Stream>,
        stream: &str,
        id: IdSpec,
        payload: &[u8],
        maxlen: Option<usize>,
    ) -> Result<StreamId, BusError> {
        let s = map.entry(stream.to_string()).or_default();
        let id = match id {
            IdSpec::Auto => s.next_auto_id(),
            IdSpec::Explicit(id) => {
                if id <= s.last_id || id == StreamId::ZERO {
                    return Err(BusError::Fenced {
                        stream: stream.to_string(),
                        id,
                        last: s.last_id,
                    });
                }
                id
            }
        };
        s.entries.insert(id, payload.to_vec());
        s.last_id = id;
        if let Some(n) = maxlen {
            s.trim_to(n);
        }
        s.appended.notify_waiters();
        Ok(id)
    }

    /// Appends an entry made of arbitrary fields, as a foreign producer would (the
    /// services never write these; see `RedisBus::append_fields`).
    pub fn append_fields(
        &self,
        stream: &str,
        id: IdSpec,
        fields: &[RawField],
    ) -> Result<StreamId, BusError> {
        if fields.is_empty() {
            // As Redis refuses an XADD without fields.
            return Err(BusError::Protocol(
                "an entry needs at least one field".into(),
            ));
        }
        let entry = Entry::from_fields(StreamId::ZERO, fields.to_vec());
        let mut map = self.lock();
        let id = Self::append_locked(&mut map, stream, id, &entry.payload, None)?;
        if let Some(fields) = entry.fields {
            map.entry(stream.to_string())
                .or_default()
                .foreign
                .insert(id, fields);
        }
        Ok(id)
    }

    /// Every stream the bus holds state for (entries, groups, or waiting readers), with
    /// its entry count and payload bytes, sorted by name: what the bus keeps in memory.
    pub fn footprint(&self) -> Vec<StreamFootprint> {
        let mut out: Vec<StreamFootprint> = self
            .lock()
            .iter()
            .map(|(name, s)| StreamFootprint {
                name: name.clone(),
                entries: s.entries.len(),
                bytes: s.entries.values().map(Vec::len).sum(),
                groups: s.groups.len(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Waits until `ready` returns entries, an append to `stream` happens, or the block
    /// time runs out; then returns what `ready` gives.
    async fn blocking<F>(
        &self,
        stream: &str,
        block: Option<Duration>,
        mut ready: F,
    ) -> Result<Vec<Entry>, BusError>
    where
        F: FnMut(&mut HashMap<String, Stream>) -> Result<Vec<Entry>, BusError> + Send,
    {
        // Declared first, dropped last (after the wake-up handle cloned below, also when
        // the read is cancelled): a wait on a stream nobody wrote leaves nothing behind.
        let _placeholder = Placeholder { bus: self, stream };
        let deadline = block.map(|b| Instant::now() + b.min(MAX_BLOCK));
        loop {
            let notify = {
                let mut map = self.lock();
                let got = ready(&mut map)?;
                if !got.is_empty() {
                    return Ok(got);
                }
                map.entry(stream.to_string()).or_default().appended.clone()
            };
            let Some(deadline) = deadline else {
                return Ok(Vec::new());
            };
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Re-check after registering so an append between the check and the
            // registration is not missed.
            {
                let mut map = self.lock();
                let got = ready(&mut map)?;
                if !got.is_empty() {
                    return Ok(got);
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let mut map = self.lock();
                return ready(&mut map);
            }
        }
    }
}

/// What [`MemoryBus::footprint`] reports of one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamFootprint {
    pub name: String,
    pub entries: usize,
    /// Payload bytes of the entries.
    pub bytes: usize,
    pub groups: usize,
}

/// A blocking read registers the stream it waits on so appends can wake it. For a stream
/// that does not exist (never written, or deleted: an ended match's), that registration
/// is removed again when the read ends, unless another reader still waits on it;
/// otherwise every read of a deleted stream would leave an empty stream behind for good.
struct Placeholder<'a> {
    bus: &'a MemoryBus,
    stream: &'a str,
}

impl Drop for Placeholder<'_> {
    fn drop(&mut self) {
        let mut map = self.bus.lock();
        let unused = map.get(self.stream).is_some_and(|s| {
            s.entries.is_empty()
                && s.last_id == StreamId::ZERO
                && s.groups.is_empty()
                && Arc::strong_count(&s.appended) == 1
        });
        if unused {
            map.remove(self.stream);
        }
    }
}

fn no_group(stream: &str, group: &str) -> BusError {
    BusError::NoGroup {
        stream: stream.to_string(),
        group: group.to_string(),
    }
}

impl Bus for MemoryBus {
    async fn append(
        &self,
        stream: &str,
        id: IdSpec,
        payload: &[u8],
        maxlen: Option<usize>,
    ) -> Result<StreamId, BusError> {
        Self::append_locked(&mut self.lock(), stream, id, payload, maxlen)
    }

    async fn append_batch(&self, items: Vec<Append>) -> Result<Vec<StreamId>, BusError> {
        let mut map = self.lock();
        items
            .iter()
            .map(|a| Self::append_locked(&mut map, &a.stream, a.id, &a.payload, a.maxlen))
            .collect()
    }

    async fn range(
        &self,
        stream: &str,
        from: StreamId,
        to: StreamId,
        count: usize,
    ) -> Result<Vec<Entry>, BusError> {
        if from > to {
            return Ok(Vec::new());
        }
        let map = self.lock();
        Ok(map
            .get(stream)
            .map(|s| {
                s.entries
                    .range(from..=to)
                    .take(count)
                    .map(|(id, p)| entry(&s.foreign, *id, p))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn rev_range(&self, stream: &str, count: usize) -> Result<Vec<Entry>, BusError> {
        let map = self.lock();
        Ok(map
            .get(stream)
            .map(|s| {
                s.entries
                    .iter()
                    .rev()
                    .take(count)
                    .map(|(id, p)| entry(&s.foreign, *id, p))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn read_after(
        &self,
        stream: &str,
        after: StreamId,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Entry>, BusError> {
        let key = stream.to_string();
        self.blocking(stream, block, move |map| {
            Ok(map
                .get(&key)
                .map(|s| {
                    s.entries
                        .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                        .take(count)
                        .map(|(id, p)| entry(&s.foreign, *id, p))
                        .collect()
                })
                .unwrap_or_default())
        })
        .await
    }

    async fn create_group(
        &self,
        stream: &str,
        group: &str,
        start: StreamId,
    ) -> Result<(), BusError> {
        let mut map = self.lock();
        let s = map.entry(stream.to_string()).or_default();
        s.groups.entry(group.to_string()).or_insert_with(|| Group {
            last_delivered: start,
            pending: BTreeMap::new(),
        });
        Ok(())
    }

    async fn read_group(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Entry>, BusError> {
        let (key, group_name, consumer) =
            (stream.to_string(), group.to_string(), consumer.to_string());
        self.blocking(stream, block, move |map| {
            let s = map
                .get_mut(&key)
                .ok_or_else(|| no_group(&key, &group_name))?;
            let g = s
                .groups
                .get_mut(&group_name)
                .ok_or_else(|| no_group(&key, &group_name))?;
            let now = Instant::now();
            let got: Vec<Entry> = s
                .entries
                .range((
                    std::ops::Bound::Excluded(g.last_delivered),
                    std::ops::Bound::Unbounded,
                ))
                .take(count)
                .map(|(id, p)| entry(&s.foreign, *id, p))
                .collect();
            for e in &got {
                g.last_delivered = e.id;
                g.pending.insert(
                    e.id,
                    Pending {
                        consumer: consumer.clone(),
                        delivered_at: Some(now),
                        deliveries: 1,
                    },
                );
            }
            Ok(got)
        })
        .await
    }

    async fn ack(&self, stream: &str, group: &str, ids: &[StreamId]) -> Result<u64, BusError> {
        let mut map = self.lock();
        let Some(g) = map.get_mut(stream).and_then(|s| s.groups.get_mut(group)) else {
            return Ok(0);
        };
        Ok(ids
            .iter()
            .filter(|id| g.pending.remove(id).is_some())
            .count() as u64)
    }

    async fn pending(
        &self,
        stream: &str,
        group: &str,
        count: usize,
    ) -> Result<Vec<PendingEntry>, BusError> {
        let map = self.lock();
        let g = map
            .get(stream)
            .and_then(|s| s.groups.get(group))
            .ok_or_else(|| no_group(stream, group))?;
        let now = Instant::now();
        Ok(g.pending
            .iter()
            .take(count)
            .map(|(id, p)| PendingEntry {
                id: *id,
                consumer: p.consumer.clone(),
                idle: p.idle(now),
                deliveries: p.deliveries,
            })
            .collect())
    }

    async fn claim_idle(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Entry>, BusError> {
        let mut map = self.lock();
        let s = map.get_mut(stream).ok_or_else(|| no_group(stream, group))?;
        let g = s
            .groups
            .get_mut(group)
            .ok_or_else(|| no_group(stream, group))?;
        let now = Instant::now();
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (id, p) in g.pending.iter_mut() {
            if out.len() >= count {
                break;
            }
            let idle = p.idle(now);
            if idle < min_idle {
                continue;
            }
            match s.entries.get(id) {
                Some(payload) => {
                    p.consumer = consumer.to_string();
                    p.delivered_at = Some(now);
                    p.deliveries += 1;
                    out.push(entry(&s.foreign, *id, payload));
                }
                None => gone.push(*id),
            }
        }
        for id in gone {
            g.pending.remove(&id);
        }
        Ok(out)
    }

    async fn touch(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        ids: &[StreamId],
    ) -> Result<Vec<StreamId>, BusError> {
        let mut map = self.lock();
        let g = map
            .get_mut(stream)
            .and_then(|s| s.groups.get_mut(group))
            .ok_or_else(|| no_group(stream, group))?;
        let now = Instant::now();
        let mut owned = Vec::new();
        for id in ids {
            if let Some(p) = g.pending.get_mut(id) {
                if p.consumer == consumer {
                    p.delivered_at = Some(now);
                    owned.push(*id);
                }
            }
        }
        Ok(owned)
    }

    async fn release(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        ids: &[StreamId],
    ) -> Result<(), BusError> {
        let mut map = self.lock();
        let g = map
            .get_mut(stream)
            .and_then(|s| s.groups.get_mut(group))
            .ok_or_else(|| no_group(stream, group))?;
        for id in ids {
            if let Some(p) = g.pending.get_mut(id) {
                if p.consumer == consumer {
                    p.delivered_at = None;
                }
            }
        }
        Ok(())
    }

    async fn trim(&self, stream: &str, maxlen: usize) -> Result<u64, BusError> {
        let mut map = self.lock();
        Ok(map.get_mut(stream).map(|s| s.trim_to(maxlen)).unwrap_or(0))
    }

    async fn len(&self, stream: &str) -> Result<u64, BusError> {
        Ok(self
            .lock()
            .get(stream)
            .map(|s| s.entries.len() as u64)
            .unwrap_or(0))
    }

    async fn delete(&self, streams: &[String]) -> Result<(), BusError> {
        let mut map = self.lock();
        for s in streams {
            if let Some(old) = map.remove(s) {
                old.appended.notify_waiters();
            }
        }
        Ok(())
    }

    async fn keys(&self, prefix: &str) -> Result<Vec<String>, BusError> {
        let mut keys: Vec<String> = self
            .lock()
            .iter()
            .filter(|(k, s)| {
                // Reads register a stream to wait on it; like Redis, only written streams
                // (or ones with groups) exist.
                k.starts_with(prefix) && (s.last_id != StreamId::ZERO || !s.groups.is_empty())
            })
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reading_a_stream_that_does_not_exist_leaves_nothing_behind() {
        let bus = MemoryBus::new();
        bus.append("kept", IdSpec::Auto, b"x", None).await.unwrap();
        bus.delete(&["gone".to_string()]).await.unwrap();
        let got = bus
            .read_after("gone", StreamId::ZERO, 10, Some(Duration::from_millis(20)))
            .await
            .unwrap();
        assert!(got.is_empty());
        // A read cancelled while it waits.
        let waiting = bus.read_after("gone", StreamId::ZERO, 10, Some(Duration::from_secs(2)));
        assert!(tokio::time::timeout(Duration::from_millis(20), waiting)
            .await
            .is_err());
        let names: Vec<String> = bus.footprint().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["kept"]);
    }

    #[tokio::test]
    async fn a_reader_still_waiting_keeps_its_wake_up() {
        let bus = MemoryBus::new();
        let reader = {
            let bus = bus.clone();
            tokio::spawn(async move {
                bus.read_after("s", StreamId::ZERO, 10, Some(Duration::from_secs(2)))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Another read of the same stream ends while the first one waits.
        bus.read_after("s", StreamId::ZERO, 10, Some(Duration::from_millis(20)))
            .await
            .unwrap();
        bus.append("s", IdSpec::Auto, b"x", None).await.unwrap();
        let got = tokio::time::timeout(Duration::from_millis(500), reader)
            .await
            .expect("the waiting reader was woken by the append")
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 1);
    }
}
