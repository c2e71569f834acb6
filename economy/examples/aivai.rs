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
    for t in 0..max {
        let r = s.step();
        for e in &r.committed.events {
            match e {
                GameEvent::CommandRejected { reason, .. } => {
                    *rejected.entry(format!("{reason:?}")).or_default() += 1;
                }
                GameEvent::EntityDestroyed { owner, .. } => kills[usize::from(owner.0 % 2)] += 1,
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
            println!("{line}");
        }
    }
    println!("no winner; rejected: {rejected:?}");
}
