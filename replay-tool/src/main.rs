//! `replay-tool`: list, export and import matches, audit them for desyncs and for their
//! delivery guarantees, print the state at any tick, benchmark re-simulation and compute
//! match statistics.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use engine::Rules;
use events::{Keys, MatchId, RedisBus, RedisBusConfig};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use replay_tool::bench::{bench, BenchReport};
use replay_tool::bus::{self, ImportOptions};
use replay_tool::progress::Progress;
use replay_tool::record::{ai_vs_ai, RecordConfig, Recorder};
use replay_tool::seek::Seeker;
use replay_tool::verify::{Divergence, Kind, ServiceReport};
use replay_tool::{audit, file, inspect, stats, EconomyRun, EngineRun, Machine, Recording};

/// Standard output that reports a failed write (a closed pipe: `replay-tool … | head`) as
/// an error instead of panicking as `std`'s `println!` does.
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

/// `print!` with the same error handling as `println!` above.
macro_rules! print {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?
    }};
}

#[derive(Parser)]
#[command(
    name = "replay-tool",
    version,
    about = "Replays and desync audits from a match's event log"
)]
struct Cli {
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
    #[command(subcommand)]
    cmd: Cmd,
}

/// Where a recording comes from: a replay file, or a match in Redis.
#[derive(Args, Clone)]
struct Source {
    /// A replay file written by `export` or `record`.
    file: Option<PathBuf>,
    /// A match id in Redis (instead of a file).
    #[arg(long = "match", value_name = "ID")]
    match_id: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the matches in Redis: id, players, ticks, status.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Export a match's durable streams from Redis to a replay file.
    Export {
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
    },
    /// Import a replay file into Redis.
    Import {
        file: PathBuf,
        /// Import under this match id (envelopes are rewritten).
        #[arg(long = "as", value_name = "ID")]
        rename: Option<String>,
        /// Do not announce the match on the matches stream.
        #[arg(long)]
        no_matches_entry: bool,
    },
    /// Print a replay file's header.
    Info { file: PathBuf },
    /// Re-run the engine and the economy and compare every tick's hash with the log.
    Verify {
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
    },
    /// Check the log's delivery guarantees: tick n under id n-1 with no gap or double,
    /// every decodable command consumed exactly once, every undecodable one
    /// dead-lettered exactly once (exit 0 clean, 1 findings, 2 unusable input).
    Audit {
        #[command(flatten)]
        source: Source,
        #[arg(long)]
        json: bool,
    },
    /// Print the state after a tick (seeking from the nearest snapshot).
    State {
        #[command(flatten)]
        source: Source,
        #[arg(long)]
        tick: u64,
        /// Only this entity.
        #[arg(long)]
        entity: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Re-simulate at full speed; print ticks/s, multiple of real time, tick-time percentiles.
    Bench {
        #[command(flatten)]
        source: Source,
        #[arg(long)]
        json: bool,
    },
    /// Time seeks: build the snapshot index, then seek to the middle and the end.
    Seek {
        #[command(flatten)]
        source: Source,
        /// Ticks between in-memory snapshots.
        #[arg(long, default_value_t = replay_tool::seek::DEFAULT_INTERVAL)]
        interval: u64,
        /// Ignore the seek states an export added to the file (as for a match read from
        /// Redis).
        #[arg(long)]
        no_file_index: bool,
        /// Ignore the engine's seek stream too (as for a match recorded before the engine
        /// kept one: only the background index helps).
        #[arg(long)]
        no_seek_stream: bool,
    },
    /// Per player income, units built and lost, actions per minute; CSV and SVG.
    Stats {
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
    },
    /// Record an AI-vs-AI match in process (engine + economy + AIs) to a replay file.
    Record {
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
    },
}

/// Ticks between the engine states `export` and `record` keep in the file: at ~100 us a
/// tick, a seek then re-runs at most ~60 ms; the states add ~15% to a compressed file.
const DEFAULT_SEEK_INDEX: u64 = 600;

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

fn rules(cli: &Cli) -> Result<Arc<Rules>> {
    match &cli.rules {
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

async fn redis(cli: &Cli) -> Result<RedisBus> {
    RedisBus::connect(&cli.redis_url, RedisBusConfig::default())
        .await
        .with_context(|| format!("connecting to {}", cli.redis_url))
}

async fn load(cli: &Cli, src: &Source) -> Result<Recording> {
    match (&src.file, &src.match_id) {
        (Some(_), Some(_)) => bail!("give either a file or --match, not both"),
        (Some(f), None) => {
            Recording::from_file(f).with_context(|| format!("loading {}", f.display()))
        }
        (None, Some(m)) => {
            let m = MatchId::new(m.clone())?;
            let bus = redis(cli).await?;
            Recording::from_bus(&bus, &Keys::new(&cli.prefix), &m)
                .await
                .with_context(|| format!("loading match {m} from {}", cli.redis_url))
        }
        (None, None) => bail!("give a replay file or --match ID"),
    }
}

fn hms(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

fn print_service(r: &ServiceReport) -> Result<()> {
    match &r.divergence {
        None => println!(
            "  {:<8} {} ticks checked from tick {}: all hashes match{}",
            r.service.to_string() + ":",
            r.ticks_checked,
            r.first_tick,
            r.first_outcome_mismatch
                .map(|t| format!(" (but outcome events differ first at tick {t})"))
                .unwrap_or_default()
        ),
        Some(d) => println!(
            "  {:<8} {} ticks checked from tick {}: DIVERGES at tick {}",
            r.service.to_string() + ":",
            r.ticks_checked,
            r.first_tick,
            d.tick
        ),
    }
    for w in &r.snapshot_warnings {
        println!("    warning: {w}");
    }
    Ok(())
}

fn print_divergence(d: &Divergence) -> Result<()> {
    println!();
    println!(
        "DESYNC: {} diverges at tick {}: recorded hash {:016x}, re-run {:016x}",
        d.service, d.tick, d.recorded_hash, d.rerun_hash
    );
    for why in &d.unusable_inputs {
        println!("  missing input: {why}");
    }
    println!("  inputs applied at tick {} ({}):", d.tick, d.inputs.len());
    for i in &d.inputs {
        println!(
            "    {}  v{}  {}  {}",
            i.stream_id,
            i.schema_version.map_or("?".to_string(), |v| v.to_string()),
            i.source,
            i.command
        );
    }
    if !d.outcome_diff.is_empty() {
        println!("  outcome (- only recorded, + only re-run):");
        for l in d.outcome_diff.iter().take(20) {
            println!("    {l}");
        }
    }
    let basis = match &d.basis {
        replay_tool::verify::Basis::SnapshotAt { tick } => format!("the snapshot at tick {tick}"),
        replay_tool::verify::Basis::ReplayedFrom { snapshot_tick } => format!(
            "the snapshot at tick {snapshot_tick}, re-run to tick {} (reproduces the recorded hash)",
            d.tick
        ),
        replay_tool::verify::Basis::LaterSnapshot { tick } => {
            format!("the next snapshot, at tick {tick} (re-run carried forward to it)")
        }
        replay_tool::verify::Basis::WithoutInputs { state_tick } => format!(
            "the logged state before tick {t} (re-run from tick {state_tick}, every hash matching) stepped through it without its inputs: the differences are what those inputs did",
            t = d.tick
        ),
        replay_tool::verify::Basis::Unavailable => "nothing (no usable snapshot)".to_string(),
    };
    println!("  recorded state from {basis}");
    println!(
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
    );
    if let Some(at) = d.compared_at {
        println!(
            "  differences at tick {at} ({}{}):",
            d.differences.len(),
            if d.differences.is_empty() {
                ", none"
            } else {
                ""
            }
        );
        for x in &d.differences {
            let label = x
                .entity()
                .and_then(|u| d.labels.get(&u))
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            println!("    {x}{label}");
        }
    }
    if !d.named_by_inputs.is_empty() {
        let names: Vec<String> = d.named_by_inputs.iter().map(|u| u.to_string()).collect();
        println!(
            "  entities named by the inputs at tick {} that differ: {}",
            d.tick,
            names.join(", ")
        );
    }
    if let Some(m) = d.next_tick_matches {
        println!(
            "  tick {} {}",
            d.tick + 1,
            if m { "matches again" } else { "diverges too" }
        );
    }
    for n in &d.notes {
        println!("  note: {n}");
    }
    Ok(())
}

fn cmd_verify(
    cli: &Cli,
    rec: &Recording,
    from_tick: Option<u64>,
    which: (bool, bool),
    json: bool,
    file_warnings: Vec<String>,
) -> Result<ExitCode> {
    let rules = rules(cli)?;
    let opts = replay_tool::VerifyOptions {
        engine: which.0,
        economy: which.1,
        from_tick,
        ..Default::default()
    };
    let bars = Bars::new();
    let mut report = replay_tool::verify(rec, &rules, &opts, &bars)?;
    report.warnings.splice(0..0, file_warnings);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "verify: match {} ({} ticks, {} of game time at {} Hz)",
            report.match_id,
            rec.tick_count(),
            hms(rec.seconds()),
            report.tick_hz
        );
        for w in &report.warnings {
            println!("  warning: {w}");
        }
        for r in [&report.engine, &report.economy].into_iter().flatten() {
            print_service(r)?;
        }
        println!(
            "  {} ticks in {:.2} s: {:.0} ticks/s, {:.0}x real time",
            report.ticks_checked(),
            report.wall_s,
            report.ticks_per_second(),
            report.realtime_multiple()
        );
        for r in [&report.engine, &report.economy].into_iter().flatten() {
            if let Some(d) = &r.divergence {
                print_divergence(d)?;
            }
        }
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn cmd_audit(cli: &Cli, src: &Source, json: bool) -> Result<ExitCode> {
    let report = match (&src.file, &src.match_id) {
        (Some(_), Some(_)) => bail!("give either a file or --match, not both"),
        (Some(f), None) => {
            let (_, streams) =
                file::read_streams(f).with_context(|| format!("loading {}", f.display()))?;
            audit::audit_file_streams(&streams)
                .with_context(|| format!("auditing {}", f.display()))?
        }
        (None, Some(m)) => {
            let m = MatchId::new(m.clone())?;
            let bus = redis(cli).await?;
            audit::audit_bus(&bus, &Keys::new(&cli.prefix), &m)
                .await
                .with_context(|| format!("auditing match {m} in {}", cli.redis_url))?
        }
        (None, None) => bail!("give a replay file or --match ID"),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "audit: match {}: {} ticks, {} economy steps, {} commands",
            report.match_id, report.ticks, report.steps, report.commands
        );
        println!(
            "  applied {}, production consumed {}, production tail {}, after the end {}",
            report.applied, report.production_consumed, report.production_tail, report.after_end
        );
        println!(
            "  undecodable {}, dead-lettered once {}{}",
            report.undecodable,
            report.dead_lettered,
            match report.dlq_entries {
                Some(n) => format!(" ({n} dead letters in the DLQ)"),
                None => " (no DLQ in a file: the ticks' dead-letter lists are the evidence)".into(),
            }
        );
        if report.clean() {
            println!("  clean");
        } else {
            println!("  {} findings:", report.findings.len());
            for f in &report.findings {
                println!("    {:?} {}: {}", f.kind, f.entry, f.detail);
            }
        }
    }
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cmd_state(cli: &Cli, rec: Recording, tick: u64, entity: Option<u32>, json: bool) -> Result<()> {
    let rules = rules(cli)?;
    let rec = Arc::new(rec);
    let started = Instant::now();
    let mut engine = Seeker::<EngineRun>::new(rec.clone(), rules.clone())
        .at(tick)
        .context("seeking the engine")?;
    let engine_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    let mut eco = if rec.log.eco(tick).is_some() {
        Some(
            Seeker::<EconomyRun>::new(rec.clone(), rules)
                .at(tick)
                .context("seeking the economy")?,
        )
    } else {
        None
    };
    let eco_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut ei = engine.inspect();
    let ci = eco.as_mut().map(|e| e.inspect());
    if let Some(id) = entity {
        ei.parts
            .retain(|p, _| matches!(p, inspect::Part::Entity(u) if u.0 == id));
    }
    if json {
        let v = serde_json::json!({
            "match_id": rec.match_id.to_string(),
            "tick": tick,
            "engine": ei,
            "economy": ci,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "match {}, state after tick {tick} ({} of game time); seek: engine {engine_ms:.1} ms, economy {eco_ms:.1} ms",
        rec.match_id,
        hms((tick + 1) as f64 / f64::from(rec.tick_hz()))
    );
    println!(
        "engine hash {:016x} (log {:016x}){}",
        ei.hash,
        rec.log.tick(tick).map_or(0, |t| t.hash),
        eco.as_ref()
            .map(|e| format!(
                ", economy hash {:016x} (log {:016x})",
                e.hash(),
                rec.log.eco(tick).map_or(0, |x| x.hash)
            ))
            .unwrap_or_default()
    );
    let records = inspect::Inspection::engine_records(&engine.sim);
    println!();
    println!(
        "{:<4} {:<12} {:>9} {:>6} {:>6} {:>9} {:>11} {:>9}",
        "", "name", "credits", "power", "drain", "buildings", "units", "defeated"
    );
    for slot in &rec.log.setup.players {
        let ledger = eco.as_ref().and_then(|e| e.eco.player(slot.id));
        let own: Vec<_> = records
            .iter()
            .filter(|r| r.ident.owner == slot.id)
            .collect();
        let units = own
            .iter()
            .filter(|r| matches!(r.ident.kind, events::EntityKind::Unit(_)))
            .count();
        let buildings = own.len() - units;
        println!(
            "{:<4} {:<12} {:>9} {:>6} {:>6} {:>9} {:>11} {:>9}",
            slot.id.to_string(),
            slot.name,
            ledger.map_or("-".into(), |l| l.credits.to_string()),
            ledger.map_or("-".into(), |l| l.power.output.to_string()),
            ledger.map_or("-".into(), |l| l.power.consumption.to_string()),
            buildings,
            units,
            ledger.map_or("-".into(), |l| if l.defeated { "yes" } else { "no" }
                .to_string()),
        );
    }
    println!();
    println!(
        "{:>6} {:<4} {:<18} {:>11} {:>11} {:<24} {:>11} {:>6}",
        "id", "own", "kind", "cell", "hp", "order", "dest", "cargo"
    );
    for r in &records {
        if entity.is_some_and(|id| r.ident.id.0 != id) {
            continue;
        }
        let cell = r.body.pos.cell();
        let (order, dest) = match &r.mobile {
            Some(m) => (
                format!("{:?}", m.order),
                m.dest.map_or("-".into(), |d| format!("({},{})", d.x, d.y)),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:>6} {:<4} {:<18} {:>11} {:>11} {:<24} {:>11} {:>6}",
            r.ident.id.to_string(),
            r.ident.owner.to_string(),
            inspect::kind_name(r.ident.kind),
            format!("({},{})", cell.x, cell.y),
            format!("{}/{}", r.health.hp, r.health.max),
            order,
            dest,
            r.harvester.map_or("-".into(), |h| h.cargo().to_string())
        );
    }
    Ok(())
}

fn print_bench(r: &BenchReport) -> Result<()> {
    println!(
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
    );
    Ok(())
}

fn cmd_bench(cli: &Cli, rec: &Recording, json: bool) -> Result<()> {
    let rules = rules(cli)?;
    let bars = Bars::new();
    // One after the other: on a small machine two re-runs would time each other.
    let e = bench::<EngineRun>(rec, &rules, &bars)?;
    let c = bench::<EconomyRun>(rec, &rules, &bars)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"engine": e, "economy": c}))?
        );
        return Ok(());
    }
    println!(
        "bench: match {} ({} ticks, {} at {} Hz), build {}",
        rec.match_id,
        rec.tick_count(),
        hms(rec.seconds()),
        rec.tick_hz(),
        env!("CARGO_PKG_VERSION")
    );
    print_bench(&e)?;
    print_bench(&c)?;
    let both = e.total_s + c.total_s;
    println!(
        "  both, one after the other: {:.2} s, {:.0}x real time",
        both,
        rec.seconds() / both.max(1e-9)
    );
    Ok(())
}

fn cmd_seek(cli: &Cli, rec: Recording, interval: u64) -> Result<()> {
    let rules = rules(cli)?;
    let rec = Arc::new(rec);
    let Some(last) = rec.log.last_tick() else {
        bail!("the recording has no ticks");
    };
    let time = |f: &mut dyn FnMut() -> replay_tool::Result<()>| -> Result<Duration> {
        let t = Instant::now();
        f()?;
        Ok(t.elapsed())
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    // A log that starts after a base state (a battle) can be seeked from that state on.
    let first = rec.log.first_tick.saturating_sub(1);
    let mid = first + (last - first) / 2;
    let three_quarters = first + (last - first) / 4 * 3;
    println!(
        "seek: match {} ({} ticks, {}), {} recorded engine snapshots, index every {interval} ticks",
        rec.match_id,
        last + 1,
        hms(rec.seconds()),
        rec.log.snaps_of(replay_tool::Service::Engine).count()
    );
    if !rec.log.seek.is_empty() {
        println!(
            "  the engine's seek stream holds {} states",
            rec.log.seek.len()
        );
    }
    if !rec.streams.seek_index.is_empty() {
        println!(
            "  the file holds {} seek states (seek_index)",
            rec.streams.seek_index.len()
        );
    }
    // As the gateway opens a replay: playback, plus (for a log without seek states) the
    // index built on another thread from the moment of opening; each target is the first
    // seek of a fresh opening, issued at once (the worst case: nothing indexed yet).
    let mut built = None;
    for (name, t) in [
        ("start", first),
        ("middle", mid),
        ("3/4", three_quarters),
        ("end", last),
    ] {
        let opened = Instant::now();
        let mut pb = replay_tool::Playback::new(rec.clone(), rules.clone());
        let background = pb.wants_background_index();
        let mut indexer = pb.indexer();
        let cancel = indexer.cancel_handle();
        let bg = background.then(|| {
            std::thread::spawn(move || {
                let r = indexer.index_all(&replay_tool::progress::NoProgress);
                (r, opened.elapsed())
            })
        });
        let d = time(&mut || pb.seek(t).map(|_| ()))?;
        println!(
            "  first seek on opening{}, to the {name:<6} (tick {t:>6}): {:>8.1} ms",
            if background {
                " (background index)"
            } else {
                " (no background index needed)"
            },
            ms(d)
        );
        let Some(bg) = bg else { continue };
        if name == "end" {
            // Let the last one finish, for the index build time under playback.
            let (r, took) = bg
                .join()
                .map_err(|_| anyhow::anyhow!("the index thread panicked"))?;
            r?;
            built = Some(took);
        } else {
            cancel.cancel();
            let _ = bg.join();
        }
    }
    if let Some(b) = built {
        println!(
            "  background index complete after opening:    {:>8.1} ms",
            ms(b)
        );
    }
    let mut cold = Seeker::<EngineRun>::new(rec.clone(), rules.clone()).with_interval(interval);
    let d = time(&mut || cold.keyframe(mid).map(|_| ()))?;
    println!(
        "  cold seek to the middle (tick {mid}):      {:>8.1} ms",
        ms(d)
    );
    let mut s = Seeker::<EngineRun>::new(rec.clone(), rules).with_interval(interval);
    let bars = Bars::new();
    let d = time(&mut || s.index_all(&bars))?;
    println!(
        "  index build ({} snapshots):             {:>8.1} ms",
        s.indexed(),
        ms(d)
    );
    for (name, t) in [
        ("middle", mid),
        ("end", last),
        ("start", first),
        ("3/4", three_quarters),
    ] {
        let d = time(&mut || s.keyframe(t).map(|_| ()))?;
        println!(
            "  indexed seek to the {name:<6} (tick {t:>6}):  {:>8.1} ms",
            ms(d)
        );
    }
    Ok(())
}

fn cmd_stats(rec: &Recording, csv: Option<&Path>, svg: Option<&Path>, json: bool) -> Result<()> {
    let s = stats::stats(rec);
    if let Some(p) = csv {
        let text = stats::to_csv(&s);
        if p == Path::new("-") {
            print!("{text}");
        } else {
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
        }
    }
    if let Some(p) = svg {
        std::fs::write(p, stats::to_svg(&s)).with_context(|| format!("writing {}", p.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else if csv.is_none_or(|p| p != Path::new("-")) {
        println!(
            "stats: match {} ({} ticks, {} min)",
            s.match_id, s.ticks, s.minutes
        );
        println!(
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
        );
        for p in &s.players {
            println!(
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
            );
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn cmd_record(
    cli: &Cli,
    out: &Path,
    minutes: u64,
    seed: u64,
    map_size: u16,
    difficulty: &str,
    all_snapshots: bool,
    compress: bool,
    seek_index: u64,
) -> Result<()> {
    let d: events::Difficulty = difficulty.parse()?;
    let setup = ai_vs_ai(&format!("aivai-{seed}"), seed, map_size, d)?;
    let config = RecordConfig {
        snap_maxlen: if all_snapshots { None } else { Some(16) },
        ..RecordConfig::default()
    };
    let mut r = Recorder::new(rules(cli)?, &setup, config)?;
    let bars = Bars::new();
    let started = Instant::now();
    let winner = r.run(minutes * 60 * u64::from(setup.tick_hz), &bars)?;
    let ticks = r.next_tick();
    let mut rec = r.finish()?;
    rec.build_seek_index(&rules(cli)?, seek_index, &bars)?;
    let size = rec.to_file(out, compress)?;
    println!(
        "recorded {} ticks ({}) in {:.1} s: {}; {} ({} bytes, {:.0} bytes per minute)",
        ticks,
        hms(rec.seconds()),
        started.elapsed().as_secs_f64(),
        match winner {
            Some(Some(p)) => format!("{p} won"),
            Some(None) => "nobody won".into(),
            None => "no winner yet".into(),
        },
        out.display(),
        size,
        size as f64 / (rec.seconds() / 60.0).max(1e-9)
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
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
    match &cli.cmd {
        Cmd::List { json } => {
            let bus = redis(cli).await?;
            let list = bus::list(&bus, &Keys::new(&cli.prefix)).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<34} {:<40} {:>8} {:>8}  status",
                    "match", "players", "ticks", "time"
                );
                for m in &list {
                    let players: Vec<String> = m
                        .players
                        .iter()
                        .map(|p| format!("{} {} ({:?})", p.id, p.name, p.kind))
                        .collect();
                    println!(
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
                    );
                }
                println!("{} matches", list.len());
            }
        }
        Cmd::Export {
            match_id,
            out,
            no_compress,
            seek_index,
        } => {
            let m = MatchId::new(match_id.clone())?;
            let bus = redis(cli).await?;
            let mut rec = Recording::from_bus(&bus, &Keys::new(&cli.prefix), &m).await?;
            rec.build_seek_index(&rules(cli)?, *seek_index, &Bars::new())?;
            let size = rec.to_file(out, !no_compress)?;
            println!(
                "exported match {m}: {} ticks ({}), {} commands, {} snapshots -> {} ({size} bytes, {:.0} bytes per minute)",
                rec.tick_count(),
                hms(rec.seconds()),
                rec.streams.cmd.len(),
                rec.streams.snap.len(),
                out.display(),
                size as f64 / (rec.seconds() / 60.0).max(1.0 / 60.0)
            );
        }
        Cmd::Import {
            file,
            rename,
            no_matches_entry,
        } => {
            let rec = Recording::from_file(file)
                .with_context(|| format!("loading {}", file.display()))?;
            let bus = redis(cli).await?;
            let opts = ImportOptions {
                rename: rename.clone().map(MatchId::new).transpose()?,
                skip_matches_entry: *no_matches_entry,
            };
            let done = bus::import(&bus, &Keys::new(&cli.prefix), &rec, &opts).await?;
            println!(
                "imported {} as match {} ({} entries)",
                file.display(),
                done.match_id,
                done.entries
            );
        }
        Cmd::Info { file } => {
            let (h, rec) = file::read(file)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "format": h.format,
                    "engine_version": h.engine_version,
                    "rules_hash": format!("{:016x}", h.rules_hash),
                    "match_id": h.match_id.to_string(),
                    "original_match_id": rec.original_id().map(|m| m.to_string()),
                    "setup": h.setup,
                    "ended": h.ended,
                    "ticks": h.ticks,
                    "entries": h.entries,
                "payload_bytes": {
                    "matches": rec.streams.matches.iter().map(|e| e.payload.len()).sum::<usize>(),
                    "cmd": rec.streams.cmd.iter().map(|e| e.payload.len()).sum::<usize>(),
                    "tick": rec.streams.tick.iter().map(|e| e.payload.len()).sum::<usize>(),
                    "eco": rec.streams.eco.iter().map(|e| e.payload.len()).sum::<usize>(),
                    "snap": rec.streams.snap.iter().map(|e| e.payload.len()).sum::<usize>(),
                    "seek": rec.streams.seek.iter().map(|e| e.payload.len()).sum::<usize>(),
                },
                    "exported_ms": h.exported_ms,
                    "compressed": h.compressed,
                }))?
            );
        }
        Cmd::Verify {
            source,
            from_tick,
            engine_only,
            economy_only,
            json,
        } => {
            let (rec, warnings) = match (&source.file, &source.match_id) {
                (Some(f), None) => {
                    let (header, rec) =
                        file::read(f).with_context(|| format!("loading {}", f.display()))?;
                    let unchecked = (!header.header_checked).then(|| {
                        format!(
                            "{} is a format {} file: its header is not covered by a checksum (export it again for one)",
                            f.display(),
                            header.format
                        )
                    });
                    (rec, unchecked.into_iter().collect())
                }
                _ => (load(cli, source).await?, Vec::new()),
            };
            return cmd_verify(
                cli,
                &rec,
                *from_tick,
                (!economy_only, !engine_only),
                *json,
                warnings,
            );
        }
        Cmd::Audit { source, json } => return cmd_audit(cli, source, *json).await,
        Cmd::State {
            source,
            tick,
            entity,
            json,
        } => cmd_state(cli, load(cli, source).await?, *tick, *entity, *json)?,
        Cmd::Bench { source, json } => cmd_bench(cli, &load(cli, source).await?, *json)?,
        Cmd::Seek {
            source,
            interval,
            no_file_index,
            no_seek_stream,
        } => {
            let loading = Instant::now();
            let mut rec = load(cli, source).await?;
            println!(
                "load ({}): {:.1} ms",
                if source.match_id.is_some() {
                    "from Redis"
                } else {
                    "from the file"
                },
                loading.elapsed().as_secs_f64() * 1000.0
            );
            if *no_file_index {
                rec.streams.seek_index.clear();
            }
            if *no_seek_stream {
                rec.streams.seek.clear();
                rec.log.seek.clear();
            }
            cmd_seek(cli, rec, *interval)?
        }
        Cmd::Stats {
            source,
            csv,
            svg,
            json,
        } => cmd_stats(
            &load(cli, source).await?,
            csv.as_deref(),
            svg.as_deref(),
            *json,
        )?,
        Cmd::Record {
            out,
            minutes,
            seed,
            map_size,
            difficulty,
            all_snapshots,
            no_compress,
            seek_index,
        } => cmd_record(
            cli,
            out,
            *minutes,
            *seed,
            *map_size,
            difficulty,
            *all_snapshots,
            !no_compress,
            *seek_index,
        )?,
    }
    Ok(ExitCode::SUCCESS)
}
