//! Match leases: a service instance owns a match while the match's `MatchCreated` entry is
//! pending for it in the service's consumer group on the matches stream. It keeps the
//! lease alive by touching the entry, hands it over on shutdown by releasing it, and takes
//! over matches whose lease went idle (a crashed owner) with XAUTOCLAIM. Ownership is
//! only advisory: the commit fencing of each service's log is what keeps a stale owner out.

use std::collections::BTreeMap;
use std::time::Duration;

// tokio's clock (the real one outside tests) so tests can run lease timing on paused time.
use tokio::time::Instant;

use crate::bus::{Bus, BusError, Entry, StreamId};
use crate::dlq::decode_or_dead_letter;
use crate::event::{MatchCreated, MatchEvent};
use crate::ids::MatchId;
use crate::keys::Keys;

/// How a service instance takes and keeps matches.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Consumer group of the service kind (`engine`, `economy`).
    pub group: String,
    /// This instance's consumer name (unique per process).
    pub consumer: String,
    /// Most matches this instance runs at once.
    pub capacity: usize,
    /// A lease not touched for this long is taken over by another instance.
    pub idle_timeout: Duration,
}

/// Most new matches (never owned before) one instance takes per poll. A burst of new
/// matches is then shared by every instance polling the group instead of going to the
/// first one to poll; takeovers of idle leases are not limited by this.
pub const NEW_MATCHES_PER_POLL: usize = 2;

/// A match this instance now owns.
#[derive(Clone, Debug)]
pub struct Acquired {
    /// The lease: the `MatchCreated` entry's id in the matches stream.
    pub lease: StreamId,
    pub setup: MatchCreated,
    /// True when taken over from another (crashed or departed) instance.
    pub takeover: bool,
}

/// The leases one service instance holds.
pub struct Leases<B: Bus> {
    bus: B,
    keys: Keys,
    config: LeaseConfig,
    owned: BTreeMap<StreamId, MatchId>,
    /// Takeovers wait while the bus is failing and until this instant after it recovered.
    takeovers: TakeoverHold,
}

/// Whether idle leases may be taken over now. After this instance could not reach the
/// bus, every lease (its own and the others') looks idle by the length of the outage;
/// the other instances were cut off too and need a moment to touch theirs again. So
/// takeovers wait until one idle timeout after the first keep-alive that worked again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TakeoverHold {
    Open,
    /// A bus call failed; no keep-alive worked since.
    BusFailing,
    Until(Instant),
}

impl<B: Bus> Leases<B> {
    /// Joins the service's consumer group (creating it if needed).
    pub async fn join(bus: B, keys: Keys, config: LeaseConfig) -> Result<Self, BusError> {
        bus.create_group(&keys.matches(), &config.group, StreamId::ZERO)
            .await?;
        Ok(Self {
            bus,
            keys,
            config,
            owned: BTreeMap::new(),
            takeovers: TakeoverHold::Open,
        })
    }

    /// Records that the bus could not be reached: no takeovers until the keep-alive works
    /// again and one idle timeout has passed since (see [`TakeoverHold`]).
    pub fn bus_failed(&mut self) {
        self.takeovers = TakeoverHold::BusFailing;
    }

