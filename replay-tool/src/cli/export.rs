//! `replay-tool export`: a match's durable streams from Redis to a replay file.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use events::{Keys, MatchId};
use replay_tool::Recording;
use serde::Serialize;

use super::{emit, hms, redis, rules, Bars, Global, DEFAULT_SEEK_INDEX};

#[derive(Args)]
pub struct ExportArgs {
    #[arg(long = "match", value_name = "ID")]
    match_id: String,
    #[arg(short, long)]
    out: PathBuf,
    /// Store the body uncompressed.
    #[arg(long)]
    no_compress: bool,
    /// Keep an engine state every this many ticks in the file, so seeks are fast
    /// from the first (0: none; the live snap stream holds only the last few).
    #[arg(long, default_value_t = DEFAULT_SEEK_INDEX)]
    seek_index: u64,
    #[arg(long)]
    json: bool,
}

/// What was written where.
#[derive(Serialize)]
pub struct ExportReport {
    match_id: MatchId,
    ticks: u64,
    /// Game time, in seconds.
    seconds: f64,
    commands: usize,
    snapshots: usize,
    out: PathBuf,
    bytes: u64,
    bytes_per_minute: f64,
}

pub async fn run(g: &Global, a: &ExportArgs) -> Result<ExitCode> {
    let m = MatchId::new(a.match_id.clone())?;
    let bus = redis(g).await?;
    let mut rec = Recording::from_bus(&bus, &Keys::new(&g.prefix), &m).await?;
    rec.build_seek_index(&rules(g)?, a.seek_index, &Bars::new())?;
    let bytes = rec.to_file(&a.out, !a.no_compress)?;
    let report = ExportReport {
        match_id: m,
        ticks: rec.tick_count(),
        seconds: rec.seconds(),
        commands: rec.streams.cmd.len(),
        snapshots: rec.streams.snap.len(),
        out: a.out.clone(),
        bytes,
        bytes_per_minute: bytes as f64 / (rec.seconds() / 60.0).max(1.0 / 60.0),
    };
    emit(&report, a.json)?;
    Ok(ExitCode::SUCCESS)
}

impl fmt::Display for ExportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "exported match {}: {} ticks ({}), {} commands, {} snapshots -> {} ({} bytes, {:.0} bytes per minute)",
            self.match_id,
            self.ticks,
            hms(self.seconds),
            self.commands,
            self.snapshots,
            self.out.display(),
            self.bytes,
            self.bytes_per_minute
        )
    }
}
