//! The operations endpoint every service binary serves: `/health` (liveness),
//! `/ready` (named checks with latency and status, as JSON) and `/metrics` (Prometheus),
//! plus the process RSS gauge and the memory-growth detector.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Metric: resident set size of the process, bytes.
pub const RSS_METRIC: &str = "process_resident_memory_bytes";
/// Metric: RSS growth trend over the detector's window, bytes per minute.
pub const RSS_TREND_METRIC: &str = "cnit_memory_growth_bytes_per_minute";

/// Histogram buckets, by metric name (the brief's buckets where it names them).
const BUCKETS: &[(&str, &[f64])] = &[
    (
        "game_frame_time_ms",
        &[1.0, 5.0, 10.0, 16.67, 25.0, 50.0, 100.0],
    ),
    ("selection_latency_ms", &[1.0, 5.0, 10.0, 16.0, 25.0, 50.0]),
    (
        "command_apply_latency_ms",
        &[
            5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 150.0, 250.0, 500.0, 1000.0,
        ],
    ),
    // 60, 30, 20, 10 fps and worse.
    (
        "client_frame_time_ms",
        &[4.0, 8.0, 16.7, 25.0, 33.4, 50.0, 100.0, 250.0],
    ),
    (
        "economy_step_time_ms",
        &[0.1, 0.5, 1.0, 5.0, 10.0, 16.67, 50.0],
    ),
];

/// Buckets of every other histogram in seconds (names ending in `_seconds`): round trips,
/// lags and durations from a millisecond to a second.
const SECONDS_BUCKETS: &[f64] = &[0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// How often histogram samples are folded into their buckets. The recorder keeps every
/// raw sample until a scrape or an upkeep drains it, so without this a service nobody
/// scrapes grows by every sample it records (found by the soak test).
pub const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// A gauge not set for this long is dropped from `/metrics` (at the next scrape). The
/// per-match gauges (`game_entity_count{match}`, `cnit_stream_lag_entries{match}`) are set
/// every few seconds while the match runs on this instance, so a match that ended or
/// moved to another instance leaves the exposition a minute later instead of staying in
/// it for the life of the process. The lease, pending-entry and memory gauges are set at
/// least every 15 s (the slowest, the memory sampler); the unlabelled placeholders that
/// `register` functions set once at start leave after this timeout like any stale series.
pub const GAUGE_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The services' recorder settings: histogram buckets, and gauges dropped after `gauge_idle`
/// without an update.
fn metrics_builder(gauge_idle: Duration) -> Result<PrometheusBuilder, String> {
    let mut b = PrometheusBuilder::new()
        .idle_timeout(metrics_util::MetricKindMask::GAUGE, Some(gauge_idle));
    for (name, buckets) in BUCKETS {
        b = b
            .set_buckets_for_metric(Matcher::Full((*name).to_string()), buckets)
            .map_err(|e| e.to_string())?;
    }
    // Full names take precedence over suffixes.
    b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .map_err(|e| e.to_string())
}

static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the global Prometheus recorder on the first call and returns its handle (the
/// same one on every later call: in embedded mode the gateway, the engine and the economy
/// share one process and so one recorder and one `/metrics`). A background thread runs
/// the recorder's upkeep every [`METRICS_UPKEEP_EVERY`].
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    RECORDER
        .get_or_init(|| {
            let handle = metrics_builder(GAUGE_IDLE_TIMEOUT)?
                .install_recorder()
                .map_err(|e| e.to_string())?;
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(METRICS_UPKEEP_EVERY);
                    upkeep.run_upkeep();
                })
                .map_err(|e| e.to_string())?;
            Ok(handle)
        })
        .clone()
}

