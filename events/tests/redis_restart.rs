//! RedisBus across a Redis restart: while the server is down every operation fails with
//! a transient error (never a panic or a protocol error), and once it is back the same
//! `RedisBus` (and a blocking reader on it) works again after a bounded retry loop.
//! These tests restart their own server, so they never use `REDIS_URL`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use events::testkit::{unique_prefix, RedisServer};
use events::{Bus, BusError, IdSpec, RedisBus, RedisBusConfig, StreamId};
use tokio::sync::mpsc;

/// Longest a retry loop waits for the bus to come back.
const RECOVERY: Duration = Duration::from_secs(30);

fn server(persistent: bool) -> RedisServer {
    let started = if persistent {
        RedisServer::start_persistent()
    } else {
        RedisServer::start()
    };
    started.unwrap_or_else(|e| panic!("restart tests need a local redis-server: {e}"))
}

/// Retries `op` on transient errors with exponential backoff, up to [`RECOVERY`].
async fn retry<T, F, Fut>(what: &str, mut op: F) -> Result<T, BusError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, BusError>>,
{
    let deadline = tokio::time::Instant::now() + RECOVERY;
    let mut delay = Duration::from_millis(20);
    loop {
        match op().await {
            Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                eprintln!("{what}: {e}; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// Runs the (blocking) restart off the async workers, so other tasks keep running.
async fn restart(mut server: RedisServer) -> RedisServer {
    tokio::task::spawn_blocking(move || {
        server.restart().expect("redis-server restarts");
        server
    })
    .await
    .unwrap()
}

/// A tailing reader that survives outages: transient errors are retried with backoff.
fn spawn_tail(
    bus: RedisBus,
    stream: String,
    mut after: StreamId,
    stop: Arc<AtomicBool>,
) -> mpsc::Receiver<StreamId> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(20);
        while !stop.load(Ordering::SeqCst) {
            match bus
                .read_after(&stream, after, 10, Some(Duration::from_millis(300)))
                .await
            {
                Ok(entries) => {
                    delay = Duration::from_millis(20);
                    for e in entries {
                        after = e.id;
                        if tx.send(e.id).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) if e.is_transient() => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(e) => panic!("tail reader: non-transient error {e}"),
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_bus_works_after_the_server_restarts() {
    let server = server(true);
    let bus = RedisBus::connect(&server.url(), RedisBusConfig::default())
        .await
        .unwrap();
    let s = format!("{}:tick", unique_prefix());
    for n in 1..=3 {
        bus.append(&s, IdSpec::Explicit(StreamId::for_tick(n)), b"t", None)
            .await
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut tail = spawn_tail(bus.clone(), s.clone(), StreamId::for_tick(3), stop.clone());
    // Let the reader block on the server before it goes away.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let server = restart(server).await;

    // The shared connection comes back: the next commit goes in (retried while the
    // connection is re-established).
    let tick4 = StreamId::for_tick(4);
    let mut failed_once = false;
    let r = retry("append after restart", || {
        let (bus, s) = (bus.clone(), s.clone());
        let first = !failed_once;
        failed_once = true;
        async move {
            match bus.append(&s, IdSpec::Explicit(tick4), b"t", None).await {
                // A retried append whose first attempt did land: ours, not a fence.
                Err(BusError::Fenced { last, .. }) if !first && last == tick4 => Ok(tick4),
                other => other,
            }
        }
    })
    .await;
    assert_eq!(r.unwrap(), tick4);

    // With an append-only file nothing acknowledged was lost, and fencing still holds.
    let ids: Vec<StreamId> = bus
        .range(&s, StreamId::ZERO, StreamId::MAX, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, (1..=4).map(StreamId::for_tick).collect::<Vec<_>>());
    let r = bus
        .append(&s, IdSpec::Explicit(StreamId::for_tick(2)), b"stale", None)
        .await;
    assert!(
        matches!(r, Err(BusError::Fenced { last, .. }) if last == tick4),
        "{r:?}"
    );

    // The blocking reader recovered by itself and sees the new tick.
    let got = tokio::time::timeout(RECOVERY, tail.recv())
        .await
        .expect("tail reader delivers after the restart");
    assert_eq!(got, Some(tick4));

    // Groups and blocking group reads work on the recovered bus.
    bus.create_group(&s, "g", StreamId::ZERO).await.unwrap();
    let got = bus
        .read_group(&s, "g", "c", 10, Some(Duration::from_millis(500)))
        .await
        .unwrap();
    assert_eq!(got.len(), 4);
    bus.ping().await.unwrap();
    stop.store(true, Ordering::SeqCst);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_errors_are_transient_then_the_bus_recovers() {
    let mut server = server(false);
    let bus = RedisBus::connect(&server.url(), RedisBusConfig::default())
        .await
        .unwrap();
    let s = format!("{}:cmd", unique_prefix());
    bus.append(&s, IdSpec::Auto, b"x", None).await.unwrap();
    // Warm a blocking connection so the pool holds one that the outage will kill.
    bus.read_after(&s, StreamId::ZERO, 1, Some(Duration::from_millis(10)))
        .await
        .unwrap();

    server.stop();
    let bounded = Duration::from_secs(60);
    let e = tokio::time::timeout(bounded, bus.append(&s, IdSpec::Auto, b"x", None))
        .await
        .expect("append fails within the reconnect budget")
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    let e = tokio::time::timeout(
        bounded,
        bus.read_after(&s, StreamId::ZERO, 1, Some(Duration::from_millis(200))),
    )
    .await
    .expect("blocking read fails within the response timeout")
    .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    let e = tokio::time::timeout(bounded, bus.ping())
        .await
        .expect("ping fails in time")
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");

    let server = tokio::task::spawn_blocking(move || {
        server.start_again().expect("redis-server starts again");
        server
    })
    .await
    .unwrap();
    // Not persistent: the stream is gone, but the same bus is usable again.
    let id = retry("append after outage", || {
        bus.append(&s, IdSpec::Auto, b"y", None)
    })
    .await
    .unwrap();
    let got = retry("blocking read after outage", || {
        bus.read_after(&s, StreamId::ZERO, 10, Some(Duration::from_millis(200)))
    })
    .await
    .unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);
    drop(server);
}
