//! The economy of one match: every player's ledger, the tiberium fields and the harvester
//! AI, advanced one engine tick at a time by [`Economy::step`].
//!
//! A step folds the committed tick's outcome events, then the production commands that
//! arrived for it (in stream order), then runs production and the harvester AI. What it
//! decided is returned as an [`EconomyStepCommitted`] (the `eco` entry, naming every input
//! it consumed) plus the commands to append to the `cmd` stream. Re-running the same
//! inputs from the same state gives the same entry and hash: there is no clock, no
//! hash-ordered iteration and no floating point here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use events::cmd::{ConstructBuilding, HealBuilding, SetLowPower, SpawnUnit};
use events::{
    BuildingKind, Cell, Command, EconomyStepCommitted, EntityKind, Envelope, GameEvent, Item,
    LedgerEvent, MatchCreated, PlayerId, QueueKind, RejectReason, Source, TickCommitted, UnitId,
    UnitKind,
};
use rules::Rules;
use serde::{Deserialize, Serialize};

use crate::fields::{FieldId, Geo, Tiberium};
use crate::harvester_ai::{HarvesterAi, World};
use crate::ledger::{OwnedBuilding, PlayerLedger};
use crate::map_view::MapView;
use crate::power::Power;
use crate::production::{Job, JobStatus};
use crate::tech;

/// Snapshot format version; bumped when [`State`] changes shape.
pub const SNAPSHOT_VERSION: u16 = 1;

/// A command read from the `cmd` stream, with its stream id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub stream_id: String,
    pub envelope: Envelope<events::Command>,
}

/// What one step decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepResult {
    /// The `eco` entry to commit.
    pub committed: EconomyStepCommitted,
    /// Commands to append to the `cmd` stream, in order.
    pub commands: Vec<(Source, Command)>,
}

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The bytes are not an economy snapshot: treat the snapshot as missing and rebuild
    /// from the log.
    #[error("economy snapshot does not decode: {0}")]
    Decode(String),
    /// Written by another build: rebuild from the log.
    #[error("economy snapshot version {found}, this build reads {expected}")]
    Version { found: u16, expected: u16 },
}

/// Everything that is hashed and snapshotted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    setup: MatchCreated,
    last_tick: Option<u64>,
    next_request: u64,
    players: BTreeMap<PlayerId, PlayerLedger>,
    harvesters: HarvesterAi,
    tiberium: Tiberium,
    winner: Option<Option<PlayerId>>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    version: u16,
    state: State,
}

/// The economy of one match.
#[derive(Clone, Debug)]
pub struct Economy {
    rules: Arc<Rules>,
    state: State,
    /// Derived from the map; rebuilt on restore, never hashed.
    geo: Geo,
}

/// Writes serialized bytes straight into the hasher, so hashing allocates nothing.
struct HashWriter(xxhash_rust::xxh3::Xxh3);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The rules at the match's tick rate, as the engine runs them: build times are counted
/// in ticks, so both services must agree on the rate. A rate outside the rules' range is
/// ignored (the engine refuses such a match).
pub fn rules_for_rate(rules: Arc<Rules>, hz: u32) -> Arc<Rules> {
    if hz == 0 || hz == rules.tick_hz || !(10..=30).contains(&hz) {
        return rules;
    }
    let mut r = (*rules).clone();
    r.tick_hz = hz;
    Arc::new(r)
}

/// Accumulates one step's output.
#[derive(Default)]
struct Out {
    events: Vec<LedgerEvent>,
    commands: Vec<Command>,
}

impl Out {
    fn reject(&mut self, env: &Envelope<Command>, reason: RejectReason) {
        self.events.push(LedgerEvent::CommandRejected {
            command: env.id,
            player: env.source.player(),
            reason,
        });
    }
}

impl Economy {
    /// A new economy for a match, with the map generated from the match's spec.
    pub fn new(rules: Arc<Rules>, setup: &MatchCreated) -> Economy {
        let map = crate::map_view::generate(&rules, setup);
        Economy::with_map(rules, setup, &map)
    }