/// Registers the metrics every leased service exports (lease, DLQ, memory), so they are
/// scraped from the start rather than after their first event.
pub fn register_common_metrics(service: &'static str) {
    use crate::runner::metric as lease;
    metrics::describe_gauge!(lease::MATCHES_OWNED, "Matches owned by this instance");
    metrics::gauge!(lease::MATCHES_OWNED, "service" => service).set(0.0);
    metrics::describe_counter!(lease::TAKEOVERS, "Matches taken over from another instance");
    metrics::counter!(lease::TAKEOVERS, "service" => service).increment(0);
    metrics::describe_counter!(
        lease::FENCED,
        "Commits refused by fencing (stale owner stopped)"
    );
    metrics::counter!(lease::FENCED, "service" => service).increment(0);
    metrics::describe_counter!(
        lease::LEASES_LOST,
        "Matches stopped because their lease was taken over (stale owner stopped)"
    );
    metrics::counter!(lease::LEASES_LOST, "service" => service).increment(0);
    metrics::describe_gauge!(
        lease::PENDING,
        "Pending entries of the service's lease group"
    );
    metrics::gauge!(lease::PENDING, "group" => service).set(0.0);
    metrics::describe_counter!(
        events::dlq::DLQ_METRIC,
        "Entries sent to the dead-letter stream"
    );
    metrics::counter!(events::dlq::DLQ_METRIC, "stream_kind" => "cmd").increment(0);
    register_memory_metrics();
}

/// Registers the process memory metrics (every service, the gateway included).
pub fn register_memory_metrics() {
    metrics::describe_gauge!(RSS_METRIC, "Resident set size of the process, bytes");
    sample_rss_now();
    metrics::describe_gauge!(
        RSS_TREND_METRIC,
        "RSS growth trend over the detector window, bytes per minute"
    );
    metrics::gauge!(RSS_TREND_METRIC).set(0.0);
}

/// One readiness check's result.
#[derive(Clone, Debug)]
pub struct CheckResult {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// A readiness check: returns whether the service may take traffic and why.
pub type Check = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = CheckResult> + Send>> + Send + Sync>;

/// Sets gauges that are sampled rather than kept up to date (run before every scrape).
pub type Sampler = Arc<dyn Fn() + Send + Sync>;

#[derive(Clone)]
struct OpsState {
    service: &'static str,
    metrics: PrometheusHandle,
    checks: Arc<Vec<Check>>,
    sample: Sampler,
}

/// The ops router: `/health`, `/ready`, `/metrics`.
pub fn router(service: &'static str, metrics: PrometheusHandle, checks: Vec<Check>) -> Router {
    router_sampling(service, metrics, checks, Arc::new(|| {}))
}

/// The ops router, running `sample` before rendering each `/metrics` (a gauge kept only
/// by increments would lose its value when it is dropped after [`GAUGE_IDLE_TIMEOUT`]
/// without an update; sampling it at every scrape keeps it exact).
pub fn router_sampling(
    service: &'static str,
    metrics: PrometheusHandle,
    checks: Vec<Check>,
    sample: Sampler,
) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(OpsState {
            service,
            metrics,
            checks: Arc::new(checks),
            sample,
        })
}

async fn health(State(s): State<OpsState>) -> Response {
    axum::Json(serde_json::json!({"service": s.service, "status": "alive"})).into_response()
}

/// How long one readiness check may take before it counts as failing.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

