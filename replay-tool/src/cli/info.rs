//! `replay-tool info`: a replay file's header, as JSON (its only form).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use events::{MatchCreated, MatchEnded};
use replay_tool::file::{self, EntryCounts};
use replay_tool::RawEntry;
use serde::Serialize;

use super::{out, sorted_json};

#[derive(Args)]
pub struct InfoArgs {
    file: PathBuf,
}

/// The header, the original match of an imported copy and the bytes of each stream's
/// payloads.
#[derive(Serialize)]
pub struct InfoReport {
    format: u16,
    engine_version: String,
    /// Hex, 16 digits.
    rules_hash: String,
    match_id: String,
    original_match_id: Option<String>,
    setup: MatchCreated,
    ended: Option<MatchEnded>,
    ticks: u64,
    entries: EntryCounts,
    payload_bytes: PayloadBytes,
    exported_ms: u64,
    compressed: bool,
}

/// Payload bytes per stream.
#[derive(Serialize)]
pub struct PayloadBytes {
    matches: usize,
    cmd: usize,
    tick: usize,
    eco: usize,
    snap: usize,
    seek: usize,
}

pub fn run(a: &InfoArgs) -> Result<ExitCode> {
    let (h, rec) = file::read(&a.file)?;
    let bytes = |s: &[RawEntry]| s.iter().map(|e| e.payload.len()).sum::<usize>();
    let s = &rec.streams;
    let report = InfoReport {
        format: h.format,
        engine_version: h.engine_version,
        rules_hash: format!("{:016x}", h.rules_hash),
        match_id: h.match_id.to_string(),
        original_match_id: rec.original_id().map(|m| m.to_string()),
        setup: h.setup,
        ended: h.ended,
        ticks: h.ticks,
        entries: h.entries,
        payload_bytes: PayloadBytes {
            matches: bytes(&s.matches),
            cmd: bytes(&s.cmd),
            tick: bytes(&s.tick),
            eco: bytes(&s.eco),
            snap: bytes(&s.snap),
            seek: bytes(&s.seek),
        },
        exported_ms: h.exported_ms,
        compressed: h.compressed,
    };
    out(format_args!("{}\n", sorted_json(&report)?))?;
    Ok(ExitCode::SUCCESS)
}
