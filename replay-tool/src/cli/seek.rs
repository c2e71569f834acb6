//! `replay-tool seek`: time seeks as the gateway's replay viewer makes them (first seeks on
//! opening, with or without a background index), a cold seek, the index build and
//! indexed seeks.

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use events::MatchId;
use replay_tool::{EngineRun, Playback, Recording, Seeker};
use serde::Serialize;

use super::{emit, hms, load, rules, Bars, Global, Source};

#[derive(Args)]
pub struct SeekArgs {
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
    #[arg(long)]
    json: bool,
}

/// The timings, in milliseconds.
#[derive(Serialize)]
pub struct SeekReport {
    /// Where the recording came from: "from Redis" or "from the file".
    loaded: &'static str,
    load_ms: f64,
    match_id: MatchId,
    ticks: u64,
    /// Game time, in seconds.
    seconds: f64,
    /// The engine snapshots of the log (the `snap` stream).
    snapshots: usize,
    interval: u64,
    /// States in the engine's seek stream.
    seek_stream_states: usize,
    /// States an export added to the file (`seek_index`).
    file_seek_states: usize,
    /// The first seek of a fresh opening to each target.
    first_seeks: Vec<FirstSeek>,
    /// When the background index of the last opening was complete (when it needed one).
    background_index_ms: Option<f64>,
    /// A seek to the middle without an index.
    cold_seek: Timed,
    /// Building the in-memory index of the whole log.
    index_build: IndexBuild,
    /// Seeks once it is built.
    indexed_seeks: Vec<Timed>,
}

/// A seek on opening a replay.
#[derive(Serialize)]
pub struct FirstSeek {
    target: &'static str,
    tick: u64,
    /// Whether the opening started a background index (the log's states leave too much
    /// to re-run).
    background_index: bool,
    ms: f64,
}

/// A seek to a target.
#[derive(Serialize)]
pub struct Timed {
    target: &'static str,
    tick: u64,
    ms: f64,
}

/// The index build.
#[derive(Serialize)]
pub struct IndexBuild {
    snapshots: usize,
    ms: f64,
}

pub async fn run(g: &Global, a: &SeekArgs) -> Result<ExitCode> {
    let loading = Instant::now();
    let mut rec = load(g, &a.source).await?;
    let load_ms = ms(loading.elapsed());
    if a.no_file_index {
        rec.streams.seek_index.clear();
    }
    if a.no_seek_stream {
        rec.streams.seek.clear();
        rec.log.seek.clear();
    }
    let loaded = if a.source.match_id.is_some() {
        "from Redis"
    } else {
        "from the file"
    };
    let report = measure(g, rec, a.interval, loaded, load_ms)?;
    emit(&report, a.json)?;
    Ok(ExitCode::SUCCESS)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn time(f: &mut dyn FnMut() -> replay_tool::Result<()>) -> Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(ms(t.elapsed()))
}

fn measure(
    g: &Global,
    rec: Recording,
    interval: u64,
    loaded: &'static str,
    load_ms: f64,
) -> Result<SeekReport> {
    let rules = rules(g)?;
    let rec = Arc::new(rec);
    let Some(last) = rec.log.last_tick() else {
        bail!("the recording has no ticks");
    };
    // A log that starts after a base state (a battle) can be seeked from that state on.
    let first = rec.log.first_tick.saturating_sub(1);
    let mid = first + (last - first) / 2;
    let three_quarters = first + (last - first) / 4 * 3;
    // As the gateway opens a replay: playback, plus (for a log without seek states) the
    // index built on another thread from the moment of opening; each target is the first
    // seek of a fresh opening, issued at once (the worst case: nothing indexed yet).
    let mut first_seeks = Vec::new();
    let mut built = None;
    for (target, tick) in [
        ("start", first),
        ("middle", mid),
        ("3/4", three_quarters),
        ("end", last),
    ] {
        let opened = Instant::now();
        let mut pb = Playback::new(rec.clone(), rules.clone());
        let background_index = pb.wants_background_index();
        let mut indexer = pb.indexer();
        let cancel = indexer.cancel_handle();
        let bg = background_index.then(|| {
            std::thread::spawn(move || {
                let r = indexer.index_all(&replay_tool::progress::NoProgress);
                (r, opened.elapsed())
            })
        });
        let ms = time(&mut || pb.seek(tick).map(|_| ()))?;
        first_seeks.push(FirstSeek {
            target,
            tick,
            background_index,
            ms,
        });
        let Some(bg) = bg else { continue };
        if target == "end" {
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
    let mut cold = Seeker::<EngineRun>::new(rec.clone(), rules.clone()).with_interval(interval);
    let cold_seek = Timed {
        target: "middle",
        tick: mid,
        ms: time(&mut || cold.keyframe(mid).map(|_| ()))?,
    };
    let mut s = Seeker::<EngineRun>::new(rec.clone(), rules).with_interval(interval);
    let bars = Bars::new();
    let build_ms = time(&mut || s.index_all(&bars))?;
    let index_build = IndexBuild {
        snapshots: s.indexed(),
        ms: build_ms,
    };
    let mut indexed_seeks = Vec::new();
    for (target, tick) in [
        ("middle", mid),
        ("end", last),
        ("start", first),
        ("3/4", three_quarters),
    ] {
        let ms = time(&mut || s.keyframe(tick).map(|_| ()))?;
        indexed_seeks.push(Timed { target, tick, ms });
    }
    Ok(SeekReport {
        loaded,
        load_ms,
        match_id: rec.match_id.clone(),
        ticks: last + 1,
        seconds: rec.seconds(),
        snapshots: rec.log.snaps_of(replay_tool::Service::Engine).count(),
        interval,
        seek_stream_states: rec.log.seek.len(),
        file_seek_states: rec.streams.seek_index.len(),
        first_seeks,
        background_index_ms: built.map(ms),
        cold_seek,
        index_build,
        indexed_seeks,
    })
}

impl fmt::Display for SeekReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "load ({}): {:.1} ms", self.loaded, self.load_ms)?;
        writeln!(
            f,
            "seek: match {} ({} ticks, {}), {} recorded engine snapshots, index every {} ticks",
            self.match_id,
            self.ticks,
            hms(self.seconds),
            self.snapshots,
            self.interval
        )?;
        if self.seek_stream_states > 0 {
            writeln!(
                f,
                "  the engine's seek stream holds {} states",
                self.seek_stream_states
            )?;
        }
        if self.file_seek_states > 0 {
            writeln!(
                f,
                "  the file holds {} seek states (seek_index)",
                self.file_seek_states
            )?;
        }
        for s in &self.first_seeks {
            writeln!(
                f,
                "  first seek on opening{}, to the {:<6} (tick {:>6}): {:>8.1} ms",
                if s.background_index {
                    " (background index)"
                } else {
                    " (no background index needed)"
                },
                s.target,
                s.tick,
                s.ms
            )?;
        }
        if let Some(b) = self.background_index_ms {
            writeln!(
                f,
                "  background index complete after opening:    {b:>8.1} ms"
            )?;
        }
        writeln!(
            f,
            "  cold seek to the middle (tick {}):      {:>8.1} ms",
            self.cold_seek.tick, self.cold_seek.ms
        )?;
        writeln!(
            f,
            "  index build ({} snapshots):             {:>8.1} ms",
            self.index_build.snapshots, self.index_build.ms
        )?;
        for s in &self.indexed_seeks {
            writeln!(
                f,
                "  indexed seek to the {:<6} (tick {:>6}):  {:>8.1} ms",
                s.target, s.tick, s.ms
            )?;
        }
        Ok(())
    }
}
