//! Runs one headless AI-vs-AI match and prints how it went (a development aid).

use std::sync::Arc;

use economy::stepper::Stepper;
use engine::Rules;
use events::{
    Difficulty, GameEvent, MapSpec, MatchCreated, MatchId, PlayerId, PlayerKind, PlayerSlot,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let d = |s: Option<String>| match s.as_deref() {
        Some("easy") => Difficulty::Easy,
        Some("normal") => Difficulty::Normal,
        _ => Difficulty::Hard,
    };
    let a = d(args.next());
    let b = d(args.next());
    let setup = MatchCreated {
        match_id: MatchId::new("aivai").expect("valid"),
        seed,
        map: MapSpec { size: 64, seed },
        players: vec![
            PlayerSlot {
                id: PlayerId(0),
                name: "a".into(),
                kind: PlayerKind::Ai(a),
            },
            PlayerSlot {
                id: PlayerId(1),
                name: "b".into(),
                kind: PlayerKind::Ai(b),
            },
        ],
        tick_hz: 20,
    };
    let mut s = Stepper::new(Arc::new(Rules::standard()), &setup).expect("setup");
    let max = 30 * 60 * 20;
    let mut rejected = std::collections::BTreeMap::<String, u32>::new();
    let mut kills = [0u32; 2];
    let mut income = [0u32; 2];
    let mut last_pos = std::collections::BTreeMap::new();
    for t in 0..max {
        let r = s.step();
        for e in &r.committed.events {
            match e {
                GameEvent::CommandRejected { reason, .. } => {
                    *rejected.entry(format!("{reason:?}")).or_default() += 1;
                }
                GameEvent::EntityDestroyed { owner, .. } => kills[usize::from(owner.0 % 2)] += 1,
                GameEvent::HarvesterUnloaded { owner, credits, .. } => {
                    income[usize::from(owner.0 % 2)] += credits
                }
                _ => {}
            }
        }
        for e in &r.committed.events {
            if let GameEvent::MatchWon { winner } = e {
                println!("tick {t} ({} s): winner {winner:?}", t / 20);
                println!("rejected: {rejected:?}");
                return;
            }
        }
        if let Ok(spec) = std::env::var("TRACE") {
            let mut it = spec.split(',').filter_map(|x| x.parse::<u64>().ok());
            let (uid, from) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
            if t >= from && t < from + 30 {
                let st = s.sim.state_mut();
                if let Some(ent) = st.entity(events::UnitId(uid as u32)) {
                    let mut q = st.world.query_one::<(
                        &engine::sim::state::Body,
                        &engine::sim::state::Mobile,
                        &engine::sim::state::Harvester,
                    )>(ent);
                    if let Ok((b, m, hv)) = q.get() {
                        println!(
                            "T{t} pos {:?} step {} next {:?} dest {:?} job {:?} path {:?}",
                            b.pos,
                            m.step,
                            m.path.get(m.step as usize),
                            m.dest,
                            hv.job,
                            m.path
                        );
                    }
                }
            }
        }
        if t % 100 == 0 {
            let st = s.sim.state_mut();
            let mut now = std::collections::BTreeMap::new();
            for (id, e) in st.index.clone() {
                let mut q = st
                    .world
                    .query_one::<(&engine::sim::state::Body, &engine::sim::state::Mobile)>(e);
                if let Ok((b, m)) = q.get() {
                    if m.dest.is_some() {
                        now.insert(id, b.pos);
                    }
                }
            }
            let frozen: Vec<_> = now
                .iter()
                .filter(|(id, p)| last_pos.get(*id) == Some(*p))
                .map(|(id, p)| (*id, p.cell()))
                .collect();
            if !frozen.is_empty() && std::env::var("FROZEN").is_ok() {
                println!("  t={} frozen with a destination: {frozen:?}", t / 20);
            }
            last_pos = now;
        }
        if t % 1200 == 0 {
            let mut line = format!("t={}s", t / 20);
            for p in s.eco.players() {
                let units = s.ais[usize::from(p.id.0)].knowledge().army().count();
                let harv = s.eco.harvesters().count(p.id);
                line += &format!(
                    " | P{} cr={} bld={} army={} harv={} q={:?} lost={}",
                    p.id.0,
                    p.credits,
                    p.buildings.len(),
                    units,
                    harv,
                    p.queues.values().map(|j| j.item).collect::<Vec<_>>(),
                    kills[usize::from(p.id.0)]
                );
            }
            println!("{line} income={income:?}");
            income = [0, 0];
            for ai in &s.ais {
                println!("    P{} {}", ai.player().0, ai.status());
            }
            for (id, h) in &s.eco.harvesters().units {
                let e = s.sim.entity(*id);
                let st = s.sim.state_mut();
                if let Some(ent) = st.entity(*id) {
                    let mut q = st
                        .world
                        .query_one::<(&engine::sim::state::Mobile, &engine::sim::state::Harvester)>(
                            ent,
                        );
                    if let Ok((m, hv)) = q.get() {
                        println!(
                            "      engine: job {:?} order {:?} dest {:?} stuck {} waiting {} path {} step {} next {:?} first {:?}",
                            hv.job, m.order, m.dest, m.stuck, m.waiting, m.path.len(), m.step, m.path.get(m.step as usize), m.path.first()
                        );
                    }
                }
                println!(
                    "    harvester {id} P{} idle-at {:?} {:?} now {:?} cargo {:?}",
                    h.owner.0,
                    h.at,
                    h.task,
                    e.as_ref().map(|e| e.pos.cell()),
                    e.as_ref().map(|e| e.cargo)
                );
            }
            if std::env::var("GRID").is_ok() {
                let st = s.sim.state_mut();
                let hs: Vec<events::Cell> = st
                    .records()
                    .iter()
                    .filter(|r| matches!(r.ident.kind, events::EntityKind::Unit(_)))
                    .map(|r| r.body.pos.cell())
                    .collect();
                for y in 2..24u16 {
                    let mut row = String::new();
                    for x in 36..64u16 {
                        let c = events::Cell::new(x, y);
                        let i = st.map.index(c);
                        let ch = if hs.contains(&c) {
                            'u'
                        } else if st.blocked[i] != 0 {
                            '#'
                        } else if !st.map.is_passable(c) {
                            'X'
                        } else if st.map.bails(c) > 0 {
                            '~'
                        } else {
                            '.'
                        };
                        row.push(ch);
                    }
                    println!("      {y:2} {row}");
                }
            }
            for ai in &s.ais {
                let army: Vec<_> = ai.knowledge().army().map(|(_, a)| a.pos.cell()).collect();
                let n = army.len().max(1) as u32;
                let cx = army.iter().map(|c| u32::from(c.x)).sum::<u32>() / n;
                let cy = army.iter().map(|c| u32::from(c.y)).sum::<u32>() / n;
                println!(
                    "    P{} army centre ({cx},{cy}) starts {:?}",
                    ai.player().0,
                    s.map.starts
                );
            }
        }
    }
    println!("no winner; rejected: {rejected:?}");
    for p in s.eco.players() {
        println!("P{} buildings {:?}", p.id.0, p.buildings);
    }
}