    /// A new economy on a given map (tests use small hand-made maps).
    pub fn with_map(rules: Arc<Rules>, setup: &MatchCreated, map: &MapView) -> Economy {
        let rules = rules_for_rate(rules, setup.tick_hz);
        let mut tiberium = Tiberium::new();
        for f in &map.fields {
            tiberium.add_field(&rules, f.id, f.cells.iter().map(|(c, b)| (*c, *b, f.blue)));
        }
        let credits = u64::from(rules.economy.starting_credits);
        let players = setup
            .players
            .iter()
            .map(|p| (p.id, PlayerLedger::new(p.id, p.kind, credits)))
            .collect();
        Economy {
            geo: Geo::new(map.size, map.passable.clone()),
            state: State {
                setup: setup.clone(),
                last_tick: None,
                next_request: 1,
                players,
                harvesters: HarvesterAi::default(),
                tiberium,
                winner: None,
            },
            rules,
        }
    }

    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    pub fn setup(&self) -> &MatchCreated {
        &self.state.setup
    }

    /// The last engine tick folded, if any.
    pub fn last_tick(&self) -> Option<u64> {
        self.state.last_tick
    }

    pub fn player(&self, p: PlayerId) -> Option<&PlayerLedger> {
        self.state.players.get(&p)
    }

    /// Ledgers in player order.
    pub fn players(&self) -> impl Iterator<Item = &PlayerLedger> {
        self.state.players.values()
    }

    pub fn tiberium(&self) -> &Tiberium {
        &self.state.tiberium
    }

    pub fn harvesters(&self) -> &HarvesterAi {
        &self.state.harvesters
    }

    /// The winner once the engine declared one (`Some(None)`: nobody won).
    pub fn winner(&self) -> Option<Option<PlayerId>> {
        self.state.winner
    }

    /// A hash of every field of the economy state, in canonical order.
    pub fn hash(&self) -> u64 {
        let mut w = HashWriter(xxhash_rust::xxh3::Xxh3::new());
        // Serializing plain structs and BTreeMaps into a hasher cannot fail; if it ever
        // did, the hash would differ from every other run's and show up as a desync.
        // The compact (field-order) encoding is used: it is canonical and cheaper than
        // the named one snapshots use.
        let _ = rmp_serde::encode::write(&mut w, &self.state);
        w.0.digest()
    }

    /// The full state, for the `snap` stream.
    pub fn snapshot(&self) -> Vec<u8> {
        let file = SnapshotFile {
            version: SNAPSHOT_VERSION,
            state: self.state.clone(),
        };
        rmp_serde::to_vec_named(&file).unwrap_or_default()
    }

    /// Rebuilds an economy from [`Economy::snapshot`] bytes; the map is regenerated from
    /// the match spec the snapshot carries.
    pub fn restore(rules: Arc<Rules>, bytes: &[u8]) -> Result<Economy, RestoreError> {
        Self::restore_on(rules, bytes, None)
    }

    /// Like [`Economy::restore`] on a given map (for economies made with
    /// [`Economy::with_map`]).
    pub fn restore_on(
        rules: Arc<Rules>,
        bytes: &[u8],
        map: Option<&MapView>,
    ) -> Result<Economy, RestoreError> {
        #[derive(Deserialize)]
        struct Header {
            version: u16,
        }
        let header: Header =
            rmp_serde::from_slice(bytes).map_err(|e| RestoreError::Decode(e.to_string()))?;
        if header.version != SNAPSHOT_VERSION {
            return Err(RestoreError::Version {
                found: header.version,
                expected: SNAPSHOT_VERSION,
            });
        }
        let file: SnapshotFile =
            rmp_serde::from_slice(bytes).map_err(|e| RestoreError::Decode(e.to_string()))?;
        let rules = rules_for_rate(rules, file.state.setup.tick_hz);
        let geo = match map {
            Some(m) => Geo::new(m.size, m.passable.clone()),
            None => {
                let m = crate::map_view::generate(&rules, &file.state.setup);
                Geo::new(m.size, m.passable)
            }
        };
        Ok(Economy {
            rules,
            state: file.state,
            geo,
        })
    }