    /// True when idle leases may be taken over now.
    pub fn takeovers_allowed(&mut self) -> bool {
        match self.takeovers {
            TakeoverHold::Open => true,
            TakeoverHold::BusFailing => false,
            TakeoverHold::Until(t) if Instant::now() >= t => {
                self.takeovers = TakeoverHold::Open;
                true
            }
            TakeoverHold::Until(_) => false,
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Matches owned now.
    pub fn owned(&self) -> impl Iterator<Item = (&StreamId, &MatchId)> {
        self.owned.iter()
    }

    pub fn free(&self) -> usize {
        self.config.capacity.saturating_sub(self.owned.len())
    }

    /// Takes idle leases first (takeover, unless held after a bus outage), then at most
    /// [`NEW_MATCHES_PER_POLL`] new matches, up to the free capacity; waits up to `block`
    /// for a new one when nothing is available. A failed call holds takeovers
    /// ([`Leases::bus_failed`]).
    pub async fn acquire(&mut self, block: Option<Duration>) -> Result<Vec<Acquired>, BusError> {
        let r = self.acquire_inner(block).await;
        if matches!(&r, Err(e) if e.is_transient()) {
            self.bus_failed();
        }
        r
    }

    async fn acquire_inner(&mut self, block: Option<Duration>) -> Result<Vec<Acquired>, BusError> {
        let mut out = Vec::new();
        let stream = self.keys.matches();
        if self.free() > 0 && self.takeovers_allowed() {
            let claimed = self
                .bus
                .claim_idle(
                    &stream,
                    &self.config.group,
                    &self.config.consumer,
                    self.config.idle_timeout,
                    self.free(),
                )
                .await?;
            for e in claimed {
                if let Some(a) = self.accept(&stream, e, true).await? {
                    out.push(a);
                }
            }
        }
        let new = self.free().min(NEW_MATCHES_PER_POLL);
        if new > 0 {
            let block = if out.is_empty() { block } else { None };
            let fresh = self
                .bus
                .read_group(
                    &stream,
                    &self.config.group,
                    &self.config.consumer,
                    new,
                    block,
                )
                .await?;
            for e in fresh {
                if let Some(a) = self.accept(&stream, e, false).await? {
                    out.push(a);
                }
            }
        }
        Ok(out)
    }

    async fn accept(
        &mut self,
        stream: &str,
        e: Entry,
        takeover: bool,
    ) -> Result<Option<Acquired>, BusError> {
        let group = (self.config.group.as_str(), self.config.consumer.as_str());
        let Some(env) =
            decode_or_dead_letter::<MatchEvent, B>(&self.bus, &self.keys, stream, Some(group), &e)
                .await?
        else {
            return Ok(None);
        };
        match env.body {
            MatchEvent::MatchCreated(setup) => {
                self.owned.insert(e.id, setup.match_id.clone());
                Ok(Some(Acquired {
                    lease: e.id,
                    setup,
                    takeover,
                }))
            }
            // End markers carry no lease: nothing to own.
            MatchEvent::MatchEnded(_) => {
                self.bus.ack(stream, group.0, &[e.id]).await?;
                Ok(None)
            }
        }
    }

    /// Keeps every owned lease alive; returns the matches whose lease was lost. A failure
    /// holds takeovers ([`Leases::bus_failed`]); the first success after one starts the
    /// idle-timeout wait before takeovers resume.
    pub async fn keepalive(&mut self) -> Result<Vec<MatchId>, BusError> {
        let r = self.keepalive_inner().await;
        match &r {
            Err(e) if e.is_transient() => self.bus_failed(),
            Ok(_) if self.takeovers == TakeoverHold::BusFailing => {
                self.takeovers = TakeoverHold::Until(Instant::now() + self.config.idle_timeout);
            }
            _ => {}
        }
        r
    }

    async fn keepalive_inner(&mut self) -> Result<Vec<MatchId>, BusError> {
        let ids: Vec<StreamId> = self.owned.keys().copied().collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let still = self
            .bus
            .touch(
                &self.keys.matches(),
                &self.config.group,
                &self.config.consumer,
                &ids,
            )
            .await?;
        let mut lost = Vec::new();
        for id in ids {
            if !still.contains(&id) {
                if let Some(m) = self.owned.remove(&id) {
                    lost.push(m);
                }
            }
        }
        Ok(lost)
    }

    /// The match is over: acknowledge its lease for good.
    pub async fn finish(&mut self, lease: StreamId) -> Result<(), BusError> {
        self.owned.remove(&lease);
        self.bus
            .ack(&self.keys.matches(), &self.config.group, &[lease])
            .await
            .map(|_| ())
    }

    /// Stops owning a match without finishing it (fenced out, or failed): the lease
    /// stays pending and goes idle, so another instance takes it over.
    pub fn forget(&mut self, lease: StreamId) {
        self.owned.remove(&lease);
    }

    /// Graceful shutdown: hands every owned lease over at once.
    pub async fn release_all(&mut self) -> Result<(), BusError> {
        let ids: Vec<StreamId> = self.owned.keys().copied().collect();
        self.owned.clear();
        self.bus
            .release(
                &self.keys.matches(),
                &self.config.group,
                &self.config.consumer,
                &ids,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{IdSpec, MemoryBus};
    use crate::codec::encode;
    use crate::envelope::{Envelope, Source};
    use crate::event::MapSpec;

    fn created(m: &str) -> Vec<u8> {
        let setup = MatchCreated {
            match_id: MatchId::new(m).unwrap(),
            seed: 1,
            map: MapSpec { size: 32, seed: 1 },
            players: vec![],
            tick_hz: 20,
            scenario: crate::Scenario::Skirmish,
        };
        encode(&Envelope::new(
            setup.match_id.clone(),
            Source::System,
            MatchEvent::MatchCreated(setup),
        ))
        .unwrap()
    }

    fn config(consumer: &str, capacity: usize) -> LeaseConfig {
        LeaseConfig {
            group: "engine".into(),
            consumer: consumer.into(),
            capacity,
            idle_timeout: Duration::from_millis(200),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn capacity_takeover_and_release() {
        let bus = MemoryBus::new();
        let keys = Keys::new("t");
        for m in ["a", "b", "c"] {
            bus.append(&keys.matches(), IdSpec::Auto, &created(m), None)
                .await
                .unwrap();
        }
        bus.append(&keys.matches(), IdSpec::Auto, b"garbage", None)
            .await
            .unwrap();
        let mut one = Leases::join(bus.clone(), keys.clone(), config("one", 2))
            .await
            .unwrap();
        let mut two = Leases::join(bus.clone(), keys.clone(), config("two", 5))
            .await
            .unwrap();
        let got = one.acquire(None).await.unwrap();
        assert_eq!(got.len(), 2, "bounded by capacity");
        let got2 = two.acquire(None).await.unwrap();
        assert_eq!(got2.len(), 1, "the rest, garbage dead-lettered");
        assert_eq!(bus.len(&keys.dlq()).await.unwrap(), 1);

        // `one` stays alive; `two` stops touching and loses its lease to `one`? No: `one`
        // is full. A third instance takes the idle lease of `two`.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(one.keepalive().await.unwrap().is_empty());
        let mut three = Leases::join(bus.clone(), keys.clone(), config("three", 5))
            .await
            .unwrap();
        let taken = three.acquire(None).await.unwrap();
        assert_eq!(taken.len(), 1);
        assert!(taken[0].takeover);
        assert_eq!(taken[0].setup.match_id.as_str(), "c");
        assert_eq!(
            two.keepalive().await.unwrap().len(),
            1,
            "two lost its lease"
        );

        // Graceful release: another instance takes the matches without waiting.
        one.release_all().await.unwrap();
        let handed = three.acquire(None).await.unwrap();
        assert_eq!(handed.len(), 2);
        assert!(handed.iter().all(|a| a.takeover));
    }

    #[tokio::test]
    async fn a_burst_of_new_matches_is_shared_by_the_instances_polling() {
        let bus = MemoryBus::new();
        let keys = Keys::new("t");
        let mut one = Leases::join(bus.clone(), keys.clone(), config("one", 64))
            .await
            .unwrap();
        let mut two = Leases::join(bus.clone(), keys.clone(), config("two", 64))
            .await
            .unwrap();
        for i in 0..10 {
            bus.append(
                &keys.matches(),
                IdSpec::Auto,
                &created(&format!("m{i}")),
                None,
            )
            .await
            .unwrap();
        }
        // Both poll in turn, as their poll timers do; each takes a few per poll.
        let (mut got_one, mut got_two) = (0, 0);
        for _ in 0..10 {
            let a = one.acquire(None).await.unwrap();
            assert!(a.len() <= NEW_MATCHES_PER_POLL, "{} in one poll", a.len());
            got_one += a.len();
            let b = two.acquire(None).await.unwrap();
            assert!(b.len() <= NEW_MATCHES_PER_POLL, "{} in one poll", b.len());
            got_two += b.len();
        }
        assert_eq!(got_one + got_two, 10);
        assert_eq!((got_one, got_two), (6, 4), "split by polls, two per poll");
    }

    // Paused time: the idle timeouts are crossed by advancing the clock, so no stall of a
    // loaded machine between two calls can cross one by accident.
    #[tokio::test(start_paused = true)]
    async fn after_a_bus_outage_instances_keep_their_own_leases() {
        let bus = MemoryBus::new();
        let keys = Keys::new("t");
        let mut one = Leases::join(bus.clone(), keys.clone(), config("one", 8))
            .await
            .unwrap();
        let mut two = Leases::join(bus.clone(), keys.clone(), config("two", 8))
            .await
            .unwrap();
        for m in ["a", "b"] {
            bus.append(&keys.matches(), IdSpec::Auto, &created(m), None)
                .await
                .unwrap();
        }
        assert_eq!(one.acquire(None).await.unwrap().len(), 2);
        for m in ["c", "d"] {
            bus.append(&keys.matches(), IdSpec::Auto, &created(m), None)
                .await
                .unwrap();
        }
        assert_eq!(two.acquire(None).await.unwrap().len(), 2);

        // Both lose the bus for longer than the idle timeout (their calls fail).
        one.bus_failed();
        two.bus_failed();
        tokio::time::sleep(Duration::from_millis(250)).await;
        // `one` is back first: it touches its own leases and must not take `two`'s,
        // which look idle only because of the outage.
        assert!(one.keepalive().await.unwrap().is_empty());
        assert!(one.acquire(None).await.unwrap().is_empty(), "no takeover");
        assert!(
            two.keepalive().await.unwrap().is_empty(),
            "two kept its leases"
        );
        assert!(two.acquire(None).await.unwrap().is_empty(), "no takeover");
        assert_eq!(one.owned().count(), 2);
        assert_eq!(two.owned().count(), 2);

        // A real crash after the outage is still taken over, one idle timeout later.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(one.keepalive().await.unwrap().is_empty());
        let taken = one.acquire(None).await.unwrap();
        assert_eq!(taken.len(), 2, "two stopped touching: taken over");
        assert!(taken.iter().all(|a| a.takeover));
    }
}
