//! The performance regression gate: measures the key figures (engine tick time at 1,000
//! units, bus append→read latency p99, replay verify speed, peak memory), writes them as
//! JSON, and compares them with the committed baseline `docs/perf-baseline.json`, exiting
//! non-zero on a regression past the thresholds (time 1.2×, memory 1.5×).
//!
//! Run: `cargo bench -p replay-tool --bench perf_gate` (compare),
//! `cargo bench -p replay-tool --bench perf_gate -- --update-baseline` (refresh).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use events::{Bus, IdSpec, MemoryBus, StreamId};
use replay_tool::progress::NoProgress;
use replay_tool::record::{ai_vs_ai, RecordConfig, Recorder};
use replay_tool::{verify, VerifyOptions};

/// Units in the tick-time battle.
const BATTLE_UNITS: usize = 1_000;
/// Ticks timed in the battle.
const BATTLE_TICKS: usize = 100;
/// Bus round trips timed.
const BUS_SAMPLES: usize = 2_000;
/// Simulated minutes of the recorded AI match that is verified.
const VERIFY_MINUTES: u64 = 3;

/// How a figure regresses, and by how much it may before the gate fails.
struct Gate {
    name: &'static str,
    /// True when larger is worse.
    higher_is_worse: bool,
    /// Allowed ratio (worse / better).
    limit: f64,
}

const GATES: &[Gate] = &[
    Gate {
        name: "tick_ms_p50_1000_units",
        higher_is_worse: true,
        limit: 1.2,
    },
    Gate {
        name: "bus_latency_us_p99",
        higher_is_worse: true,
        limit: 1.2,
    },
    Gate {
        name: "verify_realtime_multiple",
        higher_is_worse: false,
        limit: 1.2,
    },
    Gate {
        name: "peak_rss_mb",
        higher_is_worse: true,
        limit: 1.5,
    },
];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn tick_time_ms() -> f64 {
    let mut sim = engine::scenario::battle(128, BATTLE_UNITS);
    let mut times: Vec<f64> = (0..BATTLE_TICKS)
        .map(|_| {
            let t = Instant::now();
            sim.step(&[]);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    percentile(&times, 0.5)
}

fn bus_latency_us_p99() -> f64 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    rt.block_on(async {
        let bus = MemoryBus::new();
        let mut samples = Vec::with_capacity(BUS_SAMPLES);
        let mut last = StreamId::ZERO;
        for _ in 0..BUS_SAMPLES {
            let reader = {
                let bus = bus.clone();
                tokio::spawn(async move {
                    bus.read_after("gate", last, 1, Some(Duration::from_secs(1)))
                        .await
                        .map(|e| (e.first().map(|e| e.id), Instant::now()))
                })
            };
            tokio::task::yield_now().await;
            let sent = Instant::now();
            let id = match bus.append("gate", IdSpec::Auto, &[0u8; 128], None).await {
                Ok(id) => id,
                Err(e) => panic!("append: {e}"),
            };
            if let Ok(Ok((Some(got), at))) = reader.await {
                if got == id {
                    samples.push(at.saturating_duration_since(sent).as_secs_f64() * 1e6);
                }
            }
            last = id;
        }
        samples.sort_by(f64::total_cmp);
        percentile(&samples, 0.99)
    })
}

fn verify_realtime_multiple() -> f64 {
    let rules = Arc::new(engine::Rules::standard());
    let setup = match ai_vs_ai("gate", 3, 64, events::Difficulty::Hard) {
        Ok(s) => s,
        Err(e) => panic!("setup: {e}"),
    };
    let mut rec = match Recorder::new(rules.clone(), &setup, RecordConfig::default()) {
        Ok(r) => r,
        Err(e) => panic!("recorder: {e}"),
    };
    if let Err(e) = rec.run(VERIFY_MINUTES * 60 * 20, &NoProgress) {
        panic!("recording: {e}");
    }
    let recording = match rec.finish() {
        Ok(r) => r,
        Err(e) => panic!("recording: {e}"),
    };
    match verify(&recording, &rules, &VerifyOptions::default(), &NoProgress) {
        Ok(report) if report.ok() => report.realtime_multiple(),
        Ok(_) => panic!("the gate's own recording does not verify"),
        Err(e) => panic!("verify: {e}"),
    }
}

/// Peak resident set size of this process (VmHWM), MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn baseline_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/perf-baseline.json")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --benches` runs bench targets with `--list`-style probing; do no work then.
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let update = args.iter().any(|a| a == "--update-baseline");
    let mut current = BTreeMap::new();
    current.insert("tick_ms_p50_1000_units", tick_time_ms());
    current.insert("bus_latency_us_p99", bus_latency_us_p99());
    current.insert("verify_realtime_multiple", verify_realtime_multiple());
    current.insert("peak_rss_mb", peak_rss_mb());
    let json = match serde_json::to_string_pretty(&current) {
        Ok(j) => j,
        Err(e) => panic!("json: {e}"),
    };
    println!("{json}");
    if update {
        match std::fs::write(baseline_path(), format!("{json}\n")) {
            Ok(()) => println!("baseline updated: {}", baseline_path().display()),
            Err(e) => panic!("writing the baseline: {e}"),
        }
        return;
    }
    let baseline: BTreeMap<String, f64> = match std::fs::read_to_string(baseline_path())
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("no usable baseline at {}: {e}", baseline_path().display());
            std::process::exit(2);
        }
    };
    println!(
        "\n{:<28} {:>12} {:>12} {:>8} {:>6}  verdict",
        "figure", "baseline", "current", "ratio", "limit"
    );
    let mut failed = 0;
    for g in GATES {
        let (Some(&base), Some(&now)) = (baseline.get(g.name), current.get(g.name)) else {
            println!("{:<28} missing", g.name);
            failed += 1;
            continue;
        };
        let ratio = if g.higher_is_worse {
            now / base.max(f64::MIN_POSITIVE)
        } else {
            base / now.max(f64::MIN_POSITIVE)
        };
        let ok = ratio <= g.limit;
        failed += usize::from(!ok);
        println!(
            "{:<28} {:>12.3} {:>12.3} {:>8.2} {:>6.2}  {}",
            g.name,
            base,
            now,
            ratio,
            g.limit,
            if ok { "ok" } else { "REGRESSION" }
        );
    }
    if failed > 0 {
        println!("\n{failed} figure(s) regressed");
        std::process::exit(1);
    }
    println!("\nno regression");
}