    /// Folds one committed engine tick plus the production commands that arrived for it.
    pub fn step(
        &mut self,
        tick: &TickCommitted,
        tick_stream_id: &str,
        commands: &[Input],
    ) -> StepResult {
        let mut out = Out::default();
        let credits_before: BTreeMap<PlayerId, u64> = self
            .state
            .players
            .iter()
            .map(|(p, l)| (*p, l.credits))
            .collect();
        let mut dry_fields = BTreeSet::new();
        self.state.harvesters.begin(tick.tick);

        for e in &tick.events {
            self.fold(tick.tick, e, &mut out, &mut dry_fields);
        }
        for f in dry_fields {
            self.state.harvesters.field_exhausted(f, &mut out.commands);
        }
        for input in commands {
            self.handle(&input.envelope, &mut out);
        }
        self.update_power(&mut out);
        self.produce(tick.tick, &mut out);
        self.repair(tick.tick, &mut out);
        self.state
            .harvesters
            .tick(&self.rules, self.geo.size(), &mut out.commands);
        self.order_harvesters(tick.tick, &mut out);

        for (p, l) in &self.state.players {
            let before = credits_before.get(p).copied().unwrap_or(0);
            if l.credits != before {
                out.events.push(LedgerEvent::CreditsChanged {
                    player: *p,
                    delta: l.credits as i64 - before as i64,
                    balance: l.credits as i64,
                });
            }
        }
        self.state.last_tick = Some(tick.tick);

        let mut consumed = Vec::with_capacity(commands.len() + 1);
        consumed.push(tick_stream_id.to_owned());
        consumed.extend(commands.iter().map(|c| c.stream_id.clone()));
        StepResult {
            committed: EconomyStepCommitted {
                tick: tick.tick,
                consumed,
                events: out.events,
                hash: self.hash(),
            },
            commands: out
                .commands
                .into_iter()
                .map(|c| (Source::Economy, c))
                .collect(),
        }
    }

