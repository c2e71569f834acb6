//! The difficulty ladder, played out: hard against normal and normal against easy over ten
//! seeds each, and how soon a hard AI first meets a player who sits in their base. Every
//! match is a real in-process match (engine `Sim` + `Economy` + AIs, the services' wiring
//! without the bus), capped at thirty game minutes; a match that reaches the cap counts
//! as no win for either side.
//!
//! The thirty matches run on two threads; `cargo test --release -p replay-tool --test
//! ai_ladder -- --nocapture` prints the tables recorded in docs/ai.md.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use engine::Rules;
use events::{
    Difficulty, GameEvent, MapSpec, MatchCreated, MatchId, PlayerId, PlayerKind, PlayerSlot,
};
use replay_tool::stepper::Stepper;

/// Seeds per pairing.
const SEEDS: u64 = 10;
/// Wins out of [`SEEDS`] the stronger AI must reach.
const WINS_NEEDED: usize = 8;
/// A match still running after this many game minutes ends without a winner.
const CAP_MINUTES: u64 = 30;
/// The hard AI must have met the player by this many game seconds.
const CONTACT_BY_S: u64 = 180;
/// Worker threads for the matches.
const THREADS: usize = 2;

fn slot(id: u8, kind: PlayerKind) -> PlayerSlot {
    PlayerSlot {
        id: PlayerId(id),
        name: format!("p{id}"),
        kind,
    }
}

/// A 1v1 on the default-size map; `first` takes slot 0 on even seeds and slot 1 on odd
/// ones, so a map's start advantage does not decide the count.
fn setup(seed: u64, first: PlayerKind, second: PlayerKind) -> (MatchCreated, PlayerId) {
    let rules = Rules::standard();
    let (p0, p1, first_id) = if seed.is_multiple_of(2) {
        (first, second, PlayerId(0))
    } else {
        (second, first, PlayerId(1))
    };
    let m = MatchCreated {
        match_id: MatchId::new(format!("ladder-{seed}")).expect("valid id"),
        seed,
        map: MapSpec {
            size: rules.map.default_size,
            seed,
        },
        players: vec![slot(0, p0), slot(1, p1)],
        tick_hz: rules.tick_hz,
        scenario: events::Scenario::Skirmish,
    };
    (m, first_id)
}

/// How a match of the ladder ended.
#[derive(Clone, Debug)]
enum Outcome {
    /// The stronger AI (the first of the pairing) won after this many game seconds.
    Won(u64),
    /// The weaker one won.
    Lost(u64),
    /// Nobody won by the cap (or nobody was left standing).
    NoWinner,
}

fn play(seed: u64, stronger: Difficulty, weaker: Difficulty) -> Outcome {
    let rules = Arc::new(Rules::standard());
    let (m, strong) = setup(seed, PlayerKind::Ai(stronger), PlayerKind::Ai(weaker));
    let mut s = Stepper::new(rules.clone(), &m).expect("setup");
    let hz = u64::from(s.stack.rules.tick_hz);
    let (winner, ticks) = s.run(CAP_MINUTES * 60 * hz);
    match winner {
        Some(Some(w)) if w == strong => Outcome::Won(ticks / hz),
        Some(Some(_)) => Outcome::Lost(ticks / hz),
        _ => Outcome::NoWinner,
    }
}

/// Game seconds until a hard AI first sees (or hits) anything of a human player who
/// gives no orders at all, so every contact is the AI's own doing, and until it sends its
/// first raid; `None` if not within [`CONTACT_BY_S`].
fn first_contact(seed: u64) -> (Option<u64>, Option<u64>) {
    let rules = Arc::new(Rules::standard());
    let (m, ai) = setup(seed, PlayerKind::Ai(Difficulty::Hard), PlayerKind::Human);
    let human = PlayerId(1 - ai.0);
    let mut s = Stepper::new(rules, &m).expect("setup");
    let hz = u64::from(s.stack.rules.tick_hz);
    let bit = 1u8 << ai.0;
    let limit = CONTACT_BY_S * hz;
    let (mut contact, mut raid) = (None, None);
    while s.tick() < limit && (contact.is_none() || raid.is_none()) {
        let r = s.step();
        if raid.is_none() && s.stack.ais.iter().any(|a| a.scouting().1 > 0) {
            raid = Some(r.tick / hz);
        }
        let hit = r.committed.events.iter().any(|e| match e {
            GameEvent::BuildingAttacked { owner, by, .. }
            | GameEvent::HarvesterAttacked { owner, by, .. }
            | GameEvent::EntityDestroyed { owner, by, .. } => *owner == human && *by == Some(ai),
            _ => false,
        });
        // The human never moves, so anything of theirs the AI sees, one of the AI's
        // units went to see.
        let seen = s
            .stack
            .sim
            .entities()
            .iter()
            .any(|e| e.owner == human && e.visible_to & bit != 0);
        if contact.is_none() && (hit || seen) {
            contact = Some(r.tick / hz);
        }
    }
    (contact, raid)
}

