//! Match statistics from the log alone (no re-run): per player and minute of game time,
//! credits harvested, gained and spent, units and buildings built and lost, kills, and
//! actions; as CSV and as a hand-written SVG chart.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use events::{EntityKind, GameEvent, LedgerEvent, PlayerId, Source};
use serde::Serialize;

use crate::recording::Recording;

/// One player's minute.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Minute {
    pub minute: u32,
    pub player: u8,
    /// Credits delivered by harvesters (`HarvesterUnloaded`).
    pub harvested: u64,
    /// Sum of the ledger's positive credit changes (harvest, refunds, sales).
    pub gained: u64,
    /// Sum of the ledger's negative credit changes (production).
    pub spent: u64,
    /// Balance at the end of the minute.
    pub balance: i64,
    pub units_built: u32,
    pub units_lost: u32,
    pub buildings_built: u32,
    pub buildings_lost: u32,
    pub kills: u32,
    /// Commands sent by the player (or its bot) that a service consumed.
    pub actions: u32,
}

/// Totals of one player.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PlayerTotals {
    pub player: u8,
    pub name: String,
    pub harvested: u64,
    pub spent: u64,
    pub units_built: u32,
    pub units_lost: u32,
    pub buildings_built: u32,
    pub buildings_lost: u32,
    pub kills: u32,
    pub actions: u32,
    /// Actions per minute of game time.
    pub apm: f64,
}

/// The statistics of a match.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    pub match_id: String,
    pub tick_hz: u32,
    pub ticks: u64,
    pub minutes: u32,
    pub players: Vec<PlayerTotals>,
    /// Per player and minute, minute-major.
    pub rows: Vec<Minute>,
}

/// Computes the statistics of a recording.
pub fn stats(rec: &Recording) -> Stats {
    let log = &rec.log;
    let hz = u64::from(rec.tick_hz());
    let per_min = hz * 60;
    let minute_of = |t: u64| u32::try_from(t / per_min).unwrap_or(u32::MAX);
    // Rows from the minute of the first tick held (a battle's log starts after its base
    // state), so their number follows the ticks the log holds.
    let first_minute = minute_of(log.first_tick);
    let last_minute = log.last_tick().map_or(first_minute, minute_of);
    let players: Vec<PlayerId> = log.setup.players.iter().map(|p| p.id).collect();
    let mut rows: BTreeMap<(u32, PlayerId), Minute> = BTreeMap::new();
    for m in first_minute..=last_minute {
        for &p in &players {
            rows.insert(
                (m, p),
                Minute {
                    minute: m,
                    player: p.0,
                    ..Minute::default()
                },
            );
        }
    }
    let actor = |s: Source| match s {
        Source::Player(p) | Source::Bot(p) => Some(p),
        Source::Economy | Source::System => None,
    };

    for tick in &log.ticks {
        let t = tick.tick;
        for a in &tick.applied {
            if let Some(p) = log.cmd(&a.stream_id).ok().and_then(|e| actor(e.source)) {
                if let Some(r) = rows.get_mut(&(minute_of(t), p)) {
                    r.actions += 1;
                }
            }
        }
        for e in &tick.events {
            match e {
                // Start units and buildings are not "built".
                GameEvent::UnitSpawned { owner, .. } if t > 0 => {
                    if let Some(r) = rows.get_mut(&(minute_of(t), *owner)) {
                        r.units_built += 1;
                    }
                }
                GameEvent::BuildingPlaced { owner, request, .. } if *request != 0 => {
                    if let Some(r) = rows.get_mut(&(minute_of(t), *owner)) {
                        r.buildings_built += 1;
                    }
                }
                GameEvent::EntityDestroyed {
                    owner, kind, by, ..
                } => {
                    if let Some(r) = rows.get_mut(&(minute_of(t), *owner)) {
                        match kind {
                            EntityKind::Unit(_) => r.units_lost += 1,
                            EntityKind::Building(_) => r.buildings_lost += 1,
                        }
                    }
                    if let Some(k) = by.filter(|k| k != owner) {
                        if let Some(r) = rows.get_mut(&(minute_of(t), k)) {
                            r.kills += 1;
                        }
                    }
                }
                GameEvent::HarvesterUnloaded { owner, credits, .. } => {
                    if let Some(r) = rows.get_mut(&(minute_of(t), *owner)) {
                        r.harvested += u64::from(*credits);
                    }
                }
                _ => {}
            }
        }
    }
    for step in &log.ecos {
        let t = step.tick;
        for id in step.consumed.iter().skip(1) {
            if let Some(p) = log.cmd(id).ok().and_then(|e| actor(e.source)) {
                if let Some(r) = rows.get_mut(&(minute_of(t), p)) {
                    r.actions += 1;
                }
            }
        }
        for e in &step.events {
            if let LedgerEvent::CreditsChanged {
                player,
                delta,
                balance,
            } = e
            {
                if let Some(r) = rows.get_mut(&(minute_of(t), *player)) {
                    if *delta >= 0 {
                        r.gained += delta.unsigned_abs();
                    } else {
                        r.spent += delta.unsigned_abs();
                    }
                    r.balance = *balance;
                }
            }
        }
    }
    // A minute without credit changes keeps the previous minute's balance.
    let starting = i64::from(engine::Rules::standard().economy.starting_credits);
    for &p in &players {
        let mut bal = starting;
        for m in first_minute..=last_minute {
            if let Some(r) = rows.get_mut(&(m, p)) {
                let changed = r.gained > 0 || r.spent > 0;
                if changed {
                    bal = r.balance;
                } else {
                    r.balance = bal;
                }
            }
        }
    }

    let minutes_played = (log.ticks.len() as f64 / per_min as f64).max(1.0 / 60.0);
    let totals = log
        .setup
        .players
        .iter()
        .map(|slot| {
            let mut t = PlayerTotals {
                player: slot.id.0,
                name: slot.name.clone(),
                ..PlayerTotals::default()
            };
            for r in rows.values().filter(|r| r.player == slot.id.0) {
                t.harvested += r.harvested;
                t.spent += r.spent;
                t.units_built += r.units_built;
                t.units_lost += r.units_lost;
                t.buildings_built += r.buildings_built;
                t.buildings_lost += r.buildings_lost;
                t.kills += r.kills;
                t.actions += r.actions;
            }
            t.apm = f64::from(t.actions) / minutes_played;
            t
        })
        .collect();
    let mut rows: Vec<Minute> = rows.into_values().collect();
    rows.sort_by_key(|r| (r.minute, r.player));
    Stats {
        match_id: rec.match_id.to_string(),
        tick_hz: rec.tick_hz(),
        ticks: log.ticks.len() as u64,
        minutes: last_minute.saturating_add(1),
        players: totals,
        rows,
    }
}

