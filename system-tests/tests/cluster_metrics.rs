//! Every metric the alert rules and the Grafana dashboard query (`compose/metrics-used.txt`,
//! generated from them) is exported by the real service processes: an engine, an economy
//! and a gateway over a test Redis, scraped on their `/metrics` while an AI match runs;
//! and each exposition passes the lint of `promtool check metrics` (those names aside).

#[path = "common/cluster.rs"]
mod cluster;

use std::time::Duration;

use cluster::{Cluster, ClusterConfig};

/// The metric names used by the rules and the dashboard.
fn metrics_used() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../compose/metrics-used.txt");
    std::fs::read_to_string(path)
        .expect("compose/metrics-used.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Names of the series in a Prometheus text exposition (histograms by base name too).
fn exported(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        names.insert(name.to_string());
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                names.insert(base.to_string());
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_alerts_use_is_exported() {
    let mut c = Cluster::start(ClusterConfig::default(), 1, 1, 1).await;
    let m = c.create_ai_match("metrics", 5, 32).await;
    c.wait_ticks(std::slice::from_ref(&m), 40, Duration::from_secs(60))
        .await;
    c.wait_steps(&[m], 20, Duration::from_secs(60)).await;

    let mut all = std::collections::BTreeSet::new();
    for s in c.services() {
        let text = s.metrics().await.expect("a /metrics answer");
        let names = exported(&text);
        assert!(
            names.contains("process_resident_memory_bytes"),
            "{} does not export its memory",
            s.name
        );
        all.extend(names);
        let kept = metrics_used();
        let kept: Vec<&str> = kept.iter().map(String::as_str).collect();
        let problems = service::ops::lint_exposition(&text, &kept);
        assert!(
            problems.is_empty(),
            "{}'s /metrics fails the lint:\n{}",
            s.name,
            problems.join("\n")
        );
    }
    let missing: Vec<String> = metrics_used()
        .into_iter()
        .filter(|m| !all.contains(m))
        .collect();
    assert!(
        missing.is_empty(),
        "used by the rules or dashboard but exported by no service: {missing:?}"
    );
}
