//! The engine service over a real bus: the same commands give the same hash sequence over
//! MemoryBus, over a real Redis, and in the pure simulation; a stale writer is fenced out;
//! a new instance takes an abandoned match over and continues it without a desync.

use std::sync::Arc;
use std::time::Duration;

use engine::service::{self, EngineConfig, Pace, Progress};
use engine::{Input, Rules, Sim};
use events::testkit::{redis_url_for_tests, unique_prefix, PrefixGuard};
use events::{
    decode, encode, Bus, Cell, Command, Envelope, GameEvent, IdSpec, Keys, MatchCreated,
    MatchEvent, MatchId, MemoryBus, PlayerId, RedisBus, RedisBusConfig, Source, StreamId,
    TickCommitted, UnitId,
};

const TICKS: u64 = 120;

fn setup(m: &MatchId) -> MatchCreated {
    MatchCreated::humans(m.clone(), 2, 32, 7)
}

/// Start units of player 0, learned from a pure run of tick 0.
fn start_units(rules: &Arc<Rules>, s: &MatchCreated) -> Vec<UnitId> {
    let mut sim = Sim::new(rules.clone(), s).unwrap();
    let out = sim.step(&[]);
    out.committed
        .events
        .iter()
        .filter_map(|e| match e {
            GameEvent::UnitSpawned { id, owner, .. } if *owner == PlayerId(0) => Some(*id),
            _ => None,
        })
        .collect()
}

/// One command per tick: a no-op first (tick 0 spawns the units), then orders.
fn commands(m: &MatchId, units: &[UnitId]) -> Vec<Envelope<Command>> {
    let p0 = Source::Player(PlayerId(0));
    let mut v = vec![Envelope::new(
        m.clone(),
        p0,
        Command::Stop(events::cmd::Stop { units: vec![] }),
    )];
    for (i, to) in [(3u16, 3u16), (10, 4), (5, 12), (20, 20)]
        .iter()
        .enumerate()
    {
        v.push(Envelope::new(
            m.clone(),
            if i == 2 {
                Source::Player(PlayerId(1))
            } else {
                p0
            },
            Command::MoveUnits(events::cmd::MoveUnits {
                units: units.to_vec(),
                to: Cell::new(to.0, to.1),
            }),
        ));
    }
    v
}

fn config(consumer: &str) -> EngineConfig {
    EngineConfig {
        consumer: consumer.into(),
        pace: Pace::Unpaced,
        max_commands_per_tick: 1,
        lease_idle: Duration::from_millis(600),
        poll: Duration::from_millis(50),
        snapshot_every: 50,
        ..EngineConfig::default()
    }
}

async fn tick_hashes<B: Bus>(bus: &B, keys: &Keys, m: &MatchId, n: u64) -> Vec<u64> {
    let entries = bus
        .range(&keys.tick(m), StreamId::ZERO, StreamId::MAX, n as usize)
        .await
        .unwrap();
    entries
        .iter()
        .map(|e| decode::<TickCommitted>(&e.payload).unwrap().body.hash)
        .collect()
}

async fn wait_ticks<B: Bus>(bus: &B, keys: &Keys, m: &MatchId, n: u64) {
    for _ in 0..600 {
        if bus.len(&keys.tick(m)).await.unwrap() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the engine did not commit {n} ticks within 15 s");
}

/// Runs a match on a bus through the service and returns its first TICKS hashes.
/// One engine instance on its own task, running until `stop` (a hand-over) or `crash`.
struct Instance {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), events::BusError>>,
}

impl Instance {
    fn spawn<B: Bus>(bus: &B, keys: &Keys, rules: &Arc<Rules>, config: EngineConfig) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(service::run(
            bus.clone(),
            keys.clone(),
            rules.clone(),
            config,
            Arc::new(Progress::default()),
            async move {
                let _ = stopped.await;
            },
        ));
        Self { stop, task }
    }

    /// Shuts the instance down (it hands its matches over) and waits for it.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }

    /// Kills the instance without a hand-over: its leases go idle.
    fn crash(self) {
        self.task.abort();
    }
}

/// Announces a match on the matches stream, as the lobby does.
async fn create<B: Bus>(bus: &B, keys: &Keys, s: MatchCreated) {
    let created = Envelope::new(
        s.match_id.clone(),
        Source::System,
        MatchEvent::MatchCreated(s),
    );
    bus.append(
        &keys.matches(),
        IdSpec::Auto,
        &encode(&created).unwrap(),
        None,
    )
    .await
    .unwrap();
}

async fn run_on<B: Bus>(bus: B, keys: Keys, rules: Arc<Rules>) -> Vec<u64> {
    let m = MatchId::new("svc").unwrap();
    let s = setup(&m);
    let units = start_units(&rules, &s);
    for c in commands(&m, &units) {
        bus.append(&keys.cmd(&m), IdSpec::Auto, &encode(&c).unwrap(), None)
            .await
            .unwrap();
    }
    create(&bus, &keys, s).await;
    let svc = Instance::spawn(&bus, &keys, &rules, config("one"));
    wait_ticks(&bus, &keys, &m, TICKS).await;
    svc.stop().await;
    tick_hashes(&bus, &keys, &m, TICKS).await
}