enum Job {
    Ladder(Difficulty, Difficulty, u64),
    Contact(u64),
}

enum Done {
    Ladder(Difficulty, Difficulty, u64, Outcome),
    Contact(u64, (Option<u64>, Option<u64>)),
}

/// Runs every job on [`THREADS`] threads; results in job order.
fn run_all(jobs: Vec<Job>) -> Vec<Done> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Done)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let d = match *job {
                    Job::Ladder(a, b, seed) => Done::Ladder(a, b, seed, play(seed, a, b)),
                    Job::Contact(seed) => Done::Contact(seed, first_contact(seed)),
                };
                done.lock().expect("no panics while held").push((i, d));
            });
        }
    });
    let mut done = done.into_inner().expect("no panics while held");
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, d)| d).collect()
}

fn fmt_outcome(o: &Outcome) -> String {
    let mmss = |s: &u64| format!("{}:{:02}", s / 60, s % 60);
    match o {
        Outcome::Won(s) => format!("win at {}", mmss(s)),
        Outcome::Lost(s) => format!("loss at {}", mmss(s)),
        Outcome::NoWinner => format!("no winner by {CAP_MINUTES}:00"),
    }
}

#[test]
fn hard_beats_normal_normal_beats_easy_and_hard_meets_and_raids_the_player_before_three_minutes() {
    use Difficulty::*;
    let pairs = [(Hard, Normal), (Normal, Easy)];
    let mut jobs = Vec::new();
    for (a, b) in pairs {
        for seed in 1..=SEEDS {
            jobs.push(Job::Ladder(a, b, seed));
        }
    }
    for seed in 1..=SEEDS {
        jobs.push(Job::Contact(seed));
    }
    let results = run_all(jobs);

    let mut table = String::from("| pairing | seed | result for the first |\n|---|---|---|\n");
    let mut wins = vec![0usize; pairs.len()];
    let mut contacts =
        String::from("| seed | hard's first contact | hard's first raid |\n|---|---|---|\n");
    let (mut early, mut raided) = (0usize, 0usize);
    for d in &results {
        match d {
            Done::Ladder(a, b, seed, o) => {
                table += &format!("| {a:?} vs {b:?} | {seed} | {} |\n", fmt_outcome(o));
                if matches!(o, Outcome::Won(_)) {
                    if let Some(k) = pairs.iter().position(|p| p == &(*a, *b)) {
                        wins[k] += 1;
                    }
                }
            }
            Done::Contact(seed, (c, r)) => {
                let shown = |t: &Option<u64>| {
                    t.map_or("none by 3:00".to_string(), |s| {
                        format!("{}:{:02}", s / 60, s % 60)
                    })
                };
                contacts += &format!("| {seed} | {} | {} |\n", shown(c), shown(r));
                if c.is_some_and(|s| s < CONTACT_BY_S) {
                    early += 1;
                }
                if r.is_some_and(|s| s < CONTACT_BY_S) {
                    raided += 1;
                }
            }
        }
    }
    let summary = format!(
        "{table}\nhard beat normal {}/{SEEDS}, normal beat easy {}/{SEEDS}\n\n{contacts}\n\
         hard met the player before 3:00 in {early}/{SEEDS} and raided in {raided}/{SEEDS}",
        wins[0], wins[1]
    );
    println!("{summary}");
    assert!(wins[0] >= WINS_NEEDED, "{summary}");
    assert!(wins[1] >= WINS_NEEDED, "{summary}");
    assert!(early >= WINS_NEEDED, "{summary}");
    assert!(raided >= WINS_NEEDED, "{summary}");
}
