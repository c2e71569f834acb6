//! Bus latency bench: append, and append → wake of a blocked reader, on `MemoryBus` and on
//! `RedisBus` against a redis-server this bench starts. Prints p50/p99/max per case.
//! Run with `cargo bench -p events --bench bus` (a few seconds).

use std::time::{Duration, Instant};

use events::testkit::{unique_prefix, RedisServer};
use events::{Append, Bus, IdSpec, MemoryBus, RedisBus, RedisBusConfig, StreamId};
use tokio::sync::mpsc;

/// About the size of an encoded command envelope.
const PAYLOAD: [u8; 128] = [7; 128];
const APPENDS: usize = 5_000;
const ROUND_TRIPS: usize = 1_000;
const BATCHES: usize = 1_000;
const BATCH: usize = 8;

struct Stats {
    name: String,
    samples: Vec<Duration>,
}

impl Stats {
    fn print(mut self) {
        self.samples.sort();
        let pick = |q: f64| {
            let i = ((self.samples.len() as f64) * q) as usize;
            self.samples[i.min(self.samples.len() - 1)]
        };
        println!(
            "{:<34} n={:<6} p50={:>9.1?} p99={:>9.1?} max={:>9.1?}",
            self.name,
            self.samples.len(),
            pick(0.50),
            pick(0.99),
            pick(1.0)
        );
    }
}

async fn append_latency<B: Bus>(bus: &B, label: &str, prefix: &str) -> Stats {
    let s = format!("{prefix}:append");
    let mut samples = Vec::with_capacity(APPENDS);
    for _ in 0..APPENDS {
        let t0 = Instant::now();
        bus.append(&s, IdSpec::Auto, &PAYLOAD, Some(10_000))
            .await
            .expect("append");
        samples.push(t0.elapsed());
    }
    Stats {
        name: format!("{label} append"),
        samples,
    }
}

async fn batch_latency<B: Bus>(bus: &B, label: &str, prefix: &str) -> Stats {
    let (tick, view) = (format!("{prefix}:tick"), format!("{prefix}:view"));
    let mut samples = Vec::with_capacity(BATCHES);
    for n in 1..=BATCHES as u64 {
        let mut items = vec![Append {
            stream: tick.clone(),
            id: IdSpec::Explicit(StreamId::for_tick(n)),
            payload: PAYLOAD.to_vec(),
            maxlen: None,
        }];
        items.extend((1..BATCH).map(|_| Append {
            stream: view.clone(),
            id: IdSpec::Auto,
            payload: PAYLOAD.to_vec(),
            maxlen: Some(1_000),
        }));
        let t0 = Instant::now();
        bus.append_batch(items).await.expect("append_batch");
        samples.push(t0.elapsed());
    }
    Stats {
        name: format!("{label} append_batch x{BATCH}"),
        samples,
    }
}

/// Time from calling `append` to a reader blocked in `read_after` holding the entry.
async fn wake_latency<B: Bus>(bus: &B, label: &str, prefix: &str) -> Stats {
    let s = format!("{prefix}:wake");
    let (tx, mut rx) = mpsc::channel::<Instant>(1);
    let reader = {
        let (bus, s) = (bus.clone(), s.clone());
        tokio::spawn(async move {
            let mut after = StreamId::ZERO;
            let mut seen = 0;
            while seen < ROUND_TRIPS {
                let got = bus
                    .read_after(&s, after, 100, Some(Duration::from_secs(1)))
                    .await
                    .expect("read_after");
                let now = Instant::now();
                for e in got {
                    after = e.id;
                    seen += 1;
                    if tx.send(now).await.is_err() {
                        return;
                    }
                }
            }
        })
    };
    // Let the reader block first.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t0 = Instant::now();
        bus.append(&s, IdSpec::Auto, &PAYLOAD, None)
            .await
            .expect("append");
        let woke = rx.recv().await.expect("reader alive");
        samples.push(woke.saturating_duration_since(t0));
        // Give the reader time to re-enter its blocking read before the next append.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    reader.await.expect("reader");
    Stats {
        name: format!("{label} append -> blocked read"),
        samples,
    }
}

async fn run<B: Bus>(bus: &B, label: &str) {
    let prefix = unique_prefix();
    append_latency(bus, label, &prefix).await.print();
    batch_latency(bus, label, &prefix).await.print();
    wake_latency(bus, label, &prefix).await.print();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        run(&MemoryBus::new(), "memory").await;
        let server = match RedisServer::start() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("skipping RedisBus: {e}");
                return;
            }
        };
        let bus = RedisBus::connect(&server.url(), RedisBusConfig::default())
            .await
            .expect("connect to the bench redis-server");
        run(&bus, "redis").await;
    });
}