    /// Folds one engine outcome event.
    fn fold(&mut self, tick: u64, e: &GameEvent, out: &mut Out, dry: &mut BTreeSet<FieldId>) {
        let rules = &*self.rules;
        match e {
            GameEvent::UnitSpawned {
                id,
                owner,
                kind: UnitKind::Harvester,
                at,
            } => self.state.harvesters.spawned(*id, *owner, at.cell()),
            GameEvent::BuildingPlaced {
                id,
                owner,
                kind,
                at,
                request,
            } => {
                let Some(l) = self.state.players.get_mut(owner) else {
                    return;
                };
                l.buildings.insert(
                    *id,
                    OwnedBuilding {
                        kind: *kind,
                        at: *at,
                    },
                );
                let placed_ours = l.queues.get(&QueueKind::Buildings).is_some_and(|j| {
                    *request != 0
                        && j.status
                            == (JobStatus::Ready {
                                placing: Some(*request),
                            })
                });
                if placed_ours {
                    l.queues.remove(&QueueKind::Buildings);
                    out.events.push(LedgerEvent::QueueChanged {
                        player: *owner,
                        queue: QueueKind::Buildings,
                        state: None,
                    });
                }
            }
            GameEvent::PlacementFailed { owner, request, .. } => {
                // The building stays ready for another try.
                if let Some(j) = self
                    .state
                    .players
                    .get_mut(owner)
                    .and_then(|l| l.queues.get_mut(&QueueKind::Buildings))
                {
                    if j.status
                        == (JobStatus::Ready {
                            placing: Some(*request),
                        })
                    {
                        j.status = JobStatus::Ready { placing: None };
                    }
                }
            }
            GameEvent::EntityDestroyed {
                id, owner, kind, ..
            } => match kind {
                EntityKind::Building(_) => {
                    if let Some(l) = self.state.players.get_mut(owner) {
                        l.buildings.remove(id);
                        stop_repair(l, *id, out);
                    }
                }
                EntityKind::Unit(_) => self.state.harvesters.destroyed(*id),
            },
            GameEvent::BuildingSold { id, owner, kind } => {
                if let Some(l) = self.state.players.get_mut(owner) {
                    // Refund only what the engine sold once: a repeated event for a
                    // building already gone pays nothing.
                    stop_repair(l, *id, out);
                    if l.buildings.remove(id).is_some() {
                        let cost = rules.buildings.get(kind).map_or(0, |b| b.cost);
                        let refund =
                            u64::from(cost) * u64::from(rules.economy.sell_refund_pct) / 100;
                        l.credits = l.credits.saturating_add(refund);
                    }
                }
            }
            GameEvent::HarvesterUnloaded {
                unit,
                owner,
                credits,
                ..
            } => {
                if let Some(l) = self.state.players.get_mut(owner) {
                    l.credits = l.credits.saturating_add(u64::from(*credits));
                }
                self.state.harvesters.progressed(*unit);
            }
            GameEvent::HarvesterFull { unit, .. } => {
                self.state.harvesters.full(*unit, &mut out.commands)
            }
            GameEvent::HarvesterIdle { unit, owner, at } => {
                let tib = &self.state.tiberium;
                let is_dry = |f: FieldId| tib.field(f).is_none_or(|f| f.value == 0);
                self.state
                    .harvesters
                    .idle(*unit, *owner, *at, is_dry, &mut out.commands);
            }
            GameEvent::HarvesterAttacked { unit, owner, .. } => {
                let home = self.home(*owner);
                self.state
                    .harvesters
                    .attacked(rules, *unit, tick, home, &mut out.commands);
            }
            GameEvent::TiberiumChanged { cell, bails, blue } => {
                let size = self.geo.size();
                let field = self.state.tiberium.cell(*cell).map(|t| t.field);
                let before = field
                    .and_then(|f| self.state.tiberium.field(f))
                    .map_or(0, |f| f.value);
                let Some(f) = self.state.tiberium.set(rules, size, *cell, *bails, *blue) else {
                    return;
                };
                if field.is_none() {
                    // A new cell joined the field: its distance map no longer holds (a
                    // restored economy computes it afresh, so this one must too).
                    self.geo.field_grew(f);
                }
                let after = self.state.tiberium.field(f).map_or(0, |f| f.value);
                if before > 0 && after == 0 {
                    dry.insert(f);
                } else if after > 0 {
                    dry.remove(&f);
                }
            }
            GameEvent::PlayerDefeated { player } => {
                if let Some(l) = self.state.players.get_mut(player) {
                    l.defeated = true;
                    let repairing: Vec<UnitId> = l.repairing.iter().copied().collect();
                    for b in repairing {
                        stop_repair(l, b, out);
                    }
                    let queues: Vec<QueueKind> = l.queues.keys().copied().collect();
                    l.queues.clear();
                    for q in queues {
                        out.events.push(LedgerEvent::QueueChanged {
                            player: *player,
                            queue: q,
                            state: None,
                        });
                    }
                }
            }
            GameEvent::SpawnFailed { player, kind, .. } => {
                // The unit was paid for in full; it never appeared, so the money returns.
                if let Some(l) = self.state.players.get_mut(player) {
                    let cost = rules.units.get(kind).map_or(0, |u| u.cost);
                    l.credits = l.credits.saturating_add(u64::from(cost));
                }
            }
            GameEvent::BuildingRepaired {
                id,
                owner,
                requested,
                healed,
                hp,
                max_hp,
            } => {
                if let Some(l) = self.state.players.get_mut(owner) {
                    // The step was paid in full when it was asked for; what the engine
                    // could not heal comes back.
                    let per = rules.economy.repair_credits_per_100_hp;
                    let refund = repair_cost(per, *requested)
                        .saturating_sub(repair_cost(per, (*healed).min(*requested)));
                    l.credits = l.credits.saturating_add(refund);
                    if hp >= max_hp {
                        stop_repair(l, *id, out);
                    }
                }
            }
            GameEvent::MatchWon { winner } => self.state.winner = Some(*winner),
            GameEvent::MatchStarted { .. }
            | GameEvent::UnitSpawned { .. }
            | GameEvent::CommandRejected { .. }
            | GameEvent::BuildingAttacked { .. } => {}
        }
    }

