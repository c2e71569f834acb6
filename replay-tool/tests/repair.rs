//! Paid repair steps through the whole stack in process: the economy charges, the engine
//! heals, until the building is whole.

use std::sync::Arc;

use economy::state::repair_cost;
use engine::Rules;
use events::cmd::RepairBuilding;
use events::{BuildingKind::ConstructionYard, Command, PlayerId, Source, UnitId};
use replay_tool::stepper::Stepper;

const P0: Source = Source::Player(PlayerId(0));

fn repair(building: UnitId, on: bool) -> Command {
    Command::RepairBuilding(RepairBuilding { building, on })
}

#[test]
fn the_whole_stack_repairs_a_damaged_yard_for_credits() {
    let rules = Arc::new(Rules::standard());
    let setup = economy::testing::match_created(2, 48);
    let mut s = Stepper::new(rules.clone(), &setup).expect("setup");
    s.step();
    let yard = s
        .stack
        .sim
        .entities()
        .into_iter()
        .find(|e| {
            e.owner == PlayerId(0) && e.kind == events::EntityKind::Building(ConstructionYard)
        })
        .expect("a yard");
    {
        let st = s.stack.sim.state_mut();
        let e = st.entity(yard.id).unwrap();
        st.world
            .get::<&mut engine::sim::state::Health>(e)
            .unwrap()
            .hp = yard.max_hp - 100;
    }
    let credits = s.stack.eco.player(PlayerId(0)).unwrap().credits;
    s.push(P0, repair(yard.id, true));
    for _ in 0..200 {
        s.step();
    }
    assert_eq!(s.stack.sim.entity(yard.id).unwrap().hp, yard.max_hp);
    let spent = credits - s.stack.eco.player(PlayerId(0)).unwrap().credits;
    assert_eq!(
        spent,
        repair_cost(rules.economy.repair_credits_per_100_hp, 100)
    );
    assert!(s
        .stack
        .eco
        .player(PlayerId(0))
        .unwrap()
        .repairing
        .is_empty());
}
