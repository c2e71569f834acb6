//! Dead letters across a takeover: entries of the `cmd` stream that do not decode are
//! dead-lettered once by the instance that read them, and an instance that takes the
//! match over resumes after them (each DLQ id once, the DLQ counter counted once). Its
//! own test binary: it installs the process-wide metrics recorder.

use std::sync::Arc;
use std::time::Duration;

use engine::service::{self, EngineConfig, Pace, Progress};
use engine::Rules;
use events::dlq::decode_dead_letter;
use events::{
    decode, encode, Bus, Command, Envelope, IdSpec, Keys, MatchCreated, MatchEvent, MatchId,
    MemoryBus, PlayerId, Source, StreamId, TickCommitted,
};

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

async fn wait_ticks<B: Bus>(bus: &B, keys: &Keys, m: &MatchId, n: u64) {
    for _ in 0..600 {
        if bus.len(&keys.tick(m)).await.unwrap() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the engine did not commit {n} ticks within 15 s");
}

/// The value of the DLQ counter for `cmd` entries in the exposition.
fn dlq_counted(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(events::dlq::DLQ_METRIC) && l.contains("stream_kind=\"cmd\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_does_not_dead_letter_the_same_entries_again() {
    let metrics = ::service::ops::install_metrics().expect("recorder");
    let rules = Arc::new(Rules::standard());
    let bus = MemoryBus::new();
    let keys = Keys::new("t");
    let m = MatchId::new("dlq").unwrap();
    let cmd = keys.cmd(&m);
    // A valid command first, then entries that cannot be used: after the last applied
    // command, where resuming after the applied ones would read them again.
    let stop = Envelope::new(
        m.clone(),
        Source::Player(PlayerId(0)),
        Command::Stop(events::cmd::Stop { units: vec![] }),
    );
    bus.append(&cmd, IdSpec::Auto, &encode(&stop).unwrap(), None)
        .await
        .unwrap();
    let mut bad = vec![bus
        .append(&cmd, IdSpec::Auto, &[0xc1, 0x00], None)
        .await
        .unwrap()];
    let mut other = stop.clone();
    other.match_id = MatchId::new("elsewhere").unwrap();
    bad.push(
        bus.append(&cmd, IdSpec::Auto, &encode(&other).unwrap(), None)
            .await
            .unwrap(),
    );
    bad.push(
        bus.append_fields(&cmd, IdSpec::Auto, &[(b"x".to_vec(), b"1".to_vec())])
            .unwrap(),
    );
    let setup = MatchCreated::humans(m.clone(), 2, 32, 7);
    let created = Envelope::new(m.clone(), Source::System, MatchEvent::MatchCreated(setup));
    bus.append(
        &keys.matches(),
        IdSpec::Auto,
        &encode(&created).unwrap(),
        None,
    )
    .await
    .unwrap();

    // Instance one reads and dead-letters them, then dies without handing over.
    let one = tokio::spawn(service::run(
        bus.clone(),
        keys.clone(),
        rules.clone(),
        config("one"),
        Arc::new(Progress::default()),
        std::future::pending::<()>(),
    ));
    wait_ticks(&bus, &keys, &m, 80).await;
    one.abort();
    let _ = one.await;
    let after_crash = bus.len(&keys.tick(&m)).await.unwrap();

    // Instance two takes the idle lease over and runs on.
    let (stop2, stopped2) = tokio::sync::oneshot::channel::<()>();
    let two = tokio::spawn(service::run(
        bus.clone(),
        keys.clone(),
        rules,
        config("two"),
        Arc::new(Progress::default()),
        async move {
            let _ = stopped2.await;
        },
    ));
    wait_ticks(&bus, &keys, &m, after_crash + 60).await;
    let _ = stop2.send(());
    two.await.unwrap().unwrap();

    let letters: Vec<String> = bus
        .range(&keys.dlq(), StreamId::ZERO, StreamId::MAX, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            decode_dead_letter(&e.payload)
                .expect("a dead letter")
                .entry_id
        })
        .collect();
    let expected: Vec<String> = bad.iter().map(|id| id.to_string()).collect();
    assert_eq!(letters, expected, "each unusable entry dead-lettered once");
    assert_eq!(dlq_counted(&metrics.render()), bad.len() as f64);
    // The ticks name them, once each.
    let named: Vec<String> = bus
        .range(&keys.tick(&m), StreamId::ZERO, StreamId::MAX, usize::MAX)
        .await
        .unwrap()
        .iter()
        .flat_map(|e| {
            decode::<TickCommitted>(&e.payload)
                .unwrap()
                .body
                .dead_lettered
        })
        .collect();
    assert_eq!(named, expected);
}
