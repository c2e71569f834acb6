//! `replay-tool import`: a replay file back into Redis, under its own ids (optionally as
//! another match).

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use events::{Keys, MatchId};
use replay_tool::bus::{self, ImportOptions};
use replay_tool::Recording;
use serde::Serialize;

use super::{emit, redis, Global};

#[derive(Args)]
pub struct ImportArgs {
    file: PathBuf,
    /// Import under this match id (envelopes are rewritten).
    #[arg(long = "as", value_name = "ID")]
    rename: Option<String>,
    /// Do not announce the match on the matches stream.
    #[arg(long)]
    no_matches_entry: bool,
    #[arg(long)]
    json: bool,
}

/// What was imported as which match.
#[derive(Serialize)]
pub struct ImportReport {
    file: PathBuf,
    match_id: MatchId,
    entries: u64,
}

pub async fn run(g: &Global, a: &ImportArgs) -> Result<ExitCode> {
    let rec =
        Recording::from_file(&a.file).with_context(|| format!("loading {}", a.file.display()))?;
    let bus = redis(g).await?;
    let opts = ImportOptions {
        rename: a.rename.clone().map(MatchId::new).transpose()?,
        skip_matches_entry: a.no_matches_entry,
    };
    let done = bus::import(&bus, &Keys::new(&g.prefix), &rec, &opts).await?;
    let report = ImportReport {
        file: a.file.clone(),
        match_id: done.match_id,
        entries: done.entries,
    };
    emit(&report, a.json)?;
    Ok(ExitCode::SUCCESS)
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "imported {} as match {} ({} entries)",
            self.file.display(),
            self.match_id,
            self.entries
        )
    }
}