    /// Where a harvester of `owner` runs to: beside its first refinery, else its first
    /// construction yard, else its first building.
    fn home(&self, owner: PlayerId) -> Option<Cell> {
        let l = self.state.players.get(&owner)?;
        let pick = |k: Option<BuildingKind>| {
            l.buildings
                .values()
                .find(|b| k.is_none_or(|k| b.kind == k))
                .copied()
        };
        let b = pick(Some(BuildingKind::Refinery))
            .or_else(|| pick(Some(BuildingKind::ConstructionYard)))
            .or_else(|| pick(None))?;
        let (w, h) = self
            .rules
            .buildings
            .get(&b.kind)
            .map_or((1, 1), |r| (r.width, r.height));
        let last = self.geo.size().saturating_sub(1);
        Some(Cell::new(
            (b.at.x + w / 2).min(last),
            b.at.y.saturating_add(h).min(last),
        ))
    }

    /// Decide on one production command: validate, then apply.
    fn handle(&mut self, env: &Envelope<Command>, out: &mut Out) {
        if !env.body.is_production() {
            // Unit orders are the engine's; the service should not pass them, and if it
            // does they are not ours to judge.
            return;
        }
        let Some(player) = env.source.player() else {
            return out.reject(env, RejectReason::NotAPlayer);
        };
        let rules = &*self.rules;
        let size = self.geo.size();
        let Some(l) = self.state.players.get_mut(&player) else {
            return out.reject(env, RejectReason::NotAPlayer);
        };
        if l.defeated {
            return out.reject(env, RejectReason::Defeated);
        }
        match &env.body {
            Command::QueueProduction(q) => {
                let item = q.item;
                if !tech::is_producible(rules, item) {
                    return out.reject(env, RejectReason::NotAllowed);
                }
                if let Some(missing) = tech::missing_prerequisite(rules, &l.owned(), item) {
                    return out.reject(env, RejectReason::MissingPrerequisite(missing));
                }
                // Payment is progressive, so any credit starts a job; none at all is
                // refused so that a broke player hears why nothing happens.
                if l.credits == 0 {
                    return out.reject(env, RejectReason::NoFunds);
                }
                if let Some(job) = l.queues.get_mut(&item.queue()) {
                    // One kind of item per queue; units stack up to the limit, a
                    // building waits to be placed before the next one starts.
                    if job.item != item {
                        return out.reject(env, RejectReason::QueueBusy);
                    }
                    let limit = match item {
                        Item::Building(_) => 1,
                        Item::Unit(_) => rules.economy.queue_limit,
                    };
                    if job.count() >= limit {
                        return out.reject(env, RejectReason::QueueFull);
                    }
                    job.queued += 1;
                    out.events.push(LedgerEvent::QueueChanged {
                        player,
                        queue: item.queue(),
                        state: Some(job.state()),
                    });
                    return;
                }
                let job = Job::new(rules, item);
                out.events.push(LedgerEvent::QueueChanged {
                    player,
                    queue: item.queue(),
                    state: Some(job.state()),
                });
                l.queues.insert(item.queue(), job);
            }
            Command::CancelProduction(c) => {
                let Some(job) = l.queues.get_mut(&c.queue) else {
                    return out.reject(env, RejectReason::NothingReady);
                };
                if job.queued > 0 {
                    // One of the unpaid items waiting behind the current one goes.
                    job.queued -= 1;
                    out.events.push(LedgerEvent::QueueChanged {
                        player,
                        queue: c.queue,
                        state: Some(job.state()),
                    });
                    return;
                }
                if let JobStatus::Ready { placing: Some(_) } = job.status {
                    // The engine may be placing it right now; a refund would make it free.
                    return out.reject(env, RejectReason::QueueBusy);
                }
                l.credits = l.credits.saturating_add(u64::from(job.paid));
                l.queues.remove(&c.queue);
                out.events.push(LedgerEvent::QueueChanged {
                    player,
                    queue: c.queue,
                    state: None,
                });
            }
            Command::PlaceBuilding(p) => {
                match l.ready_building() {
                    Some((kind, false)) if kind == p.building => {}
                    Some((kind, true)) if kind == p.building => {
                        return out.reject(env, RejectReason::QueueBusy)
                    }
                    _ => return out.reject(env, RejectReason::NothingReady),
                }
                if p.at.x >= size || p.at.y >= size {
                    return out.reject(env, RejectReason::OutOfMap(p.at));
                }
                let request = self.state.next_request;
                self.state.next_request += 1;
                if let Some(j) = l.queues.get_mut(&QueueKind::Buildings) {
                    j.status = JobStatus::Ready {
                        placing: Some(request),
                    };
                }
                out.commands
                    .push(Command::ConstructBuilding(ConstructBuilding {
                        player,
                        kind: p.building,
                        at: p.at,
                        request,
                    }));
            }
            Command::HoldProduction(h) => {
                let Some(job) = l.queues.get_mut(&h.queue) else {
                    return out.reject(env, RejectReason::NothingReady);
                };
                // A finished item has nothing left to hold: the order changes nothing.
                if job.is_ready() || job.held == h.hold {
                    return;
                }
                job.held = h.hold;
                out.events.push(LedgerEvent::QueueChanged {
                    player,
                    queue: h.queue,
                    state: Some(job.state()),
                });
            }
            Command::RepairBuilding(r) => {
                // Another player's building gets the same answer as a missing one: the
                // economy does not know what the player sees, so it tells nothing (the
                // gateway already refuses the foreign buildings the player does see).
                if !l.buildings.contains_key(&r.building) {
                    return out.reject(env, RejectReason::NoSuchUnit(r.building));
                }
                let Some(l) = self.state.players.get_mut(&player) else {
                    return;
                };
                if r.on {
                    if l.repairing.insert(r.building) {
                        out.events.push(LedgerEvent::RepairChanged {
                            player,
                            building: r.building,
                            on: true,
                        });
                    }
                } else {
                    stop_repair(l, r.building, out);
                }
            }
            _ => {}
        }
    }

