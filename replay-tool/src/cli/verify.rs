//! `replay-tool verify`: re-run the engine and the economy and compare every tick's hash
//! with the log; on a divergence, where and why (exit 1).

use std::fmt;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use replay_tool::file;
use replay_tool::verify::{Basis, Divergence, Kind, ServiceReport};
use replay_tool::{VerifyOptions, VerifyReport};
use serde::Serialize;

use super::{emit, hms, load, rules, Bars, Global, Source};

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    source: Source,
    /// Start from the nearest snapshot at or before this tick.
    #[arg(long)]
    from_tick: Option<u64>,
    #[arg(long, conflicts_with = "economy_only")]
    engine_only: bool,
    #[arg(long)]
    economy_only: bool,
    #[arg(long)]
    json: bool,
}

/// The library's report; the JSON is exactly it, the text adds the log's length.
#[derive(Serialize)]
#[serde(transparent)]
pub struct VerifyOutput {
    report: VerifyReport,
    /// Ticks in the log.
    #[serde(skip)]
    ticks: u64,
    /// Game time of the log, in seconds.
    #[serde(skip)]
    seconds: f64,
}

pub async fn run(g: &Global, a: &VerifyArgs) -> Result<ExitCode> {
    let (rec, file_warnings) = match (&a.source.file, &a.source.match_id) {
        (Some(f), None) => {
            let (header, rec) =
                file::read(f).with_context(|| format!("loading {}", f.display()))?;
            (rec, unchecked_header(f, &header))
        }
        _ => (load(g, &a.source).await?, Vec::new()),
    };
    let rules = rules(g)?;
    let opts = VerifyOptions {
        engine: !a.economy_only,
        economy: !a.engine_only,
        from_tick: a.from_tick,
        ..Default::default()
    };
    let mut report = replay_tool::verify(&rec, &rules, &opts, &Bars::new())?;
    report.warnings.splice(0..0, file_warnings);
    let ok = report.ok();
    let output = VerifyOutput {
        report,
        ticks: rec.tick_count(),
        seconds: rec.seconds(),
    };
    emit(&output, a.json)?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The warning for a format 1 file, whose header no checksum covers.
fn unchecked_header(f: &std::path::Path, header: &replay_tool::FileHeader) -> Vec<String> {
    let unchecked = (!header.header_checked).then(|| {
        format!(
            "{} is a format {} file: its header is not covered by a checksum (export it again for one)",
            f.display(),
            header.format
        )
    });
    unchecked.into_iter().collect()
}

impl fmt::Display for VerifyOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = &self.report;
        writeln!(
            f,
            "verify: match {} ({} ticks, {} of game time at {} Hz)",
            report.match_id,
            self.ticks,
            hms(self.seconds),
            report.tick_hz
        )?;
        for w in &report.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        for r in [&report.engine, &report.economy].into_iter().flatten() {
            write_service(f, r)?;
        }
        writeln!(
            f,
            "  {} ticks in {:.2} s: {:.0} ticks/s, {:.0}x real time",
            report.ticks_checked(),
            report.wall_s,
            report.ticks_per_second(),
            report.realtime_multiple()
        )?;
        for r in [&report.engine, &report.economy].into_iter().flatten() {
            if let Some(d) = &r.divergence {
                write_divergence(f, d)?;
            }
        }
        Ok(())
    }
}

fn write_service(f: &mut fmt::Formatter<'_>, r: &ServiceReport) -> fmt::Result {
    match &r.divergence {
        None => writeln!(
            f,
            "  {:<8} {} ticks checked from tick {}: all hashes match{}",
            r.service.to_string() + ":",
            r.ticks_checked,
            r.first_tick,
            r.first_outcome_mismatch
                .map(|t| format!(" (but outcome events differ first at tick {t})"))
                .unwrap_or_default()
        )?,
        Some(d) => writeln!(
            f,
            "  {:<8} {} ticks checked from tick {}: DIVERGES at tick {}",
            r.service.to_string() + ":",
            r.ticks_checked,
            r.first_tick,
            d.tick
        )?,
    }
    for w in &r.snapshot_warnings {
        writeln!(f, "    warning: {w}")?;
    }
    Ok(())
}

fn write_divergence(f: &mut fmt::Formatter<'_>, d: &Divergence) -> fmt::Result {
    writeln!(f)?;
    writeln!(
        f,
        "DESYNC: {} diverges at tick {}: recorded hash {:016x}, re-run {:016x}",
        d.service, d.tick, d.recorded_hash, d.rerun_hash
    )?;
    for why in &d.unusable_inputs {
        writeln!(f, "  missing input: {why}")?;
    }
    writeln!(
        f,
        "  inputs applied at tick {} ({}):",
        d.tick,
        d.inputs.len()
    )?;
    for i in &d.inputs {
        writeln!(
            f,
            "    {}  v{}  {}  {}",
            i.stream_id,
            i.schema_version.map_or("?".to_string(), |v| v.to_string()),
            i.source,
            i.command
        )?;
    }
    if !d.outcome_diff.is_empty() {
        writeln!(f, "  outcome (- only recorded, + only re-run):")?;
        for l in d.outcome_diff.iter().take(20) {
            writeln!(f, "    {l}")?;
        }
    }
    let basis = match &d.basis {
        Basis::SnapshotAt { tick } => format!("the snapshot at tick {tick}"),
        Basis::ReplayedFrom { snapshot_tick } => format!(
            "the snapshot at tick {snapshot_tick}, re-run to tick {} (reproduces the recorded hash)",
            d.tick
        ),
        Basis::LaterSnapshot { tick } => {
            format!("the next snapshot, at tick {tick} (re-run carried forward to it)")
        }
        Basis::WithoutInputs { state_tick } => format!(
            "the logged state before tick {t} (re-run from tick {state_tick}, every hash matching) stepped through it without its inputs: the differences are what those inputs did",
            t = d.tick
        ),
        Basis::Unavailable => "nothing (no usable snapshot)".to_string(),
    };
    writeln!(f, "  recorded state from {basis}")?;
    writeln!(
        f,
        "  verdict: {}",
        match d.kind {
            Kind::State => "the re-run state differs: the logged inputs or the code differ from what ran",
            Kind::HistoryDependent =>
                "nondeterminism: re-running from a snapshot reproduces the log, the full re-run does not",
            Kind::RecordedHash =>
                "the states are identical; only the recorded hash disagrees (altered log or changed hash function)",
            Kind::Unexplained => "no recorded state to compare with",
            Kind::MissingInput =>
                "an input the tick names is missing from the log or unusable (deleted or altered entry)",
        }
    )?;
    if let Some(at) = d.compared_at {
        writeln!(
            f,
            "  differences at tick {at} ({}{}):",
            d.differences.len(),
            if d.differences.is_empty() {
                ", none"
            } else {
                ""
            }
        )?;
        for x in &d.differences {
            let label = x
                .entity()
                .and_then(|u| d.labels.get(&u))
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            writeln!(f, "    {x}{label}")?;
        }
    }
    if !d.named_by_inputs.is_empty() {
        let names: Vec<String> = d.named_by_inputs.iter().map(|u| u.to_string()).collect();
        writeln!(
            f,
            "  entities named by the inputs at tick {} that differ: {}",
            d.tick,
            names.join(", ")
        )?;
    }
    if let Some(m) = d.next_tick_matches {
        writeln!(
            f,
            "  tick {} {}",
            d.tick + 1,
            if m { "matches again" } else { "diverges too" }
        )?;
    }
    for n in &d.notes {
        writeln!(f, "  note: {n}")?;
    }
    Ok(())
}
