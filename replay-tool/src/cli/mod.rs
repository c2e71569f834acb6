//! The `replay-tool` command line: global settings, one module per subcommand (each parses
//! its own arguments and builds a `Serialize` report that prints as text or, with
//! `--json`, as that same report), and what they share (loading a recording, progress
//! bars, output that survives a closed pipe).

mod audit;
mod bench;
mod export;
mod import;
mod info;
mod list;
mod record;
mod seek;
mod state;
mod stats;
mod verify;

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use engine::Rules;
use events::{Keys, MatchId, RedisBus, RedisBusConfig};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use replay_tool::progress::Progress;
use replay_tool::Recording;
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "replay-tool",
    version,
    about = "Replays and desync audits from a match's event log"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Settings every subcommand shares.
#[derive(Args)]
pub struct Global {
    /// Redis to read matches from or import into: one node `redis://[user:pass@]host:port`,
    /// or a Redis Cluster `redis+cluster://[user:pass@]host:port,host:port,...` (or a
    /// comma-separated list of seed nodes).
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        global = true
    )]
    redis_url: String,
    /// Stream key prefix.
    #[arg(long, env = "CNIT_PREFIX", default_value = events::keys::DEFAULT_PREFIX, global = true)]
    prefix: String,
    /// Rules file the match ran with (default: the rules built into this binary).
    #[arg(long, global = true)]
    rules: Option<PathBuf>,
}

/// Where a recording comes from: a replay file, or a match in Redis.
#[derive(Args, Clone)]
pub struct Source {
    /// A replay file written by `export` or `record`.
    file: Option<PathBuf>,
    /// A match id in Redis (instead of a file).
    #[arg(long = "match", value_name = "ID")]
    match_id: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the matches in Redis: id, players, ticks, status.
    List(list::ListArgs),
    /// Export a match's durable streams from Redis to a replay file.
    Export(export::ExportArgs),
    /// Import a replay file into Redis.
    Import(import::ImportArgs),
    /// Print a replay file's header.
    Info(info::InfoArgs),
    /// Re-run the engine and the economy and compare every tick's hash with the log.
    Verify(verify::VerifyArgs),
    /// Check the log's delivery guarantees: tick n under id n-1 with no gap or double,
    /// every decodable command consumed exactly once, every undecodable one
    /// dead-lettered exactly once (exit 0 clean, 1 findings, 2 unusable input).
    Audit(audit::AuditArgs),
    /// Print the state after a tick (seeking from the nearest snapshot).
    State(state::StateArgs),
    /// Re-simulate at full speed; print ticks/s, multiple of real time, tick-time percentiles.
    Bench(bench::BenchArgs),
    /// Time seeks: build the snapshot index, then seek to the middle and the end.
    Seek(seek::SeekArgs),
    /// Per player income, units built and lost, actions per minute; CSV and SVG.
    Stats(stats::StatsArgs),
    /// Record an AI-vs-AI match in process (engine + economy + AIs) to a replay file.
    Record(record::RecordArgs),
}

/// Ticks between the engine states `export` and `record` keep in the file: at ~100 us a
/// tick, a seek then re-runs at most ~60 ms; the states add ~15% to a compressed file.
const DEFAULT_SEEK_INDEX: u64 = 600;