    /// Recomputes every player's power; reports changes and low-power flips.
    fn update_power(&mut self, out: &mut Out) {
        for (p, l) in self.state.players.iter_mut() {
            let power = Power::of(&self.rules, l.buildings.values().map(|b| b.kind));
            if power != l.power {
                l.power = power;
                out.events.push(LedgerEvent::PowerChanged {
                    player: *p,
                    output: power.output,
                    consumption: power.consumption,
                    speed_pct: power.speed_pct(&self.rules),
                });
            }
            if power.is_low() != l.low_power {
                l.low_power = power.is_low();
                out.commands.push(Command::SetLowPower(SetLowPower {
                    player: *p,
                    low: l.low_power,
                }));
            }
        }
    }

    /// One tick of every queue of every player.
    fn produce(&mut self, tick: u64, out: &mut Out) {
        let rules = &*self.rules;
        // A progress report once a second lets clients draw progress bars without an
        // event per tick.
        let heartbeat = tick.is_multiple_of(u64::from(rules.tick_hz.max(1)));
        for (p, l) in self.state.players.iter_mut() {
            if l.defeated || self.state.winner.is_some() {
                continue;
            }
            let speed = l.power.speed_pct(rules);
            let owned = l.owned();
            let queues: Vec<QueueKind> = l.queues.keys().copied().collect();
            for q in queues {
                let can = tech::producer(rules, q)
                    .is_none_or(|k| owned.get(&k).copied().unwrap_or(0) > 0);
                let credits = l.credits;
                let Some(job) = l.queues.get_mut(&q) else {
                    continue;
                };
                if job.is_ready() {
                    continue;
                }
                let before = job.status;
                let a = job.advance(speed, credits, can);
                l.credits = l.credits.saturating_sub(u64::from(a.spent));
                if a.finished {
                    match job.item {
                        Item::Unit(kind) => {
                            out.commands
                                .push(Command::SpawnUnit(SpawnUnit { player: *p, kind }));
                            // The next of a stack starts at once, from nothing paid.
                            let next = job.next_of_stack(rules);
                            out.events.push(LedgerEvent::QueueChanged {
                                player: *p,
                                queue: q,
                                state: next.as_ref().map(Job::state),
                            });
                            match next {
                                Some(n) => {
                                    l.queues.insert(q, n);
                                }
                                None => {
                                    l.queues.remove(&q);
                                }
                            }
                        }
                        Item::Building(_) => out.events.push(LedgerEvent::QueueChanged {
                            player: *p,
                            queue: q,
                            state: Some(job.state()),
                        }),
                    }
                } else if job.status != before || (heartbeat && job.status == JobStatus::Building) {
                    out.events.push(LedgerEvent::QueueChanged {
                        player: *p,
                        queue: q,
                        state: Some(job.state()),
                    });
                }
            }
        }
    }

