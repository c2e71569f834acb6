//! `replay-tool list`: the matches in Redis, one line each (id, players, ticks, status).

use std::fmt;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use events::Keys;
use replay_tool::bus::{self, MatchSummary};
use serde::Serialize;

use super::{emit, hms, redis, Global};

#[derive(Args)]
pub struct ListArgs {
    #[arg(long)]
    json: bool,
}

/// The matches, in the order the matches stream announced them.
#[derive(Serialize)]
#[serde(transparent)]
pub struct ListReport {
    matches: Vec<MatchSummary>,
}

pub async fn run(g: &Global, a: &ListArgs) -> Result<ExitCode> {
    let bus = redis(g).await?;
    let matches = bus::list(&bus, &Keys::new(&g.prefix)).await?;
    emit(&ListReport { matches }, a.json)?;
    Ok(ExitCode::SUCCESS)
}

impl fmt::Display for ListReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<34} {:<40} {:>8} {:>8}  status",
            "match", "players", "ticks", "time"
        )?;
        for m in &self.matches {
            let players: Vec<String> = m
                .players
                .iter()
                .map(|p| format!("{} {} ({:?})", p.id, p.name, p.kind))
                .collect();
            writeln!(
                f,
                "{:<34} {:<40} {:>8} {:>8}  {}{}",
                m.match_id.to_string(),
                players.join(", "),
                m.ticks,
                hms(m.ticks as f64 / f64::from(m.tick_hz.max(1))),
                m.status,
                m.replay_of
                    .as_ref()
                    .map(|o| format!(" (replay of {o})"))
                    .unwrap_or_default()
            )?;
        }
        writeln!(f, "{} matches", self.matches.len())
    }
}
