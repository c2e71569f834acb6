//! `replay-tool bench`: re-simulate a log at full speed, the engine and then the economy:
//! ticks/s, multiple of real time, tick-time percentiles.

use std::fmt;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use events::MatchId;
use replay_tool::bench::{bench, BenchReport};
use replay_tool::{EconomyRun, EngineRun};
use serde::Serialize;

use super::{hms, load, out, rules, sorted_json, Bars, Global, Source};

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    source: Source,
    #[arg(long)]
    json: bool,
}

/// Both re-runs' timings; the text adds the log's length.
#[derive(Serialize)]
pub struct BenchOutput {
    engine: BenchReport,
    economy: BenchReport,
    #[serde(skip)]
    match_id: MatchId,
    #[serde(skip)]
    ticks: u64,
    /// Game time of the log, in seconds.
    #[serde(skip)]
    seconds: f64,
    #[serde(skip)]
    tick_hz: u32,
}

pub async fn run(g: &Global, a: &BenchArgs) -> Result<ExitCode> {
    let rec = load(g, &a.source).await?;
    let rules = rules(g)?;
    let bars = Bars::new();
    // One after the other: on a small machine two re-runs would time each other.
    let engine = bench::<EngineRun>(&rec, &rules, &bars)?;
    let economy = bench::<EconomyRun>(&rec, &rules, &bars)?;
    let report = BenchOutput {
        engine,
        economy,
        match_id: rec.match_id.clone(),
        ticks: rec.tick_count(),
        seconds: rec.seconds(),
        tick_hz: rec.tick_hz(),
    };
    if a.json {
        out(format_args!("{}\n", sorted_json(&report)?))?;
    } else {
        out(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

impl fmt::Display for BenchOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "bench: match {} ({} ticks, {} at {} Hz), build {}",
            self.match_id,
            self.ticks,
            hms(self.seconds),
            self.tick_hz,
            env!("CARGO_PKG_VERSION")
        )?;
        write_bench(f, &self.engine)?;
        write_bench(f, &self.economy)?;
        let both = self.engine.total_s + self.economy.total_s;
        writeln!(
            f,
            "  both, one after the other: {:.2} s, {:.0}x real time",
            both,
            self.seconds / both.max(1e-9)
        )
    }
}

fn write_bench(f: &mut fmt::Formatter<'_>, r: &BenchReport) -> fmt::Result {
    writeln!(
        f,
        "  {:<8} {:>7} ticks in {:>7.2} s: {:>9.0} ticks/s {:>7.0}x real time | tick p50 {:>7.1} us  p99 {:>8.1} us  max {:>9.1} us  mean {:>7.1} us{}",
        r.service.to_string() + ":",
        r.ticks,
        r.total_s,
        r.ticks_per_s,
        r.realtime_multiple,
        r.p50_us,
        r.p99_us,
        r.max_us,
        r.mean_us,
        if r.mismatches > 0 {
            format!("  ({} ticks differ from the log)", r.mismatches)
        } else {
            String::new()
        }
    )
}