/// The same match in the pure simulation, one command per tick.
fn run_pure(rules: Arc<Rules>) -> Vec<u64> {
    let m = MatchId::new("svc").unwrap();
    let s = setup(&m);
    let units = start_units(&rules, &s);
    let mut cmds = commands(&m, &units).into_iter().enumerate();
    let mut sim = Sim::new(rules, &s).unwrap();
    (0..TICKS)
        .map(|_| {
            let inputs: Vec<Input> = cmds
                .next()
                .map(|(i, envelope)| Input {
                    stream_id: format!("{}-0", i + 1),
                    envelope,
                })
                .into_iter()
                .collect();
            sim.step(&inputs).committed.hash
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_hashes_over_memory_bus_redis_and_pure_simulation() {
    let rules = Arc::new(Rules::standard());
    let pure = run_pure(rules.clone());
    let memory = run_on(MemoryBus::new(), Keys::new("t"), rules.clone()).await;
    let redis = redis_url_for_tests();
    let prefix = unique_prefix();
    let _guard = PrefixGuard::new(redis.url(), prefix.clone());
    let bus = RedisBus::connect(redis.url(), RedisBusConfig::default())
        .await
        .unwrap();
    let over_redis = run_on(bus, Keys::new(prefix), rules).await;
    assert_eq!(memory.len() as u64, TICKS);
    assert_eq!(
        memory, pure,
        "MemoryBus run differs from the pure simulation"
    );
    assert_eq!(
        over_redis, pure,
        "Redis run differs from the pure simulation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_writer_is_fenced_and_a_takeover_continues_without_desync() {
    let rules = Arc::new(Rules::standard());
    let bus = MemoryBus::new();
    let keys = Keys::new("t");
    let m = MatchId::new("svc").unwrap();
    let s = setup(&m);
    create(&bus, &keys, s).await;

    // Instance one runs the match for a while, then dies without handing it over.
    let one = Instance::spawn(&bus, &keys, &rules, config("one"));
    wait_ticks(&bus, &keys, &m, 80).await;
    one.crash();
    let after_crash = bus.len(&keys.tick(&m)).await.unwrap();

    // A stale writer (the dead owner, had it survived) cannot commit a tick that exists.
    let stale = bus
        .append(
            &keys.tick(&m),
            IdSpec::Explicit(StreamId::for_tick(after_crash - 1)),
            b"stale",
            None,
        )
        .await;
    assert!(matches!(stale, Err(events::BusError::Fenced { .. })));

    // Instance two takes the idle lease over, rebuilds from snapshot + log, and continues.
    let two = Instance::spawn(&bus, &keys, &rules, config("two"));
    wait_ticks(&bus, &keys, &m, after_crash + 60).await;
    two.stop().await;

    // Every committed tick is there exactly once, in order, and equals a pure re-run.
    let entries = bus
        .range(&keys.tick(&m), StreamId::ZERO, StreamId::MAX, usize::MAX)
        .await
        .unwrap();
    let mut sim = Sim::new(rules, &setup(&m)).unwrap();
    for (n, e) in entries.iter().enumerate() {
        assert_eq!(e.id, StreamId::for_tick(n as u64));
        let recorded = decode::<TickCommitted>(&e.payload).unwrap().body;
        assert!(recorded.applied.is_empty());
        assert_eq!(sim.step(&[]).committed.hash, recorded.hash, "tick {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_states_are_kept_for_the_whole_match_under_their_tick_ids() {
    use events::keys::SEEK_STATE_EVERY;
    let rules = Arc::new(Rules::standard());
    let bus = MemoryBus::new();
    let keys = Keys::new("t");
    let m = MatchId::new("seekable").unwrap();
    let s = setup(&m);
    create(&bus, &keys, s.clone()).await;
    let svc = Instance::spawn(
        &bus,
        &keys,
        &rules,
        EngineConfig {
            // The snap stream keeps two entries: the seek stream must not be capped.
            snap_maxlen: 2,
            ..config("seek")
        },
    );
    let n = 2 * SEEK_STATE_EVERY + 1;
    wait_ticks(&bus, &keys, &m, n).await;
    svc.stop().await;

    let seek = bus
        .range(&keys.seek(&m), StreamId::ZERO, StreamId::MAX, 100)
        .await
        .unwrap();
    let ticks: Vec<u64> = seek.iter().map(|e| e.id.tick()).collect();
    assert!(
        ticks.starts_with(&[SEEK_STATE_EVERY, 2 * SEEK_STATE_EVERY]),
        "{ticks:?}"
    );
    assert!(
        bus.len(&keys.snap(&m)).await.unwrap() <= 3,
        "snap is capped"
    );
    let hashes = tick_hashes(&bus, &keys, &m, n).await;
    for e in &seek[..2] {
        let snap = decode::<events::Snapshot>(&e.payload).unwrap().body;
        assert_eq!(e.id, StreamId::for_tick(snap.tick));
        assert_eq!(snap.hash, hashes[snap.tick as usize]);
        let restored = Sim::restore(rules.clone(), &snap.state).expect("restores");
        assert_eq!(restored.hash(), snap.hash);
    }
}

/// A battle's `MatchCreated` names its scenario and nothing else is written before it:
/// the engine builds the battle, keeps the built state in the seek stream, commits from
/// the tick after it, and an instance taking the match over before any snapshot builds
/// the same state again and continues without a desync (its seek write refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_battle_is_built_from_its_match_created_and_rebuilt_on_a_takeover() {
    let rules = Arc::new(Rules::standard());
    let bus = MemoryBus::new();
    let keys = Keys::new("t");
    let m = MatchId::new("battle").unwrap();
    let s = MatchCreated {
        scenario: events::Scenario::Battle { units_per_side: 30 },
        ..setup(&m)
    };
    let first = engine::scenario::first_tick(&s);
    let built = engine::scenario::initial(rules.clone(), &s).unwrap();
    assert_eq!(built.next_tick(), first);
    create(&bus, &keys, s.clone()).await;
    // No snapshot before the crash: the takeover must build the battle again.
    let no_snapshots = |name: &str| EngineConfig {
        snapshot_every: 100_000,
        ..config(name)
    };
    let one = Instance::spawn(&bus, &keys, &rules, no_snapshots("one"));
    wait_ticks(&bus, &keys, &m, 30).await;
    one.crash();
    let after_crash = bus.len(&keys.tick(&m)).await.unwrap();
    assert_eq!(bus.len(&keys.snap(&m)).await.unwrap(), 0);

    let two = Instance::spawn(&bus, &keys, &rules, no_snapshots("two"));
    wait_ticks(&bus, &keys, &m, after_crash + 30).await;
    two.stop().await;

    // The built state, once, under its tick's id.
    let seek = bus
        .range(&keys.seek(&m), StreamId::ZERO, StreamId::MAX, 100)
        .await
        .unwrap();
    assert_eq!(seek.len(), 1);
    assert_eq!(seek[0].id, StreamId::for_tick(first - 1));
    let state = decode::<events::Snapshot>(&seek[0].payload).unwrap().body;
    assert_eq!((state.tick, state.hash), (first - 1, built.hash()));

    // Every tick from the battle's first, once, in order, equal to a pure run from the
    // built state.
    let entries = bus
        .range(&keys.tick(&m), StreamId::ZERO, StreamId::MAX, usize::MAX)
        .await
        .unwrap();
    let mut sim = built;
    for (n, e) in entries.iter().enumerate() {
        let tick = first + n as u64;
        assert_eq!(e.id, StreamId::for_tick(tick));
        let recorded = decode::<TickCommitted>(&e.payload).unwrap().body;
        assert_eq!(sim.step(&[]).committed.hash, recorded.hash, "tick {tick}");
    }
}

/// The view frames of a battle, as the engine writes them with its default settings
/// (large frames zstd-compressed) and with `compress_views` off: the same frames decoded,
/// the large ones compressed and much smaller, the small ones plain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_view_frames_are_written_compressed_and_read_back_the_same() {
    let rules = Arc::new(Rules::standard());
    let m = MatchId::new("views").unwrap();
    let s = MatchCreated {
        scenario: events::Scenario::Battle {
            units_per_side: 100,
        },
        ..setup(&m)
    };
    let mut runs = Vec::new();
    for compress_views in [true, false] {
        let (bus, keys) = (MemoryBus::new(), Keys::new("t"));
        create(&bus, &keys, s.clone()).await;
        let one = Instance::spawn(
            &bus,
            &keys,
            &rules,
            EngineConfig {
                compress_views,
                ..config("one")
            },
        );
        wait_ticks(&bus, &keys, &m, 40).await;
        one.stop().await;
        let entries = bus
            .range(&keys.view(&m), StreamId::ZERO, StreamId::MAX, 40)
            .await
            .unwrap();
        assert_eq!(entries.len(), 40);
        runs.push(entries);
    }
    let (packed, plain) = (&runs[0], &runs[1]);
    let (mut packed_bytes, mut plain_bytes, mut compressed) = (0, 0, 0);
    for (p, q) in packed.iter().zip(plain) {
        assert_eq!(p.id, q.id);
        let (a, b) = (
            decode::<events::ViewFrame>(&p.payload).unwrap().body,
            decode::<events::ViewFrame>(&q.payload).unwrap().body,
        );
        assert_eq!(a, b, "frame {}", p.id);
        assert!(!q.payload.starts_with(&events::codec::ZSTD_MAGIC));
        let is_packed = p.payload.starts_with(&events::codec::ZSTD_MAGIC);
        assert_eq!(
            is_packed,
            q.payload.len() >= events::codec::COMPRESS_MIN_BYTES,
            "frame {} of {} bytes",
            p.id,
            q.payload.len()
        );
        compressed += usize::from(is_packed);
        packed_bytes += p.payload.len();
        plain_bytes += q.payload.len();
    }
    assert!(compressed >= 1, "a 200-unit battle has large frames");
    assert!(
        packed_bytes * 3 < plain_bytes,
        "compressed {packed_bytes} B against plain {plain_bytes} B"
    );
}
