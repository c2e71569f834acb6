//! Harvest physics: loading, moving on within a field, full and idle notices, docking one
//! at a time, and credits paid per unloaded bail.

mod common;

use common::{rules, Given};
use engine::map::Map;
use events::cmd::{Harvest, ReturnToRefinery};
use events::{BuildingKind, Cell, Command, GameEvent, PlayerId, Source, UnitId, UnitKind};

fn harvest(units: Vec<UnitId>, at: Cell) -> Command {
    Command::Harvest(Harvest { units, at })
}

fn ret(units: Vec<UnitId>) -> Command {
    Command::ReturnToRefinery(ReturnToRefinery { units })
}

fn field(m: &mut Map) {
    // Two green cells of 2 bails and one blue cell of 1.
    m.set_bails(Cell::new(30, 20), 2, false);
    m.set_bails(Cell::new(31, 20), 2, false);
    m.set_bails(Cell::new(40, 40), 1, true);
}

fn unloaded(events: &[GameEvent]) -> Vec<(UnitId, u32, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            GameEvent::HarvesterUnloaded {
                unit,
                bails,
                credits,
                ..
            } => Some((*unit, *bails, *credits)),
            _ => None,
        })
        .collect()
}

#[test]
fn harvest_then_unload_pays_per_bail() {
    let r = rules();
    let mut g = Given::blank(64, &[Cell::new(4, 4), Cell::new(59, 59)], field);
    let refinery = g.building(0, BuildingKind::Refinery, Cell::new(24, 24));
    let h = g.unit(0, UnitKind::Harvester, Cell::new(25, 28));
    let g = g
        .when(vec![(Source::Economy, harvest(vec![h], Cell::new(30, 20)))])
        .until(20 * 60, |e| matches!(e, GameEvent::HarvesterIdle { .. }))
        .then(|g| {
            // The field is dry: 4 green bails loaded, one TiberiumChanged per bail.
            assert_eq!(g.view(h).unwrap().cargo, 4);
            let changes = g
                .events
                .iter()
                .filter(|e| matches!(e, GameEvent::TiberiumChanged { .. }))
                .count();
            assert_eq!(changes, 4);
            assert_eq!(g.sim.map().bails(Cell::new(30, 20)), 0);
        });
    g.when(vec![(Source::Economy, ret(vec![h]))])
        .until(20 * 60, |e| matches!(e, GameEvent::HarvesterIdle { .. }))
        .then(|g| {
            let paid = unloaded(&g.last);
            assert_eq!(paid.len(), 4);
            assert!(paid
                .iter()
                .all(|&(u, b, c)| u == h && b == 1 && c == r.tiberium.green_bail_credits));
            assert!(g.last.iter().any(|e| matches!(
                e,
                GameEvent::HarvesterUnloaded { refinery: rf, owner: PlayerId(0), .. } if *rf == refinery
            )));
            assert_eq!(g.view(h).unwrap().cargo, 0);
        });
}

#[test]
fn blue_bails_pay_blue_credits() {
    let r = rules();
    let mut g = Given::blank(64, &[Cell::new(4, 4), Cell::new(59, 59)], field);
    g.building(0, BuildingKind::Refinery, Cell::new(36, 30));
    let h = g.unit(0, UnitKind::Harvester, Cell::new(38, 38));
    g.when(vec![(Source::Economy, harvest(vec![h], Cell::new(40, 40)))])
        .until(20 * 60, |e| matches!(e, GameEvent::HarvesterIdle { .. }))
        .when(vec![(Source::Economy, ret(vec![h]))])
        .until(20 * 60, |e| matches!(e, GameEvent::HarvesterIdle { .. }))
        .then(|g| {
            assert_eq!(
                unloaded(&g.last),
                vec![(h, 1, r.tiberium.blue_bail_credits)]
            );
        });
}

#[test]
fn a_full_harvester_stops_and_says_so() {
    let r = rules();
    let cap = r.harvest.capacity_bails;
    let mut g = Given::blank(64, &[Cell::new(4, 4), Cell::new(59, 59)], |m| {
        for x in 20..24 {
            m.set_bails(Cell::new(x, 20), 12, false);
        }
    });
    let h = g.unit(0, UnitKind::Harvester, Cell::new(20, 24));
    let load = u64::from(r.ticks(r.harvest.load_ms_per_bail));
    g.when(vec![(Source::Economy, harvest(vec![h], Cell::new(20, 20)))])
        .until(load * u64::from(cap) + 20 * 30, |e| {
            matches!(e, GameEvent::HarvesterFull { .. })
        })
        .then(|g| {
            assert_eq!(g.view(h).unwrap().cargo, cap);
            let left: u32 = (20..24)
                .map(|x| u32::from(g.sim.map().bails(Cell::new(x, 20))))
                .sum();
            assert_eq!(left, 48 - cap);
        })
        .ticks(40)
        .then(|g| assert_eq!(g.view(h).unwrap().cargo, cap));
}