/// Parses the command line and runs it; the process's exit status: 0 done (or clean), 1
/// findings (a divergence, an audit finding), 2 failure, 141 output pipe closed.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("replay-tool: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(code) => code,
        // The reader of our output went away (`| head`): stop quietly with the status a
        // process ended by SIGPIPE reports (128 + 13), so `set -o pipefail` still sees
        // that the output was cut short (and a divergence is never read as success).
        Err(e) if is_broken_pipe(&e) => ExitCode::from(141),
        Err(e) => {
            eprintln!("replay-tool: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn run(cli: &Cli) -> Result<ExitCode> {
    let g = &cli.global;
    match &cli.cmd {
        Cmd::List(a) => list::run(g, a).await,
        Cmd::Export(a) => export::run(g, a).await,
        Cmd::Import(a) => import::run(g, a).await,
        Cmd::Info(a) => info::run(a),
        Cmd::Verify(a) => verify::run(g, a).await,
        Cmd::Audit(a) => audit::run(g, a).await,
        Cmd::State(a) => state::run(g, a).await,
        Cmd::Bench(a) => bench::run(g, a).await,
        Cmd::Seek(a) => seek::run(g, a).await,
        Cmd::Stats(a) => stats::run(g, a).await,
        Cmd::Record(a) => record::run(g, a),
    }
}

/// Writes to standard output, reporting a failed write (a closed pipe: `replay-tool … |
/// head`) as an error instead of panicking as `std`'s `print!` does.
fn out(text: impl fmt::Display) -> Result<()> {
    use std::io::Write as _;
    write!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

/// A report as its text (`Display`, whole lines) or, with `--json`, as pretty JSON of the
/// same report.
fn emit<R: Serialize + fmt::Display>(report: &R, json: bool) -> Result<()> {
    if json {
        out(format_args!("{}\n", serde_json::to_string_pretty(report)?))
    } else {
        out(report)
    }
}

/// Pretty JSON of a report through `serde_json::Value`, whose objects sort their keys:
/// the key order of the commands whose JSON has always been built that way.
fn sorted_json<R: Serialize>(report: &R) -> Result<String> {
    Ok(serde_json::to_string_pretty(&serde_json::to_value(
        report,
    )?)?)
}

/// Progress bars on standard error (hidden when it is not a terminal).
struct Bars {
    multi: MultiProgress,
    bars: Mutex<Vec<(String, ProgressBar)>>,
}

impl Bars {
    fn new() -> Self {
        Self {
            multi: MultiProgress::new(),
            bars: Mutex::new(Vec::new()),
        }
    }

    fn with_bar(&self, task: &str, f: impl FnOnce(&ProgressBar)) {
        let Ok(bars) = self.bars.lock() else {
            return;
        };
        if let Some((_, b)) = bars.iter().find(|(t, _)| t == task) {
            f(b);
        }
    }
}

impl Progress for Bars {
    fn begin(&self, task: &str, total: u64) {
        let bar = self.multi.add(ProgressBar::new(total));
        let style = ProgressStyle::with_template(
            "{prefix:>14} [{bar:40}] {pos}/{len} ticks {per_sec} eta {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(task.to_string());
        if let Ok(mut bars) = self.bars.lock() {
            bars.retain(|(t, _)| t != task);
            bars.push((task.to_string(), bar));
        }
    }

    fn advance(&self, task: &str, n: u64) {
        self.with_bar(task, |b| b.inc(n));
    }

    fn end(&self, task: &str) {
        self.with_bar(task, |b| b.finish_and_clear());
    }
}

fn rules(g: &Global) -> Result<Arc<Rules>> {
    match &g.rules {
        None => Ok(Arc::new(Rules::standard())),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Ok(Arc::new(
                Rules::from_toml(&text).with_context(|| format!("rules file {}", p.display()))?,
            ))
        }
    }
}

async fn redis(g: &Global) -> Result<RedisBus> {
    RedisBus::connect(&g.redis_url, RedisBusConfig::default())
        .await
        .with_context(|| format!("connecting to {}", g.redis_url))
}

async fn load(g: &Global, src: &Source) -> Result<Recording> {
    match (&src.file, &src.match_id) {
        (Some(_), Some(_)) => bail!("give either a file or --match, not both"),
        (Some(f), None) => {
            Recording::from_file(f).with_context(|| format!("loading {}", f.display()))
        }
        (None, Some(m)) => {
            let m = MatchId::new(m.clone())?;
            let bus = redis(g).await?;
            Recording::from_bus(&bus, &Keys::new(&g.prefix), &m)
                .await
                .with_context(|| format!("loading match {m} from {}", g.redis_url))
        }
        (None, None) => bail!("give a replay file or --match ID"),
    }
}

/// `m:ss` of a duration in seconds.
fn hms(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}
