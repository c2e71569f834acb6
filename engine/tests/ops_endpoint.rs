//! The engine binary's ops endpoint against a real Redis (`service::testkit`): with a
//! match running, its `/metrics` lints clean; an empty `REDIS_URL` is refused by name.

use ::service::testkit::{empty_redis_url_is_refused, metrics_lint_clean, OpsProbe};

const ENGINE: &str = env!("CARGO_BIN_EXE_engine");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_metrics_lint_clean_with_a_match_running() {
    metrics_lint_clean(OpsProbe {
        binary: ENGINE,
        match_id: "ops-engine",
        running: "game_entity_count{match=\"{match}\"}",
        expected: &["game_frame_time_ms_count"],
    })
    .await;
}

#[test]
fn an_empty_redis_url_is_refused_by_name() {
    empty_redis_url_is_refused(ENGINE);
}