#[test]
fn one_harvester_docks_at_a_time() {
    let mut g = Given::blank(64, &[Cell::new(4, 4), Cell::new(59, 59)], field);
    g.building(0, BuildingKind::Refinery, Cell::new(24, 24));
    let a = g.unit(0, UnitKind::Harvester, Cell::new(20, 34));
    let b = g.unit(0, UnitKind::Harvester, Cell::new(30, 34));
    // Give both cargo directly: 3 green bails each.
    for id in [a, b] {
        let st = g.sim.state_mut();
        let e = st.entity(id).unwrap();
        st.world
            .get::<&mut engine::sim::state::Harvester>(e)
            .unwrap()
            .green = 3;
    }
    g.when(vec![(Source::Economy, ret(vec![a, b]))])
        .until(
            20 * 60,
            |e| matches!(e, GameEvent::HarvesterIdle { unit, .. } if *unit == a || *unit == b),
        )
        .until(20 * 60, |e| matches!(e, GameEvent::HarvesterIdle { .. }))
        .then(|g| {
            let order: Vec<UnitId> = unloaded(&g.events).into_iter().map(|(u, _, _)| u).collect();
            assert_eq!(order.len(), 6);
            // No interleaving: one harvester finished before the other started.
            assert!(order[..3].iter().all(|&u| u == order[0]));
            assert!(order[3..].iter().all(|&u| u == order[3]));
            assert_ne!(order[0], order[3]);
        });
}

#[test]
fn harvest_orders_are_checked() {
    let mut g = Given::blank(64, &[Cell::new(4, 4), Cell::new(59, 59)], field);
    let h = g.unit(0, UnitKind::Harvester, Cell::new(25, 28));
    let tank = g.unit(0, UnitKind::LightTank, Cell::new(26, 28));
    g.when(vec![
        (Source::Economy, harvest(vec![tank], Cell::new(30, 20))),
        (common::p(0), harvest(vec![tank], Cell::new(30, 20))),
        (Source::Economy, ret(vec![h])),
        (Source::Economy, harvest(vec![h], Cell::new(10, 50))),
    ])
    .then(|g| {
        use events::RejectReason::*;
        assert_eq!(
            g.rejections(),
            vec![NotAllowed, WrongKind(tank), NoProducer]
        );
        // A harvest order on a cell with no tiberium leaves the harvester idle.
        assert!(g
            .last
            .iter()
            .any(|e| matches!(e, GameEvent::HarvesterIdle { unit, .. } if *unit == h)));
    });
}

#[test]
fn tiberium_regrows_and_spreads() {
    let r = rules();
    let mut g = Given::blank(64, &[Cell::new(4, 4), Cell::new(59, 59)], |m| {
        m.set_bails(Cell::new(30, 30), 3, false);
        for y in 40..44 {
            for x in 40..44 {
                m.set_bails(Cell::new(x, y), 12, false);
            }
        }
    });
    let period = u64::from(r.ticks(r.tiberium.regrow_ms));
    let g2 = std::mem::replace(&mut g, Given::duel());
    // Tick 0 has run; run up to and including the first regrow tick.
    g2.ticks(period)
        .then(|g| {
            assert_eq!(g.sim.map().bails(Cell::new(30, 30)), 4);
            assert!(g.last.contains(&GameEvent::TiberiumChanged {
                cell: Cell::new(30, 30),
                bails: 4,
                blue: false
            }));
        })
        .ticks(period * 20)
        .then(|g| {
            // 16 full cells, 1 in 8 chance each every period: something spread.
            let spread = (36..48)
                .flat_map(|y| (36..48).map(move |x| Cell::new(x, y)))
                .filter(|&c| !(40..44).contains(&c.x) || !(40..44).contains(&c.y))
                .filter(|&c| g.sim.map().bails(c) > 0)
                .count();
            assert!(spread > 0);
        });
}
