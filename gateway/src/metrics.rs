//! Metric names of the gateway and their descriptions; the Prometheus recorder is the
//! process-wide one of `service::ops` (its buckets, and gauges dropped when idle).

use metrics_exporter_prometheus::PrometheusHandle;

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
/// Histogram: round trip of the server's pings, seconds.
pub const RTT_SECONDS: &str = "gateway_ws_rtt_seconds";
/// Histogram: view frame age when the hub reads it (`sent_ms` to now), seconds.
pub const VIEW_LAG_SECONDS: &str = "gateway_view_lag_seconds";
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

/// Installs the process-wide Prometheus recorder (shared with the engine and the economy
/// when they run in this process, see [`service::ops::install_metrics`]) and describes the
/// gateway's metrics; returns its handle, or `None` when another recorder was installed
/// first.
pub fn install() -> Option<PrometheusHandle> {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    match service::ops::install_metrics() {
        Ok(h) => {
            REGISTERED.call_once(register);
            Some(h)
        }
        Err(e) => {
            tracing::warn!(error = %e, "prometheus recorder not installed");
            None
        }
    }
}

/// Describes every gateway metric (a series without help text fails the exposition lint)
/// and registers the ones dashboards and alerts read, so they are exported from the start
/// rather than after their first event.
pub fn register() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(SESSIONS, "Open WebSocket sessions");
    metrics::gauge!(SESSIONS).set(0.0);
    describe_counter!(SESSIONS_TOTAL, "WebSocket sessions opened, by role");
    describe_counter!(
        SESSIONS_REFUSED,
        "WebSocket upgrades refused because the session limit was reached"
    );
    describe_counter!(
        SLOW_CLIENTS,
        "Clients dropped for a full send queue or for falling behind their match"
    );
    metrics::counter!(SLOW_CLIENTS).increment(0);
    describe_counter!(ERRORS, "Error replies sent to clients, by code");
    describe_counter!(COMMANDS, "Player commands, by result");
    describe_histogram!(
        RTT_SECONDS,
        Unit::Seconds,
        "Round trip of the server's WebSocket pings"
    );
    describe_histogram!(
        VIEW_LAG_SECONDS,
        Unit::Seconds,
        "Age of a view frame when its match hub reads it"
    );
    describe_gauge!(HUBS, "Match hubs running on this instance");
    metrics::gauge!(HUBS).set(0.0);
    describe_counter!(BUS_ERRORS, "Bus errors seen by match hubs and the lobby");
    describe_counter!(
        UNDECODABLE,
        "Stream entries the gateway could not decode and skipped"
    );
    describe_counter!(
        MATCHES_CREATED,
        "Matches created through the lobby, by mode"
    );
    describe_histogram!(
        SELECTION_LATENCY_MS,
        Unit::Milliseconds,
        "Client-measured unit selection latency"
    );
    let _ = metrics::histogram!(SELECTION_LATENCY_MS);
    describe_histogram!(
        CLIENT_FRAME_MS,
        Unit::Milliseconds,
        "Client-measured frame time"
    );
    let _ = metrics::histogram!(CLIENT_FRAME_MS);
    service::ops::register_memory_metrics();
}
