//! Metric names of the gateway and the Prometheus recorder (installed once per process).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Gauge: open WebSocket sessions.
pub const SESSIONS: &str = "gateway_ws_sessions";
/// Counter: sessions ever opened, by role.
pub const SESSIONS_TOTAL: &str = "gateway_ws_sessions_total";
/// Counter: upgrades refused because `MAX_SESSIONS` were open.
pub const SESSIONS_REFUSED: &str = "gateway_ws_sessions_refused_total";
/// Counter: clients dropped because their send queue filled or they fell behind the hub.
pub const SLOW_CLIENTS: &str = "gateway_slow_clients_dropped_total";
/// Counter: error replies sent, by code.
pub const ERRORS: &str = "gateway_ws_errors_total";
/// Counter: commands, by result (`accepted`, `rejected`, `rate_limited`).
pub const COMMANDS: &str = "gateway_commands_total";
/// Histogram: round trip of the server's pings, ms.
pub const RTT_MS: &str = "gateway_ws_rtt_ms";
/// Histogram: view frame age when the hub reads it (`sent_ms` to now), ms.
pub const VIEW_LAG_MS: &str = "gateway_view_lag_ms";
/// Gauge: running match hubs.
pub const HUBS: &str = "gateway_hubs";
/// Counter: bus errors seen by hubs and the lobby.
pub const BUS_ERRORS: &str = "gateway_bus_errors_total";
/// Counter: stream entries a hub could not decode and skipped.
pub const UNDECODABLE: &str = "gateway_undecodable_entries_total";
/// Counter: matches created through the lobby.
pub const MATCHES_CREATED: &str = "gateway_matches_created_total";
/// Histogram: client telemetry, click to selection drawn, ms.
pub const SELECTION_LATENCY_MS: &str = "selection_latency_ms";
/// Histogram: client telemetry, browser frame time, ms.
pub const CLIENT_FRAME_MS: &str = "client_frame_time_ms";

/// Buckets of `selection_latency_ms` (ms).
pub const SELECTION_BUCKETS: [f64; 6] = [1.0, 5.0, 10.0, 16.0, 25.0, 50.0];
/// Buckets of the client frame time (ms): 60, 30, 20, 10 fps and worse.
pub const FRAME_BUCKETS: [f64; 8] = [4.0, 8.0, 16.7, 25.0, 33.4, 50.0, 100.0, 250.0];
/// Buckets of the round-trip and lag histograms (ms).
pub const LATENCY_BUCKETS: [f64; 10] =
    [1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// How often histogram samples are folded into their buckets between scrapes.
pub const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder on first call and returns its handle.
/// `None` when another recorder was installed first (then `/metrics` says so).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(SELECTION_LATENCY_MS.into()),
                    &SELECTION_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(CLIENT_FRAME_MS.into()), &FRAME_BUCKETS)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_ms".into()), &LATENCY_BUCKETS)
                });
            match builder.and_then(|b| b.install_recorder()) {
                Ok(h) => {
                    register();
                    // The recorder keeps every histogram sample until a scrape or an
                    // upkeep drains it: without upkeep a gateway nobody scrapes grows by
                    // every view frame it reads (found by the soak test).
                    let upkeep = h.clone();
                    let spawned = std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || loop {
                            std::thread::sleep(UPKEEP_EVERY);
                            upkeep.run_upkeep();
                        });
                    if let Err(e) = spawned {
                        tracing::warn!(error = %e, "metrics upkeep thread not started");
                    }
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "prometheus recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// Registers the metrics dashboards and alerts read, so they are exported from the start
/// rather than after their first event.
fn register() {
    metrics::describe_gauge!(SESSIONS, "Open WebSocket sessions");
    metrics::gauge!(SESSIONS).set(0.0);
    metrics::describe_counter!(SLOW_CLIENTS, "Clients dropped for a full send queue");
    metrics::counter!(SLOW_CLIENTS).increment(0);
    metrics::describe_histogram!(
        SELECTION_LATENCY_MS,
        metrics::Unit::Milliseconds,
        "Client-measured unit selection latency"
    );
    let _ = metrics::histogram!(SELECTION_LATENCY_MS);
    metrics::describe_histogram!(
        CLIENT_FRAME_MS,
        metrics::Unit::Milliseconds,
        "Client-measured frame time"
    );
    let _ = metrics::histogram!(CLIENT_FRAME_MS);
    events::ops::register_memory_metrics();
}