    /// One repair step of every repairing building, every `repair_step_ms`: the step is
    /// paid now (as much of it as the credits buy) and the engine asked to heal it. A
    /// player who cannot pay for a single health point stops repairing.
    fn repair(&mut self, tick: u64, out: &mut Out) {
        let rules = &*self.rules;
        let every = u64::from(rules.ticks(rules.economy.repair_step_ms).max(1));
        if !tick.is_multiple_of(every) || self.state.winner.is_some() {
            return;
        }
        let per = rules.economy.repair_credits_per_100_hp;
        for (p, l) in self.state.players.iter_mut() {
            if l.defeated {
                continue;
            }
            let repairing: Vec<UnitId> = l.repairing.iter().copied().collect();
            for b in repairing {
                let mut hp = rules.economy.repair_hp_per_step;
                if per > 0 {
                    // The most health points the credits pay for, rounding the cost up.
                    let affordable = l.credits.saturating_mul(100) / u64::from(per);
                    hp = hp.min(u32::try_from(affordable).unwrap_or(u32::MAX));
                }
                if hp == 0 {
                    stop_repair(l, b, out);
                    continue;
                }
                l.credits = l.credits.saturating_sub(repair_cost(per, hp));
                out.commands.push(Command::HealBuilding(HealBuilding {
                    player: *p,
                    building: b,
                    hp,
                }));
            }
        }
    }

    fn order_harvesters(&mut self, tick: u64, out: &mut Out) {
        let buildings: Vec<(PlayerId, BuildingKind, Cell)> = self
            .state
            .players
            .iter()
            .flat_map(|(p, l)| l.buildings.values().map(move |b| (*p, b.kind, b.at)))
            .collect();
        let mut world = World {
            rules: &self.rules,
            tick,
            tiberium: &self.state.tiberium,
            geo: &mut self.geo,
            buildings: &buildings,
        };
        self.state.harvesters.decide(&mut world, &mut out.commands);
    }
}

/// What `hp` health points of repair cost at `per_100_hp` credits per 100, rounded up.
pub fn repair_cost(per_100_hp: u32, hp: u32) -> u64 {
    (u64::from(hp) * u64::from(per_100_hp)).div_ceil(100)
}

/// Stops a building's repair, reporting it if it was on.
fn stop_repair(l: &mut PlayerLedger, building: UnitId, out: &mut Out) {
    if l.repairing.remove(&building) {
        out.events.push(LedgerEvent::RepairChanged {
            player: l.id,
            building,
            on: false,
        });
    }
}
