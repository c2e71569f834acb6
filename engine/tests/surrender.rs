//! Surrender: a player who gives up loses everything it owns at the next tick and is
//! defeated; with one opponent left, that opponent wins.

mod common;

use common::{p, Given};
use events::cmd::Surrender;
use events::{Cell, Command, EntityKind, GameEvent, PlayerId, RejectReason, Source, UnitKind};

fn surrender() -> Command {
    Command::Surrender(Surrender {})
}

#[test]
fn a_surrender_defeats_the_player_and_the_opponent_wins() {
    let mut g = Given::duel();
    g.unit(0, UnitKind::LightTank, Cell::new(10, 10));
    let g = g.ticks(1);
    let owned_by_0 = g
        .sim
        .entities()
        .into_iter()
        .filter(|e| e.owner == PlayerId(0))
        .count();
    assert!(owned_by_0 >= 2, "a yard and units");
    let g = g.when(vec![(p(0), surrender())]);
    assert!(g.rejections().is_empty(), "{:?}", g.rejections());
    let destroyed = g
        .last
        .iter()
        .filter(|e| {
            matches!(e, GameEvent::EntityDestroyed { owner, by: None, .. } if *owner == PlayerId(0))
        })
        .count();
    assert_eq!(destroyed, owned_by_0, "everything player 0 owned is gone");
    assert!(g.last.contains(&GameEvent::PlayerDefeated {
        player: PlayerId(0)
    }));
    assert!(g.last.contains(&GameEvent::MatchWon {
        winner: Some(PlayerId(1))
    }));
    assert_eq!(g.sim.winner(), Some(Some(PlayerId(1))));
    assert!(g.sim.entities().iter().all(|e| e.owner != PlayerId(0)));
    // The buildings went first, in id order, then the units (as for a fallen base).
    let kinds: Vec<bool> = g
        .last
        .iter()
        .filter_map(|e| match e {
            GameEvent::EntityDestroyed { kind, .. } => {
                Some(matches!(kind, EntityKind::Building(_)))
            }
            _ => None,
        })
        .collect();
    assert!(kinds.windows(2).all(|w| w[0] >= w[1]), "{kinds:?}");
}

#[test]
fn only_players_and_bots_surrender_and_only_once() {
    let g = Given::r#match(32, 3)
        .when(vec![(Source::Economy, surrender())])
        .then(|g| assert_eq!(g.rejections(), vec![RejectReason::NotAllowed]))
        .when(vec![(Source::System, surrender())])
        .then(|g| assert_eq!(g.rejections(), vec![RejectReason::NotAPlayer]))
        .when(vec![(Source::Bot(PlayerId(2)), surrender())])
        .then(|g| {
            assert!(g.last.contains(&GameEvent::PlayerDefeated {
                player: PlayerId(2)
            }));
            // Two players are left: the match goes on.
            assert_eq!(g.sim.winner(), None);
        });
    g.when(vec![(p(2), surrender())])
        .then(|g| assert_eq!(g.rejections(), vec![RejectReason::Defeated]));
}

#[test]
fn a_surrender_plays_out_the_same_on_every_run() {
    let run = || {
        let mut g = Given::duel();
        g.unit(0, UnitKind::Rifleman, Cell::new(10, 10));
        g.unit(0, UnitKind::Harvester, Cell::new(12, 10));
        g.ticks(5).when(vec![(p(0), surrender())]).ticks(3)
    };
    let (a, b) = (run(), run());
    assert_eq!(a.hashes, b.hashes);
    assert_eq!(a.events, b.events);
}