async fn ready(State(s): State<OpsState>) -> Response {
    let mut checks = Vec::new();
    let mut all_ok = true;
    for check in s.checks.iter() {
        let started = Instant::now();
        let r = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
            Ok(r) => r,
            Err(_) => CheckResult {
                name: "timeout",
                ok: false,
                detail: format!("check took longer than {} s", CHECK_TIMEOUT.as_secs()),
            },
        };
        all_ok &= r.ok;
        let latency_ms = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
        checks.push(serde_json::json!({
            "name": r.name,
            "status": if r.ok { "ok" } else { "failing" },
            "latency_ms": latency_ms,
            "detail": r.detail,
        }));
    }
    let body = serde_json::json!({"service": s.service, "ready": all_ok, "checks": checks});
    let code = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn render_metrics(State(s): State<OpsState>) -> Response {
    sample_rss_now();
    (s.sample)();
    (
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

/// Unit abbreviations a metric name should not contain (Prometheus' metric lint).
const ABBREVIATED_UNITS: &[&str] = &["s", "ms", "us", "ns", "sec", "milli", "micro", "nano"];

/// Checks a Prometheus text exposition the way `promtool check metrics` does: every
/// series belongs to a family with a `# TYPE` and a `# HELP` line, counters end in
/// `_total` and nothing else does, only histograms and summaries end in `_count`, `_sum`
/// or `_bucket`, and names are snake_case without abbreviated units. The naming rules
/// are not applied to the names in `kept` (names the dashboards and alert rules query,
/// which the project keeps as they are). Returns one line per problem, `name: problem`.
pub fn lint_exposition(text: &str, kept: &[&str]) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut types: BTreeMap<&str, &str> = BTreeMap::new();
    let mut helps: BTreeMap<&str, bool> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut samples: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            helps.insert(name, !help.trim().is_empty());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            if types.insert(name, kind.trim()).is_some() {
                problems.push(format!("{name}: more than one TYPE line"));
            }
        } else if !line.is_empty() && !line.starts_with('#') {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            samples.push(&line[..end]);
        }
    }
    for name in samples {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| matches!(types.get(base), Some(&"histogram") | Some(&"summary")))
            .unwrap_or(name);
        if !types.contains_key(family) {
            problems.push(format!("{family}: series without a TYPE line"));
        }
    }
    for (&name, &kind) in &types {
        if !helps.get(name).copied().unwrap_or(false) {
            problems.push(format!("{name}: no help text"));
        }
        if kept.contains(&name) {
            continue;
        }
        let distribution = kind == "histogram" || kind == "summary";
        if kind == "counter" && !name.ends_with("_total") {
            problems.push(format!(
                "{name}: counter metrics should have \"_total\" suffix"
            ));
        }
        if kind != "counter" && name.ends_with("_total") {
            problems.push(format!(
                "{name}: non-counter metrics should not have \"_total\" suffix"
            ));
        }
        for suffix in ["_count", "_sum", "_bucket"] {
            if !distribution && name.ends_with(suffix) {
                problems.push(format!(
                    "{name}: non-histogram and non-summary metrics should not have \"{suffix}\" suffix"
                ));
            }
        }
        if name.chars().any(|c| c.is_ascii_uppercase()) {
            problems.push(format!(
                "{name}: metric names should be written in 'snake_case' not 'camelCase'"
            ));
        }
        if name.split('_').any(|t| ABBREVIATED_UNITS.contains(&t)) {
            problems.push(format!(
                "{name}: metric names should not contain abbreviated units"
            ));
        }
    }
    problems
}

/// Current resident set size in bytes (Linux `/proc/self/statm`), if known.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn sample_rss_now() {
    if let Some(rss) = rss_bytes() {
        metrics::gauge!(RSS_METRIC).set(rss as f64);
    }
}

/// Bounded window of RSS samples and the growth trend over it.
pub struct GrowthDetector {
    samples: VecDeque<(Instant, u64)>,
    window: usize,
    /// Growth (bytes per minute, least-squares slope) above which a warning is logged.
    pub warn_bytes_per_minute: f64,
}

impl GrowthDetector {
    pub fn new(window: usize, warn_bytes_per_minute: f64) -> Self {
        Self {
            samples: VecDeque::with_capacity(window),
            window: window.max(2),
            warn_bytes_per_minute,
        }
    }

    /// Adds a sample; returns the trend in bytes per minute once two samples exist.
    pub fn add(&mut self, at: Instant, rss: u64) -> Option<f64> {
        if self.samples.len() == self.window {
            self.samples.pop_front();
        }
        self.samples.push_back((at, rss));
        self.trend()
    }