/// The CSV header of [`to_csv`].
pub const CSV_HEADER: &str = "minute,player,harvested,gained,spent,balance,units_built,units_lost,buildings_built,buildings_lost,kills,actions";

/// One line per player and minute.
pub fn to_csv(s: &Stats) -> String {
    let mut out = String::with_capacity(64 * (s.rows.len() + 1));
    out.push_str(CSV_HEADER);
    out.push('\n');
    for r in &s.rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            r.minute,
            r.player,
            r.harvested,
            r.gained,
            r.spent,
            r.balance,
            r.units_built,
            r.units_lost,
            r.buildings_built,
            r.buildings_lost,
            r.kills,
            r.actions
        );
    }
    out
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One panel: a polyline per series over the minutes.
fn panel(out: &mut String, top: f64, title: &str, series: &[(String, &str, Vec<f64>)]) {
    let (left, width, height) = (70.0, 660.0, 220.0);
    let n = series.iter().map(|s| s.2.len()).max().unwrap_or(0).max(2);
    let max = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0);
    let x = |i: usize| left + width * i as f64 / (n - 1) as f64;
    let y = |v: f64| top + height - height * v / max;
    let _ = writeln!(
        out,
        r#"<text x="{left}" y="{}" font-size="14" font-weight="bold">{}</text>"#,
        top - 8.0,
        esc(title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#999"/>"##
    );
    for k in 0..=4 {
        let v = max * f64::from(k) / 4.0;
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#eee"/><text x="{2}" y="{3:.1}" font-size="10" text-anchor="end">{4:.0}</text>"##,
            y(v),
            left + width,
            left - 4.0,
            y(v) + 3.0,
            v
        );
    }
    let step = (n / 10).max(1);
    for i in (0..n).step_by(step) {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{i}</text>"#,
            x(i),
            top + height + 14.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-size="10" text-anchor="middle">minute</text>"#,
        left + width / 2.0,
        top + height + 28.0
    );
    for (name, color, values) in series {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            points.join(" "),
            esc(name)
        );
    }
}

/// A two-panel chart: credits harvested per minute, and balance, per player.
pub fn to_svg(s: &Stats) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="800" height="640" viewBox="0 0 800 640" font-family="sans-serif">"#
    );
    let _ = writeln!(out, r#"<rect width="800" height="640" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="70" y="24" font-size="16">Match {} ({} min)</text>"#,
        esc(&s.match_id),
        s.minutes
    );
    let series = |f: &dyn Fn(&Minute) -> f64| -> Vec<(String, &'static str, Vec<f64>)> {
        s.players
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let values = s
                    .rows
                    .iter()
                    .filter(|r| r.player == p.player)
                    .map(f)
                    .collect();
                (
                    format!("P{} {}", p.player, p.name),
                    COLORS[k % COLORS.len()],
                    values,
                )
            })
            .collect()
    };
    panel(
        &mut out,
        60.0,
        "Credits harvested per minute",
        &series(&|r| r.harvested as f64),
    );
    panel(
        &mut out,
        360.0,
        "Credit balance",
        &series(&|r| r.balance.max(0) as f64),
    );
    for (k, p) in s.players.iter().enumerate() {
        let yy = 40.0 + 16.0 * k as f64;
        let _ = writeln!(
            out,
            r#"<rect x="600" y="{:.0}" width="12" height="4" fill="{}"/><text x="618" y="{:.0}" font-size="11">P{} {} ({:.0} APM)</text>"#,
            yy - 4.0,
            COLORS[k % COLORS.len()],
            yy,
            p.player,
            esc(&p.name),
            p.apm
        );
    }
    out.push_str("</svg>\n");
    out
}
