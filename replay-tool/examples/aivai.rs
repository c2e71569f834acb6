//! Runs one headless AI-vs-AI match in process and prints a line a minute (a
//! development aid): `cargo run --release -p replay-tool --example aivai -- SEED hard easy`.

use std::collections::BTreeMap;
use std::sync::Arc;

use engine::Rules;
use events::{
    Difficulty, GameEvent, MapSpec, MatchCreated, MatchId, PlayerId, PlayerKind, PlayerSlot,
};
use replay_tool::stepper::Stepper;

fn difficulty(s: Option<String>) -> Difficulty {
    s.and_then(|s| s.parse().ok()).unwrap_or(Difficulty::Hard)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let (a, b) = (difficulty(args.next()), difficulty(args.next()));
    let slot = |id: u8, d: Difficulty| PlayerSlot {
        id: PlayerId(id),
        name: format!("{d:?}"),
        kind: PlayerKind::Ai(d),
    };
    let setup = MatchCreated {
        match_id: MatchId::new("aivai").expect("a valid id"),
        seed,
        map: MapSpec { size: 64, seed },
        players: vec![slot(0, a), slot(1, b)],
        tick_hz: 20,
        scenario: events::Scenario::Skirmish,
    };
    let rules = Arc::new(Rules::standard());
    let hz = u64::from(rules.tick_hz);
    let mut s = Stepper::new(rules, &setup).expect("match setup");
    let mut rejected = BTreeMap::<String, u32>::new();
    let mut lost = [0u32; 2];
    let mut income = [0u32; 2];
    for t in 0..30 * 60 * hz {
        let r = s.step();
        for e in &r.committed.events {
            match e {
                GameEvent::CommandRejected { reason, .. } => {
                    *rejected.entry(format!("{reason:?}")).or_default() += 1;
                }
                GameEvent::EntityDestroyed { owner, .. } => lost[usize::from(owner.0 % 2)] += 1,
                GameEvent::HarvesterUnloaded { owner, credits, .. } => {
                    income[usize::from(owner.0 % 2)] += credits
                }
                GameEvent::MatchWon { winner } => {
                    println!("tick {t} ({} s): winner {winner:?}", t / hz);
                    println!("rejected: {rejected:?}");
                    return;
                }
                _ => {}
            }
        }
        if t % (60 * hz) == 0 {
            let mut line = format!("t={}s", t / hz);
            for p in s.stack.eco.players() {
                let i = usize::from(p.id.0 % 2);
                line += &format!(
                    " | P{} credits={} buildings={} army={} harvesters={} queues={:?} lost={} income/min={}",
                    p.id.0,
                    p.credits,
                    p.buildings.len(),
                    s.stack.ais.get(i).map_or(0, |ai| ai.knowledge().army().count()),
                    s.stack.eco.harvesters().count(p.id),
                    p.queues.values().map(|j| j.item).collect::<Vec<_>>(),
                    lost[i],
                    income[i],
                );
            }
            income = [0, 0];
            println!("{line}");
            for ai in &s.stack.ais {
                println!("    P{} {}", ai.player().0, ai.status());
            }
        }
    }
    println!("no winner after 30 minutes; rejected: {rejected:?}");
}