    /// Least-squares slope of RSS over time, bytes per minute.
    pub fn trend(&self) -> Option<f64> {
        if self.samples.len() < 2 {
            return None;
        }
        let t0 = self.samples[0].0;
        let n = self.samples.len() as f64;
        let xs: Vec<f64> = self
            .samples
            .iter()
            .map(|(t, _)| t.duration_since(t0).as_secs_f64() / 60.0)
            .collect();
        let ys: Vec<f64> = self.samples.iter().map(|(_, r)| *r as f64).collect();
        let mx = xs.iter().sum::<f64>() / n;
        let my = ys.iter().sum::<f64>() / n;
        let num: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
        let den: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
        if den == 0.0 {
            return None;
        }
        Some(num / den)
    }
}

/// Samples RSS every `every`, exports it and the growth trend, and warns when the trend
/// passes the threshold. Runs until `shutdown`.
pub async fn memory_watch(
    service: &'static str,
    every: Duration,
    window: usize,
    warn_bytes_per_minute: f64,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut d = GrowthDetector::new(window, warn_bytes_per_minute);
    let mut iv = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = iv.tick() => {
                let Some(rss) = rss_bytes() else { continue };
                metrics::gauge!(RSS_METRIC).set(rss as f64);
                if let Some(trend) = d.add(Instant::now(), rss) {
                    metrics::gauge!(RSS_TREND_METRIC).set(trend);
                    if trend > d.warn_bytes_per_minute && d.samples.len() == d.window {
                        tracing::warn!(service, trend_bytes_per_minute = trend, rss, "memory keeps growing");
                    }
                }
            }
        }
    }
}

/// Memory-growth detector settings of the service binaries: a sample every 15 s, a
/// 10-minute window, and a warning above 5 MB/min of sustained growth.
pub const MEMORY_SAMPLE_EVERY: Duration = Duration::from_secs(15);
/// Samples kept by the memory-growth detector.
pub const MEMORY_WINDOW: usize = 40;
/// Growth (bytes per minute) above which the detector warns.
pub const MEMORY_WARN_BYTES_PER_MINUTE: f64 = 5.0 * 1024.0 * 1024.0;

/// Runs `op`, and once more if it failed with a transient error. A connection the server
/// closed (a Redis restart) fails its next command ("broken pipe") and is replaced by a
/// fresh one: a readiness probe must not report that stale connection as the bus being
/// down when the bus is back.
pub async fn retry_transient_once<T, F, Fut>(mut op: F) -> Result<T, events::BusError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, events::BusError>>,
{
    match op().await {
        Err(e) if e.is_transient() => {
            tracing::debug!(error = %e, "readiness probe failed once; retrying");
            op().await
        }
        other => other,
    }
}

/// `/ready` check: Redis answers PING (retried once on a fresh connection).
pub fn redis_check(bus: events::RedisBus) -> Check {
    Arc::new(move || {
        let bus = bus.clone();
        Box::pin(async move {
            match retry_transient_once(|| bus.ping()).await {
                Ok(()) => CheckResult {
                    name: "redis",
                    ok: true,
                    detail: "PONG".into(),
                },
                Err(e) => CheckResult {
                    name: "redis",
                    ok: false,
                    detail: e.to_string(),
                },
            }
        })
    })
}

/// `/ready` check over any bus: `stream` can be read (its length; retried once on a
/// transient error like [`redis_check`]).
pub fn bus_check<B: events::Bus>(bus: B, stream: String) -> Check {
    Arc::new(move || {
        let (bus, stream) = (bus.clone(), stream.clone());
        Box::pin(async move {
            match retry_transient_once(|| bus.len(&stream)).await {
                Ok(n) => CheckResult {
                    name: "bus",
                    ok: true,
                    detail: format!("{stream}: {n} entries"),
                },
                Err(e) => CheckResult {
                    name: "bus",
                    ok: false,
                    detail: e.to_string(),
                },
            }
        })
    })
}

