//! The economy binary's ops endpoint against a real Redis (`service::testkit`): with a
//! match claimed, its `/metrics` lints clean; an empty `REDIS_URL` is refused by name.

use service::testkit::{empty_redis_url_is_refused, metrics_lint_clean, OpsProbe};

const ECONOMY: &str = env!("CARGO_BIN_EXE_economy");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_economy_metrics_lint_clean_with_a_match_claimed() {
    metrics_lint_clean(OpsProbe {
        binary: ECONOMY,
        match_id: "ops-economy",
        running: "cnit_matches_owned{service=\"economy\"} 1",
        expected: &["# HELP economy_step_time_ms "],
    })
    .await;
}

#[test]
fn an_empty_redis_url_is_refused_by_name() {
    empty_redis_url_is_refused(ECONOMY);
}
