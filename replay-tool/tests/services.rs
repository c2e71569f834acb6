//! The engine and economy services together over MemoryBus, AI against AI: the economy
//! folds every tick, the AIs and the ledger issue commands the engine applies, and an
//! economy instance that dies is replaced by another that rebuilds from snapshot + log
//! with no desync and no lost step.

use std::sync::Arc;
use std::time::Duration;

use economy::service::{self as eco_service, EconomyConfig};
use engine::service::{self as engine_service, EngineConfig, Pace};
use engine::Rules;
use events::{
    decode, encode, Bus, Command, Difficulty, EconomyStepCommitted, Envelope, GameEvent, IdSpec,
    Keys, LedgerEvent, MapSpec, MatchCreated, MatchEvent, MatchId, MemoryBus, PlayerId, PlayerKind,
    PlayerSlot, Source, StreamId, TickCommitted,
};
use tokio::sync::oneshot;

fn ai_match(m: &MatchId) -> MatchCreated {
    MatchCreated {
        match_id: m.clone(),
        seed: 11,
        map: MapSpec { size: 48, seed: 11 },
        players: vec![
            PlayerSlot {
                id: PlayerId(0),
                name: "easy".into(),
                kind: PlayerKind::Ai(Difficulty::Easy),
            },
            PlayerSlot {
                id: PlayerId(1),
                name: "hard".into(),
                kind: PlayerKind::Ai(Difficulty::Hard),
            },
        ],
        tick_hz: 20,
        scenario: events::Scenario::Skirmish,
    }
}