/// Runs a service binary's main future next to its ops endpoint (on `listener`) and the
/// memory-growth detector, stopping both once the service has stopped. The service
/// itself is handed the Ctrl-C/SIGTERM future and drains on it.
pub async fn run_with_ops<F, Fut, T>(
    service: &'static str,
    listener: tokio::net::TcpListener,
    metrics: PrometheusHandle,
    checks: Vec<Check>,
    run: F,
) -> T
where
    F: FnOnce(Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = T>,
{
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    register_common_metrics(service);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(service, %addr, "ops endpoint listening");
    }
    let ops_server = tokio::spawn({
        let stop = stopped(stop_rx.clone());
        async move {
            axum::serve(listener, router(service, metrics, checks))
                .with_graceful_shutdown(stop)
                .await
        }
    });
    let watch = tokio::spawn(memory_watch(
        service,
        MEMORY_SAMPLE_EVERY,
        MEMORY_WINDOW,
        MEMORY_WARN_BYTES_PER_MINUTE,
        stopped(stop_rx.clone()),
    ));
    let out = run(Box::pin(shutdown_signal())).await;
    let _ = stop_tx.send(true);
    let _ = ops_server.await;
    let _ = watch.await;
    out
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_trend_is_the_slope() {
        let mut d = GrowthDetector::new(10, 1e6);
        let t0 = Instant::now();
        assert!(d.add(t0, 100).is_none());
        for i in 1..20u64 {
            d.add(t0 + Duration::from_secs(60 * i), 100 + 1000 * i);
        }
        let trend = d.trend().unwrap();
        assert!((trend - 1000.0).abs() < 1e-6, "{trend}");
        assert_eq!(d.samples.len(), 10, "window is bounded");
    }

    #[test]
    fn a_gauge_no_longer_set_leaves_the_exposition() {
        let idle = Duration::from_millis(100);
        let recorder = metrics_builder(idle).unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::gauge!("game_entity_count", "match" => "ended").set(7.0);
            metrics::gauge!("game_entity_count", "match" => "live").set(9.0);
            metrics::counter!("cnit_ticks_total").increment(1);
        });
        let first = handle.render();
        assert!(first.contains("match=\"ended\""), "{first}");
        // One match goes on, the other ended (no more updates).
        for _ in 0..3 {
            std::thread::sleep(idle);
            metrics::with_local_recorder(&recorder, || {
                metrics::gauge!("game_entity_count", "match" => "live").set(9.0);
            });
            let _ = handle.render();
        }
        let later = handle.render();
        assert!(!later.contains("match=\"ended\""), "{later}");
        assert!(later.contains("match=\"live\""), "{later}");
        assert!(
            later.contains("cnit_ticks_total"),
            "counters are kept: {later}"
        );
    }

    #[test]
    fn lint_finds_what_promtool_finds() {
        let text = "# TYPE a_total counter\na_total 1\n\
                    # HELP b_ms Latency\n# TYPE b_ms histogram\nb_ms_bucket{le=\"1\"} 1\nb_ms_sum 1\nb_ms_count 1\n\
                    # HELP c_count Things\n# TYPE c_count gauge\nc_count 3\n\
                    # HELP d Calls\n# TYPE d counter\nd 1\n\
                    e_untyped 1\n";
        let problems = lint_exposition(text, &[]);
        assert_eq!(
            problems,
            [
                "e_untyped: series without a TYPE line",
                "a_total: no help text",
                "b_ms: metric names should not contain abbreviated units",
                "c_count: non-histogram and non-summary metrics should not have \"_count\" suffix",
                "d: counter metrics should have \"_total\" suffix",
            ]
        );
        // Kept names skip the naming rules, never the HELP/TYPE ones.
        let kept = lint_exposition(text, &["b_ms", "c_count", "a_total"]);
        assert!(kept
            .iter()
            .all(|p| !p.starts_with("b_ms") && !p.starts_with("c_count")));
        assert!(kept.contains(&"a_total: no help text".to_string()));
    }

    #[test]
    fn rss_is_readable() {
        assert!(rss_bytes().unwrap_or(0) > 0);
    }
}
