//! `replay-tool audit`: the delivery audit of a log's raw streams (exit 1 on findings).

use std::fmt;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use events::{Keys, MatchId};
use replay_tool::audit::{self, AuditReport};
use replay_tool::file;
use serde::Serialize;

use super::{emit, redis, Global, Source};

#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    source: Source,
    #[arg(long)]
    json: bool,
}

/// The library's report, printed as text or JSON.
#[derive(Serialize)]
#[serde(transparent)]
pub struct AuditOutput(AuditReport);

pub async fn run(g: &Global, a: &AuditArgs) -> Result<ExitCode> {
    let report = match (&a.source.file, &a.source.match_id) {
        (Some(_), Some(_)) => bail!("give either a file or --match, not both"),
        (Some(f), None) => {
            let (_, streams) =
                file::read_streams(f).with_context(|| format!("loading {}", f.display()))?;
            audit::audit_file_streams(&streams)
                .with_context(|| format!("auditing {}", f.display()))?
        }
        (None, Some(m)) => {
            let m = MatchId::new(m.clone())?;
            let bus = redis(g).await?;
            audit::audit_bus(&bus, &Keys::new(&g.prefix), &m)
                .await
                .with_context(|| format!("auditing match {m} in {}", g.redis_url))?
        }
        (None, None) => bail!("give a replay file or --match ID"),
    };
    let clean = report.clean();
    emit(&AuditOutput(report), a.json)?;
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

impl fmt::Display for AuditOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = &self.0;
        writeln!(
            f,
            "audit: match {}: {} ticks, {} economy steps, {} commands",
            report.match_id, report.ticks, report.steps, report.commands
        )?;
        writeln!(
            f,
            "  applied {}, production consumed {}, production tail {}, after the end {}",
            report.applied, report.production_consumed, report.production_tail, report.after_end
        )?;
        writeln!(
            f,
            "  undecodable {}, dead-lettered once {}{}",
            report.undecodable,
            report.dead_lettered,
            match report.dlq_entries {
                Some(n) => format!(" ({n} dead letters in the DLQ)"),
                None => " (no DLQ in a file: the ticks' dead-letter lists are the evidence)".into(),
            }
        )?;
        if report.clean() {
            writeln!(f, "  clean")?;
        } else {
            writeln!(f, "  {} findings:", report.findings.len())?;
            for x in &report.findings {
                writeln!(f, "    {:?} {}: {}", x.kind, x.entry, x.detail)?;
            }
        }
        Ok(())
    }
}
