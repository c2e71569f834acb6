//! `replay-tool stats`: per player income, units built and lost, actions per minute;
//! also as CSV (`--csv`) and an SVG chart (`--svg`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use replay_tool::stats::{self, Stats};
use serde::Serialize;

use super::{emit, load, out, Global, Source};

#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    source: Source,
    /// Write CSV here (`-`: standard output).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Write an SVG chart here.
    #[arg(long)]
    svg: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// The library's statistics, printed as a table or JSON.
#[derive(Serialize)]
#[serde(transparent)]
pub struct StatsOutput(Stats);

pub async fn run(g: &Global, a: &StatsArgs) -> Result<ExitCode> {
    let s = stats::stats(&load(g, &a.source).await?);
    let csv_to_stdout = a.csv.as_deref() == Some(Path::new("-"));
    if let Some(p) = &a.csv {
        let text = stats::to_csv(&s);
        if csv_to_stdout {
            out(text)?;
        } else {
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
        }
    }
    if let Some(p) = &a.svg {
        std::fs::write(p, stats::to_svg(&s)).with_context(|| format!("writing {}", p.display()))?;
    }
    // The CSV on standard output is the output; the table would only corrupt it.
    if a.json || !csv_to_stdout {
        emit(&StatsOutput(s), a.json)?;
    }
    Ok(ExitCode::SUCCESS)
}

impl fmt::Display for StatsOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.0;
        writeln!(
            f,
            "stats: match {} ({} ticks, {} min)",
            s.match_id, s.ticks, s.minutes
        )?;
        writeln!(
            f,
            "{:<4} {:<12} {:>10} {:>10} {:>6} {:>6} {:>6} {:>6} {:>6} {:>8} {:>6}",
            "",
            "name",
            "harvested",
            "spent",
            "built",
            "lost",
            "b.blt",
            "b.lost",
            "kills",
            "actions",
            "APM"
        )?;
        for p in &s.players {
            writeln!(
                f,
                "P{:<3} {:<12} {:>10} {:>10} {:>6} {:>6} {:>6} {:>6} {:>6} {:>8} {:>6.1}",
                p.player,
                p.name,
                p.counts.harvested,
                p.spent,
                p.counts.units_built,
                p.counts.units_lost,
                p.counts.buildings_built,
                p.counts.buildings_lost,
                p.counts.kills,
                p.actions,
                p.apm
            )?;
        }
        Ok(())
    }
}
