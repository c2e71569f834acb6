//! Match statistics from the log alone (no re-run): per player and minute of game time,
//! credits harvested, gained and spent, units and buildings built and lost, kills, and
//! actions; as CSV and as a hand-written SVG chart. The gateway's score screen and its
//! spectators' per-player panel read the same events through [`counts_of`] and [`Tally`],
//! so every figure has one definition.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use engine::Rules;
use events::{EntityKind, EntityView, GameEvent, LedgerEvent, PlayerId, Source, UnitKind};
use serde::Serialize;

use crate::recording::{Log, Recording};

/// What one engine event counts for in a player's statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    UnitBuilt,
    UnitLost,
    BuildingBuilt,
    BuildingLost,
    /// An enemy unit or building destroyed.
    Kill,
    /// Credits a harvester delivered.
    Harvested(u32),
}

/// The one reading of an engine event of tick `tick` as statistics: the (player, count)
/// pairs it adds. Start units (tick 0) and start buildings (no placement request) are not
/// "built"; a kill goes to the destroyer unless it destroyed its own.
pub fn counts_of(tick: u64, e: &GameEvent) -> [Option<(PlayerId, Count)>; 2] {
    match e {
        GameEvent::UnitSpawned { owner, .. } if tick > 0 => {
            [Some((*owner, Count::UnitBuilt)), None]
        }
        GameEvent::BuildingPlaced { owner, request, .. } if *request != 0 => {
            [Some((*owner, Count::BuildingBuilt)), None]
        }
        GameEvent::EntityDestroyed {
            owner, kind, by, ..
        } => {
            let lost = match kind {
                EntityKind::Unit(_) => Count::UnitLost,
                EntityKind::Building(_) => Count::BuildingLost,
            };
            let kill = by.filter(|k| k != owner).map(|k| (k, Count::Kill));
            [Some((*owner, lost)), kill]
        }
        GameEvent::HarvesterUnloaded { owner, credits, .. } => {
            [Some((*owner, Count::Harvested(*credits))), None]
        }
        _ => [None, None],
    }
}

/// The engine-event counters of one player (over a minute, a match, or so far).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Credits delivered by harvesters (`HarvesterUnloaded`).
    pub harvested: u64,
    pub units_built: u32,
    pub units_lost: u32,
    pub buildings_built: u32,
    pub buildings_lost: u32,
    /// Enemy units and buildings destroyed.
    pub kills: u32,
}

impl Counts {
    pub fn add(&mut self, c: Count) {
        match c {
            Count::UnitBuilt => self.units_built += 1,
            Count::UnitLost => self.units_lost += 1,
            Count::BuildingBuilt => self.buildings_built += 1,
            Count::BuildingLost => self.buildings_lost += 1,
            Count::Kill => self.kills += 1,
            Count::Harvested(n) => self.harvested += u64::from(n),
        }
    }

    pub fn merge(&mut self, o: &Counts) {
        self.harvested += o.harvested;
        self.units_built += o.units_built;
        self.units_lost += o.units_lost;
        self.buildings_built += o.buildings_built;
        self.buildings_lost += o.buildings_lost;
        self.kills += o.kills;
    }
}

/// The player that sent a command (human or bot), if any.
fn actor(s: Source) -> Option<PlayerId> {
    match s {
        Source::Player(p) | Source::Bot(p) => Some(p),
        Source::Economy | Source::System => None,
    }
}

/// One player's minute.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Minute {
    pub minute: u32,
    pub player: u8,
    #[serde(flatten)]
    pub counts: Counts,
    /// Sum of the ledger's positive credit changes (harvest, refunds, sales).
    pub gained: u64,
    /// Sum of the ledger's negative credit changes (production).
    pub spent: u64,
    /// Balance at the end of the minute.
    pub balance: i64,
    /// Commands sent by the player (or its bot) that a service consumed.
    pub actions: u32,
}

/// Totals of one player.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PlayerTotals {
    pub player: u8,
    pub name: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub spent: u64,
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
            for (p, c) in counts_of(t, e).into_iter().flatten() {
                if let Some(r) = rows.get_mut(&(minute_of(t), p)) {
                    r.counts.add(c);
                }
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
                t.counts.merge(&r.counts);
                t.spent += r.spent;
                t.actions += r.actions;
            }
            t.apm = apm(t.actions, minutes_played);
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

