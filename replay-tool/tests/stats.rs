//! `replay-tool stats` on a recorded AI-vs-AI match: every per-player figure it prints
//! (text and `--json`) equals the count made here directly from the log's events, and so
//! do the running standings replays show (`LogTally`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command as Process;

use events::{Difficulty, EntityKind, GameEvent, LedgerEvent, PlayerId, Source};
use replay_tool::progress::NoProgress;
use replay_tool::record::{ai_vs_ai, RecordConfig, Recorder};
use replay_tool::stats::{LogTally, Standing};
use replay_tool::Recording;
use serde_json::Value;

/// A player's figures, counted from the log by hand.
#[derive(Debug, Default, PartialEq)]
struct Hand {
    units_built: u64,
    units_lost: u64,
    buildings_built: u64,
    buildings_lost: u64,
    kills: u64,
    harvested: u64,
    actions: u64,
}

fn hand_count(rec: &Recording) -> BTreeMap<u8, Hand> {
    let log = &rec.log;
    let mut out: BTreeMap<u8, Hand> = log
        .setup
        .players
        .iter()
        .map(|p| (p.id.0, Hand::default()))
        .collect();
    let sender = |id: &str| -> Option<u8> {
        match log.cmd(id).ok()?.source {
            Source::Player(PlayerId(p)) | Source::Bot(PlayerId(p)) => Some(p),
            _ => None,
        }
    };
    for t in &log.ticks {
        for a in &t.applied {
            if let Some(p) = sender(&a.stream_id) {
                out.get_mut(&p).unwrap().actions += 1;
            }
        }
        for e in &t.events {
            match e {
                GameEvent::UnitSpawned { owner, .. } if t.tick != 0 => {
                    out.get_mut(&owner.0).unwrap().units_built += 1
                }
                GameEvent::BuildingPlaced { owner, request, .. } if *request > 0 => {
                    out.get_mut(&owner.0).unwrap().buildings_built += 1
                }
                GameEvent::EntityDestroyed {
                    owner, kind, by, ..
                } => {
                    let h = out.get_mut(&owner.0).unwrap();
                    if matches!(kind, EntityKind::Unit(_)) {
                        h.units_lost += 1;
                    } else {
                        h.buildings_lost += 1;
                    }
                    if let Some(k) = by {
                        if k != owner {
                            out.get_mut(&k.0).unwrap().kills += 1;
                        }
                    }
                }
                GameEvent::HarvesterUnloaded { owner, credits, .. } => {
                    out.get_mut(&owner.0).unwrap().harvested += u64::from(*credits)
                }
                _ => {}
            }
        }
    }
    for s in &log.ecos {
        for id in s.consumed.iter().skip(1) {
            if let Some(p) = sender(id) {
                out.get_mut(&p).unwrap().actions += 1;
            }
        }
    }
    out
}

fn tool(args: &[&str]) -> std::process::Output {
    Process::new(env!("CARGO_BIN_EXE_replay-tool"))
        .args(args)
        .output()
        .expect("run replay-tool")
}

#[test]
fn stats_figures_are_the_log_counted_by_hand() {
    let setup = ai_vs_ai("stats-hand", 3, 32, Difficulty::Hard).expect("setup");
    let mut r = Recorder::new(
        std::sync::Arc::new(engine::Rules::standard()),
        &setup,
        RecordConfig::default(),
    )
    .expect("recorder");
    // Five minutes of game time: both bases build, harvest and fight.
    r.run(6_000, &NoProgress).expect("run");
    let rec = r.finish().expect("recording");
    let hand = hand_count(&rec);
    let total_kills: u64 = hand.values().map(|h| h.kills).sum();
    assert!(total_kills > 0, "the match saw fighting: {hand:?}");
    assert!(hand.values().all(|h| h.harvested > 0 && h.units_built > 0));

    let path: PathBuf = std::env::temp_dir().join(format!(
        "stats-hand-{}.cnitreplay",
        uuid::Uuid::now_v7().simple()
    ));
    rec.to_file(&path, true).expect("write replay");
    let p = path.to_str().expect("utf-8 path");

    let o = tool(&["stats", p, "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    let minutes = rec.log.ticks.len() as f64 / (20.0 * 60.0);
    let players = v["players"].as_array().expect("players");
    assert_eq!(players.len(), 2);
    for pl in players {
        let id = pl["player"].as_u64().unwrap() as u8;
        let h = &hand[&id];
        let got = Hand {
            units_built: pl["units_built"].as_u64().unwrap(),
            units_lost: pl["units_lost"].as_u64().unwrap(),
            buildings_built: pl["buildings_built"].as_u64().unwrap(),
            buildings_lost: pl["buildings_lost"].as_u64().unwrap(),
            kills: pl["kills"].as_u64().unwrap(),
            harvested: pl["harvested"].as_u64().unwrap(),
            actions: pl["actions"].as_u64().unwrap(),
        };
        assert_eq!(&got, h, "player {id}");
        let apm = pl["apm"].as_f64().unwrap();
        assert!(
            (apm - h.actions as f64 / minutes).abs() <= 0.05,
            "player {id}: APM {apm} for {} actions in {minutes} min",
            h.actions
        );
    }

    // The text form prints the same figures, one line per player.
    let o = tool(&["stats", p]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    for (id, h) in &hand {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("P{id} ")))
            .unwrap_or_else(|| panic!("no line for P{id} in {text}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        // P, name, harvested, spent, built, lost, b.blt, b.lost, kills, actions, APM
        let nums: Vec<u64> = [2, 4, 5, 6, 7, 8, 9]
            .iter()
            .map(|&i| cols[i].parse().expect("number"))
            .collect();
        assert_eq!(
            nums,
            vec![
                h.harvested,
                h.units_built,
                h.units_lost,
                h.buildings_built,
                h.buildings_lost,
                h.kills,
                h.actions
            ],
            "{line}"
        );
    }
    std::fs::remove_file(path).ok();

    // The running tally a replay viewer's standings come from ends on the same counts,
    // and on each player's last logged balance, also after seeking back and forth.
    let last = rec.log.last_tick().expect("ticks");
    let mut lt = LogTally::new(&rec.log);
    let whole: Vec<Standing> = lt.advance_to(&rec.log, last).standings().cloned().collect();
    lt.advance_to(&rec.log, last / 2);
    let again: Vec<Standing> = lt.advance_to(&rec.log, last).standings().cloned().collect();
    assert_eq!(whole, again);
    for st in &whole {
        let h = &hand[&st.player];
        assert_eq!(
            (
                u64::from(st.counts.units_built),
                u64::from(st.counts.units_lost),
                u64::from(st.counts.kills),
                st.counts.harvested
            ),
            (h.units_built, h.units_lost, h.kills, h.harvested),
            "player {}",
            st.player
        );
        let balance = rec
            .log
            .ecos
            .iter()
            .flat_map(|e| &e.events)
            .filter_map(|e| match e {
                LedgerEvent::CreditsChanged {
                    player, balance, ..
                } if player.0 == st.player => Some(*balance),
                _ => None,
            })
            .next_back()
            .expect("credits changed");
        assert_eq!(st.credits, balance);
    }
}