fn stopper() -> (oneshot::Sender<()>, impl std::future::Future<Output = ()>) {
    let (tx, rx) = oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

fn eco_config(consumer: &str) -> EconomyConfig {
    EconomyConfig {
        consumer: consumer.into(),
        lease_idle: Duration::from_millis(500),
        poll: Duration::from_millis(50),
        snapshot_every: 100,
        ..EconomyConfig::default()
    }
}

/// Announces the AI match `m` on the matches stream, as the lobby does.
async fn announce(bus: &MemoryBus, keys: &Keys, m: &MatchId) {
    let created = Envelope::new(
        m.clone(),
        Source::System,
        MatchEvent::MatchCreated(ai_match(m)),
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

type Running = tokio::task::JoinHandle<Result<(), events::BusError>>;

/// An engine instance at `pace` on its own task, and what stops it.
fn spawn_engine(
    bus: &MemoryBus,
    keys: &Keys,
    rules: &Arc<Rules>,
    pace: Pace,
) -> (oneshot::Sender<()>, Running) {
    let (stop, stopped) = stopper();
    let task = tokio::spawn(engine_service::run(
        bus.clone(),
        keys.clone(),
        rules.clone(),
        EngineConfig {
            consumer: "engine".into(),
            pace,
            poll: Duration::from_millis(50),
            ..EngineConfig::default()
        },
        Arc::new(engine_service::Progress::default()),
        stopped,
    ));
    (stop, task)
}

/// An economy instance named `consumer` on its own task, and what stops it.
fn spawn_economy(
    bus: &MemoryBus,
    keys: &Keys,
    rules: &Arc<Rules>,
    consumer: &str,
) -> (oneshot::Sender<()>, Running) {
    let (stop, stopped) = stopper();
    let task = tokio::spawn(eco_service::run(
        bus.clone(),
        keys.clone(),
        rules.clone(),
        eco_config(consumer),
        Arc::new(eco_service::Progress::default()),
        stopped,
    ));
    (stop, task)
}

async fn wait_len<B: Bus>(bus: &B, key: &str, n: u64, what: &str) {
    for _ in 0..1200 {
        if bus.len(key).await.unwrap() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what}: fewer than {n} entries after 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_match_runs_through_both_services_and_survives_an_economy_crash() {
    let rules = Arc::new(Rules::standard());
    let bus = MemoryBus::new();
    let keys = Keys::new("t");
    let m = MatchId::new("ai").unwrap();
    announce(&bus, &keys, &m).await;

    let (stop_engine, engine) = spawn_engine(&bus, &keys, &rules, Pace::Speed(10));
    let (_stop_eco1, eco1) = spawn_economy(&bus, &keys, &rules, "eco-1");
    wait_len(&bus, &keys.eco(&m), 400, "economy steps").await;
    // The first economy instance dies without handing over.
    eco1.abort();
    let _ = eco1.await;
    let (stop_eco2, eco2) = spawn_economy(&bus, &keys, &rules, "eco-2");
    wait_len(&bus, &keys.eco(&m), 900, "economy steps after takeover").await;
    let _ = stop_eco2.send(());
    eco2.await.unwrap().unwrap();
    let _ = stop_engine.send(());
    engine.await.unwrap().unwrap();

    // Exactly one economy step per engine tick, in order, each naming its tick.
    let steps = bus
        .range(&keys.eco(&m), StreamId::ZERO, StreamId::MAX, usize::MAX)
        .await
        .unwrap();
    for (n, e) in steps.iter().enumerate() {
        assert_eq!(
            e.id,
            StreamId::for_tick(n as u64),
            "step {n} missing or doubled"
        );
        let step = decode::<EconomyStepCommitted>(&e.payload).unwrap().body;
        assert_eq!(step.consumed[0], StreamId::for_tick(n as u64).to_string());
    }

    // No command is folded by two steps: the instance that took over resumed its command
    // cursor after the newest command any step up to its snapshot consumed.
    let mut consumed = std::collections::BTreeSet::new();
    for e in &steps {
        let step = decode::<EconomyStepCommitted>(&e.payload).unwrap().body;
        for id in &step.consumed[1..] {
            assert!(
                consumed.insert(id.clone()),
                "command {id} consumed twice (again by step {})",
                step.tick
            );
        }
    }

    // The whole economy log re-runs to the same hashes (no desync across the takeover).
    let ticks = bus
        .range(&keys.tick(&m), StreamId::ZERO, StreamId::MAX, usize::MAX)
        .await
        .unwrap();
    let mut eco = economy::Economy::new(rules.clone(), &ai_match(&m));
    let mut spent = false;
    for e in &steps {
        let step = decode::<EconomyStepCommitted>(&e.payload).unwrap().body;
        let tick = decode::<TickCommitted>(&ticks[step.tick as usize].payload)
            .unwrap()
            .body;
        let mut inputs = Vec::new();
        for id in &step.consumed[1..] {
            let sid: StreamId = id.parse().unwrap();
            let c = bus.range(&keys.cmd(&m), sid, sid, 1).await.unwrap();
            inputs.push(economy::Input {
                stream_id: id.clone(),
                envelope: decode::<Command>(&c[0].payload).unwrap(),
            });
        }
        let out = eco.step(&tick, &step.consumed[0], &inputs);
        assert_eq!(
            out.committed.hash, step.hash,
            "economy desync at tick {}",
            step.tick
        );
        spent |= step
            .events
            .iter()
            .any(|e| matches!(e, LedgerEvent::CreditsChanged { delta, .. } if *delta < 0));
    }
    assert!(spent, "the AIs never spent credits");

    // The AIs played: bot commands reached the stream, and the engine applied economy spawns.
    let cmds = bus
        .range(&keys.cmd(&m), StreamId::ZERO, StreamId::MAX, usize::MAX)
        .await
        .unwrap();
    let sources: Vec<Source> = cmds
        .iter()
        .map(|c| decode::<Command>(&c.payload).unwrap().source)
        .collect();
    assert!(sources.iter().any(|s| matches!(s, Source::Bot(_))));
    assert!(sources.contains(&Source::Economy));
    let placed = ticks.iter().any(|t| {
        decode::<TickCommitted>(&t.payload)
            .unwrap()
            .body
            .events
            .iter()
            .any(|e| matches!(e, GameEvent::BuildingPlaced { request, .. } if *request > 0))
    });
    assert!(placed, "no AI building was ever placed");
}

/// An economy behind an unpaced engine never reaches the present (every read returns a
/// full page), yet its AIs play: they act on the newest tick of each page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ais_act_while_their_economy_is_behind_the_engine() {
    let rules = Arc::new(Rules::standard());
    let bus = MemoryBus::new();
    let keys = Keys::new("t");
    let m = MatchId::new("behind").unwrap();
    announce(&bus, &keys, &m).await;
    let (stop_engine, engine) = spawn_engine(&bus, &keys, &rules, Pace::Unpaced);
    // The engine is well ahead before the economy starts, and keeps running.
    const BACKLOG: u64 = 3_000;
    wait_len(&bus, &keys.tick(&m), BACKLOG, "engine ticks").await;
    let page = eco_config("eco").ticks_per_read as u64;
    let (stop_eco, eco) = spawn_economy(&bus, &keys, &rules, "eco");
    wait_len(&bus, &keys.eco(&m), BACKLOG / 2, "economy steps").await;
    let _ = stop_eco.send(());
    eco.await.unwrap().unwrap();
    let _ = stop_engine.send(());
    engine.await.unwrap().unwrap();

    let folded = bus.len(&keys.eco(&m)).await.unwrap();
    let ticks = bus.len(&keys.tick(&m)).await.unwrap();
    assert!(
        ticks >= folded + page,
        "the economy caught up ({folded} steps, {ticks} ticks): the test needs it behind"
    );
    let bots = bus
        .range(&keys.cmd(&m), StreamId::ZERO, StreamId::MAX, usize::MAX)
        .await
        .unwrap()
        .iter()
        .filter(|c| {
            matches!(
                decode::<Command>(&c.payload).unwrap().source,
                Source::Bot(_)
            )
        })
        .count();
    assert!(
        bots > 0,
        "no AI command in {folded} economy steps behind {ticks} engine ticks"
    );
}
