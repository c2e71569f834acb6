//! Re-simulation at full speed: ticks per second, the multiple of real time, and the
//! distribution of per-tick times, comparable across commits.

use std::sync::Arc;
use std::time::Instant;

use engine::Rules;
use serde::Serialize;

use crate::error::{Result, Service};
use crate::progress::{Progress, REPORT_EVERY};
use crate::recording::Recording;
use crate::rerun::Machine;

/// One service's timing over a whole recording.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    pub service: Service,
    pub ticks: u64,
    pub total_s: f64,
    pub ticks_per_s: f64,
    pub realtime_multiple: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// Ticks whose re-run hash differed from the log (a benchmark does not stop there,
    /// but its numbers then describe another match than the one recorded).
    pub mismatches: u64,
}

/// Re-runs one service over the recording, timing every tick.
pub fn bench<M: Machine>(
    rec: &Recording,
    rules: &Arc<Rules>,
    progress: &dyn Progress,
) -> Result<BenchReport> {
    let log = &rec.log;
    let task = format!("bench {}", M::SERVICE);
    let total = M::last_tick(log).map_or(0, |l| l.saturating_add(1));
    // The ticks the log holds (a battle's log starts after its base state).
    let ticks = total.saturating_sub(log.first_tick);
    progress.begin(&task, ticks);
    let mut m = M::fresh(rules, log)?;
    let mut times = Vec::with_capacity(usize::try_from(ticks).unwrap_or(0));
    let mut mismatches = 0;
    let started = Instant::now();
    while m.next_tick() < total {
        let t0 = Instant::now();
        let s = m.step(log, None)?;
        times.push(t0.elapsed().as_nanos() as u64);
        if !s.matches() {
            mismatches += 1;
        }
        if (times.len() as u64).is_multiple_of(REPORT_EVERY) {
            progress.advance(&task, REPORT_EVERY);
        }
    }
    let total_s = started.elapsed().as_secs_f64();
    progress.end(&task);
    Ok(summarize(
        M::SERVICE,
        times,
        total_s,
        rec.tick_hz(),
        mismatches,
    ))
}

fn summarize(
    service: Service,
    mut ns: Vec<u64>,
    total_s: f64,
    hz: u32,
    mismatches: u64,
) -> BenchReport {
    ns.sort_unstable();
    let n = ns.len();
    let pct = |p: f64| -> f64 {
        if n == 0 {
            return 0.0;
        }
        let i = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        ns[i] as f64 / 1000.0
    };
    let ticks_per_s = n as f64 / total_s.max(1e-9);
    BenchReport {
        service,
        ticks: n as u64,
        total_s,
        ticks_per_s,
        realtime_multiple: ticks_per_s / f64::from(hz.max(1)),
        mean_us: if n == 0 {
            0.0
        } else {
            ns.iter().sum::<u64>() as f64 / n as f64 / 1000.0
        },
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        max_us: ns.last().map_or(0.0, |&x| x as f64 / 1000.0),
        mismatches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let r = summarize(
            Service::Engine,
            (1..=100).map(|x| x * 1000).collect(),
            1.0,
            20,
            0,
        );
        assert_eq!(r.p50_us, 50.0);
        assert_eq!(r.p99_us, 99.0);
        assert_eq!(r.max_us, 100.0);
        assert_eq!(r.ticks_per_s, 100.0);
        assert_eq!(r.realtime_multiple, 5.0);
    }
}