/// Actions per minute, to one decimal (so every reader shows the same figure).
fn apm(actions: u32, minutes: f64) -> f64 {
    (f64::from(actions) / minutes * 10.0).round() / 10.0
}

/// One player's standing so far in a match: the ledger's credits and power, and the
/// engine-event counters of [`counts_of`] (what a spectator's panel shows).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Standing {
    pub player: u8,
    pub credits: i64,
    pub power_output: i32,
    pub power_consumption: i32,
    #[serde(flatten)]
    pub counts: Counts,
}

/// A running fold of a match's tick and economy events into each player's [`Standing`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    players: BTreeMap<PlayerId, Standing>,
}

impl Tally {
    /// Every player starts with `starting_credits` and no power.
    pub fn new(players: impl IntoIterator<Item = PlayerId>, starting_credits: i64) -> Self {
        Self {
            players: players
                .into_iter()
                .map(|p| {
                    let s = Standing {
                        player: p.0,
                        credits: starting_credits,
                        ..Standing::default()
                    };
                    (p, s)
                })
                .collect(),
        }
    }

    /// Folds the events of engine tick `tick`.
    pub fn game_events(&mut self, tick: u64, events: &[GameEvent]) {
        for e in events {
            for (p, c) in counts_of(tick, e).into_iter().flatten() {
                if let Some(s) = self.players.get_mut(&p) {
                    s.counts.add(c);
                }
            }
        }
    }

    /// Folds the events of one economy step.
    pub fn ledger_events(&mut self, events: &[LedgerEvent]) {
        for e in events {
            match e {
                LedgerEvent::CreditsChanged {
                    player, balance, ..
                } => {
                    if let Some(s) = self.players.get_mut(player) {
                        s.credits = *balance;
                    }
                }
                LedgerEvent::PowerChanged {
                    player,
                    output,
                    consumption,
                    ..
                } => {
                    if let Some(s) = self.players.get_mut(player) {
                        s.power_output = *output;
                        s.power_consumption = *consumption;
                    }
                }
                _ => {}
            }
        }
    }

    /// Every player's standing, by player id.
    pub fn standings(&self) -> impl Iterator<Item = &Standing> {
        self.players.values()
    }
}

/// A [`Tally`] of a recorded log up to a tick, advanced as a replay plays (and started
/// over when it seeks back).
#[derive(Clone, Debug)]
pub struct LogTally {
    tally: Tally,
    /// Index of the next tick entry and economy step to fold.
    next_tick: usize,
    next_eco: usize,
    /// Folded up to this tick (inclusive).
    at: Option<u64>,
}

impl LogTally {
    pub fn new(log: &Log) -> Self {
        let starting = i64::from(engine::Rules::standard().economy.starting_credits);
        Self {
            tally: Tally::new(log.setup.players.iter().map(|p| p.id), starting),
            next_tick: 0,
            next_eco: 0,
            at: None,
        }
    }

    /// Folds the log's ticks and economy steps up to `tick` (inclusive).
    pub fn advance_to(&mut self, log: &Log, tick: u64) -> &Tally {
        if self.at.is_some_and(|a| a > tick) {
            *self = Self::new(log);
        }
        while let Some(t) = log.ticks.get(self.next_tick).filter(|t| t.tick <= tick) {
            self.tally.game_events(t.tick, &t.events);
            self.next_tick += 1;
        }
        while let Some(s) = log.ecos.get(self.next_eco).filter(|s| s.tick <= tick) {
            self.tally.ledger_events(&s.events);
            self.next_eco += 1;
        }
        self.at = Some(tick);
        &self.tally
    }
}

/// The army value of each player: the cost of its live units, harvesters excluded.
pub fn army_values<'a>(
    rules: &Rules,
    entities: impl IntoIterator<Item = &'a EntityView>,
) -> BTreeMap<PlayerId, u64> {
    let mut out = BTreeMap::new();
    for e in entities {
        if let EntityKind::Unit(k) = e.kind {
            if k != UnitKind::Harvester {
                *out.entry(e.owner).or_insert(0) += u64::from(rules.unit(k).cost);
            }
        }
    }
    out
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
            r.counts.harvested,
            r.gained,
            r.spent,
            r.balance,
            r.counts.units_built,
            r.counts.units_lost,
            r.counts.buildings_built,
            r.counts.buildings_lost,
            r.counts.kills,
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
        &series(&|r| r.counts.harvested as f64),
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
