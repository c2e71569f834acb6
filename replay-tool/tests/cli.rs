//! The `replay-tool` binary on real recorded matches: verify (exit codes), state at a
//! tick (table and JSON), stats (CSV and SVG), bench, info, record.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{perturb_cmd, record, temp_path, Options};
use events::Cell;

fn tool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replay-tool"))
        .args(args)
        .output()
        .expect("runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn file(name: &str, rec: &replay_tool::Recording) -> std::path::PathBuf {
    let p = temp_path(name);
    rec.to_file(&p, true).expect("write");
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn verify_exit_codes_and_report() {
    let (rec, script) = record("cli-verify", &Options::default());
    let good = file("good.cnitreplay", &rec);
    let o = tool(&["verify", s(&good)]);
    assert!(o.status.success(), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("all hashes match"), "{out}");
    assert!(out.contains("x real time"), "{out}");

    let &(tick, id, unit, to) = script.moves.iter().find(|m| m.0 == 200).expect("move");
    let bad = perturb_cmd(&rec, id, |c| {
        if let events::Command::MoveUnits(m) = c {
            m.to = Cell::new(to.x + 4, to.y + 4);
        }
    });
    let badf = file("bad.cnitreplay", &bad);
    let o = tool(&["verify", s(&badf)]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("engine diverges at tick {tick}")),
        "{out}"
    );
    assert!(out.contains(&format!("entity {unit} mobile.dest")), "{out}");
    assert!(out.contains(&id.to_string()), "the input is listed: {out}");

    let o = tool(&["verify", s(&badf), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["engine"]["divergence"]["tick"], tick);

    // A deleted command: the tick that applied it is the divergence, in text and JSON.
    let deleted = common::delete_cmd(&rec, id);
    let delf = file("deleted.cnitreplay", &deleted);
    let o = tool(&["verify", s(&delf)]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = stdout(&o);
    assert!(
        out.contains(&format!("engine diverges at tick {tick}")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "missing input: command {id} is not in the cmd stream"
        )),
        "{out}"
    );
    let o = tool(&["verify", s(&delf), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["engine"]["divergence"]["tick"], tick);
    assert_eq!(v["engine"]["divergence"]["kind"], "missing_input");
    std::fs::remove_file(delf).ok();

    let o = tool(&["verify", "/nonexistent/file"]);
    assert_eq!(o.status.code(), Some(2));
    for p in [good, badf] {
        std::fs::remove_file(p).ok();
    }
}

#[test]
fn state_at_a_tick_as_table_and_json() {
    let (rec, script) = record("cli-state", &Options::default());
    let f = file("state.cnitreplay", &rec);
    let o = tool(&["state", s(&f), "--tick", "210"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = stdout(&o);
    assert!(out.contains("state after tick 210"), "{out}");
    assert!(out.contains("construction_yard"), "{out}");
    assert!(out.contains("scripted"), "{out}");

    let o = tool(&["state", s(&f), "--tick", "210", "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["tick"], 210);
    assert_eq!(v["engine"]["tick"], 210);
    assert_eq!(v["engine"]["hash"], rec.log.tick(210).expect("tick").hash);
    let unit = script.units[0];
    let e = &v["engine"]["parts"][format!("entity {unit}")];
    assert!(e["mobile"].is_object(), "{e}");
    assert_eq!(v["economy"]["parts"]["player P0"]["kind"], "human");

    let o = tool(&["state", s(&f), "--tick", "999999"]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_file(f).ok();
}

#[test]
fn stats_csv_and_svg() {
    let (rec, script) = record(
        "cli-stats",
        &Options {
            ticks: 2600,
            snapshot_every: 200,
            ..Options::default()
        },
    );
    let f = file("stats.cnitreplay", &rec);
    let csv = temp_path("stats.csv");
    let svg = temp_path("stats.svg");
    let o = tool(&["stats", s(&f), "--csv", s(&csv), "--svg", s(&svg)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&csv).expect("csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(replay_tool::stats::CSV_HEADER));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // 2600 ticks at 20 Hz: minutes 0, 1 and 2, two players each.
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r.len() == 12));
    let p0_actions: u64 = rows
        .iter()
        .filter(|r| r[1] == "0")
        .map(|r| r[11].parse::<u64>().expect("number"))
        .sum();
    assert_eq!(
        p0_actions,
        script.moves.len() as u64 + script.production.len() as u64
    );
    let p1_actions: u64 = rows
        .iter()
        .filter(|r| r[1] == "1")
        .map(|r| r[11].parse::<u64>().expect("number"))
        .sum();
    assert!(p1_actions > 0, "the AI acts");
    let spent: u64 = rows
        .iter()
        .map(|r| r[4].parse::<u64>().expect("number"))
        .sum();
    assert!(spent > 0, "production was paid for");
    let chart = std::fs::read_to_string(&svg).expect("svg");
    assert!(chart.starts_with("<svg"));
    assert_eq!(chart.matches("<polyline").count(), 4);
    for p in [f, csv, svg] {
        std::fs::remove_file(p).ok();
    }
}

#[test]
fn record_info_bench_seek() {
    let out = temp_path("aivai.cnitreplay");
    let o = tool(&["record", "-o", s(&out), "--minutes", "1", "--seed", "3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = tool(&["info", s(&out)]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["format"], replay_tool::file::FORMAT_VERSION);
    assert_eq!(v["ticks"], 1200);
    let o = tool(&["bench", s(&out)]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(text.contains("p99") && text.contains("real time"), "{text}");
    let o = tool(&["seek", s(&out), "--interval", "100"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("indexed seek to the end"));
    let o = tool(&["verify", s(&out)]);
    assert!(o.status.success(), "{}", stdout(&o));
    std::fs::remove_file(out).ok();
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1_match.cnitreplay");
    // `replay-tool info … | head -0`: the pipe's reader is gone before the tool starts.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let o = Command::new(env!("CARGO_BIN_EXE_replay-tool"))
        .args(["info", s(&fixture)])
        .stdout(writer)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(141), "{:?}: {err}", o.status);
    assert!(err.is_empty(), "quiet: {err}");
}
