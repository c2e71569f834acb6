//! `replay-tool state --tick N`: the engine's and the economy's state after a tick,
//! seeking from the nearest recorded state.

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use replay_tool::inspect::{self, Inspection};
use replay_tool::{EconomyRun, EngineRun, Machine, Seeker};
use serde::Serialize;

use super::{hms, load, out, rules, sorted_json, Global, Source};

#[derive(Args)]
pub struct StateArgs {
    #[command(flatten)]
    source: Source,
    #[arg(long)]
    tick: u64,
    /// Only this entity.
    #[arg(long)]
    entity: Option<u32>,
    #[arg(long)]
    json: bool,
}

/// Both services' state after the tick. The JSON is the two inspections; the text is a
/// table per player and per entity (`table`).
#[derive(Serialize)]
pub struct StateReport {
    match_id: String,
    tick: u64,
    engine: Inspection,
    economy: Option<Inspection>,
    #[serde(skip)]
    table: StateTable,
}

/// What the text adds to the inspections.
struct StateTable {
    /// Game time after the tick, in seconds.
    seconds: f64,
    engine_seek_ms: f64,
    economy_seek_ms: f64,
    /// The tick's hash in the log.
    logged_hash: u64,
    /// The economy's re-run and logged hash (no economy step at that tick: none).
    economy_hashes: Option<(u64, u64)>,
    players: Vec<PlayerRow>,
    entities: Vec<EntityRow>,
}

/// One player: name, ledger ("-" without an economy step) and what it owns.
struct PlayerRow {
    id: String,
    name: String,
    credits: String,
    power: String,
    drain: String,
    buildings: usize,
    units: usize,
    defeated: String,
}

/// One entity, as its cells print.
struct EntityRow {
    id: String,
    owner: String,
    kind: &'static str,
    cell: String,
    hp: String,
    order: String,
    dest: String,
    cargo: String,
}

pub async fn run(g: &Global, a: &StateArgs) -> Result<ExitCode> {
    let rec = load(g, &a.source).await?;
    let tick = a.tick;
    let rules = rules(g)?;
    let rec = Arc::new(rec);
    let started = Instant::now();
    let mut engine = Seeker::<EngineRun>::new(rec.clone(), rules.clone())
        .at(tick)
        .context("seeking the engine")?;
    let engine_seek_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    let mut eco = if rec.log.eco(tick).is_some() {
        Some(
            Seeker::<EconomyRun>::new(rec.clone(), rules)
                .at(tick)
                .context("seeking the economy")?,
        )
    } else {
        None
    };
    let economy_seek_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut ei = engine.inspect();
    let ci = eco.as_mut().map(|e| e.inspect());
    if let Some(id) = a.entity {
        ei.parts
            .retain(|p, _| matches!(p, inspect::Part::Entity(u) if u.0 == id));
    }
    let records = Inspection::engine_records(&engine.sim);
    let players = rec
        .log
        .setup
        .players
        .iter()
        .map(|slot| {
            let ledger = eco.as_ref().and_then(|e| e.eco.player(slot.id));
            let own: Vec<_> = records
                .iter()
                .filter(|r| r.ident.owner == slot.id)
                .collect();
            let units = own
                .iter()
                .filter(|r| matches!(r.ident.kind, events::EntityKind::Unit(_)))
                .count();
            PlayerRow {
                id: slot.id.to_string(),
                name: slot.name.clone(),
                credits: ledger.map_or("-".into(), |l| l.credits.to_string()),
                power: ledger.map_or("-".into(), |l| l.power.output.to_string()),
                drain: ledger.map_or("-".into(), |l| l.power.consumption.to_string()),
                buildings: own.len() - units,
                units,
                defeated: ledger.map_or("-".into(), |l| {
                    if l.defeated { "yes" } else { "no" }.to_string()
                }),
            }
        })
        .collect();
    let entities = records
        .iter()
        .filter(|r| a.entity.is_none_or(|id| r.ident.id.0 == id))
        .map(|r| {
            let cell = r.body.pos.cell();
            let (order, dest) = match &r.mobile {
                Some(m) => (
                    format!("{:?}", m.order),
                    m.dest.map_or("-".into(), |d| format!("({},{})", d.x, d.y)),
                ),
                None => ("-".into(), "-".into()),
            };
            EntityRow {
                id: r.ident.id.to_string(),
                owner: r.ident.owner.to_string(),
                kind: inspect::kind_name(r.ident.kind),
                cell: format!("({},{})", cell.x, cell.y),
                hp: format!("{}/{}", r.health.hp, r.health.max),
                order,
                dest,
                cargo: r.harvester.map_or("-".into(), |h| h.cargo().to_string()),
            }
        })
        .collect();
    let report = StateReport {
        match_id: rec.match_id.to_string(),
        tick,
        table: StateTable {
            seconds: (tick + 1) as f64 / f64::from(rec.tick_hz()),
            engine_seek_ms,
            economy_seek_ms,
            logged_hash: rec.log.tick(tick).map_or(0, |t| t.hash),
            economy_hashes: eco
                .as_ref()
                .map(|e| (e.hash(), rec.log.eco(tick).map_or(0, |x| x.hash))),
            players,
            entities,
        },
        engine: ei,
        economy: ci,
    };
    if a.json {
        out(format_args!("{}\n", sorted_json(&report)?))?;
    } else {
        out(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

impl fmt::Display for StateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.table;
        writeln!(
            f,
            "match {}, state after tick {} ({} of game time); seek: engine {:.1} ms, economy {:.1} ms",
            self.match_id,
            self.tick,
            hms(t.seconds),
            t.engine_seek_ms,
            t.economy_seek_ms
        )?;
        writeln!(
            f,
            "engine hash {:016x} (log {:016x}){}",
            self.engine.hash,
            t.logged_hash,
            t.economy_hashes
                .map(|(rerun, logged)| format!(", economy hash {rerun:016x} (log {logged:016x})"))
                .unwrap_or_default()
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<4} {:<12} {:>9} {:>6} {:>6} {:>9} {:>11} {:>9}",
            "", "name", "credits", "power", "drain", "buildings", "units", "defeated"
        )?;
        for p in &t.players {
            writeln!(
                f,
                "{:<4} {:<12} {:>9} {:>6} {:>6} {:>9} {:>11} {:>9}",
                p.id, p.name, p.credits, p.power, p.drain, p.buildings, p.units, p.defeated,
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{:>6} {:<4} {:<18} {:>11} {:>11} {:<24} {:>11} {:>6}",
            "id", "own", "kind", "cell", "hp", "order", "dest", "cargo"
        )?;
        for r in &t.entities {
            writeln!(
                f,
                "{:>6} {:<4} {:<18} {:>11} {:>11} {:<24} {:>11} {:>6}",
                r.id, r.owner, r.kind, r.cell, r.hp, r.order, r.dest, r.cargo
            )?;
        }
        Ok(())
    }
}
