//! `replay-tool record`: an AI-vs-AI match run in process (engine + economy + AIs) and
//! written to a replay file.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use replay_tool::record::{ai_vs_ai, RecordConfig, Recorder};
use serde::Serialize;

use super::{emit, hms, rules, Bars, Global, DEFAULT_SEEK_INDEX};

#[derive(Args)]
pub struct RecordArgs {
    #[arg(short, long)]
    out: PathBuf,
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 64)]
    map_size: u16,
    /// easy, normal or hard.
    #[arg(long, default_value = "hard")]
    difficulty: String,
    /// Keep every snapshot (the live snap stream keeps the last 16).
    #[arg(long)]
    all_snapshots: bool,
    #[arg(long)]
    no_compress: bool,
    /// As for `export`.
    #[arg(long, default_value_t = DEFAULT_SEEK_INDEX)]
    seek_index: u64,
    #[arg(long)]
    json: bool,
}

/// What was recorded, how fast, and where it went.
#[derive(Serialize)]
pub struct RecordReport {
    ticks: u64,
    /// Game time, in seconds.
    seconds: f64,
    /// Wall time of the run, in seconds.
    wall_s: f64,
    /// "P1 won", "nobody won" or "no winner yet".
    outcome: String,
    out: PathBuf,
    bytes: u64,
    bytes_per_minute: f64,
}

pub fn run(g: &Global, a: &RecordArgs) -> Result<ExitCode> {
    let d: events::Difficulty = a.difficulty.parse()?;
    let setup = ai_vs_ai(&format!("aivai-{}", a.seed), a.seed, a.map_size, d)?;
    let config = RecordConfig {
        snap_maxlen: if a.all_snapshots { None } else { Some(16) },
        ..RecordConfig::default()
    };
    let mut r = Recorder::new(rules(g)?, &setup, config)?;
    let bars = Bars::new();
    let started = Instant::now();
    let winner = r.run(a.minutes * 60 * u64::from(setup.tick_hz), &bars)?;
    let ticks = r.next_tick();
    let mut rec = r.finish()?;
    rec.build_seek_index(&rules(g)?, a.seek_index, &bars)?;
    let bytes = rec.to_file(&a.out, !a.no_compress)?;
    let report = RecordReport {
        ticks,
        seconds: rec.seconds(),
        wall_s: started.elapsed().as_secs_f64(),
        outcome: match winner {
            Some(Some(p)) => format!("{p} won"),
            Some(None) => "nobody won".into(),
            None => "no winner yet".into(),
        },
        out: a.out.clone(),
        bytes,
        bytes_per_minute: bytes as f64 / (rec.seconds() / 60.0).max(1e-9),
    };
    emit(&report, a.json)?;
    Ok(ExitCode::SUCCESS)
}

impl fmt::Display for RecordReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "recorded {} ticks ({}) in {:.1} s: {}; {} ({} bytes, {:.0} bytes per minute)",
            self.ticks,
            hms(self.seconds),
            self.wall_s,
            self.outcome,
            self.out.display(),
            self.bytes,
            self.bytes_per_minute
        )
    }
}
